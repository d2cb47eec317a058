/* qemu-mock: a stand-in for qemu-system-x86_64 that speaks QMP like QEMU 7.2
 * and follows a scenario file. Shared state between its files. */
#ifndef QEMU_MOCK_H
#define QEMU_MOCK_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct mock_fd {
	int fd;
	uint64_t off;            /* stream offset of the first byte it came with */
};

struct mock {
	struct event_base *base;
	int sock;                /* the QMP connection, -1 when closed */
	int listen_sock;         /* -qmp unix:PATH,server=on */
	struct event *rd, *accept_ev, *resume_ev, *sigterm_ev, *sigint_ev, *orphan_ev;
	unsigned conn_gen;       /* the current client (replies meant for an earlier one are dropped) */
	unsigned connections;    /* clients so far: "start" runs for the first only */

	/* input from the client */
	char *in;
	size_t inlen, incap;
	uint64_t in_off;         /* stream offset of in[0] */
	struct mock_fd *fds;
	size_t nfds;

	bool greeted, negotiated;
	bool busy;               /* a command's reply is still being produced */
	bool hung;               /* never answer again */
	bool no_shutdown;        /* -no-shutdown */
	const char *status;      /* prelaunch, running, paused, shutdown */

	json_t *scenario;        /* never NULL (empty object) */
	json_t *counts;          /* command name -> times received */
	FILE *record;

	json_t *devices;         /* id -> {"driver", "bus", "unplugging"} */
	json_t *buses;           /* bus name -> true */
	json_t *netdevs;         /* id -> arguments */
	json_t *fdnames;         /* getfd name -> fd number */
	json_t *fdsets;          /* fdset id (string) -> [fd, ...] */
	int next_fdset;
	json_t *pending_unplug;  /* ids the guest will act on once running */
	bool pending_powerdown;

	int ncpus;
	pid_t *tids;

	/* guest behaviour from the scenario's "guest" object */
	bool ignore_powerdown, ignore_unplug;
	int unplug_delay_ms, powerdown_delay_ms;
};

extern struct mock mock;

/* mock-conn.c */
void mock_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void mock_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mock_start(void);                         /* run "start", then greet */
void mock_write_raw(const char *buf, size_t len);
void mock_emit_event(const char *name, json_t *data); /* data stolen, may be NULL */
/* Run a list of scenario actions (borrowed) in order, honouring delays. */
void mock_run_actions(json_t *actions);
void mock_run_action(json_t *action);          /* stolen: one action */
void mock_connect(int sock);
void mock_scenario_check(void);                /* die on a scenario typo */
void mock_exit(int status) __attribute__((noreturn));

/* mock-cmds.c: what one command does by default. Returns the reply object
 * ({"return": ...} or {"error": ...}); events that QEMU emits before its
 * reply go to *pre, actions after it to *post (both arrays). fd (the one
 * passed with the command, or -1) is the callee's to keep or close. */
json_t *mock_cmd_default(const char *name, json_t *args, int fd,
    json_t *pre, json_t *post);
json_t *mock_error(const char *class, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mock_guest_resumed(void);                 /* the guest runs: act on pending requests */
void mock_track_device(const char *driver, const char *id, const char *bus);
void mock_unplug_now(const char *id);          /* DEVICE_DELETED (child path first for virtio) */
void mock_guest_shutdown(void);                /* the guest powers off */

/* mock-main.c */
const char *mock_vm_name(void);                /* from -name, or NULL */

#endif
