/* OVMF search in the host snapshot: each distribution's layout in a tree of
 * its own, best first (4M before 2M, plain before secboot), each code image
 * paired with its vars template. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "snapshot.h"
#include "util.h"

struct fw_expect {
	const char *code, *vars;
	bool secboot, is_4m;
};

/* Build a tree holding only `files` as firmware and check what the snapshot
 * found, in order. */
static void
check_layout(const char *const *files, size_t nfiles, const struct fw_expect *want, size_t nwant)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "{\"ovmf\": [");
	for (size_t i = 0; i < nfiles; i++)
		strbuf_printf(&sb, "%s\"%s\"", i ? ", " : "", files[i]);
	strbuf_puts(&sb, "]}");
	struct host_snapshot snap;
	char *root = fixture_snapshot(NULL, sb.s, &snap);
	strbuf_free(&sb);
	for (size_t i = 0; i < snap.n_firmware && i < nwant; i++) {
		assert_string_equal(snap.firmware[i].code, want[i].code);
		assert_string_equal(snap.firmware[i].vars, want[i].vars);
		assert_int_equal(snap.firmware[i].secboot, want[i].secboot);
		assert_int_equal(snap.firmware[i].is_4m, want[i].is_4m);
	}
	assert_int_equal(snap.n_firmware, nwant);
	snapshot_free(&snap);
	fixture_remove(root);
}

static void
firmware_debian_4m_before_2m_plain_before_secboot(void **state)
{
	const char *files[] = {
		"/usr/share/OVMF/OVMF_CODE.secboot.fd", "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd",
		"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
		"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", false, true },
		{ "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd", false, false },
		{ "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", true, true },
		/* no OVMF_VARS.ms.fd on this host: the plain template */
		{ "/usr/share/OVMF/OVMF_CODE.secboot.fd", "/usr/share/OVMF/OVMF_VARS.fd", true, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_arch_edk2_x64_4m(void **state)
{
	const char *files[] = {
		"/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd",
		"/usr/share/edk2/x64/OVMF_VARS.4m.fd",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd", false, true },
		{ "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd", true, true },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_arch_older_layouts(void **state)
{
	const char *files[] = {
		"/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
		"/usr/share/edk2-ovmf/x64/OVMF_CODE.secboot.fd",
		"/usr/share/ovmf/x64/OVMF_CODE.fd", "/usr/share/ovmf/x64/OVMF_VARS.fd",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd", false, false },
		{ "/usr/share/ovmf/x64/OVMF_CODE.fd", "/usr/share/ovmf/x64/OVMF_VARS.fd", false, false },
		{ "/usr/share/edk2-ovmf/x64/OVMF_CODE.secboot.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd", true, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_fedora_edk2_ovmf(void **state)
{
	const char *files[] = {
		"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd",
		"/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd", "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd", false, false },
		{ "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd", "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd", true, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_opensuse_qemu_bin(void **state)
{
	const char *files[] = {
		"/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin",
		"/usr/share/qemu/ovmf-x86_64-ms-code.bin", "/usr/share/qemu/ovmf-x86_64-ms-vars.bin",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin", false, false },
		{ "/usr/share/qemu/ovmf-x86_64-ms-code.bin", "/usr/share/qemu/ovmf-x86_64-ms-vars.bin", true, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_nixos_libvirt_link(void **state)
{
	const char *files[] = { "/run/libvirt/nix-ovmf/OVMF_CODE.fd", "/run/libvirt/nix-ovmf/OVMF_VARS.fd" };
	const struct fw_expect want[] = {
		{ "/run/libvirt/nix-ovmf/OVMF_CODE.fd", "/run/libvirt/nix-ovmf/OVMF_VARS.fd", false, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_gentoo_edk2_ovmf(void **state)
{
	const char *files[] = {
		"/usr/share/edk2-ovmf/OVMF_CODE.fd", "/usr/share/edk2-ovmf/OVMF_VARS.fd",
		"/usr/share/edk2-ovmf/OVMF_CODE.secboot.fd",
	};
	const struct fw_expect want[] = {
		{ "/usr/share/edk2-ovmf/OVMF_CODE.fd", "/usr/share/edk2-ovmf/OVMF_VARS.fd", false, false },
		{ "/usr/share/edk2-ovmf/OVMF_CODE.secboot.fd", "/usr/share/edk2-ovmf/OVMF_VARS.fd", true, false },
	};
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_code_without_vars_has_empty_vars(void **state)
{
	const char *files[] = { "/usr/share/OVMF/OVMF_CODE_4M.fd" };
	const struct fw_expect want[] = { { "/usr/share/OVMF/OVMF_CODE_4M.fd", "", false, true } };
	check_layout(files, nitems(files), want, nitems(want));
}

static void
firmware_none_installed_is_recorded_not_an_error(void **state)
{
	/* vars templates alone are no firmware */
	const char *files[] = { "/usr/share/OVMF/OVMF_VARS_4M.fd" };
	check_layout(files, nitems(files), NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(firmware_debian_4m_before_2m_plain_before_secboot),
		cmocka_unit_test(firmware_arch_edk2_x64_4m),
		cmocka_unit_test(firmware_arch_older_layouts),
		cmocka_unit_test(firmware_fedora_edk2_ovmf),
		cmocka_unit_test(firmware_opensuse_qemu_bin),
		cmocka_unit_test(firmware_nixos_libvirt_link),
		cmocka_unit_test(firmware_gentoo_edk2_ovmf),
		cmocka_unit_test(firmware_code_without_vars_has_empty_vars),
		cmocka_unit_test(firmware_none_installed_is_recorded_not_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
