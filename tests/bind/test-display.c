/* The graphical side of giving a GPU away: who holds the card, stopping and
 * restarting the display manager, consoles, framebuffer and other users. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "display.h"
#include "snapshot.h"
#include "testutil.h"
#include "util.h"

#define GPU "0000:01:00.0"

static void
assert_contains(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", hay ? hay : "(null)", needle);
}

static void
holders_are_found_through_dri_and_nvidia_nodes(void **state)
{
	char *root = fixture_new("desktop");
	fixture_write(root, "/dev/nvidia0", "", 0666);
	fixture_write(root, "/dev/nvidiactl", "", 0666);
	const char *xorg[] = { "/usr/lib/xorg/Xorg", ":0", NULL };
	const char *cuda[] = { "python3", "train.py", NULL };
	const char *sh[] = { "bash", NULL };
	fixture_proc(root, 1500, "Xorg", xorg, 0, "/dev/dri/card0");
	fixture_proc(root, 2000, "python3", cuda, 1000, "/dev/nvidia0");
	fixture_proc(root, 3000, "bash", sh, 1000, "/dev/pts/0");
	struct display_holders hs;
	struct verr err = { 0 };
	assert_int_equal(display_find_holders(GPU, &hs, &err), 0);
	assert_int_equal(hs.n, 2);
	for (size_t i = 0; i < hs.n; i++) {
		if (hs.v[i].pid == 1500) {
			assert_true(hs.v[i].compositor);
			assert_string_equal(hs.v[i].file, "/dev/dri/card0");
			assert_int_equal(hs.v[i].uid, 0);
		} else {
			assert_int_equal(hs.v[i].pid, 2000);
			assert_false(hs.v[i].compositor);
			assert_string_equal(hs.v[i].file, "/dev/nvidia0");
			assert_int_equal(hs.v[i].uid, 1000);
			assert_int_equal(hs.v[i].argv.n, 2);
			assert_string_equal(hs.v[i].argv.v[1], "train.py");
		}
	}
	display_holders_free(&hs);
	char *desc = display_describe_holders(GPU);
	assert_contains(desc, "1500 Xorg (uid 0, /dev/dri/card0): /usr/lib/xorg/Xorg :0");
	assert_contains(desc, "2000 python3 (uid 1000, /dev/nvidia0): python3 train.py");
	free(desc);
	fixture_free(root);
}

static void
a_process_on_the_other_card_does_not_hold_this_one(void **state)
{
	char *root = fixture_new("shared-group");
	const char *xorg[] = { "/usr/lib/xorg/Xorg", ":0", NULL };
	fixture_proc(root, 1500, "Xorg", xorg, 0, "/dev/dri/card0");
	struct display_holders hs;
	assert_int_equal(display_find_holders("0000:02:00.0", &hs, NULL), 0);
	assert_int_equal(hs.n, 0);
	display_holders_free(&hs);
	char *desc = display_describe_holders("0000:02:00.0");
	assert_string_equal(desc, "");
	free(desc);
	assert_int_equal(display_find_holders("0000:01:00.0", &hs, NULL), 0);
	assert_int_equal(hs.n, 1);
	display_holders_free(&hs);
	fixture_free(root);
}

static void
compositors_are_recognised_by_their_command_name(void **state)
{
	const char *yes[] = { "Xorg", "X", "gnome-shell", "kwin_wayland", "sway", "weston", "Hyprland" };
	const char *no[] = { "bash", "Xorgx", "python3", "" };
	for (size_t i = 0; i < nitems(yes); i++)
		assert_true(display_is_compositor(yes[i]));
	for (size_t i = 0; i < nitems(no); i++)
		assert_false(display_is_compositor(no[i]));
}

static json_t *
dm_change(void)
{
	return json_pack("{ss ss}", "action", "display-manager-stop", "target", "display-manager.service");
}

static void
display_manager_is_stopped_and_started_again(void **state)
{
	char *root = fixture_new("desktop");
	setenv("VFIO_SYSTEMCTL", helper_path("fake-systemctl"), 1);
	json_t *c = dm_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_manager_stop_ops.prepare(c, &s, &err), 0);
	assert_int_equal(child_run(display_manager_stop_ops.apply, c, s, 5000, &err), 0);
	char *st = fixture_read(root, "/.drvcore/units/display-manager.service");
	assert_string_equal(st, "inactive\n");
	free(st);
	assert_int_equal(child_run(display_manager_stop_ops.undo, c, s, 5000, &err), 0);
	char *log = fixture_read(root, "/.drvcore/systemctl.log");
	assert_string_equal(log, "is-active --quiet display-manager.service\nstop display-manager.service\n"
	    "start display-manager.service\n");
	free(log);
	unsetenv("VFIO_SYSTEMCTL");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
stopping_the_display_manager_ends_the_session_that_held_the_card(void **state)
{
	char *root = fixture_new("desktop");
	const char *xorg[] = { "/usr/lib/xorg/Xorg", ":0", NULL };
	fixture_proc(root, 1500, "Xorg", xorg, 0, "/dev/dri/card0");
	char *before = tree_snapshot(root);
	setenv("VFIO_SYSTEMCTL", helper_path("fake-systemctl"), 1);
	json_t *c = dm_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_manager_stop_ops.prepare(c, &s, &err), 0);
	assert_int_equal(child_run(display_manager_stop_ops.apply, c, s, change_deadline_ms(&display_manager_stop_ops, c, s, 0), &err), 0);
	char *who = display_describe_holders(GPU);
	assert_string_equal(who, "");
	free(who);
	assert_int_equal(child_run(display_manager_stop_ops.undo, c, s, change_deadline_ms(&display_manager_stop_ops, c, s, 0), &err), 0);
	who = display_describe_holders(GPU);
	assert_contains(who, "1500 Xorg");
	free(who);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	unsetenv("VFIO_SYSTEMCTL");
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
display_manager_that_was_not_running_is_not_started_at_teardown(void **state)
{
	char *root = fixture_new("desktop");
	fixture_write(root, "/.drvcore/units/display-manager.service", "inactive\n", 0644);
	setenv("VFIO_SYSTEMCTL", helper_path("fake-systemctl"), 1);
	json_t *c = dm_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_manager_stop_ops.prepare(c, &s, &err), 0);
	assert_int_equal(display_manager_stop_ops.apply(c, s, &err), 0);
	assert_int_equal(display_manager_stop_ops.undo(c, s, &err), 0);
	char *log = fixture_read(root, "/.drvcore/systemctl.log");
	assert_string_equal(log, "is-active --quiet display-manager.service\n");
	free(log);
	unsetenv("VFIO_SYSTEMCTL");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
display_manager_that_will_not_stop_is_reported(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "systemctl-fail stop");
	setenv("VFIO_SYSTEMCTL", helper_path("fake-systemctl"), 1);
	json_t *c = dm_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_manager_stop_ops.prepare(c, &s, &err), 0);
	assert_int_equal(display_manager_stop_ops.apply(c, s, &err), -EIO);
	assert_contains(err.msg, "systemctl stop display-manager.service failed (exit 1): Job for "
	    "display-manager.service failed");
	unsetenv("VFIO_SYSTEMCTL");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
display_manager_under_a_host_root_needs_a_systemctl_override(void **state)
{
	char *root = fixture_new("desktop");
	unsetenv("VFIO_SYSTEMCTL");
	json_t *c = dm_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_manager_stop_ops.prepare(c, &s, &err), -ENOTSUP);
	assert_contains(err.msg, "set VFIO_SYSTEMCTL");
	assert_null(s);
	json_decref(c);
	fixture_free(root);
}

/* fbcon's consoles are read, not assumed: bound ones only, in vtconN order
 * (10 after 1), whichever N they are. */
static void
fbcon_consoles_are_the_bound_frame_buffer_ones(void **state)
{
	char *root = fixture_new("desktop");
	char got[SNAPSHOT_MAX_FBCONS][48];
	assert_int_equal(display_fbcon_scan(got, SNAPSHOT_MAX_FBCONS), 1);
	assert_string_equal(got[0], "/sys/class/vtconsole/vtcon1");
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon10/name", "(M) frame buffer device\n", 0444);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon10/bind", "1\n", 0644);
	fixture_symlink(root, "/sys/class/vtconsole/vtcon10", "../../devices/virtual/vtconsole/vtcon10");
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon2/name", "(M) frame buffer device\n", 0444);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon2/bind", "0\n", 0644);
	fixture_symlink(root, "/sys/class/vtconsole/vtcon2", "../../devices/virtual/vtconsole/vtcon2");
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon0/name", "(S) VGA+\n", 0444);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon0/bind", "1\n", 0644);
	assert_int_equal(display_fbcon_scan(got, SNAPSHOT_MAX_FBCONS), 2);
	assert_string_equal(got[0], "/sys/class/vtconsole/vtcon1");
	assert_string_equal(got[1], "/sys/class/vtconsole/vtcon10");
	assert_int_equal(display_fbcon_scan(got, 1), 1);
	fixture_free(root);
}

static void
virtual_console_is_unbound_and_bound_again(void **state)
{
	char *root = fixture_new("desktop");
	fixture_console(root);
	char *before = tree_snapshot(root);
	json_t *c = json_pack("{ss ss}", "action", "vtcon-unbind", "target", "/sys/class/vtconsole/vtcon1");
	json_t *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_vtcon_unbind_ops.prepare(c, &s, &err), 0);
	assert_int_equal(display_vtcon_unbind_ops.apply(c, s, &err), 0);
	char *v = fixture_read(root, "/sys/class/vtconsole/vtcon1/bind");
	assert_string_equal(v, "0\n");
	free(v);
	assert_int_equal(display_vtcon_unbind_ops.undo(c, s, &err), 0);
	assert_int_equal(display_vtcon_unbind_ops.undo(c, s, &err), 0);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
virtual_console_that_was_unbound_stays_unbound(void **state)
{
	char *root = fixture_new("desktop");
	fixture_console(root);
	fixture_write(root, "/sys/devices/virtual/vtconsole/vtcon1/bind", "0\n", 0644);
	json_t *c = json_pack("{ss ss}", "action", "vtcon-unbind", "target", "/sys/class/vtconsole/vtcon1");
	json_t *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_vtcon_unbind_ops.prepare(c, &s, &err), 0);
	assert_int_equal(display_vtcon_unbind_ops.apply(c, s, &err), 0);
	assert_int_equal(display_vtcon_unbind_ops.undo(c, s, &err), 0);
	char *v = fixture_read(root, "/sys/class/vtconsole/vtcon1/bind");
	assert_string_equal(v, "0\n");
	free(v);
	json_decref(c);
	json_decref(s);
	c = json_pack("{ss ss}", "action", "vtcon-unbind", "target", "/etc/passwd");
	s = NULL;
	assert_int_equal(display_vtcon_unbind_ops.prepare(c, &s, &err), -EINVAL);
	assert_contains(err.msg, "\"/etc/passwd\" is not a virtual console");
	json_decref(c);
	fixture_free(root);
}

static void
efi_framebuffer_is_unbound_and_bound_again(void **state)
{
	char *root = fixture_new("desktop");
	fixture_console(root);
	char *before = tree_snapshot(root);
	json_t *c = json_pack("{ss ss}", "action", "efifb-unbind", "target", "efi-framebuffer.0");
	json_t *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_efifb_unbind_ops.prepare(c, &s, &err), 0);
	assert_int_equal(display_efifb_unbind_ops.apply(c, s, &err), 0);
	assert_false(fixture_exists(root, "/sys/devices/platform/efi-framebuffer.0/driver"));
	assert_false(fixture_exists(root, "/sys/bus/platform/drivers/efi-framebuffer/efi-framebuffer.0"));
	assert_int_equal(display_efifb_unbind_ops.apply(c, s, &err), 0);	/* again: no error */
	assert_int_equal(display_efifb_unbind_ops.undo(c, s, &err), 0);
	assert_int_equal(display_efifb_unbind_ops.undo(c, s, &err), 0);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static pid_t
spawn_sleeper(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	/* wait until it is sleep, not our fork */
	for (int i = 0; i < 200; i++) {
		char path[64], comm[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strcmp(comm, "sleep\n") == 0)
			return pid;
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
	}
	fail_msg("the sleeper did not start");
	return -1;
}

static void
other_gpu_users_are_stopped_and_started_again_as_their_user(void **state)
{
	if (getuid() != 0)
		skip();	/* starting a process as another user needs root */
	char *root = fixture_new("desktop");
	fixture_write(root, "/dev/nvidia0", "", 0666);
	char *dir = xasprintf("%s/tmp/restart", root);
	mkdir(dir, 0777);
	chmod(dir, 0777);
	char *top = xstrdup(root);
	*strrchr(top, '/') = '\0';
	chmod(top, 0755);	/* mkdtemp's 0700 would keep uid 65534 out */
	char *marker = xasprintf("%s/started", dir);
	pid_t pid = spawn_sleeper();
	/* the fake /proc entry for the real sleeper: its saved argv is what
	 * teardown runs again, here a program that records its environment */
	const char *argv[] = { "/bin/sh", "-c", "echo \"$HOME $GPU_JOB\" > \"$1\"", "sh", marker, NULL };
	fixture_proc(root, (int)pid, "sleep", argv, 65534, "/dev/nvidia0");
	char envpath[64];
	snprintf(envpath, sizeof(envpath), "/proc/%d/environ", (int)pid);
	char *full = xasprintf("%s%s", root, envpath);
	FILE *ef = fopen(full, "w");
	assert_non_null(ef);
	static const char env[] = "HOME=/home/render\0GPU_JOB=42\0PATH=/usr/bin:/bin\0";
	fwrite(env, 1, sizeof(env) - 1, ef);
	fclose(ef);
	free(full);
	const char *xorg[] = { "/usr/lib/xorg/Xorg", ":0", NULL };
	fixture_proc(root, 999999, "Xorg", xorg, 0, "/dev/dri/card0");
	json_t *c = json_pack("{ss ss}", "action", "gpu-users-stop", "target", GPU), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(display_gpu_users_stop_ops.prepare(c, &s, &err), 0);
	json_t *procs = json_object_get(s, "procs");
	assert_int_equal(json_array_size(procs), 1);	/* Xorg is the display manager's */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(procs, 0), "uid")), 65534);
	if (child_run(display_gpu_users_stop_ops.apply, c, s, 10000, &err) != 0)
		fail_msg("%s", err.msg);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	if (child_run(display_gpu_users_stop_ops.undo, c, s, 10000, &err) != 0)
		fail_msg("%s", err.msg);
	struct stat sb;
	int tries = 0;
	while (stat(marker, &sb) < 0 && tries++ < 500) {
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(stat(marker, &sb), 0);
	assert_int_equal(sb.st_uid, 65534);
	for (tries = 0; sb.st_size == 0 && tries < 500; tries++) {	/* written after creation */
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
		stat(marker, &sb);
	}
	char *got = fixture_read("", marker);
	assert_string_equal(got, "/home/render 42\n");
	free(got);
	json_decref(c);
	json_decref(s);
	free(marker);
	free(dir);
	free(top);
	fixture_free(root);
}

static void
a_user_whose_program_cannot_be_found_is_reported_at_teardown(void **state)
{
	char *root = fixture_new("desktop");
	json_t *c = json_pack("{ss ss}", "action", "gpu-users-stop", "target", GPU);
	json_t *s = json_pack("{s[{si ss si si s[s] ss}]}", "procs", "pid", 999999, "comm", "gone-app",
	    "uid", 0, "gid", 0, "argv", "no-such-program-vfio-test", "cwd", "/");
	struct verr err = { 0 };
	assert_int_equal(display_gpu_users_stop_ops.apply(c, s, &err), 0);	/* not running: nothing to stop */
	assert_int_equal(display_gpu_users_stop_ops.undo(c, s, &err), -ENOENT);
	assert_contains(err.msg, "cannot start gone-app again: no-such-program-vfio-test is not in PATH");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(holders_are_found_through_dri_and_nvidia_nodes),
		cmocka_unit_test(a_process_on_the_other_card_does_not_hold_this_one),
		cmocka_unit_test(compositors_are_recognised_by_their_command_name),
		cmocka_unit_test(display_manager_is_stopped_and_started_again),
		cmocka_unit_test(stopping_the_display_manager_ends_the_session_that_held_the_card),
		cmocka_unit_test(display_manager_that_was_not_running_is_not_started_at_teardown),
		cmocka_unit_test(display_manager_that_will_not_stop_is_reported),
		cmocka_unit_test(display_manager_under_a_host_root_needs_a_systemctl_override),
		cmocka_unit_test(fbcon_consoles_are_the_bound_frame_buffer_ones),
		cmocka_unit_test(virtual_console_is_unbound_and_bound_again),
		cmocka_unit_test(virtual_console_that_was_unbound_stays_unbound),
		cmocka_unit_test(efi_framebuffer_is_unbound_and_bound_again),
		cmocka_unit_test(other_gpu_users_are_stopped_and_started_again_as_their_user),
		cmocka_unit_test(a_user_whose_program_cannot_be_found_is_reported_at_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
