/* A small JSON reader for the bridge's answers (RFC 8259 values; NaN / Infinity / -Infinity are
 * accepted as numbers because Python's json.dumps writes them). One parse builds a tree of nodes
 * in one malloc'd block list; bj_free releases it. Deliberately not here: writing JSON (bridge.c
 * writes its requests directly) and any check that unescaped bytes are valid UTF-8 (they are copied
 * as they come). \uXXXX escapes decode to UTF-8, surrogate pairs to one 4-byte code point. */
#ifndef GROVE_BRIDGE_JSON_H
#define GROVE_BRIDGE_JSON_H

#include <stddef.h>

typedef enum bj_type { BJ_NULL, BJ_BOOL, BJ_NUMBER, BJ_STRING, BJ_ARRAY, BJ_OBJECT } bj_type;

typedef struct bj_node {
    bj_type type;
    double number;           /* NUMBER; BOOL: 0 / 1            */
    char *string;            /* STRING (decoded, NUL-terminated) */
    int n;                   /* ARRAY / OBJECT: items           */
    struct bj_node **items;  /* ARRAY / OBJECT values           */
    char **keys;             /* OBJECT keys                     */
} bj_node;

/* Parse `text` (one complete value, surrounding whitespace allowed). NULL on a syntax error, with
   a short reason in err. */
bj_node *bj_parse(const char *text, char *err, size_t err_len);
void bj_free(bj_node *n);
/* Member `key` of an object, or NULL. */
const bj_node *bj_get(const bj_node *obj, const char *key);

#endif
