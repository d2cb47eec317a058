/* -hostaudio: the guest's sound goes to the invoking user's sound server.
 * PipeWire is preferred (through its PulseAudio socket, pipewire-pulse:
 * QEMU 7.2 has no pipewire audiodev, that came in 8.1), PulseAudio itself
 * otherwise; when neither runs, `systemctl --user start pipewire
 * pipewire-pulse` is run as that user first, as the original did
 * ($VFIO_SYSTEMCTL replaces systemctl).
 *
 *   {"action": "user-audio-start", "target": "/run/user/1000/pulse/native",
 *    "args": {"uid": 1000, "gid": 1000, "log": "/run/vfio/NAME/audio.log"}}
 * Undo leaves the server running: it is the user's session service, which
 * they had asked for by logging in. */
#ifndef VFIO_AUDIO_H
#define VFIO_AUDIO_H

#include <stdbool.h>

#include "change.h"

struct audio_choice {
	bool start;              /* the run starts the server (user-audio-start) */
	const char *backend;     /* "pipewire" or "pulseaudio": who serves the socket */
	char server[128];        /* "/run/user/1000/pulse/native" (host path) */
	char audiodev[256];      /* QEMU -audiodev value: "pa,id=audio0,server=unix:..." */
};

/* Pure, for the plan: uid is the invoking user; pipewire/pulse say whether
 * /run/user/UID/pipewire-0 and /run/user/UID/pulse/native are sockets now
 * (audio_probe() reads that; the snapshot should carry both). The audiodev
 * server path is joined to the host root as QEMU sees the real files. */
void audio_pick(int uid, bool pipewire, bool pulse, struct audio_choice *out);
/* Read the two sockets' presence under the host root. */
void audio_probe(int uid, bool *pipewire, bool *pulse);

/* The user-audio-start change (when audio_pick() said start) for the user,
 * logging systemctl's output to rundir/audio.log. */
json_t *audio_change(int uid, int gid, const char *rundir);

/* The bounded wait for the server's socket after systemctl returns. */
#define AUDIO_START_MS 10000

extern const struct change_ops user_audio_start_ops;

#endif
