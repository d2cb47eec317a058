/* The user database, asked in a short-lived child process.
 *
 * glibc maps every NSS module a lookup consults into the process for good:
 * with "files systemd" in nsswitch.conf, getgrouplist() alone brings in
 * libnss_systemd and with it libm and libcap, about 700 KiB resident that a
 * supervisor would carry for as long as its guest runs (weeks). A child
 * does the lookup and sends the answer back over a pipe; the supervisor
 * never loads a module. The child is forked from a single-threaded process
 * (or one whose other threads hold no lock it needs). */
#ifndef VFIO_USERDB_H
#define VFIO_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define USERDB_MAX_GROUPS 256

struct userdb_user {
	bool found;                      /* uid has an entry (name, home) */
	char name[64];
	char home[256];
	gid_t groups[USERDB_MAX_GROUPS]; /* gid first, then its supplementary groups */
	size_t n_groups;                 /* at least 1: gid alone when uid has no entry */
};

/* Look up uid and the groups of that user with primary group gid. Never
 * fails: a user the database does not know (or a child that could not run)
 * is found = false with the one group gid. */
void userdb_lookup(uid_t uid, gid_t gid, struct userdb_user *u);
/* The same, in this process: for one that exits right after (a dry run),
 * where a child's fork would cost more than the modules it keeps out. */
void userdb_lookup_here(uid_t uid, gid_t gid, struct userdb_user *u);

#endif
