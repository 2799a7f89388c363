/* The bundled example plugins' reader of their flattened `config:` (DESIGN.md §7: one "path=value"
 * line per leaf, "" when absent), so a plugin needs no YAML parser. Header-only, because each plugin
 * is its own shared object. Deliberately not here: anything a plugin must have — the minimal
 * tutorial plugin (minimal/ink_target.c) parses its one key by hand to compile with reward.h alone. */
#ifndef GROVE_PLUGIN_CONFIG_H
#define GROVE_PLUGIN_CONFIG_H

#include <stdio.h>
#include <string.h>

/* The value of `key` copied into buf (n bytes), or NULL when the config has no such line. */
static inline const char *plugin_config_value(const char *config, const char *key, char *buf,
                                              size_t n) {
    const size_t k = strlen(key);
    for (const char *line = config; line && *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > k && strncmp(line, key, k) == 0 && line[k] == '=') {
            snprintf(buf, n, "%.*s", (int)(len - k - 1), line + k + 1);
            return buf;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

#endif
