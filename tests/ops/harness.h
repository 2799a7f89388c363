/* The table-driven op harness (STYLE.md 3): one spec per op of GROVE_OP_LIST, one engine of checks.
 *
 * A spec (specs_*.c) is declarative: the op's tensors (role, dtype, value generator, whether it is
 * differentiated and whether its leading dimension is the batch), a list of cases (small, odd
 * shapes), a layout callback that turns a case into element counts and the op's dims struct, and
 * run_forward / run_backward callbacks that call ctx->backend->ops-><op>. Ops without a backward
 * give a `reference` callback: an independent fp64 computation on the host.
 *
 * The harness (harness.c) runs, per spec and case:
 *   fd        central finite differences of L = <r, y> (fp64) against the backward     [backward]
 *   sentinel  the += rule: backward into a sentinel equals sentinel + backward into 0    [backward]
 *   nullgrad  each gradient alone (the others NULL) equals the full backward             [backward]
 *   ref       forward outputs against the spec's fp64 reference                          [forward]
 *   parity    forward (and backward) of two contexts agree: reference vs oneDNN, CPU vs CUDA
 *   batch     per-sample forwards are bitwise independent of the micro-batch's other rows
 * Tensors live in backend memory: allocated with backend->alloc and moved with copy_from_host /
 * copy_to_host only, so the same code checks a device backend (gv_harness_parity). Outputs are
 * f32, or i32 (sampled tokens), which every check compares as their exact float values.
 *
 * Every op name maps to a spec object `gv_spec_<op>` (test_ops_main.c references all of them
 * through GROVE_OP_LIST), so an op added to the list without a spec fails to link. */
#ifndef GROVE_TESTS_OPS_HARNESS_H
#define GROVE_TESTS_OPS_HARNESS_H

#include <stdint.h>
#include <stdio.h>

#include "grove/backend.h"
#include "grove/ops.h"

#define GV_H_MAX_TENSORS 8
#define GV_H_MAX_ARGS 10

typedef enum gv_h_role {
    GV_H_IN,    /* uploaded before each forward                                     */
    GV_H_INOUT, /* uploaded before each forward and read back after (updated in place) */
    GV_H_OUT,   /* the output the loss projects; its gradient is the backward's dy  */
    GV_H_SAVED, /* another output (saved for backward: mean, rstd, probs, lse)     */
} gv_h_role;

typedef enum gv_h_dtype { GV_H_F32, GV_H_I32, GV_H_U8 } gv_h_dtype;

typedef enum gv_h_gen {
    GV_H_NONE,     /* outputs                                                        */
    GV_H_NORMAL,   /* N(0, 1)                                                        */
    GV_H_POSITIVE, /* U[0.5, 1.5)                                                    */
    GV_H_WEIGHT,   /* U[0, 1) with about a quarter exact zeros (row weights)         */
    GV_H_IDS,      /* int32 uniform in [0, id_hi)                                     */
    GV_H_IDS_PAD,  /* as IDS, about a quarter -1 (padding); a last sample all -1      */
    GV_H_MASK,     /* uint8, about a third 0; a last sample (of several) fully masked */
} gv_h_gen;

enum { GV_H_DIFF = 1u, GV_H_PER_SAMPLE = 2u };

typedef struct gv_h_tensor {
    const char *name;
    gv_h_role role;
    gv_h_dtype dtype;
    gv_h_gen gen;
    unsigned flags; /* GV_H_DIFF | GV_H_PER_SAMPLE */
} gv_h_tensor;

/* One case: integers (shapes, flags) and reals (eps, scale, alpha, ...) the layout interprets. */
typedef struct gv_h_case {
    const char *label;
    int v[GV_H_MAX_ARGS];
    double p[4];
} gv_h_case;

/* What a case means for one op: element counts (0 = pass NULL), id ranges and the dims struct. */
typedef struct gv_h_layout {
    int64_t numel[GV_H_MAX_TENSORS];
    int id_hi[GV_H_MAX_TENSORS];
    float shift[GV_H_MAX_TENSORS]; /* added to generated f32 values (large logits) */
    union {
        gv_conv2d_dims conv2d;
        gv_linear_dims linear;
        gv_matmul_dims matmul;
        gv_groupnorm_dims groupnorm;
        gv_layernorm_dims layernorm;
        gv_ew_dims ew;
        gv_rows_dims rows;
        gv_attention_dims attention;
        gv_embedding_dims embedding;
        gv_time_embedding_dims time_embedding;
        gv_upsample_dims upsample;
        gv_concat_dims concat;
        gv_channel_dims channel;
        gv_xent_dims xent;
        gv_adamw_args adamw;
        gv_philox_args philox;
        gv_masked_args masked;
    } dims;
    float alpha, beta; /* scalars passed by value (scale, axpby)     */
    int variant;       /* spec-defined way of calling (e.g. in place) */
} gv_h_layout;

typedef struct gv_op_spec {
    const char *name;
    int fwd_op, bwd_op; /* GV_OP_<name>; bwd_op -1 when the op has no backward */
    int ntensors;
    const gv_h_tensor *tensors;
    int ncases;
    const gv_h_case *cases;
    int n_arg; /* index in gv_h_case.v of the batch size N of per-sample ops; -1: not per-sample */
    void (*layout)(const gv_h_case *c, gv_h_layout *L);
    /* t[i]: backend memory of tensor i (NULL when numel is 0). */
    gv_status (*run_forward)(gv_ctx *c, void *const *t, const gv_h_layout *L);
    /* g[i]: gradient of input i (NULL: not wanted) and, for the OUT tensor, dy. */
    gv_status (*run_backward)(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L);
    /* Optional: expected values of every output (OUT, SAVED, INOUT) from the host inputs `in`
       (NULL entries for outputs), computed independently in fp64. */
    void (*reference)(const gv_h_layout *L, const void *const *in, double *const *expect);
    double fd_h;      /* finite-difference step (0: 1e-2)                              */
    double fd_rtol;   /* (0: 1e-2)                                                     */
    double fd_atol;   /* relative to the gradient tensor's rms, at least 1 (0: 1e-3)    */
    double ref_rtol;  /* reference check, relative to max(|a|, |e|, rms) (0: 1e-5)      */
} gv_op_spec;

/* Entries of a static array (cases, tensors). */
#define GV_H_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Defines the spec of op `op` as the object `obj` (a pair of ops shares one object). */
#define GV_SPEC_FOR(op, obj) const gv_op_spec *const gv_spec_##op = &(obj)

/* Results of checking one op; rel errors are the worst seen in each check. */
typedef struct gv_h_report {
    int cases, failures;
    double fd_rel, sentinel_rel, ref_rel, parity_rel;
    int batch_cmp; /* bitwise comparisons made */
} gv_h_report;

/* The spec of op index `op` (GV_OP_*). */
const gv_op_spec *gv_harness_spec(int op);

/* Runs every check that applies to op `op` (the forward checks for a forward op, the gradient
   checks for its backward) on the CPU backend: reference context (use_fast 0, 1 thread) and fast
   context (use_fast 1, 2 threads). Failures are printed to `log` with op, case, tensor, max abs /
   rel error and the first bad index; returns the number of failed checks. */
int gv_harness_check_op(int op, FILE *log, gv_h_report *rep);

/* The same on backend `be`; its contexts get ctx->backend = be, so a test can wrap another
   backend's op table (the harness self-test injects faulty kernels this way). */
int gv_harness_check_op_on(const gv_backend *be, int op, FILE *log, gv_h_report *rep);

/* Forward (and, for a backward op, backward) of every case of op `op` in contexts a and b, all
   outputs and gradients compared with |x_a - x_b| <= rtol * (max(|x_a|, |x_b|) + rms(x_a)).
   Generic over backends (CPU reference vs oneDNN today, CPU vs CUDA in a gpu test). Returns the
   number of failed comparisons; worst rel error into *worst_rel if not NULL. */
int gv_harness_parity(gv_ctx *a, gv_ctx *b, int op, double rtol, FILE *log, double *worst_rel);

#endif
