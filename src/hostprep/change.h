/* Host changes: every change the plan lists is a reversible action with
 * prepare/apply/undo. The journal records the change and what prepare() saved
 * (fsync'd) before apply() runs, so teardown, error paths and `vfio -restore`
 * after a crash can undo from the journal alone, newest first.
 *
 * A change is a JSON object as the plan emits it:
 *   {"action": "pci-bind-vfio", "target": "0000:01:00.0",
 *    "from": "nvidia", "to": "vfio-pci", "args": {...}}
 * ("from", "to" and "args" are optional). */
#ifndef VFIO_CHANGE_H
#define VFIO_CHANGE_H

#include <jansson.h>
#include <stdbool.h>

#include "verr.h"

struct change_ops {
	const char *action;
	/* Read the host state this change will alter and return what undo needs
	 * (*saved, a new JSON value, may be NULL). Runs before journaling. */
	int (*prepare)(const json_t *change, json_t **saved, struct verr *err);
	/* Make the change. May be interrupted at any point by a crash. */
	int (*apply)(const json_t *change, const json_t *saved, struct verr *err);
	/* Put back what saved describes. Must be idempotent and safe when apply
	 * never ran or ran halfway. */
	int (*undo)(const json_t *change, const json_t *saved, struct verr *err);
	/* apply/undo can block in the kernel (unbinding a GPU): run them in a
	 * child process with a deadline, never in the event loop. */
	bool may_block;
	/* The deadline of a blocking apply or undo, in ms: -bindtimeout
	 * (bindtimeout_ms, never <= 0 here) plus the waits of the kind's own
	 * that report their own failure (a display manager stopping, the
	 * group's /dev/vfio/N appearing), so those are not cut off as a hang.
	 * NULL: -bindtimeout itself. */
	int (*deadline_ms)(const json_t *change, const json_t *saved, int bindtimeout_ms);
};

#define CHANGE_BINDTIMEOUT_MS_DEFAULT 5000	/* -bindtimeout's default, 5 s */

/* The table of every action (change.c). NULL when unknown. */
const struct change_ops *change_find(const char *action);

/* The deadline a blocking apply or undo of this change gets: ops->deadline_ms
 * given -bindtimeout (bindtimeout_ms <= 0: the default). */
int change_deadline_ms(const struct change_ops *ops, const json_t *change, const json_t *saved,
    int bindtimeout_ms);

/* Convenience accessors on a change object ("" when absent). */
const char *change_str(const json_t *change, const char *key);
const char *change_arg_str(const json_t *change, const char *key);
json_int_t change_arg_int(const json_t *change, const char *key, json_int_t dflt);

#endif
