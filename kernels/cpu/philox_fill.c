/* CPU philox_normal_fill: standard normals at a Philox address (philox.h, rng.h), OpenMP over
 * Philox blocks. Each block's 4 values come from gv_philox_normal_block, the same GV_HD arithmetic
 * as gv_rng_normal_fill_host and the CUDA fill, so the result is bitwise equal to them at any
 * thread count. */
#include <stdint.h>

#include "cpu_backend.h"
#include "grove/rng.h"

/* out (a->n) = normals at elements a->offset .. a->offset + a->n - 1 of (a->key, a->ctr_hi). */
gv_status gv_cpu_philox_normal_fill(gv_ctx *c, float *out, const gv_philox_args *a) {
    GV_TRY(gv_rng_check_range(a));
    if (a->n == 0) return GV_OK;
    const uint64_t first = a->offset, end = a->offset + (uint64_t)a->n;
    const int64_t b0 = (int64_t)(first >> 2), b1 = (int64_t)((end - 1) >> 2); /* inclusive */
    const int threads = c && c->threads > 0 ? c->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = b0; b <= b1; ++b) {
        float z[4];
        gv_philox_normal_block(a->key, a->ctr_hi, (uint32_t)b, z);
        for (int lane = 0; lane < 4; ++lane) {
            uint64_t e = 4 * (uint64_t)b + (uint64_t)lane;
            if (e >= first && e < end) out[e - first] = z[lane];
        }
    }
    return GV_OK;
}
