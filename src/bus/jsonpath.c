/*
 * jsonpath.c — EventBridge's JSON path subset over jansson documents.
 * See pb_jsonpath.h for the language.
 *
 * A path is read one step at a time by next_step, which both the syntax
 * check and the evaluator use, so they cannot disagree. Evaluation keeps the
 * set of values reached so far (the frontier, borrowed from the document) and
 * replaces it step by step; without a wildcard it never holds more than one.
 * Each value of the document is reached at most once per step, so the work is
 * bounded by (steps × values of the document).
 */
#include "bus/pb_jsonpath.h"

#include "common/pb_buf.h"

#include <stdlib.h>
#include <string.h>

typedef enum step_kind { STEP_KEY, STEP_INDEX, STEP_WILD } step_kind;

typedef struct step {
    step_kind kind;
    const char *key; /* STEP_KEY: into the path, not NUL-terminated */
    size_t keylen;
    size_t index;    /* STEP_INDEX */
} step;

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '/';
}

/* Reads the step at p[*i]; advances *i past it. False on a syntax error. */
static bool next_step(const char *p, size_t *i, step *st)
{
    size_t k = *i;
    if (p[k] == '.') {
        k++;
        if (p[k] == '*') {
            st->kind = STEP_WILD;
            *i = k + 1;
            return true;
        }
        size_t b = k;
        while (name_char(p[k]))
            k++;
        if (k == b)
            return false;
        st->kind = STEP_KEY;
        st->key = p + b;
        st->keylen = k - b;
        *i = k;
        return true;
    }
    if (p[k] != '[')
        return false;
    k++;
    if (p[k] == '*' && p[k + 1] == ']') {
        st->kind = STEP_WILD;
        *i = k + 2;
        return true;
    }
    if (p[k] == '\'' || p[k] == '"') {
        char q = p[k++];
        size_t b = k;
        while (p[k] && p[k] != q)
            k++;
        if (p[k] != q || p[k + 1] != ']')
            return false;
        st->kind = STEP_KEY;
        st->key = p + b;
        st->keylen = k - b;
        *i = k + 2;
        return true;
    }
    size_t b = k, v = 0;
    while (p[k] >= '0' && p[k] <= '9' && k - b < 9)
        v = v * 10 + (size_t)(p[k++] - '0');
    if (k == b || p[k] != ']')
        return false;
    st->kind = STEP_INDEX;
    st->index = v;
    *i = k + 1;
    return true;
}

/* Checks the whole path; *wild tells whether it has a wildcard step. */
static bool check(const char *path, bool *wild)
{
    *wild = false;
    if (!path || path[0] != '$' || strnlen(path, PB_JSONPATH_MAX + 1) > PB_JSONPATH_MAX)
        return false;
    size_t i = 1;
    step st;
    while (path[i]) {
        if (!next_step(path, &i, &st))
            return false;
        if (st.kind == STEP_WILD)
            *wild = true;
    }
    return true;
}

bool pb_jsonpath_valid(const char *path)
{
    bool wild;
    return check(path, &wild);
}

/* A list of borrowed values. */
typedef struct vec {
    json_t **v;
    size_t n, cap;
} vec;

static int push(vec *a, json_t *x)
{
    if (pb_grow((void **)&a->v, &a->cap, a->n + 1, sizeof *a->v))
        return PB_ENOMEM;
    a->v[a->n++] = x;
    return 0;
}

/* Appends to next what step st reaches from x. */
static int apply(const step *st, json_t *x, vec *next)
{
    switch (st->kind) {
    case STEP_KEY: {
        json_t *c = json_is_object(x) ? json_object_getn(x, st->key, st->keylen) : NULL;
        return c ? push(next, c) : 0;
    }
    case STEP_INDEX: {
        json_t *c = json_is_array(x) ? json_array_get(x, st->index) : NULL;
        return c ? push(next, c) : 0;
    }
    case STEP_WILD:
        if (json_is_array(x)) {
            for (size_t k = 0; k < json_array_size(x); k++)
                if (push(next, json_array_get(x, k)))
                    return PB_ENOMEM;
        } else if (json_is_object(x)) {
            const char *key;
            json_t *c;
            json_object_foreach(x, key, c)
            {
                if (push(next, c))
                    return PB_ENOMEM;
            }
        }
        return 0;
    }
    return 0;
}

int pb_jsonpath_eval(json_t *doc, const char *path, json_t **out, pb_error *err)
{
    *out = NULL;
    bool wild;
    if (!check(path, &wild)) {
        if (path && strnlen(path, PB_JSONPATH_MAX + 1) > PB_JSONPATH_MAX)
            return pb_error_set(err, PB_EVALIDATION, "JSON path is longer than %d characters", PB_JSONPATH_MAX);
        return pb_error_set(err, PB_EVALIDATION, "%s is not a valid JSON path", path ? path : "(null)");
    }
    int rc = 0;
    vec cur = {0}, next = {0};
    if (doc && (rc = push(&cur, doc)))
        goto out;
    size_t i = 1;
    step st;
    while (path[i] && cur.n) {
        next_step(path, &i, &st); /* cannot fail: checked above */
        next.n = 0;
        for (size_t k = 0; k < cur.n; k++)
            if ((rc = apply(&st, cur.v[k], &next)))
                goto out;
        vec t = cur;
        cur = next;
        next = t;
    }
    if (!cur.n)
        goto out;
    if (!wild) {
        *out = json_incref(cur.v[0]);
        goto out;
    }
    json_t *arr = json_array();
    if (!arr) {
        rc = PB_ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < cur.n; k++)
        if (json_array_append(arr, cur.v[k])) {
            json_decref(arr);
            rc = PB_ENOMEM;
            goto out;
        }
    *out = arr;
out:
    free(cur.v);
    free(next.v);
    if (rc)
        pb_error_set(err, rc, "out of memory evaluating a JSON path");
    return rc;
}
