/*
 * pipedef_internal.h — what the files of the pipeline-definition core share.
 *
 * pipedef.c parses and validates, pipedef_expr.c knows the expression
 * language (Get paths, Std:Join, Std:JsonGet) for both validation and
 * evaluation, pipedef_cond.c parses and evaluates conditions,
 * pipedef_params.c binds start parameters, pipedef_plan.c plans a run.
 * Names here are pb_pipedef__* (module-internal, cross-file).
 */
#ifndef PB_PIPEDEF_INTERNAL_H
#define PB_PIPEDEF_INTERNAL_H

#include "pb_pipedef.h"

#define PB_PIPEDEF__JPATH_MAX 1024 /* bytes of a JSON path shown in messages */

/* The state of one parse: the definition being built, the error, the JSON
 * path of the value being looked at (for messages) and, while a step's
 * expressions are scanned, the set of steps it references. */
typedef struct pb_pipedef__parser {
    pb_pipedef *def;
    pb_error *err;
    char path[PB_PIPEDEF__JPATH_MAX];
    size_t plen;
    pb_pipedef_step *cur;      /* step whose expressions are scanned, NULL elsewhere */
    bool *refs;                /* nsteps flags: steps referenced by cur (malloc'd) */
    const pb_json **sjson;     /* nsteps: the JSON object of each step (malloc'd) */
    size_t step_cap;           /* steps allocated (counted in pass 1) */
    size_t nconds;             /* condition nodes counted in cur */
} pb_pipedef__parser;

/* JSON path helpers: push returns the previous length for pop. */
size_t pb_pipedef__push_key(pb_pipedef__parser *p, const char *key);
size_t pb_pipedef__push_index(pb_pipedef__parser *p, size_t i);
void pb_pipedef__pop(pb_pipedef__parser *p, size_t mark);
const char *pb_pipedef__path(const pb_pipedef__parser *p); /* "" at the root */

/* Copies s[0..n) into dst[cap] for a message: control bytes become '?', a
 * long string is cut (on a UTF-8 boundary) and ends with "...". */
void pb_pipedef__show(char *dst, size_t cap, const char *s, size_t n);

/* Characters (UTF-8 code points) in s[0..n). */
size_t pb_pipedef__chars(const char *s, size_t n);

/* s[0..n) matches ^[A-Za-z0-9\-_]{1,max}$. */
bool pb_pipedef__name_ok(const char *s, size_t n, size_t max);

/* PB_EVALIDATION with a printf-style message. */
int pb_pipedef__fail(pb_pipedef__parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "Unable to parse pipeline definition. Expecting <want>. Found <what v is>
 * at '<path>'." for a value of the wrong JSON kind. */
int pb_pipedef__kind(pb_pipedef__parser *p, const pb_json *v, pb_json_type want);

/* Refuses members of obj that are not in allowed (NULL-terminated) and
 * duplicated members; what names the object in the message. */
int pb_pipedef__check_fields(pb_pipedef__parser *p, const pb_json *obj, const char *const *allowed, const char *what);

/* A description of a JSON value's kind for messages: "a JSON object", ... */
const char *pb_pipedef__kind_name(const pb_json *v);

/* True if v is an expression object: it has a member "Get" or "Std:...". */
bool pb_pipedef__is_expr(const pb_json *v);

/* Validates every expression inside v (recursively) at the current path,
 * recording referenced steps in p->refs when p->cur is set; Steps references
 * are refused when p->cur is NULL (PipelineExperimentConfig). */
int pb_pipedef__scan(pb_pipedef__parser *p, const pb_json *v);

/* Validates one operand of a condition or Join: a scalar literal or an
 * expression (objects and arrays that are not expressions are refused). */
int pb_pipedef__scan_operand(pb_pipedef__parser *p, const pb_json *v, const char *what);

/* Parses the Conditions of the Condition step p->cur (pipedef_cond.c). */
int pb_pipedef__parse_conditions(pb_pipedef__parser *p, const pb_json *arr, pb_pipedef_step *step);

/* A JSON number's text is an integer (no fraction, no exponent) that fits in
 * int64: *out is set. */
bool pb_pipedef__int_text(const char *s, size_t n, int64_t *out);

/* The text form of v (see pb_pipedef_value) into *out; the value kinds below
 * are built in arena. */
int pb_pipedef__from_json(const pb_json *v, pb_arena *arena, pb_pipedef_value *out, pb_error *err);

/* The state of one evaluation: the budget of bytes it may produce. */
typedef struct pb_pipedef__eval {
    const pb_pipedef *def;
    const pb_pipedef_ctx *ctx;
    pb_arena *arena;
    pb_error *err;
    size_t used; /* bytes produced so far, capped by PB_PIPEDEF_MAX_RESOLVED_BYTES */
} pb_pipedef__eval;

/* Evaluates a literal or expression v (see pb_pipedef_eval). */
int pb_pipedef__eval_value(pb_pipedef__eval *e, const pb_json *v, pb_pipedef_value *out);

/* Equality and ordering of two values; *cmp < 0, 0, > 0. Returns 0, or
 * PB_EVALIDATION when the kinds cannot be ordered (ordering) -- equality of
 * different kinds is simply false (*eq). */
bool pb_pipedef__equal(const pb_pipedef_value *a, const pb_pipedef_value *b);
int pb_pipedef__compare(const pb_pipedef_value *a, const pb_pipedef_value *b, int *cmp, pb_error *err);

/* A string value in arena. */
int pb_pipedef__string_value(pb_arena *arena, const char *s, size_t n, pb_pipedef_value *out);

/* Names a value's kind for messages: "String", "Integer", "Float", "Boolean",
 * "null", "a JSON structure". */
const char *pb_pipedef__vkind_name(pb_pipedef_vkind k);

#endif
