/* GPUs the host is using: who holds a card (the processes with
 * /dev/dri/by-path/pci-ADDR-* or /dev/nvidia* open, found through
 * /proc/PID/fd under the host root), and the reversible host changes that
 * free it: stopping the display manager, unbinding the virtual consoles and
 * the EFI framebuffer, stopping other users of the card and starting them
 * again, as their own user, at teardown. */
#ifndef VFIO_DISPLAY_H
#define VFIO_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "change.h"
#include "util.h"
#include "verr.h"

struct display_holder {
	int pid;
	uid_t uid;
	gid_t gid;
	char comm[64];
	struct strv argv;	/* from /proc/PID/cmdline */
	char file[256];		/* the host path it holds, e.g. "/dev/dri/card0" */
	bool compositor;	/* Xorg or a Wayland compositor: needs -killx */
};

struct display_holders {
	struct display_holder *v;
	size_t n;
};

/* Every process holding the card at PCI address addr (one entry per
 * process). Returns 0 (possibly with none) or -errno with err set. */
int display_find_holders(const char *addr, struct display_holders *out, struct verr *err);
void display_holders_free(struct display_holders *h);

/* Xorg and the Wayland compositors, by /proc/PID/comm. */
bool display_is_compositor(const char *comm);

/* "1234 Xorg (uid 0, /dev/dri/card0): /usr/lib/xorg/Xorg :0; 1301 ..." or ""
 * when nobody holds it. Allocated. */
char *display_describe_holders(const char *addr);

/* The virtual consoles the framebuffer console (fbcon, "frame buffer
 * device") is bound to now, as /sys/class/vtconsole/vtconN, at most max, in
 * the order of N. Which N that is depends on what registered first (the VGA
 * text console, the dummy console), so it is read, never assumed. Returns
 * how many; none without a VT subsystem. */
size_t display_fbcon_scan(char (*out)[48], size_t max);

/* Change actions (the whole list: docs/architecture.md, "Host changes"):
 *   display-manager-stop  target "display-manager.service": systemctl stop,
 *                         start again at undo if it was active ($VFIO_SYSTEMCTL
 *                         overrides /usr/bin/systemctl)
 *   vtcon-unbind          target "/sys/class/vtconsole/vtconN" (one fbcon is
 *                         bound to: display_fbcon_scan()): bind <- 0, undo 1
 *   efifb-unbind          target "efi-framebuffer.0": platform driver
 *                         efi-framebuffer unbind, undo bind
 *   gpu-users-stop        target a GPU's PCI address: the processes other than
 *                         compositors that hold it get SIGTERM (SIGKILL after
 *                         3 s); undo starts each again from its saved argv as
 *                         its uid/gid, without a shell */
extern const struct change_ops display_manager_stop_ops;
extern const struct change_ops display_vtcon_unbind_ops;
extern const struct change_ops display_efifb_unbind_ops;
extern const struct change_ops display_gpu_users_stop_ops;

#endif
