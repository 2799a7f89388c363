/* CUDA philox_normal_fill: standard normals at a Philox address, bitwise equal to the CPU fill.
 *
 * One thread per Philox block of 4 elements runs gv_philox_normal_block (grove/philox.h), the same
 * GV_HD arithmetic as kernels/cpu/philox_fill.c and the host API in rng.h; the block/element
 * mapping is the CPU fill's, so a value depends only on (key, ctr_hi, element).
 * Deliberately not here: the counter address layout (rng.h), uniform fills. */
#include "cuda_backend.h"
#include "grove/philox.h"
#include "grove/rng.h"

/* out[e - first] for elements e in [first, end) of Philox blocks b0 .. b0 + nblocks - 1. */
__global__ void gv_philox_normal_kernel(float *out, gv_philox_args a, uint64_t first, uint64_t end,
                                        int64_t b0, int64_t nblocks) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < nblocks;
         j += (int64_t)blockDim.x * gridDim.x) {
        const int64_t b = b0 + j;
        float z[4];
        gv_philox_normal_block(a.key, a.ctr_hi, (uint32_t)b, z);
        for (int lane = 0; lane < 4; ++lane) {
            const uint64_t e = 4 * (uint64_t)b + (uint64_t)lane;
            if (e >= first && e < end) out[e - first] = z[lane];
        }
    }
}

gv_status gv_cuda_philox_normal_fill(gv_ctx *c, float *out, const gv_philox_args *a) {
    GV_TRY(gv_rng_check_range(a));
    if (a->n == 0) return GV_OK;
    const uint64_t first = a->offset, end = a->offset + (uint64_t)a->n;
    const int64_t b0 = (int64_t)(first >> 2), b1 = (int64_t)((end - 1) >> 2); /* inclusive */
    const int64_t nblocks = b1 - b0 + 1;
    gv_philox_normal_kernel<<<gv_cuda_grid_for(nblocks), GV_CUDA_BLOCK, 0,
                              gv_cuda_impl_of(c)->stream>>>(out, *a, first, end, b0, nblocks);
    GV_CUDA_CHECK_LAUNCH("gv_philox_normal_kernel");
    return GV_OK;
}
