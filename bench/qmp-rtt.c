/* Benchmark 2 (the measuring half; bench/qmp_rtt.py prints the table):
 * query-status round trips against a real QEMU started with its monitor on
 * a socketpair (fd 3, as the supervisor does), through a minimal raw loop
 * (write the command, read to the newline: QEMU's own reply time plus two
 * syscalls) and through the real client (src/qmp, libevent, jansson),
 * alternating blocks of each on the same QEMU.
 * Prints one JSON object: per-command latencies (p50, p99), commands per
 * second and the client's CPU time per command (getrusage). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "qmp.h"
#include "util.h"

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* QEMU is stopped however this program ends: a QEMU left holding the
 * inherited stdout would keep the caller waiting for it forever. */
static pid_t qemu_pid;

static void
stop_qemu_at_exit(void)
{
	if (qemu_pid > 0) {
		kill(qemu_pid, SIGTERM);
		waitpid(qemu_pid, NULL, 0);
	}
}

static pid_t
spawn_qemu(const char *qemu, int *sock)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(sv[1], 3);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		char *argv[] = { (char *)qemu, "-S", "-nodefaults", "-machine", "q35", "-accel", "tcg",
			"-display", "none", "-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
			NULL };
		execv(qemu, argv);
		_exit(127);
	}
	close(sv[1]);
	*sock = sv[0];
	qemu_pid = pid;
	atexit(stop_qemu_at_exit);
	return pid;
}

static void
stop_qemu(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	qemu_pid = 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
	if (k >= n)
		k = n - 1;
	return v[k];
}

/* Read one line (up to '\n') from fd into buf. */
static int
read_line(int fd, char *buf, size_t size, size_t *have)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *have);
		if (nl != NULL) {
			size_t len = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, *have - len);
			*have -= len;
			return 0;
		}
		if (*have == size)
			return -1;
		ssize_t n = read(fd, buf + *have, size - *have);
		if (n < 0 && errno == EAGAIN) {
			/* the client made the socket non-blocking */
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			if (poll(&pfd, 1, 30000) <= 0)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

static json_t *
summary(double *lat, size_t n, double wall, double cpu)
{
	qsort(lat, n, sizeof(*lat), cmp_double);
	return json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "n", (int)n, "p50_s", pct(lat, n, 50),
	    "p99_s", pct(lat, n, 99), "per_s", (double)n / wall, "cpu_per_cmd_s", cpu / (double)n,
	    "wall_s", wall);
}

/* One raw round trip on the monitor fd: write the command, read to the
 * newline of its reply. QEMU's own reply time plus two syscalls. */
static double
raw_round_trip(int fd, size_t i, char *buf, size_t size, size_t *have)
{
	char cmd[128];
	int len = snprintf(cmd, sizeof(cmd), "{\"execute\":\"query-status\",\"id\":\"raw-%zu\"}\n", i);
	double t0 = now();
	if (write(fd, cmd, (size_t)len) != len || read_line(fd, buf, size, have) < 0) {
		fprintf(stderr, "qmp-rtt: raw round trip %zu failed\n", i);
		exit(1);
	}
	return now() - t0;
}

struct pending {
	bool done;
	bool ok;
};

static void
on_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct pending *p = arg;
	p->done = true;
	p->ok = err == NULL && json_is_object(ret);
}

static double
client_round_trip(struct event_base *base, struct qmp *qmp, size_t i)
{
	struct pending p = { 0 };
	double t0 = now();
	if (qmp_send(qmp, "query-status", NULL, -1, 30000, on_reply, &p) < 0) {
		fprintf(stderr, "qmp-rtt: qmp_send failed at %zu\n", i);
		exit(1);
	}
	while (!p.done)
		event_base_loop(base, EVLOOP_ONCE);
	if (!p.ok) {
		fprintf(stderr, "qmp-rtt: query-status %zu failed\n", i);
		exit(1);
	}
	return now() - t0;
}

/* Both loops run against the same QEMU, in alternating blocks, so QEMU's
 * reply time (which drifts with the machine's load) is the same for both
 * and the difference is the client's. Between the client's commands the
 * loop is not run, so the raw loop has the socket to itself: the client
 * has nothing in flight and nothing buffered then. */
#define BLOCK 100

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: qmp-rtt QEMU-BINARY N\n");
		return 2;
	}
	size_t n = strtoul(argv[2], NULL, 10);
	if (n == 0)
		return 2;
	const char *qemu = argv[1];
	int fd;
	pid_t pid = spawn_qemu(qemu, &fd);
	struct event_base *base = event_base_new();
	static const struct qmp_callbacks cbs = { 0 };
	struct qmp *qmp = qmp_new(base, fd, &cbs, NULL);
	struct verr err = { 0 };
	if (qmp_wait_ready(qmp, 30000, &err) < 0) {
		fprintf(stderr, "qmp-rtt: %s\n", err.msg);
		return 1;
	}

	double *lat_raw = xcalloc(n, sizeof(double)), *lat_client = xcalloc(n, sizeof(double));
	double cpu_raw = 0, cpu_client = 0, wall_raw = 0, wall_client = 0;
	char buf[65536];
	size_t have = 0;
	for (size_t done = 0; done < n; done += BLOCK) {
		size_t end = done + BLOCK < n ? done + BLOCK : n;
		/* The raw loop blocks in read(), the least a client can do;
		 * the client wants its socket non-blocking back. */
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		double c0 = cpu_seconds(), w0 = now();
		for (size_t i = done; i < end; i++)
			lat_raw[i] = raw_round_trip(fd, i, buf, sizeof(buf), &have);
		double c1 = cpu_seconds(), w1 = now();
		fcntl(fd, F_SETFL, fl);
		for (size_t i = done; i < end; i++)
			lat_client[i] = client_round_trip(base, qmp, i);
		cpu_raw += c1 - c0;
		wall_raw += w1 - w0;
		cpu_client += cpu_seconds() - c1;
		wall_client += now() - w1;
	}
	if (have != 0) {
		fprintf(stderr, "qmp-rtt: %zu unexpected bytes from QEMU after the raw loop\n", have);
		return 1;
	}
	json_t *out = json_pack("{s:o, s:o}", "raw", summary(lat_raw, n, wall_raw, cpu_raw),
	    "client", summary(lat_client, n, wall_client, cpu_client));
	free(lat_raw);
	free(lat_client);
	qmp_free(qmp);
	event_base_free(base);
	stop_qemu(pid);
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
	return 0;
}
