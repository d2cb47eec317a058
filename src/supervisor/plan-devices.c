/* The plan's passthrough part: which PCI and USB devices the -pci and -usb
 * regexes select (with the original's rules: bridges never, USB root hubs
 * never, hubs only by ID), whether their IOMMU groups can be handed over,
 * where each device goes (display functions on the command line, everything
 * else over QMP into its own root port), and the host changes that get them
 * onto vfio-pci. */
#include <stdlib.h>
#include <string.h>

#include "devargs.h"
#include "devown.h"
#include "passthrough.h"
#include "plan-priv.h"
#include "preflight.h"
#include "vfio_bind.h"

static bool
plan_pci_passed(const struct pci_device *d, void *arg)
{
	const struct plan_ctx *c = arg;
	size_t i = (size_t)(d - c->snap->pci);
	return c->passed != NULL && i < c->snap->n_pci && c->passed[i];
}

/* Passed devices by slot, then function: a card's functions are adjacent. */
static int
cmp_plan_pci(const void *a, const void *b)
{
	const struct pci_device *x = ((const struct plan_pci *)a)->dev, *y = ((const struct plan_pci *)b)->dev;
	int r = strcmp(x->slot, y->slot);
	if (r != 0)
		return r;
	return (x->function > y->function) - (x->function < y->function);
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int
cmp_pci_addr(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct plan_pci *)elem)->dev->address);
}

static void
plan_pci_viability(struct plan_ctx *c)
{
	const struct host_snapshot *snap = c->snap;
	for (size_t i = 0; i < c->n_pci; i++) {
		if (c->pci[i].dev->iommu_group < 0 && snap->iommu_enabled)
			plan_check_failed(c, "-pci: %s has no IOMMU group, so it cannot be passed through; "
			    "check dmesg for IOMMU errors", c->pci[i].dev->address);
	}
	/* Each group once, in group order, named by its first passed device. */
	int *groups = xcalloc(c->n_pci + 1, sizeof(*groups));
	for (size_t i = 0; i < c->n_pci; i++)
		groups[i] = c->pci[i].dev->iommu_group;
	if (c->n_pci > 1)
		qsort(groups, c->n_pci, sizeof(*groups), cmp_int);
	for (size_t g = 0; g < c->n_pci; g++) {
		if (groups[g] < 0 || (g > 0 && groups[g - 1] == groups[g]))
			continue;
		const struct pci_device *first = NULL;
		for (size_t i = 0; i < snap->n_pci && first == NULL; i++) {
			if (snap->pci[i].iommu_group == groups[g] && plan_pci_passed(&snap->pci[i], c))
				first = &snap->pci[i];
		}
		for (const struct pci_device *o = NULL;
		    (o = passthrough_pci_group_blocker(snap, first, o, plan_pci_passed, c)) != NULL;)
			plan_check_failed(c, "-pci: %s shares IOMMU group %d with %s, which is bound to %s "
			    "and not passed through; a group goes to the guest whole: add it to -pci "
			    "(e.g. -pci '%s|%s') or unbind it from %s", first->address, groups[g],
			    o->line, o->driver, c->opts->pci_regex, o->address, o->driver);
	}
	free(groups);
}

/* Display functions, and every passed function in their slot, are
 * cold-plugged; exactly one VGA function gets x-vga=on. c->pci is sorted by
 * slot and function, so a card's functions are one run. */
static void
plan_pci_placement(struct plan_ctx *c)
{
	for (size_t start = 0, end; start < c->n_pci; start = end) {
		bool display = false;
		for (end = start; end < c->n_pci && strcmp(c->pci[end].dev->slot, c->pci[start].dev->slot) == 0; end++)
			display |= c->pci[end].dev->is_display;
		for (size_t k = start; k < end; k++)
			c->pci[k].cold = display;
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
	for (size_t start = 0, end; start < c->n_pci; start = end) {
		for (end = start; end < c->n_pci && strcmp(c->pci[end].dev->slot, c->pci[start].dev->slot) == 0; end++)
			;
		if (!c->pci[start].cold)
			continue;
		int port = plan_take_port(c);
		for (size_t k = start; k < end; k++) {
			c->pci[k].port = port;
			c->pci[k].guest_fn = (int)(k - start);
			c->pci[k].slot_functions = (int)(end - start);
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

	c->passed = xcalloc(snap->n_pci + 1, sizeof(*c->passed));
	for (size_t i = 0; i < snap->n_pci; i++) {
		const struct pci_device *d = &snap->pci[i];
		if (!passthrough_pci_matches(&o->pci_re, d))
			continue;
		if (passthrough_pci_is_bridge(d)) {
			strbuf_printf(&skipped, "%s%s", skipped.len ? ", " : "", d->address);
			continue;
		}
		c->pci = xreallocarray(c->pci, c->n_pci + 1, sizeof(*c->pci));
		c->pci[c->n_pci++] = (struct plan_pci){ .dev = d };
		c->passed[i] = true;
	}
	if (c->n_pci > 1)	/* qsort(NULL, 0, ...) is undefined behaviour */
		qsort(c->pci, c->n_pci, sizeof(*c->pci), cmp_plan_pci);
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
	/* What the kernel and QEMU would refuse for each device, the same
	 * rules `pci add` applies (preflight.c). */
	for (size_t i = 0; i < c->n_pci; i++) {
		struct preflight_findings f = { 0 };
		preflight_pci_device(snap, c->pci[i].dev, &f);
		plan_findings(c, "-pci: ", &f);
		struct verr err = { 0 };
		if (passthrough_pci_free(snap, o->name, c->pci[i].dev, &err) < 0)
			plan_refuse(c, "-pci: %s", err.msg);
	}
	plan_pci_placement(c);

	json_t *list = json_object_get(c->plan->devices, "pci");
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct plan_pci *p = &c->pci[i];
		const struct pci_device *d = p->dev;
		/* reset_method: the kernel's methods in the order it tries them
		 * (QEMU resets the device through them at every guest reset);
		 * null on a kernel older than 5.15, which does not say. */
		bool unknown = !d->no_reset && d->reset_method[0] == '\0';
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:i, s:o, s:s}", "address", d->address,
		    "line", d->line, "driver", d->driver, "iommu_group", d->iommu_group, "reset_method",
		    unknown ? json_null() : json_string(d->reset_method), "attach", p->cold ? "cmdline" : "qmp"));
		char reset[96];
		if (d->no_reset)
			snprintf(reset, sizeof(reset), "no reset method");
		else if (unknown)
			snprintf(reset, sizeof(reset), "resettable");
		else
			snprintf(reset, sizeof(reset), "reset_method %s", d->reset_method);
		plan_say_later(c, "PCI: %s [%s, IOMMU group %d, %s, %s%s]", d->line,
		    d->driver[0] ? d->driver : "no driver", d->iommu_group, reset,
		    p->cold ? "on the command line" : "attached over QMP", p->xvga ? ", x-vga" : "");
	}
}

static void
plan_match_usb(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	json_t *list = json_object_get(c->plan->devices, "usb");
	size_t matched = 0;

	for (size_t i = 0; i < snap->n_usb; i++) {
		const struct usb_device *u = &snap->usb[i];
		if (!passthrough_usb_matches(&o->usb_re, u))
			continue;
		matched++;
		const struct plan_pci *ctl = u->controller[0] == '\0' || c->n_pci == 0 ? NULL :
		    bsearch(u->controller, c->pci, c->n_pci, sizeof(*c->pci), cmp_pci_addr);
		if (ctl != NULL) {
			plan_warn(c, "-usb: %s (port %s) is behind controller %s, which -pci passes through whole; "
			    "it goes with it", u->line, u->sysname, ctl->dev->address);
			continue;
		}
		struct verr err = { 0 };
		if (passthrough_usb_free(snap, o->name, u, &err) < 0) {
			plan_refuse(c, "-usb: %s", err.msg);
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
	if (matched == 0)
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

/* -killx: a GPU the graphical session holds cannot be unbound (pci-bind-vfio
 * refuses and asks for -killx). With it, as the original: stop the display
 * manager, then whatever else holds the card, and unless -ignorevtcon free
 * the boot GPU from the virtual console and the EFI framebuffer; all of it
 * comes back at teardown. */
static void
plan_killx_changes(struct plan_ctx *c)
{
	if (!c->opts->killx)
		return;
	bool gpu = false, boot = false;
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct pci_device *d = c->pci[i].dev;
		if (d->is_display && strcmp(d->driver, "vfio-pci") != 0) {
			gpu = true;
			boot |= d->boot_vga;
		}
	}
	if (!gpu) {
		plan_warn(c, "-killx: no GPU still on its host driver is passed through; nothing to stop");
		return;
	}
	plan_change(c, "display-manager-stop", "display-manager.service", NULL, NULL, NULL);
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct pci_device *d = c->pci[i].dev;
		if (d->is_display && strcmp(d->driver, "vfio-pci") != 0)
			plan_change(c, "gpu-users-stop", d->address, NULL, NULL, NULL);
	}
	if (boot && !c->opts->ignorevtcon) {
		/* The consoles fbcon is bound to now, whichever vtconN they are. */
		for (size_t i = 0; i < c->snap->n_fbcons; i++)
			plan_change(c, "vtcon-unbind", c->snap->fbcons[i], NULL, NULL, NULL);
		plan_change(c, "efifb-unbind", "efi-framebuffer.0", NULL, NULL, NULL);
	}
	plan_say_later(c, "-killx: the display manager%s stopped for the guest and started again at shutdown",
	    boot && !c->opts->ignorevtcon ? ", the virtual console and the EFI framebuffer are" : " is");
}

void
plan_devices_changes(struct plan_ctx *c)
{
	const struct host_snapshot *snap = c->snap;
	if (c->n_pci > 0 && !snap->vfio_pci_loaded)
		plan_change_add(c, vfio_bind_module_change_new());
	plan_killx_changes(c);
	for (size_t i = 0; i < c->n_pci; i++) {
		const struct pci_device *d = c->pci[i].dev;
		if (strcmp(d->driver, "vfio-pci") == 0)
			continue;
		plan_change_add(c, vfio_bind_change_new(d->address, d->driver, d->iommu_group, d->is_display));
	}
	/* QEMU runs as the user behind sudo (or -user): it must open the groups. */
	int uid, gid;
	plan_qemu_user(c, &uid, &gid);
	if (uid <= 0)
		return;
	int *groups = xcalloc(c->n_pci + 1, sizeof(*groups));
	for (size_t i = 0; i < c->n_pci; i++)
		groups[i] = c->pci[i].dev->iommu_group;
	if (c->n_pci > 1)
		qsort(groups, c->n_pci, sizeof(*groups), cmp_int);
	for (size_t i = 0; i < c->n_pci; i++) {
		int g = groups[i];
		if (g < 0 || (i > 0 && groups[i - 1] == g))
			continue;
		char target[32];
		passthrough_vfio_group_node(target, sizeof(target), g);
		plan_change_add(c, devown_change_new(target, uid, gid));
		strv_push(&c->plan->qemu_nodes, target);
	}
	free(groups);
	/* usb-host opens the device node itself, as QEMU's user. */
	for (size_t i = 0; i < c->n_usb; i++) {
		char target[48];
		passthrough_usb_node(target, sizeof(target), c->usb[i]->bus, c->usb[i]->devnum);
		plan_change_add(c, devown_change_new(target, uid, gid));
		strv_push(&c->plan->qemu_nodes, target);
	}
}

/* QEMU's user can read and write a node already (as owner, through one of
 * its groups, or as everyone): then it needs no dev-chown. */
static bool
plan_user_can_rw(const struct plan_ctx *c, int uid, int gid, bool exists, unsigned nuid, unsigned ngid,
    unsigned mode)
{
	if (!exists)
		return false;
	if (nuid == (unsigned)uid)
		return (mode & 0600) == 0600;
	bool member = ngid == (unsigned)gid;
	for (size_t i = 0; i < c->opts->n_qemu_groups && !member; i++)
		member = c->opts->qemu_groups[i] == ngid;
	if (member)
		return (mode & 0060) == 0060;
	return (mode & 0006) == 0006;
}

/* QEMU running as the invoking user opens some nodes itself besides the
 * groups and USB devices (plan_devices_changes): /dev/kvm, the VFIO
 * container, block devices given as disks. It gets exactly those it cannot
 * open already, journaled and given back like every change. */
void
plan_node_changes(struct plan_ctx *c)
{
	int uid, gid;
	plan_qemu_user(c, &uid, &gid);
	if (uid <= 0)
		return;
	const struct host_node *kvm = &c->snap->kvm_node, *vfio = &c->snap->vfio_node;
	struct strv *nodes = &c->plan->qemu_nodes;
	if (!c->tcg && !plan_user_can_rw(c, uid, gid, kvm->exists, kvm->uid, kvm->gid, kvm->mode))
		plan_change_add(c, devown_change_new("/dev/kvm", uid, gid));
	if (!c->tcg)
		strv_push(nodes, "/dev/kvm");
	for (size_t i = 0; i < c->snap->n_files; i++) {
		const struct host_file *f = &c->snap->files[i];
		if (!f->is_block || f->path[0] != '/')
			continue;
		if (!plan_user_can_rw(c, uid, gid, f->exists, f->uid, f->gid, f->mode))
			plan_change_add(c, devown_change_new(f->path, uid, gid));
		strv_push(nodes, f->path);
	}
	if (c->n_pci > 0 && !plan_user_can_rw(c, uid, gid, vfio->exists, vfio->uid, vfio->gid, vfio->mode))
		plan_change_add(c, devown_change_new("/dev/vfio/vfio", uid, gid));
	if (c->n_pci > 0)
		strv_push(nodes, "/dev/vfio/vfio");
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
		int fn = p->guest_fn, nfn = p->slot_functions;
		char id[48];
		passthrough_pci_id(id, sizeof(id), p->dev->address);
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
		passthrough_pci_id(id, sizeof(id), p->dev->address);
		snprintf(bus, sizeof(bus), "rp%d", p->port);
		plan_qmp(c, "device_add", devargs_vfio_pci(p->dev->address, id, bus), NULL);
	}
	for (size_t i = 0; i < c->n_usb; i++) {
		const struct usb_device *u = c->usb[i];
		char id[48];
		passthrough_usb_id(id, sizeof(id), u->sysname);
		plan_qmp(c, "device_add", devargs_usb_host(u->bus, u->devnum, id), NULL);
	}
}
