/* The VFIO_* environment variables choose what a root process runs and
 * where: $VFIO_QEMU, $VFIO_MODPROBE, $VFIO_SYSTEMCTL, $VFIO_NMCLI,
 * $VFIO_SWTPM, $VFIO_HOST_ROOT and the test hooks $VFIO_TEST_*. Every read of them goes through vfioenv_get(), which is the
 * one place that decides whether they count.
 *
 * They count unless the process is privileged on someone else's behalf:
 * running as root (effective uid 0) while the real uid is not root (a
 * set-uid wrapper) or while a caller's identity was passed along by sudo
 * (SUDO_UID), doas (DOAS_USER) or pkexec (PKEXEC_UID). Through sudo with a
 * sudoers SETENV or env_keep they would otherwise hand the caller root. A
 * plain root shell, a systemd unit and an unprivileged user running their
 * own vfio (no privilege to gain) keep them. $VFIO_DEBUG is not one of them:
 * it only makes the log verbose. */
#ifndef VFIO_VFIOENV_H
#define VFIO_VFIOENV_H

#include <stdbool.h>

/* getenv(name) when the VFIO_* variables count, else NULL (and, the first
 * time a set one is ignored, a warning naming it and why). */
const char *vfioenv_get(const char *name);
/* Whether they count now. */
bool vfioenv_honoured(void);
/* For test programs that play the sudo caller themselves (SUDO_UID set by
 * the test) and still run on fixtures: honour the variables regardless. */
void vfioenv_trust_caller(void);

#endif
