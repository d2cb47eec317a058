/* Test helpers for tests/bind: see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostroot.h"
#include "util.h"

extern char **environ;

static void
mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

static void
mkparent(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	char *s = strrchr(buf, '/');
	*s = '\0';
	mkdirs(buf);
}

char *
fixture_new(const char *preset_or_spec)
{
	/* tmpfs when there is one: fixtures are thousands of small files */
	char tmpl[64];
	snprintf(tmpl, sizeof(tmpl), "%s/vfio-bind-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	char *root = xasprintf("%s/root", tmpl);
	char *spec = NULL;
	const char *mkhost = getenv("MKHOST");
	assert_non_null(mkhost);
	struct strv argv = { 0 };
	strv_push(&argv, "python3");
	strv_push(&argv, mkhost);
	if (preset_or_spec[0] == '{') {
		spec = xasprintf("%s/spec.json", tmpl);
		FILE *f = fopen(spec, "w");
		assert_non_null(f);
		fputs(preset_or_spec, f);
		fclose(f);
		strv_push(&argv, "--spec");
		strv_push(&argv, spec);
	} else {
		strv_push(&argv, "--preset");
		strv_push(&argv, preset_or_spec);
	}
	strv_push(&argv, root);
	/* mkhost.py writes driver_override itself: not through the mock */
	struct strv env = { 0 };
	for (char **e = environ; *e; e++)
		if (!str_startswith(*e, "LD_PRELOAD=") && !str_startswith(*e, "VFIO_HOST_ROOT="))
			strv_push(&env, *e);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the system Python: version-manager shims cost a second each */
		if (access("/usr/bin/python3", X_OK) == 0)
			execve("/usr/bin/python3", argv.v, env.v);
		execvpe("python3", argv.v, env.v);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	strv_free(&argv);
	strv_free(&env);
	free(spec);
	setenv("VFIO_HOST_ROOT", root, 1);
	hostroot_init(root);
	return root;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
fixture_free(char *root)
{
	char *top = xstrdup(root);
	*strrchr(top, '/') = '\0';
	nftw(top, rm_one, 32, FTW_DEPTH | FTW_PHYS);
	free(top);
	free(root);
	unsetenv("VFIO_HOST_ROOT");
	hostroot_init("");
}

void
fixture_write(const char *root, const char *path, const char *content, mode_t mode)
{
	char *full = xasprintf("%s%s", root, path);
	mkparent(full);
	int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t len = strlen(content);
	if (len > 0)	/* an empty write would reach the simulated kernel */
		assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	chmod(full, mode);
	free(full);
}

void
fixture_symlink(const char *root, const char *path, const char *target)
{
	char *full = xasprintf("%s%s", root, path);
	mkparent(full);
	unlink(full);
	assert_int_equal(symlink(target, full), 0);
	free(full);
}

void
fixture_fault(const char *root, const char *line)
{
	char *path = xasprintf("%s/.drvcore", root);
	mkdir(path, 0755);
	free(path);
	path = xasprintf("%s/.drvcore/faults", root);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fprintf(f, "%s\n", line);
	fclose(f);
	free(path);
}

void
fixture_proc(const char *root, int pid, const char *comm, const char *const argv[], int uid,
    const char *held)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	char *c = xasprintf("%s\n", comm);
	fixture_write(root, path, c, 0444);
	free(c);
	struct strbuf sb = { 0 };
	for (size_t i = 0; argv[i]; i++)
		strbuf_add(&sb, argv[i], strlen(argv[i]) + 1);
	snprintf(path, sizeof(path), "%s/proc/%d/cmdline", root, pid);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0444);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, sb.s, sb.len), (ssize_t)sb.len);
	close(fd);
	strbuf_free(&sb);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	char *st = xasprintf("Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nUid:\t%d\t%d\t%d\t%d\n"
	    "Gid:\t%d\t%d\t%d\t%d\n", comm, pid, uid, uid, uid, uid, uid, uid, uid, uid);
	fixture_write(root, path, st, 0444);
	free(st);
	snprintf(path, sizeof(path), "/proc/%d/fd/0", pid);
	fixture_symlink(root, path, "/dev/null");
	if (held != NULL) {
		snprintf(path, sizeof(path), "/proc/%d/fd/3", pid);
		fixture_symlink(root, path, held);
	}
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	fixture_symlink(root, path, "/");
}

void
fixture_console(const char *root)
{
	fixture_write(root, "/sys/devices/platform/efi-framebuffer.0/uevent", "DRIVER=efi-framebuffer\n", 0644);
	fixture_symlink(root, "/sys/bus/platform/devices/efi-framebuffer.0",
	    "../../../devices/platform/efi-framebuffer.0");
	fixture_write(root, "/sys/bus/platform/drivers/efi-framebuffer/bind", "", 0200);
	fixture_write(root, "/sys/bus/platform/drivers/efi-framebuffer/unbind", "", 0200);
	fixture_symlink(root, "/sys/bus/platform/drivers/efi-framebuffer/efi-framebuffer.0",
	    "../../../../devices/platform/efi-framebuffer.0");
	fixture_symlink(root, "/sys/devices/platform/efi-framebuffer.0/driver",
	    "../../../bus/platform/drivers/efi-framebuffer");
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon0/bind", "1\n", 0644);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon0/name", "(S) dummy device\n", 0444);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon1/bind", "1\n", 0644);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon1/name", "(M) frame buffer device\n", 0444);
	fixture_symlink(root, "/sys/class/vtconsole/vtcon0", "../../devices/virtual/vtconsole/vtcon0");
	fixture_symlink(root, "/sys/class/vtconsole/vtcon1", "../../devices/virtual/vtconsole/vtcon1");
}

char *
fixture_driver(const char *root, const char *addr)
{
	char *path = xasprintf("%s/sys/bus/pci/devices/%s/driver", root, addr);
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	free(path);
	if (n < 0)
		return xstrdup("");
	buf[n] = '\0';
	return xstrdup(strrchr(buf, '/') + 1);
}

char *
fixture_read(const char *root, const char *path)
{
	char *full = xasprintf("%s%s", root, path);
	char *s = host_read(full, NULL);
	free(full);
	return s;
}

bool
fixture_exists(const char *root, const char *path)
{
	char *full = xasprintf("%s%s", root, path);
	struct stat st;
	bool e = lstat(full, &st) == 0;
	free(full);
	return e;
}

/* ---- tree snapshots ---- */

static struct strv *snap_lines;
static size_t snap_rootlen;

static int
snap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path + snap_rootlen;
	if (str_startswith(rel, "/.drvcore"))
		return 0;
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "%s %o ", *rel ? rel : "/", (unsigned)st->st_mode);
	if (S_ISLNK(st->st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(path, buf, sizeof(buf) - 1);
		buf[n < 0 ? 0 : n] = '\0';
		strbuf_printf(&sb, "-> %s", buf);
	} else if (S_ISREG(st->st_mode)) {
		int fd = open(path, O_RDONLY);
		char buf[4096];
		ssize_t n;
		strbuf_puts(&sb, "[");
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++)
				strbuf_printf(&sb, "%02x", (unsigned char)buf[i]);
		strbuf_puts(&sb, "]");
		if (fd >= 0)
			close(fd);
	}
	strv_push(snap_lines, sb.s);
	strbuf_free(&sb);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
tree_snapshot(const char *root)
{
	struct strv lines = { 0 };
	snap_lines = &lines;
	snap_rootlen = strlen(root);
	assert_int_equal(nftw(root, snap_one, 32, FTW_PHYS), 0);
	qsort(lines.v, lines.n, sizeof(char *), cmp_str);
	struct strbuf sb = { 0 };
	for (size_t i = 0; i < lines.n; i++) {
		strbuf_puts(&sb, lines.v[i]);
		strbuf_puts(&sb, "\n");
	}
	strv_free(&lines);
	return strbuf_steal(&sb);
}

void
tree_assert_equal(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return;
	const char *pa = a, *pb = b;
	while (*pa && *pb) {
		const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
		if (ea - pa != eb - pb || strncmp(pa, pb, (size_t)(ea - pa)) != 0) {
			print_error("trees differ:\n  before: %.*s\n  after:  %.*s\n", (int)(ea - pa), pa,
			    (int)(eb - pb), pb);
			break;
		}
		pa = ea + 1;
		pb = eb + 1;
	}
	if (!*pa || !*pb)
		print_error("trees differ at the end:\n  before: %.200s\n  after:  %.200s\n", pa, pb);
	fail_msg("the fixture is not as it was before");
}

const char *
helper_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *src = getenv("VFIO_SRCDIR");
	assert_non_null(src);
	snprintf(buf, sizeof(buf), "%s/tests/drvcore/%s", src, name);
	return buf;
}
