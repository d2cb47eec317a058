/* Starting QEMU: fork + execve with the plan's argv exactly (never a shell),
 * its monitor's and console's listening sockets and the console log as
 * fds 3, 5 and 4, the memlock limit raised, running as the invoking user,
 * in a session of its own with /dev/null for stdin: no terminal's hangup
 * or ^C reaches it, and it outlives its supervisor. */
#ifndef VFIO_SPAWN_H
#define VFIO_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "options.h"
#include "plan.h"
#include "util.h"
#include "verr.h"

/* Who QEMU runs as. */
struct spawn_user {
	bool drop;               /* false: stay as we are (not started through sudo, no -user) */
	uid_t uid;
	gid_t gid;
	gid_t *groups;           /* supplementary groups of that user */
	size_t n_groups;
	char *name;              /* for messages */
};

/* The plan's user (plan->qemu_user) when this process is root and it is
 * someone else; else drop stays false. */
void spawn_user_from_plan(struct spawn_user *u, const struct plan_user *pu);
void spawn_user_free(struct spawn_user *u);

/* The file to execute for the plan's argv[0] ($VFIO_QEMU or
 * qemu-system-x86_64, as main put it there): a name without '/' is looked
 * up in PATH, as execvp would, but before anything changes, so a missing
 * QEMU is an error message (-ENOENT) and not a failed child. argv itself
 * goes to QEMU unchanged. *path is allocated. */
int spawn_binary(const char *argv0, char **path, struct verr *err);

/* The memlock limit QEMU gets: unlimited as root (as the original's prlimit),
 * else guest memory plus a margin; capped, with a warning, to the hard limit
 * when we may not raise it (no CAP_SYS_RESOURCE). */
rlim_t spawn_memlock_limit(uint64_t memory_mib);

/* QEMU's whole environment, nothing inherited but what the table in
 * spawn.c lets through for a feature the argv uses (documented in vfio(1),
 * QEMU'S ENVIRONMENT): PATH=/usr/bin:/bin, HOME of QEMU's user, the locale
 * and TZ, and for a window or PipeWire audio the display variables and
 * XDG_RUNTIME_DIR. Names listed in $VFIO_TEST_QEMU_ENV (a test hook,
 * vfioenv.h) are passed too. */
void spawn_env(struct strv *env, const struct strv *argv, const struct spawn_user *user);
/* The descriptors QEMU is born with, which the plan's argv names: the QMP
 * monitor's listening socket (-chardev socket,fd=3,server=on), the console
 * log (-add-fd fd=4,set=1, the console chardev's logfile=/dev/fdset/1) and
 * the serial console's listening socket (fd=5). The supervisor makes them
 * all (rundir_listen()): QEMU, dropped to the user, could not create
 * anything in the root-only runtime directory, and sockets QEMU listens on
 * let any later supervisor reconnect (adoption). */
#define SPAWN_QMP_FD 3
#define SPAWN_CONSOLE_FD 4
#define SPAWN_CONSOLE_FDSET 1
#define SPAWN_CONSOLE_SOCK_FD 5

struct spawn_req {
	const char *path;                /* from spawn_binary() */
	const struct strv *argv;         /* the plan's, exactly */
	const struct strv *env;          /* from spawn_env(); NULL: spawn_qemu makes it */
	int qmp_fd;                      /* the monitor's listening socket: fd 3 in QEMU */
	const struct spawn_user *user;
	int console_fd;                  /* console.log open for writing: SPAWN_CONSOLE_FD */
	int console_sock_fd;             /* the console's listening socket: SPAWN_CONSOLE_SOCK_FD
	                                  * (either may be -1: nothing there) */
	rlim_t memlock;                  /* bytes */
};

/* fork + execve. QEMU keeps stdin (/dev/null), stdout, stderr and fds 3-5,
 * nothing else of ours. Returns 0
 * with *pid set once QEMU's image is running, or -errno with err filled
 * when the exec failed (the child is then reaped). */
int spawn_qemu(const struct spawn_req *req, pid_t *pid, struct verr *err);

#endif
