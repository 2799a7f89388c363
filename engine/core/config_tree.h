/* Private to the config binder (config*.c): the document tree the layers are merged into.
 *
 * libfyaml parses each layer (file, preset, --set value); its tree is converted into this small
 * tree whose every node remembers its line and its source (file or --set, and the origin kind),
 * which lets layers from several files merge while errors still name the right file:line and
 * `grove config` the right origin. Mappings keep document order; sequences and scalars replace
 * wholesale on merge. Not a public API. */
#ifndef GROVE_CONFIG_TREE_H
#define GROVE_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "grove/config.h"

/* Where a node came from. Lives as long as the load. */
typedef struct gv_csrc {
    gv_cfg_origin kind;
    const char *file;       /* file named in messages; NULL for --set and schema defaults    */
    const char *base_dir;   /* absolute directory relative paths resolve against; NULL = cwd */
    const char *set_key;    /* --set: the key as typed                                       */
    const char *key_prefix; /* prepended to dotted keys in messages ("algorithm.overrides.") */
    const char *preset;     /* preset name, for ownership messages                           */
} gv_csrc;

typedef enum gv_cnode_kind { GV_CN_SCALAR, GV_CN_MAP, GV_CN_SEQ } gv_cnode_kind;

typedef struct gv_cnode {
    gv_cnode_kind kind;
    char *text;             /* SCALAR: the value text                                         */
    bool plain;             /* SCALAR: plain style (not quoted / block)                       */
    int line;               /* 1-based; for collections the line of the key that holds them   */
    const gv_csrc *src;
    int n, cap;             /* MAP / SEQ children                                             */
    char **keys;            /* MAP: keys                                                      */
    int *key_lines;         /* MAP: line of each key                                          */
    struct gv_cnode **vals;
} gv_cnode;

/* A growable string; `oom` latches allocation failure. */
typedef struct gv_sb {
    char *p;
    size_t n, cap;
    bool oom;
} gv_sb;
void gv_sb_put(gv_sb *sb, const char *s, size_t len);
void gv_sb_puts(gv_sb *sb, const char *s);
void gv_sb_printf(gv_sb *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Hand the buffer over ("" when empty); NULL on OOM (the buffer is then freed). */
char *gv_sb_take(gv_sb *sb);

gv_cnode *gv_cnode_new(gv_cnode_kind kind, const gv_csrc *src, int line);
gv_cnode *gv_cnode_scalar(const char *text, bool plain, const gv_csrc *src, int line);
void gv_cnode_free(gv_cnode *n);
gv_cnode *gv_cnode_copy(const gv_cnode *n); /* deep copy; NULL on OOM */
bool gv_cnode_is_null(const gv_cnode *n);
int gv_cnode_find(const gv_cnode *map, const char *key);
/* Set map[key] = val (replacing, keeping the position) or append; takes `val`. */
gv_status gv_cnode_put(gv_cnode *map, const char *key, int key_line, gv_cnode *val);
gv_status gv_cnode_push(gv_cnode *seq, gv_cnode *val);
/* Detach map[key] (NULL when absent). */
gv_cnode *gv_cnode_take(gv_cnode *map, const char *key);

/* Parse YAML text with libfyaml into a tree (NULL root for an empty document). Errors:
   "<label>:<line>:<col>: <libfyaml message>". `text` need not be NUL-terminated. */
gv_status gv_cnode_parse(const char *text, size_t len, const char *label, const gv_csrc *src,
                         gv_cnode **out);
/* Read and parse a file; it must hold a mapping. Missing/unreadable/empty give the one-line
   messages of config.h. */
gv_status gv_cnode_parse_file(const char *path, const char *text, const gv_csrc *src,
                              gv_cnode **out);
/* Apply one "key.path=value" edit to the root mapping, creating missing mappings. */
gv_status gv_cnode_apply_set(gv_cnode *root, const char *assignment, gv_csrc *src);
/* Merge `top` (consumed) into the mapping `dst`: mappings merge key by key, everything else
   replaces; with `keep_set`, nodes that came from --set are not replaced. */
void gv_cnode_merge(gv_cnode *dst, gv_cnode *top, bool keep_set);
/* Node at a dotted path of mappings, or NULL. */
gv_cnode *gv_cnode_at(gv_cnode *root, const char *dotted);

/* dst = prefix "." key (just key when prefix is ""); truncates at cap. */
void gv_key_join(char *dst, size_t cap, const char *prefix, const char *key);
/* dst = prefix "." index. */
void gv_key_index(char *dst, size_t cap, const char *prefix, int index);

/* Map-type renderings (config.h gv_cfg_map); NULL on OOM. */
char *gv_cnode_flatten(const gv_cnode *n);
char *gv_cnode_flow(const gv_cnode *n);
/* Append `s` as a YAML scalar: plain when that reads back as the same string, else quoted. */
void gv_yaml_scalar(gv_sb *sb, const char *s);

/* Bind a merged tree (NULL = all defaults) into `out` (zeroed by the caller), recording origins
   in `res` (may be NULL). `file` names the input when a required key is missing. */
gv_status gv_config_bind(const gv_schema *schema, const gv_cnode *root, const char *file,
                         void *out, gv_config_result *res);

#endif
