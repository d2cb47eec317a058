/* The one logging module: everything the program says on stderr goes here. */
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static bool log_color;

static const struct {
	const char *prefix;
	const char *color;
} log_levels[] = {
	[LOG_LEVEL_ERROR] = { "error", "\033[1;31m" },
	[LOG_LEVEL_WARN] = { "warning", "\033[1;33m" },
	[LOG_LEVEL_INFO] = { "", "" },
	[LOG_LEVEL_DEBUG] = { "debug", "\033[2m" },
};

void
log_init(enum log_level level, bool color)
{
	log_level = level;
	log_color = color;
	const char *env = getenv("VFIO_DEBUG");
	if (env != NULL && *env != '\0' && strcmp(env, "0") != 0)
		log_level = LOG_LEVEL_DEBUG;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

bool
log_get_color(void)
{
	return log_color;
}

void
log_vlog(enum log_level level, const char *fmt, va_list ap)
{
	if (level > log_level)
		return;
	const char *prefix = log_levels[level].prefix;
	if (*prefix != '\0') {
		if (log_color)
			fprintf(stderr, "%s%s:\033[0m ", log_levels[level].color, prefix);
		else
			fprintf(stderr, "%s: ", prefix);
	}
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

#define LOG_FN(name, level)                        \
	void name(const char *fmt, ...)            \
	{                                          \
		va_list ap;                        \
		va_start(ap, fmt);                 \
		log_vlog(level, fmt, ap);          \
		va_end(ap);                        \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warnx, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fatal: %s: %s\n", buf, strerror(saved));
	abort();
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void
log_libevent_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

void
log_route_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
