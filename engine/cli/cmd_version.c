/* grove version: version, git commit, and each backend with its one-line description. */
#include <stdio.h>

#include "cli.h"
#include "grove/backend.h"
#include "grove/dist.h"
#include "grove/version.h"

int gv_cmd_version(const gv_command *cmd, const gv_cli_args *args) {
    (void)cmd;
    (void)args;
    char cuda_note[512];
    gv_cli_register_backends(1, cuda_note, sizeof cuda_note);
    printf("grove %s (commit %s)\n", GROVE_VERSION, GROVE_GIT_COMMIT);
    printf("backends:\n");
    for (int i = 0; i < gv_backend_count(); ++i) {
        const gv_backend *be = gv_backend_at(i);
        char desc[512];
        if (be->describe(desc, sizeof desc) != GV_OK) snprintf(desc, sizeof desc, "%s", gv_last_error());
        printf("  %-5s %s\n", be->name, desc);
    }
    if (cuda_note[0]) printf("  %-5s not available: %s\n", "cuda", cuda_note);
    printf("data parallel: %s\n", gv_dist_compiled()
                                        ? "MPI (mpirun -np R grove pretrain ...)"
                                        : "off: built without MPI (install libopenmpi-dev, reconfigure)");
    return GV_EXIT_OK;
}
