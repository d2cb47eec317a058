/* What is attached to the guest over QMP: device ids, their drivers and the
 * root ports they sit in, so status.json can show it and hot-add can find a
 * free root port; and removing, which is over only when QEMU says
 * DEVICE_DELETED for exactly that id, however late.
 *
 * Every device_add is journaled before it is sent (devices_add(): a
 * supervisor that adopts the guest reads back what it attached), and so is
 * a device_del QEMU accepted: until the guest lets go, the removal is
 * pending (status shows it), and whoever asked hears so after the wait
 * they gave. When DEVICE_DELETED comes, even minutes later or for a device
 * the guest ejected by itself, the release hook gives back what the device
 * held on the host (release.h), and only then are the waiters answered. */
#ifndef VFIO_DEVICES_H
#define VFIO_DEVICES_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "qmp.h"
#include "verr.h"

struct journal;

struct device_entry {
	char *id;
	char *driver;
	char *bus;               /* "rp3", "xhci.0", ... ("" when QEMU chose) */
	json_t *args;            /* the device_add arguments */
	bool removing;           /* QEMU took device_del: waiting for the guest to let go */
};

struct devices_waiter;
struct devices;

/* Give back what the device held on the host, then call devices_released()
 * (from the loop, later or at once). args is only valid during the call. */
typedef void (*devices_release_fn)(void *arg, struct devices *d, const char *id, const json_t *args);

struct devices {
	struct device_entry *v;
	size_t n, cap;
	int n_ports;             /* root ports rp1..rpN on the command line */
	struct devices_waiter *waiters;   /* who waits for a removal */
	struct journal *journal; /* where device_add and device_del are recorded; NULL: nowhere */
	devices_release_fn release;
	void *release_arg;
};

void devices_init(struct devices *d, int n_root_ports);
void devices_free(struct devices *d);

/* Journal the device (when d has a journal), then send device_add with
 * args; cb gets QEMU's answer (call devices_attached() on success). 0, or
 * -errno with err set when nothing was sent (the journal or the monitor
 * failed; cb is not called). */
int devices_add(struct devices *d, struct qmp *qmp, const json_t *args, int timeout_ms, qmp_reply_cb cb,
    void *arg, struct verr *err);
/* A device_add with these arguments succeeded (or, adopting, QEMU has it). */
void devices_attached(struct devices *d, const json_t *device_add_args);
/* QEMU let go of the device. Returns 0, or -ENOENT when it was not attached. */
int devices_removed(struct devices *d, const char *id);
const struct device_entry *devices_find(const struct devices *d, const char *id);
/* The first root port "rpN" no attached device sits in, or NULL. */
const char *devices_free_port(const struct devices *d, char *buf, size_t len);
/* {"attached": [{"id","driver","bus","state"}...], "free_root_ports": ["rp3", ...]};
 * state is "attached" or "removing" (device_del pending). */
json_t *devices_json(const struct devices *d);

/* How a removal went: result 0 (msg: what was given back), -EINPROGRESS
 * when the guest had not let go within the wait (the removal stays
 * pending), or -errno with a message naming the device. */
typedef void (*devices_detach_cb)(const char *id, int result, const char *msg, void *arg);

#define DEVICES_DETACH_TIMEOUT_MS 20000
/* DEVICES_DETACH_TIMEOUT_MS, or $VFIO_TEST_DETACH_TIMEOUT_MS (a test hook:
 * pending removals in seconds). */
int devices_detach_wait_ms(void);

/* device_del ID (once: a removal already under way or pending is joined),
 * then wait for DEVICE_DELETED naming exactly ID (not a child path). cb is
 * called once: with the result, or with -EINPROGRESS after timeout_ms (and,
 * when follow is true, once more with the result when it comes). Returns 0
 * when under way, -ENOENT when ID is not attached, -ENOTCONN when the
 * monitor is closed. The event reaches devices_deleted() through the
 * session's event table. */
int devices_detach(struct devices *d, struct qmp *qmp, struct event_base *base, const char *id,
    int timeout_ms, bool follow, devices_detach_cb cb, void *arg);
/* A device the journal says a removed supervisor asked QEMU to remove
 * (adoption): pending, as if this one had asked. */
void devices_mark_removing(struct devices *d, const char *id);

/* A device QEMU does not have after all (its device_add failed): what was
 * made for it is released as for a removed one, then cb hears how that
 * went (once, from the loop or at once). */
void devices_give_back(struct devices *d, const char *id, const json_t *args, devices_detach_cb cb, void *arg);

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
/* Where QEMU lists the devices that have an id; devices_peripheral_ids()
 * reads its qom-list answer (each a child<DRIVER>) into {id: true}. */
#define DEVICES_PERIPHERAL "/machine/peripheral"
json_t *devices_peripheral_ids(const json_t *qom_list);
enum devices_found { DEVICES_ABSENT, DEVICES_PRESENT, DEVICES_UNKNOWN };
typedef void (*devices_found_cb)(enum devices_found found, const char *why, void *arg);
void devices_probe(struct qmp *qmp, const char *id, devices_found_cb cb, void *arg);

/* QEMU's DEVICE_DELETED with its data: the device leaves the list and is
 * released (the release hook, then devices_released()). Returns true when
 * it named an attached device. */
bool devices_deleted(struct devices *d, const json_t *data);
/* The release hook is done with id: its waiters hear result and msg (NULL:
 * "ID removed"). */
void devices_released(struct devices *d, const char *id, int result, const char *msg);

#endif
