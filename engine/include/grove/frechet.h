/* Fréchet distance between Gaussians fitted to feature sets: the FID-like metric (DESIGN.md §5;
 * the classifier's penultimate features of samples vs held-out data), and the small dense
 * symmetric linear algebra it needs (frechet.c), all in double precision on the host.
 *
 *     FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2})
 *
 * Matrices are row-major, F x F (F features). Meant for F up to a few hundred: the eigensolver is
 * cyclic Jacobi, O(F^3) per sweep. Deliberately not here: feature extraction (the classifier) and
 * any GPU path. Functions allocate their own scratch with malloc (call them outside a step). */
#ifndef GROVE_FRECHET_H
#define GROVE_FRECHET_H

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean and unbiased covariance (divisor n - 1, as numpy.cov and pytorch-fid) of n feature rows.
 *   x: (n, F) floats; mean: (F); cov: (F, F), exactly symmetric.
 * GV_ERR_INVALID for n < 2 or F < 1; GV_ERR_NUMERIC (naming row and column) for a non-finite x. */
gv_status gv_feature_moments(const float *x, int n, int F, double *mean, double *cov);

/* Eigen-decomposition of a symmetric matrix a (F, F) = V diag(evals) V^T by cyclic Jacobi.
 *   evals: (F), ascending; evecs: (F, F), column j (evecs[i*F + j]) is the unit eigenvector of
 *   evals[j]; the columns are orthonormal.
 * Only the upper triangle of `a` is read (the matrix is taken as symmetric).
 * Convergence: each sweep visits every pair p < q once and rotates it away unless
 *   |a_pq| <= eps * max(sqrt(|a_pp * a_qq|), eps * max_ij |a_ij|)      (eps = DBL_EPSILON);
 * it has converged when a whole sweep performs no rotation (so off-diagonal entries are below
 * double rounding relative to their diagonal, and eigenvalues are accurate to about
 * eps * F * max|a_ij|). GV_ERR_NUMERIC if that has not happened after 100 sweeps (Jacobi converges
 * quadratically; well-conditioned F = 256 matrices need about 10) or if `a` has a non-finite
 * entry; GV_ERR_INVALID for F < 1; GV_ERR_OOM. */
gv_status gv_sym_eigen(const double *a, int F, double *evals, double *evecs);

/* Principal square root of a symmetric positive semi-definite matrix: out = V diag(sqrt(l)) V^T,
 * symmetric, out * out = a. Eigenvalues in [-1e-9 * max|l|, 0) are rounding noise and clamped to 0;
 * a more negative one means `a` is not PSD: GV_ERR_NUMERIC naming it. out may alias a. */
gv_status gv_sym_sqrt_psd(const double *a, int F, double *out);

/* Fréchet distance between N(mu1, cov1) and N(mu2, cov2); mu: (F), cov: (F, F) symmetric PSD.
 * Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) is computed as the sum of the square roots of the (clamped)
 * eigenvalues of the symmetrised S1^{1/2} S2 S1^{1/2}. A result below 0 can only come from rounding
 * (the distance is >= 0 for PSD inputs) and is returned as 0. */
gv_status gv_frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                              const double *cov2, int F, double *out);

/* Convenience: fit Gaussians to a (na, F) and b (nb, F) feature rows and return their Fréchet
 * distance. na, nb >= 2. */
gv_status gv_frechet_distance_features(const float *a, int na, const float *b, int nb, int F,
                                       double *out);

#ifdef __cplusplus
}
#endif
#endif
