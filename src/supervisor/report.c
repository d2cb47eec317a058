/* What the user reads: the dry-run rundown (coloured on a TTY), the QEMU
 * command line as one pasteable shell line, the QMP commands and the host
 * changes; or one JSON object with -json. Also -iommugroups, -cputhreads and
 * -colortest, which print facts from the snapshot the way the original did. */
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define C_BOLD "\033[1m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[1;33m"
#define C_RED "\033[1;31m"
#define C_CYAN "\033[36m"
#define C_OFF "\033[0m"

bool
report_want_color(const struct options *opts, FILE *out)
{
	if (opts != NULL && opts->nocolor)
		return false;
	const char *no = getenv("NO_COLOR");
	if (no != NULL && *no != '\0')
		return false;
	return isatty(fileno(out)) == 1;
}

static const char *
col(bool color, const char *code)
{
	return color ? code : "";
}

char *
report_cmdline(const struct strv *argv)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "");
	for (size_t i = 0; i < argv->n; i++) {
		if (i > 0)
			strbuf_puts(&sb, " ");
		shell_quote(&sb, argv->v[i]);
	}
	return strbuf_steal(&sb);
}

static void
report_json_lines(FILE *out, const json_t *array)
{
	size_t i;
	json_t *v;
	json_array_foreach(array, i, v) {
		/* JSON_INDENT(0): one line, with spaces after ':' and ','. */
		char *s = json_dumps(v, JSON_INDENT(0) | JSON_PRESERVE_ORDER);
		fprintf(out, "%s\n", s);
		free(s);
	}
}

void
report_plan(FILE *out, FILE *err, const struct options *opts, const struct plan *plan, bool color)
{
	bool ecolor = report_want_color(opts, err);
	if (!opts->quiet) {
		for (size_t i = 0; i < plan->rundown.n; i++) {
			const char *line = plan->rundown.v[i];
			const char *colon = strchr(line, ':');
			if (colon != NULL && color)
				fprintf(out, "%s%.*s%s%s\n", C_BOLD, (int)(colon - line + 1), line, C_OFF, colon + 1);
			else
				fprintf(out, "%s\n", line);
		}
		/* Warnings and errors follow the rundown even when both streams
		 * go to one pipe. */
		fflush(out);
		for (size_t i = 0; i < plan->warnings.n; i++)
			fprintf(err, "%swarning:%s %s\n", col(ecolor, C_YELLOW), col(ecolor, C_OFF), plan->warnings.v[i]);
	}
	fflush(out);
	for (size_t i = 0; i < plan->errors.n; i++)
		fprintf(err, "%serror:%s %s\n", col(ecolor, C_RED), col(ecolor, C_OFF), plan->errors.v[i]);
	fflush(err);
	if (opts->quiet)
		return;

	char *line = report_cmdline(&plan->argv);
	fprintf(out, "\n%sQEMU command line:%s\n%s\n", col(color, C_CYAN), col(color, C_OFF), line);
	free(line);
	if (json_array_size(plan->qmp) > 0) {
		fprintf(out, "\n%sQMP commands after start:%s\n", col(color, C_CYAN), col(color, C_OFF));
		report_json_lines(out, plan->qmp);
	}
	if (json_array_size(plan->host_changes) > 0) {
		fprintf(out, "\n%sHost changes, in order (undone in reverse at shutdown):%s\n", col(color, C_CYAN),
		    col(color, C_OFF));
		report_json_lines(out, plan->host_changes);
	}
	if (json_array_size(plan->viewers) > 0) {
		fprintf(out, "\n%sStarted once the guest runs (stopped at shutdown):%s\n", col(color, C_CYAN),
		    col(color, C_OFF));
		report_json_lines(out, plan->viewers);
	}
	if (plan->errors.n > 0)
		fprintf(out, "\n%s-run would refuse: %zu problem%s above%s\n", col(color, C_RED), plan->errors.n,
		    plan->errors.n == 1 ? "" : "s", col(color, C_OFF));
	else if (!opts->run)
		fprintf(out, "\n%sDry run: nothing was changed. Add -run to do it.%s\n", col(color, C_GREEN),
		    col(color, C_OFF));
}

static json_t *
report_strv_json(const struct strv *sv)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sv->n; i++)
		json_array_append_new(a, json_string(sv->v[i]));
	return a;
}

void
report_json(FILE *out, const struct plan *plan)
{
	json_t *o = json_object();
	json_object_set_new(o, "argv", report_strv_json(&plan->argv));
	json_object_set(o, "qmp", plan->qmp);
	json_object_set(o, "host_changes", plan->host_changes);
	json_object_set_new(o, "viewers", plan->viewers ? json_incref(plan->viewers) : json_array());
	json_object_set(o, "devices", plan->devices);
	const struct plan_user *u = &plan->qemu_user;
	json_object_set_new(o, "qemu_user", u->name == NULL ? json_null() :
	    json_pack("{s:s, s:i, s:i, s:b, s:b, s:o}", "name", u->name, "uid", u->uid, "gid", u->gid, "create",
	    u->create, "sandbox", u->sandbox, "nodes", report_strv_json(&plan->qemu_nodes)));
	json_object_set_new(o, "warnings", report_strv_json(&plan->warnings));
	json_object_set_new(o, "errors", report_strv_json(&plan->errors));
	json_object_set_new(o, "rundown", report_strv_json(&plan->rundown));
	static const char *const running[] = {
		[OPT_RUN_FRESH] = "start", [OPT_RUN_ADOPT] = "adopt", [OPT_RUN_RESTORE_FIRST] = "restore-first",
		[OPT_RUN_SUPERVISED] = "refuse", [OPT_RUN_UNREACHABLE] = "refuse",
	};
	json_t *r = json_pack("{s:s}", "run", running[plan->running]);
	if (plan->running == OPT_RUN_ADOPT)
		json_object_set_new(r, "qemu_pid", json_integer(plan->running_qemu_pid));
	json_object_set_new(r, "differences", report_strv_json(&plan->differences));
	json_object_set_new(o, "running", r);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
}

static int
report_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int
report_cmp_group(const void *a, const void *b, void *base)
{
	const struct pci_device *pci = base;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	if (pci[i].iommu_group != pci[j].iommu_group)
		return pci[i].iommu_group < pci[j].iommu_group ? -1 : 1;
	return (i > j) - (i < j);
}

void
report_iommugroups(FILE *out, const struct host_snapshot *snap, bool color)
{
	/* Devices by group (sorted once), each group's in snapshot order. */
	size_t *idx = xcalloc(snap->n_pci + 1, sizeof(*idx)), n = 0;
	for (size_t i = 0; i < snap->n_pci; i++) {
		if (snap->pci[i].iommu_group >= 0)
			idx[n++] = i;
	}
	qsort_r(idx, n, sizeof(*idx), report_cmp_group, snap->pci);
	if (n == 0) {
		bool amd = strcmp(snap->cpu_vendor, "AuthenticAMD") == 0;
		fprintf(out, "No IOMMU groups: the IOMMU is %s. Enable %s in the firmware setup and add %s to the "
		    "kernel command line.\n", snap->iommu_enabled ? "on but no device has a group" : "off",
		    amd ? "AMD-Vi" : "VT-d", amd ? "amd_iommu=on" : "intel_iommu=on");
	}
	for (size_t k = 0; k < n; k++) {
		const struct pci_device *d = &snap->pci[idx[k]];
		if (k == 0 || snap->pci[idx[k - 1]].iommu_group != d->iommu_group)
			fprintf(out, "%sIOMMU Group %d:%s\n", col(color, C_BOLD), d->iommu_group, col(color, C_OFF));
		fprintf(out, "\t%s\n", d->line);
	}
	free(idx);
}

struct report_core {
	int package, core;
	int threads[8];
	size_t n;
};

void
report_cputhreads(FILE *out, const struct host_snapshot *snap, bool color)
{
	struct report_core *cores = xcalloc(snap->n_cpus + 1, sizeof(*cores));
	size_t n = 0, online = 0;
	for (size_t i = 0; i < snap->n_cpus; i++) {
		const struct cpu_thread *t = &snap->cpus[i];
		if (!t->online)
			continue;
		online++;
		size_t k;
		for (k = 0; k < n; k++) {
			if (cores[k].package == t->package_id && cores[k].core == t->core_id)
				break;
		}
		if (k == n)
			cores[n++] = (struct report_core){ .package = t->package_id, .core = t->core_id };
		if (cores[k].n < nitems(cores[k].threads))
			cores[k].threads[cores[k].n++] = t->cpu;
	}
	fprintf(out, "%sHost: %zu cores, %zu threads%s\n", col(color, C_BOLD), n, online, col(color, C_OFF));
	struct strbuf pin = { 0 };
	bool host_core_seen = false, host_core_smt = false;
	for (size_t k = 0; k < n; k++) {
		qsort(cores[k].threads, cores[k].n, sizeof(int), report_cmp_int);
		struct strbuf list = { 0 };
		bool has_cpu0 = false;
		for (size_t j = 0; j < cores[k].n; j++) {
			strbuf_printf(&list, "%s%d", j ? "," : "", cores[k].threads[j]);
			has_cpu0 |= cores[k].threads[j] == 0;
		}
		fprintf(out, "Core %d (package %d): threads %s\n", cores[k].core, cores[k].package, list.s ? list.s : "");
		if (has_cpu0 && !host_core_seen) {
			host_core_seen = true;
			host_core_smt = cores[k].n > 1;
		} else
			strbuf_printf(&pin, "%s%s", pin.len ? "," : "", list.s ? list.s : "");
		strbuf_free(&list);
	}
	if (pin.len > 0)
		fprintf(out, "To pin a guest to every core but the one of CPU 0 (left%s to the host):\n"
		    "  -pinvcpus %s\n", host_core_smt ? " with its sibling" : "", pin.s);
	else
		fprintf(out, "This host has a single core: leave it to the host and let the guest float.\n");
	strbuf_free(&pin);
	free(cores);
}

void
report_colortest(FILE *out)
{
	static const char *const names[] = { "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white" };
	for (int bright = 0; bright < 2; bright++) {
		for (int i = 0; i < 8; i++) {
			int code = (bright ? 90 : 30) + i;
			fprintf(out, "\033[%dm%-15s\033[0m \033[1;%dm%-15s\033[0m \033[%dm%-15s\033[0m  (%d)\n", code,
			    names[i], code, "bold", code + 10, "background", code);
		}
	}
}
