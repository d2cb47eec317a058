/* The supervised run. One libevent loop serves QMP (replies and events), the
 * signals and the QEMU child; the host is changed before QEMU starts and put
 * back only after QEMU is gone. Every way out (a failed change, a failed
 * attach, a crash, SHUTDOWN, a signal) ends in the same teardown.
 *
 * A run may also begin with a guest already running: one a killed
 * supervisor left behind is adopted (adopt.h): its monitor reconnected, what
 * is attached read back, and from then on it is as if this supervisor had
 * started it. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "adopt.h"
#include "asuser.h"
#include "change.h"
#include "child.h"
#include "console.h"
#include "control.h"
#include "devices.h"
#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "net.h"
#include "notify.h"
#include "proc.h"
#include "qemuuser.h"
#include "qmp.h"
#include "release.h"
#include "restore.h"
#include "rundir.h"
#include "service.h"
#include "spawn.h"
#include "status.h"
#include "threads.h"
#include "usbwatch.h"
#include "vfioenv.h"

/* A QMP command that does not answer in this long means QEMU is stuck. */
#define SESSION_CMD_TIMEOUT_MS   30000
/* QEMU prints its greeting as soon as it starts. */
#define SESSION_GREETING_TIMEOUT_S 60
/* After quit (or SHUTDOWN, or a closed monitor) QEMU gets this long to exit
 * before SIGKILL. */
#define SESSION_KILL_TIMEOUT_S   10
#define SESSION_FIFO_PRIORITY    20

enum session_state {
	SESSION_PREPARING,       /* changing the host */
	SESSION_STARTING,        /* QEMU spawned, waiting for the QMP greeting */
	SESSION_ADOPTING,        /* reconnected to a running QEMU, reading back its devices */
	SESSION_ATTACHING,       /* sending the plan's QMP commands */
	SESSION_PINNING,         /* query-cpus-fast, then cont */
	SESSION_RUNNING,
	SESSION_STOPPING,        /* waiting for QEMU to exit */
	SESSION_RESTORING,
};

static const char *const session_state_names[] = {
	[SESSION_PREPARING] = "preparing",
	[SESSION_STARTING] = "starting",
	[SESSION_ADOPTING] = "adopting",
	[SESSION_ATTACHING] = "attaching",
	[SESSION_PINNING] = "pinning",
	[SESSION_RUNNING] = "running",
	[SESSION_STOPPING] = "stopping",
	[SESSION_RESTORING] = "restoring",
};

/* The status.json format (and the control FIFO's status): 2 has "version",
 * devices' "state", "adopted". */
#define SESSION_STATUS_VERSION 2

struct session {
	const struct options *opts;   /* what the run reads: the start's, or the adopted guest's */
	const struct plan *plan;
	const char *name;
	bool console_tty;             /* relay the console to this invocation's terminal */
	bool adopted;                 /* the guest was running when this run began */
	struct options adopted_opts;  /* an adopted guest's, from its run record */
	struct plan adopted_plan;
	int qemu_pidfd;               /* an adopted QEMU is not our child: its exit shows here */
	struct event *qemu_exit_ev;
	bool powerdown_when_adopted;  /* a signal came while adopting */
	bool detached;                /* leave the guest running for a later supervisor */
	struct console *console;
	struct release *release;
	struct event_base *base;
	struct proc_signals sigs;
	struct rundir rd;
	struct journal j;
	struct devices devs;
	struct spawn_user user;
	char *qemu_path;         /* the file executed with the plan's argv */

	enum session_state state;
	pid_t qemu_pid;
	bool qemu_gone;
	int qemu_status;
	struct qmp *qmp;
	struct usbwatch *usb;    /* USB hotplug and the control FIFO's usb add/del (while running) */
	bool qmp_closed;
	char *monitor_lost;      /* why the monitor closed while QEMU still ran */
	size_t next_cmd;
	size_t next_change;      /* the plan's host change being made (preparing) */
	struct journal_job *prep_job;   /* ... in flight */
	int cmd_fd;              /* fd passed with the command in flight, closed on its reply */

	int n_signals;
	bool guest_ran;          /* cont succeeded */
	bool shutdown_event, shutdown_by_guest;
	bool quit_sent, killed;
	char *failure;           /* the first reason the run failed */

	struct event *greeting_timer, *powerdown_timer, *kill_timer;
	struct control *control;   /* the control FIFO, while QEMU runs */
};

static void session_send_next(struct session *s);
static void session_quit_now(struct session *s);
static int session_check_nodes(struct session *s);
static int session_spawn(struct session *s);
static void session_control_open(struct session *s);

static void
session_status(struct session *s)
{
	if (s->rd.path == NULL)
		return;
	json_t *st = json_pack("{s:i, s:s, s:s, s:i, s:i, s:b, s:b, s:o, s:o}",
	    "version", SESSION_STATUS_VERSION,
	    "name", s->name,
	    "state", session_state_names[s->state],
	    "pid", (int)getpid(),
	    "qemu_pid", (int)s->qemu_pid,
	    "guest_ran", s->guest_ran,
	    "adopted", s->adopted,
	    "devices", devices_json(&s->devs),
	    "host_changes", journal_changes_in_force(&s->j));
	struct verr err = { 0 };
	if (status_write(s->rd.path, st, &err) < 0)
		log_warnx("%s", err.msg);
	json_decref(st);
}

static void
session_set_state(struct session *s, enum session_state state)
{
	s->state = state;
	log_debug("session %s: %s", s->name, session_state_names[state]);
	session_status(s);
}

static void
session_arm(struct session *s, struct event **ev, int seconds, event_callback_fn fn)
{
	if (*ev == NULL)
		*ev = evtimer_new(s->base, fn, s);
	struct timeval tv = { seconds, 0 };
	evtimer_add(*ev, &tv);
}

/* Record the first reason the run failed and make QEMU go away. */
static void
session_fail(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
session_fail(struct session *s, const char *fmt, ...)
{
	if (s->failure == NULL) {
		va_list ap;
		va_start(ap, fmt);
		s->failure = xvasprintf(fmt, ap);
		va_end(ap);
		log_error("%s", s->failure);
	}
	if (!s->qemu_gone) {
		session_set_state(s, SESSION_STOPPING);
		session_quit_now(s);
	}
}

/* --- stopping QEMU ------------------------------------------------------ */

/* A spawned QEMU is our child (its pid cannot be reused before we reap
 * it); an adopted one is signalled through its pidfd. */
static void
session_kill(struct session *s, int sig)
{
	if (s->qemu_pidfd >= 0)
		proc_pidfd_signal(s->qemu_pidfd, sig);
	else if (s->qemu_pid > 0)
		kill(s->qemu_pid, sig);
}

static void
session_kill_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct session *s = arg;
	if (s->qemu_gone)
		return;
	log_warnx("QEMU (pid %d) did not exit within %d s: killing it", (int)s->qemu_pid,
	    SESSION_KILL_TIMEOUT_S);
	s->killed = true;
	session_kill(s, SIGKILL);
}

static void
session_quit_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (err != NULL && !s->qemu_gone && strcmp(err->class, QMP_ERR_DISCONNECTED) != 0) {
		log_warnx("QEMU did not accept quit (%s): terminating it", err->desc);
		session_kill(s, SIGTERM);
	}
}

/* quit over QMP (SIGTERM when the monitor is gone); SIGKILL after a bound. */
static void
session_quit_now(struct session *s)
{
	if (s->qemu_gone || s->quit_sent || s->qemu_pid <= 0)
		return;
	s->quit_sent = true;
	if (s->qmp != NULL && !s->qmp_closed && qmp_is_ready(s->qmp) &&
	    qmp_send(s->qmp, "quit", NULL, -1, SESSION_CMD_TIMEOUT_MS, session_quit_reply, s) == 0) {
		log_info("telling QEMU to quit");
	} else {
		log_info("stopping QEMU (pid %d)", (int)s->qemu_pid);
		session_kill(s, SIGTERM);
	}
	session_arm(s, &s->kill_timer, SESSION_KILL_TIMEOUT_S, session_kill_timeout);
}

static void
session_powerdown_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct session *s = arg;
	if (s->qemu_gone)
		return;
	log_warnx("the guest did not power down within %d s: quitting QEMU",
	    s->opts->shutdowntimeout_s > 0 ? s->opts->shutdowntimeout_s : 60);
	session_quit_now(s);
}

static void
session_powerdown_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (err != NULL && !s->qemu_gone) {
		log_warnx("QEMU did not accept system_powerdown (%s): quitting it", err->desc);
		session_quit_now(s);
	}
}

/* The ACPI power button, with -shutdowntimeout to act on it (a signal, or
 * `powerdown` on the control FIFO). */
static void
session_powerdown(struct session *s, const char *why)
{
	int t = s->opts->shutdowntimeout_s > 0 ? s->opts->shutdowntimeout_s : 60;
	log_info("%s: asking the guest to power down (quitting in %d s; signal again to quit now)", why, t);
	session_set_state(s, SESSION_STOPPING);
	if (qmp_send(s->qmp, "system_powerdown", NULL, -1, SESSION_CMD_TIMEOUT_MS,
	    session_powerdown_reply, s) < 0) {
		session_quit_now(s);
		return;
	}
	session_arm(s, &s->powerdown_timer, t, session_powerdown_timeout);
}

/* --- signals and the child ----------------------------------------------- */

static char *
session_describe_exit(int status)
{
	if (WIFEXITED(status))
		return xasprintf("exit status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return xasprintf("killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	return xstrdup("stopped");
}

/* QEMU is gone: why, as far as we can tell. An adopted QEMU is not our
 * child: its exit status is its new parent's (init), so a SHUTDOWN event
 * or our own quit is what tells a clean end from a crash. */
static void
session_qemu_gone(struct session *s, int status, bool known)
{
	s->qemu_gone = true;
	s->qemu_status = status;
	char *how = known ? session_describe_exit(status) : xstrdup("exit status unknown: not our child");
	bool clean = known ? WIFEXITED(status) && WEXITSTATUS(status) == 0 : s->shutdown_event || s->quit_sent;
	if (s->killed && s->monitor_lost != NULL && !s->quit_sent && s->failure == NULL) {
		s->failure = xasprintf("QEMU's monitor closed while %s (%s) and QEMU did not exit by itself within "
		    "%d s: vfio killed it", session_state_names[s->state], s->monitor_lost, SESSION_KILL_TIMEOUT_S);
		log_error("%s", s->failure);
	} else if (s->state < SESSION_RUNNING && s->failure == NULL) {
		s->failure = xasprintf("QEMU exited while %s (%s); its messages above say why",
		    session_state_names[s->state], how);
		log_error("%s", s->failure);
	} else if (!clean && !s->killed && !s->quit_sent && s->failure == NULL) {
		s->failure = xasprintf("QEMU %s while the guest was running%s", how,
		    s->shutdown_event ? "" : " (without a SHUTDOWN event: it crashed)");
		log_error("%s", s->failure);
	} else if (s->killed && s->failure == NULL) {
		s->failure = xasprintf("QEMU had to be killed");
	} else {
		log_info("QEMU exited (%s)", how);
	}
	free(how);
	event_base_loopbreak(s->base);
}

static void
session_child(struct session *s)
{
	int status;
	pid_t r;
	/* Only QEMU: other children (the child runner's) are reaped by whoever
	 * started them, and waitpid(0) would steal them. */
	if (s->qemu_pid <= 0 || s->qemu_gone || s->adopted)
		return;
	do
		r = waitpid(s->qemu_pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != s->qemu_pid)
		return;
	session_qemu_gone(s, status, true);
}

static void
session_adopted_exit(evutil_socket_t fd, short events, void *arg)
{
	struct session *s = arg;
	if (!s->qemu_gone)
		session_qemu_gone(s, 0, false);
}

static void
session_service_answer(bool restarting, void *arg)
{
	struct session *s = arg;
	if (s->qemu_gone || s->n_signals > 1 || s->state != SESSION_RUNNING)
		return;      /* overtaken: a second signal, or the guest ended */
	if (!restarting) {
		session_powerdown(s, "the service is stopped");
		return;
	}
	log_info("the service restarts: the guest keeps running for its next start to adopt");
	s->detached = true;
	event_base_loopbreak(s->base);
}

static void
session_signal(int signo, void *arg)
{
	struct session *s = arg;
	if (signo == SIGCHLD) {
		session_child(s);
		return;
	}
	if (s->qemu_gone)
		return;
	if (s->state == SESSION_ADOPTING && !s->powerdown_when_adopted) {
		/* The guest runs: once it is ours, it is asked to power down. */
		log_info("%s while adopting the guest: it is asked to power down once adopted", strsignal(signo));
		s->powerdown_when_adopted = true;
		return;
	}
	if (s->state == SESSION_PREPARING) {
		/* Stop at once: the change in flight is cut short (its child
		 * killed), nothing further is changed, QEMU never starts, and
		 * teardown gives back what was begun. */
		if (s->failure == NULL) {
			s->failure = xasprintf("%s while preparing the host: stopping; what was changed is given back",
			    strsignal(signo));
			log_error("%s", s->failure);
		}
		journal_job_cancel(s->prep_job);
		s->prep_job = NULL;
		event_base_loopbreak(s->base);
		return;
	}
	s->n_signals++;
	if (s->n_signals == 1 && s->state == SESSION_RUNNING && !s->qmp_closed) {
		/* systemd's SIGTERM: a restart leaves the guest to the next start. */
		char unit[256];
		if (signo == SIGTERM && service_unit(unit, sizeof(unit)) &&
		    service_restarting(s->base, unit, session_service_answer, s)) {
			log_info("%s from the service manager: asking whether %s restarts", strsignal(signo), unit);
			return;
		}
		session_powerdown(s, strsignal(signo));
		return;
	}
	if (s->state < SESSION_RUNNING) {
		session_fail(s, "%s before the guest started: stopping", strsignal(signo));
		return;
	}
	log_info("%s again: quitting QEMU now", strsignal(signo));
	session_set_state(s, SESSION_STOPPING);
	session_quit_now(s);
}

/* --- QMP ----------------------------------------------------------------- */

/* The monitor went away under a command: QEMU is dying, and its exit status,
 * not the command, explains the failure (session_closed, session_child); or
 * QEMU sent garbage, which session_closed names. Either way QEMU did not
 * refuse the command. */
static bool
session_qmp_lost(const struct qmp_error *err)
{
	return err != NULL && (strcmp(err->class, QMP_ERR_DISCONNECTED) == 0 ||
	    strcmp(err->class, QMP_ERR_PROTOCOL) == 0);
}

/* --- QMP events: one table, as libvirt's eventHandlers[] ------------------ */

static void
session_on_shutdown(struct session *s, const json_t *data)
{
	s->shutdown_event = true;
	s->shutdown_by_guest = json_is_true(json_object_get(data, "guest"));
	const char *reason = json_string_value(json_object_get(data, "reason"));
	log_info("the guest shut down (%s, %s)", s->shutdown_by_guest ? "by the guest" : "by the host",
	    reason ? reason : "no reason given");
	if (s->state < SESSION_RUNNING && s->failure == NULL)
		s->failure = xasprintf("the guest shut down before it was started (%s)",
		    reason ? reason : "no reason given");
	session_set_state(s, SESSION_STOPPING);
	/* QEMU exits after SHUTDOWN by itself; make sure it does. */
	session_arm(s, &s->kill_timer, SESSION_KILL_TIMEOUT_S, session_kill_timeout);
}

/* A device_del in flight completes (control FIFO, USB hotplug), or the
 * guest ejected a device by itself: the list stays honest either way. */
static void
session_on_device_deleted(struct session *s, const json_t *data)
{
	if (devices_deleted(&s->devs, data))
		session_status(s);
}

/* By name; every other event is only logged. */
static const struct session_event_handler {
	const char *name;
	void (*handler)(struct session *s, const json_t *data);
} session_event_handlers[] = {
	{ "DEVICE_DELETED", session_on_device_deleted },
	{ "SHUTDOWN", session_on_shutdown },
};

static void
session_event(struct qmp *qmp, const char *name, const json_t *data, double ts, void *arg)
{
	for (size_t i = 0; i < nitems(session_event_handlers); i++) {
		if (strcmp(name, session_event_handlers[i].name) == 0) {
			session_event_handlers[i].handler(arg, data);
			return;
		}
	}
	log_debug("QMP event %s", name);
}

/* Test hook: VFIO_TEST_GREETING_TIMEOUT_S shortens the wait for the greeting
 * so a QEMU that never answers can be tested in seconds. */
static int
session_greeting_timeout_s(void)
{
	const char *t = vfioenv_get("VFIO_TEST_GREETING_TIMEOUT_S");
	int v = t ? atoi(t) : 0;
	return v > 0 ? v : SESSION_GREETING_TIMEOUT_S;
}

/* An adopted guest is left as it was found, running: this supervisor
 * could not take it over, and the next one may. */
static void
session_give_up_adopting(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
session_give_up_adopting(struct session *s, const char *fmt, ...)
{
	if (s->failure == NULL) {
		va_list ap;
		va_start(ap, fmt);
		s->failure = xvasprintf(fmt, ap);
		va_end(ap);
	}
	log_error("%s; the guest keeps running, untouched: run this again to adopt it, or `vfio -restore %s` "
	    "to stop it and put the host back", s->failure, s->name);
	s->detached = true;
	event_base_loopbreak(s->base);
}

static void
session_greeting_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct session *s = arg;
	if (s->state == SESSION_STARTING)
		session_fail(s, "QEMU did not answer on its monitor within %d s; it may be stuck "
		    "(its messages above may say why)", session_greeting_timeout_s());
	else if (s->state == SESSION_ADOPTING)
		session_give_up_adopting(s, "QEMU (pid %d) did not answer on its monitor within %d s",
		    (int)s->qemu_pid, session_greeting_timeout_s());
}

static void session_adopt_read_back(struct session *s);

static void
session_ready(struct qmp *qmp, void *arg)
{
	struct session *s = arg;
	if (s->greeting_timer != NULL)
		evtimer_del(s->greeting_timer);
	if (s->state == SESSION_ADOPTING) {
		session_adopt_read_back(s);
		return;
	}
	if (s->state != SESSION_STARTING)
		return;
	session_set_state(s, SESSION_ATTACHING);
	session_send_next(s);
}

static void
session_closed(struct qmp *qmp, const char *why, void *arg)
{
	struct session *s = arg;
	s->qmp_closed = true;
	log_debug("QMP connection closed: %s", why);
	if (s->qemu_gone)
		return;
	if (s->state == SESSION_ADOPTING) {
		session_give_up_adopting(s, "QEMU's monitor closed while the guest was being adopted (%s)", why);
		return;
	}
	/* What QEMU sent cannot be trusted to go on with: that is the cause,
	 * not how QEMU ends after it. */
	if (qmp_closed_on_protocol_error(qmp)) {
		session_fail(s, "QEMU's monitor sent what vfio cannot accept (%s); stopping QEMU", why);
		return;
	}
	/* A QEMU without its monitor is on its way out, or must be: its exit
	 * status says why (session_child), or, when it has to be killed, the
	 * monitor does. */
	free(s->monitor_lost);
	s->monitor_lost = xstrdup(why);
	session_arm(s, &s->kill_timer, SESSION_KILL_TIMEOUT_S, session_kill_timeout);
}

static void
session_stray_error(struct qmp *qmp, const struct qmp_error *err, void *arg)
{
	log_warnx("QEMU reported an error on its monitor: %s", err->desc);
}

static void
session_usb_changed(void *arg)
{
	session_status(arg);
}

/* USB devices plugged and unplugged from now on follow -usb; unplugged
 * devices the control FIFO attached are removed too. */
static void
session_usb_start(struct session *s)
{
	struct usbwatch_env env = {
		.base = s->base, .qmp = s->qmp, .devs = &s->devs, .journal = &s->j,
		.uid = s->user.drop ? (int)s->user.uid : -1, .gid = s->user.drop ? (int)s->user.gid : -1,
		.re = s->opts->usb_re_set ? &s->opts->usb_re : NULL, .plan = s->plan,
		.changed = session_usb_changed, .arg = s, .guest = s->name,
	};
	s->usb = usbwatch_new(&env);
	struct verr err = { 0 };
	if (usbwatch_start(s->usb, &err) < 0) {
		if (s->opts->usb_re_set)
			log_warnx("%s", err.msg);
		else
			log_debug("%s", err.msg);
	}
	/* An adopted guest: USB devices came and went while nobody watched;
	 * those `usb add` attached and that left go too (with -usb, start
	 * resynced already). */
	if (s->adopted && !s->opts->usb_re_set)
		usbwatch_resync(s->usb);
}

/* The user's viewers (plan->viewers, companion-start changes) need QEMU's
 * SPICE socket, which exists once QEMU took `cont`: journaled like every
 * change, so teardown and -restore stop them. A viewer that cannot start is
 * a warning: the guest runs without it. */
static void
session_start_viewers(struct session *s)
{
	struct journal_apply_opts o = { .bindtimeout_ms = s->opts->bindtimeout_s * 1000 };
	size_t i;
	json_t *c;
	json_array_foreach(s->plan->viewers, i, c) {
		struct verr err = { 0 };
		size_t idx;
		if (journal_apply(&s->j, c, &o, &idx, &err) < 0)
			log_warnx("the viewer %s did not start: %s", change_str(c, "target"), err.msg);
		else
			log_info("host: %s %s", change_str(c, "action"), change_str(c, "target"));
	}
	session_status(s);
}

/* The guest runs, started or adopted: tell the service manager (vfio@.service
 * is Type=notify: it counts as started only now), and serve USB hotplug. */
static void
session_running(struct session *s)
{
	session_set_state(s, SESSION_RUNNING);
	struct verr nerr = { 0 };
	if (notify_sendf(&nerr, "READY=1\nSTATUS=guest %s running (QEMU pid %d)%s", s->name, (int)s->qemu_pid,
	    s->adopted ? ", adopted" : "") < 0)
		log_warnx("telling the service manager the guest runs: %s", nerr.msg);
	if (!s->adopted)
		session_start_viewers(s);
	session_usb_start(s);
	if (s->powerdown_when_adopted)
		session_powerdown(s, "a signal while adopting");
}

static void
session_cont_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (s->state != SESSION_PINNING || session_qmp_lost(err))
		return;
	if (err != NULL) {
		session_fail(s, "QEMU refused to start the guest (cont): %s", err->desc);
		return;
	}
	s->guest_ran = true;
	/* From here a supervisor that dies leaves a guest to adopt. */
	struct verr jerr = { 0 };
	if (journal_record_started(&s->j, &jerr) < 0)
		log_warnx("%s; if this supervisor dies, the guest cannot be adopted", jerr.msg);
	log_info("the guest \"%s\" is running (QEMU pid %d)", s->name, (int)s->qemu_pid);
	session_running(s);
}

/* vCPU i runs on the i-th -pinvcpus CPU, at SCHED_FIFO priority 20 as the
 * original's `chrt -f 20`; a refused FIFO priority is a warning. Then every
 * other QEMU thread (main loop, I/O, workers) goes to the host CPUs left over,
 * so it stops stealing time from the vCPUs' cores (also a warning when it
 * cannot, e.g. -pinvcpus took every CPU). */
static int
session_pin(struct session *s, const json_t *cpus)
{
	bool warned = false;
	size_t i, n_tids = 0;
	json_t *c;
	pid_t *tids = xcalloc(json_array_size(cpus) + 1, sizeof(*tids));
	struct verr err = { 0 };
	json_array_foreach(cpus, i, c) {
		json_int_t idx = json_integer_value(json_object_get(c, "cpu-index"));
		json_t *tidv = json_object_get(c, "thread-id");
		if (!json_is_integer(tidv) || idx < 0) {
			session_fail(s, "query-cpus-fast gave no thread id for vCPU %d", (int)idx);
			free(tids);
			return -1;
		}
		pid_t tid = (pid_t)json_integer_value(tidv);
		tids[n_tids++] = tid;
		if ((size_t)idx >= s->opts->n_pinvcpus) {
			log_warnx("vCPU %d has no host CPU in -pinvcpus: it is not pinned", (int)idx);
			continue;
		}
		int cpu = s->opts->pinvcpus[idx];
		if (threads_pin_fifo(tid, cpu, 0, &err) < 0) {
			session_fail(s, "vCPU %d: %s; check -pinvcpus against the host's online CPUs", (int)idx,
			    err.msg);
			free(tids);
			return -1;
		}
		if (threads_pin_fifo(tid, cpu, SESSION_FIFO_PRIORITY, &err) < 0 && !warned) {
			log_warnx("the vCPU threads run at normal priority: %s", err.msg);
			warned = true;
		}
		log_info("vCPU %d (thread %d) pinned to host CPU %d", (int)idx, (int)tid, cpu);
	}
	if (threads_pin_emulator(s->qemu_pid, tids, n_tids, s->opts->pinvcpus, s->opts->n_pinvcpus, &err) < 0)
		log_warnx("QEMU's other threads are not kept off the vCPUs' CPUs: %s", err.msg);
	else
		log_info("QEMU's other threads pinned to the host CPUs not given to vCPUs");
	free(tids);
	return 0;
}

static void
session_cpus_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (s->state != SESSION_PINNING || session_qmp_lost(err))
		return;
	if (err != NULL) {
		session_fail(s, "QEMU did not list its vCPU threads (query-cpus-fast): %s", err->desc);
		return;
	}
	if (!json_is_array(ret)) {
		session_fail(s, "QEMU's query-cpus-fast answer is not a list");
		return;
	}
	if (session_pin(s, ret) < 0)
		return;
	qmp_send(s->qmp, "cont", NULL, -1, SESSION_CMD_TIMEOUT_MS, session_cont_reply, s);
}

static void
session_start_guest(struct session *s)
{
	session_set_state(s, SESSION_PINNING);
	if (s->opts->n_pinvcpus > 0)
		qmp_send(s->qmp, "query-cpus-fast", NULL, -1, SESSION_CMD_TIMEOUT_MS, session_cpus_reply, s);
	else
		qmp_send(s->qmp, "cont", NULL, -1, SESSION_CMD_TIMEOUT_MS, session_cont_reply, s);
}

/* The "fd" annotation on a plan command (plan.h): open what QEMU cannot
 * open itself (it may run as the invoking user). */
static int
session_open_fd(const json_t *spec, struct verr *err)
{
	const char *what = json_string_value(json_object_get(spec, "open"));
	int fd = -1, r;
	if (what != NULL && strcmp(what, "vhost-net") == 0) {
		r = net_vhost_open(&fd, err);
	} else if (what != NULL && strcmp(what, "tap") == 0) {
		const char *name = json_string_value(json_object_get(spec, "name"));
		if (name == NULL)
			return verr_set(err, -EINVAL, "the plan asks for a tap file descriptor without "
			    "naming the tap");
		r = net_tap_open(name, &fd, err);
	} else {
		return verr_set(err, -EINVAL, "the plan asks for a file descriptor of an unknown kind \"%s\"",
		    what ? what : "");
	}
	return r < 0 ? r : fd;
}

static void
session_cmd_reply(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (s->cmd_fd >= 0) {
		close(s->cmd_fd);
		s->cmd_fd = -1;
	}
	if (s->state != SESSION_ATTACHING || session_qmp_lost(err))
		return;
	const json_t *cmd = json_array_get(s->plan->qmp, s->next_cmd);
	const char *exec = json_string_value(json_object_get(cmd, "execute"));
	const json_t *args = json_object_get(cmd, "arguments");
	const char *id = json_string_value(json_object_get(args, "id"));
	if (err != NULL) {
		session_fail(s, "QEMU refused %s%s%s: %s", exec, id ? " " : "", id ? id : "", err->desc);
		return;
	}
	if (strcmp(exec, "device_add") == 0) {
		devices_attached(&s->devs, args);
		log_info("attached %s (%s)", id ? id : "a device",
		    json_string_value(json_object_get(args, "driver")) ?: "?");
		session_status(s);
	}
	s->next_cmd++;
	session_send_next(s);
}

static void
session_send_next(struct session *s)
{
	if (s->next_cmd >= json_array_size(s->plan->qmp)) {
		session_start_guest(s);
		return;
	}
	const json_t *cmd = json_array_get(s->plan->qmp, s->next_cmd);
	const char *exec = json_string_value(json_object_get(cmd, "execute"));
	if (exec == NULL) {
		session_fail(s, "the plan's QMP command %zu has no \"execute\"", s->next_cmd + 1);
		return;
	}
	const json_t *args = json_object_get(cmd, "arguments");
	const json_t *fdspec = json_object_get(cmd, "fd");
	if (fdspec != NULL) {
		struct verr err = { 0 };
		int fd = session_open_fd(fdspec, &err);
		if (fd < 0) {
			session_fail(s, "%s", err.msg);
			return;
		}
		s->cmd_fd = fd;
	}
	log_debug("QMP: %s", exec);
	struct verr err = { 0 };
	if (strcmp(exec, "device_add") == 0 && args != NULL) {
		/* journaled first: a supervisor that adopts the guest reads it back */
		if (devices_add(&s->devs, s->qmp, args, SESSION_CMD_TIMEOUT_MS, session_cmd_reply, s, &err) < 0)
			session_fail(s, "cannot send device_add: %s", err.msg);
		return;
	}
	if (qmp_send(s->qmp, exec, args ? json_deep_copy(args) : NULL, s->cmd_fd,
	    SESSION_CMD_TIMEOUT_MS, session_cmd_reply, s) < 0)
		session_fail(s, "QEMU's monitor closed before %s could be sent", exec);
}

static const struct qmp_callbacks session_qmp_callbacks = {
	.ready = session_ready,
	.closed = session_closed,
	.stray_error = session_stray_error,
};

/* --- the host ------------------------------------------------------------ */

/* Each change through the journal: prepare, "begin" (fsync'd), apply (in a
 * child with its deadline when it may block, so a driver stuck in the kernel
 * cannot hang us), "done"; one after the other, from the loop, so a signal
 * stops the preparation at once (session_signal). A failure leaves the rest
 * to teardown. */
static void session_prepare_next(struct session *s);

static void
session_prepared(const struct journal_result *res, void *arg)
{
	struct session *s = arg;
	s->prep_job = NULL;
	const json_t *c = json_array_get(s->plan->host_changes, s->next_change);
	if (res->code < 0) {
		if (s->failure == NULL) {
			s->failure = xasprintf("cannot %s %s: %s", change_str(c, "action"), change_str(c, "target"),
			    res->err.msg);
			log_error("%s", s->failure);
		}
		event_base_loopbreak(s->base);
		return;
	}
	if (res->err.msg[0] != '\0')
		log_info("%s %s: %s", change_str(c, "action"), change_str(c, "target"), res->err.msg);
	log_info("host: %s %s", change_str(c, "action"), change_str(c, "target"));
	session_status(s);
	s->next_change++;
	session_prepare_next(s);
}

static void
session_prepare_next(struct session *s)
{
	if (s->failure != NULL) {
		event_base_loopbreak(s->base);
		return;
	}
	if (s->next_change >= json_array_size(s->plan->host_changes)) {
		if (session_check_nodes(s) == 0 && session_spawn(s) == 0)
			session_control_open(s);
		else
			event_base_loopbreak(s->base);
		return;
	}
	struct journal_apply_opts o = { .bindtimeout_ms = s->opts->bindtimeout_s * 1000 };
	struct verr err = { 0 };
	s->prep_job = journal_apply_start(&s->j, s->base, json_array_get(s->plan->host_changes, s->next_change), &o,
	    session_prepared, s, &err);
	if (s->prep_job == NULL) {
		const json_t *c = json_array_get(s->plan->host_changes, s->next_change);
		s->failure = xasprintf("cannot %s %s: %s", change_str(c, "action"), change_str(c, "target"), err.msg);
		log_error("%s", s->failure);
		event_base_loopbreak(s->base);
	}
}

static void
session_prepare_first(evutil_socket_t fd, short events, void *arg)
{
	session_prepare_next(arg);
}

/* As QEMU's user (asuser.h): can it read and write every node the plan
 * says QEMU opens? */
static int
session_nodes_open(void *arg, struct verr *err)
{
	const struct strv *nodes = arg;
	for (size_t i = 0; i < nodes->n; i++) {
		char path[PATH_MAX];
		if (host_path(path, sizeof(path), "%s", nodes->v[i]) == NULL)
			continue;
		if (access(path, R_OK | W_OK) < 0 && errno != ENOENT) {
			int e = errno;
			struct stat st;
			if (stat(path, &st) == 0)
				return verr_set(err, -e, "%s (owner %u:%u, mode %04o): %s", nodes->v[i], (unsigned)st.st_uid,
				    (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777), strerror(e));
			return verr_set(err, -e, "%s: %s", nodes->v[i], strerror(e));
		}
	}
	return 0;
}

/* After the host changes, before QEMU: a device node its user still
 * cannot open (changed since the plan looked, an ACL, a udev rule that
 * put it back) is named here, with the fix, instead of a QEMU that dies. */
static int
session_check_nodes(struct session *s)
{
	if (!s->user.drop || s->plan->qemu_nodes.n == 0)
		return 0;
	struct verr err = { 0 };
	int r = asuser_run(s->user.uid, s->user.gid, session_nodes_open, (void *)&s->plan->qemu_nodes, &err);
	if (r < 0) {
		s->failure = xasprintf("QEMU's user %s (uid %u) cannot open the device node %s; let it read and "
		    "write the node (chown %u, or a udev rule for it) or give -user NAME of a user who can, and run "
		    "again", s->user.name, (unsigned)s->user.uid, err.msg, (unsigned)s->user.uid);
		log_error("%s", s->failure);
	}
	return r;
}

/* QEMU's binary, before any host change: a missing one changes nothing. */
static int
session_find_qemu(struct session *s)
{
	struct verr err = { 0 };
	int r = spawn_binary(s->plan->argv.n > 0 ? s->plan->argv.v[0] : "qemu-system-x86_64", &s->qemu_path, &err);
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/* The guest's console on this terminal, when vfio runs on one; either
 * way QEMU logs it to console.log. */
static void
session_console(struct session *s)
{
	if (!s->console_tty)
		return;
	struct verr err = { 0 };
	s->console = console_relay_open(s->base, s->rd.path, STDIN_FILENO, STDOUT_FILENO, &err);
	if (s->console == NULL)
		log_warnx("%s; the guest's console is in %s/console.log", err.msg, s->rd.path);
}

/* Connect to QEMU's monitor socket and start the conversation. */
static int
session_connect(struct session *s, struct verr *err)
{
	int fd;
	int r = rundir_connect(s->rd.path, RUNDIR_QMP_SOCK, &fd, err);
	if (r < 0)
		return r;
	s->qmp = qmp_new(s->base, fd, &session_qmp_callbacks, s);
	qmp_subscribe(s->qmp, NULL, session_event, s);
	session_arm(s, &s->greeting_timer, session_greeting_timeout_s(), session_greeting_timeout);
	return 0;
}

static int
session_spawn(struct session *s)
{
	struct verr err = { 0 };
	int r;
	/* The console log, the monitor's and the console's sockets, made here
	 * and handed over: QEMU dropped to the user could not create them in the
	 * root-only directory, and they outlive this supervisor. */
	int qmp_fd = -1, con_fd = -1;
	char *path = rundir_file(&s->rd, "console.log");
	int log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		r = -errno;
		s->failure = xasprintf("cannot create the guest console log %s: %s", path, strerror(-r));
		free(path);
		return r;
	}
	free(path);
	if ((r = rundir_listen(&s->rd, RUNDIR_QMP_SOCK, &qmp_fd, &err)) < 0 ||
	    (r = rundir_listen(&s->rd, RUNDIR_CONSOLE_SOCK, &con_fd, &err)) < 0) {
		s->failure = xstrdup(err.msg);
		log_error("%s", err.msg);
		goto out;
	}
	/* Guest RAM is pinned for DMA: lift the memlock limit (unlimited as root,
	 * as the original's prlimit; else the most the hard limit allows). */
	struct spawn_req req = {
		.path = s->qemu_path,
		.argv = &s->plan->argv,
		.qmp_fd = qmp_fd,
		.user = &s->user,
		.console_fd = log_fd,
		.console_sock_fd = con_fd,
		.memlock = spawn_memlock_limit(s->plan->memory_mib),
	};
	r = spawn_qemu(&req, &s->qemu_pid, &err);
	if (r < 0) {
		s->failure = xstrdup(err.msg);
		log_error("%s", err.msg);
		goto out;
	}
	unsigned long long start = 0;
	if (proc_start_time(s->qemu_pid, &start) < 0)
		log_debug("QEMU (pid %d) exited before its start time could be read", (int)s->qemu_pid);
	int jr = journal_record_qemu(&s->j, s->qemu_pid, start, &err);
	if (jr < 0)
		log_error("%s", err.msg);
	session_set_state(s, SESSION_STARTING);
	/* QEMU listens already (the socket was listening when handed over):
	 * the connection waits in its backlog until QEMU accepts it. */
	if (session_connect(s, &err) < 0)
		session_fail(s, "%s", err.msg);
	else if (jr < 0)
		session_fail(s, "stopping: QEMU's pid could not be journaled");
	else
		session_console(s);
	r = 0;
out:
	close(log_fd);
	if (qmp_fd >= 0)
		close(qmp_fd);
	if (con_fd >= 0)
		close(con_fd);
	return r;
}

/* --- the control FIFO's view of the session ------------------------------ */

static bool
session_ctl_running(void *arg)
{
	struct session *s = arg;
	return s->state == SESSION_RUNNING && !s->qmp_closed;
}

static const char *
session_ctl_state(void *arg)
{
	return session_state_names[((struct session *)arg)->state];
}

static void
session_ctl_changed(void *arg)
{
	session_status(arg);
}

static void
session_ctl_powerdown(void *arg)
{
	session_powerdown(arg, "control FIFO");
}

static void
session_ctl_quit(void *arg)
{
	struct session *s = arg;
	log_info("control FIFO: quitting QEMU now");
	session_set_state(s, SESSION_STOPPING);
	session_quit_now(s);
}

static void
session_control_open(struct session *s)
{
	struct control_host h = {
		.base = s->base,
		.name = s->name,
		.rundir = s->rd.path,
		.qmp = &s->qmp,
		.devs = &s->devs,
		.journal = &s->j,
		.usb = &s->usb,
		.plan_qmp = s->plan->qmp,
		.bindtimeout_ms = s->opts->bindtimeout_s * 1000,
		.has_disk_image = s->plan->has_disk_image,
		.memory_mib = s->plan->memory_mib,
		.qemu_uid = s->user.drop ? (int)s->user.uid : -1,
		.qemu_gid = s->user.drop ? (int)s->user.gid : -1,
		.arg = s,
		.running = session_ctl_running,
		.state = session_ctl_state,
		.changed = session_ctl_changed,
		.powerdown = session_ctl_powerdown,
		.quit = session_ctl_quit,
	};
	struct verr err = { 0 };
	s->control = control_open(&h, &err);
	if (s->control == NULL)
		log_warnx("%s; the guest runs without it (vfioctl cannot reach it)", err.msg);
}

/* QEMU's user before the first change: vfio's own is created when the plan
 * says so (qemuuser.h: the one change no run gives back), and gets its
 * directory for sockets in the runtime directory. */
static int
session_qemu_user(struct session *s, struct verr *err)
{
	const struct plan_user *u = &s->plan->qemu_user;
	if (u->create && s->user.drop) {
		log_info("creating the system user %s (uid %d) for QEMU; it stays for later runs", u->name, u->uid);
		int r = qemuuser_create(u->uid, err);
		if (r < 0)
			return r;
	}
	return rundir_make_qemu_dir(&s->rd, s->user.drop ? (int)s->user.uid : -1,
	    s->user.drop ? (int)s->user.gid : -1, err);
}

/* Everything before the first change: a refusal here changes nothing. */
static int
session_validate(struct session *s)
{
	const struct plan *p = s->plan;
	for (size_t i = 0; i < p->errors.n; i++) {
		if (s->opts->force)
			log_warnx("%s (going ahead: -force)", p->errors.v[i]);
		else
			log_error("%s", p->errors.v[i]);
	}
	if (p->errors.n > 0 && !s->opts->force) {
		log_error("not starting the guest \"%s\": fix the problems above (or give -force to "
		    "go ahead anyway)", s->name);
		return -EINVAL;
	}
	if (p->qmp != NULL && !json_is_array(p->qmp)) {
		log_error("the plan's QMP commands are not a list");
		return -EINVAL;
	}
	size_t i;
	json_t *c;
	json_array_foreach(s->plan->host_changes, i, c) {
		const char *action = change_str(c, "action");
		if (change_find(action) == NULL) {
			log_error("the plan asks for a host change \"%s\" on %s that this build of vfio "
			    "cannot make or undo; nothing was changed", action, change_str(c, "target"));
			return -ENOSYS;
		}
	}
	return 0;
}

/* Stop everything that serves the guest: USB, QMP (its pending callbacks
 * run while their owners still exist), releases under way, the control
 * FIFO, the console relay. */
static void
session_stop_serving(struct session *s)
{
	usbwatch_free(s->usb);
	s->usb = NULL;
	release_free(s->release);
	s->release = NULL;
	s->devs.release = NULL;
	if (s->qmp != NULL) {
		qmp_free(s->qmp);
		s->qmp = NULL;
	}
	devices_free(&s->devs);
	control_close(s->control);
	s->control = NULL;
	console_relay_close(s->console);
	s->console = NULL;
	/* The idle bind child holds copies of the journal and the lock. */
	child_spare_drop();
	if (s->cmd_fd >= 0)
		close(s->cmd_fd);
	s->cmd_fd = -1;
}

/* Leave the guest running, for a later supervisor to adopt: nothing goes
 * back to the host, the journal and the sockets stay, the name's lock is
 * let go. */
static int
session_detach(struct session *s)
{
	session_stop_serving(s);
	session_status(s);
	journal_close(&s->j);
	if (s->failure == NULL)
		log_info("the guest \"%s\" keeps running (QEMU pid %d) for the next supervisor: `vfio -run` "
		    "with -name %s adopts it", s->name, (int)s->qemu_pid, s->name);
	return s->failure != NULL ? SESSION_EXIT_FAILED : SESSION_EXIT_OK;
}

static int
session_teardown(struct session *s)
{
	struct verr nerr = { 0 };
	if (notify_send("STOPPING=1\nSTATUS=stopping the guest and restoring the host", &nerr) < 0)
		log_warnx("telling the service manager the guest stops: %s", nerr.msg);
	session_stop_serving(s);
	s->state = SESSION_RESTORING;
	struct strv failed = { 0 };
	bool had_changes = s->j.n > 0;
	size_t n_failed = journal_undo_all(&s->j, s->opts->bindtimeout_s * 1000, &failed);
	int status;
	if (n_failed == 0) {
		journal_close(&s->j);
		struct verr err = { 0 };
		if (rundir_remove(&s->rd, &err) < 0)
			log_warnx("%s", err.msg);
		if (s->failure != NULL)
			status = SESSION_EXIT_FAILED;
		else if (!s->guest_ran)
			status = SESSION_EXIT_FAILED;
		else
			status = SESSION_EXIT_OK;
		if (!had_changes && status == SESSION_EXIT_OK)
			log_info("the guest \"%s\" is done", s->name);
		else if (status == SESSION_EXIT_OK)
			log_info("the guest \"%s\" is done; the host is restored", s->name);
		else
			log_error("the guest \"%s\" did not run as it should (%s); the host is restored",
			    s->name, s->failure ? s->failure : "it never started");
	} else {
		session_status(s);
		log_error("%zu host change%s could not be restored:", n_failed, n_failed == 1 ? "" : "s");
		for (size_t i = 0; i < failed.n; i++)
			fprintf(stderr, "  - %s\n", failed.v[i]);
		log_error("the journal stays in %s; `vfio -restore %s` retries", s->rd.path, s->name);
		journal_close(&s->j);
		status = SESSION_EXIT_UNRESTORED;
	}
	strv_free(&failed);
	return status;
}

static void
session_free(struct session *s)
{
	if (s->greeting_timer)
		event_free(s->greeting_timer);
	if (s->powerdown_timer)
		event_free(s->powerdown_timer);
	if (s->kill_timer)
		event_free(s->kill_timer);
	if (s->qemu_exit_ev)
		event_free(s->qemu_exit_ev);
	if (s->qemu_pidfd >= 0)
		close(s->qemu_pidfd);
	proc_signals_free(&s->sigs);
	release_free(s->release);
	devices_free(&s->devs);
	if (s->j.path != NULL)
		journal_close(&s->j);
	rundir_close(&s->rd);
	spawn_user_free(&s->user);
	if (s->adopted) {
		options_free(&s->adopted_opts);
		adopt_plan_free(&s->adopted_plan);
	}
	free(s->qemu_path);
	free(s->failure);
	free(s->monitor_lost);
	if (s->base)
		event_base_free(s->base);
}

/* --- adopting a running guest ------------------------------------------- */

/* A device the journal lists that QEMU no longer has: the guest let go of
 * it while nobody watched (or its device_add never reached QEMU). */
static void
session_adopt_released(const char *id, int result, const char *msg, void *arg)
{
	struct session *s = arg;
	if (result < 0)
		log_warnx("%s (it left the guest while no supervisor ran)", msg);
	else
		log_info("%s (it left the guest while no supervisor ran)", msg);
	session_status(s);
}

static bool
session_id_in(const json_t *ids, const char *id)
{
	return json_object_get(ids, id) != NULL;
}

/* qom-list /machine/peripheral: the devices QEMU has, by id. The journal
 * says which of them we attached (and with what); whatever the journal
 * lists that QEMU no longer has is given back now, and so is every host
 * change made for a device that is not there (a hot-add killed halfway). */
static void
session_adopt_devices(struct qmp *qmp, const json_t *ret, const struct qmp_error *err, void *arg)
{
	struct session *s = arg;
	if (s->state != SESSION_ADOPTING || session_qmp_lost(err))
		return;
	if (err != NULL || !json_is_array(ret)) {
		session_give_up_adopting(s, "QEMU did not list its devices (qom-list): %s",
		    err != NULL ? err->desc : "not a list");
		return;
	}
	json_t *present = devices_peripheral_ids(ret);
	json_t *gone = json_object();
	const char *id;
	json_t *rec;
	json_object_foreach(s->j.devices, id, rec) {
		json_t *args = json_object_get(rec, "args");
		if (session_id_in(present, id)) {
			devices_attached(&s->devs, args);
			if (json_is_true(json_object_get(rec, "del")))
				devices_mark_removing(&s->devs, id);
			log_info("adopted %s (%s)%s", id, json_string_value(json_object_get(args, "driver")) ?: "?",
			    json_is_true(json_object_get(rec, "del")) ? ", its removal pending" : "");
		} else {
			json_object_set(gone, id, args);
		}
	}
	/* Host changes for a device QEMU does not have and the journal has no
	 * record of: the supervisor died in the middle of adding it. */
	for (size_t k = 0; k < s->j.n; k++) {
		const struct journal_entry *e = &s->j.entries[k];
		if (e->state != JOURNAL_UNDONE && e->for_id != NULL && !session_id_in(present, e->for_id) &&
		    !session_id_in(gone, e->for_id))
			json_object_set_new(gone, e->for_id, json_object());
	}
	session_set_state(s, SESSION_RUNNING);
	session_control_open(s);
	json_object_foreach(gone, id, rec)
		devices_give_back(&s->devs, id, rec, session_adopt_released, s);
	json_decref(gone);
	json_decref(present);
	log_info("the guest \"%s\" is adopted (QEMU pid %d)", s->name, (int)s->qemu_pid);
	session_running(s);
}

static void
session_adopt_read_back(struct session *s)
{
	if (qmp_send(s->qmp, "qom-list", json_pack("{s:s}", "path", DEVICES_PERIPHERAL), -1,
	    SESSION_CMD_TIMEOUT_MS, session_adopt_devices, s) < 0)
		session_give_up_adopting(s, "QEMU's monitor closed while the guest was being adopted");
}

/* The guest a killed supervisor left running becomes ours: as it was
 * started (the run record), watched through a pidfd (not our child),
 * reached over its monitor socket. */
static int
session_adopt(struct session *s)
{
	struct verr err = { 0 };
	s->qemu_pid = s->j.qemu_pid;
	spawn_user_free(&s->user);    /* the running QEMU's user is the one it was started as */
	if (adopt_run_load(s->j.run, &s->adopted_opts, &s->adopted_plan, &s->user, &err) < 0) {
		log_error("%s; `vfio -restore %s` stops the guest and puts the host back", err.msg, s->name);
		return -EINVAL;
	}
	s->adopted = true;
	s->opts = &s->adopted_opts;
	s->plan = &s->adopted_plan;
	s->guest_ran = true;
	devices_init(&s->devs, s->plan->n_root_ports);
	s->devs.journal = &s->j;
	s->devs.release = release_device;
	s->devs.release_arg = s->release;
	s->qemu_pidfd = proc_pidfd(s->j.qemu_pid, s->j.qemu_start);
	if (s->qemu_pidfd < 0) {
		log_error("QEMU (pid %d) of the guest \"%s\" is gone after all; run this again", (int)s->qemu_pid,
		    s->name);
		return -ESRCH;
	}
	int fd;
	if (rundir_connect(s->rd.path, RUNDIR_QMP_SOCK, &fd, &err) < 0) {
		log_error("the guest \"%s\" runs (QEMU pid %d) but its monitor cannot be reached: %s; `vfio "
		    "-restore %s` stops it and puts the host back", s->name, (int)s->qemu_pid, err.msg, s->name);
		return -ENOTCONN;
	}
	if (journal_record_adopted(&s->j, getpid(), &err) < 0) {
		close(fd);
		log_error("%s", err.msg);
		return -EIO;
	}
	log_info("the guest \"%s\" runs without a supervisor (QEMU pid %d): adopting it", s->name, (int)s->qemu_pid);
	s->qemu_exit_ev = event_new(s->base, s->qemu_pidfd, EV_READ, session_adopted_exit, s);
	event_add(s->qemu_exit_ev, NULL);
	session_set_state(s, SESSION_ADOPTING);
	s->qmp = qmp_new(s->base, fd, &session_qmp_callbacks, s);
	qmp_subscribe(s->qmp, NULL, session_event, s);
	session_arm(s, &s->greeting_timer, session_greeting_timeout_s(), session_greeting_timeout);
	session_console(s);
	return 0;
}

/* The differences between the flags given now and the running guest's:
 * said, never dropped silently. */
static void
session_adopt_report(struct session *s, const struct options *now)
{
	struct strv diff = { 0 };
	adopt_differences(json_object_get(s->j.run, "flags"), &now->flags, &diff);
	if (diff.n > 0)
		log_warnx("the guest \"%s\" keeps the flags it was started with; these differ and apply at its "
		    "next start:", s->name);
	for (size_t i = 0; i < diff.n; i++)
		fprintf(stderr, "  %s\n", diff.v[i]);
	strv_free(&diff);
}

/* An earlier run left host changes in force and no guest to adopt: give
 * them back (stopping its QEMU, if it never let the guest run), and start
 * from a clean directory. Returns 0, or an exit status. */
static int
session_restore_first(struct session *s)
{
	if (s->j.n > 0 || s->j.qemu_pid > 0)
		log_info("an earlier run of the guest \"%s\" did not finish: giving back what it left on the host "
		    "first", s->name);
	struct strv failed = { 0 };
	struct verr err = { 0 };
	int n = restore_journal(&s->j, s->opts->bindtimeout_s * 1000, &failed, &err);
	journal_close(&s->j);
	if (n < 0)
		log_error("%s", err.msg);
	if (n > 0) {
		log_error("%d host change%s of the earlier run could not be restored:", n, n == 1 ? "" : "s");
		for (size_t i = 0; i < failed.n; i++)
			fprintf(stderr, "  - %s\n", failed.v[i]);
		log_error("nothing was started; `vfio -restore %s` retries", s->name);
	}
	strv_free(&failed);
	if (n != 0)
		return n < 0 ? SESSION_EXIT_REFUSED : SESSION_EXIT_UNRESTORED;
	rundir_clear(&s->rd);
	if (journal_open(&s->j, s->rd.path, &err) < 0) {
		log_error("%s", err.msg);
		return SESSION_EXIT_REFUSED;
	}
	return 0;
}

/* --- the run --------------------------------------------------------------- */

/* A fresh start: the host changes, QEMU, the plan's commands. */
static void
session_start(struct session *s)
{
	struct verr err = { 0 };
	json_t *run = adopt_run_record(s->opts, s->plan, &s->user);
	int r = journal_record_run(&s->j, run, &err);
	json_decref(run);
	if (r < 0) {
		s->failure = xstrdup(err.msg);
		log_error("%s", err.msg);
		return;
	}
	s->devs.journal = &s->j;
	s->devs.release = release_device;
	session_set_state(s, SESSION_PREPARING);
	/* The preparation runs in the loop (session_prepare_next), which goes
	 * on to start QEMU and serve it. */
	if (event_base_once(s->base, -1, EV_TIMEOUT, session_prepare_first, s, NULL) < 0)
		fatalx("cannot schedule the host's preparation");
	event_base_dispatch(s->base);
	journal_job_cancel(s->prep_job);
	s->prep_job = NULL;
}

/* QEMU must be gone before anything goes back to the host. */
static void
session_wait_qemu(struct session *s)
{
	if (s->qemu_pid <= 0 || s->qemu_gone)
		return;
	session_kill(s, SIGKILL);
	if (s->adopted) {
		struct pollfd pfd = { .fd = s->qemu_pidfd, .events = POLLIN };
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
	} else {
		int st;
		while (waitpid(s->qemu_pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	s->qemu_gone = true;
}

int
session_run(const struct options *opts, const struct plan *plan)
{
	struct session s = {
		.opts = opts,
		.plan = plan,
		.name = opts->name ? opts->name : "vfio",
		.console_tty = plan->console_tty,
		.cmd_fd = -1,
		.qemu_pidfd = -1,
	};
	s.j.fd = s.j.dirfd = -1;
	s.rd.lockfd = -1;
	devices_init(&s.devs, plan->n_root_ports);
	struct verr err = { 0 };
	int status = SESSION_EXIT_REFUSED;

	spawn_user_from_plan(&s.user, &plan->qemu_user);
	/* A guest to adopt runs as it was started: the plan's problems are
	 * its next start's. Anything else is refused here, changing nothing. */
	struct opt_running probe;
	adopt_probe(s.name, &probe);
	bool adopting = probe.how == OPT_RUN_ADOPT;
	json_decref(probe.flags);
	free(probe.why);
	if (!adopting && session_validate(&s) < 0)
		goto out;
	if (rundir_create(&s.rd, s.name, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}
	if (journal_open(&s.j, s.rd.path, &err) < 0) {
		log_error("%s; `vfio -restore %s` after fixing it, or remove %s", err.msg, s.name, s.rd.path);
		goto out;
	}
	char *why = NULL;
	enum opt_running_how how = adopt_decide(&s.j, &why);
	if (how == OPT_RUN_UNREACHABLE) {
		log_error("the guest \"%s\" is still running: %s; `vfio -restore %s` stops it and puts the host "
		    "back, then start it again", s.name, why, s.name);
		free(why);
		goto out;
	}
	free(why);
	if (how != OPT_RUN_ADOPT && adopting && session_validate(&s) < 0)
		goto out;    /* it ended meanwhile: a start after all */
	s.base = event_base_new();
	if (s.base == NULL)
		fatalx("cannot create the event loop");
	/* Before the fork, so QEMU's exit cannot be missed. */
	proc_signals_add(&s.sigs, s.base, session_signal, &s);
	s.release = release_new(&(struct release_env){ .base = s.base, .qmp = &s.qmp, .journal = &s.j,
	    .bindtimeout_ms = opts->bindtimeout_s * 1000, .changed = session_usb_changed, .arg = &s });
	s.devs.release_arg = s.release;

	if (how == OPT_RUN_ADOPT) {
		if (session_adopt(&s) < 0)
			goto out;
		session_adopt_report(&s, opts);
		event_base_dispatch(s.base);
	} else {
		if (how == OPT_RUN_RESTORE_FIRST && (status = session_restore_first(&s)) != 0)
			goto out;
		if (how == OPT_RUN_FRESH) {
			journal_close(&s.j);
			rundir_clear(&s.rd);
			if (journal_open(&s.j, s.rd.path, &err) < 0) {
				log_error("%s", err.msg);
				status = SESSION_EXIT_REFUSED;
				goto out;
			}
		}
		/* Before the first change: a missing QEMU or a user that cannot
		 * be made changes nothing. */
		if (session_find_qemu(&s) < 0 || session_qemu_user(&s, &err) < 0) {
			if (err.msg[0] != '\0')
				log_error("%s", err.msg);
			journal_close(&s.j);
			rundir_remove(&s.rd, NULL);
			status = SESSION_EXIT_REFUSED;
			goto out;
		}
		session_start(&s);
	}

	if (s.detached) {
		status = session_detach(&s);
		goto out;
	}
	session_wait_qemu(&s);
	status = session_teardown(&s);
out:
	session_free(&s);
	return status;
}
