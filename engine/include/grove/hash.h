/* FNV-1a 64: the one byte hash grove uses for model hashes and config hashes. Not cryptographic;
 * it detects change and corruption, not tampering by an adversary. */
#ifndef GROVE_HASH_H
#define GROVE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define GV_FNV1A64_INIT 0xcbf29ce484222325ull

/* Continue hash `h` over `n` bytes. */
static inline uint64_t gv_fnv1a64(uint64_t h, const void *bytes, size_t n) {
    const unsigned char *b = (const unsigned char *)bytes;
    for (size_t i = 0; i < n; ++i) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Continue `h` over the low `nbytes` bytes of v, little-endian (host-order independent). */
static inline uint64_t gv_fnv1a64_le(uint64_t h, uint64_t v, int nbytes) {
    unsigned char b[8];
    for (int i = 0; i < nbytes; ++i) b[i] = (unsigned char)(v >> (8 * i));
    return gv_fnv1a64(h, b, (size_t)nbytes);
}

#endif
