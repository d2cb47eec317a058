/* The simulated driver core behaves like the kernel's: these tests pin down
 * the semantics the binding code and other areas' tests rely on. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "util.h"

#define GPU "0000:01:00.0"
#define AUDIO "0000:01:00.1"

/* write(2) to a host path; 0 or the errno the "kernel" gave. */
static int
sysw(const char *root, const char *path, const char *value)
{
	char *full = xasprintf("%s%s", root, path);
	int fd = open(full, O_WRONLY);
	free(full);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, value, strlen(value));
	int e = n < 0 ? errno : 0;
	close(fd);
	return e;
}

static void
assert_driver(const char *root, const char *addr, const char *want)
{
	char *d = fixture_driver(root, addr);
	assert_string_equal(d, want);
	free(d);
}

static void
override_then_unbind_and_probe_moves_device_to_override_driver(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/" AUDIO "/driver_override", "vfio-pci"), 0);
	assert_driver(root, AUDIO, "snd_hda_intel");	/* override alone moves nothing */
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	assert_driver(root, AUDIO, "");
	assert_false(fixture_exists(root, "/sys/bus/pci/drivers/snd_hda_intel/" AUDIO));
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", AUDIO), 0);
	assert_driver(root, AUDIO, "vfio-pci");
	assert_true(fixture_exists(root, "/sys/bus/pci/drivers/vfio-pci/" AUDIO));
	fixture_free(root);
}

static void
driver_override_reads_back_and_clears_to_null(void **state)
{
	char *root = fixture_new("desktop");
	const char *p = "/sys/bus/pci/devices/" AUDIO "/driver_override";
	assert_int_equal(sysw(root, p, "vfio-pci\n"), 0);
	char *v = fixture_read(root, p);
	assert_string_equal(v, "vfio-pci\n");
	free(v);
	assert_int_equal(sysw(root, p, "\n"), 0);
	v = fixture_read(root, p);
	assert_string_equal(v, "(null)\n");
	free(v);
	fixture_free(root);
}

static void
probe_without_override_binds_the_native_driver_again(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO "\n"), 0);
	assert_driver(root, AUDIO, "");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", AUDIO), 0);
	assert_driver(root, AUDIO, "snd_hda_intel");
	fixture_free(root);
}

static void
bind_of_a_bound_device_fails_ebusy(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/bind", AUDIO), EBUSY);
	fixture_free(root);
}

static void
unbind_from_a_driver_it_is_not_on_fails_enodev(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/unbind", AUDIO), ENODEV);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/nvidia/unbind", "0000:09:00.0"), ENODEV);
	assert_driver(root, AUDIO, "snd_hda_intel");
	fixture_free(root);
}

static void
bind_to_a_driver_that_does_not_match_fails_enodev(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	/* vfio-pci has no id for it and no override names it */
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/bind", AUDIO), ENODEV);
	/* an override for another driver excludes the native one */
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/" AUDIO "/driver_override", "vfio-pci"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/bind", AUDIO), ENODEV);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/bind", AUDIO), 0);
	assert_driver(root, AUDIO, "vfio-pci");
	fixture_free(root);
}

static void
drivers_probe_of_an_unknown_device_fails_einval(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", "0000:0a:00.0"), EINVAL);
	fixture_free(root);
}

static void
drivers_probe_succeeds_even_when_no_driver_binds(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/" AUDIO "/driver_override", "no-such-driver"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", AUDIO), 0);
	assert_driver(root, AUDIO, "");
	fixture_free(root);
}

static void
move_to_vfio(const char *root, const char *addr, const char *drv)
{
	char p[128];
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", addr);
	assert_int_equal(sysw(root, p, "vfio-pci"), 0);
	snprintf(p, sizeof(p), "/sys/bus/pci/drivers/%s/unbind", drv);
	assert_int_equal(sysw(root, p, addr), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", addr), 0);
}

static void
vfio_group_node_appears_when_the_whole_group_is_on_vfio_and_goes_on_unbind(void **state)
{
	char *root = fixture_new("desktop");
	move_to_vfio(root, GPU, "nvidia");
	move_to_vfio(root, AUDIO, "snd_hda_intel");
	move_to_vfio(root, "0000:01:00.2", "xhci_hcd");
	assert_false(fixture_exists(root, "/dev/vfio/1"));	/* UCSI still on nvidia-gpu */
	move_to_vfio(root, "0000:01:00.3", "nvidia-gpu");
	assert_true(fixture_exists(root, "/dev/vfio/1"));	/* the bridge does not count */
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/unbind", AUDIO), 0);
	assert_true(fixture_exists(root, "/dev/vfio/1"));	/* driverless is still viable */
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/" AUDIO "/driver_override", "\n"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/bind", AUDIO), 0);
	assert_false(fixture_exists(root, "/dev/vfio/1"));
	fixture_free(root);
}

static void
new_id_captures_every_identical_device_without_a_driver(void **state)
{
	char *root = fixture_new("shared-group");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/nvidia/unbind", "0000:02:00.0"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/new_id", "10de 1e04"), 0);
	assert_driver(root, "0000:02:00.0", "vfio-pci");
	assert_driver(root, "0000:01:00.0", "nvidia");	/* bound devices are not taken */
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/new_id", "10de 1e04"), EEXIST);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/remove_id", "10de 1e04"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/remove_id", "10de 1e04"), ENODEV);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/new_id", "zz"), EINVAL);
	fixture_free(root);
}

static void
fault_bind_fail_refuses_explicit_bind_and_probe_leaves_it_driverless(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "bind-fail " AUDIO " vfio-pci");
	move_to_vfio(root, AUDIO, "snd_hda_intel");
	assert_driver(root, AUDIO, "");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/bind", AUDIO), ENODEV);
	fixture_free(root);
}

static void
fault_vanish_removes_the_device_on_unbind(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "vanish " AUDIO);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	assert_false(fixture_exists(root, "/sys/bus/pci/devices/" AUDIO));
	assert_false(fixture_exists(root, "/sys/devices/pci0000:00/0000:00:01.0/" AUDIO));
	assert_false(fixture_exists(root, "/sys/kernel/iommu_groups/1/devices/" AUDIO));
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", AUDIO), EINVAL);
	fixture_free(root);
}

static void
fault_refuse_fails_the_native_driver_k_times_then_binds(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "refuse " AUDIO " 2");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/bind", AUDIO), ENODEV);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", AUDIO), 0);
	assert_driver(root, AUDIO, "");
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/bind", AUDIO), 0);
	assert_driver(root, AUDIO, "snd_hda_intel");
	fixture_free(root);
}

static void
fault_novfio_keeps_the_group_node_from_appearing(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "novfio 11");
	move_to_vfio(root, "0000:02:00.0", "nvme");
	assert_driver(root, "0000:02:00.0", "vfio-pci");
	assert_false(fixture_exists(root, "/dev/vfio/11"));
	fixture_free(root);
}

static void
fault_unbind_block_makes_unbind_take_that_long(void **state)
{
	char *root = fixture_new("desktop");
	fixture_fault(root, "unbind-block " AUDIO " 1");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind", AUDIO), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 990);
	assert_driver(root, AUDIO, "");
	fixture_free(root);
}

static void
unmodelled_attribute_write_fails_loudly_with_eio(void **state)
{
	char *root = fixture_new("desktop");
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/" AUDIO "/remove", "1"), EIO);
	assert_int_equal(sysw(root, "/sys/bus/pci/rescan", "1"), EIO);
	fixture_free(root);
}

static void
stdio_writes_reach_the_simulated_kernel(void **state)
{
	char *root = fixture_new("desktop");
	char *p = xasprintf("%s/sys/bus/pci/drivers/snd_hda_intel/unbind", root);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", AUDIO);
	assert_int_equal(fclose(f), 0);
	assert_driver(root, AUDIO, "");
	f = fopen(p, "w");
	fprintf(f, "%s\n", AUDIO);
	assert_int_not_equal(fclose(f), 0);	/* ENODEV surfaces at the flush */
	free(p);
	fixture_free(root);
}

static void
opening_an_attribute_with_truncation_does_not_empty_it(void **state)
{
	char *root = fixture_new("desktop");
	char *p = xasprintf("%s/sys/bus/pci/devices/" AUDIO "/driver_override", root);
	int fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	char *v = fixture_read(root, "/sys/bus/pci/devices/" AUDIO "/driver_override");
	assert_string_equal(v, "(null)\n");
	free(v);
	free(p);
	fixture_free(root);
}

static void
a_full_round_trip_leaves_the_tree_byte_for_byte_as_before(void **state)
{
	char *root = fixture_new("desktop");
	char *before = tree_snapshot(root);
	move_to_vfio(root, "0000:02:00.0", "nvme");
	assert_true(fixture_exists(root, "/dev/vfio/11"));
	assert_int_equal(sysw(root, "/sys/bus/pci/devices/0000:02:00.0/driver_override", "\n"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers/vfio-pci/unbind", "0000:02:00.0"), 0);
	assert_int_equal(sysw(root, "/sys/bus/pci/drivers_probe", "0000:02:00.0"), 0);
	char *after = tree_snapshot(root);
	tree_assert_equal(before, after);
	free(before);
	free(after);
	fixture_free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(override_then_unbind_and_probe_moves_device_to_override_driver),
		cmocka_unit_test(driver_override_reads_back_and_clears_to_null),
		cmocka_unit_test(probe_without_override_binds_the_native_driver_again),
		cmocka_unit_test(bind_of_a_bound_device_fails_ebusy),
		cmocka_unit_test(unbind_from_a_driver_it_is_not_on_fails_enodev),
		cmocka_unit_test(bind_to_a_driver_that_does_not_match_fails_enodev),
		cmocka_unit_test(drivers_probe_of_an_unknown_device_fails_einval),
		cmocka_unit_test(drivers_probe_succeeds_even_when_no_driver_binds),
		cmocka_unit_test(vfio_group_node_appears_when_the_whole_group_is_on_vfio_and_goes_on_unbind),
		cmocka_unit_test(new_id_captures_every_identical_device_without_a_driver),
		cmocka_unit_test(fault_bind_fail_refuses_explicit_bind_and_probe_leaves_it_driverless),
		cmocka_unit_test(fault_vanish_removes_the_device_on_unbind),
		cmocka_unit_test(fault_refuse_fails_the_native_driver_k_times_then_binds),
		cmocka_unit_test(fault_novfio_keeps_the_group_node_from_appearing),
		cmocka_unit_test(fault_unbind_block_makes_unbind_take_that_long),
		cmocka_unit_test(unmodelled_attribute_write_fails_loudly_with_eio),
		cmocka_unit_test(stdio_writes_reach_the_simulated_kernel),
		cmocka_unit_test(opening_an_attribute_with_truncation_does_not_empty_it),
		cmocka_unit_test(a_full_round_trip_leaves_the_tree_byte_for_byte_as_before),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
