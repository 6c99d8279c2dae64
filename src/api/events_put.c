/*
 * events_put.c — PutEvents (AWS-SPEC §2.2): entries checked one by one,
 * turned into event envelopes (§3.1), matched and their invocations
 * committed before the answer (pb_delivery_ingest).
 *
 * Whole-request failures: more than 10 entries (Coral message), a member of
 * the wrong JSON type (SerializationException), a total size of 256 KiB or
 * more. Per-entry failures keep the entry's place in the answer:
 * InvalidArgument for a missing Source / DetailType / Detail, MalformedDetail
 * for a Detail that is not a JSON object, NotAuthorizedForSourceException for
 * a custom event with an "aws." source. An entry for a bus that does not
 * exist gets an EventId and is dropped, as AWS does.
 */
#include "api_internal.h"

#include "common/pb_uuid.h"
#include "json/pb_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENTRIES 10
#define MAX_TOTAL_SIZE 262144 /* the sum of entry sizes must stay below */
#define MAX_DETAIL_DEPTH 128

typedef struct entry {
    const char *error_code;
    const char *error_message;
    char id[37];
    char bus[1700];
    pb_buf envelope;
} entry;

/* An entry's size as AWS counts it (§2.2). */
static size_t entry_size(json_t *e)
{
    size_t n = json_object_get(e, "Time") ? 14 : 0;
    const char *members[] = {"Source", "DetailType", "Detail"};
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_object_get(e, members[i]);
        if (json_is_string(s))
            n += json_string_length(s);
    }
    json_t *res = json_object_get(e, "Resources");
    for (size_t i = 0; json_is_array(res) && i < json_array_size(res); i++)
        if (json_is_string(json_array_get(res, i)))
            n += json_string_length(json_array_get(res, i));
    return n;
}

static void iso_time(double secs, char out[32])
{
    if (secs < 0 || secs > 253402300799.0) /* 9999-12-31T23:59:59Z */
        secs = 0;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Builds the envelope of a checked entry into en->envelope. */
static int build(pb_api_ctx *ctx, json_t *e, const pb_json *detail, entry *en)
{
    char t[32];
    json_t *time = json_object_get(e, "Time");
    iso_time(json_is_number(time) ? json_number_value(time) : (double)ctx->now_ms / 1000.0, t);
    pb_buf *b = &en->envelope;
    int rc = pb_buf_printf(b, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":", en->id);
    const char *dt = json_string_value(json_object_get(e, "DetailType"));
    const char *src = json_string_value(json_object_get(e, "Source"));
    rc = rc ? rc : pb_json_write_string(b, dt, strlen(dt));
    rc = rc ? rc : pb_buf_puts(b, ",\"source\":");
    rc = rc ? rc : pb_json_write_string(b, src, strlen(src));
    rc = rc ? rc : pb_buf_printf(b, ",\"account\":\"%s\",\"time\":\"%s\",\"region\":", ctx->scope.account, t);
    rc = rc ? rc : pb_json_write_string(b, ctx->scope.region, strlen(ctx->scope.region));
    rc = rc ? rc : pb_buf_puts(b, ",\"resources\":[");
    json_t *res = json_object_get(e, "Resources");
    for (size_t i = 0; !rc && i < json_array_size(res); i++) {
        const char *r = json_string_value(json_array_get(res, i));
        rc = (i ? pb_buf_putc(b, ',') : 0);
        rc = rc ? rc : pb_json_write_string(b, r, strlen(r));
    }
    rc = rc ? rc : pb_buf_puts(b, "],\"detail\":");
    rc = rc ? rc : pb_json_write(b, detail);
    rc = rc ? rc : pb_buf_putc(b, '}');
    return rc;
}

/* Checks one entry; fills en (error or envelope). */
static int check_entry(pb_api_ctx *ctx, json_t *e, entry *en)
{
    const char *src = json_string_value(json_object_get(e, "Source"));
    const char *dt = json_string_value(json_object_get(e, "DetailType"));
    json_t *dj = json_object_get(e, "Detail");
    const char *detail = json_string_value(dj);
    if (!src) {
        en->error_code = "InvalidArgument";
        en->error_message = "Parameter Source is not valid. Reason: Source is a required argument.";
        return 0;
    }
    if (!dt) {
        en->error_code = "InvalidArgument";
        en->error_message = "Parameter DetailType is not valid. Reason: DetailType is a required argument.";
        return 0;
    }
    if (!detail) {
        en->error_code = "InvalidArgument";
        en->error_message = "Parameter Detail is not valid. Reason: Detail is a required argument.";
        return 0;
    }
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = NULL;
    pb_json_limits lim = {.max_bytes = MAX_TOTAL_SIZE, .max_depth = MAX_DETAIL_DEPTH};
    int rc = pb_json_parse(detail, json_string_length(dj), &lim, &a, &doc, NULL);
    if (rc == PB_ENOMEM) {
        pb_arena_free(&a);
        return rc;
    }
    if (rc || doc->type != PB_JSON_OBJECT) {
        en->error_code = "MalformedDetail";
        en->error_message = "Detail is malformed.";
        pb_arena_free(&a);
        return 0;
    }
    if (!strncmp(src, "aws.", 4)) {
        en->error_code = "NotAuthorizedForSourceException";
        en->error_message = "Not authorized for the source.";
        pb_arena_free(&a);
        return 0;
    }
    pb_uuid_v4(en->id);
    rc = build(ctx, e, doc, en);
    pb_arena_free(&a);
    return rc;
}

static int put_events(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    json_t *entries = pb_v_array(&v, in, "Entries", "entries", true, 1, MAX_ENTRIES);
    size_t n = entries && json_array_size(entries) <= MAX_ENTRIES ? json_array_size(entries) : 0;
    entry *en = calloc(n ? n : 1, sizeof *en);
    if (!en) {
        pb_v_free(&v);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        char p[96];
        pb_buf_init(&en[i].envelope, 0);
        if (!json_is_object(e)) {
            snprintf(p, sizeof p, "entries.%zu.member", i + 1);
            pb_v_fail(&v, p, NULL, "Member must not be null");
            continue;
        }
#define PATH(m) (snprintf(p, sizeof p, "entries.%zu.member." m, i + 1), p)
        pb_v_str(&v, e, "Source", PATH("source"), false, 0, 0, PB_CS_ANY);
        pb_v_str(&v, e, "DetailType", PATH("detailType"), false, 0, 0, PB_CS_ANY);
        pb_v_str(&v, e, "Detail", PATH("detail"), false, 0, 0, PB_CS_ANY);
        pb_v_str(&v, e, "TraceHeader", PATH("traceHeader"), false, 1, 500, PB_CS_ANY);
        json_t *t = json_object_get(e, "Time");
        if (t && !json_is_null(t) && !json_is_number(t))
            pb_v_fail(&v, PATH("time"), NULL, "Member must be a timestamp");
        json_t *res = pb_v_array(&v, e, "Resources", PATH("resources"), false, 0, 0);
        for (size_t k = 0; res && k < json_array_size(res); k++)
            if (!json_is_string(json_array_get(res, k))) {
                snprintf(p, sizeof p, "entries.%zu.member.resources.%zu.member", i + 1, k + 1);
                pb_v_fail(&v, p, NULL, "Member must not be null");
            }
        pb_read_bus_name(&v, e, "EventBusName", PATH("eventBusName"), &ctx->scope, en[i].bus, sizeof en[i].bus);
#undef PATH
        total += entry_size(e);
    }
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (!rc && total >= MAX_TOTAL_SIZE)
        rc = pb_error_set(err, PB_EVALIDATION, "Total size of the entries in the request is over the limit.");
    for (size_t i = 0; !rc && i < n; i++)
        rc = check_entry(ctx, json_array_get(entries, i), &en[i]);
    if (rc) {
        if (rc == PB_ENOMEM)
            pb_error_set(err, rc, "out of memory");
        goto out;
    }

    /* match and commit the accepted ones together */
    pb_delivery_event ev[MAX_ENTRIES];
    size_t map[MAX_ENTRIES], nev = 0;
    for (size_t i = 0; i < n; i++) {
        if (en[i].error_code)
            continue;
        ev[nev] = (pb_delivery_event){.bus = en[i].bus, .id = en[i].id, .json = en[i].envelope.data,
                                      .len = en[i].envelope.len, .ingested_ms = ctx->now_ms};
        map[nev++] = i;
    }
    int status[MAX_ENTRIES] = {0};
    pb_error ierr;
    if (nev && pb_delivery_ingest(ctx->delivery, &ctx->scope, ev, nev, status, &ierr) != 0) {
        /* nothing of this request was committed: every accepted entry failed */
        for (size_t k = 0; k < nev; k++) {
            en[map[k]].error_code = "InternalFailure";
            en[map[k]].error_message = "The events could not be stored; retry.";
        }
    }
    for (size_t k = 0; k < nev; k++) {
        if (status[k] == PB_EEVENT) {
            en[map[k]].error_code = "MalformedDetail";
            en[map[k]].error_message = "Detail is malformed.";
        } else if (status[k]) {
            en[map[k]].error_code = "InvalidArgument";
            en[map[k]].error_message = "The event is too complex to match against the rules of its bus.";
        }
    }

    *out = json_object();
    json_t *list = json_array();
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (en[i].error_code) {
            failed++;
            json_object_set_new(o, "ErrorCode", json_string(en[i].error_code));
            json_object_set_new(o, "ErrorMessage", json_string(en[i].error_message));
        } else {
            json_object_set_new(o, "EventId", json_string(en[i].id));
        }
        json_array_append_new(list, o);
        pb_metrics_add(ctx->metrics, &ctx->scope, en[i].bus, NULL,
                       en[i].error_code ? PB_M_PUTEVENTS_FAILED : PB_M_PUTEVENTS_ACCEPTED, 1);
    }
    json_object_set_new(*out, "FailedEntryCount", json_integer((json_int_t)failed));
    json_object_set_new(*out, "Entries", list);
out:
    for (size_t i = 0; i < n; i++)
        pb_buf_free(&en[i].envelope);
    free(en);
    return rc;
}

const pb_api_op pb_events_put_ops[] = {
    {"PutEvents", put_events, false},
    {NULL, NULL, false},
};
