/* The spec table: GROVE_OP_LIST -> the harness spec of each op.
 *
 * Each op name `x` must have a spec object `gv_spec_x` (GV_SPEC_FOR in a specs_*.c file). The
 * table references all of them through the X-macro, so an op added to GROVE_OP_LIST without a spec
 * is an undefined reference and the harness fails to link. Kept apart from the Criterion tests so
 * a gpu-labelled parity test can link harness.c + spec_table.c + specs_*.c without them. */
#include "harness.h"

#define GV_SPEC_EXTERN_(name, args) extern const gv_op_spec *const gv_spec_##name;
GROVE_OP_LIST(GV_SPEC_EXTERN_)
#undef GV_SPEC_EXTERN_

const gv_op_spec *gv_harness_spec(int op) {
    /* Built at run time: the entries are extern const pointers, not constant expressions. */
    const gv_op_spec *const table[GV_OP_COUNT] = {
#define GV_SPEC_ENTRY_(name, args) [GV_OP_##name] = gv_spec_##name,
        GROVE_OP_LIST(GV_SPEC_ENTRY_)
#undef GV_SPEC_ENTRY_
    };
    return op >= 0 && op < GV_OP_COUNT ? table[op] : NULL;
}
