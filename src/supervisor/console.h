/* The guest's serial console on the supervisor's terminal. QEMU serves the
 * console on a socket in the runtime directory (console.sock) and logs it to
 * console.log itself; when vfio runs on a terminal, the supervisor relays
 * between that socket and the terminal (put in raw mode, ISIG kept so ^C
 * stays the supervisor's SIGINT: power down). QEMU never holds the
 * terminal, so it neither dies of its hangup nor of a supervisor that dies,
 * and a supervisor that adopts the guest relays it again. Non-blocking both
 * ways: a stalled terminal never stalls the loop (what it cannot take waits
 * in a buffer, the socket is not read meanwhile, and QEMU's serial port
 * waits in turn). */
#ifndef VFIO_CONSOLE_H
#define VFIO_CONSOLE_H

#include <event2/event.h>

#include "verr.h"

struct console;

/* Connect to dir/console.sock and relay it to the terminal in_fd (stdin)
 * and to out_fd (stdout: the terminal too, usually). Returns NULL with err
 * set when QEMU's console cannot
 * be reached or the terminal cannot be set up (the guest runs on; its
 * console is still logged). */
struct console *console_relay_open(struct event_base *base, const char *dir, int in_fd, int out_fd,
    struct verr *err);
/* Stop relaying and put the terminal back as it was. NULL is fine. */
void console_relay_close(struct console *c);

#endif
