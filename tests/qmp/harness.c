/* The test harness: see harness.h. Children are started with fork+execve;
 * the monitor end is dup2()ed to fd 3 as the supervisor does. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

const char *
harness_mock_path(void)
{
	const char *p = getenv("QEMU_MOCK");
	if (p == NULL || *p == '\0') {
		fprintf(stderr, "QEMU_MOCK is not set: run this test through meson\n");
		exit(1);
	}
	return p;
}

static void
on_ready(struct qmp *qmp, void *arg)
{
	struct harness *h = arg;
	h->ready++;
}

static void
on_closed(struct qmp *qmp, const char *why, void *arg)
{
	struct harness *h = arg;
	h->closed++;
	snprintf(h->closed_why, sizeof(h->closed_why), "%s", why);
}

static void
on_stray(struct qmp *qmp, const struct qmp_error *err, void *arg)
{
	struct harness *h = arg;
	h->stray++;
	snprintf(h->stray_desc, sizeof(h->stray_desc), "%s: %s", err->class, err->desc);
}

static void
on_event(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	struct harness *h = arg;
	json_t *e = json_pack("{s:s, s:f}", "event", name, "ts", ts);
	if (data != NULL)
		json_object_set_new(e, "data", json_deep_copy(data));
	json_array_append_new(h->events, e);
}

void
harness_start(struct harness *h, const char *prog, const char *const *args, const char *scenario, bool raw)
{
	static const char *const dflt[] = {
		"-S", "-nodefaults", "-machine", "q35", "-accel", "tcg", "-display", "none", "-smp", "2",
		"-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
		"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0,multifunction=on",
		"-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,port=2,addr=0x1c.1",
		NULL,
	};
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/vfio-qmp-test.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->scenario, sizeof(h->scenario), "%s/scenario.json", h->dir);
	snprintf(h->record, sizeof(h->record), "%s/record.jsonl", h->dir);
	snprintf(h->argv, sizeof(h->argv), "%s/argv.json", h->dir);
	if (scenario != NULL) {
		FILE *f = fopen(h->scenario, "w");
		assert_non_null(f);
		fputs(scenario, f);
		assert_int_equal(fclose(f), 0);
	}
	if (args == NULL)
		args = dflt;
	if (prog == NULL)
		prog = harness_mock_path();

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	size_t n = 0;
	while (args[n] != NULL)
		n++;
	char **argv = calloc(n + 2, sizeof(char *));
	argv[0] = (char *)prog;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];

	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0) {
		if (scenario != NULL)
			setenv("QMP_MOCK_SCENARIO", h->scenario, 1);
		else
			unsetenv("QMP_MOCK_SCENARIO");
		setenv("QMP_MOCK_RECORD", h->record, 1);
		setenv("QMP_MOCK_ARGV", h->argv, 1);
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		/* Real QEMU would fill the terminal with warnings otherwise. */
		execv(prog, argv);
		_exit(127);
	}
	free(argv);
	close(sv[1]);
	h->base = event_base_new();
	h->events = json_array();
	if (raw) {
		h->raw = true;
		h->sock = sv[0];
		return;
	}
	static const struct qmp_callbacks cbs = {
		.ready = on_ready, .closed = on_closed, .stray_error = on_stray,
	};
	h->qmp = qmp_new(h->base, sv[0], &cbs, h);
	qmp_subscribe(h->qmp, NULL, on_event, h);
}

static void
reap(struct harness *h, bool block)
{
	if (h->reaped || h->pid <= 0)
		return;
	int st;
	pid_t r = waitpid(h->pid, &st, block ? 0 : WNOHANG);
	if (r == h->pid) {
		h->status = st;
		h->reaped = true;
	}
}

void
harness_stop(struct harness *h)
{
	if (h->qmp != NULL)
		qmp_free(h->qmp);
	h->qmp = NULL;
	if (h->raw && h->sock >= 0)
		close(h->sock);
	reap(h, false);
	if (!h->reaped && h->pid > 0) {
		kill(h->pid, SIGKILL);
		reap(h, true);
	}
	if (h->base != NULL)
		event_base_free(h->base);
	json_decref(h->events);
	unlink(h->scenario);
	unlink(h->record);
	unlink(h->argv);
	rmdir(h->dir);
}

static void
expired(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

void
harness_run_until(struct harness *h, const int *flag, int timeout_ms)
{
	int timed_out = 0;
	struct event *t = evtimer_new(h->base, expired, &timed_out);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(t, &tv);
	while (!*flag && !timed_out)
		event_base_loop(h->base, EVLOOP_ONCE);
	event_free(t);
	if (!*flag)
		fail_msg("timed out after %d ms waiting for the expected outcome", timeout_ms);
}

void
harness_run_for(struct harness *h, int ms)
{
	int done = 0;
	struct event *t = evtimer_new(h->base, expired, &done);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(t, &tv);
	while (!done)
		event_base_loop(h->base, EVLOOP_ONCE);
	event_free(t);
}

int
harness_wait_exit(struct harness *h, int timeout_ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	for (int waited = 0; !h->reaped && waited < timeout_ms; waited += 10) {
		reap(h, false);
		if (!h->reaped)
			nanosleep(&ts, NULL);
	}
	if (!h->reaped)
		fail_msg("the child did not exit within %d ms", timeout_ms);
	return h->status;
}

json_t *
harness_record(struct harness *h)
{
	json_t *a = json_array();
	FILE *f = fopen(h->record, "r");
	if (f == NULL)
		return a;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_error_t err;
		json_t *v = json_loads(line, 0, &err);
		if (v == NULL)
			fail_msg("bad record line: %s", line);
		json_array_append_new(a, v);
	}
	free(line);
	fclose(f);
	return a;
}

int
harness_count_events(struct harness *h, const char *name)
{
	int n = 0;
	size_t i;
	json_t *e;
	json_array_foreach(h->events, i, e)
		if (strcmp(json_string_value(json_object_get(e, "event")), name) == 0)
			n++;
	return n;
}

void
harness_reply_cb(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct harness_reply *r = arg;
	r->done++;
	if (err != NULL) {
		snprintf(r->cls, sizeof(r->cls), "%s", err->class);
		snprintf(r->desc, sizeof(r->desc), "%s", err->desc);
	} else {
		r->ret = ret ? json_deep_copy(ret) : json_null();
	}
}

void
harness_reply_clear(struct harness_reply *r)
{
	json_decref(r->ret);
	memset(r, 0, sizeof(*r));
}
