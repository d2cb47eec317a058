/* pci-names against libpci itself: for every id of the system pci.ids, ids
 * it lacks (answered by the udev hwdb), a missing file, crafted files with
 * every line rule, and files it leaves to libpci, pci_names_class and
 * pci_names_device give exactly what pci_lookup_name gives with
 * numeric_ids = 2. The expected strings are never written by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pci/pci.h>

#include "pci-names.h"
#include "util.h"

#define SYSTEM_IDS "/usr/share/misc/pci.ids"

struct id_pair {
	unsigned vendor, device;
};

struct id_set {
	struct id_pair *pairs;
	size_t n, cap;
};

static void
ids_add(struct id_set *s, unsigned vendor, unsigned device)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->pairs = xreallocarray(s->pairs, s->cap, sizeof(*s->pairs));
	}
	s->pairs[s->n++] = (struct id_pair){ vendor & 0xffff, device & 0xffff };
}

/* libpci reports a broken name file through acc->error, which must not
 * return; a test that expects it catches it here. */
static jmp_buf libpci_jmp;
static bool libpci_error_expected;
static char libpci_error_msg[512];

static void libpci_error(char *msg, ...) __attribute__((format(printf, 1, 2), noreturn));
static void libpci_quiet(char *msg, ...) __attribute__((format(printf, 1, 2)));

static void
libpci_error(char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	vsnprintf(libpci_error_msg, sizeof(libpci_error_msg), msg, ap);
	va_end(ap);
	if (!libpci_error_expected)
		fail_msg("libpci: %s", libpci_error_msg);
	longjmp(libpci_jmp, 1);
}

static void
libpci_quiet(char *msg, ...)
{
}

/* An access set up as pci.c sets it up, reading names from path (NULL:
 * libpci's default). */
static struct pci_access *
access_new(const char *path, bool hwdb)
{
	struct pci_access *acc = pci_alloc();
	acc->error = libpci_error;
	acc->warning = libpci_quiet;
	acc->debug = libpci_quiet;
	acc->numeric_ids = 2;
	if (path != NULL)
		pci_set_name_list_path(acc, xstrdup(path), 1);
	if (!hwdb) {
		char name[] = "hwdb.disable", value[] = "1";
		pci_set_param(acc, name, value);
	}
	return acc;
}

/* Every subclass of the classes pci.ids or the fixtures define, and a few
 * of each other class: the hwdb's wildcard class lookups are slow enough
 * that all 65 536 codes, on both sides, would take half a minute. */
static bool
class_worth_comparing(unsigned cls)
{
	unsigned c = cls >> 8, sc = cls & 0xff;
	return c <= 0x14 || c == 0x40 || c >= 0xfe || sc == 0x00 || sc == 0x01 || sc == 0x80 || sc == 0xff;
}

/* Those class codes and every pair in ids, pci-names (through its own
 * access) against libpci (through another, so neither sees the other's
 * loaded state). Returns whether pci-names indexed the file itself. */
static bool
assert_names_equal_libpci(const char *path, bool hwdb, const struct id_set *ids)
{
	struct pci_access *ref = access_new(path, hwdb);
	struct pci_access *acc = access_new(path, hwdb);
	struct pci_names *names = pci_names_open(acc);
	bool indexed = pci_names_indexed(names);
	char want[512], got[512];
	size_t bad = 0;

	for (unsigned cls = 0; cls <= 0xffff; cls++) {
		if (!class_worth_comparing(cls))
			continue;
		const char *w = pci_lookup_name(ref, want, sizeof(want), PCI_LOOKUP_CLASS, cls);
		const char *g = pci_names_class(names, got, sizeof(got), cls);
		if (strcmp(w, g) != 0 && bad++ < 10)
			print_error("class %04x: libpci \"%s\", pci-names \"%s\"\n", cls, w, g);
	}
	for (size_t i = 0; i < ids->n; i++) {
		unsigned v = ids->pairs[i].vendor, d = ids->pairs[i].device;
		const char *w = pci_lookup_name(ref, want, sizeof(want), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, v, d);
		const char *g = pci_names_device(names, got, sizeof(got), v, d);
		if (strcmp(w, g) != 0 && bad++ < 10)
			print_error("device %04x:%04x: libpci \"%s\", pci-names \"%s\"\n", v, d, w, g);
	}
	pci_names_close(names);
	pci_cleanup(acc);
	pci_cleanup(ref);
	if (bad > 0)
		fail_msg("%zu names differ from libpci's for %s", bad, path ? path : "libpci's default file");
	return indexed;
}

/* Ids absent from any pci.ids as well as present ones: the edges, a
 * fixed-seed spread of random pairs, and each listed vendor with device ids
 * next to its own. */
static void
ids_add_edges_and_random(struct id_set *s, const unsigned *vendors, size_t n_vendors)
{
	static const unsigned edges[] = { 0x0000, 0x0001, 0x7fff, 0x8000, 0xfffe, 0xffff };
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		for (size_t j = 0; j < sizeof(edges) / sizeof(edges[0]); j++)
			ids_add(s, edges[i], edges[j]);
	srand(1);
	for (int i = 0; i < 300; i++)
		ids_add(s, (unsigned)rand(), (unsigned)rand());
	for (size_t i = 0; i < n_vendors; i++) {
		ids_add(s, vendors[i], 0x0000);
		ids_add(s, vendors[i], 0xffff);
		ids_add(s, vendors[i], (unsigned)rand());
	}
}

/* The ids of a pci.ids read plainly: vendor lines and the device lines
 * right under them. */
static void
ids_from_file(struct id_set *s, const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[1100];
	unsigned vendor = 0, *vendors = NULL;
	size_t n_vendors = 0;
	bool in_vendor = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned id;
		if (line[0] != '\t' && line[0] != '#' && sscanf(line, "%4x", &id) == 1 && line[1] != ' ') {
			vendor = id;
			in_vendor = true;
			vendors = xreallocarray(vendors, n_vendors + 1, sizeof(*vendors));
			vendors[n_vendors++] = id;
			ids_add(s, vendor, 0);
		} else if (line[0] != '\t' && line[0] != '#' && line[0] != '\n') {
			in_vendor = false;
		} else if (in_vendor && line[0] == '\t' && line[1] != '\t' && sscanf(line + 1, "%4x", &id) == 1) {
			ids_add(s, vendor, id);
			ids_add(s, vendor, id + 1);
		}
	}
	fclose(f);
	ids_add_edges_and_random(s, vendors, n_vendors);
	free(vendors);
}

static void
names_equal_libpci_for_every_id_in_the_system_pci_ids(void **state)
{
	if (access(SYSTEM_IDS, R_OK) != 0)
		skip();
	struct id_set ids = { 0 };
	ids_from_file(&ids, SYSTEM_IDS);
	assert_true(ids.n > 30000);
	assert_true(assert_names_equal_libpci(SYSTEM_IDS, true, &ids));
	free(ids.pairs);
}

static void
names_equal_libpci_with_its_default_file(void **state)
{
	/* pci_alloc() names pci.ids.gz, which libpci reads as pci.ids when
	 * the .gz does not open: pci.c relies on that default. */
	struct id_set ids = { 0 };
	unsigned vendors[] = { 0x8086, 0x10de, 0x1002, 0x1af4 };
	ids_add_edges_and_random(&ids, vendors, 4);
	struct pci_access *acc = pci_alloc();
	bool plain_default = access(acc->id_file_name, F_OK) != 0;
	pci_cleanup(acc);
	bool indexed = assert_names_equal_libpci(NULL, true, &ids);
	if (plain_default)
		assert_true(indexed);
	free(ids.pairs);
}

static void
names_equal_libpci_without_a_name_file(void **state)
{
	/* Both then name from the udev hwdb alone, or (disabled) not at all. */
	if (access(SYSTEM_IDS, R_OK) != 0)
		skip();
	struct id_set ids = { 0 };
	ids_from_file(&ids, SYSTEM_IDS);
	assert_true(assert_names_equal_libpci("/nonexistent/pci.ids", true, &ids));
	assert_true(assert_names_equal_libpci("/nonexistent/pci.ids", false, &ids));
	free(ids.pairs);
}

/* Every line rule of libpci's parser once: comments and blank lines of
 * all kinds, one trailing blank cut (not two), tabs as separators,
 * uppercase hex, CRLF, a \r inside a line, a vendor without devices,
 * subsystem and prog-if lines shaped like devices and subclasses, a
 * generic-subsystem block and an unknown block whose nested lines look like
 * devices, classes between vendors, and a last line without a newline. */
static const char fixture_ids[] =
    "# a comment\n"
    "   # an indented comment\n"
    "\t# a tabbed comment\n"
    "\n"
    " \t \n"
    "\t\n"
    "0001  Vendor without devices\n"
    "0010  Vendor with a trailing space \n"
    "\t0001  Device with a trailing tab\t\n"
    "\t0002  Device with two trailing blanks \t\n"
    "0011  Vendor # not a comment\n"
    "\t0abc\tDevice after a tab\n"
    "\t0ABD  Device in uppercase hex\n"
    "\t\t0011 0abd  Subsystem shaped like a device\n"
    "\t\t0abe 0abe  Subsystem equal to the next device\n"
    "\t0abe  Device after subsystems\n"
    "00AB  Vendor in uppercase hex\r\n"
    "\t00cd  Device with CRLF\r\n"
    "\t00ce  Device with a \r inside\n"
    "C 00  Unclassified device\n"
    "\t00  Non-VGA unclassified device\n"
    "\t01  VGA compatible unclassified device\n"
    "0040  Vendor after a class\n"
    "\t0040  Device after a class\n"
    "S 0011\n"
    "\t1234  Generic subsystem shaped like a device of 0011\n"
    "X Unknown block\n"
    "\t5678  Nested in an unknown block\n"
    "\t\t9abc def0  Deeper in an unknown block\n"
    "C 01  Mass storage controller\n"
    "\t01  IDE interface\n"
    "\t\t00  Prog-if shaped like subclass 00\n"
    "\t\t06  Prog-if shaped like subclass 06\n"
    "\t06  SATA controller\n"
    "\t\t01  AHCI 1.0\n"
    "C 03  Display controller \n"
    "\t00  VGA compatible controller\n"
    "\t80\tDisplay controller\n"
    "C 0D  Class in uppercase hex\n"
    "\t10  Subclass of an uppercase class\n"
    "C fe  Class without subclasses\n"
    "abcd  Lowercase vendor\n"
    "\tabce  Its device\n"
    "\t\tabcd abcf  Its subsystem\n"
    "ffff  Last vendor\n"
    "\tffff  Last device, no newline";

static char *
write_temp(const char *content, size_t len, const char *suffix)
{
	char *path = xasprintf("/tmp/vfio-pci-names-XXXXXX%s", suffix);
	int fd = mkstemps(path, (int)strlen(suffix));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
fixture_ids_cross(struct id_set *ids)
{
	/* Every id in the fixture as vendor and as device, and neighbours. */
	static const unsigned seen[] = { 0x0000, 0x0001, 0x0002, 0x0010, 0x0011, 0x0040, 0x00ab, 0x00cd, 0x00ce,
		0x0abc, 0x0abd, 0x0abe, 0x1234, 0x5678, 0x9abc, 0xabcd, 0xabce, 0xabcf, 0xdef0, 0xfffe, 0xffff,
		0x8086, 0x10de };
	size_t n = sizeof(seen) / sizeof(seen[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			ids_add(ids, seen[i], seen[j]);
}

static void
names_equal_libpci_on_a_file_with_every_line_rule(void **state)
{
	char *path = write_temp(fixture_ids, strlen(fixture_ids), ".ids");
	struct id_set ids = { 0 };
	fixture_ids_cross(&ids);
	assert_true(assert_names_equal_libpci(path, true, &ids));
	assert_true(assert_names_equal_libpci(path, false, &ids));
	unlink(path);
	free(path);
	free(ids.pairs);
}

static void
names_equal_libpci_on_an_empty_file(void **state)
{
	char *path = write_temp("", 0, ".ids");
	struct id_set ids = { 0 };
	fixture_ids_cross(&ids);
	assert_true(assert_names_equal_libpci(path, false, &ids));
	unlink(path);
	free(path);
	free(ids.pairs);
}

/* Files pci-names cannot answer for exactly go to libpci, and the answers
 * stay libpci's. */
static void
assert_left_to_libpci(const char *content, size_t len, const char *suffix)
{
	char *path = write_temp(content, len, suffix);
	struct id_set ids = { 0 };
	fixture_ids_cross(&ids);
	assert_false(assert_names_equal_libpci(path, false, &ids));
	unlink(path);
	free(path);
	free(ids.pairs);
}

static void
names_leave_unsorted_blocks_to_libpci(void **state)
{
	/* Out of order, a duplicate could hide; libpci decides. */
	static const char unsorted[] = "0011  Vendor\n\t0002  Second\n\t0001  First\n";
	assert_left_to_libpci(unsorted, strlen(unsorted), ".ids");
}

static void
names_leave_a_prog_if_outside_a_subclass_to_libpci(void **state)
{
	static const char text[] = "C 01  Mass storage controller\n\t\t00  Prog-if\n\t00  Subclass\n";
	assert_left_to_libpci(text, strlen(text), ".ids");
}

static void
names_leave_a_nul_byte_to_libpci(void **state)
{
	static const char text[] = "0011  Vendor\n0012  Ven\0dor\n";
	/* libpci stops at the NUL as at an over-long line: an error. */
	char *path = write_temp(text, sizeof(text) - 1, ".ids");
	struct pci_access *acc = access_new(path, false);
	struct pci_names *names = pci_names_open(acc);
	assert_false(pci_names_indexed(names));
	pci_names_close(names);
	pci_cleanup(acc);
	unlink(path);
	free(path);
}

static void
names_leave_a_compressed_file_to_libpci(void **state)
{
	if (system("command -v gzip >/dev/null 2>&1") != 0)
		skip();
	char *plain = write_temp(fixture_ids, strlen(fixture_ids), ".ids");
	char *gz = xasprintf("%s.gz", plain);
	char *cmd = xasprintf("gzip -c %s > %s", plain, gz);
	assert_int_equal(system(cmd), 0);
	struct id_set ids = { 0 };
	fixture_ids_cross(&ids);
	assert_false(assert_names_equal_libpci(gz, false, &ids));
	/* A .gz that does not open is read without its .gz, by both. */
	unlink(gz);
	assert_true(assert_names_equal_libpci(gz, false, &ids));
	unlink(plain);
	free(cmd);
	free(gz);
	free(plain);
	free(ids.pairs);
}

static void
names_leave_a_dns_name_cache_to_libpci(void **state)
{
	/* lspci -q writes names it resolved to a cache libpci reads at the
	 * first id its file lacks, ahead of the hwdb. */
	static const char ids_text[] = "0011  Vendor\n\t0001  Device\n";
	static const char cache_text[] = "#PCI-CACHE-1.0\n1 fffe 0 0 0 Cached vendor\n2 fffe 1 0 0 Cached device\n";
	char *path = write_temp(ids_text, strlen(ids_text), ".ids");
	char *cache = write_temp(cache_text, strlen(cache_text), ".cache");
	char name[] = "net.cache_name";
	char want[256], got[256];

	struct pci_access *ref = access_new(path, true);
	struct pci_access *acc = access_new(path, true);
	pci_set_param(ref, name, cache);
	pci_set_param(acc, name, cache);
	struct pci_names *names = pci_names_open(acc);
	const char *g = pci_names_device(names, got, sizeof(got), 0x0011, 0x0001);
	assert_string_equal(g, pci_lookup_name(ref, want, sizeof(want), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, 0x0011, 1));
	assert_true(pci_names_indexed(names));
	g = pci_names_device(names, got, sizeof(got), 0xfffe, 0x0001);
	assert_string_equal(g, pci_lookup_name(ref, want, sizeof(want), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, 0xfffe, 1));
	assert_string_equal(g, "Cached vendor Cached device [fffe:0001]");
	assert_false(pci_names_indexed(names));
	pci_names_close(names);
	pci_cleanup(acc);
	pci_cleanup(ref);
	unlink(cache);
	unlink(path);
	free(cache);
	free(path);
}

/* A file libpci rejects is still rejected, with libpci's own message. */
static void
names_report_a_parse_error_as_libpci_does(void **state)
{
	static const char text[] = "0011  Vendor\n\t001  Short device id\n";
	char *path = write_temp(text, strlen(text), ".ids");
	char want[512] = "", got[512] = "";
	struct pci_access *ref = access_new(path, false);
	struct pci_access *acc = access_new(path, false);
	struct pci_names *names = pci_names_open(acc);
	assert_false(pci_names_indexed(names));

	libpci_error_expected = true;
	if (setjmp(libpci_jmp) == 0)
		pci_lookup_name(ref, want, sizeof(want), PCI_LOOKUP_CLASS, 0x0300);
	snprintf(want, sizeof(want), "%s", libpci_error_msg);
	libpci_error_msg[0] = '\0';
	if (setjmp(libpci_jmp) == 0)
		pci_names_class(names, got, sizeof(got), 0x0300);
	snprintf(got, sizeof(got), "%s", libpci_error_msg);
	libpci_error_expected = false;
	assert_non_null(strstr(want, "Parse error"));
	assert_string_equal(got, want);

	pci_names_close(names);
	pci_cleanup(acc);
	pci_cleanup(ref);
	unlink(path);
	free(path);
}

static void
names_cut_long_names_as_libpci_does(void **state)
{
	if (access(SYSTEM_IDS, R_OK) != 0)
		skip();
	struct pci_access *ref = access_new(SYSTEM_IDS, true);
	struct pci_access *acc = access_new(SYSTEM_IDS, true);
	struct pci_names *names = pci_names_open(acc);
	char want[64], got[64];
	for (size_t size = 0; size <= 40; size++) {
		const char *w = pci_lookup_name(ref, want, (int)size, PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, 0x10de, 0x2484);
		const char *g = pci_names_device(names, got, size, 0x10de, 0x2484);
		assert_string_equal(g, w);
		w = pci_lookup_name(ref, want, (int)size, PCI_LOOKUP_CLASS, 0x0300);
		g = pci_names_class(names, got, size, 0x0300);
		assert_string_equal(g, w);
	}
	pci_names_close(names);
	pci_cleanup(acc);
	pci_cleanup(ref);
}

/* The index is kept between scans (the supervisor rescans on every FIFO
 * pci add); a name file replaced or rewritten since must be read again. */
static void
names_follow_a_name_file_that_changed_between_scans(void **state)
{
	static const char v1[] = "1234  Old Vendor\n\t5678  Old Device\nC 03  Display controller\n";
	static const char v2[] = "1234  New Vendor Name\n\t5678  New Device\nC 03  Display controller\n";
	char *path = write_temp(v1, strlen(v1), ".ids");
	char got[512];
	for (int round = 0; round < 2; round++) {
		struct pci_access *acc = access_new(path, false);
		struct pci_names *names = pci_names_open(acc);
		assert_true(pci_names_indexed(names));
		assert_string_equal(pci_names_device(names, got, sizeof(got), 0x1234, 0x5678),
		    "Old Vendor Old Device [1234:5678]");
		pci_names_close(names);
		pci_cleanup(acc);
	}
	/* rewritten in place: another size and mtime */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(v2, f);
	fclose(f);
	struct pci_access *acc = access_new(path, false);
	struct pci_names *names = pci_names_open(acc);
	assert_string_equal(pci_names_device(names, got, sizeof(got), 0x1234, 0x5678),
	    "New Vendor Name New Device [1234:5678]");
	pci_names_close(names);
	pci_cleanup(acc);
	/* replaced by another file (another inode) of the same size */
	char *other = write_temp(v1, strlen(v1), ".ids");
	assert_int_equal(rename(other, path), 0);
	acc = access_new(path, false);
	names = pci_names_open(acc);
	assert_string_equal(pci_names_device(names, got, sizeof(got), 0x1234, 0x5678),
	    "Old Vendor Old Device [1234:5678]");
	pci_names_close(names);
	pci_cleanup(acc);
	unlink(path);
	free(path);
	free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_equal_libpci_for_every_id_in_the_system_pci_ids),
		cmocka_unit_test(names_equal_libpci_with_its_default_file),
		cmocka_unit_test(names_equal_libpci_without_a_name_file),
		cmocka_unit_test(names_equal_libpci_on_a_file_with_every_line_rule),
		cmocka_unit_test(names_equal_libpci_on_an_empty_file),
		cmocka_unit_test(names_leave_unsorted_blocks_to_libpci),
		cmocka_unit_test(names_leave_a_prog_if_outside_a_subclass_to_libpci),
		cmocka_unit_test(names_leave_a_nul_byte_to_libpci),
		cmocka_unit_test(names_leave_a_compressed_file_to_libpci),
		cmocka_unit_test(names_leave_a_dns_name_cache_to_libpci),
		cmocka_unit_test(names_report_a_parse_error_as_libpci_does),
		cmocka_unit_test(names_cut_long_names_as_libpci_does),
		cmocka_unit_test(names_follow_a_name_file_that_changed_between_scans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
