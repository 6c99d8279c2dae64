/*
 * pattern_internal.h — what the pattern engine's files share.
 *
 * A compiled pattern is a list of sub-patterns (conjunctions, one per `$or`
 * combination). Each sub-pattern is a list of fields sorted by path; each
 * field is a disjunction of conditions on the values found at that path.
 * Paths are the dot-joined keys ("detail.state"), exactly as EventBridge's
 * matcher (aws/event-ruler) joins them, so a pattern key "a.b" and the nested
 * a -> b are the same path.
 */
#ifndef PB_PATTERN_INTERNAL_H
#define PB_PATTERN_INTERNAL_H

#include "common/pb_arena.h"
#include "json/pb_json.h"
#include "pb_pattern.h"

#include <stdint.h>

typedef enum pb_cond_kind {
    PB_C_STR,         /* "text": equal strings */
    PB_C_NUM,         /* 300 or numeric ["=", 300]: equal numbers */
    PB_C_TRUE,        /* true */
    PB_C_FALSE,       /* false */
    PB_C_NULL,        /* null */
    PB_C_PREFIX,      /* {"prefix": s} */
    PB_C_SUFFIX,      /* {"suffix": s} */
    PB_C_EIC,         /* {"equals-ignore-case": s}   (str is case-folded) */
    PB_C_PREFIX_EIC,  /* {"prefix": {"equals-ignore-case": s}} (folded) */
    PB_C_SUFFIX_EIC,  /* {"suffix": {"equals-ignore-case": s}} (folded) */
    PB_C_WILDCARD,    /* {"wildcard": s} (str is the raw pattern, escapes kept) */
    PB_C_RANGE,       /* {"numeric": [...]} other than "=" */
    PB_C_EXISTS,      /* {"exists": true} */
    PB_C_ABSENT,      /* {"exists": false} */
    PB_C_CIDR,        /* {"cidr": "10.0.0.0/24"} */
    PB_C_AB_STR,      /* {"anything-but": "s" | ["s", ...]} */
    PB_C_AB_NUM,      /* {"anything-but": 1 | [1, ...]} */
    PB_C_AB_PREFIX,   /* {"anything-but": {"prefix": s | [s...]}} */
    PB_C_AB_SUFFIX,   /* {"anything-but": {"suffix": s | [s...]}} */
    PB_C_AB_EIC,      /* {"anything-but": {"equals-ignore-case": s | [s...]}} (folded) */
    PB_C_AB_WILDCARD, /* {"anything-but": {"wildcard": s | [s...]}} */
} pb_cond_kind;

typedef struct pb_cidr {
    int family;            /* 4 or 6 */
    int bits;              /* mask length */
    unsigned char addr[16];/* network address, host bits cleared */
} pb_cidr;

typedef struct pb_strv {
    const char *s;
    size_t len;
} pb_strv;

typedef struct pb_cond {
    pb_cond_kind kind;
    const char *str; /* string payload (NUL-terminated, may contain NUL) */
    size_t len;
    double num;      /* PB_C_NUM */
    double lo, hi;   /* PB_C_RANGE bounds (-inf / +inf when open) */
    bool lo_incl, hi_incl;
    pb_cidr cidr;    /* PB_C_CIDR */
    size_t nlist;    /* anything-but lists */
    pb_strv *strs;   /* AB_STR / AB_PREFIX / AB_SUFFIX / AB_EIC / AB_WILDCARD */
    double *nums;    /* AB_NUM */
    const char *key; /* canonical encoding, used to share automaton states */
    size_t keylen;
} pb_cond;

typedef struct pb_field {
    const char *path; /* dot-joined, NUL-terminated */
    size_t pathlen;
    size_t ncond;
    pb_cond *conds;       /* disjunction */
    bool has_absent;      /* one of conds is PB_C_ABSENT */
    const char *setkey;   /* canonical encoding of the whole disjunction */
    size_t setkeylen;
    const pb_json *src;   /* the pattern's leaf array, for explanations */
    unsigned order;       /* position in the pattern text, for explanations */
} pb_field;

typedef struct pb_subpattern {
    size_t n;
    pb_field **fields; /* sorted by path, one field per path */
} pb_subpattern;

struct pb_pattern {
    pb_arena arena;       /* owns everything below */
    pb_json *doc;
    size_t nsubs;
    pb_subpattern *subs;
};

/* ------------------------------------------------------ value helpers -- */

/* Checks a wildcard pattern; 0 or PB_EPATTERN with AWS's reason. */
int pb_wildcard_validate(const char *s, size_t n, pb_error *err);
/* Does value v match wildcard pattern w (escapes \* and \\ honoured)? */
bool pb_wildcard_match(const char *w, size_t wn, const char *v, size_t vn);

/* Parses "addr/bits"; 0, or -1 with AWS's reason written to reason[]. */
int pb_cidr_parse(const char *s, size_t n, pb_cidr *out, char *reason, size_t reasonlen);
/* Parses an IP address written as EventBridge recognises one (dotted-quad
 * IPv4, or IPv6 hex-and-colons text); 0 on success with family 4/6 and the
 * address in addr[16]. IPv4-mapped IPv6 addresses come back as IPv4. */
int pb_ip_parse(const char *s, size_t n, int *family, unsigned char addr[16]);
bool pb_cidr_contains(const pb_cidr *c, int family, const unsigned char addr[16]);

/* Case folding for equals-ignore-case: every code point mapped to the lower
 * case of its upper case. out must hold 3*n+4 bytes; returns the length. */
size_t pb_casefold(const char *s, size_t n, char *out);

/* ------------------------------------------------------------ flattener -- */

/* Value types of flattened event fields. */
enum { PB_V_STR = 1, PB_V_NUM, PB_V_TRUE, PB_V_FALSE, PB_V_NULL };

/* One (array id, index) step of a field's array membership. */
typedef struct pb_trail_step {
    uint32_t array; /* unique per array instance in the event */
    uint32_t index;
} pb_trail_step;

typedef struct pb_flat_field {
    uint32_t path;       /* path id assigned by the path trie */
    uint8_t type;        /* PB_V_* */
    uint8_t num_state;   /* 0 not parsed, 1 parsed, 2 not a usable number */
    uint16_t trail_len;
    uint32_t trail_off;  /* into the trail array */
    uint32_t next;       /* next field with the same path, UINT32_MAX at end */
    const char *val;     /* string: decoded bytes; number: source text */
    size_t len;
    double num;          /* when num_state == 1 */
} pb_flat_field;

typedef struct pb_path_trie pb_path_trie;

/* The trie of every path the patterns mention, with the ids of leaf paths. */
pb_path_trie *pb_path_trie_new(void);
void pb_path_trie_free(pb_path_trie *t);
/* Interns path (dot-joined) as a leaf; returns its id (>= 0) or PB_ENOMEM. Ref-counted. */
int32_t pb_path_trie_intern(pb_path_trie *t, const char *path, size_t n);
/* Drops one reference to a leaf path. */
void pb_path_trie_release(pb_path_trie *t, const char *path, size_t n);
uint32_t pb_path_trie_ids(const pb_path_trie *t); /* upper bound on ids */
size_t pb_path_trie_memory(const pb_path_trie *t);

typedef struct pb_flat {
    pb_flat_field *fields;
    size_t n, cap;
    pb_trail_step *trail;
    size_t ntrail, trailcap;
    char *strbuf;        /* decoded strings with escapes; sized to the event */
    size_t strcap, strlen;
    pb_trail_step *stack; /* current array nesting while flattening */
    size_t stackcap;
    uint32_t *head;      /* per path id: first field, valid when stamp matches */
    uint32_t *stamp;
    uint32_t gen;
    size_t headcap;
    uint32_t *present;   /* distinct path ids seen, in order of first sight */
    size_t npresent, presentcap;
} pb_flat;

void pb_flat_init(pb_flat *f);
void pb_flat_free(pb_flat *f);

/* Flattens event into f, keeping only leaf values at paths in t.
 * Errors: PB_EEVENT, PB_ENOMEM. */
int pb_flatten(const pb_path_trie *t, const char *event, size_t len, pb_flat *f, pb_error *err);

/* Set non-zero (tests only) to skip subtrees with the portable code path even
 * on CPUs where the AVX2/POPCNT one is chosen. */
extern int pb_flatten_generic_only;

/* First field at path id, or UINT32_MAX. */
static inline uint32_t pb_flat_first(const pb_flat *f, uint32_t path)
{
    if (path < f->headcap && f->stamp[path] == f->gen)
        return f->head[path];
    return UINT32_MAX;
}

/* Parses the number of a PB_V_NUM field on first use; false if unusable. */
bool pb_flat_number(pb_flat_field *ff, double *out);

/* ------------------------------------------------------- full flattening -- */

/* Every leaf of an event with its dot-joined path, for the reference
 * evaluator and explanations (slow path: allocates per call). */
typedef struct pb_leaf {
    const char *path;
    size_t pathlen;
    const pb_json *value;      /* scalar */
    size_t trail_off, trail_len;
} pb_leaf;

typedef struct pb_leaves {
    pb_leaf *v;
    size_t n, cap;
    pb_trail_step *trail;
    size_t ntrail, trailcap;
} pb_leaves;

int pb_leaves_collect(const pb_json *event, pb_arena *arena, pb_leaves *out);

/* A scalar value as conditions see it, with lazily derived forms. */
typedef struct pb_val {
    uint8_t type;        /* PB_V_* */
    const char *s;       /* string bytes, or number text */
    size_t len;
    double num;          /* numbers, when num_ok */
    bool num_ok;
    char *fold;          /* scratch of 3*len+4 bytes for the case-folded string */
    size_t foldlen;
    bool folded;
    int ip;              /* 0 unknown, 1 parsed, -1 not an address */
    int family;
    unsigned char addr[16];
} pb_val;

/* Does condition c accept value v? The one definition of every operator's
 * semantics; the matcher's hashed paths must agree with it (tested). */
bool pb_cond_test(const pb_cond *c, pb_val *v);

#endif
