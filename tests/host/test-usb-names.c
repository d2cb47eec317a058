/* USB names from usb.ids, against the stdio reading usb.c did before it
 * mapped the file: for ids of the system usb.ids, ids it lacks, and crafted
 * files (over-long lines that fgets cut in two, a NUL byte, CRLF, no final
 * newline, the class list ending the vendors), every lsusb line equals the
 * line the fgets loop below gives. Devices carry no strings of their own,
 * so each name shown is usb.ids' or empty. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "snapshot-priv.h"
#include "snapshot.h"
#include "util.h"

#define SYSTEM_USB_IDS "/usr/share/misc/usb.ids"

struct usb_id {
	unsigned vendor, product;
};

static bool
ref_hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return false;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return s[4] == ' ' && s[5] == ' ';
}

/* The reference: usb.c's former loop, fgets(line, 512) over the file, for
 * one id. */
static void
ref_names(const char *path, struct usb_id id, char *vendor, char *product, size_t len)
{
	vendor[0] = product[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	char line[512];
	bool in_vendor = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		unsigned x;
		if (line[0] == '\t' && line[1] != '\t') {
			if (!in_vendor || !ref_hex4(line + 1, &x))
				continue;
			if (x == id.product && product[0] == '\0')
				snap_copy(product, len, line + 7);
		} else if (line[0] == 'C' && line[1] == ' ') {
			break;
		} else if (ref_hex4(line, &x)) {
			in_vendor = x == id.vendor;
			if (in_vendor && vendor[0] == '\0')
				snap_copy(vendor, len, line + 6);
		}
	}
	fclose(f);
}

/* A host with one string-less device per id, 100 to a bus. */
static char *
spec_for(const struct usb_id *ids, size_t n)
{
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "{\"usb\": [");
	for (size_t i = 0; i < n; i++)
		strbuf_printf(&sb, "%s{\"bus\": %zu, \"dev\": %zu, \"port\": \"%zu-%zu\", \"vendor\": %u, \"product\": %u}",
		    i ? "," : "", 1 + i / 100, 2 + i % 100, 1 + i / 100, 1 + i % 100, ids[i].vendor, ids[i].product);
	strbuf_puts(&sb, "]}");
	return strbuf_steal(&sb);
}

static void
assert_lines_equal_reference(const char *usb_ids, const struct usb_id *ids, size_t n)
{
	char *spec = spec_for(ids, n);
	char *root = fixture_build(NULL, spec);
	usb_names_set_sources(false, usb_ids);
	struct host_snapshot snap;
	struct verr err = { 0 };
	assert_int_equal(snapshot_take(&snap, NULL, &err), 0);
	size_t bad = 0, seen = 0;
	for (size_t i = 0; i < snap.n_usb; i++) {
		const struct usb_device *d = &snap.usb[i];
		if (d->devnum == 1)
			continue; /* the root hubs, which have strings */
		char vendor[256], product[256], want[512];
		ref_names(usb_ids, (struct usb_id){ d->vendor, d->product }, vendor, product, sizeof(vendor));
		snprintf(want, sizeof(want), "Bus %03u Device %03u: ID %04x:%04x %s %s", d->bus, d->devnum, d->vendor,
		    d->product, vendor, product);
		seen++;
		if (strcmp(want, d->line) != 0 && bad++ < 10)
			print_error("want \"%s\"\n got \"%s\"\n", want, d->line);
	}
	assert_int_equal(seen, n);
	assert_int_equal(bad, 0);
	usb_names_set_sources(true, NULL);
	snapshot_free(&snap);
	fixture_remove(root);
	free(spec);
}

static void
usb_names_equal_fgets_reading_for_system_usb_ids(void **state)
{
	if (access(SYSTEM_USB_IDS, R_OK) != 0)
		skip();
	/* Every 60th product line, each vendor's neighbour product, and ids
	 * the file lacks. */
	FILE *f = fopen(SYSTEM_USB_IDS, "re");
	assert_non_null(f);
	struct usb_id ids[600];
	size_t n = 0, k = 0;
	unsigned vendor = 0;
	char line[512];
	while (n < 560 && fgets(line, sizeof(line), f) != NULL) {
		unsigned x;
		if (line[0] == 'C' && line[1] == ' ')
			break;
		if (line[0] != '\t' && ref_hex4(line, &x))
			vendor = x;
		else if (line[0] == '\t' && line[1] != '\t' && ref_hex4(line + 1, &x) && k++ % 60 == 0) {
			ids[n++] = (struct usb_id){ vendor, x };
			ids[n++] = (struct usb_id){ vendor, (x + 1) & 0xffff };
		}
	}
	fclose(f);
	static const struct usb_id absent[] = { { 0x0000, 0x0000 }, { 0xffff, 0xffff }, { 0x046d, 0xfffe },
		{ 0xfffe, 0x0001 } };
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		ids[n++] = absent[i];
	assert_true(n > 400);
	assert_lines_equal_reference(SYSTEM_USB_IDS, ids, n);
}

static void
usb_names_equal_fgets_reading_for_odd_files(void **state)
{
	/* A vendor line of 600 bytes: fgets read it as 511 bytes and a rest
	 * that looks like a product line; CRLF (the \r stays in the name); a
	 * NUL that ends a line early; comments and interface lines; a class
	 * list, after which vendors do not count; no final newline. */
	struct strbuf sb = { 0 };
	strbuf_puts(&sb, "# comment\n1234  Long vendor ");
	for (size_t i = strlen("1234  Long vendor "); i < 511; i++)
		strbuf_add(&sb, "x", 1);
	strbuf_puts(&sb, "\tabcd  Split-off rest\n");
	strbuf_puts(&sb, "\tabcd  Real product\n");
	strbuf_puts(&sb, "2345  CRLF vendor\r\n\t0001  CRLF product\r\n");
	strbuf_puts(&sb, "3456  NUL");
	strbuf_add(&sb, "\0 vendor\n", 9);
	strbuf_puts(&sb, "\t0001  After a NUL\n\t\t0001  interface\n# between\n\t0002  After a comment\n");
	strbuf_puts(&sb, "4567  Vendor\n\t0001\n\t0002 one space\n\t0003  ok\n");
	strbuf_puts(&sb, "C 00  Class\n5678  After the classes\n\t0001  Product after the classes");
	size_t len = sb.len;
	char *content = strbuf_steal(&sb);

	char path[] = "/tmp/vfio-usb-ids-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	static const struct usb_id ids[] = { { 0x1234, 0xabcd }, { 0x1234, 0x0000 }, { 0x2345, 0x0001 },
		{ 0x3456, 0x0001 }, { 0x3456, 0x0002 }, { 0x4567, 0x0001 }, { 0x4567, 0x0002 }, { 0x4567, 0x0003 },
		{ 0x5678, 0x0001 }, { 0x0000, 0x0000 } };
	assert_lines_equal_reference(path, ids, sizeof(ids) / sizeof(ids[0]));

	/* The last line without a newline, and an empty file. */
	static const char tail[] = "1234  Vendor\n\t0001  Last product";
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, tail, sizeof(tail) - 1), (ssize_t)(sizeof(tail) - 1));
	close(fd);
	assert_lines_equal_reference(path, ids, sizeof(ids) / sizeof(ids[0]));
	assert_int_equal(truncate(path, 0), 0);
	assert_lines_equal_reference(path, ids, sizeof(ids) / sizeof(ids[0]));
	unlink(path);
	free(content);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(usb_names_equal_fgets_reading_for_system_usb_ids),
		cmocka_unit_test(usb_names_equal_fgets_reading_for_odd_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
