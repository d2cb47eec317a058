/* Who holds a GPU, and the host changes that free it for the guest and give
 * it back to the desktop afterwards (see display.h). */
#include "display.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostcmd.h"
#include "hostroot.h"
#include "log.h"
#include "vfioenv.h"

extern char **environ;

static const char *const compositors[] = {
	"Xorg", "X", "Xwayland", "gnome-shell", "kwin_wayland", "kwin_x11", "sway", "weston",
	"Hyprland", "mutter", "wayfire", "labwc", "river", "cage", "gamescope", "niri",
	"cosmic-comp", "startplasma-way", "hikari", "enlightenment",
};

bool
display_is_compositor(const char *comm)
{
	for (size_t i = 0; i < nitems(compositors); i++)
		if (strcmp(comm, compositors[i]) == 0)
			return true;
	return false;
}

/* Join a symlink target to the directory of the link, lexically. */
static char *
resolve_link_target(const char *linkdir, const char *target)
{
	if (target[0] == '/')
		return xstrdup(target);
	char *dir = xstrdup(linkdir);
	const char *t = target;
	for (;;) {
		if (strncmp(t, "../", 3) == 0) {
			char *slash = strrchr(dir, '/');
			if (slash != NULL && slash != dir)
				*slash = '\0';
			else
				dir[1] = '\0';
			t += 3;
		} else if (strncmp(t, "./", 2) == 0) {
			t += 2;
		} else {
			break;
		}
	}
	char *out = xasprintf("%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", t);
	free(dir);
	return out;
}

/* The host paths that stand for the card at addr. */
static void
held_files(const char *addr, struct strv *files)
{
	char *bypath = host_pathdup("/dev/dri/by-path");
	char *prefix = xasprintf("pci-%s-", addr);
	DIR *d = opendir(bypath);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (!str_startswith(de->d_name, prefix))
			continue;
		char *link = xasprintf("%s/%s", bypath, de->d_name);
		char *target = host_readlink(link);
		strv_pushf(files, "/dev/dri/by-path/%s", de->d_name);
		if (target != NULL) {
			char *res = resolve_link_target("/dev/dri/by-path", target);
			strv_push(files, res);
			free(res);
		}
		free(target);
		free(link);
	}
	if (d != NULL)
		closedir(d);
	free(prefix);
	free(bypath);

	/* NVIDIA's driver also hands out /dev/nvidia*: a CUDA process holds the
	 * card through those without touching DRM. */
	char *vpath = host_pathdup("/sys/bus/pci/devices/%s/vendor", addr);
	char *vendor = host_read_line(vpath);
	free(vpath);
	if (vendor != NULL && strtoul(vendor, NULL, 16) == 0x10de) {
		char *dev = host_pathdup("/dev");
		DIR *dd = opendir(dev);
		while (dd != NULL && (de = readdir(dd)) != NULL) {
			if (str_startswith(de->d_name, "nvidia") && de->d_type != DT_DIR)
				strv_pushf(files, "/dev/%s", de->d_name);
		}
		if (dd != NULL)
			closedir(dd);
		free(dev);
	}
	free(vendor);
}

static void
holder_read(int pid, struct display_holder *h)
{
	char path[PATH_MAX];
	h->pid = pid;
	h->uid = (uid_t)-1;
	h->gid = (gid_t)-1;
	host_path(path, sizeof(path), "/proc/%d/comm", pid);
	char *comm = host_read_line(path);
	snprintf(h->comm, sizeof(h->comm), "%s", comm ? comm : "?");
	free(comm);
	host_path(path, sizeof(path), "/proc/%d/cmdline", pid);
	size_t len = 0;
	char *cmd = host_read(path, &len);
	for (size_t i = 0; cmd != NULL && i < len; i += strlen(cmd + i) + 1)
		strv_push(&h->argv, cmd + i);
	free(cmd);
	host_path(path, sizeof(path), "/proc/%d/status", pid);
	char *status = host_read(path, NULL);
	for (char *line = status; line != NULL && *line; ) {
		char *nl = strchr(line, '\n');
		unsigned long v;
		if (sscanf(line, "Uid: %lu", &v) == 1)
			h->uid = (uid_t)v;
		else if (sscanf(line, "Gid: %lu", &v) == 1)
			h->gid = (gid_t)v;
		line = nl ? nl + 1 : NULL;
	}
	free(status);
	h->compositor = display_is_compositor(h->comm);
}

int
display_find_holders(const char *addr, struct display_holders *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	struct strv files = { 0 };
	held_files(addr, &files);
	if (files.n == 0) {
		strv_free(&files);
		return 0;
	}
	char *proc = host_pathdup("/proc");
	DIR *d = opendir(proc);
	if (d == NULL) {
		int e = errno;
		verr_set(err, -e, "cannot list processes in %s to find who holds %s: %s", proc, addr,
		    strerror(e));
		strv_free(&files);
		free(proc);
		return -e;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int pid = atoi(de->d_name);
		char *fddir = xasprintf("%s/%s/fd", proc, de->d_name);
		DIR *fd = opendir(fddir);
		struct dirent *fe;
		const char *held = NULL;
		while (fd != NULL && held == NULL && (fe = readdir(fd)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			char *link = xasprintf("%s/%s", fddir, fe->d_name);
			char *target = host_readlink(link);
			for (size_t i = 0; target != NULL && i < files.n; i++)
				if (strcmp(target, files.v[i]) == 0)
					held = files.v[i];
			free(target);
			free(link);
		}
		if (fd != NULL)
			closedir(fd);
		free(fddir);
		if (held == NULL)
			continue;
		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		struct display_holder *h = &out->v[out->n++];
		memset(h, 0, sizeof(*h));
		snprintf(h->file, sizeof(h->file), "%s", held);
		holder_read(pid, h);
	}
	closedir(d);
	free(proc);
	strv_free(&files);
	return 0;
}

void
display_holders_free(struct display_holders *h)
{
	for (size_t i = 0; i < h->n; i++)
		strv_free(&h->v[i].argv);
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

static void
holder_describe(const struct display_holder *h, struct strbuf *sb)
{
	strbuf_printf(sb, "%d %s (uid %ld, %s):", h->pid, h->comm, (long)(int)h->uid, h->file);
	for (size_t i = 0; i < h->argv.n; i++) {
		strbuf_puts(sb, " ");
		shell_quote(sb, h->argv.v[i]);
	}
}

char *
display_describe_holders(const char *addr)
{
	struct display_holders hs;
	struct strbuf sb = { 0 };
	if (display_find_holders(addr, &hs, NULL) == 0) {
		for (size_t i = 0; i < hs.n; i++) {
			if (i > 0)
				strbuf_puts(&sb, "; ");
			holder_describe(&hs.v[i], &sb);
		}
		display_holders_free(&hs);
	}
	return strbuf_steal(&sb);
}

/* ---- display-manager-stop ---- */

static int
systemctl_path(const char **out, const char *unit, struct verr *err)
{
	*out = hostcmd_systemctl(unit, err);
	return *out != NULL ? 0 : err != NULL ? err->code : -ENOTSUP;
}

static int
systemctl(const char *verb, const char *unit, char **errout, struct verr *err)
{
	const char *bin = NULL;
	int r = systemctl_path(&bin, unit, err);
	if (r < 0)
		return r;
	char *argv[] = { (char *)bin, (char *)verb, (char *)unit, NULL };
	char *quiet[] = { (char *)bin, (char *)verb, "--quiet", (char *)unit, NULL };
	return hostcmd_run(strcmp(verb, "is-active") == 0 ? quiet : argv, errout, err);
}

static int
dm_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *unit = change_str(change, "target");
	if (*unit == '\0' || strchr(unit, '/') != NULL || unit[0] == '-')
		return verr_set(err, -EINVAL, "display-manager-stop: \"%s\" is not a systemd unit name; "
		    "the plan should name display-manager.service", unit);
	int r = systemctl("is-active", unit, NULL, err);
	if (r < 0)
		return r;
	*saved = json_pack("{sb}", "active", r == 0);
	return 0;
}

static int
dm_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *unit = change_str(change, "target");
	if (!json_is_true(json_object_get(saved, "active")))
		return 0;
	char *msg = NULL;
	int r = systemctl("stop", unit, &msg, err);
	if (r > 0)
		r = verr_set(err, -EIO, "systemctl stop %s failed (exit %d)%s%s; stop the graphical session "
		    "yourself and try again", unit, r, msg && *msg ? ": " : "", msg ? msg : "");
	free(msg);
	return r;
}

static int
dm_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *unit = change_str(change, "target");
	if (!json_is_true(json_object_get(saved, "active")))
		return 0;
	char *msg = NULL;
	int r = systemctl("start", unit, &msg, err);
	if (r > 0)
		r = verr_set(err, -EIO, "systemctl start %s failed (exit %d)%s%s; start it by hand: "
		    "systemctl start %s", unit, r, msg && *msg ? ": " : "", msg ? msg : "", unit);
	free(msg);
	return r;
}

/* A display manager takes seconds to stop: systemd waits for the session
 * to end. */
static int
dm_deadline_ms(const json_t *change, const json_t *saved, int bindtimeout_ms)
{
	return bindtimeout_ms + 30000;
}

const struct change_ops display_manager_stop_ops = {
	.action = "display-manager-stop",
	.prepare = dm_prepare,
	.apply = dm_apply,
	.undo = dm_undo,
	.may_block = true,
	.deadline_ms = dm_deadline_ms,
};

/* ---- vtcon-unbind ---- */

static int
display_vtcon_number(const char *name)
{
	if (strncmp(name, "vtcon", 5) != 0 || name[5] == '\0' || strspn(name + 5, "0123456789") != strlen(name + 5))
		return -1;
	return atoi(name + 5);
}

static int
display_vtcon_cmp(const void *a, const void *b)
{
	return display_vtcon_number((const char *)a + strlen("/sys/class/vtconsole/")) -
	    display_vtcon_number((const char *)b + strlen("/sys/class/vtconsole/"));
}

size_t
display_fbcon_scan(char (*out)[48], size_t max)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/class/vtconsole") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		if (display_vtcon_number(e->d_name) < 0)
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s/name", dir, e->d_name) >= (int)sizeof(path))
			continue;
		char *name = host_read_line(path);
		char *bind = NULL;
		if (snprintf(path, sizeof(path), "%s/%s/bind", dir, e->d_name) < (int)sizeof(path))
			bind = host_read_line(path);
		if (name != NULL && strstr(name, "frame buffer") != NULL && bind != NULL && strcmp(bind, "1") == 0 &&
		    snprintf(out[n], sizeof(out[0]), "/sys/class/vtconsole/%s", e->d_name) < (int)sizeof(out[0]))
			n++;
		free(name);
		free(bind);
	}
	closedir(d);
	qsort(out, n, sizeof(out[0]), display_vtcon_cmp);
	return n;
}

static int
vtcon_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *target = change_str(change, "target");
	if (!str_startswith(target, "/sys/class/vtconsole/vtcon") || strstr(target, "..") != NULL)
		return verr_set(err, -EINVAL, "vtcon-unbind: \"%s\" is not a virtual console "
		    "(expected /sys/class/vtconsole/vtconN)", target);
	char *path = host_pathdup("%s/bind", target);
	char *v = host_read_line(path);
	if (v == NULL) {
		int e = errno;
		verr_set(err, -e, "cannot read %s: %s; leave the consoles alone with -ignorevtcon", path,
		    strerror(e));
		free(path);
		return -e;
	}
	*saved = json_pack("{ss}", "bind", v);
	free(v);
	free(path);
	return 0;
}

static int
vtcon_write(const json_t *change, const char *value, struct verr *err)
{
	char *path = host_pathdup("%s/bind", change_str(change, "target"));
	int r = host_write(path, value);
	if (r < 0)
		verr_set(err, r, "cannot write %c to %s: %s; leave the consoles alone with -ignorevtcon",
		    value[0], path, strerror(-r));
	free(path);
	return r;
}

static int
vtcon_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	if (strcmp(json_string_value(json_object_get(saved, "bind")) ?: "", "1") != 0)
		return 0;
	return vtcon_write(change, "0\n", err);
}

static int
vtcon_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	if (strcmp(json_string_value(json_object_get(saved, "bind")) ?: "", "1") != 0)
		return 0;
	return vtcon_write(change, "1\n", err);
}

const struct change_ops display_vtcon_unbind_ops = {
	.action = "vtcon-unbind",
	.prepare = vtcon_prepare,
	.apply = vtcon_apply,
	.undo = vtcon_undo,
	.may_block = false,
};

/* ---- efifb-unbind ---- */

#define EFIFB_DRIVER "/sys/bus/platform/drivers/efi-framebuffer"

static bool
efifb_bound(const char *dev)
{
	char path[PATH_MAX];
	host_path(path, sizeof(path), EFIFB_DRIVER "/%s", dev);
	char *t = host_readlink(path);
	free(t);
	return t != NULL;
}

static int
efifb_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *dev = change_str(change, "target");
	if (*dev == '\0' || strchr(dev, '/') != NULL || dev[0] == '.')
		return verr_set(err, -EINVAL, "efifb-unbind: \"%s\" is not a platform device name "
		    "(expected efi-framebuffer.0)", dev);
	*saved = json_pack("{sb}", "bound", efifb_bound(dev));
	return 0;
}

static int
efifb_write(const char *dev, const char *attr, struct verr *err)
{
	char *path = host_pathdup(EFIFB_DRIVER "/%s", attr);
	int r = host_write(path, dev);
	if (r < 0)
		verr_set(err, r, "cannot %s %s (%s): %s; leave the framebuffer alone with -ignorevtcon",
		    attr, dev, path, strerror(-r));
	free(path);
	return r;
}

static int
efifb_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *dev = change_str(change, "target");
	if (!json_is_true(json_object_get(saved, "bound")) || !efifb_bound(dev))
		return 0;
	return efifb_write(dev, "unbind", err);
}

static int
efifb_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *dev = change_str(change, "target");
	if (!json_is_true(json_object_get(saved, "bound")) || efifb_bound(dev))
		return 0;
	int r = efifb_write(dev, "bind", err);
	if (r == 0 && !efifb_bound(dev))
		r = verr_set(err, -EIO, "%s did not bind back to efi-framebuffer; the console stays dark "
		    "until the next boot", dev);
	return r;
}

const struct change_ops display_efifb_unbind_ops = {
	.action = "efifb-unbind",
	.prepare = efifb_prepare,
	.apply = efifb_apply,
	.undo = efifb_undo,
	.may_block = false,
};

/* ---- gpu-users-stop ---- */

/* Signals go to real processes, so whether one is alive is the real
 * kernel's answer: /proc here is the real one even under a host root, and a
 * process counts only when its comm is still the one we saw (the pid was not
 * reused; under a fixture root, a fake pid never hits a real process). */
static bool
proc_alive(int pid, const char *comm)
{
	if (pid <= 1 || kill(pid, 0) < 0)
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	char line[512] = "";
	char *ok = fgets(line, sizeof(line), f);
	fclose(f);
	char *rp = ok ? strrchr(line, ')') : NULL;
	char *lp = ok ? strchr(line, '(') : NULL;
	if (rp == NULL || lp == NULL || rp[1] != ' ' || rp[2] == 'Z')
		return false;
	*rp = '\0';
	return strcmp(lp + 1, comm) == 0;
}

static bool
proc_wait_gone(int pid, const char *comm, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		if (!proc_alive(pid, comm))
			return true;
		time_sleep_ms(50);
	}
	return !proc_alive(pid, comm);
}

static int
users_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *addr = change_str(change, "target");
	struct display_holders hs;
	int r = display_find_holders(addr, &hs, err);
	if (r < 0)
		return r;
	json_t *procs = json_array();
	for (size_t i = 0; i < hs.n; i++) {
		struct display_holder *h = &hs.v[i];
		if (h->compositor || h->argv.n == 0)
			continue;	/* the display manager's business; kernel threads have no argv */
		json_t *argv = json_array();
		for (size_t j = 0; j < h->argv.n; j++)
			json_array_append_new(argv, json_string(h->argv.v[j]));
		char path[PATH_MAX];
		host_path(path, sizeof(path), "/proc/%d/cwd", h->pid);
		char *cwd = host_readlink(path);
		/* its environment too: started again as its user, it needs that
		 * user's HOME, DISPLAY, CUDA_VISIBLE_DEVICES..., not ours (the
		 * journal that keeps this is root's alone) */
		json_t *env = json_array();
		host_path(path, sizeof(path), "/proc/%d/environ", h->pid);
		size_t len = 0;
		char *environ_s = host_read(path, &len);
		for (size_t j = 0; environ_s != NULL && j < len; j += strlen(environ_s + j) + 1)
			if (strchr(environ_s + j, '=') != NULL)
				json_array_append_new(env, json_string(environ_s + j));
		json_t *proc = json_pack("{si ss si si so ss}", "pid", h->pid, "comm", h->comm,
		    "uid", (int)h->uid, "gid", (int)h->gid, "argv", argv, "cwd", cwd ? cwd : "/");
		if (environ_s != NULL)
			json_object_set_new(proc, "env", env);
		else
			json_decref(env);
		json_array_append_new(procs, proc);
		free(environ_s);
		free(cwd);
	}
	display_holders_free(&hs);
	*saved = json_pack("{so}", "procs", procs);
	return 0;
}

static int
users_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *addr = change_str(change, "target");
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(saved, "procs"), i, p) {
		int pid = (int)json_integer_value(json_object_get(p, "pid"));
		const char *comm = json_string_value(json_object_get(p, "comm")) ?: "";
		if (!proc_alive(pid, comm))
			continue;
		log_info("stopping %d %s, which holds %s (it is started again when the guest stops)", pid,
		    comm, addr);
		kill(pid, SIGTERM);
		if (proc_wait_gone(pid, comm, 3000))
			continue;
		kill(pid, SIGKILL);
		if (!proc_wait_gone(pid, comm, 1000))
			return verr_set(err, -EBUSY, "process %d %s holds %s and did not stop even on SIGKILL; "
			    "stop it yourself and try again", pid, comm, addr);
	}
	return 0;
}

/* argv[0] as execvp would find it, without execvp's shell fallback. */
static char *
find_program(const char *name)
{
	if (strchr(name, '/') != NULL)
		return xstrdup(name);
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *dirs = xstrdup(path), *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/%s", d, name);
		if (access(cand, X_OK) == 0) {
			free(dirs);
			return cand;
		}
		free(cand);
	}
	free(dirs);
	return NULL;
}

/* Start argv as uid/gid, detached (double fork: it outlives us), without a
 * shell. Returns 0 or -errno with the reason. */
static int
proc_restart(const json_t *p, struct verr *err)
{
	const char *comm = json_string_value(json_object_get(p, "comm")) ?: "?";
	json_t *jargv = json_object_get(p, "argv");
	size_t n = json_array_size(jargv);
	if (n == 0)
		return verr_set(err, -EINVAL, "cannot start %s again: its command line was not saved", comm);
	char **argv = xcalloc(n + 1, sizeof(*argv));
	for (size_t i = 0; i < n; i++)
		argv[i] = (char *)(json_string_value(json_array_get(jargv, i)) ?: "");
	/* its saved environment, or ours when it could not be read */
	json_t *jenv = json_object_get(p, "env");
	char **envp = environ;
	if (json_is_array(jenv)) {
		envp = xcalloc(json_array_size(jenv) + 1, sizeof(*envp));
		for (size_t i = 0; i < json_array_size(jenv); i++)
			envp[i] = (char *)(json_string_value(json_array_get(jenv, i)) ?: "");
	}
	char *prog = find_program(argv[0]);
	if (prog == NULL) {
		free(argv);
		if (envp != environ)
			free(envp);
		return verr_set(err, -ENOENT, "cannot start %s again: %s is not in PATH; start it by hand",
		    comm, json_string_value(json_array_get(jargv, 0)));
	}
	uid_t uid = (uid_t)json_integer_value(json_object_get(p, "uid"));
	gid_t gid = (gid_t)json_integer_value(json_object_get(p, "gid"));
	const char *cwd = json_string_value(json_object_get(p, "cwd")) ?: "/";
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		int e = errno;
		free(prog);
		free(argv);
		if (envp != environ)
			free(envp);
		return verr_set(err, -e, "cannot start %s again: pipe: %s", comm, strerror(e));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(ep[0]);
		if (fork() != 0)
			_exit(0);
		int e = 0;
		setsid();
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		signal(SIGPIPE, SIG_DFL);
		if (chdir(cwd) < 0 && chdir("/") < 0)
			e = errno;
		if (e == 0 && getuid() == 0 && setgroups(0, NULL) < 0)
			e = errno;
		if (e == 0 && getgid() != gid && setgid(gid) < 0)
			e = errno;
		if (e == 0 && getuid() != uid && setuid(uid) < 0)
			e = errno;
		if (e == 0) {
			execve(prog, argv, envp);
			e = errno;
		}
		ssize_t w = write(ep[1], &e, sizeof(e));
		(void)w;
		_exit(127);
	}
	close(ep[1]);
	int st;
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	int e = 0;
	ssize_t got = pid > 0 ? read(ep[0], &e, sizeof(e)) : -1;
	close(ep[0]);
	int r = 0;
	if (pid < 0)
		r = verr_set(err, -errno, "cannot start %s again: fork: %s", comm, strerror(errno));
	else if (got == (ssize_t)sizeof(e))
		r = verr_set(err, -e, "cannot start %s again as uid %d (%s): %s; start it by hand", comm,
		    (int)uid, prog, strerror(e));
	else
		log_info("started %s again as uid %d: %s", comm, (int)uid, prog);
	free(prog);
	free(argv);
	if (envp != environ)
		free(envp);
	return r;
}

/* A process with the same argv and uid is running: it was started again
 * already (undo ran before), or by someone else. */
static bool
proc_running_like(const json_t *p)
{
	json_t *jargv = json_object_get(p, "argv");
	int uid = (int)json_integer_value(json_object_get(p, "uid"));
	const char *comm = json_string_value(json_object_get(p, "comm")) ?: "";
	char *proc = host_pathdup("/proc");
	DIR *d = opendir(proc);
	struct dirent *de;
	bool found = false;
	while (!found && d != NULL && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int pid = atoi(de->d_name);
		if (pid == (int)json_integer_value(json_object_get(p, "pid")) || !proc_alive(pid, comm))
			continue;
		struct display_holder h;
		memset(&h, 0, sizeof(h));
		holder_read(pid, &h);
		bool same = (int)h.uid == uid && h.argv.n == json_array_size(jargv);
		for (size_t i = 0; same && i < h.argv.n; i++)
			same = strcmp(h.argv.v[i], json_string_value(json_array_get(jargv, i)) ?: "") == 0;
		strv_free(&h.argv);
		found = same;
	}
	if (d != NULL)
		closedir(d);
	free(proc);
	return found;
}

static int
users_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	size_t i;
	json_t *p;
	int ret = 0;
	struct strbuf failed = { 0 };
	json_array_foreach(json_object_get(saved, "procs"), i, p) {
		int pid = (int)json_integer_value(json_object_get(p, "pid"));
		const char *comm = json_string_value(json_object_get(p, "comm")) ?: "";
		if (proc_alive(pid, comm) || proc_running_like(p))
			continue;	/* never stopped (apply did not get there), or already back */
		struct verr one = { 0 };
		int r = proc_restart(p, &one);
		if (r < 0) {
			ret = ret ? ret : r;
			strbuf_printf(&failed, "%s%s", failed.len ? "; " : "", one.msg);
		}
	}
	if (ret < 0)
		verr_set(err, ret, "%s", failed.s);
	strbuf_free(&failed);
	return ret;
}

/* Each user of the card gets 3 s for SIGTERM and 1 s after SIGKILL. */
static int
users_deadline_ms(const json_t *change, const json_t *saved, int bindtimeout_ms)
{
	return bindtimeout_ms + 4500 * (int)json_array_size(json_object_get(saved, "procs"));
}

const struct change_ops display_gpu_users_stop_ops = {
	.action = "gpu-users-stop",
	.prepare = users_prepare,
	.apply = users_apply,
	.undo = users_undo,
	.may_block = true,
	.deadline_ms = users_deadline_ms,
};
