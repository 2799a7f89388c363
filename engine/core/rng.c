/* The RNG's host side: address packing and host-memory fills (see rng.h for the layout and
 * philox.h for the arithmetic). Serial on purpose: it is the reference the CPU and CUDA fills are
 * compared with bitwise; the fast fill is the philox_normal_fill op. */
#include "grove/rng.h"

#include <inttypes.h>

typedef struct rng_field {
    const char *name;
    uint32_t value;
    int bits;
} rng_field;

gv_status gv_rng_addr_pack(const gv_rng_addr *a, uint32_t ctr_hi[3]) {
    const rng_field fields[] = {
        {"step", a->step, GV_RNG_STEP_BITS},
        {"node", a->node, GV_RNG_NODE_BITS},
        {"slot", a->slot, GV_RNG_SLOT_BITS},
        {"purpose", a->purpose, GV_RNG_PURPOSE_BITS},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i) {
        uint64_t limit = (uint64_t)1 << fields[i].bits;
        if ((uint64_t)fields[i].value >= limit)
            return GV_ERROR(GV_ERR_INVALID,
                            "rng address: %s = %" PRIu32 " does not fit its %d-bit field "
                            "(must be < %" PRIu64 ")",
                            fields[i].name, fields[i].value, fields[i].bits, limit);
    }
    /* iteration uses all 32 bits of word3: every uint32_t fits */
    ctr_hi[0] = (a->step << GV_RNG_NODE_BITS) | a->node;
    ctr_hi[1] = (a->slot << GV_RNG_PURPOSE_BITS) | a->purpose;
    ctr_hi[2] = a->iteration;
    return GV_OK;
}

void gv_rng_addr_unpack(const uint32_t ctr_hi[3], gv_rng_addr *a) {
    a->step = ctr_hi[0] >> GV_RNG_NODE_BITS;
    a->node = ctr_hi[0] & (((uint32_t)1 << GV_RNG_NODE_BITS) - 1u);
    a->slot = ctr_hi[1] >> GV_RNG_PURPOSE_BITS;
    a->purpose = ctr_hi[1] & (((uint32_t)1 << GV_RNG_PURPOSE_BITS) - 1u);
    a->iteration = ctr_hi[2];
}

gv_status gv_rng_check_range(const gv_philox_args *a) {
    if (a->n < 0) return GV_ERROR(GV_ERR_INVALID, "rng fill: negative count %" PRId64, a->n);
    if (a->offset > GV_RNG_MAX_ELEMENTS || (uint64_t)a->n > GV_RNG_MAX_ELEMENTS - a->offset)
        return GV_ERROR(GV_ERR_INVALID,
                        "rng address: element range [%" PRIu64 ", %" PRIu64 ") exceeds the "
                        "%d-bit element field (must be <= %" PRIu64 ")",
                        a->offset, a->offset + (uint64_t)a->n, GV_RNG_ELEMENT_BITS,
                        GV_RNG_MAX_ELEMENTS);
    return GV_OK;
}

gv_status gv_rng_args(uint32_t seed, uint32_t stream, const gv_rng_addr *a, uint64_t offset,
                      int64_t n, gv_philox_args *out) {
    gv_philox_args args;
    args.n = n;
    args.offset = offset;
    gv_rng_key(seed, stream, args.key);
    GV_TRY(gv_rng_addr_pack(a, args.ctr_hi));
    GV_TRY(gv_rng_check_range(&args));
    *out = args;
    return GV_OK;
}

float gv_rng_normal_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element) {
    return gv_philox_normal_at(key, ctr_hi, element);
}

float gv_rng_uniform_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element) {
    return gv_philox_uniform_at(key, ctr_hi, element);
}

uint32_t gv_rng_u32_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element) {
    uint32_t ctr[4] = {(uint32_t)(element >> 2), ctr_hi[0], ctr_hi[1], ctr_hi[2]};
    uint32_t out[4];
    gv_philox4x32_10(ctr, key, out);
    return out[element & 3u];
}

gv_status gv_rng_normal_fill_host(float *out, const gv_philox_args *a) {
    GV_TRY(gv_rng_check_range(a));
    if (a->n == 0) return GV_OK;
    uint64_t first = a->offset, end = a->offset + (uint64_t)a->n;
    /* one Philox call per block of 4 elements; partial blocks at either end keep what is in range */
    for (uint64_t b = first >> 2; b <= (end - 1) >> 2; ++b) {
        float z[4];
        gv_philox_normal_block(a->key, a->ctr_hi, (uint32_t)b, z);
        for (int lane = 0; lane < 4; ++lane) {
            uint64_t e = 4 * b + (uint64_t)lane;
            if (e >= first && e < end) out[e - first] = z[lane];
        }
    }
    return GV_OK;
}

gv_status gv_rng_uniform_fill_host(float *out, const gv_philox_args *a) {
    GV_TRY(gv_rng_check_range(a));
    if (a->n == 0) return GV_OK;
    uint64_t first = a->offset, end = a->offset + (uint64_t)a->n;
    for (uint64_t b = first >> 2; b <= (end - 1) >> 2; ++b) {
        uint32_t ctr[4] = {(uint32_t)b, a->ctr_hi[0], a->ctr_hi[1], a->ctr_hi[2]};
        uint32_t words[4];
        gv_philox4x32_10(ctr, a->key, words);
        for (int lane = 0; lane < 4; ++lane) {
            uint64_t e = 4 * b + (uint64_t)lane;
            if (e >= first && e < end) out[e - first] = gv_philox_uniform(words[lane]);
        }
    }
    return GV_OK;
}
