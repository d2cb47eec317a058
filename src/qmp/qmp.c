/* The QMP connection: greeting, capabilities negotiation, commands with ids,
 * replies matched by id, timeouts, event subscriptions, and the close path
 * that fails every pending command exactly once. Framing lives in
 * qmp-reader.c, fd passing in qmp-fd.c, the blocking helpers in qmp-sync.c. */
#include "qmp-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum qmp_state {
	QMP_STATE_GREETING,    /* waiting for {"QMP": ...} */
	QMP_STATE_NEGOTIATING, /* qmp_capabilities sent */
	QMP_STATE_READY,
	QMP_STATE_CLOSED,
};

enum qmp_cmd_state {
	QMP_CMD_HELD,   /* sent before ready(): goes out after negotiation */
	QMP_CMD_QUEUED, /* in the output queue, maybe partly written */
	QMP_CMD_SENT,
};

struct qmp_cmd {
	TAILQ_ENTRY(qmp_cmd) entry;  /* qmp->cmds: every command awaiting a reply */
	TAILQ_ENTRY(qmp_cmd) oentry; /* qmp->outq while QUEUED */
	struct qmp *qmp;
	enum qmp_cmd_state state;
	json_int_t id;
	char *name;
	char *line;                  /* the serialised command, "\n"-terminated */
	size_t len, off;
	int fd;                      /* our duplicate of the fd to pass, or -1 */
	int timeout_ms;
	struct event *timer;
	bool timed_out;              /* callback done; a late reply is dropped */
	bool internal;               /* qmp_capabilities */
	qmp_reply_cb cb;
	void *arg;
};
TAILQ_HEAD(qmp_cmds, qmp_cmd);

struct qmp_sub {
	TAILQ_ENTRY(qmp_sub) entry;
	int handle;
	char *name;                  /* NULL: every event */
	qmp_event_cb cb;
	void *arg;
	bool removed;
};
TAILQ_HEAD(qmp_subs, qmp_sub);

struct qmp {
	struct event_base *base;
	int fd;
	struct event *rd, *wr;
	struct qmp_callbacks cbs;
	void *arg;
	enum qmp_state state;
	int refs;
	bool freed;                  /* the owner called qmp_free() */
	char *why;                   /* why the connection closed */
	bool protocol_error;         /* ... because of what QEMU sent */
	json_t *version;
	struct qmp_reader reader;
	struct qmp_cmds cmds, outq;
	json_int_t next_id;
	struct qmp_subs subs;
	int next_handle;
	int dispatching;             /* depth of event delivery */
};

static void qmp_on_read(evutil_socket_t fd, short what, void *arg);
static void qmp_on_write(evutil_socket_t fd, short what, void *arg);
static void qmp_close(struct qmp *qmp, const char *class, const char *why, bool notify);

void
qmp_ref(struct qmp *qmp)
{
	qmp->refs++;
}

static void
qmp_sub_purge(struct qmp *qmp, bool all)
{
	struct qmp_sub *s = TAILQ_FIRST(&qmp->subs), *t;
	for (; s != NULL; s = t) {
		t = TAILQ_NEXT(s, entry);
		if (all || s->removed) {
			TAILQ_REMOVE(&qmp->subs, s, entry);
			free(s->name);
			free(s);
		}
	}
}

void
qmp_unref(struct qmp *qmp)
{
	if (--qmp->refs > 0)
		return;
	/* Only reachable after qmp_free(), which closed everything. */
	qmp_sub_purge(qmp, true);
	if (qmp->rd != NULL)
		event_free(qmp->rd);
	if (qmp->wr != NULL)
		event_free(qmp->wr);
	qmp_reader_free(&qmp->reader);
	json_decref(qmp->version);
	free(qmp->why);
	free(qmp);
}

const char *
qmp_close_reason(const struct qmp *qmp)
{
	return qmp->why;
}

bool
qmp_is_closed(const struct qmp *qmp)
{
	return qmp->state == QMP_STATE_CLOSED;
}

struct event_base *
qmp_base(const struct qmp *qmp)
{
	return qmp->base;
}

void
qmp_set_max_line(struct qmp *qmp, size_t max_line)
{
	qmp->reader.max_line = max_line;
}

bool
qmp_is_ready(const struct qmp *qmp)
{
	return qmp->state == QMP_STATE_READY;
}

bool
qmp_closed_on_protocol_error(const struct qmp *qmp)
{
	return qmp->state == QMP_STATE_CLOSED && qmp->protocol_error;
}

const json_t *
qmp_version(const struct qmp *qmp)
{
	return qmp->version;
}

struct qmp *
qmp_new(struct event_base *base, int fd, const struct qmp_callbacks *cbs, void *arg)
{
	/* The event loop must never block on QEMU. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;
		if (fl >= 0)
			close(fd); /* ours, though unusable; a bad number is not */
		errno = e;
		return NULL;
	}
	struct qmp *qmp = xcalloc(1, sizeof(*qmp));
	qmp->base = base;
	qmp->fd = fd;
	if (cbs != NULL)
		qmp->cbs = *cbs;
	qmp->arg = arg;
	qmp->refs = 1;
	qmp->next_id = 1;
	qmp->next_handle = 1;
	qmp->state = QMP_STATE_GREETING;
	TAILQ_INIT(&qmp->cmds);
	TAILQ_INIT(&qmp->outq);
	TAILQ_INIT(&qmp->subs);
	qmp_reader_init(&qmp->reader, QMP_MAX_LINE);

	qmp->rd = event_new(base, fd, EV_READ | EV_PERSIST, qmp_on_read, qmp);
	qmp->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, qmp_on_write, qmp);
	if (qmp->rd == NULL || qmp->wr == NULL)
		fatalx("qmp: event_new failed");
	event_add(qmp->rd, NULL);
	return qmp;
}

void
qmp_free(struct qmp *qmp)
{
	if (qmp == NULL || qmp->freed)
		return;
	qmp->freed = true;
	struct qmp_sub *s;
	TAILQ_FOREACH(s, &qmp->subs, entry)
		s->removed = true;
	qmp_close(qmp, QMP_ERR_DISCONNECTED, "the QMP client was closed by its owner", false);
	qmp_unref(qmp);
}

static void
qmp_cmd_free(struct qmp_cmd *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c->name);
	free(c->line);
	free(c);
}

/* Remove c from every list and free it. */
static void
qmp_cmd_drop(struct qmp *qmp, struct qmp_cmd *c)
{
	if (c->state == QMP_CMD_QUEUED)
		TAILQ_REMOVE(&qmp->outq, c, oentry);
	TAILQ_REMOVE(&qmp->cmds, c, entry);
	qmp_cmd_free(c);
}

/* Call c's callback once, then forget c. The client stays alive across the
 * callback whatever it does. */
static void
qmp_cmd_finish(struct qmp *qmp, struct qmp_cmd *c, const json_t *ret, const struct qmp_error *err)
{
	qmp_reply_cb cb = c->cb;
	void *arg = c->arg;
	qmp_cmd_drop(qmp, c);
	if (cb != NULL)
		cb(qmp, ret, err, arg);
}

static void
qmp_kick(struct qmp *qmp)
{
	if (qmp->state != QMP_STATE_CLOSED && !TAILQ_EMPTY(&qmp->outq))
		event_add(qmp->wr, NULL);
}

static void
qmp_queue(struct qmp *qmp, struct qmp_cmd *c)
{
	c->state = QMP_CMD_QUEUED;
	c->off = 0;
	TAILQ_INSERT_TAIL(&qmp->outq, c, oentry);
	qmp_kick(qmp);
}

static void
qmp_close(struct qmp *qmp, const char *class, const char *why, bool notify)
{
	if (qmp->state == QMP_STATE_CLOSED)
		return;
	log_debug("qmp: closing: %s", why);
	qmp->state = QMP_STATE_CLOSED;
	qmp->why = xstrdup(why);
	qmp->protocol_error = strcmp(class, QMP_ERR_PROTOCOL) == 0;
	event_del(qmp->rd);
	event_del(qmp->wr);
	if (qmp->fd >= 0)
		close(qmp->fd);
	qmp->fd = -1;

	qmp_ref(qmp);
	struct qmp_error err = { .class = class, .desc = qmp->why };
	struct qmp_cmd *c;
	while ((c = TAILQ_FIRST(&qmp->cmds)) != NULL) {
		if (c->timed_out || c->internal)
			qmp_cmd_drop(qmp, c);
		else
			qmp_cmd_finish(qmp, c, NULL, &err);
	}
	if (notify && !qmp->freed && qmp->cbs.closed != NULL)
		qmp->cbs.closed(qmp, qmp->why, qmp->arg);
	qmp_unref(qmp);
}

static void
qmp_protocol_error(struct qmp *qmp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
qmp_protocol_error(struct qmp *qmp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	qmp_close(qmp, QMP_ERR_PROTOCOL, msg, true);
	free(msg);
}

static void
qmp_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct qmp_cmd *c = arg;
	struct qmp *qmp = c->qmp;
	char *desc = xasprintf("QEMU did not answer '%s' within %d ms", c->name, c->timeout_ms);
	struct qmp_error err = { .class = QMP_ERR_TIMEOUT, .desc = desc };
	qmp_reply_cb cb = c->cb;
	void *cbarg = c->arg;

	if (c->state == QMP_CMD_HELD || (c->state == QMP_CMD_QUEUED && c->off == 0)) {
		/* Never reached QEMU: it will not run, so forget it. */
		qmp_cmd_drop(qmp, c);
	} else {
		/* QEMU has it and may still answer; keep the id so that the
		 * late reply is recognised and dropped. */
		c->timed_out = true;
		c->cb = NULL;
	}
	qmp_ref(qmp);
	if (cb != NULL)
		cb(qmp, NULL, &err, cbarg);
	qmp_unref(qmp);
	free(desc);
}

static struct qmp_cmd *
qmp_cmd_new(struct qmp *qmp, const char *command, json_t *args, int fd, int timeout_ms,
    qmp_reply_cb cb, void *arg, int *rc)
{
	json_t *msg = json_object();
	json_object_set_new(msg, "execute", json_string(command));
	if (args != NULL)
		json_object_set_new(msg, "arguments", args);
	json_int_t id = qmp->next_id++;
	json_object_set_new(msg, "id", json_integer(id));
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (s == NULL) {
		*rc = -EINVAL;
		return NULL;
	}
	struct qmp_cmd *c = xcalloc(1, sizeof(*c));
	c->qmp = qmp;
	c->id = id;
	c->name = xstrdup(command);
	c->len = strlen(s) + 1;
	c->line = xasprintf("%s\n", s);
	free(s);
	c->fd = -1;
	if (fd >= 0 && (c->fd = qmp_fd_dup(fd)) < 0) {
		*rc = c->fd;
		c->fd = -1;
		qmp_cmd_free(c);
		return NULL;
	}
	c->cb = cb;
	c->arg = arg;
	c->timeout_ms = timeout_ms;
	if (timeout_ms > 0) {
		c->timer = evtimer_new(qmp->base, qmp_on_timeout, c);
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		evtimer_add(c->timer, &tv);
	}
	TAILQ_INSERT_TAIL(&qmp->cmds, c, entry);
	return c;
}

int
qmp_send(struct qmp *qmp, const char *command, json_t *args, int fd, int timeout_ms,
    qmp_reply_cb cb, void *arg)
{
	if (command == NULL || *command == '\0' || (args != NULL && !json_is_object(args)) ||
	    timeout_ms < 0) {
		json_decref(args);
		return -EINVAL;
	}
	if (qmp->state == QMP_STATE_CLOSED) {
		json_decref(args);
		return -ENOTCONN;
	}
	int rc = 0;
	struct qmp_cmd *c = qmp_cmd_new(qmp, command, args, fd, timeout_ms, cb, arg, &rc);
	if (c == NULL)
		return rc;
	log_debug("qmp: -> %.*s%s", c->len > 500 ? 500 : (int)c->len - 1, c->line, c->len > 500 ? "..." : "");
	if (qmp->state == QMP_STATE_READY)
		qmp_queue(qmp, c);
	else
		c->state = QMP_CMD_HELD;
	return 0;
}

int
qmp_subscribe(struct qmp *qmp, const char *event, qmp_event_cb cb, void *arg)
{
	struct qmp_sub *s = xcalloc(1, sizeof(*s));
	s->handle = qmp->next_handle++;
	s->name = event ? xstrdup(event) : NULL;
	s->cb = cb;
	s->arg = arg;
	TAILQ_INSERT_TAIL(&qmp->subs, s, entry);
	return s->handle;
}

void
qmp_unsubscribe(struct qmp *qmp, int handle)
{
	struct qmp_sub *s;
	TAILQ_FOREACH(s, &qmp->subs, entry) {
		if (s->handle == handle)
			s->removed = true;
	}
	if (qmp->dispatching == 0)
		qmp_sub_purge(qmp, false);
}

static void
qmp_on_capabilities(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	if (err != NULL) {
		qmp_protocol_error(qmp, "QEMU refused qmp_capabilities (%s: %s)", err->class, err->desc);
		return;
	}
	qmp->state = QMP_STATE_READY;
	struct qmp_cmd *c;
	TAILQ_FOREACH(c, &qmp->cmds, entry) {
		if (c->state == QMP_CMD_HELD)
			qmp_queue(qmp, c);
	}
	if (qmp->cbs.ready != NULL)
		qmp->cbs.ready(qmp, qmp->arg);
}

static void
qmp_handle_greeting(struct qmp *qmp, const json_t *msg)
{
	if (qmp->state != QMP_STATE_GREETING) {
		qmp_protocol_error(qmp, "QEMU sent a second QMP greeting");
		return;
	}
	const json_t *v = json_object_get(json_object_get(msg, "QMP"), "version");
	if (v != NULL)
		qmp->version = json_incref((json_t *)v);
	int rc = 0;
	struct qmp_cmd *c = qmp_cmd_new(qmp, "qmp_capabilities", NULL, -1, 0, qmp_on_capabilities, NULL, &rc);
	if (c == NULL) {
		qmp_protocol_error(qmp, "cannot build qmp_capabilities");
		return;
	}
	c->internal = true;
	/* Capabilities go out before anything the owner queued early: move
	 * it to the front of the pending list too so replies line up. */
	TAILQ_REMOVE(&qmp->cmds, c, entry);
	TAILQ_INSERT_HEAD(&qmp->cmds, c, entry);
	qmp->state = QMP_STATE_NEGOTIATING;
	qmp_queue(qmp, c);
}

static void
qmp_handle_event(struct qmp *qmp, const json_t *msg)
{
	const char *name = json_string_value(json_object_get(msg, "event"));
	const json_t *data = json_object_get(msg, "data");
	if (json_is_null(data))
		data = NULL;
	double ts = qmp_msg_timestamp(msg);
	log_debug("qmp: event %s", name);
	/* Subscribers added by a callback start with the next event. */
	int limit = qmp->next_handle;
	qmp->dispatching++;
	struct qmp_sub *s;
	TAILQ_FOREACH(s, &qmp->subs, entry) {
		if (s->removed || s->handle >= limit || (s->name != NULL && strcmp(s->name, name) != 0))
			continue;
		s->cb(qmp, name, data, ts, s->arg);
		if (qmp->freed)
			break;
	}
	qmp->dispatching--;
	if (qmp->dispatching == 0)
		qmp_sub_purge(qmp, false);
}

static void
qmp_handle_reply(struct qmp *qmp, const json_t *msg)
{
	const json_t *idv = json_object_get(msg, "id");
	struct qmp_cmd *c = NULL;
	if (json_is_integer(idv)) {
		json_int_t id = json_integer_value(idv);
		TAILQ_FOREACH(c, &qmp->cmds, entry) {
			if (c->id == id && c->state == QMP_CMD_SENT)
				break;
		}
	}
	if (c == NULL) {
		char *s = json_dumps(idv, JSON_COMPACT | JSON_ENCODE_ANY);
		qmp_protocol_error(qmp, "QEMU replied to id %s, which no pending command has", s ? s : "?");
		free(s);
		return;
	}
	if (c->timed_out) {
		log_debug("qmp: dropping the late reply to '%s' (id %" JSON_INTEGER_FORMAT ")", c->name, c->id);
		qmp_cmd_drop(qmp, c);
		return;
	}
	if (json_object_get(msg, "error") != NULL) {
		struct qmp_error err;
		qmp_msg_error(msg, &err);
		qmp_cmd_finish(qmp, c, NULL, &err);
	} else {
		qmp_cmd_finish(qmp, c, json_object_get(msg, "return"), NULL);
	}
}

static void
qmp_dispatch(struct qmp *qmp, const json_t *msg)
{
	struct verr err = { 0 };
	switch (qmp_msg_classify(msg, &err)) {
	case QMP_MSG_GREETING:
		qmp_handle_greeting(qmp, msg);
		break;
	case QMP_MSG_EVENT:
		qmp_handle_event(qmp, msg);
		break;
	case QMP_MSG_REPLY:
		qmp_handle_reply(qmp, msg);
		break;
	case QMP_MSG_STRAY_ERROR: {
		struct qmp_error e;
		qmp_msg_error(msg, &e);
		log_debug("qmp: error without id: %s: %s", e.class, e.desc);
		if (qmp->cbs.stray_error != NULL)
			qmp->cbs.stray_error(qmp, &e, qmp->arg);
		break;
	}
	case QMP_MSG_INVALID:
		qmp_protocol_error(qmp, "%s", err.msg);
		break;
	}
}

static void
qmp_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct qmp *qmp = arg;
	char *p = qmp_reader_space(&qmp->reader, 65536);
	ssize_t n = recv(fd, p, 65536, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		char *why = xasprintf("reading from QEMU's monitor failed: %s", strerror(errno));
		qmp_close(qmp, QMP_ERR_DISCONNECTED, why, true);
		free(why);
		return;
	}
	if (n == 0) {
		size_t left = qmp_reader_pending(&qmp->reader);
		char *why = left ? xasprintf("QEMU closed the QMP connection in the middle of a "
		    "message (%zu bytes unterminated)", left) : xstrdup("QEMU closed the QMP connection");
		qmp_close(qmp, QMP_ERR_DISCONNECTED, why, true);
		free(why);
		return;
	}
	qmp_reader_commit(&qmp->reader, (size_t)n);

	qmp_ref(qmp);
	while (qmp->state != QMP_STATE_CLOSED) {
		json_t *msg;
		struct verr err = { 0 };
		int rc = qmp_reader_next(&qmp->reader, &msg, &err);
		if (rc < 0) {
			qmp_protocol_error(qmp, "%s", err.msg);
			break;
		}
		if (rc == 0)
			break;
		qmp_dispatch(qmp, msg);
		json_decref(msg);
	}
	qmp_unref(qmp);
}

static void
qmp_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct qmp *qmp = arg;
	struct qmp_cmd *c;
	while ((c = TAILQ_FIRST(&qmp->outq)) != NULL) {
		ssize_t n = qmp_fd_send(fd, c->line + c->off, c->len - c->off, c->off == 0 ? c->fd : -1);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n < 0) {
			char *why = xasprintf("writing '%s' to QEMU's monitor failed: %s", c->name, strerror((int)-n));
			qmp_close(qmp, QMP_ERR_DISCONNECTED, why, true);
			free(why);
			return;
		}
		if (c->off == 0 && c->fd >= 0) {
			/* QEMU has its own copy now. */
			close(c->fd);
			c->fd = -1;
		}
		c->off += (size_t)n;
		if (c->off == c->len) {
			TAILQ_REMOVE(&qmp->outq, c, oentry);
			c->state = QMP_CMD_SENT;
		}
	}
	event_del(qmp->wr);
}
