/* The supervised run with -usb: session_run() (the real loop, spawn, QMP,
 * teardown) against the fake QEMU, with umockdev supplying the USB events.
 * A helper thread plays the user at the machine: once the guest runs it
 * plugs a matching stick (the session attaches it), unplugs it (the session
 * removes it), then asks the supervisor to stop with SIGTERM (the guest
 * powers down, the run ends cleanly). Run under umockdev-wrapper. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <umockdev.h>

#include "hostroot.h"
#include "log.h"
#include "passthrough.h"
#include "options.h"
#include "plan.h"
#include "session.h"
#include "util.h"

static UMockdevTestbed *tb;
static char *root_hub;
static char record[128];
static char *failure;

/* The record as it is now, read with raw system calls: this thread runs
 * while the session forks QEMU, and umockdev's preload wraps open() and
 * read() with locks of its own; a fork while this thread held one left the
 * child (QEMU before its exec) blocked on it for good. Allocated. */
static char *
record_read(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, record, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
		long n = syscall(SYS_read, fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	syscall(SYS_close, fd);
	buf[len] = '\0';
	return buf;
}

/* Bounded wait for the fake QEMU's record to hold text n times (the record
 * is written before each reply, so it is the order things happened in). */
static bool
record_has(const char *text, int n)
{
	for (int waited = 0; waited < 20000; waited += 10) {
		char *all = record_read();
		int seen = 0;
		for (const char *p = all; p != NULL && (p = strstr(p, text)) != NULL; p += strlen(text))
			seen++;
		free(all);
		if (seen >= n)
			return true;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return false;
}

static void *
user(void *arg)
{
	if (!record_has("\"cont\"", 1)) {
		failure = "the guest never started";
	} else {
		char *stick = umockdev_testbed_add_device(tb, "usb", "1-4", root_hub, "busnum", "1", "devnum", "7",
		    "idVendor", "0781", "idProduct", "5581", "bDeviceClass", "00", "product", "Ultra Stick",
		    "serial", "S1", NULL, "DEVTYPE", "usb_device", "BUSNUM", "001", "DEVNUM", "007", NULL);
		if (!record_has("\"usb-host\"", 1)) {
			failure = "the plugged stick was not attached";
		} else {
			umockdev_testbed_uevent(tb, stick, "remove");
			umockdev_testbed_remove_device(tb, stick);
			if (!record_has("\"device_del\"", 1))
				failure = "the unplugged stick was not removed";
		}
		g_free(stick);
	}
	kill(getpid(), SIGTERM);
	return NULL;
}

static void
run_with_usb_attaches_and_removes_plugged_devices(void **state)
{
	tb = umockdev_testbed_new();
	char *root = umockdev_testbed_get_root_dir(tb);
	hostroot_init(root);
	char *pci = umockdev_testbed_add_device(tb, "pci", "0000:00:14.0", NULL, "class", "0x0c0330", NULL, NULL);
	root_hub = umockdev_testbed_add_device(tb, "usb", "usb1", pci, "busnum", "1", "devnum", "1", "idVendor", "1d6b",
	    "idProduct", "0002", "bDeviceClass", "09", NULL, "DEVTYPE", "usb_device", NULL);
	snprintf(record, sizeof(record), "%s/qmp-record", root);
	setenv("QMP_MOCK_RECORD", record, 1);
	setenv("VFIO_QEMU", getenv("QEMU_MOCK"), 1);
	unsetenv("SUDO_UID");
	unsetenv("SUDO_GID");

	struct options opts = { .name = "usbt", .shutdowntimeout_s = 20, .bindtimeout_s = 10 };
	opts.usb_regex = "Stick";
	assert_int_equal(passthrough_regex(&opts.usb_re, "-usb", opts.usb_regex, NULL), 0);
	opts.usb_re_set = true;
	/* A plan as plan_build() makes them: argv[0] is the QEMU main chose. */
	struct plan plan = { .memory_mib = 64, .has_xhci = true };
	const char *argv[] = { "qemu-system-x86_64", "-name", "usbt", "-machine", "q35", "-nodefaults", "-S",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-m", "64",
		"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
		"-device", "qemu-xhci,id=xhci,bus=pcie.0" };
	argv[0] = getenv("VFIO_QEMU");
	for (size_t i = 0; i < nitems(argv); i++)
		strv_push(&plan.argv, argv[i]);
	plan.qmp = json_array();
	plan.host_changes = json_array();
	plan.devices = json_pack("{s:[], s:[]}", "pci", "usb");
	plan.n_root_ports = 1;

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, user, NULL), 0);
	int status = session_run(&opts, &plan);
	pthread_join(t, NULL);
	if (failure != NULL)
		fail_msg("%s", failure);
	assert_int_equal(status, SESSION_EXIT_OK);
	/* exactly one usb-host device_add, for the stick, and one device_del */
	FILE *f = fopen(record, "r");
	assert_non_null(f);
	char line[4096];
	int adds = 0, dels = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "\"usb-host\"") != NULL) {
			adds++;
			assert_non_null(strstr(line, "\"id\":\"usb-1-4\""));
			assert_non_null(strstr(line, "\"hostaddr\":7"));
			assert_non_null(strstr(line, "\"hostbus\":1"));
		}
		dels += strstr(line, "\"device_del\"") != NULL;
	}
	fclose(f);
	assert_int_equal(adds, 1);
	assert_int_equal(dels, 1);

	regfree(&opts.usb_re);
	plan_free(&plan);
	g_free(root_hub);
	g_free(pci);
	umockdev_testbed_clear(tb);
	g_object_unref(tb);
	g_free(root);
}

int
main(void)
{
	log_init(getenv("VFIO_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
	const char *preload = getenv("LD_PRELOAD");
	if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
		fprintf(stderr, "skip: not running under umockdev-wrapper (the udev events come from umockdev)\n");
		return 77;
	}
	if (getenv("QEMU_MOCK") == NULL) {
		fprintf(stderr, "skip: QEMU_MOCK is not set\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(run_with_usb_attaches_and_removes_plugged_devices),
	};
	return cmocka_run_group_tests_name("usb-session", tests, NULL, NULL);
}
