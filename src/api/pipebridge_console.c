/*
 * pipebridge_console.c — pipebridge's own actions that the web console
 * needs and AWS has no operation for (X-Amz-Target `Pipebridge.*`, SigV4
 * service `pipebridge`, answered as EventBridge answers).
 *
 *   ExplainEventPattern  {EventPattern, Event}
 *                        -> {Result, Mismatches?, Explanation}
 *
 * TestEventPattern says whether an event matches; this says why not. It is
 * the engine's pb_pattern_explain, the same answer as the CLI's
 * `explain-event-pattern`: for each `$or` alternative, the first field in
 * pattern order that no value of the event satisfies. `Mismatches` is the
 * structured form, `Explanation` the readable one the console shows. The
 * pattern and the event are checked as TestEventPattern checks them (4096
 * characters, AWS's messages for an invalid pattern or event), so the console
 * never explains a pattern PutRule would refuse.
 */
#include "api_internal.h"

#include "pattern/pb_pattern.h"

#include <string.h>

#define PATTERN_MAX 4096 /* as PutRule and TestEventPattern */

/* --------------------------------------------------- ExplainEventPattern -- */

static int explain_event_pattern(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    (void)ctx;
    pb_vctx v;
    pb_v_init(&v);
    const char *pattern = pb_v_str(&v, in, "EventPattern", "eventPattern", true, 0, PATTERN_MAX, PB_CS_ANY);
    const char *event = pb_v_str(&v, in, "Event", "event", true, 0, 0, PB_CS_ANY);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;

    pb_pattern *p = NULL;
    pb_buf js, text;
    pb_buf_init(&js, 0);
    pb_buf_init(&text, 0);
    json_t *o = NULL;
    bool matched = false;
    /* TestEventPattern's checks and verdict first: same messages, same answer */
    if ((rc = pb_pattern_test_event(pattern, strlen(pattern), event, strlen(event), &matched, err)))
        goto out;
    if ((rc = pb_pattern_compile(pattern, strlen(pattern), &p, err)))
        goto out;
    if ((rc = pb_pattern_explain(p, event, strlen(event), false, &js, err)) ||
        (rc = pb_pattern_explain(p, event, strlen(event), true, &text, err)))
        goto out;
    json_error_t jerr;
    o = json_loadb(js.data ? js.data : "{}", js.len, 0, &jerr);
    if (!o || !json_is_object(o)) {
        rc = pb_error_set(err, PB_EINTERNAL, "cannot read the engine's explanation");
        goto out;
    }
    /* the matcher's verdict is the one delivery uses; the explanation agrees
     * with it (the conformance tests check the two engines against each other) */
    json_object_set_new(o, "Result", json_boolean(matched));
    json_t *t = json_stringn(text.data ? text.data : "", text.len);
    if (!t || json_object_set_new(o, "Explanation", t)) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    *out = o;
    o = NULL;
out:
    json_decref(o);
    pb_buf_free(&js);
    pb_buf_free(&text);
    pb_pattern_free(p);
    return rc;
}

const pb_api_op pb_pipebridge_console_ops[] = {
    {"ExplainEventPattern", explain_event_pattern, false},
    {NULL, NULL, false},
};
