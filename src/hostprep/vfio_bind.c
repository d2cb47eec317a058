/* vfio-pci binding and giving devices back: see vfio_bind.h. The kernel
 * interface is the driver core's sysfs attributes; every write is checked
 * against the driver link afterwards, because drivers_probe reports success
 * even when nothing bound. */
#include "vfio_bind.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "display.h"
#include "hostcmd.h"
#include "hostroot.h"
#include "log.h"
#include "util.h"
#include "vfioenv.h"

#define VFIO_DRIVER "vfio-pci"

static int group_wait_ms = VFIO_BIND_GROUP_WAIT_MS_DEFAULT;
static int release_retry_ms = VFIO_BIND_RELEASE_RETRY_MS_DEFAULT;

void
vfio_bind_set_waits(int group_ms, int release_ms)
{
	group_wait_ms = group_ms > 0 ? group_ms : VFIO_BIND_GROUP_WAIT_MS_DEFAULT;
	release_retry_ms = release_ms > 0 ? release_ms : VFIO_BIND_RELEASE_RETRY_MS_DEFAULT;
	/* An idle child forked earlier keeps the old waits. */
	child_spare_drop();
}

/* -bindtimeout for the unbind, plus the bounded waits inside (for
 * /dev/vfio/N, for a device refusing its driver), so those report their own
 * failure instead of being cut off as a hang. */
static int
bind_deadline_ms(const json_t *change, const json_t *saved, int bindtimeout_ms)
{
	int waits = group_wait_ms > release_retry_ms ? group_wait_ms : release_retry_ms;
	return bindtimeout_ms + waits + 1000;
}

bool
vfio_bind_addr_valid(const char *addr)
{
	static const char shape[] = "xxxx:xx:xx.x";
	if (addr == NULL || strlen(addr) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == 'x' ? !isxdigit((unsigned char)addr[i]) : addr[i] != shape[i])
			return false;
	}
	return addr[11] <= '7';
}

/* ---- the device as sysfs shows it ---- */

static bool
dev_present(const char *addr)
{
	char p[PATH_MAX];
	return host_path(p, sizeof(p), "/sys/bus/pci/devices/%s", addr) && host_exists(p);
}

/* The bound driver's name, "" when none. Allocated. */
static char *
dev_driver(const char *addr)
{
	char p[PATH_MAX];
	host_path(p, sizeof(p), "/sys/bus/pci/devices/%s/driver", addr);
	char *d = host_link_basename(p);
	return d ? d : xstrdup("");
}

static char *
dev_override(const char *addr)
{
	char p[PATH_MAX];
	host_path(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", addr);
	char *s = host_read_line(p);
	if (s == NULL || strcmp(s, "(null)") == 0) {
		free(s);
		return xstrdup("");
	}
	return s;
}

static int
dev_group(const char *addr)
{
	char p[PATH_MAX];
	host_path(p, sizeof(p), "/sys/bus/pci/devices/%s/iommu_group", addr);
	char *g = host_link_basename(p);
	int n = g ? atoi(g) : -1;
	free(g);
	return n;
}

static bool
dev_is_bridge(const char *addr)
{
	char p[PATH_MAX];
	host_path(p, sizeof(p), "/sys/bus/pci/devices/%s/class", addr);
	char *c = host_read_line(p);
	bool bridge = c != NULL && (strtoul(c, NULL, 16) >> 8) == 0x0604;
	free(c);
	return bridge;
}

static bool
driver_loaded(const char *drv)
{
	char p[PATH_MAX];
	return host_path(p, sizeof(p), "/sys/bus/pci/drivers/%s", drv) && host_exists(p);
}

/* Every non-bridge device of the group is on vfio-pci or driverless: the
 * group is viable and /dev/vfio/N is due. */
static bool
group_complete(int group)
{
	char *dir = host_pathdup("/sys/kernel/iommu_groups/%d/devices", group);
	DIR *d = opendir(dir);
	free(dir);
	if (d == NULL)
		return false;
	bool complete = true;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *drv = dev_driver(de->d_name);
		if (*drv != '\0' && strcmp(drv, VFIO_DRIVER) != 0 && !dev_is_bridge(de->d_name))
			complete = false;
		free(drv);
	}
	closedir(d);
	return complete;
}

static int
pci_write(const char *attr_path, const char *value)
{
	char p[PATH_MAX];
	if (host_path(p, sizeof(p), "%s", attr_path) == NULL)
		return -ENAMETOOLONG;
	return host_write(p, value);
}

/* ---- module-load ---- */

static int
module_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *mod = change_str(change, "target");
	for (const char *c = mod; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
			return verr_set(err, -EINVAL, "module-load: \"%s\" is not a module name", mod);
	if (*mod == '\0')
		return verr_set(err, -EINVAL, "module-load: no module named; the plan should say vfio-pci");
	*saved = json_pack("{sb}", "loaded", driver_loaded(mod));
	return 0;
}

/* The original's hint: modules missing for the running kernel mean it was
 * upgraded (and its old modules removed) since boot. */
static void
module_hint(struct strbuf *sb, const char *mod)
{
	char *p = host_pathdup("/proc/sys/kernel/osrelease");
	char *rel = host_read_line(p);
	free(p);
	if (rel == NULL)
		return;
	char *moddir = host_pathdup("/lib/modules/%s", rel);
	if (!host_exists(moddir))
		strbuf_printf(sb, "; the running kernel %s has no modules in /lib/modules/%s: it was "
		    "probably upgraded since boot, so reboot into the new kernel and try again", rel, rel);
	else
		strbuf_printf(sb, "; check that %s is built for kernel %s (modinfo %s)", mod, rel, mod);
	free(moddir);
	free(rel);
}

static int
module_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *mod = change_str(change, "target");
	if (driver_loaded(mod))
		return 0;
	const char *modprobe = vfioenv_get("VFIO_MODPROBE");
	if (modprobe == NULL || *modprobe == '\0') {
		if (*hostroot_get() != '\0')
			return verr_set(err, -ENOTSUP, "%s is not loaded in the host root %s and the real "
			    "modprobe cannot load it there: set VFIO_MODPROBE", mod, hostroot_get());
		modprobe = "/sbin/modprobe";
	}
	char *argv[] = { (char *)modprobe, (char *)mod, NULL };
	char *msg = NULL;
	int r = hostcmd_run(argv, &msg, err);
	if (r < 0) {
		free(msg);
		return r;
	}
	struct strbuf sb = { 0 };
	if (r != 0) {
		strbuf_printf(&sb, "cannot load %s: modprobe %s failed (exit %d)%s%s", mod, mod, r,
		    msg && *msg ? ": " : "", msg ? msg : "");
		module_hint(&sb, mod);
		r = -ENOENT;
	} else if (!driver_loaded(mod)) {
		strbuf_printf(&sb, "modprobe %s succeeded but /sys/bus/pci/drivers/%s did not appear", mod, mod);
		module_hint(&sb, mod);
		r = -ENOENT;
	}
	if (r < 0)
		verr_set(err, r, "%s", sb.s);
	strbuf_free(&sb);
	free(msg);
	return r;
}

static int
module_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	/* Left loaded, as the original does: unloading could take it from
	 * devices that were on vfio-pci before we started. */
	return 0;
}

/* modprobe takes a moment. */
static int
module_deadline_ms(const json_t *change, const json_t *saved, int bindtimeout_ms)
{
	return bindtimeout_ms + 10000;
}

const struct change_ops vfio_bind_module_load_ops = {
	.action = "module-load",
	.prepare = module_prepare,
	.apply = module_apply,
	.undo = module_undo,
	.may_block = true,
	.deadline_ms = module_deadline_ms,
};

/* ---- pci-bind-vfio ---- */

static int
bind_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *addr = change_str(change, "target");
	if (!vfio_bind_addr_valid(addr))
		return verr_set(err, -EINVAL, "pci-bind-vfio: \"%s\" is not a PCI address; expected the "
		    "form 0000:01:00.0 (lspci -D shows them)", addr);
	if (!dev_present(addr))
		return verr_set(err, -ENODEV, "PCI device %s does not exist (no /sys/bus/pci/devices/%s): "
		    "it was removed or the address is wrong; check with lspci -D", addr, addr);
	int group = dev_group(addr);
	if (group < 0)
		return verr_set(err, -ENODEV, "%s has no IOMMU group, so it cannot be given to a guest: "
		    "enable the IOMMU in the firmware and on the kernel command line (intel_iommu=on or "
		    "amd_iommu=on) and reboot", addr);
	json_int_t planned = change_arg_int(change, "group", -1);
	if (planned >= 0 && planned != group)
		return verr_set(err, -ESTALE, "%s is in IOMMU group %d now, not %lld as planned: the host "
		    "changed since the plan was made; run again", addr, group, (long long)planned);
	char *drv = dev_driver(addr), *ovr = dev_override(addr);
	*saved = json_pack("{ss ss si}", "driver", drv, "driver_override", ovr, "group", group);
	free(drv);
	free(ovr);
	return 0;
}

static int
wait_group_node(const char *addr, int group, struct verr *err)
{
	if (!group_complete(group)) {
		log_debug("%s: group %d has devices on other drivers; /dev/vfio/%d comes with the last",
		    addr, group, group);
		return 0;
	}
	char node[PATH_MAX];
	host_path(node, sizeof(node), "/dev/vfio/%d", group);
	long long deadline = time_now_ms() + group_wait_ms;
	/* Runs in the change's child process (may_block), so a short sleep
	 * between looks stalls nothing else. */
	while (!host_exists(node)) {
		if (time_now_ms() >= deadline)
			return verr_set(err, -ETIMEDOUT, "/dev/vfio/%d did not appear within %d.%d s after %s "
			    "was bound to vfio-pci: check `dmesg` for vfio errors and that the IOMMU is on",
			    group, group_wait_ms / 1000, (group_wait_ms % 1000) / 100, addr);
		time_sleep_ms(10);
	}
	return 0;
}

static int
bind_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *addr = change_str(change, "target");
	int group = (int)json_integer_value(json_object_get(saved, "group"));
	char path[PATH_MAX];
	int r;
	if (!dev_present(addr))
		return verr_set(err, -ENODEV, "PCI device %s is gone (no /sys/bus/pci/devices/%s); "
		    "rescan the bus (echo 1 > /sys/bus/pci/rescan) or check the address", addr, addr);
	char *cur = dev_driver(addr);
	if (strcmp(cur, VFIO_DRIVER) == 0) {
		free(cur);
		return wait_group_node(addr, group, err);
	}
	if (!driver_loaded(VFIO_DRIVER)) {
		free(cur);
		return verr_set(err, -ENODEV, "cannot bind %s: the vfio-pci driver is not loaded "
		    "(no /sys/bus/pci/drivers/vfio-pci); load it with modprobe vfio-pci", addr);
	}
	if (json_is_true(json_object_get(json_object_get(change, "args"), "display"))) {
		struct display_holders hs;
		struct strbuf who = { 0 };
		if (display_find_holders(addr, &hs, NULL) == 0) {
			for (size_t i = 0; i < hs.n; i++)
				if (hs.v[i].compositor)
					strbuf_printf(&who, "%s%d %s", who.len ? ", " : "", hs.v[i].pid,
					    hs.v[i].comm);
			display_holders_free(&hs);
		}
		if (who.len > 0) {
			r = verr_set(err, -EBUSY, "%s is in use by the graphical session (%s): unbinding it "
			    "would hang; pass -killx to stop the display manager for the guest", addr, who.s);
			strbuf_free(&who);
			free(cur);
			return r;
		}
		strbuf_free(&who);
	}

	host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", addr);
	if ((r = host_write(path, VFIO_DRIVER)) < 0) {
		verr_set(err, r, "cannot set driver_override of %s to vfio-pci: %s; is the kernel older "
		    "than 3.16?", addr, strerror(-r));
		goto out;
	}
	if (*cur != '\0') {
		host_path(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind", cur);
		r = host_write(path, addr);
		if (r < 0 && dev_present(addr)) {
			char *now = dev_driver(addr);
			bool gone = *now == '\0';
			free(now);
			if (!gone) {
				verr_set(err, r, "cannot unbind %s from %s: %s", addr, cur, strerror(-r));
				goto out;
			}
		}
		if (!dev_present(addr)) {
			r = verr_set(err, -ENODEV, "%s disappeared when it was unbound from %s (the device "
			    "was removed): rescan the bus (echo 1 > /sys/bus/pci/rescan)", addr, cur);
			goto out;
		}
	}
	if ((r = pci_write("/sys/bus/pci/drivers_probe", addr)) < 0) {
		verr_set(err, r, "cannot ask the kernel to probe %s (drivers_probe): %s", addr, strerror(-r));
		goto out;
	}
	char *now = dev_driver(addr);
	if (strcmp(now, VFIO_DRIVER) != 0 && *now == '\0') {
		/* drivers_probe says nothing when no driver took it: ask vfio-pci
		 * directly for the error */
		host_path(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", VFIO_DRIVER);
		int br = host_write(path, addr);
		free(now);
		now = dev_driver(addr);
		if (strcmp(now, VFIO_DRIVER) != 0) {
			r = verr_set(err, br < 0 ? br : -EIO, "%s did not bind to vfio-pci (%s); it is left "
			    "without a driver until teardown gives it back to %s; check `dmesg`", addr,
			    br < 0 ? strerror(-br) : "no error reported", *cur ? cur : "no driver");
			free(now);
			goto out;
		}
	}
	if (strcmp(now, VFIO_DRIVER) != 0) {
		r = verr_set(err, -EBUSY, "%s went to %s instead of vfio-pci; something else binds it",
		    addr, now);
		free(now);
		goto out;
	}
	free(now);
	log_debug("%s: %s -> vfio-pci", addr, *cur ? cur : "(none)");
	r = wait_group_node(addr, group, err);
out:
	free(cur);
	return r;
}

/* A note for the rundown that is not an error. */
static void
bind_note(struct verr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
bind_note(struct verr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	log_info("%s", s);
	if (err != NULL) {
		err->code = 0;
		snprintf(err->msg, sizeof(err->msg), "%s", s);
	}
	free(s);
}

static int
bind_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *addr = change_str(change, "target");
	if (!json_is_object(saved))
		return 0;	/* prepare never finished: nothing was changed */
	const char *orig = json_string_value(json_object_get(saved, "driver")) ?: "";
	const char *orig_ovr = json_string_value(json_object_get(saved, "driver_override")) ?: "";
	char path[PATH_MAX];
	int r;
	if (!dev_present(addr))
		return verr_set(err, -ENODEV, "cannot give %s back to %s: the device is gone (no "
		    "/sys/bus/pci/devices/%s); rescan the bus (echo 1 > /sys/bus/pci/rescan)", addr,
		    *orig ? orig : "the host", addr);

	char *ovr = dev_override(addr);
	if (strcmp(ovr, orig_ovr) != 0) {
		host_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", addr);
		if ((r = host_write(path, *orig_ovr ? orig_ovr : "\n")) < 0) {
			free(ovr);
			return verr_set(err, r, "cannot reset driver_override of %s: %s", addr, strerror(-r));
		}
	}
	free(ovr);
	if (strcmp(orig, VFIO_DRIVER) == 0)
		return 0;

	char *cur = dev_driver(addr);
	if (*orig == '\0') {
		if (strcmp(cur, VFIO_DRIVER) == 0)
			bind_note(err, "%s had no driver before the guest started; it stays on vfio-pci", addr);
		free(cur);
		return 0;
	}
	if (strcmp(cur, orig) == 0) {
		free(cur);
		return 0;
	}
	if (strcmp(cur, VFIO_DRIVER) == 0) {
		host_path(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind", VFIO_DRIVER);
		r = host_write(path, addr);
		if (!dev_present(addr)) {
			free(cur);
			return verr_set(err, -ENODEV, "%s disappeared when it was unbound from vfio-pci; "
			    "rescan the bus (echo 1 > /sys/bus/pci/rescan)", addr);
		}
		free(cur);
		cur = dev_driver(addr);
		if (*cur != '\0') {
			r = verr_set(err, r < 0 ? r : -EBUSY, "cannot unbind %s from vfio-pci (%s): is QEMU "
			    "still running with it?", addr, r < 0 ? strerror(-r) : "still bound");
			free(cur);
			return r;
		}
	} else if (*cur != '\0') {
		r = verr_set(err, -EBUSY, "%s is on %s now, neither vfio-pci nor its own %s: left alone; "
		    "unbind it and bind %s by hand", addr, cur, orig, orig);
		free(cur);
		return r;
	}
	free(cur);

	/* A device just released can refuse its driver for a moment, and
	 * drivers_probe succeeds whether or not anything bound: try, look at
	 * the driver link, try again. */
	long long deadline = time_now_ms() + release_retry_ms;
	int tries = 0, last = 0;
	for (;;) {
		tries++;
		if (driver_loaded(orig)) {
			host_path(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", orig);
			last = host_write(path, addr);
		} else {
			last = pci_write("/sys/bus/pci/drivers_probe", addr);
		}
		if (!dev_present(addr))
			return verr_set(err, -ENODEV, "%s disappeared while it was given back to %s; rescan "
			    "the bus (echo 1 > /sys/bus/pci/rescan)", addr, orig);
		char *now = dev_driver(addr);
		bool done = strcmp(now, orig) == 0, other = *now != '\0' && !done;
		if (other) {
			r = verr_set(err, -EBUSY, "%s went to %s instead of %s; unbind it and bind %s by hand",
			    addr, now, orig, orig);
			free(now);
			return r;
		}
		free(now);
		if (done) {
			log_debug("%s: back on %s after %d tr%s", addr, orig, tries, tries == 1 ? "y" : "ies");
			return 0;
		}
		if (time_now_ms() >= deadline)
			break;
		time_sleep_ms(100);
	}
	if (!driver_loaded(orig))
		return verr_set(err, -ENODEV, "cannot give %s back to %s: that driver is not loaded any "
		    "more; load it (modprobe %s) and run: echo %s > /sys/bus/pci/drivers_probe", addr,
		    orig, orig, addr);
	return verr_set(err, last < 0 ? last : -EIO, "%s did not go back to %s after %d tries in %d.%d s "
	    "(%s); it is left without a driver: try echo %s > /sys/bus/pci/drivers/%s/bind, or reboot",
	    addr, orig, tries, release_retry_ms / 1000, (release_retry_ms % 1000) / 100,
	    last < 0 ? strerror(-last) : "the driver did not take it", addr, orig);
}

const struct change_ops vfio_bind_pci_ops = {
	.action = "pci-bind-vfio",
	.prepare = bind_prepare,
	.apply = bind_apply,
	.undo = bind_undo,
	.may_block = true,
	.deadline_ms = bind_deadline_ms,
};

/* ---- the constructors ---- */

json_t *
vfio_bind_change_new(const char *addr, const char *driver, int group, bool display)
{
	return json_pack("{ss ss ss ss s{si sb}}", "action", "pci-bind-vfio", "target", addr,
	    "from", driver, "to", VFIO_DRIVER, "args", "group", group, "display", display);
}

json_t *
vfio_bind_module_change_new(void)
{
	return json_pack("{ss ss}", "action", "module-load", "target", VFIO_DRIVER);
}

bool
vfio_bind_driver_loaded(void)
{
	return driver_loaded(VFIO_DRIVER);
}
