/* Internals shared by control.c (the FIFO, replies, requests) and
 * control-cmds.c (the command table and handlers); tests use them too. */
#ifndef VFIO_CONTROL_PRIV_H
#define VFIO_CONTROL_PRIV_H

#include <sys/types.h>

#include "control.h"

struct journal_job;

/* One command from the FIFO, alive until it has its reply. */
struct control_req {
	struct control *c;
	struct control_req *next;        /* the pending list */
	char *tag;                       /* NULL: untagged */
	char *line;                      /* the words joined, for the log */
	const struct control_cmd_entry *entry;
	char **argv;                     /* arguments after the command name */
	int argc;
	bool force;                      /* "force" was the last word */

	/* what a long command is doing */
	struct journal_job *job;         /* a host change (a bind, its undo) under way */
	char *id, *netdev, *port, *addr, *fdname;
	json_t *change;                  /* {"device_add": ARGS} */
	char *why;                       /* an add failed: why (given back before the reply) */
	int fd;
};

/* One command, as tmux's cmd_entry: the table drives lookup, the argument
 * checks, "force", the guest check and help. */
struct control_cmd_entry {
	struct control_cmd_info info;
	int min_args, max_args;          /* arguments after the name, "force" not counted */
	void (*exec)(struct control_req *req);
};

struct control {
	struct control_host h;
	int fd, replies_fd;
	char *fifo_path, *replies_path;
	off_t replies_len;               /* bytes in the current replies file */
	struct event *ev, *partial_timer;
	char buf[CONTROL_LINE_MAX + 2];
	size_t len;
	bool overflow;                   /* the current line passed CONTROL_LINE_MAX */
	size_t overflow_len;
	struct control_req *pending;
	struct strv reserved_ports;      /* root ports of adds in flight */
	struct strv lost;                /* ids (devices, netdevs) and root ports QEMU may still make:
	                                  * it never answered for them; never reused this run */
	unsigned next_fd;                /* getfd names */
};

extern const struct control_cmd_entry control_cmd_table[];
extern const size_t control_cmd_count;

/* Find the entry for words (one or two of them); *used gets how many words
 * the name took. NULL with err set when there is none. */
const struct control_cmd_entry *control_cmd_find(char **words, size_t n, size_t *used,
    struct verr *err);
/* The reply, one line to the replies file and the log; frees req. */
void control_reply(struct control_req *req, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "pending": accepted, not done yet (a removal the guest has not acked). */
void control_reply_pending(struct control_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A reply for a line that never became a request (bad input). */
void control_reply_bad(struct control *c, const char *tag, const char *msg);

/* The session's QMP connection when it can take commands, else NULL. */
struct qmp *control_qmp(struct control *c);

#endif
