/* The Looking Glass shared memory file as a reversible host change.
 *
 * /dev/shm is a sticky directory anyone may create in, so the name may be
 * taken by another user who keeps the file open to read (and write) the
 * guest's screen. A file there is accepted only from root or QEMU's user,
 * and even then replaced: the memory is always a file made here with
 * O_EXCL, which nobody else has open. */
#include "lgshm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safepath.h"
#include "util.h"

json_t *
lgshm_change(uint64_t size_mib, uid_t uid, gid_t gid)
{
	return json_pack("{s:s, s:s, s:{s:I, s:I, s:I}}", "action", "lg-shm-create", "target", "/dev/shm/looking-glass",
	    "args", "size_mib", (json_int_t)size_mib, "uid", (json_int_t)uid, "gid", (json_int_t)gid);
}

static int
lg_args(const json_t *change, json_int_t *size_mib, json_int_t *uid, json_int_t *gid, struct verr *err)
{
	const char *t = change_str(change, "target");
	*size_mib = change_arg_int(change, "size_mib", 64);
	*uid = change_arg_int(change, "uid", -1);
	*gid = change_arg_int(change, "gid", -1);
	if (*t != '/')
		return verr_set(err, -EINVAL, "lg-shm-create: target '%s' is not an absolute path", t);
	/* ivshmem needs a power-of-two size. */
	if (*size_mib <= 0 || (*size_mib & (*size_mib - 1)) != 0)
		return verr_set(err, -EINVAL, "-lgsize %lldM: the Looking Glass memory must be a power of two (32M, 64M, 128M...)",
		    (long long)*size_mib);
	if (*uid < 0 || *gid < 0)
		return verr_set(err, -EINVAL, "lg-shm-create: args.uid and args.gid are required");
	return 0;
}

/* The file may be someone else's: refuse unless root or QEMU's user owns it. */
static int
lg_check_owner(const char *path, const struct stat *st, json_int_t uid, struct verr *err)
{
	if (!S_ISREG(st->st_mode))
		return verr_set(err, -EEXIST, "-looking-glass: %s exists and is not a regular file; remove it", path);
	if (st->st_uid != 0 && (json_int_t)st->st_uid != uid)
		return verr_set(err, -EPERM, "-looking-glass: %s belongs to uid %u, not to root or QEMU's user "
		    "(uid %lld): that user could read and write the guest's screen through it; remove it "
		    "(rm %s) once you know who made it", path, (unsigned)st->st_uid, (long long)uid, path);
	return 0;
}

/* /dev/shm (sticky, anyone may create in it), opened once: every step
 * below works on this descriptor and the file's last component. */
static int
lg_open_dir(const json_t *change, const char **base, struct verr *err)
{
	int dir = safepath_open_parent(change_str(change, "target"), base, err);
	if (dir < 0)
		verr_prefix(err, "-looking-glass");
	return dir;
}

static int
lg_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	json_int_t size, uid, gid;
	if (lg_args(change, &size, &uid, &gid, err) < 0)
		return err->code;
	const char *path = change_str(change, "target"), *base;
	int dir = lg_open_dir(change, &base, err);
	if (dir < 0)
		return dir;
	struct stat st;
	int ret = 0;
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if ((ret = lg_check_owner(path, &st, uid, err)) == 0)
			*saved = json_pack("{s:b, s:I, s:I, s:I, s:I}", "existed", 1, "size", (json_int_t)st.st_size, "uid",
			    (json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid, "mode", (json_int_t)(st.st_mode & 07777));
	} else if (errno == ENOENT) {
		*saved = json_pack("{s:b}", "existed", 0);
	} else {
		ret = verr_set(err, -errno, "-looking-glass: cannot look at %s: %s", path, strerror(errno));
	}
	close(dir);
	return ret;
}

/* A new file, never an existing one: whoever held the old one open keeps
 * only the old one. */
static int
lg_create(int dir, const char *base, const char *path, off_t size, uid_t uid, gid_t gid, mode_t mode,
    struct verr *err)
{
	int fd = openat(dir, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return verr_set(err, -errno, "-looking-glass: cannot create %s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (someone made it meanwhile: find out who, and remove it)" : "");
	int ret = 0;
	if (ftruncate(fd, size) < 0)
		ret = verr_set(err, -errno, "-looking-glass: cannot size %s to %lld bytes: %s", path, (long long)size,
		    strerror(errno));
	else if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		ret = verr_set(err, -errno, "-looking-glass: cannot give %s to uid %u: %s", path, (unsigned)uid,
		    strerror(errno));
	close(fd);
	if (ret < 0)
		unlinkat(dir, base, 0);
	return ret;
}

static int
lg_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	json_int_t size, uid, gid;
	if (lg_args(change, &size, &uid, &gid, err) < 0)
		return err->code;
	const char *path = change_str(change, "target"), *base;
	int dir = lg_open_dir(change, &base, err);
	if (dir < 0)
		return dir;
	int ret = 0;
	struct stat st;
	/* An old file (root's or the user's, as prepare checked) goes; only
	 * root and its owner may remove it from the sticky directory. */
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    ((ret = lg_check_owner(path, &st, uid, err)) < 0 ||
	    (unlinkat(dir, base, 0) < 0 && (ret = verr_set(err, -errno, "-looking-glass: cannot replace %s: %s",
	    path, strerror(errno))) < 0))) {
		close(dir);
		return ret;
	}
	ret = lg_create(dir, base, path, (off_t)size * 1024 * 1024, (uid_t)uid, (gid_t)gid, 0660, err);
	close(dir);
	return ret;
}

static int
lg_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	json_int_t size, uid, gid;
	if (lg_args(change, &size, &uid, &gid, err) < 0)
		return err->code;
	const char *path = change_str(change, "target"), *base;
	int dir = lg_open_dir(change, &base, err);
	if (dir < 0)
		return dir;
	int ret = 0;
	if (unlinkat(dir, base, 0) < 0 && errno != ENOENT)
		ret = verr_set(err, -errno, "-looking-glass: cannot remove %s: %s", path, strerror(errno));
	if (ret == 0 && json_is_true(json_object_get(saved, "existed"))) {
		/* The one that was there before, as it was (its bytes were the
		 * shared memory of an earlier guest), and never another user's. */
		json_int_t ouid = json_integer_value(json_object_get(saved, "uid"));
		if (ouid != 0 && ouid != uid)
			ret = verr_set(err, -EPERM, "-looking-glass: the journal says %s belonged to uid %lld, "
			    "neither root nor QEMU's user: not given to it", path, (long long)ouid);
		else
			ret = lg_create(dir, base, path, (off_t)json_integer_value(json_object_get(saved, "size")),
			    (uid_t)ouid, (gid_t)json_integer_value(json_object_get(saved, "gid")),
			    (mode_t)json_integer_value(json_object_get(saved, "mode")), err);
	}
	close(dir);
	return ret;
}

const struct change_ops lg_shm_create_ops = {
	.action = "lg-shm-create",
	.prepare = lg_prepare,
	.apply = lg_apply,
	.undo = lg_undo,
};
