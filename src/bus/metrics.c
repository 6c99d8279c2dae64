/*
 * metrics.c — counters and a latency histogram per (scope, bus, rule),
 * rendered as Prometheus text. See pb_metrics.h.
 */
#include "bus/pb_metrics.h"

#include "common/pb_hash.h"
#include "common/pb_table.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets (ms), Prometheus style: cumulative, plus +Inf. */
static const double buckets[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct series {
    char *key;   /* account \0 region \0 bus \0 rule \0 */
    size_t keylen;
    const char *account, *region, *bus, *rule; /* into key */
    uint64_t v[PB_M__COUNT];
    uint64_t hist[NBUCKETS + 1];
    uint64_t hist_count;
    double hist_sum;
    bool has_hist;
} series;

struct pb_metrics {
    pthread_mutex_t mu;
    pb_table t;
};

typedef struct skey {
    const char *s;
    size_t n;
} skey;

static int eq(const void *item, const void *key)
{
    const series *s = item;
    const skey *k = key;
    return s->keylen == k->n && !memcmp(s->key, k->s, k->n);
}

int pb_metrics_new(pb_metrics **out)
{
    pb_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return PB_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    pb_table_init(&m->t);
    *out = m;
    return 0;
}

/* Calls fn for every series. */
static void each(pb_metrics *m, void (*fn)(void *item, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->t.cap; i++)
        if (m->t.hashes[i])
            fn(m->t.items[i], ctx);
}

static void free_series(void *item, void *ctx)
{
    (void)ctx;
    series *s = item;
    free(s->key);
    free(s);
}

void pb_metrics_free(pb_metrics *m)
{
    if (!m)
        return;
    each(m, free_series, NULL);
    pb_table_free(&m->t);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* The series of the labels, created when missing. Lock held. */
static series *get(pb_metrics *m, const pb_scope *sc, const char *bus, const char *rule)
{
    const char *parts[4] = {sc->account, sc->region, bus ? bus : "", rule ? rule : ""};
    size_t lens[4], n = 0;
    char buf[1024];
    for (int i = 0; i < 4; i++) {
        lens[i] = strlen(parts[i]);
        n += lens[i] + 1;
    }
    if (n > sizeof buf)
        return NULL;
    char *p = buf;
    for (int i = 0; i < 4; i++) {
        memcpy(p, parts[i], lens[i] + 1);
        p += lens[i] + 1;
    }
    skey k = {buf, n};
    uint64_t h = pb_hash_bytes(buf, n, 0);
    series *s = pb_table_find(&m->t, h, eq, &k);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s || !(s->key = malloc(n))) {
        free(s);
        return NULL;
    }
    memcpy(s->key, buf, n);
    s->keylen = n;
    s->account = s->key;
    s->region = s->account + lens[0] + 1;
    s->bus = s->region + lens[1] + 1;
    s->rule = s->bus + lens[2] + 1;
    if (pb_table_insert(&m->t, h, s)) {
        free(s->key);
        free(s);
        return NULL;
    }
    return s;
}

void pb_metrics_add(pb_metrics *m, const pb_scope *sc, const char *bus, const char *rule, pb_metric k, uint64_t n)
{
    if (!m || k >= PB_M__COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = get(m, sc, bus, rule);
    if (s)
        s->v[k] += n;
    pthread_mutex_unlock(&m->mu);
}

void pb_metrics_latency(pb_metrics *m, const pb_scope *sc, const char *bus, const char *rule, double ms)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = get(m, sc, bus, rule);
    if (s) {
        size_t b = 0;
        while (b < NBUCKETS && ms > buckets[b])
            b++;
        s->hist[b]++;
        s->hist_count++;
        s->hist_sum += ms;
        s->has_hist = true;
    }
    pthread_mutex_unlock(&m->mu);
}

static const struct {
    const char *name, *help;
    bool rule_level;
} names[PB_M__COUNT] = {
    [PB_M_MATCHED_EVENTS] = {"pipebridge_matched_events_total", "Events that matched at least one rule", false},
    [PB_M_TRIGGERED_RULES] = {"pipebridge_triggered_rules_total", "Times a rule matched an event", true},
    [PB_M_INVOCATIONS] = {"pipebridge_invocations_total", "Target invocations that ended (success or final failure)", true},
    [PB_M_FAILED_INVOCATIONS] = {"pipebridge_failed_invocations_total", "Target invocations that failed for good", true},
    [PB_M_INVOCATION_ATTEMPTS] = {"pipebridge_invocation_attempts_total", "Target invocation attempts", true},
    [PB_M_RETRY_INVOCATION_ATTEMPTS] = {"pipebridge_retry_invocation_attempts_total",
                                        "Target invocation attempts after the first", true},
    [PB_M_DEAD_LETTER_INVOCATIONS] = {"pipebridge_dead_letter_invocations_total",
                                      "Failed invocations kept as dead letters", true},
    [PB_M_PUTEVENTS_ACCEPTED] = {"pipebridge_putevents_entries_accepted_total", "PutEvents entries accepted", false},
    [PB_M_PUTEVENTS_FAILED] = {"pipebridge_putevents_entries_failed_total", "PutEvents entries refused", false},
    [PB_M_SCHEDULED_TICKS] = {"pipebridge_schedule_ticks_total", "Schedule ticks fired", true},
    [PB_M_CATCHUP_TICKS] = {"pipebridge_schedule_catchup_ticks_total",
                            "Schedule ticks fired on restart for time the server was down", true},
};

/* A label value with \, " and newline escaped. */
static void label(pb_buf *out, const char *name, const char *v, bool comma)
{
    pb_buf_printf(out, "%s%s=\"", comma ? "," : "", name);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            pb_buf_putc(out, '\\');
        if (*p == '\n') {
            pb_buf_puts(out, "\\n");
            continue;
        }
        pb_buf_putc(out, *p);
    }
    pb_buf_putc(out, '"');
}

static void labels(pb_buf *out, const series *s, bool rule)
{
    label(out, "account", s->account, false);
    label(out, "region", s->region, true);
    label(out, "bus", s->bus, true);
    if (rule)
        label(out, "rule", s->rule, true);
}

typedef struct render_ctx {
    pb_buf *out;
    int metric; /* a pb_metric, or -1 for the histogram */
} render_ctx;

static void render_one(void *item, void *ctx)
{
    const series *s = item;
    render_ctx *rc = ctx;
    pb_buf *out = rc->out;
    if (rc->metric >= 0) {
        bool rule = names[rc->metric].rule_level;
        if (rule != (s->rule[0] != '\0'))
            return;
        pb_buf_printf(out, "%s{", names[rc->metric].name);
        labels(out, s, rule);
        pb_buf_printf(out, "} %llu\n", (unsigned long long)s->v[rc->metric]);
        return;
    }
    if (!s->has_hist)
        return;
    uint64_t cum = 0;
    for (size_t b = 0; b <= NBUCKETS; b++) {
        cum += s->hist[b];
        pb_buf_puts(out, "pipebridge_ingestion_to_invocation_ms_bucket{");
        labels(out, s, true);
        if (b < NBUCKETS)
            pb_buf_printf(out, ",le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cum);
        else
            pb_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    pb_buf_puts(out, "pipebridge_ingestion_to_invocation_ms_sum{");
    labels(out, s, true);
    pb_buf_printf(out, "} %.3f\n", s->hist_sum);
    pb_buf_puts(out, "pipebridge_ingestion_to_invocation_ms_count{");
    labels(out, s, true);
    pb_buf_printf(out, "} %llu\n", (unsigned long long)s->hist_count);
}

int pb_metrics_render(pb_metrics *m, pb_buf *out)
{
    pthread_mutex_lock(&m->mu);
    for (int k = 0; k < PB_M__COUNT; k++) {
        pb_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", names[k].name, names[k].help, names[k].name);
        render_ctx rc = {out, k};
        each(m, render_one, &rc);
    }
    pb_buf_puts(out, "# HELP pipebridge_ingestion_to_invocation_ms Milliseconds from ingestion to the first "
                     "invocation attempt of a target\n# TYPE pipebridge_ingestion_to_invocation_ms histogram\n");
    render_ctx rc = {out, -1};
    each(m, render_one, &rc);
    pthread_mutex_unlock(&m->mu);
    return out->len > out->max && out->max ? PB_ENOMEM : 0;
}
