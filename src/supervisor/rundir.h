/* The runtime directory /run/vfio/NAME (under the host root, mode 0700): the
 * journal, the pid/lock file, status.json, console.log. One supervisor owns a
 * name at a time, through flock() on the pid file; a journal left behind by a
 * killed supervisor blocks new runs until `vfio -restore NAME`. */
#ifndef VFIO_RUNDIR_H
#define VFIO_RUNDIR_H

#include <sys/types.h>

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

/* For a run: create the directory (or take the one there) and own it.
 * Refuses (-EBUSY) when a live supervisor owns NAME, naming its pid. What
 * an earlier run left in it is the caller's to look at (adopt.h). */
int rundir_create(struct rundir *rd, const char *name, struct verr *err);
/* Remove what an earlier run left (its journal, status, sockets, ...), for
 * a new start. */
void rundir_clear(struct rundir *rd);
/* For -restore: own an existing directory. -ENOENT when there is none,
 * -EBUSY when a live supervisor owns it. */
int rundir_claim(struct rundir *rd, const char *name, struct verr *err);
/* /run/vfio/NAME under the host root, allocated. */
char *rundir_path(const char *name);
/* The pid of the live supervisor that owns NAME, or 0 (none, or a dead
 * one's leftover lock): read without taking the lock or changing anything. */
pid_t rundir_supervisor(const char *name);
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
/* The sockets QEMU serves its monitor and console on (a run's whole life,
 * so a later supervisor can adopt the guest): created here, root's, 0600,
 * listening, and handed to QEMU as descriptors, so QEMU (not root) never
 * creates anything in the directory. A leftover of a dead run is replaced. */
#define RUNDIR_QMP_SOCK "qmp.sock"
#define RUNDIR_CONSOLE_SOCK "console.sock"
int rundir_listen(const struct rundir *rd, const char *file, int *fd, struct verr *err);
/* Connect to one of them (non-blocking, close-on-exec). */
int rundir_connect(const char *dir, const char *file, int *fd, struct verr *err);
/* Everything was undone: keep the guest's console log under
 * /var/lib/vfio/NAME/, remove the directory (and /run/vfio when empty). */
int rundir_remove(struct rundir *rd, struct verr *err);
/* Give up ownership (the directory stays). */
void rundir_close(struct rundir *rd);

/* The names that have a runtime directory. */
void rundir_list(struct strv *names);

#endif
