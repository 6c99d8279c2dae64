/*
 * test_transform.c — src/bus/transform.c: what a target receives (Input,
 * InputPath, InputTransformer; AWS-SPEC §2.4) and a SageMaker pipeline
 * target's parameters (§2.5).
 *
 * Covers: every row of the table of substitutions observed on AWS (§2.4),
 * each as a case named after it; values inserted without escaping and what
 * that does to JSON validity (not invoked for JSON templates, delivered as
 * they come for string and text templates); minified JSON results; the
 * predefined variables; numbers; placeholders that are not placeholders;
 * Input, InputPath (found, nothing found = not invoked, bad path = error),
 * the whole event, conflicting members, the payload cap; PutTargets'
 * placeholder check; and the pipeline parameters: static values, paths as a
 * whole, strings as they are, other values as JSON, nothing found and too
 * long as PB_EVALIDATION naming the parameter and the path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pb_transform.h"

/* The event of the table in AWS-SPEC §2.4, plus members for the other cases. */
static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\",\"detail-type\":\"Order\","
    "\"source\":\"com.example\",\"account\":\"111122223333\",\"time\":\"2017-12-22T18:43:48Z\","
    "\"region\":\"us-west-1\",\"resources\":[\"arn:aws:s3:::b\"],"
    "\"detail\":{\"payload\":{\"acc_id\":\"0a78\",\"sf_id\":\"baz\"},\"listsingle\":[\"HIGH\"],"
    "\"listmulti\":[\"ACTIVE\",\"INACTIVE\"],\"valid\":true,"
    "\"quote\":\"say \\\"hi\\\"\",\"newline\":\"a\\nb\",\"count\":42,\"ratio\":0.1,\"big\":9007199254740993,"
    "\"nothing\":null,\"items\":[{\"id\":\"a\"},{\"id\":\"c\"}],\"unicode\":\"caf\\u00e9\"}}";

static const char MAP[] = "{\"userId\":\"$.detail.payload.acc_id\",\"payload\":\"$.detail.payload\","
                          "\"listsingle\":\"$.detail.listsingle\",\"listmulti\":\"$.detail.listmulti\","
                          "\"valid\":\"$.detail.valid\",\"missing\":\"$.detail.not-there\","
                          "\"quote\":\"$.detail.quote\",\"newline\":\"$.detail.newline\","
                          "\"count\":\"$.detail.count\",\"ratio\":\"$.detail.ratio\",\"big\":\"$.detail.big\","
                          "\"nothing\":\"$.detail.nothing\",\"ids\":\"$.detail.items[*].id\","
                          "\"unicode\":\"$.detail.unicode\"}";

static const pb_transform_ctx CTX = {
    .rule_arn = "arn:aws:events:us-west-1:111122223333:rule/example",
    .rule_name = "example",
    .ingested_ms = 1615824611123, /* 2021-03-15T16:10:11.123Z */
};

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("fixture %s: %s", text, e.text);
    return v;
}

/* Runs the target on EVENT. Returns rc; *out (malloc'd) and *ni set. */
static int run_target(json_t *target, char **out, bool *ni, pb_error *err)
{
    json_t *ev = load(EVENT);
    size_t len = 12345;
    *out = NULL;
    int rc = pb_transform_payload(target, ev, &CTX, out, &len, ni, err);
    if (rc == 0 && !*ni) {
        assert_non_null(*out);
        assert_int_equal(len, strlen(*out));
    } else {
        assert_null(*out);
        assert_int_equal(len, 0);
    }
    json_decref(ev);
    return rc;
}

/* An InputTransformer target with MAP and tmpl. */
static json_t *transformer(const char *tmpl)
{
    json_t *t = json_object();
    json_t *it = json_object();
    json_object_set_new(it, "InputPathsMap", load(MAP));
    json_object_set_new(it, "InputTemplate", json_string(tmpl));
    json_object_set_new(t, "Id", json_string("t"));
    json_object_set_new(t, "InputTransformer", it);
    return t;
}

/* tmpl must give exactly want. */
static void expect(const char *tmpl, const char *want)
{
    json_t *t = transformer(tmpl);
    char *out;
    bool ni = true;
    pb_error err;
    pb_error_clear(&err);
    int rc = run_target(t, &out, &ni, &err);
    if (rc)
        fail_msg("%s: rc %d: %s", tmpl, rc, err.message);
    if (ni)
        fail_msg("%s: not invoked (%s), expected %s", tmpl, err.message, want);
    if (strcmp(out, want))
        fail_msg("template %s\n  gave     %s\n  expected %s", tmpl, out, want);
    free(out);
    json_decref(t);
}

/* tmpl must leave the target not invoked. */
static void expect_not_invoked(const char *tmpl)
{
    json_t *t = transformer(tmpl);
    char *out;
    bool ni = false;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    if (!ni)
        fail_msg("%s: invoked with %s, expected not invoked", tmpl, out);
    assert_int_equal(err.code, PB_EVALIDATION);
    assert_non_null(strstr(err.message, "InputTemplate did not give valid JSON"));
    json_decref(t);
}

/* --------------------------------------------------- the table of §2.4 */

static void test_table_bare_string_gets_quotes(void **state)
{
    (void)state;
    expect("{\"id\": <userId>}", "{\"id\":\"0a78\"}");
}

static void test_table_quoted_string(void **state)
{
    (void)state;
    expect("{\"id\": \"<userId>\"}", "{\"id\":\"0a78\"}");
}

static void test_table_bare_object(void **state)
{
    (void)state;
    expect("{\"bod\": <payload>}", "{\"bod\":{\"acc_id\":\"0a78\",\"sf_id\":\"baz\"}}");
}

static void test_table_bare_list(void **state)
{
    (void)state;
    expect("{\"x\": <listsingle>}", "{\"x\":[\"HIGH\"]}");
}

static void test_table_string_in_list(void **state)
{
    (void)state;
    expect("{\"bod\": [<userId>, \"hardcoded\"]}", "{\"bod\":[\"0a78\",\"hardcoded\"]}");
}

static void test_table_each_occurrence_replaced(void **state)
{
    (void)state;
    expect("\"users/<userId>/second/<userId>\"", "\"users/0a78/second/0a78\"");
    expect("{\"p\": \"users/<userId>/second/<userId>\"}", "{\"p\":\"users/0a78/second/0a78\"}");
}

static void test_table_object_inside_string_loses_quotes(void **state)
{
    (void)state;
    expect("\"Payload of <payload>\"", "\"Payload of {acc_id:0a78,sf_id:baz}\"");
    expect("{\"m\": \"Payload of <payload>\"}", "{\"m\":\"Payload of {acc_id:0a78,sf_id:baz}\"}");
}

static void test_table_list_inside_string(void **state)
{
    (void)state;
    expect("\"<listmulti> items\"", "\"[ACTIVE,INACTIVE] items\"");
}

static void test_table_boolean_inside_string(void **state)
{
    (void)state;
    expect("\"Command is <valid>!\"", "\"Command is true!\"");
}

static void test_table_missing_path_is_empty(void **state)
{
    (void)state;
    expect("\"Missing detail <missing>\"", "\"Missing detail \"");
    expect("{\"command\": \"<missing>\"}", "{\"command\":\"\"}");
    /* our decision: the variable is the empty string, so bare it is "" too */
    expect("{\"command\": <missing>}", "{\"command\":\"\"}");
    expect("<missing>", "");
}

static void test_table_object_in_quotes_not_invoked(void **state)
{
    (void)state;
    expect_not_invoked("{\"payload\": \"<payload>\"}");
    expect_not_invoked("{\"x\": \"<listmulti>\"}");
}

static void test_table_quoted_template_keeps_quotes(void **state)
{
    (void)state;
    expect("\"instance <userId> is <valid>\"", "\"instance 0a78 is true\"");
}

/* -------------------------------------------------- beyond the table */

static void test_values_are_not_escaped(void **state)
{
    (void)state;
    /* a quote or a newline in a value breaks a JSON template: not invoked */
    expect_not_invoked("{\"q\": <quote>}");
    expect_not_invoked("{\"q\": \"said <quote>\"}");
    expect_not_invoked("{\"q\": \"<newline>\"}");
    /* a string or text template is delivered as it comes out */
    expect("\"q <quote>\"", "\"q say \"hi\"\"");
    expect("line <newline>", "line a\nb");
    /* non-ASCII is inserted as UTF-8 */
    expect("{\"u\": <unicode>}", "{\"u\":\"caf\xc3\xa9\"}");
}

static void test_scalars_and_numbers(void **state)
{
    (void)state;
    expect("{\"n\": <count>, \"r\": <ratio>, \"b\": <big>, \"z\": <nothing>, \"v\": <valid>}",
           "{\"n\":42,\"r\":0.1,\"b\":9007199254740993,\"z\":null,\"v\":true}");
    /* alone in quotes a number is its JSON text, in quotes */
    expect("{\"n\": \"<count>\", \"z\": \"<nothing>\"}", "{\"n\":\"42\",\"z\":\"null\"}");
    expect("\"<count> and <ratio> and <nothing>\"", "\"42 and 0.1 and null\"");
    /* a wildcard path gives the list of its matches */
    expect("{\"ids\": <ids>}", "{\"ids\":[\"a\",\"c\"]}");
    expect("\"ids: <ids>\"", "\"ids: [a,c]\"");
}

static void test_write_json(void **state)
{
    (void)state;
    json_t *v = load("[0.1,1.0,-0.0,1e300,123456789.125,2.5e-7,9007199254740993,-1,\"a\\\"b\\\\c\\n\\u0001\","
                     "{\"k\":[true,false,null,{}],\"\":[]}]");
    pb_buf b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_transform_write_json(&b, v), 0);
    assert_string_equal(b.data, "[0.1,1.0,-0.0,1e+300,123456789.125,2.5e-07,9007199254740993,-1,"
                                "\"a\\\"b\\\\c\\n\\u0001\",{\"k\":[true,false,null,{}],\"\":[]}]");
    /* it reads back as the same value, reals as reals */
    json_t *back = load(b.data);
    assert_true(json_equal(back, v));
    json_decref(back);
    /* the cap of the buffer is reported */
    pb_buf small;
    pb_buf_init(&small, 8);
    assert_int_equal(pb_transform_write_json(&small, v), PB_EVALIDATION);
    pb_buf_free(&small);
    pb_buf_free(&b);
    json_decref(v);
}

static void test_minified_and_template_kinds(void **state)
{
    (void)state;
    expect("  {\n  \"instance\" : <userId>,\n  \"state\": [ 9, <userId>, true ],\n  \"s\": \"a  b\"\n}\n",
           "{\"instance\":\"0a78\",\"state\":[9,\"0a78\",true],\"s\":\"a  b\"}");
    expect("[<userId>, <valid>]", "[\"0a78\",true]");
    /* an escaped quote in the template's string does not end it */
    expect("{\"m\": \"say \\\"<userId>\\\" now\"}", "{\"m\":\"say \\\"0a78\\\" now\"}");
    /* a plain text template: strings raw, other values as JSON */
    expect("<userId> is in state <valid> with <payload>", "0a78 is in state true with {\"acc_id\":\"0a78\",\"sf_id\":\"baz\"}");
    /* a template that only looks like JSON after the substitution is still text */
    expect("x {\"a\": <userId>}", "x {\"a\": 0a78}");
    /* a JSON template that is not JSON to begin with */
    expect_not_invoked("{\"a\": 1");
    expect_not_invoked("{\"a\": <userId>} trailing");
}

static void test_not_placeholders(void **state)
{
    (void)state;
    expect("\"a < b > c\"", "\"a < b > c\"");
    expect("\"<> <a b> <<userId>>\"", "\"<> <a b> <0a78>\"");
    expect("\"<undefined>\"", "\"<undefined>\""); /* PutTargets refuses these; left as is */
    expect("{\"k\": \"<undefined>\"}", "{\"k\":\"<undefined>\"}");
}

static void test_predefined(void **state)
{
    (void)state;
    expect("{\"arn\": <aws.events.rule-arn>, \"name\": \"<aws.events.rule-name>\", \"at\": "
           "<aws.events.event.ingestion-time>}",
           "{\"arn\":\"arn:aws:events:us-west-1:111122223333:rule/example\",\"name\":\"example\","
           "\"at\":\"2021-03-15T16:10:11.123Z\"}");
    expect("\"<aws.events.rule-name> triggered\"", "\"example triggered\"");

    /* aws.events.event: the event without detail; .json: the whole event */
    json_t *t = transformer("{\"e\": <aws.events.event>, \"j\": <aws.events.event.json>}");
    char *out;
    bool ni;
    pb_error err;
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_false(ni);
    json_t *got = load(out), *ev = load(EVENT);
    json_t *e = json_object_get(got, "e");
    assert_null(json_object_get(e, "detail"));
    assert_string_equal(json_string_value(json_object_get(e, "id")), "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_int_equal(json_object_size(e), json_object_size(ev) - 1);
    assert_true(json_equal(json_object_get(got, "j"), ev));
    free(out);
    json_decref(got);
    json_decref(t);

    /* the whole event as a plain template is the event's JSON */
    t = transformer("<aws.events.event.json>");
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    got = load(out);
    assert_true(json_equal(got, ev));
    free(out);
    json_decref(got);
    json_decref(t);
    json_decref(ev);

    /* without a rule ARN or name they are empty; ingestion time 0 is the epoch */
    json_t *it = transformer("\"<aws.events.rule-arn>|<aws.events.event.ingestion-time>\"");
    ev = load(EVENT);
    pb_transform_ctx none = {0};
    size_t len;
    assert_int_equal(pb_transform_payload(it, ev, &none, &out, &len, &ni, &err), 0);
    assert_string_equal(out, "\"|1970-01-01T00:00:00.000Z\"");
    free(out);
    json_decref(it);
    json_decref(ev);
}

static void test_bad_map(void **state)
{
    (void)state;
    json_t *t = transformer("<x>");
    json_t *map = json_object_get(json_object_get(t, "InputTransformer"), "InputPathsMap");
    json_object_set_new(map, "x", json_string("$..bad"));
    char *out;
    bool ni;
    pb_error err;
    assert_int_equal(run_target(t, &out, &ni, &err), PB_EVALIDATION);
    assert_non_null(strstr(err.message, "$..bad is not a valid JSON path"));
    json_object_set_new(map, "x", json_integer(1));
    assert_int_equal(run_target(t, &out, &ni, &err), PB_EVALIDATION);
    json_object_set_new(json_object_get(t, "InputTransformer"), "InputTemplate", json_integer(1));
    assert_int_equal(run_target(t, &out, &ni, &err), PB_EVALIDATION);
    json_decref(t);
}

/* --------------------------------------------- Input, InputPath, nothing */

static void test_whole_event(void **state)
{
    (void)state;
    json_t *t = load("{\"Id\":\"t\",\"Arn\":\"arn:aws:sagemaker:us-east-1:111122223333:pipeline/p\"}");
    char *out;
    bool ni;
    pb_error err;
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_false(ni);
    /* compact, in the event's order, numbers exact; \u00e9 written as UTF-8 */
    char want[sizeof EVENT];
    const char *u = strstr(EVENT, "caf\\u00e9");
    assert_non_null(u);
    int n = snprintf(want, sizeof want, "%.*scaf\xc3\xa9%s", (int)(u - EVENT), EVENT, u + 9);
    assert_true(n > 0 && (size_t)n < sizeof want);
    assert_string_equal(out, want);
    free(out);
    json_decref(t);
}

static void test_input_constant(void **state)
{
    (void)state;
    json_t *t = load("{\"Id\":\"t\",\"Input\":\"{ \\\"a\\\" : [1, 2] }\"}");
    char *out;
    bool ni;
    pb_error err;
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_false(ni);
    assert_string_equal(out, "{ \"a\" : [1, 2] }"); /* as stored */
    free(out);
    json_decref(t);
}

static void test_input_path(void **state)
{
    (void)state;
    char *out;
    bool ni;
    pb_error err;
    json_t *t = load("{\"Id\":\"t\",\"InputPath\":\"$.detail.payload\"}");
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_string_equal(out, "{\"acc_id\":\"0a78\",\"sf_id\":\"baz\"}");
    free(out);
    json_decref(t);

    t = load("{\"Id\":\"t\",\"InputPath\":\"$.detail.payload.acc_id\"}");
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_string_equal(out, "\"0a78\""); /* a JSON string, quoted */
    free(out);
    json_decref(t);

    t = load("{\"Id\":\"t\",\"InputPath\":\"$.detail.items[*].id\"}");
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_string_equal(out, "[\"a\",\"c\"]");
    free(out);
    json_decref(t);

    /* nothing found: not invoked, with the reason */
    t = load("{\"Id\":\"t\",\"InputPath\":\"$.detail.nope\"}");
    pb_error_clear(&err);
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_true(ni);
    assert_string_equal(err.message, "InputPath $.detail.nope found nothing in the event");
    json_decref(t);

    /* a path that is not one: the invocation fails */
    t = load("{\"Id\":\"t\",\"InputPath\":\"detail\"}");
    assert_int_equal(run_target(t, &out, &ni, &err), PB_EVALIDATION);
    assert_false(ni);
    json_decref(t);
}

static void test_conflicts_and_types(void **state)
{
    (void)state;
    char *out;
    bool ni;
    pb_error err;
    const char *bad[] = {"{\"Input\":\"{}\",\"InputPath\":\"$\"}",
                         "{\"InputPath\":\"$\",\"InputTransformer\":{\"InputTemplate\":\"x\"}}",
                         "{\"Input\":1}",
                         "{\"InputPath\":[]}",
                         "{\"InputTransformer\":\"x\"}",
                         "{\"InputTransformer\":{\"InputTemplate\":\"x\",\"InputPathsMap\":[]}}",
                         "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *t = load(bad[i]);
        if (run_target(t, &out, &ni, &err) != PB_EVALIDATION)
            fail_msg("%s should be refused", bad[i]);
        json_decref(t);
    }
    /* a transformer without InputPathsMap still has the predefined variables */
    json_t *t = load("{\"InputTransformer\":{\"InputTemplate\":\"<aws.events.rule-name>\"}}");
    assert_int_equal(run_target(t, &out, &ni, &err), 0);
    assert_string_equal(out, "example");
    free(out);
    json_decref(t);
}

static void test_payload_cap(void **state)
{
    (void)state;
    /* an event of ~100 KB copied 16 times by the template passes the cap */
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    json_t *ev = json_pack("{s{ss}}", "detail", "blob", big);
    free(big);
    char tmpl[512] = "\"";
    for (int i = 0; i < 16; i++)
        strcat(tmpl, "<aws.events.event.json>");
    strcat(tmpl, "\"");
    json_t *t = transformer(tmpl);
    char *out = (char *)1;
    bool ni;
    pb_error err;
    assert_int_equal(pb_transform_payload(t, ev, &CTX, &out, NULL, &ni, &err), PB_EVALIDATION);
    assert_null(out);
    assert_non_null(strstr(err.message, "would exceed 1048576 bytes"));
    /* 8 copies fit */
    json_object_set_new(json_object_get(t, "InputTransformer"), "InputTemplate",
                        json_string("<aws.events.event.json><aws.events.event.json><aws.events.event.json>"
                                    "<aws.events.event.json><aws.events.event.json><aws.events.event.json>"
                                    "<aws.events.event.json><aws.events.event.json>"));
    size_t len;
    assert_int_equal(pb_transform_payload(t, ev, &CTX, &out, &len, &ni, &err), 0);
    assert_true(len > 8 * n && len < PB_TRANSFORM_MAX_PAYLOAD);
    free(out);
    json_decref(t);
    json_decref(ev);
}

/* ------------------------------------------------- PutTargets' check */

static void test_bad_placeholder(void **state)
{
    (void)state;
    json_t *map = load("{\"instance\":\"$.detail.i\",\"state-x_1\":\"$.detail.s\"}");
    char name[16];
    assert_false(pb_transform_bad_placeholder("{\"a\": <instance>, \"b\": \"<state-x_1> <instance>\"}", map, name,
                                              sizeof name));
    assert_false(pb_transform_bad_placeholder("<aws.events.rule-arn> <aws.events.rule-name> "
                                              "<aws.events.event.ingestion-time> <aws.events.event> "
                                              "<aws.events.event.json>",
                                              NULL, name, sizeof name));
    assert_false(pb_transform_bad_placeholder("a < b, <> and <not one>", map, name, sizeof name));
    assert_true(pb_transform_bad_placeholder("{\"a\": <instance>, \"b\": <status>}", map, name, sizeof name));
    assert_string_equal(name, "status");
    assert_true(pb_transform_bad_placeholder("\"<aws.events.other>\"", map, name, sizeof name));
    assert_string_equal(name, "aws.events.othe"); /* truncated to the buffer */
    assert_true(pb_transform_bad_placeholder("<instance>", NULL, name, sizeof name));
    assert_string_equal(name, "instance");
    json_decref(map);
}

/* ------------------------------------------------- pipeline parameters */

static json_t *params_of(const char *list, int *rc, pb_error *err)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "{\"Id\":\"p\",\"SageMakerPipelineParameters\":{\"PipelineParameterList\":%s}}", list);
    json_t *t = load(buf), *ev = load(EVENT);
    json_t *params = (json_t *)1;
    pb_error_clear(err);
    *rc = pb_transform_sagemaker_params(t, ev, &params, err);
    if (*rc)
        assert_null(params);
    json_decref(t);
    json_decref(ev);
    return params;
}

static void test_params_static_and_paths(void **state)
{
    (void)state;
    int rc;
    pb_error err;
    json_t *p = params_of("[{\"Name\":\"InstanceType\",\"Value\":\"ml.m5.xlarge\"},"
                          "{\"Name\":\"Key\",\"Value\":\"$.detail.payload.acc_id\"},"
                          "{\"Name\":\"Literal\",\"Value\":\"prefix-$.detail.payload.acc_id\"},"
                          "{\"Name\":\"Count\",\"Value\":\"$.detail.count\"},"
                          "{\"Name\":\"Ratio\",\"Value\":\"$.detail.ratio\"},"
                          "{\"Name\":\"Valid\",\"Value\":\"$.detail.valid\"},"
                          "{\"Name\":\"Nothing\",\"Value\":\"$.detail.nothing\"},"
                          "{\"Name\":\"Obj\",\"Value\":\"$.detail.payload\"},"
                          "{\"Name\":\"Ids\",\"Value\":\"$.detail.items[*].id\"},"
                          "{\"Name\":\"Quote\",\"Value\":\"$.detail.quote\"},"
                          "{\"Name\":\"Empty\",\"Value\":\"\"},"
                          "{\"Name\":\"Dollar\",\"Value\":\"$5\"}]",
                          &rc, &err);
    if (rc)
        fail_msg("rc %d: %s", rc, err.message);
    json_t *want = load("[{\"Name\":\"InstanceType\",\"Value\":\"ml.m5.xlarge\"},"
                        "{\"Name\":\"Key\",\"Value\":\"0a78\"},"
                        "{\"Name\":\"Literal\",\"Value\":\"prefix-$.detail.payload.acc_id\"},"
                        "{\"Name\":\"Count\",\"Value\":\"42\"},"
                        "{\"Name\":\"Ratio\",\"Value\":\"0.1\"},"
                        "{\"Name\":\"Valid\",\"Value\":\"true\"},"
                        "{\"Name\":\"Nothing\",\"Value\":\"null\"},"
                        "{\"Name\":\"Obj\",\"Value\":\"{\\\"acc_id\\\":\\\"0a78\\\",\\\"sf_id\\\":\\\"baz\\\"}\"},"
                        "{\"Name\":\"Ids\",\"Value\":\"[\\\"a\\\",\\\"c\\\"]\"},"
                        "{\"Name\":\"Quote\",\"Value\":\"say \\\"hi\\\"\"},"
                        "{\"Name\":\"Empty\",\"Value\":\"\"},"
                        "{\"Name\":\"Dollar\",\"Value\":\"$5\"}]");
    if (!json_equal(p, want)) {
        char *s = json_dumps(p, JSON_COMPACT);
        fail_msg("got %s", s);
    }
    json_decref(want);
    json_decref(p);

    /* no parameters, an empty list */
    json_t *t = load("{\"Id\":\"p\"}"), *ev = load(EVENT);
    assert_int_equal(pb_transform_sagemaker_params(t, ev, &p, &err), 0);
    assert_true(json_is_array(p) && json_array_size(p) == 0);
    json_decref(p);
    json_decref(t);
    json_decref(ev);
    p = params_of("[]", &rc, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(p), 0);
    json_decref(p);
}

static void test_params_nothing_found(void **state)
{
    (void)state;
    int rc;
    pb_error err;
    json_t *p = params_of("[{\"Name\":\"A\",\"Value\":\"x\"},{\"Name\":\"InputKey\",\"Value\":\"$.detail.object.key\"}]",
                          &rc, &err);
    assert_null(p);
    assert_int_equal(rc, PB_EVALIDATION);
    assert_string_equal(err.message,
                        "Pipeline parameter InputKey: the path $.detail.object.key found nothing in the event");
    p = params_of("[{\"Name\":\"W\",\"Value\":\"$.detail.items[*].nope\"}]", &rc, &err);
    assert_int_equal(rc, PB_EVALIDATION);
    assert_non_null(strstr(err.message, "W: the path $.detail.items[*].nope found nothing"));
}

static void test_params_length(void **state)
{
    (void)state;
    /* 1024 characters (2048 bytes of é) pass, 1025 do not */
    char *v = malloc(2 * 1025 + 1);
    for (int i = 0; i < 1025; i++)
        memcpy(v + 2 * i, "\xc3\xa9", 2);
    v[2 * 1024] = '\0';
    json_t *ev = json_pack("{s{ss}}", "detail", "long", v);
    json_t *t = load("{\"SageMakerPipelineParameters\":{\"PipelineParameterList\":[{\"Name\":\"L\",\"Value\":"
                     "\"$.detail.long\"}]}}");
    json_t *p;
    pb_error err;
    assert_int_equal(pb_transform_sagemaker_params(t, ev, &p, &err), 0);
    assert_int_equal(json_string_length(json_object_get(json_array_get(p, 0), "Value")), 2048);
    json_decref(p);
    json_decref(ev);
    v[2 * 1024] = '\xc3';
    v[2 * 1025] = '\0';
    ev = json_pack("{s{ss}}", "detail", "long", v);
    assert_int_equal(pb_transform_sagemaker_params(t, ev, &p, &err), PB_EVALIDATION);
    assert_null(p);
    assert_string_equal(err.message, "Pipeline parameter L: the value at $.detail.long is longer than 1024 characters");
    json_decref(ev);

    /* a non-string value whose JSON is too long */
    json_t *arr = json_array();
    for (int i = 0; i < 600; i++)
        json_array_append_new(arr, json_integer(i));
    ev = json_pack("{s{so}}", "detail", "long", arr);
    assert_int_equal(pb_transform_sagemaker_params(t, ev, &p, &err), PB_EVALIDATION);
    assert_non_null(strstr(err.message, "longer than 1024 characters"));
    json_decref(ev);
    json_decref(t);

    /* a static value too long (PutTargets refuses it; checked again here) */
    memset(v, 'x', 1025);
    v[1025] = '\0';
    t = json_pack("{s{s[{ssss}]}}", "SageMakerPipelineParameters", "PipelineParameterList", "Name", "S", "Value", v);
    ev = load(EVENT);
    assert_int_equal(pb_transform_sagemaker_params(t, ev, &p, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "Pipeline parameter S: the value is longer than 1024 characters");
    json_decref(t);
    json_decref(ev);
    free(v);
}

static void test_params_malformed(void **state)
{
    (void)state;
    int rc;
    pb_error err;
    assert_null(params_of("[{\"Name\":\"A\"}]", &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
    assert_null(params_of("[{\"Name\":\"A\",\"Value\":1}]", &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
    assert_null(params_of("[\"x\"]", &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
    assert_null(params_of("{}", &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
}

/* ------------------------------------------ allocation failures (jansson) */

static int fail_at, allocs;

static void *failing_malloc(size_t n)
{
    if (fail_at && ++allocs == fail_at)
        return NULL;
    return malloc(n);
}

/* Fails the 1st, 2nd, ... allocation jansson makes inside fn until one run
 * makes none fail: every run gives PB_ENOMEM or the right answer, and (under
 * ASan) leaks nothing. */
static void test_allocation_failures(void **state)
{
    (void)state;
    json_t *ev = load(EVENT);
    json_t *t = transformer("{\"a\": <payload>, \"b\": \"<ids> <aws.events.event>\", \"c\": <aws.events.event.json>,"
                            " \"d\": <missing>, \"e\": <aws.events.rule-arn>}");
    json_t *sm = load("{\"SageMakerPipelineParameters\":{\"PipelineParameterList\":[{\"Name\":\"A\",\"Value\":"
                      "\"$.detail.payload\"},{\"Name\":\"B\",\"Value\":\"$.detail.items[*].id\"},"
                      "{\"Name\":\"C\",\"Value\":\"static\"}]}}");
    char *want;
    bool ni;
    pb_error err;
    assert_int_equal(pb_transform_payload(t, ev, &CTX, &want, NULL, &ni, &err), 0);
    json_t *want_params;
    assert_int_equal(pb_transform_sagemaker_params(sm, ev, &want_params, &err), 0);
    int failed_runs = 0;
    for (fail_at = 1; fail_at < 10000; fail_at++) {
        allocs = 0;
        char *out = NULL;
        json_t *params = NULL;
        json_set_alloc_funcs(failing_malloc, free);
        int rc1 = pb_transform_payload(t, ev, &CTX, &out, NULL, &ni, &err);
        int rc2 = pb_transform_sagemaker_params(sm, ev, &params, &err);
        json_set_alloc_funcs(malloc, free);
        if (rc1 == 0) {
            assert_string_equal(out, want);
            free(out);
        } else {
            assert_int_equal(rc1, PB_ENOMEM);
            assert_null(out);
        }
        if (rc2 == 0) {
            assert_true(json_equal(params, want_params));
            json_decref(params);
        } else {
            assert_int_equal(rc2, PB_ENOMEM);
            assert_null(params);
        }
        if (allocs < fail_at) {
            /* nothing failed in this run: every allocation has been failed once */
            assert_true(rc1 == 0 && rc2 == 0);
            break;
        }
        /* an allocation failed: it is reported, never swallowed */
        if (!rc1 && !rc2)
            fail_msg("allocation %d failed but both calls succeeded", fail_at);
        failed_runs++;
    }
    assert_true(failed_runs > 10);
    assert_true(allocs < fail_at);
    free(want);
    json_decref(want_params);
    json_decref(sm);
    json_decref(t);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_bare_string_gets_quotes),
        cmocka_unit_test(test_table_quoted_string),
        cmocka_unit_test(test_table_bare_object),
        cmocka_unit_test(test_table_bare_list),
        cmocka_unit_test(test_table_string_in_list),
        cmocka_unit_test(test_table_each_occurrence_replaced),
        cmocka_unit_test(test_table_object_inside_string_loses_quotes),
        cmocka_unit_test(test_table_list_inside_string),
        cmocka_unit_test(test_table_boolean_inside_string),
        cmocka_unit_test(test_table_missing_path_is_empty),
        cmocka_unit_test(test_table_object_in_quotes_not_invoked),
        cmocka_unit_test(test_table_quoted_template_keeps_quotes),
        cmocka_unit_test(test_values_are_not_escaped),
        cmocka_unit_test(test_scalars_and_numbers),
        cmocka_unit_test(test_write_json),
        cmocka_unit_test(test_minified_and_template_kinds),
        cmocka_unit_test(test_not_placeholders),
        cmocka_unit_test(test_predefined),
        cmocka_unit_test(test_bad_map),
        cmocka_unit_test(test_whole_event),
        cmocka_unit_test(test_input_constant),
        cmocka_unit_test(test_input_path),
        cmocka_unit_test(test_conflicts_and_types),
        cmocka_unit_test(test_payload_cap),
        cmocka_unit_test(test_bad_placeholder),
        cmocka_unit_test(test_params_static_and_paths),
        cmocka_unit_test(test_params_nothing_found),
        cmocka_unit_test(test_params_length),
        cmocka_unit_test(test_params_malformed),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
