/* USB in the host snapshot: lsusb lines with names from the udev hwdb, from
 * usb.ids and from the devices' own strings; root hubs, hubs, port paths,
 * host controllers; the text a -usb regex is matched against. */
#include <libudev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "hostroot.h"
#include "passthrough.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static const struct usb_device *
by_port(const struct host_snapshot *snap, const char *port)
{
	for (size_t i = 0; i < snap->n_usb; i++)
		if (strcmp(snap->usb[i].sysname, port) == 0)
			return &snap->usb[i];
	fail_msg("no USB device %s in the snapshot", port);
	return NULL;
}

static bool
have_hwdb(void)
{
	struct udev *udev = udev_new();
	struct udev_hwdb *hwdb = udev ? udev_hwdb_new(udev) : NULL;
	bool ok = hwdb != NULL;
	udev_hwdb_unref(hwdb);
	udev_unref(udev);
	return ok;
}

static int
reset_sources(void **state)
{
	usb_names_set_sources(true, NULL);
	return 0;
}

/* A usb.ids that knows Logitech's receiver and SteelSeries (but none of
 * its mice), in the file's real layout. */
static const char fixture_usb_ids[] =
	"#\n# List of USB ID's\n#\n# Version: fixture\n\n"
	"046d  Logitech, Inc.\n"
	"\tc52a  Some Other Receiver\n"
	"\tc52b  Unifying Receiver\n"
	"\t\t0001  an interface line\n"
	"1038  SteelSeries ApS\n"
	"\t1700  Not the Rival 100\n"
	"1d6b  Linux Foundation\n"
	"\t0002  2.0 root hub\n"
	"\n# List of known device classes, subclasses and protocols\n"
	"C 00  (Defined at Interface level)\n"
	"C 09  Hub\n";

static void
usb_lines_named_from_hwdb(void **state)
{
	if (!have_hwdb()) {
		print_message("no udev hwdb (run systemd-hwdb update): skipped\n");
		skip();
	}
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_string_equal(by_port(&snap, "1-4.2")->line,
	    "Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver");
	assert_string_equal(by_port(&snap, "1-4")->line, "Bus 001 Device 003: ID 05e3:0610 Genesys Logic, Inc. Hub");
	assert_string_equal(by_port(&snap, "usb1")->line, "Bus 001 Device 001: ID 1d6b:0002 Linux Foundation 2.0 root hub");
	assert_string_equal(by_port(&snap, "1-6")->line, "Bus 001 Device 005: ID 045e:02ea Microsoft Corp. Xbox One Controller");
	/* the hwdb knows the vendor but not this mouse: its own string names it */
	assert_string_equal(by_port(&snap, "1-3")->line,
	    "Bus 001 Device 002: ID 1038:1702 SteelSeries ApS SteelSeries Rival 100 Gaming Mouse");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
usb_names_fall_back_to_usb_ids(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/usb.ids", fixture_usb_ids);
	char *ids = xasprintf("%s/usb.ids", root);
	usb_names_set_sources(false, ids);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_string_equal(by_port(&snap, "1-4.2")->line,
	    "Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver");
	assert_string_equal(by_port(&snap, "usb3")->line, "Bus 003 Device 001: ID 1d6b:0002 Linux Foundation 2.0 root hub");
	/* vendor from usb.ids, product from the device */
	assert_string_equal(by_port(&snap, "1-3")->line,
	    "Bus 001 Device 002: ID 1038:1702 SteelSeries ApS SteelSeries Rival 100 Gaming Mouse");
	snapshot_free(&snap);
	free(ids);
	fixture_remove(root);
}

static void
usb_names_from_the_system_usb_ids(void **state)
{
	if (access("/usr/share/misc/usb.ids", R_OK) != 0 && access("/usr/share/hwdata/usb.ids", R_OK) != 0) {
		print_message("no system usb.ids (install usb.ids): skipped\n");
		skip();
	}
	usb_names_set_sources(false, NULL);
	const struct host_snapshot *snap = fixture_cached("desktop");
	assert_string_equal(by_port(snap, "1-4.2")->line,
	    "Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver");
}

static void
usb_names_fall_back_to_own_strings(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/usb.ids", "# nothing known\n");
	char *ids = xasprintf("%s/usb.ids", root);
	usb_names_set_sources(false, ids);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_string_equal(by_port(&snap, "1-4.2")->line, "Bus 001 Device 004: ID 046d:c52b Logitech USB Receiver");
	/* a device without a manufacturer string: lsusb leaves the name empty */
	assert_string_equal(by_port(&snap, "1-4")->line, "Bus 001 Device 003: ID 05e3:0610  USB2.0 Hub");
	/* leading blanks of a device's string stay, as lsusb shows them */
	assert_string_equal(by_port(&snap, "3-1")->line, "Bus 003 Device 002: ID 0781:5583 SanDisk  SanDisk 3.2Gen1");
	snapshot_free(&snap);
	free(ids);
	fixture_remove(root);
}

static void
usb_interfaces_are_not_devices(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	/* six devices and the root hubs of buses 1 and 3 */
	assert_int_equal(snap.n_usb, 8);
	for (size_t i = 0; i < snap.n_usb; i++)
		assert_null(strchr(snap.usb[i].sysname, ':'));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
usb_sorted_by_bus_and_device(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	for (size_t i = 1; i < snap->n_usb; i++) {
		const struct usb_device *a = &snap->usb[i - 1], *b = &snap->usb[i];
		assert_true(a->bus < b->bus || (a->bus == b->bus && a->devnum < b->devnum));
	}
	assert_string_equal(snapshot_usb_find(snap, 1, 4)->sysname, "1-4.2");
	assert_null(snapshot_usb_find(snap, 2, 1));
}

static void
usb_root_hubs_and_hubs_flagged(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_true(by_port(&snap, "usb1")->is_root_hub);
	assert_true(by_port(&snap, "usb3")->is_root_hub);
	assert_false(by_port(&snap, "1-4")->is_root_hub);
	assert_true(by_port(&snap, "1-4")->is_hub);
	assert_false(by_port(&snap, "1-4.2")->is_hub);
	assert_false(by_port(&snap, "1-6")->is_hub);
	assert_false(by_port(&snap, "1-6")->is_root_hub);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
usb_port_path_ids_and_controller(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	const struct usb_device *d = by_port(&snap, "1-4.2");
	assert_int_equal(d->bus, 1);
	assert_int_equal(d->devnum, 4);
	assert_int_equal(d->vendor, 0x046d);
	assert_int_equal(d->product, 0xc52b);
	assert_string_equal(d->controller, "0000:00:14.0");
	assert_string_equal(by_port(&snap, "usb1")->controller, "0000:00:14.0");
	/* behind a root port: the nearest PCI device is the controller */
	assert_string_equal(by_port(&snap, "3-1")->controller, "0000:04:00.0");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
usb_own_strings_kept(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	const struct usb_device *d = by_port(snap, "1-6");
	assert_string_equal(d->manufacturer, "Microsoft");
	assert_string_equal(d->product_name, "Controller");
	assert_string_equal(d->serial, "3039373130303437");
	assert_string_equal(by_port(snap, "1-4")->manufacturer, "");
}

static bool
usb_selects(const char *pattern, const struct usb_device *d)
{
	regex_t re;
	struct verr err = { 0 };
	if (passthrough_regex(&re, "-usb", pattern, &err) != 0)
		fail_msg("%s", err.msg);
	bool hit = passthrough_usb_matches(&re, d);
	regfree(&re);
	return hit;
}

/* The one USB rule (-usb, usb add, usb del, hotplug): the lsusb line, the
 * device's own strings and its port path, each on its own and
 * case-sensitive; hubs only by ID, root hubs never. */
static void
usb_rule_matches_line_own_strings_and_port_each_alone(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/usb.ids", fixture_usb_ids);
	char *ids = xasprintf("%s/usb.ids", root);
	usb_names_set_sources(false, ids);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	const struct usb_device *rx = by_port(&snap, "1-4.2");
	assert_true(usb_selects("Logitech, Inc. Unifying", rx));	/* the lsusb line */
	assert_true(usb_selects("^Logitech$", rx));		/* its manufacturer string, alone */
	assert_true(usb_selects("^USB Receiver$", rx));		/* its product string */
	assert_true(usb_selects("^1-4\\.2$", rx));		/* its port path */
	assert_true(usb_selects("046d:c52b", rx));
	assert_false(usb_selects("logitech", rx));		/* case-sensitive, as -pci */
	assert_false(usb_selects("Logitech.*USB Receiver", rx));	/* strings are not joined */
	assert_true(usb_selects("^3039373130303437$", by_port(&snap, "1-6")));	/* serial */
	for (size_t i = 0; i < snap.n_usb; i++) {
		if (snap.usb[i].is_root_hub)
			assert_false(usb_selects(".", &snap.usb[i]));
	}
	snapshot_free(&snap);
	free(ids);
	fixture_remove(root);
}

static void
usb_host_without_usb_records_none(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char *cmd = xasprintf("rm -rf %s/sys/bus/usb", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_int_equal(snap.n_usb, 0);
	assert_true(snap.n_pci > 0);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
usb_libusb_fill_is_harmless_without_a_usb_bus(void **state)
{
	/* The real root of this machine: libusb starts and lists what is
	 * there; a device it does not list keeps its (missing) strings. */
	hostroot_init("/");
	struct host_snapshot snap = { 0 };
	struct usb_device dev = { .bus = 250, .devnum = 99, .vendor = 0x046d, .product = 0xc52b };
	snap.usb = &dev;
	snap.n_usb = 1;
	int n = usb_fill_from_libusb(&snap);
	if (access("/sys/bus/usb/devices", F_OK) != 0)
		assert_int_equal(n, 0);
	else
		assert_true(n >= -1);
	assert_string_equal(dev.manufacturer, "");
	assert_string_equal(dev.product_name, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(usb_lines_named_from_hwdb, reset_sources),
		cmocka_unit_test_teardown(usb_names_fall_back_to_usb_ids, reset_sources),
		cmocka_unit_test_teardown(usb_names_from_the_system_usb_ids, reset_sources),
		cmocka_unit_test_teardown(usb_names_fall_back_to_own_strings, reset_sources),
		cmocka_unit_test(usb_interfaces_are_not_devices),
		cmocka_unit_test(usb_sorted_by_bus_and_device),
		cmocka_unit_test(usb_root_hubs_and_hubs_flagged),
		cmocka_unit_test(usb_port_path_ids_and_controller),
		cmocka_unit_test(usb_own_strings_kept),
		cmocka_unit_test_teardown(usb_rule_matches_line_own_strings_and_port_each_alone, reset_sources),
		cmocka_unit_test(usb_host_without_usb_records_none),
		cmocka_unit_test(usb_libusb_fill_is_harmless_without_a_usb_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
