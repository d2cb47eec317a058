/* Files the options name, in the host snapshot: existence, readability,
 * block devices and the serial of the disk a partition belongs to. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "hostroot.h"
#include "options.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static void
snapshot_with(struct host_snapshot *snap, struct options *opts)
{
	struct verr err = { 0 };
	struct strv files = { 0 };
	options_host_files(opts, &files);
	int r = snapshot_take(snap, &files, &err);
	strv_free(&files);
	if (r < 0)
		fail_msg("snapshot_take: %s", err.msg);
}

static void
files_named_in_options_are_looked_up_under_the_host_root(void **state)
{
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/var/lib/images/win11.qcow2", "QFI\xfb");
	fixture_write(root, "/srv/iso/virtio-win.iso", "CD001");
	fixture_write(root, "/usr/share/vbios/tu102.rom", "\x55\xaa");
	struct opt_image images[] = { { "/var/lib/images/win11.qcow2", "qcow2" }, { "/var/lib/images/missing.img", NULL } };
	char *isos[] = { "/srv/iso/virtio-win.iso" };
	struct options opts = { 0 };
	opts.images = images;
	opts.n_images = nitems(images);
	opts.isos = isos;
	opts.n_isos = 1;
	opts.romfile = "/usr/share/vbios/tu102.rom";
	opts.bios = "/usr/share/OVMF/OVMF_CODE_4M.fd";
	opts.kernel = "/boot/vmlinuz-missing";
	opts.hugepages = true;

	struct host_snapshot snap;
	snapshot_with(&snap, &opts);
	const struct host_file *f = snapshot_file_find(&snap, "/var/lib/images/win11.qcow2");
	assert_non_null(f);
	assert_true(f->exists);
	assert_true(f->readable);
	assert_false(f->is_block);
	assert_string_equal(f->disk_name, "");
	f = snapshot_file_find(&snap, "/var/lib/images/missing.img");
	assert_non_null(f);
	assert_false(f->exists);
	assert_false(f->readable);
	assert_true(snapshot_file_find(&snap, "/srv/iso/virtio-win.iso")->exists);
	assert_true(snapshot_file_find(&snap, "/usr/share/vbios/tu102.rom")->exists);
	assert_true(snapshot_file_find(&snap, "/usr/share/OVMF/OVMF_CODE_4M.fd")->exists);
	assert_false(snapshot_file_find(&snap, "/boot/vmlinuz-missing")->exists);
	/* -hugepages without a mount point names the default one */
	assert_true(snapshot_file_find(&snap, "/dev/hugepages")->exists);
	assert_null(snapshot_file_find(&snap, "/never/named"));
	/* the real root has no /var/lib/images/win11.qcow2: the host root
	 * was used, not "/" */
	assert_int_equal(snap.n_files, 7);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
files_relative_paths_are_relative_to_the_cwd(void **state)
{
	char *root = fixture_build("desktop", NULL);
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	char *dir = xasprintf("%s/var/lib/images", root);
	fixture_write(root, "/var/lib/images/disk.raw", "");
	assert_int_equal(chdir(dir), 0);
	struct opt_image images[] = { { "disk.raw", "raw" }, { "other.raw", "raw" } };
	struct options opts = { 0 };
	opts.images = images;
	opts.n_images = 2;
	struct host_snapshot snap;
	snapshot_with(&snap, &opts);
	assert_int_equal(chdir(cwd), 0);
	assert_true(snapshot_file_find(&snap, "disk.raw")->exists);
	assert_false(snapshot_file_find(&snap, "other.raw")->exists);
	snapshot_free(&snap);
	free(dir);
	fixture_remove(root);
}

static void
files_unreadable_file_recorded(void **state)
{
	if (geteuid() == 0) {
		print_message("running as root, which reads every file: skipped\n");
		skip();
	}
	char *root = fixture_build("desktop", NULL);
	fixture_write(root, "/var/lib/images/secret.img", "");
	char *p = xasprintf("%s/var/lib/images/secret.img", root);
	assert_int_equal(chmod(p, 0), 0);
	struct opt_image images[] = { { "/var/lib/images/secret.img", "raw" } };
	struct options opts = { 0 };
	opts.images = images;
	opts.n_images = 1;
	struct host_snapshot snap;
	snapshot_with(&snap, &opts);
	assert_true(snap.files[0].exists);
	assert_false(snap.files[0].readable);
	snapshot_free(&snap);
	free(p);
	fixture_remove(root);
}

static void
disk_of_strips_partitions_by_name(void **state)
{
	/* an empty host root: only the naming rules apply */
	char *root = fixture_build(NULL, "{}");
	char out[32];
	const char *cases[][2] = {
		{ "nvme0n1p2", "nvme0n1" }, { "nvme0n1", "nvme0n1" }, { "nvme10n12p13", "nvme10n12" },
		{ "sda1", "sda" }, { "sda", "sda" }, { "sdab12", "sdab" }, { "vdb3", "vdb" },
		{ "mmcblk0p1", "mmcblk0" }, { "mmcblk0", "mmcblk0" }, { "loop0", "loop0" }, { "md127", "md127" },
	};
	for (size_t i = 0; i < nitems(cases); i++) {
		snapshot_disk_of(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
	fixture_remove(root);
}

static void
disk_of_follows_sysfs_partition_links(void **state)
{
	/* where the host has the device, the kernel's tree decides: a
	 * dm/odd name is resolved through /sys/class/block */
	char *root = fixture_build(NULL, "{}");
	fixture_write(root, "/sys/devices/virtual/block/weird9/weird9x/partition", "1\n");
	fixture_write(root, "/sys/devices/virtual/block/weird9/device/serial", "W9\n");
	char *p = xasprintf("%s/sys/class/block", root);
	assert_int_equal(mkdir(p, 0755), 0);
	char *l = xasprintf("%s/weird9x", p);
	assert_int_equal(symlink("../../devices/virtual/block/weird9/weird9x", l), 0);
	char out[32];
	snapshot_disk_of("weird9x", out, sizeof(out));
	assert_string_equal(out, "weird9");
	free(l);
	free(p);
	fixture_remove(root);
}

static void
files_block_device_partition_gives_disk_serial(void **state)
{
	if (geteuid() != 0) {
		print_message("making block device nodes needs CAP_MKNOD (run as root): skipped\n");
		skip();
	}
	/* the disks' sysfs trees and /dev nodes as mkhost.py lays them out,
	 * plus a by-id link as udev makes */
	char *root = fixture_build("desktop",
	    "{\"disks\": [{\"name\": \"nvme0n1\", \"serial\": \"  S4EWNX0N123456Z     \", \"partitions\": [1, 2]},"
	    "             {\"name\": \"sda\", \"serial\": \"WD-WCC4N0123456\", \"partitions\": [1]}]}");
	char *l = xasprintf("%s/dev/disk/by-id", root);
	char *cmd = xasprintf("mkdir -p %s && ln -s ../../nvme0n1p2 %s/nvme-Samsung_SSD_970-part2", l, l);
	assert_int_equal(system(cmd), 0);
	struct opt_image images[] = {
		{ "/dev/nvme0n1p2", "raw" }, { "/dev/sda1", "raw" }, { "/dev/disk/by-id/nvme-Samsung_SSD_970-part2", "raw" },
		{ "/dev/nvme0n1", "raw" },
	};
	struct options opts = { 0 };
	opts.images = images;
	opts.n_images = nitems(images);
	struct host_snapshot snap;
	snapshot_with(&snap, &opts);
	const struct host_file *f = snapshot_file_find(&snap, "/dev/nvme0n1p2");
	assert_true(f->is_block);
	assert_string_equal(f->disk_name, "nvme0n1");
	/* the padding drives put around their serial is dropped */
	assert_string_equal(f->disk_serial, "S4EWNX0N123456Z");
	f = snapshot_file_find(&snap, "/dev/sda1");
	assert_true(f->is_block);
	assert_string_equal(f->disk_name, "sda");
	assert_string_equal(f->disk_serial, "WD-WCC4N0123456");
	f = snapshot_file_find(&snap, "/dev/disk/by-id/nvme-Samsung_SSD_970-part2");
	assert_true(f->is_block);
	assert_string_equal(f->disk_name, "nvme0n1");
	assert_string_equal(f->disk_serial, "S4EWNX0N123456Z");
	f = snapshot_file_find(&snap, "/dev/nvme0n1");
	assert_true(f->is_block);
	assert_string_equal(f->disk_name, "nvme0n1");
	snapshot_free(&snap);
	free(cmd);
	free(l);
	fixture_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(files_named_in_options_are_looked_up_under_the_host_root),
		cmocka_unit_test(files_relative_paths_are_relative_to_the_cwd),
		cmocka_unit_test(files_unreadable_file_recorded),
		cmocka_unit_test(disk_of_strips_partitions_by_name),
		cmocka_unit_test(disk_of_follows_sysfs_partition_links),
		cmocka_unit_test(files_block_device_partition_gives_disk_serial),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
