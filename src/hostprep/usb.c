/* USB devices from sysfs (/sys/bus/usb/devices under the host root), each
 * with the line lsusb prints for it, so a -usb regex matches what it matched
 * in the original script. Names come from the udev hwdb (what lsusb uses),
 * else from the system usb.ids, else from the device's own strings. The
 * hwdb and usb.ids are program data of this machine, not host state, so they
 * are read from the real root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libudev.h>
#include <libusb.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

/* Where names come from; the tests of the fallbacks change them. */
static bool usb_use_hwdb = true;
static const char *usb_ids_override;

static const char *const usb_ids_paths[] = {
	"/usr/share/misc/usb.ids",     /* Debian, Ubuntu, Arch */
	"/usr/share/hwdata/usb.ids",   /* Fedora, openSUSE */
	"/var/lib/usbutils/usb.ids",
};

void
usb_names_set_sources(bool use_hwdb, const char *usb_ids)
{
	usb_use_hwdb = use_hwdb;
	usb_ids_override = usb_ids;
}

/* Names found for one device while the scan runs. */
struct usb_names {
	struct usb_device *dev;
	char vendor[256], product[256];
};

static bool
usb_read_hex(const char *dir, const char *name, const char *attr, unsigned *out)
{
	char path[PATH_MAX];
	unsigned long long v;
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr) >= (int)sizeof(path) ||
	    !snap_read_ulong(path, 16, &v) || v > 0xffff)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool
usb_read_dec(const char *dir, const char *name, const char *attr, unsigned *out)
{
	char path[PATH_MAX];
	unsigned long long v;
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr) >= (int)sizeof(path) ||
	    !snap_read_ulong(path, 10, &v) || v > 0xffff)
		return false;
	*out = (unsigned)v;
	return true;
}

static void
usb_read_string(const char *dir, const char *name, const char *attr, char *out, size_t len)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr) >= (int)sizeof(path))
		return;
	char *s = host_read(path, NULL);
	if (s == NULL)
		return;
	/* lsusb strips only the newline; leading blanks some devices put in
	 * their strings (" SanDisk 3.2Gen1") stay, as lsusb shows them. */
	s[strcspn(s, "\n")] = '\0';
	snap_copy(out, len, s);
	free(s);
}

static bool
is_pci_address(const char *s, size_t len)
{
	/* DDDD:BB:DD.F with hex digits; domains can be longer than 4 digits */
	if (len < 12)
		return false;
	const char *tail = s + len - 8;   /* ":BB:DD.F" */
	if (tail[0] != ':' || tail[3] != ':' || tail[6] != '.')
		return false;
	for (const char *p = s; p < s + len; p++) {
		if (p == tail || p == tail + 3 || p == tail + 6)
			continue;
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	}
	return true;
}

/* The host controller is the nearest PCI device above the USB device in the
 * sysfs device tree: /sys/devices/pci0000:00/0000:00:14.0/usb1/1-4/1-4.2. */
static void
usb_find_controller(const char *dir, const char *name, char *out, size_t len)
{
	char path[PATH_MAX], real[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) || realpath(path, real) == NULL)
		return;
	char *end = real + strlen(real);
	while (end > real) {
		char *slash = end - 1;
		while (slash > real && *slash != '/')
			slash--;
		const char *comp = slash + 1;
		if (is_pci_address(comp, (size_t)(end - comp))) {
			snprintf(out, len, "%.*s", (int)(end - comp), comp);
			return;
		}
		end = slash;
	}
}

static int
usb_device_cmp(const void *a, const void *b)
{
	const struct usb_device *x = a, *y = b;
	if (x->bus != y->bus)
		return x->bus < y->bus ? -1 : 1;
	return (x->devnum > y->devnum) - (x->devnum < y->devnum);
}

static void
usb_names_from_hwdb(struct usb_names *names, size_t n)
{
	struct udev *udev = udev_new();
	struct udev_hwdb *hwdb = udev ? udev_hwdb_new(udev) : NULL;
	if (hwdb == NULL) {
		log_debug("no udev hwdb: USB names come from usb.ids");
		udev_unref(udev);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char modalias[32];
		snprintf(modalias, sizeof(modalias), "usb:v%04Xp%04X", names[i].dev->vendor, names[i].dev->product);
		struct udev_list_entry *e;
		udev_list_entry_foreach(e, udev_hwdb_get_properties_list_entry(hwdb, modalias, 0)) {
			const char *key = udev_list_entry_get_name(e);
			const char *value = udev_list_entry_get_value(e);
			if (strcmp(key, "ID_VENDOR_FROM_DATABASE") == 0)
				snap_copy(names[i].vendor, sizeof(names[i].vendor), value);
			else if (strcmp(key, "ID_MODEL_FROM_DATABASE") == 0)
				snap_copy(names[i].product, sizeof(names[i].product), value);
		}
	}
	udev_hwdb_unref(hwdb);
	udev_unref(udev);
}

static int
usb_names_cmp(const void *a, const void *b)
{
	const struct usb_names *const *x = a, *const *y = b;
	if ((*x)->dev->vendor != (*y)->dev->vendor)
		return (*x)->dev->vendor < (*y)->dev->vendor ? -1 : 1;
	return ((*x)->dev->product > (*y)->dev->product) - ((*x)->dev->product < (*y)->dev->product);
}

/* First index in the sorted want[] whose (vendor, product) is >= the key. */
static size_t
usb_names_lower(struct usb_names **want, size_t n, unsigned vendor, unsigned product)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct usb_device *d = want[mid]->dev;
		if (d->vendor < vendor || (d->vendor == vendor && d->product < product))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
parse_hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return false;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return s[4] == ' ' && s[5] == ' ';
}

/* One pass over usb.ids for every device the hwdb did not name: only the
 * vendor and product lines of the wanted IDs are kept. The file is mapped
 * and its lines found with memchr: fgets over its ~24 000 vendor lines was
 * 0.65 ms, a tenth of a dry run. Each line is still cut as fgets(line, 512)
 * cut it, so the names are the same. */
static void
usb_names_from_usb_ids(struct usb_names *names, size_t n)
{
	struct usb_names **want = xcalloc(n ? n : 1, sizeof(*want));
	size_t nw = 0;
	for (size_t i = 0; i < n; i++)
		if (names[i].vendor[0] == '\0' || names[i].product[0] == '\0')
			want[nw++] = &names[i];
	if (nw == 0) {
		free(want);
		return;
	}
	if (nw > 1)
		qsort(want, nw, sizeof(*want), usb_names_cmp);

	int fd = -1;
	const char *path = usb_ids_override;
	if (path != NULL) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} else {
		for (size_t i = 0; i < nitems(usb_ids_paths) && fd < 0; i++)
			fd = open(path = usb_ids_paths[i], O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		log_debug("no usb.ids: USB names come from the devices' own strings");
		free(want);
		return;
	}
	/* Anything but a non-empty regular file has no lines to read. */
	struct stat st;
	const char *map = NULL;
	size_t size = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size <= SIZE_MAX) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			map = m;
			size = (size_t)st.st_size;
		} else {
			log_debug("%s: cannot map it: %s", path, strerror(errno));
		}
	}
	close(fd);

	char line[512];
	size_t vlo = 0, vhi = 0;     /* want[vlo..vhi) have the current vendor */
	unsigned vendor = 0;
	for (size_t pos = 0; pos < size;) {
		/* what fgets(line, sizeof(line)) would read: up to a newline,
		 * at most sizeof(line) - 1 bytes */
		size_t max = size - pos < sizeof(line) - 1 ? size - pos : sizeof(line) - 1;
		const char *nl = memchr(map + pos, '\n', max);
		size_t len = nl != NULL ? (size_t)(nl - (map + pos)) + 1 : max;
		memcpy(line, map + pos, len);
		line[len] = '\0';
		pos += len;
		line[strcspn(line, "\n")] = '\0';
		unsigned id;
		if (line[0] == '\t' && line[1] != '\t') {
			if (vlo == vhi || !parse_hex4(line + 1, &id))
				continue;
			for (size_t i = usb_names_lower(want, nw, vendor, id); i < vhi && want[i]->dev->product == id; i++)
				if (want[i]->product[0] == '\0')
					snap_copy(want[i]->product, sizeof(want[i]->product), line + 7);
		} else if (line[0] == 'C' && line[1] == ' ') {
			break;   /* the class lists follow the vendors */
		} else if (parse_hex4(line, &id)) {
			vendor = id;
			vlo = usb_names_lower(want, nw, id, 0);
			vhi = usb_names_lower(want, nw, id + 1, 0);
			for (size_t i = vlo; i < vhi; i++)
				if (want[i]->vendor[0] == '\0')
					snap_copy(want[i]->vendor, sizeof(want[i]->vendor), line + 6);
		}
	}
	if (map != NULL)
		munmap((void *)map, size);
	free(want);
}

static void
usb_make_lines(struct host_snapshot *snap)
{
	struct usb_names *names = xcalloc(snap->n_usb ? snap->n_usb : 1, sizeof(*names));
	for (size_t i = 0; i < snap->n_usb; i++)
		names[i].dev = &snap->usb[i];
	if (usb_use_hwdb)
		usb_names_from_hwdb(names, snap->n_usb);
	usb_names_from_usb_ids(names, snap->n_usb);
	for (size_t i = 0; i < snap->n_usb; i++) {
		struct usb_device *d = &snap->usb[i];
		const char *vendor = names[i].vendor[0] ? names[i].vendor : d->manufacturer;
		const char *product = names[i].product[0] ? names[i].product : d->product_name;
		/* exactly lsusb's format, trailing space included when the
		 * product has no name */
		snprintf(d->line, sizeof(d->line), "Bus %03u Device %03u: ID %04x:%04x %s %s", d->bus, d->devnum,
		    d->vendor, d->product, vendor, product);
	}
	free(names);
}

int
usb_fill_from_libusb(struct host_snapshot *snap)
{
	libusb_context *ctx = NULL;
	int r = libusb_init(&ctx);
	if (r < 0) {
		log_debug("libusb: cannot start (%s); USB strings come from sysfs only", libusb_strerror(r));
		return -1;
	}
	libusb_device **list = NULL;
	ssize_t n = libusb_get_device_list(ctx, &list);
	if (n < 0) {
		log_debug("libusb: cannot list devices (%s)", libusb_strerror((int)n));
		libusb_exit(ctx);
		return -1;
	}
	for (ssize_t i = 0; i < n; i++) {
		unsigned bus = libusb_get_bus_number(list[i]);
		unsigned addr = libusb_get_device_address(list[i]);
		struct usb_device *d = NULL;
		for (size_t j = 0; j < snap->n_usb && d == NULL; j++)
			if (snap->usb[j].bus == bus && snap->usb[j].devnum == addr)
				d = &snap->usb[j];
		if (d == NULL || (d->manufacturer[0] && d->product_name[0]))
			continue;
		struct libusb_device_descriptor desc;
		libusb_device_handle *h = NULL;
		if (libusb_get_device_descriptor(list[i], &desc) < 0 || libusb_open(list[i], &h) < 0)
			continue;
		unsigned char buf[128];
		if (d->manufacturer[0] == '\0' && desc.iManufacturer &&
		    libusb_get_string_descriptor_ascii(h, desc.iManufacturer, buf, sizeof(buf)) > 0)
			snap_copy(d->manufacturer, sizeof(d->manufacturer), (const char *)buf);
		if (d->product_name[0] == '\0' && desc.iProduct &&
		    libusb_get_string_descriptor_ascii(h, desc.iProduct, buf, sizeof(buf)) > 0)
			snap_copy(d->product_name, sizeof(d->product_name), (const char *)buf);
		libusb_close(h);
	}
	libusb_free_device_list(list, 1);
	libusb_exit(ctx);
	return (int)n;
}

/* One device directory dir/name into u; false when its attributes are
 * incomplete (it is going away, or it is not a device). */
static bool
usb_read_one(const char *dir, const char *name, struct usb_device *u)
{
	if (!usb_read_dec(dir, name, "busnum", &u->bus) ||
	    !usb_read_dec(dir, name, "devnum", &u->devnum) ||
	    !usb_read_hex(dir, name, "idVendor", &u->vendor) ||
	    !usb_read_hex(dir, name, "idProduct", &u->product)) {
		log_debug("USB device %s: incomplete sysfs attributes, skipped", name);
		return false;
	}
	unsigned cls = 0;
	usb_read_hex(dir, name, "bDeviceClass", &cls);
	snap_copy(u->sysname, sizeof(u->sysname), name);
	u->is_root_hub = str_startswith(name, "usb");
	u->is_hub = cls == 9;
	usb_read_string(dir, name, "manufacturer", u->manufacturer, sizeof(u->manufacturer));
	usb_read_string(dir, name, "product", u->product_name, sizeof(u->product_name));
	usb_read_string(dir, name, "serial", u->serial, sizeof(u->serial));
	usb_find_controller(dir, name, u->controller, sizeof(u->controller));
	return true;
}

int
usb_scan(struct host_snapshot *snap, struct verr *err)
{
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/bus/usb/devices") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		/* no USB bus (a VM or container): nothing to pass through */
		log_debug("no USB devices: %s: %s", dir, strerror(errno));
		return 0;
	}
	size_t cap = 0;
	struct dirent *de;
	bool missing_strings = false;
	while ((de = readdir(d)) != NULL) {
		/* "1-4:1.0" is an interface of 1-4, not a device */
		if (de->d_name[0] == '.' || strchr(de->d_name, ':') != NULL ||
		    strlen(de->d_name) >= sizeof(snap->usb->sysname))
			continue;
		struct usb_device u = { 0 };
		if (!usb_read_one(dir, de->d_name, &u))
			continue;
		missing_strings |= !u.manufacturer[0] || !u.product_name[0];
		struct usb_device *slot = snap_grow(&snap->usb, &snap->n_usb, &cap, sizeof(*slot));
		*slot = u;
	}
	closedir(d);
	if (snap->n_usb > 1)
		qsort(snap->usb, snap->n_usb, sizeof(*snap->usb), usb_device_cmp);
	/* Strings only the descriptors hold can be read from the real devices,
	 * never from a fixture tree. */
	if (missing_strings && hostroot_get()[0] == '\0')
		usb_fill_from_libusb(snap);
	usb_make_lines(snap);
	return 0;
}

int
usb_device_read(const char *syspath, struct usb_device *out, struct verr *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(syspath, '/');
	if (slash == NULL || slash[1] == '\0' || strchr(slash + 1, ':') != NULL ||
	    strlen(slash + 1) >= sizeof(out->sysname))
		return verr_set(err, -EINVAL, "%s is not a USB device's sysfs path", syspath);
	if (host_path(dir, sizeof(dir), "%.*s", (int)(slash - syspath), syspath) == NULL)
		return verr_set(err, -ENAMETOOLONG, "%s: path too long", syspath);
	struct usb_device u = { 0 };
	if (!usb_read_one(dir, slash + 1, &u))
		return verr_set(err, -ENODEV, "USB device %s is gone (its sysfs attributes cannot be read)",
		    slash + 1);
	struct host_snapshot one = { .usb = &u, .n_usb = 1 };
	if ((!u.manufacturer[0] || !u.product_name[0]) && hostroot_get()[0] == '\0')
		usb_fill_from_libusb(&one);
	usb_make_lines(&one);
	*out = u;
	return 0;
}
