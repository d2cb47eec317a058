/* PCI class and device names for the lspci -Dnn lines, without libpci's
 * pci_lookup_name loading the whole name file.
 *
 * Why: libpci's first lookup parses all of pci.ids (1.3 MB, ~40 000 hash
 * inserts). Profiling put that at about 5 of the 10 ms of a whole dry run,
 * and about 8 ms of every control-FIFO `pci add`, which rescans PCI. A host
 * has a few dozen devices, so here one pass over the mapped file (about
 * 1 ms) indexes its top-level lines (vendors, classes) and where each one's
 * first-level lines start; a lookup bisects one vendor's devices or one
 * class's subclasses. Nothing is allocated per entry. The index, and the
 * hwdb's answers, are kept for the next scan while the files are unchanged
 * (names_cache, names_hwdb_cache).
 *
 * The strings must stay exactly what libpci gives, since -pci regexes match
 * them as they matched lspci's output in the original script: the same file
 * (acc->id_file_name, with libpci's .gz fallback), the same line rules, the
 * udev hwdb for what the file lacks, the same formatting and truncation.
 * The index pass checks the whole file by libpci's rules; whatever it cannot
 * answer exactly (a gzip file, a parse error libpci would report, lines
 * longer than libpci reads, blocks out of order where duplicates could
 * hide, a DNS name cache, lookup flags other than the default) is handed to
 * pci_lookup_name itself. tests/host/test-pci-names.c compares the two for
 * every id in the system pci.ids and for crafted files. */
#include <errno.h>
#include <fcntl.h>
#include <libudev.h>
#include <limits.h>
#include <pci/pci.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pci-names.h"
#include "util.h"

/* libpci reads the file with a 1024-byte line buffer; a longer line is an
 * error or, split at a \r, two lines. Either way libpci is left to it. */
#define NAMES_LIBPCI_LINE 1024

/* The lookup flags pci_alloc() sets; any other mode goes to libpci. */
#define NAMES_DEFAULT_MODE PCI_LOOKUP_CACHE

enum names_kind {
	NAMES_VENDOR,
	NAMES_CLASS,
	NAMES_GEN_SUBSYSTEM,
};

/* libpci's parser state: what kind of line the last id line was. */
enum names_cat {
	CAT_NONE,
	CAT_UNKNOWN,
	CAT_VENDOR,
	CAT_DEVICE,
	CAT_SUBSYSTEM,
	CAT_GEN_SUBSYSTEM,
	CAT_CLASS,
	CAT_SUBCLASS,
	CAT_PROGIF,
};

/* One top-level line. Offsets into the map; the file is at most 4 GiB or
 * left to libpci. */
struct names_block {
	uint32_t key; /* kind << 16 | id */
	uint32_t line;
	uint32_t name, name_len;
	uint32_t child, n_children; /* its first-level lines in children[] */
};

struct pci_names {
	struct pci_access *acc;
	bool use_libpci;
	const char *map;
	size_t size;
	bool has_cr;
	struct names_block *blocks;
	size_t n_blocks;
	/* Where each first-level line of a vendor or class block starts, in
	 * file order, so rising by id within a block: a lookup bisects its
	 * block's run instead of walking thousands of Intel lines. */
	uint32_t *children;
	size_t n_children, cap_children;

	dev_t dev;   /* the file's identity, for names_cache */
	ino_t ino;
	struct timespec mtime;

	bool missed; /* a lookup has missed the file: libpci's cache check done */
	bool hwdb_disabled;
	bool hwdb_tried;
	struct udev *udev;
	struct udev_hwdb *hwdb;
};

/* A line as libpci's reader sees it: cut at the first \r or \n, then one
 * trailing blank dropped; text starts after the leading tabs. */
struct names_line {
	const char *text;
	size_t len;
	size_t nest;
	size_t raw_len;
	bool skip; /* blank or comment */
};

struct names_str {
	const char *s;
	int len;
	char *owned;
};

static bool
names_white(int c)
{
	return c == ' ' || c == '\t';
}

/* Inlined: the index pass calls it for each of pci.ids' ~40 000 lines. */
static inline __attribute__((always_inline)) bool
names_next_line(const struct pci_names *n, size_t *pos, struct names_line *l)
{
	if (*pos >= n->size)
		return false;
	const char *start = n->map + *pos;
	size_t left = n->size - *pos;
	const char *nl = memchr(start, '\n', left);
	size_t raw = nl != NULL ? (size_t)(nl - start) : left;
	*pos += nl != NULL ? raw + 1 : raw;

	const char *end = start + raw;
	if (n->has_cr) {
		const char *cr = memchr(start, '\r', raw);
		if (cr != NULL)
			end = cr;
	}
	if (end > start && names_white(end[-1]))
		end--;
	const char *p = start;
	while (p < end && *p == '\t')
		p++;
	const char *q = p;
	while (q < end && names_white(*q))
		q++;
	l->skip = q == end || *q == '#';
	l->raw_len = raw;
	l->nest = (size_t)(p - start);
	l->text = p;
	l->len = (size_t)(end - p);
	return true;
}

/* Past the end of a line libpci's buffer holds a NUL, which is neither a
 * hex digit nor a blank. */
static inline int
names_at(const struct names_line *l, size_t i)
{
	return i < l->len ? (unsigned char)l->text[i] : 0;
}

/* A hex digit's value plus one; 0 for anything else. */
static const unsigned char names_hexval[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static inline long
names_hex(const struct names_line *l, size_t at, int digits)
{
	long x = 0;
	for (int i = 0; i < digits; i++) {
		unsigned v = names_hexval[names_at(l, at + (size_t)i)];
		if (v == 0)
			return -1;
		x = x << 4 | (long)(v - 1);
	}
	return x;
}

/* The name after the id: what follows its blanks; libpci rejects none. */
static bool
names_name_at(const struct names_line *l, size_t at, struct names_str *out)
{
	while (names_white(names_at(l, at)))
		at++;
	if (at >= l->len)
		return false;
	out->s = l->text + at;
	out->len = (int)(l->len - at);
	out->owned = NULL;
	return true;
}

static int
names_block_cmp(const void *a, const void *b)
{
	const struct names_block *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return 0;
}

static const struct names_block *
names_find_block(const struct pci_names *n, enum names_kind kind, unsigned id)
{
	uint32_t key = (uint32_t)kind << 16 | id;
	size_t lo = 0, hi = n->n_blocks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->blocks[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->n_blocks && n->blocks[lo].key == key ? &n->blocks[lo] : NULL;
}

static size_t
names_add_block(struct pci_names *n, size_t *cap, enum names_kind kind, long id, size_t line,
    const struct names_str *name)
{
	if (n->n_blocks == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		n->blocks = xreallocarray(n->blocks, *cap, sizeof(*n->blocks));
	}
	struct names_block *b = &n->blocks[n->n_blocks++];
	b->key = (uint32_t)kind << 16 | (uint32_t)id;
	b->line = (uint32_t)line;
	b->name = name ? (uint32_t)(name->s - n->map) : 0;
	b->name_len = name ? (uint32_t)name->len : 0;
	b->child = (uint32_t)n->n_children;
	b->n_children = 0;
	return n->n_blocks - 1;
}

/* Ids in each block rising strictly: then, with unique top-level lines, no
 * entry can repeat, which libpci would report as a duplicate. pci.ids is
 * kept sorted; a file that is not goes to libpci. */
static bool
names_rises(long long *prev, long long id)
{
	bool ok = id > *prev;
	*prev = id;
	return ok;
}

/* One pass over the whole file with libpci's parser rules (names-parse.c):
 * indexes the top-level lines and returns NULL, or says why libpci must
 * read this file itself. */
static const char *
names_index(struct pci_names *n, size_t *bad_line)
{
	enum names_cat cat = CAT_NONE;
	long long prev1 = -1, prev2 = -1;
	long id1 = 0;
	size_t pos = 0, start = 0, cap = 0;
	size_t open = SIZE_MAX; /* the block the nested lines belong to */
	struct names_line l;
	struct names_str name;

	while (start = pos, names_next_line(n, &pos, &l)) {
		++*bad_line;
		if (l.raw_len >= NAMES_LIBPCI_LINE - 1)
			return "a line longer than libpci's buffer";
		if (l.skip)
			continue;
		if (l.nest == 0) {
			open = SIZE_MAX;
			prev1 = prev2 = -1;
			int c0 = names_at(&l, 0), c1 = names_at(&l, 1);
			if (c0 == 'C' && c1 == ' ') {
				if ((id1 = names_hex(&l, 2, 2)) < 0 || !names_white(names_at(&l, 4)) ||
				    !names_name_at(&l, 5, &name))
					return "a parse error";
				cat = CAT_CLASS;
				open = names_add_block(n, &cap, NAMES_CLASS, id1, start, &name);
			} else if (c0 == 'S' && c1 == ' ') {
				if ((id1 = names_hex(&l, 2, 4)) < 0 || l.len != 6)
					return "a parse error";
				cat = CAT_GEN_SUBSYSTEM;
				names_add_block(n, &cap, NAMES_GEN_SUBSYSTEM, id1, start, NULL);
			} else if (c0 >= 'A' && c0 <= 'Z' && c1 == ' ') {
				cat = CAT_UNKNOWN;
			} else {
				if ((id1 = names_hex(&l, 0, 4)) < 0 || !names_white(names_at(&l, 4)) ||
				    !names_name_at(&l, 5, &name))
					return "a parse error";
				cat = CAT_VENDOR;
				open = names_add_block(n, &cap, NAMES_VENDOR, id1, start, &name);
			}
			continue;
		}
		if (cat == CAT_UNKNOWN)
			continue;

		long id2, id3, id4;
		if (l.nest == 1) {
			switch (cat) {
			case CAT_VENDOR:
			case CAT_DEVICE:
			case CAT_SUBSYSTEM:
			case CAT_GEN_SUBSYSTEM:
				if ((id2 = names_hex(&l, 0, 4)) < 0 || !names_white(names_at(&l, 4)) ||
				    !names_name_at(&l, 5, &name))
					return "a parse error";
				if (cat != CAT_GEN_SUBSYSTEM)
					cat = CAT_DEVICE;
				break;
			case CAT_CLASS:
			case CAT_SUBCLASS:
			case CAT_PROGIF:
				if ((id2 = names_hex(&l, 0, 2)) < 0 || !names_white(names_at(&l, 2)) ||
				    !names_name_at(&l, 3, &name))
					return "a parse error";
				cat = CAT_SUBCLASS;
				break;
			default:
				return "a parse error";
			}
			if (!names_rises(&prev1, id2))
				return "ids out of order";
			prev2 = -1;
			if (open != SIZE_MAX) {
				if (n->n_children == n->cap_children) {
					n->cap_children = n->cap_children ? n->cap_children * 2 : 16384;
					n->children = xreallocarray(n->children, n->cap_children, sizeof(*n->children));
				}
				n->children[n->n_children++] = (uint32_t)start;
				n->blocks[open].n_children++;
			}
		} else if (l.nest == 2) {
			switch (cat) {
			case CAT_DEVICE:
			case CAT_SUBSYSTEM:
				if ((id3 = names_hex(&l, 0, 4)) < 0 || !names_white(names_at(&l, 4)) ||
				    (id4 = names_hex(&l, 5, 4)) < 0 || !names_white(names_at(&l, 9)) ||
				    !names_name_at(&l, 10, &name))
					return "a parse error";
				cat = CAT_SUBSYSTEM;
				if (!names_rises(&prev2, id3 << 16 | id4))
					return "ids out of order";
				break;
			case CAT_SUBCLASS:
			case CAT_PROGIF:
				if ((id3 = names_hex(&l, 0, 2)) < 0 || !names_white(names_at(&l, 2)) ||
				    !names_name_at(&l, 3, &name))
					return "a parse error";
				cat = CAT_PROGIF;
				if (!names_rises(&prev2, id3))
					return "ids out of order";
				break;
			case CAT_CLASS:
				/* A prog-if before any subclass belongs to subclass
				 * 00 in libpci and may collide with a later one. */
				return "a prog-if outside a subclass";
			default:
				return "a parse error";
			}
		} else {
			return "a parse error";
		}
	}

	if (n->n_blocks > 1)
		qsort(n->blocks, n->n_blocks, sizeof(*n->blocks), names_block_cmp);
	for (size_t i = 1; i < n->n_blocks; i++)
		if (n->blocks[i].key == n->blocks[i - 1].key)
			return "a duplicate top-level line";
	/* libpci needs the vendor of a generic-subsystem block defined
	 * before it. */
	for (size_t i = 0; i < n->n_blocks; i++) {
		const struct names_block *b = &n->blocks[i];
		if (b->key >> 16 != NAMES_GEN_SUBSYSTEM)
			continue;
		const struct names_block *v = names_find_block(n, NAMES_VENDOR, b->key & 0xffff);
		if (v == NULL || v->line > b->line)
			return "a generic subsystem of an undefined vendor";
	}
	return NULL;
}

static void
names_unmap(struct pci_names *n)
{
	if (n->map != NULL && n->size > 0)
		munmap((void *)n->map, n->size);
	n->map = NULL;
	n->size = 0;
	free(n->blocks);
	n->blocks = NULL;
	n->n_blocks = 0;
	free(n->children);
	n->children = NULL;
	n->n_children = n->cap_children = 0;
}

/* The index of the last file, kept for the next pci_names_open() of the
 * same file (same device, inode, size and mtime): the supervisor rescans
 * PCI on every control-FIFO `pci add`, and indexing is ~0.9 ms of it. The
 * mapping's pages are dropped from the process while kept (MADV_DONTNEED;
 * they stay in the page cache), so resident memory holds only the arrays. */
static struct {
	bool valid;
	struct pci_names idx;	/* the file's identity and its index */
} names_cache;

static void
names_index_move(struct pci_names *to, struct pci_names *from)
{
	to->map = from->map;
	to->size = from->size;
	to->has_cr = from->has_cr;
	to->blocks = from->blocks;
	to->n_blocks = from->n_blocks;
	to->children = from->children;
	to->n_children = from->n_children;
	to->cap_children = from->cap_children;
	to->dev = from->dev;
	to->ino = from->ino;
	to->mtime = from->mtime;
	from->map = NULL;
	from->size = 0;
	from->blocks = NULL;
	from->n_blocks = 0;
	from->children = NULL;
	from->n_children = from->cap_children = 0;
}

static bool
names_cache_fits(const struct stat *st)
{
	const struct pci_names *c = &names_cache.idx;
	return names_cache.valid && c->dev == st->st_dev && c->ino == st->st_ino &&
	    (off_t)c->size == st->st_size && c->mtime.tv_sec == st->st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void
names_cache_drop(void)
{
	if (names_cache.valid)
		names_unmap(&names_cache.idx);
	names_cache.valid = false;
}

/* pci_open() in libpci: the file, or without its .gz when that does not
 * open. A file it cannot open means no names from a file, not an error. */
static int
names_open_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = strlen(path);
	if (fd < 0 && len >= 3 && strcmp(path + len - 3, ".gz") == 0) {
		char *plain = xstrndup(path, len - 3);
		fd = open(plain, O_RDONLY | O_CLOEXEC);
		free(plain);
	}
	return fd;
}

/* Maps the name file; returns why libpci must read it, or NULL. */
static const char *
names_map(struct pci_names *n)
{
	int fd = names_open_file(n->acc->id_file_name);
	if (fd < 0) {
		log_debug("no PCI name file %s: names from the udev hwdb only", n->acc->id_file_name);
		return NULL;
	}
	struct stat st;
	const char *why = NULL;
	bool stat_ok = fstat(fd, &st) == 0;
	if (stat_ok && names_cache_fits(&st)) {
		close(fd);
		names_index_move(n, &names_cache.idx);
		names_cache.valid = false;
		return NULL;
	}
	names_cache_drop();
	if (stat_ok) {
		n->dev = st.st_dev;
		n->ino = st.st_ino;
		n->mtime = st.st_mtim;
	}
	if (!stat_ok || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((unsigned long long)st.st_size > UINT32_MAX - 1)
		why = "too large to index";
	else if (st.st_size > 0) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			why = "cannot be mapped";
		else {
			n->map = m;
			n->size = (size_t)st.st_size;
		}
	}
	close(fd);
	if (why != NULL || n->size == 0)
		return why;
	if (n->size >= 2 && (unsigned char)n->map[0] == 0x1f && (unsigned char)n->map[1] == 0x8b)
		return "compressed";
	/* libpci's line reader stops at a NUL as at a line too long. */
	if (memchr(n->map, '\0', n->size) != NULL)
		return "it holds a NUL byte";
	n->has_cr = memchr(n->map, '\r', n->size) != NULL;
	size_t lino = 0;
	why = names_index(n, &lino);
	if (why != NULL)
		log_debug("%s: %s at line %zu", n->acc->id_file_name, why, lino);
	return why;
}

static void names_hwdb_cache_check(void);

struct pci_names *
pci_names_open(struct pci_access *acc)
{
	struct pci_names *n = xcalloc(1, sizeof(*n));
	n->acc = acc;
	names_hwdb_cache_check();
	char hwdb_param[] = "hwdb.disable";
	const char *disabled = pci_get_param(acc, hwdb_param);
	n->hwdb_disabled = disabled != NULL && atoi(disabled) != 0;
	if (acc->numeric_ids < 2 || (acc->id_lookup_mode & ~(unsigned)NAMES_DEFAULT_MODE) != 0 ||
	    acc->id_file_name == NULL) {
		log_debug("PCI names through libpci: lookup mode %#x, numeric ids %d", acc->id_lookup_mode,
		    acc->numeric_ids);
		n->use_libpci = true;
		return n;
	}
	const char *why = names_map(n);
	if (why != NULL) {
		log_debug("PCI names through libpci: %s is %s", acc->id_file_name, why);
		names_unmap(n);
		n->use_libpci = true;
	}
	return n;
}

void
pci_names_close(struct pci_names *n)
{
	if (n == NULL)
		return;
	if (!n->use_libpci && n->map != NULL) {
		names_cache_drop();
		names_index_move(&names_cache.idx, n);
		names_cache.valid = true;
		madvise((void *)names_cache.idx.map, names_cache.idx.size, MADV_DONTNEED);
	}
	names_unmap(n);
	if (n->hwdb != NULL)
		udev_hwdb_unref(n->hwdb);
	if (n->udev != NULL)
		udev_unref(n->udev);
	free(n);
}

bool
pci_names_indexed(const struct pci_names *n)
{
	return !n->use_libpci;
}

/* libpci's first miss in the file loads its DNS name cache (written by
 * lspci -q), whose names then win over the hwdb. The file hardly ever
 * exists; when it does, libpci answers everything. Returns whether the
 * hwdb is next. */
static bool
names_missed(struct pci_names *n)
{
	if (n->missed)
		return !n->use_libpci;
	n->missed = true;
	if (!(n->acc->id_lookup_mode & PCI_LOOKUP_CACHE))
		return true;
	char param[] = "net.cache_name";
	const char *name = pci_get_param(n->acc, param);
	if (name == NULL || name[0] == '\0')
		return true;
	char *path = NULL;
	if (strncmp(name, "~/", 2) == 0) {
		struct passwd *pw = getpwuid(getuid());
		if (pw != NULL)
			path = xasprintf("%s%s", pw->pw_dir, name + 1);
	}
	FILE *f = fopen(path != NULL ? path : name, "rb");
	if (f != NULL) {
		log_debug("PCI names through libpci: it has a name cache %s", path != NULL ? path : name);
		fclose(f);
		n->use_libpci = true;
	}
	free(path);
	return !n->use_libpci;
}

/* The hwdb's answers, kept across scans like names_cache: a rescan would
 * otherwise map the 13 MB hwdb again for the same few names (a subclass
 * like 0c80 is missing from pci.ids on most hosts). Forgotten when any
 * hwdb.bin libudev may read changes; holding only the answers keeps the
 * hwdb's pages out of the supervisor's resident memory. */
#define NAMES_HWDB_CACHE_MAX 256

static struct {
	char *fingerprint;
	size_t n;
	struct {
		char *query;	/* key NUL modalias NUL */
		size_t qlen;
		char *value;	/* NULL: no answer */
	} e[NAMES_HWDB_CACHE_MAX];
} names_hwdb_cache;

static char *
names_hwdb_fingerprint(void)
{
	static const char *const files[] = {
		"/etc/systemd/hwdb/hwdb.bin", "/etc/udev/hwdb.bin", "/usr/lib/systemd/hwdb/hwdb.bin",
		"/lib/systemd/hwdb/hwdb.bin", "/usr/lib/udev/hwdb.bin", "/lib/udev/hwdb.bin",
	};
	struct strbuf sb = { 0 };
	for (size_t i = 0; i < nitems(files); i++) {
		struct stat st;
		if (stat(files[i], &st) == 0)
			strbuf_printf(&sb, "%llu:%llu:%lld:%lld.%ld;", (unsigned long long)st.st_dev,
			    (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			    st.st_mtim.tv_nsec);
		else
			strbuf_puts(&sb, "-;");
	}
	return strbuf_steal(&sb);
}

static void
names_hwdb_cache_clear(void)
{
	for (size_t i = 0; i < names_hwdb_cache.n; i++) {
		free(names_hwdb_cache.e[i].query);
		free(names_hwdb_cache.e[i].value);
	}
	names_hwdb_cache.n = 0;
	free(names_hwdb_cache.fingerprint);
	names_hwdb_cache.fingerprint = NULL;
}

/* Once per pci_names_open(): forget the answers of another hwdb. */
static void
names_hwdb_cache_check(void)
{
	char *fp = names_hwdb_fingerprint();
	if (names_hwdb_cache.fingerprint == NULL || strcmp(fp, names_hwdb_cache.fingerprint) != 0) {
		names_hwdb_cache_clear();
		names_hwdb_cache.fingerprint = fp;
	} else {
		free(fp);
	}
}

static bool
names_hwdb_answer(const char *value, struct names_str *out)
{
	if (value == NULL)
		return false;
	out->owned = xstrdup(value);
	out->s = out->owned;
	out->len = (int)strlen(value);
	return true;
}

static bool names_from_hwdb_uncached(struct pci_names *n, const char *modalias, const char *key,
    struct names_str *out);

static bool
names_from_hwdb(struct pci_names *n, const char *modalias, const char *key, struct names_str *out)
{
	if (!names_missed(n) || n->hwdb_disabled)
		return false;
	char *query = xasprintf("%s%c%s", key, '\0', modalias);
	size_t qlen = strlen(key) + 1 + strlen(modalias) + 1;
	for (size_t i = 0; i < names_hwdb_cache.n; i++) {
		if (names_hwdb_cache.e[i].qlen == qlen && memcmp(names_hwdb_cache.e[i].query, query, qlen) == 0) {
			free(query);
			return names_hwdb_answer(names_hwdb_cache.e[i].value, out);
		}
	}
	bool found = names_from_hwdb_uncached(n, modalias, key, out);
	if (names_hwdb_cache.n < NAMES_HWDB_CACHE_MAX && n->hwdb != NULL) {
		names_hwdb_cache.e[names_hwdb_cache.n].query = xmalloc(qlen);
		memcpy(names_hwdb_cache.e[names_hwdb_cache.n].query, query, qlen);
		names_hwdb_cache.e[names_hwdb_cache.n].qlen = qlen;
		names_hwdb_cache.e[names_hwdb_cache.n].value = found ? xstrdup(out->s) : NULL;
		names_hwdb_cache.n++;
	}
	free(query);
	return found;
}

static bool
names_from_hwdb_uncached(struct pci_names *n, const char *modalias, const char *key, struct names_str *out)
{
	if (!n->hwdb_tried) {
		/* Lazily: the hwdb is a 13 MB mapping most hosts never need. */
		n->hwdb_tried = true;
		n->udev = udev_new();
		if (n->udev != NULL)
			n->hwdb = udev_hwdb_new(n->udev);
		if (n->hwdb == NULL)
			log_debug("no udev hwdb for PCI names missing from %s", n->acc->id_file_name);
	}
	if (n->hwdb == NULL)
		return false;
	struct udev_list_entry *e;
	udev_list_entry_foreach(e, udev_hwdb_get_properties_list_entry(n->hwdb, modalias, 0)) {
		const char *k = udev_list_entry_get_name(e);
		const char *v = udev_list_entry_get_value(e);
		if (k == NULL || strcmp(k, key) != 0 || v == NULL)
			continue;
		/* libpci keeps an empty value as a known-unknown entry. */
		if (v[0] == '\0' || strlen(v) > INT_MAX)
			return false;
		out->owned = xstrdup(v);
		out->s = out->owned;
		out->len = (int)strlen(v);
		return true;
	}
	return false;
}

/* The name of entry id among a block's first-level lines (devices of a
 * vendor, subclasses of a class), which the index pass found rising. */
static bool
names_find_child(const struct pci_names *n, const struct names_block *b, int digits, unsigned id,
    struct names_str *out)
{
	size_t lo = b->child, hi = (size_t)b->child + b->n_children;
	struct names_line l;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		size_t pos = n->children[mid];
		if (!names_next_line(n, &pos, &l))
			return false;
		long got = names_hex(&l, 0, digits);
		if (got == (long)id)
			return names_name_at(&l, (size_t)digits + 1, out);
		if (got < (long)id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void
names_block_name(const struct pci_names *n, const struct names_block *b, struct names_str *out)
{
	out->s = n->map + b->name;
	out->len = (int)b->name_len;
	out->owned = NULL;
}

static bool
names_vendor(struct pci_names *n, unsigned v, struct names_str *out)
{
	const struct names_block *b = names_find_block(n, NAMES_VENDOR, v);
	if (b != NULL) {
		names_block_name(n, b, out);
		return true;
	}
	char modalias[64];
	snprintf(modalias, sizeof(modalias), "pci:v%08X*", v);
	return names_from_hwdb(n, modalias, "ID_VENDOR_FROM_DATABASE", out);
}

static bool
names_device(struct pci_names *n, unsigned v, unsigned d, struct names_str *out)
{
	const struct names_block *b = names_find_block(n, NAMES_VENDOR, v);
	if (b != NULL && names_find_child(n, b, 4, d, out))
		return true;
	char modalias[64];
	snprintf(modalias, sizeof(modalias), "pci:v%08Xd%08X*", v, d);
	return names_from_hwdb(n, modalias, "ID_MODEL_FROM_DATABASE", out);
}

static bool
names_subclass(struct pci_names *n, unsigned c, unsigned s, struct names_str *out)
{
	const struct names_block *b = names_find_block(n, NAMES_CLASS, c);
	if (b != NULL && names_find_child(n, b, 2, s, out))
		return true;
	char modalias[64];
	snprintf(modalias, sizeof(modalias), "pci:v*d*sv*sd*bc%02Xsc%02X*", c, s);
	return names_from_hwdb(n, modalias, "ID_PCI_SUBCLASS_FROM_DATABASE", out);
}

static bool
names_class(struct pci_names *n, unsigned c, struct names_str *out)
{
	const struct names_block *b = names_find_block(n, NAMES_CLASS, c);
	if (b != NULL) {
		names_block_name(n, b, out);
		return true;
	}
	char modalias[64];
	snprintf(modalias, sizeof(modalias), "pci:v*d*sv*sd*bc%02X*", c);
	return names_from_hwdb(n, modalias, "ID_PCI_CLASS_FROM_DATABASE", out);
}

/* libpci's ending for a formatted name: a cut-off one ends in "...". */
static const char *
names_finish(char *buf, size_t size, int res)
{
	if (res >= 0 && (size_t)res >= size && size >= 4)
		buf[size - 2] = buf[size - 3] = buf[size - 4] = '.';
	else if (res < 0 || (size_t)res >= size)
		return "<pci_lookup_name: buffer too small>";
	return buf;
}

static int
names_size(size_t size)
{
	return size > INT_MAX ? INT_MAX : (int)size;
}

const char *
pci_names_class(struct pci_names *n, char *buf, size_t size, unsigned cls16)
{
	size = (size_t)names_size(size);
	if (!n->use_libpci) {
		struct names_str s = { 0 };
		unsigned c = cls16 >> 8 & 0xff, sc = cls16 & 0xff;
		int res;
		if (names_subclass(n, c, sc, &s) || names_class(n, c, &s))
			res = snprintf(buf, size, "%.*s [%04x]", s.len, s.s, cls16);
		else
			res = snprintf(buf, size, "Class [%04x]", cls16);
		free(s.owned);
		if (!n->use_libpci)
			return names_finish(buf, size, res);
	}
	return pci_lookup_name(n->acc, buf, names_size(size), PCI_LOOKUP_CLASS, cls16);
}

const char *
pci_names_device(struct pci_names *n, char *buf, size_t size, unsigned vendor, unsigned device)
{
	size = (size_t)names_size(size);
	if (!n->use_libpci) {
		struct names_str v = { 0 }, d = { 0 };
		bool has_v = names_vendor(n, vendor, &v);
		bool has_d = !n->use_libpci && names_device(n, vendor, device, &d);
		int res;
		if (has_v && has_d)
			res = snprintf(buf, size, "%.*s %.*s [%04x:%04x]", v.len, v.s, d.len, d.s, vendor, device);
		else if (!has_v)
			res = snprintf(buf, size, "Device [%04x:%04x]", vendor, device);
		else
			res = snprintf(buf, size, "%.*s Device [%04x:%04x]", v.len, v.s, vendor, device);
		free(v.owned);
		free(d.owned);
		if (!n->use_libpci)
			return names_finish(buf, size, res);
	}
	return pci_lookup_name(n->acc, buf, names_size(size), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, vendor,
	    device);
}
