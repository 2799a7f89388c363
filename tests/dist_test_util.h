/* Shared set-up of the data-parallel tests (tests/cpu/test_dist*.c): a temp root, the grove CLI run
 * as one process or under a real `mpirun` (GROVE_MPIEXEC, set by tests/CMakeLists.txt when the
 * build has MPI; NEED_MPI() skips a test otherwise), its stderr, and the comparisons every suite
 * makes (weights of two run dirs, lines of a log, the reward-failure streak's stop line).
 * Header-only: each test executable includes it once. Deliberately not here: the configs. */
#ifndef GROVE_TESTS_DIST_TEST_UTIL_H
#define GROVE_TESTS_DIST_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/rundir.h"

#ifdef GROVE_MPIEXEC
#define NEED_MPI() ((void)0)
#else
#define GROVE_MPIEXEC ""
#define NEED_MPI() cr_skip_test("this build has no MPI (GROVE_MPI off or MPI not found)")
#endif

static char tmp_root[256]; /* make_tmp: the suite's temp directory */

static inline void make_tmp(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/grove-test-dist-XXXXXX");
    cr_assert(mkdtemp(tmp_root));
    /* Open MPI refuses root without these; harmless otherwise */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    unsetenv("GROVE_DIST_FAULT");
}

static inline void remove_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    cr_assert_eq(system(cmd), 0);
}

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Run `grove <command>` (ranks 0 = one plain process, else under mpirun) with run.dir =
   <tmp>/<dir> and `args`; stderr into <tmp>/<dir>.err. Returns the exit status (128 + signal if
   killed). */
static inline int grove_cli(const char *command, int ranks, const char *fault, const char *fixture,
                            const char *dir, const char *args, double *seconds) {
    char launcher[512] = "", full[8192];
    if (ranks)
        snprintf(launcher, sizeof launcher, "%s --oversubscribe --bind-to none -np %d ",
                 GROVE_MPIEXEC, ranks);
    /* GROVE_DIST_FAULT before mpirun reaches every rank */
    snprintf(full, sizeof full, "%s%s%s%s%s/grove %s %s --set run.dir=%s/%s %s >/dev/null 2>%s/%s.err",
             fault ? "GROVE_DIST_FAULT=" : "", fault ? fault : "", fault ? " " : "", launcher,
             GROVE_BINARY_DIR, command, fixture, tmp_root, dir, args, tmp_root, dir);
    double t0 = now_s();
    int st = system(full);
    if (seconds) *seconds = now_s() - t0;
    cr_assert(st != -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* <tmp_root>/<run>/last.h5 loads as a model: complete after a killed rank. */
static inline void assert_last_h5_loads(const char *run) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, run);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK,
                 "last.h5 after a killed rank: %s", gv_last_error());
    gv_image_model_free(&m);
}

/* The whole file as a string (caller frees). Not inlined: GCC 12's -Wdangling-pointer takes the
   returned buffer for the address of the local `s` once this is inlined into a caller. */
__attribute__((noinline)) static char *slurp(const char *path) {
    char *s = NULL;
    const gv_status st = gv_rundir_slurp(path, &s);
    cr_assert(st == GV_OK && s, "%s", gv_last_error());
    return s;
}

static inline char *err_of(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.err", tmp_root, dir);
    return slurp(path);
}

/* Parameters and EMA of <tmp>/<a>/last.h5 and <tmp>/<b>/last.h5 are bitwise equal. */
static inline void assert_same_weights(const char *a, const char *b) {
    gv_image_model m[2][2];
    const char *dirs[2] = {a, b};
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dirs[r]);
            cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), e, &m[r][e]), GV_OK, "%s",
                         gv_last_error());
        }
    for (int e = 0; e < 2; ++e) {
        size_t bytes = (size_t)m[0][e].params.total * sizeof(float);
        cr_assert_eq(m[0][e].params.total, m[1][e].params.total);
        cr_assert_eq(memcmp(m[0][e].params.values, m[1][e].params.values, bytes), 0,
                     "%s weights of %s and %s differ", e ? "EMA" : "raw", a, b);
    }
    cr_assert_str_eq(m[0][0].hash, m[1][0].hash);
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) gv_image_model_free(&m[r][e]);
}

/* The lines of `text` that contain `needle`. */
static inline int lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The line of `text` from `needle` to its end (static buffer). */
static inline const char *line_from(const char *text, const char *needle) {
    static char buf[2][1024];
    static int k;
    const char *p = strstr(text, needle);
    cr_assert(p, "no \"%s\" in:\n%s", needle, text);
    char *b = buf[k++ % 2];
    snprintf(b, sizeof buf[0], "%.*s", (int)strcspn(p, "\n"), p);
    return b;
}

/* The fixture's fail_at "1:1,2:0" with reward_failures.max_consecutive 2, in one process
   (<tmp>/streak-1) and under 2 ranks (streak-2): the same stop line, printed once, no abort; the
   masked batch of iteration 1 (`batch` samples) noted once by each. */
static inline void assert_streak_stops_alike(int batch) {
    char *e1 = err_of("streak-1"), *e2 = err_of("streak-2");
    const char *stop = "2 consecutive failed batches of reward 'fixture' "
                       "(reward_failures.max_consecutive 2); last: ";
    const char *l1 = line_from(e1, stop);
    cr_assert(strstr(l1, "fixture: iteration 2 slot 0 fails as configured"), "%s", l1);
    cr_assert_str_eq(l1, line_from(e2, stop));
    cr_assert_eq(lines_with(e2, "consecutive failed batches"), 1, "printed once:\n%s", e2);
    char note[160];
    snprintf(note, sizeof note, "fixture: iteration 1 slot 1 fails as configured (batch of %d masked; "
             "1 in a row)", batch);
    cr_assert_eq(lines_with(e1, note), 1, "%s", e1);
    cr_assert_eq(lines_with(e2, note), 1, "rank 0 notes every masked batch once:\n%s", e2);
    cr_assert_null(strstr(e2, "MPI_ABORT"), "an agreed error ends the job cleanly:\n%s", e2);
    free(e1);
    free(e2);
}

#endif
