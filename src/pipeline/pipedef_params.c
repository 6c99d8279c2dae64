/*
 * pipedef_params.c — PipelineParameters of StartPipelineExecution (§6.4).
 *
 * Values arrive as strings and are converted to the declared Type. The
 * messages are those of the SageMaker Python SDK's local mode, which the spec
 * records as imitating the service, except for the empty string, where the
 * spec records the real service's text. Our own cases (a value outside
 * EnumValues, a name given twice, an Integer out of range) use the same
 * style.
 */
#include "pipedef_internal.h"

#include "json/pb_number.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_bool_text(const char *s, size_t n, bool *b)
{
    if (n == 4 && !strncasecmp(s, "true", 4)) {
        *b = true;
        return true;
    }
    if (n == 5 && !strncasecmp(s, "false", 5)) {
        *b = false;
        return true;
    }
    return false;
}

/* Decimal integer text: an optional '-' and digits (range not checked). */
static bool is_int_text(const char *s, size_t n)
{
    size_t i = n && s[0] == '-';
    if (i >= n)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_number_text(const char *s, size_t n) { return n && pb_number_scan(s, n) == n; }

/* What a value looks like, for "... but found <type>." */
static const char *apparent_type(const char *s, size_t n)
{
    bool b;
    if (is_bool_text(s, n, &b))
        return "Boolean";
    if (is_int_text(s, n))
        return "Integer";
    if (is_number_text(s, n))
        return "Float";
    return "String";
}

static int convert(const pb_pipedef_param *pm, const char *s, size_t n, pb_arena *arena, pb_pipedef_value *out,
                   pb_error *err)
{
    char shown[80];
    pb_pipedef__show(shown, sizeof shown, s, n);
    int rc = pb_pipedef__string_value(arena, s, n, out); /* the text form is the text given */
    if (rc)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    bool ok = true;
    switch (pm->type) {
    case PB_PIPEDEF_STRING:
        for (size_t i = 0; i < pm->nenum; i++)
            if (strlen(pm->enum_values[i]) == n && !memcmp(pm->enum_values[i], s, n))
                return 0;
        if (pm->nenum) {
            pb_buf b;
            pb_buf_init(&b, 1024);
            for (size_t i = 0; i < pm->nenum && !rc; i++)
                rc = pb_buf_printf(&b, "%s%s", i ? ", " : "", pm->enum_values[i]);
            rc = pb_error_set(err, PB_EVALIDATION, "Value '%s' of parameter '%s' is not one of its EnumValues: [%s%s].",
                              shown, pm->name, b.data ? b.data : "", rc ? ", ..." : "");
            pb_buf_free(&b);
            return rc;
        }
        return 0;
    case PB_PIPEDEF_INTEGER:
        ok = is_int_text(s, n);
        if (ok && !pb_pipedef__int_text(s, n, &out->i))
            return pb_error_set(err, PB_EVALIDATION,
                                "Value '%s' of parameter '%s' is out of range for an Integer "
                                "(-9223372036854775808 to 9223372036854775807).",
                                shown, pm->name);
        out->kind = PB_PIPEDEF_VINTEGER;
        out->f = (double)out->i;
        break;
    case PB_PIPEDEF_FLOAT:
        ok = is_number_text(s, n) && pb_number_parse(s, n, &out->f) == 0;
        if (ok && !isfinite(out->f))
            return pb_error_set(err, PB_EVALIDATION, "Value '%s' of parameter '%s' is out of range for a Float.",
                                shown, pm->name);
        out->kind = PB_PIPEDEF_VFLOAT;
        break;
    case PB_PIPEDEF_BOOLEAN:
        ok = is_bool_text(s, n, &out->b);
        out->kind = PB_PIPEDEF_VBOOLEAN;
        break;
    }
    if (!ok)
        return pb_error_set(err, PB_EVALIDATION, "Unexpected type for parameter '%s'. Expected %s but found %s.",
                            pm->name, pb_pipedef_type_name(pm->type), apparent_type(s, n));
    return 0;
}

int pb_pipedef_bind(const pb_pipedef *def, const pb_pipedef_kv *given, size_t ngiven, pb_arena *arena,
                    pb_pipedef_args *out, pb_error *err)
{
    memset(out, 0, sizeof *out);
    if (ngiven > PB_PIPEDEF_MAX_START_PARAMS)
        return pb_error_set(err, PB_EVALIDATION,
                            "1 validation error detected: Value at 'pipelineParameters' failed to satisfy "
                            "constraint: Member must have length less than or equal to %d",
                            PB_PIPEDEF_MAX_START_PARAMS);
    size_t n = def->nparams;
    pb_pipedef_value *values = pb_arena_zalloc(arena, (n ? n : 1) * sizeof *values);
    bool *from_default = pb_arena_zalloc(arena, (n ? n : 1) * sizeof *from_default);
    bool *seen = pb_arena_zalloc(arena, (n ? n : 1) * sizeof *seen);
    if (!values || !from_default || !seen)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < ngiven; i++) {
        const pb_pipedef_kv *kv = &given[i];
        char shown[300];
        pb_pipedef__show(shown, sizeof shown, kv->name, kv->name_len);
        size_t k = pb_pipedef_find_param(def, kv->name, kv->name_len);
        if (k == PB_PIPEDEF_NONE)
            return pb_error_set(err, PB_EVALIDATION, "Unknown parameter '%s'", shown);
        if (seen[k])
            return pb_error_set(err, PB_EVALIDATION, "Parameter '%s' is given more than once.", shown);
        seen[k] = true;
        if (kv->value_len == 0)
            return pb_error_set(err, PB_EVALIDATION, "[string \"\" is too short (length: 0, required minimum: 1)]");
        size_t chars = pb_pipedef__chars(kv->value, kv->value_len);
        if (chars > PB_PIPEDEF_MAX_PARAM_VALUE)
            return pb_error_set(err, PB_EVALIDATION,
                                "Parameter '%s' value is too long (length: %zu, required maximum: %d).", shown, chars,
                                PB_PIPEDEF_MAX_PARAM_VALUE);
        int rc = convert(&def->params[k], kv->value, kv->value_len, arena, &values[k], err);
        if (rc)
            return rc;
    }
    for (size_t k = 0; k < n; k++) {
        if (seen[k])
            continue;
        const pb_pipedef_param *pm = &def->params[k];
        if (!pm->has_default)
            return pb_error_set(err, PB_EVALIDATION, "Parameter '%s' is undefined.", pm->name);
        values[k] = pm->def_value;
        if (!(values[k].str = pb_arena_strndup(arena, pm->def_value.str, pm->def_value.len)))
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        from_default[k] = true;
    }
    out->n = n;
    out->values = values;
    out->from_default = from_default;
    return 0;
}
