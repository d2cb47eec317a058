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
 * host GPU. Both can block in the kernel: they run in a child with their
 * deadline (change_ops.deadline_ms: -bindtimeout for the unbind, plus the
 * bounded waits inside), through journal_apply() like every host change. */
#ifndef VFIO_VFIO_BIND_H
#define VFIO_VFIO_BIND_H

#include <jansson.h>
#include <stdbool.h>

#include "change.h"

extern const struct change_ops vfio_bind_module_load_ops;
extern const struct change_ops vfio_bind_pci_ops;

#define VFIO_BIND_GROUP_WAIT_MS_DEFAULT 5000	/* for /dev/vfio/N to appear */
#define VFIO_BIND_RELEASE_RETRY_MS_DEFAULT 3000	/* a released device refusing its driver */

/* Tune the bounded waits (tests shorten them); <= 0 restores the default.
 * The deadline of pci-bind-vfio is -bindtimeout plus the longer of the two
 * plus 1 s: 11 s by default. A spare child (child.h) forked under other waits
 * is let go. */
void vfio_bind_set_waits(int group_wait_ms, int release_retry_ms);

/* True for a well-formed "DDDD:BB:SS.F". */
bool vfio_bind_addr_valid(const char *addr);

/* The pci-bind-vfio change for addr, now bound to driver ("" when none), in
 * IOMMU group (-1: not checked at prepare), a display function or not: the
 * one constructor of the kind, for the plan and the control FIFO alike. */
json_t *vfio_bind_change_new(const char *addr, const char *driver, int group, bool display);

/* The module-load change for vfio-pci (the plan's when it passes a device,
 * pci add's for a guest that had none), and whether vfio-pci is loaded. */
json_t *vfio_bind_module_change_new(void);
bool vfio_bind_driver_loaded(void);

#endif
