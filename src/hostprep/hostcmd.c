/* Host programs run without a shell: see hostcmd.h. */
#include "hostcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostroot.h"
#include "util.h"
#include "vfioenv.h"

extern char **environ;

char *
hostcmd_find(const char *name)
{
	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *dup = xstrdup(path), *save = NULL, *found = NULL;
	for (char *dir = strtok_r(dup, ":", &save); dir != NULL && found == NULL; dir = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/%s", *dir ? dir : ".", name);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(dup);
	return found;
}

const char *
hostcmd_systemctl(const char *unit, struct verr *err)
{
	const char *p = vfioenv_get("VFIO_SYSTEMCTL");
	if (p != NULL && *p != '\0')
		return p;
	if (*hostroot_get() != '\0') {
		verr_set(err, -ENOTSUP, "cannot manage %s on the host root %s with the real systemctl: "
		    "set VFIO_SYSTEMCTL to a systemctl for that root", unit, hostroot_get());
		return NULL;
	}
	return "/usr/bin/systemctl";
}

int
hostcmd_run(char *const argv[], char **errout, struct verr *err)
{
	return hostcmd_capture(argv, STDERR_FILENO, errout, err);
}

int
hostcmd_capture(char *const argv[], int which, char **text, struct verr *err)
{
	char **errout = text;
	int p[2];
	if (errout != NULL)
		*errout = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return verr_set(err, -errno, "cannot run %s: pipe: %s", argv[0], strerror(errno));
	/* A second pipe carries execve's errno back, closed by a successful
	 * exec (O_CLOEXEC). */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return verr_set(err, -e, "cannot run %s: pipe: %s", argv[0], strerror(e));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]); close(p[1]); close(ep[0]); close(ep[1]);
		return verr_set(err, -e, "cannot run %s: fork: %s", argv[0], strerror(e));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, which == STDOUT_FILENO ? 2 : 1);
		}
		dup2(p[1], which);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], argv, environ);
		int e = errno;
		ssize_t n = write(ep[1], &e, sizeof(e));
		(void)n;
		_exit(127);
	}
	close(p[1]);
	close(ep[1]);
	struct strbuf sb = { 0 };
	char buf[1024];
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (sb.len < 8192)
			strbuf_add(&sb, buf, (size_t)n);
	}
	close(p[0]);
	int exec_errno = 0;
	ssize_t en = read(ep[0], &exec_errno, sizeof(exec_errno));
	close(ep[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (en == (ssize_t)sizeof(exec_errno)) {
		strbuf_free(&sb);
		return verr_set(err, -exec_errno, "cannot run %s: %s", argv[0], strerror(exec_errno));
	}
	if (errout != NULL) {
		strbuf_puts(&sb, "");
		*errout = str_rstrip(strbuf_steal(&sb));
	} else {
		strbuf_free(&sb);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
