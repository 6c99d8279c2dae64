/*
 * pipeevent.c — building the SageMaker pipeline status-change events.
 * See pb_pipeevent.h. The envelope is built with jansson and written
 * compactly; metadata keys are turned lowerCamel the way SageMaker's event
 * detail spells them.
 */
#include "pipeline/pb_pipeevent.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pb_pipeevent_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v)
        json_object_set_new(o, key, json_string(v));
}

static void set_time(json_t *o, const char *key, int64_t ms)
{
    char t[32];
    if (ms > 0) {
        pb_pipeevent_time(ms, t);
        json_object_set_new(o, key, json_string(t));
    }
}

/* The envelope around detail (stolen). Writes it to out. */
static int envelope(const pb_pipeevent_base *b, const char *detail_type, json_t *detail, pb_buf *out)
{
    if (!detail)
        return PB_ENOMEM;
    char t[32];
    pb_pipeevent_time(b->time_ms, t);
    json_t *e = json_object();
    json_t *res = json_array();
    if (!e || !res) {
        json_decref(e);
        json_decref(res);
        json_decref(detail);
        return PB_ENOMEM;
    }
    json_object_set_new(e, "version", json_string("0"));
    set_str(e, "id", b->id);
    json_object_set_new(e, "detail-type", json_string(detail_type));
    json_object_set_new(e, "source", json_string("aws.sagemaker"));
    set_str(e, "account", b->account);
    json_object_set_new(e, "time", json_string(t));
    set_str(e, "region", b->region);
    json_array_append_new(res, json_string(b->pipeline_arn));
    json_array_append_new(res, json_string(b->exec_arn));
    json_object_set_new(e, "resources", res);
    json_object_set_new(e, "detail", detail);
    char *text = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(e);
    if (!text)
        return PB_ENOMEM;
    int rc = pb_buf_puts(out, text);
    free(text);
    return rc;
}

int pb_pipeevent_execution(const pb_pipeevent_base *b, const char *display_name, const char *description,
                           int64_t start_ms, int64_t end_ms, pb_buf *out)
{
    json_t *d = json_object();
    if (!d)
        return PB_ENOMEM;
    set_str(d, "pipelineExecutionDisplayName", display_name);
    set_str(d, "currentPipelineExecutionStatus", b->current);
    set_str(d, "previousPipelineExecutionStatus", b->previous);
    set_time(d, "executionStartTime", start_ms);
    set_time(d, "executionEndTime", end_ms);
    set_str(d, "pipelineExecutionDescription", description);
    set_str(d, "pipelineArn", b->pipeline_arn);
    set_str(d, "pipelineExecutionArn", b->exec_arn);
    return envelope(b, PB_PIPEEVENT_EXECUTION, d, out);
}

/* A copy of v whose object keys start with a lowercase letter. */
static json_t *lower_camel(json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            char key[256];
            snprintf(key, sizeof key, "%s", k);
            key[0] = (char)tolower((unsigned char)key[0]);
            json_object_set_new(o, key, lower_camel(m));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) json_array_append_new(a, lower_camel(m));
        return a;
    }
    return json_incref(v);
}

int pb_pipeevent_step(const pb_pipeevent_base *b, const char *step_name, const char *step_type,
                      const char *metadata_json, int64_t start_ms, int64_t end_ms, const char *failure_reason,
                      pb_buf *out)
{
    json_t *d = json_object();
    if (!d)
        return PB_ENOMEM;
    json_t *meta = metadata_json ? json_loads(metadata_json, JSON_PRESERVE_ORDER, NULL) : NULL;
    json_object_set_new(d, "metadata", meta ? lower_camel(meta) : json_object());
    json_decref(meta);
    set_time(d, "stepStartTime", start_ms);
    set_time(d, "stepEndTime", end_ms);
    set_str(d, "stepName", step_name);
    set_str(d, "stepType", step_type);
    set_str(d, "previousStepStatus", b->previous);
    set_str(d, "currentStepStatus", b->current);
    set_str(d, "pipelineArn", b->pipeline_arn);
    set_str(d, "pipelineExecutionArn", b->exec_arn);
    if (failure_reason && b->current && !strcmp(b->current, "Failed"))
        set_str(d, "failureReason", failure_reason);
    return envelope(b, PB_PIPEEVENT_STEP, d, out);
}
