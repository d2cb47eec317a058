/* The plan: a pure function of the options and the host snapshot. It returns
 * the QEMU argv, the QMP commands to send after start, in order, and the host
 * changes, in order (device-node ownership for QEMU's user included), and
 * the facts the run needs as typed fields: -run does exactly this, the dry
 * run and -json print exactly this, and nothing after the plan reads argv
 * back. It touches nothing. */
#ifndef VFIO_PLAN_H
#define VFIO_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "options.h"
#include "snapshot.h"
#include "util.h"

/* Who QEMU runs as (plan_qemu_user_of()), as the dry run shows it and the
 * session switches to. Never root: as root, nobody behind sudo and no
 * -user, it is vfio's own user (qemuuser.h). */
struct plan_user {
	char *name;              /* NULL: as the supervisor, which is not root and cannot switch */
	int uid, gid;            /* -1 with name NULL */
	unsigned *groups;        /* its supplementary groups (options: qemu_groups) */
	size_t n_groups;
	const char *why;         /* "-user", "the user behind sudo", "vfio's own user" */
	bool create;             /* vfio's own user is not there yet: -run creates it first, with uid */
	bool sandbox;            /* the argv has QEMU's seccomp sandbox (PLAN_SANDBOX) */
};

/* QEMU's seccomp sandbox, as libvirt gives it: no obsolete system calls,
 * no setuid and friends, no fork/exec (helpers vfio does not use: the
 * bridge helper, tap scripts; taps come as descriptors), no changes to
 * scheduling or affinity (the supervisor pins QEMU's threads from outside). */
#define PLAN_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

struct plan {
	struct strv argv;        /* argv[0] is the QEMU binary */
	json_t *qmp;             /* array of {"execute": ..., "arguments": {...}}; a command that
	                          * passes a descriptor (getfd) also has "fd": {"open": "tap",
	                          * "name": TAP} or {"open": "vhost-net"}: what the session opens
	                          * and sends with it, never sent to QEMU itself */
	json_t *host_changes;    /* array of change objects (see change.h) */
	json_t *viewers;         /* companion-start changes for the user's viewers (remote-viewer,
	                          * looking-glass-client): the session applies them after `cont`,
	                          * when QEMU's SPICE socket exists; NULL or [] when none */
	json_t *devices;         /* {"pci": [...], "usb": [...]} as -json prints them */
	struct strv rundown;     /* human lines for the dry run, in order */
	struct strv warnings;
	struct strv errors;      /* non-empty: -run refuses (unless -force made them warnings) */
	int n_root_ports;        /* pcie-root-ports on the command line */
	int n_spare_ports;       /* of those, free for hot-add */
	char guest_mac[18];      /* the guest NIC's MAC, "" with -nonet */
	char *tap;               /* tap interface the guest NIC uses, NULL for user-mode or -nonet */
	bool accel_tcg;          /* the plan settled on tcg */
	uint64_t memory_mib;     /* guest RAM (-m): what QEMU locks for DMA */
	bool console_tty;        /* the serial console is this terminal (-serial mon:stdio); else
	                          * it is /run/vfio/NAME/console.log and QEMU gets no terminal */
	bool has_xhci;           /* a qemu-xhci "xhci" is on the command line */
	bool has_disk_image;     /* the guest boots from a virtual disk (-image): pci del of a
	                          * storage controller is then not taking its root away */
	/* What -run does with what an earlier run of -name left (adopt.h):
	 * start, adopt the running guest (everything above is then for its
	 * next start), give the leftovers back first, or refuse. */
	enum opt_running_how running;
	int running_qemu_pid;
	struct strv differences; /* adopting: the flags that differ from the running guest's */
	struct plan_user qemu_user;
	struct strv qemu_nodes;  /* the device nodes QEMU, as another user, opens itself (the
	                          * dev-chowns make sure it can): the session checks them as
	                          * that user before it starts QEMU */
};

/* Fill plan from opts and snap. Never fails: problems go into plan->errors. */
void plan_build(struct plan *plan, const struct options *opts, const struct host_snapshot *snap);
void plan_free(struct plan *plan);
/* The user QEMU runs as: -user, else the one behind sudo, else (as root)
 * vfio's own user; 0 when QEMU runs as the supervisor (not root). */
void plan_qemu_user_of(const struct options *opts, const struct host_snapshot *snap, int *uid, int *gid);

#endif
