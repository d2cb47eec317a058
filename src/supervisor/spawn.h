/* Starting QEMU: fork + execve with the plan's argv exactly (never a shell),
 * the QMP socketpair end as fd 3, the memlock limit raised, running as the
 * invoking user; without a terminal for the console (the plan then put it
 * in console.log) QEMU gets /dev/null and a process group of its own. */
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
 * monitor (-chardev socket,fd=3) and, without a terminal, the console log
 * (-add-fd fd=4,set=1 and -serial file:/dev/fdset/1). The supervisor opens
 * the log: QEMU, dropped to the user, could not open it in the root-only
 * runtime directory. */
#define SPAWN_QMP_FD 3
#define SPAWN_CONSOLE_FD 4
#define SPAWN_CONSOLE_FDSET 1

struct spawn_req {
	const char *path;                /* from spawn_binary() */
	const struct strv *argv;         /* the plan's, exactly */
	const struct strv *env;          /* from spawn_env(); NULL: spawn_qemu makes it */
	int qmp_fd;                      /* becomes fd 3 in QEMU */
	const struct spawn_user *user;
	bool console_is_tty;             /* else stdin is /dev/null and QEMU gets its own process group */
	int console_fd;                  /* -1 on a terminal, else console.log open for writing:
	                                  * QEMU gets it as SPAWN_CONSOLE_FD */
	rlim_t memlock;                  /* bytes */
};

/* fork + execve. QEMU keeps stdin, stdout, stderr, the QMP socket (fd 3)
 * and the console log (fd 4, when given), nothing else of ours. Returns 0
 * with *pid set once QEMU's image is running, or -errno with err filled
 * when the exec failed (the child is then reaped). */
int spawn_qemu(const struct spawn_req *req, pid_t *pid, struct verr *err);

#endif
