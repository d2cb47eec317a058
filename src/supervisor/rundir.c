/* Runtime directory ownership: see rundir.h. */
#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "proc.h"

/* Files the supervisor may leave in the directory, removed at the end. */
static const char *const rundir_files[] = {
	"journal", "status.json", "status.json.tmp", "control", "replies", "console.log",
};

int
rundir_check_name(const char *name, struct verr *err)
{
	size_t n = name ? strlen(name) : 0;
	/* A leading '-' would read as a flag to vfioctl, a leading '.' hides
	 * the directory (and "." and ".." are not names at all). */
	bool ok = n > 0 && n <= 64 && name[0] != '.' && name[0] != '-';
	for (size_t i = 0; ok && i < n; i++) {
		char c = name[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.';
	}
	if (!ok)
		return verr_set(err, -EINVAL, "\"%s\" is not a guest name: a guest name is 1-64 letters, digits, "
		    "'-', '_' and '.', not starting with '.' or '-'; choose another name", name ? name : "");
	return 0;
}

char *
rundir_file(const struct rundir *rd, const char *file)
{
	return xasprintf("%s/%s", rd->path, file);
}

static void
rundir_init(struct rundir *rd, const char *name)
{
	rd->name = xstrdup(name);
	rd->path = host_pathdup("/run/vfio/%s", name);
	rd->lockfd = -1;
}

void
rundir_close(struct rundir *rd)
{
	if (rd->lockfd >= 0)
		close(rd->lockfd);   /* releases the flock */
	free(rd->name);
	free(rd->path);
	rd->name = rd->path = NULL;
	rd->lockfd = -1;
}

static pid_t
rundir_owner_pid(int fd)
{
	char buf[32] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

/* Open and flock the pid file. Returns 0, -EBUSY (a live owner), -ENOENT (the
 * directory went away under us: retry), or another -errno. */
static int
rundir_lock(struct rundir *rd, struct verr *err)
{
	char *pidpath = rundir_file(rd, "pid");
	int fd = open(pidpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int r = -errno;
		if (r != -ENOENT)
			verr_set(err, r, "cannot open %s: %s", pidpath, strerror(errno));
		free(pidpath);
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		pid_t owner = rundir_owner_pid(fd);
		if (r == -EBUSY)
			verr_set(err, r, "the guest \"%s\" is already run by the supervisor with pid %d; "
			    "stop it first (`kill %d` powers the guest down) or choose another -name",
			    rd->name, (int)owner, (int)owner);
		else
			verr_set(err, r, "cannot lock %s: %s", pidpath, strerror(-r));
		close(fd);
		free(pidpath);
		return r;
	}
	/* The previous owner may have removed the file between our open and our
	 * lock: then we hold a lock on nothing, and start over. */
	struct stat a, b;
	if (fstat(fd, &a) < 0 || stat(pidpath, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		free(pidpath);
		return -ENOENT;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		int r = verr_set(err, -errno, "cannot write %s: %s", pidpath, strerror(errno));
		close(fd);
		free(pidpath);
		return r;
	}
	free(pidpath);
	rd->lockfd = fd;
	return 0;
}

static int
rundir_mkdirs(struct rundir *rd, struct verr *err)
{
	char *parent = host_pathdup("/run/vfio");
	char *run = host_pathdup("/run");
	int r = 0;
	if (mkdir(run, 0755) < 0 && errno != EEXIST)
		r = verr_set(err, -errno, "cannot create %s: %s", run, strerror(errno));
	else if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		r = verr_set(err, -errno, "cannot create %s: %s", parent, strerror(errno));
	else if (mkdir(rd->path, 0700) < 0 && errno != EEXIST)
		r = verr_set(err, -errno, "cannot create the runtime directory %s: %s", rd->path,
		    strerror(errno));
	free(parent);
	free(run);
	return r;
}

/* A journal with nothing in force and no QEMU alive is what a finished
 * run that could not remove its directory leaves: safe to clear. */
static int
rundir_check_stale(struct rundir *rd, struct verr *err)
{
	char *jpath = rundir_file(rd, "journal");
	bool exists = access(jpath, F_OK) == 0;
	free(jpath);
	if (!exists)
		return 0;
	struct journal j;
	int r = journal_open(&j, rd->path, err);
	if (r < 0)
		return verr_prefix(err, "the guest \"%s\" has a journal from an earlier run that "
		    "cannot be read", rd->name);
	bool stale = journal_in_force(&j) || proc_matches(j.qemu_pid, j.qemu_start);
	journal_close(&j);
	if (stale)
		return verr_set(err, -EEXIST, "an earlier run of the guest \"%s\" did not finish: its "
		    "journal %s/journal lists host changes still in force; run `vfio -restore %s` "
		    "first to put the host back", rd->name, rd->path, rd->name);
	return 0;
}

int
rundir_create(struct rundir *rd, const char *name, struct verr *err)
{
	int r = rundir_check_name(name, err);
	if (r < 0)
		return verr_prefix(err, "-name");
	rundir_init(rd, name);
	for (int tries = 0; tries < 5; tries++) {
		r = rundir_mkdirs(rd, err);
		if (r == 0)
			r = rundir_lock(rd, err);
		if (r != -ENOENT)
			break;
	}
	if (r == -ENOENT)
		r = verr_set(err, r, "the runtime directory %s keeps disappearing; is another "
		    "vfio removing it?", rd->path);
	if (r == 0)
		r = rundir_check_stale(rd, err);
	if (r == 0) {
		/* Leftovers of a finished run (nothing in force) go. */
		for (size_t i = 0; i < nitems(rundir_files); i++) {
			char *p = rundir_file(rd, rundir_files[i]);
			unlink(p);
			free(p);
		}
		return 0;
	}
	rundir_close(rd);
	return r;
}

int
rundir_claim(struct rundir *rd, const char *name, struct verr *err)
{
	int r = rundir_check_name(name, err);
	if (r < 0)
		return verr_prefix(err, "-restore");
	rundir_init(rd, name);
	struct stat st;
	if (stat(rd->path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		r = verr_set(err, -ENOENT, "there is nothing to restore for the guest \"%s\" (no %s)",
		    name, rd->path);
	} else {
		r = rundir_lock(rd, err);
		if (r == -ENOENT)
			r = verr_set(err, r, "there is nothing to restore for the guest \"%s\" "
			    "(its supervisor just finished)", name);
	}
	if (r < 0)
		rundir_close(rd);
	return r;
}

static int
rundir_keep_console(struct rundir *rd)
{
	char *log = rundir_file(rd, "console.log");
	struct stat st;
	int r = 0;
	if (stat(log, &st) == 0 && st.st_size > 0) {
		char *lib = host_pathdup("/var/lib/vfio");
		char *dir = host_pathdup("/var/lib/vfio/%s", rd->name);
		char *dst = host_pathdup("/var/lib/vfio/%s/console.log", rd->name);
		mkdir(lib, 0755);
		mkdir(dir, 0700);
		if (rename(log, dst) < 0) {
			r = -errno;
			log_warn("cannot keep the guest console log %s as %s", log, dst);
		} else {
			log_info("the guest console log is kept in %s", dst);
		}
		free(lib);
		free(dir);
		free(dst);
	}
	free(log);
	return r;
}

int
rundir_remove(struct rundir *rd, struct verr *err)
{
	rundir_keep_console(rd);
	for (size_t i = 0; i < nitems(rundir_files); i++) {
		char *p = rundir_file(rd, rundir_files[i]);
		unlink(p);
		free(p);
	}
	/* Companions started during the run (viewers) log to NAME.log here;
	 * they are stopped by now and their logs end with the run. */
	DIR *d = opendir(rd->path);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".log") == 0 && de->d_type == DT_REG)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d != NULL)
		closedir(d);
	/* The pid file goes last, while still locked, so no one else can take
	 * the name halfway through (rundir_lock notices the file is gone). */
	char *pidpath = rundir_file(rd, "pid");
	unlink(pidpath);
	free(pidpath);
	int r = 0;
	if (rmdir(rd->path) < 0)
		r = verr_set(err, -errno, "cannot remove the runtime directory %s: %s", rd->path,
		    strerror(errno));
	char *parent = host_pathdup("/run/vfio");
	rmdir(parent);  /* only when empty: other guests may be running */
	free(parent);
	return r;
}

void
rundir_list(struct strv *names)
{
	char *parent = host_pathdup("/run/vfio");
	DIR *d = opendir(parent);
	free(parent);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || rundir_check_name(de->d_name, NULL) < 0)
			continue;
		if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)
			strv_push(names, de->d_name);
	}
	closedir(d);
}
