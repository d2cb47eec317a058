/* The pure pieces: guest MAC, interface names, change objects for run-time
 * `net add`, and the change table. No namespace needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "change.h"
#include "net.h"

static const uint8_t rnd[3] = { 0xa1, 0xb2, 0xc3 };

static void
guest_mac_takes_last_three_bytes_of_host_mac(void **state)
{
	char out[18];

	assert_true(net_guest_mac("aa:bb:cc:dd:ee:0f", rnd, out));
	assert_string_equal(out, "52:54:00:dd:ee:0f");
	assert_true(net_guest_mac("AA:BB:CC:1D:2E:3F", rnd, out));
	assert_string_equal(out, "52:54:00:1d:2e:3f");
}

static void
guest_mac_is_random_without_host_mac(void **state)
{
	char out[18];

	assert_false(net_guest_mac(NULL, rnd, out));
	assert_string_equal(out, "52:54:00:a1:b2:c3");
	assert_false(net_guest_mac("", rnd, out));
	assert_string_equal(out, "52:54:00:a1:b2:c3");
}

static void
guest_mac_is_random_when_host_mac_is_malformed(void **state)
{
	const char *bad[] = { "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "zz:bb:cc:dd:ee:ff",
		"aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:f", " a:bb:cc:dd:ee:ff", "aa:bb:cc:dd:+e:ff",
		"00:00:00:00:00:00" };
	char out[18];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(net_guest_mac(bad[i], rnd, out));
		assert_string_equal(out, "52:54:00:a1:b2:c3");
	}
}

static void
interface_names_follow_kernel_rules(void **state)
{
	assert_true(net_ifname_valid("br0"));
	assert_true(net_ifname_valid("enp3s0f1np1234"));   /* 15 bytes */
	assert_false(net_ifname_valid("enp3s0f1np123456")); /* 16 bytes */
	assert_false(net_ifname_valid(""));
	assert_false(net_ifname_valid(NULL));
	assert_false(net_ifname_valid("br/0"));
	assert_false(net_ifname_valid("br 0"));
	assert_false(net_ifname_valid("br0:1"));
	assert_false(net_ifname_valid(".."));
}

static void
change_objects_match_what_the_plan_emits(void **state)
{
	json_t *c = net_change_tap("tap0", "br0", 1000, -1);
	char *s = json_dumps(c, JSON_SORT_KEYS);

	assert_string_equal(s, "{\"action\": \"tap-create\", \"args\": {\"bridge\": \"br0\", "
	    "\"uid\": 1000}, \"target\": \"tap0\"}");
	free(s);
	json_decref(c);
	c = net_change_tap("tap3", NULL, -1, -1);
	s = json_dumps(c, JSON_SORT_KEYS);
	assert_string_equal(s, "{\"action\": \"tap-create\", \"args\": {}, \"target\": \"tap3\"}");
	free(s);
	json_decref(c);
	c = net_change_bridge("br0", "enp3s0");
	s = json_dumps(c, JSON_SORT_KEYS);
	assert_string_equal(s, "{\"action\": \"bridge-create\", \"args\": {\"hostint\": "
	    "\"enp3s0\"}, \"target\": \"br0\"}");
	free(s);
	json_decref(c);
}

static void
change_table_finds_net_actions(void **state)
{
	assert_ptr_equal(change_find("bridge-create"), &net_bridge_create_ops);
	assert_ptr_equal(change_find("tap-create"), &net_tap_create_ops);
	assert_true(net_bridge_create_ops.may_block);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guest_mac_takes_last_three_bytes_of_host_mac),
		cmocka_unit_test(guest_mac_is_random_without_host_mac),
		cmocka_unit_test(guest_mac_is_random_when_host_mac_is_malformed),
		cmocka_unit_test(interface_names_follow_kernel_rules),
		cmocka_unit_test(change_objects_match_what_the_plan_emits),
		cmocka_unit_test(change_table_finds_net_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
