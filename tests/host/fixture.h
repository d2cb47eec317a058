/* Host-root fixtures for the snapshot tests: build a tree with
 * tests/fixtures/mkhost.py in a fresh temporary directory, point the host
 * root at it, and remove it afterwards. */
#ifndef VFIO_TEST_FIXTURE_H
#define VFIO_TEST_FIXTURE_H

#include <stdbool.h>

#include "snapshot.h"

/* Build a tree from preset (NULL: none) with spec_json (NULL: none) laid
 * over it, set the host root to it and return its path (allocated). Fails
 * the test when mkhost.py fails. */
char *fixture_build(const char *preset, const char *spec_json);
/* Remove the tree and reset the host root to "/". */
void fixture_remove(char *root);
/* Write (creating directories) a file under root. */
void fixture_write(const char *root, const char *path, const char *content);
/* Build the tree and take a snapshot of it with no options; fails the test
 * on a snapshot error. */
char *fixture_snapshot(const char *preset, const char *spec_json, struct host_snapshot *snap);

/* Remove path (a host path) under root, whatever it is. */
void fixture_remove_under(const char *root, const char *path);
/* Take snap again from the current host root (after the test changed the
 * tree), freeing the old one; fails the test on a snapshot error. */
void fixture_retake(struct host_snapshot *snap);

/* A snapshot of an unchanged preset, built once per test program and shared
 * by the tests that only read it (the tree itself is removed at once: a
 * snapshot does not refer back to it). Freed at exit. */
const struct host_snapshot *fixture_cached(const char *preset);

#endif
