/* The one gate for the VFIO_* variables: see vfioenv.h for the rule. */
#include "vfioenv.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* The variables that identify the user a root process acts for. */
static const char *const vfioenv_callers[] = { "SUDO_UID", "DOAS_USER", "PKEXEC_UID" };

/* Names already warned about, so a variable read at every hot-plug job
 * is named once. */
static char *vfioenv_warned[16];
static bool vfioenv_trusted;

void
vfioenv_trust_caller(void)
{
	vfioenv_trusted = true;
}

static const char *
vfioenv_caller(void)
{
	for (size_t i = 0; i < nitems(vfioenv_callers); i++) {
		const char *v = getenv(vfioenv_callers[i]);
		if (v != NULL && *v != '\0')
			return vfioenv_callers[i];
	}
	return NULL;
}

bool
vfioenv_honoured(void)
{
	if (vfioenv_trusted || geteuid() != 0)
		return true;
	return getuid() == 0 && vfioenv_caller() == NULL;
}

static void
vfioenv_warn(const char *name)
{
	size_t i = 0;
	for (; i < nitems(vfioenv_warned) && vfioenv_warned[i] != NULL; i++) {
		if (strcmp(vfioenv_warned[i], name) == 0)
			return;
	}
	if (i < nitems(vfioenv_warned))
		vfioenv_warned[i] = xstrdup(name);
	const char *caller = vfioenv_caller();
	if (caller != NULL)
		log_warnx("ignoring $%s: it chooses what root runs, and this root process acts for another user "
		    "(%s is set); set it in a root shell or a systemd unit instead", name, caller);
	else
		log_warnx("ignoring $%s: it chooses what root runs, and this process runs as root for real uid %d",
		    name, (int)getuid());
}

const char *
vfioenv_get(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || vfioenv_honoured())
		return v;
	vfioenv_warn(name);
	return NULL;
}
