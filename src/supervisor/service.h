/* The service manager's SIGTERM: `systemctl stop vfio@NAME` powers the
 * guest down, `systemctl restart vfio@NAME` must not. systemd sends both
 * the same way; what tells them apart is the unit's job while it stops
 * ("restart" for a restart, "stop" for a stop). So on its first SIGTERM a
 * supervisor started by systemd ($INVOCATION_ID set) asks systemctl for its
 * unit's job (the unit from /proc/self/cgroup), in a child with a deadline
 * (the loop never waits); on "restart" it leaves the guest running for the
 * unit's next start to adopt, on anything else it powers the guest down.
 * vfio@.service has KillMode=process so that systemd itself leaves QEMU
 * alone. */
#ifndef VFIO_SERVICE_H
#define VFIO_SERVICE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

/* The unit this process runs in ("vfio@win10.service") when a service
 * manager started it; false otherwise. */
bool service_unit(char *buf, size_t len);

/* Ask whether unit is being restarted; cb gets true only when systemctl
 * says so (an error or a timeout: false, the safe answer being the one the
 * user asked for when in doubt is unknowable; stop powers down). Returns
 * false when the question could not be asked (cb is then not called). */
typedef void (*service_cb)(bool restarting, void *arg);
bool service_restarting(struct event_base *base, const char *unit, service_cb cb, void *arg);

#endif
