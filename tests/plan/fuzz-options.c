/* Fuzzing the command line and the plan: the input is argv words separated
 * by NUL bytes. Whatever they are, options_parse() either refuses with a
 * message or yields options from which plan_build() makes a plan whose argv
 * has no empty word, on a small fixed host. Built as a libFuzzer target with
 * -Dfuzz=true (clang); otherwise a replayer of the corpus files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "plan.h"
#include "snapshot.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_host(struct host_snapshot *s)
{
	static struct cpu_thread cpus[4] = {
		{ .cpu = 0, .core_id = 0, .sibling = 2, .online = true },
		{ .cpu = 1, .core_id = 1, .sibling = 3, .online = true },
		{ .cpu = 2, .core_id = 0, .sibling = 0, .online = true },
		{ .cpu = 3, .core_id = 1, .sibling = 1, .online = true },
	};
	static struct pci_device pci[3] = {
		{ .address = "0000:01:00.0", .slot = "0000:01:00", .function = 0, .class_code = 0x030000,
		  .line = "0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [10de:2204]",
		  .driver = "nvidia", .iommu_group = 1, .boot_vga = true, .is_display = true },
		{ .address = "0000:01:00.1", .slot = "0000:01:00", .function = 1, .class_code = 0x040300,
		  .line = "0000:01:00.1 Audio device [0403]: NVIDIA Corporation GA102 Audio [10de:1aef]",
		  .driver = "snd_hda_intel", .iommu_group = 1 },
		{ .address = "0000:00:14.0", .slot = "0000:00:14", .function = 0, .class_code = 0x0c0330,
		  .line = "0000:00:14.0 USB controller [0c03]: Intel Corporation xHCI [8086:a36d]",
		  .driver = "xhci_hcd", .iommu_group = 4 },
	};
	static struct usb_device usb[2] = {
		{ .sysname = "usb1", .bus = 1, .devnum = 1, .vendor = 0x1d6b, .product = 2,
		  .line = "Bus 001 Device 001: ID 1d6b:0002 Linux Foundation 2.0 root hub", .is_root_hub = true,
		  .is_hub = true, .controller = "0000:00:14.0" },
		{ .sysname = "1-4", .bus = 1, .devnum = 4, .vendor = 0x046d, .product = 0xc52b,
		  .line = "Bus 001 Device 004: ID 046d:c52b Logitech, Inc. Unifying Receiver",
		  .controller = "0000:00:14.0" },
	};
	static struct net_iface ifaces[2] = {
		{ .name = "eth0", .mac = "a8:5e:45:12:34:56" },
		{ .name = "br0", .mac = "a8:5e:45:aa:bb:cc", .is_bridge = true },
	};
	static struct firmware_file fw[1] = { { .code = "/usr/share/OVMF/OVMF_CODE_4M.fd",
		.vars = "/usr/share/OVMF/OVMF_VARS_4M.fd" } };
	memset(s, 0, sizeof(*s));
	s->cpus = cpus;
	s->n_cpus = 4;
	s->pci = pci;
	s->n_pci = 3;
	s->usb = usb;
	s->n_usb = 2;
	s->ifaces = ifaces;
	s->n_ifaces = 2;
	s->firmware = fw;
	s->n_firmware = 1;
	s->mem_total_kib = 2 * 1024 * 1024;
	s->iommu_enabled = s->kvm = s->kvm_usable = s->vfio_pci_loaded = s->vfio_pci_available = true;
	s->sudo_uid = s->sudo_gid = -1;
	s->default_hugepage_kib = 2048;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xmalloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *argv[64] = { "vfio" };
	int argc = 1;
	for (size_t i = 0; i < size && argc < 63;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	struct options o;
	struct verr err = { 0 };
	if (options_parse(&o, argc, argv, &err) == 0) {
		struct host_snapshot snap;
		fuzz_host(&snap);
		o.qemu = xstrdup("qemu-system-x86_64");
		struct plan p;
		plan_build(&p, &o, &snap);
		for (size_t i = 0; i < p.argv.n; i++) {
			if (p.argv.v[i][0] == '\0')
				abort();        /* an empty word in QEMU's argv */
		}
		plan_free(&p);
	} else if (err.msg[0] == '\0') {
		abort();                /* a refusal without a message */
	}
	options_free(&o);
	free(buf);
	return 0;
}

#ifndef VFIO_LIBFUZZER
int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		char data[65536];
		size_t n = fread(data, 1, sizeof(data), f);
		fclose(f);
		LLVMFuzzerTestOneInput((const uint8_t *)data, n);
		printf("ok %s\n", argv[i]);
	}
	return 0;
}
#endif
