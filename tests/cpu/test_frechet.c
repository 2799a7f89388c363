/* Tests of the Fréchet distance and its linear algebra (frechet.h): FD of a set with itself is 0,
 * the 1-D closed form (mu1 - mu2)^2 + (s1 - s2)^2, a diagonal 2-D case, a rotated covariance worked
 * by hand, a general non-commuting 2x2 pair against the closed form
 * Tr sqrt(S1^1/2 S2 S1^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)), symmetry in the arguments,
 * a pure mean shift, Jacobi reconstruction and orthogonality, square root squared, a rank-one
 * square root, and the errors for too few rows, non-finite features and a non-PSD matrix. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grove/frechet.h"

static uint64_t g_rng = 88172645463325252ull;

static double urand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 4503599627370496.0 - 1.0;
}

/* (n, F) features with correlated columns: x = z M, z uniform. */
static float *random_features(int n, int F, double offset) {
    double *M = malloc((size_t)F * F * sizeof *M);
    for (int i = 0; i < F * F; ++i) M[i] = urand();
    float *x = malloc((size_t)n * F * sizeof *x);
    double *z = malloc((size_t)F * sizeof *z);
    for (int i = 0; i < n; ++i) {
        for (int k = 0; k < F; ++k) z[k] = urand();
        for (int j = 0; j < F; ++j) {
            double acc = offset;
            for (int k = 0; k < F; ++k) acc += z[k] * M[k * F + j];
            x[(size_t)i * F + j] = (float)acc;
        }
    }
    free(M);
    free(z);
    return x;
}

static void random_symmetric(double *a, int F) {
    for (int i = 0; i < F; ++i)
        for (int j = i; j < F; ++j) a[i * F + j] = a[j * F + i] = urand();
}

static void random_psd(double *a, int F, int rank) { /* a = B B^T, B (F, rank) */
    double *B = malloc((size_t)F * rank * sizeof *B);
    for (int i = 0; i < F * rank; ++i) B[i] = urand();
    for (int i = 0; i < F; ++i)
        for (int j = 0; j < F; ++j) {
            double acc = 0.0;
            for (int k = 0; k < rank; ++k) acc += B[i * rank + k] * B[j * rank + k];
            a[i * F + j] = acc;
        }
    free(B);
}

static double fd2(const double m1[2], const double s1[4], const double m2[2], const double s2[4]) {
    double out = -1.0;
    cr_assert_eq(gv_frechet_distance(m1, s1, m2, s2, 2, &out), GV_OK, "%s", gv_last_error());
    return out;
}

Test(frechet, set_with_itself_is_zero) {
    const int n = 300, F = 16;
    float *x = random_features(n, F, 0.5);
    double *mu = malloc(F * sizeof *mu), *cov = malloc((size_t)F * F * sizeof *cov);
    cr_assert_eq(gv_feature_moments(x, n, F, mu, cov), GV_OK);
    double scale = 0.0;
    for (int i = 0; i < F; ++i) scale += cov[i * F + i];
    cr_assert_gt(scale, 1.0);
    double d = -1.0;
    cr_assert_eq(gv_frechet_distance_features(x, n, x, n, F, &d), GV_OK, "%s", gv_last_error());
    cr_assert_lt(fabs(d), 1e-9 * scale, "FD(a, a) = %g (trace %g)", d, scale);
    free(x);
    free(mu);
    free(cov);
}

Test(frechet, one_dimensional_closed_form) {
    const float a[] = {1, 2, 4, 7, -3.5f, 0.25f};
    const float b[] = {0, 3, 3, 10, -1};
    const int na = 6, nb = 5;
    double ma = 0, mb = 0, va = 0, vb = 0;
    for (int i = 0; i < na; ++i) ma += a[i];
    for (int i = 0; i < nb; ++i) mb += b[i];
    ma /= na;
    mb /= nb;
    for (int i = 0; i < na; ++i) va += (a[i] - ma) * (a[i] - ma);
    for (int i = 0; i < nb; ++i) vb += (b[i] - mb) * (b[i] - mb);
    va /= na - 1; /* unbiased, as documented */
    vb /= nb - 1;
    double want = (ma - mb) * (ma - mb) + (sqrt(va) - sqrt(vb)) * (sqrt(va) - sqrt(vb));
    double got = -1;
    cr_assert_eq(gv_frechet_distance_features(a, na, b, nb, 1, &got), GV_OK, "%s",
                 gv_last_error());
    cr_assert_lt(fabs(got - want), 1e-12 * want, "got %.17g want %.17g", got, want);
}

Test(frechet, diagonal_two_dimensional) {
    const double m1[2] = {1, 2}, s1[4] = {4, 0, 0, 9};
    const double m2[2] = {0, 0}, s2[4] = {1, 0, 0, 16};
    /* |dmu|^2 = 5; (2 - 1)^2 + (3 - 4)^2 = 2 */
    cr_assert_float_eq(fd2(m1, s1, m2, s2), 7.0, 1e-12);
}

Test(frechet, rotated_covariance_by_hand) {
    /* S1 = I, S2 = R diag(4, 1) R^T: Tr = 2 + 5 - 2 (2 + 1) = 1, for any rotation */
    const double th = 0.3, c = cos(th), s = sin(th);
    const double s2[4] = {4 * c * c + s * s, (4 - 1) * c * s, (4 - 1) * c * s, 4 * s * s + c * c};
    const double eye[4] = {1, 0, 0, 1}, m[2] = {0.25, -1};
    cr_assert_gt(fabs(s2[1]), 0.5, "the covariance must not be diagonal");
    cr_assert_float_eq(fd2(m, eye, m, s2), 1.0, 1e-12);
    cr_assert_float_eq(fd2(m, s2, m, eye), 1.0, 1e-12);
}

Test(frechet, general_two_by_two_closed_form) {
    /* S1, S2 do not commute; for 2x2 PSD M: Tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), and
       tr M = tr(S1 S2), det M = det S1 det S2 for M = S1^1/2 S2 S1^1/2 */
    const double s1[4] = {2, 0.5, 0.5, 1}, s2[4] = {1, -0.3, -0.3, 3};
    const double m1[2] = {1, -2}, m2[2] = {0.5, 1};
    double trs1s2 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    double want = 0.25 + 9.0 + (s1[0] + s1[3] + s2[0] + s2[3]) -
                  2.0 * sqrt(trs1s2 + 2.0 * sqrt(det1 * det2));
    cr_assert_float_eq(fd2(m1, s1, m2, s2), want, 1e-12);
    cr_assert_float_eq(fd2(m2, s2, m1, s1), want, 1e-12);
}

Test(frechet, symmetric_in_arguments_and_mean_shift) {
    const int n = 200, F = 6;
    float *a = random_features(n, F, 0.0), *b = random_features(n, F, 0.3);
    double dab, dba;
    cr_assert_eq(gv_frechet_distance_features(a, n, b, n, F, &dab), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_frechet_distance_features(b, n, a, n, F, &dba), GV_OK, "%s", gv_last_error());
    cr_assert_gt(dab, 0.1);
    cr_assert_lt(fabs(dab - dba), 1e-9 * dab, "FD(a,b) %.17g != FD(b,a) %.17g", dab, dba);

    /* integer features shifted by an integer vector: same covariance, FD = |shift|^2 = 9 + 16 */
    float *c = malloc((size_t)n * 2 * sizeof *c), *d = malloc((size_t)n * 2 * sizeof *d);
    for (int i = 0; i < n; ++i) {
        c[2 * i] = (float)((i * 7) % 11);
        c[2 * i + 1] = (float)((i * 5) % 13) + c[2 * i];
        d[2 * i] = c[2 * i] + 3;
        d[2 * i + 1] = c[2 * i + 1] - 4;
    }
    double dcd;
    cr_assert_eq(gv_frechet_distance_features(c, n, d, n, 2, &dcd), GV_OK, "%s", gv_last_error());
    cr_assert_float_eq(dcd, 25.0, 1e-9);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void check_eigen(int F) {
    double *a = malloc((size_t)F * F * sizeof *a), *V = malloc((size_t)F * F * sizeof *V);
    double *l = malloc((size_t)F * sizeof *l);
    random_symmetric(a, F);
    cr_assert_eq(gv_sym_eigen(a, F, l, V), GV_OK, "%s", gv_last_error());
    double err = 0.0, orth = 0.0;
    for (int i = 0; i < F; ++i)
        for (int j = 0; j < F; ++j) {
            double r = 0.0, o = 0.0;
            for (int k = 0; k < F; ++k) {
                r += V[i * F + k] * l[k] * V[j * F + k];
                o += V[k * F + i] * V[k * F + j];
            }
            err = fmax(err, fabs(r - a[i * F + j]));
            orth = fmax(orth, fabs(o - (i == j ? 1.0 : 0.0)));
        }
    cr_assert_lt(err, 1e-10, "F=%d: max |V L V^T - A| = %g", F, err);
    cr_assert_lt(orth, 1e-12, "F=%d: max |V^T V - I| = %g", F, orth);
    for (int i = 0; i + 1 < F; ++i) cr_assert_leq(l[i], l[i + 1], "eigenvalues not ascending");
    free(a);
    free(V);
    free(l);
}

Test(frechet, eigen_reconstructs_random_symmetric) {
    check_eigen(1);
    check_eigen(7);
    check_eigen(48);
}

Test(frechet, eigen_of_known_matrix) {
    /* [[2, 1], [1, 2]]: eigenvalues 1 and 3 */
    const double a[4] = {2, 1, 1, 2};
    double l[2], V[4];
    cr_assert_eq(gv_sym_eigen(a, 2, l, V), GV_OK);
    cr_assert_float_eq(l[0], 1.0, 1e-14);
    cr_assert_float_eq(l[1], 3.0, 1e-14);
    cr_assert_float_eq(fabs(V[0 * 2 + 1]), sqrt(0.5), 1e-14); /* (1, 1)/sqrt 2 for 3 */
    cr_assert_float_eq(V[0 * 2 + 1] * V[1 * 2 + 1], 0.5, 1e-14);
}

Test(frechet, sqrt_squared_equals_matrix) {
    const int F = 10;
    int ranks[2] = {F + 3, 4}; /* full rank, and rank-deficient (eigenvalues ~ 0 clamped) */
    for (int t = 0; t < 2; ++t) {
        double a[100], S[100];
        random_psd(a, F, ranks[t]);
        cr_assert_eq(gv_sym_sqrt_psd(a, F, S), GV_OK, "%s", gv_last_error());
        double err = 0.0, asym = 0.0, amax = 0.0;
        for (int i = 0; i < F; ++i)
            for (int j = 0; j < F; ++j) {
                double r = 0.0;
                for (int k = 0; k < F; ++k) r += S[i * F + k] * S[k * F + j];
                err = fmax(err, fabs(r - a[i * F + j]));
                asym = fmax(asym, fabs(S[i * F + j] - S[j * F + i]));
                amax = fmax(amax, fabs(a[i * F + j]));
            }
        cr_assert_lt(err, 1e-10 * amax, "rank %d: max |S S - A| = %g", ranks[t], err);
        cr_assert_eq(asym, 0.0, "square root not exactly symmetric");
    }
    /* rank one: sqrt(v v^T) = v v^T / |v| */
    const double v[3] = {1, 2, -2};
    double a[9], S[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) a[i * 3 + j] = v[i] * v[j];
    cr_assert_eq(gv_sym_sqrt_psd(a, 3, S), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < 9; ++i) cr_assert_float_eq(S[i], a[i] / 3.0, 1e-7, "entry %d", i);
}

Test(frechet, errors) {
    const double bad[4] = {1, 0, 0, -1};
    double S[4];
    cr_assert_eq(gv_sym_sqrt_psd(bad, 2, S), GV_ERR_NUMERIC);
    cr_assert_not_null(strstr(gv_last_error(), "not positive semi-definite"), "%s",
                       gv_last_error());

    const float one[2] = {1, 2}, two[4] = {1, 2, 3, 5};
    double d;
    cr_assert_eq(gv_frechet_distance_features(one, 1, two, 2, 2, &d), GV_ERR_INVALID);
    cr_assert_not_null(strstr(gv_last_error(), "first feature set"), "%s", gv_last_error());
    const float nan4[4] = {1, NAN, 3, 5};
    cr_assert_eq(gv_frechet_distance_features(two, 2, nan4, 2, 2, &d), GV_ERR_NUMERIC);
    cr_assert_not_null(strstr(gv_last_error(), "second feature set"), "%s", gv_last_error());
    cr_assert_not_null(strstr(gv_last_error(), "row 0 column 1"), "%s", gv_last_error());
    const double inf[1] = {INFINITY};
    double l[1], V[1];
    cr_assert_eq(gv_sym_eigen(inf, 1, l, V), GV_ERR_NUMERIC);
}
