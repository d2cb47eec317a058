/* LD_PRELOAD: the disk holding the journal fills up at one point of a run.
 *
 *   ENOSPC_JOURNAL_AT=N   the journal (a file named "journal" under
 *                         $VFIO_HOST_ROOT/run/vfio/) cannot grow past N
 *                         bytes, once: a write crossing N writes what fits
 *                         and returns short, as a full filesystem does,
 *                         and the next write there fails with ENOSPC.
 *                         After that the space is back (another file was
 *                         removed): later writes succeed.
 *   ENOSPC_KILL_AFTER=1   and the process raises SIGKILL right after the
 *                         first journal write that succeeds after the
 *                         failure, so a test can run `vfio -restore` on
 *                         what is on disk then.
 *
 * Only write() is affected: the journal is written with write() alone. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static enum { ENOSPC_WAITING, ENOSPC_FULL, ENOSPC_FREED, ENOSPC_DONE } state;

static bool
is_journal(int fd)
{
	const char *root = getenv("VFIO_HOST_ROOT");
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 0 || root == NULL)
		return false;
	path[n] = '\0';
	size_t rl = strlen(root);
	const char *slash = strrchr(path, '/');
	return strncmp(path, root, rl) == 0 && strncmp(path + rl, "/run/vfio/", 10) == 0 && slash != NULL &&
	    strcmp(slash, "/journal") == 0;
}

ssize_t
write(int fd, const void *buf, size_t count)
{
	if (real_write == NULL)
		real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	const char *at = getenv("ENOSPC_JOURNAL_AT");
	if (at == NULL || state == ENOSPC_DONE || count == 0 || !is_journal(fd))
		return real_write(fd, buf, count);
	if (state == ENOSPC_FULL) {
		state = ENOSPC_FREED;
		errno = ENOSPC;
		return -1;
	}
	if (state == ENOSPC_FREED) {
		ssize_t n = real_write(fd, buf, count);
		const char *kill_after = getenv("ENOSPC_KILL_AFTER");
		if (n == (ssize_t)count && kill_after != NULL && strcmp(kill_after, "1") == 0) {
			/* Let the record reach the disk first, as journal_append's fsync would. */
			fsync(fd);
			raise(SIGKILL);
		}
		state = ENOSPC_DONE;
		return n;
	}
	struct stat st;
	long long limit = atoll(at);
	if (fstat(fd, &st) < 0 || st.st_size + (long long)count <= limit)
		return real_write(fd, buf, count);
	state = ENOSPC_FULL;
	size_t room = st.st_size < limit ? (size_t)(limit - st.st_size) : 0;
	if (room == 0) {
		state = ENOSPC_FREED;
		errno = ENOSPC;
		return -1;
	}
	return real_write(fd, buf, room);
}
