/*
 * registry.c — per-bus matchers with left-right updates. See pb_registry.h.
 *
 * A rule's matcher id is the address of its name string, owned here; a name
 * is freed only after the rule has left both copies of its bus's matcher and
 * every reader of either copy has finished, so an id a reader sees always
 * names a live string.
 */
#include "pb_registry.h"

#include "common/pb_hash.h"
#include "common/pb_table.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct rulent {
    char *name; /* the matcher id is (uintptr_t)name */
} rulent;

typedef struct busent {
    char *key; /* account \0 region \0 bus */
    size_t keylen;
    pthread_mutex_t lock;   /* cur and readers */
    pthread_cond_t drained;
    pb_matcher *m[2];
    int cur;
    int readers[2];
    pb_table rules;         /* rulent* by name; writer only */
} busent;

struct pb_registry {
    pthread_rwlock_t buses_lock; /* the bus table; busents live until pb_registry_free */
    pb_table buses;
    pthread_mutex_t write_lock;  /* one writer at a time */
    size_t count;
};

typedef struct skey {
    const char *s;
    size_t n;
} skey;

static int bus_eq(const void *item, const void *key)
{
    const busent *b = item;
    const skey *k = key;
    return b->keylen == k->n && memcmp(b->key, k->s, k->n) == 0;
}

static int rule_eq(const void *item, const void *key) { return strcmp(((const rulent *)item)->name, key) == 0; }

static size_t make_key(const pb_scope *sc, const char *bus, char *out, size_t cap)
{
    size_t a = strlen(sc->account), r = strlen(sc->region), b = strlen(bus);
    if (a + r + b + 3 > cap)
        return 0;
    memcpy(out, sc->account, a + 1);
    memcpy(out + a + 1, sc->region, r + 1);
    memcpy(out + a + r + 2, bus, b + 1);
    return a + r + b + 2;
}

int pb_registry_new(pb_registry **out)
{
    pb_registry *r = calloc(1, sizeof *r);
    if (!r)
        return PB_ENOMEM;
    pthread_rwlock_init(&r->buses_lock, NULL);
    pthread_mutex_init(&r->write_lock, NULL);
    *out = r;
    return 0;
}

static void busent_free(busent *b)
{
    for (size_t i = 0; i < b->rules.cap; i++)
        if (b->rules.hashes[i]) {
            rulent *e = b->rules.items[i];
            free(e->name);
            free(e);
        }
    pb_table_free(&b->rules);
    pb_matcher_free(b->m[0]);
    pb_matcher_free(b->m[1]);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->drained);
    free(b->key);
    free(b);
}

void pb_registry_free(pb_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->buses.cap; i++)
        if (r->buses.hashes[i])
            busent_free(r->buses.items[i]);
    pb_table_free(&r->buses);
    pthread_rwlock_destroy(&r->buses_lock);
    pthread_mutex_destroy(&r->write_lock);
    free(r);
}

static busent *find_bus(pb_registry *r, const char *key, size_t n)
{
    skey k = {key, n};
    pthread_rwlock_rdlock(&r->buses_lock);
    busent *b = pb_table_find(&r->buses, pb_hash_bytes(key, n, 3), bus_eq, &k);
    pthread_rwlock_unlock(&r->buses_lock);
    return b;
}

/* Writer only (write_lock held). */
static busent *get_bus(pb_registry *r, const char *key, size_t n)
{
    busent *b = find_bus(r, key, n);
    if (b)
        return b;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->key = malloc(n);
    b->m[0] = pb_matcher_new();
    b->m[1] = pb_matcher_new();
    if (!b->key || !b->m[0] || !b->m[1]) {
        free(b->key);
        pb_matcher_free(b->m[0]);
        pb_matcher_free(b->m[1]);
        free(b);
        return NULL;
    }
    memcpy(b->key, key, n);
    b->keylen = n;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->drained, NULL);
    pthread_rwlock_wrlock(&r->buses_lock);
    int rc = pb_table_insert(&r->buses, pb_hash_bytes(key, n, 3), b);
    pthread_rwlock_unlock(&r->buses_lock);
    if (rc) {
        busent_free(b);
        return NULL;
    }
    return b;
}

static void wait_drained(busent *b, int i)
{
    pthread_mutex_lock(&b->lock);
    while (b->readers[i])
        pthread_cond_wait(&b->drained, &b->lock);
    pthread_mutex_unlock(&b->lock);
}

/* Applies one change to a matcher copy: add (p != NULL) or remove id. */
static int apply(pb_matcher *m, uint64_t id, const pb_pattern *p)
{
    int rc = p ? pb_matcher_add(m, id, p) : pb_matcher_remove(m, id);
    if (rc == PB_ENOTFOUND)
        rc = 0;
    return rc ? rc : pb_matcher_prepare(m);
}

int pb_registry_set_stored_rule(pb_registry *r, const pb_scope *sc, const pb_rule_rec *rule, pb_error *err)
{
    pb_pattern *p = NULL;
    bool on = rule->event_pattern && rule->state && strcmp(rule->state, "DISABLED") != 0;
    if (on) {
        int rc = pb_pattern_compile(rule->event_pattern, strlen(rule->event_pattern), &p, err);
        if (rc)
            return rc;
    }
    int rc = pb_registry_set_rule(r, sc, rule->bus, rule->name, p, err);
    pb_pattern_free(p);
    return rc;
}

int pb_registry_set_rule(pb_registry *r, const pb_scope *sc, const char *bus, const char *rule,
                         const pb_pattern *p, pb_error *err)
{
    char key[512];
    size_t n = make_key(sc, bus, key, sizeof key);
    if (!n)
        return pb_error_set(err, PB_EVALIDATION, "bus name too long");
    pthread_mutex_lock(&r->write_lock);
    int rc = 0;
    busent *b = get_bus(r, key, n);
    if (!b) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    rulent *e = pb_table_find(&b->rules, pb_hash_bytes(rule, strlen(rule), 5), rule_eq, rule);
    if (!e && !p)
        goto out; /* nothing to remove */
    bool fresh = false;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (e)
            e->name = strdup(rule);
        if (!e || !e->name || pb_table_insert(&b->rules, pb_hash_bytes(rule, strlen(rule), 5), e)) {
            if (e)
                free(e->name);
            free(e);
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
            goto out;
        }
        fresh = true;
    }
    uint64_t id = (uint64_t)(uintptr_t)e->name;
    /* left-right: change the standby copy, swap, drain, change the other */
    int standby = 1 - b->cur;
    wait_drained(b, standby);
    rc = apply(b->m[standby], id, p);
    if (rc) {
        /* the standby may be half-changed: bring it back in line with the active copy later;
         * undo what we can (a failed add leaves the matcher unchanged) */
        if (fresh) {
            /* the add may have succeeded before prepare failed: take the id out
             * of the standby copy before its name (the id) is freed */
            pb_matcher_remove(b->m[standby], id);
            pb_matcher_prepare(b->m[standby]);
            pb_table_remove(&b->rules, pb_hash_bytes(rule, strlen(rule), 5), rule_eq, rule);
            free(e->name);
            free(e);
        }
        rc = pb_error_set(err, rc, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&b->lock);
    b->cur = standby;
    pthread_mutex_unlock(&b->lock);
    int old = 1 - standby;
    wait_drained(b, old);
    rc = apply(b->m[old], id, p);
    if (rc) {
        /* the copies now disagree: rebuild nothing silently — report and keep the new active copy */
        rc = pb_error_set(err, rc, "out of memory while updating the standby matcher");
        goto out;
    }
    if (!p) {
        pb_table_remove(&b->rules, pb_hash_bytes(rule, strlen(rule), 5), rule_eq, rule);
        free(e->name);
        free(e);
        r->count--;
    } else if (fresh) {
        r->count++;
    }
out:
    pthread_mutex_unlock(&r->write_lock);
    return rc;
}

int pb_registry_load(pb_registry *r, pb_store *s, pb_error *err)
{
    pb_rule_entry *v = NULL;
    size_t n = 0;
    int rc = s->ops->rule_list_all(s, &v, &n);
    if (rc)
        return pb_error_set(err, rc, "cannot load rules from the store");
    for (size_t i = 0; i < n && !rc; i++) {
        pb_scope sc = {v[i].account, v[i].region};
        rc = pb_registry_set_stored_rule(r, &sc, &v[i].rule, err);
    }
    pb_rule_entries_free(v, n);
    return rc;
}

int pb_registry_match(pb_registry *r, const pb_scope *sc, const char *bus, const char *event, size_t len,
                      pb_match_scratch *scratch, pb_registry_match_fn fn, void *ctx, pb_error *err)
{
    char key[512];
    size_t n = make_key(sc, bus, key, sizeof key);
    busent *b = n ? find_bus(r, key, n) : NULL;
    if (!b)
        return 0; /* no rules on this bus */
    pthread_mutex_lock(&b->lock);
    int i = b->cur;
    b->readers[i]++;
    pthread_mutex_unlock(&b->lock);
    const uint64_t *ids;
    size_t nids;
    int rc = pb_matcher_match(b->m[i], event, len, scratch, &ids, &nids, err);
    for (size_t k = 0; !rc && k < nids; k++)
        fn(ctx, (const char *)(uintptr_t)ids[k]);
    pthread_mutex_lock(&b->lock);
    if (--b->readers[i] == 0)
        pthread_cond_broadcast(&b->drained);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

size_t pb_registry_count(pb_registry *r)
{
    pthread_mutex_lock(&r->write_lock);
    size_t n = r->count;
    pthread_mutex_unlock(&r->write_lock);
    return n;
}
