/* Test support for the mem tests (see memtest.h). */
#include "memtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostroot.h"
#include "util.h"

char *
memtest_tmpdir(void)
{
	char tmpl[] = "/tmp/vfio-mem-XXXXXX";
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		abort();
	}
	chmod(tmpl, 0755);
	return xstrdup(tmpl);
}

static void copytree(const char *src, const char *dst);

/* mkhost.py takes half a second; tests build many fixtures from one spec, so
 * the first one of a spec is kept and copied. */
static char *cached_spec, *cached_root;

static void
drop_cache(void)
{
	if (cached_root != NULL)
		memtest_rmtree(cached_root);
	free(cached_root);
	free(cached_spec);
	cached_root = cached_spec = NULL;
}

static void
build_fixture(const char *spec_json, const char *root)
{
	char *spec = xasprintf("%s.spec.json", root);
	FILE *f = fopen(spec, "w");
	if (f == NULL || fputs(spec_json, f) < 0 || fclose(f) != 0) {
		perror(spec);
		abort();
	}
	const char *mkhost = getenv("MKHOST");
	if (mkhost == NULL)
		mkhost = "tests/fixtures/mkhost.py";
	/* Debian's own python3 first: a version-manager shim in $PATH costs
	 * seconds per start. */
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char *cmd = xasprintf("%s '%s' --spec '%s' '%s'", py, mkhost, spec, root);
	if (system(cmd) != 0) {
		fprintf(stderr, "fixture: '%s' failed\n", cmd);
		abort();
	}
	unlink(spec);
	free(spec);
	free(cmd);
}

char *
memtest_fixture(const char *spec_json)
{
	if (cached_spec == NULL || strcmp(cached_spec, spec_json) != 0) {
		drop_cache();
		static bool registered;
		if (!registered)
			atexit(drop_cache);
		registered = true;
		cached_root = memtest_tmpdir();
		cached_spec = xstrdup(spec_json);
		build_fixture(spec_json, cached_root);
	}
	char *root = memtest_tmpdir();
	copytree(cached_root, root);
	hostroot_init(root);
	return root;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
memtest_rmtree(const char *root)
{
	if (root == NULL || strncmp(root, "/tmp/vfio-mem-", 14) != 0)
		abort();
	nftw(root, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* cp -a without a shell: the fixtures are small trees of small files,
 * directories and symlinks. */
static const char *copy_src, *copy_dst;

static int
copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char *dst = xasprintf("%s%s", copy_dst, path + strlen(copy_src));
	int ret = 0;
	if (flag == FTW_D) {
		if (mkdir(dst, st->st_mode & 07777) < 0 && errno != EEXIST)
			ret = -1;
	} else if (flag == FTW_SL) {
		char t[PATH_MAX];
		ssize_t n = readlink(path, t, sizeof(t) - 1);
		t[n < 0 ? 0 : n] = '\0';
		if (symlink(t, dst) < 0)
			ret = -1;
	} else if (flag == FTW_F) {
		size_t len = 0;
		char *c = host_read(path, &len);
		int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, st->st_mode & 07777);
		if (c == NULL || fd < 0 || write(fd, c, len) != (ssize_t)len)
			ret = -1;
		if (fd >= 0) {
			fchmod(fd, st->st_mode & 07777);
			close(fd);
		}
		free(c);
	}
	if (ret < 0)
		perror(dst);
	free(dst);
	return ret;
}

static void
copytree(const char *src, const char *dst)
{
	copy_src = src;
	copy_dst = dst;
	if (nftw(src, copy_one, 32, FTW_PHYS) != 0)
		abort();
}

static void
mkdirs(char *path)
{
	for (char *s = path + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
}

void
memtest_write(const char *root, const char *path, const char *content)
{
	char *full = xasprintf("%s%s", root, path);
	mkdirs(full);
	FILE *f = fopen(full, "w");
	if (f == NULL || fputs(content, f) < 0 || fclose(f) != 0) {
		perror(full);
		abort();
	}
	free(full);
}

char *
memtest_read(const char *root, const char *path)
{
	char *full = xasprintf("%s%s", root, path);
	char *s = host_read(full, NULL);
	free(full);
	return s;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
walk(const char *dir, size_t rootlen, struct strv *out)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) < 0) {
			free(p);
			continue;
		}
		const char *rel = p + rootlen;
		if (S_ISLNK(st.st_mode)) {
			char t[PATH_MAX];
			ssize_t n = readlink(p, t, sizeof(t) - 1);
			t[n < 0 ? 0 : n] = '\0';
			strv_pushf(out, "L %s -> %s", rel, t);
		} else if (S_ISDIR(st.st_mode)) {
			strv_pushf(out, "D %s %o %u", rel, st.st_mode & 07777, (unsigned)st.st_uid);
			walk(p, rootlen, out);
		} else if (S_ISREG(st.st_mode)) {
			char *c = host_read(p, NULL);
			strv_pushf(out, "F %s %o %u [%s]", rel, st.st_mode & 07777, (unsigned)st.st_uid, c ? c : "(unreadable)");
			free(c);
		} else {
			strv_pushf(out, "O %s %o", rel, st.st_mode);
		}
		free(p);
	}
	closedir(d);
}

char *
memtest_tree(const char *root)
{
	struct strv lines = { 0 };
	walk(root, strlen(root), &lines);
	if (lines.n > 0)
		qsort(lines.v, lines.n, sizeof(char *), cmp_str);
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "");
	for (size_t i = 0; i < lines.n; i++) {
		strbuf_puts(&sb, lines.v[i]);
		strbuf_puts(&sb, "\n");
	}
	strv_free(&lines);
	return strbuf_steal(&sb);
}

void
memtest_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fprintf(f, "#!/bin/sh\n%s", body) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
	chmod(path, 0755);
}

bool
memtest_wait_file(const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (access(path, F_OK) == 0)
			return true;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return access(path, F_OK) == 0;
}
