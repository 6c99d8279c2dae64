/*
 * test_matcher.c — many patterns in one pb_matcher.
 *
 * Covers the matcher's contract from pb_pattern.h: ids come back sorted and
 * distinct; add / replace / remove by id (removed patterns stop matching,
 * the others keep matching, re-adding works, removing an unknown id is
 * PB_ENOTFOUND); matching after a change without pb_matcher_prepare is
 * PB_EINTERNAL; a `$or` pattern is reported once however many branches
 * match; pb_pattern_combinations; and a randomized differential test (fixed
 * seed) that checks pb_matcher_match against pb_pattern_eval for every
 * pattern of a matcher that grows and shrinks, over a small vocabulary of
 * fields and values (arrays of objects, nested arrays, numbers in several
 * spellings, nulls, missing fields, objects where leaves are expected).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_buf.h"
#include "common/pb_error.h"
#include "pattern/pb_pattern.h"

/* ------------------------------------------------------------- helpers -- */

static pb_pattern *compile(const char *text)
{
    pb_pattern *p = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pattern_compile(text, strlen(text), &p, &err);
    if (rc != 0)
        fail_msg("pattern %s did not compile: %s", text, err.message);
    return p;
}

static void add(pb_matcher *m, uint64_t id, const char *text)
{
    pb_pattern *p = compile(text);
    assert_int_equal(pb_matcher_add(m, id, p), 0);
    pb_pattern_free(p); /* the matcher keeps its own copy */
}

/* Matches event and compares the ids with want[0..nwant). */
static void expect_ids(const pb_matcher *m, pb_match_scratch *s, const char *event, const uint64_t *want,
                       size_t nwant)
{
    const uint64_t *ids = NULL;
    size_t n = 0;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_matcher_match(m, event, strlen(event), s, &ids, &n, &err);
    if (rc != 0)
        fail_msg("match %s failed: %s %s", event, pb_error_name(rc), err.message);
    bool same = n == nwant;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    if (!same) {
        char got[1024] = "", exp[1024] = "";
        size_t gl = 0, el = 0;
        for (size_t i = 0; i < n && gl < 900; i++)
            gl += (size_t)snprintf(got + gl, sizeof got - gl, " %llu", (unsigned long long)ids[i]);
        for (size_t i = 0; i < nwant && el < 900; i++)
            el += (size_t)snprintf(exp + el, sizeof exp - el, " %llu", (unsigned long long)want[i]);
        fail_msg("event %s\n  expected ids [%s ]\n  got ids      [%s ]", event, exp, got);
    }
}

#define EXPECT(m, s, event, ...)                                                                   \
    do {                                                                                           \
        const uint64_t want_[] = {0, __VA_ARGS__};                                                 \
        expect_ids(m, s, event, want_ + 1, sizeof want_ / sizeof want_[0] - 1);                    \
    } while (0)
#define EXPECT_NONE(m, s, event) expect_ids(m, s, event, NULL, 0)

/* ------------------------------------------------ ids sorted, distinct -- */

static void test_ids_sorted_and_distinct(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    /* added in scrambled order; all but 600 match the event below */
    add(m, 50, "{\"source\":[\"a\"]}");
    add(m, 3, "{\"source\":[{\"prefix\":\"\"}]}");
    add(m, UINT64_MAX, "{\"detail\":{\"n\":[{\"numeric\":[\">\",1]}]}}");
    add(m, 1000, "{\"source\":[\"a\",\"b\"],\"detail\":{\"n\":[2]}}");
    add(m, 0, "{\"detail\":{\"n\":[{\"exists\":true}]}}");
    add(m, 600, "{\"source\":[\"b\"]}");
    add(m, 7, "{\"$or\":[{\"source\":[\"a\"]},{\"detail\":{\"n\":[2]}}]}");
    add(m, 42, "{\"detail\":{\"tags\":[\"x\",\"y\"]}}");
    assert_int_equal(pb_matcher_count(m), 8);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, "{\"source\":\"a\",\"detail\":{\"n\":2,\"tags\":[\"y\",\"x\",\"x\"]}}", 0, 3, 7, 42, 50, 1000,
           UINT64_MAX);
    EXPECT(m, s, "{\"source\":\"b\"}", 3, 600);
    EXPECT_NONE(m, s, "{\"other\":1}");
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

static void test_same_pattern_many_ids(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    for (uint64_t id = 100; id > 0; id--)
        add(m, id * 3, "{\"a\":[\"x\",{\"prefix\":\"x\"}]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    const uint64_t *ids;
    size_t n;
    const char *ev = "{\"a\":[\"x\",\"xx\"]}";
    assert_int_equal(pb_matcher_match(m, ev, strlen(ev), s, &ids, &n, NULL), 0);
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], (i + 1) * 3);
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

/* ---------------------------------------------------- $or reported once -- */

static void test_or_pattern_reported_once(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    add(m, 5, "{\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]}]}");
    /* 4 combinations, all satisfied by the event below */
    add(m, 9, "{\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]}],\"c\":{\"$or\":[{\"d\":[\"3\"]},{\"e\":[{\"exists\":true}]}]}}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, "{\"a\":\"1\",\"b\":\"2\",\"c\":{\"d\":\"3\",\"e\":0}}", 5, 9);
    EXPECT(m, s, "{\"a\":\"1\",\"b\":\"2\"}", 5);
    EXPECT(m, s, "{\"b\":\"2\",\"c\":{\"e\":null}}", 5, 9);
    EXPECT_NONE(m, s, "{\"c\":{\"d\":\"3\"}}");
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

static void test_combinations_counted(void **state)
{
    (void)state;
    struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"{\"a\":[\"1\"]}", 1},
        {"{\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]}]}", 2},
        {"{\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]},{\"c\":[\"3\"]}],\"d\":{\"$or\":[{\"e\":[1]},{\"f\":[2]}]}}", 6},
        {"{\"$or\":[{\"a\":[\"1\"]},{\"$or\":[{\"b\":[\"2\"]},{\"c\":[\"3\"]}]}]}", 3},
        {"{\"x\":{\"$or\":[{\"a\":[\"1\"]},{\"b\":{\"$or\":[{\"c\":[1]},{\"d\":[1]}]},\"e\":{\"$or\":[{\"f\":[1]},{\"g\":[1]}]}}]}}",
         5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb_pattern *p = compile(cases[i].text);
        if (pb_pattern_combinations(p) != cases[i].want)
            fail_msg("%s: %zu combinations, expected %zu", cases[i].text, pb_pattern_combinations(p), cases[i].want);
        pb_pattern_free(p);
    }
}

/* ------------------------------------------------ add / replace / remove -- */

static void test_add_replace_remove(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    const char *ev_a = "{\"k\":\"a\",\"n\":5}";
    const char *ev_b = "{\"k\":\"b\",\"n\":50}";
    const char *ev_c = "{\"k\":\"c\",\"n\":500}";

    add(m, 1, "{\"k\":[\"a\"]}");
    add(m, 2, "{\"k\":[\"b\"]}");
    add(m, 3, "{\"n\":[{\"numeric\":[\">\",10]}]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev_a, 1);
    EXPECT(m, s, ev_b, 2, 3);
    EXPECT(m, s, ev_c, 3);

    /* replace id 1: the old pattern must stop matching */
    add(m, 1, "{\"k\":[\"c\"]}");
    assert_int_equal(pb_matcher_count(m), 3);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT_NONE(m, s, ev_a);
    EXPECT(m, s, ev_b, 2, 3);
    EXPECT(m, s, ev_c, 1, 3);

    /* remove id 2; 1 and 3 are unaffected */
    assert_int_equal(pb_matcher_remove(m, 2), 0);
    assert_int_equal(pb_matcher_count(m), 2);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev_b, 3);
    EXPECT(m, s, ev_c, 1, 3);

    /* unknown ids */
    assert_int_equal(pb_matcher_remove(m, 2), PB_ENOTFOUND);
    assert_int_equal(pb_matcher_remove(m, 99), PB_ENOTFOUND);
    assert_int_equal(pb_matcher_count(m), 2);

    /* re-add id 2 with its old pattern */
    add(m, 2, "{\"k\":[\"b\"]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev_b, 2, 3);

    /* remove everything: nothing matches, then add again */
    assert_int_equal(pb_matcher_remove(m, 1), 0);
    assert_int_equal(pb_matcher_remove(m, 2), 0);
    assert_int_equal(pb_matcher_remove(m, 3), 0);
    assert_int_equal(pb_matcher_count(m), 0);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT_NONE(m, s, ev_a);
    EXPECT_NONE(m, s, ev_b);
    add(m, 3, "{\"k\":[\"a\"]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev_a, 3);
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

/* Two ids with identical or overlapping patterns share automaton states;
 * removing one must leave the other whole. */
static void test_remove_shared_states(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    const char *p1 = "{\"detail\":{\"s\":[{\"prefix\":\"ab\"}],\"n\":[{\"numeric\":[\">\",0,\"<\",10]}]}}";
    add(m, 10, p1);
    add(m, 11, p1);
    add(m, 12, "{\"detail\":{\"s\":[{\"prefix\":\"ab\"}]}}");
    add(m, 13, "{\"detail\":{\"s\":[{\"prefix\":\"abc\"}],\"n\":[{\"numeric\":[\">\",0,\"<\",10]}]}}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    const char *ev = "{\"detail\":{\"s\":\"abcd\",\"n\":5}}";
    EXPECT(m, s, ev, 10, 11, 12, 13);
    assert_int_equal(pb_matcher_remove(m, 10), 0);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev, 11, 12, 13);
    assert_int_equal(pb_matcher_remove(m, 12), 0);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev, 11, 13);
    EXPECT(m, s, "{\"detail\":{\"s\":\"abx\",\"n\":5}}", 11);
    EXPECT_NONE(m, s, "{\"detail\":{\"s\":\"abx\"}}");
    assert_int_equal(pb_matcher_remove(m, 11), 0);
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, ev, 13);
    EXPECT_NONE(m, s, "{\"detail\":{\"s\":\"abx\",\"n\":5}}");
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

/* ------------------------------------------------------ prepare required -- */

static void expect_unprepared(const pb_matcher *m, pb_match_scratch *s)
{
    const uint64_t *ids = NULL;
    size_t n = 0;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_matcher_match(m, "{\"a\":\"1\"}", 9, s, &ids, &n, &err);
    if (rc != PB_EINTERNAL)
        fail_msg("matching an unprepared matcher returned %s (%d), expected PB_EINTERNAL", pb_error_name(rc), rc);
}

static void test_match_requires_prepare(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    add(m, 1, "{\"a\":[\"1\"]}");
    expect_unprepared(m, s); /* after add */
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, "{\"a\":\"1\"}", 1);
    add(m, 2, "{\"a\":[{\"prefix\":\"1\"}]}");
    expect_unprepared(m, s); /* after another add */
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, "{\"a\":\"1\"}", 1, 2);
    add(m, 2, "{\"a\":[\"2\"]}");
    expect_unprepared(m, s); /* after a replace */
    assert_int_equal(pb_matcher_prepare(m), 0);
    assert_int_equal(pb_matcher_remove(m, 1), 0);
    expect_unprepared(m, s); /* after remove */
    assert_int_equal(pb_matcher_prepare(m), 0);
    EXPECT(m, s, "{\"a\":\"2\"}", 2);
    /* a failed remove changes nothing: still prepared */
    assert_int_equal(pb_matcher_remove(m, 77), PB_ENOTFOUND);
    EXPECT(m, s, "{\"a\":\"2\"}", 2);
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

/* ------------------------------------------------------- event errors -- */

static void test_bad_events(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    add(m, 1, "{\"a\":[\"1\"]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    const char *bad[] = {"", "   ", "[1]", "\"a\"", "42", "null", "{\"a\":\"1\"", "{\"a\":\"1}", "{\"a\":\"1\"} x",
                         "{\"a\" \"1\"}", "{\"b\":{\"c\":[1,2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint64_t *ids;
        size_t n;
        pb_error err;
        pb_error_clear(&err);
        int rc = pb_matcher_match(m, bad[i], strlen(bad[i]), s, &ids, &n, &err);
        if (rc != PB_EEVENT)
            fail_msg("event '%s': matcher returned %s, expected PB_EEVENT", bad[i], pb_error_name(rc));
        pb_pattern *p = compile("{\"a\":[\"1\"]}");
        bool matched;
        rc = pb_pattern_eval(p, bad[i], strlen(bad[i]), &matched, &err);
        pb_pattern_free(p);
        if (rc != PB_EEVENT)
            fail_msg("event '%s': eval returned %s, expected PB_EEVENT", bad[i], pb_error_name(rc));
    }
    /* the matcher still works after errors */
    EXPECT(m, s, "{\"a\":\"1\"}", 1);
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

/* PB_EVENT_MAX_DEPTH applies to the automaton and the reference evaluator
 * alike: an event nested PB_EVENT_MAX_DEPTH containers deep (the top object
 * counts as one) is accepted by both, one level more is PB_EEVENT for both,
 * whether or not a pattern mentions the deep part. */
static char *nested_event(int depth)
{
    /* {"w":1,"a":{"a":...{"a":1}}} with `depth` objects */
    char *s = malloc((size_t)depth * 16 + 32), *p = s;
    p += sprintf(p, "{\"w\":1");
    for (int i = 1; i < depth; i++)
        p += sprintf(p, ",\"a\":{\"x\":0");
    p += sprintf(p, ",\"a\":1");
    for (int i = 1; i < depth; i++)
        p += sprintf(p, "}");
    sprintf(p, "}");
    return s;
}

static void test_depth_limit_agrees_with_eval(void **state)
{
    (void)state;
    const char *pats[] = {"{\"w\":[1]}", "{\"a\":{\"a\":{\"x\":[0]}}}"};
    const int depths[] = {PB_EVENT_MAX_DEPTH, PB_EVENT_MAX_DEPTH + 1, PB_EVENT_MAX_DEPTH * 8};
    for (size_t pi = 0; pi < 2; pi++) {
        pb_pattern *p = compile(pats[pi]);
        pb_matcher *m = pb_matcher_new();
        pb_match_scratch *s = pb_match_scratch_new();
        assert_int_equal(pb_matcher_add(m, 1, p), 0);
        assert_int_equal(pb_matcher_prepare(m), 0);
        for (size_t di = 0; di < 3; di++) {
            char *ev = nested_event(depths[di]);
            const uint64_t *ids;
            size_t n = 0;
            bool matched = false;
            pb_error err;
            int rm = pb_matcher_match(m, ev, strlen(ev), s, &ids, &n, &err);
            int re = pb_pattern_eval(p, ev, strlen(ev), &matched, &err);
            int want = depths[di] <= PB_EVENT_MAX_DEPTH ? 0 : PB_EEVENT;
            if (rm != want || re != want)
                fail_msg("pattern %s, event %d objects deep: matcher %s, eval %s, expected %s", pats[pi], depths[di],
                         pb_error_name(rm), pb_error_name(re), pb_error_name(want));
            if (want == 0 && (n != 1 || !matched))
                fail_msg("pattern %s, depth %d: matcher n=%zu eval=%d, expected a match", pats[pi], depths[di], n,
                         matched);
            free(ev);
        }
        pb_match_scratch_free(s);
        pb_matcher_free(m);
        pb_pattern_free(p);
    }
}

/* Two scratches: each result stays valid until that scratch's next match. */
static void test_scratch_independent(void **state)
{
    (void)state;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s1 = pb_match_scratch_new(), *s2 = pb_match_scratch_new();
    add(m, 1, "{\"a\":[\"1\"]}");
    add(m, 2, "{\"a\":[\"2\"]}");
    assert_int_equal(pb_matcher_prepare(m), 0);
    const uint64_t *i1, *i2;
    size_t n1, n2;
    assert_int_equal(pb_matcher_match(m, "{\"a\":\"1\"}", 9, s1, &i1, &n1, NULL), 0);
    assert_int_equal(pb_matcher_match(m, "{\"a\":\"2\"}", 9, s2, &i2, &n2, NULL), 0);
    assert_int_equal(n1, 1);
    assert_int_equal(i1[0], 1);
    assert_int_equal(n2, 1);
    assert_int_equal(i2[0], 2);
    pb_match_scratch_free(s1);
    pb_match_scratch_free(s2);
    pb_matcher_free(m);
}

/* --------------------------------------------- randomized differential -- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}
#define PICK(arr) (arr[rnd(sizeof(arr) / sizeof(arr[0]))])

static const char *const STRS[] = {"\"s1\"", "\"s2\"", "\"S1\"", "\"s\"", "\"\"", "\"10.0.0.1\"", "\"10.0.1.5\"",
                                   "\"x/y.png\"", "\"\\u00e9\"", "\"\xc3\x89\"", "\"s\xc3\xa9\"", "\"2001:db8::1\""};
static const char *const NUMS[] = {"0", "1", "1.5", "-2", "100", "1e2", "100.0", "-0", "5"};
static const char *const PAT_NUMS[] = {"0", "1", "1.5", "-2", "100", "5"};
static const char *const PREFIXES[] = {"\"s\"", "\"S\"", "\"\"", "\"10.\"", "\"x/\"", "\"\xc3\xa9\""};
static const char *const AB_AFFIXES[] = {"\"s\"", "\"S\"", "\"10.\"", "\"1\"", "\"png\""};
static const char *const SUFFIXES[] = {"\"1\"", "\"png\"", "\"\"", "\"\xc3\xa9\"", "\"2\""};
static const char *const WILDS[] = {"\"*\"", "\"s*\"", "\"*1\"", "\"s*1\"", "\"*.*\"", "\"\"", "\"x/*.png\"", "\"*\xc3\xa9\"",
                                    "\"S*\""};
static const char *const CIDRS[] = {"\"10.0.0.0/24\"", "\"10.0.0.0/8\"", "\"2001:db8::/32\""};
/* pattern paths, as (nested key list) */
static const char *const PATHS[] = {"a", "b", "c", "d.x", "d.y", "arr.k", "arr.v", "arr.sub.k"};
#define NPATHS (sizeof PATHS / sizeof PATHS[0])

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sput(sbuf *b, const char *s)
{
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = (b->n + l + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

static void gen_condition(sbuf *b)
{
    char t[256];
    switch (rnd(22)) {
    case 0: case 1: case 2: sput(b, PICK(STRS)); break;
    case 3: case 4: sput(b, PICK(PAT_NUMS)); break;
    case 5: sput(b, PICK(((const char *const[]){"true", "false", "null"}))); break;
    case 6: snprintf(t, sizeof t, "{\"prefix\":%s}", PICK(PREFIXES)); sput(b, t); break;
    case 7: snprintf(t, sizeof t, "{\"suffix\":%s}", PICK(SUFFIXES)); sput(b, t); break;
    case 8: snprintf(t, sizeof t, "{\"equals-ignore-case\":%s}", PICK(STRS)); sput(b, t); break;
    case 9:
        snprintf(t, sizeof t, "{\"%s\":{\"equals-ignore-case\":%s}}", rnd(2) ? "prefix" : "suffix",
                 rnd(2) ? PICK(PREFIXES) : PICK(SUFFIXES));
        sput(b, t);
        break;
    case 10: snprintf(t, sizeof t, "{\"wildcard\":%s}", PICK(WILDS)); sput(b, t); break;
    case 11:
        if (rnd(2))
            snprintf(t, sizeof t, "{\"anything-but\":%s}", PICK(STRS));
        else
            snprintf(t, sizeof t, "{\"anything-but\":[%s,%s]}", PICK(STRS), PICK(STRS));
        sput(b, t);
        break;
    case 12:
        if (rnd(2))
            snprintf(t, sizeof t, "{\"anything-but\":%s}", PICK(PAT_NUMS));
        else
            snprintf(t, sizeof t, "{\"anything-but\":[%s,%s]}", PICK(PAT_NUMS), PICK(PAT_NUMS));
        sput(b, t);
        break;
    case 13:
        snprintf(t, sizeof t, "{\"anything-but\":{\"%s\":%s}}", rnd(2) ? "prefix" : "suffix", PICK(AB_AFFIXES));
        sput(b, t);
        break;
    case 14:
        if (rnd(2))
            snprintf(t, sizeof t, "{\"anything-but\":{\"equals-ignore-case\":%s}}", PICK(STRS));
        else
            snprintf(t, sizeof t, "{\"anything-but\":{\"equals-ignore-case\":[%s,%s]}}", PICK(STRS), PICK(STRS));
        sput(b, t);
        break;
    case 15:
        if (rnd(2))
            snprintf(t, sizeof t, "{\"anything-but\":{\"wildcard\":%s}}", PICK(WILDS));
        else
            snprintf(t, sizeof t, "{\"anything-but\":{\"wildcard\":[%s,%s]}}", PICK(WILDS), PICK(WILDS));
        sput(b, t);
        break;
    case 16: case 17: {
        static const char *const OPS[] = {"=", "<", "<=", ">", ">="};
        if (rnd(3)) {
            snprintf(t, sizeof t, "{\"numeric\":[\"%s\",%s]}", PICK(OPS), PICK(PAT_NUMS));
        } else {
            static const char *const LO[] = {"-2", "0", "1"};
            static const char *const HI[] = {"1.5", "5", "100"};
            snprintf(t, sizeof t, "{\"numeric\":[\"%s\",%s,\"%s\",%s]}", rnd(2) ? ">" : ">=", PICK(LO),
                     rnd(2) ? "<" : "<=", PICK(HI));
        }
        sput(b, t);
        break;
    }
    case 18: case 19: sput(b, rnd(2) ? "{\"exists\":true}" : "{\"exists\":false}"); break;
    default: snprintf(t, sizeof t, "{\"cidr\":%s}", PICK(CIDRS)); sput(b, t); break;
    }
}

static void gen_leaf(sbuf *b)
{
    sput(b, "[");
    int n = 1 + (int)rnd(3);
    for (int i = 0; i < n; i++) {
        if (i)
            sput(b, ",");
        gen_condition(b);
    }
    sput(b, "]");
}

/* Writes fields (indexes into PATHS, sorted) as members of one object,
 * either dot-joined or nested. */
static void gen_fields(sbuf *b, const int *paths, int n, bool dotted)
{
    if (dotted) {
        for (int i = 0; i < n; i++) {
            if (i)
                sput(b, ",");
            sput(b, "\"");
            sput(b, PATHS[paths[i]]);
            sput(b, "\":");
            gen_leaf(b);
        }
        return;
    }
    /* nested: group by first segment (PATHS are sorted so groups are contiguous) */
    for (int i = 0; i < n;) {
        const char *p = PATHS[paths[i]];
        const char *dot = strchr(p, '.');
        size_t seglen = dot ? (size_t)(dot - p) : strlen(p);
        if (i)
            sput(b, ",");
        char seg[32];
        snprintf(seg, sizeof seg, "\"%.*s\":", (int)seglen, p);
        sput(b, seg);
        if (!dot) {
            gen_leaf(b);
            i++;
            continue;
        }
        /* members under this segment, written with the rest of their path nested */
        sput(b, "{");
        int j = i;
        bool first = true;
        while (j < n && strncmp(PATHS[paths[j]], p, seglen) == 0 && PATHS[paths[j]][seglen] == '.') {
            const char *rest = PATHS[paths[j]] + seglen + 1;
            if (!first)
                sput(b, ",");
            first = false;
            const char *d2 = strchr(rest, '.');
            char k[64];
            if (d2) {
                snprintf(k, sizeof k, "\"%.*s\":{\"%s\":", (int)(d2 - rest), rest, d2 + 1);
                sput(b, k);
                gen_leaf(b);
                sput(b, "}");
            } else {
                snprintf(k, sizeof k, "\"%s\":", rest);
                sput(b, k);
                gen_leaf(b);
            }
            j++;
        }
        sput(b, "}");
        i = j;
    }
}

/* Picks 1..max distinct path indexes not in used[], sorted. */
static int pick_paths(int *out, int max, bool *used)
{
    int n = 0, want = 1 + (int)rnd((uint32_t)max);
    for (int tries = 0; n < want && tries < 20; tries++) {
        int k = (int)rnd(NPATHS);
        if (used[k])
            continue;
        used[k] = true;
        out[n++] = k;
    }
    /* sort */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static char *gen_pattern(void)
{
    sbuf b = {0};
    bool used[NPATHS] = {false};
    int paths[NPATHS];
    sput(&b, "{");
    int n = pick_paths(paths, 3, used);
    gen_fields(&b, paths, n, rnd(2));
    if (rnd(4) == 0) { /* $or over paths not used above */
        int nb = 2 + (int)rnd(2);
        sput(&b, ",\"$or\":[");
        for (int i = 0; i < nb; i++) {
            bool u2[NPATHS];
            memcpy(u2, used, sizeof u2);
            int bp[NPATHS];
            int bn = pick_paths(bp, 2, u2);
            if (bn == 0) { /* every path used: fall back to a fresh one */
                bp[0] = (int)rnd(NPATHS);
                bn = 1;
            }
            if (i)
                sput(&b, ",");
            sput(&b, "{");
            gen_fields(&b, bp, bn, rnd(2));
            sput(&b, "}");
        }
        sput(&b, "]");
    }
    sput(&b, "}");
    return b.p;
}

static void gen_scalar(sbuf *b)
{
    switch (rnd(8)) {
    case 0: case 1: case 2: sput(b, PICK(STRS)); break;
    case 3: case 4: sput(b, PICK(NUMS)); break;
    case 5: sput(b, "true"); break;
    case 6: sput(b, "false"); break;
    default: sput(b, "null"); break;
    }
}

static void gen_value(sbuf *b, int depth)
{
    uint32_t r = rnd(10);
    if (r < 6 || depth > 2) {
        gen_scalar(b);
    } else if (r < 9) {
        sput(b, "[");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            if (i)
                sput(b, ",");
            gen_value(b, depth + 1);
        }
        sput(b, "]");
    } else {
        sput(b, "{\"x\":");
        gen_scalar(b);
        sput(b, "}");
    }
}

static void gen_member(sbuf *b, bool *first, const char *key)
{
    if (!*first)
        sput(b, ",");
    *first = false;
    sput(b, "\"");
    sput(b, key);
    sput(b, "\":");
}

static void gen_object_xy(sbuf *b)
{
    bool first = true;
    sput(b, "{");
    if (rnd(4)) {
        gen_member(b, &first, "x");
        gen_value(b, 1);
    }
    if (rnd(4)) {
        gen_member(b, &first, "y");
        gen_value(b, 1);
    }
    sput(b, "}");
}

static void gen_arr_element(sbuf *b)
{
    bool first = true;
    sput(b, "{");
    if (rnd(4)) {
        gen_member(b, &first, "k");
        gen_value(b, 2);
    }
    if (rnd(4)) {
        gen_member(b, &first, "v");
        gen_value(b, 2);
    }
    if (rnd(3) == 0) {
        gen_member(b, &first, "sub");
        sput(b, "[");
        int n = (int)rnd(3);
        for (int i = 0; i < n; i++) {
            if (i)
                sput(b, ",");
            sput(b, "{\"k\":");
            gen_scalar(b);
            sput(b, "}");
        }
        sput(b, "]");
    }
    sput(b, "}");
}

static char *gen_event(void)
{
    sbuf b = {0};
    bool first = true;
    sput(&b, "{\"id\":\"e\"");
    first = false;
    static const char *const TOP[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++)
        if (rnd(3)) {
            gen_member(&b, &first, TOP[i]);
            gen_value(&b, 0);
        }
    switch (rnd(6)) {
    case 0: break; /* no d */
    case 1: gen_member(&b, &first, "d"); gen_scalar(&b); break;
    case 2: gen_member(&b, &first, "d.x"); gen_value(&b, 1); break;
    case 3: {
        gen_member(&b, &first, "d");
        sput(&b, "[");
        int n = (int)rnd(3);
        for (int i = 0; i < n; i++) {
            if (i)
                sput(&b, ",");
            gen_object_xy(&b);
        }
        sput(&b, "]");
        break;
    }
    default: gen_member(&b, &first, "d"); gen_object_xy(&b); break;
    }
    if (rnd(3)) {
        gen_member(&b, &first, "arr");
        if (rnd(8) == 0) {
            gen_scalar(&b);
        } else {
            sput(&b, "[");
            int n = (int)rnd(4);
            for (int i = 0; i < n; i++) {
                if (i)
                    sput(&b, ",");
                if (rnd(6) == 0) { /* nested array of objects */
                    sput(&b, "[");
                    gen_arr_element(&b);
                    sput(&b, "]");
                } else {
                    gen_arr_element(&b);
                }
            }
            sput(&b, "]");
        }
    }
    /* occasionally a repeated key, or a dotted key beside its nested form:
     * whatever they mean, the automaton and the evaluator must agree */
    if (rnd(8) == 0) {
        gen_member(&b, &first, PICK(TOP));
        gen_value(&b, 0);
    }
    if (rnd(8) == 0) {
        gen_member(&b, &first, rnd(2) ? "d.y" : "arr.k");
        gen_value(&b, 1);
    }
    sput(&b, "}");
    return b.p;
}

#define MAXPAT 64

typedef struct live {
    uint64_t id;
    char *text;
    pb_pattern *p;
} live;

static void test_differential_random(void **state)
{
    (void)state;
    rng = 0x5EEDF00Dull * 2654435761ull + 1;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    live pats[MAXPAT];
    size_t npats = 0;
    uint64_t next_id = 1;
    size_t compiled = 0, rejected = 0, events = 0, positives = 0, mismatches = 0;
    char first_rejects[3][2600] = {"", "", ""};

    for (int round = 0; round < 1500; round++) {
        /* change the matcher: mostly adds, some removes and replaces */
        int changes = 1 + (int)rnd(3);
        for (int c = 0; c < changes; c++) {
            uint32_t what = rnd(10);
            if (what < 2 && npats > 0) { /* remove */
                size_t k = rnd((uint32_t)npats);
                assert_int_equal(pb_matcher_remove(m, pats[k].id), 0);
                free(pats[k].text);
                pb_pattern_free(pats[k].p);
                pats[k] = pats[--npats];
                continue;
            }
            char *text = gen_pattern();
            pb_pattern *p = NULL;
            pb_error err;
            pb_error_clear(&err);
            if (pb_pattern_compile(text, strlen(text), &p, &err) != 0) {
                if (rejected < 3)
                    snprintf(first_rejects[rejected], sizeof first_rejects[0], "%s -> %s", text, err.message);
                rejected++;
                free(text);
                continue;
            }
            compiled++;
            if (what < 4 && npats > 0) { /* replace an existing id */
                size_t k = rnd((uint32_t)npats);
                assert_int_equal(pb_matcher_add(m, pats[k].id, p), 0);
                free(pats[k].text);
                pb_pattern_free(pats[k].p);
                pats[k].text = text;
                pats[k].p = p;
            } else if (npats < MAXPAT) {
                /* new id; sometimes an id used before and removed */
                uint64_t id = rnd(4) == 0 && next_id > 1 ? 1 + rnd((uint32_t)next_id - 1) : next_id++;
                bool taken = false;
                for (size_t i = 0; i < npats; i++)
                    taken |= pats[i].id == id;
                if (taken)
                    id = next_id++;
                assert_int_equal(pb_matcher_add(m, id, p), 0);
                pats[npats++] = (live){id, text, p};
            } else {
                free(text);
                pb_pattern_free(p);
            }
        }
        assert_int_equal(pb_matcher_count(m), npats);
        assert_int_equal(pb_matcher_prepare(m), 0);

        for (int e = 0; e < 8; e++) {
            char *ev = gen_event();
            size_t elen = strlen(ev);
            const uint64_t *ids = NULL;
            size_t n = 0;
            pb_error err;
            pb_error_clear(&err);
            int rc = pb_matcher_match(m, ev, elen, s, &ids, &n, &err);
            if (rc != 0)
                fail_msg("round %d: matcher failed on %s: %s", round, ev, err.message);
            events++;
            for (size_t i = 1; i < n; i++)
                if (ids[i - 1] >= ids[i])
                    fail_msg("round %d: ids not ascending/distinct at %zu", round, i);
            for (size_t i = 0; i < npats; i++) {
                bool want = false;
                pb_error_clear(&err);
                rc = pb_pattern_eval(pats[i].p, ev, elen, &want, &err);
                if (rc != 0)
                    fail_msg("eval failed on %s: %s", ev, err.message);
                bool got = false;
                for (size_t j = 0; j < n; j++)
                    got |= ids[j] == pats[i].id;
                positives += want;
                if (got != want) {
                    if (mismatches < 10)
                        print_error("MISMATCH (round %d): matcher says %s, eval says %s\n  pattern: %s\n  event:   %s\n",
                                    round, got ? "match" : "no-match", want ? "match" : "no-match", pats[i].text, ev);
                    mismatches++;
                }
            }
            /* every returned id must belong to a live pattern */
            for (size_t j = 0; j < n; j++) {
                bool known = false;
                for (size_t i = 0; i < npats; i++)
                    known |= ids[j] == pats[i].id;
                if (!known)
                    fail_msg("round %d: matcher returned id %llu which is not in the matcher", round,
                             (unsigned long long)ids[j]);
            }
            free(ev);
        }
    }
    print_message("differential: %zu patterns compiled, %zu rejected, %zu events, %zu positive verdicts\n", compiled,
                   rejected, events, positives);
    for (size_t i = 0; i < npats; i++) {
        free(pats[i].text);
        pb_pattern_free(pats[i].p);
    }
    pb_match_scratch_free(s);
    pb_matcher_free(m);
    /* every generated pattern is valid per the spec */
    if (rejected)
        fail_msg("%zu generated patterns were rejected, e.g.\n  %s\n  %s\n  %s", rejected, first_rejects[0],
                 first_rejects[1], first_rejects[2]);
    assert_true(positives > events / 4); /* the vocabulary does produce matches */
    if (mismatches)
        fail_msg("%zu matcher/eval disagreements", mismatches);
}

/* ------------------------------------------ differential with an oracle -- */

/* One field, every string and numeric operator, many patterns per matcher;
 * the expected verdict is computed here from the spec's definitions, and
 * both the automaton and the evaluator must agree with it. */

typedef struct oval {
    int type; /* 0 missing, 1 string, 2 number, 3 null */
    char s[32];
    size_t len;
    double num;
    char text[32]; /* number text */
} oval;

typedef struct ocond {
    int op;
    char s[2][32]; /* operands (up to two for lists) */
    int ns;
    double n[2];
    char ntext[2][16];
    bool flag; /* exists value; for numeric: which form */
    int nop;   /* numeric operator index */
} ocond;

enum { O_STR, O_NUM, O_NULL, O_PREFIX, O_SUFFIX, O_EIC, O_PREFIX_EIC, O_SUFFIX_EIC, O_WILD, O_AB_STR, O_AB_NUM,
       O_AB_PREFIX, O_AB_SUFFIX, O_AB_EIC, O_AB_WILD, O_NUMERIC, O_RANGE, O_EXISTS, O_NOPS };

static const char *const OALPHA[] = {"a", "b", "A", "B", ".", "\xc3\xa9", "\xc3\x89", "\\"};
static const struct {
    const char *text;
    double v;
} ONUMS[] = {{"-1", -1}, {"0", 0}, {"-0", -0.0}, {"0.5", 0.5}, {"1", 1}, {"1.0", 1}, {"1.5", 1.5},
             {"2", 2},   {"5", 5}, {"1e1", 10}, {"10.0", 10}};

static size_t ofold(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            out[o++] = (char)(c + 32);
        else if (c == 0xC3 && i + 1 < n && (unsigned char)s[i + 1] == 0x89) {
            out[o++] = (char)0xC3;
            out[o++] = (char)0xA9;
            i++;
        } else
            out[o++] = (char)c;
    }
    return o;
}

static void ostring(char *out, size_t *len, int maxchars)
{
    int n = (int)rnd((uint32_t)maxchars + 1);
    size_t l = 0;
    for (int i = 0; i < n; i++) {
        const char *c = PICK(OALPHA);
        memcpy(out + l, c, strlen(c));
        l += strlen(c);
    }
    out[l] = '\0';
    *len = l;
}

/* A wildcard operand: literals from the alphabet (backslash escaped), stars
 * never adjacent, escaped stars. Returns the raw operand. */
static void owild(char *out, size_t *len)
{
    int n = (int)rnd(5);
    size_t l = 0;
    bool last_star = false;
    for (int i = 0; i < n; i++) {
        uint32_t r = rnd(6);
        if (r == 0 && !last_star) {
            out[l++] = '*';
            last_star = true;
            continue;
        }
        last_star = false;
        if (r == 1) {
            out[l++] = '\\';
            out[l++] = '*';
        } else {
            const char *c = PICK(OALPHA);
            if (c[0] == '\\')
                out[l++] = '\\';
            memcpy(out + l, c, strlen(c));
            l += strlen(c);
        }
    }
    out[l] = '\0';
    *len = l;
}

static bool oglob(const char *w, size_t wn, const char *v, size_t vn)
{
    if (wn == 0)
        return vn == 0;
    if (w[0] == '*') {
        for (size_t k = 0; k <= vn; k++)
            if (oglob(w + 1, wn - 1, v + k, vn - k))
                return true;
        return false;
    }
    char lit = w[0];
    size_t step = 1;
    if (w[0] == '\\') {
        lit = w[1];
        step = 2;
    }
    return vn > 0 && v[0] == lit && oglob(w + step, wn - step, v + 1, vn - 1);
}

static void jstr(sbuf *b, const char *s)
{
    char t[80];
    size_t o = 0;
    t[o++] = '"';
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            t[o++] = '\\';
        t[o++] = *s;
    }
    t[o++] = '"';
    t[o] = '\0';
    sput(b, t);
}

static void ogen_cond(ocond *c)
{
    memset(c, 0, sizeof *c);
    c->op = (int)rnd(O_NOPS);
    size_t l;
    switch (c->op) {
    case O_WILD: case O_AB_WILD:
        c->ns = c->op == O_AB_WILD ? 1 + (int)rnd(2) : 1;
        for (int i = 0; i < c->ns; i++)
            owild(c->s[i], &l);
        break;
    case O_NUM: case O_AB_NUM: case O_NUMERIC:
        c->ns = c->op == O_AB_NUM ? 1 + (int)rnd(2) : 1;
        for (int i = 0; i < c->ns; i++) {
            size_t k = rnd(sizeof ONUMS / sizeof ONUMS[0]);
            c->n[i] = ONUMS[k].v;
            snprintf(c->ntext[i], sizeof c->ntext[i], "%s", ONUMS[k].text);
        }
        c->nop = (int)rnd(5);
        break;
    case O_RANGE: {
        size_t a = rnd(sizeof ONUMS / sizeof ONUMS[0]), z = rnd(sizeof ONUMS / sizeof ONUMS[0]);
        if (ONUMS[a].v > ONUMS[z].v) {
            size_t t = a;
            a = z;
            z = t;
        }
        if (ONUMS[a].v == ONUMS[z].v) {
            a = 0;
            z = 9;
        }
        c->n[0] = ONUMS[a].v;
        c->n[1] = ONUMS[z].v;
        snprintf(c->ntext[0], sizeof c->ntext[0], "%s", ONUMS[a].text);
        snprintf(c->ntext[1], sizeof c->ntext[1], "%s", ONUMS[z].text);
        c->nop = (int)rnd(4);
        break;
    }
    case O_EXISTS: c->flag = rnd(2); break;
    case O_NULL: break;
    default:
        c->ns = (c->op >= O_AB_STR && c->op <= O_AB_EIC) ? 1 + (int)rnd(2) : 1;
        for (int i = 0; i < c->ns; i++) {
            do
                ostring(c->s[i], &l, 3);
            while (l == 0 && (c->op == O_AB_PREFIX || c->op == O_AB_SUFFIX)); /* "" is invalid there */
        }
        break;
    }
}

static const char *const NUMOPS[] = {"=", "<", "<=", ">", ">="};

static void ocond_json(sbuf *b, const ocond *c)
{
    static const char *const AB_KEYS[] = {[O_AB_PREFIX] = "prefix", [O_AB_SUFFIX] = "suffix",
                                          [O_AB_EIC] = "equals-ignore-case", [O_AB_WILD] = "wildcard"};
    char t[128];
    switch (c->op) {
    case O_STR: jstr(b, c->s[0]); break;
    case O_NUM: sput(b, c->ntext[0]); break;
    case O_NULL: sput(b, "null"); break;
    case O_PREFIX: sput(b, "{\"prefix\":"); jstr(b, c->s[0]); sput(b, "}"); break;
    case O_SUFFIX: sput(b, "{\"suffix\":"); jstr(b, c->s[0]); sput(b, "}"); break;
    case O_EIC: sput(b, "{\"equals-ignore-case\":"); jstr(b, c->s[0]); sput(b, "}"); break;
    case O_PREFIX_EIC: sput(b, "{\"prefix\":{\"equals-ignore-case\":"); jstr(b, c->s[0]); sput(b, "}}"); break;
    case O_SUFFIX_EIC: sput(b, "{\"suffix\":{\"equals-ignore-case\":"); jstr(b, c->s[0]); sput(b, "}}"); break;
    case O_WILD: sput(b, "{\"wildcard\":"); jstr(b, c->s[0]); sput(b, "}"); break;
    case O_AB_STR:
        sput(b, "{\"anything-but\":");
        if (c->ns == 1) {
            jstr(b, c->s[0]);
        } else {
            sput(b, "[");
            jstr(b, c->s[0]);
            sput(b, ",");
            jstr(b, c->s[1]);
            sput(b, "]");
        }
        sput(b, "}");
        break;
    case O_AB_NUM:
        if (c->ns == 1)
            snprintf(t, sizeof t, "{\"anything-but\":%s}", c->ntext[0]);
        else
            snprintf(t, sizeof t, "{\"anything-but\":[%s,%s]}", c->ntext[0], c->ntext[1]);
        sput(b, t);
        break;
    case O_AB_PREFIX: case O_AB_SUFFIX: case O_AB_EIC: case O_AB_WILD:
        snprintf(t, sizeof t, "{\"anything-but\":{\"%s\":", AB_KEYS[c->op]);
        sput(b, t);
        if (c->ns == 1) {
            jstr(b, c->s[0]);
        } else {
            sput(b, "[");
            jstr(b, c->s[0]);
            sput(b, ",");
            jstr(b, c->s[1]);
            sput(b, "]");
        }
        sput(b, "}}");
        break;
    case O_NUMERIC:
        snprintf(t, sizeof t, "{\"numeric\":[\"%s\",%s]}", NUMOPS[c->nop], c->ntext[0]);
        sput(b, t);
        break;
    case O_RANGE:
        snprintf(t, sizeof t, "{\"numeric\":[\"%s\",%s,\"%s\",%s]}", c->nop & 1 ? ">=" : ">", c->ntext[0],
                 c->nop & 2 ? "<=" : "<", c->ntext[1]);
        sput(b, t);
        break;
    case O_EXISTS: sput(b, c->flag ? "{\"exists\":true}" : "{\"exists\":false}"); break;
    }
}

/* Does condition c accept the one leaf value v? -1: the spec does not say. */
static int oaccept(const ocond *c, const oval *v)
{
    char fv[128], fp[128];
    size_t fvl = 0, fpl;
    if (v->type == 1)
        fvl = ofold(v->s, v->len, fv);
    bool any = false;
    switch (c->op) {
    case O_STR: return v->type == 1 && strcmp(v->s, c->s[0]) == 0;
    case O_NUM: return v->type == 2 && v->num == c->n[0];
    case O_NULL: return v->type == 3;
    case O_PREFIX: return v->type == 1 && strncmp(v->s, c->s[0], strlen(c->s[0])) == 0;
    case O_SUFFIX:
        return v->type == 1 && v->len >= strlen(c->s[0]) &&
               memcmp(v->s + v->len - strlen(c->s[0]), c->s[0], strlen(c->s[0])) == 0;
    case O_EIC:
        fpl = ofold(c->s[0], strlen(c->s[0]), fp);
        return v->type == 1 && fvl == fpl && memcmp(fv, fp, fpl) == 0;
    case O_PREFIX_EIC:
        fpl = ofold(c->s[0], strlen(c->s[0]), fp);
        return v->type == 1 && fvl >= fpl && memcmp(fv, fp, fpl) == 0;
    case O_SUFFIX_EIC:
        fpl = ofold(c->s[0], strlen(c->s[0]), fp);
        return v->type == 1 && fvl >= fpl && memcmp(fv + fvl - fpl, fp, fpl) == 0;
    case O_WILD: return v->type == 1 && oglob(c->s[0], strlen(c->s[0]), v->s, v->len);
    case O_AB_STR:
        for (int i = 0; i < c->ns; i++)
            any |= v->type == 1 && strcmp(v->s, c->s[i]) == 0;
        return !any;
    case O_AB_NUM:
        if (v->type == 1)
            return -1; /* a string against a numeric anything-but: not in the spec */
        for (int i = 0; i < c->ns; i++)
            any |= v->type == 2 && v->num == c->n[i];
        return !any;
    case O_AB_PREFIX:
        for (int i = 0; i < c->ns; i++)
            any |= v->type == 1 && strncmp(v->s, c->s[i], strlen(c->s[i])) == 0;
        return !any;
    case O_AB_SUFFIX:
        for (int i = 0; i < c->ns; i++)
            any |= v->type == 1 && v->len >= strlen(c->s[i]) &&
                   memcmp(v->s + v->len - strlen(c->s[i]), c->s[i], strlen(c->s[i])) == 0;
        return !any;
    case O_AB_EIC:
        for (int i = 0; i < c->ns; i++) {
            fpl = ofold(c->s[i], strlen(c->s[i]), fp);
            any |= v->type == 1 && fvl == fpl && memcmp(fv, fp, fpl) == 0;
        }
        return !any;
    case O_AB_WILD:
        for (int i = 0; i < c->ns; i++)
            any |= v->type == 1 && oglob(c->s[i], strlen(c->s[i]), v->s, v->len);
        return !any;
    case O_NUMERIC:
        if (v->type != 2)
            return 0;
        switch (c->nop) {
        case 0: return v->num == c->n[0];
        case 1: return v->num < c->n[0];
        case 2: return v->num <= c->n[0];
        case 3: return v->num > c->n[0];
        default: return v->num >= c->n[0];
        }
    case O_RANGE:
        if (v->type != 2)
            return 0;
        return ((c->nop & 1) ? v->num >= c->n[0] : v->num > c->n[0]) &&
               ((c->nop & 2) ? v->num <= c->n[1] : v->num < c->n[1]);
    case O_EXISTS: return c->flag; /* a leaf is present */
    }
    return -1;
}

static void ogen_val(oval *v)
{
    memset(v, 0, sizeof *v);
    uint32_t r = rnd(10);
    if (r < 6) {
        v->type = 1;
        ostring(v->s, &v->len, 4);
    } else if (r < 9) {
        v->type = 2;
        size_t k = rnd(sizeof ONUMS / sizeof ONUMS[0]);
        v->num = ONUMS[k].v;
        snprintf(v->text, sizeof v->text, "%s", ONUMS[k].text);
    } else {
        v->type = 3;
    }
}

static void test_differential_oracle(void **state)
{
    (void)state;
    rng = 0xC0FFEEull * 2654435761ull + 7;
    enum { NP = 150 };
    ocond conds[NP][2];
    int ncond[NP];
    char *texts[NP];
    pb_pattern *pats[NP];
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    size_t checked = 0, positives = 0, bad = 0;

    for (int round = 0; round < 40; round++) {
        /* a fresh set of patterns each round, replacing the ids 0..NP-1 */
        for (int i = 0; i < NP; i++) {
            sbuf b = {0};
            ncond[i] = 1 + (int)rnd(2);
            sput(&b, "{\"f\":[");
            for (int k = 0; k < ncond[i]; k++) {
                ogen_cond(&conds[i][k]);
                if (k)
                    sput(&b, ",");
                ocond_json(&b, &conds[i][k]);
            }
            sput(&b, "]}");
            if (round)
                free(texts[i]), pb_pattern_free(pats[i]);
            texts[i] = b.p;
            pb_error err;
            pb_error_clear(&err);
            if (pb_pattern_compile(texts[i], strlen(texts[i]), &pats[i], &err) != 0)
                fail_msg("valid pattern %s rejected: %s", texts[i], err.message);
            assert_int_equal(pb_matcher_add(m, (uint64_t)i, pats[i]), 0);
        }
        assert_int_equal(pb_matcher_prepare(m), 0);

        for (int e = 0; e < 60; e++) {
            /* the field: missing, one value, or an array of 0..3 values */
            oval vals[3];
            int nv = 0, shape = (int)rnd(6);
            sbuf b = {0};
            if (shape == 0) {
                sput(&b, "{\"g\":1}");
            } else if (shape < 4) {
                ogen_val(&vals[0]);
                nv = 1;
            } else {
                nv = (int)rnd(4);
                for (int k = 0; k < nv; k++)
                    ogen_val(&vals[k]);
            }
            if (shape) {
                sput(&b, shape < 4 ? "{\"f\":" : "{\"f\":[");
                for (int k = 0; k < nv; k++) {
                    if (k)
                        sput(&b, ",");
                    if (vals[k].type == 1)
                        jstr(&b, vals[k].s);
                    else if (vals[k].type == 2)
                        sput(&b, vals[k].text);
                    else
                        sput(&b, "null");
                }
                sput(&b, shape < 4 ? "}" : "]}");
            }
            const uint64_t *ids;
            size_t n = 0;
            pb_error err;
            assert_int_equal(pb_matcher_match(m, b.p, b.n, s, &ids, &n, &err), 0);
            for (int i = 0; i < NP; i++) {
                /* the oracle: some condition accepts some value; absent
                 * (missing or no values) only satisfies exists:false */
                int want = 0;
                bool unknown = false;
                for (int k = 0; k < ncond[i]; k++) {
                    const ocond *c = &conds[i][k];
                    if (c->op == O_EXISTS && !c->flag && nv == 0)
                        want = 1;
                    for (int j = 0; j < nv; j++) {
                        int a = oaccept(c, &vals[j]);
                        if (a < 0)
                            unknown = true;
                        else if (a)
                            want = 1;
                    }
                }
                bool got = false;
                for (size_t j = 0; j < n; j++)
                    got |= ids[j] == (uint64_t)i;
                bool ev = false;
                assert_int_equal(pb_pattern_eval(pats[i], b.p, b.n, &ev, &err), 0);
                if (got != ev || ((!unknown || want) && got != (bool)want)) {
                    if (bad < 10)
                        print_error("pattern %s\n  event %s\n  oracle %s, matcher %s, eval %s\n", texts[i], b.p,
                                    unknown && !want ? "?" : want ? "match" : "no-match", got ? "match" : "no-match",
                                    ev ? "match" : "no-match");
                    bad++;
                }
                checked++;
                positives += got;
            }
            free(b.p);
        }
    }
    print_message("oracle: %zu verdicts checked, %zu positive\n", checked, positives);
    for (int i = 0; i < NP; i++) {
        free(texts[i]);
        pb_pattern_free(pats[i]);
    }
    pb_match_scratch_free(s);
    pb_matcher_free(m);
    assert_true(positives > checked / 10);
    if (bad)
        fail_msg("%zu verdicts disagree with the oracle or with each other", bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_sorted_and_distinct),
        cmocka_unit_test(test_same_pattern_many_ids),
        cmocka_unit_test(test_or_pattern_reported_once),
        cmocka_unit_test(test_combinations_counted),
        cmocka_unit_test(test_add_replace_remove),
        cmocka_unit_test(test_remove_shared_states),
        cmocka_unit_test(test_match_requires_prepare),
        cmocka_unit_test(test_bad_events),
        cmocka_unit_test(test_depth_limit_agrees_with_eval),
        cmocka_unit_test(test_scratch_independent),
        cmocka_unit_test(test_differential_random),
        cmocka_unit_test(test_differential_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
