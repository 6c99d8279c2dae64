/*
 * fuzz_transform.c — target payloads, pipeline parameters and JSON paths.
 *
 * Input, split at NUL bytes:
 *   one part    a JSON path, evaluated on a fixed event;
 *   two parts   a target (JSON) and an event (JSON): pb_transform_payload and
 *               pb_transform_sagemaker_params on them;
 *   three parts an InputTemplate, an InputPathsMap (JSON; empty: a fixed map
 *               reaching strings, objects, lists, numbers, null, nothing and
 *               a wildcard) and an event (JSON; empty: a fixed event).
 *
 * Checked, besides memory safety: pb_jsonpath_valid agrees with whether
 * pb_jsonpath_eval refuses the path; errors are only the documented codes;
 * a delivered payload is NUL-terminated at its length and within the cap; a
 * JSON template's payload is valid JSON with no blanks outside strings and
 * a template that is a JSON object or array is never delivered otherwise;
 * the whole event comes out as JSON equal to the event; InputPath's payload
 * is equal to what the path finds; every pipeline parameter is a
 * {Name, Value} of strings with at most 1024 characters; PutTargets'
 * placeholder check runs on every template (for memory safety only).
 */
#include "bus/pb_jsonpath.h"
#include "bus/pb_transform.h"
#include "common/pb_arena.h"
#include "json/pb_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_transform: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static const char FIXED_EVENT[] =
    "{\"version\":\"0\",\"id\":\"e\",\"detail-type\":\"t\",\"source\":\"s\",\"account\":\"111122223333\","
    "\"time\":\"2024-01-01T00:00:00Z\",\"region\":\"us-east-1\",\"resources\":[\"r1\",\"r2\"],"
    "\"detail\":{\"s\":\"str\",\"q\":\"a\\\"b\\\\c\",\"o\":{\"k\":\"v\",\"n\":1},\"l\":[\"A\",\"B\"],\"t\":true,"
    "\"n\":null,\"i\":-7,\"r\":1.25,\"e\":\"\",\"a\":[{\"id\":\"x\"},{\"id\":2},{}],\"u\":\"\\u00e9\\n\"}}";

static const char FIXED_MAP[] =
    "{\"s\":\"$.detail.s\",\"q\":\"$.detail.q\",\"o\":\"$.detail.o\",\"l\":\"$.detail.l\",\"t\":\"$.detail.t\","
    "\"n\":\"$.detail.n\",\"i\":\"$.detail.i\",\"r\":\"$.detail.r\",\"e\":\"$.detail.e\",\"m\":\"$.detail.missing\","
    "\"w\":\"$.detail.a[*].id\",\"all\":\"$\",\"u\":\"$.detail.u\",\"r0\":\"$.resources[0]\"}";

static const pb_transform_ctx CTX = {.rule_arn = "arn:aws:events:us-east-1:111122223333:rule/r",
                                     .rule_name = "r",
                                     .ingested_ms = 1700000000123};

static bool ok_code(int rc) { return rc == 0 || rc == PB_EVALIDATION || rc == PB_ENOMEM; }

static json_t *load(const char *s, size_t n)
{
    json_error_t e;
    return json_loadb(s, n, JSON_DECODE_ANY, &e);
}

static void check_path(json_t *doc, const char *path)
{
    json_t *out = (json_t *)1;
    pb_error err;
    int rc = pb_jsonpath_eval(doc, path, &out, &err);
    if (!ok_code(rc))
        fail("pb_jsonpath_eval: unexpected code", pb_error_name(rc));
    if (rc == PB_EVALIDATION && pb_jsonpath_valid(path))
        fail("eval refused a valid path", path);
    if (rc == 0 && !pb_jsonpath_valid(path))
        fail("eval accepted an invalid path", path);
    if (rc && out)
        fail("eval failed but gave a value", path);
    json_decref(out);
}

static bool json_template(json_t *target)
{
    json_t *it = json_object_get(target, "InputTransformer");
    const char *t = json_string_value(json_object_get(it, "InputTemplate"));
    if (!t || json_object_get(target, "Input") || json_object_get(target, "InputPath"))
        return false;
    t += strspn(t, " \t\r\n");
    return *t == '{' || *t == '[';
}

static void check_payload(json_t *target, json_t *event)
{
    char *out = (char *)1;
    size_t len = 1;
    bool ni = true;
    pb_error err;
    int rc = pb_transform_payload(target, event, &CTX, &out, &len, &ni, &err);
    if (!ok_code(rc))
        fail("pb_transform_payload: unexpected code", pb_error_name(rc));
    if (rc || ni) {
        if (out || len)
            fail("no payload expected", NULL);
        if (rc && ni)
            fail("error and not invoked at once", NULL);
        return;
    }
    if (!out || out[len] != '\0' || len > PB_TRANSFORM_MAX_PAYLOAD)
        fail("payload not terminated at its length or over the cap", NULL);

    if (json_template(target)) {
        pb_arena a;
        pb_arena_init(&a);
        pb_json *doc;
        pb_error perr;
        pb_json_limits lim = {.max_depth = 4000};
        int prc = pb_json_parse(out, len, &lim, &a, &doc, &perr);
        pb_arena_free(&a);
        if (prc == PB_EVALIDATION) {
            fprintf(stderr, "payload: %.*s\n", (int)len, out);
            fail("a JSON template gave invalid JSON", perr.message);
        }
        bool in_str = false;
        for (size_t i = 0; i < len; i++) {
            char c = out[i];
            if (in_str && c == '\\')
                i++;
            else if (c == '"')
                in_str = !in_str;
            else if (!in_str && (c == ' ' || c == '\n' || c == '\t' || c == '\r'))
                fail("a JSON payload is not minified", out);
        }
    }
    bool plain = json_is_object(target) && !json_object_get(target, "Input") &&
                 !json_object_get(target, "InputPath") && !json_object_get(target, "InputTransformer");
    json_t *ipath = json_object_get(target, "InputPath");
    json_t *want = NULL;
    if (plain)
        want = json_incref(event);
    else if (json_is_string(ipath) && pb_jsonpath_eval(event, json_string_value(ipath), &want, NULL))
        fail("InputPath delivered but does not evaluate", NULL);
    if (want) {
        /* what we wrote must read back as the same value (jansson, big numbers as reals) */
        json_error_t je;
        json_t *back = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (back && !json_equal(back, want)) {
            fprintf(stderr, "payload: %.*s\n", (int)len, out);
            fail("payload does not read back as the value", NULL);
        }
        if (!back && strstr(je.text, "too big") == NULL && strstr(je.text, "depth") == NULL) {
            fprintf(stderr, "payload: %.*s\n", (int)len, out);
            fail("payload of the whole event or InputPath is not JSON", je.text);
        }
        json_decref(back);
        json_decref(want);
    }
    free(out);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void check_params(json_t *target, json_t *event)
{
    json_t *params = (json_t *)1;
    pb_error err;
    int rc = pb_transform_sagemaker_params(target, event, &params, &err);
    if (!ok_code(rc))
        fail("pb_transform_sagemaker_params: unexpected code", pb_error_name(rc));
    if (rc) {
        if (params)
            fail("params on error", NULL);
        return;
    }
    if (!json_is_array(params))
        fail("params not an array", NULL);
    for (size_t i = 0; i < json_array_size(params); i++) {
        json_t *p = json_array_get(params, i);
        json_t *v = json_object_get(p, "Value");
        if (!json_is_string(json_object_get(p, "Name")) || !json_is_string(v) || json_object_size(p) != 2)
            fail("a parameter is not {Name, Value} strings", NULL);
        if (utf8_chars(json_string_value(v), json_string_length(v)) > PB_TRANSFORM_MAX_PARAM)
            fail("a parameter value is over 1024 characters", NULL);
    }
    json_decref(params);
}

static void check_template(const char *tmpl, size_t tlen, json_t *map, json_t *event)
{
    json_t *target = json_object();
    json_t *it = json_object();
    json_t *t = json_stringn_nocheck(tmpl, tlen);
    if (!target || !it || !t) {
        json_decref(target);
        json_decref(it);
        json_decref(t);
        return;
    }
    json_object_set_new(it, "InputTemplate", t);
    json_object_set(it, "InputPathsMap", map);
    json_object_set_new(target, "InputTransformer", it);
    check_payload(target, event);
    /* the check must not read past the template either */
    char name[8];
    if (!memchr(tmpl, 0, tlen))
        pb_transform_bad_placeholder(json_string_value(t), map, name, sizeof name);
    json_decref(target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *z1 = size ? memchr(s, 0, size) : NULL;
    const char *z2 = z1 ? memchr(z1 + 1, 0, size - (size_t)(z1 + 1 - s)) : NULL;

    if (!z1) {
        char *path = malloc(size + 1);
        json_t *ev = load(FIXED_EVENT, sizeof FIXED_EVENT - 1);
        if (path && ev) {
            memcpy(path, data, size);
            path[size] = '\0';
            check_path(ev, path);
        }
        free(path);
        json_decref(ev);
        return 0;
    }
    if (!z2) {
        json_t *target = load(s, (size_t)(z1 - s));
        json_t *ev = load(z1 + 1, size - (size_t)(z1 + 1 - s));
        if (target && ev) {
            check_payload(target, ev);
            check_params(target, ev);
        }
        json_decref(target);
        json_decref(ev);
        return 0;
    }
    size_t mlen = (size_t)(z2 - z1 - 1), elen = size - (size_t)(z2 + 1 - s);
    json_t *map = mlen ? load(z1 + 1, mlen) : load(FIXED_MAP, sizeof FIXED_MAP - 1);
    json_t *ev = elen ? load(z2 + 1, elen) : load(FIXED_EVENT, sizeof FIXED_EVENT - 1);
    if (map && ev)
        check_template(s, (size_t)(z1 - s), map, ev);
    json_decref(map);
    json_decref(ev);
    return 0;
}
