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
/* The same, collecting what it says on which (STDOUT_FILENO or
 * STDERR_FILENO; the other goes to /dev/null) into *text. */
int hostcmd_capture(char *const argv[], int which, char **text, struct verr *err);

/* The systemctl to run for unit: $VFIO_SYSTEMCTL, else /usr/bin/systemctl
 * on the real host; NULL with err set under another host root (tests give
 * one for that root). */
const char *hostcmd_systemctl(const char *unit, struct verr *err);

/* A program as execvp would find it, without its shell fallback: name as
 * given when it has a slash, else the first executable regular file of
 * that name in $PATH (a default PATH when unset). Allocated; NULL when
 * there is none. */
char *hostcmd_find(const char *name);

#endif
