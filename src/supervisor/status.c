/* status.json: written to a temporary file and renamed into place. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int
status_write(const char *dir, const json_t *status, struct verr *err)
{
	char *tmp = xasprintf("%s/status.json.tmp", dir);
	char *path = xasprintf("%s/status.json", dir);
	int r = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = verr_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (json_dumpfd(status, fd, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || write(fd, "\n", 1) != 1)
		r = verr_set(err, -EIO, "cannot write %s", tmp);
	if (close(fd) < 0 && r == 0)
		r = verr_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
	if (r == 0 && rename(tmp, path) < 0)
		r = verr_set(err, -errno, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
	if (r < 0)
		unlink(tmp);
out:
	free(tmp);
	free(path);
	return r;
}
