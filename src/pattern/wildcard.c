/*
 * wildcard.c — the `wildcard` operator: validation and matching.
 *
 * `*` matches zero or more characters (slashes included); `\*` is a literal
 * star and `\\` a literal backslash; any other escape is invalid. Two
 * consecutive unescaped stars are rejected, and so are patterns whose
 * automaton EventBridge deems too complex (see complexity() below).
 */
#include "pattern_internal.h"

#include "common/pb_hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The complexity check.
 *
 * EventBridge rejects wildcard values whose automaton can keep too many states
 * alive at once. aws/event-ruler measures this (MachineComplexityEvaluator) as
 * the largest number of states of the wildcard's automaton that one input can
 * activate together; the automaton matches the value in quotes, so a star
 * right after the opening quote counts too. Equivalently: the most prefixes of
 * "\"" + value + "\"" that match one input string at the same time. We
 * compute it exactly by exploring the subsets of pattern positions reachable
 * by some input (a small DFA construction), stopping as soon as the limit is
 * passed. AWS accepts /Users/ * /dir/dir/dir/dir/dir/doc.txt (7 states) and
 * rejects *:*:*:*:*:event-bus/ * (10); its exact threshold is unpublished, so
 * we reject above PB_WILDCARD_MAX_COMPLEXITY (docs/PATTERNS.md). */
#define PB_WILDCARD_MAX_COMPLEXITY 8
#define STAR 256
#define MAX_SUBSETS 4096

typedef struct wexplore {
    const int *tok;
    size_t m, words;
    uint64_t *pool; /* subsets, words each */
    size_t nsub, capsub;
    uint32_t *table; /* hash of subset index+1 */
    size_t tcap;
} wexplore;

static void closure(const wexplore *x, uint64_t *s)
{
    for (size_t j = 0; j < x->m; j++)
        if ((s[j >> 6] >> (j & 63) & 1) && x->tok[j] == STAR)
            s[(j + 1) >> 6] |= 1ULL << ((j + 1) & 63);
}

static int count_active(const wexplore *x, const uint64_t *s)
{
    int n = 0;
    for (size_t w = 0; w < x->words; w++)
        n += __builtin_popcountll(s[w]);
    return n - (int)(s[0] & 1); /* position 0 is the empty prefix */
}

/* Index of subset s in the pool, adding it if new; -1 when the pool is full. */
static long intern(wexplore *x, const uint64_t *s, bool *added)
{
    uint64_t h = pb_hash_bytes(s, x->words * 8, 7);
    size_t i = h & (x->tcap - 1);
    *added = false;
    while (x->table[i]) {
        const uint64_t *t = x->pool + (size_t)(x->table[i] - 1) * x->words;
        if (!memcmp(t, s, x->words * 8))
            return x->table[i] - 1;
        i = (i + 1) & (x->tcap - 1);
    }
    if (x->nsub >= x->capsub)
        return -1;
    memcpy(x->pool + x->nsub * x->words, s, x->words * 8);
    x->table[i] = (uint32_t)++x->nsub;
    *added = true;
    return (long)x->nsub - 1;
}

/* Returns the complexity, or PB_WILDCARD_MAX_COMPLEXITY + 1 once it is passed
 * (or when exploring would take more than MAX_SUBSETS subsets), or -1 (memory). */
static int complexity(const char *s, size_t n)
{
    int *tok = malloc((n + 2) * sizeof *tok);
    if (!tok)
        return -1;
    size_t m = 0;
    tok[m++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            tok[m++] = (unsigned char)s[++i];
        else
            tok[m++] = s[i] == '*' ? STAR : (unsigned char)s[i];
    }
    tok[m++] = '"';
    wexplore x = {.tok = tok, .m = m, .words = (m + 1 + 63) / 64, .capsub = MAX_SUBSETS, .tcap = 2 * MAX_SUBSETS};
    x.pool = calloc(x.capsub * x.words, 8);
    x.table = calloc(x.tcap, sizeof *x.table);
    uint64_t *cur = calloc(x.words, 8);
    int worst = -1;
    if (!x.pool || !x.table || !cur)
        goto out;
    /* the alphabet: every literal byte of the pattern, plus one byte that is none of them */
    bool used[256] = {false};
    int alpha[257], na = 0;
    for (size_t j = 0; j < m; j++)
        if (tok[j] != STAR && !used[tok[j]]) {
            used[tok[j]] = true;
            alpha[na++] = tok[j];
        }
    for (int b = 1; b < 256; b++)
        if (!used[b]) {
            alpha[na++] = b;
            break;
        }
    cur[0] = 1;
    closure(&x, cur);
    bool added;
    intern(&x, cur, &added);
    worst = count_active(&x, cur);
    for (size_t q = 0; q < x.nsub && worst <= PB_WILDCARD_MAX_COMPLEXITY; q++) {
        for (int a = 0; a < na; a++) {
            const uint64_t *src = x.pool + q * x.words;
            memset(cur, 0, x.words * 8);
            for (size_t j = 0; j <= m; j++) {
                if (!(src[j >> 6] >> (j & 63) & 1))
                    continue;
                if (j < m && tok[j] == alpha[a])
                    cur[(j + 1) >> 6] |= 1ULL << ((j + 1) & 63);
                if (j >= 1 && tok[j - 1] == STAR)
                    cur[j >> 6] |= 1ULL << (j & 63);
            }
            closure(&x, cur);
            int c = count_active(&x, cur);
            if (c > worst)
                worst = c;
            if (worst > PB_WILDCARD_MAX_COMPLEXITY)
                break;
            if (intern(&x, cur, &added) < 0) {
                worst = PB_WILDCARD_MAX_COMPLEXITY + 1;
                break;
            }
        }
    }
out:
    free(cur);
    free(x.pool);
    free(x.table);
    free(tok);
    return worst;
}

int pb_wildcard_validate(const char *s, size_t n, pb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= n || (s[i + 1] != '*' && s[i + 1] != '\\'))
                return pb_error_set(err, PB_EPATTERN,
                                    "Event pattern is not valid. Reason: Invalid escape character at pos %zu", i + 1);
            i++;
            continue;
        }
        if (s[i] == '*' && i + 1 < n && s[i + 1] == '*')
            return pb_error_set(err, PB_EPATTERN,
                                "Event pattern is not valid. Reason: Consecutive wildcard characters at pos %zu",
                                i + 1);
    }
    int cx = complexity(s, n);
    if (cx < 0)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    if (cx > PB_WILDCARD_MAX_COMPLEXITY)
        return pb_error_set(err, PB_EPATTERN,
                            "Event pattern is not valid. Reason: Rule is too complex - try using fewer wildcard "
                            "characters or fewer repeating character sequences after a wildcard character");
    return 0;
}

bool pb_wildcard_match(const char *w, size_t wn, const char *v, size_t vn)
{
    size_t i = 0, j = 0, star_i = (size_t)-1, star_j = 0;
    while (j < vn) {
        if (i < wn) {
            if (w[i] == '*') {
                star_i = ++i;
                star_j = j;
                continue;
            }
            char c = w[i];
            size_t adv = 1;
            if (c == '\\' && i + 1 < wn) {
                c = w[i + 1];
                adv = 2;
            }
            if (c == v[j]) {
                i += adv;
                j++;
                continue;
            }
        }
        if (star_i != (size_t)-1) {
            i = star_i;
            j = ++star_j;
            continue;
        }
        return false;
    }
    while (i < wn && w[i] == '*')
        i++;
    return i == wn;
}
