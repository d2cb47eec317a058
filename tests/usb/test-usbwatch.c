/* USB hotplug: the watcher on a real libevent loop, real libudev fed by
 * umockdev (a testbed sysfs with USB devices, add/remove uevents), the fake
 * QEMU (qemu-mock) recording device_add/device_del, or real QEMU for the
 * error path of a host device that does not exist.
 *
 * Run under umockdev-wrapper (meson does): libudev then sees the testbed's
 * /sys, and VFIO_HOST_ROOT points at the testbed root so our own sysfs reads
 * agree with libudev's.
 *
 *   test-usbwatch [mock [CASE]]   the fake-QEMU cases (or one of them)
 *   test-usbwatch real            the real-QEMU case (suite e2e) */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <umockdev.h>

#include "devices.h"
#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "options.h"
#include "passthrough.h"
#include "plan.h"
#include "qmp.h"
#include "usbwatch.h"
#include "util.h"

#define WAIT_MS 15000

static bool real_qemu;

struct fx {
	UMockdevTestbed *tb;
	char *root;
	char dir[64];            /* records, scenario, journal */
	char record[128];
	pid_t qemu;
	struct event_base *base;
	struct qmp *qmp;
	struct devices devs;
	struct plan plan;
	regex_t re;
	bool have_re;
	struct journal j;
	bool have_journal;
	struct usbwatch *uw;
	char *pci, *roothub;
	/* control command results */
	int n_results;
	int last_result;
	char last_msg[2048];
};

/* --- the testbed ------------------------------------------------------- */

static char *
add_usb(struct fx *f, const char *parent, const char *name, unsigned bus, unsigned devnum, const char *vid,
    const char *pid, const char *cls, const char *product, const char *serial)
{
	char b[8], d[8], devname[40], bb[8], dd[8];
	snprintf(b, sizeof(b), "%u", bus);
	snprintf(d, sizeof(d), "%u", devnum);
	snprintf(bb, sizeof(bb), "%03u", bus);
	snprintf(dd, sizeof(dd), "%03u", devnum);
	snprintf(devname, sizeof(devname), "/dev/bus/usb/%03u/%03u", bus, devnum);
	char *p = umockdev_testbed_add_device(f->tb, "usb", name, parent,
	    "busnum", b, "devnum", d, "idVendor", vid, "idProduct", pid, "bDeviceClass", cls,
	    "manufacturer", "Test Maker", "product", product, "serial", serial, NULL,
	    "DEVTYPE", "usb_device", "DEVNAME", devname, "BUSNUM", bb, "DEVNUM", dd, NULL);
	assert_non_null(p);
	/* the device node QEMU's user is given */
	char node[PATH_MAX];
	snprintf(node, sizeof(node), "%s/dev/bus/usb/%03u", f->root, bus);
	mkdir(node, 0755);
	snprintf(node, sizeof(node), "%s/dev/bus/usb/%03u/%03u", f->root, bus, devnum);
	int fd = open(node, O_CREAT | O_WRONLY | O_CLOEXEC, 0664);
	if (fd >= 0)
		close(fd);
	return p;
}

/* Plugged while the guest runs: the device appears in sysfs, then its add
 * uevent goes out (umockdev_testbed_add_device sends it). */
static char *
plug(struct fx *f, const char *name, unsigned devnum, const char *pid, const char *product, const char *serial)
{
	return add_usb(f, f->roothub, name, 1, devnum, "046d", pid, "00", product, serial);
}

/* Unplugged: the kernel sends remove, and the sysfs directory is gone. */
static void
unplug(struct fx *f, char *syspath)
{
	umockdev_testbed_uevent(f->tb, syspath, "remove");
	umockdev_testbed_remove_device(f->tb, syspath);
	g_free(syspath);
}

/* --- QEMU -------------------------------------------------------------- */

/* DEVICE_DELETED goes to devices_deleted(), as the session's event table sends it. */
static void
route_deleted(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	struct fx *f = arg;
	devices_deleted(&f->devs, data);
}

static void
spawn_qemu(struct fx *f, bool xhci, const char *scenario)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char scen[128];
	snprintf(scen, sizeof(scen), "%s/scenario.json", f->dir);
	if (scenario != NULL) {
		FILE *s = fopen(scen, "w");
		assert_non_null(s);
		fputs(scenario, s);
		fclose(s);
	}
	const char *bin = real_qemu ? "qemu-system-x86_64" : getenv("QEMU_MOCK");
	assert_non_null(bin);
	f->qemu = fork();
	assert_true(f->qemu >= 0);
	if (f->qemu == 0) {
		/* QEMU is not under umockdev: it sees the real machine. */
		unsetenv("LD_PRELOAD");
		unsetenv("UMOCKDEV_DIR");
		setenv("QMP_MOCK_RECORD", f->record, 1);
		if (scenario != NULL)
			setenv("QMP_MOCK_SCENARIO", scen, 1);
		dup2(sv[1], 3);
		const char *argv[] = { bin, "-machine", "q35", "-accel", "tcg", "-nodefaults", "-S",
			"-display", "none", "-m", "64",
			"-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
			"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0,multifunction=on",
			"-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,port=2,addr=0x1c.1",
			xhci ? "-device" : NULL, "qemu-xhci,id=xhci", NULL };
		execvp(bin, (char **)argv);
		_exit(127);
	}
	close(sv[1]);
	static const struct qmp_callbacks cbs = { 0 };
	f->qmp = qmp_new(f->base, sv[0], &cbs, f);
	qmp_subscribe(f->qmp, "DEVICE_DELETED", route_deleted, f);
	struct verr err = { 0 };
	if (qmp_wait_ready(f->qmp, WAIT_MS, &err) < 0)
		fail_msg("QEMU did not come up: %s", err.msg);
	if (qmp_run_sync(f->qmp, "cont", NULL, WAIT_MS, NULL, &err) < 0)
		fail_msg("cont: %s", err.msg);
}

static void
changed(void *arg)
{
}

struct fx_opts {
	const char *regex;       /* -usb, NULL: none */
	bool xhci;               /* qemu-xhci on the command line */
	const char *scenario;
	const char *passed_pci;  /* a controller -pci passes through */
	bool chown;              /* QEMU runs as uid/gid 1000 */
	bool no_start;           /* leave the monitor to usb add */
	bool udevd;              /* /run/udev/control exists: udevd runs */
	bool no_spare_port;      /* every root port is taken */
};

static void
fx_start(struct fx *f, const struct fx_opts *o)
{
	f->tb = umockdev_testbed_new();
	f->root = umockdev_testbed_get_root_dir(f->tb);
	hostroot_init(f->root);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vfio-usb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->record, sizeof(f->record), "%s/record", f->dir);
	f->pci = umockdev_testbed_add_device(f->tb, "pci", "0000:00:14.0", NULL, "vendor", "0x8086",
	    "device", "0xa36d", "class", "0x0c0330", NULL, "PCI_SLOT_NAME", "0000:00:14.0", NULL);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/dev/bus/usb", f->root);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	assert_int_equal(system(cmd), 0);
	if (o->udevd) {
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s/run/udev' && touch '%s/run/udev/control'", f->root, f->root);
		assert_int_equal(system(cmd), 0);
	}
	f->roothub = add_usb(f, f->pci, "usb1", 1, 1, "1d6b", "0002", "09", "xHCI Host Controller", "0000:00:14.0");

	f->base = event_base_new();
	spawn_qemu(f, o->xhci, o->scenario);
	devices_init(&f->devs, o->no_spare_port ? 0 : 2);
	f->plan.has_xhci = o->xhci;
	f->plan.devices = json_pack("{s:[], s:[]}", "pci", "usb");
	if (o->passed_pci != NULL)
		json_array_append_new(json_object_get(f->plan.devices, "pci"),
		    json_pack("{s:s}", "address", o->passed_pci));
	if (o->regex != NULL) {
		assert_int_equal(passthrough_regex(&f->re, "-usb", o->regex, NULL), 0);
		f->have_re = true;
	}
	struct verr err = { 0 };
	if (o->chown) {
		assert_int_equal(journal_open(&f->j, f->dir, &err), 0);
		f->have_journal = true;
	}
	struct usbwatch_env env = {
		.base = f->base, .qmp = f->qmp, .devs = &f->devs, .journal = o->chown ? &f->j : NULL,
		.uid = o->chown ? 1000 : -1, .gid = o->chown ? 1000 : -1,
		.re = f->have_re ? &f->re : NULL, .plan = &f->plan, .changed = changed, .arg = f,
	};
	f->uw = usbwatch_new(&env);
	if (!o->no_start && usbwatch_start(f->uw, &err) < 0)
		fail_msg("usbwatch_start: %s", err.msg);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	usbwatch_free(f->uw);
	if (f->qmp != NULL)
		qmp_free(f->qmp);
	devices_free(&f->devs);
	if (f->qemu > 0) {
		kill(f->qemu, SIGKILL);
		waitpid(f->qemu, NULL, 0);
	}
	if (f->have_journal)
		journal_close(&f->j);
	if (f->have_re)
		regfree(&f->re);
	plan_free(&f->plan);
	if (f->base)
		event_base_free(f->base);
	g_free(f->pci);
	g_free(f->roothub);
	if (f->tb != NULL) {
		umockdev_testbed_clear(f->tb);
		g_object_unref(f->tb);
	}
	g_free(f->root);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

static int
fx_alloc(void **state)
{
	*state = xcalloc(1, sizeof(struct fx));
	return 0;
}

/* --- waiting (event-driven, bounded) ----------------------------------- */

static bool timed_out;

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	timed_out = true;
}

typedef bool (*pred_fn)(struct fx *f, long want);

static bool
wait_for(struct fx *f, pred_fn pred, long want)
{
	timed_out = false;
	struct event *t = evtimer_new(f->base, on_timeout, NULL);
	struct timeval tv = { WAIT_MS / 1000, 0 };
	evtimer_add(t, &tv);
	while (!pred(f, want) && !timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(t);
	return pred(f, want);
}

/* Run the loop until it has nothing more to do right now (the monitor
 * drained, every reply in): used before asserting that nothing happened. */
static void
settle(struct fx *f)
{
	struct verr err = { 0 };
	for (int i = 0; i < 3; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		assert_int_equal(qmp_run_sync(f->qmp, "query-status", NULL, WAIT_MS, NULL, &err), 0);
	}
}

static size_t
n_usb_host(const struct fx *f)
{
	size_t n = 0;
	for (size_t i = 0; i < f->devs.n; i++)
		n += strcmp(f->devs.v[i].driver, "usb-host") == 0;
	return n;
}

static bool
attached_is(struct fx *f, long want)
{
	return (long)n_usb_host(f) == want && f->devs.waiters == NULL;
}

/* usb-1-4 attached at address want */
static bool
port_1_4_has_address(struct fx *f, long want)
{
	const struct device_entry *e = devices_find(&f->devs, "usb-1-4");
	return e != NULL && json_integer_value(json_object_get(e->args, "hostaddr")) == want;
}

static bool
port_1_3_attached_alone(struct fx *f, long want)
{
	return devices_find(&f->devs, "usb-1-3") != NULL && (long)n_usb_host(f) == want &&
	    f->devs.waiters == NULL;
}

static bool
stats_failed_is(struct fx *f, long want)
{
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	return (long)st.attach_failed >= want;
}

static bool
stats_sent_is(struct fx *f, long want)
{
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	return (long)st.attach_sent >= want;
}

static bool
stats_removed_is(struct fx *f, long want)
{
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	return (long)st.removed >= want;
}

static bool
results_are(struct fx *f, long want)
{
	return f->n_results >= want;
}

static void
on_result(int result, const char *msg, void *arg)
{
	struct fx *f = arg;
	f->n_results++;
	f->last_result = result;
	snprintf(f->last_msg, sizeof(f->last_msg), "%s", msg);
}

/* --- what the fake QEMU was told --------------------------------------- */

/* Commands `execute` recorded with arguments driver (NULL: any); each one's
 * arguments appended to out (may be NULL). */
static size_t
recorded(struct fx *f, const char *execute, const char *driver, json_t *out)
{
	FILE *r = fopen(f->record, "r");
	if (r == NULL)
		return 0;
	char line[4096];
	size_t n = 0;
	while (fgets(line, sizeof(line), r) != NULL) {
		json_t *j = json_loads(line, 0, NULL);
		const char *ex = json_string_value(json_object_get(j, "execute"));
		json_t *args = json_object_get(j, "arguments");
		const char *drv = json_string_value(json_object_get(args, "driver"));
		if (ex != NULL && strcmp(ex, execute) == 0 && (driver == NULL || (drv && strcmp(drv, driver) == 0))) {
			n++;
			if (out != NULL)
				json_array_append(out, args);
		}
		json_decref(j);
	}
	fclose(r);
	return n;
}

static void
assert_usb_host_add(json_t *args, const char *id, int bus, int addr)
{
	assert_string_equal(json_string_value(json_object_get(args, "driver")), "usb-host");
	assert_string_equal(json_string_value(json_object_get(args, "id")), id);
	assert_int_equal(json_integer_value(json_object_get(args, "hostbus")), bus);
	assert_int_equal(json_integer_value(json_object_get(args, "hostaddr")), addr);
	assert_string_equal(json_string_value(json_object_get(args, "bus")), "xhci.0");
}

/* --- the fake-QEMU cases ----------------------------------------------- */

static void
plugged_matching_device_is_attached_by_bus_address_with_port_id(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	json_t *adds = json_array();
	assert_int_equal(recorded(f, "device_add", "usb-host", adds), 1);
	assert_usb_host_add(json_array_get(adds, 0), "usb-1-4", 1, 5);
	json_decref(adds);
	assert_non_null(devices_find(&f->devs, "usb-1-4"));
	g_free(d);
}

static void
kernel_source_is_used_when_udevd_does_not_run(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	assert_string_equal(usbwatch_source(f->uw), "kernel");
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	g_free(d);
}

static void
udev_source_is_used_when_udevd_runs(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .udevd = true });
	assert_string_equal(usbwatch_source(f->uw), "udev");
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	g_free(d);
}

static void
non_matching_device_is_ignored(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-3", 6, "c077", "Optical Mouse", "M1");
	settle(f);
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	assert_true(st.events >= 1);
	assert_true(st.ignored >= 1);
	assert_int_equal(recorded(f, "device_add", NULL, NULL), 0);
	g_free(d);
}

static void
unplugged_attached_device_is_removed_with_device_del(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	unplug(f, d);
	assert_true(wait_for(f, attached_is, 0));
	json_t *dels = json_array();
	assert_int_equal(recorded(f, "device_del", NULL, dels), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(dels, 0), "id")), "usb-1-4");
	json_decref(dels);
	assert_null(devices_find(&f->devs, "usb-1-4"));
}

static void
unplugged_device_that_was_never_attached_sends_nothing(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-3", 6, "c077", "Optical Mouse", "M1");
	settle(f);
	unplug(f, d);
	settle(f);
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 0);
}

#define BURST 40

static bool
events_seen(struct fx *f, long want)
{
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	return (long)st.events >= want;
}

/* umockdev delivers uevents over a UNIX datagram socket, which queues only
 * about net.unix.max_dgram_qlen (10) messages; the sender aborts on a full
 * queue. So a burst goes out eight events at a time, each group as soon as
 * the watcher has read the previous one, while the device_adds of earlier
 * groups are still in flight. */
static void
burst_sent(struct fx *f, long *emitted)
{
	if (++*emitted % 8 == 0)
		assert_true(wait_for(f, events_seen, *emitted));
}

static void
burst_of_forty_plugged_then_unplugged_loses_and_duplicates_nothing(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Burst", .xhci = true });
	/* A hub with 40 devices behind it (as a big USB tree enumerates), all
	 * plugged before the loop gets to run. */
	long emitted = 0;
	char *hub = add_usb(f, f->roothub, "1-2", 1, 2, "05e3", "0610", "09", "USB2.0 Hub", "");
	burst_sent(f, &emitted);
	char *devs[BURST];
	for (int i = 0; i < BURST; i++) {
		char name[16], serial[16];
		snprintf(name, sizeof(name), "1-2.%d", i + 1);
		snprintf(serial, sizeof(serial), "S%02d", i);
		devs[i] = add_usb(f, hub, name, 1, 10 + i, "0781", "5581", "00", "Burst Stick", serial);
		burst_sent(f, &emitted);
	}
	assert_true(wait_for(f, attached_is, BURST));
	json_t *adds = json_array();
	assert_int_equal(recorded(f, "device_add", "usb-host", adds), BURST);
	/* each exactly once, each with its own address */
	for (int i = 0; i < BURST; i++) {
		char id[16];
		snprintf(id, sizeof(id), "usb-1-2.%d", i + 1);
		int seen = 0;
		size_t k;
		json_t *a;
		json_array_foreach(adds, k, a) {
			if (strcmp(json_string_value(json_object_get(a, "id")), id) == 0) {
				seen++;
				assert_usb_host_add(a, id, 1, 10 + i);
			}
		}
		assert_int_equal(seen, 1);
	}
	json_decref(adds);
	/* the hub is pulled: every device goes at once */
	for (int i = 0; i < BURST; i++) {
		/* by the time the watcher reads the event, sysfs is gone */
		umockdev_testbed_uevent(f->tb, devs[i], "remove");
		umockdev_testbed_remove_device(f->tb, devs[i]);
		burst_sent(f, &emitted);
		g_free(devs[i]);
	}
	umockdev_testbed_uevent(f->tb, hub, "remove");
	umockdev_testbed_remove_device(f->tb, hub);
	g_free(hub);
	assert_true(wait_for(f, attached_is, 0));
	assert_int_equal(recorded(f, "device_del", NULL, NULL), BURST);
}

static void
bus_address_reused_by_another_device_is_a_new_device(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Stick", .xhci = true });
	char *a = plug(f, "1-4", 7, "5581", "Stick A", "AAA");
	assert_true(wait_for(f, attached_is, 1));
	unplug(f, a);
	assert_true(wait_for(f, attached_is, 0));
	/* address 7 again, in another port, another device */
	char *b = plug(f, "1-3", 7, "5591", "Stick B", "BBB");
	assert_true(wait_for(f, attached_is, 1));
	json_t *adds = json_array();
	assert_int_equal(recorded(f, "device_add", "usb-host", adds), 2);
	assert_usb_host_add(json_array_get(adds, 0), "usb-1-4", 1, 7);
	assert_usb_host_add(json_array_get(adds, 1), "usb-1-3", 1, 7);
	json_decref(adds);
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 1);
	g_free(b);
}

static void
device_reenumerating_in_the_same_port_is_attached_again_after_the_old_one_goes(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Phone", .xhci = true });
	char *a = plug(f, "1-4", 8, "4ee7", "Phone", "P1");
	assert_true(wait_for(f, attached_is, 1));
	/* The phone switches mode: gone and back in the same port with a new
	 * address, both events before the loop runs. */
	unplug(f, a);
	char *b = plug(f, "1-4", 9, "4ee2", "Phone", "P1");
	assert_true(wait_for(f, port_1_4_has_address, 9));
	assert_int_equal(n_usb_host(f), 1);
	const struct device_entry *e = devices_find(&f->devs, "usb-1-4");
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e->args, "hostaddr")), 9);
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 1);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 2);
	g_free(b);
}

static void
duplicate_add_event_attaches_once(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	/* the add umockdev sends, and two more */
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	umockdev_testbed_uevent(f->tb, d, "add");
	umockdev_testbed_uevent(f->tb, d, "add");
	assert_true(wait_for(f, attached_is, 1));
	settle(f);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 1);
	g_free(d);
}

static void
root_hub_is_never_attached(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = ".", .xhci = true });
	char *rh = add_usb(f, f->pci, "usb2", 2, 1, "1d6b", "0003", "09", "xHCI Host Controller", "x");
	settle(f);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 0);
	g_free(rh);
}

static void
hub_is_attached_only_when_named_by_id(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Hub|05e3:0620", .xhci = true });
	/* named by its product string only: not taken */
	char *h1 = add_usb(f, f->roothub, "1-5", 1, 20, "05e3", "0610", "09", "USB2.0 Hub", "");
	settle(f);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 0);
	/* named by ID: taken */
	char *h2 = add_usb(f, f->roothub, "1-6", 1, 21, "05e3", "0620", "09", "USB3.1 Hub", "");
	assert_true(wait_for(f, attached_is, 1));
	assert_non_null(devices_find(&f->devs, "usb-1-6"));
	g_free(h1);
	g_free(h2);
}

static void
device_behind_passed_through_controller_is_skipped(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .passed_pci = "0000:00:14.0" });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	settle(f);
	assert_int_equal(recorded(f, "device_add", NULL, NULL), 0);
	struct usbwatch_stats st;
	usbwatch_get_stats(f->uw, &st);
	assert_true(st.ignored >= 1);
	g_free(d);
}

static void
failed_device_add_is_reported_and_the_next_device_attached(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Stick", .xhci = true, .scenario =
	    "{\"commands\": [{\"command\": \"device_add\", \"nth\": 1, \"reply\": {\"error\": "
	    "{\"class\": \"GenericError\", \"desc\": \"failed to find host usb device 1:7\"}}}]}" });
	char *a = plug(f, "1-4", 7, "5581", "Stick A", "AAA");
	assert_true(wait_for(f, stats_failed_is, 1));
	assert_int_equal(n_usb_host(f), 0);
	char *b = plug(f, "1-3", 8, "5591", "Stick B", "BBB");
	assert_true(wait_for(f, attached_is, 1));
	assert_non_null(devices_find(&f->devs, "usb-1-3"));
	g_free(a);
	g_free(b);
}

static void
device_add_answered_late_counts_as_attached(void **state)
{
	/* QEMU answers device_add after the supervisor stopped waiting (1.5 s
	 * against 1 s): it attached the device after all, so the device is the
	 * guest's, not a failure whose id is free for another add. */
	struct fx *f = *state;
	setenv("VFIO_TEST_QMP_TIMEOUT_MS", "1000", 1);
	fx_start(f, &(struct fx_opts){ .regex = "Stick", .xhci = true, .scenario =
	    "{\"commands\": [{\"command\": \"device_add\", \"nth\": 1, \"delay_ms\": 1500}]}" });
	char *a = plug(f, "1-4", 7, "5581", "Stick A", "AAA");
	bool ok = wait_for(f, attached_is, 1);
	unsetenv("VFIO_TEST_QMP_TIMEOUT_MS");
	assert_true(ok);
	assert_non_null(devices_find(&f->devs, "usb-1-4"));
	assert_false(stats_failed_is(f, 1));
	g_free(a);
}

static void
usb_add_hot_adds_the_controller_into_a_spare_root_port_first(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .xhci = false, .no_start = true });
	char *d = add_usb(f, f->roothub, "1-4", 1, 5, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	struct verr err = { 0 };
	assert_int_equal(usbwatch_attach_matching(f->uw, "Receiver", on_result, f, &err), 0);
	assert_int_equal(f->n_results, 0);    /* the result comes from the loop */
	assert_true(wait_for(f, results_are, 1));
	assert_int_equal(f->last_result, 0);
	assert_non_null(strstr(f->last_msg, "attached usb-1-4"));
	json_t *adds = json_array();
	assert_int_equal(recorded(f, "device_add", NULL, adds), 2);
	json_t *x = json_array_get(adds, 0);
	assert_string_equal(json_string_value(json_object_get(x, "driver")), "qemu-xhci");
	assert_string_equal(json_string_value(json_object_get(x, "id")), "xhci");
	assert_string_equal(json_string_value(json_object_get(x, "bus")), "rp1");
	assert_usb_host_add(json_array_get(adds, 1), "usb-1-4", 1, 5);
	json_decref(adds);
	/* a second usb add does not add a second controller */
	char *e = add_usb(f, f->roothub, "1-3", 1, 6, "046d", "c077", "00", "Optical Mouse", "M");
	assert_int_equal(usbwatch_attach_matching(f->uw, "Mouse", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 2));
	assert_int_equal(recorded(f, "device_add", "qemu-xhci", NULL), 1);
	g_free(d);
	g_free(e);
}

static void
usb_add_without_a_spare_root_port_for_the_controller_is_refused(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .xhci = false, .no_start = true, .no_spare_port = true });
	char *d = add_usb(f, f->roothub, "1-4", 1, 5, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	struct verr err = { 0 };
	assert_int_equal(usbwatch_attach_matching(f->uw, "Receiver", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 1));
	assert_true(f->last_result < 0);
	assert_non_null(strstr(f->last_msg, "usb-1-4"));
	assert_non_null(strstr(f->last_msg, "no spare PCIe root port"));
	assert_int_equal(recorded(f, "device_add", NULL, NULL), 0);
	g_free(d);
}

static void
device_unplugged_while_being_attached_is_removed_once_attached(void **state)
{
	struct fx *f = *state;
	/* QEMU takes 2 s to answer the device_add */
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .scenario =
	    "{\"commands\": [{\"command\": \"device_add\", \"delay_ms\": 2000}]}" });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, stats_sent_is, 1));
	/* pulled while QEMU is still attaching it: removed once attached */
	unplug(f, d);
	assert_true(wait_for(f, stats_removed_is, 1));
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 1);
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 1);
	assert_int_equal(n_usb_host(f), 0);
}

static void
usb_add_of_an_attached_device_is_refused(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	struct verr err = { 0 };
	assert_int_equal(usbwatch_attach_matching(f->uw, "Receiver", on_result, f, &err), -EALREADY);
	assert_non_null(strstr(err.msg, "already attached"));
	assert_int_equal(usbwatch_attach_matching(f->uw, "Nothing", on_result, f, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "matches no USB device"));
	assert_int_equal(usbwatch_attach_matching(f->uw, "(", on_result, f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "usb add '(' is not a valid extended regular expression"));
	/* An empty pattern would select every device: refused as -usb '' is. */
	assert_int_equal(usbwatch_attach_matching(f->uw, "", on_result, f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "usb add needs a regular expression"));
	assert_int_equal(usbwatch_attach_matching(f->uw, "||", on_result, f, &err), -EINVAL);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 1);
	g_free(d);
}

static void
usb_del_by_id_removes_the_device(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	struct verr err = { 0 };
	assert_int_equal(usbwatch_detach(f->uw, "usb-9-9", on_result, f, &err), -ENOENT);
	assert_int_equal(usbwatch_detach(f->uw, "usb-1-4", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 1));
	assert_int_equal(f->last_result, 0);
	assert_string_equal(f->last_msg, "removed usb-1-4");
	assert_int_equal(n_usb_host(f), 0);
	g_free(d);
}

static void
usb_del_by_regex_removes_every_match(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Stick", .xhci = true });
	char *a = plug(f, "1-4", 5, "5581", "Stick A", "A");
	char *b = plug(f, "1-3", 6, "5591", "Stick B", "B");
	assert_true(wait_for(f, attached_is, 2));
	struct verr err = { 0 };
	assert_int_equal(usbwatch_detach(f->uw, "Stick", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 1));
	assert_int_equal(f->last_result, 0);
	assert_int_equal(n_usb_host(f), 0);
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 2);
	g_free(a);
	g_free(b);
}

static void
start_attaches_matching_devices_already_plugged(void **state)
{
	struct fx *f = *state;
	/* plugged before the watcher starts (after the snapshot): no event */
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .no_start = true });
	char *d = add_usb(f, f->roothub, "1-4", 1, 5, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	struct verr err = { 0 };
	assert_int_equal(usbwatch_start(f->uw, &err), 0);
	assert_true(wait_for(f, attached_is, 1));
	/* and its unplug is seen */
	unplug(f, d);
	assert_true(wait_for(f, attached_is, 0));
}

/* What the control FIFO or the plan does: device_add, then the bookkeeping. */
static void
attach_by_hand(struct fx *f, const char *id, int bus, int addr)
{
	json_t *args = json_pack("{s:s, s:i, s:i, s:s, s:s}", "driver", "usb-host", "hostbus", bus, "hostaddr", addr,
	    "id", id, "bus", "xhci.0");
	struct verr err = { 0 };
	assert_int_equal(qmp_run_sync(f->qmp, "device_add", json_deep_copy(args), WAIT_MS, NULL, &err), 0);
	devices_attached(&f->devs, args);
	json_decref(args);
}

static void
device_attached_by_another_path_is_removed_on_unplug(void **state)
{
	struct fx *f = *state;
	/* no -usb: nothing is attached by the watcher itself */
	fx_start(f, &(struct fx_opts){ .xhci = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	settle(f);
	assert_int_equal(recorded(f, "device_add", NULL, NULL), 0);
	attach_by_hand(f, "usb-1-4", 1, 5);
	unplug(f, d);
	assert_true(wait_for(f, attached_is, 0));
	json_t *dels = json_array();
	assert_int_equal(recorded(f, "device_del", NULL, dels), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(dels, 0), "id")), "usb-1-4");
	json_decref(dels);
}

static void
device_the_plan_attached_is_not_attached_again_and_is_removed_on_unplug(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .no_start = true });
	char *d = add_usb(f, f->roothub, "1-4", 1, 5, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	attach_by_hand(f, "usb-1-4", 1, 5);     /* in prelaunch, from the plan */
	struct verr err = { 0 };
	assert_int_equal(usbwatch_start(f->uw, &err), 0);
	umockdev_testbed_uevent(f->tb, d, "add");   /* a late duplicate */
	settle(f);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 1);
	unplug(f, d);
	assert_true(wait_for(f, attached_is, 0));
	assert_int_equal(recorded(f, "device_del", NULL, NULL), 1);
}

static void
usb_del_removes_a_device_the_plan_attached(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .xhci = true, .no_start = true });
	char *d = add_usb(f, f->roothub, "1-4", 1, 5, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	attach_by_hand(f, "usb-1-4", 1, 5);
	struct verr err = { 0 };
	assert_int_equal(usbwatch_detach(f->uw, "usb-1-4", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 1));
	assert_int_equal(f->last_result, 0);
	assert_int_equal(n_usb_host(f), 0);
	g_free(d);
}

static void
resync_after_lost_events_removes_what_left_and_attaches_what_came(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Stick", .xhci = true });
	char *a = plug(f, "1-4", 5, "5581", "Stick A", "A");
	assert_true(wait_for(f, attached_is, 1));
	/* A leaves without a remove event and B comes (its add event is read
	 * only after the re-read), as when the kernel drops events (ENOBUFS) */
	umockdev_testbed_remove_device(f->tb, a);
	g_free(a);
	char *b = add_usb(f, f->roothub, "1-3", 1, 6, "046d", "5591", "00", "Stick B", "B");
	usbwatch_resync(f->uw);
	assert_true(wait_for(f, port_1_3_attached_alone, 1));
	json_t *dels = json_array();
	assert_int_equal(recorded(f, "device_del", NULL, dels), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(dels, 0), "id")), "usb-1-4");
	json_decref(dels);
	assert_int_equal(recorded(f, "device_add", "usb-host", NULL), 2);
	g_free(b);
}

static void
attached_node_is_given_to_qemus_user_journaled_and_given_back(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Receiver", .xhci = true, .chown = true });
	char *d = plug(f, "1-4", 5, "c52b", "Unifying Receiver", "ABC");
	assert_true(wait_for(f, attached_is, 1));
	char node[PATH_MAX];
	snprintf(node, sizeof(node), "%s/dev/bus/usb/001/005", f->root);
	struct stat st;
	assert_int_equal(stat(node, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	json_t *in_force = journal_changes_in_force(&f->j);
	assert_int_equal(json_array_size(in_force), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(in_force, 0), "target")),
	    "/dev/bus/usb/001/005");
	json_decref(in_force);
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&f->j, 0, &failed), 0);
	strv_free(&failed);
	assert_int_equal(stat(node, &st), 0);
	assert_int_equal(st.st_uid, 0);
	g_free(d);
}

/* --- one rule for -usb, usb add, usb del and hotplug ---------------------- */

/* Three devices besides the root hub: a receiver, a stick and a hub, all
 * made by "Test Maker" (add_usb), on ports 1-3, 1-4 and 1-5. */
static void
add_three(struct fx *f, char **d)
{
	d[0] = add_usb(f, f->roothub, "1-3", 1, 3, "046d", "c52b", "00", "Unifying Receiver", "ABC");
	d[1] = add_usb(f, f->roothub, "1-4", 1, 4, "0781", "5567", "00", "Cruzer Stick", "S1");
	d[2] = add_usb(f, f->roothub, "1-5", 1, 5, "05e3", "0610", "09", "USB2.0 Hub", "");
}

/* The usb-host ids attached now, sorted, joined by ',' (allocated). */
static char *
attached_ids(const struct fx *f)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "");
	for (const char *port = "1-3"; port != NULL; port = strcmp(port, "1-3") == 0 ? "1-4" :
	    strcmp(port, "1-4") == 0 ? "1-5" : NULL) {
		char id[16];
		snprintf(id, sizeof(id), "usb-%s", port);
		if (devices_find(&f->devs, id) != NULL)
			strbuf_printf(&sb, "%s%s", sb.len ? "," : "", id);
	}
	return strbuf_steal(&sb);
}

/* -usb R: what the plan attaches, from the same host. */
static char *
plan_selects(const char *regex)
{
	struct options o;
	struct verr err = { 0 };
	char *argv[] = { "vfio", "-usb", (char *)regex, NULL };
	if (options_parse(&o, 3, argv, &err) != 0)
		fail_msg("%s", err.msg);
	struct host_snapshot snap;
	memset(&snap, 0, sizeof(snap));
	snap.sudo_uid = snap.sudo_gid = -1;
	assert_int_equal(usb_scan(&snap, &err), 0);
	struct plan plan;
	plan_build(&plan, &o, &snap);
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "");
	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(plan.devices, "usb"), i, u)
		strbuf_printf(&sb, "%susb-%s", sb.len ? "," : "", json_string_value(json_object_get(u, "port")));
	plan_free(&plan);
	snapshot_free(&snap);
	options_free(&o);
	return strbuf_steal(&sb);
}

static void
fx_restart(struct fx **f)
{
	fx_teardown((void **)f);
	*f = xcalloc(1, sizeof(**f));
}

static void
usb_add_usb_del_dash_usb_and_hotplug_select_the_same_devices(void **state)
{
	static const struct { const char *regex, *want; } cases[] = {
		{ "Receiver", "usb-1-3" },
		{ "receiver", "" },                     /* case-sensitive, as -pci */
		{ "^Test Maker$", "usb-1-3,usb-1-4" },  /* an own string, alone */
		{ "Test Maker.*Stick", "" },            /* strings are not joined */
		{ "046d:c52b", "usb-1-3" },
		{ "05e3:0610", "usb-1-5" },             /* a hub by its ID */
		{ "Hub", "" },                          /* a hub by anything else: never */
		{ "^1-4$", "usb-1-4" },                 /* the port path */
		{ ".", "usb-1-3,usb-1-4,usb-1-5" },     /* never the root hub; the hub's ID matches too */
		{ "Test Maker", "usb-1-3,usb-1-4" },    /* the hub's own strings do not count */
	};
	struct fx *f = *state;
	for (size_t k = 0; k < nitems(cases); k++) {
		const char *re = cases[k].regex, *want = cases[k].want;
		char *d[3];
		/* hotplug under -usb R: the three are plugged while the guest runs */
		fx_start(f, &(struct fx_opts){ .regex = re, .xhci = true });
		add_three(f, d);
		long n_want = 0;
		for (const char *p = want; *p; p++)
			n_want += *p == '-' && p[1] == '1';	/* one "usb-1-N" each */
		wait_for(f, attached_is, n_want);
		settle(f);
		char *hot = attached_ids(f);
		char *planned = plan_selects(re);
		for (int i = 0; i < 3; i++)
			g_free(d[i]);
		fx_restart(&f);
		*state = f;

		/* usb add R, then every device by its ID, then usb del R */
		fx_start(f, &(struct fx_opts){ .xhci = true });
		add_three(f, d);
		settle(f);
		struct verr err = { 0 };
		f->n_results = 0;
		if (usbwatch_attach_matching(f->uw, re, on_result, f, &err) == 0)
			assert_true(wait_for(f, results_are, 1));
		char *added = attached_ids(f);
		const char *ids[] = { "046d:c52b", "0781:5567", "05e3:0610" };
		for (size_t i = 0; i < nitems(ids); i++) {
			f->n_results = 0;
			if (usbwatch_attach_matching(f->uw, ids[i], on_result, f, &err) == 0)
				assert_true(wait_for(f, results_are, 1));
		}
		assert_true(wait_for(f, attached_is, 3));
		f->n_results = 0;
		if (usbwatch_detach(f->uw, re, on_result, f, &err) == 0)
			assert_true(wait_for(f, results_are, 1));
		settle(f);
		/* removed = the three minus what is left */
		char *left = attached_ids(f);
		struct strbuf removed = { 0 };
		strbuf_puts(&removed, "");
		for (size_t i = 0; i < 3; i++) {
			char id[16];
			snprintf(id, sizeof(id), "usb-1-%zu", i + 3);
			if (strstr(left, id) == NULL)
				strbuf_printf(&removed, "%s%s", removed.len ? "," : "", id);
		}
		if (strcmp(planned, want) != 0 || strcmp(hot, want) != 0 || strcmp(added, want) != 0 ||
		    strcmp(removed.s, want) != 0)
			fail_msg("'%s' selects [%s]: -usb [%s], hotplug [%s], usb add [%s], usb del [%s]", re, want,
			    planned, hot, added, removed.s);
		free(hot);
		free(planned);
		free(added);
		free(left);
		strbuf_free(&removed);
		for (int i = 0; i < 3; i++)
			g_free(d[i]);
		fx_restart(&f);
		*state = f;
	}
}

/* --- real QEMU ----------------------------------------------------------- */

static void
real_qemu_refusal_of_a_missing_host_device_is_reported_and_survived(void **state)
{
	struct fx *f = *state;
	fx_start(f, &(struct fx_opts){ .regex = "Ghost", .xhci = true });
	/* bus 9 address 99 exists only in the testbed, not for QEMU */
	char *hub9 = add_usb(f, f->pci, "usb9", 9, 1, "1d6b", "0002", "09", "xHCI Host Controller", "r");
	char *d = add_usb(f, hub9, "9-1", 9, 99, "1234", "5678", "00", "Ghost Device", "G");
	struct verr err = { 0 };
	assert_int_equal(usbwatch_attach_matching(f->uw, "Ghost", on_result, f, &err), 0);
	assert_true(wait_for(f, results_are, 1));
	assert_int_equal(f->last_result, -EIO);
	/* QEMU's own words are passed through */
	assert_non_null(strstr(f->last_msg, "failed to find host usb device 9:99"));
	assert_non_null(strstr(f->last_msg, "usb-9-1"));
	assert_int_equal(n_usb_host(f), 0);
	/* and the same device plugged is reported the same way; QEMU and the
	 * watcher carry on */
	umockdev_testbed_uevent(f->tb, d, "add");
	assert_true(wait_for(f, stats_failed_is, 2));
	json_t *ret = NULL;
	assert_int_equal(qmp_run_sync(f->qmp, "query-status", NULL, WAIT_MS, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
	json_decref(ret);
	g_free(d);
	g_free(hub9);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_alloc, fx_teardown)

int
main(int argc, char **argv)
{
	log_init(getenv("VFIO_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
	const char *preload = getenv("LD_PRELOAD");
	if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
		fprintf(stderr, "skip: not running under umockdev-wrapper (the udev events come from umockdev)\n");
		return 77;
	}
	real_qemu = argc > 1 && strcmp(argv[1], "real") == 0;
	/* test-usbwatch mock CASE: only that case */
	if (argc > 2)
		cmocka_set_test_filter(argv[2]);
	if (real_qemu) {
		if (system("qemu-system-x86_64 -version >/dev/null 2>&1") != 0) {
			fprintf(stderr, "skip: no qemu-system-x86_64\n");
			return 77;
		}
		const struct CMUnitTest real[] = {
			T(real_qemu_refusal_of_a_missing_host_device_is_reported_and_survived),
		};
		return cmocka_run_group_tests_name("usbwatch-real-qemu", real, NULL, NULL);
	}
	const struct CMUnitTest tests[] = {
		T(plugged_matching_device_is_attached_by_bus_address_with_port_id),
		T(kernel_source_is_used_when_udevd_does_not_run),
		T(udev_source_is_used_when_udevd_runs),
		T(non_matching_device_is_ignored),
		T(unplugged_attached_device_is_removed_with_device_del),
		T(unplugged_device_that_was_never_attached_sends_nothing),
		T(burst_of_forty_plugged_then_unplugged_loses_and_duplicates_nothing),
		T(bus_address_reused_by_another_device_is_a_new_device),
		T(device_reenumerating_in_the_same_port_is_attached_again_after_the_old_one_goes),
		T(duplicate_add_event_attaches_once),
		T(root_hub_is_never_attached),
		T(hub_is_attached_only_when_named_by_id),
		T(device_behind_passed_through_controller_is_skipped),
		T(failed_device_add_is_reported_and_the_next_device_attached),
		T(device_add_answered_late_counts_as_attached),
		T(usb_add_hot_adds_the_controller_into_a_spare_root_port_first),
		T(usb_add_without_a_spare_root_port_for_the_controller_is_refused),
		T(device_unplugged_while_being_attached_is_removed_once_attached),
		T(usb_add_of_an_attached_device_is_refused),
		T(usb_del_by_id_removes_the_device),
		T(usb_del_by_regex_removes_every_match),
		T(usb_add_usb_del_dash_usb_and_hotplug_select_the_same_devices),
		T(start_attaches_matching_devices_already_plugged),
		T(device_attached_by_another_path_is_removed_on_unplug),
		T(device_the_plan_attached_is_not_attached_again_and_is_removed_on_unplug),
		T(usb_del_removes_a_device_the_plan_attached),
		T(resync_after_lost_events_removes_what_left_and_attaches_what_came),
		T(attached_node_is_given_to_qemus_user_journaled_and_given_back),
	};
	return cmocka_run_group_tests_name("usbwatch", tests, NULL, NULL);
}
