/* The algorithm sections of the task config (run_config.h: topology, branch, credit, dense, plus
 * sampler.noise / window and train.*) turned into the tree library's structs, and the cross-field
 * rules checked when a task config is loaded (ALGORITHMS.md §4–7, §9).
 *
 *     gv_topology t;  GV_TRY(gv_run_config_topology(&cfg, NULL, &t));   // the iteration-0 SDE mask
 *     gv_rollout_plan p;  GV_TRY(gv_run_config_rollout_plan(&cfg, &p)); // what --dry-run prints
 *
 * Load-time rules (gv_run_config_check_algorithm; every message is one line
 * "<file>: <dotted.key>: <cause>"):
 *   - branch.splits / topology.branch_steps / branch.prune.depths hold integers; split and branch
 *     steps lie in 0..N-2 (the last step N-1 is ODE, ALGORITHMS.md §1) and are distinct;
 *   - credit.kind matches topology.kind: terminal and dense need chains, tempflow branch_points,
 *     branch a tree; a tree has at least one split (splits or splits_frac) and K >= 2;
 *   - branch points and trees select their trained edges themselves (§3): train.timestep_fraction
 *     must be 1 and train.random_fraction 0 there; branch points have no SDE window;
 *   - pruning (branch.prune) only on trees, with a valid spec (grove/prune.h);
 *   - dense.completion_steps is "all" or an integer n in 1..255; dense.calibrate needs
 *     sampler.noise.kind calibrated (ψ is what it calibrates) and chains (its rounds are chain
 *     rollouts with ODE completions);
 *   - the topology itself validates (K, λ, the RNG node field for prompts × group.size roots).
 * A calibrated noise without dense.calibrate uses ψ = ψ0, the flow_grpo s(i) at sampler.noise.level.
 * Deliberately not here: the schema tables (run_config.c), running anything. */
#ifndef GROVE_ALGORITHM_CONFIG_H
#define GROVE_ALGORITHM_CONFIG_H

#include <stdint.h>

#include "grove/config.h"
#include "grove/credit.h"
#include "grove/prune.h"
#include "grove/rollout_plan.h"
#include "grove/run_config.h"
#include "grove/status.h"
#include "samplers/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cross-field rules above; `path` names the file in messages (NULL: "config"), `res` (may be
   NULL) adds where an offending value came from. GV_ERR_CONFIG on a violation. */
gv_status gv_run_config_check_algorithm(const gv_run_config *cfg, const char *path,
                                        const gv_config_result *res);

/* The split steps P of a tree config (branch.splits, else branch.splits_frac at N) into `steps`
   (room for GV_TOPOLOGY_MAX_STEPS); *n = their count. */
gv_status gv_run_config_splits(const gv_run_config *cfg, int *steps, int *n);
/* The branch steps B of a branch-points config (topology.branch_steps, else every
   topology.branch_every-th step 0..N-2). */
gv_status gv_run_config_branch_steps(const gv_run_config *cfg, int *steps, int *n);

/* The topology of `cfg`; `sde_steps` (N entries) is the iteration's SDE mask for chains and trees
   (NULL: the SDE steps of iteration 0: the schedule's stochastic steps inside the window). */
gv_status gv_run_config_topology(const gv_run_config *cfg, const uint8_t *sde_steps,
                                 gv_topology *t);

/* The pruning spec of branch.prune. */
gv_status gv_run_config_prune(const gv_run_config *cfg, gv_prune_spec *p);

/* The credit options of credit.* / branch.* / train.* (weighting, eps, clip, group, fusion); the
   caller sets N, step_std and train_step. */
gv_credit_opts gv_run_config_credit_opts(const gv_run_config *cfg);

/* dense.completion_steps as gv_plan_opts wants it: GV_DENSE_COMPLETION_ALL or n > 0; 0 when the
   credit scheme needs no completions. */
int gv_run_config_dense_completion(const gv_run_config *cfg);

/* The prompts of one DenseGRPO calibration batch (ALGORITHMS.md §5): dense.calibration_prompts,
   capped at group.prompts_per_iteration (0: all of them). */
int gv_run_config_calibration_prompts(const gv_run_config *cfg);

/* The plan of iteration 0 (group.prompts_per_iteration prompts; rollout_plan.h). */
gv_status gv_run_config_rollout_plan(const gv_run_config *cfg, gv_rollout_plan *out);

#ifdef __cplusplus
}
#endif
#endif
