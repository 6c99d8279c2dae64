/*
 * api_internal.h — what the API's files share: the dispatcher state, JSON
 * helpers for handlers, ARNs and paging tokens.
 */
#ifndef PB_API_INTERNAL_H
#define PB_API_INTERNAL_H

#include "bus/pb_delivery.h"
#include "bus/pb_metrics.h"
#include "bus/pb_registry.h"
#include "bus/pb_scheduler.h"
#include "pipeline/pb_runner.h"
#include "pb_api.h"
#include "pb_sigv4.h"
#include "validate.h"

#include <jansson.h>

#include <pthread.h>

struct pb_api {
    pb_store *store;
    pb_registry *registry;
    pb_credentials *creds;
    pb_runner *runner;
    pb_metrics *metrics;
    pb_delivery *delivery;
    pb_scheduler *scheduler;
    pthread_mutex_t write_lock; /* held by operations that change state */
};

/* A random UUID v4, lowercase. */
void pb_api_uuid(char out[37]);

/* Sets obj[key] to a string when s is non-NULL (absent members are omitted). */
void pb_json_set_str(json_t *obj, const char *key, const char *s);
/* Seconds since the epoch as a JSON number with millisecond precision. */
json_t *pb_json_time(int64_t ms);

/* "arn:aws:events:REGION:ACCOUNT:event-bus/NAME" and the rule ARN
 * (".../rule/NAME" on default, ".../rule/BUS/NAME" on others). Malloc'd. */
char *pb_arn_bus(const pb_scope *sc, const char *bus);
char *pb_arn_rule(const pb_scope *sc, const char *bus, const char *rule);

/* Reads EventBusName (a name or a bus ARN) from `in`; writes the bus name
 * (default "default") to out. Records violations in v. An ARN of another
 * account or region than the caller's (sc) yields the ARN itself, which no
 * bus is named, so the lookup answers "Event bus <arn> does not exist.". */
void pb_read_bus_name(pb_vctx *v, json_t *in, const char *member, const char *path, const pb_scope *sc, char *out,
                      size_t cap);

/* Paging: NextToken <-> the last key of the previous page. decode: 0, or
 * PB_EVALIDATION for a token we did not issue. */
char *pb_token_encode(const char *last_key);
int pb_token_decode(const char *token, char *out, size_t cap, pb_error *err);

/* Paging members (NextToken, Limit) of a List* request. */
typedef struct pb_page {
    const char *token; /* as sent, or NULL */
    size_t limit;      /* Limit, or PB_MAX_PAGE */
    char after[1024];  /* the key the token stands for */
} pb_page;

/* Reads NextToken and Limit (recording violations in v). */
void pb_read_page(pb_vctx *v, json_t *in, pb_page *pg);
/* Decodes the token after validation; 0 or PB_EVALIDATION. */
int pb_page_decode(pb_page *pg, pb_error *err);
/* The `after` key for the store: NULL for the first page. */
static inline const char *pb_page_after(const pb_page *pg) { return pg->token ? pg->after : NULL; }
/* Sets out["NextToken"] when more records follow last_key. */
void pb_set_next_token(json_t *out, bool more, const char *last_key);

/* Tags [{Key, Value}] from a request member; 0 or a validation error recorded. */
int pb_read_tags(pb_vctx *v, json_t *in, const char *member, const char *path, pb_tag **tags, size_t *n);
json_t *pb_tags_json(const pb_tag *tags, size_t n);

/* Maximums from the AWS quotas. */
#define PB_MAX_TAGS 50
#define PB_MAX_TARGETS 5
#define PB_MAX_PAGE 100

#endif
