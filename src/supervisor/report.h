/* Output of the dry run and of the informational flags: the rundown (coloured
 * on a TTY), the QEMU command line as one shell-quoted line, the QMP commands
 * and host changes; or one JSON object with -json. */
#ifndef VFIO_REPORT_H
#define VFIO_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "options.h"
#include "plan.h"
#include "snapshot.h"

/* Colour when out is a TTY, NO_COLOR is unset or empty, and no -nocolor. */
bool report_want_color(const struct options *opts, FILE *out);

/* The dry run: rundown, warnings and errors (errors to err), the command line,
 * QMP commands and host changes. -quiet prints only the errors. */
void report_plan(FILE *out, FILE *err, const struct options *opts, const struct plan *plan, bool color);
/* -json: one object with argv, qmp, host_changes, devices, warnings, errors. */
void report_json(FILE *out, const struct plan *plan);
/* The QEMU argv as one line a POSIX shell reads back into the same words. */
char *report_cmdline(const struct strv *argv);

void report_iommugroups(FILE *out, const struct host_snapshot *snap, bool color);
void report_cputhreads(FILE *out, const struct host_snapshot *snap, bool color);
void report_colortest(FILE *out);

#endif
