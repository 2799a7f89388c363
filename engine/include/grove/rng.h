/* The RNG's host API and its counter address layout (DESIGN.md §3, RNG).
 *
 * Every random number grove draws is Philox4x32-10 (philox.h) at a KEY and a COUNTER:
 *
 *   key     = (seed, stream)        key[0] = seed, key[1] = stream (GV_RNG_STREAM_*)
 *   counter = (word0, word1, word2, word3), 4 x 32 bits:
 *
 *     word0  element / 4                      32 bits  (element index within the address;
 *                                                       each Philox block gives 4 values)
 *     word1  step << 24 | node                 8 | 24  (sampler step; path-based node id)
 *     word2  slot << 16 | purpose             16 | 16  (prompt slot in the iteration's batch;
 *                                                       what the numbers are for, GV_RNG_PURPOSE_*)
 *     word3  iteration                        32 bits
 *
 *   so an address (iteration, slot, node, step, purpose) holds up to 2^34 elements, and
 *     step      < 2^8  = 256          node      < 2^24 = 16,777,216
 *     slot      < 2^16 = 65,536       purpose   < 2^16
 *     iteration < 2^32                element   < 2^34 per address
 *   A value that does not fit is an error naming the field (gv_rng_addr_pack); configuration
 *   loading should pack the largest address a run will use (and check its element count with
 *   gv_rng_check_range), so that an overflow is a load error, never a silent wrap.
 *   words 1..3 are the `ctr_hi[3]` of gv_philox_args; word0 comes from the element.
 *
 * The slot is the prompt's position in the iteration's global batch (not its identity); the node
 * id is stable and path-based (the root's index in its group, then the child index at each split),
 * so noise does not depend on batch split, thread count, rank count or resume point. Fields that a
 * use does not need are 0 (parameter init: node = parameter index, all else 0).
 *
 * Element e of an address is a normal (Box–Muller over block e/4, philox.h) or a uniform (lane e%4
 * of block e/4) — the same counter gives both, so one address must be used for one kind only: give
 * normals and uniforms different purposes. Deliberately not here: the op that fills backend memory
 * (ops.h philox_normal_fill) and any sampler or trainer policy. */
#ifndef GROVE_RNG_H
#define GROVE_RNG_H

#include <stdint.h>

#include "grove/ops.h"
#include "grove/philox.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- key: streams ---------------------------------------------------------------------------- */

/* key[1]. One stream per subsystem; never reuse a value for something else (it changes every
   random number of a checkpointed run). */
typedef enum gv_rng_stream {
    GV_RNG_STREAM_INIT = 1,    /* parameter initialisation (params.c)                          */
    GV_RNG_STREAM_SAMPLER = 2, /* rollout noise: x_T and per-step SDE noise, masked sampling    */
    GV_RNG_STREAM_DATA = 3,    /* dataset / prompt epoch shuffles                                */
    GV_RNG_STREAM_TRAIN = 4,   /* root shuffles into minibatches, random_fraction step choice    */
    GV_RNG_STREAM_EVAL = 5,    /* eval, gallery and `grove sample` noise (kept apart from training) */
    GV_RNG_STREAM_PRETRAIN = 6 /* `grove pretrain`: timesteps, noise, masks, batches             */
} gv_rng_stream;

/* ---- counter: the address -------------------------------------------------------------------- */

#define GV_RNG_STEP_BITS 8
#define GV_RNG_NODE_BITS 24
#define GV_RNG_SLOT_BITS 16
#define GV_RNG_PURPOSE_BITS 16
#define GV_RNG_ITERATION_BITS 32
#define GV_RNG_ELEMENT_BITS 34 /* 32-bit block index x 4 values per block */
#define GV_RNG_MAX_ELEMENTS ((uint64_t)1 << GV_RNG_ELEMENT_BITS)

/* Purposes within a stream (word2 low half). A registry, so two uses never share an address. */
enum {
    GV_RNG_PURPOSE_DEFAULT = 0,     /* a stream's only use (parameter init)                  */
    GV_RNG_PURPOSE_LATENT = 1,      /* x_T of a root                                          */
    GV_RNG_PURPOSE_STEP_NOISE = 2,  /* SDE noise of a step (node, step)                       */
    GV_RNG_PURPOSE_MASK_UNIFORM = 3,/* masked-diffusion Gumbel / top-k uniforms               */
    GV_RNG_PURPOSE_SHUFFLE = 4,     /* permutation uniforms (data epochs, minibatch roots)    */
    GV_RNG_PURPOSE_STEP_CHOICE = 5, /* random_fraction / window position uniforms             */
    GV_RNG_PURPOSE_TIMESTEP = 6,    /* pretraining timesteps                                  */
    GV_RNG_PURPOSE_DROPOUT = 7,     /* condition dropout (CFG training)                       */
    GV_RNG_PURPOSE_SCHEDULE = 8     /* Co-GRPO schedule-policy actions (mdm_schedule.h)       */
};

typedef struct gv_rng_addr {
    uint32_t iteration; /* < 2^32                                   */
    uint32_t slot;      /* < 2^16, prompt position in the global batch */
    uint32_t node;      /* < 2^24, path-based node id               */
    uint32_t step;      /* < 2^8, sampler step                      */
    uint32_t purpose;   /* < 2^16, GV_RNG_PURPOSE_*                  */
} gv_rng_addr;

/* ctr_hi (3) = counter words 1..3 of `a`; GV_ERR_INVALID naming the field, its value and its
   limit when one does not fit (ctr_hi is then left unchanged). */
gv_status gv_rng_addr_pack(const gv_rng_addr *a, uint32_t ctr_hi[3]);
/* The inverse of gv_rng_addr_pack. */
void gv_rng_addr_unpack(const uint32_t ctr_hi[3], gv_rng_addr *a);

/* key (2) = (seed, stream). */
static inline void gv_rng_key(uint32_t seed, uint32_t stream, uint32_t key[2]) {
    key[0] = seed;
    key[1] = stream;
}

/* Fill `out` with everything an op needs for n elements starting at `offset` of address `a`:
   checks the address and offset + n <= GV_RNG_MAX_ELEMENTS. */
gv_status gv_rng_args(uint32_t seed, uint32_t stream, const gv_rng_addr *a, uint64_t offset,
                      int64_t n, gv_philox_args *out);
/* GV_ERR_INVALID when n < 0 or offset + n > GV_RNG_MAX_ELEMENTS. */
gv_status gv_rng_check_range(const gv_philox_args *a);

/* ---- values at one element (host; the same functions the kernels run) ------------------------ */

/* Standard normal at element `element` (< 2^34) of (key, ctr_hi). */
float gv_rng_normal_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element);
/* Uniform in [2^-24, 1 - 2^-24] at element `element`. */
float gv_rng_uniform_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element);
/* The raw 32-bit word at element `element` (shuffles: index = word % n is fine for n << 2^32). */
uint32_t gv_rng_u32_at(const uint32_t key[2], const uint32_t ctr_hi[3], uint64_t element);

/* ---- host fills ------------------------------------------------------------------------------ */

/* out (a->n) [host memory] = normals at elements a->offset .. a->offset + a->n - 1; the CPU and
   CUDA philox_normal_fill ops are bitwise equal to this. */
gv_status gv_rng_normal_fill_host(float *out, const gv_philox_args *a);
/* out (a->n) [host memory] = uniforms at the same elements. */
gv_status gv_rng_uniform_fill_host(float *out, const gv_philox_args *a);

#ifdef __cplusplus
}
#endif
#endif
