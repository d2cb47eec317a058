/* struct verr helpers: every module reports failures through these. */
#include "verr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
verr_set(struct verr *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}

int
verr_prefix(struct verr *err, const char *fmt, ...)
{
	if (err == NULL)
		return 0;
	char prefix[512], old[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* A prefix and message that do not fit are cut, never overflowed. */
	int n = snprintf(err->msg, sizeof(err->msg), "%s: ", prefix);
	if (n >= 0 && (size_t)n < sizeof(err->msg))
		memccpy(err->msg + n, old, '\0', sizeof(err->msg) - (size_t)n);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return err->code;
}

void
verr_clear(struct verr *err)
{
	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
