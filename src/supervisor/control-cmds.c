/* The control FIFO's commands: one table (name, arguments, handler, help)
 * drives lookup, argument checks and `help`, as tmux's cmd_entry. Handlers
 * that wait (QMP replies, a bind in a child, DEVICE_DELETED) keep their
 * request and answer it from a callback; the loop never waits for them. */
#include "control-priv.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "change.h"
#include "devargs.h"
#include "devices.h"
#include "devown.h"
#include "journal.h"
#include "log.h"
#include "net.h"
#include "passthrough.h"
#include "preflight.h"
#include "qmp.h"
#include "snapshot.h"
#include "usbwatch.h"
#include "vfio_bind.h"

#define CONTROL_CMD_TIMEOUT_MS devices_cmd_timeout_ms()
/* The question after a timeout waits behind the late command in QEMU: it
 * gets twice as long. */
#define CONTROL_RECONCILE_TIMEOUT_MS (2 * devices_cmd_timeout_ms())

/* --- helpers ----------------------------------------------------------------- */

static bool
control_strv_has(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++) {
		if (strcmp(sv->v[i], s) == 0)
			return true;
	}
	return false;
}

static bool
control_port_reserved(struct control *c, const char *port)
{
	return control_strv_has(&c->reserved_ports, port) || control_strv_has(&c->lost, port);
}

/* A free root port, held for req until it replies. NULL when none. */
static const char *
control_take_port(struct control_req *req)
{
	struct control *c = req->c;
	for (int i = 1; i <= c->h.devs->n_ports; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "rp%d", i);
		bool used = control_port_reserved(c, buf);
		for (size_t k = 0; k < c->h.devs->n && !used; k++)
			used = strcmp(c->h.devs->v[k].bus, buf) == 0;
		if (!used) {
			req->port = xstrdup(buf);
			strv_push(&c->reserved_ports, buf);
			return req->port;
		}
	}
	return NULL;
}

static bool
control_id_used(struct control *c, const char *id)
{
	if (devices_find(c->h.devs, id) != NULL || control_strv_has(&c->lost, id))
		return true;
	size_t i;
	json_t *cmd;
	/* Devices count while attached (above); the plan's netdevs are not
	 * tracked, so their ids stay taken. */
	json_array_foreach(c->h.plan_qmp, i, cmd) {
		if (strcmp(json_string_value(json_object_get(cmd, "execute")) ?: "", "netdev_add") != 0)
			continue;
		const char *used = json_string_value(json_object_get(json_object_get(cmd, "arguments"), "id"));
		if (used != NULL && strcmp(used, id) == 0)
			return true;
	}
	for (struct control_req *r = c->pending; r != NULL; r = r->next) {
		if ((r->id && strcmp(r->id, id) == 0) || (r->netdev && strcmp(r->netdev, id) == 0))
			return true;
	}
	/* the backends of the NICs attached */
	for (size_t k = 0; k < c->h.devs->n; k++) {
		const char *nd = json_string_value(json_object_get(c->h.devs->v[k].args, "netdev"));
		if (nd != NULL && strcmp(nd, id) == 0)
			return true;
	}
	return false;
}

static void
control_changed(struct control *c)
{
	c->h.changed(c->h.arg);
}

/* Journal and apply a change that cannot block (dev-chown, tap-create) for
 * the device id (given back with it: release.h); a failure is given back
 * at once. *idx is the journal entry. */
static int
control_change_now(struct control *c, const json_t *change, const char *id, size_t *idx, struct verr *err)
{
	struct journal_apply_opts o = { .bindtimeout_ms = c->h.bindtimeout_ms, .undo_on_failure = true,
		.for_id = id };
	return journal_apply(c->h.journal, change, &o, idx, err);
}

/* QEMU running as another user opens the node itself: give it to that user. */
static int
control_chown(struct control *c, const char *path, const char *id, struct verr *err)
{
	if (c->h.qemu_uid < 0)
		return 0;
	json_t *change = devown_change_new(path, c->h.qemu_uid, c->h.qemu_gid);
	size_t idx;
	int r = control_change_now(c, change, id, &idx, err);
	json_decref(change);
	return r;
}

/* --- after a timeout: what QEMU really did ----------------------------------- */

/* Ids QEMU may still make (it never answered): reserved for the rest of
 * the run, so no later command collides with them. */
static void
control_lost(struct control *c, const char *id, const char *port)
{
	if (id != NULL && !control_strv_has(&c->lost, id))
		strv_push(&c->lost, id);
	if (port != NULL && !control_strv_has(&c->lost, port))
		strv_push(&c->lost, port);
}

static bool
control_timed_out(const struct qmp_error *err)
{
	return err != NULL && strcmp(err->class, QMP_ERR_TIMEOUT) == 0;
}

/* --- status, help, powerdown, reset, quit ------------------------------------ */

static void
control_cmd_status(struct control_req *req)
{
	json_t *st = control_status_json(req->c);
	char *s = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	control_reply(req, true, "%s", s);
	free(s);
}

static void
control_cmd_help(struct control_req *req)
{
	struct strbuf sb = { 0 };
	for (size_t i = 0; i < control_cmd_count; i++) {
		const struct control_cmd_entry *e = &control_cmd_table[i];
		strbuf_printf(&sb, "%s%s%s%s: %s", i ? "; " : "", e->info.name, e->info.usage[0] ? " " : "",
		    e->info.usage, e->info.help);
	}
	control_reply(req, true, "%s", sb.s);
	strbuf_free(&sb);
}

static void
control_cmd_powerdown(struct control_req *req)
{
	req->c->h.powerdown(req->c->h.arg);
	control_reply(req, true, "asked the guest to power down (ACPI power button)");
}

static void
control_cmd_quit(struct control_req *req)
{
	struct control *c = req->c;
	control_reply(req, true, "quitting QEMU; the host is put back once it is gone");
	c->h.quit(c->h.arg);
}

static void
control_reset_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct control_req *req = arg;
	if (err != NULL)
		control_reply(req, false, "QEMU refused to reset the guest: %s", err->desc);
	else
		control_reply(req, true, "the guest was reset");
}

static void
control_cmd_reset(struct control_req *req)
{
	if (qmp_send(control_qmp(req->c), "system_reset", NULL, -1, CONTROL_CMD_TIMEOUT_MS,
	    control_reset_reply, req) < 0)
		control_reply(req, false, "QEMU's monitor is closed: the guest cannot be reset");
}

/* --- device_add, shared by pci, usb and net -------------------------------- */

/* A device QEMU does not have after all: what was made for it goes back
 * (release.h), then the reply says why it failed and how giving back went. */
static void
control_given_back(const char *id, int result, const char *msg, void *arg)
{
	struct control_req *req = arg;
	control_changed(req->c);
	if (result < 0)
		control_reply(req, false, "%s; giving it back failed too: %s", req->why, msg);
	else if (req->addr != NULL)
		control_reply(req, false, "%s; nothing changed: %s is back with its own driver", req->why, req->addr);
	else
		control_reply(req, false, "%s", req->why);
}

static void
control_add_failed(struct control_req *req, const char *why)
{
	req->why = xstrdup(why);
	json_t *args = json_object_get(req->change, "device_add");
	devices_give_back(req->c->h.devs, req->id, args, control_given_back, req);
}

static void control_device_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg);

/* device_add timed out; qom-list says whether QEMU made the device after all
 * (devices_probe()). */
static void
control_device_found(enum devices_found found, const char *why, void *arg)
{
	struct control_req *req = arg;
	struct control *c = req->c;
	if (found == DEVICES_PRESENT) {
		log_warnx("QEMU answered device_add %s late: it has the device; it stays attached", req->id);
		control_device_reply(NULL, NULL, NULL, req);
		return;
	}
	if (found == DEVICES_ABSENT) {
		/* Its backend, bind or tap goes back as for a refused add. */
		char *msg = xasprintf("QEMU did not answer device_add %s in time and then had no such device; "
		    "nothing was added", req->id);
		control_add_failed(req, msg);
		free(msg);
		return;
	}
	/* QEMU is not answering at all: whatever it may still attach stays
	 * with it (a PCI device on vfio-pci until the run ends), and its ids
	 * and root port are never used again this run. */
	control_lost(c, req->id, req->port);
	if (req->netdev != NULL)
		control_lost(c, req->netdev, NULL);
	control_reply(req, false, "QEMU does not answer (device_add %s, then qom-list: %s); it may still attach "
	    "%s%s, so nothing is given back before the end of the run; its id stays reserved", req->id,
	    why ? why : "no answer", req->addr ? req->addr : req->id, req->addr ? ", which stays on vfio-pci" : "");
}

static void
control_device_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct control_req *req = arg;
	struct control *c = req->c;
	json_t *args = json_object_get(req->change, "device_add");
	if (control_timed_out(err)) {
		devices_probe(control_qmp(c), req->id, control_device_found, req);
		return;
	}
	if (err != NULL) {
		char *msg = xasprintf("QEMU refused to add %s: %s", req->id, err->desc);
		control_add_failed(req, msg);
		free(msg);
		return;
	}
	devices_attached(c->h.devs, args);
	control_changed(c);
	if (req->addr != NULL)
		control_reply(req, true, "%s attached (%s on %s)", req->id, req->addr, req->port);
	else
		control_reply(req, true, "%s attached (%s%s%s)", req->id,
		    json_string_value(json_object_get(args, "driver")), req->port ? " on " : "",
		    req->port ? req->port : "");
}

/* req->change holds {"device_add": ARGS, ...}: journaled, then sent. */
static void
control_device_add(struct control_req *req)
{
	struct verr err = { 0 };
	if (devices_add(req->c->h.devs, control_qmp(req->c), json_object_get(req->change, "device_add"),
	    CONTROL_CMD_TIMEOUT_MS, control_device_reply, req, &err) < 0) {
		char *msg = xasprintf("%s was not added: %s", req->id, err.msg);
		control_add_failed(req, msg);
		free(msg);
	}
}

/* --- net ------------------------------------------------------------------------ */

/* What was made for req (a tap) goes back, then the reply says req->why;
 * the backend itself was dealt with (control_netdev_gone_reply). */
static void
control_netdev_gone_rest(struct control_req *req, char *why)
{
	free(req->why);
	req->why = why;
	json_t *args = json_deep_copy(json_object_get(req->change, "device_add"));
	json_object_del(args, "netdev");
	devices_give_back(req->c->h.devs, req->id, args, control_given_back, req);
	json_decref(args);
}

/* netdev_del after a reconciliation: the reply says what became of it. */
static void
control_netdev_gone_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct control_req *req = arg;
	if (control_timed_out(err) || (err != NULL && strcmp(err->class, QMP_ERR_DISCONNECTED) == 0)) {
		control_lost(req->c, req->netdev, NULL);
		control_netdev_gone_rest(req, xasprintf("%s; QEMU did not answer netdev_del %s either: the backend "
		    "may appear later, its id stays reserved", req->why, req->netdev));
	} else if (err != NULL) {
		control_netdev_gone_rest(req, xasprintf("%s; QEMU never made the network backend %s", req->why,
		    req->netdev));
	} else {
		control_netdev_gone_rest(req, xasprintf("%s; QEMU made the network backend %s late, and it was "
		    "removed again", req->why, req->netdev));
	}
}

/* The network backend req->netdev may exist although its add was not
 * answered in time: netdev_del it (QEMU runs it after the late add) before
 * the reply, which gets why first. */
static void
control_netdev_gone(struct control_req *req, const char *why)
{
	free(req->why);
	req->why = xstrdup(why);
	struct qmp *q = control_qmp(req->c);
	if (q == NULL || qmp_send(q, "netdev_del", json_pack("{s:s}", "id", req->netdev), -1,
	    CONTROL_RECONCILE_TIMEOUT_MS, control_netdev_gone_reply, req) < 0) {
		control_lost(req->c, req->netdev, NULL);
		control_netdev_gone_rest(req, xasprintf("%s; QEMU's monitor is closed: the backend %s may exist",
		    why, req->netdev));
	}
}

static void
control_netdev_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct control_req *req = arg;
	if (control_timed_out(err)) {
		char *why = xasprintf("QEMU did not answer netdev_add %s in time (%s); nothing was added", req->netdev,
		    err->desc);
		control_netdev_gone(req, why);
		free(why);
		return;
	}
	if (err != NULL) {
		char *msg = xasprintf("QEMU refused the network backend %s: %s", req->netdev, err->desc);
		control_add_failed(req, msg);
		free(msg);
		return;
	}
	control_device_add(req);
}

static void
control_getfd_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct control_req *req = arg;
	close(req->fd);
	req->fd = -1;
	if (err != NULL) {
		char *msg = xasprintf("QEMU did not take the tap's file descriptor: %s", err->desc);
		control_add_failed(req, msg);
		free(msg);
		return;
	}
	json_t *nargs = devargs_netdev_tap(req->netdev, req->fdname, NULL);
	if (qmp_send(control_qmp(req->c), "netdev_add", nargs, -1, CONTROL_CMD_TIMEOUT_MS,
	    control_netdev_reply, req) < 0)
		control_add_failed(req, "QEMU's monitor closed: it was not added");
}

/* "tcp::2222-:22": [proto]:[hostaddr]:hostport-[guestaddr]:guestport */
static bool
control_hostfwd_valid(const char *rule)
{
	regex_t re;
	if (regcomp(&re, "^(tcp|udp)?:[0-9.]*:[0-9]{1,5}-[0-9.]*:[0-9]{1,5}$", REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool ok = regexec(&re, rule, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void
control_cmd_net_add(struct control_req *req)
{
	struct control *c = req->c;
	struct verr err = { 0 };
	const char *kind = req->argv[0];
	const char *tap = NULL, *bridge = NULL;
	json_t *hostfwd = json_array();
	if (str_startswith(kind, "tap="))
		tap = kind + 4;
	else if (str_startswith(kind, "bridge="))
		bridge = kind + 7;
	else if (strcmp(kind, "user") != 0) {
		json_decref(hostfwd);
		control_reply(req, false, "net add: unknown network \"%s\"; use user [hostfwd=tcp::2222-:22], "
		    "bridge=BRIDGE or tap=TAP", kind);
		return;
	}
	for (int i = 1; i < req->argc; i++) {
		if (strcmp(kind, "user") != 0 || !str_startswith(req->argv[i], "hostfwd=")) {
			json_decref(hostfwd);
			control_reply(req, false, "net add %s: unexpected \"%s\"; only user networking takes "
			    "options, hostfwd=tcp::HOSTPORT-:GUESTPORT[,...]", kind, req->argv[i]);
			return;
		}
		char *rules = xstrdup(req->argv[i] + 8), *save = NULL;
		bool bad = rules[0] == '\0';
		for (char *r = strtok_r(rules, ",", &save); r != NULL && !bad; r = strtok_r(NULL, ",", &save)) {
			if (!control_hostfwd_valid(r)) {
				control_reply(req, false, "net add user: hostfwd rule \"%s\" is not "
				    "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, e.g. tcp::2222-:22", r);
				free(rules);
				json_decref(hostfwd);
				return;
			}
			json_array_append_new(hostfwd, json_pack("{s:s}", "str", r));
		}
		free(rules);
		if (bad) {
			json_decref(hostfwd);
			control_reply(req, false, "net add user: hostfwd= needs a rule, e.g. hostfwd=tcp::2222-:22");
			return;
		}
	}
	if ((tap != NULL && !net_ifname_valid(tap)) || (bridge != NULL && !net_ifname_valid(bridge))) {
		json_decref(hostfwd);
		control_reply(req, false, "net add: \"%s\" is not a valid interface name (1 to 15 characters, "
		    "no '/', ':' or blanks)", tap ? tap : bridge);
		return;
	}
	const char *port = control_take_port(req);
	if (port == NULL) {
		json_decref(hostfwd);
		control_reply(req, false, "net add: every root port of the guest is in use (%d); remove a device "
		    "first (pci del / net del)", c->h.devs->n_ports);
		return;
	}
	for (int k = 0;; k++) {
		char nic[32], net[32];
		snprintf(nic, sizeof(nic), "nic%d", k);
		snprintf(net, sizeof(net), "net%d", k);
		if (!control_id_used(c, nic) && !control_id_used(c, net)) {
			req->id = xstrdup(nic);
			req->netdev = xstrdup(net);
			break;
		}
	}
	req->change = json_pack("{s:o}", "device_add", devargs_nic("virtio-net-pci", req->id, req->netdev, NULL,
	    port));

	if (tap == NULL && bridge == NULL) {
		json_t *nargs = devargs_netdev_user(req->netdev, hostfwd);
		json_decref(hostfwd);
		if (qmp_send(control_qmp(c), "netdev_add", nargs, -1, CONTROL_CMD_TIMEOUT_MS,
		    control_netdev_reply, req) < 0)
			control_reply(req, false, "QEMU's monitor is closed: %s was not added", req->id);
		return;
	}
	json_decref(hostfwd);
	char tapname[IFNAMSIZ];
	if (bridge != NULL) {
		struct net_link link;
		int r = net_link_get(bridge, &link, &err);
		if (r == 0 || (r > 0 && strcmp(link.kind, "bridge") != 0)) {
			control_reply(req, false, "net add: %s %s; name an existing bridge (vfio makes one for "
			    "-bridge at start)", bridge, r == 0 ? "does not exist" : "is not a bridge");
			return;
		}
		if (r < 0 || net_tap_name_free(tapname, &err) < 0) {
			control_reply(req, false, "net add: %s", err.msg);
			return;
		}
		json_t *ch = net_change_tap(tapname, bridge, c->h.qemu_uid, c->h.qemu_gid);
		size_t idx;
		r = control_change_now(c, ch, req->id, &idx, &err);
		json_decref(ch);
		if (r < 0) {
			control_reply(req, false, "net add: cannot create a tap on %s: %s", bridge, err.msg);
			return;
		}
		tap = tapname;
		control_changed(c);
	}
	if (net_tap_open(tap, &req->fd, &err) < 0) {
		char *msg = xasprintf("net add: %s", err.msg);
		control_add_failed(req, msg);
		free(msg);
		return;
	}
	req->fdname = xasprintf("ctlfd%u", c->next_fd++);
	if (qmp_send(control_qmp(c), "getfd", json_pack("{s:s}", "fdname", req->fdname), req->fd,
	    CONTROL_CMD_TIMEOUT_MS, control_getfd_reply, req) < 0)
		control_add_failed(req, "QEMU's monitor closed: it was not added");
}

/* --- del, shared ------------------------------------------------------------- */

/* The device is gone and given back (release.h), or the guest has not let
 * go yet: then the removal stays pending and the reply says so. */
static void
control_detached(const char *id, int result, const char *msg, void *arg)
{
	struct control_req *req = arg;
	control_changed(req->c);
	if (result == -EINPROGRESS)
		control_reply_pending(req, "%s", msg);
	else
		control_reply(req, result == 0, "%s", msg);
}

static void
control_detach(struct control_req *req)
{
	struct control *c = req->c;
	int r = devices_detach(c->h.devs, control_qmp(c), c->h.base, req->id, devices_detach_wait_ms(), false,
	    control_detached, req);
	if (r == -ENOENT)
		control_reply(req, false, "no device %s is attached; `status` lists them", req->id);
	else if (r < 0)
		control_reply(req, false, "QEMU's monitor is closed: %s was not removed", req->id);
	else
		control_changed(c);
}

static void
control_cmd_net_del(struct control_req *req)
{
	const struct device_entry *e = devices_find(req->c->h.devs, req->argv[0]);
	if (e == NULL) {
		control_reply(req, false, "net del: no device %s is attached; `status` lists them", req->argv[0]);
		return;
	}
	const char *netdev = json_string_value(json_object_get(e->args, "netdev"));
	if (netdev == NULL) {
		control_reply(req, false, "net del: %s (%s) is not a network card; use pci del or usb del",
		    e->id, e->driver);
		return;
	}
	req->id = xstrdup(e->id);
	req->netdev = xstrdup(netdev);
	control_detach(req);
}

/* --- pci --------------------------------------------------------------------- */

/* The host's PCI devices as the command needs them. Given an address, only
 * that device and its IOMMU group are read: a hot-add then costs the same
 * on a host with 15 devices as with 150. A regex is matched against every
 * device's line, so it needs them all. */
static int
control_pci_scan(struct host_snapshot *snap, const char *arg, struct verr *err)
{
	memset(snap, 0, sizeof(*snap));
	snap->sudo_uid = snap->sudo_gid = -1;
	if (!vfio_bind_addr_valid(arg))
		return pci_scan(snap, err);
	struct strv only = { 0 };
	pci_group_peers(arg, &only);
	int r = pci_scan_only(snap, &only, err);
	strv_free(&only);
	return r;
}

/* pci add passes exactly the one device it was given. */
static bool
control_pci_is(const struct pci_device *dev, void *arg)
{
	return dev == arg;
}

/* The one device arg names: an address, or a regex matching exactly one. */
static const struct pci_device *
control_pci_pick(const struct host_snapshot *snap, const char *arg, struct verr *err)
{
	if (vfio_bind_addr_valid(arg)) {
		const struct pci_device *d = snapshot_pci_find(snap, arg);
		if (d == NULL)
			verr_set(err, -ENOENT, "pci add: the host has no PCI device %s; `lspci -D` lists them", arg);
		return d;
	}
	regex_t re;
	if (passthrough_regex(&re, "pci add", arg, err) < 0)
		return NULL;
	const struct pci_device *found = NULL;
	struct strbuf names = { 0 };
	size_t n = 0;
	for (size_t i = 0; i < snap->n_pci; i++) {
		const struct pci_device *d = &snap->pci[i];
		if (passthrough_pci_is_bridge(d) || !passthrough_pci_matches(&re, d))
			continue;
		strbuf_printf(&names, "%s%s", n ? ", " : "", d->address);
		found = d;
		n++;
	}
	regfree(&re);
	if (n == 0)
		verr_set(err, -ENOENT, "pci add: no PCI device matches '%s'; `lspci -Dnn` shows what it is "
		    "matched against", arg);
	else if (n > 1)
		verr_set(err, -EINVAL, "pci add: '%s' matches %zu devices (%s); add one at a time: narrow the "
		    "regex or give the address", arg, n, names.s);
	strbuf_free(&names);
	return n == 1 ? found : NULL;
}

static void
control_pci_bound(const struct journal_result *res, void *arg)
{
	struct control_req *req = arg;
	struct control *c = req->c;
	req->job = NULL;
	control_changed(c);
	if (res->code < 0) {
		/* The journal gave the device back already (undo_on_failure). */
		if (res->undone)
			control_reply(req, false, "pci add: cannot bind %s to vfio-pci: %s; nothing changed: %s is "
			    "back with its own driver", req->addr, res->err.msg, req->addr);
		else
			control_reply(req, false, "pci add: cannot bind %s to vfio-pci: %s; the end of the run "
			    "retries", req->addr, res->err.msg);
		return;
	}
	int group = (int)change_arg_int(c->h.journal->entries[res->idx].change, "group", -1);
	char node[64];
	passthrough_vfio_group_node(node, sizeof(node), group);
	struct verr jerr = { 0 };
	if (control_chown(c, node, req->id, &jerr) < 0) {
		control_add_failed(req, jerr.msg);
		return;
	}
	if (control_qmp(c) == NULL) {
		control_add_failed(req, "QEMU's monitor closed during the bind");
		return;
	}
	control_device_add(req);
}

/* The bind pci add planned (req->change's "bind"), in a child. */
static void
control_pci_bind(struct control_req *req)
{
	struct control *c = req->c;
	struct verr err = { 0 };
	struct journal_apply_opts o = { .bindtimeout_ms = c->h.bindtimeout_ms, .undo_on_failure = true,
		.for_id = req->id };
	req->job = journal_apply_start(c->h.journal, c->h.base, json_object_get(req->change, "bind"), &o,
	    control_pci_bound, req, &err);
	if (req->job == NULL) {
		control_reply(req, false, "pci add: %s", err.msg);
		return;
	}
	control_changed(c);
}

static void
control_pci_module_loaded(const struct journal_result *res, void *arg)
{
	struct control_req *req = arg;
	req->job = NULL;
	control_changed(req->c);
	if (res->code < 0) {
		control_reply(req, false, "pci add: %s; nothing changed", res->err.msg);
		return;
	}
	control_pci_bind(req);
}

static void
control_cmd_pci_add(struct control_req *req)
{
	struct control *c = req->c;
	struct verr err = { 0 };
	struct host_snapshot snap;
	if (control_pci_scan(&snap, req->argv[0], &err) < 0) {
		snapshot_free(&snap);
		control_reply(req, false, "pci add: cannot read the host's PCI devices: %s", err.msg);
		return;
	}
	const struct pci_device *d = control_pci_pick(&snap, req->argv[0], &err);
	char id[64];
	if (d == NULL)
		goto refuse;
	passthrough_pci_id(id, sizeof(id), d->address);
	if (passthrough_pci_is_bridge(d)) {
		verr_set(&err, -EINVAL, "pci add: %s is a bridge: bridges stay with the host", d->line);
		goto refuse;
	}
	if (d->is_display) {
		verr_set(&err, -EINVAL, "pci add: %s is a display device: those are not hot-added (QEMU and the "
		    "drivers need them at boot); give it to -pci when starting the guest", d->line);
		goto refuse;
	}
	if (control_id_used(c, id)) {
		verr_set(&err, -EEXIST, "pci add: %s is already the guest's (%s)", d->address, id);
		goto refuse;
	}
	snapshot_claims_read(&snap, c->h.name);
	if (passthrough_pci_free(&snap, c->h.name, d, &err) < 0) {
		verr_prefix(&err, "pci add");
		goto refuse;
	}
	if (d->iommu_group < 0) {
		verr_set(&err, -EINVAL, "pci add: %s has no IOMMU group, so it cannot be passed through; enable "
		    "the IOMMU (intel_iommu=on or amd_iommu=on) and check dmesg", d->line);
		goto refuse;
	}
	const struct pci_device *peer = passthrough_pci_group_blocker(&snap, d, NULL, control_pci_is, (void *)d);
	if (peer != NULL) {
		verr_set(&err, -EINVAL, "pci add: %s shares IOMMU group %d with %s, which is bound to %s; a group "
		    "goes to the guest whole: add %s first, or unbind it from %s", d->address, d->iommu_group,
		    peer->line, peer->driver, peer->address, peer->driver);
		goto refuse;
	}
	/* The plan's device rules (interrupt remapping, a device the host
	 * needs, reset) and its locked-memory limit, with `force` as the
	 * plan's -force. */
	struct strv warns = { 0 };
	if (snapshot_device_facts(&snap, &err) < 0 || preflight_pci_check(&snap, d, c->h.memory_mib, req->force, &warns,
	    &err) < 0) {
		strv_free(&warns);
		verr_prefix(&err, "pci add");
		goto refuse;
	}
	for (size_t i = 0; i < warns.n; i++)
		log_warnx("pci add: %s", warns.v[i]);
	strv_free(&warns);
	if (control_take_port(req) == NULL) {
		verr_set(&err, -ENOSPC, "pci add: every root port of the guest is in use (%d); remove a device "
		    "first (pci del / net del)", c->h.devs->n_ports);
		goto refuse;
	}
	req->id = xstrdup(id);
	req->addr = xstrdup(d->address);
	req->change = json_pack("{s:o}", "device_add", devargs_vfio_pci(d->address, id, req->port));
	if (strcmp(d->driver, "vfio-pci") == 0) {
		/* Already on vfio-pci (someone bound it): nothing to change or give back. */
		snapshot_free(&snap);
		control_device_add(req);
		return;
	}
	json_object_set_new(req->change, "bind", vfio_bind_change_new(d->address, d->driver, d->iommu_group, false));
	snapshot_free(&snap);
	if (vfio_bind_driver_loaded()) {
		control_pci_bind(req);
		return;
	}
	/* A guest started without -pci, on a host that has not loaded vfio-pci
	 * since boot: load it first, journaled, as -pci's plan does. */
	json_t *load = vfio_bind_module_change_new();
	struct journal_apply_opts o = { .bindtimeout_ms = c->h.bindtimeout_ms };
	req->job = journal_apply_start(c->h.journal, c->h.base, load, &o, control_pci_module_loaded, req, &err);
	json_decref(load);
	if (req->job == NULL) {
		control_reply(req, false, "pci add: %s", err.msg);
		return;
	}
	control_changed(c);
	return;
refuse:
	snapshot_free(&snap);
	control_reply(req, false, "%s", err.msg);
}

static void
control_cmd_pci_del(struct control_req *req)
{
	struct control *c = req->c;
	const char *arg = req->argv[0];
	char id[64];
	if (vfio_bind_addr_valid(arg))
		passthrough_pci_id(id, sizeof(id), arg);
	else
		snprintf(id, sizeof(id), "%s", arg);
	const struct device_entry *e = devices_find(c->h.devs, id);
	if (e == NULL || strcmp(e->driver, "vfio-pci") != 0) {
		control_reply(req, false, "pci del: %s is not a host PCI device of the guest; `status` lists "
		    "them (ids hostdev-...)", arg);
		return;
	}
	const char *addr = json_string_value(json_object_get(e->args, "host"));
	if (addr == NULL) {
		control_reply(req, false, "pci del: %s was attached without a host address", id);
		return;
	}
	/* "In use": a storage controller while the guest has no virtual disk
	 * is what it booted from; taking it away pulls the root file system. */
	struct host_snapshot snap;
	struct verr err = { 0 };
	if (control_pci_scan(&snap, addr, &err) == 0 && !req->force && !c->h.has_disk_image) {
		const struct pci_device *d = snapshot_pci_find(&snap, addr);
		if (d != NULL && (d->class_code >> 16) == 0x01) {
			control_reply(req, false, "pci del: %s (%s) is a storage controller and the guest has no "
			    "virtual disk: it is what the guest boots from; add force as the last word to remove "
			    "it anyway", id, d->line);
			snapshot_free(&snap);
			return;
		}
	}
	snapshot_free(&snap);
	req->id = xstrdup(id);
	req->addr = xstrdup(addr);
	control_detach(req);
}

/* --- usb ----------------------------------------------------------------------- */

/* The USB area's watcher (usbwatch.h) does the matching, the xhci, the
 * dev-chown and the bookkeeping, one for hotplug and commands alike. */
static void
control_usb_done(int result, const char *msg, void *arg)
{
	if (result == -EINPROGRESS)
		control_reply_pending(arg, "%s", msg ? msg : "");
	else
		control_reply(arg, result == 0, "%s", msg ? msg : "");
}

static struct usbwatch *
control_usbwatch(struct control_req *req)
{
	struct usbwatch *uw = req->c->h.usb != NULL ? *req->c->h.usb : NULL;
	if (uw == NULL)
		control_reply(req, false, "%s: USB passthrough is not available in this run (its watcher did "
		    "not start; the supervisor's log says why)", req->entry->info.name);
	return uw;
}

static void
control_cmd_usb_add(struct control_req *req)
{
	struct usbwatch *uw = control_usbwatch(req);
	if (uw == NULL)
		return;
	struct verr err = { 0 };
	req->id = xstrdup(req->argv[0]);   /* listed in status while under way */
	if (usbwatch_attach_matching(uw, req->argv[0], control_usb_done, req, &err) < 0)
		control_reply(req, false, "%s", err.msg);
}

static void
control_cmd_usb_del(struct control_req *req)
{
	struct usbwatch *uw = control_usbwatch(req);
	if (uw == NULL)
		return;
	struct verr err = { 0 };
	req->id = xstrdup(req->argv[0]);
	if (usbwatch_detach(uw, req->argv[0], control_usb_done, req, &err) < 0)
		control_reply(req, false, "%s", err.msg);
}

/* --- the table ----------------------------------------------------------------- */

#define CMD(n, u, flg, mn, mx, fn, h) \
	{ .info = { .name = n, .usage = u, .help = h, .flags = flg }, .min_args = mn, .max_args = mx, .exec = fn }

const struct control_cmd_entry control_cmd_table[] = {
	CMD("pci add", "REGEX|ADDRESS [force]", CONTROL_CMD_GUEST | CONTROL_CMD_FORCE, 1, 1, control_cmd_pci_add,
	    "bind a host PCI device to vfio-pci and hot-add it"),
	CMD("pci del", "ID|ADDRESS [force]", CONTROL_CMD_GUEST | CONTROL_CMD_FORCE, 1, 1, control_cmd_pci_del,
	    "hot-remove a PCI device and give it back to its driver"),
	CMD("usb add", "REGEX", CONTROL_CMD_GUEST, 1, 1, control_cmd_usb_add,
	    "hot-add the host USB devices REGEX matches"),
	CMD("usb del", "ID|REGEX", CONTROL_CMD_GUEST, 1, 1, control_cmd_usb_del, "hot-remove USB devices"),
	CMD("net add", "user [hostfwd=RULE,...]|bridge=BR|tap=TAP", CONTROL_CMD_GUEST, 1, 8, control_cmd_net_add,
	    "hot-add a virtio network card"),
	CMD("net del", "ID", CONTROL_CMD_GUEST, 1, 1, control_cmd_net_del, "hot-remove a network card"),
	CMD("status", "", 0, 0, 0, control_cmd_status,
	    "what is attached (ids), free root ports, commands in flight"),
	CMD("powerdown", "", CONTROL_CMD_GUEST, 0, 0, control_cmd_powerdown, "press the guest's power button"),
	CMD("reset", "", CONTROL_CMD_GUEST, 0, 0, control_cmd_reset, "reset the guest"),
	CMD("quit", "", 0, 0, 0, control_cmd_quit, "stop QEMU now and put the host back"),
	CMD("help", "", 0, 0, 0, control_cmd_help, "this list"),
};
const size_t control_cmd_count = nitems(control_cmd_table);

const struct control_cmd_info *
control_cmd_info(size_t i)
{
	return i < control_cmd_count ? &control_cmd_table[i].info : NULL;
}

const struct control_cmd_entry *
control_cmd_find(char **words, size_t n, size_t *used, struct verr *err)
{
	for (size_t i = 0; i < control_cmd_count; i++) {
		const struct control_cmd_entry *e = &control_cmd_table[i];
		const char *sp = strchr(e->info.name, ' ');
		if (sp == NULL) {
			if (strcmp(words[0], e->info.name) == 0) {
				*used = 1;
				return e;
			}
			continue;
		}
		size_t l = (size_t)(sp - e->info.name);
		if (strlen(words[0]) != l || strncmp(words[0], e->info.name, l) != 0)
			continue;
		if (n < 2) {
			verr_set(err, -EINVAL, "%s needs add or del, e.g. %s add ...; see help", words[0], words[0]);
			return NULL;
		}
		if (strcmp(words[1], sp + 1) == 0) {
			*used = 2;
			return e;
		}
	}
	bool group = strcmp(words[0], "pci") == 0 || strcmp(words[0], "usb") == 0 || strcmp(words[0], "net") == 0;
	if (group)
		verr_set(err, -EINVAL, "%s %s: unknown; %s takes add or del; see help", words[0], words[1], words[0]);
	else
		verr_set(err, -EINVAL, "unknown command \"%.64s\"; help lists the commands", words[0]);
	return NULL;
}
