/* vfio's own user for QEMU: see qemuuser.h. */
#include "qemuuser.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostcmd.h"
#include "hostroot.h"
#include "util.h"

/* Debian's and shadow's defaults when login.defs leaves them unset. */
#define QEMUUSER_SYS_MIN 100
#define QEMUUSER_SYS_MAX 999

/* A "KEY VALUE" line of login.defs, or dflt. */
static long
qemuuser_logindef(const char *text, const char *key, long dflt)
{
	size_t kl = strlen(key);
	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		p += strspn(p, " \t");
		if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '\t')) {
			char *end;
			long v = strtol(p + kl, &end, 10);
			if (end != p + kl && v >= 0 && v < INT_MAX)
				return v;
		}
	}
	return dflt;
}

/* A file of the host root, whole; a missing one is an empty database. */
static char *
qemuuser_file(const char *path)
{
	char full[PATH_MAX];
	if (host_path(full, sizeof(full), "%s", path) == NULL)
		return NULL;
	return host_read(full, NULL);
}

/* Whether a line of an /etc/passwd- or /etc/group-like file has id as its
 * third field. */
static bool
qemuuser_id_used(const char *text, long id)
{
	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *f = p;
		for (int field = 0; field < 2 && f != NULL; field++) {
			f = strchr(f, ':');
			if (f != NULL)
				f++;
		}
		if (f != NULL && strtol(f, NULL, 10) == id && *f >= '0' && *f <= '9')
			return true;
	}
	return false;
}

void
qemuuser_read(struct qemuuser_db *db)
{
	memset(db, 0, sizeof(*db));
	db->uid = db->gid = -1;
	char *passwd = qemuuser_file("/etc/passwd"), *group = qemuuser_file("/etc/group");
	char *defs = qemuuser_file("/etc/login.defs");
	size_t nl = strlen(QEMUUSER_NAME);
	for (const char *p = passwd; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, QEMUUSER_NAME, nl) != 0 || p[nl] != ':')
			continue;
		char name[64], pw[64];
		int uid, gid;
		char gecos[128], home[128];
		/* name:pw:uid:gid:gecos:home:shell; gecos may be empty */
		if (sscanf(p, "%63[^:]:%63[^:]:%d:%d:%127[^:]:%127[^:\n]", name, pw, &uid, &gid, gecos, home) >= 4) {
			db->exists = true;
			db->uid = uid;
			db->gid = gid;
			const char *h = p;
			for (int field = 0; field < 5 && h != NULL; field++)
				h = strchr(h, ':') ? strchr(h, ':') + 1 : NULL;
			size_t hl = h != NULL ? strcspn(h, ":\n") : 0;
			snprintf(db->home, sizeof(db->home), "%.*s", (int)(hl < sizeof(db->home) ? hl : 0), h ? h : "");
		}
		break;
	}
	if (!db->exists) {
		long lo = qemuuser_logindef(defs, "SYS_UID_MIN", QEMUUSER_SYS_MIN);
		long hi = qemuuser_logindef(defs, "SYS_UID_MAX", QEMUUSER_SYS_MAX);
		long glo = qemuuser_logindef(defs, "SYS_GID_MIN", QEMUUSER_SYS_MIN);
		long ghi = qemuuser_logindef(defs, "SYS_GID_MAX", QEMUUSER_SYS_MAX);
		if (glo > lo)
			lo = glo;
		if (ghi < hi)
			hi = ghi;
		for (long id = hi; id >= lo && id > 0; id--) {
			if (!qemuuser_id_used(passwd, id) && !qemuuser_id_used(group, id)) {
				db->uid = db->gid = (int)id;
				break;
			}
		}
	}
	free(passwd);
	free(group);
	free(defs);
}

int
qemuuser_create(int id, struct verr *err)
{
	char *useradd = hostcmd_find("useradd");
	if (useradd == NULL)
		return verr_set(err, -ENOENT, "cannot create the user " QEMUUSER_NAME " for QEMU: there is no "
		    "useradd in PATH; install the passwd package, or create the user yourself "
		    "(systemd-sysusers vfio.conf), or give -user NAME");
	char uid[16];
	snprintf(uid, sizeof(uid), "%d", id);
	const char *root = hostroot_get();
	bool prefixed = strcmp(root, "/") != 0 && *root != '\0';
	char *argv[] = {
		useradd, "--system", "--uid", uid, "--user-group", "--no-create-home", "--home-dir", "/",
		"--shell", "/usr/sbin/nologin", "--comment", "vfio QEMU guests",
		prefixed ? "--prefix" : QEMUUSER_NAME, prefixed ? (char *)root : NULL, prefixed ? QEMUUSER_NAME : NULL,
		NULL,
	};
	char *msg = NULL;
	int st = hostcmd_run(argv, &msg, err);
	free(useradd);
	if (st < 0) {
		free(msg);
		return st;
	}
	if (st != 0) {
		/* Another run made it first: fine when it has the planned id. */
		struct qemuuser_db db;
		qemuuser_read(&db);
		if (db.exists && db.uid == id && db.gid == id) {
			free(msg);
			return 0;
		}
		int r = verr_set(err, -EIO, "cannot create the user " QEMUUSER_NAME " (uid %d) for QEMU: useradd "
		    "exited with %d%s%s; %s", id, st, msg && *msg ? ": " : "", msg ? msg : "",
		    db.exists ? "it exists now with other ids: run vfio again to plan with them" :
		    "create it yourself (systemd-sysusers vfio.conf) or give -user NAME");
		free(msg);
		return r;
	}
	free(msg);
	return 0;
}
