/* End to end with real QEMU: the tap fd from net_tap_open() handed over a
 * QMP socket with getfd (SCM_RIGHTS), used by netdev_add type=tap and a
 * virtio-net NIC, exactly as the plan has the session do it (plan-net.c). Runs in a
 * network namespace with a bridge made by bridge-create from a veth LAN.
 * Skips (77) without namespaces or QEMU. The QMP lines here are the test's
 * own, so it does not depend on the QMP client landing. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "hostroot.h"
#include "net.h"
#include "nstest.h"

static const char *
qemu_binary(void)
{
	const char *q = getenv("VFIO_QEMU");

	return q != NULL && *q != '\0' ? q : "/usr/bin/qemu-system-x86_64";
}

struct qemu {
	pid_t pid;
	int sock;
	char buf[65536];
	size_t len;
};

static struct qemu *running;   /* killed by teardown when a test fails */

static void
qemu_start(struct qemu *q)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	q->len = 0;
	q->pid = fork();
	assert_true(q->pid >= 0);
	if (q->pid == 0) {
		char *argv[] = { (char *)qemu_binary(), "-nodefaults", "-S", "-accel", "tcg",
			"-machine", "q35", "-display", "none", "-m", "128",
			"-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
			"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
			NULL };

		/* QEMU must not outlive a failed test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(sv[1], 3);   /* dup2 clears close-on-exec */
		execv(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	q->sock = sv[0];
	running = q;
}

/* The next line that answers a command (events and the greeting skipped). */
static json_t *
qemu_reply(struct qemu *q)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl != NULL) {
			json_t *j;
			size_t l = (size_t)(nl - q->buf) + 1;

			j = json_loadb(q->buf, l, 0, NULL);
			memmove(q->buf, q->buf + l, q->len - l);
			q->len -= l;
			if (j != NULL && (json_object_get(j, "return") || json_object_get(j, "error")))
				return j;
			json_decref(j);
			continue;
		}
		struct pollfd p = { .fd = q->sock, .events = POLLIN };

		if (poll(&p, 1, 60000) != 1)
			fail_msg("QEMU did not answer within 60 s");
		ssize_t n = read(q->sock, q->buf + q->len, sizeof(q->buf) - q->len);

		if (n <= 0)
			fail_msg("QEMU closed the QMP socket");
		q->len += (size_t)n;
	}
}

/* Send one command, with fd attached when >= 0; returns the reply. */
static json_t *
qemu_cmd(struct qemu *q, const char *cmd, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)cmd, .iov_len = strlen(cmd) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(q->sock, &m, MSG_NOSIGNAL), (ssize_t)strlen(cmd));
	return qemu_reply(q);
}

static void
assert_ok(json_t *reply, const char *what)
{
	if (json_object_get(reply, "return") == NULL) {
		char *s = json_dumps(reply, 0);

		fail_msg("%s: QEMU answered %s", what, s);
	}
	json_decref(reply);
}

static void
qemu_stop(struct qemu *q)
{
	int status;

	json_decref(qemu_cmd(q, "{\"execute\": \"quit\"}\n", -1));
	assert_true(waitpid(q->pid, &status, 0) == q->pid);
	close(q->sock);
	running = NULL;
}

static int
teardown(void **state)
{
	if (running != NULL) {
		kill(running->pid, SIGKILL);
		waitpid(running->pid, NULL, 0);
		close(running->sock);
		running = NULL;
	}
	return 0;
}

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

static void
qemu_attaches_nic_to_tap_fd_passed_with_getfd(void **state)
{
	json_t *br = net_change_bridge("br0", "lan0"), *tap = net_change_tap("tap0", "br0", -1, -1);
	json_t *brs = NULL, *taps = NULL;
	struct verr err = { 0 };
	char *before = ns_dump(), *after, cmd[512], mac[18];
	const uint8_t rnd[3] = { 1, 2, 3 };
	struct net_link hl;
	struct qemu q;
	int fd, fd2;

	assert_int_equal(net_link_get("lan0", &hl, &err), 1);
	net_guest_mac(hl.mac, rnd, mac);
	assert_int_equal(net_bridge_create_ops.prepare(br, &brs, &err), 0);
	assert_int_equal(net_bridge_create_ops.apply(br, brs, &err), 0);
	assert_int_equal(net_tap_create_ops.prepare(tap, &taps, &err), 0);
	assert_int_equal(net_tap_create_ops.apply(tap, taps, &err), 0);

	qemu_start(&q);
	assert_ok(qemu_cmd(&q, "{\"execute\": \"qmp_capabilities\"}\n", -1), "qmp_capabilities");
	assert_int_equal(net_tap_open("tap0", &fd, &err), 0);
	assert_ok(qemu_cmd(&q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"tapfd0\"}}\n",
	    fd), "getfd");
	close(fd);   /* as the session does: QEMU has its own copy now */
	assert_ok(qemu_cmd(&q, "{\"execute\": \"netdev_add\", \"arguments\": {\"type\": \"tap\", "
	    "\"id\": \"net0\", \"fd\": \"tapfd0\"}}\n", -1), "netdev_add");
	snprintf(cmd, sizeof(cmd), "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
	    "\"virtio-net-pci\", \"id\": \"nic0\", \"bus\": \"rp1\", \"netdev\": \"net0\", "
	    "\"mac\": \"%s\"}}\n", mac);
	assert_ok(qemu_cmd(&q, cmd, -1), "device_add");

	/* QEMU now holds the tap: nobody else can attach. */
	assert_int_equal(net_tap_open("tap0", &fd2, &err), -EBUSY);
	qemu_stop(&q);
	/* Gone with QEMU: the tap is free again and still there (persistent). */
	assert_int_equal(net_tap_open("tap0", &fd2, &err), 0);
	close(fd2);

	assert_int_equal(net_tap_create_ops.undo(tap, taps, &err), 0);
	assert_int_equal(net_bridge_create_ops.undo(br, brs, &err), 0);
	after = ns_dump_expect(before);
	assert_true(dump_same(before, after));
	free(before);
	free(after);
	json_decref(br);
	json_decref(brs);
	json_decref(tap);
	json_decref(taps);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(qemu_attaches_nic_to_tap_fd_passed_with_getfd, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (access(qemu_binary(), X_OK) != 0) {
		fprintf(stderr, "skipped: no QEMU at %s\n", qemu_binary());
		return 77;
	}
	if (!ns_available()) {
		fprintf(stderr, "skipped: cannot create a network namespace (needs root)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
