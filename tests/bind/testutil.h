/* Shared pieces of the bind tests: fixture trees from mkhost.py under the
 * simulated driver core, a byte-for-byte tree comparison, fake processes. */
#ifndef VFIO_TEST_BIND_UTIL_H
#define VFIO_TEST_BIND_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

/* A fixture from a preset (or a JSON spec string when it starts with '{'),
 * made the current host root ($VFIO_HOST_ROOT, hostroot_init). Returns the
 * allocated root path; fails the test when mkhost.py fails. */
char *fixture_new(const char *preset_or_spec);
/* Remove the tree and unset the host root. */
void fixture_free(char *root);

/* Append a line to ROOT/.drvcore/faults. */
void fixture_fault(const char *root, const char *line);
/* Write a file (host path under root), creating directories. */
void fixture_write(const char *root, const char *path, const char *content, mode_t mode);
void fixture_symlink(const char *root, const char *path, const char *target);
/* A fake /proc/PID with comm, cmdline (argv, NULL-terminated), status with
 * uid/gid, and fd/3 -> held (a host path such as "/dev/dri/card0"). */
void fixture_proc(const char *root, int pid, const char *comm, const char *const argv[], int uid,
    const char *held);
/* The platform bus with efi-framebuffer.0 bound, and vtcon0/vtcon1. */
void fixture_console(const char *root);

/* The bound driver of a PCI device ("" none). Allocated. */
char *fixture_driver(const char *root, const char *addr);
char *fixture_read(const char *root, const char *path);
bool fixture_exists(const char *root, const char *path);

/* A listing of the whole tree but .drvcore: paths, types, modes, file
 * contents, symlink targets. Two listings compare with strcmp. */
char *tree_snapshot(const char *root);
/* Fails the test with the first differing line when a != b. */
void tree_assert_equal(const char *a, const char *b);

/* Path of a helper next to the tests (fake-modprobe, fake-systemctl). */
const char *helper_path(const char *name);

#endif
