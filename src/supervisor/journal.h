/* The journal: an append-only JSON-lines file in the runtime directory that
 * lets teardown, error paths and `vfio -restore` (after the supervisor was
 * killed) undo every host change from the file alone, newest first.
 *
 * Each line is one record, fsync'd (file and directory) before the caller
 * goes on:
 *   {"version": 2, "run": {...}}          first: the format, and what the run
 *                                         was started with (adopt.h reads it)
 *   {"seq": 1, "state": "begin", "change": {...}, "saved": ..., "for": ID}
 *                                         before apply(); "for" when the change
 *                                         was made for a hot-added device
 *   {"seq": 1, "state": "done"}           after apply()
 *   {"seq": 1, "state": "undone"}         after undo()
 *   {"qemu": {"pid": 1234, "start": 98765}}   QEMU spawned
 *   {"device": {"id": ..., "driver": ...}}    device_add about to be sent (its
 *                                         arguments; QEMU says whether it took it)
 *   {"device-del": ID}                    QEMU accepted device_del: pending until
 *                                         the guest lets go (DEVICE_DELETED)
 *   {"device-gone": ID}                   QEMU let go of it and what it held on
 *                                         the host was given back (release.h)
 *   {"started": true}                     the guest runs (cont): adoptable
 *   {"adopted": {"pid": 4321}}            a later supervisor took the guest over
 * A torn last line (a crash in the middle of a write) is dropped on reading.
 *
 * Format 1 (vfio before adoption) had no "version" record and only the
 * change and qemu records: it is still read (its changes restored), but its
 * QEMU cannot be adopted (its monitor died with its supervisor). A journal
 * of a format newer than JOURNAL_VERSION is refused with a message.
 *
 * Test hook: VFIO_TEST_CRASH_AT=N makes the process raise SIGKILL right after
 * its Nth record is on disk, so tests can kill the supervisor at every step. */
#ifndef VFIO_JOURNAL_H
#define VFIO_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"
#include "verr.h"

struct event_base;

enum journal_state {
	JOURNAL_BEGIN,           /* recorded; apply() may have run, fully or halfway */
	JOURNAL_DONE,            /* apply() returned success */
	JOURNAL_UNDONE,          /* undo() returned success: no longer in force */
};

struct journal_entry {
	int seq;
	json_t *change;
	json_t *saved;           /* what prepare() returned (may be JSON null) */
	enum journal_state state;
	char *for_id;            /* the hot-added device it was made for, or NULL */
};

/* The journal format written now; journals of formats 1..JOURNAL_VERSION are read. */
#define JOURNAL_VERSION 2

struct journal {
	char *path;              /* full path (host root joined) */
	int fd, dirfd;
	struct journal_entry *entries;   /* in the order they were begun */
	size_t n, cap;
	pid_t qemu_pid;          /* 0 when none was recorded */
	unsigned long long qemu_start;   /* /proc/PID/stat field 22 */
	int version;             /* 1: no version record (or an empty journal), else its version */
	json_t *run;             /* the version record's "run", NULL before it or in format 1 */
	json_t *devices;         /* id -> {"args": device_add arguments, "del": true when a
	                          * device_del was accepted}: the last device record per id */
	bool started;            /* the guest ran (cont succeeded) */
	int n_adopted;           /* how many times a later supervisor took it over */
	bool read_only;          /* journal_load(): nothing may be written */
};

/* Open (creating when missing) the journal at dir/journal and read every
 * record in it. A torn last line is cut off so appends start on a clean line. */
int journal_open(struct journal *j, const char *dir, struct verr *err);
/* Read it without changing anything (the dry run's look at a running
 * guest): -ENOENT when there is none; a torn last line is only skipped. */
int journal_load(struct journal *j, const char *dir, struct verr *err);
void journal_close(struct journal *j);

/* The records themselves, for journal_apply() and the tests (a crash
 * between them is what -restore is for). Before apply(): record the change
 * and what prepare() saved. *idx gets the entry's index for journal_done(). */
int journal_begin(struct journal *j, const json_t *change, const json_t *saved, size_t *idx,
    struct verr *err);
int journal_done(struct journal *j, size_t idx, struct verr *err);
int journal_record_qemu(struct journal *j, pid_t pid, unsigned long long start, struct verr *err);
/* The first record of a new run: the format and run (copied). */
int journal_record_run(struct journal *j, const json_t *run, struct verr *err);
/* device_add with args is about to be sent. */
int journal_record_device(struct journal *j, const json_t *args, struct verr *err);
/* QEMU accepted device_del of id: the removal is pending until DEVICE_DELETED. */
int journal_record_device_del(struct journal *j, const char *id, struct verr *err);
int journal_record_device_gone(struct journal *j, const char *id, struct verr *err);
int journal_record_started(struct journal *j, struct verr *err);
int journal_record_adopted(struct journal *j, pid_t supervisor, struct verr *err);

/* True when some change is still in force (begun and not undone). */
bool journal_in_force(const struct journal *j);

/* ---- changing the host: the one way every path takes ----
 *
 * journal_apply() is the forward twin of journal_undo_all(): it finds the
 * change's ops, runs prepare(), records "begin" (fsync'd), runs apply() and
 * records "done". An apply that may block (change_ops.may_block) runs in a
 * child (child.h) with the kind's own deadline (change_deadline_ms()); one
 * that cannot runs here. Start, the control FIFO and USB hotplug all come
 * through here, so a change is never made that the journal does not hold. */

struct journal_apply_opts {
	int bindtimeout_ms;      /* -bindtimeout in ms (<= 0: the default) */
	bool undo_on_failure;    /* a failed apply is undone (and recorded undone) at once, so
	                          * nothing stays changed; else it stays in force for teardown */
	const char *for_id;      /* the hot-added device this change is for (release.h gives
	                          * it back with the device), NULL for the run's own */
};

/* Synchronous: for start and for changes that cannot block while the loop
 * runs (a blocking change in the loop goes through journal_apply_start()).
 * Returns 0 with *idx the entry (err may hold a note, code 0, e.g. "stays
 * on vfio-pci"), or -errno with err saying what failed; *idx is then the
 * entry when the change was journaled, (size_t)-1 when it was not (prepare
 * or the journal failed: nothing changed). */
int journal_apply(struct journal *j, const json_t *change, const struct journal_apply_opts *o,
    size_t *idx, struct verr *err);

/* What an asynchronous apply or undo came to. */
struct journal_result {
	int code;                /* 0 or -errno */
	struct verr err;         /* what failed (or a note when code is 0) */
	size_t idx;              /* the journal entry */
	bool undone;             /* apply failed and undo_on_failure gave it back: not in force */
};
typedef void (*journal_done_cb)(const struct journal_result *res, void *arg);
struct journal_job;

/* Asynchronous, inside the libevent loop: prepare and "begin" now, then the
 * apply (in a child when it may block); cb runs from the loop once it is
 * over, never before this returns. NULL with err set when nothing was
 * started (prepare or the journal failed: nothing changed, cb never runs). */
struct journal_job *journal_apply_start(struct journal *j, struct event_base *base, const json_t *change,
    const struct journal_apply_opts *o, journal_done_cb cb, void *arg, struct verr *err);

/* Undo entry idx (a hot-removed device given back) and record it undone:
 * synchronously, or in the loop (cb as above, res->undone when it worked).
 * The sync form returns 0 (err may hold a note) or -errno. */
int journal_undo(struct journal *j, size_t idx, int bindtimeout_ms, struct verr *err);
struct journal_job *journal_undo_start(struct journal *j, struct event_base *base, size_t idx,
    int bindtimeout_ms, journal_done_cb cb, void *arg, struct verr *err);

/* Stop a job before its callback ran (shutdown): a child is killed; what it
 * did stays in the journal for teardown. cb is not called. NULL is fine. */
void journal_job_cancel(struct journal_job *job);

/* Undo every change still in force, newest first, through change_find();
 * undos that may block run in a child with their deadline (-bindtimeout,
 * bindtimeout_ms <= 0: the default, plus the kind's waits). Each undo is reported (log_info on success, log_error on failure) and
 * recorded. Entries that could not be undone get a line in failed (what it
 * was, why, and how to put it back by hand). Returns the number of failures. */
size_t journal_undo_all(struct journal *j, int bindtimeout_ms, struct strv *failed);

/* The change objects still in force, oldest first (a new array). */
json_t *journal_changes_in_force(const struct journal *j);
/* The indexes of the entries in force made for device id, newest first
 * (allocated, *n of them; NULL when none). */
size_t *journal_entries_for(const struct journal *j, const char *id, size_t *n);

#endif
