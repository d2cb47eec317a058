/* USB passthrough while the guest runs: a libudev monitor (the "udev" source
 * when udevd runs, the "kernel" source otherwise) on the session's loop
 * attaches USB devices that match -usb as they are plugged in and removes
 * attached ones with device_del when they are unplugged; the control FIFO's
 * `usb add REGEX` / `usb del ID|REGEX` come through the same bookkeeping, so
 * a device is never attached twice. A qemu-xhci controller is hot-added into
 * a spare root port the first time it is needed and the command line has
 * none. QEMU's user gets each attached device node (dev-chown, journaled).
 *
 * Devices are known by their sysfs path, device number and (vendor, product,
 * serial): a bus/address reused by another device after an unplug is a new
 * device. Their QMP id is usb-PORTPATH ("usb-1-4.2", passthrough_usb_id()). */
#ifndef VFIO_USBWATCH_H
#define VFIO_USBWATCH_H

#include <event2/event.h>
#include <regex.h>
#include <stdbool.h>

#include "devices.h"
#include "journal.h"
#include "plan.h"
#include "qmp.h"
#include "verr.h"

struct usbwatch;

/* What the session lends the watcher; everything must outlive it. */
struct usbwatch_env {
	struct event_base *base;
	struct qmp *qmp;
	struct devices *devs;        /* the session's attach bookkeeping */
	struct journal *journal;     /* where dev-chown is recorded; NULL: no chown */
	int uid, gid;                /* QEMU's user when it is not us (chown the nodes), else -1 */
	const regex_t *re;           /* -usb: attach matching devices as they come; NULL: only by command */
	const struct plan *plan;     /* has_xhci (a qemu-xhci on the command line) and devices.pci
	                              * (controllers passed whole) */
	void (*changed)(void *arg);  /* something was attached or removed: status.json is stale */
	void *arg;
	const char *guest;           /* this guest's name: devices other guests have are refused */
};

/* Copies env. Nothing happens until usbwatch_start(). */
struct usbwatch *usbwatch_new(const struct usbwatch_env *env);
/* Open the monitor (its fd becomes an EV_READ|EV_PERSIST event on env.base),
 * then, with -usb (env.re), bring the guest in line with the host: matching
 * devices present now and not attached are attached; attached usb-host
 * devices whose device is gone are removed. Without -usb the monitor only
 * removes unplugged devices that commands attached. Returns -errno with err filled when no monitor can be
 * opened (hotplug then does not work; the guest keeps what it has). */
int usbwatch_start(struct usbwatch *uw, struct verr *err);
/* Re-read the USB devices and bring the guest in line, as after the
 * monitor lost events (ENOBUFS): attach what matches and is new, remove what
 * left. The control FIFO may offer it; tests use it to stand in for lost
 * events. */
void usbwatch_resync(struct usbwatch *uw);
/* Stop watching; pending QMP replies are ignored afterwards. NULL is fine. */
void usbwatch_free(struct usbwatch *uw);

/* The result of a command: result 0 and msg "attached usb-1-4 (Bus 001 ...)"
 * / "removed usb-1-4", or -errno and msg naming the device and the fix. Called
 * exactly once, from the loop, after every device of the command is done. */
typedef void (*usbwatch_cb)(int result, const char *msg, void *arg);

/* `usb add REGEX`: attach every device present now that matches (root hubs
 * never, hubs only by ID, devices behind a -pci controller skipped) and is
 * not attached yet. Returns 0 when under way (cb will be called), or -errno
 * with err filled and no callback: -EINVAL for a bad regex, -ENOENT when
 * nothing matches, -EALREADY when every match is already attached. */
int usbwatch_attach_matching(struct usbwatch *uw, const char *regex, usbwatch_cb cb, void *arg,
    struct verr *err);
/* `usb del ID|REGEX`: device_del the attached usb-host device with that QMP
 * id, or every attached one whose match text matches the regex. Returns 0
 * when under way (cb will be called), or -errno with err filled: -ENOENT when
 * nothing attached is named, -EINVAL for a bad regex. */
int usbwatch_detach(struct usbwatch *uw, const char *id_or_regex, usbwatch_cb cb, void *arg,
    struct verr *err);

/* Counters for tests and status: uevents read, device_adds sent, devices
 * attached, attaches that failed, devices removed, devices that did not
 * match, re-reads after lost events. */
struct usbwatch_stats {
	unsigned long events, attach_sent, attached, attach_failed, removed, ignored, resyncs;
};
void usbwatch_get_stats(const struct usbwatch *uw, struct usbwatch_stats *st);
/* The monitor's source: "udev" (udevd runs: /run/udev/control exists),
 * "kernel", or NULL when no monitor was opened. */
const char *usbwatch_source(const struct usbwatch *uw);

#endif
