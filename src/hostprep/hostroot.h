/* The host is a root directory: every host path (/sys, /proc, /dev, /run,
 * /etc, firmware) is joined to one root, "/" normally and $VFIO_HOST_ROOT in
 * tests. No code opens a host path any other way. */
#ifndef VFIO_HOSTROOT_H
#define VFIO_HOSTROOT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "verr.h"

/* Read $VFIO_HOST_ROOT (or use root when not NULL). Called once at start. */
void hostroot_init(const char *root);
/* "" for "/", else the root without a trailing slash. */
const char *hostroot_get(void);

/* Join fmt (an absolute host path) to the host root into buf. Returns buf, or
 * NULL when it does not fit. */
char *host_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, allocated. */
char *host_pathdup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool host_exists(const char *path);
int host_open(const char *path, int flags, mode_t mode);
/* Read a whole small file (sysfs attribute, /proc file); trailing newline kept.
 * Returns the allocated contents or NULL with errno set. */
char *host_read(const char *path, size_t *len_out);
/* Read a one-line attribute with trailing whitespace stripped. */
char *host_read_line(const char *path);
/* Write data with a single write() as sysfs expects; returns 0 or -errno. */
int host_write(const char *path, const char *data);
/* readlink() and return the basename of the target ("vfio-pci" for a driver
 * link), allocated, or NULL. */
char *host_link_basename(const char *path);
char *host_readlink(const char *path);

#endif
