/* vfio's own user for QEMU. Started as root with nobody behind it (a root
 * shell, a systemd unit: no sudo caller, no -user), QEMU runs as the system
 * user "vfio-qemu", never as root, as libvirt runs it as libvirt-qemu.
 *
 * The user belongs to vfio's installation, not to a run: meson installs
 * sysusers.d/vfio.conf, which systemd-sysusers turns into the user at boot
 * or when a package installs it. Where it is still missing, `-run` creates
 * it the same way before the first host change, with the id the plan chose
 * (so the dry run shows the very uid the dev-chowns give nodes to), and
 * keeps it: files it owns outlive runs (the TPM state in
 * /var/lib/vfio/NAME/tpm, -createvars stores), so its uid must not change
 * or be handed to someone else. That creation is the only change a run
 * does not give back; the dry run says so.
 *
 * The user database read and written is the host root's /etc/passwd and
 * /etc/group (hostroot.h), so tests do it on their fixture trees. */
#ifndef VFIO_QEMUUSER_H
#define VFIO_QEMUUSER_H

#include <stdbool.h>

#include "verr.h"

#define QEMUUSER_NAME "vfio-qemu"

struct qemuuser_db {
	bool exists;             /* vfio-qemu is in /etc/passwd */
	int uid, gid;            /* its ids; when it does not exist: the system id -run gives it
				  * (free as a uid and as a gid), -1 when no system id is free */
	char home[128];
};

/* Look vfio-qemu up under the host root, or choose the id it gets: the
 * highest id in the system range of /etc/login.defs (SYS_UID_MIN..
 * SYS_UID_MAX and the GID pair; 100..999 when unset), as useradd -r and
 * systemd-sysusers count, that no user and no group has. */
void qemuuser_read(struct qemuuser_db *db);

/* Create vfio-qemu with uid and gid id, as a system user without a home or
 * a login shell (useradd -r; --prefix the host root). When another run
 * made it meanwhile with that very id, that is success. -errno with err
 * naming the user, the id and the fix otherwise. */
int qemuuser_create(int id, struct verr *err);

#endif
