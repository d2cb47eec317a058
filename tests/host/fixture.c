/* Fixture trees for the snapshot tests (see fixture.h). */
#include "fixture.h"

#include <errno.h>
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

static void
mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0755);
		*p = '/';
	}
}

void
fixture_write(const char *root, const char *path, const char *content)
{
	char *full = xasprintf("%s%s", root, path);
	mkdirs(full);
	FILE *f = fopen(full, "w");
	if (f == NULL)
		fail_msg("cannot create fixture file %s: %s", full, strerror(errno));
	fputs(content, f);
	fclose(f);
	free(full);
}

char *
fixture_build(const char *preset, const char *spec_json)
{
	const char *mkhost = getenv("MKHOST");
	if (mkhost == NULL)
		fail_msg("MKHOST is not set: run the tests through meson test");
	/* tmpfs when there is one: a 1000-device tree is 17 000 files, and
	 * creating them on a disk file system takes seconds. */
	char tmpl[64];
	snprintf(tmpl, sizeof(tmpl), "%s/vfio-host-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	char *root = xstrdup(tmpl);
	char *spec_path = NULL;
	if (spec_json != NULL) {
		spec_path = xasprintf("%s.json", root);
		FILE *f = fopen(spec_path, "w");
		assert_non_null(f);
		fputs(spec_json, f);
		fclose(f);
	}
	const char *argv[8];
	size_t n = 0;
	argv[n++] = "python3";
	argv[n++] = mkhost;
	if (preset != NULL) {
		argv[n++] = "--preset";
		argv[n++] = preset;
	}
	if (spec_path != NULL) {
		argv[n++] = "--spec";
		argv[n++] = spec_path;
	}
	argv[n++] = root;
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (spec_path != NULL) {
		unlink(spec_path);
		free(spec_path);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("mkhost.py failed for preset %s spec %s", preset ? preset : "-", spec_json ? spec_json : "-");
	hostroot_init(root);
	return root;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

void
fixture_remove(char *root)
{
	if (root == NULL)
		return;
	nftw(root, rm_one, 32, FTW_DEPTH | FTW_PHYS);
	free(root);
	hostroot_init("/");
}

char *
fixture_snapshot(const char *preset, const char *spec_json, struct host_snapshot *snap)
{
	char *root = fixture_build(preset, spec_json);
	struct verr err = { 0 };
	if (snapshot_take(snap, NULL, &err) < 0)
		fail_msg("snapshot_take failed: %s", err.msg);
	return root;
}

static struct host_snapshot cached_snap;
static char cached_name[64];

static void
cached_free(void)
{
	snapshot_free(&cached_snap);
}

const struct host_snapshot *
fixture_cached(const char *preset)
{
	if (strcmp(cached_name, preset) == 0)
		return &cached_snap;
	if (cached_name[0] == '\0')
		atexit(cached_free);
	snapshot_free(&cached_snap);
	char *root = fixture_snapshot(preset, NULL, &cached_snap);
	fixture_remove(root);
	snprintf(cached_name, sizeof(cached_name), "%s", preset);
	return &cached_snap;
}

void
fixture_remove_under(const char *root, const char *path)
{
	char *cmd = xasprintf("rm -rf '%s%s'", root, path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

void
fixture_retake(struct host_snapshot *snap)
{
	struct verr err = { 0 };
	snapshot_free(snap);
	if (snapshot_take(snap, NULL, &err) < 0)
		fail_msg("snapshot_take: %s", err.msg);
}
