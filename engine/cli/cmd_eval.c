/* grove eval CONFIG --ckpt FILE [-n N] [--seed S] [--steps N] [--guidance W] [--gold FILE]
 *            [--device KIND] [--set key=value]...
 * Evaluates a UNet checkpoint with the gold judge (DESIGN.md §7) and prints ONE JSON line:
 *   {"checkpoint": hash, "n", "steps", "guidance", "seed", "classifier_accuracy", "gold_prob",
 *    "fcd", "nfe", "seconds"}
 * CONFIG is a task config: data.eval_prompts, sampler.steps / shift / guidance, run.micro_batch,
 * run.device, run.threads; n defaults to eval.seeds per eval prompt; the seed defaults to 0 (fixed
 * eval noise, so checkpoints compare on identical initial noise). Flags override the config. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "grove/evaluate.h"
#include "grove/run_config.h"

static gv_status eval_options(const gv_command *cmd, const gv_cli_args *args,
                              const gv_run_config *cfg, gv_eval_options *o) {
    *o = (gv_eval_options){.checkpoint = gv_cli_option_value(cmd, args, "ckpt"),
                           .gold = gv_cli_option_value(cmd, args, "gold"),
                           .prompts = cfg->data.eval_prompts,
                           .seeds_per_prompt = cfg->eval.seeds,
                           .steps = cfg->sampler.steps,
                           .shift = cfg->sampler.shift,
                           .guidance = cfg->sampler.guidance,
                           .micro_batch = cfg->run.micro_batch,
                           .use_ema = 1};
    if (!o->checkpoint) return GV_ERROR(GV_ERR_INVALID, "--ckpt is required");
    const char *v;
    long l;
    if ((v = gv_cli_option_value(cmd, args, "n"))) {
        GV_TRY(gv_cli_parse_long("n", v, 2, 65536, &l));
        o->n = (int)l;
    }
    if ((v = gv_cli_option_value(cmd, args, "seed"))) {
        GV_TRY(gv_cli_parse_long("seed", v, 0, 4294967295L, &l));
        o->seed = (uint32_t)l;
    }
    if ((v = gv_cli_option_value(cmd, args, "steps"))) {
        GV_TRY(gv_cli_parse_long("steps", v, 1, 256, &l));
        o->steps = (int)l;
    }
    if ((v = gv_cli_option_value(cmd, args, "guidance")))
        GV_TRY(gv_cli_parse_double("guidance", v, 0.0, 100.0, &o->guidance));
    return GV_OK;
}

static const char *device_name(int kind) {
    return kind == GV_DEVICE_CPU ? "cpu" : kind == GV_DEVICE_CUDA ? "cuda" : "auto";
}

int gv_cmd_eval(const gv_command *cmd, const gv_cli_args *args) {
    gv_run_config cfg;
    if (gv_run_config_load(args->positional[0], args->sets, args->nsets, NULL, &cfg, NULL) !=
        GV_OK)
        return gv_cli_fail(cmd);
    gv_eval_options o;
    if (eval_options(cmd, args, &cfg, &o) != GV_OK) {
        fprintf(stderr, "grove: %s: %s\n", cmd->name, gv_last_error());
        gv_run_config_free(&cfg);
        return GV_EXIT_USAGE;
    }
    const char *device = gv_cli_option_value(cmd, args, "device");
    gv_ctx *c = NULL;
    gv_eval_record r;
    gv_status s = gv_cli_open_device(device ? device : device_name(cfg.run.device),
                                     cfg.run.threads, &c);
    if (s == GV_OK) {
        s = gv_eval_checkpoint(c, &o, &r);
        c->backend->ctx_destroy(c);
    }
    gv_run_config_free(&cfg);
    if (s != GV_OK) return gv_cli_fail(cmd);
    printf("{\"checkpoint\": \"%s\", \"n\": %d, \"steps\": %d, \"guidance\": %.9g, \"seed\": %u, "
           "\"classifier_accuracy\": %.9g, \"gold_prob\": %.9g, \"fcd\": %.9g, \"nfe\": %lld, "
           "\"seconds\": %.3f}\n",
           r.checkpoint, r.n, r.steps, r.guidance, (unsigned)r.seed,
           r.result.classifier_accuracy, r.result.gold_prob, r.result.fcd, (long long)r.nfe,
           r.seconds);
    return GV_EXIT_OK;
}
