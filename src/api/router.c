/*
 * router.c — one API request from raw HTTP parts to an AWS-shaped answer.
 *
 * Order of checks: the target header names a known service (else
 * UnknownOperationException), the SigV4 signature is valid for that service
 * (MissingAuthenticationToken / IncompleteSignature / InvalidSignature /
 * UnrecognizedClient), the operation exists, the body is a JSON object
 * (SerializationException), then the handler runs. Errors carry `__type`
 * and `message` in the body (`Message` too for SageMaker, whose error shapes
 * declare it) and X-Amzn-ErrorType is set by the HTTP layer.
 */
#include "api_internal.h"

#include "common/pb_log.h"
#include "common/pb_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <time.h>

static void new_request_id(char out[37]) { pb_uuid_v4(out); }

void pb_api_uuid(char out[37]) { new_request_id(out); }

static const char *header(const pb_api_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (!strcasecmp(req->header_names[i], name))
            return req->header_values[i];
    return NULL;
}

static void respond_error(pb_api_response *resp, int code, const char *message, bool sagemaker)
{
    resp->status = pb_error_http_status(code);
    snprintf(resp->error_type, sizeof resp->error_type, "%s", pb_error_aws_type(code));
    pb_buf_reset(&resp->body);
    json_t *o = json_object();
    json_object_set_new(o, "__type", json_string(resp->error_type));
    json_t *m = json_stringn(message, strlen(message));
    if (!m)
        m = json_string("(message was not valid UTF-8)");
    json_object_set(o, "message", m);
    if (sagemaker)
        json_object_set(o, "Message", m);
    json_decref(m);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text) {
        pb_buf_puts(&resp->body, text);
        free(text);
    }
}

static const pb_api_op *find_op(const pb_api_op *const *tables, const char *name)
{
    for (size_t t = 0; tables[t]; t++)
        for (const pb_api_op *op = tables[t]; op->name; op++)
            if (!strcmp(op->name, name))
                return op;
    return NULL;
}

void pb_api_handle(pb_api *api, const pb_api_request *req, pb_api_response *resp)
{
    static const pb_api_op *const events_tables[] = {pb_events_bus_ops, pb_events_rule_ops, pb_events_target_ops,
                                                     pb_events_tag_ops, pb_events_put_ops, NULL};
    static const pb_api_op *const sagemaker_tables[] = {pb_sagemaker_pipeline_ops, pb_sagemaker_exec_ops,
                                                        pb_sagemaker_tag_ops, NULL};
    static const pb_api_op *const pipebridge_tables[] = {pb_pipebridge_ops, pb_pipebridge_console_ops,
                                                            pb_pipebridge_clock_ops, NULL};
    pb_error err;
    new_request_id(resp->request_id);
    resp->error_type[0] = '\0';
    resp->status = 200;
    snprintf(resp->operation, sizeof resp->operation, "-");
    const char *target = header(req, "x-amz-target");
    const char *service = NULL;
    const char *opname = NULL;
    const pb_api_op *const *tables = NULL;
    bool sagemaker = false;
    if (target && !strncmp(target, "AWSEvents.", 10)) {
        service = "events";
        opname = target + 10;
        tables = events_tables;
    } else if (target && !strncmp(target, "SageMaker.", 10)) {
        service = "sagemaker";
        opname = target + 10;
        tables = sagemaker_tables;
        sagemaker = true;
    } else if (target && !strncmp(target, "Pipebridge.", 11)) {
        service = "pipebridge"; /* pipebridge's own actions, answered as EventBridge answers */
        opname = target + 11;
        tables = pipebridge_tables;
    }
    if (!service) {
        respond_error(resp, PB_EUNKNOWN_OP,
                      target ? "The X-Amz-Target header names no known service: expected AWSEvents.*, SageMaker.* or "
                                     "Pipebridge.*"
                             : "Missing X-Amz-Target header",
                      false);
        return;
    }
    snprintf(resp->operation, sizeof resp->operation, "%s", opname);
    /* SigV4 */
    pb_sigv4_header hs[128];
    size_t nh = req->nheaders < 128 ? req->nheaders : 128;
    for (size_t i = 0; i < nh; i++) {
        hs[i].name = req->header_names[i];
        hs[i].value = req->header_values[i];
    }
    pb_sigv4_request sr = {req->method, req->path, req->query ? req->query : "", hs, nh, req->body, req->bodylen};
    pb_sigv4_identity who;
    int rc = pb_sigv4_verify(&sr, time(NULL), service, pb_credentials_lookup, api->creds, &who, &err);
    if (rc) {
        respond_error(resp, rc, err.message, sagemaker);
        return;
    }
    const pb_api_op *op = find_op(tables, opname);
    if (!op) {
        char msg[256];
        snprintf(msg, sizeof msg, "Operation %.100s is not supported by pipebridge", opname);
        respond_error(resp, PB_EUNKNOWN_OP, msg, sagemaker);
        return;
    }
    json_t *in;
    if (req->bodylen == 0) {
        in = json_object();
    } else {
        json_error_t jerr;
        /* without JSON_ALLOW_NUL: a NUL inside a name would let it pass as a shorter name */
        in = json_loadb(req->body, req->bodylen, 0, &jerr);
        if (!in || !json_is_object(in)) {
            json_decref(in);
            respond_error(resp, PB_ESERIALIZATION, "The request body is not a JSON object", sagemaker);
            return;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pb_api_ctx ctx = {.store = api->store,
                      .registry = api->registry,
                      .runner = api->runner,
                      .delivery = api->delivery,
                      .scheduler = api->scheduler,
                      .metrics = api->metrics,
                      .scope = {who.account, who.region},
                      .operation = opname,
                      .now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
    json_t *out = NULL;
    pb_error_clear(&err);
    /* Writes are serialised: each one's store commit and registry update
     * happen together, so concurrent writers cannot leave matching out of
     * step with the store, and existence checks hold until the write. */
    if (op->writes)
        pthread_mutex_lock(&api->write_lock);
    rc = op->fn(&ctx, in, &out, &err);
    if (op->writes)
        pthread_mutex_unlock(&api->write_lock);
    json_decref(in);
    if (rc) {
        json_decref(out);
        respond_error(resp, rc, err.message[0] ? err.message : pb_error_default_message(rc), sagemaker);
        return;
    }
    char *text = json_dumps(out ? out : json_object(), JSON_COMPACT);
    json_decref(out);
    if (!text) {
        respond_error(resp, PB_EINTERNAL, "cannot serialise the response", sagemaker);
        return;
    }
    pb_buf_reset(&resp->body);
    pb_buf_puts(&resp->body, text);
    free(text);
}
