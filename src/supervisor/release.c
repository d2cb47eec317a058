/* Giving back what a device held once QEMU let go of it: see release.h. */
#include "release.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "journal.h"
#include "log.h"
#include "qmp.h"
#include "util.h"

#define RELEASE_CMD_TIMEOUT_MS 30000

struct release_job;

struct release {
	struct release_env env;
	struct release_job *jobs;
};

struct release_job {
	struct release_job *next;
	struct release *r;           /* NULL once the release is stopped (a QMP reply may still come) */
	struct devices *d;
	char *id, *addr;             /* addr: the host PCI device of a vfio-pci */
	size_t *undo, n_undo, k;     /* the journal entries to give back, newest first */
	struct journal_job *job;
	bool in_qmp;                 /* a netdev_del is in flight */
	bool bind_given;             /* the vfio-pci bind of addr was among them */
	struct strbuf failed, note;
};

struct release *
release_new(const struct release_env *env)
{
	struct release *r = xcalloc(1, sizeof(*r));
	r->env = *env;
	return r;
}

static void
release_job_unlink(struct release_job *job)
{
	if (job->r == NULL)
		return;
	for (struct release_job **pp = &job->r->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	job->r = NULL;
}

static void
release_job_free(struct release_job *job)
{
	release_job_unlink(job);
	journal_job_cancel(job->job);
	free(job->id);
	free(job->addr);
	free(job->undo);
	strbuf_free(&job->failed);
	strbuf_free(&job->note);
	free(job);
}

void
release_free(struct release *r)
{
	if (r == NULL)
		return;
	while (r->jobs != NULL) {
		struct release_job *job = r->jobs;
		release_job_unlink(job);
		journal_job_cancel(job->job);
		job->job = NULL;
		if (!job->in_qmp)
			release_job_free(job);
	}
	free(r);
}

size_t
release_busy(const struct release *r)
{
	size_t n = 0;
	for (const struct release_job *j = r != NULL ? r->jobs : NULL; j != NULL; j = j->next)
		n++;
	return n;
}

static void
release_finish(struct release_job *job)
{
	struct release *r = job->r;
	char *msg;
	int result = job->failed.s != NULL ? -EIO : 0;
	if (job->addr != NULL && result < 0)
		msg = xasprintf("%s removed from the guest, but %s could not be given back: %s; the end of the run "
		    "(or `vfio -restore`) retries", job->id, job->addr, job->failed.s);
	else if (job->addr != NULL && !job->bind_given)
		msg = xasprintf("%s removed; %s stays on vfio-pci (vfio did not bind it)", job->id, job->addr);
	else if (job->addr != NULL)
		msg = xasprintf("%s removed; %s is back with its driver%s%s", job->id, job->addr,
		    job->note.s ? ": " : "", job->note.s ? job->note.s : "");
	else if (result < 0)
		msg = xasprintf("%s removed, but what it held on the host stays: %s; the end of the run "
		    "(or `vfio -restore`) retries", job->id, job->failed.s);
	else
		msg = xasprintf("%s removed", job->id);
	struct devices *d = job->d;
	char *id = xstrdup(job->id);
	if (r != NULL && r->env.changed != NULL && job->n_undo > 0)
		r->env.changed(r->env.arg);
	release_job_free(job);
	devices_released(d, id, result, msg);
	free(id);
	free(msg);
}

static void release_next(struct release_job *job);

static void
release_undone(const struct journal_result *res, void *arg)
{
	struct release_job *job = arg;
	job->job = NULL;
	const json_t *c = job->r->env.journal->entries[res->idx].change;
	bool bind = strcmp(change_str(c, "action"), "pci-bind-vfio") == 0;
	if (res->code < 0) {
		log_warnx("%s: could not give back %s %s: %s", job->id, change_str(c, "action"), change_str(c, "target"),
		    res->err.msg);
		strbuf_printf(&job->failed, "%s%s", job->failed.s ? "; " : "", res->err.msg);
	} else {
		log_info("restored: %s %s (%s left the guest)", change_str(c, "action"), change_str(c, "target"), job->id);
		if (bind && res->err.msg[0] != '\0')
			strbuf_puts(&job->note, res->err.msg);
	}
	job->k++;
	release_next(job);
}

/* The next journal entry, newest first; then the answer. */
static void
release_next(struct release_job *job)
{
	struct release *r = job->r;
	while (job->k < job->n_undo) {
		struct verr err = { 0 };
		size_t idx = job->undo[job->k];
		if (r->env.journal->entries[idx].state == JOURNAL_UNDONE) {
			job->k++;        /* given back meanwhile (another path) */
			continue;
		}
		job->job = journal_undo_start(r->env.journal, r->env.base, idx, r->env.bindtimeout_ms, release_undone, job,
		    &err);
		if (job->job != NULL)
			return;
		strbuf_printf(&job->failed, "%s%s", job->failed.s ? "; " : "", err.msg);
		job->k++;
	}
	release_finish(job);
}

static void
release_netdev_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct release_job *job = arg;
	job->in_qmp = false;
	if (job->r == NULL) {
		release_job_free(job);
		return;
	}
	if (err != NULL)
		log_debug("%s: QEMU did not remove its network backend: %s", job->id, err->desc);
	release_next(job);
}

/* The in-force pci-bind-vfio of addr, or -1. */
static ssize_t
release_bind_of(const struct journal *j, const char *addr)
{
	for (size_t i = j->n; i-- > 0;) {
		const json_t *c = j->entries[i].change;
		if (j->entries[i].state != JOURNAL_UNDONE && strcmp(change_str(c, "action"), "pci-bind-vfio") == 0 &&
		    strcmp(change_str(c, "target"), addr) == 0)
			return (ssize_t)i;
	}
	return -1;
}

void
release_device(void *arg, struct devices *d, const char *id, const json_t *args)
{
	struct release *r = arg;
	struct journal *j = r->env.journal;
	struct release_job *job = xcalloc(1, sizeof(*job));
	job->r = r;
	job->d = d;
	job->id = xstrdup(id);
	job->next = r->jobs;
	r->jobs = job;
	job->undo = journal_entries_for(j, id, &job->n_undo);
	const char *driver = json_string_value(json_object_get(args, "driver"));
	const char *host = json_string_value(json_object_get(args, "host"));
	if (driver != NULL && strcmp(driver, "vfio-pci") == 0 && host != NULL) {
		job->addr = xstrdup(host);
		/* The start's bind for -pci (not made for this id) goes last. */
		ssize_t b = release_bind_of(j, host);
		bool listed = false;
		for (size_t i = 0; i < job->n_undo; i++)
			listed = listed || (ssize_t)job->undo[i] == b;
		if (b >= 0 && !listed) {
			job->undo = xreallocarray(job->undo, job->n_undo + 1, sizeof(*job->undo));
			job->undo[job->n_undo++] = (size_t)b;
		}
		job->bind_given = b >= 0;
	}
	const char *netdev = json_string_value(json_object_get(args, "netdev"));
	struct qmp *qmp = r->env.qmp != NULL ? *r->env.qmp : NULL;
	if (netdev != NULL && qmp != NULL && qmp_is_ready(qmp) &&
	    qmp_send(qmp, "netdev_del", json_pack("{s:s}", "id", netdev), -1, RELEASE_CMD_TIMEOUT_MS,
	    release_netdev_reply, job) == 0) {
		job->in_qmp = true;
		return;
	}
	release_next(job);
}
