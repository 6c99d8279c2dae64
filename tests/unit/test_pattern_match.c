/*
 * test_pattern_match.c — data-driven tests of the event-pattern language.
 *
 * Reads tests/unit/cases/patterns.txt (format documented at the top of that
 * file: "# name", a pattern line, then event/expectation pairs, or an
 * "invalid: <reason>" line) and registers one cmocka test per (pattern, event)
 * pair and per invalid pattern. For a valid pattern every pair must give the
 * expected outcome from all three ways of matching:
 *   - the automaton: a pb_matcher holding only this pattern, prepared, then
 *     pb_matcher_match (must return exactly the one id, or none);
 *   - the reference evaluator pb_pattern_eval;
 *   - pb_pattern_explain's {"Result":true|false}.
 * For an invalid pattern, pb_pattern_compile must fail with PB_EPATTERN and
 * the first line of the message must be "Event pattern is not valid. Reason:
 * <reason>" exactly.
 *
 * The cases themselves are written from AWS-SPEC.md §4, not from the code.
 * The case file is found next to this source (__FILE__), or at the path given
 * as the first command-line argument.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "case_path.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_buf.h"
#include "common/pb_error.h"
#include "pattern/pb_pattern.h"

#define REASON_PREFIX "Event pattern is not valid. Reason: "
#define CASE_ID 7u

enum expect { EXPECT_MATCH, EXPECT_NO_MATCH, EXPECT_INVALID };

typedef struct pcase {
    char *title;   /* "name" or "name [k]" */
    char *pattern;
    char *event;   /* NULL for invalid cases */
    enum expect expect;
    char *reason;  /* invalid: exact reason, or NULL for "any" */
    int line;      /* line of the expectation in the case file */
} pcase;

static const char *case_path;

/* ------------------------------------------------------------ case file -- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return d;
}

static void die(int line, const char *what)
{
    fprintf(stderr, "%s:%d: malformed case file: %s\n", case_path, line, what);
    exit(2);
}

/* Reads the whole case file into cases; returns the count. */
static size_t load_cases(const char *path, pcase **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    size_t n = 0, cap = 0;
    pcase *cases = NULL;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    int lineno = 0;

    /* block state */
    char *name = NULL, *pattern = NULL, *event = NULL;
    int pairs = 0;
    size_t block_first = 0;

    for (;;) {
        got = getline(&line, &linecap, f);
        bool eof = got < 0;
        if (!eof) {
            lineno++;
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
                line[--got] = '\0';
            if (strncmp(line, "//", 2) == 0)
                continue;
        }
        if (eof || got == 0) { /* end of block */
            if (name) {
                if (!pattern)
                    die(lineno, "block without a pattern");
                if (event)
                    die(lineno, "event without an expectation");
                if (pairs == 0)
                    die(lineno, "block without an expectation");
                if (pairs > 1) { /* number the pairs */
                    for (size_t i = block_first; i < n; i++) {
                        char buf[512];
                        snprintf(buf, sizeof buf, "%s [%zu]", cases[i].title, i - block_first + 1);
                        free(cases[i].title);
                        cases[i].title = xstrdup(buf);
                    }
                }
                free(name);
                free(pattern);
                name = pattern = NULL;
                pairs = 0;
            }
            if (eof)
                break;
            continue;
        }
        if (!name) {
            if (line[0] != '#' || line[1] != ' ')
                die(lineno, "a block must start with \"# name\"");
            name = xstrdup(line + 2);
            block_first = n;
            continue;
        }
        if (!pattern) {
            pattern = xstrdup(line);
            continue;
        }
        bool is_match = strcmp(line, "match") == 0;
        bool is_nomatch = strcmp(line, "no-match") == 0;
        bool is_invalid = strcmp(line, "invalid") == 0 || strncmp(line, "invalid: ", 9) == 0;
        if (!event && !is_invalid) {
            if (is_match || is_nomatch)
                die(lineno, "expectation without an event line");
            event = xstrdup(line);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            cases = realloc(cases, cap * sizeof *cases);
            if (!cases)
                die(lineno, "out of memory");
        }
        pcase *c = &cases[n++];
        memset(c, 0, sizeof *c);
        c->title = xstrdup(name);
        c->pattern = xstrdup(pattern);
        c->line = lineno;
        if (is_invalid) {
            if (event || pairs)
                die(lineno, "invalid: only right after the pattern, alone");
            c->expect = EXPECT_INVALID;
            c->reason = line[7] == ':' ? xstrdup(line + 9) : NULL;
        } else if (is_match || is_nomatch) {
            c->expect = is_match ? EXPECT_MATCH : EXPECT_NO_MATCH;
            c->event = event;
            event = NULL;
        } else {
            die(lineno, "expected match, no-match or invalid");
        }
        pairs++;
    }
    free(line);
    fclose(f);
    *out = cases;
    return n;
}

/* ------------------------------------------------------------- one case -- */

static const char *first_line(const char *msg, char *buf, size_t cap)
{
    size_t len = strcspn(msg, "\n");
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    return buf;
}

static void run_invalid(const pcase *c)
{
    pb_pattern *p = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pattern_compile(c->pattern, strlen(c->pattern), &p, &err);
    if (rc == 0) {
        pb_pattern_free(p);
        fail_msg("line %d: pattern %s compiled, expected it to be rejected (%s)", c->line, c->pattern,
                 c->reason ? c->reason : "any reason");
    }
    if (rc != PB_EPATTERN)
        fail_msg("line %d: compile returned %s (%d), expected PB_EPATTERN; message: %s", c->line,
                 pb_error_name(rc), rc, err.message);
    char got[PB_ERROR_MESSAGE_MAX];
    first_line(err.message, got, sizeof got);
    if (c->reason) {
        char want[PB_ERROR_MESSAGE_MAX];
        snprintf(want, sizeof want, "%s%s", REASON_PREFIX, c->reason);
        if (strcmp(got, want) != 0)
            fail_msg("line %d: pattern %s\n  expected: %s\n  got:      %s", c->line, c->pattern, want, got);
    } else if (strncmp(got, REASON_PREFIX, strlen(REASON_PREFIX)) != 0) {
        fail_msg("line %d: message does not start with \"%s\": %s", c->line, REASON_PREFIX, got);
    }
}

static void run_match(const pcase *c)
{
    bool want = c->expect == EXPECT_MATCH;
    pb_pattern *p = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pattern_compile(c->pattern, strlen(c->pattern), &p, &err);
    if (rc != 0)
        fail_msg("line %d: pattern %s failed to compile: %s", c->line, c->pattern, err.message);

    size_t elen = strlen(c->event);
    char problems[4096] = "";
    size_t pl = 0;
#define PROBLEM(...) (pl += (size_t)snprintf(problems + pl, pl < sizeof problems ? sizeof problems - pl : 0, __VA_ARGS__))

    /* 1. the automaton */
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    assert_non_null(m);
    assert_non_null(s);
    rc = pb_matcher_add(m, CASE_ID, p);
    assert_int_equal(rc, 0);
    rc = pb_matcher_prepare(m);
    assert_int_equal(rc, 0);
    const uint64_t *ids = NULL;
    size_t nids = 0;
    pb_error_clear(&err);
    rc = pb_matcher_match(m, c->event, elen, s, &ids, &nids, &err);
    if (rc != 0) {
        PROBLEM("\n  matcher: error %s: %s", pb_error_name(rc), err.message);
    } else {
        bool got = nids > 0;
        if (got != want)
            PROBLEM("\n  matcher: %s", got ? "match" : "no-match");
        else if (want && (nids != 1 || ids[0] != CASE_ID))
            PROBLEM("\n  matcher: returned %zu ids (first %llu), expected exactly [%u]", nids,
                    (unsigned long long)ids[0], CASE_ID);
    }

    /* 2. the reference evaluator */
    bool matched = !want;
    pb_error_clear(&err);
    rc = pb_pattern_eval(p, c->event, elen, &matched, &err);
    if (rc != 0)
        PROBLEM("\n  eval: error %s: %s", pb_error_name(rc), err.message);
    else if (matched != want)
        PROBLEM("\n  eval: %s", matched ? "match" : "no-match");

    /* 3. explain's verdict */
    pb_buf out;
    pb_buf_init(&out, 0);
    pb_error_clear(&err);
    rc = pb_pattern_explain(p, c->event, elen, false, &out, &err);
    if (rc != 0) {
        PROBLEM("\n  explain: error %s: %s", pb_error_name(rc), err.message);
    } else {
        const char *prefix = want ? "{\"Result\":true" : "{\"Result\":false";
        if (!out.data || strncmp(out.data, prefix, strlen(prefix)) != 0)
            PROBLEM("\n  explain: %s", out.data ? out.data : "(empty)");
    }
    pb_buf_free(&out);

    pb_match_scratch_free(s);
    pb_matcher_free(m);
    pb_pattern_free(p);
    if (pl)
        fail_msg("line %d: expected %s\n  pattern: %s\n  event:   %s%s", c->line, want ? "match" : "no-match",
                 c->pattern, c->event, problems);
#undef PROBLEM
}

static void run_case(void **state)
{
    const pcase *c = *state;
    if (c->expect == EXPECT_INVALID)
        run_invalid(c);
    else
        run_match(c);
}

/* A guard that the case file was found and is as large as intended. */
static size_t loaded_cases;
static void test_case_file_loaded(void **state)
{
    (void)state;
    assert_true(loaded_cases >= 150);
}

int main(int argc, char **argv)
{
    static char path[4096];
    if (argc > 1) {
        case_path = argv[1];
    } else {
        case_path = pb_test_case_path(__FILE__, "patterns.txt", path, sizeof path);
    }
    pcase *cases = NULL;
    size_t n = load_cases(case_path, &cases);
    loaded_cases = n;

    struct CMUnitTest *tests = calloc(n + 1, sizeof *tests);
    if (!tests)
        return 2;
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_case_file_loaded);
    for (size_t i = 0; i < n; i++) {
        tests[i + 1].name = cases[i].title;
        tests[i + 1].test_func = run_case;
        tests[i + 1].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests("pattern_match", tests, n + 1, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        free(cases[i].title);
        free(cases[i].pattern);
        free(cases[i].event);
        free(cases[i].reason);
    }
    free(cases);
    free(tests);
    return failed ? 1 : 0;
}
