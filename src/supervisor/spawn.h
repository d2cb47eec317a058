/* Starting QEMU: fork + execve with the plan's argv (never a shell), the QMP
 * socketpair end as fd 3, the memlock limit raised, running as the invoking
 * user, the serial console on the terminal or in console.log. */
#ifndef VFIO_SPAWN_H
#define VFIO_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "options.h"
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

/* -user NAME, else SUDO_UID/SUDO_GID, else nobody to drop to. Only root can
 * switch users: otherwise drop stays false. */
int spawn_user_resolve(struct spawn_user *u, const struct options *opts, struct verr *err);
void spawn_user_free(struct spawn_user *u);

/* The argv QEMU really gets: argv[0] is $VFIO_QEMU or the plan's binary found
 * in PATH; the console's -serial value (at the plan's serial_index, or the
 * first -serial when that is 0) is mon:stdio on a TTY (console_path NULL),
 * else the file console_path, which spawn_qemu() hands QEMU already open
 * (spawn_req.console_fd; -add-fd and file:/dev/fdset/N); -S is present.
 * Returns -ENOENT with err filled when the binary is missing. */
int spawn_argv(struct strv *out, const struct strv *plan_argv, int serial_index, const char *console_path,
    struct verr *err);
/* Guest memory in MiB from the argv's -m (0 when absent or unreadable). */
uint64_t spawn_memory_mib(const struct strv *argv);

/* The memlock limit QEMU gets: unlimited as root (as the original's prlimit),
 * else guest memory plus a margin; capped, with a warning, to the hard limit
 * when we may not raise it (no CAP_SYS_RESOURCE). */
rlim_t spawn_memlock_limit(uint64_t memory_mib);

struct spawn_req {
	const struct strv *argv;         /* from spawn_argv() */
	int qmp_fd;                      /* becomes fd 3 in QEMU */
	const struct spawn_user *user;
	bool console_is_tty;             /* else stdin is /dev/null and QEMU gets its own process group */
	int console_fd;                  /* -1, or the console file of spawn_argv()'s console_path,
	                                  * open for writing: QEMU gets it as fd 4 */
	rlim_t memlock;                  /* bytes */
};

/* fork + execve. Returns 0 with *pid set once QEMU's image is running, or
 * -errno with err filled when the exec failed (the child is then reaped). */
int spawn_qemu(const struct spawn_req *req, pid_t *pid, struct verr *err);

#endif
