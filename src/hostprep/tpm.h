/* -tpm / -win11: swtpm as a companion. Its state lives in
 * /var/lib/vfio/NAME/tpm (0700) and is kept across runs, so a Windows 11
 * guest keeps its TPM (the original lost it every run); its control socket is
 * RUNDIR/swtpm.sock, which QEMU gets as
 *   -chardev socket,id=chrtpm,path=RUNDIR/swtpm.sock
 *   -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0
 * $VFIO_SWTPM replaces the swtpm program (tests use a fake). */
#ifndef VFIO_TPM_H
#define VFIO_TPM_H

#include <jansson.h>
#include <sys/types.h>

/* The companion-start change for the guest NAME; rundir is the host path of
 * the runtime directory. The socket path (host path) is RUNDIR/swtpm.sock. */
json_t *tpm_change(const char *name, const char *rundir, uid_t uid, gid_t gid);

#endif
