/* A guest outlives its supervisor: what a new `vfio -run NAME` finds in
 * /run/vfio/NAME and what it does with it, decided in one place
 * (adopt_decide()) for the dry run (main.c reads it into the options, the
 * plan says it) and the run (session.c, under the name's lock):
 *
 *   nothing there                      start
 *   a live supervisor                  refuse: it runs the guest
 *   QEMU running, the guest started,   adopt it: reconnect to its monitor,
 *     journal format 2                 read back what is attached, go on
 *   QEMU running, journal format 1     refuse: an earlier vfio started it and
 *     (an earlier vfio)                its monitor died with it; -restore
 *   host changes left, QEMU gone (or   give them back first (stopping that
 *     QEMU never let the guest run)    QEMU), then start
 *
 * The run record (journal.h: the first record of a run) holds what the run
 * reads after the start (the plan's facts and the options the session
 * uses), so a supervisor that adopts the guest runs it as it was started;
 * the flags given now apply at its next start, and the differences are
 * said, never dropped silently. */
#ifndef VFIO_ADOPT_H
#define VFIO_ADOPT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "journal.h"
#include "options.h"
#include "plan.h"
#include "spawn.h"
#include "util.h"
#include "verr.h"

/* What journal j (opened or loaded) says a new -run must do (enum
 * opt_running_how, options.h); *why explains a refusal (allocated, or
 * NULL). A live supervisor is not the journal's to tell: the caller knows. */
enum opt_running_how adopt_decide(const struct journal *j, char **why);

/* The dry run's look at /run/vfio/NAME, changing nothing: fills
 * *running (options_free() frees it). */
void adopt_probe(const char *name, struct opt_running *running);

/* The run record of a start with these options and this plan, QEMU running
 * as user. */
json_t *adopt_run_record(const struct options *opts, const struct plan *plan, const struct spawn_user *user);
/* The options and plan a run record describes, as the session reads them
 * (opts and plan are initialised here; free them with options_free() and
 * adopt_plan_free()), and QEMU's user. -EINVAL with err when the record is
 * not one this vfio can run by. */
int adopt_run_load(const json_t *run, struct options *opts, struct plan *plan, struct spawn_user *user,
    struct verr *err);
void adopt_plan_free(struct plan *plan);

/* The flags that differ between the running guest's (run) and now, one
 * line each ("-memory: 8G now, 4G in the running guest"); the flags that
 * only concern this invocation (-run, -quiet, ...) are left out. */
void adopt_differences(const json_t *run_flags, const struct strv *now, struct strv *out);

#endif
