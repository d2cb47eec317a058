/* IOMMU and the virtualisation pieces around it: whether an IOMMU is active
 * (an entry in /sys/class/iommu), its groups, the kernel command line (so the
 * plan can name the argument to add), KVM, vfio-pci, ZFS and vhost-net. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

/* Whether KVM can actually run a guest, not only whether /dev/kvm exists:
 * under some nested hypervisors it opens and even runs a trivial vCPU, but
 * refuses the IA32_ARCH_CAPABILITIES value it itself reports, and QEMU's
 * -cpu host then aborts at start ("failed to set MSR 0x10a"). Read-only for
 * the host: a throwaway VM and vCPU, closed again. A /dev/kvm that is not a
 * character device is a fixture: its existence stands for a usable KVM. */
#define KVM_MSR_ARCH_CAPABILITIES 0x10a

static bool
kvm_probe(struct host_snapshot *snap, const char *path)
{
	char *why = snap->kvm_unusable;
	size_t wlen = sizeof(snap->kvm_unusable);
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISCHR(st.st_mode))
		return true;
	int kvm = open(path, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		/* Not root (a dry run as a user): the session opens it as root. */
		if (errno == EACCES || errno == EPERM)
			return true;
		snprintf(why, wlen, "/dev/kvm cannot be opened: %s", strerror(errno));
		return false;
	}
	int vm = -1, vcpu = -1;
	bool ok = false;
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		snprintf(why, wlen, "/dev/kvm is not a KVM device with API version %d (it answers %d)",
		    KVM_API_VERSION, api);
		goto out;
	}
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
		snprintf(why, wlen, "KVM cannot create a VM: %s", strerror(errno));
		goto out;
	}
	if (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0) {
		snprintf(why, wlen, "KVM lacks guest memory support (KVM_CAP_USER_MEMORY)");
		goto out;
	}
	if ((vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0) {
		snprintf(why, wlen, "KVM cannot create a vCPU: %s", strerror(errno));
		goto out;
	}
	struct kvm_msrs *m = xcalloc(1, sizeof(*m) + sizeof(struct kvm_msr_entry));
	m->nmsrs = 1;
	m->entries[0].index = KVM_MSR_ARCH_CAPABILITIES;
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) > 0 && ioctl(kvm, KVM_GET_MSRS, m) == 1 &&
	    ioctl(vcpu, KVM_SET_MSRS, m) != 1) {
		snprintf(why, wlen, "KVM refuses the IA32_ARCH_CAPABILITIES value (0x%llx) it reports itself, as "
		    "under a nested hypervisor; QEMU would abort with \"failed to set MSR 0x10a\"",
		    (unsigned long long)m->entries[0].data);
		free(m);
		goto out;
	}
	free(m);
	ok = true;
out:
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return ok;
}

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

bool
iommu_active(void)
{
	return dir_entries("/sys/class/iommu") > 0;
}

int
iommu_scan(struct host_snapshot *snap, struct verr *err)
{
	char path[PATH_MAX];
	snap->iommu_enabled = iommu_active();
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
	snap->kvm_unusable[0] = '\0';
	if (snap->kvm && host_path(path, sizeof(path), "/dev/kvm") != NULL)
		snap->kvm_usable = kvm_probe(snap, path);
	snap->vfio_pci_loaded = host_has("/sys/bus/pci/drivers/vfio-pci");
	snap->vfio_pci_available = snap->vfio_pci_loaded ||
	    (snap->kernel_release[0] != '\0' && vfio_pci_module_exists(snap->kernel_release));
	snap->zfs_loaded = host_has("/sys/module/zfs");
	snap->vhost_net = host_has("/dev/vhost-net");
	return 0;
}
