/*
 * fuzz_multi.c — many patterns in one matcher, with adds and removes.
 *
 * Input: segments separated by NUL bytes, at most MAX_PATTERNS + 2 of them
 * (the last one takes the rest of the input, NULs included):
 *
 *     pattern_1 \0 ... \0 pattern_k \0 event \0 ops        (0 <= k <= 8)
 *
 * The last segment is a program of one byte per operation on a matcher that
 * starts empty; the one before it is the event. Patterns that do not compile
 * are dropped. Each op byte b is decoded as
 *
 *     action = b >> 6, slot = (b >> 3) & 7, pat = b & 7 (mod patterns)
 *
 *     0, 1  add the pattern under the id of slot (replacing what was there)
 *     2     remove the id of slot (PB_ENOTFOUND iff the slot is empty)
 *     3     check: when pat is 0 and the matcher changed since the last
 *           prepare, matching first must say PB_EINTERNAL; then prepare and
 *           match the event, and compare the ids with pb_pattern_eval of
 *           each live pattern.
 *
 * Only the first 64 op bytes are used. An empty program adds every pattern
 * under its own slot. A final check
 * always runs. Ids are spread over the whole uint64_t range so that their
 * ordering is tested too.
 */
#include "pattern/pb_pattern.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 8
#define SLOTS 8
#define MAX_CHECKS 16
#define MAX_OPS 64 /* further op bytes are ignored */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_multi: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static uint64_t slot_id(unsigned slot)
{
    /* not monotonic in slot, and using the top bit */
    static const uint64_t ids[SLOTS] = {
        0xffffffffffffffffULL, 0, 7, 0x8000000000000000ULL, 1, 0x7fffffffffffffffULL, 42, 0x100000000ULL,
    };
    return ids[slot];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct state {
    pb_matcher *m;
    pb_match_scratch *s;
    pb_pattern *pats[MAX_PATTERNS];
    const char *ptext[MAX_PATTERNS];
    size_t plen[MAX_PATTERNS];
    size_t npat;
    int verdict[MAX_PATTERNS]; /* eval on the event: -1 not yet, 0/1, 2 error */
    int live[SLOTS];           /* pattern index, or -1 */
    bool dirty;
    const char *ev;
    size_t evlen;
    unsigned checks;
} state;

static int verdict(state *st, int k)
{
    if (st->verdict[k] < 0) {
        bool matched = false;
        pb_error err;
        int rc = pb_pattern_eval(st->pats[k], st->ev, st->evlen, &matched, &err);
        if (rc != 0 && rc != PB_EEVENT && rc != PB_ENOMEM)
            fail("pb_pattern_eval: unexpected error code", pb_error_name(rc));
        st->verdict[k] = rc ? 2 : matched;
    }
    return st->verdict[k];
}

static void check(state *st, bool expect_unprepared)
{
    pb_error err;
    const uint64_t *ids = NULL;
    size_t n = 0;
    if (expect_unprepared && st->dirty) {
        int rc = pb_matcher_match(st->m, st->ev, st->evlen, st->s, &ids, &n, &err);
        if (rc != PB_EINTERNAL)
            fail("match on an unprepared matcher did not say PB_EINTERNAL", pb_error_name(rc));
    }
    int rc = pb_matcher_prepare(st->m);
    if (rc == PB_ENOMEM)
        return;
    if (rc)
        fail("pb_matcher_prepare: unexpected error code", pb_error_name(rc));
    st->dirty = false;

    size_t nlive = 0;
    for (unsigned i = 0; i < SLOTS; i++)
        nlive += st->live[i] >= 0;
    if (pb_matcher_count(st->m) != nlive)
        fail("pb_matcher_count differs from the live patterns", NULL);
    (void)pb_matcher_memory(st->m);

    rc = pb_matcher_match(st->m, st->ev, st->evlen, st->s, &ids, &n, &err);
    if (rc != 0) {
        if (rc != PB_EEVENT && rc != PB_ETOOCOMPLEX && rc != PB_ENOMEM)
            fail("pb_matcher_match: unexpected error code", pb_error_name(rc));
        return;
    }
    for (size_t i = 1; i < n; i++)
        if (ids[i] <= ids[i - 1])
            fail("matcher ids not strictly ascending", NULL);

    uint64_t want[SLOTS];
    size_t nwant = 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        if (st->live[i] < 0)
            continue;
        int v = verdict(st, st->live[i]);
        if (v == 2)
            return; /* eval could not parse the event: nothing to compare */
        if (v)
            want[nwant++] = slot_id(i);
    }
    qsort(want, nwant, sizeof *want, cmp_u64);
    if (n != nwant || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        fprintf(stderr, "event: %.*s\n", (int)st->evlen, st->ev);
        for (unsigned i = 0; i < SLOTS; i++)
            if (st->live[i] >= 0)
                fprintf(stderr, "id %016llx: pattern %d %.*s -> eval %s\n", (unsigned long long)slot_id(i),
                        st->live[i], (int)st->plen[st->live[i]], st->ptext[st->live[i]],
                        verdict(st, st->live[i]) ? "match" : "no match");
        fprintf(stderr, "matcher ids:");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %016llx", (unsigned long long)ids[i]);
        fprintf(stderr, "\n");
        fail("matcher and eval disagree", NULL);
    }
}

/* Adds a freshly compiled copy of pattern k and frees it at once: the
 * matcher must own everything it needs. */
static int add_fresh(state *st, unsigned slot, size_t k)
{
    pb_pattern *p;
    pb_error err;
    int rc = pb_pattern_compile(st->ptext[k], st->plen[k], &p, &err);
    if (rc == PB_ENOMEM)
        return rc;
    if (rc)
        fail("a pattern that compiled once no longer compiles", err.message);
    rc = pb_matcher_add(st->m, slot_id(slot), p);
    pb_pattern_free(p);
    return rc;
}

static void run(state *st, const uint8_t *ops, size_t nops)
{
    if (nops == 0) {
        for (size_t k = 0; k < st->npat && k < SLOTS; k++) {
            int rc = add_fresh(st, (unsigned)k, k);
            if (rc == PB_ENOMEM)
                return;
            if (rc)
                fail("pb_matcher_add: unexpected error code", pb_error_name(rc));
            st->live[k] = (int)k;
            st->dirty = true;
        }
    }
    if (nops > MAX_OPS)
        nops = MAX_OPS;
    for (size_t i = 0; i < nops; i++) {
        unsigned b = ops[i], action = b >> 6, slot = (b >> 3) & 7, pat = b & 7;
        int rc;
        switch (action) {
        case 0:
        case 1:
            if (!st->npat)
                break;
            pat %= st->npat;
            rc = add_fresh(st, slot, pat);
            if (rc == PB_ENOMEM)
                break; /* the matcher is unchanged on failure */
            if (rc)
                fail("pb_matcher_add: unexpected error code", pb_error_name(rc));
            st->live[slot] = (int)pat;
            st->dirty = true;
            break;
        case 2:
            rc = pb_matcher_remove(st->m, slot_id(slot));
            if (st->live[slot] >= 0 ? rc != 0 : rc != PB_ENOTFOUND)
                fail("pb_matcher_remove: wrong result", pb_error_name(rc));
            if (rc == 0) {
                st->live[slot] = -1;
                st->dirty = true;
            }
            break;
        case 3:
            if (st->checks++ < MAX_CHECKS)
                check(st, pat == 0);
            break;
        }
    }
    check(st, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *seg[MAX_PATTERNS + 2];
    size_t segl[MAX_PATTERNS + 2], nseg = 0, off = 0;
    while (nseg < MAX_PATTERNS + 1) {
        const uint8_t *nul = off < size ? memchr(data + off, 0, size - off) : NULL;
        if (!nul)
            break;
        seg[nseg] = data + off;
        segl[nseg] = (size_t)(nul - (data + off));
        nseg++;
        off += segl[nseg - 1] + 1;
    }
    seg[nseg] = data + off;
    segl[nseg] = size - off;
    nseg++;
    if (nseg < 2)
        return 0;

    state st;
    memset(&st, 0, sizeof st);
    for (unsigned i = 0; i < SLOTS; i++)
        st.live[i] = -1;
    for (unsigned i = 0; i < MAX_PATTERNS; i++)
        st.verdict[i] = -1;

    /* exact-size copies so that ASan sees any read past either end */
    char *copies[MAX_PATTERNS + 2] = {0};
    for (size_t i = 0; i < nseg; i++) {
        copies[i] = malloc(segl[i] ? segl[i] : 1);
        if (!copies[i])
            goto out;
        if (segl[i])
            memcpy(copies[i], seg[i], segl[i]);
    }
    st.ev = copies[nseg - 2];
    st.evlen = segl[nseg - 2];
    for (size_t i = 0; i + 2 < nseg; i++) {
        pb_pattern *p;
        pb_error err;
        if (pb_pattern_compile(copies[i], segl[i], &p, &err))
            continue;
        st.ptext[st.npat] = copies[i];
        st.plen[st.npat] = segl[i];
        st.pats[st.npat++] = p;
    }
    st.m = pb_matcher_new();
    st.s = pb_match_scratch_new();
    if (st.m && st.s)
        run(&st, (const uint8_t *)copies[nseg - 1], segl[nseg - 1]);
out:
    pb_match_scratch_free(st.s);
    pb_matcher_free(st.m);
    for (size_t i = 0; i < st.npat; i++)
        pb_pattern_free(st.pats[i]);
    for (size_t i = 0; i < nseg; i++)
        free(copies[i]);
    return 0;
}
