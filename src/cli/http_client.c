/*
 * http_client.c — one signed AWS JSON 1.1 request to a pipebridge server.
 *
 * libcurl signs the request itself (CURLOPT_AWS_SIGV4, "aws:amz:REGION:
 * SERVICE"): host, x-amz-date and our headers go into the signature, the
 * body hash too. Answers are read into a capped buffer; an error answer is
 * turned into the AWS CLI's line, with `__type` cut at '#' or ':' as the
 * AWS JSON protocol says clients must.
 */
#include "http_client.h"

#include "cli.h"
#include "common/pb_buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANSWER ((size_t)64 << 20) /* bytes of an answer we read */
#define CONNECT_TIMEOUT_S 10L
#define TOTAL_TIMEOUT_S 600L /* a redrive of many dead letters takes a while */

const pb_cli_service pb_cli_pipebridge = {"Pipebridge", "pipebridge"};

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

void pb_cli_endpoint_init(pb_cli_endpoint *ep)
{
    ep->url = env_or("AWS_ENDPOINT_URL", PB_CLI_DEFAULT_ENDPOINT);
    ep->region = env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", PB_CLI_DEFAULT_REGION));
    ep->access_key = NULL;
    ep->secret = NULL;
}

int pb_cli_endpoint_credentials(pb_cli_endpoint *ep)
{
    const char *key = env_or("AWS_ACCESS_KEY_ID", NULL);
    const char *secret = env_or("AWS_SECRET_ACCESS_KEY", NULL);
    if (!key && !secret) {
        ep->access_key = PB_CLI_DEV_ACCESS_KEY;
        ep->secret = PB_CLI_DEV_SECRET;
        return 0;
    }
    if (!key || !secret) {
        fprintf(stderr, "\nPartial credentials found in env, missing: %s\n",
                key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return PB_EXIT_CLIENT_ERROR;
    }
    ep->access_key = key;
    ep->secret = secret;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    pb_buf *b = ud;
    return pb_buf_append(b, p, size * n) == 0 ? size * n : 0; /* 0 stops the transfer */
}

/* Prints the AWS CLI's line for an error answer; returns PB_EXIT_SERVICE_ERROR. */
static int service_error(const char *op, long status, const pb_buf *body)
{
    json_t *doc = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    char code[128];
    const char *msg = NULL;
    const char *type = doc ? json_string_value(json_object_get(doc, "__type")) : NULL;
    if (type) {
        const char *hash = strrchr(type, '#');
        snprintf(code, sizeof code, "%s", hash ? hash + 1 : type);
        code[strcspn(code, ":")] = '\0';
    } else {
        snprintf(code, sizeof code, "%ld", status);
    }
    if (doc) {
        msg = json_string_value(json_object_get(doc, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(doc, "Message"));
    }
    if (!msg)
        msg = body->len && !doc ? body->data : "Unknown";
    fprintf(stderr, "\nAn error occurred (%s) when calling the %s operation: %s\n", code, op, msg);
    json_decref(doc);
    return PB_EXIT_SERVICE_ERROR;
}

int pb_cli_call(const pb_cli_endpoint *ep, const pb_cli_service *svc, const char *op, json_t *in, json_t **out)
{
    static bool curl_ready;
    *out = NULL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "\npipebridge: cannot initialise libcurl\n");
            return PB_EXIT_CLIENT_ERROR;
        }
        curl_ready = true; /* released at exit by the C library; the CLI makes few calls */
    }
    int status = PB_EXIT_CLIENT_ERROR;
    char *req = json_dumps(in, JSON_COMPACT);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    pb_buf body;
    pb_buf_init(&body, MAX_ANSWER);
    char sigv4[160], target[160], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:%s", ep->region, svc->signing_name);
    snprintf(target, sizeof target, "X-Amz-Target: %s.%s", svc->target_prefix, op);
    const char *const extra[] = {"Content-Type: application/x-amz-json-1.1", target, "Expect:", NULL};
    for (size_t i = 0; extra[i]; i++) {
        struct curl_slist *h = curl_slist_append(hdrs, extra[i]);
        if (!h)
            break;
        hdrs = h;
    }
    if (!req || !c || !hdrs) {
        fprintf(stderr, "\npipebridge: out of memory\n");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, ep->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, TOTAL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, ep->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, ep->secret);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode cr = curl_easy_perform(c);
    if (cr == CURLE_WRITE_ERROR) {
        fprintf(stderr, "\nCannot keep the answer from %s: larger than %zu MiB, or out of memory\n", ep->url,
                MAX_ANSWER >> 20);
        goto out;
    }
    if (cr != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cr);
        if (cr == CURLE_COULDNT_CONNECT || cr == CURLE_COULDNT_RESOLVE_HOST || cr == CURLE_UNSUPPORTED_PROTOCOL ||
            cr == CURLE_URL_MALFORMAT)
            fprintf(stderr, "\nCould not connect to the endpoint URL: \"%s\" (%s). Is `pipebridge serve` running "
                            "there? Set it with --endpoint-url or AWS_ENDPOINT_URL.\n",
                    ep->url, why);
        else
            fprintf(stderr, "\nNo answer from the endpoint URL \"%s\": %s\n", ep->url, why);
        goto out;
    }
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    if (http < 200 || http > 299) {
        status = service_error(op, http, &body);
        goto out;
    }
    json_error_t jerr;
    json_t *doc = body.len ? json_loadb(body.data, body.len, 0, &jerr) : json_object();
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        fprintf(stderr, "\nThe answer from %s to %s is not a JSON object (HTTP %ld)\n", ep->url, op, http);
        goto out;
    }
    *out = doc;
    status = 0;
out:
    pb_buf_free(&body);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    free(req);
    return status;
}
