/* What the QEMU binary can do, asked once and cached: see qemucaps.h.
 *
 * Why ask: Debian (and others) ship QEMU's audio drivers, displays, SPICE,
 * qxl and usb-host as loadable modules in separate packages; a QEMU without
 * the module refuses at start ("audio: Unknown audio driver 'pa'", "spice
 * support is disabled"), after the host was already changed. Asking costs
 * four short QEMU runs (about 0.1 s together, run side by side), so the
 * answer is kept in a cache keyed on the binary's identity (path, device,
 * inode, size, mtime) and its module directories' (installing a module
 * package changes the directory's mtime, not the binary).
 *
 * The cache file is trusted only when the supervisor's own user owns it and
 * its directories, and nobody else may write them; every component is
 * opened with O_NOFOLLOW under the host root. A dry run writes it too: it
 * is a cache, not a change to the host the journal would have to undo. */
#include "qemucaps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostcmd.h"
#include "hostroot.h"
#include "log.h"
#include "util.h"

/* How long QEMU gets to print its help, all four questions together. */
/* QEMU answers in well under a second; a slow machine (software emulation
 * inside a guest, a loaded host) gets its time once, then the cache. */
#define QEMUCAPS_DEADLINE_MS 30000
#define QEMUCAPS_MAX_OUTPUT (1 << 20)
#define QEMUCAPS_FORMAT 2   /* 2: "sandbox" */

enum { Q_AUDIO, Q_DISPLAY, Q_DEVICE, Q_SPICE, Q_SANDBOX, Q_N };
/* The words after the binary: four help texts, and whether -sandbox is
 * built in (QEMU parses -sandbox before it prints -version and exits, so
 * a QEMU without seccomp says so here and starts nothing). */
static const char *const qemucaps_questions[Q_N][3] = {
	{ "-audiodev", "help" }, { "-display", "help" }, { "-device", "help" }, { "-spice", "help" },
	{ "-sandbox", "on", "-version" },
};

static const char QEMUCAPS_AUDIO_HEADER[] = "Available audio drivers:";
static const char QEMUCAPS_DISPLAY_HEADER[] = "Available display backend types:";

/* Modules that hold what the plan may ask for, and the Debian 12 package
 * each comes in (QEMU's own hint names qemu-system-gui for all of them,
 * which is wrong for most). */
static const struct {
	const char *kind, *name, *module, *package;
} qemucaps_modules[] = {
	{ "audiodev", "pa", "audio-pa", "qemu-system-gui" },
	{ "audiodev", "pipewire", "audio-pipewire", "qemu-system-gui" },
	{ "audiodev", "alsa", "audio-alsa", "qemu-system-common" },
	{ "audiodev", "jack", "audio-jack", "qemu-system-gui" },
	{ "audiodev", "sdl", "audio-sdl", "qemu-system-gui" },
	{ "audiodev", "spice", "audio-spice", "qemu-system-common" },
	{ "display", "gtk", "ui-gtk", "qemu-system-gui" },
	{ "display", "sdl", "ui-sdl", "qemu-system-gui" },
	{ "display", "spice-app", "ui-spice-app", "qemu-system-common" },
	{ "display", "egl-headless", "ui-egl-headless", "qemu-system-common" },
	{ "display", "curses", "ui-curses", "qemu-system-common" },
	{ "device", "qxl", "hw-display-qxl", "qemu-system-common" },
	{ "device", "qxl-vga", "hw-display-qxl", "qemu-system-common" },
	{ "device", "usb-host", "hw-usb-host", "qemu-system-common" },
	{ "device", "usb-redir", "hw-usb-redirect", "qemu-system-common" },
	{ "device", "virtio-vga", "hw-display-virtio-vga", "qemu-system-common" },
	{ "device", "virtio-gpu-pci", "hw-display-virtio-gpu-pci", "qemu-system-common" },
	{ "spice", "spice", "ui-spice-core", "qemu-system-common" },
};

const char *
qemucaps_module_of(const char *kind, const char *name, const char **package)
{
	for (size_t i = 0; i < nitems(qemucaps_modules); i++) {
		if (strcmp(qemucaps_modules[i].kind, kind) == 0 && strcmp(qemucaps_modules[i].name, name) == 0) {
			if (package != NULL)
				*package = qemucaps_modules[i].package;
			return qemucaps_modules[i].module;
		}
	}
	if (package != NULL)
		*package = NULL;
	return NULL;
}

bool
qemucaps_has(const struct strv *list, const char *name)
{
	for (size_t i = 0; i < list->n; i++)
		if (strcmp(list->v[i], name) == 0)
			return true;
	return false;
}

void
qemucaps_free(struct qemu_caps *caps)
{
	free(caps->path);
	strv_free(&caps->audiodevs);
	strv_free(&caps->displays);
	strv_free(&caps->devices);
	memset(caps, 0, sizeof(*caps));
}

/* A line that is one name: what QEMU prints under its list headers (its
 * "module ... not found" complaints on stderr are sentences). */
static bool
qemucaps_is_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

bool
qemucaps_parse_list(const char *text, const char *header, struct strv *out)
{
	const char *h = text ? strstr(text, header) : NULL;
	if (h == NULL)
		return false;
	for (const char *p = strchr(h, '\n'); p != NULL && *p;) {
		p++;
		size_t n = strcspn(p, "\n");
		size_t start = 0;
		while (start < n && (p[start] == ' ' || p[start] == '\t'))
			start++;
		if (qemucaps_is_name(p + start, n - start)) {
			char *name = xstrndup(p + start, n - start);
			if (!qemucaps_has(out, name))
				strv_push(out, name);
			free(name);
		}
		p += n;
	}
	return true;
}

bool
qemucaps_parse_devices(const char *text, struct strv *out)
{
	bool any = false;
	/* name "qxl-vga", bus PCI, desc "..." */
	for (const char *p = text; p != NULL && (p = strstr(p, "name \"")) != NULL;) {
		p += 6;
		size_t n = strcspn(p, "\"\n");
		if (p[n] == '"' && n > 0) {
			char *name = xstrndup(p, n);
			strv_push(out, name);
			free(name);
			any = true;
		}
		p += n;
	}
	return any;
}

int
qemucaps_parse_spice(const char *text)
{
	if (text != NULL && strstr(text, "spice options:") != NULL)
		return 1;
	if (text != NULL && strstr(text, "spice support is disabled") != NULL)
		return 0;
	return -1;
}

int
qemucaps_parse_sandbox(const char *text)
{
	if (text != NULL && strstr(text, "-sandbox support is not enabled") != NULL)
		return 0;
	if (text != NULL && strstr(text, "QEMU emulator version") != NULL)
		return 1;
	return -1;
}

/* --- asking QEMU ----------------------------------------------------------- */

struct qemucaps_job {
	pid_t pid;
	int fd;
	struct strbuf out;
	bool whole;              /* read to its end: an answer, not a part of one */
};

static int qemucaps_deadline_ms = QEMUCAPS_DEADLINE_MS;

void
qemucaps_set_deadline_ms(int ms)
{
	qemucaps_deadline_ms = ms > 0 ? ms : QEMUCAPS_DEADLINE_MS;
}

static pid_t
qemucaps_spawn(const char *path, const char *const words[3], int uid, int gid, int *fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		if (geteuid() == 0 && uid > 0 &&
		    (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0))
			_exit(127);
		char *argv[] = { (char *)path, (char *)words[0], (char *)words[1], (char *)words[2], NULL };
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	*fd = p[0];
	return pid;
}

static void
qemucaps_reap(struct qemucaps_job *j, bool kill_it)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->pid > 0) {
		if (kill_it)
			kill(j->pid, SIGKILL);
		while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	j->pid = 0;
}

/* Run the four questions side by side and collect what each printed. */
static bool
qemucaps_ask(struct qemu_caps *caps, int uid, int gid)
{
	struct qemucaps_job jobs[Q_N];
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < Q_N; i++) {
		jobs[i].fd = -1;
		jobs[i].pid = qemucaps_spawn(caps->path, qemucaps_questions[i], uid, gid, &jobs[i].fd);
	}
	long long deadline = time_now_ms() + qemucaps_deadline_ms;
	for (;;) {
		struct pollfd pfd[Q_N];
		int map[Q_N], n = 0;
		for (int i = 0; i < Q_N; i++) {
			if (jobs[i].fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = jobs[i].fd, .events = POLLIN };
				map[n++] = i;
			}
		}
		long long left = deadline - time_now_ms();
		if (n == 0 || left <= 0)
			break;
		int r = poll(pfd, (nfds_t)n, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (int k = 0; k < n; k++) {
			if (pfd[k].revents == 0)
				continue;
			struct qemucaps_job *j = &jobs[map[k]];
			char buf[4096];
			ssize_t got = read(j->fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0 || j->out.len > QEMUCAPS_MAX_OUTPUT) {
				j->whole = got == 0;
				close(j->fd);
				j->fd = -1;
				continue;
			}
			strbuf_add(&j->out, buf, (size_t)got);
		}
	}
	bool timed_out = false;
	for (int i = 0; i < Q_N; i++) {
		timed_out |= jobs[i].fd >= 0;
		qemucaps_reap(&jobs[i], jobs[i].fd >= 0);
	}
	if (timed_out)
		log_warnx("%s did not answer all its -help questions within %d s; what it did not say is not "
		    "checked", caps->path, qemucaps_deadline_ms / 1000);
	/* Only a whole answer says what QEMU has: the first half of a device
	 * list would make every device after the cut look missing. */
	if (jobs[Q_AUDIO].whole)
		caps->audiodevs_known = qemucaps_parse_list(jobs[Q_AUDIO].out.s, QEMUCAPS_AUDIO_HEADER,
		    &caps->audiodevs);
	if (jobs[Q_DISPLAY].whole)
		caps->displays_known = qemucaps_parse_list(jobs[Q_DISPLAY].out.s, QEMUCAPS_DISPLAY_HEADER,
		    &caps->displays);
	if (jobs[Q_DEVICE].whole)
		caps->devices_known = qemucaps_parse_devices(jobs[Q_DEVICE].out.s, &caps->devices);
	if (jobs[Q_SPICE].whole)
		caps->spice = qemucaps_parse_spice(jobs[Q_SPICE].out.s);
	if (jobs[Q_SANDBOX].whole)
		caps->sandbox = qemucaps_parse_sandbox(jobs[Q_SANDBOX].out.s);
	for (int i = 0; i < Q_N; i++)
		strbuf_free(&jobs[i].out);
	return !timed_out;
}

/* --- the cache --------------------------------------------------------------- */

static json_t *
qemucaps_stat_json(const char *path, const struct stat *st)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "path", path, "dev", (json_int_t)st->st_dev, "ino",
	    (json_int_t)st->st_ino, "size", (json_int_t)st->st_size, "mtime", (json_int_t)st->st_mtim.tv_sec,
	    "mtime_ns", (json_int_t)st->st_mtim.tv_nsec);
}

static void
qemucaps_add_dir(json_t *dirs, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		json_array_append_new(dirs, qemucaps_stat_json(path, &st));
}

/* The identity of the binary and of the directories QEMU loads modules
 * from: $QEMU_MODULE_DIR and, relative to the binary as QEMU relocates
 * its configured module directory, ../lib/qemu, ../lib64/qemu and
 * ../lib/MULTIARCH/qemu. */
static json_t *
qemucaps_key(const char *path)
{
	struct stat st;
	char real[PATH_MAX];
	if (stat(path, &st) < 0 || realpath(path, real) == NULL)
		return NULL;
	json_t *key = json_pack("{s:i, s:o}", "format", QEMUCAPS_FORMAT, "binary", qemucaps_stat_json(path, &st));
	json_t *dirs = json_array();
	const char *env = getenv("QEMU_MODULE_DIR");
	json_object_set_new(key, "QEMU_MODULE_DIR", env ? json_string(env) : json_null());
	if (env != NULL && *env != '\0')
		qemucaps_add_dir(dirs, env);
	char *bindir = dirname(real);
	char *lib = xasprintf("%s/../lib", bindir);
	static const char *const rel[] = { "lib/qemu", "lib64/qemu" };
	for (size_t i = 0; i < nitems(rel); i++) {
		char cand[PATH_MAX];
		snprintf(cand, sizeof(cand), "%s/../%s", bindir, rel[i]);
		qemucaps_add_dir(dirs, cand);
	}
	DIR *d = opendir(lib);
	struct strv sub = { 0 };
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strchr(de->d_name, '-') != NULL)   /* x86_64-linux-gnu */
			strv_push(&sub, de->d_name);
	if (d != NULL)
		closedir(d);
	/* readdir's order is the filesystem's: sort for a stable key. */
	for (size_t i = 0; i + 1 < sub.n; i++)
		for (size_t k = i + 1; k < sub.n; k++)
			if (strcmp(sub.v[i], sub.v[k]) > 0) {
				char *t = sub.v[i];
				sub.v[i] = sub.v[k];
				sub.v[k] = t;
			}
	for (size_t i = 0; i < sub.n; i++) {
		char cand[PATH_MAX];
		snprintf(cand, sizeof(cand), "%s/%s/qemu", lib, sub.v[i]);
		qemucaps_add_dir(dirs, cand);
	}
	strv_free(&sub);
	free(lib);
	json_object_set_new(key, "module_dirs", dirs);
	return key;
}

/* A directory we may trust: ours (or root's), written by nobody else. */
static bool
qemucaps_trusted(int fd, bool dir)
{
	struct stat st;
	return fstat(fd, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
	    (st.st_uid == geteuid() || st.st_uid == 0) && (st.st_mode & 022) == 0;
}

/* Open (creating with create) QEMUCAPS_CACHE_DIR under the host root, one
 * component at a time. -1 when it is missing or not to be trusted. */
static int
qemucaps_open_dir(bool create)
{
	char root[PATH_MAX];
	if (host_path(root, sizeof(root), "/") == NULL)
		return -1;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *dup = xstrdup(QEMUCAPS_CACHE_DIR), *save = NULL;
	for (char *c = strtok_r(dup, "/", &save); c != NULL && fd >= 0; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create && mkdirat(fd, c, 0755) == 0)
			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		if (fd >= 0 && !qemucaps_trusted(fd, true)) {
			close(fd);
			fd = -1;
		}
	}
	free(dup);
	return fd;
}

/* One file per binary, named for a hash of its path. */
static void
qemucaps_file_name(const char *path, char out[32])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	snprintf(out, 32, "%016llx.json", (unsigned long long)h);
}

static void
qemucaps_strv_from(json_t *arr, struct strv *out)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v))
			strv_push(out, json_string_value(v));
}

static bool
qemucaps_load(struct qemu_caps *caps, const json_t *key)
{
	int dir = qemucaps_open_dir(false);
	if (dir < 0)
		return false;
	char name[32];
	qemucaps_file_name(caps->path, name);
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return false;
	json_t *j = NULL;
	if (qemucaps_trusted(fd, false)) {
		FILE *f = fdopen(fd, "r");
		if (f != NULL) {
			j = json_loadf(f, 0, NULL);
			fclose(f);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	bool ok = j != NULL && json_equal(json_object_get(j, "key"), key);
	if (ok) {
		caps->audiodevs_known = json_is_array(json_object_get(j, "audiodevs"));
		caps->displays_known = json_is_array(json_object_get(j, "displays"));
		caps->devices_known = json_is_array(json_object_get(j, "devices"));
		qemucaps_strv_from(json_object_get(j, "audiodevs"), &caps->audiodevs);
		qemucaps_strv_from(json_object_get(j, "displays"), &caps->displays);
		qemucaps_strv_from(json_object_get(j, "devices"), &caps->devices);
		caps->spice = (int)json_integer_value(json_object_get(j, "spice"));
		caps->sandbox = (int)json_integer_value(json_object_get(j, "sandbox"));
		caps->from_cache = true;
	}
	json_decref(j);
	return ok;
}

static json_t *
qemucaps_json_list(bool known, const struct strv *list)
{
	if (!known)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; i < list->n; i++)
		json_array_append_new(a, json_string(list->v[i]));
	return a;
}

static void
qemucaps_store(const struct qemu_caps *caps, json_t *key)
{
	int dir = qemucaps_open_dir(true);
	if (dir < 0) {
		log_debug("no QEMU capability cache: %s under %s is missing or not ours", QEMUCAPS_CACHE_DIR,
		    hostroot_get());
		return;
	}
	json_t *j = json_pack("{s:O, s:o, s:o, s:o, s:i, s:i}", "key", key, "audiodevs",
	    qemucaps_json_list(caps->audiodevs_known, &caps->audiodevs), "displays",
	    qemucaps_json_list(caps->displays_known, &caps->displays), "devices",
	    qemucaps_json_list(caps->devices_known, &caps->devices), "spice", caps->spice, "sandbox", caps->sandbox);
	char name[32], tmp[64];
	qemucaps_file_name(caps->path, name);
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid());
	int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	char *text = json_dumps(j, JSON_COMPACT);
	bool ok = fd >= 0 && text != NULL && fd_write_all(fd, text, strlen(text)) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (ok && renameat(dir, tmp, dir, name) < 0)
		ok = false;
	if (!ok && fd >= 0)
		unlinkat(dir, tmp, 0);
	free(text);
	json_decref(j);
	close(dir);
}

void
qemucaps_read(struct qemu_caps *caps, const char *qemu, int uid, int gid)
{
	qemucaps_free(caps);
	caps->spice = caps->sandbox = -1;
	caps->path = hostcmd_find(qemu);
	if (caps->path == NULL) {
		caps->state = QEMU_CAPS_NO_BINARY;
		return;
	}
	json_t *key = qemucaps_key(caps->path);
	if (key == NULL) {
		caps->state = QEMU_CAPS_NO_BINARY;
		return;
	}
	caps->state = QEMU_CAPS_KNOWN;
	if (!qemucaps_load(caps, key)) {
		strv_free(&caps->audiodevs);
		strv_free(&caps->displays);
		strv_free(&caps->devices);
		caps->from_cache = false;
		if (qemucaps_ask(caps, uid, gid))
			qemucaps_store(caps, key);
	}
	json_decref(key);
}
