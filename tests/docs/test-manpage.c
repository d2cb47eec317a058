/* The man pages agree with the tables they document. Every flag and alias in
 * options_info() has an entry in docs/vfio.1.scd (a line starting with
 * "*-name*") and appears in `vfio -help`, with its argument name; every flag
 * the OPTIONS section lists is one the parser knows. vfioctl(1) lists exactly
 * the control FIFO's commands (control_cmd_info()), [force] on those that
 * take it, and the bash completion offers exactly them. The .scd files are
 * the sources the installed man pages are built from. */
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

#include "control.h"
#include "options.h"
#include "util.h"

static const char *scd_path, *vfio_path, *vfioctl_scd_path, *completion_path;

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
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	char *s = slurp_stream(f);
	fclose(f);
	return s;
}

static char *
read_page(void)
{
	return read_file(scd_path);
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

/* The COMMANDS section of vfioctl(1), cut out of the page (allocated). */
static char *
vfioctl_commands_section(void)
{
	char *page = read_file(vfioctl_scd_path);
	char *sec = strstr(page, "\n# COMMANDS\n");
	assert_non_null(sec);
	char *end = strstr(sec + 1, "\n# ");
	char *out = xstrndup(sec, end != NULL ? (size_t)(end - sec) : strlen(sec));
	free(page);
	return out;
}

/* The entry line of command name in the section, NULL when none. */
static const char *
vfioctl_entry(const char *sec, const char *name)
{
	char *needle = xasprintf("\n*%s*", name), *alt = xasprintf("\n*%s ", name);
	const char *hit = strstr(sec, needle);
	if (hit == NULL)
		hit = strstr(sec, alt);
	free(needle);
	free(alt);
	return hit != NULL ? hit + 1 : NULL;
}

static void
test_every_control_command_is_in_vfioctl_page(void **state)
{
	char *sec = vfioctl_commands_section();
	int missing = 0;
	const struct control_cmd_info *in;
	for (size_t i = 0; (in = control_cmd_info(i)) != NULL; i++) {
		const char *entry = vfioctl_entry(sec, in->name);
		if (entry == NULL) {
			print_error("vfioctl.1.scd COMMANDS has no entry for '%s'\n", in->name);
			missing++;
			continue;
		}
		/* [force] on exactly the commands that take it */
		char *line = xstrndup(entry, strcspn(entry, "\n"));
		bool page_force = strstr(line, "[*force*]") != NULL, force = in->flags & CONTROL_CMD_FORCE;
		if (page_force != force) {
			print_error("vfioctl.1.scd: '%s' %s force, the table says it %s\n", line,
			    page_force ? "takes" : "lacks", force ? "does" : "does not");
			missing++;
		}
		free(line);
	}
	free(sec);
	assert_int_equal(missing, 0);
}

static void
test_every_command_in_vfioctl_page_is_in_the_table(void **state)
{
	char *sec = vfioctl_commands_section();
	int unknown = 0;
	for (char *line = strchr(sec, '\n'); line != NULL; line = strchr(line, '\n')) {
		line++;
		if (line[0] != '*')
			continue;
		/* "*net add user* [...]": the bold words name the command. */
		size_t len = strcspn(line + 1, "*\n");
		bool known = len == 4 && strncmp(line + 1, "list", 4) == 0;    /* vfioctl's own */
		const struct control_cmd_info *in;
		for (size_t i = 0; (in = control_cmd_info(i)) != NULL && !known; i++) {
			size_t n = strlen(in->name);
			known = len >= n && strncmp(line + 1, in->name, n) == 0 && (len == n || line[1 + n] == ' ');
		}
		if (!known) {
			print_error("vfioctl.1.scd lists '%.*s', which the control FIFO does not know\n", (int)len,
			    line + 1);
			unknown++;
		}
	}
	free(sec);
	assert_int_equal(unknown, 0);
}

/* The value of NAME="..." in the completion file (allocated). */
static char *
completion_list(const char *text, const char *name)
{
	char *needle = xasprintf("\n%s=\"", name);
	const char *at = strstr(text, needle);
	if (at == NULL)
		fail_msg("the completion file has no %s=\"...\"", name);
	at += strlen(needle);
	free(needle);
	return xstrndup(at, strcspn(at, "\""));
}

/* The bash completion offers exactly the control FIFO's commands: its
 * lists are what the table gives. */
static void
test_completion_lists_the_control_commands_of_the_table(void **state)
{
	struct strbuf first = { 0 }, groups = { 0 }, verbs = { 0 }, force = { 0 };
	strbuf_puts(&first, "");
	strbuf_puts(&groups, "");
	strbuf_puts(&verbs, "");
	strbuf_puts(&force, "");
	const struct control_cmd_info *in;
	for (size_t i = 0; (in = control_cmd_info(i)) != NULL; i++) {
		size_t w = strcspn(in->name, " ");
		char *word = xstrndup(in->name, w);
		char *padded = xasprintf(" %s ", word);
		char *have = xasprintf(" %s ", first.s);
		if (strstr(have, padded) == NULL)
			strbuf_printf(&first, "%s%s", first.len ? " " : "", word);
		free(have);
		if (in->name[w] == ' ') {
			have = xasprintf(" %s ", groups.s);
			if (strstr(have, padded) == NULL)
				strbuf_printf(&groups, "%s%s", groups.len ? " " : "", word);
			free(have);
			char *vpad = xasprintf(" %s ", in->name + w + 1), *vhave = xasprintf(" %s ", verbs.s);
			if (strstr(vhave, vpad) == NULL)
				strbuf_printf(&verbs, "%s%s", verbs.len ? " " : "", in->name + w + 1);
			free(vpad);
			free(vhave);
		}
		if (in->flags & CONTROL_CMD_FORCE)
			strbuf_printf(&force, "%s%s", force.len ? "," : "", in->name);
		free(padded);
		free(word);
	}
	char *text = read_file(completion_path);
	const char *names[] = { "_vfioctl_commands", "_vfioctl_groups", "_vfioctl_verbs", "_vfioctl_force" };
	const struct strbuf *want[] = { &first, &groups, &verbs, &force };
	int wrong = 0;
	for (size_t i = 0; i < nitems(names); i++) {
		char *got = completion_list(text, names[i]);
		if (strcmp(got, want[i]->s) != 0) {
			print_error("tools/completion/vfio: %s=\"%s\", the table gives \"%s\"\n", names[i], got, want[i]->s);
			wrong++;
		}
		free(got);
	}
	free(text);
	strbuf_free(&first);
	strbuf_free(&groups);
	strbuf_free(&verbs);
	strbuf_free(&force);
	assert_int_equal(wrong, 0);
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s docs/vfio.1.scd path/to/vfio docs/vfioctl.1.scd tools/completion/vfio\n",
		    argv[0]);
		return 2;
	}
	completion_path = argv[4];
	scd_path = argv[1];
	vfio_path = argv[2];
	vfioctl_scd_path = argv[3];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_flag_and_alias_has_a_man_entry),
		cmocka_unit_test(test_every_flag_in_options_section_is_in_the_table),
		cmocka_unit_test(test_help_output_lists_every_flag_and_alias),
		cmocka_unit_test(test_args_file_flag_is_documented),
		cmocka_unit_test(test_every_control_command_is_in_vfioctl_page),
		cmocka_unit_test(test_every_command_in_vfioctl_page_is_in_the_table),
		cmocka_unit_test(test_completion_lists_the_control_commands_of_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
