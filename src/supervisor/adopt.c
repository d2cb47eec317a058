/* What is left of an earlier run and how a new run takes it over: see
 * adopt.h. */
#include "adopt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proc.h"
#include "rundir.h"
#include "passthrough.h"

enum opt_running_how
adopt_decide(const struct journal *j, char **why)
{
	*why = NULL;
	if (!proc_matches(j->qemu_pid, j->qemu_start))
		return j->n > 0 || j->qemu_pid > 0 ? OPT_RUN_RESTORE_FIRST : OPT_RUN_FRESH;
	if (j->version < 2 || j->run == NULL) {
		*why = xasprintf("its QEMU (pid %d) was started by an earlier vfio, whose monitor connection died "
		    "with its supervisor: it cannot be adopted", (int)j->qemu_pid);
		return OPT_RUN_UNREACHABLE;
	}
	/* Killed between spawning QEMU and `cont`: the guest never ran. */
	if (!j->started)
		return OPT_RUN_RESTORE_FIRST;
	return OPT_RUN_ADOPT;
}

void
adopt_probe(const char *name, struct opt_running *running)
{
	memset(running, 0, sizeof(*running));
	if (name == NULL || rundir_check_name(name, NULL) < 0)
		return;
	pid_t sup = rundir_supervisor(name);
	if (sup > 0) {
		running->how = OPT_RUN_SUPERVISED;
		running->supervisor_pid = (int)sup;
		return;
	}
	char *dir = rundir_path(name);
	struct journal j;
	struct verr err = { 0 };
	int r = journal_load(&j, dir, &err);
	free(dir);
	if (r == -ENOENT)
		return;
	if (r < 0) {
		/* -run will say the same, refusing */
		running->how = OPT_RUN_UNREACHABLE;
		running->why = xstrdup(err.msg);
		return;
	}
	running->how = adopt_decide(&j, &running->why);
	running->qemu_pid = (int)j.qemu_pid;
	if (running->how == OPT_RUN_ADOPT)
		running->flags = json_incref(json_object_get(j.run, "flags"));
	journal_close(&j);
}

/* --- the run record -------------------------------------------------------- */

static json_t *
adopt_strv_json(const struct strv *v)
{
	json_t *a = json_array();
	for (size_t i = 0; i < v->n; i++)
		json_array_append_new(a, json_string(v->v[i]));
	return a;
}

json_t *
adopt_run_record(const struct options *opts, const struct plan *plan, const struct spawn_user *user)
{
	json_t *rec = json_pack("{s:s, s:o, s:{s:o, s:o, s:o, s:i, s:b, s:b, s:I}, s:{s:s?, s:i, s:i, s:s?}}",
	    "name", opts->name ? opts->name : "vfio",
	    "flags", adopt_strv_json(&opts->flags),
	    "plan",
	    "argv", adopt_strv_json(&plan->argv),
	    "qmp", plan->qmp ? json_incref(plan->qmp) : json_array(),
	    "devices", plan->devices ? json_incref(plan->devices) : json_object(),
	    "n_root_ports", plan->n_root_ports,
	    "has_xhci", plan->has_xhci,
	    "has_disk_image", plan->has_disk_image,
	    "memory_mib", (json_int_t)plan->memory_mib,
	    "options",
	    "usb", opts->usb_re_set ? opts->usb_regex : NULL,
	    "shutdowntimeout", opts->shutdowntimeout_s,
	    "bindtimeout", opts->bindtimeout_s,
	    "user", opts->user);
	if (user != NULL && user->drop)
		json_object_set_new(rec, "qemu_user", json_pack("{s:I, s:I, s:s?}", "uid", (json_int_t)user->uid,
		    "gid", (json_int_t)user->gid, "name", user->name));
	return rec;
}

int
adopt_run_load(const json_t *run, struct options *opts, struct plan *plan, struct spawn_user *user,
    struct verr *err)
{
	options_init(opts);
	memset(plan, 0, sizeof(*plan));
	const json_t *p = json_object_get(run, "plan"), *o = json_object_get(run, "options");
	const char *name = json_string_value(json_object_get(run, "name"));
	if (!json_is_object(p) || !json_is_object(o) || name == NULL)
		return verr_set(err, -EINVAL, "the journal's run record is not one this vfio can read");
	free(opts->name);
	opts->name = xstrdup(name);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(run, "flags"), i, v)
		strv_push(&opts->flags, json_string_value(v));
	opts->shutdowntimeout_s = (int)json_integer_value(json_object_get(o, "shutdowntimeout"));
	opts->bindtimeout_s = (int)json_integer_value(json_object_get(o, "bindtimeout"));
	const char *usb = json_string_value(json_object_get(o, "usb"));
	if (usb != NULL) {
		if (passthrough_regex_compile(&opts->usb_re, REG_NOSUB, "the running guest's -usb", usb, err) < 0)
			return -EINVAL;
		opts->usb_regex = xstrdup(usb);
		opts->usb_re_set = true;
	}
	const char *who = json_string_value(json_object_get(o, "user"));
	if (who != NULL)
		opts->user = xstrdup(who);
	json_array_foreach(json_object_get(p, "argv"), i, v)
		strv_push(&plan->argv, json_string_value(v));
	plan->qmp = json_deep_copy(json_object_get(p, "qmp"));
	plan->devices = json_deep_copy(json_object_get(p, "devices"));
	plan->host_changes = json_array();
	plan->viewers = json_array();
	plan->n_root_ports = (int)json_integer_value(json_object_get(p, "n_root_ports"));
	plan->has_xhci = json_is_true(json_object_get(p, "has_xhci"));
	plan->has_disk_image = json_is_true(json_object_get(p, "has_disk_image"));
	plan->memory_mib = (uint64_t)json_integer_value(json_object_get(p, "memory_mib"));
	if (plan->qmp == NULL || plan->devices == NULL)
		return verr_set(err, -EINVAL, "the journal's run record has no plan this vfio can read");
	/* QEMU's user, as the start resolved it (its name, or the sudo caller's
	 * ids, which this invocation need not have). */
	json_t *u = json_object_get(run, "qemu_user");
	memset(user, 0, sizeof(*user));
	if (json_is_object(u)) {
		user->uid = (uid_t)json_integer_value(json_object_get(u, "uid"));
		user->gid = (gid_t)json_integer_value(json_object_get(u, "gid"));
		user->drop = user->uid != 0;
		const char *uname = json_string_value(json_object_get(u, "name"));
		user->name = uname != NULL ? xstrdup(uname) : xasprintf("uid %u", (unsigned)user->uid);
	}
	return 0;
}

void
adopt_plan_free(struct plan *plan)
{
	plan_free(plan);
}

/* --- what differs ------------------------------------------------------------ */

/* The flags that only concern this invocation of vfio. */
static bool
adopt_flag_ignored(const char *flag)
{
	static const char *const mine[] = { "quiet", "nocolor" };
	size_t n = strcspn(flag + 1, " ");
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), flag + 1);
	const struct option_info *in = options_find(name);
	if (in == NULL || options_is_mode(in))
		return true;
	for (size_t i = 0; i < nitems(mine); i++) {
		if (strcmp(in->name, mine[i]) == 0)
			return true;
	}
	return false;
}

/* The values one flag was given, in order ("" for a switch), joined. */
static char *
adopt_values(const struct strv *flags, const char *name)
{
	struct strbuf sb = { 0 };
	size_t n = strlen(name);
	bool any = false;
	for (size_t i = 0; i < flags->n; i++) {
		const char *f = flags->v[i] + 1;
		if (strncmp(f, name, n) != 0 || (f[n] != ' ' && f[n] != '\0'))
			continue;
		strbuf_printf(&sb, "%s%s", any ? ", " : "", f[n] == ' ' ? f + n + 1 : "given");
		any = true;
	}
	return any ? strbuf_steal(&sb) : NULL;
}

void
adopt_differences(const json_t *run_flags, const struct strv *now, struct strv *out)
{
	struct strv then = { 0 }, names = { 0 };
	size_t i;
	json_t *v;
	json_array_foreach(run_flags, i, v)
		strv_push(&then, json_string_value(v));
	const struct strv *both[] = { now, &then };
	for (size_t k = 0; k < 2; k++) {
		for (i = 0; i < both[k]->n; i++) {
			const char *f = both[k]->v[i];
			if (adopt_flag_ignored(f))
				continue;
			char *name = xstrndup(f + 1, strcspn(f + 1, " "));
			bool seen = false;
			for (size_t m = 0; m < names.n && !seen; m++)
				seen = strcmp(names.v[m], name) == 0;
			if (!seen)
				strv_push(&names, name);
			free(name);
		}
	}
	for (i = 0; i < names.n; i++) {
		char *a = adopt_values(now, names.v[i]), *b = adopt_values(&then, names.v[i]);
		if (a == NULL || b == NULL || strcmp(a, b) != 0)
			strv_pushf(out, "-%s: %s now, %s in the running guest", names.v[i], a ? a : "not given",
			    b ? b : "not given");
		free(a);
		free(b);
	}
	strv_free(&then);
	strv_free(&names);
}
