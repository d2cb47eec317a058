/* The passthrough rulebook: which devices a regex selects, whether an IOMMU
 * group can be handed over, the ids devices get in the guest and the device
 * nodes QEMU's user opens. The plan (-pci, -usb), the control FIFO (pci
 * add, usb add, usb del) and USB hotplug all call these, so the dry run and
 * every run-time path agree: a rule copied is a future disagreement.
 *
 * Every regex a user gives is compiled by passthrough_regex_compile(). */
#ifndef VFIO_PASSTHROUGH_H
#define VFIO_PASSTHROUGH_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"
#include "verr.h"

/* ---- regexes ---- */

/* Compile a regex the user gave (what names where it came from: "-pci",
 * "usb add"), POSIX extended plus cflags. -EINVAL with err saying what is
 * wrong with it. The one place a user's pattern reaches regcomp(). */
int passthrough_regex_compile(regex_t *re, int cflags, const char *what, const char *pattern,
    struct verr *err);

/* A passthrough pattern as the original script took it: leading and
 * trailing '|' are dropped (an escaped one stays); nothing left is refused,
 * naming what and an example. *out is the pattern (allocated). */
int passthrough_pattern(const char *what, const char *given, char **out, struct verr *err);

/* passthrough_pattern() then passthrough_regex_compile(), case-sensitive:
 * -pci, -usb, pci add, usb add and usb del all select devices this way. */
int passthrough_regex(regex_t *re, const char *what, const char *given, struct verr *err);

/* ---- PCI ---- */

/* Host, ISA, PCI and other bridges (class 0x06xx) belong to the host: never
 * passed through, and never a reason to refuse a group. */
bool passthrough_pci_is_bridge(const struct pci_device *d);
/* re matches the device's `lspci -Dnn` line. Bridges are left to the caller
 * (the plan warns about them, pci add refuses them). */
bool passthrough_pci_matches(const regex_t *re, const struct pci_device *d);
/* A driver a device may keep while another device of its IOMMU group goes
 * to the guest: none, vfio-pci, pci-stub. */
bool passthrough_pci_driver_harmless(const char *driver);
/* The next device of d's IOMMU group after after (NULL: the first), in
 * snapshot order, that keeps the group from going to the guest: not passed
 * (passed(dev, arg) false), not a bridge, bound to a driver that is not
 * harmless. NULL when there is none more: the group is viable. */
const struct pci_device *passthrough_pci_group_blocker(const struct host_snapshot *snap,
    const struct pci_device *d, const struct pci_device *after,
    bool (*passed)(const struct pci_device *dev, void *arg), void *arg);
/* The guest's id for a host PCI device: "hostdev-0000-02-00-0". */
void passthrough_pci_id(char *buf, size_t len, const char *address);
/* The node QEMU opens for a group: "/dev/vfio/11". */
void passthrough_vfio_group_node(char *buf, size_t len, int group);

/* One device, one guest: 0 when no other guest than self (the guest
 * asking, by name) has d or a device of its IOMMU group (QEMU holds a
 * group's node whole) as snap->claims say; else -EBUSY with err naming the
 * other guest and how to free the device. The plan (-pci) and pci add call
 * it, as libvirt keeps its list of active host devices. */
int passthrough_pci_free(const struct host_snapshot *snap, const char *self, const struct pci_device *d,
    struct verr *err);

/* ---- USB ---- */

/* re selects the device: never a root hub; a hub only by its ID
 * ("05e3:0610": it carries whatever is plugged into it); any other device
 * by its lsusb line, its own manufacturer, product or serial string, or its
 * port path ("1-4.2"), each matched on its own. */
bool passthrough_usb_matches(const regex_t *re, const struct usb_device *dev);
/* The guest's id for a USB device: "usb-" and its port path, "usb-1-4.2";
 * the port path back from an id (NULL when id is not one). */
void passthrough_usb_id(char *buf, size_t len, const char *sysname);
const char *passthrough_usb_port_of_id(const char *id);
/* The node usb-host opens: "/dev/bus/usb/001/004". */
void passthrough_usb_node(char *buf, size_t len, unsigned bus, unsigned devnum);
/* The same rule for a USB device (its port or its node): -usb, usb add and
 * hotplug call it. */
int passthrough_usb_free(const struct host_snapshot *snap, const char *self, const struct usb_device *u,
    struct verr *err);

#endif
