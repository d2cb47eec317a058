/* Helpers for the net tests: every test runs in a network namespace of its
 * own, so real netlink changes never reach the host's network. */
#ifndef VFIO_NSTEST_H
#define VFIO_NSTEST_H

#include <jansson.h>
#include <stdbool.h>

#include "change.h"

/* Move this process into a new, empty network namespace with lo up and IPv6
 * duplicate address detection off (addresses usable at once). -1 when the
 * kernel or our privileges do not allow it. */
int ns_enter(void);
/* For main(): 0 when namespaces work here, else the test program exits 77. */
bool ns_available(void);

/* Run a command (fixture setup with iproute2, independent of the code under
 * test); returns its exit status. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, failing the test when the status is not 0. */
#define SH(...) assert_int_equal(sh(__VA_ARGS__), 0)

/* The LAN: veth lan0 (the host interface H) <-> lan0p (the rest of the LAN)
 * (the far end, lan0p, only carries frames) with IPv4/IPv6 addresses, a
 * secondary and a labelled address, and routes on
 * lan0 including default routes via 192.168.50.1 / fd00:50::1. */
void lan_make(void);

/* Wait until bridge BR (up, with a port) has its IPv6 link-local address. */
void lan_bridge_settled(const char *br);

/* Every link, address and route in the namespace as sorted text lines, via
 * netlink (libnl), for before/after comparisons. Caller frees. */
char *ns_dump(void);
/* ns_dump(), taken again for up to 5 s until it equals expect (the kernel
 * finishes some IPv6 work asynchronously). */
char *ns_dump_expect(const char *expect);
/* True when equal; else prints the lines that went and came. */
bool dump_same(const char *before, const char *after);
/* True when some line of the dump contains needle. */
bool dump_has(const char *dump, const char *needle);

/* Build a change object {"action", "target", "args"} from a JSON args text. */
json_t *change_make(const char *action, const char *target, const char *args_json);

/* Fork; the child runs ops->apply() and is killed (_exit) after the Nth step
 * net_test_step reports. Returns 1 when the child was killed at step N, 0
 * when apply finished before reaching step N, -1 when apply failed. */
int apply_crash_at(const struct change_ops *ops, const json_t *change, const json_t *saved, int n);

/* v written out as text and read back, as the journal does across a crash. */
json_t *journal_roundtrip(const json_t *v);

/* A file's contents ("" when missing); caller frees. */
char *slurp(const char *path);

#endif
