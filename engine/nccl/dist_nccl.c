/* libgrove_nccl.so: the NCCL transport of dist.h's shard sum (grove/dist_nccl.h). One NCCL
 * communicator and one non-blocking CUDA stream per process; every operation first waits for the
 * device (cudaDeviceSynchronize: the backend's additions into the buffer are done), then posts
 * on the stream; dist.c polls for completion against dist.timeout_s. The device is the CUDA
 * backend's (node-local rank mod device count, set when the backend started).
 * STATUS: compiled, NEVER EXECUTED (written on a machine without a GPU).
 * Deliberately not here: the summation order and the additions (dist.c), MPI (the unique id
 * arrives through dist.c's broadcast callback, so this module does not link MPI). */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>

#include "grove/dist_nccl.h"

static ncclComm_t comm;
static cudaStream_t stream;
static int up;

static int cuda_failed(cudaError_t e, const char *what, char *err, size_t n) {
    if (e == cudaSuccess) return 0;
    snprintf(err, n, "nccl transport: %s: %s", what, cudaGetErrorString(e));
    return -1;
}
static int nccl_failed(ncclResult_t r, const char *what, char *err, size_t n) {
    if (r == ncclSuccess) return 0;
    snprintf(err, n, "nccl transport: %s: %s", what, ncclGetErrorString(r));
    return -1;
}

static int init(int rank, int size, gv_nccl_bcast_fn bcast, void *user, char *err, size_t n) {
    ncclUniqueId id;
    if (rank == 0 && nccl_failed(ncclGetUniqueId(&id), "ncclGetUniqueId", err, n)) return -1;
    if (bcast(&id, sizeof id, user) != 0) {
        snprintf(err, n, "nccl transport: broadcasting the ncclUniqueId over MPI failed");
        return -1;
    }
    if (cuda_failed(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream", err, n))
        return -1;
    if (nccl_failed(ncclCommInitRank(&comm, size, id, rank), "ncclCommInitRank", err, n)) return -1;
    up = 1;
    return 0;
}

static int send_op(const float *buf, size_t count, int peer, char *err, size_t n) {
    if (cuda_failed(cudaDeviceSynchronize(), "device sync before send", err, n)) return -1;
    return nccl_failed(ncclSend(buf, count, ncclFloat, peer, comm, stream), "ncclSend", err, n);
}

static int recv_op(float *buf, size_t count, int peer, char *err, size_t n) {
    if (cuda_failed(cudaDeviceSynchronize(), "device sync before recv", err, n)) return -1;
    return nccl_failed(ncclRecv(buf, count, ncclFloat, peer, comm, stream), "ncclRecv", err, n);
}

static int bcast_op(float *buf, size_t count, int root, char *err, size_t n) {
    if (cuda_failed(cudaDeviceSynchronize(), "device sync before broadcast", err, n)) return -1;
    return nccl_failed(ncclBroadcast(buf, buf, count, ncclFloat, root, comm, stream),
                       "ncclBroadcast", err, n);
}

static int poll_op(char *err, size_t n) {
    ncclResult_t async = ncclSuccess;
    if (nccl_failed(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError", err, n) ||
        nccl_failed(async, "asynchronous error", err, n))
        return -1;
    cudaError_t e = cudaStreamQuery(stream);
    if (e == cudaErrorNotReady) return 0;
    return cuda_failed(e, "stream", err, n) ? -1 : 1;
}

static void finalize(int abort) {
    if (!up) return;
    if (abort) ncclCommAbort(comm);
    else ncclCommDestroy(comm);
    cudaStreamDestroy(stream);
    up = 0;
}

static int device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count;
}

static const gv_dist_nccl table = {
    .abi_version = GROVE_DIST_NCCL_ABI, .struct_size = sizeof(gv_dist_nccl), .init = init,
    .send = send_op, .recv = recv_op, .bcast = bcast_op, .poll = poll_op, .finalize = finalize,
    .device_count = device_count};

__attribute__((visibility("default"))) const gv_dist_nccl *grove_dist_nccl(void) { return &table; }
