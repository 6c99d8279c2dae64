/*
 * sagemaker_pipelines.c — CreatePipeline, UpdatePipeline, DescribePipeline,
 * ListPipelines and DeletePipeline (AWS-SPEC §6.2).
 *
 * A definition is parsed and checked by pb_pipedef_parse before anything is
 * written, so a pipeline that exists can always be run; its messages go back
 * as they are. Names are compared without regard to case and ARNs hold the
 * lowercase name, as in SageMaker. The store keeps every version of a
 * definition; executions name the version they run, so UpdatePipeline never
 * changes a running execution. ListPipelines gets every pipeline of the
 * scope from the store and filters, sorts and pages here.
 */
#include "sagemaker.h"

#include "pipeline/pb_pipedef.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DESCRIPTION_MAX 3072

/* The definition member of Create/UpdatePipeline: PipelineDefinitionS3Location
 * is refused (pipebridge has no S3); a definition given is parsed and checked. */
static int check_definition(json_t *in, const char *def, bool required, pb_error *err)
{
    int rc = pb_sm_refuse(in, "PipelineDefinitionS3Location",
                          ": pipebridge has no S3; give the definition itself in PipelineDefinition.", err);
    if (rc)
        return rc;
    if (!def) {
        if (required)
            return pb_error_set(err, PB_EVALIDATION,
                                "Either PipelineDefinition or PipelineDefinitionS3Location must be specified.");
        return 0;
    }
    pb_pipedef *parsed = NULL;
    rc = pb_pipedef_parse(def, strlen(def), &parsed, err);
    pb_pipedef_free(parsed);
    return rc;
}

static int create_pipeline(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_sm_read_name(&v, in, "PipelineName", "pipelineName", true);
    const char *display = pb_sm_read_name(&v, in, "PipelineDisplayName", "pipelineDisplayName", false);
    const char *def =
        pb_v_str(&v, in, "PipelineDefinition", "pipelineDefinition", false, 1, PB_PIPEDEF_MAX_CHARS, PB_CS_ANY);
    pb_v_object(&v, in, "PipelineDefinitionS3Location", "pipelineDefinitionS3Location", false);
    const char *desc = pb_v_str(&v, in, "PipelineDescription", "pipelineDescription", false, 0, DESCRIPTION_MAX,
                                PB_CS_ANY);
    const char *token = pb_sm_read_token(&v, in, true);
    const char *role = pb_v_str(&v, in, "RoleArn", "roleArn", true, 20, 2048, PB_CS_SM_ROLE_ARN);
    int64_t max_parallel = pb_sm_read_parallelism(&v, in);
    pb_tag *tags = NULL;
    size_t ntags = 0;
    int rc = pb_sm_read_tags(&v, in, false, &tags, &ntags);
    if (rc)
        pb_error_set(err, rc, "out of memory");
    else
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *arn = NULL;
    pb_pipeline_rec existing = {0};
    if (rc || (rc = pb_sm_check_tags(tags, ntags, err)) || (rc = check_definition(in, def, true, err)))
        goto out;
    arn = pb_pipearn_pipeline(&ctx->scope, name);
    if (!arn) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    pb_pipeline_rec p = {.name = (char *)name,
                         .arn = arn,
                         .display_name = (char *)display,
                         .description = (char *)desc,
                         .role_arn = (char *)role,
                         .definition = (char *)def,
                         .version_id = 1,
                         .max_parallel = max_parallel,
                         .client_token = (char *)token,
                         .created_ms = ctx->now_ms,
                         .modified_ms = ctx->now_ms};
    rc = ctx->store->ops->pipeline_create(ctx->store, &ctx->scope, &p, tags, ntags);
    if (rc == PB_EEXISTS) {
        /* the same request again (same token) gets the same answer */
        rc = ctx->store->ops->pipeline_get(ctx->store, &ctx->scope, name, 0, &existing);
        if (!rc && existing.client_token && !strcmp(existing.client_token, token)) {
            *out = pb_sm_answer("PipelineArn", existing.arn);
            goto out;
        }
        if (!rc || rc == PB_ENOTFOUND) /* (deleted meanwhile: the name was taken all the same) */
            rc = pb_error_set(err, PB_EVALIDATION,
                              "Pipeline names must be unique within an AWS account and region. Pipeline with name "
                              "(%s) already exists.",
                              name);
        else
            pb_error_set(err, rc, "cannot read pipeline %s", name);
        goto out;
    }
    if (rc) {
        pb_error_set(err, rc, "cannot store pipeline %s", name);
        goto out;
    }
    *out = pb_sm_answer("PipelineArn", arn);
out:
    pb_pipeline_rec_free(&existing);
    pb_tags_free(tags, ntags);
    free(arn);
    return rc;
}

static int update_pipeline(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_sm_read_name(&v, in, "PipelineName", "pipelineName", true);
    const char *display = pb_sm_read_name(&v, in, "PipelineDisplayName", "pipelineDisplayName", false);
    const char *def =
        pb_v_str(&v, in, "PipelineDefinition", "pipelineDefinition", false, 1, PB_PIPEDEF_MAX_CHARS, PB_CS_ANY);
    pb_v_object(&v, in, "PipelineDefinitionS3Location", "pipelineDefinitionS3Location", false);
    const char *desc = pb_v_str(&v, in, "PipelineDescription", "pipelineDescription", false, 0, DESCRIPTION_MAX,
                                PB_CS_ANY);
    const char *role = pb_v_str(&v, in, "RoleArn", "roleArn", false, 20, 2048, PB_CS_SM_ROLE_ARN);
    int64_t max_parallel = pb_sm_read_parallelism(&v, in);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = check_definition(in, def, false, err)))
        return rc;
    pb_pipeline_rec changes = {.display_name = (char *)display,
                               .description = (char *)desc,
                               .role_arn = (char *)role,
                               .definition = (char *)def,
                               .max_parallel = max_parallel > 0 ? max_parallel : -1,
                               .modified_ms = ctx->now_ms};
    int64_t version = 0;
    rc = ctx->store->ops->pipeline_update(ctx->store, &ctx->scope, name, &changes, &version);
    if (rc == PB_ENOTFOUND)
        return pb_sm_pipeline_not_found(ctx, name, err);
    if (rc)
        return pb_error_set(err, rc, "cannot update pipeline %s", name);
    char *arn = pb_pipearn_pipeline(&ctx->scope, name);
    if (!arn)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    *out = pb_sm_answer("PipelineArn", arn);
    json_object_set_new(*out, "PipelineVersionId", json_integer((json_int_t)version));
    free(arn);
    return 0;
}

static int describe_pipeline(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_sm_read_name_or_arn(&v, in, true);
    int64_t version = pb_sm_read_version(&v, in);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_pipeline_rec p;
    if ((rc = pb_sm_pipeline_get(ctx, name, version, &p, err)))
        return rc;
    json_t *o = json_object();
    pb_json_set_str(o, "PipelineArn", p.arn);
    pb_json_set_str(o, "PipelineName", p.name);
    pb_json_set_str(o, "PipelineDisplayName", p.display_name ? p.display_name : p.name);
    pb_json_set_str(o, "PipelineDefinition", p.definition);
    pb_json_set_str(o, "PipelineDescription", p.description);
    pb_json_set_str(o, "RoleArn", p.role_arn);
    json_object_set_new(o, "PipelineStatus", json_string("Active"));
    pb_sm_set_time(o, "CreationTime", p.created_ms);
    pb_sm_set_time(o, "LastModifiedTime", p.modified_ms);
    pb_sm_set_time(o, "LastRunTime", p.last_run_ms);
    if (p.max_parallel > 0)
        json_object_set_new(o, "ParallelismConfiguration", pb_sm_parallelism_json(p.max_parallel));
    json_object_set_new(o, "PipelineVersionId", json_integer((json_int_t)p.version_id));
    pb_pipeline_rec_free(&p);
    *out = o;
    return 0;
}

static const char *const sort_pipelines_by[] = {"Name", "CreationTime", NULL};
static const char *const sort_orders[] = {"Ascending", "Descending", NULL};

/* The sort key of a pipeline: its lowercase name (unique), after the creation
 * time when sorting by time. */
static char *pipeline_key(const pb_pipeline_rec *p, bool by_name)
{
    size_t n = strlen(p->name);
    char *k = malloc(n + 32);
    if (!k)
        return NULL;
    int off = by_name ? 0 : snprintf(k, 32, "%020" PRId64 "\x1f", p->created_ms > 0 ? p->created_ms : 0);
    for (size_t i = 0; i <= n; i++)
        k[(size_t)off + i] = (char)tolower((unsigned char)p->name[i]);
    return k;
}

static int list_pipelines(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *prefix = pb_sm_read_name(&v, in, "PipelineNamePrefix", "pipelineNamePrefix", false);
    int64_t after_ms = 0, before_ms = 0;
    bool has_after = pb_v_time(&v, in, "CreatedAfter", "createdAfter", &after_ms);
    bool has_before = pb_v_time(&v, in, "CreatedBefore", "createdBefore", &before_ms);
    const char *sort_by = pb_v_enum(&v, in, "SortBy", "sortBy", false, sort_pipelines_by);
    const char *sort_order = pb_v_enum(&v, in, "SortOrder", "sortOrder", false, sort_orders);
    pb_page pg;
    pb_sm_read_page(&v, in, &pg, 1, PB_SM_PAGE_MAX, PB_SM_PAGE_DEFAULT);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    bool by_name = sort_by && !strcmp(sort_by, "Name");
    bool descending = !sort_order || !strcmp(sort_order, "Descending");
    char mode[64];
    snprintf(mode, sizeof mode, "pipelines.%s.%s", by_name ? "Name" : "CreationTime",
             descending ? "Descending" : "Ascending");

    pb_pipeline_rec *ps = NULL;
    size_t n = 0, count = 0;
    rc = ctx->store->ops->pipeline_list(ctx->store, &ctx->scope, &ps, &n);
    if (rc)
        return pb_error_set(err, rc, "cannot list pipelines");
    pb_sm_keys k;
    char *next = NULL;
    if ((rc = pb_sm_keys_init(&k, n, err)))
        goto out;
    size_t plen = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < n; i++) {
        if (prefix && strncasecmp(ps[i].name, prefix, plen) != 0)
            continue;
        if ((has_after && ps[i].created_ms <= after_ms) || (has_before && ps[i].created_ms >= before_ms))
            continue;
        if ((rc = pb_sm_keys_add(&k, i, pipeline_key(&ps[i], by_name), err)))
            goto out;
    }
    if ((rc = pb_sm_page(&pg, mode, descending, k.keys, k.n, k.order, &count, &next, err)))
        goto out;
    json_t *arr = json_array();
    for (size_t j = 0; j < count; j++) {
        const pb_pipeline_rec *p = &ps[k.row[k.order[j]]];
        json_t *o = json_object();
        pb_json_set_str(o, "PipelineArn", p->arn);
        pb_json_set_str(o, "PipelineName", p->name);
        pb_json_set_str(o, "PipelineDisplayName", p->display_name ? p->display_name : p->name);
        pb_json_set_str(o, "PipelineDescription", p->description);
        pb_json_set_str(o, "RoleArn", p->role_arn);
        pb_sm_set_time(o, "CreationTime", p->created_ms);
        pb_sm_set_time(o, "LastModifiedTime", p->modified_ms);
        pb_sm_set_time(o, "LastExecutionTime", p->last_run_ms);
        json_array_append_new(arr, o);
    }
    *out = json_object();
    json_object_set_new(*out, "PipelineSummaries", arr);
    pb_json_set_str(*out, "NextToken", next);
out:
    pb_sm_keys_free(&k);
    free(next);
    pb_pipeline_recs_free(ps, n);
    return rc;
}

static int delete_pipeline(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_sm_read_name(&v, in, "PipelineName", "pipelineName", true);
    pb_sm_read_token(&v, in, true);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    char *arn = pb_pipearn_pipeline(&ctx->scope, name);
    if (!arn)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    rc = ctx->store->ops->pipeline_delete(ctx->store, &ctx->scope, name);
    if (rc == PB_ENOTFOUND)
        rc = pb_sm_pipeline_not_found(ctx, name, err);
    else if (rc == PB_ECONFLICT)
        rc = pb_error_set(err, PB_ESM_CONFLICT, "Pipeline '%s' has running executions; stop them first.", arn);
    else if (rc)
        pb_error_set(err, rc, "cannot delete pipeline %s", name);
    else
        *out = pb_sm_answer("PipelineArn", arn);
    free(arn);
    return rc;
}

const pb_api_op pb_sagemaker_pipeline_ops[] = {
    /* writes = false: the API's write lock orders EventBridge rules with the
     * registry; the store's transactions order these */
    {"CreatePipeline", create_pipeline, false},
    {"UpdatePipeline", update_pipeline, false},
    {"DescribePipeline", describe_pipeline, false},
    {"ListPipelines", list_pipelines, false},
    {"DeletePipeline", delete_pipeline, false},
    {NULL, NULL, false},
};
