/* The runtime directory /run/vfio/NAME (under the host root, mode 0700): the
 * journal, the pid/lock file, status.json, console.log. One supervisor owns a
 * name at a time, through flock() on the pid file; a journal left behind by a
 * killed supervisor blocks new runs until `vfio -restore NAME`. */
#ifndef VFIO_RUNDIR_H
#define VFIO_RUNDIR_H

#include "util.h"
#include "verr.h"

struct rundir {
	char *name;
	char *path;              /* host root joined */
	int lockfd;              /* the pid file, flock()ed while we own NAME */
};

/* The one rule for guest names (options, the runtime directory, vfioctl):
 * they become directory and socket names and vfioctl's first word, so 1-64
 * letters, digits, '-', '_', '.', not starting with '.' or '-'. The
 * message names the name; callers prefix the flag. */
int rundir_check_name(const char *name, struct verr *err);

/* For a new run: create the directory and own it. Refuses (-EBUSY) when a
 * live supervisor owns NAME, naming its pid, and (-EEXIST) when a journal of
 * an earlier run still lists host changes or a running QEMU. */
int rundir_create(struct rundir *rd, const char *name, struct verr *err);
/* For -restore: own an existing directory. -ENOENT when there is none,
 * -EBUSY when a live supervisor owns it. */
int rundir_claim(struct rundir *rd, const char *name, struct verr *err);
/* QEMU's own directory in it, for the sockets QEMU and its companions
 * make (SPICE, the guest agent, swtpm): QEMU runs as another user, who
 * cannot write in ours. */
#define RUNDIR_QEMU_DIR "qemu"
/* Create RUNDIR_QEMU_DIR (0700) for uid/gid, replacing a leftover one, and
 * let that user through the runtime directory (0710, group gid). uid <= 0:
 * QEMU runs as we do; the directory is ours. Removed by rundir_remove(). */
int rundir_make_qemu_dir(struct rundir *rd, int uid, int gid, struct verr *err);
/* A file in the directory, allocated. */
char *rundir_file(const struct rundir *rd, const char *file);
/* Everything was undone: keep the guest's console log under
 * /var/lib/vfio/NAME/, remove the directory (and /run/vfio when empty). */
int rundir_remove(struct rundir *rd, struct verr *err);
/* Give up ownership (the directory stays). */
void rundir_close(struct rundir *rd);

/* The names that have a runtime directory. */
void rundir_list(struct strv *names);

#endif
