/* `-args FILE`: the flags of a guest kept in a file (/etc/vfio/NAME.args for
 * the systemd unit vfio@NAME.service), expanded into argv words before the
 * command line is parsed.
 *
 * The format, one flag per line:
 *
 *     # comment lines start with '#' (after optional blanks)
 *     -memory 8G
 *     -pci NVIDIA Corporation|0000:06:00.0
 *     -extras -device virtio-rng-pci
 *
 * The first word of a line is the flag (one or two dashes, any case, as on the
 * command line); the rest of the line, trimmed, is its value, taken literally:
 * no quoting is needed for spaces, '#' inside a value is kept, and one pair of
 * quotes around the whole value is dropped (so a value copied from a shell
 * command line still works). Blank lines are ignored. A flag that takes no
 * value must stand alone; a flag that needs one must have it on its line.
 * Files do not nest (-args inside a file is refused), and hold a guest's
 * settings only: a flag that says what vfio does this time (-run, -restore,
 * -json, -help, ...: options_is_mode()) is refused with the file and line. */
#ifndef VFIO_ARGSFILE_H
#define VFIO_ARGSFILE_H

#include <stddef.h>

#include "util.h"
#include "verr.h"

/* Largest args file accepted: a guest's flags fit in far less. */
#define ARGSFILE_MAX_SIZE (1024 * 1024)

/* Parse the text of an args file (len bytes, need not be NUL-terminated) and
 * append its words to out. origin names the file in messages ("FILE:LINE: ...").
 * Returns 0, or -EINVAL with a message naming the line and the fix; out then
 * holds nothing new. */
int argsfile_parse(const char *text, size_t len, const char *origin, struct strv *out, struct verr *err);

/* Read the args file at path (as the user named it, not under the host root:
 * it is an argument like -image) and append its words to out. */
int argsfile_read(const char *path, struct strv *out, struct verr *err);

/* Build a new argv in out (argv[0] first, NULL-terminated as strv keeps it)
 * with every "-args FILE" replaced by that file's words, in place. The
 * command line wins: a single-valued flag it gives anywhere (before or after
 * -args) replaces the file's line for that flag, which is dropped; flags
 * that add up (-pci, -image, -extras, ...) add to the file's. Values of
 * other flags are never taken for -args. Returns 0 or a negative errno with a
 * message; out is then empty. */
int argsfile_expand(int argc, char **argv, struct strv *out, struct verr *err);

#endif
