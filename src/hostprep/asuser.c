/* A child process as another user for file work (see asuser.h). */
#include "asuser.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "userdb.h"
#include "util.h"

struct asuser_report {
	int code;
	struct verr err;
};

/* In the child: become the user, run fn, report, exit. */
static void __attribute__((noreturn))
asuser_child(int fd, pid_t parent, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, asuser_fn fn,
    void *arg)
{
	struct asuser_report rep;
	memset(&rep, 0, sizeof(rep));
	/* Only the report pipe: nothing of the supervisor's (its journal,
	 * its lock, QEMU's monitor) stays within the user's reach. */
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		fd = 3;
	}
	syscall(SYS_close_range, 4U, ~0U, 0U);
	if (setgroups(n_groups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		rep.code = verr_set(&rep.err, -errno, "cannot become uid %u gid %u: %s", (unsigned)uid,
		    (unsigned)gid, strerror(errno));
	} else {
		/* Both after the uid change, which resets them. */
		prctl(PR_SET_DUMPABLE, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		rep.code = fn(arg, &rep.err);
	}
	ssize_t n;
	do
		n = write(fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	_exit(n == (ssize_t)sizeof(rep) ? 0 : 1);
}

int
asuser_run(uid_t uid, gid_t gid, asuser_fn fn, void *arg, struct verr *err)
{
	if (uid == geteuid() && gid == getegid())
		return fn(arg, err);
	/* Looked up before fork: the child only makes system calls. */
	struct userdb_user u;
	userdb_lookup(uid, gid, &u);
	gid_t *groups = u.groups;
	int n_groups = (int)u.n_groups;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return verr_set(err, -errno, "cannot create a pipe: %s", strerror(errno));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return verr_set(err, -e, "cannot fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		asuser_child(p[1], parent, uid, gid, groups, (size_t)n_groups, fn, arg);
	}
	close(p[1]);
	struct asuser_report rep;
	ssize_t n;
	do
		n = read(p[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(rep))
		return verr_set(err, -ECHILD, "the process working as uid %u ended without reporting (%s %d)",
		    (unsigned)uid, WIFSIGNALED(st) ? "signal" : "exit status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	rep.err.msg[sizeof(rep.err.msg) - 1] = '\0';
	if (err != NULL)
		*err = rep.err;
	return rep.code;
}
