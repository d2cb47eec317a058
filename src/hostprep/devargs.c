/* device_add and netdev_add arguments: see devargs.h. */
#include "devargs.h"

#include "log.h"

static json_t *
devargs_checked(json_t *o)
{
	if (o == NULL)
		fatalx("cannot build device arguments");
	return o;
}

json_t *
devargs_vfio_pci(const char *address, const char *id, const char *bus)
{
	return devargs_checked(json_pack("{s:s, s:s, s:s, s:s}", "driver", "vfio-pci", "host", address, "id", id,
	    "bus", bus));
}

json_t *
devargs_usb_host(unsigned bus, unsigned devnum, const char *id)
{
	return devargs_checked(json_pack("{s:s, s:i, s:i, s:s, s:s}", "driver", "usb-host", "hostbus", (int)bus,
	    "hostaddr", (int)devnum, "id", id, "bus", "xhci.0"));
}

json_t *
devargs_xhci(const char *bus)
{
	return devargs_checked(json_pack("{s:s, s:s, s:s}", "driver", "qemu-xhci", "id", "xhci", "bus", bus));
}

json_t *
devargs_nic(const char *driver, const char *id, const char *netdev, const char *mac, const char *bus)
{
	json_t *o = devargs_checked(json_pack("{s:s, s:s, s:s}", "driver", driver, "id", id, "netdev", netdev));
	if (mac != NULL)
		json_object_set_new(o, "mac", json_string(mac));
	json_object_set_new(o, "bus", json_string(bus));
	return o;
}

json_t *
devargs_netdev_user(const char *id, json_t *hostfwd)
{
	json_t *o = devargs_checked(json_pack("{s:s, s:s}", "type", "user", "id", id));
	if (hostfwd != NULL && json_array_size(hostfwd) > 0)
		json_object_set(o, "hostfwd", hostfwd);
	return o;
}

json_t *
devargs_netdev_tap(const char *id, const char *fdname, const char *vhostfdname)
{
	json_t *o = devargs_checked(json_pack("{s:s, s:s, s:s}", "type", "tap", "id", id, "fd", fdname));
	if (vhostfdname != NULL) {
		json_object_set_new(o, "vhost", json_true());
		json_object_set_new(o, "vhostfd", json_string(vhostfdname));
	}
	return o;
}
