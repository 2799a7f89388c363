/* The classifier's pretraining step: x = 2p − 1, logits = classifier(x), loss = the
 * cross_entropy op with every row weight 1 and norm = rows (the batch mean), and its eval:
 * accuracy and mean loss on the whole TEST split with the given (EMA) weights. No randomness
 * beyond the data order (pretrain.c). */
#include <math.h>
#include <stdlib.h>

#include "grove/pretrain.h"

/* x, labels (backend) from rows of `split`. */
static gv_status prepare_batch(gv_pretrain_job *j, const gv_dataset_split *split,
                               const int64_t *rows, int nb) {
    GV_TRY(gv_dataset_batch_to_model(split, rows, nb, j->hx));
    for (int i = 0; i < nb; ++i) j->hids[i] = split->labels[rows[i]];
    GV_TRY(j->be->copy_from_host(j->x, j->hx, (size_t)nb * (size_t)j->D * sizeof(float)));
    return j->be->copy_from_host(j->ids, j->hids, (size_t)nb * sizeof(int32_t));
}

static gv_xent_dims xent_dims(const gv_pretrain_job *j, int nb) {
    return (gv_xent_dims){.R = nb, .V = j->model.classifier.cfg.classes, .norm = (float)nb};
}

static gv_status forward_loss(gv_pretrain_job *j, const float *theta, int nb, float *loss) {
    gv_arena_reset(&j->arena);
    GV_TRY(gv_classifier_forward(&j->model.classifier, j->ctx, &j->arena, theta, nb, j->x, j->out,
                                 &j->cls_saved));
    gv_xent_dims d = xent_dims(j, nb);
    GV_TRY(j->be->ops->cross_entropy_forward(j->ctx, j->scalars, j->lse, j->out, j->ids, j->w, &d));
    return j->be->copy_to_host(loss, j->scalars, sizeof *loss);
}

static gv_status measure_pass(gv_pretrain_job *j) {
    const gv_params *ps = &j->model.params;
    GV_TRY(gv_classifier_forward(&j->model.classifier, j->ctx, &j->arena, ps->values, j->B, j->x,
                                 j->out, &j->cls_saved));
    return gv_classifier_backward(&j->model.classifier, j->ctx, &j->arena, ps->values, ps->grads,
                                  &j->cls_saved, j->dout, NULL);
}

static gv_status classifier_setup(gv_pretrain_job *j) {
    gv_classifier_config c = gv_pretrain_classifier_config(j->cfg);
    c.in_channels = j->data.c;
    c.height = j->data.h;
    c.width = j->data.w;
    c.classes = j->data.n_classes;
    GV_TRY(gv_image_model_create(&j->model, GV_MODEL_CLASSIFIER, &c, j->be, 1));
    const int B = j->B;
    const size_t bd = (size_t)B * (size_t)j->D * sizeof(float);
    const size_t bv = (size_t)B * (size_t)c.classes * sizeof(float);
    GV_TRY(gv_pretrain_dev_alloc(j, bd, (void **)&j->x));
    GV_TRY(gv_pretrain_dev_alloc(j, bv, (void **)&j->out));
    GV_TRY(gv_pretrain_dev_alloc(j, bv, (void **)&j->dout));
    GV_TRY(gv_pretrain_dev_alloc(j, (size_t)B * sizeof(int32_t), (void **)&j->ids));
    GV_TRY(gv_pretrain_dev_alloc(j, (size_t)B * sizeof(float), (void **)&j->w));
    GV_TRY(gv_pretrain_dev_alloc(j, (size_t)B * sizeof(float), (void **)&j->lse));
    GV_TRY(gv_pretrain_host_alloc(bd, (void **)&j->hx));
    GV_TRY(gv_pretrain_host_alloc(bv, (void **)&j->hout));
    GV_TRY(gv_pretrain_host_alloc((size_t)B * sizeof(int32_t), (void **)&j->hids));
    float *ones = NULL;
    GV_TRY(gv_pretrain_host_alloc((size_t)B * sizeof(float), (void **)&ones));
    for (int i = 0; i < B; ++i) ones[i] = 1.0f;
    gv_status s = j->be->copy_from_host(j->w, ones, (size_t)B * sizeof(float));
    free(ones);
    GV_TRY(s);
    return gv_pretrain_measure_arena(j, measure_pass);
}

static gv_status classifier_loss_and_grad(gv_pretrain_job *j, int64_t step, const int64_t *rows,
                                          float *loss) {
    (void)step;
    GV_TRY(prepare_batch(j, &j->data.train, rows, j->B));
    GV_TRY(forward_loss(j, j->model.params.values, j->B, loss));
    if (!isfinite(*loss)) return GV_OK;
    const gv_backend *be = j->be;
    gv_xent_dims d = xent_dims(j, j->B);
    GV_TRY(be->memset_zero(j->dout, (size_t)d.R * d.V * sizeof(float)));
    GV_TRY(be->ops->cross_entropy_backward(j->ctx, j->dout, j->scalars + 1, j->out, j->lse, j->ids,
                                           j->w, &d));
    return gv_classifier_backward(&j->model.classifier, j->ctx, &j->arena, j->model.params.values,
                                  j->model.params.grads, &j->cls_saved, j->dout, NULL);
}

static gv_status classifier_eval(gv_pretrain_job *j, const float *theta, gv_pretrain_eval *out) {
    const gv_dataset_split *test = &j->data.test;
    const int V = j->model.classifier.cfg.classes;
    int64_t correct = 0;
    double sum = 0.0;
    for (int64_t start = 0; start < test->n; start += j->B) {
        int nb = (int)(test->n - start < j->B ? test->n - start : j->B);
        for (int i = 0; i < nb; ++i) j->hrows[i] = start + i;
        GV_TRY(prepare_batch(j, test, j->hrows, nb));
        float l;
        GV_TRY(forward_loss(j, theta, nb, &l));
        sum += (double)l * nb;
        GV_TRY(j->be->copy_to_host(j->hout, j->out, (size_t)nb * V * sizeof(float)));
        for (int i = 0; i < nb; ++i) {
            const float *row = j->hout + (int64_t)i * V;
            int best = 0;
            for (int k = 1; k < V; ++k)
                if (row[k] > row[best]) best = k;
            correct += best == j->hids[i];
        }
    }
    out->images = test->n;
    out->accuracy = test->n > 0 ? (float)((double)correct / (double)test->n) : NAN;
    out->loss = test->n > 0 ? (float)(sum / (double)test->n) : NAN;
    return GV_OK;
}

const gv_pretrain_kind gv_pretrain_classifier_kind = {.name = "classifier",
                                                      .setup = classifier_setup,
                                                      .loss_and_grad = classifier_loss_and_grad,
                                                      .eval = classifier_eval};
