/* qemu-mock's monitor connection: reading commands (with the fds that came
 * as SCM_RIGHTS on their bytes), recording them, applying the scenario's
 * rules, and running action lists (events, raw bytes, delays, faults). */
#include "mock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

void
mock_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "qemu-mock: error: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (mock.record != NULL)
		fflush(mock.record);
	_exit(2);
}

void
mock_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "qemu-mock: warning: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

void
mock_exit(int status)
{
	if (mock.record != NULL)
		fclose(mock.record);
	mock.record = NULL;
	fflush(stdout);
	fflush(stderr);
	_exit(status);
}

static void
orphan_exit(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "qemu-mock: nobody reconnected or killed me within the scenario's orphan_exit_ms; exiting\n");
	mock_exit(0);
}

/* A monitor that listens (server=on) serves the next client. */
static void
orphan_forgiven(void)
{
	if (mock.orphan_ev != NULL)
		evtimer_del(mock.orphan_ev);
}

static void
mock_disconnected(const char *why)
{
	if (mock.sock >= 0) {
		event_del(mock.rd);
		close(mock.sock);
		mock.sock = -1;
	}
	/* A listening monitor takes the next client now. */
	if (mock.accept_ev != NULL)
		event_add(mock.accept_ev, NULL);
	if (json_is_true(json_object_get(mock.scenario, "exit_on_disconnect"))) {
		fprintf(stderr, "qemu-mock: %s; exiting (exit_on_disconnect)\n", why);
		mock_exit(0);
	}
	/* Real QEMU keeps running when its monitor client goes away; so do
	 * we, but not forever: a test that forgot us must not leave us behind. */
	fprintf(stderr, "qemu-mock: %s; still running, as QEMU would\n", why);
	json_t *v = json_object_get(mock.scenario, "orphan_exit_ms");
	json_int_t ms = json_is_integer(v) ? json_integer_value(v) : 60000;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	if (mock.orphan_ev == NULL)
		mock.orphan_ev = evtimer_new(mock.base, orphan_exit, NULL);
	evtimer_add(mock.orphan_ev, &tv);
}

void
mock_write_raw(const char *buf, size_t len)
{
	if (mock.sock < 0)
		return;
	/* Blocking writes: the fake has nothing else to do meanwhile, and
	 * a reader that stops reading is a test failure anyway. */
	while (len > 0) {
		ssize_t n = write(mock.sock, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			fd_set w;
			FD_ZERO(&w);
			FD_SET(mock.sock, &w);
			select(mock.sock + 1, NULL, &w, NULL, NULL);
			continue;
		}
		if (n <= 0) {
			mock_disconnected("the client closed the QMP connection");
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
mock_write_json(json_t *msg)
{
	/* QEMU's own layout: ", " and ": " separators, "\r\n" at the end. */
	char *s = json_dumps(msg, JSON_ENCODE_ANY);
	if (s == NULL)
		mock_die("cannot serialise a reply");
	size_t n = strlen(s);
	char *line = malloc(n + 3);
	memcpy(line, s, n);
	memcpy(line + n, "\r\n", 3);
	mock_write_raw(line, n + 2);
	free(line);
	free(s);
}

static json_t *
mock_event_json(const char *name, json_t *data)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	json_t *ev = json_object();
	json_object_set_new(ev, "timestamp", json_pack("{s:I, s:I}", "seconds", (json_int_t)tv.tv_sec,
	    "microseconds", (json_int_t)tv.tv_usec));
	json_object_set_new(ev, "event", json_string(name));
	if (data != NULL)
		json_object_set_new(ev, "data", data);
	return ev;
}

void
mock_emit_event(const char *name, json_t *data)
{
	json_t *ev = mock_event_json(name, data);
	mock_write_json(ev);
	json_decref(ev);
}

/* ---- action lists ---- */

struct prog {
	json_t *actions; /* array, owned */
	size_t i;
	bool waited;
	struct event *timer;
	unsigned gen;    /* the connection it answers: replies never reach a later client */
};

static void prog_step(struct prog *p);

static void
prog_timer(evutil_socket_t fd, short what, void *arg)
{
	prog_step(arg);
}

static void process_input(void);

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	process_input();
}

static int
signal_by_name(json_t *v)
{
	if (json_is_integer(v))
		return (int)json_integer_value(v);
	static const struct { const char *name; int sig; } sigs[] = {
		{ "SIGSEGV", SIGSEGV }, { "SIGKILL", SIGKILL }, { "SIGABRT", SIGABRT },
		{ "SIGTERM", SIGTERM }, { "SIGBUS", SIGBUS }, { "SIGINT", SIGINT },
	};
	const char *s = json_string_value(v);
	for (size_t i = 0; s != NULL && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(s, sigs[i].name) == 0 || strcmp(s, sigs[i].name + 3) == 0)
			return sigs[i].sig;
	mock_die("scenario: unknown signal in action");
}

static void
do_signal(int sig)
{
	/* Die the way QEMU would, without leaving a core file behind. */
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
	if (mock.record != NULL)
		fflush(mock.record);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	mock_die("signal %d did not kill the mock", sig);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void mock_greet(void);

/* Returns false when the rest of the list must not run (hang). Replies
 * and raw bytes go to the connection gen only: QEMU drops what was meant
 * for a client that left; events go to whoever is connected. */
static bool
do_action(json_t *a, unsigned gen)
{
	json_t *v;
	bool mine = gen == mock.conn_gen;
	if (!mine && (json_object_get(a, "_reply") != NULL || json_object_get(a, "raw") != NULL ||
	    json_object_get(a, "raw_hex") != NULL || json_object_get(a, "close") != NULL ||
	    json_object_get(a, "_greet") != NULL)) {
		/* for a client that is gone */
	} else if (!mine && json_object_get(a, "_done") != NULL) {
		/* the new client's commands are not held up by the old one's */
	} else if ((v = json_object_get(a, "event")) != NULL) {
		json_t *data = json_object_get(a, "data");
		mock_emit_event(json_string_value(v), data ? json_deep_copy(data) : NULL);
	} else if ((v = json_object_get(a, "_reply")) != NULL) {
		mock_write_json(v);
	} else if ((v = json_object_get(a, "raw")) != NULL) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		json_int_t rep = json_integer_value(json_object_get(a, "repeat"));
		if (rep <= 0) {
			mock_write_raw(s, n);
		} else {
			/* Build big chunks so a 64 MiB line is fast to send. */
			size_t per = n ? (1u << 20) / n + 1 : 1;
			char *chunk = malloc(per * n + 1);
			for (size_t i = 0; i < per; i++)
				memcpy(chunk + i * n, s, n);
			for (json_int_t left = rep; left > 0 && mock.sock >= 0;) {
				size_t k = (size_t)left < per ? (size_t)left : per;
				mock_write_raw(chunk, k * n);
				left -= (json_int_t)k;
			}
			free(chunk);
		}
	} else if ((v = json_object_get(a, "raw_hex")) != NULL) {
		const char *s = json_string_value(v);
		size_t n = strlen(s) / 2;
		char *b = malloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				mock_die("scenario: raw_hex \"%s\" is not hexadecimal", s);
			b[i] = (char)(hi << 4 | lo);
		}
		mock_write_raw(b, n);
		free(b);
	} else if (json_object_get(a, "close") != NULL) {
		if (mock.sock >= 0) {
			event_del(mock.rd);
			close(mock.sock);
			mock.sock = -1;
			if (mock.accept_ev != NULL)
				event_add(mock.accept_ev, NULL);
		}
	} else if ((v = json_object_get(a, "exit")) != NULL) {
		mock_exit((int)json_integer_value(v));
	} else if ((v = json_object_get(a, "signal")) != NULL) {
		do_signal(signal_by_name(v));
	} else if (json_object_get(a, "hang") != NULL) {
		mock.hung = true;
		return false;
	} else if (json_object_get(a, "_greet") != NULL) {
		mock_greet();
	} else if (json_object_get(a, "_done") != NULL) {
		/* The reply is out: QEMU takes the next command. */
		mock.busy = false;
		event_active(mock.resume_ev, EV_TIMEOUT, 0);
	} else if ((v = json_object_get(a, "_unplug")) != NULL) {
		mock_unplug_now(json_string_value(v));
	} else if (json_object_get(a, "_guest_shutdown") != NULL) {
		mock_guest_shutdown();
	} else if (json_object_get(a, "_resumed") != NULL) {
		mock_guest_resumed();
	} else if (json_object_get(a, "delay_ms") != NULL) {
		/* A pure delay. */
	} else {
		char *s = json_dumps(a, JSON_COMPACT);
		mock_die("scenario: unknown action %s", s);
	}
	return true;
}

static void
prog_step(struct prog *p)
{
	while (p->i < json_array_size(p->actions)) {
		json_t *a = json_array_get(p->actions, p->i);
		json_int_t delay = json_integer_value(json_object_get(a, "delay_ms"));
		if (delay > 0 && !p->waited) {
			p->waited = true;
			struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000 };
			evtimer_add(p->timer, &tv);
			return;
		}
		p->waited = false;
		p->i++;
		if (!do_action(a, p->gen))
			p->i = json_array_size(p->actions);
	}
	event_free(p->timer);
	json_decref(p->actions);
	free(p);
}

static void
prog_start(json_t *actions)
{
	struct prog *p = calloc(1, sizeof(*p));
	p->actions = actions;
	p->gen = mock.conn_gen;
	p->timer = evtimer_new(mock.base, prog_timer, p);
	prog_step(p);
}

void
mock_run_actions(json_t *actions)
{
	if (actions == NULL)
		return;
	prog_start(json_deep_copy(actions));
}

void
mock_run_action(json_t *action)
{
	json_t *a = json_array();
	json_array_append_new(a, action);
	prog_start(a);
}

/* ---- scenario validation: a typo must not silently do nothing ---- */

static const char *const action_keys[] = {
	"event", "data", "raw", "repeat", "raw_hex", "close", "exit", "signal", "hang", "delay_ms",
};
static const char *const rule_keys[] = {
	"command", "nth", "reply", "effects", "delay_ms", "split", "split_delay_ms", "hang",
	"before", "after", "comment",
};
static const char *const top_keys[] = {
	"start", "greeting", "commands", "after_greeting", "guest", "exit_on_disconnect", "orphan_exit_ms",
	"comment",
};
static const char *const guest_keys[] = {
	"ignore_powerdown", "ignore_unplug", "unplug_delay_ms", "powerdown_delay_ms", "console",
};

static void
check_keys(json_t *o, const char *const *keys, size_t n, const char *what)
{
	if (!json_is_object(o))
		mock_die("scenario: %s must be an object", what);
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == n)
			mock_die("scenario: %s has unknown key \"%s\" (see tests/qmp-mock/README.md)", what, k);
	}
}

static void
check_actions(json_t *list, const char *what)
{
	if (list == NULL)
		return;
	if (!json_is_array(list))
		mock_die("scenario: %s must be a list of actions", what);
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a) {
		check_keys(a, action_keys, sizeof(action_keys) / sizeof(action_keys[0]), what);
		if (json_object_size(a) == 0)
			mock_die("scenario: %s has an empty action", what);
		json_t *s = json_object_get(a, "signal");
		if (s != NULL)
			(void)signal_by_name(s);
	}
}

void
mock_scenario_check(void)
{
	json_t *s = mock.scenario;
	check_keys(s, top_keys, sizeof(top_keys) / sizeof(top_keys[0]), "the scenario");
	check_actions(json_object_get(s, "start"), "\"start\"");
	check_actions(json_object_get(s, "after_greeting"), "\"after_greeting\"");
	if (json_object_get(s, "guest") != NULL)
		check_keys(json_object_get(s, "guest"), guest_keys, sizeof(guest_keys) / sizeof(guest_keys[0]),
		    "\"guest\"");
	json_t *rules = json_object_get(s, "commands");
	if (rules != NULL && !json_is_array(rules))
		mock_die("scenario: \"commands\" must be a list of rules");
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r) {
		check_keys(r, rule_keys, sizeof(rule_keys) / sizeof(rule_keys[0]), "a \"commands\" rule");
		if (!json_is_string(json_object_get(r, "command")))
			mock_die("scenario: every \"commands\" rule needs \"command\": NAME");
		json_t *reply = json_object_get(r, "reply");
		if (reply != NULL && (!json_is_object(reply) ||
		    (json_object_get(reply, "return") == NULL && json_object_get(reply, "error") == NULL)))
			mock_die("scenario: rule for %s: \"reply\" must be {\"return\": ...} or {\"error\": ...}",
			    json_string_value(json_object_get(r, "command")));
		check_actions(json_object_get(r, "before"), "\"before\"");
		check_actions(json_object_get(r, "after"), "\"after\"");
	}
}

/* ---- greeting ---- */

static void
mock_greet(void)
{
	json_t *g = json_object_get(mock.scenario, "greeting");
	if (g != NULL) {
		mock_write_json(g);
	} else {
		json_t *msg = json_pack("{s:{s:{s:{s:i, s:i, s:i}, s:s}, s:[s]}}",
		    "QMP", "version", "qemu", "micro", 22, "minor", 2, "major", 7,
		    "package", "Debian 1:7.2+dfsg-7+deb12u18+b3 (qemu-mock)", "capabilities", "oob");
		mock_write_json(msg);
		json_decref(msg);
	}
	mock.greeted = true;
	if (mock.connections == 1)
		mock_run_actions(json_object_get(mock.scenario, "after_greeting"));
	process_input();
}

void
mock_start(void)
{
	/* A later client (the monitor listens: a supervisor that adopts the
	 * guest) is greeted at once; "start" and "after_greeting" were QEMU
	 * starting up, which happens once. */
	if (mock.connections > 1) {
		mock_greet();
		return;
	}
	/* "start" runs before the greeting; a delay or hang there delays or
	 * prevents it, like a QEMU that is slow or stuck while starting. */
	json_t *start = json_deep_copy(json_object_get(mock.scenario, "start"));
	if (start == NULL)
		start = json_array();
	json_array_append_new(start, json_pack("{s:b}", "_greet", 1));
	prog_start(start);
}

/* ---- input ---- */

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	size_t want = 65536;
	if (mock.incap - mock.inlen < want) {
		mock.incap = mock.inlen + want;
		mock.in = realloc(mock.in, mock.incap);
	}
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { mock.in + mock.inlen, want };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		process_input();
		mock_disconnected(n == 0 ? "the client closed the QMP connection" : "reading QMP failed");
		return;
	}
	/* Linux glues the bytes of earlier writes in front of a write that
	 * carried fds, and stops reading right after it: so the fds belong
	 * to the last command that starts within this read (each command
	 * that passes an fd is its own sendmsg). */
	uint64_t at = mock.in_off + mock.inlen;
	const char *data = mock.in + mock.inlen;
	for (ssize_t k = n - 2; k >= 0; k--) {
		if (data[k] == '\n') {
			at += (uint64_t)k + 1;
			break;
		}
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int rfd;
			memcpy(&rfd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			mock.fds = realloc(mock.fds, (mock.nfds + 1) * sizeof(*mock.fds));
			mock.fds[mock.nfds++] = (struct mock_fd){ rfd, at };
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		mock_die("the client passed more file descriptors on one message than QEMU accepts");
	mock.inlen += (size_t)n;
	process_input();
}

/* The fd that arrived with the bytes [from, to) of the stream, if any; any
 * further fds on the same command are closed, as QEMU keeps only one. */
static int
take_fd(uint64_t from, uint64_t to)
{
	int fd = -1;
	size_t j = 0;
	for (size_t i = 0; i < mock.nfds; i++) {
		if (mock.fds[i].off >= from && mock.fds[i].off < to) {
			if (fd >= 0)
				close(fd);
			fd = mock.fds[i].fd;
		} else {
			mock.fds[j++] = mock.fds[i];
		}
	}
	mock.nfds = j;
	return fd;
}

static bool
fd_check(int fd, json_t *rec)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		json_object_set_new(rec, "fd_kind", json_string("closed"));
		return false;
	}
	const char *kind = S_ISFIFO(st.st_mode) ? "pipe" : S_ISSOCK(st.st_mode) ? "socket" :
	    S_ISCHR(st.st_mode) ? "char" : S_ISREG(st.st_mode) ? "file" : "other";
	json_object_set_new(rec, "fd_kind", json_string(kind));
	int fl = fcntl(fd, F_GETFL);
	bool writable = fl >= 0 && ((fl & O_ACCMODE) == O_WRONLY || (fl & O_ACCMODE) == O_RDWR);
	if ((S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) && writable) {
		/* Prove it works end to end: the test reads this byte. */
		ssize_t n = send(fd, "Q", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, "Q", 1);
		json_object_set_new(rec, "fd_wrote", json_boolean(n == 1));
		return n == 1;
	}
	return true;
}

static json_t *
find_rule(const char *name, json_int_t count)
{
	json_t *rules = json_object_get(mock.scenario, "commands");
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "command")), name) != 0)
			continue;
		json_t *nth = json_object_get(r, "nth");
		if (nth == NULL || json_integer_value(nth) == count)
			return r;
	}
	return NULL;
}

static void
append_all(json_t *dst, json_t *src)
{
	if (src != NULL)
		json_array_extend(dst, src);
}

static void
handle_command(json_t *cmd, int fd)
{
	const char *name = json_string_value(json_object_get(cmd, "execute"));
	json_t *args = json_object_get(cmd, "arguments");
	json_t *id = json_object_get(cmd, "id");
	json_int_t count = json_integer_value(json_object_get(mock.counts, name)) + 1;
	json_object_set_new(mock.counts, name, json_integer(count));

	json_t *rule = find_rule(name, count);
	json_t *prog = json_array();
	json_t *pre = json_array(), *post = json_array();
	json_t *reply = NULL;
	if (rule != NULL)
		append_all(prog, json_object_get(rule, "before"));
	if (rule != NULL && json_is_true(json_object_get(rule, "hang"))) {
		mock.hung = true;
		if (fd >= 0)
			close(fd);
		mock.busy = true;
		prog_start(prog);
		json_decref(pre);
		json_decref(post);
		return;
	}
	json_t *canned = rule ? json_object_get(rule, "reply") : NULL;
	if (canned == NULL || json_is_true(json_object_get(rule, "effects")))
		reply = mock_cmd_default(name, args, fd, pre, post);
	else if (fd >= 0)
		close(fd);
	if (canned != NULL) {
		json_decref(reply);
		reply = json_deep_copy(canned);
		if (strcmp(name, "qmp_capabilities") == 0 && json_object_get(reply, "return") != NULL)
			mock.negotiated = true;
	}
	if (id != NULL)
		json_object_set(reply, "id", id);

	size_t k;
	json_t *e;
	json_array_foreach(pre, k, e)
		json_array_append(prog, e);

	json_int_t delay = rule ? json_integer_value(json_object_get(rule, "delay_ms")) : 0;
	json_t *split = rule ? json_object_get(rule, "split") : NULL;
	if (split != NULL) {
		/* The reply's bytes cut at the given offsets, each piece its own
		 * write with a pause between. */
		char *s = json_dumps(reply, 0);
		size_t n = strlen(s);
		char *line = malloc(n + 3);
		memcpy(line, s, n);
		memcpy(line + n, "\r\n", 3);
		n += 2;
		free(s);
		json_int_t sd = json_integer_value(json_object_get(rule, "split_delay_ms"));
		if (sd <= 0)
			sd = 50;
		size_t from = 0;
		for (size_t j = 0; j <= json_array_size(split); j++) {
			size_t to = j < json_array_size(split) ? (size_t)json_integer_value(json_array_get(split, j)) : n;
			if (to > n || to < from)
				mock_die("scenario: split offsets for %s must be increasing and within the %zu-byte reply",
				    name, n);
			json_t *piece = json_object();
			json_object_set_new(piece, "raw", json_stringn_nocheck(line + from, to - from));
			json_int_t d = j == 0 ? delay : sd;
			if (d > 0)
				json_object_set_new(piece, "delay_ms", json_integer(d));
			json_array_append_new(prog, piece);
			from = to;
		}
		free(line);
	} else {
		json_t *r = json_object();
		json_object_set(r, "_reply", reply);
		if (delay > 0)
			json_object_set_new(r, "delay_ms", json_integer(delay));
		json_array_append_new(prog, r);
	}
	json_array_append_new(prog, json_pack("{s:b}", "_done", 1));
	append_all(prog, post);
	if (rule != NULL)
		append_all(prog, json_object_get(rule, "after"));
	json_decref(reply);
	json_decref(pre);
	json_decref(post);
	mock.busy = true;
	prog_start(prog);
}

static const char *const allowed_members[] = { "execute", "arguments", "id" };

static void
process_input(void)
{
	size_t start = 0;
	while (mock.greeted && (!mock.busy || mock.hung) && mock.sock >= 0) {
		if (start == mock.inlen)
			break;
		char *nl = memchr(mock.in + start, '\n', mock.inlen - start);
		if (nl == NULL)
			break;
		size_t n = (size_t)(nl - (mock.in + start));
		uint64_t from = mock.in_off + start, to = from + n + 1;
		char *line = mock.in + start;
		start += n + 1;
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
			n--;
		if (n == 0)
			continue;
		json_error_t jerr;
		json_t *cmd = json_loadb(line, n, JSON_DECODE_ANY, &jerr);
		if (cmd == NULL)
			mock_die("the client sent invalid JSON (%s): %.*s", jerr.text, (int)(n > 200 ? 200 : n), line);
		if (!json_is_object(cmd))
			mock_die("the client sent JSON that is not an object (QEMU: \"QMP input must be a JSON object\"): %.*s",
			    (int)(n > 200 ? 200 : n), line);
		const char *k;
		json_t *v;
		json_object_foreach(cmd, k, v) {
			size_t i;
			for (i = 0; i < sizeof(allowed_members) / sizeof(allowed_members[0]); i++)
				if (strcmp(k, allowed_members[i]) == 0)
					break;
			if (i == sizeof(allowed_members) / sizeof(allowed_members[0]))
				mock_die("the client sent member '%s' (QEMU: \"QMP input member '%s' is unexpected\"): %.*s",
				    k, k, (int)(n > 200 ? 200 : n), line);
		}
		if (!json_is_string(json_object_get(cmd, "execute")))
			mock_die("the client sent a command without \"execute\": %.*s", (int)(n > 200 ? 200 : n), line);
		json_t *args = json_object_get(cmd, "arguments");
		if (args != NULL && !json_is_object(args))
			mock_die("the client sent \"arguments\" that is not an object: %.*s", (int)(n > 200 ? 200 : n), line);

		int fd = take_fd(from, to);
		if (mock.record != NULL) {
			json_t *rec = json_deep_copy(cmd);
			json_object_set_new(rec, "fd_received", json_boolean(fd >= 0));
			if (fd >= 0)
				json_object_set_new(rec, "fd_usable", json_boolean(fd_check(fd, rec)));
			char *s = json_dumps(rec, JSON_COMPACT);
			fprintf(mock.record, "%s\n", s);
			fflush(mock.record);
			free(s);
			json_decref(rec);
		}
		if (mock.hung) {
			/* Still listening, never answering. */
			if (fd >= 0)
				close(fd);
		} else {
			handle_command(cmd, fd);
		}
		json_decref(cmd);
	}
	if (start > 0) {
		memmove(mock.in, mock.in + start, mock.inlen - start);
		mock.inlen -= start;
		mock.in_off += start;
	}
}

void
mock_connect(int sock)
{
	int fl = fcntl(sock, F_GETFL);
	fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	/* Every client starts a conversation of its own, as with QEMU: a new
	 * greeting and capabilities negotiation, nothing left over. */
	orphan_forgiven();
	mock.conn_gen++;
	mock.connections++;
	mock.greeted = mock.negotiated = mock.busy = false;
	mock.inlen = 0;
	mock.in_off = 0;
	for (size_t i = 0; i < mock.nfds; i++)
		close(mock.fds[i].fd);
	mock.nfds = 0;
	if (mock.rd != NULL)
		event_free(mock.rd);
	mock.sock = sock;
	mock.rd = event_new(mock.base, sock, EV_READ | EV_PERSIST, on_read, NULL);
	if (mock.resume_ev == NULL)
		mock.resume_ev = event_new(mock.base, -1, 0, on_resume, NULL);
	event_add(mock.rd, NULL);
}
