/* Pre-flight: what the kernel and QEMU would refuse, known from the host
 * snapshot before anything on the host changes. One function per rule;
 * each adds findings (a refusal, which -force turns into a warning, or a
 * warning) with a message that names the device, what is wrong and the
 * fix. The device rules need only the snapshot and the device, so the plan
 * (per -pci device) and `pci add` (control-cmds.c) apply the same ones.
 * The list of refusals and where each is caught is in docs/architecture.md. */
#ifndef VFIO_PREFLIGHT_H
#define VFIO_PREFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"
#include "verr.h"

enum preflight_level {
	PREFLIGHT_WARN,
	PREFLIGHT_REFUSE,        /* an error; -force (or `force`) makes it a warning */
};

struct preflight_finding {
	enum preflight_level level;
	const char *rule;        /* the rule's name: "intremap", "reset", ... */
	bool host_wide;          /* the same for every device: tell it once */
	char msg[1024];
};

struct preflight_findings {
	struct preflight_finding *v;
	size_t n, cap;
};

void preflight_findings_free(struct preflight_findings *f);

/* --- device rules: (snapshot, device) --------------------------------------- */

/* vfio_iommu_type1 attaches a group only when the kernel remaps interrupts
 * or allow_unsafe_interrupts is on: a refusal naming the firmware setting,
 * the kernel parameter or the module parameter and its risk. */
void preflight_intremap(const struct host_snapshot *snap, const struct pci_device *dev,
    struct preflight_findings *out);
/* A device the kernel cannot reset (no reset_method), or an AMD GPU that
 * needs vendor-reset: a warning naming the method the kernel will use. */
void preflight_reset(const struct host_snapshot *snap, const struct pci_device *dev, struct preflight_findings *out);
/* A device the host needs: the disk controller of a mounted filesystem or
 * active swap (a refusal), the NIC of the default route, the USB controller
 * of every keyboard (warnings). */
void preflight_host_needs(const struct host_snapshot *snap, const struct pci_device *dev,
    struct preflight_findings *out);

/* Every device rule, in order. */
void preflight_pci_device(const struct host_snapshot *snap, const struct pci_device *dev,
    struct preflight_findings *out);
/* The device rules and the locked-memory limit for a guest of memory_mib
 * (preflight_memlock(): the device makes QEMU lock it all), for a caller
 * with a force switch (`pci add ... force`): returns 0 with the warnings
 * (forced refusals among them) appended to warnings, or -EPERM with the
 * first refusal in err. */
int preflight_pci_check(const struct host_snapshot *snap, const struct pci_device *dev, uint64_t memory_mib,
    bool force, struct strv *warnings, struct verr *err);

/* --- guest rules --------------------------------------------------------------- */

/* QEMU locks all guest RAM when a VFIO device is attached: the supervisor
 * must be able to raise RLIMIT_MEMLOCK to this many bytes for it. */
uint64_t preflight_memlock_need(uint64_t memory_mib);
void preflight_memlock(const struct host_snapshot *snap, uint64_t memory_mib, struct preflight_findings *out);

/* The QEMU binary must have what the command line asks of it: flag is the
 * vfio flag that asked ("-spice"); kind is "device", "audiodev", "display"
 * or "spice" (name NULL). */
void preflight_qemu_has(const struct host_snapshot *snap, const char *flag, const char *kind, const char *name,
    struct preflight_findings *out);

/* A -portforward host port QEMU must bind as its user (uid): in use on the
 * host, or privileged for a user QEMU. */
void preflight_host_port(const struct host_snapshot *snap, const char *proto, unsigned port, int uid,
    struct preflight_findings *out);

/* The Looking Glass shared memory must fit in /dev/shm and in RAM. */
void preflight_lgsize(const struct host_snapshot *snap, uint64_t lgsize_mib, struct preflight_findings *out);

#endif
