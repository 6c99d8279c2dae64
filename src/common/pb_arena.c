/*
 * pb_arena.c — bump allocator over a list of blocks. See pb_arena.h.
 */
#include "pb_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pb_arena_block {
    pb_arena_block *next;
    size_t size;
    _Alignas(16) unsigned char data[];
};

#define BLOCK_MIN 4096

void pb_arena_init(pb_arena *a)
{
    a->head = NULL;
    a->used = 0;
    a->total = 0;
}

void pb_arena_free(pb_arena *a)
{
    pb_arena_block *b = a->head;
    while (b) {
        pb_arena_block *next = b->next;
        free(b);
        b = next;
    }
    pb_arena_init(a);
}

void *pb_arena_alloc(pb_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->used < n) {
        size_t size = n > BLOCK_MIN ? n : BLOCK_MIN;
        if (a->head && a->head->size * 2 > size && a->head->size < (1u << 20))
            size = a->head->size * 2;
        pb_arena_block *b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->next = a->head;
        b->size = size;
        a->head = b;
        a->used = 0;
        a->total += size;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    return p;
}

void *pb_arena_zalloc(pb_arena *a, size_t n)
{
    void *p = pb_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *pb_arena_strndup(pb_arena *a, const char *s, size_t n)
{
    char *p = pb_arena_alloc(a, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void *pb_arena_memdup(pb_arena *a, const void *src, size_t n)
{
    void *p = pb_arena_alloc(a, n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}
