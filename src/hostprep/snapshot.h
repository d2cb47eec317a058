/* The host snapshot: everything the plan needs to know about the host, read
 * once, read-only, under the host root. The plan is a pure function of the
 * options and this snapshot, so the dry run, -json and the tests see exactly
 * what -run will do. */
#ifndef VFIO_SNAPSHOT_H
#define VFIO_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "qemuuser.h"
#include "verr.h"

struct pci_device {
	char address[16];        /* "0000:01:00.0" */
	char slot[16];           /* "0000:01:00": functions of one card share it */
	unsigned domain, bus, dev;  /* the address as numbers (sort order) */
	unsigned function;
	unsigned vendor, device;
	unsigned class_code;     /* 24-bit class/subclass/prog-if, e.g. 0x030000 */
	char line[512];          /* exactly the line `lspci -Dnn` prints for it */
	char driver[64];         /* "" when no driver is bound */
	int iommu_group;         /* -1 when it has none */
	bool boot_vga;
	bool is_bridge;          /* class 0x0604 (or any 0x06xx that bridges) */
	bool is_display;         /* class 0x03xx */
	/* How the kernel can reset it (sysfs reset_method, kernel 5.15+): the
	 * methods in the order it tries them ("flr bus"); "" on a kernel older
	 * than 5.15, which has only `reset`. no_reset when it has none: neither
	 * file exists, or reset_method is empty (the user disabled them). */
	bool no_reset;
	char reset_method[64];
};

struct usb_device {
	char sysname[32];        /* port path as sysfs names it: "1-4.2"; "usb1" for a root hub */
	unsigned bus, devnum;
	unsigned vendor, product;
	char line[512];          /* "Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver" */
	char manufacturer[128];  /* the device's own strings, "" when absent */
	char product_name[128];
	char serial[128];
	bool is_root_hub;
	bool is_hub;             /* bDeviceClass 9 */
	char controller[16];     /* PCI address of the host controller it hangs off, "" if unknown */
};

struct cpu_thread {
	int cpu;                 /* logical CPU number */
	int core_id, package_id;
	int sibling;             /* the other SMT thread of the same core, -1 when none */
	bool online;
};

struct hugepage_pool {
	uint64_t page_kib;       /* 2048 or 1048576 */
	uint64_t nr, free_pages;
};

struct hugetlbfs_mount {
	char path[256];
	uint64_t page_kib;       /* from pagesize= (default: the default hugepage size) */
};

struct net_iface {
	char name[32];
	char mac[18];            /* "aa:bb:cc:dd:ee:ff" */
	char master[32];         /* bridge it is enslaved to, "" when none */
	bool is_bridge, is_tap, up;
};

/* A path the user named (image, iso, bios, romfile, kernel...). User paths
 * are host paths: an absolute one is looked up joined to the host root (so a
 * test places images in its fixture tree); a relative one is relative to the
 * cwd and used as is. A symlink (/dev/disk/by-id/...) is followed inside the
 * host root to find the block device it names. */
struct host_file {
	char *path;              /* as given; absolute or relative to the cwd */
	bool exists, readable, is_block;
	unsigned uid, gid, mode; /* owner and permission bits (when it exists): can QEMU's user open it */
	char disk_serial[64];    /* for a block device: /sys/block/DISK/device/serial without the
				  * blanks drives pad it with, else "" */
	char disk_name[32];      /* "nvme0n1" for /dev/nvme0n1p2 */
};

/* A device node QEMU's user may have to open itself, as stat() saw it. */
struct host_node {
	bool exists;
	unsigned uid, gid, mode;
};

struct firmware_file {
	char code[256];          /* OVMF_CODE path (under the real root, as QEMU sees it) */
	char vars[256];          /* matching OVMF_VARS template, "" when none */
	bool secboot;
	bool is_4m;              /* 4 MiB flash layout (preferred over the 2 MiB one) */
};

/* Something the host itself needs that hangs off a PCI device (the device
 * or one of its bridges): a mounted filesystem or active swap (its block
 * device's sysfs path, through dm/md/partitions), the interface of the
 * default route, a keyboard. One entry per (PCI device, thing). */
enum host_need_kind {
	HOST_NEED_STORAGE,       /* a mounted filesystem or swap: losing it breaks the host */
	HOST_NEED_ROUTE,         /* carries the default route */
	HOST_NEED_KEYBOARD,      /* a keyboard (index: which one of n_keyboards) */
};

struct host_need {
	char pci[16];            /* "0000:02:00.0" */
	enum host_need_kind kind;
	int index;               /* HOST_NEED_KEYBOARD: the keyboard's number */
	char what[160];          /* "/ (nvme0n1p2)", "swap /dev/sda3", "enp3s0", "Ducky One2 Mini (input5)" */
};

/* A socket some process listens on (or a bound UDP port), from
 * /proc/net/{tcp,tcp6,udp,udp6}: a -portforward host port QEMU cannot bind. */
struct host_port {
	char proto[4];           /* "tcp" or "udp" */
	unsigned port;
};

/* What the QEMU binary offers, asked once per binary and kept in a cache
 * (qemucaps.c): its audio drivers, display types, devices (modules
 * included) and whether SPICE works. */
enum qemu_caps_state {
	QEMU_CAPS_UNKNOWN = 0,   /* not asked (tests, -iommugroups) or QEMU would not say */
	QEMU_CAPS_KNOWN,
	QEMU_CAPS_NO_BINARY,     /* the binary is not there or not executable */
};

struct qemu_caps {
	enum qemu_caps_state state;
	char *path;              /* the binary as found (PATH resolved), NULL when not found */
	bool audiodevs_known, displays_known, devices_known;
	struct strv audiodevs;   /* -audiodev help */
	struct strv displays;    /* -display help */
	struct strv devices;     /* -device help: every device name, modules loaded */
	int spice;               /* -spice help: 1 works, 0 "spice support is disabled", -1 unknown */
	int sandbox;             /* -sandbox on (seccomp) is built in: 1, 0, -1 unknown */
	bool from_cache;
};

/* A device another guest has, as its supervisor's status.json in
 * /run/vfio/GUEST says: attached to it (hostdev-..., usb-PORT), bound to
 * vfio-pci for it, or its node given to that guest's QEMU. Read by
 * snapshot_claims_read(); judged by passthrough_pci_claim() and
 * passthrough_usb_claim(). */
struct host_claim {
	char guest[72];          /* the other guest's name */
	char pci[16];            /* "0000:02:00.0", or "" */
	char usb_port[32];       /* "1-4.2", or "" */
	char node[48];           /* "/dev/bus/usb/001/004", "/dev/vfio/11", or "" */
};

struct host_snapshot {
	struct pci_device *pci;          /* sorted by address, as lspci lists them */
	size_t n_pci;
	struct usb_device *usb;          /* by bus, then device number; root hubs included */
	size_t n_usb;
	struct cpu_thread *cpus;         /* by CPU number */
	size_t n_cpus;
	struct hugepage_pool *hugepools; /* by page size; none when the kernel has no hugepages */
	size_t n_hugepools;
	struct hugetlbfs_mount *hugemounts; /* in /proc/mounts order */
	size_t n_hugemounts;
	uint64_t default_hugepage_kib;
	struct net_iface *ifaces;        /* by name */
	size_t n_ifaces;
	struct firmware_file *firmware;  /* well-known OVMF locations found, best first:
					  * 4M before 2M, plain before secboot */
	size_t n_firmware;
	struct host_file *files;         /* every path named in the options (images, isos, bios,
					  * biosvars, romfile, kernel, initrd, hugepages mount) */
	size_t n_files;

	uint64_t mem_total_kib, mem_available_kib;
	bool iommu_enabled;              /* /sys/class/iommu has an entry */
	size_t n_iommu_groups;           /* entries in /sys/kernel/iommu_groups */
	char cpu_vendor[16];             /* "GenuineIntel", "AuthenticAMD" */
	char *kernel_cmdline;            /* /proc/cmdline */
	char kernel_release[64];         /* /proc/sys/kernel/osrelease */
	bool kvm;                        /* /dev/kvm exists */
	bool kvm_usable;                 /* KVM can run a guest (snapshot_kvm_probe()); a fixture's
					  * plain-file /dev/kvm counts as usable */
	char kvm_unusable[256];          /* why not, naming the check, when kvm && !kvm_usable */
	bool vfio_pci_loaded;            /* /sys/bus/pci/drivers/vfio-pci exists */
	bool vfio_pci_available;         /* loaded, or a module for the running kernel exists */
	bool zfs_loaded;                 /* /sys/module/zfs */
	bool vhost_net;                  /* /dev/vhost-net */
	struct host_node kvm_node;       /* /dev/kvm */
	struct host_node vfio_node;      /* /dev/vfio/vfio, the VFIO container */
	char machine_id[33];             /* /etc/machine-id, "" when the host has none */
	/* The virtual consoles the framebuffer console is bound to
	 * (display_fbcon_scan()): -killx unbinds these from the boot GPU. */
#define SNAPSHOT_MAX_FBCONS 8
	char fbcons[SNAPSHOT_MAX_FBCONS][48]; /* "/sys/class/vtconsole/vtconN" */
	size_t n_fbcons;
	bool network_manager;            /* NetworkManager runs: /run/NetworkManager/NetworkManager.pid
					  * names a live /proc/PID whose comm is NetworkManager */

	/* Interrupt remapping: vfio_iommu_type1 refuses a device unless the
	 * kernel remaps interrupts or allow_unsafe_interrupts is set (QEMU:
	 * "Failed to set iommu for container: Operation not permitted"). */
	int intremap;                    /* 1: the kernel remaps interrupts (an "IR-" irq chip), -1: it does
					  * not, 0: unknown (no /sys/kernel/irq) */
	int intremap_hw;                 /* Intel VT-d: 1 every DMAR unit offers it (ecap bit 3), -1 one does
					  * not, 0 unknown (AMD, no DMAR units) */
	bool unsafe_interrupts;          /* allow_unsafe_interrupts is on (vfio_iommu_type1 or iommufd,
					  * loaded or set for loading: cmdline, modprobe.d) */
	char unsafe_interrupts_from[128]; /* where it is set, for the rundown */

	/* Things the host needs, by the PCI devices they hang off. */
	struct host_need *needs;
	size_t n_needs;
	size_t n_keyboards;              /* keyboards found (/sys/class/input) */

	/* Limits QEMU inherits from the supervisor: VFIO locks guest RAM. */
	bool memlock_capped;             /* the supervisor may not raise RLIMIT_MEMLOCK (no CAP_SYS_RESOURCE)
					  * and its hard limit is finite: */
	uint64_t memlock_max;            /* that hard limit, bytes */
	uint64_t shm_total_kib, shm_avail_kib; /* /dev/shm (Looking Glass); 0 when unknown */

	struct host_port *ports;         /* in use on the host, by protocol and port */
	size_t n_ports;
	unsigned unprivileged_port_start; /* net.ipv4.ip_unprivileged_port_start (default 1024) */

	struct qemu_caps qemu;           /* filled by qemucaps_read(), not by snapshot_take() */

	/* The environment, captured here so the plan stays pure. */
	char *display;                   /* $DISPLAY, NULL when unset or empty */
	char *wayland_display;
	int sudo_uid, sudo_gid;          /* -1 when not started through sudo */
	char *sudo_user;                 /* $SUDO_USER, NULL when unset */
	bool euid_root;                  /* the supervisor runs as root: QEMU must not */
	struct host_claim *claims;       /* devices the running guests have (snapshot_claims_read) */
	size_t n_claims;
	struct qemuuser_db qemu_user;    /* vfio's own user for QEMU (qemuuser.h) */
};

struct strv;

/* Read everything under the host root. Fails only on what makes a plan
 * impossible to compute (unreadable PCI devices, CPUs or /proc/meminfo);
 * missing pieces (no IOMMU, no USB, no hugepages, no firmware) are recorded
 * as such. files are the paths the user named (options_host_files()), each
 * recorded once; NULL for none. Program data is read from
 * the real root, never the host root: pci.ids (through libpci), the udev hwdb
 * and usb.ids. On the real root only, libusb fills USB strings sysfs lacks. */
int snapshot_take(struct host_snapshot *snap, const struct strv *files, struct verr *err);
void snapshot_free(struct host_snapshot *snap);

/* The devices every guest with a runtime directory has (struct host_claim),
 * but the guest named except (the caller's own: what it has is its own
 * business; NULL: every guest), replacing what snap held; each status.json
 * opened without following a link (safepath.h). snapshot_take() calls it;
 * the control FIFO and USB hotplug call it themselves, for their guest. */
void snapshot_claims_read(struct host_snapshot *snap, const char *except);

/* Lookups used by the plan. */
const struct pci_device *snapshot_pci_find(const struct host_snapshot *snap, const char *address);
const struct host_file *snapshot_file_find(const struct host_snapshot *snap, const char *path);
const struct net_iface *snapshot_iface_find(const struct host_snapshot *snap, const char *name);
const struct cpu_thread *snapshot_cpu_find(const struct host_snapshot *snap, int cpu);
const struct usb_device *snapshot_usb_find(const struct host_snapshot *snap, unsigned bus, unsigned devnum);
/* Whether the kernel command line has param: "intel_iommu=on" matches that
 * word exactly; "intel_iommu" matches it with any value or none. */
bool snapshot_cmdline_has(const struct host_snapshot *snap, const char *param);

/* The text a -pci regex is matched against: the `lspci -Dnn` line (the rule
 * is passthrough_pci_matches(); USB's is passthrough_usb_matches()). */
const char *pci_match_text(const struct pci_device *dev);
/* One USB device read as usb_scan() reads each (lsusb line, strings, hub
 * flags, controller; libusb strings on the real root), from its sysfs path
 * as a host path ("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4"): for
 * devices plugged in after the snapshot. -ENODEV when it is already gone. */
int usb_device_read(const char *syspath, struct usb_device *out, struct verr *err);

/* The per-area readers snapshot_take() calls; each appends to snap. */
int pci_scan(struct host_snapshot *snap, struct verr *err);
/* The same for only the devices whose addresses are in only (a hot-add
 * needs its device and that device's IOMMU group, not the whole host). */
struct strv;
int pci_scan_only(struct host_snapshot *snap, const struct strv *only, struct verr *err);
/* Appends addr and every other device of its IOMMU group, for pci_scan_only. */
void pci_group_peers(const char *addr, struct strv *out);
int usb_scan(struct host_snapshot *snap, struct verr *err);
int cpu_scan(struct host_snapshot *snap, struct verr *err);
int memory_scan(struct host_snapshot *snap, struct verr *err);
/* Its part for the locked-memory limit only (memlock_max, memlock_capped). */
void memory_memlock_scan(struct host_snapshot *snap);
int iommu_scan(struct host_snapshot *snap, struct verr *err);
/* iommu.c: an IOMMU is active (/sys/class/iommu has an entry). */
bool iommu_active(void);
int firmware_scan(struct host_snapshot *snap, struct verr *err);
int netinfo_scan(struct host_snapshot *snap, struct verr *err);
/* intremap.c: interrupt remapping and allow_unsafe_interrupts. */
int intremap_scan(struct host_snapshot *snap, struct verr *err);
/* hostneeds.c: mounted filesystems, swap, the default route, keyboards. */
int hostneeds_scan(struct host_snapshot *snap, struct verr *err);
/* What the device rules (preflight.h) need beyond the PCI devices, and the
 * locked-memory limit: a hot-add that scanned only its device's group calls
 * this, so the rules see the same host the plan saw. */
int snapshot_device_facts(struct host_snapshot *snap, struct verr *err);

#endif
