/* Doing a piece of file work as another user. When root makes a file in a
 * place the user chose (the UEFI variable store of -createvars), the safe
 * way is to let a process running as that user do it: it can then reach
 * only what the user could reach anyway, however the user rearranges their
 * directories meanwhile, and what it makes already belongs to the user. */
#ifndef VFIO_ASUSER_H
#define VFIO_ASUSER_H

#include <sys/types.h>

#include "verr.h"

typedef int (*asuser_fn)(void *arg, struct verr *err);

/* Run fn(arg, err) in a child process that runs as uid/gid with that user's
 * groups, is not dumpable (the user cannot attach to it) and holds none of
 * this process's descriptors; return what fn returned (>= 0 values too) and
 * the message it set. fn runs here when uid is this process's own. The
 * child dies with this process. */
int asuser_run(uid_t uid, gid_t gid, asuser_fn fn, void *arg, struct verr *err);

#endif
