/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. The
 * supervisor's loop must never block, so the send is non-blocking; the
 * service manager reads its socket promptly, and a lost READY=1 shows as a
 * start timeout in systemctl status, not as a hung guest. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int
notify_send(const char *state, struct verr *err)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || *path == '\0')
		return 0;

	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (path[0] != '/' && path[0] != '@')
		return verr_set(err, -EAFNOSUPPORT, "NOTIFY_SOCKET '%s' is neither a socket path nor an abstract "
		    "name starting with '@'; run vfio directly from a Type=notify unit or unset NOTIFY_SOCKET", path);
	if (len >= sizeof(sun.sun_path))
		return verr_set(err, -ENAMETOOLONG, "NOTIFY_SOCKET '%s' is longer than a socket address can be "
		    "(%zu bytes)", path, sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, len);
	/* An abstract name has a NUL first and is exactly as long as given. */
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return verr_set(err, -errno, "cannot create a socket to tell the service manager '%s': %s",
		    state, strerror(errno));
	size_t slen = strlen(state);
	ssize_t n = sendto(fd, state, slen, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun, addrlen);
	int e = errno;
	close(fd);
	if (n < 0)
		return verr_set(err, -e, "telling the service manager '%s' through NOTIFY_SOCKET %s failed: %s",
		    state, path, strerror(e));
	if ((size_t)n != slen)
		return verr_set(err, -EMSGSIZE, "telling the service manager '%s' through NOTIFY_SOCKET %s: "
		    "only %zd of %zu bytes went out", state, path, n, slen);
	return 1;
}

int
notify_sendf(struct verr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *state = xvasprintf(fmt, ap);
	va_end(ap);
	int rc = notify_send(state, err);
	free(state);
	return rc;
}
