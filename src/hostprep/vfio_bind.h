/* Moving PCI devices to vfio-pci for the guest and giving them back to their
 * own drivers afterwards, as reversible host changes (change.h):
 *
 *   module-load    target "vfio-pci": modprobe it when
 *                  /sys/bus/pci/drivers/vfio-pci is missing ($VFIO_MODPROBE
 *                  overrides /sbin/modprobe). Undo leaves it loaded.
 *   pci-bind-vfio  target "0000:01:00.0", args {"group": N, "display": bool}:
 *                  driver_override = vfio-pci, unbind from its driver,
 *                  drivers_probe, verify, then wait (bounded) for
 *                  /dev/vfio/N once the whole group is on vfio-pci. Undo
 *                  clears driver_override, unbinds from vfio-pci and binds
 *                  the saved driver again, retrying briefly while a just
 *                  released device refuses, and verifies the driver link. A
 *                  device that had no driver stays on vfio-pci: undo returns
 *                  0 with err->msg saying so (a note for the rundown).
 *
 * driver_override, never new_id: new_id would also capture an identical
 * host GPU. Both applies can block in the kernel: run them with child_run()
 * or child_start(), never in the event loop. */
#ifndef VFIO_VFIO_BIND_H
#define VFIO_VFIO_BIND_H

#include <jansson.h>
#include <stdbool.h>

#include "change.h"
#include "child.h"
#include "verr.h"

extern const struct change_ops vfio_bind_module_load_ops;
extern const struct change_ops vfio_bind_pci_ops;

#define VFIO_BIND_GROUP_WAIT_MS_DEFAULT 5000	/* for /dev/vfio/N to appear */
#define VFIO_BIND_RELEASE_RETRY_MS_DEFAULT 3000	/* a released device refusing its driver */

/* Tune the bounded waits (tests shorten them); <= 0 restores the default. */
void vfio_bind_set_waits(int group_wait_ms, int release_retry_ms);

/* The deadline to give child_run()/child_start() for a pci-bind-vfio apply
 * or undo: -bindtimeout (bindtimeout_ms, <= 0 for the default) for the
 * unbind, plus the bounded waits inside (for /dev/vfio/N, for a device
 * refusing its driver), so those report their own failure instead of being
 * cut off as a hang. The functions below take -bindtimeout and use it. */
int vfio_bind_timeout_ms(int bindtimeout_ms);

/* True for a well-formed "DDDD:BB:SS.F". */
bool vfio_bind_addr_valid(const char *addr);

/* The change object the plan would emit for addr (hot add). */
json_t *vfio_bind_change_new(const char *addr, int group, bool display);

/* Hot attach, host side, synchronous (outside the event loop): prepare, then
 * record(change, saved, arg) (the journal; may be NULL) and apply in a child
 * (timeout_ms is -bindtimeout, see vfio_bind_timeout_ms()). On failure the device is given back (undo) so nothing is
 * left changed, and err says what failed. On success *change and *saved (new
 * references) are what vfio_release_device() needs. */
int vfio_bind_device(const char *addr, int timeout_ms,
    int (*record)(const json_t *change, const json_t *saved, void *arg), void *record_arg,
    json_t **change, json_t **saved, struct verr *err);

/* Hot detach, host side, synchronous: after QEMU let go of the device
 * (DEVICE_DELETED), undo in a child with timeout_ms. Returns 0 (err may hold
 * a note) or -errno with err saying what failed. */
int vfio_release_device(const json_t *change, const json_t *saved, int timeout_ms, struct verr *err);

/* The same two inside the event loop: prepare (and journal) first with
 * vfio_bind_pci_ops.prepare, then start the apply; cb gets the result (see
 * child_start). Release likewise runs the undo. */
struct child_job *vfio_bind_device_start(struct event_base *base, const json_t *change,
    const json_t *saved, int timeout_ms, child_done_cb cb, void *arg, struct verr *err);
struct child_job *vfio_release_device_start(struct event_base *base, const json_t *change,
    const json_t *saved, int timeout_ms, child_done_cb cb, void *arg, struct verr *err);

#endif
