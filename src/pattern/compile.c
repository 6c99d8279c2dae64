/*
 * compile.c — pattern text to a validated, expanded pb_pattern.
 *
 * Parsing follows the pattern document in order, so that when a pattern has
 * several mistakes the one reported is the first, as EventBridge reports it.
 * Each leaf array becomes a pb_field (a disjunction of pb_cond); each `$or`
 * multiplies the conjunctions built so far by the union of its branches,
 * refusing to go past PB_PATTERN_MAX_COMBINATIONS. Within one conjunction a
 * path named twice (a repeated key, or "a.b" next to a -> b) keeps the last
 * occurrence, as a repeated key does in EventBridge.
 */
#include "pattern_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON "Event pattern is not valid. Reason: "
/* AWS documents the 1000-combination limit but not its message: our wording. */
#define TOO_MANY_COMBINATIONS "Rule is too complex - the $or expressions expand to more than 1000 combinations"

typedef struct conj {
    size_t n, cap;
    pb_field **f;
} conj;

typedef struct conjs {
    size_t n;
    conj *v;
} conjs;

typedef struct compiler {
    pb_pattern *p;
    pb_error *err;
    unsigned order;
} compiler;

static int perr(compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(compiler *c, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return pb_error_set(c->err, PB_EPATTERN, REASON "%s", reason);
}

static int oom(compiler *c) { return pb_error_set(c->err, PB_ENOMEM, "out of memory"); }

/* ------------------------------------------------------ canonical keys -- */

/* Appends to a small growable key in the arena via pb_buf, then copies. */
static int key_finish(compiler *c, pb_buf *b, const char **key, size_t *len)
{
    *key = pb_arena_memdup(&c->p->arena, b->data ? b->data : "", b->len);
    *len = b->len;
    pb_buf_free(b);
    return *key ? 0 : oom(c);
}

static int key_str(pb_buf *b, const char *s, size_t n)
{
    uint32_t l = (uint32_t)n;
    int rc = pb_buf_append(b, &l, sizeof l);
    return rc ? rc : pb_buf_append(b, s, n);
}

static double norm_zero(double d) { return d == 0 ? 0.0 : d; }

static int cmp_strv(const void *a, const void *b)
{
    const pb_strv *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->s, y->s, m);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cond_key(compiler *c, pb_cond *k)
{
    pb_buf b;
    pb_buf_init(&b, 0);
    unsigned char kind = (unsigned char)k->kind;
    int rc = pb_buf_append(&b, &kind, 1);
    switch (k->kind) {
    case PB_C_NUM: {
        double d = norm_zero(k->num);
        rc = rc ? rc : pb_buf_append(&b, &d, sizeof d);
        break;
    }
    case PB_C_RANGE: {
        double lo = norm_zero(k->lo), hi = norm_zero(k->hi);
        char f[2] = {(char)k->lo_incl, (char)k->hi_incl};
        rc = rc ? rc : pb_buf_append(&b, &lo, sizeof lo);
        rc = rc ? rc : pb_buf_append(&b, &hi, sizeof hi);
        rc = rc ? rc : pb_buf_append(&b, f, 2);
        break;
    }
    case PB_C_CIDR: {
        char f[2] = {(char)k->cidr.family, (char)k->cidr.bits};
        rc = rc ? rc : pb_buf_append(&b, f, 2);
        rc = rc ? rc : pb_buf_append(&b, k->cidr.addr, 16);
        break;
    }
    case PB_C_AB_NUM:
        qsort(k->nums, k->nlist, sizeof *k->nums, cmp_double);
        for (size_t i = 0; i < k->nlist && !rc; i++) {
            double d = norm_zero(k->nums[i]);
            rc = pb_buf_append(&b, &d, sizeof d);
        }
        break;
    case PB_C_AB_STR:
    case PB_C_AB_PREFIX:
    case PB_C_AB_SUFFIX:
    case PB_C_AB_EIC:
    case PB_C_AB_WILDCARD:
        qsort(k->strs, k->nlist, sizeof *k->strs, cmp_strv);
        for (size_t i = 0; i < k->nlist && !rc; i++)
            rc = key_str(&b, k->strs[i].s, k->strs[i].len);
        break;
    case PB_C_TRUE:
    case PB_C_FALSE:
    case PB_C_NULL:
    case PB_C_EXISTS:
    case PB_C_ABSENT:
        break;
    default:
        rc = rc ? rc : key_str(&b, k->str, k->len);
    }
    if (rc) {
        pb_buf_free(&b);
        return oom(c);
    }
    return key_finish(c, &b, &k->key, &k->keylen);
}

static int cmp_cond(const void *a, const void *b)
{
    const pb_cond *x = a, *y = b;
    size_t m = x->keylen < y->keylen ? x->keylen : y->keylen;
    int r = memcmp(x->key, y->key, m);
    return r ? r : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

/* ------------------------------------------------------------ operators -- */

/* Field names aws/event-ruler reserves inside `$or`. */
static const char *const operator_names[] = {
    "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard", "numeric", "cidr",
    "html", "=", "<", "<=", ">", ">=", "regex", "not-wildcard", "not-equals-ignore-case", "date-after",
    "date-on-or-after", "date-before", "date-on-or-before", "in-date-range", "ip-address-in-range",
    "ip-address-not-in-range"};

static bool is_operator_name(const char *k, size_t n)
{
    for (size_t i = 0; i < sizeof operator_names / sizeof *operator_names; i++)
        if (strlen(operator_names[i]) == n && memcmp(operator_names[i], k, n) == 0)
            return true;
    return false;
}

static int fold_into(compiler *c, const char *s, size_t n, const char **out, size_t *outlen)
{
    char *buf = pb_arena_alloc(&c->p->arena, 3 * n + 4);
    if (!buf)
        return oom(c);
    *outlen = pb_casefold(s, n, buf);
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

static bool is_num(const pb_json *v) { return v && v->type == PB_JSON_NUMBER; }
static bool is_str(const pb_json *v) { return v && v->type == PB_JSON_STRING; }

static int numeric_op(const pb_json *v, const char **name)
{
    static const char *const ops[] = {"=", "<", "<=", ">", ">="};
    if (!is_str(v))
        return -1;
    for (int i = 0; i < 5; i++)
        if (strlen(ops[i]) == v->len && memcmp(ops[i], v->str, v->len) == 0) {
            *name = ops[i];
            return i;
        }
    return -1;
}

/* Jackson's text of a token, for "Invalid member in numeric match: X". */
static void token_text(const pb_json *v, char *out, size_t n)
{
    switch (v->type) {
    case PB_JSON_OBJECT: snprintf(out, n, "{"); break;
    case PB_JSON_ARRAY: snprintf(out, n, "["); break;
    case PB_JSON_NULL: snprintf(out, n, "null"); break;
    case PB_JSON_TRUE: snprintf(out, n, "true"); break;
    case PB_JSON_FALSE: snprintf(out, n, "false"); break;
    default: snprintf(out, n, "%.*s", (int)(v->len > 200 ? 200 : v->len), v->str);
    }
}

/* Follows aws/event-ruler's token-by-token reading of a numeric expression,
 * so each mistake gets the message EventBridge gives it. */
static int parse_numeric(compiler *c, const pb_json *v, pb_cond *k)
{
    char t[256];
    if (v->type != PB_JSON_ARRAY)
        return perr(c, "Value of numeric must be an array.");
    if (v->n == 0)
        return perr(c, "Invalid member in numeric match: ]");
    const char *op = NULL;
    int o = numeric_op(v->items[0], &op);
    if (!is_str(v->items[0])) {
        token_text(v->items[0], t, sizeof t);
        return perr(c, "Invalid member in numeric match: %s", t);
    }
    if (o < 0)
        return perr(c, "Unrecognized numeric range operator: %.*s", (int)(v->items[0]->len > 200 ? 200 : v->items[0]->len),
                    v->items[0]->str);
    const char *opname = o == 0 ? "equals" : op;
    if (v->n < 2 || !is_num(v->items[1]))
        return perr(c, "Value of %s must be numeric", opname);
    double d = v->items[1]->num;
    k->kind = PB_C_RANGE;
    k->lo = -INFINITY;
    k->hi = INFINITY;
    k->lo_incl = k->hi_incl = false;
    if (o == 0) {
        if (v->n > 2)
            return perr(c, "Too many elements in numeric expression");
        k->kind = PB_C_NUM;
        k->num = d;
        return 0;
    }
    if (o == 1 || o == 2) { /* < <= : upper bound only */
        if (v->n > 2)
            return perr(c, "Too many elements in numeric expression");
        k->hi = d;
        k->hi_incl = o == 2;
        return 0;
    }
    k->lo = d; /* > >= */
    k->lo_incl = o == 4;
    if (v->n == 2)
        return 0;
    if (!is_str(v->items[2])) {
        token_text(v->items[2], t, sizeof t);
        return perr(c, "Bad value in numeric range: %s", t);
    }
    int o2 = numeric_op(v->items[2], &op);
    if (o2 != 1 && o2 != 2)
        return perr(c, "Bad numeric range operator: %.*s", (int)(v->items[2]->len > 200 ? 200 : v->items[2]->len),
                    v->items[2]->str);
    if (v->n < 4 || !is_num(v->items[3]))
        return perr(c, "Value of %s must be numeric", op);
    if (v->n > 4)
        return perr(c, "Too many terms in numeric range expression");
    k->hi = v->items[3]->num;
    k->hi_incl = o2 == 2;
    if (!(k->lo < k->hi))
        return perr(c, "Bottom must be less than top");
    return 0;
}

static int string_list(compiler *c, const pb_json *v, pb_cond *k, bool fold)
{
    size_t n = v->type == PB_JSON_ARRAY ? v->n : 1;
    k->strs = pb_arena_zalloc(&c->p->arena, (n ? n : 1) * sizeof *k->strs);
    if (!k->strs)
        return oom(c);
    k->nlist = n;
    for (size_t i = 0; i < n; i++) {
        const pb_json *e = v->type == PB_JSON_ARRAY ? v->items[i] : v;
        if (fold) {
            int rc = fold_into(c, e->str, e->len, &k->strs[i].s, &k->strs[i].len);
            if (rc)
                return rc;
        } else {
            k->strs[i].s = e->str;
            k->strs[i].len = e->len;
        }
    }
    return 0;
}

#define TOO_MANY_NUMERIC "Too many elements in numeric expression" /* sic: Ruler's text */
#define AB_EIC_TYPE "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."

/* A string or a non-empty list of strings, each checked by check(). */
static int ab_strings(compiler *c, const pb_json *a, const char *type_msg, bool nonempty, bool wildcard)
{
    size_t n = a->type == PB_JSON_ARRAY ? a->n : 1;
    if (a->type == PB_JSON_OBJECT)
        return perr(c, "Value of anything-but must be an array or single string/number value.");
    for (size_t i = 0; i < n; i++) {
        const pb_json *e = a->type == PB_JSON_ARRAY ? a->items[i] : a;
        if (!is_str(e))
            return perr(c, "%s", type_msg);
        if (nonempty && e->len == 0)
            return perr(c, "Null prefix/suffix not allowed");
        if (wildcard) {
            int rc = pb_wildcard_validate(e->str, e->len, c->err);
            if (rc)
                return rc;
        }
    }
    if (n == 0)
        return perr(c, "Empty arrays are not allowed");
    return 0;
}

static int parse_anything_but(compiler *c, const pb_json *v, pb_cond *k)
{
    switch (v->type) {
    case PB_JSON_STRING:
        k->kind = PB_C_AB_STR;
        return string_list(c, v, k, false);
    case PB_JSON_NUMBER:
        k->kind = PB_C_AB_NUM;
        k->nums = pb_arena_alloc(&c->p->arena, sizeof(double));
        if (!k->nums)
            return oom(c);
        k->nums[0] = v->num;
        k->nlist = 1;
        return 0;
    case PB_JSON_ARRAY: {
        bool strs = false, nums = false;
        for (size_t i = 0; i < v->n; i++) {
            pb_json_type t = v->items[i]->type;
            if (t == PB_JSON_STRING)
                strs = true;
            else if (t == PB_JSON_NUMBER)
                nums = true;
            else
                return perr(c, "Inside anything but list, start|null|boolean is not supported.");
        }
        if (strs == nums) /* mixed, or empty */
            return perr(c, "Inside anything but list, either all values are number or string, mixed type is not "
                           "supported");
        if (strs) {
            k->kind = PB_C_AB_STR;
            return string_list(c, v, k, false);
        }
        k->kind = PB_C_AB_NUM;
        k->nums = pb_arena_alloc(&c->p->arena, v->n * sizeof(double));
        if (!k->nums)
            return oom(c);
        for (size_t i = 0; i < v->n; i++)
            k->nums[i] = v->items[i]->num;
        k->nlist = v->n;
        return 0;
    }
    case PB_JSON_OBJECT: {
        if (v->n == 0)
            return perr(c, "Anything-But expression name not found");
        const char *op = v->members[0].key;
        size_t opl = v->members[0].keylen;
        const pb_json *a = v->members[0].value;
        int rc;
        if (opl == 6 && (!memcmp(op, "prefix", 6) || !memcmp(op, "suffix", 6))) {
            k->kind = op[0] == 'p' ? PB_C_AB_PREFIX : PB_C_AB_SUFFIX;
            rc = ab_strings(c, a, "prefix/suffix match pattern must be a string", true, false);
        } else if (opl == 18 && !memcmp(op, "equals-ignore-case", 18)) {
            k->kind = PB_C_AB_EIC;
            rc = ab_strings(c, a, AB_EIC_TYPE, false, false);
        } else if (opl == 8 && !memcmp(op, "wildcard", 8)) {
            k->kind = PB_C_AB_WILDCARD;
            rc = ab_strings(c, a, "wildcard match pattern must be a string", false, true);
        } else {
            return perr(c, "Unsupported anything-but pattern: %.*s", (int)(opl > 200 ? 200 : opl), op);
        }
        if (rc)
            return rc;
        if (v->n > 1)
            return perr(c, TOO_MANY_NUMERIC);
        return string_list(c, a, k, k->kind == PB_C_AB_EIC);
    }
    default:
        return perr(c, "Value of anything-but must be an array or single string/number value.");
    }
}

static int parse_string_op(compiler *c, const char *name, const char *Name, const pb_json *a, pb_cond_kind plain,
                           pb_cond_kind folded, pb_cond *k)
{
    if (is_str(a)) {
        k->kind = plain;
        k->str = a->str;
        k->len = a->len;
        return 0;
    }
    if (a->type != PB_JSON_OBJECT)
        return perr(c, "%s match pattern must be a string", name);
    if (a->n == 0)
        return perr(c, "%s expression name not found", Name);
    const pb_json_member *m = &a->members[0];
    if (m->keylen != 18 || memcmp(m->key, "equals-ignore-case", 18))
        return perr(c, "Unsupported %s pattern: %.*s", name, (int)(m->keylen > 200 ? 200 : m->keylen), m->key);
    if (!is_str(m->value))
        return perr(c, "equals-ignore-case match pattern must be a string");
    if (a->n > 1)
        return perr(c, "Only one key allowed in match expression");
    k->kind = folded;
    return fold_into(c, m->value->str, m->value->len, &k->str, &k->len);
}

static int parse_operator(compiler *c, const pb_json *e, pb_cond *k)
{
    if (e->n == 0)
        return perr(c, "Match expression name not found");
    const char *op = e->members[0].key;
    size_t opl = e->members[0].keylen;
    const pb_json *a = e->members[0].value;
    const char *extra = "Only one key allowed in match expression";
    int rc;
#define IS(lit) (opl == sizeof(lit) - 1 && !memcmp(op, lit, sizeof(lit) - 1))
    if (IS("exactly")) {
        if (!is_str(a))
            return perr(c, "exact match pattern must be a string");
        k->kind = PB_C_STR;
        k->str = a->str;
        k->len = a->len;
        rc = 0;
    } else if (IS("prefix")) {
        rc = parse_string_op(c, "prefix", "Prefix", a, PB_C_PREFIX, PB_C_PREFIX_EIC, k);
    } else if (IS("suffix")) {
        rc = parse_string_op(c, "suffix", "Suffix", a, PB_C_SUFFIX, PB_C_SUFFIX_EIC, k);
    } else if (IS("equals-ignore-case")) {
        if (!is_str(a))
            return perr(c, "equals-ignore-case match pattern must be a string");
        k->kind = PB_C_EIC;
        rc = fold_into(c, a->str, a->len, &k->str, &k->len);
    } else if (IS("wildcard")) {
        if (!is_str(a))
            return perr(c, "wildcard match pattern must be a string");
        rc = pb_wildcard_validate(a->str, a->len, c->err);
        k->kind = PB_C_WILDCARD;
        k->str = a->str;
        k->len = a->len;
    } else if (IS("anything-but")) {
        rc = parse_anything_but(c, a, k);
        extra = TOO_MANY_NUMERIC;
    } else if (IS("numeric")) {
        rc = parse_numeric(c, a, k);
        extra = TOO_MANY_NUMERIC;
    } else if (IS("exists")) {
        if (a->type != PB_JSON_TRUE && a->type != PB_JSON_FALSE)
            return perr(c, "exists match pattern must be either true or false.");
        k->kind = a->type == PB_JSON_TRUE ? PB_C_EXISTS : PB_C_ABSENT;
        rc = 0;
    } else if (IS("cidr")) {
        if (!is_str(a))
            return perr(c, "prefix match pattern must be a string");
        k->kind = PB_C_CIDR;
        k->str = a->str;
        k->len = a->len;
        char reason[256];
        if (pb_cidr_parse(a->str, a->len, &k->cidr, reason, sizeof reason))
            return perr(c, "%s", reason);
        rc = 0;
    } else {
        return perr(c, "Unrecognized match type %.*s", (int)(opl > 200 ? 200 : opl), op);
    }
#undef IS
    if (rc)
        return rc;
    if (e->n > 1)
        return perr(c, "%s", extra);
    return 0;
}

static int parse_element(compiler *c, const pb_json *e, pb_cond *k)
{
    memset(k, 0, sizeof *k);
    switch (e->type) {
    case PB_JSON_STRING:
        k->kind = PB_C_STR;
        k->str = e->str;
        k->len = e->len;
        /* As in EventBridge, a string that is an IP address matches that
         * address in any of its spellings: it becomes a one-address block. */
        if (pb_ip_parse(e->str, e->len, &k->cidr.family, k->cidr.addr) == 0) {
            k->kind = PB_C_CIDR;
            k->cidr.bits = k->cidr.family == 4 ? 32 : 128;
        }
        return 0;
    case PB_JSON_NUMBER:
        k->kind = PB_C_NUM;
        k->num = e->num;
        return 0;
    case PB_JSON_TRUE: k->kind = PB_C_TRUE; return 0;
    case PB_JSON_FALSE: k->kind = PB_C_FALSE; return 0;
    case PB_JSON_NULL: k->kind = PB_C_NULL; return 0;
    case PB_JSON_OBJECT: return parse_operator(c, e, k);
    case PB_JSON_ARRAY:
        return perr(c, "Match value must be String, number, true, false, or null");
    }
    return PB_EINTERNAL;
}

/* --------------------------------------------------------------- fields -- */

static int parse_leaf(compiler *c, const char *path, size_t pathlen, const pb_json *arr, pb_field **out)
{
    if (arr->n == 0)
        return perr(c, "Empty arrays are not allowed");
    pb_field *f = pb_arena_zalloc(&c->p->arena, sizeof *f);
    pb_cond *conds = pb_arena_zalloc(&c->p->arena, arr->n * sizeof *conds);
    if (!f || !conds)
        return oom(c);
    for (size_t i = 0; i < arr->n; i++) {
        int rc = parse_element(c, arr->items[i], &conds[i]);
        if (rc)
            return rc;
        rc = cond_key(c, &conds[i]);
        if (rc)
            return rc;
    }
    qsort(conds, arr->n, sizeof *conds, cmp_cond);
    size_t n = 0;
    for (size_t i = 0; i < arr->n; i++)
        if (n == 0 || cmp_cond(&conds[n - 1], &conds[i]) != 0)
            conds[n++] = conds[i];
    pb_buf b;
    pb_buf_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = key_str(&b, conds[i].key, conds[i].keylen);
        if (conds[i].kind == PB_C_ABSENT)
            f->has_absent = true;
    }
    if (rc) {
        pb_buf_free(&b);
        return oom(c);
    }
    rc = key_finish(c, &b, &f->setkey, &f->setkeylen);
    if (rc)
        return rc;
    f->path = path;
    f->pathlen = pathlen;
    f->conds = conds;
    f->ncond = n;
    f->src = arr;
    f->order = c->order++;
    *out = f;
    return 0;
}

/* ---------------------------------------------------------- conjunctions -- */

static int conj_push(compiler *c, conj *j, pb_field *f)
{
    if (j->n == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 4;
        pb_field **nf = pb_arena_alloc(&c->p->arena, nc * sizeof *nf);
        if (!nf)
            return oom(c);
        if (j->n)
            memcpy(nf, j->f, j->n * sizeof *nf);
        j->f = nf;
        j->cap = nc;
    }
    j->f[j->n++] = f;
    return 0;
}

/* a := a x b (every conjunction of a joined with every one of b). */
static int product(compiler *c, conjs *a, const conjs *b)
{
    size_t n = a->n * b->n;
    if (b->n && n / b->n != a->n)
        n = SIZE_MAX;
    if (n > PB_PATTERN_MAX_COMBINATIONS)
        return perr(c, TOO_MANY_COMBINATIONS);
    conj *v = pb_arena_zalloc(&c->p->arena, (n ? n : 1) * sizeof *v);
    if (!v)
        return oom(c);
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++, w++) {
            for (size_t k = 0; k < a->v[i].n; k++)
                if (conj_push(c, &v[w], a->v[i].f[k]))
                    return PB_ENOMEM;
            for (size_t k = 0; k < b->v[j].n; k++)
                if (conj_push(c, &v[w], b->v[j].f[k]))
                    return PB_ENOMEM;
        }
    a->v = v;
    a->n = n;
    return 0;
}

static int parse_object(compiler *c, const pb_json *obj, const char *prefix, size_t prefixlen, bool in_or,
                        conjs *out);

/* prefix is NULL at the top level; an empty key below it still adds a dot
 * ({"": {"a": ...}} is the path ".a", as in EventBridge). */
static int join_path(compiler *c, const char *prefix, size_t pl, const char *key, size_t kl, const char **path,
                     size_t *len)
{
    size_t n = prefix ? pl + 1 + kl : kl;
    char *p = pb_arena_alloc(&c->p->arena, n + 1);
    if (!p)
        return oom(c);
    if (prefix) {
        memcpy(p, prefix, pl);
        p[pl] = '.';
        memcpy(p + pl + 1, key, kl);
    } else {
        memcpy(p, key, kl);
    }
    p[n] = '\0';
    *path = p;
    *len = n;
    return 0;
}

static bool overridden(const pb_json *obj, size_t i)
{
    for (size_t j = i + 1; j < obj->n; j++)
        if (obj->members[j].keylen == obj->members[i].keylen &&
            !memcmp(obj->members[j].key, obj->members[i].key, obj->members[i].keylen))
            return true;
    return false;
}

static int parse_object(compiler *c, const pb_json *obj, const char *prefix, size_t prefixlen, bool in_or,
                        conjs *out)
{
    if (obj->n == 0)
        return perr(c, "Empty objects are not allowed");
    conjs acc = {.n = 1, .v = pb_arena_zalloc(&c->p->arena, sizeof(conj))};
    if (!acc.v)
        return oom(c);
    for (size_t i = 0; i < obj->n; i++) {
        const char *key = obj->members[i].key;
        size_t kl = obj->members[i].keylen;
        const pb_json *val = obj->members[i].value;
        conjs sub = {0};
        int rc;
        if (in_or && is_operator_name(key, kl))
            return perr(c, "%.*s is Ruler reserved fieldName which cannot be used inside $or.", (int)kl, key);
        if (kl == 3 && !memcmp(key, "$or", 3)) {
            if (val->type != PB_JSON_ARRAY)
                return perr(c, "It must be an Array followed with $or.");
            size_t total = 0;
            conjs *branches = pb_arena_zalloc(&c->p->arena, (val->n ? val->n : 1) * sizeof *branches);
            if (!branches)
                return oom(c);
            for (size_t b = 0; b < val->n; b++) {
                if (val->items[b]->type != PB_JSON_OBJECT)
                    return perr(c, "Only JSON object is allowed in array of $or relationship.");
                rc = parse_object(c, val->items[b], prefix, prefixlen, true, &branches[b]);
                if (rc)
                    return rc;
                total += branches[b].n;
                if (total > PB_PATTERN_MAX_COMBINATIONS)
                    return perr(c, TOO_MANY_COMBINATIONS);
            }
            if (val->n < 2)
                return perr(c, "There must have at least 2 Objects in $or relationship.");
            sub.v = pb_arena_zalloc(&c->p->arena, total * sizeof(conj));
            if (!sub.v)
                return oom(c);
            for (size_t b = 0; b < val->n; b++)
                for (size_t k = 0; k < branches[b].n; k++)
                    sub.v[sub.n++] = branches[b].v[k];
        } else {
            const char *path = NULL;
            size_t pathlen = 0;
            rc = join_path(c, prefix, prefixlen, key, kl, &path, &pathlen);
            if (rc)
                return rc;
            if (val->type == PB_JSON_OBJECT) {
                rc = parse_object(c, val, path, pathlen, in_or, &sub);
                if (rc)
                    return rc;
            } else if (val->type == PB_JSON_ARRAY) {
                pb_field *f = NULL;
                rc = parse_leaf(c, path, pathlen, val, &f);
                if (rc)
                    return rc;
                sub.n = 1;
                sub.v = pb_arena_zalloc(&c->p->arena, sizeof(conj));
                if (!sub.v)
                    return oom(c);
                rc = conj_push(c, &sub.v[0], f);
                if (rc)
                    return rc;
            } else {
                return perr(c, "\"%.*s\" must be an object or an array", (int)(kl > 200 ? 200 : kl), key);
            }
        }
        if (overridden(obj, i))
            continue;
        rc = product(c, &acc, &sub);
        if (rc)
            return rc;
    }
    *out = acc;
    return 0;
}

/* ------------------------------------------------------------- finishing -- */

static int cmp_field_path(const void *a, const void *b)
{
    const pb_field *x = *(pb_field *const *)a, *y = *(pb_field *const *)b;
    size_t m = x->pathlen < y->pathlen ? x->pathlen : y->pathlen;
    int r = memcmp(x->path, y->path, m);
    if (r)
        return r;
    if (x->pathlen != y->pathlen)
        return (x->pathlen > y->pathlen) - (x->pathlen < y->pathlen);
    return (x->order > y->order) - (x->order < y->order);
}

/* Sorts by path and keeps the last occurrence (in pattern order) of each. */
static void finish_conj(conj *j)
{
    qsort(j->f, j->n, sizeof *j->f, cmp_field_path);
    size_t w = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (w && j->f[w - 1]->pathlen == j->f[i]->pathlen &&
            !memcmp(j->f[w - 1]->path, j->f[i]->path, j->f[i]->pathlen))
            j->f[w - 1] = j->f[i];
        else
            j->f[w++] = j->f[i];
    }
    j->n = w;
}

int pb_pattern_compile(const char *text, size_t len, pb_pattern **out, pb_error *err)
{
    *out = NULL;
    if (len > PB_PATTERN_MAX_BYTES)
        return pb_error_set(err, PB_EPATTERN, REASON "pattern is longer than %d bytes", PB_PATTERN_MAX_BYTES);
    pb_pattern *p = calloc(1, sizeof *p);
    if (!p)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    pb_arena_init(&p->arena);
    compiler c = {.p = p, .err = err};
    pb_json_limits lim = {.max_bytes = PB_PATTERN_MAX_BYTES, .max_depth = PB_PATTERN_MAX_DEPTH};
    pb_error jerr;
    int rc = pb_json_parse(text, len, &lim, &p->arena, &p->doc, &jerr);
    if (rc) {
        if (rc == PB_EVALIDATION)
            rc = pb_error_set(err, PB_EPATTERN, REASON "%s", jerr.message);
        else
            rc = pb_error_set(err, rc, "%s", jerr.message);
        goto fail;
    }
    if (p->doc->type != PB_JSON_OBJECT) {
        rc = perr(&c, "Filter is not an object");
        goto fail;
    }
    conjs all;
    rc = parse_object(&c, p->doc, NULL, 0, false, &all);
    if (rc)
        goto fail;
    p->subs = pb_arena_zalloc(&p->arena, all.n * sizeof *p->subs);
    if (!p->subs) {
        rc = oom(&c);
        goto fail;
    }
    for (size_t i = 0; i < all.n; i++) {
        finish_conj(&all.v[i]);
        p->subs[i].n = all.v[i].n;
        p->subs[i].fields = all.v[i].f;
    }
    p->nsubs = all.n;
    *out = p;
    return 0;
fail:
    pb_pattern_free(p);
    return rc;
}

void pb_pattern_free(pb_pattern *p)
{
    if (!p)
        return;
    pb_arena_free(&p->arena);
    free(p);
}

size_t pb_pattern_combinations(const pb_pattern *p) { return p->nsubs; }
