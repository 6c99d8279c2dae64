/*
 * conformance.c — replays the cases recorded against real Amazon EventBridge.
 *
 * Usage: conformance FILE.jsonl. Each line is a case with the exact
 * pattern_json / event_json text sent to AWS and what AWS answered:
 *   match / no-match  the automaton (pb_matcher) and the reference evaluator
 *                     must both give that verdict;
 *   invalid           compiling must fail with InvalidEventPatternException
 *                     whose message's first line equals AWS's;
 *   invalid-event     TestEventPattern's event check must fail with
 *                     ValidationException "Parameter Event is not valid.".
 * Prints one line per disagreement and a summary; exits 1 on any.
 */
#include "json/pb_json.h"
#include "pattern/pb_pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const pb_json *o, const char *key, size_t *len)
{
    const pb_json *v = pb_json_get(o, key);
    if (!v || v->type != PB_JSON_STRING)
        return NULL;
    *len = v->len;
    return v->str;
}

static size_t first_line(const char *s) { return strcspn(s, "\n"); }

static int run_case(const pb_json *c, const char *name, char *why, size_t whylen)
{
    size_t plen = 0, elen = 0, xlen = 0;
    const char *pattern = str(c, "pattern_json", &plen);
    const char *event = str(c, "event_json", &elen);
    const char *expect = str(c, "expect", &xlen);
    if (!pattern || !event || !expect) {
        snprintf(why, whylen, "case lacks pattern_json/event_json/expect");
        return 1;
    }
    pb_error err;
    if (!strcmp(expect, "invalid-event")) {
        int rc = pb_event_check_envelope(event, elen, &err);
        if (rc != PB_EEVENT || strcmp(err.message, "Parameter Event is not valid.")) {
            snprintf(why, whylen, "expected ValidationException 'Parameter Event is not valid.', got %s",
                     rc ? err.message : "no error");
            return 1;
        }
        return 0;
    }
    pb_pattern *p = NULL;
    int rc = pb_pattern_compile(pattern, plen, &p, &err);
    if (!strcmp(expect, "invalid")) {
        const pb_json *e = pb_json_get(c, "error");
        size_t mlen = 0;
        const char *msg = e ? str(e, "message", &mlen) : NULL;
        if (!msg) {
            snprintf(why, whylen, "invalid case without error.message");
            pb_pattern_free(p);
            return 1;
        }
        if (rc != PB_EPATTERN) {
            snprintf(why, whylen, "expected InvalidEventPatternException '%.*s', pattern compiled", (int)first_line(msg),
                     msg);
            pb_pattern_free(p);
            return 1;
        }
        size_t a = first_line(err.message), b = first_line(msg);
        if (a != b || memcmp(err.message, msg, a)) {
            snprintf(why, whylen, "message differs:\n    aws:  %.*s\n    ours: %.*s", (int)b, msg, (int)a, err.message);
            return 1;
        }
        return 0;
    }
    bool want = !strcmp(expect, "match");
    if (rc) {
        snprintf(why, whylen, "pattern rejected: %s", err.message);
        return 1;
    }
    int fails = 0;
    if (pb_event_check_envelope(event, elen, &err)) {
        snprintf(why, whylen, "event rejected: %s", err.message);
        fails = 1;
        goto out;
    }
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    const uint64_t *ids;
    size_t n = 0;
    if (!m || !s || pb_matcher_add(m, 42, p) || pb_matcher_prepare(m) ||
        pb_matcher_match(m, event, elen, s, &ids, &n, &err)) {
        snprintf(why, whylen, "matcher failed: %s", err.message);
        fails = 1;
    } else if ((n == 1 && ids[0] == 42) != want || n > 1) {
        snprintf(why, whylen, "automaton says %s, AWS says %s", n ? "match" : "no-match", expect);
        fails = 1;
    }
    pb_match_scratch_free(s);
    pb_matcher_free(m);
    bool ref = false;
    if (!fails && (pb_pattern_eval(p, event, elen, &ref, &err) || ref != want)) {
        snprintf(why, whylen, "reference evaluator says %s, AWS says %s", ref ? "match" : "no-match", expect);
        fails = 1;
    }
out:
    pb_pattern_free(p);
    (void)name;
    return fails;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: conformance FILE.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int total = 0, failed = 0, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (len <= 1)
            continue;
        pb_arena arena;
        pb_arena_init(&arena);
        pb_json *c;
        pb_error err;
        if (pb_json_parse(line, (size_t)len, NULL, &arena, &c, &err)) {
            fprintf(stderr, "%s:%d: not JSON: %s\n", argv[1], lineno, err.message);
            failed++;
            total++;
            pb_arena_free(&arena);
            continue;
        }
        size_t nl = 0;
        const char *name = str(c, "name", &nl);
        char why[4096];
        total++;
        if (run_case(c, name ? name : "?", why, sizeof why)) {
            failed++;
            printf("FAIL %.*s: %s\n", (int)nl, name ? name : "?", why);
        }
        pb_arena_free(&arena);
    }
    free(line);
    fclose(f);
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed ? 1 : 0;
}
