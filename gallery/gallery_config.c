/* The gallery config schema (configs/gallery/<name>.yaml; gallery.h): one gv_schema table per struct,
 * bound by the config binder (grove/config.h), so an unknown key, a wrong type or an out-of-range
 * value is a one-line error naming file, line and key. Not here: what the values mean at run time
 * (gallery_render.c resolves models against the run directory). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "grove/gallery.h"

#define INF INFINITY
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define SCHEMA(S, fields, check) {#S, sizeof(S), fields, COUNT(fields), check}

static const char *const weights_names[] = {"ema", "raw", NULL};
static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};

static const char *check_model(const void *obj) {
    const gv_gallery_model_spec *m = obj;
    const int named = m->name && *m->name, pathed = m->path && *m->path;
    if (named == pathed) return "give exactly one of 'name' and 'path'";
    if (named && strcmp(m->name, "base") && strcmp(m->name, "middle") && strcmp(m->name, "best") &&
        strcmp(m->name, "last") && strncmp(m->name, "iter-", 5))
        return "name must be base, middle, best, last or iter-<k>";
    return NULL;
}

static const gv_field model_fields[] = {
    {.key = "name", .type = GV_CFG_STRING, .offset = offsetof(gv_gallery_model_spec, name),
     .help = "base | middle | best | last | iter-<k>: a checkpoint of the run"},
    {.key = "path", .type = GV_CFG_PATH, .offset = offsetof(gv_gallery_model_spec, path),
     .help = "any checkpoint file instead of a name"},
    {.key = "label", .type = GV_CFG_STRING, .offset = offsetof(gv_gallery_model_spec, label),
     .help = "column heading; empty = the name or the file name"},
};
static const gv_schema model_schema = SCHEMA(gv_gallery_model_spec, model_fields, check_model);

static const gv_field sampler_fields[] = {
    {.key = "steps", .type = GV_CFG_INT, .offset = offsetof(gv_gallery_sampler_section, steps),
     .def = "0", .min = 0, .max = 255, .help = "ODE steps; 0 = the run's sampler.steps"},
    {.key = "shift", .type = GV_CFG_FLOAT, .offset = offsetof(gv_gallery_sampler_section, shift),
     .def = "0", .min = 0, .max = 100, .help = "schedule shift; 0 = the run's sampler.shift"},
    {.key = "guidance", .type = GV_CFG_FLOAT,
     .offset = offsetof(gv_gallery_sampler_section, guidance), .def = "-1", .min = -1, .max = 100,
     .help = "CFG scale; -1 = the run's sampler.guidance"},
};
static const gv_schema sampler_schema = SCHEMA(gv_gallery_sampler_section, sampler_fields, NULL);

static const gv_field gallery_fields[] = {
    {.key = "title", .type = GV_CFG_STRING, .offset = offsetof(gv_gallery_config, title),
     .help = "page title; empty = '<run name> gallery'"},
    {.key = "run", .type = GV_CFG_PATH, .offset = offsetof(gv_gallery_config, run),
     .flags = GV_CFG_REQUIRED, .help = "run directory (config.yaml, metrics.jsonl, checkpoints)"},
    {.key = "out", .type = GV_CFG_PATH, .offset = offsetof(gv_gallery_config, out),
     .help = "output directory; empty = <run>/gallery"},
    {.key = "models", .type = GV_CFG_LIST, .offset = offsetof(gv_gallery_config, models),
     .count_offset = offsetof(gv_gallery_config, n_models), .sub = &model_schema,
     .def = "[{name: base}, {name: middle}, {name: best}, {name: last}]",
     .help = "columns; the first is the reference of the win rates"},
    {.key = "prompts", .type = GV_CFG_PATH, .offset = offsetof(gv_gallery_config, prompts),
     .help = "prompt file; empty = the run's data.eval_prompts"},
    {.key = "prompt_count", .type = GV_CFG_INT, .offset = offsetof(gv_gallery_config, prompt_count),
     .def = "10", .min = 0, .max = 10000, .help = "the first N prompts; 0 = all"},
    {.key = "seeds", .type = GV_CFG_INT, .offset = offsetof(gv_gallery_config, seeds), .def = "8",
     .min = 2, .max = 1024, .help = "seeds per prompt (>= 2: the diversity needs pairs)"},
    {.key = "first_seed", .type = GV_CFG_I64, .offset = offsetof(gv_gallery_config, first_seed),
     .def = "0", .min = 0, .max = 4294967295.0 - 1024, .help = "seeds are first_seed, first_seed + 1, ..."},
    {.key = "sampler", .type = GV_CFG_STRUCT, .offset = offsetof(gv_gallery_config, sampler),
     .sub = &sampler_schema, .help = "ODE sampler; defaults are the run's"},
    {.key = "weights", .type = GV_CFG_ENUM, .offset = offsetof(gv_gallery_config, weights),
     .names = weights_names, .def = "ema", .help = "ema (as evals) | raw: checkpoint weights used"},
    {.key = "gold", .type = GV_CFG_PATH, .offset = offsetof(gv_gallery_config, gold),
     .help = "classifier whose features measure diversity; empty = the dataset's gold judge"},
    {.key = "device", .type = GV_CFG_ENUM, .offset = offsetof(gv_gallery_config, device),
     .names = device_names, .def = "auto", .help = "auto | cpu | cuda"},
    {.key = "threads", .type = GV_CFG_INT, .offset = offsetof(gv_gallery_config, threads),
     .def = "0", .min = 0, .max = 4096, .help = "CPU threads; 0 = GROVE_THREADS or all cores"},
    {.key = "micro_batch", .type = GV_CFG_INT, .offset = offsetof(gv_gallery_config, micro_batch),
     .def = "32", .min = 1, .max = 4096, .help = "fixed rows per denoiser and classifier call"},
};
const gv_schema gv_gallery_config_schema = SCHEMA(gv_gallery_config, gallery_fields, NULL);

gv_status gv_gallery_config_load(const char *path, const char *const *sets, int nsets,
                                 gv_gallery_config *out, gv_config_result *res) {
    gv_config_request req = {.schema = &gv_gallery_config_schema, .path = path, .sets = sets,
                             .nsets = nsets};
    return gv_config_load(&req, out, res);
}

gv_status gv_gallery_config_dump(const gv_gallery_config *cfg, const gv_config_result *res,
                                 char **out) {
    return gv_config_dump(&gv_gallery_config_schema, cfg, res, out);
}

void gv_gallery_config_free(gv_gallery_config *cfg) {
    gv_config_free(&gv_gallery_config_schema, cfg);
}
