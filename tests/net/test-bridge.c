/* bridge-create (-bridge B -hostint H with B missing), on a veth "LAN" in a
 * network namespace of each test's own. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net.h"
#include "nstest.h"

static int
setup(void **state)
{
	if (ns_enter() < 0)
		return -1;
	unsetenv("VFIO_HOST_ROOT");
	/* No NetworkManager in these tests: a binary that cannot run. */
	setenv("VFIO_NMCLI", "/nonexistent/nmcli", 1);
	lan_make();
	return 0;
}

struct run {
	json_t *change, *saved;
	struct verr err;
};

static int
prepare(struct run *r, const char *bridge, const char *hostint)
{
	memset(r, 0, sizeof(*r));
	r->change = net_change_bridge(bridge, hostint);
	return net_bridge_create_ops.prepare(r->change, &r->saved, &r->err);
}

static void
run_free(struct run *r)
{
	json_decref(r->change);
	json_decref(r->saved);
}

static void
bridge_create_moves_host_addresses_and_routes_to_bridge(void **state)
{
	struct run r;
	char *d;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	d = ns_dump();
	assert_true(dump_has(d, "link br0 kind=bridge master= mac=02:11:22:33:44:55 up=1"));
	assert_true(dump_has(d, "link lan0 kind=veth master=br0 mac=02:11:22:33:44:55 up=1"));
	assert_true(dump_has(d, "addr br0 192.168.50.2/24 plen=24 scope=0 flags=0x80 brd=192.168.50.255 label=br0\n"));
	assert_true(dump_has(d, "addr br0 192.168.50.3/24 plen=24 scope=0 flags=0x81 brd= label=br0\n"));
	assert_true(dump_has(d, "addr br0 10.77.0.2/16 plen=16 scope=0 flags=0x80 brd= label=br0:x\n"));
	assert_true(dump_has(d, "addr br0 fd00:50::2/64 plen=64 scope=0 flags=0x82"));
	assert_true(dump_has(d, "addr br0 fd00:51::2/64 plen=64 scope=0 flags=0x282"));
	assert_false(dump_has(d, "addr lan0 192.168"));
	assert_false(dump_has(d, "addr lan0 10.77"));
	assert_false(dump_has(d, "addr lan0 fd00"));
	assert_true(dump_has(d, "table=254 none plen=0 via=192.168.50.1 dev=br0 proto=3"));
	assert_true(dump_has(d, "table=254 10.9.0.0/16 plen=16 via=192.168.50.254 dev=br0 proto=4 scope=0 type=1 metric=50"));
	assert_true(dump_has(d, "table=254 172.30.0.0/24 plen=24 via= dev=br0 proto=3 scope=253 type=1 metric=0 src=192.168.50.3"));
	assert_true(dump_has(d, "table=254 none plen=0 via=fd00:50::1 dev=br0 proto=3 scope=0 type=1 metric=1024"));
	assert_true(dump_has(d, "table=254 fd00:99::/48 plen=48 via=fd00:50::fe dev=br0 proto=3 scope=0 type=1 metric=7"));
	assert_false(dump_has(d, "dev=lan0 proto=3"));
	assert_false(dump_has(d, "dev=lan0 proto=4"));
	free(d);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	run_free(&r);
}

static void
bridge_undo_restores_links_addresses_and_routes_exactly(void **state)
{
	struct run r;
	char *before = ns_dump(), *after;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_undo_twice_changes_nothing_more(void **state)
{
	struct run r;
	char *before = ns_dump(), *after;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	/* Undo before apply ever ran (crash right after journaling). */
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_crash_at_each_step_then_undo_restores_everything(void **state)
{
	char *before = ns_dump();
	int n, steps = 0;

	for (n = 1; n < 100; n++) {
		struct run r;
		json_t *jc, *js;
		char *after;
		int k;

		assert_int_equal(prepare(&r, "br0", "lan0"), 0);
		k = apply_crash_at(&net_bridge_create_ops, r.change, r.saved, n);
		assert_true(k >= 0);
		/* Undo from what the journal kept, as `vfio -restore` does. */
		jc = journal_roundtrip(r.change);
		js = journal_roundtrip(r.saved);
		assert_int_equal(net_bridge_create_ops.undo(jc, js, &r.err), 0);
		json_decref(jc);
		json_decref(js);
		after = ns_dump_expect(before);
		if (!dump_same(before, after))
			fail_msg("undo after a crash at step %d left the namespace changed", n);
		free(after);
		run_free(&r);
		if (k == 0)
			break;   /* apply finished: every step has been crashed at */
		steps++;
	}
	/* create, enslave, bridge up, 4 routes out, 5 addresses out, 5 in, 5 routes in */
	assert_true(steps >= 18);
	free(before);
}

static void
bridge_refuses_host_interface_already_in_a_bridge(void **state)
{
	struct run r;
	char *before, *after;

	SH("ip link add br9 type bridge && ip link set lan0 master br9");
	before = ns_dump();
	assert_int_equal(prepare(&r, "br0", "lan0"), -EBUSY);
	assert_non_null(strstr(r.err.msg, "lan0 already belongs to bridge br9"));
	assert_null(r.saved);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_refuses_missing_host_interface(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "br0", "eth7"), -ENODEV);
	assert_non_null(strstr(r.err.msg, "host interface eth7 does not exist"));
	assert_null(r.saved);
	run_free(&r);
}

static void
bridge_refuses_host_interface_without_ethernet_address(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "br0", "lo"), -EINVAL);
	assert_non_null(strstr(r.err.msg, "host interface lo has no Ethernet address"));
	run_free(&r);
}

static void
bridge_refuses_existing_bridge(void **state)
{
	struct run r;

	SH("ip link add br0 type bridge");
	assert_int_equal(prepare(&r, "br0", "lan0"), -EEXIST);
	assert_non_null(strstr(r.err.msg, "bridge br0 already exists"));
	run_free(&r);
}

static void
bridge_refuses_bad_names(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "br/0", "lan0"), -EINVAL);
	assert_non_null(strstr(r.err.msg, "bridge name 'br/0' is not a valid interface name"));
	run_free(&r);
	assert_int_equal(prepare(&r, "br0", ""), -EINVAL);
	assert_non_null(strstr(r.err.msg, "give -hostint"));
	run_free(&r);
}

static void
bridge_apply_rechecks_and_undo_leaves_bridge_it_did_not_create(void **state)
{
	struct run r;
	char *before, *after;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	/* Someone makes br0 between the plan and apply. */
	SH("ip link add br0 type bridge");
	before = ns_dump();
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), -EEXIST);
	assert_non_null(strstr(r.err.msg, "bridge br0 already exists"));
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	assert_true(dump_has(after, "link br0 kind=bridge"));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_apply_refuses_host_interface_enslaved_since_prepare(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	SH("ip link add br9 type bridge && ip link set lan0 master br9");
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), -EBUSY);
	assert_non_null(strstr(r.err.msg, "lan0 already belongs to bridge br9"));
	run_free(&r);
}

static void
bridge_down_host_interface_is_down_again_after_undo(void **state)
{
	struct run r;
	char *before, *after, *d;

	SH("ip link set lan0 down");
	before = ns_dump();
	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	d = ns_dump();
	assert_true(dump_has(d, "link lan0 kind=veth master=br0 mac=02:11:22:33:44:55 up=1"));
	free(d);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_undo_restores_host_mac_changed_during_run(void **state)
{
	struct run r;
	char *before, *after;

	before = ns_dump();
	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	SH("ip link set lan0 address 02:99:99:99:99:99");
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_leased_address_is_kept_on_bridge_and_leased_again_on_host(void **state)
{
	struct run r;
	char *before, *after, *d;

	SH("ip addr add 192.168.60.2/24 dev lan0 valid_lft 3000 preferred_lft 2000");
	before = ns_dump();
	assert_true(dump_has(before, "addr lan0 192.168.60.2/24 plen=24 scope=0 flags=0 "));
	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	d = ns_dump();
	assert_true(dump_has(d, "addr br0 192.168.60.2/24 plen=24 scope=0 flags=0x80 "));
	free(d);
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
bridge_undo_with_host_interface_gone_still_removes_bridge(void **state)
{
	struct run r;
	char *d;

	assert_int_equal(prepare(&r, "br0", "lan0"), 0);
	assert_int_equal(net_bridge_create_ops.apply(r.change, r.saved, &r.err), 0);
	SH("ip link del lan0");   /* the USB network adapter was unplugged */
	assert_int_equal(net_bridge_create_ops.undo(r.change, r.saved, &r.err), 0);
	d = ns_dump();
	assert_false(dump_has(d, "link br0"));
	free(d);
	run_free(&r);
}

static void
bridge_undo_refuses_damaged_saved_state(void **state)
{
	struct run r;
	json_t *bad = json_object();

	memset(&r, 0, sizeof(r));
	r.change = net_change_bridge("br0", "lan0");
	assert_int_equal(net_bridge_create_ops.undo(r.change, bad, &r.err), -EINVAL);
	assert_non_null(strstr(r.err.msg, "journal is damaged"));
	json_decref(bad);
	run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(bridge_create_moves_host_addresses_and_routes_to_bridge, setup),
		cmocka_unit_test_setup(bridge_undo_restores_links_addresses_and_routes_exactly, setup),
		cmocka_unit_test_setup(bridge_undo_twice_changes_nothing_more, setup),
		cmocka_unit_test_setup(bridge_crash_at_each_step_then_undo_restores_everything, setup),
		cmocka_unit_test_setup(bridge_refuses_host_interface_already_in_a_bridge, setup),
		cmocka_unit_test_setup(bridge_refuses_missing_host_interface, setup),
		cmocka_unit_test_setup(bridge_refuses_host_interface_without_ethernet_address, setup),
		cmocka_unit_test_setup(bridge_refuses_existing_bridge, setup),
		cmocka_unit_test_setup(bridge_refuses_bad_names, setup),
		cmocka_unit_test_setup(bridge_apply_rechecks_and_undo_leaves_bridge_it_did_not_create, setup),
		cmocka_unit_test_setup(bridge_apply_refuses_host_interface_enslaved_since_prepare, setup),
		cmocka_unit_test_setup(bridge_down_host_interface_is_down_again_after_undo, setup),
		cmocka_unit_test_setup(bridge_undo_restores_host_mac_changed_during_run, setup),
		cmocka_unit_test_setup(bridge_leased_address_is_kept_on_bridge_and_leased_again_on_host, setup),
		cmocka_unit_test_setup(bridge_undo_with_host_interface_gone_still_removes_bridge, setup),
		cmocka_unit_test_setup(bridge_undo_refuses_damaged_saved_state, setup),
	};

	if (!ns_available()) {
		fprintf(stderr, "skipped: cannot create a network namespace (needs root)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
