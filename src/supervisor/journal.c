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

static int
journal_parse_record(struct journal *j, json_t *rec, size_t lineno, struct verr *err)
{
	json_t *qemu = json_object_get(rec, "qemu");
	if (json_is_object(qemu)) {
		j->qemu_pid = (pid_t)json_integer_value(json_object_get(qemu, "pid"));
		j->qemu_start = (unsigned long long)json_integer_value(json_object_get(qemu, "start"));
		return 0;
	}
	json_t *seqv = json_object_get(rec, "seq");
	const char *state = json_string_value(json_object_get(rec, "state"));
	if (!json_is_integer(seqv) || state == NULL)
		goto bad;
	int seq = (int)json_integer_value(seqv);
	if (strcmp(state, "begin") == 0) {
		json_t *change = json_object_get(rec, "change");
		if (!json_is_object(change) || journal_find(j, seq) != NULL)
			goto bad;
		if (j->n == j->cap) {
			j->cap = j->cap ? j->cap * 2 : 8;
			j->entries = xreallocarray(j->entries, j->cap, sizeof(*j->entries));
		}
		json_t *saved = json_object_get(rec, "saved");
		j->entries[j->n++] = (struct journal_entry){
			.seq = seq,
			.change = json_incref(change),
			.saved = saved ? json_incref(saved) : json_null(),
			.state = JOURNAL_BEGIN,
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
	if (r == 0 && good < len) {
		if (ftruncate(j->fd, (off_t)good) < 0 || fsync(j->fd) < 0)
			return verr_set(err, -errno, "cannot cut the torn record off the journal %s: %s",
			    j->path, strerror(errno));
	}
	return r;
}

int
journal_open(struct journal *j, const char *dir, struct verr *err)
{
	memset(j, 0, sizeof(*j));
	j->fd = j->dirfd = -1;
	j->path = xasprintf("%s/journal", dir);
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
	}
	free(j->entries);
	free(j->path);
	memset(j, 0, sizeof(*j));
	j->fd = j->dirfd = -1;
}

static json_t *
journal_state_record(int seq, enum journal_state state)
{
	return json_pack("{s:i, s:s}", "seq", seq, "state", journal_state_names[state]);
}

int
journal_begin(struct journal *j, const json_t *change, const json_t *saved, size_t *idx,
    struct verr *err)
{
	int seq = j->n > 0 ? j->entries[j->n - 1].seq + 1 : 1;
	json_t *rec = json_pack("{s:i, s:s, s:O, s:O}", "seq", seq, "state", "begin",
	    "change", change, "saved", saved ? saved : json_null());
	if (rec == NULL)
		fatalx("journal: cannot build a record");
	int r = journal_append(j, rec, err);
	if (r < 0)
		return r;
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 8;
		j->entries = xreallocarray(j->entries, j->cap, sizeof(*j->entries));
	}
	j->entries[j->n] = (struct journal_entry){
		.seq = seq,
		.change = json_deep_copy(change),
		.saved = saved ? json_deep_copy(saved) : json_null(),
		.state = JOURNAL_BEGIN,
	};
	*idx = j->n++;
	return 0;
}

int
journal_done(struct journal *j, size_t idx, struct verr *err)
{
	int r = journal_append(j, journal_state_record(j->entries[idx].seq, JOURNAL_DONE), err);
	if (r == 0)
		j->entries[idx].state = JOURNAL_DONE;
	return r;
}

int
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

bool
journal_in_force(const struct journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		if (j->entries[i].state != JOURNAL_UNDONE)
			return true;
	}
	return false;
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

size_t
journal_undo_all(struct journal *j, int bindtimeout_ms, struct strv *failed)
{
	size_t n_failed = 0;
	for (size_t i = j->n; i-- > 0;) {
		struct journal_entry *e = &j->entries[i];
		if (e->state == JOURNAL_UNDONE)
			continue;
		char *what = journal_describe(e->change);
		const struct change_ops *ops = change_find(change_str(e->change, "action"));
		struct verr err = { 0 };
		int r;
		if (ops == NULL) {
			r = verr_set(&err, -ENOSYS, "this build of vfio does not know how to undo "
			    "\"%s\"", change_str(e->change, "action"));
		} else {
			r = child_run_change(ops, true, e->change, e->saved, bindtimeout_ms, &err);
			if (r == 0 && err.msg[0] != '\0')
				log_info("%s: %s", what, err.msg);
		}
		if (r == 0)
			r = journal_append(j, journal_state_record(e->seq, JOURNAL_UNDONE), &err);
		if (r == 0) {
			e->state = JOURNAL_UNDONE;
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
