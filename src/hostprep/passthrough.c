/* The passthrough rulebook: see passthrough.h. */
#include "passthrough.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uregex.h"
#include "util.h"

/* ---- regexes ---- */

int
passthrough_regex_compile(regex_t *re, int cflags, const char *what, const char *pattern, struct verr *err)
{
	/* Bounded first: glibc's regcomp() can take gigabytes (uregex.h). */
	return uregex_compile(re, cflags | REG_EXTENDED, what, pattern, err);
}

int
passthrough_pattern(const char *what, const char *given, char **out, struct verr *err)
{
	size_t len = strlen(given);
	while (*given == '|')
		given++, len--;
	while (len > 0 && given[len - 1] == '|' && !(len > 1 && given[len - 2] == '\\'))
		len--;
	if (len == 0) {
		bool usb = strstr(what, "usb") != NULL;
		return verr_set(err, -EINVAL, "%s needs a regular expression matching the devices to pass through, "
		    "e.g. %s '%s'", what, what, usb ? "Logitech|046d:c52b" : "NVIDIA|0000:06:00.0");
	}
	*out = xstrndup(given, len);
	return 0;
}

int
passthrough_regex(regex_t *re, const char *what, const char *given, struct verr *err)
{
	char *pattern;
	int r = passthrough_pattern(what, given, &pattern, err);
	if (r < 0)
		return r;
	r = passthrough_regex_compile(re, REG_NOSUB, what, pattern, err);
	free(pattern);
	return r;
}

/* ---- PCI ---- */

bool
passthrough_pci_is_bridge(const struct pci_device *d)
{
	return d->is_bridge || (d->class_code >> 16) == 0x06;
}

bool
passthrough_pci_matches(const regex_t *re, const struct pci_device *d)
{
	return regexec(re, pci_match_text(d), 0, NULL, 0) == 0;
}

bool
passthrough_pci_driver_harmless(const char *driver)
{
	return driver[0] == '\0' || strcmp(driver, "vfio-pci") == 0 || strcmp(driver, "pci-stub") == 0;
}

const struct pci_device *
passthrough_pci_group_blocker(const struct host_snapshot *snap, const struct pci_device *d,
    const struct pci_device *after, bool (*passed)(const struct pci_device *dev, void *arg), void *arg)
{
	if (d->iommu_group < 0)
		return NULL;
	for (size_t i = after != NULL ? (size_t)(after - snap->pci) + 1 : 0; i < snap->n_pci; i++) {
		const struct pci_device *o = &snap->pci[i];
		if (o->iommu_group != d->iommu_group || o == d || passed(o, arg))
			continue;
		if (!passthrough_pci_is_bridge(o) && !passthrough_pci_driver_harmless(o->driver))
			return o;
	}
	return NULL;
}

void
passthrough_pci_id(char *buf, size_t len, const char *address)
{
	snprintf(buf, len, "hostdev-%s", address);
	for (char *p = buf; *p; p++) {
		if (*p == ':' || *p == '.')
			*p = '-';
	}
}

void
passthrough_vfio_group_node(char *buf, size_t len, int group)
{
	snprintf(buf, len, "/dev/vfio/%d", group);
}

/* ---- USB ---- */

bool
passthrough_usb_matches(const regex_t *re, const struct usb_device *dev)
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

void
passthrough_usb_id(char *buf, size_t len, const char *sysname)
{
	snprintf(buf, len, "usb-%s", sysname);
}

const char *
passthrough_usb_port_of_id(const char *id)
{
	return str_startswith(id, "usb-") ? id + 4 : NULL;
}

void
passthrough_usb_node(char *buf, size_t len, unsigned bus, unsigned devnum)
{
	snprintf(buf, len, "/dev/bus/usb/%03u/%03u", bus, devnum);
}

/* ---- one device, one guest ---- */

int
passthrough_pci_free(const struct host_snapshot *snap, const char *self, const struct pci_device *d,
    struct verr *err)
{
	char node[32] = "";
	if (d->iommu_group >= 0)
		passthrough_vfio_group_node(node, sizeof(node), d->iommu_group);
	for (size_t i = 0; i < snap->n_claims; i++) {
		const struct host_claim *c = &snap->claims[i];
		if (self != NULL && strcmp(c->guest, self) == 0)
			continue;
		const struct pci_device *o = c->pci[0] ? snapshot_pci_find(snap, c->pci) : NULL;
		bool same = strcmp(c->pci, d->address) == 0;
		bool group = !same && ((o != NULL && d->iommu_group >= 0 && o->iommu_group == d->iommu_group) ||
		    (node[0] && strcmp(c->node, node) == 0));
		if (same)
			return verr_set(err, -EBUSY, "%s is the guest \"%s\"'s: a device goes to one guest at a time; "
			    "take it from there first (vfioctl %s pci del %s) or leave it out", d->address, c->guest,
			    c->guest, d->address);
		if (group)
			return verr_set(err, -EBUSY, "%s is in IOMMU group %d, which the guest \"%s\" has (%s): a group "
			    "goes to one guest at a time; take it from there first or leave %s out", d->address,
			    d->iommu_group, c->guest, c->pci[0] ? c->pci : c->node, d->address);
	}
	return 0;
}

int
passthrough_usb_free(const struct host_snapshot *snap, const char *self, const struct usb_device *u,
    struct verr *err)
{
	char node[48];
	passthrough_usb_node(node, sizeof(node), u->bus, u->devnum);
	for (size_t i = 0; i < snap->n_claims; i++) {
		const struct host_claim *c = &snap->claims[i];
		if (self != NULL && strcmp(c->guest, self) == 0)
			continue;
		if (strcmp(c->usb_port, u->sysname) == 0 || strcmp(c->node, node) == 0)
			return verr_set(err, -EBUSY, "%s (port %s) is the guest \"%s\"'s: a device goes to one guest "
			    "at a time; take it from there first (vfioctl %s usb del usb-%s) or leave it out", u->line,
			    u->sysname, c->guest, c->guest, u->sysname);
	}
	return 0;
}
