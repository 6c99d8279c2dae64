/*
 * sagemaker_common.c — members, lookups, paging and JSON shared by the
 * SageMaker.* handlers. See sagemaker.h.
 */
#define _GNU_SOURCE /* qsort_r */
#include "sagemaker.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ members -- */

const char *pb_sm_read_name(pb_vctx *v, json_t *in, const char *member, const char *path, bool required)
{
    return pb_v_str(v, in, member, path, required, 1, PB_SM_NAME_MAX, PB_CS_SM_NAME);
}

const char *pb_sm_read_name_or_arn(pb_vctx *v, json_t *in, bool required)
{
    return pb_v_str(v, in, "PipelineName", "pipelineName", required, 1, PB_SM_NAME_OR_ARN_MAX,
                    PB_CS_SM_NAME_OR_ARN);
}

const char *pb_sm_read_exec_arn(pb_vctx *v, json_t *in, bool required)
{
    return pb_v_str(v, in, "PipelineExecutionArn", "pipelineExecutionArn", required, 0, PB_SM_EXEC_ARN_MAX,
                    PB_CS_SM_EXEC_ARN);
}

const char *pb_sm_read_token(pb_vctx *v, json_t *in, bool required)
{
    return pb_v_str(v, in, "ClientRequestToken", "clientRequestToken", required, 32, 128, PB_CS_ANY);
}

int64_t pb_sm_read_parallelism(pb_vctx *v, json_t *in)
{
    json_t *pc = pb_v_object(v, in, "ParallelismConfiguration", "parallelismConfiguration", false);
    if (!pc)
        return 0;
    bool present = false;
    long long n = pb_v_int(v, pc, "MaxParallelExecutionSteps", "parallelismConfiguration.maxParallelExecutionSteps",
                           true, 1, INT_MAX, &present);
    return present && n >= 1 && n <= INT_MAX ? (int64_t)n : 0;
}

int64_t pb_sm_read_version(pb_vctx *v, json_t *in)
{
    bool present = false;
    long long n = pb_v_int(v, in, "PipelineVersionId", "pipelineVersionId", false, 1, LLONG_MAX, &present);
    return present && n >= 1 ? (int64_t)n : 0;
}

void pb_sm_read_page(pb_vctx *v, json_t *in, pb_page *pg, size_t min, size_t max, size_t def)
{
    bool has = false;
    pg->token = pb_v_str(v, in, "NextToken", "nextToken", false, 0, 8192, PB_CS_ANY);
    if (pg->token && !*pg->token)
        pg->token = NULL; /* an empty token is the first page */
    long long limit = pb_v_int(v, in, "MaxResults", "maxResults", false, (long long)min,
                               max ? (long long)max : LLONG_MAX, &has);
    pg->limit = has && limit >= (long long)min && (!max || limit <= (long long)max) ? (size_t)limit : def;
    pg->after[0] = '\0';
}

int pb_sm_read_tags(pb_vctx *v, json_t *in, bool required, pb_tag **tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    json_t *arr = pb_v_array(v, in, "Tags", "tags", required, 0, PB_MAX_TAGS);
    if (!arr || json_array_size(arr) > PB_MAX_TAGS)
        return 0;
    size_t cnt = json_array_size(arr);
    pb_tag *t = calloc(cnt ? cnt : 1, sizeof *t);
    if (!t)
        return PB_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(arr, i);
        char kp[64], vp[64];
        snprintf(kp, sizeof kp, "tags.%zu.member.key", i + 1);
        snprintf(vp, sizeof vp, "tags.%zu.member.value", i + 1);
        if (!json_is_object(e)) {
            pb_v_fail(v, kp, NULL, "Member must not be null");
            continue;
        }
        const char *k = pb_v_str(v, e, "Key", kp, true, 1, 128, PB_CS_SM_TAG);
        const char *val = pb_v_str(v, e, "Value", vp, true, 0, 256, PB_CS_SM_TAG);
        t[i].key = k ? strdup(k) : NULL;
        t[i].value = val ? strdup(val) : NULL;
        if ((k && !t[i].key) || (val && !t[i].value))
            rc = PB_ENOMEM;
    }
    *tags = t;
    *n = cnt;
    return rc;
}

int pb_sm_check_tags(const pb_tag *tags, size_t n, pb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!tags[i].key || strcmp(tags[i].key, PB_RUNNER_CONCURRENCY_TAG) != 0)
            continue;
        const char *s = tags[i].value ? tags[i].value : "";
        long long x = 0;
        bool ok = *s != '\0';
        for (const char *p = s; *p && ok; p++) {
            ok = *p >= '0' && *p <= '9';
            if (ok && x <= PB_RUNNER_MAX_CONCURRENCY)
                x = x * 10 + (*p - '0');
        }
        if (!ok || x < 1 || x > PB_RUNNER_MAX_CONCURRENCY)
            return pb_error_set(err, PB_EVALIDATION,
                                "The value of tag %s must be an integer from 1 to %d; '%.64s' is not.",
                                PB_RUNNER_CONCURRENCY_TAG, PB_RUNNER_MAX_CONCURRENCY, s);
    }
    return 0;
}

int pb_sm_refuse(json_t *in, const char *member, const char *why, pb_error *err)
{
    json_t *j = json_object_get(in, member);
    if (!j || json_is_null(j))
        return 0;
    return pb_error_set(err, PB_EUNSUPPORTED, "%s is not supported by pipebridge%s", member, why);
}

/* ------------------------------------------------------------ lookups -- */

bool pb_sm_pipeline_name(pb_api_ctx *ctx, const char *name_or_arn, char *out, size_t cap)
{
    return pb_pipearn_name(&ctx->scope, name_or_arn, out, cap);
}

int pb_sm_pipeline_not_found(pb_api_ctx *ctx, const char *name_or_arn, pb_error *err)
{
    if (!strncmp(name_or_arn, "arn:", 4))
        return pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline '%s' does not exist.", name_or_arn);
    char *arn = pb_pipearn_pipeline(&ctx->scope, name_or_arn);
    if (!arn)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline '%s' does not exist.", arn);
    free(arn);
    return PB_ESM_NOTFOUND;
}

int pb_sm_pipeline_get(pb_api_ctx *ctx, const char *name_or_arn, int64_t version, pb_pipeline_rec *out,
                       pb_error *err)
{
    char name[PB_SM_NAME_OR_ARN_MAX * 4 + 1];
    memset(out, 0, sizeof *out);
    if (!pb_sm_pipeline_name(ctx, name_or_arn, name, sizeof name))
        return pb_sm_pipeline_not_found(ctx, name_or_arn, err);
    int rc = ctx->store->ops->pipeline_get(ctx->store, &ctx->scope, name, version, out);
    if (rc) {
        pb_pipeline_rec_free(out); /* nothing is the caller's after an error */
        memset(out, 0, sizeof *out);
    }
    if (rc == PB_ENOTFOUND && version > 0) {
        /* which is missing: the pipeline or the version? */
        pb_pipeline_rec latest = {0};
        if (!ctx->store->ops->pipeline_get(ctx->store, &ctx->scope, name, 0, &latest)) {
            pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline version %lld of pipeline '%s' does not exist.",
                         (long long)version, latest.arn);
            pb_pipeline_rec_free(&latest);
            return PB_ESM_NOTFOUND;
        }
        pb_pipeline_rec_free(&latest);
    }
    if (rc == PB_ENOTFOUND)
        return pb_sm_pipeline_not_found(ctx, name_or_arn, err);
    if (rc)
        return pb_error_set(err, rc, "cannot read pipeline %.300s", name);
    return 0;
}

int pb_sm_exec_get(pb_api_ctx *ctx, const char *arn, pb_exec_rec *out, pb_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = ctx->store->ops->exec_get(ctx->store, &ctx->scope, arn, out);
    if (rc) {
        pb_exec_rec_free(out); /* nothing is the caller's after an error */
        memset(out, 0, sizeof *out);
    }
    if (rc == PB_ENOTFOUND)
        return pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline execution '%s' does not exist.", arn);
    if (rc)
        return pb_error_set(err, rc, "cannot read pipeline execution %.300s", arn);
    return 0;
}

/* ------------------------------------------------------------- paging -- */

static int by_key(const void *a, const void *b, void *keys)
{
    char *const *k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

int pb_sm_keys_init(pb_sm_keys *k, size_t cap, pb_error *err)
{
    *k = (pb_sm_keys){.cap = cap};
    k->keys = calloc(cap ? cap : 1, sizeof *k->keys);
    k->row = calloc(cap ? cap : 1, sizeof *k->row);
    k->order = calloc(cap ? cap : 1, sizeof *k->order);
    if (!k->keys || !k->row || !k->order)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    return 0;
}

int pb_sm_keys_add(pb_sm_keys *k, size_t row, char *key, pb_error *err)
{
    if (!key || k->n >= k->cap) {
        free(key);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    k->keys[k->n] = key;
    k->row[k->n++] = row;
    return 0;
}

int pb_sm_keys_addf(pb_sm_keys *k, size_t row, pb_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *key = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (key) {
        va_start(ap, fmt);
        vsnprintf(key, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return pb_sm_keys_add(k, row, key, err);
}

void pb_sm_keys_free(pb_sm_keys *k)
{
    for (size_t i = 0; k->keys && i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
    free(k->row);
    free(k->order);
    *k = (pb_sm_keys){0};
}

int pb_sm_page(const pb_page *pg, const char *mode, bool descending, char *const *keys, size_t n, size_t *order,
               size_t *count, char **next, pb_error *err)
{
    *count = 0;
    *next = NULL;
    size_t ml = strlen(mode);
    const char *after = NULL;
    if (pg->token) {
        /* the decoded token is "<mode>:<key>" */
        if (strncmp(pg->after, mode, ml) != 0 || pg->after[ml] != ':')
            return pb_error_set(err, PB_EVALIDATION, "The NextToken provided is invalid.");
        after = pg->after + ml + 1;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (n > 1)
        qsort_r(order, n, sizeof *order, by_key, (void *)keys);
    if (descending)
        for (size_t i = 0; i < n / 2; i++) {
            size_t t = order[i];
            order[i] = order[n - 1 - i];
            order[n - 1 - i] = t;
        }
    size_t first = 0;
    if (after)
        while (first < n && (descending ? strcmp(keys[order[first]], after) >= 0
                                        : strcmp(keys[order[first]], after) <= 0))
            first++;
    size_t take = n - first < pg->limit ? n - first : pg->limit;
    memmove(order, order + first, take * sizeof *order);
    *count = take;
    if (first + take < n && take > 0) {
        const char *last = keys[order[take - 1]];
        size_t kl = strlen(last);
        char *k = malloc(ml + 1 + kl + 1);
        if (!k)
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        memcpy(k, mode, ml);
        k[ml] = ':';
        memcpy(k + ml + 1, last, kl + 1);
        *next = pb_token_encode(k);
        free(k);
        if (!*next)
            return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    return 0;
}

/* -------------------------------------------------------------- JSON --- */

const char *pb_sm_exec_status(const pb_exec_rec *e)
{
    return e->status && !strcmp(e->status, "Queued") ? "Executing" : e->status;
}

json_t *pb_sm_parallelism_json(int64_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "MaxParallelExecutionSteps", json_integer((json_int_t)n));
    return o;
}

void pb_sm_set_time(json_t *obj, const char *key, int64_t ms)
{
    if (ms > 0)
        json_object_set_new(obj, key, pb_json_time(ms));
}

json_t *pb_sm_answer(const char *key, const char *s)
{
    json_t *o = json_object();
    json_object_set_new(o, key, json_string(s));
    return o;
}

json_t *pb_sm_exec_json(const pb_exec_rec *e)
{
    json_t *o = json_object();
    pb_json_set_str(o, "PipelineArn", e->pipeline_arn);
    pb_json_set_str(o, "PipelineExecutionArn", e->arn);
    pb_json_set_str(o, "PipelineExecutionDisplayName", e->display_name);
    pb_json_set_str(o, "PipelineExecutionStatus", pb_sm_exec_status(e));
    pb_json_set_str(o, "PipelineExecutionDescription", e->description);
    pb_json_set_str(o, "FailureReason", e->failure_reason);
    pb_sm_set_time(o, "CreationTime", e->created_ms);
    pb_sm_set_time(o, "LastModifiedTime", e->modified_ms);
    if (e->max_parallel > 0)
        json_object_set_new(o, "ParallelismConfiguration", pb_sm_parallelism_json(e->max_parallel));
    if (e->version_id > 0)
        json_object_set_new(o, "PipelineVersionId", json_integer((json_int_t)e->version_id));
    if (e->status && !strcmp(e->status, "Queued"))
        json_object_set_new(o, "PipebridgeQueued", json_true());
    return o;
}

json_t *pb_sm_exec_summary_json(const pb_exec_rec *e)
{
    json_t *o = json_object();
    pb_json_set_str(o, "PipelineExecutionArn", e->arn);
    pb_sm_set_time(o, "StartTime", e->created_ms);
    pb_json_set_str(o, "PipelineExecutionStatus", pb_sm_exec_status(e));
    pb_json_set_str(o, "PipelineExecutionDescription", e->description);
    pb_json_set_str(o, "PipelineExecutionDisplayName", e->display_name);
    pb_json_set_str(o, "PipelineExecutionFailureReason", e->failure_reason);
    return o;
}
