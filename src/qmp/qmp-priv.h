/* Internals of the QMP client shared between its files and with the tests
 * and the fuzzer: the line reader, message classification, fd passing and
 * the reference count that makes qmp_free() safe from inside callbacks. */
#ifndef VFIO_QMP_PRIV_H
#define VFIO_QMP_PRIV_H

#include <stddef.h>
#include <sys/types.h>

#include "qmp.h"

/* QEMU sends one JSON object per line; a line longer than this (the whole
 * query-qmp-schema is a few hundred KiB) means something is badly wrong. */
#define QMP_MAX_LINE (64u * 1024 * 1024)

/* Splits the byte stream into lines and parses each as JSON. Bytes are
 * appended at the end; complete lines are consumed from `start`. */
struct qmp_reader {
	char *buf;
	size_t start;    /* first unconsumed byte */
	size_t len;      /* bytes held, from 0 */
	size_t cap;
	size_t scan;     /* bytes from start already searched for '\n' */
	size_t max_line;
};

void qmp_reader_init(struct qmp_reader *r, size_t max_line);
void qmp_reader_free(struct qmp_reader *r);
/* Room for at least `want` more bytes; commit what was written with
 * qmp_reader_commit(). */
char *qmp_reader_space(struct qmp_reader *r, size_t want);
void qmp_reader_commit(struct qmp_reader *r, size_t n);
void qmp_reader_feed(struct qmp_reader *r, const void *data, size_t n);
/* Bytes received but not yet part of a complete line. */
size_t qmp_reader_pending(const struct qmp_reader *r);
/* 1 with *msg (a new reference to a JSON object) for the next complete line,
 * 0 when more bytes are needed, or -EPROTO with err filled when the stream
 * cannot be accepted (over-long line, invalid JSON, not an object). After an
 * error the reader must not be used again except to free it. */
int qmp_reader_next(struct qmp_reader *r, json_t **msg, struct verr *err);

enum qmp_msg_kind {
	QMP_MSG_INVALID = 0,
	QMP_MSG_GREETING,    /* {"QMP": {...}} */
	QMP_MSG_EVENT,       /* {"event": NAME, "data": ..., "timestamp": ...} */
	QMP_MSG_REPLY,       /* {"return": ...} or {"error": ...}, with "id" */
	QMP_MSG_STRAY_ERROR, /* {"error": ...} without "id" */
};
/* Route a message by its keys, never by its position in the stream. */
enum qmp_msg_kind qmp_msg_classify(const json_t *msg, struct verr *err);
/* The class and desc of an "error" member (never NULL strings). */
void qmp_msg_error(const json_t *msg, struct qmp_error *out);
/* An event's timestamp in seconds, or 0 when absent. */
double qmp_msg_timestamp(const json_t *msg);

/* Send bytes on a stream socket without blocking, with fd (>= 0) attached as
 * SCM_RIGHTS to this very chunk. Returns bytes sent or -errno. */
ssize_t qmp_fd_send(int sock, const void *buf, size_t len, int fd);
/* A close-on-exec duplicate of fd, or -errno. */
int qmp_fd_dup(int fd);

/* Hold the client alive across callbacks that may call qmp_free(). */
void qmp_ref(struct qmp *qmp);
void qmp_unref(struct qmp *qmp);
/* Why the connection closed, or NULL while it is open. */
const char *qmp_close_reason(const struct qmp *qmp);
bool qmp_is_closed(const struct qmp *qmp);
struct event_base *qmp_base(const struct qmp *qmp);
/* Tests lower the line bound to exercise it cheaply. */
void qmp_set_max_line(struct qmp *qmp, size_t max_line);

#endif
