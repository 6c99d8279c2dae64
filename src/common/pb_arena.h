/*
 * pb_arena.h — a bump allocator whose blocks are freed in one go.
 *
 * Used where many small objects share one lifetime: a parsed JSON document, a
 * compiled pattern. The arena owns every allocation made from it; pb_arena_free
 * releases them all. Allocation failure returns NULL (never aborts).
 */
#ifndef PB_ARENA_H
#define PB_ARENA_H

#include <stddef.h>

typedef struct pb_arena_block pb_arena_block;

typedef struct pb_arena {
    pb_arena_block *head; /* newest block first */
    size_t used;          /* bytes handed out in head */
    size_t total;         /* bytes allocated over all blocks */
} pb_arena;

void pb_arena_init(pb_arena *a);
void pb_arena_free(pb_arena *a);

/* 16-byte aligned, uninitialised / zeroed memory owned by the arena. */
void *pb_arena_alloc(pb_arena *a, size_t n);
void *pb_arena_zalloc(pb_arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *pb_arena_strndup(pb_arena *a, const char *s, size_t n);
void *pb_arena_memdup(pb_arena *a, const void *p, size_t n);

#endif
