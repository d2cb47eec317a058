/* Attach/detach bookkeeping: see devices.h. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vfioenv.h"
#include "util.h"

struct devices_detach {
	struct devices_detach *next;
	struct devices *d;
	char *id;
	bool replied;            /* device_del answered */
	struct event *timer;
	devices_detach_cb cb;
	void *arg;
};

void
devices_init(struct devices *d, int n_root_ports)
{
	memset(d, 0, sizeof(*d));
	d->n_ports = n_root_ports;
}

static void
devices_entry_free(struct device_entry *e)
{
	free(e->id);
	free(e->driver);
	free(e->bus);
	json_decref(e->args);
}

static void
devices_detach_free(struct devices_detach *dd)
{
	struct devices_detach **pp = &dd->d->detaching;
	while (*pp != NULL && *pp != dd)
		pp = &(*pp)->next;
	if (*pp == dd)
		*pp = dd->next;
	event_free(dd->timer);
	free(dd->id);
	free(dd);
}

void
devices_free(struct devices *d)
{
	/* Pending detaches die with the session: their callers are gone too. */
	while (d->detaching != NULL) {
		devices_detach_free(d->detaching);
	}
	for (size_t i = 0; i < d->n; i++)
		devices_entry_free(&d->v[i]);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void
devices_attached(struct devices *d, const json_t *args)
{
	const char *id = json_string_value(json_object_get(args, "id"));
	if (id == NULL)
		return;          /* QEMU accepts id-less devices; nothing can address them later */
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = xreallocarray(d->v, d->cap, sizeof(*d->v));
	}
	const char *driver = json_string_value(json_object_get(args, "driver"));
	const char *bus = json_string_value(json_object_get(args, "bus"));
	d->v[d->n++] = (struct device_entry){
		.id = xstrdup(id),
		.driver = xstrdup(driver ? driver : ""),
		.bus = xstrdup(bus ? bus : ""),
		.args = json_deep_copy(args),
	};
}

const struct device_entry *
devices_find(const struct devices *d, const char *id)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].id, id) == 0)
			return &d->v[i];
	}
	return NULL;
}

int
devices_removed(struct devices *d, const char *id)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].id, id) == 0) {
			devices_entry_free(&d->v[i]);
			memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
			d->n--;
			return 0;
		}
	}
	return -ENOENT;
}

static bool
devices_port_used(const struct devices *d, const char *port)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].bus, port) == 0)
			return true;
	}
	return false;
}

const char *
devices_free_port(const struct devices *d, char *buf, size_t len)
{
	for (int i = 1; i <= d->n_ports; i++) {
		snprintf(buf, len, "rp%d", i);
		if (!devices_port_used(d, buf))
			return buf;
	}
	return NULL;
}

json_t *
devices_json(const struct devices *d)
{
	json_t *att = json_array(), *ports = json_array();
	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(att, json_pack("{s:s, s:s, s:s}", "id", d->v[i].id,
		    "driver", d->v[i].driver, "bus", d->v[i].bus));
	for (int i = 1; i <= d->n_ports; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "rp%d", i);
		if (!devices_port_used(d, buf))
			json_array_append_new(ports, json_string(buf));
	}
	return json_pack("{s:o, s:o}", "attached", att, "free_root_ports", ports);
}

static void
devices_detach_finish(struct devices_detach *dd, int result, const char *msg)
{
	devices_detach_cb cb = dd->cb;
	void *arg = dd->arg;
	char *id = xstrdup(dd->id);
	if (result == 0)
		devices_removed(dd->d, id);
	devices_detach_free(dd);
	cb(id, result, msg, arg);
	free(id);
}

bool
devices_deleted(struct devices *d, const json_t *data)
{
	for (struct devices_detach *dd = d->detaching; dd != NULL; dd = dd->next) {
		if (qmp_device_deleted_matches(data, dd->id)) {
			log_debug("QEMU released %s", dd->id);
			devices_detach_finish(dd, 0, NULL);
			return true;
		}
	}
	/* Not asked for: the guest ejected it by itself. */
	for (size_t i = 0; i < d->n; i++) {
		if (qmp_device_deleted_matches(data, d->v[i].id)) {
			log_info("QEMU released %s", d->v[i].id);
			devices_removed(d, d->v[i].id);
			return true;
		}
	}
	return false;
}

static void
devices_detach_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct devices_detach *dd = arg;
	dd->replied = true;
	if (err != NULL) {
		char *msg = xasprintf("QEMU refused to remove %s: %s", dd->id, err->desc);
		devices_detach_finish(dd, -EIO, msg);
		free(msg);
	}
}

static void
devices_detach_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct devices_detach *dd = arg;
	char *msg = xasprintf("the guest did not release %s in time (no DEVICE_DELETED); it may "
	    "ignore unplug requests until its OS has booted; try again later", dd->id);
	devices_detach_finish(dd, -ETIMEDOUT, msg);
	free(msg);
}

int
devices_detach(struct devices *d, struct qmp *qmp, struct event_base *base, const char *id,
    int timeout_ms, devices_detach_cb cb, void *arg)
{
	if (devices_find(d, id) == NULL)
		return -ENOENT;
	for (struct devices_detach *p = d->detaching; p != NULL; p = p->next) {
		if (strcmp(p->id, id) == 0)
			return -EALREADY;
	}
	struct devices_detach *dd = xcalloc(1, sizeof(*dd));
	dd->d = d;
	dd->id = xstrdup(id);
	dd->cb = cb;
	dd->arg = arg;
	dd->next = d->detaching;
	d->detaching = dd;
	dd->timer = evtimer_new(base, devices_detach_timeout, dd);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(dd->timer, &tv);
	int r = qmp_send(qmp, "device_del", json_pack("{s:s}", "id", id), -1, timeout_ms,
	    devices_detach_reply, dd);
	if (r < 0) {
		devices_detach_free(dd);
		return r;
	}
	return 0;
}

#define DEVICES_CMD_TIMEOUT_MS 30000

int
devices_cmd_timeout_ms(void)
{
	const char *t = vfioenv_get("VFIO_TEST_QMP_TIMEOUT_MS");
	int v = t != NULL ? atoi(t) : 0;
	return v > 0 ? v : DEVICES_CMD_TIMEOUT_MS;
}

struct devices_probe {
	char *id;
	devices_found_cb cb;
	void *arg;
};

static void
devices_probe_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct devices_probe *p = arg;
	enum devices_found found = DEVICES_UNKNOWN;
	if (err == NULL) {
		found = DEVICES_ABSENT;
		size_t i;
		json_t *e;
		json_array_foreach(ret, i, e) {
			const char *name = json_string_value(json_object_get(e, "name"));
			const char *type = json_string_value(json_object_get(e, "type"));
			if (name != NULL && type != NULL && strcmp(name, p->id) == 0 && strncmp(type, "child<", 6) == 0)
				found = DEVICES_PRESENT;
		}
	}
	p->cb(found, err != NULL ? err->desc : NULL, p->arg);
	free(p->id);
	free(p);
}

void
devices_probe(struct qmp *qmp, const char *id, devices_found_cb cb, void *arg)
{
	struct devices_probe *p = xcalloc(1, sizeof(*p));
	p->id = xstrdup(id);
	p->cb = cb;
	p->arg = arg;
	/* It waits behind the late command: twice the usual bound. */
	if (qmp == NULL || qmp_send(qmp, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"), -1,
	    2 * devices_cmd_timeout_ms(), devices_probe_reply, p) < 0)
		devices_probe_reply(NULL, NULL, &(struct qmp_error){ .class = QMP_ERR_DISCONNECTED,
		    .desc = "QEMU's monitor is closed" }, p);
}
