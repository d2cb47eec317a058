/* libFuzzer target for the whole client: the input is what "QEMU" says on
 * the monitor socket, while two commands (sent before the greeting, as the
 * supervisor does) wait for replies. Exercises routing by keys, the
 * handshake, id matching, stray errors and every protocol-error path, and
 * checks the client's promises: every command's callback runs exactly once,
 * closed() at most once. Without libFuzzer, main() replays files. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	int replies[2];
	int closed;
	int ready;
	int events;
};

static void
on_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	int *n = arg;
	if ((ret == NULL) == (err == NULL))
		abort(); /* exactly one of them */
	if (err != NULL && (err->class == NULL || err->desc == NULL))
		abort();
	(*n)++;
}

static void
on_ready(struct qmp *qmp, void *arg)
{
	((struct run *)arg)->ready++;
}

static void
on_closed(struct qmp *qmp, const char *why, void *arg)
{
	if (why == NULL || *why == '\0')
		abort();
	((struct run *)arg)->closed++;
}

static void
on_event(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	((struct run *)arg)->events++;
}

static void
on_stray(struct qmp *qmp, const struct qmp_error *err, void *arg)
{
}

/* Returns true when the client closed the connection itself. */
static bool
session(const uint8_t *data, size_t size, struct run *run)
{
	static struct event_base *base;
	if (base == NULL)
		base = event_base_new();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	int big = 1 << 21;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	static const struct qmp_callbacks cbs = { .ready = on_ready, .closed = on_closed, .stray_error = on_stray };
	memset(run, 0, sizeof(*run));
	struct qmp *qmp = qmp_new(base, sv[0], &cbs, run);
	qmp_subscribe(qmp, NULL, on_event, run);
	qmp_send(qmp, "query-status", NULL, -1, 0, on_reply, &run->replies[0]);
	qmp_send(qmp, "query-name", NULL, -1, 0, on_reply, &run->replies[1]);
	/* Line by line, letting the client run in between, as with a real
	 * QEMU: it answers only what the client has already sent. Inputs
	 * bigger than the socket buffer are cut (-max_len keeps them small;
	 * the reader's own bound is tested elsewhere). */
	size_t off = 0;
	while (off < size && run->closed == 0) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
		ssize_t n = write(sv[1], data + off, len);
		if (n <= 0)
			break;
		off += (size_t)n;
		for (int i = 0; i < 4; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	shutdown(sv[1], SHUT_WR);
	while (run->closed == 0)
		event_base_loop(base, EVLOOP_ONCE);
	bool closed_by_client = qmp_is_closed(qmp);
	/* Every pending command was answered or failed exactly once. */
	if (run->replies[0] != 1 || run->replies[1] != 1 || run->closed != 1)
		abort();
	qmp_free(qmp);
	close(sv[1]);
	return closed_by_client;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run run;
	(void)session(data, size, &run);
	return 0;
}

#ifndef VFIO_LIBFUZZER
/* Replay sessions: each must reach ready() and answer both commands. */
int
main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			fprintf(stderr, "%s: cannot open\n", argv[i]);
			return 1;
		}
		static uint8_t buf[1 << 20];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct run run;
		session(buf, n, &run);
		if (run.ready != 1) {
			fprintf(stderr, "%s: the client did not become ready\n", argv[i]);
			failed++;
		} else {
			printf("%s: ready, %d event(s)\n", argv[i], run.events);
		}
	}
	return failed ? 1 : 0;
}
#endif
