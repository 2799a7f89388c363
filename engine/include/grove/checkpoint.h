/* Checkpoints: HDF5 files readable with h5py (DESIGN.md §3, "Checkpoints").
 *
 * Layout:
 *   /params/<name>          float32 dataset with the parameter's shape (names contain dots)
 *   /optim/m/<name>         Adam first moment, same shapes
 *   /optim/v/<name>         Adam second moment
 *   /ema/<name>             EMA copy
 *   /state                  group; scalars (int64, double, string) are ATTRIBUTES of the group,
 *                           arrays (float32, int64) are DATASETS under it (h5py: f["state"].attrs
 *                           ["iteration"], f["state/psi"][:])
 *   /config                 group with one string attribute "yaml": the resolved config
 *   /meta                   group; same key/value rules as /state. The writer always stores
 *                           "grove_format" (int, GV_CKPT_FORMAT), "grove_version", "git_commit";
 *                           the caller adds "model_hash", "threads", ...
 *
 * Writing is atomic: gv_ckpt_writer_begin creates "<path>.tmp-<pid>" next to <path>; commit
 * closes it, fsync()s it, rename()s it over <path> and fsync()s the directory. The previous file at
 * <path> is not touched before the rename, so a crash at any point leaves either the old or the new
 * checkpoint. A temp file left by a killed writer is never read (readers open <path> only) and is
 * deleted by the next writer_begin for the same <path> once its pid no longer exists.
 *
 * Test-only hook: GROVE_TEST_CKPT_KILL_AFTER=<k> makes the writer raise(SIGKILL) right after its
 * k-th dataset write; GROVE_TEST_CKPT_KILL_AFTER=rename kills it in commit after the fsync, just
 * before the rename. Read once per writer_begin. Used by tests/cpu/test_checkpoint.c.
 *
 * This file only moves bytes between host buffers and the file; checkpoint_params.c moves a
 * gv_params table (through backend copies). It does not decide what a training run saves. */
#ifndef GROVE_CHECKPOINT_H
#define GROVE_CHECKPOINT_H

#include <stdint.h>

#include "grove/status.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_CKPT_FORMAT 1

/* Tensor groups. Any '/'-separated group path works; these are the ones the layout names. */
#define GV_CKPT_PARAMS "params"
#define GV_CKPT_OPTIM_M "optim/m"
#define GV_CKPT_OPTIM_V "optim/v"
#define GV_CKPT_EMA "ema"

/* Key/value sections. */
typedef enum gv_ckpt_section { GV_CKPT_STATE = 0, GV_CKPT_META, GV_CKPT_SECTION_COUNT } gv_ckpt_section;

typedef struct gv_ckpt_writer gv_ckpt_writer;
typedef struct gv_ckpt_reader gv_ckpt_reader;

/* ---- writer ---------------------------------------------------------------------------------- */

/* Create "<path>.tmp-<pid>" and write the /meta format, version and commit. Removes stale temp
   files of dead writers of the same <path>. */
gv_status gv_ckpt_writer_begin(const char *path, gv_ckpt_writer **out);
/* A float32 dataset /<group>/<name> of `shape` from a host buffer (row-major, numel floats).
   `name` must not contain '/'; writing a name twice is an error. */
gv_status gv_ckpt_write_tensor(gv_ckpt_writer *w, const char *group, const char *name,
                               const gv_shape *shape, const float *host);
gv_status gv_ckpt_put_i64(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, int64_t v);
gv_status gv_ckpt_put_f64(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, double v);
gv_status gv_ckpt_put_str(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, const char *v);
/* 1-D arrays (n >= 0 elements). */
gv_status gv_ckpt_put_f32s(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, const float *v,
                           int64_t n);
gv_status gv_ckpt_put_i64s(gv_ckpt_writer *w, gv_ckpt_section s, const char *key,
                           const int64_t *v, int64_t n);
/* The resolved YAML, stored as the string attribute /config "yaml". */
gv_status gv_ckpt_put_config(gv_ckpt_writer *w, const char *yaml);
/* Close, fsync, rename over <path>, fsync the directory; frees `w` in every case (on failure the
   temp file is removed and <path> is untouched). */
gv_status gv_ckpt_writer_commit(gv_ckpt_writer *w);
/* Discard: close and remove the temp file, free `w`. NULL is a no-op. */
void gv_ckpt_writer_abort(gv_ckpt_writer *w);
/* The temp file's path (for messages and tests). */
const char *gv_ckpt_writer_temp_path(const gv_ckpt_writer *w);

/* ---- reader ---------------------------------------------------------------------------------- */

/* Open read-only. A file that is not HDF5, is truncated, or lacks /meta "grove_format" fails with
   GV_ERR_FORMAT "<path>: not a grove checkpoint (<reason>)"; a missing file with GV_ERR_IO. */
gv_status gv_ckpt_open(const char *path, gv_ckpt_reader **out);
void gv_ckpt_close(gv_ckpt_reader *r);
const char *gv_ckpt_path(const gv_ckpt_reader *r);

/* 1 when /<group>/<name> is a dataset, else 0. */
int gv_ckpt_has_tensor(gv_ckpt_reader *r, const char *group, const char *name);
/* The stored shape; missing -> GV_ERR_FORMAT naming file and dataset. */
gv_status gv_ckpt_tensor_shape(gv_ckpt_reader *r, const char *group, const char *name,
                               gv_shape *out);
/* Read into `host` (numel(expected) floats). Missing dataset, shape mismatch ("expected (2, 3),
   found (3, 2)") or a non-float dataset -> GV_ERR_FORMAT naming file and dataset. */
gv_status gv_ckpt_read_tensor(gv_ckpt_reader *r, const char *group, const char *name,
                              const gv_shape *expected, float *host);
/* Names of the links (datasets, subgroups) directly under /<group>, in HDF5 name order; a missing
   group gives count 0. Free with gv_ckpt_names_free. */
gv_status gv_ckpt_list(gv_ckpt_reader *r, const char *group, char ***names, int *count);
void gv_ckpt_names_free(char **names, int count);

/* Key/value reads; a missing key or a stored type that does not convert -> GV_ERR_FORMAT naming
   file, section and key. Integers read as f64 convert; doubles never read as i64. */
int gv_ckpt_has_key(gv_ckpt_reader *r, gv_ckpt_section s, const char *key);
gv_status gv_ckpt_get_i64(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *v);
gv_status gv_ckpt_get_f64(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, double *v);
/* *v is malloc()ed; the caller frees it. */
gv_status gv_ckpt_get_str(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, char **v);
/* Element count of an array key. */
gv_status gv_ckpt_get_len(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *n);
/* Read exactly n elements (a different stored length is GV_ERR_FORMAT naming both). */
gv_status gv_ckpt_get_f32s(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, float *v,
                           int64_t n);
gv_status gv_ckpt_get_i64s(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *v,
                           int64_t n);
/* The resolved YAML (malloc()ed). */
gv_status gv_ckpt_get_config(gv_ckpt_reader *r, char **yaml);

/* ---- parameter tables (checkpoint_params.c) -------------------------------------------------- */
struct gv_params;
/* /params (+ /optim/m, /optim/v when with_optim; + /ema when with_ema) from every declared
   parameter, copied through a host buffer with backend->copy_to_host; also /meta "model_hash"
   (16 hex digits of gv_params_hash) and "param_count". */
gv_status gv_params_save(gv_ckpt_writer *w, const struct gv_params *ps, int with_optim,
                         int with_ema);
/* The reverse, through backend->copy_from_host. Every declared parameter must exist with its
   shape and the file may hold no other names in a group it loads (the message lists missing and
   unexpected names). When /meta "model_hash" is present the loaded values must hash to it. */
gv_status gv_params_load(gv_ckpt_reader *r, struct gv_params *ps, int with_optim, int with_ema);

#ifdef __cplusplus
}
#endif
#endif
