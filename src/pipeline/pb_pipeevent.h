/*
 * pb_pipeevent.h — the status-change events SageMaker sends for pipelines
 * (AWS-SPEC §3.2), as complete EventBridge envelopes (§3.1).
 *
 * source "aws.sagemaker", detail-type "SageMaker Model Building Pipeline
 * Execution Status Change" or "... Execution Step Status Change", resources
 * [pipeline ARN, execution ARN], and the detail members of §3.2. Members
 * whose value is not known (the previous status of a first event, the end
 * time of something still running) are omitted. Times are UTC
 * "YYYY-MM-DDTHH:MM:SSZ". Pure: no clock, the caller gives the times and the
 * event id.
 */
#ifndef PB_PIPEEVENT_H
#define PB_PIPEEVENT_H

#include "common/pb_buf.h"
#include "common/pb_error.h"

#include <stdint.h>

#define PB_PIPEEVENT_EXECUTION "SageMaker Model Building Pipeline Execution Status Change"
#define PB_PIPEEVENT_STEP "SageMaker Model Building Pipeline Execution Step Status Change"

/* What both kinds share. Strings are borrowed; optional ones may be NULL. */
typedef struct pb_pipeevent_base {
    const char *id;           /* event id (a UUID) */
    int64_t time_ms;          /* the event's time */
    const char *account;
    const char *region;
    const char *pipeline_arn;
    const char *exec_arn;
    const char *previous;     /* previous status; NULL: omitted */
    const char *current;      /* current status */
} pb_pipeevent_base;

/* An execution status change. start_ms is the execution's start; end_ms 0
 * while it runs. */
int pb_pipeevent_execution(const pb_pipeevent_base *b, const char *display_name, const char *description,
                           int64_t start_ms, int64_t end_ms, pb_buf *out);

/* A step status change. metadata_json is the step's Metadata as listed by
 * ListPipelineExecutionSteps ({"ProcessingJob": {"Arn": ...}}); the event
 * carries it with lowerCamel keys ({"processingJob": {"arn": ...}}).
 * failure_reason is written only when current is "Failed". */
int pb_pipeevent_step(const pb_pipeevent_base *b, const char *step_name, const char *step_type,
                      const char *metadata_json, int64_t start_ms, int64_t end_ms, const char *failure_reason,
                      pb_buf *out);

/* UTC "YYYY-MM-DDTHH:MM:SSZ" of ms since the epoch, into out (>= 21 bytes). */
void pb_pipeevent_time(int64_t ms, char out[32]);

#endif
