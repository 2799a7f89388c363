/* Data parallel across processes over MPI (dist.h): job membership, polled collectives with a
 * deadline, the fixed-order shard sum, scalar gathers, the cross-rank parameter-hash check and the
 * test-only fault knob. Compiled with MPI when GROVE_HAVE_MPI is defined (CMake option GROVE_MPI
 * and MPI found); without it every function runs the single-process path.
 *
 * Collectives are posted non-blocking (MPI_Isend/Irecv/Ibcast/Iallreduce) and polled with
 * MPI_Testall until done or until dist.timeout_s passed; on a timeout the error names the peer
 * when the operation has one (the chain of the shard sum) — the caller's pending requests are
 * abandoned, which is fine because the CLI then aborts the job.
 *
 * With the CUDA backend under several ranks the shard sum moves device buffers through the NCCL
 * module when this build has one (gv_dist_use_backend; grove/dist_nccl.h: compiled, never executed
 * here), else through host staging.
 * Deliberately not here: what a shard is (trainers), files, NCCL calls (engine/nccl/). */
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "grove/dist.h"
#include "grove/ops.h"

#ifdef GROVE_HAVE_MPI
#include <dlfcn.h>
#include <mpi.h>

#include "grove/dist_nccl.h"
#endif

static const gv_field dist_fields[] = {
    {.key = "timeout_s", .type = GV_CFG_FLOAT, .offset = offsetof(gv_dist_section, timeout_s),
     .def = "300", .min = 0.1, .max = 1e6,
     .help = "a collective waiting longer fails the run (a rank died or hangs), seconds"},
    {.key = "eval_timeout_s", .type = GV_CFG_FLOAT,
     .offset = offsetof(gv_dist_section, eval_timeout_s), .def = "86400", .min = 0.1, .max = 1e7,
     .help = "deadline of the wait at an iteration boundary, where the other ranks wait out rank "
             "0's eval and checkpoint writes, seconds"},
    {.key = "check_every", .type = GV_CFG_INT, .offset = offsetof(gv_dist_section, check_every),
     .def = "50", .min = 0, .max = 1e9,
     .help = "compare the parameter hash across ranks every N steps (and at start); 0 = start only"},
};
const gv_schema gv_dist_schema = {"gv_dist_section", sizeof(gv_dist_section), dist_fields,
                                  (int)(sizeof dist_fields / sizeof dist_fields[0]), NULL};

static struct {
    int rank, size, mpi_up, agreed_error;
    int local_rank, local_size; /* among the ranks of this node (MPI_COMM_TYPE_SHARED) */
    double timeout_s, comm_s;
    const char *timeout_key; /* the config key of timeout_s, for messages */
    float *staging;      /* host copy of a gradient buffer for the transport */
    int64_t staging_n;
    const void *nccl;    /* the device transport (grove/dist_nccl.h) when loaded, else NULL */
} g = {.rank = 0, .size = 1, .local_size = 1, .timeout_s = 300.0, .timeout_key = "dist.timeout_s"};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int gv_dist_rank(void) { return g.rank; }
int gv_dist_size(void) { return g.size; }
int gv_dist_local_rank(void) { return g.local_rank; }
void gv_dist_set_timeout(double seconds) { gv_dist_set_deadline(seconds, "dist.timeout_s"); }
void gv_dist_set_deadline(double seconds, const char *key) {
    g.timeout_s = seconds;
    g.timeout_key = key;
}
double gv_dist_comm_seconds(void) { return g.comm_s; }
int gv_dist_error_is_agreed(void) { return g.agreed_error && gv_last_status() != GV_OK; }
void gv_dist_agree_error(void) { g.agreed_error = gv_last_status() != GV_OK; }

/* NCCL moves device memory only: the buffers' backend decides, not the run's. A CUDA run under
   several ranks loads NCCL (gv_dist_use_backend), yet some of its shard sums hold host buffers
   (Co-GRPO's φ lives on the CPU backend, mdm_schedule.c): those go through host staging. */
int gv_dist_sum_on_device(const gv_backend *be, int nccl_loaded) {
    return nccl_loaded && be && be->name && strcmp(be->name, "cuda") == 0;
}

void gv_dist_shard_range(int shards, int rank, int size, int *lo, int *hi) {
    *lo = (int)((int64_t)shards * rank / size);
    *hi = (int)((int64_t)shards * (rank + 1) / size);
}

gv_status gv_dist_own_shards(int shards, int *lo, int *hi) {
    gv_dist_shard_range(shards, g.rank, g.size, lo, hi);
    if (shards >= g.size) return GV_OK;
    GV_ERROR(GV_ERR_CONFIG, "run.shards = %d but %d ranks run: every rank needs a shard "
             "(set run.shards to at least the rank count)", shards, g.size);
    gv_dist_agree_error();
    return gv_last_status();
}

/* The launcher's world size from the environment (Open MPI, PMIx, PMI/Slurm); 0 = no launcher. */
static int launcher_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; ++i) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

#ifdef GROVE_HAVE_MPI

int gv_dist_compiled(void) { return 1; }

static gv_status mpi_error(int code, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
    return GV_ERROR(GV_ERR_BACKEND, "dist: %s: MPI failed: %s", what, text);
}
#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        int mpi_rc_ = (call);                                                                      \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_error(mpi_rc_, (what));                             \
    } while (0)

gv_status gv_dist_init(void) {
    if (!launcher_size()) return GV_OK;
    int provided = 0;
    MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "init");
    g.mpi_up = 1;
    /* errors come back as codes, so every call is checked and reported here */
    MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "set error handler");
    MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &g.rank), "rank");
    MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &g.size), "size");
    MPI_Comm node; /* the ranks sharing this node: the local rank picks the GPU (backend_cuda.cu) */
    MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
            "node communicator");
    MPI_TRY(MPI_Comm_rank(node, &g.local_rank), "node rank");
    MPI_TRY(MPI_Comm_size(node, &g.local_size), "node size");
    MPI_TRY(MPI_Comm_free(&node), "node communicator");
    return GV_OK;
}

void gv_dist_finalize(void) {
    if (g.nccl) ((const gv_dist_nccl *)g.nccl)->finalize(0);
    g.nccl = NULL;
    free(g.staging);
    g.staging = NULL;
    g.staging_n = 0;
    if (g.mpi_up) MPI_Finalize();
    g.mpi_up = 0;
}

void gv_dist_abort(int code) {
    if (g.mpi_up && g.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

/* Poll `n` requests until all completed or the deadline passed. `peer` >= 0 names the rank
   waited on (point-to-point), -1 = a collective of all ranks. */
static gv_status wait_all(MPI_Request *req, int n, const char *what, int peer) {
    const double t0 = now_s();
    long spins = 0;
    for (;;) {
        int done = 0;
        MPI_TRY(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE), what);
        if (done) break;
        double waited = now_s() - t0;
        if (waited > g.timeout_s) {
            if (peer >= 0)
                return GV_ERROR(GV_ERR_BACKEND, "dist: %s: no answer from rank %d within "
                                "%s = %g s (it stopped or hangs)", what, peer, g.timeout_key, g.timeout_s);
            return GV_ERROR(GV_ERR_BACKEND, "dist: %s: not every rank arrived within "
                            "%s = %g s (a rank stopped or hangs)", what, g.timeout_key, g.timeout_s);
        }
        /* spin briefly (a fast collective), then sleep in growing steps up to 1 ms */
        if (++spins > 200) {
            long ns = spins < 1000 ? 20000 : 1000000;
            nanosleep(&(struct timespec){0, ns}, NULL);
        }
    }
    return GV_OK;
}

gv_status gv_dist_barrier(const char *what) {
    if (g.size == 1) return GV_OK;
    const double t0 = now_s();
    MPI_Request r;
    MPI_TRY(MPI_Ibarrier(MPI_COMM_WORLD, &r), what);
    gv_status s = wait_all(&r, 1, what, -1);
    g.comm_s += now_s() - t0;
    return s;
}

/* Every slot summed over ranks; each slot is non-zero on one rank only, so the sum is exact. */
static gv_status sum_disjoint(const char *what, void *buf, int n, MPI_Datatype type) {
    const double t0 = now_s();
    MPI_Request r;
    MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, MPI_SUM, MPI_COMM_WORLD, &r), what);
    gv_status s = wait_all(&r, 1, what, -1);
    g.comm_s += now_s() - t0;
    return s;
}

gv_status gv_dist_gather_f64(const char *what, double *all, int n, int lo, int hi) {
    if (g.size == 1) return GV_OK;
    for (int i = 0; i < n; ++i)
        if (i < lo || i >= hi) all[i] = 0.0;
    return sum_disjoint(what, all, n, MPI_DOUBLE);
}

static gv_status gather_hashes(const char *what, uint64_t hash, uint64_t *all) {
    for (int r = 0; r < g.size; ++r) all[r] = r == g.rank ? hash : 0;
    return sum_disjoint(what, all, g.size, MPI_UINT64_T);
}

gv_status gv_dist_sum_i64(const char *what, int64_t *v, int n) {
    if (g.size == 1) return GV_OK;
    return sum_disjoint(what, v, n, MPI_INT64_T); /* integers: the sum is exact in any order */
}

/* The blocks of every rank (an Iallgather of (lo, hi)), checked to tile [0, n) in rank order,
   then one Iallgatherv of bytes in place (to_rank0: an Igatherv into rank 0's buffer instead; the
   other ranks' buffers are left as they are). */
static gv_status gather_blocks(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                               int64_t hi, int to_rank0) {
    if (g.size == 1) return GV_OK;
    if (lo < 0 || hi < lo || hi > n)
        return GV_ERROR(GV_ERR_INVALID, "dist: %s: block [%lld, %lld) outside [0, %lld)", what,
                        (long long)lo, (long long)hi, (long long)n);
    if ((uint64_t)n * elem > (uint64_t)INT_MAX)
        return GV_ERROR(GV_ERR_INVALID, "dist: %s: %lld elements of %zu bytes exceed one message",
                        what, (long long)n, elem);
    long long *ranges = malloc((size_t)g.size * 2 * sizeof *ranges);
    int *counts = malloc((size_t)g.size * 2 * sizeof *counts);
    if (!ranges || !counts) {
        free(ranges);
        free(counts);
        return GV_ERROR(GV_ERR_OOM, "dist: %s: block table", what);
    }
    const double t0 = now_s();
    const long long mine[2] = {(long long)lo, (long long)hi};
    MPI_Request r;
    gv_status s = GV_OK;
    int rc = MPI_Iallgather(mine, 2, MPI_LONG_LONG, ranges, 2, MPI_LONG_LONG, MPI_COMM_WORLD, &r);
    s = rc == MPI_SUCCESS ? wait_all(&r, 1, what, -1) : mpi_error(rc, what);
    int *displs = counts + g.size;
    for (int q = 0; s == GV_OK && q < g.size; ++q) {
        const long long a = ranges[2 * q], b = ranges[2 * q + 1];
        const long long want = q == 0 ? 0 : ranges[2 * q - 1];
        if (a != want || b < a || (q == g.size - 1 && b != n))
            s = GV_ERROR(GV_ERR_INTERNAL, "dist: %s: rank %d holds [%lld, %lld), not the next block "
                         "of [0, %lld) in rank order", what, q, a, b, (long long)n);
        counts[q] = (int)((b - a) * (long long)elem);
        displs[q] = (int)(a * (long long)elem);
    }
    if (s == GV_OK) {
        if (!to_rank0)
            rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, counts, displs, MPI_BYTE,
                                 MPI_COMM_WORLD, &r);
        else if (g.rank == 0)
            rc = MPI_Igatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, counts, displs, MPI_BYTE, 0,
                              MPI_COMM_WORLD, &r);
        else
            rc = MPI_Igatherv((char *)all + lo * (int64_t)elem, counts[g.rank], MPI_BYTE, NULL,
                              NULL, NULL, MPI_BYTE, 0, MPI_COMM_WORLD, &r);
        s = rc == MPI_SUCCESS ? wait_all(&r, 1, what, -1) : mpi_error(rc, what);
    }
    g.comm_s += now_s() - t0;
    free(ranges);
    free(counts);
    return s;
}

gv_status gv_dist_allgather(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                            int64_t hi) {
    return gather_blocks(what, all, elem, n, lo, hi, 0);
}

gv_status gv_dist_gather_to_rank0(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                                  int64_t hi) {
    return gather_blocks(what, all, elem, n, lo, hi, 1);
}

static gv_status staging_reserve(int64_t n) {
    if (g.staging_n >= n) return GV_OK;
    float *p = realloc(g.staging, (size_t)n * sizeof(float));
    if (!p) return GV_ERROR(GV_ERR_OOM, "dist: staging buffer of %lld floats", (long long)n);
    g.staging = p;
    g.staging_n = n;
    return GV_OK;
}

/* The chain is pipelined in chunks of this many floats (1 MiB): rank r adds chunk c while rank
   r+1 already works on chunk c−1. Also the largest message (MPI counts are int). */
#define CHUNK ((int64_t)1 << 18)

static gv_status broadcast(const char *what, float *buf, int64_t n, int root) {
    const int64_t nchunks = (n + CHUNK - 1) / CHUNK;
    MPI_Request *req = calloc((size_t)nchunks, sizeof *req);
    if (!req) return GV_ERROR(GV_ERR_OOM, "dist: %s: %lld requests", what, (long long)nchunks);
    int64_t posted = 0;
    int rc = MPI_SUCCESS;
    for (int64_t off = 0; rc == MPI_SUCCESS && off < n; off += CHUNK, ++posted)
        rc = MPI_Ibcast(buf + off, (int)(n - off < CHUNK ? n - off : CHUNK), MPI_FLOAT, root,
                        MPI_COMM_WORLD, &req[posted]);
    gv_status s = rc == MPI_SUCCESS ? wait_all(req, (int)posted, what, g.rank == root ? -1 : root)
                                    : mpi_error(rc, what);
    free(req);
    return s;
}

/* The chain of gv_dist_shard_sum: chunk by chunk, receive the running sum of shards [0, lo) from
   rank − 1, add this rank's shards in order (the add op is elementwise, so chunking changes no
   bit), pass it on to rank + 1; then the last rank broadcasts the total. */
static gv_status chain_and_broadcast(const gv_shard_sum *a, const char *what) {
    const gv_backend *be = a->be;
    const int64_t nchunks = (a->n + CHUNK - 1) / CHUNK;
    const int last = g.rank == g.size - 1;
    MPI_Request *sends = last ? NULL : calloc((size_t)nchunks, sizeof *sends);
    if (!last && !sends) return GV_ERROR(GV_ERR_OOM, "dist: %s: %lld requests", what, (long long)nchunks);
    gv_status st = GV_OK;
    int64_t posted = 0;
    for (int64_t off = 0; st == GV_OK && off < a->n; off += CHUNK) {
        const int cnt = (int)(a->n - off < CHUNK ? a->n - off : CHUNK);
        const size_t bytes = (size_t)cnt * sizeof(float);
        const gv_ew_dims d = {.n = cnt};
        float *out = a->out + off, *host = g.staging + off;
        if (a->lo > 0) {
            MPI_Request r;
            int rc = MPI_Irecv(host, cnt, MPI_FLOAT, g.rank - 1, 7, MPI_COMM_WORLD, &r);
            st = rc == MPI_SUCCESS ? wait_all(&r, 1, what, g.rank - 1) : mpi_error(rc, what);
            if (st == GV_OK) st = be->copy_from_host(out, host, bytes);
        }
        for (int s = a->lo; st == GV_OK && s < a->hi; ++s) {
            const float *gs = a->local[s - a->lo] + off;
            if (s == 0) st = gs != out ? be->copy(out, gs, bytes) : GV_OK;
            else st = be->ops->add(a->ctx, out, out, gs, &d);
        }
        if (st == GV_OK) st = be->copy_to_host(host, out, bytes);
        if (st == GV_OK && !last) {
            int rc = MPI_Isend(host, cnt, MPI_FLOAT, g.rank + 1, 7, MPI_COMM_WORLD, &sends[posted]);
            if (rc == MPI_SUCCESS) posted++;
            else st = mpi_error(rc, what);
        }
    }
    if (st == GV_OK && posted) st = wait_all(sends, (int)posted, what, g.rank + 1);
    free(sends);
    GV_TRY(st);
    GV_TRY(broadcast(what, g.staging, a->n, g.size - 1));
    return last ? GV_OK : be->copy_from_host(a->out, g.staging, (size_t)a->n * sizeof(float));
}

/* ---- the NCCL seam (grove/dist_nccl.h; compiled, never executed: no GPU here) ------------------- */

static int bcast_bytes(void *buf, size_t bytes, void *user) {
    (void)user;
    MPI_Request r;
    if (MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &r) != MPI_SUCCESS) return -1;
    if (wait_all(&r, 1, "NCCL bootstrap", g.rank == 0 ? -1 : 0) != GV_OK) return -1;
    return 0;
}

/* The NCCL module when this rank can use it, else NULL and the reason in `why`: the module is
   missing or does not match (a build without NCCL, a moved build tree), or ranks of this node
   share a GPU (NCCL needs one device per rank; backend_cuda.cu takes local rank mod count). */
static const gv_dist_nccl *nccl_module(char *why, size_t n) {
#ifdef GROVE_NCCL_MODULE
    void *h = dlopen(GROVE_NCCL_MODULE, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, n, "%s", dlerror());
        return NULL;
    }
    gv_dist_nccl_entry entry = (gv_dist_nccl_entry)dlsym(h, GROVE_DIST_NCCL_SYMBOL);
    const gv_dist_nccl *t = entry ? entry() : NULL;
    if (!t || t->abi_version != GROVE_DIST_NCCL_ABI || t->struct_size != sizeof *t) {
        snprintf(why, n, "%s: no %s of ABI %u", GROVE_NCCL_MODULE, GROVE_DIST_NCCL_SYMBOL,
                 GROVE_DIST_NCCL_ABI);
        return NULL;
    }
    const int devices = t->device_count();
    if (devices < 1) {
        snprintf(why, n, "the NCCL module sees no GPU");
        return NULL;
    }
    if (devices < g.local_size) {
        snprintf(why, n, "%d ranks on one node would share %d GPU%s", g.local_size, devices,
                 devices == 1 ? "" : "s");
        return NULL;
    }
    return t;
#else
    snprintf(why, n, "this build has no NCCL transport");
    return NULL;
#endif
}

gv_status gv_dist_use_backend(const gv_backend *be) {
    if (g.size == 1 || g.nccl || strcmp(be->name, "cuda") != 0) return GV_OK;
    char why[512] = "";
    const gv_dist_nccl *t = nccl_module(why, sizeof why);
    int64_t unable = t == NULL; /* every rank takes the same transport */
    GV_TRY(gv_dist_sum_i64("NCCL transport choice", &unable, 1));
    if (unable) {
        if (g.rank == 0)
            fprintf(stderr, "grove: dist: CUDA gradients go through host staging and MPI (%lld of "
                    "%d ranks cannot use NCCL%s%s)\n", (long long)unable, g.size,
                    t ? "" : "; rank 0: ", t ? "" : why);
        return GV_OK;
    }
    char err[256] = "";
    if (t->init(g.rank, g.size, bcast_bytes, NULL, err, sizeof err) != 0)
        return GV_ERROR(GV_ERR_BACKEND, "dist: %s", err);
    g.nccl = t;
    return GV_OK;
}

/* Wait for the posted NCCL operations against the deadline; a timeout aborts the communicator. */
static gv_status nccl_wait(const gv_dist_nccl *t, const char *what, int peer) {
    const double t0 = now_s();
    char err[256] = "";
    for (;;) {
        int done = t->poll(err, sizeof err);
        if (done < 0) return GV_ERROR(GV_ERR_BACKEND, "dist: %s: %s", what, err);
        if (done > 0) return GV_OK;
        if (now_s() - t0 > g.timeout_s) {
            t->finalize(1);
            g.nccl = NULL;
            if (peer >= 0)
                return GV_ERROR(GV_ERR_BACKEND, "dist: %s: no answer from rank %d within "
                                "%s = %g s (it stopped or hangs)", what, peer, g.timeout_key, g.timeout_s);
            return GV_ERROR(GV_ERR_BACKEND, "dist: %s: not every rank arrived within "
                            "%s = %g s (a rank stopped or hangs)", what, g.timeout_key, g.timeout_s);
        }
        nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

/* chain_and_broadcast on device buffers: the same order, whole buffers instead of host chunks. */
static gv_status nccl_chain(const gv_shard_sum *a, const char *what) {
    const gv_dist_nccl *t = g.nccl;
    const gv_ew_dims d = {.n = a->n};
    const size_t n = (size_t)a->n;
    char err[256] = "";
    if (a->lo > 0) {
        if (t->recv(a->out, n, g.rank - 1, err, sizeof err) != 0)
            return GV_ERROR(GV_ERR_BACKEND, "dist: %s: %s", what, err);
        GV_TRY(nccl_wait(t, what, g.rank - 1));
    }
    for (int s = a->lo; s < a->hi; ++s) {
        const float *gs = a->local[s - a->lo];
        if (s == 0) {
            if (gs != a->out) GV_TRY(a->be->copy(a->out, gs, n * sizeof(float)));
        } else {
            GV_TRY(a->be->ops->add(a->ctx, a->out, a->out, gs, &d));
        }
    }
    if (g.rank < g.size - 1) {
        if (t->send(a->out, n, g.rank + 1, err, sizeof err) != 0)
            return GV_ERROR(GV_ERR_BACKEND, "dist: %s: %s", what, err);
        GV_TRY(nccl_wait(t, what, g.rank + 1));
    }
    if (t->bcast(a->out, n, g.size - 1, err, sizeof err) != 0)
        return GV_ERROR(GV_ERR_BACKEND, "dist: %s: %s", what, err);
    return nccl_wait(t, what, g.rank == g.size - 1 ? -1 : g.size - 1);
}

#else /* no MPI in this build */

int gv_dist_compiled(void) { return 0; }

gv_status gv_dist_init(void) {
    int n = launcher_size();
    if (n > 1)
        return GV_ERROR(GV_ERR_UNSUPPORTED, "dist: started as one of %d ranks, but this grove was "
                        "built without MPI (install libopenmpi-dev and reconfigure with "
                        "-DGROVE_MPI=ON); run it as one process", n);
    return GV_OK;
}
void gv_dist_finalize(void) {}
void gv_dist_abort(int code) { (void)code; }
gv_status gv_dist_barrier(const char *what) {
    (void)what;
    return GV_OK;
}
gv_status gv_dist_gather_f64(const char *what, double *all, int n, int lo, int hi) {
    (void)what, (void)all, (void)n, (void)lo, (void)hi;
    return GV_OK;
}
static gv_status gather_hashes(const char *what, uint64_t hash, uint64_t *all) {
    (void)what;
    all[0] = hash;
    return GV_OK;
}
gv_status gv_dist_sum_i64(const char *what, int64_t *v, int n) {
    (void)what, (void)v, (void)n;
    return GV_OK;
}
gv_status gv_dist_allgather(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                            int64_t hi) {
    (void)what, (void)all, (void)elem, (void)n, (void)lo, (void)hi;
    return GV_OK;
}
gv_status gv_dist_gather_to_rank0(const char *what, void *all, size_t elem, int64_t n, int64_t lo,
                                  int64_t hi) {
    (void)what, (void)all, (void)elem, (void)n, (void)lo, (void)hi;
    return GV_OK;
}
static gv_status staging_reserve(int64_t n) {
    (void)n;
    return GV_OK;
}
static gv_status chain_and_broadcast(const gv_shard_sum *a, const char *what) {
    (void)a;
    return GV_ERROR(GV_ERR_INTERNAL, "dist: %s: no MPI in this build", what);
}
gv_status gv_dist_use_backend(const gv_backend *be) {
    (void)be;
    return GV_OK;
}
static gv_status nccl_chain(const gv_shard_sum *a, const char *what) {
    return chain_and_broadcast(a, what);
}

#endif

/* ---- the parts written once over the transport above ----------------------------------------- */

gv_status gv_dist_check_hash(const char *what, uint64_t hash) {
    g.agreed_error = 0;
    if (g.size == 1) return GV_OK;
    uint64_t *all = calloc((size_t)g.size, sizeof *all);
    if (!all) return GV_ERROR(GV_ERR_OOM, "dist: %s: hash table", what);
    gv_status s = gather_hashes(what, hash, all);
    if (s == GV_OK) {
        char list[512] = "";
        size_t len = 0;
        int bad = 0;
        for (int r = 1; r < g.size; ++r)
            if (all[r] != all[0]) {
                if (len < sizeof list - 40)
                    len += (size_t)snprintf(list + len, sizeof list - len, "%s%d (%016llx)",
                                            bad ? ", " : "", r, (unsigned long long)all[r]);
                bad++;
            }
        if (bad) {
            s = GV_ERROR(GV_ERR_INTERNAL, "dist: parameters differ across ranks %s: rank%s %s "
                         "differ%s from rank 0 (%016llx); stopped", what, bad > 1 ? "s" : "", list,
                         bad > 1 ? "" : "s", (unsigned long long)all[0]);
            g.agreed_error = 1;
        }
    }
    free(all);
    return s;
}

/* out = ((g_0 + g_1) + g_2) + ... + g_{S-1} on every rank. One process: the plain loop over the
   shards. Several: the pipelined chain through the ranks in rank order, then a broadcast. */
gv_status gv_dist_shard_sum(const gv_shard_sum *a, const char *what) {
    if (g.size == 1) {
        const gv_ew_dims d = {.n = a->n};
        for (int s = a->lo; s < a->hi; ++s) {
            const float *gs = a->local[s - a->lo];
            if (s == 0) {
                if (gs != a->out) GV_TRY(a->be->copy(a->out, gs, (size_t)a->n * sizeof(float)));
            } else {
                GV_TRY(a->be->ops->add(a->ctx, a->out, a->out, gs, &d));
            }
        }
        return GV_OK;
    }
    if (a->hi - a->lo < 1)
        return GV_ERROR(GV_ERR_CONFIG, "dist: %s: rank %d has no shard (run.shards = %d < %d ranks)",
                        what, g.rank, a->shards, g.size);
    const double t0 = now_s();
    gv_status s = GV_OK;
    if (gv_dist_sum_on_device(a->be, g.nccl != NULL)) {
        s = nccl_chain(a, what); /* device buffers (grove/dist_nccl.h): never ran, no GPU here */
    } else {
        s = staging_reserve(a->n);
        if (s == GV_OK) s = chain_and_broadcast(a, what);
    }
    g.comm_s += now_s() - t0; /* the local additions included: they overlap the chain */
    return s;
}

gv_status gv_dist_agree_stop(const gv_dist_section *d, int local, int *stop) {
    int64_t any = local != 0;
    gv_dist_set_deadline(d->eval_timeout_s, "dist.eval_timeout_s");
    gv_status s = gv_dist_sum_i64("stop request (the iteration boundary)", &any, 1);
    gv_dist_set_timeout(d->timeout_s);
    GV_TRY(s);
    *stop = any > 0;
    return GV_OK;
}

int gv_dist_test_fault(int64_t step) {
    const char *spec = getenv("GROVE_DIST_FAULT");
    if (!spec || !*spec) return 0;
    char kind[16] = "";
    int rank = -1;
    long long at = -1;
    if (sscanf(spec, "%15[a-z]:%d:%lld", kind, &rank, &at) != 3 || rank != g.rank || at != step)
        return 0;
    if (strcmp(kind, "kill") == 0) {
        fprintf(stderr, "grove: rank %d: GROVE_DIST_FAULT: killing myself at step %lld\n", g.rank, at);
        fflush(stderr);
        raise(SIGKILL);
    }
    if (strcmp(kind, "stall") == 0) {
        fprintf(stderr, "grove: rank %d: GROVE_DIST_FAULT: stalling at step %lld\n", g.rank, at);
        fflush(stderr);
        for (;;) pause();
    }
    return strcmp(kind, "desync") == 0;
}
