/* Host networking for -bridge, -tap and -hostint: bridges and taps created
 * and removed over netlink (libnl-route-3, never `ip`), as reversible host
 * changes (change.h), and the tap/vhost-net file descriptors the session
 * hands to QEMU with getfd.
 *
 * Change actions (the whole list: docs/architecture.md, "Host changes"):
 *   bridge-create  target B, args {"hostint": H}
 *       prepare: refuses when B exists, H is missing, H is a bridge or H is
 *       already a bridge port; saves H's MAC, up/down, IPv4/IPv6 addresses
 *       and routes, and NetworkManager's hold on H.
 *       apply: creates B with H's MAC, enslaves H, moves H's addresses and
 *       routes to B, brings B and H up; when NetworkManager manages H, marks
 *       H and B unmanaged first (nmcli; $VFIO_NMCLI names the binary).
 *       undo: deletes B only if this run made it (B is made as "vfio" + 8
 *       hex digits of the change's token, then renamed to B with the token
 *       as its ifalias in one message), puts back H's addresses, routes,
 *       MAC, up/down and NetworkManager state (when NM still runs).
 *       Idempotent, and safe after a crash anywhere in apply. Leased
 *       addresses sit on B without a lifetime and go back to H with theirs.
 *   tap-create  target T, args {"bridge": B, "uid": U, "gid": G} (all optional)
 *       creates a persistent tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) owned by
 *       U/G, marks it (ifalias = token, MAC fe:xx:.. so a bridge never takes
 *       the tap's MAC as its own), enslaves it to B, brings it up. A tap
 *       that already existed at prepare time is left alone by apply and
 *       undo; undo deletes T only when it did not exist at prepare time and
 *       is a tun/tap device without another ifalias.
 *
 * Run-time use (control FIFO `net add bridge=BR` / `tap=TAP`, `net del ID`):
 * build the change with net_change_tap() (a name from net_tap_name_free()
 * when the user gave none), then journal it and call the ops exactly as for
 * planned changes: ops->prepare(), journal, ops->apply(); `net del` calls
 * ops->undo() with the journaled change and saved state after QEMU has
 * released the netdev. net_link_get() answers "does BR exist, is it a
 * bridge" before anything is changed. */
#ifndef VFIO_NET_H
#define VFIO_NET_H

#include <jansson.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "verr.h"

extern const struct change_ops net_bridge_create_ops;
extern const struct change_ops net_tap_create_ops;

/* What the host has under one interface name, read over netlink. */
struct net_link {
	char name[IFNAMSIZ];
	int ifindex;
	char mac[18];            /* "aa:bb:cc:dd:ee:ff", "" when none */
	char kind[32];           /* rtnl link kind: "bridge", "tun", "veth", "" */
	char master[IFNAMSIZ];   /* bridge it is a port of, "" when none */
	char alias[64];          /* ifalias (how vfio marks links it made) */
	bool up;                 /* administratively up (IFF_UP) */
};

/* 1 and *out filled when NAME exists, 0 when it does not, -errno (err
 * filled) when netlink fails or NAME is not a valid interface name. */
int net_link_get(const char *name, struct net_link *out, struct verr *err);

/* A valid Linux interface name: 1..15 bytes, no '/', ':' or whitespace. */
bool net_ifname_valid(const char *name);

/* The first "tapN" (N from 0) that no link uses. */
int net_tap_name_free(char out[IFNAMSIZ], struct verr *err);

/* Change objects as the plan emits them, for run-time `net add`. uid/gid < 0
 * and bridge NULL/"" are left out. */
json_t *net_change_tap(const char *tap, const char *bridge, int uid, int gid);
json_t *net_change_bridge(const char *bridge, const char *hostint);

/* Open /dev/net/tun (under the host root) attached to the existing tap NAME
 * with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR: the fd QEMU gets with getfd for
 * `netdev_add type=tap fd=...`. The caller closes *fd after passing it.
 * Refuses (never creates) when NAME does not exist or is not a tap. */
int net_tap_open(const char *name, int *fd, struct verr *err);
/* Open /dev/vhost-net (under the host root) for `vhostfd=`. */
int net_vhost_open(int *fd, struct verr *err);

/* The guest MAC: 52:54:00 (QEMU's OUI) plus the last three bytes of
 * host_mac, so the guest is easy to spot next to its host on the LAN; when
 * host_mac is NULL, "", all zero or not a MAC, the three random bytes the caller
 * passes. Pure. Returns true when the MAC came from host_mac. */
bool net_guest_mac(const char *host_mac, const uint8_t random3[3], char out[18]);

#endif
