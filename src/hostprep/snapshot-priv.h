/* Helpers shared by the snapshot readers (pci.c, usb.c, cpu.c, ...) and the
 * internals their tests reach. Not part of the snapshot contract. */
#ifndef VFIO_SNAPSHOT_PRIV_H
#define VFIO_SNAPSHOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

/* Grow *arr (of *n elements, *cap allocated) by one zeroed element and return
 * it; doubling keeps a 10 000-device scan linear. */
void *snap_grow(void *arrp, size_t *n, size_t *cap, size_t size);

/* Copy src into a fixed-size field, cutting what does not fit. */
void snap_copy(char *dst, size_t len, const char *src);

/* Read a sysfs attribute under the host root as an unsigned number in base
 * (0: auto). Returns false when absent or not a number. */
bool snap_read_ulong(const char *path, int base, unsigned long long *out);

/* Parse a kernel CPU list ("0-3,8,10-11") calling fn for each CPU; returns
 * false on a malformed list. */
bool snap_parse_cpulist(const char *s, void (*fn)(int cpu, void *arg), void *arg);

/* usb.c: where names come from, for the tests of the fallbacks. use_hwdb
 * false skips the udev hwdb; usb_ids NULL restores the system usb.ids. */
void usb_names_set_sources(bool use_hwdb, const char *usb_ids);
/* usb.c: fill manufacturer/product strings that sysfs lacks from the
 * descriptors through libusb; only on the real root. Never fails. Returns
 * how many devices libusb listed (-1 when libusb could not start). */
int usb_fill_from_libusb(struct host_snapshot *snap);

/* snapshot.c: the whole disk a block device name belongs to: "nvme0n1p2" ->
 * "nvme0n1", "sda1" -> "sda", "mmcblk0p1" -> "mmcblk0", "sda" -> "sda". A
 * name /sys/block knows as a disk is kept as is. */
void snapshot_disk_of(const char *name, char *out, size_t len);

#endif
