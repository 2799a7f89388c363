/* grove reward plugin ABI, version 1 (DESIGN.md §7): THE public contract between grove and a reward
 * model built as a shared object. Self-contained (only <stdint.h> and <stddef.h>), usable from C,
 * C++ and any language with a C FFI. A plugin exports ONE symbol, grove_reward_plugin_v1, returning
 * a pointer to a static grove_reward_plugin table; grove dlopen()s the file (RTLD_NOW |
 * RTLD_LOCAL), checks abi_version, struct_size and kinds, then calls create once, score (or
 * compare) once per batch, and destroy once.
 *
 * Build a plugin against nothing but this header:
 *     cc -shared -fPIC -O2 -I<grove>/rewards/include my_reward.c -o my_reward.so
 * and check it with `grove reward-check my_reward.so`. The README section "Write a reward plugin"
 * is the tutorial; rewards/plugins/ holds examples (minimal C, a neural reward on libgrove, the
 * subprocess bridge, a pairwise judge).
 *
 * Stability: fields may be APPENDED to both structs in later versions of ABI v1 (the struct_size
 * fields make that safe: grove reads only what a plugin's struct_size covers, and a plugin reads
 * only batch fields inside batch->struct_size, GROVE_REWARD_BATCH_HAS); names and meanings never
 * change. An incompatible change bumps GROVE_REWARD_ABI_VERSION and the exported symbol's name.
 * Revisions of v1: 1 = the fields up to metadata; 2 = + prompt_tokens, reference_tokens, mask_id
 * (token batches: a plugin can score a masked-diffusion completion against its puzzle and a
 * reference, rewards/plugins/sudoku). A plugin built against revision 1 loads and runs unchanged.
 *
 * Threading: without GROVE_REWARD_THREAD_SAFE grove never calls one state from two threads at once.
 * Memory: every pointer in a batch is owned by grove and valid only during the call; scores,
 * status and p_first are grove's buffers of batch->n entries. Deliberately not here: anything of
 * grove's internals (a plugin that wants grove's kernels links libgrove, see rewards/plugins/
 * neural). */
#ifndef GROVE_REWARD_H
#define GROVE_REWARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GROVE_REWARD_ABI_VERSION 1u
#define GROVE_REWARD_ABI_REVISION 2u /* appended fields within v1 (see Stability above)       */
#if defined(__GNUC__)
#  define GROVE_REWARD_EXPORT __attribute__((visibility("default")))
#else
#  define GROVE_REWARD_EXPORT
#endif

/* Per-item status written by score / compare. FAILED masks the sample out of the advantage (and a
   non-finite score does the same): never a silent zero (ALGORITHMS.md §3). */
enum { GROVE_REWARD_OK = 0, GROVE_REWARD_FAILED = 1 };

/* Plugin flags (grove_reward_plugin.flags). */
enum {
    GROVE_REWARD_PAIRWISE = 1u << 0,      /* implements compare (Pref-GRPO win rates)            */
    GROVE_REWARD_DETERMINISTIC = 1u << 1, /* same batch -> bitwise-same scores (reward-check
                                             verifies it)                                       */
    GROVE_REWARD_THREAD_SAFE = 1u << 2    /* score may run concurrently on one state            */
};

/* Batch kinds (bits; grove_reward_batch.kind is exactly one, grove_reward_plugin.kinds a set). */
enum { GROVE_SAMPLES_IMAGE = 1u << 0, GROVE_SAMPLES_TOKENS = 1u << 1 };

typedef struct grove_reward_batch {
    uint32_t struct_size;                 /* sizeof as built by grove; read only fields inside it */
    uint32_t kind;                        /* GROVE_SAMPLES_IMAGE or GROVE_SAMPLES_TOKENS         */
    int32_t  n;                           /* samples in the batch                                */
    int32_t  channels, height, width;     /* images: float32 (n, c, h, w), values in [0, 1]      */
    const float *images;                  /* images: row-major (n, c, h, w); NULL for tokens     */
    int32_t  length;                      /* tokens: int32 (n, length)                           */
    const int32_t *tokens;                /* tokens: row-major (n, length); NULL for images      */
    const char *const *texts;             /* decoded text per sample, or NULL                    */
    const char *const *prompts;           /* n prompt strings (UTF-8)                            */
    const int32_t *groups;                /* n group ids: samples of one prompt group share one  */
    const char *const *metadata;          /* n JSON objects ({"seed":…,"iteration":…,
                                             "checkpoint":"<hash>", …}), or NULL                 */
    /* ---- appended in ABI v1 revision 2 (token batches of masked-diffusion tasks). Read them only
       when GROVE_REWARD_BATCH_HAS(batch, field): a grove built before them passes a smaller
       struct_size. For Sudoku (tokens = S*S cells row-major, id d-1 for digit d, mask_id = S):
       texts[i] and prompts[i] are the grid as S lines of S characters, '1'..'9' for a digit and
       '.' for [MASK], joined by '\n' (the completion, and the puzzle). */
    const int32_t *prompt_tokens;         /* tokens: (n, length) the starting canvas: the given
                                             tokens, mask_id at every completion position        */
    const int32_t *reference_tokens;      /* tokens: (n, length) a reference completion (Sudoku:
                                             the solution), or NULL                              */
    int32_t mask_id;                      /* tokens: the [MASK] id                               */
} grove_reward_batch;

/* 1 when `batch` (a const grove_reward_batch *) was built with `field`, i.e. its struct_size covers
   it: the check a plugin makes before reading a field appended after the first v1 release. */
#define GROVE_REWARD_BATCH_HAS(batch, field)                                                      \
    ((batch)->struct_size >= offsetof(grove_reward_batch, field) + sizeof((batch)->field))

typedef struct grove_reward_plugin {
    uint32_t abi_version;                 /* GROVE_REWARD_ABI_VERSION                            */
    uint32_t struct_size;                 /* sizeof(grove_reward_plugin) in the plugin           */
    const char *name, *version;           /* short name (metrics key) and free-form version      */
    uint32_t flags;                       /* GROVE_REWARD_* flags                                */
    uint32_t kinds;                       /* batch kinds it accepts (GROVE_SAMPLES_* bits)       */
    /* config: the reward's `config:` mapping flattened to "path=value" lines ("scale=2.0\n",
       "labels.0=cat\n"), "" when absent. Return 0 on success, else write a message to err.     */
    int  (*create)(const char *config, void **state, char *err, size_t err_len);
    /* Fill scores[n] and status[n]. Non-zero return = the whole batch failed (err says why).     */
    int  (*score)(void *state, const grove_reward_batch *batch, float *scores, uint8_t *status,
                  char *err, size_t err_len);
    /* Optional (PAIRWISE): p_first[i] = P(a's sample i is better than b's sample i), in [0, 1].   */
    int  (*compare)(void *state, const grove_reward_batch *a, const grove_reward_batch *b,
                    float *p_first, uint8_t *status, char *err, size_t err_len);
    void (*destroy)(void *state);         /* frees what create made; may be NULL                 */
} grove_reward_plugin;

/* The one symbol a plugin exports, named after the ABI major version it was built for. */
GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void);

#ifdef __cplusplus
}
#endif
#endif
