/* The parameter table: named views into one flat buffer each for params, grads, Adam m and v
 * (and the EMA copy).
 *
 * A model declares its parameters ({name, shape, init, decay}) before allocation; the table then
 * allocates the flat buffers in backend memory (each view 64-byte aligned) and initialises them
 * deterministically from the RNG. Names are checkpoint keys ("unet.down.0.res.conv1.weight").
 * Optimizer, grad clip, EMA and all-reduce are single loops over the flat buffers (optim.h). */
#ifndef GROVE_PARAMS_H
#define GROVE_PARAMS_H

#include <stdint.h>

#include "grove/backend.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_PARAM_NAME_MAX 128

typedef enum gv_init_kind {
    GV_INIT_ZEROS = 0,
    GV_INIT_ONES,
    GV_INIT_NORMAL,       /* N(0, scale^2)                                           */
    GV_INIT_UNIFORM_FANIN /* U(-b, b), b = scale / sqrt(fan_in), fan_in = numel / d[0] */
} gv_init_kind;

typedef struct gv_param {
    char name[GV_PARAM_NAME_MAX];
    gv_shape shape;
    int64_t numel;
    int64_t offset;    /* in floats, into every flat buffer; a multiple of 16 */
    gv_init_kind init;
    float init_scale;
    int decay;         /* 1: AdamW weight decay applies                       */
    /* views, valid after gv_params_allocate (backend memory): */
    float *value, *grad, *adam_m, *adam_v, *ema;
} gv_param;

typedef struct gv_params {
    const gv_backend *backend;
    gv_param *items;
    int count, cap;
    int64_t total;  /* floats in each flat buffer (padding included) */
    float *values, *grads, *adam_m, *adam_v, *ema; /* flat buffers; ema may be NULL */
    int allocated;
} gv_params;

void gv_params_init(gv_params *ps, const gv_backend *backend);
/* Declare a parameter; *index receives its position. Duplicate names are an error. */
gv_status gv_params_declare(gv_params *ps, const char *name, gv_shape shape, gv_init_kind init,
                            float init_scale, int decay, int *index);
/* Allocate the flat buffers (params, grads, m, v; plus ema when with_ema) and zero them. */
gv_status gv_params_allocate(gv_params *ps, int with_ema);
/* Fill values from Philox (seed, stream GV_RNG_STREAM_INIT), addressed by parameter index and
   element, so the result does not depend on declaration batching or thread count; copies values
   into ema when present; zeroes grads and Adam moments. */
gv_status gv_params_initialize(gv_params *ps, uint32_t seed);
void gv_params_free(gv_params *ps);

gv_param *gv_params_at(gv_params *ps, int index);
/* NULL when absent. */
gv_param *gv_params_find(gv_params *ps, const char *name);
gv_status gv_params_zero_grads(gv_params *ps);
/* 64-bit FNV-1a over names, shapes and value bytes (host copy): the "model hash". */
gv_status gv_params_hash(const gv_params *ps, uint64_t *out);
/* The same hash over a host copy of the values flat buffer (ps->total floats, same offsets). */
gv_status gv_params_hash_host(const gv_params *ps, const float *host_values, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
