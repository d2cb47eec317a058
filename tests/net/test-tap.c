/* tap-create (-tap T, -bridge B) and the fds handed to QEMU, each test in a
 * network namespace of its own. */
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "hostroot.h"
#include "net.h"
#include "nstest.h"

static int
setup(void **state)
{
	if (ns_enter() < 0)
		return -1;
	hostroot_init("/");
	setenv("VFIO_NMCLI", "/nonexistent/nmcli", 1);
	lan_make();
	return 0;
}

struct run {
	json_t *change, *saved;
	struct verr err;
};

static int
prepare(struct run *r, const char *tap, const char *bridge, int uid)
{
	memset(r, 0, sizeof(*r));
	r->change = net_change_tap(tap, bridge, uid, -1);
	return net_tap_create_ops.prepare(r->change, &r->saved, &r->err);
}

static void
run_free(struct run *r)
{
	json_decref(r->change);
	json_decref(r->saved);
}

static void
tap_missing_is_created_up_and_removed_by_undo(void **state)
{
	struct run r;
	char *before = ns_dump(), *d, *after;
	struct net_link l;

	assert_int_equal(prepare(&r, "tap0", NULL, -1), 0);
	assert_false(json_is_true(json_object_get(r.saved, "existed")));
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_link_get("tap0", &l, &r.err), 1);
	assert_string_equal(l.kind, "tun");
	assert_true(l.up);
	assert_string_equal(l.master, "");
	/* Persistent: it outlives the fd apply used to make it. */
	d = ns_dump();
	assert_true(dump_has(d, "link tap0 kind=tun master= "));
	free(d);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_link_get("tap0", &l, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
tap_existing_is_used_as_is_and_kept_by_undo(void **state)
{
	struct run r;
	char *before, *after;

	SH("ip tuntap add tap5 mode tap && ip link set tap5 down");
	before = ns_dump();
	assert_int_equal(prepare(&r, "tap5", NULL, -1), 0);
	assert_true(json_is_true(json_object_get(r.saved, "existed")));
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	assert_true(dump_has(after, "link tap5 kind=tun"));
	free(before);
	free(after);
	run_free(&r);
}

static void
tap_joins_existing_bridge_which_undo_keeps(void **state)
{
	struct run r;
	char *before, *after;
	struct net_link l;

	/* A LAN bridge, with the host's interface in it. */
	SH("ip link add br0 type bridge && ip link set lan0 master br0 && ip link set br0 up");
	lan_bridge_settled("br0");
	before = ns_dump();
	assert_int_equal(prepare(&r, "tap1", "br0", -1), 0);
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_link_get("tap1", &l, &r.err), 1);
	assert_string_equal(l.master, "br0");
	assert_true(l.up);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	assert_true(dump_has(after, "link br0 kind=bridge"));
	free(before);
	free(after);
	run_free(&r);
}

static void
tap_refuses_missing_bridge(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "tap0", "br7", -1), -ENODEV);
	assert_non_null(strstr(r.err.msg, "bridge br7 does not exist"));
	assert_null(r.saved);
	run_free(&r);
}

static void
tap_refuses_bridge_that_is_not_a_bridge(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "tap0", "lan0", -1), -EINVAL);
	assert_non_null(strstr(r.err.msg, "lan0 is not a bridge"));
	run_free(&r);
}

static void
tap_refuses_name_of_a_link_that_is_not_a_tap(void **state)
{
	struct run r;

	assert_int_equal(prepare(&r, "lan0", NULL, -1), -EEXIST);
	assert_non_null(strstr(r.err.msg, "lan0 exists and is not a tap (it is a veth link)"));
	run_free(&r);
}

static void
tap_apply_fails_and_undo_keeps_link_that_took_the_name(void **state)
{
	struct run r;
	char *before, *after;

	assert_int_equal(prepare(&r, "tap0", NULL, -1), 0);
	SH("ip link add tap0 type veth peer name tap0p");
	before = ns_dump();
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), -EBUSY);
	assert_non_null(strstr(r.err.msg, "appeared meanwhile"));
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	assert_true(dump_has(after, "link tap0 kind=veth"));
	free(before);
	free(after);
	run_free(&r);
}

static void
tap_undo_keeps_a_tap_someone_else_marked(void **state)
{
	struct run r;
	char *before, *after;

	assert_int_equal(prepare(&r, "tap0", NULL, -1), 0);
	SH("ip tuntap add tap0 mode tap && ip link set tap0 alias theirs");
	before = ns_dump();
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

static void
tap_crash_at_each_step_then_undo_restores_everything(void **state)
{
	char *before;
	int n, steps = 0;

	SH("ip link add br0 type bridge && ip link set lan0 master br0 && ip link set br0 up");
	lan_bridge_settled("br0");
	before = ns_dump();
	for (n = 1; n < 20; n++) {
		struct run r;
		json_t *jc, *js;
		char *after;
		int k;

		assert_int_equal(prepare(&r, "tap0", "br0", 1000), 0);
		k = apply_crash_at(&net_tap_create_ops, r.change, r.saved, n);
		assert_true(k >= 0);
		/* Undo from what the journal kept, as `vfio -restore` does. */
		jc = journal_roundtrip(r.change);
		js = journal_roundtrip(r.saved);
		assert_int_equal(net_tap_create_ops.undo(jc, js, &r.err), 0);
		json_decref(jc);
		json_decref(js);
		after = ns_dump_expect(before);
		if (!dump_same(before, after))
			fail_msg("undo after a crash at step %d left the namespace changed", n);
		free(after);
		run_free(&r);
		if (k == 0)
			break;
		steps++;
	}
	assert_int_equal(steps, 4);   /* create, mark, enslave, up */
	free(before);
}

static void
tap_undo_twice_and_before_apply_is_harmless(void **state)
{
	struct run r;
	char *before = ns_dump(), *after;

	assert_int_equal(prepare(&r, "tap0", NULL, -1), 0);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	run_free(&r);
}

/* In a child that drops to uid/gid 65534: can it attach to the tap? */
static int
open_as_nobody(const char *tap)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct verr err = { 0 };
		int fd, r;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(100);
		r = net_tap_open(tap, &fd, &err);
		if (r == 0)
			_exit(0);
		fprintf(stderr, "as nobody: %s\n", err.msg);
		_exit(r == -EPERM ? 1 : 2);
	}
	assert_true(pid > 0);
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
tap_owned_by_given_uid_lets_that_user_attach(void **state)
{
	struct run mine, root;   /* "root": owned by uid 1000, not nobody */

	assert_int_equal(prepare(&mine, "tap0", NULL, 65534), 0);
	assert_int_equal(net_tap_create_ops.apply(mine.change, mine.saved, &mine.err), 0);
	assert_int_equal(prepare(&root, "tap1", NULL, 1000), 0);
	assert_int_equal(net_tap_create_ops.apply(root.change, root.saved, &root.err), 0);
	assert_int_equal(open_as_nobody("tap0"), 0);
	assert_int_equal(open_as_nobody("tap1"), 1);
	assert_int_equal(net_tap_create_ops.undo(mine.change, mine.saved, &mine.err), 0);
	assert_int_equal(net_tap_create_ops.undo(root.change, root.saved, &root.err), 0);
	run_free(&mine);
	run_free(&root);
}

#define ETH_P_TEST 0x88b5   /* IEEE local experimental */
#define VNET_HDR_LEN 10     /* struct virtio_net_hdr, the kernel's default */

static void
frame_build(uint8_t *f, const uint8_t src[6], const char *marker)
{
	memset(f, 0, 64);
	memset(f, 0xff, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETH_P_TEST >> 8;
	f[13] = ETH_P_TEST & 0xff;
	snprintf((char *)f + 14, 40, "%s", marker);
}

/* Read frames from fd (skipping skip bytes of header) until one carries
 * marker; the bridge also floods IPv6 neighbour discovery, so others come. */
static bool
frame_wait(int fd, size_t skip, const char *marker)
{
	uint8_t buf[2048];

	for (int i = 0; i < 200; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10000) != 1)
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n < (ssize_t)(skip + 14 + strlen(marker)))
			continue;
		if (buf[skip + 12] == (ETH_P_TEST >> 8) && buf[skip + 13] == (ETH_P_TEST & 0xff) &&
		    memcmp(buf + skip + 14, marker, strlen(marker)) == 0)
			return true;
	}
	return false;
}

static void
tap_fd_carries_frames_both_ways_through_the_bridge(void **state)
{
	static const uint8_t guest[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	static const uint8_t lan[6] = { 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc };
	struct sockaddr_ll sll = { 0 };
	uint8_t out[VNET_HDR_LEN + 64], in[64];
	struct run r;
	int tfd, ps;

	SH("ip link add br0 type bridge && ip link set lan0 master br0 && ip link set br0 up");
	assert_int_equal(prepare(&r, "tap0", "br0", -1), 0);
	assert_int_equal(net_tap_create_ops.apply(r.change, r.saved, &r.err), 0);
	assert_int_equal(net_tap_open("tap0", &tfd, &r.err), 0);

	/* The far end of the LAN listens on a packet socket. */
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_TEST));
	assert_true(ps >= 0);
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_TEST);
	sll.sll_ifindex = (int)if_nametoindex("lan0p");
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	/* Guest -> LAN: what QEMU writes (virtio-net header + frame). */
	memset(out, 0, VNET_HDR_LEN);
	frame_build(out + VNET_HDR_LEN, guest, "vfio-guest-to-lan");
	assert_int_equal(write(tfd, out, sizeof(out)), sizeof(out));
	assert_true(frame_wait(ps, 0, "vfio-guest-to-lan"));

	/* LAN -> guest: QEMU reads it with the header in front. */
	frame_build(in, lan, "vfio-lan-to-guest");
	assert_int_equal(send(ps, in, sizeof(in), 0), sizeof(in));
	assert_true(frame_wait(tfd, VNET_HDR_LEN, "vfio-lan-to-guest"));

	close(ps);
	close(tfd);
	assert_int_equal(net_tap_create_ops.undo(r.change, r.saved, &r.err), 0);
	run_free(&r);
}

static void
tap_open_refuses_missing_tap_and_creates_none(void **state)
{
	struct verr err = { 0 };
	struct net_link l;
	int fd = 123;

	assert_int_equal(net_tap_open("tap9", &fd, &err), -ENODEV);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err.msg, "tap tap9 does not exist"));
	assert_int_equal(net_link_get("tap9", &l, &err), 0);
}

static void
tap_open_refuses_link_that_is_not_a_tap(void **state)
{
	struct verr err = { 0 };
	int fd;

	assert_int_equal(net_tap_open("lan0", &fd, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "lan0 is not a tap"));
}

static void
tap_open_refuses_a_tap_in_use(void **state)
{
	struct verr err = { 0 };
	int fd, fd2;

	SH("ip tuntap add tap3 mode tap vnet_hdr");
	assert_int_equal(net_tap_open("tap3", &fd, &err), 0);
	assert_int_equal(net_tap_open("tap3", &fd2, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "tap tap3 is in use"));
	close(fd);
}

static void
tap_open_refuses_a_layer3_tun(void **state)
{
	struct verr err = { 0 };
	int fd;

	SH("ip tuntap add tun0 mode tun");
	assert_int_equal(net_tap_open("tun0", &fd, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "tun0 is a tun (layer 3) or multiqueue device"));
}

static void
fd_opens_name_the_device_node_under_the_host_root(void **state)
{
	char dir[] = "/tmp/vfio-net-root-XXXXXX";
	struct verr err = { 0 };
	int fd;

	SH("ip tuntap add tap3 mode tap");
	assert_non_null(mkdtemp(dir));
	hostroot_init(dir);
	assert_int_equal(net_vhost_open(&fd, &err), -ENOENT);
	assert_non_null(strstr(err.msg, dir));
	assert_non_null(strstr(err.msg, "/dev/vhost-net"));
	assert_non_null(strstr(err.msg, "vhost_net module"));
	assert_int_equal(net_tap_open("tap3", &fd, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/dev/net/tun"));
	assert_non_null(strstr(err.msg, "modprobe tun"));
	hostroot_init("/");
	rmdir(dir);
}

static void
tap_free_name_is_the_first_unused_tapN(void **state)
{
	struct verr err = { 0 };
	char name[IFNAMSIZ];

	assert_int_equal(net_tap_name_free(name, &err), 0);
	assert_string_equal(name, "tap0");
	SH("ip tuntap add tap0 mode tap && ip tuntap add tap2 mode tap");
	assert_int_equal(net_tap_name_free(name, &err), 0);
	assert_string_equal(name, "tap1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(tap_missing_is_created_up_and_removed_by_undo, setup),
		cmocka_unit_test_setup(tap_existing_is_used_as_is_and_kept_by_undo, setup),
		cmocka_unit_test_setup(tap_joins_existing_bridge_which_undo_keeps, setup),
		cmocka_unit_test_setup(tap_refuses_missing_bridge, setup),
		cmocka_unit_test_setup(tap_refuses_bridge_that_is_not_a_bridge, setup),
		cmocka_unit_test_setup(tap_refuses_name_of_a_link_that_is_not_a_tap, setup),
		cmocka_unit_test_setup(tap_apply_fails_and_undo_keeps_link_that_took_the_name, setup),
		cmocka_unit_test_setup(tap_undo_keeps_a_tap_someone_else_marked, setup),
		cmocka_unit_test_setup(tap_crash_at_each_step_then_undo_restores_everything, setup),
		cmocka_unit_test_setup(tap_undo_twice_and_before_apply_is_harmless, setup),
		cmocka_unit_test_setup(tap_owned_by_given_uid_lets_that_user_attach, setup),
		cmocka_unit_test_setup(tap_fd_carries_frames_both_ways_through_the_bridge, setup),
		cmocka_unit_test_setup(tap_open_refuses_missing_tap_and_creates_none, setup),
		cmocka_unit_test_setup(tap_open_refuses_link_that_is_not_a_tap, setup),
		cmocka_unit_test_setup(tap_open_refuses_a_tap_in_use, setup),
		cmocka_unit_test_setup(tap_open_refuses_a_layer3_tun, setup),
		cmocka_unit_test_setup(fd_opens_name_the_device_node_under_the_host_root, setup),
		cmocka_unit_test_setup(tap_free_name_is_the_first_unused_tapN, setup),
	};

	if (!ns_available()) {
		fprintf(stderr, "skipped: cannot create a network namespace (needs root)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
