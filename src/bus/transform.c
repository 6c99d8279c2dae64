/*
 * transform.c — target payloads (Input, InputPath, InputTransformer) and
 * SageMaker pipeline parameters. See pb_transform.h for the rules; the table
 * of substitutions observed on AWS is in AWS-SPEC §2.4 and each row is a case
 * in tests/unit/test_transform.c.
 *
 * The template is read once by a scanner that tracks the template's own JSON
 * strings (a `"` opens one, `\x` inside is skipped) and reports each
 * <placeholder> with where it stands: outside strings, alone in a string, or
 * in a string with other text. The same scanner serves PutTargets' check of
 * placeholder names, so the check and the substitution see the same
 * placeholders.
 */
#include "bus/pb_transform.h"

#include "bus/pb_jsonpath.h"
#include "common/pb_arena.h"
#include "json/pb_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESULT_MAX_DEPTH 2100 /* nesting a transformed JSON payload may have (events: jansson's 2048) */

static const char *const predefined[] = {"aws.events.rule-arn", "aws.events.rule-name",
                                         "aws.events.event.ingestion-time", "aws.events.event",
                                         "aws.events.event.json", NULL};

/* ------------------------------------------------------------ writing JSON */

/* Shortest %.Ng (15..17) that reads back as d, with ".0" when that looks
 * like an integer (a real stays a real when read again, as jansson does). */
static int write_real(pb_buf *b, double d)
{
    char s[48];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, d);
        if (strtod(s, NULL) == d)
            break;
    }
    if (!strpbrk(s, ".eE"))
        strcat(s, ".0");
    return pb_buf_puts(b, s);
}

/* v as compact JSON; quoteless drops the quotes of every string and key (the
 * rendering of an object or array inside a template's string). */
static int write_value(pb_buf *b, json_t *v, bool quoteless)
{
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_NULL: return pb_buf_puts(b, "null");
    case JSON_TRUE: return pb_buf_puts(b, "true");
    case JSON_FALSE: return pb_buf_puts(b, "false");
    case JSON_INTEGER: return pb_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return write_real(b, json_real_value(v));
    case JSON_STRING:
        if (quoteless)
            return pb_buf_append(b, json_string_value(v), json_string_length(v));
        return pb_json_write_string(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY:
        rc = pb_buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
            if (i)
                rc = pb_buf_putc(b, ',');
            if (!rc)
                rc = write_value(b, json_array_get(v, i), quoteless);
        }
        return rc ? rc : pb_buf_putc(b, ']');
    case JSON_OBJECT: {
        rc = pb_buf_putc(b, '{');
        bool first = true;
        for (void *it = json_object_iter(v); it && !rc; it = json_object_iter_next(v, it)) {
            const char *k = json_object_iter_key(it);
            size_t kl = json_object_iter_key_len(it);
            if (!first)
                rc = pb_buf_putc(b, ',');
            first = false;
            if (!rc)
                rc = quoteless ? pb_buf_append(b, k, kl) : pb_json_write_string(b, k, kl);
            if (!rc)
                rc = pb_buf_putc(b, ':');
            if (!rc)
                rc = write_value(b, json_object_iter_value(it), quoteless);
        }
        return rc ? rc : pb_buf_putc(b, '}');
    }
    }
    return PB_EINTERNAL;
}

int pb_transform_write_json(pb_buf *b, json_t *v) { return write_value(b, v, false); }

/* --------------------------------------------------------------- scanning */

typedef enum ph_where {
    PH_BARE,   /* outside the template's strings */
    PH_WHOLE,  /* the whole content of a string: "<v>" */
    PH_INSIDE, /* in a string with other text: "a <v> b" */
} ph_where;

typedef struct scanner {
    const char *t;   /* the template */
    size_t n;        /* its length */
    size_t i;        /* where scanning resumes */
    bool in_str;     /* inside one of the template's JSON strings */
    size_t str_open; /* index of that string's opening quote */
} scanner;

static bool ph_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

/* The next placeholder from s->i: the literal text before it is
 * t[*lit, *lit_end); name/nlen/where describe it and s->i moves past its
 * `>`. Returns false at the end of the template (t[*lit, *lit_end) is the
 * rest). */
static bool scan_next(scanner *s, size_t *lit, size_t *lit_end, const char **name, size_t *nlen, ph_where *where)
{
    *lit = s->i;
    while (s->i < s->n) {
        size_t i = s->i;
        char c = s->t[i];
        if (s->in_str && c == '\\') {
            s->i += i + 1 < s->n ? 2 : 1;
            continue;
        }
        if (c == '"') {
            s->in_str = !s->in_str;
            s->str_open = i;
            s->i++;
            continue;
        }
        if (c == '<') {
            size_t j = i + 1;
            while (j < s->n && ph_char(s->t[j]))
                j++;
            if (j < s->n && s->t[j] == '>' && j > i + 1) {
                *lit_end = i;
                *name = s->t + i + 1;
                *nlen = j - i - 1;
                if (!s->in_str)
                    *where = PH_BARE;
                else if (s->str_open + 1 == i && j + 1 < s->n && s->t[j + 1] == '"')
                    *where = PH_WHOLE;
                else
                    *where = PH_INSIDE;
                s->i = j + 1;
                return true;
            }
        }
        s->i++;
    }
    *lit_end = s->n;
    return false;
}

static bool is_predefined(const char *name, size_t n)
{
    for (size_t k = 0; predefined[k]; k++)
        if (strlen(predefined[k]) == n && !memcmp(predefined[k], name, n))
            return true;
    return false;
}

bool pb_transform_bad_placeholder(const char *tmpl, json_t *map, char *name, size_t cap)
{
    scanner s = {.t = tmpl, .n = strlen(tmpl)};
    size_t lit, lit_end, nlen;
    const char *nm;
    ph_where where;
    while (scan_next(&s, &lit, &lit_end, &nm, &nlen, &where)) {
        if (is_predefined(nm, nlen) || (json_is_object(map) && json_object_getn(map, nm, nlen)))
            continue;
        if (cap) {
            size_t k = nlen < cap - 1 ? nlen : cap - 1;
            memcpy(name, nm, k);
            name[k] = '\0';
        }
        return true;
    }
    return false;
}

/* ----------------------------------------------------------- substitution */

/* The event without its detail (a new reference; NULL when out of memory).
 * Not json_copy, which leaves members out when an allocation fails. */
static json_t *without_detail(json_t *event)
{
    if (!json_is_object(event))
        return json_incref(event);
    json_t *o = json_object();
    for (void *it = json_object_iter(event); o && it; it = json_object_iter_next(event, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        if (kl == 6 && !memcmp(k, "detail", 6))
            continue;
        if (json_object_setn_nocheck(o, k, kl, json_object_iter_value(it))) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* Variables of one transformation: name -> value, for the map's paths that
 * found something and the predefined ones. A map key absent from vars is a
 * variable whose path found nothing (the empty string). */
static int build_vars(json_t *map, json_t *event, const pb_transform_ctx *ctx, json_t **out, pb_error *err)
{
    json_t *vars = json_object();
    if (!vars)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    int rc = 0;
    const char *k;
    json_t *path;
    json_object_foreach(map, k, path)
    {
        if (!json_is_string(path)) {
            rc = pb_error_set(err, PB_EVALIDATION, "InputPathsMap value of %s is not a string", k);
            goto out;
        }
        json_t *v;
        if ((rc = pb_jsonpath_eval(event, json_string_value(path), &v, err)))
            goto out;
        if (v && json_object_set_new(vars, k, v)) {
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
            goto out;
        }
    }
    char when[80] = "";
    if (ctx) {
        int64_t ms = ctx->ingested_ms > 0 ? ctx->ingested_ms : 0;
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        if (gmtime_r(&sec, &tm))
            snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    }
    const char *arn = ctx && ctx->rule_arn ? ctx->rule_arn : "";
    const char *name = ctx && ctx->rule_name ? ctx->rule_name : "";
    json_t *plain = without_detail(event);
    bool bad = event && !plain;
    if (plain) /* set_new takes plain even when it fails */
        bad = json_object_set_new(vars, "aws.events.event", plain) || bad;
    bad = bad || json_object_set_new(vars, "aws.events.rule-arn", json_stringn_nocheck(arn, strlen(arn))) ||
          json_object_set_new(vars, "aws.events.rule-name", json_stringn_nocheck(name, strlen(name))) ||
          json_object_set_new(vars, "aws.events.event.ingestion-time", json_string(when)) ||
          (event && json_object_set(vars, "aws.events.event.json", event));
    if (bad)
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
out:
    if (rc)
        json_decref(vars);
    else
        *out = vars;
    return rc;
}

/* One placeholder's value, written as `where` and the template's kind ask. */
static int render(pb_buf *b, json_t *v, ph_where where, bool json_template)
{
    if (!v || json_is_string(v)) {
        const char *s = v ? json_string_value(v) : "";
        size_t n = v ? json_string_length(v) : 0;
        if (where == PH_BARE && json_template) {
            int rc = pb_buf_putc(b, '"');
            if (!rc)
                rc = pb_buf_append(b, s, n);
            return rc ? rc : pb_buf_putc(b, '"');
        }
        return pb_buf_append(b, s, n);
    }
    return write_value(b, v, where == PH_INSIDE);
}

/* Removes blanks outside strings from valid JSON text, in place. */
static size_t minify(char *s, size_t n)
{
    size_t w = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < n) {
                s[w++] = c;
                c = s[++i];
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        s[w++] = c;
    }
    s[w] = '\0'; /* s holds n + 1 bytes (a pb_buf's data) */
    return w;
}

/* Gives a buffer's error its message: the cap is PB_TRANSFORM_MAX_PAYLOAD. */
static int bufrc(int rc, pb_error *err)
{
    if (rc == PB_EVALIDATION)
        return pb_error_set(err, rc, "the target's input would exceed %d bytes", PB_TRANSFORM_MAX_PAYLOAD);
    if (rc)
        return pb_error_set(err, rc, "out of memory");
    return 0;
}

static void not_invoked_because(pb_error *err, const char *fmt, const char *what)
{
    if (err) {
        err->code = PB_EVALIDATION;
        snprintf(err->message, sizeof err->message, fmt, what);
    }
}

static int transformer(pb_buf *b, json_t *it, json_t *event, const pb_transform_ctx *ctx, bool *not_invoked,
                       pb_error *err)
{
    json_t *tj = json_object_get(it, "InputTemplate");
    json_t *map = json_object_get(it, "InputPathsMap");
    if (!json_is_object(it) || !json_is_string(tj) || (map && !json_is_object(map)))
        return pb_error_set(err, PB_EVALIDATION, "InputTransformer needs an InputTemplate string and an "
                                                 "InputPathsMap object");
    json_t *vars = NULL;
    int rc = build_vars(map, event, ctx, &vars, err);
    if (rc)
        return rc;
    scanner s = {.t = json_string_value(tj), .n = json_string_length(tj)};
    size_t k = 0;
    while (k < s.n && (s.t[k] == ' ' || s.t[k] == '\t' || s.t[k] == '\n' || s.t[k] == '\r'))
        k++;
    bool json_template = k < s.n && (s.t[k] == '{' || s.t[k] == '[');
    size_t lit, lit_end, nlen;
    const char *nm;
    ph_where where;
    for (;;) {
        bool more = scan_next(&s, &lit, &lit_end, &nm, &nlen, &where);
        if ((rc = bufrc(pb_buf_append(b, s.t + lit, lit_end - lit), err)) || !more)
            break;
        bool known = is_predefined(nm, nlen) || (map && json_object_getn(map, nm, nlen));
        if (!known)
            rc = pb_buf_append(b, nm - 1, nlen + 2); /* left as it is */
        else
            rc = render(b, json_object_getn(vars, nm, nlen), where, json_template);
        if ((rc = bufrc(rc, err)))
            break;
    }
    json_decref(vars);
    if (rc || !json_template || !b->data)
        return rc;
    pb_arena arena;
    pb_arena_init(&arena);
    pb_json *doc;
    pb_error perr;
    pb_json_limits lim = {.max_bytes = 0, .max_depth = RESULT_MAX_DEPTH};
    rc = pb_json_parse(b->data, b->len, &lim, &arena, &doc, &perr);
    pb_arena_free(&arena);
    if (rc == PB_EVALIDATION) {
        not_invoked_because(err, "InputTemplate did not give valid JSON: %.1900s", perr.message);
        *not_invoked = true;
        return 0;
    }
    if (rc)
        return pb_error_set(err, rc, "out of memory");
    b->len = minify(b->data, b->len);
    return 0;
}

int pb_transform_payload(json_t *target, json_t *event, const pb_transform_ctx *ctx, char **out, size_t *len,
                         bool *not_invoked, pb_error *err)
{
    *out = NULL;
    *not_invoked = false;
    if (len)
        *len = 0;
    if (!json_is_object(target))
        return pb_error_set(err, PB_EVALIDATION, "target is not an object");
    json_t *input = json_object_get(target, "Input");
    json_t *ipath = json_object_get(target, "InputPath");
    json_t *it = json_object_get(target, "InputTransformer");
    if ((input != NULL) + (ipath != NULL) + (it != NULL) > 1)
        return pb_error_set(err, PB_EVALIDATION, "Only one of Input, InputPath, or InputTransformer must be "
                                                 "provided for target.");
    pb_buf b;
    pb_buf_init(&b, PB_TRANSFORM_MAX_PAYLOAD);
    int rc = 0;
    if (input) {
        if (!json_is_string(input))
            rc = pb_error_set(err, PB_EVALIDATION, "Input is not a string");
        else
            rc = bufrc(pb_buf_append(&b, json_string_value(input), json_string_length(input)), err);
    } else if (ipath) {
        json_t *v = NULL;
        if (!json_is_string(ipath))
            rc = pb_error_set(err, PB_EVALIDATION, "InputPath is not a string");
        else
            rc = pb_jsonpath_eval(event, json_string_value(ipath), &v, err);
        if (!rc && !v) {
            not_invoked_because(err, "InputPath %.1900s found nothing in the event", json_string_value(ipath));
            *not_invoked = true;
        } else if (!rc) {
            rc = bufrc(write_value(&b, v, false), err);
        }
        json_decref(v);
    } else if (it) {
        rc = transformer(&b, it, event, ctx, not_invoked, err);
    } else if (event) {
        rc = bufrc(write_value(&b, event, false), err);
    } else {
        rc = pb_error_set(err, PB_EVALIDATION, "no event");
    }
    if (!rc && !*not_invoked) {
        if (len)
            *len = b.len;
        *out = pb_buf_steal(&b);
        if (!*out)
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    pb_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------ pipeline parameters */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The value of one parameter: a static value, or what its path finds. */
static int param_value(json_t *event, const char *name, json_t *value, json_t **out, pb_error *err)
{
    const char *v = json_string_value(value);
    bool is_path = pb_jsonpath_valid(v);
    *out = NULL;
    if (!is_path) {
        *out = json_incref(value);
    } else {
        json_t *found = NULL;
        int rc = pb_jsonpath_eval(event, v, &found, err);
        if (rc)
            return rc;
        if (!found)
            return pb_error_set(err, PB_EVALIDATION,
                                "Pipeline parameter %s: the path %s found nothing in the event", name, v);
        if (json_is_string(found)) {
            *out = found;
        } else {
            pb_buf b;
            pb_buf_init(&b, 4 * PB_TRANSFORM_MAX_PARAM + 4); /* longer is too long anyway */
            rc = write_value(&b, found, false);
            json_decref(found);
            if (!rc)
                *out = json_stringn_nocheck(b.data, b.len);
            pb_buf_free(&b);
            if (rc == PB_ENOMEM || (!rc && !*out))
                return pb_error_set(err, PB_ENOMEM, "out of memory");
        }
    }
    if (!*out || utf8_chars(json_string_value(*out), json_string_length(*out)) > PB_TRANSFORM_MAX_PARAM) {
        json_decref(*out);
        *out = NULL;
        if (is_path)
            return pb_error_set(err, PB_EVALIDATION,
                                "Pipeline parameter %s: the value at %s is longer than %d characters", name, v,
                                PB_TRANSFORM_MAX_PARAM);
        return pb_error_set(err, PB_EVALIDATION, "Pipeline parameter %s: the value is longer than %d characters",
                            name, PB_TRANSFORM_MAX_PARAM);
    }
    return 0;
}

int pb_transform_sagemaker_params(json_t *target, json_t *event, json_t **params, pb_error *err)
{
    *params = NULL;
    json_t *smp = json_is_object(target) ? json_object_get(target, "SageMakerPipelineParameters") : NULL;
    json_t *list = json_is_object(smp) ? json_object_get(smp, "PipelineParameterList") : NULL;
    if ((smp && !json_is_object(smp)) || (list && !json_is_array(list)))
        return pb_error_set(err, PB_EVALIDATION, "SageMakerPipelineParameters.PipelineParameterList is not a list");
    json_t *arr = json_array();
    if (!arr)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
        json_t *e = json_array_get(list, i);
        json_t *name = json_object_get(e, "Name");
        json_t *value = json_object_get(e, "Value");
        if (!json_is_string(name) || !json_is_string(value)) {
            rc = pb_error_set(err, PB_EVALIDATION, "pipeline parameter %zu needs a Name and a Value string", i + 1);
            break;
        }
        json_t *v = NULL;
        if ((rc = param_value(event, json_string_value(name), value, &v, err)))
            break;
        json_t *p = json_object();
        int bad = !p || json_object_set(p, "Name", name) || json_object_set(p, "Value", v) ||
                  json_array_append(arr, p);
        json_decref(p);
        json_decref(v);
        if (bad)
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    if (rc)
        json_decref(arr);
    else
        *params = arr;
    return rc;
}
