/* drvcore: a simulated kernel PCI driver core for host-root fixtures.
 *
 * LD_PRELOAD this library and point $VFIO_HOST_ROOT at a tree made by
 * tests/fixtures/mkhost.py: writes to the driver-core attributes under
 * $VFIO_HOST_ROOT/sys/bus/pci (driver_override, drivers/DRV/{bind,unbind,
 * new_id,remove_id}, drivers_probe) and /sys/bus/platform/drivers/DRV/{bind,
 * unbind} then act as the kernel does: driver symlinks move, /dev/vfio/GROUP
 * comes and goes, errnos match. All state lives in the fixture itself (the
 * symlinks, plus $VFIO_HOST_ROOT/.drvcore/ for what the kernel keeps in
 * memory), so forked and exec'd processes all see one consistent "kernel".
 * Faults are read from $VFIO_HOST_ROOT/.drvcore/faults; see README.md.
 *
 * Anything written under sys/bus/pci that the mock does not model fails with
 * EIO and a message on stderr: a fake must fail loudly, never pretend. */
/* The mock defines both open and open64: they must not be one symbol. */
#undef _FILE_OFFSET_BITS

#include <dirent.h>
#include <dlfcn.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The interposed symbols are the public ABI of this library; the prototypes
 * come from the system headers (open64 and friends need these). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

enum attr_kind {
	ATTR_NONE = 0,
	ATTR_OVERRIDE,		/* devices/ADDR/driver_override */
	ATTR_BIND,		/* drivers/DRV/bind */
	ATTR_UNBIND,		/* drivers/DRV/unbind */
	ATTR_NEW_ID,		/* drivers/DRV/new_id */
	ATTR_REMOVE_ID,		/* drivers/DRV/remove_id */
	ATTR_PROBE,		/* drivers_probe */
	ATTR_UNKNOWN,		/* anything else under sys/bus/pci: fails loudly */
};

struct tracked {
	enum attr_kind kind;
	char bus[16];		/* "pci" or "platform" */
	char name[64];		/* device address or driver name */
	char path[PATH_MAX];	/* for messages */
};

#define MAX_FDS 4096
static struct tracked *fds[MAX_FDS];

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);
static FILE *(*real_fopen)(const char *, const char *);

static void
drv_init(void)
{
	if (real_open != NULL)
		return;
	real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
	real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	real_fopen = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");
	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	if (!real_open || !real_openat || !real_write || !real_close || !real_fopen) {
		fprintf(stderr, "drvcore: cannot find the libc functions to wrap\n");
		abort();
	}
}

static void drv_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void
drv_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "drvcore: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void drv_loud(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
drv_loud(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "drvcore: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* The fixture root, resolved (so paths compare after realpath). "" when
 * $VFIO_HOST_ROOT is unset: then the mock does nothing at all. The resolved
 * root is kept for as long as the variable keeps its value: realpath() is a
 * readlink per component, and every intercepted call asks for the root, so
 * without the cache the simulated kernel would dominate the hotplug
 * benchmark it takes part in. A test that points the variable elsewhere
 * gets the new root resolved. */
static bool
drv_root(char *buf)
{
	static char cached_env[PATH_MAX], cached_real[PATH_MAX];
	const char *r = getenv("VFIO_HOST_ROOT");
	if (r == NULL || *r == '\0' || strcmp(r, "/") == 0)
		return false;
	if (cached_real[0] != '\0' && strcmp(r, cached_env) == 0) {
		memcpy(buf, cached_real, sizeof(cached_real));
		return true;
	}
	if (realpath(r, buf) == NULL)
		return false;
	if (strlen(r) < sizeof(cached_env)) {
		memcpy(cached_env, r, strlen(r) + 1);
		memcpy(cached_real, buf, PATH_MAX);
	}
	return true;
}

static int
drv_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
drv_path(char *buf, const char *fmt, ...)
{
	char root[PATH_MAX];
	if (!drv_root(root))
		return -1;
	char rel[PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(rel))
		drv_die("path too long: %s", fmt);
	if ((size_t)snprintf(buf, PATH_MAX, "%s%s", root, rel) >= PATH_MAX)
		drv_die("path too long: %s%s", root, rel);
	return 0;
}

/* ---- small file helpers on the real libc functions ---- */

static char *
file_read(const char *path)
{
	drv_init();
	int fd = real_open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *s = malloc(cap);
	if (s == NULL)
		drv_die("out of memory");
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			s = realloc(s, cap);
			if (s == NULL)
				drv_die("out of memory");
		}
		ssize_t n = read(fd, s + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	s[len] = '\0';
	real_close(fd);
	return s;
}

static void
file_write(const char *path, const char *data, mode_t mode)
{
	drv_init();
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.drvcore-tmp", path);
	int fd = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		drv_die("cannot write %s: %s", tmp, strerror(errno));
	size_t len = strlen(data);
	if (real_write(fd, data, len) != (ssize_t)len)
		drv_die("short write to %s", tmp);
	fchmod(fd, mode);
	real_close(fd);
	if (rename(tmp, path) < 0)
		drv_die("cannot rename %s: %s", tmp, strerror(errno));
}

static void
str_strip(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* readlink's basename: "nvidia" for a driver link, "" when absent. */
static void
link_base(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	out[0] = '\0';
	if (n < 0)
		return;
	buf[n] = '\0';
	const char *b = strrchr(buf, '/');
	snprintf(out, len, "%s", b ? b + 1 : buf);
}

/* Relative symlink target from directory `from` to `to` (both absolute and
 * resolved), the same string Python's os.path.relpath gives mkhost.py. */
static void
relpath(const char *from, const char *to, char *out, size_t len)
{
	size_t i = 0, common = 0;
	while (from[i] != '\0' && from[i] == to[i]) {
		if (from[i] == '/')
			common = i;
		i++;
	}
	if (from[i] == '\0' && (to[i] == '/' || to[i] == '\0'))
		common = i;
	out[0] = '\0';
	size_t o = 0;
	for (const char *p = from + common; *p; p++) {
		if (*p == '/' && o + 3 < len) {
			memcpy(out + o, "../", 4);
			o += 3;
		}
	}
	const char *rest = to + common;
	if (*rest == '/')
		rest++;
	if (*rest == '\0' && o > 0)
		out[o - 1] = '\0';	/* drop the trailing slash */
	else
		snprintf(out + o, len - o, "%s", rest);
}

static void
make_link(const char *linkpath, const char *target_abs)
{
	char dir[PATH_MAX], rel[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", linkpath);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	relpath(dir, target_abs, rel, sizeof(rel));
	unlink(linkpath);
	if (symlink(rel, linkpath) < 0)
		drv_die("cannot link %s -> %s: %s", linkpath, rel, strerror(errno));
}

/* ---- the device model ---- */

/* Resolved sysfs directory of a device, false when it does not exist. */
static bool
dev_dir(const char *bus, const char *name, char *out)
{
	char p[PATH_MAX];
	if (strchr(name, '/') != NULL || *name == '\0' || *name == '.')
		return false;
	if (drv_path(p, "/sys/bus/%s/devices/%s", bus, name) < 0)
		return false;
	return realpath(p, out) != NULL;
}

static void
dev_driver(const char *devdir, char *out, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/driver", devdir);
	link_base(p, out, len);
}

static void
dev_override(const char *devdir, char *out, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/driver_override", devdir);
	char *s = file_read(p);
	out[0] = '\0';
	if (s == NULL)
		return;
	str_strip(s);
	if (strcmp(s, "(null)") != 0)
		snprintf(out, len, "%s", s);
	free(s);
}

static bool
driver_loaded(const char *bus, const char *drv)
{
	char p[PATH_MAX];
	struct stat st;
	if (strchr(drv, '/') != NULL || *drv == '\0')
		return false;
	if (drv_path(p, "/sys/bus/%s/drivers/%s", bus, drv) < 0)
		return false;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The kernel's own state directory in the fixture. */
static void
state_path(char *out, const char *name)
{
	char dir[PATH_MAX];
	drv_path(dir, "/.drvcore");
	mkdir(dir, 0755);
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* The native driver of every device, recorded the first time the mock acts on
 * a fixture: the driver each device has then is the one the kernel's matching
 * would pick for it again (a tree already carrying .drvcore/native keeps its
 * own). */
static void
native_init_bus(const char *bus, FILE *f)
{
	char p[PATH_MAX];
	drv_path(p, "/sys/bus/%s/devices", bus);
	DIR *d = opendir(p);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char dir[PATH_MAX], drv[256];
		if (!dev_dir(bus, de->d_name, dir))
			continue;
		dev_driver(dir, drv, sizeof(drv));
		fprintf(f, "%s %s %s\n", bus, de->d_name, *drv ? drv : "-");
	}
	closedir(d);
}

static void
native_init(void)
{
	char p[PATH_MAX];
	state_path(p, "native");
	if (access(p, F_OK) != 0) {
		char *buf = NULL;
		size_t blen = 0;
		FILE *f = open_memstream(&buf, &blen);
		if (f == NULL)
			drv_die("out of memory");
		native_init_bus("pci", f);
		native_init_bus("platform", f);
		fclose(f);
		file_write(p, buf, 0644);
		free(buf);
	}
}

static void
native_driver(const char *bus, const char *name, char *out, size_t len)
{
	char p[PATH_MAX];
	native_init();
	state_path(p, "native");
	out[0] = '\0';
	char *s = file_read(p);
	if (s == NULL)
		return;
	char *sv = NULL;
	for (char *line = strtok_r(s, "\n", &sv); line; line = strtok_r(NULL, "\n", &sv)) {
		char b[16], n[64], d[64];
		if (sscanf(line, "%15s %63s %63s", b, n, d) == 3 && strcmp(b, bus) == 0 &&
		    strcmp(n, name) == 0) {
			if (strcmp(d, "-") != 0)
				snprintf(out, len, "%s", d);
			break;
		}
	}
	free(s);
}

/* ---- faults ---- */

/* The first line of .drvcore/faults whose words start with `kind` and `arg`;
 * its remaining words go to rest. */
static bool
fault_find(const char *kind, const char *arg, char *rest, size_t len)
{
	char p[PATH_MAX];
	if (drv_path(p, "/.drvcore/faults") < 0)
		return false;
	char *s = file_read(p);
	if (s == NULL)
		return false;
	bool found = false;
	char *save = NULL;
	for (char *line = strtok_r(s, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		char k[64], a[64];
		int off = 0;
		if (line[0] == '#' || sscanf(line, "%63s %63s %n", k, a, &off) < 2)
			continue;
		if (strcmp(k, kind) == 0 && strcmp(a, arg) == 0) {
			if (rest)
				snprintf(rest, len, "%s", line + off);
			found = true;
		}
	}
	free(s);
	return found;
}

/* "refuse ADDR K": the device's probe by its native driver fails K times
 * (counted in .drvcore/refused-ADDR) once it has been on another driver. */
static bool
fault_refuses(const char *name, const char *drv)
{
	char rest[64], native[64], cp[PATH_MAX];
	if (!fault_find("refuse", name, rest, sizeof(rest)))
		return false;
	native_driver("pci", name, native, sizeof(native));
	if (strcmp(native, drv) != 0)
		return false;
	int limit = atoi(rest);
	char file[128];
	snprintf(file, sizeof(file), "refused-%s", name);
	state_path(cp, file);
	char *s = file_read(cp);
	int used = s ? atoi(s) : 0;
	free(s);
	if (used >= limit)
		return false;
	char num[32];
	snprintf(num, sizeof(num), "%d\n", used + 1);
	file_write(cp, num, 0644);
	return true;
}

/* ---- IOMMU groups and /dev/vfio ---- */

static int
dev_group(const char *devdir)
{
	char p[PATH_MAX], g[64];
	snprintf(p, sizeof(p), "%s/iommu_group", devdir);
	link_base(p, g, sizeof(g));
	return *g ? atoi(g) : -1;
}

static bool
dev_is_bridge(const char *devdir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/class", devdir);
	char *s = file_read(p);
	bool bridge = s && (strtoul(s, NULL, 16) >> 8) == 0x0604;
	free(s);
	return bridge;
}

/* /dev/vfio/GROUP exists while some device of the group is on vfio-pci and
 * every non-bridge device of the group is on vfio-pci or has no driver. */
static void
group_update(int group)
{
	if (group < 0)
		return;
	char gdir[PATH_MAX], node[PATH_MAX], arg[32];
	drv_path(gdir, "/sys/kernel/iommu_groups/%d/devices", group);
	drv_path(node, "/dev/vfio/%d", group);
	DIR *d = opendir(gdir);
	if (d == NULL)
		return;
	bool any = false, viable = true;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char dir[PATH_MAX], drv[64];
		if (!dev_dir("pci", de->d_name, dir))
			continue;
		dev_driver(dir, drv, sizeof(drv));
		if (strcmp(drv, "vfio-pci") == 0)
			any = true;
		else if (*drv != '\0' && !dev_is_bridge(dir))
			viable = false;
	}
	closedir(d);
	snprintf(arg, sizeof(arg), "%d", group);
	bool want = any && viable && !fault_find("novfio", arg, NULL, 0);
	bool have = access(node, F_OK) == 0;
	if (want && !have) {
		char dir[PATH_MAX];
		drv_path(dir, "/dev/vfio");
		mkdir(dir, 0755);
		file_write(node, "", 0600);
	} else if (!want && have) {
		unlink(node);
	}
}

/* ---- the driver core operations ---- */

static bool
dynid_matches(const char *drv, const char *devdir)
{
	char p[PATH_MAX], file[128];
	snprintf(file, sizeof(file), "dynid-%s", drv);
	state_path(p, file);
	char *ids = file_read(p);
	if (ids == NULL)
		return false;
	char vp[PATH_MAX], dp[PATH_MAX];
	snprintf(vp, sizeof(vp), "%s/vendor", devdir);
	snprintf(dp, sizeof(dp), "%s/device", devdir);
	char *v = file_read(vp), *dv = file_read(dp);
	bool match = false;
	if (v && dv) {
		char want[32];
		snprintf(want, sizeof(want), "%04lx %04lx", strtoul(v, NULL, 16), strtoul(dv, NULL, 16));
		char *sv = NULL;
		for (char *line = strtok_r(ids, "\n", &sv); line; line = strtok_r(NULL, "\n", &sv))
			if (strcmp(line, want) == 0)
				match = true;
	}
	free(v);
	free(dv);
	free(ids);
	return match;
}

/* driver_match_device(): driver_override, when set, is the only match. */
static bool
drv_matches(const char *bus, const char *drv, const char *name, const char *devdir)
{
	char ovr[64], native[64];
	if (strcmp(bus, "pci") == 0) {
		dev_override(devdir, ovr, sizeof(ovr));
		if (*ovr)
			return strcmp(ovr, drv) == 0;
	}
	native_driver(bus, name, native, sizeof(native));
	if (strcmp(native, drv) == 0)
		return true;
	return strcmp(bus, "pci") == 0 && dynid_matches(drv, devdir);
}

/* really_probe(): links the device to the driver, or refuses. */
static int
drv_attach(const char *bus, const char *drv, const char *name, const char *devdir)
{
	char rest[64];
	if (fault_find("bind-fail", name, rest, sizeof(rest))) {
		str_strip(rest);
		if (*rest == '\0' || strcmp(rest, drv) == 0)
			return -ENODEV;
	}
	if (strcmp(bus, "pci") == 0 && fault_refuses(name, drv))
		return -ENODEV;
	char ddir[PATH_MAX], l1[PATH_MAX], l2[PATH_MAX];
	drv_path(ddir, "/sys/bus/%s/drivers/%s", bus, drv);
	snprintf(l1, sizeof(l1), "%s/driver", devdir);
	snprintf(l2, sizeof(l2), "%s/%s", ddir, name);
	make_link(l1, ddir);
	make_link(l2, devdir);
	if (strcmp(bus, "pci") == 0)
		group_update(dev_group(devdir));
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

/* Remove a device as the kernel does on surprise removal: its directory, its
 * bus and group links, its driver's link. */
static void
drv_vanish(const char *bus, const char *name, const char *devdir, const char *drv)
{
	char p[PATH_MAX];
	int group = dev_group(devdir);
	if (*drv) {
		drv_path(p, "/sys/bus/%s/drivers/%s/%s", bus, drv, name);
		unlink(p);
	}
	drv_path(p, "/sys/bus/%s/devices/%s", bus, name);
	unlink(p);
	if (group >= 0) {
		drv_path(p, "/sys/kernel/iommu_groups/%d/devices/%s", group, name);
		unlink(p);
	}
	nftw(devdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	group_update(group);
}

static int
drv_detach(const char *bus, const char *name, const char *devdir, const char *drv)
{
	char rest[64];
	if (fault_find("unbind-block", name, rest, sizeof(rest))) {
		unsigned secs = (unsigned)atoi(rest);
		while (secs > 0)
			secs = sleep(secs);
	}
	if (fault_find("vanish", name, NULL, 0)) {
		drv_vanish(bus, name, devdir, drv);
		return 0;
	}
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/driver", devdir);
	unlink(p);
	drv_path(p, "/sys/bus/%s/drivers/%s/%s", bus, drv, name);
	unlink(p);
	if (strcmp(bus, "pci") == 0)
		group_update(dev_group(devdir));
	return 0;
}

/* device_attach(): the override driver, else the native driver, else a
 * driver whose dynamic ids match; failures to probe are not errors. */
static void
drv_probe(const char *name, const char *devdir)
{
	char ovr[64], native[64];
	dev_override(devdir, ovr, sizeof(ovr));
	if (*ovr) {
		if (driver_loaded("pci", ovr))
			drv_attach("pci", ovr, name, devdir);
		return;
	}
	native_driver("pci", name, native, sizeof(native));
	if (*native && driver_loaded("pci", native) && drv_attach("pci", native, name, devdir) == 0)
		return;
	char p[PATH_MAX];
	drv_path(p, "/sys/bus/pci/drivers");
	DIR *d = opendir(p);
	if (d == NULL)
		return;
	struct dirent *de;
	bool done = false;
	while (!done && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, native) == 0)
			continue;
		if (dynid_matches(de->d_name, devdir))
			done = drv_attach("pci", de->d_name, name, devdir) == 0;
	}
	closedir(d);
}

/* The sysfs buffer as bus_find_device_by_name() compares it (sysfs_streq:
 * one trailing newline ignored). */
static void
buf_word(const void *buf, size_t len, char *out, size_t outlen)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

static int
op_override(struct tracked *t, const void *buf, size_t len)
{
	char dir[PATH_MAX], val[256], p[PATH_MAX];
	if (len >= 4096)
		return -EINVAL;
	if (!dev_dir("pci", t->name, dir))
		return -ENODEV;
	size_t n = len < sizeof(val) - 1 ? len : sizeof(val) - 1;
	memcpy(val, buf, n);
	val[n] = '\0';
	char *nl = strchr(val, '\n');
	if (nl)
		*nl = '\0';
	snprintf(p, sizeof(p), "%s/driver_override", dir);
	char content[300];
	snprintf(content, sizeof(content), "%s\n", *val ? val : "(null)");
	file_write(p, content, 0644);
	return 0;
}

static int
op_bind(struct tracked *t, const void *buf, size_t len)
{
	char name[128], dir[PATH_MAX], cur[64];
	buf_word(buf, len, name, sizeof(name));
	if (!dev_dir(t->bus, name, dir) || !drv_matches(t->bus, t->name, name, dir))
		return -ENODEV;
	dev_driver(dir, cur, sizeof(cur));
	if (*cur)
		return -EBUSY;
	return drv_attach(t->bus, t->name, name, dir);
}

static int
op_unbind(struct tracked *t, const void *buf, size_t len)
{
	char name[128], dir[PATH_MAX], cur[64];
	buf_word(buf, len, name, sizeof(name));
	if (!dev_dir(t->bus, name, dir))
		return -ENODEV;
	dev_driver(dir, cur, sizeof(cur));
	if (strcmp(cur, t->name) != 0)
		return -ENODEV;
	return drv_detach(t->bus, name, dir, cur);
}

static int
op_probe(const void *buf, size_t len)
{
	char name[128], dir[PATH_MAX], cur[64], rest[64];
	buf_word(buf, len, name, sizeof(name));
	if (!dev_dir("pci", name, dir))
		return -EINVAL;
	if (fault_find("probe-block", name, rest, sizeof(rest))) {
		unsigned secs = (unsigned)atoi(rest);
		while (secs > 0)
			secs = sleep(secs);
	}
	dev_driver(dir, cur, sizeof(cur));
	if (*cur == '\0')
		drv_probe(name, dir);
	return 0;
}

/* new_id: "VVVV DDDD [...]" in hex; binds every driverless match at once. */
static int
op_new_id(struct tracked *t, const void *buf, size_t len, bool remove)
{
	char line[256], p[PATH_MAX], file[128], want[32];
	unsigned v, d;
	buf_word(buf, len, line, sizeof(line));
	if (sscanf(line, "%x %x", &v, &d) != 2 || v > 0xffff || d > 0xffff)
		return -EINVAL;
	snprintf(want, sizeof(want), "%04x %04x", v, d);
	snprintf(file, sizeof(file), "dynid-%s", t->name);
	state_path(p, file);
	char *ids = file_read(p);
	char *out = NULL;
	size_t olen = 0;
	FILE *f = open_memstream(&out, &olen);
	bool had = false;
	if (ids) {
		char *sv = NULL;
		for (char *l = strtok_r(ids, "\n", &sv); l; l = strtok_r(NULL, "\n", &sv)) {
			if (strcmp(l, want) == 0)
				had = true;
			else
				fprintf(f, "%s\n", l);
		}
	}
	if (!remove)
		fprintf(f, "%s\n", want);
	fclose(f);
	free(ids);
	int ret = 0;
	if (remove && !had)
		ret = -ENODEV;
	else if (!remove && had)
		ret = -EEXIST;
	else
		file_write(p, out, 0644);
	free(out);
	if (ret != 0 || remove)
		return ret;
	/* driver_attach(): every device without a driver that now matches */
	drv_path(p, "/sys/bus/pci/devices");
	DIR *dp = opendir(p);
	struct dirent *de;
	while (dp && (de = readdir(dp)) != NULL) {
		char dir[PATH_MAX], cur[64];
		if (de->d_name[0] == '.' || !dev_dir("pci", de->d_name, dir))
			continue;
		dev_driver(dir, cur, sizeof(cur));
		if (*cur == '\0' && drv_matches("pci", t->name, de->d_name, dir))
			drv_attach("pci", t->name, de->d_name, dir);
	}
	if (dp)
		closedir(dp);
	return 0;
}

/* Serialise "kernel" operations across every process using the fixture, as
 * the device lock does. */
static int
drv_lock(void)
{
	char p[PATH_MAX];
	state_path(p, "lock");
	int fd = real_open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		drv_die("cannot open %s: %s", p, strerror(errno));
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	return fd;
}

static ssize_t
drv_dispatch(struct tracked *t, const void *buf, size_t len)
{
	int ret;
	if (t->kind == ATTR_UNKNOWN) {
		drv_loud("write to %s is not simulated (the kernel would act on it); failing with EIO",
		    t->path);
		errno = EIO;
		return -1;
	}
	int lock = drv_lock();
	native_init();
	switch (t->kind) {
	case ATTR_OVERRIDE: ret = op_override(t, buf, len); break;
	case ATTR_BIND: ret = op_bind(t, buf, len); break;
	case ATTR_UNBIND: ret = op_unbind(t, buf, len); break;
	case ATTR_NEW_ID: ret = op_new_id(t, buf, len, false); break;
	case ATTR_REMOVE_ID: ret = op_new_id(t, buf, len, true); break;
	case ATTR_PROBE: ret = op_probe(buf, len); break;
	default: drv_die("bad attribute kind %d", t->kind);
	}
	real_close(lock);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return (ssize_t)len;
}

/* Classify a path opened for writing: is it a driver-core attribute? */
static struct tracked *
drv_classify(const char *path)
{
	char root[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	if (path == NULL || path[0] != '/' || !drv_root(root))
		return NULL;
	size_t rl = strlen(root);
	if (strncmp(path, root, rl) != 0 || strncmp(path + rl, "/sys/", 5) != 0) {
		/* the caller may have used an unresolved spelling of the root */
		const char *env = getenv("VFIO_HOST_ROOT");
		size_t el = strlen(env);
		while (el > 0 && env[el - 1] == '/')
			el--;
		if (strncmp(path, env, el) != 0 || strncmp(path + el, "/sys/", 5) != 0)
			return NULL;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	const char *base = path + (slash - dir) + 1;
	*slash = '\0';
	if (realpath(dir, real) == NULL)
		return NULL;
	const char *rel = real + rl;
	if (strncmp(real, root, rl) != 0)
		return NULL;
	struct tracked t = { 0 };
	snprintf(t.path, sizeof(t.path), "%s", path);
	const char *buses[] = { "pci", "platform" };
	for (size_t i = 0; i < 2; i++) {
		char pre[64];
		int pl = snprintf(pre, sizeof(pre), "/sys/bus/%s", buses[i]);
		snprintf(t.bus, sizeof(t.bus), "%s", buses[i]);
		if (strcmp(rel, pre) == 0) {
			if (strcmp(base, "drivers_probe") == 0 && i == 0)
				t.kind = ATTR_PROBE;
			else if (i == 0)
				t.kind = ATTR_UNKNOWN;
			break;
		}
		if (strncmp(rel, pre, pl) == 0 && strncmp(rel + pl, "/drivers/", 9) == 0 &&
		    strchr(rel + pl + 9, '/') == NULL) {
			snprintf(t.name, sizeof(t.name), "%s", rel + pl + 9);
			if (strcmp(base, "bind") == 0)
				t.kind = ATTR_BIND;
			else if (strcmp(base, "unbind") == 0)
				t.kind = ATTR_UNBIND;
			else if (i == 0 && strcmp(base, "new_id") == 0)
				t.kind = ATTR_NEW_ID;
			else if (i == 0 && strcmp(base, "remove_id") == 0)
				t.kind = ATTR_REMOVE_ID;
			else if (i == 0)
				t.kind = ATTR_UNKNOWN;
			break;
		}
	}
	if (t.kind == ATTR_NONE) {
		/* a PCI device directory, reached by any spelling */
		char sub[PATH_MAX], subreal[PATH_MAX], busdir[PATH_MAX];
		snprintf(sub, sizeof(sub), "%s/subsystem", real);
		snprintf(busdir, sizeof(busdir), "%s/sys/bus/pci", root);
		if (realpath(sub, subreal) != NULL && strcmp(subreal, busdir) == 0) {
			snprintf(t.bus, sizeof(t.bus), "pci");
			const char *b = strrchr(real, '/');
			snprintf(t.name, sizeof(t.name), "%s", b + 1);
			t.kind = strcmp(base, "driver_override") == 0 ? ATTR_OVERRIDE : ATTR_UNKNOWN;
		}
	}
	if (t.kind == ATTR_NONE)
		return NULL;
	struct tracked *tp = malloc(sizeof(*tp));
	if (tp == NULL)
		drv_die("out of memory");
	*tp = t;
	return tp;
}

static int
drv_track(int fd, const char *path, int flags)
{
	if (fd < 0 || (flags & O_ACCMODE) == O_RDONLY)
		return fd;
	struct tracked *t = drv_classify(path);
	if (t == NULL)
		return fd;
	if (fd >= MAX_FDS)
		drv_die("fd %d for %s is beyond what the mock tracks", fd, path);
	free(fds[fd]);
	fds[fd] = t;
	return fd;
}

/* ---- the interposed libc functions ---- */

/* sysfs ignores O_TRUNC and O_APPEND: the attribute file must not be
 * emptied by an open that is followed by no write. */
static int
attr_flags(const char *path, int flags)
{
	if ((flags & O_ACCMODE) == O_RDONLY)
		return flags;
	struct tracked *t = drv_classify(path);
	if (t == NULL)
		return flags;
	free(t);
	return flags & ~(O_TRUNC | O_APPEND);
}

static int
do_open(const char *path, int flags, mode_t mode)
{
	drv_init();
	return drv_track(real_open(path, attr_flags(path, flags), mode), path, flags);
}

static int
do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	drv_init();
	if (path && path[0] == '/')
		return drv_track(real_openat(dirfd, path, attr_flags(path, flags), mode), path, flags);
	return real_openat(dirfd, path, flags, mode);
}

#define MODE_ARG(flags, mode) do { \
	if ((flags) & (O_CREAT | O_TMPFILE)) { \
		va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); \
	} \
} while (0)

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_open(path, flags | O_LARGEFILE, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(dirfd, path, flags | O_LARGEFILE, mode);
}

int __open_2(const char *path, int flags) { return do_open(path, flags, 0); }
int __open64_2(const char *path, int flags) { return do_open(path, flags | O_LARGEFILE, 0); }
int __openat_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags | O_LARGEFILE, 0); }

ssize_t
write(int fd, const void *buf, size_t len)
{
	drv_init();
	if (fd >= 0 && fd < MAX_FDS && fds[fd] != NULL && len == 0)
		return 0;
	if (fd >= 0 && fd < MAX_FDS && fds[fd] != NULL)
		return drv_dispatch(fds[fd], buf, len);
	return real_write(fd, buf, len);
}

int
close(int fd)
{
	drv_init();
	if (fd >= 0 && fd < MAX_FDS && fds[fd] != NULL) {
		free(fds[fd]);
		fds[fd] = NULL;
	}
	return real_close(fd);
}

/* stdio writes bypass write(), so a stream on a driver-core attribute gets a
 * cookie that routes each flushed buffer through the mock, as sysfs does with
 * each write(2). */
static ssize_t
cookie_write(void *c, const char *buf, size_t len)
{
	int fd = (int)(intptr_t)c;
	return write(fd, buf, len);
}

static int
cookie_close(void *c)
{
	return close((int)(intptr_t)c);
}

static FILE *
do_fopen(const char *path, const char *mode)
{
	drv_init();
	if (mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))) {
		struct tracked *t = drv_classify(path);
		if (t != NULL) {
			free(t);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				return NULL;
			cookie_io_functions_t io = { .write = cookie_write, .close = cookie_close };
			FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
			if (f == NULL) {
				close(fd);
				return NULL;
			}
			setvbuf(f, NULL, _IOFBF, 4096);
			return f;
		}
	}
	return real_fopen(path, mode);
}

FILE *fopen(const char *path, const char *mode) { return do_fopen(path, mode); }
FILE *fopen64(const char *path, const char *mode) { return do_fopen(path, mode); }
