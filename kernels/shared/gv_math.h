/* Contraction-free float math shared by host and device (GV_HD).
 *
 * libm's expf and CUDA's expf are different functions (glibc: correctly rounded in practice; CUDA:
 * up to 2 ulp), so a kernel that called either would compute different bits on the two sides. The
 * functions here use only IEEE-754 single-precision +, -, *, / with round-to-nearest and exact
 * conversions, written so that no step can be fused (the C build uses -ffp-contract=off, nvcc gets
 * --fmad=false --ftz=false --prec-div=true): the host build and the device build produce the same
 * bits for every input. Accuracy: gv_hd_expf is within 1 ulp of exp (tests/cpu/test_hd_arith.c
 * sweeps it against the double-precision exp).
 *
 * Deliberately not here: log/sincos for Box-Muller and the float bit casts (grove/philox.h owns
 * those; this header reuses the casts). */
#ifndef GROVE_GV_MATH_H
#define GROVE_GV_MATH_H

#include <stdint.h>

#include "grove/hd.h"
#include "grove/philox.h" /* gv_bits_to_float: host memcpy / device intrinsic */

/* 2^k for k in [-126, 127], built from the exponent field (exact). */
GV_HD float gv_hd_exp2i(int k) { return gv_bits_to_float((uint32_t)(k + 127) << 23); }

/* exp(x) in float. Cody-Waite reduction x = k*ln2 + r, |r| <= ln2/2, with ln2 split in a high part
 * of 9 significant bits (so k*ln2_hi is exact for |k| <= 151) and a low part; exp(r) by the
 * degree-7 polynomial of Cephes' expf (S. Moshier), evaluated in Horner form; the result scaled by
 * 2^k in at most two exact-exponent multiplies. Overflow gives +inf, underflow 0 (or a subnormal),
 * NaN propagates. */
GV_HD float gv_hd_expf(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693359375f;    /* 0x3f318000: 9 significant bits          */
    const float ln2_lo = -2.12194440e-4f; /* ln2 - ln2_hi                            */
    if (x != x) return x;                 /* NaN                                      */
    if (x > 88.7228394f) return gv_bits_to_float(0x7f800000u); /* > ln(FLT_MAX): +inf */
    if (x < -104.0f) return 0.0f;         /* below half the smallest subnormal        */
    float t = x * log2e;
    int k = (int)(t >= 0.0f ? t + 0.5f : t - 0.5f); /* round half away; |k| <= 151    */
    float kf = (float)k;
    float r = x - kf * ln2_hi; /* exact: kf * ln2_hi has at most 24 significant bits  */
    r = r - kf * ln2_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r;
    p = p + 1.0f;
    /* p in [0.70, 1.42]; scale by 2^k without overflowing the intermediate. */
    if (k > 127) return p * gv_hd_exp2i(127) * gv_hd_exp2i(k - 127);
    if (k < -126) return p * gv_hd_exp2i(k + 126) * gv_hd_exp2i(-126);
    return p * gv_hd_exp2i(k);
}

/* Distance in units in the last place between two floats: the number of representable floats
 * between them (0: bitwise equal; -0 and +0 are 0 apart). Two NaNs are 0 apart, a NaN and a number
 * are INT64_MAX apart. For comparing host and device results in tests. */
GV_HD int64_t gv_hd_ulp_distance(float a, float b) {
    if (a != a || b != b) return (a != a && b != b) ? 0 : INT64_MAX;
    int64_t ia = (int64_t)gv_float_to_bits(a), ib = (int64_t)gv_float_to_bits(b);
    /* map the sign-magnitude bit patterns onto a monotonic integer line */
    if (ia & 0x80000000) ia = 0x80000000 - ia;
    if (ib & 0x80000000) ib = 0x80000000 - ib;
    return ia > ib ? ia - ib : ib - ia;
}

#endif
