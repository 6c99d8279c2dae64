/*
 * sagemaker_executions.c — StartPipelineExecution, DescribePipelineExecution,
 * ListPipelineExecutions, ListPipelineExecutionSteps,
 * ListPipelineParametersForExecution, StopPipelineExecution,
 * RetryPipelineExecution, UpdatePipelineExecution and
 * DescribePipelineDefinitionForExecution (AWS-SPEC §6.2).
 *
 * Start, Stop and Retry go through the runner (pb_runner.h), which owns the
 * life of an execution: it binds parameters, makes the change durable with
 * its status-change event and wakes its thread. The rest reads the store.
 * Beyond AWS: an execution waiting under the pipeline's concurrency limit is
 * "Queued" in the store; it is shown as Executing with "PipebridgeQueued":
 * true, and steps of a process show their log files as "LogFiles".
 */
#include "sagemaker.h"

#include "pipeline/pb_pipedef.h"
#include "pipeline/pb_runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESCRIPTION_MAX 3072

static const char *const sort_orders[] = {"Ascending", "Descending", NULL};

/* PipelineParameters [{Name, Value}] as the runner takes them; *kv is
 * malloc'd (the strings are borrowed from in). Returns 0 or PB_ENOMEM. */
static int read_parameters(pb_vctx *v, json_t *in, pb_pipedef_kv **kv, size_t *n)
{
    *kv = NULL;
    *n = 0;
    json_t *arr =
        pb_v_array(v, in, "PipelineParameters", "pipelineParameters", false, 0, PB_PIPEDEF_MAX_START_PARAMS);
    if (!arr || json_array_size(arr) > PB_PIPEDEF_MAX_START_PARAMS)
        return 0;
    size_t cnt = json_array_size(arr);
    pb_pipedef_kv *out = calloc(cnt ? cnt : 1, sizeof *out);
    if (!out)
        return PB_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(arr, i);
        char np[64], vp[64];
        snprintf(np, sizeof np, "pipelineParameters.%zu.member.name", i + 1);
        snprintf(vp, sizeof vp, "pipelineParameters.%zu.member.value", i + 1);
        if (!json_is_object(e)) {
            pb_v_fail(v, np, NULL, "Member must not be null");
            continue;
        }
        const char *name = pb_v_str(v, e, "Name", np, true, 1, 256, PB_CS_SM_PARAM_NAME);
        const char *value = pb_v_str(v, e, "Value", vp, true, 0, PB_PIPEDEF_MAX_PARAM_VALUE, PB_CS_ANY);
        out[i].name = name ? name : "";
        out[i].name_len = strlen(out[i].name);
        out[i].value = value ? value : "";
        out[i].value_len = strlen(out[i].value);
    }
    *kv = out;
    *n = cnt;
    return 0;
}

static int start_execution(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *pipeline = pb_sm_read_name_or_arn(&v, in, true);
    const char *token = pb_sm_read_token(&v, in, true);
    const char *display = pb_v_str(&v, in, "PipelineExecutionDisplayName", "pipelineExecutionDisplayName", false, 1,
                                   82, PB_CS_SM_EXEC_NAME);
    const char *desc = pb_v_str(&v, in, "PipelineExecutionDescription", "pipelineExecutionDescription", false, 0,
                                DESCRIPTION_MAX, PB_CS_ANY);
    int64_t max_parallel = pb_sm_read_parallelism(&v, in);
    int64_t version = pb_sm_read_version(&v, in);
    pb_v_object(&v, in, "SelectiveExecutionConfig", "selectiveExecutionConfig", false);
    pb_v_str(&v, in, "MlflowExperimentName", "mlflowExperimentName", false, 1, 256, PB_CS_ANY);
    pb_pipedef_kv *params = NULL;
    size_t nparams = 0;
    int rc = read_parameters(&v, in, &params, &nparams);
    if (rc)
        pb_error_set(err, rc, "out of memory");
    else
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc ||
        (rc = pb_sm_refuse(in, "SelectiveExecutionConfig",
                           ": start the whole pipeline, or rerun the failed steps with RetryPipelineExecution.",
                           err)) ||
        (rc = pb_sm_refuse(in, "MlflowExperimentName", ": pipebridge has no MLflow tracking.", err)))
        goto out;
    pb_runner_start_req req = {.scope = &ctx->scope,
                               .pipeline = pipeline,
                               .client_token = token,
                               .params = params,
                               .nparams = nparams,
                               .display_name = display,
                               .description = desc,
                               .max_parallel = max_parallel,
                               .version_id = version,
                               .now_ms = ctx->now_ms};
    pb_exec_rec e = {0};
    bool replayed = false;
    if ((rc = pb_runner_start(ctx->runner, &req, &e, &replayed, err)))
        goto out;
    *out = pb_sm_answer("PipelineExecutionArn", e.arn);
    pb_exec_rec_free(&e);
out:
    free(params);
    return rc;
}

/* Reads the one PipelineExecutionArn member and finds the execution. */
static int read_exec(pb_api_ctx *ctx, json_t *in, pb_exec_rec *e, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    memset(e, 0, sizeof *e);
    return rc ? rc : pb_sm_exec_get(ctx, arn, e, err);
}

static int describe_execution(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_exec_rec e;
    int rc = read_exec(ctx, in, &e, err);
    if (!rc)
        *out = pb_sm_exec_json(&e);
    pb_exec_rec_free(&e);
    return rc;
}

static const char *const sort_executions_by[] = {"CreationTime", "PipelineExecutionArn", NULL};

static int list_executions(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *pipeline = pb_sm_read_name_or_arn(&v, in, true);
    int64_t after_ms = 0, before_ms = 0;
    bool has_after = pb_v_time(&v, in, "CreatedAfter", "createdAfter", &after_ms);
    bool has_before = pb_v_time(&v, in, "CreatedBefore", "createdBefore", &before_ms);
    const char *sort_by = pb_v_enum(&v, in, "SortBy", "sortBy", false, sort_executions_by);
    const char *sort_order = pb_v_enum(&v, in, "SortOrder", "sortOrder", false, sort_orders);
    pb_page pg;
    pb_sm_read_page(&v, in, &pg, 1, PB_SM_PAGE_MAX, PB_SM_PAGE_DEFAULT);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    bool by_arn = sort_by && !strcmp(sort_by, "PipelineExecutionArn");
    bool descending = !sort_order || !strcmp(sort_order, "Descending");
    char mode[64];
    snprintf(mode, sizeof mode, "executions.%s.%s", by_arn ? "PipelineExecutionArn" : "CreationTime",
             descending ? "Descending" : "Ascending");

    pb_pipeline_rec p;
    if ((rc = pb_sm_pipeline_get(ctx, pipeline, 0, &p, err)))
        return rc;
    pb_exec_rec *es = NULL;
    size_t n = 0, count = 0;
    rc = ctx->store->ops->exec_list(ctx->store, &ctx->scope, p.name, &es, &n);
    if (rc) {
        pb_error_set(err, rc, "cannot list the executions of pipeline %s", p.name);
        pb_pipeline_rec_free(&p);
        return rc;
    }
    pb_pipeline_rec_free(&p);
    pb_sm_keys k;
    char *next = NULL;
    if ((rc = pb_sm_keys_init(&k, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((has_after && es[i].created_ms <= after_ms) || (has_before && es[i].created_ms >= before_ms))
            continue;
        /* the ARN makes the key unique; executions created in the same millisecond keep an order */
        rc = by_arn ? pb_sm_keys_addf(&k, i, err, "%s", es[i].arn)
                    : pb_sm_keys_addf(&k, i, err, "%020" PRId64 "\x1f%s",
                                      es[i].created_ms > 0 ? es[i].created_ms : 0, es[i].arn);
        if (rc)
            goto out;
    }
    if ((rc = pb_sm_page(&pg, mode, descending, k.keys, k.n, k.order, &count, &next, err)))
        goto out;
    json_t *arr = json_array();
    for (size_t j = 0; j < count; j++)
        json_array_append_new(arr, pb_sm_exec_summary_json(&es[k.row[k.order[j]]]));
    *out = json_object();
    json_object_set_new(*out, "PipelineExecutionSummaries", arr);
    pb_json_set_str(*out, "NextToken", next);
out:
    pb_sm_keys_free(&k);
    free(next);
    pb_exec_recs_free(es, n);
    return rc;
}

static json_t *step_json(const pb_step_rec *s)
{
    json_t *o = json_object();
    pb_json_set_str(o, "StepName", s->name);
    pb_json_set_str(o, "StepDisplayName", s->display_name);
    pb_json_set_str(o, "StepDescription", s->description);
    pb_sm_set_time(o, "StartTime", s->start_ms);
    pb_sm_set_time(o, "EndTime", s->end_ms);
    pb_json_set_str(o, "StepStatus", s->status);
    pb_json_set_str(o, "FailureReason", s->failure_reason);
    if (s->metadata_json) {
        json_t *m = json_loads(s->metadata_json, 0, NULL);
        if (json_is_object(m))
            json_object_set_new(o, "Metadata", m);
        else
            json_decref(m);
    }
    if (s->attempt_count > 0)
        json_object_set_new(o, "AttemptCount", json_integer((json_int_t)s->attempt_count));
    if (s->stdout_path || s->stderr_path) {
        json_t *logs = json_object();
        pb_json_set_str(logs, "Stdout", s->stdout_path);
        pb_json_set_str(logs, "Stderr", s->stderr_path);
        json_object_set_new(o, "LogFiles", logs);
    }
    return o;
}

static int list_steps(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    /* not required by the model, but there is nothing to list without it */
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    const char *sort_order = pb_v_enum(&v, in, "SortOrder", "sortOrder", false, sort_orders);
    pb_page pg;
    pb_sm_read_page(&v, in, &pg, 1, PB_SM_PAGE_MAX, PB_SM_PAGE_DEFAULT);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    bool descending = !sort_order || !strcmp(sort_order, "Descending");
    pb_exec_rec e;
    if ((rc = pb_sm_exec_get(ctx, arn, &e, err))) {
        pb_exec_rec_free(&e);
        return rc;
    }
    pb_step_rec *ss = NULL;
    size_t n = 0, count = 0;
    rc = ctx->store->ops->steps_list(ctx->store, &ctx->scope, e.arn, &ss, &n);
    pb_exec_rec_free(&e);
    if (rc)
        return pb_error_set(err, rc, "cannot list the steps of %.300s", arn);
    pb_sm_keys k;
    char *next = NULL;
    if ((rc = pb_sm_keys_init(&k, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((rc = pb_sm_keys_addf(&k, i, err, "%020" PRId64 "\x1f%020" PRId64, ss[i].start_ms > 0 ? ss[i].start_ms : 0,
                                  ss[i].index > 0 ? ss[i].index : 0)))
            goto out;
    if ((rc = pb_sm_page(&pg, descending ? "steps.Descending" : "steps.Ascending", descending, k.keys, k.n, k.order,
                         &count, &next, err)))
        goto out;
    json_t *arr = json_array();
    for (size_t j = 0; j < count; j++)
        json_array_append_new(arr, step_json(&ss[k.row[k.order[j]]]));
    *out = json_object();
    json_object_set_new(*out, "PipelineExecutionSteps", arr);
    pb_json_set_str(*out, "NextToken", next);
out:
    pb_sm_keys_free(&k);
    free(next);
    pb_step_recs_free(ss, n);
    return rc;
}

static int list_parameters(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    pb_page pg;
    pb_sm_read_page(&v, in, &pg, 1, PB_SM_PAGE_MAX, PB_SM_PAGE_DEFAULT);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    pb_exec_rec e;
    if ((rc = pb_sm_exec_get(ctx, arn, &e, err))) {
        pb_exec_rec_free(&e);
        return rc;
    }
    pb_param_rec *ps = NULL;
    size_t n = 0, count = 0;
    rc = ctx->store->ops->params_list(ctx->store, &ctx->scope, e.arn, &ps, &n);
    pb_exec_rec_free(&e);
    if (rc)
        return pb_error_set(err, rc, "cannot list the parameters of %.300s", arn);
    /* An execution's parameters never change: their position is a stable key,
     * and keeps the order the runner stored them in (the definition's). */
    pb_sm_keys k;
    char *next = NULL;
    if ((rc = pb_sm_keys_init(&k, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((rc = pb_sm_keys_addf(&k, i, err, "%010zu", i)))
            goto out;
    if ((rc = pb_sm_page(&pg, "parameters", false, k.keys, k.n, k.order, &count, &next, err)))
        goto out;
    json_t *arr = json_array();
    for (size_t j = 0; j < count; j++) {
        const pb_param_rec *pr = &ps[k.row[k.order[j]]];
        json_t *o = json_object();
        pb_json_set_str(o, "Name", pr->name);
        json_object_set_new(o, "Value", json_string(pr->value ? pr->value : ""));
        json_array_append_new(arr, o);
    }
    *out = json_object();
    json_object_set_new(*out, "PipelineParameters", arr);
    pb_json_set_str(*out, "NextToken", next);
out:
    pb_sm_keys_free(&k);
    free(next);
    pb_param_recs_free(ps, n);
    return rc;
}

static int stop_execution(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    pb_sm_read_token(&v, in, true);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_exec_rec e;
    if (!(rc = pb_sm_exec_get(ctx, arn, &e, err)) &&
        !(rc = pb_runner_stop(ctx->runner, &ctx->scope, e.arn, ctx->now_ms, err)))
        *out = pb_sm_answer("PipelineExecutionArn", e.arn);
    pb_exec_rec_free(&e);
    return rc;
}

static int retry_execution(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    pb_sm_read_token(&v, in, true);
    int64_t max_parallel = pb_sm_read_parallelism(&v, in);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_exec_rec e;
    if (!(rc = pb_sm_exec_get(ctx, arn, &e, err)) &&
        !(rc = pb_runner_retry(ctx->runner, &ctx->scope, e.arn, max_parallel, ctx->now_ms, err)))
        *out = pb_sm_answer("PipelineExecutionArn", e.arn);
    pb_exec_rec_free(&e);
    return rc;
}

static int update_execution(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_sm_read_exec_arn(&v, in, true);
    const char *desc = pb_v_str(&v, in, "PipelineExecutionDescription", "pipelineExecutionDescription", false, 0,
                                DESCRIPTION_MAX, PB_CS_ANY);
    const char *display = pb_v_str(&v, in, "PipelineExecutionDisplayName", "pipelineExecutionDisplayName", false, 1,
                                   82, PB_CS_SM_EXEC_NAME);
    int64_t max_parallel = pb_sm_read_parallelism(&v, in);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_exec_rec e;
    if ((rc = pb_sm_exec_get(ctx, arn, &e, err))) {
        pb_exec_rec_free(&e);
        return rc;
    }
    /* through the runner: it holds a running execution's record and would
     * otherwise write its own copy back over this change */
    rc = pb_runner_update(ctx->runner, &ctx->scope, e.arn, display, desc, max_parallel, NULL, err);
    if (!rc)
        *out = pb_sm_answer("PipelineExecutionArn", e.arn);
    pb_exec_rec_free(&e);
    return rc;
}

static int describe_definition(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_exec_rec e;
    int rc = read_exec(ctx, in, &e, err);
    if (rc) {
        pb_exec_rec_free(&e);
        return rc;
    }
    pb_pipeline_rec p;
    rc = pb_sm_pipeline_get(ctx, e.pipeline_name, e.version_id, &p, err);
    pb_exec_rec_free(&e);
    if (rc)
        return rc;
    *out = pb_sm_answer("PipelineDefinition", p.definition ? p.definition : "");
    pb_sm_set_time(*out, "CreationTime", p.created_ms);
    pb_pipeline_rec_free(&p);
    return 0;
}

const pb_api_op pb_sagemaker_exec_ops[] = {
    /* writes = false: the store's transactions and the runner's lock order these */
    {"StartPipelineExecution", start_execution, false},
    {"DescribePipelineExecution", describe_execution, false},
    {"ListPipelineExecutions", list_executions, false},
    {"ListPipelineExecutionSteps", list_steps, false},
    {"ListPipelineParametersForExecution", list_parameters, false},
    {"StopPipelineExecution", stop_execution, false},
    {"RetryPipelineExecution", retry_execution, false},
    {"UpdatePipelineExecution", update_execution, false},
    {"DescribePipelineDefinitionForExecution", describe_definition, false},
    {NULL, NULL, false},
};
