/* plan_build() on hand-built snapshots: it is a pure function, so each test
 * describes a host in a struct and checks the argv, QMP commands, host
 * changes, warnings and errors the plan derives from it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostroot.h"
#include "options.h"
#include "plan-priv.h"
#include "plan.h"
#include "report.h"
#include "snapshot.h"
#include "util.h"

/* ---- a host in a struct ---- */

struct host {
	struct host_snapshot snap;
	struct pci_device pci[40];
	struct usb_device usb[16];
	struct cpu_thread cpus[64];
	struct net_iface ifaces[8];
	struct host_file files[16];
	struct firmware_file fw[2];
	struct hugepage_pool pools[2];
	struct hugetlbfs_mount mounts[2];
};

/* 4 cores with SMT (siblings N and N+4), 16 GiB, KVM, IOMMU, OVMF. */
static void
host_init(struct host *h, int cores, int threads, uint64_t mem_kib)
{
	memset(h, 0, sizeof(*h));
	struct host_snapshot *s = &h->snap;
	s->pci = h->pci;
	s->usb = h->usb;
	s->cpus = h->cpus;
	s->ifaces = h->ifaces;
	s->files = h->files;
	s->firmware = h->fw;
	s->hugepools = h->pools;
	s->hugemounts = h->mounts;
	for (int t = 0; t < threads; t++) {
		for (int c = 0; c < cores; c++) {
			struct cpu_thread *ct = &h->cpus[s->n_cpus++];
			ct->cpu = t * cores + c;
			ct->core_id = c;
			ct->sibling = threads == 2 ? (t == 0 ? c + cores : c) : -1;
			ct->online = true;
		}
	}
	s->mem_total_kib = mem_kib;
	s->mem_available_kib = mem_kib / 2;
	s->iommu_enabled = true;
	s->kvm = s->kvm_usable = true;
	s->vfio_pci_loaded = s->vfio_pci_available = true;
	snprintf(s->cpu_vendor, sizeof(s->cpu_vendor), "GenuineIntel");
	snprintf(s->kernel_release, sizeof(s->kernel_release), "6.1.0-28-amd64");
	snprintf(h->fw[0].code, sizeof(h->fw[0].code), "/usr/share/OVMF/OVMF_CODE_4M.fd");
	snprintf(h->fw[0].vars, sizeof(h->fw[0].vars), "/usr/share/OVMF/OVMF_VARS_4M.fd");
	snprintf(h->fw[1].code, sizeof(h->fw[1].code), "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
	h->fw[1].secboot = true;
	s->n_firmware = 2;
	s->default_hugepage_kib = 2048;
	s->sudo_uid = s->sudo_gid = -1;
	/* as systemd's udev rules make them: everyone may open them */
	s->kvm_node = (struct host_node){ .exists = true, .uid = 0, .gid = 108, .mode = 0666 };
	s->vfio_node = (struct host_node){ .exists = true, .uid = 0, .gid = 0, .mode = 0666 };
	snprintf(s->machine_id, sizeof(s->machine_id), "5d6f2c3a9b8e4f1d8c7b6a5948372615");
}

static struct pci_device *
host_pci(struct host *h, const char *addr, unsigned cls, const char *driver, int group, const char *desc)
{
	struct pci_device *d = &h->pci[h->snap.n_pci++];
	snprintf(d->address, sizeof(d->address), "%.15s", addr);
	snprintf(d->slot, sizeof(d->slot), "%.10s", addr);
	d->function = (unsigned)(addr[11] - '0');
	d->class_code = cls;
	snprintf(d->line, sizeof(d->line), "%s %s", addr, desc);
	snprintf(d->driver, sizeof(d->driver), "%s", driver);
	d->iommu_group = group;
	d->is_display = (cls >> 16) == 0x03;
	d->is_bridge = (cls >> 8) == 0x0604;
	return d;
}

/* The desktop: an RTX 2080 Ti (4 functions, group 1, behind a root port),
 * a chipset xHCI, NVMe. */
static void
host_desktop(struct host *h)
{
	host_init(h, 4, 2, 16 * 1024 * 1024);
	host_pci(h, "0000:00:01.0", 0x060400, "pcieport", 1, "PCI bridge [0604]: Intel Corporation Root Port [8086:1901]");
	struct pci_device *gpu = host_pci(h, "0000:01:00.0", 0x030000, "nvidia", 1,
	    "VGA compatible controller [0300]: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti] [10de:1e04]");
	gpu->boot_vga = true;
	host_pci(h, "0000:01:00.1", 0x040300, "snd_hda_intel", 1,
	    "Audio device [0403]: NVIDIA Corporation TU102 High Definition Audio Controller [10de:10f7]");
	host_pci(h, "0000:01:00.2", 0x0c0330, "xhci_hcd", 1,
	    "USB controller [0c03]: NVIDIA Corporation TU102 USB 3.1 Host Controller [10de:1ad6]");
	host_pci(h, "0000:01:00.3", 0x0c8000, "nvidia-gpu", 1,
	    "Serial bus controller [0c80]: NVIDIA Corporation TU102 USB Type-C UCSI Controller [10de:1ad7]");
	host_pci(h, "0000:00:14.0", 0x0c0330, "xhci_hcd", 4,
	    "USB controller [0c03]: Intel Corporation Cannon Lake PCH USB 3.1 xHCI Host Controller [8086:a36d]");
	host_pci(h, "0000:02:00.0", 0x010802, "nvme", 11,
	    "Non-Volatile memory controller [0108]: Samsung Electronics Co Ltd NVMe SSD Controller [144d:a808]");
	/* fbcon bound as vtcon1, after the dummy console (display_fbcon_scan()) */
	snprintf(h->snap.fbcons[h->snap.n_fbcons++], sizeof(h->snap.fbcons[0]), "/sys/class/vtconsole/vtcon1");
}

static struct usb_device *
host_usb(struct host *h, const char *sysname, unsigned bus, unsigned dev, unsigned vid, unsigned pid,
    const char *name, const char *controller)
{
	struct usb_device *u = &h->usb[h->snap.n_usb++];
	snprintf(u->sysname, sizeof(u->sysname), "%s", sysname);
	u->bus = bus;
	u->devnum = dev;
	u->vendor = vid;
	u->product = pid;
	snprintf(u->line, sizeof(u->line), "Bus %03u Device %03u: ID %04x:%04x %s", bus, dev, vid, pid, name);
	snprintf(u->controller, sizeof(u->controller), "%s", controller);
	return u;
}

static void
host_iface(struct host *h, const char *name, const char *mac, bool bridge, bool tap, const char *master)
{
	struct net_iface *i = &h->ifaces[h->snap.n_ifaces++];
	snprintf(i->name, sizeof(i->name), "%s", name);
	snprintf(i->mac, sizeof(i->mac), "%s", mac);
	snprintf(i->master, sizeof(i->master), "%s", master);
	i->is_bridge = bridge;
	i->is_tap = tap;
}

static struct host_file *
host_file(struct host *h, const char *path, bool exists)
{
	struct host_file *f = &h->files[h->snap.n_files++];
	f->path = (char *)path;
	f->exists = f->readable = exists;
	return f;
}

/* ---- building a plan ---- */

static void
opts_parse(struct options *o, const char *const *words)
{
	char *argv[64] = { "vfio" };
	int argc = 1;
	for (; words[argc - 1] != NULL; argc++)
		argv[argc] = (char *)words[argc - 1];
	struct verr err = { 0 };
	if (options_parse(o, argc, argv, &err) != 0)
		fail_msg("options: %s", err.msg);
	o->qemu = xstrdup("qemu-system-x86_64");
	o->console_tty = true;		/* run from a terminal, unless a test says otherwise */
}

/* The house rule checked on every plan: no empty word in the argv. */
static void
check_argv_sane(const struct plan *p)
{
	for (size_t i = 0; i < p->argv.n; i++) {
		if (p->argv.v[i][0] == '\0')
			fail_msg("argv[%zu] is empty", i);
	}
}

#define PLAN(h, p, o, ...) do { \
	const char *const words_[] = { __VA_ARGS__, NULL }; \
	opts_parse(&(o), words_); \
	plan_build(&(p), &(o), &(h)->snap); \
	check_argv_sane(&(p)); \
} while (0)
#define PLAN0(h, p, o) do { \
	const char *const words_[] = { NULL }; \
	opts_parse(&(o), words_); \
	plan_build(&(p), &(o), &(h)->snap); \
	check_argv_sane(&(p)); \
} while (0)

static void
done(struct plan *p, struct options *o)
{
	plan_free(p);
	options_free(o);
}

/* The value after flag (the first such flag), or NULL. */
static const char *
arg_after(const struct plan *p, const char *flag)
{
	for (size_t i = 0; i + 1 < p->argv.n; i++) {
		if (strcmp(p->argv.v[i], flag) == 0)
			return p->argv.v[i + 1];
	}
	return NULL;
}

static bool
has_arg(const struct plan *p, const char *word)
{
	for (size_t i = 0; i < p->argv.n; i++) {
		if (strcmp(p->argv.v[i], word) == 0)
			return true;
	}
	return false;
}

/* The argv word that starts with prefix, or NULL. */
static const char *
arg_prefixed(const struct plan *p, const char *prefix)
{
	for (size_t i = 0; i < p->argv.n; i++) {
		if (str_startswith(p->argv.v[i], prefix))
			return p->argv.v[i];
	}
	return NULL;
}

static size_t
count_prefixed(const struct plan *p, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < p->argv.n; i++)
		n += str_startswith(p->argv.v[i], prefix);
	return n;
}

static bool
strv_contains(const struct strv *sv, const char *needle)
{
	for (size_t i = 0; i < sv->n; i++) {
		if (strstr(sv->v[i], needle) != NULL)
			return true;
	}
	return false;
}

static void
expect_error_containing(const struct plan *p, const char *needle)
{
	if (!strv_contains(&p->errors, needle)) {
		for (size_t i = 0; i < p->errors.n; i++)
			fprintf(stderr, "error: %s\n", p->errors.v[i]);
		fail_msg("no plan error contains '%s'", needle);
	}
}

static void
expect_no_errors(const struct plan *p)
{
	for (size_t i = 0; i < p->errors.n; i++)
		fprintf(stderr, "unexpected error: %s\n", p->errors.v[i]);
	assert_int_equal(p->errors.n, 0);
}

/* The JSON dump of element i of a plan array, for compact comparisons. */
static char *
dump(const json_t *array, size_t i)
{
	return json_dumps(json_array_get(array, i), JSON_COMPACT | JSON_PRESERVE_ORDER);
}

static void
expect_json(const json_t *array, size_t i, const char *want)
{
	char *s = dump(array, i);
	if (s == NULL || strcmp(s, want) != 0)
		fail_msg("element %zu:\n  got  %s\n  want %s", i, s ? s : "(none)", want);
	free(s);
}

/* ---- the machine ---- */

static void
test_minimal_machine_has_q35_qmp_on_fd3_and_stops_at_start(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/disk.img", true);
	PLAN(&h, p, o, "-image", "/vm/disk.img");
	expect_no_errors(&p);
	assert_string_equal(p.argv.v[0], "qemu-system-x86_64");
	assert_string_equal(arg_after(&p, "-machine"), "q35,kernel_irqchip=on");
	assert_string_equal(arg_after(&p, "-accel"), "kvm");
	assert_true(has_arg(&p, "-nodefaults"));
	assert_true(has_arg(&p, "-S"));
	assert_string_equal(arg_after(&p, "-chardev"), "socket,id=qmp,fd=3,server=on,wait=off");
	assert_string_equal(arg_after(&p, "-mon"), "chardev=qmp,mode=control");
	assert_string_equal(arg_after(&p, "-cpu"), "host,kvm=on,topoext=on");
	assert_string_equal(arg_after(&p, "-drive"),
	    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd");
	/* The console is QEMU's socket, relayed to this terminal by the session. */
	assert_string_equal(arg_after(&p, "-serial"), "chardev:console");
	assert_true(p.console_tty);
	assert_int_equal(p.memory_mib, 8192);	/* half of the host's 16 GiB */
	assert_false(p.has_xhci);
	done(&p, &o);
}

/* Without a terminal (systemd, a script) the console is in the runtime
 * directory only, and the dry run says so: -run does exactly what it
 * prints. (With one it is there too: QEMU logs it either way.) */
static void
test_console_without_a_terminal_goes_to_console_log(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/disk.img", true);
	const char *const words[] = { "-image", "/vm/disk.img", "-name", "win10", NULL };
	opts_parse(&o, words);
	o.console_tty = false;
	plan_build(&p, &o, &h.snap);
	/* The session opens the log and hands it to QEMU as fd 4, and the
	 * console's listening socket as fd 5. */
	assert_string_equal(arg_after(&p, "-serial"), "chardev:console");
	assert_string_equal(arg_after(&p, "-add-fd"), "fd=4,set=1,opaque=console-log");
	assert_true(has_arg(&p, "socket,id=console,fd=5,server=on,wait=off,logfile=/dev/fdset/1"));
	char *want = xasprintf("%s/run/vfio/win10/console.log", hostroot_get());
	assert_false(p.console_tty);
	assert_true(strv_contains(&p.rundown, "serial console in "));
	assert_true(strv_contains(&p.rundown, want));
	free(want);
	done(&p, &o);
}

static void
test_default_memory_and_cpus_are_half_the_host(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN0(&h, p, o);
	assert_string_equal(arg_after(&p, "-m"), "8192M");
	assert_string_equal(arg_after(&p, "-smp"), "4,sockets=1,cores=4,threads=1");
	done(&p, &o);
}

static void
test_small_host_gets_one_cpu_and_nonzero_memory(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_init(&h, 1, 1, 1000000);   /* 1 CPU, ~1 GB */
	PLAN0(&h, p, o);
	expect_no_errors(&p);
	assert_string_equal(arg_after(&p, "-smp"), "1,sockets=1,cores=1,threads=1");
	assert_string_equal(arg_after(&p, "-m"), "488M");
	done(&p, &o);
}

static void
test_unknown_host_memory_is_refused_not_zero(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_init(&h, 1, 1, 0);
	PLAN(&h, p, o, "-force");
	expect_error_containing(&p, "give -memory SIZE");
	assert_null(arg_after(&p, "-m"));
	done(&p, &o);
}

static void
test_pinned_smt_siblings_give_threads_2(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pinvcpus", "1,5,2,6");
	expect_no_errors(&p);
	assert_string_equal(arg_after(&p, "-smp"), "4,sockets=1,cores=2,threads=2");
	done(&p, &o);
}

static void
test_pinned_cpus_that_are_not_siblings_give_threads_1(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pinvcpus", "1-4");
	assert_string_equal(arg_after(&p, "-smp"), "4,sockets=1,cores=4,threads=1");
	done(&p, &o);
	/* Consecutive siblings but an odd count: no pairs. */
	PLAN(&h, p, o, "-pinvcpus", "1,5,2");
	assert_string_equal(arg_after(&p, "-smp"), "3,sockets=1,cores=3,threads=1");
	done(&p, &o);
}

static void
test_pinning_cpus_the_host_lacks_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pinvcpus", "6-9");
	expect_error_containing(&p, "-pinvcpus: this host has no online CPU 8,9 (it has 8)");
	done(&p, &o);
}

static void
test_hyperv_adds_the_enlightenments(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-hyperv");
	assert_string_equal(arg_after(&p, "-cpu"), "host,kvm=on,topoext=on,hv-frequencies,hv-relaxed,hv-reset,"
	    "hv-runtime,hv-spinlocks=0x1fff,hv-stimer,hv-synic,hv-time,hv-vapic,hv-vpindex");
	done(&p, &o);
}

static void
test_no_kvm_falls_back_to_tcg_with_a_warning(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.kvm = false;
	PLAN(&h, p, o, "-hyperv");
	expect_no_errors(&p);
	assert_true(p.accel_tcg);
	assert_string_equal(arg_after(&p, "-accel"), "tcg");
	assert_string_equal(arg_after(&p, "-machine"), "q35");
	assert_string_equal(arg_after(&p, "-cpu"), "max");
	assert_true(strv_contains(&p.warnings, "/dev/kvm does not exist"));
	assert_true(strv_contains(&p.warnings, "-hyperv"));
	done(&p, &o);
	PLAN(&h, p, o, "-accel", "kvm");
	expect_error_containing(&p, "-accel kvm: /dev/kvm does not exist");
	done(&p, &o);
}

/* /dev/kvm exists but cannot run a guest (a nested hypervisor refusing what
 * QEMU sets): the default falls back to tcg with a warning saying why,
 * -accel kvm is an error, and -force makes that a warning. */
static void
test_unusable_kvm_falls_back_to_tcg_and_accel_kvm_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.kvm_usable = false;
	snprintf(h.snap.kvm_unusable, sizeof(h.snap.kvm_unusable), "KVM refuses MSR 0x10a");
	PLAN(&h, p, o, "-name", "vfio");
	expect_no_errors(&p);
	assert_true(p.accel_tcg);
	assert_string_equal(arg_after(&p, "-accel"), "tcg");
	assert_string_equal(arg_after(&p, "-cpu"), "max");
	assert_true(strv_contains(&p.warnings, "KVM is not usable here (KVM refuses MSR 0x10a): using the tcg"));
	done(&p, &o);
	PLAN(&h, p, o, "-accel", "kvm");
	expect_error_containing(&p, "-accel kvm: KVM is not usable here: KVM refuses MSR 0x10a; use -accel tcg");
	done(&p, &o);
	PLAN(&h, p, o, "-accel", "kvm", "-force");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-force: -accel kvm: KVM is not usable here"));
	assert_string_equal(arg_after(&p, "-accel"), "kvm");
	done(&p, &o);
}

static void
test_memory_larger_than_the_host_is_an_error_and_force_makes_it_a_warning(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-m", "64G");
	expect_error_containing(&p, "-memory 65536M is more than the host's 16384M");
	done(&p, &o);
	PLAN(&h, p, o, "-m", "64G", "-force");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-force: -memory 65536M is more than"));
	assert_string_equal(arg_after(&p, "-m"), "65536M");
	done(&p, &o);
}

static void
test_hugepages_allocate_what_is_missing(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.pools[0] = (struct hugepage_pool){ .page_kib = 2048, .nr = 100, .free_pages = 50 };
	h.snap.n_hugepools = 1;
	snprintf(h.mounts[0].path, sizeof(h.mounts[0].path), "/dev/hugepages");
	h.mounts[0].page_kib = 2048;
	h.snap.n_hugemounts = 1;
	PLAN(&h, p, o, "-m", "4G", "-hugepages");
	expect_no_errors(&p);
	assert_string_equal(arg_after(&p, "-mem-path"), "/dev/hugepages");
	assert_true(has_arg(&p, "-mem-prealloc"));
	/* 2048 pages needed, 50 free: the pool grows by 1998; args.pages is the need. */
	expect_json(p.host_changes, 0, "{\"action\":\"hugepages-alloc\",\"target\":"
	    "\"/sys/kernel/mm/hugepages/hugepages-2048kB\",\"from\":\"100\",\"to\":\"2098\",\"args\":{\"pages\":2048}}");
	done(&p, &o);
	/* Enough free pages: nothing to allocate. */
	h.pools[0].nr = h.pools[0].free_pages = 4096;
	PLAN(&h, p, o, "-m", "4G", "-hugepages");
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
host_gigantic_pages(struct host *h)
{
	h->pools[0] = (struct hugepage_pool){ .page_kib = 1048576, .nr = 16, .free_pages = 16 };
	h->snap.n_hugepools = 1;
	snprintf(h->mounts[0].path, sizeof(h->mounts[0].path), "/mnt/huge1G");
	h->mounts[0].page_kib = 1048576;
	h->snap.n_hugemounts = 1;
}

static void
test_default_memory_rounds_down_to_whole_hugepages(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_init(&h, 4, 2, 25 * 1024 * 1024);      /* half: 12800 MiB, not whole GiB */
	host_gigantic_pages(&h);
	PLAN(&h, p, o, "-hugepages", "/mnt/huge1G/");
	expect_no_errors(&p);
	assert_string_equal(arg_after(&p, "-m"), "12288M");
	assert_string_equal(arg_after(&p, "-mem-path"), "/mnt/huge1G");
	assert_int_equal(json_array_size(p.host_changes), 0);       /* 12 of 16 free */
	done(&p, &o);
}

static void
test_chosen_memory_that_is_not_whole_hugepages_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_gigantic_pages(&h);
	PLAN(&h, p, o, "-m", "1536M", "-hugepages", "/mnt/huge1G");
	expect_error_containing(&p, "-memory 1536M is not a whole number of the");
	done(&p, &o);
}

static void
test_hugepages_without_a_hugetlbfs_mount_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-hugepages", "/mnt/huge");
	expect_error_containing(&p, "-hugepages: /mnt/huge is not a hugetlbfs mount; mount one there");
	done(&p, &o);
}

/* ---- firmware and files ---- */

static void
test_nobios_has_no_pflash(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-noBios");
	assert_null(arg_prefixed(&p, "if=pflash"));
	done(&p, &o);
}

static void
test_secureboot_without_biosvars_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-secureboot");
	expect_error_containing(&p, "-secureboot needs -biosvars");
	done(&p, &o);
}

static void
test_win11_boots_secure_ovmf_with_smm_vars_and_a_tpm(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/vars.fd", true);
	PLAN(&h, p, o, "-win11", "-biosvars", "/vm/vars.fd");
	expect_no_errors(&p);
	assert_string_equal(arg_prefixed(&p, "if=pflash,format=raw,unit=0"),
	    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
	assert_string_equal(arg_prefixed(&p, "if=pflash,format=raw,unit=1"), "if=pflash,format=raw,unit=1,file=/vm/vars.fd");
	assert_string_equal(arg_after(&p, "-machine"), "q35,kernel_irqchip=on,smm=on");
	assert_true(has_arg(&p, "driver=cfi.pflash01,property=secure,value=on"));
	assert_string_equal(arg_after(&p, "-tpmdev"), "emulator,id=tpm0,chardev=chrtpm");
	assert_true(has_arg(&p, "tpm-tis,tpmdev=tpm0"));
	done(&p, &o);
}

static void
test_createvars_copies_the_firmwares_template(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-biosvars", "/vm/new-vars.fd", "-createvars");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"vars-create\",\"target\":\"/vm/new-vars.fd\","
	    "\"args\":{\"template\":\"/usr/share/OVMF/OVMF_VARS_4M.fd\",\"uid\":0,\"gid\":0}}");
	done(&p, &o);
}

static void
test_missing_biosvars_names_the_template_to_copy(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-biosvars", "/vm/new-vars.fd");
	expect_error_containing(&p, "-biosvars /vm/new-vars.fd: no such file; copy the template "
	    "(cp /usr/share/OVMF/OVMF_VARS_4M.fd /vm/new-vars.fd) or add -createvars");
	done(&p, &o);
}

static void
test_no_ovmf_found_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.n_firmware = 0;
	PLAN0(&h, p, o);
	expect_error_containing(&p, "no OVMF firmware was found");
	done(&p, &o);
}

static void
test_missing_files_are_errors_naming_the_flag(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/gone.img", false);
	PLAN(&h, p, o, "-image", "/vm/gone.img", "-iso", "/vm/gone.iso", "-kernel", "/k", "-initrd", "/i",
	    "-romfile", "/r.rom", "-bios", "/b.fd", "-biosvars", "/v.fd");
	expect_error_containing(&p, "-image /vm/gone.img: no such file");
	expect_error_containing(&p, "-iso /vm/gone.iso: no such file");
	expect_error_containing(&p, "-kernel /k: no such file");
	expect_error_containing(&p, "-initrd /i: no such file");
	expect_error_containing(&p, "-romfile /r.rom: no such file");
	expect_error_containing(&p, "-bios /b.fd: no such file");
	expect_error_containing(&p, "-biosvars /v.fd: no such file");
	done(&p, &o);
}

static void
test_disks_get_an_iothread_each_and_commas_are_escaped(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/a,b.qcow2", true);
	host_file(&h, "/vm/c.img", true);
	host_file(&h, "/vm/x.iso", true);
	PLAN(&h, p, o, "-image", "/vm/a,b.qcow2", "-imageformat", "qcow2", "-image", "/vm/c.img", "-format", "raw",
	    "-iso", "/vm/x.iso");
	expect_no_errors(&p);
	assert_string_equal(arg_prefixed(&p, "file=/vm/a"), "file=/vm/a,,b.qcow2,if=none,id=disk0,format=qcow2,discard=on");
	assert_true(has_arg(&p, "iothread,id=iothread0"));
	assert_true(has_arg(&p, "iothread,id=iothread1"));
	assert_true(has_arg(&p, "virtio-blk-pci,drive=disk0,iothread=iothread0"));
	assert_true(has_arg(&p, "virtio-blk-pci,drive=disk1,iothread=iothread1"));
	assert_true(has_arg(&p, "file=/vm/x.iso,if=none,id=cd0,media=cdrom,readonly=on"));
	assert_true(has_arg(&p, "ide-cd,drive=cd0,bus=ide.0"));
	done(&p, &o);
}

static void
test_novirtio_disks_are_ide_and_nvme_disks_get_serials(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/c.img", true);
	struct host_file *blk = host_file(&h, "/dev/nvme0n1p2", true);
	blk->is_block = true;
	snprintf(blk->disk_serial, sizeof(blk->disk_serial), "S4EWNX0N123456 ,x");
	snprintf(blk->disk_name, sizeof(blk->disk_name), "nvme0n1");
	PLAN(&h, p, o, "-image", "/vm/c.img", "-iso", "/vm/c.img", "-noVirtio");
	assert_true(has_arg(&p, "ide-hd,drive=disk0,bus=ide.0"));
	assert_true(has_arg(&p, "ide-cd,drive=cd0,bus=ide.1"));
	assert_null(arg_prefixed(&p, "iothread"));
	done(&p, &o);
	PLAN(&h, p, o, "-image", "/vm/c.img", "-image", "/dev/nvme0n1p2", "-format", "raw", "-nvme");
	assert_true(has_arg(&p, "nvme,drive=disk0,serial=disk0"));
	assert_true(has_arg(&p, "nvme,drive=disk1,serial=S4EWNX0N123456x"));
	done(&p, &o);
}

static void
test_kernel_boot(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/boot/vmlinuz", true);
	host_file(&h, "/boot/initrd", true);
	PLAN(&h, p, o, "-kernel", "/boot/vmlinuz", "-initramfs", "/boot/initrd", "-append", "root=/dev/sda1 rw ");
	expect_no_errors(&p);
	assert_string_equal(arg_after(&p, "-kernel"), "/boot/vmlinuz");
	assert_string_equal(arg_after(&p, "-initrd"), "/boot/initrd");
	assert_string_equal(arg_after(&p, "-append"), "root=/dev/sda1 rw ");
	done(&p, &o);
	PLAN(&h, p, o, "-initrd", "/boot/initrd");
	expect_error_containing(&p, "-initrd needs -kernel");
	done(&p, &o);
}

static void
test_extras_are_appended_as_words(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-extras", "-device ac97 -display 'gtk,zoom-to-fit=on'");
	assert_string_equal(p.argv.v[p.argv.n - 4], "-device");
	assert_string_equal(p.argv.v[p.argv.n - 3], "ac97");
	assert_string_equal(p.argv.v[p.argv.n - 1], "gtk,zoom-to-fit=on");
	done(&p, &o);
}

/* ---- display ---- */

static void
test_no_display_and_no_gpu_means_serial_only(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN0(&h, p, o);
	assert_true(has_arg(&p, "-nographic"));
	assert_string_equal(arg_after(&p, "-vga"), "none");
	done(&p, &o);
}

static void
test_display_set_and_no_gpu_gives_a_window(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.display = ":0";
	PLAN0(&h, p, o);
	assert_false(has_arg(&p, "-nographic"));
	assert_string_equal(arg_after(&p, "-vga"), "std");
	done(&p, &o);
}

/* -spice with a graphical session: remote-viewer for the sudo caller, in
 * plan->viewers (started by the session after cont), not a host change made
 * before QEMU; without a session there is no viewer. */
static void
test_spice_viewer_is_for_the_user_after_cont(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.sudo_uid = 1000;
	h.snap.sudo_gid = 1001;
	PLAN(&h, p, o, "-spice", "-name", "win");
	assert_int_equal(json_array_size(p.viewers), 0);
	done(&p, &o);
	h.snap.display = ":0";
	PLAN(&h, p, o, "-spice", "-name", "win");
	assert_int_equal(json_array_size(p.viewers), 1);
	json_t *v = json_array_get(p.viewers, 0);
	assert_string_equal(json_string_value(json_object_get(v, "action")), "companion-start");
	json_t *args = json_object_get(v, "args");
	assert_int_equal(json_integer_value(json_object_get(args, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(args, "gid")), 1001);
	json_t *argv = json_object_get(args, "argv");
	assert_string_equal(json_string_value(json_array_get(argv, 0)), "remote-viewer");
	assert_string_equal(json_string_value(json_array_get(argv, 1)), "spice+unix:///run/vfio/win/qemu/spice.sock");
	assert_string_equal(json_string_value(json_array_get(json_object_get(args, "env"), 0)), "DISPLAY=:0");
	size_t i;
	json_t *c;
	json_array_foreach(p.host_changes, i, c)
		assert_string_not_equal(json_string_value(json_object_get(c, "action")), "companion-start");
	done(&p, &o);
	PLAN(&h, p, o, "-looking-glass", "-name", "win");
	assert_int_equal(json_array_size(p.viewers), 1);
	argv = json_object_get(json_object_get(json_array_get(p.viewers, 0), "args"), "argv");
	assert_string_equal(json_string_value(json_array_get(argv, 0)), "looking-glass-client");
	done(&p, &o);
}

static void
test_passed_gpu_is_the_display_even_with_display_set(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.display = ":0";
	PLAN(&h, p, o, "-pci", "NVIDIA");
	assert_string_equal(arg_after(&p, "-vga"), "none");
	assert_string_equal(arg_after(&p, "-display"), "none");
	done(&p, &o);
}

static void
test_spice_and_looking_glass(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-spice", "-qemu-agent", "-name", "win");
	assert_string_equal(arg_after(&p, "-spice"), "unix=on,addr=/run/vfio/win/qemu/spice.sock,disable-ticketing=on");
	assert_true(has_arg(&p, "qxl-vga,id=video0"));
	assert_true(has_arg(&p, "qemu-xhci,id=xhci"));
	assert_int_equal(count_prefixed(&p, "usb-redir,"), 4);
	assert_true(has_arg(&p, "virtserialport,bus=vserial.0,chardev=vdagent,name=com.redhat.spice.0"));
	assert_true(has_arg(&p, "virtserialport,bus=vserial.0,chardev=qga0,name=org.qemu.guest_agent.0"));
	assert_true(has_arg(&p, "socket,id=qga0,path=/run/vfio/win/qemu/qga.sock,server=on,wait=off"));
	assert_int_equal(count_prefixed(&p, "virtio-serial-pci"), 1);
	done(&p, &o);
	PLAN(&h, p, o, "-lg", "-pci", "NVIDIA");
	assert_true(has_arg(&p, "memory-backend-file,id=ivshmem0,share=on,mem-path=/dev/shm/looking-glass,size=64M"));
	assert_true(has_arg(&p, "ivshmem-plain,memdev=ivshmem0"));
	assert_non_null(arg_after(&p, "-spice"));
	assert_null(arg_prefixed(&p, "qxl"));
	done(&p, &o);
}

static void
test_hostaudio_uses_the_users_pulse_socket(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	PLAN(&h, p, o, "-hostaudio");
	assert_string_equal(arg_after(&p, "-audiodev"), "pa,id=snd0,server=unix:/run/user/1000/pulse/native");
	assert_true(has_arg(&p, "ich9-intel-hda"));
	assert_true(has_arg(&p, "hda-output,audiodev=snd0"));
	done(&p, &o);
}

static void
test_hostaudio_starts_the_sound_server_when_it_is_not_running(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	PLAN(&h, p, o, "-hostaudio", "-name", "win");
	expect_json(p.host_changes, 0, "{\"action\":\"user-audio-start\",\"target\":\"/run/user/1000/pulse/native\","
	    "\"args\":{\"uid\":1000,\"gid\":1000,\"log\":\"/run/vfio/win/audio.log\"}}");
	done(&p, &o);
	/* Running already (its socket is there): nothing to start. */
	const char *const words[] = { "-hostaudio", NULL };
	opts_parse(&o, words);
	o.audio_pulse = true;
	plan_build(&p, &o, &h.snap);
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
test_usb_controller_only_with_usb_or_spice(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN0(&h, p, o);
	assert_false(has_arg(&p, "qemu-xhci,id=xhci"));
	done(&p, &o);
	PLAN(&h, p, o, "-usb", "Logitech");
	assert_true(has_arg(&p, "qemu-xhci,id=xhci"));
	done(&p, &o);
}

/* ---- PCI passthrough ---- */

static void
test_gpu_functions_are_cold_plugged_with_x_vga_only_on_the_boot_vga_function(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/vbios.rom", true);
	PLAN(&h, p, o, "-pci", "NVIDIA", "-romfile", "/vm/vbios.rom");
	expect_no_errors(&p);
	assert_true(has_arg(&p, "vfio-pci,host=0000:01:00.0,id=hostdev-0000-01-00-0,bus=rp1,addr=0x0.0,"
	    "multifunction=on,x-vga=on,romfile=/vm/vbios.rom"));
	assert_true(has_arg(&p, "vfio-pci,host=0000:01:00.1,id=hostdev-0000-01-00-1,bus=rp1,addr=0x0.1"));
	assert_true(has_arg(&p, "vfio-pci,host=0000:01:00.2,id=hostdev-0000-01-00-2,bus=rp1,addr=0x0.2"));
	assert_true(has_arg(&p, "vfio-pci,host=0000:01:00.3,id=hostdev-0000-01-00-3,bus=rp1,addr=0x0.3"));
	assert_int_equal(count_prefixed(&p, "vfio-pci,"), 4);
	/* The bridge in the group matched "NVIDIA"? no: but it never goes. */
	assert_null(arg_prefixed(&p, "vfio-pci,host=0000:00:01.0"));
	/* Nothing of the card over QMP; only the NIC. */
	assert_int_equal(json_array_size(p.qmp), 2);
	json_t *pci = json_object_get(p.devices, "pci");
	assert_int_equal(json_array_size(pci), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(pci, 0), "attach")), "cmdline");
	done(&p, &o);
}

static void
test_identical_gpus_only_the_matched_one_goes(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	struct pci_device *g2 = host_pci(&h, "0000:05:00.0", 0x030000, "nvidia", 12,
	    "VGA compatible controller [0300]: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti] [10de:1e04]");
	g2->boot_vga = false;
	host_pci(&h, "0000:05:00.1", 0x040300, "snd_hda_intel", 12,
	    "Audio device [0403]: NVIDIA Corporation TU102 High Definition Audio Controller [10de:10f7]");
	PLAN(&h, p, o, "-pci", "0000:05:00");
	expect_no_errors(&p);
	assert_int_equal(json_array_size(json_object_get(p.devices, "pci")), 2);
	assert_null(arg_prefixed(&p, "vfio-pci,host=0000:01:00"));
	/* Not the boot GPU, but the only VGA function passed: it gets x-vga. */
	assert_true(has_arg(&p, "vfio-pci,host=0000:05:00.0,id=hostdev-0000-05-00-0,bus=rp1,addr=0x0.0,"
	    "multifunction=on,x-vga=on"));
	for (size_t i = 0; i < json_array_size(p.host_changes); i++) {
		const char *t = json_string_value(json_object_get(json_array_get(p.host_changes, i), "target"));
		assert_false(str_startswith(t, "0000:01:00"));
	}
	done(&p, &o);
}

static void
test_non_display_devices_go_over_qmp_into_their_own_root_port(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "Samsung|Cannon Lake", "-nonet");
	expect_no_errors(&p);
	expect_json(p.qmp, 0, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\","
	    "\"host\":\"0000:00:14.0\",\"id\":\"hostdev-0000-00-14-0\",\"bus\":\"rp1\"}}");
	expect_json(p.qmp, 1, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\","
	    "\"host\":\"0000:02:00.0\",\"id\":\"hostdev-0000-02-00-0\",\"bus\":\"rp2\"}}");
	assert_int_equal(json_array_size(p.qmp), 2);
	/* Two devices and four spares. */
	assert_int_equal(p.n_root_ports, 6);
	assert_int_equal(p.n_spare_ports, 4);
	assert_int_equal(count_prefixed(&p, "pcie-root-port,"), 6);
	assert_true(has_arg(&p, "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0,multifunction=on"));
	assert_true(has_arg(&p, "pcie-root-port,id=rp6,bus=pcie.0,chassis=6,port=6,addr=0x1c.5"));
	assert_null(arg_prefixed(&p, "vfio-pci"));
	done(&p, &o);
}

static void
test_binding_changes_in_order(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.vfio_pci_loaded = false;
	h.pci[6].driver[0] = '\0';                 /* the NVMe has no driver */
	snprintf(h.pci[5].driver, sizeof(h.pci[5].driver), "vfio-pci");  /* the xHCI is bound already */
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	PLAN(&h, p, o, "-pci", "Samsung|Cannon Lake", "-nonet");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"module-load\",\"target\":\"vfio-pci\"}");
	expect_json(p.host_changes, 1, "{\"action\":\"pci-bind-vfio\",\"target\":\"0000:02:00.0\",\"from\":\"\","
	    "\"to\":\"vfio-pci\",\"args\":{\"group\":11,\"display\":false}}");
	expect_json(p.host_changes, 2, "{\"action\":\"dev-chown\",\"target\":\"/dev/vfio/4\",\"args\":{\"uid\":1000,\"gid\":1000}}");
	expect_json(p.host_changes, 3, "{\"action\":\"dev-chown\",\"target\":\"/dev/vfio/11\",\"args\":{\"uid\":1000,\"gid\":1000}}");
	assert_int_equal(json_array_size(p.host_changes), 4);
	done(&p, &o);
}

static void
test_group_with_a_foreign_driver_is_refused_naming_it(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "0000:01:00.0");
	expect_error_containing(&p, "0000:01:00.0 shares IOMMU group 1 with 0000:01:00.1 Audio device");
	expect_error_containing(&p, "which is bound to snd_hda_intel");
	expect_error_containing(&p, "add it to -pci (e.g. -pci '0000:01:00.0|0000:01:00.1')");
	expect_error_containing(&p, "bound to xhci_hcd");
	expect_error_containing(&p, "bound to nvidia-gpu");
	/* The bridge in the group is no obstacle. */
	assert_false(strv_contains(&p.errors, "0000:00:01.0"));
	done(&p, &o);
	/* Driverless, vfio-pci and pci-stub neighbours are fine. */
	h.pci[2].driver[0] = '\0';
	snprintf(h.pci[3].driver, sizeof(h.pci[3].driver), "vfio-pci");
	snprintf(h.pci[4].driver, sizeof(h.pci[4].driver), "pci-stub");
	PLAN(&h, p, o, "-pci", "0000:01:00.0");
	expect_no_errors(&p);
	done(&p, &o);
}

static void
test_iommu_off_names_the_kernel_argument_and_force_continues(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.iommu_enabled = false;
	PLAN(&h, p, o, "-pci", "Samsung");
	expect_error_containing(&p, "add intel_iommu=on to the kernel command line");
	done(&p, &o);
	snprintf(h.snap.cpu_vendor, sizeof(h.snap.cpu_vendor), "AuthenticAMD");
	PLAN(&h, p, o, "-pci", "Samsung");
	expect_error_containing(&p, "add amd_iommu=on to the kernel command line");
	done(&p, &o);
	PLAN(&h, p, o, "-pci", "Samsung", "-force");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-force: the IOMMU is off"));
	done(&p, &o);
}

static void
test_vfio_pci_missing_hints_at_a_kernel_upgrade(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.vfio_pci_loaded = h.snap.vfio_pci_available = false;
	PLAN(&h, p, o, "-pci", "Samsung");
	expect_error_containing(&p, "running kernel 6.1.0-28-amd64 has no vfio-pci module; if the kernel was "
	    "upgraded since boot, reboot");
	done(&p, &o);
}

static void
test_pci_regex_matching_nothing_or_only_bridges(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "Root Port");
	expect_error_containing(&p, "-pci 'Root Port' matches no PCI device");
	assert_true(strv_contains(&p.warnings, "also matches bridge(s) 0000:00:01.0"));
	done(&p, &o);
}

/* ---- USB ---- */

static void
host_desktop_usb(struct host *h)
{
	host_desktop(h);
	struct usb_device *root = host_usb(h, "usb1", 1, 1, 0x1d6b, 0x0002, "Linux Foundation 2.0 root hub",
	    "0000:00:14.0");
	root->is_root_hub = root->is_hub = true;
	struct usb_device *hub = host_usb(h, "1-4", 1, 3, 0x05e3, 0x0610, "Genesys Logic, Inc. Hub", "0000:00:14.0");
	hub->is_hub = true;
	struct usb_device *rx = host_usb(h, "1-4.2", 1, 4, 0x046d, 0xc52b, "Logitech, Inc. Unifying Receiver",
	    "0000:00:14.0");
	snprintf(rx->product_name, sizeof(rx->product_name), "USB Receiver");
	host_usb(h, "3-1", 3, 2, 0x0781, 0x5583, "SanDisk Corp. Ultra Fit", "0000:04:00.0");
}

static void
test_usb_devices_attach_over_qmp_by_bus_and_address(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop_usb(&h);
	PLAN(&h, p, o, "-usb", "USB Receiver|SanDisk", "-nonet");
	expect_no_errors(&p);
	expect_json(p.qmp, 0, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"usb-host\",\"hostbus\":1,"
	    "\"hostaddr\":4,\"id\":\"usb-1-4.2\",\"bus\":\"xhci.0\"}}");
	expect_json(p.qmp, 1, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"usb-host\",\"hostbus\":3,"
	    "\"hostaddr\":2,\"id\":\"usb-3-1\",\"bus\":\"xhci.0\"}}");
	expect_json(json_object_get(p.devices, "usb"), 0, "{\"bus\":1,\"address\":4,\"id\":\"046d:c52b\","
	    "\"port\":\"1-4.2\",\"line\":\"Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver\"}");
	done(&p, &o);
}

static void
test_root_hubs_never_and_hubs_only_by_id(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop_usb(&h);
	/* "Hub" and "root hub" name both hubs by their lines: neither goes. */
	PLAN(&h, p, o, "-usb", "hub|Hub|Linux Foundation", "-nonet");
	assert_int_equal(json_array_size(json_object_get(p.devices, "usb")), 0);
	done(&p, &o);
	PLAN(&h, p, o, "-usb", "05e3:0610|1d6b:0002", "-nonet");
	json_t *usb = json_object_get(p.devices, "usb");
	assert_int_equal(json_array_size(usb), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(usb, 0), "port")), "1-4");
	done(&p, &o);
	/* A port path selects a device too. */
	PLAN(&h, p, o, "-usb", "^1-4\\.2$", "-nonet");
	assert_int_equal(json_array_size(json_object_get(p.devices, "usb")), 1);
	done(&p, &o);
}

static void
test_usb_device_behind_a_passed_controller_is_skipped_with_a_warning(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop_usb(&h);
	PLAN(&h, p, o, "-usb", "Logitech|SanDisk", "-pci", "Cannon Lake", "-nonet");
	json_t *usb = json_object_get(p.devices, "usb");
	assert_int_equal(json_array_size(usb), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(usb, 0), "port")), "3-1");
	assert_true(strv_contains(&p.warnings, "is behind controller 0000:00:14.0, which -pci passes through"));
	done(&p, &o);
	/* Matched but all skipped: that is not "matches nothing". */
	PLAN(&h, p, o, "-usb", "Logitech", "-pci", "Cannon Lake", "-nonet");
	assert_false(strv_contains(&p.warnings, "matches no USB device"));
	done(&p, &o);
	PLAN(&h, p, o, "-usb", "Nothing Like It", "-nonet");
	assert_true(strv_contains(&p.warnings, "-usb 'Nothing Like It' matches no USB device plugged in now"));
	done(&p, &o);
}

static void
test_usb_device_nodes_go_to_qemus_user(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop_usb(&h);
	PLAN(&h, p, o, "-usb", "SanDisk", "-nonet");
	assert_int_equal(json_array_size(p.host_changes), 0);      /* QEMU runs as root */
	done(&p, &o);
	h.snap.sudo_uid = 1000;
	h.snap.sudo_gid = 100;
	PLAN(&h, p, o, "-usb", "SanDisk", "-nonet");
	expect_json(p.host_changes, 0, "{\"action\":\"dev-chown\",\"target\":\"/dev/bus/usb/003/002\","
	    "\"args\":{\"uid\":1000,\"gid\":100}}");
	assert_int_equal(json_array_size(p.host_changes), 1);
	done(&p, &o);
}

/* ---- network ---- */

static void
test_user_networking_with_port_forwards(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-portforward", "tcp:2222:22", "-portforward", "udp:5353:53");
	expect_no_errors(&p);
	expect_json(p.qmp, 0, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"user\",\"id\":\"net0\","
	    "\"hostfwd\":[{\"str\":\"tcp::2222-:22\"},{\"str\":\"udp::5353-:53\"}]}}");
	char want[256];
	snprintf(want, sizeof(want), "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-net-pci\","
	    "\"id\":\"nic0\",\"netdev\":\"net0\",\"mac\":\"%s\",\"bus\":\"rp1\"}}", p.guest_mac);
	expect_json(p.qmp, 1, want);
	assert_true(str_startswith(p.guest_mac, "52:54:00:"));
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

/* A guest keeps its MAC from run to run (a Windows guest that sees a new
 * one sees a new network): the same name on the same host gives the same
 * MAC, another name or host another. */
static void
test_mac_is_derived_from_the_guest_name_and_the_machine_id(void **state)
{
	const char *id = "5d6f2c3a9b8e4f1d8c7b6a5948372615", *other = "0123456789abcdef0123456789abcdef";
	char a[18], b[18], c[18], d[18];
	assert_int_equal(plan_guest_mac(a, NULL, NULL, id, "win10"), PLAN_MAC_DERIVED);
	plan_guest_mac(b, NULL, NULL, id, "win10");
	plan_guest_mac(c, NULL, NULL, id, "linux");
	plan_guest_mac(d, NULL, NULL, other, "win10");
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_true(str_startswith(a, "52:54:00:"));
	/* without a machine-id, from the name alone, still the same every run */
	plan_guest_mac(c, NULL, NULL, "", "win10");
	plan_guest_mac(d, NULL, NULL, "", "win10");
	assert_string_equal(c, d);
	/* a bridged host interface's bytes, as the original; -mac over all */
	assert_int_equal(plan_guest_mac(a, NULL, "A8:5E:45:12:34:56", id, "win10"), PLAN_MAC_HOST);
	assert_string_equal(a, "52:54:00:12:34:56");
	plan_guest_mac(a, NULL, "00:00:00:00:00:00", id, "win10");
	assert_string_equal(a, b);
	assert_int_equal(plan_guest_mac(a, "02:11:22:33:44:55", "A8:5E:45:12:34:56", id, "win10"), PLAN_MAC_FLAG);
	assert_string_equal(a, "02:11:22:33:44:55");
}

static void
test_two_dry_runs_plan_the_same_mac_and_mac_flag_sets_it(void **state)
{
	struct host h;
	struct plan p, q;
	struct options o, r;
	host_desktop(&h);
	PLAN(&h, p, o, "-name", "win10");
	PLAN(&h, q, r, "-name", "win10");
	assert_string_equal(p.guest_mac, q.guest_mac);
	assert_true(strv_contains(&p.rundown, "from the guest name and this host's /etc/machine-id"));
	done(&q, &r);
	done(&p, &o);
	PLAN(&h, p, o, "-mac", "52:54:00:AB:CD:EF");
	assert_string_equal(p.guest_mac, "52:54:00:ab:cd:ef");
	assert_true(strv_contains(&p.rundown, "52:54:00:ab:cd:ef (-mac)"));
	done(&p, &o);
}

/* QEMU's user gets the nodes it opens itself and cannot open already, and
 * the dry run lists them: /dev/kvm, block devices given as disks, the VFIO
 * container, besides the groups and USB devices. */
static void
test_qemu_user_gets_the_nodes_it_cannot_open_and_only_those(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	h.snap.kvm_node.mode = 0660;            /* root:kvm, and the user is not in kvm */
	h.snap.vfio_node.mode = 0600;
	struct host_file *sdb = host_file(&h, "/dev/sdb", true), *sdc = host_file(&h, "/dev/sdc", true);
	sdb->is_block = sdc->is_block = true;
	sdb->mode = 0660;
	sdc->mode = 0666;                       /* everyone's already: left alone */
	PLAN(&h, p, o, "-image", "/dev/sdb,format=raw", "-image", "/dev/sdc,format=raw", "-pci", "Samsung", "-nonet");
	expect_no_errors(&p);
	size_t n = json_array_size(p.host_changes);
	assert_true(n >= 4);
	expect_json(p.host_changes, n - 3, "{\"action\":\"dev-chown\",\"target\":\"/dev/kvm\",\"args\":{\"uid\":1000,\"gid\":1000}}");
	expect_json(p.host_changes, n - 2, "{\"action\":\"dev-chown\",\"target\":\"/dev/sdb\",\"args\":{\"uid\":1000,\"gid\":1000}}");
	expect_json(p.host_changes, n - 1, "{\"action\":\"dev-chown\",\"target\":\"/dev/vfio/vfio\",\"args\":{\"uid\":1000,\"gid\":1000}}");
	done(&p, &o);
	/* in the kvm group (main reads the user's groups): /dev/kvm is its already */
	opts_parse(&o, (const char *const[]){ "-image", "/dev/sdb,format=raw", "-nonet", NULL });
	o.qemu_groups = xcalloc(2, sizeof(*o.qemu_groups));
	o.qemu_groups[0] = 1000;
	o.qemu_groups[1] = 108;
	o.n_qemu_groups = 2;
	plan_build(&p, &o, &h.snap);
	for (size_t i = 0; i < json_array_size(p.host_changes); i++)
		assert_string_not_equal(json_string_value(json_object_get(json_array_get(p.host_changes, i), "target")),
		    "/dev/kvm");
	done(&p, &o);
	/* QEMU runs as root: no node changes hands */
	h.snap.sudo_uid = h.snap.sudo_gid = -1;
	PLAN(&h, p, o, "-image", "/dev/sdb,format=raw", "-nonet");
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
test_xhci_on_the_command_line_is_a_plan_fact(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-usb", "Logitech", "-m", "2G");
	assert_true(p.has_xhci);
	assert_non_null(arg_prefixed(&p, "qemu-xhci,id=xhci"));
	assert_int_equal(p.memory_mib, 2048);
	done(&p, &o);
}

static void
test_novirtio_nic_is_e1000e_and_nonet_has_none(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-noVirtio");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(p.qmp, 1), "arguments"),
	    "driver")), "e1000e");
	done(&p, &o);
	PLAN(&h, p, o, "-nonet", "-portforward", "tcp:1:2");
	assert_int_equal(json_array_size(p.qmp), 0);
	assert_string_equal(p.guest_mac, "");
	assert_true(strv_contains(&p.warnings, "-nonet"));
	done(&p, &o);
}

static void
test_tap_alone_is_used_or_created(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-tap", "tap7");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"tap-create\",\"target\":\"tap7\"}");
	expect_json(p.qmp, 0, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"tapfd0\"},"
	    "\"fd\":{\"open\":\"tap\",\"name\":\"tap7\"}}");
	expect_json(p.qmp, 1, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"net0\",\"fd\":\"tapfd0\"}}");
	assert_true(strv_contains(&p.rundown, "the host must give tap7 an address"));
	done(&p, &o);
	host_iface(&h, "tap7", "aa:aa:aa:00:00:01", false, true, "");
	PLAN(&h, p, o, "-tap", "tap7");
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
test_existing_bridge_gets_the_first_free_tap_and_vhost(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.vhost_net = true;
	host_iface(&h, "br0", "a8:5e:45:aa:bb:cc", true, false, "");
	host_iface(&h, "tap0", "aa:aa:aa:00:00:01", false, true, "br0");
	PLAN(&h, p, o, "-bridge", "br0");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"tap-create\",\"target\":\"tap1\",\"args\":{\"bridge\":\"br0\"}}");
	assert_string_equal(p.guest_mac, "52:54:00:aa:bb:cc");
	expect_json(p.qmp, 1, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"vhostfd0\"},\"fd\":{\"open\":\"vhost-net\"}}");
	expect_json(p.qmp, 2, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"net0\",\"fd\":\"tapfd0\","
	    "\"vhost\":true,\"vhostfd\":\"vhostfd0\"}}");
	done(&p, &o);
}

static void
test_missing_bridge_is_created_around_hostint(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "");
	PLAN(&h, p, o, "-bridge", "br0", "-hostint", "enp3s0", "-tap", "vm0");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"bridge-create\",\"target\":\"br0\",\"args\":{\"hostint\":\"enp3s0\"}}");
	expect_json(p.host_changes, 1, "{\"action\":\"tap-create\",\"target\":\"vm0\",\"args\":{\"bridge\":\"br0\"}}");
	assert_string_equal(p.guest_mac, "52:54:00:12:34:56");
	done(&p, &o);
}

static void
test_missing_bridge_without_hostint_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-bridge", "br0");
	expect_error_containing(&p, "-bridge br0: there is no bridge named br0. To create it on the fly, also name "
	    "the host interface to put on it with -hostint");
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
test_hostint_already_on_a_bridge_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-bridge", "br0", "-hostint", "enp3s0");
	expect_error_containing(&p, "-hostint enp3s0 is already on bridge br9; use -bridge br9 instead");
	done(&p, &o);
}

static void
test_unknown_hostint_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-bridge", "br0", "-hostint", "eth7");
	expect_error_containing(&p, "-hostint eth7: no such interface");
	done(&p, &o);
}

static void
test_hostint_without_bridge_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-hostint", "enp3s0");
	expect_error_containing(&p, "-hostint enp3s0 needs -bridge");
	done(&p, &o);
}

static void
test_bridge_naming_a_non_bridge_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-bridge", "enp3s0");
	expect_error_containing(&p, "exists but is not a bridge");
	done(&p, &o);
}

static void
test_force_cannot_make_a_missing_bridge_appear(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "enp3s0", "a8:5e:45:12:34:56", false, false, "br9");
	PLAN(&h, p, o, "-bridge", "br0", "-force");
	expect_error_containing(&p, "there is no bridge named br0");
	done(&p, &o);
}

static void
test_host_changes_keep_their_order_across_areas(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.vfio_pci_loaded = false;
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	h.pools[0] = (struct hugepage_pool){ .page_kib = 2048 };
	h.snap.n_hugepools = 1;
	snprintf(h.mounts[0].path, sizeof(h.mounts[0].path), "/dev/hugepages");
	h.snap.n_hugemounts = 1;
	host_iface(&h, "eth0", "a8:5e:45:12:34:56", false, false, "");
	PLAN(&h, p, o, "-pci", "Samsung", "-m", "2G", "-hugepages", "-bridge", "br0", "-hostint", "eth0");
	expect_no_errors(&p);
	const char *want[] = { "module-load", "pci-bind-vfio", "dev-chown", "hugepages-alloc", "bridge-create",
		"tap-create" };
	assert_int_equal(json_array_size(p.host_changes), nitems(want));
	for (size_t i = 0; i < nitems(want); i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(p.host_changes, i), "action")),
		    want[i]);
	/* QMP: the PCI device first, then the network. */
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(p.qmp, 0), "arguments"),
	    "driver")), "vfio-pci");
	done(&p, &o);
}

static void
test_the_plan_is_deterministic(void **state)
{
	struct host h;
	struct plan p1, p2;
	struct options o1, o2;
	host_desktop_usb(&h);
	PLAN(&h, p1, o1, "-pci", "NVIDIA|Samsung", "-usb", "Logitech", "-hyperv", "-spice");
	PLAN(&h, p2, o2, "-pci", "NVIDIA|Samsung", "-usb", "Logitech", "-hyperv", "-spice");
	char *a = json_dumps(p1.qmp, JSON_COMPACT), *b = json_dumps(p2.qmp, JSON_COMPACT);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(p1.argv.n, p2.argv.n);
	for (size_t i = 0; i < p1.argv.n; i++)
		assert_string_equal(p1.argv.v[i], p2.argv.v[i]);
	done(&p1, &o1);
	done(&p2, &o2);
}

static void
test_more_devices_than_root_ports_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_init(&h, 2, 1, 4 * 1024 * 1024);
	static char addrs[26][16];
	for (int i = 0; i < 26; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "0000:%02x:00.0", i + 1);
		host_pci(&h, addrs[i], 0x0c0330, "xhci_hcd", 100 + i, "USB controller [0c03]: Test xHCI [1234:5678]");
	}
	PLAN(&h, p, o, "-pci", "xHCI", "-nonet");
	expect_error_containing(&p, "more than 24 PCIe root ports would be needed");
	assert_int_equal(p.errors.n, 1);
	assert_int_equal(p.n_root_ports, 24);
	assert_null(arg_prefixed(&p, "vfio-pci"));
	done(&p, &o);
	/* 23 fit, leaving one spare. */
	h.snap.n_pci = 23;
	PLAN(&h, p, o, "-pci", "xHCI", "-nonet");
	expect_no_errors(&p);
	assert_int_equal(p.n_root_ports, 24);
	assert_int_equal(p.n_spare_ports, 1);
	done(&p, &o);
}

static void
test_more_cds_than_sata_ports_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/x.iso", true);
	PLAN(&h, p, o, "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso",
	    "-iso", "/x.iso", "-force");
	expect_no_errors(&p);
	assert_true(has_arg(&p, "ide-cd,drive=cd5,bus=ide.5"));
	done(&p, &o);
	PLAN(&h, p, o, "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso", "-iso", "/x.iso",
	    "-iso", "/x.iso", "-iso", "/x.iso", "-force");
	expect_error_containing(&p, "-iso /x.iso: the guest's SATA controller has only 6 ports");
	assert_null(arg_prefixed(&p, "ide-cd,drive=cd6"));
	done(&p, &o);
}

static void
test_isolate_without_pinvcpus_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-isolate");
	expect_error_containing(&p, "-isolate keeps host tasks off the guest's CPUs, which -pinvcpus names");
	done(&p, &o);
}

static void
test_romfile_without_a_gpu_warns(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/r.rom", true);
	PLAN(&h, p, o, "-romfile", "/r.rom");
	assert_true(strv_contains(&p.warnings, "-romfile /r.rom: no GPU is passed through"));
	done(&p, &o);
}

static void
test_nobios_ignores_secureboot_with_a_warning(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-noBios", "-secureboot");
	assert_true(strv_contains(&p.warnings, "-noBios: legacy boot has no UEFI"));
	assert_null(arg_prefixed(&p, "if=pflash"));
	done(&p, &o);
}

static void
test_block_device_without_format_warns(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	struct host_file *blk = host_file(&h, "/dev/sdb", true);
	blk->is_block = true;
	PLAN(&h, p, o, "-image", "/dev/sdb");
	assert_true(strv_contains(&p.warnings, "-image /dev/sdb is a block device without -imageformat"));
	done(&p, &o);
}

static void
test_device_without_iommu_group_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.pci[6].iommu_group = -1;
	PLAN(&h, p, o, "-pci", "Samsung");
	expect_error_containing(&p, "-pci: 0000:02:00.0 has no IOMMU group");
	done(&p, &o);
}

static void
test_tap_name_of_a_non_tap_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "eth0", "a8:5e:45:12:34:56", false, false, "");
	PLAN(&h, p, o, "-tap", "eth0");
	expect_error_containing(&p, "-tap eth0: the interface eth0 exists but is not a tap");
	done(&p, &o);
}

static void
test_existing_tap_on_another_bridge_is_refused(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "br0", "a8:5e:45:aa:bb:cc", true, false, "");
	host_iface(&h, "tap3", "aa:aa:aa:00:00:03", false, true, "br7");
	PLAN(&h, p, o, "-bridge", "br0", "-tap", "tap3");
	expect_error_containing(&p, "-tap tap3 exists but is on bridge br7, not on bridge br0");
	done(&p, &o);
}

static void
test_port_forwards_with_a_bridge_warn(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_iface(&h, "br0", "a8:5e:45:aa:bb:cc", true, false, "");
	PLAN(&h, p, o, "-bridge", "br0", "-portforward", "tcp:2222:22");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-portforward only applies to user-mode networking"));
	done(&p, &o);
}

static void
test_looking_glass_without_a_gpu_warns(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-lg");
	assert_true(strv_contains(&p.warnings, "-looking-glass: no GPU is passed through"));
	done(&p, &o);
}

static void
test_isolate_keeps_the_host_off_the_pinned_cpus(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pinvcpus", "1,5,2,6", "-isolate", "-name", "g");
	expect_no_errors(&p);
	expect_json(p.host_changes, 0, "{\"action\":\"cpuset-isolate\",\"target\":\"/sys/fs/cgroup\","
	    "\"args\":{\"guest_cpus\":\"1,5,2,6\",\"name\":\"g\"}}");
	expect_json(p.host_changes, 1, "{\"action\":\"irq-affinity\",\"target\":\"/proc/irq\","
	    "\"args\":{\"guest_cpus\":\"1,5,2,6\"}}");
	expect_json(p.host_changes, 2, "{\"action\":\"workqueue-cpumask\",\"target\":"
	    "\"/sys/devices/virtual/workqueue/cpumask\",\"args\":{\"guest_cpus\":\"1,5,2,6\"}}");
	done(&p, &o);
}

static void
test_isolating_every_cpu_is_an_error(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pinvcpus", "0-7", "-isolate");
	expect_error_containing(&p, "-isolate: -pinvcpus 0,1,2,3,4,5,6,7 takes every online CPU");
	assert_int_equal(json_array_size(p.host_changes), 0);
	done(&p, &o);
}

static void
test_looking_glass_shared_memory_belongs_to_qemus_user(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	PLAN(&h, p, o, "-lg", "-lgsize", "128M", "-nonet");
	expect_json(p.host_changes, 0, "{\"action\":\"lg-shm-create\",\"target\":\"/dev/shm/looking-glass\","
	    "\"args\":{\"size_mib\":128,\"uid\":1000,\"gid\":1000}}");
	assert_true(has_arg(&p, "memory-backend-file,id=ivshmem0,share=on,mem-path=/dev/shm/looking-glass,size=128M"));
	done(&p, &o);
}

static void
test_tpm_starts_swtpm_with_state_kept_per_guest(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-tpm", "-name", "w11", "-nonet");
	json_t *ch = json_array_get(p.host_changes, 0);
	assert_string_equal(json_string_value(json_object_get(ch, "action")), "companion-start");
	assert_string_equal(json_string_value(json_object_get(ch, "target")), "swtpm");
	json_t *args = json_object_get(ch, "args");
	assert_string_equal(json_string_value(json_object_get(args, "statedir")), "/var/lib/vfio/w11/tpm");
	assert_string_equal(json_string_value(json_object_get(args, "wait_path")), "/run/vfio/w11/qemu/swtpm.sock");
	assert_string_equal(arg_after(&p, "-tpmdev"), "emulator,id=tpm0,chardev=chrtpm");
	assert_true(has_arg(&p, "socket,id=chrtpm,path=/run/vfio/w11/qemu/swtpm.sock"));
	done(&p, &o);
}

static void
test_killx_stops_the_display_manager_and_frees_the_boot_gpu(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "NVIDIA", "-killx", "-nonet");
	expect_no_errors(&p);
	const char *want[][2] = {
		{ "display-manager-stop", "display-manager.service" }, { "gpu-users-stop", "0000:01:00.0" },
		{ "vtcon-unbind", "/sys/class/vtconsole/vtcon1" }, { "efifb-unbind", "efi-framebuffer.0" },
		{ "pci-bind-vfio", "0000:01:00.0" },
	};
	for (size_t i = 0; i < nitems(want); i++) {
		json_t *ch = json_array_get(p.host_changes, i);
		assert_string_equal(json_string_value(json_object_get(ch, "action")), want[i][0]);
		assert_string_equal(json_string_value(json_object_get(ch, "target")), want[i][1]);
	}
	done(&p, &o);
}

/* The console to free is the one fbcon is bound to, whichever vtconN that
 * is (vtcon0 when no VGA or dummy console registered first); a host whose
 * fbcon is not bound has none to free. */
static void
test_killx_unbinds_the_consoles_fbcon_is_bound_to(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	snprintf(h.snap.fbcons[0], sizeof(h.snap.fbcons[0]), "/sys/class/vtconsole/vtcon0");
	PLAN(&h, p, o, "-pci", "NVIDIA", "-killx", "-nonet");
	expect_no_errors(&p);
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(p.host_changes); i++) {
		json_t *ch = json_array_get(p.host_changes, i);
		if (strcmp(json_string_value(json_object_get(ch, "action")), "vtcon-unbind") == 0) {
			assert_string_equal(json_string_value(json_object_get(ch, "target")),
			    "/sys/class/vtconsole/vtcon0");
			n++;
		}
	}
	assert_int_equal(n, 1);
	done(&p, &o);

	host_desktop(&h);
	h.snap.n_fbcons = 0;
	PLAN(&h, p, o, "-pci", "NVIDIA", "-killx", "-nonet");
	expect_no_errors(&p);
	bool efifb = false;
	for (size_t i = 0; i < json_array_size(p.host_changes); i++) {
		const char *a = json_string_value(json_object_get(json_array_get(p.host_changes, i), "action"));
		assert_string_not_equal(a, "vtcon-unbind");
		efifb = efifb || strcmp(a, "efifb-unbind") == 0;
	}
	assert_true(efifb);
	done(&p, &o);
}

static void
test_killx_with_ignorevtcon_leaves_the_consoles(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "NVIDIA", "-killx", "-ignorevtcon", "-nonet");
	for (size_t i = 0; i < json_array_size(p.host_changes); i++) {
		const char *a = json_string_value(json_object_get(json_array_get(p.host_changes, i), "action"));
		assert_string_not_equal(a, "vtcon-unbind");
		assert_string_not_equal(a, "efifb-unbind");
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(p.host_changes, 0), "action")),
	    "display-manager-stop");
	done(&p, &o);
}

static void
test_without_killx_the_display_manager_is_left_alone(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	PLAN(&h, p, o, "-pci", "NVIDIA", "-nonet");
	assert_string_equal(json_string_value(json_object_get(json_array_get(p.host_changes, 0), "action")),
	    "pci-bind-vfio");
	done(&p, &o);
}

/* The printed command line is one line a POSIX shell reads back into
 * exactly the planned words, whatever the paths contain. */
static void
test_command_line_pastes_into_a_shell_as_the_same_words(void **state)
{
	struct host h;
	struct plan p;
	struct options o;
	host_desktop(&h);
	host_file(&h, "/vm/my disk's \"$HOME\" `x`.img", true);
	PLAN(&h, p, o, "-image", "/vm/my disk's \"$HOME\" `x`.img", "-append", "a;b|c&d", "-kernel", "/vm/k*",
	    "-force", "-extras", "-device 'e f'");
	char *line = report_cmdline(&p.argv);
	assert_null(strchr(line, '\n'));
	char *cmd = xasprintf("printf '%%s\\n' %s", line);
	FILE *sh = popen(cmd, "r");
	assert_non_null(sh);
	char buf[4096];
	size_t i = 0;
	while (fgets(buf, sizeof(buf), sh) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		assert_true(i < p.argv.n);
		assert_string_equal(buf, p.argv.v[i]);
		i++;
	}
	assert_int_equal(pclose(sh), 0);
	assert_int_equal(i, p.argv.n);
	free(cmd);
	free(line);
	done(&p, &o);
}


/* ---- pre-flight: what the kernel and QEMU would refuse ---- */

static void
test_no_interrupt_remapping_is_an_error_naming_the_fix_and_force_warns(void **state)
{
	struct host h;
	host_desktop(&h);
	h.snap.intremap = -1;
	h.snap.intremap_hw = -1;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:02:00.0|0000:00:14.0");
	expect_error_containing(&p, "0000:00:14.0: the kernel does not remap interrupts");
	expect_error_containing(&p, "Failed to set iommu for container: Operation not permitted");
	expect_error_containing(&p, "enable interrupt remapping in the firmware setup");
	expect_error_containing(&p, "allow_unsafe_interrupts=1");
	/* the host's, not the device's: told once */
	assert_int_equal(p.errors.n, 1);
	done(&p, &o);
	h.snap.intremap_hw = 1;
	h.snap.kernel_cmdline = (char *)"quiet intremap=off";
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	expect_error_containing(&p, "remove intremap=off");
	done(&p, &o);
	h.snap.kernel_cmdline = NULL;
	PLAN(&h, p, o, "-pci", "0000:02:00.0", "-force");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-force: -pci: 0000:02:00.0: the kernel does not remap"));
	done(&p, &o);
	/* allow_unsafe_interrupts on: it works, unisolated */
	h.snap.unsafe_interrupts = true;
	snprintf(h.snap.unsafe_interrupts_from, sizeof(h.snap.unsafe_interrupts_from), "/etc/modprobe.d/vfio.conf");
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "allow_unsafe_interrupts is on (/etc/modprobe.d/vfio.conf)"));
	done(&p, &o);
}

static void
test_device_without_reset_method_warns(void **state)
{
	struct host h;
	host_desktop(&h);
	h.pci[6].no_reset = true;      /* the NVMe */
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "-pci: 0000:02:00.0 Non-Volatile memory controller [0108]: Samsung "
	    "Electronics Co Ltd NVMe SSD Controller [144d:a808] cannot be reset"));
	assert_true(strv_contains(&p.warnings, "no available reset mechanism"));
	done(&p, &o);
}

static void
test_rundown_names_each_devices_reset_method(void **state)
{
	struct host h;
	host_desktop(&h);
	snprintf(h.pci[6].reset_method, sizeof(h.pci[6].reset_method), "pm bus");    /* the NVMe */
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	assert_true(strv_contains(&p.rundown, "[nvme, IOMMU group 11, reset_method pm bus, attached over QMP]"));
	json_t *dev = json_array_get(json_object_get(p.devices, "pci"), 0);
	assert_string_equal(json_string_value(json_object_get(dev, "reset_method")), "pm bus");
	done(&p, &o);
	/* none: said beside the warning; a kernel before 5.15 does not say */
	h.pci[6].no_reset = true;
	h.pci[6].reset_method[0] = '\0';
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	assert_true(strv_contains(&p.rundown, "IOMMU group 11, no reset method, attached over QMP]"));
	done(&p, &o);
	h.pci[6].no_reset = false;
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	assert_true(strv_contains(&p.rundown, "IOMMU group 11, resettable, attached over QMP]"));
	dev = json_array_get(json_object_get(p.devices, "pci"), 0);
	assert_true(json_is_null(json_object_get(dev, "reset_method")));
	done(&p, &o);
}

static void
test_amd_gpu_with_the_reset_bug_names_vendor_reset_and_the_kernels_method(void **state)
{
	struct host h;
	host_init(&h, 4, 2, 16 * 1024 * 1024);
	struct pci_device *gpu = host_pci(&h, "0000:0b:00.0", 0x030000, "amdgpu", 20,
	    "VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] Navi 10 [Radeon RX 5600 OEM/5600 XT / 5700/5700 XT] [1002:731f]");
	gpu->vendor = 0x1002;
	gpu->device = 0x731f;
	snprintf(gpu->reset_method, sizeof(gpu->reset_method), "bus");
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:0b:00.0");
	assert_true(strv_contains(&p.warnings, "is an AMD GPU with the reset bug: the kernel would reset it with 'bus'"));
	assert_true(strv_contains(&p.warnings, "vendor-reset"));
	assert_true(strv_contains(&p.warnings, "echo device_specific > /sys/bus/pci/devices/0000:0b:00.0/reset_method"));
	done(&p, &o);
	/* vendor-reset selected: nothing to say */
	snprintf(gpu->reset_method, sizeof(gpu->reset_method), "device_specific bus");
	PLAN(&h, p, o, "-pci", "0000:0b:00.0");
	assert_false(strv_contains(&p.warnings, "vendor-reset"));
	done(&p, &o);
}

static void
test_controller_of_a_mounted_filesystem_is_refused_unless_forced(void **state)
{
	struct host h;
	host_desktop(&h);
	struct host_need needs[3] = {
		{ .pci = "0000:02:00.0", .kind = HOST_NEED_STORAGE, .what = "/ (nvme0n1p2)" },
		{ .pci = "0000:02:00.0", .kind = HOST_NEED_STORAGE, .what = "swap /dev/nvme0n1p3" },
		{ .pci = "0000:00:14.0", .kind = HOST_NEED_KEYBOARD, .index = 0, .what = "Ducky One2 Mini (input5)" },
	};
	h.snap.needs = needs;
	h.snap.n_needs = 3;
	h.snap.n_keyboards = 1;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:02:00.0");
	expect_error_containing(&p, "-pci: 0000:02:00.0 Non-Volatile memory controller");
	expect_error_containing(&p, "holds what the host runs on: / (nvme0n1p2), swap /dev/nvme0n1p3");
	done(&p, &o);
	PLAN(&h, p, o, "-pci", "0000:02:00.0", "-force");
	expect_no_errors(&p);
	done(&p, &o);
	/* the only keyboard's controller: a warning */
	PLAN(&h, p, o, "-pci", "0000:00:14.0");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "is the USB controller of every keyboard the host has (Ducky One2 Mini (input5))"));
	done(&p, &o);
	/* with a second keyboard elsewhere it is not the only one */
	h.snap.n_keyboards = 2;
	PLAN(&h, p, o, "-pci", "0000:00:14.0");
	assert_false(strv_contains(&p.warnings, "every keyboard"));
	done(&p, &o);
}

static void
test_nic_of_the_default_route_warns(void **state)
{
	struct host h;
	host_desktop(&h);
	host_pci(&h, "0000:03:00.0", 0x020000, "igb", 9, "Ethernet controller [0200]: Intel Corporation I211 [8086:1539]");
	struct host_need need = { .pci = "0000:03:00.0", .kind = HOST_NEED_ROUTE, .what = "br0" };
	h.snap.needs = &need;
	h.snap.n_needs = 1;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:03:00.0");
	expect_no_errors(&p);
	assert_true(strv_contains(&p.warnings, "carries the host's default route (br0)"));
	done(&p, &o);
}

static void
test_memlock_that_cannot_be_raised_is_an_error_with_vfio_only(void **state)
{
	struct host h;
	host_desktop(&h);
	h.snap.memlock_capped = true;
	h.snap.memlock_max = 64 * 1024;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-pci", "0000:02:00.0", "-m", "4G");
	expect_error_containing(&p, "VFIO makes QEMU lock all guest memory (4096 MiB + 256 MiB)");
	expect_error_containing(&p, "the locked-memory limit is 64 KiB");
	expect_error_containing(&p, "at least 4456448 KiB");
	done(&p, &o);
	PLAN(&h, p, o, "-m", "4G");
	expect_no_errors(&p);
	done(&p, &o);
	h.snap.memlock_max = (uint64_t)8 << 30;
	PLAN(&h, p, o, "-pci", "0000:02:00.0", "-m", "4G");
	expect_no_errors(&p);
	done(&p, &o);
}

static void
qemu_caps(struct host *h)
{
	struct qemu_caps *q = &h->snap.qemu;
	q->state = QEMU_CAPS_KNOWN;
	q->path = (char *)"/usr/bin/qemu-system-x86_64";
	q->audiodevs_known = q->displays_known = q->devices_known = true;
	q->spice = 1;
	static const char *const devs[] = { "pcie-root-port", "vfio-pci", "qemu-xhci", "virtio-net-pci", "ich9-intel-hda",
		"hda-output", "virtio-serial-pci", "virtserialport", "ivshmem-plain", "usb-redir", "tpm-tis" };
	for (size_t i = 0; i < nitems(devs); i++)
		strv_push(&q->devices, devs[i]);
	strv_push(&q->audiodevs, "none");
	strv_push(&q->audiodevs, "alsa");
	strv_push(&q->displays, "none");
}

static void
qemu_caps_free(struct host *h)
{
	strv_free(&h->snap.qemu.devices);
	strv_free(&h->snap.qemu.audiodevs);
	strv_free(&h->snap.qemu.displays);
}

static void
test_qemu_without_a_module_the_flags_need_is_an_error_naming_the_package(void **state)
{
	struct host h;
	host_desktop(&h);
	qemu_caps(&h);
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-hostaudio", "-nonet");
	expect_error_containing(&p, "-hostaudio: this QEMU (/usr/bin/qemu-system-x86_64) has no audio driver 'pa': "
	    "its module audio-pa is not installed; install it (Debian: apt install qemu-system-gui)");
	done(&p, &o);
	/* qxl for -spice, usb-host for -usb (matched later too): each told once */
	PLAN(&h, p, o, "-spice", "-usb", "Logitech", "-nonet");
	expect_error_containing(&p, "-spice: this QEMU (/usr/bin/qemu-system-x86_64) has no device 'qxl-vga': its "
	    "module hw-display-qxl");
	expect_error_containing(&p, "-usb: this QEMU (/usr/bin/qemu-system-x86_64) has no device 'usb-host'");
	assert_int_equal(p.errors.n, 2);
	done(&p, &o);
	h.snap.qemu.spice = 0;
	strv_push(&h.snap.qemu.devices, "qxl-vga");
	PLAN(&h, p, o, "-spice", "-nonet");
	expect_error_containing(&p, "-spice: this QEMU (/usr/bin/qemu-system-x86_64) has no SPICE support 'spice': its "
	    "module ui-spice-core is not installed");
	done(&p, &o);
	/* unknown answers are no reason to refuse */
	h.snap.qemu.spice = -1;
	h.snap.qemu.audiodevs_known = false;
	PLAN(&h, p, o, "-spice", "-hostaudio", "-nonet");
	expect_no_errors(&p);
	done(&p, &o);
	qemu_caps_free(&h);
	h.snap.qemu.state = QEMU_CAPS_NO_BINARY;
	PLAN(&h, p, o, "-nonet");
	expect_error_containing(&p, "cannot find the QEMU binary \"qemu-system-x86_64\" in PATH");
	done(&p, &o);
}

static void
test_portforward_of_a_port_in_use_or_privileged_is_an_error(void **state)
{
	struct host h;
	host_desktop(&h);
	struct host_port ports[1] = { { .proto = "tcp", .port = 2222 } };
	h.snap.ports = ports;
	h.snap.n_ports = 1;
	h.snap.unprivileged_port_start = 1024;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-portforward", "tcp:2222:22");
	expect_error_containing(&p, "-portforward tcp:2222: host port 2222/tcp is already in use on the host");
	done(&p, &o);
	PLAN(&h, p, o, "-portforward", "udp:2222:22");
	expect_no_errors(&p);
	done(&p, &o);
	/* QEMU as the sudo user cannot bind port 80 */
	h.snap.sudo_uid = h.snap.sudo_gid = 1000;
	PLAN(&h, p, o, "-portforward", "tcp:80:80");
	expect_error_containing(&p, "QEMU runs as uid 1000, which may not bind ports below 1024");
	done(&p, &o);
}

static void
test_vcpus_are_bounded_by_what_q35_takes(void **state)
{
	struct host h;
	host_init(&h, 32, 2, 16 * 1024 * 1024);
	/* 64 threads here; a 640-thread host is simulated by the count */
	struct cpu_thread many[640];
	for (int i = 0; i < 640; i++)
		many[i] = (struct cpu_thread){ .cpu = i, .core_id = i, .sibling = -1, .online = true };
	h.snap.cpus = many;
	h.snap.n_cpus = 640;
	struct plan p;
	struct options o;
	PLAN0(&h, p, o);
	assert_string_equal(arg_after(&p, "-smp"), "288,sockets=1,cores=288,threads=1");
	expect_no_errors(&p);
	done(&p, &o);
	PLAN(&h, p, o, "-pinvcpus", "0-299");
	expect_error_containing(&p, "-pinvcpus lists 300 CPUs, but QEMU's q35 machine takes at most 288 vCPUs");
	done(&p, &o);
}

static void
test_lgsize_larger_than_dev_shm_is_an_error(void **state)
{
	struct host h;
	host_desktop(&h);
	h.snap.shm_total_kib = 512 * 1024;
	h.snap.shm_avail_kib = 100 * 1024;
	struct plan p;
	struct options o;
	PLAN(&h, p, o, "-lgsize", "128M", "-nonet");
	expect_error_containing(&p, "-lgsize 128M: /dev/shm has only 100 MiB free (of 512 MiB)");
	done(&p, &o);
	PLAN(&h, p, o, "-lgsize", "64M", "-nonet");
	expect_no_errors(&p);
	done(&p, &o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_machine_has_q35_qmp_on_fd3_and_stops_at_start),
		cmocka_unit_test(test_default_memory_and_cpus_are_half_the_host),
		cmocka_unit_test(test_small_host_gets_one_cpu_and_nonzero_memory),
		cmocka_unit_test(test_unknown_host_memory_is_refused_not_zero),
		cmocka_unit_test(test_pinned_smt_siblings_give_threads_2),
		cmocka_unit_test(test_pinned_cpus_that_are_not_siblings_give_threads_1),
		cmocka_unit_test(test_pinning_cpus_the_host_lacks_is_an_error),
		cmocka_unit_test(test_hyperv_adds_the_enlightenments),
		cmocka_unit_test(test_no_kvm_falls_back_to_tcg_with_a_warning),
		cmocka_unit_test(test_unusable_kvm_falls_back_to_tcg_and_accel_kvm_is_an_error),
		cmocka_unit_test(test_memory_larger_than_the_host_is_an_error_and_force_makes_it_a_warning),
		cmocka_unit_test(test_hugepages_allocate_what_is_missing),
		cmocka_unit_test(test_hugepages_without_a_hugetlbfs_mount_is_an_error),
		cmocka_unit_test(test_default_memory_rounds_down_to_whole_hugepages),
		cmocka_unit_test(test_chosen_memory_that_is_not_whole_hugepages_is_an_error),
		cmocka_unit_test(test_nobios_has_no_pflash),
		cmocka_unit_test(test_secureboot_without_biosvars_is_an_error),
		cmocka_unit_test(test_win11_boots_secure_ovmf_with_smm_vars_and_a_tpm),
		cmocka_unit_test(test_createvars_copies_the_firmwares_template),
		cmocka_unit_test(test_missing_biosvars_names_the_template_to_copy),
		cmocka_unit_test(test_no_ovmf_found_is_an_error),
		cmocka_unit_test(test_missing_files_are_errors_naming_the_flag),
		cmocka_unit_test(test_disks_get_an_iothread_each_and_commas_are_escaped),
		cmocka_unit_test(test_novirtio_disks_are_ide_and_nvme_disks_get_serials),
		cmocka_unit_test(test_kernel_boot),
		cmocka_unit_test(test_extras_are_appended_as_words),
		cmocka_unit_test(test_no_display_and_no_gpu_means_serial_only),
		cmocka_unit_test(test_display_set_and_no_gpu_gives_a_window),
		cmocka_unit_test(test_passed_gpu_is_the_display_even_with_display_set),
		cmocka_unit_test(test_spice_viewer_is_for_the_user_after_cont),
		cmocka_unit_test(test_spice_and_looking_glass),
		cmocka_unit_test(test_hostaudio_uses_the_users_pulse_socket),
		cmocka_unit_test(test_hostaudio_starts_the_sound_server_when_it_is_not_running),
		cmocka_unit_test(test_usb_controller_only_with_usb_or_spice),
		cmocka_unit_test(test_gpu_functions_are_cold_plugged_with_x_vga_only_on_the_boot_vga_function),
		cmocka_unit_test(test_identical_gpus_only_the_matched_one_goes),
		cmocka_unit_test(test_non_display_devices_go_over_qmp_into_their_own_root_port),
		cmocka_unit_test(test_binding_changes_in_order),
		cmocka_unit_test(test_group_with_a_foreign_driver_is_refused_naming_it),
		cmocka_unit_test(test_iommu_off_names_the_kernel_argument_and_force_continues),
		cmocka_unit_test(test_vfio_pci_missing_hints_at_a_kernel_upgrade),
		cmocka_unit_test(test_pci_regex_matching_nothing_or_only_bridges),
		cmocka_unit_test(test_usb_devices_attach_over_qmp_by_bus_and_address),
		cmocka_unit_test(test_root_hubs_never_and_hubs_only_by_id),
		cmocka_unit_test(test_usb_device_behind_a_passed_controller_is_skipped_with_a_warning),
		cmocka_unit_test(test_usb_device_nodes_go_to_qemus_user),
		cmocka_unit_test(test_user_networking_with_port_forwards),
		cmocka_unit_test(test_mac_is_derived_from_the_guest_name_and_the_machine_id),
		cmocka_unit_test(test_two_dry_runs_plan_the_same_mac_and_mac_flag_sets_it),
		cmocka_unit_test(test_qemu_user_gets_the_nodes_it_cannot_open_and_only_those),
		cmocka_unit_test(test_xhci_on_the_command_line_is_a_plan_fact),
		cmocka_unit_test(test_console_without_a_terminal_goes_to_console_log),
		cmocka_unit_test(test_novirtio_nic_is_e1000e_and_nonet_has_none),
		cmocka_unit_test(test_tap_alone_is_used_or_created),
		cmocka_unit_test(test_existing_bridge_gets_the_first_free_tap_and_vhost),
		cmocka_unit_test(test_missing_bridge_is_created_around_hostint),
		cmocka_unit_test(test_missing_bridge_without_hostint_is_refused),
		cmocka_unit_test(test_hostint_already_on_a_bridge_is_refused),
		cmocka_unit_test(test_unknown_hostint_is_refused),
		cmocka_unit_test(test_hostint_without_bridge_is_refused),
		cmocka_unit_test(test_bridge_naming_a_non_bridge_is_refused),
		cmocka_unit_test(test_force_cannot_make_a_missing_bridge_appear),
		cmocka_unit_test(test_host_changes_keep_their_order_across_areas),
		cmocka_unit_test(test_the_plan_is_deterministic),
		cmocka_unit_test(test_command_line_pastes_into_a_shell_as_the_same_words),
		cmocka_unit_test(test_killx_stops_the_display_manager_and_frees_the_boot_gpu),
		cmocka_unit_test(test_killx_unbinds_the_consoles_fbcon_is_bound_to),
		cmocka_unit_test(test_killx_with_ignorevtcon_leaves_the_consoles),
		cmocka_unit_test(test_without_killx_the_display_manager_is_left_alone),
		cmocka_unit_test(test_isolate_keeps_the_host_off_the_pinned_cpus),
		cmocka_unit_test(test_isolating_every_cpu_is_an_error),
		cmocka_unit_test(test_looking_glass_shared_memory_belongs_to_qemus_user),
		cmocka_unit_test(test_tpm_starts_swtpm_with_state_kept_per_guest),
		cmocka_unit_test(test_more_devices_than_root_ports_is_refused),
		cmocka_unit_test(test_more_cds_than_sata_ports_is_refused),
		cmocka_unit_test(test_isolate_without_pinvcpus_is_an_error),
		cmocka_unit_test(test_romfile_without_a_gpu_warns),
		cmocka_unit_test(test_nobios_ignores_secureboot_with_a_warning),
		cmocka_unit_test(test_block_device_without_format_warns),
		cmocka_unit_test(test_device_without_iommu_group_is_an_error),
		cmocka_unit_test(test_tap_name_of_a_non_tap_is_refused),
		cmocka_unit_test(test_existing_tap_on_another_bridge_is_refused),
		cmocka_unit_test(test_port_forwards_with_a_bridge_warn),
		cmocka_unit_test(test_looking_glass_without_a_gpu_warns),
		cmocka_unit_test(test_no_interrupt_remapping_is_an_error_naming_the_fix_and_force_warns),
		cmocka_unit_test(test_device_without_reset_method_warns),
		cmocka_unit_test(test_rundown_names_each_devices_reset_method),
		cmocka_unit_test(test_amd_gpu_with_the_reset_bug_names_vendor_reset_and_the_kernels_method),
		cmocka_unit_test(test_controller_of_a_mounted_filesystem_is_refused_unless_forced),
		cmocka_unit_test(test_nic_of_the_default_route_warns),
		cmocka_unit_test(test_memlock_that_cannot_be_raised_is_an_error_with_vfio_only),
		cmocka_unit_test(test_qemu_without_a_module_the_flags_need_is_an_error_naming_the_package),
		cmocka_unit_test(test_portforward_of_a_port_in_use_or_privileged_is_an_error),
		cmocka_unit_test(test_lgsize_larger_than_dev_shm_is_an_error),
		cmocka_unit_test(test_vcpus_are_bounded_by_what_q35_takes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
