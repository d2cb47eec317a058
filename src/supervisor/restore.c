/* -restore: find what a killed supervisor left in force and undo it. */
#include "restore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "proc.h"
#include "rundir.h"

/* How long a leftover QEMU gets to quit on SIGTERM, then after SIGKILL. */
#define RESTORE_TERM_MS 10000
#define RESTORE_KILL_MS 10000

int
restore_journal(struct journal *j, int bindtimeout_ms, struct strv *failed, struct verr *err)
{
	/* QEMU must be gone before any device goes back to the host. */
	if (j->qemu_pid > 0) {
		int r = proc_terminate(j->qemu_pid, j->qemu_start, RESTORE_TERM_MS, RESTORE_KILL_MS, err);
		if (r < 0)
			return r;
	}
	return (int)journal_undo_all(j, bindtimeout_ms, failed);
}

int
restore_name(const char *name, int bindtimeout_ms, struct strv *failed, struct verr *err)
{
	struct rundir rd;
	int r = rundir_claim(&rd, name, err);
	if (r < 0)
		return r;
	struct journal j;
	r = journal_open(&j, rd.path, err);
	if (r < 0) {
		rundir_close(&rd);
		return r;
	}
	int n_failed = restore_journal(&j, bindtimeout_ms, failed, err);
	journal_close(&j);
	if (n_failed < 0) {
		rundir_close(&rd);
		return n_failed;
	}
	if (n_failed == 0) {
		struct verr rerr = { 0 };
		if (rundir_remove(&rd, &rerr) < 0)
			log_warnx("%s", rerr.msg);
		log_info("the guest \"%s\": the host is restored", name);
	}
	rundir_close(&rd);
	return 0;
}

int
restore_run(const struct options *opts)
{
	/* -restore needs no host snapshot, so the caller may not have set the
	 * host root up yet. */
	if (hostroot_get()[0] == '\0')
		hostroot_init(NULL);
	struct strv names = { 0 };
	if (opts->restore_name != NULL)
		strv_push(&names, opts->restore_name);
	else
		rundir_list(&names);
	if (names.n == 0)
		log_info("nothing to restore: no guest left a runtime directory");

	struct strv failed = { 0 };
	int status = 0;
	for (size_t i = 0; i < names.n; i++) {
		struct verr err = { 0 };
		/* With no name, a guest that is running normally is not stale: skip it. */
		if (restore_name(names.v[i], opts->bindtimeout_s * 1000, &failed, &err) < 0) {
			if (err.code == -ENOENT) {
				/* Restoring twice is safe: the second time finds nothing. */
				log_info("%s", err.msg);
				continue;
			}
			if (opts->restore_name == NULL && err.code == -EBUSY) {
				log_info("the guest \"%s\" is running under its supervisor; not touched",
				    names.v[i]);
				continue;
			}
			log_error("%s", err.msg);
			status = 1;
		}
	}
	if (failed.n > 0) {
		log_error("%zu host change%s could not be restored:", failed.n, failed.n == 1 ? "" : "s");
		for (size_t i = 0; i < failed.n; i++)
			fprintf(stderr, "  - %s\n", failed.v[i]);
		status = 1;
	}
	strv_free(&failed);
	strv_free(&names);
	return status;
}
