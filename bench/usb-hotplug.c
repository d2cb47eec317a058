/* Benchmark 3b (the measuring half; bench/hotplug.py prints the table): the
 * supervised run (session_run(), the real loop and usbwatch) against the fake
 * QEMU, with umockdev supplying USB uevents, as tests/usb/test-usb-session.c
 * does. A helper thread plugs a device matching -usb N times; each time it
 * measures from just before umockdev_testbed_add_device() (which creates the
 * sysfs entry and sends the add uevent) to the usb-host device_add arriving at
 * the fake QEMU (its command record is a FIFO read by another thread), then
 * unplugs it and waits for the device_del. Prints one JSON object with the
 * latencies' p50/p99. Run under umockdev-wrapper. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <umockdev.h>

#include "hostroot.h"
#include "log.h"
#include "options.h"
#include "passthrough.h"
#include "plan.h"
#include "session.h"
#include "util.h"

static UMockdevTestbed *tb;
static char *root_hub;
static char record[256];
static size_t n_rounds;
static double *lat;
static const char *failure;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int n_cont, n_add, n_del;
static double last_add_at;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads the fake QEMU's record FIFO and counts what arrives, with times. */
/* The FIFO is opened by main() without blocking (umockdev's preload holds a
 * lock around open(), so a blocking FIFO open here would stall every other
 * thread's file access); main also keeps a write end open so reads never see
 * end-of-file before the fake QEMU opens its end. */
static int record_rfd = -1, record_wfd = -1;

static void *
reader(void *arg)
{
	FILE *f = fdopen(record_rfd, "r");
	if (f == NULL)
		return NULL;
	char line[8192];
	while (fgets(line, sizeof(line), f) != NULL) {
		double t = now();
		pthread_mutex_lock(&mu);
		if (strstr(line, "\"cont\"") != NULL)
			n_cont++;
		if (strstr(line, "\"usb-host\"") != NULL) {
			n_add++;
			last_add_at = t;
		}
		if (strstr(line, "\"device_del\"") != NULL)
			n_del++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	fclose(f);
	return NULL;
}

static bool
wait_count(int *counter, int want)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&mu);
	while (*counter < want) {
		if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
			break;
	}
	bool ok = *counter >= want;
	pthread_mutex_unlock(&mu);
	return ok;
}

static void *
user(void *arg)
{
	if (!wait_count(&n_cont, 1)) {
		failure = "the guest never started";
		goto out;
	}
	for (size_t i = 0; i < n_rounds; i++) {
		char devnum[8], env_devnum[8];
		snprintf(devnum, sizeof(devnum), "%zu", 2 + i % 120);
		snprintf(env_devnum, sizeof(env_devnum), "%03zu", 2 + i % 120);
		double t0 = now();
		char *stick = umockdev_testbed_add_device(tb, "usb", "1-4", root_hub, "busnum", "1", "devnum", devnum,
		    "idVendor", "0781", "idProduct", "5581", "bDeviceClass", "00", "product", "Ultra Stick",
		    "serial", "S1", NULL, "DEVTYPE", "usb_device", "BUSNUM", "001", "DEVNUM", env_devnum, NULL);
		if (!wait_count(&n_add, (int)i + 1)) {
			failure = "a plugged stick was not attached within 30 s";
			g_free(stick);
			goto out;
		}
		pthread_mutex_lock(&mu);
		lat[i] = last_add_at - t0;
		pthread_mutex_unlock(&mu);
		umockdev_testbed_uevent(tb, stick, "remove");
		umockdev_testbed_remove_device(tb, stick);
		g_free(stick);
		if (!wait_count(&n_del, (int)i + 1)) {
			failure = "an unplugged stick was not removed within 30 s";
			goto out;
		}
	}
out:
	kill(getpid(), SIGTERM);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: usb-hotplug QEMU-MOCK N (under umockdev-wrapper)\n");
		return 2;
	}
	const char *preload = getenv("LD_PRELOAD");
	if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
		fprintf(stderr, "usb-hotplug: not running under umockdev-wrapper\n");
		return 77;
	}
	n_rounds = strtoul(argv[2], NULL, 10);
	if (n_rounds == 0)
		return 2;
	lat = xcalloc(n_rounds, sizeof(*lat));
	log_init(getenv("VFIO_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, false);

	tb = umockdev_testbed_new();
	char *root = umockdev_testbed_get_root_dir(tb);
	hostroot_init(root);
	char *pci = umockdev_testbed_add_device(tb, "pci", "0000:00:14.0", NULL, "class", "0x0c0330", NULL, NULL);
	root_hub = umockdev_testbed_add_device(tb, "usb", "usb1", pci, "busnum", "1", "devnum", "1",
	    "idVendor", "1d6b", "idProduct", "0002", "bDeviceClass", "09", NULL, "DEVTYPE", "usb_device", NULL);
	snprintf(record, sizeof(record), "%s/qmp-record", root);
	if (mkfifo(record, 0666) < 0) {
		perror("mkfifo");
		return 1;
	}
	chmod(record, 0666);
	record_rfd = open(record, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	record_wfd = open(record, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (record_rfd < 0 || record_wfd < 0 || fcntl(record_rfd, F_SETFL, 0) < 0) {
		perror("record FIFO");
		return 1;
	}
	setenv("QMP_MOCK_RECORD", record, 1);
	setenv("VFIO_TEST_QEMU_ENV", "QMP_MOCK_RECORD", 1);    /* QEMU's environment is clean otherwise */
	setenv("VFIO_QEMU", argv[1], 1);
	unsetenv("SUDO_UID");
	unsetenv("SUDO_GID");

	struct options opts = { .name = "usbbench", .shutdowntimeout_s = 20, .bindtimeout_s = 10 };
	opts.usb_regex = "Stick";
	if (passthrough_regex(&opts.usb_re, "-usb", opts.usb_regex, NULL) != 0)
		return 1;
	opts.usb_re_set = true;
	/* A plan as plan_build() makes them: argv[0] is the QEMU main chose. */
	struct plan plan = { .memory_mib = 64, .has_xhci = true };
	const char *qargv[] = { "qemu-system-x86_64", "-name", "usbbench", "-machine", "q35", "-nodefaults", "-S",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-m", "64",
		"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,port=1,addr=0x1c.0",
		"-device", "qemu-xhci,id=xhci,bus=pcie.0" };
	qargv[0] = getenv("VFIO_QEMU");
	for (size_t i = 0; i < nitems(qargv); i++)
		strv_push(&plan.argv, qargv[i]);
	plan.qmp = json_array();
	plan.host_changes = json_array();
	plan.devices = json_pack("{s:[], s:[]}", "pci", "usb");
	plan.n_root_ports = 1;

	pthread_t r, u;
	pthread_create(&r, NULL, reader, NULL);
	pthread_create(&u, NULL, user, NULL);
	int status = session_run(&opts, &plan);
	pthread_join(u, NULL);
	close(record_wfd);          /* the reader ends once the fake QEMU's end is closed too */
	pthread_join(r, NULL);
	if (failure != NULL) {
		fprintf(stderr, "usb-hotplug: %s\n", failure);
		return 1;
	}
	if (status != SESSION_EXIT_OK) {
		fprintf(stderr, "usb-hotplug: the supervised run ended with %d\n", status);
		return 1;
	}
	qsort(lat, n_rounds, sizeof(*lat), cmp_double);
	size_t k99 = (size_t)(0.99 * (double)n_rounds + 0.5);
	if (k99 >= n_rounds)
		k99 = n_rounds - 1;
	printf("{\"n\": %zu, \"p50_s\": %.9f, \"p99_s\": %.9f, \"max_s\": %.9f}\n", n_rounds,
	    lat[(size_t)(0.5 * (double)n_rounds)], lat[k99], lat[n_rounds - 1]);
	regfree(&opts.usb_re);
	plan_free(&plan);
	free(lat);
	g_free(root_hub);
	g_free(pci);
	umockdev_testbed_clear(tb);
	g_object_unref(tb);
	g_free(root);
	return 0;
}
