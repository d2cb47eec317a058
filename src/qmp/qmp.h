/* The QMP client: drives QEMU over its monitor socket on a libevent base.
 * Knows nothing about devices. The caller hands it a connected socket (a
 * socketpair end or a UNIX socket) and its event base; nothing blocks.
 *
 * Verified with real QEMU 7.2 (tests/qmp/test-qmp-qemu.c): the monitor
 * given as `-chardev socket,id=qmp,fd=3 -mon chardev=qmp,mode=control` on a
 * socketpair end works. QEMU 7.2 emits RESUME/STOP/POWERDOWN/SHUTDOWN(quit)
 * before the command's reply and RESET either side of it, so wait for events,
 * never assume their position. A PCIe device_del is only a request: the
 * guest OS must ack it (firmware alone never does); while paused or with a
 * guest that ignores it, system_reset completes it. virtio devices report
 * DEVICE_DELETED for ".../ID/virtio-backend" first: use
 * qmp_device_deleted_matches(). */
#ifndef VFIO_QMP_H
#define VFIO_QMP_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "verr.h"

struct qmp;

/* Error classes the client itself produces, besides QEMU's own
 * ("GenericError", "CommandNotFound", "DeviceNotFound", ...). */
#define QMP_ERR_TIMEOUT      "Timeout"       /* no reply within the command's timeout */
#define QMP_ERR_DISCONNECTED "Disconnected"  /* the connection closed (QEMU died) */
#define QMP_ERR_PROTOCOL     "ProtocolError" /* QEMU sent something we cannot accept */

struct qmp_error {
	const char *class;
	const char *desc;
};

/* Exactly one call per command: ret (the "return" value) on success, err
 * otherwise. Neither pointer outlives the call. */
typedef void (*qmp_reply_cb)(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg);
/* An event: name, its "data" (may be NULL), and its timestamp in seconds. */
typedef void (*qmp_event_cb)(struct qmp *qmp, const char *name, const json_t *data, double timestamp, void *arg);

struct qmp_callbacks {
	/* Greeting read and qmp_capabilities accepted: commands flow. */
	void (*ready)(struct qmp *qmp, void *arg);
	/* The connection is gone or was closed on a protocol error; called once.
	 * Every pending command has already had its callback. */
	void (*closed)(struct qmp *qmp, const char *why, void *arg);
	/* An error without an id (a parse error on QEMU's side): reported, never
	 * matched to a pending command. May be NULL. */
	void (*stray_error)(struct qmp *qmp, const struct qmp_error *err, void *arg);
};

/* Take ownership of fd and start negotiating. Commands sent before ready()
 * are queued and go out after the capabilities handshake. Returns NULL with
 * errno set only when fd is not an open descriptor. */
struct qmp *qmp_new(struct event_base *base, int fd, const struct qmp_callbacks *cbs, void *arg);
/* Close the connection; pending callbacks get QMP_ERR_DISCONNECTED; closed()
 * is not called. Safe from inside any callback. */
void qmp_free(struct qmp *qmp);

/* Send one command. args (may be NULL) is stolen. fd >= 0 is passed as
 * SCM_RIGHTS on the same message (for getfd/add-fd); the caller keeps its
 * copy and may close it as soon as this returns (the client holds a
 * duplicate until the message is written). timeout_ms 0 means none. Returns
 * 0, or -errno when the connection is already closed (-ENOTCONN), the
 * arguments are invalid (-EINVAL) or fd is bad (-EBADF); the callback is then
 * not called. */
int qmp_send(struct qmp *qmp, const char *command, json_t *args, int fd, int timeout_ms,
    qmp_reply_cb cb, void *arg);

/* Subscribe to an event by name, or to every event with name NULL. Returns a
 * handle for qmp_unsubscribe(). */
int qmp_subscribe(struct qmp *qmp, const char *event, qmp_event_cb cb, void *arg);
void qmp_unsubscribe(struct qmp *qmp, int handle);

bool qmp_is_ready(const struct qmp *qmp);
/* After closed(): whether the client closed the connection because QEMU
 * sent something it cannot accept (QMP_ERR_PROTOCOL: garbage, an oversized
 * line, a reply to no command), rather than QEMU closing it. */
bool qmp_closed_on_protocol_error(const struct qmp *qmp);
/* The greeting's QMP.version object ({"qemu": {"major":7,...}, "package":...}), or NULL. */
const json_t *qmp_version(const struct qmp *qmp);

/* For tools and tests: send one command and run the base until its reply.
 * On success *ret gets a new reference (may be NULL if ret is NULL). */
int qmp_run_sync(struct qmp *qmp, const char *command, json_t *args, int timeout_ms,
    json_t **ret, struct verr *err);
/* For tools and tests: run the base until ready() or closed(). */
int qmp_wait_ready(struct qmp *qmp, int timeout_ms, struct verr *err);

/* True when a DEVICE_DELETED event's data names exactly device id (its
 * "device" member) or QOM path "/machine/peripheral/ID" — never a child path
 * such as ".../ID/virtio-backend". */
bool qmp_device_deleted_matches(const json_t *data, const char *id);

#endif
