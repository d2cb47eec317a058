/* The man page and -help agree with the options table: every flag and alias
 * in options_info() has an entry in docs/vfio.1.scd (a line starting with
 * "*-name*") and appears in `vfio -help`, with its argument name; and every
 * flag the OPTIONS section lists is one the parser knows. The page is the
 * source the installed vfio.1 is built from. */
#include <ctype.h>
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
#include "util.h"

static const char *scd_path, *vfio_path;

static char *
slurp_stream(FILE *f)
{
	struct strbuf sb = { 0 };
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	return sb.s != NULL ? strbuf_steal(&sb) : xstrdup("");
}

static char *
read_page(void)
{
	FILE *f = fopen(scd_path, "r");
	if (f == NULL)
		fail_msg("cannot open %s: %s", scd_path, strerror(errno));
	char *s = slurp_stream(f);
	fclose(f);
	return s;
}

/* Each word of "a b c" in turn. */
#define FOREACH_ALIAS(aliases, p, len) \
	for (const char *p = (aliases); *p; p += len, p += strspn(p, " ")) \
		if ((len = strcspn(p, " ")) > 0)

/* The entry line for -name: a line that starts with "*-name*". */
static const char *
find_entry(const char *page, const char *name, size_t len)
{
	char *needle = xasprintf("\n*-%.*s*", (int)len, name);
	const char *hit = strstr(page, needle);
	free(needle);
	return hit != NULL ? hit + 1 : NULL;
}

/* Does the line starting at entry list *-name* anywhere (an alias)? */
static bool
line_has_flag(const char *line, const char *name, size_t len)
{
	const char *end = strchr(line, '\n');
	size_t linelen = end != NULL ? (size_t)(end - line) : strlen(line);
	char *needle = xasprintf("*-%.*s*", (int)len, name);
	char *l = xstrndup(line, linelen);
	bool found = strstr(l, needle) != NULL;
	free(l);
	free(needle);
	return found;
}

static void
test_every_flag_and_alias_has_a_man_entry(void **state)
{
	char *page = read_page();
	const struct option_info *in;
	int missing = 0;
	for (size_t i = 0; (in = options_info(i)) != NULL; i++) {
		const char *entry = find_entry(page, in->name, strlen(in->name));
		if (entry == NULL) {
			print_error("vfio.1.scd has no entry line starting with *-%s*\n", in->name);
			missing++;
			continue;
		}
		if (in->arg != NULL) {
			char *arg = xasprintf("_%s_", in->arg);
			const char *end = strchr(entry, '\n');
			char *line = xstrndup(entry, end ? (size_t)(end - entry) : strlen(entry));
			if (strstr(line, arg) == NULL) {
				print_error("vfio.1.scd entry for -%s lacks its argument %s: %s\n", in->name, arg, line);
				missing++;
			}
			free(line);
			free(arg);
		}
		size_t len;
		FOREACH_ALIAS(in->aliases, p, len) {
			if (!line_has_flag(entry, p, len)) {
				print_error("vfio.1.scd entry for -%s lacks its alias *-%.*s*\n", in->name, (int)len, p);
				missing++;
			}
		}
	}
	free(page);
	assert_int_equal(missing, 0);
}

static bool
flag_known(const char *name, size_t len)
{
	const struct option_info *in;
	for (size_t i = 0; (in = options_info(i)) != NULL; i++) {
		if (strlen(in->name) == len && strncmp(in->name, name, len) == 0)
			return true;
		size_t alen;
		FOREACH_ALIAS(in->aliases, p, alen) {
			if (alen == len && strncmp(p, name, len) == 0)
				return true;
		}
	}
	return false;
}

static void
test_every_flag_in_options_section_is_in_the_table(void **state)
{
	char *page = read_page();
	char *sec = strstr(page, "\n# OPTIONS\n");
	assert_non_null(sec);
	char *end = strstr(sec + 1, "\n# ");
	if (end != NULL)
		*end = '\0';
	int unknown = 0, entries = 0;
	/* Entry lines start with '*-' (descriptions are tab-indented). */
	for (char *line = sec; line != NULL; line = strchr(line, '\n')) {
		line++;
		if (strncmp(line, "*-", 2) != 0)
			continue;
		entries++;
		const char *eol = strchr(line, '\n');
		for (char *p = line; p != NULL && (eol == NULL || p < eol); p = strstr(p + 1, "*-")) {
			if (p != line && p[-1] == '*')
				continue;
			size_t len = strcspn(p + 2, "*");
			if (!flag_known(p + 2, len)) {
				print_error("vfio.1.scd lists -%.*s, which the options table does not know\n",
				    (int)len, p + 2);
				unknown++;
			}
		}
	}
	free(page);
	assert_int_equal(unknown, 0);
	/* Every table entry has its own line (no line lists two entries); -args,
	 * once in the table, is documented under ARGUMENT FILES instead. */
	size_t n = 0;
	for (const struct option_info *in; (in = options_info(n)) != NULL;)
		n++;
	if (flag_known("args", 4))
		n--;
	assert_int_equal(entries, (int)n);
}

static bool
help_has_flag(const char *help, const char *name, size_t len)
{
	/* "-name" followed by a space, ',' or the end of the line. */
	char *needle = xasprintf("-%.*s", (int)len, name);
	bool found = false;
	for (const char *p = help; (p = strstr(p, needle)) != NULL; p++) {
		char before = p == help ? ' ' : p[-1];
		char after = p[strlen(needle)];
		if ((before == ' ' || before == ',') && (after == ' ' || after == ',' || after == '\n')) {
			found = true;
			break;
		}
	}
	free(needle);
	return found;
}

static void
test_help_output_lists_every_flag_and_alias(void **state)
{
	char *cmd = xasprintf("'%s' -help", vfio_path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char *help = slurp_stream(p);
	assert_int_equal(pclose(p), 0);
	free(cmd);
	const struct option_info *in;
	int missing = 0;
	for (size_t i = 0; (in = options_info(i)) != NULL; i++) {
		if (!help_has_flag(help, in->name, strlen(in->name))) {
			print_error("vfio -help lacks -%s\n", in->name);
			missing++;
		}
		size_t len;
		FOREACH_ALIAS(in->aliases, a, len) {
			if (!help_has_flag(help, a, len)) {
				print_error("vfio -help lacks alias -%.*s\n", (int)len, a);
				missing++;
			}
		}
		if (strstr(help, in->help) == NULL) {
			print_error("vfio -help lacks the help text of -%s\n", in->name);
			missing++;
		}
	}
	free(help);
	assert_int_equal(missing, 0);
}

static void
test_args_file_flag_is_documented(void **state)
{
	char *page = read_page();
	assert_non_null(find_entry(page, "args", 4));
	assert_non_null(strstr(page, "\n# ARGUMENT FILES\n"));
	free(page);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s docs/vfio.1.scd path/to/vfio\n", argv[0]);
		return 2;
	}
	scd_path = argv[1];
	vfio_path = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_flag_and_alias_has_a_man_entry),
		cmocka_unit_test(test_every_flag_in_options_section_is_in_the_table),
		cmocka_unit_test(test_help_output_lists_every_flag_and_alias),
		cmocka_unit_test(test_args_file_flag_is_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
