/* Field-table shorthands for config schemas (grove/config.h: gv_field, gv_schema), shared by the
 * schema files that need no per-field flags (pretrain_config.c, mdm_train_config.c). Include it in
 * a .c file only, after <math.h> and <stddef.h>. Deliberately not here: run_config.c's variants,
 * which also take GV_CFG_* flags (preset-owned keys). */
#ifndef GROVE_CONFIG_FIELDS_H
#define GROVE_CONFIG_FIELDS_H

#include <math.h>
#include <stddef.h>

#include "grove/config.h"

#define INF INFINITY
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define F_INT(S, k, d_, lo_, hi_, h_)                                                              \
    {.key = #k, .type = GV_CFG_INT, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_,   \
     .help = h_}
#define F_I64(S, k, d_, lo_, hi_, h_)                                                              \
    {.key = #k, .type = GV_CFG_I64, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_,   \
     .help = h_}
#define F_FLOAT(S, k, d_, lo_, hi_, h_)                                                            \
    {.key = #k, .type = GV_CFG_FLOAT, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_, \
     .help = h_}
#define F_STR(S, k, d_, h_)                                                                        \
    {.key = #k, .type = GV_CFG_STRING, .offset = offsetof(S, k), .def = d_, .help = h_}
#define F_PATH(S, k, h_) {.key = #k, .type = GV_CFG_PATH, .offset = offsetof(S, k), .help = h_}
#define F_ENUM(S, k, nm_, d_, h_)                                                                  \
    {.key = #k, .type = GV_CFG_ENUM, .offset = offsetof(S, k), .names = nm_, .def = d_, .help = h_}
#define F_STRUCT(S, k, sb_, h_)                                                                    \
    {.key = #k, .type = GV_CFG_STRUCT, .offset = offsetof(S, k), .sub = &sb_, .help = h_}
#define F_LIST(S, k, cnt_, sb_, h_)                                                                \
    {.key = #k, .type = GV_CFG_LIST, .offset = offsetof(S, k), .count_offset = offsetof(S, cnt_),  \
     .sub = &sb_, .help = h_}
#define SCHEMA(name, S, fields, check) {#S, sizeof(S), fields, COUNT(fields), check}

#endif
