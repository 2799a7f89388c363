/* The task config's algorithm sections as tree-library structs, and their load-time rules (see
 * grove/algorithm_config.h; ALGORITHMS.md §4–7, §9). Host code over the bound config only.
 * Deliberately not here: the schema tables (run_config.c) and anything that runs a model. */
#include "grove/algorithm_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/grpo.h"

/* ---- messages --------------------------------------------------------------------------------- */

typedef struct where {
    const char *path;
    const gv_config_result *res;
} where;

static gv_status fail(const where *w, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static gv_status fail(const where *w, const char *key, const char *fmt, ...) {
    char cause[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    char from[160] = "";
    if (w->res) { /* a list item's origin is its list's */
        char list[128];
        snprintf(list, sizeof list, "%s", key);
        char *dot = strrchr(list, '.');
        if (dot && dot[1] >= '0' && dot[1] <= '9') *dot = '\0';
        const gv_cfg_origin o = gv_config_origin_of(w->res, list);
        if (o == GV_ORIGIN_PRESET && w->res->preset)
            snprintf(from, sizeof from, " (from preset %s)", w->res->preset);
        else if (o != GV_ORIGIN_DEFAULT)
            snprintf(from, sizeof from, " (from %s)", gv_cfg_origin_name(o));
    }
    return GV_ERROR(GV_ERR_CONFIG, "%s: %s: %s%s", w->path ? w->path : "config", key, cause, from);
}

/* ---- step lists ------------------------------------------------------------------------------- */

/* Integer steps of a number list, each in 0..N-2 and distinct; `key` names the list. */
static gv_status step_list(const where *w, const char *key, const double *v, int n, int N,
                           int *steps) {
    uint8_t seen[GV_TOPOLOGY_MAX_STEPS] = {0};
    for (int j = 0; j < n; ++j) {
        char item[96];
        snprintf(item, sizeof item, "%s.%d", key, j);
        if (v[j] != floor(v[j])) return fail(w, item, "%g is not an integer step", v[j]);
        if (v[j] < 0 || v[j] > N - 2)
            return fail(w, item, "step %g is beyond the stochastic steps 0..%d (sampler.steps N = "
                        "%d; the last step N-1 is ODE)", v[j], N - 2, N);
        const int s = (int)v[j];
        if (seen[s]) return fail(w, item, "step %d is listed twice", s);
        seen[s] = 1;
        steps[j] = s;
    }
    return GV_OK;
}

static gv_status splits_at(const gv_run_config *cfg, const where *w, int *steps, int *n) {
    const gv_branch_section *b = &cfg->branch;
    const int N = cfg->sampler.steps;
    *n = 0;
    if (b->n_splits > 0) {
        if (b->n_splits > N - 1) return fail(w, "branch.splits", "%d splits for %d stochastic steps",
                                             b->n_splits, N - 1);
        GV_TRY(step_list(w, "branch.splits", b->splits, b->n_splits, N, steps));
        *n = b->n_splits;
        return GV_OK;
    }
    if (b->n_splits_frac > N - 1)
        return fail(w, "branch.splits_frac", "%d splits for %d stochastic steps", b->n_splits_frac,
                    N - 1);
    double as_steps[GV_TOPOLOGY_MAX_STEPS];
    int tmp[GV_TOPOLOGY_MAX_STEPS];
    if (gv_topology_splits_from_frac(N, b->splits_frac, b->n_splits_frac, tmp) != GV_OK)
        return fail(w, "branch.splits_frac", "%s", gv_last_error());
    for (int j = 0; j < b->n_splits_frac; ++j) as_steps[j] = tmp[j]; /* floor(f N + 0.5), §6 */
    GV_TRY(step_list(w, "branch.splits_frac", as_steps, b->n_splits_frac, N, steps));
    *n = b->n_splits_frac;
    return GV_OK;
}

static gv_status branch_steps_at(const gv_run_config *cfg, const where *w, int *steps, int *n) {
    const gv_topology_section *t = &cfg->topology;
    const int N = cfg->sampler.steps;
    if (t->n_branch_steps > 0) {
        if (t->n_branch_steps > N - 1)
            return fail(w, "topology.branch_steps", "%d steps for %d stochastic steps",
                        t->n_branch_steps, N - 1);
        GV_TRY(step_list(w, "topology.branch_steps", t->branch_steps, t->n_branch_steps, N, steps));
        *n = t->n_branch_steps;
        return GV_OK;
    }
    *n = 0;
    for (int i = 0; i <= N - 2; i += t->branch_every) steps[(*n)++] = i; /* ALGORITHMS.md §4 */
    return GV_OK;
}

gv_status gv_run_config_splits(const gv_run_config *cfg, int *steps, int *n) {
    const where w = {NULL, NULL};
    return splits_at(cfg, &w, steps, n);
}

gv_status gv_run_config_branch_steps(const gv_run_config *cfg, int *steps, int *n) {
    const where w = {NULL, NULL};
    return branch_steps_at(cfg, &w, steps, n);
}

/* ---- structs ---------------------------------------------------------------------------------- */

/* The SDE steps of iteration 0: stochastic steps 0..N-2 (none at level 0 / ode), inside the
   window at its iteration-0 position (step_select.c owns the window rule). */
static gv_status sde_mask0(const gv_run_config *cfg, uint8_t *sde) {
    const int N = cfg->sampler.steps;
    const int on = cfg->sampler.noise.kind != GV_NOISE_ODE && cfg->sampler.noise.level > 0.0;
    int l = -1;
    if (gv_grpo_window_start(cfg, (uint32_t)cfg->run.seed, 0, &l) != GV_OK) {
        gv_clear_error(); /* a window that does not fit is refused at setup (grpo_setup.c) */
        l = -1;
    }
    for (int i = 0; i < N; ++i) {
        const int in_window = l < 0 || (i >= l && i < l + cfg->sampler.window.size);
        sde[i] = (uint8_t)(on && i <= N - 2 && in_window);
    }
    return GV_OK;
}

static gv_status topology_at(const gv_run_config *cfg, const where *w, const uint8_t *sde_steps,
                             gv_topology *t) {
    const int N = cfg->sampler.steps, G = cfg->group.size;
    uint8_t mask[GV_TOPOLOGY_MAX_STEPS];
    if (!sde_steps) {
        GV_TRY(sde_mask0(cfg, mask));
        sde_steps = mask;
    }
    int steps[GV_TOPOLOGY_MAX_STEPS], n = 0;
    gv_status s = GV_OK;
    const char *key = "topology";
    switch ((gv_topology_kind)cfg->topology.kind) {
    case GV_TOPOLOGY_CHAINS:
        s = gv_topology_chains(t, N, G, sde_steps);
        break;
    case GV_TOPOLOGY_BRANCH_POINTS:
        GV_TRY(branch_steps_at(cfg, w, steps, &n));
        s = gv_topology_branch_points(t, N, G, cfg->topology.K, steps, n);
        break;
    case GV_TOPOLOGY_TREE:
        GV_TRY(splits_at(cfg, w, steps, &n));
        if (n == 0) return fail(w, "branch.splits", "a tree needs at least one split step "
                                "(branch.splits or branch.splits_frac)");
        if (cfg->topology.K < 2) return fail(w, "topology.K", "a tree splits into K >= 2 "
                                             "children, got %d", cfg->topology.K);
        s = gv_topology_tree(t, N, G, cfg->topology.K, cfg->branch.split_scale,
                             (gv_split_density)cfg->branch.split_density, steps, n, sde_steps);
        break;
    default:
        return fail(w, "topology.kind", "unknown kind %d", cfg->topology.kind);
    }
    if (s != GV_OK) return fail(w, key, "%s", gv_last_error());
    /* the RNG node field must hold every root of the iteration's prompts (tree.h) */
    int64_t nodes, rows, children;
    if (gv_topology_sizes(t, cfg->group.prompts_per_iteration, &nodes, &rows, &children) != GV_OK)
        return fail(w, key, "%s", gv_last_error());
    if (nodes > INT32_MAX / 2)
        return fail(w, key, "%lld nodes per iteration (%d prompts) are too many", (long long)nodes,
                    cfg->group.prompts_per_iteration);
    return GV_OK;
}

gv_status gv_run_config_topology(const gv_run_config *cfg, const uint8_t *sde_steps,
                                 gv_topology *t) {
    const where w = {NULL, NULL};
    return topology_at(cfg, &w, sde_steps, t);
}

gv_status gv_run_config_prune(const gv_run_config *cfg, gv_prune_spec *p) {
    const gv_prune_section *s = &cfg->branch.prune;
    memset(p, 0, sizeof *p);
    p->width = (gv_prune_width)s->width;
    p->width_ratio = s->ratio;
    p->depth = (gv_prune_depth)s->depth;
    p->interval = s->interval;
    p->stop_depth = s->stop_depth;
    if (s->n_depths > GV_PRUNE_MAX_DEPTHS)
        return GV_ERROR(GV_ERR_CONFIG, "branch.prune.depths: at most %d depths, got %d",
                        GV_PRUNE_MAX_DEPTHS, s->n_depths);
    for (int k = 0; k < s->n_depths; ++k) {
        if (s->depths[k] != floor(s->depths[k]))
            return GV_ERROR(GV_ERR_CONFIG, "branch.prune.depths.%d: %g is not an integer depth", k,
                            s->depths[k]);
        p->depths[k] = (int)s->depths[k];
    }
    p->n_depths = s->n_depths;
    return gv_prune_validate(p);
}

gv_credit_opts gv_run_config_credit_opts(const gv_run_config *cfg) {
    gv_credit_opts o;
    switch ((gv_credit_kind)cfg->credit.kind) {
    case GV_CREDIT_KIND_TEMPFLOW: o = gv_credit_opts_tempflow(); break;
    case GV_CREDIT_KIND_DENSE: o = gv_credit_opts_dense(); break;
    case GV_CREDIT_KIND_BRANCH: o = gv_credit_opts_branch(); break;
    default: o = gv_credit_opts_terminal(); break;
    }
    /* the preset's values beat the scheme defaults (they agree for the shipped presets) */
    o.weighting = (gv_credit_weighting)cfg->train.step_weight;
    o.std_eps = cfg->train.std_eps;
    o.adv_clip = cfg->train.adv_clip;
    o.group = (gv_credit_group)cfg->credit.group;
    o.fusion = (gv_fusion)cfg->branch.fusion;
    o.fusion_alpha = cfg->branch.fusion_alpha;
    o.N = cfg->sampler.steps;
    return o;
}

/* "all" -> GV_DENSE_COMPLETION_ALL, "n" -> n in 1..255; -2: invalid. */
static int parse_completion(const char *text) {
    if (!text || strcmp(text, "all") == 0) return GV_DENSE_COMPLETION_ALL;
    char *end;
    const long n = strtol(text, &end, 10);
    if (!*text || *end || n < 1 || n > 255) return -2;
    return (int)n;
}

int gv_run_config_dense_completion(const gv_run_config *cfg) {
    if (cfg->credit.kind != GV_CREDIT_KIND_DENSE) return 0;
    const int n = parse_completion(cfg->dense.completion_steps);
    return n == -2 ? 0 : n;
}

int gv_run_config_calibration_prompts(const gv_run_config *cfg) {
    const int P = cfg->group.prompts_per_iteration, C = cfg->dense.calibration_prompts;
    return C > 0 && C < P ? C : P;
}

/* ---- the rules -------------------------------------------------------------------------------- */

gv_status gv_run_config_check_algorithm(const gv_run_config *cfg, const char *path,
                                        const gv_config_result *res) {
    const where w = {path, res};
    static const gv_topology_kind needs[] = {
        [GV_CREDIT_KIND_TERMINAL] = GV_TOPOLOGY_CHAINS, [GV_CREDIT_KIND_TEMPFLOW] = GV_TOPOLOGY_BRANCH_POINTS,
        [GV_CREDIT_KIND_DENSE] = GV_TOPOLOGY_CHAINS, [GV_CREDIT_KIND_BRANCH] = GV_TOPOLOGY_TREE};
    static const char *const credit_names[] = {"terminal", "tempflow", "dense", "branch"};
    const int kind = cfg->topology.kind;
    if (needs[cfg->credit.kind] != (gv_topology_kind)kind)
        return fail(&w, "credit.kind", "%s needs topology.kind %s, not %s",
                    credit_names[cfg->credit.kind], gv_topology_kind_names[needs[cfg->credit.kind]],
                    gv_topology_kind_names[kind]);
    if (kind != GV_TOPOLOGY_CHAINS) {
        if (cfg->train.timestep_fraction != 1.0)
            return fail(&w, "train.timestep_fraction", "%g: %s select their trained edges "
                        "themselves (ALGORITHMS.md §3); keep 1", cfg->train.timestep_fraction,
                        gv_topology_kind_names[kind]);
        if (cfg->train.random_fraction != 0.0)
            return fail(&w, "train.random_fraction", "%g: %s select their trained edges "
                        "themselves (ALGORITHMS.md §3); keep 0", cfg->train.random_fraction,
                        gv_topology_kind_names[kind]);
    }
    if (kind == GV_TOPOLOGY_BRANCH_POINTS && cfg->sampler.window.kind != GV_WINDOW_NONE)
        return fail(&w, "sampler.window.kind", "branch points have an ODE trunk; an SDE window "
                    "does not apply");
    if (kind != GV_TOPOLOGY_TREE &&
        (cfg->branch.prune.width != GV_PRUNE_WIDTH_NONE || cfg->branch.prune.depth != GV_PRUNE_DEPTH_NONE))
        return fail(&w, cfg->branch.prune.width != GV_PRUNE_WIDTH_NONE ? "branch.prune.width"
                                                                        : "branch.prune.depth",
                    "pruning applies to trees only (topology.kind %s)", gv_topology_kind_names[kind]);
    if (kind == GV_TOPOLOGY_TREE) {
        gv_prune_spec p;
        if (gv_run_config_prune(cfg, &p) != GV_OK) return fail(&w, "branch.prune", "%s", gv_last_error());
    }
    if (parse_completion(cfg->dense.completion_steps) == -2)
        return fail(&w, "dense.completion_steps", "'%s': expected all or an integer 1..255",
                    cfg->dense.completion_steps);
    if (cfg->dense.calibrate && kind != GV_TOPOLOGY_CHAINS)
        return fail(&w, "dense.calibrate", "the calibration rounds are chain rollouts with ODE "
                    "completions; topology.kind %s cannot run them (keep calibrate false: psi = "
                    "psi0)", gv_topology_kind_names[kind]);
    if (cfg->dense.calibrate && cfg->sampler.noise.kind != GV_NOISE_CALIBRATED)
        return fail(&w, "dense.calibrate", "calibrates psi(i) of sampler.noise.kind calibrated; "
                    "the noise here is not calibrated");
    gv_topology t;
    return topology_at(cfg, &w, NULL, &t);
}

/* ---- the plan --------------------------------------------------------------------------------- */

gv_status gv_run_config_rollout_plan(const gv_run_config *cfg, gv_rollout_plan *out) {
    gv_topology t;
    GV_TRY(gv_run_config_topology(cfg, NULL, &t));
    gv_prune_spec prune;
    const int pruned = t.kind == GV_TOPOLOGY_TREE;
    if (pruned) GV_TRY(gv_run_config_prune(cfg, &prune));
    /* chains train the first T SDE steps (timestep_fraction; random_fraction trains as many) */
    uint8_t train[GV_TOPOLOGY_MAX_STEPS] = {0};
    if (t.kind == GV_TOPOLOGY_CHAINS) {
        int n_sde = 0;
        for (int i = 0; i < t.N; ++i) n_sde += t.sde[i];
        const double f = cfg->train.random_fraction > 0.0 ? cfg->train.random_fraction
                                                          : cfg->train.timestep_fraction;
        const int T = (int)floor(f * n_sde + 1e-9); /* ALGORITHMS.md §3, as step_select.c */
        for (int i = 0, k = 0; i < t.N && k < T; ++i)
            if (t.sde[i]) train[i] = 1, ++k;
    }
    gv_plan_opts o = {.n_prompts = cfg->group.prompts_per_iteration,
                      .prune = pruned ? &prune : NULL,
                      .train_step = t.kind == GV_TOPOLOGY_CHAINS ? train : NULL,
                      .dense_completion = gv_run_config_dense_completion(cfg)};
    return gv_rollout_plan_compute(&t, &o, out);
}
