/* The control FIFO and its replies file: reading lines, answering them, and
 * the requests in flight. What each command does is in control-cmds.c. */
#include "control-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "journal.h"
#include "log.h"
#include "qmp.h"

struct qmp *
control_qmp(struct control *c)
{
	struct qmp *q = c->h.qmp != NULL ? *c->h.qmp : NULL;
	return q != NULL && qmp_is_ready(q) ? q : NULL;
}

/* --- replies --------------------------------------------------------------- */

/* Room for CONTROL_REPLIES_MAX bytes, taken now, so that appends need no
 * space later; -ENOSPC when the disk has not that much. A filesystem that
 * cannot reserve still works, without the guarantee. */
static int
control_replies_reserve(int fd)
{
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, CONTROL_REPLIES_MAX) == 0)
		return 0;
	return errno == ENOSPC || errno == EDQUOT ? -errno : 0;
}

static int
control_replies_create(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && control_replies_reserve(fd) < 0) {
		close(fd);
		unlink(path);
		errno = ENOSPC;
		return -1;
	}
	return fd;
}

/* Start the current file over in place: the last resort of a full disk. */
static void
control_replies_restart(struct control *c)
{
	if (ftruncate(c->replies_fd, 0) < 0)
		return;
	c->replies_len = 0;
	control_replies_reserve(c->replies_fd);
}

/* A new replies file for the replies to come (see control.h). */
static void
control_replies_rotate(struct control *c)
{
	char *tmp = xasprintf("%s.new", c->replies_path);
	unlink(tmp);
	int fd = control_replies_create(tmp);
	if (fd >= 0 && rename(tmp, c->replies_path) == 0) {
		close(c->replies_fd);
		c->replies_fd = fd;
		c->replies_len = 0;
	} else {
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		control_replies_restart(c);
	}
	free(tmp);
}

static ssize_t
control_replies_append(struct control *c, const char *s, size_t len)
{
	ssize_t n;
	do
		n = write(c->replies_fd, s, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && n != (ssize_t)len) {
		/* Never half a reply: a reader would take it for one. */
		if (ftruncate(c->replies_fd, c->replies_len) < 0)
			log_warn("cannot cut a short reply off %s", c->replies_path);
		errno = ENOSPC;
		n = -1;
	}
	return n;
}

static void
control_write_reply(struct control *c, const char *tag, const char *kind, const char *msg)
{
	bool ok = strcmp(kind, "error") != 0;
	struct strbuf sb = { 0 };
	if (tag != NULL)
		strbuf_printf(&sb, "@%s ", tag);
	strbuf_puts(&sb, kind);
	if (msg != NULL && msg[0] != '\0') {
		strbuf_puts(&sb, " ");
		size_t at = sb.len;
		strbuf_puts(&sb, msg);
		/* One reply, one line, whatever the message holds. */
		for (size_t i = at; i < sb.len; i++) {
			if (sb.s[i] == '\n' || sb.s[i] == '\r')
				sb.s[i] = ' ';
		}
	}
	if (ok)
		log_info("control: %s", sb.s);
	else
		log_warnx("control: %s", sb.s);
	strbuf_puts(&sb, "\n");
	if (c->replies_len > 0 && c->replies_len + (off_t)sb.len > CONTROL_REPLIES_MAX)
		control_replies_rotate(c);
	/* One write with O_APPEND: replies from interleaved commands never mix. */
	ssize_t n = control_replies_append(c, sb.s, sb.len);
	if (n < 0 && (errno == ENOSPC || errno == EDQUOT) && c->replies_len > 0) {
		/* The disk is full past what was reserved: make room by dropping
		 * the replies already there, which their readers had time to read. */
		control_replies_restart(c);
		n = control_replies_append(c, sb.s, sb.len);
	}
	if (n < 0)
		log_warn("cannot append the reply to %s", c->replies_path);
	else
		c->replies_len += n;
	strbuf_free(&sb);
}

static void
control_req_free(struct control_req *req)
{
	struct control *c = req->c;
	struct control_req **pp = &c->pending;
	while (*pp != NULL && *pp != req)
		pp = &(*pp)->next;
	if (*pp == req)
		*pp = req->next;
	if (req->port != NULL) {
		for (size_t i = 0; i < c->reserved_ports.n; i++) {
			if (strcmp(c->reserved_ports.v[i], req->port) == 0) {
				free(c->reserved_ports.v[i]);
				memmove(&c->reserved_ports.v[i], &c->reserved_ports.v[i + 1],
				    (c->reserved_ports.n - i) * sizeof(char *));
				c->reserved_ports.n--;
				break;
			}
		}
	}
	journal_job_cancel(req->job);
	if (req->fd >= 0)
		close(req->fd);
	free(req->tag);
	free(req->line);
	for (int i = 0; i < req->argc; i++)
		free(req->argv[i]);
	free(req->argv);
	free(req->id);
	free(req->netdev);
	free(req->port);
	free(req->addr);
	free(req->fdname);
	json_decref(req->change);
	free(req->why);
	free(req);
}

void
control_reply(struct control_req *req, bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	control_write_reply(req->c, req->tag, ok ? "ok" : "error", msg);
	free(msg);
	control_req_free(req);
}

void
control_reply_pending(struct control_req *req, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	control_write_reply(req->c, req->tag, "pending", msg);
	free(msg);
	control_req_free(req);
}

void
control_reply_bad(struct control *c, const char *tag, const char *msg)
{
	control_write_reply(c, tag, "error", msg);
}

/* --- lines ------------------------------------------------------------------ */

static void
control_run_line(struct control *c, struct control_line *l)
{
	struct verr err = { 0 };
	size_t used = 0;
	const struct control_cmd_entry *e = control_cmd_find(l->words.v, l->words.n, &used, &err);
	if (e == NULL) {
		control_reply_bad(c, l->tag, err.msg);
		return;
	}
	struct control_req *req = xcalloc(1, sizeof(*req));
	req->c = c;
	req->fd = -1;
	req->entry = e;
	req->tag = l->tag;
	l->tag = NULL;
	struct strbuf sb = { 0 };
	for (size_t i = 0; i < l->words.n; i++) {
		if (i > 0)
			strbuf_puts(&sb, " ");
		shell_quote(&sb, l->words.v[i]);
	}
	req->line = strbuf_steal(&sb);
	size_t n = l->words.n - used;
	char **args = l->words.v + used;
	/* force only means something to a command that takes it (pci del):
	 * elsewhere it stays a word and the argument check refuses it. */
	if (n > 0 && strcmp(args[n - 1], "force") == 0 && (e->info.flags & CONTROL_CMD_FORCE)) {
		req->force = true;
		n--;
	}
	req->argv = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		req->argv[req->argc++] = xstrdup(args[i]);
	req->next = c->pending;
	c->pending = req;
	log_info("control: %s%s%s%s", req->tag ? "@" : "", req->tag ? req->tag : "", req->tag ? " " : "",
	    req->line);

	if (req->argc < e->min_args || (e->max_args >= 0 && req->argc > e->max_args)) {
		control_reply(req, false, "%s takes %s%s%s; see help", e->info.name,
		    e->info.usage[0] ? e->info.usage : "no arguments", e->info.usage[0] ? " (" : "",
		    e->info.usage[0] ? (req->argc < e->min_args ? "missing argument)" : "too many arguments)") : "");
		return;
	}
	if ((e->info.flags & CONTROL_CMD_GUEST) && (!c->h.running(c->h.arg) || control_qmp(c) == NULL)) {
		control_reply(req, false, "%s needs the running guest, and the guest is %s; try again once it "
		    "runs", e->info.name, c->h.state(c->h.arg));
		return;
	}
	e->exec(req);
}

static void
control_line(struct control *c, const char *buf, size_t len)
{
	struct control_line l;
	struct verr err = { 0 };
	int r = control_parse(buf, len, &l, &err);
	if (r == 1)
		return;
	if (r < 0)
		control_reply_bad(c, l.tag, err.msg);
	else
		control_run_line(c, &l);
	control_line_free(&l);
}

static void
control_line_too_long(struct control *c)
{
	/* Only the tag is read from what was kept; the rest was never looked at. */
	struct control_line l;
	struct verr err = { 0 };
	control_parse(c->buf, c->len, &l, &err);
	char *msg = xasprintf("the command is %zu bytes long, more than the %d allowed: it was dropped "
	    "unread; shorten it (a regex can match fewer characters)", c->overflow_len, CONTROL_LINE_MAX);
	control_reply_bad(c, l.tag, msg);
	free(msg);
	control_line_free(&l);
}

static void
control_partial_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct control *c = arg;
	if (c->len == 0 && !c->overflow)
		return;
	struct control_line l;
	struct verr err = { 0 };
	control_parse(c->buf, c->len, &l, &err);
	char *msg = xasprintf("an incomplete command (%zu bytes without a newline for %d ms: the writer "
	    "closed or stalled) was dropped; end each command with a newline",
	    c->overflow ? c->overflow_len : c->len, CONTROL_PARTIAL_MS);
	control_reply_bad(c, l.tag, msg);
	free(msg);
	control_line_free(&l);
	c->len = 0;
	c->overflow = false;
	c->overflow_len = 0;
}

static void
control_feed(struct control *c, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (!c->overflow && c->len + take > CONTROL_LINE_MAX) {
			/* Keep what fits (the tag is in it), count the rest. */
			size_t room = CONTROL_LINE_MAX + 1 - c->len;
			memcpy(c->buf + c->len, p, room);
			c->overflow_len = c->len + take;
			c->len += room;
			c->overflow = true;
		} else if (c->overflow) {
			c->overflow_len += take;
		} else {
			memcpy(c->buf + c->len, p, take);
			c->len += take;
		}
		if (nl == NULL)
			break;
		if (c->overflow)
			control_line_too_long(c);
		else
			control_line(c, c->buf, c->len);
		c->len = 0;
		c->overflow = false;
		c->overflow_len = 0;
		p += take + 1;
		n -= take + 1;
	}
}

static void
control_read(evutil_socket_t fd, short events, void *arg)
{
	struct control *c = arg;
	char buf[8192];
	/* A bounded helping per wakeup: a writer that never stops cannot starve
	 * QMP and signals (the level-triggered event comes back for the rest). */
	for (int round = 0; round < 16; round++) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* We hold a writer ourselves, so this is not EOF but a broken FIFO. */
			log_warn("cannot read the control FIFO %s; commands are no longer read", c->fifo_path);
			event_del(c->ev);
			return;
		}
		control_feed(c, buf, (size_t)n);
	}
	if (c->len > 0 || c->overflow) {
		struct timeval tv = { CONTROL_PARTIAL_MS / 1000, (CONTROL_PARTIAL_MS % 1000) * 1000 };
		evtimer_add(c->partial_timer, &tv);
	} else {
		evtimer_del(c->partial_timer);
	}
}

/* --- life -------------------------------------------------------------------- */

static int
control_make_fifo(struct control *c, struct verr *err)
{
	/* A leftover of a killed run (the directory is ours: 0700). */
	unlink(c->fifo_path);
	if (mkfifo(c->fifo_path, 0600) < 0)
		return verr_set(err, -errno, "cannot create the control FIFO %s: %s", c->fifo_path,
		    strerror(errno));
	c->fd = open(c->fifo_path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (c->fd < 0)
		return verr_set(err, -errno, "cannot open the control FIFO %s: %s", c->fifo_path,
		    strerror(errno));
	struct stat st;
	if (fstat(c->fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return verr_set(err, -EINVAL, "%s is not the FIFO just created: something else replaced it; "
		    "check who writes to %s", c->fifo_path, c->h.rundir);
	if (fchmod(c->fd, 0600) < 0)
		return verr_set(err, -errno, "cannot make %s private (0600): %s", c->fifo_path, strerror(errno));
	unlink(c->replies_path);
	c->replies_fd = control_replies_create(c->replies_path);
	if (c->replies_fd < 0)
		return verr_set(err, -errno, "cannot create the replies file %s: %s%s", c->replies_path,
		    strerror(errno), errno == ENOSPC ? " (the control FIFO needs 64 KiB free on /run)" : "");
	fchmod(c->replies_fd, 0600);
	return 0;
}

struct control *
control_open(const struct control_host *h, struct verr *err)
{
	struct control *c = xcalloc(1, sizeof(*c));
	c->h = *h;
	c->fd = c->replies_fd = -1;
	c->fifo_path = xasprintf("%s/control", h->rundir);
	c->replies_path = xasprintf("%s/replies", h->rundir);
	if (control_make_fifo(c, err) < 0) {
		control_close(c);
		return NULL;
	}
	c->ev = event_new(h->base, c->fd, EV_READ | EV_PERSIST, control_read, c);
	c->partial_timer = evtimer_new(h->base, control_partial_timeout, c);
	event_add(c->ev, NULL);
	log_debug("control FIFO %s ready", c->fifo_path);
	return c;
}

void
control_close(struct control *c)
{
	if (c == NULL)
		return;
	while (c->pending != NULL)
		control_reply(c->pending, false, "the supervisor is stopping: this command did not finish");
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->partial_timer != NULL)
		event_free(c->partial_timer);
	if (c->fd >= 0) {
		close(c->fd);
		unlink(c->fifo_path);
	}
	if (c->replies_fd >= 0) {
		close(c->replies_fd);
		unlink(c->replies_path);
	}
	strv_free(&c->reserved_ports);
	strv_free(&c->lost);
	free(c->fifo_path);
	free(c->replies_path);
	free(c);
}

json_t *
control_status_json(struct control *c)
{
	json_t *pending = json_array();
	for (struct control_req *r = c->pending; r != NULL; r = r->next) {
		if (r->job != NULL || r->id != NULL)   /* a long command, not this status */
			json_array_append_new(pending, json_string(r->line));
	}
	return json_pack("{s:i, s:s, s:s, s:o, s:o}", "version", CONTROL_STATUS_VERSION, "name", c->h.name,
	    "state", c->h.state(c->h.arg), "devices", devices_json(c->h.devs), "pending", pending);
}
