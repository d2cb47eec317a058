/* QMP framing and message classification: bytes in, JSON objects out.
 * QEMU writes one compact JSON object per line ending in "\r\n"; reads can
 * split a message anywhere or carry several. Everything here is bounded and
 * pure so the fuzzer can drive it directly. */
#include "qmp-priv.h"

#include <errno.h>
#include <string.h>

#include "util.h"

void
qmp_reader_init(struct qmp_reader *r, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->max_line = max_line ? max_line : QMP_MAX_LINE;
}

void
qmp_reader_free(struct qmp_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

char *
qmp_reader_space(struct qmp_reader *r, size_t want)
{
	/* After a big reply (the schema) do not keep megabytes for the rest
	 * of the session. */
	if (r->start == r->len && r->cap > (1u << 20)) {
		free(r->buf);
		r->buf = NULL;
		r->cap = r->len = r->start = r->scan = 0;
	}
	/* Drop consumed bytes before growing, so a long session of small
	 * messages keeps a small buffer. */
	if (r->start > 0 && (r->start == r->len || r->cap - r->len < want)) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len < want) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap - r->len < want)
			cap *= 2;
		r->buf = xreallocarray(r->buf, cap, 1);
		r->cap = cap;
	}
	return r->buf + r->len;
}

void
qmp_reader_commit(struct qmp_reader *r, size_t n)
{
	r->len += n;
}

void
qmp_reader_feed(struct qmp_reader *r, const void *data, size_t n)
{
	if (n == 0)
		return;
	memcpy(qmp_reader_space(r, n), data, n);
	qmp_reader_commit(r, n);
}

size_t
qmp_reader_pending(const struct qmp_reader *r)
{
	return r->len - r->start;
}

static bool
line_is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int
qmp_reader_next(struct qmp_reader *r, json_t **msg, struct verr *err)
{
	*msg = NULL;
	if (r->buf == NULL)
		return 0;
	for (;;) {
		char *line = r->buf + r->start;
		size_t avail = r->len - r->start;
		/* Only search bytes not searched before: a multi-MiB reply
		 * arriving in 64 KiB reads stays linear. */
		char *nl = avail > r->scan ? memchr(line + r->scan, '\n', avail - r->scan) : NULL;
		if (nl == NULL) {
			r->scan = avail;
			if (avail > r->max_line)
				return verr_set(err, -EPROTO,
				    "QMP message longer than %zu bytes without a newline; "
				    "QEMU's monitor output is corrupt", r->max_line);
			return 0;
		}
		size_t n = (size_t)(nl - line);
		r->start += n + 1;
		r->scan = 0;
		if (n > r->max_line)
			return verr_set(err, -EPROTO,
			    "QMP message of %zu bytes is over the %zu-byte limit", n, r->max_line);
		if (line_is_blank(line, n))
			continue;
		/* The line is not NUL-terminated: quote at most its own bytes. */
		int shown = n > 80 ? 80 : (int)n;
		json_error_t jerr;
		json_t *v = json_loadb(line, n, JSON_DECODE_ANY, &jerr);
		if (v == NULL)
			return verr_set(err, -EPROTO, "QMP message is not valid JSON (%s at byte %d): %.*s%s",
			    jerr.text, jerr.position, shown, line, n > 80 ? "..." : "");
		if (!json_is_object(v)) {
			json_decref(v);
			return verr_set(err, -EPROTO, "QMP message is JSON but not an object: %.*s%s",
			    shown, line, n > 80 ? "..." : "");
		}
		*msg = v;
		return 1;
	}
}

enum qmp_msg_kind
qmp_msg_classify(const json_t *msg, struct verr *err)
{
	if (!json_is_object(msg)) {
		verr_set(err, -EPROTO, "QMP message is not a JSON object");
		return QMP_MSG_INVALID;
	}
	json_t *v;
	if ((v = json_object_get(msg, "event")) != NULL) {
		if (!json_is_string(v)) {
			verr_set(err, -EPROTO, "QMP event name is not a string");
			return QMP_MSG_INVALID;
		}
		json_t *data = json_object_get(msg, "data");
		if (data != NULL && !json_is_object(data) && !json_is_null(data)) {
			verr_set(err, -EPROTO, "QMP event %s has data that is not an object", json_string_value(v));
			return QMP_MSG_INVALID;
		}
		return QMP_MSG_EVENT;
	}
	if ((v = json_object_get(msg, "QMP")) != NULL) {
		if (!json_is_object(v)) {
			verr_set(err, -EPROTO, "QMP greeting is not an object");
			return QMP_MSG_INVALID;
		}
		return QMP_MSG_GREETING;
	}
	bool has_id = json_object_get(msg, "id") != NULL;
	if ((v = json_object_get(msg, "error")) != NULL) {
		if (!json_is_object(v)) {
			verr_set(err, -EPROTO, "QMP error member is not an object");
			return QMP_MSG_INVALID;
		}
		return has_id ? QMP_MSG_REPLY : QMP_MSG_STRAY_ERROR;
	}
	if (json_object_get(msg, "return") != NULL) {
		if (!has_id) {
			verr_set(err, -EPROTO, "QMP reply without an id; the client never sends a command without one");
			return QMP_MSG_INVALID;
		}
		return QMP_MSG_REPLY;
	}
	verr_set(err, -EPROTO, "QMP message has none of \"QMP\", \"event\", \"return\" or \"error\"");
	return QMP_MSG_INVALID;
}

void
qmp_msg_error(const json_t *msg, struct qmp_error *out)
{
	const json_t *e = json_object_get(msg, "error");
	const char *class = json_string_value(json_object_get(e, "class"));
	const char *desc = json_string_value(json_object_get(e, "desc"));
	out->class = class ? class : "GenericError";
	out->desc = desc ? desc : "(QEMU gave no description)";
}

double
qmp_msg_timestamp(const json_t *msg)
{
	const json_t *ts = json_object_get(msg, "timestamp");
	const json_t *s = json_object_get(ts, "seconds");
	const json_t *us = json_object_get(ts, "microseconds");
	double t = 0;
	if (json_is_number(s))
		t = json_number_value(s);
	if (json_is_number(us))
		t += json_number_value(us) / 1e6;
	return t;
}

/* Pure message inspection, so the fuzzer reaches it too. */
bool
qmp_device_deleted_matches(const json_t *data, const char *id)
{
	if (data == NULL || id == NULL)
		return false;
	const char *dev = json_string_value(json_object_get(data, "device"));
	const char *path = json_string_value(json_object_get(data, "path"));
	static const char prefix[] = "/machine/peripheral/";
	if (dev != NULL && strcmp(dev, id) == 0)
		return true;
	return path != NULL && strncmp(path, prefix, sizeof(prefix) - 1) == 0 &&
	    strcmp(path + sizeof(prefix) - 1, id) == 0;
}
