/* Run-directory mechanics shared by `grove pretrain` and `grove train` (DESIGN.md §1): small file
 * helpers (atomic text writes, mkdir -p), the resume rules (metrics.jsonl truncated to the last
 * checkpointed record, the first differing key of two canonical config dumps) and the
 * epoch-shuffled data cursor (DESIGN.md §3, RNG: the order is Philox at (seed, DATA, epoch,
 * SHUFFLE); epoch and position are checkpoint state). One mechanism for both loops; what a
 * checkpoint holds stays with each loop. */
#ifndef GROVE_RUNDIR_H
#define GROVE_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

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

#ifdef __cplusplus
}
#endif
#endif
