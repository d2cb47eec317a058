/* Detaching a device over QMP against the fake QEMU: over only when
 * DEVICE_DELETED names exactly that id, however late (a wait that runs
 * out reports the removal as pending, it is not forgotten), a second
 * removal joins the first, refusals reported with the device's name. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices.h"
#include "log.h"
#include "qmp.h"
#include "spawn.h"

struct fixture {
	struct event_base *base;
	struct qmp *qmp;
	pid_t pid;
	char scenario[64];
	struct devices devs;
	/* what the detach callback saw */
	bool done;
	int result;
	char msg[512];
	int calls;
};

static void
closed_cb(struct qmp *qmp, const char *why, void *arg)
{
}

static const struct qmp_callbacks cbs = { .closed = closed_cb };

/* DEVICE_DELETED goes to devices_deleted(), as the session's event table sends it. */
static void
route_deleted(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	struct fixture *f = arg;
	devices_deleted(&f->devs, data);
}

static void
start_mock(struct fixture *f, const char *scenario)
{
	const char *b = getenv("VFIO_BUILDDIR");
	if (b == NULL)
		skip();
	char *mock = xasprintf("%s/tests/qmp-mock/qemu-mock", b);
	if (access(mock, X_OK) != 0) {
		free(mock);
		skip();
	}
	snprintf(f->scenario, sizeof(f->scenario), "/tmp/vfio-test-devices-XXXXXX");
	int sfd = mkstemp(f->scenario);
	assert_true(sfd >= 0);
	assert_int_equal(write(sfd, scenario, strlen(scenario)), (ssize_t)strlen(scenario));
	close(sfd);
	setenv("QMP_MOCK_SCENARIO", f->scenario, 1);
	struct strv argv = { 0 };
	strv_push(&argv, mock);
	const char *args[] = { "-machine", "q35", "-nodefaults", "-S", "-m", "64",
		"-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
		"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
		"-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,port=2,addr=0x1c.1" };
	for (size_t i = 0; i < nitems(args); i++)
		strv_push(&argv, args[i]);
	free(mock);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct spawn_req req = { .path = argv.v[0], .argv = &argv, .qmp_fd = sv[1],
		.console_fd = -1, .console_sock_fd = -1, .memlock = spawn_memlock_limit(64) };
	struct verr err = { 0 };
	assert_int_equal(spawn_qemu(&req, &f->pid, &err), 0);
	close(sv[1]);
	strv_free(&argv);
	f->base = event_base_new();
	f->qmp = qmp_new(f->base, sv[0], &cbs, f);
	qmp_subscribe(f->qmp, "DEVICE_DELETED", route_deleted, f);
	assert_int_equal(qmp_wait_ready(f->qmp, 10000, &err), 0);
	devices_init(&f->devs, 2);
}

static void
attach(struct fixture *f, const char *id, const char *bus)
{
	struct verr err = { 0 };
	char *nd = xasprintf("net-%s", id);
	assert_int_equal(qmp_run_sync(f->qmp, "netdev_add", json_pack("{s:s, s:s}", "type", "user",
	    "id", nd), 10000, NULL, &err), 0);
	json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", id,
	    "netdev", nd, "bus", bus);
	assert_int_equal(qmp_run_sync(f->qmp, "device_add", json_deep_copy(args), 10000, NULL, &err), 0);
	devices_attached(&f->devs, args);
	json_decref(args);
	free(nd);
}

static void
cont(struct fixture *f)
{
	struct verr err = { 0 };
	assert_int_equal(qmp_run_sync(f->qmp, "cont", NULL, 10000, NULL, &err), 0);
}

static void
stop_mock(struct fixture *f)
{
	devices_free(&f->devs);
	qmp_free(f->qmp);
	event_base_free(f->base);
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	unlink(f->scenario);
}

static void
detach_cb(const char *id, int result, const char *msg, void *arg)
{
	struct fixture *f = arg;
	f->done = true;
	f->calls++;
	f->result = result;
	snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
	event_base_loopbreak(f->base);
}

static void
run_until_done(struct fixture *f)
{
	while (!f->done)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
}

static void
test_detach_completes_on_deleted_event_for_the_id(void **state)
{
	struct fixture f = { 0 };
	start_mock(&f, "{}");
	attach(&f, "nic0", "rp1");
	cont(&f);
	char buf[16];
	assert_string_equal(devices_free_port(&f.devs, buf, sizeof(buf)), "rp2");
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "nic0", 10000, false, detach_cb, &f), 0);
	run_until_done(&f);
	assert_int_equal(f.result, 0);
	assert_null(devices_find(&f.devs, "nic0"));
	assert_string_equal(devices_free_port(&f.devs, buf, sizeof(buf)), "rp1");
	stop_mock(&f);
}

static void
test_removal_the_guest_ignores_is_pending_and_completes_when_deleted_comes_late(void **state)
{
	struct fixture f = { 0 };
	start_mock(&f, "{\"guest\": {\"ignore_unplug\": true}}");
	attach(&f, "nic0", "rp1");
	cont(&f);
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "nic0", 300, true, detach_cb, &f), 0);
	run_until_done(&f);
	assert_int_equal(f.result, -EINPROGRESS);
	assert_non_null(strstr(f.msg, "nic0: removal pending"));
	/* Still QEMU's: listed as removing, its port still taken. */
	const struct device_entry *e = devices_find(&f.devs, "nic0");
	assert_non_null(e);
	assert_true(e->removing);
	json_t *st = devices_json(&f.devs);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(st, "attached"), 0),
	    "state")), "removing");
	json_decref(st);
	/* A reset completes the unplug (as QEMU 7.2 does): DEVICE_DELETED, late. */
	f.done = false;
	struct verr err = { 0 };
	assert_int_equal(qmp_run_sync(f.qmp, "system_reset", NULL, 10000, NULL, &err), 0);
	run_until_done(&f);
	assert_int_equal(f.result, 0);
	assert_int_equal(f.calls, 2);
	assert_null(devices_find(&f.devs, "nic0"));
	stop_mock(&f);
}

static void
test_detach_refused_by_qemu_names_the_device(void **state)
{
	struct fixture f = { 0 };
	start_mock(&f, "{}");
	cont(&f);
	/* Listed here, unknown to QEMU. */
	json_t *args = json_pack("{s:s, s:s, s:s}", "driver", "vfio-pci", "id", "hostdev-0000-02-00-0", "bus", "rp2");
	devices_attached(&f.devs, args);
	json_decref(args);
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "hostdev-0000-02-00-0", 10000, false, detach_cb, &f),
	    0);
	run_until_done(&f);
	assert_int_equal(f.result, -EIO);
	assert_non_null(strstr(f.msg, "QEMU refused to remove hostdev-0000-02-00-0"));
	const struct device_entry *e = devices_find(&f.devs, "hostdev-0000-02-00-0");
	assert_non_null(e);
	assert_false(e->removing);
	stop_mock(&f);
}

static void
test_second_removal_of_a_device_joins_the_first(void **state)
{
	struct fixture f = { 0 };
	start_mock(&f, "{\"guest\": {\"ignore_unplug\": true}}");
	attach(&f, "nic0", "rp1");
	cont(&f);
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "nic9", 1000, false, detach_cb, &f), -ENOENT);
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "nic0", 60000, false, detach_cb, &f), 0);
	assert_int_equal(devices_detach(&f.devs, f.qmp, f.base, "nic0", 60000, false, detach_cb, &f), 0);
	struct verr err = { 0 };
	assert_int_equal(qmp_run_sync(f.qmp, "system_reset", NULL, 10000, NULL, &err), 0);
	while (f.calls < 2)
		assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
	/* one device_del (the fake refuses a second one), both answered */
	assert_int_equal(f.result, 0);
	assert_int_equal(f.calls, 2);
	stop_mock(&f);
}

int
main(void)
{
	log_init(LOG_LEVEL_ERROR, false);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detach_completes_on_deleted_event_for_the_id),
		cmocka_unit_test(test_removal_the_guest_ignores_is_pending_and_completes_when_deleted_comes_late),
		cmocka_unit_test(test_detach_refused_by_qemu_names_the_device),
		cmocka_unit_test(test_second_removal_of_a_device_joins_the_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
