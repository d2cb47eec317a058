/* dev-chown: give QEMU's user a device node or file, and give it back. */
#ifndef VFIO_DEVOWN_H
#define VFIO_DEVOWN_H

#include "change.h"

extern const struct change_ops devown_change_ops;

/* The dev-chown change giving path (a host path: /dev/vfio/11,
 * /dev/bus/usb/001/004) to uid:gid: the one constructor of the kind, for the
 * plan and the run-time paths alike. */
json_t *devown_change_new(const char *path, int uid, int gid);

#endif
