/*
 * pb_transform.h — what a target receives when its rule fires (AWS-SPEC §2.4)
 * and the parameters of a SageMaker pipeline target (§2.5).
 *
 * Both work on the target as PutTargets stored it (a jansson object with
 * the members of AWS's Target shape) and on the matched event (the full
 * envelope: version, id, detail-type, ..., detail). Pure functions, no I/O.
 *
 * The payload (pb_transform_payload):
 *   - none of Input, InputPath, InputTransformer: the whole event, compact;
 *   - Input: that text, as stored;
 *   - InputPath: the value the path finds, compact JSON; a path that finds
 *     nothing means the target is NOT INVOKED (see below);
 *   - InputTransformer: InputTemplate with its <placeholders> replaced.
 *
 * Placeholders are <name>, name in [A-Za-z0-9_.-]+, either a key of
 * InputPathsMap or a predefined variable: aws.events.rule-arn,
 * aws.events.rule-name, aws.events.event.ingestion-time (ISO-8601 UTC with
 * milliseconds), aws.events.event (the event without detail),
 * aws.events.event.json (the whole event). A map path that finds nothing
 * makes its variable the empty string. A `<...>` that is not a known name is
 * left as it is (PutTargets refuses such templates, see
 * pb_transform_bad_placeholder).
 *
 * Values are inserted without escaping, as AWS documents; how depends on
 * where the placeholder stands in the template (the template's own quotes
 * decide, values never do):
 *   - alone inside a JSON string, "<v>": a string as its raw text; anything
 *     else as its JSON text (so "<obj>" makes `"{"a":1}"`, which is not JSON);
 *   - inside a JSON string with other text, "x <v> y": a string raw; an
 *     object or array as JSON with every quote dropped ({a:1,b:x}, [A,B]);
 *     numbers, booleans and null as JSON;
 *   - outside strings, in a template that is a JSON object or array: a string
 *     gets quotes added ("0a78"), anything else is its JSON text;
 *   - outside strings in any other template: a string raw, anything else JSON.
 * A template whose first non-blank character is `{` or `[` must give valid
 * JSON; it is delivered minified (blanks outside strings removed). When it
 * is not valid JSON (a value with a quote in it, an object inside quotes,
 * ...) the target is NOT INVOKED. Any other template (a quoted string, plain
 * text) is delivered as it comes out, quotes included.
 *
 * Numbers of the event are written as jansson holds them: integers exactly,
 * reals in the shortest form that reads back as the same double (with ".0"
 * when that form would read as an integer).
 */
#ifndef PB_TRANSFORM_H
#define PB_TRANSFORM_H

#include "common/pb_buf.h"
#include "common/pb_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_TRANSFORM_MAX_PAYLOAD (1024 * 1024) /* bytes a transformed payload may reach */
#define PB_TRANSFORM_MAX_PARAM 1024            /* characters of a pipeline parameter value (the model's limit) */

/* What the predefined variables need; all borrowed. */
typedef struct pb_transform_ctx {
    const char *rule_arn;  /* aws.events.rule-arn (NULL: empty) */
    const char *rule_name; /* aws.events.rule-name (NULL: empty) */
    int64_t ingested_ms;   /* aws.events.event.ingestion-time, ms since the epoch (UTC) */
} pb_transform_ctx;

/* The payload target (borrowed) receives for event (borrowed).
 *   invoke the target:  returns 0, *not_invoked false, *out a malloc'd
 *                       NUL-terminated payload (the caller frees it), *len
 *                       its length in bytes when len is non-NULL;
 *   do not invoke it:   returns 0, *not_invoked true, *out NULL; err (when
 *                       given) holds the reason for the log, code
 *                       PB_EVALIDATION. This is AWS's silent "target not
 *                       invoked": no retry, no failure to report.
 * Errors (the invocation fails; not retryable): PB_EVALIDATION for a target
 * that cannot be applied (two of Input/InputPath/InputTransformer, members
 * of the wrong type, a path that is not valid) or a payload over
 * PB_TRANSFORM_MAX_PAYLOAD; PB_ENOMEM. */
int pb_transform_payload(json_t *target, json_t *event, const pb_transform_ctx *ctx, char **out, size_t *len,
                         bool *not_invoked, pb_error *err);

/* StartPipelineExecution's PipelineParameters for a SageMaker pipeline
 * target: *params is a NEW array of {"Name": s, "Value": s} (the caller
 * decrefs it), in the order of SageMakerPipelineParameters.
 * PipelineParameterList (empty when the target has none). A value that is a
 * valid JSON path as a whole (pb_jsonpath_valid) is read from event: a
 * string as it is, anything else as compact JSON; any other value is passed
 * as it is.
 * Errors (the caller fails the invocation as INVALID_PARAMETER, never
 * retried): PB_EVALIDATION when a path finds nothing (the message names the
 * parameter and the path), when a value is longer than
 * PB_TRANSFORM_MAX_PARAM characters, or for a malformed list; PB_ENOMEM.
 * *params is NULL on error. */
int pb_transform_sagemaker_params(json_t *target, json_t *event, json_t **params, pb_error *err);

/* PutTargets' check (AWS-SPEC §2.2): the first placeholder of tmpl that is
 * neither a key of map (may be NULL) nor predefined. Writes its name to name
 * (cap bytes, truncated) and returns true; false when every placeholder is
 * known. Uses the same scanner as pb_transform_payload. */
bool pb_transform_bad_placeholder(const char *tmpl, json_t *map, char *name, size_t cap);

/* Appends v (borrowed) to b as compact JSON, numbers as described above.
 * Returns 0, PB_ENOMEM or PB_EVALIDATION (b's cap reached). */
int pb_transform_write_json(pb_buf *b, json_t *v);

#endif
