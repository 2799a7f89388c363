/* oneDNN glue: the per-context state (engine, stream, primitive cache) and the fast paths of
 * conv2d (forward, backward-data, backward-weights + bias) and matmul (which linear also uses).
 *
 * - Primitives are created once per (op kind, shape) and kept in the state's cache with everything
 *   they need to run: their scratchpad (user-managed) and, for every argument whose layout oneDNN
 *   chose differently from grove's plain one (`format_tag any`, TOOLCHAIN.md: forcing plain weights
 *   is ~2000x slower), an owned buffer in that layout and the reorder to or from the plain buffer.
 *   Those buffers are allocated when the shape is first seen (the first step or a warm-up), never
 *   again.
 * - Backward primitives write their outputs; we write them into ctx->scratch and add into the
 *   caller's gradient, so the += rule of ops.h holds (DESIGN.md §3).
 * - Threads: this libdnnl uses the OpenMP runtime, which sizes its parallel regions (and, for some
 *   kernels, the work split chosen at creation) from omp_get_max_threads(). Each public function
 *   here sets the calling thread's OpenMP thread count to ctx->threads for the duration of the call
 *   (creation and execution) and restores the previous value on return.
 *
 * Deliberately not here: keeping tensors in oneDNN's blocked layout between layers (every call
 * reorders from and to NCHW), groupnorm/elementwise primitives, and the reference kernels
 * (conv2d.c and linear.c own the dispatch and the specification). */
#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "dnnl_glue.h"

#if !defined(DNNL_VERSION_MAJOR) || DNNL_VERSION_MAJOR != 2
#error "grove's oneDNN glue is written against the oneDNN 2.x C API (libdnnl-dev 2.6); 3.x changed it"
#endif

/* ---- cache ----------------------------------------------------------------------------------- */

enum gv_dnnl_kind { GV_DNNL_CONV_FWD = 1, GV_DNNL_CONV_BWD_DATA, GV_DNNL_CONV_BWD_WEIGHTS, GV_DNNL_MATMUL };

typedef struct gv_dnnl_key {
    int kind;  /* enum gv_dnnl_kind                                                   */
    int v[11]; /* conv: N C H W K R S stride pad has_bias; matmul: B M K N at bt bias */
} gv_dnnl_key;

#define GV_DNNL_MAX_ARGS 5

typedef struct gv_dnnl_arg {
    int arg;                  /* DNNL_ARG_*                                                 */
    int is_output;            /* 1: the primitive writes it                                 */
    dnnl_memory_t user;       /* plain layout over the caller's buffer, handle set per call */
    dnnl_memory_t inner;      /* owned buffer in the primitive's layout; NULL when plain    */
    dnnl_primitive_t reorder; /* user -> inner (input) or inner -> user (output)            */
} gv_dnnl_arg;

typedef struct gv_dnnl_entry {
    gv_dnnl_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t scratchpad; /* NULL when the primitive needs none */
    int nargs;
    gv_dnnl_arg args[GV_DNNL_MAX_ARGS];
} gv_dnnl_entry;

struct gv_dnnl_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;              /* the owning ctx's thread count                  */
    gv_dnnl_entry **entries;  /* (count), pointers stay valid while the state lives */
    int count, cap;
    long created, reused;
    char last_impl[64];
};

/* Argument binding for one call: which caller buffer backs which DNNL_ARG_*. */
typedef struct gv_dnnl_bind {
    int arg;
    const void *ptr;
} gv_dnnl_bind;

static struct gv_dnnl_state *state_of(gv_ctx *c) {
    gv_cpu_impl *impl = gv_cpu_impl_of(c);
    return impl ? impl->dnnl : NULL;
}

/* Every oneDNN call goes through this: the message names the call and the shape. */
static gv_status dnnl_check(dnnl_status_t st, const char *call, const char *shape, const char *file,
                            int line) {
    if (st == dnnl_success) return GV_OK;
    return gv_error_at(file, line, GV_ERR_BACKEND, "oneDNN %s failed (%s) for %s", call,
                       dnnl_status2str(st), shape);
}
#define GV_DNNL(shape, fn, ...) dnnl_check(fn(__VA_ARGS__), #fn, (shape), __FILE__, __LINE__)

/* Run the rest of a public function with the ctx's OpenMP thread count (see the header comment). */
static int threads_enter(const struct gv_dnnl_state *s) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(s->threads);
    return saved;
}
static void threads_leave(int saved) { omp_set_num_threads(saved); }

static void entry_destroy(gv_dnnl_entry *e) {
    if (!e) return;
    for (int i = 0; i < e->nargs; i++) {
        if (e->args[i].reorder) dnnl_primitive_destroy(e->args[i].reorder);
        if (e->args[i].inner) dnnl_memory_destroy(e->args[i].inner);
        if (e->args[i].user) dnnl_memory_destroy(e->args[i].user);
    }
    if (e->scratchpad) dnnl_memory_destroy(e->scratchpad);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    free(e);
}

static gv_dnnl_entry *cache_find(struct gv_dnnl_state *s, const gv_dnnl_key *key) {
    for (int i = 0; i < s->count; i++)
        if (memcmp(&s->entries[i]->key, key, sizeof *key) == 0) return s->entries[i];
    return NULL;
}

/* Builds a new entry's primitive and arguments from a request (conv_request, matmul_request). */
typedef gv_status (*entry_build_fn)(struct gv_dnnl_state *s, gv_dnnl_entry *e, const void *request,
                                    const char *shape);

/* The cached entry for `key`, built by `build` on first use. */
static gv_status cache_get(struct gv_dnnl_state *s, const gv_dnnl_key *key, entry_build_fn build,
                           const void *request, const char *shape, gv_dnnl_entry **out) {
    if ((*out = cache_find(s, key)) != NULL) {
        s->reused++;
        return GV_OK;
    }
    if (s->count == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        gv_dnnl_entry **grown = realloc(s->entries, (size_t)cap * sizeof *grown);
        if (!grown) return GV_ERROR(GV_ERR_OOM, "oneDNN primitive cache: cannot grow to %d", cap);
        s->entries = grown;
        s->cap = cap;
    }
    gv_dnnl_entry *e = calloc(1, sizeof *e);
    if (!e) return GV_ERROR(GV_ERR_OOM, "oneDNN cache entry for %s", shape);
    e->key = *key;
    gv_status st = build(s, e, request, shape);
    if (st != GV_OK) {
        entry_destroy(e);
        return st;
    }
    s->entries[s->count++] = e;
    s->created++;
    *out = e;
    return GV_OK;
}

/* Adds argument `arg` of primitive descriptor `pd`; the caller's buffer has layout `plain`. When the
   primitive wants another layout, an owned buffer in that layout and the reorder are made here. */
static gv_status entry_add_arg(struct gv_dnnl_state *s, gv_dnnl_entry *e,
                               const_dnnl_primitive_desc_t pd, int arg, int is_output,
                               const dnnl_memory_desc_t *plain, const char *shape) {
    if (e->nargs == GV_DNNL_MAX_ARGS)
        return GV_ERROR(GV_ERR_INTERNAL, "oneDNN entry for %s: too many arguments", shape);
    gv_dnnl_arg *a = &e->args[e->nargs++];
    a->arg = arg;
    a->is_output = is_output;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!want)
        return GV_ERROR(GV_ERR_BACKEND, "oneDNN dnnl_primitive_desc_query_md(arg %d) failed for %s",
                        arg, shape);
    GV_TRY(GV_DNNL(shape, dnnl_memory_create, &a->user, plain, s->engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(want, plain)) return GV_OK;

    GV_TRY(GV_DNNL(shape, dnnl_memory_create, &a->inner, want, s->engine, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd = NULL;
    const dnnl_memory_desc_t *from = is_output ? want : plain, *to = is_output ? plain : want;
    GV_TRY(GV_DNNL(shape, dnnl_reorder_primitive_desc_create, &rpd, from, s->engine, to, s->engine,
                   NULL));
    gv_status st = GV_DNNL(shape, dnnl_primitive_create, &a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

/* Creates the primitive of `pd` and its scratchpad; records the implementation name. */
static gv_status entry_set_primitive(struct gv_dnnl_state *s, gv_dnnl_entry *e,
                                     const_dnnl_primitive_desc_t pd, const char *shape) {
    GV_TRY(GV_DNNL(shape, dnnl_primitive_create, &e->prim, pd));
    const dnnl_memory_desc_t *pad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (pad_md && dnnl_memory_desc_get_size(pad_md) > 0)
        GV_TRY(GV_DNNL(shape, dnnl_memory_create, &e->scratchpad, pad_md, s->engine,
                       DNNL_MEMORY_ALLOCATE));
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(s->last_impl, sizeof s->last_impl, "%s", impl);
    return GV_OK;
}

/* Runs an entry: reorders inputs in, executes, reorders outputs out, waits. Every argument of the
   entry must be bound. */
static gv_status entry_run(struct gv_dnnl_state *s, gv_dnnl_entry *e, const gv_dnnl_bind *binds,
                           int nbinds, const char *shape) {
    dnnl_exec_arg_t exec[GV_DNNL_MAX_ARGS + 1];
    int nexec = 0;
    for (int i = 0; i < e->nargs; i++) {
        gv_dnnl_arg *a = &e->args[i];
        const void *ptr = NULL;
        for (int j = 0; j < nbinds; j++)
            if (binds[j].arg == a->arg) ptr = binds[j].ptr;
        if (!ptr) return GV_ERROR(GV_ERR_INTERNAL, "oneDNN %s: argument %d not bound", shape, a->arg);
        GV_TRY(GV_DNNL(shape, dnnl_memory_set_data_handle, a->user, (void *)ptr));
        exec[nexec++] = (dnnl_exec_arg_t){a->arg, a->inner ? a->inner : a->user};
        if (a->reorder && !a->is_output) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->inner}};
            GV_TRY(GV_DNNL(shape, dnnl_primitive_execute, a->reorder, s->stream, 2, r));
        }
    }
    if (e->scratchpad) exec[nexec++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratchpad};
    GV_TRY(GV_DNNL(shape, dnnl_primitive_execute, e->prim, s->stream, nexec, exec));
    for (int i = 0; i < e->nargs; i++) {
        gv_dnnl_arg *a = &e->args[i];
        if (!a->reorder || !a->is_output) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->inner}, {DNNL_ARG_TO, a->user}};
        GV_TRY(GV_DNNL(shape, dnnl_primitive_execute, a->reorder, s->stream, 2, r));
    }
    return GV_DNNL(shape, dnnl_stream_wait, s->stream);
}

/* dst (n) += src (n): the second half of the backward += rule. */
static void add_into(int threads, float *dst, const float *src, size_t n) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static dnnl_primitive_attr_t user_scratchpad_attr(const char *shape, gv_status *st) {
    dnnl_primitive_attr_t attr = NULL;
    *st = GV_DNNL(shape, dnnl_primitive_attr_create, &attr);
    if (*st == GV_OK)
        *st = GV_DNNL(shape, dnnl_primitive_attr_set_scratchpad_mode, attr, dnnl_scratchpad_mode_user);
    return attr;
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

static const char *conv_kind_name(int kind) {
    return kind == GV_DNNL_CONV_FWD        ? "forward"
           : kind == GV_DNNL_CONV_BWD_DATA ? "backward-data"
                                           : "backward-weights";
}

static void conv_shape(char *buf, size_t len, int kind, const gv_conv2d_dims *d) {
    snprintf(buf, len, "conv2d %s (N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d pad=%d)",
             conv_kind_name(kind), d->N, d->C, d->H, d->W, d->K, d->R, d->S, d->stride, d->pad);
}

/* Plain (grove) and `any` memory descriptors of one conv2d shape. */
typedef struct conv_mds {
    dnnl_memory_desc_t src, wei, bias, dst;         /* plain: nchw, oihw, x, nchw */
    dnnl_memory_desc_t src_any, wei_any, dst_any;   /* format_tag any             */
    dnnl_dims_t strides, pad_l, pad_r;
} conv_mds;

static gv_status conv_mds_init(conv_mds *m, const gv_conv2d_dims *d, const char *shape) {
    dnnl_dims_t src = {d->N, d->C, d->H, d->W}, wei = {d->K, d->C, d->R, d->S};
    dnnl_dims_t bias = {d->K}, dst = {d->N, d->K, d->P, d->Q};
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->src, 4, src, dnnl_f32, dnnl_nchw));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->wei, 4, wei, dnnl_f32, dnnl_oihw));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->bias, 1, bias, dnnl_f32, dnnl_x));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->dst, 4, dst, dnnl_f32, dnnl_nchw));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->src_any, 4, src, dnnl_f32,
                   dnnl_format_tag_any));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->wei_any, 4, wei, dnnl_f32,
                   dnnl_format_tag_any));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &m->dst_any, 4, dst, dnnl_f32,
                   dnnl_format_tag_any));
    /* Right padding = pad: oneDNN checks (H - R + 2 pad) / stride + 1 == P with integer division,
       which is exactly gv_conv2d_dims_set. */
    for (int i = 0; i < 2; i++) {
        m->strides[i] = d->stride;
        m->pad_l[i] = m->pad_r[i] = d->pad;
    }
    return GV_OK;
}

/* The forward primitive descriptor: the primitive itself, or the hint backward ones need. */
static gv_status conv_forward_pd(struct gv_dnnl_state *s, const conv_mds *m, int has_bias,
                                 const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd,
                                 const char *shape) {
    dnnl_convolution_desc_t cd;
    GV_TRY(GV_DNNL(shape, dnnl_convolution_forward_desc_init, &cd, dnnl_forward_training,
                   dnnl_convolution_direct, &m->src_any, &m->wei_any, has_bias ? &m->bias : NULL,
                   &m->dst_any, m->strides, m->pad_l, m->pad_r));
    return GV_DNNL(shape, dnnl_primitive_desc_create, pd, &cd, attr, s->engine, NULL);
}

/* Builds the entry of one conv kind: primitive descriptor, arguments, primitive. */
static gv_status conv_entry_build(struct gv_dnnl_state *s, gv_dnnl_entry *e, int kind,
                                  const gv_conv2d_dims *d, int has_bias, const char *shape) {
    conv_mds m;
    GV_TRY(conv_mds_init(&m, d, shape));
    gv_status st;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(shape, &st);
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    if (st == GV_OK && kind == GV_DNNL_CONV_FWD) {
        st = conv_forward_pd(s, &m, has_bias, attr, &pd, shape);
    } else if (st == GV_OK) {
        dnnl_convolution_desc_t cd;
        st = conv_forward_pd(s, &m, has_bias, NULL, &hint, shape);
        if (st == GV_OK && kind == GV_DNNL_CONV_BWD_DATA)
            st = GV_DNNL(shape, dnnl_convolution_backward_data_desc_init, &cd,
                         dnnl_convolution_direct, &m.src_any, &m.wei_any, &m.dst_any, m.strides,
                         m.pad_l, m.pad_r);
        else if (st == GV_OK)
            st = GV_DNNL(shape, dnnl_convolution_backward_weights_desc_init, &cd,
                         dnnl_convolution_direct, &m.src_any, &m.wei_any,
                         has_bias ? &m.bias : NULL, &m.dst_any, m.strides, m.pad_l, m.pad_r);
        if (st == GV_OK)
            st = GV_DNNL(shape, dnnl_primitive_desc_create, &pd, &cd, attr, s->engine, hint);
    }
    if (st == GV_OK && kind == GV_DNNL_CONV_FWD) {
        st = entry_add_arg(s, e, pd, DNNL_ARG_SRC, 0, &m.src, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_WEIGHTS, 0, &m.wei, shape);
        if (st == GV_OK && has_bias) st = entry_add_arg(s, e, pd, DNNL_ARG_BIAS, 0, &m.bias, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_DST, 1, &m.dst, shape);
    } else if (st == GV_OK && kind == GV_DNNL_CONV_BWD_DATA) {
        st = entry_add_arg(s, e, pd, DNNL_ARG_DIFF_DST, 0, &m.dst, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_WEIGHTS, 0, &m.wei, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_DIFF_SRC, 1, &m.src, shape);
    } else if (st == GV_OK) {
        st = entry_add_arg(s, e, pd, DNNL_ARG_SRC, 0, &m.src, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_DIFF_DST, 0, &m.dst, shape);
        if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_DIFF_WEIGHTS, 1, &m.wei, shape);
        if (st == GV_OK && has_bias)
            st = entry_add_arg(s, e, pd, DNNL_ARG_DIFF_BIAS, 1, &m.bias, shape);
    }
    if (st == GV_OK) st = entry_set_primitive(s, e, pd, shape);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

typedef struct conv_request {
    int kind; /* GV_DNNL_CONV_* */
    const gv_conv2d_dims *d;
    int has_bias;
} conv_request;

static gv_status conv_build(struct gv_dnnl_state *s, gv_dnnl_entry *e, const void *request,
                            const char *shape) {
    const conv_request *r = request;
    return conv_entry_build(s, e, r->kind, r->d, r->has_bias, shape);
}

static gv_status conv_entry(struct gv_dnnl_state *s, int kind, const gv_conv2d_dims *d,
                            int has_bias, const char *shape, gv_dnnl_entry **out) {
    gv_dnnl_key key;
    memset(&key, 0, sizeof key);
    key.kind = kind;
    int v[] = {d->N, d->C, d->H, d->W, d->K, d->R, d->S, d->stride, d->pad, has_bias};
    memcpy(key.v, v, sizeof v);
    conv_request r = {kind, d, has_bias};
    return cache_get(s, &key, conv_build, &r, shape, out);
}

gv_status gv_dnnl_conv2d_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                 const float *b, const gv_conv2d_dims *d) {
    struct gv_dnnl_state *s = state_of(c);
    char shape[160];
    conv_shape(shape, sizeof shape, GV_DNNL_CONV_FWD, d);
    int saved = threads_enter(s);
    gv_dnnl_entry *e = NULL;
    gv_status st = conv_entry(s, GV_DNNL_CONV_FWD, d, b != NULL, shape, &e);
    if (st == GV_OK) {
        gv_dnnl_bind binds[] = {
            {DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}};
        st = entry_run(s, e, binds, 4, shape);
    }
    threads_leave(saved);
    return st;
}

/* dx, dw may be NULL; db is honoured only together with dw (the caller reduces db alone). */
gv_status gv_dnnl_conv2d_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, const gv_conv2d_dims *d) {
    struct gv_dnnl_state *s = state_of(c);
    if (!dw) db = NULL;
    size_t nx = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->K * d->C * d->R * d->S;
    size_t mark = gv_arena_mark(&c->scratch);
    float *dx_new = NULL, *dw_new = NULL, *db_new = NULL; /* (N,C,H,W), (K,C,R,S), (K) */
    gv_status st = GV_OK;
    if (dx) st = gv_arena_floats(&c->scratch, nx, &dx_new);
    if (st == GV_OK && dw) st = gv_arena_floats(&c->scratch, nw, &dw_new);
    if (st == GV_OK && db) st = gv_arena_floats(&c->scratch, (size_t)d->K, &db_new);
    if (st != GV_OK || c->scratch.measuring) { /* a measure pass only counts the scratch */
        gv_arena_reset_to(&c->scratch, mark);
        return st;
    }
    char shape[160];
    int saved = threads_enter(s);
    gv_dnnl_entry *e = NULL;
    if (dx) {
        conv_shape(shape, sizeof shape, GV_DNNL_CONV_BWD_DATA, d);
        st = conv_entry(s, GV_DNNL_CONV_BWD_DATA, d, 0, shape, &e);
        gv_dnnl_bind binds[] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx_new}};
        if (st == GV_OK) st = entry_run(s, e, binds, 3, shape);
        if (st == GV_OK) add_into(c->threads, dx, dx_new, nx);
    }
    if (st == GV_OK && dw) {
        conv_shape(shape, sizeof shape, GV_DNNL_CONV_BWD_WEIGHTS, d);
        st = conv_entry(s, GV_DNNL_CONV_BWD_WEIGHTS, d, db != NULL, shape, &e);
        gv_dnnl_bind binds[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy},
                                {DNNL_ARG_DIFF_WEIGHTS, dw_new}, {DNNL_ARG_DIFF_BIAS, db_new}};
        if (st == GV_OK) st = entry_run(s, e, binds, 4, shape);
        if (st == GV_OK) add_into(c->threads, dw, dw_new, nw);
        if (st == GV_OK && db) add_into(c->threads, db, db_new, (size_t)d->K);
    }
    threads_leave(saved);
    gv_arena_reset_to(&c->scratch, mark);
    return st;
}

/* ---- matmul ---------------------------------------------------------------------------------- */

static gv_status matmul_entry_build(struct gv_dnnl_state *s, gv_dnnl_entry *e,
                                    const gv_dnnl_matmul_args *m, int has_bias, const char *shape) {
    dnnl_memory_desc_t a_md, b_md, b_any, bias_md, y_md;
    dnnl_dims_t a_dims = {m->B, m->M, m->K}, b_dims = {m->B, m->K, m->N};
    dnnl_dims_t bias_dims = {1, 1, m->N}, y_dims = {m->B, m->M, m->N};
    /* acb over (B, rows, cols) = each matrix stored transposed. */
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &a_md, 3, a_dims, dnnl_f32,
                   m->a_trans ? dnnl_acb : dnnl_abc));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &b_md, 3, b_dims, dnnl_f32,
                   m->b_trans ? dnnl_acb : dnnl_abc));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &b_any, 3, b_dims, dnnl_f32,
                   dnnl_format_tag_any));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &bias_md, 3, bias_dims, dnnl_f32, dnnl_abc));
    GV_TRY(GV_DNNL(shape, dnnl_memory_desc_init_by_tag, &y_md, 3, y_dims, dnnl_f32, dnnl_abc));
    dnnl_matmul_desc_t md;
    GV_TRY(GV_DNNL(shape, dnnl_matmul_desc_init, &md, &a_md, &b_any, has_bias ? &bias_md : NULL,
                   &y_md));
    gv_status st;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(shape, &st);
    dnnl_primitive_desc_t pd = NULL;
    if (st == GV_OK) st = GV_DNNL(shape, dnnl_primitive_desc_create, &pd, &md, attr, s->engine, NULL);
    if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_SRC, 0, &a_md, shape);
    if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_WEIGHTS, 0, &b_md, shape);
    if (st == GV_OK && has_bias) st = entry_add_arg(s, e, pd, DNNL_ARG_BIAS, 0, &bias_md, shape);
    if (st == GV_OK) st = entry_add_arg(s, e, pd, DNNL_ARG_DST, 1, &y_md, shape);
    if (st == GV_OK) st = entry_set_primitive(s, e, pd, shape);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

typedef struct matmul_request {
    const gv_dnnl_matmul_args *m;
    int has_bias;
} matmul_request;

static gv_status matmul_build(struct gv_dnnl_state *s, gv_dnnl_entry *e, const void *request,
                              const char *shape) {
    const matmul_request *r = request;
    return matmul_entry_build(s, e, r->m, r->has_bias, shape);
}

static gv_status matmul_entry(struct gv_dnnl_state *s, const gv_dnnl_matmul_args *m, int has_bias,
                              const char *shape, gv_dnnl_entry **out) {
    gv_dnnl_key key;
    memset(&key, 0, sizeof key);
    key.kind = GV_DNNL_MATMUL;
    int v[] = {m->B, m->M, m->K, m->N, m->a_trans, m->b_trans, has_bias};
    memcpy(key.v, v, sizeof v);
    matmul_request r = {m, has_bias};
    return cache_get(s, &key, matmul_build, &r, shape, out);
}

gv_status gv_dnnl_matmul(gv_ctx *c, float *y, const float *a, const float *b, const float *bias,
                         const gv_dnnl_matmul_args *m) {
    struct gv_dnnl_state *s = state_of(c);
    size_t ny = (size_t)m->B * m->M * m->N;
    size_t mark = gv_arena_mark(&c->scratch);
    float *out = y; /* (B,M,N) */
    if (m->accumulate) {
        gv_status st = gv_arena_floats(&c->scratch, ny, &out);
        if (st != GV_OK || c->scratch.measuring) {
            gv_arena_reset_to(&c->scratch, mark);
            return st;
        }
    }
    char shape[192];
    snprintf(shape, sizeof shape, "matmul (B=%d M=%d K=%d N=%d%s%s%s)", m->B, m->M, m->K, m->N,
             m->a_trans ? ", a transposed" : "", m->b_trans ? ", b transposed" : "",
             bias ? ", bias" : "");
    int saved = threads_enter(s);
    gv_dnnl_entry *e = NULL;
    gv_status st = matmul_entry(s, m, bias != NULL, shape, &e);
    gv_dnnl_bind binds[] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_BIAS, bias},
                            {DNNL_ARG_DST, out}};
    if (st == GV_OK) st = entry_run(s, e, binds, 4, shape);
    if (st == GV_OK && m->accumulate) add_into(c->threads, y, out, ny);
    threads_leave(saved);
    gv_arena_reset_to(&c->scratch, mark);
    return st;
}

/* ---- state, hooks, describe ------------------------------------------------------------------ */

gv_status gv_dnnl_state_create(gv_ctx *c, struct gv_dnnl_state **out) {
    *out = NULL;
    struct gv_dnnl_state *s = calloc(1, sizeof *s);
    if (!s) return GV_ERROR(GV_ERR_OOM, "oneDNN state: out of memory");
    s->threads = c->threads > 0 ? c->threads : 1;
    const char *what = "creating the CPU engine and stream";
    gv_status st = GV_DNNL(what, dnnl_engine_create, &s->engine, dnnl_cpu, 0);
    if (st == GV_OK)
        st = GV_DNNL(what, dnnl_stream_create, &s->stream, s->engine, dnnl_stream_default_flags);
    if (st != GV_OK) {
        gv_dnnl_state_destroy(s);
        return st;
    }
    *out = s;
    return GV_OK;
}

void gv_dnnl_state_destroy(struct gv_dnnl_state *s) {
    if (!s) return;
    for (int i = 0; i < s->count; i++) entry_destroy(s->entries[i]);
    free(s->entries);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->engine) dnnl_engine_destroy(s->engine);
    free(s);
}

void gv_dnnl_cache_stats_get(gv_ctx *c, gv_dnnl_cache_stats *out) {
    struct gv_dnnl_state *s = state_of(c);
    memset(out, 0, sizeof *out);
    if (!s) return;
    out->entries = s->count;
    out->created = s->created;
    out->reused = s->reused;
}

const char *gv_dnnl_last_impl(gv_ctx *c) {
    struct gv_dnnl_state *s = state_of(c);
    return s ? s->last_impl : "";
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "any";
    }
}

static char describe_buf[96];
static pthread_once_t describe_once = PTHREAD_ONCE_INIT;
static void describe_init(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(describe_buf, sizeof describe_buf, "oneDNN %d.%d.%d (cpu isa: %s)", v->major, v->minor,
             v->patch, isa_name(dnnl_get_effective_cpu_isa()));
}

const char *gv_dnnl_describe(void) {
    pthread_once(&describe_once, describe_init);
    return describe_buf;
}
