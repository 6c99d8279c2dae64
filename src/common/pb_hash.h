/*
 * pb_hash.h — a fast non-cryptographic hash for byte strings.
 *
 * Used by the matcher's tables (strings, prefixes, path segments). Reads 8
 * bytes at a time with memcpy (no unaligned loads), mixes with multiplications.
 * Not for untrusted adversarial keys where flooding matters: the seed is fixed.
 */
#ifndef PB_HASH_H
#define PB_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t pb_hash_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

static inline uint64_t pb_hash_bytes(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ pb_hash_mix(w)) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ pb_hash_mix(w ^ 0x5bd1e9955bd1e995ULL)) * 0x9e3779b97f4a7c15ULL;
    return pb_hash_mix(h);
}

#endif
