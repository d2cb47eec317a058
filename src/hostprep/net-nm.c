/* NetworkManager and the bridge: when NM manages the host interface, it
 * would fight a bridge made under it (taking H's addresses back, or the
 * bridge's). The original stopped NetworkManager for the whole host; here
 * only H and the bridge are marked unmanaged for the run, and H is handed
 * back afterwards. nmcli is run with fork/execve, never through a shell;
 * $VFIO_NMCLI names another binary (the tests' fake). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "net-priv.h"
#include "util.h"
#include "vfioenv.h"

static const char *
nm_binary(void)
{
	const char *s = vfioenv_get("VFIO_NMCLI");

	return s != NULL && *s != '\0' ? s : "/usr/bin/nmcli";
}

/* Run nmcli with ARGS (NULL-terminated, without argv[0]); its output
 * (stdout and stderr) in *out. Returns the exit status, 127 when nmcli
 * cannot be run, or -errno when fork/pipe fail. */
static int
nm_run(const char *const *args, char **out, struct verr *err)
{
	const char *bin = nm_binary();
	struct strv argv = { 0 };
	struct strbuf sb = { 0 };
	int pfd[2], status;
	pid_t pid;
	char buf[512];
	ssize_t n;

	*out = NULL;
	if (access(bin, X_OK) != 0) {
		*out = xasprintf("%s: %s", bin, strerror(errno));
		return 127;
	}
	strv_push(&argv, bin);
	for (; *args != NULL; args++)
		strv_push(&argv, *args);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		strv_free(&argv);
		return verr_set(err, -errno, "cannot run %s: pipe: %s", bin, strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(pfd[0]);
		close(pfd[1]);
		strv_free(&argv);
		return verr_set(err, -e, "cannot run %s: fork: %s", bin, strerror(e));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execve(bin, argv.v, environ);
		_exit(127);
	}
	close(pfd[1]);
	strv_free(&argv);
	for (;;) {
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		strbuf_add(&sb, buf, (size_t)n);
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			strbuf_free(&sb);
			return verr_set(err, -errno, "cannot wait for %s: %s", bin, strerror(errno));
		}
	}
	strbuf_puts(&sb, "");
	*out = strbuf_steal(&sb);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int
net_nm_running(bool *running, struct verr *err)
{
	static const char *const args[] = { "-t", "-f", "RUNNING", "general", NULL };
	char *out = NULL;
	int r;

	*running = false;
	if ((r = nm_run(args, &out, err)) < 0)
		return r;
	/* Not installed (127) or "Error: NetworkManager is not running." */
	*running = r == 0 && strcmp(str_rstrip(out), "running") == 0;
	log_debug("net: NetworkManager %s", *running ? "runs" : "does not run");
	free(out);
	return 0;
}

int
net_nm_managed(const char *iface, bool *managed, struct verr *err)
{
	static const char *const args[] = { "-t", "-f", "DEVICE,STATE", "device", NULL };
	char *out = NULL, *line, *save = NULL;
	size_t il = strlen(iface);
	int r;

	*managed = false;
	if ((r = nm_run(args, &out, err)) < 0)
		return r;
	if (r != 0) {
		verr_set(err, -EIO, "cannot ask NetworkManager whether it manages %s: %s exited "
		    "with %d: %s", iface, nm_binary(), r, str_rstrip(out));
		free(out);
		return -EIO;
	}
	/* Terse lines are "DEVICE:STATE"; ':' in a device name would be "\:",
	 * which Linux interface names do not contain. */
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, iface, il) == 0 && line[il] == ':') {
			*managed = strcmp(str_rstrip(line + il + 1), "unmanaged") != 0;
			break;
		}
	}
	free(out);
	return 0;
}

int
net_nm_set_managed(const char *iface, bool managed, struct verr *err)
{
	const char *args[] = { "device", "set", iface, "managed", managed ? "yes" : "no", NULL };
	char *out = NULL;
	int r;

	if ((r = nm_run(args, &out, err)) < 0)
		return r;
	if (r != 0) {
		verr_set(err, -EIO, "NetworkManager refused to %s %s (%s exited with %d: %s); "
		    "check `nmcli device status`", managed ? "manage" : "let go of", iface,
		    nm_binary(), r, str_rstrip(out));
		free(out);
		return -EIO;
	}
	log_debug("net: NetworkManager %s %s", managed ? "manages" : "no longer manages", iface);
	free(out);
	return 0;
}
