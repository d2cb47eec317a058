/* Companions: fake swtpm / remote-viewer / looking-glass-client programs
 * (shell scripts written here) started as the right user, stopped at
 * teardown, found again after a crash by pid and start time, never confused
 * with an unrelated process that got the same pid. Plus the Looking Glass
 * shared memory file and, when installed, the real swtpm. Needs root (to
 * start programs as uid 65534); skips otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "companion.h"
#include "hostroot.h"
#include "lgshm.h"
#include "memtest.h"
#include "tpm.h"
#include "util.h"

#define NOBODY 65534

struct fx {
	char *root;      /* host root: /run/vfio/test, /var/lib, /dev/shm */
	char *bin;       /* fake programs */
	char *rec;       /* what they record (writable by anyone) */
};

static int
setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof(*fx));
	fx->root = memtest_tmpdir();
	fx->bin = memtest_tmpdir();
	fx->rec = memtest_tmpdir();
	chmod(fx->rec, 0777);
	hostroot_init(fx->root);
	memtest_write(fx->root, "/run/vfio/test/.keep", "");
	memtest_write(fx->root, "/var/lib/.keep", "");
	memtest_write(fx->root, "/dev/shm/.keep", "");
	char *body = xasprintf(
	    "out=%s/$(basename \"$0\").out\n"
	    "echo started\n"
	    "{ echo \"uid=$(id -u) gid=$(id -g)\"; echo \"args=$*\"; echo \"display=$DISPLAY home=$HOME\"; } > \"$out.tmp\"\n"
	    "mv \"$out.tmp\" \"$out\"\n"
	    "exec sleep 1000\n", fx->rec);
	const char *viewers[] = { "remote-viewer", "looking-glass-client" };
	for (size_t i = 0; i < nitems(viewers); i++) {
		char *p = xasprintf("%s/%s", fx->bin, viewers[i]);
		memtest_script(p, body);
		free(p);
	}
	free(body);
	/* swtpm: creates its control socket as the real one does */
	body = xasprintf(
	    "out=%s/swtpm.out\n"
	    "{ echo \"uid=$(id -u) gid=$(id -g)\"; echo \"args=$*\"; } > \"$out.tmp\"; mv \"$out.tmp\" \"$out\"\n"
	    "[ \"$1\" = socket ] || { echo \"fake swtpm: unexpected '$1'\" >&2; exit 2; }\n"
	    "sock=; state=\n"
	    "while [ $# -gt 0 ]; do case \"$1\" in\n"
	    "  --ctrl) sock=${2#type=unixio,path=}; shift;;\n"
	    "  --tpmstate) state=${2#dir=}; shift;;\n"
	    "  socket|--tpm2) ;;\n"
	    "  *) echo \"fake swtpm: unexpected '$1'\" >&2; exit 2;;\n"
	    "esac; shift; done\n"
	    "[ -d \"$state\" ] || { echo \"fake swtpm: no state dir $state\" >&2; exit 3; }\n"
	    "exec python3 -c 'import socket,sys,time\n"
	    "s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); time.sleep(1000)' \"$sock\"\n", fx->rec);
	char *p = xasprintf("%s/swtpm", fx->bin);
	memtest_script(p, body);
	free(p);
	free(body);
	p = xasprintf("%s/stubborn", fx->bin);
	memtest_script(p, "trap '' TERM\nexec sleep 1000\n");
	free(p);
	p = xasprintf("%s/broken-swtpm", fx->bin);
	memtest_script(p, "echo 'swtpm: --tpmstate: bad directory' >&2\nexit 1\n");
	free(p);
	*state = fx;
	return getuid() == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	memtest_rmtree(fx->root);
	memtest_rmtree(fx->bin);
	memtest_rmtree(fx->rec);
	free(fx->root);
	free(fx->bin);
	free(fx->rec);
	free(fx);
	unsetenv("VFIO_SWTPM");
	return 0;
}

static bool
alive(pid_t pid)
{
	char st;
	unsigned long long t;
	return companion_proc_stat(pid, &t, &st) == 0 && st != 'Z';
}

static uid_t
proc_uid(pid_t pid)
{
	char *p = xasprintf("/proc/%d/status", (int)pid);
	char *s = host_read(p, NULL);
	free(p);
	assert_non_null(s);
	char *u = strstr(s, "\nUid:");
	assert_non_null(u);
	uid_t uid = (uid_t)strtoul(u + 5, NULL, 10);
	free(s);
	return uid;
}

static char *
record(struct fx *fx, const char *prog)
{
	char *p = xasprintf("%s/%s.out", fx->rec, prog);
	if (!memtest_wait_file(p, 10000))
		fail_msg("%s never ran", prog);
	char *s = host_read(p, NULL);
	free(p);
	return s;
}

static void
a_viewer_starts_as_the_invoking_user_and_stops_at_teardown(void **state)
{
	struct fx *fx = *state;
	char *prog = xasprintf("%s/remote-viewer", fx->bin);
	char *argv[] = { prog, "spice+unix:///run/vfio/test/spice.sock", NULL };
	char *env[] = { "DISPLAY=:7", NULL };
	char *log = xasprintf("%s/run/vfio/test/remote-viewer.log", fx->root);
	char *pidf = xasprintf("%s/run/vfio/test/remote-viewer.pid", fx->root);
	struct companion_spec spec = { "remote-viewer", argv, env, NOBODY, NOBODY, log, pidf };
	struct companion_proc proc;
	struct verr err = { 0 };
	assert_int_equal(companion_start(&spec, &proc, &err), 0);
	char *rec = record(fx, "remote-viewer");
	assert_non_null(strstr(rec, "uid=65534 gid=65534\n"));
	assert_non_null(strstr(rec, "args=spice+unix:///run/vfio/test/spice.sock\n"));
	assert_non_null(strstr(rec, "display=:7"));
	assert_int_equal(proc_uid(proc.pid), NOBODY);
	/* its output goes to the log in the runtime directory */
	char *l = host_read(log, NULL);
	assert_string_equal(l, "started\n");
	char *pf = host_read(pidf, NULL);
	char *want = xasprintf("%d %llu\n", (int)proc.pid, proc.starttime);
	assert_string_equal(pf, want);

	assert_int_equal(companion_stop_pidfile(pidf, COMPANION_STOP_MS, &err), 0);
	assert_false(alive(proc.pid));
	assert_int_equal(kill(proc.pid, 0), -1);    /* reaped, not a zombie */
	assert_int_equal(access(pidf, F_OK), -1);
	free(want);
	free(pf);
	free(l);
	free(rec);
	free(log);
	free(pidf);
	free(prog);
}

static void
a_companion_ignoring_sigterm_is_killed_after_the_bound(void **state)
{
	struct fx *fx = *state;
	char *prog = xasprintf("%s/stubborn", fx->bin);
	char *argv[] = { prog, NULL };
	struct companion_spec spec = { "stubborn", argv, NULL, NOBODY, NOBODY, NULL, NULL };
	struct companion_proc proc;
	struct verr err = { 0 };
	assert_int_equal(companion_start(&spec, &proc, &err), 0);
	/* let the shell get to its trap before the signal */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)proc.pid);
	for (int i = 0; i < 500; i++) {
		char *exe = host_readlink(path);
		bool is_sleep = exe && strstr(exe, "sleep");
		free(exe);
		if (is_sleep)
			break;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(companion_stop(&proc, 300, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 290);
	assert_false(alive(proc.pid));
	free(prog);
}

static json_t *
viewer_change(struct fx *fx, const char *name)
{
	struct strv argv = { 0 };
	strv_pushf(&argv, "%s/%s", fx->bin, name);
	strv_push(&argv, "-f");
	json_t *c = companion_viewer_change(name, &argv, NOBODY, NOBODY, "/run/vfio/test", ":0", NULL);
	strv_free(&argv);
	return c;
}

static pid_t
pidfile_pid(struct fx *fx, const char *name)
{
	char *p = xasprintf("%s/run/vfio/test/%s.pid", fx->root, name);
	char *s = host_read(p, NULL);
	free(p);
	if (s == NULL)
		return -1;
	pid_t pid = (pid_t)atoi(s);
	free(s);
	return pid;
}

static void
companion_start_change_starts_and_undo_stops(void **state)
{
	struct fx *fx = *state;
	json_t *c = viewer_change(fx, "looking-glass-client"), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	assert_non_null(o);
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	char *rec = record(fx, "looking-glass-client");
	assert_non_null(strstr(rec, "uid=65534 gid=65534\n"));
	assert_non_null(strstr(rec, "args=-f\n"));
	assert_non_null(strstr(rec, "display=:0 home="));
	pid_t pid = pidfile_pid(fx, "looking-glass-client");
	assert_true(pid > 0 && alive(pid));
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_false(alive(pid));
	assert_int_equal(pidfile_pid(fx, "looking-glass-client"), -1);
	assert_int_equal(o->undo(c, saved, &err), 0);     /* idempotent */
	free(rec);
	json_decref(c);
	json_decref(saved);
}

static void
restore_after_a_crash_finds_and_stops_the_companion(void **state)
{
	struct fx *fx = *state;
	/* The crashed supervisor: a child that starts the companion and dies
	 * without undoing anything. We adopt its orphans, as init would. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	json_t *c = viewer_change(fx, "remote-viewer"), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	char *journal = json_dumps(saved, 0);
	pid_t sup = fork();
	if (sup == 0)
		_exit(o->apply(c, saved, &err) == 0 ? 0 : 1);
	int status;
	waitpid(sup, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pid_t pid = pidfile_pid(fx, "remote-viewer");
	assert_true(pid > 0 && alive(pid));

	/* vfio -restore: only the journal */
	json_t *back = json_loads(journal, 0, NULL);
	assert_int_equal(o->undo(c, back, &err), 0);
	assert_false(alive(pid));
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	free(journal);
	json_decref(back);
	json_decref(c);
	json_decref(saved);
}

static void
restore_leaves_an_unrelated_process_that_reuses_the_pid_alone(void **state)
{
	struct fx *fx = *state;
	pid_t other = fork();
	if (other == 0) {
		execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	unsigned long long st;
	char s;
	for (int i = 0; i < 100 && companion_proc_stat(other, &st, &s) < 0; i++)
		;
	assert_int_equal(companion_proc_stat(other, &st, &s), 0);
	/* The journal's companion had this pid but started at another time. */
	char *line = xasprintf("%d %llu\n", (int)other, st + 1);
	memtest_write(fx->root, "/run/vfio/test/remote-viewer.pid", line);
	json_t *c = viewer_change(fx, "remote-viewer");
	json_t *saved = json_pack("{s:s}", "pidfile", "/run/vfio/test/remote-viewer.pid");
	struct verr err = { 0 };
	assert_int_equal(change_find("companion-start")->undo(c, saved, &err), 0);
	assert_true(alive(other));
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	free(line);
	json_decref(c);
	json_decref(saved);
}

static void
undo_of_a_companion_that_already_exited_just_clears_its_pid_file(void **state)
{
	struct fx *fx = *state;
	json_t *c = viewer_change(fx, "remote-viewer"), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	pid_t pid = pidfile_pid(fx, "remote-viewer");
	free(record(fx, "remote-viewer"));
	/* the user closed the viewer window */
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_int_equal(pidfile_pid(fx, "remote-viewer"), -1);
	json_decref(c);
	json_decref(saved);
}

static void
a_log_that_cannot_be_created_is_named_in_the_error(void **state)
{
	struct fx *fx = *state;
	struct strv argv = { 0 };
	strv_pushf(&argv, "%s/remote-viewer", fx->bin);
	json_t *c = companion_change("remote-viewer", &argv, NOBODY, NOBODY, "/run/vfio/missing", NULL), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot open its log"));
	assert_non_null(strstr(err.msg, "/run/vfio/missing/remote-viewer.log"));
	char *out = xasprintf("%s/remote-viewer.out", fx->rec);
	assert_int_equal(access(out, F_OK), -1);      /* nothing ran */
	free(out);
	strv_free(&argv);
	json_decref(c);
	json_decref(saved);
}

static void
a_missing_program_is_refused_before_anything_starts(void **state)
{
	struct fx *fx = *state;
	struct strv argv = { 0 };
	strv_push(&argv, "no-such-viewer-anywhere");
	json_t *c = companion_change("viewer", &argv, NOBODY, NOBODY, "/run/vfio/test", NULL), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(change_find("companion-start")->prepare(c, &saved, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'no-such-viewer-anywhere' not found"));
	assert_null(saved);
	(void)fx;
	strv_free(&argv);
	json_decref(c);
}

static void
swtpm_starts_with_its_socket_and_state_kept_across_runs(void **state)
{
	struct fx *fx = *state;
	char *fake = xasprintf("%s/swtpm", fx->bin);
	setenv("VFIO_SWTPM", fake, 1);
	json_t *c = tpm_change("test", "/run/vfio/test", "/run/vfio/test/swtpm.sock", 0, 0), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	for (int run = 0; run < 2; run++) {
		if (o->prepare(c, &saved, &err) < 0 || o->apply(c, saved, &err) < 0)
			fail_msg("run %d: %s", run, err.msg);
		/* apply returns once the control socket is there */
		char *sock = xasprintf("%s/run/vfio/test/swtpm.sock", fx->root);
		struct stat st;
		assert_int_equal(stat(sock, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		char *rec = record(fx, "swtpm");
		char *want = xasprintf("args=socket --tpmstate dir=%s/var/lib/vfio/test/tpm --ctrl type=unixio,path=%s --tpm2\n",
		    fx->root, sock);
		assert_non_null(strstr(rec, want));
		char *dir = xasprintf("%s/var/lib/vfio/test/tpm", fx->root);
		assert_int_equal(stat(dir, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		pid_t pid = pidfile_pid(fx, "swtpm");
		assert_int_equal(o->undo(c, saved, &err), 0);
		assert_false(alive(pid));
		assert_int_equal(stat(dir, &st), 0);     /* the TPM's state stays */
		unlink(sock);
		char *out = xasprintf("%s/swtpm.out", fx->rec);
		unlink(out);
		free(out);
		free(dir);
		free(want);
		free(rec);
		free(sock);
		json_decref(saved);
		saved = NULL;
	}
	json_decref(c);
	free(fake);
}

static void
swtpm_that_exits_at_once_fails_the_start_with_its_message(void **state)
{
	struct fx *fx = *state;
	char *fake = xasprintf("%s/broken-swtpm", fx->bin);
	setenv("VFIO_SWTPM", fake, 1);
	json_t *c = tpm_change("test", "/run/vfio/test", "/run/vfio/test/swtpm.sock", 0, 0), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), -ECHILD);
	assert_non_null(strstr(err.msg, "swtpm exited before creating"));
	assert_non_null(strstr(err.msg, "swtpm: --tpmstate: bad directory"));
	assert_int_equal(pidfile_pid(fx, "swtpm"), -1);
	json_decref(c);
	json_decref(saved);
	free(fake);
}

static void
the_real_swtpm_starts_and_stops(void **state)
{
	struct fx *fx = *state;
	if (access("/usr/bin/swtpm", X_OK) != 0)
		skip();
	unsetenv("VFIO_SWTPM");
	json_t *c = tpm_change("test", "/run/vfio/test", "/run/vfio/test/swtpm.sock", 0, 0), *saved = NULL;
	const struct change_ops *o = change_find("companion-start");
	struct verr err = { 0 };
	if (o->prepare(c, &saved, &err) < 0 || o->apply(c, saved, &err) < 0)
		fail_msg("%s", err.msg);
	pid_t pid = pidfile_pid(fx, "swtpm");
	assert_true(alive(pid));
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_false(alive(pid));
	json_decref(c);
	json_decref(saved);
}

static json_t *
lg_change(int size)
{
	return lgshm_change((uint64_t)size, NOBODY, NOBODY);
}

static void
looking_glass_memory_is_sized_owned_by_the_user_and_removed(void **state)
{
	struct fx *fx = *state;
	json_t *c = lg_change(64), *saved = NULL;
	const struct change_ops *o = change_find("lg-shm-create");
	assert_non_null(o);
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	char *p = xasprintf("%s/dev/shm/looking-glass", fx->root);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 64 * 1024 * 1024);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_int_equal(stat(p, &st), -1);
	free(p);
	json_decref(c);
	json_decref(saved);
}

static void
an_existing_looking_glass_file_is_given_back_as_it_was(void **state)
{
	struct fx *fx = *state;
	memtest_write(fx->root, "/dev/shm/looking-glass", "old");
	char *p = xasprintf("%s/dev/shm/looking-glass", fx->root);
	chmod(p, 0600);
	json_t *c = lg_change(32), *saved = NULL;
	const struct change_ops *o = change_find("lg-shm-create");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 32 * 1024 * 1024);
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(p);
	json_decref(c);
	json_decref(saved);
}

#define OTHER_USER 12345

/* A process of OTHER_USER holding path open read-write, as the user who
 * planted the file would: it writes what it gets on *cmd and answers on
 * *ack. */
static pid_t
holder_start(const char *path, int *cmd, int *ack)
{
	int c[2], a[2];
	assert_int_equal(pipe(c), 0);
	assert_int_equal(pipe(a), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setresgid(OTHER_USER, OTHER_USER, OTHER_USER) < 0 || setresuid(OTHER_USER, OTHER_USER, OTHER_USER) < 0)
			_exit(1);
		/* After the uid change, which clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(path, O_RDWR);
		char ok = fd >= 0 ? 'y' : 'n';
		if (write(a[1], &ok, 1) != 1)
			_exit(1);
		char buf[64];
		ssize_t n = read(c[0], buf, sizeof(buf));
		if (n > 0 && pwrite(fd, buf, (size_t)n, 0) != n)
			_exit(1);
		ok = 'w';
		if (write(a[1], &ok, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(c[0]);
	close(a[1]);
	char ok;
	assert_int_equal(read(a[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	*cmd = c[1];
	*ack = a[0];
	return pid;
}

static void
holder_write(pid_t pid, int cmd, int ack, const char *text)
{
	assert_int_equal(write(cmd, text, strlen(text)), (ssize_t)strlen(text));
	char ok;
	assert_int_equal(read(ack, &ok, 1), 1);
	assert_int_equal(ok, 'w');
	waitpid(pid, NULL, 0);
	close(cmd);
	close(ack);
}

static void
another_users_looking_glass_file_is_refused_and_left_alone(void **state)
{
	struct fx *fx = *state;
	memtest_write(fx->root, "/dev/shm/looking-glass", "planted");
	char *p = xasprintf("%s/dev/shm/looking-glass", fx->root);
	assert_int_equal(chown(p, OTHER_USER, OTHER_USER), 0);
	assert_int_equal(chmod(p, 0666), 0);
	int cmd, ack;
	pid_t holder = holder_start(p, &cmd, &ack);
	json_t *c = lg_change(64), *saved = NULL;
	const struct change_ops *o = change_find("lg-shm-create");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), -EPERM);
	assert_non_null(strstr(err.msg, "belongs to uid 12345, not to root or QEMU's user"));
	/* Even without prepare's check, apply does not take it. */
	json_t *none = json_pack("{s:b}", "existed", 0);
	assert_int_equal(o->apply(c, none, &err), -EPERM);
	json_decref(none);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, OTHER_USER);
	assert_int_equal(st.st_size, 7);
	holder_write(holder, cmd, ack, "x");
	free(p);
	json_decref(c);
}

static void
a_looking_glass_file_someone_holds_open_is_replaced_by_a_new_one(void **state)
{
	struct fx *fx = *state;
	/* QEMU's user's own stale file, left writable by anyone, and opened by another user. */
	memtest_write(fx->root, "/dev/shm/looking-glass", "stale");
	char *p = xasprintf("%s/dev/shm/looking-glass", fx->root);
	assert_int_equal(chown(p, NOBODY, NOBODY), 0);
	assert_int_equal(chmod(p, 0666), 0);
	int cmd, ack;
	pid_t holder = holder_start(p, &cmd, &ack);
	json_t *c = lg_change(32), *saved = NULL;
	const struct change_ops *o = change_find("lg-shm-create");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	/* What the other user writes through what it held never reaches the guest's memory. */
	holder_write(holder, cmd, ack, "INJECTED-BY-TESTER2");
	char *mem = host_read(p, NULL);
	assert_non_null(mem);
	assert_int_equal(mem[0], '\0');
	free(mem);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_mode & 0777, 0660);
	/* Given back as it was: QEMU's user's, its size and mode. */
	assert_int_equal(o->undo(c, saved, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(st.st_mode & 0777, 0666);
	free(p);
	json_decref(c);
	json_decref(saved);
}

static void
a_looking_glass_size_that_is_not_a_power_of_two_is_refused(void **state)
{
	struct fx *fx = *state;
	json_t *c = lg_change(48), *saved = NULL;
	struct verr err = { 0 };
	assert_int_equal(change_find("lg-shm-create")->prepare(c, &saved, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-lgsize 48M"));
	char *p = xasprintf("%s/dev/shm/looking-glass", fx->root);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	json_decref(c);
}

int
main(void)
{
	if (getuid() != 0) {
		fprintf(stderr, "test-mem-companion: needs root to start programs as uid %d; skipped\n", NOBODY);
		return 77;
	}
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(a_viewer_starts_as_the_invoking_user_and_stops_at_teardown),
		T(a_companion_ignoring_sigterm_is_killed_after_the_bound),
		T(companion_start_change_starts_and_undo_stops),
		T(restore_after_a_crash_finds_and_stops_the_companion),
		T(restore_leaves_an_unrelated_process_that_reuses_the_pid_alone),
		T(undo_of_a_companion_that_already_exited_just_clears_its_pid_file),
		T(a_log_that_cannot_be_created_is_named_in_the_error),
		T(a_missing_program_is_refused_before_anything_starts),
		T(swtpm_starts_with_its_socket_and_state_kept_across_runs),
		T(swtpm_that_exits_at_once_fails_the_start_with_its_message),
		T(the_real_swtpm_starts_and_stops),
		T(looking_glass_memory_is_sized_owned_by_the_user_and_removed),
		T(an_existing_looking_glass_file_is_given_back_as_it_was),
		T(a_looking_glass_size_that_is_not_a_power_of_two_is_refused),
		T(another_users_looking_glass_file_is_refused_and_left_alone),
		T(a_looking_glass_file_someone_holds_open_is_replaced_by_a_new_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
