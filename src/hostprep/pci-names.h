/* The two PCI names lspci -Dnn prints (class, vendor+device), from pci.ids
 * without loading all of it; see pci-names.c for why. */
#ifndef VFIO_PCI_NAMES_H
#define VFIO_PCI_NAMES_H

#include <stdbool.h>
#include <stddef.h>

struct pci_access;
struct pci_names;

/* Indexes the name file acc would read, with acc's lookup settings. Never
 * fails: a file it cannot index exactly is left to libpci's own lookup. */
struct pci_names *pci_names_open(struct pci_access *acc);
void pci_names_close(struct pci_names *names);

/* What pci_lookup_name(acc, buf, size, PCI_LOOKUP_CLASS, cls16) returns
 * with acc->numeric_ids = 2, e.g. "VGA compatible controller [0300]". */
const char *pci_names_class(struct pci_names *names, char *buf, size_t size, unsigned cls16);

/* What pci_lookup_name(acc, buf, size, PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
 * vendor, device) returns with acc->numeric_ids = 2. */
const char *pci_names_device(struct pci_names *names, char *buf, size_t size, unsigned vendor, unsigned device);

/* False when the answers come from libpci's lookup (a compressed or
 * irregular file, a name cache, other lookup flags): for tests. */
bool pci_names_indexed(const struct pci_names *names);

#endif
