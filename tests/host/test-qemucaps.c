/* What the QEMU binary offers, asked of a fake QEMU (a shell script) that
 * answers its -help questions as QEMU 7.2 does, or too slowly: only a whole
 * answer counts, so a QEMU cut off in the middle of its device list never
 * makes the plan refuse devices it has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostroot.h"
#include "qemucaps.h"
#include "snapshot.h"
#include "util.h"

struct fake {
	char dir[64];
	char *qemu;
};

/* A fake QEMU in a fresh host root; device_tail is run after the first
 * device line of `-device help` (e.g. "sleep 5"). */
static void
fake_make(struct fake *f, const char *device_tail)
{
	strcpy(f->dir, "/tmp/vfio-qemucaps-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	setenv("VFIO_HOST_ROOT", f->dir, 1);
	hostroot_init(NULL);
	f->qemu = xasprintf("%s/qemu-system-x86_64", f->dir);
	FILE *out = fopen(f->qemu, "w");
	assert_non_null(out);
	fprintf(out, "#!/bin/sh\n"
	    "case \"$1\" in\n"
	    "-audiodev) printf 'Available audio drivers:\\nnone\\npa\\n' ;;\n"
	    "-display) printf 'Available display backend types:\\nnone\\ncurses\\n' ;;\n"
	    "-spice) printf 'spice options:\\n  port=<number>\\n' ;;\n"
	    "-device) printf 'Controller/Bridge/Hub devices:\\nname \"pcie-root-port\", bus PCI\\n'; %s\n"
	    "  printf 'Misc devices:\\nname \"vfio-pci\", bus PCI, desc \"VFIO-based PCI device assignment\"\\n' ;;\n"
	    "esac\n", device_tail);
	fclose(out);
	chmod(f->qemu, 0755);
}

static void
fake_free(struct fake *f)
{
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->qemu);
	qemucaps_set_deadline_ms(0);
}

static void
a_whole_answer_lists_every_device_and_driver(void **state)
{
	struct fake f;
	fake_make(&f, ":");
	struct qemu_caps caps = { 0 };
	qemucaps_read(&caps, f.qemu, 0, 0);
	assert_int_equal(caps.state, QEMU_CAPS_KNOWN);
	assert_true(caps.devices_known);
	assert_true(qemucaps_has(&caps.devices, "pcie-root-port"));
	assert_true(qemucaps_has(&caps.devices, "vfio-pci"));
	assert_true(caps.audiodevs_known);
	assert_true(qemucaps_has(&caps.audiodevs, "pa"));
	assert_int_equal(caps.spice, 1);
	qemucaps_free(&caps);
	fake_free(&f);
}

static void
a_device_list_cut_off_by_the_deadline_is_unknown_not_short(void **state)
{
	struct fake f;
	fake_make(&f, "sleep 5");
	qemucaps_set_deadline_ms(1000);
	struct qemu_caps caps = { 0 };
	qemucaps_read(&caps, f.qemu, 0, 0);
	/* The device list stopped after pcie-root-port: vfio-pci must not
	 * look missing. The questions answered in time still count. */
	assert_false(caps.devices_known);
	assert_true(caps.audiodevs_known);
	assert_true(qemucaps_has(&caps.audiodevs, "pa"));
	assert_int_equal(caps.spice, 1);
	qemucaps_free(&caps);
	/* Nothing was cached from the partial answer: the next read asks again. */
	qemucaps_set_deadline_ms(0);
	qemucaps_read(&caps, f.qemu, 0, 0);
	assert_false(caps.from_cache);
	qemucaps_free(&caps);
	fake_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_whole_answer_lists_every_device_and_driver),
		cmocka_unit_test(a_device_list_cut_off_by_the_deadline_is_unknown_not_short),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
