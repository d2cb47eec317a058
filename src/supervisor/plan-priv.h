/* Internals shared by the plan's files (plan.c: the machine; plan-devices.c:
 * PCI and USB passthrough; plan-net.c: the network). Tests may use them. */
#ifndef VFIO_PLAN_PRIV_H
#define VFIO_PLAN_PRIV_H

#include "plan.h"

/* Root ports live on slots 0x1c-0x1e of pcie.0, eight functions each (0x1f
 * is the q35 ICH9 LPC/SATA/SMBus slot). */
#define PLAN_MAX_ROOT_PORTS 24
#define PLAN_SPARE_PORTS 4
/* The q35 built-in AHCI controller has six ports (ide.0 - ide.5). */
#define PLAN_AHCI_PORTS 6
/* QEMU 7.2's q35 machine (pc-q35-7.2) takes at most 288 vCPUs. */
#define PLAN_MAX_VCPUS 288

struct plan_pci {
	const struct pci_device *dev;
	bool cold;               /* display card function: on the command line */
	bool xvga;               /* the one function that gets x-vga=on */
	int port;                /* rpN it goes into */
	int guest_fn;            /* cold-plugged: its function in the guest slot */
	int slot_functions;      /* cold-plugged: functions in that guest slot */
};

struct plan_ctx {
	struct plan *plan;
	const struct options *opts;
	const struct host_snapshot *snap;
	struct plan_pci *pci;    /* devices passed through, by slot and function */
	size_t n_pci;
	bool *passed;            /* by snapshot index: passed through */
	const struct usb_device **usb;
	size_t n_usb;
	int n_ports;             /* root ports assigned so far */
	bool ports_exhausted;    /* refused once already */
	bool tcg;
	/* the network, decided by plan_net_prepare() */
	bool net_user, net_tap;
	int nic_port;
	bool create_bridge, create_tap;
	/* Rundown lines of passthrough and network, decided first but told
	 * after the machine. */
	struct strv later;
	struct strv told;        /* pre-flight rules told once for the whole host */
};

/* Pre-flight problems: errors, or warnings under -force. */
void plan_check_failed(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Problems -force cannot help: the plan cannot be expressed at all. */
void plan_refuse(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_warn(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_say(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_say_later(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_arg(struct plan_ctx *c, const char *arg);
void plan_argf(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_change(struct plan_ctx *c, const char *action, const char *target, const char *from,
    const char *to, json_t *args);
/* A change from its kind's constructor (devown_change_new(), ...). */
void plan_change_add(struct plan_ctx *c, json_t *change);
void plan_qmp(struct plan_ctx *c, const char *execute, json_t *arguments, json_t *fd);
/* A value inside a QEMU option list: commas doubled. Allocated. */
char *plan_qemu_escape(const char *s);
/* The next free root port number (1-based), or 0 when none is left (refused). */
int plan_take_port(struct plan_ctx *c);

const struct pci_device *plan_pci_lookup(const struct host_snapshot *snap, const char *address);
const struct cpu_thread *plan_cpu_lookup(const struct host_snapshot *snap, int cpu);
const struct net_iface *plan_iface_lookup(const struct host_snapshot *snap, const char *name);
const struct host_file *plan_file_lookup(const struct host_snapshot *snap, const char *path);

/* plan.c: pre-flight findings (preflight.h) as errors (-force: warnings)
 * and warnings, each prefixed (e.g. "-pci: "); a rule for the whole host
 * is told once. */
struct preflight_findings;
void plan_findings(struct plan_ctx *c, const char *prefix, struct preflight_findings *f);

/* plan.c: a file the user named must exist and be readable. */
const struct host_file *plan_need_file(struct plan_ctx *c, const char *flag, const char *path);

/* plan-virtual.c */
void plan_storage(struct plan_ctx *c);           /* disks and CDs */
void plan_kernel(struct plan_ctx *c);            /* -kernel, -initrd, -append */
void plan_display(struct plan_ctx *c);           /* serial, display rules */
void plan_companions(struct plan_ctx *c);        /* xHCI, SPICE, Looking Glass, agent, audio, TPM */
void plan_companion_changes(struct plan_ctx *c); /* -isolate, lg-shm-create, user-audio-start, swtpm */
/* The user QEMU runs as: -user, else the one behind sudo, else root (0). */
void plan_qemu_user(const struct plan_ctx *c, int *uid, int *gid);
bool plan_gpu_passed(const struct plan_ctx *c);  /* a display function is cold-plugged */
void plan_qemu_user_fact(struct plan_ctx *c);    /* plan->qemu_user and its rundown line */
void plan_sandbox(struct plan_ctx *c);           /* -sandbox PLAN_SANDBOX */

/* plan-devices.c */
void plan_devices_match(struct plan_ctx *c);     /* -pci/-usb matching, viability, devices JSON */
void plan_devices_changes(struct plan_ctx *c);   /* module-load, pci-bind-vfio, dev-chown */
void plan_devices_cmdline(struct plan_ctx *c);   /* cold-plugged display functions */
void plan_devices_qmp(struct plan_ctx *c);       /* vfio-pci and usb-host device_add */
void plan_node_changes(struct plan_ctx *c);      /* dev-chown of /dev/kvm, /dev/vfio/vfio, block disks */

/* plan-net.c */
void plan_net_prepare(struct plan_ctx *c);       /* the original's rules, MAC, root port */
void plan_net_changes(struct plan_ctx *c);       /* bridge-create, tap-create */
void plan_net_qmp(struct plan_ctx *c);           /* getfd / netdev_add / device_add */
/* Where the guest's MAC came from. */
enum plan_mac_source { PLAN_MAC_FLAG, PLAN_MAC_HOST, PLAN_MAC_DERIVED };
/* -mac when given; else 52:54:00 plus the last three bytes of host_mac (the
 * bridged interface's) when there is one; else 52:54:00 plus three bytes
 * derived from machine_id ("" when the host has none) and the guest name:
 * the same guest gets the same MAC on the same host every run. */
enum plan_mac_source plan_guest_mac(char out[18], const char *flag_mac, const char *host_mac,
    const char *machine_id, const char *name);

#endif
