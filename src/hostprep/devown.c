/* dev-chown: give QEMU's user (the sudo caller or -user) a device node or
 * file it must open itself (/dev/vfio/N, /dev/bus/usb/B/D), and give it back.
 * prepare() saves the owner and mode; undo() puts both back exactly. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "hostroot.h"
#include "util.h"

#include "devown.h"

static char *
devown_path(const json_t *change)
{
	return host_pathdup("%s", change_str(change, "target"));
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
	char *path = devown_path(change);
	struct stat st;
	int r = 0;
	if (stat(path, &st) < 0)
		r = verr_set(err, -errno, "cannot give QEMU's user %s: %s", target, strerror(errno));
	else
		*saved = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)st.st_uid,
		    "gid", (json_int_t)st.st_gid, "mode", (json_int_t)(st.st_mode & 07777));
	free(path);
	return r;
}

static int
devown_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	char *path = devown_path(change);
	uid_t uid = (uid_t)change_arg_int(change, "uid", -1);
	gid_t gid = (gid_t)change_arg_int(change, "gid", -1);
	mode_t mode = (mode_t)json_integer_value(json_object_get(saved, "mode"));
	int r = 0;
	/* QEMU opens these read-write as that user. */
	if (chown(path, uid, gid) < 0 || chmod(path, mode | S_IRUSR | S_IWUSR) < 0)
		r = verr_set(err, -errno, "cannot give %s to uid %d: %s", change_str(change, "target"),
		    (int)uid, strerror(errno));
	free(path);
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
	char *path = devown_path(change);
	int r = 0;
	if (chown(path, (uid_t)json_integer_value(uidv), (gid_t)json_integer_value(gidv)) < 0 ||
	    chmod(path, (mode_t)json_integer_value(modev)) < 0) {
		/* A node that went away (the device was unbound) has nothing left
		 * to give back. */
		if (errno != ENOENT)
			r = verr_set(err, -errno, "cannot give %s back to uid %d gid %d mode %04o: %s "
			    "(do it with `chown %d:%d %s && chmod %04o %s`)",
			    change_str(change, "target"), (int)json_integer_value(uidv),
			    (int)json_integer_value(gidv), (unsigned)json_integer_value(modev),
			    strerror(errno), (int)json_integer_value(uidv), (int)json_integer_value(gidv),
			    change_str(change, "target"), (unsigned)json_integer_value(modev),
			    change_str(change, "target"));
	}
	free(path);
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
