/*
 * pb_delivery.h — events to targets: ingest, the durable outbox of
 * invocations, dispatch with retries, dead letters.
 *
 * Ingest (PutEvents, event-bus targets, the pipeline runner's status-change
 * events) matches each event against its bus's enabled rules (the
 * registry), turns every matched rule's targets into invocations, and
 * commits them before returning: a group-commit thread writes the
 * invocations of all requests waiting at that moment in one transaction, so
 * concurrent requests share one fsync. An event that matches nothing leaves
 * nothing to deliver and is not stored.
 *
 * Dispatch: worker threads take due invocations from an in-memory queue
 * (loaded from the store at start-up, fed by the group commit) and invoke
 * the target:
 *   - a SageMaker pipeline (arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME):
 *     pb_runner_start with the target's SageMakerPipelineParameters (static
 *     values as they are, whole-value JSON paths read from the event) and a
 *     ClientRequestToken derived from (event id, rule ARN, target id), so a
 *     redelivery never starts a second execution;
 *   - an event bus (arn:aws:events:REGION:ACCOUNT:event-bus/NAME): the event
 *     is ingested on that bus (at most PB_DELIVERY_MAX_HOPS such hops);
 *   - anything else fails without retry ("UNSUPPORTED_TARGET").
 * A retryable failure is attempted again after an exponential backoff with
 * full jitter, within the target's RetryPolicy (MaximumRetryAttempts,
 * default 185; MaximumEventAgeInSeconds, default 86400); a non-retryable or
 * exhausted one becomes a dead letter when the target has a
 * DeadLetterConfig, and is logged and counted either way. Delivered
 * invocations are deleted in batches (a crash may redeliver some: the
 * token makes that harmless).
 *
 * Ownership: the delivery borrows store, registry, runner and metrics (they
 * must outlive it) and owns its threads and queues.
 */
#ifndef PB_DELIVERY_H
#define PB_DELIVERY_H

#include "bus/pb_metrics.h"
#include "bus/pb_registry.h"
#include "common/pb_error.h"
#include "pipeline/pb_runner.h"
#include "store/pb_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_DELIVERY_MAX_HOPS 5 /* event-bus targets an event may pass through */

typedef struct pb_delivery pb_delivery;

typedef struct pb_delivery_config {
    pb_store *store;
    pb_registry *registry;
    pb_runner *runner;
    pb_metrics *metrics;   /* optional */
    int workers;           /* dispatch threads; 0: 4 */
    int64_t retry_base_ms; /* first backoff ceiling; 0: 1000 */
    int64_t retry_cap_ms;  /* largest backoff ceiling; 0: 60000 */
} pb_delivery_config;

/* Starts the group-commit and dispatch threads after loading the pending
 * invocations. Codes: PB_ENOMEM, PB_EIO. */
int pb_delivery_create(const pb_delivery_config *cfg, pb_delivery **out, pb_error *err);

/* Stops the threads (an invocation in progress finishes first); what is
 * still pending stays in the store for the next start. NULL is fine. */
void pb_delivery_free(pb_delivery *d);

/* One event to ingest: its bus and its envelope (AWS-SPEC §3.1). Borrowed. */
typedef struct pb_delivery_event {
    const char *bus;
    const char *id;
    const char *json;
    size_t len;
    int64_t ingested_ms;
} pb_delivery_event;

/* Matches ev[0..n) (events of one scope) and commits their invocations;
 * returns once they are durable. status[i] (optional) receives 0 or the
 * code for an event matching refused (PB_EEVENT, PB_ETOOCOMPLEX); such an
 * event causes nothing. Events on a bus without rules (or that does not
 * exist) cause nothing, as in AWS. Codes: PB_ENOMEM, PB_EIO (nothing of the
 * call was committed). */
int pb_delivery_ingest(pb_delivery *d, const pb_scope *sc, const pb_delivery_event *ev, size_t n, int *status,
                       pb_error *err);

/* One tick of a schedule rule (src/bus/scheduler.c): the rule, the
 * scheduled fire time and its "Scheduled Event" envelope. Borrowed. */
typedef struct pb_delivery_tick {
    pb_scope scope;
    const char *bus;        /* "default" */
    const char *rule;       /* rule name */
    int64_t tick_ms;        /* scheduled fire time */
    const char *event_id;
    const char *event_json;
    bool catchup;           /* fired late, for time the server was down (counted) */
} pb_delivery_tick;

/* Fires t[0..n): the targets of each tick's rule receive its event directly
 * (no pattern matching), and their invocations are committed through the
 * group commit in the same transaction that records every tick as fired
 * (store op invocations_fire). A rule without targets still has its tick
 * recorded. Returns once durable. Codes: PB_ENOMEM, PB_EIO (nothing of the
 * call was committed: no tick is recorded). */
int pb_delivery_fire(pb_delivery *d, const pb_delivery_tick *t, size_t n, pb_error *err);

/* A rule's targets changed (PutTargets, RemoveTargets, PutRule, DeleteRule):
 * forget what is cached about them. */
void pb_delivery_rule_changed(pb_delivery *d, const pb_scope *sc, const char *bus, const char *rule);

/* An event bus was deleted (DeleteEventBus): event-bus targets naming it
 * fail with NO_RESOURCE from now on. */
void pb_delivery_bus_deleted(pb_delivery *d, const pb_scope *sc, const char *bus);

/* New events wait in the store's event outbox (the runner wrote them). */
void pb_delivery_outbox_notify(pb_delivery *d);

/* Moves the listed dead letters of the scope back into delivery; *count is
 * how many were found. */
int pb_delivery_redrive(pb_delivery *d, const pb_scope *sc, const int64_t *ids, size_t n, size_t *count,
                        pb_error *err);

/* Waits until nothing is due: no ingest waiting for its commit, the
 * outbox drained, no invocation due now or being attempted (for tests). */
void pb_delivery_sync(pb_delivery *d);

#endif
