/* Network interfaces from /sys/class/net: which exist, their MAC, whether one
 * is a bridge or a tap, which bridge it is enslaved to, and whether it is up;
 * and the ports the host already uses (a -portforward QEMU could not bind).
 * Read-only; creating bridges and taps is the net area's (libnl). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostroot.h"
#include "log.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

static int
iface_cmp(const void *a, const void *b)
{
	return strcmp(((const struct net_iface *)a)->name, ((const struct net_iface *)b)->name);
}

static bool
iface_has(const char *dir, const char *name, const char *attr)
{
	char path[PATH_MAX];
	return snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr) < (int)sizeof(path) && host_exists(path);
}

static char *
iface_read(const char *dir, const char *name, const char *attr)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr) >= (int)sizeof(path))
		return NULL;
	return host_read_line(path);
}

static void
iface_fill(const char *dir, struct net_iface *n)
{
	char *mac = iface_read(dir, n->name, "address");
	snap_copy(n->mac, sizeof(n->mac), mac);
	free(mac);
	n->is_bridge = iface_has(dir, n->name, "bridge");
	n->is_tap = iface_has(dir, n->name, "tun_flags");

	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s/master", dir, n->name) < (int)sizeof(path)) {
		char *master = host_link_basename(path);
		snap_copy(n->master, sizeof(n->master), master);
		free(master);
	}

	/* "unknown" is what drivers without carrier reporting say (lo, some
	 * taps); then the administrative IFF_UP flag decides. */
	char *state = iface_read(dir, n->name, "operstate");
	if (state != NULL && strcmp(state, "up") == 0) {
		n->up = true;
	} else if (state != NULL && strcmp(state, "unknown") == 0) {
		char *flags = iface_read(dir, n->name, "flags");
		n->up = flags == NULL || (strtoul(flags, NULL, 16) & 0x1) != 0;
		free(flags);
	}
	free(state);
}

/* /proc/net/{tcp,tcp6,udp,udp6}: "sl local_address rem_address st ...",
 * local_address "0100007F:0016" (hex, port last). A listening TCP socket
 * (state 0A) or any bound UDP socket holds its port. */
static void
ports_scan(struct host_snapshot *snap)
{
	static const struct {
		const char *file, *proto;
	} files[] = { { "/proc/net/tcp", "tcp" }, { "/proc/net/tcp6", "tcp" }, { "/proc/net/udp", "udp" },
		{ "/proc/net/udp6", "udp" } };
	size_t cap = 0;
	for (size_t f = 0; f < nitems(files); f++) {
		char path[PATH_MAX];
		char *text = host_path(path, sizeof(path), "%s", files[f].file) ? host_read(path, NULL) : NULL;
		bool tcp = files[f].proto[0] == 't';
		for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
		    line = strtok_r(NULL, "\n", &save)) {
			char local[64];
			unsigned state, port;
			if (sscanf(line, " %*u: %63s %*s %x", local, &state) != 2)
				continue;
			const char *colon = strrchr(local, ':');
			if (colon == NULL || sscanf(colon + 1, "%x", &port) != 1 || port == 0 || (tcp && state != 0x0a))
				continue;
			bool dup = false;
			for (size_t i = 0; i < snap->n_ports && !dup; i++)
				dup = snap->ports[i].port == port && strcmp(snap->ports[i].proto, files[f].proto) == 0;
			if (dup)
				continue;
			struct host_port *p = snap_grow(&snap->ports, &snap->n_ports, &cap, sizeof(*p));
			snap_copy(p->proto, sizeof(p->proto), files[f].proto);
			p->port = port;
		}
		free(text);
	}
	unsigned long long start;
	char path[PATH_MAX];
	snap->unprivileged_port_start = 1024;
	if (host_path(path, sizeof(path), "/proc/sys/net/ipv4/ip_unprivileged_port_start") != NULL &&
	    snap_read_ulong(path, 10, &start) && start <= 65536)
		snap->unprivileged_port_start = (unsigned)start;
}

int
netinfo_scan(struct host_snapshot *snap, struct verr *err)
{
	ports_scan(snap);
	char dir[PATH_MAX];
	if (host_path(dir, sizeof(dir), "/sys/class/net") == NULL)
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		log_debug("no network interfaces: %s: %s", dir, strerror(errno));
		return 0;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(snap->ifaces->name))
			continue;
		/* bonding_masters and similar are files, interfaces are links */
		if (!iface_has(dir, de->d_name, "address"))
			continue;
		struct net_iface *n = snap_grow(&snap->ifaces, &snap->n_ifaces, &cap, sizeof(*n));
		snap_copy(n->name, sizeof(n->name), de->d_name);
	}
	closedir(d);
	if (snap->n_ifaces > 1)
		qsort(snap->ifaces, snap->n_ifaces, sizeof(*snap->ifaces), iface_cmp);
	for (size_t i = 0; i < snap->n_ifaces; i++)
		iface_fill(dir, &snap->ifaces[i]);
	return 0;
}
