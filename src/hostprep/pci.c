/* PCI devices through libpci's sysfs method, pointed under the host root.
 * Each device gets the line `lspci -Dnn` prints for it, built the way lspci
 * builds it (same library, same pci.ids, same lookup flags; the names from
 * pci-names, which answers as libpci's pci_lookup_name does), so a -pci
 * regex matches exactly what it matched in the original script. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "pci-names.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

/* libpci reports fatal errors through a callback that must not return (its
 * default exits). Nothing here may exit, so the callback jumps back to
 * pci_scan(), which turns the message into a struct verr. */
static jmp_buf pci_error_jmp;
static char pci_error_msg[512];

static void pci_on_error(char *msg, ...) __attribute__((format(printf, 1, 2), noreturn));
static void pci_on_warning(char *msg, ...) __attribute__((format(printf, 1, 2)));

static void
pci_on_error(char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	vsnprintf(pci_error_msg, sizeof(pci_error_msg), msg, ap);
	va_end(ap);
	longjmp(pci_error_jmp, 1);
}

static void
pci_on_warning(char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	log_vlog(LOG_LEVEL_DEBUG, msg, ap);
	va_end(ap);
}

static int
pci_device_cmp(const void *a, const void *b)
{
	const struct pci_device *x = a, *y = b;
	if (x->domain != y->domain)
		return x->domain < y->domain ? -1 : 1;
	if (x->bus != y->bus)
		return x->bus < y->bus ? -1 : 1;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->function != y->function)
		return x->function < y->function ? -1 : 1;
	return 0;
}

static bool
pci_class_bridges(unsigned cls16)
{
	/* PCI-to-PCI, CardBus and semi-transparent PCI-to-PCI bridges forward
	 * transactions for the devices behind them; host and ISA bridges do
	 * not and count as ordinary group members. */
	return cls16 == 0x0604 || cls16 == 0x0607 || cls16 == 0x0609;
}

static void
pci_fill_device(struct pci_names *names, struct pci_dev *p, struct pci_device *d)
{
	char classbuf[256], devbuf[512];
	pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);

	d->domain = (unsigned)p->domain;
	d->bus = p->bus;
	d->dev = p->dev;
	d->function = p->func;
	snprintf(d->address, sizeof(d->address), "%04x:%02x:%02x.%d", p->domain, p->bus, p->dev, p->func);
	snprintf(d->slot, sizeof(d->slot), "%04x:%02x:%02x", p->domain, p->bus, p->dev);
	d->vendor = p->vendor_id;
	d->device = p->device_id;
	/* lspci's line shows the revision from config space, and we keep the
	 * prog-if with the class for the plan. lspci leaves out a device whose
	 * header it cannot read; we keep it (it still counts in its IOMMU
	 * group) with what sysfs says instead. */
	unsigned rev, progif;
	u8 hdr[64];
	if (pci_read_block(p, 0, hdr, sizeof(hdr))) {
		rev = hdr[PCI_REVISION_ID];
		progif = hdr[PCI_CLASS_PROG];
	} else {
		log_debug("%s: cannot read its configuration header; revision from sysfs", d->address);
		pci_fill_info(p, PCI_FILL_CLASS_EXT);
		rev = p->rev_id;
		progif = p->prog_if;
	}
	d->class_code = ((unsigned)p->device_class << 8) | progif;

	/* pci_names_* answer as pci_lookup_name would, without it loading
	 * all of pci.ids (pci-names.c). */
	const char *cls = pci_names_class(names, classbuf, sizeof(classbuf), p->device_class);
	const char *name = pci_names_device(names, devbuf, sizeof(devbuf), p->vendor_id, p->device_id);
	int n = snprintf(d->line, sizeof(d->line), "%s %s: %s", d->address, cls, name);
	if (rev != 0 && n > 0 && (size_t)n < sizeof(d->line))
		snprintf(d->line + n, sizeof(d->line) - (size_t)n, " (rev %02x)", rev);

	/* The driver and group links are read here rather than through
	 * PCI_FILL_DRIVER/IOMMU_GROUP: libpci resolves them with realpath(),
	 * a readlink per path component, which dominates a 10 000-device
	 * scan; the basename is all we need. */
	char path[PATH_MAX];
	d->iommu_group = -1;
	if (host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", d->address) != NULL) {
		char *drv = host_link_basename(path);
		snap_copy(d->driver, sizeof(d->driver), drv);
		free(drv);
	}
	if (host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", d->address) != NULL) {
		char *group = host_link_basename(path);
		char *end;
		long g = group ? strtol(group, &end, 10) : -1;
		if (group != NULL && end != group && *end == '\0' && g >= 0 && g <= INT_MAX)
			d->iommu_group = (int)g;
		free(group);
	}

	/* reset_method (5.15+) lists the methods in the order the kernel tries
	 * them; it and `reset` exist only when the device has one. Empty: the
	 * user disabled them all. An older kernel has only `reset`. */
	if (host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/reset_method", d->address) != NULL) {
		char *methods = host_read_line(path);
		if (methods != NULL) {
			snap_copy(d->reset_method, sizeof(d->reset_method), methods);
			d->no_reset = *methods == '\0';
			free(methods);
		} else if (host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/reset", d->address) != NULL) {
			d->no_reset = !host_exists(path);
		}
	}

	unsigned cls16 = p->device_class;
	d->is_display = (cls16 >> 8) == 0x03;
	d->is_bridge = pci_class_bridges(cls16);
	unsigned long long v;
	if (d->is_display && host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/boot_vga", d->address) != NULL &&
	    snap_read_ulong(path, 10, &v))
		d->boot_vga = v != 0;
}

static bool
pci_wanted(const struct strv *only, const struct pci_dev *p)
{
	if (only == NULL)
		return true;
	char addr[16];
	snprintf(addr, sizeof(addr), "%04x:%02x:%02x.%d", p->domain, p->bus, p->dev, p->func);
	for (size_t i = 0; i < only->n; i++)
		if (strcmp(only->v[i], addr) == 0)
			return true;
	return false;
}

int
pci_scan(struct host_snapshot *snap, struct verr *err)
{
	return pci_scan_only(snap, NULL, err);
}

int
pci_scan_only(struct host_snapshot *snap, const struct strv *only, struct verr *err)
{
	char sysfs[PATH_MAX], devices[PATH_MAX];
	if (host_path(sysfs, sizeof(sysfs), "/sys/bus/pci") == NULL ||
	    host_path(devices, sizeof(devices), "/sys/bus/pci/devices") == NULL)
		return verr_set(err, -ENAMETOOLONG, "the host root %s is too long for a path", hostroot_get());
	if (!host_exists(devices)) {
		/* A machine (or container) without a PCI bus: nothing to pass
		 * through, which the plan reports if -pci asked for something. */
		log_debug("no PCI bus: %s does not exist", devices);
		return 0;
	}

	/* volatile: they change between setjmp() and a longjmp() back. */
	struct pci_access *volatile acc = pci_alloc();
	struct pci_device *volatile list = NULL;
	struct pci_names *volatile names = NULL;
	volatile size_t n = 0, cap = 0;
	acc->error = pci_on_error;
	acc->warning = pci_on_warning;
	acc->debug = pci_on_warning;
	if (setjmp(pci_error_jmp) != 0) {
		pci_names_close(names);
		pci_cleanup(acc);
		free(list);
		return verr_set(err, -EIO, "cannot read the PCI devices under %s: %s; check that sysfs is mounted and readable",
		    sysfs, pci_error_msg);
	}
	acc->method = PCI_ACCESS_SYS_BUS_PCI;
	/* -nn: names and numbers, as the match lines of the original. */
	acc->numeric_ids = 2;
	pci_set_param(acc, "sysfs.path", sysfs);
	pci_init(acc);
	pci_scan_bus(acc);
	names = pci_names_open(acc);

	for (struct pci_dev *p = acc->devices; p != NULL; p = p->next) {
		/* libpci's sysfs scan only lists the devices; what costs is
		 * reading each one, skipped for those not asked for. */
		if (!pci_wanted(only, p))
			continue;
		struct pci_device *l = list;
		size_t nn = n, cc = cap;
		struct pci_device *d = snap_grow(&l, &nn, &cc, sizeof(*d));
		list = l;
		n = nn;
		cap = cc;
		pci_fill_device(names, p, d);
	}
	pci_names_close(names);
	pci_cleanup(acc);

	if (n > 1)
		qsort(list, n, sizeof(*list), pci_device_cmp);
	snap->pci = list;
	snap->n_pci = n;
	return 0;
}

void
pci_group_peers(const char *addr, struct strv *out)
{
	strv_push(out, addr);
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", addr) == NULL)
		return;
	char *group = host_link_basename(path);
	if (group == NULL)
		return;
	char *dir = host_pathdup("/sys/kernel/iommu_groups/%s/devices", group);
	free(group);
	DIR *d = opendir(dir);
	free(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, addr) != 0)
			strv_push(out, de->d_name);
	closedir(d);
}

const char *
pci_match_text(const struct pci_device *dev)
{
	return dev->line;
}
