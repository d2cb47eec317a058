/* Test harness: runs qemu-mock (or real QEMU) on a socketpair monitor and a
 * QMP client on it, and collects what the client reports. */
#ifndef VFIO_TEST_QMP_HARNESS_H
#define VFIO_TEST_QMP_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "qmp.h"

struct harness {
	struct event_base *base;
	struct qmp *qmp;
	pid_t pid;
	int status;                 /* wait status once reaped */
	bool reaped;
	char dir[64];               /* private temporary directory */
	char scenario[128], record[128], argv[128];
	/* what the client reported */
	int ready, closed, stray;
	char closed_why[512];
	char stray_desc[256];
	json_t *events;             /* [{"event": NAME, "data": ..., "ts": ...}] */
	bool raw;                   /* no client: the test drives the socket */
	int sock;                   /* our end when raw */
};

/* Where qemu-mock is (env QEMU_MOCK, set by meson). */
const char *harness_mock_path(void);
/* Start `prog` (NULL: qemu-mock) with argv `args` (NULL-terminated, without
 * argv[0]; NULL: a default -S command line with the monitor on fd 3) and
 * the scenario text (NULL: none). A client is attached unless raw. */
void harness_start(struct harness *h, const char *prog, const char *const *args, const char *scenario, bool raw);
void harness_stop(struct harness *h);
/* Run the loop until *flag becomes nonzero; fail the test after timeout_ms. */
void harness_run_until(struct harness *h, const int *flag, int timeout_ms);
/* Run the loop for ms milliseconds (to see that something does NOT happen). */
void harness_run_for(struct harness *h, int ms);
/* Wait for the child to exit and return its wait status. */
int harness_wait_exit(struct harness *h, int timeout_ms);
/* Everything the mock recorded, one object per command. */
json_t *harness_record(struct harness *h);
/* Number of events named name received so far. */
int harness_count_events(struct harness *h, const char *name);

/* One command through the client, waiting for its reply: returns the
 * "return" value (new reference) or NULL, with the error in cls and desc. */
struct harness_reply {
	int done;
	json_t *ret;
	char cls[64];
	char desc[512];
};
void harness_reply_cb(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg);
void harness_reply_clear(struct harness_reply *r);

#endif
