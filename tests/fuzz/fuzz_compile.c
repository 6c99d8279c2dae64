/*
 * fuzz_compile.c — pattern compilation.
 *
 * The input is pattern text. pb_pattern_compile must either succeed, or fail
 * with PB_EPATTERN (AWS's "Event pattern is not valid. Reason: ..." message)
 * or PB_ENOMEM; anything else aborts. A compiled pattern is added to a
 * matcher, prepared, matched against a few fixed events (and checked against
 * pb_pattern_eval on them), explained, removed, and freed.
 */
#include "pattern/pb_pattern.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_PREFIX "Event pattern is not valid. Reason: "

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_compile: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Small events that reach most operators: strings, numbers, booleans, null,
 * nested objects, arrays of scalars and of objects, IP addresses. */
static const char *const EVENTS[] = {
    "{\"id\":\"1\",\"source\":\"aws.ec2\",\"detail-type\":\"EC2 State Change\",\"account\":\"123456789012\","
    "\"time\":\"2022-07-13T13:48:01Z\",\"region\":\"us-east-1\",\"resources\":[\"arn:aws:ec2:i-1\",\"arn:x\"],"
    "\"detail\":{\"state\":\"running\",\"instance-id\":\"i-1\",\"n\":5,\"f\":-1.5e2,\"b\":true,\"z\":null,"
    "\"ip\":\"10.0.0.17\",\"ip6\":\"2001:db8::1\",\"e\":\"\",\"arr\":[1,\"a\",null,false,{\"k\":\"v\"}],"
    "\"objs\":[{\"x\":1,\"y\":\"p\"},{\"x\":2,\"y\":\"q\"}],\"a\":{\"b\":{\"c\":\"deep\"}},\"a.b\":\"dotted\"}}",
    "{\"a\":\"x\",\"b\":0,\"c\":[],\"d\":{},\"e\":\"A\\u00e9\\\"*\\\\\",\"f\":[[1,2],[\"3\"]],\"g\":1e400}",
    "{}",
};

static void check_pattern(const pb_pattern *p)
{
    size_t combos = pb_pattern_combinations(p);
    if (combos < 1 || combos > PB_PATTERN_MAX_COMBINATIONS)
        fail("combinations out of range", NULL);

    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    if (!m || !s)
        goto out;
    pb_error err;
    int rc = pb_matcher_add(m, 42, p);
    if (rc == PB_ENOMEM)
        goto out;
    if (rc != 0)
        fail("pb_matcher_add failed", pb_error_name(rc));
    if (pb_matcher_count(m) != 1)
        fail("pb_matcher_count != 1 after add", NULL);
    rc = pb_matcher_prepare(m);
    if (rc == PB_ENOMEM)
        goto out;
    if (rc != 0)
        fail("pb_matcher_prepare failed", pb_error_name(rc));
    (void)pb_matcher_memory(m);

    for (size_t e = 0; e < sizeof EVENTS / sizeof *EVENTS; e++) {
        const char *ev = EVENTS[e];
        size_t evlen = strlen(ev);
        const uint64_t *ids = NULL;
        size_t n = 0;
        rc = pb_matcher_match(m, ev, evlen, s, &ids, &n, &err);
        if (rc != 0 && rc != PB_ETOOCOMPLEX && rc != PB_ENOMEM)
            fail("pb_matcher_match failed on a valid event", err.message);
        if (rc == 0 && (n > 1 || (n == 1 && ids[0] != 42)))
            fail("pb_matcher_match returned a foreign id", NULL);
        bool matched = false;
        int rc2 = pb_pattern_eval(p, ev, evlen, &matched, &err);
        if (rc2 != 0 && rc2 != PB_ENOMEM)
            fail("pb_pattern_eval failed on a valid event", err.message);
        if (rc == 0 && rc2 == 0 && matched != (n == 1)) {
            fprintf(stderr, "event: %s\nmatcher: %zu, eval: %d\n", ev, n, matched);
            fail("matcher and eval disagree", NULL);
        }
        pb_buf out;
        pb_buf_init(&out, 0);
        rc = pb_pattern_explain(p, ev, evlen, e & 1, &out, &err);
        if (rc != 0 && rc != PB_ENOMEM)
            fail("pb_pattern_explain failed on a valid event", err.message);
        if (rc == 0 && rc2 == 0 && !(e & 1)) {
            const char *want = matched ? "{\"Result\":true" : "{\"Result\":false";
            if (out.len < strlen(want) || memcmp(out.data, want, strlen(want)) != 0)
                fail("explain disagrees with eval", NULL);
        }
        pb_buf_free(&out);
    }

    if (pb_matcher_remove(m, 42) != 0)
        fail("pb_matcher_remove of a present id failed", NULL);
    if (pb_matcher_remove(m, 42) != PB_ENOTFOUND)
        fail("second pb_matcher_remove did not say PB_ENOTFOUND", NULL);
    if (pb_matcher_count(m) != 0)
        fail("pb_matcher_count != 0 after remove", NULL);
    rc = pb_matcher_prepare(m);
    if (rc == 0) {
        const uint64_t *ids = NULL;
        size_t n = 0;
        rc = pb_matcher_match(m, EVENTS[0], strlen(EVENTS[0]), s, &ids, &n, &err);
        if (rc == 0 && n != 0)
            fail("empty matcher matched", NULL);
    }
out:
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so that ASan sees any read past the end. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);

    pb_pattern *p = (pb_pattern *)1;
    pb_error err;
    memset(&err, 0x5a, sizeof err);
    int rc = pb_pattern_compile(text, size, &p, &err);
    if (rc == 0) {
        if (!p)
            fail("compile succeeded without a pattern", NULL);
        check_pattern(p);
        pb_pattern_free(p);
    } else {
        if (p != NULL)
            fail("compile failed but left *out set", NULL);
        if (rc != PB_EPATTERN && rc != PB_ENOMEM)
            fail("compile failed with an unexpected code", pb_error_name(rc));
        if (err.code != rc)
            fail("err.code differs from the returned code", pb_error_name(err.code));
        if (memchr(err.message, 0, sizeof err.message) == NULL)
            fail("error message not NUL-terminated", NULL);
        if (rc == PB_EPATTERN && strncmp(err.message, REASON_PREFIX, strlen(REASON_PREFIX)) != 0)
            fail("PB_EPATTERN message lacks AWS's prefix", err.message);
        if (rc == PB_EPATTERN && strlen(err.message) == strlen(REASON_PREFIX))
            fail("PB_EPATTERN message has an empty reason", NULL);
    }
    free(text);
    return 0;
}
