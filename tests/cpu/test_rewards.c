/* Tests of the built-in rewards (rewards/builtin.c, rewards/registry.c; DESIGN.md §7): the
 * registry, image statistics on hand-made images, JPEG size ordering / sign / determinism, and the
 * classifier reward against a hand-computed softmax (score prob) and its floored log (log_prob). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/rewards.h"

static const gv_backend *be;
static gv_ctx *ctx;

static void setup(void) {
    be = grove_backend_cpu();
    gv_ctx_options o = {1, 0, 0};
    cr_assert_eq(be->ctx_create(&o, &ctx), GV_OK, "%s", gv_last_error());
}
static void teardown(void) { be->ctx_destroy(ctx); }

TestSuite(rewards, .init = setup, .fini = teardown);

#define NEAR(got, want) \
    cr_expect(fabs((double)(got) - (want)) <= 1e-6, "got %.8f, want %.8f", (double)(got), (double)(want))

static void score(const char *name, const gv_reward_images *b, float *s, uint8_t *st) {
    gv_reward r;
    cr_assert_eq(gv_reward_create(&r, name, 1.0, NULL, 0, ctx), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_score(&r, ctx, b, s, st), GV_OK, "%s", gv_last_error());
    gv_reward_destroy(&r);
}

Test(rewards, registry_resolves_every_name) {
    for (int i = 0; i < GV_BUILTIN_REWARD_COUNT; ++i) {
        cr_assert_not_null(gv_builtin_rewards[i].name, "entry %d", i);
        cr_assert_not_null(gv_builtin_rewards[i].score, "entry %d", i);
        gv_builtin_reward_id id;
        cr_expect_eq(gv_builtin_reward_find(gv_builtin_rewards[i].name, &id), GV_OK);
        cr_expect_eq((int)id, i);
    }
    gv_builtin_reward_id id;
    cr_expect_eq(gv_builtin_reward_find("aesthetic", &id), GV_ERR_CONFIG);
    cr_expect(strstr(gv_last_error(), "jpeg_compressibility") != NULL, "%s", gv_last_error());
    gv_reward r;
    cr_expect_eq(gv_reward_create(&r, "classifier", 1.0, NULL, 4, ctx), GV_ERR_CONFIG);
}

Test(rewards, image_statistics_by_hand) {
    /* image 0 (2x2): [0 1; 0.5 0.5]; image 1 (3x3): symmetric rows. */
    const float p0[4] = {0, 1, 0.5f, 0.5f};
    gv_reward_images b0 = {.n = 1, .channels = 1, .height = 2, .width = 2,
                           .pixels = p0, .labels = NULL};
    float s[2];
    uint8_t st[2];
    score("ink", &b0, s, st);
    NEAR(s[0], 0.5);
    cr_expect_eq(st[0], GV_REWARD_ITEM_OK);
    score("contrast", &b0, s, st);
    NEAR(s[0], sqrt(0.125)); /* deviations .5 .5 0 0 -> var 0.125 */
    score("symmetry", &b0, s, st);
    NEAR(s[0], 0.5); /* |0-1| twice over 4 elements */
    const float p1[18] = {0.2f, 0.9f, 0.2f, 0, 0, 0, 1, 0.3f, 1,  /* symmetric */
                          1, 0, 0, 0, 0, 0, 0, 0, 0};             /* one corner */
    gv_reward_images b1 = {.n = 2, .channels = 1, .height = 3, .width = 3,
                           .pixels = p1, .labels = NULL};
    score("symmetry", &b1, s, st);
    NEAR(s[0], 1.0);
    NEAR(s[1], 1.0 - 2.0 / 9.0);
    score("ink", &b1, s, st);
    NEAR(s[0], 3.6 / 9.0);
    NEAR(s[1], 1.0 / 9.0);
}

Test(rewards, jpeg_flat_smaller_than_noise_and_signs) {
    enum { H = 28, W = 28 };
    static float px[2 * H * W];
    unsigned state = 12345u;
    for (int e = 0; e < H * W; ++e) {
        px[e] = 0.5f;
        state = state * 1664525u + 1013904223u;
        px[H * W + e] = (float)(state >> 8) / 16777216.0f;
    }
    gv_reward_images b = {.n = 2, .channels = 1, .height = H, .width = W,
                          .pixels = px, .labels = NULL};
    int64_t flat, noise;
    cr_assert_eq(gv_reward_jpeg_bytes(&b, 0, 95, &flat), GV_OK);
    cr_assert_eq(gv_reward_jpeg_bytes(&b, 1, 95, &noise), GV_OK);
    cr_expect_lt(flat, noise, "flat %lld, noise %lld", (long long)flat, (long long)noise);
    float c[2], inc[2], again[2];
    uint8_t st[2];
    score("jpeg_compressibility", &b, c, st);
    cr_expect_eq(st[0] | st[1], 0);
    score("jpeg_incompressibility", &b, inc, st);
    score("jpeg_incompressibility", &b, again, st);
    NEAR(c[0], -(double)flat / 1000.0);
    NEAR(inc[1], (double)noise / 1000.0);
    cr_expect_gt(c[0], c[1]);   /* the flat image is more compressible */
    cr_expect_lt(inc[0], inc[1]);
    cr_expect_eq(c[1], -inc[1]);
    cr_expect_eq(memcmp(inc, again, sizeof inc), 0); /* deterministic */
    px[3] = NAN;                                       /* a broken sample is FAILED, not 0 */
    score("jpeg_incompressibility", &b, inc, st);
    cr_expect_eq(st[0], GV_REWARD_ITEM_FAILED);
    cr_expect_eq(st[1], GV_REWARD_ITEM_OK);
}

/* A classifier with all weights zero except the head bias: logits == bias for every image. */
static void bias_classifier(gv_image_model *m, const float bias[3]) {
    memset(m, 0, sizeof *m);
    m->kind = GV_MODEL_CLASSIFIER;
    gv_classifier_config cfg = gv_classifier_config_default(4);
    cfg.features = 8;
    cfg.classes = 3;
    gv_params_init(&m->params, be);
    cr_assert_eq(gv_classifier_declare(&m->classifier, &cfg, &m->params, "classifier"), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_params_allocate(&m->params, 0), GV_OK); /* zeroed */
    gv_param *hb = gv_params_find(&m->params, "classifier.head.bias");
    cr_assert_not_null(hb);
    cr_assert_eq(be->copy_from_host(hb->value, bias, 3 * sizeof(float)), GV_OK);
}

Test(rewards, classifier_probability_is_softmax_of_known_logits) {
    gv_image_model m;
    const float bias[3] = {0.5f, -1.0f, 2.0f};
    bias_classifier(&m, bias);

    gv_reward r;
    cr_assert_eq(gv_reward_create(&r, "classifier", 2.0, &m, 2, ctx), GV_OK, "%s", gv_last_error());
    enum { N = 5 };
    static float px[N * 28 * 28];
    for (int e = 0; e < N * 28 * 28; ++e) px[e] = (float)(e % 7) / 7.0f;
    const int32_t labels[N] = {0, 1, 2, 2, 3}; /* 3 is out of range: FAILED */
    gv_reward_images b = {.n = N, .channels = 1, .height = 28, .width = 28,
                          .pixels = px, .labels = labels};
    float s[N];
    uint8_t st[N];
    cr_assert_eq(gv_reward_score(&r, ctx, &b, s, st), GV_OK, "%s", gv_last_error());
    const double z = exp(0.5) + exp(-1.0) + exp(2.0);
    NEAR(s[0], exp(0.5) / z);
    NEAR(s[1], exp(-1.0) / z);
    NEAR(s[2], exp(2.0) / z);
    NEAR(s[3], exp(2.0) / z); /* the padded tail micro-batch */
    for (int i = 0; i < 4; ++i) cr_expect_eq(st[i], GV_REWARD_ITEM_OK);
    cr_expect_eq(st[4], GV_REWARD_ITEM_FAILED);
    gv_reward_images wrong = {.n = 1, .channels = 1, .height = 14, .width = 14,
                              .pixels = px, .labels = labels};
    cr_expect_eq(gv_reward_score(&r, ctx, &wrong, s, st), GV_ERR_INVALID);

    /* score log_prob: the log of the same softmax, item for item; the failed item stays FAILED. */
    cr_assert_eq(gv_reward_set_score(&r, GV_CLASSIFIER_SCORE_LOG_PROB), GV_OK);
    float ls[N];
    cr_assert_eq(gv_reward_score(&r, ctx, &b, ls, st), GV_OK, "%s", gv_last_error());
    NEAR(ls[0], 0.5 - log(z));
    NEAR(ls[1], -1.0 - log(z));
    NEAR(ls[2], 2.0 - log(z));
    NEAR(ls[3], 2.0 - log(z));
    for (int i = 0; i < 4; ++i) cr_expect(ls[i] < 0.0f && ls[i] > -4.0f, "%d: %f", i, ls[i]);
    cr_expect_eq(st[4], GV_REWARD_ITEM_FAILED);
    /* and back: prob mode reproduces the first scores bit for bit */
    cr_assert_eq(gv_reward_set_score(&r, GV_CLASSIFIER_SCORE_PROB), GV_OK);
    float again[N];
    cr_assert_eq(gv_reward_score(&r, ctx, &b, again, st), GV_OK, "%s", gv_last_error());
    cr_expect_eq(memcmp(again, s, 4 * sizeof(float)), 0);
    gv_reward_destroy(&r);
    gv_params_free(&m.params);

    /* only the classifier has a log-probability mode */
    gv_reward ink;
    cr_assert_eq(gv_reward_create(&ink, "ink", 1.0, NULL, 0, ctx), GV_OK);
    cr_expect_eq(gv_reward_set_score(&ink, GV_CLASSIFIER_SCORE_LOG_PROB), GV_ERR_CONFIG);
    cr_expect(strstr(gv_last_error(), "classifier reward only") != NULL, "%s", gv_last_error());
    cr_expect_eq(gv_reward_set_score(&ink, GV_CLASSIFIER_SCORE_PROB), GV_OK);
    gv_reward_destroy(&ink);
}

/* score correct: 1 exactly when the prompt's class is the top class. Biases {0.5, 2, 2}: class 0
   scores 0 although p = 0.10 > 0; classes 1 and 2 tie for the maximum and, as the eval's accuracy
   counts a tie, only the first (1) scores 1; an out-of-range label still fails. */
Test(rewards, classifier_correct_is_argmax_indicator) {
    gv_image_model m;
    const float bias[3] = {0.5f, 2.0f, 2.0f};
    bias_classifier(&m, bias);
    gv_reward r;
    cr_assert_eq(gv_reward_create(&r, "classifier", 1.0, &m, 4, ctx), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_set_score(&r, GV_CLASSIFIER_SCORE_CORRECT), GV_OK);
    static float px[4 * 28 * 28];
    const int32_t labels[4] = {0, 1, 2, 7};
    gv_reward_images b = {.n = 4, .channels = 1, .height = 28, .width = 28,
                          .pixels = px, .labels = labels};
    float s[4];
    uint8_t st[4];
    cr_assert_eq(gv_reward_score(&r, ctx, &b, s, st), GV_OK, "%s", gv_last_error());
    cr_expect_eq(s[0], 0.0f);
    cr_expect_eq(s[1], 1.0f);
    cr_expect_eq(s[2], 0.0f);
    for (int i = 0; i < 3; ++i) cr_expect_eq(st[i], GV_REWARD_ITEM_OK);
    cr_expect_eq(st[3], GV_REWARD_ITEM_FAILED);
    gv_reward_destroy(&r);
    gv_params_free(&m.params);

    gv_reward ink; /* like log_prob, a classifier-only mode */
    cr_assert_eq(gv_reward_create(&ink, "ink", 1.0, NULL, 0, ctx), GV_OK);
    cr_expect_eq(gv_reward_set_score(&ink, GV_CLASSIFIER_SCORE_CORRECT), GV_ERR_CONFIG);
    gv_reward_destroy(&ink);
}

/* log_prob is floored at log 1e-4: a class 30 logits behind (log p = -30 - log(1 + e^-30 + ...))
   scores log(1e-4) = -9.2103..., while one 5 behind (log p ~ -5.0134) is left alone. */
Test(rewards, classifier_log_prob_floor) {
    gv_image_model m;
    const float bias[3] = {0.0f, -30.0f, -5.0f};
    bias_classifier(&m, bias);
    gv_reward r;
    cr_assert_eq(gv_reward_create(&r, "classifier", 1.0, &m, 4, ctx), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_set_score(&r, GV_CLASSIFIER_SCORE_LOG_PROB), GV_OK);
    static float px[3 * 28 * 28]; /* zero images: the logits are the bias anyway */
    const int32_t labels[3] = {0, 1, 2};
    gv_reward_images b = {.n = 3, .channels = 1, .height = 28, .width = 28,
                          .pixels = px, .labels = labels};
    float s[3];
    uint8_t st[3];
    cr_assert_eq(gv_reward_score(&r, ctx, &b, s, st), GV_OK, "%s", gv_last_error());
    const double z = 1.0 + exp(-30.0) + exp(-5.0);
    NEAR(s[0], -log(z));
    NEAR(s[1], log(1e-4));
    NEAR(s[2], -5.0 - log(z));
    for (int i = 0; i < 3; ++i) cr_expect_eq(st[i], GV_REWARD_ITEM_OK);
    gv_reward_destroy(&r);
    gv_params_free(&m.params);
}

/* sudoku on a token batch (ALGORITHMS.md §10): hand-computed scores of three fillings of one 4x4
   puzzle with 4 blanks, and the refusal of an image batch. */
Test(rewards, sudoku_scores_a_token_batch_by_hand) {
    const int32_t sol[16] = {0, 1, 2, 3, 2, 3, 0, 1, 1, 0, 3, 2, 3, 2, 1, 0}; /* digits 1..4 as 0..3 */
    int32_t prompt[3 * 16], ref[3 * 16], tok[3 * 16];
    for (int i = 0; i < 3; ++i)
        for (int p = 0; p < 16; ++p) {
            ref[i * 16 + p] = sol[p];
            prompt[i * 16 + p] = (p == 0 || p == 5 || p == 10 || p == 15) ? 4 : sol[p];
            tok[i * 16 + p] = sol[p];
        }
    tok[16 + 0] = 1;  /* sample 1: one of 4 blanks wrong -> 0.75, no bonus */
    tok[32 + 0] = 4, tok[32 + 5] = 4; /* sample 2: two blanks left masked -> 0.5 */
    gv_reward_images b = {.n = 3, .seq_len = 16, .tokens = tok, .prompt = prompt, .reference = ref,
                          .mask_id = 4};
    float s[3];
    uint8_t st[3];
    score("sudoku", &b, s, st);
    NEAR(s[0], 2.0);
    NEAR(s[1], 0.75);
    NEAR(s[2], 0.5);
    for (int i = 0; i < 3; ++i) cr_expect_eq(st[i], GV_REWARD_ITEM_OK);
    const float px[4] = {0};
    gv_reward_images img = {.n = 1, .channels = 1, .height = 2, .width = 2, .pixels = px};
    gv_reward r;
    cr_assert_eq(gv_reward_create(&r, "sudoku", 1.0, NULL, 0, ctx), GV_OK);
    cr_expect_eq(gv_reward_score(&r, ctx, &img, s, st), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "token batch") != NULL, "%s", gv_last_error());
    gv_reward_destroy(&r);
}
