/* The -pinvcpus suggestion -cputhreads prints: every online CPU except the
 * first core and its SMT siblings, which stay with the host, listed core by
 * core with siblings together ("1,9,2,10,...") so consecutive vCPUs share a
 * core as the guest topology (threads=2) expects. */
#ifndef VFIO_CPU_SUGGEST_H
#define VFIO_CPU_SUGGEST_H

#include "snapshot.h"
#include "util.h"
#include "verr.h"

/* Appends the list to out. -ENODEV when the host has a single core (nothing
 * to give the guest without taking the host's only core). */
int cpu_suggest_pinvcpus(const struct host_snapshot *snap, struct strbuf *out, struct verr *err);

#endif
