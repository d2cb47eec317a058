/* Resolving host paths one component at a time: see safepath.h for why. */
#include "safepath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "util.h"

/* As the kernel's own limit on symlinks in one lookup. */
#define SAFEPATH_MAX_LINKS 40

static bool
safepath_trusted(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* A directory or symlink the walk is about to go through (at is its host
 * path, for messages). */
static int
safepath_check(const char *path, const char *at, const struct stat *st, struct verr *err)
{
	bool link = S_ISLNK(st->st_mode);
	if (!safepath_trusted(st->st_uid))
		return verr_set(err, -EPERM, "%s: the %s %s belongs to uid %u, and paths through another user's "
		    "directories and links are not followed (that user could redirect them to any file); give "
		    "a path through directories of root%s", path, link ? "symlink" : "directory", at,
		    (unsigned)st->st_uid, link ? ", naming the file the link points to" : " (or of QEMU's user)");
	if (!link && (st->st_mode & S_IWOTH) && !(st->st_mode & S_ISVTX))
		return verr_set(err, -EPERM, "%s: anyone may write the directory %s (mode %04o, no sticky bit), "
		    "so anyone could replace what is in it; make it private (chmod o-w %s) or use another "
		    "directory", path, at, (unsigned)(st->st_mode & 07777), at);
	return 0;
}

static int
safepath_root(struct verr *err)
{
	const char *r = *hostroot_get() ? hostroot_get() : "/";
	int fd = open(r, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return verr_set(err, -errno, "cannot open the host root %s: %s", r, strerror(errno));
	return fd;
}

/* Where a symlink at host path `at` (inside directory `dir`, which is the
 * host path dirpath) leads, prepended to what was left of the walk: a new
 * absolute host path to walk from the top. */
static char *
safepath_follow(const char *path, const char *dirpath, const char *at, int fd, const char *rest, int *links,
    struct verr *err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
	if (n < 0) {
		verr_set(err, -errno, "%s: cannot read the symlink %s: %s", path, at, strerror(errno));
		return NULL;
	}
	target[n] = '\0';
	if (++*links > SAFEPATH_MAX_LINKS) {
		verr_set(err, -ELOOP, "%s: more than %d symlinks (a loop?) at %s", path, SAFEPATH_MAX_LINKS, at);
		return NULL;
	}
	return xasprintf("%s%s%s%s%s", target[0] == '/' ? "" : dirpath, target[0] == '/' ? "" : "/", target,
	    *rest ? "/" : "", rest);
}

/* Walk every component of the absolute host path dirpath to a directory
 * under the rules of safepath.h. Returns an O_PATH descriptor; *resolved
 * (when not NULL) gets the host path it stands for. */
static int
safepath_walk_dir(const char *path, const char *dirpath, int *links, char **resolved, struct verr *err)
{
	int root = safepath_root(err);
	if (root < 0)
		return root;
	char *todo = xstrdup(dirpath);
	int dir = -1, r = 0;
	struct strbuf done = { 0 };
restart:
	if (dir >= 0)
		close(dir);
	dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (dir < 0) {
		r = verr_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	strbuf_free(&done);
	strbuf_puts(&done, "");
	int depth = 0;
	for (char *p = todo; *p;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		size_t len = strcspn(p, "/");
		char *name = xstrndup(p, len);
		p += len;
		if (strcmp(name, ".") == 0) {
			free(name);
			continue;
		}
		if (strcmp(name, "..") == 0) {
			free(name);
			if (depth == 0)
				continue;       /* ".." of the host root is the host root */
			int up = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (up < 0) {
				r = verr_set(err, -errno, "%s: cannot go up from %s: %s", path, done.s, strerror(errno));
				goto out;
			}
			close(dir);
			dir = up;
			depth--;
			char *slash = strrchr(done.s, '/');
			done.len = slash ? (size_t)(slash - done.s) : 0;
			done.s[done.len] = '\0';
			continue;
		}
		char *at = xasprintf("%s/%s", done.s, name);
		int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = verr_set(err, -errno, "%s: cannot open %s: %s", path, at, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(name);
			free(at);
			goto out;
		}
		free(name);
		if ((r = safepath_check(path, at, &st, err)) < 0) {
			close(fd);
			free(at);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			char *next = safepath_follow(path, done.s, at, fd, p, links, err);
			close(fd);
			free(at);
			if (next == NULL) {
				r = err != NULL ? err->code : -ELOOP;
				goto out;
			}
			free(todo);
			todo = next;
			goto restart;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = verr_set(err, -ENOTDIR, "%s: %s is not a directory", path, at);
			close(fd);
			free(at);
			goto out;
		}
		close(dir);
		dir = fd;
		depth++;
		strbuf_free(&done);
		strbuf_puts(&done, at);
		free(at);
	}
out:
	close(root);
	free(todo);
	if (r < 0) {
		if (dir >= 0)
			close(dir);
		strbuf_free(&done);
		return r;
	}
	if (resolved != NULL)
		*resolved = strbuf_steal(&done);
	else
		strbuf_free(&done);
	return dir;
}

/* Split an absolute host path into its directory and last component. */
static int
safepath_split(const char *path, char **dirpath, const char **base, struct verr *err)
{
	const char *slash = strrchr(path, '/');
	if (path[0] != '/' || slash == NULL)
		return verr_set(err, -EINVAL, "%s: not an absolute path", path);
	*base = slash + 1;
	if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
		return verr_set(err, -EINVAL, "%s: the path must end in a file name", path);
	*dirpath = xstrndup(path, (size_t)(slash - path));
	return 0;
}

int
safepath_open_parent(const char *path, const char **base, struct verr *err)
{
	char *dirpath;
	int r = safepath_split(path, &dirpath, base, err);
	if (r < 0)
		return r;
	int links = 0;
	int fd = safepath_walk_dir(path, dirpath, &links, NULL, err);
	free(dirpath);
	return fd;
}

int
safepath_open(const char *path, int flags, mode_t mode, struct verr *err)
{
	char *cur = xstrdup(path);
	int links = 0, r;
	for (;;) {
		char *dirpath, *resolved = NULL;
		const char *base;
		if ((r = safepath_split(cur, &dirpath, &base, err)) < 0)
			break;
		int dir = safepath_walk_dir(path, dirpath, &links, &resolved, err);
		free(dirpath);
		if (dir < 0) {
			r = dir;
			break;
		}
		r = openat(dir, base, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		int e = errno;
		struct stat st;
		bool exclusive = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
		/* O_PATH | O_NOFOLLOW opens a symlink itself. */
		if (r >= 0 && (flags & O_PATH) && fstat(r, &st) == 0 && S_ISLNK(st.st_mode)) {
			close(r);
			r = -1;
		}
		if (r >= 0 || exclusive || fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISLNK(st.st_mode)) {
			if (r < 0)
				r = verr_set(err, -e, "%s: cannot open %s/%s: %s", path, resolved, base, strerror(e));
			close(dir);
			free(resolved);
			break;
		}
		/* The last component is a symlink: follow it only under the same rules. */
		char *at = xasprintf("%s/%s", resolved, base);
		int lfd = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		char *next = NULL;
		if (lfd < 0)
			r = verr_set(err, -errno, "%s: cannot open %s: %s", path, at, strerror(errno));
		else if ((r = safepath_check(path, at, &st, err)) == 0 &&
		    (next = safepath_follow(path, resolved, at, lfd, "", &links, err)) == NULL)
			r = err != NULL ? err->code : -ELOOP;
		if (lfd >= 0)
			close(lfd);
		close(dir);
		free(resolved);
		free(at);
		if (next == NULL)
			break;
		free(cur);
		cur = next;
	}
	free(cur);
	return r;
}
