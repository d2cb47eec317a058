/* fork + execve of QEMU. The child only does async-signal-safe work between
 * fork and exec; everything that can fail with a message (the binary, the
 * user, the groups) is resolved in the parent first. The child needs no
 * event_reinit: it execs at once and never touches the loop. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostcmd.h"
#include "preflight.h"
#include "log.h"
#include "vfioenv.h"


void
spawn_user_from_plan(struct spawn_user *u, const struct plan_user *pu)
{
	memset(u, 0, sizeof(*u));
	/* Only root switches users; the plan said who QEMU is. */
	if (geteuid() != 0 || pu->name == NULL || pu->uid <= 0)
		return;
	u->drop = true;
	u->uid = (uid_t)pu->uid;
	u->gid = (gid_t)pu->gid;
	u->name = xstrdup(pu->name);
	/* Its primary group and the supplementary groups the plan counted on,
	 * nothing else. */
	u->groups = xreallocarray(NULL, pu->n_groups + 1, sizeof(gid_t));
	u->groups[u->n_groups++] = u->gid;
	for (size_t i = 0; i < pu->n_groups; i++) {
		if ((gid_t)pu->groups[i] != u->gid)
			u->groups[u->n_groups++] = (gid_t)pu->groups[i];
	}
}

void
spawn_user_free(struct spawn_user *u)
{
	free(u->groups);
	free(u->name);
	memset(u, 0, sizeof(*u));
}

/* A name without '/' is looked up in PATH, as execvp would, but here so that
 * a missing QEMU is an error message and not a failed child. */
int
spawn_binary(const char *argv0, char **path, struct verr *err)
{
	const char *env = vfioenv_get("VFIO_QEMU");
	*path = hostcmd_find(argv0);
	if (*path == NULL)
		return verr_set(err, -ENOENT, "cannot find the QEMU binary \"%s\"%s; install "
		    "qemu-system-x86 or point $VFIO_QEMU at it", argv0,
		    env && *env && strcmp(env, argv0) == 0 ? " (from $VFIO_QEMU)" : " in PATH");
	return 0;
}

rlim_t
spawn_memlock_limit(uint64_t memory_mib)
{
	rlim_t want = geteuid() == 0 ? RLIM_INFINITY : (rlim_t)preflight_memlock_need(memory_mib);
	struct rlimit cur;
	if (getrlimit(RLIMIT_MEMLOCK, &cur) < 0)
		return want;
	if (cur.rlim_max == RLIM_INFINITY || (want != RLIM_INFINITY && want <= cur.rlim_max))
		return want;
	/* Probe on ourselves: the supervisor locks no memory, so raising its own
	 * limit is harmless, and the child inherits whatever we got. */
	struct rlimit rl = { want, want };
	if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0)
		return want;
	log_warnx("cannot raise the locked-memory limit for QEMU (%s); it keeps %llu KiB, and "
	    "VFIO devices may fail to map guest memory: raise it (ulimit -l / limits.conf) or run "
	    "with CAP_SYS_RESOURCE", strerror(errno), (unsigned long long)cur.rlim_max / 1024);
	return cur.rlim_max;
}

/* --- QEMU's environment ------------------------------------------------- */

/* What in the argv needs a variable. */
enum spawn_need {
	SPAWN_ALWAYS,
	SPAWN_WINDOW,            /* QEMU opens a window (no -nographic, no -display none) */
	SPAWN_WINDOW_OR_PIPEWIRE,
};

static const struct spawn_env_rule {
	const char *name;        /* a trailing '_' matches a prefix (LC_) */
	enum spawn_need need;
	const char *why;         /* for readers: the feature that needs it */
} spawn_env_rules[] = {
	{ "LANG", SPAWN_ALWAYS, "messages in the user's language" },
	{ "LANGUAGE", SPAWN_ALWAYS, "messages in the user's language" },
	{ "LC_", SPAWN_ALWAYS, "messages in the user's language" },
	{ "TZ", SPAWN_ALWAYS, "the guest's RTC in local time (-rtc base=localtime)" },
	{ "DISPLAY", SPAWN_WINDOW, "the guest's window on X11" },
	{ "XAUTHORITY", SPAWN_WINDOW, "the guest's window on X11" },
	{ "WAYLAND_DISPLAY", SPAWN_WINDOW, "the guest's window on Wayland" },
	{ "XDG_RUNTIME_DIR", SPAWN_WINDOW_OR_PIPEWIRE, "the Wayland and PipeWire sockets" },
};

static bool
spawn_argv_has(const struct strv *argv, const char *opt, const char *prefix)
{
	for (size_t i = 1; i < argv->n; i++) {
		if (strcmp(argv->v[i], opt) == 0 &&
		    (prefix == NULL || (i + 1 < argv->n && str_startswith(argv->v[i + 1], prefix))))
			return true;
	}
	return false;
}

static bool
spawn_needs(const struct strv *argv, enum spawn_need need)
{
	bool window = !spawn_argv_has(argv, "-nographic", NULL) && !spawn_argv_has(argv, "-display", "none");
	switch (need) {
	case SPAWN_ALWAYS:
		return true;
	case SPAWN_WINDOW:
		return window;
	case SPAWN_WINDOW_OR_PIPEWIRE:
		return window || spawn_argv_has(argv, "-audiodev", "pipewire");
	}
	return false;
}

/* Variables $VFIO_TEST_QEMU_ENV names (comma, colon or blank separated). */
static bool
spawn_test_passes(const char *name, size_t len)
{
	const char *list = vfioenv_get("VFIO_TEST_QEMU_ENV");
	for (const char *p = list; p != NULL && *p;) {
		size_t n = strcspn(p, ",: \t");
		if (n == len && strncmp(p, name, len) == 0)
			return true;
		p += n;
		p += strspn(p, ",: \t");
	}
	return false;
}

void
spawn_env(struct strv *env, const struct strv *argv, const struct spawn_user *user)
{
	extern char **environ;
	uid_t uid = user != NULL && user->drop ? user->uid : geteuid();
	/* In this process, not through userdb_lookup(): a passwd lookup stops
	 * at /etc/passwd for QEMU's users (vfio-qemu, the sudo caller), so no
	 * NSS module is mapped; and the session also runs inside threaded
	 * test programs, where a child forked here could find a lock taken. */
	struct passwd *pw = getpwuid(uid);
	strv_push(env, "PATH=/usr/bin:/bin");
	strv_pushf(env, "HOME=%s", pw != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
	for (char **e = environ; *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL)
			continue;
		size_t len = (size_t)(eq - *e);
		bool pass = spawn_test_passes(*e, len);
		for (size_t i = 0; !pass && i < nitems(spawn_env_rules); i++) {
			const struct spawn_env_rule *r = &spawn_env_rules[i];
			size_t rl = strlen(r->name);
			bool match = r->name[rl - 1] == '_' ? len > rl && strncmp(*e, r->name, rl) == 0 :
			    len == rl && strncmp(*e, r->name, rl) == 0;
			if (!match || !spawn_needs(argv, r->need))
				continue;
			/* A user's runtime directory is theirs, not root's. */
			if (strcmp(r->name, "XDG_RUNTIME_DIR") == 0 && user != NULL && user->drop)
				continue;
			pass = true;
		}
		if (pass && strncmp(*e, "PATH=", 5) != 0 && strncmp(*e, "HOME=", 5) != 0)
			strv_push(env, *e);
	}
	if (user != NULL && user->drop && spawn_needs(argv, SPAWN_WINDOW_OR_PIPEWIRE))
		strv_pushf(env, "XDG_RUNTIME_DIR=/run/user/%u", (unsigned)user->uid);
}

/* In the child: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn))
spawn_child(const struct spawn_req *req, char *const *envp, int errpipe, int maxfd)
{
	int e = 0;
	/* fds 3 to 5 are QEMU's: the error pipe must not be there. */
	if (errpipe <= SPAWN_CONSOLE_SOCK_FD && (errpipe = fcntl(errpipe, F_DUPFD_CLOEXEC, 10)) < 0)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* A session of its own: the terminal the supervisor may relay the
	 * console to is not QEMU's, so neither its ^C nor its hangup (SIGHUP
	 * when it closes) reaches QEMU; the supervisor decides how QEMU stops,
	 * and QEMU outlives a supervisor that dies. */
	setsid();
	int null = open("/dev/null", O_RDONLY);
	if (null >= 0 && null != 0) {
		dup2(null, 0);
		close(null);
	}
	/* Each of ours first out of the way of fds 3 to 5 (close-on-exec, as
	 * the pipe and sockets they may have been numbered after are), then
	 * into place. */
	const int want[] = { req->qmp_fd, req->console_fd, req->console_sock_fd };
	const int at[] = { SPAWN_QMP_FD, SPAWN_CONSOLE_FD, SPAWN_CONSOLE_SOCK_FD };
	int moved[3];
	for (int i = 0; i < 3; i++) {
		moved[i] = -1;
		if (want[i] >= 0 && (moved[i] = fcntl(want[i], F_DUPFD_CLOEXEC, 10)) < 0) {
			e = errno;
			goto fail;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (moved[i] < 0)
			close(at[i]);      /* none given (tests): nothing of ours there */
		else if (dup2(moved[i], at[i]) < 0) {
			e = errno;
			goto fail;
		}
	}
	/* Nothing else of ours reaches QEMU (whatever started the supervisor
	 * left open, its journal, the control FIFO): all close at the exec,
	 * the error pipe too, once it is no longer needed. */
	if (syscall(SYS_close_range, SPAWN_CONSOLE_SOCK_FD + 1U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = SPAWN_CONSOLE_SOCK_FD + 1; fd < maxfd; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	struct rlimit rl = { req->memlock, req->memlock };
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
		/* Not root: the most we may have is the hard limit. */
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MEMLOCK, &rl);
		}
	}
	if (req->user != NULL && req->user->drop) {
		if (setgroups(req->user->n_groups, req->user->groups) < 0 || setgid(req->user->gid) < 0 ||
		    setuid(req->user->uid) < 0) {
			e = errno;
			goto fail;
		}
	}
	execve(req->path, req->argv->v, envp);
	e = errno;
fail:
	if (write(errpipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int
spawn_qemu(const struct spawn_req *req, pid_t *pid, struct verr *err)
{
	struct strv own = { 0 };
	const struct strv *env = req->env;
	if (env == NULL) {
		spawn_env(&own, req->argv, req->user);
		env = &own;
	}
	struct rlimit nofile = { 1024, 1024 };
	getrlimit(RLIMIT_NOFILE, &nofile);
	int maxfd = nofile.rlim_cur > 65536 ? 65536 : (int)nofile.rlim_cur;
	int errpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		strv_free(&own);
		return verr_set(err, -errno, "cannot start QEMU: pipe: %s", strerror(errno));
	}
	pid_t child = fork();
	if (child < 0) {
		int r = verr_set(err, -errno, "cannot start QEMU: fork: %s", strerror(errno));
		close(errpipe[0]);
		close(errpipe[1]);
		strv_free(&own);
		return r;
	}
	if (child == 0) {
		close(errpipe[0]);
		spawn_child(req, env->v, errpipe[1], maxfd);
	}
	strv_free(&own);
	close(errpipe[1]);
	/* The pipe closes on a successful exec (O_CLOEXEC) or carries errno:
	 * bounded by the exec itself, so this read does not stall the loop. */
	int e = 0;
	ssize_t n;
	do
		n = read(errpipe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(errpipe[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		const char *who = req->user && req->user->drop ? req->user->name : NULL;
		return verr_set(err, -e, "cannot start QEMU %s%s%s: %s", req->path,
		    who ? " as " : "", who ? who : "", strerror(e));
	}
	*pid = child;
	log_debug("QEMU started: pid %d", (int)child);
	return 0;
}
