/* The control FIFO: /run/vfio/NAME/control takes one command per line while
 * the guest runs (pci/usb/net add|del, status, powerdown, reset, quit,
 * help); each result is one line, "@TAG ok ...", "@TAG error ..." or
 * "@TAG pending ..." (accepted, not done: a removal the guest has not acked),
 * appended to /run/vfio/NAME/replies and logged. tools/vfioctl is the client.
 *
 * The replies file stays small: when a reply would take it past
 * CONTROL_REPLIES_MAX, it goes into a new file renamed over the old one
 * (a reader holding the old one still finds what was written there; a
 * reader waiting for its tag follows the rename). Each file has its room
 * reserved when made (fallocate), so a full /run does not stop the
 * replies; where no new file can be made, the file starts over in place
 * (readers see it shrink and read it again from the start).
 *
 * The FIFO is created 0600 in the 0700 runtime directory, opened with
 * O_NOFOLLOW and kept open read-write, so writers coming and going never
 * make it report end-of-file. Because of that a writer that closes in the
 * middle of a line cannot be told apart from a slow one: a partial line that
 * sees no newline for CONTROL_PARTIAL_MS is answered with an error and
 * dropped. Lines over CONTROL_LINE_MAX bytes, NUL bytes and bytes that are
 * not UTF-8 text get an error reply too; nothing reaches QEMU.
 *
 * Commands that wait (a bind in a child, a device_del until DEVICE_DELETED)
 * run alongside others: the loop never blocks on them. */
#ifndef VFIO_CONTROL_H
#define VFIO_CONTROL_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "verr.h"

#define CONTROL_LINE_MAX   4096   /* bytes of one command, without its newline (PIPE_BUF: atomic) */
#define CONTROL_TAG_MAX    64
#define CONTROL_PARTIAL_MS 1000   /* a line without its newline for this long is dropped */
#define CONTROL_REPLIES_MAX (64 * 1024)   /* bytes of the replies file before a new one */

/* --- the line parser (control-parse.c): pure, fuzzed -------------------- */

/* One parsed line: an optional request tag ("@TAG", without the '@') and the
 * words. Words are split at blanks; '...' quotes like a shell's single
 * quotes (nothing inside is special, quoted and unquoted pieces next to each
 * other join into one word). */
struct control_line {
	char *tag;               /* NULL when the line has none */
	struct strv words;
};

/* Parse len bytes (no newline). Returns 0; 1 for a blank line (nothing to
 * answer); -EINVAL with err naming the problem. The tag is filled whenever
 * it could be read, even on error, so the error reply carries it. */
int control_parse(const char *buf, size_t len, struct control_line *out, struct verr *err);
void control_line_free(struct control_line *l);
/* A well-formed tag: 1..CONTROL_TAG_MAX of [A-Za-z0-9._:-]. */
bool control_tag_valid(const char *tag, size_t len);

/* --- the command table (control-cmds.c) --------------------------------- */

/* What a command is, for vfioctl, its bash completion and the man page
 * test: they take their command lists from here. */
#define CONTROL_CMD_GUEST 0x1    /* only while the guest runs */
#define CONTROL_CMD_FORCE 0x2    /* "force" as the last word overrides a refusal (pci del) */

struct control_cmd_info {
	const char *name;        /* "pci add", "status": one word, or a group and a verb */
	const char *usage;       /* "ID|ADDRESS [force]", "" for none */
	const char *help;
	unsigned flags;          /* CONTROL_CMD_* */
};

/* The i-th command of the table, NULL past the end. */
const struct control_cmd_info *control_cmd_info(size_t i);

/* --- the supervisor side (control.c) ------------------------------------- */

struct devices;
struct journal;
struct qmp;
struct usbwatch;

/* What the session lends the control FIFO. The pointers stay valid until
 * control_close(); qmp may become unusable (QEMU gone): commands then fail. */
struct control_host {
	struct event_base *base;
	const char *name;
	const char *rundir;          /* host root joined */
	struct qmp **qmp;            /* the session's connection (it may be replaced by NULL) */
	struct devices *devs;
	struct journal *journal;
	struct usbwatch **usb;       /* usb add/del go through it when it exists (usbwatch.h) */
	const json_t *plan_qmp;      /* the plan's QMP commands: ids already used */
	int bindtimeout_ms;
	bool has_disk_image;         /* the guest boots from a virtual disk (-image) */
	uint64_t memory_mib;         /* guest RAM, which QEMU locks for a VFIO device */
	int qemu_uid, qemu_gid;      /* QEMU's user when it is not root, else -1 */
	void *arg;
	bool (*running)(void *arg);              /* the guest is up (after cont) */
	const char *(*state)(void *arg);         /* "running", "stopping", ... */
	void (*changed)(void *arg);              /* rewrite status.json */
	void (*powerdown)(void *arg);            /* as the first SIGTERM */
	void (*quit)(void *arg);                 /* quit QEMU now */
};

struct control;

/* Create the FIFO and the replies file and start listening. */
struct control *control_open(const struct control_host *h, struct verr *err);
/* Stop: pending commands get an error reply, the FIFO and replies go. */
void control_close(struct control *c);

/* The status object a `status` command answers with (new reference):
 * {"version": CONTROL_STATUS_VERSION, "name", "state", "devices":
 * devices_json(), "pending": [the long commands in flight]}. Version 2
 * added "version" and the devices' "state" ("removing": pending). */
#define CONTROL_STATUS_VERSION 2
json_t *control_status_json(struct control *c);

#endif
