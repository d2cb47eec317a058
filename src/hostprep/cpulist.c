/* CPU list and mask parsing and formatting in the kernel's own syntax, so
 * what we write back is what the kernel reads and what we show is what the
 * user would type. */
#include "cpulist.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
cpulist_clear(struct cpulist *set)
{
	memset(set, 0, sizeof(*set));
}

void
cpulist_add(struct cpulist *set, int cpu)
{
	if (cpu >= 0 && cpu < CPULIST_MAX)
		set->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

bool
cpulist_has(const struct cpulist *set, int cpu)
{
	if (cpu < 0 || cpu >= CPULIST_MAX)
		return false;
	return (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

int
cpulist_count(const struct cpulist *set)
{
	int n = 0;
	for (size_t i = 0; i < nitems(set->bits); i++)
		n += __builtin_popcountll(set->bits[i]);
	return n;
}

bool
cpulist_empty(const struct cpulist *set)
{
	return cpulist_first(set) < 0;
}

int
cpulist_next(const struct cpulist *set, int cpu)
{
	for (int c = cpu + 1; c < CPULIST_MAX; c++) {
		if (set->bits[c / 64] == 0) {
			c = (c / 64) * 64 + 63;
			continue;
		}
		if (cpulist_has(set, c))
			return c;
	}
	return -1;
}

int
cpulist_first(const struct cpulist *set)
{
	return cpulist_next(set, -1);
}

void
cpulist_minus(struct cpulist *out, const struct cpulist *a, const struct cpulist *b)
{
	for (size_t i = 0; i < nitems(out->bits); i++)
		out->bits[i] = a->bits[i] & ~b->bits[i];
}

void
cpulist_and(struct cpulist *out, const struct cpulist *a, const struct cpulist *b)
{
	for (size_t i = 0; i < nitems(out->bits); i++)
		out->bits[i] = a->bits[i] & b->bits[i];
}

bool
cpulist_intersects(const struct cpulist *a, const struct cpulist *b)
{
	for (size_t i = 0; i < nitems(a->bits); i++)
		if (a->bits[i] & b->bits[i])
			return true;
	return false;
}

bool
cpulist_equal(const struct cpulist *a, const struct cpulist *b)
{
	return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

static int
parse_cpu(const char **p, int *out)
{
	if (!isdigit((unsigned char)**p))
		return -1;
	char *end;
	errno = 0;
	long v = strtol(*p, &end, 10);
	if (errno != 0 || v < 0 || v >= CPULIST_MAX)
		return -1;
	*out = (int)v;
	*p = end;
	return 0;
}

int
cpulist_parse(struct cpulist *set, const char *s, const char *what, struct verr *err)
{
	cpulist_clear(set);
	const char *p = s;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		int lo, hi;
		if (parse_cpu(&p, &lo) < 0)
			goto bad;
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_cpu(&p, &hi) < 0 || hi < lo)
				goto bad;
		}
		for (int c = lo; c <= hi; c++)
			cpulist_add(set, c);
		if (*p == ',') {
			p++;
			continue;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '\0')
			goto bad;
		return 0;
	}
bad:
	return verr_set(err, -EINVAL, "%s: '%s' is not a CPU list (expected e.g. 2-7,10-15, CPUs below %d)",
	    what, s, CPULIST_MAX);
}

int
cpumask_parse(struct cpulist *set, const char *s, const char *what, struct verr *err)
{
	cpulist_clear(set);
	/* Collect the hex digits, most significant first, skipping the commas
	 * between 32-bit groups. */
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	int bit = 0;
	bool any = false;
	for (size_t i = len; i-- > 0;) {
		char c = s[i];
		if (c == ',')
			continue;
		if (!isxdigit((unsigned char)c))
			return verr_set(err, -EINVAL, "%s: '%s' is not a CPU mask (expected hex such as ff,ffffffff)",
			    what, s);
		int v = isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
		for (int b = 0; b < 4; b++, bit++)
			if (v & (1 << b))
				cpulist_add(set, bit);
		any = true;
	}
	if (!any)
		return verr_set(err, -EINVAL, "%s: empty CPU mask", what);
	return 0;
}

void
cpulist_format(const struct cpulist *set, struct strbuf *sb)
{
	bool first = true;
	strbuf_puts(sb, "");
	for (int c = cpulist_first(set); c >= 0;) {
		int end = c;
		while (cpulist_has(set, end + 1))
			end++;
		strbuf_printf(sb, first ? "%d" : ",%d", c);
		if (end > c)
			strbuf_printf(sb, "-%d", end);
		first = false;
		c = cpulist_next(set, end);
	}
}

char *
cpulist_str(const struct cpulist *set)
{
	struct strbuf sb = { 0 };
	cpulist_format(set, &sb);
	return strbuf_steal(&sb);
}

char *
cpumask_str(const struct cpulist *set)
{
	int last = -1;
	for (int c = cpulist_first(set); c >= 0; c = cpulist_next(set, c))
		last = c;
	struct strbuf sb = { 0 };
	if (last < 0) {
		strbuf_puts(&sb, "0");
		return strbuf_steal(&sb);
	}
	int ngroups = last / 32 + 1;
	for (int g = ngroups - 1; g >= 0; g--) {
		uint32_t word = (uint32_t)(set->bits[g / 2] >> ((g % 2) * 32));
		if (g == ngroups - 1)
			strbuf_printf(&sb, "%x", word);
		else
			strbuf_printf(&sb, ",%08x", word);
	}
	return strbuf_steal(&sb);
}
