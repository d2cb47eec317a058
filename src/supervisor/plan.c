/* The plan: a pure function of the options and the host snapshot. This file
 * builds the machine (q35, QMP on fd 3, firmware, memory, CPUs, disks, ISOs,
 * display, companions) and runs the pre-flight checks of the original script;
 * plan-devices.c adds passthrough and plan-net.c the network. Nothing here
 * reads or writes the host: every fact comes from the snapshot. */
#include "plan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "hugepages.h"
#include "preflight.h"
#include "plan-priv.h"
#include "spawn.h"

static const char *const hyperv_flags[] = {
	"hv-frequencies", "hv-relaxed", "hv-reset", "hv-runtime", "hv-spinlocks=0x1fff",
	"hv-stimer", "hv-synic", "hv-time", "hv-vapic", "hv-vpindex",
};

static void plan_vpush(struct strv *sv, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
plan_vpush(struct strv *sv, const char *prefix, const char *fmt, va_list ap)
{
	char *msg = xvasprintf(fmt, ap);
	if (prefix != NULL)
		strv_pushf(sv, "%s%s", prefix, msg);
	else
		strv_push(sv, msg);
	free(msg);
}

void
plan_check_failed(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (c->opts->force)
		plan_vpush(&c->plan->warnings, "-force: ", fmt, ap);
	else
		plan_vpush(&c->plan->errors, NULL, fmt, ap);
	va_end(ap);
}

void
plan_refuse(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plan_vpush(&c->plan->errors, NULL, fmt, ap);
	va_end(ap);
}

void
plan_warn(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plan_vpush(&c->plan->warnings, NULL, fmt, ap);
	va_end(ap);
}

void
plan_say(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plan_vpush(&c->plan->rundown, NULL, fmt, ap);
	va_end(ap);
}

void
plan_say_later(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plan_vpush(&c->later, NULL, fmt, ap);
	va_end(ap);
}

void
plan_arg(struct plan_ctx *c, const char *arg)
{
	strv_push(&c->plan->argv, arg);
}

void
plan_argf(struct plan_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	strv_push(&c->plan->argv, s);
	free(s);
}

void
plan_change(struct plan_ctx *c, const char *action, const char *target, const char *from, const char *to,
    json_t *args)
{
	json_t *ch = json_pack("{s:s, s:s}", "action", action, "target", target);
	if (from != NULL)
		json_object_set_new(ch, "from", json_string(from));
	if (to != NULL)
		json_object_set_new(ch, "to", json_string(to));
	if (args != NULL)
		json_object_set_new(ch, "args", args);
	json_array_append_new(c->plan->host_changes, ch);
}

void
plan_change_add(struct plan_ctx *c, json_t *change)
{
	json_array_append_new(c->plan->host_changes, change);
}

void
plan_qmp(struct plan_ctx *c, const char *execute, json_t *arguments, json_t *fd)
{
	json_t *cmd = json_pack("{s:s}", "execute", execute);
	if (arguments != NULL)
		json_object_set_new(cmd, "arguments", arguments);
	if (fd != NULL)
		json_object_set_new(cmd, "fd", fd);
	json_array_append_new(c->plan->qmp, cmd);
}

char *
plan_qemu_escape(const char *s)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "");
	for (; *s; s++) {
		if (*s == ',')
			strbuf_puts(&sb, ",,");
		else
			strbuf_add(&sb, s, 1);
	}
	return strbuf_steal(&sb);
}

void
plan_findings(struct plan_ctx *c, const char *prefix, struct preflight_findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct preflight_finding *x = &f->v[i];
		/* The same finding for several devices (a module two devices
		 * need) is told once. */
		bool told = false;
		for (size_t k = 0; k < i && !told; k++)
			told = strcmp(f->v[k].msg, x->msg) == 0;
		for (size_t k = 0; x->host_wide && k < c->told.n && !told; k++)
			told = strcmp(c->told.v[k], x->rule) == 0;
		if (told)
			continue;
		if (x->host_wide)
			strv_push(&c->told, x->rule);
		if (x->level == PREFLIGHT_REFUSE)
			plan_check_failed(c, "%s%s", prefix, x->msg);
		else
			plan_warn(c, "%s%s", prefix, x->msg);
	}
	preflight_findings_free(f);
}

int
plan_take_port(struct plan_ctx *c)
{
	if (c->n_ports >= PLAN_MAX_ROOT_PORTS) {
		if (!c->ports_exhausted)
			plan_refuse(c, "more than %d PCIe root ports would be needed; pass fewer devices with -pci",
			    PLAN_MAX_ROOT_PORTS);
		c->ports_exhausted = true;
		return 0;
	}
	return ++c->n_ports;
}

const struct pci_device *
plan_pci_lookup(const struct host_snapshot *snap, const char *address)
{
	for (size_t i = 0; i < snap->n_pci; i++) {
		if (strcmp(snap->pci[i].address, address) == 0)
			return &snap->pci[i];
	}
	return NULL;
}

const struct cpu_thread *
plan_cpu_lookup(const struct host_snapshot *snap, int cpu)
{
	for (size_t i = 0; i < snap->n_cpus; i++) {
		if (snap->cpus[i].cpu == cpu)
			return &snap->cpus[i];
	}
	return NULL;
}

const struct net_iface *
plan_iface_lookup(const struct host_snapshot *snap, const char *name)
{
	for (size_t i = 0; name != NULL && i < snap->n_ifaces; i++) {
		if (strcmp(snap->ifaces[i].name, name) == 0)
			return &snap->ifaces[i];
	}
	return NULL;
}

const struct host_file *
plan_file_lookup(const struct host_snapshot *snap, const char *path)
{
	for (size_t i = 0; path != NULL && i < snap->n_files; i++) {
		if (strcmp(snap->files[i].path, path) == 0)
			return &snap->files[i];
	}
	return NULL;
}

/* A file the user named must exist and be readable before QEMU is asked to
 * open it. Returns the snapshot's entry (NULL when unknown). */
const struct host_file *
plan_need_file(struct plan_ctx *c, const char *flag, const char *path)
{
	const struct host_file *f = plan_file_lookup(c->snap, path);
	if (f == NULL || !f->exists)
		plan_check_failed(c, "-%s %s: no such file; check the path", flag, path);
	else if (!f->readable)
		plan_check_failed(c, "-%s %s: the file is not readable; fix its permissions", flag, path);
	return f;
}

static size_t
plan_online_cpus(const struct host_snapshot *snap)
{
	size_t n = 0;
	for (size_t i = 0; i < snap->n_cpus; i++)
		n += snap->cpus[i].online;
	return n;
}

static void
plan_accel(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	if (o->accel == OPT_ACCEL_TCG) {
		c->tcg = true;
	} else if (!c->snap->kvm) {
		if (o->accel == OPT_ACCEL_KVM) {
			plan_check_failed(c, "-accel kvm: /dev/kvm does not exist; enable virtualization (VT-x/AMD-V) "
			    "in the firmware setup and load kvm_intel or kvm_amd, or use -accel tcg");
		} else {
			c->tcg = true;
			plan_warn(c, "/dev/kvm does not exist: using the tcg accelerator, which is much slower; enable "
			    "VT-x/AMD-V in the firmware setup and load kvm_intel or kvm_amd for KVM");
		}
	} else if (!c->snap->kvm_usable) {
		if (o->accel == OPT_ACCEL_KVM) {
			plan_check_failed(c, "-accel kvm: KVM is not usable here: %s; use -accel tcg",
			    c->snap->kvm_unusable);
		} else {
			c->tcg = true;
			plan_warn(c, "KVM is not usable here (%s): using the tcg accelerator, which is much slower",
			    c->snap->kvm_unusable);
		}
	}
	c->plan->accel_tcg = c->tcg;
	plan_say(c, "Accelerator: %s", c->tcg ? "tcg (emulation)" : "kvm");
}

static void
plan_cpu(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	struct strbuf cpu = { 0 };

	if (c->tcg) {
		/* tcg cannot offer the host CPU model, nor Hyper-V enlightenments. */
		strbuf_puts(&cpu, "max");
		if (o->hyperv)
			plan_warn(c, "-hyperv: Hyper-V enlightenments need KVM; ignored with tcg");
	} else {
		strbuf_puts(&cpu, "host,kvm=on,topoext=on");
		if (o->hyperv) {
			for (size_t i = 0; i < nitems(hyperv_flags); i++)
				strbuf_printf(&cpu, ",%s", hyperv_flags[i]);
			plan_say(c, "Hyper-V enlightenments: on");
		}
	}
	plan_arg(c, "-cpu");
	plan_arg(c, cpu.s);
	strbuf_free(&cpu);

	size_t vcpus, threads = 1;
	if (o->n_pinvcpus > 0) {
		vcpus = o->n_pinvcpus;
		struct strbuf missing = { 0 };
		for (size_t i = 0; i < o->n_pinvcpus; i++) {
			const struct cpu_thread *t = plan_cpu_lookup(snap, o->pinvcpus[i]);
			if (t == NULL || !t->online)
				strbuf_printf(&missing, "%s%d", missing.len ? "," : "", o->pinvcpus[i]);
		}
		if (missing.len > 0)
			plan_check_failed(c, "-pinvcpus: this host has no online CPU %s (it has %zu); see -cputhreads",
			    missing.s, plan_online_cpus(snap));
		strbuf_free(&missing);
		/* threads=2 only when every listed pair really shares a core, so the
		 * guest's idea of siblings is the host's. */
		if (vcpus % 2 == 0) {
			threads = 2;
			for (size_t i = 0; i < vcpus; i += 2) {
				const struct cpu_thread *t = plan_cpu_lookup(snap, o->pinvcpus[i]);
				if (t == NULL || t->sibling < 0 || t->sibling != o->pinvcpus[i + 1])
					threads = 1;
			}
		}
		struct strbuf list = { 0 };
		for (size_t i = 0; i < vcpus; i++)
			strbuf_printf(&list, "%s%d", i ? "," : "", o->pinvcpus[i]);
		plan_say(c, "vCPUs: %zu, pinned to host CPUs %s (%s)", vcpus, list.s,
		    threads == 2 ? "pairs of SMT siblings: threads=2" : "one thread per core");
		strbuf_free(&list);
	} else {
		size_t online = plan_online_cpus(snap);
		vcpus = online / 2 > 0 ? online / 2 : 1;
		if (vcpus > PLAN_MAX_VCPUS)
			vcpus = PLAN_MAX_VCPUS;
		plan_say(c, "vCPUs: %zu (half of the host's %zu%s)", vcpus, online,
		    vcpus == PLAN_MAX_VCPUS ? ", at most what q35 takes" : "");
	}
	if (vcpus > PLAN_MAX_VCPUS)
		plan_refuse(c, "-pinvcpus lists %zu CPUs, but QEMU's q35 machine takes at most %d vCPUs (\"Invalid SMP "
		    "CPUs\"); list fewer", vcpus, PLAN_MAX_VCPUS);
	plan_arg(c, "-smp");
	plan_argf(c, "%zu,sockets=1,cores=%zu,threads=%zu", vcpus, vcpus / threads, threads);
}

static void
plan_memory(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	uint64_t host_mib = snap->mem_total_kib / 1024;
	uint64_t mib = o->memory_mib;

	if (mib == 0) {
		mib = host_mib / 2;
		if (mib == 0) {
			plan_refuse(c, "the host's memory size is unknown or tiny (%" PRIu64 " KiB in /proc/meminfo); "
			    "give -memory SIZE", snap->mem_total_kib);
			return;
		}
	} else if (mib > host_mib) {
		plan_check_failed(c, "-memory %" PRIu64 "M is more than the host's %" PRIu64 "M; give less", mib,
		    host_mib);
	}

	if (o->hugepages) {
		struct hugepages_need need;
		struct verr err = { 0 };
		/* The default (half the host) is ours to round down to whole
		 * pages; a -memory the user chose is theirs, and must fit. */
		const char *mount = o->hugepages_mount ? o->hugepages_mount : "/dev/hugepages";
		for (size_t i = 0; o->memory_mib == 0 && i < snap->n_hugemounts; i++) {
			uint64_t page_mib = (snap->hugemounts[i].page_kib ? snap->hugemounts[i].page_kib :
			    snap->default_hugepage_kib) / 1024;
			if (strcmp(snap->hugemounts[i].path, mount) == 0 && page_mib > 0 && mib >= page_mib)
				mib -= mib % page_mib;
		}
		if (hugepages_plan(snap, o->hugepages_mount, mib, &need, &err) < 0) {
			plan_check_failed(c, "%s", err.msg);
		} else if (!need.alloc) {
			plan_say(c, "Hugepages: %" PRIu64 " of %" PRIu64 " free %" PRIu64 " kB pages already reserved",
			    need.pages, need.free_pages, need.page_kib);
		} else {
			char from[24], to[24];
			snprintf(from, sizeof(from), "%" PRIu64, need.nr);
			snprintf(to, sizeof(to), "%" PRIu64, need.new_nr);
			/* args.pages is what the guest needs; the run re-reads the pool. */
			plan_change(c, "hugepages-alloc", need.pool, from, to,
			    json_pack("{s:I}", "pages", (json_int_t)need.pages));
			plan_say(c, "Hugepages: allocate %" PRIu64 " more %" PRIu64 " kB pages (%s -> %s)",
			    need.new_nr - need.nr, need.page_kib, from, to);
		}
		plan_arg(c, "-m");
		plan_argf(c, "%" PRIu64 "M", mib);
		plan_arg(c, "-mem-path");
		char *esc = plan_qemu_escape(need.mount[0] ? need.mount :
		    o->hugepages_mount ? o->hugepages_mount : "/dev/hugepages");
		plan_arg(c, esc);
		free(esc);
		plan_arg(c, "-mem-prealloc");
	} else {
		plan_arg(c, "-m");
		plan_argf(c, "%" PRIu64 "M", mib);
	}
	c->plan->memory_mib = mib;
	plan_say(c, "Memory: %" PRIu64 " MiB%s", mib, o->memory_mib ? "" : " (half of the host's)");
}

static void
plan_firmware(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;

	if (o->nobios) {
		if (o->secureboot || o->biosvars)
			plan_warn(c, "-noBios: legacy boot has no UEFI; -secureboot and -biosvars are ignored");
		plan_say(c, "Firmware: QEMU's legacy BIOS");
		return;
	}
	const char *code = NULL, *template = NULL;
	if (o->bios != NULL) {
		plan_need_file(c, "bios", o->bios);
		code = o->bios;
		/* A -bios that is one of the known builds has a known template. */
		for (size_t i = 0; i < snap->n_firmware; i++) {
			if (strcmp(snap->firmware[i].code, o->bios) == 0 && snap->firmware[i].vars[0])
				template = snap->firmware[i].vars;
		}
	} else {
		for (size_t i = 0; i < snap->n_firmware && code == NULL; i++) {
			if (snap->firmware[i].secboot == o->secureboot) {
				code = snap->firmware[i].code;
				template = snap->firmware[i].vars[0] ? snap->firmware[i].vars : NULL;
			}
		}
		if (code == NULL) {
			plan_check_failed(c, "no %sOVMF firmware was found in the well-known places; install it "
			    "(Debian: apt install ovmf), name it with -bios PATH, or boot legacy with -noBios",
			    o->secureboot ? "Secure Boot " : "");
			return;
		}
	}
	if (o->secureboot && o->biosvars == NULL)
		plan_check_failed(c, "-secureboot needs -biosvars: copy your OVMF_VARS file to a path of its own "
		    "for this guest and name it with -biosvars PATH%s", o->win11 ? " (-win11 implies -secureboot)" : "");

	char *esc = plan_qemu_escape(code);
	plan_arg(c, "-drive");
	plan_argf(c, "if=pflash,format=raw,unit=0,readonly=on,file=%s", esc);
	free(esc);
	if (o->biosvars != NULL) {
		const struct host_file *f = plan_file_lookup(snap, o->biosvars);
		if ((f == NULL || !f->exists) && o->createvars) {
			if (template == NULL) {
				plan_check_failed(c, "-createvars: no OVMF_VARS template was found next to %s; copy "
				    "one to %s yourself", code, o->biosvars);
			} else {
				int uid, gid;
				plan_qemu_user(c, &uid, &gid);
				plan_change(c, "vars-create", o->biosvars, NULL, NULL,
				    json_pack("{s:s, s:i, s:i}", "template", template, "uid", uid, "gid", gid));
				plan_say(c, "UEFI variables: create %s from %s", o->biosvars, template);
			}
		} else if (f == NULL || !f->exists) {
			if (template != NULL)
				plan_check_failed(c, "-biosvars %s: no such file; copy the template (cp %s %s) or add "
				    "-createvars", o->biosvars, template, o->biosvars);
			else
				plan_check_failed(c, "-biosvars %s: no such file; copy your OVMF_VARS template there "
				    "or add -createvars", o->biosvars);
		} else {
			plan_need_file(c, "biosvars", o->biosvars);
		}
		esc = plan_qemu_escape(o->biosvars);
		plan_arg(c, "-drive");
		plan_argf(c, "if=pflash,format=raw,unit=1,file=%s", esc);
		free(esc);
	}
	if (o->secureboot) {
		plan_arg(c, "-global");
		plan_arg(c, "driver=cfi.pflash01,property=secure,value=on");
	}
	plan_say(c, "Firmware: %s%s%s%s", code, o->biosvars ? ", variables in " : "", o->biosvars ? o->biosvars : "",
	    o->secureboot ? " (Secure Boot)" : "");
}

static void
plan_root_ports(struct plan_ctx *c)
{
	/* One per device attached over QMP was taken already; add the spares. */
	int spares = 0;
	for (; spares < PLAN_SPARE_PORTS && c->n_ports < PLAN_MAX_ROOT_PORTS; spares++)
		c->n_ports++;
	c->plan->n_root_ports = c->n_ports;
	c->plan->n_spare_ports = spares;
	for (int n = 1; n <= c->n_ports; n++) {
		int slot = 0x1c + (n - 1) / 8, fn = (n - 1) % 8;
		plan_arg(c, "-device");
		plan_argf(c, "pcie-root-port,id=rp%d,bus=pcie.0,chassis=%d,port=%d,addr=0x%x.%d%s", n, n, n, slot, fn,
		    fn == 0 ? ",multifunction=on" : "");
	}
}

static void
plan_preflight(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	if (o->isolate && o->n_pinvcpus == 0)
		plan_check_failed(c, "-isolate keeps host tasks off the guest's CPUs, which -pinvcpus names; "
		    "add -pinvcpus CPULIST");
	if (o->romfile != NULL) {
		plan_need_file(c, "romfile", o->romfile);
		if (!plan_gpu_passed(c))
			plan_warn(c, "-romfile %s: no GPU is passed through, so it is not used", o->romfile);
	}
	if (o->looking_glass && !plan_gpu_passed(c))
		plan_warn(c, "-looking-glass: no GPU is passed through with -pci, so the guest has nothing for "
		    "Looking Glass to capture");
	if (o->tpm && o->nobios)
		plan_warn(c, "-tpm with -noBios: Windows 11 needs UEFI; the TPM is attached anyway");
	struct preflight_findings f = { 0 };
	if (c->n_pci > 0)
		preflight_memlock(c->snap, c->plan->memory_mib, &f);
	if (o->looking_glass)
		preflight_lgsize(c->snap, o->lgsize_mib, &f);
	plan_findings(c, "", &f);
}

/* What the QEMU binary must offer for this command line, and the vfio flag
 * that asked for it. */
static const struct {
	const char *device, *flag;
} plan_device_flags[] = {
	{ "vfio-pci", "-pci" }, { "usb-host", "-usb" }, { "qxl-vga", "-spice" }, { "qxl", "-spice" },
	{ "usb-redir", "-spice" }, { "ivshmem-plain", "-looking-glass" }, { "tpm-tis", "-tpm" },
	{ "ich9-intel-hda", "-hostaudio" }, { "hda-output", "-hostaudio" }, { "nvme", "-nvme" },
	{ "ide-hd", "-noVirtio" }, { "e1000e", "-noVirtio" }, { "virtio-serial-pci", "-qemu-agent" },
};

static const char *
plan_flag_of_device(const char *driver)
{
	for (size_t i = 0; i < nitems(plan_device_flags); i++)
		if (strcmp(plan_device_flags[i].device, driver) == 0)
			return plan_device_flags[i].flag;
	return "the guest";
}

static void
plan_qemu_device(struct plan_ctx *c, const char *driver, struct preflight_findings *f)
{
	preflight_qemu_has(c->snap, plan_flag_of_device(driver), "device", driver, f);
}

/* The QEMU binary: there, and with every module the argv and the QMP
 * commands need (checked against what it said it has: qemucaps.c). */
static void
plan_qemu_binary(struct plan_ctx *c)
{
	const struct qemu_caps *q = &c->snap->qemu;
	const char *want = c->opts->qemu ? c->opts->qemu : "qemu-system-x86_64";
	if (q->state == QEMU_CAPS_NO_BINARY) {
		plan_check_failed(c, "cannot find the QEMU binary \"%s\"%s; install qemu-system-x86 (Debian) or point "
		    "$VFIO_QEMU at it", want, strchr(want, '/') ? "" : " in PATH");
		return;
	}
	if (q->state != QEMU_CAPS_KNOWN)
		return;
	struct preflight_findings f = { 0 };
	const struct strv *argv = &c->plan->argv;
	for (size_t i = 1; i + 1 < argv->n; i++) {
		const char *opt = argv->v[i], *val = argv->v[i + 1];
		size_t n = strcspn(val, ",");
		char *first = xstrndup(val, n);
		if (strcmp(opt, "-device") == 0)
			plan_qemu_device(c, first, &f);
		else if (strcmp(opt, "-audiodev") == 0)
			preflight_qemu_has(c->snap, "-hostaudio", "audiodev", first, &f);
		else if (strcmp(opt, "-display") == 0)
			preflight_qemu_has(c->snap, "-display", "display", first, &f);
		else if (strcmp(opt, "-spice") == 0)
			preflight_qemu_has(c->snap, c->opts->spice ? "-spice" : "-looking-glass", "spice", NULL, &f);
		free(first);
	}
	size_t i;
	json_t *cmd;
	json_array_foreach(c->plan->qmp, i, cmd) {
		const char *drv = json_string_value(json_object_get(json_object_get(cmd, "arguments"), "driver"));
		if (drv != NULL && strcmp(json_string_value(json_object_get(cmd, "execute")), "device_add") == 0)
			plan_qemu_device(c, drv, &f);
	}
	/* -usb attaches matches plugged in later, with usb-host too. */
	if (c->opts->usb_re_set)
		plan_qemu_device(c, "usb-host", &f);
	plan_findings(c, "", &f);
}

/* What -run does with an earlier run of the same -name (main.c read it
 * into opts->running, adopt_probe()). Adopting, the plan above is the next
 * start's: its problems are that start's, not the adoption's. */
static void
plan_running(struct plan_ctx *c)
{
	const struct opt_running *r = &c->opts->running;
	const char *name = c->opts->name ? c->opts->name : "vfio";
	c->plan->running = r->how;
	c->plan->running_qemu_pid = r->qemu_pid;
	switch (r->how) {
	case OPT_RUN_FRESH:
		return;
	case OPT_RUN_ADOPT:
		plan_say(c, "Running: the guest %s runs already (QEMU pid %d) with no supervisor; -run adopts it as "
		    "it was started, and what follows is for its next start", name, r->qemu_pid);
		adopt_differences(r->flags, &c->opts->flags, &c->plan->differences);
		for (size_t i = 0; i < c->plan->differences.n; i++)
			plan_say(c, "Differs from the running guest (applies at its next start): %s",
			    c->plan->differences.v[i]);
		for (size_t i = 0; i < c->plan->errors.n; i++)
			strv_pushf(&c->plan->warnings, "at the next start: %s", c->plan->errors.v[i]);
		strv_free(&c->plan->errors);
		return;
	case OPT_RUN_RESTORE_FIRST:
		plan_say(c, "Leftovers: an earlier run of %s did not finish; -run gives back the host changes it left "
		    "first%s", name, r->qemu_pid > 0 ? " (stopping its QEMU, which never ran the guest)" : "");
		return;
	case OPT_RUN_SUPERVISED:
		plan_refuse(c, "the guest \"%s\" is already run by the supervisor with pid %d; stop it first (`kill "
		    "%d` powers the guest down) or choose another -name", name, r->supervisor_pid, r->supervisor_pid);
		return;
	case OPT_RUN_UNREACHABLE:
		plan_refuse(c, "the guest \"%s\" is still running: %s; `vfio -restore %s` stops it and puts the "
		    "host back, then start it again", name, r->why ? r->why : "it cannot be adopted", name);
		return;
	}
}

void
plan_build(struct plan *plan, const struct options *opts, const struct host_snapshot *snap)
{
	memset(plan, 0, sizeof(*plan));
	plan->qmp = json_array();
	plan->host_changes = json_array();
	plan->viewers = json_array();
	plan->devices = json_pack("{s:[], s:[]}", "pci", "usb");

	struct plan_ctx c = { .plan = plan, .opts = opts, .snap = snap };
	plan->has_disk_image = opts->n_images > 0;
	plan_say(&c, "Guest: %s%s", opts->name, opts->run ? "" : " (dry run: nothing is changed; add -run to start it)");

	/* Decide first what is passed through and how the network attaches:
	 * root ports, host changes and the display rules depend on it. */
	plan_devices_match(&c);
	plan_net_prepare(&c);
	plan_devices_changes(&c);

	plan_arg(&c, opts->qemu ? opts->qemu : "qemu-system-x86_64");
	plan_arg(&c, "-name");
	/* debug-threads names vCPU threads "CPU N/KVM" so they can be pinned. */
	plan_argf(&c, "%s,debug-threads=on", opts->name ? opts->name : "vfio");
	plan_accel(&c);
	plan_qemu_user_fact(&c);
	plan_arg(&c, "-machine");
	plan_argf(&c, "q35%s%s", c.tcg ? "" : ",kernel_irqchip=on", opts->secureboot && !opts->nobios ? ",smm=on" : "");
	plan_arg(&c, "-accel");
	plan_arg(&c, c.tcg ? "tcg" : "kvm");
	plan_arg(&c, "-nodefaults");
	plan_arg(&c, "-S");
	/* QEMU listens on the monitor socket the supervisor made (qmp.sock):
	 * whichever supervisor runs the guest connects, this one or a later
	 * one that adopts it. */
	plan_arg(&c, "-chardev");
	plan_argf(&c, "socket,id=qmp,fd=%d,server=on,wait=off", SPAWN_QMP_FD);
	plan_arg(&c, "-mon");
	plan_arg(&c, "chardev=qmp,mode=control");
	plan_cpu(&c);
	plan_memory(&c);
	plan_net_changes(&c);
	plan_companion_changes(&c);
	plan_firmware(&c);
	plan_kernel(&c);
	plan_display(&c);
	plan_storage(&c);
	plan_node_changes(&c);
	plan_root_ports(&c);
	plan_devices_cmdline(&c);
	plan_companions(&c);
	plan_sandbox(&c);
	for (size_t i = 0; i < opts->extras_words.n; i++)
		plan_arg(&c, opts->extras_words.v[i]);
	if (opts->extras_words.n > 0)
		plan_say(&c, "Extra QEMU arguments: %s", opts->extras);
	plan_preflight(&c);
	for (size_t i = 0; i < c.later.n; i++)
		strv_push(&plan->rundown, c.later.v[i]);
	strv_free(&c.later);

	plan_devices_qmp(&c);
	plan_net_qmp(&c);
	plan_qemu_binary(&c);
	plan_running(&c);

	free(c.pci);
	free(c.passed);
	free(c.usb);
	strv_free(&c.told);
}

void
plan_free(struct plan *plan)
{
	strv_free(&plan->argv);
	json_decref(plan->qmp);
	json_decref(plan->host_changes);
	json_decref(plan->viewers);
	json_decref(plan->devices);
	strv_free(&plan->rundown);
	strv_free(&plan->warnings);
	strv_free(&plan->errors);
	strv_free(&plan->differences);
	free(plan->tap);
	free(plan->qemu_user.name);
	free(plan->qemu_user.groups);
	strv_free(&plan->qemu_nodes);
	memset(plan, 0, sizeof(*plan));
}
