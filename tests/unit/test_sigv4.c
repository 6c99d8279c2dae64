/*
 * test_sigv4.c — SigV4 signing and verification (src/api/sigv4.c).
 *
 * Covers: the signatures AWS publishes in its SigV4 test suite (get-vanilla,
 * post-vanilla, query ordering, UTF-8 query, slashes and dot segments,
 * header value trimming, duplicate header keys, form bodies) and the IAM
 * ListUsers example, each signed with pb_sigv4_sign and verified with
 * pb_sigv4_verify; a Date-header (RFC 1123) request whose signature was
 * derived with ../shared/tools/sigv4_check.py; sign -> verify round trips and
 * the identity they yield; every verification error with its exact code and
 * message (missing header, malformed parts, missing parameters and date,
 * algorithm, host unsigned, bad dates, the ±15 minute window at its edges,
 * credential shape, region / service / terminator / scope date, unknown
 * key, failing lookups, x-amz-content-sha256, caps); body and header
 * tampering; whitespace folding and repeated headers; canonical path and
 * query forms; signer argument checks. Cross-checks, both run through
 * /usr/bin/python3 and sigv4_crosscheck.py beside this file: 50 random
 * requests signed here must verify with the reference verifier, and 50
 * random requests signed by botocore must verify here, re-sign here to the
 * identical Authorization value, and fail once tampered with. A missing
 * python3, botocore or reference verifier fails those tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/pb_sigv4.h"
#include "common/pb_error.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define ACCOUNT "123456789012"
#define T0 ((time_t)1440938160) /* 20150830T123600Z */
#define T0_ISO "20150830T123600Z"
#define PYTHON "/usr/bin/python3"
#define NCROSS 50

/* ------------------------------------------------------------- helpers -- */

struct key {
    const char *akid, *secret, *account;
};

static const struct key default_keys[] = {
    {AKID, SECRET, ACCOUNT},
    {"AKIDOTHER", "another-secret", "000000000000"},
};

/* What the lookup consults: one extra key (for botocore vectors) and an
 * error to return instead of answering. */
struct keyring {
    struct key extra;
    int fail_with;
    int calls;
};

static int lookup(void *ctx, const char *akid, char *secret, size_t secretcap, char account[13])
{
    struct keyring *k = ctx;
    const struct key *found = NULL;
    if (k) {
        k->calls++;
        if (k->fail_with)
            return k->fail_with;
        if (k->extra.akid && strcmp(k->extra.akid, akid) == 0)
            found = &k->extra;
    }
    for (size_t i = 0; !found && i < sizeof default_keys / sizeof default_keys[0]; i++)
        if (strcmp(default_keys[i].akid, akid) == 0)
            found = &default_keys[i];
    if (!found)
        return PB_ENOTFOUND;
    snprintf(secret, secretcap, "%s", found->secret);
    snprintf(account, 13, "%s", found->account);
    return 0;
}

/* A request under construction; header strings live in `pool` or are literals. */
typedef struct req {
    pb_sigv4_header h[160];
    pb_sigv4_request r;
    char pool[1 << 16];
    size_t used;
} req;

static char *pool_dup(req *q, const char *s, size_t n)
{
    if (q->used + n + 1 > sizeof q->pool)
        fail_msg("request pool exhausted");
    char *p = q->pool + q->used;
    memcpy(p, s, n);
    p[n] = '\0';
    q->used += n + 1;
    return p;
}

static req *req_new(const char *method, const char *path, const char *query, const char *body)
{
    req *q = calloc(1, sizeof *q);
    assert_non_null(q);
    q->r.method = method;
    q->r.path = path;
    q->r.query = query;
    q->r.headers = q->h;
    q->r.body = body;
    q->r.bodylen = body ? strlen(body) : 0;
    return q;
}

static void req_add(req *q, const char *name, const char *value)
{
    if (q->r.nheaders >= sizeof q->h / sizeof q->h[0])
        fail_msg("too many headers");
    q->h[q->r.nheaders].name = pool_dup(q, name, strlen(name));
    q->h[q->r.nheaders].value = pool_dup(q, value, strlen(value));
    q->r.nheaders++;
}

static void req_addf(req *q, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void req_addf(req *q, const char *name, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    req_add(q, name, buf);
}

/* Removes every header named `name` (exact case-insensitive match). */
static void req_del(req *q, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < q->r.nheaders; i++)
        if (strcasecmp(q->h[i].name, name) != 0)
            q->h[k++] = q->h[i];
    q->r.nheaders = k;
}

/* Signs with AKIDEXAMPLE into out (asserting success). */
static void sign_as(req *q, const char *akid, const char *secret, const char *region, const char *service,
                    char *out, size_t cap)
{
    int rc = pb_sigv4_sign(&q->r, akid, secret, region, service, out, cap);
    if (rc != 0)
        fail_msg("pb_sigv4_sign failed: %d", rc);
}

/* Signs and appends the Authorization header. */
static void req_sign(req *q, const char *region, const char *service)
{
    char auth[4096];
    sign_as(q, AKID, SECRET, region, service, auth, sizeof auth);
    req_add(q, "Authorization", auth);
}

static int verify(req *q, time_t now, const char *service, pb_sigv4_identity *who, pb_error *err)
{
    pb_sigv4_identity dummy;
    pb_error_clear(err);
    return pb_sigv4_verify(&q->r, now, service, lookup, NULL, who ? who : &dummy, err);
}

static void expect_ok(req *q, time_t now, const char *service)
{
    pb_error err;
    int rc = verify(q, now, service, NULL, &err);
    if (rc != 0)
        fail_msg("expected success, got %s: %s", pb_error_name(rc), err.message);
}

static void expect_error(req *q, time_t now, const char *service, int code, const char *message)
{
    pb_error err;
    int rc = verify(q, now, service, NULL, &err);
    if (rc != code || err.code != code)
        fail_msg("expected %s, got %s (%s): %s", pb_error_name(code), pb_error_name(rc), pb_error_name(err.code),
                 err.message);
    if (strcmp(err.message, message) != 0)
        fail_msg("message\n  got:      [%s]\n  expected: [%s]", err.message, message);
}

/* A request that is fine apart from its Authorization header. */
static req *events_request(void)
{
    req *q = req_new("POST", "/", "", "{\"Entries\":[]}");
    req_add(q, "Host", "localhost:4010");
    req_add(q, "Content-Type", "application/x-amz-json-1.1");
    req_add(q, "X-Amz-Date", T0_ISO);
    req_add(q, "X-Amz-Target", "AWSEvents.PutEvents");
    return q;
}

#define SIG0 "0000000000000000000000000000000000000000000000000000000000000000"
#define GOOD_SH "content-type;host;x-amz-date;x-amz-target"

/* ----------------------------------------------- AWS published vectors -- */

struct vector {
    const char *name, *method, *path, *query, *body, *service;
    const char *headers[6][2];
    const char *signed_headers, *signature;
};

static const struct vector aws_vectors[] = {
    {"get-vanilla", "GET", "/", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-vanilla", "POST", "/", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"post-vanilla-query", "POST", "/", "Param1=value1", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"get-vanilla-utf8-query", "GET", "/", "%E1%88%B4=bar", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-slashes", "GET", "//example//", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {"get-relative-relative", "GET", "/example1/example2/../..", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", T0_ISO}},
     "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-header-value-trim", "GET", "/", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""},
      {"X-Amz-Date", T0_ISO}},
     "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-header-key-duplicate", "GET", "/", "", "", "service",
     {{"Host", "example.amazonaws.com"}, {"My-Header1", "value2"}, {"My-Header1", "value2"},
      {"My-Header1", "value1"}, {"X-Amz-Date", T0_ISO}},
     "host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"post-x-www-form-urlencoded", "POST", "/", "", "Param1=value1", "service",
     {{"Content-Type", "application/x-www-form-urlencoded"}, {"Host", "example.amazonaws.com"},
      {"X-Amz-Date", T0_ISO}},
     "content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"iam-listusers-doc-example", "GET", "/", "Action=ListUsers&Version=2010-05-08", "", "iam",
     {{"Host", "iam.amazonaws.com"}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
      {"X-Amz-Date", T0_ISO}},
     "content-type;host;x-amz-date", "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"},
};

static req *vector_request(const struct vector *v)
{
    req *q = req_new(v->method, v->path, v->query, v->body);
    for (size_t i = 0; i < 6 && v->headers[i][0]; i++)
        req_add(q, v->headers[i][0], v->headers[i][1]);
    return q;
}

static void test_aws_vectors_sign(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof aws_vectors / sizeof aws_vectors[0]; i++) {
        const struct vector *v = &aws_vectors[i];
        req *q = vector_request(v);
        char got[1024], want[1024];
        sign_as(q, AKID, SECRET, "us-east-1", v->service, got, sizeof got);
        snprintf(want, sizeof want,
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 v->service, v->signed_headers, v->signature);
        if (strcmp(got, want) != 0)
            fail_msg("%s:\n  got:  %s\n  want: %s", v->name, got, want);
        free(q);
    }
}

static void test_aws_vectors_verify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof aws_vectors / sizeof aws_vectors[0]; i++) {
        const struct vector *v = &aws_vectors[i];
        req *q = vector_request(v);
        req_addf(q, "Authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 v->service, v->signed_headers, v->signature);
        pb_sigv4_identity who;
        pb_error err;
        int rc = verify(q, T0, v->service, &who, &err);
        if (rc != 0)
            fail_msg("%s: %s", v->name, err.message);
        assert_string_equal(who.access_key, AKID);
        assert_string_equal(who.account, ACCOUNT);
        assert_string_equal(who.region, "us-east-1");
        assert_string_equal(who.service, v->service);
        /* the same vector with the last signature digit changed fails */
        char *sig = strstr((char *)q->h[q->r.nheaders - 1].value, "Signature=") + 10;
        sig[63] = sig[63] == '0' ? '1' : '0';
        expect_error(q, T0, v->service, PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
        free(q);
    }
}

/* A request dated by an RFC 1123 Date header only; the signature comes from
 * ../shared/tools/sigv4_check.py (timestamp converted to 20150830T123600Z). */
static void test_date_header(void **state)
{
    (void)state;
    req *q = req_new("POST", "/", "", "{}");
    req_add(q, "Host", "example.amazonaws.com");
    req_add(q, "Date", "Sun, 30 Aug 2015 12:36:00 GMT");
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=date;host, Signature=158d6189612e93958dd4971f764e06fa861fea8a80842c086be21dcb76b8e52a");
    expect_ok(q, T0 + 60, "events");
    /* the window applies to the Date header's time too */
    expect_error(q, T0 + 901, "events", PB_EAUTH_SIGNATURE,
                 "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
                 "(20150830T125101Z - 15 min.)");
    /* an equivalent time with a numeric zone is the same request time, but
     * the header's text is signed, so the signature no longer matches */
    q->h[1].value = "Sun, 30 Aug 2015 14:36:00 +0200";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->h[1].value = "30 aug 2015 11:36:00 -0100";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    /* ...whereas a wrong zone moves the time out of the window */
    q->h[1].value = "Sun, 30 Aug 2015 14:36:00 -0200";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE,
                 "Signature not yet current: 20150830T163600Z is still later than 20150830T125100Z "
                 "(20150830T123600Z + 15 min.)");
    q->h[1].value = "yesterday";
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "Date must be in RFC 1123 format. Got 'yesterday'.");
    free(q);
}

/* ------------------------------------------------------- round trips -- */

static void test_round_trip(void **state)
{
    (void)state;
    req *q = events_request();
    req_add(q, "X-Amz-Security-Token", "FQoGZXIvYXdzEJr//////////wEaDOPV");
    req_sign(q, "eu-west-3", "events");
    pb_sigv4_identity who;
    pb_error err;
    memset(&who, 0x55, sizeof who);
    assert_int_equal(verify(q, T0, "events", &who, &err), 0);
    assert_string_equal(who.access_key, AKID);
    assert_string_equal(who.account, ACCOUNT);
    assert_string_equal(who.region, "eu-west-3");
    assert_string_equal(who.service, "events");
    /* every given header is signed, lowercased and sorted; the signature is 64 lowercase hex digits */
    const char *auth = q->h[q->r.nheaders - 1].value;
    const char *prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/events/aws4_request, "
                         "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=";
    assert_int_equal(strncmp(auth, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(auth), strlen(prefix) + 64);
    assert_int_equal(strspn(auth + strlen(prefix), "0123456789abcdef"), 64);
    /* the security token is signed: changing it breaks the signature */
    q->h[4].value = "FQoGZXIvYXdzEJr//////////wEaDOPW";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
}

static void test_round_trip_regions_and_keys(void **state)
{
    (void)state;
    static const char *regions[] = {"us-east-1", "local", "xx-test-9", "a",
                                    "abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz-0123456789"};
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        req *q = events_request();
        char auth[1024];
        sign_as(q, "AKIDOTHER", "another-secret", regions[i], "sagemaker", auth, sizeof auth);
        req_add(q, "Authorization", auth);
        pb_sigv4_identity who;
        pb_error err;
        if (verify(q, T0, "sagemaker", &who, &err) != 0)
            fail_msg("region %s: %s", regions[i], err.message);
        assert_string_equal(who.region, regions[i]);
        assert_string_equal(who.access_key, "AKIDOTHER");
        assert_string_equal(who.account, "000000000000");
        assert_string_equal(who.service, "sagemaker");
        free(q);
    }
}

/* The Authorization value is parsed tolerantly: part order, spacing, tabs. */
static void test_tolerant_parsing(void **state)
{
    (void)state;
    req *base = events_request();
    char auth[1024];
    sign_as(base, AKID, SECRET, "us-east-1", "events", auth, sizeof auth);
    const char *sig = strstr(auth, "Signature=") + 10;
    const char *cred = "AKIDEXAMPLE/20150830/us-east-1/events/aws4_request";
    char forms[4][1024];
    snprintf(forms[0], sizeof forms[0], "AWS4-HMAC-SHA256 Credential=%s,SignedHeaders=" GOOD_SH ",Signature=%s", cred,
             sig);
    snprintf(forms[1], sizeof forms[1], "  AWS4-HMAC-SHA256   Signature=%s ,  Credential=%s,\tSignedHeaders=" GOOD_SH
             "  ", sig, cred);
    snprintf(forms[2], sizeof forms[2], "AWS4-HMAC-SHA256 SignedHeaders=" GOOD_SH ", Signature=%s, Credential=%s", sig,
             cred);
    snprintf(forms[3], sizeof forms[3],
             "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=" GOOD_SH ", Signature=%s, Extra=ignored", cred, sig);
    for (int i = 0; i < 4; i++) {
        req *q = events_request();
        req_add(q, "authorization", forms[i]);
        expect_ok(q, T0, "events");
        free(q);
    }
    free(base);
}

/* ------------------------------------------------------------- errors -- */

static void test_missing_authorization(void **state)
{
    (void)state;
    req *q = events_request();
    expect_error(q, T0, "events", PB_EAUTH_MISSING, "Missing Authentication Token");
    free(q);
}

static void test_unsupported_algorithm(void **state)
{
    (void)state;
    req *q = events_request();
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, SignedHeaders=" GOOD_SH
            ", Signature=" SIG0);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'");
    free(q);
}

static void test_missing_parameters(void **state)
{
    (void)state;
    static const struct {
        const char *auth;
        const char *message;
    } cases[] = {
        {"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" SIG0,
         "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 "
         "SignedHeaders=host, Signature=" SIG0},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, SignedHeaders=host",
         "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 "
         "Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, SignedHeaders=host"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, Signature=" SIG0,
         "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 "
         "Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, Signature=" SIG0},
        /* an empty value counts as missing */
        {"AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=" SIG0,
         "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, "
         "SignedHeaders=host, Signature=" SIG0},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE",
         "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
         "parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req *q = events_request();
        req_add(q, "Authorization", cases[i].auth);
        expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, cases[i].message);
        free(q);
    }
}

static void test_missing_date(void **state)
{
    (void)state;
    req *q = events_request();
    req_del(q, "X-Amz-Date");
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=host, Signature=" SIG0);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE,
                 "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                 "Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
                 "SignedHeaders=host, Signature=" SIG0);
    /* an empty X-Amz-Date is no date either */
    req_add(q, "X-Amz-Date", "  ");
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE,
                 "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                 "Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
                 "SignedHeaders=host, Signature=" SIG0);
    free(q);

    /* a bearer token: no parameters and no date, all reported at once */
    q = req_new("POST", "/", "", "{}");
    req_add(q, "Host", "localhost");
    req_add(q, "Authorization", "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo");
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE,
                 "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
                 "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires "
                 "existence of either a 'X-Amz-Date' or a 'Date' header. "
                 "Authorization=eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo");
    free(q);
}

static void test_not_key_value(void **state)
{
    (void)state;
    req *q = events_request();
    req_add(q, "Authorization", "AWS4-HMAC-SHA256 Credential= AKIDEXAMPLE/20150830/us-east-1/events/aws4_request");
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE,
                 "'AKIDEXAMPLE/20150830/us-east-1/events/aws4_request' not a valid key=value pair (missing "
                 "equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= "
                 "AKIDEXAMPLE/20150830/us-east-1/events/aws4_request'.");
    free(q);
}

static void test_host_must_be_signed(void **state)
{
    (void)state;
    req *q = events_request();
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=content-type;x-amz-date;x-amz-target, Signature=" SIG0);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    free(q);
    /* names in SignedHeaders are matched without regard to case */
    q = events_request();
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=HOST, Signature=" SIG0);
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
    /* mixed-case SignedHeaders: lowercase names in the header lines, the list
     * itself exactly as given (signature computed by hand in Python) */
    q = events_request();
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=Content-Type;Host;X-Amz-Date;X-Amz-Target, "
            "Signature=6301e6a1c533055a8bd23bfd09904971e23dc648526b70376804a8d348f636f2");
    expect_ok(q, T0, "events");
    free(q);
}

static void test_bad_amz_date(void **state)
{
    (void)state;
    static const char *bad[] = {"2015-08-30T12:36:00Z", "20150830T123600", "20151330T123600Z", "20150230T123600Z",
                                "20150830T243600Z", "20150830 123600Z", "2015083OT123600Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req *q = events_request();
        req_del(q, "X-Amz-Date");
        req_add(q, "X-Amz-Date", bad[i]);
        req_add(q, "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, SignedHeaders=" GOOD_SH
                ", Signature=" SIG0);
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601",
                 bad[i]);
        expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, msg);
        free(q);
    }
}

static void test_time_window(void **state)
{
    (void)state;
    req *q = events_request();
    req_sign(q, "us-east-1", "events");
    /* exactly 15 minutes either way is still fine */
    expect_ok(q, T0 + 900, "events");
    expect_ok(q, T0 - 900, "events");
    expect_error(q, T0 + 901, "events", PB_EAUTH_SIGNATURE,
                 "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
                 "(20150830T125101Z - 15 min.)");
    expect_error(q, T0 - 901, "events", PB_EAUTH_SIGNATURE,
                 "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z "
                 "(20150830T122059Z + 15 min.)");
    /* the spec's recorded example */
    req *e = req_new("POST", "/", "", "");
    req_add(e, "Host", "h");
    req_add(e, "X-Amz-Date", "20210502T144040Z");
    req_add(e, "Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210502/us-east-1/events/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature=" SIG0);
    /* 20210502T174643Z */
    expect_error(e, (time_t)1619977603, "events", PB_EAUTH_SIGNATURE,
                 "Signature expired: 20210502T144040Z is now earlier than 20210502T173143Z "
                 "(20210502T174643Z - 15 min.)");
    free(e);
    free(q);
}

/* Builds a request whose Credential is `cred` (signature irrelevant). */
static req *with_credential(const char *cred)
{
    req *q = events_request();
    req_addf(q, "Authorization", "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=" GOOD_SH ", Signature=" SIG0, cred);
    return q;
}

static void test_credential_shape(void **state)
{
    (void)state;
    static const char *bad[] = {"AKIDEXAMPLE", "AKIDEXAMPLE/20150830/us-east-1/events",
                                "AKIDEXAMPLE/20150830/us-east-1/events/aws4_request/extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req *q = with_credential(bad[i]);
        char msg[512];
        snprintf(msg, sizeof msg,
                 "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
                 "got '%s'",
                 bad[i]);
        expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, msg);
        free(q);
    }
}

static void test_scope_checks(void **state)
{
    (void)state;
    static const struct {
        const char *cred;
        const char *message;
    } cases[] = {
        {"AKIDEXAMPLE/20150830/us-east-1/sagemaker/aws4_request",
         "Credential should be scoped to correct service: 'events'. "},
        {"AKIDEXAMPLE/20150830/us-east-1/Events/aws4_request",
         "Credential should be scoped to correct service: 'events'. "},
        {"AKIDEXAMPLE/20150830//events/aws4_request", "Credential should be scoped to a valid region. "},
        {"AKIDEXAMPLE/20150830/US-EAST-1/events/aws4_request", "Credential should be scoped to a valid region. "},
        {"AKIDEXAMPLE/20150830/us_east_1/events/aws4_request", "Credential should be scoped to a valid region. "},
        {"AKIDEXAMPLE/20150830/abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz-01234567890/events/"
         "aws4_request",
         "Credential should be scoped to a valid region. "},
        {"AKIDEXAMPLE/20150830/us-east-1/events/aws5_request",
         "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "},
        {"AKIDEXAMPLE/20150829/us-east-1/events/aws4_request",
         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150829' != "
         "'20150830', from '20150830T123600Z'. "},
        {"AKIDEXAMPLE/foobar/Wrong_Region/wrong-service/aws5_request",
         "Credential should be scoped to a valid region. Credential should be scoped to correct service: 'events'. "
         "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. Date in "
         "Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: 'foobar' != "
         "'20150830', from '20150830T123600Z'. "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req *q = with_credential(cases[i].cred);
        expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, cases[i].message);
        free(q);
    }
}

static void test_unknown_key(void **state)
{
    (void)state;
    req *q = with_credential("AKIDUNKNOWN/20150830/us-east-1/events/aws4_request");
    expect_error(q, T0, "events", PB_EAUTH_KEY, "The security token included in the request is invalid.");
    free(q);
    q = with_credential("/20150830/us-east-1/events/aws4_request");
    expect_error(q, T0, "events", PB_EAUTH_KEY, "The security token included in the request is invalid.");
    free(q);
}

static void test_lookup_failure(void **state)
{
    (void)state;
    req *q = events_request();
    req_sign(q, "us-east-1", "events");
    struct keyring ring = {.fail_with = PB_EIO};
    pb_sigv4_identity who;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_sigv4_verify(&q->r, T0, "events", lookup, &ring, &who, &err), PB_EIO);
    assert_int_equal(err.code, PB_EIO);
    assert_int_equal(ring.calls, 1);
    /* the key is looked up only once the scope is right */
    ring.calls = 0;
    assert_int_equal(pb_sigv4_verify(&q->r, T0, "sagemaker", lookup, &ring, &who, &err), PB_EAUTH_SIGNATURE);
    assert_int_equal(ring.calls, 0);
    free(q);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    req *q = events_request();
    char auth[1024];
    sign_as(q, AKID, "not-the-secret", "us-east-1", "events", auth, sizeof auth);
    req_add(q, "Authorization", auth);
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
}

static void test_signature_form(void **state)
{
    (void)state;
    req *q = events_request();
    char auth[1024];
    sign_as(q, AKID, SECRET, "us-east-1", "events", auth, sizeof auth);
    char *sig = strstr(auth, "Signature=") + 10;
    /* uppercase hex is a different signature */
    for (char *p = sig; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    req_add(q, "Authorization", auth);
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    /* so is a truncated one */
    sig[63] = '\0';
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
}

static void test_body_tamper(void **state)
{
    (void)state;
    req *q = events_request();
    req_sign(q, "us-east-1", "events");
    expect_ok(q, T0, "events");
    q->r.body = "{\"Entries\":[{}]}";
    q->r.bodylen = strlen(q->r.body);
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->r.body = "{\"Entries\":[]}";
    q->r.bodylen = strlen(q->r.body) - 1; /* one byte short */
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
}

static void test_header_tamper(void **state)
{
    (void)state;
    req *q = events_request();
    req_add(q, "User-Agent", "aws-cli/2.15");
    char auth[1024];
    sign_as(q, AKID, SECRET, "us-east-1", "events", auth, sizeof auth);
    req_add(q, "Authorization", auth);
    /* the signer signed User-Agent as well: changing it breaks the signature */
    q->h[4].value = "aws-cli/2.16";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);

    q = events_request();
    req_sign(q, "us-east-1", "events");
    /* an unsigned header may change or appear */
    req_add(q, "User-Agent", "anything");
    expect_ok(q, T0, "events");
    /* a signed one may not */
    q->h[3].value = "AWSEvents.PutRule";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->h[3].value = "AWSEvents.PutEvents";
    expect_ok(q, T0, "events");
    /* nor be repeated, dropped, or moved to another host */
    req_add(q, "x-amz-target", "AWSEvents.PutEvents");
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->r.nheaders--;
    q->h[0].value = "localhost:4011";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->h[0].value = "localhost:4010";
    req_del(q, "Content-Type");
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);

    /* the method, path and query are signed too */
    q = events_request();
    req_sign(q, "us-east-1", "events");
    q->r.method = "PUT";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->r.method = "post"; /* the method is compared uppercased */
    expect_ok(q, T0, "events");
    q->r.path = "/x";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    q->r.path = "/";
    q->r.query = "a=1";
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    free(q);
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    SHA256((const unsigned char *)s, n, md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_content_sha256(void **state)
{
    (void)state;
    char hash[65];
    /* UNSIGNED-PAYLOAD: the body is not covered */
    req *q = events_request();
    req_add(q, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
    req_sign(q, "us-east-1", "events");
    expect_ok(q, T0, "events");
    q->r.body = "{\"Entries\":[{}]}";
    q->r.bodylen = strlen(q->r.body);
    expect_ok(q, T0, "events");
    free(q);

    /* the body's real hash: verifies, and a changed body is caught */
    q = events_request();
    sha256_hex(q->r.body, q->r.bodylen, hash);
    req_add(q, "x-amz-content-sha256", hash);
    req_sign(q, "us-east-1", "events");
    expect_ok(q, T0, "events");
    q->r.body = "{\"Entries\":[{}]}";
    q->r.bodylen = strlen(q->r.body);
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE,
                 "The provided 'x-amz-content-sha256' header does not match what was computed.");
    free(q);

    /* a hash that is not the body's, even correctly signed, is refused */
    q = events_request();
    sha256_hex("other", 5, hash);
    req_add(q, "X-Amz-Content-Sha256", hash);
    req_sign(q, "us-east-1", "events");
    expect_error(q, T0, "events", PB_EAUTH_SIGNATURE,
                 "The provided 'x-amz-content-sha256' header does not match what was computed.");
    free(q);
}

/* ------------------------------------------ canonical form equivalences -- */

/* Signs q's variant and returns the Authorization value (static buffer per slot). */
static const char *signature_of(req *q, int slot)
{
    static char out[4][1024];
    sign_as(q, AKID, SECRET, "us-east-1", "events", out[slot], sizeof out[slot]);
    return out[slot];
}

static void test_whitespace_folding(void **state)
{
    (void)state;
    req *a = events_request(), *b = events_request();
    req_add(a, "X-Custom", "a b c");
    req_add(b, "x-custom", " \t a   b\t\t c \t ");
    assert_string_equal(signature_of(a, 0), signature_of(b, 1));
    /* a request signed with folded whitespace verifies with the raw value */
    req_add(b, "Authorization", signature_of(a, 0));
    expect_ok(b, T0, "events");
    /* whitespace inside a value is not removed, only folded */
    req *c = events_request();
    req_add(c, "X-Custom", "abc");
    assert_string_not_equal(signature_of(a, 0), signature_of(c, 2));
    free(a);
    free(b);
    free(c);
}

static void test_repeated_headers(void **state)
{
    (void)state;
    req *a = events_request(), *b = events_request(), *c = events_request();
    req_add(a, "X-Rep", "one");
    req_add(a, "X-Other", "x");
    req_add(a, "x-rep", "  two  ");
    req_add(b, "X-Rep", "one,two");
    req_add(b, "X-Other", "x");
    req_add(c, "X-Rep", "two");
    req_add(c, "X-Other", "x");
    req_add(c, "X-Rep", "one");
    /* all occurrences joined by ',' in arrival order */
    assert_string_equal(signature_of(a, 0), signature_of(b, 1));
    assert_string_not_equal(signature_of(a, 0), signature_of(c, 2));
    /* the signed header list names x-rep once */
    assert_non_null(strstr(signature_of(a, 0), "SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-other;x-rep,"));
    req_add(a, "Authorization", signature_of(a, 0));
    expect_ok(a, T0, "events");
    /* headers: 0-3 base, 4 X-Rep one, 5 X-Other, 6 x-rep two, 7 Authorization */
    pb_sigv4_header one = a->h[4], two = a->h[6];
    /* the two occurrences swapped: a different value */
    a->h[4] = two;
    a->h[6] = one;
    expect_error(a, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    /* one occurrence dropped */
    a->h[4] = one;
    a->h[6] = a->h[5];
    expect_error(a, T0, "events", PB_EAUTH_SIGNATURE, pb_error_default_message(PB_EAUTH_SIGNATURE));
    /* both kept in order, other headers moved around: still the same request */
    pb_sigv4_header other = a->h[5];
    a->h[5] = two;
    a->h[6] = a->h[0];
    a->h[0] = other;
    expect_ok(a, T0, "events");
    free(a);
    free(b);
    free(c);
}

static void test_header_name_case(void **state)
{
    (void)state;
    req *a = events_request(), *b = req_new("POST", "/", "", "{\"Entries\":[]}");
    req_add(b, "HOST", "localhost:4010");
    req_add(b, "content-TYPE", "application/x-amz-json-1.1");
    req_add(b, "x-amz-date", T0_ISO);
    req_add(b, "X-AMZ-TARGET", "AWSEvents.PutEvents");
    assert_string_equal(signature_of(a, 0), signature_of(b, 1));
    free(a);
    free(b);
}

static void test_canonical_path_and_query(void **state)
{
    (void)state;
    static const struct {
        const char *path1, *query1, *path2, *query2;
    } same[] = {
        {"/a/./b/../c", "", "/a/c", ""},
        {"//a//b//", "", "/a/b/", ""},
        {"/a/..", "", "/", ""},
        {"", "", "/", ""},
        {"/", "b=2&a=1", "/", "a=1&b=2"},
        {"/", "a=2&a=1", "/", "a=1&a=2"},
        {"/", "a=%7e&b=%41", "/", "a=~&b=A"},
        {"/", "a=%2f", "/", "a=%2F"},
        {"/", "x=a b", "/", "x=a%20b"},
        {"/", "k&&j=", "/", "j&k="},
        {"/", "x=%zz", "/", "x=%25zz"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        req *a = events_request(), *b = events_request();
        a->r.path = same[i].path1;
        a->r.query = same[i].query1;
        b->r.path = same[i].path2;
        b->r.query = same[i].query2;
        if (strcmp(signature_of(a, 0), signature_of(b, 1)) != 0)
            fail_msg("case %zu: %s?%s and %s?%s sign differently", i, same[i].path1, same[i].query1, same[i].path2,
                     same[i].query2);
        free(a);
        free(b);
    }
    static const struct {
        const char *path1, *query1, *path2, *query2;
    } different[] = {
        {"/a%20b", "", "/a b", ""}, /* the path is encoded again: %20 -> %2520 */
        {"/a/", "", "/a", ""},
        {"/", "a=1", "/", "a=2"},
        {"/", "a+b=1", "/", "a%20b=1"},
    };
    for (size_t i = 0; i < sizeof different / sizeof different[0]; i++) {
        req *a = events_request(), *b = events_request();
        a->r.path = different[i].path1;
        a->r.query = different[i].query1;
        b->r.path = different[i].path2;
        b->r.query = different[i].query2;
        if (strcmp(signature_of(a, 0), signature_of(b, 1)) == 0)
            fail_msg("case %zu: %s?%s and %s?%s sign alike", i, different[i].path1, different[i].query1,
                     different[i].path2, different[i].query2);
        free(a);
        free(b);
    }
}

/* --------------------------------------------------------------- caps -- */

static void test_caps(void **state)
{
    (void)state;
    /* more than 64 signed headers */
    req *q = events_request();
    char auth[4096] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
                      "SignedHeaders=host";
    for (int i = 0; i < 64; i++)
        snprintf(auth + strlen(auth), sizeof auth - strlen(auth), ";x-h%d", i);
    strcat(auth, ", Signature=" SIG0);
    req_add(q, "Authorization", auth);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "Authorization header signs more than 64 headers.");
    free(q);

    /* an Authorization header longer than 4096 bytes */
    q = events_request();
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    memcpy(big, "AWS4-HMAC-SHA256 Credential=", 28);
    q->h[q->r.nheaders].name = "Authorization";
    q->h[q->r.nheaders].value = big;
    q->r.nheaders++;
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "Authorization header is longer than 4096 bytes.");
    free(big);
    free(q);

    /* two Authorization headers */
    q = events_request();
    req_sign(q, "us-east-1", "events");
    req_add(q, "Authorization", q->h[q->r.nheaders - 1].value);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "Only one Authorization header is allowed.");
    free(q);

    /* a signed header far too large to canonicalize */
    q = events_request();
    size_t n = 300 * 1024;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memset(huge, 'v', n);
    huge[n] = '\0';
    q->h[q->r.nheaders].name = "X-Huge";
    q->h[q->r.nheaders].value = huge;
    q->r.nheaders++;
    req_add(q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/aws4_request, "
            "SignedHeaders=host;x-huge, Signature=" SIG0);
    expect_error(q, T0, "events", PB_EAUTH_INCOMPLETE, "The request is too large to verify its signature.");
    /* the signer refuses it too */
    req_del(q, "Authorization");
    char out[1024];
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(huge);
    free(q);
}

/* ------------------------------------------------------------- signer -- */

static void test_sign_arguments(void **state)
{
    (void)state;
    char out[1024];
    req *q = events_request();
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), 0);
    size_t need = strlen(out) + 1;
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, need), 0);
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, need - 1), PB_EVALIDATION);
    assert_string_equal(out, "");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "US-EAST-1", "events", out, sizeof out), PB_EVALIDATION);
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "", "events", out, sizeof out), PB_EVALIDATION);
    assert_int_equal(pb_sigv4_sign(&q->r, "AK/ID", SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    assert_int_equal(pb_sigv4_sign(&q->r, "", SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "", out, sizeof out), PB_EVALIDATION);
    assert_int_equal(pb_sigv4_sign(NULL, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(q);

    /* host and a valid x-amz-date are required */
    q = events_request();
    req_del(q, "Host");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(q);
    q = events_request();
    req_del(q, "X-Amz-Date");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    req_add(q, "X-Amz-Date", "2015-08-30");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(q);
    /* bad header names */
    q = events_request();
    req_add(q, "Bad Name", "v");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(q);
    /* at most 64 distinct names */
    q = events_request();
    for (int i = 0; i < 60; i++) {
        char name[16];
        snprintf(name, sizeof name, "x-h%d", i);
        req_add(q, name, "v");
    }
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), 0);
    req_add(q, "x-h60", "v");
    assert_int_equal(pb_sigv4_sign(&q->r, AKID, SECRET, "us-east-1", "events", out, sizeof out), PB_EVALIDATION);
    free(q);
}

/* An existing Authorization header is not signed (a retry re-signs cleanly). */
static void test_sign_ignores_authorization(void **state)
{
    (void)state;
    req *a = events_request();
    const char *first = signature_of(a, 0);
    req_add(a, "Authorization", "stale");
    assert_string_equal(first, signature_of(a, 1));
    free(a);
}

/* --------------------------------------------------------- cross-check -- */

/* Path of a file beside this source file. */
static void beside_this_file(const char *name, char *out, size_t cap)
{
    const char *slash = strrchr(__FILE__, '/');
    if (slash)
        snprintf(out, cap, "%.*s/%s", (int)(slash - __FILE__), __FILE__, name);
    else
        snprintf(out, cap, "%s", name);
}

static void require_python(void)
{
    char script[4096];
    beside_this_file("sigv4_crosscheck.py", script, sizeof script);
    if (access(PYTHON, X_OK) != 0)
        fail_msg("cross-check needs %s (with python3-boto3); it is missing", PYTHON);
    if (access(script, R_OK) != 0)
        fail_msg("cross-check script %s is missing", script);
}

/* Tiny deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static unsigned rn(unsigned n) { return (unsigned)(rnd() % n); }
static const char *pick(const char *const *v, size_t n) { return v[rn((unsigned)n)]; }
#define PICK(arr) pick(arr, sizeof arr / sizeof arr[0])

static void hex_put(FILE *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

static void put_field(FILE *f, const char *s, size_t n, bool first)
{
    if (!first)
        fputc('\t', f);
    hex_put(f, s, n);
}

static void iso_of(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void random_case(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z' && rn(3) == 0)
            *s = (char)(*s - 'a' + 'A');
}

static void random_ws(char *dst, size_t cap)
{
    size_t n = 1 + rn(3), k = strlen(dst);
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        dst[k++] = rn(2) ? ' ' : '\t';
    dst[k] = '\0';
}

static void random_value(char *out, size_t cap)
{
    static const char *words[] = {"alpha", "Beta", "x=1;y=2", "a,b", "\"q  v\"", "AWSEvents.PutEvents", "100", "é"};
    out[0] = '\0';
    if (rn(3) == 0)
        random_ws(out, cap);
    unsigned nw = 1 + rn(3);
    for (unsigned i = 0; i < nw; i++) {
        if (i)
            random_ws(out, cap);
        strncat(out, PICK(words), cap - strlen(out) - 1);
    }
    if (rn(3) == 0)
        random_ws(out, cap);
}

/* A query component, sometimes not in canonical form (lowercase escapes,
 * raw reserved characters, stray '%'), to exercise re-encoding. */
static void random_component(char *out, size_t cap)
{
    static const char *atoms[] = {"a", "Z", "9", "-", "_", ".", "~", "%20", "%2F", "%2f", "%7E", "%41", "+", "*",
                                  " ", "%zz", "/", ":", "%C3%A9", "é", "=", "!"};
    out[0] = '\0';
    unsigned n = rn(6);
    for (unsigned i = 0; i < n; i++)
        strncat(out, PICK(atoms), cap - strlen(out) - 1);
}

static void test_crosscheck_c_signed_with_reference(void **state)
{
    (void)state;
    require_python();
    char script[4096], tmpl[] = "/tmp/pb_sigv4_XXXXXX", cmd[8192];
    beside_this_file("sigv4_crosscheck.py", script, sizeof script);
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    static const char *regions[] = {"us-east-1", "eu-west-3", "ap-southeast-2", "local", "xx-test-9"};
    static const char *services[] = {"events", "sagemaker", "execute-api"};
    static const char *hosts[] = {"localhost:4010", "127.0.0.1", "events.example.com", "h:80"};
    static const char *segs[] = {"a", "b", ".", "..", "", "x%20y", "~u", "%C3%A9", "p+q", "v1", "a b"};
    static const char *methods[] = {"POST", "GET", "PUT", "delete"};
    for (int i = 0; i < NCROSS; i++) {
        char path[256] = "", query[512] = "", body[256], akid[32], secret[48], date[17], buf[256];
        req *q = req_new(PICK(methods), path, query, NULL);
        unsigned nseg = rn(5);
        for (unsigned k = 0; k < nseg; k++) {
            strcat(path, "/");
            strcat(path, PICK(segs));
        }
        if (!nseg || rn(3) == 0)
            strcat(path, "/");
        unsigned npairs = rn(4);
        for (unsigned k = 0; k < npairs; k++) {
            if (k)
                strcat(query, "&");
            random_component(buf, 64);
            strcat(query, buf[0] ? buf : "k");
            if (rn(4)) {
                strcat(query, "=");
                random_component(buf, 64);
                strcat(query, buf);
            }
        }
        size_t bodylen = rn(120);
        for (size_t k = 0; k < bodylen; k++)
            body[k] = (char)rn(256);
        q->r.body = body;
        q->r.bodylen = bodylen;
        snprintf(akid, sizeof akid, "AKIA%016llX", (unsigned long long)rnd());
        for (int k = 0; k < 40; k++)
            secret[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rn(64)];
        secret[40] = '\0';
        time_t t = (time_t)(946684800 + rn(35u * 365 * 86400));
        iso_of(t, date);
        const char *region = PICK(regions), *service = PICK(services);

        req_add(q, rn(2) ? "Host" : "host", PICK(hosts));
        req_add(q, rn(2) ? "X-Amz-Date" : "x-amz-date", date);
        req_add(q, "Content-Type", "application/x-amz-json-1.1");
        unsigned nextra = rn(6);
        for (unsigned k = 0; k < nextra; k++) {
            char name[32], value[256];
            snprintf(name, sizeof name, "x-custom-%u", rn(3));
            random_case(name);
            random_value(value, sizeof value);
            req_add(q, name, value);
        }
        if (rn(4) == 0) {
            char hash[65];
            sha256_hex(body, bodylen, hash);
            req_add(q, "X-Amz-Content-SHA256", rn(2) ? "UNSIGNED-PAYLOAD" : hash);
        }
        char auth[4096];
        sign_as(q, akid, secret, region, service, auth, sizeof auth);
        req_add(q, "Authorization", auth);
        /* our own verifier agrees first */
        struct keyring ring = {.extra = {akid, secret, "000000000000"}};
        pb_sigv4_identity who;
        pb_error err;
        pb_error_clear(&err);
        if (pb_sigv4_verify(&q->r, t + (time_t)rn(1801) - 900, service, lookup, &ring, &who, &err) != 0)
            fail_msg("request %d does not verify here: %s", i, err.message);
        assert_string_equal(who.region, region);

        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)t);
        put_field(f, q->r.method, strlen(q->r.method), true);
        put_field(f, path, strlen(path), false);
        put_field(f, query, strlen(query), false);
        put_field(f, body, bodylen, false);
        put_field(f, now, strlen(now), false);
        put_field(f, akid, strlen(akid), false);
        put_field(f, secret, strlen(secret), false);
        put_field(f, region, strlen(region), false);
        put_field(f, service, strlen(service), false);
        for (size_t k = 0; k < q->r.nheaders; k++) {
            put_field(f, q->h[k].name, strlen(q->h[k].name), false);
            put_field(f, q->h[k].value, strlen(q->h[k].value), false);
        }
        fputc('\n', f);
        free(q);
    }
    assert_int_equal(fclose(f), 0);

    snprintf(cmd, sizeof cmd, "%s '%s' verify '%s' 2>&1", PYTHON, script, tmpl);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *line = NULL, *report = NULL;
    size_t cap = 0, reportlen = 0;
    int oks = 0;
    FILE *mem = open_memstream(&report, &reportlen);
    assert_non_null(mem);
    while (getline(&line, &cap, p) > 0) {
        oks += strncmp(line, "ok ", 3) == 0;
        fputs(line, mem);
    }
    fclose(mem);
    int status = pclose(p);
    unlink(tmpl);
    free(line);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || oks != NCROSS)
        fail_msg("reference verifier accepted %d of %d C-signed requests (exit status %d):\n%s", oks, NCROSS,
                 status == -1 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status), report ? report : "");
    free(report);
}

/* One decoded record from sigv4_crosscheck.py. */
struct record {
    char *field[9 + 2 * 160];
    size_t len[9 + 2 * 160];
    size_t nfields;
};

static void record_free(struct record *rec)
{
    for (size_t i = 0; i < rec->nfields; i++)
        free(rec->field[i]);
    rec->nfields = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Splits a tab-separated hex line; false (with nothing allocated) if it is not one. */
static bool record_parse(const char *line, struct record *rec)
{
    rec->nfields = 0;
    const char *p = line;
    for (;;) {
        const char *e = p;
        while (*e && *e != '\t' && *e != '\n')
            e++;
        size_t n = (size_t)(e - p);
        if (n % 2 || rec->nfields == sizeof rec->field / sizeof rec->field[0])
            goto bad;
        char *v = malloc(n / 2 + 1);
        assert_non_null(v);
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(v);
                goto bad;
            }
            v[i] = (char)(hi * 16 + lo);
        }
        v[n / 2] = '\0';
        rec->field[rec->nfields] = v;
        rec->len[rec->nfields++] = n / 2;
        if (*e != '\t')
            break;
        p = e + 1;
    }
    if (rec->nfields < 9 || (rec->nfields - 9) % 2)
        goto bad;
    return true;
bad:
    record_free(rec);
    return false;
}

static void test_crosscheck_botocore_signed(void **state)
{
    (void)state;
    require_python();
    char script[4096], cmd[8192];
    beside_this_file("sigv4_crosscheck.py", script, sizeof script);
    snprintf(cmd, sizeof cmd, "%s '%s' botocore %d 20261125 2>&1", PYTHON, script, NCROSS);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *line = NULL;
    size_t cap = 0;
    int verified = 0, tampered = 0, resigned = 0, unsigned_payloads = 0, repeated = 0;
    char failures[8192] = "";
    while (getline(&line, &cap, p) > 0) {
        struct record rec;
        if (!record_parse(line, &rec)) {
            strncat(failures, line, sizeof failures - strlen(failures) - 1);
            continue;
        }
        pb_sigv4_header headers[160];
        pb_sigv4_request r = {.method = rec.field[0], .path = rec.field[1], .query = rec.field[2],
                              .body = rec.field[3], .bodylen = rec.len[3], .headers = headers};
        const char *auth = NULL, *payload = NULL;
        for (size_t i = 9; i + 1 < rec.nfields; i += 2) {
            headers[r.nheaders].name = rec.field[i];
            headers[r.nheaders].value = rec.field[i + 1];
            if (strcasecmp(rec.field[i], "authorization") == 0)
                auth = rec.field[i + 1];
            if (strcasecmp(rec.field[i], "x-amz-content-sha256") == 0)
                payload = rec.field[i + 1];
            for (size_t k = 9; k < i; k += 2)
                repeated += strcasecmp(rec.field[k], rec.field[i]) == 0;
            r.nheaders++;
        }
        time_t now = (time_t)strtoll(rec.field[4], NULL, 10);
        const char *akid = rec.field[5], *secret = rec.field[6], *region = rec.field[7], *service = rec.field[8];
        struct keyring ring = {.extra = {akid, secret, "000000000000"}};
        pb_sigv4_identity who;
        pb_error err;
        pb_error_clear(&err);
        int rc = pb_sigv4_verify(&r, now, service, lookup, &ring, &who, &err);
        if (rc == 0 && strcmp(who.region, region) == 0 && strcmp(who.service, service) == 0 &&
            strcmp(who.access_key, akid) == 0)
            verified++;
        else
            snprintf(failures + strlen(failures), sizeof failures - strlen(failures),
                     "verify %s %s?%s: %s\n", r.method, r.path, r.query, err.message);

        /* re-signed here with just the headers botocore signed: the same value */
        const char *sh = auth ? strstr(auth, "SignedHeaders=") : NULL;
        if (sh) {
            sh += 14;
            size_t shlen = strcspn(sh, ",");
            pb_sigv4_header mine[160];
            pb_sigv4_request r2 = r;
            r2.headers = mine;
            r2.nheaders = 0;
            for (size_t i = 0; i < r.nheaders; i++) {
                size_t n = strlen(headers[i].name);
                for (const char *s = sh; s < sh + shlen;) {
                    size_t m = strcspn(s, ";,");
                    if (m == n && strncasecmp(s, headers[i].name, n) == 0) {
                        mine[r2.nheaders++] = headers[i];
                        break;
                    }
                    s += m + 1;
                }
            }
            char out[4096];
            if (pb_sigv4_sign(&r2, akid, secret, region, service, out, sizeof out) == 0 && strcmp(out, auth) == 0)
                resigned++;
            else
                snprintf(failures + strlen(failures), sizeof failures - strlen(failures),
                         "re-sign differs:\n  botocore: %s\n  ours:     %s\n", auth, out);
        }

        /* one byte of the body changed: refused unless the payload is unsigned */
        char *body = rec.field[3];
        bool is_unsigned = payload && strcmp(payload, "UNSIGNED-PAYLOAD") == 0;
        unsigned_payloads += is_unsigned;
        if (rec.len[3]) {
            body[rec.len[3] / 2] ^= 0x20;
        } else {
            r.body = "x";
            r.bodylen = 1;
        }
        rc = pb_sigv4_verify(&r, now, service, lookup, &ring, &who, &err);
        if (is_unsigned ? rc == 0 : rc == PB_EAUTH_SIGNATURE)
            tampered++;
        else
            snprintf(failures + strlen(failures), sizeof failures - strlen(failures),
                     "tampered body gave %s: %s\n", pb_error_name(rc), err.message);
        record_free(&rec);
    }
    free(line);
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s failed (exit status %d): %s", cmd, status == -1 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status),
                 failures);
    if (verified != NCROSS || resigned != NCROSS || tampered != NCROSS)
        fail_msg("botocore vectors: %d verified, %d re-signed identically, %d tamperings caught, of %d:\n%s",
                 verified, resigned, tampered, NCROSS, failures);
    /* the generator must have exercised the interesting cases */
    assert_true(unsigned_payloads > 0);
    assert_true(repeated > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_vectors_sign),
        cmocka_unit_test(test_aws_vectors_verify),
        cmocka_unit_test(test_date_header),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_regions_and_keys),
        cmocka_unit_test(test_tolerant_parsing),
        cmocka_unit_test(test_missing_authorization),
        cmocka_unit_test(test_unsupported_algorithm),
        cmocka_unit_test(test_missing_parameters),
        cmocka_unit_test(test_missing_date),
        cmocka_unit_test(test_not_key_value),
        cmocka_unit_test(test_host_must_be_signed),
        cmocka_unit_test(test_bad_amz_date),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_credential_shape),
        cmocka_unit_test(test_scope_checks),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_lookup_failure),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_signature_form),
        cmocka_unit_test(test_body_tamper),
        cmocka_unit_test(test_header_tamper),
        cmocka_unit_test(test_content_sha256),
        cmocka_unit_test(test_whitespace_folding),
        cmocka_unit_test(test_repeated_headers),
        cmocka_unit_test(test_header_name_case),
        cmocka_unit_test(test_canonical_path_and_query),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_sign_arguments),
        cmocka_unit_test(test_sign_ignores_authorization),
        cmocka_unit_test(test_crosscheck_c_signed_with_reference),
        cmocka_unit_test(test_crosscheck_botocore_signed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
