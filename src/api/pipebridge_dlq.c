/*
 * pipebridge_dlq.c — the dead letters, through pipebridge's own actions
 * (X-Amz-Target `Pipebridge.*`, SigV4 service `pipebridge`).
 *
 * AWS hands a failed invocation to an SQS queue (AWS-SPEC §8); pipebridge
 * keeps it in the store with the same attributes (RULE_ARN, TARGET_ARN,
 * ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS), and
 * these two actions read them and send them back into delivery:
 *
 *   ListDeadLetters     {DeadLetterArn?, TargetArn?, NextToken?, Limit?}
 *                       -> {DeadLetters: [...], NextToken?}
 *   RedriveDeadLetters  {Ids? | DeadLetterArn?, TargetArn?, All?}
 *                       -> {Redriven: n}
 *
 * DeadLetterArn is a filter of the store; TargetArn is applied here, so a
 * listing scans at most SCAN_MAX records per call and may answer a short (even
 * empty) page with a NextToken, as AWS's filtered lists do. A redrive by filter
 * takes the dead letters present when it starts: the ones it creates by
 * failing again are left for the next redrive, so it always ends.
 */
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX 1000     /* records a filtered ListDeadLetters examines per call */
#define MAX_IDS 100       /* Ids per RedriveDeadLetters */
#define REDRIVE_CHUNK 100 /* dead letters per redrive transaction */

/* ------------------------------------------------------------ helpers -- */

/* The NextToken of this listing is the last examined id, in decimal. */
static int decode_after(const pb_page *pg, int64_t *after, pb_error *err)
{
    *after = 0;
    if (!pg->token)
        return 0;
    const char *s = pg->after;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || !end || *end || v < 0)
        return pb_error_set(err, PB_EVALIDATION, "The NextToken provided is invalid.");
    *after = v;
    return 0;
}

static json_t *dead_letter_json(const pb_dead_letter_rec *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "Id", json_integer(d->id));
    pb_json_set_str(o, "DeadLetterArn", d->dlq_arn);
    pb_json_set_str(o, "Bus", d->bus);
    pb_json_set_str(o, "RuleArn", d->rule_arn);
    pb_json_set_str(o, "RuleName", d->rule_name);
    pb_json_set_str(o, "TargetId", d->target_id);
    pb_json_set_str(o, "TargetArn", d->target_arn);
    pb_json_set_str(o, "EventId", d->event_id);
    pb_json_set_str(o, "Event", d->event_json);
    pb_json_set_str(o, "Payload", d->payload);
    pb_json_set_str(o, "ErrorCode", d->error_code);
    pb_json_set_str(o, "ErrorMessage", d->error_message);
    pb_json_set_str(o, "ExhaustedRetryCondition", d->exhausted);
    json_object_set_new(o, "RetryAttempts", json_integer(d->attempts));
    json_object_set_new(o, "IngestionTime", pb_json_time(d->ingested_ms));
    json_object_set_new(o, "CreationTime", pb_json_time(d->created_ms));
    return o;
}

static bool target_matches(const pb_dead_letter_rec *d, const char *target_arn)
{
    return !target_arn || (d->target_arn && !strcmp(d->target_arn, target_arn));
}

/* ----------------------------------------------------- ListDeadLetters -- */

static int list_dead_letters(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *dlq = pb_v_str(&v, in, "DeadLetterArn", "deadLetterArn", false, 1, 1600, PB_CS_ANY);
    const char *target = pb_v_str(&v, in, "TargetArn", "targetArn", false, 1, 1600, PB_CS_ANY);
    pb_page pg;
    pb_read_page(&v, in, &pg);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    int64_t after = 0;
    if (rc || (rc = pb_page_decode(&pg, err)) || (rc = decode_after(&pg, &after, err)))
        return rc;

    json_t *arr = json_array();
    if (!arr)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    size_t got = 0, scanned = 0;
    bool more = false;
    for (;;) {
        size_t want = target ? PB_MAX_PAGE : pg.limit - got;
        pb_dead_letter_rec *recs = NULL;
        size_t n = 0;
        bool smore = false;
        rc = ctx->store->ops->dead_letters_list(ctx->store, &ctx->scope, dlq, after, want, &recs, &n, &smore);
        if (rc) {
            pb_error_set(err, rc, "cannot list dead letters");
            break;
        }
        bool full = false;
        for (size_t i = 0; i < n && !full; i++) {
            after = recs[i].id; /* examined */
            if (!target_matches(&recs[i], target))
                continue;
            if (json_array_append_new(arr, dead_letter_json(&recs[i]))) {
                rc = pb_error_set(err, PB_ENOMEM, "out of memory");
                break;
            }
            if (++got == pg.limit) {
                full = true;
                more = i + 1 < n || smore;
            }
        }
        pb_dead_letter_recs_free(recs, n);
        scanned += n;
        if (rc || full)
            break;
        if (!smore)
            break;                /* the end: more stays false */
        if (scanned >= SCAN_MAX) { /* bounded work: the caller goes on from here */
            more = true;
            break;
        }
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = json_object();
    json_object_set_new(*out, "DeadLetters", arr);
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, after);
    pb_set_next_token(*out, more, key);
    return 0;
}

/* -------------------------------------------------- RedriveDeadLetters -- */

/* Ids [1..100] of positive integers into ids (capacity MAX_IDS). */
static size_t read_ids(pb_vctx *v, json_t *arr, int64_t *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && i < MAX_IDS; i++) {
        json_t *e = json_array_get(arr, i);
        char path[48];
        snprintf(path, sizeof path, "ids.%zu.member", i + 1);
        if (json_is_null(e)) {
            pb_v_fail(v, path, NULL, "Member must not be null");
            continue;
        }
        if (!json_is_integer(e)) { /* as the AWS frameworks answer a wrong type */
            if (!v->type_error)
                snprintf(v->type_msg, sizeof v->type_msg,
                         "Unexpected type for member Ids: expected a list of integers");
            v->type_error = 1;
            continue;
        }
        json_int_t id = json_integer_value(e);
        if (id < 1) {
            char shown[32];
            snprintf(shown, sizeof shown, "%" JSON_INTEGER_FORMAT, id);
            pb_v_fail(v, path, shown, "Member must have value greater than or equal to 1");
            continue;
        }
        ids[n++] = (int64_t)id;
    }
    return n;
}

/* The ids of the scope's dead letters matching the filters, as they are now.
 * *ids is malloc'd (caller frees). */
static int collect_ids(pb_api_ctx *ctx, const char *dlq, const char *target, int64_t **ids, size_t *nids,
                       pb_error *err)
{
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int64_t after = 0;
    int rc = 0;
    for (bool more = true; more && !rc;) {
        pb_dead_letter_rec *recs = NULL;
        size_t n = 0;
        rc = ctx->store->ops->dead_letters_list(ctx->store, &ctx->scope, dlq, after, PB_MAX_PAGE, &recs, &n, &more);
        if (rc) {
            pb_error_set(err, rc, "cannot list dead letters");
            break;
        }
        for (size_t i = 0; i < n && !rc; i++) {
            after = recs[i].id;
            if (!target_matches(&recs[i], target))
                continue;
            if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
                pb_error_set(err, rc, "out of memory");
            else
                v[cnt++] = recs[i].id;
        }
        pb_dead_letter_recs_free(recs, n);
    }
    if (rc) {
        free(v);
        return rc;
    }
    *ids = v;
    *nids = cnt;
    return 0;
}

static int redrive_dead_letters(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    json_t *arr = pb_v_array(&v, in, "Ids", "ids", false, 1, MAX_IDS);
    const char *dlq = pb_v_str(&v, in, "DeadLetterArn", "deadLetterArn", false, 1, 1600, PB_CS_ANY);
    const char *target = pb_v_str(&v, in, "TargetArn", "targetArn", false, 1, 1600, PB_CS_ANY);
    bool all = pb_v_bool(&v, in, "All", "all");
    int64_t given[MAX_IDS];
    size_t ngiven = arr ? read_ids(&v, arr, given) : 0;
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    if (arr && (dlq || target || all))
        return pb_error_set(err, PB_EVALIDATION,
                            "Ids cannot be combined with DeadLetterArn, TargetArn or All: give either the ids "
                            "to redrive or the filters that select them.");
    if (!arr && !dlq && !target && !all)
        return pb_error_set(err, PB_EVALIDATION,
                            "Nothing selects the dead letters to redrive: give Ids, DeadLetterArn or TargetArn, "
                            "or set All to true to redrive every dead letter.");
    if (!ctx->delivery)
        return pb_error_set(err, PB_EINTERNAL, "delivery is not running");

    int64_t *ids = given;
    size_t nids = ngiven;
    if (!arr && (rc = collect_ids(ctx, dlq, target, &ids, &nids, err)))
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < nids && !rc; i += REDRIVE_CHUNK) {
        size_t k = nids - i < REDRIVE_CHUNK ? nids - i : REDRIVE_CHUNK;
        size_t found = 0;
        rc = pb_delivery_redrive(ctx->delivery, &ctx->scope, ids + i, k, &found, err);
        total += found;
    }
    if (ids != given)
        free(ids);
    if (rc)
        return rc;
    *out = json_object();
    json_object_set_new(*out, "Redriven", json_integer((json_int_t)total));
    return 0;
}

/* Neither takes the write lock: they change no rule, and the store and the
 * delivery serialise what they do themselves. */
const pb_api_op pb_pipebridge_ops[] = {
    {"ListDeadLetters", list_dead_letters, false},
    {"RedriveDeadLetters", redrive_dead_letters, false},
    {NULL, NULL, false},
};
