/* userdb.h: getpwuid() and getgrouplist() in a child (why: userdb.h). */
#include "userdb.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static void
userdb_ask(uid_t uid, gid_t gid, struct userdb_user *u)
{
	struct passwd *pw = getpwuid(uid);
	if (pw == NULL || strlen(pw->pw_name) >= sizeof(u->name) || strlen(pw->pw_dir) >= sizeof(u->home))
		return;
	u->found = true;
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	int n = (int)nitems(u->groups);
	if (getgrouplist(pw->pw_name, gid, u->groups, &n) >= 0 && n > 0)
		u->n_groups = (size_t)n;
}

void
userdb_lookup_here(uid_t uid, gid_t gid, struct userdb_user *u)
{
	memset(u, 0, sizeof(*u));
	u->groups[0] = gid;
	u->n_groups = 1;
	userdb_ask(uid, gid, u);
}

void
userdb_lookup(uid_t uid, gid_t gid, struct userdb_user *u)
{
	memset(u, 0, sizeof(*u));
	u->groups[0] = gid;
	u->n_groups = 1;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		struct userdb_user a = *u;
		userdb_ask(uid, gid, &a);
		_exit(fd_write_all(p[1], &a, sizeof(a)) < 0 ? 1 : 0);
	}
	close(p[1]);
	struct userdb_user a;
	size_t got = 0;
	while (got < sizeof(a)) {
		ssize_t n = read(p[0], (char *)&a + got, sizeof(a) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof(a) && a.n_groups >= 1 && a.n_groups <= nitems(a.groups)) {
		a.name[sizeof(a.name) - 1] = a.home[sizeof(a.home) - 1] = '\0';
		*u = a;
	}
}
