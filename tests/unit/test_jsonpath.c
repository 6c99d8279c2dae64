/*
 * test_jsonpath.c — src/bus/jsonpath.c: EventBridge's JSON path subset.
 *
 * Covers: which strings are paths as a whole (the test SageMaker parameter
 * values go through: "$.detail.state" is one, "prefix-$.detail.state" is
 * not); the length cap; evaluation of members (dashes, underscores, slashes,
 * digits, bracketed quoted keys), indices, wildcards over arrays and objects
 * (matches as an array, members lacking the rest skipped, NULL when none),
 * `$` itself, null values that are found, and PB_EVALIDATION for bad paths.
 * Results are compared with json_equal against expected JSON text.
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

#include "bus/pb_jsonpath.h"

static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"e1\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\","
    "\"resources\":[\"arn:aws:s3:::b\",\"arn:aws:s3:::c\"],"
    "\"detail\":{\"state\":\"RUNNING\",\"instance-id\":\"i-1\",\"snake_case\":1,\"a/b\":\"slash\",\"0\":\"zero\","
    "\"n\":null,\"flag\":false,\"num\":2.5,\"object\":{\"key\":\"data/x.csv\",\"size\":42},"
    "\"items\":[{\"id\":\"a\",\"q\":1},{\"q\":2},{\"id\":\"c\"}],\"empty\":[],\"nested\":[[1,2],[3]],"
    "\"odd key\":\"spaced\"}}";

static json_t *doc(void)
{
    json_error_t e;
    json_t *d = json_loads(EVENT, 0, &e);
    if (!d)
        fail_msg("fixture: %s", e.text);
    return d;
}

/* Evaluates path on the fixture and compares with want (JSON text, or NULL
 * for "finds nothing"). */
static void expect(const char *path, const char *want)
{
    json_t *d = doc();
    json_t *out = (json_t *)1;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_jsonpath_eval(d, path, &out, &err);
    if (rc)
        fail_msg("%s: rc %d: %s", path, rc, err.message);
    if (!want) {
        if (out) {
            char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
            fail_msg("%s: expected nothing, found %s", path, s);
        }
    } else {
        json_error_t je;
        json_t *w = json_loads(want, JSON_DECODE_ANY, &je);
        assert_non_null(w);
        if (!out)
            fail_msg("%s: found nothing, expected %s", path, want);
        if (!json_equal(out, w)) {
            char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
            fail_msg("%s: found %s, expected %s", path, s, want);
        }
        json_decref(w);
    }
    json_decref(out);
    json_decref(d);
}

static void test_valid(void **state)
{
    (void)state;
    const char *good[] = {"$", "$.detail", "$.detail.state", "$.detail-type", "$.detail.instance-id",
                          "$.detail.snake_case", "$.detail.a/b", "$.resources[0]", "$.resources[12]",
                          "$.detail.items[*].id", "$.detail.*", "$.*", "$[*]", "$.detail.nested[0][1]",
                          "$['detail']['odd key']", "$[\"detail\"].state", "$.detail.0", "$.a.b.c.d.e.f",
                          "$['']", "$.resources[007]", "$.A-Z_a-z/0-9"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!pb_jsonpath_valid(good[i]))
            fail_msg("%s should be a path", good[i]);
    const char *bad[] = {"",
                         "prefix-$.detail.state",
                         "$.detail.state-suffix ",
                         " $.detail",
                         "detail.state",
                         "$.",
                         "$.detail.",
                         "$..detail",
                         "$detail",
                         "$.detail state",
                         "$.detail[",
                         "$.detail[]",
                         "$.detail[-1]",
                         "$.detail[1:2]",
                         "$.detail[?(@.x)]",
                         "$.detail['x]",
                         "$.detail['x'",
                         "$.detail[x]",
                         "$.detail[1234567890]",
                         "$.**",
                         "$.de*",
                         "$.a:b",
                         "$.é",
                         "$$",
                         "ml.m5.xlarge",
                         "$5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pb_jsonpath_valid(bad[i]))
            fail_msg("%s should not be a path", bad[i]);
    assert_false(pb_jsonpath_valid(NULL));
}

static void test_length_cap(void **state)
{
    (void)state;
    char p[PB_JSONPATH_MAX + 8];
    /* "$" then ".a" repeated: exactly PB_JSONPATH_MAX characters is a path, one more is not */
    p[0] = '$';
    size_t n = 1;
    while (n + 2 <= PB_JSONPATH_MAX) {
        p[n++] = '.';
        p[n++] = 'a';
    }
    if (n < PB_JSONPATH_MAX)
        p[n++] = 'a';
    p[n] = '\0';
    assert_int_equal(strlen(p), PB_JSONPATH_MAX);
    assert_true(pb_jsonpath_valid(p));
    p[n++] = 'a';
    p[n] = '\0';
    assert_false(pb_jsonpath_valid(p));
    json_t *d = doc(), *out = (json_t *)1;
    pb_error err;
    assert_int_equal(pb_jsonpath_eval(d, p, &out, &err), PB_EVALIDATION);
    assert_null(out);
    assert_non_null(strstr(err.message, "longer than 1024"));
    json_decref(d);
}

static void test_members_and_indices(void **state)
{
    (void)state;
    expect("$.detail.state", "\"RUNNING\"");
    expect("$.detail-type", "\"Object Created\"");
    expect("$.detail.instance-id", "\"i-1\"");
    expect("$.detail.snake_case", "1");
    expect("$.detail.a/b", "\"slash\"");
    expect("$.detail.0", "\"zero\"");
    expect("$.detail.object", "{\"key\":\"data/x.csv\",\"size\":42}");
    expect("$.detail.object.key", "\"data/x.csv\"");
    expect("$.detail.num", "2.5");
    expect("$.detail.flag", "false");
    expect("$.detail.n", "null"); /* a null that is there is found */
    expect("$.resources[0]", "\"arn:aws:s3:::b\"");
    expect("$.resources[1]", "\"arn:aws:s3:::c\"");
    expect("$.detail.nested[0][1]", "2");
    expect("$.detail.items[1].q", "2");
    expect("$['detail']['odd key']", "\"spaced\"");
    expect("$[\"detail\"].object[\"size\"]", "42");
    expect("$.detail.items", "[{\"id\":\"a\",\"q\":1},{\"q\":2},{\"id\":\"c\"}]");
    expect("$", EVENT);
}

static void test_nothing_found(void **state)
{
    (void)state;
    expect("$.detail.missing", NULL);
    expect("$.detail.object.key.deeper", NULL); /* member of a string */
    expect("$.resources[2]", NULL);             /* past the end */
    expect("$.resources.x", NULL);              /* member of an array */
    expect("$.detail[0]", NULL);                /* index of an object */
    expect("$.detail.items[1].id", NULL);
    expect("$.nope.nope.nope", NULL);
}

static void test_wildcards(void **state)
{
    (void)state;
    expect("$.detail.items[*].id", "[\"a\",\"c\"]"); /* the item without id is skipped */
    expect("$.detail.items[*].q", "[1,2]");
    expect("$.resources[*]", "[\"arn:aws:s3:::b\",\"arn:aws:s3:::c\"]");
    expect("$.resources.*", "[\"arn:aws:s3:::b\",\"arn:aws:s3:::c\"]");
    expect("$.detail.object.*", "[\"data/x.csv\",42]"); /* members in document order */
    expect("$.detail.object[*]", "[\"data/x.csv\",42]");
    expect("$.detail.nested[*][*]", "[1,2,3]");
    expect("$.detail.nested[*][1]", "[2]"); /* one match is still a list */
    expect("$.detail.items[*].missing", NULL);
    expect("$.detail.empty[*]", NULL);
    expect("$.detail.state.*", NULL); /* wildcard over a string */
    expect("$.detail.empty", "[]");   /* an empty array that is there is found */
}

static void test_bad_paths_and_null_doc(void **state)
{
    (void)state;
    json_t *d = doc(), *out = (json_t *)1;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_jsonpath_eval(d, "prefix-$.detail.state", &out, &err), PB_EVALIDATION);
    assert_null(out);
    assert_string_equal(err.message, "prefix-$.detail.state is not a valid JSON path");
    out = (json_t *)1;
    assert_int_equal(pb_jsonpath_eval(d, NULL, &out, &err), PB_EVALIDATION);
    assert_null(out);
    assert_int_equal(pb_jsonpath_eval(d, "$..x", &out, NULL), PB_EVALIDATION); /* err is optional */
    /* no document: nothing is found, not an error */
    out = (json_t *)1;
    assert_int_equal(pb_jsonpath_eval(NULL, "$.a", &out, &err), 0);
    assert_null(out);
    /* the result is a new reference: the document may go first */
    assert_int_equal(pb_jsonpath_eval(d, "$.detail.object", &out, &err), 0);
    json_decref(d);
    assert_int_equal(json_integer_value(json_object_get(out, "size")), 42);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_length_cap),
        cmocka_unit_test(test_members_and_indices),
        cmocka_unit_test(test_nothing_found),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_bad_paths_and_null_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
