/* The schema-driven config binder: YAML (libfyaml) -> typed C structs, with layering and origins.
 *
 * A schema is one table of gv_field per C struct (key, type, offsetof, default as YAML text, range,
 * enum names, nested schema, flags, help). The same table drives parsing, validation, `--set`,
 * the resolved dump (`grove config`, the copy in checkpoints) and the config hash. STYLE.md 13.
 *
 * Loading builds one document from layers, lowest first, then binds it (DESIGN.md §3 "Config"):
 *   default   the schema's defaults (every field not given by a layer)
 *   preset    <preset_dir>/<name>.yaml, name read from `preset_key` (ALGORITHMS.md §9); it may set
 *             only fields flagged GV_CFG_OWNED
 *   config    the task file; it may NOT set GV_CFG_OWNED fields at top level (load error naming
 *             the key and the preset)
 *   override  the task file's `overrides_key` mapping, merged at the root; owned fields only
 *   --set     "key.path=value" edits, values parsed as YAML; they beat every other layer
 * Every layer is validated by the same binder, so a bad `--set` gets the same checks as the file.
 * Errors are one line, naming "file:line: dotted.key: cause" (or "--set key: cause"), recorded with
 * GV_ERROR(GV_ERR_CONFIG, ...) (GV_ERR_IO for unreadable files). Nothing is printed.
 *
 * Paths (GV_CFG_PATH) are resolved when bound: relative to the directory of the file the value came
 * from, or to the current directory for `--set` values; the stored string is absolute and lexically
 * normalised (a/./b/../c -> a/c). Existence is not checked here. An empty path stays "".
 *
 * Deliberately not here: the task schema itself (engine/train/run_config.h), cross-field checks
 * beyond a schema's optional `validate` hook, and anything that prints. */
#ifndef GROVE_CONFIG_H
#define GROVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_cfg_type {
    GV_CFG_BOOL,   /* bool;     YAML true / false only                                         */
    GV_CFG_INT,    /* int;      decimal, "12abc" and "1.5" rejected                            */
    GV_CFG_I64,    /* int64_t;  as GV_CFG_INT                                                  */
    GV_CFG_FLOAT,  /* double;   finite                                                         */
    GV_CFG_STRING, /* char *;   malloc'd, never NULL after a load ("" when unset)              */
    GV_CFG_PATH,   /* char *;   as STRING, resolved (see above)                                */
    GV_CFG_ENUM,   /* int;      index into `names`                                             */
    GV_CFG_STRUCT, /* nested struct described by `sub`                                         */
    GV_CFG_LIST,   /* list of `sub` structs: `sub->size`-byte items (void * at `offset`, calloc'd)
                      and an int count at `count_offset`                                       */
    GV_CFG_MAP,    /* gv_cfg_map: an opaque subtree (a reward plugin's `config:`)              */
    GV_CFG_NUMBERS,/* list of finite numbers: double * at `offset` (calloc'd) and an int count at
                      `count_offset`; each item checked against [min, max]; dumped as [a, b]  */
    GV_CFG_TYPE_COUNT
} gv_cfg_type;

/* An opaque mapping kept as text. {scale: 2.0, labels: [cat, dog]} gives
 *   flat = "scale=2.0\nlabels.0=cat\nlabels.1=dog\n"   (newlines inside values written as "\n")
 *   yaml = "{scale: 2.0, labels: [cat, dog]}"           (one-line flow YAML, used by the dump)
 * Both malloc'd, never NULL after a load ("" and "{}" when empty). */
typedef struct gv_cfg_map {
    char *flat;
    char *yaml;
} gv_cfg_map;

/* Field flags. */
enum {
    GV_CFG_OWNED = 1u << 0,    /* an algorithm key owned by the preset (ALGORITHMS.md §9); on a
                                  STRUCT field it covers the whole subtree                    */
    GV_CFG_REQUIRED = 1u << 1, /* must be given by some layer (LIST: and non-empty)           */
};

typedef struct gv_schema gv_schema;

typedef struct gv_field {
    const char *key;
    gv_cfg_type type;
    size_t offset;            /* offsetof(struct, member)                                      */
    const char *def;          /* default as YAML text ("3e-4", "true", "[{builtin: x}]"); NULL =
                                 zero / "" / empty list; STRUCT defaults come from `sub`        */
    double min, max;          /* INT/I64/FLOAT: inclusive range, checked when min < max;
                                 +-INFINITY for a one-sided range                              */
    const char *const *names; /* ENUM: NULL-terminated names, index = stored value             */
    const gv_schema *sub;     /* STRUCT / LIST element                                         */
    size_t count_offset;      /* LIST / NUMBERS: offsetof the int item count                   */
    unsigned flags;           /* GV_CFG_OWNED | GV_CFG_REQUIRED                                */
    const char *help;         /* one line, for `--help` style listings                         */
} gv_field;

struct gv_schema {
    const char *name;         /* C struct name, for internal errors                            */
    size_t size;              /* sizeof the struct (LIST items are this size)                  */
    const gv_field *fields;
    int nfields;
    /* Optional cross-field check of one bound struct: return NULL when fine, else a static
       one-line reason; the binder reports it as "<where>: <dotted.key>: <reason>". */
    const char *(*validate)(const void *obj);
};

/* Where a resolved value came from. */
typedef enum gv_cfg_origin {
    GV_ORIGIN_DEFAULT = 0,
    GV_ORIGIN_PRESET,
    GV_ORIGIN_CONFIG,
    GV_ORIGIN_OVERRIDE,
    GV_ORIGIN_SET,
    GV_ORIGIN_COUNT
} gv_cfg_origin;

/* "default", "preset", "config", "override", "--set". */
const char *gv_cfg_origin_name(gv_cfg_origin o);

typedef struct gv_config_request {
    const gv_schema *schema;
    const char *path;          /* the config file; NULL: defaults (+ preset, --set) only       */
    const char *text;          /* optional: parse this YAML instead of reading `path` (which then
                                  only names it in messages and anchors relative paths)        */
    const char *const *sets;   /* "key.path=value" (--set), applied in order                   */
    int nsets;
    /* Preset layering (all NULL: none). */
    const char *preset_key;    /* dotted key naming the preset, e.g. "algorithm.preset"; its
                                  value is a name looked up as <preset_dir>/<name>.yaml, or a
                                  path (contains '/' or ends in .yaml) relative to the file     */
    const char *overrides_key; /* dotted key of the overrides mapping, "algorithm.overrides"  */
    const char *preset_dir;    /* directory of the preset files                                */
    bool resolved;             /* the input is a resolved dump (gv_config_dump): no preset
                                  layering, no ownership checks, every value is "config"      */
} gv_config_request;

/* What a load reports besides the struct: the preset used and the origin of every value. */
typedef struct gv_config_result {
    char *preset;              /* preset name used (NULL: none)                                */
    char *preset_path;         /* the preset file read (NULL: none)                            */
    int n, cap;
    char **keys;               /* dotted keys of leaves, lists and maps: "rewards.0.weight"    */
    gv_cfg_origin *origins;
} gv_config_result;

/* Load, layer, validate and bind into `out` (schema->size bytes, overwritten). On failure `out`
 * is left zeroed (nothing to free) and the one-line cause is in gv_last_error(). `res` may be NULL. */
gv_status gv_config_load(const gv_config_request *req, void *out, gv_config_result *res);

/* Origin recorded for a dotted key (GV_ORIGIN_DEFAULT when unknown). */
gv_cfg_origin gv_config_origin_of(const gv_config_result *res, const char *key);

/* Free what gv_config_load put in `res` and zero it. */
void gv_config_result_free(gv_config_result *res);

/* Free every string, list and map a load allocated in `cfg`, and zero it. */
void gv_config_free(const gv_schema *schema, void *cfg);

/* The whole struct as block YAML, every field in schema order, defaults included. With `res`
 * each value carries its origin as a trailing comment ("lr: 0.0003  # config"); without, the text
 * is canonical (what checkpoints store and gv_config_hash hashes) and reloads (req.resolved) to an
 * identical struct. `*out` is malloc'd. */
gv_status gv_config_dump(const gv_schema *schema, const void *cfg, const gv_config_result *res,
                         char **out);

/* 64-bit FNV-1a of the canonical dump: equal configs hash equal (resume refuses on a change). */
gv_status gv_config_hash(const gv_schema *schema, const void *cfg, uint64_t *hash);

/* The field of `schema` called `key` (one component), or NULL. */
const gv_field *gv_schema_field(const gv_schema *schema, const char *key);

#ifdef __cplusplus
}
#endif
#endif
