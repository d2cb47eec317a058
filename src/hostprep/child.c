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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "change.h"
#include "display.h"
#include "hostroot.h"
#include "log.h"
#include "util.h"
#include "vfioenv.h"

/* What the child writes, in one message. */
struct child_report {
	int code;
	struct verr err;
};

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

/* A job for a child that is already running (see child_serve). fn is a
 * plain pointer: the child is a fork of this very process image. */
struct child_job_msg {
	child_fn fn;
	char json[];		/* {"change": ..., "saved": ...} */
};

static void
child_report_send(int fd, int code, const struct verr *err)
{
	struct child_report r;
	memset(&r, 0, sizeof(r));
	r.code = code;
	if (err != NULL)
		r.err = *err;
	ssize_t n;
	do
		n = write(fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r))
		_exit(1);
}

/* The next job, or NULL when the supervisor closed the socket (it has a
 * spare already, or it is ending). */
static struct child_job_msg *
child_recv_job(int fd, size_t *len)
{
	for (;;) {
		ssize_t n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= (ssize_t)sizeof(struct child_job_msg))
			return NULL;
		struct child_job_msg *m = xmalloc((size_t)n + 1);
		ssize_t got;
		do
			got = recv(fd, m, (size_t)n, 0);
		while (got < 0 && errno == EINTR);
		if (got != n) {
			free(m);
			return NULL;
		}
		((char *)m)[n] = '\0';
		*len = (size_t)n;
		return m;
	}
}

/* A reusable child: runs its first job, then waits for more on fd until
 * the supervisor closes it. Like every child here it dies with the
 * supervisor (child_fork). */
static void __attribute__((noreturn))
child_serve(int fd, pid_t parent, child_fn fn, const json_t *change, const json_t *saved)
{
	struct verr err = { 0 };
	child_report_send(fd, fn(change, saved, &err), &err);
	for (;;) {
		if (getppid() != parent)
			_exit(0);
		size_t len = 0;
		struct child_job_msg *m = child_recv_job(fd, &len);
		if (m == NULL)
			_exit(0);
		/* The ack says the job arrived: a spare that dies before it
		 * never started the job, which then goes to a new child. */
		ssize_t an;
		do
			an = send(fd, "A", 1, MSG_NOSIGNAL);
		while (an < 0 && errno == EINTR);
		if (an != 1)
			_exit(1);
		json_t *job = json_loadb(m->json, len - sizeof(*m), 0, NULL);
		const json_t *c = json_object_get(job, "change");
		const json_t *sv = json_object_get(job, "saved");
		verr_clear(&err);
		if (job == NULL || c == NULL)
			child_report_send(fd, verr_set(&err, -EPROTO, "the supervisor sent its child a job it "
			    "cannot read"), &err);
		else
			child_report_send(fd, m->fn(c, json_is_null(sv) ? NULL : sv, &err), &err);
		json_decref(job);
		free(m);
	}
}

/* Fork a child in its own process group running fn; returns its pid and
 * the supervisor's end of its socket (SOCK_SEQPACKET: one report per
 * message). A reusable child waits for more jobs after the first (the
 * asynchronous path); the synchronous path's children exit after one. */
static pid_t
child_fork(child_fn fn, const json_t *change, const json_t *saved, bool reusable, int *rfd, struct verr *err)
{
	int p[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0)
		return verr_set(err, -errno, "cannot create a socket for a host change: %s", strerror(errno));
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return verr_set(err, -e, "cannot fork to run a host change: %s", strerror(e));
	}
	if (pid == 0) {
		/* It dies with the supervisor, working or not: a bind left to
		 * finish after the supervisor is gone would change the host
		 * behind `vfio -restore` (the journal has its "begin": -restore
		 * undoes whatever part of it was done). Checked after setting,
		 * for a supervisor that died before. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		/* Its own group, so a timeout also kills what it started
		 * (modprobe, systemctl). Default signal dispositions: the
		 * parent's handlers belong to its event loop. */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		close(p[0]);
		if (reusable)
			child_serve(p[1], parent, fn, change, saved);
		struct verr e = { 0 };
		child_report_send(p[1], fn(change, saved, &e), &e);
		_exit(0);
	}
	setpgid(pid, pid);	/* also here: no race with the kill below */
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* What came from a child: its report, the ack of a job handed to a spare,
 * or the end (EOF: it died). SOCK_SEQPACKET keeps each to one message. */
enum child_msg { CHILD_MSG_END, CHILD_MSG_REPORT, CHILD_MSG_ACK };

static enum child_msg
child_read_msg(int fd, struct child_report *r)
{
	ssize_t n;
	do
		n = recv(fd, r, sizeof(*r), 0);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return CHILD_MSG_ACK;
	if (n != (ssize_t)sizeof(*r))
		return CHILD_MSG_END;
	r->err.msg[sizeof(r->err.msg) - 1] = '\0';
	return CHILD_MSG_REPORT;
}

/* Read the child's report; false on EOF without one (the child died). */
static bool
child_read_report(int fd, struct child_report *r)
{
	return child_read_msg(fd, r) == CHILD_MSG_REPORT;
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
	pid_t pid = child_fork(fn, change, saved, false, &fd, err);
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

/* A child running or waiting for a job, and the end of its socket here. */
struct child_proc {
	pid_t pid;
	int fd;
	char *context;		/* child_context() when it was forked */
};

static const struct child_proc child_proc_none = { -1, -1, NULL };

struct child_job {
	struct child_proc proc;
	int timeout_ms;
	child_fn fn;
	json_t *change, *saved;
	struct event_base *base;
	struct event *ev_read;
	struct event *ev_timer;
	child_done_cb cb;
	void *arg;
	bool reported;		/* cb already called (timeout): waiting for EOF */
	bool reused, acked;	/* handed to the spare; the spare has it */
};

/* The spare: a child that reported in time and waits, idle, for the next
 * job. Forking the supervisor costs hundreds of microseconds (page tables,
 * then getting the child scheduled), most of the budget of a control-FIFO
 * `pci add`; reusing a child costs one message. At most one spare. */
static struct child_proc child_spare = { -1, -1, NULL };

/* What a child took from this process when it was forked and a job does
 * not carry: the host root and the log level. Tests change them between
 * cases; a spare forked under other settings is not used. (A module whose
 * own settings a child inherits lets the spare go when they change:
 * vfio_bind_set_waits().) */
static char *
child_context(void)
{
	const char *env = vfioenv_get("VFIO_HOST_ROOT");
	return xasprintf("%s\n%s\n%d", hostroot_get(), env ? env : "", (int)log_get_level());
}

/* Close a child's socket (it exits on the EOF) and reap it. */
static void
child_dismiss(pid_t pid, int fd)
{
	close(fd);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

void
child_spare_drop(void)
{
	if (child_spare.pid > 0)
		child_dismiss(child_spare.pid, child_spare.fd);
	free(child_spare.context);
	child_spare = child_proc_none;
}

/* Hand the job to the spare; false when there is none fit for it. */
static bool
child_spare_take(child_fn fn, const json_t *change, const json_t *saved, struct child_job *job)
{
	if (child_spare.pid < 0)
		return false;
	char *now = child_context();
	bool fits = strcmp(now, child_spare.context) == 0;
	free(now);
	if (!fits) {
		child_spare_drop();
		return false;
	}
	json_t *o = json_pack("{s:O, s:O}", "change", change, "saved", saved ? saved : json_null());
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text == NULL)
		fatalx("child: cannot encode a job");
	size_t tl = strlen(text);
	struct child_job_msg *m = xmalloc(sizeof(*m) + tl);
	m->fn = fn;
	memcpy(m->json, text, tl);
	free(text);
	ssize_t n;
	do
		n = send(child_spare.fd, m, sizeof(*m) + tl, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	free(m);
	if (n != (ssize_t)(sizeof(*m) + tl)) {
		/* it died while idle (killed from outside) */
		log_debug("the spare child %d is gone (%s); forking another", (int)child_spare.pid,
		    n < 0 ? strerror(errno) : "short send");
		child_spare_drop();
		return false;
	}
	job->proc = child_spare;
	child_spare = child_proc_none;
	return true;
}

/* A child that reported and waits for more: keep it as the spare, or let
 * it go when there is one already. */
static void
child_spare_keep(struct child_job *job)
{
	if (child_spare.pid < 0) {
		child_spare = job->proc;
	} else {
		child_dismiss(job->proc.pid, job->proc.fd);
		free(job->proc.context);
	}
	job->proc = child_proc_none;
}

static void
child_job_free(struct child_job *job)
{
	if (job->ev_read)
		event_free(job->ev_read);
	if (job->ev_timer)
		event_free(job->ev_timer);
	if (job->proc.fd >= 0)
		close(job->proc.fd);
	json_decref(job->change);
	json_decref(job->saved);
	free(job->proc.context);
	free(job);
}

static void child_on_read(evutil_socket_t fd, short what, void *arg);

/* Fork a new child for the job and watch it; false with err set when that
 * fails. */
static bool
child_job_fork(struct child_job *job, struct verr *err)
{
	free(job->proc.context);
	job->proc.context = child_context();
	pid_t pid = child_fork(job->fn, job->change, job->saved, true, &job->proc.fd, err);
	if (pid < 0)
		return false;
	job->proc.pid = pid;
	job->reused = false;
	return true;
}

static void
child_job_watch(struct child_job *job)
{
	if (job->ev_read != NULL)
		event_free(job->ev_read);
	job->ev_read = event_new(job->base, job->proc.fd, EV_READ, child_on_read, job);
	if (job->ev_read == NULL)
		fatalx("out of memory creating child events");
	event_add(job->ev_read, NULL);
}

static void
child_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct child_job *job = arg;
	struct child_report r;
	enum child_msg m = child_read_msg(fd, &r);
	if (m == CHILD_MSG_ACK) {
		job->acked = true;
		event_add(job->ev_read, NULL);
		return;
	}
	event_free(job->ev_read);
	job->ev_read = NULL;
	if (m == CHILD_MSG_REPORT && !job->reported) {
		/* In time: the child waits for another job. It becomes the
		 * spare before the callback, which may start the next job. */
		child_spare_keep(job);
		struct verr err = r.err;
		job->cb(r.code, &err, job->arg);
		child_job_free(job);
		return;
	}
	/* EOF (it died), or the report of a child killed for its timeout:
	 * either way it is gone or going, so this waitpid returns at once. */
	int st = 0;
	while (waitpid(job->proc.pid, &st, 0) < 0 && errno == EINTR)
		;
	if (job->reported) {
		child_job_free(job);
		return;
	}
	struct verr err = { 0 };
	if (m == CHILD_MSG_END && job->reused && !job->acked) {
		/* The spare died idle (killed from outside) with the job
		 * unread: nothing of it ran, so a new child does it. */
		log_debug("the spare child %d died before taking its job; forking another", (int)job->proc.pid);
		close(job->proc.fd);
		job->proc.fd = -1;
		if (child_job_fork(job, &err)) {
			child_job_watch(job);
			return;
		}
		job->cb(err.code, &err, job->arg);
		child_job_free(job);
		return;
	}
	int code = child_died(job->proc.pid, st, job->change, &err);
	job->cb(code, &err, job->arg);
	child_job_free(job);
}

static void
child_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct child_job *job = arg;
	kill(-job->proc.pid, SIGKILL);
	kill(job->proc.pid, SIGKILL);
	/* Whether it dies is seen as EOF on the socket (the read event stays
	 * armed and frees the job then); a child stuck in the kernel never
	 * closes it, and the job stays until it does. */
	struct verr err = { 0 };
	child_timeout_msg(job->change, job->timeout_ms, job->proc.pid, false, &err);
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
	job->proc = child_proc_none;
	job->base = base;
	job->fn = fn;
	job->cb = cb;
	job->arg = arg;
	job->timeout_ms = timeout_ms;
	job->change = json_deep_copy(change);
	job->saved = saved ? json_deep_copy(saved) : NULL;
	if (child_spare_take(fn, change, saved, job))
		job->reused = true;
	else if (!child_job_fork(job, err)) {
		child_job_free(job);
		return NULL;
	}
	child_job_watch(job);
	job->ev_timer = evtimer_new(base, child_on_timeout, job);
	if (job->ev_timer == NULL)
		fatalx("out of memory creating child events");
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(job->ev_timer, &tv);
	return job;
}

void
child_cancel(struct child_job *job)
{
	if (job == NULL)
		return;
	kill(-job->proc.pid, SIGKILL);
	kill(job->proc.pid, SIGKILL);
	int st;
	if (waitpid(job->proc.pid, &st, WNOHANG) == 0)
		log_debug("child %d killed but not yet gone; it is left to exit on its own", (int)job->proc.pid);
	child_job_free(job);
}
