/* libFuzzer target for the control FIFO's line parser (built with -Dfuzz=true
 * and clang). Without VFIO_LIBFUZZER the same file is a replay driver: every
 * file named on the command line goes through the parser once, so the corpus
 * is checked in every build. Invariants: a result is 0, 1 or -EINVAL; an
 * error has a message; a parsed line has words and a valid tag. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_line l;
	struct verr err = { 0 };
	int r = control_parse((const char *)data, size, &l, &err);
	if (r != 0 && r != 1 && r != -EINVAL)
		abort();
	if (r < 0 && err.msg[0] == '\0')
		abort();
	if (r == 0 && l.words.n == 0)
		abort();
	if (l.tag != NULL && !control_tag_valid(l.tag, strlen(l.tag)))
		abort();
	for (size_t i = 0; i < l.words.n; i++) {
		if (strlen(l.words.v[i]) > size)
			abort();
	}
	control_line_free(&l);
	return 0;
}

#ifndef VFIO_LIBFUZZER
int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		static uint8_t buf[1 << 16];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	return 0;
}
#endif
