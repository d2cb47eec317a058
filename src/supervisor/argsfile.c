/* -args FILE: read a guest's flags from a file, one per line (the format is in
 * argsfile.h). Which flags take a value comes from the options table, so a
 * file line can never swallow the next line as a value, and a value on the
 * command line that happens to read "-args" is never taken for the flag. */
#include "argsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"

enum argsfile_kind {
	KIND_UNKNOWN,
	KIND_SWITCH,           /* takes no value */
	KIND_REQUIRED,         /* the next word is its value, whatever it is */
	KIND_OPTIONAL,         /* the next word when it does not start with '-' */
	KIND_ARGS,             /* -args itself */
};

/* "-pci", "--PCI" -> "pci"; NULL when word is not a flag. */
static const char *
argsfile_flag_name(const char *word)
{
	if (word[0] != '-' || word[1] == '\0')
		return NULL;
	return word + (word[1] == '-' ? 2 : 1);
}

static bool
argsfile_alias_matches(const char *aliases, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = aliases; *p;) {
		size_t len = strcspn(p, " ");
		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		p += len;
		p += strspn(p, " ");
	}
	return false;
}

/* The options table says whether a flag takes a value but not whether the
 * value is optional; the parser itself knows, so ask it with the flag alone:
 * a flag that needs a value fails with "needs a value". */
static enum argsfile_kind
argsfile_flag_kind(const char *name, const struct option_info **infop)
{
	if (strcasecmp(name, "args") == 0)
		return KIND_ARGS;
	const struct option_info *in;
	for (size_t i = 0; (in = options_info(i)) != NULL; i++) {
		if (strcasecmp(in->name, name) == 0 || argsfile_alias_matches(in->aliases, name))
			break;
	}
	if (infop != NULL)
		*infop = in;
	if (in == NULL)
		return KIND_UNKNOWN;
	if (in->arg == NULL)
		return KIND_SWITCH;
	char *flag = xasprintf("-%s", in->name);
	char *argv[] = { "vfio", flag, NULL };
	struct options probe;
	struct verr err = { 0 };
	int rc = options_parse(&probe, 2, argv, &err);
	options_free(&probe);
	free(flag);
	return rc < 0 && strstr(err.msg, "needs a value") != NULL ? KIND_REQUIRED : KIND_OPTIONAL;
}

static bool
argsfile_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line, without its newline: append its words to out. */
static int
argsfile_parse_line(char *line, const char *origin, size_t lineno, struct strv *out, struct verr *err)
{
	while (argsfile_blank(*line))
		line++;
	size_t len = strlen(line);
	while (len > 0 && argsfile_blank(line[len - 1]))
		line[--len] = '\0';
	if (len == 0 || line[0] == '#')
		return 0;

	size_t flen = 0;
	while (line[flen] != '\0' && !argsfile_blank(line[flen]))
		flen++;
	char *value = line + flen;
	while (argsfile_blank(*value))
		value++;
	line[flen] = '\0';

	const char *name = argsfile_flag_name(line);
	if (name == NULL)
		return verr_set(err, -EINVAL, "%s:%zu: '%s' is not a flag; each line holds one flag and its value, "
		    "e.g. -memory 8G", origin, lineno, line);
	/* One pair of quotes around the whole value, as a shell would have needed. */
	size_t vlen = strlen(value);
	if (vlen >= 2 && (value[0] == '\'' || value[0] == '"') && value[vlen - 1] == value[0] &&
	    memchr(value + 1, value[0], vlen - 2) == NULL) {
		value[vlen - 1] = '\0';
		value++;
	}

	const struct option_info *in = NULL;
	switch (argsfile_flag_kind(name, &in)) {
	case KIND_ARGS:
		return verr_set(err, -EINVAL, "%s:%zu: -args inside an args file is not allowed; put the flags of "
		    "'%s' in this file instead", origin, lineno, *value ? value : "FILE");
	case KIND_UNKNOWN: {
		/* The parser's own message suggests the nearest flag. */
		struct options probe;
		char *argv[] = { "vfio", line, NULL };
		options_parse(&probe, 2, argv, err);
		options_free(&probe);
		verr_prefix(err, "%s:%zu", origin, lineno);
		return -EINVAL;
	}
	case KIND_SWITCH:
		if (options_is_mode(in))
			return verr_set(err, -EINVAL, "%s:%zu: -%s says what vfio does this time, not how the guest is "
			    "made: give it on the command line (vfio@.service gives -run), not in an args file",
			    origin, lineno, in->name);
		if (*value != '\0')
			return verr_set(err, -EINVAL, "%s:%zu: -%s takes no value, but the line goes on with '%s'; "
			    "put one flag per line", origin, lineno, in->name, value);
		strv_push(out, line);
		return 0;
	case KIND_REQUIRED:
		if (*value == '\0')
			return verr_set(err, -EINVAL, "%s:%zu: -%s needs a value on the same line: -%s %s",
			    origin, lineno, in->name, in->name, in->arg);
		break;
	case KIND_OPTIONAL:
		if (options_is_mode(in))
			return verr_set(err, -EINVAL, "%s:%zu: -%s says what vfio does this time, not how the guest is "
			    "made: give it on the command line, not in an args file", origin, lineno, in->name);
		if (*value == '-')
			return verr_set(err, -EINVAL, "%s:%zu: the value of -%s cannot start with '-' ('%s')",
			    origin, lineno, in->name, value);
		break;
	}
	strv_push(out, line);
	if (*value != '\0')
		strv_push(out, value);
	return 0;
}

int
argsfile_parse(const char *text, size_t len, const char *origin, struct strv *out, struct verr *err)
{
	if (memchr(text, '\0', len) != NULL)
		return verr_set(err, -EINVAL, "%s: contains a NUL byte; an args file is text, one flag per line",
		    origin);
	struct strv words = { 0 };
	size_t lineno = 0;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		char *line = xstrndup(text + pos, end - pos);
		int rc = argsfile_parse_line(line, origin, ++lineno, &words, err);
		free(line);
		if (rc < 0) {
			strv_free(&words);
			return rc;
		}
		pos = end + 1;
	}
	for (size_t i = 0; i < words.n; i++)
		strv_push(out, words.v[i]);
	strv_free(&words);
	return 0;
}

int
argsfile_read(const char *path, struct strv *out, struct verr *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return verr_set(err, -e, "-args %s: no such file; create it with one flag per line "
			    "(see vfio(1), ARGUMENT FILES)", path);
		return verr_set(err, -e, "-args %s: cannot open it: %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return verr_set(err, -EINVAL, "-args %s: not a regular file; name a text file with one flag per "
		    "line", path);
	}
	struct strbuf text = { 0 };
	char buf[8192];
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = verr_set(err, -errno, "-args %s: reading it failed: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (text.len + (size_t)n > ARGSFILE_MAX_SIZE) {
			rc = verr_set(err, -EFBIG, "-args %s: larger than %d bytes; an args file holds one flag per "
			    "line and is far smaller", path, ARGSFILE_MAX_SIZE);
			break;
		}
		strbuf_add(&text, buf, (size_t)n);
	}
	close(fd);
	if (rc == 0)
		rc = argsfile_parse(text.s != NULL ? text.s : "", text.len, path, out, err);
	strbuf_free(&text);
	return rc;
}

/* The flag at words[i] and how many words it takes with its value (1 or
 * 2); *infop gets its entry (NULL when it is not a known flag). */
static size_t
argsfile_span(char **words, size_t n, size_t i, const struct option_info **infop, enum argsfile_kind *kindp)
{
	const char *name = argsfile_flag_name(words[i]);
	const struct option_info *in = NULL;
	enum argsfile_kind kind = name != NULL ? argsfile_flag_kind(name, &in) : KIND_UNKNOWN;
	*infop = kind == KIND_UNKNOWN || kind == KIND_ARGS ? NULL : in;
	*kindp = kind;
	if ((kind == KIND_REQUIRED || kind == KIND_ARGS) && i + 1 < n)
		return 2;
	if (kind == KIND_OPTIONAL && i + 1 < n && words[i + 1][0] != '-')
		return 2;
	return 1;
}

/* The single-valued flags the command line gives, whatever their place. */
static void
argsfile_cmdline_flags(int argc, char **argv, const struct option_info ***out, size_t *n)
{
	for (size_t i = 1; i < (size_t)argc;) {
		const struct option_info *in;
		enum argsfile_kind kind;
		size_t span = argsfile_span(argv, (size_t)argc, i, &in, &kind);
		if (in != NULL && in->arg != NULL && !options_is_repeatable(in)) {
			*out = xreallocarray(*out, *n + 1, sizeof(**out));
			(*out)[(*n)++] = in;
		}
		i += span;
	}
}

/* Append the file's words to out, without the flags the command line sets
 * too: the command line wins wherever -args stands in it (vfio@.service's
 * -name %i before -args must name the guest, whatever the file says). */
static void
argsfile_splice(const struct strv *file, const struct option_info *const *given, size_t n_given,
    struct strv *out)
{
	for (size_t i = 0; i < file->n;) {
		const struct option_info *in;
		enum argsfile_kind kind;
		size_t span = argsfile_span(file->v, file->n, i, &in, &kind);
		bool overridden = false;
		for (size_t g = 0; in != NULL && g < n_given; g++)
			overridden = overridden || given[g] == in;
		for (size_t k = 0; !overridden && k < span; k++)
			strv_push(out, file->v[i + k]);
		i += span;
	}
}

int
argsfile_expand(int argc, char **argv, struct strv *out, struct verr *err)
{
	const struct option_info **given = NULL;
	size_t n_given = 0;
	argsfile_cmdline_flags(argc, argv, &given, &n_given);
	struct strv words = { 0 };
	strv_push(&words, argc > 0 ? argv[0] : "vfio");
	for (int i = 1; i < argc; i++) {
		const char *name = argsfile_flag_name(argv[i]);
		enum argsfile_kind kind = name != NULL ? argsfile_flag_kind(name, NULL) : KIND_UNKNOWN;
		if (kind == KIND_ARGS) {
			if (i + 1 >= argc) {
				strv_free(&words);
				free(given);
				return verr_set(err, -EINVAL, "-args needs a value: -args FILE (a file with one flag "
				    "per line)");
			}
			struct strv file = { 0 };
			int rc = argsfile_read(argv[++i], &file, err);
			if (rc < 0) {
				strv_free(&file);
				strv_free(&words);
				free(given);
				return rc;
			}
			argsfile_splice(&file, given, n_given, &words);
			strv_free(&file);
			continue;
		}
		strv_push(&words, argv[i]);
		/* Copy a flag's value along with it so it is never looked at as a flag. */
		if ((kind == KIND_REQUIRED && i + 1 < argc) ||
		    (kind == KIND_OPTIONAL && i + 1 < argc && argv[i + 1][0] != '-'))
			strv_push(&words, argv[++i]);
	}
	free(given);
	strv_free(out);
	*out = words;
	return 0;
}
