/* Host root joining and the small file helpers built on it. */
#include "hostroot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "vfioenv.h"

static char hostroot[PATH_MAX];

void
hostroot_init(const char *root)
{
	if (root == NULL)
		root = vfioenv_get("VFIO_HOST_ROOT");
	if (root == NULL)
		root = "";
	snprintf(hostroot, sizeof(hostroot), "%s", root);
	size_t n = strlen(hostroot);
	while (n > 0 && hostroot[n - 1] == '/')
		hostroot[--n] = '\0';
}

const char *
hostroot_get(void)
{
	return hostroot;
}

static char *host_vpath(char *buf, size_t len, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static char *
host_vpath(char *buf, size_t len, const char *fmt, va_list ap)
{
	int n = snprintf(buf, len, "%s", hostroot);
	if (n < 0 || (size_t)n >= len)
		return NULL;
	int m = vsnprintf(buf + n, len - n, fmt, ap);
	if (m < 0 || (size_t)(n + m) >= len)
		return NULL;
	return buf;
}

char *
host_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = host_vpath(buf, len, fmt, ap);
	va_end(ap);
	return p;
}

char *
host_pathdup(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *rel = xvasprintf(fmt, ap);
	va_end(ap);
	char *p = xasprintf("%s%s", hostroot, rel);
	free(rel);
	return p;
}

bool
host_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int
host_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags | O_CLOEXEC, mode);
}

char *
host_read(const char *path, size_t *len_out)
{
	int fd = host_open(path, O_RDONLY, 0);
	if (fd < 0)
		return NULL;
	struct strbuf sb = { 0 };
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			close(fd);
			strbuf_free(&sb);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		strbuf_add(&sb, buf, (size_t)n);
	}
	close(fd);
	if (len_out != NULL)
		*len_out = sb.len;
	return strbuf_steal(&sb);
}

char *
host_read_line(const char *path)
{
	char *s = host_read(path, NULL);
	return s ? str_rstrip(s) : NULL;
}

int
host_write(const char *path, const char *data)
{
	/* O_TRUNC: sysfs ignores it, and a fixture's plain file must not keep
	 * the tail of a longer old value. */
	int fd = host_open(path, O_WRONLY | O_TRUNC, 0);
	if (fd < 0)
		return -errno;
	size_t len = strlen(data);
	ssize_t n = write(fd, data, len);
	int ret = 0;
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

char *
host_readlink(const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

char *
host_link_basename(const char *path)
{
	char *target = host_readlink(path);
	if (target == NULL)
		return NULL;
	const char *slash = strrchr(target, '/');
	char *base = xstrdup(slash ? slash + 1 : target);
	free(target);
	return base;
}
