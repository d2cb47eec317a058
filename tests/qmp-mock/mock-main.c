/* qemu-mock's entry point: reads a real QEMU command line, records it, finds
 * the QMP monitor (-chardev socket,fd=N + -mon, or -qmp unix:PATH,server=on),
 * starts one real thread per vCPU so the supervisor can pin them, loads the
 * scenario and runs the monitor on libevent. */
#include "mock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

struct mock mock = { .sock = -1, .listen_sock = -1 };

/* Options QEMU accepts without an argument; every other option takes one. */
static const char *const flag_options[] = {
	"-S", "-nodefaults", "-enable-kvm", "-no-user-config", "-no-reboot", "-no-shutdown",
	"-snapshot", "-nographic", "-no-hpet", "-s", "-full-screen", "-no-acpi", "-daemonize",
	"-version", "-help", "-h", "-no-fd-bootchk", "-win2k-hack", "-only-migratable",
	"-preconfig", "-enable-sync-profile", "-no-quit", "-alt-grab", "-ctrl-grab",
};

struct chardev {
	char *id;
	int fd;
	char *path;
	bool server;
	char *logfile;           /* logfile=PATH: everything the guest writes to it */
};
static struct chardev chardevs[16];
static size_t nchardevs;
static char *monitor_chardev;
static char *qmp_unix_path;
static char *vm_name;
static char *serial_file;        /* -serial file:PATH */
static char *serial_chardev;     /* -serial chardev:ID */
static int console_listen = -1, console_conn = -1;
static struct event *console_accept_ev, *console_read_ev;
static struct { int fd, set; } add_fds[8];   /* -add-fd fd=N,set=M */
static size_t n_add_fds;

static bool
is_flag(const char *opt)
{
	for (size_t i = 0; i < sizeof(flag_options) / sizeof(flag_options[0]); i++)
		if (strcmp(opt, flag_options[i]) == 0)
			return true;
	return false;
}

/* Split QEMU's "first,key=value,key=value" (",," is a literal comma) into an
 * object; a first element without '=' is stored under `implied`. */
static json_t *
parse_opts(const char *s, const char *implied)
{
	json_t *o = json_object();
	char *buf = malloc(strlen(s) + 1);
	bool first = true;
	const char *p = s;
	while (*p != '\0') {
		size_t n = 0;
		while (*p != '\0') {
			if (*p == ',' && p[1] == ',') {
				buf[n++] = ',';
				p += 2;
			} else if (*p == ',') {
				p++;
				break;
			} else {
				buf[n++] = *p++;
			}
		}
		buf[n] = '\0';
		char *eq = strchr(buf, '=');
		if (eq != NULL) {
			*eq = '\0';
			json_object_set_new(o, buf, json_string(eq + 1));
		} else if (first && implied != NULL) {
			json_object_set_new(o, implied, json_string(buf));
		} else {
			/* A bare "server" or "nowait" means on. */
			json_object_set_new(o, buf, json_string("on"));
		}
		first = false;
	}
	free(buf);
	return o;
}

static const char *
opt_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool
opt_on(json_t *o, const char *key)
{
	const char *v = opt_str(o, key);
	return v != NULL && (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0);
}

static int
opt_int(json_t *o, const char *key, int dflt)
{
	const char *v = opt_str(o, key);
	if (v == NULL)
		return dflt;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end != '\0' || n < 0 || n > 4096)
		mock_die("invalid number '%s' for %s", v, key);
	return (int)n;
}

static void
parse_chardev(const char *arg)
{
	json_t *o = parse_opts(arg, "backend");
	const char *backend = opt_str(o, "backend");
	const char *id = opt_str(o, "id");
	if (id == NULL)
		mock_die("-chardev %s: chardev: \"id\" is required", arg);
	if (nchardevs == sizeof(chardevs) / sizeof(chardevs[0]))
		mock_die("-chardev %s: too many chardevs for the mock", arg);
	struct chardev *c = &chardevs[nchardevs++];
	c->id = strdup(id);
	c->fd = -1;
	if (backend != NULL && strcmp(backend, "socket") == 0) {
		c->server = opt_on(o, "server");
		if (opt_str(o, "fd") != NULL)
			c->fd = opt_int(o, "fd", -1);
		else if (opt_str(o, "path") != NULL)
			c->path = strdup(opt_str(o, "path"));
	}
	if (opt_str(o, "logfile") != NULL)
		c->logfile = strdup(opt_str(o, "logfile"));
	json_decref(o);
}

static void
parse_qmp(const char *arg)
{
	json_t *o = parse_opts(arg, "addr");
	const char *addr = opt_str(o, "addr");
	if (addr == NULL || strncmp(addr, "unix:", 5) != 0 || !opt_on(o, "server"))
		mock_die("-qmp %s: the mock supports only -qmp unix:PATH,server=on,wait=off", arg);
	qmp_unix_path = strdup(addr + 5);
	json_decref(o);
}

static void
parse_smp(const char *arg)
{
	json_t *o = parse_opts(arg, "cpus");
	int cpus = opt_int(o, "cpus", 0);
	if (cpus == 0) {
		int s = opt_int(o, "sockets", 1), c = opt_int(o, "cores", 1), t = opt_int(o, "threads", 1);
		cpus = s * c * t;
	}
	if (cpus < 1 || cpus > 256)
		mock_die("-smp %s: the mock supports 1 to 256 vCPUs", arg);
	mock.ncpus = cpus;
	json_decref(o);
}

static void
parse_device(const char *arg)
{
	json_t *o = parse_opts(arg, "driver");
	const char *driver = opt_str(o, "driver");
	if (driver != NULL && strcmp(driver, "help") != 0)
		mock_track_device(driver, opt_str(o, "id"), opt_str(o, "bus"));
	json_decref(o);
}

static void
write_argv(int argc, char **argv)
{
	const char *path = getenv("QMP_MOCK_ARGV");
	if (path == NULL || *path == '\0')
		return;
	json_t *a = json_array();
	for (int i = 0; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	char *s = json_dumps(a, JSON_COMPACT);
	FILE *f = fopen(path, "w");
	if (f == NULL || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0)
		mock_die("cannot write QMP_MOCK_ARGV file %s: %s", path, strerror(errno));
	free(s);
	json_decref(a);
}


/* "-audiodev help", "-display help", "-device help", "-spice help" as QEMU
 * 7.2 answers them (vfio asks once per binary: qemucaps.c). Names that come
 * from a loadable module are listed only when the module is there: with
 * QEMU_MODULE_DIR set, the mock's modules are the .so files in it (real
 * QEMU also has its built-in directory); unset, all of them. */
static const struct {
	const char *flag, *name, *module;
} help_names[] = {
	{ "-audiodev", "none", NULL }, { "-audiodev", "alsa", "audio-alsa" }, { "-audiodev", "oss", "audio-oss" },
	{ "-audiodev", "pa", "audio-pa" }, { "-audiodev", "sdl", "audio-sdl" }, { "-audiodev", "spice", "audio-spice" },
	{ "-audiodev", "wav", NULL },
	{ "-display", "none", NULL }, { "-display", "gtk", "ui-gtk" }, { "-display", "sdl", "ui-sdl" },
	{ "-display", "spice-app", "ui-spice-app" },
	{ "-device", "pcie-root-port", NULL }, { "-device", "qemu-xhci", NULL }, { "-device", "vfio-pci", NULL },
	{ "-device", "virtio-net-pci", NULL }, { "-device", "e1000e", NULL }, { "-device", "virtio-blk-pci", NULL },
	{ "-device", "nvme", NULL }, { "-device", "ide-hd", NULL }, { "-device", "ide-cd", NULL },
	{ "-device", "virtio-serial-pci", NULL }, { "-device", "virtserialport", NULL },
	{ "-device", "ich9-intel-hda", NULL }, { "-device", "hda-output", NULL }, { "-device", "ivshmem-plain", NULL },
	{ "-device", "tpm-tis", NULL }, { "-device", "qxl", "hw-display-qxl" }, { "-device", "qxl-vga", "hw-display-qxl" },
	{ "-device", "usb-host", "hw-usb-host" }, { "-device", "usb-redir", "hw-usb-redirect" },
};

static bool
help_has_module(const char *module)
{
	const char *dir = getenv("QEMU_MODULE_DIR");
	if (module == NULL || dir == NULL || *dir == '\0')
		return true;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.so", dir, module);
	return access(path, F_OK) == 0;
}

static void __attribute__((noreturn))
print_help(const char *flag)
{
	if (strcmp(flag, "-spice") == 0) {
		if (!help_has_module("ui-spice-core")) {
			fprintf(stderr, "qemu-system-x86_64: -spice help: spice support is disabled\n");
			exit(1);
		}
		printf("spice options:\n  addr=<str>\n  disable-ticketing=<bool (on/off)>\n  unix=<bool (on/off)>\n");
		exit(0);
	}
	if (strcmp(flag, "-audiodev") == 0)
		printf("Available audio drivers:\n");
	else if (strcmp(flag, "-display") == 0)
		printf("Available display backend types:\n");
	for (size_t i = 0; i < sizeof(help_names) / sizeof(help_names[0]); i++) {
		if (strcmp(help_names[i].flag, flag) != 0 || !help_has_module(help_names[i].module))
			continue;
		if (strcmp(flag, "-device") == 0)
			printf("name \"%s\"\n", help_names[i].name);
		else
			printf("%s\n", help_names[i].name);
	}
	exit(0);
}

static void
parse_args(int argc, char **argv)
{
	mock.status = "running";
	mock.ncpus = 1;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (opt[0] != '-') {
			/* QEMU takes a bare word as a disk image. */
			continue;
		}
		/* QEMU accepts --opt as -opt. */
		if (opt[1] == '-')
			opt++;
		if (strcmp(opt, "-version") == 0) {
			printf("QEMU emulator version 7.2.22 (qemu-mock)\n"
			    "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n");
			exit(0);
		}
		if (strcmp(opt, "-daemonize") == 0)
			mock_die("-daemonize: the mock must stay the supervisor's child");
		if (is_flag(opt)) {
			if (strcmp(opt, "-S") == 0)
				mock.status = "prelaunch";
			else if (strcmp(opt, "-no-shutdown") == 0)
				mock.no_shutdown = true;
			continue;
		}
		if (i + 1 >= argc) {
			/* An option we do not know and nothing after it:
			 * take it as a flag rather than fail. */
			continue;
		}
		const char *val = argv[++i];
		if (strcmp(val, "help") == 0 && (strcmp(opt, "-audiodev") == 0 || strcmp(opt, "-display") == 0 ||
		    strcmp(opt, "-device") == 0 || strcmp(opt, "-spice") == 0))
			print_help(opt);
		if (strcmp(opt, "-chardev") == 0)
			parse_chardev(val);
		else if (strcmp(opt, "-mon") == 0) {
			json_t *o = parse_opts(val, "chardev");
			const char *mode = opt_str(o, "mode");
			if (mode != NULL && strcmp(mode, "control") == 0) {
				if (monitor_chardev != NULL)
					mock_die("-mon %s: the mock supports one QMP monitor", val);
				monitor_chardev = strdup(opt_str(o, "chardev") ? opt_str(o, "chardev") : "");
			}
			json_decref(o);
		} else if (strcmp(opt, "-qmp") == 0)
			parse_qmp(val);
		else if (strcmp(opt, "-smp") == 0)
			parse_smp(val);
		else if (strcmp(opt, "-device") == 0)
			parse_device(val);
		else if (strcmp(opt, "-serial") == 0 && strncmp(val, "file:", 5) == 0 && serial_file == NULL)
			serial_file = strdup(val + 5);
		else if (strcmp(opt, "-serial") == 0 && strncmp(val, "chardev:", 8) == 0 && serial_chardev == NULL)
			serial_chardev = strdup(val + 8);
		else if (strcmp(opt, "-add-fd") == 0 && n_add_fds < sizeof(add_fds) / sizeof(add_fds[0])) {
			json_t *o = parse_opts(val, NULL);
			const char *fd = opt_str(o, "fd"), *set = opt_str(o, "set");
			if (fd != NULL && set != NULL) {
				add_fds[n_add_fds].fd = atoi(fd);
				add_fds[n_add_fds++].set = atoi(set);
			}
			json_decref(o);
		}
		else if (strcmp(opt, "-name") == 0) {
			json_t *o = parse_opts(val, "guest");
			if (opt_str(o, "guest"))
				vm_name = strdup(opt_str(o, "guest"));
			json_decref(o);
		}
		/* Anything else (-m, -drive, -machine, -accel, ...) is accepted
		 * as QEMU would and does not matter to the monitor. */
	}
}

const char *
mock_vm_name(void)
{
	return vm_name;
}

static sem_t vcpu_started;

static void *
vcpu_thread(void *arg)
{
	pid_t *tid = arg;
	*tid = (pid_t)syscall(SYS_gettid);
	sem_post(&vcpu_started);
	for (;;)
		pause();
	return NULL;
}

static void
start_vcpus(void)
{
	mock.tids = calloc((size_t)mock.ncpus, sizeof(*mock.tids));
	sem_init(&vcpu_started, 0, 0);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < mock.ncpus; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, vcpu_thread, &mock.tids[i]) != 0)
			mock_die("cannot start vCPU thread %d", i);
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < mock.ncpus; i++)
		while (sem_wait(&vcpu_started) != 0 && errno == EINTR)
			;
}

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
	if (mock.sock >= 0) {
		/* QEMU's monitor serves one client at a time: the next waits in
		 * the backlog until this one leaves (mock_disconnected()). */
		event_del(mock.accept_ev);
		return;
	}
	int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return;
	event_del(mock.accept_ev);
	mock_connect(s);
	mock_start();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	/* QEMU shuts down on SIGTERM/SIGINT and says so. */
	json_t *data = json_pack("{s:b, s:s}", "guest", 0, "reason", "host-signal");
	mock_emit_event("SHUTDOWN", data);
	mock_exit(0);
}

static void
check_socket_fd(const struct chardev *c)
{
	struct stat st;
	if (fstat(c->fd, &st) < 0)
		mock_die("-chardev socket,id=%s,fd=%d: fd %d is not open", c->id, c->fd, c->fd);
	if (!S_ISSOCK(st.st_mode))
		mock_die("-chardev socket,id=%s,fd=%d: File descriptor '%d' is not a socket", c->id, c->fd, c->fd);
}

static bool
is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

static void
open_monitor(void)
{
	if (qmp_unix_path != NULL) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(qmp_unix_path) >= sizeof(sa.sun_path))
			mock_die("-qmp unix:%s: path too long", qmp_unix_path);
		strcpy(sa.sun_path, qmp_unix_path);
		unlink(qmp_unix_path);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
			mock_die("-qmp unix:%s: cannot listen: %s", qmp_unix_path, strerror(errno));
		mock.listen_sock = s;
		mock.accept_ev = event_new(mock.base, s, EV_READ | EV_PERSIST, on_accept, NULL);
		event_add(mock.accept_ev, NULL);
		return;
	}
	if (monitor_chardev == NULL)
		mock_die("no QMP monitor on the command line: give -chardev socket,id=X,fd=N "
		    "-mon chardev=X,mode=control, or -qmp unix:PATH,server=on,wait=off");
	struct chardev *c = NULL;
	for (size_t i = 0; i < nchardevs; i++)
		if (strcmp(chardevs[i].id, monitor_chardev) == 0)
			c = &chardevs[i];
	if (c == NULL)
		mock_die("-mon chardev=%s: chardev \"%s\" not found", monitor_chardev, monitor_chardev);
	if (c->fd < 0)
		mock_die("-chardev id=%s: the mock needs fd=N (or use -qmp unix:PATH,server=on)", c->id);
	check_socket_fd(c);
	(void)fcntl(c->fd, F_SETFD, FD_CLOEXEC);
	if (c->server) {
		/* A listening socket handed over (server=on,fd=N): QEMU listens
		 * on it and serves one client after another. */
		if (!is_listening(c->fd))
			mock_die("-chardev socket,id=%s,fd=%d,server=on: fd %d is not a listening socket", c->id,
			    c->fd, c->fd);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		mock.listen_sock = c->fd;
		mock.accept_ev = event_new(mock.base, c->fd, EV_READ | EV_PERSIST, on_accept, NULL);
		event_add(mock.accept_ev, NULL);
		return;
	}
	if (is_listening(c->fd))
		mock_die("-chardev socket,id=%s,fd=%d: fd %d is a listening socket; QEMU needs server=on for it",
		    c->id, c->fd, c->fd);
	mock_connect(c->fd);
	mock_start();
}

/* QMP_MOCK_ENV: what the process was given, before it opened anything:
 * {"environ": ["K=V", ...], "fds": {"0": "/dev/null", "3": "socket:[...]"}}. */
static void
write_env(void)
{
	const char *path = getenv("QMP_MOCK_ENV");
	if (path == NULL || *path == '\0')
		return;
	extern char **environ;
	json_t *o = json_pack("{s:[], s:{}}", "environ", "fds");
	for (char **e = environ; *e != NULL; e++)
		json_array_append_new(json_object_get(o, "environ"), json_string(*e));
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		mock_die("cannot list /proc/self/fd: %s", strerror(errno));
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		char link[300], target[512];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		json_object_set_new(json_object_get(o, "fds"), de->d_name, json_string(target));
	}
	closedir(d);
	if (json_dump_file(o, path, JSON_COMPACT) < 0)
		mock_die("cannot write QMP_MOCK_ENV file %s", path);
	json_decref(o);
}

/* The descriptor -add-fd put in fdset M, as QEMU opens "/dev/fdset/M". */
static FILE *
open_fdset_or_file(const char *path)
{
	if (strncmp(path, "/dev/fdset/", 11) == 0) {
		for (size_t i = 0; i < n_add_fds; i++) {
			if (add_fds[i].set == atoi(path + 11))
				return fdopen(dup(add_fds[i].fd), "w");
		}
		errno = ENOENT;
		return NULL;
	}
	return fopen(path, "w");
}

static struct chardev *
find_chardev(const char *id)
{
	for (size_t i = 0; i < nchardevs; i++)
		if (strcmp(chardevs[i].id, id) == 0)
			return &chardevs[i];
	return NULL;
}

static FILE *console_log;

/* What the guest prints: to the console's client when one is connected,
 * and to its logfile whether or not (QEMU logs a write the backend could
 * not take, too). */
static void
console_output(const char *text, size_t n)
{
	/* the log first: a test that saw the output may read the log at once */
	if (console_log != NULL) {
		fwrite(text, 1, n, console_log);
		fflush(console_log);
	}
	if (console_conn >= 0 && send(console_conn, text, n, MSG_NOSIGNAL) < 0) {
		event_del(console_read_ev);
		close(console_conn);
		console_conn = -1;
		event_add(console_accept_ev, NULL);
	}
}

/* The guest on the other end of the serial line answers each line typed
 * into it with "guest: LINE", so tests can see input reach it and output
 * come back. */
static char console_in[4096];
static size_t console_inlen;

static void
on_console_read(evutil_socket_t fd, short what, void *arg)
{
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		event_del(console_read_ev);
		close(console_conn);
		console_conn = -1;
		event_add(console_accept_ev, NULL);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char ch = buf[i];
		if (ch == '\r' || ch == '\n') {
			if (console_inlen == 0)
				continue;
			char out[sizeof(console_in) + 16];
			int len = snprintf(out, sizeof(out), "guest: %.*s\r\n", (int)console_inlen, console_in);
			console_inlen = 0;
			console_output(out, (size_t)len);
		} else if (console_inlen < sizeof(console_in)) {
			console_in[console_inlen++] = ch;
		}
	}
}

static void
on_console_accept(evutil_socket_t fd, short what, void *arg)
{
	/* One client at a time, as QEMU's socket chardev: the next waits in
	 * the backlog until this one leaves. */
	event_del(console_accept_ev);
	int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		event_add(console_accept_ev, NULL);
		return;
	}
	console_conn = s;
	console_inlen = 0;
	if (console_read_ev != NULL)
		event_free(console_read_ev);
	console_read_ev = event_new(mock.base, s, EV_READ | EV_PERSIST, on_console_read, NULL);
	event_add(console_read_ev, NULL);
}

/* guest.console: what the guest prints on its serial console at start, in
 * the -serial file as QEMU creates it, or to -serial chardev:ID (a socket
 * chardev: its client and its logfile). */
static void
open_console(void)
{
	const char *text = json_string_value(json_object_get(json_object_get(mock.scenario, "guest"), "console"));
	if (serial_chardev != NULL) {
		struct chardev *c = find_chardev(serial_chardev);
		if (c == NULL)
			mock_die("-serial chardev:%s: chardev \"%s\" not found", serial_chardev, serial_chardev);
		if (c->logfile != NULL && (console_log = open_fdset_or_file(c->logfile)) == NULL)
			mock_die("-chardev %s,logfile=%s: cannot open the log: %s", c->id, c->logfile, strerror(errno));
		if (c->fd >= 0) {
			check_socket_fd(c);
			if (!c->server || !is_listening(c->fd))
				mock_die("-chardev socket,id=%s,fd=%d: the mock's console needs server=on and a "
				    "listening socket", c->id, c->fd);
			(void)fcntl(c->fd, F_SETFD, FD_CLOEXEC);
			fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
			console_listen = c->fd;
			console_accept_ev = event_new(mock.base, c->fd, EV_READ | EV_PERSIST, on_console_accept, NULL);
			event_add(console_accept_ev, NULL);
		}
		if (text != NULL)
			console_output(text, strlen(text));
		return;
	}
	if (text == NULL || serial_file == NULL)
		return;
	FILE *f = open_fdset_or_file(serial_file);
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		mock_die("-serial file:%s: cannot write the console: %s", serial_file, strerror(errno));
}

static void
load_scenario(void)
{
	const char *path = getenv("QMP_MOCK_SCENARIO");
	if (path == NULL || *path == '\0') {
		mock.scenario = json_object();
	} else {
		json_error_t err;
		mock.scenario = json_load_file(path, 0, &err);
		if (mock.scenario == NULL)
			mock_die("QMP_MOCK_SCENARIO %s: line %d: %s", path, err.line, err.text);
		if (!json_is_object(mock.scenario))
			mock_die("QMP_MOCK_SCENARIO %s: must be a JSON object", path);
	}
	json_t *g = json_object_get(mock.scenario, "guest");
	mock.ignore_powerdown = json_is_true(json_object_get(g, "ignore_powerdown"));
	mock.ignore_unplug = json_is_true(json_object_get(g, "ignore_unplug"));
	json_t *d = json_object_get(g, "unplug_delay_ms");
	mock.unplug_delay_ms = json_is_integer(d) ? (int)json_integer_value(d) : 50;
	d = json_object_get(g, "powerdown_delay_ms");
	mock.powerdown_delay_ms = json_is_integer(d) ? (int)json_integer_value(d) : 50;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	mock.counts = json_object();
	mock.devices = json_object();
	mock.buses = json_object();
	mock.netdevs = json_object();
	mock.fdnames = json_object();
	mock.fdsets = json_object();
	mock.pending_unplug = json_array();
	json_object_set_new(mock.buses, "pcie.0", json_true());

	write_env();
	write_argv(argc, argv);
	parse_args(argc, argv);
	load_scenario();
	mock_scenario_check();

	const char *rec = getenv("QMP_MOCK_RECORD");
	if (rec != NULL && *rec != '\0' && (mock.record = fopen(rec, "w")) == NULL)
		mock_die("cannot open QMP_MOCK_RECORD file %s: %s", rec, strerror(errno));

	start_vcpus();
	mock.base = event_base_new();
	if (mock.base == NULL)
		mock_die("event_base_new failed");
	mock.sigterm_ev = evsignal_new(mock.base, SIGTERM, on_signal, NULL);
	mock.sigint_ev = evsignal_new(mock.base, SIGINT, on_signal, NULL);
	event_add(mock.sigterm_ev, NULL);
	event_add(mock.sigint_ev, NULL);
	open_console();
	open_monitor();
	event_base_dispatch(mock.base);
	mock_exit(0);
}
