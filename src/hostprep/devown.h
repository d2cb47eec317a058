/* dev-chown: give QEMU's user a device node or file, and give it back. */
#ifndef VFIO_DEVOWN_H
#define VFIO_DEVOWN_H

#include "change.h"

extern const struct change_ops devown_change_ops;

#endif
