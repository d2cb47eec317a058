/* sd_notify without libsystemd: the datagram reaches a socket bound at a path
 * and at an abstract '@' name, nothing happens outside a service manager, and
 * a bad or absent NOTIFY_SOCKET is an error naming it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"
#include "util.h"

/* Bind a datagram socket at name (a path, or "@abstract") and return it. */
static int
bind_receiver(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	assert_true(len < sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, len);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '@' ? 0 : 1));
	if (bind(fd, (struct sockaddr *)&sun, addrlen) < 0)
		fail_msg("bind %s: %s", name, strerror(errno));
	return fd;
}

static void
expect_datagram(int fd, const char *want)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0)
		fail_msg("no datagram arrived: %s", strerror(errno));
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
test_ready_reaches_a_path_socket(void **state)
{
	char dir[] = "/tmp/vfio-notify-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/notify", dir);
	int fd = bind_receiver(path);
	setenv("NOTIFY_SOCKET", path, 1);
	struct verr err = { 0 };
	assert_int_equal(notify_send("READY=1", &err), 1);
	expect_datagram(fd, "READY=1");
	close(fd);
	unlink(path);
	rmdir(dir);
	free(path);
}

static void
test_ready_reaches_an_abstract_socket(void **state)
{
	char *name = xasprintf("@vfio-notify-test-%ld-%d", (long)getpid(), rand());
	int fd = bind_receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	struct verr err = { 0 };
	assert_int_equal(notify_sendf(&err, "STATUS=guest %s running", "win10"), 1);
	expect_datagram(fd, "STATUS=guest win10 running");
	close(fd);
	free(name);
}

static void
test_several_messages_arrive_in_order(void **state)
{
	char *name = xasprintf("@vfio-notify-order-%ld", (long)getpid());
	int fd = bind_receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(notify_send("READY=1", NULL), 1);
	assert_int_equal(notify_send("STOPPING=1", NULL), 1);
	expect_datagram(fd, "READY=1");
	expect_datagram(fd, "STOPPING=1");
	close(fd);
	free(name);
}

static void
test_nothing_happens_without_a_service_manager(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	struct verr err = { 0 };
	assert_int_equal(notify_send("READY=1", &err), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_send("READY=1", &err), 0);
	assert_int_equal(err.code, 0);
}

static void
test_relative_socket_name_is_refused(void **state)
{
	setenv("NOTIFY_SOCKET", "run/notify", 1);
	struct verr err = { 0 };
	assert_int_equal(notify_send("READY=1", &err), -EAFNOSUPPORT);
	assert_non_null(strstr(err.msg, "NOTIFY_SOCKET 'run/notify' is neither a socket path nor"));
}

static void
test_overlong_socket_name_is_refused(void **state)
{
	char name[200];
	memset(name, 'x', sizeof(name) - 1);
	name[0] = '/';
	name[sizeof(name) - 1] = '\0';
	setenv("NOTIFY_SOCKET", name, 1);
	struct verr err = { 0 };
	assert_int_equal(notify_send("READY=1", &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "longer than a socket address can be"));
}

static void
test_absent_receiver_is_an_error_naming_the_socket(void **state)
{
	setenv("NOTIFY_SOCKET", "/nonexistent/vfio/notify", 1);
	struct verr err = { 0 };
	assert_int_equal(notify_send("READY=1", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "NOTIFY_SOCKET /nonexistent/vfio/notify failed"));
}

static void
test_full_receiver_queue_does_not_block(void **state)
{
	char *name = xasprintf("@vfio-notify-full-%ld", (long)getpid());
	int fd = bind_receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	/* Nobody reads: the queue fills and a send fails at once instead of waiting. */
	int rc = 1;
	for (int i = 0; i < 100000 && rc == 1; i++)
		rc = notify_send("STATUS=filling the queue up", NULL);
	assert_int_equal(rc, -EAGAIN);
	close(fd);
	free(name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_reaches_a_path_socket),
		cmocka_unit_test(test_ready_reaches_an_abstract_socket),
		cmocka_unit_test(test_several_messages_arrive_in_order),
		cmocka_unit_test(test_nothing_happens_without_a_service_manager),
		cmocka_unit_test(test_relative_socket_name_is_refused),
		cmocka_unit_test(test_overlong_socket_name_is_refused),
		cmocka_unit_test(test_absent_receiver_is_an_error_naming_the_socket),
		cmocka_unit_test(test_full_receiver_queue_does_not_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
