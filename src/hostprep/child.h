/* Running a host change that can block in the kernel (unbinding a GPU that a
 * process holds) in a child process with a deadline, so neither startup nor
 * the event loop can hang on it.
 *
 * The child runs one change_ops function (apply or undo) and reports its
 * return code and struct verr through a pipe; a child that does not report in
 * time is killed (its whole process group, SIGKILL) and the report names the
 * processes that hold the device when the change's target is a PCI address
 * (display.c). A child stuck in an uninterruptible sleep in the kernel cannot
 * be killed: that is reported, never waited for. */
#ifndef VFIO_CHILD_H
#define VFIO_CHILD_H

#include <jansson.h>
#include <stdbool.h>

#include "verr.h"

struct event_base;

/* The shape of change_ops.apply and change_ops.undo. */
typedef int (*child_fn)(const json_t *change, const json_t *saved, struct verr *err);

#define CHILD_TIMEOUT_MS_DEFAULT 5000	/* when the caller gives no deadline */

/* Synchronous, for startup and teardown (before and after the event loop):
 * runs fn(change, saved) in a child and waits at most timeout_ms for it.
 * Returns fn's result with err as fn filled it (fn may return 0 with a note in
 * err->msg, e.g. "stays on vfio-pci"); -ETIMEDOUT when the deadline passed
 * (err says what timed out, which processes hold the device and, when the
 * killed child did not die, that it is stuck in the kernel); -ECHILD when the
 * child died without reporting (a crash); -errno when fork/pipe failed. */
int child_run(child_fn fn, const json_t *change, const json_t *saved, int timeout_ms,
    struct verr *err);

/* Asynchronous, inside the libevent loop (hot add/remove while the guest
 * runs): called once with what child_run would have returned. err is only
 * valid during the call. */
typedef void (*child_done_cb)(int code, const struct verr *err, void *arg);

struct child_job;

/* Starts fn(change, saved) in a child; cb runs from the loop when the child
 * reports, dies, or timeout_ms passes (the child is then killed). The job
 * frees itself after cb returns; change and saved are copied, the caller
 * keeps its own. The child is reaped with waitpid(pid): a SIGCHLD handler
 * elsewhere must reap only the pids it started. The child may be the spare
 * of an earlier job (child_spare_drop). Returns NULL with err set when
 * the child could not be started (cb is then never called). */
struct child_job *child_start(struct event_base *base, child_fn fn, const json_t *change,
    const json_t *saved, int timeout_ms, child_done_cb cb, void *arg, struct verr *err);

/* Stops a job before its callback ran (shutdown): kills the child and frees
 * the job; cb is not called. */
void child_cancel(struct child_job *job);

/* A child_start child that reported in time stays as the spare, idle, and
 * runs the next child_start job instead of a new fork (see child.c for
 * why). It dies with the supervisor; this lets it go and reaps it, for the
 * end of a run. */
void child_spare_drop(void);

#endif
