/* The supervised run (-run): validate, prepare the host (journaled), start
 * QEMU, attach over QMP, pin vCPUs, cont, serve the loop until QEMU is gone,
 * then put the host back. */
#ifndef VFIO_SESSION_H
#define VFIO_SESSION_H

#include "options.h"
#include "plan.h"

/* Exit statuses of session_run(). */
#define SESSION_EXIT_OK        0   /* the guest ran, QEMU exited cleanly, host fully restored */
#define SESSION_EXIT_FAILED    1   /* the run failed (start, attach, crash); host fully restored */
#define SESSION_EXIT_REFUSED   2   /* refused before changing anything (plan errors, name in use) */
#define SESSION_EXIT_UNRESTORED 3  /* some host change could not be undone: listed, with how to fix */

/* Runs exactly the plan: its host changes in order, QEMU with its argv, its
 * QMP commands, then the viewers; nothing is added or re-derived here. */
int session_run(const struct options *opts, const struct plan *plan);

#endif
