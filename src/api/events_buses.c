/*
 * events_buses.c — CreateEventBus, DeleteEventBus, DescribeEventBus,
 * ListEventBuses (AWS-SPEC §2.2).
 *
 * The default bus always exists. Bus features pipebridge does not implement
 * (partner buses, KMS keys, bus-level dead-letter queues, logging) are
 * refused with an error that names them rather than stored and ignored.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unsupported(pb_error *err, const char *what)
{
    return pb_error_set(err, PB_EUNSUPPORTED, "%s is not supported by pipebridge", what);
}

static int create_bus(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_v_str(&v, in, "Name", "name", true, 1, 256, PB_CS_BUSNAME);
    const char *desc = pb_v_str(&v, in, "Description", "description", false, 0, 512, PB_CS_ANY);
    pb_tag *tags = NULL;
    size_t ntags = 0;
    int rc = pb_read_tags(&v, in, "Tags", "tags", &tags, &ntags);
    if (!rc)
        rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        goto out;
    if (json_object_get(in, "EventSourceName") || strchr(name, '/')) {
        rc = unsupported(err, "Partner event buses (EventSourceName, names with '/')");
        goto out;
    }
    if (json_object_get(in, "KmsKeyIdentifier")) {
        rc = unsupported(err, "KmsKeyIdentifier (event buses are stored unencrypted)");
        goto out;
    }
    if (json_object_get(in, "DeadLetterConfig")) {
        rc = unsupported(err, "An event bus DeadLetterConfig (set one per target)");
        goto out;
    }
    if (json_object_get(in, "LogConfig")) {
        rc = unsupported(err, "LogConfig");
        goto out;
    }
    if (!strcmp(name, "default")) {
        rc = pb_error_set(err, PB_EEXISTS, "Event bus default already exists.");
        goto out;
    }
    char *arn = pb_arn_bus(&ctx->scope, name);
    pb_bus_rec b = {.name = (char *)name, .arn = arn, .description = (char *)desc, .created_ms = ctx->now_ms,
                    .modified_ms = ctx->now_ms};
    rc = arn ? ctx->store->ops->bus_create(ctx->store, &ctx->scope, &b, tags, ntags) : PB_ENOMEM;
    if (rc == PB_EEXISTS)
        pb_error_set(err, rc, "Event bus %s already exists.", name);
    else if (rc)
        pb_error_set(err, rc, "cannot create event bus %s", name);
    if (!rc) {
        *out = json_object();
        json_object_set_new(*out, "EventBusArn", json_string(arn));
        pb_json_set_str(*out, "Description", desc);
    }
    free(arn);
out:
    pb_tags_free(tags, ntags);
    return rc;
}

static int delete_bus(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *name = pb_v_str(&v, in, "Name", "name", true, 1, 256, PB_CS_BUSNAME);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    if (!strcmp(name, "default"))
        return pb_error_set(err, PB_EVALIDATION, "Cannot delete event bus default.");
    char *arn = pb_arn_bus(&ctx->scope, name);
    rc = ctx->store->ops->bus_delete(ctx->store, &ctx->scope, name);
    if (rc == PB_ENOTFOUND)
        pb_error_set(err, rc, "Event bus %s does not exist.", name);
    else if (rc == PB_ECONFLICT)
        rc = pb_error_set(err, PB_EVALIDATION, "Event bus %s still has rules: delete them first.", name);
    else if (rc)
        pb_error_set(err, rc, "cannot delete event bus %s", name);
    else
        pb_delivery_bus_deleted(ctx->delivery, &ctx->scope, name);
    free(arn);
    if (!rc)
        *out = json_object();
    return rc;
}

static json_t *bus_json(const pb_bus_rec *b, bool describe)
{
    json_t *o = json_object();
    json_object_set_new(o, "Name", json_string(b->name));
    json_object_set_new(o, "Arn", json_string(b->arn));
    pb_json_set_str(o, "Description", b->description);
    (void)describe;
    if (b->created_ms) { /* the default bus has no creation time to show */
        json_object_set_new(o, "CreationTime", pb_json_time(b->created_ms));
        json_object_set_new(o, "LastModifiedTime", pb_json_time(b->modified_ms));
    }
    return o;
}

static int describe_bus(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    char name[1700];
    pb_read_bus_name(&v, in, "Name", "name", &ctx->scope, name, sizeof name);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_bus_rec b = {0};
    rc = ctx->store->ops->bus_get(ctx->store, &ctx->scope, name, &b);
    if (rc == PB_ENOTFOUND)
        return pb_error_set(err, rc, "Event bus %s does not exist.", name);
    if (rc)
        return pb_error_set(err, rc, "cannot read event bus %s", name);
    *out = bus_json(&b, true);
    pb_bus_rec_free(&b);
    return 0;
}

static int list_buses(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *prefix = pb_v_str(&v, in, "NamePrefix", "namePrefix", false, 1, 256, PB_CS_BUSNAME);
    pb_page pg;
    pb_read_page(&v, in, &pg);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc || (rc = pb_page_decode(&pg, err)))
        return rc;
    pb_bus_rec *bs = NULL;
    size_t n = 0;
    bool more = false;
    rc = ctx->store->ops->bus_list(ctx->store, &ctx->scope, prefix, pb_page_after(&pg), pg.limit, &bs, &n, &more);
    if (rc)
        return pb_error_set(err, rc, "cannot list event buses");
    *out = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, bus_json(&bs[i], false));
    json_object_set_new(*out, "EventBuses", arr);
    pb_set_next_token(*out, more, n ? bs[n - 1].name : NULL);
    pb_bus_recs_free(bs, n);
    return 0;
}

const pb_api_op pb_events_bus_ops[] = {
    {"CreateEventBus", create_bus, true},
    {"DeleteEventBus", delete_bus, true},
    {"DescribeEventBus", describe_bus, false},
    {"ListEventBuses", list_buses, false},
    {NULL, NULL, false},
};
