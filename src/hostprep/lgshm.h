/* Looking Glass shared memory: the file QEMU's ivshmem maps and
 * looking-glass-client reads, sized from -lgsize (default 64M, as the
 * original), owned by the invoking user, removed at teardown.
 *   {"action": "lg-shm-create", "target": "/dev/shm/looking-glass",
 *    "args": {"size_mib": 64, "uid": 1000, "gid": 1000}}
 * A file already there is refused unless root or QEMU's user owns it; then
 * it is replaced by a new one, and put back (its size, owner and mode, not
 * its bytes) at teardown. */
#ifndef VFIO_LGSHM_H
#define VFIO_LGSHM_H

#include <stdint.h>
#include <sys/types.h>

#include "change.h"

/* The change for -looking-glass with -lgsize size_mib, for the invoking user. */
json_t *lgshm_change(uint64_t size_mib, uid_t uid, gid_t gid);

extern const struct change_ops lg_shm_create_ops;

#endif
