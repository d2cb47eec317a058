/* status.json in the runtime directory: what the supervisor is doing, what
 * is attached, which host changes are in force. Rewritten atomically (a
 * temporary file renamed over it) so a reader never sees half of it. */
#ifndef VFIO_STATUS_H
#define VFIO_STATUS_H

#include <jansson.h>

#include "verr.h"

/* Write status to dir/status.json (status is not stolen). */
int status_write(const char *dir, const json_t *status, struct verr *err);

#endif
