/* libFuzzer target for the QMP reader: arbitrary bytes, split into reads at
 * a point the input chooses, through framing, JSON parsing and message
 * classification. Built with -fsanitize=fuzzer when -Dfuzz=true and the
 * compiler is clang; otherwise built with the small main() below that replays
 * corpus files, so every build checks the recorded real QEMU messages. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns the number of messages the reader accepted. */
static int
replay(const uint8_t *data, size_t size, bool *error)
{
	struct qmp_reader r;
	/* A small bound so that inputs can reach it. */
	qmp_reader_init(&r, 1u << 20);
	size_t cut = size > 0 ? data[0] % (size + 1) : 0;
	int msgs = 0;
	*error = false;
	for (int part = 0; part < 2 && !*error; part++) {
		if (part == 0)
			qmp_reader_feed(&r, data, cut);
		else
			qmp_reader_feed(&r, data + cut, size - cut);
		for (;;) {
			json_t *msg;
			struct verr err = { 0 };
			int rc = qmp_reader_next(&r, &msg, &err);
			if (rc < 0) {
				if (err.msg[0] == '\0')
					abort(); /* every error must explain itself */
				*error = true;
				break;
			}
			if (rc == 0)
				break;
			msgs++;
			struct qmp_error qe;
			switch (qmp_msg_classify(msg, &err)) {
			case QMP_MSG_REPLY:
			case QMP_MSG_STRAY_ERROR:
				qmp_msg_error(msg, &qe);
				if (qe.class == NULL || qe.desc == NULL)
					abort();
				break;
			case QMP_MSG_EVENT:
				(void)qmp_msg_timestamp(msg);
				(void)qmp_device_deleted_matches(json_object_get(msg, "data"), "nic0");
				break;
			case QMP_MSG_GREETING:
				break;
			case QMP_MSG_INVALID:
				if (err.msg[0] == '\0')
					abort();
				break;
			}
			json_decref(msg);
		}
	}
	qmp_reader_free(&r);
	return msgs;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool error;
	(void)replay(data, size, &error);
	return 0;
}

#ifndef VFIO_LIBFUZZER
/* Replay corpus files: each must parse into at least one message with no
 * protocol error, since they are what real QEMU sent. */
int
main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			fprintf(stderr, "%s: cannot open\n", argv[i]);
			return 1;
		}
		size_t cap = 1 << 16, n = 0;
		uint8_t *buf = malloc(cap);
		size_t k;
		while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
			n += k;
			if (n == cap)
				buf = realloc(buf, cap *= 2);
		}
		fclose(f);
		bool error;
		int msgs = replay(buf, n, &error);
		if (error || msgs == 0) {
			fprintf(stderr, "%s: the reader rejected a real QEMU message\n", argv[i]);
			failed++;
		} else {
			printf("%s: %d message(s)\n", argv[i], msgs);
		}
		free(buf);
	}
	return failed ? 1 : 0;
}
#endif
