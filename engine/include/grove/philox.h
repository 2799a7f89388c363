/* Philox4x32-10 and the normals grove draws from it, compiled identically for host and device.
 *
 * Everything here is GV_HD (grove/hd.h): static inline, integer arithmetic plus contraction-free
 * float arithmetic (every multiply and add is its own statement; no libm call except sqrtf and
 * floorf, which IEEE 754 requires to be exact / correctly rounded on host and device alike). So the
 * CPU fill (kernels/cpu/philox_fill.c), the host API (rng.h) and the CUDA fill produce bitwise-equal
 * noise (DESIGN.md §3, RNG). Deliberately not here: the counter address layout and streams (rng.h).
 *
 *   Philox4x32-10      Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11;
 *                      bitwise equal to Random123's philox4x32_R(10, ctr, key) (tests/cpu/test_rng.c).
 *   uniform            u = ((x >> 9) + 0.5) * 2^-23  in [2^-24, 1 - 2^-24]: never 0 or 1.
 *                      (A 24-bit variant ((x >> 8) + 0.5) * 2^-24 would round its top value to 1.0f,
 *                      since 2^24 - 0.5 needs 25 significant bits.)
 *   normal (Box–Muller) element e of an address uses Philox block b = e / 4:
 *                      ctr = (b, ctr_hi[0], ctr_hi[1], ctr_hi[2]), out = philox(ctr, key),
 *                      u_i = uniform(out[i]);
 *                      r01 = sqrt(-2 log u0),  r23 = sqrt(-2 log u2)
 *                      e%4 == 0: r01 * cos(2π u1)    e%4 == 1: r01 * sin(2π u1)
 *                      e%4 == 2: r23 * cos(2π u3)    e%4 == 3: r23 * sin(2π u3)
 *                      The value of an element depends only on (key, ctr_hi, e), never on how a
 *                      fill is split into batches or threads. Since b is a 32-bit word, e < 2^34.
 *                      |z| <= sqrt(-2 log 2^-24) ≈ 5.77 (the uniform's smallest value).
 *   log, sin/cos       grove's own float log (fdlibm-style reduction to [√2/2, √2) and an atanh
 *                      series) and sincos in turns (exact reduction to r = u - q/4, |r| <= 1/8, then
 *                      Taylor polynomials in x = 2π r); both within a few ulp of the true value. */
#ifndef GROVE_PHILOX_H
#define GROVE_PHILOX_H

#include <math.h>
#include <stdint.h>
#if !defined(__CUDA_ARCH__)
#include <string.h>
#endif

#include "grove/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Philox4x32-10 --------------------------------------------------------------------------- */

#define GV_PHILOX_M0 0xD2511F53u /* round multipliers (Random123 PHILOX_M4x32_0/1) */
#define GV_PHILOX_M1 0xCD9E8D57u
#define GV_PHILOX_W0 0x9E3779B9u /* key schedule increments (golden ratio, sqrt(3)-1) */
#define GV_PHILOX_W1 0xBB67AE85u
#define GV_PHILOX_ROUNDS 10

/* One Philox round on ctr (4 words) with round key key (2 words), in place. */
GV_HD void gv_philox4x32_round(uint32_t ctr[4], const uint32_t key[2]) {
    uint64_t p0 = (uint64_t)GV_PHILOX_M0 * (uint64_t)ctr[0];
    uint64_t p1 = (uint64_t)GV_PHILOX_M1 * (uint64_t)ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = ctr[1], c3 = ctr[3];
    ctr[0] = hi1 ^ c1 ^ key[0];
    ctr[1] = lo1;
    ctr[2] = hi0 ^ c3 ^ key[1];
    ctr[3] = lo0;
}

/* out (4) = Philox4x32-10(ctr (4), key (2)); the key is bumped by (W0, W1) between rounds. */
GV_HD void gv_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < GV_PHILOX_ROUNDS; ++r) {
        if (r > 0) {
            k[0] += GV_PHILOX_W0;
            k[1] += GV_PHILOX_W1;
        }
        gv_philox4x32_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* ---- uniforms -------------------------------------------------------------------------------- */

/* u in [2^-24, 1 - 2^-24], 2^23 equally spaced values: ((x >> 9) + 0.5) * 2^-23. Both steps are
   exact in float (23-bit integer + 0.5 fits the 24-bit significand; scaling by a power of two). */
GV_HD float gv_philox_uniform(uint32_t x) {
    float m = (float)(x >> 9);
    float h = m + 0.5f;
    return h * 0x1p-23f;
}

/* ---- float bit access (host: memcpy; device: intrinsics) ------------------------------------- */

GV_HD uint32_t gv_float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

GV_HD float gv_bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* ---- log ------------------------------------------------------------------------------------- */

/* Natural log of a float, < 1 ulp in the fdlibm analysis (e_logf.c): x = 2^k * m with
   m in [√2/2, √2), f = m - 1 (exact), s = f / (2 + f), log(1+f) = f - f²/2 + s(f²/2 + R(s²)),
   R a minimax fit of (log(1+s)-log(1-s))/s - 2 (|error| < 2^-34.24), log x = k·ln2 + log(1+f) with
   ln2 split into hi and lo parts (k·ln2_hi is exact for the uniforms here, k >= -24).
   x = 0 gives -inf, x < 0 or NaN gives NaN, +inf gives +inf. */
GV_HD float gv_logf(float x) {
    const float ln2_hi = 6.9313812256e-01f; /* 0x3f317180 */
    const float ln2_lo = 9.0580006145e-06f; /* 0x3717f7d1 */
    const float Lg1 = 0.66666662693f;       /* 0xaaaaaa.0p-24 */
    const float Lg2 = 0.40000972152f;       /* 0xccce13.0p-25 */
    const float Lg3 = 0.28498786688f;       /* 0x91e9ee.0p-25 */
    const float Lg4 = 0.24279078841f;       /* 0xf89e26.0p-26 */
    uint32_t ix = gv_float_to_bits(x);
    int k = 0;
    if (ix >= 0x7f800000u) { /* negative (sign bit), inf or NaN */
        if ((ix & 0x7fffffffu) == 0) return -INFINITY; /* -0 */
        if (ix == 0x7f800000u) return x;                  /* +inf */
        return NAN;                                       /* NaN */
    }
    if (ix < 0x00800000u) { /* +0 or subnormal */
        if (ix == 0) return -INFINITY;
        k -= 25;
        float scaled = x * 0x1p25f; /* exact: now normal */
        ix = gv_float_to_bits(scaled);
    }
    /* reduce to m in [√2/2, √2): add the offset that moves √2/2's exponent boundary to 1 */
    ix += 0x3f800000u - 0x3f3504f3u;
    k += (int)(ix >> 23) - 0x7f;
    ix = (ix & 0x007fffffu) + 0x3f3504f3u;
    float m = gv_bits_to_float(ix);

    float f = m - 1.0f;
    float two_f = 2.0f + f;
    float s = f / two_f;
    float z = s * s;
    float w = z * z;
    /* R = z (Lg1 + w Lg3) + w (Lg2 + w Lg4), each product its own statement */
    float t = w * Lg4;
    t = Lg2 + t;
    float t1 = w * t;
    t = w * Lg3;
    t = Lg1 + t;
    float t2 = z * t;
    float R = t2 + t1;
    float hfsq = f * f;
    hfsq = 0.5f * hfsq;
    float dk = (float)k;
    /* log = s (hfsq + R) + k ln2_lo - hfsq + f + k ln2_hi, summed in fdlibm's order */
    float a = hfsq + R;
    a = s * a;
    float b = dk * ln2_lo;
    a = a + b;
    a = a - hfsq;
    a = a + f;
    b = dk * ln2_hi;
    return a + b;
}

/* ---- sin / cos of 2π u ----------------------------------------------------------------------- */

/* sin(x) and cos(x) for |x| <= π/4 + tiny: Taylor series to x^13 / x^12 (truncation < 1e-11). */
GV_HD void gv_sincos_kernel_(float x, float *s, float *c) {
    const float S1 = -1.6666667163e-01f; /* -1/3!  */
    const float S2 = 8.3333337680e-03f;  /*  1/5!  */
    const float S3 = -1.9841270114e-04f; /* -1/7!  */
    const float S4 = 2.7557319224e-06f;  /*  1/9!  */
    const float S5 = -2.5052108385e-08f; /* -1/11! */
    const float S6 = 1.6059043837e-10f;  /*  1/13! */
    const float C2 = 4.1666667908e-02f;  /*  1/4!  */
    const float C3 = -1.3888889225e-03f; /* -1/6!  */
    const float C4 = 2.4801587642e-05f;  /*  1/8!  */
    const float C5 = -2.7557319224e-07f; /* -1/10! */
    const float C6 = 2.0876756988e-09f;  /*  1/12! */
    float z = x * x;
    /* sin x = x + x z (S1 + z (S2 + z (S3 + z (S4 + z (S5 + z S6))))) */
    float p = z * S6;
    p = S5 + p;
    p = z * p;
    p = S4 + p;
    p = z * p;
    p = S3 + p;
    p = z * p;
    p = S2 + p;
    p = z * p;
    p = S1 + p;
    float xz = x * z;
    p = xz * p;
    *s = x + p;
    /* cos x = 1 - z/2 + z² (C2 + z (C3 + z (C4 + z (C5 + z C6)))) */
    float q = z * C6;
    q = C5 + q;
    q = z * q;
    q = C4 + q;
    q = z * q;
    q = C3 + q;
    q = z * q;
    q = C2 + q;
    float zz = z * z;
    q = zz * q;
    float hz = 0.5f * z;
    float one_minus = 1.0f - hz;
    *c = one_minus + q;
}

/* sin(2π u), cos(2π u). Reduction in turns is exact: q = nearest quarter turn, r = u - q/4
   (|r| <= 1/8, exact by Sterbenz for |u| < 2^22), x = r · 2π (one rounding), then the quadrant
   of q rotates (sin x, cos x). Valid for |u| < 2^22. */
GV_HD void gv_sincos_2pi(float u, float *s, float *c) {
    const float two_pi = 6.28318548203e+00f; /* 0x40c90fdb */
    float u4 = 4.0f * u;
    float qf = floorf(u4 + 0.5f);
    float quarter = 0.25f * qf;
    float r = u - quarter;
    float x = r * two_pi;
    float sx, cx;
    gv_sincos_kernel_(x, &sx, &cx);
    int q = (int)((int64_t)qf & 3);
    switch (q) {
    case 0: *s = sx; *c = cx; break;
    case 1: *s = cx; *c = -sx; break;
    case 2: *s = -sx; *c = -cx; break;
    default: *s = -cx; *c = sx; break;
    }
}

/* ---- normals --------------------------------------------------------------------------------- */

/* All four normals of Philox block `block` (elements 4·block .. 4·block+3): Box–Muller on lanes
   (0,1) and (2,3), radius from the first lane of a pair, angle from the second. The one place the
   transform is written; gv_philox_normal_at and every fill (CPU, CUDA) go through it. */
GV_HD void gv_philox_normal_block(const uint32_t key[2], const uint32_t ctr_hi[3],
                                  uint32_t block, float z[4]) {
    uint32_t ctr[4] = {block, ctr_hi[0], ctr_hi[1], ctr_hi[2]};
    uint32_t out[4];
    gv_philox4x32_10(ctr, key, out);
    for (int pair = 0; pair < 2; ++pair) {
        float u_r = gv_philox_uniform(out[2 * pair]);
        float u_t = gv_philox_uniform(out[2 * pair + 1]);
        float l = gv_logf(u_r);
        float m2l = -2.0f * l;
        float radius = sqrtf(m2l);
        float s, c;
        gv_sincos_2pi(u_t, &s, &c);
        z[2 * pair] = radius * c;
        z[2 * pair + 1] = radius * s;
    }
}

/* The standard normal at `element` of the address (key, ctr_hi): lane element % 4 of its block. */
GV_HD float gv_philox_normal_at(const uint32_t key[2], const uint32_t ctr_hi[3],
                                uint64_t element) {
    float z[4];
    gv_philox_normal_block(key, ctr_hi, (uint32_t)(element >> 2), z);
    return z[element & 3u];
}

/* The uniform at `element`: lane element % 4 of block element / 4, no transform. */
GV_HD float gv_philox_uniform_at(const uint32_t key[2], const uint32_t ctr_hi[3],
                                 uint64_t element) {
    uint32_t ctr[4] = {(uint32_t)(element >> 2), ctr_hi[0], ctr_hi[1], ctr_hi[2]};
    uint32_t out[4];
    gv_philox4x32_10(ctr, key, out);
    return gv_philox_uniform(out[element & 3u]);
}

#ifdef __cplusplus
}
#endif
#endif
