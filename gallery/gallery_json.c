/* Reading JSON lines (metrics.jsonl, preferences.jsonl) for the gallery through libfyaml, the YAML
 * library grove already links (JSON is YAML 1.2 flow syntax; FYPCF_JSON_FORCE parses it as JSON),
 * and writing JSON strings. Lookups by '/'-separated paths; numbers must read completely as a
 * finite or infinite double (null and strings are not numbers). Not here: any schema. */
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_internal.h"
#include "grove/log.h"

struct gallery_json {
    struct fy_document *doc;
};

gv_status gallery_json_parse(const char *text, const char *where, gallery_json **out) {
    *out = NULL;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) return GV_ERROR(GV_ERR_OOM, "%s: cannot create the JSON diagnostics", where);
    fy_diag_set_collect_errors(diag, true);
    const size_t len = strlen(text);
    char *copy = malloc(len + 1); /* the document keeps pointers into its input */
    if (!copy) {
        fy_diag_destroy(diag);
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory", where);
    }
    memcpy(copy, text, len + 1);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_JSON_FORCE, .diag = diag};
    struct fy_document *doc = fy_document_build_from_malloc_string(&pcfg, copy, len);
    gv_status s = GV_OK;
    if (!doc || fy_diag_got_error(diag)) {
        void *it = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
        s = GV_ERROR(GV_ERR_FORMAT, "%s: invalid JSON%s%s", where, e && e->msg ? ": " : "",
                     e && e->msg ? e->msg : "");
    } else if (!fy_node_is_mapping(fy_document_root(doc))) {
        s = GV_ERROR(GV_ERR_FORMAT, "%s: expected a JSON object", where);
    }
    fy_diag_destroy(diag);
    if (s != GV_OK) {
        fy_document_destroy(doc);
        return s;
    }
    gallery_json *j = calloc(1, sizeof *j);
    if (!j) {
        fy_document_destroy(doc);
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory", where);
    }
    j->doc = doc;
    *out = j;
    return GV_OK;
}

void gallery_json_free(gallery_json *j) {
    if (!j) return;
    fy_document_destroy(j->doc);
    free(j);
}

static struct fy_node *scalar_at(gallery_json *j, const char *path, const char **text,
                                 size_t *len) {
    struct fy_node *n = fy_node_by_path(fy_document_root(j->doc), path, (size_t)-1,
                                        FYNWF_DONT_FOLLOW);
    if (!n || !fy_node_is_scalar(n)) return NULL;
    *text = fy_node_get_scalar(n, len);
    return *text ? n : NULL;
}

int gallery_json_number(gallery_json *j, const char *path, double *out) {
    const char *t;
    size_t len;
    struct fy_node *n = scalar_at(j, path, &t, &len);
    if (!n || fy_node_get_style(n) != FYNS_PLAIN || len == 0 || len > 63) return 0;
    char buf[64];
    memcpy(buf, t, len);
    buf[len] = '\0';
    char *end = NULL;
    const double v = strtod(buf, &end);
    if (end == buf || *end) return 0; /* null, true, ... */
    *out = v;
    return 1;
}

int gallery_json_string(gallery_json *j, const char *path, char **out) {
    const char *t;
    size_t len;
    if (!scalar_at(j, path, &t, &len)) return 0;
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, t, len);
    copy[len] = '\0';
    *out = copy;
    return 1;
}

void gallery_json_put(FILE *f, const char *s) {
    char small[512];
    const size_t need = gv_json_escape(small, sizeof small, s);
    if (need < sizeof small) {
        fprintf(f, "\"%s\"", small);
        return;
    }
    char *big = malloc(need + 1);
    if (!big) {
        fputs("\"\"", f);
        return;
    }
    gv_json_escape(big, need + 1, s);
    fprintf(f, "\"%s\"", big);
    free(big);
}
