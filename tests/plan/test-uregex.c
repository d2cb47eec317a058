/* User regexes are compiled with bounds (src/common/uregex.h): the pattern
 * the args-file fuzzer found (regcomp passed 2 GB on it) and its kin are
 * refused with a message saying what to write instead, patterns people
 * write for devices compile, and a pattern right at the bounds costs
 * regcomp() and regexec() only a few megabytes. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uregex.h"
#include "util.h"

#define BOMB "NVIDIA Corpo+++++++++++++++++++++++++++ration|00"

static void
refused(const char *pattern, const char *needle)
{
	regex_t re;
	struct verr err = { 0 };
	assert_int_equal(uregex_compile(&re, REG_EXTENDED | REG_NOSUB, "-pci", pattern, &err), -EINVAL);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", pattern, err.msg, needle);
	assert_true(strncmp(err.msg, "-pci '", 6) == 0);
}

static void
matches(const char *pattern, const char *line, bool want)
{
	regex_t re;
	struct verr err = { 0 };
	if (uregex_compile(&re, REG_EXTENDED | REG_NOSUB, "-pci", pattern, &err) != 0)
		fail_msg("'%s' refused: %s", pattern, err.msg);
	assert_int_equal(regexec(&re, line, 0, NULL, 0) == 0, want);
	regfree(&re);
}

static void
test_the_fuzzers_pattern_is_refused_naming_the_stacked_quantifier(void **state)
{
	refused(BOMB, "stacks quantifiers: '+' at position 14 follows another");
	refused(BOMB, "write 'o+', not 'o++'");
	refused("a*?", "stacks quantifiers");
	refused("a+*", "stacks quantifiers");
	refused("a{2}{3}", "stacks quantifiers");
	refused("a?{2}", "stacks quantifiers");
}

static void
test_device_patterns_compile_and_match(void **state)
{
	const char *line = "0000:06:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP104 [10de:1b80]";
	matches("NVIDIA Corporation|0000:06:00.0", line, true);
	matches("10de:1b80", line, true);
	matches("^0000:0[0-9]:00\\.0", line, true);
	matches("(NVMe|SATA) controller", line, false);
	matches("[[:xdigit:]]{4}:[[:xdigit:]]{4}", line, true);
	matches("[]x]|GP1+04", line, true);
	matches("Corp(oration)?", line, true);
}

static void
test_back_references_are_refused(void **state)
{
	refused("(NVIDIA) \\1", "has a back-reference (\\1 at position 10)");
	/* An escaped digit elsewhere is text. */
	matches("\\.0", "00.0", true);
}

static void
test_large_or_nested_repetition_is_refused(void **state)
{
	refused("a{256}", "repeats 256 times at position 2, more than 255");
	refused("a{1,300}", "repeats 300 times");
	refused("((a{100}){100}){2}", "grows past 20000 pieces");
	refused("((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+", "grows past 20000 pieces");
	refused("((.*){255}){78}", "grows past 20000 pieces");
}

static void
test_overlong_and_deeply_nested_patterns_are_refused(void **state)
{
	char *p = xmalloc(UREGEX_MAX_LEN + 2);
	memset(p, 'a', UREGEX_MAX_LEN + 1);
	p[UREGEX_MAX_LEN + 1] = '\0';
	refused(p, "is 4097 bytes long, more than the 4096 allowed");
	p[UREGEX_MAX_LEN] = '\0';
	matches(p, "a", false);
	free(p);
	struct strbuf sb = { 0 };
	for (int i = 0; i < UREGEX_MAX_DEPTH + 1; i++)
		strbuf_puts(&sb, "(");
	strbuf_puts(&sb, "a");
	for (int i = 0; i < UREGEX_MAX_DEPTH + 1; i++)
		strbuf_puts(&sb, ")");
	refused(sb.s, "nests groups more than 32 deep");
	strbuf_free(&sb);
}

static void
test_an_invalid_pattern_carries_regcomps_message(void **state)
{
	refused("NVIDIA(", "is not a valid extended regular expression: ");
}

/* Heap in use, in bytes. */
static size_t
heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static void
test_patterns_at_the_bounds_cost_a_few_megabytes(void **state)
{
	char *flat = xmalloc(UREGEX_MAX_LEN + 1);
	memset(flat, 'a', UREGEX_MAX_LEN);
	flat[UREGEX_MAX_LEN] = '\0';
	const char *at_bounds[] = {
		flat,
		"(a{100}){198}",
		"(.{255}){78}",
		"((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+",
		"([[:alpha:][:digit:]]{255}){19}",
		"(a|b|c|d|e|f|g|h)*(a|b|c|d|e|f|g|h){255}",
		"(a?){255}a{255}",
	};
	char line[256];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	for (size_t i = 0; i < nitems(at_bounds); i++) {
		size_t before = heap_used(), peak;
		regex_t re;
		struct verr err = { 0 };
		if (uregex_compile(&re, REG_EXTENDED | REG_NOSUB, "-pci", at_bounds[i], &err) != 0)
			fail_msg("'%.40s' refused: %s", at_bounds[i], err.msg);
		regexec(&re, line, 0, NULL, 0);
		peak = heap_used();
		regfree(&re);
		if (peak - before > 16 * 1024 * 1024)
			fail_msg("'%.40s' took %zu KiB", at_bounds[i], (peak - before) / 1024);
	}
	free(flat);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_fuzzers_pattern_is_refused_naming_the_stacked_quantifier),
		cmocka_unit_test(test_device_patterns_compile_and_match),
		cmocka_unit_test(test_back_references_are_refused),
		cmocka_unit_test(test_large_or_nested_repetition_is_refused),
		cmocka_unit_test(test_overlong_and_deeply_nested_patterns_are_refused),
		cmocka_unit_test(test_an_invalid_pattern_carries_regcomps_message),
		cmocka_unit_test(test_patterns_at_the_bounds_cost_a_few_megabytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
