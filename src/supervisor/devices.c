/* Attach/detach bookkeeping: see devices.h. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "vfioenv.h"
#include "util.h"

/* Someone waiting for a removal. */
struct devices_waiter {
	struct devices_waiter *next;
	struct devices *d;
	char *id;
	struct event *timer;     /* NULL once the pending notice went out (follow) */
	bool follow;
	devices_detach_cb cb;
	void *arg;
};

/* The argument of a device_del reply; freed with it. */
struct devices_del {
	struct devices *d;
	char *id;
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
devices_waiter_free(struct devices_waiter *w)
{
	struct devices_waiter **pp = &w->d->waiters;
	while (*pp != NULL && *pp != w)
		pp = &(*pp)->next;
	if (*pp == w)
		*pp = w->next;
	if (w->timer != NULL)
		event_free(w->timer);
	free(w->id);
	free(w);
}

void
devices_free(struct devices *d)
{
	/* Waiters die with the session: their callers are gone too. */
	while (d->waiters != NULL)
		devices_waiter_free(d->waiters);
	for (size_t i = 0; i < d->n; i++)
		devices_entry_free(&d->v[i]);
	free(d->v);
	struct journal *j = d->journal;
	memset(d, 0, sizeof(*d));
	d->journal = j;
}

int
devices_add(struct devices *d, struct qmp *qmp, const json_t *args, int timeout_ms, qmp_reply_cb cb,
    void *arg, struct verr *err)
{
	if (qmp == NULL)
		return verr_set(err, -ENOTCONN, "QEMU's monitor is closed");
	int r = d->journal != NULL ? journal_record_device(d->journal, args, err) : 0;
	if (r < 0)
		return r;
	r = qmp_send(qmp, "device_add", json_deep_copy(args), -1, timeout_ms, cb, arg);
	if (r < 0)
		return verr_set(err, r, "QEMU's monitor is closed");
	return 0;
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

static struct device_entry *
devices_entry(const struct devices *d, const char *id)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].id, id) == 0)
			return &d->v[i];
	}
	return NULL;
}

const struct device_entry *
devices_find(const struct devices *d, const char *id)
{
	return devices_entry(d, id);
}

int
devices_removed(struct devices *d, const char *id)
{
	struct device_entry *e = devices_entry(d, id);
	if (e == NULL)
		return -ENOENT;
	size_t i = (size_t)(e - d->v);
	devices_entry_free(e);
	memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
	d->n--;
	return 0;
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
		json_array_append_new(att, json_pack("{s:s, s:s, s:s, s:s}", "id", d->v[i].id,
		    "driver", d->v[i].driver, "bus", d->v[i].bus, "state", d->v[i].removing ? "removing" : "attached"));
	for (int i = 1; i <= d->n_ports; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "rp%d", i);
		if (!devices_port_used(d, buf))
			json_array_append_new(ports, json_string(buf));
	}
	return json_pack("{s:o, s:o}", "attached", att, "free_root_ports", ports);
}

/* Every waiter of id hears how it ended. */
static void
devices_answer(struct devices *d, const char *id, int result, const char *msg)
{
	struct devices_waiter *mine = NULL, **pp = &d->waiters;
	while (*pp != NULL) {
		struct devices_waiter *w = *pp;
		if (strcmp(w->id, id) == 0) {
			*pp = w->next;
			w->next = mine;
			mine = w;
		} else {
			pp = &w->next;
		}
	}
	while (mine != NULL) {
		struct devices_waiter *w = mine;
		mine = w->next;
		devices_detach_cb cb = w->cb;
		void *arg = w->arg;
		w->next = NULL;
		if (w->timer != NULL)
			event_free(w->timer);
		free(w->id);
		free(w);
		cb(id, result, msg, arg);
	}
}

void
devices_released(struct devices *d, const char *id, int result, const char *msg)
{
	struct verr err = { 0 };
	/* Whatever the release left in force is still the journal's (for
	 * teardown); the device itself is gone from QEMU. */
	if (d->journal != NULL && journal_record_device_gone(d->journal, id, &err) < 0)
		log_warnx("%s", err.msg);
	char *dflt = msg == NULL ? xasprintf("%s removed", id) : NULL;
	char *copy = xstrdup(id);
	devices_answer(d, copy, result, msg ? msg : dflt);
	free(copy);
	free(dflt);
}

bool
devices_deleted(struct devices *d, const json_t *data)
{
	for (size_t i = 0; i < d->n; i++) {
		if (!qmp_device_deleted_matches(data, d->v[i].id))
			continue;
		char *id = xstrdup(d->v[i].id);
		json_t *args = json_incref(d->v[i].args);
		bool asked = d->v[i].removing;
		log_info("QEMU released %s%s", id, asked ? "" : " (the guest ejected it)");
		devices_removed(d, id);
		if (d->release != NULL)
			d->release(d->release_arg, d, id, args);
		else
			devices_released(d, id, 0, NULL);
		json_decref(args);
		free(id);
		return true;
	}
	return false;
}

static struct devices_waiter *
devices_wait(struct devices *d, const char *id, bool follow, devices_detach_cb cb, void *arg)
{
	struct devices_waiter *w = xcalloc(1, sizeof(*w));
	w->d = d;
	w->id = xstrdup(id);
	w->follow = follow;
	w->cb = cb;
	w->arg = arg;
	w->next = d->waiters;
	d->waiters = w;
	return w;
}

void
devices_give_back(struct devices *d, const char *id, const json_t *args, devices_detach_cb cb, void *arg)
{
	devices_wait(d, id, false, cb, arg);
	if (d->release != NULL)
		d->release(d->release_arg, d, id, args);
	else
		devices_released(d, id, 0, NULL);
}

static void
devices_pending(evutil_socket_t fd, short events, void *arg)
{
	struct devices_waiter *w = arg;
	char *msg = xasprintf("%s: removal pending: the guest has not released it yet (no DEVICE_DELETED); "
	    "it goes back to the host when the guest lets go (some guests do only once their OS has "
	    "booted); `status` shows it as removing", w->id);
	devices_detach_cb cb = w->cb;
	void *cbarg = w->arg;
	char *id = xstrdup(w->id);
	if (w->follow) {
		event_free(w->timer);
		w->timer = NULL;
	} else {
		devices_waiter_free(w);
	}
	cb(id, -EINPROGRESS, msg, cbarg);
	free(id);
	free(msg);
}

void
devices_mark_removing(struct devices *d, const char *id)
{
	struct device_entry *e = devices_entry(d, id);
	if (e != NULL)
		e->removing = true;
}

int
devices_detach_wait_ms(void)
{
	const char *t = vfioenv_get("VFIO_TEST_DETACH_TIMEOUT_MS");
	int v = t != NULL ? atoi(t) : 0;
	return v > 0 ? v : DEVICES_DETACH_TIMEOUT_MS;
}

/* A guest (or QEMU) that had been asked before: the removal is pending. */
static bool
devices_already_unplugging(const struct qmp_error *err)
{
	return err != NULL && strstr(err->desc, "already in the process of unplug") != NULL;
}

static void
devices_del_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct devices_del *dd = arg;
	struct devices *d = dd->d;
	struct device_entry *e = devices_entry(d, dd->id);
	if (err == NULL || devices_already_unplugging(err)) {
		struct verr jerr = { 0 };
		if (e != NULL && d->journal != NULL && journal_record_device_del(d->journal, dd->id, &jerr) < 0)
			log_warnx("%s", jerr.msg);
	} else if (strcmp(err->class, QMP_ERR_DISCONNECTED) != 0 || e != NULL) {
		if (e != NULL)
			e->removing = false;
		char *msg = strcmp(err->class, QMP_ERR_DISCONNECTED) == 0 ?
		    xasprintf("QEMU's monitor closed: %s was not removed", dd->id) :
		    xasprintf("QEMU refused to remove %s: %s", dd->id, err->desc);
		devices_answer(d, dd->id, -EIO, msg);
		free(msg);
	}
	free(dd->id);
	free(dd);
}

int
devices_detach(struct devices *d, struct qmp *qmp, struct event_base *base, const char *id,
    int timeout_ms, bool follow, devices_detach_cb cb, void *arg)
{
	struct device_entry *e = devices_entry(d, id);
	if (e == NULL)
		return -ENOENT;
	if (!e->removing) {
		if (qmp == NULL)
			return -ENOTCONN;
		struct devices_del *dd = xcalloc(1, sizeof(*dd));
		dd->d = d;
		dd->id = xstrdup(id);
		int r = qmp_send(qmp, "device_del", json_pack("{s:s}", "id", id), -1, timeout_ms, devices_del_reply,
		    dd);
		if (r < 0) {
			free(dd->id);
			free(dd);
			return r;
		}
		e->removing = true;
	}
	struct devices_waiter *w = devices_wait(d, id, follow, cb, arg);
	w->timer = evtimer_new(base, devices_pending, w);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(w->timer, &tv);
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

json_t *
devices_peripheral_ids(const json_t *qom_list)
{
	json_t *ids = json_object();
	size_t i;
	json_t *e;
	json_array_foreach(qom_list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *type = json_string_value(json_object_get(e, "type"));
		if (name != NULL && type != NULL && str_startswith(type, "child<"))
			json_object_set_new(ids, name, json_true());
	}
	return ids;
}

static void
devices_probe_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct devices_probe *p = arg;
	enum devices_found found = DEVICES_UNKNOWN;
	if (err == NULL) {
		json_t *ids = devices_peripheral_ids(ret);
		found = json_object_get(ids, p->id) != NULL ? DEVICES_PRESENT : DEVICES_ABSENT;
		json_decref(ids);
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
	if (qmp == NULL || qmp_send(qmp, "qom-list", json_pack("{s:s}", "path", DEVICES_PERIPHERAL), -1,
	    2 * devices_cmd_timeout_ms(), devices_probe_reply, p) < 0)
		devices_probe_reply(NULL, NULL, &(struct qmp_error){ .class = QMP_ERR_DISCONNECTED,
		    .desc = "QEMU's monitor is closed" }, p);
}
