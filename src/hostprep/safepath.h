/* Opening a host path without following what another user controls.
 *
 * A root process that resolves a path through a directory a user owns lets
 * that user choose, between any check and any use, where the path leads (a
 * directory swapped for a symlink to /etc). Here a path is resolved one
 * component at a time from the host root, each opened with O_NOFOLLOW, and
 * every directory walked through and every symlink followed must belong to
 * root or to this process's own user (a process running as the user may
 * follow the user's own links: it can only reach what the user can). A
 * directory anyone may write without the sticky bit is refused too. The
 * caller then works relative to the descriptor it gets (openat, renameat2,
 * unlinkat, fchownat), so nothing is resolved twice.
 *
 * Paths are host paths ("/dev/shm/looking-glass"), joined to the host root
 * (hostroot.h), which is trusted as it is; ".." never leaves it. */
#ifndef VFIO_SAFEPATH_H
#define VFIO_SAFEPATH_H

#include <sys/types.h>

#include "verr.h"

/* Open path with flags (O_NOFOLLOW is added for the last component, whose
 * symlinks are followed only under the rules above; O_CREAT|O_EXCL never
 * follows one). Returns the descriptor (O_CLOEXEC), or -errno with err
 * naming the component and what to do. */
int safepath_open(const char *path, int flags, mode_t mode, struct verr *err);

/* Open the directory holding path's last component (O_PATH | O_DIRECTORY)
 * and point *base at that component inside path ("vars.fd" of
 * "/vm/vars.fd"). The last component itself is not looked at: the caller
 * uses it relative to the descriptor. -EINVAL when it is "." or "..". */
int safepath_open_parent(const char *path, const char **base, struct verr *err);

#endif
