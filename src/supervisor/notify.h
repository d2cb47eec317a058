/* Readiness and status for a service manager: the sd_notify protocol (one
 * datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET), written here in a few lines rather than linking
 * libsystemd. vfio@.service is Type=notify: the supervisor sends READY=1 once
 * the guest runs (after `cont`) and STOPPING=1 when it starts tearing down. */
#ifndef VFIO_NOTIFY_H
#define VFIO_NOTIFY_H

#include "verr.h"

/* Send state (e.g. "READY=1", "STOPPING=1", "STATUS=guest running") to
 * $NOTIFY_SOCKET: a path, or an abstract socket name starting with '@'.
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty (not under a
 * service manager: nothing to do), or a negative errno with a message naming
 * the socket. Never blocks: a full receive queue is -EAGAIN. */
int notify_send(const char *state, struct verr *err);

/* notify_send() with a printf format. */
int notify_sendf(struct verr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
