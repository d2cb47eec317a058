/* The host snapshot: runs every reader once under the host root, records the
 * files the options name and the environment, and answers lookups for the
 * plan. Missing pieces are facts about the host, not errors. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "display.h"
#include "hostroot.h"
#include "log.h"
#include "qemucaps.h"
#include "safepath.h"
#include "snapshot-priv.h"
#include "util.h"

void *
snap_grow(void *arrp, size_t *n, size_t *cap, size_t size)
{
	void **arr = arrp;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		*arr = xreallocarray(*arr, ncap, size);
		*cap = ncap;
	}
	char *el = (char *)*arr + *n * size;
	memset(el, 0, size);
	(*n)++;
	return el;
}

void
snap_copy(char *dst, size_t len, const char *src)
{
	if (len == 0)
		return;
	snprintf(dst, len, "%s", src ? src : "");
}

bool
snap_read_ulong(const char *path, int base, unsigned long long *out)
{
	char *s = host_read_line(path);
	if (s == NULL)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	bool ok = errno == 0 && end != s && *end == '\0';
	free(s);
	if (ok)
		*out = v;
	return ok;
}

bool
snap_parse_cpulist(const char *s, void (*fn)(int cpu, void *arg), void *arg)
{
	const char *p = s;
	while (*p == ' ' || *p == '\n')
		p++;
	if (*p == '\0')
		return true;
	for (;;) {
		char *end;
		long a = strtol(p, &end, 10);
		if (end == p || a < 0 || a > INT_MAX)
			return false;
		long b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtol(p, &end, 10);
			if (end == p || b < a || b > INT_MAX)
				return false;
			p = end;
		}
		for (long c = a; c <= b; c++)
			fn((int)c, arg);
		if (*p == ',') {
			p++;
			continue;
		}
		while (*p == ' ' || *p == '\n')
			p++;
		return *p == '\0';
	}
}

/* Disks whose names end in a digit put a 'p' before the partition number
 * (nvme0n1p2, mmcblk0p1); the others append it (sda1, vdb2). */
static const char *const digit_disks[] = { "nvme", "mmcblk", "loop", "md", "nbd", "zd", "rbd", "nvd" };

void
snapshot_disk_of(const char *name, char *out, size_t len)
{
	char buf[PATH_MAX];
	snap_copy(out, len, name);
	/* The kernel's own answer when the host has the device: a partition
	 * has a `partition` attribute and lives in its disk's directory. */
	if (host_path(buf, sizeof(buf), "/sys/class/block/%s/partition", name) != NULL && host_exists(buf)) {
		char real[PATH_MAX];
		if (host_path(buf, sizeof(buf), "/sys/class/block/%s/..", name) != NULL && realpath(buf, real) != NULL) {
			const char *slash = strrchr(real, '/');
			snap_copy(out, len, slash ? slash + 1 : real);
			return;
		}
	}
	if (host_path(buf, sizeof(buf), "/sys/block/%s", name) != NULL && host_exists(buf))
		return;
	size_t n = strlen(out);
	size_t end = n;
	while (end > 0 && out[end - 1] >= '0' && out[end - 1] <= '9')
		end--;
	if (end == n || end == 0)
		return;
	bool digit_disk = false;
	for (size_t i = 0; i < nitems(digit_disks); i++)
		digit_disk |= str_startswith(out, digit_disks[i]);
	if (digit_disk) {
		if (out[end - 1] == 'p' && end >= 2 && out[end - 2] >= '0' && out[end - 2] <= '9')
			out[end - 1] = '\0';
		return;
	}
	out[end] = '\0';
}

static void
file_record(struct host_snapshot *snap, size_t *cap, const char *path)
{
	if (path == NULL || *path == '\0')
		return;
	for (size_t i = 0; i < snap->n_files; i++)
		if (strcmp(snap->files[i].path, path) == 0)
			return;
	struct host_file *f = snap_grow(&snap->files, &snap->n_files, cap, sizeof(*f));
	f->path = xstrdup(path);

	char full[PATH_MAX];
	if (path[0] == '/') {
		if (host_path(full, sizeof(full), "%s", path) == NULL)
			return;
	} else {
		snap_copy(full, sizeof(full), path);
	}
	struct stat st;
	if (stat(full, &st) < 0)
		return;
	f->exists = true;
	f->uid = st.st_uid;
	f->gid = st.st_gid;
	f->mode = st.st_mode & 07777;
	f->readable = access(full, R_OK) == 0;
	f->is_block = S_ISBLK(st.st_mode);
	if (!f->is_block)
		return;

	/* The device's own name: the last component of the path once symlinks
	 * (/dev/disk/by-id/...) are resolved inside the host root. */
	char real[PATH_MAX];
	const char *name = full;
	if (realpath(full, real) != NULL)
		name = real;
	const char *slash = strrchr(name, '/');
	name = slash ? slash + 1 : name;
	snapshot_disk_of(name, f->disk_name, sizeof(f->disk_name));
	char attr[PATH_MAX];
	if (host_path(attr, sizeof(attr), "/sys/block/%s/device/serial", f->disk_name) != NULL) {
		char *serial = host_read_line(attr);
		if (serial != NULL) {
			/* Some drives pad their serial with spaces. */
			char *s = serial;
			while (*s == ' ')
				s++;
			snap_copy(f->disk_serial, sizeof(f->disk_serial), s);
			free(serial);
		}
	}
}

static void
files_scan(struct host_snapshot *snap, const struct strv *files)
{
	size_t cap = 0;
	for (size_t i = 0; files != NULL && i < files->n; i++)
		file_record(snap, &cap, files->v[i]);
}

static int
env_int(const char *name)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

static char *
env_dup(const char *name)
{
	const char *s = getenv(name);
	return s && *s ? xstrdup(s) : NULL;
}

static void
env_scan(struct host_snapshot *snap)
{
	snap->display = env_dup("DISPLAY");
	snap->wayland_display = env_dup("WAYLAND_DISPLAY");
	snap->sudo_uid = env_int("SUDO_UID");
	snap->sudo_gid = env_int("SUDO_GID");
	snap->sudo_user = env_dup("SUDO_USER");
	snap->euid_root = geteuid() == 0;
}

static void
node_scan(struct host_node *n, const char *path)
{
	char full[PATH_MAX];
	struct stat st;
	if (host_path(full, sizeof(full), "%s", path) == NULL || stat(full, &st) < 0)
		return;
	*n = (struct host_node){ .exists = true, .uid = st.st_uid, .gid = st.st_gid, .mode = st.st_mode & 07777 };
}

/* The guest's MAC is derived from it (the plan), so a guest keeps its MAC
 * from run to run on one host. 32 hex digits, as systemd writes it. */
static void
machine_id_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/etc/machine-id") == NULL)
		return;
	char *id = host_read_line(path);
	if (id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32)
		snap_copy(snap->machine_id, sizeof(snap->machine_id), id);
	free(id);
}

/* NetworkManager leaves /run/NetworkManager behind when it stops, so the
 * directory alone proves nothing: its pid file must name a live process
 * that is NetworkManager. */
static void
network_manager_scan(struct host_snapshot *snap)
{
	char path[PATH_MAX];
	unsigned long long pid;
	if (host_path(path, sizeof(path), "/run/NetworkManager/NetworkManager.pid") == NULL ||
	    !snap_read_ulong(path, 10, &pid) || pid == 0)
		return;
	if (host_path(path, sizeof(path), "/proc/%llu/comm", pid) == NULL)
		return;
	char *comm = host_read_line(path);
	snap->network_manager = comm != NULL && strcmp(comm, "NetworkManager") == 0;
	free(comm);
}

int
snapshot_take(struct host_snapshot *snap, const struct strv *files, struct verr *err)
{
	static int (*const readers[])(struct host_snapshot *, struct verr *) = {
		pci_scan, iommu_scan, intremap_scan, usb_scan, cpu_scan, memory_scan, firmware_scan, netinfo_scan,
		hostneeds_scan,
	};
	memset(snap, 0, sizeof(*snap));
	for (size_t i = 0; i < nitems(readers); i++) {
		int r = readers[i](snap, err);
		if (r < 0) {
			snapshot_free(snap);
			return r;
		}
	}
	files_scan(snap, files);
	env_scan(snap);
	network_manager_scan(snap);
	node_scan(&snap->kvm_node, "/dev/kvm");
	node_scan(&snap->vfio_node, "/dev/vfio/vfio");
	machine_id_scan(snap);
	snap->n_fbcons = display_fbcon_scan(snap->fbcons, SNAPSHOT_MAX_FBCONS);
	qemuuser_read(&snap->qemu_user);
	snapshot_claims_read(snap, NULL);
	return 0;
}

static void
claims_add(struct host_snapshot *snap, size_t *cap, const char *guest, const char *pci, const char *port,
    const char *node)
{
	struct host_claim *c = snap_grow(&snap->claims, &snap->n_claims, cap, sizeof(*c));
	snap_copy(c->guest, sizeof(c->guest), guest);
	snap_copy(c->pci, sizeof(c->pci), pci ? pci : "");
	snap_copy(c->usb_port, sizeof(c->usb_port), port ? port : "");
	snap_copy(c->node, sizeof(c->node), node ? node : "");
}

/* One guest's status.json: what is attached ("hostdev-0000-02-00-0" is
 * 0000:02:00.0, "usb-1-4.2" port 1-4.2) and the host changes in force that
 * hold a device for it (pci-bind-vfio, dev-chown of a node). */
static void
claims_of(struct host_snapshot *snap, size_t *cap, const char *guest, const json_t *st)
{
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(json_object_get(st, "devices"), "attached"), i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		if (id != NULL && str_startswith(id, "hostdev-") && strlen(id) == 20) {
			char addr[16];
			snprintf(addr, sizeof(addr), "%.4s:%.2s:%.2s.%.1s", id + 8, id + 13, id + 16, id + 19);
			claims_add(snap, cap, guest, addr, NULL, NULL);
		} else if (id != NULL && str_startswith(id, "usb-")) {
			claims_add(snap, cap, guest, NULL, id + 4, NULL);
		}
	}
	json_array_foreach(json_object_get(st, "host_changes"), i, d) {
		const char *action = json_string_value(json_object_get(d, "action"));
		const char *target = json_string_value(json_object_get(d, "target"));
		if (action == NULL || target == NULL)
			continue;
		if (strcmp(action, "pci-bind-vfio") == 0)
			claims_add(snap, cap, guest, target, NULL, NULL);
		else if (strcmp(action, "dev-chown") == 0 && (str_startswith(target, "/dev/bus/usb/") ||
		    str_startswith(target, "/dev/vfio/")) && strcmp(target, "/dev/vfio/vfio") != 0)
			claims_add(snap, cap, guest, NULL, NULL, target);
	}
}

void
snapshot_claims_read(struct host_snapshot *snap, const char *except)
{
	free(snap->claims);
	snap->claims = NULL;
	snap->n_claims = 0;
	size_t cap = 0;
	int dir = safepath_open("/run/vfio", O_RDONLY | O_DIRECTORY, 0, NULL);
	if (dir < 0)
		return;
	DIR *d = fdopendir(dir);
	if (d == NULL) {
		close(dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (except != NULL && strcmp(de->d_name, except) == 0))
			continue;
		char *path = xasprintf("/run/vfio/%s/status.json", de->d_name);
		int fd = safepath_open(path, O_RDONLY, 0, NULL);
		free(path);
		if (fd < 0)
			continue;
		json_t *st = json_loadfd(fd, 0, NULL);
		close(fd);
		if (st != NULL)
			claims_of(snap, &cap, de->d_name, st);
		json_decref(st);
	}
	closedir(d);
}

int
snapshot_device_facts(struct host_snapshot *snap, struct verr *err)
{
	snap->iommu_enabled = iommu_active();
	memory_memlock_scan(snap);
	int r = intremap_scan(snap, err);
	return r < 0 ? r : hostneeds_scan(snap, err);
}

void
snapshot_free(struct host_snapshot *snap)
{
	if (snap == NULL)
		return;
	free(snap->pci);
	free(snap->usb);
	free(snap->cpus);
	free(snap->hugepools);
	free(snap->hugemounts);
	free(snap->ifaces);
	free(snap->firmware);
	free(snap->needs);
	free(snap->ports);
	qemucaps_free(&snap->qemu);
	for (size_t i = 0; i < snap->n_files; i++)
		free(snap->files[i].path);
	free(snap->files);
	free(snap->kernel_cmdline);
	free(snap->display);
	free(snap->wayland_display);
	free(snap->sudo_user);
	free(snap->claims);
	memset(snap, 0, sizeof(*snap));
}

struct pci_key {
	unsigned domain, bus, dev, function;
};

static int
pci_cmp_key(const void *key, const void *el)
{
	const struct pci_key *k = key;
	const struct pci_device *d = el;
	if (k->domain != d->domain)
		return k->domain < d->domain ? -1 : 1;
	if (k->bus != d->bus)
		return k->bus < d->bus ? -1 : 1;
	if (k->dev != d->dev)
		return k->dev < d->dev ? -1 : 1;
	if (k->function != d->function)
		return k->function < d->function ? -1 : 1;
	return 0;
}

const struct pci_device *
snapshot_pci_find(const struct host_snapshot *snap, const char *address)
{
	/* pci_scan() sorts by address as lspci does. */
	struct pci_key k;
	char end;
	if (snap->n_pci == 0 || address == NULL ||
	    sscanf(address, "%x:%x:%x.%x%c", &k.domain, &k.bus, &k.dev, &k.function, &end) != 4)
		return NULL;
	return bsearch(&k, snap->pci, snap->n_pci, sizeof(*snap->pci), pci_cmp_key);
}

const struct host_file *
snapshot_file_find(const struct host_snapshot *snap, const char *path)
{
	for (size_t i = 0; path != NULL && i < snap->n_files; i++)
		if (strcmp(snap->files[i].path, path) == 0)
			return &snap->files[i];
	return NULL;
}

const struct net_iface *
snapshot_iface_find(const struct host_snapshot *snap, const char *name)
{
	for (size_t i = 0; name != NULL && i < snap->n_ifaces; i++)
		if (strcmp(snap->ifaces[i].name, name) == 0)
			return &snap->ifaces[i];
	return NULL;
}

const struct cpu_thread *
snapshot_cpu_find(const struct host_snapshot *snap, int cpu)
{
	for (size_t i = 0; i < snap->n_cpus; i++)
		if (snap->cpus[i].cpu == cpu)
			return &snap->cpus[i];
	return NULL;
}

const struct usb_device *
snapshot_usb_find(const struct host_snapshot *snap, unsigned bus, unsigned devnum)
{
	for (size_t i = 0; i < snap->n_usb; i++)
		if (snap->usb[i].bus == bus && snap->usb[i].devnum == devnum)
			return &snap->usb[i];
	return NULL;
}

bool
snapshot_cmdline_has(const struct host_snapshot *snap, const char *param)
{
	if (snap->kernel_cmdline == NULL || param == NULL || *param == '\0')
		return false;
	size_t plen = strlen(param);
	bool with_value = strchr(param, '=') != NULL;
	for (const char *w = snap->kernel_cmdline; *w;) {
		while (*w == ' ' || *w == '\t')
			w++;
		size_t wlen = strcspn(w, " \t");
		if (wlen == 0)
			break;
		if (wlen == plen && strncmp(w, param, plen) == 0)
			return true;
		if (!with_value && wlen > plen && strncmp(w, param, plen) == 0 && w[plen] == '=')
			return true;
		w += wlen;
	}
	return false;
}
