/* vfioctl: talk to a running vfio supervisor through its control FIFO.
 *
 *   vfioctl [-timeout S] [-json] [NAME] COMMAND...
 *   vfioctl list
 *
 * Writes one tagged command line to /run/vfio/NAME/control, waits for the
 * reply with that tag in /run/vfio/NAME/replies (inotify, no polling), prints
 * it and exits 0 on ok, 1 on error (or timeout), 2 when no supervisor NAME
 * runs, 3 when the command is pending (a removal the guest has not acked:
 * it completes when the guest lets go). Paths are under $VFIO_HOST_ROOT like everything vfio touches. Like
 * vfio it needs root: the FIFO and the runtime directory are root's alone.
 *
 * The supervisor may replace the replies file with a new one (it keeps it
 * small, control.h) or start it over on a full disk: the whole directory is
 * watched, a replaced file is read to its end and the new one from its
 * start, a shrunk one from its start; the tag finds the reply. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "hostroot.h"
#include "rundir.h"
#include "util.h"

#define VFIOCTL_EXIT_OK      0
#define VFIOCTL_EXIT_ERROR   1
#define VFIOCTL_EXIT_NOSUP   2
#define VFIOCTL_EXIT_PENDING 3
#define VFIOCTL_TIMEOUT_S    60

/* The commands come from the supervisor's own table (control_cmd_info()). */
static void __attribute__((noreturn))
vfioctl_usage(void)
{
	fprintf(stderr, "usage: vfioctl [-timeout SECONDS] [-json] [NAME] COMMAND...\n"
	    "       vfioctl list\n"
	    "commands:\n");
	const struct control_cmd_info *in;
	for (size_t i = 0; (in = control_cmd_info(i)) != NULL; i++)
		fprintf(stderr, "  %s%s%s\n", in->name, in->usage[0] ? " " : "", in->usage);
	exit(VFIOCTL_EXIT_ERROR);
}

/* w is a command's first word ("pci", "status"). */
static bool
vfioctl_is_command(const char *w)
{
	const struct control_cmd_info *in;
	for (size_t i = 0; (in = control_cmd_info(i)) != NULL; i++) {
		size_t n = strcspn(in->name, " ");
		if (strlen(w) == n && strncmp(w, in->name, n) == 0)
			return true;
	}
	return false;
}

/* Open NAME's FIFO for writing: fails with ENXIO when no supervisor reads it. */
static int
vfioctl_open_fifo(const char *name)
{
	char *path = host_pathdup("/run/vfio/%s/control", name);
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	free(path);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		/* Block on a full pipe rather than fail: the write is atomic anyway. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	}
	errno = e;
	return fd;
}

static bool
vfioctl_running(const char *name)
{
	int fd = vfioctl_open_fifo(name);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The runtime directories (rundir_list, as -restore sees them) whose
 * supervisor is reading its FIFO. */
static void
vfioctl_names(struct strv *names)
{
	struct strv all = { 0 };
	rundir_list(&all);
	for (size_t i = 0; i < all.n; i++) {
		if (vfioctl_running(all.v[i]))
			strv_push(names, all.v[i]);
	}
	strv_free(&all);
}

static int
vfioctl_list(void)
{
	struct strv names = { 0 };
	vfioctl_names(&names);
	if (names.n == 0 && geteuid() != 0)
		fprintf(stderr, "vfioctl: only root can reach the supervisors (their control FIFOs are root's "
		    "alone); run it with sudo\n");
	for (size_t i = 0; i < names.n; i++) {
		char *path = host_pathdup("/run/vfio/%s/status.json", names.v[i]);
		json_t *st = json_load_file(path, 0, NULL);
		free(path);
		const char *state = json_string_value(json_object_get(st, "state"));
		printf("%-20s %s\n", names.v[i], state ? state : "?");
		json_decref(st);
	}
	strv_free(&names);
	return VFIOCTL_EXIT_OK;
}

static void
vfioctl_print_status(const char *name, const char *js, bool as_json)
{
	json_error_t jerr;
	json_t *st = json_loads(js, 0, &jerr);
	if (st == NULL || as_json) {
		printf("%s\n", js);
		json_decref(st);
		return;
	}
	const json_t *devs = json_object_get(st, "devices");
	printf("guest %s: %s\n", name, json_string_value(json_object_get(st, "state")) ?: "?");
	printf("%-24s %-18s %-8s %s\n", "ID", "DRIVER", "BUS", "STATE");
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(devs, "attached"), i, d)
		printf("%-24s %-18s %-8s %s\n", json_string_value(json_object_get(d, "id")) ?: "",
		    json_string_value(json_object_get(d, "driver")) ?: "",
		    json_string_value(json_object_get(d, "bus")) ?: "",
		    json_string_value(json_object_get(d, "state")) ?: "attached");
	printf("free root ports:");
	json_array_foreach(json_object_get(devs, "free_root_ports"), i, d)
		printf(" %s", json_string_value(d));
	printf("%s\n", json_array_size(json_object_get(devs, "free_root_ports")) ? "" : " none");
	json_array_foreach(json_object_get(st, "pending"), i, d)
		printf("in progress: %s\n", json_string_value(d));
	json_decref(st);
}

/* The words as one line the supervisor's parser reads back as the same words. */
static int
vfioctl_build_line(struct strbuf *sb, const char *tag, char **words, int n)
{
	strbuf_printf(sb, "@%s", tag);
	for (int i = 0; i < n; i++) {
		if (strchr(words[i], '\'') != NULL) {
			fprintf(stderr, "vfioctl: \"%s\" contains a single quote, which the control FIFO cannot "
			    "carry; in a regex, match it with . instead\n", words[i]);
			return -1;
		}
		if (strchr(words[i], '\n') != NULL) {
			fprintf(stderr, "vfioctl: a word contains a newline; give one command\n");
			return -1;
		}
		bool quote = words[i][0] == '\0' || strpbrk(words[i], " \t") != NULL || words[i][0] == '@';
		strbuf_printf(sb, quote ? " '%s'" : " %s", words[i]);
	}
	if (sb->len > CONTROL_LINE_MAX) {
		fprintf(stderr, "vfioctl: the command is %zu bytes long; the supervisor takes at most %d\n",
		    sb->len, CONTROL_LINE_MAX);
		return -1;
	}
	strbuf_puts(sb, "\n");
	return 0;
}

static long
vfioctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Read what was appended; return the reply line for tag (allocated) or NULL.
 * A file that got shorter than what was read was started over (a full
 * disk, control.h): read it again from its start. */
static char *
vfioctl_scan(int fd, struct strbuf *pending, const char *tag)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size < lseek(fd, 0, SEEK_CUR)) {
		lseek(fd, 0, SEEK_SET);
		pending->len = 0;
	}
	char buf[8192];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		strbuf_add(pending, buf, (size_t)n);
	char *prefix = xasprintf("@%s ", tag);
	char *found = NULL;
	size_t start = 0;
	while (pending->s != NULL && start < pending->len) {
		char *nl = memchr(pending->s + start, '\n', pending->len - start);
		if (nl == NULL)
			break;
		*nl = '\0';
		if (found == NULL && str_startswith(pending->s + start, prefix))
			found = xstrdup(pending->s + start + strlen(prefix));
		start = (size_t)(nl - pending->s) + 1;
	}
	if (start > 0) {
		memmove(pending->s, pending->s + start, pending->len - start);
		pending->len -= start;
		pending->s[pending->len] = '\0';
	}
	free(prefix);
	return found;
}

/* The replies file as it is now, positioned at its end when skip_old (what
 * was there before our command cannot be our reply), else at its start. */
static int
vfioctl_open_replies(const char *path, bool skip_old)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && skip_old)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* What the directory watch said about the replies file. */
struct vfioctl_events {
	bool changed;            /* written to */
	bool replaced;           /* a new replies file was renamed over it */
	bool gone;               /* removed, or the whole directory: the supervisor stopped */
};

static void
vfioctl_read_events(int ifd, struct vfioctl_events *ev)
{
	char ebuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	while ((len = read(ifd, ebuf, sizeof(ebuf))) > 0) {
		for (char *p = ebuf; p < ebuf + len;) {
			struct inotify_event *e = (struct inotify_event *)p;
			bool replies = e->len > 0 && strcmp(e->name, "replies") == 0;
			if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) || (replies && (e->mask & IN_DELETE)))
				ev->gone = true;
			else if (replies && (e->mask & IN_MOVED_TO))
				ev->replaced = true;
			else if (replies && (e->mask & IN_MODIFY))
				ev->changed = true;
			p += sizeof(*e) + e->len;
		}
	}
}

/* Why no reply came: a full /run is the likely cause worth naming. */
static void
vfioctl_no_reply(const char *name, const char *rundir, int timeout_s)
{
	struct statvfs vfs;
	if (statvfs(rundir, &vfs) == 0 && vfs.f_bavail == 0)
		fprintf(stderr, "vfioctl: no reply from \"%s\" within %d s: the filesystem holding %s is full, so "
		    "the supervisor could not write its reply; free some space there. The command may have "
		    "run: `vfioctl %s status` shows what is attached\n", name, timeout_s, rundir, name);
	else
		fprintf(stderr, "vfioctl: no reply from \"%s\" within %d s (-timeout); the command may still "
		    "complete: `vfioctl %s status` shows what is attached\n", name, timeout_s, name);
}

static int
vfioctl_command(const char *name, char **words, int n, int timeout_s, bool as_json)
{
	char *rundir = host_pathdup("/run/vfio/%s", name);
	char *replies = host_pathdup("/run/vfio/%s/replies", name);
	/* Watch the directory before anything else: the replies file may be
	 * replaced by a new one at any time, and a quick reply must not slip
	 * past. */
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	int rfd = -1, code = VFIOCTL_EXIT_ERROR;
	char *reply = NULL;
	struct strbuf pending = { 0 };
	if (ifd < 0 || inotify_add_watch(ifd, rundir, IN_MODIFY | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF |
	    IN_MOVE_SELF | IN_ONLYDIR) < 0 || (rfd = vfioctl_open_replies(replies, true)) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM || geteuid() != 0)
			fprintf(stderr, "vfioctl: cannot reach the supervisor \"%s\" (%s: %s): vfioctl needs root, "
			    "as vfio does (its control FIFO is root's alone); run it with sudo\n", name, rundir,
			    strerror(e));
		else
			fprintf(stderr, "vfioctl: no supervisor named \"%s\" runs (%s: %s); `vfioctl list` lists them\n",
			    name, replies, strerror(e));
		code = e == EACCES || e == EPERM ? VFIOCTL_EXIT_ERROR : VFIOCTL_EXIT_NOSUP;
		goto out;
	}
	int cfd = vfioctl_open_fifo(name);
	if (cfd < 0) {
		fprintf(stderr, "vfioctl: no supervisor named \"%s\" runs (its control FIFO: %s); `vfioctl list` "
		    "lists them\n", name, strerror(errno));
		code = VFIOCTL_EXIT_NOSUP;
		goto out;
	}
	char tag[64];
	snprintf(tag, sizeof(tag), "vfioctl-%ld-%ld", (long)getpid(), vfioctl_now_ms() % 100000);
	struct strbuf line = { 0 };
	if (vfioctl_build_line(&line, tag, words, n) < 0) {
		close(cfd);
		goto out;
	}
	ssize_t w;
	do
		w = write(cfd, line.s, line.len);
	while (w < 0 && errno == EINTR);
	close(cfd);
	strbuf_free(&line);
	if (w < 0) {
		code = errno == EPIPE ? VFIOCTL_EXIT_NOSUP : VFIOCTL_EXIT_ERROR;
		fprintf(stderr, "vfioctl: cannot send the command to \"%s\": %s\n", name, strerror(errno));
		goto out;
	}

	long deadline = vfioctl_now_ms() + timeout_s * 1000L;
	struct vfioctl_events ev = { 0 };
	for (;;) {
		reply = vfioctl_scan(rfd, &pending, tag);
		if (reply == NULL && ev.replaced) {
			/* What went to the old file is read; the rest is in the new one. */
			ev.replaced = false;
			int nfd = vfioctl_open_replies(replies, false);
			if (nfd >= 0) {
				close(rfd);
				rfd = nfd;
				pending.len = 0;
				continue;
			}
		}
		if (reply != NULL || ev.gone)
			break;
		long left = deadline - vfioctl_now_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		if (poll(&pfd, 1, (int)left) > 0)
			vfioctl_read_events(ifd, &ev);   /* one more read follows: the reply may be in before */
	}
	if (reply == NULL) {
		if (ev.gone) {
			fprintf(stderr, "vfioctl: the supervisor \"%s\" stopped before it answered\n", name);
			code = VFIOCTL_EXIT_NOSUP;
		} else {
			vfioctl_no_reply(name, rundir, timeout_s);
		}
		goto out;
	}
	if (str_startswith(reply, "ok")) {
		const char *msg = reply[2] == ' ' ? reply + 3 : reply + 2;
		if (strcmp(words[0], "status") == 0)
			vfioctl_print_status(name, msg, as_json);
		else if (strcmp(words[0], "help") == 0) {
			char *copy = xstrdup(msg), *save = NULL;
			for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save))
				printf("%s\n", t + (t[0] == ' '));
			free(copy);
		} else {
			printf("%s\n", msg);
		}
		code = VFIOCTL_EXIT_OK;
	} else if (str_startswith(reply, "pending")) {
		printf("%s\n", reply[7] == ' ' ? reply + 8 : reply + 7);
		code = VFIOCTL_EXIT_PENDING;
	} else {
		fprintf(stderr, "vfioctl: %s: %s\n", name, reply);
		code = VFIOCTL_EXIT_ERROR;
	}
out:
	free(reply);
	strbuf_free(&pending);
	if (ifd >= 0)
		close(ifd);
	if (rfd >= 0)
		close(rfd);
	free(replies);
	free(rundir);
	return code;
}

int
main(int argc, char **argv)
{
	hostroot_init(NULL);
	int timeout_s = VFIOCTL_TIMEOUT_S;
	bool as_json = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-json") == 0 || strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if ((strcmp(argv[i], "-timeout") == 0 || strcmp(argv[i], "--timeout") == 0) && i + 1 < argc) {
			char *end;
			long t = strtol(argv[++i], &end, 10);
			if (*end != '\0' || t <= 0 || t > 86400) {
				fprintf(stderr, "vfioctl: -timeout wants seconds (1 to 86400), not \"%s\"\n", argv[i]);
				return VFIOCTL_EXIT_ERROR;
			}
			timeout_s = (int)t;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-help") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			vfioctl_usage();
		} else {
			fprintf(stderr, "vfioctl: unknown option %s\n", argv[i]);
			vfioctl_usage();
		}
	}
	if (i >= argc)
		vfioctl_usage();
	if (strcmp(argv[i], "list") == 0 && i + 1 == argc)
		return vfioctl_list();
	/* -json may also follow the command: vfioctl NAME status -json */
	if (argc - i >= 2 && strcmp(argv[argc - 1], "-json") == 0) {
		as_json = true;
		argc--;
	}
	const char *name;
	if (vfioctl_is_command(argv[i])) {
		struct strv names = { 0 };
		vfioctl_names(&names);
		if (names.n > 1) {
			fprintf(stderr, "vfioctl: %zu supervisors run (", names.n);
			for (size_t k = 0; k < names.n; k++)
				fprintf(stderr, "%s%s", k ? ", " : "", names.v[k]);
			fprintf(stderr, "): name one, e.g. vfioctl %s %s\n", names.v[0], argv[i]);
			strv_free(&names);
			return VFIOCTL_EXIT_ERROR;
		}
		static char only[256];
		snprintf(only, sizeof(only), "%s", names.n == 1 ? names.v[0] : "vfio");
		name = only;
		strv_free(&names);
	} else {
		name = argv[i++];
		if (i >= argc)
			vfioctl_usage();
		struct verr nerr = { 0 };
		if (rundir_check_name(name, &nerr) < 0) {
			fprintf(stderr, "vfioctl: %s\n", nerr.msg);
			return VFIOCTL_EXIT_ERROR;
		}
	}
	return vfioctl_command(name, argv + i, argc - i, timeout_s, as_json);
}
