/* The guest's companions: helper programs that live as long as the guest
 * (swtpm, remote-viewer, looking-glass-client), started as a given user with
 * execve (no shell), output to a log in the runtime directory, and stopped at
 * teardown: SIGTERM, then SIGKILL after COMPANION_STOP_MS.
 *
 * As a host change:
 *   {"action": "companion-start", "target": "swtpm",
 *    "args": {"argv": ["swtpm", "socket", ...], "uid": 0, "gid": 0,
 *             "env": ["DISPLAY=:0"],                  (optional, added to a minimal environment)
 *             "log": "/run/vfio/NAME/swtpm.log", "pidfile": "/run/vfio/NAME/swtpm.pid",
 *             "statedir": "/var/lib/vfio/NAME/tpm",   (optional: created 0700 for uid, kept)
 *             "wait_path": "/run/vfio/NAME/swtpm.sock"}}  (optional: started = this exists)
 * The pid file holds "PID STARTTIME\n" (STARTTIME is field 22 of
 * /proc/PID/stat) and is written before the program is executed, so undo,
 * even from `vfio -restore` after a crash, finds the process, and never
 * signals a different process that reuses its pid.
 *
 * Processes are this machine's real ones: /proc here is the real /proc, not
 * the host root (a fixture has no processes to offer). The pid, log, state
 * and wait paths are host paths, joined to the host root. */
#ifndef VFIO_COMPANION_H
#define VFIO_COMPANION_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "change.h"
#include "util.h"
#include "verr.h"

#define COMPANION_STOP_MS 5000
/* How long a companion may take to create its socket (wait_path). */
#define COMPANION_READY_MS 5000

struct companion_spec {
	const char *name;        /* for messages: "swtpm" */
	char *const *argv;       /* argv[0]: a path, or a name looked up in $PATH */
	char *const *env;        /* "K=V" added to the minimal environment, NULL-terminated or NULL */
	uid_t uid;
	gid_t gid;
	const char *log;         /* host path; output appended; NULL: /dev/null */
	const char *pidfile;     /* host path; NULL: none */
};

struct companion_proc {
	pid_t pid;
	unsigned long long starttime;
};

/* Start spec; on success proc describes the running process. */
int companion_start(const struct companion_spec *spec, struct companion_proc *proc, struct verr *err);
/* Wait (bounded) until host path exists, failing early if the companion
 * exits first. */
int companion_wait_path(const struct companion_spec *spec, const struct companion_proc *proc, const char *path,
    int timeout_ms, struct verr *err);
/* Stop proc if it is still that process: SIGTERM, SIGKILL after timeout_ms.
 * A gone process or a pid now used by another process is success (the
 * latter is left alone). Reaps it when it is our child. */
int companion_stop(const struct companion_proc *proc, int timeout_ms, struct verr *err);
/* The same from a pid file (host path); a missing file is success. */
int companion_stop_pidfile(const char *pidfile, int timeout_ms, struct verr *err);
/* Run spec to completion within timeout_ms (killed after); *status is the
 * wait status. For short helpers such as `systemctl --user start`. */
int companion_run(const struct companion_spec *spec, int timeout_ms, int *status, struct verr *err);

/* Field 22 of /proc/PID/stat and the state letter; -errno when gone. */
int companion_proc_stat(pid_t pid, unsigned long long *starttime, char *state);

/* Build a companion-start change for the plan (a new reference). rundir is
 * the host path of the runtime directory ("/run/vfio/NAME"); the log and pid
 * file are rundir/NAME.log and rundir/NAME.pid. env: NULL or "K=V" strings. */
json_t *companion_change(const char *name, const struct strv *argv, uid_t uid, gid_t gid, const char *rundir,
    const struct strv *env);

/* remote-viewer / looking-glass-client for the invoking user: the same,
 * with the user's display (either may be NULL) in its environment. */
json_t *companion_viewer_change(const char *name, const struct strv *argv, uid_t uid, gid_t gid, const char *rundir,
    const char *display, const char *wayland_display);

extern const struct change_ops companion_start_ops;

#endif
