/* Fréchet distance of Gaussian feature statistics, with a cyclic Jacobi symmetric eigensolver and
 * a PSD matrix square root (see frechet.h for the contracts and the convergence criterion).
 *
 * Plain double-precision loops, no BLAS/LAPACK: F is at most a few hundred and this runs once per
 * evaluation, so clarity wins. Not here: feature extraction, GPU paths. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/frechet.h"

#define JACOBI_MAX_SWEEPS 100
#define PSD_NEG_TOL 1e-9 /* eigenvalues >= -PSD_NEG_TOL * max|l| are clamped to 0 */

gv_status gv_feature_moments(const float *x, int n, int F, double *mean, double *cov) {
    if (n < 2 || F < 1)
        return GV_ERROR(GV_ERR_INVALID,
                        "feature statistics need at least 2 rows and 1 feature (got %d x %d)", n, F);
    for (int j = 0; j < F; ++j) mean[j] = 0.0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < F; ++j) {
            float v = x[(size_t)i * F + j];
            if (!isfinite(v))
                return GV_ERROR(GV_ERR_NUMERIC, "feature row %d column %d is not finite (%g)", i,
                                j, (double)v);
            mean[j] += v;
        }
    for (int j = 0; j < F; ++j) mean[j] /= n;

    /* two-pass: cov = sum_i (x_i - mu)(x_i - mu)^T / (n - 1), upper triangle then mirrored */
    double *centered = malloc((size_t)F * sizeof *centered);
    if (!centered) return GV_ERROR(GV_ERR_OOM, "out of memory for %d features", F);
    memset(cov, 0, (size_t)F * F * sizeof *cov);
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < F; ++j) centered[j] = x[(size_t)i * F + j] - mean[j];
        for (int j = 0; j < F; ++j) {
            double cj = centered[j];
            double *row = cov + (size_t)j * F;
            for (int k = j; k < F; ++k) row[k] += cj * centered[k];
        }
    }
    free(centered);
    for (int j = 0; j < F; ++j)
        for (int k = j; k < F; ++k) {
            double v = cov[(size_t)j * F + k] / (n - 1);
            cov[(size_t)j * F + k] = v;
            cov[(size_t)k * F + j] = v;
        }
    return GV_OK;
}

/* One Jacobi rotation J(p, q, theta) with J_pp = J_qq = c, J_pq = s, J_qp = -s:
 * A <- J^T A J (zeroes a_pq), V <- V J. Golub & Van Loan, Matrix Computations, Alg. 8.5.1/8.5.2. */
static void jacobi_rotate(double *A, double *V, int F, int p, int q) {
    double apq = A[(size_t)p * F + q];
    double tau = (A[(size_t)q * F + q] - A[(size_t)p * F + p]) / (2.0 * apq);
    double t = (tau >= 0.0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1.0 + tau * tau));
    double c = 1.0 / sqrt(1.0 + t * t), s = t * c;
    for (int k = 0; k < F; ++k) { /* A <- A J (columns p, q) */
        double akp = A[(size_t)k * F + p], akq = A[(size_t)k * F + q];
        A[(size_t)k * F + p] = c * akp - s * akq;
        A[(size_t)k * F + q] = s * akp + c * akq;
    }
    for (int k = 0; k < F; ++k) { /* A <- J^T A (rows p, q) */
        double apk = A[(size_t)p * F + k], aqk = A[(size_t)q * F + k];
        A[(size_t)p * F + k] = c * apk - s * aqk;
        A[(size_t)q * F + k] = s * apk + c * aqk;
    }
    A[(size_t)p * F + q] = 0.0; /* zero by construction of t; drop the rounding residue */
    A[(size_t)q * F + p] = 0.0;
    for (int k = 0; k < F; ++k) { /* V <- V J */
        double vkp = V[(size_t)k * F + p], vkq = V[(size_t)k * F + q];
        V[(size_t)k * F + p] = c * vkp - s * vkq;
        V[(size_t)k * F + q] = s * vkp + c * vkq;
    }
}

gv_status gv_sym_eigen(const double *a, int F, double *evals, double *evecs) {
    if (F < 1) return GV_ERROR(GV_ERR_INVALID, "eigen-decomposition of a %dx%d matrix", F, F);
    double *A = malloc((size_t)F * F * sizeof *A);
    if (!A) return GV_ERROR(GV_ERR_OOM, "out of memory for a %dx%d matrix", F, F);
    double maxabs = 0.0;
    for (int i = 0; i < F; ++i)
        for (int j = i; j < F; ++j) {
            double v = a[(size_t)i * F + j];
            if (!isfinite(v)) {
                free(A);
                return GV_ERROR(GV_ERR_NUMERIC,
                                "eigen-decomposition: entry (%d, %d) is not finite (%g)", i, j, v);
            }
            A[(size_t)i * F + j] = A[(size_t)j * F + i] = v;
            if (fabs(v) > maxabs) maxabs = fabs(v);
        }
    for (int i = 0; i < F; ++i)
        for (int j = 0; j < F; ++j) evecs[(size_t)i * F + j] = i == j ? 1.0 : 0.0;

    const double eps = DBL_EPSILON, floor_abs = eps * maxabs;
    int converged = 0;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; ++sweep) {
        int rotations = 0;
        for (int p = 0; p < F - 1; ++p)
            for (int q = p + 1; q < F; ++q) {
                double apq = fabs(A[(size_t)p * F + q]);
                double diag = sqrt(fabs(A[(size_t)p * F + p] * A[(size_t)q * F + q]));
                if (apq <= eps * (diag > floor_abs ? diag : floor_abs)) continue;
                jacobi_rotate(A, evecs, F, p, q);
                ++rotations;
            }
        converged = rotations == 0;
    }
    if (!converged) {
        free(A);
        return GV_ERROR(GV_ERR_NUMERIC,
                        "eigen-decomposition of a %dx%d matrix did not converge in %d Jacobi sweeps",
                        F, F, JACOBI_MAX_SWEEPS);
    }
    for (int i = 0; i < F; ++i) evals[i] = A[(size_t)i * F + i];
    free(A);

    /* selection sort, ascending, carrying the eigenvector columns along */
    for (int i = 0; i < F - 1; ++i) {
        int m = i;
        for (int j = i + 1; j < F; ++j)
            if (evals[j] < evals[m]) m = j;
        if (m == i) continue;
        double t = evals[i];
        evals[i] = evals[m];
        evals[m] = t;
        for (int k = 0; k < F; ++k) {
            t = evecs[(size_t)k * F + i];
            evecs[(size_t)k * F + i] = evecs[(size_t)k * F + m];
            evecs[(size_t)k * F + m] = t;
        }
    }
    return GV_OK;
}

/* Clamp rounding-level negative eigenvalues (ascending `l`) to 0; fail on a clearly negative one. */
static gv_status clamp_psd_eigenvalues(double *l, int F, const char *what) {
    double big = fabs(l[0]) > fabs(l[F - 1]) ? fabs(l[0]) : fabs(l[F - 1]);
    for (int i = 0; i < F; ++i) {
        if (l[i] >= 0.0) continue;
        if (l[i] < -PSD_NEG_TOL * big)
            return GV_ERROR(GV_ERR_NUMERIC,
                            "%s is not positive semi-definite: eigenvalue %.6g (largest |l| %.6g)",
                            what, l[i], big);
        l[i] = 0.0;
    }
    return GV_OK;
}

gv_status gv_sym_sqrt_psd(const double *a, int F, double *out) {
    if (F < 1) return GV_ERROR(GV_ERR_INVALID, "square root of a %dx%d matrix", F, F);
    double *l = malloc((size_t)F * sizeof *l);
    double *V = malloc((size_t)F * F * sizeof *V);
    gv_status s = (!l || !V) ? GV_ERROR(GV_ERR_OOM, "out of memory for a %dx%d matrix", F, F)
                             : gv_sym_eigen(a, F, l, V);
    if (s == GV_OK) s = clamp_psd_eigenvalues(l, F, "matrix square root: the matrix");
    if (s == GV_OK) {
        for (int k = 0; k < F; ++k) l[k] = sqrt(l[k]);
        /* out = V diag(sqrt l) V^T, upper triangle then mirrored (exactly symmetric) */
        for (int i = 0; i < F; ++i)
            for (int j = i; j < F; ++j) {
                double acc = 0.0;
                for (int k = 0; k < F; ++k)
                    acc += V[(size_t)i * F + k] * l[k] * V[(size_t)j * F + k];
                out[(size_t)i * F + j] = acc;
            }
        for (int i = 0; i < F; ++i)
            for (int j = 0; j < i; ++j) out[(size_t)i * F + j] = out[(size_t)j * F + i];
    }
    free(l);
    free(V);
    return s;
}

/* c = a * b for F x F matrices. */
static void matmul(const double *a, const double *b, double *c, int F) {
    memset(c, 0, (size_t)F * F * sizeof *c);
    for (int i = 0; i < F; ++i)
        for (int k = 0; k < F; ++k) {
            double aik = a[(size_t)i * F + k];
            const double *brow = b + (size_t)k * F;
            double *crow = c + (size_t)i * F;
            for (int j = 0; j < F; ++j) crow[j] += aik * brow[j];
        }
}

gv_status gv_frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                              const double *cov2, int F, double *out) {
    if (F < 1) return GV_ERROR(GV_ERR_INVALID, "Fréchet distance over %d features", F);
    double *s1h = malloc((size_t)F * F * sizeof *s1h);
    double *tmp = malloc((size_t)F * F * sizeof *tmp);
    double *m = malloc((size_t)F * F * sizeof *m);
    double *V = malloc((size_t)F * F * sizeof *V);
    double *l = malloc((size_t)F * sizeof *l);
    gv_status s = (!s1h || !tmp || !m || !V || !l)
                      ? GV_ERROR(GV_ERR_OOM, "out of memory for %d-feature statistics", F)
                      : gv_sym_sqrt_psd(cov1, F, s1h);
    if (s == GV_OK) {
        /* M = S1^{1/2} S2 S1^{1/2}, symmetrised against rounding; Tr sqrt(M) = sum sqrt(l_i) */
        matmul(s1h, cov2, tmp, F);
        matmul(tmp, s1h, m, F);
        for (int i = 0; i < F; ++i)
            for (int j = i + 1; j < F; ++j) {
                double v = 0.5 * (m[(size_t)i * F + j] + m[(size_t)j * F + i]);
                m[(size_t)i * F + j] = m[(size_t)j * F + i] = v;
            }
        s = gv_sym_eigen(m, F, l, V);
    }
    if (s == GV_OK) s = clamp_psd_eigenvalues(l, F, "Fréchet distance: S1^1/2 S2 S1^1/2");
    if (s == GV_OK) {
        double d2 = 0.0, tr = 0.0, tr_sqrt = 0.0;
        for (int i = 0; i < F; ++i) {
            double d = mu1[i] - mu2[i];
            d2 += d * d;
            tr += cov1[(size_t)i * F + i] + cov2[(size_t)i * F + i];
            tr_sqrt += sqrt(l[i]);
        }
        double fd = d2 + tr - 2.0 * tr_sqrt;
        if (!isfinite(fd))
            s = GV_ERROR(GV_ERR_NUMERIC, "Fréchet distance is not finite (%g)", fd);
        else
            *out = fd > 0.0 ? fd : 0.0; /* < 0 only by rounding: FD >= 0 for PSD covariances */
    }
    free(s1h);
    free(tmp);
    free(m);
    free(V);
    free(l);
    return s;
}

gv_status gv_frechet_distance_features(const float *a, int na, const float *b, int nb, int F,
                                       double *out) {
    if (F < 1) return GV_ERROR(GV_ERR_INVALID, "Fréchet distance over %d features", F);
    double *mu1 = malloc((size_t)F * sizeof *mu1), *mu2 = malloc((size_t)F * sizeof *mu2);
    double *c1 = malloc((size_t)F * F * sizeof *c1), *c2 = malloc((size_t)F * F * sizeof *c2);
    gv_status s = GV_OK;
    if (!mu1 || !mu2 || !c1 || !c2)
        s = GV_ERROR(GV_ERR_OOM, "out of memory for %d-feature statistics", F);
    if (s == GV_OK && (s = gv_feature_moments(a, na, F, mu1, c1)) != GV_OK)
        gv_error_prefix("first feature set");
    if (s == GV_OK && (s = gv_feature_moments(b, nb, F, mu2, c2)) != GV_OK)
        gv_error_prefix("second feature set");
    if (s == GV_OK) s = gv_frechet_distance(mu1, c1, mu2, c2, F, out);
    free(mu1);
    free(mu2);
    free(c1);
    free(c2);
    return s;
}
