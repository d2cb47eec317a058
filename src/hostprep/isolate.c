/* Run-time CPU isolation (-isolate): cgroup cpusets, IRQ affinity and the
 * unbound workqueue mask. Each change computes, in prepare, the exact list of
 * files it will write with their old contents ("edits"); apply writes the new
 * values, undo writes the old ones back, newest first, skipping files already
 * holding their old bytes (so undo is idempotent after a crash). */
#include "isolate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpulist.h"
#include "hostroot.h"
#include "log.h"

#define WQ_MASK "/sys/devices/virtual/workqueue/cpumask"

static const char *const top_slices[] = { "init.scope", "system.slice", "user.slice", "machine.slice" };

/* The guest and host CPU sets of a change, from args.guest_cpus and the
 * online CPUs. */
static int
split_cpus(const json_t *change, struct cpulist *guest, struct cpulist *host, struct verr *err)
{
	const char *action = change_str(change, "action");
	const char *g = change_arg_str(change, "guest_cpus");
	if (*g == '\0')
		return verr_set(err, -EINVAL, "%s: args.guest_cpus (the -pinvcpus CPUs) is missing", action);
	if (cpulist_parse(guest, g, "-pinvcpus", err) < 0 || cpulist_empty(guest))
		return verr_set(err, -EINVAL, "%s: '%s' names no CPUs for the guest", action, g);
	char *path = host_pathdup("/sys/devices/system/cpu/online");
	char *s = host_read_line(path);
	struct cpulist online;
	int ret = 0;
	if (s == NULL)
		ret = verr_set(err, -errno, "%s: cannot read %s: %s", action, path, strerror(errno));
	else if (cpulist_parse(&online, s, path, err) < 0)
		ret = err->code;
	if (ret == 0) {
		struct cpulist offline;
		cpulist_minus(&offline, guest, &online);
		cpulist_minus(host, &online, guest);
		if (!cpulist_empty(&offline)) {
			char *o = cpulist_str(&offline), *on = cpulist_str(&online);
			ret = verr_set(err, -EINVAL, "-isolate: CPUs %s are not online (online: %s); fix -pinvcpus", o, on);
			free(o);
			free(on);
		} else if (cpulist_empty(host)) {
			char *on = cpulist_str(&online);
			ret = verr_set(err, -EINVAL,
			    "-isolate: -pinvcpus gives every online CPU (%s) to the guest; leave at least core 0 to the host "
			    "(see -cputhreads for a suggestion)", on);
			free(on);
		}
	}
	free(s);
	free(path);
	return ret;
}

static json_t *
saved_new(const struct cpulist *guest, const struct cpulist *host)
{
	char *g = cpulist_str(guest), *h = cpulist_str(host);
	json_t *saved = json_pack("{s:s, s:s, s:[]}", "guest", g, "host", h, "edits");
	free(g);
	free(h);
	return saved;
}

/* One file to write: old is its content now (compared at undo), restore what
 * to write to put it back (old itself unless the file takes commands). */
static void
edit_add(json_t *saved, const char *path, const char *old, const char *new_val, const char *restore, bool may_refuse)
{
	json_array_append_new(json_object_get(saved, "edits"),
	    json_pack("{s:s, s:s, s:s, s:s, s:b}", "path", path, "old", old, "new", new_val, "restore", restore,
		"may_refuse", may_refuse));
}

/* Read a host file (by host path) whole, NULL with errno when it cannot. */
static char *
read_host(const char *hpath)
{
	char *p = host_pathdup("%s", hpath);
	char *s = host_read(p, NULL);
	int saved_errno = errno;
	free(p);
	errno = saved_errno;
	return s;
}

static int
write_host(const char *hpath, const char *val)
{
	char *p = host_pathdup("%s", hpath);
	/* The kernel ignores a write of nothing: an empty cpuset.cpus is set
	 * back by writing a newline, as `echo > cpuset.cpus` does. */
	int r = host_write(p, *val ? val : "\n");
	free(p);
	return r;
}

static int
edits_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	size_t i;
	json_t *e;
	int refused = 0;
	json_array_foreach(json_object_get(saved, "edits"), i, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *val = json_string_value(json_object_get(e, "new"));
		if (path == NULL || val == NULL)
			return verr_set(err, -EINVAL, "%s: saved state is damaged (edit %zu)", change_str(change, "action"), i);
		int r = write_host(path, val);
		if (r == 0)
			continue;
		if (json_is_true(json_object_get(e, "may_refuse"))) {
			/* As the kernel's own irqbalance does: an IRQ that cannot move
			 * stays where it is and the rest still move. */
			char *v = str_rstrip(xstrdup(val));
			log_warnx("-isolate: the kernel refused to set %s to %s (%s); left as it was", path, v,
			    strerror(-r));
			free(v);
			refused++;
			continue;
		}
		return verr_set(err, r, "-isolate: cannot write '%s' to %s: %s", val, path, strerror(-r));
	}
	if (refused > 0)
		log_debug("-isolate: %d file(s) refused, the rest were changed", refused);
	return 0;
}

static int
edits_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	json_t *edits = json_object_get(saved, "edits");
	int ret = 0;
	for (size_t i = json_array_size(edits); i-- > 0;) {
		json_t *e = json_array_get(edits, i);
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *old = json_string_value(json_object_get(e, "old"));
		const char *restore = json_string_value(json_object_get(e, "restore"));
		if (path == NULL || old == NULL || restore == NULL) {
			ret = verr_set(err, -EINVAL, "%s: saved state is damaged (edit %zu)", change_str(change, "action"), i);
			continue;
		}
		char *now = read_host(path);
		bool same = now != NULL && strcmp(now, old) == 0;
		free(now);
		if (same)
			continue;
		int r = write_host(path, restore);
		if (r < 0 && !json_is_true(json_object_get(e, "may_refuse")) && ret == 0)
			ret = verr_set(err, r, "-isolate: cannot put back '%s' in %s: %s", restore, path, strerror(-r));
	}
	return ret;
}

void
isolate_describe(const json_t *change, const json_t *saved, struct strv *lines)
{
	const char *cg = json_string_value(json_object_get(saved, "cgroup"));
	if (cg != NULL)
		strv_pushf(lines, "create cgroup %s with CPUs %s and move vfio (and so QEMU) into it", cg,
		    json_string_value(json_object_get(saved, "all")) ?: "");
	const char *shield = json_string_value(json_object_get(saved, "shield"));
	if (shield != NULL)
		strv_pushf(lines, "create cpuset %s with CPUs %s and move every process of the root cpuset into it", shield,
		    json_string_value(json_object_get(saved, "host")) ?: "");
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(saved, "edits"), i, e) {
		char *old = xstrdup(json_string_value(json_object_get(e, "old")) ?: "");
		char *new_val = xstrdup(json_string_value(json_object_get(e, "new")) ?: "");
		strv_pushf(lines, "%s: '%s' -> '%s'%s", json_string_value(json_object_get(e, "path")) ?: "?",
		    str_rstrip(old), str_rstrip(new_val),
		    json_is_true(json_object_get(e, "may_refuse")) ? " (left alone if the kernel refuses)" : "");
		free(old);
		free(new_val);
	}
	if (json_array_size(json_object_get(saved, "edits")) == 0 && cg == NULL && shield == NULL)
		strv_pushf(lines, "%s: nothing to change", change_str(change, "action"));
}

json_t *
isolate_changes(const char *guest_cpus, const char *name)
{
	static const char *const actions[][2] = {
		{ "cpuset-isolate", "/sys/fs/cgroup" },
		{ "irq-affinity", "/proc/irq" },
		{ "workqueue-cpumask", WQ_MASK },
	};
	json_t *a = json_array();
	for (size_t i = 0; i < nitems(actions); i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s, s:s}}", "action", actions[i][0], "target",
		    actions[i][1], "args", "guest_cpus", guest_cpus, "name", name));
	return a;
}

/* ---- cgroups ---------------------------------------------------------- */

/* The cgroup this process is in, on the hierarchy that holds the cpuset
 * controller ("0::/user.slice/..." on v2, "N:cpuset:/..." on v1). */
static char *
self_cgroup(bool v2)
{
	char *s = read_host("/proc/self/cgroup");
	if (s == NULL)
		return NULL;
	char *found = NULL;
	char *save = NULL;
	for (char *line = strtok_r(s, "\n", &save); line != NULL && found == NULL; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1;
		bool match = v2 ? (strncmp(line, "0:", 2) == 0 && *ctrls == '\0') : false;
		if (!v2) {
			/* v1 lists controllers comma separated: look for the word. */
			for (const char *p = ctrls; (p = strstr(p, "cpuset")) != NULL; p += 6)
				if ((p == ctrls || p[-1] == ',') && (p[6] == '\0' || p[6] == ','))
					match = true;
		}
		if (match)
			found = xstrdup(c2 + 1);
	}
	free(s);
	return found;
}

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

static int
cpuset_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	struct cpulist guest, host;
	if (split_cpus(change, &guest, &host, err) < 0)
		return err->code;
	const char *name = change_arg_str(change, "name");
	if (*name == '\0' || strchr(name, '/') != NULL || name[0] == '.')
		return verr_set(err, -EINVAL, "cpuset-isolate: args.name '%s' is not a usable guest name", name);

	char *p = host_pathdup("/sys/fs/cgroup/cgroup.controllers");
	bool v2 = host_exists(p);
	free(p);
	const char *base = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpuset";
	struct cpulist all;
	for (size_t i = 0; i < nitems(all.bits); i++)
		all.bits[i] = guest.bits[i] | host.bits[i];

	char *ctrls = NULL, *subtree = NULL, *self = NULL, *mems = NULL;
	json_t *s = NULL;
	int ret = 0;
	if (v2) {
		ctrls = read_host("/sys/fs/cgroup/cgroup.controllers");
		if (ctrls == NULL || !word_in(ctrls, "cpuset")) {
			ret = verr_set(err, -ENOTSUP, "-isolate: cgroup v2 at /sys/fs/cgroup has no cpuset controller "
			    "(cgroup.controllers: '%s'); a kernel with CONFIG_CPUSETS is needed",
			    ctrls ? str_rstrip(ctrls) : "unreadable");
			goto out;
		}
		subtree = read_host("/sys/fs/cgroup/cgroup.subtree_control");
		if (subtree == NULL) {
			ret = verr_set(err, -errno, "-isolate: cannot read /sys/fs/cgroup/cgroup.subtree_control: %s",
			    strerror(errno));
			goto out;
		}
	} else {
		char *probe = host_pathdup("/sys/fs/cgroup/cpuset/cpuset.cpus");
		bool ok = host_exists(probe);
		free(probe);
		if (!ok) {
			ret = verr_set(err, -ENOTSUP, "-isolate: found neither cgroup v2 (/sys/fs/cgroup/cgroup.controllers) "
			    "nor a v1 cpuset hierarchy (/sys/fs/cgroup/cpuset); mount one to isolate CPUs");
			goto out;
		}
		mems = read_host("/sys/fs/cgroup/cpuset/cpuset.mems");
		if (mems == NULL) {
			ret = verr_set(err, -errno, "-isolate: cannot read /sys/fs/cgroup/cpuset/cpuset.mems: %s",
			    strerror(errno));
			goto out;
		}
	}
	self = self_cgroup(v2);
	if (self == NULL) {
		ret = verr_set(err, -ENOENT, "-isolate: cannot find this process's %s cgroup in /proc/self/cgroup",
		    v2 ? "v2" : "cpuset");
		goto out;
	}

	s = saved_new(&guest, &host);
	char *all_s = cpulist_str(&all), *host_s = cpulist_str(&host);
	json_object_set_new(s, "version", json_integer(v2 ? 2 : 1));
	json_object_set_new(s, "all", json_string(all_s));
	char *cg = xasprintf("%s/vfio-%s", base, name);
	json_object_set_new(s, "cgroup", json_string(cg));
	json_object_set_new(s, "self_cgroup", json_string(self));
	if (mems != NULL)
		json_object_set_new(s, "mems", json_string(str_rstrip(mems)));
	if (!v2) {
		/* systemd does not manage v1's cpuset hierarchy: everything
		 * sits in its root, which cannot be narrowed. */
		char *shield = xasprintf("%s/vfio-host-%s", base, name);
		json_object_set_new(s, "shield", json_string(shield));
		free(shield);
	}
	free(cg);
	if (v2 && !word_in(subtree, "cpuset"))
		edit_add(s, "/sys/fs/cgroup/cgroup.subtree_control", subtree, "+cpuset\n", "-cpuset\n", false);
	char *newv = xasprintf("%s\n", host_s);
	for (size_t i = 0; i < nitems(top_slices); i++) {
		char *dir = xasprintf("%s/%s", base, top_slices[i]);
		char *hdir = host_pathdup("%s", dir);
		if (host_exists(hdir)) {
			char *file = xasprintf("%s/cpuset.cpus", dir);
			char *old = read_host(file);
			/* With cpuset just being enabled in subtree_control, the
			 * file appears only then: its old value is the empty
			 * (inherit everything) one. */
			if (old == NULL && v2 && !word_in(subtree, "cpuset"))
				old = xstrdup("\n");
			if (old == NULL) {
				ret = verr_set(err, -errno, "-isolate: cannot read %s: %s", file, strerror(errno));
				free(file);
				free(hdir);
				free(dir);
				break;
			}
			edit_add(s, file, old, newv, old, false);
			free(old);
			free(file);
		}
		free(hdir);
		free(dir);
	}
	free(newv);
	free(all_s);
	free(host_s);
	if (ret < 0) {
		json_decref(s);
		s = NULL;
	}
out:
	free(ctrls);
	free(subtree);
	free(self);
	free(mems);
	*saved = s;
	return ret;
}

/* Write a file of a cgroup we created. O_CREAT only matters for a plain
 * directory tree (the test fixture); cgroupfs makes these files itself. */
static int
cg_write(const char *hpath, const char *val)
{
	char *p = host_pathdup("%s", hpath);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = 0;
	if (fd < 0) {
		r = -errno;
	} else {
		ssize_t n = write(fd, val, strlen(val));
		if (n < 0)
			r = -errno;
		else if ((size_t)n != strlen(val))
			r = -EIO;
		if (close(fd) < 0 && r == 0)
			r = -errno;
	}
	free(p);
	return r;
}

/* Create cpuset cg (host path) with cpus and, on v1, mems. */
static int
cg_create(const char *cg, const char *cpus, const char *mems, struct verr *err)
{
	char *hcg = host_pathdup("%s", cg);
	int r = mkdir(hcg, 0755) < 0 && errno != EEXIST ? -errno : 0;
	free(hcg);
	if (r < 0)
		return verr_set(err, r, "-isolate: cannot create cgroup %s: %s", cg, strerror(-r));
	char *f = xasprintf("%s/cpuset.cpus", cg);
	char *val = xasprintf("%s\n", cpus);
	r = cg_write(f, val);
	free(val);
	if (r == 0 && mems != NULL) {
		/* v1 refuses tasks in a cpuset without memory nodes. */
		free(f);
		f = xasprintf("%s/cpuset.mems", cg);
		val = xasprintf("%s\n", mems);
		r = cg_write(f, val);
		free(val);
	}
	if (r < 0)
		verr_set(err, r, "-isolate: cannot set up %s: %s", f, strerror(-r));
	free(f);
	return r;
}

/* Move every process listed in from/cgroup.procs to to/cgroup.procs, one
 * write per pid as the kernel takes them. Kernel threads bound to CPUs
 * refuse (EINVAL) and processes end meanwhile (ESRCH): both stay as the
 * kernel leaves them. Returns how many moved. */
static int
cg_move_all(const char *from, const char *to, pid_t except)
{
	char *src = xasprintf("%s/cgroup.procs", from), *dst = xasprintf("%s/cgroup.procs", to);
	char *list = read_host(src);
	int moved = 0, refused = 0;
	char *save = NULL;
	for (char *w = list ? strtok_r(list, "\n", &save) : NULL; w != NULL; w = strtok_r(NULL, "\n", &save)) {
		if (atoi(w) == (int)except)
			continue;
		char *val = xasprintf("%s\n", w);
		if (write_host(dst, val) == 0)
			moved++;
		else
			refused++;
		free(val);
	}
	log_debug("-isolate: moved %d processes from %s to %s (%d stayed: kernel threads or gone)", moved, from, to,
	    refused);
	free(list);
	free(src);
	free(dst);
	return moved;
}

static int
cpuset_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *cg = json_string_value(json_object_get(saved, "cgroup"));
	const char *all = json_string_value(json_object_get(saved, "all"));
	const char *mems = json_string_value(json_object_get(saved, "mems"));
	bool v2 = json_integer_value(json_object_get(saved, "version")) == 2;
	if (cg == NULL || all == NULL)
		return verr_set(err, -EINVAL, "cpuset-isolate: saved state is incomplete");

	/* First our own cgroup with every CPU, so neither we nor QEMU are
	 * caught by the restriction of the slice we started in. Cpuset must be
	 * on in the root's subtree_control before the new cgroup has the file:
	 * that edit, when present, is first in the list, so apply it here. */
	json_t *edits = json_object_get(saved, "edits");
	json_t *first = json_array_get(edits, 0);
	size_t skip = 0;
	if (first != NULL && str_startswith(json_string_value(json_object_get(first, "path")) ?: "",
	    "/sys/fs/cgroup/cgroup.subtree_control")) {
		int r = write_host("/sys/fs/cgroup/cgroup.subtree_control", "+cpuset\n");
		if (r < 0)
			return verr_set(err, r, "-isolate: cannot enable cpuset in /sys/fs/cgroup/cgroup.subtree_control: %s",
			    strerror(-r));
		skip = 1;
	}
	int r = cg_create(cg, all, v2 ? NULL : mems, err);
	if (r < 0)
		return r;
	char *f = xasprintf("%s/cgroup.procs", cg);
	char *val = xasprintf("%d\n", (int)getpid());
	r = cg_write(f, val);
	free(val);
	if (r < 0) {
		verr_set(err, r, "-isolate: cannot move vfio into %s: %s", f, strerror(-r));
		free(f);
		return r;
	}
	free(f);

	const char *shield = json_string_value(json_object_get(saved, "shield"));
	if (shield != NULL) {
		const char *host = json_string_value(json_object_get(saved, "host"));
		if (host == NULL || cg_create(shield, host, mems, err) < 0)
			return host == NULL ? verr_set(err, -EINVAL, "cpuset-isolate: saved state is incomplete") : err->code;
		cg_move_all("/sys/fs/cgroup/cpuset", shield, getpid());
	}

	json_t *rest = json_deep_copy(saved);
	json_t *redits = json_object_get(rest, "edits");
	if (skip)
		json_array_remove(redits, 0);
	r = edits_apply(change, rest, err);
	json_decref(rest);
	return r;
}

/* rmdir a cgroup we made (joined path); 0 when it is gone. */
static int
cg_remove(const char *hcg)
{
	if (rmdir(hcg) == 0 || errno == ENOENT)
		return 0;
	if (errno != ENOTEMPTY)
		return -errno;
	/* cgroupfs removes a cgroup with its interface files; a plain
	 * directory (a fixture) needs them gone first. */
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems", "cgroup.procs" };
	for (size_t i = 0; i < nitems(files); i++) {
		char *f = xasprintf("%s/%s", hcg, files[i]);
		unlink(f);
		free(f);
	}
	return rmdir(hcg) == 0 || errno == ENOENT ? 0 : -errno;
}

static int
cpuset_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *cg = json_string_value(json_object_get(saved, "cgroup"));
	const char *self_orig = json_string_value(json_object_get(saved, "self_cgroup"));
	bool v2 = json_integer_value(json_object_get(saved, "version")) == 2;
	json_t *rest = json_deep_copy(saved);
	json_t *edits = json_object_get(rest, "edits");
	json_t *first = json_array_get(edits, 0);
	bool subtree = first != NULL && str_startswith(json_string_value(json_object_get(first, "path")) ?: "",
	    "/sys/fs/cgroup/cgroup.subtree_control");
	json_t *subtree_edit = NULL;
	if (subtree) {
		subtree_edit = json_incref(first);
		json_array_remove(edits, 0);
	}
	int ret = edits_undo(change, rest, err);
	json_decref(rest);

	const char *shield = json_string_value(json_object_get(saved, "shield"));
	if (shield != NULL) {
		char *hs = host_pathdup("%s", shield);
		/* A process forked meanwhile can land in it between the move
		 * and the rmdir: try a few times. */
		for (int tries = 0; tries < 5 && host_exists(hs); tries++) {
			cg_move_all(shield, "/sys/fs/cgroup/cpuset", 0);
			if (cg_remove(hs) == 0)
				break;
		}
		if (host_exists(hs) && ret == 0)
			ret = verr_set(err, -EBUSY, "-isolate: cannot remove %s (processes still in it?); move them to "
			    "/sys/fs/cgroup/cpuset/cgroup.procs and rmdir it", shield);
		free(hs);
	}

	if (cg != NULL) {
		const char *base = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpuset";
		/* Still in our cgroup (teardown, not -restore from another
		 * process): go back where we came from so it can be removed. */
		char *now = self_cgroup(v2);
		char *mine = now ? xasprintf("%s%s", base, now) : NULL;
		if (mine != NULL && strcmp(mine, cg) == 0 && self_orig != NULL) {
			char *f = xasprintf("%s%s/cgroup.procs", base, self_orig);
			char *val = xasprintf("%d\n", (int)getpid());
			int r = write_host(f, val);
			if (r < 0 && ret == 0)
				ret = verr_set(err, r, "-isolate: cannot move vfio back to %s: %s", f, strerror(-r));
			free(f);
			free(val);
		}
		free(now);
		free(mine);
		char *hcg = host_pathdup("%s", cg);
		int r = cg_remove(hcg);
		if (r < 0 && ret == 0)
			ret = verr_set(err, r, "-isolate: cannot remove cgroup %s: %s (processes still in it?)", cg,
			    strerror(-r));
		free(hcg);
	}
	if (subtree_edit != NULL) {
		char *now = read_host("/sys/fs/cgroup/cgroup.subtree_control");
		if (now != NULL && word_in(now, "cpuset")) {
			int r = write_host("/sys/fs/cgroup/cgroup.subtree_control", "-cpuset\n");
			if (r < 0 && ret == 0)
				ret = verr_set(err, r, "-isolate: cannot disable cpuset again in cgroup.subtree_control: %s",
				    strerror(-r));
		}
		free(now);
		json_decref(subtree_edit);
	}
	return ret;
}

const struct change_ops cpuset_isolate_ops = {
	.action = "cpuset-isolate",
	.prepare = cpuset_prepare,
	.apply = cpuset_apply,
	.undo = cpuset_undo,
};

/* ---- IRQs ------------------------------------------------------------- */

/* Record an edit of an affinity file (old contents, parsed as cur) that
 * keeps only the host CPUs it had, or every host CPU when it had none of
 * them, written back as a CPU list or as a hex mask like the file holds.
 * Nothing is recorded when cur already avoids the guest's CPUs. may_refuse:
 * the kernel may answer EIO (an IRQ it cannot move). */
static void
edit_off_guest(json_t *s, const char *path, const char *old, const struct cpulist *cur,
    const struct cpulist *guest, const struct cpulist *host, bool as_list, bool may_refuse)
{
	if (!cpulist_intersects(cur, guest))
		return;
	struct cpulist keep;
	cpulist_and(&keep, cur, host);
	if (cpulist_empty(&keep))
		keep = *host;
	char *m = as_list ? cpulist_str(&keep) : cpumask_str(&keep);
	char *newv = xasprintf("%s\n", m);
	edit_add(s, path, old, newv, old, may_refuse);
	free(m);
	free(newv);
}

static int
irq_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	struct cpulist guest, host;
	if (split_cpus(change, &guest, &host, err) < 0)
		return err->code;
	char *dirp = host_pathdup("/proc/irq");
	DIR *d = opendir(dirp);
	if (d == NULL) {
		int e = errno;
		verr_set(err, -e, "-isolate: cannot list %s: %s", dirp, strerror(e));
		free(dirp);
		return -e;
	}
	free(dirp);
	/* Numeric order, so the rundown and the journal read naturally. */
	int *irqs = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end != '\0' || v < 0)
			continue;
		irqs = xreallocarray(irqs, n + 1, sizeof(*irqs));
		irqs[n++] = (int)v;
	}
	closedir(d);
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && irqs[j - 1] > irqs[j]; j--) {
			int t = irqs[j];
			irqs[j] = irqs[j - 1];
			irqs[j - 1] = t;
		}

	json_t *s = saved_new(&guest, &host);
	for (size_t i = 0; i < n; i++) {
		char *file = xasprintf("/proc/irq/%d/smp_affinity_list", irqs[i]);
		char *old = read_host(file);
		struct cpulist cur;
		if (old != NULL && cpulist_parse(&cur, old, file, NULL) == 0)
			edit_off_guest(s, file, old, &cur, &guest, &host, true, true);
		free(old);
		free(file);
	}
	free(irqs);

	/* New IRQs start on default_smp_affinity (a hex mask). */
	char *old = read_host("/proc/irq/default_smp_affinity");
	struct cpulist cur;
	if (old != NULL && cpumask_parse(&cur, old, "/proc/irq/default_smp_affinity", NULL) == 0)
		edit_off_guest(s, "/proc/irq/default_smp_affinity", old, &cur, &guest, &host, false, false);
	free(old);
	*saved = s;
	return 0;
}

const struct change_ops irq_affinity_ops = {
	.action = "irq-affinity",
	.prepare = irq_prepare,
	.apply = edits_apply,
	.undo = edits_undo,
};

/* ---- workqueues ------------------------------------------------------- */

static int
wq_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	struct cpulist guest, host, cur;
	if (split_cpus(change, &guest, &host, err) < 0)
		return err->code;
	char *old = read_host(WQ_MASK);
	if (old == NULL)
		return verr_set(err, -errno, "-isolate: cannot read " WQ_MASK ": %s", strerror(errno));
	if (cpumask_parse(&cur, old, WQ_MASK, err) < 0) {
		free(old);
		return err->code;
	}
	json_t *s = saved_new(&guest, &host);
	edit_off_guest(s, WQ_MASK, old, &cur, &guest, &host, false, false);
	free(old);
	*saved = s;
	return 0;
}

const struct change_ops workqueue_cpumask_ops = {
	.action = "workqueue-cpumask",
	.prepare = wq_prepare,
	.apply = edits_apply,
	.undo = edits_undo,
};
