/* What -extras may not give QEMU: the options of QEMU 7.2 that take QEMU
 * out of the supervisor's hands. The supervisor must stay QEMU's parent
 * and hold its only monitor: it watches QEMU exit to give the host back,
 * and it alone attaches and detaches devices. These are refused while the
 * options are parsed, so a dry run names them and even -force cannot run
 * them (a detached QEMU would keep the devices the host gets back).
 *
 * Test hook: VFIO_TEST_EXTRAS_UNCHECKED=1 lets them through, for tests that
 * watch QEMU through a monitor of their own (tests/kernel); like every
 * VFIO_* variable it counts only when root acts for itself (vfioenv.h). */
#include <errno.h>
#include <string.h>

#include "options.h"
#include "vfioenv.h"

struct extras_rule {
	const char *option;
	const char *value_has;   /* refused only when its value holds this; NULL: always */
	const char *why;
};

#define EXTRAS_MONITOR "a monitor other than the supervisor's could change the guest behind its back " \
	"(attach or remove devices it then gives back to the host); use vfioctl(1)"
#define EXTRAS_STAYS "QEMU would stay when the guest powers off, and the run would never end and give " \
	"the host back"
#define EXTRAS_FILE "QEMU would write a file the plan does not list; its pid and messages already go to " \
	"the supervisor"

static const struct extras_rule extras_rules[] = {
	{ "-daemonize", NULL, "QEMU would detach from the supervisor, which would then take it for gone, give "
	    "the host back under the running guest and leave QEMU orphaned" },
	{ "-monitor", NULL, EXTRAS_MONITOR },
	{ "-qmp", NULL, EXTRAS_MONITOR },
	{ "-qmp-pretty", NULL, EXTRAS_MONITOR },
	{ "-mon", NULL, EXTRAS_MONITOR },
	{ "-serial", "mon:", "'mon:' puts a monitor on that console: " EXTRAS_MONITOR },
	{ "-parallel", "mon:", "'mon:' puts a monitor on that port: " EXTRAS_MONITOR },
	{ "-debugcon", "mon:", "'mon:' puts a monitor on that console: " EXTRAS_MONITOR },
	{ "-virtioconsole", "mon:", "'mon:' puts a monitor on that console: " EXTRAS_MONITOR },
	{ "-qtest", NULL, "the qtest protocol drives QEMU outside the supervisor" },
	{ "-gdb", NULL, "a gdb stub controls the guest outside the supervisor" },
	{ "-s", NULL, "a gdb stub (-gdb tcp::1234) controls the guest outside the supervisor" },
	{ "-preconfig", NULL, "QEMU would wait for a monitor command the supervisor never sends" },
	{ "-incoming", NULL, "QEMU would wait for a migration stream instead of starting the planned guest" },
	{ "-no-shutdown", NULL, EXTRAS_STAYS },
	{ "-action", "shutdown=pause", EXTRAS_STAYS },
	{ "-pidfile", NULL, EXTRAS_FILE },
	{ "-D", NULL, EXTRAS_FILE },
	{ "-trace", "file=", EXTRAS_FILE },
	{ "-readconfig", NULL, "a configuration file can add monitors and devices the plan cannot see; put "
	    "its options in -extras instead" },
	{ "-runas", NULL, "QEMU would change its user itself; the supervisor chooses it (-user)" },
	{ "-chroot", NULL, "QEMU would no longer find the files the plan gives it" },
	{ "-sandbox", NULL, "the supervisor decides QEMU's sandbox" },
};

int
options_check_extras(const struct strv *words, struct verr *err)
{
	const char *unchecked = vfioenv_get("VFIO_TEST_EXTRAS_UNCHECKED");
	if (unchecked != NULL && strcmp(unchecked, "1") == 0)
		return 0;
	for (size_t i = 0; i < words->n; i++) {
		const char *w = words->v[i];
		if (w[0] != '-')
			continue;
		if (w[1] == '-')
			w++;    /* QEMU takes --opt as -opt */
		const char *value = i + 1 < words->n ? words->v[i + 1] : "";
		for (size_t r = 0; r < sizeof(extras_rules) / sizeof(extras_rules[0]); r++) {
			const struct extras_rule *e = &extras_rules[r];
			if (strcmp(w, e->option) != 0)
				continue;
			if (e->value_has == NULL)
				return verr_set(err, -EINVAL, "-extras '%s': %s; leave it out", words->v[i], e->why);
			if (strstr(value, e->value_has) != NULL)
				return verr_set(err, -EINVAL, "-extras '%s %s': %s; leave it out", words->v[i], value,
				    e->why);
		}
	}
	return 0;
}
