/*
 * fuzz_match.c — matching, differential.
 *
 * Input: pattern text, a NUL byte, event text (the event may contain further
 * NULs). Without a NUL the whole input is the event, matched against a fixed
 * set of patterns only (to exercise the flattener on arbitrary bytes).
 *
 * When the pattern compiles, a one-pattern matcher (pb_matcher_match, the
 * automaton and the skipping flattener) and pb_pattern_eval (the reference
 * evaluator over a full parse) are run on the event. The matcher validates
 * only the parts of the event it reads while eval parses all of it, so one
 * may fail while the other succeeds; only when both succeed must their
 * verdicts agree. pb_pattern_explain must then agree with eval as well and
 * produce JSON that parses. Any disagreement or unexpected error aborts.
 *
 * Independently of the pattern, the event is always flattened by a matcher
 * holding a fixed set of broad patterns, whose paths make the flattener keep
 * (and so decode) most of what an event contains.
 */
#include "pattern/pb_pattern.h"
#include "json/pb_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_match: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static const char *const FIXED[] = {
    "{\"a\":[{\"exists\":true}]}",
    "{\"a\":{\"b\":[{\"exists\":true}]}}",
    "{\"a\":{\"b\":{\"c\":[{\"exists\":true}]}}}",
    "{\"detail\":{\"state\":[{\"anything-but\":\"x\"}]}}",
    "{\"source\":[{\"prefix\":\"\"}],\"detail-type\":[{\"exists\":false}]}",
    "{\"b\":[{\"numeric\":[\">\",0]}],\"$or\":[{\"c\":[null]},{\"d\":[true,false]}]}",
    "{\"e\":[{\"wildcard\":\"*a*\"}],\"f\":[{\"cidr\":\"10.0.0.0/8\"}]}",
    "{\"g\":[{\"equals-ignore-case\":\"x\"}],\"h\":[{\"suffix\":{\"equals-ignore-case\":\"z\"}}]}",
};
#define NFIXED (sizeof FIXED / sizeof *FIXED)

static pb_matcher *fixed_matcher;
static pb_match_scratch *scratch;

static void init(void)
{
    if (scratch)
        return;
    scratch = pb_match_scratch_new();
    fixed_matcher = pb_matcher_new();
    if (!scratch || !fixed_matcher)
        fail("out of memory at start", NULL);
    for (size_t i = 0; i < NFIXED; i++) {
        pb_pattern *p;
        pb_error err;
        if (pb_pattern_compile(FIXED[i], strlen(FIXED[i]), &p, &err))
            fail("fixed pattern does not compile", err.message);
        if (pb_matcher_add(fixed_matcher, i, p))
            fail("pb_matcher_add", NULL);
        pb_pattern_free(p);
    }
    if (pb_matcher_prepare(fixed_matcher))
        fail("pb_matcher_prepare", NULL);
}

static void check_ids(const uint64_t *ids, size_t n, uint64_t max)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= max)
            fail("matcher returned an unknown id", NULL);
        if (i && ids[i] <= ids[i - 1])
            fail("matcher ids not strictly ascending", NULL);
    }
}

static void match_fixed(const char *ev, size_t evlen)
{
    const uint64_t *ids = NULL;
    size_t n = 0;
    pb_error err;
    int rc = pb_matcher_match(fixed_matcher, ev, evlen, scratch, &ids, &n, &err);
    if (rc == 0)
        check_ids(ids, n, NFIXED);
    else if (rc != PB_EEVENT && rc != PB_ETOOCOMPLEX && rc != PB_ENOMEM)
        fail("pb_matcher_match: unexpected error code", pb_error_name(rc));
}

static void differential(const char *pat, size_t plen, const char *ev, size_t evlen)
{
    pb_pattern *p;
    pb_error err;
    if (pb_pattern_compile(pat, plen, &p, &err))
        return;
    pb_matcher *m = pb_matcher_new();
    if (!m)
        goto out;
    if (pb_matcher_add(m, 7, p) || pb_matcher_prepare(m))
        goto out;

    const uint64_t *ids = NULL;
    size_t n = 0;
    pb_error merr;
    int rc1 = pb_matcher_match(m, ev, evlen, scratch, &ids, &n, &merr);
    if (rc1 == 0) {
        if (n > 1 || (n == 1 && ids[0] != 7))
            fail("one-pattern matcher returned a foreign id", NULL);
    } else if (rc1 != PB_EEVENT && rc1 != PB_ETOOCOMPLEX && rc1 != PB_ENOMEM) {
        fail("pb_matcher_match: unexpected error code", pb_error_name(rc1));
    }

    bool matched = false;
    pb_error eerr;
    int rc2 = pb_pattern_eval(p, ev, evlen, &matched, &eerr);
    if (rc2 != 0 && rc2 != PB_EEVENT && rc2 != PB_ENOMEM)
        fail("pb_pattern_eval: unexpected error code", pb_error_name(rc2));

    if (rc1 == 0 && rc2 == 0 && matched != (n == 1)) {
        fprintf(stderr, "pattern: %.*s\nevent: %.*s\nmatcher says %s, eval says %s\n", (int)plen, pat,
                (int)evlen, ev, n ? "match" : "no match", matched ? "match" : "no match");
        fail("matcher and eval disagree", NULL);
    }

    if (rc2 == 0) {
        /* explain parses the event the same way as eval: it must succeed and agree */
        pb_buf out;
        pb_buf_init(&out, 0);
        int rc3 = pb_pattern_explain(p, ev, evlen, false, &out, &err);
        if (rc3 == 0) {
            const char *want = matched ? "{\"Result\":true" : "{\"Result\":false";
            if (out.len < strlen(want) || memcmp(out.data, want, strlen(want)) != 0)
                fail("explain disagrees with eval", NULL);
            pb_arena arena;
            pb_arena_init(&arena);
            pb_json *doc;
            pb_error jerr;
            int rc4 = pb_json_parse(out.data, out.len, NULL, &arena, &doc, &jerr);
            if (rc4 != 0 && rc4 != PB_ENOMEM) {
                fprintf(stderr, "explain output: %.*s\n", (int)out.len, out.data);
                fail("explain output is not valid JSON", jerr.message);
            }
            pb_arena_free(&arena);
        } else if (rc3 != PB_ENOMEM) {
            fail("explain failed where eval succeeded", err.message);
        }
        pb_buf_reset(&out);
        rc3 = pb_pattern_explain(p, ev, evlen, true, &out, &err);
        if (rc3 != 0 && rc3 != PB_ENOMEM)
            fail("text explain failed where eval succeeded", err.message);
        pb_buf_free(&out);
    }
out:
    pb_matcher_free(m);
    pb_pattern_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    size_t plen = nul ? (size_t)(nul - data) : 0;
    size_t eoff = nul ? plen + 1 : 0;
    size_t evlen = size - eoff;

    /* exact-size copies so that ASan sees any read past either end */
    char *pat = malloc(plen ? plen : 1);
    char *ev = malloc(evlen ? evlen : 1);
    if (!pat || !ev) {
        free(pat);
        free(ev);
        return 0;
    }
    if (plen)
        memcpy(pat, data, plen);
    if (evlen)
        memcpy(ev, data + eoff, evlen);

    match_fixed(ev, evlen);
    if (nul)
        differential(pat, plen, ev, evlen);

    free(pat);
    free(ev);
    return 0;
}
