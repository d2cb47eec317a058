/* What follows QEMU's letting go of a device (DEVICE_DELETED, however late,
 * asked for or ejected by the guest, or found gone by a supervisor that
 * adopts the guest): what the device held on the host goes back. In order:
 * its network backend (netdev_del), then the host changes journaled for it
 * (journal "for": the vfio-pci bind and the group node of `pci add`, the tap
 * of `net add bridge=`, a USB device's node), newest first, and for a host
 * PCI device the bind the start made for -pci. Binds run in a child (the
 * loop never waits); whoever waits for the removal hears the outcome through
 * devices_released(). */
#ifndef VFIO_RELEASE_H
#define VFIO_RELEASE_H

#include <event2/event.h>
#include <jansson.h>

#include "devices.h"

struct journal;
struct qmp;

struct release_env {
	struct event_base *base;
	struct qmp **qmp;            /* the session's connection (NULL or closed: no netdev_del) */
	struct journal *journal;
	int bindtimeout_ms;
	void (*changed)(void *arg);  /* a change was given back: status.json is stale */
	void *arg;
};

struct release;

struct release *release_new(const struct release_env *env);
/* Stop every release under way (the end of the run: what they had not
 * given back yet stays in the journal for teardown). NULL is fine. */
void release_free(struct release *r);

/* The devices_release_fn for devices.release (arg: the struct release). */
void release_device(void *arg, struct devices *d, const char *id, const json_t *args);

/* Releases under way, for status. */
size_t release_busy(const struct release *r);

#endif
