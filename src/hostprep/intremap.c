/* Interrupt remapping, as vfio sees it. vfio_iommu_type1 attaches a group
 * only when the IOMMU isolates the device's MSIs (interrupt remapping on
 * x86) or its module parameter allow_unsafe_interrupts is set; otherwise
 * QEMU's device_add fails with "Failed to set iommu for container:
 * Operation not permitted" after the device was already bound.
 *
 * What tells userspace the kernel remaps interrupts: the irq chips. With
 * remapping on, the kernel stacks its remapping domain under the IO-APIC
 * and MSI domains, and their chips are named "IR-IO-APIC", "IR-PCI-MSI",
 * "IR-PCI-MSIX-0000:00:14.0" (Intel and AMD alike); without it they are
 * "IO-APIC", "PCI-MSI...". /sys/kernel/irq/N/chip_name (4.17+) names each
 * irq's chip, so one "IR-" chip proves it on. The DMAR units' capability
 * registers (/sys/class/iommu/dmar*\/intel-iommu/ecap, bit 3) only say the
 * hardware could; they tell which fix to name: a firmware setting when a
 * unit lacks it, the kernel command line when every unit has it and the
 * kernel still did not turn it on. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

/* Intel VT-d extended capability: Interrupt Remapping support. */
#define DMAR_ECAP_IR (1ULL << 3)

/* 1 when some irq's chip is a remapping one, -1 when chips were read and
 * none is, 0 when the kernel does not list them. */
static int
intremap_chips(void)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/kernel/irq") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	int seen = 0;
	struct dirent *de;
	while (seen != 1 && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s/chip_name", dir, de->d_name) >= (int)sizeof(path))
			continue;
		char *chip = host_read_line(path);
		if (chip == NULL)
			continue;
		if (*chip != '\0')
			seen = str_startswith(chip, "IR-") ? 1 : -1;
		free(chip);
	}
	closedir(d);
	return seen;
}

/* 1 when every DMAR unit offers remapping, -1 when one does not, 0 when
 * there are none to ask (AMD-Vi, no IOMMU). */
static int
intremap_dmar_capable(void)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/class/iommu") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	int capable = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!str_startswith(de->d_name, "dmar"))
			continue;
		char path[PATH_MAX];
		unsigned long long ecap;
		if (snprintf(path, sizeof(path), "%s/%s/intel-iommu/ecap", dir, de->d_name) >= (int)sizeof(path) ||
		    !snap_read_ulong(path, 16, &ecap))
			continue;
		if ((ecap & DMAR_ECAP_IR) == 0) {
			capable = -1;
			break;
		}
		capable = 1;
	}
	closedir(d);
	return capable;
}

/* A kernel bool parameter's value: 1, y, Y, t, T, on (kstrtobool). */
static bool
intremap_param_true(const char *v)
{
	if (v[0] != '\0' && strchr("1yYtT", v[0]) != NULL)
		return true;
	return strcasecmp(v, "on") == 0;
}

/* modprobe.d: "options vfio_iommu_type1 allow_unsafe_interrupts=1" in any
 * of the places modprobe reads, for a module not loaded yet. Module names
 * treat '-' and '_' alike. */
static bool
intremap_modprobe_sets(const char *module, char *from, size_t len)
{
	static const char *const dirs[] = { "/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
		"/usr/lib/modprobe.d", "/lib/modprobe.d" };
	bool found = false;
	for (size_t i = 0; i < nitems(dirs) && !found; i++) {
		char dir[PATH_MAX];
		if (host_path(dir, sizeof(dir), "%s", dirs[i]) == NULL)
			continue;
		DIR *d = opendir(dir);
		if (d == NULL)
			continue;
		struct dirent *de;
		while (!found && (de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			if (n < 6 || strcmp(de->d_name + n - 5, ".conf") != 0)
				continue;
			char path[PATH_MAX];
			if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
				continue;
			char *text = host_read(path, NULL);
			for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL && !found;
			    line = strtok_r(NULL, "\n", &save)) {
				char *s2 = NULL;
				char *w = strtok_r(line, " \t", &s2);
				if (w == NULL || strcmp(w, "options") != 0 || (w = strtok_r(NULL, " \t", &s2)) == NULL)
					continue;
				for (char *p = w; *p; p++)
					if (*p == '-')
						*p = '_';
				if (strcmp(w, module) != 0)
					continue;
				while ((w = strtok_r(NULL, " \t", &s2)) != NULL) {
					if (str_startswith(w, "allow_unsafe_interrupts=") &&
					    intremap_param_true(w + strlen("allow_unsafe_interrupts="))) {
						snprintf(from, len, "%s/%s", dirs[i], de->d_name);
						found = true;
					}
				}
			}
			free(text);
		}
		closedir(d);
	}
	return found;
}

/* allow_unsafe_interrupts of module: the loaded module's value when it is
 * loaded (or built in), else what loading it would set. */
static bool
intremap_unsafe_for(struct host_snapshot *snap, const char *module)
{
	char path[PATH_MAX];
	char *from = snap->unsafe_interrupts_from;
	size_t len = sizeof(snap->unsafe_interrupts_from);
	if (host_path(path, sizeof(path), "/sys/module/%s/parameters/allow_unsafe_interrupts", module) != NULL &&
	    host_exists(path)) {
		char *v = host_read_line(path);
		bool on = v != NULL && intremap_param_true(v);
		free(v);
		if (on)
			snprintf(from, len, "/sys/module/%s/parameters/allow_unsafe_interrupts", module);
		return on;
	}
	char param[96];
	snprintf(param, sizeof(param), "%s.allow_unsafe_interrupts", module);
	const char *cmd = snap->kernel_cmdline ? snap->kernel_cmdline : "";
	for (const char *w = strstr(cmd, param); w != NULL; w = strstr(w + 1, param)) {
		if ((w == cmd || w[-1] == ' ') && w[strlen(param)] == '=' && intremap_param_true(w + strlen(param) + 1)) {
			snprintf(from, len, "the kernel command line (%s=1)", param);
			return true;
		}
	}
	return intremap_modprobe_sets(module, from, len);
}

int
intremap_scan(struct host_snapshot *snap, struct verr *err)
{
	(void)err;
	char path[PATH_MAX];
	if (snap->kernel_cmdline == NULL && host_path(path, sizeof(path), "/proc/cmdline") != NULL)
		snap->kernel_cmdline = host_read_line(path);
	snap->intremap = intremap_chips();
	snap->intremap_hw = intremap_dmar_capable();
	snap->unsafe_interrupts_from[0] = '\0';
	/* /dev/vfio/vfio is vfio_iommu_type1's, or iommufd's on kernels built
	 * with its compatibility container; each has the parameter. */
	snap->unsafe_interrupts = intremap_unsafe_for(snap, "vfio_iommu_type1") ||
	    intremap_unsafe_for(snap, "iommufd");
	return 0;
}
