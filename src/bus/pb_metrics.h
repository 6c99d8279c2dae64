/*
 * pb_metrics.h — delivery counters and the ingestion-to-invocation latency
 * histogram, rendered as Prometheus text for GET /metrics.
 *
 * Counters are kept per (account, region, bus, rule) — rule "" for bus-level
 * counts such as accepted PutEvents entries — with the names of AWS's
 * AWS/Events metrics (AWS-SPEC §8): MatchedEvents, TriggeredRules,
 * Invocations, FailedInvocations, InvocationAttempts,
 * RetryInvocationAttempts, DeadLetterInvocations, plus PutEventsEntries
 * (accepted / failed). Unlike CloudWatch, a counter that has been created is
 * always rendered, zero or not. Thread-safe: one mutex around a hash table;
 * an update is a lookup and an addition.
 */
#ifndef PB_METRICS_H
#define PB_METRICS_H

#include "common/pb_buf.h"
#include "store/pb_store.h"

#include <stdint.h>

typedef struct pb_metrics pb_metrics;

typedef enum pb_metric {
    PB_M_MATCHED_EVENTS,           /* events that matched at least one rule (bus level) */
    PB_M_TRIGGERED_RULES,          /* per rule: it matched an event */
    PB_M_INVOCATIONS,              /* per rule: invocations that ended (success or final failure) */
    PB_M_FAILED_INVOCATIONS,       /* per rule: invocations that failed for good */
    PB_M_INVOCATION_ATTEMPTS,      /* per rule: every attempt */
    PB_M_RETRY_INVOCATION_ATTEMPTS, /* per rule: attempts after the first */
    PB_M_DEAD_LETTER_INVOCATIONS,  /* per rule: failed invocations kept as dead letters */
    PB_M_PUTEVENTS_ACCEPTED,       /* per bus: PutEvents entries accepted */
    PB_M_PUTEVENTS_FAILED,         /* per bus: PutEvents entries refused */
    PB_M_SCHEDULED_TICKS,          /* per rule: schedule ticks fired (catch-up ones included) */
    PB_M_CATCHUP_TICKS,            /* per rule: ticks fired late, for time the server was down */
    PB_M__COUNT
} pb_metric;

int pb_metrics_new(pb_metrics **out);
void pb_metrics_free(pb_metrics *m);

/* Adds n to a counter. rule NULL or "" for bus-level counters. Out of
 * memory drops the update (metrics never fail a request). */
void pb_metrics_add(pb_metrics *m, const pb_scope *sc, const char *bus, const char *rule, pb_metric k, uint64_t n);

/* Records one ingestion → first invocation latency of a rule's target. */
void pb_metrics_latency(pb_metrics *m, const pb_scope *sc, const char *bus, const char *rule, double ms);

/* Appends the Prometheus text exposition of everything to out. */
int pb_metrics_render(pb_metrics *m, pb_buf *out);

#endif
