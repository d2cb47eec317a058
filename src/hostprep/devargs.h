/* The arguments of QMP's device_add and netdev_add, one builder per kind of
 * device, so the plan's commands and those of the control FIFO and USB
 * hotplug are the same JSON for the same device. Each returns a new object
 * for qmp_send() or the plan. */
#ifndef VFIO_DEVARGS_H
#define VFIO_DEVARGS_H

#include <jansson.h>

/* A host PCI device in root port bus ("rp2"), as id (passthrough_pci_id()). */
json_t *devargs_vfio_pci(const char *address, const char *id, const char *bus);
/* A host USB device on the qemu-xhci controller "xhci", as id
 * (passthrough_usb_id()). */
json_t *devargs_usb_host(unsigned bus, unsigned devnum, const char *id);
/* The qemu-xhci controller "xhci", hot-added into root port bus. */
json_t *devargs_xhci(const char *bus);
/* A network card (driver "virtio-net-pci" or "e1000e") on netdev, in root
 * port bus; mac NULL: QEMU's choice. */
json_t *devargs_nic(const char *driver, const char *id, const char *netdev, const char *mac, const char *bus);

/* netdev_add: user-mode networking, hostfwd an array of {"str": RULE} or
 * NULL; a tap QEMU got as fdname (getfd), with vhost-net from vhostfdname
 * when not NULL. */
json_t *devargs_netdev_user(const char *id, json_t *hostfwd);
json_t *devargs_netdev_tap(const char *id, const char *fdname, const char *vhostfdname);

#endif
