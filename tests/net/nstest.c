/* Namespace fixtures and a netlink dump for the net tests. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net-priv.h"
#include "nstest.h"
#include "util.h"

static int
write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

int
ns_enter(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	/* /proc/sys/net follows the namespace of the process that opens it. */
	write_file("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
	write_file("/proc/sys/net/ipv6/conf/all/accept_dad", "0");
	return sh("ip link set lo up") == 0 ? 0 : -1;
}

bool
ns_available(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) == 0 && sh("ip link set lo up") == 0 ? 0 : 1);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int
sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *full;
	int status;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	full = xasprintf("%s >/dev/null 2>&1 || { echo 'fixture command failed: %s' >&2; exit 1; }",
	    cmd, cmd);
	status = system(full);
	free(cmd);
	free(full);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
must(const char *cmd)
{
	if (sh("%s", cmd) != 0) {
		fprintf(stderr, "fixture failed: %s\n", cmd);
		abort();
	}
}

void
lan_make(void)
{
	must("ip link add lan0 address 02:11:22:33:44:55 type veth peer name lan0p");
	must("ip link set lan0 up");
	must("ip link set lan0p up");
	must("ip addr add 192.168.50.2/24 brd + dev lan0");
	must("ip addr add 192.168.50.3/24 dev lan0");
	must("ip addr add 10.77.0.2/16 dev lan0 label lan0:x");
	must("ip -6 addr add fd00:50::2/64 dev lan0 nodad");
	must("ip -6 addr add fd00:51::2/64 dev lan0 nodad noprefixroute");
	must("ip route add default via 192.168.50.1 dev lan0");
	must("ip route add 10.9.0.0/16 via 192.168.50.254 dev lan0 metric 50 proto static");
	must("ip route add 172.30.0.0/24 dev lan0 scope link src 192.168.50.3");
	must("ip -6 route add default via fd00:50::1 dev lan0");
	must("ip -6 route add fd00:99::/48 via fd00:50::fe dev lan0 metric 7");
	/* IPv6 finishes addresses from a kernel work item: wait until both ends
	 * have their link-local address and lan0 the local routes of its own,
	 * so "before" dumps are complete. */
	must("for i in $(seq 200); do t=$(ip -6 route show table local); "
	    "[ $(echo \"$t\" | grep -c 'local fe80') -ge 2 ] && echo \"$t\" | grep -q fd00:50::2 && "
	    "echo \"$t\" | grep -q fd00:51::2 && exit 0; sleep 0.025; done; exit 1");
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct dump {
	struct strv lines;
	struct nl_cache *links;
};

static const char *
ifname(struct dump *d, int ifindex, char *buf)
{
	if (rtnl_link_i2name(d->links, ifindex, buf, IFNAMSIZ) == NULL)
		snprintf(buf, IFNAMSIZ, "#%d", ifindex);
	return buf;
}

static void
dump_link(struct nl_object *o, void *arg)
{
	struct dump *d = arg;
	struct rtnl_link *l = (struct rtnl_link *)o;
	char mac[64], m[IFNAMSIZ];

	nl_addr2str(rtnl_link_get_addr(l), mac, sizeof(mac));
	strv_pushf(&d->lines, "link %s kind=%s master=%s mac=%s up=%d mtu=%u alias=%s",
	    rtnl_link_get_name(l), rtnl_link_get_type(l) ?: "",
	    rtnl_link_get_master(l) ? ifname(d, rtnl_link_get_master(l), m) : "",
	    mac, (rtnl_link_get_flags(l) & IFF_UP) != 0, rtnl_link_get_mtu(l),
	    rtnl_link_get_ifalias(l) ?: "");
}

static void
dump_addr(struct nl_object *o, void *arg)
{
	struct dump *d = arg;
	struct rtnl_addr *a = (struct rtnl_addr *)o;
	char loc[128], brd[128], n[IFNAMSIZ];

	nl_addr2str(rtnl_addr_get_local(a), loc, sizeof(loc));
	if (rtnl_addr_get_broadcast(a))
		nl_addr2str(rtnl_addr_get_broadcast(a), brd, sizeof(brd));
	else
		brd[0] = '\0';
	strv_pushf(&d->lines, "addr %s %s plen=%d scope=%d flags=%#x brd=%s label=%s",
	    ifname(d, rtnl_addr_get_ifindex(a), n), loc, rtnl_addr_get_prefixlen(a),
	    rtnl_addr_get_scope(a), rtnl_addr_get_flags(a) & ~IFA_F_TENTATIVE, brd,
	    rtnl_addr_get_label(a) ?: "");
}

static void
dump_route(struct nl_object *o, void *arg)
{
	struct dump *d = arg;
	struct rtnl_route *r = (struct rtnl_route *)o;
	char dst[128], gw[128] = "", src[128] = "", n[IFNAMSIZ] = "";
	struct rtnl_nexthop *nh;

	nl_addr2str(rtnl_route_get_dst(r), dst, sizeof(dst));
	if (rtnl_route_get_nnexthops(r) > 0) {
		nh = rtnl_route_nexthop_n(r, 0);
		ifname(d, rtnl_route_nh_get_ifindex(nh), n);
		if (rtnl_route_nh_get_gateway(nh))
			nl_addr2str(rtnl_route_nh_get_gateway(nh), gw, sizeof(gw));
	}
	if (rtnl_route_get_pref_src(r))
		nl_addr2str(rtnl_route_get_pref_src(r), src, sizeof(src));
	strv_pushf(&d->lines, "route fam=%d table=%u %s plen=%d via=%s dev=%s proto=%d scope=%d "
	    "type=%d metric=%u src=%s", rtnl_route_get_family(r), rtnl_route_get_table(r), dst,
	    nl_addr_get_prefixlen(rtnl_route_get_dst(r)), gw, n, rtnl_route_get_protocol(r),
	    rtnl_route_get_scope(r), rtnl_route_get_type(r), rtnl_route_get_priority(r), src);
}

char *
ns_dump(void)
{
	struct dump d = { 0 };
	struct nl_sock *sk = net_nl_open(NULL);
	struct nl_cache *c;
	struct strbuf sb = { 0 };

	if (sk == NULL || rtnl_link_alloc_cache(sk, AF_UNSPEC, &d.links) < 0)
		abort();
	nl_cache_foreach(d.links, dump_link, &d);
	if (rtnl_addr_alloc_cache(sk, &c) < 0)
		abort();
	nl_cache_foreach(c, dump_addr, &d);
	nl_cache_free(c);
	if (rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &c) < 0)
		abort();
	nl_cache_foreach(c, dump_route, &d);
	nl_cache_free(c);
	nl_cache_free(d.links);
	net_nl_close(sk);
	qsort(d.lines.v, d.lines.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < d.lines.n; i++) {
		strbuf_puts(&sb, d.lines.v[i]);
		strbuf_puts(&sb, "\n");
	}
	strv_free(&d.lines);
	strbuf_puts(&sb, "");
	return strbuf_steal(&sb);
}

bool
dump_has(const char *dump, const char *needle)
{
	return strstr(dump, needle) != NULL;
}

json_t *
change_make(const char *action, const char *target, const char *args_json)
{
	json_t *args = json_loads(args_json ? args_json : "{}", 0, NULL);

	if (args == NULL)
		abort();
	return json_pack("{s:s, s:s, s:o}", "action", action, "target", target, "args", args);
}

static int crash_at, crash_seen;

static void
crash_hook(const char *what)
{
	if (++crash_seen == crash_at) {
		fprintf(stderr, "test: killing apply after step %d (%s)\n", crash_seen, what);
		_exit(42);
	}
}

int
apply_crash_at(const struct change_ops *ops, const json_t *change, const json_t *saved, int n)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct verr err = { 0 };

		crash_at = n;
		crash_seen = 0;
		net_test_step = crash_hook;
		if (ops->apply(change, saved, &err) < 0) {
			fprintf(stderr, "test: apply failed: %s\n", err.msg);
			_exit(1);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	switch (WEXITSTATUS(status)) {
	case 42: return 1;
	case 0: return 0;
	default: return -1;
	}
}

char *
slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	struct strbuf sb = { 0 };
	char buf[512];
	size_t n;

	strbuf_puts(&sb, "");
	if (f == NULL)
		return strbuf_steal(&sb);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_steal(&sb);
}

static bool
has_line(const char *text, const char *line, size_t len)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == len && strncmp(p, line, len) == 0)
			return true;
	}
	return false;
}

static void
print_missing(const char *tag, const char *a, const char *b)
{
	for (const char *p = a; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (!has_line(b, p, l))
			fprintf(stderr, "%s %.*s\n", tag, (int)l, p);
	}
}

bool
dump_same(const char *before, const char *after)
{
	if (strcmp(before, after) == 0)
		return true;
	fprintf(stderr, "the namespace differs from before:\n");
	print_missing("  gone:", before, after);
	print_missing("  new: ", after, before);
	return false;
}

char *
ns_dump_expect(const char *expect)
{
	char *d = NULL;

	/* IPv6 adds an address's local route from a kernel work item, a little
	 * after the netlink request returns: wait for it, generously. */
	for (int i = 0; i < 200; i++) {
		free(d);
		d = ns_dump();
		if (strcmp(d, expect) == 0)
			break;
		usleep(25 * 1000);
	}
	return d;
}

void
lan_bridge_settled(const char *br)
{
	/* The kernel gives an up bridge with a port its IPv6 link-local address
	 * (and that address's local route) from a work item: wait for both. */
	if (sh("for i in $(seq 200); do ip -6 route show table local dev %s | grep -q fe80 "
	    "&& exit 0; sleep 0.025; done; exit 1", br) != 0) {
		fprintf(stderr, "bridge %s never got its link-local address\n", br);
		abort();
	}
}

json_t *
journal_roundtrip(const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	json_t *back;

	if (text == NULL || (back = json_loads(text, 0, NULL)) == NULL)
		abort();
	free(text);
	return back;
}
