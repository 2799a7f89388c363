/* Data parallel across processes (DESIGN.md §9): a small layer over MPI (Open MPI from Debian).
 *
 * The unit of work is a SHARD: a fixed partition of one iteration's batch into `run.shards` equal
 * parts, independent of how many ranks run. Rank r of R owns the contiguous shards
 * [S·r/R, S·(r+1)/R). Each shard's gradient is computed alone into zeroed buffers, and the shard
 * gradients are summed strictly in shard order, ((g0 + g1) + g2) + ..., in one process and across
 * ranks alike (gv_dist_shard_sum: a chain through the ranks in rank order, then a broadcast of the
 * result). So one process with run.shards = S and `mpirun -np R` with the same S produce bitwise
 * the same parameters (CPU, same thread count per shard).
 *
 * Every collective here is non-blocking under the hood and polled against a deadline
 * (dist.timeout_s): a rank that died or hangs makes the others fail with a one-line error instead
 * of waiting forever; the CLI then reports `rank k: <cause>` and aborts the job (gv_dist_abort).
 * A parameter hash is compared across ranks (gv_dist_check_hash) at start and every
 * dist.check_every steps; a mismatch names the ranks that differ from rank 0.
 *
 * Without a launcher (no mpirun environment) nothing is initialised: one process, rank 0 of 1, and
 * every collective reduces to its local part — the same code path. A build without MPI
 * (GROVE_MPI off or MPI not found) runs the same single-process path and refuses, with a clear
 * message, to run as one rank of several.
 *
 * NCCL seam: the shard sum moves gradients through host staging (copy_to_host / copy_from_host)
 * and point-to-point messages; with the CUDA backend and the NCCL module (gv_dist_use_backend,
 * grove/dist_nccl.h) it moves device buffers (a chain of ncclSend/ncclRecv + ncclBroadcast,
 * communicator bootstrapped with an ncclUniqueId broadcast over MPI) without changing its callers
 * or the summation order. That path is compiled but has never run (no GPU where it was written).
 *
 * Deliberately not here: which work a shard holds (the trainers), files (rank 0 alone writes
 * checkpoints, metrics and logs: the trainers check gv_dist_rank()). */
#ifndef GROVE_DIST_H
#define GROVE_DIST_H

#include <stdint.h>

#include "grove/backend.h"
#include "grove/config.h"
#include "grove/dist_config.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has MPI. */
int gv_dist_compiled(void);

/* Join the job when started by a launcher (mpirun / srun environment), else run as rank 0 of 1.
   Call once, from main's thread, before any other gv_dist_*; a build without MPI started by a
   launcher with more than one rank fails with a message saying so. */
gv_status gv_dist_init(void);
/* Leave the job cleanly (every rank must call it). No-op without MPI. */
void gv_dist_finalize(void);
/* Stop every rank of the job now with exit code `code` (MPI_Abort); without MPI, does nothing
   and returns. For the CLI only, after it printed `rank k: <cause>`. */
void gv_dist_abort(int code);

int gv_dist_rank(void);
int gv_dist_size(void);
/* This rank's index among the ranks of its node (0 without a launcher): the CUDA backend runs on
   device local_rank mod device count. */
int gv_dist_local_rank(void);

/* The collective deadline in seconds (dist.timeout_s); default 300. */
void gv_dist_set_timeout(double seconds);
/* The same with the config key that errors name (e.g. dist.eval_timeout_s for one wait). */
void gv_dist_set_deadline(double seconds, const char *key);
/* Seconds spent inside collectives since init (waiting included): the communication share. */
double gv_dist_comm_seconds(void);

/* The shards [*lo, *hi) of `rank` of `size` when the work has `shards` parts. */
void gv_dist_shard_range(int shards, int rank, int size, int *lo, int *hi);
/* This rank's shards [*lo, *hi) of run.shards = `shards`; fewer shards than ranks is refused (a
   config error every rank raises alike, so rank 0 alone prints it). */
gv_status gv_dist_own_shards(int shards, int *lo, int *hi);

/* All ranks wait for each other (`what` names the point in messages). */
gv_status gv_dist_barrier(const char *what);

/* Per-shard values to every rank: `all` (n values, one per shard) holds on entry this rank's
   values at [lo, hi) (the rest is ignored); on return every slot, from the rank owning it.
   Exact: the transport adds zeros to each value, never two values together. */
gv_status gv_dist_gather_f64(const char *what, double *all, int n, int lo, int hi);

/* Blocks of elements to every rank, bitwise whatever the type: `all` (n elements of `elem` bytes)
   holds on entry this rank's elements at [lo, hi) (the rest is ignored); on return every element,
   from the rank that owns it. The ranks' blocks must tile [0, n) in rank order (rank r's hi is
   rank r+1's lo; an empty block is allowed), as the blocks of contiguous shards do; otherwise an
   error on every rank. Unlike gv_dist_gather_f64 nothing is added: -0.0 and NaN payloads pass. */
gv_status gv_dist_allgather(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                            int64_t hi);
/* The same blocks to rank 0 only (its `all` whole on return; the other ranks' `all` unchanged):
   for what rank 0 alone needs, such as a rollout dump (rollout.c). */
gv_status gv_dist_gather_to_rank0(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                                  int64_t hi);

/* v (n counts) summed over the ranks, on every rank (integers: exact in any order). */
gv_status gv_dist_sum_i64(const char *what, int64_t *v, int n);

/* Compare `hash` (this rank's parameter hash) across ranks. A difference is an error naming the
   ranks whose hash differs from rank 0's; every rank gets the same error. */
gv_status gv_dist_check_hash(const char *what, uint64_t hash);

/* Use the transport fit for `be`'s buffers: with the CUDA backend under several ranks the NCCL
   module (grove/dist_nccl.h) when every rank can use it — compiled, never executed so far —, else
   host staging with one note on stderr (the module missing or not loadable, or ranks of a node
   sharing a GPU). Every rank calls it once, after gv_dist_init. */
gv_status gv_dist_use_backend(const gv_backend *be);

/* The fixed-order shard sum of gradient buffers (see the top of this file). */
typedef struct gv_shard_sum {
    const gv_backend *be;
    gv_ctx *ctx;               /* for the add op                                          */
    int64_t n;                 /* floats per buffer                                       */
    int shards;                /* S                                                       */
    int lo, hi;                /* this rank's shards (gv_dist_shard_range)                */
    float *const *local;       /* (hi − lo) backend buffers: the gradient of shard lo + k */
    float *out;                /* backend buffer: Σ_s g_s in shard order, on every rank    */
} gv_shard_sum;

gv_status gv_dist_shard_sum(const gv_shard_sum *a, const char *what);
/* The transport gv_dist_shard_sum takes under several ranks: 1 = NCCL, only when it is loaded
   (nccl_loaded) AND the buffers are device buffers (`be` is the "cuda" backend); 0 = host staging
   (a CUDA run's host-side sums, e.g. Co-GRPO's φ on the CPU backend, never reach NCCL). The NCCL
   path itself has never run (no GPU where it was written). */
int gv_dist_sum_on_device(const gv_backend *be, int nccl_loaded);

/* True when the last error came out of a collective agreement (a hash mismatch): every rank holds
   the same error, so rank 0 alone should print it and the ranks can leave cleanly. */
int gv_dist_error_is_agreed(void);
/* Mark the error just raised as agreed: every rank raised it alike from gathered data (the
   reward-failure streak, rollout.c), so rank 0 alone prints it and the job ends without an abort. */
void gv_dist_agree_error(void);

/* Stop at this iteration boundary? Every rank must take the same decision (a SIGINT may reach
   one rank): *stop = 1 on every rank when `local` is set on any. Rank 0 arrives here from its eval
   and checkpoint writes, which the others wait out: this wait (and the barrier after a rollouts
   dump, which rank 0 writes alone) has the generous deadline d->eval_timeout_s, so a long eval or
   write never aborts a healthy job; every other collective keeps d->timeout_s. */
gv_status gv_dist_agree_stop(const gv_dist_section *d, int local, int *stop);

/* Test-only fault injection, from the environment variable GROVE_DIST_FAULT="KIND:RANK:STEP"
   (KIND: kill, stall, desync). At `step` on rank RANK: kill → SIGKILL itself; stall → sleep
   forever; desync → returns 1 and the trainer perturbs one parameter. Else returns 0. */
int gv_dist_test_fault(int64_t step);

#ifdef __cplusplus
}
#endif
#endif
