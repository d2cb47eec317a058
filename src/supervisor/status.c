/* status.json: written to a temporary file and renamed into place.
 * The text is built in memory and written with one write(): json_dumpfd()
 * issues a write per token (hundreds per status), and a status is written
 * on the way to every hot-plugged device_add. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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
	char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		fatalx("status: cannot encode status.json");
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, text);
	strbuf_puts(&sb, "\n");
	free(text);
	int w = fd_write_all(fd, sb.s, sb.len);
	if (w < 0)
		r = verr_set(err, w, "cannot write %s: %s", tmp, strerror(-w));
	strbuf_free(&sb);
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
