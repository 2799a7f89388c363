/* Status names and the thread-local last-error buffer (see status.h). */
#include "grove/status.h"

#include <stdio.h>
#include <string.h>

#define GV_ERR_MSG_MAX 1024

static _Thread_local char tl_msg[GV_ERR_MSG_MAX];
static _Thread_local gv_status tl_status;
static _Thread_local const char *tl_src_file;
static _Thread_local int tl_src_line;

static const char *const status_names[GV_STATUS_COUNT] = {
    [GV_OK] = "ok",
    [GV_ERR_INVALID] = "invalid",
    [GV_ERR_CONFIG] = "config",
    [GV_ERR_IO] = "io",
    [GV_ERR_FORMAT] = "format",
    [GV_ERR_OOM] = "out-of-memory",
    [GV_ERR_BACKEND] = "backend",
    [GV_ERR_UNSUPPORTED] = "unsupported",
    [GV_ERR_NUMERIC] = "numeric",
    [GV_ERR_PLUGIN] = "plugin",
    [GV_ERR_INTERRUPTED] = "interrupted",
    [GV_ERR_INTERNAL] = "internal",
};

const char *gv_status_name(gv_status s) {
    if ((int)s < 0 || s >= GV_STATUS_COUNT) return "unknown";
    return status_names[s];
}

gv_status gv_error_atv(const char *src_file, int src_line, gv_status s, const char *fmt,
                       va_list ap) {
    /* Format into a local buffer first: an argument may be gv_last_error() itself. */
    char msg[sizeof tl_msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(tl_msg, msg, sizeof msg);
    /* Keep it one line: the CLI prints the message as is. */
    for (char *p = tl_msg; *p; ++p)
        if (*p == '\n' || *p == '\r') *p = ' ';
    tl_status = s;
    tl_src_file = src_file;
    tl_src_line = src_line;
    return s;
}

gv_status gv_error_at(const char *src_file, int src_line, gv_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gv_error_atv(src_file, src_line, s, fmt, ap);
    va_end(ap);
    return s;
}

const char *gv_last_error(void) { return tl_msg; }
gv_status gv_last_status(void) { return tl_status; }
const char *gv_last_error_src_file(void) { return tl_src_file ? tl_src_file : ""; }
int gv_last_error_src_line(void) { return tl_src_line; }

void gv_clear_error(void) {
    tl_msg[0] = '\0';
    tl_status = GV_OK;
    tl_src_file = NULL;
    tl_src_line = 0;
}

void gv_error_prefix(const char *fmt, ...) {
    char prefix[GV_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    if (plen + 2 >= sizeof tl_msg) plen = sizeof tl_msg - 3;
    size_t olen = strlen(tl_msg);
    if (plen + 2 + olen >= sizeof tl_msg) olen = sizeof tl_msg - plen - 3;
    memmove(tl_msg + plen + 2, tl_msg, olen);
    tl_msg[plen + 2 + olen] = '\0';
    memcpy(tl_msg, prefix, plen);
    tl_msg[plen] = ':';
    tl_msg[plen + 1] = ' ';
}
