/* Finding, and if need be starting, the invoking user's sound server. */
#include "audio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "companion.h"
#include "hostroot.h"
#include "util.h"
#include "vfioenv.h"

static bool
is_socket(const char *fmt_path)
{
	struct stat st;
	return stat(fmt_path, &st) == 0 && S_ISSOCK(st.st_mode);
}

void
audio_probe(int uid, bool *pipewire, bool *pulse)
{
	char *pw = host_pathdup("/run/user/%d/pipewire-0", uid);
	char *pa = host_pathdup("/run/user/%d/pulse/native", uid);
	*pipewire = is_socket(pw);
	*pulse = is_socket(pa);
	free(pw);
	free(pa);
}

void
audio_pick(int uid, bool pipewire, bool pulse, struct audio_choice *out)
{
	memset(out, 0, sizeof(*out));
	/* pulse/native is served by pipewire-pulse when PipeWire runs, by
	 * PulseAudio otherwise: either way it is the socket QEMU talks to. */
	out->backend = pipewire || !pulse ? "pipewire" : "pulseaudio";
	out->start = !pulse;
	snprintf(out->server, sizeof(out->server), "/run/user/%d/pulse/native", uid);
	snprintf(out->audiodev, sizeof(out->audiodev), "pa,id=audio0,server=unix:%s%s", hostroot_get(), out->server);
}

json_t *
audio_change(int uid, int gid, const char *rundir)
{
	char *target = xasprintf("/run/user/%d/pulse/native", uid), *log = xasprintf("%s/audio.log", rundir);
	json_t *c = json_pack("{s:s, s:s, s:{s:i, s:i, s:s}}", "action", "user-audio-start", "target", target, "args",
	    "uid", uid, "gid", gid, "log", log);
	free(target);
	free(log);
	return c;
}

static int
audio_prepare(const json_t *change, json_t **saved, struct verr *err)
{
	json_int_t uid = change_arg_int(change, "uid", -1), gid = change_arg_int(change, "gid", -1);
	if (uid < 0 || gid < 0)
		return verr_set(err, -EINVAL, "-hostaudio: args.uid and args.gid (the invoking user) are required");
	bool pw, pa;
	audio_probe((int)uid, &pw, &pa);
	*saved = json_pack("{s:b, s:b}", "pipewire", pw, "pulse", pa);
	return 0;
}

static int
audio_apply(const json_t *change, const json_t *saved, struct verr *err)
{
	json_int_t uid = change_arg_int(change, "uid", -1), gid = change_arg_int(change, "gid", -1);
	if (uid < 0 || gid < 0)
		return verr_set(err, -EINVAL, "-hostaudio: args.uid and args.gid (the invoking user) are required");
	bool pw, pa;
	audio_probe((int)uid, &pw, &pa);
	if (pa)
		return 0;
	const char *bin = vfioenv_get("VFIO_SYSTEMCTL");
	char *argv[] = { (char *)(bin && *bin ? bin : "systemctl"), "--user", "start", "pipewire", "pipewire-pulse", NULL };
	/* systemctl --user finds the user's manager through these. */
	char *rt = host_pathdup("/run/user/%d", (int)uid);
	char *e1 = xasprintf("XDG_RUNTIME_DIR=%s", rt);
	char *e2 = xasprintf("DBUS_SESSION_BUS_ADDRESS=unix:path=%s/bus", rt);
	char *env[] = { e1, e2, NULL };
	const char *log = change_arg_str(change, "log");
	char *hlog = *log == '/' ? host_pathdup("%s", log) : NULL;
	struct companion_spec spec = {
		.name = "-hostaudio", .argv = argv, .env = env, .uid = (uid_t)uid, .gid = (gid_t)gid, .log = hlog,
	};
	int status = 0;
	int r = companion_run(&spec, AUDIO_START_MS, &status, err);
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		r = verr_set(err, -EIO,
		    "-hostaudio: `%s --user start pipewire pipewire-pulse` as uid %lld failed (%s %d)%s%s; start the user's "
		    "sound server by hand or drop -hostaudio",
		    argv[0], (long long)uid, WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), hlog ? ", see " : "", hlog ? hlog : "");
	if (r == 0) {
		char *sock = host_pathdup("/run/user/%d/pulse/native", (int)uid);
		char *dir = host_pathdup("/run/user/%d/pulse", (int)uid);
		/* pipewire-pulse makes its directory first; wait on the parent
		 * when even that is not there yet. */
		struct stat st;
		if (stat(dir, &st) < 0)
			r = companion_wait_path(&spec, &(struct companion_proc){ 0, 0 }, dir, AUDIO_START_MS, err);
		if (r == 0)
			r = companion_wait_path(&spec, &(struct companion_proc){ 0, 0 }, sock, AUDIO_START_MS, err);
		free(sock);
		free(dir);
	}
	free(rt);
	free(e1);
	free(e2);
	free(hlog);
	return r;
}

static int
audio_undo(const json_t *change, const json_t *saved, struct verr *err)
{
	return 0;
}

const struct change_ops user_audio_start_ops = {
	.action = "user-audio-start",
	.prepare = audio_prepare,
	.apply = audio_apply,
	.undo = audio_undo,
};
