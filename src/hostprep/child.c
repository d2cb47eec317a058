/* Host changes that can block in the kernel run in a child process with a
 * deadline: see child.h for why and how the results come back. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "change.h"
#include "display.h"
#include "log.h"
#include "util.h"
#include "vfio_bind.h"

/* What the child writes, in one write(): smaller than PIPE_BUF, so atomic. */
struct child_report {
	int code;
	struct verr err;
};

_Static_assert(sizeof(struct child_report) <= 4096, "a report must fit in PIPE_BUF");

/* "pci-bind-vfio 0000:01:00.0" for messages. */
static char *
child_what(const json_t *change)
{
	return xasprintf("%s %s", change_str(change, "action"), change_str(change, "target"));
}

static bool
looks_like_pci(const char *s)
{
	unsigned d, b, s_, f;
	char end;
	return strlen(s) == 12 && sscanf(s, "%4x:%2x:%2x.%1x%c", &d, &b, &s_, &f, &end) == 4;
}

/* Fork a child in its own process group running fn; returns its pid and the
 * read end of its report pipe. */
static pid_t
child_fork(child_fn fn, const json_t *change, const json_t *saved, int *rfd, struct verr *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return verr_set(err, -errno, "cannot create a pipe for a host change: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return verr_set(err, -e, "cannot fork to run a host change: %s", strerror(e));
	}
	if (pid == 0) {
		/* Its own group, so a timeout also kills what it started
		 * (modprobe, systemctl). Default signal dispositions: the
		 * parent's handlers belong to its event loop. */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		close(p[0]);
		struct child_report r;
		memset(&r, 0, sizeof(r));
		r.code = fn(change, saved, &r.err);
		ssize_t n;
		do
			n = write(p[1], &r, sizeof(r));
		while (n < 0 && errno == EINTR);
		_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
	}
	setpgid(pid, pid);	/* also here: no race with the kill below */
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* Read the child's report; false on EOF without one (the child died). */
static bool
child_read_report(int fd, struct child_report *r)
{
	size_t got = 0;
	while (got < sizeof(*r)) {
		ssize_t n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	r->err.msg[sizeof(r->err.msg) - 1] = '\0';
	return true;
}

static int
child_died(pid_t pid, int status, const json_t *change, struct verr *err)
{
	char *what = child_what(change);
	if (WIFSIGNALED(status))
		verr_set(err, -ECHILD, "%s: the process doing it died from signal %d (%s) without reporting; "
		    "the host may be half changed: run `vfio -restore` to put it back", what,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		verr_set(err, -ECHILD, "%s: the process doing it (pid %d) exited without reporting; "
		    "the host may be half changed: run `vfio -restore` to put it back", what, (int)pid);
	free(what);
	return err ? err->code : -ECHILD;
}

/* The timeout message: what, how long, who holds the device. */
static void
child_timeout_msg(const json_t *change, int timeout_ms, pid_t pid, bool stuck, struct verr *err)
{
	struct strbuf sb = { 0 };
	const char *target = change_str(change, "target");
	char *what = child_what(change);
	strbuf_printf(&sb, "%s did not finish within %d.%d s (-bindtimeout): the kernel is waiting for "
	    "the device to be let go", what, timeout_ms / 1000, (timeout_ms % 1000) / 100);
	if (looks_like_pci(target)) {
		char *holders = display_describe_holders(target);
		if (holders != NULL && *holders != '\0')
			strbuf_printf(&sb, "; it is held by: %s; stop them (or pass -killx) and try again", holders);
		else
			strbuf_puts(&sb, "; no process was found holding it: check `dmesg` for the driver's complaint");
		free(holders);
	}
	if (stuck)
		strbuf_printf(&sb, "; process %d is stuck in the kernel and could not be killed: the device "
		    "stays in an unknown state until it returns (a reboot may be needed)", (int)pid);
	verr_set(err, -ETIMEDOUT, "%s", sb.s);
	strbuf_free(&sb);
	free(what);
}

/* Kill the child's group and give it a moment to die; false when it did
 * not (uninterruptible sleep). Outside the event loop only. */
static bool
child_kill_wait(pid_t pid, int ms)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	long long deadline = time_now_ms() + ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (time_now_ms() >= deadline)
			return false;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

int
child_run(child_fn fn, const json_t *change, const json_t *saved, int timeout_ms, struct verr *err)
{
	int fd = -1;
	if (timeout_ms <= 0)
		timeout_ms = CHILD_TIMEOUT_MS_DEFAULT;
	pid_t pid = child_fork(fn, change, saved, &fd, err);
	if (pid < 0)
		return pid;
	long long deadline = time_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ready = 0;
	for (;;) {
		long long left = deadline - time_now_ms();
		if (left <= 0)
			break;
		ready = poll(&pfd, 1, (int)left);
		if (ready > 0 || (ready < 0 && errno != EINTR))
			break;
	}
	if (ready <= 0) {
		close(fd);
		bool dead = child_kill_wait(pid, 2000);
		child_timeout_msg(change, timeout_ms, pid, !dead, err);
		return -ETIMEDOUT;
	}
	struct child_report r;
	bool got = child_read_report(fd, &r);
	close(fd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!got)
		return child_died(pid, st, change, err);
	if (err != NULL)
		*err = r.err;
	return r.code;
}

/* ---- the asynchronous variant ---- */

struct child_job {
	pid_t pid;
	int fd;
	int timeout_ms;
	json_t *change;
	struct event *ev_read;
	struct event *ev_timer;
	child_done_cb cb;
	void *arg;
	bool reported;		/* cb already called (timeout): waiting for EOF */
};

static void
child_job_free(struct child_job *job)
{
	if (job->ev_read)
		event_free(job->ev_read);
	if (job->ev_timer)
		event_free(job->ev_timer);
	if (job->fd >= 0)
		close(job->fd);
	json_decref(job->change);
	free(job);
}

static void
child_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct child_job *job = arg;
	struct child_report r;
	bool got = child_read_report(fd, &r);
	/* The report comes last before _exit and EOF comes with the exit, so
	 * this waitpid returns at once. */
	int st = 0;
	while (waitpid(job->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!job->reported) {
		struct verr err = { 0 };
		int code;
		if (got) {
			err = r.err;
			code = r.code;
		} else {
			code = child_died(job->pid, st, job->change, &err);
		}
		job->cb(code, &err, job->arg);
	}
	child_job_free(job);
}

static void
child_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct child_job *job = arg;
	kill(-job->pid, SIGKILL);
	kill(job->pid, SIGKILL);
	/* Whether it dies is seen as EOF on the pipe (the read event stays
	 * armed and frees the job then); a child stuck in the kernel never
	 * closes it, and the job stays until it does. */
	struct verr err = { 0 };
	child_timeout_msg(job->change, job->timeout_ms, job->pid, false, &err);
	job->reported = true;
	job->cb(-ETIMEDOUT, &err, job->arg);
}

struct child_job *
child_start(struct event_base *base, child_fn fn, const json_t *change, const json_t *saved,
    int timeout_ms, child_done_cb cb, void *arg, struct verr *err)
{
	if (timeout_ms <= 0)
		timeout_ms = CHILD_TIMEOUT_MS_DEFAULT;
	struct child_job *job = xcalloc(1, sizeof(*job));
	job->fd = -1;
	job->cb = cb;
	job->arg = arg;
	job->timeout_ms = timeout_ms;
	job->change = json_deep_copy(change);
	pid_t pid = child_fork(fn, change, saved, &job->fd, err);
	if (pid < 0) {
		child_job_free(job);
		return NULL;
	}
	job->pid = pid;
	job->ev_read = event_new(base, job->fd, EV_READ, child_on_read, job);
	job->ev_timer = evtimer_new(base, child_on_timeout, job);
	if (job->ev_read == NULL || job->ev_timer == NULL)
		fatalx("out of memory creating child events");
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	event_add(job->ev_read, NULL);
	evtimer_add(job->ev_timer, &tv);
	return job;
}

void
child_cancel(struct child_job *job)
{
	if (job == NULL)
		return;
	kill(-job->pid, SIGKILL);
	kill(job->pid, SIGKILL);
	int st;
	if (waitpid(job->pid, &st, WNOHANG) == 0)
		log_debug("child %d killed but not yet gone; it is left to exit on its own", (int)job->pid);
	child_job_free(job);
}

/* ---- deadlines per action ---- */

int
child_timeout_ms(const struct change_ops *ops, const json_t *saved, int bindtimeout_ms)
{
	if (bindtimeout_ms <= 0)
		bindtimeout_ms = CHILD_TIMEOUT_MS_DEFAULT;
	const char *a = ops->action;
	if (strcmp(a, "pci-bind-vfio") == 0)
		return vfio_bind_timeout_ms(bindtimeout_ms);
	/* a display manager takes seconds to stop (systemd waits for the
	 * session to end); modprobe a moment */
	if (strcmp(a, "display-manager-stop") == 0)
		return bindtimeout_ms + 30000;
	if (strcmp(a, "module-load") == 0)
		return bindtimeout_ms + 10000;
	/* each user of the card gets 3 s for SIGTERM and 1 s after SIGKILL */
	if (strcmp(a, "gpu-users-stop") == 0)
		return bindtimeout_ms + 4500 * (int)json_array_size(json_object_get(saved, "procs"));
	return bindtimeout_ms;
}

int
child_run_change(const struct change_ops *ops, bool undo, const json_t *change, const json_t *saved,
    int bindtimeout_ms, struct verr *err)
{
	child_fn fn = undo ? ops->undo : ops->apply;
	if (!ops->may_block)
		return fn(change, saved, err);
	return child_run(fn, change, saved, child_timeout_ms(ops, saved, bindtimeout_ms), err);
}

struct child_job *
child_start_change(struct event_base *base, const struct change_ops *ops, bool undo,
    const json_t *change, const json_t *saved, int bindtimeout_ms, child_done_cb cb, void *arg,
    struct verr *err)
{
	child_fn fn = undo ? ops->undo : ops->apply;
	if (!ops->may_block) {
		struct verr e = { 0 };
		int code = fn(change, saved, &e);
		if (err != NULL)
			verr_clear(err);
		cb(code, &e, arg);
		return NULL;
	}
	return child_start(base, fn, change, saved, child_timeout_ms(ops, saved, bindtimeout_ms), cb, arg,
	    err);
}
