/* User regexes (-pci, -usb, `pci add`, `usb add`, `usb del`) compiled with
 * bounds. glibc's regcomp() copies what a quantifier applies to ('+' and
 * {m,n} duplicate it), so "o++++++++++++++++++++++++++++" needs gigabytes,
 * and back-references make regexec() take exponential time on a device
 * line. Before regcomp() sees a pattern it is checked against:
 *
 *   - at most UREGEX_MAX_LEN bytes;
 *   - no quantifier right after another ("o++", "a*?", "a{2}{3}");
 *   - no back-reference (\1 ... \9);
 *   - repetition counts {m,n} at most UREGEX_MAX_REPEAT;
 *   - a size estimate, counted as regcomp expands the pattern (each atom
 *     1, a bracket expression 4, '+' doubles what it applies to, {m,n}
 *     multiplies it by n, or m + 1 for {m,}), at most UREGEX_MAX_COST;
 *   - groups nested at most UREGEX_MAX_DEPTH deep.
 *
 * Measured on glibc 2.36, a pattern at these limits costs regcomp() less
 * than 10 MB and a few milliseconds (tests/plan/test-uregex.c). vfio(1)
 * states them. */
#ifndef VFIO_UREGEX_H
#define VFIO_UREGEX_H

#include <regex.h>

#include "verr.h"

#define UREGEX_MAX_LEN    4096
#define UREGEX_MAX_REPEAT 255
#define UREGEX_MAX_COST   20000
#define UREGEX_MAX_DEPTH  32

/* Check pattern against the bounds above, then regcomp(re, pattern, cflags).
 * Returns 0, or -EINVAL with err saying "WHAT 'PATTERN' ..." what is wrong
 * and how to write it instead (re is then not compiled). */
int uregex_compile(regex_t *re, int cflags, const char *what, const char *pattern, struct verr *err);

#endif
