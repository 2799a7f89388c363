/* Shapes and tensor descriptors.
 *
 * A gv_tensor is a view: a pointer into some backend's memory plus its dtype and shape. It never
 * owns memory (params, arenas and checkpoints do). Host code must not dereference `data` unless the
 * tensor is known to live on the host (DESIGN.md §3, device-agnostic rule). */
#ifndef GROVE_TENSOR_H
#define GROVE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GV_MAX_DIMS 6

typedef enum gv_dtype { GV_F32 = 0, GV_I32, GV_U8, GV_F64, GV_DTYPE_COUNT } gv_dtype;

typedef struct gv_shape {
    int rank;                /* 0 = scalar */
    int64_t d[GV_MAX_DIMS];  /* d[0] is the slowest-varying dimension (row-major) */
} gv_shape;

typedef struct gv_tensor {
    void *data;      /* backend memory; NULL in a measure pass */
    gv_dtype dtype;
    gv_shape shape;
} gv_tensor;

size_t gv_dtype_size(gv_dtype t);
const char *gv_dtype_name(gv_dtype t);

/* gv_shape_make(3, (int64_t[]){2, 3, 4}) */
gv_shape gv_shape_make(int rank, const int64_t *dims);
int64_t gv_shape_numel(const gv_shape *s);
int gv_shape_equal(const gv_shape *a, const gv_shape *b);
/* "(2, 3, 4)" into buf; returns buf. */
char *gv_shape_str(const gv_shape *s, char *buf, size_t len);

static inline size_t gv_tensor_bytes(const gv_tensor *t) {
    return (size_t)gv_shape_numel(&t->shape) * gv_dtype_size(t->dtype);
}

#ifdef __cplusplus
}
#endif
#endif
