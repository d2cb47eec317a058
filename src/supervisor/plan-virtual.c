/* The plan's virtual hardware: disks (an iothread each with virtio), CDs on
 * the q35 AHCI ports, direct kernel boot, the display rules of the original,
 * and the companions (SPICE, Looking Glass, guest agent, audio, TPM). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "plan-priv.h"

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

static void
plan_run_path(struct plan_ctx *c, char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "/run/vfio/%s/%s", c->opts->name, file);
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

	plan_arg(c, "-serial");
	c->plan->serial_index = (int)c->plan->argv.n;
	plan_arg(c, "mon:stdio");

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
		plan_say(c, "Display: the passed-through GPU; serial console on this terminal");
	} else if (session) {
		plan_arg(c, "-vga");
		plan_arg(c, "std");
		plan_say(c, "Display: a window on %s (no GPU passed through)",
		    c->snap->display ? c->snap->display : c->snap->wayland_display);
	} else {
		plan_arg(c, "-nographic");
		plan_arg(c, "-vga");
		plan_arg(c, "none");
		plan_say(c, "Display: none ($DISPLAY is not set); serial console on this terminal");
	}
}

void
plan_companions(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	char path[300];

	if (o->usb_re_set || o->spice) {
		plan_arg(c, "-device");
		plan_arg(c, "qemu-xhci,id=xhci");
	}
	if (o->spice || o->looking_glass) {
		plan_run_path(c, path, sizeof(path), "spice.sock");
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
		plan_run_path(c, path, sizeof(path), "qga.sock");
		char *esc = plan_qemu_escape(path);
		plan_arg(c, "-chardev");
		plan_argf(c, "socket,id=qga0,path=%s,server=on,wait=off", esc);
		free(esc);
		plan_arg(c, "-device");
		plan_arg(c, "virtserialport,bus=vserial.0,chardev=qga0,name=org.qemu.guest_agent.0");
		plan_say(c, "QEMU guest agent: %s", path);
	}
	if (o->hostaudio) {
		const char *drv = o->audiodev ? o->audiodev : "pa";
		plan_arg(c, "-audiodev");
		plan_argf(c, "%s,id=snd0", drv);
		plan_arg(c, "-device");
		plan_arg(c, "ich9-intel-hda");
		plan_arg(c, "-device");
		plan_arg(c, "hda-output,audiodev=snd0");
		plan_say(c, "Audio: the host's %s through ich9-intel-hda", strcmp(drv, "pa") == 0 ?
		    "PulseAudio (pipewire-pulse)" : drv);
	}
	if (o->tpm) {
		plan_run_path(c, path, sizeof(path), "swtpm.sock");
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
}

