/* IOMMU and the virtualisation pieces around it: whether an IOMMU is active
 * (an entry in /sys/class/iommu), its groups, the kernel command line (so the
 * plan can name the argument to add), KVM, vfio-pci, ZFS and vhost-net. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static size_t
dir_entries(const char *hostpath)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "%s", hostpath) == NULL)
		return 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool
host_has(const char *hostpath)
{
	char path[PATH_MAX];
	return host_path(path, sizeof(path), "%s", hostpath) != NULL && host_exists(path);
}

/* A module the running kernel could load: in its module tree (compressed
 * or not), or built in. */
static bool
vfio_pci_module_exists(const char *release)
{
	static const char *const files[] = {
		"vfio-pci.ko", "vfio-pci.ko.xz", "vfio-pci.ko.zst", "vfio-pci.ko.gz",
	};
	char path[PATH_MAX];
	for (size_t i = 0; i < nitems(files); i++) {
		if (host_path(path, sizeof(path), "/lib/modules/%s/kernel/drivers/vfio/pci/%s", release, files[i]) &&
		    host_exists(path))
			return true;
	}
	if (host_path(path, sizeof(path), "/lib/modules/%s/modules.builtin", release) == NULL)
		return false;
	char *builtin = host_read(path, NULL);
	if (builtin == NULL)
		return false;
	bool found = false;
	for (char *line = builtin; line && *line && !found;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		const char *base = strrchr(line, '/');
		base = base ? base + 1 : line;
		found = strcmp(base, "vfio-pci.ko") == 0;
		line = nl ? nl + 1 : NULL;
	}
	free(builtin);
	return found;
}

int
iommu_scan(struct host_snapshot *snap, struct verr *err)
{
	char path[PATH_MAX];
	snap->iommu_enabled = dir_entries("/sys/class/iommu") > 0;
	snap->n_iommu_groups = dir_entries("/sys/kernel/iommu_groups");

	if (host_path(path, sizeof(path), "/proc/cmdline") != NULL)
		snap->kernel_cmdline = host_read_line(path);
	if (snap->kernel_cmdline == NULL)
		snap->kernel_cmdline = xstrdup("");
	if (host_path(path, sizeof(path), "/proc/sys/kernel/osrelease") != NULL) {
		char *rel = host_read_line(path);
		snap_copy(snap->kernel_release, sizeof(snap->kernel_release), rel);
		free(rel);
	}

	snap->kvm = host_has("/dev/kvm");
	snap->vfio_pci_loaded = host_has("/sys/bus/pci/drivers/vfio-pci");
	snap->vfio_pci_available = snap->vfio_pci_loaded ||
	    (snap->kernel_release[0] != '\0' && vfio_pci_module_exists(snap->kernel_release));
	snap->zfs_loaded = host_has("/sys/module/zfs");
	snap->vhost_net = host_has("/dev/vhost-net");
	return 0;
}
