/*
 * test_delivery.c — src/bus/ingest.c and dispatch.c: events to committed
 * invocations to pipeline executions, with a real SQLite store, the real
 * registry, the real runner (steps are /bin/true) and real threads.
 *
 * Waiting is by pb_delivery_sync / pb_runner_sync and polling the store up
 * to a generous bound. Retries use a 10 ms backoff base so exhausting a
 * policy takes milliseconds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus/pb_delivery.h"
#include "bus/pb_metrics.h"
#include "bus/pb_registry.h"
#include "common/pb_buf.h"
#include "common/pb_uuid.h"
#include "pipeline/pb_pipearn.h"
#include "pipeline/pb_runner.h"
#include "store/pb_store.h"

#include "fixture.h"

#define WAIT_MS 20000

static const pb_scope SC = {"000000000000", "us-east-1"};

struct fx {
    char dir[64];
    pb_store *store;
    pb_registry *registry;
    pb_runner *runner;
    pb_metrics *metrics;
    pb_delivery *delivery;
};

static void outbox_hook(void *delivery) { pb_delivery_outbox_notify(delivery); }

static void start_delivery(struct fx *f)
{
    pb_delivery_config cfg = {.store = f->store, .registry = f->registry, .runner = f->runner,
                              .metrics = f->metrics, .workers = 2, .retry_base_ms = 10, .retry_cap_ms = 40};
    pb_error err;
    if (pb_delivery_create(&cfg, &f->delivery, &err))
        fail_msg("delivery: %s", err.message);
    pb_runner_set_event_hook(f->runner, outbox_hook, f->delivery);
}

static void stop_delivery(struct fx *f)
{
    pb_runner_set_event_hook(f->runner, NULL, NULL);
    pb_delivery_free(f->delivery);
    f->delivery = NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (pb_test_tmpdir(f->dir, sizeof f->dir, "pb-delivery"))
        return -1;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/pb.db", f->dir);
    pb_error err;
    if (pb_store_open(url, &f->store, &err) || pb_registry_new(&f->registry) || pb_metrics_new(&f->metrics))
        return -1;
    pb_runner_config rc = {.store = f->store, .data_dir = f->dir, .grace_ms = 200};
    if (pb_runner_create(&rc, &f->runner, &err))
        return -1;
    start_delivery(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    stop_delivery(f);
    pb_runner_free(f->runner);
    pb_metrics_free(f->metrics);
    pb_registry_free(f->registry);
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

static void sync_all(struct fx *f)
{
    for (int i = 0; i < 3; i++) {
        pb_delivery_sync(f->delivery);
        pb_runner_sync(f->runner);
    }
}

static void create_bus(struct fx *f, const char *name)
{
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:events:us-east-1:000000000000:event-bus/%s", name);
    pb_bus_rec b = {.name = (char *)name, .arn = arn, .created_ms = now_ms(), .modified_ms = now_ms()};
    assert_int_equal(f->store->ops->bus_create(f->store, &SC, &b, NULL, 0), 0);
}

static void put_rule(struct fx *f, const char *bus, const char *name, const char *pattern)
{
    char arn[160];
    snprintf(arn, sizeof arn, "arn:aws:events:us-east-1:000000000000:rule/%s/%s", bus, name);
    pb_rule_rec r = {.bus = (char *)bus, .name = (char *)name, .arn = arn, .event_pattern = (char *)pattern,
                     .state = "ENABLED", .created_by = "000000000000", .created_ms = now_ms(),
                     .modified_ms = now_ms()};
    bool created;
    assert_int_equal(f->store->ops->rule_put(f->store, &SC, &r, NULL, 0, &created), 0);
    pb_error err;
    assert_int_equal(pb_registry_set_stored_rule(f->registry, &SC, &r, &err), 0);
}

static void put_target(struct fx *f, const char *bus, const char *rule, const char *id, const char *arn,
                       const char *json)
{
    pb_target_rec t = {.id = (char *)id, .arn = (char *)arn, .json = (char *)json};
    assert_int_equal(f->store->ops->targets_put(f->store, &SC, bus, rule, &t, 1, 5), 0);
    pb_delivery_rule_changed(f->delivery, &SC, bus, rule);
}

static void create_pipeline(struct fx *f, const char *name, const char *params)
{
    char def[1024];
    snprintf(def, sizeof def,
             "{\"Version\":\"2020-12-01\",\"Parameters\":[%s],\"Steps\":[{\"Name\":\"S\",\"Type\":\"Processing\","
             "\"Arguments\":{\"AppSpecification\":{\"ImageUri\":\"x\",\"ContainerEntrypoint\":[\"/bin/true\"]}}}]}",
             params);
    char *arn = pb_pipearn_pipeline(&SC, name);
    pb_pipeline_rec p = {.name = (char *)name, .arn = arn, .role_arn = "arn:aws:iam::000000000000:role/r",
                         .definition = def, .client_token = "tok-0123456789abcdef0123456789abcdef",
                         .created_ms = now_ms(), .modified_ms = now_ms()};
    assert_int_equal(f->store->ops->pipeline_create(f->store, &SC, &p, NULL, 0), 0);
    free(arn);
}

/* Ingests one event; returns its id in out. */
static void put_event(struct fx *f, const char *bus, const char *id, const char *source, const char *detail)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"t\",\"source\":\"%s\",\"account\":\"000000000000\","
             "\"time\":\"2026-11-25T07:00:00Z\",\"region\":\"us-east-1\",\"resources\":[],\"detail\":%s}",
             id, source, detail);
    pb_delivery_event ev = {.bus = bus, .id = id, .json = json, .len = strlen(json), .ingested_ms = now_ms()};
    int status = -1;
    pb_error err;
    assert_int_equal(pb_delivery_ingest(f->delivery, &SC, &ev, 1, &status, &err), 0);
    assert_int_equal(status, 0);
}

static size_t count_execs(struct fx *f, const char *pipeline)
{
    pb_exec_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->exec_list(f->store, &SC, pipeline, &v, &n), 0);
    pb_exec_recs_free(v, n);
    return n;
}

static size_t wait_execs(struct fx *f, const char *pipeline, size_t want)
{
    size_t n = 0;
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        sync_all(f);
        if ((n = count_execs(f, pipeline)) >= want)
            return n;
        usleep(10000);
    }
    return n;
}

static size_t wait_dead(struct fx *f, pb_dead_letter_rec **out)
{
    size_t n = 0;
    bool more;
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        sync_all(f);
        assert_int_equal(f->store->ops->dead_letters_list(f->store, &SC, NULL, 0, 100, out, &n, &more), 0);
        if (n)
            return n;
        pb_dead_letter_recs_free(*out, n);
        *out = NULL;
        usleep(10000);
    }
    return 0;
}

#define PIPE_ARN(name) "arn:aws:sagemaker:us-east-1:000000000000:pipeline/" name
#define TARGET(id, arn, extra)                                                                               \
    "{\"Id\":\"" id "\",\"Arn\":\"" arn "\",\"RoleArn\":\"arn:aws:iam::000000000000:role/r\"" extra "}"

/* ------------------------------------------------------------- tests -- */

static void test_seed_story(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "train", "{\"Name\":\"InstanceType\"},{\"Name\":\"InputKey\"}");
    put_rule(f, "default", "on-upload", "{\"source\":[\"my.app\"],\"detail\":{\"object\":{\"key\":[{\"exists\":true}]}}}");
    put_target(f, "default", "on-upload", "pipe1", PIPE_ARN("train"),
               TARGET("pipe1", PIPE_ARN("train"),
                      ",\"SageMakerPipelineParameters\":{\"PipelineParameterList\":["
                      "{\"Name\":\"InstanceType\",\"Value\":\"ml.m5.xlarge\"},"
                      "{\"Name\":\"InputKey\",\"Value\":\"$.detail.object.key\"}]}"));
    put_event(f, "default", "11111111-0000-4000-8000-000000000001", "my.app", "{\"object\":{\"key\":\"data/x.csv\"}}");
    assert_int_equal(wait_execs(f, "train", 1), 1);
    pb_exec_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->exec_list(f->store, &SC, "train", &v, &n), 0);
    pb_param_rec *p = NULL;
    size_t np = 0;
    assert_int_equal(f->store->ops->params_list(f->store, &SC, v[0].arn, &p, &np), 0);
    assert_int_equal(np, 2);
    assert_string_equal(p[0].value, "ml.m5.xlarge");
    assert_string_equal(p[1].value, "data/x.csv");
    pb_param_recs_free(p, np);
    pb_exec_recs_free(v, n);

    /* an event that does not match starts nothing */
    put_event(f, "default", "11111111-0000-4000-8000-000000000002", "other.app", "{\"object\":{\"key\":\"y\"}}");
    sync_all(f);
    assert_int_equal(count_execs(f, "train"), 1);
    /* the same event delivered again (same id): still one execution */
    put_event(f, "default", "11111111-0000-4000-8000-000000000001", "my.app", "{\"object\":{\"key\":\"data/x.csv\"}}");
    sync_all(f);
    assert_int_equal(count_execs(f, "train"), 1);

    pb_buf m;
    pb_buf_init(&m, 0);
    assert_int_equal(pb_metrics_render(f->metrics, &m), 0);
    assert_non_null(strstr(m.data, "pipebridge_triggered_rules_total{account=\"000000000000\",region=\"us-east-1\","
                                   "bus=\"default\",rule=\"on-upload\"} 2"));
    assert_non_null(strstr(m.data, "pipebridge_invocations_total{account=\"000000000000\",region=\"us-east-1\","
                                   "bus=\"default\",rule=\"on-upload\"} 2"));
    pb_buf_free(&m);
}

static void test_missing_path_is_a_dead_letter(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "p", "{\"Name\":\"K\"}");
    put_rule(f, "default", "r", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "r", "t", PIPE_ARN("p"),
               TARGET("t", PIPE_ARN("p"),
                      ",\"DeadLetterConfig\":{\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"},"
                      "\"SageMakerPipelineParameters\":{\"PipelineParameterList\":[{\"Name\":\"K\",\"Value\":"
                      "\"$.detail.nothing\"}]}"));
    put_event(f, "default", "22222222-0000-4000-8000-000000000001", "my.app", "{\"a\":1}");
    pb_dead_letter_rec *dl = NULL;
    size_t n = wait_dead(f, &dl);
    assert_int_equal(n, 1);
    assert_string_equal(dl[0].error_code, "INVALID_PARAMETER");
    assert_non_null(strstr(dl[0].error_message, "$.detail.nothing"));
    assert_int_equal(dl[0].attempts, 1); /* never retried */
    assert_string_equal(dl[0].dlq_arn, "arn:aws:sqs:us-east-1:000000000000:dlq");
    assert_string_equal(dl[0].event_id, "22222222-0000-4000-8000-000000000001");
    pb_dead_letter_recs_free(dl, n);
    assert_int_equal(count_execs(f, "p"), 0);
}

static void test_missing_pipeline_retries_then_dead_letter(void **state)
{
    struct fx *f = *state;
    put_rule(f, "default", "r", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "r", "t", PIPE_ARN("absent"),
               TARGET("t", PIPE_ARN("absent"),
                      ",\"RetryPolicy\":{\"MaximumRetryAttempts\":2},"
                      "\"DeadLetterConfig\":{\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"}"));
    put_event(f, "default", "33333333-0000-4000-8000-000000000001", "my.app", "{}");
    pb_dead_letter_rec *dl = NULL;
    size_t n = wait_dead(f, &dl);
    assert_int_equal(n, 1);
    assert_string_equal(dl[0].error_code, "NO_RESOURCE");
    assert_int_equal(dl[0].attempts, 3); /* the first and two retries */
    assert_string_equal(dl[0].exhausted, "MaximumRetryAttempts");
    int64_t id = dl[0].id;
    pb_dead_letter_recs_free(dl, n);

    /* redrive after creating the pipeline: it starts */
    create_pipeline(f, "absent", "");
    size_t count = 0;
    pb_error err;
    assert_int_equal(pb_delivery_redrive(f->delivery, &SC, &id, 1, &count, &err), 0);
    assert_int_equal(count, 1);
    assert_int_equal(wait_execs(f, "absent", 1), 1);
    bool more;
    assert_int_equal(f->store->ops->dead_letters_list(f->store, &SC, NULL, 0, 100, &dl, &n, &more), 0);
    assert_int_equal(n, 0);
    pb_dead_letter_recs_free(dl, n);
}

static void test_unsupported_target_keeps_payload(void **state)
{
    struct fx *f = *state;
    put_rule(f, "default", "r", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "r", "q", "arn:aws:sqs:us-east-1:000000000000:queue",
               "{\"Id\":\"q\",\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:queue\",\"InputPath\":\"$.detail\","
               "\"DeadLetterConfig\":{\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"}}");
    put_event(f, "default", "44444444-0000-4000-8000-000000000001", "my.app", "{\"x\":[1,2]}");
    pb_dead_letter_rec *dl = NULL;
    size_t n = wait_dead(f, &dl);
    assert_int_equal(n, 1);
    assert_string_equal(dl[0].error_code, "UNSUPPORTED_TARGET");
    assert_non_null(dl[0].payload);
    assert_string_equal(dl[0].payload, "{\"x\":[1,2]}");
    pb_dead_letter_recs_free(dl, n);
}

static void test_pipeline_chaining(void **state)
{
    struct fx *f = *state;
    create_pipeline(f, "first", "");
    create_pipeline(f, "second", "{\"Name\":\"Upstream\"}");
    put_rule(f, "default", "chain",
             "{\"source\":[\"aws.sagemaker\"],\"detail-type\":[\"SageMaker Model Building Pipeline Execution "
             "Status Change\"],\"detail\":{\"currentPipelineExecutionStatus\":[\"Succeeded\"],"
             "\"pipelineArn\":[\"" PIPE_ARN("first") "\"]}}");
    put_target(f, "default", "chain", "next", PIPE_ARN("second"),
               TARGET("next", PIPE_ARN("second"),
                      ",\"SageMakerPipelineParameters\":{\"PipelineParameterList\":[{\"Name\":\"Upstream\","
                      "\"Value\":\"$.detail.pipelineExecutionArn\"}]}"));
    pb_runner_start_req req = {.scope = &SC, .pipeline = "first",
                               .client_token = "chain-0123456789abcdef0123456789abcdef", .now_ms = now_ms()};
    pb_exec_rec e;
    bool replayed;
    pb_error err;
    assert_int_equal(pb_runner_start(f->runner, &req, &e, &replayed, &err), 0);
    assert_int_equal(wait_execs(f, "second", 1), 1);
    pb_exec_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->exec_list(f->store, &SC, "second", &v, &n), 0);
    pb_param_rec *p = NULL;
    size_t np = 0;
    assert_int_equal(f->store->ops->params_list(f->store, &SC, v[0].arn, &p, &np), 0);
    assert_string_equal(p[0].value, e.arn);
    pb_param_recs_free(p, np);
    pb_exec_recs_free(v, n);
    pb_exec_rec_free(&e);
    /* the outbox has been drained */
    pb_outbox_rec *ob = NULL;
    size_t nob = 0;
    sync_all(f);
    assert_int_equal(f->store->ops->outbox_list(f->store, 0, 1000, &ob, &nob), 0);
    assert_int_equal(nob, 0);
    pb_outbox_recs_free(ob, nob);
}

static void test_event_bus_target(void **state)
{
    struct fx *f = *state;
    create_bus(f, "other");
    create_pipeline(f, "p", "");
    put_rule(f, "default", "fwd", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "fwd", "bus", "arn:aws:events:us-east-1:000000000000:event-bus/other",
               TARGET("bus", "arn:aws:events:us-east-1:000000000000:event-bus/other", ""));
    put_rule(f, "other", "run", "{\"source\":[\"my.app\"]}");
    put_target(f, "other", "run", "t", PIPE_ARN("p"), TARGET("t", PIPE_ARN("p"), ""));
    put_event(f, "default", "55555555-0000-4000-8000-000000000001", "my.app", "{}");
    assert_int_equal(wait_execs(f, "p", 1), 1);
    /* a loop between two buses ends after PB_DELIVERY_MAX_HOPS */
    put_target(f, "other", "run", "back", "arn:aws:events:us-east-1:000000000000:event-bus/default",
               TARGET("back", "arn:aws:events:us-east-1:000000000000:event-bus/default", ""));
    put_event(f, "default", "55555555-0000-4000-8000-000000000002", "my.app", "{}");
    sync_all(f);
    assert_int_equal(wait_execs(f, "p", 2), 2); /* same event id on each lap: one more execution */
}

/* The bus's presence is cached for event-bus targets; deleting the bus
 * ends that at once, and the dead letter still gets the event as payload
 * (the event is parsed there, not for the attempt). */
static void test_deleted_bus_target(void **state)
{
    struct fx *f = *state;
    create_bus(f, "gone");
    put_rule(f, "default", "fwd", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "fwd", "bus", "arn:aws:events:us-east-1:000000000000:event-bus/gone",
               TARGET("bus", "arn:aws:events:us-east-1:000000000000:event-bus/gone",
                      ",\"RetryPolicy\":{\"MaximumRetryAttempts\":0},"
                      "\"DeadLetterConfig\":{\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"}"));
    put_event(f, "default", "66666666-0000-4000-8000-000000000001", "my.app", "{}");
    sync_all(f);
    pb_dead_letter_rec *dl = NULL;
    size_t n = 0;
    bool more;
    assert_int_equal(f->store->ops->dead_letters_list(f->store, &SC, NULL, 0, 100, &dl, &n, &more), 0);
    assert_int_equal(n, 0); /* delivered: the bus exists (and is now remembered) */
    pb_dead_letter_recs_free(dl, n);

    assert_int_equal(f->store->ops->bus_delete(f->store, &SC, "gone"), 0);
    pb_delivery_bus_deleted(f->delivery, &SC, "gone");
    put_event(f, "default", "66666666-0000-4000-8000-000000000002", "my.app", "{\"k\":1}");
    n = wait_dead(f, &dl);
    assert_int_equal(n, 1);
    assert_string_equal(dl[0].error_code, "NO_RESOURCE");
    assert_non_null(dl[0].payload);
    assert_non_null(strstr(dl[0].payload, "66666666-0000-4000-8000-000000000002"));
    assert_non_null(strstr(dl[0].payload, "\"k\":1"));
    pb_dead_letter_recs_free(dl, n);
}

/* Rule changes (PutTargets, RemoveTargets, ...) while events match the
 * rule: every event still gets the rule's targets. A target cache entry
 * removed between finding it and reading it once made events match with no
 * invocation at all. */
#define RACE_THREADS 8
#define RACE_EVENTS 2000

struct race {
    struct fx *f;
    int k;
    atomic_bool *stop;
};

static void *race_churn(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(r->stop)) {
        pb_delivery_rule_changed(r->f->delivery, &SC, "default", "fwd");
        sched_yield();
    }
    return NULL;
}

/* No cmocka assertion off the main thread: failures are counted in r->k. */
static void *race_ingest(void *arg)
{
    struct race *r = arg;
    int k = r->k;
    r->k = 0;
    for (int i = 0; i < RACE_EVENTS; i++) {
        char id[64], json[512];
        snprintf(id, sizeof id, "77777777-0000-4000-8000-%04d%08d", k, i);
        snprintf(json, sizeof json,
                 "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"t\",\"source\":\"my.app\","
                 "\"account\":\"000000000000\",\"time\":\"2026-11-25T07:00:00Z\",\"region\":\"us-east-1\","
                 "\"resources\":[],\"detail\":{}}",
                 id);
        pb_delivery_event ev = {.bus = "default", .id = id, .json = json, .len = strlen(json), .ingested_ms = now_ms()};
        int status = -1;
        pb_error err;
        if (pb_delivery_ingest(r->f->delivery, &SC, &ev, 1, &status, &err) != 0 || status != 0)
            r->k++;
    }
    return NULL;
}

static double metric(struct fx *f, const char *name, const char *rule)
{
    pb_buf b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_metrics_render(f->metrics, &b), 0);
    char want[128];
    snprintf(want, sizeof want, "rule=\"%s\"}", rule);
    double v = 0;
    for (char *line = b.data; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char *brace = strchr(line, '{'), *end = strchr(line, '\n');
        if (!brace || (end && brace > end) || (size_t)(brace - line) != strlen(name) || strncmp(line, name, strlen(name)))
            continue;
        char *r = strstr(brace, want);
        if (r && (!end || r < end))
            v = strtod(r + strlen(want), NULL);
    }
    pb_buf_free(&b);
    return v;
}

static void test_targets_while_rule_changes(void **state)
{
    struct fx *f = *state;
    create_bus(f, "sink");
    put_rule(f, "default", "fwd", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "fwd", "bus", "arn:aws:events:us-east-1:000000000000:event-bus/sink",
               TARGET("bus", "arn:aws:events:us-east-1:000000000000:event-bus/sink", ""));
    atomic_bool stop = false;
    struct race churn = {f, -1, &stop}, ing[RACE_THREADS];
    pthread_t ct, it[RACE_THREADS];
    assert_int_equal(pthread_create(&ct, NULL, race_churn, &churn), 0);
    for (int k = 0; k < RACE_THREADS; k++) {
        ing[k] = (struct race){f, k, &stop};
        assert_int_equal(pthread_create(&it[k], NULL, race_ingest, &ing[k]), 0);
    }
    for (int k = 0; k < RACE_THREADS; k++) {
        pthread_join(it[k], NULL);
        assert_int_equal(ing[k].k, 0); /* ingest calls that failed */
    }
    atomic_store(&stop, true);
    pthread_join(ct, NULL);
    sync_all(f);
    assert_int_equal((int)metric(f, "pipebridge_triggered_rules_total", "fwd"), RACE_THREADS * RACE_EVENTS);
    assert_int_equal((int)metric(f, "pipebridge_invocations_total", "fwd"), RACE_THREADS * RACE_EVENTS);
    assert_int_equal((int)metric(f, "pipebridge_failed_invocations_total", "fwd"), 0);
}

static void test_pending_survive_a_restart(void **state)
{
    struct fx *f = *state;
    put_rule(f, "default", "r", "{\"source\":[\"my.app\"]}");
    put_target(f, "default", "r", "t", PIPE_ARN("later"), TARGET("t", PIPE_ARN("later"), ""));
    put_event(f, "default", "66666666-0000-4000-8000-000000000001", "my.app", "{}");
    pb_delivery_sync(f->delivery);
    stop_delivery(f);
    pb_invocation_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(f->store->ops->invocations_pending(f->store, &v, &n), 0);
    assert_int_equal(n, 1); /* still being retried: pipeline missing */
    assert_true(v[0].attempts >= 1);
    pb_invocation_recs_free(v, n);
    create_pipeline(f, "later", "");
    start_delivery(f);
    assert_int_equal(wait_execs(f, "later", 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_story, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_path_is_a_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_pipeline_retries_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_target_keeps_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_chaining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_bus_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_bus_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_while_rule_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_survive_a_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
