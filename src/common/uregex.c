/* Bounded compilation of user regexes: see uregex.h for the bounds and why.
 * The scan below follows POSIX extended syntax as glibc reads it just far
 * enough to find quantifiers, groups and back-references; what it does not
 * understand it counts as an atom and leaves to regcomp() to judge. */
#include "uregex.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many characters of a pattern a message repeats. */
#define UREGEX_ECHO 120

/* One level of grouping: the cost of the branches closed so far, of the
 * branch being read, and of its last quantifiable piece. */
struct uregex_frame {
	uint64_t alt, branch, last;
	bool after_quant;        /* the last token was a quantifier */
};

struct uregex_scan {
	const char *what, *pattern;
	struct verr *err;
	size_t len;
};

static int uregex_refuse(const struct uregex_scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
uregex_refuse(const struct uregex_scan *s, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return verr_set(s->err, -EINVAL, "%s '%.*s%s' %s", s->what, UREGEX_ECHO, s->pattern,
	    s->len > UREGEX_ECHO ? "..." : "", why);
}

static uint64_t
uregex_sat(uint64_t v)
{
	return v > UREGEX_MAX_COST ? UREGEX_MAX_COST + 1 : v;
}

/* The end of a bracket expression starting at p ('['), or NULL. */
static const char *
uregex_bracket_end(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;            /* a literal ']' first */
	for (; *p != '\0'; p++) {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char kind = p[1];
			const char *q = p + 2;
			while (*q != '\0' && !(q[0] == kind && q[1] == ']'))
				q++;
			if (*q == '\0')
				return NULL;
			p = q + 1;
			continue;
		}
		if (*p == ']')
			return p;
	}
	return NULL;
}

/* An interval {m}, {m,}, {m,n} or {,n} at p: its end and the number of
 * copies regcomp makes; false when it is not one (regcomp decides). */
static bool
uregex_interval(const char *p, const char **end, unsigned long *lo, unsigned long *hi, bool *open)
{
	const char *q = p + 1;
	char *e;
	*lo = 0;
	*hi = 0;
	*open = false;
	if (*q >= '0' && *q <= '9') {
		*lo = strtoul(q, &e, 10);
		q = e;
	} else if (*q != ',') {
		return false;
	}
	*hi = *lo;
	if (*q == ',') {
		q++;
		if (*q >= '0' && *q <= '9') {
			*hi = strtoul(q, &e, 10);
			q = e;
		} else {
			*open = true;
		}
	}
	if (*q != '}')
		return false;
	*end = q;
	return true;
}

int
uregex_compile(regex_t *re, int cflags, const char *what, const char *pattern, struct verr *err)
{
	struct uregex_scan s = { what, pattern, err, strlen(pattern) };
	if (s.len > UREGEX_MAX_LEN)
		return uregex_refuse(&s, "is %zu bytes long, more than the %d allowed; match fewer things at once",
		    s.len, UREGEX_MAX_LEN);
	struct uregex_frame stack[UREGEX_MAX_DEPTH + 1];
	size_t depth = 0;
	memset(&stack[0], 0, sizeof(stack[0]));
	for (const char *p = pattern; *p != '\0'; p++) {
		struct uregex_frame *f = &stack[depth];
		size_t pos = (size_t)(p - pattern) + 1;
		uint64_t atom = 1;
		unsigned long factor = 0;
		switch (*p) {
		case '\\':
			if (p[1] >= '1' && p[1] <= '9')
				return uregex_refuse(&s, "has a back-reference (\\%c at position %zu), which makes "
				    "matching take exponential time: it is not supported; match the text itself", p[1], pos);
			if (p[1] != '\0')
				p++;
			break;
		case '[': {
			const char *end = uregex_bracket_end(p);
			if (end != NULL) {
				p = end;
				atom = 4;
			}
			break;
		}
		case '(':
			if (depth == UREGEX_MAX_DEPTH)
				return uregex_refuse(&s, "nests groups more than %d deep (at position %zu); nest fewer",
				    UREGEX_MAX_DEPTH, pos);
			memset(&stack[++depth], 0, sizeof(stack[0]));
			continue;
		case ')':
			if (depth == 0)
				break;  /* a literal ')' in extended syntax */
			atom = uregex_sat(f->alt + f->branch + 1);
			depth--;
			break;
		case '|':
			f->alt = uregex_sat(f->alt + f->branch);
			f->branch = f->last = 0;
			f->after_quant = false;
			continue;
		case '*':
		case '?':
			factor = 1;
			break;
		case '+':
			factor = 2;     /* regcomp makes "x+" into "xx*" */
			break;
		case '{': {
			const char *end;
			unsigned long lo, hi;
			bool open;
			if (!uregex_interval(p, &end, &lo, &hi, &open))
				break;
			if (lo > UREGEX_MAX_REPEAT || hi > UREGEX_MAX_REPEAT)
				return uregex_refuse(&s, "repeats %lu times at position %zu, more than %d; repeat less",
				    lo > hi ? lo : hi, pos, UREGEX_MAX_REPEAT);
			factor = open ? lo + 1 : hi;
			if (factor == 0)
				factor = 1;
			p = end;
			break;
		}
		default:
			break;
		}
		f = &stack[depth];
		if (factor > 0) {
			if (f->after_quant)
				return uregex_refuse(&s, "stacks quantifiers: '%c' at position %zu follows another; "
				    "stacked quantifiers add nothing to what matches but make the regex engine's memory "
				    "grow without bound: keep one (write 'o+', not 'o++')", pattern[pos - 1], pos);
			f->after_quant = true;
			if (f->last == 0)
				continue;       /* nothing to repeat: regcomp says so */
			uint64_t grown = uregex_sat(f->last * factor);
			f->branch = uregex_sat(f->branch - f->last + grown);
			f->last = grown;
		} else {
			f->branch = uregex_sat(f->branch + atom);
			f->last = atom;
			f->after_quant = false;
		}
		if (f->branch > UREGEX_MAX_COST || f->alt + f->branch > UREGEX_MAX_COST)
			return uregex_refuse(&s, "grows past %d pieces once its repetitions are spelled out (at "
			    "position %zu): nested or large repetitions make the regex engine's memory grow without "
			    "bound; repeat less", UREGEX_MAX_COST, pos);
	}
	int rc = regcomp(re, pattern, cflags);
	if (rc != 0) {
		char msg[256];
		regerror(rc, re, msg, sizeof(msg));
		return uregex_refuse(&s, "is not a valid extended regular expression: %s", msg);
	}
	return 0;
}
