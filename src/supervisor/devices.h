/* What is attached to the guest over QMP: device ids, their drivers and the
 * root ports they sit in, so status.json can show it and hot-add can find a
 * free root port; and detaching, which is only over when QEMU says
 * DEVICE_DELETED for exactly that id. */
#ifndef VFIO_DEVICES_H
#define VFIO_DEVICES_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "qmp.h"

struct device_entry {
	char *id;
	char *driver;
	char *bus;               /* "rp3", "xhci.0", ... ("" when QEMU chose) */
	json_t *args;            /* the device_add arguments */
};

struct devices_detach;

struct devices {
	struct device_entry *v;
	size_t n, cap;
	int n_ports;             /* root ports rp1..rpN on the command line */
	struct devices_detach *detaching;   /* device_del in flight */
};

void devices_init(struct devices *d, int n_root_ports);
void devices_free(struct devices *d);

/* A device_add with these arguments succeeded. */
void devices_attached(struct devices *d, const json_t *device_add_args);
/* QEMU let go of the device. Returns 0, or -ENOENT when it was not attached. */
int devices_removed(struct devices *d, const char *id);
const struct device_entry *devices_find(const struct devices *d, const char *id);
/* The first root port "rpN" no attached device sits in, or NULL. */
const char *devices_free_port(const struct devices *d, char *buf, size_t len);
/* {"attached": [{"id","driver","bus"}...], "free_root_ports": ["rp3", ...]} */
json_t *devices_json(const struct devices *d);

/* Called once: result 0 when QEMU deleted the device (it is gone from d), or
 * -errno with a message naming the device. */
typedef void (*devices_detach_cb)(const char *id, int result, const char *msg, void *arg);

#define DEVICES_DETACH_TIMEOUT_MS 20000

/* device_del ID, then wait for DEVICE_DELETED naming exactly ID (not a child
 * path) for at most timeout_ms. Returns 0 when under way (cb will be called),
 * -ENOENT when ID is not attached, -EALREADY when it is already being removed.
 * The event reaches devices_deleted() through the session's event table. */
int devices_detach(struct devices *d, struct qmp *qmp, struct event_base *base, const char *id,
    int timeout_ms, devices_detach_cb cb, void *arg);

/* How long the supervisor waits for QEMU to answer a command it sends
 * while the guest runs: 30 s, or $VFIO_TEST_QMP_TIMEOUT_MS (a test hook,
 * vfioenv.h), so a QEMU that answers late is tested in seconds. */
int devices_cmd_timeout_ms(void);

/* After a timeout: QEMU did not answer a device_add in time, but has it and
 * may still carry it out. qom-list /machine/peripheral, which QEMU answers
 * after the late command (its monitor runs commands in order), says whether
 * device id exists (QEMU 7.2 has no query-netdev: a backend is deleted by
 * its id instead). cb runs once, from the loop or at once when the monitor
 * is closed (UNKNOWN, why says so). */
enum devices_found { DEVICES_ABSENT, DEVICES_PRESENT, DEVICES_UNKNOWN };
typedef void (*devices_found_cb)(enum devices_found found, const char *why, void *arg);
void devices_probe(struct qmp *qmp, const char *id, devices_found_cb cb, void *arg);

/* QEMU's DEVICE_DELETED with its data: a device_del in flight for exactly
 * that id completes (its callback runs), and a device the guest ejected by
 * itself leaves the list. Returns true when it named an attached device. */
bool devices_deleted(struct devices *d, const json_t *data);

#endif
