/* -hostaudio: the invoking user's PipeWire/PulseAudio socket is what QEMU's
 * audiodev gets; when it is not there, `systemctl --user start pipewire
 * pipewire-pulse` runs as that user (a fake systemctl here, which starts a
 * "server" by binding the socket as pipewire-pulse would). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "audio.h"
#include "change.h"
#include "hostroot.h"
#include "memtest.h"
#include "util.h"

#define NOBODY 65534

static void
pipewire_running_needs_no_start_and_uses_its_pulse_socket(void **state)
{
	struct audio_choice a;
	hostroot_init("");
	audio_pick(1000, true, true, &a);
	assert_false(a.start);
	assert_string_equal(a.backend, "pipewire");
	assert_string_equal(a.server, "/run/user/1000/pulse/native");
	assert_string_equal(a.audiodev, "pa,id=audio0,server=unix:/run/user/1000/pulse/native");
}

static void
pulseaudio_alone_is_used_as_it_is(void **state)
{
	struct audio_choice a;
	hostroot_init("");
	audio_pick(1000, false, true, &a);
	assert_false(a.start);
	assert_string_equal(a.backend, "pulseaudio");
}

static void
pipewire_without_its_pulse_socket_or_nothing_at_all_needs_a_start(void **state)
{
	struct audio_choice a;
	hostroot_init("");
	audio_pick(1000, true, false, &a);
	assert_true(a.start);
	audio_pick(1000, false, false, &a);
	assert_true(a.start);
	assert_string_equal(a.backend, "pipewire");
}

struct fx {
	char *root, *bin, *rec;
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
	/* logind makes /run/user/UID for a logged-in user */
	memtest_write(fx->root, "/run/user/.keep", "");
	char *ud = xasprintf("%s/run/user/%d", fx->root, NOBODY);
	if (mkdir(ud, 0700) < 0 || chown(ud, NOBODY, NOBODY) < 0) {
		perror(ud);
		abort();
	}
	free(ud);
	char *body = xasprintf(
	    "{ echo \"uid=$(id -u)\"; echo \"args=$*\"; echo \"xdg=$XDG_RUNTIME_DIR\"; echo \"bus=$DBUS_SESSION_BUS_ADDRESS\"; } > %s/systemctl.out\n"
	    "[ \"$*\" = '--user start pipewire pipewire-pulse' ] || { echo \"fake systemctl: unexpected $*\" >&2; exit 2; }\n"
	    "mkdir -p \"$XDG_RUNTIME_DIR/pulse\"\n"
	    "exec python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \"$XDG_RUNTIME_DIR/pulse/native\"\n",
	    fx->rec);
	char *p = xasprintf("%s/systemctl", fx->bin);
	memtest_script(p, body);
	setenv("VFIO_SYSTEMCTL", p, 1);
	free(p);
	free(body);
	p = xasprintf("%s/failing-systemctl", fx->bin);
	memtest_script(p, "echo 'Failed to connect to bus: No medium found' >&2\nexit 1\n");
	free(p);
	*state = fx;
	return 0;
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
	unsetenv("VFIO_SYSTEMCTL");
	return 0;
}

/* The change as the plan gets it from audio_change(). */
static json_t *
user_audio_change(void)
{
	json_t *c = audio_change(NOBODY, NOBODY, "/run/vfio/test");
	assert_string_equal(json_string_value(json_object_get(c, "target")), "/run/user/65534/pulse/native");
	return c;
}

static void
a_missing_server_is_started_through_systemctl_as_the_user(void **state)
{
	struct fx *fx = *state;
	json_t *c = user_audio_change(), *saved = NULL;
	const struct change_ops *o = change_find("user-audio-start");
	assert_non_null(o);
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	if (o->apply(c, saved, &err) < 0)
		fail_msg("%s", err.msg);
	char *p = xasprintf("%s/systemctl.out", fx->rec);
	char *rec = host_read(p, NULL);
	assert_non_null(rec);
	char *want = xasprintf("uid=65534\nargs=--user start pipewire pipewire-pulse\nxdg=%s/run/user/65534\n"
	    "bus=unix:path=%s/run/user/65534/bus\n", fx->root, fx->root);
	assert_string_equal(rec, want);
	bool pw, pa;
	audio_probe(NOBODY, &pw, &pa);
	assert_true(pa);
	/* the user's server is theirs: undo leaves it */
	assert_int_equal(o->undo(c, saved, &err), 0);
	audio_probe(NOBODY, &pw, &pa);
	assert_true(pa);
	free(want);
	free(rec);
	free(p);
	json_decref(c);
	json_decref(saved);
}

static void
a_running_server_is_left_alone(void **state)
{
	struct fx *fx = *state;
	char *dir = xasprintf("%s/run/user/%d/pulse", fx->root, NOBODY);
	mkdir(dir, 0700);
	char *sock = xasprintf("%s/native", dir);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	json_t *c = user_audio_change(), *saved = NULL;
	const struct change_ops *o = change_find("user-audio-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), 0);
	char *p = xasprintf("%s/systemctl.out", fx->rec);
	assert_int_equal(access(p, F_OK), -1);     /* systemctl never ran */
	close(s);
	free(p);
	free(sock);
	free(dir);
	json_decref(c);
	json_decref(saved);
}

static void
a_failing_systemctl_is_an_error_that_says_what_to_do(void **state)
{
	struct fx *fx = *state;
	char *p = xasprintf("%s/failing-systemctl", fx->bin);
	setenv("VFIO_SYSTEMCTL", p, 1);
	json_t *c = user_audio_change(), *saved = NULL;
	const struct change_ops *o = change_find("user-audio-start");
	struct verr err = { 0 };
	assert_int_equal(o->prepare(c, &saved, &err), 0);
	assert_int_equal(o->apply(c, saved, &err), -EIO);
	assert_non_null(strstr(err.msg, "exit status 1"));
	assert_non_null(strstr(err.msg, "drop -hostaudio"));
	char *log = memtest_read(fx->root, "/run/vfio/test/audio.log");
	assert_non_null(log);
	assert_non_null(strstr(log, "Failed to connect to bus"));
	free(log);
	free(p);
	json_decref(c);
	json_decref(saved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pipewire_running_needs_no_start_and_uses_its_pulse_socket),
		cmocka_unit_test(pulseaudio_alone_is_used_as_it_is),
		cmocka_unit_test(pipewire_without_its_pulse_socket_or_nothing_at_all_needs_a_start),
	};
	const struct CMUnitTest root_tests[] = {
		cmocka_unit_test_setup_teardown(a_missing_server_is_started_through_systemctl_as_the_user, setup, teardown),
		cmocka_unit_test_setup_teardown(a_running_server_is_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(a_failing_systemctl_is_an_error_that_says_what_to_do, setup, teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (getuid() != 0) {
		fprintf(stderr, "test-mem-audio: the systemctl tests need root (to run as uid %d); skipped\n", NOBODY);
		return r;
	}
	return r + cmocka_run_group_tests(root_tests, NULL, NULL);
}
