/* USB hotplug on the session's loop: see usbwatch.h.
 *
 * Every device we attach, are attaching, or wait to attach has an entry.
 * An entry is one incarnation of a device: sysfs path + bus + device number +
 * (vendor, product, serial). A remove event retires the incarnation; a later
 * add at the same path or address is a new one. An entry's QMP id is
 * usb-PORTPATH, so a device re-plugged into the same port while QEMU still
 * holds the old one waits for the old one's DEVICE_DELETED before its
 * device_add (QEMU refuses duplicate ids). Replies and removals carry a
 * request that outlives the watcher, so a watcher freed while QMP commands
 * are in flight is never touched by their late callbacks. */
#include "usbwatch.h"

#include <dirent.h>
#include <errno.h>
#include <libudev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "change.h"
#include "devown.h"
#include "hostroot.h"
#include "devargs.h"
#include "log.h"
#include "passthrough.h"
#include "snapshot.h"
#include "util.h"

#define USBWATCH_CMD_TIMEOUT_MS devices_cmd_timeout_ms()
/* Room for a burst (a hub with dozens of devices) while the loop is busy. */
#define USBWATCH_RCVBUF (8 * 1024 * 1024)

enum uw_state {
	UW_WAITING,              /* its id or the controller is not free yet */
	UW_ATTACHING,            /* device_add in flight */
	UW_ATTACHED,
	UW_DETACHING,            /* device_del in flight */
};

struct uw_op;

struct uw_entry {
	struct uw_entry *next;
	char *syspath;           /* "/sys/devices/.../1-4" (host path) */
	struct usb_device dev;
	char id[48];             /* usb-1-4 */
	enum uw_state state;
	bool gone;               /* unplugged while attaching: remove once attached */
	struct uw_op *op;        /* the command waiting for this device, or NULL */
};

/* One control command: done when every device of it is. */
struct uw_op {
	usbwatch_cb cb;
	void *arg;
	int pending;
	int result;
	struct strbuf ok, bad;
};

/* The argument of a QMP reply or a removal: outlives the watcher. */
struct uw_req {
	struct uw_req *next;
	struct usbwatch *uw;     /* NULL once the watcher is freed */
	struct uw_entry *e;      /* NULL for the controller */
	json_t *args;            /* device_add arguments */
};

struct usbwatch {
	struct usbwatch_env env;
	struct udev *udev;
	struct udev_monitor *mon;
	struct event *ev;
	struct uw_entry *entries;
	struct uw_req *reqs;
	bool xhci_ready, xhci_adding;
	char *source;
	struct usbwatch_stats stats;
};

static void uw_attach(struct usbwatch *uw, struct uw_entry *e);
static void uw_entry_remove(struct usbwatch *uw, struct uw_entry *e, const char *why);

/* --- commands' results ------------------------------------------------- */

static void
uw_op_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct uw_op *op = arg;
	char *msg = op->result < 0 ? xasprintf("%s%s%s", op->bad.s ? op->bad.s : "",
	    op->ok.s ? "; " : "", op->ok.s ? op->ok.s : "") : xstrdup(op->ok.s ? op->ok.s : "done");
	op->cb(op->result, msg, op->arg);
	free(msg);
	strbuf_free(&op->ok);
	strbuf_free(&op->bad);
	free(op);
}

/* One device of a command is done. The result goes out from the loop, never
 * from inside the call that started the command. */
static void
uw_op_done(struct usbwatch *uw, struct uw_op *op, int result, const char *msg)
{
	if (op == NULL)
		return;
	struct strbuf *sb = result < 0 ? &op->bad : &op->ok;
	if (sb->s != NULL)
		strbuf_puts(sb, "; ");
	strbuf_puts(sb, msg);
	/* an error outweighs a removal still pending, which outweighs success */
	if (result < 0 && (op->result == 0 || (op->result == -EINPROGRESS && result != -EINPROGRESS)))
		op->result = result;
	if (--op->pending == 0 && event_base_once(uw->env.base, -1, EV_TIMEOUT, uw_op_deliver, op, NULL) < 0)
		fatalx("cannot schedule a command's reply");
}

/* The command is set up: drop the hold uw_op_new() took. */
static void
uw_op_release(struct usbwatch *uw, struct uw_op *op)
{
	if (--op->pending == 0 && event_base_once(uw->env.base, -1, EV_TIMEOUT, uw_op_deliver, op, NULL) < 0)
		fatalx("cannot schedule a command's reply");
}

static void
uw_changed(struct usbwatch *uw)
{
	if (uw->env.changed != NULL)
		uw->env.changed(uw->env.arg);
}

/* --- entries ----------------------------------------------------------- */

static struct uw_entry *
uw_entry_new(struct usbwatch *uw, const char *syspath, const struct usb_device *dev)
{
	struct uw_entry *e = xcalloc(1, sizeof(*e));
	e->syspath = xstrdup(syspath);
	e->dev = *dev;
	passthrough_usb_id(e->id, sizeof(e->id), dev->sysname);
	/* newest last: waiting entries are served in plug order */
	struct uw_entry **pp = &uw->entries;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = e;
	return e;
}

static void
uw_entry_free(struct usbwatch *uw, struct uw_entry *e)
{
	for (struct uw_entry **pp = &uw->entries; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	for (struct uw_req *r = uw->reqs; r != NULL; r = r->next) {
		if (r->e == e)
			r->e = NULL;
	}
	free(e->syspath);
	free(e);
}

/* One incarnation of a device: its port, bus and address (the kernel gives
 * each enumeration a new address), and its IDs. Not its strings: a resync
 * may read a device while its string attributes are still unreadable and
 * its add event a moment later, and the two must not attach it twice. */
static bool
uw_same_device(const struct uw_entry *e, const char *syspath, const struct usb_device *d)
{
	return strcmp(e->syspath, syspath) == 0 && e->dev.bus == d->bus && e->dev.devnum == d->devnum &&
	    e->dev.vendor == d->vendor && e->dev.product == d->product;
}

static struct uw_entry *
uw_find_id(struct usbwatch *uw, const char *id, const struct uw_entry *except)
{
	for (struct uw_entry *e = uw->entries; e != NULL; e = e->next) {
		if (e != except && e->state != UW_WAITING && strcmp(e->id, id) == 0)
			return e;
	}
	return NULL;
}

/* Entries waiting for their id or the controller: try them again. */
static void
uw_retry_waiting(struct usbwatch *uw)
{
	struct uw_entry *e = uw->entries;
	while (e != NULL) {
		struct uw_entry *next = e->next;
		if (e->state == UW_WAITING)
			uw_attach(uw, e);
		e = next;
	}
}

static struct uw_req *
uw_req_new(struct usbwatch *uw, struct uw_entry *e, json_t *args)
{
	struct uw_req *r = xcalloc(1, sizeof(*r));
	r->uw = uw;
	r->e = e;
	r->args = args;
	r->next = uw->reqs;
	uw->reqs = r;
	return r;
}

static void
uw_req_free(struct uw_req *r)
{
	if (r->uw != NULL) {
		for (struct uw_req **pp = &r->uw->reqs; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		}
	}
	json_decref(r->args);
	free(r);
}

/* --- the controller ---------------------------------------------------- */

static void
uw_fail_waiting(struct usbwatch *uw, const char *why)
{
	struct uw_entry *e = uw->entries;
	while (e != NULL) {
		struct uw_entry *next = e->next;
		if (e->state == UW_WAITING) {
			char *msg = xasprintf("cannot attach %s (%s): %s", e->id, e->dev.line, why);
			log_warnx("%s", msg);
			uw->stats.attach_failed++;
			uw_op_done(uw, e->op, -EIO, msg);
			free(msg);
			uw_entry_free(uw, e);
		}
		e = next;
	}
}

static void
uw_xhci_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct uw_req *r = arg;
	struct usbwatch *uw = r->uw;
	if (uw != NULL) {
		uw->xhci_adding = false;
		if (err != NULL) {
			char *why = xasprintf("QEMU refused the USB controller (device_add qemu-xhci): %s",
			    err->desc);
			uw_fail_waiting(uw, why);
			free(why);
		} else {
			devices_attached(uw->env.devs, r->args);
			uw->xhci_ready = true;
			log_info("USB controller xhci hot-added into %s",
			    json_string_value(json_object_get(r->args, "bus")));
			uw_changed(uw);
			uw_retry_waiting(uw);
		}
	}
	uw_req_free(r);
}

/* The first USB device added while the command line has no controller:
 * hot-add qemu-xhci into a spare root port, then attach what waits for it. */
static void
uw_xhci_add(struct usbwatch *uw)
{
	if (uw->xhci_adding)
		return;
	char port[16];
	if (devices_free_port(uw->env.devs, port, sizeof(port)) == NULL) {
		uw_fail_waiting(uw, "no spare PCIe root port is left for a USB controller (qemu-xhci); "
		    "remove a hot-added PCI device first, or start the guest with -usb so it has one");
		return;
	}
	json_t *args = devargs_xhci(port);
	struct uw_req *r = uw_req_new(uw, NULL, args);
	uw->xhci_adding = true;
	log_info("adding a USB controller (qemu-xhci) into %s", port);
	struct verr err = { 0 };
	if (devices_add(uw->env.devs, uw->env.qmp, args, USBWATCH_CMD_TIMEOUT_MS, uw_xhci_reply, r, &err) < 0) {
		uw->xhci_adding = false;
		uw_req_free(r);
		uw_fail_waiting(uw, err.msg);
	}
}

/* --- attaching --------------------------------------------------------- */

/* usb-host opens /dev/bus/usb/BBB/DDD as QEMU's user: give it that node,
 * journaled like every host change so teardown and -restore give it back. */
static int
uw_chown_node(struct usbwatch *uw, const struct uw_entry *e, struct verr *err)
{
	if (uw->env.journal == NULL || uw->env.uid < 0)
		return 0;
	char target[48];
	passthrough_usb_node(target, sizeof(target), e->dev.bus, e->dev.devnum);
	json_t *change = devown_change_new(target, uw->env.uid, uw->env.gid);
	/* given back when the device leaves the guest (release.h) */
	struct journal_apply_opts o = { .undo_on_failure = true, .for_id = e->id };
	size_t idx;
	int r = journal_apply(uw->env.journal, change, &o, &idx, err);
	if (r == 0)
		log_info("host: dev-chown %s", target);
	json_decref(change);
	return r;
}

static void uw_attach_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg);

/* device_add timed out: QEMU has it and may still attach the device, so
 * what it has decides (devices_probe()). When it does not answer at all,
 * the device counts as attached: its id is not reused, and unplugging it
 * device_dels it. */
static void
uw_attach_found(enum devices_found found, const char *why, void *arg)
{
	struct uw_req *r = arg;
	if (found == DEVICES_ABSENT) {
		uw_attach_reply(NULL, NULL, &(struct qmp_error){ .class = "GenericError",
		    .desc = "it did not answer device_add in time, and then had no such device" }, r);
		return;
	}
	if (found == DEVICES_UNKNOWN && r->e != NULL)
		log_warnx("QEMU does not answer (device_add %s, then qom-list: %s): it may still attach it; "
		    "it counts as attached", r->e->id, why ? why : "no answer");
	else if (r->e != NULL)
		log_warnx("QEMU answered device_add %s late: it has the device", r->e->id);
	uw_attach_reply(NULL, NULL, NULL, r);
}

static void
uw_attach_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct uw_req *r = arg;
	struct usbwatch *uw = r->uw;
	struct uw_entry *e = r->e;
	if (uw == NULL || e == NULL) {
		uw_req_free(r);
		return;
	}
	if (err != NULL && strcmp(err->class, QMP_ERR_TIMEOUT) == 0) {
		devices_probe(uw->env.qmp, e->id, uw_attach_found, r);
		return;
	}
	if (err != NULL) {
		char *msg = xasprintf("cannot attach %s (%s): QEMU says: %s", e->id, e->dev.line, err->desc);
		log_warnx("%s; the guest carries on without it", msg);
		uw->stats.attach_failed++;
		uw_op_done(uw, e->op, -EIO, msg);
		free(msg);
		uw_req_free(r);
		uw_entry_free(uw, e);
		uw_retry_waiting(uw);
		return;
	}
	devices_attached(uw->env.devs, r->args);
	e->state = UW_ATTACHED;
	uw->stats.attached++;
	char *msg = xasprintf("attached %s (%s)", e->id, e->dev.line);
	log_info("USB: %s", msg);
	uw_op_done(uw, e->op, 0, msg);
	e->op = NULL;
	free(msg);
	uw_req_free(r);
	uw_changed(uw);
	if (e->gone)
		uw_entry_remove(uw, e, "it was unplugged while it was being attached");
}

static void
uw_attach(struct usbwatch *uw, struct uw_entry *e)
{
	e->state = UW_WAITING;
	if (!uw->xhci_ready) {
		uw_xhci_add(uw);
		return;
	}
	/* The id is taken: the previous device in this port is still being
	 * removed (or was attached by the plan and is stale). */
	if (uw_find_id(uw, e->id, e) != NULL || devices_find(uw->env.devs, e->id) != NULL) {
		log_debug("USB %s waits for the previous %s to be removed", e->dev.sysname, e->id);
		return;
	}
	struct verr err = { 0 };
	if (uw_chown_node(uw, e, &err) < 0) {
		char *msg = xasprintf("cannot attach %s (%s): %s", e->id, e->dev.line, err.msg);
		log_warnx("%s", msg);
		uw->stats.attach_failed++;
		uw_op_done(uw, e->op, err.code ? err.code : -EIO, msg);
		free(msg);
		uw_entry_free(uw, e);
		return;
	}
	json_t *args = devargs_usb_host(e->dev.bus, e->dev.devnum, e->id);
	struct uw_req *r = uw_req_new(uw, e, args);
	e->state = UW_ATTACHING;
	uw->stats.attach_sent++;
	log_debug("USB: device_add usb-host %s (bus %u address %u)", e->id, e->dev.bus, e->dev.devnum);
	if (devices_add(uw->env.devs, uw->env.qmp, args, USBWATCH_CMD_TIMEOUT_MS, uw_attach_reply, r, &err) < 0) {
		char *msg = xasprintf("cannot attach %s: %s", e->id, err.msg);
		uw_op_done(uw, e->op, -ENOTCONN, msg);
		free(msg);
		uw_req_free(r);
		uw_entry_free(uw, e);
	}
}

/* --- removing ---------------------------------------------------------- */

static void
uw_detach_done(const char *id, int result, const char *msg, void *arg)
{
	struct uw_req *r = arg;
	struct usbwatch *uw = r->uw;
	struct uw_entry *e = r->e;
	if (uw == NULL) {
		uw_req_free(r);
		return;
	}
	struct uw_op *op = e ? e->op : NULL;
	if (result == -EINPROGRESS) {
		/* The guest has not let go yet: the command hears so; the entry
		 * waits for the removal (this callback comes again then). */
		log_warnx("USB: %s", msg);
		uw_op_done(uw, op, result, msg);
		if (e != NULL)
			e->op = NULL;
		return;
	}
	if (result == 0) {
		uw->stats.removed++;
		char *ok = xasprintf("removed %s", id);
		log_info("USB: %s", ok);
		uw_op_done(uw, op, 0, ok);
		free(ok);
	} else {
		log_warnx("USB: %s", msg);
		uw_op_done(uw, op, result, msg);
	}
	if (e != NULL) {
		e->op = NULL;
		uw_entry_free(uw, e);
	}
	uw_req_free(r);
	uw_changed(uw);
	uw_retry_waiting(uw);
}

/* device_del the entry's device (attached) or forget it (not yet). */
static void
uw_entry_remove(struct usbwatch *uw, struct uw_entry *e, const char *why)
{
	switch (e->state) {
	case UW_WAITING: {
		char *msg = xasprintf("%s was not attached: %s", e->id, why);
		log_info("USB: %s", msg);
		uw_op_done(uw, e->op, -ENODEV, msg);
		free(msg);
		uw_entry_free(uw, e);
		return;
	}
	case UW_ATTACHING:
		e->gone = true;
		return;
	case UW_DETACHING:
		return;
	case UW_ATTACHED:
		break;
	}
	log_info("USB: removing %s (%s): %s", e->id, e->dev.line, why);
	struct uw_req *r = uw_req_new(uw, e, NULL);
	e->state = UW_DETACHING;
	int rc = devices_detach(uw->env.devs, uw->env.qmp, uw->env.base, e->id, devices_detach_wait_ms(), true,
	    uw_detach_done, r);
	if (rc == -ENOENT) {
		/* QEMU already let go of it (the guest ejected it). */
		char *msg = xasprintf("removed %s (QEMU had already let go of it)", e->id);
		log_info("USB: %s", msg);
		uw_op_done(uw, e->op, 0, msg);
		free(msg);
		uw_req_free(r);
		uw_entry_free(uw, e);
		uw_changed(uw);
		uw_retry_waiting(uw);
	} else if (rc < 0) {
		char *msg = xasprintf("cannot remove %s from the guest: %s", e->id, strerror(-rc));
		log_warnx("%s", msg);
		uw_op_done(uw, e->op, rc, msg);
		free(msg);
		e->op = NULL;
		uw_req_free(r);
		e->state = UW_ATTACHED;
	}
}

/* --- deciding ---------------------------------------------------------- */

static bool
uw_controller_passed(struct usbwatch *uw, const char *controller)
{
	if (controller[0] == '\0')
		return false;
	size_t i;
	json_t *p;
	if (uw->env.plan != NULL) {
		json_array_foreach(json_object_get(uw->env.plan->devices, "pci"), i, p) {
			const char *a = json_string_value(json_object_get(p, "address"));
			if (a != NULL && strcmp(a, controller) == 0)
				return true;
		}
	}
	for (size_t k = 0; k < uw->env.devs->n; k++) {
		const struct device_entry *d = &uw->env.devs->v[k];
		const char *host = json_string_value(json_object_get(d->args, "host"));
		if (strcmp(d->driver, "vfio-pci") == 0 && host != NULL && strcmp(host, controller) == 0)
			return true;
	}
	return false;
}

/* Whether dev may go to the guest under re (the plan's rules), with a
 * warning for a device its passed-through controller takes along. */
static bool
uw_wanted(struct usbwatch *uw, const regex_t *re, const struct usb_device *dev)
{
	if (re == NULL || !passthrough_usb_matches(re, dev))
		return false;
	if (uw_controller_passed(uw, dev->controller)) {
		log_warnx("-usb: %s (port %s) is behind controller %s, which -pci passes through whole; "
		    "it goes with it", dev->line, dev->sysname, dev->controller);
		return false;
	}
	/* Another guest's device stays with it (the rulebook's one rule). */
	struct host_snapshot claims = { 0 };
	struct verr err = { 0 };
	snapshot_claims_read(&claims, uw->env.guest);
	int r = passthrough_usb_free(&claims, uw->env.guest, dev, &err);
	free(claims.claims);
	if (r < 0) {
		log_warnx("usb: %s", err.msg);
		return false;
	}
	return true;
}

/* The usb-host device QEMU has under id at bus/devnum, attached by someone
 * else (the plan, the control FIFO), or NULL. */
static const struct device_entry *
uw_devs_find(struct usbwatch *uw, const char *id, unsigned bus, unsigned devnum)
{
	const struct device_entry *d = devices_find(uw->env.devs, id);
	if (d == NULL || strcmp(d->driver, "usb-host") != 0 ||
	    json_integer_value(json_object_get(d->args, "hostbus")) != bus ||
	    json_integer_value(json_object_get(d->args, "hostaddr")) != devnum)
		return NULL;
	return d;
}

/* Entries we think attached that QEMU no longer has (removed by the control
 * FIFO's own usb del, or ejected): forget them. */
static void
uw_prune(struct usbwatch *uw)
{
	struct uw_entry *e = uw->entries;
	while (e != NULL) {
		struct uw_entry *next = e->next;
		if (e->state == UW_ATTACHED && devices_find(uw->env.devs, e->id) == NULL)
			uw_entry_free(uw, e);
		e = next;
	}
}

static struct uw_entry *
uw_find_device(struct usbwatch *uw, const char *syspath, const struct usb_device *dev)
{
	for (struct uw_entry *e = uw->entries; e != NULL; e = e->next) {
		if (e->state != UW_DETACHING && uw_same_device(e, syspath, dev))
			return e;
	}
	return NULL;
}

/* A device present now (plugged, or found by a resync). Returns the entry
 * when an attach is under way for it. */
static struct uw_entry *
uw_device_present(struct usbwatch *uw, const char *syspath, const struct usb_device *dev, const regex_t *re,
    struct uw_op *op)
{
	uw_prune(uw);
	if (uw_find_device(uw, syspath, dev) != NULL)
		return NULL;     /* this incarnation is known: never twice */
	char id[48];
	passthrough_usb_id(id, sizeof(id), dev->sysname);
	if (uw_devs_find(uw, id, dev->bus, dev->devnum) != NULL && uw_find_id(uw, id, NULL) == NULL) {
		/* attached by the plan or the control FIFO: ours to remove on unplug */
		struct uw_entry *e = uw_entry_new(uw, syspath, dev);
		e->state = UW_ATTACHED;
		return NULL;
	}
	/* Another incarnation at the same path was never seen leaving. */
	for (struct uw_entry *e = uw->entries; e != NULL; e = e->next) {
		if (e->state != UW_DETACHING && strcmp(e->syspath, syspath) == 0) {
			uw_entry_remove(uw, e, "another device is in its place now");
			break;
		}
	}
	if (!uw_wanted(uw, re, dev)) {
		uw->stats.ignored++;
		log_debug("USB %s (%s) does not match: ignored", dev->sysname, dev->line);
		return NULL;
	}
	struct uw_entry *e = uw_entry_new(uw, syspath, dev);
	e->op = op;
	if (op != NULL)
		op->pending++;
	log_info("USB: %s (%s) matches: attaching it as %s", dev->sysname, dev->line, e->id);
	uw_attach(uw, e);
	return e;
}

static void
uw_device_gone(struct usbwatch *uw, const char *syspath, long busnum, long devnum)
{
	for (struct uw_entry *e = uw->entries; e != NULL; e = e->next) {
		if (e->state != UW_DETACHING && strcmp(e->syspath, syspath) == 0 &&
		    (devnum < 0 || (unsigned)devnum == e->dev.devnum)) {
			uw_entry_remove(uw, e, "it was unplugged");
			return;
		}
	}
	/* Attached by someone else (the control FIFO) and never seen by us. */
	const char *name = strrchr(syspath, '/');
	char id[48] = "";
	if (name != NULL)
		passthrough_usb_id(id, sizeof(id), name + 1);
	if (name != NULL && busnum >= 0 && devnum >= 0 &&
	    uw_devs_find(uw, id, (unsigned)busnum, (unsigned)devnum) != NULL && uw_find_id(uw, id, NULL) == NULL) {
		struct usb_device dev = { .bus = (unsigned)busnum, .devnum = (unsigned)devnum };
		snprintf(dev.sysname, sizeof(dev.sysname), "%s", name + 1);
		snprintf(dev.line, sizeof(dev.line), "bus %ld address %ld", busnum, devnum);
		struct uw_entry *e = uw_entry_new(uw, syspath, &dev);
		e->state = UW_ATTACHED;
		uw_entry_remove(uw, e, "it was unplugged");
		return;
	}
	log_debug("USB %s unplugged: not the guest's", syspath);
}

/* "/sys/devices/..." for HOST/sys/bus/usb/devices/NAME. */
static char *
uw_syspath_of(const char *dir, const char *name)
{
	char path[PATH_MAX], real[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) || realpath(path, real) == NULL)
		return NULL;
	const char *root = hostroot_get();
	size_t n = strlen(root);
	if (strncmp(real, root, n) != 0 || real[n] != '/')
		return NULL;
	return xstrdup(real + n);
}

/* Devices present now, in bus/address order, with their sysfs paths. */
struct uw_present {
	char *syspath;
	struct usb_device dev;
};

static int
uw_present_cmp(const void *a, const void *b)
{
	const struct uw_present *x = a, *y = b;
	if (x->dev.bus != y->dev.bus)
		return x->dev.bus < y->dev.bus ? -1 : 1;
	return (x->dev.devnum > y->dev.devnum) - (x->dev.devnum < y->dev.devnum);
}

static size_t
uw_scan(struct uw_present **out)
{
	*out = NULL;
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/bus/usb/devices") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strchr(de->d_name, ':') != NULL)
			continue;
		char *syspath = uw_syspath_of(dir, de->d_name);
		struct usb_device dev;
		struct verr err = { 0 };
		if (syspath == NULL || usb_device_read(syspath, &dev, &err) < 0) {
			free(syspath);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		(*out)[n++] = (struct uw_present){ syspath, dev };
	}
	closedir(d);
	if (n > 1)
		qsort(*out, n, sizeof(**out), uw_present_cmp);
	return n;
}

static void
uw_present_free(struct uw_present *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].syspath);
	free(p);
}

/* Bring the guest in line with the host: at start (the plan attached what
 * was there at the snapshot), and after the monitor lost events. */
static void
uw_resync(struct usbwatch *uw)
{
	struct uw_present *p;
	size_t n = uw_scan(&p);
	/* usb-host devices QEMU has (the plan's, or ours) whose device left. */
	for (size_t k = 0; k < uw->env.devs->n; k++) {
		const struct device_entry *d = &uw->env.devs->v[k];
		if (strcmp(d->driver, "usb-host") != 0)
			continue;
		json_int_t bus = json_integer_value(json_object_get(d->args, "hostbus"));
		json_int_t addr = json_integer_value(json_object_get(d->args, "hostaddr"));
		const struct uw_present *here = NULL;
		for (size_t i = 0; i < n && here == NULL; i++) {
			char id[48];
			passthrough_usb_id(id, sizeof(id), p[i].dev.sysname);
			if (p[i].dev.bus == bus && p[i].dev.devnum == addr && strcmp(id, d->id) == 0)
				here = &p[i];
		}
		struct uw_entry *e = uw_find_id(uw, d->id, NULL);
		if (here != NULL && e == NULL) {
			/* the plan attached it: from now on it is ours to remove */
			e = uw_entry_new(uw, here->syspath, &here->dev);
			e->state = UW_ATTACHED;
		} else if (here == NULL && e == NULL && passthrough_usb_port_of_id(d->id) != NULL) {
			/* gone before we watched: an entry just to remove it */
			struct usb_device ghost = { .bus = (unsigned)bus, .devnum = (unsigned)addr };
			snprintf(ghost.sysname, sizeof(ghost.sysname), "%s", passthrough_usb_port_of_id(d->id));
			snprintf(ghost.line, sizeof(ghost.line), "bus %u address %u", ghost.bus, ghost.devnum);
			e = uw_entry_new(uw, "", &ghost);
			e->state = UW_ATTACHED;
			uw_entry_remove(uw, e, "it is no longer plugged in");
		} else if (here == NULL && e != NULL && e->state == UW_ATTACHED) {
			uw_entry_remove(uw, e, "it was unplugged");
		}
	}
	/* Entries of ours whose device is no longer there. */
	struct uw_entry *e = uw->entries;
	while (e != NULL) {
		struct uw_entry *next = e->next;
		bool here = false;
		for (size_t i = 0; i < n && !here; i++)
			here = uw_same_device(e, p[i].syspath, &p[i].dev);
		if (!here && e->state != UW_DETACHING && e->syspath[0] != '\0')
			uw_entry_remove(uw, e, "it was unplugged");
		e = next;
	}
	for (size_t i = 0; i < n; i++)
		uw_device_present(uw, p[i].syspath, &p[i].dev, uw->env.re, NULL);
	uw_present_free(p, n);
}

/* --- the monitor ------------------------------------------------------- */

static void
uw_event(struct usbwatch *uw, struct udev_device *ud)
{
	const char *action = udev_device_get_action(ud);
	const char *syspath = udev_device_get_syspath(ud);
	if (action == NULL || syspath == NULL)
		return;
	uw->stats.events++;
	log_debug("udev: %s %s", action, syspath);
	if (strcmp(action, "add") == 0) {
		struct usb_device dev;
		struct verr err = { 0 };
		/* Gone again before we looked: its remove event follows. */
		if (usb_device_read(syspath, &dev, &err) < 0) {
			log_debug("%s", err.msg);
			return;
		}
		uw_device_present(uw, syspath, &dev, uw->env.re, NULL);
	} else if (strcmp(action, "remove") == 0) {
		const char *dn = udev_device_get_property_value(ud, "DEVNUM");
		const char *bn = udev_device_get_property_value(ud, "BUSNUM");
		uw_device_gone(uw, syspath, bn != NULL ? strtol(bn, NULL, 10) : -1,
		    dn != NULL ? strtol(dn, NULL, 10) : -1);
	}
}

static void
uw_readable(evutil_socket_t fd, short what, void *arg)
{
	struct usbwatch *uw = arg;
	/* Drain everything queued: a burst is handled in one wake-up. */
	for (;;) {
		errno = 0;
		struct udev_device *ud = udev_monitor_receive_device(uw->mon);
		if (ud == NULL) {
			if (errno == ENOBUFS) {
				/* The kernel dropped events: what is plugged now is the truth. */
				log_warnx("USB: the event queue overflowed; re-reading the USB devices");
				usbwatch_resync(uw);
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == 0)
				return;
			if (errno == EINTR)
				continue;
			/* a malformed or foreign message was dropped: keep reading */
			log_debug("udev monitor: %s", strerror(errno));
			return;
		}
		uw_event(uw, ud);
		udev_device_unref(ud);
	}
}

struct usbwatch *
usbwatch_new(const struct usbwatch_env *env)
{
	struct usbwatch *uw = xcalloc(1, sizeof(*uw));
	uw->env = *env;
	uw->xhci_ready = (env->plan != NULL && env->plan->has_xhci) || devices_find(env->devs, "xhci") != NULL;
	return uw;
}

static int
uw_monitor_open(struct usbwatch *uw, struct verr *err)
{
	if (uw->source != NULL)
		return uw->mon != NULL ? 0 : -ENODEV;
	/* libudev's "udev" source delivers nothing when udevd is not running. */
	char ctl[PATH_MAX];
	bool udevd = host_path(ctl, sizeof(ctl), "/run/udev/control") != NULL && host_exists(ctl);
	uw->source = xstrdup(udevd ? "udev" : "kernel");
	uw->udev = udev_new();
	uw->mon = uw->udev ? udev_monitor_new_from_netlink(uw->udev, uw->source) : NULL;
	if (uw->mon == NULL || udev_monitor_filter_add_match_subsystem_devtype(uw->mon, "usb", "usb_device") < 0 ||
	    udev_monitor_enable_receiving(uw->mon) < 0) {
		int e = errno ? errno : EIO;
		udev_monitor_unref(uw->mon);
		uw->mon = NULL;
		udev_unref(uw->udev);
		uw->udev = NULL;
		return verr_set(err, -e, "cannot watch USB devices (udev monitor, %s source): %s; devices "
		    "plugged in while the guest runs are not attached (use the control FIFO's usb add)",
		    uw->source, strerror(e));
	}
	if (udev_monitor_set_receive_buffer_size(uw->mon, USBWATCH_RCVBUF) < 0)
		log_debug("udev monitor: cannot enlarge its receive buffer");
	int fd = udev_monitor_get_fd(uw->mon);
	uw->ev = event_new(uw->env.base, fd, EV_READ | EV_PERSIST, uw_readable, uw);
	if (uw->ev == NULL || event_add(uw->ev, NULL) < 0)
		fatalx("cannot add the udev monitor to the loop");
	log_debug("watching USB devices (udev monitor, %s source)", uw->source);
	return 0;
}

int
usbwatch_start(struct usbwatch *uw, struct verr *err)
{
	int r = uw_monitor_open(uw, err);
	/* After the monitor is on: a device plugged in between is seen by one
	 * of the two, and seen twice it is still attached once. Without a
	 * monitor, still bring the guest in line with what is plugged now.
	 * Without -usb there is nothing to bring in line (the plan attached no
	 * USB device); the monitor only removes what commands attach. */
	if (uw->env.re != NULL)
		uw_resync(uw);
	return r;
}

void
usbwatch_free(struct usbwatch *uw)
{
	if (uw == NULL)
		return;
	if (uw->ev != NULL)
		event_free(uw->ev);
	udev_monitor_unref(uw->mon);
	udev_unref(uw->udev);
	for (struct uw_req *r = uw->reqs; r != NULL; r = r->next)
		r->uw = NULL;
	while (uw->entries != NULL) {
		struct uw_entry *e = uw->entries;
		if (e->op != NULL && --e->op->pending == 0) {
			strbuf_free(&e->op->ok);
			strbuf_free(&e->op->bad);
			free(e->op);
		}
		uw->entries = e->next;
		free(e->syspath);
		free(e);
	}
	free(uw->source);
	free(uw);
}

/* --- the control FIFO's commands --------------------------------------- */

static struct uw_op *
uw_op_new(usbwatch_cb cb, void *arg)
{
	struct uw_op *op = xcalloc(1, sizeof(*op));
	op->cb = cb;
	op->arg = arg;
	op->pending = 1;         /* held while the command is being set up */
	return op;
}

int
usbwatch_attach_matching(struct usbwatch *uw, const char *regex, usbwatch_cb cb, void *arg, struct verr *err)
{
	regex_t re;
	int r = passthrough_regex(&re, "usb add", regex, err);
	if (r < 0)
		return r;
	/* Devices attached by command are removed when unplugged, -usb or not. */
	struct verr merr = { 0 };
	if (uw->source == NULL && uw_monitor_open(uw, &merr) < 0)
		log_warnx("%s", merr.msg);
	struct uw_present *p;
	size_t n = uw_scan(&p);
	size_t matched = 0, started = 0;
	struct uw_op *op = uw_op_new(cb, arg);
	for (size_t i = 0; i < n; i++) {
		if (!passthrough_usb_matches(&re, &p[i].dev))
			continue;
		matched++;
		if (uw_find_device(uw, p[i].syspath, &p[i].dev) != NULL)
			continue;    /* attached, or on its way */
		/* NULL: behind a passed controller (warned). Otherwise the
		 * result of this device comes through op, even a failure
		 * found at once. */
		if (uw_device_present(uw, p[i].syspath, &p[i].dev, &re, op) != NULL)
			started++;
	}
	regfree(&re);
	uw_present_free(p, n);
	if (started == 0) {
		free(op);
		if (matched == 0)
			return verr_set(err, -ENOENT, "usb add: '%s' matches no USB device plugged in now "
			    "(root hubs never match, hubs only by their ID; see lsusb)", regex);
		return verr_set(err, -EALREADY, "usb add: every USB device '%s' matches is already attached "
		    "or cannot be (see the warnings)", regex);
	}
	uw_op_release(uw, op);
	return 0;
}

int
usbwatch_detach(struct usbwatch *uw, const char *id_or_regex, usbwatch_cb cb, void *arg, struct verr *err)
{
	uw_prune(uw);
	struct uw_entry *by_id = NULL;
	for (struct uw_entry *e = uw->entries; e != NULL && by_id == NULL; e = e->next) {
		if (e->state == UW_ATTACHED && strcmp(e->id, id_or_regex) == 0)
			by_id = e;
	}
	const struct device_entry *d = by_id == NULL ? devices_find(uw->env.devs, id_or_regex) : NULL;
	if (d != NULL && strcmp(d->driver, "usb-host") == 0) {
		/* attached by the plan or another path before we knew it */
		struct usb_device dev = {
			.bus = (unsigned)json_integer_value(json_object_get(d->args, "hostbus")),
			.devnum = (unsigned)json_integer_value(json_object_get(d->args, "hostaddr")),
		};
		const char *port = passthrough_usb_port_of_id(d->id);
		snprintf(dev.sysname, sizeof(dev.sysname), "%s", port != NULL ? port : d->id);
		snprintf(dev.line, sizeof(dev.line), "bus %u address %u", dev.bus, dev.devnum);
		by_id = uw_entry_new(uw, "", &dev);
		snprintf(by_id->id, sizeof(by_id->id), "%s", d->id);
		by_id->state = UW_ATTACHED;
	}
	regex_t re;
	bool have_re = false;
	if (by_id == NULL) {
		int r = passthrough_regex(&re, "usb del", id_or_regex, err);
		if (r < 0)
			return r;
		have_re = true;
	}
	struct uw_op *op = uw_op_new(cb, arg);
	size_t started = 0;
	struct uw_entry *e = uw->entries;
	while (e != NULL) {
		struct uw_entry *next = e->next;
		bool hit = e == by_id;
		if (!hit && have_re && e->state == UW_ATTACHED)
			hit = passthrough_usb_matches(&re, &e->dev);
		if (hit && e->state == UW_ATTACHED && e->op == NULL) {
			e->op = op;
			op->pending++;
			started++;
			uw_entry_remove(uw, e, "asked to");
		}
		e = next;
	}
	if (have_re)
		regfree(&re);
	if (started == 0) {
		free(op);
		return verr_set(err, -ENOENT, "usb del: no attached USB device is named '%s' (`status` lists "
		    "them with their ids)", id_or_regex);
	}
	uw_op_release(uw, op);
	return 0;
}

void
usbwatch_get_stats(const struct usbwatch *uw, struct usbwatch_stats *st)
{
	*st = uw->stats;
}

const char *
usbwatch_source(const struct usbwatch *uw)
{
	return uw->mon != NULL ? uw->source : NULL;
}

void
usbwatch_resync(struct usbwatch *uw)
{
	uw->stats.resyncs++;
	uw_resync(uw);
}
