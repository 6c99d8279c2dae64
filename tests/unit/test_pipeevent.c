/*
 * test_pipeevent.c — src/pipeline/pipeevent.c: the SageMaker pipeline
 * status-change events (AWS-SPEC §3.2) as complete envelopes, compared
 * member by member after parsing (jansson), not as text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "pipeline/pb_pipeevent.h"

#define PARN "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mypipeline-123"
#define EARN PARN "/execution/p4jn9xou8a8s"

static json_t *parse(pb_buf *b)
{
    json_error_t e;
    json_t *v = json_loads(b->data, 0, &e);
    assert_non_null(v);
    return v;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void test_execution_event(void **state)
{
    (void)state;
    pb_pipeevent_base b = {.id = "315c1398-40ff-a850-213b-158f73kd93ir",
                           .time_ms = 1615824611000, /* 2021-03-15T16:10:11Z */
                           .account = "123456789012",
                           .region = "us-east-1",
                           .pipeline_arn = PARN,
                           .exec_arn = EARN,
                           .previous = "Executing",
                           .current = "Succeeded"};
    pb_buf out;
    pb_buf_init(&out, 0);
    assert_int_equal(pb_pipeevent_execution(&b, "SomeDisplayName", "SomeDescription", 1615824193000,
                                            1615824610000, &out),
                     0);
    json_t *e = parse(&out);
    assert_string_equal(str(e, "version"), "0");
    assert_string_equal(str(e, "id"), b.id);
    assert_string_equal(str(e, "detail-type"), "SageMaker Model Building Pipeline Execution Status Change");
    assert_string_equal(str(e, "source"), "aws.sagemaker");
    assert_string_equal(str(e, "account"), "123456789012");
    assert_string_equal(str(e, "time"), "2021-03-15T16:10:11Z");
    assert_string_equal(str(e, "region"), "us-east-1");
    json_t *res = json_object_get(e, "resources");
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(json_string_value(json_array_get(res, 0)), PARN);
    assert_string_equal(json_string_value(json_array_get(res, 1)), EARN);
    json_t *d = json_object_get(e, "detail");
    assert_string_equal(str(d, "pipelineExecutionDisplayName"), "SomeDisplayName");
    assert_string_equal(str(d, "currentPipelineExecutionStatus"), "Succeeded");
    assert_string_equal(str(d, "previousPipelineExecutionStatus"), "Executing");
    assert_string_equal(str(d, "executionStartTime"), "2021-03-15T16:03:13Z");
    assert_string_equal(str(d, "executionEndTime"), "2021-03-15T16:10:10Z");
    assert_string_equal(str(d, "pipelineExecutionDescription"), "SomeDescription");
    assert_string_equal(str(d, "pipelineArn"), PARN);
    assert_string_equal(str(d, "pipelineExecutionArn"), EARN);
    assert_int_equal(json_object_size(d), 8);
    json_decref(e);

    /* the first event: no previous status, no end time, no description */
    pb_buf_reset(&out);
    b.previous = NULL;
    b.current = "Executing";
    assert_int_equal(pb_pipeevent_execution(&b, "d", NULL, 1615824193000, 0, &out), 0);
    e = parse(&out);
    d = json_object_get(e, "detail");
    assert_null(json_object_get(d, "previousPipelineExecutionStatus"));
    assert_null(json_object_get(d, "executionEndTime"));
    assert_null(json_object_get(d, "pipelineExecutionDescription"));
    json_decref(e);
    pb_buf_free(&out);
}

static void test_step_event(void **state)
{
    (void)state;
    pb_pipeevent_base b = {.id = "x", .time_ms = 1615824611000, .account = "123456789012",
                           .region = "us-east-1", .pipeline_arn = PARN, .exec_arn = EARN,
                           .previous = "Executing", .current = "Failed"};
    pb_buf out;
    pb_buf_init(&out, 0);
    assert_int_equal(pb_pipeevent_step(&b, "Train", "Training",
                                       "{\"TrainingJob\":{\"Arn\":\"arn:aws:sagemaker:us-east-1:123456789012:"
                                       "training-job/j\"}}",
                                       1615824193000, 1615824610000, "exit code 1: boom", &out),
                     0);
    json_t *e = parse(&out);
    assert_string_equal(str(e, "detail-type"), "SageMaker Model Building Pipeline Execution Step Status Change");
    json_t *d = json_object_get(e, "detail");
    json_t *meta = json_object_get(d, "metadata");
    assert_string_equal(str(json_object_get(meta, "trainingJob"), "arn"),
                        "arn:aws:sagemaker:us-east-1:123456789012:training-job/j");
    assert_string_equal(str(d, "stepStartTime"), "2021-03-15T16:03:13Z");
    assert_string_equal(str(d, "stepEndTime"), "2021-03-15T16:10:10Z");
    assert_string_equal(str(d, "stepName"), "Train");
    assert_string_equal(str(d, "stepType"), "Training");
    assert_string_equal(str(d, "previousStepStatus"), "Executing");
    assert_string_equal(str(d, "currentStepStatus"), "Failed");
    assert_string_equal(str(d, "failureReason"), "exit code 1: boom");
    assert_string_equal(str(d, "pipelineArn"), PARN);
    assert_string_equal(str(d, "pipelineExecutionArn"), EARN);
    json_decref(e);

    /* failureReason only with Failed; metadata {} when there is none */
    pb_buf_reset(&out);
    b.current = "Succeeded";
    assert_int_equal(pb_pipeevent_step(&b, "C", "Condition", NULL, 1, 0, "ignored", &out), 0);
    e = parse(&out);
    d = json_object_get(e, "detail");
    assert_null(json_object_get(d, "failureReason"));
    assert_null(json_object_get(d, "stepEndTime"));
    assert_true(json_is_object(json_object_get(d, "metadata")));
    assert_int_equal(json_object_size(json_object_get(d, "metadata")), 0);
    json_decref(e);
    pb_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_execution_event),
        cmocka_unit_test(test_step_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
