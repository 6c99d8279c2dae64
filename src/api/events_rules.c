/*
 * events_rules.c — PutRule, DescribeRule, ListRules, DeleteRule, EnableRule,
 * DisableRule and TestEventPattern (AWS-SPEC §2.2).
 *
 * Every change is written to the store first (one transaction) and then
 * applied to the registry, so what matching sees never runs ahead of what is
 * durable. Patterns are compiled before anything is written: an invalid
 * pattern changes nothing.
 */
#include "api_internal.h"

#include "schedule/pb_schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_MAX 4096

static const char *const states[] = {"ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", NULL};

static bool enabled(const char *state) { return state && strcmp(state, "DISABLED") != 0; }

/* The bus must exist: default always does. */
static int check_bus(pb_api_ctx *ctx, const char *bus, pb_error *err)
{
    pb_bus_rec b = {0};
    int rc = ctx->store->ops->bus_get(ctx->store, &ctx->scope, bus, &b);
    pb_bus_rec_free(&b);
    if (rc == PB_ENOTFOUND)
        return pb_error_set(err, rc, "Event bus %s does not exist.", bus);
    if (rc)
        return pb_error_set(err, rc, "cannot read event bus %s", bus);
    return 0;
}

static int not_found(pb_error *err, const char *rule, const char *bus)
{
    return pb_error_set(err, PB_ENOTFOUND, "Rule %s does not exist on EventBus %s.", rule, bus);
}

static int put_rule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *name = pb_v_str(&v, in, "Name", "name", true, 1, 64, PB_CS_NAME);
    const char *sched = pb_v_str(&v, in, "ScheduleExpression", "scheduleExpression", false, 0, 256, PB_CS_ANY);
    const char *pattern = pb_v_str(&v, in, "EventPattern", "eventPattern", false, 0, PATTERN_MAX, PB_CS_ANY);
    const char *state = pb_v_enum(&v, in, "State", "state", false, states);
    const char *desc = pb_v_str(&v, in, "Description", "description", false, 0, 512, PB_CS_ANY);
    const char *role = pb_v_str(&v, in, "RoleArn", "roleArn", false, 1, 1600, PB_CS_ANY);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    pb_tag *tags = NULL;
    size_t ntags = 0;
    int rc = pb_read_tags(&v, in, "Tags", "tags", &tags, &ntags);
    if (!rc)
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    char *arn = NULL;
    pb_pattern *compiled = NULL;
    if (rc)
        goto out;
    if (!pattern && !sched) {
        rc = pb_error_set(err, PB_EVALIDATION, "Parameter(s) EventPattern or ScheduleExpression must be specified.");
        goto out;
    }
    if (sched) {
        if (strcmp(bus, "default") != 0) {
            rc = pb_error_set(err, PB_EVALIDATION, "ScheduleExpression is supported only on the default event bus.");
            goto out;
        }
        pb_schedule s;
        if ((rc = pb_schedule_parse(sched, strlen(sched), &s, err)))
            goto out;
    }
    if (pattern && (rc = pb_pattern_compile(pattern, strlen(pattern), &compiled, err)))
        goto out;
    if ((rc = check_bus(ctx, bus, err)))
        goto out;
    arn = pb_arn_rule(&ctx->scope, bus, name);
    if (!arn) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    /* under --clock manual a rule is created at the manual time: rate rules count from it */
    int64_t now = pb_scheduler_is_manual(ctx->scheduler) ? pb_scheduler_now_ms(ctx->scheduler) : ctx->now_ms;
    pb_rule_rec r = {.bus = bus,
                     .name = (char *)name,
                     .arn = arn,
                     .event_pattern = (char *)pattern,
                     .schedule = (char *)sched,
                     .state = (char *)(state ? state : "ENABLED"),
                     .description = (char *)desc,
                     .role_arn = (char *)role,
                     .created_by = (char *)ctx->scope.account,
                     .created_ms = now,
                     .modified_ms = now};
    bool created = false;
    rc = ctx->store->ops->rule_put(ctx->store, &ctx->scope, &r, tags, ntags, &created);
    if (rc == PB_ENOTFOUND) {
        pb_error_set(err, rc, "Event bus %s does not exist.", bus);
        goto out;
    }
    if (rc) {
        pb_error_set(err, rc, "cannot store rule %s", name);
        goto out;
    }
    rc = pb_registry_set_rule(ctx->registry, &ctx->scope, bus, name, enabled(r.state) ? compiled : NULL, err);
    if (rc)
        goto out;
    pb_scheduler_rule_changed(ctx->scheduler, &ctx->scope, bus, name);
    *out = json_object();
    json_object_set_new(*out, "RuleArn", json_string(arn));
out:
    free(arn);
    pb_pattern_free(compiled);
    pb_tags_free(tags, ntags);
    return rc;
}

/* Reads Name and EventBusName, the two members most rule operations take. */
static int read_name_bus(json_t *in, const pb_scope *sc, const char **name, char *bus, size_t cap, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    *name = pb_v_str(&v, in, "Name", "name", true, 1, 64, PB_CS_NAME);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", sc, bus, cap);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    return rc;
}

static json_t *rule_json(const pb_rule_rec *r, bool describe)
{
    json_t *o = json_object();
    json_object_set_new(o, "Name", json_string(r->name));
    json_object_set_new(o, "Arn", json_string(r->arn));
    pb_json_set_str(o, "EventPattern", r->event_pattern);
    pb_json_set_str(o, "ScheduleExpression", r->schedule);
    pb_json_set_str(o, "State", r->state);
    pb_json_set_str(o, "Description", r->description);
    pb_json_set_str(o, "RoleArn", r->role_arn);
    pb_json_set_str(o, "ManagedBy", r->managed_by);
    json_object_set_new(o, "EventBusName", json_string(r->bus));
    if (describe)
        pb_json_set_str(o, "CreatedBy", r->created_by);
    return o;
}

static int describe_rule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    const char *name;
    char bus[1700];
    int rc = read_name_bus(in, &ctx->scope, &name, bus, sizeof bus, err);
    if (rc)
        return rc;
    pb_rule_rec r = {0};
    rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, name, &r);
    if (rc == PB_ENOTFOUND)
        return check_bus(ctx, bus, err) ? PB_ENOTFOUND : not_found(err, name, bus);
    if (rc)
        return pb_error_set(err, rc, "cannot read rule %s", name);
    *out = rule_json(&r, true);
    /* ours: when an enabled schedule rule fires next (omitted when it never will) */
    int64_t next = enabled(r.state) && r.schedule ? pb_scheduler_next_fire_ms(ctx->scheduler, &ctx->scope, bus, name)
                                                  : -1;
    if (next >= 0)
        json_object_set_new(*out, "NextFireTime", json_integer(next / 1000));
    pb_rule_rec_free(&r);
    return 0;
}

static int list_rules(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *prefix = pb_v_str(&v, in, "NamePrefix", "namePrefix", false, 1, 64, PB_CS_NAME);
    pb_page pg;
    pb_read_page(&v, in, &pg);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    if ((rc = check_bus(ctx, bus, err)))
        return rc;
    pb_rule_rec *rs = NULL;
    size_t n = 0;
    bool more = false;
    rc = ctx->store->ops->rule_list(ctx->store, &ctx->scope, bus, prefix, pb_page_after(&pg), pg.limit, &rs, &n,
                                    &more);
    if (rc)
        return pb_error_set(err, rc, "cannot list rules");
    *out = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, rule_json(&rs[i], false));
    json_object_set_new(*out, "Rules", arr);
    pb_set_next_token(*out, more, n ? rs[n - 1].name : NULL);
    pb_rule_recs_free(rs, n);
    return 0;
}

static int delete_rule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char bus[1700];
    const char *name = pb_v_str(&v, in, "Name", "name", true, 1, 64, PB_CS_NAME);
    pb_read_bus_name(&v, in, "EventBusName", "eventBusName", &ctx->scope, bus, sizeof bus);
    bool force = pb_v_bool(&v, in, "Force", "force");
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    if ((rc = check_bus(ctx, bus, err)))
        return rc;
    pb_rule_rec r = {0};
    rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, name, &r);
    if (rc == PB_ENOTFOUND) {
        *out = json_object(); /* deleting a rule that does not exist succeeds */
        return 0;
    }
    if (rc)
        return pb_error_set(err, rc, "cannot read rule %s", name);
    bool managed = r.managed_by != NULL;
    pb_rule_rec_free(&r);
    if (managed && !force)
        return pb_error_set(err, PB_EMANAGED, "Rule %s is managed by another service: use Force to delete it.",
                            name);
    rc = ctx->store->ops->rule_delete(ctx->store, &ctx->scope, bus, name);
    if (rc == PB_ECONFLICT)
        return pb_error_set(err, PB_EVALIDATION, "Rule can't be deleted since it has targets.");
    if (rc == PB_ENOTFOUND) {
        *out = json_object();
        return 0;
    }
    if (rc)
        return pb_error_set(err, rc, "cannot delete rule %s", name);
    pb_delivery_rule_changed(ctx->delivery, &ctx->scope, bus, name);
    pb_scheduler_rule_changed(ctx->scheduler, &ctx->scope, bus, name);
    rc = pb_registry_set_rule(ctx->registry, &ctx->scope, bus, name, NULL, err);
    if (rc)
        return rc;
    *out = json_object();
    return 0;
}

static int set_state(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err, const char *state)
{
    const char *name;
    char bus[1700];
    int rc = read_name_bus(in, &ctx->scope, &name, bus, sizeof bus, err);
    if (rc)
        return rc;
    if ((rc = check_bus(ctx, bus, err)))
        return rc;
    rc = ctx->store->ops->rule_set_state(ctx->store, &ctx->scope, bus, name, state);
    if (rc == PB_ENOTFOUND)
        return not_found(err, name, bus);
    if (rc)
        return pb_error_set(err, rc, "cannot update rule %s", name);
    pb_rule_rec r = {0};
    rc = ctx->store->ops->rule_get(ctx->store, &ctx->scope, bus, name, &r);
    if (rc)
        return pb_error_set(err, rc, "cannot read rule %s", name);
    rc = pb_registry_set_stored_rule(ctx->registry, &ctx->scope, &r, err);
    if (!rc && ctx->scheduler && (rc = pb_scheduler_set_rule(ctx->scheduler, &ctx->scope, bus, name, r.schedule,
                                                             enabled(r.state), r.created_ms)) != 0)
        pb_error_set(err, rc, "cannot schedule rule %s", name);
    pb_rule_rec_free(&r);
    if (rc)
        return rc;
    *out = json_object();
    return 0;
}

static int enable_rule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    return set_state(ctx, in, out, err, "ENABLED");
}

static int disable_rule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    return set_state(ctx, in, out, err, "DISABLED");
}

static int test_event_pattern(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    (void)ctx;
    pb_vctx v;
    pb_v_init(&v);
    const char *pattern = pb_v_str(&v, in, "EventPattern", "eventPattern", true, 0, PATTERN_MAX, PB_CS_ANY);
    const char *event = pb_v_str(&v, in, "Event", "event", true, 0, 0, PB_CS_ANY);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    bool matched = false;
    if ((rc = pb_pattern_test_event(pattern, strlen(pattern), event, strlen(event), &matched, err)))
        return rc;
    *out = json_object();
    json_object_set_new(*out, "Result", json_boolean(matched));
    return 0;
}

const pb_api_op pb_events_rule_ops[] = {
    {"PutRule", put_rule, true},
    {"DescribeRule", describe_rule, false},
    {"ListRules", list_rules, false},
    {"DeleteRule", delete_rule, true},
    {"EnableRule", enable_rule, true},
    {"DisableRule", disable_rule, true},
    {"TestEventPattern", test_event_pattern, false},
    {NULL, NULL, false},
};
