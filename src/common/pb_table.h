/*
 * pb_table.h — an open-addressing hash table of pointers with stored hashes.
 *
 * The caller owns the items and computes hashes; the table stores (hash, item)
 * pairs with linear probing and backward-shift deletion (no tombstones), and
 * grows at 50% load. Lookups take an equality callback so the same table
 * serves any key shape; with a static callback the compiler inlines it.
 */
#ifndef PB_TABLE_H
#define PB_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pb_table {
    uint64_t *hashes; /* 0 marks an empty slot (stored hashes are forced non-zero) */
    void **items;
    size_t cap;       /* power of two, or 0 */
    size_t n;
} pb_table;

static inline uint64_t pb_table_h(uint64_t h) { return h ? h : 1; }

void pb_table_init(pb_table *t);
void pb_table_free(pb_table *t); /* frees the table, not the items */

/* 0 or PB_ENOMEM. The caller ensures the key is not already present. */
int pb_table_insert(pb_table *t, uint64_t hash, void *item);

static inline void *pb_table_find(const pb_table *t, uint64_t hash, int (*eq)(const void *item, const void *key),
                                  const void *key)
{
    if (!t->cap)
        return NULL;
    hash = pb_table_h(hash);
    for (size_t i = hash & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->hashes[i])
            return NULL;
        if (t->hashes[i] == hash && eq(t->items[i], key))
            return t->items[i];
    }
}

/* Removes and returns the item equal to key, or NULL. */
void *pb_table_remove(pb_table *t, uint64_t hash, int (*eq)(const void *item, const void *key), const void *key);

size_t pb_table_memory(const pb_table *t);

#endif
