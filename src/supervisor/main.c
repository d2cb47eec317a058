/* vfio: parse the flags, take the host snapshot, build the plan, and either
 * print it (the dry run, the default) or hand it to the supervised run. Exit
 * status: 0 when -run would proceed, 1 when it would refuse, 2 for usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "argsfile.h"
#include "audio.h"
#include "hostroot.h"
#include "log.h"
#include "options.h"
#include "plan.h"
#include "qemucaps.h"
#include "report.h"
#include "restore.h"
#include "session.h"
#include "snapshot.h"


/* The guest MAC falls back to randomness; take it here so the plan stays a
 * pure function. VFIO_MAC_SEED makes it repeatable (tests, scripted runs). */
static uint64_t
main_mac_seed(void)
{
	const char *env = getenv("VFIO_MAC_SEED");
	if (env != NULL && *env != '\0')
		return strtoull(env, NULL, 0);
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	return seed;
}

static int
main_restore(struct options *opts)
{
	return restore_run(opts);
}

static int
main_run(const struct options *opts, const struct host_snapshot *snap, const struct plan *plan)
{
	return session_run(opts, snap, plan);
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

	const char *qemu = getenv("VFIO_QEMU");
	opts.qemu = xstrdup(qemu != NULL && *qemu != '\0' ? qemu : "qemu-system-x86_64");
	opts.mac_seed = main_mac_seed();

	hostroot_init(NULL);
	struct host_snapshot snap;
	memset(&snap, 0, sizeof(snap));
	if (snapshot_take(&snap, &opts, &err) < 0) {
		log_error("reading the host: %s", err.msg);
		snapshot_free(&snap);
		options_free(&opts);
		return 1;
	}

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
		rc = main_run(&opts, &snap, &plan);
	else
		rc = 0;
	plan_free(&plan);
	snapshot_free(&snap);
	options_free(&opts);
	return rc;
}
