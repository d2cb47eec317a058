/* swtpm's command line and state directory. */
#include "tpm.h"

#include <stdlib.h>

#include "companion.h"
#include "hostroot.h"
#include "util.h"
#include "vfioenv.h"

json_t *
tpm_change(const char *name, const char *rundir, const char *sock, uid_t uid, gid_t gid)
{
	const char *bin = vfioenv_get("VFIO_SWTPM");
	char *statedir = xasprintf("/var/lib/vfio/%s/tpm", name);
	/* swtpm sees the real filesystem: give it the paths under the host root. */
	char *hstate = host_pathdup("%s", statedir), *hsock = host_pathdup("%s", sock);
	struct strv argv = { 0 };
	strv_push(&argv, bin != NULL && *bin != '\0' ? bin : "swtpm");
	strv_push(&argv, "socket");
	strv_push(&argv, "--tpmstate");
	strv_pushf(&argv, "dir=%s", hstate);
	strv_push(&argv, "--ctrl");
	strv_pushf(&argv, "type=unixio,path=%s", hsock);
	strv_push(&argv, "--tpm2");
	json_t *c = companion_change("swtpm", &argv, uid, gid, rundir, NULL);
	json_t *args = json_object_get(c, "args");
	json_object_set_new(args, "statedir", json_string(statedir));
	json_object_set_new(args, "wait_path", json_string(sock));
	strv_free(&argv);
	free(statedir);
	free(hstate);
	free(hsock);
	return c;
}
