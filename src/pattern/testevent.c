/*
 * testevent.c — TestEventPattern's semantics in one place, for the API and
 * the offline CLI: the envelope check, the pattern check, then the answer of
 * the real matcher (not the reference evaluator).
 */
#include "pb_pattern.h"

int pb_pattern_test_event(const char *pattern, size_t plen, const char *event, size_t elen, bool *result,
                          pb_error *err)
{
    *result = false;
    int rc = pb_event_check_envelope(event, elen, err);
    if (rc)
        return rc;
    pb_pattern *p = NULL;
    if ((rc = pb_pattern_compile(pattern, plen, &p, err)))
        return rc;
    pb_matcher *m = pb_matcher_new();
    pb_match_scratch *s = pb_match_scratch_new();
    const uint64_t *ids;
    size_t n = 0;
    if (!m || !s || pb_matcher_add(m, 1, p) || pb_matcher_prepare(m))
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    else if ((rc = pb_matcher_match(m, event, elen, s, &ids, &n, err)) == PB_EEVENT)
        pb_error_set(err, rc, "Parameter Event is not valid.");
    *result = !rc && n > 0;
    pb_match_scratch_free(s);
    pb_matcher_free(m);
    pb_pattern_free(p);
    return rc;
}
