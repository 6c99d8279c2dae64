/*
 * test_flatten.c — the matcher's event flattener (pb_path_trie + pb_flatten)
 * driven from raw event text.
 *
 * Covers: string escapes (\n \" \\ \/ \uXXXX, surrogate pairs to 4-byte UTF-8,
 * lone surrogates decoded as the DOM parser decodes them), keys with escapes
 * and dots (dot-joined paths), value types, numbers (pb_flat_number vs strtod,
 * huge / tiny / negative zero, source text kept), arrays of arrays, arrays of
 * objects and their (array, index) trails, duplicate keys (both values kept),
 * nesting up to PB_EVENT_MAX_DEPTH and one beyond (PB_EEVENT), skipping of
 * unmentioned subtrees full of tricky strings (braces and quotes inside
 * strings, escaped backslashes before quotes, strings and backslash runs
 * crossing 64-byte blocks — cross-checked against the DOM parser), malformed
 * input (PB_EEVENT) and the PB_EVENT_MAX_BYTES limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_arena.h"
#include "common/pb_error.h"
#include "json/pb_json.h"
#include "pattern_internal.h"

/* ------------------------------------------------------------- fixture -- */

typedef struct fx {
    pb_path_trie *t;
    pb_flat f;
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->t = pb_path_trie_new();
    pb_flat_init(&x->f);
    *state = x;
    return x->t ? 0 : -1;
}

static int teardown(void **state)
{
    fx *x = *state;
    pb_flat_free(&x->f);
    pb_path_trie_free(x->t);
    free(x);
    return 0;
}

static uint32_t want_path(fx *x, const char *path)
{
    int32_t id = pb_path_trie_intern(x->t, path, strlen(path));
    assert_true(id >= 0);
    return (uint32_t)id;
}

static int flatten(fx *x, const char *ev, size_t len)
{
    pb_error err;
    pb_error_clear(&err);
    return pb_flatten(x->t, ev, len, &x->f, &err);
}

static void flatten_ok(fx *x, const char *ev)
{
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_flatten(x->t, ev, strlen(ev), &x->f, &err);
    if (rc != 0)
        fail_msg("flatten of %s failed: %s %s", ev, pb_error_name(rc), err.message);
}

/* The fields at path id, in order. */
static size_t fields_at(const fx *x, uint32_t id, pb_flat_field **out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = pb_flat_first(&x->f, id); i != UINT32_MAX; i = x->f.fields[i].next) {
        assert_true(i < x->f.n);
        if (n < cap)
            out[n] = &x->f.fields[i];
        n++;
    }
    return n;
}

static pb_flat_field *only_field(const fx *x, uint32_t id)
{
    pb_flat_field *v[4];
    size_t n = fields_at(x, id, v, 4);
    if (n != 1)
        fail_msg("expected exactly one field at path %u, got %zu", id, n);
    return v[0];
}

/* The one field at path id whose value is `val` (fields come in no
 * particular order). */
static pb_flat_field *field_with(const fx *x, uint32_t id, const char *val)
{
    pb_flat_field *found = NULL;
    size_t n = 0, vl = strlen(val);
    for (uint32_t i = pb_flat_first(&x->f, id); i != UINT32_MAX; i = x->f.fields[i].next)
        if (x->f.fields[i].len == vl && memcmp(x->f.fields[i].val, val, vl) == 0) {
            found = &x->f.fields[i];
            n++;
        }
    if (n != 1)
        fail_msg("%zu fields at path %u with value \"%s\", expected 1", n, id, val);
    return found;
}

/* The fields at path id are exactly vals[] (as a multiset). */
static void assert_values(const fx *x, uint32_t id, const char *const *vals, size_t nvals)
{
    pb_flat_field *v[16];
    size_t n = fields_at(x, id, v, 16);
    if (n != nvals)
        fail_msg("%zu fields at path %u, expected %zu", n, id, nvals);
    bool used[16] = {false};
    for (size_t i = 0; i < nvals; i++) {
        size_t vl = strlen(vals[i]);
        bool hit = false;
        for (size_t j = 0; j < n && !hit; j++)
            if (!used[j] && v[j]->len == vl && memcmp(v[j]->val, vals[i], vl) == 0)
                used[j] = hit = true;
        if (!hit)
            fail_msg("no field with value \"%s\" at path %u", vals[i], id);
    }
}
#define ASSERT_VALUES(x, id, ...)                                                                  \
    do {                                                                                           \
        const char *const v_[] = {__VA_ARGS__};                                                    \
        assert_values(x, id, v_, sizeof v_ / sizeof v_[0]);                                        \
    } while (0)

static void assert_bytes(const pb_flat_field *ff, const char *want, size_t wantlen)
{
    if (ff->len != wantlen || memcmp(ff->val, want, wantlen) != 0) {
        char hex[512] = "";
        size_t hl = 0;
        for (size_t i = 0; i < ff->len && hl < 480; i++)
            hl += (size_t)snprintf(hex + hl, sizeof hex - hl, "%02x ", (unsigned char)ff->val[i]);
        fail_msg("value has %zu bytes [%s], expected %zu bytes", ff->len, hex, wantlen);
    }
}

/* The string value of key "s" as the DOM parser decodes it. */
static bool dom_string(const char *ev, const char *key, char **out, size_t *outlen)
{
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = NULL;
    bool ok = false;
    if (pb_json_parse(ev, strlen(ev), NULL, &a, &doc, NULL) == 0) {
        pb_json *v = pb_json_get(doc, key);
        if (v && v->type == PB_JSON_STRING) {
            *out = malloc(v->len + 1);
            memcpy(*out, v->str, v->len);
            *outlen = v->len;
            ok = true;
        }
    }
    pb_arena_free(&a);
    return ok;
}

/* ------------------------------------------------------------ escapes -- */

static void test_string_escapes(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    flatten_ok(x, "{\"s\":\"a\\nb\\\"c\\\\d\\/e\\u0041\\u00e9\\u20ac\\t\\r\\b\\f\"}");
    pb_flat_field *ff = only_field(x, s);
    assert_int_equal(ff->type, PB_V_STR);
    const char want[] = "a\nb\"c\\d/eA\xc3\xa9\xe2\x82\xac\t\r\b\f";
    assert_bytes(ff, want, sizeof want - 1);
}

static void test_string_no_escapes_raw_utf8(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    flatten_ok(x, "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x9a\x80\"}");
    const char want[] = "caf\xc3\xa9 \xf0\x9f\x9a\x80";
    assert_bytes(only_field(x, s), want, sizeof want - 1);
}

static void test_surrogate_pair(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    flatten_ok(x, "{\"s\":\"x\\ud83d\\ude00y\\uD83D\\uDE80\"}");
    const char want[] = "x\xf0\x9f\x98\x80y\xf0\x9f\x9a\x80";
    assert_bytes(only_field(x, s), want, sizeof want - 1);
}

static void test_escaped_nul(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    flatten_ok(x, "{\"s\":\"a\\u0000b\"}");
    assert_bytes(only_field(x, s), "a\0b", 3);
}

/* A lone surrogate (or a high surrogate followed by something else) is legal
 * JSON text for Jackson; the flattener must decode it exactly as the DOM
 * parser does, or a pattern literal with the same escape could never match. */
static void test_lone_surrogates_agree_with_dom(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    const char *evs[] = {
        "{\"s\":\"\\ud800\"}",       "{\"s\":\"a\\udc00b\"}",       "{\"s\":\"\\ud800\\u0041\"}",
        "{\"s\":\"\\ud800x\"}",      "{\"s\":\"\\udbff\\udbff\"}", "{\"s\":\"\\ude00\\ud83d\"}",
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        flatten_ok(x, evs[i]);
        char *want;
        size_t wantlen;
        if (!dom_string(evs[i], "s", &want, &wantlen))
            fail_msg("DOM parser rejected %s", evs[i]);
        assert_bytes(only_field(x, s), want, wantlen);
        free(want);
    }
    /* pb_utf8_encode's documented form: a surrogate is 3 bytes */
    flatten_ok(x, "{\"s\":\"\\ud800\"}");
    assert_bytes(only_field(x, s), "\xed\xa0\x80", 3);
}

static void test_keys_with_escapes(void **state)
{
    fx *x = *state;
    uint32_t k1 = want_path(x, "k\xc3\xa9y");
    uint32_t k2 = want_path(x, "a\"b");
    uint32_t k3 = want_path(x, "c/d");
    uint32_t k4 = want_path(x, "e\\f");
    flatten_ok(x, "{\"k\\u00e9y\":1,\"a\\\"b\":2,\"c\\/d\":3,\"e\\\\f\":4}");
    assert_bytes(only_field(x, k1), "1", 1);
    assert_bytes(only_field(x, k2), "2", 1);
    assert_bytes(only_field(x, k3), "3", 1);
    assert_bytes(only_field(x, k4), "4", 1);
    /* the same keys written without escapes */
    flatten_ok(x, "{\"k\xc3\xa9y\":5,\"c/d\":6}");
    assert_bytes(only_field(x, k1), "5", 1);
    assert_bytes(only_field(x, k3), "6", 1);
    assert_int_equal(pb_flat_first(&x->f, k2), UINT32_MAX);
}

static void test_dot_joined_paths(void **state)
{
    fx *x = *state;
    uint32_t ab = want_path(x, "a.b");
    flatten_ok(x, "{\"a\":{\"b\":1}}");
    assert_bytes(only_field(x, ab), "1", 1);
    flatten_ok(x, "{\"a.b\":2}");
    assert_bytes(only_field(x, ab), "2", 1);
    flatten_ok(x, "{\"a\\u002eb\":3}"); /* an escaped dot is still a dot */
    assert_bytes(only_field(x, ab), "3", 1);
    flatten_ok(x, "{\"a\":{\"b\":4},\"a.b\":5}");
    ASSERT_VALUES(x, ab, "4", "5");
    /* "ab" and "a" -> "b.c" are other paths */
    flatten_ok(x, "{\"ab\":1,\"a\":{\"bc\":2}}");
    assert_int_equal(pb_flat_first(&x->f, ab), UINT32_MAX);
}

/* -------------------------------------------------------------- types -- */

static void test_value_types(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s"), n = want_path(x, "n"), t = want_path(x, "t"), f = want_path(x, "f"),
             z = want_path(x, "z"), o = want_path(x, "o");
    flatten_ok(x, "{\"s\":\"str\",\"n\":-12.5e1,\"t\":true,\"f\":false,\"z\":null,\"o\":{\"p\":1}}");
    assert_int_equal(only_field(x, s)->type, PB_V_STR);
    assert_int_equal(only_field(x, n)->type, PB_V_NUM);
    assert_int_equal(only_field(x, t)->type, PB_V_TRUE);
    assert_int_equal(only_field(x, f)->type, PB_V_FALSE);
    assert_int_equal(only_field(x, z)->type, PB_V_NULL);
    /* an object at a leaf path is not a leaf value */
    assert_int_equal(pb_flat_first(&x->f, o), UINT32_MAX);
    /* number source text is kept */
    assert_bytes(only_field(x, n), "-12.5e1", 7);
}

static void test_unwanted_paths_not_emitted(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a");
    flatten_ok(x, "{\"b\":1,\"a\":2,\"c\":{\"a\":3},\"aa\":4}");
    assert_int_equal(x->f.n, 1);
    assert_bytes(only_field(x, a), "2", 1);
}

static void test_reuse_clears_previous_event(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a"), b = want_path(x, "b");
    flatten_ok(x, "{\"a\":1,\"b\":2}");
    assert_int_equal(x->f.n, 2);
    flatten_ok(x, "{\"b\":3}");
    assert_int_equal(pb_flat_first(&x->f, a), UINT32_MAX);
    assert_bytes(only_field(x, b), "3", 1);
    /* a failed flatten followed by a good one */
    assert_int_equal(flatten(x, "{\"a\":", 5), PB_EEVENT);
    flatten_ok(x, "{\"a\":\"z\"}");
    assert_bytes(only_field(x, a), "z", 1);
    assert_int_equal(pb_flat_first(&x->f, b), UINT32_MAX);
}

/* ------------------------------------------------------------ numbers -- */

static void check_number(fx *x, uint32_t n, const char *text)
{
    char ev[512];
    snprintf(ev, sizeof ev, "{\"n\":%s}", text);
    flatten_ok(x, ev);
    pb_flat_field *ff = only_field(x, n);
    assert_int_equal(ff->type, PB_V_NUM);
    assert_bytes(ff, text, strlen(text));
    double got;
    bool ok = pb_flat_number(ff, &got);
    double want = strtod(text, NULL);
    if (isinf(want)) {
        /* out of range: either unusable, or ±inf (pb_number.h) */
        if (ok && !(isinf(got) && signbit(got) == signbit(want)))
            fail_msg("%s: got %.17g, expected unusable or %g", text, got, want);
        return;
    }
    if (!ok)
        fail_msg("%s: pb_flat_number said unusable", text);
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%s: got %.17g (%a), strtod gives %.17g (%a)", text, got, got, want, want);
    /* a second call gives the same answer */
    double again;
    assert_true(pb_flat_number(ff, &again));
    assert_memory_equal(&again, &got, sizeof got);
}

static void test_numbers(void **state)
{
    fx *x = *state;
    uint32_t n = want_path(x, "n");
    const char *nums[] = {
        "0", "-0", "-0.0", "1", "300", "300.0", "3e2", "3E+2", "30000e-2", "0.1", "-1.5",
        "1e308", "1.7976931348623157e308", "2.2250738585072014e-308", "2.2250738585072011e-308",
        "4.9406564584124654e-324", "5e-324", "1e-320", "1e-400", "-1e-400", "1e400", "-1e400",
        "123456789012", "9007199254740993", "18446744073709551616", "123456789012345678901234567890",
        "0.10000000000000000555111512312578270211815834045410156250001",
        "7.2057594037927933e16", "1.00000000000000011102230246251565404236316680908203125",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        check_number(x, n, nums[i]);
    /* -0 keeps its sign */
    flatten_ok(x, "{\"n\":-0}");
    double z;
    assert_true(pb_flat_number(only_field(x, n), &z));
    assert_true(z == 0 && signbit(z));
}

/* -------------------------------------------------------------- arrays -- */

static void test_arrays_of_arrays(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a");
    flatten_ok(x, "{\"a\":[[1,2],[3,[4,[]]],[],\"five\",[[null]]]}");
    ASSERT_VALUES(x, a, "1", "2", "3", "4", "five", "null");
    assert_int_equal(field_with(x, a, "4")->type, PB_V_NUM);
    assert_int_equal(field_with(x, a, "five")->type, PB_V_STR);
    assert_int_equal(field_with(x, a, "null")->type, PB_V_NULL);
}

static void test_empty_array_has_no_fields(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a");
    flatten_ok(x, "{\"a\":[]}");
    assert_int_equal(pb_flat_first(&x->f, a), UINT32_MAX);
    assert_int_equal(x->f.n, 0);
}

/* The step of field ff for the array instance `array`, or NULL. */
static const pb_trail_step *step_for(const fx *x, const pb_flat_field *ff, uint32_t array)
{
    for (uint16_t i = 0; i < ff->trail_len; i++) {
        const pb_trail_step *st = &x->f.trail[ff->trail_off + i];
        if (st->array == array)
            return st;
    }
    return NULL;
}

/* Do two fields come from compatible elements of every array they share? */
static bool same_elements(const fx *x, const pb_flat_field *p, const pb_flat_field *q)
{
    for (uint16_t i = 0; i < p->trail_len; i++) {
        const pb_trail_step *a = &x->f.trail[p->trail_off + i];
        const pb_trail_step *b = step_for(x, q, a->array);
        if (b && b->index != a->index)
            return false;
    }
    return true;
}

static void test_array_of_objects_trails(void **state)
{
    fx *x = *state;
    uint32_t first = want_path(x, "e.first"), last = want_path(x, "e.last");
    flatten_ok(x, "{\"e\":[{\"first\":\"John\",\"last\":\"Jones\"},{\"first\":\"Anna\",\"last\":\"Smith\"}]}");
    ASSERT_VALUES(x, first, "John", "Anna");
    ASSERT_VALUES(x, last, "Jones", "Smith");
    pb_flat_field *john = field_with(x, first, "John"), *anna = field_with(x, first, "Anna");
    pb_flat_field *jones = field_with(x, last, "Jones"), *smith = field_with(x, last, "Smith");
    /* every field inside the array records a step for it */
    pb_flat_field *all[] = {john, anna, jones, smith};
    for (int i = 0; i < 4; i++) {
        assert_true(all[i]->trail_len >= 1);
        assert_true(all[i]->trail_off + all[i]->trail_len <= x->f.ntrail);
    }
    assert_true(same_elements(x, john, jones));
    assert_true(same_elements(x, anna, smith));
    assert_false(same_elements(x, anna, jones)); /* different elements */
    assert_false(same_elements(x, john, smith));
}

static void test_nested_array_trails(void **state)
{
    fx *x = *state;
    uint32_t c = want_path(x, "a.b.c"), d = want_path(x, "a.b.d"), top = want_path(x, "t");
    flatten_ok(x, "{\"t\":1,\"a\":[{\"b\":[{\"c\":1},{\"d\":2}]},{\"b\":[{\"c\":3,\"d\":4}]}]}");
    ASSERT_VALUES(x, c, "1", "3");
    ASSERT_VALUES(x, d, "2", "4");
    pb_flat_field *c1 = field_with(x, c, "1"), *c3 = field_with(x, c, "3");
    pb_flat_field *d2 = field_with(x, d, "2"), *d4 = field_with(x, d, "4");
    assert_false(same_elements(x, c1, d2)); /* inner elements differ */
    assert_false(same_elements(x, c1, d4)); /* outer elements differ */
    assert_false(same_elements(x, c3, d2));
    assert_true(same_elements(x, c3, d4));  /* same inner element */
    /* a field outside every array is compatible with all */
    pb_flat_field *t = only_field(x, top);
    assert_int_equal(t->trail_len, 0);
    assert_true(same_elements(x, t, c1));
    /* fields two arrays deep record a step for each */
    assert_true(c1->trail_len >= 2 && c3->trail_len >= 2);
}

static void test_duplicate_keys_kept(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a"), bc = want_path(x, "b.c");
    flatten_ok(x, "{\"a\":1,\"b\":{\"c\":\"x\"},\"a\":2,\"b\":{\"c\":\"y\"},\"a\":[3]}");
    ASSERT_VALUES(x, a, "1", "2", "3");
    ASSERT_VALUES(x, bc, "x", "y");
}

/* --------------------------------------------------------------- depth -- */

/* An event of exactly `depth` nested containers: {"a":{"a":...{"a":1}...}}
 * (objects) or {"a":[[...[1]...]]} (arrays inside the top object). */
static char *nested(int depth, bool arrays)
{
    size_t cap = (size_t)depth * 8 + 16;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{");
    for (int i = 1; i < depth; i++)
        p += sprintf(p, arrays ? (i == 1 ? "\"a\":[" : "[") : "\"a\":{");
    p += sprintf(p, arrays && depth > 1 ? "1" : "\"a\":1");
    for (int i = 1; i < depth; i++)
        p += sprintf(p, arrays ? "]" : "}");
    p += sprintf(p, "}");
    return s;
}

static void test_depth_limit(void **state)
{
    fx *x = *state;
    /* the deepest path, so the flattener walks every level */
    char path[PB_EVENT_MAX_DEPTH * 2 + 2] = "a";
    for (int i = 1; i < PB_EVENT_MAX_DEPTH; i++)
        strcat(path, ".a");
    uint32_t deep = want_path(x, path);
    uint32_t a = want_path(x, "a");
    for (int arrays = 0; arrays < 2; arrays++) {
        char *ok = nested(PB_EVENT_MAX_DEPTH, arrays);
        char *over = nested(PB_EVENT_MAX_DEPTH + 1, arrays);
        char *far = nested(PB_EVENT_MAX_DEPTH * 4, arrays);
        flatten_ok(x, ok);
        if (arrays)
            assert_bytes(only_field(x, a), "1", 1);
        else
            assert_bytes(only_field(x, deep), "1", 1);
        if (flatten(x, over, strlen(over)) != PB_EEVENT)
            fail_msg("%s depth %d accepted", arrays ? "array" : "object", PB_EVENT_MAX_DEPTH + 1);
        assert_int_equal(flatten(x, far, strlen(far)), PB_EEVENT);
        free(ok);
        free(over);
        free(far);
    }
}

/* The same limit applies inside subtrees no pattern mentions (depths far
 * beyond it, so that the test does not depend on how levels are counted). */
static void test_depth_limit_skipped_subtree(void **state)
{
    fx *x = *state;
    uint32_t w = want_path(x, "w");
    const int depths[] = {PB_EVENT_MAX_DEPTH - 1, PB_EVENT_MAX_DEPTH * 4, 100000};
    for (int arrays = 0; arrays < 2; arrays++) {
        for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
            int d = depths[k];
            char *inner = nested(d, arrays); /* {"a":...} with d containers */
            /* {"w":1,"a":...}: same depth, and "a" is not wanted */
            char *ev = malloc(strlen(inner) + 16);
            sprintf(ev, "{\"w\":1,%s", inner + 1);
            int rc = flatten(x, ev, strlen(ev));
            if (d <= PB_EVENT_MAX_DEPTH) {
                if (rc != 0)
                    fail_msg("depth %d (skipped, %s) rejected", d, arrays ? "arrays" : "objects");
                assert_bytes(only_field(x, w), "1", 1);
            } else if (rc != PB_EEVENT) {
                fail_msg("depth %d (skipped, %s) accepted", d, arrays ? "arrays" : "objects");
            }
            free(ev);
            free(inner);
        }
    }
}

/* ------------------------------------------------------------ skipping -- */

static void test_skip_tricky_strings(void **state)
{
    fx *x = *state;
    uint32_t want = want_path(x, "want");
    const char *evs[] = {
        "{\"skip\":{\"x\":\"}{][\\\"\",\"y\":[\"]\",\"}\",\"\\\\\"]},\"want\":\"ok\"}",
        "{\"skip\":\"\\\\\",\"want\":\"ok\"}",
        "{\"skip\":\"\\\\\\\"\",\"want\":\"ok\"}",
        "{\"skip\":[\"\\\\\\\\\",{\"q\":\"\\\\\\\"}\"}],\"want\":\"ok\"}",
        "{\"skip\":{\"s\":\"\\\",\\\"want\\\":\\\"bad\"},\"want\":\"ok\"}",
        "{\"skip\":[\"{\\\"want\\\":\\\"bad\\\"}\",\"[[[\"],\"want\":\"ok\"}",
        "{\"skip\":{\"want\":\"nested-not-top\"},\"want\":\"ok\"}",
        "{\"skip\":\"\\u0022\\u005c\",\"want\":\"ok\"}",
        "{ \"skip\" : [ 1 , -2.5e3 , true , false , null , { } , [ ] ] , \"want\" : \"ok\" }",
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        pb_error err;
        pb_error_clear(&err);
        int rc = pb_flatten(x->t, evs[i], strlen(evs[i]), &x->f, &err);
        if (rc != 0)
            fail_msg("%s: %s", evs[i], err.message);
        pb_flat_field *v[4];
        size_t n = fields_at(x, want, v, 4);
        if (n != 1 || v[0]->len != 2 || memcmp(v[0]->val, "ok", 2) != 0)
            fail_msg("%s: %zu fields at \"want\" (first %.*s)", evs[i], n, n ? (int)v[0]->len : 0,
                     n ? v[0]->val : "");
    }
}

/* Strings and backslash runs placed at every offset across several 64-byte
 * blocks, inside a skipped subtree; the wanted field after it must be found
 * exactly as the DOM parser sees it, and fake "want" keys inside the strings
 * must not be. */
static void test_skip_across_blocks(void **state)
{
    fx *x = *state;
    uint32_t want = want_path(x, "want");
    static const char *const tricks[] = {
        "\\\"",                            /* escaped quote */
        "\\\\",                            /* escaped backslash */
        "\\\\\\\"",                        /* \\ then \" */
        "\\\\\\\\\\\\\\\\",                /* four escaped backslashes */
        "}]{[",                            /* brackets in a string */
        "\\\",\\\"want\\\":\\\"bad",       /* a fake member */
        "\\u005c",                         /* escaped backslash as \u */
        "\\u0022}",                        /* escaped quote as \u */
        "\xc3\xa9\xf0\x9f\x98\x80",        /* multi-byte UTF-8 */
    };
    char ev[1024], backslashes[256];
    memset(backslashes, '\\', sizeof backslashes - 1);
    backslashes[sizeof backslashes - 1] = '\0';
    for (size_t t = 0; t < sizeof tricks / sizeof tricks[0]; t++) {
        for (int pad = 0; pad < 200; pad++) {
            for (int form = 0; form < 3; form++) {
                char padding[256];
                memset(padding, 'p', (size_t)pad);
                padding[pad] = '\0';
                if (form == 0) /* the trick inside a skipped string value */
                    snprintf(ev, sizeof ev, "{\"skip\":\"%s%s\",\"want\":\"ok%d\"}", padding, tricks[t], pad);
                else if (form == 1) /* inside a skipped object, then a key */
                    snprintf(ev, sizeof ev, "{\"skip\":{\"k%s\":[\"%s\",{\"z\":\"%s\"}]},\"want\":\"ok%d\"}", padding,
                             tricks[t], tricks[t], pad);
                else /* a long run of escaped backslashes (an even count) ending anywhere */
                    snprintf(ev, sizeof ev, "{\"skip\":[\"%.*s\",\"%s\"],\"want\":\"ok%d\"}", (pad / 2) * 2,
                             backslashes, tricks[t], pad);
                char *dom;
                size_t domlen;
                if (!dom_string(ev, "want", &dom, &domlen))
                    fail_msg("test bug: DOM parser rejects %s", ev);
                pb_error err;
                pb_error_clear(&err);
                int rc = pb_flatten(x->t, ev, strlen(ev), &x->f, &err);
                if (rc != 0)
                    fail_msg("trick %zu pad %d form %d: %s\n  event: %s", t, pad, form, err.message, ev);
                pb_flat_field *v[4];
                size_t n = fields_at(x, want, v, 4);
                if (n != 1 || v[0]->len != domlen || memcmp(v[0]->val, dom, domlen) != 0)
                    fail_msg("trick %zu pad %d form %d: %zu fields at \"want\", first \"%.*s\", expected \"%.*s\"\n"
                             "  event: %s",
                             t, pad, form, n, n ? (int)v[0]->len : 0, n ? v[0]->val : "", (int)domlen, dom, ev);
                free(dom);
            }
        }
    }
}

/* A long wanted string crossing blocks, decoded exactly. */
static void test_long_wanted_string(void **state)
{
    fx *x = *state;
    uint32_t s = want_path(x, "s");
    for (int len = 0; len < 300; len += 7) {
        char body[2048], want[1024];
        size_t bl = 0, wl = 0;
        for (int i = 0; i < len; i++) {
            switch (i % 11) {
            case 3: bl += (size_t)sprintf(body + bl, "\\\""); want[wl++] = '"'; break;
            case 7: bl += (size_t)sprintf(body + bl, "\\\\"); want[wl++] = '\\'; break;
            case 9: bl += (size_t)sprintf(body + bl, "\\u0041"); want[wl++] = 'A'; break;
            default: body[bl++] = (char)('a' + i % 26); want[wl++] = (char)('a' + i % 26); break;
            }
        }
        body[bl] = '\0';
        char ev[2200];
        snprintf(ev, sizeof ev, "{\"s\":\"%s\"}", body);
        flatten_ok(x, ev);
        assert_bytes(only_field(x, s), want, wl);
    }
}

/* ----------------------------------------------------------- malformed -- */

static void expect_bad(fx *x, const char *ev, size_t len)
{
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_flatten(x->t, ev, len, &x->f, &err);
    if (rc != PB_EEVENT)
        fail_msg("event '%.*s' gave %s, expected PB_EEVENT", (int)len, ev, pb_error_name(rc));
}

static void check_malformed(fx *x)
{
    static const char *const bad[] = {
        "",                       /* empty */
        "   \n\t",                /* whitespace only */
        "[1,2]",                  /* not an object */
        "\"str\"",
        "42",
        "null",
        "true",
        "{\"a\":\"abc",           /* unterminated string */
        "{\"a\":\"abc\\\"}",      /* the quote is escaped: unterminated */
        "{\"a\":1",               /* unterminated object */
        "{\"a\":{\"b\":1}",
        "{\"a\":[1,2",            /* unterminated array */
        "{\"skip\":{\"x\":\"abc}",/* unterminated string in a subtree */
        "{\"skip\":[[[1]]",       /* unbalanced subtree */
        "{\"a\":1}x",             /* trailing garbage */
        "{\"a\":1}}",
        "{\"a\":1} {\"a\":2}",
        "{\"a\":1,}",             /* trailing comma */
        "{\"a\" 1}",              /* missing colon */
        "{\"a\":}",               /* missing value */
        "{a:1}",                  /* unquoted key */
        "{\"a\":tru}",            /* bad literal */
        "{\"a\":01}",             /* leading zero */
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":\"\\x\"}",        /* bad escape */
        "{\"a\":\"\\u12\"}",      /* short \u escape */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(x, bad[i], strlen(bad[i]));
}

static void test_malformed_wanted(void **state)
{
    fx *x = *state;
    want_path(x, "a");
    check_malformed(x);
}

/* Structural errors are found even when nothing is wanted. */
static void test_malformed_nothing_wanted(void **state)
{
    fx *x = *state;
    static const char *const bad[] = {"", "  ", "[1]", "\"s\"", "{\"a\":\"abc", "{\"a\":1", "{\"a\":[1,2",
                                      "{\"a\":1}x", "{\"s\":{\"x\":\"}\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(x, bad[i], strlen(bad[i]));
    /* and good events are fine with an empty trie */
    const char *good = "{\"a\":[1,{\"b\":\"}\"}]}";
    assert_int_equal(flatten(x, good, strlen(good)), 0);
    assert_int_equal(x->f.n, 0);
}

/* Bytes after an embedded NUL still count: the length is the event. */
static void test_length_is_respected(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a");
    const char ev[] = "{\"a\":1}{\"a\":2}";
    assert_int_equal(flatten(x, ev, 7), 0);
    assert_bytes(only_field(x, a), "1", 1);
    expect_bad(x, ev, sizeof ev - 1);
    expect_bad(x, ev, 6); /* cut short */
}

/* ---------------------------------------------------------------- size -- */

static char *event_of_size(size_t size)
{
    /* {"a":1,"pad":"ppp...p"} */
    char *s = malloc(size + 1);
    const char *head = "{\"a\":1,\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(s, head, hl);
    memset(s + hl, 'p', size - hl - 2);
    s[size - 2] = '"';
    s[size - 1] = '}';
    s[size] = '\0';
    return s;
}

static void test_max_bytes(void **state)
{
    fx *x = *state;
    uint32_t a = want_path(x, "a");
    char *ok = event_of_size(PB_EVENT_MAX_BYTES);
    assert_int_equal(flatten(x, ok, PB_EVENT_MAX_BYTES), 0);
    assert_bytes(only_field(x, a), "1", 1);
    free(ok);
    char *big = event_of_size(PB_EVENT_MAX_BYTES + 1);
    assert_int_equal(flatten(x, big, PB_EVENT_MAX_BYTES + 1), PB_EEVENT);
    free(big);
    /* a wanted string of almost the whole event */
    uint32_t pad = want_path(x, "pad");
    ok = event_of_size(PB_EVENT_MAX_BYTES);
    assert_int_equal(flatten(x, ok, PB_EVENT_MAX_BYTES), 0);
    assert_int_equal(only_field(x, pad)->len, PB_EVENT_MAX_BYTES - strlen("{\"a\":1,\"pad\":\"") - 2);
    free(ok);
}

/* ---------------------------------------------------------- path trie -- */

static void test_trie_ids_and_release(void **state)
{
    fx *x = *state;
    int32_t a1 = pb_path_trie_intern(x->t, "a.b", 3);
    int32_t a2 = pb_path_trie_intern(x->t, "a.b", 3);
    int32_t c = pb_path_trie_intern(x->t, "c", 1);
    assert_true(a1 >= 0 && c >= 0);
    assert_int_equal(a1, a2); /* same path, same id */
    assert_int_not_equal(a1, c);
    assert_true((uint32_t)a1 < pb_path_trie_ids(x->t) && (uint32_t)c < pb_path_trie_ids(x->t));
    flatten_ok(x, "{\"a\":{\"b\":1},\"c\":2}");
    assert_int_equal(x->f.n, 2);
    /* one release of two references keeps the path */
    pb_path_trie_release(x->t, "a.b", 3);
    flatten_ok(x, "{\"a\":{\"b\":1},\"c\":2}");
    assert_int_equal(x->f.n, 2);
    assert_bytes(only_field(x, (uint32_t)a1), "1", 1);
    /* the last release drops it */
    pb_path_trie_release(x->t, "a.b", 3);
    flatten_ok(x, "{\"a\":{\"b\":1},\"c\":2}");
    assert_int_equal(x->f.n, 1);
    assert_bytes(only_field(x, (uint32_t)c), "2", 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_string_escapes),
        T(test_string_no_escapes_raw_utf8),
        T(test_surrogate_pair),
        T(test_escaped_nul),
        T(test_lone_surrogates_agree_with_dom),
        T(test_keys_with_escapes),
        T(test_dot_joined_paths),
        T(test_value_types),
        T(test_unwanted_paths_not_emitted),
        T(test_reuse_clears_previous_event),
        T(test_numbers),
        T(test_arrays_of_arrays),
        T(test_empty_array_has_no_fields),
        T(test_array_of_objects_trails),
        T(test_nested_array_trails),
        T(test_duplicate_keys_kept),
        T(test_depth_limit),
        T(test_depth_limit_skipped_subtree),
        T(test_skip_tricky_strings),
        T(test_skip_across_blocks),
        T(test_long_wanted_string),
        T(test_malformed_wanted),
        T(test_malformed_nothing_wanted),
        T(test_length_is_respected),
        T(test_max_bytes),
        T(test_trie_ids_and_release),
    };
    /* once with the skipper this CPU gets, once with the portable one */
    int failed = cmocka_run_group_tests_name("flatten (skipper chosen for this CPU)", tests, NULL, NULL);
    pb_flatten_generic_only = 1;
    failed += cmocka_run_group_tests_name("flatten (portable skipper)", tests, NULL, NULL);
    return failed;
}
