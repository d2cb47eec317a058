/* Signal events for the loop and process identity checks. The /proc read
 * here is the real /proc, not the host root: the processes are this
 * machine's (QEMU is our child), while the host root describes hardware. */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const int proc_signal_list[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD };

struct proc_signal_ctx {
	proc_signal_cb cb;
	void *arg;
};

static struct proc_signal_ctx proc_signal_ctx;

static void
proc_signal_event(evutil_socket_t signo, short events, void *arg)
{
	struct proc_signal_ctx *ctx = arg;
	ctx->cb((int)signo, ctx->arg);
}

void
proc_signals_add(struct proc_signals *ps, struct event_base *base, proc_signal_cb cb, void *arg)
{
	signal(SIGPIPE, SIG_IGN);
	proc_signal_ctx = (struct proc_signal_ctx){ cb, arg };
	for (size_t i = 0; i < nitems(proc_signal_list); i++) {
		ps->ev[i] = evsignal_new(base, proc_signal_list[i], proc_signal_event, &proc_signal_ctx);
		if (ps->ev[i] == NULL || evsignal_add(ps->ev[i], NULL) < 0)
			fatalx("cannot watch signal %d", proc_signal_list[i]);
	}
}

void
proc_signals_free(struct proc_signals *ps)
{
	for (size_t i = 0; i < nitems(ps->ev); i++) {
		if (ps->ev[i] != NULL)
			event_free(ps->ev[i]);
		ps->ev[i] = NULL;
	}
}

int
proc_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -EINVAL;
	p++;
	char state = 0;
	unsigned long long v = 0;
	/* Field 3 is the state; field 22 is the start time. */
	char *save = NULL;
	int field = 2;
	for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 3)
			state = tok[0];
		if (field == 22) {
			v = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (field != 22)
		return -EINVAL;
	if (state == 'Z' || state == 'X')
		return -ESRCH;
	*start = v;
	return 0;
}

bool
proc_matches(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	return pid > 0 && proc_start_time(pid, &now) == 0 && now == start;
}

/* Wait until the process behind pidfd exits (the pidfd turns readable), or
 * until it is a zombie nobody reaps. */
static bool
proc_wait_exit(int pidfd, pid_t pid, unsigned long long start, int timeout_ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 || !proc_matches(pid, start);
}

int
proc_pidfd(pid_t pid, unsigned long long start)
{
	if (pid <= 0)
		return -ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -ESRCH;
	if (!proc_matches(pid, start)) {
		close(fd);
		return -ESRCH;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

int
proc_pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0 ? 0 : -errno;
}

int
proc_terminate(pid_t pid, unsigned long long start, int term_ms, int kill_ms, struct verr *err)
{
	if (pid <= 0)
		return 0;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return 0;       /* no such process: already gone */
	/* Checked after the pidfd is held, so the pid cannot be reused between
	 * the check and the signal. */
	if (!proc_matches(pid, start)) {
		close(pidfd);
		return 0;
	}
	log_info("QEMU (pid %d) from the previous run is still running: asking it to quit", (int)pid);
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) == 0 &&
	    proc_wait_exit(pidfd, pid, start, term_ms)) {
		close(pidfd);
		return 0;
	}
	log_warnx("QEMU (pid %d) did not quit within %d s: killing it", (int)pid, term_ms / 1000);
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	bool gone = proc_wait_exit(pidfd, pid, start, kill_ms);
	close(pidfd);
	if (!gone)
		return verr_set(err, -EBUSY, "QEMU (pid %d) from the previous run does not go away "
		    "even after SIGKILL; the devices it holds cannot be returned until it does "
		    "(check `cat /proc/%d/stack`), then run `vfio -restore` again", (int)pid, (int)pid);
	return 0;
}

size_t
proc_holding(int fd, pid_t *pids, size_t max)
{
	struct stat want;
	if (fstat(fd, &want) < 0)
		return 0;
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d != NULL && n < max && (de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == (long)getpid())
			continue;
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *fds = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (fds == NULL) {
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		struct dirent *fe;
		while ((fe = readdir(fds)) != NULL) {
			struct stat st;
			if (fe->d_name[0] != '.' && fstatat(dirfd(fds), fe->d_name, &st, 0) == 0 &&
			    st.st_dev == want.st_dev && st.st_ino == want.st_ino) {
				pids[n++] = (pid_t)pid;
				break;
			}
		}
		closedir(fds);
	}
	if (d != NULL)
		closedir(d);
	return n;
}

bool
proc_wait_gone(const pid_t *pids, size_t n, int timeout_ms)
{
	bool gone = true;
	long long deadline = time_now_ms() + timeout_ms;
	for (size_t i = 0; i < n; i++) {
		int pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0);
		if (pidfd < 0)
			continue;       /* gone already */
		long long left = deadline - time_now_ms();
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		int r;
		do
			r = poll(&pfd, 1, left > 0 ? (int)left : 0);
		while (r < 0 && errno == EINTR);
		gone = gone && r > 0;
		close(pidfd);
	}
	return gone;
}
