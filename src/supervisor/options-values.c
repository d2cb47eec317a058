/* The syntax of flag values that is more than a word: sizes, CPU lists, and
 * -extras split into words like a shell would, without one. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "options.h"
#include "util.h"

int
options_parse_size(const char *s, uint64_t *mib, struct verr *err)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return verr_set(err, -EINVAL, "'%s' is not a size; write a whole number with K, M, G or T "
		    "(a bare number is MiB), e.g. 8G or 8192M", s);
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0)
		return verr_set(err, -EINVAL, "'%s' is too large", s);
	unsigned shift;         /* of the unit relative to KiB */
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 0; end++; break;
	case 'M': shift = 10; end++; break;
	case 'G': shift = 20; end++; break;
	case 'T': shift = 30; end++; break;
	case '\0': shift = 10; break;
	default:
		return verr_set(err, -EINVAL, "'%s' has an unknown unit; use K, M, G or T "
		    "(a bare number is MiB), e.g. 8G or 8192M", s);
	}
	if (*end != '\0' && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
		return verr_set(err, -EINVAL, "'%s' has trailing characters after the unit; write e.g. 8G", s);
	if (n == 0)
		return verr_set(err, -EINVAL, "'%s' is zero; give a size larger than 0", s);
	if (n > (UINT64_MAX >> 40))
		return verr_set(err, -EINVAL, "'%s' is too large", s);
	uint64_t kib = (uint64_t)n << shift;
	if (kib % 1024 != 0)
		return verr_set(err, -EINVAL, "'%s' is not a whole number of MiB; write e.g. %lluM", s,
		    (unsigned long long)(kib / 1024 + 1));
	*mib = kib / 1024;
	return 0;
}

/* Highest CPU number accepted: the kernel's NR_CPUS limit on x86-64. */
#define CPU_MAX 8191

static int
parse_cpu(const char *s, char **end, long *out)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtol(s, end, 10);
	if (errno != 0 || *out > CPU_MAX)
		return -1;
	return 0;
}

int
options_parse_cpulist(const char *s, int **cpus, size_t *n, struct verr *err)
{
	int *list = NULL;
	size_t count = 0;
	const char *p = s;
	if (*s == '\0')
		return verr_set(err, -EINVAL, "the CPU list is empty; write e.g. 0,1,2,3 or 0-5,12-17");
	for (;;) {
		char *end;
		long lo, hi;
		if (parse_cpu(p, &end, &lo) < 0)
			goto bad;
		hi = lo;
		if (*end == '-') {
			if (parse_cpu(end + 1, &end, &hi) < 0)
				goto bad;
			if (hi < lo) {
				verr_set(err, -EINVAL, "'%s': the range %ld-%ld runs backwards; write %ld-%ld", s,
				    lo, hi, hi, lo);
				goto fail;
			}
		}
		for (long c = lo; c <= hi; c++) {
			for (size_t i = 0; i < count; i++) {
				if (list[i] == c) {
					verr_set(err, -EINVAL, "'%s' names CPU %ld twice; each host CPU can run "
					    "one vCPU", s, c);
					goto fail;
				}
			}
			list = xreallocarray(list, count + 1, sizeof(*list));
			list[count++] = (int)c;
		}
		if (*end == '\0')
			break;
		if (*end != ',')
			goto bad;
		p = end + 1;
	}
	free(*cpus);
	*cpus = list;
	*n = count;
	return 0;
bad:
	verr_set(err, -EINVAL, "'%s' is not a CPU list; write CPU numbers (0-%d) separated by commas, "
	    "with ranges like 0-5,12-17", s, CPU_MAX);
fail:
	free(list);
	return -EINVAL;
}

int
options_split_words(const char *s, struct strv *out, struct verr *err)
{
	struct strbuf word = { 0 };
	bool in_word = false;
	for (const char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			if (in_word) {
				strv_push(out, word.s ? word.s : "");
				word.len = 0;
				if (word.s)
					word.s[0] = '\0';
				in_word = false;
			}
			continue;
		}
		in_word = true;
		if (*p == '\\') {
			if (p[1] == '\0')
				goto trailing;
			if (p[1] != '\n')
				strbuf_add(&word, p + 1, 1);
			p++;
		} else if (*p == '\'') {
			const char *q = strchr(p + 1, '\'');
			if (q == NULL) {
				strbuf_free(&word);
				return verr_set(err, -EINVAL, "unterminated single quote in '%s'; close it with '", s);
			}
			strbuf_add(&word, p + 1, (size_t)(q - p - 1));
			p = q;
		} else if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0') {
					strbuf_free(&word);
					return verr_set(err, -EINVAL, "unterminated double quote in '%s'; close it "
					    "with \"", s);
				}
				if (*p == '\\' && p[1] != '\0' && strchr("\\\"$`\n", p[1]) != NULL) {
					p++;
					if (*p == '\n')
						continue;
				}
				strbuf_add(&word, p, 1);
			}
		} else {
			strbuf_add(&word, p, 1);
		}
	}
	if (in_word)
		strv_push(out, word.s ? word.s : "");
	strbuf_free(&word);
	return 0;
trailing:
	strbuf_free(&word);
	return verr_set(err, -EINVAL, "'%s' ends with a lone backslash; remove it or escape it as \\\\", s);
}

