/* Binding devices to vfio-pci and giving them back, against the simulated
 * driver core: what a user would see on their host before, during and after
 * a guest. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "change.h"
#include "child.h"
#include "display.h"
#include "hostroot.h"
#include "journal.h"
#include "testutil.h"
#include "util.h"
#include "vfio_bind.h"

#define GPU "0000:01:00.0"
#define AUDIO "0000:01:00.1"
#define GPU_USB "0000:01:00.2"
#define UCSI "0000:01:00.3"
#define NVME "0000:02:00.0"

static json_t *
bind_change(const char *addr, int group, bool display)
{
	return json_pack("{ss ss ss s{si sb}}", "action", "pci-bind-vfio", "target", addr, "to", "vfio-pci",
	    "args", "group", group, "display", display);
}

static json_t *
prepare_ok(const json_t *change)
{
	struct verr err = { 0 };
	json_t *saved = NULL;
	int r = vfio_bind_pci_ops.prepare(change, &saved, &err);
	if (r != 0)
		fail_msg("prepare failed: %s", err.msg);
	assert_non_null(saved);
	return saved;
}

static int
apply(const json_t *change, const json_t *saved, struct verr *err)
{
	return child_run(vfio_bind_pci_ops.apply, change, saved, 5000, err);
}

static int
undo(const json_t *change, const json_t *saved, struct verr *err)
{
	return child_run(vfio_bind_pci_ops.undo, change, saved, 5000, err);
}

static void
apply_ok(const json_t *change, const json_t *saved)
{
	struct verr err = { 0 };
	if (apply(change, saved, &err) != 0)
		fail_msg("apply failed: %s", err.msg);
}

static void
undo_ok(const json_t *change, const json_t *saved)
{
	struct verr err = { 0 };
	if (undo(change, saved, &err) != 0)
		fail_msg("undo failed: %s", err.msg);
}

static void
assert_driver(const char *root, const char *addr, const char *want)
{
	char *d = fixture_driver(root, addr);
	assert_string_equal(d, want);
	free(d);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", hay, needle);
}

static int
setup(void **state)
{
	vfio_bind_set_waits(1000, 1000);
	return 0;
}

static void
gpu_with_audio_usb_and_ucsi_moves_to_vfio_and_comes_back_exactly(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	const char *fns[] = { GPU, AUDIO, GPU_USB, UCSI };
	json_t *c[4], *s[4];
	for (int i = 0; i < 4; i++) {
		c[i] = bind_change(fns[i], 1, i == 0);
		s[i] = prepare_ok(c[i]);
		apply_ok(c[i], s[i]);
		assert_driver(root, fns[i], "vfio-pci");
		assert_int_equal(fixture_exists(root, "/dev/vfio/1"), i == 3);
	}
	char *ovr = fixture_read(root, "/sys/bus/pci/devices/" GPU "/driver_override");
	assert_string_equal(ovr, "vfio-pci\n");
	free(ovr);
	assert_string_equal(json_string_value(json_object_get(s[0], "driver")), "nvidia");
	for (int i = 3; i >= 0; i--)
		undo_ok(c[i], s[i]);
	assert_driver(root, GPU, "nvidia");
	assert_driver(root, UCSI, "nvidia-gpu");
	assert_false(fixture_exists(root, "/dev/vfio/1"));
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	for (int i = 0; i < 4; i++) {
		json_decref(c[i]);
		json_decref(s[i]);
	}
	free(before);
	free(after);
	fixture_free(root);
}

static void
nvme_controller_round_trip_leaves_the_host_byte_for_byte(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	apply_ok(c, s);
	assert_driver(root, NVME, "vfio-pci");
	assert_true(fixture_exists(root, "/dev/vfio/11"));
	undo_ok(c, s);
	assert_driver(root, NVME, "nvme");
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

#define SPEC_ONE(drv) "{\"pci\": [{\"addr\": \"0000:03:00.0\", \"vendor\": 5197, \"device\": 43016, " \
	"\"class\": 67586, \"group\": 3" drv "}]}"

static void
device_already_on_vfio_is_left_exactly_as_it_was(void **state)
{
	char *root = fixture_new(SPEC_ONE(", \"driver\": \"vfio-pci\""));
	char *before = tree_snapshot(root);
	assert_true(fixture_exists(root, "/dev/vfio/3"));
	json_t *c = bind_change("0000:03:00.0", 3, false), *s = prepare_ok(c);
	apply_ok(c, s);
	char *during = tree_snapshot(root);
	tree_assert_equal(before, during);
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(during);
	free(after);
	fixture_free(root);
}

static void
driverless_device_stays_on_vfio_at_teardown_and_says_so(void **state)
{
	char *root = fixture_new(SPEC_ONE(""));
	json_t *c = bind_change("0000:03:00.0", 3, false), *s = prepare_ok(c);
	apply_ok(c, s);
	assert_driver(root, "0000:03:00.0", "vfio-pci");
	assert_true(fixture_exists(root, "/dev/vfio/3"));
	struct verr err = { 0 };
	assert_int_equal(undo(c, s, &err), 0);
	assert_contains(err.msg, "0000:03:00.0 had no driver before the guest started; it stays on vfio-pci");
	assert_driver(root, "0000:03:00.0", "vfio-pci");
	char *ovr = fixture_read(root, "/sys/bus/pci/devices/0000:03:00.0/driver_override");
	assert_string_equal(ovr, "(null)\n");
	free(ovr);
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
identical_host_and_guest_gpus_only_the_matched_one_moves(void **state)
{
	char *root = fixture_new("shared-group");
	char *before = tree_snapshot(root);
	json_t *c = bind_change("0000:02:00.0", 3, true), *s = prepare_ok(c);
	apply_ok(c, s);
	assert_driver(root, "0000:02:00.0", "vfio-pci");
	assert_driver(root, "0000:01:00.0", "nvidia");
	assert_true(fixture_exists(root, "/dev/vfio/3"));
	assert_false(fixture_exists(root, "/dev/vfio/2"));
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
blocking_unbind_times_out_and_names_the_processes_holding_the_card(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	fixture_fault(root, "unbind-block " GPU " 60");
	const char *argv[] = { "/usr/bin/blender", "--render", "scene one.blend", NULL };
	fixture_proc(root, 4242, "blender", argv, 1000, "/dev/dri/card0");
	json_t *c = bind_change(GPU, 1, true), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(child_run(vfio_bind_pci_ops.apply, c, s, 700, &err), -ETIMEDOUT);
	assert_contains(err.msg, "pci-bind-vfio 0000:01:00.0 did not finish within 0.7 s");
	assert_contains(err.msg, "4242 blender (uid 1000, /dev/dri/card0): /usr/bin/blender --render 'scene one.blend'");
	/* the killed child never finished the unbind: undo from the saved
	 * state alone puts back the override it had set */
	assert_driver(root, GPU, "nvidia");
	char *tmp = xasprintf("%s/proc", root);
	char *cmd = xasprintf("rm -rf '%s'/4242", tmp);
	assert_int_equal(system(cmd), 0);
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	free(tmp);
	free(cmd);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
bind_failing_with_enodev_is_reported_and_undo_gives_it_back(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	fixture_fault(root, "bind-fail " NVME " vfio-pci");
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(apply(c, s, &err), -ENODEV);
	assert_contains(err.msg, "0000:02:00.0 did not bind to vfio-pci (No such device)");
	assert_driver(root, NVME, "");
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
device_that_disappears_on_unbind_is_reported(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "vanish " NVME);
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(apply(c, s, &err), -ENODEV);
	assert_contains(err.msg, "0000:02:00.0 disappeared when it was unbound from nvme");
	assert_int_equal(undo(c, s, &err), -ENODEV);
	assert_contains(err.msg, "cannot give 0000:02:00.0 back to nvme: the device is gone");
	assert_contains(err.msg, "/sys/bus/pci/rescan");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
vfio_node_that_never_appears_times_out_with_advice(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	fixture_fault(root, "novfio 11");
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(apply(c, s, &err), -ETIMEDOUT);
	assert_contains(err.msg, "/dev/vfio/11 did not appear within 1.0 s after 0000:02:00.0 was bound to vfio-pci");
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
device_refusing_its_driver_for_a_moment_goes_back_after_retries(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	fixture_fault(root, "refuse " NVME " 3");
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	apply_ok(c, s);
	undo_ok(c, s);
	assert_driver(root, NVME, "nvme");
	char *count = fixture_read(root, "/.drvcore/refused-" NVME);
	assert_string_equal(count, "3\n");	/* it did refuse three times */
	free(count);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
device_refusing_for_good_is_reported_with_what_to_do(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "refuse " NVME " 100000");
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	apply_ok(c, s);
	struct verr err = { 0 };
	assert_int_equal(undo(c, s, &err), -ENODEV);
	assert_contains(err.msg, "0000:02:00.0 did not go back to nvme after");
	assert_contains(err.msg, "echo 0000:02:00.0 > /sys/bus/pci/drivers/nvme/bind");
	assert_driver(root, NVME, "");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
crash_after_prepare_then_restore_leaves_the_host_as_before(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(GPU, 1, true), *s = prepare_ok(c);
	/* the journal has c and s; the process died before apply */
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

/* write(2) straight to the simulated kernel, as a half-done apply left it */
static void
sysw(const char *root, const char *path, const char *value)
{
	char *full = xasprintf("%s%s", root, path);
	assert_int_equal(host_write(full, value), 0);
	free(full);
}

static void
crash_after_setting_driver_override_then_restore_leaves_the_host_as_before(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(GPU, 1, true), *s = prepare_ok(c);
	sysw(root, "/sys/bus/pci/devices/" GPU "/driver_override", "vfio-pci");
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
crash_after_unbind_then_restore_leaves_the_host_as_before(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(GPU, 1, true), *s = prepare_ok(c);
	sysw(root, "/sys/bus/pci/devices/" GPU "/driver_override", "vfio-pci");
	sysw(root, "/sys/bus/pci/drivers/nvidia/unbind", GPU);
	assert_driver(root, GPU, "");
	/* -restore has only what the journal kept: JSON text */
	char *jc = json_dumps(c, 0), *js = json_dumps(s, 0);
	json_decref(c);
	json_decref(s);
	c = json_loads(jc, 0, NULL);
	s = json_loads(js, 0, NULL);
	free(jc);
	free(js);
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
killed_between_unbind_and_probe_then_restore_leaves_the_host_as_before(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	fixture_fault(root, "probe-block " GPU " 60");
	json_t *c = bind_change(GPU, 1, false), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(child_run(vfio_bind_pci_ops.apply, c, s, 500, &err), -ETIMEDOUT);
	assert_driver(root, GPU, "");	/* unbound, never probed */
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
undo_twice_is_safe_and_changes_nothing_more(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(NVME, 11, false), *s = prepare_ok(c);
	apply_ok(c, s);
	undo_ok(c, s);
	undo_ok(c, s);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static void
bad_or_missing_address_is_refused_and_changes_nothing(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	struct verr err = { 0 };
	json_t *saved = NULL;
	json_t *c = bind_change("01:00.0", 1, false);
	assert_int_equal(vfio_bind_pci_ops.prepare(c, &saved, &err), -EINVAL);
	assert_contains(err.msg, "\"01:00.0\" is not a PCI address; expected the form 0000:01:00.0");
	json_decref(c);
	c = bind_change("0000:0a:00.0", 1, false);
	assert_int_equal(vfio_bind_pci_ops.prepare(c, &saved, &err), -ENODEV);
	assert_contains(err.msg, "PCI device 0000:0a:00.0 does not exist");
	json_decref(c);
	c = bind_change(NVME, 4, false);
	assert_int_equal(vfio_bind_pci_ops.prepare(c, &saved, &err), -ESTALE);
	assert_contains(err.msg, "0000:02:00.0 is in IOMMU group 11 now, not 4 as planned");
	json_decref(c);
	assert_null(saved);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	free(before);
	free(after);
	fixture_free(root);
}

static void
device_without_iommu_group_is_refused_with_advice(void **state)
{
	char *root = fixture_new("iommu-off");
	struct verr err = { 0 };
	json_t *saved = NULL;
	json_t *c = json_pack("{ss ss}", "action", "pci-bind-vfio", "target", "0000:00:01.0");
	assert_int_equal(vfio_bind_pci_ops.prepare(c, &saved, &err), -ENODEV);
	assert_contains(err.msg, "has no IOMMU group");
	assert_contains(err.msg, "intel_iommu=on");
	json_decref(c);
	fixture_free(root);
}

static void
gpu_held_by_xorg_is_refused_without_killx_and_nothing_changes(void **state)
{
	char *root = fixture_new("desktop");
	const char *argv[] = { "/usr/lib/xorg/Xorg", ":0", "-seat", "seat0", NULL };
	fixture_proc(root, 1500, "Xorg", argv, 0, "/dev/dri/card0");
	char *before = tree_snapshot(root);
	json_t *c = bind_change(GPU, 1, true), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(apply(c, s, &err), -EBUSY);
	assert_contains(err.msg, "0000:01:00.0 is in use by the graphical session (1500 Xorg)");
	assert_contains(err.msg, "-killx");
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

static json_t *
module_change(void)
{
	return json_pack("{ss ss}", "action", "module-load", "target", "vfio-pci");
}

static void
module_load_does_nothing_when_vfio_pci_is_there(void **state)
{
	char *root = fixture_new("desktop");
	setenv("VFIO_MODPROBE", helper_path("fake-modprobe"), 1);
	json_t *c = module_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(vfio_bind_module_load_ops.prepare(c, &s, &err), 0);
	assert_int_equal(child_run(vfio_bind_module_load_ops.apply, c, s, 5000, &err), 0);
	assert_false(fixture_exists(root, "/.drvcore/modprobe.log"));
	unsetenv("VFIO_MODPROBE");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
module_load_runs_modprobe_when_vfio_pci_is_missing(void **state)
{
	char *root = fixture_new("{\"vfio_pci\": false, \"pci\": []}");
	assert_false(fixture_exists(root, "/sys/bus/pci/drivers/vfio-pci"));
	setenv("VFIO_MODPROBE", helper_path("fake-modprobe"), 1);
	json_t *c = module_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(vfio_bind_module_load_ops.prepare(c, &s, &err), 0);
	if (child_run(vfio_bind_module_load_ops.apply, c, s, 5000, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(fixture_exists(root, "/sys/bus/pci/drivers/vfio-pci/bind"));
	char *log = fixture_read(root, "/.drvcore/modprobe.log");
	assert_string_equal(log, "vfio-pci\n");
	free(log);
	assert_int_equal(child_run(vfio_bind_module_load_ops.undo, c, s, 5000, &err), 0);
	unsetenv("VFIO_MODPROBE");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
module_missing_after_kernel_upgrade_gets_the_reboot_hint(void **state)
{
	char *root = fixture_new("{\"vfio_pci\": false, \"pci\": [], \"osrelease\": \"6.1.0-28-amd64\"}");
	char *cmd = xasprintf("rm -rf '%s/lib/modules/6.1.0-28-amd64'", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	setenv("VFIO_MODPROBE", helper_path("fake-modprobe"), 1);
	json_t *c = module_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(vfio_bind_module_load_ops.prepare(c, &s, &err), 0);
	assert_int_equal(child_run(vfio_bind_module_load_ops.apply, c, s, 5000, &err), -ENOENT);
	assert_contains(err.msg, "modprobe: FATAL: Module vfio-pci not found in directory /lib/modules/6.1.0-28-amd64");
	assert_contains(err.msg, "the running kernel 6.1.0-28-amd64 has no modules in /lib/modules/6.1.0-28-amd64");
	assert_contains(err.msg, "reboot into the new kernel");
	unsetenv("VFIO_MODPROBE");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
module_load_under_a_host_root_without_modprobe_override_says_so(void **state)
{
	char *root = fixture_new("{\"vfio_pci\": false, \"pci\": []}");
	unsetenv("VFIO_MODPROBE");
	json_t *c = module_change(), *s = NULL;
	struct verr err = { 0 };
	assert_int_equal(vfio_bind_module_load_ops.prepare(c, &s, &err), 0);
	assert_int_equal(vfio_bind_module_load_ops.apply(c, s, &err), -ENOTSUP);
	assert_contains(err.msg, "set VFIO_MODPROBE");
	json_decref(c);
	json_decref(s);
	fixture_free(root);
}

static void
bind_without_vfio_pci_loaded_says_to_load_it(void **state)
{
	char *root = fixture_new("{\"vfio_pci\": false, \"pci\": [{\"addr\": \"0000:03:00.0\", "
	    "\"vendor\": 5197, \"device\": 43016, \"class\": 67586, \"group\": 3, \"driver\": \"nvme\"}]}");
	char *before = tree_snapshot(root);
	json_t *c = bind_change("0000:03:00.0", 3, false), *s = prepare_ok(c);
	struct verr err = { 0 };
	assert_int_equal(apply(c, s, &err), -ENODEV);
	assert_contains(err.msg, "the vfio-pci driver is not loaded");
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	json_decref(c);
	json_decref(s);
	free(before);
	free(after);
	fixture_free(root);
}

/* ---- through the journal, as every path changes the host ---- */

/* The desktop host, a fresh journal in a directory of its own (outside the
 * host root, so the tree compares byte for byte), the NVMe's bind change. */
struct hot {
	char *root, *before;
	char jdir[64];
	struct journal j;
	json_t *c;
	struct event_base *base;
};

static void
hot_begin(struct hot *h, const char *fault)
{
	memset(h, 0, sizeof(*h));
	h->root = fixture_new("desktop");
	h->before = tree_snapshot(h->root);
	if (fault != NULL)
		fixture_fault(h->root, fault);
	snprintf(h->jdir, sizeof(h->jdir), "/tmp/vfio-bind-journal-XXXXXX");
	assert_non_null(mkdtemp(h->jdir));
	struct verr err = { 0 };
	if (journal_open(&h->j, h->jdir, &err) != 0)
		fail_msg("%s", err.msg);
	h->c = vfio_bind_change_new(NVME, "nvme", 11, false);
	h->base = event_base_new();
}

/* The host is as it was before (when restored), and everything goes. */
static void
hot_end(struct hot *h, bool restored)
{
	child_spare_drop();
	if (restored) {
		char *after = tree_snapshot(h->root);
		tree_assert_equal(h->before, after);
		free(after);
	}
	journal_close(&h->j);
	char *p = xasprintf("%s/journal", h->jdir);
	unlink(p);
	free(p);
	rmdir(h->jdir);
	event_base_free(h->base);
	json_decref(h->c);
	free(h->before);
	fixture_free(h->root);
}

static const struct journal_apply_opts hot_opts = { .bindtimeout_ms = 5000, .undo_on_failure = true };

static void
hot_attach_and_detach_move_a_device_and_give_it_back(void **state)
{
	struct hot h;
	hot_begin(&h, NULL);
	struct verr err = { 0 };
	size_t idx;
	if (journal_apply(&h.j, h.c, &hot_opts, &idx, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(h.j.entries[idx].state, JOURNAL_DONE);
	assert_string_equal(json_string_value(json_object_get(h.j.entries[idx].saved, "driver")), "nvme");
	assert_driver(h.root, NVME, "vfio-pci");
	assert_true(fixture_exists(h.root, "/dev/vfio/11"));
	assert_int_equal(journal_undo(&h.j, idx, 5000, &err), 0);
	assert_int_equal(h.j.entries[idx].state, JOURNAL_UNDONE);
	hot_end(&h, true);
}

static void
hot_attach_that_cannot_be_journaled_changes_nothing(void **state)
{
	struct hot h;
	hot_begin(&h, NULL);
	/* A full disk under /run. */
	close(h.j.fd);
	h.j.fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(h.j.fd >= 0);
	struct verr err = { 0 };
	size_t idx;
	assert_int_equal(journal_apply(&h.j, h.c, &hot_opts, &idx, &err), -ENOSPC);
	assert_contains(err.msg, "cannot write the journal");
	assert_int_equal(idx, (size_t)-1);
	hot_end(&h, true);
}

static void
hot_attach_that_fails_gives_the_device_back(void **state)
{
	struct hot h;
	hot_begin(&h, "bind-fail " NVME " vfio-pci");
	struct verr err = { 0 };
	size_t idx;
	assert_int_equal(journal_apply(&h.j, h.c, &hot_opts, &idx, &err), -ENODEV);
	assert_contains(err.msg, "did not bind to vfio-pci");
	assert_driver(h.root, NVME, "nvme");
	assert_int_equal(h.j.entries[idx].state, JOURNAL_UNDONE);	/* nothing stays in force */
	hot_end(&h, true);
}

struct loop_result {
	int calls, code;
	bool undone;
	size_t idx;
	char msg[1024];
};

static void
on_done(const struct journal_result *res, void *arg)
{
	struct loop_result *r = arg;
	r->calls++;
	r->code = res->code;
	r->undone = res->undone;
	r->idx = res->idx;
	snprintf(r->msg, sizeof(r->msg), "%s", res->err.msg);
}

static void
hot_attach_and_detach_run_inside_the_event_loop(void **state)
{
	struct hot h;
	hot_begin(&h, NULL);
	struct loop_result r = { 0 };
	struct verr err = { 0 };
	assert_non_null(journal_apply_start(&h.j, h.base, h.c, &hot_opts, on_done, &r, &err));
	assert_driver(h.root, NVME, "nvme");	/* nothing happens until the loop runs */
	assert_int_equal(r.calls, 0);
	event_base_dispatch(h.base);
	assert_int_equal(r.calls, 1);
	if (r.code != 0)
		fail_msg("%s", r.msg);
	assert_int_equal(h.j.entries[r.idx].state, JOURNAL_DONE);
	assert_driver(h.root, NVME, "vfio-pci");
	assert_true(fixture_exists(h.root, "/dev/vfio/11"));
	assert_non_null(journal_undo_start(&h.j, h.base, r.idx, 5000, on_done, &r, &err));
	event_base_dispatch(h.base);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.code, 0);
	assert_true(r.undone);
	assert_int_equal(h.j.entries[r.idx].state, JOURNAL_UNDONE);
	hot_end(&h, true);
}

static void
failed_attach_in_the_event_loop_is_given_back_before_the_callback(void **state)
{
	struct hot h;
	hot_begin(&h, "bind-fail " NVME " vfio-pci");
	struct loop_result r = { 0 };
	struct verr err = { 0 };
	assert_non_null(journal_apply_start(&h.j, h.base, h.c, &hot_opts, on_done, &r, &err));
	event_base_dispatch(h.base);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.code, -ENODEV);
	assert_contains(r.msg, "did not bind to vfio-pci");
	assert_true(r.undone);
	assert_int_equal(h.j.entries[r.idx].state, JOURNAL_UNDONE);
	assert_driver(h.root, NVME, "nvme");
	hot_end(&h, true);
}

static void
missing_vfio_node_is_reported_as_such_not_as_a_hang(void **state)
{
	struct hot h;
	hot_begin(&h, "novfio 11");
	vfio_bind_set_waits(1500, 1000);	/* longer than -bindtimeout below */
	struct journal_apply_opts o = { .bindtimeout_ms = 1000, .undo_on_failure = true };
	struct verr err = { 0 };
	size_t idx;
	assert_int_equal(journal_apply(&h.j, h.c, &o, &idx, &err), -ETIMEDOUT);
	assert_contains(err.msg, "/dev/vfio/11 did not appear within 1.5 s");
	assert_driver(h.root, NVME, "nvme");	/* and it was given back */
	vfio_bind_set_waits(1000, 1000);
	hot_end(&h, false);
}

/* A blocking apply runs in a child and is cut off at its deadline, which
 * journal_apply takes from the kind (-bindtimeout plus the bind's waits):
 * the loop's caller never hangs on the kernel. */
static void
blocking_apply_is_cut_off_at_the_kinds_deadline(void **state)
{
	struct hot h;
	hot_begin(&h, "unbind-block " NVME " 30");
	vfio_bind_set_waits(300, 200);
	struct journal_apply_opts o = { .bindtimeout_ms = 400 };
	struct verr err = { 0 };
	size_t idx;
	assert_int_equal(journal_apply(&h.j, h.c, &o, &idx, &err), -ETIMEDOUT);
	/* 400 ms of -bindtimeout, 300 ms of waits, 1 s of margin */
	assert_contains(err.msg, "did not finish within 1.7 s");
	assert_int_equal(h.j.entries[idx].state, JOURNAL_BEGIN);	/* in force: teardown undoes it */
	struct strv failed = { 0 };
	assert_int_equal(journal_undo_all(&h.j, 400, &failed), 0);
	strv_free(&failed);
	assert_driver(h.root, NVME, "nvme");
	vfio_bind_set_waits(1000, 1000);
	hot_end(&h, false);
}

/* The whole -killx sequence as the session journals it: each change is
 * prepared, then applied, in plan order; teardown undoes newest first. */
static json_t *
killx_plan(void)
{
	json_t *plan = json_pack("[{ss ss} {ss ss} {ss ss} {ss ss} {ss ss} {ss ss}"
	    "{ss ss s{si sb}} {ss ss s{si sb}} {ss ss s{si sb}} {ss ss s{si sb}}]",
	    "action", "module-load", "target", "vfio-pci",
	    "action", "gpu-users-stop", "target", GPU,
	    "action", "display-manager-stop", "target", "display-manager.service",
	    "action", "vtcon-unbind", "target", "/sys/class/vtconsole/vtcon0",
	    "action", "vtcon-unbind", "target", "/sys/class/vtconsole/vtcon1",
	    "action", "efifb-unbind", "target", "efi-framebuffer.0",
	    "action", "pci-bind-vfio", "target", GPU, "args", "group", 1, "display", 1,
	    "action", "pci-bind-vfio", "target", AUDIO, "args", "group", 1, "display", 0,
	    "action", "pci-bind-vfio", "target", GPU_USB, "args", "group", 1, "display", 0,
	    "action", "pci-bind-vfio", "target", UCSI, "args", "group", 1, "display", 0);
	assert_non_null(plan);
	return plan;
}

static char *
killx_fixture(void)
{
	char *root = fixture_new("desktop");
	fixture_console(root);
	const char *xorg[] = { "/usr/lib/xorg/Xorg", ":0", "-seat", "seat0", NULL };
	fixture_proc(root, 1500, "Xorg", xorg, 0, "/dev/dri/card0");
	setenv("VFIO_SYSTEMCTL", helper_path("fake-systemctl"), 1);
	return root;
}

static char killx_jdir[64];

static void
journal_fresh(struct journal *j)
{
	snprintf(killx_jdir, sizeof(killx_jdir), "/tmp/vfio-bind-journal-XXXXXX");
	assert_non_null(mkdtemp(killx_jdir));
	struct verr err = { 0 };
	if (journal_open(j, killx_jdir, &err) != 0)
		fail_msg("%s", err.msg);
}

static void
journal_gone(struct journal *j)
{
	journal_close(j);
	char *p = xasprintf("%s/journal", killx_jdir);
	unlink(p);
	free(p);
	rmdir(killx_jdir);
}

/* Journal and apply changes [0, n), as the session does at start; with
 * crash_at < n, change crash_at is only prepared and journaled (the
 * process died before applying it). */
static void
killx_run(struct journal *j, json_t *plan, size_t n, size_t crash_at)
{
	struct journal_apply_opts o = { .bindtimeout_ms = 1000 };
	for (size_t i = 0; i < n && i <= crash_at; i++) {
		json_t *c = json_array_get(plan, i);
		const struct change_ops *ops = change_find(change_str(c, "action"));
		assert_non_null(ops);
		struct verr err = { 0 };
		if (i == crash_at) {
			json_t *saved = NULL;
			size_t idx;
			if (ops->prepare(c, &saved, &err) != 0 || journal_begin(j, c, saved, &idx, &err) != 0)
				fail_msg("prepare %s %s: %s", ops->action, change_str(c, "target"), err.msg);
			json_decref(saved);
			break;
		}
		size_t idx;
		if (journal_apply(j, c, &o, &idx, &err) != 0)
			fail_msg("%s %s: %s", ops->action, change_str(c, "target"), err.msg);
	}
}

/* Teardown or -restore: the journal, newest first. */
static void
killx_undo(struct journal *j)
{
	struct strv failed = { 0 };
	size_t n = journal_undo_all(j, 1000, &failed);
	for (size_t i = 0; i < failed.n; i++)
		print_error("%s\n", failed.v[i]);
	assert_int_equal(n, 0);
	strv_free(&failed);
}

static void
killx_frees_a_gpu_held_by_xorg_and_teardown_restores_the_desktop_exactly(void **state)
{
	char *root = killx_fixture();
	char *before = tree_snapshot(root);
	json_t *plan = killx_plan();
	size_t n = json_array_size(plan);
	struct journal j;
	journal_fresh(&j);
	killx_run(&j, plan, n, n);
	assert_int_equal(j.n, n);
	assert_driver(root, GPU, "vfio-pci");
	assert_driver(root, UCSI, "vfio-pci");
	assert_true(fixture_exists(root, "/dev/vfio/1"));
	assert_false(fixture_exists(root, "/proc/1500"));	/* the session ended */
	char *v = fixture_read(root, "/sys/class/vtconsole/vtcon1/bind");
	assert_string_equal(v, "0\n");
	free(v);
	assert_false(fixture_exists(root, "/sys/bus/platform/drivers/efi-framebuffer/efi-framebuffer.0"));
	killx_undo(&j);
	journal_gone(&j);
	char *log = fixture_read(root, "/.drvcore/systemctl.log");
	assert_string_equal(log, "is-active --quiet display-manager.service\nstop display-manager.service\n"
	    "start display-manager.service\n");
	free(log);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	unsetenv("VFIO_SYSTEMCTL");
	json_decref(plan);
	free(before);
	free(after);
	fixture_free(root);
}

static void
crash_at_each_step_of_killx_then_restore_leaves_the_host_as_before(void **state)
{
	json_t *plan = killx_plan();
	size_t n = json_array_size(plan);
	for (size_t k = 0; k < n; k++) {
		char *root = killx_fixture();
		char *before = tree_snapshot(root);
		struct journal j;
		journal_fresh(&j);
		killx_run(&j, plan, n, k);
		/* -restore: the journal's changes and saved states, newest first */
		killx_undo(&j);
		journal_gone(&j);
		char *after = tree_snapshot(root);
		if (strcmp(before, after) != 0)
			print_error("crash before applying step %zu (%s)\n", k,
			    change_str(json_array_get(plan, k), "action"));
		tree_assert_equal(before, after);
		unsetenv("VFIO_SYSTEMCTL");
		free(before);
		free(after);
		fixture_free(root);
	}
	json_decref(plan);
}

static void
change_table_knows_every_bind_action(void **state)
{
	assert_ptr_equal(change_find("module-load"), &vfio_bind_module_load_ops);
	assert_ptr_equal(change_find("pci-bind-vfio"), &vfio_bind_pci_ops);
	assert_ptr_equal(change_find("display-manager-stop"), &display_manager_stop_ops);
	assert_ptr_equal(change_find("vtcon-unbind"), &display_vtcon_unbind_ops);
	assert_ptr_equal(change_find("efifb-unbind"), &display_efifb_unbind_ops);
	assert_ptr_equal(change_find("gpu-users-stop"), &display_gpu_users_stop_ops);
	assert_true(vfio_bind_pci_ops.may_block);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gpu_with_audio_usb_and_ucsi_moves_to_vfio_and_comes_back_exactly),
		cmocka_unit_test(nvme_controller_round_trip_leaves_the_host_byte_for_byte),
		cmocka_unit_test(device_already_on_vfio_is_left_exactly_as_it_was),
		cmocka_unit_test(driverless_device_stays_on_vfio_at_teardown_and_says_so),
		cmocka_unit_test(identical_host_and_guest_gpus_only_the_matched_one_moves),
		cmocka_unit_test(blocking_unbind_times_out_and_names_the_processes_holding_the_card),
		cmocka_unit_test(bind_failing_with_enodev_is_reported_and_undo_gives_it_back),
		cmocka_unit_test(device_that_disappears_on_unbind_is_reported),
		cmocka_unit_test(vfio_node_that_never_appears_times_out_with_advice),
		cmocka_unit_test(device_refusing_its_driver_for_a_moment_goes_back_after_retries),
		cmocka_unit_test(device_refusing_for_good_is_reported_with_what_to_do),
		cmocka_unit_test(crash_after_prepare_then_restore_leaves_the_host_as_before),
		cmocka_unit_test(crash_after_setting_driver_override_then_restore_leaves_the_host_as_before),
		cmocka_unit_test(crash_after_unbind_then_restore_leaves_the_host_as_before),
		cmocka_unit_test(killed_between_unbind_and_probe_then_restore_leaves_the_host_as_before),
		cmocka_unit_test(undo_twice_is_safe_and_changes_nothing_more),
		cmocka_unit_test(bad_or_missing_address_is_refused_and_changes_nothing),
		cmocka_unit_test(device_without_iommu_group_is_refused_with_advice),
		cmocka_unit_test(gpu_held_by_xorg_is_refused_without_killx_and_nothing_changes),
		cmocka_unit_test(module_load_does_nothing_when_vfio_pci_is_there),
		cmocka_unit_test(module_load_runs_modprobe_when_vfio_pci_is_missing),
		cmocka_unit_test(module_missing_after_kernel_upgrade_gets_the_reboot_hint),
		cmocka_unit_test(module_load_under_a_host_root_without_modprobe_override_says_so),
		cmocka_unit_test(bind_without_vfio_pci_loaded_says_to_load_it),
		cmocka_unit_test(hot_attach_and_detach_move_a_device_and_give_it_back),
		cmocka_unit_test(hot_attach_that_cannot_be_journaled_changes_nothing),
		cmocka_unit_test(hot_attach_that_fails_gives_the_device_back),
		cmocka_unit_test(hot_attach_and_detach_run_inside_the_event_loop),
		cmocka_unit_test(failed_attach_in_the_event_loop_is_given_back_before_the_callback),
		cmocka_unit_test(missing_vfio_node_is_reported_as_such_not_as_a_hang),
		cmocka_unit_test(blocking_apply_is_cut_off_at_the_kinds_deadline),
		cmocka_unit_test(killx_frees_a_gpu_held_by_xorg_and_teardown_restores_the_desktop_exactly),
		cmocka_unit_test(crash_at_each_step_of_killx_then_restore_leaves_the_host_as_before),
		cmocka_unit_test(change_table_knows_every_bind_action),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
