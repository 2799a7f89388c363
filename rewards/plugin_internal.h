/* What rewards/pairwise.c needs from the plugin loader (rewards/plugin.c) beyond the public
 * grove/rewards.h: the instance's grow-only scratch block, so the win-rate transform allocates
 * once per batch size instead of once per scoring call (STYLE.md: no allocation in a step).
 * Deliberately not here: anything a caller outside rewards/ should use. */
#ifndef GROVE_REWARDS_PLUGIN_INTERNAL_H
#define GROVE_REWARDS_PLUGIN_INTERNAL_H

#include <stddef.h>

#include "grove/rewards.h"

/* At least `bytes` of scratch owned by r's plugin instance (grown, never shrunk; freed with the
   instance), aligned for any type; NULL when r is not a plugin or the allocation fails. Valid
   until the next call; not for concurrent use (like the plugin state without THREAD_SAFE). */
void *gv_reward_plugin_scratch(gv_reward *r, size_t bytes);

#endif
