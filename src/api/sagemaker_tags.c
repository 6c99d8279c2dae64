/*
 * sagemaker_tags.c — AddTags, DeleteTags and ListTags (SageMaker's tagging
 * operations) for pipelines.
 *
 * The ResourceArn must name an existing pipeline of the caller; any case of
 * its name is accepted and the tags are kept under the pipeline's own
 * (lowercase) ARN, which is also what CreatePipeline's Tags and
 * DeletePipeline use. Other SageMaker resource types, executions included,
 * are refused as unsupported. The tag pipebridge:MaxConcurrentExecutions
 * (pb_runner.h) is checked here, when it is set.
 */
#include "sagemaker.h"

#include "pipeline/pb_runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOURCE_ARN_MAX 256

/* The canonical ARN (malloc'd) of the pipeline that arn names. */
static int check_resource(pb_api_ctx *ctx, const char *arn, char **canonical, pb_error *err)
{
    *canonical = NULL;
    /* arn:PARTITION:sagemaker:REGION:ACCOUNT:RESOURCE (the pattern was checked) */
    const char *res = arn;
    for (int i = 0; i < 5 && res; i++)
        if ((res = strchr(res, ':')))
            res++;
    if (!res)
        return pb_error_set(err, PB_EVALIDATION, "Resource ARN %s is not valid.", arn);
    if (strncmp(res, "pipeline/", 9) != 0) {
        size_t tl = strcspn(res, "/:");
        return pb_error_set(err, PB_EUNSUPPORTED,
                            "Tags on %.*s resources are not supported by pipebridge: only pipelines "
                            "(arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME) have tags.",
                            (int)(tl > 64 ? 64 : tl), res);
    }
    if (strchr(res + 9, '/'))
        return pb_error_set(err, PB_EUNSUPPORTED,
                            "Tags on %s are not supported by pipebridge: only pipelines "
                            "(arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME) have tags.",
                            strstr(res, "/execution/") ? "pipeline executions" : "this resource");
    pb_pipeline_rec p;
    int rc = pb_sm_pipeline_get(ctx, arn, 0, &p, err);
    if (rc)
        return rc;
    *canonical = strdup(p.arn);
    pb_pipeline_rec_free(&p);
    return *canonical ? 0 : pb_error_set(err, PB_ENOMEM, "out of memory");
}

static const char *read_arn(pb_vctx *v, json_t *in)
{
    return pb_v_str(v, in, "ResourceArn", "resourceArn", true, 0, RESOURCE_ARN_MAX, PB_CS_SM_RESOURCE_ARN);
}

static int add_tags(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = read_arn(&v, in);
    pb_tag *tags = NULL;
    size_t n = 0;
    int rc = pb_sm_read_tags(&v, in, true, &tags, &n);
    if (rc)
        pb_error_set(err, rc, "out of memory");
    else
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (rc || (rc = pb_sm_check_tags(tags, n, err)) || (rc = check_resource(ctx, arn, &canon, err)))
        goto out;
    rc = ctx->store->ops->tags_set(ctx->store, canon, tags, n, PB_MAX_TAGS);
    if (rc == PB_ELIMIT) {
        rc = pb_error_set(err, PB_ESM_LIMIT, "A resource can have at most %d tags.", PB_MAX_TAGS);
        goto out;
    }
    if (rc) {
        pb_error_set(err, rc, "cannot store tags");
        goto out;
    }
    pb_runner_pipeline_changed(ctx->runner, &ctx->scope, canon); /* a higher concurrency limit */
    *out = json_object();
    json_object_set_new(*out, "Tags", pb_tags_json(tags, n));
out:
    pb_tags_free(tags, n);
    free(canon);
    return rc;
}

static int delete_tags(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = read_arn(&v, in);
    json_t *keys = pb_v_array(&v, in, "TagKeys", "tagKeys", true, 1, PB_MAX_TAGS);
    size_t n = keys ? json_array_size(keys) : 0;
    if (n > PB_MAX_TAGS)
        n = 0; /* recorded as a violation */
    const char **kv = calloc(n ? n : 1, sizeof *kv);
    if (!kv) {
        pb_v_free(&v);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "tagKeys.%zu.member", i + 1);
        json_t *e = json_array_get(keys, i);
        if (!json_is_string(e)) {
            pb_v_fail(&v, p, NULL, "Member must not be null");
            continue;
        }
        /* pb_v_str reads members of objects: wrap the string in one */
        json_t *w = json_pack("{sO}", "k", e);
        const char *k = w ? pb_v_str(&v, w, "k", p, true, 1, 128, PB_CS_SM_TAG) : NULL;
        json_decref(w); /* e still holds the string */
        kv[i] = k ? json_string_value(e) : NULL;
    }
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (!rc && !(rc = check_resource(ctx, arn, &canon, err))) {
        rc = ctx->store->ops->tags_remove(ctx->store, canon, kv, n);
        if (rc) {
            pb_error_set(err, rc, "cannot remove tags");
        } else {
            pb_runner_pipeline_changed(ctx->runner, &ctx->scope, canon); /* the limit may be gone */
            *out = json_object();
        }
    }
    free(canon);
    free(kv);
    return rc;
}

static int list_tags(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = read_arn(&v, in);
    pb_page pg;
    pb_sm_read_page(&v, in, &pg, PB_SM_TAGS_PAGE_MIN, 0, PB_SM_TAGS_PAGE_MIN);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (rc || (rc = pb_page_decode(&pg, err)) || (rc = check_resource(ctx, arn, &canon, err)))
        return rc;
    pb_tag *tags = NULL;
    size_t n = 0, count = 0;
    rc = ctx->store->ops->tags_list(ctx->store, canon, &tags, &n);
    free(canon);
    if (rc)
        return pb_error_set(err, rc, "cannot list tags");
    pb_sm_keys k;
    char *next = NULL;
    if ((rc = pb_sm_keys_init(&k, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((rc = pb_sm_keys_addf(&k, i, err, "%s", tags[i].key)))
            goto out;
    if ((rc = pb_sm_page(&pg, "tags", false, k.keys, k.n, k.order, &count, &next, err)))
        goto out;
    json_t *arr = json_array();
    for (size_t j = 0; j < count; j++) {
        const pb_tag *t = &tags[k.row[k.order[j]]];
        json_t *o = json_object();
        json_object_set_new(o, "Key", json_string(t->key));
        json_object_set_new(o, "Value", json_string(t->value ? t->value : ""));
        json_array_append_new(arr, o);
    }
    *out = json_object();
    json_object_set_new(*out, "Tags", arr);
    pb_json_set_str(*out, "NextToken", next);
out:
    pb_sm_keys_free(&k);
    free(next);
    pb_tags_free(tags, n);
    return rc;
}

const pb_api_op pb_sagemaker_tag_ops[] = {
    /* writes = false: the store's transactions order these */
    {"AddTags", add_tags, false},
    {"DeleteTags", delete_tags, false},
    {"ListTags", list_tags, false},
    {NULL, NULL, false},
};
