/*
 * pipedef_cond.c — the conditions of Condition steps: parsing and evaluation.
 *
 * The operators are the SageMaker Python SDK's (§6.3): Equals, GreaterThan,
 * GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo (LeftValue, RightValue),
 * In (QueryValue, Values), Not (Expression) and Or (Conditions). The list in
 * Arguments.Conditions is ANDed. Comparisons are typed: Integer and Float
 * compare as numbers (1 equals 1.0), Strings byte by byte; Equals and In
 * between different kinds are simply false; ordering anything but two
 * numbers or two Strings is an error, which fails the step rather than
 * guessing.
 */
#include "pipedef_internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    pb_pipedef_cond_op op;
} ops[] = {
    {"Equals", PB_PIPEDEF_EQUALS},
    {"GreaterThan", PB_PIPEDEF_GREATER_THAN},
    {"GreaterThanOrEqualTo", PB_PIPEDEF_GREATER_THAN_OR_EQUAL_TO},
    {"LessThan", PB_PIPEDEF_LESS_THAN},
    {"LessThanOrEqualTo", PB_PIPEDEF_LESS_THAN_OR_EQUAL_TO},
    {"In", PB_PIPEDEF_IN},
    {"Not", PB_PIPEDEF_NOT},
    {"Or", PB_PIPEDEF_OR},
};

static const char *op_name(pb_pipedef_cond_op op)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i].op == op)
            return ops[i].name;
    return "?";
}

/* -------------------------------------------------------------- parsing -- */

static int parse_cond(pb_pipedef__parser *p, const pb_json *v, pb_pipedef_cond *c);

static int parse_list(pb_pipedef__parser *p, const pb_json *arr, const char *key, pb_pipedef_cond **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!arr)
        return pb_pipedef__fail(p, "The condition at '%s' has no %s.", p->path, key);
    size_t mark = pb_pipedef__push_key(p, key);
    int rc = 0;
    pb_pipedef_cond *list = NULL;
    if (arr->type != PB_JSON_ARRAY)
        rc = pb_pipedef__kind(p, arr, PB_JSON_ARRAY);
    else if (arr->n > PB_PIPEDEF_MAX_CONDITIONS)
        rc = pb_pipedef__fail(p, "Step '%s' has more than %d conditions.", p->cur->name, PB_PIPEDEF_MAX_CONDITIONS);
    else if (arr->n && !(list = pb_arena_zalloc(&p->def->arena, arr->n * sizeof *list)))
        rc = PB_ENOMEM;
    for (size_t i = 0; !rc && i < arr->n; i++) {
        size_t m2 = pb_pipedef__push_index(p, i);
        rc = parse_cond(p, arr->items[i], &list[i]);
        pb_pipedef__pop(p, m2);
    }
    pb_pipedef__pop(p, mark);
    if (!rc) {
        *out = list;
        *n = arr->n;
    }
    return rc;
}

/* A required operand (LeftValue, RightValue, QueryValue) at key. */
static int operand(pb_pipedef__parser *p, const pb_json *c, const char *key, const char *opname,
                   const pb_json **out)
{
    *out = pb_json_get(c, key);
    if (!*out)
        return pb_pipedef__fail(p, "Condition %s at '%s' has no %s.", opname, p->path, key);
    size_t mark = pb_pipedef__push_key(p, key);
    int rc = pb_pipedef__scan_operand(p, *out, key);
    pb_pipedef__pop(p, mark);
    return rc;
}

static int parse_cond(pb_pipedef__parser *p, const pb_json *v, pb_pipedef_cond *c)
{
    static const char *const cmp_fields[] = {"Type", "LeftValue", "RightValue", NULL};
    static const char *const in_fields[] = {"Type", "QueryValue", "Values", NULL};
    static const char *const not_fields[] = {"Type", "Expression", NULL};
    static const char *const or_fields[] = {"Type", "Conditions", NULL};
    if (++p->nconds > PB_PIPEDEF_MAX_CONDITIONS)
        return pb_pipedef__fail(p, "Step '%s' has more than %d conditions.", p->cur->name, PB_PIPEDEF_MAX_CONDITIONS);
    if (v->type != PB_JSON_OBJECT || pb_pipedef__is_expr(v))
        return pb_pipedef__kind(p, v, PB_JSON_OBJECT);
    const pb_json *t = pb_json_get(v, "Type");
    if (!t)
        return pb_pipedef__fail(p, "The condition at '%s' has no Type.", p->path);
    if (t->type != PB_JSON_STRING) {
        size_t mark = pb_pipedef__push_key(p, "Type");
        int rc = pb_pipedef__kind(p, t, PB_JSON_STRING);
        pb_pipedef__pop(p, mark);
        return rc;
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && !c->op; i++)
        if (t->len == strlen(ops[i].name) && !memcmp(t->str, ops[i].name, t->len))
            c->op = ops[i].op;
    char shown[80];
    pb_pipedef__show(shown, sizeof shown, t->str, t->len);
    if (!c->op && t->len == 9 && !memcmp(t->str, "NotEquals", 9))
        return pb_pipedef__fail(p, "Condition type NotEquals (at '%s') is not supported; write Not with an Equals "
                                   "Expression, as the SageMaker Python SDK does.", p->path);
    if (!c->op)
        return pb_pipedef__fail(p,
                                "Condition type '%s' at '%s' is not valid; the types are Equals, GreaterThan, "
                                "GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, In, Not and Or.",
                                shown, p->path);
    int rc;
    switch (c->op) {
    case PB_PIPEDEF_IN: {
        if ((rc = pb_pipedef__check_fields(p, v, in_fields, "an In condition")) ||
            (rc = operand(p, v, "QueryValue", "In", &c->query)))
            return rc;
        const pb_json *vals = pb_json_get(v, "Values");
        if (!vals)
            return pb_pipedef__fail(p, "Condition In at '%s' has no Values.", p->path);
        size_t mark = pb_pipedef__push_key(p, "Values");
        if (vals->type != PB_JSON_ARRAY)
            rc = pb_pipedef__kind(p, vals, PB_JSON_ARRAY);
        else if ((p->nconds += vals->n) > PB_PIPEDEF_MAX_CONDITIONS)
            rc = pb_pipedef__fail(p, "Step '%s' has more than %d condition values.", p->cur->name,
                                  PB_PIPEDEF_MAX_CONDITIONS);
        for (size_t i = 0; !rc && i < vals->n; i++) {
            size_t m2 = pb_pipedef__push_index(p, i);
            rc = pb_pipedef__scan_operand(p, vals->items[i], "An In value");
            pb_pipedef__pop(p, m2);
        }
        pb_pipedef__pop(p, mark);
        c->values = (const pb_json *const *)vals->items;
        c->nvalues = vals->n;
        return rc;
    }
    case PB_PIPEDEF_NOT: {
        if ((rc = pb_pipedef__check_fields(p, v, not_fields, "a Not condition")))
            return rc;
        const pb_json *x = pb_json_get(v, "Expression");
        if (!x)
            return pb_pipedef__fail(p, "Condition Not at '%s' has no Expression.", p->path);
        pb_pipedef_cond *sub = pb_arena_zalloc(&p->def->arena, sizeof *sub);
        if (!sub)
            return PB_ENOMEM;
        size_t mark = pb_pipedef__push_key(p, "Expression");
        rc = parse_cond(p, x, sub);
        pb_pipedef__pop(p, mark);
        c->sub = sub;
        c->nsub = 1;
        return rc;
    }
    case PB_PIPEDEF_OR: {
        if ((rc = pb_pipedef__check_fields(p, v, or_fields, "an Or condition")))
            return rc;
        pb_pipedef_cond *list;
        rc = parse_list(p, pb_json_get(v, "Conditions"), "Conditions", &list, &c->nsub);
        c->sub = list;
        return rc;
    }
    default:
        if ((rc = pb_pipedef__check_fields(p, v, cmp_fields, "a comparison")) ||
            (rc = operand(p, v, "LeftValue", op_name(c->op), &c->left)) ||
            (rc = operand(p, v, "RightValue", op_name(c->op), &c->right)))
            return rc;
        return 0;
    }
}

int pb_pipedef__parse_conditions(pb_pipedef__parser *p, const pb_json *arr, pb_pipedef_step *step)
{
    if (!arr)
        return pb_pipedef__fail(p, "Condition step '%s' has no Arguments.Conditions.", step->name);
    if (arr->type != PB_JSON_ARRAY)
        return pb_pipedef__kind(p, arr, PB_JSON_ARRAY);
    if (arr->n > PB_PIPEDEF_MAX_CONDITIONS)
        return pb_pipedef__fail(p, "Step '%s' has more than %d conditions.", step->name, PB_PIPEDEF_MAX_CONDITIONS);
    pb_pipedef_cond *list = arr->n ? pb_arena_zalloc(&p->def->arena, arr->n * sizeof *list) : NULL;
    if (arr->n && !list)
        return PB_ENOMEM;
    for (size_t i = 0; i < arr->n; i++) {
        size_t mark = pb_pipedef__push_index(p, i);
        int rc = parse_cond(p, arr->items[i], &list[i]);
        pb_pipedef__pop(p, mark);
        if (rc)
            return rc;
    }
    step->conditions = list;
    step->nconditions = arr->n;
    return 0;
}

/* ----------------------------------------------------------- comparing -- */

static bool numeric(const pb_pipedef_value *v)
{
    return v->kind == PB_PIPEDEF_VINTEGER || v->kind == PB_PIPEDEF_VFLOAT;
}

/* Compares two numbers exactly (an int64 and a double included). */
static int num_cmp(const pb_pipedef_value *a, const pb_pipedef_value *b)
{
    if (a->kind == PB_PIPEDEF_VINTEGER && b->kind == PB_PIPEDEF_VINTEGER)
        return (a->i > b->i) - (a->i < b->i);
    long double x = a->kind == PB_PIPEDEF_VINTEGER ? (long double)a->i : (long double)a->f;
    long double y = b->kind == PB_PIPEDEF_VINTEGER ? (long double)b->i : (long double)b->f;
    return (x > y) - (x < y);
}

static int bytes_cmp(const pb_pipedef_value *a, const pb_pipedef_value *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->str, b->str, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return (a->len > b->len) - (a->len < b->len);
}

bool pb_pipedef__equal(const pb_pipedef_value *a, const pb_pipedef_value *b)
{
    if (numeric(a) && numeric(b))
        return num_cmp(a, b) == 0;
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case PB_PIPEDEF_VNULL: return true;
    case PB_PIPEDEF_VBOOLEAN: return a->b == b->b;
    case PB_PIPEDEF_VSTRING:
    case PB_PIPEDEF_VJSON: return bytes_cmp(a, b) == 0;
    default: return false;
    }
}

/* A value for a message: Strings quoted, the rest as their text. */
static void show_value(char *dst, size_t cap, const pb_pipedef_value *v)
{
    char t[72];
    pb_pipedef__show(t, sizeof t, v->str ? v->str : "", v->str ? v->len : 0);
    snprintf(dst, cap, v->kind == PB_PIPEDEF_VSTRING ? "'%s'" : "%s", v->kind == PB_PIPEDEF_VNULL ? "null" : t);
}

int pb_pipedef__compare(const pb_pipedef_value *a, const pb_pipedef_value *b, int *cmp, pb_error *err)
{
    if (numeric(a) && numeric(b)) {
        *cmp = num_cmp(a, b);
        return 0;
    }
    if (a->kind == PB_PIPEDEF_VSTRING && b->kind == PB_PIPEDEF_VSTRING) {
        *cmp = bytes_cmp(a, b);
        return 0;
    }
    char sa[80], sb[80];
    show_value(sa, sizeof sa, a);
    show_value(sb, sizeof sb, b);
    return pb_error_set(err, PB_EVALIDATION, "cannot compare %s %s with %s %s", pb_pipedef__vkind_name(a->kind), sa,
                        pb_pipedef__vkind_name(b->kind), sb);
}

/* ----------------------------------------------------------- evaluating -- */

static int eval_cond(pb_pipedef__eval *e, const pb_pipedef_step *st, const pb_pipedef_cond *c, bool *res)
{
    pb_pipedef_value a, b;
    int rc;
    switch (c->op) {
    case PB_PIPEDEF_NOT:
        if (c->nsub != 1)
            return pb_error_set(e->err, PB_EVALIDATION, "Condition Not of step '%s' has no Expression.", st->name);
        rc = eval_cond(e, st, &c->sub[0], res);
        *res = !*res;
        return rc;
    case PB_PIPEDEF_OR:
        *res = false;
        for (size_t i = 0; i < c->nsub && !*res; i++)
            if ((rc = eval_cond(e, st, &c->sub[i], res)))
                return rc;
        return 0;
    case PB_PIPEDEF_IN:
        *res = false;
        if ((rc = pb_pipedef__eval_value(e, c->query, &a)))
            return rc;
        for (size_t i = 0; i < c->nvalues && !*res; i++) {
            if ((rc = pb_pipedef__eval_value(e, c->values[i], &b)))
                return rc;
            *res = pb_pipedef__equal(&a, &b);
        }
        return 0;
    default:
        break;
    }
    if ((rc = pb_pipedef__eval_value(e, c->left, &a)) || (rc = pb_pipedef__eval_value(e, c->right, &b)))
        return rc;
    if (c->op == PB_PIPEDEF_EQUALS) {
        *res = pb_pipedef__equal(&a, &b);
        return 0;
    }
    int cmp;
    pb_error cerr;
    pb_error_clear(&cerr);
    if (pb_pipedef__compare(&a, &b, &cmp, &cerr))
        return pb_error_set(e->err, PB_EVALIDATION, "Condition %s of step '%s' %s.", op_name(c->op), st->name,
                            cerr.message);
    switch (c->op) {
    case PB_PIPEDEF_GREATER_THAN: *res = cmp > 0; break;
    case PB_PIPEDEF_GREATER_THAN_OR_EQUAL_TO: *res = cmp >= 0; break;
    case PB_PIPEDEF_LESS_THAN: *res = cmp < 0; break;
    case PB_PIPEDEF_LESS_THAN_OR_EQUAL_TO: *res = cmp <= 0; break;
    default: return PB_EINTERNAL;
    }
    return 0;
}

int pb_pipedef_conditions(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                          pb_arena *arena, bool *outcome, pb_error *err)
{
    pb_pipedef__eval e = {.def = def, .ctx = ctx, .arena = arena, .err = err};
    *outcome = false;
    if (step->type != PB_PIPEDEF_CONDITION)
        return pb_error_set(err, PB_EVALIDATION, "Step '%s' is not a Condition step.", step->name);
    bool all = true;
    for (size_t i = 0; i < step->nconditions && all; i++) {
        int rc = eval_cond(&e, step, &step->conditions[i], &all);
        if (rc)
            return rc;
    }
    *outcome = all;
    return 0;
}
