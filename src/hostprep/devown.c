/* dev-chown: give QEMU's user (the sudo caller or -user) a device node or
 * file it must open itself (/dev/vfio/N, /dev/bus/usb/B/D), and give it back.
 * prepare() saves the owner and mode; undo() puts both back exactly.
 *
 * A block device given as -image may be named through a path the user
 * controls (a link in their home). Root resolves the target without
 * following another user's directories or links (safepath.h) and changes
 * the node through the descriptor it got, so a link swapped meanwhile can
 * never hand the user another file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "safepath.h"
#include "util.h"

#include "devown.h"

/* The node, opened without following what another user controls. */
static int
devown_open(const json_t *change, struct verr *err)
{
	const char *target = change_str(change, "target");
	int fd = safepath_open(target, O_PATH, 0, err);
	if (fd < 0)
		verr_prefix(err, "cannot give QEMU's user %s", target);
	return fd;
}

/* chown and chmod through the O_PATH descriptor (fchmod needs a real open,
 * which has side effects on device nodes: /proc/self/fd names the inode). */
static int
devown_set(int fd, uid_t uid, gid_t gid, mode_t mode)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0 || chmod(proc, mode) < 0)
		return -errno;
	return 0;
}

static int
devown_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *target = change_str(change, "target");
	if (target[0] != '/')
		return verr_set(err, -EINVAL, "dev-chown: \"%s\" is not an absolute host path", target);
	if (change_arg_int(change, "uid", -1) < 0 || change_arg_int(change, "gid", -1) < 0)
		return verr_set(err, -EINVAL, "dev-chown %s: the change names no uid/gid to give it to",
		    target);
	int fd = devown_open(change, err);
	if (fd < 0)
		return fd;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = verr_set(err, -errno, "cannot give QEMU's user %s: %s", target, strerror(errno));
	else
		*saved = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)st.st_uid,
		    "gid", (json_int_t)st.st_gid, "mode", (json_int_t)(st.st_mode & 07777));
	close(fd);
	return r;
}

static int
devown_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	uid_t uid = (uid_t)change_arg_int(change, "uid", -1);
	gid_t gid = (gid_t)change_arg_int(change, "gid", -1);
	mode_t mode = (mode_t)json_integer_value(json_object_get(saved, "mode"));
	int fd = devown_open(change, err);
	if (fd < 0)
		return fd;
	/* QEMU opens these read-write as that user. */
	int r = devown_set(fd, uid, gid, mode | S_IRUSR | S_IWUSR);
	if (r < 0)
		verr_set(err, r, "cannot give %s to uid %d: %s", change_str(change, "target"), (int)uid, strerror(-r));
	close(fd);
	return r;
}

static int
devown_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	json_t *uidv = json_object_get(saved, "uid"), *gidv = json_object_get(saved, "gid"),
	    *modev = json_object_get(saved, "mode");
	if (!json_is_integer(uidv) || !json_is_integer(gidv) || !json_is_integer(modev))
		return verr_set(err, -EINVAL, "the journal does not say who owned %s before",
		    change_str(change, "target"));
	struct verr why = { 0 };
	int fd = devown_open(change, &why);
	/* A node that went away (the device was unbound) has nothing left to
	 * give back. */
	if (fd == -ENOENT)
		return 0;
	int r = fd < 0 ? fd : devown_set(fd, (uid_t)json_integer_value(uidv), (gid_t)json_integer_value(gidv),
	    (mode_t)json_integer_value(modev));
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		verr_set(err, r, "cannot give %s back to uid %d gid %d mode %04o: %s "
		    "(do it with `chown %d:%d %s && chmod %04o %s`)",
		    change_str(change, "target"), (int)json_integer_value(uidv),
		    (int)json_integer_value(gidv), (unsigned)json_integer_value(modev),
		    fd < 0 ? why.msg : strerror(-r), (int)json_integer_value(uidv), (int)json_integer_value(gidv),
		    change_str(change, "target"), (unsigned)json_integer_value(modev),
		    change_str(change, "target"));
	}
	return r;
}

json_t *
devown_change_new(const char *path, int uid, int gid)
{
	return json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", path,
	    "args", "uid", uid, "gid", gid);
}

const struct change_ops devown_change_ops = {
	.action = "dev-chown",
	.prepare = devown_prepare,
	.apply = devown_apply,
	.undo = devown_undo,
	.may_block = false,
};
