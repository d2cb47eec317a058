/* Pre-flight rules: see preflight.h. Each rule reads only the snapshot (and
 * its arguments), so the dry run, -run and `pci add` decide alike. */
#include "preflight.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemucaps.h"
#include "util.h"

/* What spawn adds to guest RAM for the memlock limit: QEMU's own pinned
 * pages (ROMs, BARs mapped for DMA, the IOMMU's bookkeeping). */
#define PREFLIGHT_MEMLOCK_EXTRA_MIB 256

static void preflight_add(struct preflight_findings *out, enum preflight_level level, const char *rule,
    bool host_wide, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
preflight_add(struct preflight_findings *out, enum preflight_level level, const char *rule, bool host_wide,
    const char *fmt, ...)
{
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 4;
		out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
	}
	struct preflight_finding *f = &out->v[out->n++];
	f->level = level;
	f->rule = rule;
	f->host_wide = host_wide;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

void
preflight_findings_free(struct preflight_findings *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* --- interrupt remapping ------------------------------------------------------- */

void
preflight_intremap(const struct host_snapshot *snap, const struct pci_device *dev, struct preflight_findings *out)
{
	/* Without an IOMMU nothing is passed through at all (its own error);
	 * unknown (no /sys/kernel/irq) is not a reason to refuse. */
	if (!snap->iommu_enabled || snap->intremap >= 0)
		return;
	if (snap->unsafe_interrupts) {
		preflight_add(out, PREFLIGHT_WARN, "intremap", true, "%s: the kernel does not remap interrupts; it "
		    "is passed through only because allow_unsafe_interrupts is on (%s): the guest can forge "
		    "interrupts (MSIs) to the host; enable interrupt remapping to isolate it",
		    dev->address, snap->unsafe_interrupts_from);
		return;
	}
	const char *fix;
	bool cmdline_off = snapshot_cmdline_has(snap, "intremap=off") || snapshot_cmdline_has(snap, "nointremap");
	if (cmdline_off)
		fix = "remove intremap=off (or nointremap) from the kernel command line and reboot";
	else if (snap->intremap_hw < 0)
		fix = "the IOMMU (a DMAR unit) does not offer it: enable interrupt remapping in the firmware setup "
		    "(next to VT-d; some boards call it x2APIC or \"Interrupt Remapping\") and reboot";
	else if (snap->intremap_hw > 0)
		fix = "every DMAR unit offers it but the kernel did not enable it: check `dmesg | grep -i "
		    "remapping` for why (a firmware opt-out or a chipset erratum), update the firmware, and reboot";
	else
		fix = "enable interrupt remapping in the firmware setup (with the IOMMU: AMD-Vi or VT-d, and x2APIC) "
		    "and reboot";
	preflight_add(out, PREFLIGHT_REFUSE, "intremap", true, "%s: the kernel does not remap interrupts, so "
	    "vfio_iommu_type1 refuses to attach the device and QEMU fails with \"Failed to set iommu for container: "
	    "Operation not permitted\". Fix: %s. Or, accepting that the guest can then forge interrupts (MSIs) to the "
	    "host, put `options vfio_iommu_type1 allow_unsafe_interrupts=1` in "
	    "/etc/modprobe.d/vfio.conf (now: echo 1 > /sys/module/vfio_iommu_type1/parameters/"
	    "allow_unsafe_interrupts)", dev->address, fix);
}

/* --- reset --------------------------------------------------------------------- */

/* AMD GPUs whose own reset leaves them unusable until the host reboots, and
 * which the vendor-reset module (github.com/gnif/vendor-reset) resets:
 * Polaris 10/11/12, Vega 10/20, Navi 10/12/14, Arcturus (MI100). */
static const unsigned vendor_reset_ids[] = {
	0x67c0, 0x67c1, 0x67c2, 0x67c4, 0x67c7, 0x67d0, 0x67df, 0x67c8, 0x67c9, 0x67ca, 0x67cc, 0x67cf, 0x6fdf,
	0x67e0, 0x67e3, 0x67e8, 0x67eb, 0x67ef, 0x67ff, 0x67e1, 0x67e7, 0x67e9,
	0x6980, 0x6981, 0x6985, 0x6986, 0x6987, 0x6995, 0x6997, 0x699f,
	0x6860, 0x6861, 0x6862, 0x6863, 0x6864, 0x6867, 0x6868, 0x6869, 0x686a, 0x686b, 0x686c, 0x686d, 0x686e,
	0x686f, 0x687f,
	0x66a0, 0x66a1, 0x66a2, 0x66a3, 0x66a4, 0x66a7, 0x66af,
	0x7310, 0x7312, 0x7318, 0x7319, 0x731a, 0x731b, 0x731e, 0x731f, 0x1681,
	0x7340, 0x7341, 0x7347, 0x734f,
	0x7360, 0x7362,
	0x738c,
};

static bool
preflight_needs_vendor_reset(const struct pci_device *dev)
{
	if (dev->vendor != 0x1002 || !dev->is_display)
		return false;
	for (size_t i = 0; i < nitems(vendor_reset_ids); i++)
		if (vendor_reset_ids[i] == dev->device)
			return true;
	return false;
}

void
preflight_reset(const struct host_snapshot *snap, const struct pci_device *dev, struct preflight_findings *out)
{
	(void)snap;
	if (dev->no_reset) {
		preflight_add(out, PREFLIGHT_WARN, "reset", false, "%s cannot be reset: the kernel lists no reset "
		    "method for it (reset_method is empty or absent: no FLR, power-management or bus reset). QEMU will "
		    "say \"no available reset mechanism\"; the device keeps its state across guest reboots and may "
		    "not work again after the guest stops until the host reboots", dev->line);
		return;
	}
	if (preflight_needs_vendor_reset(dev) && !str_startswith(dev->reset_method, "device_specific")) {
		char now[128] = "the kernel's own reset";
		if (dev->reset_method[0] != '\0')
			snprintf(now, sizeof(now), "the kernel would reset it with '%.*s' (reset_method: %s)",
			    (int)strcspn(dev->reset_method, " "), dev->reset_method, dev->reset_method);
		preflight_add(out, PREFLIGHT_WARN, "reset", false, "%s is an AMD GPU with the reset bug: %s, which "
		    "leaves it unusable after the guest stops until the host reboots. Install the vendor-reset "
		    "module, load it at boot, and select it: echo device_specific > "
		    "/sys/bus/pci/devices/%s/reset_method", dev->line, now, dev->address);
	}
}

/* --- what the host needs ------------------------------------------------------- */

/* The things of kind behind dev, joined ("/ (nvme0n1p2), /boot (nvme0n1p1)");
 * at most a few, then how many more. */
static size_t
preflight_needs_list(const struct host_snapshot *snap, const struct pci_device *dev, enum host_need_kind kind,
    struct strbuf *sb, size_t *keyboards_seen)
{
	size_t n = 0;
	for (size_t i = 0; i < snap->n_needs; i++) {
		const struct host_need *h = &snap->needs[i];
		if (h->kind != kind || strcmp(h->pci, dev->address) != 0)
			continue;
		if (n < 4)
			strbuf_printf(sb, "%s%s", n ? ", " : "", h->what);
		n++;
		if (kind == HOST_NEED_KEYBOARD && keyboards_seen != NULL && h->index >= 0 && (size_t)h->index < 64)
			*keyboards_seen |= (size_t)1 << h->index;
	}
	if (n > 4)
		strbuf_printf(sb, " and %zu more", n - 4);
	return n;
}

void
preflight_host_needs(const struct host_snapshot *snap, const struct pci_device *dev, struct preflight_findings *out)
{
	struct strbuf sb = { 0 };
	if (preflight_needs_list(snap, dev, HOST_NEED_STORAGE, &sb, NULL) > 0)
		preflight_add(out, PREFLIGHT_REFUSE, "host-needs", false, "%s holds what the host runs on: %s. "
		    "Handing it to the guest pulls these from under the host (it hangs or loses data); leave it out "
		    "(narrow the regex or name other addresses)", dev->line, sb.s);
	strbuf_free(&sb);
	if (preflight_needs_list(snap, dev, HOST_NEED_ROUTE, &sb, NULL) > 0)
		preflight_add(out, PREFLIGHT_WARN, "host-needs", false, "%s carries the host's default route (%s): "
		    "the host loses its network (and any ssh session) while the guest has it", dev->line, sb.s);
	strbuf_free(&sb);
	size_t seen = 0;
	size_t n = preflight_needs_list(snap, dev, HOST_NEED_KEYBOARD, &sb, &seen);
	size_t all = snap->n_keyboards < 64 ? ((size_t)1 << snap->n_keyboards) - 1 : 0;
	if (n > 0 && all != 0 && seen == all)
		preflight_add(out, PREFLIGHT_WARN, "host-needs", false, "%s is the USB controller of every keyboard "
		    "the host has (%s): the host has no keyboard while the guest runs; keep one on another controller, "
		    "or make sure you can reach the host otherwise (ssh)", dev->line, sb.s);
	strbuf_free(&sb);
}

void
preflight_pci_device(const struct host_snapshot *snap, const struct pci_device *dev, struct preflight_findings *out)
{
	preflight_intremap(snap, dev, out);
	preflight_host_needs(snap, dev, out);
	preflight_reset(snap, dev, out);
}

int
preflight_pci_check(const struct host_snapshot *snap, const struct pci_device *dev, uint64_t memory_mib, bool force,
    struct strv *warnings, struct verr *err)
{
	struct preflight_findings f = { 0 };
	preflight_pci_device(snap, dev, &f);
	preflight_memlock(snap, memory_mib, &f);
	int r = 0;
	for (size_t i = 0; i < f.n && r == 0; i++) {
		if (f.v[i].level == PREFLIGHT_REFUSE && !force)
			r = verr_set(err, -EPERM, "%s; `force` as the last word attaches it anyway", f.v[i].msg);
	}
	for (size_t i = 0; i < f.n && r == 0; i++)
		strv_push(warnings, f.v[i].msg);
	preflight_findings_free(&f);
	return r;
}

/* --- locked memory --------------------------------------------------------------- */

uint64_t
preflight_memlock_need(uint64_t memory_mib)
{
	return (memory_mib + PREFLIGHT_MEMLOCK_EXTRA_MIB) << 20;
}

void
preflight_memlock(const struct host_snapshot *snap, uint64_t memory_mib, struct preflight_findings *out)
{
	uint64_t need = preflight_memlock_need(memory_mib);
	if (!snap->memlock_capped || snap->memlock_max >= need)
		return;
	preflight_add(out, PREFLIGHT_REFUSE, "memlock", true, "VFIO makes QEMU lock all guest memory (%" PRIu64
	    " MiB + %d MiB), but the locked-memory limit is %" PRIu64 " KiB and this process may not raise it (no "
	    "CAP_SYS_RESOURCE); QEMU would fail to map guest memory for the device (\"VFIO_MAP_DMA failed: Cannot "
	    "allocate memory\"). Raise the hard limit (ulimit -l, memlock in /etc/security/limits.conf, "
	    "LimitMEMLOCK= for a unit) to at least %" PRIu64 " KiB, or run vfio as root", memory_mib,
	    PREFLIGHT_MEMLOCK_EXTRA_MIB, snap->memlock_max / 1024, need / 1024);
}

/* --- what QEMU offers --------------------------------------------------------------- */

void
preflight_qemu_has(const struct host_snapshot *snap, const char *flag, const char *kind, const char *name,
    struct preflight_findings *out)
{
	const struct qemu_caps *q = &snap->qemu;
	if (q->state != QEMU_CAPS_KNOWN)
		return;
	bool missing;
	const char *what;
	if (strcmp(kind, "device") == 0) {
		missing = q->devices_known && !qemucaps_has(&q->devices, name);
		what = "device";
	} else if (strcmp(kind, "audiodev") == 0) {
		missing = q->audiodevs_known && !qemucaps_has(&q->audiodevs, name);
		what = "audio driver";
	} else if (strcmp(kind, "display") == 0) {
		missing = q->displays_known && !qemucaps_has(&q->displays, name);
		what = "display type";
	} else {
		missing = q->spice == 0;
		what = "SPICE support";
		name = "spice";
	}
	if (!missing)
		return;
	const char *package;
	const char *module = qemucaps_module_of(kind, name, &package);
	if (module != NULL)
		preflight_add(out, PREFLIGHT_REFUSE, "qemu-module", false, "%s: this QEMU (%s) has no %s '%s': its "
		    "module %s is not installed; install it (Debian: apt install %s) and run again", flag, q->path, what,
		    name, module, package);
	else
		preflight_add(out, PREFLIGHT_REFUSE, "qemu-module", false, "%s: this QEMU (%s) has no %s '%s' "
		    "(`%s -%s help` lists what it has); install a QEMU built with it", flag, q->path, what, name,
		    q->path, strcmp(kind, "spice") == 0 ? "spice" : kind);
}

/* --- host ports ------------------------------------------------------------------------ */

void
preflight_host_port(const struct host_snapshot *snap, const char *proto, unsigned port, int uid,
    struct preflight_findings *out)
{
	for (size_t i = 0; i < snap->n_ports; i++) {
		if (snap->ports[i].port == port && strcmp(snap->ports[i].proto, proto) == 0) {
			preflight_add(out, PREFLIGHT_REFUSE, "host-port", false, "-portforward %s:%u: host port %u/%s is "
			    "already in use on the host (`ss -lntup 'sport = %u'` shows by whom), so QEMU cannot forward "
			    "it (\"Could not set up host forwarding rule\"); pick another host port", proto, port, port,
			    proto, port);
			return;
		}
	}
	if (uid > 0 && port < snap->unprivileged_port_start)
		preflight_add(out, PREFLIGHT_REFUSE, "host-port", false, "-portforward %s:%u: QEMU runs as uid %d, which "
		    "may not bind ports below %u (net.ipv4.ip_unprivileged_port_start); pick a host port of %u or more",
		    proto, port, uid, snap->unprivileged_port_start, snap->unprivileged_port_start);
}

/* --- Looking Glass ------------------------------------------------------------------------ */

void
preflight_lgsize(const struct host_snapshot *snap, uint64_t lgsize_mib, struct preflight_findings *out)
{
	uint64_t kib = lgsize_mib * 1024;
	if (snap->shm_total_kib > 0 && kib > snap->shm_avail_kib)
		preflight_add(out, PREFLIGHT_REFUSE, "lgsize", false, "-lgsize %" PRIu64 "M: /dev/shm has only %" PRIu64
		    " MiB free (of %" PRIu64 " MiB); the guest would crash when it touches the rest. Give a smaller "
		    "-lgsize (64M serves 1080p, 128M 4K) or free /dev/shm", lgsize_mib, snap->shm_avail_kib / 1024,
		    snap->shm_total_kib / 1024);
	else if (snap->mem_total_kib > 0 && kib > snap->mem_total_kib / 2)
		preflight_add(out, PREFLIGHT_REFUSE, "lgsize", false, "-lgsize %" PRIu64 "M is more than half the "
		    "host's memory (%" PRIu64 " MiB); give a smaller -lgsize (64M serves 1080p, 128M 4K)", lgsize_mib,
		    snap->mem_total_kib / 1024);
}
