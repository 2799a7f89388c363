/* Tests of the RNG (philox.h, rng.h, kernels/cpu/philox_fill.c): Philox4x32-10 known answers and
 * an oracle comparison with Random123, the uniform mapping, grove's own log / sincos against libm
 * in double, Box–Muller layout and moments, batch-split and thread-count independence of fills,
 * and address packing errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

#include "grove/kernels_cpu.h"
#include "grove/philox.h"
#include "grove/rng.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void random123_philox10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    philox4x32_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    philox4x32_key_t k = {{key[0], key[1]}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    memcpy(out, r.v, 4 * sizeof(uint32_t));
}

/* ---- Philox ---------------------------------------------------------------------------------- */

Test(philox, known_answer_vectors) {
    /* Random123 kat_vectors, philox4x32 10 rounds */
    const struct {
        uint32_t ctr[4], key[2], expect[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; ++t) {
        uint32_t ours[4], lib[4];
        gv_philox4x32_10(kat[t].ctr, kat[t].key, ours);
        random123_philox10(kat[t].ctr, kat[t].key, lib);
        for (int i = 0; i < 4; ++i) {
            cr_assert_eq(lib[i], kat[t].expect[i], "Random123 kat %zu word %d: %08x != %08x", t, i,
                         lib[i], kat[t].expect[i]);
            cr_assert_eq(ours[i], kat[t].expect[i], "grove kat %zu word %d: %08x != %08x", t, i,
                         ours[i], kat[t].expect[i]);
        }
    }
}

Test(philox, matches_random123_on_random_inputs) {
    uint64_t s = 12345;
    for (int t = 0; t < 200000; ++t) {
        uint64_t a = splitmix64(&s), b = splitmix64(&s), k = splitmix64(&s);
        uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
        uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
        uint32_t ours[4], lib[4];
        gv_philox4x32_10(ctr, key, ours);
        random123_philox10(ctr, key, lib);
        cr_assert(memcmp(ours, lib, sizeof ours) == 0, "mismatch at trial %d", t);
    }
}

Test(philox, uniform_is_open_interval) {
    float lo = gv_philox_uniform(0u), hi = gv_philox_uniform(0xffffffffu);
    cr_assert(lo == 0x1p-24f, "smallest uniform %a", (double)lo);
    cr_assert(hi == 1.0f - 0x1p-24f, "largest uniform %a", (double)hi);
    cr_assert(lo > 0.0f && hi < 1.0f);
    /* monotone in the top 23 bits, constant in the low 9 */
    cr_assert(gv_philox_uniform(0x1ffu) == lo);
    cr_assert(gv_philox_uniform(0x200u) > lo);
}

/* ---- own log / sincos vs libm in double -------------------------------------------------------- */

static double rel_err(double got, double ref) {
    if (ref == 0.0) return got == 0.0 ? 0.0 : INFINITY;
    return fabs(got - ref) / fabs(ref);
}

Test(philox_math, log_accuracy_over_unit_interval) {
    double worst = 0.0;
    float worst_x = 0.0f;
    /* every value the uniform can produce (the domain Box–Muller uses) */
    for (uint32_t m = 0; m < (1u << 23); ++m) {
        float x = gv_philox_uniform(m << 9);
        double e = rel_err((double)gv_logf(x), log((double)x));
        if (e > worst) worst = e, worst_x = x;
    }
    /* random floats over (0, 1], subnormals included, and 1 itself */
    uint64_t s = 99;
    for (int t = 0; t < 1000000; ++t) {
        uint32_t bits = 1u + (uint32_t)(splitmix64(&s) % 0x3f800000u); /* (0, 1] */
        float x;
        memcpy(&x, &bits, sizeof x);
        double e = rel_err((double)gv_logf(x), log((double)x));
        if (e > worst) worst = e, worst_x = x;
    }
    cr_assert(gv_logf(1.0f) == 0.0f);
    cr_assert(worst < 4e-7, "log max relative error %.3g at x = %a", worst, (double)worst_x);
    cr_assert(isinf(gv_logf(0.0f)) && gv_logf(0.0f) < 0.0f);
    cr_assert(isnan(gv_logf(-1.0f)));
}

Test(philox_math, sincos_2pi_accuracy) {
    const double two_pi = 6.283185307179586476925286766559;
    double worst_s = 0.0, worst_c = 0.0;
    float at_s = 0.0f, at_c = 0.0f;
    uint64_t seed = 7;
    for (uint32_t t = 0; t < (1u << 23) + 1000000u; ++t) {
        float u;
        if (t < (1u << 23)) {
            u = gv_philox_uniform(t << 9); /* the whole Box–Muller domain */
        } else {
            /* normal floats in (0, 1): for subnormal u, sin(2πu) has no relative accuracy to
               give (and Box–Muller never sees u < 2^-24) */
            uint32_t bits = 0x00800000u + (uint32_t)(splitmix64(&seed) % (0x3f800000u - 0x00800000u));
            memcpy(&u, &bits, sizeof u);
        }
        float s, c;
        gv_sincos_2pi(u, &s, &c);
        double es = rel_err((double)s, sin(two_pi * (double)u));
        double ec = rel_err((double)c, cos(two_pi * (double)u));
        if (es > worst_s) worst_s = es, at_s = u;
        if (ec > worst_c) worst_c = ec, at_c = u;
    }
    cr_assert(worst_s < 4e-7, "sin(2πu) max relative error %.3g at u = %a", worst_s, (double)at_s);
    cr_assert(worst_c < 4e-7, "cos(2πu) max relative error %.3g at u = %a", worst_c, (double)at_c);
}

/* ---- normals --------------------------------------------------------------------------------- */

Test(normal, element_layout_is_the_documented_box_muller) {
    const uint32_t key[2] = {42, GV_RNG_STREAM_SAMPLER}, hi[3] = {0x01000003u, 0x00020001u, 7u};
    for (uint64_t e = 0; e < 4000; ++e) {
        uint32_t ctr[4] = {(uint32_t)(e / 4), hi[0], hi[1], hi[2]}, w[4];
        random123_philox10(ctr, key, w);
        int lane = (int)(e % 4), pair = lane / 2;
        float l = gv_logf(gv_philox_uniform(w[2 * pair]));
        float r = sqrtf(-2.0f * l);
        float s, c;
        gv_sincos_2pi(gv_philox_uniform(w[2 * pair + 1]), &s, &c);
        float expect = r * ((lane & 1) ? s : c);
        float got = gv_rng_normal_at(key, hi, e);
        cr_assert(memcmp(&got, &expect, sizeof got) == 0, "element %llu: %a != %a",
                  (unsigned long long)e, (double)got, (double)expect);
    }
}

Test(normal, moments_of_a_million) {
    const int64_t n = 1000000;
    float *z = malloc((size_t)n * sizeof *z);
    cr_assert(z);
    gv_rng_addr addr = {.iteration = 3, .slot = 1, .node = 5, .step = 2, .purpose = 2};
    gv_philox_args a;
    cr_assert_eq(gv_rng_args(2024, GV_RNG_STREAM_SAMPLER, &addr, 0, n, &a), GV_OK);
    cr_assert_eq(gv_rng_normal_fill_host(z, &a), GV_OK);
    double s1 = 0, s2 = 0, s4 = 0, zmax = 0;
    for (int64_t i = 0; i < n; ++i) {
        double x = z[i];
        s1 += x;
        if (fabs(x) > zmax) zmax = fabs(x);
    }
    double mean = s1 / (double)n;
    for (int64_t i = 0; i < n; ++i) {
        double d = z[i] - mean;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    double var = s2 / (double)n, kurt = (s4 / (double)n) / (var * var);
    free(z);
    /* standard errors at n = 1e6: mean 1e-3, var 1.4e-3, kurtosis 4.9e-3 */
    cr_assert(fabs(mean) < 5e-3, "mean %g", mean);
    cr_assert(fabs(var - 1.0) < 7e-3, "variance %g", var);
    cr_assert(fabs(kurt - 3.0) < 3e-2, "kurtosis %g", kurt);
    cr_assert(zmax > 4.0 && zmax <= 5.78, "max |z| %g (tail bound sqrt(-2 log 2^-24) = 5.77)", zmax);
}

Test(normal, fill_is_independent_of_batch_split) {
    const int64_t n = 1001;
    float whole[1001], parts[1001];
    gv_rng_addr addr = {.iteration = 9, .node = 77, .step = 4, .purpose = GV_RNG_PURPOSE_STEP_NOISE};
    for (uint64_t base = 0; base < 3; ++base) { /* offsets 0, 1, 2: unaligned to Philox blocks */
        gv_philox_args a;
        cr_assert_eq(gv_rng_args(1, GV_RNG_STREAM_SAMPLER, &addr, base, n, &a), GV_OK);
        cr_assert_eq(gv_rng_normal_fill_host(whole, &a), GV_OK);
        for (int64_t i = 0; i < n; ++i) {
            float at = gv_rng_normal_at(a.key, a.ctr_hi, base + (uint64_t)i);
            cr_assert(memcmp(&at, &whole[i], sizeof at) == 0, "normal_at != fill at %lld", (long long)i);
        }
        const int64_t ks[] = {1, 3, 5, 7, 501, 999};
        for (size_t t = 0; t < sizeof ks / sizeof ks[0]; ++t) {
            int64_t k = ks[t];
            gv_philox_args first = a, second = a;
            first.n = k;
            second.offset = base + (uint64_t)k;
            second.n = n - k;
            cr_assert_eq(gv_rng_normal_fill_host(parts, &first), GV_OK);
            cr_assert_eq(gv_rng_normal_fill_host(parts + k, &second), GV_OK);
            cr_assert(memcmp(whole, parts, sizeof whole) == 0, "split at k = %lld differs", (long long)k);
        }
    }
}

Test(normal, cpu_op_equals_host_fill_at_threads_1_and_2) {
    const int64_t n = 100003;
    float *host = malloc((size_t)n * sizeof(float)), *dev = malloc((size_t)n * sizeof(float));
    cr_assert(host && dev);
    gv_rng_addr addr = {.iteration = 1, .slot = 3, .node = 12, .purpose = GV_RNG_PURPOSE_LATENT};
    gv_philox_args a;
    cr_assert_eq(gv_rng_args(5, GV_RNG_STREAM_SAMPLER, &addr, 3, n, &a), GV_OK);
    cr_assert_eq(gv_rng_normal_fill_host(host, &a), GV_OK);
    const gv_backend *be = grove_backend_cpu();
    for (int threads = 1; threads <= 2; ++threads) {
        gv_ctx *ctx = NULL;
        cr_assert_eq(be->ctx_create(&(gv_ctx_options){.threads = threads, .use_fast = 0}, &ctx), GV_OK);
        memset(dev, 0xff, (size_t)n * sizeof(float));
        cr_assert_eq(be->ops->philox_normal_fill(ctx, dev, &a), GV_OK, "%s", gv_last_error());
        cr_assert(memcmp(host, dev, (size_t)n * sizeof(float)) == 0, "threads %d differ", threads);
        be->ctx_destroy(ctx);
    }
    free(host);
    free(dev);
}

Test(uniform, fill_matches_at_and_moments) {
    const int64_t n = 200001;
    float *u = malloc((size_t)n * sizeof *u);
    cr_assert(u);
    gv_rng_addr addr = {.purpose = GV_RNG_PURPOSE_SHUFFLE};
    gv_philox_args a;
    cr_assert_eq(gv_rng_args(11, GV_RNG_STREAM_DATA, &addr, 1, n, &a), GV_OK);
    cr_assert_eq(gv_rng_uniform_fill_host(u, &a), GV_OK);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
        cr_assert(u[i] > 0.0f && u[i] < 1.0f);
        float at = gv_rng_uniform_at(a.key, a.ctr_hi, 1 + (uint64_t)i);
        cr_assert(at == u[i], "uniform_at != fill at %lld", (long long)i);
        s += u[i];
    }
    free(u);
    cr_assert(fabs(s / (double)n - 0.5) < 3e-3, "uniform mean %g", s / (double)n);
}

/* ---- addresses ------------------------------------------------------------------------------- */

static void expect_pack_error(gv_rng_addr a, const char *field) {
    uint32_t hi[3] = {1, 2, 3};
    cr_assert_eq(gv_rng_addr_pack(&a, hi), GV_ERR_INVALID, "field %s did not overflow", field);
    cr_assert(strstr(gv_last_error(), field), "message '%s' does not name '%s'", gv_last_error(), field);
    cr_assert(hi[0] == 1 && hi[1] == 2 && hi[2] == 3, "ctr_hi changed on error");
}

Test(address, overflow_names_the_field) {
    expect_pack_error((gv_rng_addr){.step = 256}, "step");
    expect_pack_error((gv_rng_addr){.node = 1u << 24}, "node");
    expect_pack_error((gv_rng_addr){.slot = 1u << 16}, "slot");
    expect_pack_error((gv_rng_addr){.purpose = 1u << 16}, "purpose");
    gv_philox_args a = {.n = 5, .offset = GV_RNG_MAX_ELEMENTS - 4};
    cr_assert_eq(gv_rng_check_range(&a), GV_ERR_INVALID);
    cr_assert(strstr(gv_last_error(), "element"), "%s", gv_last_error());
    a.n = 4;
    cr_assert_eq(gv_rng_check_range(&a), GV_OK);
    a.n = -1;
    a.offset = 0;
    cr_assert_eq(gv_rng_check_range(&a), GV_ERR_INVALID);
}

Test(address, pack_layout_and_round_trip) {
    gv_rng_addr max = {.iteration = 0xffffffffu, .slot = 0xffff, .node = 0xffffff, .step = 0xff,
                       .purpose = 0xffff};
    gv_rng_addr a = {.iteration = 0x12345678u, .slot = 0xabc, .node = 0x123456, .step = 0x9a,
                     .purpose = 0x42};
    uint32_t hi[3];
    cr_assert_eq(gv_rng_addr_pack(&max, hi), GV_OK);
    cr_assert(hi[0] == 0xffffffffu && hi[1] == 0xffffffffu && hi[2] == 0xffffffffu);
    cr_assert_eq(gv_rng_addr_pack(&a, hi), GV_OK);
    cr_assert_eq(hi[0], 0x9a123456u); /* step << 24 | node    */
    cr_assert_eq(hi[1], 0x0abc0042u); /* slot << 16 | purpose */
    cr_assert_eq(hi[2], 0x12345678u); /* iteration            */
    gv_rng_addr back;
    gv_rng_addr_unpack(hi, &back);
    cr_assert(memcmp(&a, &back, sizeof a) == 0);
    /* each field changes the noise */
    uint32_t key[2];
    gv_rng_key(1, GV_RNG_STREAM_SAMPLER, key);
    float ref = gv_rng_normal_at(key, hi, 10);
    for (int f = 0; f < 5; ++f) {
        gv_rng_addr b = a;
        uint32_t *field[] = {&b.iteration, &b.slot, &b.node, &b.step, &b.purpose};
        *field[f] ^= 1u;
        uint32_t hb[3];
        cr_assert_eq(gv_rng_addr_pack(&b, hb), GV_OK);
        cr_assert(gv_rng_normal_at(key, hb, 10) != ref, "field %d does not change the value", f);
    }
    key[1] = GV_RNG_STREAM_DATA;
    cr_assert(gv_rng_normal_at(key, hi, 10) != ref, "stream does not change the value");
}
