/* Bump arenas over backend memory (see arena.h). */
#include "grove/arena.h"

#include <stdlib.h>

#include "grove/backend.h"

static size_t round_up(size_t n) { return (n + GV_ARENA_ALIGN - 1) / GV_ARENA_ALIGN * GV_ARENA_ALIGN; }

void gv_arena_init(gv_arena *a, const gv_backend *backend, const char *name) {
    a->backend = backend;
    a->base = NULL;
    a->cap = a->used = a->peak = 0;
    a->measuring = 0;
    a->name = name ? name : "arena";
}

void gv_arena_release(gv_arena *a) {
    if (a->base) {
        if (a->backend)
            a->backend->free(a->base);
        else
            free(a->base);
    }
    a->base = NULL;
    a->cap = a->used = 0;
}

gv_status gv_arena_reserve(gv_arena *a, size_t bytes) {
    gv_arena_release(a);
    bytes = round_up(bytes);
    a->peak = 0;
    if (bytes == 0) return GV_OK;
    void *p = NULL;
    if (a->backend) {
        GV_TRY(a->backend->alloc(bytes, &p));
    } else if (posix_memalign(&p, GV_ARENA_ALIGN, bytes) != 0) {
        return GV_ERROR(GV_ERR_OOM, "arena '%s': cannot allocate %zu bytes", a->name, bytes);
    }
    a->base = p;
    a->cap = bytes;
    return GV_OK;
}

gv_status gv_arena_alloc(gv_arena *a, size_t bytes, void **out) {
    size_t need = round_up(bytes);
    if (a->measuring) {
        a->used += need;
        if (a->used > a->peak) a->peak = a->used;
        *out = NULL;
        return GV_OK;
    }
    if (need > a->cap - a->used || a->used > a->cap) {
        *out = NULL;
        return GV_ERROR(GV_ERR_OOM,
                        "arena '%s' is too small: %zu bytes requested, %zu of %zu in use "
                        "(the measure pass did not cover this allocation)",
                        a->name, bytes, a->used, a->cap);
    }
    *out = a->base + a->used;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return GV_OK;
}

void gv_arena_reset_to(gv_arena *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}

void gv_arena_measure_begin(gv_arena *a) {
    a->measuring = 1;
    a->used = 0;
    a->peak = 0;
}

size_t gv_arena_measure_end(gv_arena *a) {
    size_t peak = a->peak;
    a->measuring = 0;
    a->used = 0;
    a->peak = 0;
    return peak;
}
