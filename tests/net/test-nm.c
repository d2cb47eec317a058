/* bridge-create and NetworkManager: H is taken from NetworkManager only for
 * the run and handed back, through nmcli (a fake that records, from
 * $FAKE_NMCLI via $VFIO_NMCLI). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "net.h"
#include "nstest.h"

static char dir[64];

static void
nm_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *
nm_read(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return slurp(path);
}

static int
setup(void **state)
{
	const char *fake = getenv("FAKE_NMCLI");

	if (fake == NULL || ns_enter() < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/vfio-nm-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	setenv("FAKE_NMCLI_DIR", dir, 1);
	setenv("VFIO_NMCLI", fake, 1);
	lan_make();
	return 0;
}

static int
teardown(void **state)
{
	sh("rm -rf %s", dir);
	return 0;
}

struct run {
	json_t *change, *saved;
	struct verr err;
};

static int
prepare(struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->change = net_change_bridge("br0", "lan0");
	return net_bridge_create_ops.prepare(r->change, &r->saved, &r->err);
}

static void
run_free(struct run *r)
{
	json_decref(r->change);
	json_decref(r->saved);
}

static void
nm_managed_host_is_let_go_for_the_run_and_handed_back(void **state)
{
	struct run r;
	char *log, *dev;

	nm_file("running", "");
	nm_file("devices", "lan0:connected\nlo:unmanaged\n");
	assert_int_equal(prepare(&r), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	dev = nm_read("devices");
	assert_non_null(strstr(dev, "lan0:unmanaged"));
	assert_non_null(strstr(dev, "br0:unmanaged"));
	free(dev);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	log = nm_read("log");
	assert_string_equal(log,
	    "-t -f RUNNING general\n"
	    "-t -f DEVICE,STATE device\n"
	    "device set lan0 managed no\n"
	    "device set br0 managed no\n"
	    "-t -f RUNNING general\n"
	    "device set lan0 managed yes\n");
	dev = nm_read("devices");
	assert_non_null(strstr(dev, "lan0:connected"));
	free(dev);
	free(log);
	run_free(&r);
}

static void
nm_unmanaged_host_is_left_to_itself(void **state)
{
	struct run r;
	char *log;

	nm_file("running", "");
	nm_file("devices", "lan0:unmanaged\n");
	assert_int_equal(prepare(&r), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	log = nm_read("log");
	assert_string_equal(log, "-t -f RUNNING general\n-t -f DEVICE,STATE device\n");
	free(log);
	run_free(&r);
}

static void
nm_stopped_during_the_run_undo_still_restores_the_host(void **state)
{
	struct run r;
	char *before = ns_dump(), *after, *log;

	nm_file("running", "");
	nm_file("devices", "lan0:connected\n");
	assert_int_equal(prepare(&r), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	sh("rm %s/running", dir);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	log = nm_read("log");
	assert_null(strstr(log, "managed yes"));
	free(log);
	free(after);
	free(before);
	run_free(&r);
}

static void
nm_not_running_is_never_asked_about_devices(void **state)
{
	struct run r;
	char *log;

	nm_file("devices", "lan0:connected\n");
	assert_int_equal(prepare(&r), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	log = nm_read("log");
	assert_string_equal(log, "-t -f RUNNING general\n");
	free(log);
	run_free(&r);
}

static void
nm_not_installed_counts_as_not_running(void **state)
{
	struct run r;

	setenv("VFIO_NMCLI", "/nonexistent/nmcli", 1);
	assert_int_equal(prepare(&r), 0);
	assert_false(json_is_true(json_object_get(json_object_get(r.saved, "nm"), "running")));
	run_free(&r);
}

static void
nm_refusing_to_let_go_fails_apply_before_any_link_change(void **state)
{
	struct run r;
	char *before = ns_dump(), *after;

	nm_file("running", "");
	nm_file("devices", "lan0:connected\n");
	assert_int_equal(prepare(&r), 0);
	nm_file("fail-set", "");
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), -EIO);
	assert_non_null(strstr(r.err.msg, "NetworkManager refused to let go of lan0"));
	assert_non_null(strstr(r.err.msg, "permission denied"));
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(after);
	free(before);
	run_free(&r);
}

static void
nm_crash_at_each_step_then_undo_hands_host_back(void **state)
{
	char *before = ns_dump();
	int n;

	nm_file("running", "");
	for (n = 1; n < 100; n++) {
		struct run r;
		char *after, *dev;
		int k;

		nm_file("devices", "lan0:connected\n");
		assert_int_equal(prepare(&r), 0);
		k = apply_crash_at(&net_bridge_create_ops, r.change, r.saved, n);
		assert_true(k >= 0);
		assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
		after = ns_dump_expect(before);
		if (!dump_same(before, after))
			fail_msg("undo after a crash at step %d left the namespace changed", n);
		dev = nm_read("devices");
		if (strstr(dev, "lan0:connected") == NULL)
			fail_msg("after a crash at step %d NetworkManager did not get lan0 back:\n%s", n, dev);
		free(dev);
		free(after);
		run_free(&r);
		if (k == 0)
			break;
	}
	free(before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nm_managed_host_is_let_go_for_the_run_and_handed_back, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_unmanaged_host_is_left_to_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_stopped_during_the_run_undo_still_restores_the_host, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_not_running_is_never_asked_about_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_not_installed_counts_as_not_running, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_refusing_to_let_go_fails_apply_before_any_link_change, setup, teardown),
		cmocka_unit_test_setup_teardown(nm_crash_at_each_step_then_undo_hands_host_back, setup, teardown),
	};

	if (!ns_available()) {
		fprintf(stderr, "skipped: cannot create a network namespace (needs root)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
