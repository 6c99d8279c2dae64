/*
 * test_runner.c — src/pipeline/runner*.c: executions of real definitions as
 * real processes, recorded in a real SQLite store.
 *
 * Each test gets a temporary data directory with its own store and runner.
 * Steps are /bin/sh scripts; waiting is by polling the store (with
 * pb_runner_sync between looks) up to a generous bound, never by sleeping
 * for a fixed time and hoping. Restart recovery is exercised by writing the
 * state a crashed process leaves behind (an Executing step whose process
 * still runs) and creating a runner over it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/pb_pipearn.h"
#include "pipeline/pb_proc.h"
#include "pipeline/pb_runner.h"
#include "store/pb_store.h"

#include <sqlite3.h>

#include "fixture.h"

#define WAIT_MS 20000

static const pb_scope SC = {"000000000000", "us-east-1"};

struct fx {
    char dir[64];
    pb_store *store;
    pb_runner *runner;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (pb_test_tmpdir(f->dir, sizeof f->dir, "pb-runner"))
        return -1;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/pb.db", f->dir);
    pb_error err;
    if (pb_store_open(url, &f->store, &err))
        return -1;
    pb_runner_config cfg = {.store = f->store, .data_dir = f->dir, .grace_ms = 500};
    if (pb_runner_create(&cfg, &f->runner, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pb_runner_free(f->runner);
    pb_store_close(f->store);
    pb_test_rmtree(f->dir);
    free(f);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void restart_runner(struct fx *f)
{
    pb_runner_free(f->runner);
    pb_runner_config cfg = {.store = f->store, .data_dir = f->dir, .grace_ms = 500};
    pb_error err;
    assert_int_equal(pb_runner_create(&cfg, &f->runner, &err), 0);
}

static void create_pipeline(struct fx *f, const char *name, const char *def)
{
    char *arn = pb_pipearn_pipeline(&SC, name);
    pb_pipeline_rec p = {.name = (char *)name,
                         .arn = arn,
                         .role_arn = "arn:aws:iam::000000000000:role/r",
                         .definition = (char *)def,
                         .client_token = "tok-create-0123456789abcdef0123456789",
                         .created_ms = now_ms(),
                         .modified_ms = now_ms()};
    assert_int_equal(f->store->ops->pipeline_create(f->store, &SC, &p, NULL, 0), 0);
    free(arn);
}

/* Starts an execution; returns its ARN (caller frees) or NULL with *rc. */
static char *start(struct fx *f, const char *pipeline, const char *token, const pb_pipedef_kv *kv, size_t n,
                   int *rc, pb_error *err)
{
    pb_runner_start_req req = {.scope = &SC, .pipeline = pipeline, .client_token = token, .params = kv,
                               .nparams = n, .now_ms = now_ms()};
    pb_exec_rec e;
    bool replayed;
    *rc = pb_runner_start(f->runner, &req, &e, &replayed, err);
    if (*rc)
        return NULL;
    char *arn = strdup(e.arn);
    pb_exec_rec_free(&e);
    return arn;
}

static char *start_ok(struct fx *f, const char *pipeline, const char *token, const pb_pipedef_kv *kv, size_t n)
{
    int rc;
    pb_error err;
    char *arn = start(f, pipeline, token, kv, n, &rc, &err);
    if (rc)
        fail_msg("start: %s", err.message);
    return arn;
}

static bool finished(const char *status)
{
    return !strcmp(status, "Succeeded") || !strcmp(status, "Failed") || !strcmp(status, "Stopped");
}

/* Waits until the execution has a status in `want` ("Succeeded", or "" for
 * any final one); returns the record (caller frees). */
static pb_exec_rec wait_exec(struct fx *f, const char *arn, const char *want)
{
    pb_exec_rec e = {0};
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        pb_runner_sync(f->runner);
        pb_exec_rec_free(&e);
        assert_int_equal(f->store->ops->exec_get(f->store, &SC, arn, &e), 0);
        if ((*want && !strcmp(e.status, want)) || (!*want && finished(e.status)))
            return e;
        usleep(10000);
    }
    fail_msg("execution %s stayed %s (wanted %s)", arn, e.status, want);
    return e;
}

static pb_step_rec *find_step(pb_step_rec *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return &v[i];
    return NULL;
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* A Processing step running /bin/sh -c script, with extra JSON members. */
#define PROC_STEP(name, script, extra)                                                                     \
    "{\"Name\":\"" name "\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{"              \
    "\"ImageUri\":\"local\",\"ContainerEntrypoint\":[\"/bin/sh\",\"-c\",\"" script "\"]}" extra "}}"

/* ------------------------------------------------------------- tests -- */

static const char four_steps[] =
    "{\"Version\":\"2020-12-01\",\"Parameters\":["
    "{\"Name\":\"Greeting\",\"Type\":\"String\",\"DefaultValue\":\"hello\"},"
    "{\"Name\":\"Threshold\",\"Type\":\"Integer\",\"DefaultValue\":5}],"
    "\"Steps\":["
    "{\"Name\":\"A\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ImageUri\":\"local\","
    "\"ContainerEntrypoint\":[\"/bin/sh\",\"-c\",\"echo $G-a > a.txt\"]},"
    "\"Environment\":{\"G\":{\"Get\":\"Parameters.Greeting\"}}}},"
    "{\"Name\":\"B\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ImageUri\":\"local\","
    "\"ContainerEntrypoint\":[\"/bin/sh\",\"-c\",\"echo $0-b > b.txt\"],"
    "\"ContainerArguments\":[{\"Get\":\"Parameters.Greeting\"}]}}},"
    "{\"Name\":\"Check\",\"Type\":\"Condition\",\"DependsOn\":[\"A\",\"B\"],\"Arguments\":{"
    "\"Conditions\":[{\"Type\":\"GreaterThan\",\"LeftValue\":{\"Get\":\"Parameters.Threshold\"},\"RightValue\":3}],"
    "\"IfSteps\":[" PROC_STEP("Final", "echo done > final.txt", "") "],"
    "\"ElseSteps\":[" PROC_STEP("Other", "echo other > other.txt", "") "]}}]}";

static void test_four_steps_succeed(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Four", four_steps);
    pb_pipedef_kv kv[] = {{"Greeting", 8, "bonjour", 7}};
    char *arn = start_ok(f, "Four", "token-four-0123456789abcdef0123456789", kv, 1);
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Succeeded");
    assert_null(e.failure_reason);
    assert_true(e.end_ms >= e.created_ms);

    /* the condition step's events: Executing without an end time, then
     * Succeeded with one (§3.2) */
    pb_outbox_rec *ob = NULL;
    size_t nob = 0;
    assert_int_equal(f->store->ops->outbox_list(f->store, 0, 1000, &ob, &nob), 0);
    int seen = 0;
    for (size_t i = 0; i < nob; i++) {
        const char *j = ob[i].event_json;
        if (!strstr(j, "\"stepName\":\"Check\""))
            continue;
        if (strstr(j, "\"currentStepStatus\":\"Executing\"")) {
            assert_null(strstr(j, "stepEndTime"));
            seen++;
        } else if (strstr(j, "\"currentStepStatus\":\"Succeeded\"")) {
            assert_non_null(strstr(j, "stepEndTime"));
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    pb_outbox_recs_free(ob, nob);

    pb_step_rec *steps = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    assert_int_equal(n, 4); /* Other (the branch not taken) never ran */
    assert_null(find_step(steps, n, "Other"));
    const char *names[] = {"A", "B", "Check", "Final"};
    for (size_t i = 0; i < 4; i++) {
        pb_step_rec *s = find_step(steps, n, names[i]);
        assert_non_null(s);
        assert_string_equal(s->status, "Succeeded");
        assert_int_equal(s->attempt_count, 1);
    }
    pb_step_rec *check = find_step(steps, n, "Check");
    assert_non_null(strstr(check->metadata_json, "\"Outcome\":\"True\""));
    pb_step_rec *a = find_step(steps, n, "A");
    assert_non_null(strstr(a->metadata_json, "\"ProcessingJob\""));
    assert_non_null(a->stdout_path);
    assert_int_equal(a->pid, 0);

    char path[256];
    snprintf(path, sizeof path, "%s/executions/%s/A/a.txt", f->dir, e.id);
    char *text = read_file(path);
    assert_non_null(text);
    assert_string_equal(text, "bonjour-a\n");
    free(text);
    snprintf(path, sizeof path, "%s/executions/%s/B/b.txt", f->dir, e.id);
    text = read_file(path);
    assert_non_null(text);
    assert_string_equal(text, "bonjour-b\n");
    free(text);

    /* effective parameters: the given one and the default */
    pb_param_rec *params = NULL;
    size_t np = 0;
    assert_int_equal(f->store->ops->params_list(f->store, &SC, arn, &params, &np), 0);
    assert_int_equal(np, 2);
    assert_string_equal(params[0].name, "Greeting");
    assert_string_equal(params[0].value, "bonjour");
    assert_string_equal(params[1].name, "Threshold");
    assert_string_equal(params[1].value, "5");
    pb_param_recs_free(params, np);

    /* status-change events: the execution's first and last, and every step's */
    pb_outbox_rec *ev = NULL;
    size_t nev = 0;
    assert_int_equal(f->store->ops->outbox_list(f->store, 0, 1000, &ev, &nev), 0);
    assert_true(nev >= 2 + 4 * 2);
    assert_non_null(strstr(ev[0].event_json, "\"currentPipelineExecutionStatus\":\"Executing\""));
    assert_null(strstr(ev[0].event_json, "previousPipelineExecutionStatus"));
    assert_non_null(strstr(ev[nev - 1].event_json, "\"currentPipelineExecutionStatus\":\"Succeeded\""));
    assert_non_null(strstr(ev[nev - 1].event_json, "\"previousPipelineExecutionStatus\":\"Executing\""));
    assert_non_null(strstr(ev[nev - 1].event_json, "\"executionEndTime\""));
    size_t step_events = 0;
    for (size_t i = 0; i < nev; i++) {
        assert_non_null(strstr(ev[i].event_json, "\"source\":\"aws.sagemaker\""));
        assert_string_equal(ev[i].bus, "default");
        if (strstr(ev[i].event_json, "Execution Step Status Change"))
            step_events++;
    }
    assert_true(step_events >= 8);
    pb_outbox_recs_free(ev, nev);
    pb_step_recs_free(steps, n);
    pb_exec_rec_free(&e);
    free(arn);
}

static void test_failing_step(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Failing",
                    "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP(
                        "Bad", "echo working; echo 'something broke' >&2; exit 3", "") "," PROC_STEP("After",
                                                                                                      "true",
                                                                                                      ",\"x\":1")
                    "]}");
    /* "After" has an unknown member inside Arguments: passed through */
    char *arn = start_ok(f, "failing", "token-fail-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    assert_string_equal(e.failure_reason, "Step failure: One or multiple steps failed.");
    pb_step_rec *steps = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    pb_step_rec *bad = find_step(steps, n, "Bad");
    assert_non_null(bad);
    assert_string_equal(bad->status, "Failed");
    assert_string_equal(bad->failure_reason, "exit code 3: something broke");
    pb_step_recs_free(steps, n);
    pb_exec_rec_free(&e);
    free(arn);
}

static void test_stop(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Sleepy",
                    "{\"Version\":\"2020-12-01\",\"Steps\":["
                    /* ignores SIGTERM (so does its sleep): ends only by the SIGKILL after the grace period */
                    PROC_STEP("Nap", "trap '' TERM; touch armed; while :; do sleep 0.1; done", "") ","
                    "{\"Name\":\"Later\",\"Type\":\"Processing\",\"DependsOn\":[\"Nap\"],\"Arguments\":{"
                    "\"AppSpecification\":{\"ImageUri\":\"local\",\"ContainerEntrypoint\":[\"true\"]}}}]}");
    char *arn = start_ok(f, "Sleepy", "token-stop-0123456789abcdef0123456789", NULL, 0);
    pb_runner_sync(f->runner);
    /* the shell has set its trap: a SIGTERM before that would end it at once */
    char armed[512];
    snprintf(armed, sizeof armed, "%s/executions/%s/Nap/armed", f->dir, strrchr(arn, '/') + 1);
    struct stat st;
    for (int waited = 0; waited < WAIT_MS && stat(armed, &st) != 0; waited += 10)
        usleep(10000);
    assert_int_equal(stat(armed, &st), 0);
    pb_error err;
    assert_int_equal(pb_runner_stop(f->runner, &SC, arn, now_ms(), &err), 0);
    /* stopping twice is accepted */
    assert_int_equal(pb_runner_stop(f->runner, &SC, arn, now_ms(), &err), 0);
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Stopped");
    /* a finished execution cannot be stopped */
    assert_int_equal(pb_runner_stop(f->runner, &SC, arn, now_ms(), &err), PB_ESM_CONFLICT);
    /* nor retried: only Failed ones can */
    assert_int_equal(pb_runner_retry(f->runner, &SC, arn, 0, now_ms(), &err), PB_ESM_CONFLICT);
    pb_step_rec *steps = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].status, "Stopped");
    pb_step_recs_free(steps, n);
    pb_exec_rec_free(&e);
    free(arn);
    assert_int_equal(pb_runner_stop(f->runner, &SC, "arn:aws:sagemaker:us-east-1:000000000000:pipeline/x/execution/y",
                                    now_ms(), &err),
                     PB_ESM_NOTFOUND);
}

static void test_fail_step_and_retry(void **state)
{
    struct fx *f = *state;
    char flag[128];
    snprintf(flag, sizeof flag, "%s/flag", f->dir);
    char def[2048];
    /* First appends to a counter file; Second fails until the flag exists */
    snprintf(def, sizeof def,
             "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP("First", "echo x >> %s/count", "") ","
             "{\"Name\":\"Second\",\"Type\":\"Processing\",\"DependsOn\":[\"First\"],\"Arguments\":{"
             "\"AppSpecification\":{\"ImageUri\":\"local\",\"ContainerEntrypoint\":[\"/bin/sh\",\"-c\","
             "\"test -f %s || { echo no flag >&2; exit 1; }\"]}}}]}",
             f->dir, flag);
    create_pipeline(f, "Retry", def);
    char *arn = start_ok(f, "Retry", "token-retry-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    pb_exec_rec_free(&e);
    FILE *fp = fopen(flag, "w");
    fclose(fp);
    pb_error err;
    assert_int_equal(pb_runner_retry(f->runner, &SC, arn, 0, now_ms(), &err), 0);
    e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Succeeded");
    assert_null(e.failure_reason);
    pb_exec_rec_free(&e);
    char path[128];
    snprintf(path, sizeof path, "%s/count", f->dir);
    char *count = read_file(path);
    assert_string_equal(count, "x\n"); /* First succeeded before: not run again */
    free(count);
    free(arn);

    /* a Fail step: the execution fails with its message and cannot be retried */
    create_pipeline(f, "Failer",
                    "{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"Why\",\"DefaultValue\":\"bad\"}],"
                    "\"Steps\":[{\"Name\":\"Stop\",\"Type\":\"Fail\",\"Arguments\":{\"ErrorMessage\":"
                    "{\"Std:Join\":{\"On\":\" \",\"Values\":[\"quality\",{\"Get\":\"Parameters.Why\"}]}}}}]}");
    arn = start_ok(f, "Failer", "token-failer-0123456789abcdef0123456789", NULL, 0);
    e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    assert_string_equal(e.failure_reason, "quality bad");
    assert_true(e.fail_step);
    assert_int_equal(pb_runner_retry(f->runner, &SC, arn, 0, now_ms(), &err), PB_ESM_CONFLICT);
    assert_non_null(strstr(err.message, "Fail step"));
    pb_exec_rec_free(&e);
    free(arn);
}

static void test_parameters_and_tokens(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Params", four_steps);
    pb_error err;
    int rc;
    pb_pipedef_kv unknown[] = {{"Nope", 4, "x", 1}};
    assert_null(start(f, "Params", "token-p1-0123456789abcdef0123456789", unknown, 1, &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
    assert_string_equal(err.message, "Unknown parameter 'Nope'");
    pb_pipedef_kv wrong[] = {{"Threshold", 9, "abc", 3}};
    assert_null(start(f, "Params", "token-p2-0123456789abcdef0123456789", wrong, 1, &rc, &err));
    assert_int_equal(rc, PB_EVALIDATION);
    assert_non_null(strstr(err.message, "Expected Integer"));
    assert_null(start(f, "Missing", "token-p3-0123456789abcdef0123456789", NULL, 0, &rc, &err));
    assert_int_equal(rc, PB_ESM_NOTFOUND);
    assert_string_equal(err.message, "Pipeline 'arn:aws:sagemaker:us-east-1:000000000000:pipeline/missing' does not exist.");
    pb_exec_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->exec_list(f->store, &SC, "Params", &v, &n), 0);
    assert_int_equal(n, 0); /* nothing was created */

    /* the same token twice: one execution */
    pb_runner_start_req req = {.scope = &SC, .pipeline = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/params",
                               .client_token = "token-same-0123456789abcdef0123456789", .now_ms = now_ms()};
    pb_exec_rec e1, e2;
    bool replayed;
    assert_int_equal(pb_runner_start(f->runner, &req, &e1, &replayed, &err), 0);
    assert_false(replayed);
    assert_int_equal(pb_runner_start(f->runner, &req, &e2, &replayed, &err), 0);
    assert_true(replayed);
    assert_string_equal(e1.arn, e2.arn);
    assert_int_equal(f->store->ops->exec_list(f->store, &SC, "Params", &v, &n), 0);
    assert_int_equal(n, 1);
    pb_exec_recs_free(v, n);
    pb_exec_rec w = wait_exec(f, e1.arn, "Succeeded");
    pb_exec_rec_free(&w);
    pb_exec_rec_free(&e1);
    pb_exec_rec_free(&e2);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Slow", "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP(
                                   "Slow", "sleep 30", ",\"StoppingCondition\":{\"MaxRuntimeInSeconds\":1}") "]}");
    char *arn = start_ok(f, "Slow", "token-slow-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    pb_step_rec *steps = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    assert_string_equal(steps[0].failure_reason, "timed out after 1 s");
    pb_step_recs_free(steps, n);
    pb_exec_rec_free(&e);
    free(arn);
}

static void test_property_file(void **state)
{
    struct fx *f = *state;
    create_pipeline(
        f, "Props",
        "{\"Version\":\"2020-12-01\",\"Steps\":["
        "{\"Name\":\"Eval\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ImageUri\":\"local\","
        "\"ContainerEntrypoint\":[\"/bin/sh\",\"-c\",\"echo '{\\\"mse\\\": 4.5}' > out/eval/report.json\"]},"
        "\"ProcessingOutputConfig\":{\"Outputs\":[{\"OutputName\":\"evaluation\",\"S3Output\":{\"S3Uri\":\"s3://b/k\","
        "\"LocalPath\":\"/out/eval\",\"S3UploadMode\":\"EndOfJob\"}}]}},"
        "\"PropertyFiles\":[{\"PropertyFileName\":\"Report\",\"OutputName\":\"evaluation\",\"FilePath\":\"report.json\"}]},"
        "{\"Name\":\"Gate\",\"Type\":\"Condition\",\"Arguments\":{\"Conditions\":[{\"Type\":\"LessThanOrEqualTo\","
        "\"LeftValue\":{\"Std:JsonGet\":{\"PropertyFile\":{\"Get\":\"Steps.Eval.PropertyFiles.Report\"},\"Path\":\"mse\"}},"
        "\"RightValue\":6.0}],\"IfSteps\":[" PROC_STEP("Use", "echo $0 > uri.txt",
                                                     ",\"x\":{\"Get\":\"Steps.Eval.ProcessingJobName\"}") "],"
        "\"ElseSteps\":[{\"Name\":\"TooHigh\",\"Type\":\"Fail\",\"Arguments\":{\"ErrorMessage\":\"mse too high\"}}]}}]}");
    char *arn = start_ok(f, "Props", "token-props-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "");
    if (strcmp(e.status, "Succeeded")) {
        pb_step_rec *steps = NULL;
        size_t n = 0;
        f->store->ops->steps_list(f->store, &SC, arn, &steps, &n);
        for (size_t i = 0; i < n; i++)
            print_message("%s %s %s\n", steps[i].name, steps[i].status,
                          steps[i].failure_reason ? steps[i].failure_reason : "");
        fail_msg("execution %s", e.status);
    }
    pb_exec_rec_free(&e);
    free(arn);
}

static void test_concurrency_queue(void **state)
{
    struct fx *f = *state;
    char def[1024];
    snprintf(def, sizeof def,
             "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP(
                 "One", "n=$(ls %s/running 2>/dev/null | wc -l); echo $n >> %s/max; touch %s/running/$$; sleep 0.2; "
                        "rm %s/running/$$",
                 "") "]}",
             f->dir, f->dir, f->dir, f->dir);
    char running[128];
    snprintf(running, sizeof running, "%s/running", f->dir);
    mkdir(running, 0755);
    create_pipeline(f, "Limited", def);
    char *parn = pb_pipearn_pipeline(&SC, "Limited");
    pb_tag tag = {PB_RUNNER_CONCURRENCY_TAG, "1"};
    assert_int_equal(f->store->ops->tags_set(f->store, parn, &tag, 1, 50), 0);
    free(parn);
    char *arns[3];
    for (int i = 0; i < 3; i++) {
        char token[64];
        snprintf(token, sizeof token, "token-limited-%d-0123456789abcdef0123456789", i);
        arns[i] = start_ok(f, "Limited", token, NULL, 0);
    }
    pb_exec_rec e1;
    assert_int_equal(f->store->ops->exec_get(f->store, &SC, arns[2], &e1), 0);
    assert_string_equal(e1.status, "Queued");
    pb_exec_rec_free(&e1);
    int64_t prev_end = 0;
    for (int i = 0; i < 3; i++) {
        pb_exec_rec e = wait_exec(f, arns[i], "");
        assert_string_equal(e.status, "Succeeded");
        assert_true(e.end_ms >= prev_end); /* first in, first out */
        prev_end = e.end_ms;
        pb_exec_rec_free(&e);
        free(arns[i]);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/max", f->dir);
    char *max = read_file(path);
    assert_string_equal(max, "0\n0\n0\n"); /* never two at once */
    free(max);
}

/* Starts pipeline `name` (one long step) and leaves what a kill -9 leaves:
 * the execution and its step Executing in the store, the step's process
 * group alive (an orphan of ours, *child), and no runner. Returns the ARN. */
static char *crash_with_a_running_step(struct fx *f, const char *name, const char *token, pid_t *child)
{
    create_pipeline(f, name, "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP("Long", "sleep 30", "") "]}");
    char *arn = start_ok(f, name, token, NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "Executing");
    pb_exec_rec_free(&e);
    /* what a kill -9 leaves: the step Executing in the store with a live
     * process of its own group. Simulate it with an orphan of ours. */
    *child = fork();
    if (*child == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    setpgid(*child, *child);
    int64_t ticks = -1;
    for (int i = 0; i < 100 && ticks < 0; i++, usleep(10000))
        ticks = pb_proc_start_ticks(*child);
    assert_true(ticks >= 0);
    pb_step_rec *steps = NULL;
    size_t n = 0;
    for (int waited = 0; waited < WAIT_MS && n == 0; waited += 10, usleep(10000)) {
        pb_runner_sync(f->runner);
        assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
        if (n == 0)
            pb_step_recs_free(steps, n);
    }
    assert_int_equal(n, 1);
    /* stop the real runner the hard way: the store keeps "Executing" */
    pb_step_rec crashed = steps[0];
    crashed.pid = *child;
    crashed.pid_start = ticks;
    assert_int_equal(f->store->ops->exec_change(f->store, &SC, arn, NULL, &crashed, 1, NULL, 0, NULL, 0), 0);
    /* a runner over that state: the shut-down path would record its own
     * failure, so stop this one without it seeing the execution: detach by
     * recreating the store state after freeing */
    pb_runner_free(f->runner);
    f->runner = NULL;
    pb_exec_rec cur;
    assert_int_equal(f->store->ops->exec_get(f->store, &SC, arn, &cur), 0);
    free(cur.status);
    cur.status = strdup("Executing");
    free(cur.failure_reason);
    cur.failure_reason = NULL;
    cur.end_ms = 0;
    assert_int_equal(f->store->ops->exec_change(f->store, &SC, arn, &cur, &crashed, 1, NULL, 0, NULL, 0), 0);
    pb_exec_rec_free(&cur);
    pb_step_recs_free(steps, n); /* crashed borrowed its strings */
    return arn;
}

/* After the restart: the execution Failed, its step Failed "restarted",
 * the leftover process killed. */
static void check_recovered(struct fx *f, const char *arn, pid_t child)
{
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    pb_exec_rec_free(&e);
    pb_step_rec *steps = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].status, "Failed");
    assert_non_null(strstr(steps[0].failure_reason, "restarted"));
    assert_int_equal(steps[0].pid, 0);
    pb_step_recs_free(steps, n);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_restart_recovery(void **state)
{
    struct fx *f = *state;
    pid_t child;
    char *arn = crash_with_a_running_step(f, "Crash", "token-crash-0123456789abcdef0123456789", &child);
    restart_runner(f);
    check_recovered(f, arn, child);
    free(arn);
}

/* The same when the interrupted execution cannot be loaded again (here its
 * stored definition names a step type this version refuses): the leftover
 * process is still killed and the step recorded Failed. */
static void test_restart_recovery_unloadable(void **state)
{
    struct fx *f = *state;
    pid_t child;
    char *arn = crash_with_a_running_step(f, "Broken", "token-broken-0123456789abcdef0123456789", &child);
    char path[256];
    snprintf(path, sizeof path, "%s/pb.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE pipeline_versions SET definition = '{\"Version\":\"2020-12-01\","
                                  "\"Steps\":[{\"Name\":\"Long\",\"Type\":\"Lambda\",\"Arguments\":{}}]}'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    restart_runner(f);
    check_recovered(f, arn, child);
    pb_exec_rec e;
    assert_int_equal(f->store->ops->exec_get(f->store, &SC, arn, &e), 0);
    assert_non_null(strstr(e.failure_reason, "Lambda"));
    pb_exec_rec_free(&e);
    free(arn);
}

/* A running execution's definition can become the oldest idle entry of the
 * definition cache while it runs; freeing the run must not read the
 * definition after releasing it (ASan caught this; the run ends here). */
static void test_definition_evicted_while_running(void **state)
{
    struct fx *f = *state;
    static const char def[] = "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP("Long", "sleep 0.5", "") "]}";
    create_pipeline(f, "Long", def);
    char *arn = start_ok(f, "Long", "token-evict-0123456789abcdef0123456789", NULL, 0);
    pb_runner_sync(f->runner);
    pb_error err;
    for (int i = 0; i < 70; i++) { /* more than the cache keeps idle */
        char other[96];
        snprintf(other, sizeof other, "arn:aws:sagemaker:us-east-1:000000000000:pipeline/other-%d", i);
        const pb_pipedef *d = NULL;
        assert_int_equal(pb_runner_definition(f->runner, other, 1, def, &d, &err), 0);
        pb_runner_definition_release(f->runner, d);
    }
    pb_exec_rec e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Succeeded");
    pb_exec_rec_free(&e);
    free(arn);
}

/* The store refuses the commit that ends an execution (a full disk, a lock
 * held too long): the runner keeps the run and tries again, so the
 * execution does not stay "Executing" with nobody to end it. */
static const struct pb_store_ops *real_ops;
static int refuse_end; /* how many more end-of-execution commits to refuse */

static int refusing_exec_change(pb_store *s, const pb_scope *sc, const char *arn, const pb_exec_rec *e,
                                const pb_step_rec *steps, size_t nsteps, const int64_t *reset, size_t nreset,
                                const pb_outbox_event *ev, size_t nev)
{
    if (e && e->status && !strcmp(e->status, "Succeeded") && refuse_end > 0) {
        refuse_end--;
        return PB_EIO;
    }
    return real_ops->exec_change(s, sc, arn, e, steps, nsteps, reset, nreset, ev, nev);
}

static void test_end_refused_by_the_store_is_retried(void **state)
{
    struct fx *f = *state;
    static struct pb_store_ops ops;
    real_ops = f->store->ops;
    ops = *real_ops;
    ops.exec_change = refusing_exec_change;
    f->store->ops = &ops;
    refuse_end = 3;
    create_pipeline(f, "Ends", "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP("Quick", "true", "") "]}");
    char *arn = start_ok(f, "Ends", "token-ends-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "Succeeded");
    assert_int_equal(refuse_end, 0); /* refused three times, then recorded */
    pb_exec_rec_free(&e);
    f->store->ops = real_ops;
    free(arn);
}

static void test_shutdown_fails_running(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "Down", "{\"Version\":\"2020-12-01\",\"Steps\":[" PROC_STEP("Long", "sleep 30", "") "]}");
    char *arn = start_ok(f, "Down", "token-down-0123456789abcdef0123456789", NULL, 0);
    pb_exec_rec e = wait_exec(f, arn, "Executing");
    pb_exec_rec_free(&e);
    pb_step_rec *steps = NULL;
    size_t n = 0;
    for (int waited = 0; waited < WAIT_MS && n == 0; waited += 10, usleep(10000)) {
        pb_runner_sync(f->runner);
        assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
        if (n == 0)
            pb_step_recs_free(steps, n);
    }
    pb_step_recs_free(steps, n);
    restart_runner(f); /* graceful: the step is stopped and recorded Failed */
    e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Failed");
    pb_exec_rec_free(&e);
    assert_int_equal(f->store->ops->steps_list(f->store, &SC, arn, &steps, &n), 0);
    assert_non_null(strstr(steps[0].failure_reason, "shut down"));
    pb_step_recs_free(steps, n);
    pb_error err;
    assert_int_equal(pb_runner_retry(f->runner, &SC, arn, 0, now_ms(), &err), 0);
    assert_int_equal(pb_runner_stop(f->runner, &SC, arn, now_ms(), &err), 0);
    e = wait_exec(f, arn, "");
    assert_string_equal(e.status, "Stopped");
    pb_exec_rec_free(&e);
    free(arn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_steps_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_step_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_property_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_recovery_unloadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definition_evicted_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_refused_by_the_store_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_fails_running, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
