/*
 * events_targets.c — PutTargets, RemoveTargets, ListTargetsByRule,
 * ListRuleNamesByTarget (AWS-SPEC §2.2, §2.3).
 *
 * Targets are validated member by member with AWS's limits and stored whole
 * (as the client sent them) so that listing echoes every member back. Any
 * target ARN is accepted, as AWS does, with the members of every target kind
 * (EcsParameters, KinesisParameters, ...): which kinds can be invoked is
 * delivery's business, and an invocation pipebridge cannot make fails there
 * with its reason. A SageMaker pipeline target needs a RoleArn, as on AWS.
 * Placeholders of an InputTemplate are checked with the scanner that
 * substitutes them (bus/pb_transform.h); JSON paths are not checked here
 * (AWS-SPEC §2.2).
 */
#include "api_internal.h"

#include "bus/pb_transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Target members pipebridge stores and echoes (AWS-SPEC §2.3): the
 * common ones, and the parameters of the other target kinds, which are
 * stored as sent (only their type is checked). */
static const char *const known_members[] = {"Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer",
                                            "RetryPolicy", "DeadLetterConfig", "SageMakerPipelineParameters",
                                            NULL};
static const char *const other_params[] = {"KinesisParameters", "RunCommandParameters", "EcsParameters",
                                           "BatchParameters", "SqsParameters", "HttpParameters",
                                           "RedshiftDataParameters", "AppSyncParameters", NULL};

/* arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME */
static bool pipeline_arn(const char *arn)
{
    if (strncmp(arn, "arn:aws:sagemaker:", 18) != 0)
        return false;
    const char *p = arn + 18;
    const char *c1 = strchr(p, ':');
    if (!c1 || c1 == p)
        return false;
    const char *acct = c1 + 1;
    const char *c2 = strchr(acct, ':');
    if (!c2 || c2 - acct != 12)
        return false;
    if (strncmp(c2 + 1, "pipeline/", 9) != 0 || !c2[10])
        return false;
    return strchr(c2 + 10, '/') == NULL;
}

static bool param_name_ok(const char *s)
{
    /* ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ */
    size_t n = strlen(s);
    if (!n || s[n - 1] == '-' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static int check_target(pb_vctx *v, json_t *t, size_t i, pb_error *err, bool *fatal)
{
    char p[256], q[320];
#define PATH(member) (snprintf(p, sizeof p, "targets.%zu.member.%s", i + 1, member), p)
    if (!json_is_object(t)) {
        pb_v_fail(v, PATH("id"), NULL, "Member must not be null");
        return 0;
    }
    const char *id = pb_v_str(v, t, "Id", PATH("id"), true, 1, 64, PB_CS_NAME);
    const char *arn = pb_v_str(v, t, "Arn", PATH("arn"), true, 1, 1600, PB_CS_ANY);
    const char *role = pb_v_str(v, t, "RoleArn", PATH("roleArn"), false, 1, 1600, PB_CS_ANY);
    const char *input = pb_v_str(v, t, "Input", PATH("input"), false, 0, 8192, PB_CS_ANY);
    const char *ipath = pb_v_str(v, t, "InputPath", PATH("inputPath"), false, 0, 256, PB_CS_ANY);
    json_t *it = pb_v_object(v, t, "InputTransformer", PATH("inputTransformer"), false);
    const char *tmpl = NULL;
    json_t *map = NULL;
    if (it) {
        tmpl = pb_v_str(v, it, "InputTemplate", PATH("inputTransformer.inputTemplate"), true, 1, 8192, PB_CS_ANY);
        map = pb_v_object(v, it, "InputPathsMap", PATH("inputTransformer.inputPathsMap"), false);
        if (map) {
            if (json_object_size(map) > 100)
                pb_v_fail(v, PATH("inputTransformer.inputPathsMap"), "{...}",
                          "Member must have length less than or equal to 100");
            const char *k;
            json_t *val;
            json_object_foreach(map, k, val)
            {
                snprintf(q, sizeof q, "targets.%zu.member.inputTransformer.inputPathsMap", i + 1);
                size_t kl = strlen(k);
                bool ok = kl >= 1 && kl <= 256;
                for (size_t c = 0; ok && c < kl; c++)
                    ok = (k[c] >= 'a' && k[c] <= 'z') || (k[c] >= 'A' && k[c] <= 'Z') || (k[c] >= '0' && k[c] <= '9') ||
                         k[c] == '_' || k[c] == '-';
                if (!ok)
                    pb_v_fail(v, q, k, "Map keys must satisfy constraint: [Member must satisfy regular expression "
                                       "pattern: [A-Za-z0-9\\_\\-]+]");
                if (!json_is_string(val) || strlen(json_string_value(val)) > 256)
                    pb_v_fail(v, q, k, "Map value must satisfy constraint: [Member must have length less than or "
                                       "equal to 256]");
            }
        }
    }
    json_t *rp = pb_v_object(v, t, "RetryPolicy", PATH("retryPolicy"), false);
    if (rp) {
        pb_v_int(v, rp, "MaximumRetryAttempts", PATH("retryPolicy.maximumRetryAttempts"), false, 0, 185, NULL);
        pb_v_int(v, rp, "MaximumEventAgeInSeconds", PATH("retryPolicy.maximumEventAgeInSeconds"), false, 60,
                 86400, NULL);
    }
    json_t *dlq = pb_v_object(v, t, "DeadLetterConfig", PATH("deadLetterConfig"), false);
    if (dlq)
        pb_v_str(v, dlq, "Arn", PATH("deadLetterConfig.arn"), false, 1, 1600, PB_CS_ANY);
    json_t *smp = pb_v_object(v, t, "SageMakerPipelineParameters", PATH("sageMakerPipelineParameters"), false);
    if (smp) {
        json_t *list = pb_v_array(v, smp, "PipelineParameterList",
                                  PATH("sageMakerPipelineParameters.pipelineParameterList"), false, 0, 200);
        for (size_t k = 0; list && k < json_array_size(list) && k < 200; k++) {
            json_t *e = json_array_get(list, k);
            snprintf(q, sizeof q, "targets.%zu.member.sageMakerPipelineParameters.pipelineParameterList.%zu.member.name",
                     i + 1, k + 1);
            const char *nm = pb_v_str(v, json_is_object(e) ? e : NULL, "Name", q, true, 1, 256, PB_CS_ANY);
            if (nm && !param_name_ok(nm))
                pb_v_fail(v, q, nm, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$");
            snprintf(q, sizeof q,
                     "targets.%zu.member.sageMakerPipelineParameters.pipelineParameterList.%zu.member.value", i + 1,
                     k + 1);
            pb_v_str(v, json_is_object(e) ? e : NULL, "Value", q, true, 0, 1024, PB_CS_ANY);
        }
    }
    for (size_t k = 0; other_params[k]; k++) {
        char lc[64];
        snprintf(lc, sizeof lc, "%s", other_params[k]);
        lc[0] = (char)(lc[0] - 'A' + 'a');
        pb_v_object(v, t, other_params[k], PATH(lc), false);
    }
#undef PATH
    if (v->count || v->type_error || !id || !arn)
        return 0; /* report shape errors first */
    if (input) {
        json_error_t je;
        json_t *parsed = json_loads(input, JSON_DECODE_ANY, &je);
        if (!parsed) {
            *fatal = true;
            return pb_error_set(err, PB_EVALIDATION, "Input for target %s is not valid JSON text.", id);
        }
        json_decref(parsed);
    }
    if ((input != NULL) + (ipath != NULL) + (it != NULL) > 1) {
        *fatal = true;
        return pb_error_set(err, PB_EVALIDATION, "Only one of Input, InputPath, or InputTransformer must be provided for target %s.", id);
    }
    char bad[300];
    if (tmpl && pb_transform_bad_placeholder(tmpl, map, bad, sizeof bad)) {
        *fatal = true;
        return pb_error_set(err, PB_EVALIDATION, "InputTemplate for target %s contains invalid placeholder %s.", id,
                            bad);
    }
    const char *member;
    json_t *mv;
    json_object_foreach(t, member, mv)
    {
        bool known = false;
        for (size_t k = 0; !known && known_members[k]; k++)
            known = !strcmp(member, known_members[k]);
        for (size_t k = 0; !known && other_params[k]; k++)
            known = !strcmp(member, other_params[k]);
        if (!known) {
            *fatal = true;
            return pb_error_set(err, PB_ESERIALIZATION, "Unknown member %s in target %s", member, id);
        }
    }
    if (!role && pipeline_arn(arn)) {
        /* AWS's wording for targets that need a role (CodePipeline, Step Functions, ...) */
        *fatal = true;
        return pb_error_set(err, PB_EVALIDATION, "RoleArn is required for target %s.", arn);
    }
    return 0;
}

static int rule_missing(pb_api_ctx *ctx, const char *bus, const char *rule, pb_error *err)
{
    pb_bus_rec b = {0};
    int rc = ctx->store->ops->bus_get(ctx->store, &ctx->scope, bus, &b);
    pb_bus_rec_free(&b);
    if (rc == PB_ENOTFOUND)
        return pb_error_set(err, rc, "Event bus %s does not exist.", bus);
    return pb_error_set(err, PB_ENOTFOUND, "Rule %s does not exist on EventBus %s.", rule, bus);
}

static json_t *no_failures(void)
{
    json_t *o = json_object();
    json_object_set_new(o, "FailedEntryCount", json_integer(0));
    json_object_set_new(o, "FailedEntries", json_array());
    return o;
}

static int put_targets(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *rule = pb_v_str(&v, in, "Rule", "rule", true, 1, 64, PB_CS_NAME);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    json_t *targets = pb_v_array(&v, in, "Targets", "targets", true, 1, 100);
    int rc = 0;
    bool fatal = false;
    size_t n = targets ? json_array_size(targets) : 0;
    for (size_t i = 0; i < n && i < 100 && !fatal; i++)
        rc = check_target(&v, json_array_get(targets, i), i, err, &fatal);
    if (!fatal)
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_target_rec *recs = calloc(n, sizeof *recs);
    if (!recs)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *t = json_array_get(targets, i);
        recs[i].id = (char *)json_string_value(json_object_get(t, "Id"));
        recs[i].arn = (char *)json_string_value(json_object_get(t, "Arn"));
        recs[i].json = json_dumps(t, JSON_COMPACT);
        if (!recs[i].json)
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    if (!rc) {
        rc = ctx->store->ops->targets_put(ctx->store, &ctx->scope, bus, rule, recs, n, PB_MAX_TARGETS);
        if (rc == PB_ENOTFOUND)
            rule_missing(ctx, bus, rule, err);
        else if (rc == PB_ELIMIT)
            pb_error_set(err, rc, "The requested resource exceeds the maximum number allowed.");
        else if (rc)
            pb_error_set(err, rc, "cannot store targets of rule %s", rule);
        else
            pb_delivery_rule_changed(ctx->delivery, &ctx->scope, bus, rule); /* events from now on see them */
    }
    for (size_t i = 0; i < n; i++)
        free(recs[i].json);
    free(recs);
    if (!rc)
        *out = no_failures();
    return rc;
}

static int remove_targets(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *rule = pb_v_str(&v, in, "Rule", "rule", true, 1, 64, PB_CS_NAME);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    json_t *ids = pb_v_array(&v, in, "Ids", "ids", true, 1, 100);
    pb_v_bool(&v, in, "Force", "force");
    size_t n = ids ? json_array_size(ids) : 0;
    const char *idv[100];
    for (size_t i = 0; i < n && i < 100; i++) {
        json_t *e = json_array_get(ids, i);
        char p[64];
        snprintf(p, sizeof p, "ids.%zu.member", i + 1);
        idv[i] = json_is_string(e) ? json_string_value(e) : NULL;
        if (!idv[i])
            pb_v_fail(&v, p, NULL, "Member must not be null");
        else if (pb_utf8_chars(idv[i]) < 1)
            pb_v_fail(&v, p, idv[i], "Member must have length greater than or equal to 1");
        else if (pb_utf8_chars(idv[i]) > 64)
            pb_v_fail(&v, p, idv[i], "Member must have length less than or equal to 64");
        else if (strspn(idv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(idv[i]))
            pb_v_fail(&v, p, idv[i], "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+");
    }
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_rule_rec r = {0};
    rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, rule, &r);
    pb_rule_rec_free(&r);
    if (rc == PB_ENOTFOUND)
        return rule_missing(ctx, bus, rule, err);
    if (!rc)
        rc = ctx->store->ops->targets_remove(ctx->store, &ctx->scope, bus, rule, idv, n);
    if (rc)
        return pb_error_set(err, rc, "cannot remove targets of rule %s", rule);
    pb_delivery_rule_changed(ctx->delivery, &ctx->scope, bus, rule);
    *out = no_failures();
    return 0;
}

static int list_targets(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *rule = pb_v_str(&v, in, "Rule", "rule", true, 1, 64, PB_CS_NAME);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    pb_page pg;
    pb_read_page(&v, in, &pg);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    pb_rule_rec r = {0};
    rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, rule, &r);
    pb_rule_rec_free(&r);
    if (rc == PB_ENOTFOUND)
        return rule_missing(ctx, bus, rule, err);
    pb_target_rec *ts = NULL;
    size_t n = 0;
    bool more = false;
    if (!rc)
        rc = ctx->store->ops->targets_list(ctx->store, &ctx->scope, bus, rule, pb_page_after(&pg), pg.limit, &ts, &n,
                                           &more);
    if (rc)
        return pb_error_set(err, rc, "cannot list targets of rule %s", rule);
    *out = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *t = json_loads(ts[i].json, 0, &je);
        if (!t) {
            json_decref(*out);
            *out = NULL;
            pb_target_recs_free(ts, n);
            return pb_error_set(err, PB_EINTERNAL, "stored target %s of rule %s cannot be read", ts[i].id, rule);
        }
        json_array_append_new(arr, t);
    }
    json_object_set_new(*out, "Targets", arr);
    pb_set_next_token(*out, more, n ? ts[n - 1].id : NULL);
    pb_target_recs_free(ts, n);
    return 0;
}

static int rules_by_target(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *arn = pb_v_str(&v, in, "TargetArn", "targetArn", true, 1, 1600, PB_CS_ANY);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    pb_page pg;
    pb_read_page(&v, in, &pg);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    pb_bus_rec b = {0};
    rc = ctx->store->ops->bus_get(ctx->store, &ctx->scope, bus, &b);
    pb_bus_rec_free(&b);
    if (rc == PB_ENOTFOUND)
        return pb_error_set(err, rc, "Event bus %s does not exist.", bus);
    char **names = NULL;
    size_t n = 0;
    bool more = false;
    if (!rc)
        rc = ctx->store->ops->rules_by_target(ctx->store, &ctx->scope, bus, arn, pb_page_after(&pg), pg.limit, &names,
                                              &n, &more);
    if (rc)
        return pb_error_set(err, rc, "cannot list rules by target");
    *out = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    json_object_set_new(*out, "RuleNames", arr);
    pb_set_next_token(*out, more, n ? names[n - 1] : NULL);
    pb_names_free(names, n);
    return 0;
}

const pb_api_op pb_events_target_ops[] = {
    {"PutTargets", put_targets, true},
    {"RemoveTargets", remove_targets, true},
    {"ListTargetsByRule", list_targets, false},
    {"ListRuleNamesByTarget", rules_by_target, false},
    {NULL, NULL, false},
};
