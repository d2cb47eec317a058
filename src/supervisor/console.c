/* Relaying the guest's serial console to the supervisor's terminal: see
 * console.h. */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "rundir.h"
#include "util.h"

/* What one side may hold for the other before that side stops being read. */
#define CONSOLE_BACKLOG (64 * 1024)

struct console {
	struct bufferevent *sock;    /* QEMU's console */
	struct bufferevent *in;      /* the terminal, reopened: a non-blocking file description of ours */
	struct bufferevent *out;     /* stdout, reopened likewise (the same terminal, usually) */
	int tty_fd;                  /* the terminal whose settings were changed, -1 when none */
	struct termios saved;
};

static void
console_stop(struct console *c)
{
	if (c->sock != NULL)
		bufferevent_free(c->sock);
	if (c->in != NULL)
		bufferevent_free(c->in);
	if (c->out != NULL)
		bufferevent_free(c->out);
	c->sock = c->in = c->out = NULL;
	if (c->tty_fd >= 0) {
		tcsetattr(c->tty_fd, TCSANOW, &c->saved);
		c->tty_fd = -1;
	}
}

/* from -> to, holding back from while to has a backlog */
static void
console_pass(struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *out = bufferevent_get_output(to);
	evbuffer_add_buffer(out, bufferevent_get_input(from));
	if (evbuffer_get_length(out) > CONSOLE_BACKLOG)
		bufferevent_disable(from, EV_READ);
}

static void
console_sock_read(struct bufferevent *bev, void *arg)
{
	struct console *c = arg;
	console_pass(c->sock, c->out);
}

static void
console_tty_read(struct bufferevent *bev, void *arg)
{
	struct console *c = arg;
	console_pass(c->in, c->sock);
}

/* A side's backlog went out: read the other side again. */
static void
console_sock_drained(struct bufferevent *bev, void *arg)
{
	struct console *c = arg;
	if (c->in != NULL)
		bufferevent_enable(c->in, EV_READ);
}

static void
console_tty_drained(struct bufferevent *bev, void *arg)
{
	struct console *c = arg;
	if (c->sock != NULL)
		bufferevent_enable(c->sock, EV_READ);
}

static void
console_sock_event(struct bufferevent *bev, short what, void *arg)
{
	struct console *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* QEMU closed its console: it is on its way out. */
		log_debug("the guest's console closed");
		console_stop(c);
	}
}

static void
console_tty_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* The terminal hung up (its SIGHUP tells the supervisor what to
		 * do); the guest's console stays in console.log. */
		log_debug("the terminal went away: the guest's console is no longer relayed");
		bufferevent_disable(bev, EV_READ | EV_WRITE);
	}
}

/* Raw input (every key goes to the guest as typed, no echo: the guest
 * echoes), but ^C and ^\ stay signals and output keeps its newline
 * translation, so the supervisor's own messages still read well. */
static int
console_raw(struct console *c, int fd, struct verr *err)
{
	if (tcgetattr(fd, &c->saved) < 0)
		return verr_set(err, -errno, "cannot read the terminal's settings: %s", strerror(errno));
	struct termios t = c->saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
	t.c_lflag |= ISIG;
	t.c_oflag |= OPOST;
	t.c_cflag &= ~(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return verr_set(err, -errno, "cannot put the terminal in raw mode: %s", strerror(errno));
	c->tty_fd = fd;
	return 0;
}

/* A file description of our own for fd: O_NONBLOCK on the one stdin and
 * stdout share with the shell (and stderr) would leak to them. A socket
 * cannot be reopened: it gets a duplicate (the caller's output; a socket
 * never blocks long). */
static int
console_reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = open(path, flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	return r >= 0 || flags == O_RDONLY ? r : fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

static struct bufferevent *
console_bev(struct event_base *base, int fd)
{
	struct bufferevent *b = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (b == NULL)
		fatalx("cannot set up the console relay");
	return b;
}

struct console *
console_relay_open(struct event_base *base, const char *dir, int in_fd, int out_fd, struct verr *err)
{
	struct console *c = xcalloc(1, sizeof(*c));
	c->tty_fd = -1;
	int sock = -1, in = -1, out = -1;
	if (rundir_connect(dir, RUNDIR_CONSOLE_SOCK, &sock, err) < 0)
		goto fail;
	if ((in = console_reopen(in_fd, O_RDONLY)) < 0 || !isatty(in)) {
		verr_set(err, -ENOTTY, "cannot open the terminal for the guest's console: %s",
		    in < 0 ? strerror(errno) : "stdin is not a terminal");
		goto fail;
	}
	if ((out = console_reopen(out_fd, O_WRONLY)) < 0) {
		verr_set(err, -errno, "cannot open stdout for the guest's console: %s", strerror(errno));
		goto fail;
	}
	if (console_raw(c, in, err) < 0)
		goto fail;
	c->sock = console_bev(base, sock);
	c->in = console_bev(base, in);
	c->out = console_bev(base, out);
	sock = in = out = -1;
	bufferevent_setcb(c->sock, console_sock_read, console_sock_drained, console_sock_event, c);
	bufferevent_setcb(c->in, console_tty_read, NULL, console_tty_event, c);
	bufferevent_setcb(c->out, NULL, console_tty_drained, console_tty_event, c);
	bufferevent_enable(c->sock, EV_READ | EV_WRITE);
	bufferevent_enable(c->in, EV_READ);
	bufferevent_enable(c->out, EV_WRITE);
	return c;
fail:
	if (sock >= 0)
		close(sock);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	console_stop(c);
	free(c);
	return NULL;
}

void
console_relay_close(struct console *c)
{
	if (c == NULL)
		return;
	console_stop(c);
	free(c);
}
