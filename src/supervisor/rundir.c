/* Runtime directory ownership: see rundir.h. */
#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "proc.h"
#include "safepath.h"

/* Files the supervisor may leave in the directory, removed at the end. */
static const char *const rundir_files[] = {
	"journal", "status.json", "status.json.tmp", "control", "replies", "replies.new", "console.log",
	RUNDIR_QMP_SOCK, RUNDIR_CONSOLE_SOCK,
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

/* dir/file as a socket address. A path longer than sun_path (a deep host
 * root in tests) is reached through the directory's descriptor instead:
 * /proc/self/fd/N/file names the same file. *dirfd is then open. */
static int
rundir_sockaddr(const char *dir, const char *file, struct sockaddr_un *sa, int *dirfd, struct verr *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, file) < sizeof(sa->sun_path))
		return 0;
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dirfd < 0)
		return verr_set(err, -errno, "cannot open %s: %s", dir, strerror(errno));
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dirfd, file);
	return 0;
}

int
rundir_listen(const struct rundir *rd, const char *file, int *fd, struct verr *err)
{
	struct sockaddr_un sa;
	int dirfd, r = rundir_sockaddr(rd->path, file, &sa, &dirfd, err);
	if (r < 0)
		return r;
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0) {
		r = verr_set(err, -errno, "cannot create the socket %s/%s: %s", rd->path, file, strerror(errno));
		goto out;
	}
	unlink(sa.sun_path);
	/* Private from birth: the umask decides the mode bind() creates. */
	mode_t old = umask(0177);
	int b = bind(*fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (b < 0 || listen(*fd, 4) < 0) {
		r = verr_set(err, -errno, "cannot listen on %s/%s: %s", rd->path, file, strerror(errno));
		close(*fd);
		*fd = -1;
	}
out:
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

int
rundir_connect(const char *dir, const char *file, int *fd, struct verr *err)
{
	struct sockaddr_un sa;
	int dirfd, r = rundir_sockaddr(dir, file, &sa, &dirfd, err);
	if (r < 0)
		return r;
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = verr_set(err, -errno, "cannot connect to %s/%s: %s", dir, file, strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

char *
rundir_path(const char *name)
{
	return host_pathdup("/run/vfio/%s", name);
}

static void
rundir_init(struct rundir *rd, const char *name)
{
	rd->name = xstrdup(name);
	rd->path = rundir_path(name);
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

/* The owner named in the pid file holds it open (its lock): alive. */
static bool
rundir_owner_alive(int fd, pid_t owner)
{
	pid_t holders[16];
	size_t n = proc_holding(fd, holders, nitems(holders));
	bool live = owner == getpid();  /* proc_holding() leaves this process out */
	for (size_t i = 0; i < n; i++)
		live = live || holders[i] == owner;
	return live;
}

pid_t
rundir_supervisor(const char *name)
{
	char *path = host_pathdup("/run/vfio/%s/pid", name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	pid_t owner = rundir_owner_pid(fd);
	bool live = owner > 0 && rundir_owner_alive(fd, owner);
	close(fd);
	return live ? owner : 0;
}

/* How long the processes of a dead supervisor get to let go of its lock:
 * they die with it (child.c), unless stuck in the kernel. */
#define RUNDIR_ORPHAN_WAIT_MS 10000

/* The pid file's lock is held. Its holder tells a live supervisor from a
 * dead one, not the pid in the file alone: a supervisor killed while a
 * child of its was at work leaves the child holding the lock for a moment
 * (or, stuck in the kernel, for long), and its pid may be anyone's by now.
 * Returns 0 once the lock is ours, -EBUSY with err naming who holds it. */
static int
rundir_lock_held(struct rundir *rd, int fd, struct verr *err)
{
	pid_t owner = rundir_owner_pid(fd), holders[16];
	if (rundir_owner_alive(fd, owner))
		return verr_set(err, -EBUSY, "the guest \"%s\" is already run by the supervisor with pid %d; "
		    "stop it first (`kill %d` powers the guest down) or choose another -name",
		    rd->name, (int)owner, (int)owner);
	size_t n = proc_holding(fd, holders, nitems(holders));
	log_info("the supervisor of the guest \"%s\" (pid %d) is gone; waiting for the %zu process%s it "
	    "started to end", rd->name, (int)owner, n, n == 1 ? "" : "es");
	proc_wait_gone(holders, n, RUNDIR_ORPHAN_WAIT_MS);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	n = proc_holding(fd, holders, nitems(holders));
	return verr_set(err, -EBUSY, "the supervisor of the guest \"%s\" (pid %d) is gone, but process %d "
	    "it started still holds the guest's lock after %d s, most likely stuck in the kernel (see "
	    "/proc/%d/stack); once it has ended, run this again", rd->name, (int)owner, n > 0 ? (int)holders[0] : -1,
	    RUNDIR_ORPHAN_WAIT_MS / 1000, n > 0 ? (int)holders[0] : -1);
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
		int r = errno == EWOULDBLOCK ? rundir_lock_held(rd, fd, err) : verr_set(err, -errno,
		    "cannot lock %s: %s", pidpath, strerror(errno));
		if (r < 0) {
			close(fd);
			free(pidpath);
			return r;
		}
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

/* /run/vfio is removed with the last guest only when vfio made it: this
 * file in it says so (a name rundir_list() skips), and lives as long as the
 * directory, across crashes and `vfio -restore`. */
#define RUNDIR_MADE_MARK ".created-by-vfio"

static int
rundir_mkdirs(struct rundir *rd, struct verr *err)
{
	char *parent = host_pathdup("/run/vfio");
	char *run = host_pathdup("/run");
	int r = 0;
	if (mkdir(run, 0755) < 0 && errno != EEXIST) {
		r = verr_set(err, -errno, "cannot create %s: %s", run, strerror(errno));
	} else if (mkdir(parent, 0755) == 0) {
		char *mark = xasprintf("%s/%s", parent, RUNDIR_MADE_MARK);
		int fd = open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		free(mark);
	} else if (errno != EEXIST) {
		r = verr_set(err, -errno, "cannot create %s: %s", parent, strerror(errno));
	}
	if (r == 0 && mkdir(rd->path, 0700) < 0 && errno != EEXIST)
		r = verr_set(err, -errno, "cannot create the runtime directory %s: %s", rd->path,
		    strerror(errno));
	free(parent);
	free(run);
	return r;
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
	if (r < 0)
		rundir_close(rd);
	return r;
}

void
rundir_clear(struct rundir *rd)
{
	for (size_t i = 0; i < nitems(rundir_files); i++) {
		char *p = rundir_file(rd, rundir_files[i]);
		unlink(p);
		free(p);
	}
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

/* Copy console.log from the runtime directory (dir) into the directory
 * keep, replacing an older log: /run is a tmpfs and /var a disk on real
 * hosts, where rename() fails with EXDEV. */
static int
rundir_copy_console(int dir, int keep, const char *dst, struct verr *err)
{
	static const char tmp[] = "console.log.vfio-tmp";
	int in = openat(dir, "console.log", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return verr_set(err, -errno, "cannot read the guest console log: %s", strerror(errno));
	int r = 0;
	if (unlinkat(keep, tmp, 0) < 0 && errno != ENOENT)
		r = verr_set(err, -errno, "cannot remove a leftover %s.vfio-tmp: %s", dst, strerror(errno));
	int out = r < 0 ? -1 : openat(keep, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r == 0 && out < 0)
		r = verr_set(err, -errno, "cannot create %s.vfio-tmp: %s", dst, strerror(errno));
	if (r == 0 && ((r = fd_copy(in, out)) < 0 || (fsync(out) < 0 && (r = -errno) < 0)))
		verr_set(err, r, "cannot copy the guest console log to %s: %s", dst, strerror(-r));
	if (r == 0 && renameat(keep, tmp, keep, "console.log") < 0)
		r = verr_set(err, -errno, "cannot rename %s.vfio-tmp to %s: %s", dst, dst, strerror(errno));
	if (r < 0 && out >= 0)
		unlinkat(keep, tmp, 0);
	if (out >= 0)
		close(out);
	close(in);
	if (r == 0)
		unlinkat(dir, "console.log", 0);
	return r;
}

/* The guest's console log outlives the run in /var/lib/vfio/NAME/, which is
 * root's: the directories are made and opened without following anything
 * another user controls (safepath.h). */
static int
rundir_keep_console(struct rundir *rd)
{
	char *log = xasprintf("/run/vfio/%s/console.log", rd->name);
	char *dst = xasprintf("/var/lib/vfio/%s/console.log", rd->name);
	char *lib = xasprintf("/var/lib/vfio/%s", rd->name);
	struct verr err = { 0 };
	const char *base;
	int dir = safepath_open_parent(log, &base, NULL), keep = -1, r = 0;
	struct stat st;
	if (dir < 0 || fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size == 0)
		goto out;
	/* mkdir -p /var/lib/vfio/NAME, each level opened as it is made */
	int at = safepath_open_parent("/var/lib/vfio", &base, &err);
	if (at >= 0 && mkdirat(at, "vfio", 0755) < 0 && errno != EEXIST)
		r = verr_set(&err, -errno, "cannot create /var/lib/vfio: %s", strerror(errno));
	if (at >= 0)
		close(at);
	if (at < 0 || r < 0 || (at = safepath_open_parent(lib, &base, &err)) < 0) {
		r = at < 0 ? at : r;
		goto out;
	}
	if (mkdirat(at, rd->name, 0700) < 0 && errno != EEXIST)
		r = verr_set(&err, -errno, "cannot create %s: %s", lib, strerror(errno));
	close(at);
	if (r < 0 || (keep = safepath_open_parent(dst, &base, &err)) < 0) {
		r = r < 0 ? r : keep;
		goto out;
	}
	if (renameat(dir, "console.log", keep, "console.log") < 0) {
		if (errno == EXDEV)
			r = rundir_copy_console(dir, keep, dst, &err);
		else
			r = verr_set(&err, -errno, "%s", strerror(errno));
	}
out:
	if (r < 0)
		log_warnx("cannot keep the guest console log %s as %s: %s", log, dst, err.msg);
	else if (keep >= 0)
		log_info("the guest console log is kept in %s%s", hostroot_get(), dst);
	if (dir >= 0)
		close(dir);
	if (keep >= 0)
		close(keep);
	free(log);
	free(dst);
	free(lib);
	return r;
}

/* Empty the directory at (dir, name) and remove it, never following a
 * link: it belongs to QEMU's user, who may have put anything there. Each
 * level is opened O_NOFOLLOW and worked on through its descriptor; depth
 * is bounded (QEMU makes sockets only; more is not QEMU's doing). */
static int
rundir_remove_tree(int dir, const char *name, int depth)
{
	int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && (errno == EISDIR || errno == EPERM) && depth < 8)
			rundir_remove_tree(dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	return unlinkat(dir, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int
rundir_make_qemu_dir(struct rundir *rd, int uid, int gid, struct verr *err)
{
	int dir = open(rd->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return verr_set(err, -errno, "cannot open the runtime directory %s: %s", rd->path, strerror(errno));
	int r = 0;
	rundir_remove_tree(dir, RUNDIR_QEMU_DIR, 0);
	/* QEMU's user passes through the runtime directory to its own (0710,
	 * its group): it can list nothing there, and every file of ours in it
	 * is 0600. */
	if (uid > 0 && (fchown(dir, 0, (gid_t)gid) < 0 || fchmod(dir, 0710) < 0))
		r = verr_set(err, -errno, "cannot let QEMU's user through %s: %s", rd->path, strerror(errno));
	else if (mkdirat(dir, RUNDIR_QEMU_DIR, 0700) < 0)
		r = verr_set(err, -errno, "cannot create %s/%s: %s", rd->path, RUNDIR_QEMU_DIR, strerror(errno));
	else if (uid > 0 && fchownat(dir, RUNDIR_QEMU_DIR, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = verr_set(err, -errno, "cannot give %s/%s to QEMU's user: %s", rd->path, RUNDIR_QEMU_DIR,
		    strerror(errno));
	close(dir);
	return r;
}

/* Remove /run/vfio when vfio made it and no guest is left in it. */
static void
rundir_remove_parent(void)
{
	const char *base;
	int run = safepath_open_parent("/run/vfio", &base, NULL);
	if (run < 0)
		return;
	int parent = openat(run, "vfio", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (parent >= 0 && unlinkat(parent, RUNDIR_MADE_MARK, 0) == 0 && unlinkat(run, "vfio", AT_REMOVEDIR) < 0) {
		/* Another guest is still there: the mark stays for the last one. */
		int fd = openat(parent, RUNDIR_MADE_MARK, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	if (parent >= 0)
		close(parent);
	close(run);
}

int
rundir_remove(struct rundir *rd, struct verr *err)
{
	rundir_keep_console(rd);
	int dir = open(rd->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir >= 0) {
		int q = rundir_remove_tree(dir, RUNDIR_QEMU_DIR, 0);
		if (q < 0)
			log_warnx("cannot remove QEMU's directory %s/%s: %s", rd->path, RUNDIR_QEMU_DIR, strerror(-q));
		close(dir);
	}
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
	rundir_remove_parent();
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
