/*
 * scheduler.c — schedule rules in a heap by next tick, one thread firing
 * them (contract and decisions: pb_scheduler.h, docs/SCHEDULES.md).
 *
 * Structures. An entry (srule) per enabled schedule rule: next and last
 * tick, the anchor (creation second), its heap index, pointers to the
 * interned schedule and scope, and the rule name inline. Entries are found
 * by (scope, name) in a pb_table and ordered by next tick in a binary
 * min-heap of pointers. Parsed schedules (72 bytes) are interned by value
 * with a reference count: rules with the same expression share one.
 *
 * Firing. One mutex (mu) guards everything and is held while a batch is
 * fired, so a rule cannot change under a batch in flight: the control plane
 * waits for at most one commit. A batch takes due entries off the heap, one
 * tick per rule, fires them in one call (one transaction), then puts the
 * entries back: on success with last = the tick and next = the tick after
 * it, on failure unchanged (real clock: retried after a pause).
 *
 * Catch-up at start: for each rule, the ticks after max(last fired, its
 * creation) and up to now, found by searching back from now in growing
 * windows (so a long downtime costs what the fired ticks cost, not a walk
 * over every missed tick).
 */
#include "bus/pb_scheduler.h"

#include "common/pb_arena.h"
#include "common/pb_buf.h"
#include "common/pb_hash.h"
#include "common/pb_log.h"
#include "common/pb_table.h"
#include "schedule/pb_schedule.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_PAUSE_MS 1000 /* after a failed batch (real clock) */
#define NO_HEAP UINT32_MAX

/* ------------------------------------------------------------ structures -- */

typedef struct sscope {
    char *account, *region;
} sscope;

typedef struct isched {
    pb_schedule s;
    uint32_t refs;
} isched;

typedef struct srule {
    int64_t next_ms;     /* next tick, -1: never */
    int64_t last_ms;     /* last fired tick, -1: none */
    int64_t created_ms;  /* rate anchor (to the second) and event id seed */
    isched *sched;
    const sscope *scope;
    uint32_t heap_idx;   /* NO_HEAP when not in the heap */
    char name[];         /* rule name */
} srule;

struct pb_scheduler {
    pb_store *store;
    pb_scheduler_fire_fn fire;
    void *fire_ctx;
    bool manual;
    pb_catchup catchup;
    int64_t late_ms; /* real clock: a tick later than this was missed */

    pthread_mutex_t mu;     /* everything below; held while a batch fires */
    pthread_cond_t cv;      /* the thread: the heap changed, or quit */
    pthread_mutex_t adv_mu; /* one advance at a time */
    int64_t manual_now_ms;
    sscope **scopes;        /* interned (account, region), few */
    size_t nscopes, scopes_cap;
    pb_table rules;         /* srule by (scope, name) */
    pb_table scheds;        /* isched by value */
    srule **heap;
    size_t nheap, heap_cap;
    uint64_t fired;
    bool quit;
    pthread_t thread;
    bool started;
};

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fire_delivery(void *ctx, const pb_delivery_tick *t, size_t n, pb_error *err)
{
    return pb_delivery_fire(ctx, t, n, err);
}

/* ---------------------------------------------------------------- heap -- */

static void heap_place(pb_scheduler *s, size_t i, srule *r)
{
    s->heap[i] = r;
    r->heap_idx = (uint32_t)i;
}

static void sift_up(pb_scheduler *s, size_t i)
{
    srule *r = s->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p]->next_ms <= r->next_ms)
            break;
        heap_place(s, i, s->heap[p]);
        i = p;
    }
    heap_place(s, i, r);
}

static void sift_down(pb_scheduler *s, size_t i)
{
    srule *r = s->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && s->heap[c + 1]->next_ms < s->heap[c]->next_ms)
            c++;
        if (r->next_ms <= s->heap[c]->next_ms)
            break;
        heap_place(s, i, s->heap[c]);
        i = c;
    }
    heap_place(s, i, r);
}

static int heap_push(pb_scheduler *s, srule *r)
{
    if (s->nheap >= UINT32_MAX - 1 || pb_grow((void **)&s->heap, &s->heap_cap, s->nheap + 1, sizeof *s->heap))
        return PB_ENOMEM;
    s->heap[s->nheap] = r;
    r->heap_idx = (uint32_t)s->nheap;
    s->nheap++;
    sift_up(s, s->nheap - 1);
    return 0;
}

static void heap_remove(pb_scheduler *s, srule *r)
{
    size_t i = r->heap_idx;
    if (i == NO_HEAP)
        return;
    r->heap_idx = NO_HEAP;
    srule *last = s->heap[--s->nheap];
    if (i == s->nheap)
        return;
    heap_place(s, i, last);
    if (i > 0 && s->heap[(i - 1) / 2]->next_ms > last->next_ms)
        sift_up(s, i);
    else
        sift_down(s, i);
}

/* Puts r where its next_ms says: in the heap when >= 0, else out. */
static int heap_update(pb_scheduler *s, srule *r)
{
    if (r->next_ms < 0) {
        heap_remove(s, r);
        return 0;
    }
    if (r->heap_idx == NO_HEAP)
        return heap_push(s, r);
    sift_up(s, r->heap_idx);
    sift_down(s, r->heap_idx);
    return 0;
}

/* ------------------------------------------------------------- interning -- */

static const sscope *scope_intern(pb_scheduler *s, const pb_scope *sc, bool create)
{
    for (size_t i = 0; i < s->nscopes; i++)
        if (!strcmp(s->scopes[i]->account, sc->account) && !strcmp(s->scopes[i]->region, sc->region))
            return s->scopes[i];
    if (!create || pb_grow((void **)&s->scopes, &s->scopes_cap, s->nscopes + 1, sizeof *s->scopes))
        return NULL;
    sscope *n = calloc(1, sizeof *n);
    if (!n || !(n->account = strdup(sc->account)) || !(n->region = strdup(sc->region))) {
        if (n) {
            free(n->account);
            free(n);
        }
        return NULL;
    }
    s->scopes[s->nscopes++] = n;
    return n;
}

static int sched_eq(const void *item, const void *key) { return !memcmp(&((const isched *)item)->s, key, sizeof(pb_schedule)); }

static isched *sched_intern(pb_scheduler *s, const pb_schedule *ps)
{
    uint64_t h = pb_hash_bytes(ps, sizeof *ps, 7);
    isched *i = pb_table_find(&s->scheds, h, sched_eq, ps);
    if (i) {
        i->refs++;
        return i;
    }
    if (!(i = malloc(sizeof *i)))
        return NULL;
    i->s = *ps;
    i->refs = 1;
    if (pb_table_insert(&s->scheds, h, i)) {
        free(i);
        return NULL;
    }
    return i;
}

static void sched_release(pb_scheduler *s, isched *i)
{
    if (!i || --i->refs)
        return;
    free(pb_table_remove(&s->scheds, pb_hash_bytes(&i->s, sizeof i->s, 7), sched_eq, &i->s));
}

/* ---------------------------------------------------------------- rules -- */

typedef struct rkey {
    const sscope *scope;
    const char *name;
} rkey;

static int rule_eq(const void *item, const void *key)
{
    const srule *r = item;
    const rkey *k = key;
    return r->scope == k->scope && !strcmp(r->name, k->name);
}

static uint64_t rule_hash(const sscope *scope, const char *name)
{
    return pb_hash_bytes(name, strlen(name), (uint64_t)(uintptr_t)scope);
}

static srule *rule_find(pb_scheduler *s, const pb_scope *sc, const char *name)
{
    const sscope *scope = scope_intern(s, sc, false);
    if (!scope)
        return NULL;
    rkey k = {scope, name};
    return pb_table_find(&s->rules, rule_hash(scope, name), rule_eq, &k);
}

/* The first tick of r strictly after after_ms, or -1. */
static int64_t tick_after(const srule *r, int64_t after_ms)
{
    int64_t after_s = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    int64_t n = pb_schedule_next(&r->sched->s, r->created_ms / 1000, after_s);
    return n < 0 || n > INT64_MAX / 1000 ? -1 : n * 1000;
}

static int64_t now_locked(pb_scheduler *s) { return s->manual ? s->manual_now_ms : real_now_ms(); }

static void rule_drop(pb_scheduler *s, srule *r)
{
    heap_remove(s, r);
    rkey k = {r->scope, r->name};
    pb_table_remove(&s->rules, rule_hash(r->scope, r->name), rule_eq, &k);
    sched_release(s, r->sched);
    free(r);
}

/* Inserts or updates; mu held. *out (optional) is the entry. */
static int set_rule_locked(pb_scheduler *s, const pb_scope *sc, const char *name, const pb_schedule *ps,
                           int64_t created_ms, int64_t last_ms, bool recompute, srule **out)
{
    srule *r = rule_find(s, sc, name);
    isched *is = sched_intern(s, ps);
    if (!is)
        return PB_ENOMEM;
    if (!r) {
        const sscope *scope = scope_intern(s, sc, true);
        size_t len = strlen(name);
        if (!scope || !(r = malloc(sizeof *r + len + 1))) {
            sched_release(s, is);
            return PB_ENOMEM;
        }
        memcpy(r->name, name, len + 1);
        r->scope = scope;
        r->heap_idx = NO_HEAP;
        r->last_ms = last_ms;
        r->sched = NULL;
        if (pb_table_insert(&s->rules, rule_hash(scope, name), r)) {
            sched_release(s, is);
            free(r);
            return PB_ENOMEM;
        }
    } else if (last_ms > r->last_ms) {
        r->last_ms = last_ms;
    }
    sched_release(s, r->sched);
    r->sched = is;
    r->created_ms = created_ms;
    if (recompute) {
        int64_t now = now_locked(s);
        r->next_ms = tick_after(r, r->last_ms > now ? r->last_ms : now);
        if (heap_update(s, r)) {
            rule_drop(s, r);
            return PB_ENOMEM;
        }
    }
    if (out)
        *out = r;
    return 0;
}

/* --------------------------------------------------------------- events -- */

size_t pb_scheduler_event(const pb_scope *sc, const char *rule, int64_t created_ms, int64_t tick_ms, bool catchup,
                          char *id, char *out, size_t cap)
{
    char arn[512];
    snprintf(arn, sizeof arn, "arn:aws:events:%s:%s:rule/%s", sc->region, sc->account, rule);
    /* id: SHA-256 of (rule ARN, creation, tick) shaped as a UUID v4 */
    unsigned char md[32];
    unsigned int mdlen = 0;
    char seed[64];
    int sl = snprintf(seed, sizeof seed, "|%lld|%lld", (long long)created_ms, (long long)tick_ms);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) || !EVP_DigestUpdate(c, arn, strlen(arn)) ||
        !EVP_DigestUpdate(c, seed, (size_t)sl) || !EVP_DigestFinal_ex(c, md, &mdlen))
        memset(md, 0, sizeof md);
    EVP_MD_CTX_free(c);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x40);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0, k = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            id[k++] = '-';
        id[k++] = hex[md[i] >> 4];
        id[k++] = hex[md[i] & 15];
        id[k] = '\0';
    }
    time_t t = (time_t)(tick_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(out, cap,
                     "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\","
                     "\"account\":\"%s\",\"time\":\"%s\",\"region\":\"%s\",\"resources\":[\"%s\"],\"detail\":{}%s}",
                     id, sc->account, when, sc->region, arn, catchup ? ",\"pipebridge-catch-up\":true" : "");
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---------------------------------------------------------------- firing -- */

/* One batch: ticks with their entries (one tick per entry). */
typedef struct batch {
    pb_arena arena;
    pb_delivery_tick *t;
    srule **r;
    size_t n, cap;
} batch;

static int batch_add(batch *b, srule *r, int64_t tick, bool catchup)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        pb_delivery_tick *t = realloc(b->t, cap * sizeof *t);
        if (!t)
            return PB_ENOMEM;
        b->t = t;
        srule **rr = realloc(b->r, cap * sizeof *rr);
        if (!rr)
            return PB_ENOMEM;
        b->r = rr;
        b->cap = cap;
    }
    pb_scope sc = {r->scope->account, r->scope->region};
    char buf[1024], id[37];
    size_t len = pb_scheduler_event(&sc, r->name, r->created_ms, tick, catchup, id, buf, sizeof buf);
    char *json = len ? pb_arena_strndup(&b->arena, buf, len) : NULL;
    char *eid = pb_arena_strndup(&b->arena, id, strlen(id));
    if (!json || !eid)
        return PB_ENOMEM;
    b->t[b->n] = (pb_delivery_tick){.scope = sc, .bus = "default", .rule = r->name, .tick_ms = tick,
                                    .event_id = eid, .event_json = json, .catchup = catchup};
    b->r[b->n++] = r;
    return 0;
}

static void batch_reset(batch *b)
{
    pb_arena_free(&b->arena);
    pb_arena_init(&b->arena);
    b->n = 0;
}

static void batch_free(batch *b)
{
    pb_arena_free(&b->arena);
    free(b->t);
    free(b->r);
}

/* Takes the due entries (next <= until) off the heap into b, one tick each. */
static void collect_due(pb_scheduler *s, int64_t until, batch *b)
{
    while (s->nheap && s->heap[0]->next_ms <= until && b->n < PB_SCHEDULER_BATCH) {
        srule *r = s->heap[0];
        if (batch_add(b, r, r->next_ms, false))
            break;
        heap_remove(s, r);
    }
}

/* Fires b (mu held) and puts its entries back: advanced on success,
 * unchanged on failure. */
static int fire_batch(pb_scheduler *s, batch *b, pb_error *err)
{
    int rc = s->fire(s->fire_ctx, b->t, b->n, err);
    for (size_t i = 0; i < b->n; i++) {
        srule *r = b->r[i];
        if (!rc) {
            r->last_ms = b->t[i].tick_ms;
            r->next_ms = tick_after(r, r->last_ms);
            s->fired++;
        }
        if (heap_update(s, r)) {
            pb_log_error("scheduler: out of memory: rule %s stops firing until it changes", r->name);
            rule_drop(s, r);
        }
    }
    batch_reset(b);
    return rc;
}

/*
 * Real clock, mu held: the rules whose next tick is more than late_ms
 * behind (the machine was suspended, the clock jumped, the store refused
 * batches for that long) are treated as at start-up: the catch-up policy
 * says which of their missed ticks fire (none by default, as after a
 * restart), then they go on from now. Returns how many rules it took.
 */
static void catch_up(pb_scheduler *s, srule **v, size_t n);

static size_t late_rules(pb_scheduler *s, int64_t now)
{
    srule **v = NULL;
    size_t n = 0, cap = 0;
    while (s->nheap && s->heap[0]->next_ms < now - s->late_ms) {
        srule *r = s->heap[0];
        if (pb_grow((void **)&v, &cap, n + 1, sizeof *v))
            break;
        heap_remove(s, r);
        v[n++] = r;
    }
    if (n) {
        pb_log_info("scheduler: %zu rule(s) missed ticks more than %lld s ago (suspended, a clock jump, or the "
                    "store refused them): --schedule-catch-up applies",
                    n, (long long)(s->late_ms / 1000));
        catch_up(s, v, n);
    }
    free(v);
    return n;
}

static void *thread_main(void *arg)
{
    pb_scheduler *s = arg;
    batch b = {0};
    pb_arena_init(&b.arena);
    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        int64_t now = real_now_ms();
        if (s->nheap && s->heap[0]->next_ms < now - s->late_ms && late_rules(s, now))
            continue;
        if (s->nheap && s->heap[0]->next_ms <= now) {
            collect_due(s, now, &b);
            if (!b.n) { /* out of memory building the batch */
                pthread_mutex_unlock(&s->mu);
                struct timespec pause = {0, 100 * 1000000};
                nanosleep(&pause, NULL);
                pthread_mutex_lock(&s->mu);
                continue;
            }
            pb_error err;
            pb_error_clear(&err);
            size_t nb = b.n; /* fire_batch empties b */
            if (fire_batch(s, &b, &err)) {
                pb_log_error("scheduler: cannot fire %zu tick(s) (%s); retrying in %d ms", nb, err.message,
                             RETRY_PAUSE_MS);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += RETRY_PAUSE_MS / 1000;
                while (!s->quit && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT) {
                }
            }
            continue;
        }
        if (!s->nheap) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        int64_t due = s->heap[0]->next_ms;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000), .tv_nsec = (long)(due % 1000) * 1000000};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    batch_free(&b);
    return NULL;
}

/* ------------------------------------------------------------- catch-up -- */

/* The latest ticks of r in (lo, hi], at most max, oldest first, into out
 * (caller's array of max). Searches back from hi in windows growing 4x. */
static size_t missed_ticks(const srule *r, int64_t lo, int64_t hi, size_t max, int64_t *out)
{
    if (hi <= lo || !max)
        return 0;
    for (int64_t w = 3600 * 1000;; w = w > INT64_MAX / 4 ? INT64_MAX : w * 4) {
        int64_t start = hi - lo > w ? hi - w : lo;
        /* count the window's ticks, up to max */
        size_t cnt = 0;
        for (int64_t t = tick_after(r, start); t >= 0 && t <= hi && cnt < max; t = tick_after(r, t))
            cnt++;
        if (cnt < max && start != lo)
            continue;
        /* the window holds >= max ticks, or is all there is: keep the last max in a ring */
        size_t n = 0, head = 0;
        for (int64_t t = tick_after(r, start); t >= 0 && t <= hi; t = tick_after(r, t)) {
            out[head] = t;
            head = (head + 1) % max;
            if (n < max)
                n++;
        }
        if (n == max && head) { /* rotate so the oldest is first */
            int64_t *tmp = malloc(max * sizeof *tmp);
            if (!tmp)
                return 0;
            for (size_t i = 0; i < max; i++)
                tmp[i] = out[(head + i) % max];
            memcpy(out, tmp, max * sizeof *tmp);
            free(tmp);
        }
        return n;
    }
}

/* Fires what the policy asks for each entry's missed ticks (mu held; before
 * the thread starts), then sets every entry's next tick. */
static void catch_up(pb_scheduler *s, srule **v, size_t n)
{
    int64_t now = now_locked(s);
    size_t max = s->catchup == PB_CATCHUP_ALL ? PB_CATCHUP_MAX_PER_RULE : 1;
    int64_t *ticks = malloc(max * sizeof *ticks);
    batch b = {0};
    pb_arena_init(&b.arena);
    size_t total = 0;
    for (size_t i = 0; ticks && s->catchup != PB_CATCHUP_NONE && i < n; i++) {
        srule *r = v[i];
        int64_t lo = r->last_ms > r->created_ms ? r->last_ms : r->created_ms;
        size_t k = missed_ticks(r, lo, now, max, ticks);
        for (size_t j = 0; j < k; j++) {
            /* a rule may have several ticks in one batch here: the store keeps the largest */
            if (b.n >= PB_SCHEDULER_BATCH) {
                pb_error err;
                pb_error_clear(&err);
                size_t nb = b.n;
                if (s->fire(s->fire_ctx, b.t, b.n, &err))
                    pb_log_error("scheduler: catch-up: cannot fire %zu tick(s): %s", nb, err.message);
                else
                    total += nb;
                for (size_t x = 0; x < nb; x++) /* last_ms moves whether or not: the policy was applied */
                    if (b.t[x].tick_ms > b.r[x]->last_ms)
                        b.r[x]->last_ms = b.t[x].tick_ms;
                batch_reset(&b);
            }
            if (batch_add(&b, r, ticks[j], true))
                break;
        }
    }
    if (b.n) {
        pb_error err;
        pb_error_clear(&err);
        if (s->fire(s->fire_ctx, b.t, b.n, &err))
            pb_log_error("scheduler: catch-up: cannot fire %zu tick(s): %s", b.n, err.message);
        else
            total += b.n;
        for (size_t x = 0; x < b.n; x++)
            if (b.t[x].tick_ms > b.r[x]->last_ms)
                b.r[x]->last_ms = b.t[x].tick_ms;
    }
    s->fired += total;
    if (total)
        pb_log_info("scheduler: fired %zu missed tick(s) (--schedule-catch-up %s)", total,
                    s->catchup == PB_CATCHUP_ALL ? "all" : "latest");
    batch_free(&b);
    free(ticks);
    for (size_t i = 0; i < n; i++) {
        srule *r = v[i];
        r->next_ms = tick_after(r, r->last_ms > now ? r->last_ms : now);
        if (heap_update(s, r))
            rule_drop(s, r);
    }
}

/* ------------------------------------------------------------ lifecycle -- */

int pb_scheduler_parse_catchup(const char *text, pb_catchup *out)
{
    static const char *const names[] = {"none", "latest", "all"};
    for (int i = 0; i < 3; i++)
        if (text && !strcmp(text, names[i])) {
            *out = (pb_catchup)i;
            return 0;
        }
    return PB_EVALIDATION;
}

static bool enabled_state(const char *state) { return state && strcmp(state, "DISABLED") != 0; }

/* Reads the rules and fired ticks into s (mu held, no thread yet). */
static int load(pb_scheduler *s, pb_error *err)
{
    pb_rule_entry *rules = NULL;
    pb_tick_rec *ticks = NULL;
    size_t nrules = 0, nticks = 0, nv = 0;
    srule **v = NULL;
    int rc = s->store->ops->rule_list_all(s->store, &rules, &nrules);
    if (!rc)
        rc = s->store->ops->ticks_list(s->store, &ticks, &nticks);
    if (rc) {
        pb_error_set(err, rc, "cannot read the schedule rules");
        goto out;
    }
    if (nrules && !(v = malloc(nrules * sizeof *v))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nrules; i++) {
        const pb_rule_rec *r = &rules[i].rule;
        pb_schedule ps;
        if (strcmp(r->bus, "default") || !r->schedule || !enabled_state(r->state) ||
            pb_schedule_parse(r->schedule, strlen(r->schedule), &ps, NULL))
            continue;
        pb_scope sc = {rules[i].account, rules[i].region};
        if ((rc = set_rule_locked(s, &sc, r->name, &ps, r->created_ms, -1, false, &v[nv])) != 0) {
            pb_error_set(err, rc, "out of memory");
            goto out;
        }
        v[nv++]->next_ms = -1;
    }
    for (size_t i = 0; i < nticks; i++) {
        pb_scope sc = {ticks[i].account, ticks[i].region};
        srule *r = strcmp(ticks[i].bus, "default") ? NULL : rule_find(s, &sc, ticks[i].rule);
        if (r && ticks[i].tick_ms > r->last_ms)
            r->last_ms = ticks[i].tick_ms;
    }
    catch_up(s, v, nv);
    if (nv)
        pb_log_info("scheduler: %zu schedule rule(s), %s clock", s->nheap, s->manual ? "manual" : "real");
out:
    free(v);
    pb_rule_entries_free(rules, nrules);
    pb_tick_recs_free(ticks, nticks);
    return rc;
}

int pb_scheduler_create(const pb_scheduler_config *cfg, pb_scheduler **out, pb_error *err)
{
    pb_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    s->store = cfg->store;
    s->fire = cfg->fire ? cfg->fire : fire_delivery;
    s->fire_ctx = cfg->fire ? cfg->fire_ctx : cfg->delivery;
    s->manual = cfg->manual_clock;
    s->catchup = cfg->catchup;
    s->late_ms = cfg->late_ms > 0 ? cfg->late_ms : PB_SCHEDULER_LATE_MS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->adv_mu, NULL);
    pb_table_init(&s->rules);
    pb_table_init(&s->scheds);
    int rc = 0;
    if (s->manual) {
        int64_t ms = 0;
        int grc = s->store ? s->store->ops->clock_get(s->store, &ms) : PB_ENOTFOUND;
        if (grc == PB_ENOTFOUND) {
            ms = cfg->manual_start_ms > 0 ? cfg->manual_start_ms : real_now_ms() / 1000 * 1000;
            grc = s->store ? s->store->ops->clock_set(s->store, ms) : 0;
        }
        if (grc) {
            rc = pb_error_set(err, grc, "cannot read or set the manual clock");
            goto fail;
        }
        s->manual_now_ms = ms;
    }
    if (s->store) {
        pthread_mutex_lock(&s->mu);
        rc = load(s, err);
        pthread_mutex_unlock(&s->mu);
        if (rc)
            goto fail;
    }
    if (!s->manual) {
        if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
            rc = pb_error_set(err, PB_EIO, "cannot start the scheduler thread");
            goto fail;
        }
        s->started = true;
    }
    *out = s;
    return 0;
fail:
    pb_scheduler_free(s);
    return rc;
}

void pb_scheduler_free(pb_scheduler *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; i < s->rules.cap; i++)
        if (s->rules.hashes[i])
            free(s->rules.items[i]);
    for (size_t i = 0; i < s->scheds.cap; i++)
        if (s->scheds.hashes[i])
            free(s->scheds.items[i]);
    pb_table_free(&s->rules);
    pb_table_free(&s->scheds);
    for (size_t i = 0; i < s->nscopes; i++) {
        free(s->scopes[i]->account);
        free(s->scopes[i]->region);
        free(s->scopes[i]);
    }
    free(s->scopes);
    free(s->heap);
    pthread_mutex_destroy(&s->adv_mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* -------------------------------------------------------------- the API -- */

int64_t pb_scheduler_now_ms(pb_scheduler *s)
{
    if (!s)
        return real_now_ms();
    if (!s->manual)
        return real_now_ms();
    pthread_mutex_lock(&s->mu);
    int64_t now = s->manual_now_ms;
    pthread_mutex_unlock(&s->mu);
    return now;
}

bool pb_scheduler_is_manual(const pb_scheduler *s) { return s && s->manual; }

int pb_scheduler_set_rule(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name, const char *expr,
                          bool enabled, int64_t created_ms)
{
    if (!bus || strcmp(bus, "default") || !expr || !enabled) {
        pb_scheduler_remove_rule(s, sc, bus, name);
        return 0;
    }
    pb_schedule ps;
    if (pb_schedule_parse(expr, strlen(expr), &ps, NULL))
        return PB_EVALIDATION;
    pthread_mutex_lock(&s->mu);
    srule *old = rule_find(s, sc, name);
    const isched *prev = old ? old->sched : NULL;
    srule *r = NULL;
    int rc = set_rule_locked(s, sc, name, &ps, created_ms, -1, true, &r);
    /* Enabled again (it was not held), or another expression: the ticks up
     * to now are not this rule's to catch up after a restart (it did not
     * fire while disabled, and the old expression's ticks are not the new
     * one's). Recorded as a floor under its fired ticks (the store keeps the
     * larger). */
    bool floor = !rc && r && (!old || r->sched != prev);
    int64_t now = now_locked(s);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (floor && s->store) {
        pb_tick_rec t = {(char *)sc->account, (char *)sc->region, (char *)bus, (char *)name, now};
        if (s->store->ops->invocations_fire(s->store, NULL, 0, NULL, 0, &t, 1, NULL, 0) != 0)
            pb_log_error("scheduler: cannot record when rule %s was enabled or changed: a catch-up after a "
                         "restart may fire its ticks from before",
                         name);
    }
    return rc;
}

void pb_scheduler_remove_rule(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name)
{
    if (!bus || strcmp(bus, "default"))
        return;
    pthread_mutex_lock(&s->mu);
    srule *r = rule_find(s, sc, name);
    if (r)
        rule_drop(s, r);
    pthread_mutex_unlock(&s->mu);
}

void pb_scheduler_rule_changed(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name)
{
    if (!s || !bus || strcmp(bus, "default"))
        return;
    pb_rule_rec r;
    memset(&r, 0, sizeof r);
    int rc = s->store->ops->rule_get(s->store, sc, bus, name, &r);
    if (rc == 0) {
        rc = pb_scheduler_set_rule(s, sc, bus, name, r.schedule, enabled_state(r.state), r.created_ms);
    } else if (rc == PB_ENOTFOUND) {
        pb_scheduler_remove_rule(s, sc, bus, name);
        rc = 0;
    }
    if (rc)
        pb_log_error("scheduler: cannot follow the change of rule %s (%s): restart to reload it", name,
                     pb_error_name(rc));
    pb_rule_rec_free(&r);
}

int64_t pb_scheduler_next_fire_ms(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name)
{
    if (!s || !bus || strcmp(bus, "default"))
        return -1;
    pthread_mutex_lock(&s->mu);
    srule *r = rule_find(s, sc, name);
    int64_t next = r ? r->next_ms : -1;
    pthread_mutex_unlock(&s->mu);
    return next;
}

int pb_scheduler_advance(pb_scheduler *s, int64_t to_ms, size_t *fired, pb_error *err)
{
    if (fired)
        *fired = 0;
    if (!s->manual)
        return pb_error_set(err, PB_EVALIDATION,
                            "The clock can only be advanced when the server runs with --clock manual.");
    pthread_mutex_lock(&s->adv_mu);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (to_ms < s->manual_now_ms) {
        rc = pb_error_set(err, PB_EVALIDATION, "The clock cannot go back: it stands at %lld and %lld is earlier.",
                          (long long)(s->manual_now_ms / 1000), (long long)(to_ms / 1000));
        goto out;
    }
    batch b = {0};
    pb_arena_init(&b.arena);
    for (;;) {
        collect_due(s, to_ms, &b);
        if (!b.n)
            break;
        size_t n = b.n;
        if ((rc = fire_batch(s, &b, err)) != 0)
            break;
        if (fired)
            *fired += n;
    }
    batch_free(&b);
    if (!rc) {
        s->manual_now_ms = to_ms;
        if (s->store && (rc = s->store->ops->clock_set(s->store, to_ms)) != 0)
            pb_error_set(err, rc, "cannot store the manual clock");
    }
out:
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->adv_mu);
    return rc;
}

size_t pb_scheduler_count(pb_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nheap;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t pb_scheduler_fired(pb_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->fired;
    pthread_mutex_unlock(&s->mu);
    return n;
}
