/* Tests of HDF5 checkpoints (checkpoint.h): exact round trips of tensors, state, config and meta;
 * the one-line messages for a wrong shape, a missing dataset or key, a text file, a truncated file
 * and a foreign HDF5 file (with HDF5's own printing silenced); atomicity against a writer process
 * that is really SIGKILLed mid-write and just before its rename; stale temp files; and the
 * gv_params save/load round trip on the CPU backend, including name, shape and hash checks. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grove/checkpoint.h"
#include "grove/kernels_cpu.h"
#include "grove/params.h"
#include "grove/version.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static char g_dir[64];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/grove-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_dir);
}

TestSuite(checkpoint, .init = make_dir, .fini = remove_dir);

static char *in_dir(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Number of directory entries (besides . and ..) whose name starts with `prefix`. */
static int count_entries(const char *prefix) {
    DIR *d = opendir(g_dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static void fill(float *v, int64_t n, float base) {
    for (int64_t i = 0; i < n; ++i) v[i] = base + 0.37f * (float)i - 1e-3f * (float)(i * i);
}

#define SHAPE(...) gv_shape_make((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                                 (int64_t[]){__VA_ARGS__})

/* Checkpoint "A" or "B": two tensors whose values depend on `base`, and state iteration = base. */
static void write_simple(const char *path, float base, int n_extra) {
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK, "%s", gv_last_error());
    float a[6], b[4];
    fill(a, 6, base);
    fill(b, 4, -base);
    gv_shape sa = SHAPE(2, 3), sb = SHAPE(4);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "layer.a", &sa, a), GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "layer.b", &sb, b), GV_OK);
    for (int i = 0; i < n_extra; ++i) {
        char name[32];
        snprintf(name, sizeof name, "extra.%d", i);
        cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_EMA, name, &sb, b), GV_OK);
    }
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_STATE, "iteration", (int64_t)base), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK, "%s", gv_last_error());
}

/* The file at `path` is exactly checkpoint write_simple(path, base, 0). */
static void expect_simple(const char *path, float base) {
    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    float a[6], b[4], ea[6], eb[4];
    fill(ea, 6, base);
    fill(eb, 4, -base);
    gv_shape sa = SHAPE(2, 3), sb = SHAPE(4);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "layer.a", &sa, a), GV_OK);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "layer.b", &sb, b), GV_OK);
    cr_assert_arr_eq(a, ea, sizeof a);
    cr_assert_arr_eq(b, eb, sizeof b);
    char **names;
    int n;
    cr_assert_eq(gv_ckpt_list(r, GV_CKPT_PARAMS, &names, &n), GV_OK);
    cr_assert_eq(n, 2);
    gv_ckpt_names_free(names, n);
    cr_assert_eq(gv_ckpt_list(r, GV_CKPT_EMA, &names, &n), GV_OK);
    cr_assert_eq(n, 0, "no /ema in checkpoint %g", (double)base);
    int64_t it;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "iteration", &it), GV_OK);
    cr_assert_eq(it, (int64_t)base);
    gv_ckpt_close(r);
}

/* ---- round trip ----------------------------------------------------------------------------- */

Test(checkpoint, round_trip_is_exact) {
    const char *path = in_dir("rt.h5");
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK, "%s", gv_last_error());
    cr_assert(file_exists(gv_ckpt_writer_temp_path(w)));
    cr_assert(!file_exists(path), "nothing at <path> before commit");

    float conv[4 * 3 * 3 * 3], bias[4], m[4], scalar = -0.0f, psi[5];
    fill(conv, 108, 0.5f);
    fill(bias, 4, 3.0f);
    fill(m, 4, 1e-7f);
    fill(psi, 5, 0.7f);
    conv[7] = 1e-40f; /* a subnormal survives */
    gv_shape sc = SHAPE(4, 3, 3, 3), sbias = SHAPE(4), s0 = gv_shape_make(0, NULL);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "unet.down.0.conv.weight", &sc, conv),
                 GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "unet.down.0.conv.bias", &sbias, bias),
                 GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "scale", &s0, &scalar), GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_OPTIM_M, "unet.down.0.conv.bias", &sbias, m),
                 GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "scale", &s0, &scalar),
                 GV_ERR_INVALID, "a name written twice is refused");
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "a/b", &s0, &scalar), GV_ERR_INVALID);

    const int64_t cursor[3] = {2, 17, -1};
    const char *yaml = "run:\n  name: \"mnist\"\n  seed: 7\nprompt: \"ein Siebener \xc3\xa4\"\n";
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_STATE, "iteration", 123456789012345LL), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_STATE, "rng_key", (int64_t)0xfedcba9876543210ULL),
                 GV_OK);
    cr_assert_eq(gv_ckpt_put_f64(w, GV_CKPT_STATE, "lr", 0.1 + 0.2), GV_OK);
    cr_assert_eq(gv_ckpt_put_str(w, GV_CKPT_STATE, "note", "resumed twice"), GV_OK);
    cr_assert_eq(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "psi", psi, 5), GV_OK);
    cr_assert_eq(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "empty", psi, 0), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "data_cursor", cursor, 3), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_STATE, "iteration", 1), GV_ERR_INVALID,
                 "a key written twice is refused");
    cr_assert_eq(gv_ckpt_put_config(w, yaml), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_META, "threads", 2), GV_OK);
    cr_assert_eq(gv_ckpt_put_str(w, GV_CKPT_META, "model_hash", "00112233aabbccdd"), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK, "%s", gv_last_error());
    cr_assert_eq(count_entries("rt.h5"), 1, "the temp file is gone after commit");

    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    cr_assert_str_eq(gv_ckpt_path(r), path);
    float conv2[108], bias2[4], m2[4], scalar2 = 1.0f, psi2[5];
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "unet.down.0.conv.weight", &sc, conv2),
                 GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "unet.down.0.conv.bias", &sbias, bias2),
                 GV_OK);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "scale", &s0, &scalar2), GV_OK);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_OPTIM_M, "unet.down.0.conv.bias", &sbias, m2),
                 GV_OK);
    cr_assert_arr_eq(conv2, conv, sizeof conv, "bitwise equal weights");
    cr_assert_arr_eq(bias2, bias, sizeof bias);
    cr_assert_arr_eq(m2, m, sizeof m);
    cr_assert_arr_eq(&scalar2, &scalar, sizeof scalar, "-0.0 keeps its sign");
    gv_shape got;
    cr_assert_eq(gv_ckpt_tensor_shape(r, GV_CKPT_PARAMS, "unet.down.0.conv.weight", &got), GV_OK);
    cr_assert(gv_shape_equal(&got, &sc));
    cr_assert(gv_ckpt_has_tensor(r, GV_CKPT_OPTIM_M, "unet.down.0.conv.bias"));
    cr_assert(!gv_ckpt_has_tensor(r, GV_CKPT_OPTIM_V, "unet.down.0.conv.bias"));

    char **names;
    int n;
    cr_assert_eq(gv_ckpt_list(r, GV_CKPT_PARAMS, &names, &n), GV_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "scale");
    cr_assert_str_eq(names[1], "unet.down.0.conv.bias");
    cr_assert_str_eq(names[2], "unet.down.0.conv.weight");
    gv_ckpt_names_free(names, n);
    cr_assert_eq(gv_ckpt_list(r, "optim", &names, &n), GV_OK);
    cr_assert_eq(n, 1, "only /optim/m exists");
    cr_assert_str_eq(names[0], "m");
    gv_ckpt_names_free(names, n);

    int64_t i64, len, cursor2[3];
    double f64;
    char *str;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "iteration", &i64), GV_OK);
    cr_assert_eq(i64, 123456789012345LL);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "rng_key", &i64), GV_OK);
    cr_assert_eq((uint64_t)i64, 0xfedcba9876543210ULL);
    cr_assert_eq(gv_ckpt_get_f64(r, GV_CKPT_STATE, "lr", &f64), GV_OK);
    cr_assert_eq(f64, 0.1 + 0.2, "doubles are exact");
    cr_assert_eq(gv_ckpt_get_f64(r, GV_CKPT_META, "threads", &f64), GV_OK, "ints read as f64");
    cr_assert_eq(f64, 2.0);
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_STATE, "note", &str), GV_OK);
    cr_assert_str_eq(str, "resumed twice");
    free(str);
    cr_assert_eq(gv_ckpt_get_len(r, GV_CKPT_STATE, "psi", &len), GV_OK);
    cr_assert_eq(len, 5);
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", psi2, 5), GV_OK);
    cr_assert_arr_eq(psi2, psi, sizeof psi);
    cr_assert_eq(gv_ckpt_get_len(r, GV_CKPT_STATE, "empty", &len), GV_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "data_cursor", cursor2, 3), GV_OK);
    cr_assert_arr_eq(cursor2, cursor, sizeof cursor);
    cr_assert_eq(gv_ckpt_get_config(r, &str), GV_OK);
    cr_assert_str_eq(str, yaml, "the YAML comes back byte for byte");
    free(str);
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_META, "grove_version", &str), GV_OK);
    cr_assert_str_eq(str, GROVE_VERSION);
    free(str);
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_META, "git_commit", &str), GV_OK);
    cr_assert_str_eq(str, GROVE_GIT_COMMIT);
    free(str);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_META, "grove_format", &i64), GV_OK);
    cr_assert_eq(i64, GV_CKPT_FORMAT);
    cr_assert(gv_ckpt_has_key(r, GV_CKPT_STATE, "psi"));
    cr_assert(gv_ckpt_has_key(r, GV_CKPT_STATE, "lr"));
    cr_assert(!gv_ckpt_has_key(r, GV_CKPT_STATE, "threads"));
    gv_ckpt_close(r);
}

/* ---- messages ------------------------------------------------------------------------------- */

Test(checkpoint, wrong_shape_missing_dataset_and_bad_keys_are_named) {
    const char *path = in_dir("msg.h5");
    write_simple(path, 1.0f, 0);
    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK);
    float buf[6];
    char want[700];

    gv_shape wrong = SHAPE(3, 2);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "layer.a", &wrong, buf), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: /params/layer.a: expected shape (3, 2), found (2, 3)", path);
    cr_assert_str_eq(gv_last_error(), want);

    gv_shape rank = SHAPE(6);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "layer.a", &rank, buf), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: /params/layer.a: expected shape (6), found (2, 3)", path);
    cr_assert_str_eq(gv_last_error(), want);

    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_PARAMS, "layer.c", &wrong, buf), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: missing dataset /params/layer.c", path);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_eq(gv_ckpt_read_tensor(r, GV_CKPT_OPTIM_V, "layer.a", &wrong, buf), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: missing dataset /optim/v/layer.a", path);
    cr_assert_str_eq(gv_last_error(), want);

    int64_t i;
    double d;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "data_cursor", &i), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: missing /state attribute 'data_cursor'", path);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", buf, 3), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: missing dataset /state/psi", path);
    cr_assert_str_eq(gv_last_error(), want);
    char *s;
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_STATE, "iteration", &s), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: /state attribute 'iteration' is not a string", path);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_null(s);
    cr_assert_eq(gv_ckpt_get_f64(r, GV_CKPT_STATE, "iteration", &d), GV_OK);
    cr_assert_eq(d, 1.0);
    cr_assert_eq(gv_ckpt_get_config(r, &s), GV_ERR_FORMAT, "no config was written");
    cr_assert(strstr(gv_last_error(), "/config") && strstr(gv_last_error(), "'yaml'"));
    gv_ckpt_close(r);
}

Test(checkpoint, array_length_and_type_mismatch_are_named) {
    const char *path = in_dir("arr.h5");
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    float psi[4] = {1, 2, 3, 4};
    cr_assert_eq(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "psi", psi, 4), GV_OK);
    cr_assert_eq(gv_ckpt_put_f64(w, GV_CKPT_STATE, "lr", 1e-4), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK);
    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK);
    float out[5];
    int64_t i64[4];
    char want[700];
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", out, 5), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: /state/psi: expected shape (5), found (4)", path);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "psi", i64, 4), GV_ERR_FORMAT);
    cr_assert(strstr(gv_last_error(), "/state/psi has the wrong element type"), "%s",
              gv_last_error());
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "lr", i64), GV_ERR_FORMAT,
                 "a double never reads as an integer");
    snprintf(want, sizeof want, "%s: /state attribute 'lr' is not an integer", path);
    cr_assert_str_eq(gv_last_error(), want);
    gv_ckpt_close(r);
}

/* Runs gv_ckpt_open on `path` with stderr captured; returns the status and what was printed. */
static gv_status open_capturing_stderr(const char *path, char *printed, size_t len) {
    const char *cap = in_dir("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(cap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    gv_ckpt_reader *r = NULL;
    gv_status s = gv_ckpt_open(path, &r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    gv_ckpt_close(r);
    FILE *f = fopen(cap, "r");
    size_t n = fread(printed, 1, len - 1, f);
    printed[n] = '\0';
    fclose(f);
    unlink(cap);
    return s;
}

static void copy_prefix(const char *from, const char *to, long bytes) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out);
    for (long i = 0; i < bytes; ++i) {
        int c = fgetc(in);
        cr_assert_neq(c, EOF);
        fputc(c, out);
    }
    fclose(in);
    fclose(out);
}

Test(checkpoint, not_a_checkpoint_is_one_line_and_hdf5_stays_quiet) {
    char printed[4096], want[700];
    const char *text = in_dir("notes.txt");
    FILE *f = fopen(text, "w");
    fputs("iteration: 12\nthis is not HDF5\n", f);
    fclose(f);
    cr_assert_eq(open_capturing_stderr(text, printed, sizeof printed), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: not a grove checkpoint (not an HDF5 file)", text);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_str_empty(printed);

    const char *empty = in_dir("empty.h5");
    fclose(fopen(empty, "w"));
    cr_assert_eq(open_capturing_stderr(empty, printed, sizeof printed), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: not a grove checkpoint (empty file)", empty);
    cr_assert_str_eq(gv_last_error(), want);

    /* A real checkpoint cut in half, as a full disk or a copy gone wrong leaves it. */
    const char *full = in_dir("full.h5"), *cut = in_dir("cut.h5");
    write_simple(full, 2.0f, 40);
    struct stat st;
    cr_assert_eq(stat(full, &st), 0);
    copy_prefix(full, cut, (long)st.st_size / 2);
    cr_assert_eq(open_capturing_stderr(cut, printed, sizeof printed), GV_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: not a grove checkpoint (", cut);
    cr_assert_eq(strncmp(gv_last_error(), want, strlen(want)), 0, "%s", gv_last_error());
    cr_assert_eq(gv_last_error()[strlen(gv_last_error()) - 1], ')', "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), "truncated"), "HDF5's reason is kept: %s", gv_last_error());
    cr_assert_null(strchr(gv_last_error(), '\n'));
    cr_assert_str_empty(printed, "HDF5 printed its own error stack:\n%s", printed);

    /* A valid HDF5 file that grove did not write. */
    const char *foreign = in_dir("foreign.h5");
    hid_t h = H5Fcreate(foreign, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(h, 0);
    H5Fclose(h);
    cr_assert_eq(open_capturing_stderr(foreign, printed, sizeof printed), GV_ERR_FORMAT);
    snprintf(want, sizeof want,
             "%s: not a grove checkpoint (HDF5 file without /meta attribute grove_format)",
             foreign);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_str_empty(printed);

    gv_ckpt_reader *r;
    const char *missing = in_dir("missing.h5");
    cr_assert_eq(gv_ckpt_open(missing, &r), GV_ERR_IO);
    snprintf(want, sizeof want, "%s: cannot open checkpoint (No such file or directory)", missing);
    cr_assert_str_eq(gv_last_error(), want);
}

/* ---- atomicity ------------------------------------------------------------------------------ */

/* Fork a writer of checkpoint B (`n_extra` extra datasets) at `path` with the kill hook set to
   `hook`; returns its pid after checking it died of SIGKILL. */
static pid_t killed_writer(const char *path, const char *hook, int n_extra) {
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("GROVE_TEST_CKPT_KILL_AFTER", hook, 1);
        gv_ckpt_writer *w;
        if (gv_ckpt_writer_begin(path, &w) != GV_OK) _exit(2);
        float v[4] = {9, 9, 9, 9};
        gv_shape s = SHAPE(4);
        for (int i = 0; i < n_extra; ++i) {
            char name[32];
            snprintf(name, sizeof name, "extra.%d", i);
            if (gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, name, &s, v) != GV_OK) _exit(3);
        }
        gv_ckpt_writer_commit(w);
        _exit(4); /* not reached when the hook works */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the writer was not killed (exit status %d)",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return pid;
}

Test(checkpoint, killed_writer_leaves_previous_checkpoint_intact) {
    const char *path = in_dir("last.h5");
    write_simple(path, 5.0f, 0);

    /* Killed after 3 of 10 datasets: a partial temp file remains, <path> is still A. */
    pid_t pid = killed_writer(path, "3", 10);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)pid);
    cr_assert(file_exists(tmp), "the killed writer left its partial temp file %s", tmp);
    expect_simple(path, 5.0f);

    /* Killed after the fsync, just before the rename: the complete temp file is not <path>. */
    pid_t pid2 = killed_writer(path, "rename", 2);
    char tmp2[600];
    snprintf(tmp2, sizeof tmp2, "%s.tmp-%ld", path, (long)pid2);
    cr_assert(file_exists(tmp2));
    expect_simple(path, 5.0f);

    /* A temp file of a live process is left alone (pid 1 always exists). */
    char live[600];
    snprintf(live, sizeof live, "%s.tmp-1", path);
    fclose(fopen(live, "w"));

    /* The next writer removes the dead writers' temp files and replaces A with B atomically. */
    write_simple(path, 6.0f, 0);
    cr_assert(!file_exists(tmp), "stale temp file %s was not cleaned", tmp);
    cr_assert(!file_exists(tmp2), "stale temp file %s was not cleaned", tmp2);
    cr_assert(file_exists(live), "a live process's temp file was removed");
    expect_simple(path, 6.0f);
}

Test(checkpoint, abort_removes_temp_and_keeps_previous) {
    const char *path = in_dir("keep.h5");
    write_simple(path, 7.0f, 0);
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s", gv_ckpt_writer_temp_path(w));
    float v[4] = {0};
    gv_shape s = SHAPE(4);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "layer.a", &s, v), GV_OK);
    gv_ckpt_writer_abort(w);
    cr_assert(!file_exists(tmp));
    expect_simple(path, 7.0f);

    gv_ckpt_writer *w2;
    const char *nodir = in_dir("no/such/dir/x.h5");
    cr_assert_eq(gv_ckpt_writer_begin(nodir, &w2), GV_ERR_IO);
    cr_assert(strstr(gv_last_error(), nodir), "%s", gv_last_error());
}

/* ---- parameter tables ----------------------------------------------------------------------- */

static const struct {
    const char *name;
    int rank;
    int64_t d[4];
} decl[] = {
    {"unet.conv_in.weight", 4, {8, 3, 3, 3}},
    {"unet.conv_in.bias", 1, {8}},
    {"unet.head.weight", 2, {10, 7}},
};
#define NDECL 3

/* A CPU table with `decl` (skipping index `skip`, renaming none); values from `seed`; m, v and ema
   filled with distinct patterns. `bad_shape` >= 0 gives that entry one extra column. */
static void make_table(gv_params *ps, uint32_t seed, int skip, int bad_shape, const char *extra) {
    gv_params_init(ps, grove_backend_cpu());
    for (int i = 0; i < NDECL; ++i) {
        if (i == skip) continue;
        gv_shape s = gv_shape_make(decl[i].rank, decl[i].d);
        if (i == bad_shape) s.d[s.rank - 1] += 1;
        cr_assert_eq(gv_params_declare(ps, decl[i].name, s, GV_INIT_NORMAL, 0.1f, 1, NULL), GV_OK,
                     "%s", gv_last_error());
    }
    if (extra)
        cr_assert_eq(gv_params_declare(ps, extra, gv_shape_make(1, (int64_t[]){3}), GV_INIT_ZEROS,
                                       0, 0, NULL),
                     GV_OK);
    cr_assert_eq(gv_params_allocate(ps, 1), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_params_initialize(ps, seed), GV_OK, "%s", gv_last_error());
    float *host = malloc((size_t)ps->total * sizeof(float));
    fill(host, ps->total, (float)seed);
    ps->backend->copy_from_host(ps->adam_m, host, (size_t)ps->total * sizeof(float));
    fill(host, ps->total, 2.0f * (float)seed);
    ps->backend->copy_from_host(ps->adam_v, host, (size_t)ps->total * sizeof(float));
    fill(host, ps->total, -(float)seed);
    ps->backend->copy_from_host(ps->ema, host, (size_t)ps->total * sizeof(float));
    free(host);
}

static void expect_same_buffer(const gv_params *a, const gv_params *b, const float *fa,
                               const float *fb, const char *what) {
    for (int i = 0; i < a->count; ++i) {
        const gv_param *p = &a->items[i];
        cr_assert_arr_eq(fa + p->offset, fb + b->items[i].offset, (size_t)p->numel * sizeof(float),
                         "%s of %s differs after the round trip", what, p->name);
    }
}

Test(checkpoint, params_round_trip_and_validation) {
    const char *path = in_dir("params.h5");
    gv_params src;
    make_table(&src, 11, -1, -1, NULL);
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    cr_assert_eq(gv_params_save(w, &src, 1, 1), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK, "%s", gv_last_error());

    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK);
    gv_params dst;
    make_table(&dst, 99, -1, -1, NULL);
    cr_assert_eq(gv_params_load(r, &dst, 1, 1), GV_OK, "%s", gv_last_error());
    expect_same_buffer(&src, &dst, src.values, dst.values, "value");
    expect_same_buffer(&src, &dst, src.adam_m, dst.adam_m, "adam m");
    expect_same_buffer(&src, &dst, src.adam_v, dst.adam_v, "adam v");
    expect_same_buffer(&src, &dst, src.ema, dst.ema, "ema");
    uint64_t h1, h2;
    cr_assert_eq(gv_params_hash(&src, &h1), GV_OK);
    cr_assert_eq(gv_params_hash(&dst, &h2), GV_OK);
    cr_assert_eq(h1, h2);
    char *hex, want[32];
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &hex), GV_OK);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)h1);
    cr_assert_str_eq(hex, want);
    free(hex);
    gv_params_free(&dst);

    char msg[800];
    /* A model with one more parameter than the file. */
    make_table(&dst, 99, -1, -1, "unet.time_embed.weight");
    cr_assert_eq(gv_params_load(r, &dst, 0, 0), GV_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: /params does not match the model: 1 missing (unet.time_embed.weight), "
             "0 unexpected ()",
             path);
    cr_assert_str_eq(gv_last_error(), msg);
    gv_params_free(&dst);
    /* A model lacking one of the file's parameters. */
    make_table(&dst, 99, 2, -1, NULL);
    cr_assert_eq(gv_params_load(r, &dst, 0, 0), GV_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: /params does not match the model: 0 missing (), 1 unexpected (unet.head.weight)",
             path);
    cr_assert_str_eq(gv_last_error(), msg);
    gv_params_free(&dst);
    /* Same names, one shape differs; nothing is overwritten. */
    make_table(&dst, 99, -1, 2, NULL);
    float before;
    dst.backend->copy_to_host(&before, dst.items[0].value, sizeof before);
    cr_assert_eq(gv_params_load(r, &dst, 0, 0), GV_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: /params/unet.head.weight: expected shape (10, 8), found (10, 7)", path);
    cr_assert_str_eq(gv_last_error(), msg);
    float after;
    dst.backend->copy_to_host(&after, dst.items[0].value, sizeof after);
    cr_assert_eq(before, after, "a failed validation overwrote a parameter");
    gv_params_free(&dst);
    gv_ckpt_close(r);

    /* Saved without optimizer state or EMA: loading them names the missing group. */
    const char *bare = in_dir("bare.h5");
    cr_assert_eq(gv_ckpt_writer_begin(bare, &w), GV_OK);
    cr_assert_eq(gv_params_save(w, &src, 0, 0), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK);
    cr_assert_eq(gv_ckpt_open(bare, &r), GV_OK);
    make_table(&dst, 99, -1, -1, NULL);
    cr_assert_eq(gv_params_load(r, &dst, 1, 0), GV_ERR_FORMAT);
    cr_assert(strstr(gv_last_error(), "/optim/m does not match the model: 3 missing"), "%s",
              gv_last_error());
    cr_assert_eq(gv_params_load(r, &dst, 0, 0), GV_OK, "%s", gv_last_error());
    expect_same_buffer(&src, &dst, src.values, dst.values, "value");
    gv_params_free(&dst);
    gv_ckpt_close(r);
    gv_params_free(&src);
}

Test(checkpoint, params_load_detects_changed_values_by_model_hash) {
    const char *path = in_dir("hash.h5");
    gv_params src;
    make_table(&src, 3, -1, -1, NULL);
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    cr_assert_eq(gv_params_save(w, &src, 0, 0), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK);
    gv_params_free(&src);

    /* Flip one stored value behind grove's back. */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t d = H5Dopen2(f, "/params/unet.conv_in.bias", H5P_DEFAULT);
    cr_assert_geq(d, 0);
    float v[8];
    cr_assert_geq(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    v[5] += 1.0f;
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Fclose(f);

    gv_ckpt_reader *r;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK);
    gv_params dst, before;
    make_table(&dst, 4, -1, -1, NULL);
    make_table(&before, 4, -1, -1, NULL);
    cr_assert_eq(gv_params_load(r, &dst, 0, 0), GV_ERR_FORMAT);
    cr_assert(strstr(gv_last_error(), "but /meta model_hash is"), "%s", gv_last_error());
    /* The rejected file overwrote nothing. */
    expect_same_buffer(&before, &dst, before.values, dst.values, "value");
    gv_params_free(&before);
    gv_params_free(&dst);
    gv_ckpt_close(r);
}

/* ---- readable with h5py --------------------------------------------------------------------- */

/* A Python with h5py (Debian python3-h5py installs it for /usr/bin/python3), or NULL. */
static const char *python_with_h5py(void) {
    static const char *const candidates[] = {"/usr/bin/python3", "python3"};
    for (int i = 0; i < 2; ++i) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s -c 'import h5py' >/dev/null 2>&1", candidates[i]);
        if (system(cmd) == 0) return candidates[i];
    }
    return NULL;
}

Test(checkpoint, layout_reads_back_with_h5py) {
    const char *py = python_with_h5py();
    if (!py) cr_skip_test("no python3 with h5py (Debian: python3-h5py)");
    const char *path = in_dir("h5py.h5");
    gv_ckpt_writer *w;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    const float a[6] = {1.5f, -2, 3, 4, 5, 6.25f}, psi[3] = {0.5f, 0.25f, 0.125f};
    gv_shape s = SHAPE(2, 3);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, "unet.conv.weight", &s, a), GV_OK);
    cr_assert_eq(gv_ckpt_write_tensor(w, GV_CKPT_OPTIM_V, "unet.conv.weight", &s, a), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_STATE, "iteration", 42), GV_OK);
    cr_assert_eq(gv_ckpt_put_f64(w, GV_CKPT_STATE, "lr", 1e-4), GV_OK);
    cr_assert_eq(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "psi", psi, 3), GV_OK);
    cr_assert_eq(gv_ckpt_put_config(w, "run:\n  name: x\n"), GV_OK);
    cr_assert_eq(gv_ckpt_put_i64(w, GV_CKPT_META, "threads", 2), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -c '\n"
             "import h5py, sys\n"
             "f = h5py.File(sys.argv[1], \"r\")\n"
             "w = f[\"params/unet.conv.weight\"]\n"
             "assert w.dtype == \"<f4\" and w.shape == (2, 3), w\n"
             "assert w[:].tolist() == [[1.5, -2, 3], [4, 5, 6.25]]\n"
             "assert f[\"optim/v/unet.conv.weight\"].shape == (2, 3)\n"
             "st = f[\"state\"].attrs\n"
             "assert st[\"iteration\"] == 42 and st[\"lr\"] == 1e-4, dict(st)\n"
             "assert f[\"state/psi\"][:].tolist() == [0.5, 0.25, 0.125]\n"
             "assert f[\"config\"].attrs[\"yaml\"] == \"run:\\n  name: x\\n\"\n"
             "m = f[\"meta\"].attrs\n"
             "assert m[\"threads\"] == 2 and m[\"grove_format\"] == 1 and len(m[\"grove_version\"])\n"
             "' %s",
             py, path);
    cr_assert_eq(system(cmd), 0, "h5py could not read the layout back: %s", cmd);
}
