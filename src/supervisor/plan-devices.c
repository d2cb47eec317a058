/* The plan's passthrough part: which PCI and USB devices the -pci and -usb
 * regexes select (with the original's rules: bridges never, USB root hubs
 * never, hubs only by ID), whether their IOMMU groups can be handed over,
 * where each device goes (display functions on the command line, everything
 * else over QMP into its own root port), and the host changes that get them
 * onto vfio-pci. */
#include <stdlib.h>
#include <string.h>

#include "plan-priv.h"

static bool
pci_is_bridge(const struct pci_device *d)
{
	/* Host, ISA, PCI and other bridges (class 0x06xx) belong to the host. */
	return d->is_bridge || (d->class_code >> 16) == 0x06;
}

static bool
pci_driver_is_harmless(const char *driver)
{
	return driver[0] == '\0' || strcmp(driver, "vfio-pci") == 0 || strcmp(driver, "pci-stub") == 0;
}

static struct plan_pci *
plan_pci_passed(struct plan_ctx *c, const struct pci_device *d)
{
	for (size_t i = 0; i < c->n_pci; i++) {
		if (c->pci[i].dev == d)
			return &c->pci[i];
	}
	return NULL;
}

static void
plan_device_id(char *buf, size_t len, const char *address)
{
	snprintf(buf, len, "hostdev-%s", address);
	for (char *p = buf; *p; p++) {
		if (*p == ':' || *p == '.')
			*p = '-';
	}
}

bool
plan_usb_matches(const regex_t *re, const struct usb_device *dev)
{
	if (dev->is_root_hub)
		return false;
	char id[16];
	snprintf(id, sizeof(id), "%04x:%04x", dev->vendor & 0xffff, dev->product & 0xffff);
	/* A hub carries whatever is plugged into it: only an explicit ID selects it. */
	if (dev->is_hub)
		return regexec(re, id, 0, NULL, 0) == 0;
	const char *texts[] = { dev->line, dev->manufacturer, dev->product_name, dev->serial, dev->sysname };
	for (size_t i = 0; i < nitems(texts); i++) {
		if (texts[i][0] != '\0' && regexec(re, texts[i], 0, NULL, 0) == 0)
			return true;
	}
	return false;
}

static void
plan_pci_viability(struct plan_ctx *c)
{
	const struct host_snapshot *snap = c->snap;
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct pci_device *d = c->pci[i].dev;
		if (d->iommu_group < 0) {
			if (snap->iommu_enabled)
				plan_check_failed(c, "-pci: %s has no IOMMU group, so it cannot be passed through; "
				    "check dmesg for IOMMU errors", d->address);
			continue;
		}
		for (size_t j = 0; j < snap->n_pci; j++) {
			const struct pci_device *o = &snap->pci[j];
			if (o == d || o->iommu_group != d->iommu_group || plan_pci_passed(c, o) != NULL ||
			    pci_is_bridge(o) || pci_driver_is_harmless(o->driver))
				continue;
			/* Report each blocking device once, at the first matched
			 * device of its group. */
			bool first = true;
			for (size_t k = 0; k < i; k++) {
				if (c->pci[k].dev->iommu_group == d->iommu_group)
					first = false;
			}
			if (first)
				plan_check_failed(c, "-pci: %s shares IOMMU group %d with %s, which is bound to %s "
				    "and not passed through; a group goes to the guest whole: add it to -pci "
				    "(e.g. -pci '%s|%s') or unbind it from %s", d->address, d->iommu_group,
				    o->line, o->driver, c->opts->pci_regex, o->address, o->driver);
		}
	}
}

/* Display functions, and every passed function in their slot, are
 * cold-plugged; exactly one VGA function gets x-vga=on. */
static void
plan_pci_placement(struct plan_ctx *c)
{
	for (size_t i = 0; i < c->n_pci; i++) {
		if (!c->pci[i].dev->is_display)
			continue;
		for (size_t j = 0; j < c->n_pci; j++) {
			if (strcmp(c->pci[j].dev->slot, c->pci[i].dev->slot) == 0)
				c->pci[j].cold = true;
		}
	}
	struct plan_pci *vga = NULL;
	for (size_t i = 0; i < c->n_pci && vga == NULL; i++) {
		if (c->pci[i].dev->is_display && c->pci[i].dev->boot_vga)
			vga = &c->pci[i];
	}
	for (size_t i = 0; i < c->n_pci && vga == NULL; i++) {
		if ((c->pci[i].dev->class_code >> 8) == 0x0300)
			vga = &c->pci[i];
	}
	if (vga != NULL)
		vga->xvga = true;

	/* Ports: one per cold-plugged slot first, then one per QMP device. */
	for (size_t i = 0; i < c->n_pci; i++) {
		if (!c->pci[i].cold || c->pci[i].port != 0)
			continue;
		int port = plan_take_port(c);
		for (size_t j = i; j < c->n_pci; j++) {
			if (c->pci[j].cold && strcmp(c->pci[j].dev->slot, c->pci[i].dev->slot) == 0)
				c->pci[j].port = port;
		}
	}
	for (size_t i = 0; i < c->n_pci; i++) {
		if (!c->pci[i].cold)
			c->pci[i].port = plan_take_port(c);
	}
}

static void
plan_match_pci(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	struct strbuf skipped = { 0 };

	for (size_t i = 0; i < snap->n_pci; i++) {
		const struct pci_device *d = &snap->pci[i];
		if (regexec(&o->pci_re, d->line, 0, NULL, 0) != 0)
			continue;
		if (pci_is_bridge(d)) {
			strbuf_printf(&skipped, "%s%s", skipped.len ? ", " : "", d->address);
			continue;
		}
		c->pci = xreallocarray(c->pci, c->n_pci + 1, sizeof(*c->pci));
		c->pci[c->n_pci++] = (struct plan_pci){ .dev = d };
	}
	if (skipped.len > 0)
		plan_warn(c, "-pci '%s' also matches bridge(s) %s: bridges stay with the host", o->pci_regex, skipped.s);
	strbuf_free(&skipped);
	if (c->n_pci == 0) {
		plan_check_failed(c, "-pci '%s' matches no PCI device (bridges never count); -iommugroups lists the "
		    "lspci lines it is matched against", o->pci_regex);
		return;
	}
	if (!snap->iommu_enabled) {
		bool amd = strcmp(snap->cpu_vendor, "AuthenticAMD") == 0;
		plan_check_failed(c, "the IOMMU is off, so PCI devices cannot be passed through: enable %s in the "
		    "firmware setup, add %s to the kernel command line, and reboot",
		    amd ? "AMD-Vi (IOMMU)" : "VT-d", amd ? "amd_iommu=on" : "intel_iommu=on");
	}
	if (!snap->vfio_pci_available)
		plan_check_failed(c, "vfio-pci is not loaded and the running kernel %s has no vfio-pci module; if "
		    "the kernel was upgraded since boot, reboot into the new one (the running kernel's modules are "
		    "gone), else install a kernel with VFIO", snap->kernel_release[0] ? snap->kernel_release : "");
	plan_pci_viability(c);
	plan_pci_placement(c);

	json_t *list = json_object_get(c->plan->devices, "pci");
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct plan_pci *p = &c->pci[i];
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:i, s:s}", "address", p->dev->address,
		    "line", p->dev->line, "driver", p->dev->driver, "iommu_group", p->dev->iommu_group,
		    "attach", p->cold ? "cmdline" : "qmp"));
		plan_say_later(c, "PCI: %s [%s, IOMMU group %d, %s%s]", p->dev->line,
		    p->dev->driver[0] ? p->dev->driver : "no driver", p->dev->iommu_group,
		    p->cold ? "on the command line" : "attached over QMP", p->xvga ? ", x-vga" : "");
	}
}

static void
plan_match_usb(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	json_t *list = json_object_get(c->plan->devices, "usb");

	for (size_t i = 0; i < snap->n_usb; i++) {
		const struct usb_device *u = &snap->usb[i];
		if (!plan_usb_matches(&o->usb_re, u))
			continue;
		const struct pci_device *ctl = u->controller[0] ? plan_pci_lookup(snap, u->controller) : NULL;
		if (ctl != NULL && plan_pci_passed(c, ctl) != NULL) {
			plan_warn(c, "-usb: %s (port %s) is behind controller %s, which -pci passes through whole; "
			    "it goes with it", u->line, u->sysname, ctl->address);
			continue;
		}
		c->usb = xreallocarray(c->usb, c->n_usb + 1, sizeof(*c->usb));
		c->usb[c->n_usb++] = u;
		char id[16];
		snprintf(id, sizeof(id), "%04x:%04x", u->vendor & 0xffff, u->product & 0xffff);
		json_array_append_new(list, json_pack("{s:i, s:i, s:s, s:s, s:s}", "bus", (int)u->bus,
		    "address", (int)u->devnum, "id", id, "port", u->sysname, "line", u->line));
		plan_say_later(c, "USB %s: %s", u->sysname, u->line);
	}
	if (c->n_usb == 0)
		plan_warn(c, "-usb '%s' matches no USB device plugged in now; matching devices are attached when "
		    "they are plugged in while the guest runs", o->usb_regex);
}

void
plan_devices_match(struct plan_ctx *c)
{
	if (c->opts->pci_re_set)
		plan_match_pci(c);
	if (c->opts->usb_re_set)
		plan_match_usb(c);
}

void
plan_devices_changes(struct plan_ctx *c)
{
	const struct host_snapshot *snap = c->snap;
	if (c->n_pci > 0 && !snap->vfio_pci_loaded)
		plan_change(c, "module-load", "vfio-pci", NULL, NULL, NULL);
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct pci_device *d = c->pci[i].dev;
		if (strcmp(d->driver, "vfio-pci") == 0)
			continue;
		plan_change(c, "pci-bind-vfio", d->address, d->driver, "vfio-pci",
		    json_pack("{s:i, s:b}", "group", d->iommu_group, "display", d->is_display));
	}
	/* QEMU runs as the user behind sudo (or -user): it must open the groups. */
	int uid = c->opts->user_uid >= 0 ? c->opts->user_uid : snap->sudo_uid;
	int gid = c->opts->user_uid >= 0 ? c->opts->user_gid : snap->sudo_gid;
	if (uid <= 0)
		return;
	for (size_t i = 0; i < c->n_pci; i++) {
		int g = c->pci[i].dev->iommu_group;
		bool seen = g < 0;
		for (size_t k = 0; k < i && !seen; k++)
			seen = c->pci[k].dev->iommu_group == g;
		if (seen)
			continue;
		char target[32];
		snprintf(target, sizeof(target), "/dev/vfio/%d", g);
		plan_change(c, "dev-chown", target, NULL, NULL, json_pack("{s:i, s:i}", "uid", uid, "gid", gid));
	}
	/* usb-host opens the device node itself, as QEMU's user. */
	for (size_t i = 0; i < c->n_usb; i++) {
		char target[48];
		snprintf(target, sizeof(target), "/dev/bus/usb/%03u/%03u", c->usb[i]->bus, c->usb[i]->devnum);
		plan_change(c, "dev-chown", target, NULL, NULL, json_pack("{s:i, s:i}", "uid", uid, "gid", gid));
	}
}

void
plan_devices_cmdline(struct plan_ctx *c)
{
	const char *romfile = c->opts->romfile;
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct plan_pci *p = &c->pci[i];
		if (!p->cold || p->port == 0)
			continue;       /* port 0: no root port left, refused */
		/* Functions of one card become functions of one guest slot,
		 * numbered from 0 (a slot without function 0 is invisible). */
		int fn = 0, nfn = 0;
		for (size_t j = 0; j < c->n_pci; j++) {
			if (c->pci[j].cold && c->pci[j].port == p->port) {
				if (c->pci[j].dev->function < p->dev->function)
					fn++;
				nfn++;
			}
		}
		char id[48];
		plan_device_id(id, sizeof(id), p->dev->address);
		struct strbuf sb = { 0 };
		strbuf_printf(&sb, "vfio-pci,host=%s,id=%s,bus=rp%d,addr=0x0.%d", p->dev->address, id, p->port, fn);
		if (fn == 0 && nfn > 1)
			strbuf_puts(&sb, ",multifunction=on");
		if (p->xvga)
			strbuf_puts(&sb, ",x-vga=on");
		if (romfile != NULL && p->dev->is_display) {
			char *esc = plan_qemu_escape(romfile);
			strbuf_printf(&sb, ",romfile=%s", esc);
			free(esc);
		}
		plan_arg(c, "-device");
		plan_arg(c, sb.s);
		strbuf_free(&sb);
	}
}

void
plan_devices_qmp(struct plan_ctx *c)
{
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct plan_pci *p = &c->pci[i];
		if (p->cold || p->port == 0)
			continue;
		char id[48], bus[16];
		plan_device_id(id, sizeof(id), p->dev->address);
		snprintf(bus, sizeof(bus), "rp%d", p->port);
		plan_qmp(c, "device_add", json_pack("{s:s, s:s, s:s, s:s}", "driver", "vfio-pci", "host",
		    p->dev->address, "id", id, "bus", bus), NULL);
	}
	for (size_t i = 0; i < c->n_usb; i++) {
		const struct usb_device *u = c->usb[i];
		char id[48];
		snprintf(id, sizeof(id), "usb-%s", u->sysname);
		plan_qmp(c, "device_add", json_pack("{s:s, s:i, s:i, s:s, s:s}", "driver", "usb-host",
		    "hostbus", (int)u->bus, "hostaddr", (int)u->devnum, "id", id, "bus", "xhci.0"), NULL);
	}
}
