/* The masked-diffusion transformer's pretraining step on Sudoku (ALGORITHMS.md §10, Ref: LLaDA) and
 * its eval. Per row: t = ε + (1 − ε)·u (ε = 1e-3, u ~ U(0,1)), each completion position (a blank of
 * the puzzle) masked with probability t, each prompt position (a given) with probability
 * prompt_mask·t, the whole prompt masked with probability prompt_dropout (the CFG null prompt; 0 for
 * Sudoku); loss = Σ over masked completion positions of CE(logits, solution) / t, divided by the
 * row's completion count, averaged over the rows — one cross_entropy op call with row weights
 * 1/(t·m) and norm = rows. Randomness: Philox (seed, GV_RNG_STREAM_PRETRAIN) at (iteration = step,
 * slot = row): purpose TIMESTEP elements 0 (u) and 1 (dropout), purpose MASK_UNIFORM element p
 * (position p). The eval uses GV_RNG_STREAM_EVAL at iteration 0, so every eval sees the same masks.
 * Eval: that loss on eval.loss_images test puzzles spread over the levels, and the solve rate of
 * eval.puzzles test puzzles at eval.blanks blanks with the default schedule (grove/mdm.h).
 * Not here: the loop, optimizer, checkpoints (pretrain.c); the sampler (samplers/masked.c). */
#include <math.h>
#include <stdlib.h>

#include "grove/mdm.h"
#include "grove/pretrain.h"
#include "grove/rng.h"
#include "grove/sudoku.h"

#define T_EPS 1e-3

static int side(const gv_pretrain_job *j) { return j->data.h; }

/* Host + device batch of `rows` from `split` with masks from (seed, stream, iteration). */
static gv_status prepare_batch(gv_pretrain_job *j, const gv_dataset_split *split, const int64_t *rows,
                               int nb, uint32_t stream, uint32_t iteration, uint32_t slot0) {
    const gv_pretrain_config *cfg = j->cfg;
    const int S = side(j), T = S * S;
    uint32_t key[2];
    gv_rng_key(j->seed, stream, key);
    for (int i = 0; i < nb; ++i) {
        const uint8_t *puz = gv_sudoku_puzzle(split, rows[i]), *sol = gv_sudoku_solution(split, rows[i]);
        uint32_t ct[3], cm[3];
        GV_TRY(gv_rng_addr_pack(&(gv_rng_addr){.iteration = iteration, .slot = slot0 + (uint32_t)i,
                                               .purpose = GV_RNG_PURPOSE_TIMESTEP}, ct));
        GV_TRY(gv_rng_addr_pack(&(gv_rng_addr){.iteration = iteration, .slot = slot0 + (uint32_t)i,
                                               .purpose = GV_RNG_PURPOSE_MASK_UNIFORM}, cm));
        const double t = T_EPS + (1.0 - T_EPS) * gv_rng_uniform_at(key, ct, 0);
        const int drop = gv_rng_uniform_at(key, ct, 1) < cfg->train.prompt_dropout;
        const int m = gv_sudoku_blanks(puz, S);
        int32_t *ids = j->hids + (int64_t)i * T, *tg = j->htargets + (int64_t)i * T;
        float *w = j->hw + (int64_t)i * T;
        for (int p = 0; p < T; ++p) {
            const double u = gv_rng_uniform_at(key, cm, (uint64_t)p);
            const int completion = puz[p] == 0;
            const int masked = completion ? u < t : (drop || u < cfg->train.prompt_mask * t);
            tg[p] = (int32_t)sol[p] - 1;
            ids[p] = masked ? GV_SUDOKU_MASK(S) : tg[p];
            w[p] = (completion && masked) ? (float)(1.0 / (t * m)) : 0.0f;
        }
    }
    const size_t bt = (size_t)nb * T;
    GV_TRY(j->be->copy_from_host(j->ids, j->hids, bt * sizeof(int32_t)));
    GV_TRY(j->be->copy_from_host(j->targets, j->htargets, bt * sizeof(int32_t)));
    return j->be->copy_from_host(j->w, j->hw, bt * sizeof(float));
}

static gv_xent_dims xent_dims(const gv_pretrain_job *j, int nb) {
    const int T = side(j) * side(j);
    return (gv_xent_dims){.R = (int64_t)nb * T, .V = GV_SUDOKU_VOCAB(side(j)), .norm = (float)nb};
}

static gv_status forward_loss(gv_pretrain_job *j, const float *theta, int nb, float *loss) {
    gv_arena_reset(&j->arena);
    GV_TRY(gv_mdt_forward(&j->model.mdt, j->ctx, &j->arena, theta, nb, j->ids, j->out, &j->mdt_saved));
    gv_xent_dims d = xent_dims(j, nb);
    GV_TRY(j->be->ops->cross_entropy_forward(j->ctx, j->scalars, j->lse, j->out, j->targets, j->w, &d));
    return j->be->copy_to_host(loss, j->scalars, sizeof *loss);
}

static gv_status measure_pass(gv_pretrain_job *j) {
    const gv_params *ps = &j->model.params;
    GV_TRY(gv_mdt_forward(&j->model.mdt, j->ctx, &j->arena, ps->values, j->B, j->ids, j->out,
                          &j->mdt_saved));
    return gv_mdt_backward(&j->model.mdt, j->ctx, &j->arena, ps->values, ps->grads, &j->mdt_saved,
                           j->dout);
}

static gv_status mdt_setup(gv_pretrain_job *j) {
    const int S = side(j), T = S * S, V = GV_SUDOKU_VOCAB(S);
    if (j->data.c != 2 || !gv_sudoku_side_ok(S))
        return GV_ERROR(GV_ERR_CONFIG, "model.kind mdt: the dataset is not a Sudoku set");
    gv_mdt_config c = gv_pretrain_mdt_config(j->cfg, V, T);
    GV_TRY(gv_image_model_create(&j->model, GV_MODEL_MDT, &c, j->be, 1));
    const size_t bt = (size_t)j->B * T, btv = bt * V;
    GV_TRY(gv_pretrain_dev_alloc(j, bt * sizeof(int32_t), (void **)&j->ids));
    GV_TRY(gv_pretrain_dev_alloc(j, bt * sizeof(int32_t), (void **)&j->targets));
    GV_TRY(gv_pretrain_dev_alloc(j, bt * sizeof(float), (void **)&j->w));
    GV_TRY(gv_pretrain_dev_alloc(j, bt * sizeof(float), (void **)&j->lse));
    GV_TRY(gv_pretrain_dev_alloc(j, btv * sizeof(float), (void **)&j->out));
    GV_TRY(gv_pretrain_dev_alloc(j, btv * sizeof(float), (void **)&j->dout));
    GV_TRY(gv_pretrain_host_alloc(bt * sizeof(int32_t), (void **)&j->hids));
    GV_TRY(gv_pretrain_host_alloc(bt * sizeof(int32_t), (void **)&j->htargets));
    GV_TRY(gv_pretrain_host_alloc(bt * sizeof(float), (void **)&j->hw));
    GV_TRY(gv_pretrain_measure_arena(j, measure_pass));
    GV_TRY(gv_pretrain_host_alloc(sizeof(gv_mdm_runner), (void **)&j->mdm_runner));
    return gv_mdm_runner_init(j->mdm_runner, &j->model, j->ctx, j->B);
}

static gv_status mdt_loss_and_grad(gv_pretrain_job *j, int64_t step, const int64_t *rows, float *loss) {
    GV_TRY(prepare_batch(j, &j->data.train, rows, j->B, GV_RNG_STREAM_PRETRAIN, (uint32_t)step,
                         (uint32_t)j->slot0));
    GV_TRY(forward_loss(j, j->model.params.values, j->B, loss));
    if (!isfinite(*loss)) return GV_OK;
    gv_xent_dims d = xent_dims(j, j->B);
    GV_TRY(j->be->memset_zero(j->dout, (size_t)d.R * d.V * sizeof(float)));
    GV_TRY(j->be->ops->cross_entropy_backward(j->ctx, j->dout, j->scalars + 1, j->out, j->lse,
                                              j->targets, j->w, &d));
    return gv_mdt_backward(&j->model.mdt, j->ctx, &j->arena, j->model.params.values,
                           j->model.params.grads, &j->mdt_saved, j->dout);
}

static gv_status mdt_eval(gv_pretrain_job *j, const float *theta, gv_pretrain_eval *out) {
    const gv_pretrain_config *cfg = j->cfg;
    const gv_dataset_split *test = &j->data.test;
    const int64_t nl = cfg->eval.loss_images < test->n ? cfg->eval.loss_images : test->n;
    double sum = 0.0;
    for (int64_t start = 0; start < nl; start += j->B) {
        const int nb = (int)(nl - start < j->B ? nl - start : j->B);
        for (int i = 0; i < nb; ++i) j->hrows[i] = (start + i) * test->n / nl; /* spread over levels */
        GV_TRY(prepare_batch(j, test, j->hrows, nb, GV_RNG_STREAM_EVAL, 0, (uint32_t)start));
        float l;
        GV_TRY(forward_loss(j, theta, nb, &l));
        sum += (double)l * nb;
    }
    out->loss = nl > 0 ? (float)(sum / (double)nl) : NAN;
    out->accuracy = NAN;
    out->images = 0;
    if (cfg->eval.puzzles <= 0) return GV_OK;
    const gv_sudoku_plan *pl = gv_sudoku_plan_of(j->data.kind);
    const int blanks = cfg->eval.blanks ? cfg->eval.blanks
                                        : pl->test_blanks_first + (pl->test_levels / 2) * pl->test_blanks_step;
    int64_t first, count;
    GV_TRY(gv_sudoku_test_level(&j->data, blanks, &first, &count));
    const int64_t n = cfg->eval.puzzles < count ? cfg->eval.puzzles : count;
    int64_t *rows = malloc((size_t)n * sizeof *rows);
    if (!rows) return GV_ERROR(GV_ERR_OOM, "pretrain eval: out of memory");
    for (int64_t i = 0; i < n; ++i) rows[i] = first + i;
    j->mdm_runner->theta = theta;
    gv_sudoku_eval_options o = {.steps = cfg->eval.steps, .batch = j->B, .seed = j->seed};
    gv_sudoku_eval_result r;
    gv_status s = gv_sudoku_evaluate(j->mdm_runner, test, rows, n, &o, &r);
    free(rows);
    GV_TRY(s);
    out->accuracy = (float)r.solve_rate;
    out->images = n;
    return GV_OK;
}

const gv_pretrain_kind gv_pretrain_mdt_kind = {.name = "mdt",
                                               .setup = mdt_setup,
                                               .loss_and_grad = mdt_loss_and_grad,
                                               .eval = mdt_eval};
