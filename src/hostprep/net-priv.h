/* Internals of the net area shared by net.c, net-addr.c, net-nm.c and the
 * tests under tests/net. Not an API for other areas. */
#ifndef VFIO_NET_PRIV_H
#define VFIO_NET_PRIV_H

#include <jansson.h>
#include <stdbool.h>

#include "verr.h"

struct nl_sock;

/* A connected NETLINK_ROUTE socket in the caller's network namespace. Opened
 * per operation, so nothing is cached across namespaces or forks. */
struct nl_sock *net_nl_open(struct verr *err);
void net_nl_close(struct nl_sock *sk);
/* libnl's NLE_* code as a negative errno for struct verr. */
int net_nlerr(int nlerr);

/* Called after every change apply() makes to the host, with what it did, so
 * tests can kill apply at each step and check that undo copes. NULL normally. */
extern void (*net_test_step)(const char *what);
void net_step(const char *what);

/* net-addr.c: the IPv4/IPv6 addresses and routes of one interface as JSON
 * arrays (what bridge-create moves). Link-scope and kernel-made entries
 * (link-local, prefix routes, the local table) are left out: the kernel
 * makes them again by itself. */
int net_addr_save(struct nl_sock *sk, int ifindex, json_t **addrs, json_t **routes,
    struct verr *err);
/* Remove the saved routes, then addresses, from IFINDEX; missing ones are fine. */
int net_addr_remove(struct nl_sock *sk, int ifindex, const json_t *addrs,
    const json_t *routes, bool step, struct verr *err);
/* Add saved addresses to IFINDEX (named IFNAME; labels of FROM are renamed);
 * ones already there are fine. */
int net_addr_restore(struct nl_sock *sk, int ifindex, const char *ifname,
    const char *from, const json_t *addrs, bool step, struct verr *err);
int net_route_restore(struct nl_sock *sk, int ifindex, const json_t *routes,
    bool step, struct verr *err);

/* net-nm.c: NetworkManager through nmcli ($VFIO_NMCLI, else /usr/bin/nmcli),
 * run with fork/execve and no shell. Not running / not installed is not an
 * error: *running is false. */
int net_nm_running(bool *running, struct verr *err);
int net_nm_managed(const char *iface, bool *managed, struct verr *err);
int net_nm_set_managed(const char *iface, bool managed, struct verr *err);

#endif
