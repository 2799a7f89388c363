/* Depth and width pruning of credit triples, and the training reuse plan (see prune.h;
 * ALGORITHMS.md §6). Pure host code; no allocation after the *_init calls. */
#include "grove/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const gv_prune_width_names[GV_PRUNE_WIDTH_COUNT] = {"none", "per_branch", "global"};
const char *const gv_prune_depth_names[GV_PRUNE_DEPTH_COUNT] = {"none", "fixed", "sliding"};

/* One tail edge in a width ranking. */
typedef struct gv_prune_rank {
    double adv;
    int32_t leaf, step, index; /* index: position in the credit list */
} gv_prune_rank;

gv_status gv_prune_work_init(gv_prune_work *w, int32_t capacity) {
    memset(w, 0, sizeof *w);
    if (capacity <= 0)
        return GV_ERROR(GV_ERR_INVALID, "prune: work capacity %d must be positive", capacity);
    w->leaf_of = malloc((size_t)capacity * sizeof *w->leaf_of);
    w->next = malloc((size_t)capacity * sizeof *w->next);
    w->ranks = malloc((size_t)capacity * sizeof *w->ranks);
    w->keep = malloc((size_t)capacity);
    if (!w->leaf_of || !w->next || !w->ranks || !w->keep) {
        gv_prune_work_free(w);
        return GV_ERROR(GV_ERR_OOM, "prune: cannot allocate work for %d nodes", capacity);
    }
    w->capacity = capacity;
    return GV_OK;
}

void gv_prune_work_free(gv_prune_work *w) {
    free(w->leaf_of);
    free(w->next);
    free(w->ranks);
    free(w->keep);
    memset(w, 0, sizeof *w);
}

gv_status gv_prune_validate(const gv_prune_spec *s) {
    if ((unsigned)s->width >= GV_PRUNE_WIDTH_COUNT || (unsigned)s->depth >= GV_PRUNE_DEPTH_COUNT)
        return GV_ERROR(GV_ERR_INVALID, "prune: width kind %d / depth kind %d unknown",
                        (int)s->width, (int)s->depth);
    if (s->width != GV_PRUNE_WIDTH_NONE && !(s->width_ratio > 0.0 && s->width_ratio <= 1.0))
        return GV_ERROR(GV_ERR_INVALID, "prune: width ratio %g must be in (0, 1]", s->width_ratio);
    if (s->depth == GV_PRUNE_DEPTH_NONE) return GV_OK;
    if (s->n_depths < 1 || s->n_depths > GV_PRUNE_MAX_DEPTHS)
        return GV_ERROR(GV_ERR_INVALID, "prune: depth pruning needs 1..%d depths, got %d",
                        GV_PRUNE_MAX_DEPTHS, s->n_depths);
    for (int j = 0; j < s->n_depths; ++j)
        if (s->depths[j] < 1)
            return GV_ERROR(GV_ERR_INVALID, "prune: depth %d must be >= 1 (edges end at depth "
                            ">= 1)", s->depths[j]);
    if (s->depth == GV_PRUNE_DEPTH_SLIDING && (s->interval < 1 || s->stop_depth < 1))
        return GV_ERROR(GV_ERR_INVALID, "prune: sliding depth pruning needs interval >= 1 and "
                        "stop_depth >= 1 (got %d, %d)", s->interval, s->stop_depth);
    return GV_OK;
}

gv_status gv_prune_depth_mask(const gv_prune_spec *s, int iteration, uint8_t *mask,
                              int max_depth) {
    GV_TRY(gv_prune_validate(s));
    memset(mask, 0, (size_t)max_depth + 1);
    if (s->depth == GV_PRUNE_DEPTH_NONE) return GV_OK;
    int shift = 0;
    if (s->depth == GV_PRUNE_DEPTH_SLIDING) { /* §6: one depth shallower every interval */
        int shallowest = s->depths[0];
        for (int j = 1; j < s->n_depths; ++j)
            if (s->depths[j] < shallowest) shallowest = s->depths[j];
        const int room = shallowest > s->stop_depth ? shallowest - s->stop_depth : 0;
        shift = iteration / s->interval;
        if (shift > room) shift = room;
        if (shift < 0) shift = 0;
    }
    for (int j = 0; j < s->n_depths; ++j) {
        const int d = s->depths[j] - shift;
        if (d >= 0 && d <= max_depth) mask[d] = 1;
    }
    return GV_OK;
}

static int rank_desc(const void *a, const void *b) { /* highest first, then (leaf, step) */
    const gv_prune_rank *x = a, *y = b;
    if (x->adv != y->adv) return x->adv > y->adv ? -1 : 1;
    if (x->leaf != y->leaf) return x->leaf < y->leaf ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

static int rank_by_leaf(const void *a, const void *b) { /* leaf, then highest first, then step */
    const gv_prune_rank *x = a, *y = b;
    if (x->leaf != y->leaf) return x->leaf < y->leaf ? -1 : 1;
    if (x->adv != y->adv) return x->adv > y->adv ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

static int rank_asc(const void *a, const void *b) { /* lowest first, then (leaf, step) */
    const gv_prune_rank *x = a, *y = b;
    if (x->adv != y->adv) return x->adv < y->adv ? -1 : 1;
    if (x->leaf != y->leaf) return x->leaf < y->leaf ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

/* The leaf below each node of a single-child chain (tail nodes): first the only child of every
   node (-1 when a node has 0 or >= 2 children), then bottom-up leaf_of. */
static void tail_leaves(const gv_tree *t, gv_prune_work *w) {
    for (int32_t i = 0; i < t->count; ++i) w->next[i] = -1, w->leaf_of[i] = -1;
    for (int32_t c = t->n_roots; c < t->count; ++c) {
        const int32_t p = t->nodes[c].parent;
        w->next[p] = w->next[p] == -1 ? c : -2; /* -2: two or more children */
    }
    for (int32_t i = t->count - 1; i >= 0; --i) {
        if (w->next[i] == -1) w->leaf_of[i] = i;                     /* a leaf */
        else if (w->next[i] >= 0) w->leaf_of[i] = w->leaf_of[w->next[i]]; /* a chain link */
    }
}

gv_status gv_prune_apply(const gv_prune_spec *s, const gv_tree *t, int last_split, int iteration,
                         gv_prune_work *w, gv_credit_list *list, gv_prune_stats *st) {
    memset(st, 0, sizeof *st);
    GV_TRY(gv_prune_validate(s));
    if (t->count > w->capacity || list->n > w->capacity)
        return GV_ERROR(GV_ERR_INVALID, "prune: %d nodes / %d edges exceed the work capacity %d",
                        t->count, list->n, w->capacity);
    st->n_in = list->n;
    int max_depth = 0;
    for (int32_t e = 0; e < list->n; ++e)
        if (t->nodes[list->edges[e].child].depth > max_depth)
            max_depth = t->nodes[list->edges[e].child].depth;
    uint8_t dropped[(1 << GV_RNG_STEP_BITS) + 1];
    if (max_depth > (1 << GV_RNG_STEP_BITS))
        return GV_ERROR(GV_ERR_INVALID, "prune: depth %d beyond the step field", max_depth);
    GV_TRY(gv_prune_depth_mask(s, iteration, dropped, max_depth));
    for (int32_t e = 0; e < list->n; ++e) {
        w->keep[e] = !dropped[t->nodes[list->edges[e].child].depth];
        st->n_depth_dropped += !w->keep[e];
    }
    if (s->width != GV_PRUNE_WIDTH_NONE) {
        tail_leaves(t, w);
        int32_t m = 0;
        for (int32_t e = 0; e < list->n; ++e) {
            const gv_credit_edge *ed = &list->edges[e];
            /* §6: tail edges are those whose parent step is > the last split step */
            if (!w->keep[e] || ed->step <= last_split) continue;
            if (w->leaf_of[ed->child] < 0)
                return GV_ERROR(GV_ERR_INVALID, "prune: tail edge into node %d (step %d) is not on "
                                "a single-child chain after the last split step %d", ed->child,
                                ed->step, last_split);
            w->ranks[m++] = (gv_prune_rank){.adv = ed->advantage, .leaf = w->leaf_of[ed->child],
                                            .step = ed->step, .index = e};
            w->keep[e] = 0; /* re-kept below when selected */
        }
        st->n_tail = m;
        if (s->width == GV_PRUNE_WIDTH_PER_BRANCH) {
            /* each leaf's tail chain: highest advantage first, ties by earlier step */
            qsort(w->ranks, (size_t)m, sizeof *w->ranks, rank_by_leaf);
            for (int32_t a = 0; a < m;) {
                int32_t b = a;
                while (b < m && w->ranks[b].leaf == w->ranks[a].leaf) ++b;
                int32_t keep = (int32_t)floor(s->width_ratio * (b - a) + 1e-9);
                if (keep < 1) keep = 1;
                for (int32_t i = a; i < a + keep; ++i) w->keep[w->ranks[i].index] = 1;
                a = b;
            }
        } else {
            int32_t k = (int32_t)floor(s->width_ratio * m + 1e-9);
            if (k < 2) k = 2;
            if (k > m) k = m;
            const int32_t high = k / 2, low = k - high;
            qsort(w->ranks, (size_t)m, sizeof *w->ranks, rank_desc);
            for (int32_t i = 0; i < high; ++i) w->keep[w->ranks[i].index] = 1;
            qsort(w->ranks, (size_t)m, sizeof *w->ranks, rank_asc);
            for (int32_t i = 0, got = 0; i < m && got < low; ++i)
                if (!w->keep[w->ranks[i].index]) {
                    w->keep[w->ranks[i].index] = 1;
                    got++;
                }
        }
        for (int32_t i = 0; i < m; ++i) st->n_tail_kept += w->keep[w->ranks[i].index];
    }
    int32_t n = 0;
    for (int32_t e = 0; e < list->n; ++e)
        if (w->keep[e]) list->edges[n++] = list->edges[e];
    list->n = n;
    st->n_out = n;
    return GV_OK;
}

gv_status gv_reuse_plan_init(gv_reuse_plan *p, int32_t capacity) {
    memset(p, 0, sizeof *p);
    if (capacity <= 0)
        return GV_ERROR(GV_ERR_INVALID, "reuse plan: capacity %d must be positive", capacity);
    p->parent = malloc((size_t)capacity * sizeof *p->parent);
    p->first = malloc(((size_t)capacity + 1) * sizeof *p->first);
    if (!p->parent || !p->first) {
        gv_reuse_plan_free(p);
        return GV_ERROR(GV_ERR_OOM, "reuse plan: cannot allocate %d entries", capacity);
    }
    p->capacity = capacity;
    return GV_OK;
}

void gv_reuse_plan_free(gv_reuse_plan *p) {
    free(p->parent);
    free(p->first);
    memset(p, 0, sizeof *p);
}

gv_status gv_reuse_plan_build(const gv_credit_list *list, gv_reuse_plan *p) {
    if (list->n > p->capacity)
        return GV_ERROR(GV_ERR_INVALID, "reuse plan: %d edges exceed the capacity %d", list->n,
                        p->capacity);
    p->n_parents = 0;
    for (int32_t e = 0; e < list->n; ++e) {
        const gv_credit_edge *a = &list->edges[e];
        if (e > 0) {
            const gv_credit_edge *b = &list->edges[e - 1];
            if (b->root > a->root || (b->root == a->root && (b->parent > a->parent ||
                                      (b->parent == a->parent && b->child >= a->child))))
                return GV_ERROR(GV_ERR_INVALID, "reuse plan: edges %d and %d are not sorted by "
                                "(root, parent, child)", e - 1, e);
            if (b->parent == a->parent) continue;
        }
        /* §6 engine rule: one forward at this parent serves all its kept children */
        p->parent[p->n_parents] = a->parent;
        p->first[p->n_parents++] = e;
    }
    p->first[p->n_parents] = list->n;
    return GV_OK;
}
