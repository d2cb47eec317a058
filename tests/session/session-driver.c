/* Runs session_run() or restore_run() on a plan written by hand, so the
 * supervisor's lifecycle is tested on its own, without the options parser
 * and the plan builder:
 *
 *   session-driver run PLAN.json [-name N] [-force] [-shutdowntimeout S]
 *                                [-pinvcpus 0,2] [-user NAME] [-bindtimeout S]
 *                                [-usb REGEX]
 *   session-driver restore [NAME]
 *
 * PLAN.json: {"argv": [...], "qmp": [...], "host_changes": [...], "viewers": [...],
 *             "errors": ["..."], "n_root_ports": N, "memory_mib": M,
 *             "console_tty": false, "has_xhci": false, "has_disk_image": false,
 *             "qemu_user": {"name": "vfio-qemu", "uid": 999, "gid": 999, "create": true},
 *             "qemu_nodes": ["/dev/vfio/11"]}
 * Without "qemu_user", QEMU's user is -user NAME, else $SUDO_UID/$SUDO_GID
 * (as the plan would decide), else the driver's own.
 * The host root is $VFIO_HOST_ROOT; argv[0] becomes $VFIO_QEMU when it is
 * set, as main puts it into a real plan. Cases that play the sudo caller set
 * SUDO_UID, so the driver honours the VFIO_* variables regardless
 * (vfioenv.h). */
#include <stdio.h>
#include <stdlib.h>
#include <pwd.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "options.h"
#include "passthrough.h"
#include "plan.h"
#include "restore.h"
#include "session.h"
#include "vfioenv.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: session-driver run PLAN.json [-name N] [-force] [-shutdowntimeout S] "
	    "[-pinvcpus 0,1] [-user NAME] [-bindtimeout S] [-usb REGEX]\n       session-driver restore [NAME]\n");
	exit(2);
}

static int
load_plan(struct plan *plan, const char *path)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (j == NULL) {
		fprintf(stderr, "session-driver: %s: %s\n", path, jerr.text);
		return -1;
	}
	size_t i;
	json_t *v;
	const char *qemu = getenv("VFIO_QEMU");
	json_array_foreach(json_object_get(j, "argv"), i, v)
		strv_push(&plan->argv, i == 0 && qemu != NULL && *qemu ? qemu : json_string_value(v));
	json_array_foreach(json_object_get(j, "errors"), i, v)
		strv_push(&plan->errors, json_string_value(v));
	plan->qmp = json_incref(json_object_get(j, "qmp"));
	if (plan->qmp == NULL)
		plan->qmp = json_array();
	plan->host_changes = json_incref(json_object_get(j, "host_changes"));
	if (plan->host_changes == NULL)
		plan->host_changes = json_array();
	plan->viewers = json_incref(json_object_get(j, "viewers"));
	plan->n_root_ports = (int)json_integer_value(json_object_get(j, "n_root_ports"));
	plan->memory_mib = (uint64_t)json_integer_value(json_object_get(j, "memory_mib"));
	plan->console_tty = json_is_true(json_object_get(j, "console_tty"));
	plan->has_xhci = json_is_true(json_object_get(j, "has_xhci"));
	plan->has_disk_image = json_is_true(json_object_get(j, "has_disk_image"));
	json_array_foreach(json_object_get(j, "qemu_nodes"), i, v)
		strv_push(&plan->qemu_nodes, json_string_value(v));
	json_t *u = json_object_get(j, "qemu_user");
	if (u != NULL) {
		plan->qemu_user.name = strdup(json_string_value(json_object_get(u, "name")));
		plan->qemu_user.uid = (int)json_integer_value(json_object_get(u, "uid"));
		plan->qemu_user.gid = (int)json_integer_value(json_object_get(u, "gid"));
		plan->qemu_user.create = json_is_true(json_object_get(u, "create"));
	}
	json_decref(j);
	return 0;
}

/* QEMU's user as the plan decides it when the plan file does not say. */
static int
plan_user(struct plan *plan, const char *user)
{
	struct plan_user *u = &plan->qemu_user;
	if (u->name != NULL)
		return 0;
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL) {
			fprintf(stderr, "session-driver: -user %s: no such user\n", user);
			return -1;
		}
		u->name = strdup(user);
		u->uid = (int)pw->pw_uid;
		u->gid = (int)pw->pw_gid;
	} else if (getenv("SUDO_UID") != NULL && getenv("SUDO_GID") != NULL) {
		u->uid = atoi(getenv("SUDO_UID"));
		u->gid = atoi(getenv("SUDO_GID"));
		u->name = strdup("the sudo caller");
	} else {
		u->uid = u->gid = -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	log_init(LOG_LEVEL_INFO, false);
	vfioenv_trust_caller();
	hostroot_init(NULL);
	if (argc < 2)
		usage();
	struct options opts = { .name = "vfio", .shutdowntimeout_s = 60, .bindtimeout_s = 5 };
	if (strcmp(argv[1], "restore") == 0) {
		opts.restore = true;
		opts.restore_name = argc > 2 ? argv[2] : NULL;
		return restore_run(&opts);
	}
	if (strcmp(argv[1], "run") != 0 || argc < 3)
		usage();
	int pins[64];
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-force") == 0) {
			opts.force = true;
		} else if (strcmp(a, "-name") == 0 && val) {
			opts.name = argv[++i];
		} else if (strcmp(a, "-shutdowntimeout") == 0 && val) {
			opts.shutdowntimeout_s = atoi(argv[++i]);
		} else if (strcmp(a, "-bindtimeout") == 0 && val) {
			opts.bindtimeout_s = atoi(argv[++i]);
		} else if (strcmp(a, "-user") == 0 && val) {
			opts.user = argv[++i];
		} else if (strcmp(a, "-usb") == 0 && val) {
			opts.usb_regex = argv[++i];
			if (passthrough_regex(&opts.usb_re, "-usb", opts.usb_regex, NULL) < 0)
				usage();
			opts.usb_re_set = true;
		} else if (strcmp(a, "-pinvcpus") == 0 && val) {
			char *copy = strdup(argv[++i]), *save = NULL;
			for (char *t = strtok_r(copy, ",", &save); t && opts.n_pinvcpus < 64; t = strtok_r(NULL, ",", &save))
				pins[opts.n_pinvcpus++] = atoi(t);
			opts.pinvcpus = pins;
			free(copy);
		} else {
			usage();
		}
	}
	struct plan plan = { 0 };
	if (load_plan(&plan, argv[2]) < 0 || plan_user(&plan, opts.user) < 0)
		return 2;
	int status = session_run(&opts, &plan);
	strv_free(&plan.argv);
	strv_free(&plan.errors);
	json_decref(plan.qmp);
	json_decref(plan.host_changes);
	json_decref(plan.viewers);
	free(plan.qemu_user.name);
	strv_free(&plan.qemu_nodes);
	if (opts.usb_re_set)
		regfree(&opts.usb_re);
	return status;
}
