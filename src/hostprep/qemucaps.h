/* What the QEMU binary can do (audio drivers, display types, devices with
 * their modules, SPICE), asked once per binary and kept in a cache under
 * the host root, so the plan can refuse what QEMU would refuse. */
#ifndef VFIO_QEMUCAPS_H
#define VFIO_QEMUCAPS_H

#include <stdbool.h>

#include "snapshot.h"

/* The cache: one file per binary, owned by the supervisor's user. */
#define QEMUCAPS_CACHE_DIR "/var/cache/vfio/qemu"

/* Fill caps for qemu (a path, or a name looked up in $PATH): from the cache
 * while it describes the same binary (path, device, inode, size, mtime) and
 * the same module directories, else by running `qemu -audiodev help`,
 * `-display help`, `-device help`, `-spice help` and `-sandbox on -version` (as uid/gid when running
 * as root and uid > 0: QEMU never runs as root) and writing the cache.
 * Never fails: what QEMU would not say stays unknown. */
void qemucaps_read(struct qemu_caps *caps, const char *qemu, int uid, int gid);
void qemucaps_free(struct qemu_caps *caps);
bool qemucaps_has(const struct strv *list, const char *name);

/* The parsers, for tests: each fills out and returns whether the output was
 * QEMU's answer to that question. */
bool qemucaps_parse_list(const char *text, const char *header, struct strv *out);
bool qemucaps_parse_devices(const char *text, struct strv *out);
int qemucaps_parse_spice(const char *text);
int qemucaps_parse_sandbox(const char *text);

/* Tests: how long QEMU gets to answer (<= 0: the default, 30 s). */
void qemucaps_set_deadline_ms(int ms);

/* Where a name QEMU lacks comes from: its module and the Debian 12 package
 * that ships it ("audio-pa", "qemu-system-gui"), NULL when built in. kind is
 * "audiodev", "display", "device" or "spice". */
const char *qemucaps_module_of(const char *kind, const char *name, const char **package);

#endif
