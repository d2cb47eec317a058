/* Benchmark 2 (the measuring half; bench/qmp_rtt.py prints the table):
 * query-status round trips against a real QEMU started with its monitor on
 * a socketpair (fd 3, as the supervisor does), first through a minimal raw
 * loop (write the command, read to the newline: QEMU's own reply time plus
 * two syscalls), then through the real client (src/qmp, libevent, jansson).
 * Prints one JSON object: per-command latencies (p50, p99), commands per
 * second and the client's CPU time per command (getrusage). */
#include <errno.h>
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
		char *argv[] = { (char *)qemu, "-S", "-nodefaults", "-machine", "q35", "-accel", "tcg",
			"-display", "none", "-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
			NULL };
		execv(qemu, argv);
		_exit(127);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static void
stop_qemu(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
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

static json_t *
bench_raw(const char *qemu, size_t n)
{
	int fd;
	pid_t pid = spawn_qemu(qemu, &fd);
	char buf[65536];
	size_t have = 0;
	const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
	if (read_line(fd, buf, sizeof(buf), &have) < 0 || write(fd, caps, sizeof(caps) - 1) < 0 ||
	    read_line(fd, buf, sizeof(buf), &have) < 0) {
		fprintf(stderr, "qmp-rtt: raw handshake with %s failed\n", qemu);
		exit(1);
	}
	double *lat = xcalloc(n, sizeof(*lat));
	double c0 = cpu_seconds(), w0 = now();
	for (size_t i = 0; i < n; i++) {
		char cmd[128];
		int len = snprintf(cmd, sizeof(cmd), "{\"execute\":\"query-status\",\"id\":%zu}\n", i);
		double t0 = now();
		if (write(fd, cmd, (size_t)len) != len || read_line(fd, buf, sizeof(buf), &have) < 0) {
			fprintf(stderr, "qmp-rtt: raw round trip %zu failed\n", i);
			exit(1);
		}
		lat[i] = now() - t0;
	}
	json_t *s = summary(lat, n, now() - w0, cpu_seconds() - c0);
	free(lat);
	close(fd);
	stop_qemu(pid);
	return s;
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

static json_t *
bench_client(const char *qemu, size_t n)
{
	int fd;
	pid_t pid = spawn_qemu(qemu, &fd);
	struct event_base *base = event_base_new();
	static const struct qmp_callbacks cbs = { 0 };
	struct qmp *qmp = qmp_new(base, fd, &cbs, NULL);
	struct verr err = { 0 };
	if (qmp_wait_ready(qmp, 30000, &err) < 0) {
		fprintf(stderr, "qmp-rtt: %s\n", err.msg);
		exit(1);
	}
	double *lat = xcalloc(n, sizeof(*lat));
	double c0 = cpu_seconds(), w0 = now();
	for (size_t i = 0; i < n; i++) {
		struct pending p = { 0 };
		double t0 = now();
		if (qmp_send(qmp, "query-status", NULL, -1, 30000, on_reply, &p) < 0) {
			fprintf(stderr, "qmp-rtt: qmp_send failed at %zu\n", i);
			exit(1);
		}
		while (!p.done)
			event_base_loop(base, EVLOOP_ONCE);
		lat[i] = now() - t0;
		if (!p.ok) {
			fprintf(stderr, "qmp-rtt: query-status %zu failed\n", i);
			exit(1);
		}
	}
	json_t *s = summary(lat, n, now() - w0, cpu_seconds() - c0);
	free(lat);
	qmp_free(qmp);
	event_base_free(base);
	stop_qemu(pid);
	return s;
}

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
	json_t *raw = bench_raw(argv[1], n);
	json_t *client = bench_client(argv[1], n);
	json_t *out = json_pack("{s:o, s:o}", "raw", raw, "client", client);
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
	return 0;
}
