/* The plan's virtual hardware: disks (an iothread each with virtio), CDs on
 * the q35 AHCI ports, direct kernel boot, the display rules of the original,
 * and the companions (SPICE, Looking Glass, guest agent, audio, TPM). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "companion.h"
#include "hostroot.h"
#include "plan-priv.h"
#include "qemuuser.h"
#include "rundir.h"
#include "spawn.h"
#include "tpm.h"

/* NVMe serials are at most 20 printable characters, and commas would end
 * QEMU's option value. */
static void
plan_nvme_serial(char out[32], const struct host_file *f, size_t index)
{
	const char *src = NULL;
	if (f != NULL && f->is_block)
		src = f->disk_serial[0] ? f->disk_serial : f->disk_name[0] ? f->disk_name : NULL;
	size_t n = 0;
	for (; src != NULL && *src && n < 20; src++) {
		if ((*src >= '0' && *src <= '9') || (*src >= 'A' && *src <= 'Z') || (*src >= 'a' && *src <= 'z') ||
		    *src == '-' || *src == '_' || *src == '.')
			out[n++] = *src;
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, 32, "disk%zu", index);
}

void
plan_storage(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	int ahci = 0;

	for (size_t i = 0; i < o->n_images; i++) {
		const struct opt_image *img = &o->images[i];
		const struct host_file *f = plan_need_file(c, "image", img->path);
		char *esc = plan_qemu_escape(img->path);
		plan_arg(c, "-drive");
		if (img->format != NULL)
			plan_argf(c, "file=%s,if=none,id=disk%zu,format=%s,discard=on", esc, i, img->format);
		else
			plan_argf(c, "file=%s,if=none,id=disk%zu,discard=on", esc, i);
		free(esc);
		if (img->format == NULL && f != NULL && f->is_block)
			plan_warn(c, "-image %s is a block device without -imageformat: QEMU will probe it and "
			    "refuse writes to its first sector; add -imageformat raw", img->path);
		const char *how;
		if (o->nvme) {
			char serial[32];
			plan_nvme_serial(serial, f, i);
			plan_arg(c, "-device");
			plan_argf(c, "nvme,drive=disk%zu,serial=%s", i, serial);
			how = "NVMe";
		} else if (o->novirtio) {
			if (ahci >= PLAN_AHCI_PORTS) {
				plan_refuse(c, "-image %s: the guest's SATA controller has only %d ports for disks and "
				    "ISOs together; use fewer, or drop -noVirtio", img->path, PLAN_AHCI_PORTS);
				continue;
			}
			plan_arg(c, "-device");
			plan_argf(c, "ide-hd,drive=disk%zu,bus=ide.%d", i, ahci++);
			how = "SATA";
		} else {
			plan_arg(c, "-object");
			plan_argf(c, "iothread,id=iothread%zu", i);
			plan_arg(c, "-device");
			plan_argf(c, "virtio-blk-pci,drive=disk%zu,iothread=iothread%zu", i, i);
			how = "virtio-blk with its own iothread";
		}
		plan_say(c, "Disk %zu: %s (%s, %s)", i, img->path, img->format ? img->format : "format probed", how);
	}
	for (size_t i = 0; i < o->n_isos; i++) {
		plan_need_file(c, "iso", o->isos[i]);
		if (ahci >= PLAN_AHCI_PORTS) {
			plan_refuse(c, "-iso %s: the guest's SATA controller has only %d ports for ISOs%s; use fewer",
			    o->isos[i], PLAN_AHCI_PORTS, o->novirtio ? " and -noVirtio disks" : "");
			continue;
		}
		char *esc = plan_qemu_escape(o->isos[i]);
		plan_arg(c, "-drive");
		plan_argf(c, "file=%s,if=none,id=cd%zu,media=cdrom,readonly=on", esc, i);
		free(esc);
		plan_arg(c, "-device");
		plan_argf(c, "ide-cd,drive=cd%zu,bus=ide.%d", i, ahci++);
		plan_say(c, "CD-ROM %zu: %s", i, o->isos[i]);
	}
	if (o->n_images == 0 && o->n_isos == 0 && o->kernel == NULL)
		plan_warn(c, "no -image, -iso or -kernel: the guest has nothing to boot from");
}

void
plan_kernel(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	if (o->kernel == NULL) {
		if (o->initrd != NULL || o->cmdline != NULL)
			plan_check_failed(c, "%s needs -kernel: they only apply to a directly booted kernel",
			    o->initrd ? "-initrd" : "-cmdline");
		return;
	}
	plan_need_file(c, "kernel", o->kernel);
	plan_arg(c, "-kernel");
	plan_arg(c, o->kernel);
	if (o->initrd != NULL) {
		plan_need_file(c, "initrd", o->initrd);
		plan_arg(c, "-initrd");
		plan_arg(c, o->initrd);
	}
	if (o->cmdline != NULL) {
		plan_arg(c, "-append");
		plan_arg(c, o->cmdline);
	}
	plan_say(c, "Kernel: %s%s%s%s%s", o->kernel, o->initrd ? ", initrd " : "", o->initrd ? o->initrd : "",
	    o->cmdline ? ", command line: " : "", o->cmdline ? o->cmdline : "");
}

bool
plan_gpu_passed(const struct plan_ctx *c)
{
	for (size_t i = 0; i < c->n_pci; i++) {
		if (c->pci[i].cold && c->pci[i].dev->is_display)
			return true;
	}
	return false;
}

/* A file in the runtime directory, as QEMU must name it: QEMU sees the
 * real filesystem, the session makes the directory under the host root. */
static char *
plan_run_path(struct plan_ctx *c, const char *file)
{
	return xasprintf("%s/run/vfio/%s/%s", hostroot_get(), c->opts->name, file);
}

/* A socket QEMU or a companion running as QEMU's user makes: in QEMU's
 * own directory (rundir.h), as a host path. */
static char *
plan_qemu_sock(const struct plan_ctx *c, const char *file)
{
	return xasprintf("/run/vfio/%s/%s/%s", c->opts->name, RUNDIR_QEMU_DIR, file);
}

/* The same as QEMU names it. */
static char *
plan_qemu_sock_path(struct plan_ctx *c, const char *file)
{
	char *sock = plan_qemu_sock(c, file);
	char *path = xasprintf("%s%s", hostroot_get(), sock);
	free(sock);
	return path;
}

/* The display rules of the original: a passed-through GPU is the display;
 * otherwise a window when there is a graphical session, else only the
 * serial console. SPICE replaces the window with remote-viewer. */
void
plan_display(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	bool gpu = plan_gpu_passed(c);
	bool session = c->snap->display != NULL || c->snap->wayland_display != NULL;

	/* The serial console is a socket QEMU serves (console.sock, made by
	 * the session like the monitor's) and logs to console.log itself; the
	 * supervisor relays it to the terminal vfio runs on, when there is one.
	 * QEMU never holds the terminal: it outlives it, and the supervisor. */
	c->plan->console_tty = o->console_tty;
	char *log = plan_run_path(c, "console.log");
	const char *where = o->console_tty ? "serial console on this terminal, logged in " : "serial console in ";
	plan_arg(c, "-add-fd");
	plan_argf(c, "fd=%d,set=%d,opaque=console-log", SPAWN_CONSOLE_FD, SPAWN_CONSOLE_FDSET);
	plan_arg(c, "-chardev");
	plan_argf(c, "socket,id=console,fd=%d,server=on,wait=off,logfile=/dev/fdset/%d", SPAWN_CONSOLE_SOCK_FD,
	    SPAWN_CONSOLE_FDSET);
	plan_arg(c, "-serial");
	plan_arg(c, "chardev:console");

	if (o->spice) {
		if (!o->looking_glass) {
			/* A second legacy VGA device would fight the GPU's x-vga. */
			plan_arg(c, "-device");
			plan_arg(c, gpu ? "qxl,id=video0" : "qxl-vga,id=video0");
		}
		plan_arg(c, "-display");
		plan_arg(c, "none");
		plan_say(c, "Display: %s, seen through remote-viewer over SPICE",
		    o->looking_glass ? "the passed-through GPU" : "qxl");
	} else if (gpu) {
		plan_arg(c, "-vga");
		plan_arg(c, "none");
		plan_arg(c, "-display");
		plan_arg(c, "none");
		plan_say(c, "Display: the passed-through GPU; %s%s", where, log);
	} else if (session) {
		plan_arg(c, "-vga");
		plan_arg(c, "std");
		plan_say(c, "Display: a window on %s (no GPU passed through)",
		    c->snap->display ? c->snap->display : c->snap->wayland_display);
	} else {
		plan_arg(c, "-nographic");
		plan_arg(c, "-vga");
		plan_arg(c, "none");
		plan_say(c, "Display: none ($DISPLAY is not set); %s%s", where, log);
	}
	free(log);
}

void
plan_companions(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	char *path = NULL;

	if (o->usb_re_set || o->spice) {
		plan_arg(c, "-device");
		plan_arg(c, "qemu-xhci,id=xhci");
		c->plan->has_xhci = true;
	}
	if (o->spice || o->looking_glass) {
		free(path);
		path = plan_qemu_sock_path(c, "spice.sock");
		char *esc = plan_qemu_escape(path);
		plan_arg(c, "-spice");
		plan_argf(c, "unix=on,addr=%s,disable-ticketing=on", esc);
		free(esc);
		plan_say(c, "SPICE: server on %s", path);
	}
	if (o->spice || o->qemu_agent) {
		plan_arg(c, "-device");
		plan_arg(c, "virtio-serial-pci,id=vserial");
	}
	if (o->spice) {
		plan_arg(c, "-chardev");
		plan_arg(c, "spicevmc,id=vdagent,name=vdagent");
		plan_arg(c, "-device");
		plan_arg(c, "virtserialport,bus=vserial.0,chardev=vdagent,name=com.redhat.spice.0");
		for (int i = 1; i <= 4; i++) {
			plan_arg(c, "-chardev");
			plan_argf(c, "spicevmc,id=usbredir%d,name=usbredir", i);
			plan_arg(c, "-device");
			plan_argf(c, "usb-redir,chardev=usbredir%d,id=usbredirdev%d,bus=xhci.0", i, i);
		}
		plan_say(c, "SPICE: vdagent (clipboard, resolution) and 4 USB redirection channels");
	}
	if (o->looking_glass) {
		plan_arg(c, "-object");
		plan_argf(c, "memory-backend-file,id=ivshmem0,share=on,mem-path=/dev/shm/looking-glass,size=%" PRIu64 "M",
		    o->lgsize_mib);
		plan_arg(c, "-device");
		plan_arg(c, "ivshmem-plain,memdev=ivshmem0");
		plan_say(c, "Looking Glass: %" PRIu64 " MiB shared memory at /dev/shm/looking-glass", o->lgsize_mib);
	}
	if (o->qemu_agent) {
		free(path);
		path = plan_qemu_sock_path(c, "qga.sock");
		char *esc = plan_qemu_escape(path);
		plan_arg(c, "-chardev");
		plan_argf(c, "socket,id=qga0,path=%s,server=on,wait=off", esc);
		free(esc);
		plan_arg(c, "-device");
		plan_arg(c, "virtserialport,bus=vserial.0,chardev=qga0,name=org.qemu.guest_agent.0");
		plan_say(c, "QEMU guest agent: %s", path);
	}
	if (o->hostaudio) {
		int uid, gid;
		plan_qemu_user(c, &uid, &gid);
		struct audio_choice ch;
		audio_pick(uid, o->audio_pipewire, o->audio_pulse, &ch);
		/* QEMU 8.1+ speaks PipeWire natively; older ones use its
		 * PulseAudio socket, which pipewire-pulse serves. */
		bool native = o->audiodev != NULL && strcmp(o->audiodev, "pipewire") == 0 && o->audio_pipewire;
		plan_arg(c, "-audiodev");
		if (native) {
			plan_arg(c, "pipewire,id=snd0");
		} else {
			/* QEMU sees the real filesystem: the socket under the host root. */
			char *server = xasprintf("%s%s", hostroot_get(), ch.server);
			char *esc = plan_qemu_escape(server);
			plan_argf(c, "pa,id=snd0,server=unix:%s", esc);
			free(esc);
			free(server);
		}
		plan_arg(c, "-device");
		plan_arg(c, "ich9-intel-hda");
		plan_arg(c, "-device");
		plan_arg(c, "hda-output,audiodev=snd0");
		plan_say(c, "Audio: %s of uid %d (%s) through ich9-intel-hda%s", native ? "PipeWire" : ch.server, uid,
		    strcmp(ch.backend, "pipewire") == 0 ? "PipeWire" : "PulseAudio",
		    ch.start ? "; the sound server is started first" : "");
	}
	if (o->tpm) {
		free(path);
		path = plan_qemu_sock_path(c, "swtpm.sock");
		char *esc = plan_qemu_escape(path);
		plan_arg(c, "-chardev");
		plan_argf(c, "socket,id=chrtpm,path=%s", esc);
		free(esc);
		plan_arg(c, "-tpmdev");
		plan_arg(c, "emulator,id=tpm0,chardev=chrtpm");
		plan_arg(c, "-device");
		plan_arg(c, "tpm-tis,tpmdev=tpm0");
		plan_say(c, "TPM: swtpm on %s", path);
	}
	free(path);
}


void
plan_qemu_user_of(const struct options *o, const struct host_snapshot *snap, int *uid, int *gid)
{
	if (o->user_uid >= 0) {
		*uid = o->user_uid;
		*gid = o->user_gid;
	} else if (snap->sudo_uid >= 0) {
		*uid = snap->sudo_uid;
		*gid = snap->sudo_gid >= 0 ? snap->sudo_gid : snap->sudo_uid;
	} else if (snap->euid_root && snap->qemu_user.uid > 0) {
		*uid = snap->qemu_user.uid;
		*gid = snap->qemu_user.gid;
	} else {
		*uid = *gid = 0;
	}
}

/* Who QEMU runs as, told in the rundown and carried to the session. */
void
plan_qemu_user_fact(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	const struct host_snapshot *snap = c->snap;
	struct plan_user *u = &c->plan->qemu_user;
	int uid, gid;
	plan_qemu_user_of(o, snap, &uid, &gid);
	u->uid = u->gid = -1;
	if (o->user_uid >= 0) {
		u->name = xstrdup(o->user ? o->user : "?");
		u->why = "-user";
	} else if (snap->sudo_uid >= 0) {
		u->name = snap->sudo_user ? xstrdup(snap->sudo_user) : xasprintf("uid %d", uid);
		u->why = "the user behind sudo";
	} else if (snap->euid_root && uid > 0) {
		u->name = xstrdup(QEMUUSER_NAME);
		u->why = "vfio's own user";
		u->create = !snap->qemu_user.exists;
	} else if (snap->euid_root) {
		plan_refuse(c, "QEMU never runs as root, and vfio's own user %s does not exist and no system id is "
		    "free for it (see SYS_UID_MIN/MAX in /etc/login.defs): create it yourself (systemd-sysusers "
		    "vfio.conf) or give -user NAME", QEMUUSER_NAME);
		return;
	}
	if (u->name == NULL) {
		plan_say(c, "QEMU runs as: this user, as vfio itself (not root: it cannot switch)");
	} else if (uid == 0) {
		/* -user root, or sudo from root: what was asked for, said plainly. */
		u->uid = u->gid = 0;
		plan_warn(c, "QEMU runs as root (%s); give -user NAME of an unprivileged user instead", u->why);
	} else {
		u->uid = uid;
		u->gid = gid;
		plan_say(c, "QEMU runs as: %s (uid %d, gid %d; %s)%s", u->name, uid, gid, u->why,
		    u->create ? "; -run creates this system user first, and keeps it for later runs" : "");
	}
	if (o->n_qemu_groups > 0) {
		u->groups = xreallocarray(NULL, o->n_qemu_groups, sizeof(*u->groups));
		memcpy(u->groups, o->qemu_groups, o->n_qemu_groups * sizeof(*u->groups));
		u->n_groups = o->n_qemu_groups;
	}
	bool own = o->user_uid < 0 && snap->sudo_uid < 0 && snap->euid_root;
	if (o->hostaudio && own)
		plan_check_failed(c, "-hostaudio: QEMU runs as vfio's own user %s, which has no sound server; give "
		    "-user NAME of the desktop user whose sound server plays the guest's audio, or start vfio with "
		    "sudo from that user's session", QEMUUSER_NAME);
}

/* QEMU's seccomp sandbox (PLAN_SANDBOX), unless this QEMU says it was built
 * without it. */
void
plan_sandbox(struct plan_ctx *c)
{
	const struct qemu_caps *q = &c->snap->qemu;
	if (q->state == QEMU_CAPS_KNOWN && q->sandbox == 0) {
		plan_warn(c, "%s was built without seccomp (-sandbox): QEMU runs without its system call sandbox",
		    q->path ? q->path : "QEMU");
		return;
	}
	plan_arg(c, "-sandbox");
	plan_arg(c, PLAN_SANDBOX);
	c->plan->qemu_user.sandbox = true;
	plan_say(c, "Sandbox: QEMU's seccomp filter (no fork/exec, no setuid, no scheduling changes, no obsolete "
	    "system calls)");
}

void
plan_qemu_user(const struct plan_ctx *c, int *uid, int *gid)
{
	plan_qemu_user_of(c->opts, c->snap, uid, gid);
}

/* The host changes of the companions (mem area's actions): -isolate's three,
 * the Looking Glass shared memory file, the user's sound server, swtpm. */
void
plan_companion_changes(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	int uid, gid;
	plan_qemu_user(c, &uid, &gid);
	char rundir[128];
	snprintf(rundir, sizeof(rundir), "/run/vfio/%s", o->name);

	if (o->isolate && o->n_pinvcpus > 0) {
		struct strbuf cpus = { 0 };
		for (size_t i = 0; i < o->n_pinvcpus; i++)
			strbuf_printf(&cpus, "%s%d", i ? "," : "", o->pinvcpus[i]);
		size_t online = 0, guest_online = 0;
		for (size_t i = 0; i < c->snap->n_cpus; i++) {
			const struct cpu_thread *t = &c->snap->cpus[i];
			if (!t->online)
				continue;
			online++;
			for (size_t k = 0; k < o->n_pinvcpus; k++)
				guest_online += o->pinvcpus[k] == t->cpu;
		}
		if (guest_online >= online) {
			plan_check_failed(c, "-isolate: -pinvcpus %s takes every online CPU; leave at least one to the "
			    "host (see -cputhreads)", cpus.s);
		} else {
			plan_change(c, "cpuset-isolate", "/sys/fs/cgroup", NULL, NULL,
			    json_pack("{s:s, s:s}", "guest_cpus", cpus.s, "name", o->name));
			plan_change(c, "irq-affinity", "/proc/irq", NULL, NULL, json_pack("{s:s}", "guest_cpus", cpus.s));
			plan_change(c, "workqueue-cpumask", "/sys/devices/virtual/workqueue/cpumask", NULL, NULL,
			    json_pack("{s:s}", "guest_cpus", cpus.s));
			plan_say(c, "CPU isolation: host tasks, IRQs and unbound workqueues kept off CPUs %s", cpus.s);
		}
		strbuf_free(&cpus);
	}
	if (o->looking_glass)
		plan_change(c, "lg-shm-create", "/dev/shm/looking-glass", NULL, NULL, json_pack("{s:I, s:i, s:i}",
		    "size_mib", (json_int_t)o->lgsize_mib, "uid", uid, "gid", gid));
	if (o->hostaudio) {
		struct audio_choice ch;
		audio_pick(uid, o->audio_pipewire, o->audio_pulse, &ch);
		if (ch.start) {
			char log[160];
			snprintf(log, sizeof(log), "%s/audio.log", rundir);
			plan_change(c, "user-audio-start", ch.server, NULL, NULL,
			    json_pack("{s:i, s:i, s:s}", "uid", uid, "gid", gid, "log", log));
		}
	}
	if (o->tpm) {
		char *sock = plan_qemu_sock(c, "swtpm.sock");
		json_array_append_new(c->plan->host_changes, tpm_change(o->name, rundir, sock, (uid_t)uid, (gid_t)gid));
		free(sock);
	}

	/* The viewers are the invoking user's windows: only with a graphical
	 * session, as the sudo caller (else QEMU's user), and only once QEMU's
	 * SPICE socket exists, so the session starts them after `cont`. */
	const struct host_snapshot *sn = c->snap;
	if ((o->spice || o->looking_glass) && (sn->display != NULL || sn->wayland_display != NULL)) {
		uid_t vuid = sn->sudo_uid >= 0 ? (uid_t)sn->sudo_uid : (uid_t)uid;
		gid_t vgid = sn->sudo_gid >= 0 ? (gid_t)sn->sudo_gid : (gid_t)gid;
		struct strv argv = { 0 };
		char *spice = plan_qemu_sock(c, "spice.sock");
		if (o->looking_glass) {
			strv_push(&argv, "looking-glass-client");
			strv_push(&argv, "-f");
			strv_push(&argv, "/dev/shm/looking-glass");
			strv_push(&argv, "-c");
			strv_push(&argv, spice);
			strv_push(&argv, "-p");
			strv_push(&argv, "0");
		} else {
			strv_push(&argv, "remote-viewer");
			strv_pushf(&argv, "spice+unix://%s", spice);
		}
		json_array_append_new(c->plan->viewers, companion_viewer_change(argv.v[0], &argv, vuid, vgid, rundir,
		    sn->display, sn->wayland_display));
		plan_say(c, "Viewer: %s starts as uid %d once the guest runs", argv.v[0], (int)vuid);
		strv_free(&argv);
		free(spice);
	}
}
