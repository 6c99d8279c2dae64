/*
 * dispatch.c — invoking targets: the queue of due invocations, the worker
 * threads, retries with backoff, dead letters.
 *
 * The queue is a min-heap by due time; workers sleep until its first entry
 * is due. One attempt: parse the stored target and event, invoke (a
 * SageMaker pipeline through the runner, an event bus through ingest), then
 * either report the invocation delivered (deleted in the committer's next
 * batch), record the failed attempt and queue it again after
 * min(cap, base * 2^(attempt-1)) ms with full jitter, or end it: a dead
 * letter when the target has a DeadLetterConfig, a log line and a
 * FailedInvocations count either way.
 *
 * Error codes (AWS-SPEC §8) and whether they are retried: NO_RESOURCE (the
 * pipeline or bus does not exist — retried: it may be created meanwhile),
 * INVALID_PARAMETER (a dynamic parameter path finds nothing, a value the
 * pipeline's parameters refuse — not retried), RESOURCE_LIMIT_EXCEEDED and
 * RESOURCE_MODIFICATION_COLLISION (retried), INTERNAL_ERROR (retried),
 * NO_PERMISSIONS (no RoleArn — not retried), CROSS_ACCOUNT_INGESTION_FAILED
 * (a target of another account or region — not retried), UNSUPPORTED_TARGET
 * (ours: pipebridge does not deliver to that kind of target — not retried).
 */
#include "deliver_internal.h"

#include "bus/pb_transform.h"
#include "common/pb_log.h"
#include "pipeline/pb_pipedef.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define DEFAULT_MAX_RETRIES 185
#define DEFAULT_MAX_AGE_S 86400

/* ------------------------------------------------------------- heap -- */

static bool before(const pb__job *a, const pb__job *b)
{
    return a->rec.next_ms < b->rec.next_ms || (a->rec.next_ms == b->rec.next_ms && a->rec.id < b->rec.id);
}

static int heap_push(pb_delivery *d, pb__job *j)
{
    if (pb_grow((void **)&d->heap, &d->heap_cap, d->nheap + 1, sizeof *d->heap))
        return PB_ENOMEM;
    size_t i = d->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(j, d->heap[p]))
            break;
        d->heap[i] = d->heap[p];
        i = p;
    }
    d->heap[i] = j;
    return 0;
}

static pb__job *heap_pop(pb_delivery *d)
{
    pb__job *top = d->heap[0];
    pb__job *last = d->heap[--d->nheap];
    size_t i = 0, n = d->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(d->heap[c + 1], d->heap[c]))
            c++;
        if (!before(d->heap[c], last))
            break;
        d->heap[i] = d->heap[c];
        i = c;
    }
    if (n)
        d->heap[i] = last;
    return top;
}

static void job_free(pb__job *j)
{
    if (j) {
        pb_invocation_rec_free(&j->rec);
        free(j);
    }
}

int pb__copy_invocation(const pb_invocation_rec *in, pb_invocation_rec *out)
{
    *out = *in;
    char **f[] = {&out->account,   &out->region,     &out->bus,        &out->rule_arn,        &out->rule_name,
                  &out->target_id, &out->target_arn, &out->target_json, &out->event_id,       &out->event_json,
                  &out->last_error_code, &out->last_error_message};
    const char *src[] = {in->account,   in->region,     in->bus,         in->rule_arn,       in->rule_name,
                         in->target_id, in->target_arn, in->target_json, in->event_id,       in->event_json,
                         in->last_error_code, in->last_error_message};
    int rc = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i] = src[i] ? strdup(src[i]) : NULL;
        if (src[i] && !*f[i])
            rc = PB_ENOMEM;
    }
    if (rc)
        pb_invocation_rec_free(out);
    return rc;
}

static int push_job(pb_delivery *d, pb__job *j)
{
    pthread_mutex_lock(&d->qmu);
    int rc = heap_push(d, j);
    pthread_cond_signal(&d->qcv);
    pthread_mutex_unlock(&d->qmu);
    return rc;
}

size_t pb__enqueue(pb_delivery *d, const pb_invocation_rec *v, size_t n)
{
    /* copies made outside the queue's lock, then pushed under one lock with
     * one wake-up: the committer hands over a whole batch at a time */
    pb__job **jobs = malloc((n ? n : 1) * sizeof *jobs);
    if (!jobs)
        return n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        pb__job *j = calloc(1, sizeof *j);
        if (!j || pb__copy_invocation(&v[i], &j->rec)) {
            free(j);
            continue;
        }
        jobs[k++] = j;
    }
    size_t pushed = 0;
    pthread_mutex_lock(&d->qmu);
    while (pushed < k && heap_push(d, jobs[pushed]) == 0)
        pushed++;
    if (pushed)
        pthread_cond_broadcast(&d->qcv);
    pthread_mutex_unlock(&d->qmu);
    for (size_t i = pushed; i < k; i++)
        job_free(jobs[i]);
    free(jobs);
    return n - pushed;
}

/* ---------------------------------------------------------- invoking -- */

typedef struct outcome {
    bool ok;
    bool retry;
    const char *code;
    char message[1024];
} outcome;

static void fail(outcome *o, bool retry, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(outcome *o, bool retry, const char *code, const char *fmt, ...)
{
    o->ok = false;
    o->retry = retry;
    o->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof o->message, fmt, ap);
    va_end(ap);
}

/* The ClientRequestToken of a pipeline start: hex SHA-256 of (event id,
 * rule ARN, target id), so a redelivery is the same request. */
static void token_of(const pb_invocation_rec *r, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, r->event_id, strlen(r->event_id)) &&
        EVP_DigestUpdate(c, "\n", 1) && EVP_DigestUpdate(c, r->rule_arn, strlen(r->rule_arn)) &&
        EVP_DigestUpdate(c, "\n", 1) && EVP_DigestUpdate(c, r->target_id, strlen(r->target_id)) &&
        EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 32) {
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    } else {
        /* cannot happen with a working libcrypto; still a stable token */
        snprintf(out, 65, "%.40s-%.20s", r->event_id, r->target_id);
    }
    EVP_MD_CTX_free(c);
}

static void invoke_pipeline(pb_delivery *d, const pb_invocation_rec *r, json_t *target, json_t *event, outcome *o)
{
    pb_scope sc = {r->account, r->region};
    char prefix[160];
    snprintf(prefix, sizeof prefix, "arn:aws:sagemaker:%s:%s:pipeline/", r->region, r->account);
    size_t pl = strlen(prefix);
    const char *arn = r->target_arn;
    if (strncmp(arn, prefix, pl) != 0 || !arn[pl] || strchr(arn + pl, '/')) {
        fail(o, false, "CROSS_ACCOUNT_INGESTION_FAILED",
             "Pipeline %s is not a pipeline of account %s in %s; pipebridge starts pipelines of the rule's own "
             "account and region",
             arn, r->account, r->region);
        return;
    }
    if (!json_string_value(json_object_get(target, "RoleArn"))) {
        fail(o, false, "NO_PERMISSIONS", "Target %s has no RoleArn", r->target_id);
        return;
    }
    json_t *params = NULL;
    pb_error err;
    pb_error_clear(&err);
    if (pb_transform_sagemaker_params(target, event, &params, &err) != 0) {
        fail(o, false, "INVALID_PARAMETER", "%s", err.message);
        return;
    }
    size_t n = json_array_size(params);
    pb_pipedef_kv *kv = calloc(n ? n : 1, sizeof *kv);
    if (!kv) {
        json_decref(params);
        fail(o, true, "INTERNAL_ERROR", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(params, i);
        const char *name = json_string_value(json_object_get(p, "Name"));
        const char *value = json_string_value(json_object_get(p, "Value"));
        kv[i] = (pb_pipedef_kv){name ? name : "", name ? strlen(name) : 0, value ? value : "",
                                value ? strlen(value) : 0};
    }
    char token[65];
    token_of(r, token);
    pb_runner_start_req req = {.scope = &sc, .pipeline = arn + pl, .client_token = token, .params = kv,
                               .nparams = n, .now_ms = pb__now_ms_delivery()};
    pb_exec_rec e;
    bool replayed = false;
    int rc = pb_runner_start(d->runner, &req, &e, &replayed, &err);
    free(kv);
    json_decref(params);
    if (!rc) {
        pb_exec_rec_free(&e);
        o->ok = true;
        return;
    }
    switch (rc) {
    case PB_ESM_NOTFOUND: fail(o, true, "NO_RESOURCE", "%s", err.message); break;
    case PB_EVALIDATION: fail(o, false, "INVALID_PARAMETER", "%s", err.message); break;
    case PB_ESM_LIMIT: fail(o, true, "RESOURCE_LIMIT_EXCEEDED", "%s", err.message); break;
    case PB_ESM_CONFLICT: fail(o, true, "RESOURCE_MODIFICATION_COLLISION", "%s", err.message); break;
    default: fail(o, true, "INTERNAL_ERROR", "%s", err.message[0] ? err.message : pb_error_default_message(rc));
    }
}

static void invoke_bus(pb_delivery *d, const pb_invocation_rec *r, outcome *o)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "arn:aws:events:%s:%s:event-bus/", r->region, r->account);
    size_t pl = strlen(prefix);
    const char *bus = r->target_arn + pl;
    if (strncmp(r->target_arn, prefix, pl) != 0 || !*bus) {
        fail(o, false, "CROSS_ACCOUNT_INGESTION_FAILED",
             "Event bus %s is not a bus of account %s in %s; pipebridge forwards events within an account and "
             "region",
             r->target_arn, r->account, r->region);
        return;
    }
    if (r->hops + 1 > PB_DELIVERY_MAX_HOPS) {
        fail(o, false, "UNKNOWN",
             "The event has passed through %d event-bus targets; pipebridge stops it here to break a loop",
             PB_DELIVERY_MAX_HOPS);
        return;
    }
    pb_scope sc = {r->account, r->region};
    int rc = pb__bus_exists(d, &sc, bus);
    if (rc == PB_ENOTFOUND) {
        fail(o, true, "NO_RESOURCE", "Event bus %s does not exist.", bus);
        return;
    }
    if (rc) {
        fail(o, true, "INTERNAL_ERROR", "cannot read event bus %s", bus);
        return;
    }
    pb_delivery_event ev = {.bus = bus, .id = r->event_id, .json = r->event_json, .len = strlen(r->event_json),
                            .ingested_ms = r->ingested_ms};
    pb_error err;
    if ((rc = pb__ingest(d, &sc, &ev, 1, r->hops + 1, NULL, &err)) != 0) {
        fail(o, true, "INTERNAL_ERROR", "%s", err.message);
        return;
    }
    o->ok = true;
}

static void invoke(pb_delivery *d, const pb_invocation_rec *r, json_t *target, json_t *event, outcome *o)
{
    const char *arn = r->target_arn;
    if (!strncmp(arn, "arn:aws:sagemaker:", 18) && strstr(arn, ":pipeline/"))
        invoke_pipeline(d, r, target, event, o);
    else if (!strncmp(arn, "arn:aws:events:", 15) && strstr(arn, ":event-bus/"))
        invoke_bus(d, r, o);
    else
        fail(o, false, "UNSUPPORTED_TARGET",
             "pipebridge does not deliver to %s: only SageMaker pipelines and event buses are invoked", arn);
}

/* ----------------------------------------------------- retry policy -- */

static int64_t policy(json_t *target, const char *member, int64_t def, int64_t lo, int64_t hi)
{
    json_t *v = json_object_get(json_object_get(target, "RetryPolicy"), member);
    if (!json_is_integer(v))
        return def;
    int64_t x = json_integer_value(v);
    return x < lo ? lo : x > hi ? hi : x;
}

/* Full jitter: uniform in [ceiling/10, ceiling], ceiling = min(cap, base * 2^(attempt-1)). */
static int64_t backoff_ms(const pb_delivery *d, int64_t attempt)
{
    int64_t ceiling = d->retry_base_ms;
    for (int64_t i = 1; i < attempt && ceiling < d->retry_cap_ms; i++)
        ceiling *= 2;
    if (ceiling > d->retry_cap_ms)
        ceiling = d->retry_cap_ms;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)pb__now_ms_delivery();
    int64_t lo = ceiling / 10;
    return lo + (int64_t)(r % (uint64_t)(ceiling - lo + 1));
}

/* ------------------------------------------------------- one attempt -- */

static void dead(pb_delivery *d, pb__job *j, json_t *target, json_t *event, const outcome *o, const char *exhausted,
                 int64_t now)
{
    pb_invocation_rec *r = &j->rec;
    pb_scope sc = {r->account, r->region};
    const char *dlq = json_string_value(json_object_get(json_object_get(target, "DeadLetterConfig"), "Arn"));
    pb_metrics_add(d->metrics, &sc, r->bus, r->rule_name, PB_M_INVOCATIONS, 1);
    pb_metrics_add(d->metrics, &sc, r->bus, r->rule_name, dlq ? PB_M_DEAD_LETTER_INVOCATIONS : PB_M_FAILED_INVOCATIONS,
                   1);
    pb_log_error("invocation of target %s of rule %s for event %s failed for good after %lld attempt(s): %s: %s%s%s",
                 r->target_id, r->rule_arn, r->event_id, (long long)r->attempts, o->code, o->message,
                 dlq ? "; kept as a dead letter for " : "", dlq ? dlq : "");
    char *payload = NULL;
    json_t *parsed = NULL; /* attempt() does not parse the event for event-bus targets */
    if (dlq && target && !event)
        event = parsed = json_loads(r->event_json, 0, NULL);
    if (dlq && target && event) {
        bool skip = false;
        pb_error err;
        pb_transform_ctx tc = {.rule_arn = r->rule_arn, .rule_name = r->rule_name, .ingested_ms = r->ingested_ms};
        if (pb_transform_payload(target, event, &tc, &payload, NULL, &skip, &err) != 0)
            payload = NULL;
    }
    pb_dead_letter_rec dl = {.dlq_arn = (char *)dlq,
                             .account = r->account,
                             .region = r->region,
                             .bus = r->bus,
                             .rule_arn = r->rule_arn,
                             .rule_name = r->rule_name,
                             .target_id = r->target_id,
                             .target_arn = r->target_arn,
                             .target_json = r->target_json,
                             .event_id = r->event_id,
                             .event_json = r->event_json,
                             .payload = payload,
                             .error_code = (char *)o->code,
                             .error_message = (char *)o->message,
                             .exhausted = (char *)exhausted,
                             .attempts = r->attempts,
                             .ingested_ms = r->ingested_ms,
                             .created_ms = now};
    if (d->store->ops->invocation_dead(d->store, r->id, dlq ? &dl : NULL) != 0)
        pb_log_error("cannot record the end of invocation %lld; it is attempted again after a restart",
                     (long long)r->id);
    free(payload);
    json_decref(parsed);
    job_free(j);
}

static void attempt(pb_delivery *d, pb__job *j)
{
    pb_invocation_rec *r = &j->rec;
    pb_scope sc = {r->account, r->region};
    int64_t now = pb__now_ms_delivery();
    r->attempts++;
    pb_metrics_add(d->metrics, &sc, r->bus, r->rule_name, PB_M_INVOCATION_ATTEMPTS, 1);
    if (r->attempts > 1)
        pb_metrics_add(d->metrics, &sc, r->bus, r->rule_name, PB_M_RETRY_INVOCATION_ATTEMPTS, 1);
    else
        pb_metrics_latency(d->metrics, &sc, r->bus, r->rule_name, (double)(now - r->ingested_ms));

    /* an event-bus target passes the event's text on: it is parsed only
     * for the targets that read it, and for a dead letter's payload */
    bool to_bus = !strncmp(r->target_arn, "arn:aws:events:", 15);
    json_t *target = json_loads(r->target_json, 0, NULL);
    json_t *event = to_bus ? NULL : json_loads(r->event_json, 0, NULL);
    outcome o = {0};
    if (!target || (!to_bus && !event))
        fail(&o, false, "INVALID_JSON", "the stored target or event of invocation %lld is not JSON", (long long)r->id);
    else
        invoke(d, r, target, event, &o);
    now = pb__now_ms_delivery();
    if (o.ok) {
        pb_metrics_add(d->metrics, &sc, r->bus, r->rule_name, PB_M_INVOCATIONS, 1);
        pb__done(d, r->id);
        job_free(j);
    } else if (o.retry) {
        int64_t max_retries = policy(target, "MaximumRetryAttempts", DEFAULT_MAX_RETRIES, 0, 185);
        int64_t max_age_ms = policy(target, "MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S, 60, 86400) * 1000;
        int64_t next = now + backoff_ms(d, r->attempts);
        const char *exhausted = NULL;
        if (r->attempts > max_retries)
            exhausted = "MaximumRetryAttempts";
        else if (next - r->ingested_ms > max_age_ms)
            exhausted = "MaximumEventAgeInSeconds";
        if (exhausted) {
            dead(d, j, target, event, &o, exhausted, now);
        } else {
            r->next_ms = next;
            free(r->last_error_code);
            free(r->last_error_message);
            r->last_error_code = strdup(o.code);
            r->last_error_message = strdup(o.message);
            if (d->store->ops->invocation_retry(d->store, r->id, r->attempts, next, o.code, o.message) != 0)
                pb_log_error("cannot record a failed attempt of invocation %lld", (long long)r->id);
            if (push_job(d, j) != 0) {
                pb_log_error("out of memory: invocation %lld is attempted again after a restart", (long long)r->id);
                job_free(j);
            }
        }
    } else {
        dead(d, j, target, event, &o, NULL, now);
    }
    json_decref(target);
    json_decref(event);
}

/* ----------------------------------------------------------- workers -- */

static void *worker_main(void *arg)
{
    pb_delivery *d = arg;
    pthread_mutex_lock(&d->qmu);
    while (!d->qquit) {
        if (!d->nheap) {
            pthread_cond_wait(&d->qcv, &d->qmu);
            continue;
        }
        int64_t due = d->heap[0]->rec.next_ms, now = pb__now_ms_delivery();
        if (due > now) {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000), .tv_nsec = (long)(due % 1000) * 1000000};
            pthread_cond_timedwait(&d->qcv, &d->qmu, &ts);
            continue;
        }
        pb__job *j = heap_pop(d);
        d->busy++;
        pthread_mutex_unlock(&d->qmu);
        attempt(d, j);
        pthread_mutex_lock(&d->qmu);
        d->busy--;
        pthread_cond_broadcast(&d->qidle);
    }
    pthread_mutex_unlock(&d->qmu);
    return NULL;
}

int pb__dispatch_start(pb_delivery *d, pb_error *err)
{
    d->workers = calloc((size_t)d->nworkers, sizeof *d->workers);
    if (!d->workers)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    for (int i = 0; i < d->nworkers; i++) {
        if (pthread_create(&d->workers[i], NULL, worker_main, d) != 0) {
            d->nworkers = i;
            return pb_error_set(err, PB_EIO, "cannot start the delivery's worker threads");
        }
    }
    return 0;
}

void pb__dispatch_stop(pb_delivery *d)
{
    pthread_mutex_lock(&d->qmu);
    d->qquit = true;
    pthread_cond_broadcast(&d->qcv);
    pthread_mutex_unlock(&d->qmu);
    for (int i = 0; d->workers && i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    free(d->workers);
    d->workers = NULL;
    while (d->nheap)
        job_free(heap_pop(d));
    free(d->heap);
    d->heap = NULL;
}
