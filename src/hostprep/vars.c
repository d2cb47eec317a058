/* The UEFI variable store copy as a host change (see vars.h).
 *
 * -biosvars names a path the user chose, usually in their own directories,
 * which they can rearrange at any moment. So when QEMU runs as a user, all
 * of the work (reading the template, creating the copy, renaming it into
 * place, removing a leftover) is done by a process running as that user
 * (asuser.h): it reaches only what the user could, and what it makes is
 * theirs without a chown. When QEMU runs as root there is no other user to
 * act as, and the path is walked without following another user's
 * directories or links (safepath.h). Either way the copy is written to
 * TARGET.vfio-tmp in the directory opened once, and renamed into place
 * without replacing anything (RENAME_NOREPLACE), so a crash never leaves a
 * truncated store under the name QEMU opens and an existing store is never
 * overwritten. */
#include "vars.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asuser.h"
#include "safepath.h"
#include "util.h"

struct vars_job {
	const char *target, *template;
	char who[48];           /* " as uid N" when done as QEMU's user, for messages */
};

static int
vars_job(const json_t *change, struct vars_job *job, struct verr *err)
{
	job->target = change_str(change, "target");
	job->template = change_arg_str(change, "template");
	if (*job->target != '/' || *job->template != '/')
		return verr_set(err, -EINVAL, "vars-create: target '%s' and args.template '%s' must be absolute paths",
		    job->target, job->template);
	return 0;
}

/* fn as QEMU's user (when it has one), else here as root. */
static int
vars_as_qemu_user(const json_t *change, asuser_fn fn, struct vars_job *job, struct verr *err)
{
	json_int_t uid = change_arg_int(change, "uid", -1), gid = change_arg_int(change, "gid", -1);
	if (uid <= 0 || gid < 0)
		return fn(job, err);
	snprintf(job->who, sizeof(job->who), " as uid %lld", (long long)uid);
	return asuser_run((uid_t)uid, (gid_t)gid, fn, job, err);
}

static int
vars_open_template(const struct vars_job *job, struct verr *err)
{
	struct verr why = { 0 };
	int fd = safepath_open(job->template, O_RDONLY, 0, &why);
	if (fd < 0)
		return verr_set(err, fd, "-createvars: cannot read the template %s%s (%s); name a -bios whose "
		    "OVMF_VARS is installed, or copy one to %s yourself", job->template, job->who, why.msg,
		    job->target);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return verr_set(err, -EINVAL, "-createvars: the template %s is not a regular file", job->template);
	}
	return fd;
}

/* The template (*in) and the directory the store goes into (returned;
 * *base is the store's name in it), both opened once. */
static int
vars_open(const struct vars_job *job, int *in, const char **base, struct verr *err)
{
	if ((*in = vars_open_template(job, err)) < 0)
		return *in;
	int dir = safepath_open_parent(job->target, base, err);
	if (dir < 0) {
		close(*in);
		return verr_prefix(err, "-biosvars%s", job->who);
	}
	return dir;
}

/* 1 when the store exists already, 0 when not. */
static int
vars_check(void *arg, struct verr *err)
{
	const struct vars_job *job = arg;
	const char *base;
	int in, dir = vars_open(job, &in, &base, err);
	if (dir < 0)
		return dir;
	close(in);
	struct stat st;
	int r = fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 1 : 0;
	close(dir);
	return r;
}

static int
vars_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	struct vars_job job;
	if (vars_job(change, &job, err) < 0)
		return -EINVAL;
	int r = vars_as_qemu_user(change, vars_check, &job, err);
	if (r < 0)
		return r;
	*saved = json_pack("{s:b}", "existed", r == 1);
	return 0;
}

static int
vars_create(void *arg, struct verr *err)
{
	const struct vars_job *job = arg;
	const char *base;
	int in, dir = vars_open(job, &in, &base, err);
	if (dir < 0)
		return dir;
	char *tmp = xasprintf("%s.vfio-tmp", base);
	int r = 0, out = -1;
	/* A leftover of a crash, in the directory we hold. */
	if (unlinkat(dir, tmp, 0) < 0 && errno != ENOENT) {
		r = verr_set(err, -errno, "-createvars: cannot remove the leftover %s.vfio-tmp: %s", job->target,
		    strerror(errno));
		goto out;
	}
	out = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = verr_set(err, -errno, "-createvars: cannot create %s.vfio-tmp%s: %s; does its directory exist, "
		    "and may QEMU's user write there?", job->target, job->who, strerror(errno));
		goto out;
	}
	if ((r = fd_copy(in, out)) < 0 || (fsync(out) < 0 && (r = -errno) < 0)) {
		verr_set(err, r, "-createvars: cannot copy %s to %s.vfio-tmp: %s", job->template, job->target,
		    strerror(-r));
		goto out;
	}
	/* link() never replaces either, for a filesystem without RENAME_NOREPLACE. */
	if (renameat2(dir, tmp, dir, base, RENAME_NOREPLACE) < 0 &&
	    (errno != EINVAL || linkat(dir, tmp, dir, base, 0) < 0 || unlinkat(dir, tmp, 0) < 0)) {
		r = -errno;
		if (r == -EEXIST)
			r = 0;  /* a store appeared meanwhile: the guest's own, kept as it is */
		else
			verr_set(err, r, "-createvars: cannot rename %s.vfio-tmp to %s: %s", job->target, job->target,
			    strerror(-r));
		unlinkat(dir, tmp, 0);
		goto out;
	}
	int dfd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	if (out >= 0)
		close(out);
	if (r < 0 && out >= 0)
		unlinkat(dir, tmp, 0);
	close(in);
	close(dir);
	free(tmp);
	return r;
}

static int
vars_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	if (json_is_true(json_object_get(saved, "existed")))
		return 0;       /* the guest's store is there already: never overwrite it */
	struct vars_job job;
	if (vars_job(change, &job, err) < 0)
		return -EINVAL;
	return vars_as_qemu_user(change, vars_create, &job, err);
}

static int
vars_remove_tmp(void *arg, struct verr *err)
{
	const struct vars_job *job = arg;
	const char *base;
	int dir = safepath_open_parent(job->target, &base, err);
	if (dir == -ENOENT)
		return 0;       /* its directory is gone: so is the copy */
	if (dir < 0)
		return dir;
	char *tmp = xasprintf("%s.vfio-tmp", base);
	int r = 0;
	if (unlinkat(dir, tmp, 0) < 0 && errno != ENOENT)
		r = verr_set(err, -errno, "cannot remove the half-written %s.vfio-tmp: %s", job->target,
		    strerror(errno));
	free(tmp);
	close(dir);
	return r;
}

static int
vars_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	struct vars_job job;
	if (vars_job(change, &job, err) < 0)
		return -EINVAL;
	return vars_as_qemu_user(change, vars_remove_tmp, &job, err);
}

const struct change_ops vars_create_ops = {
	.action = "vars-create",
	.prepare = vars_prepare,
	.apply = vars_apply,
	.undo = vars_undo,
};
