/* Bridges and taps for -bridge/-tap/-hostint as reversible host changes,
 * over netlink with libnl-route-3, and the tap/vhost-net fds for QEMU.
 * A link this run creates carries a per-run token as its ifalias, so undo
 * (even from the journal after a crash) deletes only what this run made. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hostroot.h"
#include "log.h"
#include "net-priv.h"
#include "net.h"
#include "util.h"

#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

void (*net_test_step)(const char *what);

void
net_step(const char *what)
{
	log_debug("net: %s", what);
	if (net_test_step != NULL)
		net_test_step(what);
}

int
net_nlerr(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NODEV: return -ENODEV;
	case NLE_PERM: return -EPERM;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_INVAL: return -EINVAL;
	case NLE_BUSY: return -EBUSY;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_NOADDR: return -EADDRNOTAVAIL;
	default: return -EIO;
	}
}

struct nl_sock *
net_nl_open(struct verr *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (sk == NULL)
		fatalx("out of memory");
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		verr_set(err, net_nlerr(r), "cannot open a netlink socket: %s "
		    "(vfio needs CAP_NET_ADMIN for -bridge and -tap)", nl_geterror(r));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

void
net_nl_close(struct nl_sock *sk)
{
	if (sk != NULL)
		nl_socket_free(sk);
}

bool
net_ifname_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (; *name != '\0'; name++) {
		if (*name == '/' || *name == ':' || (unsigned char)*name <= ' ' || *name == 0x7f)
			return false;
	}
	return true;
}

static int
name_check(const char *what, const char *name, struct verr *err)
{
	if (net_ifname_valid(name))
		return 0;
	return verr_set(err, -EINVAL, "%s name '%s' is not a valid interface name: use 1 to %d "
	    "characters without '/', ':' or spaces", what, name ? name : "", IFNAMSIZ - 1);
}

static void
mac_str(const struct nl_addr *a, char out[18])
{
	const uint8_t *b;

	out[0] = '\0';
	if (a == NULL || nl_addr_get_len(a) != 6)
		return;
	b = nl_addr_get_binary_addr(a);
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

static void
link_fill(struct rtnl_link *l, struct net_link *out)
{
	const char *s;
	int master;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", rtnl_link_get_name(l));
	out->ifindex = rtnl_link_get_ifindex(l);
	mac_str(rtnl_link_get_addr(l), out->mac);
	if ((s = rtnl_link_get_type(l)) != NULL)
		snprintf(out->kind, sizeof(out->kind), "%s", s);
	if ((s = rtnl_link_get_ifalias(l)) != NULL)
		snprintf(out->alias, sizeof(out->alias), "%s", s);
	out->up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
	if ((master = rtnl_link_get_master(l)) > 0 && if_indextoname((unsigned)master, out->master) == NULL)
		snprintf(out->master, sizeof(out->master), "#%d", master);
}

/* 1 found (and *lp held when lp), 0 missing, -errno. */
static int
link_get(struct nl_sock *sk, const char *name, struct net_link *out, struct rtnl_link **lp,
    struct verr *err)
{
	struct rtnl_link *l = NULL;
	int r = rtnl_link_get_kernel(sk, 0, name, &l);

	if (lp != NULL)
		*lp = NULL;
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
		return 0;
	if (r < 0)
		return verr_set(err, net_nlerr(r), "cannot look up interface %s over netlink: %s",
		    name, nl_geterror(r));
	if (out != NULL)
		link_fill(l, out);
	if (lp != NULL)
		*lp = l;
	else
		rtnl_link_put(l);
	return 1;
}

int
net_link_get(const char *name, struct net_link *out, struct verr *err)
{
	struct nl_sock *sk;
	int r;

	if ((r = name_check("interface", name, err)) < 0)
		return r;
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	r = link_get(sk, name, out, NULL, err);
	net_nl_close(sk);
	return r;
}

int
net_tap_name_free(char out[IFNAMSIZ], struct verr *err)
{
	struct nl_sock *sk;
	struct nl_cache *cache = NULL;
	int r, i;

	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	if ((r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0) {
		net_nl_close(sk);
		return verr_set(err, net_nlerr(r), "cannot list interfaces over netlink: %s",
		    nl_geterror(r));
	}
	for (i = 0; i < 10000; i++) {
		snprintf(out, IFNAMSIZ, "tap%d", i);
		if (rtnl_link_name2i(cache, out) == 0)
			break;
	}
	nl_cache_free(cache);
	net_nl_close(sk);
	if (i == 10000)
		return verr_set(err, -ENOSPC, "no free tapN name: name the tap with -tap");
	return 0;
}

json_t *
net_change_tap(const char *tap, const char *bridge, int uid, int gid)
{
	json_t *args = json_object();

	if (bridge != NULL && *bridge != '\0')
		json_object_set_new(args, "bridge", json_string(bridge));
	if (uid >= 0)
		json_object_set_new(args, "uid", json_integer(uid));
	if (gid >= 0)
		json_object_set_new(args, "gid", json_integer(gid));
	return json_pack("{s:s, s:s, s:o}", "action", "tap-create", "target", tap, "args", args);
}

json_t *
net_change_bridge(const char *bridge, const char *hostint)
{
	return json_pack("{s:s, s:s, s:{s:s}}", "action", "bridge-create", "target", bridge,
	    "args", "hostint", hostint);
}

/* A token unique to this change, set as the ifalias of what apply creates. */
static json_t *
token_new(void)
{
	uint8_t b[8];
	char s[32];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(b, &ts.tv_nsec, 4);
		memcpy(b + 4, &(uint32_t){ (uint32_t)getpid() }, 4);
	}
	snprintf(s, sizeof(s), "vfio-%02x%02x%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
	return json_string(s);
}

static int
link_set_up(struct nl_sock *sk, struct rtnl_link *l, bool up, struct verr *err)
{
	struct rtnl_link *c = rtnl_link_alloc();
	int r;

	if (c == NULL)
		fatalx("out of memory");
	if (up)
		rtnl_link_set_flags(c, IFF_UP);
	else
		rtnl_link_unset_flags(c, IFF_UP);
	r = rtnl_link_change(sk, l, c, 0);
	rtnl_link_put(c);
	if (r < 0)
		return verr_set(err, net_nlerr(r), "cannot bring %s %s: %s", rtnl_link_get_name(l),
		    up ? "up" : "down", nl_geterror(r));
	return 0;
}

static int
link_set_mac(struct nl_sock *sk, struct rtnl_link *l, const char *mac, struct verr *err)
{
	struct rtnl_link *c = rtnl_link_alloc();
	struct nl_addr *a = NULL;
	int r;

	if (c == NULL)
		fatalx("out of memory");
	if ((r = nl_addr_parse(mac, AF_LLC, &a)) < 0) {
		rtnl_link_put(c);
		return verr_set(err, -EINVAL, "the saved MAC address '%s' of %s is damaged",
		    mac, rtnl_link_get_name(l));
	}
	rtnl_link_set_addr(c, a);
	nl_addr_put(a);
	r = rtnl_link_change(sk, l, c, 0);
	rtnl_link_put(c);
	if (r < 0)
		return verr_set(err, net_nlerr(r), "cannot set the MAC address of %s to %s: %s",
		    rtnl_link_get_name(l), mac, nl_geterror(r));
	return 0;
}

static int
link_delete(struct nl_sock *sk, const char *name, struct verr *err)
{
	struct rtnl_link *l = rtnl_link_alloc();
	int r;

	if (l == NULL)
		fatalx("out of memory");
	rtnl_link_set_name(l, name);
	r = rtnl_link_delete(sk, l);
	rtnl_link_put(l);
	if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV)
		return verr_set(err, net_nlerr(r), "cannot delete %s: %s", name, nl_geterror(r));
	return 0;
}

/* ---- bridge-create ------------------------------------------------------ */

/* The checks prepare and apply both make: B missing, H there, H free. */
static int
bridge_check(struct nl_sock *sk, const char *br, const char *h, struct net_link *hl,
    struct verr *err)
{
	struct net_link bl;
	int r;

	if ((r = name_check("bridge", br, err)) < 0)
		return r;
	if (*h == '\0')
		return verr_set(err, -EINVAL, "creating bridge %s needs the host interface to "
		    "put in it: give -hostint", br);
	if ((r = name_check("host interface", h, err)) < 0)
		return r;
	if (strcmp(br, h) == 0)
		return verr_set(err, -EINVAL, "the bridge and the host interface are both named "
		    "%s: give the new bridge another name", br);
	if ((r = link_get(sk, br, &bl, NULL, err)) < 0)
		return r;
	if (r == 1)
		return verr_set(err, -EEXIST, "bridge %s already exists: to attach the guest to "
		    "it, use -bridge %s without -hostint", br, br);
	if ((r = link_get(sk, h, hl, NULL, err)) < 0)
		return r;
	if (r == 0)
		return verr_set(err, -ENODEV, "host interface %s does not exist: check the name "
		    "with `ip link` and give it to -hostint", h);
	if (*hl->master != '\0')
		return verr_set(err, -EBUSY, "host interface %s already belongs to bridge %s: "
		    "use -bridge %s (without -hostint) to attach the guest to that bridge",
		    h, hl->master, hl->master);
	if (strcmp(hl->kind, "bridge") == 0)
		return verr_set(err, -EINVAL, "%s is itself a bridge, not a host interface: use "
		    "-bridge %s without -hostint", h, h);
	if (*hl->mac == '\0' || strcmp(hl->mac, "00:00:00:00:00:00") == 0)
		return verr_set(err, -EINVAL, "host interface %s has no Ethernet address, so it "
		    "cannot be a bridge port: give -hostint an Ethernet interface", h);
	return 0;
}

/* "vfio" and 8 hex digits of the token: the bridge's name until it is
 * marked, unique to this change. */
static void
bridge_tmpname(const char *token, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "vfio%.8s", token + 5);
}

static int
bridge_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *br = change_str(change, "target"), *h = change_arg_str(change, "hostint");
	struct net_link hl;
	struct nl_sock *sk;
	json_t *addrs = NULL, *routes = NULL;
	bool running = false, managed = false;
	int r;

	*saved = NULL;
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	if ((r = bridge_check(sk, br, h, &hl, err)) < 0 ||
	    (r = net_addr_save(sk, hl.ifindex, &addrs, &routes, err)) < 0) {
		net_nl_close(sk);
		return r;
	}
	net_nl_close(sk);
	if ((r = net_nm_running(&running, err)) < 0 ||
	    (running && (r = net_nm_managed(h, &managed, err)) < 0)) {
		json_decref(addrs);
		json_decref(routes);
		return r;
	}
	/* master is always "" here (a bridge port is refused); kept so the
	 * journal records H's whole state. */
	*saved = json_pack("{s:o, s:{s:s, s:i, s:s, s:b, s:s}, s:o, s:o, s:{s:b, s:b}}",
	    "token", token_new(),
	    "hostint", "name", h, "ifindex", hl.ifindex, "mac", hl.mac, "up", hl.up,
	    "master", hl.master,
	    "addrs", addrs, "routes", routes,
	    "nm", "running", running, "managed", managed);
	return 0;
}

static int
bridge_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *br = change_str(change, "target"), *h = change_arg_str(change, "hostint");
	const char *token = json_string_value(json_object_get(saved, "token"));
	const json_t *addrs = json_object_get(saved, "addrs"), *routes = json_object_get(saved, "routes");
	bool nm_managed = json_is_true(json_object_get(json_object_get(saved, "nm"), "managed"));
	struct rtnl_link *bl = NULL, *hlink = NULL, *nb;
	struct nl_addr *mac = NULL;
	struct net_link hl, bi;
	char tmpname[IFNAMSIZ];
	struct nl_sock *sk;
	int r;

	if (token == NULL || strlen(token) < 13)
		return verr_set(err, -EINVAL, "bridge-create %s: the saved state has no token; "
		    "the journal is damaged", br);
	bridge_tmpname(token, tmpname);
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	/* The plan checked the snapshot; the host may have changed since. */
	if ((r = bridge_check(sk, br, h, &hl, err)) < 0)
		goto out;
	if (nm_managed) {
		if ((r = net_nm_set_managed(h, false, err)) < 0)
			goto out;
		net_step("NetworkManager lets go of the host interface");
	}

	/* The kernel ignores an ifalias given at creation, so the bridge is
	 * made under a name unique to this change and then renamed and marked
	 * in one message: whenever a crash hits, undo finds either the
	 * temporary name or B carrying the token. H's MAC is set (not
	 * inherited), so the bridge keeps it as ports come and go. */
	if ((nb = rtnl_link_bridge_alloc()) == NULL)
		fatalx("out of memory");
	rtnl_link_set_name(nb, tmpname);
	nl_addr_parse(hl.mac, AF_LLC, &mac);
	rtnl_link_set_addr(nb, mac);
	nl_addr_put(mac);
	r = rtnl_link_add(sk, nb, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(nb);
	if (r < 0) {
		r = verr_set(err, net_nlerr(r), "cannot create bridge %s: %s", br, nl_geterror(r));
		goto out;
	}
	net_step("create bridge");
	if ((r = link_get(sk, tmpname, NULL, &bl, err)) <= 0) {
		if (r == 0)
			r = verr_set(err, -ENODEV, "bridge %s vanished right after it was created", br);
		goto out;
	}
	if ((nb = rtnl_link_alloc()) == NULL)
		fatalx("out of memory");
	rtnl_link_set_name(nb, br);
	rtnl_link_set_ifalias(nb, token);
	r = rtnl_link_change(sk, bl, nb, 0);
	rtnl_link_put(nb);
	rtnl_link_put(bl);
	bl = NULL;
	if (r < 0) {
		r = verr_set(err, net_nlerr(r), "cannot name the new bridge %s: %s", br,
		    nl_geterror(r));
		goto out;
	}
	net_step("name and mark bridge");
	if ((r = link_get(sk, br, &bi, &bl, err)) <= 0) {
		if (r == 0)
			r = verr_set(err, -ENODEV, "bridge %s vanished right after it was created", br);
		goto out;
	}
	if (nm_managed) {
		struct verr nmerr = { 0 };

		/* NetworkManager learns about new links asynchronously and may not
		 * know B yet; a bridge it has no profile for is only watched, so
		 * this is worth a warning, not a failed run. */
		if (net_nm_set_managed(br, false, &nmerr) < 0)
			log_warnx("%s", nmerr.msg);
		net_step("NetworkManager leaves the bridge alone");
	}

	if ((r = net_addr_remove(sk, hl.ifindex, addrs, routes, true, err)) < 0) {
		verr_prefix(err, "moving the addresses of %s to bridge %s", h, br);
		goto out;
	}
	if ((r = rtnl_link_enslave_ifindex(sk, bi.ifindex, hl.ifindex)) < 0) {
		r = verr_set(err, net_nlerr(r), "cannot put %s into bridge %s: %s", h, br,
		    nl_geterror(r));
		goto out;
	}
	net_step("enslave host interface");
	if ((r = link_set_up(sk, bl, true, err)) < 0)
		goto out;
	net_step("bridge up");
	if (!hl.up) {
		if ((r = link_get(sk, h, NULL, &hlink, err)) <= 0) {
			if (r == 0)
				r = verr_set(err, -ENODEV, "host interface %s vanished", h);
			goto out;
		}
		if ((r = link_set_up(sk, hlink, true, err)) < 0)
			goto out;
		net_step("host interface up");
	}
	if ((r = net_addr_restore(sk, bi.ifindex, br, h, addrs, true, err)) < 0 ||
	    (r = net_route_restore(sk, bi.ifindex, routes, true, err)) < 0) {
		verr_prefix(err, "moving the addresses of %s to bridge %s", h, br);
		goto out;
	}
	r = 0;
out:
	if (bl != NULL)
		rtnl_link_put(bl);
	if (hlink != NULL)
		rtnl_link_put(hlink);
	net_nl_close(sk);
	return r;
}

static int
bridge_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *br = change_str(change, "target");
	const json_t *hs = json_object_get(saved, "hostint");
	const char *h = json_string_value(json_object_get(hs, "name"));
	const char *mac = json_string_value(json_object_get(hs, "mac"));
	const char *token = json_string_value(json_object_get(saved, "token"));
	bool was_up = json_is_true(json_object_get(hs, "up"));
	const json_t *nm = json_object_get(saved, "nm");
	struct rtnl_link *hlink = NULL;
	struct net_link bi, hl;
	struct nl_sock *sk;
	char tmpname[IFNAMSIZ];
	int r;

	if (h == NULL || token == NULL || strlen(token) < 13 || mac == NULL)
		return verr_set(err, -EINVAL, "bridge-create %s: the saved state is incomplete; "
		    "the journal is damaged", br);
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	/* A crash before the new bridge got its name leaves it under this one. */
	bridge_tmpname(token, tmpname);
	if ((r = link_delete(sk, tmpname, err)) < 0)
		goto out;

	if ((r = link_get(sk, br, &bi, NULL, err)) < 0)
		goto out;
	if (r == 1 && strcmp(bi.alias, token) == 0) {
		/* Deleting the bridge releases H and drops what was moved onto it. */
		if ((r = link_delete(sk, br, err)) < 0)
			goto out;
		log_debug("net: deleted bridge %s", br);
	} else if (r == 1) {
		log_debug("net: leaving bridge %s: this run did not create it", br);
	}

	if ((r = link_get(sk, h, &hl, &hlink, err)) < 0)
		goto out;
	if (r == 0) {
		log_warnx("host interface %s is gone: its addresses and routes cannot be put back", h);
		r = 0;
		goto nm;
	}
	if (strcmp(hl.mac, mac) != 0 && (r = link_set_mac(sk, hlink, mac, err)) < 0)
		goto out;
	if ((r = net_addr_restore(sk, hl.ifindex, h, h, json_object_get(saved, "addrs"),
	    false, err)) < 0)
		goto out;
	if (was_up && !hl.up && (r = link_set_up(sk, hlink, true, err)) < 0)
		goto out;
	if ((r = net_route_restore(sk, hl.ifindex, json_object_get(saved, "routes"), false,
	    err)) < 0)
		goto out;
	if (!was_up && hl.up && (r = link_set_up(sk, hlink, false, err)) < 0)
		goto out;
nm:
	/* Only with H present (NM cannot manage what is gone) and NM running:
	 * `managed no` is runtime state, so a NetworkManager that stopped or
	 * restarted since has nothing to hand back. */
	if (json_is_true(json_object_get(nm, "managed")) && r == 0 && hlink != NULL) {
		bool running = false;

		if ((r = net_nm_running(&running, err)) == 0 && running)
			r = net_nm_set_managed(h, true, err);
	}
out:
	if (hlink != NULL)
		rtnl_link_put(hlink);
	net_nl_close(sk);
	return r;
}

const struct change_ops net_bridge_create_ops = {
	.action = "bridge-create",
	.prepare = bridge_prepare,
	.apply = bridge_apply,
	.undo = bridge_undo,
	/* nmcli runs and waits. */
	.may_block = true,
};

/* ---- tap-create --------------------------------------------------------- */

static int
tap_fd_open(struct verr *err)
{
	char path[4096];
	int fd;

	if (host_path(path, sizeof(path), "/dev/net/tun") == NULL)
		return verr_set(err, -ENAMETOOLONG, "the host root is too long for /dev/net/tun");
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return verr_set(err, -errno, "cannot open %s: %s (load the tun module: "
		    "modprobe tun)", path, strerror(errno));
	return fd;
}

static int
tap_mark(struct nl_sock *sk, struct rtnl_link *l, const char *token, struct verr *err)
{
	struct rtnl_link *c = rtnl_link_alloc();
	struct nl_addr *a = NULL;
	char mac[18];
	int r;

	if (c == NULL)
		fatalx("out of memory");
	snprintf(mac, sizeof(mac), "fe:%.2s:%.2s:%.2s:%.2s:%.2s", token + 5, token + 7,
	    token + 9, token + 11, token + 13);
	if (nl_addr_parse(mac, AF_LLC, &a) == 0) {
		rtnl_link_set_addr(c, a);
		nl_addr_put(a);
	}
	rtnl_link_set_ifalias(c, token);
	r = rtnl_link_change(sk, l, c, 0);
	rtnl_link_put(c);
	if (r < 0)
		return verr_set(err, net_nlerr(r), "cannot mark tap %s as made by vfio: %s",
		    rtnl_link_get_name(l), nl_geterror(r));
	return 0;
}

static int
tap_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	const char *tap = change_str(change, "target"), *br = change_arg_str(change, "bridge");
	struct net_link tl, bl;
	struct nl_sock *sk;
	int r, exists;

	*saved = NULL;
	if ((r = name_check("tap", tap, err)) < 0)
		return r;
	if (*br != '\0' && (r = name_check("bridge", br, err)) < 0)
		return r;
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	if ((exists = link_get(sk, tap, &tl, NULL, err)) < 0) {
		net_nl_close(sk);
		return exists;
	}
	if (exists && strcmp(tl.kind, "tun") != 0) {
		net_nl_close(sk);
		return verr_set(err, -EEXIST, "%s exists and is not a tap (it is a %s link): "
		    "name another tap with -tap", tap, *tl.kind ? tl.kind : "physical");
	}
	if (*br != '\0' && !exists) {
		if ((r = link_get(sk, br, &bl, NULL, err)) < 0) {
			net_nl_close(sk);
			return r;
		}
		if (r == 0 || strcmp(bl.kind, "bridge") != 0) {
			net_nl_close(sk);
			return verr_set(err, r == 0 ? -ENODEV : -EINVAL, r == 0 ?
			    "bridge %s does not exist: create it, or give -hostint to have vfio "
			    "create it" : "%s is not a bridge: give -bridge an existing bridge",
			    br);
		}
	}
	net_nl_close(sk);
	*saved = json_pack("{s:o, s:b}", "token", token_new(), "existed", exists == 1);
	return 0;
}

static int
tap_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *tap = change_str(change, "target"), *br = change_arg_str(change, "bridge");
	const char *token = json_string_value(json_object_get(saved, "token"));
	json_int_t uid = change_arg_int(change, "uid", -1), gid = change_arg_int(change, "gid", -1);
	struct rtnl_link *tl = NULL;
	struct net_link bl;
	struct nl_sock *sk = NULL;
	struct ifreq ifr;
	int fd = -1, r;

	if (token == NULL || strlen(token) < 15)
		return verr_set(err, -EINVAL, "tap-create %s: the saved state has no token; "
		    "the journal is damaged", tap);
	if (json_is_true(json_object_get(saved, "existed"))) {
		log_debug("net: tap %s already existed; using it as it is", tap);
		return 0;
	}
	if ((r = name_check("tap", tap, err)) < 0)
		return r;
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	if (*br != '\0') {
		if ((r = link_get(sk, br, &bl, NULL, err)) < 0)
			goto out;
		if (r == 0 || strcmp(bl.kind, "bridge") != 0) {
			r = verr_set(err, -ENODEV, "bridge %s for tap %s is %s", br, tap,
			    r == 0 ? "gone" : "not a bridge");
			goto out;
		}
	}
	if ((fd = tap_fd_open(err)) < 0) {
		r = fd;
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	/* IFF_TUN_EXCL: fail rather than take over a tap that appeared since
	 * prepare, which undo would then delete. */
	ifr.ifr_flags = (short)(TAP_FLAGS | IFF_TUN_EXCL);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = verr_set(err, -errno, errno == EBUSY ?
		    "cannot create tap %s: an interface with that name appeared meanwhile" :
		    "cannot create tap %s: %s", tap, strerror(errno));
		goto out;
	}
	if ((uid >= 0 && ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0) ||
	    (gid >= 0 && ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)) {
		r = verr_set(err, -errno, "cannot give tap %s to uid %lld gid %lld: %s", tap,
		    (long long)uid, (long long)gid, strerror(errno));
		goto out;   /* not persistent yet: closing fd removes it */
	}
	if (ioctl(fd, TUNSETPERSIST, 1UL) < 0) {
		r = verr_set(err, -errno, "cannot make tap %s persistent: %s", tap, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	net_step("create tap");

	if ((r = link_get(sk, tap, NULL, &tl, err)) <= 0) {
		if (r == 0)
			r = verr_set(err, -ENODEV, "tap %s vanished right after it was created", tap);
		goto out;
	}
	/* Marked, and given a MAC starting fe: as libvirt does: a bridge takes
	 * the lowest MAC of its ports, and must not take the tap's and change
	 * its own address on the LAN while the guest runs. */
	if ((r = tap_mark(sk, tl, token, err)) < 0)
		goto out;
	net_step("mark tap");
	if (*br != '\0') {
		if ((r = rtnl_link_enslave_ifindex(sk, bl.ifindex, rtnl_link_get_ifindex(tl))) < 0) {
			r = verr_set(err, net_nlerr(r), "cannot put tap %s into bridge %s: %s", tap,
			    br, nl_geterror(r));
			goto out;
		}
		net_step("enslave tap");
	}
	if ((r = link_set_up(sk, tl, true, err)) < 0)
		goto out;
	net_step("tap up");
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tl != NULL)
		rtnl_link_put(tl);
	net_nl_close(sk);
	return r;
}

static int
tap_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *tap = change_str(change, "target");
	const char *token = json_string_value(json_object_get(saved, "token"));
	struct net_link tl;
	struct nl_sock *sk;
	int r;

	if (!json_is_boolean(json_object_get(saved, "existed")) || token == NULL)
		return verr_set(err, -EINVAL, "tap-create %s: the saved state is incomplete; "
		    "the journal is damaged", tap);
	if (json_is_true(json_object_get(saved, "existed")))
		return 0;   /* the user's tap: left as it was */
	if (!net_ifname_valid(tap))
		return 0;   /* apply refused it; nothing was made */
	if ((sk = net_nl_open(err)) == NULL)
		return err ? err->code : -EIO;
	if ((r = link_get(sk, tap, &tl, NULL, err)) == 1) {
		/* A crash between TUNSETPERSIST and setting the alias leaves no
		 * alias; any other alias means someone else's link. */
		if (strcmp(tl.kind, "tun") == 0 && (*tl.alias == '\0' || strcmp(tl.alias, token) == 0)) {
			r = link_delete(sk, tap, err);
			log_debug("net: deleted tap %s", tap);
		} else {
			log_warnx("leaving %s: it is not the tap this run created", tap);
			r = 0;
		}
	}
	net_nl_close(sk);
	return r;
}

const struct change_ops net_tap_create_ops = {
	.action = "tap-create",
	.prepare = tap_prepare,
	.apply = tap_apply,
	.undo = tap_undo,
	.may_block = false,
};

/* ---- fds for QEMU ------------------------------------------------------- */

int
net_tap_open(const char *name, int *fd, struct verr *err)
{
	struct net_link tl;
	struct ifreq ifr;
	int r, tfd;

	*fd = -1;
	/* TUNSETIFF would create a missing tap on the fly (gone again when QEMU
	 * exits, never journaled): look first. */
	if ((r = net_link_get(name, &tl, err)) < 0)
		return verr_prefix(err, "opening tap %s", name ? name : "");
	if (r == 0)
		return verr_set(err, -ENODEV, "tap %s does not exist: create it first (-tap %s "
		    "makes it)", name, name);
	if (strcmp(tl.kind, "tun") != 0)
		return verr_set(err, -EINVAL, "%s is not a tap (it is a %s link): give -tap a tap "
		    "interface", name, *tl.kind ? tl.kind : "physical");
	if ((tfd = tap_fd_open(err)) < 0)
		return tfd;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = (short)TAP_FLAGS;
	if (ioctl(tfd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		close(tfd);
		if (e == EBUSY)
			return verr_set(err, -e, "tap %s is in use by another program (another "
			    "QEMU?): stop it, or use another -tap", name);
		if (e == EINVAL)
			return verr_set(err, -e, "%s is a tun (layer 3) or multiqueue device, not a "
			    "plain tap: recreate it with `ip tuntap add %s mode tap`, or let vfio "
			    "create a tap", name, name);
		if (e == EPERM)
			return verr_set(err, -e, "tap %s belongs to another user: run vfio as root "
			    "or as the tap's owner", name);
		return verr_set(err, -e, "cannot attach to tap %s: %s", name, strerror(e));
	}
	*fd = tfd;
	return 0;
}

int
net_vhost_open(int *fd, struct verr *err)
{
	char path[4096];

	*fd = -1;
	if (host_path(path, sizeof(path), "/dev/vhost-net") == NULL)
		return verr_set(err, -ENAMETOOLONG, "the host root is too long for /dev/vhost-net");
	if ((*fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return verr_set(err, -errno, "cannot open %s: %s (load the vhost_net module, or "
		    "the guest's network goes without vhost acceleration)", path, strerror(errno));
	return 0;
}

/* ---- guest MAC ---------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
net_guest_mac(const char *host_mac, const uint8_t random3[3], char out[18])
{
	uint8_t b[6];
	bool ok = host_mac != NULL && strlen(host_mac) == 17 &&
	    strcmp(host_mac, "00:00:00:00:00:00") != 0;   /* a bridge with no ports */

	for (int i = 0; ok && i < 6; i++) {
		const char *p = host_mac + i * 3;
		int hi = hexval(p[0]), lo = hexval(p[1]);

		ok = hi >= 0 && lo >= 0 && (i == 5 || p[2] == ':');
		if (ok)
			b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (ok) {
		snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[3], b[4], b[5]);
		return true;
	}
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", random3[0], random3[1], random3[2]);
	return false;
}
