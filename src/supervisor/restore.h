/* `vfio -restore [NAME]`: put the host back after a supervisor that was
 * killed (SIGKILL, OOM, power loss of the process) left its journal behind. */
#ifndef VFIO_RESTORE_H
#define VFIO_RESTORE_H

#include "options.h"
#include "util.h"
#include "verr.h"

/* opts->restore_name, or every stale name when it is NULL. Stops a QEMU the
 * journal names (pid and start time must both match), then undoes the journal
 * newest first. Returns the exit status: 0 when everything was restored (or
 * there was nothing to restore), 1 with a list of what could not be restored
 * and how to do it by hand. */
int restore_run(const struct options *opts);

/* One name. bindtimeout_ms bounds undos that may block (<= 0: default). failed gets a line per
 * change that could not be undone. Returns 0, or -errno with err filled when
 * the name cannot be restored at all (a live supervisor owns it). */
int restore_name(const char *name, int bindtimeout_ms, struct strv *failed, struct verr *err);

struct journal;
/* What both do with a journal: stop the QEMU it names (pid and start time
 * must match), then undo every change in force, newest first. Returns the
 * number of changes that could not be undone (each a line in failed), or
 * -errno with err set when QEMU would not go (nothing was undone). */
int restore_journal(struct journal *j, int bindtimeout_ms, struct strv *failed, struct verr *err);

#endif
