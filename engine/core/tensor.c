/* Shape helpers (see tensor.h). */
#include "grove/tensor.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[GV_DTYPE_COUNT] = {
    [GV_F32] = {"float32", 4},
    [GV_I32] = {"int32", 4},
    [GV_U8] = {"uint8", 1},
    [GV_F64] = {"float64", 8},
};

size_t gv_dtype_size(gv_dtype t) { return (unsigned)t < GV_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *gv_dtype_name(gv_dtype t) {
    return (unsigned)t < GV_DTYPE_COUNT ? dtype_info[t].name : "unknown";
}

gv_shape gv_shape_make(int rank, const int64_t *dims) {
    gv_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank < 0 ? 0 : (rank > GV_MAX_DIMS ? GV_MAX_DIMS : rank);
    for (int i = 0; i < s.rank; ++i) s.d[i] = dims[i];
    return s;
}

int64_t gv_shape_numel(const gv_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; ++i) n *= s->d[i];
    return n;
}

int gv_shape_equal(const gv_shape *a, const gv_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; ++i)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

char *gv_shape_str(const gv_shape *s, char *buf, size_t len) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, at < len ? len - at : 0, "(");
    for (int i = 0; i < s->rank; ++i)
        at += (size_t)snprintf(buf + at, at < len ? len - at : 0, i ? ", %lld" : "%lld",
                               (long long)s->d[i]);
    snprintf(buf + at, at < len ? len - at : 0, ")");
    return buf;
}
