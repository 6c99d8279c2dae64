/*
 * pipedef.c — parsing and validating a SageMaker pipeline definition.
 *
 * pb_pipedef_parse works in four passes over the JSON DOM (pb_json, which
 * keeps member order and duplicates, so a duplicated field is seen and
 * refused rather than silently dropped):
 *
 *   1. the top level: Version, Metadata, Parameters, PipelineExperimentConfig,
 *      and a count of the steps (IfSteps / ElseSteps included), capped before
 *      the step array is allocated;
 *   2. every step's own fields, depth first in definition order, so a
 *      Condition step gets a smaller index than the steps of its branches;
 *   3. with every name known: DependsOn, the expressions of each step (which
 *      give its data dependencies), the conditions of Condition steps;
 *   4. the cycle check over "waits for" edges: DependsOn, data references,
 *      and Condition step -> the steps of its branches.
 *
 * Messages: malformed JSON and values of the wrong JSON kind start with the
 * one real AWS text the spec records ("Unable to parse pipeline definition.
 * Expecting start of Json Array."), the cycle message with the SageMaker
 * SDK's ("Cycle detected in pipeline step graph."); the rest are ours, in the
 * same plain style, and name the field by its JSON path or the step by name.
 */
#include "pipedef_internal.h"

#include "json/pb_number.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- names -- */

const char *pb_pipedef_type_name(pb_pipedef_type t)
{
    switch (t) {
    case PB_PIPEDEF_STRING: return "String";
    case PB_PIPEDEF_INTEGER: return "Integer";
    case PB_PIPEDEF_FLOAT: return "Float";
    case PB_PIPEDEF_BOOLEAN: return "Boolean";
    }
    return "?";
}

const char *pb_pipedef_step_type_name(pb_pipedef_step_type t)
{
    switch (t) {
    case PB_PIPEDEF_PROCESSING: return "Processing";
    case PB_PIPEDEF_TRAINING: return "Training";
    case PB_PIPEDEF_CONDITION: return "Condition";
    case PB_PIPEDEF_FAIL: return "Fail";
    }
    return "?";
}

/* Step types of §6.3 that pipebridge knows but does not run. */
static const char *const unsupported_types[] = {
    "Transform", "Model", "RegisterModel", "Callback", "Lambda", "Tuning", "QualityCheck", "ClarifyCheck",
    "EMR", "AutoML", "Endpoint", "EndpointConfig", NULL,
};

/* --------------------------------------------------- paths and messages -- */

static bool plain_key(const char *k, size_t n)
{
    if (!n || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == ':'))
            return false;
    }
    return true;
}

/* Appends to the path; a path that does not fit ends with "..." (the last
 * 4 bytes are kept for it), and pop() takes that away again. */
static void path_append(pb_pipedef__parser *p, const char *s, size_t n)
{
    if (p->plen + n >= sizeof p->path - 4) {
        if (p->plen < 3 || memcmp(p->path + p->plen - 3, "...", 3)) {
            memcpy(p->path + p->plen, "...", 4);
            p->plen += 3;
        }
        return;
    }
    memcpy(p->path + p->plen, s, n);
    p->plen += n;
    p->path[p->plen] = '\0';
}

size_t pb_pipedef__push_key(pb_pipedef__parser *p, const char *key)
{
    size_t mark = p->plen;
    size_t n = strlen(key);
    if (plain_key(key, n)) {
        if (p->plen)
            path_append(p, ".", 1);
        path_append(p, key, n);
    } else {
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, key, n);
        char buf[96];
        int w = snprintf(buf, sizeof buf, "['%s']", shown);
        path_append(p, buf, (size_t)w);
    }
    return mark;
}

size_t pb_pipedef__push_index(pb_pipedef__parser *p, size_t i)
{
    size_t mark = p->plen;
    char buf[32];
    int w = snprintf(buf, sizeof buf, "[%zu]", i);
    path_append(p, buf, (size_t)w);
    return mark;
}

void pb_pipedef__pop(pb_pipedef__parser *p, size_t mark)
{
    p->plen = mark;
    p->path[mark] = '\0';
}

const char *pb_pipedef__path(const pb_pipedef__parser *p) { return p->path; }

void pb_pipedef__show(char *dst, size_t cap, const char *s, size_t n)
{
    size_t w = 0, limit = cap > 4 ? cap - 4 : 0;
    size_t i = 0;
    for (; i < n && w < limit; i++)
        dst[w++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (i < n && cap >= 4) {
        /* do not cut a UTF-8 sequence in half */
        while (w > 0 && ((unsigned char)dst[w - 1] & 0xC0) == 0x80)
            w--;
        if (w > 0 && (unsigned char)dst[w - 1] >= 0xC0)
            w--;
        memcpy(dst + w, "...", 3);
        w += 3;
    }
    if (cap)
        dst[w < cap ? w : cap - 1] = '\0';
}

int pb_pipedef__fail(pb_pipedef__parser *p, const char *fmt, ...)
{
    if (!p->err)
        return PB_EVALIDATION;
    char msg[PB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pb_error_set(p->err, PB_EVALIDATION, "%s", msg);
}

const char *pb_pipedef__kind_name(const pb_json *v)
{
    if (!v)
        return "nothing";
    switch (v->type) {
    case PB_JSON_NULL: return "null";
    case PB_JSON_TRUE:
    case PB_JSON_FALSE: return "a JSON boolean";
    case PB_JSON_NUMBER: return "a JSON number";
    case PB_JSON_STRING: return "a JSON string";
    case PB_JSON_ARRAY: return "a JSON array";
    case PB_JSON_OBJECT: return pb_pipedef__is_expr(v) ? "an expression" : "a JSON object";
    }
    return "?";
}

int pb_pipedef__kind(pb_pipedef__parser *p, const pb_json *v, pb_json_type want)
{
    const char *w = want == PB_JSON_ARRAY    ? "start of Json Array"
                    : want == PB_JSON_OBJECT ? "start of Json Object"
                    : want == PB_JSON_STRING ? "Json String"
                    : want == PB_JSON_NUMBER ? "Json Number"
                                             : "Json Boolean";
    if (!p->plen)
        return pb_pipedef__fail(p, "Unable to parse pipeline definition. Expecting %s. Found %s at the top level.",
                                w, pb_pipedef__kind_name(v));
    return pb_pipedef__fail(p, "Unable to parse pipeline definition. Expecting %s. Found %s at '%s'.", w,
                            pb_pipedef__kind_name(v), p->path);
}

/* ------------------------------------------------------- small helpers -- */

/* The member key of obj, or NULL when it is absent or JSON null. */
static const pb_json *opt(const pb_json *obj, const char *key)
{
    const pb_json *v = pb_json_get(obj, key);
    return v && v->type != PB_JSON_NULL ? v : NULL;
}

static bool key_is(const pb_json_member *m, const char *key)
{
    size_t n = strlen(key);
    return m->keylen == n && memcmp(m->key, key, n) == 0;
}

/* Refuses members of obj not in allowed (NULL-terminated) and duplicates. */
int pb_pipedef__check_fields(pb_pipedef__parser *p, const pb_json *obj, const char *const *allowed, const char *what)
{
    for (size_t i = 0; i < obj->n; i++) {
        const pb_json_member *m = &obj->members[i];
        char shown[80];
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = key_is(m, *a);
        if (!known) {
            pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
            if (!p->plen)
                return pb_pipedef__fail(p, "Unknown field '%s' in %s.", shown, what);
            return pb_pipedef__fail(p, "Unknown field '%s' in %s at '%s'.", shown, what, p->path);
        }
        for (size_t j = 0; j < i; j++)
            if (obj->members[j].keylen == m->keylen && !memcmp(obj->members[j].key, m->key, m->keylen)) {
                pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
                if (!p->plen)
                    return pb_pipedef__fail(p, "Duplicate field '%s' in %s.", shown, what);
                return pb_pipedef__fail(p, "Duplicate field '%s' in %s at '%s'.", shown, what, p->path);
            }
    }
    return 0;
}

/* Characters (UTF-8 code points) in s[0..n). */
size_t pb_pipedef__chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* s matches ^[A-Za-z0-9\-_]{1,max}$ */
bool pb_pipedef__name_ok(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool pb_pipedef__int_text(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= n)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

/* A string member, copied into the definition's arena (NULL when absent). */
static int get_string(pb_pipedef__parser *p, const pb_json *obj, const char *key, bool required, size_t max_chars,
                      const char **out, const char *what)
{
    *out = NULL;
    const pb_json *v = opt(obj, key);
    size_t mark = pb_pipedef__push_key(p, key);
    int rc = 0;
    if (!v) {
        if (required)
            rc = pb_pipedef__fail(p, "%s has no %s (at '%s').", what, key, p->path);
    } else if (v->type != PB_JSON_STRING) {
        rc = pb_pipedef__kind(p, v, PB_JSON_STRING);
    } else if (memchr(v->str, '\0', v->len)) {
        rc = pb_pipedef__fail(p, "%s at '%s' contains a NUL character.", key, p->path);
    } else if (max_chars && pb_pipedef__chars(v->str, v->len) > max_chars) {
        rc = pb_pipedef__fail(p, "%s at '%s' is longer than %zu characters.", key, p->path, max_chars);
    } else if (!(*out = pb_arena_strndup(&p->def->arena, v->str, v->len))) {
        rc = PB_ENOMEM;
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

/* ------------------------------------------------------------ top level -- */

static int parse_metadata(pb_pipedef__parser *p, const pb_json *md)
{
    if (md->type != PB_JSON_OBJECT)
        return pb_pipedef__kind(p, md, PB_JSON_OBJECT);
    for (size_t i = 0; i < md->n; i++) {
        const pb_json_member *m = &md->members[i];
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
        if (!pb_pipedef__name_ok(m->key, m->keylen, 128))
            return pb_pipedef__fail(p, "Metadata key '%s' is not valid: keys must match ^[A-Za-z0-9\\-_]{1,128}$.",
                                    shown);
        size_t mark = pb_pipedef__push_key(p, m->key);
        int rc = 0;
        if (m->value->type != PB_JSON_STRING)
            rc = pb_pipedef__kind(p, m->value, PB_JSON_STRING);
        else if (pb_pipedef__chars(m->value->str, m->value->len) > 1024)
            rc = pb_pipedef__fail(p, "Metadata value at '%s' is longer than 1024 characters.", p->path);
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_type(pb_pipedef__parser *p, const pb_json *t, const char *name, pb_pipedef_type *out)
{
    static const struct {
        const char *s;
        pb_pipedef_type t;
    } types[] = {{"String", PB_PIPEDEF_STRING},
                 {"Integer", PB_PIPEDEF_INTEGER},
                 {"Float", PB_PIPEDEF_FLOAT},
                 {"Boolean", PB_PIPEDEF_BOOLEAN}};
    *out = PB_PIPEDEF_STRING;
    if (!t)
        return 0; /* §6.3: a parameter without Type is a String */
    size_t mark = pb_pipedef__push_key(p, "Type");
    int rc = t->type == PB_JSON_STRING ? 0 : pb_pipedef__kind(p, t, PB_JSON_STRING);
    pb_pipedef__pop(p, mark);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (t->len == strlen(types[i].s) && !memcmp(t->str, types[i].s, t->len)) {
            *out = types[i].t;
            return 0;
        }
    char shown[80];
    pb_pipedef__show(shown, sizeof shown, t->str, t->len);
    return pb_pipedef__fail(p, "Parameter '%s' has Type '%s'; the type must be String, Integer, Float or Boolean.",
                            name, shown);
}

/* DefaultValue, checked against the declared type. */
static int parse_default(pb_pipedef__parser *p, const pb_json *dv, pb_pipedef_param *pm)
{
    bool ok = false;
    switch (pm->type) {
    case PB_PIPEDEF_STRING: ok = dv->type == PB_JSON_STRING; break;
    case PB_PIPEDEF_INTEGER: {
        int64_t i;
        ok = dv->type == PB_JSON_NUMBER && pb_pipedef__int_text(dv->str, dv->len, &i);
        if (dv->type == PB_JSON_NUMBER && !ok) {
            char shown[80];
            pb_pipedef__show(shown, sizeof shown, dv->str, dv->len);
            return pb_pipedef__fail(p,
                                    "DefaultValue %s of parameter '%s' is not an Integer: it must be a whole number "
                                    "between -9223372036854775808 and 9223372036854775807 written without fraction "
                                    "or exponent.",
                                    shown, pm->name);
        }
        break;
    }
    case PB_PIPEDEF_FLOAT: ok = dv->type == PB_JSON_NUMBER; break;
    case PB_PIPEDEF_BOOLEAN: ok = dv->type == PB_JSON_TRUE || dv->type == PB_JSON_FALSE; break;
    }
    if (!ok)
        return pb_pipedef__fail(p, "DefaultValue of parameter '%s' must be of type %s; found %s.", pm->name,
                                pb_pipedef_type_name(pm->type), pb_pipedef__kind_name(dv));
    if (pm->type == PB_PIPEDEF_FLOAT && (dv->num > 1.7976931348623157e308 || dv->num < -1.7976931348623157e308))
        return pb_pipedef__fail(p, "DefaultValue of parameter '%s' is out of the range of a Float.", pm->name);
    int rc = pb_pipedef__from_json(dv, &p->def->arena, &pm->def_value, p->err);
    if (rc)
        return rc;
    if (pm->type == PB_PIPEDEF_FLOAT)
        pm->def_value.kind = PB_PIPEDEF_VFLOAT; /* 6 declared Float is the Float 6 */
    pm->has_default = true;
    return 0;
}

static int parse_enum(pb_pipedef__parser *p, const pb_json *ev, pb_pipedef_param *pm)
{
    if (pm->type != PB_PIPEDEF_STRING)
        return pb_pipedef__fail(p, "Parameter '%s' is of type %s; EnumValues are only allowed on String parameters.",
                                pm->name, pb_pipedef_type_name(pm->type));
    size_t mark = pb_pipedef__push_key(p, "EnumValues");
    int rc = 0;
    if (ev->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, ev, PB_JSON_ARRAY);
    else if (ev->n == 0 || ev->n > PB_PIPEDEF_MAX_ENUM_VALUES)
        rc = pb_pipedef__fail(p, "EnumValues of parameter '%s' must list 1 to %d values; found %zu.", pm->name,
                              PB_PIPEDEF_MAX_ENUM_VALUES, ev->n);
    else if (!(pm->enum_values = pb_arena_alloc(&p->def->arena, ev->n * sizeof *pm->enum_values)))
        rc = PB_ENOMEM;
    for (size_t i = 0; !rc && i < ev->n; i++) {
        size_t m2 = pb_pipedef__push_index(p, i);
        if (ev->items[i]->type != PB_JSON_STRING)
            rc = pb_pipedef__kind(p, ev->items[i], PB_JSON_STRING);
        else if (memchr(ev->items[i]->str, '\0', ev->items[i]->len))
            rc = pb_pipedef__fail(p, "EnumValues of parameter '%s' contain a NUL character.", pm->name);
        else if (!(pm->enum_values[i] = pb_arena_strndup(&p->def->arena, ev->items[i]->str, ev->items[i]->len)))
            rc = PB_ENOMEM;
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    if (rc)
        return rc;
    pm->nenum = ev->n;
    if (pm->has_default) {
        for (size_t i = 0; i < pm->nenum; i++)
            if (strlen(pm->enum_values[i]) == pm->def_value.len &&
                !memcmp(pm->enum_values[i], pm->def_value.str, pm->def_value.len))
                return 0;
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, pm->def_value.str, pm->def_value.len);
        return pb_pipedef__fail(p, "DefaultValue '%s' of parameter '%s' is not one of its EnumValues.", shown,
                                pm->name);
    }
    return 0;
}

static int parse_param(pb_pipedef__parser *p, const pb_json *v, pb_pipedef_param *pm)
{
    static const char *const fields[] = {"Name", "Type", "DefaultValue", "EnumValues", "Description", NULL};
    if (v->type != PB_JSON_OBJECT)
        return pb_pipedef__kind(p, v, PB_JSON_OBJECT);
    int rc = pb_pipedef__check_fields(p, v, fields, "a parameter");
    if (!rc)
        rc = get_string(p, v, "Name", true, 0, &pm->name, "The parameter");
    if (rc)
        return rc;
    if (!pb_pipedef__name_ok(pm->name, strlen(pm->name), 64)) {
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, pm->name, strlen(pm->name));
        return pb_pipedef__fail(p, "Parameter name '%s' at '%s' is not valid: it must match ^[A-Za-z0-9\\-_]{1,64}$.",
                                shown, p->path);
    }
    if ((rc = parse_type(p, opt(v, "Type"), pm->name, &pm->type)))
        return rc;
    const pb_json *dv = opt(v, "DefaultValue");
    if (dv) {
        size_t mark = pb_pipedef__push_key(p, "DefaultValue");
        rc = parse_default(p, dv, pm);
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
    }
    const pb_json *ev = opt(v, "EnumValues");
    if (ev && (rc = parse_enum(p, ev, pm)))
        return rc;
    return get_string(p, v, "Description", false, 4096, &pm->description, "The parameter");
}

/* Sorts indices 0..n-1 by the names in names[] (insertion sort into a
 * merge sort would be overkill: n <= 500). Returns the first duplicate pair
 * through *dup (PB_PIPEDEF_NONE when all unique). */
static size_t *sort_names(pb_arena *a, const char *const *names, size_t n, size_t *dup)
{
    size_t *idx = pb_arena_alloc(a, (n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    *dup = PB_PIPEDEF_NONE;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(names[idx[j - 1]], names[i]) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    for (size_t i = 1; i < n && *dup == PB_PIPEDEF_NONE; i++)
        if (!strcmp(names[idx[i - 1]], names[idx[i]]))
            *dup = idx[i - 1] < idx[i] ? idx[i] : idx[i - 1];
    return idx;
}

static int parse_params(pb_pipedef__parser *p, const pb_json *arr)
{
    pb_pipedef *def = p->def;
    size_t mark = pb_pipedef__push_key(p, "Parameters");
    int rc = 0;
    if (arr->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, arr, PB_JSON_ARRAY);
    else if (arr->n > PB_PIPEDEF_MAX_PARAMS)
        rc = pb_pipedef__fail(p, "The pipeline definition declares %zu parameters; at most %d are allowed.", arr->n,
                              PB_PIPEDEF_MAX_PARAMS);
    else if (arr->n && !(def->params = pb_arena_zalloc(&def->arena, arr->n * sizeof *def->params)))
        rc = PB_ENOMEM;
    for (size_t i = 0; !rc && i < arr->n; i++) {
        size_t m2 = pb_pipedef__push_index(p, i);
        rc = parse_param(p, arr->items[i], &def->params[i]);
        pb_pipedef__pop(p, m2);
        def->nparams = i + 1;
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

static int index_params(pb_pipedef__parser *p)
{
    pb_pipedef *def = p->def;
    const char **names = malloc((def->nparams ? def->nparams : 1) * sizeof *names);
    if (!names)
        return PB_ENOMEM;
    for (size_t i = 0; i < def->nparams; i++)
        names[i] = def->params[i].name;
    size_t dup;
    def->param_order = sort_names(&def->arena, names, def->nparams, &dup);
    free(names);
    if (!def->param_order)
        return PB_ENOMEM;
    if (dup != PB_PIPEDEF_NONE)
        return pb_pipedef__fail(p, "Parameter names must be unique: '%s' is declared more than once.",
                                def->params[dup].name);
    return 0;
}

static int parse_experiment(pb_pipedef__parser *p, const pb_json *pec)
{
    static const char *const fields[] = {"ExperimentName", "TrialName", NULL};
    size_t mark = pb_pipedef__push_key(p, "PipelineExperimentConfig");
    int rc = 0;
    if (pec->type != PB_JSON_OBJECT)
        rc = pb_pipedef__kind(p, pec, PB_JSON_OBJECT);
    else
        rc = pb_pipedef__check_fields(p, pec, fields, "PipelineExperimentConfig");
    if (!rc) {
        p->def->has_experiment_config = true;
        p->def->experiment_name = opt(pec, "ExperimentName");
        p->def->trial_name = opt(pec, "TrialName");
    }
    /* the expressions are scanned in pass 3, when parameters are indexed */
    pb_pipedef__pop(p, mark);
    return rc;
}

/* ---------------------------------------------------------------- steps -- */

/* Pass 1: counts the steps of arr and of the branches of its Condition
 * steps; stops counting past the cap. Shapes are checked in pass 2. */
static void count_steps(const pb_json *arr, size_t *n, int depth)
{
    if (!arr || arr->type != PB_JSON_ARRAY || depth > PB_PIPEDEF_MAX_DEPTH)
        return;
    for (size_t i = 0; i < arr->n && *n <= PB_PIPEDEF_MAX_STEPS; i++) {
        (*n)++;
        const pb_json *s = arr->items[i];
        const pb_json *t = pb_json_get(s, "Type");
        if (!t || t->type != PB_JSON_STRING || t->len != 9 || memcmp(t->str, "Condition", 9))
            continue;
        const pb_json *args = pb_json_get(s, "Arguments");
        count_steps(pb_json_get(args, "IfSteps"), n, depth + 1);
        count_steps(pb_json_get(args, "ElseSteps"), n, depth + 1);
    }
}

static bool is_scalar(const pb_json *v)
{
    return v->type == PB_JSON_STRING || v->type == PB_JSON_NUMBER || v->type == PB_JSON_TRUE ||
           v->type == PB_JSON_FALSE;
}

/* The items of ContainerEntrypoint / ContainerArguments: strings of 1..256
 * characters, other scalars, or expressions; at most max items. */
static int check_argv_list(pb_pipedef__parser *p, const pb_pipedef_step *st, const pb_json *spec, const char *key,
                           size_t max)
{
    const pb_json *list = opt(spec, key);
    if (!list)
        return 0;
    size_t mark = pb_pipedef__push_key(p, key);
    int rc = 0;
    if (list->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, list, PB_JSON_ARRAY);
    else if (list->n > max)
        rc = pb_pipedef__fail(p, "%s of step '%s' has %zu items; SageMaker allows at most %zu.", key, st->name,
                              list->n, max);
    for (size_t i = 0; !rc && list->type == PB_JSON_ARRAY && i < list->n; i++) {
        const pb_json *it = list->items[i];
        size_t m2 = pb_pipedef__push_index(p, i);
        if (it->type == PB_JSON_STRING) {
            size_t c = pb_pipedef__chars(it->str, it->len);
            if (c < 1 || c > 256)
                rc = pb_pipedef__fail(p, "%s[%zu] of step '%s' is %zu characters long; SageMaker allows 1 to 256.",
                                      key, i, st->name, c);
        } else if (!is_scalar(it) && !pb_pipedef__is_expr(it)) {
            rc = pb_pipedef__fail(p, "%s[%zu] of step '%s' must be a string or an expression; found %s.", key, i,
                                  st->name, pb_pipedef__kind_name(it));
        }
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

static bool env_key_ok(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    return true;
}

static int check_environment(pb_pipedef__parser *p, const pb_pipedef_step *st, const pb_json *env, size_t max_key,
                             size_t max_value)
{
    size_t mark = pb_pipedef__push_key(p, "Environment");
    int rc = 0;
    if (env->type != PB_JSON_OBJECT || pb_pipedef__is_expr(env))
        rc = pb_pipedef__kind(p, env, PB_JSON_OBJECT);
    else if (env->n > 100)
        rc = pb_pipedef__fail(p, "Environment of step '%s' has %zu entries; SageMaker allows at most 100.", st->name,
                              env->n);
    for (size_t i = 0; !rc && env->type == PB_JSON_OBJECT && i < env->n; i++) {
        const pb_json_member *m = &env->members[i];
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
        if (!env_key_ok(m->key, m->keylen, max_key)) {
            rc = pb_pipedef__fail(p,
                                  "Environment variable name '%s' of step '%s' is not valid: it must match "
                                  "[a-zA-Z_][a-zA-Z0-9_]* and have at most %zu characters.",
                                  shown, st->name, max_key);
            break;
        }
        for (size_t j = 0; j < i; j++)
            if (env->members[j].keylen == m->keylen && !memcmp(env->members[j].key, m->key, m->keylen))
                rc = pb_pipedef__fail(p, "Environment variable '%s' of step '%s' is set twice.", shown, st->name);
        if (rc)
            break;
        const pb_json *v = m->value;
        if (v->type == PB_JSON_STRING && pb_pipedef__chars(v->str, v->len) > max_value)
            rc = pb_pipedef__fail(p, "Environment variable '%s' of step '%s' is longer than %zu characters.", shown,
                                  st->name, max_value);
        else if (!is_scalar(v) && !pb_pipedef__is_expr(v))
            rc = pb_pipedef__fail(p, "Environment variable '%s' of step '%s' must be a string or an expression; found %s.",
                                  shown, st->name, pb_pipedef__kind_name(v));
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

/* PropertyFiles of a Processing step: names unique, no '.', each naming one
 * of the step's ProcessingOutputConfig.Outputs when they are written out. */
static int parse_property_files(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *pf, const pb_json *args)
{
    static const char *const fields[] = {"PropertyFileName", "OutputName", "FilePath", NULL};
    size_t mark = pb_pipedef__push_key(p, "PropertyFiles");
    int rc = 0;
    pb_pipedef_propfile *files = NULL;
    if (pf->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, pf, PB_JSON_ARRAY);
    else if (pf->n > PB_PIPEDEF_MAX_PROPERTY_FILES)
        rc = pb_pipedef__fail(p, "Step '%s' declares %zu property files; at most %d are allowed.", st->name, pf->n,
                              PB_PIPEDEF_MAX_PROPERTY_FILES);
    else if (pf->n && !(files = pb_arena_zalloc(&p->def->arena, pf->n * sizeof *files)))
        rc = PB_ENOMEM;
    const pb_json *outputs = opt(opt(args, "ProcessingOutputConfig"), "Outputs");
    for (size_t i = 0; !rc && i < pf->n; i++) {
        const pb_json *f = pf->items[i];
        size_t m2 = pb_pipedef__push_index(p, i);
        pb_pipedef_propfile *out = &files[i];
        if (f->type != PB_JSON_OBJECT)
            rc = pb_pipedef__kind(p, f, PB_JSON_OBJECT);
        if (!rc)
            rc = pb_pipedef__check_fields(p, f, fields, "a property file");
        if (!rc)
            rc = get_string(p, f, "PropertyFileName", true, 256, &out->name, "The property file");
        if (!rc)
            rc = get_string(p, f, "OutputName", true, 256, &out->output_name, "The property file");
        if (!rc)
            rc = get_string(p, f, "FilePath", true, 1024, &out->file_path, "The property file");
        if (!rc && (!*out->name || strchr(out->name, '.')))
            rc = pb_pipedef__fail(p, "PropertyFileName '%s' of step '%s' is not valid: it must be non-empty and "
                                     "contain no '.'.", out->name, st->name);
        for (size_t j = 0; !rc && j < i; j++)
            if (!strcmp(files[j].name, out->name))
                rc = pb_pipedef__fail(p, "Step '%s' declares property file '%s' twice.", st->name, out->name);
        if (!rc) {
            const char *fp = out->file_path;
            bool dotdot = false;
            for (const char *c = fp; *c; c = strchr(c, '/') ? strchr(c, '/') + 1 : c + strlen(c))
                if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))
                    dotdot = true;
            if (!*fp || fp[0] == '/' || dotdot)
                rc = pb_pipedef__fail(p, "FilePath '%s' of property file '%s' must be a relative path inside the "
                                         "output's directory (no leading '/', no '..').", fp, out->name);
        }
        if (!rc && outputs && outputs->type == PB_JSON_ARRAY) {
            bool found = false, literal = true;
            for (size_t k = 0; k < outputs->n && !found; k++) {
                const pb_json *on = pb_json_get(outputs->items[k], "OutputName");
                if (!on || on->type != PB_JSON_STRING)
                    literal = false;
                else if (on->len == strlen(out->output_name) && !memcmp(on->str, out->output_name, on->len))
                    found = true;
            }
            if (!found && literal)
                rc = pb_pipedef__fail(p, "Property file '%s' of step '%s' names output '%s', which is not one of the "
                                         "step's ProcessingOutputConfig.Outputs.", out->name, st->name,
                                      out->output_name);
        }
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    if (!rc) {
        st->property_files = files;
        st->nproperty_files = pf->n;
    }
    return rc;
}

/* ISO-8601 duration (PnYnMnWnDTnHnMnS, integers) in seconds; -1 if invalid. */
static int64_t iso_duration(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'P')
        return -1;
    int64_t total = 0;
    bool time = false, any = false;
    const char *date_units = "YMWD", *time_units = "HMS";
    int last = -1;
    for (size_t i = 1; i < n;) {
        if (s[i] == 'T') {
            if (time)
                return -1;
            time = true;
            last = -1;
            i++;
            continue;
        }
        int64_t v = 0;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 9)
            v = v * 10 + (s[i++] - '0');
        if (i == start || i >= n)
            return -1;
        const char *units = time ? time_units : date_units;
        const char *u = memchr(units, s[i], strlen(units));
        if (!u || (int)(u - units) <= last)
            return -1;
        last = (int)(u - units);
        static const int64_t date_secs[] = {365 * 86400, 30 * 86400, 7 * 86400, 86400};
        static const int64_t time_secs[] = {3600, 60, 1};
        total += v * (time ? time_secs[last] : date_secs[last]);
        any = true;
        i++;
    }
    return any && !(time && last < 0) ? total : -1;
}

static int parse_cache(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *cc)
{
    static const char *const fields[] = {"Enabled", "ExpireAfter", NULL};
    size_t mark = pb_pipedef__push_key(p, "CacheConfig");
    int rc = cc->type == PB_JSON_OBJECT ? pb_pipedef__check_fields(p, cc, fields, "CacheConfig")
                                        : pb_pipedef__kind(p, cc, PB_JSON_OBJECT);
    const pb_json *en = rc ? NULL : opt(cc, "Enabled");
    const pb_json *ex = rc ? NULL : opt(cc, "ExpireAfter");
    if (en) {
        size_t m2 = pb_pipedef__push_key(p, "Enabled");
        if (en->type != PB_JSON_TRUE && en->type != PB_JSON_FALSE)
            rc = pb_pipedef__kind(p, en, PB_JSON_TRUE);
        st->cache_enabled = en->type == PB_JSON_TRUE;
        pb_pipedef__pop(p, m2);
    }
    if (!rc && ex) {
        size_t m2 = pb_pipedef__push_key(p, "ExpireAfter");
        if (ex->type != PB_JSON_STRING) {
            rc = pb_pipedef__kind(p, ex, PB_JSON_STRING);
        } else {
            st->cache_expire_seconds = iso_duration(ex->str, ex->len);
            if (st->cache_expire_seconds < 0) {
                char shown[80];
                pb_pipedef__show(shown, sizeof shown, ex->str, ex->len);
                rc = pb_pipedef__fail(p, "CacheConfig.ExpireAfter '%s' of step '%s' is not an ISO-8601 duration "
                                         "such as P30D or PT12H.", shown, st->name);
            }
        }
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

/* An integer member in [lo, hi]; *out untouched when absent. */
static int get_int(pb_pipedef__parser *p, const pb_json *obj, const char *key, int64_t lo, int64_t hi, int *out,
                   const char *what)
{
    const pb_json *v = opt(obj, key);
    if (!v)
        return 0;
    size_t mark = pb_pipedef__push_key(p, key);
    int64_t i = 0;
    int rc = 0;
    if (v->type != PB_JSON_NUMBER)
        rc = pb_pipedef__kind(p, v, PB_JSON_NUMBER);
    else if (!pb_pipedef__int_text(v->str, v->len, &i) || i < lo || i > hi)
        rc = pb_pipedef__fail(p, "%s of %s must be an integer from %lld to %lld.", key, what, (long long)lo,
                              (long long)hi);
    else
        *out = (int)i;
    pb_pipedef__pop(p, mark);
    return rc;
}

static int parse_retry(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *rp)
{
    static const char *const fields[] = {"ExceptionType", "IntervalSeconds", "BackoffRate", "MaxAttempts",
                                         "ExpireAfterMin", NULL};
    static const struct {
        const char *s;
        unsigned bit;
    } kinds[] = {{"Step.SERVICE_FAULT", PB_PIPEDEF_RETRY_SERVICE_FAULT},
                 {"Step.THROTTLING", PB_PIPEDEF_RETRY_THROTTLING},
                 {"SageMaker.JOB_INTERNAL_ERROR", PB_PIPEDEF_RETRY_JOB_INTERNAL},
                 {"SageMaker.CAPACITY_ERROR", PB_PIPEDEF_RETRY_CAPACITY},
                 {"SageMaker.RESOURCE_LIMIT", PB_PIPEDEF_RETRY_RESOURCE_LIMIT}};
    size_t mark = pb_pipedef__push_key(p, "RetryPolicies");
    int rc = 0;
    pb_pipedef_retry *pol = NULL;
    char what[128];
    snprintf(what, sizeof what, "a retry policy of step '%s'", st->name);
    if (rp->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, rp, PB_JSON_ARRAY);
    else if (rp->n > PB_PIPEDEF_MAX_RETRY_POLICIES)
        rc = pb_pipedef__fail(p, "Step '%s' has %zu retry policies; at most %d are allowed.", st->name, rp->n,
                              PB_PIPEDEF_MAX_RETRY_POLICIES);
    else if (rp->n && !(pol = pb_arena_zalloc(&p->def->arena, rp->n * sizeof *pol)))
        rc = PB_ENOMEM;
    for (size_t i = 0; !rc && i < rp->n; i++) {
        const pb_json *r = rp->items[i];
        size_t m2 = pb_pipedef__push_index(p, i);
        pb_pipedef_retry *o = &pol[i];
        *o = (pb_pipedef_retry){.interval_seconds = 1, .backoff_rate = 2.0, .max_attempts = 5, .expire_after_min = -1};
        rc = r->type == PB_JSON_OBJECT ? pb_pipedef__check_fields(p, r, fields, "a retry policy")
                                       : pb_pipedef__kind(p, r, PB_JSON_OBJECT);
        const pb_json *et = rc ? NULL : opt(r, "ExceptionType");
        if (!rc && (!et || et->type != PB_JSON_ARRAY || et->n == 0))
            rc = pb_pipedef__fail(p, "A retry policy of step '%s' needs a non-empty ExceptionType list (at '%s').",
                                  st->name, p->path);
        for (size_t k = 0; !rc && k < et->n; k++) {
            const pb_json *e = et->items[k];
            unsigned bit = 0;
            for (size_t j = 0; e->type == PB_JSON_STRING && j < sizeof kinds / sizeof kinds[0]; j++)
                if (e->len == strlen(kinds[j].s) && !memcmp(e->str, kinds[j].s, e->len))
                    bit = kinds[j].bit;
            if (!bit) {
                char shown[80];
                pb_pipedef__show(shown, sizeof shown, e->type == PB_JSON_STRING ? e->str : "?",
                                 e->type == PB_JSON_STRING ? e->len : 1);
                rc = pb_pipedef__fail(p,
                                      "ExceptionType '%s' of a retry policy of step '%s' is not valid; valid types: "
                                      "Step.SERVICE_FAULT, Step.THROTTLING, SageMaker.JOB_INTERNAL_ERROR, "
                                      "SageMaker.CAPACITY_ERROR, SageMaker.RESOURCE_LIMIT.",
                                      shown, st->name);
            }
            o->exceptions |= bit;
        }
        if (!rc)
            rc = get_int(p, r, "IntervalSeconds", 1, 43200, &o->interval_seconds, what);
        const pb_json *br = rc ? NULL : opt(r, "BackoffRate");
        if (br) {
            if (br->type != PB_JSON_NUMBER || br->num < 1.0 || br->num > 1e6)
                rc = pb_pipedef__fail(p, "BackoffRate of %s must be a number of at least 1.0.", what);
            else
                o->backoff_rate = br->num;
        }
        bool has_max = !rc && opt(r, "MaxAttempts"), has_exp = !rc && opt(r, "ExpireAfterMin");
        if (has_max && has_exp)
            rc = pb_pipedef__fail(p, "A retry policy of step '%s' sets both MaxAttempts and ExpireAfterMin; they are "
                                     "mutually exclusive.", st->name);
        if (!rc)
            rc = get_int(p, r, "MaxAttempts", 0, 20, &o->max_attempts, what);
        if (!rc && has_exp) {
            o->max_attempts = -1;
            rc = get_int(p, r, "ExpireAfterMin", 0, 14400, &o->expire_after_min, what);
        }
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    if (!rc) {
        st->retry_policies = pol;
        st->nretry_policies = rp->n;
    }
    return rc;
}

/* Processing / Training Arguments: the entrypoint the runner executes. */
static int parse_job(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *args)
{
    bool proc = st->type == PB_PIPEDEF_PROCESSING;
    const char *specname = proc ? "AppSpecification" : "AlgorithmSpecification";
    const pb_json *spec = opt(args, specname);
    const pb_json *ep = spec && spec->type == PB_JSON_OBJECT ? opt(spec, "ContainerEntrypoint") : NULL;
    size_t mark = pb_pipedef__push_key(p, "Arguments");
    int rc = 0;
    if (spec && (spec->type != PB_JSON_OBJECT || pb_pipedef__is_expr(spec))) {
        size_t m2 = pb_pipedef__push_key(p, specname);
        rc = pb_pipedef__kind(p, spec, PB_JSON_OBJECT);
        pb_pipedef__pop(p, m2);
    } else if (!ep || (ep->type == PB_JSON_ARRAY && ep->n == 0)) {
        rc = pb_pipedef__fail(p,
                              "Step '%s' (%s) names no entrypoint: pipebridge runs Arguments.%s.ContainerEntrypoint "
                              "(with ContainerArguments) as a local process, without a container, so a step that "
                              "only names %s cannot run. Add ContainerEntrypoint, e.g. [\"python3\", \"%s.py\"].",
                              st->name, pb_pipedef_step_type_name(st->type), specname,
                              proc ? "an image (ImageUri)" : "an image (TrainingImage) or an algorithm",
                              proc ? "process" : "train");
    } else {
        size_t m2 = pb_pipedef__push_key(p, specname);
        rc = check_argv_list(p, st, spec, "ContainerEntrypoint", 100);
        if (!rc)
            rc = check_argv_list(p, st, spec, "ContainerArguments", proc ? 256 : 100);
        pb_pipedef__pop(p, m2);
        const pb_json *env = opt(args, "Environment");
        if (!rc && env)
            rc = check_environment(p, st, env, proc ? 256 : 512, proc ? 256 : 512);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

static int parse_step_list(pb_pipedef__parser *p, const pb_json *arr, size_t parent, bool in_else, size_t **idx,
                           size_t *n, int depth);

static int parse_condition_args(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *args, int depth)
{
    static const char *const fields[] = {"Conditions", "IfSteps", "ElseSteps", NULL};
    size_t mark = pb_pipedef__push_key(p, "Arguments");
    int rc = pb_pipedef__check_fields(p, args, fields, "the Arguments of a Condition step");
    if (!rc && !opt(args, "Conditions"))
        rc = pb_pipedef__fail(p, "Condition step '%s' has no Arguments.Conditions.", st->name);
    const pb_json *ifs = opt(args, "IfSteps"), *elses = opt(args, "ElseSteps");
    size_t *if_idx = NULL, *else_idx = NULL;
    if (!rc && ifs) {
        size_t m2 = pb_pipedef__push_key(p, "IfSteps");
        rc = parse_step_list(p, ifs, st->index, false, &if_idx, &st->nif, depth + 1);
        pb_pipedef__pop(p, m2);
    }
    if (!rc && elses) {
        size_t m2 = pb_pipedef__push_key(p, "ElseSteps");
        rc = parse_step_list(p, elses, st->index, true, &else_idx, &st->nelse, depth + 1);
        pb_pipedef__pop(p, m2);
    }
    st->if_steps = if_idx;
    st->else_steps = else_idx;
    pb_pipedef__pop(p, mark);
    return rc;
}

static int parse_fail_args(pb_pipedef__parser *p, pb_pipedef_step *st, const pb_json *args)
{
    static const char *const fields[] = {"ErrorMessage", NULL};
    size_t mark = pb_pipedef__push_key(p, "Arguments");
    int rc = pb_pipedef__check_fields(p, args, fields, "the Arguments of a Fail step");
    st->error_message = opt(args, "ErrorMessage");
    pb_pipedef__pop(p, mark);
    return rc;
}

/* Pass 2 for one step object v, which gets index idx. */
static int parse_step(pb_pipedef__parser *p, const pb_json *v, size_t idx, size_t parent, bool in_else, int depth)
{
    static const char *const fields[] = {"Name", "Type", "Arguments", "DependsOn", "DisplayName", "Description",
                                         "CacheConfig", "RetryPolicies", "PropertyFiles", NULL};
    pb_pipedef *def = p->def;
    pb_pipedef_step *st = &def->steps[idx];
    st->index = idx;
    st->parent = parent;
    st->in_else = in_else;
    if (v->type != PB_JSON_OBJECT)
        return pb_pipedef__kind(p, v, PB_JSON_OBJECT);
    if (!(st->json_path = pb_arena_strndup(&def->arena, p->path, p->plen)))
        return PB_ENOMEM;
    /* Name and Type first: a Lambda step's FunctionArn should be refused as
     * a Lambda step, not as an unknown field */
    int rc = get_string(p, v, "Name", true, 0, &st->name, "The step");
    if (rc)
        return rc;
    size_t nl = strlen(st->name);
    if (!pb_pipedef__name_ok(st->name, nl, 64)) {
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, st->name, nl);
        return pb_pipedef__fail(p, "Step name '%s' at '%s' is not valid: it must match ^[A-Za-z0-9\\-_]{1,64}$.",
                                shown, st->json_path);
    }
    const pb_json *t = opt(v, "Type");
    if (!t)
        return pb_pipedef__fail(p, "Step '%s' has no Type.", st->name);
    if (t->type != PB_JSON_STRING) {
        size_t mark = pb_pipedef__push_key(p, "Type");
        rc = pb_pipedef__kind(p, t, PB_JSON_STRING);
        pb_pipedef__pop(p, mark);
        return rc;
    }
    static const struct {
        const char *s;
        pb_pipedef_step_type t;
    } types[] = {{"Processing", PB_PIPEDEF_PROCESSING},
                 {"Training", PB_PIPEDEF_TRAINING},
                 {"Condition", PB_PIPEDEF_CONDITION},
                 {"Fail", PB_PIPEDEF_FAIL}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (t->len == strlen(types[i].s) && !memcmp(t->str, types[i].s, t->len))
            st->type = types[i].t;
    if (!st->type) {
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, t->str, t->len);
        for (const char *const *u = unsupported_types; *u; u++)
            if (t->len == strlen(*u) && !memcmp(t->str, *u, t->len))
                return pb_pipedef__fail(p,
                                        "Step type %s is not supported by pipebridge (step '%s'): only Processing, "
                                        "Training, Condition and Fail steps run locally.",
                                        shown, st->name);
        return pb_pipedef__fail(p,
                                "Step type %s is not a pipeline step type (step '%s'); pipebridge runs Processing, "
                                "Training, Condition and Fail steps.",
                                shown, st->name);
    }
    if ((rc = pb_pipedef__check_fields(p, v, fields, "a step")))
        return rc;
    const pb_json *args = opt(v, "Arguments");
    if (!args)
        return pb_pipedef__fail(p, "Step '%s' has no Arguments.", st->name);
    if (args->type != PB_JSON_OBJECT || pb_pipedef__is_expr(args)) {
        size_t mark = pb_pipedef__push_key(p, "Arguments");
        rc = pb_pipedef__kind(p, args, PB_JSON_OBJECT);
        pb_pipedef__pop(p, mark);
        return rc;
    }
    st->arguments = args;
    if ((rc = get_string(p, v, "DisplayName", false, 256, &st->display_name, "The step")) ||
        (rc = get_string(p, v, "Description", false, 3072, &st->description, "The step")))
        return rc;
    const pb_json *dep = opt(v, "DependsOn");
    if (dep) {
        size_t mark = pb_pipedef__push_key(p, "DependsOn");
        if (dep->type != PB_JSON_ARRAY)
            rc = pb_pipedef__kind(p, dep, PB_JSON_ARRAY);
        for (size_t i = 0; !rc && i < dep->n; i++)
            if (dep->items[i]->type != PB_JSON_STRING) {
                size_t m2 = pb_pipedef__push_index(p, i);
                rc = pb_pipedef__kind(p, dep->items[i], PB_JSON_STRING);
                pb_pipedef__pop(p, m2);
            }
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
    }
    bool job = st->type == PB_PIPEDEF_PROCESSING || st->type == PB_PIPEDEF_TRAINING;
    static const char *const job_only[] = {"CacheConfig", "RetryPolicies", "PropertyFiles"};
    for (size_t i = 0; i < 3; i++)
        if (opt(v, job_only[i]) && (!job || (i == 2 && st->type != PB_PIPEDEF_PROCESSING)))
            return pb_pipedef__fail(p, "Step '%s' is a %s step, which cannot have %s%s.", st->name,
                                    pb_pipedef_step_type_name(st->type), job_only[i],
                                    i == 2 ? " (only Processing steps produce property files)" : "");
    const pb_json *x;
    if ((x = opt(v, "CacheConfig")) && (rc = parse_cache(p, st, x)))
        return rc;
    if ((x = opt(v, "RetryPolicies")) && (rc = parse_retry(p, st, x)))
        return rc;
    switch (st->type) {
    case PB_PIPEDEF_PROCESSING:
    case PB_PIPEDEF_TRAINING:
        rc = parse_job(p, st, args);
        if (!rc && (x = opt(v, "PropertyFiles")))
            rc = parse_property_files(p, st, x, args);
        return rc;
    case PB_PIPEDEF_CONDITION: return parse_condition_args(p, st, args, depth);
    case PB_PIPEDEF_FAIL: return parse_fail_args(p, st, args);
    }
    return PB_EINTERNAL;
}

static int parse_step_list(pb_pipedef__parser *p, const pb_json *arr, size_t parent, bool in_else, size_t **idx,
                           size_t *n, int depth)
{
    *idx = NULL;
    *n = 0;
    if (arr->type != PB_JSON_ARRAY)
        return pb_pipedef__kind(p, arr, PB_JSON_ARRAY);
    if (depth > PB_PIPEDEF_MAX_DEPTH)
        return pb_pipedef__fail(p, "Condition steps are nested too deeply at '%s'.", p->path);
    if (arr->n && !(*idx = pb_arena_alloc(&p->def->arena, arr->n * sizeof **idx)))
        return PB_ENOMEM;
    for (size_t i = 0; i < arr->n; i++) {
        size_t k = p->def->nsteps++;
        if (k >= p->step_cap)
            return PB_EINTERNAL; /* pass 1 counted fewer: cannot happen */
        (*idx)[i] = k;
        *n = i + 1;
        p->sjson[k] = arr->items[i];
        size_t mark = pb_pipedef__push_index(p, i);
        int rc = parse_step(p, arr->items[i], k, parent, in_else, depth);
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
    }
    return 0;
}

static int index_steps(pb_pipedef__parser *p)
{
    pb_pipedef *def = p->def;
    const char **names = malloc(def->nsteps * sizeof *names);
    if (!names)
        return PB_ENOMEM;
    for (size_t i = 0; i < def->nsteps; i++)
        names[i] = def->steps[i].name;
    size_t dup;
    def->step_order = sort_names(&def->arena, names, def->nsteps, &dup);
    free(names);
    if (!def->step_order)
        return PB_ENOMEM;
    if (dup != PB_PIPEDEF_NONE)
        return pb_pipedef__fail(p, "Pipeline steps cannot have duplicate names: '%s' is used by more than one step.",
                                def->steps[dup].name);
    return 0;
}

/* Pass 3 for one step: DependsOn, expressions, conditions -> deps. */
static int link_step(pb_pipedef__parser *p, pb_pipedef_step *st)
{
    pb_pipedef *def = p->def;
    const pb_json *v = p->sjson[st->index];
    memset(p->refs, 0, def->nsteps * sizeof *p->refs);
    p->cur = st;
    p->nconds = 0;
    p->plen = 0;
    path_append(p, st->json_path, strlen(st->json_path));
    int rc = 0;
    const pb_json *dep = opt(v, "DependsOn");
    for (size_t i = 0; dep && i < dep->n && !rc; i++) {
        const pb_json *d = dep->items[i];
        size_t k = pb_pipedef_find_step(def, d->str, d->len);
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, d->str, d->len);
        if (k == PB_PIPEDEF_NONE)
            rc = pb_pipedef__fail(p, "Step '%s' depends on step '%s', which is not in the pipeline definition.",
                                  st->name, shown);
        else if (def->steps[k].type == PB_PIPEDEF_FAIL)
            rc = pb_pipedef__fail(p, "Step '%s' depends on Fail step '%s'; no step may depend on a Fail step.",
                                  st->name, shown);
        else
            p->refs[k] = true;
    }
    size_t mark = pb_pipedef__push_key(p, "Arguments");
    if (!rc) {
        switch (st->type) {
        case PB_PIPEDEF_PROCESSING:
        case PB_PIPEDEF_TRAINING: rc = pb_pipedef__scan(p, st->arguments); break;
        case PB_PIPEDEF_CONDITION: {
            size_t m2 = pb_pipedef__push_key(p, "Conditions");
            rc = pb_pipedef__parse_conditions(p, opt(st->arguments, "Conditions"), st);
            pb_pipedef__pop(p, m2);
            break;
        }
        case PB_PIPEDEF_FAIL:
            if (st->error_message) {
                size_t m2 = pb_pipedef__push_key(p, "ErrorMessage");
                rc = pb_pipedef__scan_operand(p, st->error_message, "ErrorMessage");
                pb_pipedef__pop(p, m2);
            }
            break;
        }
    }
    pb_pipedef__pop(p, mark);
    p->cur = NULL;
    if (rc)
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < def->nsteps; i++)
        n += p->refs[i];
    size_t *deps = n ? pb_arena_alloc(&def->arena, n * sizeof *deps) : NULL;
    if (n && !deps)
        return PB_ENOMEM;
    n = 0;
    for (size_t i = 0; i < def->nsteps; i++)
        if (p->refs[i])
            deps[n++] = i;
    st->deps = deps;
    st->ndeps = n;
    return 0;
}

/* Pass 4: a depth-first search over "runs before" edges (a dependency and a
 * Condition step before the steps it waits for / of its branches). */
static int find_cycle(pb_pipedef__parser *p)
{
    const pb_pipedef *def = p->def;
    size_t n = def->nsteps, nedges = 0;
    for (size_t i = 0; i < n; i++)
        nedges += def->steps[i].ndeps + (def->steps[i].parent != PB_PIPEDEF_NONE);
    size_t *start = calloc(n + 1, sizeof *start);
    size_t *succ = malloc((nedges ? nedges : 1) * sizeof *succ);
    size_t *fill = calloc(n + 1, sizeof *fill);
    unsigned char *color = calloc(n ? n : 1, 1);
    size_t *stack = malloc((n ? n : 1) * sizeof *stack), *next = malloc((n ? n : 1) * sizeof *next);
    int rc = 0;
    if (!start || !succ || !fill || !color || !stack || !next) {
        rc = PB_ENOMEM;
        goto out;
    }
    /* successor lists: d -> s for every dependency d of s, parent -> s */
    for (size_t s = 0; s < n; s++) {
        for (size_t k = 0; k < def->steps[s].ndeps; k++)
            start[def->steps[s].deps[k] + 1]++;
        if (def->steps[s].parent != PB_PIPEDEF_NONE)
            start[def->steps[s].parent + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (size_t s = 0; s < n; s++) {
        for (size_t k = 0; k < def->steps[s].ndeps; k++) {
            size_t d = def->steps[s].deps[k];
            succ[start[d] + fill[d]++] = s;
        }
        size_t par = def->steps[s].parent;
        if (par != PB_PIPEDEF_NONE)
            succ[start[par] + fill[par]++] = s;
    }
    for (size_t root = 0; root < n && !rc; root++) {
        if (color[root])
            continue;
        size_t top = 0;
        stack[top] = root;
        next[top] = start[root];
        color[root] = 1; /* on the stack */
        top++;
        while (top && !rc) {
            size_t u = stack[top - 1];
            if (next[top - 1] == start[u + 1]) {
                color[u] = 2; /* done */
                top--;
                continue;
            }
            size_t w = succ[next[top - 1]++];
            if (color[w] == 0) {
                color[w] = 1;
                stack[top] = w;
                next[top] = start[w];
                top++;
            } else if (color[w] == 1) {
                pb_buf b;
                pb_buf_init(&b, PB_ERROR_MESSAGE_MAX - 64);
                size_t from = top;
                while (from > 0 && stack[from - 1] != w)
                    from--;
                int wr = 0;
                for (size_t k = from - 1; k < top && !wr; k++)
                    wr = pb_buf_printf(&b, "%s -> ", def->steps[stack[k]].name);
                if (!wr)
                    wr = pb_buf_puts(&b, def->steps[w].name);
                if (wr == PB_ENOMEM)
                    rc = PB_ENOMEM;
                else
                    rc = pb_pipedef__fail(p, "Cycle detected in pipeline step graph: %s%s.", b.data ? b.data : "",
                                          wr ? " ..." : "");
                pb_buf_free(&b);
            }
        }
    }
out:
    free(start);
    free(succ);
    free(fill);
    free(color);
    free(stack);
    free(next);
    return rc;
}

/* ---------------------------------------------------------------- parse -- */

static int parse_definition(pb_pipedef__parser *p, const pb_json *doc)
{
    static const char *const fields[] = {"Version", "Metadata", "Parameters", "PipelineExperimentConfig", "Steps",
                                         NULL};
    pb_pipedef *def = p->def;
    if (doc->type != PB_JSON_OBJECT)
        return pb_pipedef__kind(p, doc, PB_JSON_OBJECT);
    if (pb_json_get(doc, "ParallelismConfiguration"))
        return pb_pipedef__fail(p, "Unknown field 'ParallelismConfiguration' in the pipeline definition: it is a "
                                   "parameter of CreatePipeline, UpdatePipeline and StartPipelineExecution, not part "
                                   "of the definition.");
    int rc = pb_pipedef__check_fields(p, doc, fields, "the pipeline definition");
    if (rc)
        return rc;
    const pb_json *ver = opt(doc, "Version");
    if (!ver)
        return pb_pipedef__fail(p, "The pipeline definition has no Version; the only version is 2020-12-01.");
    if ((rc = get_string(p, doc, "Version", true, 0, &def->version, "The pipeline definition")))
        return rc;
    if (strcmp(def->version, "2020-12-01")) {
        char shown[80];
        pb_pipedef__show(shown, sizeof shown, def->version, strlen(def->version));
        return pb_pipedef__fail(p, "Pipeline definition Version '%s' is not supported; the only version is 2020-12-01.",
                                shown);
    }
    const pb_json *x;
    if ((x = opt(doc, "Metadata"))) {
        size_t mark = pb_pipedef__push_key(p, "Metadata");
        rc = parse_metadata(p, x);
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
        def->metadata = x;
    }
    if ((x = opt(doc, "Parameters")) && (rc = parse_params(p, x)))
        return rc;
    if ((rc = index_params(p)))
        return rc;
    if ((x = opt(doc, "PipelineExperimentConfig")) && (rc = parse_experiment(p, x)))
        return rc;
    const pb_json *steps = opt(doc, "Steps");
    if (!steps || (steps->type == PB_JSON_ARRAY && steps->n == 0))
        return pb_pipedef__fail(p, "The pipeline definition has no steps: Steps must be a non-empty list.");
    size_t mark = pb_pipedef__push_key(p, "Steps");
    if (steps->type != PB_JSON_ARRAY) {
        rc = pb_pipedef__kind(p, steps, PB_JSON_ARRAY);
        pb_pipedef__pop(p, mark);
        return rc;
    }
    size_t count = 0;
    count_steps(steps, &count, 0);
    if (count > PB_PIPEDEF_MAX_STEPS) {
        pb_pipedef__pop(p, mark);
        return pb_pipedef__fail(p, "The pipeline definition has more than %d steps (IfSteps and ElseSteps included); "
                                   "pipebridge runs at most %d.",
                                PB_PIPEDEF_MAX_STEPS, PB_PIPEDEF_MAX_STEPS);
    }
    p->step_cap = count;
    def->steps = pb_arena_zalloc(&def->arena, count * sizeof *def->steps);
    p->sjson = calloc(count, sizeof *p->sjson);
    p->refs = calloc(count, sizeof *p->refs);
    if (!def->steps || !p->sjson || !p->refs) {
        pb_pipedef__pop(p, mark);
        return PB_ENOMEM;
    }
    size_t *top_idx, ntop;
    rc = parse_step_list(p, steps, PB_PIPEDEF_NONE, false, &top_idx, &ntop, 0);
    pb_pipedef__pop(p, mark);
    if (rc)
        return rc;
    if (def->nsteps != count)
        return PB_EINTERNAL;
    if ((rc = index_steps(p)))
        return rc;
    for (size_t i = 0; i < def->nsteps && !rc; i++)
        rc = link_step(p, &def->steps[i]);
    pb_pipedef__pop(p, 0);
    if (!rc && def->has_experiment_config) {
        size_t m1 = pb_pipedef__push_key(p, "PipelineExperimentConfig");
        const char *keys[2] = {"ExperimentName", "TrialName"};
        const pb_json *vals[2] = {def->experiment_name, def->trial_name};
        for (int i = 0; i < 2 && !rc; i++) {
            if (!vals[i])
                continue;
            size_t m2 = pb_pipedef__push_key(p, keys[i]);
            rc = pb_pipedef__scan_operand(p, vals[i], keys[i]);
            pb_pipedef__pop(p, m2);
        }
        pb_pipedef__pop(p, m1);
    }
    if (!rc)
        rc = find_cycle(p);
    return rc;
}

/* "Unable to parse pipeline definition. <parser's first line> at line L,
 * column C." from pb_json's Jackson-style message. */
static int syntax_error(pb_error *err, const pb_error *jerr)
{
    const char *msg = jerr->message;
    const char *nl = strchr(msg, '\n');
    size_t first = nl ? (size_t)(nl - msg) : strlen(msg);
    const char *loc = nl ? strstr(nl, "; line: ") : NULL;
    unsigned long line = 0, col = 0;
    if (loc && sscanf(loc, "; line: %lu, column: %lu", &line, &col) == 2)
        return pb_error_set(err, PB_EVALIDATION, "Unable to parse pipeline definition. %.*s at line %lu, column %lu.",
                            (int)first, msg, line, col);
    return pb_error_set(err, PB_EVALIDATION, "Unable to parse pipeline definition. %.*s.", (int)first, msg);
}

int pb_pipedef_parse(const char *text, size_t len, pb_pipedef **out, pb_error *err)
{
    *out = NULL;
    if (len == 0)
        return pb_error_set(err, PB_EVALIDATION,
                            "1 validation error detected: Value '' at 'pipelineDefinition' failed to satisfy "
                            "constraint: Member must have length greater than or equal to 1");
    if (len > PB_PIPEDEF_MAX_BYTES || pb_pipedef__chars(text, len) > PB_PIPEDEF_MAX_CHARS)
        return pb_error_set(err, PB_EVALIDATION,
                            "1 validation error detected: Value at 'pipelineDefinition' failed to satisfy "
                            "constraint: Member must have length less than or equal to %d",
                            PB_PIPEDEF_MAX_CHARS);
    pb_pipedef *def = calloc(1, sizeof *def);
    if (!def)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    pb_arena_init(&def->arena);
    pb_pipedef__parser p = {.def = def, .err = err};
    int rc = 0;
    /* numbers in the DOM point into the text: keep a copy with the definition */
    char *copy = pb_arena_memdup(&def->arena, text, len);
    pb_json *doc = NULL;
    if (!copy) {
        rc = PB_ENOMEM;
    } else {
        pb_error jerr;
        pb_error_clear(&jerr);
        pb_json_limits lim = {.max_bytes = PB_PIPEDEF_MAX_BYTES, .max_depth = PB_PIPEDEF_MAX_DEPTH};
        rc = pb_json_parse(copy, len, &lim, &def->arena, &doc, &jerr);
        if (rc == PB_EVALIDATION)
            syntax_error(err, &jerr);
    }
    if (!rc) {
        def->doc = doc;
        rc = parse_definition(&p, doc);
    }
    free(p.sjson);
    free(p.refs);
    if (rc) {
        if (rc == PB_ENOMEM)
            pb_error_set(err, PB_ENOMEM, "out of memory");
        else if (rc == PB_EINTERNAL)
            pb_error_set(err, PB_EINTERNAL, "internal error while parsing the pipeline definition");
        pb_pipedef_free(def);
        return rc;
    }
    *out = def;
    return 0;
}

void pb_pipedef_free(pb_pipedef *def)
{
    if (!def)
        return;
    pb_arena_free(&def->arena);
    free(def);
}

static size_t find_sorted(const size_t *order, size_t n, const char *(*name_of)(const pb_pipedef *, size_t),
                          const pb_pipedef *def, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = name_of(def, order[mid]);
        size_t sl = strlen(s);
        int c = memcmp(s, name, sl < len ? sl : len);
        if (!c)
            c = sl < len ? -1 : sl > len;
        if (!c)
            return order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PB_PIPEDEF_NONE;
}

static const char *step_name_of(const pb_pipedef *def, size_t i) { return def->steps[i].name; }
static const char *param_name_of(const pb_pipedef *def, size_t i) { return def->params[i].name; }

size_t pb_pipedef_find_step(const pb_pipedef *def, const char *name, size_t len)
{
    if (!def->step_order)
        return PB_PIPEDEF_NONE;
    return find_sorted(def->step_order, def->nsteps, step_name_of, def, name, len);
}

size_t pb_pipedef_find_param(const pb_pipedef *def, const char *name, size_t len)
{
    if (!def->param_order)
        return PB_PIPEDEF_NONE;
    return find_sorted(def->param_order, def->nparams, param_name_of, def, name, len);
}
