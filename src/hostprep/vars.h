/* -createvars: the guest's UEFI variable store, copied from the firmware's
 * OVMF_VARS template when -biosvars names a file that does not exist yet.
 *   {"action": "vars-create", "target": "/var/lib/vfio/win11/OVMF_VARS.fd",
 *    "args": {"template": "/usr/share/OVMF/OVMF_VARS_4M.fd", "uid": 1000, "gid": 1000}}
 * From then on the copy is the guest's own state (Secure Boot keys, boot
 * entries): undo keeps it, and only removes a copy a crash left half-written.
 * The path is the user's choice: a process running as QEMU's user (uid/gid)
 * does all the work, so root never follows it (vars.c). */
#ifndef VFIO_VARS_H
#define VFIO_VARS_H

#include "change.h"

extern const struct change_ops vars_create_ops;

#endif
