/* The rest of the host snapshot: IOMMU, KVM, vfio-pci, ZFS, vhost-net, the
 * kernel command line, network interfaces, NetworkManager and the
 * environment captured for the plan. */
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
#include "snapshot.h"
#include "util.h"

static void
desktop_has_iommu_kvm_and_vfio_pci(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_true(snap.iommu_enabled);
	assert_true(snap.kvm);
	/* a fixture's plain-file /dev/kvm stands for a working KVM */
	assert_true(snap.kvm_usable);
	assert_true(snap.vfio_pci_loaded);
	assert_true(snap.vfio_pci_available);
	assert_true(snap.vhost_net);
	assert_false(snap.zfs_loaded);
	assert_string_equal(snap.kernel_cmdline,
	    "BOOT_IMAGE=/vmlinuz-6.1.0-28-amd64 root=/dev/nvme0n1p2 ro quiet intel_iommu=on iommu=pt");
	assert_string_equal(snap.kernel_release, "6.1.0-28-amd64");
	snapshot_free(&snap);
	fixture_remove(root);
}

/* A /dev/kvm that is a character device but does not answer as KVM (here
 * /dev/null through a symlink) is recorded as existing but not usable, with
 * the reason, so the plan falls back to tcg instead of QEMU failing later. */
static void
kvm_device_that_is_not_kvm_is_unusable(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	fixture_remove_under(root, "/dev/kvm");
	char *link = xasprintf("%s/dev/kvm", root);
	assert_int_equal(symlink("/dev/null", link), 0);
	free(link);
	fixture_retake(&snap);
	assert_true(snap.kvm);
	assert_false(snap.kvm_usable);
	assert_non_null(strstr(snap.kvm_unusable, "/dev/kvm is not a KVM device with API version 12"));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
iommu_off_host_recorded_without_error(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("iommu-off", NULL, &snap);
	assert_false(snap.iommu_enabled);
	assert_int_equal(snap.n_iommu_groups, 0);
	assert_false(snap.kvm);
	assert_false(snap.vfio_pci_loaded);
	/* the module is on disk for the running kernel: it can be loaded */
	assert_true(snap.vfio_pci_available);
	assert_string_equal(snap.kernel_cmdline, "BOOT_IMAGE=/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro quiet");
	assert_string_equal(snap.cpu_vendor, "AuthenticAMD");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
cmdline_parameters_matched_by_word(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"cmdline\": \"ro quiet intel_iommu=on iommu=pt isolcpus nointel_iommu=off\"}", &snap);
	assert_true(snapshot_cmdline_has(&snap, "intel_iommu=on"));
	assert_true(snapshot_cmdline_has(&snap, "intel_iommu"));
	assert_true(snapshot_cmdline_has(&snap, "iommu=pt"));
	assert_true(snapshot_cmdline_has(&snap, "isolcpus"));
	assert_true(snapshot_cmdline_has(&snap, "quiet"));
	assert_false(snapshot_cmdline_has(&snap, "intel_iommu=off"));
	assert_false(snapshot_cmdline_has(&snap, "amd_iommu"));
	assert_false(snapshot_cmdline_has(&snap, "iommu=on"));
	/* part of a word is no match */
	assert_false(snapshot_cmdline_has(&snap, "intel_io"));
	assert_false(snapshot_cmdline_has(&snap, "uiet"));
	assert_false(snapshot_cmdline_has(&snap, ""));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
vfio_pci_available_from_compressed_module_or_builtin(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("iommu-off", NULL, &snap);
	const char *mod = "/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/pci/vfio-pci.ko";
	fixture_remove_under(root, mod);
	fixture_retake(&snap);
	assert_false(snap.vfio_pci_available);

	fixture_write(root, "/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.zst", "");
	fixture_retake(&snap);
	assert_true(snap.vfio_pci_available);
	fixture_remove_under(root, "/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.zst");

	fixture_write(root, "/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.xz", "");
	fixture_retake(&snap);
	assert_true(snap.vfio_pci_available);
	fixture_remove_under(root, "/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.xz");

	fixture_write(root, "/lib/modules/6.1.0-28-amd64/modules.builtin",
	    "kernel/drivers/vfio/vfio.ko\nkernel/drivers/vfio/pci/vfio-pci.ko\n");
	fixture_retake(&snap);
	assert_true(snap.vfio_pci_available);

	/* a module for another kernel does not count */
	fixture_write(root, "/lib/modules/6.1.0-28-amd64/modules.builtin", "kernel/drivers/vfio/vfio.ko\n");
	fixture_write(root, "/lib/modules/6.5.0-1-amd64/kernel/drivers/vfio/pci/vfio-pci.ko", "");
	fixture_retake(&snap);
	assert_false(snap.vfio_pci_available);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
zfs_and_vhost_net_presence(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"zfs\": true, \"vhost_net\": false}", &snap);
	assert_true(snap.zfs_loaded);
	assert_false(snap.vhost_net);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
interfaces_with_bridge_and_tap(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop",
	    "{\"net\": ["
	    "{\"name\": \"br0\", \"bridge\": true, \"mac\": \"a8:5e:45:12:34:56\"},"
	    "{\"name\": \"enp3s0\", \"mac\": \"a8:5e:45:12:34:56\", \"master\": \"br0\"},"
	    "{\"name\": \"tap0\", \"tap\": true, \"master\": \"br0\", \"mac\": \"fe:54:00:aa:bb:cc\"},"
	    "{\"name\": \"wlan0\", \"up\": false, \"mac\": \"3c:a0:67:aa:bb:cc\"}]}", &snap);
	assert_int_equal(snap.n_ifaces, 4);
	const struct net_iface *br = snapshot_iface_find(&snap, "br0");
	assert_true(br->is_bridge);
	assert_false(br->is_tap);
	assert_string_equal(br->master, "");
	assert_true(br->up);
	const struct net_iface *eth = snapshot_iface_find(&snap, "enp3s0");
	assert_false(eth->is_bridge);
	assert_false(eth->is_tap);
	assert_string_equal(eth->master, "br0");
	assert_string_equal(eth->mac, "a8:5e:45:12:34:56");
	const struct net_iface *tap = snapshot_iface_find(&snap, "tap0");
	assert_true(tap->is_tap);
	assert_false(tap->is_bridge);
	assert_string_equal(tap->master, "br0");
	assert_string_equal(tap->mac, "fe:54:00:aa:bb:cc");
	assert_false(snapshot_iface_find(&snap, "wlan0")->up);
	assert_null(snapshot_iface_find(&snap, "eth9"));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
interface_with_unknown_operstate_uses_the_up_flag(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/sys/class/net/lo/operstate", "unknown\n");
	fixture_write(root, "/sys/class/net/lo/flags", "0x9\n");
	fixture_write(root, "/sys/class/net/enp3s0/operstate", "unknown\n");
	fixture_write(root, "/sys/class/net/enp3s0/flags", "0x1002\n");
	struct host_snapshot snap = { 0 };
	fixture_retake(&snap);
	assert_true(snapshot_iface_find(&snap, "lo")->up);
	assert_false(snapshot_iface_find(&snap, "enp3s0")->up);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
network_manager_needs_a_live_pid(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_false(snap.network_manager);
	/* the directory and a stale pid file stay behind after it stops */
	fixture_write(root, "/run/NetworkManager/NetworkManager.pid", "4242\n");
	fixture_retake(&snap);
	assert_false(snap.network_manager);
	fixture_write(root, "/proc/4242/comm", "sshd\n");
	fixture_retake(&snap);
	assert_false(snap.network_manager);
	fixture_write(root, "/proc/4242/comm", "NetworkManager\n");
	fixture_retake(&snap);
	assert_true(snap.network_manager);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
environment_captured(void **state)
{
	setenv("DISPLAY", ":0", 1);
	setenv("WAYLAND_DISPLAY", "", 1);
	setenv("SUDO_UID", "1000", 1);
	setenv("SUDO_GID", "1001", 1);
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_string_equal(snap.display, ":0");
	assert_null(snap.wayland_display);
	assert_int_equal(snap.sudo_uid, 1000);
	assert_int_equal(snap.sudo_gid, 1001);

	unsetenv("DISPLAY");
	setenv("WAYLAND_DISPLAY", "wayland-0", 1);
	setenv("SUDO_UID", "12ab", 1);
	unsetenv("SUDO_GID");
	fixture_retake(&snap);
	assert_null(snap.display);
	assert_string_equal(snap.wayland_display, "wayland-0");
	assert_int_equal(snap.sudo_uid, -1);
	assert_int_equal(snap.sudo_gid, -1);
	unsetenv("WAYLAND_DISPLAY");
	unsetenv("SUDO_UID");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
snapshot_of_this_machine_succeeds(void **state)
{
	/* the real root: what tools/demo's dry run reads */
	hostroot_init("/");
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_true(snap.n_cpus > 0);
	assert_true(snap.mem_total_kib > 0);
	assert_non_null(snap.kernel_cmdline);
	assert_true(snap.kernel_release[0] != '\0');
	snapshot_free(&snap);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(desktop_has_iommu_kvm_and_vfio_pci),
		cmocka_unit_test(kvm_device_that_is_not_kvm_is_unusable),
		cmocka_unit_test(iommu_off_host_recorded_without_error),
		cmocka_unit_test(cmdline_parameters_matched_by_word),
		cmocka_unit_test(vfio_pci_available_from_compressed_module_or_builtin),
		cmocka_unit_test(zfs_and_vhost_net_presence),
		cmocka_unit_test(interfaces_with_bridge_and_tap),
		cmocka_unit_test(interface_with_unknown_operstate_uses_the_up_flag),
		cmocka_unit_test(network_manager_needs_a_live_pid),
		cmocka_unit_test(environment_captured),
		cmocka_unit_test(snapshot_of_this_machine_succeeds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
