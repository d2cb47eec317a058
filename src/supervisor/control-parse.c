/* The control FIFO's line parser: tag, words, single quotes. Pure (no I/O,
 * no globals) so the fuzzer and the unit tests drive it directly. Anything
 * it cannot read is refused with a message that says what to fix; it never
 * guesses. */
#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool
control_tag_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	    ch == '.' || ch == '_' || ch == ':' || ch == '-';
}

bool
control_tag_valid(const char *tag, size_t len)
{
	if (len == 0 || len > CONTROL_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!control_tag_char((unsigned char)tag[i]))
			return false;
	}
	return true;
}

/* Length of the UTF-8 sequence at p (at most n bytes), 0 when invalid:
 * overlong forms, surrogates and code points past U+10FFFF are invalid. */
static size_t
control_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Text only: printable ASCII, tabs and valid UTF-8. */
static int
control_check_text(const char *buf, size_t len, struct verr *err)
{
	const unsigned char *p = (const unsigned char *)buf;
	for (size_t i = 0; i < len;) {
		if (p[i] == '\0')
			return verr_set(err, -EINVAL, "the command contains a NUL byte (at byte %zu): "
			    "send text, one command per line", i + 1);
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return verr_set(err, -EINVAL, "the command contains the control character 0x%02x "
			    "(at byte %zu): send text, one command per line", p[i], i + 1);
		size_t n = control_utf8_len(p + i, len - i);
		if (n == 0)
			return verr_set(err, -EINVAL, "the command contains bytes that are not UTF-8 text "
			    "(0x%02x at byte %zu): send text, one command per line", p[i], i + 1);
		i += n;
	}
	return 0;
}

static bool
control_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

int
control_parse(const char *buf, size_t len, struct control_line *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	/* A CR from a writer on another system ends the line like the LF. */
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	size_t i = 0;
	while (i < len && control_blank(buf[i]))
		i++;
	/* The tag first, so every later error can carry it. */
	if (i < len && buf[i] == '@') {
		size_t start = ++i;
		while (i < len && !control_blank(buf[i]))
			i++;
		if (!control_tag_valid(buf + start, i - start))
			return verr_set(err, -EINVAL, "the request tag must follow '@' directly and be 1 to %d "
			    "letters, digits or . _ : - (e.g. @req1 status)", CONTROL_TAG_MAX);
		out->tag = xstrndup(buf + start, i - start);
	}
	if (len > CONTROL_LINE_MAX)
		return verr_set(err, -EINVAL, "the command is %zu bytes long, more than the %d allowed",
		    len, CONTROL_LINE_MAX);
	int r = control_check_text(buf, len, err);
	if (r < 0)
		return r;

	struct strbuf word = { 0 };
	bool in_word = false;
	while (i <= len) {
		char ch = i < len ? buf[i] : ' ';
		if (i == len || control_blank(ch)) {
			if (in_word) {
				strv_push(&out->words, word.len > 0 ? word.s : "");
				word.len = 0;
				if (word.s != NULL)
					word.s[0] = '\0';
				in_word = false;
			}
			i++;
			continue;
		}
		in_word = true;
		if (ch == '\'') {
			const char *end = memchr(buf + i + 1, '\'', len - i - 1);
			if (end == NULL) {
				strbuf_free(&word);
				strv_free(&out->words);   /* the tag stays for the reply */
				return verr_set(err, -EINVAL, "a quote opened at byte %zu is never closed: close "
				    "it with ' (inside quotes nothing is special, not even \\)", i + 1);
			}
			strbuf_add(&word, buf + i + 1, (size_t)(end - (buf + i + 1)));
			i = (size_t)(end - buf) + 1;
			continue;
		}
		strbuf_add(&word, &buf[i], 1);
		i++;
	}
	strbuf_free(&word);
	if (out->words.n == 0) {
		if (out->tag == NULL)
			return 1;
		return verr_set(err, -EINVAL, "the request @%s carries no command: write one after the tag "
		    "(e.g. @%s status)", out->tag, out->tag);
	}
	return 0;
}

void
control_line_free(struct control_line *l)
{
	free(l->tag);
	strv_free(&l->words);
	memset(l, 0, sizeof(*l));
}
