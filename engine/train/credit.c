/* Credit assignment: rollout tree + rewards -> (edge, advantage, weight) triples (see credit.h;
 * ALGORITHMS.md §3–6). One grouping routine serves every scheme: members (a column, a step of a
 * prompt's chains, a depth of a tree) are sorted by group key and normalized within their group.
 * Pure host code, no allocation after gv_credit_work_init. Deliberately not here: terminal reward
 * statistics (advantage.c), pruning and reuse (prune.c). */
#include "grove/credit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "samplers/topology.h" /* GV_TOPOLOGY_MAX_STEPS */

const char *const gv_credit_weight_names[GV_CREDIT_WEIGHT_COUNT] = {"uniform", "noise_aware"};
const char *const gv_credit_group_names[GV_CREDIT_GROUP_COUNT] = {"root", "prompt"};
const char *const gv_fusion_names[GV_FUSION_COUNT] = {"mean", "prob_weighted"};

/* One member of a normalization group. */
typedef struct gv_credit_member {
    int64_t key;   /* group key: members of one group are contiguous after sorting */
    int32_t node;  /* pool index of the edge's child                              */
    int32_t valid;
    double value;  /* R, ΔR or the fused node value                                */
    double adv;    /* filled by normalize_groups                                   */
    int32_t keep;  /* the group is kept (>= 2 valid members, not all zero)         */
} gv_credit_member;

static gv_credit_opts opts_base(void) {
    return (gv_credit_opts){.weighting = GV_CREDIT_WEIGHT_UNIFORM, .std_eps = 1e-4, .adv_clip = 5.0,
                            .group = GV_CREDIT_GROUP_ROOT, .fusion = GV_FUSION_MEAN,
                            .fusion_alpha = 1.0};
}
gv_credit_opts gv_credit_opts_terminal(void) { return opts_base(); }
gv_credit_opts gv_credit_opts_dense(void) { return opts_base(); }
gv_credit_opts gv_credit_opts_tempflow(void) {
    gv_credit_opts o = opts_base();
    o.weighting = GV_CREDIT_WEIGHT_NOISE_AWARE; /* ALGORITHMS.md §4 */
    return o;
}
gv_credit_opts gv_credit_opts_branch(void) {
    gv_credit_opts o = opts_base();
    o.std_eps = 1e-8; /* ALGORITHMS.md §6 */
    return o;
}

gv_status gv_credit_work_init(gv_credit_work *w, int32_t capacity) {
    memset(w, 0, sizeof *w);
    if (capacity <= 0)
        return GV_ERROR(GV_ERR_INVALID, "credit: work capacity %d must be positive", capacity);
    w->first_child = malloc((size_t)capacity * sizeof *w->first_child);
    w->n_children = malloc((size_t)capacity * sizeof *w->n_children);
    w->value = malloc((size_t)capacity * sizeof *w->value);
    w->count = malloc((size_t)capacity * sizeof *w->count);
    w->members = malloc((size_t)capacity * sizeof *w->members);
    if (!w->first_child || !w->n_children || !w->value || !w->count || !w->members) {
        gv_credit_work_free(w);
        return GV_ERROR(GV_ERR_OOM, "credit: cannot allocate work for %d nodes", capacity);
    }
    w->capacity = capacity;
    return GV_OK;
}

void gv_credit_work_free(gv_credit_work *w) {
    free(w->first_child);
    free(w->n_children);
    free(w->value);
    free(w->count);
    free(w->members);
    memset(w, 0, sizeof *w);
}

gv_status gv_credit_noise_aware_weights(const float *std, const uint8_t *use, int N, float *w) {
    double sum = 0.0;
    int n = 0;
    for (int i = 0; i < N; ++i) {
        if (!use[i]) continue;
        if (!(std[i] > 0.0f) || !isfinite(std[i]))
            return GV_ERROR(GV_ERR_INVALID, "credit: noise-aware weight of step %d needs a "
                            "finite std > 0, got %g", i, (double)std[i]);
        sum += std[i];
        n++;
    }
    if (n == 0) return GV_ERROR(GV_ERR_INVALID, "credit: noise-aware weights with no trained step");
    const double mean = sum / n; /* ALGORITHMS.md §4: w_i = std_i / mean_{j in T} std_j */
    for (int i = 0; i < N; ++i) w[i] = use[i] ? (float)(std[i] / mean) : 0.0f;
    return GV_OK;
}

/* ---- shared plumbing ------------------------------------------------------------------------- */

static gv_status check_common(const gv_tree *t, const gv_credit_opts *o, gv_credit_work *w,
                              gv_credit_list *out, const char *scheme) {
    if (t->count > w->capacity)
        return GV_ERROR(GV_ERR_INVALID, "credit %s: %d nodes exceed the work capacity %d", scheme,
                        t->count, w->capacity);
    if (out->capacity < t->count - t->n_roots)
        return GV_ERROR(GV_ERR_INVALID, "credit %s: an output list of %d cannot hold %d edges",
                        scheme, out->capacity, t->count - t->n_roots);
    if (o->N <= 0 || o->N > GV_TOPOLOGY_MAX_STEPS)
        return GV_ERROR(GV_ERR_INVALID, "credit %s: N = %d steps out of range", scheme, o->N);
    for (int32_t c = t->n_roots; c < t->count; ++c)
        if (t->nodes[t->nodes[c].parent].step >= o->N)
            return GV_ERROR(GV_ERR_INVALID, "credit %s: node %d is beyond N = %d steps", scheme, c,
                            o->N);
    if ((unsigned)o->weighting >= GV_CREDIT_WEIGHT_COUNT ||
        (unsigned)o->group >= GV_CREDIT_GROUP_COUNT || (unsigned)o->fusion >= GV_FUSION_COUNT ||
        !(o->std_eps >= 0.0))
        return GV_ERROR(GV_ERR_INVALID, "credit %s: bad options (weighting %d, group %d, fusion "
                        "%d, eps %g)", scheme, (int)o->weighting, (int)o->group, (int)o->fusion,
                        o->std_eps);
    out->n = 0;
    return GV_OK;
}

/* Is the edge into pool node c trained? SDE, and its step selected. */
static int edge_trained(const gv_tree *t, const gv_credit_opts *o, int32_t c) {
    const gv_tree_node *n = &t->nodes[c];
    if (n->parent < 0 || !n->sde) return 0;
    const int step = t->nodes[n->parent].step;
    return !o->train_step || o->train_step[step];
}

/* Step weights over T = the steps with a trained edge in the tree (credit.h). */
static gv_status step_weights(const gv_tree *t, const gv_credit_opts *o,
                              float w[GV_TOPOLOGY_MAX_STEPS]) {
    uint8_t used[GV_TOPOLOGY_MAX_STEPS] = {0};
    int any = 0;
    for (int32_t c = t->n_roots; c < t->count; ++c)
        if (edge_trained(t, o, c)) used[t->nodes[t->nodes[c].parent].step] = 1, any = 1;
    for (int i = 0; i < GV_TOPOLOGY_MAX_STEPS; ++i) w[i] = 1.0f;
    if (o->weighting == GV_CREDIT_WEIGHT_UNIFORM || !any) return GV_OK;
    if (!o->step_std)
        return GV_ERROR(GV_ERR_INVALID, "credit: noise-aware weights need the per-step std");
    return gv_credit_noise_aware_weights(o->step_std, used, o->N, w);
}

/* Children of every node (contiguous in the pool: tree.h appends them together). */
static void link_children(const gv_tree *t, gv_credit_work *w) {
    for (int32_t i = 0; i < t->count; ++i) w->first_child[i] = -1, w->n_children[i] = 0;
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        const int32_t p = t->nodes[c].parent;
        if (w->first_child[p] < 0) w->first_child[p] = c;
        w->n_children[p]++;
    }
}

static int leaf_valid(const float *reward, const uint8_t *valid, int32_t i) {
    return (!valid || valid[i]) && isfinite(reward[i]);
}

/* Bottom-up node values (ALGORITHMS.md §6, reward fusion): value = mean of the valid leaves below
   (mean), or sum_c softmax_c(alpha logp_c) value(c) over children with a valid leaf
   (prob_weighted); count = valid leaves below. Children follow parents in the pool. */
static void fuse_values(const gv_tree *t, const float *reward, const uint8_t *valid,
                        gv_fusion fusion, double alpha, gv_credit_work *w, int32_t *n_masked) {
    *n_masked = 0;
    for (int32_t i = t->count - 1; i >= 0; --i) {
        const int32_t k0 = w->first_child[i], nk = w->n_children[i];
        if (nk == 0) {
            const int ok = leaf_valid(reward, valid, i);
            *n_masked += !ok;
            w->value[i] = ok ? (double)reward[i] : 0.0;
            w->count[i] = ok;
            continue;
        }
        double count = 0.0, value = 0.0;
        if (fusion == GV_FUSION_MEAN) {
            for (int32_t c = k0; c < k0 + nk; ++c) {
                count += w->count[c];
                value += w->value[c] * w->count[c]; /* back to the sum of valid leaves */
            }
            value = count > 0.0 ? value / count : 0.0;
        } else {
            double top = -INFINITY, z = 0.0;
            for (int32_t c = k0; c < k0 + nk; ++c)
                if (w->count[c] > 0.0 && alpha * t->nodes[c].logp_old > top)
                    top = alpha * t->nodes[c].logp_old;
            for (int32_t c = k0; c < k0 + nk; ++c) {
                if (w->count[c] <= 0.0) continue;
                const double e = exp(alpha * t->nodes[c].logp_old - top); /* stable softmax */
                z += e;
                value += e * w->value[c];
                count += w->count[c];
            }
            value = z > 0.0 ? value / z : 0.0;
        }
        w->value[i] = value;
        w->count[i] = count;
    }
}

static int member_cmp(const void *a, const void *b) {
    const gv_credit_member *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->node > y->node) - (x->node < y->node);
}

/* The normalization rule of one scheme's groups. */
typedef struct group_rule {
    int unbiased;       /* std with n-1 (branch) or n (tempflow, dense)                  */
    double eps;         /* A = (v - m)/(sd + eps)                                         */
    double sd_floor;    /* branch: sd < 1e-6 -> A = 0 (the group stays, its edges skip)   */
    int drop_all_zero;  /* tempflow / dense: a group whose advantages are all 0 is dropped */
} group_rule;

/* Sorts members by key and fills adv / keep group by group. */
static void normalize_groups(gv_credit_member *m, int32_t n, const group_rule *r,
                             gv_credit_stats *st) {
    qsort(m, (size_t)n, sizeof *m, member_cmp);
    for (int32_t a = 0; a < n;) {
        int32_t b = a;
        while (b < n && m[b].key == m[a].key) ++b;
        double sum = 0.0, k = 0.0;
        for (int32_t i = a; i < b; ++i)
            if (m[i].valid) sum += m[i].value, k += 1.0;
        int keep = k >= 2.0;
        if (!keep) st->n_groups_small++;
        double mean = keep ? sum / k : 0.0, ss = 0.0;
        for (int32_t i = a; i < b && keep; ++i)
            if (m[i].valid) ss += (m[i].value - mean) * (m[i].value - mean);
        const double sd = keep ? sqrt(ss / (r->unbiased ? k - 1.0 : k)) : 0.0;
        int all_zero = 1;
        for (int32_t i = a; i < b; ++i) {
            m[i].adv = 0.0;
            if (keep && m[i].valid && !(sd < r->sd_floor))
                m[i].adv = (m[i].value - mean) / (sd + r->eps);
            if (m[i].adv != 0.0) all_zero = 0;
        }
        if (keep && r->drop_all_zero && all_zero) {
            keep = 0;
            st->n_groups_zero++;
        }
        if (keep) st->n_groups++;
        for (int32_t i = a; i < b; ++i) m[i].keep = keep && m[i].valid;
        a = b;
    }
}

static gv_status emit(const gv_tree *t, gv_credit_list *out, int32_t child, double adv,
                      float weight, const gv_credit_opts *o, gv_credit_stats *st) {
    if (out->n >= out->capacity)
        return GV_ERROR(GV_ERR_INTERNAL, "credit: output list of %d is full", out->capacity);
    if (o->adv_clip > 0.0 && fabs(adv) > o->adv_clip) { /* clamp to +-adv_clip */
        adv = adv > 0.0 ? o->adv_clip : -o->adv_clip;
        st->n_clipped++;
    }
    const gv_tree_node *c = &t->nodes[child];
    out->edges[out->n++] = (gv_credit_edge){.child = child, .parent = c->parent, .root = c->root,
                                            .step = t->nodes[c->parent].step,
                                            .advantage = (float)adv, .weight = weight};
    return GV_OK;
}

static int edge_cmp(const void *a, const void *b) {
    const gv_credit_edge *x = a, *y = b;
    if (x->root != y->root) return x->root < y->root ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return (x->child > y->child) - (x->child < y->child);
}

void gv_credit_sort(gv_credit_list *list) {
    qsort(list->edges, (size_t)list->n, sizeof *list->edges, edge_cmp);
}

/* Output order (root, parent, child) and the advantage moments. */
static void finish(gv_credit_list *out, gv_credit_stats *st) {
    gv_credit_sort(out);
    st->n_edges = out->n;
    if (out->n == 0) return;
    double s = 0.0, ss = 0.0, lo = INFINITY, hi = -INFINITY;
    for (int32_t e = 0; e < out->n; ++e) {
        const double a = out->edges[e].advantage;
        s += a;
        lo = fmin(lo, a);
        hi = fmax(hi, a);
    }
    const double mean = s / out->n;
    for (int32_t e = 0; e < out->n; ++e)
        ss += (out->edges[e].advantage - mean) * (out->edges[e].advantage - mean);
    st->adv_mean = mean;
    st->adv_std = sqrt(ss / out->n);
    st->adv_min = lo;
    st->adv_max = hi;
}

/* ---- schemes --------------------------------------------------------------------------------- */

gv_status gv_credit_terminal(const gv_tree *t, const float *root_adv, const uint8_t *root_valid,
                             const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                             gv_credit_stats *st) {
    memset(st, 0, sizeof *st);
    GV_TRY(check_common(t, o, w, out, "terminal"));
    if (!t->is_chain)
        return GV_ERROR(GV_ERR_INVALID, "credit terminal: needs chains (one child per node)");
    float wt[GV_TOPOLOGY_MAX_STEPS];
    GV_TRY(step_weights(t, o, wt));
    for (int32_t r = 0; r < t->n_roots; ++r) st->n_masked += root_valid && !root_valid[r];
    /* ALGORITHMS.md §3: every trained step of a chain carries the chain's advantage */
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        const int32_t r = t->nodes[c].root;
        if (!edge_trained(t, o, c) || (root_valid && !root_valid[r])) continue;
        GV_TRY(emit(t, out, c, root_adv[r], wt[t->nodes[t->nodes[c].parent].step], o, st));
    }
    finish(out, st);
    return GV_OK;
}

gv_status gv_credit_tempflow(const gv_tree *t, const float *reward, const uint8_t *valid,
                             const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                             gv_credit_stats *st) {
    memset(st, 0, sizeof *st);
    GV_TRY(check_common(t, o, w, out, "tempflow"));
    float wt[GV_TOPOLOGY_MAX_STEPS];
    GV_TRY(step_weights(t, o, wt));
    link_children(t, w);
    int32_t masked;
    fuse_values(t, reward, valid, GV_FUSION_MEAN, 1.0, w, &masked); /* a branch's leaf reward */
    /* ALGORITHMS.md §4: a column = the K SDE branches of one trunk node (or, pooled, of every
       trunk of the prompt at that step) */
    int32_t n = 0;
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        const gv_tree_node *nd = &t->nodes[c];
        if (!nd->branch || t->nodes[nd->parent].branch || !edge_trained(t, o, c)) continue;
        const gv_tree_node *p = &t->nodes[nd->parent];
        const int64_t key = o->group == GV_CREDIT_GROUP_PROMPT
                                ? (int64_t)p->prompt * GV_TOPOLOGY_MAX_STEPS + p->step
                                : (int64_t)nd->parent;
        w->members[n++] = (gv_credit_member){.key = key, .node = c, .valid = w->count[c] > 0.0,
                                             .value = w->value[c]};
        st->n_masked += !(w->count[c] > 0.0);
    }
    normalize_groups(w->members, n, &(group_rule){.unbiased = 0, .eps = o->std_eps,
                                                  .sd_floor = 0.0, .drop_all_zero = 1}, st);
    for (int32_t i = 0; i < n; ++i) {
        if (!w->members[i].keep) continue;
        const int32_t c = w->members[i].node;
        GV_TRY(emit(t, out, c, w->members[i].adv, wt[t->nodes[t->nodes[c].parent].step], o, st));
    }
    finish(out, st);
    return GV_OK;
}

void gv_dense_gains(const float *R, const uint8_t *R_valid, int n_roots, int N, float *gains,
                    uint8_t *gain_valid) {
    for (int r = 0; r < n_roots; ++r)
        for (int i = 0; i < N; ++i) {
            const int64_t a = (int64_t)r * (N + 1) + i, b = a + 1;
            const int ok = (!R_valid || (R_valid[a] && R_valid[b])) && isfinite(R[a]) &&
                           isfinite(R[b]);
            /* ALGORITHMS.md §5: ΔR_i = R_{i+1} − R_i; a masked R_i masks both gains using it */
            gains[(int64_t)r * N + i] = ok ? R[b] - R[a] : 0.0f;
            gain_valid[(int64_t)r * N + i] = (uint8_t)ok;
        }
}

gv_status gv_credit_dense(const gv_tree *t, const float *R, const uint8_t *R_valid,
                          const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                          gv_credit_stats *st) {
    memset(st, 0, sizeof *st);
    GV_TRY(check_common(t, o, w, out, "dense"));
    if (!t->is_chain)
        return GV_ERROR(GV_ERR_INVALID, "credit dense: needs chains (one child per node)");
    float wt[GV_TOPOLOGY_MAX_STEPS];
    GV_TRY(step_weights(t, o, wt));
    const int N = o->N;
    int32_t n = 0;
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        if (!edge_trained(t, o, c)) continue;
        const gv_tree_node *nd = &t->nodes[c];
        const int32_t r = nd->root, i = t->nodes[nd->parent].step;
        const int64_t a = (int64_t)r * (N + 1) + i;
        const int ok = (!R_valid || (R_valid[a] && R_valid[a + 1])) && isfinite(R[a]) &&
                       isfinite(R[a + 1]);
        st->n_masked += !ok;
        /* ALGORITHMS.md §5: the gain of step i, grouped over the prompt's chains at step i */
        w->members[n++] = (gv_credit_member){
            .key = (int64_t)nd->prompt * GV_TOPOLOGY_MAX_STEPS + i, .node = c, .valid = ok,
            .value = ok ? (double)(R[a + 1] - R[a]) : 0.0};
    }
    normalize_groups(w->members, n, &(group_rule){.unbiased = 0, .eps = o->std_eps,
                                                  .sd_floor = 0.0, .drop_all_zero = 1}, st);
    for (int32_t i = 0; i < n; ++i) {
        if (!w->members[i].keep) continue;
        const int32_t c = w->members[i].node;
        GV_TRY(emit(t, out, c, w->members[i].adv, wt[t->nodes[t->nodes[c].parent].step], o, st));
    }
    finish(out, st);
    return GV_OK;
}

gv_status gv_credit_branch(const gv_tree *t, const float *reward, const uint8_t *valid,
                           const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                           gv_credit_stats *st) {
    memset(st, 0, sizeof *st);
    GV_TRY(check_common(t, o, w, out, "branch"));
    float wt[GV_TOPOLOGY_MAX_STEPS];
    GV_TRY(step_weights(t, o, wt));
    link_children(t, w);
    fuse_values(t, reward, valid, o->fusion, o->fusion_alpha, w, &st->n_masked);
    /* ALGORITHMS.md §6: depth-wise groups per tree (or per prompt); nodes without a valid leaf
       get no advantage */
    int32_t n = 0;
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        const gv_tree_node *nd = &t->nodes[c];
        const int64_t owner = o->group == GV_CREDIT_GROUP_PROMPT ? nd->prompt : nd->root;
        w->members[n++] = (gv_credit_member){.key = owner * (GV_TOPOLOGY_MAX_STEPS + 1) + nd->depth,
                                             .node = c, .valid = w->count[c] > 0.0,
                                             .value = w->value[c]};
    }
    normalize_groups(w->members, n, &(group_rule){.unbiased = 1, .eps = o->std_eps,
                                                  .sd_floor = 1e-6, .drop_all_zero = 0}, st);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t c = w->members[i].node;
        if (!w->members[i].keep || !edge_trained(t, o, c)) continue;
        if (w->members[i].adv == 0.0) { /* §6: edges with A = 0 are skipped */
            st->n_zero++;
            continue;
        }
        GV_TRY(emit(t, out, c, w->members[i].adv, wt[t->nodes[t->nodes[c].parent].step], o, st));
    }
    finish(out, st);
    return GV_OK;
}
