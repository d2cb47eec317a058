/* -args FILE: the file format (one flag per line, comments, blank lines,
 * literal values), every malformed line refused with its line number, and the
 * expansion of -args in place on the command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "argsfile.h"
#include "options.h"
#include "util.h"

/* Parse text and compare the words with the NULL-terminated list after it. */
static void
expect_words(const char *text, ...)
{
	struct strv out = { 0 };
	struct verr err = { 0 };
	int rc = argsfile_parse(text, strlen(text), "test.args", &out, &err);
	if (rc != 0)
		fail_msg("parse failed: %s", err.msg);
	va_list ap;
	va_start(ap, text);
	size_t i = 0;
	for (const char *w; (w = va_arg(ap, const char *)) != NULL; i++) {
		if (i >= out.n)
			fail_msg("word %zu missing, want '%s'", i, w);
		assert_string_equal(out.v[i], w);
	}
	va_end(ap);
	assert_int_equal(out.n, i);
	strv_free(&out);
}

static void
expect_error(const char *text, const char *needle)
{
	struct strv out = { 0 };
	struct verr err = { 0 };
	strv_push(&out, "before");
	assert_int_equal(argsfile_parse(text, strlen(text), "test.args", &out, &err), -EINVAL);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
	/* Nothing of a bad file is kept. */
	assert_int_equal(out.n, 1);
	strv_free(&out);
}

static void
test_one_flag_per_line_with_its_value(void **state)
{
	expect_words("-memory 8G\n-pci NVIDIA|0000:06:00.0\n-hyperv\n",
	    "-memory", "8G", "-pci", "NVIDIA|0000:06:00.0", "-hyperv", NULL);
}

static void
test_comments_and_blank_lines_are_ignored(void **state)
{
	expect_words("# my gaming guest\n\n   \n\t# indented comment\n-nonet\n\n", "-nonet", NULL);
}

static void
test_value_keeps_spaces_and_hash(void **state)
{
	expect_words("-pci NVIDIA Corporation|Intel Corporation #2\n",
	    "-pci", "NVIDIA Corporation|Intel Corporation #2", NULL);
}

static void
test_surrounding_blanks_and_crlf_are_trimmed(void **state)
{
	expect_words("   -memory    8G   \r\n\t-hyperv\t\r\n", "-memory", "8G", "-hyperv", NULL);
}

static void
test_one_pair_of_quotes_around_the_value_is_dropped(void **state)
{
	expect_words("-pci 'NVIDIA Corporation'\n-cmdline \"console=ttyS0 quiet\"\n",
	    "-pci", "NVIDIA Corporation", "-cmdline", "console=ttyS0 quiet", NULL);
}

static void
test_inner_quotes_are_kept_for_extras(void **state)
{
	expect_words("-extras -device virtio-rng-pci -smbios 'type=1,serial=a b'\n",
	    "-extras", "-device virtio-rng-pci -smbios 'type=1,serial=a b'", NULL);
	expect_words("-extras 'a' 'b'\n", "-extras", "'a' 'b'", NULL);
}

static void
test_last_line_without_newline(void **state)
{
	expect_words("-name win10\n-hyperv", "-name", "win10", "-hyperv", NULL);
}

static void
test_aliases_and_double_dashes_and_case(void **state)
{
	expect_words("--MEM 4G\n-huge\n-Q\n", "--MEM", "4G", "-huge", "-Q", NULL);
}

static void
test_optional_value_may_be_given_or_not(void **state)
{
	expect_words("-hugepages\n", "-hugepages", NULL);
	expect_words("-hugepages /mnt/huge\n", "-hugepages", "/mnt/huge", NULL);
}

static void
test_value_starting_with_dash_is_a_value(void **state)
{
	expect_words("-cmdline -v\n", "-cmdline", "-v", NULL);
}

static void
test_empty_file_gives_no_words(void **state)
{
	expect_words("", NULL);
	expect_words("# nothing yet\n", NULL);
}

static void
test_line_not_starting_with_a_flag_is_refused(void **state)
{
	expect_error("-hyperv\nmemory 8G\n", "test.args:2: 'memory' is not a flag");
}

static void
test_unknown_flag_is_refused_with_a_suggestion(void **state)
{
	expect_error("\n-pcie NVIDIA\n", "test.args:2: unknown flag '-pcie'; did you mean -pci?");
}

static void
test_switch_with_a_value_is_refused(void **state)
{
	expect_error("-hyperv -name x\n", "test.args:1: -hyperv takes no value, but the line goes on with '-name x'");
}

static void
test_flag_needing_a_value_alone_is_refused(void **state)
{
	expect_error("-memory 8G\n-pci\n-hyperv\n", "test.args:2: -pci needs a value on the same line: -pci REGEX");
}

static void
test_optional_value_starting_with_dash_is_refused(void **state)
{
	expect_error("-hugepages -x\n", "test.args:1: the value of -hugepages cannot start with '-'");
}

static void
test_nested_args_is_refused(void **state)
{
	expect_error("-args other.args\n", "test.args:1: -args inside an args file is not allowed");
}

static void
test_nul_byte_is_refused(void **state)
{
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_parse("-nonet\0-x\n", 10, "bin.args", &out, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "bin.args: contains a NUL byte"));
	assert_int_equal(out.n, 0);
}

static char *
write_temp(const char *text)
{
	char *path = xstrdup("/tmp/vfio-argsfile-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_read_file(void **state)
{
	char *path = write_temp("# guest\n-memory 2G\n-nonet\n");
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_read(path, &out, &err), 0);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.v[1], "2G");
	strv_free(&out);
	unlink(path);
	free(path);
}

static void
test_missing_file_says_how_to_create_it(void **state)
{
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_read("/nonexistent/win10.args", &out, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "-args /nonexistent/win10.args: no such file; create it"));
}

static void
test_directory_is_refused(void **state)
{
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_read("/tmp", &out, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-args /tmp: not a regular file"));
}

static void
test_oversized_file_is_refused(void **state)
{
	char *path = write_temp("");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < ARGSFILE_MAX_SIZE / 8 + 1; i++)
		fputs("# ......\n", f);
	fclose(f);
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_read(path, &out, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "larger than"));
	unlink(path);
	free(path);
}

static void
test_expand_splices_file_in_place(void **state)
{
	char *path = write_temp("-memory 2G\n-nonet\n-pci NVMe\n");
	char *argv[] = { "vfio", "-name", "a", "-args", path, "-pci", "SATA", NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(7, argv, &out, &err), 0);
	const char *want[] = { "vfio", "-name", "a", "-memory", "2G", "-nonet", "-pci", "NVMe", "-pci", "SATA" };
	assert_int_equal(out.n, nitems(want));
	for (size_t i = 0; i < nitems(want); i++)
		assert_string_equal(out.v[i], want[i]);
	assert_null(out.v[out.n]);
	/* Flags that add up add the command line's to the file's. */
	struct options o;
	assert_int_equal(options_parse(&o, (int)out.n, out.v, &err), 0);
	assert_string_equal(o.pci_regex, "NVMe|SATA");
	assert_true(o.nonet);
	options_free(&o);
	strv_free(&out);
	unlink(path);
	free(path);
}

static void
test_expand_the_command_line_wins_before_or_after_the_file(void **state)
{
	/* vfio@.service: -name %i comes before -args; the file's -name must not win. */
	char *path = write_temp("-name other\n-memory 2G\n--mem 3G\n-hugepages /mnt/h\n-nonet\n");
	char *argv[] = { "vfio", "-run", "-name", "win10", "-args", path, "-m", "4G", "-hugepages", NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(9, argv, &out, &err), 0);
	const char *want[] = { "vfio", "-run", "-name", "win10", "-nonet", "-m", "4G", "-hugepages" };
	assert_int_equal(out.n, nitems(want));
	for (size_t i = 0; i < nitems(want); i++)
		assert_string_equal(out.v[i], want[i]);
	struct options o;
	assert_int_equal(options_parse(&o, (int)out.n, out.v, &err), 0);
	assert_string_equal(o.name, "win10");
	assert_int_equal(o.memory_mib, 4096);
	assert_null(o.hugepages_mount);
	options_free(&o);
	strv_free(&out);
	unlink(path);
	free(path);
}

static void
test_mode_flags_are_refused_in_a_file(void **state)
{
	expect_error("-memory 8G\n-run\n", "test.args:2: -run says what vfio does this time");
	expect_error("-restore\n", "test.args:1: -restore says what vfio does this time");
	expect_error("-restore win10\n", "test.args:1: -restore says what vfio does this time");
	expect_error("--JSON\n", "test.args:1: -json says what vfio does this time");
	expect_error("-h\n", "test.args:1: -help says what vfio does this time");
	expect_error("-iommu\n", "test.args:1: -iommugroups says what vfio does this time");
}

static void
test_expand_accepts_any_case_and_two_dashes(void **state)
{
	char *path = write_temp("-nonet\n");
	char *argv[] = { "vfio", "--ARGS", path, NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(3, argv, &out, &err), 0);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[1], "-nonet");
	strv_free(&out);
	unlink(path);
	free(path);
}

static void
test_expand_never_takes_a_value_for_args(void **state)
{
	char *argv[] = { "vfio", "-cmdline", "-args", "-hugepages", "/mnt/h", NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(5, argv, &out, &err), 0);
	assert_int_equal(out.n, 5);
	assert_string_equal(out.v[2], "-args");
	strv_free(&out);
}

static void
test_expand_without_file_name_is_refused(void **state)
{
	char *argv[] = { "vfio", "-run", "-args", NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(3, argv, &out, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-args needs a value: -args FILE"));
	assert_int_equal(out.n, 0);
}

static void
test_expand_reports_the_bad_line(void **state)
{
	char *path = write_temp("-nonet\n-memory\n");
	char *argv[] = { "vfio", "-args", path, NULL };
	struct strv out = { 0 };
	struct verr err = { 0 };
	assert_int_equal(argsfile_expand(3, argv, &out, &err), -EINVAL);
	char *want = xasprintf("%s:2: -memory needs a value", path);
	if (strstr(err.msg, want) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, want);
	free(want);
	assert_int_equal(out.n, 0);
	unlink(path);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_flag_per_line_with_its_value),
		cmocka_unit_test(test_comments_and_blank_lines_are_ignored),
		cmocka_unit_test(test_value_keeps_spaces_and_hash),
		cmocka_unit_test(test_surrounding_blanks_and_crlf_are_trimmed),
		cmocka_unit_test(test_one_pair_of_quotes_around_the_value_is_dropped),
		cmocka_unit_test(test_inner_quotes_are_kept_for_extras),
		cmocka_unit_test(test_last_line_without_newline),
		cmocka_unit_test(test_aliases_and_double_dashes_and_case),
		cmocka_unit_test(test_optional_value_may_be_given_or_not),
		cmocka_unit_test(test_value_starting_with_dash_is_a_value),
		cmocka_unit_test(test_empty_file_gives_no_words),
		cmocka_unit_test(test_line_not_starting_with_a_flag_is_refused),
		cmocka_unit_test(test_unknown_flag_is_refused_with_a_suggestion),
		cmocka_unit_test(test_switch_with_a_value_is_refused),
		cmocka_unit_test(test_flag_needing_a_value_alone_is_refused),
		cmocka_unit_test(test_optional_value_starting_with_dash_is_refused),
		cmocka_unit_test(test_nested_args_is_refused),
		cmocka_unit_test(test_nul_byte_is_refused),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_missing_file_says_how_to_create_it),
		cmocka_unit_test(test_directory_is_refused),
		cmocka_unit_test(test_oversized_file_is_refused),
		cmocka_unit_test(test_expand_splices_file_in_place),
		cmocka_unit_test(test_expand_the_command_line_wins_before_or_after_the_file),
		cmocka_unit_test(test_mode_flags_are_refused_in_a_file),
		cmocka_unit_test(test_expand_accepts_any_case_and_two_dashes),
		cmocka_unit_test(test_expand_never_takes_a_value_for_args),
		cmocka_unit_test(test_expand_without_file_name_is_refused),
		cmocka_unit_test(test_expand_reports_the_bad_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
