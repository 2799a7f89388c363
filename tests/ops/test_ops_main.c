/* The op checklist: one Criterion test per op of GROVE_OP_LIST, generated from the list itself.
 *
 * The spec table (spec_table.c) makes an op without a spec a link error. The tests are named after
 * the ops, so ctest / Criterion output names a failing op. What each check does: harness.h. */
#include <criterion/criterion.h>

#include "harness.h"

/* Every spec is registered under an op it covers, and declares what the harness relies on. */
Test(ops, specs_are_consistent) {
    for (int op = 0; op < GV_OP_COUNT; ++op) {
        const gv_op_spec *s = gv_harness_spec(op);
        cr_assert(s, "op %s: no spec", gv_op_names[op]);
        cr_expect(s->fwd_op == op || s->bwd_op == op, "op %s is registered with spec '%s' which "
                  "covers %s / %s", gv_op_names[op], s->name, gv_op_names[s->fwd_op],
                  s->bwd_op >= 0 ? gv_op_names[s->bwd_op] : "-");
        cr_expect(s->ncases >= 2 && s->ntensors <= GV_H_MAX_TENSORS, "spec %s", s->name);
        cr_expect(s->bwd_op >= 0 || s->reference,
                  "spec %s: an op without backward needs a fp64 reference", s->name);
        int outs = 0;
        for (int i = 0; i < s->ntensors; ++i) {
            const gv_h_tensor *t = &s->tensors[i];
            outs += t->role == GV_H_OUT;
            /* int32 outputs (sampled tokens) are fetched as their exact float values */
            cr_expect(t->role == GV_H_IN || t->dtype == GV_H_F32 || t->dtype == GV_H_I32,
                      "spec %s: output %s neither f32 nor i32", s->name, t->name);
            cr_expect(!(t->flags & GV_H_DIFF) || (t->dtype == GV_H_F32 && t->role == GV_H_IN),
                      "spec %s: differentiable %s must be an f32 input", s->name, t->name);
        }
        cr_expect(s->bwd_op < 0 || outs == 1, "spec %s: a backward needs exactly one OUT", s->name);
    }
}

#define GV_OP_TEST_(name, args)                                                                    \
    Test(ops, name, .timeout = 120) {                                                              \
        gv_h_report rep;                                                                           \
        int failures = gv_harness_check_op(GV_OP_##name, stderr, &rep);                            \
        cr_assert_eq(failures, 0, "op %s: %d failed checks over %d cases (details above)", #name,  \
                     failures, rep.cases);                                                         \
    }
GROVE_OP_LIST(GV_OP_TEST_)
#undef GV_OP_TEST_
