/* Tests of the parameter table (params.h): aligned offsets and views into the flat buffers,
 * duplicate names, deterministic Philox initialisation (independent of thread count and of the
 * other declarations), uniform_fanin bounds, and the model hash. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/params.h"
#include "grove/rng.h"

static gv_shape shape2(int64_t a, int64_t b) { return gv_shape_make(2, (int64_t[]){a, b}); }
static gv_shape shape1(int64_t a) { return gv_shape_make(1, (int64_t[]){a}); }
static gv_shape shape4(int64_t a, int64_t b, int64_t c, int64_t d) {
    return gv_shape_make(4, (int64_t[]){a, b, c, d});
}

/* A small model: conv weight, bias, norm gain, linear weight. */
static void declare_model(gv_params *ps) {
    int idx;
    cr_assert_eq(gv_params_declare(ps, "conv.weight", shape4(8, 3, 3, 3), GV_INIT_UNIFORM_FANIN,
                                   1.0f, 1, &idx), GV_OK);
    cr_assert_eq(idx, 0);
    cr_assert_eq(gv_params_declare(ps, "conv.bias", shape1(8), GV_INIT_ZEROS, 0.0f, 0, &idx), GV_OK);
    cr_assert_eq(gv_params_declare(ps, "norm.gamma", shape1(5), GV_INIT_ONES, 0.0f, 0, &idx), GV_OK);
    cr_assert_eq(gv_params_declare(ps, "head.weight", shape2(37, 129), GV_INIT_NORMAL, 0.02f, 1,
                                   &idx), GV_OK);
    cr_assert_eq(idx, 3);
}

static float *host_copy(const gv_params *ps, const float *src, int64_t n) {
    float *h = malloc((size_t)n * sizeof(float));
    cr_assert(h);
    cr_assert_eq(ps->backend->copy_to_host(h, src, (size_t)n * sizeof(float)), GV_OK);
    return h;
}

Test(params, offsets_aligned_and_views_into_flat_buffers) {
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    declare_model(&ps);
    cr_assert_eq(gv_params_allocate(&ps, 1), GV_OK);
    int64_t end = 0;
    for (int i = 0; i < ps.count; ++i) {
        gv_param *p = gv_params_at(&ps, i);
        cr_assert_eq(p->offset % 16, 0, "'%s' offset %lld", p->name, (long long)p->offset);
        cr_assert(p->offset >= end, "'%s' overlaps its predecessor", p->name);
        end = p->offset + p->numel;
        cr_assert_eq(p->numel, gv_shape_numel(&p->shape));
        cr_assert_eq(p->value, ps.values + p->offset);
        cr_assert_eq(p->grad, ps.grads + p->offset);
        cr_assert_eq(p->adam_m, ps.adam_m + p->offset);
        cr_assert_eq(p->adam_v, ps.adam_v + p->offset);
        cr_assert_eq(p->ema, ps.ema + p->offset);
        cr_assert_eq((uintptr_t)p->value % 64, 0);
    }
    cr_assert(ps.total >= end && ps.total % 16 == 0);
    cr_assert_eq(gv_params_find(&ps, "norm.gamma"), gv_params_at(&ps, 2));
    cr_assert_null(gv_params_find(&ps, "nope"));
    cr_assert_null(gv_params_at(&ps, 4));
    /* buffers start zeroed */
    float *g = host_copy(&ps, ps.grads, ps.total);
    for (int64_t i = 0; i < ps.total; ++i) cr_assert(g[i] == 0.0f);
    free(g);
    /* the table is closed after allocation */
    cr_assert_eq(gv_params_declare(&ps, "late", shape1(2), GV_INIT_ZEROS, 0, 0, NULL), GV_ERR_INVALID);
    gv_params_free(&ps);
}

Test(params, duplicate_name_is_an_error) {
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    cr_assert_eq(gv_params_declare(&ps, "a.weight", shape1(3), GV_INIT_ZEROS, 0, 0, NULL), GV_OK);
    cr_assert_eq(gv_params_declare(&ps, "a.weight", shape1(4), GV_INIT_ONES, 0, 0, NULL),
                 GV_ERR_INVALID);
    cr_assert(strstr(gv_last_error(), "a.weight"), "%s", gv_last_error());
    cr_assert_eq(ps.count, 1);
    cr_assert_eq(gv_params_declare(&ps, "bad", shape2(3, 0), GV_INIT_ZEROS, 0, 0, NULL),
                 GV_ERR_INVALID);
    gv_params_free(&ps);
}

static uint64_t init_and_hash(uint32_t seed, const char *threads, int with_ema) {
    setenv("GROVE_THREADS", threads, 1);
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    declare_model(&ps);
    /* a large parameter spans many init chunks, so threads really split it */
    cr_assert_eq(gv_params_declare(&ps, "big", shape2(64, 1000), GV_INIT_NORMAL, 1.0f, 1, NULL),
                 GV_OK);
    cr_assert_eq(gv_params_allocate(&ps, with_ema), GV_OK);
    cr_assert_eq(gv_params_initialize(&ps, seed), GV_OK, "%s", gv_last_error());
    uint64_t h;
    cr_assert_eq(gv_params_hash(&ps, &h), GV_OK);
    gv_params_free(&ps);
    return h;
}

Test(params, init_is_deterministic_across_thread_counts) {
    uint64_t h1 = init_and_hash(7, "1", 0), h2 = init_and_hash(7, "2", 0);
    cr_assert_eq(h1, h2, "thread count changed the initial values");
    cr_assert_eq(init_and_hash(7, "2", 1), h1);
    cr_assert_neq(init_and_hash(8, "2", 0), h1, "seed does not change the values");
}

Test(params, init_values_follow_the_rng_address) {
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    declare_model(&ps);
    cr_assert_eq(gv_params_allocate(&ps, 1), GV_OK);
    cr_assert_eq(gv_params_initialize(&ps, 3), GV_OK);
    /* head.weight (index 3) = 0.02 * normal at (seed 3, stream INIT, node 3, element j) */
    gv_param *head = gv_params_find(&ps, "head.weight");
    float *v = host_copy(&ps, head->value, head->numel);
    gv_rng_addr addr = {.node = 3};
    gv_philox_args a;
    cr_assert_eq(gv_rng_args(3, GV_RNG_STREAM_INIT, &addr, 0, head->numel, &a), GV_OK);
    for (int64_t j = 0; j < head->numel; ++j) {
        float expect = 0.02f * gv_rng_normal_at(a.key, a.ctr_hi, (uint64_t)j);
        cr_assert(v[j] == expect, "head.weight[%lld] %g != %g", (long long)j, (double)v[j],
                  (double)expect);
    }
    free(v);
    /* zeros, ones; EMA is a copy of the values */
    float *b = host_copy(&ps, gv_params_find(&ps, "conv.bias")->value, 8);
    float *g = host_copy(&ps, gv_params_find(&ps, "norm.gamma")->value, 5);
    for (int i = 0; i < 8; ++i) cr_assert(b[i] == 0.0f);
    for (int i = 0; i < 5; ++i) cr_assert(g[i] == 1.0f);
    free(b);
    free(g);
    float *vals = host_copy(&ps, ps.values, ps.total), *ema = host_copy(&ps, ps.ema, ps.total);
    cr_assert(memcmp(vals, ema, (size_t)ps.total * sizeof(float)) == 0);
    free(vals);
    free(ema);
    gv_params_free(&ps);
}

Test(params, uniform_fanin_bounds) {
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    /* fan_in = numel / d[0] = 16 * 3 * 3 = 144, b = 0.6 / 12 = 0.05 */
    cr_assert_eq(gv_params_declare(&ps, "w", shape4(32, 16, 3, 3), GV_INIT_UNIFORM_FANIN, 0.6f, 1,
                                   NULL), GV_OK);
    cr_assert_eq(gv_params_allocate(&ps, 0), GV_OK);
    cr_assert_eq(gv_params_initialize(&ps, 1), GV_OK);
    gv_param *w = gv_params_at(&ps, 0);
    float *v = host_copy(&ps, w->value, w->numel);
    const float b = (float)(0.6 / 12.0);
    float lo = 1, hi = -1;
    double mean = 0;
    for (int64_t i = 0; i < w->numel; ++i) {
        cr_assert(v[i] > -b && v[i] < b, "w[%lld] = %g outside (-%g, %g)", (long long)i,
                  (double)v[i], (double)b, (double)b);
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
        mean += v[i];
    }
    mean /= (double)w->numel;
    /* 4608 samples: the extremes come within 1% of the bound, the mean is near 0 */
    cr_assert(lo < -0.99f * b && hi > 0.99f * b, "range [%g, %g] vs bound %g", (double)lo,
              (double)hi, (double)b);
    cr_assert(fabs(mean) < 0.003, "mean %g", mean);
    free(v);
    gv_params_free(&ps);
}

Test(params, hash_changes_when_one_value_changes) {
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    declare_model(&ps);
    cr_assert_eq(gv_params_allocate(&ps, 0), GV_OK);
    cr_assert_eq(gv_params_initialize(&ps, 11), GV_OK);
    uint64_t h0, h1, h2;
    cr_assert_eq(gv_params_hash(&ps, &h0), GV_OK);
    cr_assert_eq(gv_params_hash(&ps, &h1), GV_OK);
    cr_assert_eq(h0, h1);
    gv_param *p = gv_params_find(&ps, "head.weight");
    float x;
    cr_assert_eq(ps.backend->copy_to_host(&x, p->value + 100, sizeof x), GV_OK);
    x = nextafterf(x, INFINITY); /* one ulp */
    cr_assert_eq(ps.backend->copy_from_host(p->value + 100, &x, sizeof x), GV_OK);
    cr_assert_eq(gv_params_hash(&ps, &h2), GV_OK);
    cr_assert_neq(h0, h2, "one-ulp change not seen by the hash");
    gv_params_free(&ps);

    /* same values, different name: different hash */
    gv_params qs;
    gv_params_init(&qs, grove_backend_cpu());
    cr_assert_eq(gv_params_declare(&qs, "a", shape1(4), GV_INIT_ONES, 0, 0, NULL), GV_OK);
    cr_assert_eq(gv_params_allocate(&qs, 0), GV_OK);
    cr_assert_eq(gv_params_initialize(&qs, 1), GV_OK);
    cr_assert_eq(gv_params_hash(&qs, &h1), GV_OK);
    gv_params_free(&qs);
    gv_params_init(&qs, grove_backend_cpu());
    cr_assert_eq(gv_params_declare(&qs, "b", shape1(4), GV_INIT_ONES, 0, 0, NULL), GV_OK);
    cr_assert_eq(gv_params_allocate(&qs, 0), GV_OK);
    cr_assert_eq(gv_params_initialize(&qs, 1), GV_OK);
    cr_assert_eq(gv_params_hash(&qs, &h2), GV_OK);
    cr_assert_neq(h1, h2);
    gv_params_free(&qs);
}
