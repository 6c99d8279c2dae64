/*
 * matcher.c — many patterns in one automaton.
 *
 * Every sub-pattern (a conjunction of fields sorted by path) is a path from
 * the start state: each step tests one field, and reaching the end reports
 * the pattern. Sub-patterns that begin with the same (path, disjunction)
 * share states, so a trie of states grows out of the start state. A state's
 * outgoing tests on one path are gathered in one value matcher (vmatch) that
 * answers, for one event value, every next state at once:
 *   - exact strings, numbers, booleans and null, prefixes, suffixes and the
 *     case-insensitive forms by hashing (for prefixes and suffixes, one probe
 *     per distinct prefix/suffix length);
 *   - numeric ranges by a static interval tree rebuilt in pb_matcher_prepare;
 *   - exists:true by a plain list;
 *   - wildcard, cidr and anything-but by testing each (pb_cond_test).
 * exists:false is a transition taken when the path is absent from the event.
 *
 * Matching flattens the event (only the paths the trie knows), then walks
 * from the start state: for each transition, for each event value at that
 * path that is array-consistent with the values chosen so far, for each next
 * state the value matcher returns, continue. A state reached with no array
 * constraint is visited once per event. The walk never looks at states that
 * cannot be reached, which is why the cost follows the event, not the number
 * of patterns.
 *
 * Ownership: the matcher owns every state, value matcher, and a private copy
 * of each distinct disjunction (setent). Removal is reference-counted.
 */
#include "pattern_internal.h"

#include "common/pb_hash.h"
#include "common/pb_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_STEP_BUDGET 1000000 /* states visited per event, with array constraints */

typedef struct nstate nstate;
typedef struct vmatch vmatch;

typedef struct nvec {
    nstate **v;
    uint32_t n, cap;
} nvec;

/* one hashed condition (kind + bytes) and where it leads */
typedef struct kentry {
    uint8_t kind;
    uint32_t len;
    nvec next;
    char key[];
} kentry;

typedef struct lencount {
    uint32_t len, count;
} lencount;

typedef struct lenset {
    lencount *v;
    uint32_t n, cap;
} lenset;

typedef struct listcond {
    const pb_cond *cond; /* owned by the setent that registered it */
    nstate *next;
} listcond;

typedef struct interval {
    double lo, hi;
    bool lo_incl, hi_incl;
    nstate *next;
} interval;

struct vmatch {
    uint32_t path;
    pb_table keyed;             /* kentry* */
    lenset prefix, suffix, prefix_eic, suffix_eic;
    uint32_t n_fold;            /* hashed entries that need the folded value */
    uint32_t n_num;             /* hashed PB_C_NUM entries */
    listcond *lists;
    uint32_t nlists, capl;
    uint32_t n_list_fold;       /* list conditions that need the folded value */
    interval *ivs;              /* as registered */
    uint32_t nivs, capivs;
    interval *tree;             /* sorted by lo, built by prepare */
    double *maxhi;
    uint32_t ntree;
    bool dirty;
    nvec exists;
    uint32_t refs;              /* registered conditions */
};

typedef struct trans {
    uint32_t path;
    vmatch *vm;
} trans;

typedef struct absent {
    uint32_t path;
    nstate *next;
} absent;

struct nstate {
    uint32_t id;
    trans *trans;
    uint32_t ntrans, captrans;
    absent *absent;
    uint32_t nabsent, capabsent;
    uint32_t *terms; /* internal pattern indexes ending here (with multiplicity) */
    uint32_t nterms, capterms;
};

/* (state, path, disjunction) -> next state: the unit of sharing */
typedef struct setent {
    uint32_t from;     /* state id */
    uint32_t path;
    nstate *parent;
    nstate *next;
    uint32_t refs;
    size_t ncond;
    pb_cond *conds;    /* private copy */
    char *pathstr;     /* for releasing the trie reference */
    size_t pathlen;
    size_t keylen;
    char key[];
} setent;

typedef struct prec {
    uint64_t id;
    uint32_t idx;
    uint32_t nsubs;
    uint32_t *len;       /* per sub-pattern: setents on its path */
    setent ***path;
    nstate **terminal;
} prec;

struct pb_matcher {
    pb_path_trie *trie;
    nstate *start;
    pb_table sets;       /* setent* */
    pb_table pats;       /* prec* by id */
    nstate **states;     /* by id */
    uint32_t nstates, capstates;
    uint32_t *free_state_ids;
    uint32_t nfree_states, capfree_states;
    prec **byidx;        /* by internal index */
    uint32_t nidx, capidx;
    uint32_t *free_idx;
    uint32_t nfree_idx, capfree_idx;
    vmatch **dirty;
    uint32_t ndirty, capdirty;
    bool prepared;
    size_t mem;          /* bytes in conds copies, states, entries */
};

struct pb_match_scratch {
    pb_flat flat;
    uint32_t *visited;   /* per state id: generation */
    uint32_t *seen;      /* per pattern index: generation */
    size_t capvisited, capseen;
    uint32_t gen;
    nstate **stack;      /* next states being expanded */
    size_t nstack, capstack;
    pb_trail_step *constraint;
    size_t ncons, capcons;
    uint32_t *hits;      /* pattern indexes matched */
    size_t nhits, caphits;
    uint64_t *ids;
    size_t capids;
    char *fold;
    size_t capfold;
    size_t steps;
};

/* ------------------------------------------------------------- vectors -- */

static int grow(void **p, uint32_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4;
    while (nc < need)
        nc *= 2;
    if (nc > UINT32_MAX)
        return PB_ENOMEM;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return PB_ENOMEM;
    *p = np;
    *cap = (uint32_t)nc;
    return 0;
}

static int nvec_push(nvec *v, nstate *s)
{
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v))
        return PB_ENOMEM;
    v->v[v->n++] = s;
    return 0;
}

static void nvec_remove(nvec *v, nstate *s)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (v->v[i] == s) {
            v->v[i] = v->v[--v->n];
            return;
        }
}

static int lenset_add(lenset *l, uint32_t len)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->v[i].len == len) {
            l->v[i].count++;
            return 0;
        }
    if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
        return PB_ENOMEM;
    l->v[l->n].len = len;
    l->v[l->n].count = 1;
    l->n++;
    return 0;
}

static void lenset_del(lenset *l, uint32_t len)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->v[i].len == len) {
            if (--l->v[i].count == 0)
                l->v[i] = l->v[--l->n];
            return;
        }
}

/* -------------------------------------------------------- hashed entries -- */

typedef struct kkey {
    uint8_t kind;
    const char *s;
    size_t n;
} kkey;

static int kentry_eq(const void *item, const void *key)
{
    const kentry *e = item;
    const kkey *k = key;
    return e->kind == k->kind && e->len == k->n && memcmp(e->key, k->s, k->n) == 0;
}

static inline uint64_t khash(uint8_t kind, const char *s, size_t n) { return pb_hash_bytes(s, n, 0x1000 + kind); }

static inline const kentry *kfind(const vmatch *vm, uint8_t kind, const char *s, size_t n)
{
    kkey k = {kind, s, n};
    return pb_table_find(&vm->keyed, khash(kind, s, n), kentry_eq, &k);
}

static bool hashed_kind(pb_cond_kind k)
{
    switch (k) {
    case PB_C_STR:
    case PB_C_NUM:
    case PB_C_TRUE:
    case PB_C_FALSE:
    case PB_C_NULL:
    case PB_C_PREFIX:
    case PB_C_SUFFIX:
    case PB_C_EIC:
    case PB_C_PREFIX_EIC:
    case PB_C_SUFFIX_EIC: return true;
    default: return false;
    }
}

static bool fold_kind(pb_cond_kind k)
{
    return k == PB_C_EIC || k == PB_C_PREFIX_EIC || k == PB_C_SUFFIX_EIC || k == PB_C_AB_EIC;
}

static lenset *lens_for(vmatch *vm, pb_cond_kind k)
{
    switch (k) {
    case PB_C_PREFIX: return &vm->prefix;
    case PB_C_SUFFIX: return &vm->suffix;
    case PB_C_PREFIX_EIC: return &vm->prefix_eic;
    case PB_C_SUFFIX_EIC: return &vm->suffix_eic;
    default: return NULL;
    }
}

/* The hashed key bytes of a condition. */
static void cond_bytes(const pb_cond *c, const char **s, size_t *n, double *scratch)
{
    if (c->kind == PB_C_NUM) {
        *scratch = c->num == 0 ? 0.0 : c->num;
        *s = (const char *)scratch;
        *n = sizeof *scratch;
    } else if (c->kind == PB_C_TRUE || c->kind == PB_C_FALSE || c->kind == PB_C_NULL) {
        *s = "";
        *n = 0;
    } else {
        *s = c->str;
        *n = c->len;
    }
}

/* ------------------------------------------------------ value matchers -- */

static int vm_register(pb_matcher *m, vmatch *vm, const pb_cond *c, nstate *next)
{
    if (hashed_kind(c->kind)) {
        const char *s;
        size_t n;
        double d;
        cond_bytes(c, &s, &n, &d);
        kentry *e = (kentry *)kfind(vm, (uint8_t)c->kind, s, n);
        if (!e) {
            e = calloc(1, sizeof *e + n + 1);
            if (!e)
                return PB_ENOMEM;
            e->kind = (uint8_t)c->kind;
            e->len = (uint32_t)n;
            memcpy(e->key, s, n);
            lenset *ls = lens_for(vm, c->kind);
            if (pb_table_insert(&vm->keyed, khash(e->kind, s, n), e) || (ls && lenset_add(ls, (uint32_t)n))) {
                kkey k = {e->kind, e->key, n};
                pb_table_remove(&vm->keyed, khash(e->kind, s, n), kentry_eq, &k);
                free(e);
                return PB_ENOMEM;
            }
            if (fold_kind(c->kind))
                vm->n_fold++;
            if (c->kind == PB_C_NUM)
                vm->n_num++;
            m->mem += sizeof *e + n + 1;
        }
        if (nvec_push(&e->next, next))
            return PB_ENOMEM;
    } else if (c->kind == PB_C_EXISTS) {
        if (nvec_push(&vm->exists, next))
            return PB_ENOMEM;
    } else if (c->kind == PB_C_RANGE) {
        if (grow((void **)&vm->ivs, &vm->capivs, vm->nivs + 1, sizeof *vm->ivs))
            return PB_ENOMEM;
        vm->ivs[vm->nivs++] = (interval){c->lo, c->hi, c->lo_incl, c->hi_incl, next};
        if (!vm->dirty) {
            if (grow((void **)&m->dirty, &m->capdirty, m->ndirty + 1, sizeof *m->dirty)) {
                vm->nivs--;
                return PB_ENOMEM;
            }
            m->dirty[m->ndirty++] = vm;
            vm->dirty = true;
        }
    } else {
        if (grow((void **)&vm->lists, &vm->capl, vm->nlists + 1, sizeof *vm->lists))
            return PB_ENOMEM;
        vm->lists[vm->nlists++] = (listcond){c, next};
        if (fold_kind(c->kind))
            vm->n_list_fold++;
    }
    vm->refs++;
    return 0;
}

static int vm_build_tree(vmatch *vm);
static void vm_build_tree_now(vmatch *vm)
{
    if (vm_build_tree(vm)) {
        /* no memory for a new tree: drop the old one so no freed state is reachable */
        vm->ntree = 0;
    }
}

static void vm_unregister(pb_matcher *m, vmatch *vm, const pb_cond *c, nstate *next)
{
    if (hashed_kind(c->kind)) {
        const char *s;
        size_t n;
        double d;
        cond_bytes(c, &s, &n, &d);
        kentry *e = (kentry *)kfind(vm, (uint8_t)c->kind, s, n);
        if (!e)
            return;
        nvec_remove(&e->next, next);
        if (e->next.n == 0) {
            kkey k = {e->kind, s, n};
            pb_table_remove(&vm->keyed, khash(e->kind, s, n), kentry_eq, &k);
            lenset *ls = lens_for(vm, c->kind);
            if (ls)
                lenset_del(ls, (uint32_t)n);
            if (fold_kind(c->kind))
                vm->n_fold--;
            if (c->kind == PB_C_NUM)
                vm->n_num--;
            m->mem -= sizeof *e + n + 1;
            free(e->next.v);
            free(e);
        }
    } else if (c->kind == PB_C_EXISTS) {
        nvec_remove(&vm->exists, next);
    } else if (c->kind == PB_C_RANGE) {
        for (uint32_t i = 0; i < vm->nivs; i++)
            if (vm->ivs[i].next == next && vm->ivs[i].lo == c->lo && vm->ivs[i].hi == c->hi &&
                vm->ivs[i].lo_incl == c->lo_incl && vm->ivs[i].hi_incl == c->hi_incl) {
                vm->ivs[i] = vm->ivs[--vm->nivs];
                break;
            }
        if (!vm->dirty && !grow((void **)&m->dirty, &m->capdirty, m->ndirty + 1, sizeof *m->dirty)) {
            m->dirty[m->ndirty++] = vm;
            vm->dirty = true;
        }
        else if (!vm->dirty) /* no memory to queue it: rebuild now rather than keep a stale tree */
            vm_build_tree_now(vm);
    } else {
        for (uint32_t i = 0; i < vm->nlists; i++)
            if (vm->lists[i].cond == c && vm->lists[i].next == next) {
                vm->lists[i] = vm->lists[--vm->nlists];
                if (fold_kind(c->kind))
                    vm->n_list_fold--;
                break;
            }
    }
    vm->refs--;
}

static void vm_free(vmatch *vm)
{
    for (size_t i = 0; i < vm->keyed.cap; i++)
        if (vm->keyed.hashes[i]) {
            kentry *e = vm->keyed.items[i];
            free(e->next.v);
            free(e);
        }
    pb_table_free(&vm->keyed);
    free(vm->prefix.v);
    free(vm->suffix.v);
    free(vm->prefix_eic.v);
    free(vm->suffix_eic.v);
    free(vm->lists);
    free(vm->ivs);
    free(vm->tree);
    free(vm->maxhi);
    free(vm->exists.v);
    free(vm);
}

/* Frees a value matcher that may be waiting on the dirty list. */
static void vm_release(pb_matcher *m, vmatch *vm)
{
    if (vm->dirty)
        for (uint32_t i = 0; i < m->ndirty; i++)
            if (m->dirty[i] == vm) {
                m->dirty[i] = m->dirty[--m->ndirty];
                break;
            }
    vm_free(vm);
}

static int cmp_iv(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return (int)y->lo_incl - (int)x->lo_incl;
}

static double build_max(interval *t, double *mx, size_t lo, size_t hi)
{
    if (lo >= hi)
        return -INFINITY;
    size_t mid = lo + (hi - lo) / 2;
    double a = build_max(t, mx, lo, mid), b = build_max(t, mx, mid + 1, hi);
    double v = t[mid].hi;
    if (a > v)
        v = a;
    if (b > v)
        v = b;
    mx[mid] = v;
    return v;
}

static int vm_build_tree(vmatch *vm)
{
    free(vm->tree);
    free(vm->maxhi);
    vm->tree = NULL;
    vm->maxhi = NULL;
    vm->ntree = 0;
    vm->dirty = false;
    if (!vm->nivs)
        return 0;
    vm->tree = malloc(vm->nivs * sizeof *vm->tree);
    vm->maxhi = malloc(vm->nivs * sizeof *vm->maxhi);
    if (!vm->tree || !vm->maxhi) {
        vm->dirty = true;
        return PB_ENOMEM;
    }
    memcpy(vm->tree, vm->ivs, vm->nivs * sizeof *vm->tree);
    qsort(vm->tree, vm->nivs, sizeof *vm->tree, cmp_iv);
    vm->ntree = vm->nivs;
    build_max(vm->tree, vm->maxhi, 0, vm->ntree);
    return 0;
}

/* ------------------------------------------------------------- states -- */

static nstate *state_new(pb_matcher *m)
{
    nstate *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uint32_t id;
    if (m->nfree_states) {
        id = m->free_state_ids[--m->nfree_states];
    } else {
        if (grow((void **)&m->states, &m->capstates, m->nstates + 1, sizeof *m->states)) {
            free(s);
            return NULL;
        }
        id = m->nstates++;
    }
    s->id = id;
    m->states[id] = s;
    m->mem += sizeof *s;
    return s;
}

static void state_free(pb_matcher *m, nstate *s)
{
    for (uint32_t i = 0; i < s->ntrans; i++)
        vm_release(m, s->trans[i].vm);
    free(s->trans);
    free(s->absent);
    free(s->terms);
    m->states[s->id] = NULL;
    if (!grow((void **)&m->free_state_ids, &m->capfree_states, m->nfree_states + 1, sizeof *m->free_state_ids))
        m->free_state_ids[m->nfree_states++] = s->id;
    m->mem -= sizeof *s;
    free(s);
}

/* The transition of s on path, created when create is set. */
static vmatch *state_trans(nstate *s, uint32_t path, bool create, uint32_t *at)
{
    uint32_t lo = 0, hi = s->ntrans;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->trans[mid].path < path)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    if (lo < s->ntrans && s->trans[lo].path == path)
        return s->trans[lo].vm;
    if (!create)
        return NULL;
    if (grow((void **)&s->trans, &s->captrans, s->ntrans + 1, sizeof *s->trans))
        return NULL;
    vmatch *vm = calloc(1, sizeof *vm);
    if (!vm)
        return NULL;
    vm->path = path;
    memmove(s->trans + lo + 1, s->trans + lo, (s->ntrans - lo) * sizeof *s->trans);
    s->trans[lo] = (trans){path, vm};
    s->ntrans++;
    return vm;
}

static void state_drop_trans_if_empty(pb_matcher *m, nstate *s, uint32_t path)
{
    uint32_t at;
    vmatch *vm = state_trans(s, path, false, &at);
    if (vm && vm->refs == 0) {
        vm_release(m, vm);
        memmove(s->trans + at, s->trans + at + 1, (s->ntrans - at - 1) * sizeof *s->trans);
        s->ntrans--;
    }
}

/* ------------------------------------------------------------- setents -- */

typedef struct skey {
    uint32_t from, path;
    const char *key;
    size_t keylen;
} skey;

static int setent_eq(const void *item, const void *key)
{
    const setent *e = item;
    const skey *k = key;
    return e->from == k->from && e->path == k->path && e->keylen == k->keylen && memcmp(e->key, k->key, k->keylen) == 0;
}

static uint64_t shash(uint32_t from, uint32_t path, const char *key, size_t n)
{
    return pb_hash_bytes(key, n, ((uint64_t)from << 32) ^ path);
}

/* Deep-copies a field's conditions into one block laid out by alignment:
 * the pb_cond array, then every double, then every pb_strv, then the bytes. */
static pb_cond *conds_copy(const pb_field *f, size_t *bytes)
{
    size_t nnum = 0, nstrv = 0, nchar = 0;
    for (size_t i = 0; i < f->ncond; i++) {
        const pb_cond *c = &f->conds[i];
        nnum += c->nums ? c->nlist : 0;
        nstrv += c->strs ? c->nlist : 0;
        nchar += (c->str ? c->len + 1 : 0) + c->keylen;
        for (size_t k = 0; c->strs && k < c->nlist; k++)
            nchar += c->strs[k].len + 1;
    }
    size_t total = f->ncond * sizeof(pb_cond) + nnum * sizeof(double) + nstrv * sizeof(pb_strv) + nchar;
    char *block = malloc(total ? total : 1);
    if (!block)
        return NULL;
    *bytes = total;
    pb_cond *out = (pb_cond *)block;
    double *nums = (double *)(block + f->ncond * sizeof(pb_cond));
    pb_strv *strvs = (pb_strv *)(nums + nnum);
    char *p = (char *)(strvs + nstrv);
    for (size_t i = 0; i < f->ncond; i++) {
        const pb_cond *c = &f->conds[i];
        pb_cond *d = &out[i];
        *d = *c;
        if (c->nums) {
            memcpy(nums, c->nums, c->nlist * sizeof(double));
            d->nums = nums;
            nums += c->nlist;
        }
        if (c->str) {
            if (c->len)
                memcpy(p, c->str, c->len);
            p[c->len] = '\0';
            d->str = p;
            p += c->len + 1;
        }
        if (c->keylen)
            memcpy(p, c->key, c->keylen);
        d->key = p;
        p += c->keylen;
        if (c->strs) {
            d->strs = strvs;
            for (size_t k = 0; k < c->nlist; k++) {
                if (c->strs[k].len)
                    memcpy(p, c->strs[k].s, c->strs[k].len);
                p[c->strs[k].len] = '\0';
                strvs[k].s = p;
                strvs[k].len = c->strs[k].len;
                p += c->strs[k].len + 1;
            }
            strvs += c->nlist;
        }
    }
    return out;
}

/* Unregisters a setent from its parent state and frees it with its next state. */
static void setent_drop(pb_matcher *m, setent *e)
{
    nstate *parent = e->parent;
    vmatch *vm = state_trans(parent, e->path, false, NULL);
    for (size_t i = 0; i < e->ncond; i++) {
        const pb_cond *c = &e->conds[i];
        if (c->kind == PB_C_ABSENT) {
            for (uint32_t k = 0; k < parent->nabsent; k++)
                if (parent->absent[k].next == e->next && parent->absent[k].path == e->path) {
                    parent->absent[k] = parent->absent[--parent->nabsent];
                    break;
                }
        } else if (vm) {
            vm_unregister(m, vm, c, e->next);
        }
    }
    if (vm)
        state_drop_trans_if_empty(m, parent, e->path);
    skey k = {e->from, e->path, e->key, e->keylen};
    pb_table_remove(&m->sets, shash(e->from, e->path, e->key, e->keylen), setent_eq, &k);
    pb_path_trie_release(m->trie, e->pathstr, e->pathlen);
    state_free(m, e->next);
    m->mem -= sizeof *e + e->keylen;
    free(e->conds);
    free(e->pathstr);
    free(e);
}

/* Finds or creates the setent for field f out of state s. */
static setent *setent_get(pb_matcher *m, nstate *s, const pb_field *f)
{
    int32_t path = pb_path_trie_intern(m->trie, f->path, f->pathlen);
    if (path < 0)
        return NULL;
    skey k = {s->id, (uint32_t)path, f->setkey, f->setkeylen};
    uint64_t h = shash(s->id, (uint32_t)path, f->setkey, f->setkeylen);
    setent *e = pb_table_find(&m->sets, h, setent_eq, &k);
    if (e) {
        pb_path_trie_release(m->trie, f->path, f->pathlen); /* the setent holds one reference */
        e->refs++;
        return e;
    }
    size_t bytes = 0;
    e = calloc(1, sizeof *e + f->setkeylen);
    nstate *next = e ? state_new(m) : NULL;
    pb_cond *conds = next ? conds_copy(f, &bytes) : NULL;
    char *pathstr = conds ? malloc(f->pathlen + 1) : NULL;
    if (!pathstr || pb_table_insert(&m->sets, h, e)) {
        if (next)
            state_free(m, next);
        free(conds);
        free(pathstr);
        free(e);
        pb_path_trie_release(m->trie, f->path, f->pathlen);
        return NULL;
    }
    memcpy(pathstr, f->path, f->pathlen + 1);
    e->from = s->id;
    e->path = (uint32_t)path;
    e->parent = s;
    e->next = next;
    e->refs = 1;
    e->ncond = f->ncond;
    e->conds = conds;
    e->pathstr = pathstr;
    e->pathlen = f->pathlen;
    e->keylen = f->setkeylen;
    memcpy(e->key, f->setkey, f->setkeylen);
    m->mem += sizeof *e + f->setkeylen + bytes + f->pathlen + 1;
    m->prepared = false;
    /* register every condition of the disjunction */
    vmatch *vm = NULL;
    for (size_t i = 0; i < e->ncond; i++) {
        const pb_cond *c = &e->conds[i];
        int rc;
        if (c->kind == PB_C_ABSENT) {
            rc = grow((void **)&s->absent, &s->capabsent, s->nabsent + 1, sizeof *s->absent);
            if (!rc)
                s->absent[s->nabsent++] = (absent){(uint32_t)path, next};
        } else {
            if (!vm)
                vm = state_trans(s, (uint32_t)path, true, NULL);
            rc = vm ? vm_register(m, vm, c, next) : PB_ENOMEM;
        }
        if (rc) {
            /* undo: unregister what was registered, then drop */
            e->ncond = i;
            setent_drop(m, e);
            return NULL;
        }
    }
    return e;
}

/* Drops one reference; frees when unused. */
static void setent_release(pb_matcher *m, setent *e)
{
    if (--e->refs == 0)
        setent_drop(m, e);
}

/* ------------------------------------------------------------ patterns -- */

typedef struct idkey {
    uint64_t id;
} idkey;

static int prec_eq(const void *item, const void *key) { return ((const prec *)item)->id == ((const idkey *)key)->id; }

static void prec_free(prec *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; p->path && i < p->nsubs; i++)
        free(p->path[i]);
    free(p->path);
    free(p->len);
    free(p->terminal);
    free(p);
}

static void terms_remove(nstate *s, uint32_t idx)
{
    for (uint32_t i = 0; i < s->nterms; i++)
        if (s->terms[i] == idx) {
            s->terms[i] = s->terms[--s->nterms];
            return;
        }
}

/* Removes the sub-patterns of p recorded so far (nsubs of them). */
static void unlink_pattern(pb_matcher *m, prec *p, uint32_t nsubs)
{
    for (uint32_t s = 0; s < nsubs; s++) {
        if (p->terminal[s])
            terms_remove(p->terminal[s], p->idx);
        for (uint32_t k = p->len[s]; k-- > 0;)
            setent_release(m, p->path[s][k]);
    }
}

pb_matcher *pb_matcher_new(void)
{
    pb_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->trie = pb_path_trie_new();
    m->start = m->trie ? state_new(m) : NULL;
    if (!m->start) {
        pb_matcher_free(m);
        return NULL;
    }
    m->prepared = true;
    return m;
}

void pb_matcher_free(pb_matcher *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->pats.cap; i++)
        if (m->pats.hashes[i])
            prec_free(m->pats.items[i]);
    pb_table_free(&m->pats);
    for (size_t i = 0; i < m->sets.cap; i++)
        if (m->sets.hashes[i]) {
            setent *e = m->sets.items[i];
            free(e->conds);
            free(e->pathstr);
            free(e);
        }
    pb_table_free(&m->sets);
    for (uint32_t i = 0; i < m->nstates; i++)
        if (m->states[i]) {
            nstate *s = m->states[i];
            for (uint32_t k = 0; k < s->ntrans; k++)
                vm_free(s->trans[k].vm);
            free(s->trans);
            free(s->absent);
            free(s->terms);
            free(s);
        }
    free(m->states);
    free(m->free_state_ids);
    free(m->byidx);
    free(m->free_idx);
    free(m->dirty);
    pb_path_trie_free(m->trie);
    free(m);
}

static void release_idx(pb_matcher *m, uint32_t idx)
{
    m->byidx[idx] = NULL;
    if (!grow((void **)&m->free_idx, &m->capfree_idx, m->nfree_idx + 1, sizeof *m->free_idx))
        m->free_idx[m->nfree_idx++] = idx;
}

/* Builds the new pattern completely before touching an old one with the same
 * id, so a failure leaves the matcher exactly as it was. */
int pb_matcher_add(pb_matcher *m, uint64_t id, const pb_pattern *pat)
{
    idkey key = {id};
    uint64_t h = pb_hash_mix(id ^ 0x9e3779b97f4a7c15ULL);
    prec *old = pb_table_find(&m->pats, h, prec_eq, &key);
    prec *p = calloc(1, sizeof *p);
    if (!p)
        return PB_ENOMEM;
    p->id = id;
    p->nsubs = (uint32_t)pat->nsubs;
    p->len = calloc(pat->nsubs, sizeof *p->len);
    p->path = calloc(pat->nsubs, sizeof *p->path);
    p->terminal = calloc(pat->nsubs, sizeof *p->terminal);
    if (!p->len || !p->path || !p->terminal) {
        prec_free(p);
        return PB_ENOMEM;
    }
    if (m->nfree_idx) {
        p->idx = m->free_idx[--m->nfree_idx];
    } else {
        if (grow((void **)&m->byidx, &m->capidx, m->nidx + 1, sizeof *m->byidx)) {
            prec_free(p);
            return PB_ENOMEM;
        }
        p->idx = m->nidx++;
    }
    m->byidx[p->idx] = p;
    uint32_t done = 0;
    for (; done < p->nsubs; done++) {
        const pb_subpattern *sp = &pat->subs[done];
        p->path[done] = calloc(sp->n ? sp->n : 1, sizeof **p->path);
        if (!p->path[done])
            goto fail;
        nstate *s = m->start;
        for (size_t k = 0; k < sp->n; k++) {
            setent *e = setent_get(m, s, sp->fields[k]);
            if (!e)
                goto fail_sub;
            p->path[done][p->len[done]++] = e;
            s = e->next;
        }
        if (grow((void **)&s->terms, &s->capterms, s->nterms + 1, sizeof *s->terms))
            goto fail_sub;
        s->terms[s->nterms++] = p->idx;
        p->terminal[done] = s;
    }
    if (old) {
        /* swap the records: removing one then inserting one cannot need to grow the table */
        pb_table_remove(&m->pats, h, prec_eq, &key);
        unlink_pattern(m, old, old->nsubs);
        release_idx(m, old->idx);
        prec_free(old);
    }
    if (pb_table_insert(&m->pats, h, p))
        goto fail;
    m->prepared = false;
    return 0;
fail_sub:
    done++; /* include the partial sub-pattern (terminal is NULL) */
fail:
    unlink_pattern(m, p, done);
    release_idx(m, p->idx);
    prec_free(p);
    m->prepared = false;
    return PB_ENOMEM;
}

int pb_matcher_remove(pb_matcher *m, uint64_t id)
{
    idkey key = {id};
    uint64_t h = pb_hash_mix(id ^ 0x9e3779b97f4a7c15ULL);
    prec *p = pb_table_remove(&m->pats, h, prec_eq, &key);
    if (!p)
        return PB_ENOTFOUND;
    unlink_pattern(m, p, p->nsubs);
    release_idx(m, p->idx);
    prec_free(p);
    m->prepared = false;
    return 0;
}

int pb_matcher_prepare(pb_matcher *m)
{
    while (m->ndirty) {
        vmatch *vm = m->dirty[m->ndirty - 1]; /* freed ones leave the list (vm_release) */
        if (vm_build_tree(vm))
            return PB_ENOMEM;
        m->ndirty--;
    }
    m->prepared = true;
    return 0;
}

size_t pb_matcher_count(const pb_matcher *m) { return m->pats.n; }

size_t pb_matcher_memory(const pb_matcher *m)
{
    size_t total = sizeof *m + m->mem + pb_path_trie_memory(m->trie) + pb_table_memory(&m->sets) +
                   pb_table_memory(&m->pats) + m->capstates * sizeof(nstate *) + m->capidx * sizeof(prec *);
    for (uint32_t i = 0; i < m->nstates; i++) {
        const nstate *s = m->states[i];
        if (!s)
            continue;
        total += s->captrans * sizeof(trans) + s->capabsent * sizeof(absent) + s->capterms * sizeof(uint32_t);
        for (uint32_t k = 0; k < s->ntrans; k++) {
            const vmatch *vm = s->trans[k].vm;
            total += sizeof *vm + pb_table_memory(&vm->keyed) + vm->capl * sizeof(listcond) +
                     vm->capivs * sizeof(interval) + vm->ntree * (sizeof(interval) + sizeof(double)) +
                     vm->exists.cap * sizeof(nstate *);
            for (size_t e = 0; e < vm->keyed.cap; e++)
                if (vm->keyed.hashes[e])
                    total += ((const kentry *)vm->keyed.items[e])->next.cap * sizeof(nstate *);
        }
    }
    for (size_t i = 0; i < m->pats.cap; i++)
        if (m->pats.hashes[i]) {
            const prec *p = m->pats.items[i];
            total += sizeof *p + p->nsubs * (sizeof(uint32_t) + sizeof(setent **) + sizeof(nstate *));
            for (uint32_t s = 0; s < p->nsubs; s++)
                total += p->len[s] * sizeof(setent *);
        }
    return total;
}

/* ------------------------------------------------------------- matching -- */

pb_match_scratch *pb_match_scratch_new(void)
{
    pb_match_scratch *s = calloc(1, sizeof *s);
    if (s)
        pb_flat_init(&s->flat);
    return s;
}

void pb_match_scratch_free(pb_match_scratch *s)
{
    if (!s)
        return;
    pb_flat_free(&s->flat);
    free(s->visited);
    free(s->seen);
    free(s->stack);
    free(s->constraint);
    free(s->hits);
    free(s->ids);
    free(s->fold);
    free(s);
}

typedef struct mctx {
    const pb_matcher *m;
    pb_match_scratch *s;
    pb_error *err;
} mctx;

static inline int push_next(pb_match_scratch *s, nstate *n)
{
    if (s->nstack == s->capstack && pb_grow((void **)&s->stack, &s->capstack, s->nstack + 1, sizeof *s->stack))
        return PB_ENOMEM;
    s->stack[s->nstack++] = n;
    return 0;
}

static inline int push_all(pb_match_scratch *s, const nvec *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (push_next(s, v->v[i]))
            return PB_ENOMEM;
    return 0;
}

static int push_key(pb_match_scratch *s, const vmatch *vm, uint8_t kind, const char *p, size_t n)
{
    const kentry *e = kfind(vm, kind, p, n);
    return e ? push_all(s, &e->next) : 0;
}

static int iv_query(pb_match_scratch *s, const vmatch *vm, size_t lo, size_t hi, double x)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vm->maxhi[mid] < x)
            return 0;
        int rc = iv_query(s, vm, lo, mid, x);
        if (rc)
            return rc;
        const interval *iv = &vm->tree[mid];
        if (iv->lo > x)
            return 0;
        if ((x > iv->lo || (iv->lo_incl && x == iv->lo)) && (x < iv->hi || (iv->hi_incl && x == iv->hi)))
            if (push_next(s, iv->next))
                return PB_ENOMEM;
        lo = mid + 1;
    }
    return 0;
}

/* Pushes onto s->stack every next state vm leads to for value ff. */
static int vm_match(pb_match_scratch *s, const vmatch *vm, pb_flat_field *ff)
{
    int rc = 0;
    pb_val v = {.type = ff->type, .s = ff->val, .len = ff->len};
    bool need_fold = (ff->type == PB_V_STR && vm->n_fold) || vm->n_list_fold;
    if (need_fold && ff->type == PB_V_STR) {
        if (3 * ff->len + 4 > s->capfold &&
            pb_grow((void **)&s->fold, &s->capfold, 3 * ff->len + 4, 1))
            return PB_ENOMEM;
        v.fold = s->fold;
    }
    switch (ff->type) {
    case PB_V_STR:
        if (vm->keyed.n) {
            rc = push_key(s, vm, PB_C_STR, ff->val, ff->len);
            for (uint32_t i = 0; !rc && i < vm->prefix.n; i++)
                if (vm->prefix.v[i].len <= ff->len)
                    rc = push_key(s, vm, PB_C_PREFIX, ff->val, vm->prefix.v[i].len);
            for (uint32_t i = 0; !rc && i < vm->suffix.n; i++)
                if (vm->suffix.v[i].len <= ff->len)
                    rc = push_key(s, vm, PB_C_SUFFIX, ff->val + ff->len - vm->suffix.v[i].len, vm->suffix.v[i].len);
            if (!rc && vm->n_fold) {
                v.foldlen = pb_casefold(ff->val, ff->len, v.fold);
                v.folded = true;
                rc = push_key(s, vm, PB_C_EIC, v.fold, v.foldlen);
                for (uint32_t i = 0; !rc && i < vm->prefix_eic.n; i++)
                    if (vm->prefix_eic.v[i].len <= v.foldlen)
                        rc = push_key(s, vm, PB_C_PREFIX_EIC, v.fold, vm->prefix_eic.v[i].len);
                for (uint32_t i = 0; !rc && i < vm->suffix_eic.n; i++)
                    if (vm->suffix_eic.v[i].len <= v.foldlen)
                        rc = push_key(s, vm, PB_C_SUFFIX_EIC, v.fold + v.foldlen - vm->suffix_eic.v[i].len,
                                      vm->suffix_eic.v[i].len);
            }
        }
        break;
    case PB_V_NUM:
        if (vm->n_num || vm->ntree || vm->nlists) {
            v.num_ok = pb_flat_number(ff, &v.num);
            if (v.num_ok && vm->n_num) {
                double d = v.num == 0 ? 0.0 : v.num;
                rc = push_key(s, vm, PB_C_NUM, (const char *)&d, sizeof d);
            }
            if (!rc && v.num_ok && vm->ntree)
                rc = iv_query(s, vm, 0, vm->ntree, v.num);
        }
        break;
    case PB_V_TRUE: rc = vm->keyed.n ? push_key(s, vm, PB_C_TRUE, "", 0) : 0; break;
    case PB_V_FALSE: rc = vm->keyed.n ? push_key(s, vm, PB_C_FALSE, "", 0) : 0; break;
    case PB_V_NULL: rc = vm->keyed.n ? push_key(s, vm, PB_C_NULL, "", 0) : 0; break;
    }
    for (uint32_t i = 0; !rc && i < vm->nlists; i++)
        if (pb_cond_test(vm->lists[i].cond, &v))
            rc = push_next(s, vm->lists[i].next);
    if (!rc)
        rc = push_all(s, &vm->exists);
    return rc;
}

static bool consistent(const pb_match_scratch *s, const pb_flat_field *ff)
{
    const pb_trail_step *t = s->flat.trail + ff->trail_off;
    for (uint32_t i = 0; i < ff->trail_len; i++)
        for (size_t k = 0; k < s->ncons; k++)
            if (s->constraint[k].array == t[i].array && s->constraint[k].index != t[i].index)
                return false;
    return true;
}

static int visit(mctx *x, const nstate *st);

/* Follows one transition of st: every value at vm->path. */
static int follow(mctx *x, const vmatch *vm)
{
    pb_match_scratch *s = x->s;
    for (uint32_t i = pb_flat_first(&s->flat, vm->path); i != UINT32_MAX; i = s->flat.fields[i].next) {
        pb_flat_field *ff = &s->flat.fields[i];
        if (ff->trail_len && !consistent(s, ff))
            continue;
        size_t base = s->nstack;
        int rc = vm_match(s, vm, ff);
        if (rc)
            return rc;
        size_t top = s->nstack;
        if (top == base)
            continue;
        size_t mark = s->ncons;
        if (ff->trail_len) {
            if (pb_grow((void **)&s->constraint, &s->capcons, s->ncons + ff->trail_len, sizeof *s->constraint))
                return PB_ENOMEM;
            memcpy(s->constraint + s->ncons, s->flat.trail + ff->trail_off, ff->trail_len * sizeof *s->constraint);
            s->ncons += ff->trail_len;
        }
        for (size_t k = base; k < top; k++) {
            rc = visit(x, s->stack[k]);
            if (rc)
                return rc;
        }
        s->ncons = mark;
        s->nstack = base;
    }
    return 0;
}

static int visit(mctx *x, const nstate *st)
{
    pb_match_scratch *s = x->s;
    if (s->visited[st->id] == s->gen)
        return 0; /* already explored without constraints: nothing new to find */
    if (s->ncons == 0)
        s->visited[st->id] = s->gen;
    else if (++s->steps > MATCH_STEP_BUDGET)
        return pb_error_set(x->err, PB_ETOOCOMPLEX,
                            "Event is too complex to match: its arrays allow more than %d combinations",
                            MATCH_STEP_BUDGET);
    for (uint32_t i = 0; i < st->nterms; i++) {
        uint32_t idx = st->terms[i];
        if (s->seen[idx] != s->gen) {
            s->seen[idx] = s->gen;
            if (pb_grow((void **)&s->hits, &s->caphits, s->nhits + 1, sizeof *s->hits))
                return PB_ENOMEM;
            s->hits[s->nhits++] = idx;
        }
    }
    for (uint32_t i = 0; i < st->nabsent; i++)
        if (pb_flat_first(&s->flat, st->absent[i].path) == UINT32_MAX) {
            int rc = visit(x, st->absent[i].next);
            if (rc)
                return rc;
        }
    if (st->ntrans <= s->flat.npresent) {
        for (uint32_t i = 0; i < st->ntrans; i++) {
            int rc = follow(x, st->trans[i].vm);
            if (rc)
                return rc;
        }
    } else {
        /* many transitions, few event paths: look each event path up */
        for (size_t i = 0; i < s->flat.npresent; i++) {
            vmatch *vm = state_trans((nstate *)st, s->flat.present[i], false, NULL);
            if (vm) {
                int rc = follow(x, vm);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int pb_matcher_match(const pb_matcher *m, const char *event, size_t len, pb_match_scratch *s, const uint64_t **ids,
                     size_t *n, pb_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!m->prepared)
        return pb_error_set(err, PB_EINTERNAL, "matcher used without pb_matcher_prepare after a change");
    int rc = pb_flatten(m->trie, event, len, &s->flat, err);
    if (rc)
        return rc;
    if (m->nstates > s->capvisited) {
        size_t old = s->capvisited;
        if (pb_grow((void **)&s->visited, &s->capvisited, m->nstates, sizeof *s->visited))
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        memset(s->visited + old, 0, (s->capvisited - old) * sizeof *s->visited);
    }
    if (m->nidx > s->capseen) {
        size_t old = s->capseen;
        if (pb_grow((void **)&s->seen, &s->capseen, m->nidx, sizeof *s->seen))
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        memset(s->seen + old, 0, (s->capseen - old) * sizeof *s->seen);
    }
    if (++s->gen == 0) {
        memset(s->visited, 0, s->capvisited * sizeof *s->visited);
        memset(s->seen, 0, s->capseen * sizeof *s->seen);
        s->gen = 1;
    }
    s->nhits = s->nstack = s->ncons = s->steps = 0;
    mctx x = {m, s, err};
    rc = visit(&x, m->start);
    if (rc)
        return rc == PB_ENOMEM ? pb_error_set(err, rc, "out of memory") : rc;
    if (s->nhits > s->capids && pb_grow((void **)&s->ids, &s->capids, s->nhits, sizeof *s->ids))
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->nhits; i++)
        s->ids[i] = m->byidx[s->hits[i]]->id;
    if (s->nhits > 64) {
        qsort(s->ids, s->nhits, sizeof *s->ids, cmp_u64);
    } else {
        for (size_t i = 1; i < s->nhits; i++) { /* few results: insertion sort */
            uint64_t v = s->ids[i];
            size_t j = i;
            for (; j > 0 && s->ids[j - 1] > v; j--)
                s->ids[j] = s->ids[j - 1];
            s->ids[j] = v;
        }
    }
    *ids = s->ids;
    *n = s->nhits;
    return 0;
}
