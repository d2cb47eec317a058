/* Test support for the mem tests (see memtest.h). */
#include "memtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

char *
memtest_fixture(const char *spec_json)
{
	char *root = memtest_tmpdir();
	char *spec = xasprintf("%s.spec.json", root);
	FILE *f = fopen(spec, "w");
	if (f == NULL || fputs(spec_json, f) < 0 || fclose(f) != 0) {
		perror(spec);
		abort();
	}
	const char *mkhost = getenv("MKHOST");
	if (mkhost == NULL)
		mkhost = "tests/fixtures/mkhost.py";
	char *cmd = xasprintf("python3 '%s' --spec '%s' '%s'", mkhost, spec, root);
	if (system(cmd) != 0) {
		fprintf(stderr, "fixture: '%s' failed\n", cmd);
		abort();
	}
	unlink(spec);
	free(spec);
	free(cmd);
	hostroot_init(root);
	return root;
}

void
memtest_rmtree(const char *root)
{
	if (root == NULL || strncmp(root, "/tmp/vfio-mem-", 14) != 0)
		abort();
	char *cmd = xasprintf("rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: %s failed\n", cmd);
	free(cmd);
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
