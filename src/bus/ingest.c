/*
 * ingest.c — from events to committed invocations, and the delivery's
 * lifecycle.
 *
 * An ingest call matches its events (the registry, with a per-thread
 * scratch), looks up the targets of every matched rule (a cache in front of
 * the store, invalidated by the control plane), builds one invocation per
 * (event, rule, target), and hands them to the group-commit thread, waiting
 * until they are committed. The committer takes every batch waiting at that
 * moment and writes them in one transaction: under load, many requests
 * share one fsync. After the commit it queues the invocations for dispatch.
 * The same thread deletes delivered invocations in batches and drains the
 * runner's event outbox (status-change events go onto their bus through
 * the same matching, and leave the outbox in the transaction that records
 * their invocations).
 */
#include "deliver_internal.h"

#include "common/pb_arena.h"
#include "common/pb_hash.h"
#include "common/pb_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTBOX_PAGE 500
#define OUTBOX_POLL_MS 1000 /* look at the outbox at least this often */
#define DONE_BATCH 1024     /* delivered invocations that make the committer delete them at once */
#define DONE_FLUSH_MS 20    /* ... or this long after the first of them */

int64_t pb__now_ms_delivery(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------ target cache -- */

typedef struct tentry {
    char *key;     /* account \0 region \0 bus \0 rule \0 */
    size_t keylen;
    char *rule_arn;
    size_t n;
    char **ids, **arns, **jsons;
} tentry;

typedef struct skey {
    const char *s;
    size_t n;
} skey;

static int t_eq(const void *item, const void *key)
{
    const tentry *e = item;
    const skey *k = key;
    return e->keylen == k->n && !memcmp(e->key, k->s, k->n);
}

static size_t make_key(const pb_scope *sc, const char *bus, const char *rule, char *out, size_t cap)
{
    const char *parts[4] = {sc->account, sc->region, bus, rule};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(parts[i]) + 1;
        if (n + l > cap)
            return 0;
        memcpy(out + n, parts[i], l);
        n += l;
    }
    return n;
}

static void tentry_free(tentry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->ids[i]);
        free(e->arns[i]);
        free(e->jsons[i]);
    }
    free(e->ids);
    free(e->arns);
    free(e->jsons);
    free(e->rule_arn);
    free(e->key);
    free(e);
}

void pb__cache_free(pb_delivery *d)
{
    for (size_t i = 0; i < d->cache.cap; i++)
        if (d->cache.hashes[i])
            tentry_free(d->cache.items[i]);
    pb_table_free(&d->cache);
}

void pb_delivery_rule_changed(pb_delivery *d, const pb_scope *sc, const char *bus, const char *rule)
{
    char key[1024];
    size_t n = make_key(sc, bus, rule, key, sizeof key);
    pthread_mutex_lock(&d->cmu);
    d->cache_gen++;
    if (n) {
        skey k = {key, n};
        tentry_free(pb_table_remove(&d->cache, pb_hash_bytes(key, n, 0), t_eq, &k));
    }
    pthread_mutex_unlock(&d->cmu);
}

void pb_delivery_bus_deleted(pb_delivery *d, const pb_scope *sc, const char *bus)
{
    pb_delivery_rule_changed(d, sc, bus, ""); /* the bus's presence entry (below) */
}

/*
 * Whether an event bus exists, for event-bus targets: asked for every
 * invocation, so a bus found in the store is remembered in the target cache
 * under the rule name "" (no rule has that name) as an entry without
 * targets, until pb_delivery_bus_deleted. Only presence is remembered: a
 * bus created later is seen at once. Codes: PB_ENOTFOUND, store errors.
 */
int pb__bus_exists(pb_delivery *d, const pb_scope *sc, const char *bus)
{
    char key[1024];
    size_t keylen = make_key(sc, bus, "", key, sizeof key);
    if (!keylen)
        return PB_ENOTFOUND;
    uint64_t h = pb_hash_bytes(key, keylen, 0);
    skey k = {key, keylen};
    pthread_mutex_lock(&d->cmu);
    bool known = pb_table_find(&d->cache, h, t_eq, &k) != NULL;
    uint64_t gen = d->cache_gen;
    pthread_mutex_unlock(&d->cmu);
    if (known)
        return 0;
    pb_bus_rec b;
    int rc = d->store->ops->bus_get(d->store, sc, bus, &b);
    if (rc)
        return rc;
    pb_bus_rec_free(&b);
    tentry *e = calloc(1, sizeof *e);
    if (e && (e->key = malloc(keylen)) != NULL) {
        memcpy(e->key, key, keylen);
        e->keylen = keylen;
        pthread_mutex_lock(&d->cmu);
        /* keep it unless a bus was deleted while it was read */
        if (gen == d->cache_gen && !pb_table_find(&d->cache, h, t_eq, &k) && pb_table_insert(&d->cache, h, e) == 0)
            e = NULL;
        pthread_mutex_unlock(&d->cmu);
    }
    tentry_free(e);
    return 0;
}

static char *rule_arn(const pb_scope *sc, const char *bus, const char *rule)
{
    size_t cap = strlen(sc->region) + strlen(sc->account) + strlen(bus) + strlen(rule) + 40;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    if (!strcmp(bus, "default"))
        snprintf(s, cap, "arn:aws:events:%s:%s:rule/%s", sc->region, sc->account, rule);
    else
        snprintf(s, cap, "arn:aws:events:%s:%s:rule/%s/%s", sc->region, sc->account, bus, rule);
    return s;
}

/* Reads a rule's targets from the store into a new entry. */
static int load_targets(pb_delivery *d, const pb_scope *sc, const char *bus, const char *rule, const char *key,
                        size_t keylen, tentry **out)
{
    pb_target_rec *t = NULL;
    size_t n = 0;
    bool more = false;
    int rc = d->store->ops->targets_list(d->store, sc, bus, rule, NULL, 1000, &t, &n, &more);
    if (rc == PB_ENOTFOUND) { /* the rule went away meanwhile: no targets */
        rc = 0;
        n = 0;
    }
    if (rc)
        return rc;
    tentry *e = calloc(1, sizeof *e);
    if (!e) {
        pb_target_recs_free(t, n);
        return PB_ENOMEM;
    }
    e->key = malloc(keylen);
    e->keylen = keylen;
    e->rule_arn = rule_arn(sc, bus, rule);
    e->ids = calloc(n ? n : 1, sizeof *e->ids);
    e->arns = calloc(n ? n : 1, sizeof *e->arns);
    e->jsons = calloc(n ? n : 1, sizeof *e->jsons);
    if (!e->key || !e->rule_arn || !e->ids || !e->arns || !e->jsons) {
        tentry_free(e);
        pb_target_recs_free(t, n);
        return PB_ENOMEM;
    }
    memcpy(e->key, key, keylen);
    for (size_t i = 0; i < n; i++) { /* take the strings over */
        e->ids[i] = t[i].id;
        e->arns[i] = t[i].arn;
        e->jsons[i] = t[i].json;
        t[i].id = t[i].arn = t[i].json = NULL;
    }
    e->n = n;
    pb_target_recs_free(t, n);
    *out = e;
    return 0;
}

/* ------------------------------------------------------------ ingest -- */

typedef struct inv_vec {
    pb_invocation_rec *v;
    size_t n, cap;
} inv_vec;

typedef struct names {
    pb_arena *arena;
    const char **v;
    size_t n, cap;
    int rc;
} names;

static void collect_rule(void *ctx, const char *rule)
{
    names *nm = ctx;
    if (nm->rc)
        return;
    char *copy = pb_arena_strndup(nm->arena, rule, strlen(rule));
    if (!copy || pb_grow((void **)&nm->v, &nm->cap, nm->n + 1, sizeof *nm->v)) {
        nm->rc = PB_ENOMEM;
        return;
    }
    nm->v[nm->n++] = copy;
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p) { pb_match_scratch_free(p); }
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_destroy); }

/* This thread's matching scratch (freed when the thread ends). */
static pb_match_scratch *scratch(void)
{
    pthread_once(&scratch_once, scratch_init);
    pb_match_scratch *s = pthread_getspecific(scratch_key);
    if (!s && (s = pb_match_scratch_new()) != NULL)
        pthread_setspecific(scratch_key, s);
    return s;
}

static int add_targets(pb_delivery *d, const pb_scope *sc, char *bus, const char *rule, char *id, char *json,
                       int64_t ingested_ms, int64_t hops, pb_arena *arena, inv_vec *out);

/* Appends the invocations one event causes to out (strings in arena). */
static int collect(pb_delivery *d, const pb_scope *sc, const pb_delivery_event *ev, int64_t hops, pb_arena *arena,
                   inv_vec *out, int *status)
{
    pb_match_scratch *s = scratch();
    if (!s)
        return PB_ENOMEM;
    names nm = {.arena = arena};
    pb_error err;
    int mrc = pb_registry_match(d->registry, sc, ev->bus, ev->json, ev->len, s, collect_rule, &nm, &err);
    if (mrc && mrc != PB_EEVENT && mrc != PB_ETOOCOMPLEX) {
        free(nm.v); /* out of memory, or a matcher fault: an error of the call (nothing is committed) */
        return mrc;
    }
    if (status)
        *status = mrc;
    if (mrc || nm.rc) {
        free(nm.v);
        return nm.rc; /* an event matching refuses causes nothing; not an error of the call */
    }
    if (!nm.n) {
        free(nm.v);
        return 0;
    }
    pb_metrics_add(d->metrics, sc, ev->bus, NULL, PB_M_MATCHED_EVENTS, 1);
    char *json = pb_arena_strndup(arena, ev->json, ev->len);
    char *bus = pb_arena_strndup(arena, ev->bus, strlen(ev->bus));
    char *id = pb_arena_strndup(arena, ev->id, strlen(ev->id));
    int rc = json && bus && id ? 0 : PB_ENOMEM;
    for (size_t r = 0; !rc && r < nm.n; r++) {
        pb_metrics_add(d->metrics, sc, ev->bus, nm.v[r], PB_M_TRIGGERED_RULES, 1);
        rc = add_targets(d, sc, bus, nm.v[r], id, json, ev->ingested_ms, hops, arena, out);
    }
    free(nm.v);
    return rc;
}

/* Appends one invocation per target of rule (bus, rule, id and json are
 * arena strings the invocations borrow). */
static int add_targets(pb_delivery *d, const pb_scope *sc, char *bus, const char *rule, char *id, char *json,
                       int64_t ingested_ms, int64_t hops, pb_arena *arena, inv_vec *out)
{
    int rc = 0;
    char key[1024];
    size_t keylen = make_key(sc, bus, rule, key, sizeof key);
    if (!keylen)
        return 0;
    uint64_t h = pb_hash_bytes(key, keylen, 0);
    skey k = {key, keylen};
    /* The entry found is used under the same hold of cmu that found it: a
     * rule change (pb_delivery_rule_changed) may remove it as soon as the
     * lock is let go, and looking it up again would then find nothing. */
    pthread_mutex_lock(&d->cmu);
    tentry *use = pb_table_find(&d->cache, h, t_eq, &k);
    tentry *loaded = NULL;
    if (!use) {
        uint64_t gen = d->cache_gen;
        pthread_mutex_unlock(&d->cmu);
        if ((rc = load_targets(d, sc, bus, rule, key, keylen, &loaded)) != 0)
            return rc;
        pthread_mutex_lock(&d->cmu);
        use = loaded; /* this event gets the targets as read, cached or not */
        /* keep it unless the rule changed while it was read */
        if (gen == d->cache_gen && !pb_table_find(&d->cache, h, t_eq, &k) &&
            pb_table_insert(&d->cache, h, loaded) == 0)
            loaded = NULL; /* the cache's now; `use` stays valid while cmu is held */
    }
    for (size_t t = 0; !rc && t < use->n; t++) {
        if (pb_grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v)) {
            rc = PB_ENOMEM;
            break;
        }
        pb_invocation_rec *iv = &out->v[out->n];
        *iv = (pb_invocation_rec){
            .account = (char *)sc->account,
            .region = (char *)sc->region,
            .bus = bus,
            .rule_arn = pb_arena_strndup(arena, use->rule_arn, strlen(use->rule_arn)),
            .rule_name = (char *)rule,
            .target_id = pb_arena_strndup(arena, use->ids[t], strlen(use->ids[t])),
            .target_arn = pb_arena_strndup(arena, use->arns[t], strlen(use->arns[t])),
            .target_json = pb_arena_strndup(arena, use->jsons[t], strlen(use->jsons[t])),
            .event_id = id,
            .event_json = json,
            .ingested_ms = ingested_ms,
            .next_ms = pb__now_ms_delivery(),
            .hops = hops,
        };
        if (!iv->rule_arn || !iv->target_id || !iv->target_arn || !iv->target_json)
            rc = PB_ENOMEM;
        else
            out->n++;
    }
    pthread_mutex_unlock(&d->cmu);
    tentry_free(loaded);
    return rc;
}

/* Hands v to the committer and waits for the commit. */
static int commit(pb_delivery *d, pb_invocation_rec *v, size_t n, const pb_tick_rec *ticks, size_t nticks)
{
    pb__batch b = {.v = v, .n = n, .ticks = ticks, .nticks = nticks};
    pthread_mutex_lock(&d->mu);
    pb__batch **pp = &d->pending;
    while (*pp)
        pp = &(*pp)->next;
    *pp = &b;
    pthread_cond_signal(&d->work);
    while (!b.done)
        pthread_cond_wait(&d->committed, &d->mu);
    pthread_mutex_unlock(&d->mu);
    return b.rc;
}

int pb__ingest(pb_delivery *d, const pb_scope *sc, const pb_delivery_event *ev, size_t n, int64_t hops,
               int *status, pb_error *err)
{
    pb_arena arena;
    pb_arena_init(&arena);
    inv_vec out = {0};
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = collect(d, sc, &ev[i], hops, &arena, &out, status ? &status[i] : NULL);
    if (!rc && out.n)
        rc = commit(d, out.v, out.n, NULL, 0);
    if (rc)
        pb_error_set(err, rc, "cannot record the invocations of the events");
    free(out.v);
    pb_arena_free(&arena);
    return rc;
}

int pb_delivery_ingest(pb_delivery *d, const pb_scope *sc, const pb_delivery_event *ev, size_t n, int *status,
                       pb_error *err)
{
    return pb__ingest(d, sc, ev, n, 0, status, err);
}

int pb_delivery_fire(pb_delivery *d, const pb_delivery_tick *t, size_t n, pb_error *err)
{
    if (!n)
        return 0;
    pb_arena arena;
    pb_arena_init(&arena);
    inv_vec out = {0};
    pb_tick_rec *ticks = calloc(n, sizeof *ticks);
    int rc = ticks ? 0 : PB_ENOMEM;
    int64_t now = pb__now_ms_delivery();
    for (size_t i = 0; !rc && i < n; i++) {
        const pb_scope *sc = &t[i].scope;
        char *bus = pb_arena_strndup(&arena, t[i].bus, strlen(t[i].bus));
        char *rule = pb_arena_strndup(&arena, t[i].rule, strlen(t[i].rule));
        char *id = pb_arena_strndup(&arena, t[i].event_id, strlen(t[i].event_id));
        char *json = pb_arena_strndup(&arena, t[i].event_json, strlen(t[i].event_json));
        if (!bus || !rule || !id || !json) {
            rc = PB_ENOMEM;
            break;
        }
        ticks[i] = (pb_tick_rec){(char *)sc->account, (char *)sc->region, bus, rule, t[i].tick_ms};
        /* ingested when it entered delivery (real time, so retry ages hold under a manual clock) */
        rc = add_targets(d, sc, bus, rule, id, json, now, 0, &arena, &out);
    }
    if (!rc)
        rc = commit(d, out.v, out.n, ticks, n);
    if (!rc)
        for (size_t i = 0; i < n; i++) {
            pb_metrics_add(d->metrics, &t[i].scope, t[i].bus, t[i].rule, PB_M_TRIGGERED_RULES, 1);
            pb_metrics_add(d->metrics, &t[i].scope, t[i].bus, t[i].rule, PB_M_SCHEDULED_TICKS, 1);
            if (t[i].catchup)
                pb_metrics_add(d->metrics, &t[i].scope, t[i].bus, t[i].rule, PB_M_CATCHUP_TICKS, 1);
        }
    if (rc)
        pb_error_set(err, rc, "cannot record the schedule ticks and their invocations");
    free(ticks);
    free(out.v);
    pb_arena_free(&arena);
    return rc;
}

void pb__done(pb_delivery *d, int64_t id)
{
    pthread_mutex_lock(&d->mu);
    if (pb_grow((void **)&d->done_ids, &d->done_cap, d->ndone + 1, sizeof *d->done_ids) == 0)
        d->done_ids[d->ndone++] = id; /* out of memory: it is delivered again after a restart */
    if (d->ndone == DONE_BATCH || d->ndone == 1) /* 1: starts its DONE_FLUSH_MS wait */
        pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
}

void pb_delivery_outbox_notify(pb_delivery *d)
{
    pthread_mutex_lock(&d->mu);
    d->outbox_flag = true;
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
}

/* ------------------------------------------------------- committer -- */

static void enqueue_all(pb_delivery *d, const pb_invocation_rec *v, size_t n)
{
    size_t lost = pb__enqueue(d, v, n);
    if (lost)
        pb_log_error("out of memory queueing %zu invocations: they are delivered after a restart", lost);
}

/* Moves the runner's status-change events from the outbox onto their buses. */
static void drain_outbox(pb_delivery *d)
{
    for (;;) {
        pb_outbox_rec *ob = NULL;
        size_t n = 0;
        if (d->store->ops->outbox_list(d->store, d->outbox_after, OUTBOX_PAGE, &ob, &n) != 0 || n == 0) {
            pb_outbox_recs_free(ob, n);
            return;
        }
        pb_arena arena;
        pb_arena_init(&arena);
        inv_vec out = {0};
        int64_t *seqs = malloc(n * sizeof *seqs);
        int rc = seqs ? 0 : PB_ENOMEM;
        for (size_t i = 0; !rc && i < n; i++) {
            pb_scope sc = {ob[i].account, ob[i].region};
            char id[64] = "";
            /* the id is in the envelope; matching does not need it, the token does */
            const char *p = strstr(ob[i].event_json, "\"id\":\"");
            if (p)
                sscanf(p + 6, "%63[^\"]", id);
            pb_delivery_event ev = {.bus = ob[i].bus ? ob[i].bus : "default", .id = id, .json = ob[i].event_json,
                                    .len = strlen(ob[i].event_json), .ingested_ms = ob[i].created_ms};
            rc = collect(d, &sc, &ev, 0, &arena, &out, NULL);
            seqs[i] = ob[i].seq;
        }
        if (!rc)
            rc = d->store->ops->invocations_add(d->store, out.v, out.n, seqs, n);
        if (!rc) {
            enqueue_all(d, out.v, out.n);
            d->outbox_after = ob[n - 1].seq;
        } else {
            pb_log_error("cannot deliver the event outbox (%s); retrying later", pb_error_name(rc));
        }
        free(seqs);
        free(out.v);
        pb_arena_free(&arena);
        pb_outbox_recs_free(ob, n);
        if (rc || n < OUTBOX_PAGE)
            return;
    }
}

static void *committer_main(void *arg)
{
    pb_delivery *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        /* Delivered invocations alone do not wake it at once: their
         * deletion rides with the next batch of new ones, or goes on its
         * own after DONE_FLUSH_MS (a crash before that redelivers them,
         * which at-least-once allows and pipeline starts absorb). */
        while (!d->quit && !d->pending && !d->outbox_flag && !d->flush && d->ndone < DONE_BATCH) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait_ms = d->ndone ? DONE_FLUSH_MS : OUTBOX_POLL_MS;
            ts.tv_sec += (time_t)(wait_ms / 1000);
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&d->work, &d->mu, &ts) == ETIMEDOUT) {
                if (d->ndone)
                    break;
                d->outbox_flag = true;
            }
        }
        d->flush = false;
        if (d->quit && !d->pending && !d->ndone)
            break;
        pb__batch *list = d->pending;
        d->pending = NULL;
        int64_t *done = d->done_ids;
        size_t ndone = d->ndone;
        d->done_ids = NULL;
        d->ndone = d->done_cap = 0;
        bool outbox = d->outbox_flag && !d->quit;
        d->outbox_flag = false;
        d->committing = true;
        pthread_mutex_unlock(&d->mu);

        if (list) {
            size_t total = 0, nticks = 0;
            for (pb__batch *b = list; b; b = b->next) {
                total += b->n;
                nticks += b->nticks;
            }
            pb_invocation_rec *all = malloc((total ? total : 1) * sizeof *all);
            pb_tick_rec *ticks = nticks ? malloc(nticks * sizeof *ticks) : NULL;
            int rc = all && (ticks || !nticks) ? 0 : PB_ENOMEM;
            if (!rc) {
                size_t k = 0, kt = 0;
                for (pb__batch *b = list; b; b = b->next) {
                    if (b->n)
                        memcpy(all + k, b->v, b->n * sizeof *all);
                    if (b->nticks)
                        memcpy(ticks + kt, b->ticks, b->nticks * sizeof *ticks);
                    k += b->n;
                    kt += b->nticks;
                }
                /* one transaction: the new invocations, the ticks, and the
                 * deletion of those delivered since the last batch */
                rc = d->store->ops->invocations_fire(d->store, all, total, NULL, 0, ticks, nticks, done, ndone);
                if (!rc)
                    ndone = 0;
            }
            free(ticks);
            if (!rc) {
                size_t k = 0;
                for (pb__batch *b = list; b; b = b->next)
                    for (size_t i = 0; i < b->n; i++)
                        b->v[i].id = all[k++].id;
                enqueue_all(d, all, total);
            }
            free(all);
            pthread_mutex_lock(&d->mu);
            for (pb__batch *b = list, *next; b; b = next) {
                next = b->next; /* b lives on its caller's stack: read next first */
                b->rc = rc;
                b->done = true;
            }
            pthread_cond_broadcast(&d->committed);
            pthread_mutex_unlock(&d->mu);
        }
        if (ndone && d->store->ops->invocations_done(d->store, done, ndone) != 0)
            pb_log_error("cannot delete %zu delivered invocations: they are delivered again after a restart "
                         "(harmless: pipeline starts are idempotent)",
                         ndone);
        free(done);
        if (outbox)
            drain_outbox(d);
        pthread_mutex_lock(&d->mu);
        d->committing = false;
        pthread_cond_broadcast(&d->committed);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ------------------------------------------------------- lifecycle -- */

int pb_delivery_create(const pb_delivery_config *cfg, pb_delivery **out, pb_error *err)
{
    pb_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    d->store = cfg->store;
    d->registry = cfg->registry;
    d->runner = cfg->runner;
    d->metrics = cfg->metrics;
    d->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 1000;
    d->retry_cap_ms = cfg->retry_cap_ms > 0 ? cfg->retry_cap_ms : 60000;
    d->nworkers = cfg->workers > 0 ? cfg->workers : 4;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work, NULL);
    pthread_cond_init(&d->committed, NULL);
    pthread_mutex_init(&d->qmu, NULL);
    pthread_cond_init(&d->qcv, NULL);
    pthread_cond_init(&d->qidle, NULL);
    pthread_mutex_init(&d->cmu, NULL);
    pb_table_init(&d->cache);
    d->outbox_flag = true; /* whatever the outbox holds from before */

    pb_invocation_rec *pend = NULL;
    size_t npend = 0;
    int rc = d->store->ops->invocations_pending(d->store, &pend, &npend);
    if (rc) {
        pb_error_set(err, rc, "cannot read the pending invocations");
        goto fail;
    }
    enqueue_all(d, pend, npend);
    pb_invocation_recs_free(pend, npend);
    if (npend)
        pb_log_info("resumed %zu pending invocation(s)", npend);
    if (pthread_create(&d->committer, NULL, committer_main, d) != 0) {
        rc = pb_error_set(err, PB_EIO, "cannot start the delivery's commit thread");
        goto fail;
    }
    d->committer_started = true;
    if ((rc = pb__dispatch_start(d, err)) != 0)
        goto fail;
    *out = d;
    return 0;
fail:
    pb_delivery_free(d);
    return rc;
}

void pb_delivery_free(pb_delivery *d)
{
    if (!d)
        return;
    pb__dispatch_stop(d); /* workers first: they may still ingest or report done */
    if (d->committer_started) {
        pthread_mutex_lock(&d->mu);
        d->quit = true;
        pthread_cond_signal(&d->work);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->committer, NULL);
    }
    free(d->done_ids);
    pb__cache_free(d);
    pthread_mutex_destroy(&d->cmu);
    pthread_cond_destroy(&d->qidle);
    pthread_cond_destroy(&d->qcv);
    pthread_mutex_destroy(&d->qmu);
    pthread_cond_destroy(&d->committed);
    pthread_cond_destroy(&d->work);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int pb_delivery_redrive(pb_delivery *d, const pb_scope *sc, const int64_t *ids, size_t n, size_t *count,
                        pb_error *err)
{
    pb_invocation_rec *v = NULL;
    size_t nv = 0;
    int rc = d->store->ops->dead_letters_redrive(d->store, sc, ids, n, pb__now_ms_delivery(), &v, &nv);
    if (rc)
        return pb_error_set(err, rc, "cannot redrive the dead letters");
    enqueue_all(d, v, nv);
    pb_invocation_recs_free(v, nv);
    *count = nv;
    return 0;
}

void pb_delivery_sync(pb_delivery *d)
{
    for (int stable = 0; stable < 2;) {
        bool idle = true;
        pthread_mutex_lock(&d->mu);
        while (d->pending || d->committing || d->ndone || d->outbox_flag) {
            idle = false;
            d->flush = true; /* delete the delivered ones now */
            pthread_cond_signal(&d->work);
            pthread_cond_wait(&d->committed, &d->mu);
        }
        pthread_mutex_unlock(&d->mu);
        pthread_mutex_lock(&d->qmu);
        while (d->busy || (d->nheap && d->heap[0]->rec.next_ms <= pb__now_ms_delivery())) {
            idle = false;
            pthread_cond_wait(&d->qidle, &d->qmu);
        }
        pthread_mutex_unlock(&d->qmu);
        stable = idle ? stable + 1 : 0;
    }
}
