/* The Looking Glass shared memory file as a reversible host change. */
#include "lgshm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "util.h"

json_t *
lgshm_change(uint64_t size_mib, uid_t uid, gid_t gid)
{
	return json_pack("{s:s, s:s, s:{s:I, s:I, s:I}}", "action", "lg-shm-create", "target", "/dev/shm/looking-glass",
	    "args", "size_mib", (json_int_t)size_mib, "uid", (json_int_t)uid, "gid", (json_int_t)gid);
}

static int
lg_args(const json_t *change, char **path, json_int_t *size_mib, json_int_t *uid, json_int_t *gid, struct verr *err)
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
	*path = host_pathdup("%s", t);
	return 0;
}

static int
lg_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	char *path = NULL;
	json_int_t size, uid, gid;
	if (lg_args(change, &path, &size, &uid, &gid, err) < 0)
		return err->code;
	struct stat st;
	int ret = 0;
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			ret = verr_set(err, -EEXIST, "-looking-glass: %s exists and is not a regular file; remove it", path);
		else
			*saved = json_pack("{s:b, s:I, s:I, s:I, s:I}", "existed", 1, "size", (json_int_t)st.st_size, "uid",
			    (json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid, "mode", (json_int_t)(st.st_mode & 07777));
	} else if (errno == ENOENT) {
		*saved = json_pack("{s:b}", "existed", 0);
	} else {
		ret = verr_set(err, -errno, "-looking-glass: cannot look at %s: %s", path, strerror(errno));
	}
	free(path);
	return ret;
}

static int
lg_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	char *path = NULL;
	json_int_t size, uid, gid;
	if (lg_args(change, &path, &size, &uid, &gid, err) < 0)
		return err->code;
	int ret = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0)
		ret = verr_set(err, -errno, "-looking-glass: cannot create %s: %s", path, strerror(errno));
	else if (ftruncate(fd, (off_t)size * 1024 * 1024) < 0)
		ret = verr_set(err, -errno, "-looking-glass: cannot size %s to %lldM: %s", path, (long long)size, strerror(errno));
	else if (fchown(fd, (uid_t)uid, (gid_t)gid) < 0 || fchmod(fd, 0660) < 0)
		ret = verr_set(err, -errno, "-looking-glass: cannot give %s to uid %lld: %s", path, (long long)uid,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

static int
lg_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	char *path = NULL;
	json_int_t size, uid, gid;
	if (lg_args(change, &path, &size, &uid, &gid, err) < 0)
		return err->code;
	int ret = 0;
	if (!json_is_true(json_object_get(saved, "existed"))) {
		if (unlink(path) < 0 && errno != ENOENT)
			ret = verr_set(err, -errno, "-looking-glass: cannot remove %s: %s", path, strerror(errno));
	} else {
		int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			if (ftruncate(fd, (off_t)json_integer_value(json_object_get(saved, "size"))) < 0 ||
			    fchown(fd, (uid_t)json_integer_value(json_object_get(saved, "uid")),
				(gid_t)json_integer_value(json_object_get(saved, "gid"))) < 0 ||
			    fchmod(fd, (mode_t)json_integer_value(json_object_get(saved, "mode"))) < 0)
				ret = verr_set(err, -errno, "-looking-glass: cannot put %s back as it was: %s", path, strerror(errno));
			close(fd);
		}
	}
	free(path);
	return ret;
}

const struct change_ops lg_shm_create_ops = {
	.action = "lg-shm-create",
	.prepare = lg_prepare,
	.apply = lg_apply,
	.undo = lg_undo,
};
