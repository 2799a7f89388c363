/* The device transport of the fixed-order shard sum (dist.h's NCCL seam): a C vtable behind the one
 * exported symbol of the optional module libgrove_nccl.so (engine/nccl/, built when MPI, the CUDA
 * runtime and the NCCL header and library are found; the CPU binary never links NCCL). dist.c
 * dlopen()s it when the CUDA backend runs under several ranks, and then moves the running shard
 * sum between ranks as device buffers (ncclSend / ncclRecv along the chain, ncclBroadcast of the
 * total) instead of host staging — the same order, the same additions (the backend's add op), so
 * the same bits. The communicator is bootstrapped over MPI: rank 0 makes the ncclUniqueId, dist.c
 * broadcasts it, every rank calls ncclCommInitRank.
 * STATUS: compiled, NEVER EXECUTED (written on a machine without a GPU); README "Scaling".
 * Deliberately not here: the order of the sum and the additions (dist.c), timeouts (dist.c polls). */
#ifndef GROVE_DIST_NCCL_H
#define GROVE_DIST_NCCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GROVE_DIST_NCCL_ABI 2u
#define GROVE_DIST_NCCL_SYMBOL "grove_dist_nccl"

/* rank 0's `bytes` at buf to every rank (dist.c: an MPI broadcast); 0 = done. */
typedef int (*gv_nccl_bcast_fn)(void *buf, size_t bytes, void *user);

typedef struct gv_dist_nccl {
    uint32_t abi_version;  /* GROVE_DIST_NCCL_ABI */
    uint32_t struct_size;  /* sizeof(gv_dist_nccl) */
    /* Join: the unique id from rank 0 through `bcast`, then ncclCommInitRank on the current device. */
    int (*init)(int rank, int size, gv_nccl_bcast_fn bcast, void *user, char *err, size_t err_len);
    /* Post on the module's stream, after the device finished the work queued so far (the
       backend's additions): count floats of device memory to / from `peer`, or from `root`. */
    int (*send)(const float *buf, size_t count, int peer, char *err, size_t err_len);
    int (*recv)(float *buf, size_t count, int peer, char *err, size_t err_len);
    int (*bcast)(float *buf, size_t count, int root, char *err, size_t err_len);
    /* 1: everything posted has completed; 0: still running; -1: failed (err). */
    int (*poll)(char *err, size_t err_len);
    /* Leave: abort != 0 after a failure or timeout (ncclCommAbort), else ncclCommDestroy. */
    void (*finalize)(int abort);
    /* The CUDA devices this process sees (0 when none): fewer than the ranks of a node means
       ranks share a GPU, which NCCL refuses; dist.c then keeps host staging. */
    int (*device_count)(void);
} gv_dist_nccl;

/* The module's entry point (GROVE_DIST_NCCL_SYMBOL). */
typedef const gv_dist_nccl *(*gv_dist_nccl_entry)(void);

#ifdef __cplusplus
}
#endif
#endif
