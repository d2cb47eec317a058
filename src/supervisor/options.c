/* The command line: one table of every flag of the original script (name,
 * aliases, argument kind, help text, handler) that drives parsing, -help and
 * the man page (options_info). Flags are case-insensitive and take one or
 * two dashes, as the original accepted them. Values are validated here as far
 * as they can be without the host; what needs the host (CPU numbers, files)
 * is checked by the plan. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "passthrough.h"
#include "rundir.h"
#include "util.h"

enum opt_arg {
	OPT_NONE,               /* a switch */
	OPT_REQUIRED,           /* the next word is the value, whatever it is */
	OPT_OPTIONAL,           /* the next word when it does not start with '-' */
};

struct opt_entry;
typedef int (*opt_handler)(struct options *, const struct opt_entry *, const char *, struct verr *);

struct opt_entry {
	struct option_info info;        /* first: options_info() returns it */
	enum opt_arg arg;
	opt_handler handler;
	size_t field;                   /* offsetof() for the generic handlers */
};

#define FIELD(f) offsetof(struct options, f)

static bool *
opt_bool(struct options *o, const struct opt_entry *e)
{
	return (bool *)((char *)o + e->field);
}

static char **
opt_str(struct options *o, const struct opt_entry *e)
{
	return (char **)((char *)o + e->field);
}

static int
set_bool(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	*opt_bool(o, e) = true;
	return 0;
}

static int
set_str(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (*v == '\0')
		return verr_set(err, -EINVAL, "-%s needs a non-empty %s", e->info.name, e->info.arg);
	char **p = opt_str(o, e);
	free(*p);
	*p = xstrdup(v);
	return 0;
}

/* Network interface names: what the kernel accepts (IFNAMSIZ, no '/', ':' or space). */
static int
set_ifname(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (strchr(v, ',') != NULL && strcmp(e->info.name, "bridge") == 0) {
		/* The original's -bridge tap0,br0,eth0 became three flags. */
		char *copy = xstrdup(v), *save = NULL;
		char *t = strtok_r(copy, ",", &save), *b = strtok_r(NULL, ",", &save);
		char *h = strtok_r(NULL, ",", &save);
		verr_set(err, -EINVAL, "-bridge '%s': the old comma form was split into -tap, -bridge and -hostint; "
		    "write -tap %s -bridge %s%s%s", v, t ? t : "TAP", b ? b : "BRIDGE",
		    h ? " -hostint " : "", h ? h : "");
		free(copy);
		return -EINVAL;
	}
	size_t n = strlen(v);
	if (n == 0 || n > 15 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 || strpbrk(v, "/: \t\n,") != NULL)
		return verr_set(err, -EINVAL, "-%s '%s' is not a valid interface name "
		    "(1-15 characters, no '/', ':', ',' or spaces)", e->info.name, v);
	return set_str(o, e, v, err);
}

/* -mac: six hex bytes, a unicast address (QEMU refuses a multicast one for
 * a NIC), kept lower-case as QEMU prints it. */
static int
set_mac(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	bool ok = strlen(v) == 17;
	for (size_t i = 0; ok && i < 17; i++)
		ok = i % 3 == 2 ? v[i] == ':' : isxdigit((unsigned char)v[i]) != 0;
	if (!ok)
		return verr_set(err, -EINVAL, "-%s '%s' is not a MAC address; write six hex bytes, e.g. "
		    "52:54:00:12:34:56", e->info.name, v);
	/* the multicast bit is the lowest of the first byte: its second digit */
	int lo = isdigit((unsigned char)v[1]) ? v[1] - '0' : tolower((unsigned char)v[1]) - 'a' + 10;
	if (lo & 1)
		return verr_set(err, -EINVAL, "-%s %s is a multicast address, which a network card cannot have; "
		    "make the first byte even, e.g. 52:54:00:...", e->info.name, v);
	free(o->mac);
	o->mac = xstrdup(v);
	for (char *p = o->mac; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* Disk formats QEMU's block layer knows; anything else is a typo. */
static const char *const image_formats[] = {
	"raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vhdx", "vpc", "luks", "dmg", "parallels", "bochs", "cloop",
};

static int
check_format(const char *flag, const char *fmt, struct verr *err)
{
	for (size_t i = 0; i < nitems(image_formats); i++) {
		if (strcmp(fmt, image_formats[i]) == 0)
			return 0;
	}
	return verr_set(err, -EINVAL, "-%s '%s' is not a disk format QEMU knows; use raw, qcow2, vmdk, vdi, "
	    "vhdx, vpc, qed or luks", flag, fmt);
}

static int
set_image(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (*v == '\0')
		return verr_set(err, -EINVAL, "-image needs a path to a disk image or block device");
	char *path, *fmt = NULL;
	/* The README's own example writes "-image PATH,format=raw". */
	const char *f = strstr(v, ",format=");
	if (f != NULL && strchr(f + 1, ',') == NULL) {
		if (check_format("image", f + 8, err) < 0)
			return -EINVAL;
		path = xstrndup(v, (size_t)(f - v));
		fmt = xstrdup(f + 8);
	} else {
		path = xstrdup(v);
	}
	/* QEMU write-locks an image: the same one twice fails at start
	 * ("Failed to get \"write\" lock"). */
	for (size_t i = 0; i < o->n_images; i++) {
		if (strcmp(o->images[i].path, path) == 0) {
			verr_set(err, -EINVAL, "-image %s is given twice; QEMU cannot open one image as two disks "
			    "(it locks it for writing): give it once", path);
			free(path);
			free(fmt);
			return -EINVAL;
		}
	}
	o->images = xreallocarray(o->images, o->n_images + 1, sizeof(*o->images));
	o->images[o->n_images].path = path;
	o->images[o->n_images].format = fmt;
	o->n_images++;
	return 0;
}

static int
set_imageformat(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (o->n_images == 0)
		return verr_set(err, -EINVAL, "-%s %s: the format applies to the latest -image, and no -image "
		    "came before it; put -image PATH first", e->info.name, v);
	if (check_format(e->info.name, v, err) < 0)
		return -EINVAL;
	struct opt_image *img = &o->images[o->n_images - 1];
	free(img->format);
	img->format = xstrdup(v);
	return 0;
}

static int
add_iso(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (*v == '\0')
		return verr_set(err, -EINVAL, "-iso needs a path to an ISO image");
	o->isos = xreallocarray(o->isos, o->n_isos + 1, sizeof(*o->isos));
	o->isos[o->n_isos++] = xstrdup(v);
	return 0;
}

static int
set_memory(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (options_parse_size(v, &o->memory_mib, err) < 0)
		return verr_prefix(err, "-%s", e->info.name);
	return 0;
}

static int
set_lgsize(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	uint64_t mib;
	if (options_parse_size(v, &mib, err) < 0)
		return verr_prefix(err, "-%s", e->info.name);
	/* ivshmem BARs are powers of two; Looking Glass wants the same. */
	if ((mib & (mib - 1)) != 0)
		return verr_set(err, -EINVAL, "-%s %s: the shared memory size must be a power of two "
		    "(32M, 64M, 128M, ...)", e->info.name, v);
	if (mib > OPT_LGSIZE_MAX_MIB)
		return verr_set(err, -EINVAL, "-%s %s: at most %dM; Looking Glass needs width x height x 4 x 2 "
		    "bytes plus 10M, rounded up to a power of two: 64M for 1080p, 128M for 4K, 1024M even for "
		    "8K HDR", e->info.name, v, OPT_LGSIZE_MAX_MIB);
	o->lgsize_mib = mib;
	o->looking_glass = true;
	return 0;
}

static int
set_hugepages(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	o->hugepages = true;
	if (v != NULL) {
		if (*v != '/')
			return verr_set(err, -EINVAL, "-%s '%s': the hugetlbfs mount point must be an absolute path",
			    e->info.name, v);
		free(o->hugepages_mount);
		o->hugepages_mount = xstrdup(v);
		/* /proc/mounts has no trailing slash. */
		for (size_t n = strlen(o->hugepages_mount); n > 1 && o->hugepages_mount[n - 1] == '/'; n--)
			o->hugepages_mount[n - 1] = '\0';
	}
	return 0;
}

static int
set_pinvcpus(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (options_parse_cpulist(v, &o->pinvcpus, &o->n_pinvcpus, err) < 0)
		return verr_prefix(err, "-%s", e->info.name);
	return 0;
}

/* -pci and -usb: POSIX extended, case-sensitive, leading/trailing '|'
 * stripped as the original did; a repeated flag adds alternatives. */
static int
set_regex(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	bool pci = strcmp(e->info.name, "pci") == 0;
	char **str = pci ? &o->pci_regex : &o->usb_regex;
	regex_t *re = pci ? &o->pci_re : &o->usb_re;
	bool *set = pci ? &o->pci_re_set : &o->usb_re_set;

	char flag[16], *pattern;
	snprintf(flag, sizeof(flag), "-%s", e->info.name);
	if (passthrough_pattern(flag, v, &pattern, err) < 0)
		return -EINVAL;
	char *joined = *str == NULL ? pattern : xasprintf("%s|%s", *str, pattern);
	if (joined != pattern)
		free(pattern);
	regex_t tmp;
	if (passthrough_regex_compile(&tmp, REG_NOSUB, flag, joined, err) < 0) {
		free(joined);
		return -EINVAL;
	}
	if (*set)
		regfree(re);
	*re = tmp;
	*set = true;
	free(*str);
	*str = joined;
	return 0;
}

static int
add_portfwd(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	char proto[8];
	unsigned long ports[2];
	const char *p = strchr(v, ':');
	if (p == NULL || (size_t)(p - v) >= sizeof(proto))
		goto bad;
	memcpy(proto, v, (size_t)(p - v));
	proto[p - v] = '\0';
	for (char *c = proto; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		return verr_set(err, -EINVAL, "-%s '%s': the protocol must be tcp or udp, e.g. tcp:2222:22",
		    e->info.name, v);
	for (int i = 0; i < 2; i++) {
		char *end;
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		errno = 0;
		ports[i] = strtoul(p, &end, 10);
		if (errno != 0 || ports[i] < 1 || ports[i] > 65535)
			return verr_set(err, -EINVAL, "-%s '%s': ports run from 1 to 65535", e->info.name, v);
		if (*end != (i == 0 ? ':' : '\0'))
			goto bad;
		p = end;
	}
	/* QEMU refuses a second rule for the same host port, naming the first
	 * (after the host was changed): name the duplicate here. */
	for (size_t i = 0; i < o->n_portfwds; i++) {
		const struct opt_portfwd *old = &o->portfwds[i];
		if (strcmp(old->proto, proto) == 0 && old->host_port == ports[0])
			return verr_set(err, -EINVAL, "-%s '%s': host port %s %lu is already forwarded (to guest port %u); "
			    "each host port forwards to one guest port: pick another host port", e->info.name, v, proto,
			    ports[0], old->guest_port);
	}
	o->portfwds = xreallocarray(o->portfwds, o->n_portfwds + 1, sizeof(*o->portfwds));
	struct opt_portfwd *pf = &o->portfwds[o->n_portfwds++];
	memcpy(pf->proto, proto, 4);         /* "tcp" or "udp" and its NUL */
	pf->host_port = (unsigned)ports[0];
	pf->guest_port = (unsigned)ports[1];
	return 0;
bad:
	return verr_set(err, -EINVAL, "-%s '%s' is not protocol:hostport:guestport; write e.g. tcp:2222:22",
	    e->info.name, v);
}

static int
set_name(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (rundir_check_name(v, err) < 0)
		return verr_prefix(err, "-%s", e->info.name);
	free(o->name);
	o->name = xstrdup(v);
	return 0;
}

static int
set_accel(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (strcasecmp(v, "kvm") == 0)
		o->accel = OPT_ACCEL_KVM;
	else if (strcasecmp(v, "tcg") == 0)
		o->accel = OPT_ACCEL_TCG;
	else
		return verr_set(err, -EINVAL, "-%s '%s': the accelerator is kvm or tcg", e->info.name, v);
	return 0;
}

static int
set_seconds(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	char *end;
	errno = 0;
	long n = isdigit((unsigned char)*v) ? strtol(v, &end, 10) : -1;
	if (n < 1 || n > 86400 || errno != 0 || *end != '\0')
		return verr_set(err, -EINVAL, "-%s '%s': give a whole number of seconds from 1 to 86400",
		    e->info.name, v);
	*(int *)((char *)o + e->field) = (int)n;
	return 0;
}

static int
set_user(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	struct passwd *pw = getpwnam(v);
	if (pw == NULL)
		return verr_set(err, -EINVAL, "-%s '%s': no such user on this host; QEMU runs as this user, "
		    "name an existing one", e->info.name, v);
	o->user_uid = (int)pw->pw_uid;
	o->user_gid = (int)pw->pw_gid;
	return set_str(o, e, v, err);
}

static int
set_restore(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	o->restore = true;
	if (v != NULL) {
		if (set_name(o, e, v, err) < 0)
			return -EINVAL;
		free(o->restore_name);
		o->restore_name = xstrdup(v);
	}
	return 0;
}

static int
set_win11(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	o->win11 = o->tpm = o->secureboot = true;
	return 0;
}

static int
set_agents(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	o->qemu_agent = o->spice = true;
	return 0;
}

static int
set_extras(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	struct strv words = { 0 };
	if (options_split_words(v, &words, err) < 0) {
		strv_free(&words);
		return verr_prefix(err, "-%s", e->info.name);
	}
	/* Repeated -extras add up, as words appended to QEMU's command line. */
	for (size_t i = 0; i < words.n; i++)
		strv_push(&o->extras_words, words.v[i]);
	strv_free(&words);
	if (options_check_extras(&o->extras_words, err) < 0)
		return -EINVAL;
	char *joined = o->extras == NULL ? xstrdup(v) : xasprintf("%s %s", o->extras, v);
	free(o->extras);
	o->extras = joined;
	return 0;
}

static int
set_file(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	if (*v == '\0')
		return verr_set(err, -EINVAL, "-%s needs a path", e->info.name);
	return set_str(o, e, v, err);
}

#define SWITCH(n, al, f, h) \
	{ .info = { .name = n, .aliases = al, .arg = NULL, .help = h }, .arg = OPT_NONE, .handler = set_bool, \
	  .field = FIELD(f) }
#define VALUE(n, al, a, fn, f, h) \
	{ .info = { .name = n, .aliases = al, .arg = a, .help = h }, .arg = OPT_REQUIRED, .handler = fn, \
	  .field = FIELD(f) }
#define CALL(n, al, fn, h) \
	{ .info = { .name = n, .aliases = al, .arg = NULL, .help = h }, .arg = OPT_NONE, .handler = fn }
#define OPTIONAL(n, al, a, fn, h) \
	{ .info = { .name = n, .aliases = al, .arg = a, .help = h }, .arg = OPT_OPTIONAL, .handler = fn }

#define CALL_VALUE(n, al, a, fn, h) \
	{ .info = { .name = n, .aliases = al, .arg = a, .help = h }, .arg = OPT_REQUIRED, .handler = fn }

/* main() expands every -args FILE (argsfile_expand()) before the flags are
 * parsed, so the parser only meets -args when that step was skipped: a caller
 * bug, or a file naming another file (which argsfile refuses first). */
static int
refuse_args(struct options *o, const struct opt_entry *e, const char *v, struct verr *err)
{
	(void)o;
	return verr_set(err, -EINVAL, "-%s %s: args files are expanded before parsing and do not nest; "
	    "put the flags of '%s' on the command line", e->info.name, v, v);
}

static const struct opt_entry opt_table[] = {
	/* storage */
	VALUE("image", "", "PATH", set_image, images,
	    "Attach a disk image, partition, whole disk or zvol (repeatable; \"PATH,format=raw\" also works)."),
	VALUE("imageformat", "format", "FORMAT", set_imageformat, images,
	    "Format of the latest -image (raw, qcow2, ...); needed for raw storage."),
	VALUE("iso", "", "PATH", add_iso, isos, "Attach an ISO as a CD-ROM (repeatable)."),
	SWITCH("nvme", "", nvme, "Present disks as NVMe drives instead of virtio-blk or IDE."),
	SWITCH("noVirtio", "avoidVirtio", novirtio,
	    "Use traditional devices (IDE disks, e1000e network) for guests without virtio drivers."),
	/* firmware and boot */
	VALUE("bios", "", "PATH", set_file, bios, "OVMF code file to boot with (default: search well-known places)."),
	SWITCH("noBios", "legacy legacyboot", nobios, "No UEFI firmware: boot QEMU's default legacy BIOS."),
	VALUE("biosvars", "", "PATH", set_file, biosvars,
	    "UEFI variables file for this guest (a copy of OVMF_VARS); needed for Secure Boot and Windows 11."),
	SWITCH("createvars", "", createvars,
	    "Create the -biosvars file from the OVMF_VARS template when it does not exist yet."),
	SWITCH("secureboot", "", secureboot, "Boot the Secure Boot build of OVMF (needs -biosvars)."),
	SWITCH("tpm", "", tpm, "Give the guest a TPM 2.0 through swtpm."),
	CALL("win11", "", set_win11, "Windows 11: implies -tpm and -secureboot."),
	VALUE("kernel", "k", "PATH", set_file, kernel, "Boot this kernel directly."),
	VALUE("initrd", "initramfs rd init", "PATH", set_file, initrd, "Initramfs for -kernel."),
	VALUE("cmdline", "append", "ARGS", set_str, cmdline, "Kernel command line for -kernel, e.g. 'console=ttyS0'."),
	/* memory and CPU */
	VALUE("memory", "mem m", "SIZE", set_memory, memory_mib,
	    "Guest memory: K, M, G or T suffix, bare number = MiB (default: half of the host's)."),
	OPTIONAL("hugepages", "huge", "MOUNTPOINT", set_hugepages,
	    "Back guest memory with hugepages (default mount /dev/hugepages), allocating them when needed."),
	VALUE("pinvcpus", "", "CPULIST", set_pinvcpus, pinvcpus,
	    "Run vCPU i on the i-th listed host CPU, e.g. 0,8,1,9 or 2-5,10-13; sets the vCPU count."),
	SWITCH("isolate", "", isolate, "Keep host tasks off the -pinvcpus CPUs while the guest runs."),
	VALUE("accel", "", "kvm|tcg", set_accel, accel, "Accelerator (default: kvm when KVM can run a guest here, else tcg with a warning)."),
	SWITCH("cputhreads", "showpairs showthreads showcpu", cputhreads,
	    "Print the host's cores and their SMT threads, with a -pinvcpus suggestion, and exit."),
	/* passthrough */
	VALUE("pci", "", "REGEX", set_regex, pci_regex,
	    "Pass through every PCI device whose lspci -Dnn line matches (extended regex, case-sensitive)."),
	VALUE("usb", "", "REGEX", set_regex, usb_regex,
	    "Pass through every USB device whose lsusb line, strings or port path match (extended regex)."),
	VALUE("romfile", "vbios", "PATH", set_file, romfile, "ROM file for the passed-through GPU."),
	SWITCH("iommugroups", "iommu iommugrouping", iommugroups, "Print the host's IOMMU groups and exit."),
	SWITCH("ignorevtcon", "ignoreframebuffer leavefb leaveframebuffer leavevtcon", ignorevtcon,
	    "Leave the vtcon and efi-framebuffer bindings alone (kernel bug 216475)."),
	SWITCH("killx", "", killx, "Allow stopping the display manager when it holds the GPU being passed through."),
	VALUE("bindtimeout", "", "SECONDS", set_seconds, bindtimeout_s,
	    "How long a driver unbind may take before it counts as stuck (default 5)."),
	/* network */
	VALUE("bridge", "", "BRIDGE", set_ifname, bridge,
	    "Attach the guest to this bridge through a tap (created with -hostint when missing)."),
	VALUE("tap", "interface", "TAP", set_ifname, tap, "Tap interface for the guest (used, or created when missing)."),
	VALUE("hostint", "ethernet", "IFACE", set_ifname, hostint, "Host interface to enslave to a new -bridge."),
	SWITCH("nonet", "", nonet, "No guest network adapter at all."),
	VALUE("portforward", "", "PROTO:HOSTPORT:GUESTPORT", add_portfwd, portfwds,
	    "Forward a host port to the guest with user-mode networking, e.g. tcp:2222:22 (repeatable)."),
	VALUE("mac", "", "MAC", set_mac, mac,
	    "The guest NIC's MAC address (default: the bridged interface's, else one derived from the guest name and the host)."),
	/* guest companions */
	SWITCH("hyperv", "", hyperv, "Add Hyper-V enlightenments for Windows guests."),
	SWITCH("hostaudio", "", hostaudio, "Guest audio through the host's PipeWire or PulseAudio (ich9-intel-hda)."),
	SWITCH("looking-glass", "lookingglass lg", looking_glass,
	    "Add a Looking Glass shared memory device and a SPICE server for input."),
	VALUE("lgsize", "", "SIZE", set_lgsize, lgsize_mib, "Looking Glass shared memory size (default 64M, at most 1024M)."),
	SWITCH("spice", "", spice, "Add a SPICE server on a UNIX socket with vdagent, a qxl display and USB redirection."),
	SWITCH("qemu-agent", "qemuagent qemu", qemu_agent, "Add a virtio-serial port for the QEMU guest agent."),
	CALL("agents", "", set_agents, "Both -qemu-agent and -spice."),
	VALUE("extras", "", "ARGS", set_extras, extras,
	    "Extra QEMU arguments, split into words like a shell would (quotes, backslashes), never run by one."),
	/* supervisor and output */
	CALL_VALUE("args", "", "FILE", refuse_args,
	    "Read flags from FILE, one per line ('#' comments), in place of -args (e.g. /etc/vfio/NAME.args)."),
	VALUE("name", "", "NAME", set_name, name, "Name of this guest (default vfio)."),
	VALUE("user", "", "USER", set_user, user, "Run QEMU as this user (default: the user behind sudo)."),
	VALUE("shutdowntimeout", "", "SECONDS", set_seconds, shutdowntimeout_s,
	    "How long the guest gets to power down before QEMU is stopped (default 60)."),
	OPTIONAL("restore", "", "NAME", set_restore,
	    "Undo the host changes a crashed run left behind (all names, or NAME) and exit."),
	SWITCH("force", "", force, "Start even when pre-flight checks found problems (they become warnings)."),
	SWITCH("quiet", "q silence s", quiet, "Print only errors."),
	SWITCH("nocolor", "nocolors", nocolor, "No colour in the output (NO_COLOR is honoured too)."),
	SWITCH("colortest", "", colortest, "Print a terminal colour test and exit."),
	SWITCH("json", "", json, "Print the plan as one JSON object instead of the rundown."),
	SWITCH("version", "", version, "Print the version and exit."),
	SWITCH("help", "h", help, "Print this help and exit."),
	SWITCH("run", "", run, "Actually run (without it, print what would be done: a dry run)."),
};

const struct option_info *
options_info(size_t i)
{
	return i < nitems(opt_table) ? &opt_table[i].info : NULL;
}

static const char *const opt_mode_flags[] = {
	"run", "restore", "json", "help", "version", "colortest", "iommugroups", "cputhreads",
};
/* -imageformat belongs to the -image before it, so it goes with them. */
static const char *const opt_repeatable_flags[] = {
	"image", "imageformat", "iso", "pci", "usb", "portforward", "extras",
};

static bool
opt_listed(const struct option_info *in, const char *const *list, size_t n)
{
	for (size_t i = 0; in != NULL && i < n; i++) {
		if (strcmp(in->name, list[i]) == 0)
			return true;
	}
	return false;
}

static const struct opt_entry *opt_lookup(const char *word);

const struct option_info *
options_find(const char *name)
{
	const struct opt_entry *e = opt_lookup(name);
	return e != NULL ? &e->info : NULL;
}

bool
options_is_mode(const struct option_info *in)
{
	return opt_listed(in, opt_mode_flags, nitems(opt_mode_flags));
}

bool
options_is_repeatable(const struct option_info *in)
{
	return opt_listed(in, opt_repeatable_flags, nitems(opt_repeatable_flags));
}

static bool
alias_matches(const char *aliases, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = aliases; *p;) {
		size_t len = strcspn(p, " ");
		if (len == n && strncasecmp(p, word, n) == 0)
			return true;
		p += len;
		p += strspn(p, " ");
	}
	return false;
}

static const struct opt_entry *
opt_lookup(const char *word)
{
	for (size_t i = 0; i < nitems(opt_table); i++) {
		if (strcasecmp(opt_table[i].info.name, word) == 0 || alias_matches(opt_table[i].info.aliases, word))
			return &opt_table[i];
	}
	return NULL;
}

/* Levenshtein distance, case-insensitive; names are short. */
static size_t
edit_distance(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	if (alen > 64 || blen > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= blen; j++)
		row[j] = j;
	for (size_t i = 1; i <= alen; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[blen];
}

static const char *
opt_nearest(const char *word)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < nitems(opt_table); i++) {
		const struct opt_entry *e = &opt_table[i];
		size_t d = edit_distance(word, e->info.name, strlen(e->info.name));
		if (d < best_d)
			best_d = d, best = e->info.name;
		for (const char *p = e->info.aliases; *p;) {
			size_t len = strcspn(p, " ");
			d = edit_distance(word, p, len);
			if (d < best_d)
				best_d = d, best = e->info.name;
			p += len;
			p += strspn(p, " ");
		}
	}
	return best;
}

void
options_init(struct options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->name = xstrdup("vfio");
	opts->bindtimeout_s = 5;
	opts->shutdowntimeout_s = 60;
	opts->lgsize_mib = 64;
	opts->user_uid = opts->user_gid = -1;
}

int
options_parse(struct options *opts, int argc, char **argv, struct verr *err)
{
	options_init(opts);
	for (int i = 1; i < argc; i++) {
		const char *word = argv[i];
		if (word[0] != '-' || word[1] == '\0')
			return verr_set(err, -EINVAL, "unexpected argument '%s': every flag starts with '-' and "
			    "values follow their flag (see -help)", word);
		const char *name = word + (word[1] == '-' ? 2 : 1);
		const struct opt_entry *e = opt_lookup(name);
		if (e == NULL)
			return verr_set(err, -EINVAL, "unknown flag '%s'; did you mean -%s? (see -help)", word,
			    opt_nearest(name));
		const char *value = NULL;
		if (e->arg == OPT_REQUIRED) {
			if (i + 1 >= argc)
				return verr_set(err, -EINVAL, "-%s needs a value: -%s %s", e->info.name,
				    e->info.name, e->info.arg);
			value = argv[++i];
		} else if (e->arg == OPT_OPTIONAL && i + 1 < argc && argv[i + 1][0] != '-') {
			value = argv[++i];
		}
		if (e->handler(opts, e, value, err) < 0)
			return -EINVAL;
		if (value != NULL)
			strv_pushf(&opts->flags, "-%s %s", e->info.name, value);
		else
			strv_pushf(&opts->flags, "-%s", e->info.name);
	}
	return 0;
}

void
options_free(struct options *opts)
{
	for (size_t i = 0; i < opts->n_images; i++) {
		free(opts->images[i].path);
		free(opts->images[i].format);
	}
	free(opts->images);
	for (size_t i = 0; i < opts->n_isos; i++)
		free(opts->isos[i]);
	free(opts->isos);
	if (opts->pci_re_set)
		regfree(&opts->pci_re);
	if (opts->usb_re_set)
		regfree(&opts->usb_re);
	char **strs[] = { &opts->restore_name, &opts->name, &opts->bios, &opts->biosvars, &opts->kernel,
		&opts->initrd, &opts->cmdline, &opts->hugepages_mount, &opts->pci_regex, &opts->usb_regex,
		&opts->romfile, &opts->bridge, &opts->tap, &opts->hostint, &opts->extras, &opts->user,
		&opts->qemu, &opts->audiodev, &opts->mac };
	for (size_t i = 0; i < nitems(strs); i++)
		free(*strs[i]);
	free(opts->pinvcpus);
	free(opts->portfwds);
	free(opts->qemu_groups);
	strv_free(&opts->extras_words);
	strv_free(&opts->flags);
	json_decref(opts->running.flags);
	free(opts->running.why);
	memset(opts, 0, sizeof(*opts));
}

void
options_host_files(const struct options *opts, struct strv *out)
{
	for (size_t i = 0; i < opts->n_images; i++)
		strv_push(out, opts->images[i].path);
	for (size_t i = 0; i < opts->n_isos; i++)
		strv_push(out, opts->isos[i]);
	const char *one[] = { opts->bios, opts->biosvars, opts->romfile, opts->kernel, opts->initrd,
		opts->hugepages ? (opts->hugepages_mount ? opts->hugepages_mount : "/dev/hugepages") : NULL };
	for (size_t i = 0; i < nitems(one); i++) {
		if (one[i] != NULL && one[i][0] != '\0')
			strv_push(out, one[i]);
	}
}

void
options_usage(FILE *out)
{
	fprintf(out, "usage: vfio [-flag [value] ...]   (flags are case-insensitive, - or --)\n\n"
	    "Plans a QEMU guest with host hardware passed through and prints the plan;\n"
	    "-run carries it out and supervises the guest.\n\n");
	for (size_t i = 0; i < nitems(opt_table); i++) {
		const struct option_info *in = &opt_table[i].info;
		struct strbuf sb = { 0 };
		strbuf_printf(&sb, "  -%s", in->name);
		if (in->arg != NULL)
			strbuf_printf(&sb, opt_table[i].arg == OPT_OPTIONAL ? " [%s]" : " %s", in->arg);
		for (const char *p = in->aliases; *p;) {
			size_t len = strcspn(p, " ");
			strbuf_printf(&sb, ", -%.*s", (int)len, p);
			p += len;
			p += strspn(p, " ");
		}
		fprintf(out, "%s\n      %s\n", sb.s, in->help);
		strbuf_free(&sb);
	}
}
