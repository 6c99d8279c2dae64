/*
 * pb_api.h — the AWS JSON 1.1 API: the HTTP server and what it dispatches to.
 *
 * pb_server runs libmicrohttpd on a thread pool. Each POST / is authenticated
 * with SigV4, dispatched on X-Amz-Target to a handler, and answered in the
 * exact shapes of ../shared/spec/AWS-SPEC.md §1: JSON bodies, `__type` and
 * X-Amzn-ErrorType on errors, x-amzn-RequestId and Date on every response.
 * Handlers receive the parsed body (jansson) and the caller's scope and
 * return a JSON object or a pb_error; they never write HTTP themselves.
 */
#ifndef PB_API_H
#define PB_API_H

#include "common/pb_buf.h"
#include "common/pb_error.h"
#include "store/pb_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pb_server pb_server;
typedef struct pb_registry pb_registry;
typedef struct pb_credentials pb_credentials;
typedef struct pb_runner pb_runner;
typedef struct pb_delivery pb_delivery;
typedef struct pb_metrics pb_metrics;
typedef struct pb_scheduler pb_scheduler;

typedef struct pb_server_config {
    const char *listen;   /* "127.0.0.1:4010"; port 0 picks a free one */
    const char *data_dir; /* holds credentials and the default SQLite file */
    const char *store;    /* store URL; NULL: sqlite:<data_dir>/pipebridge.db */
    bool log_json;        /* one JSON object per log line instead of text */
    int max_connections;  /* open HTTP connections, each served by a thread of its own; 0: 512 */
    bool manual_clock;    /* --clock manual: schedules follow Pipebridge.AdvanceClock */
    int schedule_catch_up; /* --schedule-catch-up: a pb_catchup (0 none, 1 latest, 2 all) */
} pb_server_config;

/* Everything a handler needs about one request. */
typedef struct pb_api_ctx {
    pb_store *store;
    pb_registry *registry;
    pb_runner *runner;     /* pipeline executions (SageMaker.* handlers) */
    pb_delivery *delivery; /* PutEvents; told when rules' targets change */
    pb_metrics *metrics;
    pb_scheduler *scheduler; /* schedule rules; told when rules change */
    pb_scope scope;        /* caller's account and region */
    const char *operation; /* "PutRule" */
    int64_t now_ms;
} pb_api_ctx;

/* A handler: reads `in` (borrowed), sets *out to a new JSON object (owned by
 * the caller) and returns 0, or returns a PB_E* code with err filled. */
typedef int (*pb_api_handler)(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err);

/* Starts the server: opens the store and credentials, loads the registry,
 * binds and starts serving. Errors: PB_EVALIDATION (bad listen address,
 * non-loopback address with only the development credential), PB_EIO,
 * PB_EUNSUPPORTED (store), PB_ENOMEM. */
int pb_server_start(const pb_server_config *cfg, pb_server **out, pb_error *err);
uint16_t pb_server_port(const pb_server *s);
/* Stops accepting, finishes in-flight requests, closes the store. */
void pb_server_stop(pb_server *s);

/* One request through the API (used by the HTTP layer and by tests):
 * headers as name/value pairs, the raw body; writes status, the response
 * body, and the error type ("" on success). */
typedef struct pb_api_request {
    const char *method, *path, *query;
    const char *const *header_names;
    const char *const *header_values;
    size_t nheaders;
    const char *body;
    size_t bodylen;
} pb_api_request;

typedef struct pb_api_response {
    int status;
    pb_buf body;
    char error_type[64];
    char request_id[37];
    char operation[64];
} pb_api_response;

typedef struct pb_api pb_api; /* the dispatcher's state: store, registry, credentials */

void pb_api_handle(pb_api *api, const pb_api_request *req, pb_api_response *resp);

/* Operation tables, one per API family (events_*.c). Terminated by a NULL name. */
typedef struct pb_api_op {
    const char *name; /* "PutRule" */
    pb_api_handler fn;
    bool writes;      /* changes state: runs under the API's write lock */
} pb_api_op;

extern const pb_api_op pb_events_bus_ops[];
extern const pb_api_op pb_events_rule_ops[];
extern const pb_api_op pb_events_target_ops[];
extern const pb_api_op pb_events_tag_ops[];
extern const pb_api_op pb_events_put_ops[];         /* events_put.c */
extern const pb_api_op pb_sagemaker_pipeline_ops[];  /* sagemaker_pipelines.c */
extern const pb_api_op pb_sagemaker_exec_ops[];      /* sagemaker_executions.c */
extern const pb_api_op pb_sagemaker_tag_ops[];       /* sagemaker_tags.c */
extern const pb_api_op pb_pipebridge_ops[];          /* pipebridge_dlq.c: Pipebridge.* (dead letters) */
extern const pb_api_op pb_pipebridge_clock_ops[];    /* pipebridge_clock.c: AdvanceClock, PreviewSchedule */
extern const pb_api_op pb_pipebridge_console_ops[];  /* pipebridge_console.c: ExplainEventPattern */

/* ----------------------------------------------------------- console -- */

/* The web console's files (web/console/), embedded at build time by
 * web/embed.cmake: finds the file called exactly `name` ("app.js") and
 * points *data (static, NUL-terminated) and *len at it; false when there is
 * none. Nothing here touches the file system. */
bool pb_console_file(const char *name, const unsigned char **data, size_t *len);

/* ------------------------------------------------------- credentials -- */

/* Loads <data_dir>/credentials (lines "ACCESS_KEY SECRET ACCOUNT"; '#' comments).
 * When the file does not exist it is created with the development credential
 * test / test / 000000000000 and *created is set. */
int pb_credentials_load(const char *data_dir, pb_credentials **out, bool *created, pb_error *err);
void pb_credentials_free(pb_credentials *c);
/* True when the only credential is the development one. */
bool pb_credentials_dev_only(const pb_credentials *c);
/* A pb_sigv4_lookup_fn over the loaded credentials (ctx = pb_credentials *). */
int pb_credentials_lookup(void *ctx, const char *access_key, char *secret, size_t secretcap, char account[13]);

#endif
