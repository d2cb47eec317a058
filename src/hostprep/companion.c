/* Companion processes: spawn as a user without a shell, remember them by pid
 * and start time, stop them without ever signalling a stranger. */
#include "companion.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostroot.h"
#include "hostcmd.h"
#include "userdb.h"
#include "log.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int
pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int
companion_proc_stat(pid_t pid, unsigned long long *starttime, char *state)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -e : -ENOENT;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -EINVAL;
	p += 2;
	if (state != NULL)
		*state = *p;
	/* p is field 3 (state); starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return -EINVAL;
		p++;
	}
	*starttime = strtoull(p, NULL, 10);
	return 0;
}

/* The environment a companion gets: the caller's entries, then the basics of
 * a login for its user; nothing of root's own environment leaks in. */
static bool
env_has(const struct strv *env, const char *key)
{
	size_t n = strlen(key);
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, n) == 0 && env->v[i][n] == '=')
			return true;
	return false;
}

static void
build_env(const struct companion_spec *spec, const struct userdb_user *pw, struct strv *env)
{
	for (size_t i = 0; spec->env != NULL && spec->env[i] != NULL; i++)
		strv_push(env, spec->env[i]);
	if (!env_has(env, "PATH"))
		strv_push(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!env_has(env, "HOME"))
		strv_pushf(env, "HOME=%s", pw->found ? pw->home : "/");
	if (pw->found && !env_has(env, "USER"))
		strv_pushf(env, "USER=%s", pw->name);
	if (pw->found && !env_has(env, "LOGNAME"))
		strv_pushf(env, "LOGNAME=%s", pw->name);
	if (spec->uid != 0 && !env_has(env, "XDG_RUNTIME_DIR"))
		strv_pushf(env, "XDG_RUNTIME_DIR=/run/user/%u", (unsigned)spec->uid);
}

struct child_report {
	int stage;               /* 0 groups, 1 gid, 2 uid, 3 exec */
	int err;
};

static const char *const stage_names[] = { "set supplementary groups", "set gid", "set uid", "execute" };

/* Fork and exec spec. With a pidfile, the child waits until the pid file is
 * on disk before it runs anything, so a crash at any point leaves either no
 * program or a program the pid file names. */
static int
spawn(const struct companion_spec *spec, struct companion_proc *proc, struct verr *err)
{
	if (spec->argv == NULL || spec->argv[0] == NULL)
		return verr_set(err, -EINVAL, "%s: no program to run", spec->name);
	char *prog = hostcmd_find(spec->argv[0]);
	if (prog == NULL)
		return verr_set(err, -ENOENT, "%s: program '%s' not found or not executable; install it or check $PATH",
		    spec->name, spec->argv[0]);

	/* Everything that allocates or looks users up happens before fork. */
	struct userdb_user pw;
	userdb_lookup(spec->uid, spec->gid, &pw);
	gid_t *groups = pw.groups;
	int ngroups = (int)pw.n_groups;
	struct strv env = { 0 };
	build_env(spec, &pw, &env);
	int logfd = -1, nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (spec->log != NULL)
		logfd = open(spec->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	else
		logfd = dup(nullfd);
	int go[2] = { -1, -1 }, st[2] = { -1, -1 };
	int ret = 0;
	if (nullfd < 0 || logfd < 0) {
		ret = verr_set(err, -errno, "%s: cannot open its log %s: %s", spec->name, spec->log ? spec->log : "/dev/null",
		    strerror(errno));
		goto out;
	}
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
		ret = verr_set(err, -errno, "%s: pipe: %s", spec->name, strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		ret = verr_set(err, -errno, "%s: fork: %s", spec->name, strerror(errno));
		goto out;
	}
	if (pid == 0) {
		struct child_report rep = { 0, 0 };
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		/* Its own session: a ^C at the supervisor's terminal is the
		 * supervisor's to handle; companions stop at teardown. */
		setsid();
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
		char c;
		if (spec->pidfile != NULL && read(go[0], &c, 1) != 1)
			_exit(127);
		if (setgroups((size_t)ngroups, groups) < 0) {
			rep.stage = 0;
			goto fail;
		}
		if (setresgid(spec->gid, spec->gid, spec->gid) < 0) {
			rep.stage = 1;
			goto fail;
		}
		if (setresuid(spec->uid, spec->uid, spec->uid) < 0) {
			rep.stage = 2;
			goto fail;
		}
		if (chdir("/") < 0) {
			/* harmless: the program starts in our directory */
		}
		rep.stage = 3;
		execve(prog, spec->argv, env.v);
fail:
		rep.err = errno;
		if (write(st[1], &rep, sizeof(rep)) < 0)
			_exit(126);
		_exit(127);
	}
	close(go[0]);
	go[0] = -1;
	close(st[1]);
	st[1] = -1;
	proc->pid = pid;
	proc->starttime = 0;
	companion_proc_stat(pid, &proc->starttime, NULL);

	if (spec->pidfile != NULL) {
		char *tmp = xasprintf("%s.tmp", spec->pidfile);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		char line[64];
		int len = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, proc->starttime);
		bool ok = fd >= 0 && write(fd, line, (size_t)len) == len && fsync(fd) == 0;
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (ok && rename(tmp, spec->pidfile) < 0) {
			ok = false;
			e = errno;
		}
		free(tmp);
		if (!ok) {
			/* The child sees the go pipe close and exits unexecuted. */
			close(go[1]);
			go[1] = -1;
			waitpid(pid, NULL, 0);
			ret = verr_set(err, -e, "%s: cannot write its pid file %s: %s", spec->name, spec->pidfile, strerror(e));
			goto out;
		}
		if (write(go[1], "g", 1) != 1) {
			e = errno;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			unlink(spec->pidfile);
			ret = verr_set(err, -e, "%s: cannot release the child: %s", spec->name, strerror(e));
			goto out;
		}
	}
	struct child_report rep;
	ssize_t n;
	do
		n = read(st[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(rep)) {
		waitpid(pid, NULL, 0);
		if (spec->pidfile != NULL)
			unlink(spec->pidfile);
		ret = verr_set(err, -rep.err, "%s: could not %s %s as uid %u gid %u: %s", spec->name,
		    stage_names[rep.stage < 4 && rep.stage >= 0 ? rep.stage : 3], prog, (unsigned)spec->uid,
		    (unsigned)spec->gid, strerror(rep.err));
		goto out;
	}
	log_debug("%s: started %s as pid %d (uid %u)", spec->name, prog, (int)pid, (unsigned)spec->uid);
out:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (st[i] >= 0)
			close(st[i]);
	}
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	strv_free(&env);
	free(prog);
	return ret;
}

int
companion_start(const struct companion_spec *spec, struct companion_proc *proc, struct verr *err)
{
	return spawn(spec, proc, err);
}

/* Whether proc has ended (gone, a zombie, or its pid reused). Reaps it when
 * it is our child. */
static bool
proc_gone(const struct companion_proc *proc)
{
	unsigned long long st;
	char state;
	waitpid(proc->pid, NULL, WNOHANG);
	return companion_proc_stat(proc->pid, &st, &state) < 0 || st != proc->starttime || state == 'Z';
}

/* Wait up to ms for proc to end: on its pidfd when there is one; else
 * (kernels before 5.3, valgrind) by looking every 20 ms. */
static bool
proc_wait(const struct companion_proc *proc, int pidfd, int ms)
{
	long deadline = time_now_ms() + ms;
	for (;;) {
		long left = deadline - time_now_ms();
		if (left < 0)
			left = 0;
		if (pidfd < 0) {
			if (proc_gone(proc))
				return true;
			if (left == 0)
				return false;
			struct timespec ts = { 0, (left < 20 ? left : 20) * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return true;
		if (r == 0)
			return false;
		if (errno != EINTR)
			return false;
	}
}

/* Signal proc, on its pidfd when there is one (no race with pid reuse);
 * else after checking once more that the pid is still it. */
static int
proc_signal(const struct companion_proc *proc, int pidfd, int sig)
{
	if (pidfd >= 0)
		return pidfd_signal(pidfd, sig);
	if (proc_gone(proc)) {
		errno = ESRCH;
		return -1;
	}
	return kill(proc->pid, sig);
}

int
companion_stop(const struct companion_proc *proc, int timeout_ms, struct verr *err)
{
	unsigned long long st;
	char state;
	if (proc->pid <= 0)
		return 0;
	if (companion_proc_stat(proc->pid, &st, &state) < 0)
		return 0;          /* gone */
	if (st != proc->starttime) {
		log_debug("pid %d is now another process (start time %llu, ours %llu): left alone", (int)proc->pid, st,
		    proc->starttime);
		return 0;
	}
	int pidfd = pidfd_open_(proc->pid);
	if (pidfd < 0 && errno == ESRCH)
		return 0;
	if (pidfd < 0 && errno != ENOSYS)
		return verr_set(err, -errno, "pid %d: pidfd_open: %s", (int)proc->pid, strerror(errno));
	/* The pidfd pins the process: check once more that it is still ours. */
	if (companion_proc_stat(proc->pid, &st, &state) < 0 || st != proc->starttime) {
		if (pidfd >= 0)
			close(pidfd);
		return 0;
	}
	int ret = 0;
	if (state != 'Z') {
		if (proc_signal(proc, pidfd, SIGTERM) < 0 && errno != ESRCH)
			ret = verr_set(err, -errno, "pid %d: cannot send SIGTERM: %s", (int)proc->pid, strerror(errno));
		else if (!proc_wait(proc, pidfd, timeout_ms)) {
			log_debug("pid %d ignored SIGTERM for %d ms: SIGKILL", (int)proc->pid, timeout_ms);
			if (proc_signal(proc, pidfd, SIGKILL) < 0 && errno != ESRCH)
				ret = verr_set(err, -errno, "pid %d: cannot send SIGKILL: %s", (int)proc->pid, strerror(errno));
			else if (!proc_wait(proc, pidfd, 5000))
				ret = verr_set(err, -ETIMEDOUT, "pid %d survived SIGKILL (stuck in the kernel?)", (int)proc->pid);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	/* Ours when we started it in this process: reap it. */
	waitpid(proc->pid, NULL, WNOHANG);
	return ret;
}

int
companion_stop_pidfile(const char *pidfile, int timeout_ms, struct verr *err)
{
	char *s = host_read_line(pidfile);
	if (s == NULL)
		return errno == ENOENT ? 0 : verr_set(err, -errno, "cannot read %s: %s", pidfile, strerror(errno));
	struct companion_proc proc = { 0, 0 };
	int pid = 0;
	int ret;
	if (sscanf(s, "%d %llu", &pid, &proc.starttime) != 2 || pid <= 0) {
		ret = verr_set(err, -EINVAL, "%s holds '%s', not 'PID STARTTIME'; remove it by hand after checking", pidfile, s);
	} else {
		proc.pid = pid;
		ret = companion_stop(&proc, timeout_ms, err);
		if (ret == 0)
			unlink(pidfile);
	}
	free(s);
	return ret;
}

int
companion_run(const struct companion_spec *spec, int timeout_ms, int *status, struct verr *err)
{
	struct companion_proc proc;
	struct companion_spec s = *spec;
	s.pidfile = NULL;
	int r = spawn(&s, &proc, err);
	if (r < 0)
		return r;
	/* Our child: its exit status must be collected by us, so wait on the
	 * pidfd (or by looking) and only then waitpid. */
	int pidfd = pidfd_open_(proc.pid);
	bool done;
	if (pidfd >= 0) {
		done = proc_wait(&proc, pidfd, timeout_ms);
		close(pidfd);
	} else {
		long deadline = time_now_ms() + timeout_ms;
		pid_t w;
		while ((w = waitpid(proc.pid, status, WNOHANG)) == 0 && time_now_ms() < deadline) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (w == proc.pid)
			return 0;
		done = false;
	}
	if (!done) {
		kill(proc.pid, SIGKILL);
		waitpid(proc.pid, status, 0);
		return verr_set(err, -ETIMEDOUT, "%s: did not finish within %d s; killed", spec->name, timeout_ms / 1000);
	}
	while (waitpid(proc.pid, status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static char *
log_tail(const char *log)
{
	if (log == NULL)
		return xstrdup("");
	char *s = host_read(log, NULL);
	if (s == NULL)
		return xstrdup("");
	size_t n = strlen(s);
	char *tail = xstrdup(n > 300 ? s + n - 300 : s);
	free(s);
	return str_rstrip(tail);
}

int
companion_wait_path(const struct companion_spec *spec, const struct companion_proc *proc, const char *path,
    int timeout_ms, struct verr *err)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir)
		*slash = '\0';
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in >= 0 && inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) < 0) {
		close(in);
		in = -1;
	}
	free(dir);
	int pidfd = pidfd_open_(proc->pid);
	long deadline = time_now_ms() + timeout_ms;
	int ret = 0;
	for (;;) {
		if (host_exists(path))
			break;
		long left = deadline - time_now_ms();
		struct pollfd p[2] = { { .fd = in, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
		bool ended = proc->pid > 0 && (pidfd >= 0 ? poll(&p[1], 1, 0) > 0 : proc_gone(proc));
		if (ended) {
			int status = 0;
			waitpid(proc->pid, &status, WNOHANG);
			char *tail = log_tail(spec->log);
			ret = verr_set(err, -ECHILD, "%s exited before creating %s; its log %s ends: %s", spec->name, path,
			    spec->log ? spec->log : "(none)", tail);
			free(tail);
			break;
		}
		if (left <= 0) {
			ret = verr_set(err, -ETIMEDOUT, "%s did not create %s within %d s; see %s", spec->name, path,
			    timeout_ms / 1000, spec->log ? spec->log : "its output");
			break;
		}
		/* Without inotify or a pidfd, wake up now and then to look again. */
		bool blind = in < 0 || (pidfd < 0 && proc->pid > 0);
		int r = poll(p, 2, blind ? (int)(left < 100 ? left : 100) : (int)left);
		if (r > 0 && (p[0].revents & POLLIN)) {
			char buf[4096];
			while (read(in, buf, sizeof(buf)) > 0)
				;
		}
	}
	if (in >= 0)
		close(in);
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

/* ---- the host change -------------------------------------------------- */

json_t *
companion_change(const char *name, const struct strv *argv, uid_t uid, gid_t gid, const char *rundir,
    const struct strv *env)
{
	json_t *jargv = json_array();
	for (size_t i = 0; i < argv->n; i++)
		json_array_append_new(jargv, json_string(argv->v[i]));
	json_t *jenv = json_array();
	for (size_t i = 0; env != NULL && i < env->n; i++)
		json_array_append_new(jenv, json_string(env->v[i]));
	char *log = xasprintf("%s/%s.log", rundir, name);
	char *pidf = xasprintf("%s/%s.pid", rundir, name);
	json_t *c = json_pack("{s:s, s:s, s:{s:o, s:o, s:I, s:I, s:s, s:s}}", "action", "companion-start", "target", name,
	    "args", "argv", jargv, "env", jenv, "uid", (json_int_t)uid, "gid", (json_int_t)gid, "log", log, "pidfile", pidf);
	free(log);
	free(pidf);
	return c;
}

json_t *
companion_viewer_change(const char *name, const struct strv *argv, uid_t uid, gid_t gid, const char *rundir,
    const char *display, const char *wayland_display)
{
	struct strv env = { 0 };
	if (display != NULL && *display != '\0')
		strv_pushf(&env, "DISPLAY=%s", display);
	if (wayland_display != NULL && *wayland_display != '\0')
		strv_pushf(&env, "WAYLAND_DISPLAY=%s", wayland_display);
	json_t *c = companion_change(name, argv, uid, gid, rundir, &env);
	strv_free(&env);
	return c;
}

struct spec_buf {
	struct companion_spec spec;
	struct strv argv, env;
	char *log, *pidfile;
};

static int
spec_from_change(const json_t *change, struct spec_buf *sb, struct verr *err)
{
	memset(sb, 0, sizeof(*sb));
	const char *name = change_str(change, "target");
	json_t *args = json_object_get(change, "args");
	json_t *argv = json_object_get(args, "argv");
	size_t i;
	json_t *v;
	if (*name == '\0' || strchr(name, '/') != NULL)
		return verr_set(err, -EINVAL, "companion-start: target '%s' is not a companion name", name);
	if (!json_is_array(argv) || json_array_size(argv) == 0)
		return verr_set(err, -EINVAL, "companion-start %s: args.argv must be a non-empty array of strings", name);
	json_array_foreach(argv, i, v) {
		if (!json_is_string(v))
			return verr_set(err, -EINVAL, "companion-start %s: args.argv[%zu] is not a string", name, i);
		strv_push(&sb->argv, json_string_value(v));
	}
	json_array_foreach(json_object_get(args, "env"), i, v) {
		if (!json_is_string(v) || strchr(json_string_value(v), '=') == NULL)
			return verr_set(err, -EINVAL, "companion-start %s: args.env[%zu] is not K=V", name, i);
		strv_push(&sb->env, json_string_value(v));
	}
	json_t *uid = json_object_get(args, "uid"), *gid = json_object_get(args, "gid");
	if (!json_is_integer(uid) || !json_is_integer(gid) || json_integer_value(uid) < 0 || json_integer_value(gid) < 0)
		return verr_set(err, -EINVAL, "companion-start %s: args.uid and args.gid must be numbers", name);
	const char *log = change_arg_str(change, "log"), *pidf = change_arg_str(change, "pidfile");
	if (*log != '/' || *pidf != '/')
		return verr_set(err, -EINVAL, "companion-start %s: args.log and args.pidfile must be absolute host paths", name);
	sb->log = host_pathdup("%s", log);
	sb->pidfile = host_pathdup("%s", pidf);
	sb->spec.name = name;
	sb->spec.argv = sb->argv.v;
	sb->spec.env = sb->env.v;
	sb->spec.uid = (uid_t)json_integer_value(uid);
	sb->spec.gid = (gid_t)json_integer_value(gid);
	sb->spec.log = sb->log;
	sb->spec.pidfile = sb->pidfile;
	return 0;
}

static void
spec_free(struct spec_buf *sb)
{
	strv_free(&sb->argv);
	strv_free(&sb->env);
	free(sb->log);
	free(sb->pidfile);
}

static int
companion_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	struct spec_buf sb;
	int r = spec_from_change(change, &sb, err);
	if (r == 0) {
		char *prog = hostcmd_find(sb.argv.v[0]);
		if (prog == NULL)
			r = verr_set(err, -ENOENT, "%s: program '%s' not found or not executable; install it or check $PATH",
			    sb.spec.name, sb.argv.v[0]);
		free(prog);
	}
	if (r == 0)
		*saved = json_pack("{s:s}", "pidfile", change_arg_str(change, "pidfile"));
	spec_free(&sb);
	return r;
}

/* mkdir -p for a state directory: parents 0755 root's, the last one 0700
 * for the companion's user. Kept across runs: never undone. */
static int
make_statedir(const char *hpath, uid_t uid, gid_t gid, struct verr *err)
{
	char *p = xstrdup(hpath);
	size_t rootlen = strlen(hostroot_get());
	for (char *s = p + rootlen + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			verr_set(err, -e, "cannot create %s: %s", p, strerror(e));
			free(p);
			return -e;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(hpath, 0700) == 0) {
		if (chown(hpath, uid, gid) < 0)
			return verr_set(err, -errno, "cannot give %s to uid %u: %s", hpath, (unsigned)uid, strerror(errno));
	} else if (errno != EEXIST) {
		return verr_set(err, -errno, "cannot create %s: %s", hpath, strerror(errno));
	}
	return 0;
}

static int
companion_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	struct spec_buf sb;
	int r = spec_from_change(change, &sb, err);
	if (r < 0) {
		spec_free(&sb);
		return r;
	}
	const char *statedir = change_arg_str(change, "statedir");
	if (*statedir == '/') {
		char *h = host_pathdup("%s", statedir);
		r = make_statedir(h, sb.spec.uid, sb.spec.gid, err);
		if (r < 0)
			verr_prefix(err, "%s", sb.spec.name);
		free(h);
	}
	struct companion_proc proc;
	if (r == 0)
		r = companion_start(&sb.spec, &proc, err);
	const char *wait = change_arg_str(change, "wait_path");
	if (r == 0 && *wait == '/') {
		char *h = host_pathdup("%s", wait);
		r = companion_wait_path(&sb.spec, &proc, h, COMPANION_READY_MS, err);
		free(h);
		if (r < 0) {
			struct verr e2 = { 0 };
			companion_stop(&proc, COMPANION_STOP_MS, &e2);
			unlink(sb.pidfile);
		}
	}
	spec_free(&sb);
	return r;
}

static int
companion_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *pidf = json_string_value(json_object_get(saved, "pidfile"));
	if (pidf == NULL)
		pidf = change_arg_str(change, "pidfile");
	if (*pidf != '/')
		return verr_set(err, -EINVAL, "companion-start %s: no pid file recorded", change_str(change, "target"));
	char *h = host_pathdup("%s", pidf);
	int r = companion_stop_pidfile(h, COMPANION_STOP_MS, err);
	if (r < 0)
		verr_prefix(err, "%s", change_str(change, "target"));
	free(h);
	return r;
}

const struct change_ops companion_start_ops = {
	.action = "companion-start",
	.prepare = companion_prepare,
	.apply = companion_apply,
	.undo = companion_undo,
};
