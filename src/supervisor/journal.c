/* The journal of host changes: written and fsync'd before each change is
 * made, read back after a crash. See journal.h for the record format. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "change.h"
#include "child.h"
#include "log.h"
#include "vfioenv.h"

static const char *const journal_state_names[] = {
	[JOURNAL_BEGIN] = "begin",
	[JOURNAL_DONE] = "done",
	[JOURNAL_UNDONE] = "undone",
};

/* Records written by this process, for the VFIO_TEST_CRASH_AT hook. */
static long journal_records_written;

static void
journal_test_crash(void)
{
	const char *at = vfioenv_get("VFIO_TEST_CRASH_AT");
	if (at == NULL || *at == '\0')
		return;
	if (++journal_records_written == strtol(at, NULL, 10)) {
		/* Test only: die the way an OOM kill or `kill -9` would. */
		raise(SIGKILL);
	}
}

/* Where the last whole record ends, at or before end: a record is torn
 * when a full disk cut its write short and the cut could not be undone. */
static off_t
journal_whole_end(int fd, off_t end)
{
	char buf[4096];
	while (end > 0) {
		off_t from = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		ssize_t n = pread(fd, buf, (size_t)(end - from), from);
		if (n <= 0)
			return -1;
		for (ssize_t i = n; i-- > 0;) {
			if (buf[i] == '\n')
				return from + i + 1;
		}
		end = from;
	}
	return 0;
}

/* Append one record and make it durable before returning. A write that
 * fails or stops short (the disk holding /run is full) is cut back off, so
 * the journal only ever holds whole records and the next one starts on its
 * own line; a tail an earlier cut could not remove goes first. */
static int
journal_append(struct journal *j, json_t *rec, struct verr *err)
{
	if (j->read_only)
		fatalx("journal: a record for %s, which was loaded to be read only", j->path);
	char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	if (line == NULL)
		fatalx("journal: cannot encode a record");
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, line);
	strbuf_puts(&sb, "\n");
	free(line);
	int r = 0;
	off_t end = lseek(j->fd, 0, SEEK_END), whole = end;
	if (end < 0)
		r = -errno;
	else if (end > 0 && (whole = journal_whole_end(j->fd, end)) < 0)
		r = -EIO;
	else if (whole != end && ftruncate(j->fd, whole) < 0)
		r = -errno;
	if (r == 0)
		r = fd_write_all(j->fd, sb.s, sb.len);
	strbuf_free(&sb);
	if (r == 0 && fsync(j->fd) < 0)
		r = -errno;
	if (r == 0 && fsync(j->dirfd) < 0)
		r = -errno;
	if (r < 0) {
		/* Cutting a file shorter needs no space; if even that fails, the
		 * next append cuts the torn tail first. */
		if (whole >= 0 && ftruncate(j->fd, whole) == 0)
			fsync(j->fd);
		return verr_set(err, r, "cannot write the journal %s: %s; the host changes it lists "
		    "may not be undone after a crash (check the disk holding /run)", j->path, strerror(-r));
	}
	journal_test_crash();
	return 0;
}

static struct journal_entry *
journal_find(struct journal *j, int seq)
{
	for (size_t i = 0; i < j->n; i++) {
		if (j->entries[i].seq == seq)
			return &j->entries[i];
	}
	return NULL;
}

static void
journal_entries_grow(struct journal *j)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 8;
		j->entries = xreallocarray(j->entries, j->cap, sizeof(*j->entries));
	}
}

/* The records that are not host changes: the run, QEMU, devices, the
 * guest's start, adoptions. Returns 1 when rec was none of them. */
static int
journal_parse_note(struct journal *j, json_t *rec, size_t lineno, struct verr *err)
{
	json_t *v;
	if ((v = json_object_get(rec, "version")) != NULL) {
		if (!json_is_integer(v) || lineno != 1)
			return -EINVAL;
		j->version = (int)json_integer_value(v);
		if (j->version > JOURNAL_VERSION)
			return verr_set(err, -EPROTONOSUPPORT, "the journal %s was written by a newer vfio (format %d, "
			    "this one reads up to %d); run that vfio's -restore or -run for this guest", j->path,
			    j->version, JOURNAL_VERSION);
		if (j->version < 2)
			return -EINVAL;
		json_decref(j->run);
		j->run = json_incref(json_object_get(rec, "run"));
		return 0;
	}
	if (json_is_object(v = json_object_get(rec, "qemu"))) {
		j->qemu_pid = (pid_t)json_integer_value(json_object_get(v, "pid"));
		j->qemu_start = (unsigned long long)json_integer_value(json_object_get(v, "start"));
		return 0;
	}
	if (json_is_object(v = json_object_get(rec, "device"))) {
		const char *id = json_string_value(json_object_get(v, "id"));
		if (id == NULL)
			return -EINVAL;
		json_object_set_new(j->devices, id, json_pack("{s:O, s:b}", "args", v, "del", 0));
		return 0;
	}
	if (json_is_string(v = json_object_get(rec, "device-del"))) {
		json_t *d = json_object_get(j->devices, json_string_value(v));
		if (d != NULL)
			json_object_set_new(d, "del", json_true());
		return 0;
	}
	if (json_is_string(v = json_object_get(rec, "device-gone"))) {
		json_object_del(j->devices, json_string_value(v));
		return 0;
	}
	if (json_object_get(rec, "started") != NULL) {
		j->started = true;
		return 0;
	}
	if (json_object_get(rec, "adopted") != NULL) {
		j->n_adopted++;
		return 0;
	}
	return 1;
}

static int
journal_parse_record(struct journal *j, json_t *rec, size_t lineno, struct verr *err)
{
	int r = journal_parse_note(j, rec, lineno, err);
	if (r == -EINVAL)
		goto bad;
	if (r <= 0)
		return r;
	json_t *seqv = json_object_get(rec, "seq");
	const char *state = json_string_value(json_object_get(rec, "state"));
	if (!json_is_integer(seqv) || state == NULL)
		goto bad;
	int seq = (int)json_integer_value(seqv);
	if (strcmp(state, "begin") == 0) {
		json_t *change = json_object_get(rec, "change");
		if (!json_is_object(change) || journal_find(j, seq) != NULL)
			goto bad;
		journal_entries_grow(j);
		json_t *saved = json_object_get(rec, "saved");
		const char *for_id = json_string_value(json_object_get(rec, "for"));
		j->entries[j->n++] = (struct journal_entry){
			.seq = seq,
			.change = json_incref(change),
			.saved = saved ? json_incref(saved) : json_null(),
			.state = JOURNAL_BEGIN,
			.for_id = for_id ? xstrdup(for_id) : NULL,
		};
		return 0;
	}
	struct journal_entry *e = journal_find(j, seq);
	if (e == NULL)
		goto bad;
	if (strcmp(state, "done") == 0)
		e->state = JOURNAL_DONE;
	else if (strcmp(state, "undone") == 0)
		e->state = JOURNAL_UNDONE;
	else
		goto bad;
	return 0;
bad:
	return verr_set(err, -EINVAL, "the journal %s is damaged at line %zu (a record that is not "
	    "one this program writes); undo the host changes it lists by hand, then remove it",
	    j->path, lineno);
}

static char *
journal_read_fd(int fd, size_t *len_out)
{
	struct strbuf sb = { 0 };
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			strbuf_free(&sb);
			return NULL;
		}
		if (n == 0)
			break;
		strbuf_add(&sb, buf, (size_t)n);
	}
	*len_out = sb.len;
	return sb.s ? strbuf_steal(&sb) : xstrdup("");
}

/* Read every whole line; a last line without its newline, or one that does not
 * parse, is a write the crash cut short: it is dropped and the file cut back. */
static int
journal_read(struct journal *j, struct verr *err)
{
	size_t len = 0;
	char *data = journal_read_fd(j->fd, &len);
	if (data == NULL)
		return verr_set(err, -errno, "cannot read the journal %s: %s", j->path, strerror(errno));
	size_t pos = 0, good = 0, lineno = 0;
	int r = 0;
	while (pos < len) {
		char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) : len;
		lineno++;
		json_error_t jerr;
		json_t *rec = json_loadb(data + pos, end - pos, 0, &jerr);
		bool last = nl == NULL || end + 1 == len;
		if (rec == NULL || nl == NULL) {
			json_decref(rec);
			if (last) {
				log_warnx("journal %s: dropping a record cut short by a crash (line %zu)",
				    j->path, lineno);
				break;
			}
			r = verr_set(err, -EINVAL, "the journal %s is damaged at line %zu (%s); undo the "
			    "host changes it lists by hand, then remove it", j->path, lineno, jerr.text);
			break;
		}
		r = journal_parse_record(j, rec, lineno, err);
		json_decref(rec);
		if (r < 0)
			break;
		pos = end + 1;
		good = pos;
	}
	free(data);
	if (r == 0 && good < len && !j->read_only) {
		if (ftruncate(j->fd, (off_t)good) < 0 || fsync(j->fd) < 0)
			return verr_set(err, -errno, "cannot cut the torn record off the journal %s: %s",
			    j->path, strerror(errno));
	}
	return r;
}

static void
journal_init(struct journal *j, const char *dir)
{
	memset(j, 0, sizeof(*j));
	j->fd = j->dirfd = -1;
	j->version = 1;
	j->devices = json_object();
	j->path = xasprintf("%s/journal", dir);
}

int
journal_open(struct journal *j, const char *dir, struct verr *err)
{
	journal_init(j, dir);
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		int r = verr_set(err, -errno, "cannot open the runtime directory %s: %s", dir, strerror(errno));
		journal_close(j);
		return r;
	}
	j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		int r = verr_set(err, -errno, "cannot open the journal %s: %s", j->path, strerror(errno));
		journal_close(j);
		return r;
	}
	int r = journal_read(j, err);
	if (r < 0) {
		journal_close(j);
		return r;
	}
	return 0;
}

int
journal_load(struct journal *j, const char *dir, struct verr *err)
{
	journal_init(j, dir);
	j->read_only = true;
	j->fd = open(j->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (j->fd < 0) {
		int r = -errno;
		if (r != -ENOENT)
			verr_set(err, r, "cannot read the journal %s: %s", j->path, strerror(-r));
		journal_close(j);
		return r;
	}
	int r = journal_read(j, err);
	if (r < 0)
		journal_close(j);
	return r;
}

void
journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	for (size_t i = 0; i < j->n; i++) {
		json_decref(j->entries[i].change);
		json_decref(j->entries[i].saved);
		free(j->entries[i].for_id);
	}
	free(j->entries);
	free(j->path);
	json_decref(j->run);
	json_decref(j->devices);
	memset(j, 0, sizeof(*j));
	j->fd = j->dirfd = -1;
}

static json_t *
journal_state_record(int seq, enum journal_state state)
{
	return json_pack("{s:i, s:s}", "seq", seq, "state", journal_state_names[state]);
}

static int
journal_begin_for(struct journal *j, const json_t *change, const json_t *saved, const char *for_id, size_t *idx,
    struct verr *err)
{
	int seq = j->n > 0 ? j->entries[j->n - 1].seq + 1 : 1;
	json_t *rec = json_pack("{s:i, s:s, s:O, s:O}", "seq", seq, "state", "begin",
	    "change", change, "saved", saved ? saved : json_null());
	if (rec == NULL)
		fatalx("journal: cannot build a record");
	if (for_id != NULL)
		json_object_set_new(rec, "for", json_string(for_id));
	int r = journal_append(j, rec, err);
	if (r < 0)
		return r;
	journal_entries_grow(j);
	j->entries[j->n] = (struct journal_entry){
		.seq = seq,
		.change = json_deep_copy(change),
		.saved = saved ? json_deep_copy(saved) : json_null(),
		.state = JOURNAL_BEGIN,
		.for_id = for_id ? xstrdup(for_id) : NULL,
	};
	*idx = j->n++;
	return 0;
}

int
journal_begin(struct journal *j, const json_t *change, const json_t *saved, size_t *idx,
    struct verr *err)
{
	return journal_begin_for(j, change, saved, NULL, idx, err);
}

int
journal_done(struct journal *j, size_t idx, struct verr *err)
{
	int r = journal_append(j, journal_state_record(j->entries[idx].seq, JOURNAL_DONE), err);
	if (r == 0)
		j->entries[idx].state = JOURNAL_DONE;
	return r;
}

/* After undo() of entry idx succeeded: it is no longer in force. */
static int
journal_undone(struct journal *j, size_t idx, struct verr *err)
{
	int r = journal_append(j, journal_state_record(j->entries[idx].seq, JOURNAL_UNDONE), err);
	if (r == 0)
		j->entries[idx].state = JOURNAL_UNDONE;
	return r;
}

int
journal_record_qemu(struct journal *j, pid_t pid, unsigned long long start, struct verr *err)
{
	json_t *rec = json_pack("{s:{s:I, s:I}}", "qemu", "pid", (json_int_t)pid,
	    "start", (json_int_t)start);
	int r = journal_append(j, rec, err);
	if (r == 0) {
		j->qemu_pid = pid;
		j->qemu_start = start;
	}
	return r;
}

int
journal_record_run(struct journal *j, const json_t *run, struct verr *err)
{
	int r = journal_append(j, json_pack("{s:i, s:O}", "version", JOURNAL_VERSION, "run", run), err);
	if (r == 0) {
		j->version = JOURNAL_VERSION;
		json_decref(j->run);
		j->run = json_deep_copy(run);
	}
	return r;
}

int
journal_record_device(struct journal *j, const json_t *args, struct verr *err)
{
	const char *id = json_string_value(json_object_get(args, "id"));
	if (id == NULL)
		return 0;        /* nothing can address it later; nothing to adopt */
	int r = journal_append(j, json_pack("{s:O}", "device", args), err);
	if (r == 0)
		json_object_set_new(j->devices, id, json_pack("{s:O, s:b}", "args", args, "del", 0));
	return r;
}

int
journal_record_device_del(struct journal *j, const char *id, struct verr *err)
{
	int r = journal_append(j, json_pack("{s:s}", "device-del", id), err);
	json_t *d = json_object_get(j->devices, id);
	if (r == 0 && d != NULL)
		json_object_set_new(d, "del", json_true());
	return r;
}

int
journal_record_device_gone(struct journal *j, const char *id, struct verr *err)
{
	int r = journal_append(j, json_pack("{s:s}", "device-gone", id), err);
	if (r == 0)
		json_object_del(j->devices, id);
	return r;
}

int
journal_record_started(struct journal *j, struct verr *err)
{
	int r = journal_append(j, json_pack("{s:b}", "started", 1), err);
	if (r == 0)
		j->started = true;
	return r;
}

int
journal_record_adopted(struct journal *j, pid_t supervisor, struct verr *err)
{
	int r = journal_append(j, json_pack("{s:{s:I}}", "adopted", "pid", (json_int_t)supervisor), err);
	if (r == 0)
		j->n_adopted++;
	return r;
}

bool
journal_in_force(const struct journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		if (j->entries[i].state != JOURNAL_UNDONE)
			return true;
	}
	return false;
}

size_t *
journal_entries_for(const struct journal *j, const char *id, size_t *n)
{
	size_t *v = NULL;
	*n = 0;
	for (size_t i = j->n; i-- > 0;) {
		const struct journal_entry *e = &j->entries[i];
		if (e->state == JOURNAL_UNDONE || e->for_id == NULL || strcmp(e->for_id, id) != 0)
			continue;
		v = xreallocarray(v, *n + 1, sizeof(*v));
		v[(*n)++] = i;
	}
	return v;
}

json_t *
journal_changes_in_force(const struct journal *j)
{
	json_t *a = json_array();
	for (size_t i = 0; i < j->n; i++) {
		if (j->entries[i].state != JOURNAL_UNDONE)
			json_array_append(a, j->entries[i].change);
	}
	return a;
}

static char *
journal_describe(const json_t *change)
{
	const char *from = change_str(change, "from"), *to = change_str(change, "to");
	if (*from != '\0' || *to != '\0')
		return xasprintf("%s %s (%s -> %s)", change_str(change, "action"),
		    change_str(change, "target"), *from ? from : "none", *to ? to : "none");
	return xasprintf("%s %s", change_str(change, "action"), change_str(change, "target"));
}

/* ---- applying and undoing one change ---- */

/* What the ops functions get for saved: NULL when prepare saved nothing
 * (the journal holds JSON null then), as on the first run. */
static const json_t *
journal_saved(const struct journal_entry *e)
{
	return json_is_null(e->saved) ? NULL : e->saved;
}

/* Run apply or undo: here when it cannot block, else in a child with the
 * kind's deadline. */
static int
journal_run(const struct change_ops *ops, bool undo, const struct journal_entry *e, int bindtimeout_ms,
    struct verr *err)
{
	child_fn fn = undo ? ops->undo : ops->apply;
	const json_t *saved = journal_saved(e);
	if (!ops->may_block)
		return fn(e->change, saved, err);
	return child_run(fn, e->change, saved, change_deadline_ms(ops, e->change, saved, bindtimeout_ms), err);
}

static const struct change_ops *
journal_ops(const json_t *change, const char *doing, struct verr *err)
{
	const struct change_ops *ops = change_find(change_str(change, "action"));
	if (ops == NULL)
		verr_set(err, -ENOSYS, "this build of vfio does not know how to %s \"%s\" on %s", doing,
		    change_str(change, "action"), change_str(change, "target"));
	return ops;
}

/* Prepare and record "begin": nothing is changed on the host yet. */
static int
journal_prepare_begin(struct journal *j, const json_t *change, const char *for_id, const struct change_ops **ops,
    size_t *idx, struct verr *err)
{
	*idx = (size_t)-1;
	*ops = journal_ops(change, "make", err);
	if (*ops == NULL)
		return err != NULL ? err->code : -ENOSYS;
	json_t *saved = NULL;
	int r = (*ops)->prepare != NULL ? (*ops)->prepare(change, &saved, err) : 0;
	if (r == 0)
		r = journal_begin_for(j, change, saved, for_id, idx, err);
	json_decref(saved);
	return r;
}

/* first; giving it back failed too: why */
static void
journal_join_undo_failure(struct verr *err, const struct verr *undo_err)
{
	char first[sizeof(err->msg)];
	snprintf(first, sizeof(first), "%s", err->msg);
	verr_set(err, err->code, "%s; giving it back failed too: %s", first, undo_err->msg);
}

int
journal_apply(struct journal *j, const json_t *change, const struct journal_apply_opts *o, size_t *idx,
    struct verr *err)
{
	const struct change_ops *ops;
	int r = journal_prepare_begin(j, change, o->for_id, &ops, idx, err);
	if (r < 0)
		return r;
	r = journal_run(ops, false, &j->entries[*idx], o->bindtimeout_ms, err);
	if (r == 0) {
		struct verr jerr = { 0 };
		r = journal_done(j, *idx, &jerr);
		if (r < 0 && err != NULL)
			*err = jerr;
		return r;
	}
	if (o->undo_on_failure) {
		struct verr uerr = { 0 };
		if (journal_run(ops, true, &j->entries[*idx], o->bindtimeout_ms, &uerr) == 0)
			journal_undone(j, *idx, &uerr);
		else if (err != NULL)
			journal_join_undo_failure(err, &uerr);
	}
	return r;
}

int
journal_undo(struct journal *j, size_t idx, int bindtimeout_ms, struct verr *err)
{
	const struct change_ops *ops = journal_ops(j->entries[idx].change, "undo", err);
	if (ops == NULL)
		return -ENOSYS;
	int r = journal_run(ops, true, &j->entries[idx], bindtimeout_ms, err);
	if (r == 0) {
		struct verr jerr = { 0 };
		r = journal_undone(j, idx, &jerr);
		if (r < 0 && err != NULL)
			*err = jerr;
	}
	return r;
}

/* ---- the same inside the event loop ---- */

enum journal_phase {
	JOURNAL_PHASE_APPLY,
	JOURNAL_PHASE_UNDO_FAILED,   /* giving back an apply that failed */
	JOURNAL_PHASE_UNDO,          /* journal_undo_start() */
};

struct journal_job {
	struct journal *j;
	struct event_base *base;
	const struct change_ops *ops;
	size_t idx;
	int bindtimeout_ms;
	bool undo_on_failure;
	enum journal_phase phase;
	struct child_job *child;     /* the apply or undo running in a child */
	struct event *ev_done;       /* delivers res from the loop */
	struct journal_result res;
	journal_done_cb cb;
	void *arg;
};

static void
journal_job_free(struct journal_job *job)
{
	if (job->child != NULL)
		child_cancel(job->child);
	if (job->ev_done != NULL)
		event_free(job->ev_done);
	free(job);
}

void
journal_job_cancel(struct journal_job *job)
{
	if (job != NULL)
		journal_job_free(job);
}

static void
journal_job_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct journal_job *job = arg;
	struct journal_result res = job->res;
	journal_done_cb cb = job->cb;
	void *cbarg = job->arg;
	journal_job_free(job);
	cb(&res, cbarg);
}

static void
journal_job_finish(struct journal_job *job, int code, const struct verr *err, bool undone)
{
	job->res.code = code;
	if (err != NULL)
		job->res.err = *err;
	job->res.idx = job->idx;
	job->res.undone = undone;
	event_active(job->ev_done, EV_TIMEOUT, 1);
}

static void journal_job_run(struct journal_job *job);

/* One apply or undo is over: record it, and go on or finish. */
static void
journal_job_step(struct journal_job *job, int code, const struct verr *err)
{
	struct verr jerr = { 0 };
	switch (job->phase) {
	case JOURNAL_PHASE_APPLY:
		if (code == 0) {
			int r = journal_done(job->j, job->idx, &jerr);
			journal_job_finish(job, r, r < 0 ? &jerr : err, false);
		} else if (job->undo_on_failure) {
			job->res.code = code;
			job->res.err = *err;
			job->phase = JOURNAL_PHASE_UNDO_FAILED;
			journal_job_run(job);
		} else {
			journal_job_finish(job, code, err, false);
		}
		return;
	case JOURNAL_PHASE_UNDO_FAILED: {
		struct verr first = job->res.err;
		if (code == 0) {
			bool undone = journal_undone(job->j, job->idx, &jerr) == 0;
			journal_job_finish(job, job->res.code, &first, undone);
		} else {
			journal_join_undo_failure(&first, err);
			journal_job_finish(job, job->res.code, &first, false);
		}
		return;
	}
	case JOURNAL_PHASE_UNDO:
		if (code == 0) {
			int r = journal_undone(job->j, job->idx, &jerr);
			journal_job_finish(job, r, r < 0 ? &jerr : err, r == 0);
		} else {
			journal_job_finish(job, code, err, false);
		}
		return;
	}
}

static void
journal_job_child_done(int code, const struct verr *err, void *arg)
{
	struct journal_job *job = arg;
	job->child = NULL;
	journal_job_step(job, code, err);
}

static void
journal_job_run(struct journal_job *job)
{
	bool undo = job->phase != JOURNAL_PHASE_APPLY;
	const struct journal_entry *e = &job->j->entries[job->idx];
	struct verr err = { 0 };
	if (!job->ops->may_block) {
		int code = journal_run(job->ops, undo, e, job->bindtimeout_ms, &err);
		journal_job_step(job, code, &err);
		return;
	}
	const json_t *saved = journal_saved(e);
	job->child = child_start(job->base, undo ? job->ops->undo : job->ops->apply, e->change, saved,
	    change_deadline_ms(job->ops, e->change, saved, job->bindtimeout_ms), journal_job_child_done, job, &err);
	if (job->child == NULL)
		journal_job_step(job, err.code < 0 ? err.code : -ECHILD, &err);
}

static struct journal_job *
journal_job_new(struct journal *j, struct event_base *base, const struct change_ops *ops, size_t idx,
    int bindtimeout_ms, journal_done_cb cb, void *arg)
{
	struct journal_job *job = xcalloc(1, sizeof(*job));
	job->j = j;
	job->base = base;
	job->ops = ops;
	job->idx = idx;
	job->bindtimeout_ms = bindtimeout_ms;
	job->cb = cb;
	job->arg = arg;
	job->ev_done = evtimer_new(base, journal_job_deliver, job);
	if (job->ev_done == NULL)
		fatalx("out of memory creating a journal job's event");
	return job;
}

struct journal_job *
journal_apply_start(struct journal *j, struct event_base *base, const json_t *change,
    const struct journal_apply_opts *o, journal_done_cb cb, void *arg, struct verr *err)
{
	const struct change_ops *ops;
	size_t idx;
	if (journal_prepare_begin(j, change, o->for_id, &ops, &idx, err) < 0)
		return NULL;
	struct journal_job *job = journal_job_new(j, base, ops, idx, o->bindtimeout_ms, cb, arg);
	job->undo_on_failure = o->undo_on_failure;
	job->phase = JOURNAL_PHASE_APPLY;
	journal_job_run(job);
	return job;
}

struct journal_job *
journal_undo_start(struct journal *j, struct event_base *base, size_t idx, int bindtimeout_ms,
    journal_done_cb cb, void *arg, struct verr *err)
{
	const struct change_ops *ops = journal_ops(j->entries[idx].change, "undo", err);
	if (ops == NULL)
		return NULL;
	struct journal_job *job = journal_job_new(j, base, ops, idx, bindtimeout_ms, cb, arg);
	job->phase = JOURNAL_PHASE_UNDO;
	journal_job_run(job);
	return job;
}

size_t
journal_undo_all(struct journal *j, int bindtimeout_ms, struct strv *failed)
{
	size_t n_failed = 0;
	for (size_t i = j->n; i-- > 0;) {
		struct journal_entry *e = &j->entries[i];
		if (e->state == JOURNAL_UNDONE)
			continue;
		char *what = journal_describe(e->change);
		struct verr err = { 0 };
		const struct change_ops *ops = change_find(change_str(e->change, "action"));
		int r;
		if (ops == NULL) {
			r = verr_set(&err, -ENOSYS, "this build of vfio does not know how to undo "
			    "\"%s\"", change_str(e->change, "action"));
		} else {
			r = journal_run(ops, true, e, bindtimeout_ms, &err);
			if (r == 0 && err.msg[0] != '\0')
				log_info("%s: %s", what, err.msg);
		}
		if (r == 0)
			r = journal_undone(j, i, &err);
		if (r == 0) {
			log_info("restored: %s", what);
		} else {
			char *saved = json_dumps(e->saved, JSON_COMPACT | JSON_ENCODE_ANY);
			log_error("could not restore %s: %s", what, err.msg);
			strv_pushf(failed, "%s: %s (what it was before: %s); put it back by hand, "
			    "then run `vfio -restore` again to clear the journal", what, err.msg,
			    saved ? saved : "null");
			free(saved);
			n_failed++;
		}
		free(what);
	}
	return n_failed;
}
