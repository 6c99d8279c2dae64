/*
 * sagemaker.h — what the SageMaker.* handlers share (sagemaker_common.c):
 * readers for the members several operations take, the lookups that answer
 * ResourceNotFound in one wording, sorting and paging of lists the store
 * returns whole, and the JSON of an execution.
 *
 * The handlers themselves are in sagemaker_pipelines.c (CreatePipeline ...
 * DeletePipeline), sagemaker_executions.c (StartPipelineExecution ...
 * DescribePipelineDefinitionForExecution) and sagemaker_tags.c (AddTags,
 * DeleteTags, ListTags). Behaviour: ../shared/spec/AWS-SPEC.md §6 and
 * docs/API.md.
 */
#ifndef PB_SAGEMAKER_H
#define PB_SAGEMAKER_H

#include "api_internal.h"

#include "pipeline/pb_pipearn.h"

#include <stdbool.h>
#include <stdint.h>

#define PB_SM_NAME_MAX 256        /* PipelineName */
#define PB_SM_NAME_OR_ARN_MAX 2048 /* PipelineNameOrArn */
#define PB_SM_EXEC_ARN_MAX 256    /* PipelineExecutionArn */
#define PB_SM_PAGE_DEFAULT 50     /* MaxResults when absent (not documented by AWS) */
#define PB_SM_PAGE_MAX 100        /* MaxResults */
#define PB_SM_TAGS_PAGE_MIN 50    /* ListTags MaxResults (ListTagsMaxResults: min 50) */

/* ------------------------------------------------------------ members -- */

/* PipelineName that must be a name (CreatePipeline, UpdatePipeline, DeletePipeline). */
const char *pb_sm_read_name(pb_vctx *v, json_t *in, const char *member, const char *path, bool required);
/* PipelineName that takes a name or an ARN (Describe, Start, ListPipelineExecutions). */
const char *pb_sm_read_name_or_arn(pb_vctx *v, json_t *in, bool required);
/* PipelineExecutionArn. */
const char *pb_sm_read_exec_arn(pb_vctx *v, json_t *in, bool required);
/* ClientRequestToken (32..128 characters). */
const char *pb_sm_read_token(pb_vctx *v, json_t *in, bool required);
/* ParallelismConfiguration {MaxParallelExecutionSteps* >= 1}: the value, 0 when absent. */
int64_t pb_sm_read_parallelism(pb_vctx *v, json_t *in);
/* PipelineVersionId (a long >= 1): the value, 0 when absent. */
int64_t pb_sm_read_version(pb_vctx *v, json_t *in);
/* NextToken (<= 8192) and MaxResults (min..max, default def) into pg. */
void pb_sm_read_page(pb_vctx *v, json_t *in, pb_page *pg, size_t min, size_t max, size_t def);

/* Tags [{Key, Value}] with SageMaker's constraints (0..50, Key 1..128,
 * Value 0..256, the tag pattern). *tags (caller frees with pb_tags_free) has
 * *n entries, some possibly NULL where a violation was recorded. Returns 0 or
 * PB_ENOMEM (err not filled). */
int pb_sm_read_tags(pb_vctx *v, json_t *in, bool required, pb_tag **tags, size_t *n);

/* The pipebridge tag PB_RUNNER_CONCURRENCY_TAG must hold an integer
 * 1..PB_RUNNER_MAX_CONCURRENCY: 0, or PB_EVALIDATION saying so. */
int pb_sm_check_tags(const pb_tag *tags, size_t n, pb_error *err);

/* A member pipebridge does not support (present and not null): 0, or
 * PB_EUNSUPPORTED "<member> is not supported by pipebridge<why>". */
int pb_sm_refuse(json_t *in, const char *member, const char *why, pb_error *err);

/* ------------------------------------------------------------ lookups -- */

/* The pipeline named by name_or_arn (a name in any case, or its ARN), at
 * version (0: the latest). PB_ESM_NOTFOUND "Pipeline '<arn>' does not
 * exist." (or "Pipeline version N of pipeline '<arn>' does not exist."); a
 * store failure keeps its code. *out is the caller's (pb_pipeline_rec_free). */
int pb_sm_pipeline_get(pb_api_ctx *ctx, const char *name_or_arn, int64_t version, pb_pipeline_rec *out,
                       pb_error *err);
/* Fills err with the not-found answer for name_or_arn and returns PB_ESM_NOTFOUND. */
int pb_sm_pipeline_not_found(pb_api_ctx *ctx, const char *name_or_arn, pb_error *err);
/* The pipeline name part of name_or_arn (pb_pipearn_name) into out[cap];
 * false when it does not fit (then no pipeline can have it). */
bool pb_sm_pipeline_name(pb_api_ctx *ctx, const char *name_or_arn, char *out, size_t cap);

/* The execution with this ARN. PB_ESM_NOTFOUND "Pipeline execution '<arn>'
 * does not exist."; *out is the caller's (pb_exec_rec_free). */
int pb_sm_exec_get(pb_api_ctx *ctx, const char *arn, pb_exec_rec *out, pb_error *err);

/* ------------------------------------------------------------- paging -- */

/* Pages a list the store returned whole. keys[i] is the sort key of item i
 * (unique; ascending strcmp order is the ascending sort order). mode names
 * the sort (e.g. "name+") and is carried in the token, so a token is only
 * taken back by the same sort. On success order[0..*count) are the indices
 * of the page's items, in order, and *next is the NextToken to send (malloc'd,
 * NULL on the last page). order must have room for n entries. Codes:
 * PB_EVALIDATION (a token we did not issue for this sort), PB_ENOMEM. */
int pb_sm_page(const pb_page *pg, const char *mode, bool descending, char *const *keys, size_t n, size_t *order,
               size_t *count, char **next, pb_error *err);

/* The sort keys of a listing: one per item kept after the filters, with
 * that item's index in the store's list (row). Call pb_sm_page with
 * keys/n/order; the page's items are then row[order[j]]. pb_sm_keys_free
 * after init, whatever happened. */
typedef struct pb_sm_keys {
    char **keys;   /* owned */
    size_t *row;
    size_t *order; /* room for cap entries, for pb_sm_page */
    size_t n, cap;
} pb_sm_keys;

/* Room for cap keys. PB_ENOMEM. */
int pb_sm_keys_init(pb_sm_keys *k, size_t cap, pb_error *err);
/* Adds the key of item row, made like printf. PB_ENOMEM. */
int pb_sm_keys_addf(pb_sm_keys *k, size_t row, pb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds key (taken over; NULL means an allocation failed: PB_ENOMEM). */
int pb_sm_keys_add(pb_sm_keys *k, size_t row, char *key, pb_error *err);
void pb_sm_keys_free(pb_sm_keys *k);

/* -------------------------------------------------------------- JSON --- */

/* The API status of an execution: the store's "Queued" is "Executing". */
const char *pb_sm_exec_status(const pb_exec_rec *e);
/* {"MaxParallelExecutionSteps": n} */
json_t *pb_sm_parallelism_json(int64_t n);
/* DescribePipelineExecution's answer for e (new reference). */
json_t *pb_sm_exec_json(const pb_exec_rec *e);
/* A PipelineExecutionSummary of ListPipelineExecutions (new reference). */
json_t *pb_sm_exec_summary_json(const pb_exec_rec *e);

/* Sets obj[key] = ms as seconds when ms > 0. */
void pb_sm_set_time(json_t *obj, const char *key, int64_t ms);
/* A new object {key: s}: the one-member answers ({"PipelineArn": ...}). */
json_t *pb_sm_answer(const char *key, const char *s);

#endif
