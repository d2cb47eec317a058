/* PCI in the host snapshot: the lspci -Dnn lines, drivers, IOMMU groups,
 * boot VGA and bridges, read from fixture trees through libpci. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "hostroot.h"
#include "snapshot.h"
#include "util.h"

static bool
have_lspci(void)
{
	return system("command -v lspci >/dev/null 2>&1") == 0;
}

/* Every line the snapshot made equals the line real lspci prints for the
 * same tree, in the same order. */
static void
assert_lines_equal_lspci(const char *root, const struct host_snapshot *snap)
{
	char *cmd = xasprintf("lspci -A linux-sysfs -O sysfs.path=%s/sys/bus/pci -Dnn 2>/dev/null", root);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024];
	size_t i = 0;
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (i >= snap->n_pci)
			fail_msg("lspci printed more devices than the snapshot has; extra: %s", line);
		assert_string_equal(snap->pci[i].line, line);
		assert_string_equal(pci_match_text(&snap->pci[i]), line);
		i++;
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(i, snap->n_pci);
	free(cmd);
}

static void
pci_lines_equal_lspci_on_desktop(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("desktop", NULL, &snap);
	assert_int_equal(snap.n_pci, 14);
	assert_string_equal(snapshot_pci_find(&snap, "0000:01:00.0")->line,
	    "0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti] [10de:1e04] (rev a1)");
	if (have_lspci())
		assert_lines_equal_lspci(root, &snap);
	else
		print_message("lspci is missing (install pciutils): the comparison with real lspci was skipped\n");
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_lines_equal_lspci_for_unknown_ids_and_domains(void **state)
{
	if (!have_lspci())
		skip();
	/* A vendor pci.ids does not know, a known vendor with an unknown
	 * device, revision 0, and a second PCI domain (VMD-style). */
	struct host_snapshot snap;
	char *root = fixture_snapshot(NULL,
	    "{\"pci\": ["
	    "{\"addr\": \"0000:00:02.0\", \"vendor\": 65520, \"device\": 4660, \"class\": 65536, \"rev\": 0},"
	    "{\"addr\": \"0000:00:03.0\", \"vendor\": 32902, \"device\": 65278, \"class\": 16777215, \"rev\": 1},"
	    "{\"addr\": \"0001:00:00.0\", \"vendor\": 4318, \"device\": 7684, \"class\": 196608, \"rev\": 161}"
	    "]}", &snap);
	assert_int_equal(snap.n_pci, 3);
	assert_lines_equal_lspci(root, &snap);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_lines_equal_lspci_on_this_machine(void **state)
{
	if (!have_lspci() || access("/sys/bus/pci/devices", R_OK) != 0)
		skip();
	hostroot_init("/");
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_lines_equal_lspci("", &snap);
	snapshot_free(&snap);
}

static void
pci_devices_sorted_by_address(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	for (size_t i = 1; i < snap->n_pci; i++)
		assert_true(strcmp(snap->pci[i - 1].address, snap->pci[i].address) < 0);
	assert_string_equal(snap->pci[0].address, "0000:00:00.0");
	assert_string_equal(snap->pci[snap->n_pci - 1].address, "0000:04:00.0");
}

static void
pci_driver_is_basename_of_driver_link(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	assert_string_equal(snapshot_pci_find(snap, "0000:01:00.0")->driver, "nvidia");
	assert_string_equal(snapshot_pci_find(snap, "0000:01:00.1")->driver, "snd_hda_intel");
	assert_string_equal(snapshot_pci_find(snap, "0000:01:00.3")->driver, "nvidia-gpu");
	assert_string_equal(snapshot_pci_find(snap, "0000:02:00.0")->driver, "nvme");
	/* the host bridge has no driver bound */
	assert_string_equal(snapshot_pci_find(snap, "0000:00:00.0")->driver, "");
}

static void
pci_gpu_functions_share_iommu_group_1(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	const char *gpu[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:01:00.3", "0000:00:01.0" };
	for (size_t i = 0; i < nitems(gpu); i++)
		assert_int_equal(snapshot_pci_find(snap, gpu[i])->iommu_group, 1);
	assert_int_equal(snapshot_pci_find(snap, "0000:02:00.0")->iommu_group, 11);
	assert_int_equal(snapshot_pci_find(snap, "0000:00:14.0")->iommu_group, 4);
	assert_true(snap->iommu_enabled);
	assert_int_equal(snap->n_iommu_groups, 7); /* 0, 1, 4, 5, 9, 10, 11 */
}

/* A hot-add reads only its device and that device's IOMMU group; each of
 * those comes out exactly as in a whole scan. */
static void
pci_scan_only_reads_the_device_and_its_group(void **state)
{
	struct host_snapshot full;
	char *root = fixture_snapshot("desktop", NULL, &full);
	struct strv only = { 0 };
	pci_group_peers("0000:01:00.1", &only);	/* the GPU's audio: group 1, its root port and four functions */
	struct host_snapshot some = { 0 };
	struct verr err = { 0 };
	assert_int_equal(pci_scan_only(&some, &only, &err), 0);
	assert_int_equal(some.n_pci, 5);
	for (size_t i = 0; i < some.n_pci; i++) {
		const struct pci_device *f = snapshot_pci_find(&full, some.pci[i].address);
		assert_non_null(f);
		assert_int_equal(f->iommu_group, 1);
		assert_memory_equal(f, &some.pci[i], sizeof(*f));
	}
	strv_free(&only);
	snapshot_free(&some);

	/* a device without a group, and one that does not exist */
	pci_group_peers("0000:09:00.0", &only);
	assert_int_equal(only.n, 1);
	memset(&some, 0, sizeof(some));
	assert_int_equal(pci_scan_only(&some, &only, &err), 0);
	assert_int_equal(some.n_pci, 0);
	strv_free(&only);
	snapshot_free(&some);
	snapshot_free(&full);
	fixture_remove(root);
}

static void
pci_boot_vga_only_on_the_boot_gpu(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("shared-group", NULL, &snap);
	assert_true(snapshot_pci_find(&snap, "0000:01:00.0")->boot_vga);
	assert_false(snapshot_pci_find(&snap, "0000:02:00.0")->boot_vga);
	assert_false(snapshot_pci_find(&snap, "0000:05:00.0")->boot_vga);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_bridges_and_displays_flagged(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	const char *bridges[] = { "0000:00:01.0", "0000:00:1c.0", "0000:00:1c.4", "0000:00:1d.0" };
	for (size_t i = 0; i < nitems(bridges); i++)
		assert_true(snapshot_pci_find(snap, bridges[i])->is_bridge);
	/* a host bridge is no PCI-to-PCI bridge */
	assert_false(snapshot_pci_find(snap, "0000:00:00.0")->is_bridge);
	assert_false(snapshot_pci_find(snap, "0000:01:00.1")->is_bridge);
	size_t displays = 0;
	for (size_t i = 0; i < snap->n_pci; i++)
		displays += snap->pci[i].is_display;
	assert_int_equal(displays, 1);
	assert_true(snapshot_pci_find(snap, "0000:01:00.0")->is_display);
}

static void
pci_ids_class_slot_and_function(void **state)
{
	const struct host_snapshot *snap = fixture_cached("desktop");
	const struct pci_device *d = snapshot_pci_find(snap, "0000:01:00.2");
	assert_non_null(d);
	assert_string_equal(d->slot, "0000:01:00");
	assert_int_equal(d->function, 2);
	assert_int_equal(d->vendor, 0x10de);
	assert_int_equal(d->device, 0x1ad6);
	assert_int_equal(d->class_code, 0x0c0330);
	assert_null(snapshot_pci_find(snap, "0000:09:00.0"));
	assert_null(snapshot_pci_find(snap, "not an address"));
}

static void
pci_no_groups_when_iommu_off(void **state)
{
	struct host_snapshot snap;
	char *root = fixture_snapshot("iommu-off", NULL, &snap);
	assert_int_equal(snap.n_pci, 3);
	for (size_t i = 0; i < snap.n_pci; i++)
		assert_int_equal(snap.pci[i].iommu_group, -1);
	assert_false(snap.iommu_enabled);
	assert_int_equal(snap.n_iommu_groups, 0);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_host_without_pci_bus_has_no_devices(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char *cmd = xasprintf("rm -rf %s/sys/bus/pci", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_int_equal(snap.n_pci, 0);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_unreadable_device_is_an_error_naming_it(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char *cmd = xasprintf("rm -f %s/sys/devices/pci0000:00/0000:00:17.0/vendor", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_true(snapshot_take(&snap, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "0000:00:17.0"));
	assert_non_null(strstr(err.msg, "PCI"));
	assert_null(snap.pci);
	fixture_remove(root);
}

static void
pci_device_without_config_space_keeps_sysfs_revision(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char *cmd = xasprintf("rm -f %s/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/config", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	const struct pci_device *d = snapshot_pci_find(&snap, "0000:01:00.1");
	assert_non_null(d);
	assert_string_equal(d->line,
	    "0000:01:00.1 Audio device [0403]: NVIDIA Corporation TU102 High Definition Audio Controller [10de:10f7] (rev a1)");
	assert_int_equal(d->iommu_group, 1);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
pci_thousand_devices_are_all_read(void **state)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "{\"pci\": [");
	for (int i = 0; i < 1000; i++)
		strbuf_printf(&sb, "%s{\"addr\": \"0000:%02x:%02x.%d\", \"vendor\": 32902, \"device\": 5433, "
		    "\"class\": 131072, \"rev\": 3, \"driver\": \"igb\"}",
		    i ? "," : "", 1 + i / 64, (i / 8) % 8, i % 8);
	strbuf_puts(&sb, "]}");
	char *root = fixture_build(NULL, sb.s);
	strbuf_free(&sb);
	/* How long this takes is measured by bench/ (tools/bench), not here. */
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	assert_int_equal(snap.n_pci, 1000);
	assert_string_equal(snap.pci[999].driver, "igb");
	snapshot_free(&snap);
	fixture_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pci_lines_equal_lspci_on_desktop),
		cmocka_unit_test(pci_lines_equal_lspci_for_unknown_ids_and_domains),
		cmocka_unit_test(pci_lines_equal_lspci_on_this_machine),
		cmocka_unit_test(pci_devices_sorted_by_address),
		cmocka_unit_test(pci_driver_is_basename_of_driver_link),
		cmocka_unit_test(pci_gpu_functions_share_iommu_group_1),
		cmocka_unit_test(pci_boot_vga_only_on_the_boot_gpu),
		cmocka_unit_test(pci_scan_only_reads_the_device_and_its_group),
		cmocka_unit_test(pci_bridges_and_displays_flagged),
		cmocka_unit_test(pci_ids_class_slot_and_function),
		cmocka_unit_test(pci_no_groups_when_iommu_off),
		cmocka_unit_test(pci_host_without_pci_bus_has_no_devices),
		cmocka_unit_test(pci_unreadable_device_is_an_error_naming_it),
		cmocka_unit_test(pci_device_without_config_space_keeps_sysfs_revision),
		cmocka_unit_test(pci_thousand_devices_are_all_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
