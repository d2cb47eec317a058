/* The command line: every flag and alias of the original script, their
 * case and dash variants, every value check and its message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "options.h"
#include "rundir.h"
#include "util.h"

/* Parse a NULL-terminated list of words after "vfio". */
static int
parse(struct options *o, struct verr *err, ...)
{
	char *argv[64] = { "vfio" };
	int argc = 1;
	va_list ap;
	va_start(ap, err);
	for (char *w; (w = va_arg(ap, char *)) != NULL && argc < 63;)
		argv[argc++] = w;
	va_end(ap);
	memset(err, 0, sizeof(*err));
	return options_parse(o, argc, argv, err);
}

static void
expect_error(const char *needle, ...)
{
	/* the words, then NULL */
	char *argv[64] = { "vfio" };
	int argc = 1;
	va_list ap;
	va_start(ap, needle);
	for (char *w; (w = va_arg(ap, char *)) != NULL && argc < 63;)
		argv[argc++] = w;
	va_end(ap);
	struct options o;
	struct verr err = { 0 };
	assert_int_equal(options_parse(&o, argc, argv, &err), -EINVAL);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("expected '%s' in the error, got: %s", needle, err.msg);
	options_free(&o);
}

/* A valid value for each flag that takes one. */
static const char *
sample_value(const char *name)
{
	static const struct { const char *name, *value; } values[] = {
		{ "image", "/tmp/disk.img" }, { "imageformat", "raw" }, { "iso", "/tmp/x.iso" },
		{ "bios", "/tmp/OVMF_CODE.fd" }, { "biosvars", "/tmp/vars.fd" }, { "kernel", "/boot/vmlinuz" },
		{ "initrd", "/boot/initrd.img" }, { "cmdline", "console=ttyS0" }, { "memory", "4G" },
		{ "hugepages", NULL }, { "pinvcpus", "0-3" }, { "accel", "tcg" }, { "pci", "NVIDIA" },
		{ "usb", "046d:c52b" }, { "romfile", "/tmp/vbios.rom" }, { "bindtimeout", "10" },
		{ "bridge", "br0" }, { "tap", "tap0" }, { "hostint", "eth0" }, { "portforward", "tcp:2222:22" },
		{ "lgsize", "128M" }, { "extras", "-device ac97" }, { "name", "win11" }, { "user", "root" },
		{ "shutdowntimeout", "30" }, { "restore", NULL }, { "mac", "52:54:00:12:34:56" },
	};
	for (size_t i = 0; i < nitems(values); i++) {
		if (strcmp(values[i].name, name) == 0)
			return values[i].value;
	}
	return NULL;
}

/* Every name and alias in the table parses, with its value when it takes one. */
static void
test_every_flag_and_alias_is_accepted(void **state)
{
	size_t checked = 0;
	for (size_t i = 0; options_info(i) != NULL; i++) {
		const struct option_info *in = options_info(i);
		/* -args FILE is expanded by main() before options_parse() runs
		 * (docs-args-file-through-binary tests it through the binary). */
		if (strcmp(in->name, "args") == 0)
			continue;
		char words[256];
		snprintf(words, sizeof(words), "%s %s", in->name, in->aliases);
		char *save = NULL;
		for (char *w = strtok_r(words, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
			char flag[80];
			snprintf(flag, sizeof(flag), "-%s", w);
			const char *v = in->arg ? sample_value(in->name) : NULL;
			struct options o;
			struct verr err;
			int rc = strcmp(in->name, "imageformat") == 0 ?
			    parse(&o, &err, "-image", "/tmp/a.img", flag, v, NULL) :
			    parse(&o, &err, flag, v, NULL);
			if (rc != 0)
				fail_msg("%s %s was refused: %s", flag, v ? v : "", err.msg);
			options_free(&o);
			checked++;
		}
	}
	assert_true(checked > 0);
}

/* Every flag and alias the issue lists from the original script is in the
 * table (the loop above then proves each parses). */
static void
test_every_flag_of_the_original_is_in_the_table(void **state)
{
	static const char *const words[] = {
		"image", "imageformat", "format", "iso", "nvme", "avoidVirtio", "noVirtio", "bios", "noBios",
		"legacy", "legacyboot", "biosvars", "secureboot", "tpm", "win11", "memory", "mem", "m", "hugepages",
		"huge", "pinvcpus", "cputhreads", "showpairs", "showthreads", "showcpu", "iommu", "iommugroups",
		"iommugrouping", "pci", "usb", "romfile", "vbios", "bridge", "tap", "interface", "hostint", "ethernet",
		"nonet", "portforward", "hyperv", "hostaudio", "looking-glass", "lookingglass", "lg", "spice",
		"qemu-agent", "qemuagent", "qemu", "agents", "kernel", "k", "initrd", "initramfs", "rd", "init",
		"cmdline", "append", "extras", "ignorevtcon", "ignoreframebuffer", "leavefb", "leaveframebuffer",
		"leavevtcon", "killx", "force", "quiet", "q", "silence", "s", "nocolor", "nocolors", "colortest",
		"help", "run", "name", "json", "version", "accel", "user", "shutdowntimeout", "restore", "isolate",
		"lgsize", "bindtimeout", "createvars",
	};
	for (size_t w = 0; w < nitems(words); w++) {
		bool found = false;
		for (size_t i = 0; options_info(i) != NULL && !found; i++) {
			const struct option_info *in = options_info(i);
			if (strcasecmp(in->name, words[w]) == 0)
				found = true;
			char al[256];
			snprintf(al, sizeof(al), "%s", in->aliases);
			char *save = NULL;
			for (char *a = strtok_r(al, " ", &save); a && !found; a = strtok_r(NULL, " ", &save))
				found = strcasecmp(a, words[w]) == 0;
		}
		if (!found)
			fail_msg("-%s is not in the flag table", words[w]);
	}
}

static void
test_flags_are_case_insensitive_with_one_or_two_dashes(void **state)
{
	const char *forms[] = { "-pci", "-PCI", "--pci", "--PcI" };
	for (size_t i = 0; i < nitems(forms); i++) {
		struct options o;
		struct verr err;
		assert_int_equal(parse(&o, &err, forms[i], "NVIDIA", "-noVirtio", "--LG", NULL), 0);
		assert_string_equal(o.pci_regex, "NVIDIA");
		assert_true(o.novirtio);
		assert_true(o.looking_glass);
		options_free(&o);
	}
}

static void
test_aliases_set_the_same_option(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-mem", "2G", "-k", "/k", "-rd", "/i", "-append", "x", "-vbios", "/r",
	    "-interface", "tap3", "-ethernet", "eth1", "-bridge", "br1", "-q", "-leavefb", "-showpairs",
	    "-iommugrouping", "-legacyboot", "-avoidVirtio", "-qemu", "-huge", "-nocolors", NULL), 0);
	assert_int_equal(o.memory_mib, 2048);
	assert_string_equal(o.kernel, "/k");
	assert_string_equal(o.initrd, "/i");
	assert_string_equal(o.cmdline, "x");
	assert_string_equal(o.romfile, "/r");
	assert_string_equal(o.tap, "tap3");
	assert_string_equal(o.hostint, "eth1");
	assert_true(o.quiet && o.ignorevtcon && o.cputhreads && o.iommugroups && o.nobios && o.novirtio);
	assert_true(o.qemu_agent && o.hugepages && o.nocolor);
	assert_null(o.hugepages_mount);
	options_free(&o);
}

static void
test_defaults(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, NULL), 0);
	assert_string_equal(o.name, "vfio");
	assert_int_equal(o.memory_mib, 0);
	assert_int_equal(o.lgsize_mib, 64);
	assert_int_equal(o.bindtimeout_s, 5);
	assert_int_equal(o.shutdowntimeout_s, 60);
	assert_int_equal(o.user_uid, -1);
	assert_false(o.run);
	options_free(&o);
}

static void
test_unknown_flag_suggests_the_nearest(void **state)
{
	expect_error("did you mean -pci?", "-pcie", "x", NULL);
	expect_error("did you mean -hugepages?", "-hugepage", NULL);
	expect_error("did you mean -looking-glass?", "-lookingglas", NULL);
	expect_error("unknown flag '--imagefromat'", "--imagefromat", "raw", NULL);
}

static void
test_a_word_that_is_not_a_flag_is_refused(void **state)
{
	expect_error("unexpected argument 'disk.img'", "disk.img", NULL);
}

static void
test_missing_value_names_the_flag(void **state)
{
	expect_error("-image needs a value", "-image", NULL);
	expect_error("-memory needs a value", "-m", NULL);
}

static void
test_imageformat_applies_to_the_latest_image(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-image", "/a", "-image", "/b", "-format", "raw", "-image", "/c",
	    "-imageformat", "qcow2", "-image", "/d,format=vmdk", NULL), 0);
	assert_int_equal(o.n_images, 4);
	assert_null(o.images[0].format);
	assert_string_equal(o.images[1].format, "raw");
	assert_string_equal(o.images[2].format, "qcow2");
	assert_string_equal(o.images[3].path, "/d");
	assert_string_equal(o.images[3].format, "vmdk");
	options_free(&o);
}

static void
test_imageformat_before_any_image_is_refused(void **state)
{
	expect_error("-imageformat raw: the format applies to the latest -image, and no -image came before it",
	    "-imageformat", "raw", "-image", "/a", NULL);
	expect_error("'rawr' is not a disk format", "-image", "/a", "-imageformat", "rawr", NULL);
}

static void
test_sizes(void **state)
{
	struct { const char *in; uint64_t mib; } ok[] = {
		{ "8G", 8192 }, { "8192", 8192 }, { "8192M", 8192 }, { "1T", 1048576 }, { "2048K", 2 },
		{ "4g", 4096 }, { "4GiB", 4096 }, { "512MB", 512 },
	};
	for (size_t i = 0; i < nitems(ok); i++) {
		uint64_t mib = 0;
		assert_int_equal(options_parse_size(ok[i].in, &mib, NULL), 0);
		assert_int_equal(mib, ok[i].mib);
	}
	expect_error("-memory: '0' is zero", "-memory", "0", NULL);
	expect_error("-memory: 'lots' is not a size", "-m", "lots", NULL);
	expect_error("'8X' has an unknown unit", "-m", "8X", NULL);
	expect_error("'1K' is not a whole number of MiB", "-m", "1K", NULL);
	expect_error("'8GB2' has trailing characters", "-m", "8GB2", NULL);
	expect_error("'99999999999999999999' is too large", "-m", "99999999999999999999", NULL);
	expect_error("must be a power of two", "-lgsize", "48M", NULL);
}

static void
test_cpu_lists(void **state)
{
	int *cpus = NULL;
	size_t n = 0;
	assert_int_equal(options_parse_cpulist("0-5,12-17", &cpus, &n, NULL), 0);
	assert_int_equal(n, 12);
	assert_int_equal(cpus[5], 5);
	assert_int_equal(cpus[6], 12);
	assert_int_equal(options_parse_cpulist("0,12,1,13", &cpus, &n, NULL), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cpus[1], 12);
	free(cpus);
	expect_error("-pinvcpus: '0,1,1' names CPU 1 twice", "-pinvcpus", "0,1,1", NULL);
	expect_error("-pinvcpus: '0-3,2' names CPU 2 twice", "-pinvcpus", "0-3,2", NULL);
	expect_error("the range 5-2 runs backwards; write 2-5", "-pinvcpus", "5-2", NULL);
	expect_error("'0,,1' is not a CPU list", "-pinvcpus", "0,,1", NULL);
	expect_error("'a-b' is not a CPU list", "-pinvcpus", "a-b", NULL);
	expect_error("'-1' is not a CPU list", "-pinvcpus", "-1", NULL);
}

static void
test_port_forwards(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-portforward", "tcp:2222:22", "-portforward", "UDP:33389:3389", NULL), 0);
	assert_int_equal(o.n_portfwds, 2);
	assert_string_equal(o.portfwds[0].proto, "tcp");
	assert_int_equal(o.portfwds[0].host_port, 2222);
	assert_int_equal(o.portfwds[0].guest_port, 22);
	assert_string_equal(o.portfwds[1].proto, "udp");
	options_free(&o);
	expect_error("the protocol must be tcp or udp", "-portforward", "sctp:1:2", NULL);
	expect_error("ports run from 1 to 65535", "-portforward", "tcp:0:22", NULL);
	expect_error("ports run from 1 to 65535", "-portforward", "tcp:22:65536", NULL);
	expect_error("is not protocol:hostport:guestport", "-portforward", "tcp:22", NULL);
	expect_error("is not protocol:hostport:guestport", "-portforward", "tcp:22:33:44", NULL);
}

static void
test_regex_strips_pipes_and_joins_repeats(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-pci", "|NVIDIA|", "-pci", "USB|", "-usb", "||Logitech", NULL), 0);
	assert_string_equal(o.pci_regex, "NVIDIA|USB");
	assert_string_equal(o.usb_regex, "Logitech");
	assert_int_equal(regexec(&o.pci_re, "USB controller", 0, NULL, 0), 0);
	/* The original's regexes are case-sensitive. */
	assert_int_not_equal(regexec(&o.pci_re, "nvidia", 0, NULL, 0), 0);
	options_free(&o);
}

static void
test_bad_regex_carries_the_regcomp_message(void **state)
{
	regex_t re;
	char msg[256];
	int rc = regcomp(&re, "NVIDIA(", REG_EXTENDED);
	regerror(rc, &re, msg, sizeof(msg));
	regfree(&re);
	expect_error(msg, "-pci", "NVIDIA(", NULL);
	expect_error("-usb 'a[' is not a valid extended regular expression", "-usb", "a[", NULL);
	expect_error("-pci needs a regular expression", "-pci", "||", NULL);
}

static void
test_mac_must_be_a_unicast_address(void **state)
{
	expect_error("-mac '52:54:00:12:34' is not a MAC address", "-mac", "52:54:00:12:34", NULL);
	expect_error("-mac '52-54-00-12-34-56' is not a MAC address", "-mac", "52-54-00-12-34-56", NULL);
	expect_error("-mac 01:00:5e:00:00:01 is a multicast address", "-mac", "01:00:5e:00:00:01", NULL);
	struct options o;
	struct verr err = { 0 };
	assert_int_equal(parse(&o, &err, "-mac", "52:54:00:AB:cd:EF", NULL), 0);
	assert_string_equal(o.mac, "52:54:00:ab:cd:ef");
	options_free(&o);
}

static void
test_old_bridge_comma_form_is_refused(void **state)
{
	expect_error("was split into -tap, -bridge and -hostint; write -tap tap0 -bridge br0 -hostint eth0",
	    "-bridge", "tap0,br0,eth0", NULL);
	expect_error("not a valid interface name", "-tap", "a/b", NULL);
	expect_error("not a valid interface name", "-hostint", "averyveryverylongname", NULL);
}

static void
test_name_is_validated(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-name", "win-11_gaming.2", NULL), 0);
	assert_string_equal(o.name, "win-11_gaming.2");
	options_free(&o);
	expect_error("a guest name is 1-64 letters", "-name", "a/b", NULL);
	expect_error("a guest name is 1-64 letters", "-name", "", NULL);
	expect_error("a guest name is 1-64 letters", "-name",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL);
}

/* The runtime directory refused a hidden name that the options let through,
 * so the dry run passed and -run failed: one rule (rundir_check_name). */
static void
test_name_starting_with_a_dot_is_refused_as_rundir_would(void **state)
{
	expect_error("not starting with '.' or '-'", "-name", ".hidden", NULL);
	struct verr err = { 0 };
	assert_int_equal(rundir_check_name(".hidden", &err), -EINVAL);
}

/* vfioctl takes a first word starting with '-' as its own option: such a
 * guest could never be addressed. */
static void
test_name_starting_with_a_dash_is_refused(void **state)
{
	expect_error("-name: \"-x\" is not a guest name", "-name", "-x", NULL);
}

/* QEMU fails the second hostfwd for one host port naming the first rule;
 * the duplicate is named here instead. */
static void
test_duplicate_portforward_host_port_names_the_duplicate(void **state)
{
	expect_error("-portforward 'tcp:2222:80': host port tcp 2222 is already forwarded (to guest port 22)",
	    "-portforward", "tcp:2222:22", "-portforward", "tcp:2222:80", NULL);
	struct options o;
	struct verr err;
	/* the same port number over the other protocol is another socket */
	assert_int_equal(parse(&o, &err, "-portforward", "tcp:2222:22", "-portforward", "udp:2222:22", NULL), 0);
	assert_int_equal(o.n_portfwds, 2);
	options_free(&o);
}

static void
test_lgsize_is_bounded(void **state)
{
	expect_error("at most 1024M", "-lgsize", "8T", NULL);
	expect_error("at most 1024M", "-lgsize", "2G", NULL);
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-lgsize", "1G", NULL), 0);
	assert_int_equal(o.lgsize_mib, 1024);
	options_free(&o);
}

/* QEMU write-locks each image: the same one twice fails at start. */
static void
test_same_image_twice_is_refused(void **state)
{
	expect_error("-image /vm/a.img is given twice", "-image", "/vm/a.img", "-image", "/vm/a.img,format=raw", NULL);
}

static void
test_accel_seconds_user_and_restore(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-accel", "KVM", "-bindtimeout", "9", "-user", "root", "-restore",
	    "-hugepages", "/mnt/huge1G", NULL), 0);
	assert_int_equal(o.accel, OPT_ACCEL_KVM);
	assert_int_equal(o.bindtimeout_s, 9);
	assert_int_equal(o.user_uid, 0);
	assert_true(o.restore);
	assert_null(o.restore_name);
	assert_string_equal(o.hugepages_mount, "/mnt/huge1G");
	options_free(&o);
	assert_int_equal(parse(&o, &err, "-restore", "win11", NULL), 0);
	assert_string_equal(o.restore_name, "win11");
	options_free(&o);
	expect_error("the accelerator is kvm or tcg", "-accel", "hvf", NULL);
	expect_error("whole number of seconds", "-shutdowntimeout", "0", NULL);
	expect_error("whole number of seconds", "-bindtimeout", "5s", NULL);
	expect_error("no such user", "-user", "no-such-user-vfio-test", NULL);
	expect_error("must be an absolute path", "-hugepages", "relative/dir", NULL);
}

static void
test_win11_and_agents_imply_their_parts(void **state)
{
	struct options o;
	struct verr err;
	assert_int_equal(parse(&o, &err, "-win11", "-agents", NULL), 0);
	assert_true(o.win11 && o.tpm && o.secureboot);
	assert_true(o.qemu_agent && o.spice);
	options_free(&o);
}

static void
check_split(const char *in, const char *const *want, size_t n)
{
	struct strv sv = { 0 };
	struct verr err = { 0 };
	assert_int_equal(options_split_words(in, &sv, &err), 0);
	assert_int_equal(sv.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(sv.v[i], want[i]);
	strv_free(&sv);
}

static void
test_extras_split_like_a_shell_without_one(void **state)
{
	const char *a[] = { "-device", "ac97", "-display", "gtk" };
	check_split("  -device ac97\t-display gtk ", a, 4);
	const char *b[] = { "-append", "root=/dev/sda1 rw", "$HOME", "a\"b", "c d", "x\\y" };
	check_split("-append 'root=/dev/sda1 rw' $HOME \"a\\\"b\" c\\ d \"x\\y\"", b, 6);
	const char *c[] = { "", "ab" };
	check_split("'' a'b'", c, 2);
	const char *d[] = { "$(reboot)", ";", "rm" };
	check_split("'$(reboot)' ; rm", d, 3);
	expect_error("-extras: unterminated single quote", "-extras", "-device 'ac97", NULL);
	expect_error("-extras: unterminated double quote", "-extras", "-device \"ac97", NULL);
	expect_error("ends with a lone backslash", "-extras", "-device ac97\\", NULL);
}

static void
test_extras_that_take_qemu_out_of_the_supervisors_hands_are_refused(void **state)
{
	expect_error("-extras '-daemonize': QEMU would detach from the supervisor", "-extras", "-daemonize", NULL);
	expect_error("-extras '--daemonize': QEMU would detach", "-extras", "-m 1G --daemonize", NULL);
	expect_error("-extras '-qmp': a monitor other than the supervisor's", "-extras",
	    "-qmp unix:/tmp/q,server=on,wait=off", NULL);
	expect_error("-extras '-monitor'", "-extras", "-monitor stdio", NULL);
	expect_error("-extras '-mon'", "-extras", "-chardev socket,id=m,path=/tmp/m,server=on -mon chardev=m", NULL);
	expect_error("-extras '-serial mon:stdio': 'mon:' puts a monitor", "-extras", "-serial mon:stdio", NULL);
	expect_error("-extras '-pidfile'", "-extras", "-pidfile /tmp/q.pid", NULL);
	expect_error("-extras '-runas'", "-extras", "-runas nobody", NULL);
	expect_error("-extras '-sandbox'", "-extras", "-sandbox on", NULL);
	expect_error("-extras '-chroot'", "-extras", "-chroot /srv", NULL);
	expect_error("-extras '-D'", "-extras", "-d guest_errors -D /tmp/q.log", NULL);
	expect_error("-extras '-no-shutdown'", "-extras", "-no-shutdown", NULL);
	expect_error("-extras '-action shutdown=pause'", "-extras", "-action shutdown=pause", NULL);
	expect_error("-extras '-readconfig'", "-extras", "-readconfig /etc/q.cfg", NULL);
	/* Repeated -extras add up, and so does the check. */
	expect_error("-extras '-serial mon:stdio'", "-extras", "-serial", "-extras", "mon:stdio", NULL);
	/* What leaves QEMU in the supervisor's hands passes. */
	struct options o;
	struct verr err = { 0 };
	char *argv[] = { "vfio", "-extras", "-device virtio-rng-pci -serial file:/tmp/s -action panic=pause -d guest_errors", NULL };
	assert_int_equal(options_parse(&o, 3, argv, &err), 0);
	options_free(&o);
}

static void
test_help_lists_every_flag_and_alias(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	options_usage(f);
	fclose(f);
	for (size_t i = 0; options_info(i) != NULL; i++) {
		const struct option_info *in = options_info(i);
		char want[80];
		snprintf(want, sizeof(want), "  -%s", in->name);
		assert_non_null(strstr(buf, want));
		assert_non_null(strstr(buf, in->help));
		char words[256];
		snprintf(words, sizeof(words), "%s", in->aliases);
		char *save = NULL;
		for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			snprintf(want, sizeof(want), ", -%s", w);
			assert_non_null(strstr(buf, want));
		}
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_flag_and_alias_is_accepted),
		cmocka_unit_test(test_every_flag_of_the_original_is_in_the_table),
		cmocka_unit_test(test_flags_are_case_insensitive_with_one_or_two_dashes),
		cmocka_unit_test(test_aliases_set_the_same_option),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_unknown_flag_suggests_the_nearest),
		cmocka_unit_test(test_a_word_that_is_not_a_flag_is_refused),
		cmocka_unit_test(test_missing_value_names_the_flag),
		cmocka_unit_test(test_imageformat_applies_to_the_latest_image),
		cmocka_unit_test(test_imageformat_before_any_image_is_refused),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_cpu_lists),
		cmocka_unit_test(test_port_forwards),
		cmocka_unit_test(test_regex_strips_pipes_and_joins_repeats),
		cmocka_unit_test(test_bad_regex_carries_the_regcomp_message),
		cmocka_unit_test(test_old_bridge_comma_form_is_refused),
		cmocka_unit_test(test_mac_must_be_a_unicast_address),
		cmocka_unit_test(test_name_is_validated),
		cmocka_unit_test(test_name_starting_with_a_dot_is_refused_as_rundir_would),
		cmocka_unit_test(test_name_starting_with_a_dash_is_refused),
		cmocka_unit_test(test_duplicate_portforward_host_port_names_the_duplicate),
		cmocka_unit_test(test_lgsize_is_bounded),
		cmocka_unit_test(test_same_image_twice_is_refused),
		cmocka_unit_test(test_accel_seconds_user_and_restore),
		cmocka_unit_test(test_win11_and_agents_imply_their_parts),
		cmocka_unit_test(test_extras_split_like_a_shell_without_one),
		cmocka_unit_test(test_extras_that_take_qemu_out_of_the_supervisors_hands_are_refused),
		cmocka_unit_test(test_help_lists_every_flag_and_alias),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
