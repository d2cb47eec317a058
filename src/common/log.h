/* One logging module for the whole program: levels, colour only on a TTY,
 * libevent's own messages routed through it. Libraries under src/qmp and
 * src/hostprep may log at debug level but report errors through struct verr. */
#ifndef VFIO_LOG_H
#define VFIO_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Messages above `level` are dropped; `color` adds ANSI colour to the prefix. */
void log_init(enum log_level level, bool color);
enum log_level log_get_level(void);
bool log_get_color(void);
void log_route_libevent(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vlog(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Broken invariants and out-of-memory only: print and abort. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
