/* What qemu-mock does for each QMP command by default, as QEMU 7.2 does it:
 * the same replies, error classes and texts, and events in the same order
 * (for cont/stop/system_reset/system_powerdown/quit QEMU emits the event
 * before the reply). One table of handlers, as in QEMU's own dispatch. */
#include "mock.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *
mock_error(const char *class, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *desc;
	if (vasprintf(&desc, fmt, ap) < 0)
		mock_die("out of memory");
	va_end(ap);
	json_t *e = json_pack("{s:{s:s, s:s}}", "error", "class", class, "desc", desc);
	free(desc);
	return e;
}

static json_t *
ok(json_t *ret)
{
	return json_pack("{s:o}", "return", ret ? ret : json_object());
}

static const char *
arg_str(json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

#define REQUIRE(args, key) do { \
	if (json_object_get(args, key) == NULL) \
		return mock_error("GenericError", "Parameter '%s' is missing", key); \
} while (0)

static void
post_action(json_t *post, json_t *action)
{
	json_array_append_new(post, action);
}

static void
pre_event(json_t *pre, const char *name, json_t *data)
{
	json_t *a = json_pack("{s:s}", "event", name);
	if (data != NULL)
		json_object_set_new(a, "data", data);
	json_array_append_new(pre, a);
}

static bool
is_running(void)
{
	return strcmp(mock.status, "running") == 0;
}

/* Devices whose unplug QEMU completes by itself, without the guest. */
static bool
unplug_is_immediate(const char *driver)
{
	return strncmp(driver, "usb-", 4) == 0;
}

void
mock_track_device(const char *driver, const char *id, const char *bus)
{
	if (id == NULL)
		return;
	json_t *d = json_pack("{s:s, s:b}", "driver", driver, "unplugging", 0);
	if (bus != NULL)
		json_object_set_new(d, "bus", json_string(bus));
	json_object_set_new(mock.devices, id, d);
	/* Devices that provide buses others plug into. */
	if (strcmp(driver, "pcie-root-port") == 0 || strcmp(driver, "pcie-pci-bridge") == 0 ||
	    strcmp(driver, "ioh3420") == 0 || strcmp(driver, "x3130-upstream") == 0 ||
	    strcmp(driver, "xio3130-downstream") == 0)
		json_object_set_new(mock.buses, id, json_true());
	else if (strstr(driver, "xhci") != NULL || strstr(driver, "ehci") != NULL) {
		char *b;
		if (asprintf(&b, "%s.0", id) < 0)
			mock_die("out of memory");
		json_object_set_new(mock.buses, b, json_true());
		free(b);
	}
}

void
mock_unplug_now(const char *id)
{
	json_t *d = json_object_get(mock.devices, id);
	if (d == NULL)
		return;
	const char *driver = json_string_value(json_object_get(d, "driver"));
	char *path;
	if (asprintf(&path, "/machine/peripheral/%s", id) < 0)
		mock_die("out of memory");
	/* QEMU announces the virtio backend child before the device itself:
	 * a client matching on prefixes would think the device is gone. */
	if (strncmp(driver, "virtio-", 7) == 0) {
		char *child;
		if (asprintf(&child, "%s/virtio-backend", path) < 0)
			mock_die("out of memory");
		mock_emit_event("DEVICE_DELETED", json_pack("{s:s}", "path", child));
		free(child);
	}
	mock_emit_event("DEVICE_DELETED", json_pack("{s:s, s:s}", "device", id, "path", path));
	free(path);
	json_object_del(mock.buses, id);
	json_object_del(mock.devices, id);
}

void
mock_guest_shutdown(void)
{
	mock_emit_event("SHUTDOWN", json_pack("{s:b, s:s}", "guest", 1, "reason", "guest-shutdown"));
	mock.status = "shutdown";
	if (!mock.no_shutdown)
		mock_exit(0);
	/* -no-shutdown: QEMU stops the guest and stays. */
	mock_emit_event("STOP", NULL);
}

static void
schedule_unplug(const char *id)
{
	mock_run_action(json_pack("{s:s, s:i}", "_unplug", id, "delay_ms", mock.unplug_delay_ms));
}

void
mock_guest_resumed(void)
{
	/* The guest acts on requests made while it was paused. */
	if (!mock.ignore_unplug) {
		size_t i;
		json_t *id;
		json_array_foreach(mock.pending_unplug, i, id)
			schedule_unplug(json_string_value(id));
		json_array_clear(mock.pending_unplug);
	}
	if (mock.pending_powerdown && !mock.ignore_powerdown)
		mock_run_action(json_pack("{s:b, s:i}", "_guest_shutdown", 1, "delay_ms", mock.powerdown_delay_ms));
	mock.pending_powerdown = false;
}

/* ---- handlers ---- */

static json_t *
cmd_qmp_capabilities(json_t *args, int *fd, json_t *pre, json_t *post)
{
	if (mock.negotiated)
		return mock_error("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
	mock.negotiated = true;
	return ok(NULL);
}

static json_t *
cmd_query_status(json_t *args, int *fd, json_t *pre, json_t *post)
{
	return ok(json_pack("{s:s, s:b, s:b}", "status", mock.status, "singlestep", 0, "running", is_running()));
}

static json_t *
cmd_cont(json_t *args, int *fd, json_t *pre, json_t *post)
{
	if (strcmp(mock.status, "shutdown") == 0)
		return mock_error("GenericError", "Resetting the Virtual Machine is required");
	if (!is_running()) {
		mock.status = "running";
		pre_event(pre, "RESUME", NULL);
		post_action(post, json_pack("{s:b}", "_resumed", 1));
	}
	return ok(NULL);
}

static json_t *
cmd_stop(json_t *args, int *fd, json_t *pre, json_t *post)
{
	if (is_running()) {
		mock.status = "paused";
		pre_event(pre, "STOP", NULL);
	}
	return ok(NULL);
}

static json_t *
cmd_system_powerdown(json_t *args, int *fd, json_t *pre, json_t *post)
{
	pre_event(pre, "POWERDOWN", NULL);
	if (mock.ignore_powerdown)
		return ok(NULL);
	if (is_running())
		post_action(post, json_pack("{s:b, s:i}", "_guest_shutdown", 1, "delay_ms", mock.powerdown_delay_ms));
	else
		mock.pending_powerdown = true; /* the ACPI event waits for the guest */
	return ok(NULL);
}

static json_t *
cmd_system_reset(json_t *args, int *fd, json_t *pre, json_t *post)
{
	pre_event(pre, "RESET", json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-system-reset"));
	/* Real QEMU 7.2 completes pending PCIe unplugs on reset, guest or not. */
	const char *id;
	json_t *d;
	json_object_foreach(mock.devices, id, d) {
		if (json_is_true(json_object_get(d, "unplugging")))
			post_action(post, json_pack("{s:s}", "_unplug", id));
	}
	json_array_clear(mock.pending_unplug);
	mock.pending_powerdown = false;
	/* A machine that is not running comes out of reset in prelaunch
	 * (checked against QEMU 7.2: stop, system_reset, query-status). */
	if (!is_running())
		mock.status = "prelaunch";
	return ok(NULL);
}

static json_t *
cmd_quit(json_t *args, int *fd, json_t *pre, json_t *post)
{
	pre_event(pre, "SHUTDOWN", json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-quit"));
	post_action(post, json_pack("{s:i}", "exit", 0));
	return ok(NULL);
}

static json_t *
cmd_device_add(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "driver");
	const char *driver = arg_str(args, "driver");
	const char *id = arg_str(args, "id");
	const char *bus = arg_str(args, "bus");
	if (driver == NULL)
		return mock_error("GenericError", "Parameter 'driver' expects string");
	if (bus != NULL && json_object_get(mock.buses, bus) == NULL)
		return mock_error("GenericError", "Bus '%s' not found", bus);
	if (id != NULL && json_object_get(mock.devices, id) != NULL)
		return mock_error("GenericError", "Duplicate device ID '%s'", id);
	mock_track_device(driver, id, bus);
	return ok(NULL);
}

static json_t *
cmd_device_del(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "id");
	const char *id = arg_str(args, "id");
	json_t *d = id ? json_object_get(mock.devices, id) : NULL;
	if (d == NULL)
		return mock_error("DeviceNotFound", "Device '%s' not found", id ? id : "");
	if (json_is_true(json_object_get(d, "unplugging")))
		return mock_error("GenericError", "Device %s is already in the process of unplug", id);
	json_object_set_new(d, "unplugging", json_true());
	if (unplug_is_immediate(json_string_value(json_object_get(d, "driver"))))
		post_action(post, json_pack("{s:s}", "_unplug", id));
	else if (mock.ignore_unplug) {
		/* the guest never acks: no DEVICE_DELETED until a reset */
	} else if (is_running())
		post_action(post, json_pack("{s:s, s:i}", "_unplug", id, "delay_ms", mock.unplug_delay_ms));
	else
		json_array_append_new(mock.pending_unplug, json_string(id));
	return ok(NULL);
}

static json_t *
cmd_query_cpus_fast(json_t *args, int *fd, json_t *pre, json_t *post)
{
	json_t *a = json_array();
	for (int i = 0; i < mock.ncpus; i++) {
		char qom[64];
		snprintf(qom, sizeof(qom), "/machine/unattached/device[%d]", i);
		json_array_append_new(a, json_pack("{s:i, s:{s:i, s:i, s:i}, s:s, s:i, s:s}",
		    "thread-id", (int)mock.tids[i], "props", "core-id", i, "thread-id", 0, "socket-id", 0,
		    "qom-path", qom, "cpu-index", i, "target", "x86_64"));
	}
	return ok(a);
}

static json_t *
cmd_getfd(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "fdname");
	const char *name = arg_str(args, "fdname");
	if (*fd < 0)
		return mock_error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
	json_t *old = json_object_get(mock.fdnames, name);
	if (old != NULL)
		close((int)json_integer_value(old));
	json_object_set_new(mock.fdnames, name, json_integer(*fd));
	*fd = -1;
	return ok(NULL);
}

static json_t *
cmd_closefd(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "fdname");
	const char *name = arg_str(args, "fdname");
	json_t *old = json_object_get(mock.fdnames, name);
	if (old == NULL)
		return mock_error("GenericError", "File descriptor named '%s' not found", name);
	close((int)json_integer_value(old));
	json_object_del(mock.fdnames, name);
	return ok(NULL);
}

static json_t *
cmd_add_fd(json_t *args, int *fd, json_t *pre, json_t *post)
{
	if (*fd < 0)
		return mock_error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
	json_t *idv = json_object_get(args, "fdset-id");
	int set = idv ? (int)json_integer_value(idv) : mock.next_fdset;
	if (set >= mock.next_fdset)
		mock.next_fdset = set + 1;
	char key[32];
	snprintf(key, sizeof(key), "%d", set);
	json_t *list = json_object_get(mock.fdsets, key);
	if (list == NULL) {
		list = json_array();
		json_object_set_new(mock.fdsets, key, list);
	}
	json_array_append_new(list, json_integer(*fd));
	json_t *r = json_pack("{s:i, s:i}", "fdset-id", set, "fd", *fd);
	*fd = -1;
	return ok(r);
}

static json_t *
cmd_remove_fd(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "fdset-id");
	char key[32];
	snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(args, "fdset-id")));
	json_t *list = json_object_get(mock.fdsets, key);
	if (list == NULL)
		return mock_error("GenericError", "File descriptor named 'fdset-id:%s' not found", key);
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		close((int)json_integer_value(v));
	json_object_del(mock.fdsets, key);
	return ok(NULL);
}

/* netdev_add takes a named fd from getfd: it consumes the name. */
static json_t *
take_named_fd(json_t *args, const char *key)
{
	const char *name = arg_str(args, key);
	if (name == NULL)
		return NULL;
	json_t *v = json_object_get(mock.fdnames, name);
	if (v == NULL && strspn(name, "0123456789") != strlen(name))
		return mock_error("GenericError", "File descriptor named '%s' has not been found", name);
	if (v != NULL) {
		close((int)json_integer_value(v));
		json_object_del(mock.fdnames, name);
	}
	return NULL;
}

static json_t *
cmd_netdev_add(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "type");
	REQUIRE(args, "id");
	const char *id = arg_str(args, "id");
	if (json_object_get(mock.netdevs, id) != NULL)
		return mock_error("GenericError", "Duplicate ID '%s'", id);
	json_t *e;
	if ((e = take_named_fd(args, "fd")) != NULL || (e = take_named_fd(args, "vhostfd")) != NULL)
		return e;
	json_object_set_new(mock.netdevs, id, json_deep_copy(args));
	return ok(NULL);
}

static json_t *
cmd_netdev_del(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "id");
	const char *id = arg_str(args, "id");
	if (json_object_get(mock.netdevs, id) == NULL)
		return mock_error("DeviceNotFound", "Device '%s' not found", id);
	json_object_del(mock.netdevs, id);
	return ok(NULL);
}

/* qom-list of /machine/peripheral, as QEMU 7.2 answers it: its "type"
 * property and a child<DRIVER> per device with an id. */
static json_t *
cmd_qom_list(json_t *args, int *fd, json_t *pre, json_t *post)
{
	REQUIRE(args, "path");
	const char *path = arg_str(args, "path");
	if (strcmp(path, "/machine/peripheral") != 0)
		return mock_error("GenericError", "Device '%s' not found", path);
	json_t *list = json_pack("[{s:s, s:s}]", "name", "type", "type", "string");
	const char *id;
	json_t *d;
	json_object_foreach(mock.devices, id, d) {
		char *type;
		if (asprintf(&type, "child<%s>", json_string_value(json_object_get(d, "driver"))) < 0)
			mock_die("out of memory");
		json_array_append_new(list, json_pack("{s:s, s:s}", "name", id, "type", type));
		free(type);
	}
	return ok(list);
}

static json_t *
cmd_query_pci(json_t *args, int *fd, json_t *pre, json_t *post)
{
	/* Simplified: one bus listing every device by qdev id and driver. */
	json_t *devs = json_array();
	const char *id;
	json_t *d;
	int slot = 1;
	json_object_foreach(mock.devices, id, d) {
		const char *driver = json_string_value(json_object_get(d, "driver"));
		if (strncmp(driver, "usb-", 4) == 0)
			continue;
		json_array_append_new(devs, json_pack("{s:i, s:i, s:i, s:s, s:s, s:[]}",
		    "bus", 0, "slot", slot++, "function", 0, "qdev_id", id, "driver", driver, "regions"));
	}
	return ok(json_pack("[{s:i, s:o}]", "bus", 0, "devices", devs));
}

static json_t *
cmd_query_version(json_t *args, int *fd, json_t *pre, json_t *post)
{
	return ok(json_pack("{s:{s:i, s:i, s:i}, s:s}", "qemu", "micro", 22, "minor", 2, "major", 7,
	    "package", "Debian 1:7.2+dfsg-7+deb12u18+b3 (qemu-mock)"));
}

static json_t *
cmd_query_name(json_t *args, int *fd, json_t *pre, json_t *post)
{
	const char *name = mock_vm_name();
	return ok(name ? json_pack("{s:s}", "name", name) : json_object());
}

static json_t *cmd_query_commands(json_t *args, int *fd, json_t *pre, json_t *post);

static const struct mock_cmd {
	const char *name;
	json_t *(*fn)(json_t *args, int *fd, json_t *pre, json_t *post);
} mock_cmds[] = {
	{ "qmp_capabilities", cmd_qmp_capabilities },
	{ "query-status", cmd_query_status },
	{ "cont", cmd_cont },
	{ "stop", cmd_stop },
	{ "system_powerdown", cmd_system_powerdown },
	{ "system_reset", cmd_system_reset },
	{ "quit", cmd_quit },
	{ "device_add", cmd_device_add },
	{ "device_del", cmd_device_del },
	{ "query-cpus-fast", cmd_query_cpus_fast },
	{ "getfd", cmd_getfd },
	{ "closefd", cmd_closefd },
	{ "add-fd", cmd_add_fd },
	{ "remove-fd", cmd_remove_fd },
	{ "netdev_add", cmd_netdev_add },
	{ "netdev_del", cmd_netdev_del },
	{ "query-pci", cmd_query_pci },
	{ "qom-list", cmd_qom_list },
	{ "query-version", cmd_query_version },
	{ "query-name", cmd_query_name },
	{ "query-commands", cmd_query_commands },
};

static json_t *
cmd_query_commands(json_t *args, int *fd, json_t *pre, json_t *post)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(mock_cmds) / sizeof(mock_cmds[0]); i++)
		json_array_append_new(a, json_pack("{s:s}", "name", mock_cmds[i].name));
	return ok(a);
}

json_t *
mock_cmd_default(const char *name, json_t *args, int fd, json_t *pre, json_t *post)
{
	json_t *reply;
	if (!mock.negotiated && strcmp(name, "qmp_capabilities") != 0) {
		reply = mock_error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	} else {
		const struct mock_cmd *c = NULL;
		for (size_t i = 0; i < sizeof(mock_cmds) / sizeof(mock_cmds[0]); i++)
			if (strcmp(mock_cmds[i].name, name) == 0)
				c = &mock_cmds[i];
		if (c == NULL) {
			mock_warn("command '%s' is not known to the mock (give it a scenario reply)", name);
			reply = mock_error("CommandNotFound", "The command %s has not been found", name);
		} else {
			json_t *empty = args ? NULL : json_object();
			reply = c->fn(args ? args : empty, &fd, pre, post);
			json_decref(empty);
		}
	}
	/* QEMU closes an fd no command took. */
	if (fd >= 0)
		close(fd);
	return reply;
}
