/*
 * pipedef_expr.c — the expression language of pipeline definitions.
 *
 * One reader of Get strings (parse_ref) serves both the checks made when a
 * definition is parsed (every name must exist, every property path must be
 * well formed and start with a property the step type has) and evaluation
 * against a pb_pipedef_ctx. Evaluation copies everything it produces into the
 * caller's arena and counts the bytes against PB_PIPEDEF_MAX_RESOLVED_BYTES,
 * so a definition cannot make one step resolve into gigabytes.
 *
 * Property paths (after "Steps.<Step>."):  Name ( .Name | [N] | ['key'] )*
 * with Name [A-Za-z0-9_]+; ['key'] on a list picks the item whose
 * OutputName / InputName / ChannelName / MetricName / Name is key, as in
 * Outputs['train'] and FinalMetricDataList['val:acc'].
 * Std:JsonGet paths: an optional "$", then the same forms with any name that
 * holds no '.', '[', ']' or quote; ['key'] is always a member there.
 */
#include "pipedef_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const var_names[PB_PIPEDEF_VAR_COUNT] = {
    "StartDateTime", "CurrentDateTime", "PipelineName", "PipelineArn", "PipelineExecutionId", "PipelineExecutionArn",
};

const char *pb_pipedef_var_name(pb_pipedef_var v)
{
    return (unsigned)v < PB_PIPEDEF_VAR_COUNT ? var_names[v] : "?";
}

/* First members of the Describe* responses whose fields a step exposes. */
static const char *const processing_props[] = {
    "ProcessingInputs", "ProcessingOutputConfig", "ProcessingJobName", "ProcessingResources", "StoppingCondition",
    "AppSpecification", "Environment", "NetworkConfig", "RoleArn", "ExperimentConfig", "ProcessingJobArn",
    "ProcessingJobStatus", "ExitMessage", "FailureReason", "ProcessingEndTime", "ProcessingStartTime",
    "LastModifiedTime", "CreationTime", "MonitoringScheduleArn", "AutoMLJobArn", "TrainingJobArn", NULL,
};

static const char *const training_props[] = {
    "TrainingJobName", "TrainingJobArn", "TuningJobArn", "LabelingJobArn", "AutoMLJobArn", "ModelArtifacts",
    "TrainingJobStatus", "SecondaryStatus", "FailureReason", "HyperParameters", "AlgorithmSpecification", "RoleArn",
    "InputDataConfig", "OutputDataConfig", "ResourceConfig", "WarmPoolStatus", "VpcConfig", "StoppingCondition",
    "CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime", "SecondaryStatusTransitions",
    "FinalMetricDataList", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "TrainingTimeInSeconds", "BillableTimeInSeconds",
    "DebugHookConfig", "ExperimentConfig", "DebugRuleConfigurations", "TensorBoardOutputConfig",
    "DebugRuleEvaluationStatuses", "ProfilerConfig", "ProfilerRuleConfigurations", "ProfilerRuleEvaluationStatuses",
    "ProfilingStatus", "Environment", "RetryStrategy", "RemoteDebugConfig", "InfraCheckConfig", NULL,
};

/* Fields that name the items of a list, for ['key'] in property paths. */
static const char *const item_names[] = {"OutputName", "InputName", "ChannelName", "MetricName", "Name", NULL};

/* ------------------------------------------------------------- helpers -- */

static bool mem_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

static bool starts(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(s, lit, l) == 0;
}

bool pb_pipedef__is_expr(const pb_json *v)
{
    if (!v || v->type != PB_JSON_OBJECT)
        return false;
    for (size_t i = 0; i < v->n; i++) {
        const pb_json_member *m = &v->members[i];
        if (mem_is(m->key, m->keylen, "Get") || starts(m->key, m->keylen, "Std:"))
            return true;
    }
    return false;
}

/* The last member named s[0..n) of obj. */
static const pb_json *get_n(const pb_json *obj, const char *s, size_t n)
{
    if (!obj || obj->type != PB_JSON_OBJECT)
        return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (obj->members[i].keylen == n && !memcmp(obj->members[i].key, s, n))
            return obj->members[i].value;
    return NULL;
}

/* ---------------------------------------------------------------- paths -- */

enum { SEG_NAME = 1, SEG_INDEX, SEG_KEY };

typedef struct seg {
    int kind;
    const char *s; /* NAME, KEY */
    size_t n;
    size_t index; /* INDEX */
} seg;

static bool name_char(char c, bool strict)
{
    if (strict)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    return c != '.' && c != '[' && c != ']' && c != '\'' && c != '"' && (unsigned char)c >= 0x20;
}

/* The segment of path[0..n) at *pos: 1 (and *sg), 0 at the end, -1 when
 * the path is malformed. */
static int next_seg(const char *path, size_t n, size_t *pos, bool strict, seg *sg)
{
    size_t i = *pos;
    if (i >= n)
        return 0;
    if (path[i] == '[') {
        if (strict && i == 0)
            return -1;
        i++;
        if (i < n && (path[i] == '\'' || path[i] == '"')) {
            char q = path[i++];
            size_t st = i;
            while (i < n && path[i] != q)
                i++;
            if (i >= n || i == st || i + 1 >= n || path[i + 1] != ']')
                return -1;
            *sg = (seg){.kind = SEG_KEY, .s = path + st, .n = i - st};
            i += 2;
        } else {
            size_t st = i, v = 0;
            while (i < n && path[i] >= '0' && path[i] <= '9' && i - st < 9)
                v = v * 10 + (size_t)(path[i++] - '0');
            if (i == st || i >= n || path[i] != ']')
                return -1;
            *sg = (seg){.kind = SEG_INDEX, .index = v};
            i++;
        }
    } else {
        if (i > 0) {
            if (path[i] != '.')
                return -1;
            i++;
        }
        size_t st = i;
        while (i < n && name_char(path[i], strict))
            i++;
        if (i == st)
            return -1;
        *sg = (seg){.kind = SEG_NAME, .s = path + st, .n = i - st};
    }
    *pos = i;
    return 1;
}

/* Where a JsonGet path starts: after an optional "$". */
static size_t loose_start(const char *path, size_t n)
{
    return n > 0 && path[0] == '$' ? 1 : 0;
}

static bool path_ok(const char *path, size_t n, bool strict)
{
    size_t pos = strict ? 0 : loose_start(path, n);
    if (!strict && pos == 1 && n > 1 && path[1] != '.' && path[1] != '[')
        return false;
    seg sg;
    int r;
    bool any = false;
    while ((r = next_seg(path, n, &pos, strict, &sg)) == 1)
        any = true;
    return r == 0 && (any || !strict);
}

/* Walks root along path; NULL when something is not there. */
static const pb_json *walk(const pb_json *root, const char *path, size_t n, bool strict)
{
    size_t pos = strict ? 0 : loose_start(path, n);
    seg sg;
    int r;
    const pb_json *v = root;
    while (v && (r = next_seg(path, n, &pos, strict, &sg)) == 1) {
        if (sg.kind == SEG_INDEX) {
            v = v->type == PB_JSON_ARRAY && sg.index < v->n ? v->items[sg.index] : NULL;
        } else if (v->type == PB_JSON_OBJECT) {
            v = get_n(v, sg.s, sg.n);
        } else if (sg.kind == SEG_KEY && strict && v->type == PB_JSON_ARRAY) {
            const pb_json *found = NULL;
            for (size_t i = 0; i < v->n && !found; i++)
                for (const char *const *f = item_names; *f && !found; f++) {
                    const pb_json *nm = pb_json_get(v->items[i], *f);
                    if (nm && nm->type == PB_JSON_STRING && nm->len == sg.n && !memcmp(nm->str, sg.s, sg.n))
                        found = v->items[i];
                }
            v = found;
        } else {
            v = NULL;
        }
    }
    return v;
}

/* ------------------------------------------------------ Get references -- */

enum { REF_PARAM = 1, REF_VAR, REF_STEP, REF_PROPFILE };

typedef struct ref {
    int kind;
    size_t index;                   /* parameter, variable or step */
    const char *path;               /* REF_STEP: the property path */
    size_t plen;
    const pb_pipedef_propfile *pf;  /* REF_PROPFILE */
} ref;

/* Reads a Get string. On error returns -1 with a sentence in why. */
static int parse_ref(const pb_pipedef *def, const char *s, size_t n, ref *r, char *why, size_t cap)
{
    char shown[96];
    memset(r, 0, sizeof *r);
    if (n > PB_PIPEDEF_MAX_PATH) {
        snprintf(why, cap, "A Get expression is longer than %d bytes", PB_PIPEDEF_MAX_PATH);
        return -1;
    }
    if (starts(s, n, "Parameters.")) {
        const char *name = s + 11;
        size_t nl = n - 11;
        r->kind = REF_PARAM;
        r->index = pb_pipedef_find_param(def, name, nl);
        if (r->index == PB_PIPEDEF_NONE) {
            pb_pipedef__show(shown, sizeof shown, name, nl);
            snprintf(why, cap, "Parameter '%s' is not defined in the pipeline definition's Parameters", shown);
            return -1;
        }
        return 0;
    }
    if (starts(s, n, "Execution.")) {
        r->kind = REF_VAR;
        for (size_t i = 0; i < PB_PIPEDEF_VAR_COUNT; i++)
            if (mem_is(s + 10, n - 10, var_names[i])) {
                r->index = i;
                return 0;
            }
        pb_pipedef__show(shown, sizeof shown, s + 10, n - 10);
        snprintf(why, cap,
                 "Execution variable '%s' does not exist; the variables are StartDateTime, CurrentDateTime, "
                 "PipelineName, PipelineArn, PipelineExecutionId and PipelineExecutionArn",
                 shown);
        return -1;
    }
    if (!starts(s, n, "Steps.")) {
        pb_pipedef__show(shown, sizeof shown, s, n);
        snprintf(why, cap, "Get expression '%s' is not valid: it must start with Parameters., Execution. or Steps.",
                 shown);
        return -1;
    }
    const char *name = s + 6, *dot = memchr(name, '.', n - 6);
    size_t nl = dot ? (size_t)(dot - name) : n - 6;
    pb_pipedef__show(shown, sizeof shown, name, nl);
    r->kind = REF_STEP;
    r->index = pb_pipedef_find_step(def, name, nl);
    if (r->index == PB_PIPEDEF_NONE) {
        snprintf(why, cap, "Step '%s' is not in the pipeline definition", shown);
        return -1;
    }
    const pb_pipedef_step *st = &def->steps[r->index];
    r->path = dot ? dot + 1 : "";
    r->plen = dot ? n - 6 - nl - 1 : 0;
    if (!r->plen) {
        snprintf(why, cap, "A Get of step '%s' must name one of its properties", shown);
        return -1;
    }
    if (st->type == PB_PIPEDEF_FAIL) {
        snprintf(why, cap, "Fail step '%s' has no properties, and no step may depend on a Fail step", shown);
        return -1;
    }
    if (st->type == PB_PIPEDEF_CONDITION) {
        if (mem_is(r->path, r->plen, "Outcome"))
            return 0;
        snprintf(why, cap, "Condition step '%s' has only the property Outcome", shown);
        return -1;
    }
    if (starts(r->path, r->plen, "PropertyFiles.")) {
        const char *f = r->path + 14;
        size_t fl = r->plen - 14;
        for (size_t i = 0; i < st->nproperty_files; i++)
            if (mem_is(f, fl, st->property_files[i].name)) {
                r->kind = REF_PROPFILE;
                r->pf = &st->property_files[i];
                return 0;
            }
        char fshown[96];
        pb_pipedef__show(fshown, sizeof fshown, f, fl);
        snprintf(why, cap, "Step '%s' has no property file '%s'", shown, fshown);
        return -1;
    }
    char pshown[96];
    pb_pipedef__show(pshown, sizeof pshown, r->path, r->plen);
    if (!path_ok(r->path, r->plen, true)) {
        snprintf(why, cap, "Property path '%s' of step '%s' is not valid", pshown, shown);
        return -1;
    }
    size_t pos = 0;
    seg first;
    next_seg(r->path, r->plen, &pos, true, &first);
    const char *const *props = st->type == PB_PIPEDEF_PROCESSING ? processing_props : training_props;
    for (const char *const *pr = props; *pr; pr++)
        if (mem_is(first.s, first.n, *pr))
            return 0;
    pb_pipedef__show(pshown, sizeof pshown, first.s, first.n);
    snprintf(why, cap, "Step '%s' (%s) has no property '%s'", shown, pb_pipedef_step_type_name(st->type), pshown);
    return -1;
}

/* ------------------------------------------------------------ validation -- */

static int scan_expr(pb_pipedef__parser *p, const pb_json *v);

static bool is_scalar(const pb_json *v)
{
    return v->type == PB_JSON_STRING || v->type == PB_JSON_NUMBER || v->type == PB_JSON_TRUE ||
           v->type == PB_JSON_FALSE;
}

static int ref_fail(pb_pipedef__parser *p, const char *why, const char *get, size_t n)
{
    char shown[96];
    pb_pipedef__show(shown, sizeof shown, get, n);
    return pb_pipedef__fail(p, "%s (Get '%s' at '%s').", why, shown, p->path);
}

/* A Get at the current path; pf is set when it names a property file, which
 * only the PropertyFile of a Std:JsonGet may do. */
static int check_get(pb_pipedef__parser *p, const pb_json *g, const pb_pipedef_propfile **pf)
{
    if (g->type != PB_JSON_STRING) {
        size_t mark = pb_pipedef__push_key(p, "Get");
        int rc = pb_pipedef__kind(p, g, PB_JSON_STRING);
        pb_pipedef__pop(p, mark);
        return rc;
    }
    char why[512];
    ref r;
    if (parse_ref(p->def, g->str, g->len, &r, why, sizeof why))
        return ref_fail(p, why, g->str, g->len);
    if (r.kind == REF_STEP || r.kind == REF_PROPFILE) {
        if (!p->cur)
            return ref_fail(p, "PipelineExperimentConfig cannot use step properties", g->str, g->len);
        p->refs[r.index] = true;
    }
    if (r.kind == REF_PROPFILE) {
        if (!pf)
            return ref_fail(p, "A property file can only be read through the PropertyFile of a Std:JsonGet", g->str,
                            g->len);
        *pf = r.pf;
    }
    return 0;
}

int pb_pipedef__scan_operand(pb_pipedef__parser *p, const pb_json *v, const char *what)
{
    if (pb_pipedef__is_expr(v))
        return scan_expr(p, v);
    if (is_scalar(v))
        return 0;
    return pb_pipedef__fail(p, "%s at '%s' must be a string, number, boolean or expression; found %s.", what, p->path,
                            pb_pipedef__kind_name(v));
}

static int scan_join(pb_pipedef__parser *p, const pb_json *j)
{
    static const char *const fields[] = {"On", "Values", NULL};
    if (j->type != PB_JSON_OBJECT || pb_pipedef__is_expr(j))
        return pb_pipedef__kind(p, j, PB_JSON_OBJECT);
    int rc = pb_pipedef__check_fields(p, j, fields, "Std:Join");
    if (rc)
        return rc;
    const pb_json *on = pb_json_get(j, "On"), *vals = pb_json_get(j, "Values");
    if (!on || !vals)
        return pb_pipedef__fail(p, "Std:Join at '%s' needs both On and Values.", p->path);
    size_t mark = pb_pipedef__push_key(p, "On");
    if (on->type != PB_JSON_STRING)
        rc = pb_pipedef__kind(p, on, PB_JSON_STRING);
    pb_pipedef__pop(p, mark);
    if (rc)
        return rc;
    mark = pb_pipedef__push_key(p, "Values");
    if (vals->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, vals, PB_JSON_ARRAY);
    for (size_t i = 0; !rc && i < vals->n; i++) {
        size_t m2 = pb_pipedef__push_index(p, i);
        rc = pb_pipedef__scan_operand(p, vals->items[i], "A Std:Join value");
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

static int scan_jsonget(pb_pipedef__parser *p, const pb_json *j)
{
    static const char *const fields[] = {"PropertyFile", "Path", NULL};
    if (j->type != PB_JSON_OBJECT || pb_pipedef__is_expr(j))
        return pb_pipedef__kind(p, j, PB_JSON_OBJECT);
    if (pb_json_get(j, "S3Uri"))
        return pb_pipedef__fail(p, "Std:JsonGet with S3Uri (at '%s') is not supported by pipebridge: read a "
                                   "PropertyFile of a Processing step instead.", p->path);
    int rc = pb_pipedef__check_fields(p, j, fields, "Std:JsonGet");
    if (rc)
        return rc;
    const pb_json *pf = pb_json_get(j, "PropertyFile"), *path = pb_json_get(j, "Path");
    if (!pf || !path)
        return pb_pipedef__fail(p, "Std:JsonGet at '%s' needs both PropertyFile and Path.", p->path);
    size_t mark = pb_pipedef__push_key(p, "PropertyFile");
    const pb_pipedef_propfile *file = NULL;
    if (pf->type != PB_JSON_OBJECT || pf->n != 1 || !pb_json_get(pf, "Get"))
        rc = pb_pipedef__fail(p, "The PropertyFile of a Std:JsonGet (at '%s') must be {\"Get\": "
                                 "\"Steps.<Step>.PropertyFiles.<PropertyFileName>\"}.", p->path);
    else if (!(rc = check_get(p, pb_json_get(pf, "Get"), &file)) && !file)
        rc = pb_pipedef__fail(p, "The PropertyFile of a Std:JsonGet (at '%s') must name a property file: "
                                 "Steps.<Step>.PropertyFiles.<PropertyFileName>.", p->path);
    pb_pipedef__pop(p, mark);
    if (rc)
        return rc;
    mark = pb_pipedef__push_key(p, "Path");
    if (path->type != PB_JSON_STRING) {
        rc = pb_pipedef__kind(p, path, PB_JSON_STRING);
    } else if (path->len > PB_PIPEDEF_MAX_PATH || !path_ok(path->str, path->len, false)) {
        char shown[96];
        pb_pipedef__show(shown, sizeof shown, path->str, path->len);
        rc = pb_pipedef__fail(p, "Std:JsonGet Path '%s' at '%s' is not valid: use names, [index] and ['key'] "
                                 "separated by dots, e.g. regression_metrics.mse.value.", shown, p->path);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

static int scan_expr(pb_pipedef__parser *p, const pb_json *v)
{
    if (v->n != 1)
        return pb_pipedef__fail(p, "An expression object (at '%s') must have exactly one member, Get, Std:Join or "
                                   "Std:JsonGet; found %zu members.", p->path, v->n);
    const pb_json_member *m = &v->members[0];
    size_t mark = p->plen;
    int rc;
    if (mem_is(m->key, m->keylen, "Get")) {
        rc = check_get(p, m->value, NULL);
    } else if (mem_is(m->key, m->keylen, "Std:Join")) {
        pb_pipedef__push_key(p, "Std:Join");
        rc = scan_join(p, m->value);
    } else if (mem_is(m->key, m->keylen, "Std:JsonGet")) {
        pb_pipedef__push_key(p, "Std:JsonGet");
        rc = scan_jsonget(p, m->value);
    } else {
        char shown[96];
        pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
        rc = pb_pipedef__fail(p, "Function '%s' at '%s' is not supported by pipebridge; expressions are Get, "
                                 "Std:Join and Std:JsonGet.", shown, p->path);
    }
    pb_pipedef__pop(p, mark);
    return rc;
}

int pb_pipedef__scan(pb_pipedef__parser *p, const pb_json *v)
{
    int rc = 0;
    if (v->type == PB_JSON_OBJECT) {
        if (pb_pipedef__is_expr(v))
            return scan_expr(p, v);
        for (size_t i = 0; i < v->n && !rc; i++) {
            size_t mark = pb_pipedef__push_key(p, v->members[i].key);
            rc = pb_pipedef__scan(p, v->members[i].value);
            pb_pipedef__pop(p, mark);
        }
    } else if (v->type == PB_JSON_ARRAY) {
        for (size_t i = 0; i < v->n && !rc; i++) {
            size_t mark = pb_pipedef__push_index(p, i);
            rc = pb_pipedef__scan(p, v->items[i]);
            pb_pipedef__pop(p, mark);
        }
    }
    return rc;
}

/* --------------------------------------------------------------- values -- */

const char *pb_pipedef__vkind_name(pb_pipedef_vkind k)
{
    switch (k) {
    case PB_PIPEDEF_VNULL: return "null";
    case PB_PIPEDEF_VSTRING: return "String";
    case PB_PIPEDEF_VINTEGER: return "Integer";
    case PB_PIPEDEF_VFLOAT: return "Float";
    case PB_PIPEDEF_VBOOLEAN: return "Boolean";
    case PB_PIPEDEF_VJSON: return "JSON structure";
    }
    return "?";
}

/* Counts n more bytes against the evaluation's budget (used may be NULL). */
static int charge(size_t *used, size_t n, pb_error *err)
{
    if (!used)
        return 0;
    if (n > PB_PIPEDEF_MAX_RESOLVED_BYTES - *used)
        return pb_error_set(err, PB_EVALIDATION, "The values of one step evaluate to more than %d bytes.",
                            PB_PIPEDEF_MAX_RESOLVED_BYTES);
    *used += n;
    return 0;
}

static int nomem(pb_error *err) { return pb_error_set(err, PB_ENOMEM, "out of memory"); }

static pb_json *new_node(pb_arena *a, pb_json_type t)
{
    pb_json *v = pb_arena_zalloc(a, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

/* A deep copy of v in arena. */
static int copy_json(pb_arena *a, size_t *used, const pb_json *v, int depth, const pb_json **out, pb_error *err)
{
    if (depth > 256)
        return pb_error_set(err, PB_EVALIDATION, "A property value is nested more than 256 levels deep.");
    int rc = charge(used, sizeof *v + v->len, err);
    pb_json *c = rc ? NULL : new_node(a, v->type);
    if (rc)
        return rc;
    if (!c)
        return nomem(err);
    c->num = v->num;
    if (v->type == PB_JSON_STRING || v->type == PB_JSON_NUMBER) {
        if (!(c->str = pb_arena_strndup(a, v->str, v->len)))
            return nomem(err);
        c->len = v->len;
    } else if (v->type == PB_JSON_ARRAY && v->n) {
        pb_json **items = pb_arena_alloc(a, v->n * sizeof *items);
        if (!items)
            return nomem(err);
        for (size_t i = 0; i < v->n; i++) {
            const pb_json *item;
            if ((rc = copy_json(a, used, v->items[i], depth + 1, &item, err)))
                return rc;
            items[i] = (pb_json *)item;
        }
        c->items = items;
        c->n = v->n;
    } else if (v->type == PB_JSON_OBJECT && v->n) {
        pb_json_member *mem = pb_arena_alloc(a, v->n * sizeof *mem);
        if (!mem || (rc = charge(used, v->n * sizeof *mem, err)))
            return mem ? rc : nomem(err);
        for (size_t i = 0; i < v->n; i++) {
            const pb_json_member *m = &v->members[i];
            if ((rc = charge(used, m->keylen, err)))
                return rc;
            if (!(mem[i].key = pb_arena_strndup(a, m->key, m->keylen)))
                return nomem(err);
            mem[i].keylen = m->keylen;
            const pb_json *val;
            if ((rc = copy_json(a, used, m->value, depth + 1, &val, err)))
                return rc;
            mem[i].value = (pb_json *)val;
        }
        c->members = mem;
        c->n = v->n;
    }
    *out = c;
    return 0;
}

int pb_pipedef__string_value(pb_arena *arena, const char *s, size_t n, pb_pipedef_value *out)
{
    *out = (pb_pipedef_value){.kind = PB_PIPEDEF_VSTRING, .len = n};
    out->str = pb_arena_strndup(arena, s, n);
    return out->str ? 0 : PB_ENOMEM;
}

/* v as a value, copied into arena. */
static int from_json(pb_arena *a, size_t *used, const pb_json *v, pb_pipedef_value *out, pb_error *err)
{
    *out = (pb_pipedef_value){.kind = PB_PIPEDEF_VNULL, .str = ""};
    int rc;
    switch (v->type) {
    case PB_JSON_NULL: return 0;
    case PB_JSON_TRUE:
    case PB_JSON_FALSE:
        out->kind = PB_PIPEDEF_VBOOLEAN;
        out->b = v->type == PB_JSON_TRUE;
        out->str = out->b ? "true" : "false";
        out->len = strlen(out->str);
        return 0;
    case PB_JSON_STRING:
        if ((rc = charge(used, v->len, err)))
            return rc;
        return pb_pipedef__string_value(a, v->str, v->len, out) ? nomem(err) : 0;
    case PB_JSON_NUMBER:
        if ((rc = charge(used, v->len, err)))
            return rc;
        out->kind = pb_pipedef__int_text(v->str, v->len, &out->i) ? PB_PIPEDEF_VINTEGER : PB_PIPEDEF_VFLOAT;
        out->f = v->num;
        out->len = v->len;
        return (out->str = pb_arena_strndup(a, v->str, v->len)) ? 0 : nomem(err);
    case PB_JSON_ARRAY:
    case PB_JSON_OBJECT: {
        const pb_json *c;
        if ((rc = copy_json(a, used, v, 0, &c, err)))
            return rc;
        pb_buf b;
        pb_buf_init(&b, PB_PIPEDEF_MAX_VALUE_BYTES);
        rc = pb_json_write(&b, c);
        if (rc == PB_EVALIDATION) /* the buffer's cap */
            rc = pb_error_set(err, PB_EVALIDATION, "A JSON value is longer than %d bytes.",
                              PB_PIPEDEF_MAX_VALUE_BYTES);
        else if (rc)
            rc = nomem(err);
        if (!rc)
            rc = charge(used, b.len, err);
        if (!rc && !(out->str = pb_arena_strndup(a, b.data ? b.data : "", b.len)))
            rc = nomem(err);
        out->len = b.len;
        pb_buf_free(&b);
        out->kind = PB_PIPEDEF_VJSON;
        out->json = c;
        return rc;
    }
    }
    return PB_EINTERNAL;
}

int pb_pipedef__from_json(const pb_json *v, pb_arena *arena, pb_pipedef_value *out, pb_error *err)
{
    return from_json(arena, NULL, v, out, err);
}

/* ----------------------------------------------------------- evaluation -- */

static int eval_fail(pb_pipedef__eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int eval_fail(pb_pipedef__eval *e, const char *fmt, ...)
{
    if (!e->err)
        return PB_EVALIDATION;
    char msg[PB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pb_error_set(e->err, PB_EVALIDATION, "%s", msg);
}

static int eval_step_property(pb_pipedef__eval *e, const ref *r, const char *get, size_t gn,
                              pb_pipedef_value *out)
{
    const pb_pipedef_step *st = &e->def->steps[r->index];
    const pb_pipedef_ctx *ctx = e->ctx;
    if (st->type == PB_PIPEDEF_CONDITION && ctx->plan && ctx->plan->def == e->def && ctx->plan->outcome &&
        ctx->plan->outcome[r->index] >= 0) {
        const char *o = ctx->plan->outcome[r->index] ? "True" : "False";
        return pb_pipedef__string_value(e->arena, o, strlen(o), out) ? nomem(e->err) : 0;
    }
    const pb_json *props = ctx->step_properties ? ctx->step_properties(ctx->user, st) : NULL;
    char shown[128];
    pb_pipedef__show(shown, sizeof shown, get, gn);
    if (!props)
        return eval_fail(e, "Cannot evaluate %s: step '%s' has no properties (it has not run).", shown, st->name);
    const pb_json *v = walk(props, r->path, r->plen, true);
    if (!v)
        return eval_fail(e, "Cannot evaluate %s: step '%s' has no such property.", shown, st->name);
    return from_json(e->arena, &e->used, v, out, e->err);
}

static int eval_get(pb_pipedef__eval *e, const pb_json *g, pb_pipedef_value *out)
{
    if (g->type != PB_JSON_STRING)
        return eval_fail(e, "A Get expression must be a string.");
    char why[512];
    ref r;
    if (parse_ref(e->def, g->str, g->len, &r, why, sizeof why))
        return eval_fail(e, "%s.", why);
    const pb_pipedef_ctx *ctx = e->ctx;
    switch (r.kind) {
    case REF_PARAM:
        if (!ctx->args || ctx->args->n != e->def->nparams)
            return eval_fail(e, "Parameter '%s' has no value: no parameters are bound to this execution.",
                             e->def->params[r.index].name);
        *out = ctx->args->values[r.index];
        return 0;
    case REF_VAR: {
        const char *s = ctx->vars[r.index];
        if (!s)
            return eval_fail(e, "Execution variable %s is not available.", var_names[r.index]);
        int rc = charge(&e->used, strlen(s), e->err);
        return rc ? rc : pb_pipedef__string_value(e->arena, s, strlen(s), out) ? nomem(e->err) : 0;
    }
    case REF_STEP: return eval_step_property(e, &r, g->str, g->len, out);
    case REF_PROPFILE: return eval_fail(e, "A property file can only be read through Std:JsonGet.");
    }
    return PB_EINTERNAL;
}

static int eval_join(pb_pipedef__eval *e, const pb_json *j, pb_pipedef_value *out)
{
    const pb_json *on = pb_json_get(j, "On"), *vals = pb_json_get(j, "Values");
    if (!on || on->type != PB_JSON_STRING || !vals || vals->type != PB_JSON_ARRAY)
        return eval_fail(e, "Std:Join needs a string On and a list Values.");
    pb_buf b;
    pb_buf_init(&b, PB_PIPEDEF_MAX_VALUE_BYTES);
    int rc = 0;
    for (size_t i = 0; i < vals->n && !rc; i++) {
        pb_pipedef_value v;
        if ((rc = pb_pipedef__eval_value(e, vals->items[i], &v)))
            break;
        if (v.kind == PB_PIPEDEF_VNULL) {
            rc = eval_fail(e, "Std:Join cannot join null (value %zu).", i);
            break;
        }
        size_t add = (i ? on->len : 0) + v.len;
        if (add > PB_PIPEDEF_MAX_VALUE_BYTES - b.len) {
            rc = eval_fail(e, "Std:Join produces more than %d bytes.", PB_PIPEDEF_MAX_VALUE_BYTES);
            break;
        }
        if ((i && (rc = pb_buf_append(&b, on->str, on->len))) || (rc = pb_buf_append(&b, v.str, v.len))) {
            rc = nomem(e->err); /* the cap was checked above */
            break;
        }
    }
    if (!rc)
        rc = charge(&e->used, b.len, e->err);
    if (!rc && pb_pipedef__string_value(e->arena, b.data ? b.data : "", b.len, out))
        rc = nomem(e->err);
    pb_buf_free(&b);
    return rc;
}

static int eval_jsonget(pb_pipedef__eval *e, const pb_json *j, pb_pipedef_value *out)
{
    const pb_json *pf = pb_json_get(j, "PropertyFile"), *path = pb_json_get(j, "Path");
    const pb_json *g = pb_json_get(pf, "Get");
    if (!g || g->type != PB_JSON_STRING || !path || path->type != PB_JSON_STRING)
        return eval_fail(e, "Std:JsonGet needs a PropertyFile {\"Get\": ...} and a string Path.");
    char why[512];
    ref r;
    if (parse_ref(e->def, g->str, g->len, &r, why, sizeof why))
        return eval_fail(e, "%s.", why);
    if (r.kind != REF_PROPFILE)
        return eval_fail(e, "The PropertyFile of a Std:JsonGet must name a property file.");
    const pb_pipedef_step *st = &e->def->steps[r.index];
    if (!e->ctx->read_property_file)
        return eval_fail(e, "Cannot read property file '%s' of step '%s' here.", r.pf->name, st->name);
    pb_buf b;
    pb_buf_init(&b, PB_PIPEDEF_MAX_PROPERTY_FILE_BYTES);
    pb_error cerr;
    pb_error_clear(&cerr);
    int rc = e->ctx->read_property_file(e->ctx->user, st, r.pf, &b, &cerr);
    if (rc) {
        if (cerr.code)
            pb_error_set(e->err, rc, "Cannot read property file '%s' of step '%s': %s", r.pf->name, st->name,
                         cerr.message);
        else
            pb_error_set(e->err, rc, "Cannot read property file '%s' of step '%s' (%s).", r.pf->name, st->name,
                         pb_error_default_message(rc));
        pb_buf_free(&b);
        return rc;
    }
    char *copy = NULL;
    if (!(rc = charge(&e->used, b.len, e->err)) && !(copy = pb_arena_memdup(e->arena, b.data ? b.data : "", b.len)))
        rc = nomem(e->err);
    size_t len = b.len;
    pb_buf_free(&b);
    if (rc)
        return rc;
    pb_json *doc = NULL;
    pb_error jerr;
    pb_error_clear(&jerr);
    pb_json_limits lim = {.max_bytes = PB_PIPEDEF_MAX_PROPERTY_FILE_BYTES, .max_depth = PB_PIPEDEF_MAX_DEPTH};
    rc = pb_json_parse(copy, len, &lim, e->arena, &doc, &jerr);
    if (rc == PB_ENOMEM)
        return nomem(e->err);
    if (rc) {
        const char *nl = strchr(jerr.message, '\n');
        return eval_fail(e, "Property file '%s' of step '%s' is not valid JSON: %.*s", r.pf->name, st->name,
                         (int)(nl ? (size_t)(nl - jerr.message) : strlen(jerr.message)), jerr.message);
    }
    const pb_json *v = walk(doc, path->str, path->len, false);
    if (!v) {
        char shown[128];
        pb_pipedef__show(shown, sizeof shown, path->str, path->len);
        return eval_fail(e, "Std:JsonGet: property file '%s' of step '%s' has nothing at path '%s'.", r.pf->name,
                         st->name, shown);
    }
    return from_json(e->arena, &e->used, v, out, e->err);
}

int pb_pipedef__eval_value(pb_pipedef__eval *e, const pb_json *v, pb_pipedef_value *out)
{
    if (!v)
        return eval_fail(e, "There is no value to evaluate.");
    if (!pb_pipedef__is_expr(v))
        return from_json(e->arena, &e->used, v, out, e->err);
    if (v->n != 1)
        return eval_fail(e, "An expression object must have exactly one member.");
    const pb_json_member *m = &v->members[0];
    if (mem_is(m->key, m->keylen, "Get"))
        return eval_get(e, m->value, out);
    if (mem_is(m->key, m->keylen, "Std:Join"))
        return eval_join(e, m->value, out);
    if (mem_is(m->key, m->keylen, "Std:JsonGet"))
        return eval_jsonget(e, m->value, out);
    return eval_fail(e, "Function '%.*s' is not supported.", (int)(m->keylen > 64 ? 64 : m->keylen), m->key);
}

static pb_pipedef__eval eval_state(const pb_pipedef *def, const pb_pipedef_ctx *ctx, pb_arena *arena, pb_error *err)
{
    return (pb_pipedef__eval){.def = def, .ctx = ctx, .arena = arena, .err = err};
}

int pb_pipedef_eval(const pb_pipedef *def, const pb_json *v, const pb_pipedef_ctx *ctx, pb_arena *arena,
                    pb_pipedef_value *out, pb_error *err)
{
    pb_pipedef__eval e = eval_state(def, ctx, arena, err);
    return pb_pipedef__eval_value(&e, v, out);
}

/* ------------------------------------------------------------- resolving -- */

static int value_to_json(pb_pipedef__eval *e, const pb_pipedef_value *v, const pb_json **out)
{
    if (v->kind == PB_PIPEDEF_VJSON && v->json) {
        *out = v->json; /* a copy in e->arena already */
        return 0;
    }
    pb_json_type t = v->kind == PB_PIPEDEF_VSTRING                                ? PB_JSON_STRING
                     : v->kind == PB_PIPEDEF_VINTEGER || v->kind == PB_PIPEDEF_VFLOAT ? PB_JSON_NUMBER
                     : v->kind == PB_PIPEDEF_VBOOLEAN                             ? (v->b ? PB_JSON_TRUE : PB_JSON_FALSE)
                                                                                  : PB_JSON_NULL;
    pb_json *n = new_node(e->arena, t);
    if (!n)
        return nomem(e->err);
    if (t == PB_JSON_STRING || t == PB_JSON_NUMBER) {
        /* a copy: a parameter's text lives in the arena of the bound args */
        int rc = charge(&e->used, v->len, e->err);
        if (rc)
            return rc;
        if (!(n->str = pb_arena_strndup(e->arena, v->str, v->len)))
            return nomem(e->err);
        n->len = v->len;
        n->num = v->f;
    }
    *out = n;
    return 0;
}

static int resolve(pb_pipedef__eval *e, const pb_json *v, const pb_json **out)
{
    if (pb_pipedef__is_expr(v)) {
        pb_pipedef_value val;
        int rc = pb_pipedef__eval_value(e, v, &val);
        return rc ? rc : value_to_json(e, &val, out);
    }
    if (v->type != PB_JSON_ARRAY && v->type != PB_JSON_OBJECT)
        return copy_json(e->arena, &e->used, v, 0, out, e->err);
    int rc = charge(&e->used, sizeof *v, e->err);
    pb_json *c = rc ? NULL : new_node(e->arena, v->type);
    if (rc)
        return rc;
    if (!c)
        return nomem(e->err);
    c->n = v->n;
    if (v->type == PB_JSON_ARRAY && v->n) {
        pb_json **items = pb_arena_alloc(e->arena, v->n * sizeof *items);
        if (!items)
            return nomem(e->err);
        for (size_t i = 0; i < v->n; i++) {
            const pb_json *item;
            if ((rc = resolve(e, v->items[i], &item)))
                return rc;
            items[i] = (pb_json *)item;
        }
        c->items = items;
    } else if (v->type == PB_JSON_OBJECT && v->n) {
        pb_json_member *mem = pb_arena_alloc(e->arena, v->n * sizeof *mem);
        if (!mem)
            return nomem(e->err);
        for (size_t i = 0; i < v->n; i++) {
            const pb_json_member *m = &v->members[i];
            if ((rc = charge(&e->used, sizeof *m + m->keylen, e->err)))
                return rc;
            if (!(mem[i].key = pb_arena_strndup(e->arena, m->key, m->keylen)))
                return nomem(e->err);
            mem[i].keylen = m->keylen;
            const pb_json *val;
            if ((rc = resolve(e, m->value, &val)))
                return rc;
            mem[i].value = (pb_json *)val;
        }
        c->members = mem;
    }
    *out = c;
    return 0;
}

int pb_pipedef_resolve(const pb_pipedef *def, const pb_json *v, const pb_pipedef_ctx *ctx, pb_arena *arena,
                       const pb_json **out, pb_error *err)
{
    pb_pipedef__eval e = eval_state(def, ctx, arena, err);
    *out = NULL;
    return resolve(&e, v, out);
}

/* ---------------------------------------------------------------- steps -- */

/* The text of a resolved scalar for argv / env; NULL for null and structures. */
static const char *scalar_text(const pb_json *v, size_t *len)
{
    switch (v->type) {
    case PB_JSON_STRING:
    case PB_JSON_NUMBER: *len = v->len; return v->str;
    case PB_JSON_TRUE: *len = 4; return "true";
    case PB_JSON_FALSE: *len = 5; return "false";
    default: return NULL;
    }
}

static int add_argv(pb_pipedef__eval *e, const pb_pipedef_step *st, const pb_json *list, const char *key,
                    size_t max, pb_pipedef_cmd *out)
{
    if (!list || list->type == PB_JSON_NULL)
        return 0;
    if (list->type != PB_JSON_ARRAY)
        return eval_fail(e, "%s of step '%s' must be a list.", key, st->name);
    if (list->n > max)
        return eval_fail(e, "%s of step '%s' has %zu items; SageMaker allows at most %zu.", key, st->name, list->n,
                         max);
    for (size_t i = 0; i < list->n; i++) {
        size_t len;
        const char *s = scalar_text(list->items[i], &len);
        if (!s)
            return eval_fail(e, "%s[%zu] of step '%s' evaluates to %s; it must be a string.", key, i, st->name,
                             pb_pipedef__kind_name(list->items[i]));
        size_t c = pb_pipedef__chars(s, len);
        if (c < 1 || c > 256)
            return eval_fail(e, "%s[%zu] of step '%s' is %zu characters long; SageMaker allows 1 to 256.", key, i,
                             st->name, c);
        if (memchr(s, '\0', len))
            return eval_fail(e, "%s[%zu] of step '%s' contains a NUL character.", key, i, st->name);
        if (!(out->argv[out->argc++] = pb_arena_strndup(e->arena, s, len)))
            return nomem(e->err);
    }
    return 0;
}

int pb_pipedef_command(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                       pb_arena *arena, pb_pipedef_cmd *out, pb_error *err)
{
    memset(out, 0, sizeof *out);
    pb_pipedef__eval e = eval_state(def, ctx, arena, err);
    if (step->type != PB_PIPEDEF_PROCESSING && step->type != PB_PIPEDEF_TRAINING)
        return eval_fail(&e, "Step '%s' is a %s step; it runs no process.", step->name,
                         pb_pipedef_step_type_name(step->type));
    bool proc = step->type == PB_PIPEDEF_PROCESSING;
    const pb_json *args;
    int rc = resolve(&e, step->arguments, &args);
    if (rc)
        return rc;
    const pb_json *spec = pb_json_get(args, proc ? "AppSpecification" : "AlgorithmSpecification");
    const pb_json *ep = pb_json_get(spec, "ContainerEntrypoint"), *ca = pb_json_get(spec, "ContainerArguments");
    if (!ep || ep->type != PB_JSON_ARRAY || ep->n == 0)
        return eval_fail(&e, "Step '%s' has no ContainerEntrypoint.", step->name);
    size_t total = ep->n + (ca && ca->type == PB_JSON_ARRAY ? ca->n : 0);
    if (!(out->argv = pb_arena_zalloc(arena, (total + 1) * sizeof *out->argv)))
        return nomem(err);
    if ((rc = add_argv(&e, step, ep, "ContainerEntrypoint", 100, out)) ||
        (rc = add_argv(&e, step, ca, "ContainerArguments", proc ? 256 : 100, out)))
        return rc;
    const pb_json *env = pb_json_get(args, "Environment");
    size_t maxlen = proc ? 256 : 512;
    if (env && env->type != PB_JSON_NULL) {
        if (env->type != PB_JSON_OBJECT || env->n > 100)
            return eval_fail(&e, "Environment of step '%s' must be a map of at most 100 variables.", step->name);
        if (!(out->env = pb_arena_zalloc(arena, (env->n + 1) * sizeof *out->env)))
            return nomem(err);
        for (size_t i = 0; i < env->n; i++) {
            const pb_json_member *m = &env->members[i];
            size_t len;
            const char *s = scalar_text(m->value, &len);
            char shown[80];
            pb_pipedef__show(shown, sizeof shown, m->key, m->keylen);
            if (!s)
                return eval_fail(&e, "Environment variable '%s' of step '%s' evaluates to %s; it must be a string.",
                                 shown, step->name, pb_pipedef__kind_name(m->value));
            if (pb_pipedef__chars(s, len) > maxlen)
                return eval_fail(&e, "Environment variable '%s' of step '%s' is longer than %zu characters.", shown,
                                 step->name, maxlen);
            if (memchr(s, '\0', len) || memchr(m->key, '\0', m->keylen) || memchr(m->key, '=', m->keylen))
                return eval_fail(&e, "Environment variable '%s' of step '%s' contains a NUL or '=' character.", shown,
                                 step->name);
            char *kv = pb_arena_alloc(arena, m->keylen + 1 + len + 1);
            if (!kv)
                return nomem(err);
            memcpy(kv, m->key, m->keylen);
            kv[m->keylen] = '=';
            memcpy(kv + m->keylen + 1, s, len);
            kv[m->keylen + 1 + len] = '\0';
            out->env[out->envc++] = kv;
        }
    }
    const pb_json *mr = pb_json_get(pb_json_get(args, "StoppingCondition"), "MaxRuntimeInSeconds");
    if (mr && mr->type != PB_JSON_NULL) {
        int64_t secs;
        if (mr->type != PB_JSON_NUMBER || !pb_pipedef__int_text(mr->str, mr->len, &secs) || secs < 1)
            return eval_fail(&e, "StoppingCondition.MaxRuntimeInSeconds of step '%s' must be a positive integer.",
                             step->name);
        out->max_runtime_seconds = secs;
    }
    out->arguments = args;
    return 0;
}

/* A value's text in arena ("" for null). */
static int text_of(pb_pipedef__eval *e, const pb_json *v, const char **out)
{
    pb_pipedef_value val;
    int rc = pb_pipedef__eval_value(e, v, &val);
    if (rc)
        return rc;
    if (!(*out = pb_arena_strndup(e->arena, val.str, val.len)))
        return nomem(e->err);
    return 0;
}

int pb_pipedef_fail_message(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                            pb_arena *arena, const char **out, pb_error *err)
{
    pb_pipedef__eval e = eval_state(def, ctx, arena, err);
    *out = "";
    if (step->type != PB_PIPEDEF_FAIL)
        return eval_fail(&e, "Step '%s' is not a Fail step.", step->name);
    return step->error_message ? text_of(&e, step->error_message, out) : 0;
}

int pb_pipedef_experiment(const pb_pipedef *def, const pb_pipedef_ctx *ctx, pb_arena *arena, const char **experiment,
                          const char **trial, pb_error *err)
{
    pb_pipedef__eval e = eval_state(def, ctx, arena, err);
    *experiment = *trial = NULL;
    int rc = 0;
    if (def->experiment_name)
        rc = text_of(&e, def->experiment_name, experiment);
    if (!rc && def->trial_name)
        rc = text_of(&e, def->trial_name, trial);
    return rc;
}
