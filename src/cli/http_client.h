/*
 * http_client.h — the CLI's way to a pipebridge server: one signed AWS JSON
 * 1.1 request over HTTP (libcurl, SigV4 by CURLOPT_AWS_SIGV4), errors
 * printed as the AWS CLI prints them.
 *
 * The CLI talks to the server only through its HTTP API, as any other client
 * does. Commands fill a pb_cli_endpoint from their options (with the
 * defaults below), then call pb_cli_call once per request.
 */
#ifndef PB_CLI_HTTP_CLIENT_H
#define PB_CLI_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#define PB_EXIT_CLIENT_ERROR 255 /* AWS CLI: no answer (connection failed, bad credentials setup) */

#define PB_CLI_DEFAULT_ENDPOINT "http://127.0.0.1:4010"
#define PB_CLI_DEFAULT_REGION "us-east-1"
#define PB_CLI_DEV_ACCESS_KEY "test" /* the development credential `serve` creates */
#define PB_CLI_DEV_SECRET "test"

/* Where and as whom. Strings are borrowed (argv, environment, literals). */
typedef struct pb_cli_endpoint {
    const char *url;        /* --endpoint-url, AWS_ENDPOINT_URL, or PB_CLI_DEFAULT_ENDPOINT */
    const char *region;     /* --region, AWS_REGION, AWS_DEFAULT_REGION, or PB_CLI_DEFAULT_REGION */
    const char *access_key; /* AWS_ACCESS_KEY_ID, or the development credential */
    const char *secret;     /* AWS_SECRET_ACCESS_KEY, or the development credential */
} pb_cli_endpoint;

/* The defaults from the environment; options given later override url and region. */
void pb_cli_endpoint_init(pb_cli_endpoint *ep);

/* Reads the credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 * (both unset: the development credential test / test). Only one of them
 * set is an error, as in the AWS CLI: printed, PB_EXIT_CLIENT_ERROR. */
int pb_cli_endpoint_credentials(pb_cli_endpoint *ep);

/* One API family: X-Amz-Target prefix and SigV4 service. */
typedef struct pb_cli_service {
    const char *target_prefix; /* "Pipebridge" (also "AWSEvents", "SageMaker") */
    const char *signing_name;  /* "pipebridge" ("events", "sagemaker") */
} pb_cli_service;

extern const pb_cli_service pb_cli_pipebridge;

/* POSTs `in` (borrowed) as operation op and sets *out to the answer (a JSON
 * object, owned by the caller). Returns 0, or, with the error printed to
 * stderr: PB_EXIT_SERVICE_ERROR when the server answered an error
 * ("An error occurred (Code) when calling the OP operation: message"),
 * PB_EXIT_CLIENT_ERROR when there was no usable answer (cannot connect,
 * timeout, a body that is not JSON, out of memory). */
int pb_cli_call(const pb_cli_endpoint *ep, const pb_cli_service *svc, const char *op, json_t *in, json_t **out);

#endif
