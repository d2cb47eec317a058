/* The UEFI variable store copy as a host change (see vars.h). The copy is
 * written to TARGET.vfio-tmp and renamed into place, so a crash never leaves
 * a truncated store under the name QEMU opens. */
#include "vars.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "util.h"

static int
vars_paths(const json_t *change, char **target, char **tmp, char **template, struct verr *err)
{
	const char *t = change_str(change, "target"), *tpl = change_arg_str(change, "template");
	if (*t != '/' || *tpl != '/')
		return verr_set(err, -EINVAL, "vars-create: target '%s' and args.template '%s' must be absolute paths",
		    t, tpl);
	*target = host_pathdup("%s", t);
	*tmp = host_pathdup("%s.vfio-tmp", t);
	*template = host_pathdup("%s", tpl);
	return 0;
}

static int
vars_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	char *target = NULL, *tmp = NULL, *template = NULL;
	if (vars_paths(change, &target, &tmp, &template, err) < 0)
		return -EINVAL;
	struct stat st;
	int r = 0;
	if (stat(template, &st) < 0)
		r = verr_set(err, -errno, "-createvars: cannot read the template %s: %s; name a -bios whose "
		    "OVMF_VARS is installed, or copy one to %s yourself", change_arg_str(change, "template"),
		    strerror(errno), change_str(change, "target"));
	else
		*saved = json_pack("{s:b}", "existed", access(target, F_OK) == 0);
	free(target);
	free(tmp);
	free(template);
	return r;
}

static int
vars_copy(int in, int out)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			off += w;
		}
	}
}

static int
vars_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	if (json_is_true(json_object_get(saved, "existed")))
		return 0;       /* the guest's store is there already: never overwrite it */
	char *target = NULL, *tmp = NULL, *template = NULL;
	if (vars_paths(change, &target, &tmp, &template, err) < 0)
		return -EINVAL;
	json_int_t uid = change_arg_int(change, "uid", -1), gid = change_arg_int(change, "gid", -1);
	int r = 0, in = -1, out = -1;
	unlink(tmp);
	if ((in = open(template, O_RDONLY | O_CLOEXEC)) < 0) {
		r = verr_set(err, -errno, "-createvars: cannot open %s: %s", template, strerror(errno));
		goto out;
	}
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		r = verr_set(err, -errno, "-createvars: cannot create %s: %s; does its directory exist?", tmp,
		    strerror(errno));
		goto out;
	}
	if ((r = vars_copy(in, out)) < 0 || (fsync(out) < 0 && (r = -errno) < 0)) {
		verr_set(err, r, "-createvars: cannot copy %s to %s: %s", template, tmp, strerror(-r));
		goto out;
	}
	/* QEMU, running as this user, writes the variables. */
	if (uid >= 0 && fchown(out, (uid_t)uid, (gid_t)gid) < 0) {
		r = verr_set(err, -errno, "-createvars: cannot give %s to uid %lld: %s", tmp, (long long)uid,
		    strerror(errno));
		goto out;
	}
	if (rename(tmp, target) < 0)
		r = verr_set(err, -errno, "-createvars: cannot rename %s to %s: %s", tmp, target, strerror(errno));
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (r < 0)
		unlink(tmp);
	free(target);
	free(tmp);
	free(template);
	return r;
}

static int
vars_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	char *target = NULL, *tmp = NULL, *template = NULL;
	if (vars_paths(change, &target, &tmp, &template, err) < 0)
		return -EINVAL;
	int r = 0;
	if (unlink(tmp) < 0 && errno != ENOENT)
		r = verr_set(err, -errno, "cannot remove the half-written %s: %s", tmp, strerror(errno));
	free(target);
	free(tmp);
	free(template);
	return r;
}

const struct change_ops vars_create_ops = {
	.action = "vars-create",
	.prepare = vars_prepare,
	.apply = vars_apply,
	.undo = vars_undo,
};
