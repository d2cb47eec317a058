/* Telling `systemctl restart` from `systemctl stop`: see service.h. */
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "child.h"
#include "hostcmd.h"
#include "hostroot.h"
#include "log.h"
#include "util.h"

/* systemctl answers at once; a manager that does not is treated as a stop. */
#define SERVICE_QUERY_MS 5000

bool
service_unit(char *buf, size_t len)
{
	const char *inv = getenv("INVOCATION_ID");
	if (inv == NULL || *inv == '\0')
		return false;
	char path[4096];
	if (host_path(path, sizeof(path), "/proc/self/cgroup") == NULL)
		return false;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	/* cgroup v2: "0::/system.slice/system-vfio.slice/vfio@win10.service" */
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		const char *last = strrchr(line, '/');
		size_t n = last != NULL ? strlen(last + 1) : 0;
		if (n > 8 && strcmp(last + 1 + n - 8, ".service") == 0 && n < len) {
			snprintf(buf, len, "%s", last + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* In the child: 1 when `systemctl list-jobs` shows a restart job for the
 * unit, 0 when not, -errno when it could not tell. */
static int
service_query(const json_t *change, const json_t *saved, struct verr *err)
{
	const char *unit = json_string_value(json_object_get(change, "unit"));
	const char *bin = hostcmd_systemctl(unit, err);
	if (bin == NULL)
		return err->code;
	char *argv[] = { (char *)bin, "list-jobs", "--no-legend", "--plain", (char *)unit, NULL };
	char *out = NULL;
	int r = hostcmd_capture(argv, STDOUT_FILENO, &out, err);
	if (r < 0)
		return r;
	int restarting = 0;
	/* "JOB UNIT TYPE STATE" per line */
	char *save = NULL;
	for (char *l = strtok_r(out, "\n", &save); l != NULL && !restarting; l = strtok_r(NULL, "\n", &save)) {
		char job[32], u[256], type[64];
		if (sscanf(l, "%31s %255s %63s", job, u, type) == 3 && strcmp(u, unit) == 0 &&
		    strcmp(type, "restart") == 0)
			restarting = 1;
	}
	free(out);
	return restarting;
}

struct service_req {
	service_cb cb;
	void *arg;
	char *unit;
};

static void
service_answered(int code, const struct verr *err, void *arg)
{
	struct service_req *q = arg;
	if (code < 0)
		log_warnx("cannot ask the service manager whether %s restarts (%s): taking it for a stop", q->unit,
		    err->msg);
	q->cb(code == 1, q->arg);
	free(q->unit);
	free(q);
}

bool
service_restarting(struct event_base *base, const char *unit, service_cb cb, void *arg)
{
	struct service_req *q = xcalloc(1, sizeof(*q));
	q->cb = cb;
	q->arg = arg;
	q->unit = xstrdup(unit);
	json_t *change = json_pack("{s:s}", "unit", unit);
	struct verr err = { 0 };
	struct child_job *job = child_start(base, service_query, change, NULL, SERVICE_QUERY_MS, service_answered, q, &err);
	json_decref(change);
	if (job == NULL) {
		log_warnx("cannot ask the service manager whether %s restarts: %s", unit, err.msg);
		free(q->unit);
		free(q);
		return false;
	}
	return true;
}
