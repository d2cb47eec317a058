/* The command line: every flag of the original script, with every alias, in
 * one table (options.c) that also drives -help and the man page. */
#ifndef VFIO_OPTIONS_H
#define VFIO_OPTIONS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "util.h"
#include "verr.h"

/* The largest -lgsize: what Looking Glass needs for 8K HDR. */
#define OPT_LGSIZE_MAX_MIB 1024

struct opt_image {
	char *path;
	char *format;            /* NULL: let QEMU probe (refused for raw, as QEMU does) */
};

struct opt_portfwd {
	char proto[4];           /* "tcp" or "udp" */
	unsigned host_port, guest_port;
};

enum opt_accel {
	OPT_ACCEL_AUTO = 0,      /* kvm, falling back to tcg with a warning */
	OPT_ACCEL_KVM,
	OPT_ACCEL_TCG,
};

/* What a -run would find of an earlier run of -name (adopt.h). */
enum opt_running_how {
	OPT_RUN_FRESH = 0,       /* nothing: start */
	OPT_RUN_ADOPT,           /* the guest runs without a supervisor: adopt it */
	OPT_RUN_RESTORE_FIRST,   /* host changes left behind: give them back, then start */
	OPT_RUN_SUPERVISED,      /* a live supervisor runs it: refuse */
	OPT_RUN_UNREACHABLE,     /* QEMU runs but cannot be adopted: refuse, -restore */
};

struct opt_running {
	enum opt_running_how how;
	int qemu_pid, supervisor_pid;
	json_t *flags;           /* the running guest's flags (ADOPT), NULL otherwise */
	char *why;               /* for a refusal */
};

struct options {
	/* what to do */
	bool run, json, help, version, colortest, iommugroups, cputhreads;
	bool restore;            /* -restore [NAME] */
	char *restore_name;      /* NULL: every stale name */
	char *name;              /* -name, default "vfio" */

	/* storage */
	struct opt_image *images;
	size_t n_images;
	char **isos;
	size_t n_isos;
	bool nvme, novirtio;

	/* firmware and boot */
	char *bios, *biosvars;
	bool nobios, secureboot, tpm, win11, createvars;
	char *kernel, *initrd, *cmdline;

	/* memory and CPU */
	uint64_t memory_mib;     /* 0: half of host memory */
	bool hugepages;
	char *hugepages_mount;   /* NULL: /dev/hugepages */
	int *pinvcpus;           /* host CPUs, in order: vCPU i runs on pinvcpus[i] */
	size_t n_pinvcpus;
	bool isolate;
	enum opt_accel accel;

	/* passthrough */
	char *pci_regex, *usb_regex;     /* as given, leading/trailing '|' stripped */
	regex_t pci_re, usb_re;          /* compiled when the string is set */
	bool pci_re_set, usb_re_set;
	char *romfile;
	bool ignorevtcon, killx;
	int bindtimeout_s;               /* -bindtimeout, default 5 */

	/* network */
	char *bridge, *tap, *hostint;
	bool nonet;
	struct opt_portfwd *portfwds;
	size_t n_portfwds;
	char *mac;                       /* -mac, lower-case; NULL: the plan derives one */

	/* guest companions */
	bool hyperv, hostaudio, looking_glass, spice, qemu_agent;
	uint64_t lgsize_mib;             /* -lgsize, default 64 */
	char *extras;                    /* as given */
	struct strv extras_words;        /* -extras split into words without a shell */

	/* supervisor */
	char *user;                      /* -user NAME for QEMU, default $SUDO_USER */
	int shutdowntimeout_s;           /* default 60 */
	bool force, quiet, nocolor;
	int user_uid, user_gid;          /* -user resolved at parse time, -1 when not given */
	struct strv flags;               /* every flag as given, canonical: "-memory 4G", "-run" (-args
	                                  * expanded): a running guest's are compared with them (adopt.h) */

	/* Inputs main fills in so the plan stays pure and deterministic. */
	char *qemu;                      /* QEMU binary: $VFIO_QEMU, default "qemu-system-x86_64" */
	bool console_tty;                /* stdin is a terminal: the serial console goes there, else to
	                                  * /run/vfio/NAME/console.log */
	unsigned *qemu_groups;           /* supplementary groups of QEMU's user (-user, else the sudo
	                                  * caller): which device nodes it can open already */
	size_t n_qemu_groups;
	char *audiodev;                  /* -hostaudio backend: "pipewire" or "pa" (NULL: "pa",
	                                  * what QEMU 7.2 has; main may pick pipewire when QEMU has it) */
	bool audio_pipewire, audio_pulse; /* -hostaudio: the user's sockets exist (audio_probe()) */
	struct opt_running running;      /* what is left of an earlier run of -name (adopt_probe()) */
};

/* Parse argv (argv[0] is the program). Usage errors return -EINVAL with a
 * message naming the flag and the fix (the caller exits 2). Values that need
 * the host (CPU numbers, files) are checked by the plan. */
int options_parse(struct options *opts, int argc, char **argv, struct verr *err);
void options_free(struct options *opts);
/* Set the defaults options_parse() starts from (also usable on its own). */
void options_init(struct options *opts);
/* -help, generated from the flag table. */
void options_usage(FILE *out);

/* Split s into words the way a POSIX shell does, without any expansion:
 * whitespace separates, '...' is literal, "..." honours \ before \ " $ `,
 * a backslash outside quotes escapes the next character. An unterminated
 * quote or a trailing backslash is -EINVAL with a message. */
int options_split_words(const char *s, struct strv *out, struct verr *err);
/* -EINVAL naming the word and why, when the -extras words hold an option
 * that takes QEMU out of the supervisor's hands (-daemonize, a monitor,
 * -pidfile, -runas, ...: the table in options-extras.c). */
int options_check_extras(const struct strv *words, struct verr *err);
/* Parse a size: K/M/G/T suffix (optional trailing B/iB), bare number = MiB.
 * Returns 0 and *mib, or -EINVAL (zero, not whole MiB, overflow, junk). */
int options_parse_size(const char *s, uint64_t *mib, struct verr *err);
/* Parse a CPU list ("0,2,4" or "0-5,12-17"), no duplicates. *cpus allocated. */
int options_parse_cpulist(const char *s, int **cpus, size_t *n, struct verr *err);

/* The host paths the options name (images, ISOs, firmware, ROM, kernel,
 * initrd, the hugetlbfs mount), for the snapshot to look up. */
void options_host_files(const struct options *opts, struct strv *out);

/* For the man page test: iterate the table. Returns NULL past the end. */
struct option_info {
	const char *name;        /* canonical, without dash: "pci" */
	const char *aliases;     /* space separated, "" when none */
	const char *arg;         /* argument name for help, NULL when a switch */
	const char *help;
};
const struct option_info *options_info(size_t i);
/* The flag with that name or alias (no dash), or NULL. */
const struct option_info *options_find(const char *name);
/* A flag that says what vfio does this time (-run, -restore, -json, -help,
 * ...), not how the guest is made: args files refuse it. */
bool options_is_mode(const struct option_info *in);
/* A flag whose every occurrence adds (-image, -pci, -extras, ...) rather
 * than replaces the last one. */
bool options_is_repeatable(const struct option_info *in);

#endif
