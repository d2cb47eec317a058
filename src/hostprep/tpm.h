/* -tpm / -win11: swtpm as a companion. Its state lives in
 * /var/lib/vfio/NAME/tpm (0700) and is kept across runs, so a Windows 11
 * guest keeps its TPM (the original lost it every run); its control socket is
 * in QEMU's own directory of the runtime directory (swtpm runs as QEMU's
 * user and makes it there), which QEMU gets as
 *   -chardev socket,id=chrtpm,path=RUNDIR/qemu/swtpm.sock
 *   -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0
 * $VFIO_SWTPM replaces the swtpm program (tests use a fake). */
#ifndef VFIO_TPM_H
#define VFIO_TPM_H

#include <jansson.h>
#include <sys/types.h>

/* The companion-start change for the guest NAME; rundir is the host path of
 * the runtime directory (its log and pid file), sock the host path of the
 * control socket swtpm makes. */
json_t *tpm_change(const char *name, const char *rundir, const char *sock, uid_t uid, gid_t gid);

#endif
