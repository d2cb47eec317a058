/* OVMF: the well-known places distributions install it, for when -bios is
 * not given. Each code image is paired with the vars template built for it
 * (a 4M code image needs a 4M vars file; a secure-boot one wants the vars
 * with Microsoft's keys enrolled). Best first: 4M before 2M, plain before
 * secboot; the plan takes the first secboot one for -secureboot. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

struct ovmf_candidate {
	const char *code;
	const char *vars[3];     /* first one present wins */
	bool secboot, is_4m;
};

static const struct ovmf_candidate ovmf_candidates[] = {
	/* plain, 4M */
	{ "/usr/share/OVMF/OVMF_CODE_4M.fd", { "/usr/share/OVMF/OVMF_VARS_4M.fd" }, false, true },            /* Debian/Ubuntu */
	{ "/usr/share/edk2/x64/OVMF_CODE.4m.fd", { "/usr/share/edk2/x64/OVMF_VARS.4m.fd" }, false, true },    /* Arch */
	{ "/usr/share/qemu/ovmf-x86_64-4m-code.bin", { "/usr/share/qemu/ovmf-x86_64-4m-vars.bin" }, false, true }, /* openSUSE */
	/* plain, 2M */
	{ "/usr/share/OVMF/OVMF_CODE.fd", { "/usr/share/OVMF/OVMF_VARS.fd" }, false, false },                 /* Debian/Ubuntu */
	{ "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", { "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd" }, false, false }, /* Arch (older) */
	{ "/usr/share/ovmf/x64/OVMF_CODE.fd", { "/usr/share/ovmf/x64/OVMF_VARS.fd" }, false, false },         /* Arch (older) */
	{ "/usr/share/edk2/ovmf/OVMF_CODE.fd", { "/usr/share/edk2/ovmf/OVMF_VARS.fd" }, false, false },       /* Fedora */
	{ "/usr/share/qemu/ovmf-x86_64-code.bin", { "/usr/share/qemu/ovmf-x86_64-vars.bin" }, false, false }, /* openSUSE */
	{ "/run/libvirt/nix-ovmf/OVMF_CODE.fd", { "/run/libvirt/nix-ovmf/OVMF_VARS.fd" }, false, false },     /* NixOS */
	{ "/usr/share/edk2-ovmf/OVMF_CODE.fd", { "/usr/share/edk2-ovmf/OVMF_VARS.fd" }, false, false },       /* Gentoo */
	/* secboot, 4M */
	{ "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
	  { "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd" }, true, true },
	{ "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd", { "/usr/share/edk2/x64/OVMF_VARS.4m.fd" }, true, true },
	{ "/usr/share/qemu/ovmf-x86_64-ms-4m-code.bin", { "/usr/share/qemu/ovmf-x86_64-ms-4m-vars.bin" }, true, true },
	/* secboot, 2M */
	{ "/usr/share/OVMF/OVMF_CODE.secboot.fd",
	  { "/usr/share/OVMF/OVMF_VARS.ms.fd", "/usr/share/OVMF/OVMF_VARS.fd" }, true, false },
	{ "/usr/share/edk2-ovmf/x64/OVMF_CODE.secboot.fd", { "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd" }, true, false },
	{ "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd",
	  { "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd" }, true, false },
	{ "/usr/share/qemu/ovmf-x86_64-ms-code.bin", { "/usr/share/qemu/ovmf-x86_64-ms-vars.bin" }, true, false },
	{ "/usr/share/edk2-ovmf/OVMF_CODE.secboot.fd",
	  { "/usr/share/edk2-ovmf/OVMF_VARS.secboot.fd", "/usr/share/edk2-ovmf/OVMF_VARS.fd" }, true, false },
};

static bool
firmware_present(const char *hostpath)
{
	char path[PATH_MAX];
	return host_path(path, sizeof(path), "%s", hostpath) != NULL && host_exists(path);
}

int
firmware_scan(struct host_snapshot *snap, struct verr *err)
{
	size_t cap = 0;
	for (size_t i = 0; i < nitems(ovmf_candidates); i++) {
		const struct ovmf_candidate *c = &ovmf_candidates[i];
		if (!firmware_present(c->code))
			continue;
		struct firmware_file *f = snap_grow(&snap->firmware, &snap->n_firmware, &cap, sizeof(*f));
		snap_copy(f->code, sizeof(f->code), c->code);
		f->secboot = c->secboot;
		f->is_4m = c->is_4m;
		for (size_t v = 0; v < nitems(c->vars) && c->vars[v] != NULL; v++) {
			if (firmware_present(c->vars[v])) {
				snap_copy(f->vars, sizeof(f->vars), c->vars[v]);
				break;
			}
		}
		log_debug("firmware: %s (vars %s)", f->code, f->vars[0] ? f->vars : "none");
	}
	return 0;
}
