/* The subprocess bridge (DESIGN.md §7, protocol v1): a reward plugin that runs a configured command
 * and talks line-delimited JSON with it, so a reward model in Python (or anything) plugs into grove
 * without linking. The README's "Bridge protocol" section is the child's specification.
 *
 *   config: {command: "python3 my_reward.py --flag", timeout_s: 60, retries: 2, start_timeout_s: 60}
 * (timeout_s bounds each request, start_timeout_s the wait for the hello: loading a model may be
 * slower than scoring a batch).
 *
 * The child runs under /bin/sh -c with its stdin and stdout on one end of a socketpair (so a dead
 * child is an error on write, never a SIGPIPE in grove: send(MSG_NOSIGNAL)) and its stderr on a
 * pipe whose lines grove forwards to its own stderr — the run's log — prefixed "[bridge <name>] ".
 * 1. hello: the child first writes {"bridge": 1, "name": "...", "kinds": ["image"], "pairwise": false}.
 * 2. request: {"id": 7, "kind": "image", "n": 2, "c": 1, "h": 28, "w": 28, "images": ["<base64 PNG>",
 *    ...], "prompts": [...], "groups": [...], "metadata": [...]}; pairwise: {"id": 8, "op":
 *    "compare", "a": {<batch as above, no id>}, "b": {...}}. A token batch (masked-diffusion tasks):
 *    {"id": 9, "kind": "tokens", "n": 2, "length": 81, "tokens": [[...], ...], "texts": [...] or null,
 *    "prompts": [...], "prompt_tokens": [[...], ...], "reference_tokens": [[...], ...] or null,
 *    "mask_id": 9, "groups": [...], "metadata": [...]}: the ABI's field names; the last three only
 *    when the batch has them (GROVE_REWARD_BATCH_HAS(b, mask_id), reward ABI v1 revision 2).
 * 3. answer: {"id": 7, "scores": [...], "status": [...]} (compare: "p_first"), or {"id": 7, "error":
 *    "message"} (the batch fails with that message; no retry: the child decided).
 * 4. A request without an answer within timeout_s, or a child that died, is resent to a restarted
 *    child, up to `retries` times; then the batch fails (grove masks and counts it). A protocol
 *    error (bad JSON, wrong id, wrong length) fails the batch naming the offending line, shortened,
 *    and restarts the child before the next request (its stream can no longer be trusted).
 * Images: 8-bit PNG (gray for c = 1, RGB for c = 3, RGBA for c = 4) of round(255 p), base64.
 * Two plugins come from this file (the table is fixed before the child says what it is, so each
 * declares exactly what it does): bridge.so scores (score only, no PAIRWISE flag), and
 * bridge_judge.so (built with GROVE_BRIDGE_JUDGE) is a pairwise judge (PAIRWISE, compare only)
 * whose create fails unless the child's hello says "pairwise": true.
 * Kinds: bridge.so declares image AND tokens (its table is fixed before any child runs); the child's
 * hello "kinds" says which it scores. create only learns the command (the ABI does not tell it the
 * kind grove will send), so create refuses a hello naming neither kind, and each batch (also after a
 * restart) whose kind the child did not announce fails with one line naming both.
 * Deliberately not here: pairwise token batches (bridge_judge.so declares image only and refuses
 * them) and any reward logic. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <grove/reward.h>

#include "../plugin_config.h"

#include "json.h"

#define SHORT_LINE 160 /* protocol errors quote at most this much of the offending line */

typedef struct text {
    char *s;
    size_t len, cap;
    int oom;
} text;

typedef struct bridge {
    char *command;
    double timeout_s, start_timeout_s;
    int retries;
    pid_t pid;
    int io;        /* our end of the socketpair: child's stdin + stdout */
    int err_fd;    /* child's stderr                                   */
    text in;       /* bytes read from the child not yet consumed       */
    text errbuf;   /* partial stderr line                              */
    text req;      /* the request being sent                           */
    int64_t next_id;
    int restart_needed;
    int restarts;
    char name[128];
    int pairwise;
    uint32_t kinds; /* GROVE_SAMPLES_* bits the child's hello announced */
} bridge;

/* ---- growing text ----------------------------------------------------------------------------- */

/* Empty t and forget an earlier failed allocation: one OOM must not disable the bridge for good. */
static void t_clear(text *t) {
    t->len = 0;
    t->oom = 0;
    if (t->s) t->s[0] = '\0';
}

static void t_reserve(text *t, size_t more) {
    if (t->oom || t->len + more + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1) cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = 1;
        return;
    }
    t->s = s, t->cap = cap;
}

static void t_put(text *t, const char *s, size_t n) {
    t_reserve(t, n);
    if (t->oom) return;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void t_printf(text *t, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        t_put(t, small, (size_t)n);
        return;
    }
    t_reserve(t, (size_t)n);
    if (t->oom) return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* A string literal, its length from the compiler. */
#define t_lit(t, literal) t_put((t), (literal), sizeof(literal) - 1)

static void t_json_string(text *t, const char *s) {
    t_put(t, "\"", 1);
    for (; s && *s; ++s) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') t_printf(t, "\\%c", c);
        else if (c < 0x20) t_printf(t, "\\u%04x", c);
        else t_put(t, (const char *)&c, 1);
    }
    t_put(t, "\"", 1);
}

/* ---- PNG + base64 ----------------------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void png_chunk(text *png, const char *type, const unsigned char *data, uint32_t n) {
    unsigned char head[8];
    put_be32(head, n);
    memcpy(head + 4, type, 4);
    t_put(png, (const char *)head, 8);
    t_put(png, (const char *)data, n);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    crc = crc32(crc, data, n);
    unsigned char tail[4];
    put_be32(tail, (uint32_t)crc);
    t_put(png, (const char *)tail, 4);
}

/* Image i of the batch as an 8-bit PNG into png (reset first). 0 on success. */
static int encode_png(const grove_reward_batch *b, int i, text *png, char *err, size_t err_len) {
    const int C = b->channels, H = b->height, W = b->width;
    const int color = C == 1 ? 0 : C == 3 ? 2 : C == 4 ? 6 : -1;
    if (color < 0) return snprintf(err, err_len, "bridge: %d channels (PNG takes 1, 3 or 4)", C), 1;
    const size_t row = (size_t)W * (size_t)C + 1, raw_n = row * (size_t)H;
    unsigned char *raw = malloc(raw_n);
    uLongf z_n = compressBound((uLong)raw_n);
    unsigned char *z = malloc(z_n);
    if (!raw || !z) return free(raw), free(z), snprintf(err, err_len, "bridge: out of memory"), 1;
    const float *p = b->images + (size_t)i * (size_t)C * (size_t)H * (size_t)W;
    for (int y = 0; y < H; ++y) {
        raw[(size_t)y * row] = 0; /* filter: none */
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c) {
                double v = p[((size_t)c * H + (size_t)y) * W + (size_t)x];
                v = isfinite(v) ? (v < 0 ? 0 : v > 1 ? 1 : v) : 0;
                raw[(size_t)y * row + 1 + (size_t)x * C + c] = (unsigned char)lround(v * 255.0);
            }
    }
    const int zs = compress2(z, &z_n, raw, (uLong)raw_n, 6);
    free(raw);
    if (zs != Z_OK) return free(z), snprintf(err, err_len, "bridge: zlib failed (%d)", zs), 1;
    png->len = 0;
    t_put(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)W);
    put_be32(ihdr + 4, (uint32_t)H);
    ihdr[8] = 8, ihdr[9] = (unsigned char)color, ihdr[10] = ihdr[11] = ihdr[12] = 0;
    png_chunk(png, "IHDR", ihdr, 13);
    png_chunk(png, "IDAT", z, (uint32_t)z_n);
    png_chunk(png, "IEND", NULL, 0);
    free(z);
    return png->oom ? (snprintf(err, err_len, "bridge: out of memory"), 1) : 0;
}

static void t_base64(text *t, const unsigned char *s, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                           (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
                     i + 2 < n ? a[v & 63] : '='};
        t_put(t, q, 4);
    }
}

/* n rows of `length` ints as a JSON list of lists, or null when rows is NULL. */
static void t_int_rows(text *t, const int32_t *rows, int n, int length) {
    if (!rows) {
        t_lit(t, "null");
        return;
    }
    t_lit(t, "[");
    for (int i = 0; i < n; ++i) {
        t_put(t, i ? ", [" : "[", i ? 3 : 1);
        for (int k = 0; k < length; ++k)
            t_printf(t, "%s%d", k ? ", " : "", (int)rows[(size_t)i * (size_t)length + (size_t)k]);
        t_lit(t, "]");
    }
    t_lit(t, "]");
}

/* n strings as a JSON list (a NULL entry is null), or null when strings is NULL. */
static void t_string_list(text *t, const char *const *strings, int n) {
    if (!strings) {
        t_lit(t, "null");
        return;
    }
    t_lit(t, "[");
    for (int i = 0; i < n; ++i) {
        if (i) t_lit(t, ", ");
        if (strings[i]) t_json_string(t, strings[i]);
        else t_lit(t, "null");
    }
    t_lit(t, "]");
}

/* The batch fields of a request (no braces). Image: "kind", "n", "c", "h", "w", "images",
   "prompts", "groups", "metadata". Tokens: "kind", "n", "length", "tokens", "texts", "prompts",
   ["prompt_tokens", "reference_tokens", "mask_id" when the batch has them], "groups", "metadata". */
static int put_batch(text *t, const grove_reward_batch *b, char *err, size_t err_len) {
    const int tokens = b->kind == GROVE_SAMPLES_TOKENS;
    if (!tokens && b->kind != GROVE_SAMPLES_IMAGE)
        return snprintf(err, err_len, "bridge: unknown batch kind %u", b->kind), 1;
    if (tokens) {
        if (!b->tokens || b->length <= 0)
            return snprintf(err, err_len, "bridge: a token batch without tokens (length %d)",
                            (int)b->length), 1;
        t_printf(t, "\"kind\": \"tokens\", \"n\": %d, \"length\": %d, \"tokens\": ", b->n,
                 (int)b->length);
        t_int_rows(t, b->tokens, b->n, b->length);
        t_lit(t, ", \"texts\": ");
        t_string_list(t, b->texts, b->n);
    } else {
        t_printf(t, "\"kind\": \"image\", \"n\": %d, \"c\": %d, \"h\": %d, \"w\": %d, \"images\": [",
                 b->n, b->channels, b->height, b->width);
        text png = {0};
        for (int i = 0; i < b->n; ++i) {
            if (encode_png(b, i, &png, err, err_len)) return free(png.s), 1;
            t_put(t, i ? ", \"" : "\"", i ? 3 : 1);
            t_base64(t, (const unsigned char *)png.s, png.len);
            t_lit(t, "\"");
        }
        free(png.s);
        t_lit(t, "]");
    }
    t_lit(t, ", \"prompts\": [");
    for (int i = 0; i < b->n; ++i) {
        if (i) t_lit(t, ", ");
        t_json_string(t, b->prompts ? b->prompts[i] : "");
    }
    t_lit(t, "]");
    if (tokens && GROVE_REWARD_BATCH_HAS(b, mask_id)) { /* reward ABI v1 revision 2 */
        t_lit(t, ", \"prompt_tokens\": ");
        t_int_rows(t, b->prompt_tokens, b->n, b->length);
        t_lit(t, ", \"reference_tokens\": ");
        t_int_rows(t, b->reference_tokens, b->n, b->length);
        t_printf(t, ", \"mask_id\": %d", (int)b->mask_id);
    }
    t_lit(t, ", \"groups\": [");
    for (int i = 0; i < b->n; ++i) t_printf(t, "%s%d", i ? ", " : "", b->groups ? b->groups[i] : i);
    t_lit(t, "], \"metadata\": [");
    for (int i = 0; i < b->n; ++i) {
        if (i) t_lit(t, ", ");
        const char *m = b->metadata ? b->metadata[i] : NULL;
        if (m && *m) t_put(t, m, strlen(m));
        else t_lit(t, "null");
    }
    t_lit(t, "]");
    return t->oom ? (snprintf(err, err_len, "bridge: out of memory"), 1) : 0;
}

/* ---- the child -------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void stop_child(bridge *br) {
    if (br->io >= 0) close(br->io);
    if (br->err_fd >= 0) close(br->err_fd);
    br->io = br->err_fd = -1;
    if (br->pid > 0) {
        /* closing stdin asks a well-behaved child to exit; give it a moment, then kill */
        int status;
        for (int i = 0; i < 20 && waitpid(br->pid, &status, WNOHANG) == 0; ++i) usleep(10000);
        if (waitpid(br->pid, &status, WNOHANG) == 0) {
            kill(-br->pid, SIGKILL); /* the group: a `sh -c` may have forked the interpreter */
            kill(br->pid, SIGKILL);
            waitpid(br->pid, &status, 0);
        } else {
            kill(-br->pid, SIGKILL); /* the shell is gone; anything it left behind goes too */
        }
    }
    br->pid = -1;
    t_clear(&br->in);
    t_clear(&br->errbuf);
}

static int start_child(bridge *br, char *err, size_t err_len) {
    int sv[2], ep[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return snprintf(err, err_len, "bridge: socketpair: %s", strerror(errno)), 1;
    if (pipe(ep) != 0 || fcntl(ep[0], F_SETFD, FD_CLOEXEC) || fcntl(ep[1], F_SETFD, FD_CLOEXEC)) {
        close(sv[0]), close(sv[1]);
        return snprintf(err, err_len, "bridge: pipe: %s", strerror(errno)), 1;
    }
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]), close(sv[1]), close(ep[0]), close(ep[1]);
        return snprintf(err, err_len, "bridge: fork: %s", strerror(errno)), 1;
    }
    if (pid == 0) { /* child: stdin/stdout = the socket, stderr = the pipe */
        dup2(sv[1], 0);
        dup2(sv[1], 1);
        dup2(ep[1], 2);
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0); /* its own process group: stop_child kills the shell AND what it started */
        execl("/bin/sh", "sh", "-c", br->command, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    close(sv[1]);
    close(ep[1]);
    br->pid = pid;
    br->io = sv[0];
    br->err_fd = ep[0];
    fcntl(br->io, F_SETFL, fcntl(br->io, F_GETFL) | O_NONBLOCK);
    fcntl(br->err_fd, F_SETFL, fcntl(br->err_fd, F_GETFL) | O_NONBLOCK);
    t_clear(&br->in);
    t_clear(&br->errbuf);
    return 0;
}

/* Forward complete stderr lines (and, at_end, the rest) prefixed to grove's stderr. */
static void forward_stderr(bridge *br, int at_end) {
    char *s = br->errbuf.s;
    size_t start = 0;
    for (size_t i = 0; i < br->errbuf.len; ++i)
        if (s[i] == '\n') {
            fprintf(stderr, "[bridge %s] %.*s\n", br->name, (int)(i - start), s + start);
            start = i + 1;
        }
    if (at_end && start < br->errbuf.len) {
        fprintf(stderr, "[bridge %s] %.*s\n", br->name, (int)(br->errbuf.len - start), s + start);
        start = br->errbuf.len;
    }
    memmove(br->errbuf.s, s + start, br->errbuf.len - start);
    br->errbuf.len -= start;
}

/* Wait (until `deadline`) for the socket (POLLIN or POLLOUT per `events`) while draining stderr.
   1 ready, 0 timeout, -1 error. */
static int wait_io(bridge *br, short events, double deadline) {
    for (;;) {
        struct pollfd fds[2] = {{br->io, events, 0}, {br->err_fd, POLLIN, 0}};
        const double left = deadline - now_s();
        if (left <= 0) return 0;
        const int r = poll(fds, br->err_fd >= 0 ? 2 : 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (br->err_fd >= 0 && fds[1].revents) {
            char buf[4096];
            const ssize_t n = read(br->err_fd, buf, sizeof buf);
            if (n > 0) {
                t_put(&br->errbuf, buf, (size_t)n);
                forward_stderr(br, 0);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                forward_stderr(br, 1);
                close(br->err_fd);
                br->err_fd = -1;
            }
        }
        if (fds[0].revents) return 1;
    }
}

/* Send all of br->req. 0 ok, else 1 (dead child / timeout, `why` says which). */
static int send_all(bridge *br, double deadline, const char **why) {
    size_t off = 0;
    while (off < br->req.len) {
        const int w = wait_io(br, POLLOUT, deadline);
        if (w <= 0) return *why = w == 0 ? "timed out" : "poll failed", 1;
        const ssize_t n = send(br->io, br->req.s + off, br->req.len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return *why = "the child is gone", 1;
        off += (size_t)n;
    }
    return 0;
}

/* Read one line into *line (malloc'd). 0 ok; 1 timeout or EOF (`why`). */
static int read_line(bridge *br, double deadline, char **line, const char **why) {
    for (;;) {
        char *nl = br->in.len ? memchr(br->in.s, '\n', br->in.len) : NULL;
        if (nl) {
            const size_t n = (size_t)(nl - br->in.s);
            *line = malloc(n + 1);
            if (!*line) return *why = "out of memory", 1;
            memcpy(*line, br->in.s, n);
            (*line)[n] = '\0';
            memmove(br->in.s, nl + 1, br->in.len - n - 1);
            br->in.len -= n + 1;
            return 0;
        }
        const int w = wait_io(br, POLLIN, deadline);
        if (w <= 0) return *why = w == 0 ? "timed out" : "poll failed", 1;
        char buf[65536];
        const ssize_t n = recv(br->io, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
            /* EOF: give its last words a moment to arrive on stderr */
            wait_io(br, 0, now_s() + 0.05);
            return *why = "the child exited", 1;
        }
        t_put(&br->in, buf, (size_t)n);
        if (br->in.oom) return *why = "out of memory", 1;
    }
}

static void shorten(const char *line, char *out, size_t n) {
    const size_t len = strlen(line);
    if (len <= SHORT_LINE) snprintf(out, n, "%s", line);
    else snprintf(out, n, "%.*s... (%zu bytes)", SHORT_LINE, line, len);
}

/* Start the child and read its hello. 0 ok. */
static int handshake(bridge *br, char *err, size_t err_len) {
    if (start_child(br, err, err_len)) return 1;
    char *line = NULL;
    const char *why = NULL;
    if (read_line(br, now_s() + br->start_timeout_s, &line, &why)) {
        snprintf(err, err_len, "bridge: no hello from `%s` within %g s: %s", br->command,
                 br->start_timeout_s, why);
        return stop_child(br), 1;
    }
    char jerr[128] = "", shown[SHORT_LINE + 32];
    bj_node *h = bj_parse(line, jerr, sizeof jerr);
    const bj_node *v = bj_get(h, "bridge"), *name = bj_get(h, "name"), *kinds = bj_get(h, "kinds"),
                  *pw = bj_get(h, "pairwise");
    shorten(line, shown, sizeof shown);
    int bad = !h || !v || v->type != BJ_NUMBER || !kinds || kinds->type != BJ_ARRAY;
    if (!bad && v->number != 1) {
        snprintf(err, err_len, "bridge: the child speaks bridge protocol v%g, grove speaks v1",
                 v->number);
        free(line), bj_free(h);
        return stop_child(br), 1;
    }
    if (bad) {
        snprintf(err, err_len, "bridge: bad hello (%s): %s", h ? "expected {\"bridge\": 1, "
                 "\"name\", \"kinds\", \"pairwise\"}" : jerr, shown);
        free(line), bj_free(h);
        return stop_child(br), 1;
    }
    if (name && name->type == BJ_STRING) snprintf(br->name, sizeof br->name, "%s", name->string);
    br->pairwise = pw && pw->type == BJ_BOOL && pw->number != 0;
    uint32_t found = 0; /* names other than "image" / "tokens" are ignored (a later protocol's kinds) */
    for (int i = 0; i < kinds->n; ++i)
        if (kinds->items[i]->type == BJ_STRING)
            found |= strcmp(kinds->items[i]->string, "image") == 0    ? GROVE_SAMPLES_IMAGE
                     : strcmp(kinds->items[i]->string, "tokens") == 0 ? GROVE_SAMPLES_TOKENS
                                                                      : 0u;
    if (!found) { /* br->kinds keeps the last good hello's: a failed restart leaves the kinds alone */
        snprintf(err, err_len, "bridge: the child's hello lists neither kind grove sends "
                 "(\"kinds\": [\"image\"], [\"tokens\"] or both): %s", shown);
        free(line), bj_free(h);
        return stop_child(br), 1;
    }
    br->kinds = found;
    free(line);
    bj_free(h);
    return 0;
}

static const char *kind_name(uint32_t kind) {
    return kind == GROVE_SAMPLES_IMAGE ? "image" : kind == GROVE_SAMPLES_TOKENS ? "tokens" : "unknown";
}

/* 0 when the child announced `kind` in its last good hello, or when a restart is pending (exchange
   checks again after the new hello), else 1 with the one-line refusal in err. The child is named by
   its hello's name, not its command, so the line stays short enough for the trainer's log. */
static int refuse_kind(const bridge *br, uint32_t kind, char *err, size_t err_len) {
    if ((br->kinds & kind) || br->restart_needed || br->pid <= 0) return 0;
    snprintf(err, err_len, "bridge: a%s %s batch, but the child '%s' announced \"kinds\": [%s] "
             "in its hello", kind == GROVE_SAMPLES_IMAGE ? "n" : "", kind_name(kind), br->name,
             br->kinds == GROVE_SAMPLES_IMAGE    ? "\"image\""
             : br->kinds == GROVE_SAMPLES_TOKENS ? "\"tokens\""
                                                 : "");
    return 1;
}

/* Start building a request: the buffers' OOM flags are cleared (a failed allocation fails one
   request, not every later one); bytes lost to an OOM on the child's stream put it out of step,
   so the child is restarted first. */
static void begin_request(bridge *br) {
    t_clear(&br->req);
    if (br->in.oom) br->restart_needed = 1;
    if (br->errbuf.oom) t_clear(&br->errbuf);
}

/* Send br->req (built with id `id`) and parse the answer into *answer. Restarts and resends on a
   timeout or a dead child, up to `retries` times. 0 ok; 1 failed (err set). */
static int exchange(bridge *br, int64_t id, uint32_t kind, bj_node **answer, char *err,
                    size_t err_len) {
    *answer = NULL;
    char jerr[128];
    const char *why = "";
    for (int attempt = 0; attempt <= br->retries; ++attempt) {
        if (br->restart_needed || br->pid <= 0) {
            stop_child(br);
            if (handshake(br, err, err_len)) {
                br->restart_needed = 1;
                continue;
            }
            br->restarts += attempt > 0;
            br->restart_needed = 0;
            if (refuse_kind(br, kind, err, err_len)) return 1; /* a restart may say otherwise */
        }
        const double deadline = now_s() + br->timeout_s;
        char *line = NULL;
        if (send_all(br, deadline, &why) || read_line(br, deadline, &line, &why)) {
            snprintf(err, err_len, "bridge: request %lld %s after %g s", (long long)id, why,
                     br->timeout_s);
            if (attempt < br->retries)
                fprintf(stderr, "[bridge %s] request %lld: %s; restarting the child and resending "
                        "(retry %d of %d)\n", br->name, (long long)id, why, attempt + 1, br->retries);
            else
                fprintf(stderr, "[bridge %s] request %lld: %s; no retries left, the batch fails\n",
                        br->name, (long long)id, why);
            br->restart_needed = 1;
            continue;
        }
        char shown[SHORT_LINE + 32];
        shorten(line, shown, sizeof shown);
        bj_node *a = bj_parse(line, jerr, sizeof jerr);
        const bj_node *aid = bj_get(a, "id");
        if (!a || a->type != BJ_OBJECT || !aid || aid->type != BJ_NUMBER || aid->number != (double)id) {
            snprintf(err, err_len, "bridge: protocol error (%s): %s",
                     !a ? jerr : !aid ? "no \"id\"" : "wrong id", shown);
            free(line), bj_free(a);
            br->restart_needed = 1; /* the stream is out of step */
            return 1;
        }
        free(line);
        *answer = a;
        return 0;
    }
    if (!*err) snprintf(err, err_len, "bridge: request %lld failed", (long long)id);
    char tail[64];
    snprintf(tail, sizeof tail, " (%d tries)", br->retries + 1);
    if (strlen(err) + strlen(tail) < err_len) strcat(err, tail);
    return 1;
}

/* The n numbers of answer[key] into out (null -> NaN) and answer.status into status. */
static int read_values(const bj_node *a, const char *key, int n, float *out, uint8_t *status,
                       char *err, size_t err_len) {
    const bj_node *e = bj_get(a, "error");
    if (e) return snprintf(err, err_len, "%s", e->type == BJ_STRING ? e->string : "error"), 1;
    const bj_node *v = bj_get(a, key), *st = bj_get(a, "status");
    if (!v || v->type != BJ_ARRAY || v->n != n)
        return snprintf(err, err_len, "bridge: protocol error: \"%s\" must be a list of %d "
                        "numbers (got %s%d)", key, n, v && v->type == BJ_ARRAY ? "" : "no list, ",
                        v && v->type == BJ_ARRAY ? v->n : 0), 1;
    if (st && (st->type != BJ_ARRAY || st->n != n))
        return snprintf(err, err_len, "bridge: protocol error: \"status\" must be a list of %d", n), 1;
    for (int i = 0; i < n; ++i) {
        const bj_node *x = v->items[i];
        out[i] = x->type == BJ_NUMBER ? (float)x->number : NAN;
        const int s_ok = !st || (st->items[i]->type == BJ_NUMBER && st->items[i]->number == 0);
        status[i] = s_ok && x->type == BJ_NUMBER && isfinite(out[i]) ? GROVE_REWARD_OK
                                                                    : GROVE_REWARD_FAILED;
    }
    return 0;
}

/* ---- the ABI ---------------------------------------------------------------------------------- */

static void destroy(void *state) {
    bridge *br = state;
    if (!br) return;
    stop_child(br);
    free(br->command);
    free(br->in.s);
    free(br->errbuf.s);
    free(br->req.s);
    free(br);
}

static int create(const char *config, void **state, char *err, size_t err_len) {
    bridge *br = calloc(1, sizeof *br);
    if (!br) return snprintf(err, err_len, "out of memory"), 1;
    br->pid = br->io = br->err_fd = -1;
    br->timeout_s = br->start_timeout_s = 60.0;
    br->retries = 2;
    br->next_id = 1;
    snprintf(br->name, sizeof br->name, "child");
    char buf[4096];
    if (!plugin_config_value(config, "command", buf, sizeof buf) || !*buf) {
        snprintf(err, err_len, "bridge: config needs `command: \"...\"` (run with /bin/sh -c)");
        return destroy(br), 1;
    }
    br->command = strdup(buf);
    if (plugin_config_value(config, "timeout_s", buf, sizeof buf)) br->timeout_s = strtod(buf, NULL);
    if (plugin_config_value(config, "start_timeout_s", buf, sizeof buf))
        br->start_timeout_s = strtod(buf, NULL);
    if (plugin_config_value(config, "retries", buf, sizeof buf)) br->retries = atoi(buf);
    if (!br->command || !(br->timeout_s > 0.0) || !(br->start_timeout_s > 0.0) || br->retries < 0) {
        snprintf(err, err_len, "bridge: timeout_s and start_timeout_s must be > 0, retries >= 0");
        return destroy(br), 1;
    }
    if (handshake(br, err, err_len)) return destroy(br), 1;
#ifdef GROVE_BRIDGE_JUDGE
    if (!br->pairwise) {
        snprintf(err, err_len, "bridge_judge: the child `%s` is not a pairwise judge (its hello "
                 "needs \"pairwise\": true); a child that scores belongs in bridge.so",
                 br->command);
        return destroy(br), 1;
    }
#endif
    *state = br;
    return 0;
}

#ifndef GROVE_BRIDGE_JUDGE
static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    bridge *br = state;
    if (refuse_kind(br, b->kind, err, err_len)) return 1; /* create could not know the kind */
    const int64_t id = br->next_id++;
    begin_request(br);
    t_printf(&br->req, "{\"id\": %lld, ", (long long)id);
    if (put_batch(&br->req, b, err, err_len)) return 1;
    t_put(&br->req, "}\n", 2);
    bj_node *a;
    if (exchange(br, id, b->kind, &a, err, err_len)) return 1;
    const int r = read_values(a, "scores", b->n, scores, status, err, err_len);
    bj_free(a);
    return r;
}

#else
static int compare(void *state, const grove_reward_batch *a, const grove_reward_batch *b,
                   float *p_first, uint8_t *status, char *err, size_t err_len) {
    bridge *br = state;
    if (!br->pairwise)
        return snprintf(err, err_len, "bridge_judge: the restarted child is not pairwise (hello "
                        "\"pairwise\": false)"), 1;
    if (a->kind != GROVE_SAMPLES_IMAGE || b->kind != GROVE_SAMPLES_IMAGE)
        return snprintf(err, err_len, "bridge_judge: compare requests carry image batches only "
                        "(protocol v1 has no pairwise token batches)"), 1;
    if (refuse_kind(br, GROVE_SAMPLES_IMAGE, err, err_len)) return 1;
    const int64_t id = br->next_id++;
    begin_request(br);
    t_printf(&br->req, "{\"id\": %lld, \"op\": \"compare\", \"a\": {", (long long)id);
    if (put_batch(&br->req, a, err, err_len)) return 1;
    t_put(&br->req, "}, \"b\": {", 9);
    if (put_batch(&br->req, b, err, err_len)) return 1;
    t_put(&br->req, "}}\n", 3);
    bj_node *ans;
    if (exchange(br, id, GROVE_SAMPLES_IMAGE, &ans, err, err_len)) return 1;
    const int r = read_values(ans, "p_first", a->n, p_first, status, err, err_len);
    bj_free(ans);
    return r;
}

#endif

#ifdef GROVE_BRIDGE_JUDGE
#define BRIDGE_NAME "bridge_judge"
#define BRIDGE_FLAGS GROVE_REWARD_PAIRWISE
#define BRIDGE_SCORE NULL
#define BRIDGE_COMPARE compare
#define BRIDGE_KINDS GROVE_SAMPLES_IMAGE /* pairwise token batches: not in protocol v1 */
#else
#define BRIDGE_NAME "bridge"
#define BRIDGE_FLAGS 0u
#define BRIDGE_SCORE score
#define BRIDGE_COMPARE NULL
#define BRIDGE_KINDS (GROVE_SAMPLES_IMAGE | GROVE_SAMPLES_TOKENS) /* the child's hello narrows */
#endif

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
        .name = BRIDGE_NAME, .version = "protocol 1",
        .flags = BRIDGE_FLAGS, .kinds = BRIDGE_KINDS,
        .create = create, .score = BRIDGE_SCORE, .compare = BRIDGE_COMPARE, .destroy = destroy};
    return &plugin;
}
