/* Fuzzing the -args file parser: the input is the file's bytes. Whatever they
 * are, argsfile_parse() either refuses with a message and adds no words, or
 * yields words that argsfile_expand() passes through unchanged (no -args left
 * to expand, every value still after its flag) and that options_parse()
 * accepts or refuses with a message. Built as a libFuzzer target with
 * -Dfuzz=true (clang); otherwise a replayer of the corpus files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argsfile.h"
#include "options.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strv words = { 0 };
	struct verr err = { 0 };
	strv_push(&words, "vfio");
	if (argsfile_parse((const char *)data, size, "fuzz.args", &words, &err) < 0) {
		if (err.msg[0] == '\0' || words.n != 1)
			abort();        /* a refusal without a message, or half a file kept */
		strv_free(&words);
		return 0;
	}
	struct strv again = { 0 };
	if (argsfile_expand((int)words.n, words.v, &again, &err) < 0 || again.n != words.n)
		abort();
	for (size_t i = 0; i < words.n; i++) {
		if (strcmp(again.v[i], words.v[i]) != 0)
			abort();
	}
	struct options o;
	memset(&err, 0, sizeof(err));
	if (options_parse(&o, (int)words.n, words.v, &err) < 0 && err.msg[0] == '\0')
		abort();
	options_free(&o);
	strv_free(&again);
	strv_free(&words);
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
		static char data[ARGSFILE_MAX_SIZE];
		size_t n = fread(data, 1, sizeof(data), f);
		fclose(f);
		LLVMFuzzerTestOneInput((const uint8_t *)data, n);
		printf("ok %s\n", argv[i]);
	}
	return 0;
}
#endif
