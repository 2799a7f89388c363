/* Status codes and the thread-local last error.
 *
 * Every fallible function returns a gv_status. On failure it records a one-line, user-facing
 * message (naming the file, line, key or tensor involved) plus the source location that raised it,
 * then returns the code; callers propagate with GV_TRY. Only `main` turns a status into an exit
 * code. This file deliberately knows nothing about logging or printing. */
#ifndef GROVE_STATUS_H
#define GROVE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_status {
    GV_OK = 0,
    GV_ERR_INVALID,     /* bad argument or bad user input (CLI flag, shape mismatch)    */
    GV_ERR_CONFIG,      /* config file / --set problem: message names file:line: key    */
    GV_ERR_IO,          /* file missing, unreadable, write or rename failed             */
    GV_ERR_FORMAT,      /* file exists but its content is wrong (checkpoint, dataset)   */
    GV_ERR_OOM,         /* allocation failed or an arena is too small                    */
    GV_ERR_BACKEND,     /* backend / external library (oneDNN, CUDA, cuDNN, MPI) failed  */
    GV_ERR_UNSUPPORTED, /* valid request this build or backend cannot do                 */
    GV_ERR_NUMERIC,     /* non-finite value where a finite one is required               */
    GV_ERR_PLUGIN,      /* reward plugin load or call failure                            */
    GV_ERR_INTERRUPTED, /* stopped on request (SIGINT, --stop-after)                     */
    GV_ERR_INTERNAL,    /* a bug in grove                                                */
    GV_STATUS_COUNT
} gv_status;

/* Short stable name of a status ("ok", "config", ...). */
const char *gv_status_name(gv_status s);

/* Record an error for this thread and return `s`. The message is printf-formatted, one line. */
gv_status gv_error_at(const char *src_file, int src_line, gv_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
gv_status gv_error_atv(const char *src_file, int src_line, gv_status s, const char *fmt,
                       va_list ap);

#define GV_ERROR(s, ...) gv_error_at(__FILE__, __LINE__, (s), __VA_ARGS__)

/* Propagate a failure unchanged. */
#define GV_TRY(expr)                                                                               \
    do {                                                                                           \
        gv_status gv_try_s_ = (expr);                                                              \
        if (gv_try_s_ != GV_OK) return gv_try_s_;                                                  \
    } while (0)

/* The last error recorded on this thread ("" if none), its status and where it was raised. */
const char *gv_last_error(void);
gv_status gv_last_status(void);
const char *gv_last_error_src_file(void);
int gv_last_error_src_line(void);
void gv_clear_error(void);

/* Prefix the current message with context: "loading x.h5: <old message>". */
void gv_error_prefix(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
