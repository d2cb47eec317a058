/* vfio: parse the flags, take the host snapshot, build the plan, and either
 * print it (the dry run, the default) or hand it to the supervised run. Exit
 * status: 0 when -run would proceed, 1 when it would refuse, 2 for usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "adopt.h"
#include "argsfile.h"
#include "audio.h"
#include "hostroot.h"
#include "log.h"
#include "options.h"
#include "plan.h"
#include "qemucaps.h"
#include "qemuuser.h"
#include "report.h"
#include "restore.h"
#include "session.h"
#include "userdb.h"
#include "snapshot.h"
#include "vfioenv.h"

/* The supplementary groups of QEMU's user (-user, else the sudo caller):
 * the plan gives it only the device nodes it cannot open already. Read here,
 * from the user database, so the plan stays a pure function. */
static void
main_qemu_groups(struct options *opts, const struct host_snapshot *snap)
{
	int uid, gid;
	plan_qemu_user_of(opts, snap, &uid, &gid);
	if (uid <= 0)
		return;
	/* Only a supervisor lives on: a dry run asks in this process. */
	struct userdb_user u;
	if (opts->run)
		userdb_lookup((uid_t)uid, (gid_t)gid, &u);
	else
		userdb_lookup_here((uid_t)uid, (gid_t)gid, &u);
	/* vfio's own user is read from the host root's /etc/passwd: its uid
	 * counts here only when the user database has that very user (else
	 * that uid may be somebody else's, or nobody's yet). */
	if (!u.found || (uid == snap->qemu_user.uid && opts->user_uid < 0 && snap->sudo_uid < 0 &&
	    strcmp(u.name, QEMUUSER_NAME) != 0))
		return;
	opts->qemu_groups = xreallocarray(NULL, u.n_groups, sizeof(*opts->qemu_groups));
	for (size_t i = 0; i < u.n_groups; i++)
		opts->qemu_groups[i] = (unsigned)u.groups[i];
	opts->n_qemu_groups = u.n_groups;
}

static int
main_restore(struct options *opts)
{
	return restore_run(opts);
}

static int
main_run(const struct options *opts, const struct plan *plan)
{
	return session_run(opts, plan);
}

int
main(int argc, char **argv)
{
	struct options opts;
	struct verr err = { 0 };
	int rc;

	log_init(LOG_LEVEL_INFO, report_want_color(NULL, stderr));
	/* -args FILE becomes the file's flags in place, so flags after it on
	 * the command line still override it (vfio@.service relies on this). */
	struct strv words = { 0 };
	if (argsfile_expand(argc, argv, &words, &err) < 0) {
		fprintf(stderr, "vfio: %s\n", err.msg);
		strv_free(&words);
		return 2;
	}
	rc = options_parse(&opts, (int)words.n, words.v, &err);
	strv_free(&words);
	if (rc < 0) {
		fprintf(stderr, "vfio: %s\n", err.msg);
		options_free(&opts);
		return 2;
	}
	log_init(opts.quiet ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, report_want_color(&opts, stderr));

	if (opts.help) {
		options_usage(stdout);
		options_free(&opts);
		return 0;
	}
	if (opts.version) {
		printf("vfio %s\n", VFIO_VERSION);
		options_free(&opts);
		return 0;
	}
	if (opts.colortest) {
		report_colortest(stdout);
		options_free(&opts);
		return 0;
	}
	if (opts.restore) {
		rc = main_restore(&opts);
		options_free(&opts);
		return rc;
	}

	const char *qemu = vfioenv_get("VFIO_QEMU");
	opts.qemu = xstrdup(qemu != NULL && *qemu != '\0' ? qemu : "qemu-system-x86_64");
	/* The console goes to the terminal vfio runs on, else to console.log:
	 * the plan says which, so the dry run shows what -run does. */
	opts.console_tty = isatty(STDIN_FILENO) == 1;

	hostroot_init(NULL);
	struct host_snapshot snap;
	memset(&snap, 0, sizeof(snap));
	struct strv files = { 0 };
	options_host_files(&opts, &files);
	int sr = snapshot_take(&snap, &files, &err);
	strv_free(&files);
	if (sr < 0) {
		log_error("reading the host: %s", err.msg);
		snapshot_free(&snap);
		options_free(&opts);
		return 1;
	}

	main_qemu_groups(&opts, &snap);
	/* A guest of this name may run already (a killed supervisor's): the
	 * plan says what -run will do with it, as the run will decide. */
	adopt_probe(opts.name, &opts.running);
	bool color = report_want_color(&opts, stdout);
	if (!opts.iommugroups && !opts.cputhreads) {
		/* What this QEMU offers (asked as QEMU's user, cached per binary),
		 * so the plan can refuse what QEMU would. */
		int uid, gid;
		plan_qemu_user_of(&opts, &snap, &uid, &gid);
		qemucaps_read(&snap.qemu, opts.qemu, uid, gid);
		if (opts.hostaudio) {
			/* PipeWire when this QEMU has the driver (8.1 and later),
			 * else PulseAudio, which pipewire-pulse also serves; whose
			 * sound server: QEMU's user's. */
			bool pw = snap.qemu.audiodevs_known && qemucaps_has(&snap.qemu.audiodevs, "pipewire");
			opts.audiodev = xstrdup(pw ? "pipewire" : "pa");
			audio_probe(uid, &opts.audio_pipewire, &opts.audio_pulse);
		}
	}
	if (opts.iommugroups || opts.cputhreads) {
		if (opts.iommugroups)
			report_iommugroups(stdout, &snap, color);
		if (opts.cputhreads)
			report_cputhreads(stdout, &snap, color);
		snapshot_free(&snap);
		options_free(&opts);
		return 0;
	}

	struct plan plan;
	plan_build(&plan, &opts, &snap);
	if (opts.json)
		report_json(stdout, &plan);
	else
		report_plan(stdout, stderr, &opts, &plan, color);
	fflush(stdout);

	if (plan.errors.n > 0)
		rc = 1;
	else if (opts.run)
		rc = main_run(&opts, &plan);
	else
		rc = 0;
	plan_free(&plan);
	snapshot_free(&snap);
	options_free(&opts);
	return rc;
}
