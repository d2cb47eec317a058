/* The table of host-change actions. Each hostprep module exports its
 * change_ops; this file only collects them so the journal can find an undo by
 * the action name it recorded. */
#include "change.h"

#include <string.h>

#include "audio.h"
#include "companion.h"
#include "devown.h"
#include "display.h"
#include "hugepages.h"
#include "isolate.h"
#include "lgshm.h"
#include "net.h"
#include "util.h"
#include "vars.h"
#include "vfio_bind.h"

static const struct change_ops *const change_table[] = {
	&devown_change_ops,
	&net_bridge_create_ops,
	&net_tap_create_ops,
	&vfio_bind_module_load_ops,
	&vfio_bind_pci_ops,
	&display_manager_stop_ops,
	&display_vtcon_unbind_ops,
	&display_efifb_unbind_ops,
	&display_gpu_users_stop_ops,
	/* mem */
	&hugepages_alloc_ops, &cpuset_isolate_ops, &irq_affinity_ops, &workqueue_cpumask_ops,
	&companion_start_ops, &lg_shm_create_ops, &user_audio_start_ops,
	/* plan */
	&vars_create_ops,
	NULL,
};

const struct change_ops *
change_find(const char *action)
{
	if (action == NULL)
		return NULL;
	for (size_t i = 0; i < nitems(change_table); i++) {
		if (change_table[i] != NULL && strcmp(change_table[i]->action, action) == 0)
			return change_table[i];
	}
	return NULL;
}

int
change_deadline_ms(const struct change_ops *ops, const json_t *change, const json_t *saved, int bindtimeout_ms)
{
	if (bindtimeout_ms <= 0)
		bindtimeout_ms = CHANGE_BINDTIMEOUT_MS_DEFAULT;
	return ops->deadline_ms != NULL ? ops->deadline_ms(change, saved, bindtimeout_ms) : bindtimeout_ms;
}

const char *
change_str(const json_t *change, const char *key)
{
	const char *s = json_string_value(json_object_get(change, key));
	return s ? s : "";
}

const char *
change_arg_str(const json_t *change, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(change, "args"), key));
	return s ? s : "";
}

json_int_t
change_arg_int(const json_t *change, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(json_object_get(change, "args"), key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}
