/* Errors that return and explain: a negative errno-style code plus a message
 * for the user that names the thing, what is wrong and what to do. */
#ifndef VFIO_VERR_H
#define VFIO_VERR_H

#include <stddef.h>

struct verr {
	int code;          /* negative errno, 0 when unset */
	char msg[1024];
};

/* Fill err (if not NULL) and return code (which should be a negative errno). */
int verr_set(struct verr *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Put "prefix: " in front of the message already there. */
int verr_prefix(struct verr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void verr_clear(struct verr *err);

#endif
