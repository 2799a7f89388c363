/* The parameter table (see params.h): declaration, flat-buffer allocation, deterministic Philox
 * initialisation and the model hash.
 *
 * Initial values are generated on the host into a temporary buffer (at start-up, never inside a
 * step) and copied with backend->copy_from_host, so the table works the same on every backend.
 * Element j of parameter i is drawn at key (seed, GV_RNG_STREAM_INIT), address node = i, element
 * j (rng.h): a value depends only on (seed, i, j), never on thread count or declaration batching. */
#include "grove/params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/hash.h"
#include "grove/rng.h"

#define GV_PARAM_ALIGN_FLOATS 16 /* offsets are multiples of 16 floats = 64 bytes */
#define GV_INIT_CHUNK 4096       /* host fill chunk: the unit of OpenMP work in initialisation */

static int64_t align_floats(int64_t n) {
    return (n + GV_PARAM_ALIGN_FLOATS - 1) / GV_PARAM_ALIGN_FLOATS * GV_PARAM_ALIGN_FLOATS;
}

void gv_params_init(gv_params *ps, const gv_backend *backend) {
    memset(ps, 0, sizeof *ps);
    ps->backend = backend;
}

gv_status gv_params_declare(gv_params *ps, const char *name, gv_shape shape, gv_init_kind init,
                            float init_scale, int decay, int *index) {
    if (ps->allocated)
        return GV_ERROR(GV_ERR_INVALID, "parameter '%s' declared after the table was allocated",
                        name ? name : "?");
    if (!name || !name[0]) return GV_ERROR(GV_ERR_INVALID, "parameter with an empty name");
    if (strlen(name) >= GV_PARAM_NAME_MAX)
        return GV_ERROR(GV_ERR_INVALID, "parameter name '%s' is longer than %d characters", name,
                        GV_PARAM_NAME_MAX - 1);
    if (shape.rank < 0 || shape.rank > GV_MAX_DIMS)
        return GV_ERROR(GV_ERR_INVALID, "parameter '%s': rank %d out of range", name, shape.rank);
    for (int k = 0; k < shape.rank; ++k)
        if (shape.d[k] <= 0) {
            char buf[96];
            return GV_ERROR(GV_ERR_INVALID, "parameter '%s': shape %s has a non-positive dimension",
                            name, gv_shape_str(&shape, buf, sizeof buf));
        }
    if ((unsigned)init > GV_INIT_UNIFORM_FANIN)
        return GV_ERROR(GV_ERR_INVALID, "parameter '%s': unknown init kind %d", name, (int)init);
    if (!isfinite(init_scale) || init_scale < 0.0f)
        return GV_ERROR(GV_ERR_INVALID, "parameter '%s': init scale %g must be finite and >= 0",
                        name, (double)init_scale);
    if (gv_params_find(ps, name))
        return GV_ERROR(GV_ERR_INVALID, "parameter '%s' declared twice", name);
    if (ps->count == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 64;
        gv_param *items = realloc(ps->items, (size_t)cap * sizeof *items);
        if (!items) return GV_ERROR(GV_ERR_OOM, "parameter table: cannot grow to %d entries", cap);
        ps->items = items;
        ps->cap = cap;
    }
    gv_param *p = &ps->items[ps->count];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, strlen(name) + 1);
    p->shape = shape;
    for (int k = shape.rank; k < GV_MAX_DIMS; ++k) p->shape.d[k] = 0;
    p->numel = gv_shape_numel(&shape);
    p->offset = align_floats(ps->total);
    p->init = init;
    p->init_scale = init_scale;
    p->decay = decay ? 1 : 0;
    ps->total = align_floats(p->offset + p->numel);
    if (index) *index = ps->count;
    ps->count++;
    return GV_OK;
}

static void set_views(gv_params *ps) {
    for (int i = 0; i < ps->count; ++i) {
        gv_param *p = &ps->items[i];
        p->value = ps->values + p->offset;
        p->grad = ps->grads + p->offset;
        p->adam_m = ps->adam_m + p->offset;
        p->adam_v = ps->adam_v + p->offset;
        p->ema = ps->ema ? ps->ema + p->offset : NULL;
    }
}

static void free_buffers(gv_params *ps) {
    float **bufs[] = {&ps->values, &ps->grads, &ps->adam_m, &ps->adam_v, &ps->ema};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) {
        if (*bufs[i] && ps->backend) ps->backend->free(*bufs[i]);
        *bufs[i] = NULL;
    }
    ps->allocated = 0;
}

gv_status gv_params_allocate(gv_params *ps, int with_ema) {
    if (!ps->backend) return GV_ERROR(GV_ERR_INVALID, "parameter table has no backend");
    if (ps->allocated) return GV_ERROR(GV_ERR_INVALID, "parameter table allocated twice");
    size_t bytes = (size_t)ps->total * sizeof(float);
    float **bufs[] = {&ps->values, &ps->grads, &ps->adam_m, &ps->adam_v, &ps->ema};
    const char *what[] = {"values", "gradients", "Adam m", "Adam v", "EMA"};
    int nbufs = with_ema ? 5 : 4;
    for (int i = 0; i < nbufs; ++i) {
        gv_status s = ps->backend->alloc(bytes, (void **)bufs[i]);
        if (s == GV_OK) s = ps->backend->memset_zero(*bufs[i], bytes);
        if (s != GV_OK) {
            gv_error_prefix("allocating parameter %s (%lld floats)", what[i],
                            (long long)ps->total);
            free_buffers(ps);
            return s;
        }
    }
    ps->allocated = 1;
    set_views(ps);
    return GV_OK;
}

/* host (p->numel) = initial values of parameter `index` (see the file comment). */
static gv_status init_values_host(const gv_param *p, int index, uint32_t seed, float *host) {
    const int64_t n = p->numel;
    if (p->init == GV_INIT_ZEROS || p->init == GV_INIT_ONES) {
        float v = p->init == GV_INIT_ONES ? 1.0f : 0.0f;
        for (int64_t j = 0; j < n; ++j) host[j] = v;
        return GV_OK;
    }
    gv_rng_addr addr = {.node = (uint32_t)index, .purpose = GV_RNG_PURPOSE_DEFAULT};
    gv_philox_args args;
    gv_status s = gv_rng_args(seed, GV_RNG_STREAM_INIT, &addr, 0, n, &args);
    if (s != GV_OK) {
        gv_error_prefix("initialising parameter '%s' (index %d)", p->name, index);
        return s;
    }
    float bound = 0.0f; /* U(-b, b), b = scale / sqrt(fan_in), fan_in = numel / d[0] */
    if (p->init == GV_INIT_UNIFORM_FANIN) {
        int64_t fan_in = p->shape.rank > 0 ? n / p->shape.d[0] : 1;
        bound = (float)((double)p->init_scale / sqrt((double)fan_in));
    }
    const int64_t nchunks = (n + GV_INIT_CHUNK - 1) / GV_INIT_CHUNK;
    const int threads = gv_resolve_threads(0);
    /* chunks are independent Philox ranges of one address: any split gives the same values */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t ch = 0; ch < nchunks; ++ch) {
        gv_philox_args part = args;
        int64_t lo = ch * GV_INIT_CHUNK;
        part.offset = (uint64_t)lo;
        part.n = n - lo < GV_INIT_CHUNK ? n - lo : GV_INIT_CHUNK;
        float *dst = host + lo;
        if (p->init == GV_INIT_NORMAL) {
            (void)gv_rng_normal_fill_host(dst, &part); /* range checked above */
            for (int64_t j = 0; j < part.n; ++j) dst[j] = p->init_scale * dst[j];
        } else {
            (void)gv_rng_uniform_fill_host(dst, &part);
            for (int64_t j = 0; j < part.n; ++j) {
                float two_u = 2.0f * dst[j];
                float sym = two_u - 1.0f; /* exact: in (-1, 1) */
                dst[j] = bound * sym;
            }
        }
    }
    return GV_OK;
}

gv_status gv_params_initialize(gv_params *ps, uint32_t seed) {
    if (!ps->allocated)
        return GV_ERROR(GV_ERR_INVALID, "parameter table initialised before allocation");
    int64_t max_numel = 0;
    for (int i = 0; i < ps->count; ++i)
        if (ps->items[i].numel > max_numel) max_numel = ps->items[i].numel;
    float *host = malloc((size_t)(max_numel > 0 ? max_numel : 1) * sizeof(float));
    if (!host)
        return GV_ERROR(GV_ERR_OOM, "parameter init: cannot allocate a %lld-float host buffer",
                        (long long)max_numel);
    gv_status s = GV_OK;
    for (int i = 0; i < ps->count && s == GV_OK; ++i) {
        gv_param *p = &ps->items[i];
        s = init_values_host(p, i, seed, host);
        if (s == GV_OK)
            s = ps->backend->copy_from_host(p->value, host, (size_t)p->numel * sizeof(float));
    }
    free(host);
    GV_TRY(s);
    size_t bytes = (size_t)ps->total * sizeof(float);
    GV_TRY(ps->backend->memset_zero(ps->grads, bytes));
    GV_TRY(ps->backend->memset_zero(ps->adam_m, bytes));
    GV_TRY(ps->backend->memset_zero(ps->adam_v, bytes));
    if (ps->ema) GV_TRY(ps->backend->copy(ps->ema, ps->values, bytes));
    return GV_OK;
}

void gv_params_free(gv_params *ps) {
    free_buffers(ps);
    free(ps->items);
    const gv_backend *backend = ps->backend;
    memset(ps, 0, sizeof *ps);
    ps->backend = backend;
}

gv_param *gv_params_at(gv_params *ps, int index) {
    return index >= 0 && index < ps->count ? &ps->items[index] : NULL;
}

gv_param *gv_params_find(gv_params *ps, const char *name) {
    for (int i = 0; i < ps->count; ++i)
        if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

gv_status gv_params_zero_grads(gv_params *ps) {
    if (!ps->allocated) return GV_ERROR(GV_ERR_INVALID, "zeroing gradients of an unallocated table");
    return ps->backend->memset_zero(ps->grads, (size_t)ps->total * sizeof(float));
}

/* ---- model hash: FNV-1a 64 ------------------------------------------------------------------- */

/* Per parameter, in index order: name bytes and a 0 byte, rank (4 bytes), each dim (8 bytes),
   then every value's IEEE bits (4 bytes each, little-endian). */
gv_status gv_params_hash_host(const gv_params *ps, const float *host_values, uint64_t *out) {
    uint64_t h = GV_FNV1A64_INIT;
    for (int i = 0; i < ps->count; ++i) {
        const gv_param *p = &ps->items[i];
        h = gv_fnv1a64(h, p->name, strlen(p->name) + 1);
        h = gv_fnv1a64_le(h, (uint64_t)(uint32_t)p->shape.rank, 4);
        for (int k = 0; k < p->shape.rank; ++k) h = gv_fnv1a64_le(h, (uint64_t)p->shape.d[k], 8);
        const float *v = host_values + p->offset;
        for (int64_t j = 0; j < p->numel; ++j) {
            uint32_t bits;
            memcpy(&bits, &v[j], sizeof bits);
            h = gv_fnv1a64_le(h, bits, 4);
        }
    }
    *out = h;
    return GV_OK;
}

gv_status gv_params_hash(const gv_params *ps, uint64_t *out) {
    if (!ps->allocated) return GV_ERROR(GV_ERR_INVALID, "hashing an unallocated parameter table");
    size_t bytes = (size_t)(ps->total > 0 ? ps->total : 1) * sizeof(float);
    float *host = malloc(bytes);
    if (!host)
        return GV_ERROR(GV_ERR_OOM, "parameter hash: cannot allocate %zu bytes of host staging",
                        bytes);
    gv_status s = ps->backend->copy_to_host(host, ps->values, (size_t)ps->total * sizeof(float));
    if (s == GV_OK) s = gv_params_hash_host(ps, host, out);
    free(host);
    return s;
}
