/*
 * pattern_bench.c — throughput figures for the event-pattern matcher.
 *
 * Measures what the rule engine will spend its time on: pb_matcher_match over
 * a large, realistic event stream. It loads the citylots2 events (one compact
 * JSON object per line, gzip) into one buffer before any clock starts, then,
 * for each of the 14 rule sets of citylots2-rulesets.json and for all 70
 * patterns together, matches every event once on one thread, reports events
 * per second of the matching loop and checks every pattern's match count
 * against the count the file gives. A scaling block then matches the same
 * events against 1 .. 100,000 generated patterns (exact, prefix and narrow
 * numeric conditions built from values that occur in the data) to show how
 * match speed, memory and build time follow the number of patterns. The
 * peers (quamina, event-ruler) publish the same rule-set figures on the same
 * data shape, so the numbers are comparable with theirs.
 *
 * It prints figures and asserts nothing about speed; it exits non-zero on a
 * bad input file, an engine error, or a match count that is wrong.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "json/pb_json.h"
#include "pattern/pb_pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#ifndef PB_SHARED_DIR
#define PB_SHARED_DIR "../shared"
#endif

#define DEFAULT_DATA PB_SHARED_DIR "/bench/citylots2.json.gz"
#define DEFAULT_RULESETS PB_SHARED_DIR "/bench/citylots2-rulesets.json"

#define MAX_DATA_BYTES ((size_t)4 << 30)   /* unpacked event text */
#define MAX_EVENTS ((size_t)50 * 1000 * 1000)
#define READ_CHUNK ((size_t)16 << 20)      /* bytes per gzread call (< INT_MAX) */
#define MAX_RULES_BYTES ((size_t)16 << 20) /* the rule-set file */
#define MAX_RULES_DEPTH 64
#define MAX_SETS 256
#define MAX_SET_PATTERNS 10000
#define MAX_MATCHES 1e15                   /* sanity bound on an expected count */

#define SCALE_MAX 100000                   /* generated patterns, largest size */
#define SCALE_SEED 0x5eed0f0c171e5ULL
#define NUMERIC_HALF_WIDTH 2.5e-7          /* degrees; values are ~7e-7 apart on average */
#define GEN_ATTEMPTS 1000                  /* draws per pattern before giving up */

/* ---------------------------------------------------------------- errors -- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pattern_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *np = realloc(p, n ? n : 1);
    if (!np)
        die("out of memory (%zu bytes)", n);
    return np;
}

static double now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime: %s", strerror(errno));
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- events -- */

/* All events in one buffer: event i is buf[start[i] .. start[i] + len[i]). */
typedef struct events {
    char *buf;
    size_t bytes;    /* bytes of event text read (newlines included) */
    size_t *start;
    uint32_t *len;
    size_t n;
} events;

static void read_events(const char *path, events *ev)
{
    memset(ev, 0, sizeof *ev);
    gzFile f = gzopen(path, "rb");
    if (!f)
        die("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
    if (gzbuffer(f, 1u << 20) != 0)
        die("%s: gzbuffer failed", path);

    size_t cap = 0, len = 0;
    char *buf = NULL;
    for (;;) {
        if (cap - len < READ_CHUNK + 1) {
            size_t ncap = cap ? cap * 2 : (size_t)64 << 20;
            while (ncap - len < READ_CHUNK + 1)
                ncap *= 2;
            if (ncap > MAX_DATA_BYTES + READ_CHUNK + 1)
                ncap = MAX_DATA_BYTES + READ_CHUNK + 1;
            if (ncap - len < READ_CHUNK + 1)
                die("%s: more than %zu bytes of events unpacked", path, MAX_DATA_BYTES);
            buf = xrealloc(buf, ncap);
            cap = ncap;
        }
        int got = gzread(f, buf + len, (unsigned)READ_CHUNK);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            die("%s: read error: %s", path, zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len > MAX_DATA_BYTES)
            die("%s: more than %zu bytes of events unpacked", path, MAX_DATA_BYTES);
    }
    int rc = gzclose_r(f);
    if (rc != Z_OK)
        die("%s: close failed (zlib %d): truncated or corrupt file?", path, rc);
    buf[len] = '\0';

    /* index the lines; empty lines (e.g. the last) are skipped */
    size_t capn = 1024, n = 0, lineno = 0;
    size_t *start = xmalloc(capn * sizeof *start);
    uint32_t *elen = xmalloc(capn * sizeof *elen);
    for (size_t pos = 0; pos < len;) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t l = end - pos;
        lineno++;
        if (l && buf[pos + l - 1] == '\r')
            l--;
        if (l) {
            if (l > PB_EVENT_MAX_BYTES)
                die("%s: line %zu: event of %zu bytes is larger than PB_EVENT_MAX_BYTES (%d)", path, lineno, l,
                    PB_EVENT_MAX_BYTES);
            if (n == MAX_EVENTS)
                die("%s: more than %zu events", path, MAX_EVENTS);
            if (n == capn) {
                capn *= 2;
                start = xrealloc(start, capn * sizeof *start);
                elen = xrealloc(elen, capn * sizeof *elen);
            }
            start[n] = pos;
            elen[n] = (uint32_t)l;
            n++;
        }
        pos = end + 1;
    }
    if (n == 0)
        die("%s: no events", path);
    ev->buf = buf;
    ev->bytes = len;
    ev->start = start;
    ev->len = elen;
    ev->n = n;
}

static void free_events(events *ev)
{
    free(ev->buf);
    free(ev->start);
    free(ev->len);
    memset(ev, 0, sizeof *ev);
}

/* ------------------------------------------------------------- rule sets -- */

typedef struct bpattern {
    char *text;          /* the pattern as compiled (compact JSON) */
    pb_pattern *p;
    uint64_t expected;   /* events it must match */
} bpattern;

typedef struct ruleset {
    char *name;
    bpattern *pats;
    size_t n;
} ruleset;

static char *read_file(const char *path, size_t max, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 64 * 1024, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max)
                die("%s: larger than %zu bytes", path, max);
            cap = cap * 2 > max ? max : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                die("%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    *outlen = len;
    return buf;
}

static char *json_text(const pb_json *v, const char *path, const char *what)
{
    pb_buf b;
    pb_buf_init(&b, PB_PATTERN_MAX_BYTES);
    int rc = pb_json_write(&b, v);
    if (rc != 0)
        die("%s: %s: cannot re-serialise (%s); larger than %d bytes?", path, what, pb_error_name(rc),
            PB_PATTERN_MAX_BYTES);
    if (!b.data)
        die("%s: %s: empty serialisation", path, what);
    return pb_buf_steal(&b);
}

static pb_pattern *compile_or_die(const char *text, const char *where)
{
    pb_error err;
    pb_error_clear(&err);
    pb_pattern *p = NULL;
    int rc = pb_pattern_compile(text, strlen(text), &p, &err);
    if (rc != 0)
        die("%s: pattern %s does not compile (%s): %s", where, text, pb_error_name(rc), err.message);
    return p;
}

static ruleset *read_rulesets(const char *path, size_t *nsets)
{
    size_t len = 0;
    char *text = read_file(path, MAX_RULES_BYTES, &len);
    pb_arena arena;
    pb_arena_init(&arena);
    pb_json_limits lim = {.max_bytes = MAX_RULES_BYTES, .max_depth = MAX_RULES_DEPTH};
    pb_json *root = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_json_parse(text, len, &lim, &arena, &root, &err);
    if (rc != 0)
        die("%s: not valid JSON (%s): %s", path, pb_error_name(rc), err.message);
    if (root->type != PB_JSON_OBJECT)
        die("%s: the top level is not an object", path);
    const pb_json *sets = pb_json_get(root, "rulesets");
    if (!sets || sets->type != PB_JSON_OBJECT)
        die("%s: \"rulesets\" is missing or not an object", path);
    if (sets->n == 0 || sets->n > MAX_SETS)
        die("%s: %zu rule sets (want 1..%d)", path, sets->n, MAX_SETS);

    ruleset *rs = xcalloc(sets->n, sizeof *rs);
    for (size_t i = 0; i < sets->n; i++) {
        const pb_json_member *m = &sets->members[i];
        if (m->keylen == 0 || memchr(m->key, '\0', m->keylen))
            die("%s: rule set %zu has an empty or invalid name", path, i);
        rs[i].name = xmalloc(m->keylen + 1);
        memcpy(rs[i].name, m->key, m->keylen + 1);
        const pb_json *arr = m->value;
        if (arr->type != PB_JSON_ARRAY)
            die("%s: rule set %s is not an array", path, rs[i].name);
        if (arr->n == 0 || arr->n > MAX_SET_PATTERNS)
            die("%s: rule set %s has %zu patterns (want 1..%d)", path, rs[i].name, arr->n, MAX_SET_PATTERNS);
        rs[i].n = arr->n;
        rs[i].pats = xcalloc(arr->n, sizeof *rs[i].pats);
        for (size_t j = 0; j < arr->n; j++) {
            char where[256];
            snprintf(where, sizeof where, "%s: %s[%zu]", path, rs[i].name, j);
            const pb_json *item = arr->items[j];
            if (item->type != PB_JSON_OBJECT)
                die("%s: not an object", where);
            const pb_json *pat = pb_json_get(item, "pattern");
            const pb_json *matches = pb_json_get(item, "matches");
            if (!pat || pat->type != PB_JSON_OBJECT)
                die("%s: \"pattern\" is missing or not an object", where);
            if (!matches || matches->type != PB_JSON_NUMBER)
                die("%s: \"matches\" is missing or not a number", where);
            double mv = matches->num;
            if (!isfinite(mv) || mv < 0 || mv > MAX_MATCHES || mv != floor(mv))
                die("%s: \"matches\" is not a count: %.*s", where, (int)matches->len, matches->str);
            rs[i].pats[j].expected = (uint64_t)mv;
            rs[i].pats[j].text = json_text(pat, path, where);
            rs[i].pats[j].p = compile_or_die(rs[i].pats[j].text, where);
        }
    }
    *nsets = sets->n; /* before the arena that holds `sets` goes */
    pb_arena_free(&arena);
    free(text);
    return rs;
}

static void free_rulesets(ruleset *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rs[i].n; j++) {
            free(rs[i].pats[j].text);
            pb_pattern_free(rs[i].pats[j].p);
        }
        free(rs[i].pats);
        free(rs[i].name);
    }
    free(rs);
}

/* -------------------------------------------------------------- matching -- */

typedef struct run_result {
    double match_secs;   /* best matching loop */
    double build_secs;   /* add + prepare */
    size_t memory;       /* pb_matcher_memory after prepare */
    uint64_t matches;    /* ids returned over one pass */
} run_result;

/* Adds pats[0..n) under ids 0..n-1 to a new matcher, prepares it, then
 * matches events [0, nev) `repeat` times; counts[id] receives the matches of
 * the last pass. Any engine error ends the program. */
static void run_matcher(const char *label, pb_pattern *const *pats, size_t n, const events *ev, size_t nev,
                        int repeat, uint64_t *counts, run_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now();
    pb_matcher *m = pb_matcher_new();
    if (!m)
        die("%s: pb_matcher_new failed", label);
    for (size_t i = 0; i < n; i++) {
        int rc = pb_matcher_add(m, (uint64_t)i, pats[i]);
        if (rc != 0)
            die("%s: pb_matcher_add(%zu) failed: %s", label, i, pb_error_name(rc));
    }
    int rc = pb_matcher_prepare(m);
    if (rc != 0)
        die("%s: pb_matcher_prepare failed: %s", label, pb_error_name(rc));
    res->build_secs = now() - t0;
    if (pb_matcher_count(m) != n)
        die("%s: pb_matcher_count is %zu after adding %zu patterns", label, pb_matcher_count(m), n);
    res->memory = pb_matcher_memory(m);

    pb_match_scratch *s = pb_match_scratch_new();
    if (!s)
        die("%s: pb_match_scratch_new failed", label);
    pb_error err;
    pb_error_clear(&err);
    const char *buf = ev->buf;
    res->match_secs = INFINITY;
    for (int r = 0; r < repeat; r++) {
        memset(counts, 0, n * sizeof *counts);
        uint64_t total = 0;
        double t1 = now();
        for (size_t i = 0; i < nev; i++) {
            const uint64_t *ids = NULL;
            size_t k = 0;
            rc = pb_matcher_match(m, buf + ev->start[i], ev->len[i], s, &ids, &k, &err);
            if (rc != 0)
                die("%s: event %zu: pb_matcher_match failed (%s): %s", label, i + 1, pb_error_name(rc),
                    err.message);
            for (size_t j = 0; j < k; j++) {
                if (ids[j] >= n)
                    die("%s: event %zu: pb_matcher_match returned unknown id %" PRIu64, label, i + 1, ids[j]);
                counts[ids[j]]++;
            }
            total += k;
        }
        double dt = now() - t1;
        if (dt < res->match_secs)
            res->match_secs = dt;
        res->matches = total;
    }
    pb_match_scratch_free(s);
    pb_matcher_free(m);
}

static double per_sec(size_t n, double secs)
{
    return secs > 0 ? (double)n / secs : INFINITY;
}

/* "RULESET EVENTS_PER_SEC counts=ok|MISMATCH ..." ; returns true when ok */
static bool report_set(const ruleset *rs, const uint64_t *counts, size_t nev, const run_result *res,
                       bool check)
{
    bool ok = true;
    for (size_t j = 0; j < rs->n; j++)
        if (counts[j] != rs->pats[j].expected)
            ok = false;
    printf("%-26s %10.0f counts=%s", rs->name, per_sec(nev, res->match_secs),
           !check ? "unchecked" : ok ? "ok" : "MISMATCH");
    if (check && !ok) {
        printf(" expected=");
        for (size_t j = 0; j < rs->n; j++)
            printf("%s%" PRIu64, j ? "," : "", rs->pats[j].expected);
        printf(" actual=");
        for (size_t j = 0; j < rs->n; j++)
            printf("%s%" PRIu64, j ? "," : "", counts[j]);
    }
    printf("\n");
    if (check && !ok)
        for (size_t j = 0; j < rs->n; j++)
            if (counts[j] != rs->pats[j].expected)
                printf("#   %s[%zu] %s expected %" PRIu64 " actual %" PRIu64 "\n", rs->name, j, rs->pats[j].text,
                       rs->pats[j].expected, counts[j]);
    fflush(stdout);
    return ok || !check;
}

/* --------------------------------------------------- generated patterns -- */

static uint64_t rng_next(uint64_t *state) /* splitmix64 */
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A set of distinct strings (open addressing, the strings are not owned). */
typedef struct strset {
    const char **slot;
    size_t cap, n;
} strset;

static bool strset_add(strset *set, const char *s)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 1024;
        const char **ns = xcalloc(ncap, sizeof *ns);
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i])
                continue;
            size_t k = fnv1a(set->slot[i], strlen(set->slot[i])) & (ncap - 1);
            while (ns[k])
                k = (k + 1) & (ncap - 1);
            ns[k] = set->slot[i];
        }
        free(set->slot);
        set->slot = ns;
        set->cap = ncap;
    }
    size_t k = fnv1a(s, strlen(s)) & (set->cap - 1);
    for (; set->slot[k]; k = (k + 1) & (set->cap - 1))
        if (!strcmp(set->slot[k], s))
            return false;
    set->slot[k] = s;
    set->n++;
    return true;
}

enum gen_kind { GEN_EXACT, GEN_PREFIX_STREET, GEN_PREFIX_LOT, GEN_NUMERIC, GEN_KINDS };

static const char *const gen_kind_name[GEN_KINDS] = {"exact", "prefix-street", "prefix-lot", "numeric"};

typedef struct generated {
    char **text;
    pb_pattern **pats;
    uint8_t *kind;
    size_t n;
} generated;

static const pb_json *get_path(const pb_json *v, const char *a, const char *b, const char *c)
{
    const char *segs[3] = {a, b, c};
    for (int i = 0; i < 3 && segs[i] && v; i++)
        v = v->type == PB_JSON_OBJECT ? pb_json_get(v, segs[i]) : NULL;
    return v;
}

static char *prefix_pattern(const char *field, const char *s, size_t n)
{
    pb_buf b;
    pb_buf_init(&b, 0);
    int rc = pb_buf_printf(&b, "{\"properties\":{\"%s\":[{\"prefix\":", field);
    rc = rc ? rc : pb_json_write_string(&b, s, n);
    rc = rc ? rc : pb_buf_puts(&b, "}]}}");
    if (rc)
        die("out of memory building a pattern");
    return pb_buf_steal(&b);
}

/* Builds up to `count` distinct patterns (fewer, with a note, if the data
 * runs out of distinct values) from values of randomly drawn events
 * (fixed seed): one third each exact MAPBLKLOT, prefix, and a narrow numeric
 * range around a real firstCoordinates.x. A prefix is 2-4 characters of a real
 * STREET; there are only a few hundred such prefixes, so once a drawn one is
 * taken the pattern becomes a 5- or 6-character prefix of a real MAPBLKLOT
 * (duplicates would make every event match hundreds of identical patterns,
 * measuring the output size instead of the matcher). */
static void generate(const events *ev, size_t count, generated *g)
{
    memset(g, 0, sizeof *g);
    g->text = xcalloc(count, sizeof *g->text);
    g->pats = xcalloc(count, sizeof *g->pats);
    g->kind = xcalloc(count, sizeof *g->kind);
    strset seen = {0};
    uint64_t rng = SCALE_SEED;
    pb_json_limits lim = {.max_bytes = PB_EVENT_MAX_BYTES, .max_depth = PB_EVENT_MAX_DEPTH};

    for (size_t i = 0; i < count; i++) {
        int kind = (int)(rng_next(&rng) % 3);
        char *text = NULL;
        int got = -1;
        for (int attempt = 0; attempt < GEN_ATTEMPTS && !text; attempt++) {
            size_t e = (size_t)(rng_next(&rng) % ev->n);
            pb_arena arena;
            pb_arena_init(&arena);
            pb_json *root = NULL;
            pb_error err;
            int rc = pb_json_parse(ev->buf + ev->start[e], ev->len[e], &lim, &arena, &root, &err);
            if (rc != 0)
                die("event %zu is not valid JSON (%s): %s", e + 1, pb_error_name(rc), err.message);
            const pb_json *lot = get_path(root, "properties", "MAPBLKLOT", NULL);
            const pb_json *street = get_path(root, "properties", "STREET", NULL);
            const pb_json *x = get_path(root, "geometry", "firstCoordinates", "x");
            pb_buf b;
            pb_buf_init(&b, 0);
            rc = 0;
            if (kind == 0 && lot && lot->type == PB_JSON_STRING && lot->len) {
                rc = pb_buf_puts(&b, "{\"properties\":{\"MAPBLKLOT\":[");
                rc = rc ? rc : pb_json_write_string(&b, lot->str, lot->len);
                rc = rc ? rc : pb_buf_puts(&b, "]}}");
                got = GEN_EXACT;
            } else if (kind == 1 && street && street->type == PB_JSON_STRING && street->len >= 2) {
                size_t l = 2 + (size_t)(rng_next(&rng) % 3);
                if (l > street->len)
                    l = street->len;
                char *cand = prefix_pattern("STREET", street->str, l);
                got = GEN_PREFIX_STREET;
                if (!strset_add(&seen, cand)) {
                    free(cand);
                    cand = NULL;
                    if (lot && lot->type == PB_JSON_STRING && lot->len >= 5) {
                        for (size_t ll = 5; ll <= 6 && ll <= lot->len && !cand; ll++) {
                            cand = prefix_pattern("MAPBLKLOT", lot->str, ll);
                            if (!strset_add(&seen, cand)) {
                                free(cand);
                                cand = NULL;
                            }
                        }
                    }
                    got = GEN_PREFIX_LOT;
                }
                text = cand;
            } else if (kind == 2 && x && x->type == PB_JSON_NUMBER && isfinite(x->num)) {
                rc = pb_buf_printf(&b,
                                   "{\"geometry\":{\"firstCoordinates\":{\"x\":"
                                   "[{\"numeric\":[\">\",%.17g,\"<\",%.17g]}]}}}",
                                   x->num - NUMERIC_HALF_WIDTH, x->num + NUMERIC_HALF_WIDTH);
                got = GEN_NUMERIC;
            }
            if (rc)
                die("out of memory building a pattern");
            if (b.data) {
                text = pb_buf_steal(&b);
                if (!strset_add(&seen, text)) {
                    free(text);
                    text = NULL;
                }
            }
            pb_buf_free(&b);
            pb_arena_free(&arena);
        }
        if (!text) {
            /* small data: no new distinct value of this kind; stop here */
            printf("# scaling: no distinct %s pattern #%zu after %d draws; stopping at %zu patterns\n",
                   kind == 0 ? "exact" : kind == 1 ? "prefix" : "numeric", i, GEN_ATTEMPTS, i);
            break;
        }
        g->text[i] = text;
        g->kind[i] = (uint8_t)got;
        g->n = i + 1;
    }
    free(seen.slot);
}

static void free_generated(generated *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->text[i]);
        pb_pattern_free(g->pats[i]);
    }
    free(g->text);
    free(g->pats);
    free(g->kind);
}

/* ------------------------------------------------------------------ main -- */

static const char usage[] =
    "usage: pattern_bench [options] [DATA.json.gz RULESETS.json]\n"
    "  defaults: " DEFAULT_DATA "\n"
    "            " DEFAULT_RULESETS "\n"
    "  --events N    match only the first N events (counts are then not checked)\n"
    "  --only NAME   run only this rule set (or ALL70 - all patterns together -, or SCALE)\n"
    "  --repeat R    run every matching loop R times and report the fastest (default 1)\n"
    "  --no-scale    skip the scaling block\n"
    "  --scale-size N  in the scaling block, run only N generated patterns (1..100000)\n";

static size_t parse_count(const char *opt, const char *s, size_t max)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > max)
        die("%s wants an integer in 1..%zu, not '%s'", opt, max, s);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    const char *files[2] = {DEFAULT_DATA, DEFAULT_RULESETS};
    int nfiles = 0;
    size_t limit = 0;
    int repeat = 1;
    const char *only = NULL;
    bool scale = true;
    size_t scale_size = 0; /* 0: the standard sizes */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--events") || !strcmp(a, "--only") || !strcmp(a, "--repeat") ||
                   !strcmp(a, "--scale-size")) {
            if (i + 1 >= argc)
                die("%s needs a value\n%s", a, usage);
            const char *v = argv[++i];
            if (!strcmp(a, "--events"))
                limit = parse_count(a, v, MAX_EVENTS);
            else if (!strcmp(a, "--repeat"))
                repeat = (int)parse_count(a, v, 1000);
            else if (!strcmp(a, "--scale-size"))
                scale_size = parse_count(a, v, SCALE_MAX);
            else
                only = v;
        } else if (!strcmp(a, "--no-scale")) {
            scale = false;
        } else if (a[0] == '-' && a[1]) {
            die("unknown option %s\n%s", a, usage);
        } else {
            if (nfiles == 2)
                die("too many arguments\n%s", usage);
            files[nfiles++] = a;
        }
    }
    if (nfiles == 1)
        die("give both DATA.json.gz and RULESETS.json, or neither\n%s", usage);

    double t0 = now();
    events ev;
    read_events(files[0], &ev);
    double t_load = now() - t0;
    size_t nsets = 0;
    ruleset *rs = read_rulesets(files[1], &nsets);
    size_t nev = limit && limit < ev.n ? limit : ev.n;
    bool check = nev == ev.n;

    bool all_ok = true;
    size_t total = 0;
    for (size_t i = 0; i < nsets; i++)
        total += rs[i].n;
    char all_label[32];
    snprintf(all_label, sizeof all_label, "ALL%zu", total);
    if (only && strcmp(only, all_label) && strcmp(only, "SCALE")) {
        size_t i = 0;
        while (i < nsets && strcmp(only, rs[i].name))
            i++;
        if (i == nsets)
            die("--only %s: no such rule set (nor %s, nor SCALE)", only, all_label);
    }
    printf("# pattern_bench: %zu events (%.1f MB, %.0f bytes/event) from %s, loaded in %.2f s\n", ev.n,
           (double)ev.bytes / 1e6, (double)ev.bytes / (double)ev.n, files[0], t_load);
    printf("# %zu rule sets from %s; matching %zu events per pass, single thread, best of %d pass%s\n", nsets,
           files[1], nev, repeat, repeat == 1 ? "" : "es");
    if (!check)
        printf("# --events: counts are not checked\n");
    printf("# %-24s %10s\n", "RULESET", "EVENTS/S");
    fflush(stdout);

    uint64_t *counts = xcalloc(total > SCALE_MAX ? total : SCALE_MAX, sizeof *counts);
    pb_pattern **pats = xcalloc(total, sizeof *pats);
    run_result res;

    for (size_t i = 0; i < nsets; i++) {
        if (only && strcmp(only, rs[i].name))
            continue;
        for (size_t j = 0; j < rs[i].n; j++)
            pats[j] = rs[i].pats[j].p;
        run_matcher(rs[i].name, pats, rs[i].n, &ev, nev, repeat, counts, &res);
        all_ok &= report_set(&rs[i], counts, nev, &res, check);
    }

    if (!only || !strcmp(only, all_label)) {
        const char *label = all_label;
        size_t k = 0;
        for (size_t i = 0; i < nsets; i++)
            for (size_t j = 0; j < rs[i].n; j++)
                pats[k++] = rs[i].pats[j].p;
        run_matcher(label, pats, total, &ev, nev, repeat, counts, &res);
        bool ok = true;
        k = 0;
        for (size_t i = 0; i < nsets; i++)
            for (size_t j = 0; j < rs[i].n; j++, k++)
                if (counts[k] != rs[i].pats[j].expected)
                    ok = false;
        printf("%-26s %10.0f counts=%s\n", label, per_sec(nev, res.match_secs),
               !check ? "unchecked" : ok ? "ok" : "MISMATCH");
        if (check && !ok) {
            k = 0;
            for (size_t i = 0; i < nsets; i++)
                for (size_t j = 0; j < rs[i].n; j++, k++)
                    if (counts[k] != rs[i].pats[j].expected)
                        printf("#   id %zu = %s[%zu] %s expected %" PRIu64 " actual %" PRIu64 "\n", k, rs[i].name,
                               j, rs[i].pats[j].text, rs[i].pats[j].expected, counts[k]);
            all_ok = false;
        }
        printf("#   %zu patterns, %zu bytes of matcher (%.0f bytes/pattern), add+prepare %.2f ms, "
               "%.3f matches/event\n",
               total, res.memory, (double)res.memory / (double)total, res.build_secs * 1e3,
               (double)res.matches / (double)nev);
        fflush(stdout);
    }

    if (scale && (!only || !strcmp(only, "SCALE"))) {
        static const size_t std_sizes[] = {1, 100, 10000, SCALE_MAX};
        const size_t *sizes = scale_size ? &scale_size : std_sizes;
        size_t nsizes = scale_size ? 1 : sizeof std_sizes / sizeof std_sizes[0];
        generated g;
        double tg = now();
        generate(&ev, scale_size ? scale_size : SCALE_MAX, &g);
        tg = now() - tg;
        double tc = now();
        for (size_t i = 0; i < g.n; i++)
            g.pats[i] = compile_or_die(g.text[i], "generated");
        tc = now() - tc;
        printf("# scaling: generated patterns (seed %#" PRIx64 ", exact MAPBLKLOT / prefix STREET or MAPBLKLOT /"
               " numeric x +-%g), %zu events per pass\n",
               (uint64_t)SCALE_SEED, NUMERIC_HALF_WIDTH, nev);
        printf("#   generating %zu took %.2f s, compiling them %.2f s (%.2f us/pattern)\n", g.n, tg, tc,
               tc * 1e6 / (double)(g.n ? g.n : 1));
        printf("# %-7s %10s %12s %14s %15s %10s  MIX (%s/%s/%s/%s), UNMATCHED\n", "", "PATTERNS", "EVENTS/S",
               "BYTES/PATTERN", "ADD+PREPARE_MS", "MATCH/EVT", gen_kind_name[0], gen_kind_name[1], gen_kind_name[2],
               gen_kind_name[3]);
        for (size_t si = 0; si < nsizes; si++) {
            size_t n = sizes[si];
            if (n > g.n) {
                printf("SCALE     %10zu skipped: only %zu distinct patterns could be generated from this data\n", n,
                       g.n);
                continue;
            }
            run_matcher("SCALE", g.pats, n, &ev, nev, repeat, counts, &res);
            size_t mix[GEN_KINDS] = {0};
            size_t unmatched = 0;
            for (size_t i = 0; i < n; i++) {
                mix[g.kind[i]]++;
                if (counts[i] == 0)
                    unmatched++;
            }
            printf("SCALE     %10zu %12.0f %14.0f %15.2f %10.3f  %zu/%zu/%zu/%zu, %zu", n,
                   per_sec(nev, res.match_secs), (double)res.memory / (double)n, res.build_secs * 1e3,
                   (double)res.matches / (double)nev, mix[0], mix[1], mix[2], mix[3], unmatched);
            /* every generated pattern comes from a value of some event */
            if (check && unmatched) {
                printf(" MISMATCH\n");
                for (size_t i = 0, shown = 0; i < n && shown < 10; i++)
                    if (counts[i] == 0) {
                        printf("#   generated #%zu %s matched no event\n", i, g.text[i]);
                        shown++;
                    }
                all_ok = false;
            } else {
                printf("\n");
            }
            fflush(stdout);
        }
        free_generated(&g);
    }

    free(pats);
    free(counts);
    free_rulesets(rs, nsets);
    free_events(&ev);
    fflush(stdout);
    if (!all_ok) {
        fprintf(stderr, "pattern_bench: match counts are wrong (see MISMATCH above)\n");
        return 1;
    }
    return 0;
}
