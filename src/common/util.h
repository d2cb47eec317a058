/* Allocation that cannot fail (out-of-memory is fatal), string vectors and a
 * growable string buffer: the small pieces every module needs. */
#ifndef VFIO_UTIL_H
#define VFIO_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A NULL-terminated vector of owned strings (an argv). */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_push(struct strv *sv, const char *s);
void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_free(struct strv *sv);

/* A growable NUL-terminated buffer. */
struct strbuf {
	char *s;
	size_t len, cap;
};
void strbuf_add(struct strbuf *sb, const char *s, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *strbuf_steal(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);

/* Quote one word for a POSIX shell only when it needs it. */
void shell_quote(struct strbuf *sb, const char *word);

/* Milliseconds on the monotonic clock, and a sleep that resumes after a
 * signal. The sleep is for child processes and bounded waits outside the
 * event loop only: the supervisor's loop never sleeps. */
long long time_now_ms(void);
void time_sleep_ms(long ms);

/* write() all of buf, resuming after EINTR and short writes: 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* Copy everything readable from in to out: 0 or -errno. */
int fd_copy(int in, int out);

bool str_startswith(const char *s, const char *prefix);
/* Strip trailing whitespace/newlines in place. */
char *str_rstrip(char *s);

#endif
