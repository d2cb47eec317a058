/* What a new run does with what an earlier one left (adopt.h): the one rule
 * the dry run and the run share, the journal formats it reads (format 1,
 * what vfio wrote before adoption, from a file that vfio wrote), the run
 * record a later supervisor runs the guest by, and the flags it says
 * differ. A live "QEMU" is this test process (its pid and start time). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "adopt.h"
#include "hostroot.h"
#include "journal.h"
#include "log.h"
#include "passthrough.h"
#include "proc.h"
#include "rundir.h"

static char root[256];
static char *dir;

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vfio-test-adopt-XXXXXX");
	assert_non_null(mkdtemp(root));
	hostroot_init(root);
	dir = host_pathdup("/run/vfio/g");
	char *cmd = xasprintf("mkdir -p '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
	return 0;
}

static enum opt_running_how
decide(void)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_load(&j, dir, &err), 0);
	char *why = NULL;
	enum opt_running_how how = adopt_decide(&j, &why);
	free(why);
	journal_close(&j);
	return how;
}

static void
begin_chown(struct journal *j)
{
	json_t *c = json_pack("{s:s, s:s}", "action", "dev-chown", "target", "/dev/x");
	size_t idx;
	struct verr err = { 0 };
	assert_int_equal(journal_begin(j, c, NULL, &idx, &err), 0);
	json_decref(c);
}

static void
record_self_as_qemu(struct journal *j)
{
	unsigned long long start;
	struct verr err = { 0 };
	assert_int_equal(proc_start_time(getpid(), &start), 0);
	assert_int_equal(journal_record_qemu(j, getpid(), start, &err), 0);
}

static void
test_no_journal_is_a_fresh_start(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_load(&j, dir, &err), -ENOENT);
	struct opt_running r;
	adopt_probe("g", &r);
	assert_int_equal(r.how, OPT_RUN_FRESH);
}

static void
test_changes_left_without_qemu_are_given_back_first(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	begin_chown(&j);
	journal_close(&j);
	assert_int_equal(decide(), OPT_RUN_RESTORE_FIRST);
}

static void
test_running_guest_that_was_started_is_adopted(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	json_t *run = json_pack("{s:s, s:[s], s:{}, s:{}}", "name", "g", "flags", "-memory 4G", "plan", "options");
	assert_int_equal(journal_record_run(&j, run, &err), 0);
	json_decref(run);
	begin_chown(&j);
	record_self_as_qemu(&j);
	journal_close(&j);
	/* QEMU runs, but the guest never got cont: nothing to adopt. */
	assert_int_equal(decide(), OPT_RUN_RESTORE_FIRST);
	assert_int_equal(journal_open(&j, dir, &err), 0);
	assert_int_equal(journal_record_started(&j, &err), 0);
	journal_close(&j);
	assert_int_equal(decide(), OPT_RUN_ADOPT);
	struct opt_running r;
	adopt_probe("g", &r);
	assert_int_equal(r.how, OPT_RUN_ADOPT);
	assert_int_equal(r.qemu_pid, getpid());
	assert_string_equal(json_string_value(json_array_get(r.flags, 0)), "-memory 4G");
	json_decref(r.flags);
	free(r.why);
}

/* tests/session/fixtures/journal-v1 is a journal the vfio before adoption
 * wrote (the commit before this format, killed after spawning QEMU): its
 * changes are read and restorable, its QEMU cannot be adopted. */
static void
write_v1_journal(pid_t pid, unsigned long long start)
{
	const char *src = getenv("VFIO_SRCDIR");
	if (src == NULL)
		skip();
	char *path = xasprintf("%s/tests/session/fixtures/journal-v1", src);
	FILE *in = fopen(path, "r");
	assert_non_null(in);
	char *out_path = xasprintf("%s/journal", dir);
	FILE *out = fopen(out_path, "w");
	assert_non_null(out);
	char line[4096];
	while (fgets(line, sizeof(line), in) != NULL) {
		char *at = strstr(line, "@PID@");
		if (at != NULL) {
			*at = '\0';
			char *rest = strstr(at + 1, "@START@");
			assert_non_null(rest);
			fprintf(out, "%s%d,\"start\":%llu%s", line, (int)pid, start, rest + 7);
		} else {
			fputs(line, out);
		}
	}
	fclose(in);
	fclose(out);
	free(path);
	free(out_path);
}

static void
test_format_1_journal_of_a_live_qemu_cannot_be_adopted(void **state)
{
	unsigned long long start;
	assert_int_equal(proc_start_time(getpid(), &start), 0);
	write_v1_journal(getpid(), start);
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_load(&j, dir, &err), 0);
	assert_int_equal(j.version, 1);
	assert_int_equal(j.n, 2);
	assert_true(journal_in_force(&j));
	char *why = NULL;
	assert_int_equal(adopt_decide(&j, &why), OPT_RUN_UNREACHABLE);
	assert_non_null(strstr(why, "started by an earlier vfio"));
	free(why);
	journal_close(&j);
}

static void
test_format_1_journal_of_a_dead_qemu_is_given_back_first(void **state)
{
	/* pid 1 never started at tick 1: no such QEMU */
	write_v1_journal(1, 1);
	assert_int_equal(decide(), OPT_RUN_RESTORE_FIRST);
}

static void
test_journal_of_a_newer_format_is_refused_with_a_message(void **state)
{
	char *path = xasprintf("%s/journal", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "{\"version\": 99, \"run\": {}}\n");
	fclose(f);
	free(path);
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_load(&j, dir, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.msg, "newer vfio (format 99"));
}

static void
test_device_records_keep_the_last_and_its_pending_removal(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	json_t *a = json_pack("{s:s, s:s}", "driver", "usb-host", "id", "usb-1-4");
	json_t *b = json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", "nic1", "netdev", "net1");
	assert_int_equal(journal_record_device(&j, a, &err), 0);
	assert_int_equal(journal_record_device(&j, b, &err), 0);
	assert_int_equal(journal_record_device_del(&j, "nic1", &err), 0);
	assert_int_equal(journal_record_device_del(&j, "usb-1-4", &err), 0);
	assert_int_equal(journal_record_device_gone(&j, "usb-1-4", &err), 0);
	json_decref(a);
	json_decref(b);
	journal_close(&j);
	assert_int_equal(journal_load(&j, dir, &err), 0);
	assert_int_equal(json_object_size(j.devices), 1);
	json_t *nic = json_object_get(j.devices, "nic1");
	assert_true(json_is_true(json_object_get(nic, "del")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(nic, "args"), "netdev")), "net1");
	journal_close(&j);
}

static void
test_changes_made_for_a_device_are_found_newest_first(void **state)
{
	struct journal j;
	struct verr err = { 0 };
	assert_int_equal(journal_open(&j, dir, &err), 0);
	char *node = host_pathdup("/run/vfio/g/node");
	close(open(node, O_WRONLY | O_CREAT, 0600));
	free(node);
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i}}", "action", "dev-chown", "target", "/run/vfio/g/node", "args",
	    "uid", 0, "gid", 0);
	struct journal_apply_opts o = { .for_id = "hostdev-1" };
	size_t i0, i1, i2;
	assert_int_equal(journal_apply(&j, c, &o, &i0, &err), 0);
	o.for_id = NULL;
	assert_int_equal(journal_apply(&j, c, &o, &i1, &err), 0);
	o.for_id = "hostdev-1";
	assert_int_equal(journal_apply(&j, c, &o, &i2, &err), 0);
	json_decref(c);
	journal_close(&j);
	assert_int_equal(journal_load(&j, dir, &err), 0);
	size_t n, *v = journal_entries_for(&j, "hostdev-1", &n);
	assert_int_equal(n, 2);
	assert_int_equal(v[0], i2);
	assert_int_equal(v[1], i0);
	free(v);
	journal_close(&j);
}

static void
test_run_record_gives_back_the_plan_and_options_the_session_reads(void **state)
{
	struct options o;
	options_init(&o);
	strv_push(&o.flags, "-memory 4G");
	o.shutdowntimeout_s = 7;
	o.bindtimeout_s = 3;
	o.usb_regex = xstrdup("Logitech");
	assert_int_equal(passthrough_regex(&o.usb_re, "-usb", o.usb_regex, NULL), 0);
	o.usb_re_set = true;
	struct plan p = { .n_root_ports = 5, .has_xhci = true, .has_disk_image = true, .memory_mib = 4096 };
	strv_push(&p.argv, "qemu-system-x86_64");
	p.qmp = json_array();
	p.devices = json_pack("{s:[], s:[]}", "pci", "usb");
	struct spawn_user u = { .drop = true, .uid = 1000, .gid = 1000 };
	json_t *run = adopt_run_record(&o, &p, &u);
	options_free(&o);
	plan_free(&p);

	struct options lo;
	struct plan lp;
	struct spawn_user lu;
	struct verr err = { 0 };
	assert_int_equal(adopt_run_load(run, &lo, &lp, &lu, &err), 0);
	json_decref(run);
	assert_int_equal(lo.shutdowntimeout_s, 7);
	assert_int_equal(lo.bindtimeout_s, 3);
	assert_true(lo.usb_re_set);
	assert_int_equal(regexec(&lo.usb_re, "Bus 001 Device 004: ID 046d:c52b Logitech, Inc.", 0, NULL, 0), 0);
	assert_int_equal(lp.n_root_ports, 5);
	assert_true(lp.has_xhci && lp.has_disk_image);
	assert_int_equal(lp.memory_mib, 4096);
	assert_true(lu.drop);
	assert_int_equal(lu.uid, 1000);
	options_free(&lo);
	adopt_plan_free(&lp);
	spawn_user_free(&lu);
}

static void
test_differences_name_each_flag_that_differs_and_no_other(void **state)
{
	json_t *then = json_pack("[s, s, s, s]", "-memory 4G", "-pci NVMe", "-run", "-hugepages");
	struct strv now = { 0 }, out = { 0 };
	strv_push(&now, "-memory 8G");
	strv_push(&now, "-pci NVMe");
	strv_push(&now, "-json");
	strv_push(&now, "-quiet");
	strv_push(&now, "-usb Logitech");
	adopt_differences(then, &now, &out);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.v[0], "-memory: 8G now, 4G in the running guest");
	assert_string_equal(out.v[1], "-usb: Logitech now, not given in the running guest");
	assert_string_equal(out.v[2], "-hugepages: not given now, given in the running guest");
	json_decref(then);
	strv_free(&now);
	strv_free(&out);
}

int
main(void)
{
	log_init(LOG_LEVEL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_journal_is_a_fresh_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_left_without_qemu_are_given_back_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_guest_that_was_started_is_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_1_journal_of_a_live_qemu_cannot_be_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_1_journal_of_a_dead_qemu_is_given_back_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_of_a_newer_format_is_refused_with_a_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_records_keep_the_last_and_its_pending_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_made_for_a_device_are_found_newest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_record_gives_back_the_plan_and_options_the_session_reads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_differences_name_each_flag_that_differs_and_no_other, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
