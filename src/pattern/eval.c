/*
 * eval.c — operator semantics, the reference evaluator, and explanations.
 *
 * pb_cond_test is the single statement of what each operator accepts. The
 * reference evaluator applies a pattern to a fully parsed event by brute
 * force (every leaf, every combination, with the same-array-element rule);
 * it is slow and obviously correct, so tests and fuzzers check the automaton
 * against it, and explanations ("why didn't my rule fire?") are built on it.
 */
#include "pattern_internal.h"

#include "json/pb_number.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ operators -- */

static void ensure_fold(pb_val *v)
{
    if (!v->folded) {
        v->foldlen = pb_casefold(v->s, v->len, v->fold);
        v->folded = true;
    }
}

static bool has_prefix(const char *s, size_t n, const char *p, size_t pn)
{
    return pn <= n && memcmp(s, p, pn) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *p, size_t pn)
{
    return pn <= n && memcmp(s + n - pn, p, pn) == 0;
}

static bool eq(const char *a, size_t an, const char *b, size_t bn) { return an == bn && memcmp(a, b, an) == 0; }

bool pb_cond_test(const pb_cond *c, pb_val *v)
{
    bool str = v->type == PB_V_STR, num = v->type == PB_V_NUM && v->num_ok;
    switch (c->kind) {
    case PB_C_STR: return str && eq(v->s, v->len, c->str, c->len);
    case PB_C_NUM: return num && v->num == c->num;
    case PB_C_TRUE: return v->type == PB_V_TRUE;
    case PB_C_FALSE: return v->type == PB_V_FALSE;
    case PB_C_NULL: return v->type == PB_V_NULL;
    case PB_C_PREFIX: return str && has_prefix(v->s, v->len, c->str, c->len);
    case PB_C_SUFFIX: return str && has_suffix(v->s, v->len, c->str, c->len);
    case PB_C_EIC:
        if (!str)
            return false;
        ensure_fold(v);
        return eq(v->fold, v->foldlen, c->str, c->len);
    case PB_C_PREFIX_EIC:
        if (!str)
            return false;
        ensure_fold(v);
        return has_prefix(v->fold, v->foldlen, c->str, c->len);
    case PB_C_SUFFIX_EIC:
        if (!str)
            return false;
        ensure_fold(v);
        return has_suffix(v->fold, v->foldlen, c->str, c->len);
    case PB_C_WILDCARD: return str && pb_wildcard_match(c->str, c->len, v->s, v->len);
    case PB_C_RANGE:
        return num && (v->num > c->lo || (c->lo_incl && v->num == c->lo)) &&
               (v->num < c->hi || (c->hi_incl && v->num == c->hi));
    case PB_C_EXISTS: return true;
    case PB_C_ABSENT: return false; /* absence is decided by the caller */
    case PB_C_CIDR:
        if (!str)
            return false;
        if (v->ip == 0)
            v->ip = pb_ip_parse(v->s, v->len, &v->family, v->addr) == 0 ? 1 : -1;
        return v->ip == 1 && pb_cidr_contains(&c->cidr, v->family, v->addr);
    case PB_C_AB_STR:
        if (!str)
            return true;
        for (size_t i = 0; i < c->nlist; i++)
            if (eq(v->s, v->len, c->strs[i].s, c->strs[i].len))
                return false;
        return true;
    case PB_C_AB_NUM:
        if (v->type != PB_V_NUM)
            return true;
        if (!v->num_ok)
            return true;
        for (size_t i = 0; i < c->nlist; i++)
            if (v->num == c->nums[i])
                return false;
        return true;
    case PB_C_AB_PREFIX:
    case PB_C_AB_SUFFIX:
        if (!str)
            return true;
        for (size_t i = 0; i < c->nlist; i++)
            if (c->kind == PB_C_AB_PREFIX ? has_prefix(v->s, v->len, c->strs[i].s, c->strs[i].len)
                                          : has_suffix(v->s, v->len, c->strs[i].s, c->strs[i].len))
                return false;
        return true;
    case PB_C_AB_EIC:
        if (!str)
            return true;
        ensure_fold(v);
        for (size_t i = 0; i < c->nlist; i++)
            if (eq(v->fold, v->foldlen, c->strs[i].s, c->strs[i].len))
                return false;
        return true;
    case PB_C_AB_WILDCARD:
        if (!str)
            return true;
        for (size_t i = 0; i < c->nlist; i++)
            if (pb_wildcard_match(c->strs[i].s, c->strs[i].len, v->s, v->len))
                return false;
        return true;
    }
    return false;
}

/* ------------------------------------------------------- full flattening -- */

typedef struct lctx {
    pb_arena *arena;
    pb_leaves *out;
    pb_trail_step *stack;
    size_t depth, cap;
    uint32_t arrays;
} lctx;

static int push_leaf(lctx *x, const char *path, size_t pathlen, const pb_json *v)
{
    pb_leaves *o = x->out;
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 16;
        pb_leaf *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv)
            return PB_ENOMEM;
        o->v = nv;
        o->cap = nc;
    }
    if (o->ntrail + x->depth > o->trailcap) {
        size_t nc = o->trailcap ? o->trailcap * 2 : 16;
        while (nc < o->ntrail + x->depth)
            nc *= 2;
        pb_trail_step *nt = realloc(o->trail, nc * sizeof *nt);
        if (!nt)
            return PB_ENOMEM;
        o->trail = nt;
        o->trailcap = nc;
    }
    pb_leaf *l = &o->v[o->n++];
    l->path = path;
    l->pathlen = pathlen;
    l->value = v;
    l->trail_off = o->ntrail;
    l->trail_len = x->depth;
    if (x->depth)
        memcpy(o->trail + o->ntrail, x->stack, x->depth * sizeof *x->stack);
    o->ntrail += x->depth;
    return 0;
}

static int walk(lctx *x, const pb_json *v, const char *path, size_t pathlen)
{
    int rc = 0;
    if (v->type == PB_JSON_OBJECT) {
        for (size_t i = 0; i < v->n && !rc; i++) {
            const pb_json_member *m = &v->members[i];
            size_t n = path ? pathlen + 1 + m->keylen : m->keylen; /* NULL path: top level */
            char *p = pb_arena_alloc(x->arena, n + 1);
            if (!p)
                return PB_ENOMEM;
            if (path) {
                memcpy(p, path, pathlen);
                p[pathlen] = '.';
                memcpy(p + pathlen + 1, m->key, m->keylen);
            } else {
                memcpy(p, m->key, m->keylen);
            }
            p[n] = '\0';
            rc = walk(x, m->value, p, n);
        }
        return rc;
    }
    if (v->type == PB_JSON_ARRAY) {
        uint32_t id = x->arrays++;
        for (size_t i = 0; i < v->n && !rc; i++) {
            const pb_json *e = v->items[i];
            if (e->type == PB_JSON_OBJECT || e->type == PB_JSON_ARRAY) {
                if (x->depth == x->cap) {
                    size_t nc = x->cap ? x->cap * 2 : 8;
                    pb_trail_step *ns = realloc(x->stack, nc * sizeof *ns);
                    if (!ns)
                        return PB_ENOMEM;
                    x->stack = ns;
                    x->cap = nc;
                }
                x->stack[x->depth].array = id;
                x->stack[x->depth].index = (uint32_t)i;
                x->depth++;
                rc = walk(x, e, path, pathlen);
                x->depth--;
            } else {
                rc = walk(x, e, path, pathlen);
            }
        }
        return rc;
    }
    return push_leaf(x, path, pathlen, v);
}

int pb_leaves_collect(const pb_json *event, pb_arena *arena, pb_leaves *out)
{
    lctx x = {.arena = arena, .out = out};
    int rc = walk(&x, event, NULL, 0);
    free(x.stack);
    return rc;
}

static void leaves_free(pb_leaves *l)
{
    free(l->v);
    free(l->trail);
}

/* ---------------------------------------------------- reference matcher -- */

static void to_val(const pb_json *j, pb_val *v, char *foldbuf)
{
    memset(v, 0, sizeof *v);
    v->fold = foldbuf;
    switch (j->type) {
    case PB_JSON_STRING: v->type = PB_V_STR; break;
    case PB_JSON_NUMBER:
        v->type = PB_V_NUM;
        v->num_ok = pb_number_parse(j->str, j->len, &v->num) == 0;
        break;
    case PB_JSON_TRUE: v->type = PB_V_TRUE; break;
    case PB_JSON_FALSE: v->type = PB_V_FALSE; break;
    default: v->type = PB_V_NULL; break;
    }
    v->s = j->str;
    v->len = j->len;
}

/* Does some condition of f accept j? On allocation failure sets *oom (the
 * caller reports PB_ENOMEM rather than a wrong verdict). */
static bool field_accepts(const pb_field *f, const pb_json *j, bool *oom)
{
    char small[256];
    size_t need = 3 * j->len + 4;
    char *buf = need <= sizeof small ? small : malloc(need);
    if (!buf) {
        *oom = true;
        return false;
    }
    pb_val v;
    to_val(j, &v, buf);
    bool ok = false;
    for (size_t i = 0; i < f->ncond && !ok; i++)
        ok = pb_cond_test(&f->conds[i], &v);
    if (buf != small)
        free(buf);
    return ok;
}

typedef struct rctx {
    const pb_leaves *lv;
    const pb_subpattern *sp;
    pb_trail_step *chosen; /* constraint stack */
    size_t nchosen, cap;
    bool oom;
} rctx;

static bool consistent(const rctx *x, const pb_leaf *l)
{
    if (!l->trail_len)
        return true;
    const pb_trail_step *t = x->lv->trail + l->trail_off;
    for (size_t i = 0; i < l->trail_len; i++)
        for (size_t k = 0; k < x->nchosen; k++)
            if (x->chosen[k].array == t[i].array && x->chosen[k].index != t[i].index)
                return false;
    return true;
}

static bool path_eq(const pb_leaf *l, const pb_field *f)
{
    return l->pathlen == f->pathlen && memcmp(l->path, f->path, f->pathlen) == 0;
}

static bool search(rctx *x, size_t fi)
{
    if (fi == x->sp->n)
        return true;
    const pb_field *f = x->sp->fields[fi];
    bool present = false;
    for (size_t i = 0; i < x->lv->n; i++) {
        const pb_leaf *l = &x->lv->v[i];
        if (!path_eq(l, f))
            continue;
        present = true;
        if (!consistent(x, l) || !field_accepts(f, l->value, &x->oom)) {
            if (x->oom)
                return false;
            continue;
        }
        size_t mark = x->nchosen;
        if (x->nchosen + l->trail_len > x->cap) {
            size_t nc = (x->cap + l->trail_len) * 2;
            pb_trail_step *n = realloc(x->chosen, nc * sizeof *n);
            if (!n) {
                x->oom = true;
                return false;
            }
            x->chosen = n;
            x->cap = nc;
        }
        if (l->trail_len)
            memcpy(x->chosen + x->nchosen, x->lv->trail + l->trail_off, l->trail_len * sizeof *x->chosen);
        x->nchosen += l->trail_len;
        bool ok = search(x, fi + 1);
        x->nchosen = mark;
        if (ok)
            return true;
    }
    if (!present && f->has_absent)
        return search(x, fi + 1);
    return false;
}

static int parse_event(const char *event, size_t len, pb_arena *arena, pb_json **doc, pb_error *err)
{
    pb_json_limits lim = {.max_bytes = PB_EVENT_MAX_BYTES, .max_depth = PB_EVENT_MAX_DEPTH};
    pb_error jerr;
    int rc = pb_json_parse(event, len, &lim, arena, doc, &jerr);
    if (rc == PB_ENOMEM)
        return pb_error_set(err, rc, "out of memory");
    if (rc)
        return pb_error_set(err, PB_EEVENT, "Event is not valid JSON: %s", jerr.message);
    if ((*doc)->type != PB_JSON_OBJECT)
        return pb_error_set(err, PB_EEVENT, "Event must be a JSON object");
    return 0;
}

int pb_pattern_eval(const pb_pattern *p, const char *event, size_t len, bool *matched, pb_error *err)
{
    pb_arena arena;
    pb_arena_init(&arena);
    pb_leaves lv = {0};
    pb_json *doc;
    *matched = false;
    int rc = parse_event(event, len, &arena, &doc, err);
    if (!rc)
        rc = pb_leaves_collect(doc, &arena, &lv);
    if (rc == PB_ENOMEM)
        pb_error_set(err, rc, "out of memory");
    for (size_t s = 0; !rc && s < p->nsubs && !*matched; s++) {
        rctx x = {.lv = &lv, .sp = &p->subs[s]};
        *matched = search(&x, 0);
        free(x.chosen);
        if (x.oom)
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    leaves_free(&lv);
    pb_arena_free(&arena);
    return rc;
}

/* ----------------------------------------------------------- explaining -- */

static int explain_sub(const pb_subpattern *sp, const pb_leaves *lv, bool text, pb_buf *out, bool *first)
{
    /* the first field, in pattern order, that no value satisfies on its own */
    const pb_field *bad = NULL;
    bool oom = false;
    for (size_t k = 0; k < sp->n; k++) {
        const pb_field *f = sp->fields[k];
        bool present = false, any = false;
        for (size_t i = 0; i < lv->n && !any; i++) {
            if (!path_eq(&lv->v[i], f))
                continue;
            present = true;
            any = field_accepts(f, lv->v[i].value, &oom);
        }
        if (!present && f->has_absent)
            any = true;
        if (!any && (!bad || f->order < bad->order))
            bad = f;
    }
    if (oom)
        return PB_ENOMEM;
    pb_buf cond;
    pb_buf_init(&cond, 0);
    int rc = 0;
    const pb_field *f = bad ? bad : sp->fields[0];
    rc = pb_json_write(&cond, f->src);
    if (rc)
        goto out;
    size_t nvals = 0;
    for (size_t i = 0; i < lv->n; i++)
        nvals += path_eq(&lv->v[i], f);
    const char *reason;
    if (!bad)
        reason = "each field has a matching value, but not all within the same element of an array";
    else if (!nvals)
        reason = f->ncond == 1 && f->conds[0].kind == PB_C_EXISTS ? "the field is missing" : "the field is missing (only exists:false and $or alternatives match a missing field)";
    else
        reason = "no value at this path satisfies the condition";
    if (text) {
        rc = pb_buf_printf(out, "%s  %s: %s\n    condition: %s\n", *first ? "" : "or\n", f->path, reason, cond.data);
        if (!rc && nvals) {
            rc = pb_buf_puts(out, "    event value(s):");
            for (size_t i = 0; i < lv->n && !rc; i++)
                if (path_eq(&lv->v[i], f)) {
                    rc = pb_buf_putc(out, ' ');
                    rc = rc ? rc : pb_json_write(out, lv->v[i].value);
                }
            rc = rc ? rc : pb_buf_putc(out, '\n');
        }
    } else {
        rc = pb_buf_puts(out, *first ? "{\"Path\":" : ",{\"Path\":");
        rc = rc ? rc : pb_json_write_string(out, f->path, f->pathlen);
        rc = rc ? rc : pb_buf_puts(out, ",\"Condition\":");
        rc = rc ? rc : pb_buf_append(out, cond.data, cond.len);
        if (nvals) {
            rc = rc ? rc : pb_buf_puts(out, ",\"Values\":[");
            size_t w = 0;
            for (size_t i = 0; i < lv->n && !rc; i++)
                if (path_eq(&lv->v[i], f)) {
                    if (w++)
                        rc = pb_buf_putc(out, ',');
                    rc = rc ? rc : pb_json_write(out, lv->v[i].value);
                }
            rc = rc ? rc : pb_buf_putc(out, ']');
        } else {
            rc = rc ? rc : pb_buf_puts(out, ",\"Missing\":true");
        }
        rc = rc ? rc : pb_buf_puts(out, ",\"Reason\":");
        rc = rc ? rc : pb_json_write_string(out, reason, strlen(reason));
        rc = rc ? rc : pb_buf_putc(out, '}');
    }
    *first = false;
out:
    pb_buf_free(&cond);
    return rc;
}

int pb_pattern_explain(const pb_pattern *p, const char *event, size_t len, bool text, pb_buf *out, pb_error *err)
{
    pb_arena arena;
    pb_arena_init(&arena);
    pb_leaves lv = {0};
    pb_json *doc;
    int rc = parse_event(event, len, &arena, &doc, err);
    if (!rc && (rc = pb_leaves_collect(doc, &arena, &lv)) != 0)
        pb_error_set(err, rc, "out of memory");
    bool matched = false;
    for (size_t s = 0; !rc && s < p->nsubs && !matched; s++) {
        rctx x = {.lv = &lv, .sp = &p->subs[s]};
        matched = search(&x, 0);
        free(x.chosen);
        if (x.oom)
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    if (!rc) {
        if (matched) {
            rc = pb_buf_puts(out, text ? "match\n" : "{\"Result\":true}");
        } else {
            rc = pb_buf_puts(out, text ? "no match:\n" : "{\"Result\":false,\"Mismatches\":[");
            bool first = true;
            for (size_t s = 0; !rc && s < p->nsubs; s++)
                rc = explain_sub(&p->subs[s], &lv, text, out, &first);
            if (!rc && !text)
                rc = pb_buf_puts(out, "]}");
        }
        if (rc)
            pb_error_set(err, rc, "out of memory");
    }
    leaves_free(&lv);
    pb_arena_free(&arena);
    return rc;
}

/* ------------------------------------------------------------- envelope -- */

int pb_event_check_envelope(const char *event, size_t len, pb_error *err)
{
    static const char *const required[] = {"id", "account", "source", "time", "region", "detail-type"};
    pb_arena arena;
    pb_arena_init(&arena);
    pb_json *doc;
    pb_json_limits lim = {.max_bytes = PB_EVENT_MAX_BYTES, .max_depth = PB_EVENT_MAX_DEPTH};
    int rc = pb_json_parse(event, len, &lim, &arena, &doc, NULL);
    if (rc == PB_ENOMEM) {
        pb_arena_free(&arena);
        return pb_error_set(err, rc, "out of memory");
    }
    bool ok = rc == 0 && doc->type == PB_JSON_OBJECT;
    for (size_t i = 0; ok && i < sizeof required / sizeof *required; i++)
        ok = pb_json_get(doc, required[i]) != NULL;
    pb_arena_free(&arena);
    return ok ? 0 : pb_error_set(err, PB_EEVENT, "Parameter Event is not valid.");
}
