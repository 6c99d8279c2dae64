/*
 * events_tags.c — TagResource, UntagResource, ListTagsForResource for rules
 * and buses (AWS-SPEC §2.2). The resource ARN must name a rule or bus of the
 * caller's account and region that exists.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks that arn names an existing rule or bus of the caller and sets
 * *canonical (malloc'd) to the resource's own ARN, under which its tags are
 * kept: "rule/default/r" and "rule/r" name one rule and share its tags. */
static int check_resource(pb_api_ctx *ctx, const char *arn, char **canonical, pb_error *err)
{
    *canonical = NULL;
    char prefix[256];
    snprintf(prefix, sizeof prefix, "arn:aws:events:%s:%s:", ctx->scope.region, ctx->scope.account);
    size_t pl = strlen(prefix);
    if (strncmp(arn, prefix, pl) != 0)
        return pb_error_set(err, PB_ENOTFOUND, "Resource %s does not exist.", arn);
    const char *res = arn + pl;
    if (!strncmp(res, "event-bus/", 10)) {
        pb_bus_rec b = {0};
        int rc = ctx->store->ops->bus_get(ctx->store, &ctx->scope, res + 10, &b);
        pb_bus_rec_free(&b);
        if (rc == PB_ENOTFOUND)
            return pb_error_set(err, rc, "Event bus %s does not exist.", res + 10);
        if (rc)
            return pb_error_set(err, rc, "cannot read event bus");
        *canonical = pb_arn_bus(&ctx->scope, res + 10);
        return *canonical ? 0 : pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    if (!strncmp(res, "rule/", 5)) {
        char bus[300] = "default", rule[300];
        const char *slash = strchr(res + 5, '/');
        if (slash) {
            snprintf(bus, sizeof bus, "%.*s", (int)(slash - res - 5), res + 5);
            snprintf(rule, sizeof rule, "%s", slash + 1);
        } else {
            snprintf(rule, sizeof rule, "%s", res + 5);
        }
        pb_rule_rec r = {0};
        int rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, rule, &r);
        bool managed = !rc && r.managed_by;
        pb_rule_rec_free(&r);
        if (rc == PB_ENOTFOUND)
            return pb_error_set(err, rc, "Rule %s does not exist on EventBus %s.", rule, bus);
        if (rc)
            return pb_error_set(err, rc, "cannot read rule");
        if (managed)
            return pb_error_set(err, PB_EMANAGED, "Rule %s is managed by another service.", rule);
        *canonical = pb_arn_rule(&ctx->scope, bus, rule);
        return *canonical ? 0 : pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    return pb_error_set(err, PB_ENOTFOUND, "Resource %s does not exist.", arn);
}

static int tag_resource(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_v_str(&v, in, "ResourceARN", "resourceARN", true, 1, 1600, PB_CS_ANY);
    pb_v_array(&v, in, "Tags", "tags", true, 0, 0);
    pb_tag *tags = NULL;
    size_t n = 0;
    int rc = pb_read_tags(&v, in, "Tags", "tags", &tags, &n);
    if (!rc)
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (!rc)
        rc = check_resource(ctx, arn, &canon, err);
    if (!rc) {
        rc = ctx->store->ops->tags_set(ctx->store, canon, tags, n, PB_MAX_TAGS);
        if (rc == PB_ELIMIT)
            pb_error_set(err, rc, "A resource can have at most %d tags.", PB_MAX_TAGS);
        else if (rc)
            pb_error_set(err, rc, "cannot store tags");
    }
    pb_tags_free(tags, n);
    free(canon);
    if (!rc)
        *out = json_object();
    return rc;
}

static int untag_resource(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_v_str(&v, in, "ResourceARN", "resourceARN", true, 1, 1600, PB_CS_ANY);
    json_t *keys = pb_v_array(&v, in, "TagKeys", "tagKeys", true, 0, 0);
    size_t n = keys ? json_array_size(keys) : 0;
    const char **kv = calloc(n ? n : 1, sizeof *kv);
    if (!kv) {
        pb_v_free(&v);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(keys, i);
        char p[64];
        snprintf(p, sizeof p, "tagKeys.%zu.member", i + 1);
        kv[i] = json_is_string(e) ? json_string_value(e) : NULL;
        if (!kv[i])
            pb_v_fail(&v, p, NULL, "Member must not be null");
        else if (pb_utf8_chars(kv[i]) < 1)
            pb_v_fail(&v, p, kv[i], "Member must have length greater than or equal to 1");
        else if (pb_utf8_chars(kv[i]) > 128)
            pb_v_fail(&v, p, kv[i], "Member must have length less than or equal to 128");
    }
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (!rc)
        rc = check_resource(ctx, arn, &canon, err);
    if (!rc && (rc = ctx->store->ops->tags_remove(ctx->store, canon, kv, n)))
        pb_error_set(err, rc, "cannot remove tags");
    free(canon);
    free(kv);
    if (!rc)
        *out = json_object();
    return rc;
}

static int list_tags(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *arn = pb_v_str(&v, in, "ResourceARN", "resourceARN", true, 1, 1600, PB_CS_ANY);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *canon = NULL;
    if (rc || (rc = check_resource(ctx, arn, &canon, err)))
        return rc;
    pb_tag *tags = NULL;
    size_t n = 0;
    rc = ctx->store->ops->tags_list(ctx->store, canon, &tags, &n);
    free(canon);
    if (rc)
        return pb_error_set(err, rc, "cannot list tags");
    *out = json_object();
    json_object_set_new(*out, "Tags", pb_tags_json(tags, n));
    pb_tags_free(tags, n);
    return 0;
}

const pb_api_op pb_events_tag_ops[] = {
    {"TagResource", tag_resource, true},
    {"UntagResource", untag_resource, true},
    {"ListTagsForResource", list_tags, false},
    {NULL, NULL, false},
};
