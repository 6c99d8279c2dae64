/*
 * deliver_internal.h — what the delivery's files share.
 *
 * ingest.c: matching, the cache of rules' targets, the group-commit thread
 * (which also drains the runner's event outbox and deletes delivered
 * invocations in batches), lifecycle. dispatch.c: the queue of due
 * invocations, the worker threads, invoking targets, retries and dead
 * letters.
 *
 * Locks: d->mu guards the commit queue, the done list and the outbox flag;
 * d->qmu guards the dispatch queue; d->cmu the target cache. None is held
 * while another is taken, except qmu inside mu's critical section in the
 * committer (mu → qmu, never the reverse).
 */
#ifndef PB_DELIVER_INTERNAL_H
#define PB_DELIVER_INTERNAL_H

#include "bus/pb_delivery.h"
#include "common/pb_table.h"

#include <pthread.h>

/* A group of invocations from one ingest call, waiting for the committer. */
typedef struct pb__batch {
    struct pb__batch *next;
    pb_invocation_rec *v; /* borrowed strings; ids written back */
    size_t n;
    const pb_tick_rec *ticks; /* schedule ticks recorded with v (pb_delivery_fire), borrowed */
    size_t nticks;
    int rc;
    bool done;
} pb__batch;

/* An invocation in the dispatch queue (owns its record). */
typedef struct pb__job {
    pb_invocation_rec rec;
} pb__job;

struct pb_delivery {
    pb_store *store;
    pb_registry *registry;
    pb_runner *runner;
    pb_metrics *metrics;
    int64_t retry_base_ms, retry_cap_ms;

    /* group commit */
    pthread_mutex_t mu;
    pthread_cond_t work;      /* committer: something to do */
    pthread_cond_t committed; /* ingest callers: their batch is done */
    pb__batch *pending;       /* in arrival order */
    int64_t *done_ids;        /* delivered, to delete */
    size_t ndone, done_cap;
    bool outbox_flag;
    bool flush;               /* pb_delivery_sync: delete the delivered now */
    bool committing;
    bool quit;
    pthread_t committer;
    bool committer_started;
    int64_t outbox_after;     /* last outbox seq handled */

    /* dispatch */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    pthread_cond_t qidle;     /* broadcast when a worker finishes an attempt */
    pb__job **heap;           /* min-heap by rec.next_ms */
    size_t nheap, heap_cap;
    int busy;                 /* attempts in progress */
    bool qquit;
    pthread_t *workers;
    int nworkers;

    /* targets of rules */
    pthread_mutex_t cmu;
    pb_table cache;
    uint64_t cache_gen;
};

/* ingest.c */
int pb__ingest(pb_delivery *d, const pb_scope *sc, const pb_delivery_event *ev, size_t n, int64_t hops,
               int *status, pb_error *err);
void pb__done(pb_delivery *d, int64_t id);
void pb__cache_free(pb_delivery *d);
/* 0 when the bus exists; PB_ENOTFOUND or a store error otherwise (cached). */
int pb__bus_exists(pb_delivery *d, const pb_scope *sc, const char *bus);

/* dispatch.c */
int pb__dispatch_start(pb_delivery *d, pb_error *err);
void pb__dispatch_stop(pb_delivery *d);
/* Queues deep copies of v[0..n); returns how many could not be queued
 * (out of memory: they stay in the store and are delivered after a restart). */
size_t pb__enqueue(pb_delivery *d, const pb_invocation_rec *v, size_t n);
int pb__copy_invocation(const pb_invocation_rec *in, pb_invocation_rec *out);

int64_t pb__now_ms_delivery(void);

#endif
