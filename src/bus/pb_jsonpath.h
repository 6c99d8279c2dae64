/*
 * pb_jsonpath.h — the JSON path subset of EventBridge (AWS-SPEC §2.4, §2.5).
 *
 * InputPath, the values of InputPathsMap and dynamic SageMaker pipeline
 * parameters select parts of an event with a small JSON path language:
 *
 *   $                 the whole document
 *   .name             a member of an object; name is [A-Za-z0-9_/-]+
 *   ['name'] ["name"] a member, any characters but the quote (no escapes)
 *   [N]               element N (0-based, decimal, at most 9 digits) of an array
 *   .* [*]            every member of an object or element of an array (wildcard)
 *
 * Nothing else: no whitespace, no `..`, no filters, no negative indices, no
 * slices. A path is at most PB_JSONPATH_MAX characters.
 *
 * A path without a wildcard finds one value or nothing. A path with a
 * wildcard finds the list of every value it reaches (in document order,
 * members and elements that lack the rest of the path skipped), returned as
 * a JSON array, or nothing when it reaches none. A JSON null that is there is
 * found (as null); it is not "nothing".
 *
 * Pure functions on jansson documents, no I/O, no global state.
 */
#ifndef PB_JSONPATH_H
#define PB_JSONPATH_H

#include "common/pb_error.h"

#include <jansson.h>
#include <stdbool.h>

#define PB_JSONPATH_MAX 1024 /* characters of a path (InputPath itself is at most 256 by the model) */

/* True when path is a whole, well-formed path of the subset above (and not
 * longer than PB_JSONPATH_MAX). "$.detail.state" is one, "prefix-$.detail.state"
 * and "$.detail." are not. NULL is not. */
bool pb_jsonpath_valid(const char *path);

/* Evaluates path on doc (borrowed). On success *out is a NEW reference to
 * the value found (the caller decrefs it), a new array of the matches for a
 * wildcard path, or NULL when the path finds nothing.
 * Errors: PB_EVALIDATION for a path that is not valid (message names it),
 * PB_ENOMEM. *out is NULL on error. */
int pb_jsonpath_eval(json_t *doc, const char *path, json_t **out, pb_error *err);

#endif
