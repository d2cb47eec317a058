/* Shared pieces of the mem tests: host-root fixtures built with
 * tests/fixtures/mkhost.py, extra fixture files, and a byte-for-byte picture
 * of a fixture tree to prove a restore put back exactly what was there. */
#ifndef VFIO_MEMTEST_H
#define VFIO_MEMTEST_H

#include <stdbool.h>
#include <sys/types.h>

/* A new fixture from a JSON spec (mkhost.py --spec); hostroot_init()s it.
 * Returns the allocated root; aborts the test on failure. */
char *memtest_fixture(const char *spec_json);
void memtest_rmtree(const char *root);
/* Write (creating directories) a file under root: path is a host path. */
void memtest_write(const char *root, const char *path, const char *content);
/* Read a file under root (host path), allocated, NULL when missing. */
char *memtest_read(const char *root, const char *path);
/* Every directory, file (with its bytes), symlink (with its target) and
 * mode under root, sorted, as one string. */
char *memtest_tree(const char *root);
/* A private temporary directory, mode 0755 (other users can reach it). */
char *memtest_tmpdir(void);
/* Write an executable script. */
void memtest_script(const char *path, const char *body);
/* Wait up to ms for path to exist. */
bool memtest_wait_file(const char *path, int ms);

#endif
