/*
 * test_json.c — the JSON DOM parser, number conversion and string writer.
 *
 * Covers: pb_json_parse error messages (first line) against Jackson's texts,
 * which AWS returns inside InvalidEventPatternException, and the "\n at
 * [Source: (String)...; line: L, column: C]" suffix; duplicate keys kept in
 * source order and pb_json_get's last-occurrence-wins; decoded strings
 * (surrogates), number source text, offsets, limits; pb_number_parse and
 * pb_number_scan (exactness against glibc's correctly rounded strtod on many
 * random decimal strings, 17-digit strings and exact halfway cases, and
 * rejection of non-JSON numbers); pb_json_write_string (round trip through
 * the parser, no raw control characters), pb_json_write and pb_utf8_encode.
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
#include "common/pb_buf.h"
#include "common/pb_error.h"
#include "json/pb_json.h"
#include "json/pb_number.h"

static pb_json *parse_ok(pb_arena *a, const char *text)
{
    pb_json *doc = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_json_parse(text, strlen(text), NULL, a, &doc, &err);
    if (rc != 0)
        fail_msg("parse of %s failed: %s", text, err.message);
    assert_non_null(doc);
    return doc;
}

/* ------------------------------------------------------ error messages -- */

#define VALUES "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"

static const struct {
    const char *text;
    const char *first_line; /* exact, or a prefix when prefix is set */
    bool prefix;
} jackson[] = {
    {"this is valid json but not a dict", "Unrecognized token 'this': was expecting " VALUES, false},
    {"{'bad': 'quotation'}", "Unexpected character (''' (code 39)): was expecting double-quote to start field name",
     false},
    {"{\"not\": closed mark\"", "Unrecognized token 'closed': was expecting " VALUES, false},
    {"{\"a\":tru}", "Unrecognized token 'tru': was expecting " VALUES, false},
    {"{\"a\":True}", "Unrecognized token 'True': was expecting " VALUES, false},
    {"{\"a\":nulls}", "Unrecognized token 'nulls': was expecting " VALUES, false},
    {"{1:2}", "Unexpected character ('1' (code 49)): was expecting double-quote to start field name", false},
    {"{\"a\":1,}", "Unexpected character ('}' (code 125)): was expecting double-quote to start field name", false},
    {"{\"a\" 1}", "Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value",
     false},
    {"{\"a\":[1 2]}", "Unexpected character ('2' (code 50)): was expecting comma to separate Array entries", false},
    {"{\"a\":1 \"b\":2}", "Unexpected character ('\"' (code 34)): was expecting comma to separate Object entries",
     false},
    /* Jackson 2.13+ says "expected a valid value (...)", older ones "expected a value" */
    {"{\"a\":[1,]}", "Unexpected character (']' (code 93)): expected a", true},
    {"{\"a\":}", "Unexpected character ('}' (code 125)): expected a value", false},
    {"{\"a\":'x'}", "Unexpected character (''' (code 39)): expected a valid value " VALUES, false},
    {"{\"a\":\"\\x\"}", "Unrecognized character escape 'x' (code 120)", false},
    {"{\"a\":\"\\u12G4\"}", "Unexpected character ('G' (code 71)): expected a hex-digit for character escape sequence",
     false},
    {"{\"a\":\"abc", "Unexpected end-of-input: was expecting closing quote for a string value", false},
    {"{\"a\":01}", "Invalid numeric value: Leading zeroes not allowed", false},
    {"{\"a\":-}",
     "Unexpected character ('}' (code 125)) in numeric value: expected digit (0-9) to follow minus sign, for valid "
     "numeric value",
     false},
    {"{\"a\":1.}", "Unexpected character ('}' (code 125)) in numeric value: Decimal point not followed by a digit",
     false},
    {"{\"a\":1e}",
     "Unexpected character ('}' (code 125)) in numeric value: Exponent indicator not followed by a digit", false},
    {"{\"a\":\"x\ty\"}",
     "Illegal unquoted character ((CTRL-CHAR, code 9)): has to be escaped using backslash to be included in string "
     "value",
     false},
    {"{\"a\":1", "Unexpected end-of-input: expected close marker for Object", true},
    {"{\"a\":[1", "Unexpected end-of-input: expected close marker for Array", true},
    {"{\"a\":1]", "Unexpected close marker ']': expected '}'", true},
    {"[1}", "Unexpected close marker '}': expected ']'", true},
};

static void test_jackson_messages(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof jackson / sizeof jackson[0]; i++) {
        pb_arena a;
        pb_arena_init(&a);
        pb_json *doc = NULL;
        pb_error err;
        pb_error_clear(&err);
        const char *t = jackson[i].text;
        int rc = pb_json_parse(t, strlen(t), NULL, &a, &doc, &err);
        pb_arena_free(&a);
        if (rc != PB_EVALIDATION) {
            print_error("%s: returned %s, expected PB_EVALIDATION\n", t, pb_error_name(rc));
            failures++;
            continue;
        }
        size_t l1 = strcspn(err.message, "\n");
        const char *want = jackson[i].first_line;
        bool ok = jackson[i].prefix ? strncmp(err.message, want, strlen(want)) == 0
                                    : l1 == strlen(want) && strncmp(err.message, want, l1) == 0;
        if (!ok) {
            print_error("input:    %s\n  expected: %s%s\n  got:      %.*s\n", t, want, jackson[i].prefix ? "..." : "",
                        (int)l1, err.message);
            failures++;
        }
    }
    if (failures)
        fail_msg("%zu of %zu messages differ from Jackson's", failures, sizeof jackson / sizeof jackson[0]);
}

static void test_error_location_suffix(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc;
    pb_error err;
    const char *t = "{\n  \"a\" 1}";
    pb_error_clear(&err);
    assert_int_equal(pb_json_parse(t, strlen(t), NULL, &a, &doc, &err), PB_EVALIDATION);
    const char *nl = strchr(err.message, '\n');
    assert_non_null(nl);
    const char *src = "\n at [Source: (String)\"";
    if (strncmp(nl, src, strlen(src)) != 0)
        fail_msg("second line is not Jackson's location: %s", nl);
    if (!strstr(nl, "\"; line: 2, column: "))
        fail_msg("location does not say line 2: %s", nl);
    assert_int_equal(nl[strlen(nl) - 1], ']');
    /* one line of input */
    t = "this";
    pb_error_clear(&err);
    assert_int_equal(pb_json_parse(t, strlen(t), NULL, &a, &doc, &err), PB_EVALIDATION);
    assert_non_null(strstr(err.message, "\n at [Source: (String)\"this\"; line: 1, column: "));
    pb_arena_free(&a);
}

static void test_valid_documents(void **state)
{
    (void)state;
    const char *ok[] = {"{}", "[]", " { \"a\" : [ 1 , -2.5e-3 , true , false , null , \"s\" , { } , [ ] ] } ",
                        "\t\r\n{\"a\":1}\n", "0", "-0", "\"x\"", "null", "1E+2", "{\"\":\"\"}",
                        "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pb_arena a;
        pb_arena_init(&a);
        parse_ok(&a, ok[i]);
        pb_arena_free(&a);
    }
}

/* ------------------------------------------------------------- the DOM -- */

static void test_duplicate_keys_in_order(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = parse_ok(&a, "{\"a\":1,\"b\":\"x\",\"a\":3,\"c\":null,\"a\":[5]}");
    assert_int_equal(doc->type, PB_JSON_OBJECT);
    assert_int_equal(doc->n, 5);
    const char *keys[] = {"a", "b", "a", "c", "a"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(doc->members[i].keylen, 1);
        assert_string_equal(doc->members[i].key, keys[i]);
    }
    assert_int_equal(doc->members[0].value->type, PB_JSON_NUMBER);
    assert_true(doc->members[2].value->num == 3);
    assert_int_equal(doc->members[4].value->type, PB_JSON_ARRAY);
    /* last occurrence wins */
    pb_json *v = pb_json_get(doc, "a");
    assert_non_null(v);
    assert_ptr_equal(v, doc->members[4].value);
    v = pb_json_get(doc, "b");
    assert_non_null(v);
    assert_int_equal(v->type, PB_JSON_STRING);
    assert_int_equal(pb_json_get(doc, "c")->type, PB_JSON_NULL);
    assert_null(pb_json_get(doc, "d"));
    assert_null(pb_json_get(doc, ""));
    pb_arena_free(&a);
}

static void test_get_keys_exactly(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = parse_ok(&a, "{\"a\\u0000b\":1,\"ab\":2,\"A\":3,\"k\\u00e9\":4,\"\":5}");
    assert_int_equal(doc->members[0].keylen, 3);
    assert_memory_equal(doc->members[0].key, "a\0b", 3);
    /* "a" is not the key "a\0b" */
    assert_null(pb_json_get(doc, "a"));
    assert_true(pb_json_get(doc, "ab")->num == 2);
    assert_true(pb_json_get(doc, "A")->num == 3);
    assert_true(pb_json_get(doc, "k\xc3\xa9")->num == 4);
    assert_true(pb_json_get(doc, "")->num == 5);
    pb_arena_free(&a);
}

static void check_string(const pb_json *v, const char *want, size_t wantlen)
{
    assert_int_equal(v->type, PB_JSON_STRING);
    if (v->len != wantlen || memcmp(v->str, want, wantlen) != 0) {
        char hex[256] = "";
        size_t hl = 0;
        for (size_t i = 0; i < v->len && hl < 240; i++)
            hl += (size_t)snprintf(hex + hl, sizeof hex - hl, "%02x ", (unsigned char)v->str[i]);
        fail_msg("string is [%s] (%zu bytes), expected %zu bytes", hex, v->len, wantlen);
    }
}

static void test_strings_decoded(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = parse_ok(&a, "[\"a\\n\\\"\\\\\\/\\u00e9\\u20ac\", \"\\ud83d\\ude80\", \"\\ud800\", \"\\udc00x\","
                                "\"\xf0\x9f\x9a\x80\", \"\\u0000\"]");
    assert_int_equal(doc->n, 6);
    check_string(doc->items[0], "a\n\"\\/\xc3\xa9\xe2\x82\xac", 10);
    check_string(doc->items[1], "\xf0\x9f\x9a\x80", 4);
    check_string(doc->items[2], "\xed\xa0\x80", 3); /* lone surrogate: 3 bytes, as Java */
    check_string(doc->items[3], "\xed\xb0\x80x", 4);
    check_string(doc->items[4], "\xf0\x9f\x9a\x80", 4);
    check_string(doc->items[5], "\0", 1);
    pb_arena_free(&a);
}

static void test_numbers_keep_source_text(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = parse_ok(&a, "[300.0, 3E+2, -0, 1e400, -1e400, 1e-400, 123456789012345678901234567890]");
    const char *texts[] = {"300.0", "3E+2", "-0", "1e400", "-1e400", "1e-400", "123456789012345678901234567890"};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(doc->items[i]->type, PB_JSON_NUMBER);
        assert_int_equal(doc->items[i]->len, strlen(texts[i]));
        assert_memory_equal(doc->items[i]->str, texts[i], strlen(texts[i]));
    }
    assert_true(doc->items[0]->num == 300);
    assert_true(doc->items[1]->num == 300);
    assert_true(doc->items[2]->num == 0 && signbit(doc->items[2]->num));
    assert_true(isinf(doc->items[3]->num) && doc->items[3]->num > 0);
    assert_true(isinf(doc->items[4]->num) && doc->items[4]->num < 0);
    assert_true(doc->items[5]->num == 0);
    assert_true(doc->items[6]->num == 1.2345678901234568e29);
    pb_arena_free(&a);
}

static void test_offsets(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    /*                       0123456789012345 */
    pb_json *doc = parse_ok(&a, "  {\"a\": [1, \"x\"]}");
    assert_int_equal(doc->offset, 2);
    pb_json *arr = doc->members[0].value;
    assert_int_equal(arr->offset, 8);
    assert_int_equal(arr->items[0]->offset, 9);
    assert_int_equal(arr->items[1]->offset, 12);
    pb_arena_free(&a);
}

static void test_limits(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc;
    pb_error err;
    const char *t = "{\"a\":[1,2,3]}"; /* 13 bytes */
    pb_json_limits lim = {.max_bytes = 13, .max_depth = 0};
    assert_int_equal(pb_json_parse(t, 13, &lim, &a, &doc, &err), 0);
    lim.max_bytes = 12;
    assert_int_not_equal(pb_json_parse(t, 13, &lim, &a, &doc, &err), 0);

    pb_json_limits d2 = {.max_bytes = 0, .max_depth = 2};
    const char *ok2[] = {"{\"a\":{\"b\":1}}", "[[1]]", "{\"a\":[1]}", "1", "{}"};
    const char *bad2[] = {"{\"a\":{\"b\":{\"c\":1}}}", "[[[1]]]", "{\"a\":[[]]}", "[{\"a\":{}}]"};
    for (size_t i = 0; i < sizeof ok2 / sizeof ok2[0]; i++)
        if (pb_json_parse(ok2[i], strlen(ok2[i]), &d2, &a, &doc, &err) != 0)
            fail_msg("%s rejected with max_depth 2: %s", ok2[i], err.message);
    for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++)
        if (pb_json_parse(bad2[i], strlen(bad2[i]), &d2, &a, &doc, &err) != PB_EVALIDATION)
            fail_msg("%s accepted with max_depth 2", bad2[i]);
    pb_arena_free(&a);
}

/* A document far deeper than the default limit fails cleanly (no stack
 * overflow). */
static void test_very_deep_rejected(void **state)
{
    (void)state;
    size_t depth = 200000;
    char *t = malloc(depth * 2 + 1);
    memset(t, '[', depth);
    memset(t + depth, ']', depth);
    t[depth * 2] = '\0';
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc;
    pb_error err;
    assert_int_equal(pb_json_parse(t, depth * 2, NULL, &a, &doc, &err), PB_EVALIDATION);
    pb_arena_free(&a);
    free(t);
}

/* -------------------------------------------------------------- numbers -- */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static unsigned rnd(unsigned n) { return (unsigned)(rnd64() % n); }

static void check_against_strtod(const char *s, size_t *failures)
{
    double got = -12345.0;
    if (pb_number_parse(s, strlen(s), &got) != 0) {
        if ((*failures)++ < 10)
            print_error("pb_number_parse rejected valid %s\n", s);
        return;
    }
    double want = strtod(s, NULL);
    if (memcmp(&got, &want, sizeof got) != 0) {
        if ((*failures)++ < 10)
            print_error("%s: got %a (%.17g), strtod %a (%.17g)\n", s, got, got, want, want);
    }
}

static void random_decimal(char *out)
{
    char *p = out;
    if (rnd(2))
        *p++ = '-';
    unsigned kind = rnd(4);
    unsigned idigits = kind == 0 ? 1 : 1 + rnd(kind == 3 ? 40 : 20);
    if (kind == 0) {
        *p++ = '0';
    } else {
        *p++ = (char)('1' + rnd(9));
        for (unsigned i = 1; i < idigits; i++)
            *p++ = (char)('0' + rnd(10));
    }
    if (rnd(3)) {
        *p++ = '.';
        unsigned f = 1 + rnd(kind == 3 ? 60 : 20);
        for (unsigned i = 0; i < f; i++)
            *p++ = (char)('0' + rnd(10));
    }
    if (rnd(2)) {
        *p++ = rnd(2) ? 'e' : 'E';
        unsigned r = rnd(3);
        if (r == 1)
            *p++ = '+';
        else if (r == 2)
            *p++ = '-';
        p += sprintf(p, "%u", rnd(5) == 0 ? rnd(400) : rnd(30));
    }
    *p = '\0';
}

static void test_number_parse_random(void **state)
{
    (void)state;
    char s[256];
    size_t failures = 0;
    for (int i = 0; i < 200000; i++) {
        random_decimal(s);
        check_against_strtod(s, &failures);
    }
    if (failures)
        fail_msg("%zu random decimals differ from strtod", failures);
}

/* 17 significant digits: the shortest form that always round-trips, and
 * the form most likely to sit next to a rounding boundary. */
static void test_number_parse_17_digits(void **state)
{
    (void)state;
    char s[64];
    size_t failures = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = rnd64() & 0x7fefffffffffffffull; /* finite */
        double d;
        memcpy(&d, &bits, sizeof d);
        snprintf(s, sizeof s, rnd(2) ? "%.17g" : "%.16e", rnd(2) ? d : -d);
        check_against_strtod(s, &failures);
        /* and values around 1..1e22 where the fast path applies */
        snprintf(s, sizeof s, "%.17g", (double)(rnd64() >> rnd(64)) / (double)(1ull << rnd(20)));
        check_against_strtod(s, &failures);
    }
    if (failures)
        fail_msg("%zu 17-digit decimals differ from strtod", failures);
}

/* Exact midpoints between adjacent doubles (round half to even), and the
 * same midpoints nudged up or down in the last of many digits. */
static void test_number_parse_halfway(void **state)
{
    (void)state;
    static char s[1400], up[1500];
    size_t failures = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = rnd64() & 0x7fefffffffffffffull;
        if (i % 4 == 0) /* small exponents: the fast path's domain */
            bits = (bits & 0x000fffffffffffffull) | ((uint64_t)(1023 + rnd(60)) << 52);
        double lo, hi;
        memcpy(&lo, &bits, sizeof lo);
        hi = nextafter(lo, INFINITY);
        if (isinf(hi))
            continue;
        long double mid = ((long double)lo + (long double)hi) / 2; /* exact in x87 extended */
        /* 1100 digits print any such midpoint exactly; trim the zeros */
        snprintf(s, sizeof s, "%.1100Le", mid);
        char *e = strchr(s, 'e');
        char *z = e;
        while (z[-1] == '0')
            z--;
        if (z[-1] == '.')
            z--;
        memmove(z, e, strlen(e) + 1);
        check_against_strtod(s, &failures);
        /* just above the midpoint */
        e = strchr(s, 'e');
        snprintf(up, sizeof up, "%.*s%s000001%s", (int)(e - s), s, strchr(s, '.') ? "" : ".", e);
        check_against_strtod(up, &failures);
    }
    if (failures)
        fail_msg("%zu halfway cases differ from strtod", failures);
}

static void test_number_parse_known(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0", "-0", "0.0", "-0.0", "0e0", "0E-0", "1", "-1", "300", "300.0", "3e2", "3E+2", "30000e-2", "0.1",
        "0.3", "2.5", "1e22", "1e23", "9007199254740993", "9007199254740992", "18446744073709551615",
        "2.2250738585072014e-308", "2.2250738585072011e-308", "2.2250738585072012e-308",
        "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1e-400", "-1e-400",
        "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e309", "-1e309",
        "7.2057594037927933e16", "123456789012345678901234567890", "0.000000000000000000000000000001",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.000000000000000111022302462515654042363166809082031250000000001",
        "8.98846567431158e307", "3.0517578125e-05", "1448997445238699", "62.5364939768271e-10",
    };
    size_t failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_against_strtod(cases[i], &failures);
    /* a 800-digit mantissa */
    char big[1024] = "0.";
    for (int i = 0; i < 800; i++)
        strcat(big, i == 799 ? "1" : (i % 7 ? "3" : "9"));
    check_against_strtod(big, &failures);
    if (failures)
        fail_msg("%zu known cases differ from strtod", failures);
    double d;
    assert_int_equal(pb_number_parse("1e400", 5, &d), 0);
    assert_true(isinf(d) && d > 0);
    assert_int_equal(pb_number_parse("-1e400", 6, &d), 0);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(pb_number_parse("-1e-400", 7, &d), 0);
    assert_true(d == 0 && signbit(d));
}

static void test_number_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {"",    "-",   "+1",   "01",  "-01",  "1.",  ".5",   "1e",  "1e+", "1E-",
                                      "0x10", "NaN", "nan", "Infinity", "-Infinity", "inf", "1 ", " 1",  "1.5.5",
                                      "--1", "1e5.5", "1,5", "1_000", "\xd9\xa1", "00", "1e1e1", "-.5", "5."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double d;
        if (pb_number_parse(bad[i], strlen(bad[i]), &d) != -1)
            fail_msg("pb_number_parse accepted \"%s\"", bad[i]);
    }
    /* the length bounds the token: "12" of "123" */
    double d;
    assert_int_equal(pb_number_parse("123", 2, &d), 0);
    assert_true(d == 12);
}

static void test_number_scan(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t want;
    } cases[] = {
        {"123abc", 3}, {"-1.5e3]", 6}, {"abc", 0}, {"01", 1},   {"1.", 1},    {"-", 0},   {"1e5x", 3},
        {"1e", 1},     {"1E+", 1},     {"0.5,", 3}, {"-0", 2},  {"-0.0e-0", 7}, {"", 0},  {".5", 0},
        {"+1", 0},     {"1.5.5", 3},   {"9}", 1},  {"-a", 0},   {"0e", 1},    {"00", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = pb_number_scan(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].want)
            fail_msg("pb_number_scan(\"%s\") = %zu, expected %zu", cases[i].s, got, cases[i].want);
    }
    /* bounded by n */
    assert_int_equal(pb_number_scan("12345", 3), 3);
}

/* ------------------------------------------------------------- writing -- */

static void roundtrip(const char *s, size_t n)
{
    pb_buf b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_json_write_string(&b, s, n), 0);
    assert_true(b.len >= 2);
    assert_int_equal(b.data[0], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20)
            fail_msg("raw control byte 0x%02x in %s", (unsigned char)b.data[i], b.data);
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = NULL;
    pb_error err;
    pb_error_clear(&err);
    if (pb_json_parse(b.data, b.len, NULL, &a, &doc, &err) != 0)
        fail_msg("written string %s does not parse: %s", b.data, err.message);
    assert_int_equal(doc->type, PB_JSON_STRING);
    if (doc->len != n || memcmp(doc->str, s, n) != 0)
        fail_msg("round trip of %zu bytes changed them (written as %s)", n, b.data);
    pb_arena_free(&a);
    pb_buf_free(&b);
}

static void test_write_string(void **state)
{
    (void)state;
    pb_buf b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_json_write_string(&b, "abc", 3), 0);
    assert_string_equal(b.data, "\"abc\"");
    pb_buf_reset(&b);
    assert_int_equal(pb_json_write_string(&b, "", 0), 0);
    assert_string_equal(b.data, "\"\"");
    pb_buf_reset(&b);
    /* printable ASCII other than " and \ is written as itself */
    assert_int_equal(pb_json_write_string(&b, "a b/c:{}[],'~", 13), 0);
    assert_string_equal(b.data, "\"a b/c:{}[],'~\"");
    pb_buf_free(&b);

    roundtrip("a\"b\\c", 5);
    roundtrip("\n\r\t\b\f\x01\x1f\x7f", 8);
    roundtrip("nul\0inside", 10);
    roundtrip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80", 15);
    /* every byte 0..127, and random valid UTF-8 */
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    roundtrip(all, 128);
    for (int k = 0; k < 2000; k++) {
        char s[256];
        size_t n = 0;
        int count = (int)rnd(40);
        for (int i = 0; i < count; i++) {
            unsigned cp;
            switch (rnd(4)) {
            case 0: cp = rnd(0x80); break;
            case 1: cp = 0x80 + rnd(0x780); break;
            case 2: cp = 0x800 + rnd(0xF800); if (cp >= 0xD800 && cp < 0xE000) cp = 'x'; break;
            default: cp = 0x10000 + rnd(0x100000); break;
            }
            n += pb_utf8_encode(cp, s + n);
        }
        roundtrip(s, n);
    }
}

static void test_write_document(void **state)
{
    (void)state;
    pb_arena a;
    pb_arena_init(&a);
    pb_json *doc = parse_ok(&a, " { \"a\" : [ 1.50 , \"x\" , true , null , false , -0 , 3E+2 ] , \"b\" : { } , "
                                "\"c\" : [ ] , \"a\" : 2 } ");
    pb_buf b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_json_write(&b, doc), 0);
    assert_string_equal(b.data, "{\"a\":[1.50,\"x\",true,null,false,-0,3E+2],\"b\":{},\"c\":[],\"a\":2}");
    pb_buf_free(&b);
    pb_arena_free(&a);
}

static void test_utf8_encode(void **state)
{
    (void)state;
    static const struct {
        unsigned cp;
        const char *bytes;
        size_t n;
    } cases[] = {
        {0x41, "A", 1},           {0x0, "\0", 1},           {0x7F, "\x7f", 1},
        {0x80, "\xc2\x80", 2},    {0xE9, "\xc3\xa9", 2},    {0x7FF, "\xdf\xbf", 2},
        {0x800, "\xe0\xa0\x80", 3}, {0x20AC, "\xe2\x82\xac", 3}, {0xFFFF, "\xef\xbf\xbf", 3},
        {0xD800, "\xed\xa0\x80", 3}, {0xDFFF, "\xed\xbf\xbf", 3},
        {0x10000, "\xf0\x90\x80\x80", 4}, {0x1F600, "\xf0\x9f\x98\x80", 4}, {0x10FFFF, "\xf4\x8f\xbf\xbf", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[8];
        size_t n = pb_utf8_encode(cases[i].cp, out);
        if (n != cases[i].n || memcmp(out, cases[i].bytes, n) != 0)
            fail_msg("pb_utf8_encode(U+%04X) wrote %zu bytes, expected %zu", cases[i].cp, n, cases[i].n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jackson_messages),
        cmocka_unit_test(test_error_location_suffix),
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_duplicate_keys_in_order),
        cmocka_unit_test(test_get_keys_exactly),
        cmocka_unit_test(test_strings_decoded),
        cmocka_unit_test(test_numbers_keep_source_text),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_very_deep_rejected),
        cmocka_unit_test(test_number_parse_random),
        cmocka_unit_test(test_number_parse_17_digits),
        cmocka_unit_test(test_number_parse_halfway),
        cmocka_unit_test(test_number_parse_known),
        cmocka_unit_test(test_number_parse_rejects),
        cmocka_unit_test(test_number_scan),
        cmocka_unit_test(test_write_string),
        cmocka_unit_test(test_write_document),
        cmocka_unit_test(test_utf8_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
