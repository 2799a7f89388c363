/* Run-directory mechanics shared by `grove pretrain` and `grove train` (DESIGN.md §1): small file
 * helpers (atomic text writes, mkdir -p), the resume rules (metrics.jsonl truncated to the last
 * checkpointed record, the first differing key of two canonical config dumps) and the
 * epoch-shuffled data cursor (DESIGN.md §3, RNG: the order is Philox at (seed, DATA, epoch,
 * SHUFFLE); epoch and position are checkpoint state) and the run checkpoint itself (params,
 * optimizer, EMA, /state, /meta, /config). One mechanism for both loops; each loop only lists the
 * /state values it keeps. */
#ifndef GROVE_RUNDIR_H
#define GROVE_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

#include "grove/checkpoint.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds on CLOCK_MONOTONIC. */
double gv_rundir_now(void);
int gv_rundir_exists(const char *path);
/* mkdir -p. */
gv_status gv_rundir_mkdir_p(const char *dir);
/* The whole file as a NUL-terminated malloc'd string. */
gv_status gv_rundir_slurp(const char *path, char **out);
/* Write `text` to `path` through "<path>.tmp" and rename. */
gv_status gv_rundir_write_atomic(const char *path, const char *text);
/* Keep only the leading metrics records whose first field is `"<key>":v` with v <= last (a resumed
   run rewrites what came after its checkpoint). A missing file is fine. */
gv_status gv_rundir_metrics_truncate(const char *path, const char *key, int64_t last);
/* The first key whose line differs between two canonical dumps, as
   "train.lr: 0.001 (run) vs 0.002 (now)", into out. */
void gv_rundir_dump_difference(const char *a, const char *b, char *out, size_t len);
/* Resuming under a changed config (DESIGN.md §1): GV_ERR_CONFIG naming `dir` and the first
   difference between the run's canonical dump and the current one, unless they match or `force`. */
gv_status gv_rundir_refuse_changed_config(const char *dir, const char *run_dump,
                                          const char *now_dump, int force);

/* The epoch-shuffled cursor over n items [lo, lo + n). */
typedef struct gv_data_cursor {
    int64_t lo, n;   /* the selected items                                */
    int64_t *perm;   /* (n) this epoch's order (caller-allocated)         */
    int64_t epoch, pos;
} gv_data_cursor;

/* perm = Fisher–Yates over Philox words at (seed, DATA, iteration = epoch, node 1, SHUFFLE). */
gv_status gv_data_cursor_shuffle(gv_data_cursor *c, uint32_t seed);
/* The next B items (lo + perm[pos]...), starting a new shuffled epoch when one runs out. */
gv_status gv_data_cursor_next(gv_data_cursor *c, uint32_t seed, int B, int64_t *items);

/* ---- run checkpoints (DESIGN.md §3 Checkpoints) ---------------------------------------------- */

struct gv_image_model;

/* One /state value a loop keeps; exactly one of i64 and f64 points at it. */
typedef struct gv_run_state_value {
    const char *key;
    int64_t *i64;
    double *f64;
} gv_run_state_value;

/* What a run checkpoint holds: /params with /optim and /ema of `model`, /state = the loop's values
   plus "data_epoch", "data_position" and "seed", /meta = the model description and "threads"
   (then whatever put_meta adds), /config = the resolved YAML. */
typedef struct gv_run_checkpoint {
    struct gv_image_model *model;
    int threads;
    uint32_t seed;                     /* /state seed; a resumed run must have the same one      */
    gv_data_cursor *cursor;            /* /state data_epoch, data_position; reshuffled on load    */
    const gv_run_state_value *state;   /* (n_state) the loop's counters                           */
    size_t n_state;
    /* Optional (NULL): more /meta after "threads" on save; a check of the file on load, before
       the seed and cursor are checked. */
    gv_status (*put_meta)(gv_ckpt_writer *w, void *user);
    gv_status (*check)(gv_ckpt_reader *r, const char *path, void *user);
    void *user;
} gv_run_checkpoint;

/* Write `path` atomically. */
gv_status gv_rundir_save_checkpoint(const gv_run_checkpoint *c, const char *yaml, const char *path);
/* Read `path` back into the model and the state values; refuses another seed or a data position
   outside the cursor, then reshuffles the cursor's epoch. */
gv_status gv_rundir_load_checkpoint(const gv_run_checkpoint *c, const char *path);

#ifdef __cplusplus
}
#endif
#endif
