/* Running a host program (modprobe, systemctl) with execve and an argv
 * array, never a shell, and collecting what it said on stderr for the
 * message when it fails. */
#ifndef VFIO_HOSTCMD_H
#define VFIO_HOSTCMD_H

#include "verr.h"

/* Runs argv[0] (an absolute path) with argv and waits for it. Returns its
 * exit status (0..255; 128+N when killed by signal N) with *errout its stderr
 * (allocated, stripped, "" when silent; may be NULL to discard), or -errno
 * with err set when it could not be started. */
int hostcmd_run(char *const argv[], char **errout, struct verr *err);

#endif
