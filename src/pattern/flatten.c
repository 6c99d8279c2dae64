/*
 * flatten.c — the path trie and the single-pass event flattener (hot path).
 *
 * The trie holds every path the patterns of a matcher mention, split into
 * dot-separated segments, so that the event key "a.b" and the nested keys
 * a -> b reach the same node (EventBridge joins paths with dots). Nodes that
 * end a tested path carry its id.
 *
 * The flattener reads the raw event text once, left to right, without
 * building a tree. For each key it asks the trie whether anything below is
 * wanted; when not, the whole value is skipped: strings with a vector search
 * for the closing quote, objects and arrays 64 bytes at a time with bit masks
 * of quotes, backslashes and brackets (the in-string mask is a prefix XOR of
 * the quote mask), so skipped subtrees cost a few instructions per 64 bytes.
 * Wanted leaf values are appended to pb_flat with their array membership
 * ("trail"), which the matcher needs for EventBridge's same-array-element rule.
 * Scalars directly inside an array record no step for that array (they cannot
 * share an element with another field).
 *
 * The parts the flattener reads are checked strictly; skipped parts only for
 * balanced brackets and terminated strings. Callers that need a whole
 * document validated (the API) validate it before matching.
 */
#include "pattern_internal.h"

#include "common/pb_hash.h"
#include "common/pb_table.h"
#include "json/pb_number.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------ path trie -- */

typedef struct ptnode ptnode;

typedef struct ptchild {
    ptnode *node;
    uint32_t seglen;
    char seg[];
} ptchild;

#define FEW_KIDS 8

struct ptnode {
    int32_t leaf;      /* path id, or -1 */
    uint32_t leafrefs; /* references to the leaf path */
    uint32_t refs;     /* leaf references at or below this node */
    pb_table kids;     /* ptchild* by segment */
    uint32_t nfew;     /* when kids.n <= FEW_KIDS: the kids again, scanned linearly */
    ptchild *few[FEW_KIDS];
};

struct pb_path_trie {
    ptnode root;
    uint32_t next_id;
    uint32_t *free_ids;
    size_t nfree, freecap;
    size_t mem;
};

typedef struct segkey {
    const char *s;
    size_t n;
} segkey;

static int seg_eq(const void *item, const void *key)
{
    const ptchild *c = item;
    const segkey *k = key;
    return c->seglen == k->n && memcmp(c->seg, k->s, k->n) == 0;
}

/* Refreshes the linear list after the table changed. */
static void few_refresh(ptnode *n)
{
    n->nfew = 0;
    if (n->kids.n > FEW_KIDS)
        return;
    for (size_t i = 0; i < n->kids.cap; i++)
        if (n->kids.hashes[i])
            n->few[n->nfew++] = n->kids.items[i];
}

static inline ptnode *child(const ptnode *n, const char *s, size_t len)
{
    if (n->kids.n <= FEW_KIDS) {
        /* few children (the common case): compare lengths, then bytes; no hashing */
        for (uint32_t i = 0; i < n->nfew; i++) {
            const ptchild *c = n->few[i];
            if (c->seglen == len && (len == 0 || (c->seg[0] == s[0] && memcmp(c->seg, s, len) == 0)))
                return c->node;
        }
        return NULL;
    }
    segkey k = {s, len};
    ptchild *c = pb_table_find(&n->kids, pb_hash_bytes(s, len, 0x51), seg_eq, &k);
    return c ? c->node : NULL;
}

pb_path_trie *pb_path_trie_new(void)
{
    pb_path_trie *t = calloc(1, sizeof *t);
    if (t)
        t->root.leaf = -1;
    return t;
}

static void node_free(ptnode *n)
{
    for (size_t i = 0; i < n->kids.cap; i++)
        if (n->kids.hashes[i]) {
            ptchild *c = n->kids.items[i];
            node_free(c->node);
            free(c->node);
            free(c);
        }
    pb_table_free(&n->kids);
}

void pb_path_trie_free(pb_path_trie *t)
{
    if (!t)
        return;
    node_free(&t->root);
    free(t->free_ids);
    free(t);
}

int32_t pb_path_trie_intern(pb_path_trie *t, const char *path, size_t n)
{
    /* first pass: create missing nodes (refs are bumped only on success) */
    ptnode *node = &t->root;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && path[j] != '.')
            j++;
        ptnode *c = child(node, path + i, j - i);
        if (!c) {
            ptchild *pc = malloc(sizeof *pc + (j - i) + 1);
            c = calloc(1, sizeof *c);
            if (!pc || !c || pb_table_insert(&node->kids, pb_hash_bytes(path + i, j - i, 0x51), pc)) {
                free(pc);
                free(c);
                return PB_ENOMEM;
            }
            c->leaf = -1;
            pc->node = c;
            pc->seglen = (uint32_t)(j - i);
            memcpy(pc->seg, path + i, j - i);
            pc->seg[j - i] = '\0';
            few_refresh(node);
            t->mem += sizeof *pc + (j - i) + 1 + sizeof *c;
        }
        node = c;
        if (j >= n)
            break;
        i = j + 1;
    }
    if (node->leaf < 0) {
        uint32_t id = t->nfree ? t->free_ids[--t->nfree] : t->next_id++;
        node->leaf = (int32_t)id;
    }
    node->leafrefs++;
    /* second pass: count the reference on every node along the path */
    ptnode *w = &t->root;
    w->refs++;
    for (i = 0;;) {
        size_t j = i;
        while (j < n && path[j] != '.')
            j++;
        w = child(w, path + i, j - i);
        w->refs++;
        if (j >= n)
            break;
        i = j + 1;
    }
    return node->leaf;
}

void pb_path_trie_release(pb_path_trie *t, const char *path, size_t n)
{
    /* segments of the path, and the node reached after each */
    size_t nseg = 1;
    for (size_t i = 0; i < n; i++)
        nseg += path[i] == '.';
    segkey *segs = malloc(nseg * sizeof *segs);
    ptnode **nodes = malloc((nseg + 1) * sizeof *nodes);
    if (!segs || !nodes)
        goto out; /* leaks one reference; harmless beyond memory */
    nodes[0] = &t->root;
    for (size_t i = 0, k = 0;; k++) {
        size_t j = i;
        while (j < n && path[j] != '.')
            j++;
        segs[k].s = path + i;
        segs[k].n = j - i;
        nodes[k + 1] = child(nodes[k], path + i, j - i);
        if (!nodes[k + 1])
            goto out; /* never interned */
        if (j >= n)
            break;
        i = j + 1;
    }
    ptnode *leaf = nodes[nseg];
    if (--leaf->leafrefs == 0) {
        if (t->nfree == t->freecap) {
            size_t nc = t->freecap ? t->freecap * 2 : 16;
            uint32_t *nf = realloc(t->free_ids, nc * sizeof *nf);
            if (nf) {
                t->free_ids = nf;
                t->freecap = nc;
            }
        }
        if (t->nfree < t->freecap)
            t->free_ids[t->nfree++] = (uint32_t)leaf->leaf;
        leaf->leaf = -1;
    }
    t->root.refs--;
    for (size_t d = nseg; d >= 1; d--) {
        ptnode *nd = nodes[d];
        if (--nd->refs > 0)
            continue;
        ptchild *pc = pb_table_remove(&nodes[d - 1]->kids, pb_hash_bytes(segs[d - 1].s, segs[d - 1].n, 0x51),
                                      seg_eq, &segs[d - 1]);
        if (pc) {
            few_refresh(nodes[d - 1]);
            t->mem -= sizeof *pc + pc->seglen + 1 + sizeof *nd;
            pb_table_free(&nd->kids);
            free(nd);
            free(pc);
        }
    }
out:
    free(segs);
    free(nodes);
}

uint32_t pb_path_trie_ids(const pb_path_trie *t) { return t->next_id; }

static size_t node_mem(const ptnode *n)
{
    size_t m = pb_table_memory(&n->kids);
    for (size_t i = 0; i < n->kids.cap; i++)
        if (n->kids.hashes[i])
            m += node_mem(((ptchild *)n->kids.items[i])->node);
    return m;
}

size_t pb_path_trie_memory(const pb_path_trie *t) { return sizeof *t + t->mem + node_mem(&t->root); }

/* --------------------------------------------------------- byte scanning -- */

static inline uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

typedef struct masks {
    uint64_t quote, bs, open, close;
} masks;

static inline void classify64(const char *p, masks *m)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    const __m128i o = _mm_set1_epi8('{'), c = _mm_set1_epi8('}'), lower = _mm_set1_epi8(0x20);
    uint64_t mq = 0, mb = 0, mo = 0, mc = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i vl = _mm_or_si128(v, lower); /* '[' -> '{', ']' -> '}' */
        mq |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) << (16 * k);
        mb |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)) << (16 * k);
        mo |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(vl, o)) << (16 * k);
        mc |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(vl, c)) << (16 * k);
    }
    m->quote = mq;
    m->bs = mb;
    m->open = mo;
    m->close = mc;
#else
    uint64_t mq = 0, mb = 0, mo = 0, mc = 0;
    for (int k = 0; k < 64; k++) {
        char ch = p[k];
        uint64_t bit = 1ULL << k;
        if (ch == '"')
            mq |= bit;
        else if (ch == '\\')
            mb |= bit;
        else if (ch == '{' || ch == '[')
            mo |= bit;
        else if (ch == '}' || ch == ']')
            mc |= bit;
    }
    m->quote = mq;
    m->bs = mb;
    m->open = mo;
    m->close = mc;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
#define PB_HAVE_AVX2_SKIP 1
__attribute__((target("avx2"), always_inline)) static inline void classify64_avx2(const char *p, masks *m)
{
    const __m256i q = _mm256_set1_epi8('"'), b = _mm256_set1_epi8('\\');
    const __m256i o = _mm256_set1_epi8('{'), c = _mm256_set1_epi8('}'), lower = _mm256_set1_epi8(0x20);
    __m256i v0 = _mm256_loadu_si256((const __m256i *)p), v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
    __m256i l0 = _mm256_or_si256(v0, lower), l1 = _mm256_or_si256(v1, lower);
#define PB_MASK(a, x) ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, x)))
    m->quote = PB_MASK(v0, q) | PB_MASK(v1, q) << 32;
    m->bs = PB_MASK(v0, b) | PB_MASK(v1, b) << 32;
    m->open = PB_MASK(l0, o) | PB_MASK(l1, o) << 32;
    m->close = PB_MASK(l0, c) | PB_MASK(l1, c) << 32;
#undef PB_MASK
}
#endif

/* Bits of characters escaped by a backslash; *carry says the first character
 * of this block is escaped and is updated for the next block. */
static inline uint64_t escaped_bits(uint64_t bs, uint64_t *carry)
{
    uint64_t esc = *carry;
    *carry = 0;
    while (bs) {
        int i = __builtin_ctzll(bs);
        bs &= bs - 1;
        if (esc >> i & 1)
            continue; /* an escaped backslash escapes nothing */
        if (i == 63)
            *carry = 1;
        else
            esc |= 1ULL << (i + 1);
    }
    return esc;
}

/* p is just past an opening bracket; returns just past its closing bracket,
 * or NULL if the text ends first or nesting inside goes deeper than
 * max_depth more levels (*too_deep is then set). Defined twice below: for
 * any x86-64 (SSE2) and for CPUs with AVX2 and POPCNT, chosen at run time. */
#define PB_DEFINE_SKIP(NAME, CLASSIFY, ATTR)                                                         \
    ATTR static const char *NAME(const char *p, const char *end, uint64_t max_depth, int *too_deep) \
    {                                                                                                \
        uint64_t depth = 1, in_str = 0, carry = 0;                                                   \
        char tmp[64];                                                                                \
        while (p < end) {                                                                            \
            const char *blk = p;                                                                     \
            size_t avail = (size_t)(end - p);                                                        \
            if (avail < 64) {                                                                        \
                memset(tmp, 0, sizeof tmp);                                                          \
                memcpy(tmp, p, avail);                                                               \
                blk = tmp;                                                                           \
            }                                                                                        \
            masks m;                                                                                 \
            CLASSIFY(blk, &m);                                                                       \
            if (m.bs | carry)                                                                        \
                m.quote &= ~escaped_bits(m.bs, &carry);                                              \
            uint64_t inside = prefix_xor(m.quote) ^ in_str;                                          \
            in_str = (uint64_t)((int64_t)inside >> 63);                                              \
            uint64_t open = m.open & ~inside, close = m.close & ~inside;                             \
            uint64_t nclose = (uint64_t)__builtin_popcountll(close);                                 \
            uint64_t nopen = (uint64_t)__builtin_popcountll(open);                                   \
            if (nclose < depth && depth + nopen <= max_depth) {                                      \
                depth += nopen - nclose; /* cannot close nor get too deep here */                    \
            } else {                                                                                 \
                uint64_t both = open | close;                                                        \
                while (both) {                                                                       \
                    int i = __builtin_ctzll(both);                                                   \
                    both &= both - 1;                                                                \
                    if (open >> i & 1) {                                                             \
                        if (++depth > max_depth) {                                                   \
                            *too_deep = 1;                                                           \
                            return NULL;                                                             \
                        }                                                                            \
                    } else if (--depth == 0) {                                                       \
                        return p + i + 1;                                                            \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
            p += 64;                                                                                 \
        }                                                                                            \
        return NULL;                                                                                 \
    }

PB_DEFINE_SKIP(skip_container_generic, classify64, )
#ifdef PB_HAVE_AVX2_SKIP
PB_DEFINE_SKIP(skip_container_avx2, classify64_avx2, __attribute__((target("avx2,popcnt,bmi"))))
#endif

int pb_flatten_generic_only; /* tests set it to exercise the portable skipper */

static inline const char *skip_container(const char *p, const char *end, uint64_t max_depth, int *too_deep)
{
#ifdef PB_HAVE_AVX2_SKIP
    if (!pb_flatten_generic_only && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt"))
        return skip_container_avx2(p, end, max_depth, too_deep);
#endif
    return skip_container_generic(p, end, max_depth, too_deep);
}

/* p is just past an opening quote; returns the closing quote, or NULL.
 * *esc is set when the string holds a backslash. */
static inline const char *find_quote(const char *p, const char *end, int *esc)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        unsigned mq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q));
        unsigned mb = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b));
        if (mb && (!mq || __builtin_ctz(mb) < __builtin_ctz(mq))) {
            *esc = 1;
            p += __builtin_ctz(mb) + 2;
            continue;
        }
        if (mq)
            return p + __builtin_ctz(mq);
        p += 16;
    }
#endif
    while (p < end) {
        if (*p == '"')
            return p;
        if (*p == '\\') {
            *esc = 1;
            p += 2;
            continue;
        }
        p++;
    }
    return NULL;
}

/* --------------------------------------------------------------- flatten -- */

typedef struct fctx {
    const char *end;
    const pb_path_trie *t;
    pb_flat *f;
    pb_error *err;
    uint32_t arrays; /* array ids handed out */
    size_t trail;    /* current depth of f->stack */
    int depth;
} fctx;

static int bad(fctx *x, const char *what)
{
    return pb_error_set(x->err, PB_EEVENT, "Event is not valid JSON: %s", what);
}

static inline const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

void pb_flat_init(pb_flat *f) { memset(f, 0, sizeof *f); }

void pb_flat_free(pb_flat *f)
{
    free(f->fields);
    free(f->trail);
    free(f->strbuf);
    free(f->stack);
    free(f->head);
    free(f->stamp);
    free(f->present);
    memset(f, 0, sizeof *f);
}

/* Decodes a JSON string body s[0..n) with escapes into the scratch buffer
 * (room for the whole event was reserved, so pointers stay valid). */
static int decode(fctx *x, const char *s, size_t n, const char **out, size_t *outlen)
{
    pb_flat *f = x->f;
    char *o = f->strbuf + f->strlen;
    size_t at, w;
    switch (pb_json_unescape(s, n, o, &w, &at)) {
    case PB_JSON_ESC_OK: break;
    case PB_JSON_ESC_CONTROL: return bad(x, "control character in string");
    default: return bad(x, "bad escape");
    }
    *out = o;
    *outlen = w;
    f->strlen += w;
    return 0;
}

static int emit(fctx *x, const ptnode *node, uint8_t type, const char *val, size_t len)
{
    pb_flat *f = x->f;
    if (pb_grow((void **)&f->fields, &f->cap, f->n + 1, sizeof *f->fields))
        return PB_ENOMEM;
    uint32_t path = (uint32_t)node->leaf;
    pb_flat_field *ff = &f->fields[f->n];
    ff->path = path;
    ff->type = type;
    ff->num_state = 0;
    ff->val = val;
    ff->len = len;
    ff->trail_len = (uint16_t)x->trail;
    ff->trail_off = (uint32_t)f->ntrail;
    if (x->trail) {
        if (pb_grow((void **)&f->trail, &f->trailcap, f->ntrail + x->trail, sizeof *f->trail))
            return PB_ENOMEM;
        memcpy(f->trail + f->ntrail, f->stack, x->trail * sizeof *f->stack);
        f->ntrail += x->trail;
    }
    if (f->stamp[path] != f->gen) {
        f->stamp[path] = f->gen;
        ff->next = UINT32_MAX;
        if (pb_grow((void **)&f->present, &f->presentcap, f->npresent + 1, sizeof *f->present))
            return PB_ENOMEM;
        f->present[f->npresent++] = path;
    } else {
        ff->next = f->head[path];
    }
    f->head[path] = (uint32_t)f->n;
    f->n++;
    return 0;
}

static const char *value(fctx *x, const char *p, const ptnode *node, int *rc);

/* Skips one value of any type; returns the position after it or NULL. */
static const char *skip_value(fctx *x, const char *p, int *rc)
{
    const char *end = x->end;
    if (p >= end) {
        *rc = bad(x, "unexpected end");
        return NULL;
    }
    char c = *p;
    if (c == '"') {
        int esc = 0;
        const char *q = find_quote(p + 1, end, &esc);
        if (!q)
            *rc = bad(x, "unterminated string");
        return q ? q + 1 : NULL;
    }
    if (c == '{' || c == '[') {
        int too_deep = 0;
        int room = PB_EVENT_MAX_DEPTH - x->depth; /* levels left, this one included */
        const char *q = room > 0 ? skip_container(p + 1, end, (uint64_t)room, &too_deep) : NULL;
        if (!q) {
            if (too_deep || room <= 0)
                *rc = pb_error_set(x->err, PB_EEVENT, "Event is nested deeper than %d levels", PB_EVENT_MAX_DEPTH);
            else
                *rc = bad(x, "unterminated object or array");
        }
        return q;
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\n' && *q != '\r' && *q != '\t')
        q++;
    if (q == p) {
        *rc = bad(x, "expected a value");
        return NULL;
    }
    return q;
}

static const char *object(fctx *x, const char *p, const ptnode *node, int *rc)
{
    const char *end = x->end;
    p = ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= end || *p != '"') {
            *rc = bad(x, "expected a key");
            return NULL;
        }
        int esc = 0;
        const char *q = find_quote(p + 1, end, &esc);
        if (!q) {
            *rc = bad(x, "unterminated key");
            return NULL;
        }
        const char *key = p + 1;
        size_t keylen = (size_t)(q - key);
        size_t mark = x->f->strlen;
        if (esc) {
            *rc = decode(x, key, keylen, &key, &keylen);
            if (*rc)
                return NULL;
        }
        /* walk the key's dot-separated segments down the trie */
        const ptnode *c = node;
        for (size_t i = 0; c;) {
            size_t j = i;
            while (j < keylen && key[j] != '.')
                j++;
            c = child(c, key + i, j - i);
            if (j >= keylen)
                break;
            i = j + 1;
        }
        x->f->strlen = mark; /* a decoded key is not needed any more */
        p = ws(q + 1, end);
        if (p >= end || *p != ':') {
            *rc = bad(x, "expected ':'");
            return NULL;
        }
        p = ws(p + 1, end);
        p = c ? value(x, p, c, rc) : skip_value(x, p, rc);
        if (!p)
            return NULL;
        p = ws(p, end);
        if (p < end && *p == ',') {
            p = ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        *rc = bad(x, "expected ',' or '}'");
        return NULL;
    }
}

static const char *array(fctx *x, const char *p, const ptnode *node, int *rc)
{
    const char *end = x->end;
    pb_flat *f = x->f;
    uint32_t id = x->arrays++;
    uint32_t index = 0;
    p = ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;; index++) {
        if (p >= end) {
            *rc = bad(x, "unterminated array");
            return NULL;
        }
        if (*p == '{' || *p == '[') {
            if (pb_grow((void **)&f->stack, &f->stackcap, x->trail + 1, sizeof *f->stack)) {
                *rc = PB_ENOMEM;
                return NULL;
            }
            f->stack[x->trail].array = id;
            f->stack[x->trail].index = index;
            x->trail++;
            p = value(x, p, node, rc);
            x->trail--;
        } else {
            p = value(x, p, node, rc);
        }
        if (!p)
            return NULL;
        p = ws(p, end);
        if (p < end && *p == ',') {
            p = ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        *rc = bad(x, "expected ',' or ']'");
        return NULL;
    }
}

/* Reads one value at trie node `node` (which is wanted: a leaf, or has
 * wanted children). */
static const char *value(fctx *x, const char *p, const ptnode *node, int *rc)
{
    const char *end = x->end;
    if (p >= end) {
        *rc = bad(x, "unexpected end");
        return NULL;
    }
    switch (*p) {
    case '{':
        if (!node->kids.n)
            return skip_value(x, p, rc);
        if (++x->depth > PB_EVENT_MAX_DEPTH) {
            *rc = pb_error_set(x->err, PB_EEVENT, "Event is nested deeper than %d levels", PB_EVENT_MAX_DEPTH);
            return NULL;
        }
        p = object(x, p, node, rc);
        x->depth--;
        return p;
    case '[':
        if (++x->depth > PB_EVENT_MAX_DEPTH) {
            *rc = pb_error_set(x->err, PB_EEVENT, "Event is nested deeper than %d levels", PB_EVENT_MAX_DEPTH);
            return NULL;
        }
        p = array(x, p, node, rc);
        x->depth--;
        return p;
    case '"': {
        int esc = 0;
        const char *q = find_quote(p + 1, end, &esc);
        if (!q) {
            *rc = bad(x, "unterminated string");
            return NULL;
        }
        if (node->leaf < 0)
            return q + 1;
        const char *s = p + 1;
        size_t n = (size_t)(q - s);
        if (esc) {
            *rc = decode(x, s, n, &s, &n);
            if (*rc)
                return NULL;
        } else {
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20) {
                    *rc = bad(x, "control character in string");
                    return NULL;
                }
        }
        *rc = emit(x, node, PB_V_STR, s, n);
        return *rc ? NULL : q + 1;
    }
    case 't':
    case 'f':
    case 'n': {
        const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        size_t wl = strlen(word);
        if ((size_t)(end - p) < wl || memcmp(p, word, wl) != 0) {
            *rc = bad(x, "unrecognized token");
            return NULL;
        }
        if (node->leaf >= 0) {
            *rc = emit(x, node, *p == 't' ? PB_V_TRUE : *p == 'f' ? PB_V_FALSE : PB_V_NULL, p, wl);
            if (*rc)
                return NULL;
        }
        return p + wl;
    }
    default: {
        if (node->leaf < 0) {
            size_t n = pb_number_scan(p, (size_t)(end - p));
            if (n == 0) {
                *rc = bad(x, "expected a value");
                return NULL;
            }
            return p + n;
        }
        double d = 0;
        bool ok = false;
        size_t n = pb_number_scan_parse(p, (size_t)(end - p), &d, &ok); /* one pass: scan and convert */
        if (n == 0) {
            *rc = bad(x, "expected a value");
            return NULL;
        }
        *rc = emit(x, node, PB_V_NUM, p, n);
        if (*rc)
            return NULL;
        pb_flat_field *ff = &x->f->fields[x->f->n - 1];
        ff->num = d;
        ff->num_state = ok ? 1 : 2;
        return p + n;
    }
    }
}

int pb_flatten(const pb_path_trie *t, const char *event, size_t len, pb_flat *f, pb_error *err)
{
    if (len > PB_EVENT_MAX_BYTES)
        return pb_error_set(err, PB_EEVENT, "Event is larger than %d bytes", PB_EVENT_MAX_BYTES);
    uint32_t ids = pb_path_trie_ids(t);
    if (ids > f->headcap) {
        size_t cap = f->headcap, cap2 = f->headcap;
        if (pb_grow((void **)&f->head, &cap, ids, sizeof *f->head) ||
            pb_grow((void **)&f->stamp, &cap2, ids, sizeof *f->stamp))
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        memset(f->stamp + f->headcap, 0, (cap2 - f->headcap) * sizeof *f->stamp);
        f->headcap = cap < cap2 ? cap : cap2;
    }
    if (++f->gen == 0) {
        memset(f->stamp, 0, f->headcap * sizeof *f->stamp);
        f->gen = 1;
    }
    if (len + 1 > f->strcap) {
        char *nb = realloc(f->strbuf, len + 1);
        if (!nb)
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        f->strbuf = nb;
        f->strcap = len + 1;
    }
    f->n = f->ntrail = f->strlen = f->npresent = 0;
    fctx x = {.end = event + len, .t = t, .f = f, .err = err, .depth = 1}; /* the top-level object is level 1 */
    const char *p = ws(event, x.end);
    if (p >= x.end || *p != '{')
        return pb_error_set(err, PB_EEVENT, "Event must be a JSON object");
    int rc = 0;
    p = t->root.kids.n ? object(&x, p, &t->root, &rc) : skip_value(&x, p, &rc);
    if (!p)
        return rc ? rc : bad(&x, "malformed");
    p = ws(p, x.end);
    if (p != x.end)
        return bad(&x, "trailing characters after the object");
    return 0;
}

bool pb_flat_number(pb_flat_field *ff, double *out)
{
    if (ff->num_state == 0)
        ff->num_state = pb_number_parse_scanned(ff->val, ff->len, &ff->num) == 0 ? 1 : 2;
    *out = ff->num;
    return ff->num_state == 1;
}
