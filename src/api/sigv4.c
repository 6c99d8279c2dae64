/*
 * sigv4.c — AWS Signature Version 4 (AWS4-HMAC-SHA256, Authorization-header
 * form): the server's verifier and the signer used by our CLI and tests.
 *
 * Both sides build the same canonical request (../shared/spec/AWS-SPEC.md
 * §1.3, step 6): method, the path with dot segments removed and encoded
 * again, the query re-encoded and sorted, one line per signed header (every
 * occurrence trimmed, whitespace runs folded, joined by ','), the signed
 * header list and the payload hash. The verifier checks in this order, each
 * failure with AWS's message (Coral's wording where the spec leaves it open):
 *
 *   1. no Authorization header                          PB_EAUTH_MISSING
 *   2. a part that is not key=value; missing Credential,
 *      Signature, SignedHeaders or date (all reported at once, then
 *      "Authorization=<header>"); another algorithm; host not signed;
 *      a date that does not parse; a Credential without 5 parts
 *                                                       PB_EAUTH_INCOMPLETE
 *   3. more than 15 minutes off "now"; wrong region / service / terminator /
 *      scope date (all reported at once)                PB_EAUTH_SIGNATURE
 *   4. unknown access key                               PB_EAUTH_KEY
 *   5. x-amz-content-sha256 that is not the body's hash, or a signature
 *      that does not match                              PB_EAUTH_SIGNATURE
 *
 * Every untrusted size is capped before anything is allocated: the
 * Authorization header, the number of signed headers, the path, the query
 * and the canonical request as a whole. No state, no clock, no I/O: the
 * caller passes "now" and a lookup for secrets; the signing key is derived
 * per request (four HMACs), not cached.
 */
#include "api/pb_sigv4.h"

#include "common/pb_buf.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- limits -- */

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SKEW_SECONDS (15 * 60)

#define MAX_AUTH_LEN 4096          /* bytes of the Authorization value */
#define MAX_SIGNED_HEADERS 64      /* names in SignedHeaders / signed by us */
#define MAX_SIGN_HEADERS 256       /* headers the signer accepts */
#define MAX_HEADER_NAME 128        /* bytes of a header name the signer signs */
#define MAX_PATH_LEN 8192          /* bytes of the request path */
#define MAX_QUERY_LEN 16384        /* bytes of the raw query string */
#define MAX_QUERY_PAIRS 1024       /* name=value pairs in the query */
#define MAX_CANONICAL (256 * 1024) /* bytes of the canonical request */
#define MAX_SECRET 256             /* bytes of a secret, with its NUL */
#define MAX_ACCESS_KEY 128         /* sizeof(pb_sigv4_identity.access_key) - 1 */
#define MAX_REGION 64              /* sizeof(pb_sigv4_identity.region) - 1 */
#define MAX_SERVICE 32             /* sizeof(pb_sigv4_identity.service) - 1 */
#define MAX_METHOD 32              /* bytes of the HTTP method */
#define MAX_ECHO 256               /* bytes of a bad value quoted in a message */
#define TIME_LIMIT ((int64_t)1 << 40) /* |seconds| we do calendar arithmetic on */

#define TOO_LARGE_MSG "The request is too large to verify its signature."

/* A (pointer, length) view into a caller's string. */
typedef struct slice {
    const char *p;
    size_t n;
} slice;

/* ------------------------------------------------------ small helpers -- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static char to_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }
static char to_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static slice trim(slice s)
{
    while (s.n && is_ws(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_ws(s.p[s.n - 1]))
        s.n--;
    return s;
}

static slice cstr(const char *s) { return (slice){s, s ? strlen(s) : 0}; }

static bool slice_eq(slice a, const char *b) { return a.n == strlen(b) && memcmp(a.p, b, a.n) == 0; }

/* Case-insensitive (ASCII) comparison of a header name with a slice. */
static bool name_eq(const char *name, slice want)
{
    size_t i = 0;
    for (; i < want.n; i++)
        if (name[i] == '\0' || to_lower(name[i]) != to_lower(want.p[i]))
            return false;
    return name[i] == '\0';
}

/* The first header named `name` (any case), or NULL; *count gets how many. */
static const pb_sigv4_header *find_header(const pb_sigv4_request *r, const char *name, size_t *count)
{
    const pb_sigv4_header *first = NULL;
    size_t n = 0;
    slice want = cstr(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const pb_sigv4_header *h = &r->headers[i];
        if (h->name && h->value && name_eq(h->name, want)) {
            if (!first)
                first = h;
            n++;
        }
    }
    if (count)
        *count = n;
    return first;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(n ? data : (const void *)"", n, md);
    hex_encode(md, sizeof md, out);
}

static int hmac256(const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[32])
{
    unsigned int outlen = 0;
    if (keylen > INT32_MAX)
        return PB_EINTERNAL;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) || outlen != 32)
        return PB_EINTERNAL;
    return 0;
}

/* Appends printf-style text to a fixed message buffer, truncating silently. */
static void msg_add(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg_add(char *msg, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(msg);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + len, cap - len, fmt, ap);
    va_end(ap);
}

static int echo_len(size_t n) { return (int)(n > MAX_ECHO ? MAX_ECHO : n); }

/* --------------------------------------------------------------- time -- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_in_month(int64_t y, int64_t m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int64_t clamp_time(int64_t t) { return t > TIME_LIMIT ? TIME_LIMIT : t < -TIME_LIMIT ? -TIME_LIMIT : t; }

/* YYYYMMDD'T'HHMMSS'Z' of t (seconds since the epoch, UTC). */
static void format_iso(int64_t t, char out[80])
{
    t = clamp_time(t);
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400, y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 80, "%04lld%02lld%02lldT%02lld%02lld%02lldZ", (long long)y, (long long)m, (long long)d,
             (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60));
}

static bool valid_civil(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s)
{
    return mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo) && h <= 23 && mi <= 59 && s <= 59;
}

static int64_t digits(const char *p, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* Parses the ISO 8601 basic form 20150830T123600Z. */
static bool parse_iso(slice s, int64_t *out)
{
    if (s.n != 16 || s.p[8] != 'T' || s.p[15] != 'Z')
        return false;
    for (size_t i = 0; i < 15; i++)
        if (i != 8 && !is_digit(s.p[i]))
            return false;
    int64_t y = digits(s.p, 4), mo = digits(s.p + 4, 2), d = digits(s.p + 6, 2);
    int64_t h = digits(s.p + 9, 2), mi = digits(s.p + 11, 2), sec = digits(s.p + 13, 2);
    if (!valid_civil(y, mo, d, h, mi, sec))
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return true;
}

/* Reads a run of 1..max digits at *i. */
static bool read_num(slice s, size_t *i, size_t min, size_t max, int64_t *v)
{
    size_t start = *i;
    while (*i < s.n && *i - start < max && is_digit(s.p[*i]))
        (*i)++;
    if (*i - start < min || (*i < s.n && is_digit(s.p[*i])))
        return false;
    *v = digits(s.p + start, *i - start);
    return true;
}

static void skip_ws(slice s, size_t *i)
{
    while (*i < s.n && is_ws(s.p[*i]))
        (*i)++;
}

/* Parses an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT"; the weekday is
 * optional, the zone may be GMT, UT, UTC, Z or +hhmm / -hhmm). */
static bool parse_rfc1123(slice s, int64_t *out)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    size_t i = 0;
    int64_t d, y, h, mi, sec = 0, mo = 0;
    skip_ws(s, &i);
    if (i < s.n && !is_digit(s.p[i])) { /* weekday */
        while (i < s.n && s.p[i] != ',' && !is_ws(s.p[i]))
            i++;
        if (i < s.n && s.p[i] == ',')
            i++;
        skip_ws(s, &i);
    }
    if (!read_num(s, &i, 1, 2, &d))
        return false;
    skip_ws(s, &i);
    if (i + 3 > s.n)
        return false;
    for (int k = 0; k < 12; k++)
        if (to_lower(s.p[i]) == months[3 * k] && to_lower(s.p[i + 1]) == months[3 * k + 1] &&
            to_lower(s.p[i + 2]) == months[3 * k + 2])
            mo = k + 1;
    if (!mo)
        return false;
    i += 3;
    skip_ws(s, &i);
    if (!read_num(s, &i, 4, 4, &y))
        return false;
    skip_ws(s, &i);
    if (!read_num(s, &i, 2, 2, &h) || i >= s.n || s.p[i++] != ':' || !read_num(s, &i, 2, 2, &mi))
        return false;
    if (i < s.n && s.p[i] == ':') {
        i++;
        if (!read_num(s, &i, 2, 2, &sec))
            return false;
    }
    skip_ws(s, &i);
    int64_t offset = 0;
    slice zone = trim((slice){s.p + i, s.n - i});
    if (zone.n == 5 && (zone.p[0] == '+' || zone.p[0] == '-')) {
        for (size_t k = 1; k < 5; k++)
            if (!is_digit(zone.p[k]))
                return false;
        offset = digits(zone.p + 1, 2) * 3600 + digits(zone.p + 3, 2) * 60;
        if (zone.p[0] == '-')
            offset = -offset;
    } else if (!slice_eq(zone, "GMT") && !slice_eq(zone, "UT") && !slice_eq(zone, "UTC") && !slice_eq(zone, "Z")) {
        return false;
    }
    if (!valid_civil(y, mo, d, h, mi, sec))
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return true;
}

/* ------------------------------------------------ canonical request -- */

/* Appends byte c percent-encoded unless unreserved (or '/' when keep_slash). */
static int put_encoded(pb_buf *b, unsigned char c, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    if (is_unreserved(c) || (keep_slash && c == '/'))
        return pb_buf_putc(b, (char)c);
    char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
    return pb_buf_append(b, esc, 3);
}

/* The canonical URI: the wire path with empty and '.' segments dropped and
 * '..' resolved (leading and trailing '/' kept), then encoded again. */
static int put_canonical_uri(pb_buf *b, const char *path)
{
    size_t n = strlen(path), nseg = 1, nout = 0, start = b->len;
    int rc = 0;
    if (n > MAX_PATH_LEN)
        return PB_EVALIDATION;
    for (size_t i = 0; i < n; i++)
        nseg += path[i] == '/';
    slice *out = malloc(nseg * sizeof *out);
    if (!out)
        return PB_ENOMEM;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        slice seg = {path + i, j - i};
        if (seg.n == 0 || slice_eq(seg, ".")) {
            /* dropped */
        } else if (slice_eq(seg, "..")) {
            if (nout)
                nout--;
        } else {
            out[nout++] = seg;
        }
        i = j + 1;
    }
    if (n && path[0] == '/')
        rc = pb_buf_putc(b, '/');
    for (size_t k = 0; k < nout && !rc; k++) {
        if (k)
            rc = pb_buf_putc(b, '/');
        for (size_t i = 0; i < out[k].n && !rc; i++)
            rc = put_encoded(b, (unsigned char)out[k].p[i], true);
    }
    if (!rc && n && path[n - 1] == '/' && nout)
        rc = pb_buf_putc(b, '/');
    if (!rc && b->len == start)
        rc = pb_buf_putc(b, '/');
    free(out);
    return rc;
}

struct qpair {
    const char *name;
    const char *value;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes %XX escapes in s ('+' stays literal; a '%' without two hex digits
 * is kept as is) and writes the result RFC 3986-encoded, NUL-terminated. */
static char *recode(slice s, char *dst)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '%' && i + 2 < s.n && hex_value(s.p[i + 1]) >= 0 && hex_value(s.p[i + 2]) >= 0) {
            c = (unsigned char)(hex_value(s.p[i + 1]) * 16 + hex_value(s.p[i + 2]));
            i += 2;
        }
        if (is_unreserved(c)) {
            *dst++ = (char)c;
        } else {
            *dst++ = '%';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 15];
        }
    }
    *dst++ = '\0';
    return dst;
}

/* The canonical query string: non-empty '&'-separated parts split at the
 * first '=', each side decoded and re-encoded, sorted by name then value. */
static int put_canonical_query(pb_buf *b, const char *query)
{
    size_t n = strlen(query), npairs = 0;
    int rc = 0;
    struct qpair *pairs = NULL;
    char *store = NULL;
    if (n == 0)
        return 0;
    if (n > MAX_QUERY_LEN)
        return PB_EVALIDATION;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && query[j] != '&')
            j++;
        npairs += j > i;
        i = j + 1;
    }
    if (npairs == 0)
        return 0;
    if (npairs > MAX_QUERY_PAIRS)
        return PB_EVALIDATION;
    pairs = malloc(npairs * sizeof *pairs);
    store = malloc(3 * n + 2 * npairs); /* every byte may triple; two NULs a pair */
    if (!pairs || !store) {
        rc = PB_ENOMEM;
        goto out;
    }
    char *dst = store;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && query[j] != '&')
            j++;
        if (j > i) {
            size_t eq = i;
            while (eq < j && query[eq] != '=')
                eq++;
            pairs[k].name = dst;
            dst = recode((slice){query + i, eq - i}, dst);
            pairs[k].value = dst;
            dst = recode(eq < j ? (slice){query + eq + 1, j - eq - 1} : (slice){query + j, 0}, dst);
            k++;
        }
        i = j + 1;
    }
    qsort(pairs, npairs, sizeof *pairs, qpair_cmp);
    for (size_t i = 0; i < npairs && !rc; i++)
        rc = pb_buf_printf(b, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
out:
    free(pairs);
    free(store);
    return rc;
}

/* Appends v trimmed, with every inner whitespace run folded to one space. */
static int put_trimall(pb_buf *b, const char *v)
{
    slice s = trim(cstr(v));
    int rc = pb_buf_reserve(b, s.n);
    bool gap = false;
    for (size_t i = 0; i < s.n && !rc; i++) {
        if (is_ws(s.p[i])) {
            gap = true;
            continue;
        }
        if (gap)
            rc = pb_buf_putc(b, ' ');
        gap = false;
        if (!rc)
            rc = pb_buf_putc(b, s.p[i]);
    }
    return rc;
}

/* One "name:value\n" line per signed name: the lowercased name, then every
 * occurrence of that header (any case), in arrival order, joined by ','. A
 * signed header the request lacks gets an empty value. */
static int put_canonical_headers(pb_buf *b, const pb_sigv4_request *r, const slice *names, size_t nnames)
{
    int rc = 0;
    for (size_t k = 0; k < nnames && !rc; k++) {
        for (size_t i = 0; i < names[k].n && !rc; i++)
            rc = pb_buf_putc(b, to_lower(names[k].p[i]));
        if (!rc)
            rc = pb_buf_putc(b, ':');
        bool first = true;
        for (size_t i = 0; i < r->nheaders && !rc; i++) {
            const pb_sigv4_header *h = &r->headers[i];
            if (!h->name || !h->value || !name_eq(h->name, names[k]))
                continue;
            if (!first)
                rc = pb_buf_putc(b, ',');
            first = false;
            if (!rc)
                rc = put_trimall(b, h->value);
        }
        if (!rc)
            rc = pb_buf_putc(b, '\n');
    }
    return rc;
}

/* Builds the canonical request into b (capped at MAX_CANONICAL). */
static int canonical_request(pb_buf *b, const pb_sigv4_request *r, const slice *names, size_t nnames,
                             slice signed_headers, slice payload)
{
    const char *method = r->method ? r->method : "";
    size_t mlen = strlen(method);
    int rc = 0;
    if (mlen > MAX_METHOD)
        return PB_EVALIDATION;
    for (size_t i = 0; i < mlen && !rc; i++)
        rc = pb_buf_putc(b, to_upper(method[i]));
    if (!rc)
        rc = pb_buf_putc(b, '\n');
    if (!rc)
        rc = put_canonical_uri(b, r->path && r->path[0] ? r->path : "/");
    if (!rc)
        rc = pb_buf_putc(b, '\n');
    if (!rc)
        rc = put_canonical_query(b, r->query ? r->query : "");
    if (!rc)
        rc = pb_buf_putc(b, '\n');
    if (!rc)
        rc = put_canonical_headers(b, r, names, nnames);
    if (!rc)
        rc = pb_buf_putc(b, '\n');
    if (!rc)
        rc = pb_buf_append(b, signed_headers.p, signed_headers.n);
    if (!rc)
        rc = pb_buf_putc(b, '\n');
    if (!rc)
        rc = pb_buf_append(b, payload.p, payload.n);
    return rc;
}

/* The payload hash to sign: x-amz-content-sha256 when present (first
 * occurrence, trimmed), else the body's SHA-256 (body_hash). */
static slice payload_hash(const pb_sigv4_request *r, const char *body_hash, bool *from_header)
{
    const pb_sigv4_header *h = find_header(r, "x-amz-content-sha256", NULL);
    *from_header = h != NULL;
    return h ? trim(cstr(h->value)) : cstr(body_hash);
}

/* hex(HMAC(kSigning, string to sign)) for a canonical request. */
static int compute_signature(const char *secret, slice date8, slice region, slice service, const char *timestamp,
                             const pb_buf *creq, char sig[65])
{
    unsigned char k[32], next[32];
    char key0[MAX_SECRET + 8], creq_hash[65];
    pb_buf sts;
    int rc;
    size_t slen = strlen(secret);
    pb_buf_init(&sts, 1024);
    if (slen >= MAX_SECRET) {
        rc = PB_EINTERNAL;
        goto out;
    }
    memcpy(key0, "AWS4", 4);
    memcpy(key0 + 4, secret, slen);
    rc = hmac256(key0, 4 + slen, date8.p, date8.n, k);
    if (!rc)
        rc = hmac256(k, 32, region.p, region.n, next);
    if (!rc)
        rc = hmac256(next, 32, service.p, service.n, k);
    if (!rc)
        rc = hmac256(k, 32, TERMINATOR, strlen(TERMINATOR), next);
    if (rc)
        goto out;
    sha256_hex(creq->data, creq->len, creq_hash);
    rc = pb_buf_printf(&sts, ALGORITHM "\n%s\n%.*s/%.*s/%.*s/" TERMINATOR "\n%s", timestamp, (int)date8.n, date8.p,
                       (int)region.n, region.p, (int)service.n, service.p, creq_hash);
    if (rc)
        goto out;
    rc = hmac256(next, 32, sts.data, sts.len, k);
    if (!rc)
        hex_encode(k, 32, sig);
out:
    OPENSSL_cleanse(key0, sizeof key0);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(next, sizeof next);
    pb_buf_free(&sts);
    return rc;
}

/* A region we accept as the caller's: 1..64 of [a-z0-9-]. */
static bool valid_region(slice s)
{
    if (s.n == 0 || s.n > MAX_REGION)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
            return false;
    }
    return true;
}

/* ----------------------------------------------------------- verifier -- */

struct auth {
    slice algorithm;
    slice credential, signed_headers, signature;
};

/* Splits "ALG k=v, k=v, ..." (parts separated by any run of spaces, tabs
 * and commas). A part without '=' is AWS's "not a valid key=value pair";
 * an empty value counts as missing. */
static int parse_authorization(slice v, struct auth *a, pb_error *err)
{
    size_t i = 0;
    memset(a, 0, sizeof *a);
    while (i < v.n && !is_ws(v.p[i]))
        i++;
    a->algorithm = (slice){v.p, i};
    while (i < v.n) {
        while (i < v.n && (is_ws(v.p[i]) || v.p[i] == ','))
            i++;
        size_t start = i;
        while (i < v.n && !is_ws(v.p[i]) && v.p[i] != ',')
            i++;
        if (i == start)
            break;
        slice part = {v.p + start, i - start};
        const char *eq = memchr(part.p, '=', part.n);
        if (!eq)
            return pb_error_set(err, PB_EAUTH_INCOMPLETE,
                                "'%.*s' not a valid key=value pair (missing equal-sign) in Authorization header: "
                                "'%.*s'.",
                                echo_len(part.n), part.p, (int)v.n, v.p);
        slice key = {part.p, (size_t)(eq - part.p)}, val = {eq + 1, part.n - key.n - 1};
        if (slice_eq(key, "Credential"))
            a->credential = val;
        else if (slice_eq(key, "SignedHeaders"))
            a->signed_headers = val;
        else if (slice_eq(key, "Signature"))
            a->signature = val;
    }
    return 0;
}

static bool has_value(const pb_sigv4_header *h) { return h && trim(cstr(h->value)).n > 0; }

int pb_sigv4_verify(const pb_sigv4_request *r, time_t now, const char *service, pb_sigv4_lookup_fn lookup,
                    void *ctx, pb_sigv4_identity *who, pb_error *err)
{
    char msg[PB_ERROR_MESSAGE_MAX] = "";
    char secret[MAX_SECRET], account[13] = "", timestamp[80], body_hash[65], sig[65];
    slice names[MAX_SIGNED_HEADERS];
    size_t nnames = 0, nauth = 0;
    struct auth a;
    pb_buf creq;
    int64_t t = 0;
    int rc = 0;

    memset(secret, 0, sizeof secret);
    pb_buf_init(&creq, MAX_CANONICAL);
    if (!r || !lookup || !service || !service[0] || strlen(service) > MAX_SERVICE ||
        (r->nheaders && !r->headers) || (r->bodylen && !r->body)) {
        rc = pb_error_set(err, PB_EINTERNAL, "pb_sigv4_verify: bad arguments");
        goto out;
    }

    /* 1. the Authorization header */
    const pb_sigv4_header *auth = find_header(r, "authorization", &nauth);
    if (!auth) {
        rc = pb_error_set(err, PB_EAUTH_MISSING, "%s", pb_error_default_message(PB_EAUTH_MISSING));
        goto out;
    }
    if (nauth > 1) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "Only one Authorization header is allowed.");
        goto out;
    }
    slice av = trim(cstr(auth->value));
    if (av.n > MAX_AUTH_LEN) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "Authorization header is longer than %d bytes.", MAX_AUTH_LEN);
        goto out;
    }
    if ((rc = parse_authorization(av, &a, err)))
        goto out;

    /* 2. its parts and a date, all missing ones reported at once */
    const pb_sigv4_header *amzdate = find_header(r, "x-amz-date", NULL);
    const pb_sigv4_header *date = find_header(r, "date", NULL);
    if (!a.credential.n)
        msg_add(msg, sizeof msg, "Authorization header requires 'Credential' parameter. ");
    if (!a.signature.n)
        msg_add(msg, sizeof msg, "Authorization header requires 'Signature' parameter. ");
    if (!a.signed_headers.n)
        msg_add(msg, sizeof msg, "Authorization header requires 'SignedHeaders' parameter. ");
    if (!has_value(amzdate) && !has_value(date))
        msg_add(msg, sizeof msg,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    if (msg[0]) {
        msg_add(msg, sizeof msg, "Authorization=%.*s", (int)av.n, av.p);
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "%s", msg);
        goto out;
    }
    if (!slice_eq(a.algorithm, ALGORITHM)) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "Unsupported AWS 'algorithm': '%.*s'", echo_len(a.algorithm.n),
                          a.algorithm.p);
        goto out;
    }

    /* 3. the signed header names; host among them */
    bool host = false;
    for (size_t i = 0; i <= a.signed_headers.n;) {
        size_t j = i;
        while (j < a.signed_headers.n && a.signed_headers.p[j] != ';')
            j++;
        if (nnames == MAX_SIGNED_HEADERS) {
            rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "Authorization header signs more than %d headers.",
                              MAX_SIGNED_HEADERS);
            goto out;
        }
        names[nnames] = (slice){a.signed_headers.p + i, j - i};
        host |= name_eq("host", names[nnames]);
        nnames++;
        i = j + 1;
    }
    if (!host) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "'Host' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }

    /* 4. the request time and the ±15 minute window */
    if (has_value(amzdate)) {
        slice v = trim(cstr(amzdate->value));
        if (!parse_iso(v, &t)) {
            rc = pb_error_set(err, PB_EAUTH_INCOMPLETE,
                              "Date must be in ISO-8601 'basic format'. Got '%.*s'. See "
                              "http://en.wikipedia.org/wiki/ISO_8601",
                              echo_len(v.n), v.p);
            goto out;
        }
        memcpy(timestamp, v.p, 16);
        timestamp[16] = '\0';
    } else {
        slice v = trim(cstr(date->value));
        if (!parse_rfc1123(v, &t)) {
            rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, "Date must be in RFC 1123 format. Got '%.*s'.", echo_len(v.n),
                              v.p);
            goto out;
        }
        format_iso(t, timestamp);
    }
    int64_t n64 = clamp_time((int64_t)now);
    if (t < n64 - SKEW_SECONDS || t > n64 + SKEW_SECONDS) {
        char edge[80], nowts[80];
        bool expired = t < n64 - SKEW_SECONDS;
        format_iso(expired ? n64 - SKEW_SECONDS : n64 + SKEW_SECONDS, edge);
        format_iso(n64, nowts);
        rc = pb_error_set(err, PB_EAUTH_SIGNATURE,
                          expired ? "Signature expired: %s is now earlier than %s (%s - 15 min.)"
                                  : "Signature not yet current: %s is still later than %s (%s + 15 min.)",
                          timestamp, edge, nowts);
        goto out;
    }

    /* 5. the credential scope: AKID/date/region/service/aws4_request */
    slice part[5];
    size_t nparts = 0;
    for (size_t i = 0; i <= a.credential.n && nparts <= 5;) {
        size_t j = i;
        while (j < a.credential.n && a.credential.p[j] != '/')
            j++;
        if (nparts < 5)
            part[nparts] = (slice){a.credential.p + i, j - i};
        nparts++;
        i = j + 1;
    }
    if (nparts != 5) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE,
                          "Credential must have exactly 5 slash-delimited elements, e.g. "
                          "keyid/date/region/service/term, got '%.*s'",
                          echo_len(a.credential.n), a.credential.p);
        goto out;
    }
    slice akid = part[0], sdate = part[1], region = part[2], svc = part[3], term = part[4];
    if (!valid_region(region))
        msg_add(msg, sizeof msg, "Credential should be scoped to a valid region. ");
    if (!slice_eq(svc, service))
        msg_add(msg, sizeof msg, "Credential should be scoped to correct service: '%s'. ", service);
    if (!slice_eq(term, TERMINATOR))
        msg_add(msg, sizeof msg, "Credential should be scoped with a valid terminator: '" TERMINATOR "', not '%.*s'. ",
                echo_len(term.n), term.p);
    if (sdate.n != 8 || memcmp(sdate.p, timestamp, 8) != 0)
        msg_add(msg, sizeof msg,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                "'%.*s' != '%.8s', from '%s'. ",
                echo_len(sdate.n), sdate.p, timestamp, timestamp);
    if (msg[0]) {
        rc = pb_error_set(err, PB_EAUTH_SIGNATURE, "%s", msg);
        goto out;
    }

    /* 6. the access key */
    char akid_z[MAX_ACCESS_KEY + 1];
    if (akid.n == 0 || akid.n > MAX_ACCESS_KEY || memchr(akid.p, '\0', akid.n)) {
        rc = pb_error_set(err, PB_EAUTH_KEY, "%s", pb_error_default_message(PB_EAUTH_KEY));
        goto out;
    }
    memcpy(akid_z, akid.p, akid.n);
    akid_z[akid.n] = '\0';
    rc = lookup(ctx, akid_z, secret, sizeof secret, account);
    secret[sizeof secret - 1] = '\0';
    account[12] = '\0';
    if (rc == PB_ENOTFOUND) {
        rc = pb_error_set(err, PB_EAUTH_KEY, "%s", pb_error_default_message(PB_EAUTH_KEY));
        goto out;
    }
    if (rc) {
        rc = pb_error_set(err, rc < 0 ? rc : PB_EINTERNAL, "%s", pb_error_default_message(rc < 0 ? rc : PB_EINTERNAL));
        goto out;
    }

    /* 7. the payload hash, the canonical request and the signature */
    bool from_header;
    sha256_hex(r->body, r->bodylen, body_hash);
    slice phash = payload_hash(r, body_hash, &from_header);
    if (from_header && !slice_eq(phash, UNSIGNED_PAYLOAD) && !slice_eq(phash, body_hash)) {
        rc = pb_error_set(err, PB_EAUTH_SIGNATURE,
                          "The provided 'x-amz-content-sha256' header does not match what was computed.");
        goto out;
    }
    rc = canonical_request(&creq, r, names, nnames, a.signed_headers, phash);
    if (rc == PB_EVALIDATION) {
        rc = pb_error_set(err, PB_EAUTH_INCOMPLETE, TOO_LARGE_MSG);
        goto out;
    }
    if (rc == 0)
        rc = compute_signature(secret, sdate, region, svc, timestamp, &creq, sig);
    if (rc) {
        rc = pb_error_set(err, rc, "%s", pb_error_default_message(rc));
        goto out;
    }
    if (a.signature.n != 64 || CRYPTO_memcmp(sig, a.signature.p, 64) != 0) {
        rc = pb_error_set(err, PB_EAUTH_SIGNATURE, "%s", pb_error_default_message(PB_EAUTH_SIGNATURE));
        goto out;
    }

    if (who) {
        memset(who, 0, sizeof *who);
        memcpy(who->access_key, akid.p, akid.n);
        memcpy(who->account, account, sizeof who->account);
        memcpy(who->region, region.p, region.n);
        memcpy(who->service, svc.p, svc.n);
    }
    rc = 0;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    pb_buf_free(&creq);
    return rc;
}

/* ------------------------------------------------------------- signer -- */

/* A header name we sign: 1..128 visible ASCII bytes, none of ":;,". */
static bool valid_header_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || s[n] == ':' || s[n] == ';' ||
            s[n] == ',')
            return false;
    return n > 0 && n <= MAX_HEADER_NAME;
}

/* A scope element or access key: 1..max visible ASCII bytes, no '/' or ','. */
static bool valid_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || s[n] == '/' || s[n] == ',')
            return false;
    return n > 0 && n <= max;
}

static int lname_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int pb_sigv4_sign(const pb_sigv4_request *r, const char *access_key, const char *secret, const char *region,
                  const char *service, char *out, size_t outcap)
{
    char lower[MAX_SIGNED_HEADERS][MAX_HEADER_NAME + 1];
    char *sorted[MAX_SIGNED_HEADERS];
    slice names[MAX_SIGNED_HEADERS];
    char body_hash[65], sig[65], timestamp[17];
    size_t nnames = 0;
    pb_buf creq, sh;
    int64_t t;
    int rc = PB_EVALIDATION;

    pb_buf_init(&creq, MAX_CANONICAL);
    pb_buf_init(&sh, MAX_SIGNED_HEADERS * (MAX_HEADER_NAME + 1));
    if (!r || !access_key || !secret || !region || !service || !out || outcap == 0 ||
        (r->nheaders && !r->headers) || (r->bodylen && !r->body) || r->nheaders > MAX_SIGN_HEADERS)
        goto out;
    out[0] = '\0';
    if (!valid_token(access_key, MAX_ACCESS_KEY) || strlen(secret) >= MAX_SECRET || !valid_region(cstr(region)) ||
        !valid_token(service, MAX_SERVICE))
        goto out;

    /* the distinct lowercase names, sorted; Authorization is never signed */
    for (size_t i = 0; i < r->nheaders; i++) {
        const pb_sigv4_header *h = &r->headers[i];
        if (!h->name || !h->value || !valid_header_name(h->name))
            goto out;
        if (name_eq(h->name, cstr("authorization")))
            continue;
        size_t n = strlen(h->name), k;
        char l[MAX_HEADER_NAME + 1];
        for (size_t j = 0; j <= n; j++)
            l[j] = to_lower(h->name[j]);
        for (k = 0; k < nnames && strcmp(lower[k], l) != 0; k++)
            ;
        if (k < nnames)
            continue;
        if (nnames == MAX_SIGNED_HEADERS)
            goto out;
        memcpy(lower[nnames], l, n + 1);
        sorted[nnames] = lower[nnames];
        nnames++;
    }
    qsort(sorted, nnames, sizeof *sorted, lname_cmp);
    bool host = false;
    for (size_t k = 0; k < nnames; k++) {
        names[k] = cstr(sorted[k]);
        host |= strcmp(sorted[k], "host") == 0;
        if (pb_buf_printf(&sh, "%s%s", k ? ";" : "", sorted[k]))
            goto out;
    }
    const pb_sigv4_header *amzdate = find_header(r, "x-amz-date", NULL);
    slice dv = amzdate ? trim(cstr(amzdate->value)) : cstr("");
    if (!host || !parse_iso(dv, &t))
        goto out;
    memcpy(timestamp, dv.p, 16);
    timestamp[16] = '\0';

    bool from_header;
    sha256_hex(r->body, r->bodylen, body_hash);
    slice phash = payload_hash(r, body_hash, &from_header);
    rc = canonical_request(&creq, r, names, nnames, (slice){sh.data, sh.len}, phash);
    if (rc == 0)
        rc = compute_signature(secret, (slice){timestamp, 8}, cstr(region), cstr(service), timestamp, &creq, sig);
    if (rc) {
        rc = rc == PB_ENOMEM ? PB_ENOMEM : PB_EVALIDATION;
        goto out;
    }
    int n = snprintf(out, outcap, ALGORITHM " Credential=%s/%.8s/%s/%s/" TERMINATOR ", SignedHeaders=%s, Signature=%s",
                     access_key, timestamp, region, service, sh.data, sig);
    if (n < 0 || (size_t)n >= outcap) {
        out[0] = '\0';
        rc = PB_EVALIDATION;
        goto out;
    }
    rc = 0;
out:
    pb_buf_free(&creq);
    pb_buf_free(&sh);
    return rc;
}
