/* Blocking helpers for tools and tests, built on the same asynchronous code:
 * they run the caller's event base until the answer arrives. Never used by
 * the supervisor's event loop. */
#include "qmp-priv.h"

#include <errno.h>
#include <string.h>

#include "util.h"

struct qmp_sync {
	bool done;
	int rc;
	json_t *ret;
	struct verr *err;
	const char *command;
};

static void
qmp_sync_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct qmp_sync *w = arg;
	w->done = true;
	if (err == NULL) {
		w->ret = ret ? json_incref((json_t *)ret) : NULL;
		return;
	}
	if (strcmp(err->class, QMP_ERR_TIMEOUT) == 0)
		w->rc = -ETIMEDOUT;
	else if (strcmp(err->class, QMP_ERR_DISCONNECTED) == 0)
		w->rc = -ENOTCONN;
	else if (strcmp(err->class, QMP_ERR_PROTOCOL) == 0)
		w->rc = -EPROTO;
	else
		w->rc = -EIO;
	verr_set(w->err, w->rc, "QMP command '%s' failed: %s: %s", w->command, err->class, err->desc);
}

int
qmp_run_sync(struct qmp *qmp, const char *command, json_t *args, int timeout_ms,
    json_t **ret, struct verr *err)
{
	struct qmp_sync w = { .err = err, .command = command };
	if (ret != NULL)
		*ret = NULL;
	int rc = qmp_send(qmp, command, args, -1, timeout_ms, qmp_sync_reply, &w);
	if (rc < 0)
		return verr_set(err, rc, "cannot send QMP command '%s': %s", command,
		    rc == -ENOTCONN ? "the QMP connection is closed" : strerror(-rc));
	qmp_ref(qmp);
	struct event_base *base = qmp_base(qmp);
	while (!w.done) {
		/* The monitor socket stays registered until the command is
		 * answered or failed, so the loop always has work. */
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	}
	qmp_unref(qmp);
	if (!w.done)
		return verr_set(err, -EIO, "QMP command '%s': the event loop stopped before its reply", command);
	if (w.rc < 0) {
		json_decref(w.ret);
		return w.rc;
	}
	if (ret != NULL)
		*ret = w.ret;
	else
		json_decref(w.ret);
	return 0;
}

static void
qmp_sync_expired(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

int
qmp_wait_ready(struct qmp *qmp, int timeout_ms, struct verr *err)
{
	bool expired = false;
	struct event *t = NULL;
	struct event_base *base = qmp_base(qmp);
	if (timeout_ms > 0) {
		t = evtimer_new(base, qmp_sync_expired, &expired);
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		evtimer_add(t, &tv);
	}
	qmp_ref(qmp);
	while (!qmp_is_ready(qmp) && !qmp_is_closed(qmp) && !expired) {
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	}
	int rc = 0;
	if (qmp_is_ready(qmp))
		rc = 0;
	else if (qmp_is_closed(qmp))
		rc = verr_set(err, -ENOTCONN, "QMP handshake with QEMU failed: %s", qmp_close_reason(qmp));
	else if (expired)
		rc = verr_set(err, -ETIMEDOUT, "QEMU did not complete the QMP handshake within %d ms; "
		    "is it really QEMU on the other end of the monitor socket?", timeout_ms);
	else
		rc = verr_set(err, -EIO, "QMP handshake: the event loop stopped");
	qmp_unref(qmp);
	if (t != NULL)
		event_free(t);
	return rc;
}
