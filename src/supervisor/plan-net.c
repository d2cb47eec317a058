/* The plan's network part, with the original script's rules: user-mode NAT
 * by default (with -portforward rules), -nonet for nothing, or a tap that the
 * supervisor creates or reuses, optionally on a bridge that is created on the
 * fly around -hostint. The tap reaches QEMU as a file descriptor (getfd), so
 * QEMU needs no network privileges. */
#include <stdlib.h>
#include <string.h>

#include "devargs.h"
#include "net.h"
#include "plan-priv.h"
#include "preflight.h"

/* Three bytes that stay the same for one guest name on one host and differ
 * between guests and hosts: FNV-1a over the machine-id and the name, mixed
 * by splitmix64's finalizer. A Windows guest that sees a new MAC sees a new
 * network, so a random one per run will not do. */
static void
plan_mac_bytes(uint8_t out[3], const char *machine_id, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[] = { "vfio guest mac\n", machine_id, "\n", name };
	for (size_t i = 0; i < nitems(parts); i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
			h = (h ^ *p) * 0x100000001b3ULL;
	}
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= h >> 31;
	out[0] = (uint8_t)(h >> 16);
	out[1] = (uint8_t)(h >> 8);
	out[2] = (uint8_t)h;
}

enum plan_mac_source
plan_guest_mac(char out[18], const char *flag_mac, const char *host_mac, const char *machine_id, const char *name)
{
	if (flag_mac != NULL) {
		snprintf(out, 18, "%s", flag_mac);
		return PLAN_MAC_FLAG;
	}
	uint8_t derived[3];
	plan_mac_bytes(derived, machine_id, name);
	return net_guest_mac(host_mac, derived, out) ? PLAN_MAC_HOST : PLAN_MAC_DERIVED;
}

/* Returns false when the network cannot be set up as asked. */
static bool
plan_net_bridge(struct plan_ctx *c, const char **mac)
{
	const struct options *o = c->opts;
	const struct net_iface *b = plan_iface_lookup(c->snap, o->bridge);
	if (b != NULL && !b->is_bridge) {
		plan_refuse(c, "-bridge %s: the interface %s exists but is not a bridge; name a bridge, or use "
		    "-tap alone", o->bridge, o->bridge);
		return false;
	}
	if (b != NULL) {
		const struct net_iface *h = plan_iface_lookup(c->snap, o->hostint);
		if (o->hostint != NULL && (h == NULL || strcmp(h->master, o->bridge) != 0))
			plan_warn(c, "-hostint %s: bridge %s exists already, so it is used as it is and %s is left "
			    "alone", o->hostint, o->bridge, o->hostint);
		*mac = b->mac;
		plan_say_later(c, "Network: a tap on the existing bridge %s", o->bridge);
		return true;
	}
	if (o->hostint == NULL) {
		plan_refuse(c, "-bridge %s: there is no bridge named %s. To create it on the fly, also name the "
		    "host interface to put on it with -hostint (e.g. -bridge %s -hostint eth0); to attach to an "
		    "existing bridge, name that one; or use -tap alone", o->bridge, o->bridge, o->bridge);
		return false;
	}
	const struct net_iface *h = plan_iface_lookup(c->snap, o->hostint);
	if (h == NULL) {
		plan_refuse(c, "-hostint %s: no such interface on this host; name the ethernet interface to "
		    "bridge (see 'ip link')", o->hostint);
		return false;
	}
	if (h->is_bridge || h->master[0] != '\0') {
		plan_refuse(c, "-hostint %s is %s%s; use -bridge %s instead", o->hostint,
		    h->is_bridge ? "a bridge itself" : "already on bridge ", h->is_bridge ? "" : h->master,
		    h->is_bridge ? o->hostint : h->master);
		return false;
	}
	c->create_bridge = true;
	*mac = h->mac;
	plan_say_later(c, "Network: create bridge %s around %s (it takes %s's MAC address and addresses), and a tap on it",
	    o->bridge, o->hostint, o->hostint);
	return true;
}

void
plan_net_prepare(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	struct plan *plan = c->plan;
	const char *mac = NULL;

	if (o->nonet) {
		if (o->bridge || o->tap || o->hostint || o->n_portfwds || o->mac)
			plan_warn(c, "-nonet: the guest gets no network adapter; -bridge, -tap, -hostint, "
			    "-portforward and -mac are ignored");
		plan_say_later(c, "Network: none (-nonet)");
		return;
	}
	if (o->hostint != NULL && o->bridge == NULL) {
		plan_refuse(c, "-hostint %s needs -bridge: it names the interface to put on a new bridge; "
		    "add -bridge NAME", o->hostint);
		return;
	}
	if (o->bridge == NULL && o->tap == NULL) {
		c->net_user = true;
		struct strbuf fw = { 0 };
		for (size_t i = 0; i < o->n_portfwds; i++)
			strbuf_printf(&fw, "%s%s %u -> guest %u", i ? ", " : "", o->portfwds[i].proto,
			    o->portfwds[i].host_port, o->portfwds[i].guest_port);
		plan_say_later(c, "Network: user-mode NAT%s%s", fw.len ? "; forwarding host " : "", fw.len ? fw.s : "");
		strbuf_free(&fw);
		/* QEMU binds each host port as its user when the netdev is added. */
		int uid, gid;
		plan_qemu_user(c, &uid, &gid);
		struct preflight_findings f = { 0 };
		for (size_t i = 0; i < o->n_portfwds; i++)
			preflight_host_port(c->snap, o->portfwds[i].proto, o->portfwds[i].host_port, uid, &f);
		plan_findings(c, "", &f);
	} else {
		c->net_tap = true;
		if (o->n_portfwds > 0)
			plan_warn(c, "-portforward only applies to user-mode networking; with -bridge or -tap the "
			    "guest is reachable directly, so it is ignored");
		if (o->bridge != NULL) {
			if (!plan_net_bridge(c, &mac))
				return;
		}
		char name[32];
		if (o->tap != NULL) {
			snprintf(name, sizeof(name), "%s", o->tap);
		} else {
			for (int n = 0;; n++) {
				snprintf(name, sizeof(name), "tap%d", n);
				if (plan_iface_lookup(c->snap, name) == NULL)
					break;
			}
		}
		const struct net_iface *t = plan_iface_lookup(c->snap, name);
		if (t != NULL && !t->is_tap) {
			plan_refuse(c, "-tap %s: the interface %s exists but is not a tap; pick another name", name, name);
			return;
		}
		if (t != NULL && o->bridge != NULL && strcmp(t->master, o->bridge) != 0) {
			plan_refuse(c, "-tap %s exists but is %s%s, not on bridge %s; put it on %s or pick another -tap name",
			    name, t->master[0] ? "on bridge " : "on no bridge", t->master, o->bridge, o->bridge);
			return;
		}
		c->create_tap = t == NULL;
		plan->tap = xstrdup(name);
		if (o->bridge == NULL)
			plan_say_later(c, "Network: the guest is on tap %s only (%s); the host must give %s an address to "
			    "reach it", name, t ? "existing, left as it is" : "created for this run", name);
		else
			plan_say_later(c, "Network: tap %s (%s)", name, t ? "existing, left as it is" : "created for this run");
	}
	switch (plan_guest_mac(plan->guest_mac, o->mac, mac, c->snap->machine_id, o->name ? o->name : "vfio")) {
	case PLAN_MAC_FLAG:
		plan_say_later(c, "Guest MAC address: %s (-mac)", plan->guest_mac);
		break;
	case PLAN_MAC_HOST:
		plan_say_later(c, "Guest MAC address: %s", plan->guest_mac);
		break;
	case PLAN_MAC_DERIVED:
		plan_say_later(c, "Guest MAC address: %s (%s)", plan->guest_mac, c->snap->machine_id[0] ?
		    "from the guest name and this host's /etc/machine-id" :
		    "from the guest name; this host has no /etc/machine-id");
		break;
	}
	c->nic_port = plan_take_port(c);
}

void
plan_net_changes(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	if (c->create_bridge)
		plan_change(c, "bridge-create", o->bridge, NULL, NULL, json_pack("{s:s}", "hostint", o->hostint));
	if (c->create_tap)
		plan_change(c, "tap-create", c->plan->tap, NULL, NULL,
		    o->bridge ? json_pack("{s:s}", "bridge", o->bridge) : NULL);
}

void
plan_net_qmp(struct plan_ctx *c)
{
	const struct options *o = c->opts;
	if (!c->net_user && !c->net_tap)
		return;
	if (c->nic_port == 0 || (c->net_tap && c->plan->tap == NULL))
		return;         /* refused above */
	if (c->net_user) {
		json_t *fw = json_array();
		for (size_t i = 0; i < o->n_portfwds; i++) {
			char rule[64];
			snprintf(rule, sizeof(rule), "%s::%u-:%u", o->portfwds[i].proto, o->portfwds[i].host_port,
			    o->portfwds[i].guest_port);
			json_array_append_new(fw, json_pack("{s:s}", "str", rule));
		}
		plan_qmp(c, "netdev_add", devargs_netdev_user("net0", fw), NULL);
		json_decref(fw);
	} else {
		plan_qmp(c, "getfd", json_pack("{s:s}", "fdname", "tapfd0"),
		    json_pack("{s:s, s:s}", "open", "tap", "name", c->plan->tap));
		if (c->snap->vhost_net)
			plan_qmp(c, "getfd", json_pack("{s:s}", "fdname", "vhostfd0"),
			    json_pack("{s:s}", "open", "vhost-net"));
		plan_qmp(c, "netdev_add", devargs_netdev_tap("net0", "tapfd0", c->snap->vhost_net ? "vhostfd0" : NULL),
		    NULL);
	}
	char bus[16];
	snprintf(bus, sizeof(bus), "rp%d", c->nic_port);
	plan_qmp(c, "device_add", devargs_nic(o->novirtio ? "e1000e" : "virtio-net-pci", "nic0", "net0",
	    c->plan->guest_mac, bus), NULL);
}
