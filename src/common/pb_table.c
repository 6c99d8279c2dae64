/*
 * pb_table.c — growth, insertion and backward-shift deletion. See pb_table.h.
 */
#include "pb_table.h"

#include "pb_error.h"

#include <stdlib.h>

void pb_table_init(pb_table *t)
{
    t->hashes = NULL;
    t->items = NULL;
    t->cap = t->n = 0;
}

void pb_table_free(pb_table *t)
{
    free(t->hashes);
    free(t->items);
    pb_table_init(t);
}

static void put(uint64_t *hashes, void **items, size_t cap, uint64_t h, void *item)
{
    size_t i = h & (cap - 1);
    while (hashes[i])
        i = (i + 1) & (cap - 1);
    hashes[i] = h;
    items[i] = item;
}

int pb_table_insert(pb_table *t, uint64_t hash, void *item)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 8;
        uint64_t *nh = calloc(nc, sizeof *nh);
        void **ni = calloc(nc, sizeof *ni);
        if (!nh || !ni) {
            free(nh);
            free(ni);
            return PB_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++)
            if (t->hashes[i])
                put(nh, ni, nc, t->hashes[i], t->items[i]);
        free(t->hashes);
        free(t->items);
        t->hashes = nh;
        t->items = ni;
        t->cap = nc;
    }
    put(t->hashes, t->items, t->cap, pb_table_h(hash), item);
    t->n++;
    return 0;
}

void *pb_table_remove(pb_table *t, uint64_t hash, int (*eq)(const void *, const void *), const void *key)
{
    if (!t->cap)
        return NULL;
    hash = pb_table_h(hash);
    size_t mask = t->cap - 1, i = hash & mask;
    for (;; i = (i + 1) & mask) {
        if (!t->hashes[i])
            return NULL;
        if (t->hashes[i] == hash && eq(t->items[i], key))
            break;
    }
    void *item = t->items[i];
    /* backward-shift: pull later members of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->hashes[j]; j = (j + 1) & mask) {
        size_t home = t->hashes[j] & mask;
        /* move j to hole if home is not in (hole, j] cyclically */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            t->hashes[hole] = t->hashes[j];
            t->items[hole] = t->items[j];
            hole = j;
        }
    }
    t->hashes[hole] = 0;
    t->items[hole] = NULL;
    t->n--;
    return item;
}

size_t pb_table_memory(const pb_table *t) { return t->cap * (sizeof(uint64_t) + sizeof(void *)); }
