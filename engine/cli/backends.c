/* Backend registration for the CLI: the CPU backend always, the CUDA module when asked for and
 * present (DESIGN.md §3: engine/core knows no backend; main registers them). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "grove/backend.h"
#include "grove/kernels_cpu.h"
#include "grove/kernels_cuda.h"

void gv_cli_register_backends(int want_cuda, char *cuda_note, size_t note_len) {
    if (cuda_note && note_len) cuda_note[0] = '\0';
    if (gv_backend_register(grove_backend_cpu()) != GV_OK) {
        /* The CPU backend is built in; failing validation is a bug worth shouting about. */
        fprintf(stderr, "grove: internal error: %s\n", gv_last_error());
    }
    if (!want_cuda) return;
    char path[4096];
    const gv_backend *cuda = NULL;
    gv_status s = gv_cuda_module_path(path, sizeof path);
    if (s == GV_OK) s = gv_backend_load_module(path, GROVE_CUDA_INIT_SYMBOL, &cuda);
    if (s == GV_OK) s = gv_backend_register(cuda);
    if (s != GV_OK && cuda_note) snprintf(cuda_note, note_len, "%s", gv_last_error());
    gv_clear_error();
}

/* `auto` fell back to the CPU: one line on stderr saying why (issue 9: a clear message). */
static void auto_note(const char *note) {
    fprintf(stderr, "grove: device auto: using cpu (cuda: %s)\n",
            note && note[0] ? note : "the CUDA module was not loaded");
}

gv_status gv_cli_find_backend(const char *kind, const struct gv_backend **out) {
    if (strcmp(kind, "cpu") != 0 && strcmp(kind, "cuda") != 0 && strcmp(kind, "auto") != 0)
        return GV_ERROR(GV_ERR_INVALID, "--device %s: expected cpu, cuda or auto", kind);
    char note[512] = "";
    if (gv_backend_count() == 0) gv_cli_register_backends(strcmp(kind, "cpu") != 0, note, sizeof note);
    if (strcmp(kind, "auto") == 0) {
        kind = gv_backend_find("cuda", out) == GV_OK ? "cuda" : "cpu";
        if (!strcmp(kind, "cpu")) auto_note(note);
    }
    gv_clear_error();
    gv_status s = gv_backend_find(kind, out);
    if (s != GV_OK && *note) s = GV_ERROR(GV_ERR_UNSUPPORTED, "--device %s: %s", kind, note);
    return s;
}

gv_status gv_cli_open_device(const char *device, int threads, gv_ctx **out) {
    const char *kind = device ? device : "cpu";
    if (strcmp(kind, "cpu") && strcmp(kind, "cuda") && strcmp(kind, "auto"))
        return GV_ERROR(GV_ERR_INVALID, "--device %s: expected cpu, cuda or auto", kind);
    char note[512] = "";
    if (gv_backend_count() == 0) gv_cli_register_backends(strcmp(kind, "cpu") != 0, note,
                                                          sizeof note);
    const gv_backend *be = NULL;
    if (strcmp(kind, "cpu") && gv_backend_find("cuda", &be) != GV_OK) {
        be = NULL;
        if (!strcmp(kind, "cuda"))
            return GV_ERROR(GV_ERR_UNSUPPORTED, "--device cuda: %s",
                            note[0] ? note : "the CUDA module is not available");
        auto_note(note);
        gv_clear_error();
    }
    if (!be) GV_TRY(gv_backend_find("cpu", &be));
    return be->ctx_create(&(gv_ctx_options){.threads = threads, .use_fast = 1}, out);
}
