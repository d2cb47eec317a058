/* Processes and signals: the loop's signal events (tmux proc.c style: signals
 * and SIGCHLD arrive as events, never handled in a signal handler), and the
 * pid + start-time checks that keep `vfio -restore` from killing a process
 * that merely reuses a dead QEMU's pid. */
#ifndef VFIO_PROC_H
#define VFIO_PROC_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

#include "verr.h"

typedef void (*proc_signal_cb)(int signo, void *arg);

struct proc_signals {
	struct event *ev[4];     /* SIGINT, SIGTERM, SIGHUP, SIGCHLD */
};

/* Deliver SIGINT, SIGTERM, SIGHUP and SIGCHLD to cb from the loop; SIGPIPE is
 * ignored (a dead QEMU must not kill us mid-write). */
void proc_signals_add(struct proc_signals *ps, struct event_base *base, proc_signal_cb cb, void *arg);
void proc_signals_free(struct proc_signals *ps);

/* /proc/PID/stat field 22 (start time in clock ticks after boot). Returns 0,
 * or -ESRCH when there is no such process (a zombie counts as gone). */
int proc_start_time(pid_t pid, unsigned long long *start);
/* True when pid runs and started at start: the same process we recorded. */
bool proc_matches(pid_t pid, unsigned long long start);

/* A pidfd for pid when it is the process that started at start (checked
 * after the pidfd is held: no reused pid), or -ESRCH. It turns readable
 * when the process exits; proc_pidfd_signal() signals it. */
int proc_pidfd(pid_t pid, unsigned long long start);
int proc_pidfd_signal(int pidfd, int sig);

/* Make a process that is not our child go away: SIGTERM, wait up to term_ms
 * for it to exit, then SIGKILL and wait up to kill_ms. Does nothing when pid
 * is gone or is another process (start time differs). Waits on a pidfd, no
 * polling. Returns 0 when it is gone. */
int proc_terminate(pid_t pid, unsigned long long start, int term_ms, int kill_ms, struct verr *err);

/* The processes other than this one that have the file behind fd open (at
 * most max of them, from the real /proc). */
size_t proc_holding(int fd, pid_t *pids, size_t max);
/* Wait, on pidfds, up to timeout_ms in all for every one of pids to exit;
 * true when they all did. */
bool proc_wait_gone(const pid_t *pids, size_t n, int timeout_ms);

#endif
