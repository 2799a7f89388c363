/* Bump arenas for activations and op scratch.
 *
 * An arena is one block of backend memory handed out in 64-byte-aligned pieces and reset as a whole
 * (each step). Its size is found by a measure pass: run the same allocation sequence once with
 * gv_arena_measure_begin(), read the peak, gv_arena_reserve() that many bytes at start-up, and never
 * allocate inside a step again (STYLE.md 6). In a measure pass allocations return NULL pointers
 * with GV_OK, so code that allocates under measurement must not touch the memory. */
#ifndef GROVE_ARENA_H
#define GROVE_ARENA_H

#include <stddef.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gv_backend;

#define GV_ARENA_ALIGN 64

typedef struct gv_arena {
    const struct gv_backend *backend; /* owner of the memory; NULL = host (malloc)    */
    char *base;                       /* backend memory, `cap` bytes                  */
    size_t cap;                       /* capacity in bytes                            */
    size_t used;                      /* bytes handed out since the last reset        */
    size_t peak;                      /* high-water mark of `used` (also in measuring) */
    int measuring;                    /* 1: count only, hand out NULL                 */
    const char *name;                 /* for error messages ("activations")           */
} gv_arena;

/* An empty arena (cap 0) over `backend`'s memory (NULL = host). */
void gv_arena_init(gv_arena *a, const struct gv_backend *backend, const char *name);
/* (Re)allocate capacity to exactly `bytes` (rounded up to the alignment); resets the arena. */
gv_status gv_arena_reserve(gv_arena *a, size_t bytes);
void gv_arena_release(gv_arena *a);

/* Hand out `bytes`; GV_ERR_OOM (naming the arena, request and capacity) when it does not fit. */
gv_status gv_arena_alloc(gv_arena *a, size_t bytes, void **out);
/* Typed convenience: n floats. */
static inline gv_status gv_arena_floats(gv_arena *a, size_t n, float **out) {
    return gv_arena_alloc(a, n * sizeof(float), (void **)out);
}

/* Scopes: remember `used`, later free everything allocated after the mark. */
static inline size_t gv_arena_mark(const gv_arena *a) { return a->used; }
void gv_arena_reset_to(gv_arena *a, size_t mark);
static inline void gv_arena_reset(gv_arena *a) { gv_arena_reset_to(a, 0); }

/* Measure pass: subsequent allocations only count. end returns the peak bytes needed. */
void gv_arena_measure_begin(gv_arena *a);
size_t gv_arena_measure_end(gv_arena *a);

#ifdef __cplusplus
}
#endif
#endif
