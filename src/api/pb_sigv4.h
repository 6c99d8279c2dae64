/*
 * pb_sigv4.h — AWS Signature Version 4: verifying requests (server) and
 * signing them (our CLI, tests and benchmarks).
 *
 * Pure: no I/O and no clock of its own (the caller passes "now"); the secret
 * of an access key comes from a caller-supplied lookup. Behaviour and error
 * texts follow ../shared/spec/AWS-SPEC.md §1.3; the verifier is cross-checked
 * against ../shared/tools/sigv4_check.py in the tests.
 */
#ifndef PB_SIGV4_H
#define PB_SIGV4_H

#include "common/pb_error.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One received header; names in any case, values as received. Repeated
 * headers appear as several entries. */
typedef struct pb_sigv4_header {
    const char *name;
    const char *value;
} pb_sigv4_header;

typedef struct pb_sigv4_request {
    const char *method; /* "POST" */
    const char *path;   /* "/" */
    const char *query;  /* raw query string without '?', "" when none */
    const pb_sigv4_header *headers;
    size_t nheaders;
    const void *body;
    size_t bodylen;
} pb_sigv4_request;

/* What a verified request was signed for. */
typedef struct pb_sigv4_identity {
    char access_key[129];
    char account[13];   /* 12 digits, from the lookup */
    char region[65];    /* from the credential scope: the caller's region */
    char service[33];   /* "events" or "sagemaker" */
} pb_sigv4_identity;

/* Looks up an access key: on success copies its secret (NUL-terminated, at
 * most secretcap-1 bytes) and its 12-digit account id and returns 0;
 * returns PB_ENOTFOUND for an unknown key. */
typedef int (*pb_sigv4_lookup_fn)(void *ctx, const char *access_key, char *secret, size_t secretcap,
                                  char account[13]);

/* Verifies r as signed for `service` at time `now` (seconds since the epoch).
 * On success fills *who and returns 0. Errors, with AWS's messages:
 *   PB_EAUTH_MISSING     no Authorization header
 *   PB_EAUTH_INCOMPLETE  malformed header, missing parts or date, host unsigned
 *   PB_EAUTH_SIGNATURE   expired / not yet current (±15 min), wrong scope date,
 *                        wrong service, wrong signature
 *   PB_EAUTH_KEY         unknown access key
 *   PB_ENOMEM */
int pb_sigv4_verify(const pb_sigv4_request *r, time_t now, const char *service, pb_sigv4_lookup_fn lookup,
                    void *ctx, pb_sigv4_identity *who, pb_error *err);

/* Signs r: computes the Authorization header value for the given headers
 * (all of r->headers are signed; they must include host and x-amz-date, whose
 * value is the request time YYYYMMDD'T'HHMMSS'Z'). Writes a NUL-terminated
 * value to out (outcap >= 512 plus the signed header names). 0 or PB_EVALIDATION. */
int pb_sigv4_sign(const pb_sigv4_request *r, const char *access_key, const char *secret, const char *region,
                  const char *service, char *out, size_t outcap);

#endif
