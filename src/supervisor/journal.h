/* The journal: an append-only JSON-lines file in the runtime directory that
 * lets teardown, error paths and `vfio -restore` (after the supervisor was
 * killed) undo every host change from the file alone, newest first.
 *
 * Each line is one record, fsync'd (file and directory) before the caller
 * goes on:
 *   {"seq": 1, "state": "begin", "change": {...}, "saved": ...}  before apply()
 *   {"seq": 1, "state": "done"}                                   after apply()
 *   {"seq": 1, "state": "undone"}                                 after undo()
 *   {"qemu": {"pid": 1234, "start": 98765}}                       QEMU spawned
 * A torn last line (a crash in the middle of a write) is dropped on reading.
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
};

struct journal {
	char *path;              /* full path (host root joined) */
	int fd, dirfd;
	struct journal_entry *entries;   /* in the order they were begun */
	size_t n, cap;
	pid_t qemu_pid;          /* 0 when none was recorded */
	unsigned long long qemu_start;   /* /proc/PID/stat field 22 */
};

/* Open (creating when missing) the journal at dir/journal and read every
 * record in it. A torn last line is cut off so appends start on a clean line. */
int journal_open(struct journal *j, const char *dir, struct verr *err);
void journal_close(struct journal *j);

/* Before apply(): record the change and what prepare() saved. *idx gets the
 * entry's index for journal_done(). */
int journal_begin(struct journal *j, const json_t *change, const json_t *saved, size_t *idx,
    struct verr *err);
int journal_done(struct journal *j, size_t idx, struct verr *err);
/* After undo() of entry idx succeeded while running (a hot-removed device
 * given back): it is no longer in force. */
int journal_undone(struct journal *j, size_t idx, struct verr *err);
int journal_record_qemu(struct journal *j, pid_t pid, unsigned long long start, struct verr *err);

/* True when some change is still in force (begun and not undone). */
bool journal_in_force(const struct journal *j);

/* Undo every change still in force, newest first, through change_find();
 * undos that may block run in a child with the -bindtimeout deadline
 * (bindtimeout_ms <= 0: the default). Each undo is reported (log_info on success, log_error on failure) and
 * recorded. Entries that could not be undone get a line in failed (what it
 * was, why, and how to put it back by hand). Returns the number of failures. */
size_t journal_undo_all(struct journal *j, int bindtimeout_ms, struct strv *failed);

/* The change objects still in force, oldest first (a new array). */
json_t *journal_changes_in_force(const struct journal *j);

#endif
