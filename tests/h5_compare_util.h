/* Comparing two HDF5 files through the HDF5 API (tests/cpu/test_dist_train.c: rollouts.h5 of one process
 * and of mpirun -np 2): the same links in the same order; every dataset the same type, shape and
 * bytes (the first differing byte is named); every attribute of every object the same type and
 * bytes, variable-length strings as text with one directory replaced (a run's resolved config
 * names its run.dir). Not a diff tool: the first difference fails the test. Header-only (static
 * functions): include it once per test executable. */
#ifndef GROVE_TESTS_H5_COMPARE_UTIL_H
#define GROVE_TESTS_H5_COMPARE_UTIL_H

#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The link names of a file, in H5Lvisit order (by name). */
typedef struct h5_names { char names[64][128]; int n; } h5_names;
static inline herr_t h5_collect(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g, (void)info;
    h5_names *l = op;
    cr_assert_lt(l->n, 64);
    snprintf(l->names[l->n++], sizeof l->names[0], "%s", name);
    return 0;
}

/* Every attribute of object `path` in files a and b: the same names, types and bytes (variable
   strings compared as text, `dir_a` replaced by `dir_b` in a's: the config's run.dir). */
static inline int h5_same_attributes(hid_t a, hid_t b, const char *path, const char *dir_a,
                                     const char *dir_b) {
    hid_t oa = H5Oopen(a, path, H5P_DEFAULT), ob = H5Oopen(b, path, H5P_DEFAULT);
    cr_assert(oa >= 0 && ob >= 0, "%s missing", path);
    H5O_info_t ia, ib;
    cr_assert(H5Oget_info(oa, &ia) >= 0 && H5Oget_info(ob, &ib) >= 0);
    cr_assert_eq(ia.num_attrs, ib.num_attrs, "%s: attribute counts differ", path);
    for (hsize_t k = 0; k < ia.num_attrs; ++k) {
        char name[128];
        hid_t xa = H5Aopen_by_idx(oa, ".", H5_INDEX_NAME, H5_ITER_INC, k, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert(xa >= 0 && H5Aget_name(xa, sizeof name, name) > 0);
        hid_t xb = H5Aopen(ob, name, H5P_DEFAULT);
        cr_assert(xb >= 0, "%s: no attribute %s in the second file", path, name);
        hid_t ta = H5Aget_type(xa), tb = H5Aget_type(xb);
        cr_assert_gt(H5Tequal(ta, tb), 0, "%s %s: types differ", path, name);
        if (H5Tis_variable_str(ta) > 0) {
            char *va = NULL, *vb = NULL;
            cr_assert(H5Aread(xa, ta, &va) >= 0 && H5Aread(xb, tb, &vb) >= 0);
            size_t hits = 0; /* va with dir_a -> dir_b */
            for (const char *p = va; (p = strstr(p, dir_a)); p += strlen(dir_a)) hits++;
            char *fixed = calloc(1, strlen(va) + hits * strlen(dir_b) + 1), *o = fixed;
            cr_assert(fixed);
            for (const char *p = va; *p;) {
                if (strncmp(p, dir_a, strlen(dir_a)) == 0)
                    o += sprintf(o, "%s", dir_b), p += strlen(dir_a);
                else *o++ = *p++;
            }
            cr_assert_str_eq(fixed, vb, "%s %s differs", path, name);
            free(fixed);
            H5free_memory(va);
            H5free_memory(vb);
        } else {
            const size_t bytes = H5Tget_size(ta);
            unsigned char va[64], vb[64];
            cr_assert_leq(bytes, sizeof va);
            cr_assert(H5Aread(xa, ta, va) >= 0 && H5Aread(xb, tb, vb) >= 0);
            cr_assert_eq(memcmp(va, vb, bytes), 0, "%s %s differs", path, name);
        }
        H5Tclose(ta), H5Tclose(tb), H5Aclose(xa), H5Aclose(xb);
    }
    H5Oclose(oa), H5Oclose(ob);
    return (int)ia.num_attrs;
}

/* Files pa and pb: the same objects; every dataset the same type, shape and bytes; every
   attribute the same (strings with dir_a read as dir_b in pa's). Returns the number of datasets
   compared. */
static inline int assert_same_h5(const char *pa, const char *pb, const char *dir_a,
                                 const char *dir_b) {
    hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(fa >= 0 && fb >= 0, "cannot open %s or %s", pa, pb);
    static h5_names la, lb;
    la.n = lb.n = 0;
    cr_assert(H5Lvisit(fa, H5_INDEX_NAME, H5_ITER_INC, h5_collect, &la) >= 0);
    cr_assert(H5Lvisit(fb, H5_INDEX_NAME, H5_ITER_INC, h5_collect, &lb) >= 0);
    cr_assert_eq(la.n, lb.n, "%s: %d vs %d objects", pa, la.n, lb.n);
    int datasets = 0;
    h5_same_attributes(fa, fb, "/", dir_a, dir_b);
    for (int k = 0; k < la.n; ++k) {
        const char *name = la.names[k];
        cr_assert_str_eq(name, lb.names[k]);
        h5_same_attributes(fa, fb, name, dir_a, dir_b);
        H5O_info_t info;
        cr_assert(H5Oget_info_by_name(fa, name, &info, H5P_DEFAULT) >= 0);
        if (info.type != H5O_TYPE_DATASET) continue;
        hid_t da = H5Dopen(fa, name, H5P_DEFAULT), db = H5Dopen(fb, name, H5P_DEFAULT);
        cr_assert(da >= 0 && db >= 0, "%s", name);
        hid_t ta = H5Dget_type(da), tb = H5Dget_type(db);
        hid_t sa = H5Dget_space(da), sb = H5Dget_space(db);
        cr_assert_gt(H5Tequal(ta, tb), 0, "%s: types differ", name);
        hsize_t ea[8], eb[8];
        const int rank = H5Sget_simple_extent_dims(sa, ea, NULL);
        cr_assert_eq(rank, H5Sget_simple_extent_dims(sb, eb, NULL), "%s", name);
        cr_assert_eq(memcmp(ea, eb, (size_t)rank * sizeof ea[0]), 0, "%s: shapes differ", name);
        const size_t bytes = (size_t)H5Sget_simple_extent_npoints(sa) * H5Tget_size(ta);
        unsigned char *ba = malloc(bytes + 1), *bb = malloc(bytes + 1);
        cr_assert(ba && bb);
        cr_assert(H5Dread(da, ta, H5S_ALL, H5S_ALL, H5P_DEFAULT, ba) >= 0);
        cr_assert(H5Dread(db, tb, H5S_ALL, H5S_ALL, H5P_DEFAULT, bb) >= 0);
        size_t first = 0;
        while (first < bytes && ba[first] == bb[first]) ++first;
        cr_assert_eq(first, bytes, "%s %s: byte %zu of %zu differs", pa, name, first, bytes);
        free(ba), free(bb);
        H5Tclose(ta), H5Tclose(tb), H5Sclose(sa), H5Sclose(sb), H5Dclose(da), H5Dclose(db);
        datasets++;
    }
    H5Fclose(fa);
    H5Fclose(fb);
    return datasets;
}

#endif
