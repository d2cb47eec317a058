/* Moving a host interface's IP configuration: bridge-create takes H's
 * addresses and routes over to the new bridge instead of running a DHCP
 * client on it (instant, and static addresses work), and undo puts them back
 * on H. Everything is saved as JSON in the journal, so a `vfio -restore`
 * after a crash can put H back from the journal alone. */
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "net-priv.h"
#include "util.h"

#define LIFETIME_FOREVER 0xffffffffu

static int
family_json(int family)
{
	return family == AF_INET6 ? 6 : 4;
}

static int
family_af(const json_t *o)
{
	return json_integer_value(json_object_get(o, "family")) == 6 ? AF_INET6 : AF_INET;
}

/* An address without its prefix length ("192.168.1.2", "fd00::2"). */
static char *
addr_str(const struct nl_addr *a, char *buf, size_t len)
{
	struct nl_addr *c = nl_addr_clone(a);

	if (c == NULL)
		fatalx("out of memory");
	nl_addr_set_prefixlen(c, nl_addr_get_len(c) * 8);
	nl_addr2str(c, buf, len);
	nl_addr_put(c);
	return buf;
}

static int
json_addr(const json_t *o, const char *key, int family, struct nl_addr **out)
{
	const char *s = json_string_value(json_object_get(o, key));

	*out = NULL;
	if (s == NULL)
		return 0;
	return nl_addr_parse(s, family, out);
}

static void
save_addr(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	json_t **ctx = arg;   /* [0] array, [1] ifindex as an integer */
	int family = rtnl_addr_get_family(a);
	struct nl_addr *local = rtnl_addr_get_local(a), *brd = rtnl_addr_get_broadcast(a);
	char buf[INET6_ADDRSTRLEN + 8];
	json_t *o;

	if (rtnl_addr_get_ifindex(a) != json_integer_value(ctx[1]))
		return;
	if ((family != AF_INET && family != AF_INET6) || local == NULL)
		return;
	/* Link-local and host-scope addresses belong to the link itself: the
	 * kernel makes the bridge's own and keeps H's. */
	if (rtnl_addr_get_scope(a) >= RT_SCOPE_LINK)
		return;
	/* IPv6 privacy addresses are made by the kernel from their
	 * mngtmpaddr parent, which is moved. */
	if (family == AF_INET6 && (rtnl_addr_get_flags(a) & IFA_F_TEMPORARY))
		return;   /* (the same bit means "secondary" for IPv4) */
	if (rtnl_addr_get_peer(a) != NULL &&
	    nl_addr_cmp(rtnl_addr_get_peer(a), local) != 0) {
		log_debug("net: not moving point-to-point address %s",
		    addr_str(local, buf, sizeof(buf)));
		return;
	}
	o = json_pack("{s:i, s:s, s:i, s:i, s:i}",
	    "family", family_json(family),
	    "local", addr_str(local, buf, sizeof(buf)),
	    "prefixlen", rtnl_addr_get_prefixlen(a),
	    "scope", rtnl_addr_get_scope(a),
	    "flags", (int)rtnl_addr_get_flags(a));
	if (brd != NULL && nl_addr_get_len(brd) > 0)
		json_object_set_new(o, "broadcast", json_string(addr_str(brd, buf, sizeof(buf))));
	if (rtnl_addr_get_label(a) != NULL && *rtnl_addr_get_label(a) != '\0')
		json_object_set_new(o, "label", json_string(rtnl_addr_get_label(a)));
	if (rtnl_addr_get_valid_lifetime(a) != LIFETIME_FOREVER) {
		json_object_set_new(o, "valid_lft", json_integer(rtnl_addr_get_valid_lifetime(a)));
		json_object_set_new(o, "preferred_lft",
		    json_integer(rtnl_addr_get_preferred_lifetime(a)));
	}
	json_array_append_new(ctx[0], o);
}

static void
save_route(struct nl_object *obj, void *arg)
{
	struct rtnl_route *r = (struct rtnl_route *)obj;
	json_t **ctx = arg;
	int family = rtnl_route_get_family(r);
	struct rtnl_nexthop *nh;
	struct nl_addr *dst, *gw, *src;
	char buf[INET6_ADDRSTRLEN + 8];
	json_t *o;

	if (family != AF_INET && family != AF_INET6)
		return;
	if (rtnl_route_get_nnexthops(r) != 1)
		return;
	nh = rtnl_route_nexthop_n(r, 0);
	if (rtnl_route_nh_get_ifindex(nh) != json_integer_value(ctx[1]))
		return;
	/* The kernel makes these again when the address or link comes back. */
	if (rtnl_route_get_table(r) == RT_TABLE_LOCAL ||
	    rtnl_route_get_protocol(r) == RTPROT_KERNEL ||
	    rtnl_route_get_type(r) != RTN_UNICAST)
		return;
	dst = rtnl_route_get_dst(r);
	o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
	    "family", family_json(family),
	    "table", (int)rtnl_route_get_table(r),
	    "protocol", rtnl_route_get_protocol(r),
	    "scope", rtnl_route_get_scope(r),
	    "type", rtnl_route_get_type(r),
	    "priority", (int)rtnl_route_get_priority(r),
	    "nhflags", (int)(rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK));
	if (dst != NULL && nl_addr_get_len(dst) > 0) {
		addr_str(dst, buf, sizeof(buf));
		json_object_set_new(o, "dst", json_string(buf));
		json_object_set_new(o, "dstlen", json_integer(nl_addr_get_prefixlen(dst)));
	} else {
		json_object_set_new(o, "dst", json_string("default"));
		json_object_set_new(o, "dstlen", json_integer(0));
	}
	if ((gw = rtnl_route_nh_get_gateway(nh)) != NULL && nl_addr_get_len(gw) > 0)
		json_object_set_new(o, "gateway", json_string(addr_str(gw, buf, sizeof(buf))));
	if ((src = rtnl_route_get_pref_src(r)) != NULL && nl_addr_get_len(src) > 0)
		json_object_set_new(o, "prefsrc", json_string(addr_str(src, buf, sizeof(buf))));
	json_array_append_new(ctx[0], o);
}

int
net_addr_save(struct nl_sock *sk, int ifindex, json_t **addrs, json_t **routes,
    struct verr *err)
{
	struct nl_cache *cache = NULL;
	json_t *ctx[2];
	int r;

	*addrs = json_array();
	*routes = json_array();
	ctx[1] = json_integer(ifindex);

	if ((r = rtnl_addr_alloc_cache(sk, &cache)) < 0) {
		verr_set(err, net_nlerr(r), "cannot list the host's addresses over netlink: %s",
		    nl_geterror(r));
		goto fail;
	}
	ctx[0] = *addrs;
	nl_cache_foreach(cache, save_addr, ctx);
	nl_cache_free(cache);

	if ((r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &cache)) < 0) {
		verr_set(err, net_nlerr(r), "cannot list the host's routes over netlink: %s",
		    nl_geterror(r));
		goto fail;
	}
	ctx[0] = *routes;
	nl_cache_foreach(cache, save_route, ctx);
	nl_cache_free(cache);
	json_decref(ctx[1]);
	return 0;
fail:
	json_decref(ctx[1]);
	json_decref(*addrs);
	json_decref(*routes);
	*addrs = *routes = NULL;
	return r < 0 ? net_nlerr(r) : -EIO;
}

/* Build the libnl address object for one saved entry on IFINDEX. */
static struct rtnl_addr *
addr_build(const json_t *o, int ifindex, const char *ifname, const char *from,
    bool for_add, struct verr *err)
{
	int family = family_af(o);
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = NULL, *brd = NULL;
	const char *label = json_string_value(json_object_get(o, "label"));
	int r;

	if (a == NULL)
		fatalx("out of memory");
	if ((r = json_addr(o, "local", family, &local)) < 0 || local == NULL) {
		verr_set(err, -EINVAL, "the saved address %s is not an address: the journal is damaged",
		    json_string_value(json_object_get(o, "local")) ?: "(none)");
		rtnl_addr_put(a);
		return NULL;
	}
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, family);
	rtnl_addr_set_local(a, local);
	rtnl_addr_set_prefixlen(a, (int)json_integer_value(json_object_get(o, "prefixlen")));
	nl_addr_put(local);
	if (!for_add)
		return a;
	rtnl_addr_set_scope(a, (int)json_integer_value(json_object_get(o, "scope")));
	/* The kernel decides these itself; asking for them is refused or ignored. */
	rtnl_addr_set_flags(a, (unsigned)json_integer_value(json_object_get(o, "flags")) &
	    ~(unsigned)(IFA_F_SECONDARY | IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED |
	    IFA_F_PERMANENT | IFA_F_TEMPORARY));
	if (json_addr(o, "broadcast", family, &brd) == 0 && brd != NULL) {
		rtnl_addr_set_broadcast(a, brd);
		nl_addr_put(brd);
	}
	/* An IPv4 label must start with the interface's name: "eth0:1" moved
	 * to br0 becomes "br0:1". */
	if (label != NULL && family == AF_INET) {
		size_t fl = strlen(from);
		char nl[IFNAMSIZ * 2];

		if (strncmp(label, from, fl) == 0)
			snprintf(nl, sizeof(nl), "%s%s", ifname, label + fl);
		else
			snprintf(nl, sizeof(nl), "%s", ifname);
		if (strlen(nl) < IFNAMSIZ)
			rtnl_addr_set_label(a, nl);
	}
	/* A leased (DHCP, SLAAC) address goes onto the bridge without its
	 * lifetime: the client renewing it watched H and is stopped or
	 * pointed away for the run, and the host must not lose its address
	 * halfway through. Back on H it gets the lifetime it had, so the
	 * client renews it from there. */
	if (json_object_get(o, "valid_lft") != NULL && strcmp(ifname, from) == 0) {
		rtnl_addr_set_valid_lifetime(a,
		    (uint32_t)json_integer_value(json_object_get(o, "valid_lft")));
		rtnl_addr_set_preferred_lifetime(a,
		    (uint32_t)json_integer_value(json_object_get(o, "preferred_lft")));
	}
	return a;
}

static struct rtnl_route *
route_build(const json_t *o, int ifindex, bool for_add, struct verr *err)
{
	int family = family_af(o);
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst = NULL, *gw = NULL, *src = NULL;
	const char *dstr = json_string_value(json_object_get(o, "dst"));

	if (rt == NULL || nh == NULL)
		fatalx("out of memory");
	if (dstr == NULL || nl_addr_parse(dstr, family, &dst) < 0) {
		verr_set(err, -EINVAL, "the saved route to %s is damaged in the journal",
		    dstr ?: "(none)");
		rtnl_route_put(rt);
		rtnl_route_nh_free(nh);
		return NULL;
	}
	nl_addr_set_prefixlen(dst, (int)json_integer_value(json_object_get(o, "dstlen")));
	rtnl_route_set_family(rt, (uint8_t)family);
	rtnl_route_set_dst(rt, dst);
	nl_addr_put(dst);
	rtnl_route_set_table(rt, (uint32_t)json_integer_value(json_object_get(o, "table")));
	rtnl_route_set_priority(rt, (uint32_t)json_integer_value(json_object_get(o, "priority")));
	rtnl_route_set_type(rt, (uint8_t)json_integer_value(json_object_get(o, "type")));
	/* Removal matches on every attribute too, so only this exact route goes. */
	rtnl_route_set_protocol(rt, (uint8_t)json_integer_value(json_object_get(o, "protocol")));
	rtnl_route_set_scope(rt, (uint8_t)json_integer_value(json_object_get(o, "scope")));
	if (json_addr(o, "prefsrc", family, &src) == 0 && src != NULL) {
		rtnl_route_set_pref_src(rt, src);
		nl_addr_put(src);
	}
	if (for_add)
		rtnl_route_nh_set_flags(nh,
		    (unsigned)json_integer_value(json_object_get(o, "nhflags")) & RTNH_F_ONLINK);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (json_addr(o, "gateway", family, &gw) == 0 && gw != NULL) {
		rtnl_route_nh_set_gateway(nh, gw);
		nl_addr_put(gw);
	}
	rtnl_route_add_nexthop(rt, nh);
	return rt;
}

static const char *
json_desc(const json_t *o, char *buf, size_t len)
{
	const char *gw = json_string_value(json_object_get(o, "gateway"));
	const char *a = json_string_value(json_object_get(o, "local"));
	const char *dst = json_string_value(json_object_get(o, "dst"));
	int dstlen = (int)json_integer_value(json_object_get(o, "dstlen"));

	if (a != NULL)
		snprintf(buf, len, "address %s/%d", a,
		    (int)json_integer_value(json_object_get(o, "prefixlen")));
	else if (dstlen > 0)
		snprintf(buf, len, "route to %s/%d%s%s", dst ?: "?", dstlen,
		    gw ? " via " : "", gw ?: "");
	else
		snprintf(buf, len, "route to %s%s%s", dst ?: "?", gw ? " via " : "", gw ?: "");
	return buf;
}

int
net_addr_remove(struct nl_sock *sk, int ifindex, const json_t *addrs,
    const json_t *routes, bool step, struct verr *err)
{
	size_t i;
	const json_t *o;
	char desc[128];
	int r;

	json_array_foreach(routes, i, o) {
		struct rtnl_route *rt = route_build(o, ifindex, false, err);

		if (rt == NULL)
			return err ? err->code : -EINVAL;
		r = rtnl_route_delete(sk, rt, 0);
		rtnl_route_put(rt);
		if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NOADDR) {
			return verr_set(err, net_nlerr(r), "cannot remove the %s: %s",
			    json_desc(o, desc, sizeof(desc)), nl_geterror(r));
		}
		if (step)
			net_step("remove route");
	}
	/* Newest (secondary) IPv4 addresses first: removing a primary takes
	 * its secondaries with it. */
	for (i = json_array_size(addrs); i-- > 0;) {
		struct rtnl_addr *a;

		o = json_array_get(addrs, i);
		if ((a = addr_build(o, ifindex, "", "", false, err)) == NULL)
			return err ? err->code : -EINVAL;
		r = rtnl_addr_delete(sk, a, 0);
		rtnl_addr_put(a);
		if (r < 0 && r != -NLE_NOADDR && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV) {
			return verr_set(err, net_nlerr(r), "cannot remove the %s: %s",
			    json_desc(o, desc, sizeof(desc)), nl_geterror(r));
		}
		if (step)
			net_step("remove address");
	}
	return 0;
}

int
net_addr_restore(struct nl_sock *sk, int ifindex, const char *ifname, const char *from,
    const json_t *addrs, bool step, struct verr *err)
{
	size_t i;
	const json_t *o;
	char desc[128];
	int r;

	json_array_foreach(addrs, i, o) {
		struct rtnl_addr *a = addr_build(o, ifindex, ifname, from, true, err);

		if (a == NULL)
			return err ? err->code : -EINVAL;
		r = rtnl_addr_add(sk, a, NLM_F_EXCL);
		rtnl_addr_put(a);
		if (r < 0 && r != -NLE_EXIST)
			return verr_set(err, net_nlerr(r), "cannot put the %s on %s: %s",
			    json_desc(o, desc, sizeof(desc)), ifname, nl_geterror(r));
		if (step)
			net_step("add address");
	}
	return 0;
}

int
net_route_restore(struct nl_sock *sk, int ifindex, const json_t *routes, bool step,
    struct verr *err)
{
	size_t i;
	const json_t *o;
	char desc[128];
	int r;

	json_array_foreach(routes, i, o) {
		struct rtnl_route *rt = route_build(o, ifindex, true, err);

		if (rt == NULL)
			return err ? err->code : -EINVAL;
		r = rtnl_route_add(sk, rt, NLM_F_EXCL);
		rtnl_route_put(rt);
		if (r < 0 && r != -NLE_EXIST)
			return verr_set(err, net_nlerr(r), "cannot put back the %s: %s",
			    json_desc(o, desc, sizeof(desc)), nl_geterror(r));
		if (step)
			net_step("add route");
	}
	return 0;
}
