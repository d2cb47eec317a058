/* The host facts the pre-flight rules decide on, read from fixture trees
 * laid out as the kernel lays them out: interrupt remapping (irq chips,
 * DMAR ecap, allow_unsafe_interrupts), reset methods, what the host needs
 * (mounts and swap through partitions and dm, the default route through a
 * bridge, keyboards), the locked-memory limit and the ports in use. */
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
#include "preflight.h"
#include "snapshot.h"
#include "util.h"

static bool
needs(const struct host_snapshot *snap, const char *pci, enum host_need_kind kind, const char *what)
{
	for (size_t i = 0; i < snap->n_needs; i++)
		if (strcmp(snap->needs[i].pci, pci) == 0 && snap->needs[i].kind == kind &&
		    (what == NULL || strcmp(snap->needs[i].what, what) == 0))
			return true;
	return false;
}

static void
ir_irq_chips_mean_interrupt_remapping_is_on(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	assert_int_equal(snap->intremap, 1);
	assert_int_equal(snap->intremap_hw, 1);
	assert_false(snap->unsafe_interrupts);
}

static void
plain_irq_chips_mean_it_is_off_and_ecap_tells_whether_the_hardware_could(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"intremap\": false, \"dmar_ir\": false}", &snap);
	assert_int_equal(snap.intremap, -1);
	assert_int_equal(snap.intremap_hw, -1);
	snapshot_free(&snap);
	fixture_remove(root);
	root = fixture_snapshot("desktop", "{\"intremap\": false}", &snap);
	assert_int_equal(snap.intremap, -1);
	assert_int_equal(snap.intremap_hw, 1);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
no_irq_directory_leaves_it_unknown(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	fixture_remove_under(root, "/sys/kernel/irq");
	fixture_retake(&snap);
	assert_int_equal(snap.intremap, 0);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
allow_unsafe_interrupts_from_the_module_cmdline_or_modprobe_d(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"intremap\": false, \"unsafe_interrupts\": true}", &snap);
	assert_true(snap.unsafe_interrupts);
	assert_string_equal(snap.unsafe_interrupts_from, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	/* not loaded yet: what loading it would set */
	fixture_remove_under(root, "/sys/module/vfio_iommu_type1");
	fixture_retake(&snap);
	assert_false(snap.unsafe_interrupts);
	fixture_write(root, "/etc/modprobe.d/vfio.conf", "# passthrough\noptions vfio-iommu-type1 allow_unsafe_interrupts=1\n");
	fixture_retake(&snap);
	assert_true(snap.unsafe_interrupts);
	assert_string_equal(snap.unsafe_interrupts_from, "/etc/modprobe.d/vfio.conf");
	fixture_remove_under(root, "/etc/modprobe.d/vfio.conf");
	fixture_write(root, "/proc/cmdline", "quiet intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1\n");
	fixture_retake(&snap);
	assert_true(snap.unsafe_interrupts);
	/* the loaded module's value wins over what a reload would set */
	fixture_write(root, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N\n");
	fixture_retake(&snap);
	assert_false(snap.unsafe_interrupts);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
reset_methods_as_the_kernel_lists_them(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"pci\": ["
	    "{\"addr\": \"0000:05:00.0\", \"vendor\": 4098, \"device\": 29471, \"class\": 196608, \"reset_method\": \"bus\"},"
	    "{\"addr\": \"0000:06:00.0\", \"vendor\": 4318, \"device\": 7684, \"class\": 196608, \"reset_method\": \"\"},"
	    "{\"addr\": \"0000:07:00.0\", \"vendor\": 32902, \"device\": 5433, \"class\": 131072, \"reset_method\": null},"
	    "{\"addr\": \"0000:08:00.0\", \"vendor\": 32902, \"device\": 5433, \"class\": 131072, \"reset_disabled\": true},"
	    "{\"addr\": \"0000:09:00.0\", \"vendor\": 32902, \"device\": 5433, \"class\": 131072, \"reset_method\": \"flr bus\"}]}",
	    &snap);
	assert_false(snapshot_pci_find(&snap, "0000:05:00.0")->no_reset);
	assert_string_equal(snapshot_pci_find(&snap, "0000:05:00.0")->reset_method, "bus");
	assert_true(snapshot_pci_find(&snap, "0000:06:00.0")->no_reset);
	/* a kernel before 5.15: only `reset`, the method is not told */
	assert_false(snapshot_pci_find(&snap, "0000:07:00.0")->no_reset);
	assert_string_equal(snapshot_pci_find(&snap, "0000:07:00.0")->reset_method, "");
	/* every method disabled by the user */
	assert_true(snapshot_pci_find(&snap, "0000:08:00.0")->no_reset);
	assert_string_equal(snapshot_pci_find(&snap, "0000:09:00.0")->reset_method, "flr bus");
	snapshot_free(&snap);
	fixture_remove(root);
}

/* Needs block device nodes (mknod) for swap: root, as CI. */
static void
mounts_and_swap_lead_to_their_controllers_through_partitions_and_dm(void **state)
{
	if (geteuid() != 0)
		skip();
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"disks\": ["
	    "{\"name\": \"nvme0n1\", \"pci\": \"0000:02:00.0\", \"partitions\": [1, 2, 3],"
	    " \"mounts\": {\"1\": \"/boot/efi\", \"2\": \"/\"}, \"swap\": [3]},"
	    "{\"name\": \"sda\", \"pci\": \"0000:00:17.0\", \"partitions\": [1]},"
	    "{\"name\": \"dm-0\", \"slaves\": [\"sda1\"], \"mounts\": {\"\": \"/home\"}}]}", &snap);
	assert_true(needs(&snap, "0000:02:00.0", HOST_NEED_STORAGE, "/ (nvme0n1p2)"));
	assert_true(needs(&snap, "0000:02:00.0", HOST_NEED_STORAGE, "/boot/efi (nvme0n1p1)"));
	assert_true(needs(&snap, "0000:02:00.0", HOST_NEED_STORAGE, "swap /dev/nvme0n1p3"));
	/* the bridge above it is on the path too */
	assert_true(needs(&snap, "0000:00:1d.0", HOST_NEED_STORAGE, "/ (nvme0n1p2)"));
	/* /home is on dm-0, which is on sda1 behind the SATA controller */
	assert_true(needs(&snap, "0000:00:17.0", HOST_NEED_STORAGE, "/home (dm-0)"));
	assert_false(needs(&snap, "0000:04:00.0", HOST_NEED_STORAGE, NULL));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
default_route_leads_to_its_nic_through_a_bridge(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_true(needs(&snap, "0000:03:00.0", HOST_NEED_ROUTE, "enp3s0"));
	snapshot_free(&snap);
	fixture_remove(root);
	root = fixture_snapshot("desktop", "{\"net\": [{\"name\": \"enp3s0\", \"pci\": \"0000:03:00.0\", \"master\": \"br0\"},"
	    "{\"name\": \"br0\", \"bridge\": true}, {\"name\": \"lo\"}], \"default_route\": \"br0\"}", &snap);
	assert_true(needs(&snap, "0000:03:00.0", HOST_NEED_ROUTE, "br0"));
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
keyboards_are_counted_and_lead_to_their_usb_controller(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	/* the mouse and the power button are no keyboards */
	assert_int_equal(snap->n_keyboards, 1);
	assert_true(needs(snap, "0000:00:14.0", HOST_NEED_KEYBOARD, "Ducky One2 Mini (input0)"));
	struct host_snapshot s2;
	char *root = fixture_snapshot("desktop", "{\"inputs\": ["
	    "{\"name\": \"Ducky One2 Mini\", \"usb\": \"1-7\", \"keyboard\": true},"
	    "{\"name\": \"AT Translated Set 2 keyboard\", \"platform\": \"i8042/serio0\", \"keyboard\": true},"
	    "{\"name\": \"ydotoold virtual device\", \"virtual\": true, \"keyboard\": true}]}", &s2);
	/* the laptop's own keyboard counts; a uinput device does not */
	assert_int_equal(s2.n_keyboards, 2);
	snapshot_free(&s2);
	fixture_remove(root);
}

static void
memlock_limit_and_capability_of_the_supervisor(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_false(snap.memlock_capped);
	snapshot_free(&snap);
	fixture_remove(root);
	root = fixture_snapshot("desktop", "{\"memlock\": {\"hard\": 8388608, \"cap_sys_resource\": false}}", &snap);
	assert_true(snap.memlock_capped);
	assert_int_equal(snap.memlock_max, 8388608);
	snapshot_free(&snap);
	fixture_remove(root);
	/* with CAP_SYS_RESOURCE the supervisor raises it for QEMU */
	root = fixture_snapshot("desktop", "{\"memlock\": {\"hard\": 8388608, \"cap_sys_resource\": true}}", &snap);
	assert_false(snap.memlock_capped);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
listening_ports_and_the_unprivileged_start(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", "{\"listening\": [[\"tcp\", 2222], [\"udp\", 5353]],"
	    " \"unprivileged_port_start\": 80}", &snap);
	assert_int_equal(snap.n_ports, 2);
	assert_string_equal(snap.ports[0].proto, "tcp");
	assert_int_equal(snap.ports[0].port, 2222);
	assert_string_equal(snap.ports[1].proto, "udp");
	assert_int_equal(snap.ports[1].port, 5353);
	assert_int_equal(snap.unprivileged_port_start, 80);
	snapshot_free(&snap);
	fixture_remove(root);
}

/* `pci add` scans only its device's group, then these facts. */
static void
device_facts_for_a_hot_add(void **state)
{
	char *root = fixture_build("desktop", "{\"intremap\": false}");
	struct host_snapshot snap = { 0 };
	struct verr err = { 0 };
	assert_int_equal(snapshot_device_facts(&snap, &err), 0);
	assert_true(snap.iommu_enabled);
	assert_int_equal(snap.intremap, -1);
	assert_true(needs(&snap, "0000:00:14.0", HOST_NEED_KEYBOARD, NULL));
	snapshot_free(&snap);
	fixture_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ir_irq_chips_mean_interrupt_remapping_is_on),
		cmocka_unit_test(plain_irq_chips_mean_it_is_off_and_ecap_tells_whether_the_hardware_could),
		cmocka_unit_test(no_irq_directory_leaves_it_unknown),
		cmocka_unit_test(allow_unsafe_interrupts_from_the_module_cmdline_or_modprobe_d),
		cmocka_unit_test(reset_methods_as_the_kernel_lists_them),
		cmocka_unit_test(mounts_and_swap_lead_to_their_controllers_through_partitions_and_dm),
		cmocka_unit_test(default_route_leads_to_its_nic_through_a_bridge),
		cmocka_unit_test(keyboards_are_counted_and_lead_to_their_usb_controller),
		cmocka_unit_test(memlock_limit_and_capability_of_the_supervisor),
		cmocka_unit_test(listening_ports_and_the_unprivileged_start),
		cmocka_unit_test(device_facts_for_a_hot_add),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
