/* Tests of the bump arenas (arena.h): alignment, the out-of-memory message, mark / reset scopes,
 * and that a measure pass's peak is exactly what a real pass of the same allocations needs. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "grove/arena.h"
#include "grove/kernels_cpu.h"

Test(arena, pieces_are_aligned_and_disjoint) {
    gv_arena a;
    gv_arena_init(&a, grove_backend_cpu(), "test");
    cr_assert_eq(gv_arena_reserve(&a, 4096), GV_OK);
    const size_t sizes[] = {1, 3, 64, 65, 100, 7};
    char *prev_end = NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        void *p = NULL;
        cr_assert_eq(gv_arena_alloc(&a, sizes[i], &p), GV_OK);
        cr_assert_eq((uintptr_t)p % GV_ARENA_ALIGN, 0, "piece %zu not %d-byte aligned", i,
                     GV_ARENA_ALIGN);
        if (prev_end) cr_assert((char *)p >= prev_end, "piece %zu overlaps the previous one", i);
        memset(p, 0xab, sizes[i]); /* the memory is really there */
        prev_end = (char *)p + sizes[i];
    }
    gv_arena_release(&a);
}

Test(arena, host_arena_without_backend) {
    gv_arena a;
    gv_arena_init(&a, NULL, "host");
    cr_assert_eq(gv_arena_reserve(&a, 100), GV_OK);
    cr_assert_eq(a.cap, 128, "capacity rounded to the alignment");
    float *f = NULL;
    cr_assert_eq(gv_arena_floats(&a, 25, &f), GV_OK);
    cr_assert_eq((uintptr_t)f % GV_ARENA_ALIGN, 0);
    f[24] = 1.0f;
    gv_arena_release(&a);
}

Test(arena, out_of_memory_names_arena_request_and_capacity) {
    gv_arena a;
    gv_arena_init(&a, grove_backend_cpu(), "activations");
    cr_assert_eq(gv_arena_reserve(&a, 256), GV_OK);
    void *p = NULL;
    cr_assert_eq(gv_arena_alloc(&a, 200, &p), GV_OK);
    cr_assert_eq(gv_arena_alloc(&a, 100, &p), GV_ERR_OOM);
    cr_assert_null(p);
    const char *msg = gv_last_error();
    cr_assert(strstr(msg, "activations"), "no arena name in '%s'", msg);
    cr_assert(strstr(msg, "100"), "no request size in '%s'", msg);
    cr_assert(strstr(msg, "256"), "no capacity in '%s'", msg);
    /* the failed request did not consume anything */
    cr_assert_eq(a.used, 256);
    gv_arena_release(&a);
}

Test(arena, mark_and_reset) {
    gv_arena a;
    gv_arena_init(&a, grove_backend_cpu(), "scoped");
    cr_assert_eq(gv_arena_reserve(&a, 1024), GV_OK);
    void *p0, *p1, *p2, *p3;
    cr_assert_eq(gv_arena_alloc(&a, 100, &p0), GV_OK);
    size_t mark = gv_arena_mark(&a);
    cr_assert_eq(gv_arena_alloc(&a, 300, &p1), GV_OK);
    cr_assert_eq(gv_arena_alloc(&a, 10, &p2), GV_OK);
    gv_arena_reset_to(&a, mark);
    cr_assert_eq(a.used, mark);
    cr_assert_eq(gv_arena_alloc(&a, 50, &p3), GV_OK);
    cr_assert_eq(p3, p1, "after reset_to the next piece reuses the freed space");
    cr_assert_eq(a.peak, 128 + 320 + 64, "peak keeps the high-water mark");
    gv_arena_reset(&a);
    cr_assert_eq(a.used, 0);
    cr_assert_eq(gv_arena_alloc(&a, 1, &p3), GV_OK);
    cr_assert_eq(p3, p0);
    gv_arena_release(&a);
}

/* A step-like allocation sequence with nested scopes (what a forward/backward does). */
static gv_status run_pass(gv_arena *a, int write) {
    const size_t sizes[] = {1000, 64, 3, 4096, 17, 250, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        void *p;
        GV_TRY(gv_arena_alloc(a, sizes[i], &p));
        if (write) memset(p, 1, sizes[i]);
        if (i % 2 == 1) {
            size_t mark = gv_arena_mark(a);
            void *tmp;
            GV_TRY(gv_arena_alloc(a, 3 * sizes[i] + 5, &tmp));
            if (write) memset(tmp, 2, 3 * sizes[i] + 5);
            gv_arena_reset_to(a, mark);
        }
    }
    return GV_OK;
}

Test(arena, measure_pass_peak_is_what_a_real_pass_needs) {
    gv_arena a;
    gv_arena_init(&a, grove_backend_cpu(), "measured");
    gv_arena_measure_begin(&a);
    cr_assert_eq(run_pass(&a, 0), GV_OK);
    size_t need = gv_arena_measure_end(&a);
    cr_assert(need > 0);
    cr_assert_eq(need % GV_ARENA_ALIGN, 0);

    /* exactly `need` is enough ... */
    cr_assert_eq(gv_arena_reserve(&a, need), GV_OK);
    cr_assert_eq(run_pass(&a, 1), GV_OK, "%s", gv_last_error());
    cr_assert_eq(a.peak, need);
    gv_arena_reset(&a);
    cr_assert_eq(run_pass(&a, 1), GV_OK, "a second step after reset fits too");

    /* ... and one alignment unit less is not */
    cr_assert_eq(gv_arena_reserve(&a, need - GV_ARENA_ALIGN), GV_OK);
    cr_assert_eq(run_pass(&a, 1), GV_ERR_OOM);
    gv_arena_release(&a);
}

Test(arena, measuring_hands_out_null) {
    gv_arena a;
    gv_arena_init(&a, grove_backend_cpu(), "m");
    gv_arena_measure_begin(&a);
    void *p = (void *)&a;
    cr_assert_eq(gv_arena_alloc(&a, 10, &p), GV_OK);
    cr_assert_null(p);
    cr_assert_eq(gv_arena_measure_end(&a), 64);
    cr_assert_eq(a.measuring, 0);
}
