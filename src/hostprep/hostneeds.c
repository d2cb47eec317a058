/* What the host itself needs, by the PCI device it hangs off: the disks of
 * every mounted filesystem and active swap partition (through partitions,
 * device-mapper and md layers), the interface of the default route
 * (through bridges, bonds and VLANs), and the keyboards. A device the host
 * needs must not be handed to a guest by accident: pulling the root disk's
 * controller hangs the host at once.
 *
 * Everything is found from sysfs paths: /sys/dev/block/MAJ:MIN,
 * /sys/class/net/IF/device and /sys/class/input/inputN resolve into
 * /sys/devices/pci0000:00/0000:00:1d.0/0000:02:00.0/..., whose PCI
 * components are the devices it depends on (bridges included; the plan
 * never passes bridges, so only the endpoint matters). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

/* Layers (dm on md on partitions...) followed at most this deep. */
#define NEEDS_MAX_DEPTH 8

struct needs_ctx {
	struct host_snapshot *snap;
	size_t cap;
};

static bool
needs_is_pci_addr(const char *s, size_t n)
{
	/* dddd:bb:dd.f */
	if (n != 12)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool ok = i == 4 || i == 7 ? s[i] == ':' : i == 10 ? s[i] == '.' : isxdigit((unsigned char)s[i]);
		if (!ok)
			return false;
	}
	return true;
}

static void
needs_add(struct needs_ctx *c, const char *pci, enum host_need_kind kind, int index, const char *what)
{
	struct host_snapshot *snap = c->snap;
	for (size_t i = 0; i < snap->n_needs; i++) {
		const struct host_need *n = &snap->needs[i];
		if (n->kind == kind && n->index == index && strcmp(n->pci, pci) == 0 && strcmp(n->what, what) == 0)
			return;
	}
	struct host_need *n = snap_grow(&snap->needs, &snap->n_needs, &c->cap, sizeof(*n));
	snap_copy(n->pci, sizeof(n->pci), pci);
	n->kind = kind;
	n->index = index;
	snap_copy(n->what, sizeof(n->what), what);
}

/* The sysfs path a host path resolves to, as a host path ("/sys/devices/..."),
 * allocated; NULL when it does not resolve. */
static char *
needs_resolve(const char *hostpath)
{
	char full[PATH_MAX], real[PATH_MAX];
	if (host_path(full, sizeof(full), "%s", hostpath) == NULL)
		return NULL;
	/* The class links (/sys/dev/block/M:m, /sys/class/input/inputN) name
	 * the device's whole path, "../../devices/pci0000:00/...": one
	 * readlink instead of realpath's lstat per component, which a
	 * `pci add` would pay for every mount and keyboard. */
	ssize_t n = readlink(full, real, sizeof(real) - 1);
	if (n > 0) {
		real[n] = '\0';
		const char *dev = strstr(real, "/devices/");
		size_t up = 0;
		for (const char *p = real; str_startswith(p, "../"); p += 3)
			up++;
		const char *slash = strrchr(hostpath, '/');
		size_t depth = 0;
		for (const char *p = hostpath; p < slash; p++)
			depth += *p == '/';
		/* ../ climbs from the link's directory back to /sys exactly */
		if (dev != NULL && dev == real + 3 * up - 1 && depth == up + 1 && str_startswith(hostpath, "/sys/"))
			return xasprintf("/sys%s", dev);
	}
	if (realpath(full, real) == NULL)
		return NULL;
	size_t rl = strlen(hostroot_get());
	if (strncmp(real, hostroot_get(), rl) != 0 || (real[rl] != '/' && real[rl] != '\0'))
		return NULL;         /* a link out of the host root: not the host's */
	return xstrdup(real[rl] ? real + rl : "/");
}

/* Record every PCI device on the sysfs path devpath. Returns how many. */
static size_t
needs_add_path(struct needs_ctx *c, const char *devpath, enum host_need_kind kind, int index, const char *what)
{
	size_t found = 0;
	for (const char *p = devpath; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (needs_is_pci_addr(p, n)) {
			char addr[16];
			snprintf(addr, sizeof(addr), "%.*s", (int)n, p);
			needs_add(c, addr, kind, index, what);
			found++;
		}
		p += n;
	}
	return found;
}

/* A block device (a host sysfs path such as /sys/dev/block/259:2 or
 * /sys/class/block/dm-0) and what lies beneath it: a dm or md device names
 * its components in slaves/. */
static void
needs_block(struct needs_ctx *c, const char *syspath, const char *what, int depth)
{
	if (depth > NEEDS_MAX_DEPTH)
		return;
	char *real = needs_resolve(syspath);
	if (real == NULL)
		return;
	needs_add_path(c, real, HOST_NEED_STORAGE, -1, what);
	char dir[PATH_MAX];
	DIR *d = host_path(dir, sizeof(dir), "%s/slaves", real) != NULL ? opendir(dir) : NULL;
	/* A partition's slaves are its disk's: the disk directory is its parent. */
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		if (snprintf(sub, sizeof(sub), "/sys/class/block/%s", de->d_name) < (int)sizeof(sub))
			needs_block(c, sub, what, depth + 1);
	}
	if (d != NULL)
		closedir(d);
	free(real);
}

/* The block device a /dev path names: its major:minor under the host root. */
static bool
needs_devnode(const char *devpath, unsigned *maj, unsigned *min)
{
	char full[PATH_MAX];
	struct stat st;
	if (host_path(full, sizeof(full), "%s", devpath) == NULL || stat(full, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	*maj = major(st.st_rdev);
	*min = minor(st.st_rdev);
	return true;
}

/* /proc/mounts and /proc/swaps write a space as \040 (and tab, newline,
 * backslash likewise): undo it in place. */
static void
needs_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Each distinct block device once: a host with containers mounts the
 * same disk hundreds of times, and only the first mount point is named. */
struct needs_seen {
	unsigned maj, min;
};

static bool
needs_seen_add(struct needs_seen **seen, size_t *n, size_t *cap, unsigned maj, unsigned min)
{
	for (size_t i = 0; i < *n; i++)
		if ((*seen)[i].maj == maj && (*seen)[i].min == min)
			return false;
	struct needs_seen *s = snap_grow(seen, n, cap, sizeof(**seen));
	s->maj = maj;
	s->min = min;
	return true;
}

static void
needs_mounts(struct needs_ctx *c, struct needs_seen **seen, size_t *n_seen, size_t *cap_seen)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/proc/self/mountinfo") == NULL)
		return;
	char *text = host_read(path, NULL);
	if (text == NULL)
		return;
	/* id parent MAJ:MIN root mountpoint options [optional...] - fstype source superoptions */
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[40];
		char *s2 = NULL;
		size_t nf = 0;
		for (char *w = strtok_r(line, " ", &s2); w != NULL && nf < nitems(f); w = strtok_r(NULL, " ", &s2))
			f[nf++] = w;
		size_t dash = 6;
		while (dash < nf && strcmp(f[dash], "-") != 0)
			dash++;
		if (nf < 6)
			continue;
		char *source = dash + 2 < nf ? f[dash + 2] : NULL;
		unsigned maj, min;
		if (sscanf(f[2], "%u:%u", &maj, &min) != 2)
			continue;
		/* btrfs and others report an anonymous device (major 0): the
		 * source names the disk. */
		if (maj == 0) {
			if (source == NULL || !str_startswith(source, "/dev/"))
				continue;
			needs_unescape(source);
			if (!needs_devnode(source, &maj, &min))
				continue;
		}
		if (!needs_seen_add(seen, n_seen, cap_seen, maj, min))
			continue;
		char *mnt = f[4];
		needs_unescape(mnt);
		char sys[64], what[160];
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", maj, min);
		char *real = needs_resolve(sys);
		const char *name = real ? strrchr(real, '/') + 1 : f[2];
		snprintf(what, sizeof(what), "%s (%s)", mnt, name);
		free(real);
		needs_block(c, sys, what, 0);
	}
	free(text);
}

static void
needs_swaps(struct needs_ctx *c, struct needs_seen **seen, size_t *n_seen, size_t *cap_seen)
{
	char path[PATH_MAX];
	if (host_path(path, sizeof(path), "/proc/swaps") == NULL)
		return;
	char *text = host_read(path, NULL);
	if (text == NULL)
		return;
	/* Filename Type Size Used Priority; a swap file lives on a mounted
	 * filesystem, which the mounts cover. */
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL;
		char *file = strtok_r(line, " \t", &s2), *type = strtok_r(NULL, " \t", &s2);
		if (file == NULL || type == NULL || strcmp(type, "partition") != 0)
			continue;
		needs_unescape(file);
		unsigned maj, min;
		if (!needs_devnode(file, &maj, &min) || !needs_seen_add(seen, n_seen, cap_seen, maj, min))
			continue;
		char sys[64], what[160];
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", maj, min);
		snprintf(what, sizeof(what), "swap %s", file);
		needs_block(c, sys, what, 0);
	}
	free(text);
}

/* An interface and what carries it: its own device, or for a bridge, bond
 * or VLAN the interfaces beneath it (lower_*, or brif/ for a bridge). */
static void
needs_iface(struct needs_ctx *c, const char *ifname, const char *what, int depth)
{
	if (depth > NEEDS_MAX_DEPTH || strchr(ifname, '/') != NULL)
		return;
	char sys[PATH_MAX];
	snprintf(sys, sizeof(sys), "/sys/class/net/%s/device", ifname);
	char *real = needs_resolve(sys);
	if (real != NULL) {
		needs_add_path(c, real, HOST_NEED_ROUTE, -1, what);
		free(real);
		return;
	}
	for (size_t k = 0; k < 2; k++) {
		char dir[PATH_MAX], rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "/sys/class/net/%s%s", ifname, k == 0 ? "" : "/brif");
		DIR *d = host_path(dir, sizeof(dir), "%s", rel) != NULL ? opendir(dir) : NULL;
		bool any = false;
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			const char *lower = k == 0 ? (str_startswith(de->d_name, "lower_") ? de->d_name + 6 : NULL) :
			    de->d_name[0] != '.' ? de->d_name : NULL;
			if (lower == NULL)
				continue;
			needs_iface(c, lower, what, depth + 1);
			any = true;
		}
		if (d != NULL)
			closedir(d);
		if (any)
			return;
	}
}

static void
needs_route_add(struct needs_ctx *c, struct strv *done, const char *ifname)
{
	if (strcmp(ifname, "lo") == 0)
		return;
	for (size_t i = 0; i < done->n; i++)
		if (strcmp(done->v[i], ifname) == 0)
			return;
	strv_push(done, ifname);
	needs_iface(c, ifname, ifname, 0);
}

static void
needs_routes(struct needs_ctx *c)
{
	struct strv done = { 0 };
	char path[PATH_MAX];
	/* Iface Destination Gateway Flags RefCnt Use Metric Mask ...: the
	 * default route is destination and mask 0, up (RTF_UP). */
	char *text = host_path(path, sizeof(path), "/proc/net/route") ? host_read(path, NULL) : NULL;
	for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	    line = strtok_r(NULL, "\n", &save)) {
		char ifname[32], dest[16], gw[16], mask[16];
		unsigned flags, refcnt, use, metric;
		if (sscanf(line, "%31s %15s %15s %x %u %u %u %15s", ifname, dest, gw, &flags, &refcnt, &use, &metric,
		    mask) == 8 && strcmp(dest, "00000000") == 0 && strcmp(mask, "00000000") == 0 && (flags & 1))
			needs_route_add(c, &done, ifname);
	}
	free(text);
	/* dest prefixlen src prefixlen nexthop metric refcnt use flags iface;
	 * the kernel's own unreachable default lives on lo. */
	text = host_path(path, sizeof(path), "/proc/net/ipv6_route") ? host_read(path, NULL) : NULL;
	for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	    line = strtok_r(NULL, "\n", &save)) {
		char dest[40], ifname[32];
		unsigned plen, flags;
		if (sscanf(line, "%39s %x %*s %*x %*s %*x %*x %*x %x %31s", dest, &plen, &flags, ifname) == 4 &&
		    plen == 0 && strspn(dest, "0") == 32 && (flags & 1) && !(flags & 0x200))
			needs_route_add(c, &done, ifname);
	}
	free(text);
	strv_free(&done);
}

/* A keyboard, as udev's input_id decides: EV_KEY with every key from
 * KEY_ESC (1) to KEY_S (31), the first word of the key bitmap. sysfs
 * prints the bitmap as longs, most significant first. */
static bool
needs_is_keyboard(const char *input)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/input/%s/capabilities/key", input);
	char full[PATH_MAX];
	char *bits = host_path(full, sizeof(full), "%s", path) ? host_read_line(full) : NULL;
	if (bits == NULL)
		return false;
	const char *last = strrchr(bits, ' ');
	last = last ? last + 1 : bits;
	unsigned long long low = strtoull(last, NULL, 16);
	free(bits);
	return (low & 0xfffffffeULL) == 0xfffffffeULL;
}

static void
needs_keyboards(struct needs_ctx *c)
{
	char dir[PATH_MAX];
	DIR *d = host_path(dir, sizeof(dir), "/sys/class/input") ? opendir(dir) : NULL;
	if (d == NULL)
		return;
	struct strv inputs = { 0 };
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (str_startswith(de->d_name, "input") && isdigit((unsigned char)de->d_name[5]))
			strv_push(&inputs, de->d_name);
	closedir(d);
	for (size_t i = 0; i < inputs.n; i++) {
		const char *in = inputs.v[i];
		if (!needs_is_keyboard(in))
			continue;
		char sys[PATH_MAX];
		snprintf(sys, sizeof(sys), "/sys/class/input/%s", in);
		char *real = needs_resolve(sys);
		/* uinput devices (remote desktops, key remappers) are no keyboard
		 * anyone can type on. */
		if (real == NULL || str_startswith(real, "/sys/devices/virtual/")) {
			free(real);
			continue;
		}
		char full[PATH_MAX], what[160];
		char *name = host_path(full, sizeof(full), "%s/name", sys) ? host_read_line(full) : NULL;
		snprintf(what, sizeof(what), "%s (%s)", name && *name ? name : "keyboard", in);
		free(name);
		needs_add_path(c, real, HOST_NEED_KEYBOARD, (int)c->snap->n_keyboards, what);
		c->snap->n_keyboards++;
		free(real);
	}
	strv_free(&inputs);
}

int
hostneeds_scan(struct host_snapshot *snap, struct verr *err)
{
	(void)err;
	struct needs_ctx c = { .snap = snap };
	struct needs_seen *seen = NULL;
	size_t n_seen = 0, cap_seen = 0;
	needs_mounts(&c, &seen, &n_seen, &cap_seen);
	needs_swaps(&c, &seen, &n_seen, &cap_seen);
	free(seen);
	needs_routes(&c);
	needs_keyboards(&c);
	return 0;
}
