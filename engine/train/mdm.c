/* Masked-diffusion models at run time (grove/mdm.h): the mdt behind the masked sampler's logits
 * callback, and the Sudoku solve-rate evaluation. The runner's arena is sized once by a measure
 * pass for max_rows; a call with more rows runs in chunks. Not here: training, estimators. */
#include "grove/mdm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rundir.h"
#include "grove/sudoku.h"

gv_status gv_mdm_runner_init(gv_mdm_runner *r, const gv_image_model *model, gv_ctx *ctx,
                             int max_rows) {
    memset(r, 0, sizeof *r);
    if (model->kind != GV_MODEL_MDT)
        return GV_ERROR(GV_ERR_INVALID, "%s: a %s is not a masked-diffusion model (mdt)",
                        model->path[0] ? model->path : "model", gv_model_kind_name(model->kind));
    if (max_rows < 1) return GV_ERROR(GV_ERR_INVALID, "mdm runner: max_rows %d", max_rows);
    r->model = model;
    r->theta = model->params.values;
    r->ctx = ctx;
    r->max_rows = max_rows;
    const gv_mdt_config *c = &model->mdt.cfg;
    const size_t ids_bytes = (size_t)max_rows * c->seq_len * sizeof(int32_t);
    const size_t nl = (size_t)max_rows * c->seq_len * c->vocab_size;
    gv_arena_init(&r->arena, ctx->backend, "masked-diffusion activations");
    gv_arena_measure_begin(&r->arena);
    GV_TRY(gv_arena_alloc(&r->arena, ids_bytes, (void **)&r->ids));
    GV_TRY(gv_arena_floats(&r->arena, nl, &r->logits));
    GV_TRY(gv_mdt_forward(&model->mdt, ctx, &r->arena, r->theta, max_rows, r->ids, r->logits, &r->saved));
    GV_TRY(gv_arena_reserve(&r->arena, gv_arena_measure_end(&r->arena)));
    GV_TRY(gv_arena_alloc(&r->arena, ids_bytes, (void **)&r->ids));
    GV_TRY(gv_arena_floats(&r->arena, nl, &r->logits));
    r->mark = gv_arena_mark(&r->arena);
    return GV_OK;
}

void gv_mdm_runner_free(gv_mdm_runner *r) {
    if (r->model) gv_arena_release(&r->arena);
    if (r->sampler_dev) r->ctx->backend->free(r->sampler_dev);
    memset(r, 0, sizeof *r);
}

gv_status gv_mdm_logits(void *user, int rows, const int32_t *tokens, float *logits) {
    gv_mdm_runner *r = user;
    const gv_mdt_config *c = &r->model->mdt.cfg;
    const gv_backend *be = r->ctx->backend;
    const int64_t T = c->seq_len, V = c->vocab_size;
    for (int start = 0; start < rows; start += r->max_rows) {
        const int nb = rows - start < r->max_rows ? rows - start : r->max_rows;
        GV_TRY(be->copy_from_host(r->ids, tokens + start * T, (size_t)nb * T * sizeof(int32_t)));
        gv_arena_reset_to(&r->arena, r->mark);
        GV_TRY(gv_mdt_forward(&r->model->mdt, r->ctx, &r->arena, r->theta, nb, r->ids, r->logits,
                              &r->saved));
        GV_TRY(be->copy_to_host(logits + start * T * V, r->logits, (size_t)nb * T * V * sizeof(float)));
        r->forwards += nb;
    }
    return GV_OK;
}

gv_status gv_mdm_logits_device(void *user, int rows, const int32_t *tokens, float *logits) {
    gv_mdm_runner *r = user;
    const gv_mdt_config *c = &r->model->mdt.cfg;
    const int64_t T = c->seq_len, V = c->vocab_size;
    for (int start = 0; start < rows; start += r->max_rows) {
        const int nb = rows - start < r->max_rows ? rows - start : r->max_rows;
        gv_arena_reset_to(&r->arena, r->mark);
        GV_TRY(gv_mdt_forward(&r->model->mdt, r->ctx, &r->arena, r->theta, nb, tokens + start * T,
                              logits + start * T * V, &r->saved));
        r->forwards += nb;
    }
    return GV_OK;
}

gv_status gv_sudoku_test_level(const gv_dataset *ds, int blanks, int64_t *first, int64_t *count) {
    const gv_sudoku_plan *pl = gv_sudoku_plan_of(ds->kind);
    if (!pl) return GV_ERROR(GV_ERR_INVALID, "not a Sudoku dataset");
    const int k = (blanks - pl->test_blanks_first) / pl->test_blanks_step;
    if (blanks < pl->test_blanks_first || (blanks - pl->test_blanks_first) % pl->test_blanks_step ||
        k >= pl->test_levels)
        return GV_ERROR(GV_ERR_INVALID, "%d blanks is not a test level of %s (%d, %d, ... %d)",
                        blanks, gv_dataset_kind_get(ds->kind)->name, pl->test_blanks_first,
                        pl->test_blanks_first + pl->test_blanks_step,
                        pl->test_blanks_first + (pl->test_levels - 1) * pl->test_blanks_step);
    *first = (int64_t)k * ds->test_per_class;
    *count = ds->test_per_class;
    return GV_OK;
}

gv_status gv_sudoku_evaluate(gv_mdm_runner *r, const gv_dataset_split *split, const int64_t *rows,
                             int64_t n, const gv_sudoku_eval_options *o, gv_sudoku_eval_result *out) {
    memset(out, 0, sizeof *out);
    const int S = split->h, T = S * S;
    const gv_mdt_config *mc = &r->model->mdt.cfg;
    if (split->c != 2 || !gv_sudoku_side_ok(S) || mc->seq_len != T || mc->vocab_size != GV_SUDOKU_VOCAB(S))
        return GV_ERROR(GV_ERR_INVALID, "sudoku eval: the model (T %d, V %d) does not fit %dx%d "
                        "puzzles", mc->seq_len, mc->vocab_size, S, S);
    if (n < 1 || n > 65536 || o->batch < 1)
        return GV_ERROR(GV_ERR_INVALID, "sudoku eval: %lld puzzles (1..65536), batch %d",
                        (long long)n, o->batch);
    int steps = o->steps;
    for (int64_t i = 0; i < n && !o->steps; ++i) {
        if (rows[i] < 0 || rows[i] >= split->n) break;
        int b = gv_sudoku_blanks(gv_sudoku_puzzle(split, rows[i]), S);
        if (b > steps) steps = b;
    }
    if (steps < 1) steps = 1;
    const int B = o->batch < n ? o->batch : (int)n;
    gv_masked_config mc_s = {.N = B, .T = T, .V = GV_SUDOKU_VOCAB(S), .mask_id = GV_SUDOKU_MASK(S),
                             .steps = steps, .blocks = 1, .seed = o->seed,
                             .stream = GV_RNG_STREAM_EVAL,
                             .addr = {.purpose = GV_RNG_PURPOSE_MASK_UNIFORM}};
    /* the sampler runs on the runner's backend: its canvas and logits live there (the runner's
       grow-only block, allocated at the first evaluation) */
    const gv_backend *be = r->ctx->backend;
    const size_t sb = gv_masked_host_bytes(&mc_s, 1), db = gv_masked_device_bytes(&mc_s, 1);
    if (db > r->sampler_dev_bytes) {
        if (r->sampler_dev) be->free(r->sampler_dev);
        r->sampler_dev = NULL;
        r->sampler_dev_bytes = 0;
        GV_TRY(be->alloc(db, &r->sampler_dev));
        r->sampler_dev_bytes = db;
    }
    void *dev = r->sampler_dev;
    void *scratch = malloc(sb);
    int32_t *tokens = malloc((size_t)B * T * sizeof(int32_t));
    if (!scratch || !tokens) {
        free(scratch);
        free(tokens);
        return GV_ERROR(GV_ERR_OOM, "sudoku eval: out of memory");
    }
    const double t0 = gv_rundir_now();
    const int64_t f0 = r->forwards;
    double reward = 0.0;
    int64_t cells = 0, correct = 0;
    gv_status s = GV_OK;
    for (int64_t start = 0; start < n && s == GV_OK; start += B) {
        const int nb = (int)(n - start < B ? n - start : B);
        for (int i = 0; i < nb; ++i) {
            if (rows[start + i] < 0 || rows[start + i] >= split->n) {
                s = GV_ERROR(GV_ERR_INVALID, "sudoku eval: row %lld outside the split",
                             (long long)rows[start + i]);
                break;
            }
            gv_sudoku_tokens_from_grid(gv_sudoku_puzzle(split, rows[start + i]), S, tokens + (int64_t)i * T);
        }
        if (s != GV_OK) break;
        gv_masked_config c = mc_s;
        c.N = nb;
        c.slot0 = (uint32_t)start;
        gv_masked_knobs k = {.step_fn = NULL};
        if (o->knobs) {
            k = *o->knobs;
            for (int q = 0; q < GV_KNOB_COUNT; ++q)
                k.v[q] = o->knobs->v[q] ? o->knobs->v[q] + start * steps : NULL;
        }
        s = gv_masked_sample_on(r->ctx, &c, &k, gv_mdm_logits_device, r, tokens, NULL, dev, db,
                                scratch, sb);
        for (int i = 0; i < nb && s == GV_OK; ++i) {
            const uint8_t *puz = gv_sudoku_puzzle(split, rows[start + i]);
            const uint8_t *sol = gv_sudoku_solution(split, rows[start + i]);
            uint8_t filled[GV_SUDOKU_MAX_CELLS];
            gv_sudoku_grid_from_tokens(tokens + (int64_t)i * T, S, filled);
            const float score = gv_sudoku_score(puz, sol, filled, S);
            reward += score;
            out->solved += score >= 1.5f; /* the +1 bonus: solved */
            if (o->solved_each) o->solved_each[start + i] = score >= 1.5f;
            if (o->reward_each) o->reward_each[start + i] = score;
            for (int p = 0; p < T; ++p)
                if (!puz[p]) cells++, correct += filled[p] == sol[p];
        }
    }
    free(scratch);
    free(tokens);
    GV_TRY(s);
    out->n = n;
    out->steps = steps;
    out->solve_rate = (double)out->solved / (double)n;
    const double z = 1.96, p = out->solve_rate, nn = (double)n;
    const double den = 1.0 + z * z / nn, mid = (p + z * z / (2 * nn)) / den;
    const double half = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / den;
    out->ci_lo = mid - half;
    out->ci_hi = mid + half;
    out->mean_reward = reward / nn;
    out->cell_accuracy = cells ? (double)correct / (double)cells : 1.0;
    out->nfe = r->forwards - f0;
    out->seconds = gv_rundir_now() - t0;
    return GV_OK;
}
