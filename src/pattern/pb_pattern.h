/*
 * pb_pattern.h — the EventBridge event-pattern engine.
 *
 * Three pieces, all pure (no I/O, no globals besides read-only tables):
 *
 *  1. pb_pattern_compile: pattern text -> validated pb_pattern, or
 *     PB_EPATTERN with AWS's exact "Event pattern is not valid. Reason: ..."
 *     message. `$or` is expanded here into conjunctions ("sub-patterns").
 *
 *  2. pb_matcher: many patterns (all rules of a bus) compiled into one
 *     automaton. pb_matcher_match reads an event's raw JSON text once with a
 *     flattener that skips every field no pattern mentions, walks the
 *     automaton, and returns the ids of every pattern the event matches. The
 *     cost grows with the event and with the patterns that can match, not with
 *     the number of patterns.
 *
 *  3. pb_pattern_explain / pb_pattern_eval: a direct evaluator of one pattern
 *     against one event, used to say why an event does not match and, in
 *     tests, as the reference the automaton is checked against.
 *
 * Thread-safety: a pb_pattern is immutable after compilation. A pb_matcher
 * may be matched from many threads at once (each with its own
 * pb_match_scratch) once pb_matcher_prepare has been called after the last
 * add/remove; add/remove/prepare need exclusive access.
 */
#ifndef PB_PATTERN_H
#define PB_PATTERN_H

#include "common/pb_buf.h"
#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits. The API layer enforces AWS's 4096-character pattern limit; the
 * engine accepts more so that offline tooling can compile larger files. */
#define PB_PATTERN_MAX_BYTES (64 * 1024)
#define PB_PATTERN_MAX_DEPTH 64
#define PB_PATTERN_MAX_COMBINATIONS 1000 /* $or expansion, as AWS */
#define PB_EVENT_MAX_BYTES (1024 * 1024)
#define PB_EVENT_MAX_DEPTH 128

typedef struct pb_pattern pb_pattern;
typedef struct pb_matcher pb_matcher;
typedef struct pb_match_scratch pb_match_scratch;

/* ------------------------------------------------------------ compiling -- */

/* Compiles text[0..len). On success *out is a new pattern the caller frees
 * with pb_pattern_free. Errors: PB_EPATTERN (message is AWS's text),
 * PB_ENOMEM. */
int pb_pattern_compile(const char *text, size_t len, pb_pattern **out, pb_error *err);
void pb_pattern_free(pb_pattern *p);

/* Number of conjunctions the pattern expands to (1 without `$or`). */
size_t pb_pattern_combinations(const pb_pattern *p);

/* ------------------------------------------------------------- matching -- */

/* A new, empty matcher (NULL on allocation failure). Owns copies of what it
 * needs from added patterns: the pb_pattern may be freed after adding. */
pb_matcher *pb_matcher_new(void);
void pb_matcher_free(pb_matcher *m);

/* Adds p under id. An id already present is replaced. 0 or PB_ENOMEM (the
 * matcher is unchanged on failure). */
int pb_matcher_add(pb_matcher *m, uint64_t id, const pb_pattern *p);

/* Removes the pattern with this id; 0, or PB_ENOTFOUND. */
int pb_matcher_remove(pb_matcher *m, uint64_t id);

/* Builds the derived indexes changed since the last call. Must be called
 * after add/remove and before matching. 0 or PB_ENOMEM. */
int pb_matcher_prepare(pb_matcher *m);

size_t pb_matcher_count(const pb_matcher *m);   /* patterns */
size_t pb_matcher_memory(const pb_matcher *m);  /* bytes allocated, approximate */

/* Per-thread reusable working memory for matching. */
pb_match_scratch *pb_match_scratch_new(void);
void pb_match_scratch_free(pb_match_scratch *s);

/* Matches one event (raw JSON text of an object). On success *ids points to
 * *n distinct pattern ids in ascending order, valid until the next match with
 * the same scratch. Errors: PB_EEVENT (not a JSON object, deeper than
 * PB_EVENT_MAX_DEPTH, larger than PB_EVENT_MAX_BYTES, or malformed in a part
 * the matcher reads — subtrees no pattern mentions are only checked for
 * balanced brackets and terminated strings, so callers that must reject every
 * malformed document validate it first, as the API does), PB_ETOOCOMPLEX
 * (the array-consistency search exceeded its step budget), PB_ENOMEM,
 * PB_EINTERNAL (matcher not prepared). */
int pb_matcher_match(const pb_matcher *m, const char *event, size_t len, pb_match_scratch *s,
                     const uint64_t **ids, size_t *n, pb_error *err);

/* ----------------------------------------------- reference and explain -- */

/* Evaluates p against the event directly (no automaton). *matched is set.
 * Errors: PB_EEVENT (event is not a valid JSON object), PB_ENOMEM. */
int pb_pattern_eval(const pb_pattern *p, const char *event, size_t len, bool *matched, pb_error *err);

/* Explains the outcome as JSON appended to out:
 *   {"Result":true}
 *   {"Result":false,"Mismatches":[{"Path":"detail.state","Condition":[...],
 *     "Values":[...]|"Missing":true,"Reason":"..."}, ...]}
 * one mismatch per `$or` combination (the first failing field of each, in
 * pattern order). With text=true a readable multi-line form instead. */
int pb_pattern_explain(const pb_pattern *p, const char *event, size_t len, bool text, pb_buf *out,
                       pb_error *err);

/* TestEventPattern: envelope check, pattern check, then the matcher's
 * verdict in *result. Errors: PB_EEVENT ("Parameter Event is not valid."),
 * PB_EPATTERN, PB_ENOMEM. */
int pb_pattern_test_event(const char *pattern, size_t plen, const char *event, size_t elen, bool *result,
                          pb_error *err);

/* TestEventPattern's envelope check: the event must be a JSON object with
 * id, account, source, time, region and detail-type. 0 or PB_EEVENT with
 * "Parameter Event is not valid.". */
int pb_event_check_envelope(const char *event, size_t len, pb_error *err);

#endif
