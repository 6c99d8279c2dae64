/*
 * test_store_pipelines.c — the SageMaker part of the store
 * (src/store/sqlite_pipelines.c, migration 3).
 *
 * Covers: pipelines created, read (latest and older versions), updated
 * (fields kept when not given, the definition copied when not given, a new
 * version each time), listed by name and deleted (refused while an execution
 * is Queued, Executing or Stopping; cascading to versions, executions, steps,
 * parameters and tags otherwise); names and execution ARNs compared without
 * regard to case, within the caller's scope only; executions created with
 * their parameters (in order) and outbox events, ClientRequestToken replays
 * answered with the first execution (also when two stores race), nothing
 * written when the pipeline is gone; executions listed newest first and
 * unfinished ones oldest first even within one millisecond; exec_change
 * (step upserts and resets, fields replaced, events in the outbox in order,
 * all or nothing); the outbox paged by seq; everything found again after
 * re-opening the file and after SIGKILL right after an acknowledged write;
 * a database with only migrations 1 and 2 brought to version 3 with its data.
 *
 * Every test works in its own directory made by mkdtemp under /tmp and
 * removes it afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/pb_error.h"
#include "store/pb_store.h"
#include "store/store_internal.h"

#include <sqlite3.h>

#include "fixture.h"

static const pb_scope SC = {"123456789012", "us-east-1"};
static const pb_scope SC_REGION = {"123456789012", "eu-west-1"};
static const pb_scope SC_ACCOUNT = {"210987654321", "us-east-1"};

#define DEF1 "{\"Version\":\"2020-12-01\",\"Steps\":[]}"
#define DEF2 "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"a\"}]}"

/* ------------------------------------------------------------ fixture -- */

typedef pb_test_store_fx fx;

static int setup(void **state) { return pb_test_store_setup(state, "pb-pipestore"); }
static int teardown(void **state) { return pb_test_store_teardown(state); }

/* ------------------------------------------------------------ helpers -- */

/* arn:aws:sagemaker:REGION:ACCOUNT:pipeline/name-in-lowercase */
static char *pipe_arn(const pb_scope *sc, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "arn:aws:sagemaker:%s:%s:pipeline/", sc->region, sc->account);
    for (size_t i = 0; name[i] && (size_t)n + 1 < len; i++, n++)
        buf[n] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    buf[n] = '\0';
    return buf;
}

static char *exec_arn(const pb_scope *sc, const char *pipeline, const char *id, char *buf, size_t len)
{
    char p[256];
    int n = snprintf(buf, len, "%s/execution/%s", pipe_arn(sc, pipeline, p, sizeof p), id);
    assert_true(n > 0 && (size_t)n < len);
    return buf;
}

static int mk_pipeline(pb_store *s, const pb_scope *sc, const char *name, const char *def)
{
    char arn[256];
    pb_pipeline_rec p = {.name = (char *)name,
                         .arn = pipe_arn(sc, name, arn, sizeof arn),
                         .role_arn = "arn:aws:iam::123456789012:role/r",
                         .definition = (char *)def,
                         .created_ms = 1000,
                         .modified_ms = 1000};
    return s->ops->pipeline_create(s, sc, &p, NULL, 0);
}

/* An execution of pipeline with id and token, created at ms. */
static pb_exec_rec exec_rec(const pb_scope *sc, const char *pipeline, const char *id, const char *token,
                            const char *status, int64_t ms, char *arn, char *parn, size_t len)
{
    return (pb_exec_rec){.id = (char *)id,
                         .arn = exec_arn(sc, pipeline, id, arn, len),
                         .pipeline_name = (char *)pipeline,
                         .pipeline_arn = pipe_arn(sc, pipeline, parn, len),
                         .version_id = 1,
                         .display_name = "execution-1",
                         .status = (char *)status,
                         .client_token = (char *)token,
                         .created_ms = ms,
                         .modified_ms = ms};
}

static int mk_exec(pb_store *s, const pb_scope *sc, const char *pipeline, const char *id, const char *token,
                   const char *status, int64_t ms)
{
    char arn[256], parn[256];
    pb_exec_rec e = exec_rec(sc, pipeline, id, token, status, ms, arn, parn, sizeof arn);
    return s->ops->exec_create(s, sc, &e, NULL, 0, NULL, 0, NULL);
}

/* Joins the ids of executions with ',' into buf. */
static const char *exec_ids(const pb_exec_rec *v, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].id, len - strlen(buf) - 1);
    }
    return buf;
}

static const char *list_execs(pb_store *s, const pb_scope *sc, const char *pipeline, char *buf, size_t len)
{
    pb_exec_rec *v = (pb_exec_rec *)1;
    size_t n = 99;
    assert_int_equal(s->ops->exec_list(s, sc, pipeline, &v, &n), 0);
    if (n == 0)
        assert_null(v);
    exec_ids(v, n, buf, len);
    pb_exec_recs_free(v, n);
    return buf;
}

/* "account/region/id" of each unfinished execution, joined with ','. */
static const char *list_unfinished(pb_store *s, char *buf, size_t len)
{
    pb_exec_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->exec_unfinished(s, &v, &n), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s%s/%s/%s", i ? "," : "", v[i].account, v[i].region, v[i].exec.id);
        strncat(buf, one, len - strlen(buf) - 1);
    }
    pb_exec_entries_free(v, n);
    return buf;
}

/* "index:name:status" of each step record, joined with ','. */
static const char *list_steps(pb_store *s, const pb_scope *sc, const char *arn, char *buf, size_t len)
{
    pb_step_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->steps_list(s, sc, arn, &v, &n), 0);
    if (n == 0)
        assert_null(v);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s%lld:%s:%s", i ? "," : "", (long long)v[i].index, v[i].name, v[i].status);
        strncat(buf, one, len - strlen(buf) - 1);
    }
    pb_step_recs_free(v, n);
    return buf;
}

static const char *list_params(pb_store *s, const pb_scope *sc, const char *arn, char *buf, size_t len)
{
    pb_param_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->params_list(s, sc, arn, &v, &n), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].name, len - strlen(buf) - 1);
        strncat(buf, "=", len - strlen(buf) - 1);
        strncat(buf, v[i].value, len - strlen(buf) - 1);
    }
    pb_param_recs_free(v, n);
    return buf;
}

/* "bus:json" of the outbox events with seq > after, joined with ','; the
 * seqs must increase. */
static const char *list_outbox(pb_store *s, int64_t after, char *buf, size_t len)
{
    pb_outbox_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->outbox_list(s, after, 1000, &v, &n), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i].seq > (i ? v[i - 1].seq : after));
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].bus, len - strlen(buf) - 1);
        strncat(buf, ":", len - strlen(buf) - 1);
        strncat(buf, v[i].event_json, len - strlen(buf) - 1);
    }
    pb_outbox_recs_free(v, n);
    return buf;
}

static const char *list_tags(pb_store *s, const char *arn, char *buf, size_t len)
{
    pb_tag *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->tags_list(s, arn, &v, &n), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].key, len - strlen(buf) - 1);
        strncat(buf, "=", len - strlen(buf) - 1);
        strncat(buf, v[i].value, len - strlen(buf) - 1);
    }
    pb_tags_free(v, n);
    return buf;
}

static pb_step_rec step(int64_t index, const char *name, const char *status, int64_t start_ms)
{
    return (pb_step_rec){.index = index,
                         .name = (char *)name,
                         .type = "Processing",
                         .status = (char *)status,
                         .start_ms = start_ms,
                         .attempt_count = 1};
}

/* ---------------------------------------------------------- pipelines -- */

static void test_pipeline_create_get(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], buf[256];
    pb_tag tags[] = {{"team", "ml"}, {"env", "dev"}};
    pb_pipeline_rec p = {.name = "MyPipe",
                         .arn = pipe_arn(&SC, "MyPipe", arn, sizeof arn),
                         .display_name = "My pipe",
                         .description = "does things",
                         .role_arn = "arn:aws:iam::123456789012:role/r",
                         .definition = DEF1,
                         .version_id = 7, /* ignored: a new pipeline is version 1 */
                         .max_parallel = 3,
                         .client_token = "tok",
                         .created_ms = 1000,
                         .modified_ms = 1001};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &p, tags, 2), 0);

    pb_pipeline_rec got;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "MyPipe", 0, &got), 0);
    assert_string_equal(got.name, "MyPipe");
    assert_string_equal(got.arn, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mypipe");
    assert_string_equal(got.display_name, "My pipe");
    assert_string_equal(got.description, "does things");
    assert_string_equal(got.role_arn, "arn:aws:iam::123456789012:role/r");
    assert_string_equal(got.definition, DEF1);
    assert_string_equal(got.client_token, "tok");
    assert_int_equal(got.version_id, 1);
    assert_int_equal(got.max_parallel, 3);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.modified_ms, 1001);
    assert_int_equal(got.last_run_ms, 0);
    pb_pipeline_rec_free(&got);
    assert_null(got.name);

    /* any case finds it; version 1 explicitly; others do not exist */
    assert_int_equal(s->ops->pipeline_get(s, &SC, "MYPIPE", 1, &got), 0);
    assert_string_equal(got.name, "MyPipe");
    assert_int_equal(got.version_id, 1);
    pb_pipeline_rec_free(&got);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "mypipe", 2, &got), PB_ENOTFOUND);
    assert_null(got.name);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "mypipe", -1, &got), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "other", 0, &got), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_get(s, &SC_REGION, "MyPipe", 0, &got), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_get(s, &SC_ACCOUNT, "MyPipe", 0, &got), PB_ENOTFOUND);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "env=dev,team=ml");

    /* the name is taken whatever its case; the failed create changes nothing */
    pb_tag other = {"x", "y"};
    p.name = "mYpIpE";
    p.definition = DEF2;
    assert_int_equal(s->ops->pipeline_create(s, &SC, &p, &other, 1), PB_EEXISTS);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "mypipe", 0, &got), 0);
    assert_string_equal(got.name, "MyPipe");
    assert_string_equal(got.definition, DEF1);
    pb_pipeline_rec_free(&got);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "env=dev,team=ml");
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM pipeline_versions"), 1);

    /* the same name in another region or account is another pipeline */
    assert_int_equal(mk_pipeline(s, &SC_REGION, "MyPipe", DEF2), 0);
    assert_int_equal(mk_pipeline(s, &SC_ACCOUNT, "MyPipe", DEF2), 0);

    /* optional members may be NULL; required ones may not */
    pb_pipeline_rec bare = {.name = "bare", .arn = "arn:bare", .role_arn = "r", .definition = DEF1};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &bare, NULL, 0), 0);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "bare", 0, &got), 0);
    assert_null(got.display_name);
    assert_null(got.description);
    assert_null(got.client_token);
    assert_int_equal(got.max_parallel, 0);
    pb_pipeline_rec_free(&got);
    pb_pipeline_rec nodef = {.name = "nodef", .arn = "arn:nodef", .role_arn = "r"};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &nodef, NULL, 0), PB_EVALIDATION);
    pb_pipeline_rec norole = {.name = "norole", .arn = "arn:norole", .definition = DEF1};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &norole, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_create(s, NULL, &bare, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_create(s, &SC, NULL, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_create(s, &SC, &bare, NULL, 1), PB_EVALIDATION);
    /* a bad tag rolls the whole create back */
    pb_tag badtag = {"k", NULL};
    pb_pipeline_rec tagged = {.name = "tagged", .arn = "arn:tagged", .role_arn = "r", .definition = DEF1};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &tagged, &badtag, 1), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "tagged", 0, &got), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM pipeline_versions WHERE name_key = 'tagged'"), 0);
    assert_int_equal(s->ops->pipeline_get(s, &SC, NULL, 0, &got), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "x", 0, NULL), PB_EVALIDATION);
}

static void test_pipeline_update_versions(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256];
    pb_pipeline_rec p = {.name = "Flow",
                         .arn = pipe_arn(&SC, "Flow", arn, sizeof arn),
                         .display_name = "d1",
                         .description = "desc1",
                         .role_arn = "role1",
                         .definition = DEF1,
                         .max_parallel = 2,
                         .client_token = "tok",
                         .created_ms = 1000,
                         .modified_ms = 1000};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &p, NULL, 0), 0);

    /* a new definition and description; the rest kept */
    int64_t version = 0;
    pb_pipeline_rec c = {.definition = DEF2, .description = "desc2", .max_parallel = -1, .modified_ms = 2000};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "flow", &c, &version), 0);
    assert_int_equal(version, 2);
    pb_pipeline_rec got;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "Flow", 0, &got), 0);
    assert_int_equal(got.version_id, 2);
    assert_string_equal(got.definition, DEF2);
    assert_string_equal(got.description, "desc2");
    assert_string_equal(got.display_name, "d1");
    assert_string_equal(got.role_arn, "role1");
    assert_string_equal(got.name, "Flow");
    assert_string_equal(got.client_token, "tok");
    assert_int_equal(got.max_parallel, 2);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.modified_ms, 2000);
    pb_pipeline_rec_free(&got);

    /* no definition: version 3 has version 2's; max_parallel 0 is a value */
    pb_pipeline_rec c2 = {.role_arn = "role2", .display_name = "d3", .max_parallel = 0, .modified_ms = 3000};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "FLOW", &c2, &version), 0);
    assert_int_equal(version, 3);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "flow", 0, &got), 0);
    assert_int_equal(got.version_id, 3);
    assert_string_equal(got.definition, DEF2);
    assert_string_equal(got.role_arn, "role2");
    assert_string_equal(got.display_name, "d3");
    assert_string_equal(got.description, "desc2");
    assert_int_equal(got.max_parallel, 0);
    assert_int_equal(got.modified_ms, 3000);
    pb_pipeline_rec_free(&got);

    /* nothing given at all still adds a version; *version may be NULL */
    pb_pipeline_rec none = {.max_parallel = -1, .modified_ms = 4000};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "flow", &none, NULL), 0);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "flow", 0, &got), 0);
    assert_int_equal(got.version_id, 4);
    assert_string_equal(got.definition, DEF2);
    pb_pipeline_rec_free(&got);

    /* older versions keep their definition and report their own id */
    assert_int_equal(s->ops->pipeline_get(s, &SC, "flow", 1, &got), 0);
    assert_int_equal(got.version_id, 1);
    assert_string_equal(got.definition, DEF1);
    assert_string_equal(got.role_arn, "role2"); /* pipeline members are the current ones */
    pb_pipeline_rec_free(&got);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "flow", 3, &got), 0);
    assert_string_equal(got.definition, DEF2);
    pb_pipeline_rec_free(&got);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "flow", 5, &got), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM pipeline_versions"), 4);

    version = 99;
    assert_int_equal(s->ops->pipeline_update(s, &SC, "nope", &c, &version), PB_ENOTFOUND);
    assert_int_equal(version, 99);
    assert_int_equal(s->ops->pipeline_update(s, &SC_REGION, "flow", &c, &version), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_update(s, &SC, "flow", NULL, &version), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_update(s, &SC, NULL, &c, &version), PB_EVALIDATION);
}

static void test_pipeline_list(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    pb_pipeline_rec *v = (pb_pipeline_rec *)1;
    size_t n = 99;
    assert_int_equal(s->ops->pipeline_list(s, &SC, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);

    assert_int_equal(mk_pipeline(s, &SC, "beta", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC, "Alpha", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC, "Gamma", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC_REGION, "delta", DEF1), 0);
    pb_pipeline_rec c = {.definition = DEF2, .max_parallel = -1, .modified_ms = 5};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "beta", &c, NULL), 0);

    assert_int_equal(s->ops->pipeline_list(s, &SC, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "Alpha"); /* by name, without regard to case */
    assert_string_equal(v[1].name, "beta");
    assert_string_equal(v[2].name, "Gamma");
    assert_int_equal(v[1].version_id, 2);
    assert_int_equal(v[0].version_id, 1);
    assert_string_equal(v[1].role_arn, "arn:aws:iam::123456789012:role/r");
    for (size_t i = 0; i < n; i++)
        assert_null(v[i].definition); /* not read for lists */
    pb_pipeline_recs_free(v, n);

    assert_int_equal(s->ops->pipeline_list(s, &SC_REGION, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "delta");
    pb_pipeline_recs_free(v, n);
    assert_int_equal(s->ops->pipeline_list(s, NULL, &v, &n), PB_EVALIDATION);
    assert_int_equal(s->ops->pipeline_list(s, &SC, NULL, &n), PB_EVALIDATION);
}

static void test_pipeline_delete(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], earn[256], buf[512];
    pb_tag tag = {"k", "v"};
    pb_pipeline_rec p = {.name = "Doomed",
                         .arn = pipe_arn(&SC, "Doomed", arn, sizeof arn),
                         .role_arn = "r",
                         .definition = DEF1};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &p, &tag, 1), 0);
    assert_int_equal(mk_pipeline(s, &SC, "Kept", DEF1), 0);
    pb_pipeline_rec c = {.definition = DEF2, .max_parallel = -1};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "doomed", &c, NULL), 0);

    /* executions of both pipelines, with parameters, steps, tags and events */
    pb_param_rec params[] = {{"a", "1"}};
    pb_outbox_event ev = {"default", "{\"e\":1}"};
    const char *ids[] = {"doomedexec01", "doomedexec02"};
    for (int i = 0; i < 2; i++) {
        char parn[256];
        pb_exec_rec e = exec_rec(&SC, "Doomed", ids[i], ids[i], "Executing", 10 + i, earn, parn, sizeof earn);
        assert_int_equal(s->ops->exec_create(s, &SC, &e, params, 1, &ev, 1, NULL), 0);
        pb_step_rec st = step(0, "a", "Executing", 10);
        assert_int_equal(s->ops->exec_change(s, &SC, earn, NULL, &st, 1, NULL, 0, NULL, 0), 0);
        assert_int_equal(s->ops->tags_set(s, earn, &tag, 1, 50), 0);
    }
    char kept_arn[256], kept_parn[256];
    pb_exec_rec ke = exec_rec(&SC, "Kept", "keptexec0001", "t", "Executing", 5, kept_arn, kept_parn, 256);
    assert_int_equal(s->ops->exec_create(s, &SC, &ke, params, 1, &ev, 1, NULL), 0);
    pb_step_rec kst = step(0, "a", "Executing", 5);
    assert_int_equal(s->ops->exec_change(s, &SC, kept_arn, NULL, &kst, 1, NULL, 0, NULL, 0), 0);

    /* refused while any execution is Queued, Executing or Stopping: the
     * second finishes, and the first alone holds the pipeline in each status */
    pb_exec_rec upd = {.display_name = NULL, .status = "Failed", .modified_ms = 20};
    assert_int_equal(s->ops->exec_change(s, &SC, exec_arn(&SC, "Doomed", ids[1], earn, sizeof earn), &upd, NULL,
                                         0, NULL, 0, NULL, 0),
                     0);
    assert_int_equal(s->ops->pipeline_delete(s, &SC, "doomed"), PB_ECONFLICT); /* the first still runs */
    const char *running[] = {"Queued", "Stopping", "Executing"};
    exec_arn(&SC, "Doomed", ids[0], earn, sizeof earn);
    for (int i = 0; i < 3; i++) {
        upd.status = (char *)running[i];
        assert_int_equal(s->ops->exec_change(s, &SC, earn, &upd, NULL, 0, NULL, 0, NULL, 0), 0);
        assert_int_equal(s->ops->pipeline_delete(s, &SC, "DOOMED"), PB_ECONFLICT);
    }
    const char *finished[] = {"Stopped", "Succeeded"};
    for (int i = 0; i < 2; i++) {
        upd.status = (char *)finished[i];
        assert_int_equal(s->ops->exec_change(s, &SC, earn, &upd, NULL, 0, NULL, 0, NULL, 0), 0);
    }
    pb_pipeline_rec got;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "doomed", 0, &got), 0); /* still whole */
    pb_pipeline_rec_free(&got);

    assert_int_equal(s->ops->pipeline_delete(s, &SC_REGION, "doomed"), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_delete(s, &SC, "dOoMeD"), 0);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "doomed", 0, &got), PB_ENOTFOUND);
    assert_int_equal(s->ops->pipeline_delete(s, &SC, "doomed"), PB_ENOTFOUND);
    pb_exec_rec ge;
    assert_int_equal(s->ops->exec_get(s, &SC, earn, &ge), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM pipeline_versions WHERE name_key = 'doomed'"), 0);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM executions WHERE pipeline_key = 'doomed'"), 0);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM exec_steps"), 1);  /* Kept's */
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM exec_params"), 1); /* Kept's */
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM tags"), 0);        /* pipeline's and executions' */
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
    /* the other pipeline and the events already written stay */
    assert_string_equal(list_execs(s, &SC, "kept", buf, sizeof buf), "keptexec0001");
    assert_string_equal(list_steps(s, &SC, kept_arn, buf, sizeof buf), "0:a:Executing");
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 3);

    /* the name can be used again, from version 1, with no executions */
    assert_int_equal(mk_pipeline(s, &SC, "doomed", DEF2), 0);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "DOOMED", 0, &got), 0);
    assert_int_equal(got.version_id, 1);
    assert_int_equal(got.last_run_ms, 0);
    pb_pipeline_rec_free(&got);
    assert_string_equal(list_execs(s, &SC, "doomed", buf, sizeof buf), "");
    assert_int_equal(s->ops->pipeline_delete(s, &SC, NULL), PB_EVALIDATION);
}

/* --------------------------------------------------------- executions -- */

static void test_exec_create_get(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], parn[256], buf[512];
    assert_int_equal(mk_pipeline(s, &SC, "Train", DEF1), 0);

    pb_exec_rec e = {.id = "abc123def456",
                     .arn = exec_arn(&SC, "Train", "abc123def456", arn, sizeof arn),
                     .pipeline_name = "Train",
                     .pipeline_arn = pipe_arn(&SC, "Train", parn, sizeof parn),
                     .version_id = 1,
                     .display_name = "execution-5000",
                     .description = "first",
                     .status = "Executing",
                     .client_token = "token-1",
                     .max_parallel = 4,
                     .created_ms = 5000,
                     .modified_ms = 5001};
    pb_param_rec params[] = {{"zeta", "1"}, {"alpha", "two"}, {"mid", ""}};
    pb_outbox_event events[] = {{"default", "{\"n\":1}"}, {NULL, "{\"n\":2}"}};
    assert_int_equal(s->ops->exec_create(s, &SC, &e, params, 3, events, 2, NULL), 0);

    pb_exec_rec got;
    assert_int_equal(s->ops->exec_get(s, &SC, arn, &got), 0);
    assert_string_equal(got.id, "abc123def456");
    assert_string_equal(got.arn, arn);
    assert_string_equal(got.pipeline_name, "Train");
    assert_string_equal(got.pipeline_arn, parn);
    assert_int_equal(got.version_id, 1);
    assert_string_equal(got.display_name, "execution-5000");
    assert_string_equal(got.description, "first");
    assert_string_equal(got.status, "Executing");
    assert_null(got.failure_reason);
    assert_string_equal(got.client_token, "token-1");
    assert_int_equal(got.max_parallel, 4);
    assert_false(got.fail_step);
    assert_int_equal(got.created_ms, 5000);
    assert_int_equal(got.modified_ms, 5001);
    assert_int_equal(got.end_ms, 0);
    pb_exec_rec_free(&got);
    assert_null(got.id);

    /* the ARN compares without regard to case, within the scope */
    char upper[256];
    snprintf(upper, sizeof upper, "%s", arn);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    assert_int_equal(s->ops->exec_get(s, &SC, upper, &got), 0);
    assert_string_equal(got.arn, arn);
    pb_exec_rec_free(&got);
    assert_int_equal(s->ops->exec_get(s, &SC_REGION, arn, &got), PB_ENOTFOUND);
    assert_int_equal(s->ops->exec_get(s, &SC_ACCOUNT, arn, &got), PB_ENOTFOUND);

    assert_int_equal(s->ops->exec_get(s, &SC, "arn:nothing", &got), PB_ENOTFOUND);
    assert_null(got.id);

    /* parameters in the order given; events in the outbox, "default" for no bus */
    assert_string_equal(list_params(s, &SC, arn, buf, sizeof buf), "zeta=1,alpha=two,mid=");
    assert_string_equal(list_outbox(s, 0, buf, sizeof buf), "default:{\"n\":1},default:{\"n\":2}");
    pb_outbox_rec *ob = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->outbox_list(s, 0, 1, &ob, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ob[0].account, SC.account);
    assert_string_equal(ob[0].region, SC.region);
    assert_true(ob[0].created_ms > 0);
    pb_outbox_recs_free(ob, n);

    /* the pipeline records its last run */
    pb_pipeline_rec p;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "train", 0, &p), 0);
    assert_int_equal(p.last_run_ms, 5000);
    pb_pipeline_rec_free(&p);

    /* an execution of a pipeline that does not exist writes nothing */
    char arn2[256], parn2[256];
    pb_exec_rec orphan = exec_rec(&SC, "Gone", "zzzzzzzzzzzz", "t", "Executing", 1, arn2, parn2, 256);
    pb_exec_rec existing = {.id = (char *)1};
    assert_int_equal(s->ops->exec_create(s, &SC, &orphan, params, 1, events, 1, &existing), PB_ENOTFOUND);
    assert_null(existing.id);
    assert_int_equal(s->ops->exec_create(s, &SC_REGION, &e, params, 1, events, 1, NULL), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM executions"), 1);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM exec_params"), 3);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 2);

    /* a bad status or parameter rolls everything back */
    char arn3[256], parn3[256];
    pb_exec_rec bad = exec_rec(&SC, "Train", "badbadbadbad", "t3", "Running", 9, arn3, parn3, 256);
    assert_int_equal(s->ops->exec_create(s, &SC, &bad, NULL, 0, events, 1, NULL), PB_EVALIDATION);
    bad.status = "Executing";
    pb_param_rec badp[] = {{"ok", "1"}, {"nil", NULL}};
    assert_int_equal(s->ops->exec_create(s, &SC, &bad, badp, 2, events, 1, NULL), PB_EVALIDATION);
    pb_outbox_event bade = {"default", NULL};
    assert_int_equal(s->ops->exec_create(s, &SC, &bad, NULL, 0, &bade, 1, NULL), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_get(s, &SC, arn3, &got), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM exec_params"), 3);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 2);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "train", 0, &p), 0);
    assert_int_equal(p.last_run_ms, 5000);
    pb_pipeline_rec_free(&p);
    /* an ARN given in another case is stored lowercase */
    char arn_up[256], arn_low[256], parn_up[256];
    pb_exec_rec up = exec_rec(&SC, "Train", "upcase000001", "token-up", "Executing", 6000, arn_up, parn_up, 256);
    snprintf(arn_low, sizeof arn_low, "%s", arn_up);
    for (char *c = arn_up; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    assert_int_equal(s->ops->exec_create(s, &SC, &up, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(s->ops->exec_get(s, &SC, arn_low, &got), 0);
    assert_string_equal(got.arn, arn_low);
    pb_exec_rec_free(&got);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM executions WHERE arn <> lower(arn)"), 0);
    assert_int_equal(s->ops->exec_change(s, &SC, arn_low, &(pb_exec_rec){.status = "Succeeded"}, NULL, 0, NULL, 0,
                                         NULL, 0),
                     0);

    /* required members */
    pb_exec_rec noid = e;
    noid.id = NULL;
    assert_int_equal(s->ops->exec_create(s, &SC, &noid, NULL, 0, NULL, 0, NULL), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_create(s, &SC, NULL, NULL, 0, NULL, 0, NULL), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_create(s, &SC, &e, NULL, 1, NULL, 0, NULL), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_get(s, &SC, NULL, &got), PB_EVALIDATION);
}

static void test_exec_token_replay(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], parn[256], buf[512];
    assert_int_equal(mk_pipeline(s, &SC, "Rerun", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC, "Other", DEF1), 0);
    pb_param_rec params[] = {{"p", "first"}};
    pb_outbox_event ev = {"default", "{\"first\":true}"};
    pb_exec_rec e = exec_rec(&SC, "Rerun", "first0000001", "same-token", "Executing", 100, arn, parn, 256);
    assert_int_equal(s->ops->exec_create(s, &SC, &e, params, 1, &ev, 1, NULL), 0);

    /* the same token again, with another id and the name in another case */
    char arn2[256], parn2[256];
    pb_exec_rec again = exec_rec(&SC, "RERUN", "second000002", "same-token", "Queued", 200, arn2, parn2, 256);
    pb_param_rec params2[] = {{"p", "second"}};
    pb_outbox_event ev2 = {"default", "{\"second\":true}"};
    pb_exec_rec existing;
    assert_int_equal(s->ops->exec_create(s, &SC, &again, params2, 1, &ev2, 1, &existing), PB_EEXISTS);
    assert_string_equal(existing.id, "first0000001");
    assert_string_equal(existing.arn, arn);
    assert_string_equal(existing.status, "Executing");
    assert_string_equal(existing.client_token, "same-token");
    assert_int_equal(existing.created_ms, 100);
    pb_exec_rec_free(&existing);
    assert_int_equal(s->ops->exec_create(s, &SC, &again, params2, 1, &ev2, 1, NULL), PB_EEXISTS);

    /* nothing of the replays was written */
    assert_string_equal(list_execs(s, &SC, "rerun", buf, sizeof buf), "first0000001");
    assert_string_equal(list_params(s, &SC, arn, buf, sizeof buf), "p=first");
    assert_string_equal(list_outbox(s, 0, buf, sizeof buf), "default:{\"first\":true}");
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM exec_params"), 1);
    pb_pipeline_rec p;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "rerun", 0, &p), 0);
    assert_int_equal(p.last_run_ms, 100);
    pb_pipeline_rec_free(&p);

    /* a token is per pipeline; a token differing in case is another token */
    assert_int_equal(mk_exec(s, &SC, "Other", "other0000001", "same-token", "Executing", 300), 0);
    assert_int_equal(mk_exec(s, &SC, "Rerun", "third0000003", "SAME-TOKEN", "Executing", 400), 0);
    /* executions without a token are never replays of each other */
    assert_int_equal(mk_exec(s, &SC, "Rerun", "notoken00001", NULL, "Executing", 500), 0);
    assert_int_equal(mk_exec(s, &SC, "Rerun", "notoken00002", NULL, "Executing", 500), 0);

    /* an ARN already taken under another token is not a replay */
    pb_exec_rec clash = exec_rec(&SC, "Rerun", "first0000001", "fresh-token", "Executing", 600, arn2, parn2, 256);
    existing.id = (char *)1;
    assert_int_equal(s->ops->exec_create(s, &SC, &clash, NULL, 0, NULL, 0, &existing), PB_ECONFLICT);
    assert_null(existing.id);
    assert_string_equal(list_execs(s, &SC, "rerun", buf, sizeof buf),
                        "notoken00002,notoken00001,third0000003,first0000001");
}

/* Threads on two stores (as two processes) start the same token at once:
 * one creates, every other gets that execution back. */
#define RACERS 6

typedef struct racer {
    pb_store *s;
    int id;
    pthread_barrier_t *go;
    int rc;
    char got_id[16];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char id[16], arn[256], parn[256];
    snprintf(id, sizeof id, "racer%07d", r->id);
    pb_exec_rec e = exec_rec(&SC, "Race", id, "raced-token", "Executing", 1000 + r->id, arn, parn, sizeof arn);
    pb_param_rec prm = {"who", id};
    pb_exec_rec existing;
    pthread_barrier_wait(r->go);
    r->rc = r->s->ops->exec_create(r->s, &SC, &e, &prm, 1, NULL, 0, &existing);
    if (r->rc == 0)
        snprintf(r->got_id, sizeof r->got_id, "%s", id);
    else if (r->rc == PB_EEXISTS && existing.id)
        snprintf(r->got_id, sizeof r->got_id, "%s", existing.id);
    pb_exec_rec_free(&existing);
    return NULL;
}

static void test_exec_token_race(void **state)
{
    fx *f = *state;
    pb_store *a = pb_test_store_fx_open(f);
    assert_int_equal(mk_pipeline(a, &SC, "Race", DEF1), 0);
    pb_store *b = NULL;
    assert_int_equal(pb_store_open(f->url, &b, NULL), 0);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    pthread_t th[RACERS];
    racer r[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){.s = i % 2 ? b : a, .id = i, .go = &go};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&go);
    pb_store_close(b);

    int created = 0;
    const char *winner = NULL;
    for (int i = 0; i < RACERS; i++) {
        if (r[i].rc == 0) {
            created++;
            winner = r[i].got_id;
        } else if (r[i].rc != PB_EEXISTS) {
            fail_msg("racer %d: %d", i, r[i].rc);
        }
    }
    assert_int_equal(created, 1);
    for (int i = 0; i < RACERS; i++)
        assert_string_equal(r[i].got_id, winner);
    char buf[256], want[64];
    assert_string_equal(list_execs(a, &SC, "race", buf, sizeof buf), winner);
    snprintf(want, sizeof want, "who=%s", winner);
    char arn[256];
    assert_string_equal(list_params(a, &SC, exec_arn(&SC, "race", winner, arn, sizeof arn), buf, sizeof buf),
                        want);
}

static void test_exec_list_and_unfinished_order(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    assert_int_equal(mk_pipeline(s, &SC, "Ord", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC_REGION, "Ord", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC_ACCOUNT, "Else", DEF1), 0);
    assert_string_equal(list_execs(s, &SC, "ord", buf, sizeof buf), "");
    assert_string_equal(list_unfinished(s, buf, sizeof buf), "");

    /* ids sort against creation order; created_ms are equal or go backwards */
    assert_int_equal(mk_exec(s, &SC, "Ord", "zz0000000001", "t1", "Executing", 500), 0);
    assert_int_equal(mk_exec(s, &SC_ACCOUNT, "Else", "yy0000000002", "t2", "Queued", 500), 0);
    assert_int_equal(mk_exec(s, &SC, "ORD", "xx0000000003", "t3", "Succeeded", 500), 0);
    assert_int_equal(mk_exec(s, &SC_REGION, "Ord", "ww0000000004", "t4", "Stopping", 400), 0);
    assert_int_equal(mk_exec(s, &SC, "ord", "vv0000000005", "t5", "Queued", 500), 0);
    assert_int_equal(mk_exec(s, &SC, "Ord", "uu0000000006", "t6", "Failed", 500), 0);
    assert_int_equal(mk_exec(s, &SC, "Ord", "tt0000000007", "t7", "Stopped", 500), 0);

    assert_string_equal(list_execs(s, &SC, "Ord", buf, sizeof buf),
                        "tt0000000007,uu0000000006,vv0000000005,xx0000000003,zz0000000001");
    assert_string_equal(list_execs(s, &SC_REGION, "ORD", buf, sizeof buf), "ww0000000004");
    assert_string_equal(list_unfinished(s, buf, sizeof buf),
                        "123456789012/us-east-1/zz0000000001,210987654321/us-east-1/yy0000000002,"
                        "123456789012/eu-west-1/ww0000000004,123456789012/us-east-1/vv0000000005");

    /* a finished execution leaves the list; the order of the others holds */
    char arn[256];
    pb_exec_rec done = {.status = "Succeeded", .modified_ms = 600, .end_ms = 600};
    assert_int_equal(s->ops->exec_change(s, &SC, exec_arn(&SC, "Ord", "zz0000000001", arn, sizeof arn), &done,
                                         NULL, 0, NULL, 0, NULL, 0),
                     0);
    assert_string_equal(list_unfinished(s, buf, sizeof buf),
                        "210987654321/us-east-1/yy0000000002,123456789012/eu-west-1/ww0000000004,"
                        "123456789012/us-east-1/vv0000000005");
    pb_exec_entry *ue = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->exec_unfinished(s, &ue, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ue[2].exec.status, "Queued");
    assert_string_equal(ue[2].exec.arn, exec_arn(&SC, "ord", "vv0000000005", arn, sizeof arn));
    pb_exec_entries_free(ue, n);

    pb_exec_rec *v = NULL;
    assert_int_equal(s->ops->exec_list(s, &SC, "missing", &v, &n), PB_ENOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->exec_list(s, &SC_ACCOUNT, "ord", &v, &n), PB_ENOTFOUND);
    assert_int_equal(s->ops->exec_list(s, &SC, NULL, &v, &n), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_unfinished(s, NULL, &n), PB_EVALIDATION);
}

/* -------------------------------------------------------- exec_change -- */

static void test_exec_change(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], parn[256], buf[1024];
    assert_int_equal(mk_pipeline(s, &SC, "Chg", DEF1), 0);
    pb_exec_rec e = exec_rec(&SC, "Chg", "chg000000001", "t", "Executing", 100, arn, parn, 256);
    e.description = "to be cleared";
    pb_outbox_event started = {"default", "{\"s\":\"Executing\"}"};
    assert_int_equal(s->ops->exec_create(s, &SC, &e, NULL, 0, &started, 1, NULL), 0);
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "");

    /* steps only (exec NULL: the execution is unchanged), with an event; step
     * 3 started first */
    pb_step_rec steps[] = {step(2, "c", "Executing", 300), step(0, "a", "Executing", 200),
                           step(1, "b", "Starting", 200), step(3, "z", "Executing", 150)};
    steps[0].stdout_path = "/tmp/c/stdout.log";
    steps[0].stderr_path = "/tmp/c/stderr.log";
    steps[0].pid = 4242;
    steps[0].pid_start = 987654;
    steps[0].display_name = "Step C";
    steps[0].description = "the third";
    pb_outbox_event ev1 = {"default", "{\"step\":1}"};
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, steps, 4, NULL, 0, &ev1, 1), 0);
    /* by start time, then index */
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf),
                        "3:z:Executing,0:a:Executing,1:b:Starting,2:c:Executing");
    int64_t drop_z = 3;
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, NULL, 0, &drop_z, 1, NULL, 0), 0);
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "0:a:Executing,1:b:Starting,2:c:Executing");
    pb_exec_rec got;
    assert_int_equal(s->ops->exec_get(s, &SC, arn, &got), 0);
    assert_string_equal(got.status, "Executing");
    assert_string_equal(got.description, "to be cleared");
    assert_int_equal(got.modified_ms, 100);
    pb_exec_rec_free(&got);

    /* an upsert replaces the whole record of its index */
    pb_step_rec done_a = step(0, "a", "Succeeded", 200);
    done_a.end_ms = 250;
    done_a.metadata_json = "{\"ProcessingJob\":{\"Arn\":\"x\"}}";
    done_a.properties_json = "{\"ProcessingJobStatus\":\"Completed\"}";
    done_a.attempt_count = 2;
    pb_step_rec fail_c = step(2, "c", "Failed", 300);
    fail_c.failure_reason = "exit code 1: boom";
    fail_c.end_ms = 350;
    pb_step_rec upd[] = {done_a, fail_c};
    pb_exec_rec failed = {.display_name = NULL, /* kept */
                          .description = NULL,  /* cleared */
                          .status = "Failed",
                          .failure_reason = "Step c failed",
                          .max_parallel = 7,
                          .fail_step = true,
                          .modified_ms = 360,
                          .end_ms = 360};
    pb_outbox_event ev2[] = {{"default", "{\"step\":2}"}, {"default", "{\"exec\":\"Failed\"}"}};
    assert_int_equal(s->ops->exec_change(s, &SC, arn, &failed, upd, 2, NULL, 0, ev2, 2), 0);
    pb_step_rec *sv = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->steps_list(s, &SC, arn, &sv, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(sv[0].index, 0);
    assert_string_equal(sv[0].status, "Succeeded");
    assert_int_equal(sv[0].end_ms, 250);
    assert_int_equal(sv[0].attempt_count, 2);
    assert_string_equal(sv[0].metadata_json, "{\"ProcessingJob\":{\"Arn\":\"x\"}}");
    assert_string_equal(sv[0].properties_json, "{\"ProcessingJobStatus\":\"Completed\"}");
    assert_string_equal(sv[0].type, "Processing");
    assert_null(sv[0].stdout_path);
    assert_int_equal(sv[2].index, 2);
    assert_string_equal(sv[2].status, "Failed");
    assert_string_equal(sv[2].failure_reason, "exit code 1: boom");
    assert_null(sv[2].stdout_path); /* replaced whole */
    assert_null(sv[2].display_name);
    assert_int_equal(sv[2].pid, 0);
    assert_int_equal(sv[1].start_ms, 200);
    pb_step_recs_free(sv, n);
    assert_int_equal(s->ops->exec_get(s, &SC, arn, &got), 0);
    assert_string_equal(got.status, "Failed");
    assert_string_equal(got.display_name, "execution-1");
    assert_null(got.description);
    assert_string_equal(got.failure_reason, "Step c failed");
    assert_int_equal(got.max_parallel, 7);
    assert_true(got.fail_step);
    assert_int_equal(got.modified_ms, 360);
    assert_int_equal(got.end_ms, 360);
    assert_int_equal(got.created_ms, 100);          /* not a mutable field */
    assert_string_equal(got.client_token, "t");     /* nor this */
    assert_string_equal(got.pipeline_name, "Chg");  /* nor this */
    pb_exec_rec_free(&got);

    /* the pid fields of a running step, read back */
    pb_step_rec run_b = step(1, "b", "Executing", 200);
    run_b.pid = 4242;
    run_b.pid_start = 987654;
    run_b.stdout_path = "/tmp/b/stdout.log";
    run_b.stderr_path = "/tmp/b/stderr.log";
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, &run_b, 1, NULL, 0, NULL, 0), 0);
    assert_int_equal(s->ops->steps_list(s, &SC, arn, &sv, &n), 0);
    assert_int_equal(sv[1].pid, 4242);
    assert_int_equal(sv[1].pid_start, 987654);
    assert_string_equal(sv[1].stdout_path, "/tmp/b/stdout.log");
    assert_string_equal(sv[1].stderr_path, "/tmp/b/stderr.log");
    pb_step_recs_free(sv, n);

    /* a retry: reset c and b (an index without a record is fine), start c
     * again in the same change; a's record stays */
    int64_t reset[] = {2, 1, 9};
    pb_step_rec again_c = step(2, "c", "Starting", 400);
    pb_exec_rec retry = {.status = "Executing", .modified_ms = 400, .end_ms = 0, .fail_step = false};
    pb_outbox_event ev3 = {"default", "{\"exec\":\"Executing\"}"};
    assert_int_equal(s->ops->exec_change(s, &SC, arn, &retry, &again_c, 1, reset, 3, &ev3, 1), 0);
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "0:a:Succeeded,2:c:Starting");
    assert_int_equal(s->ops->exec_get(s, &SC, arn, &got), 0);
    assert_string_equal(got.status, "Executing");
    assert_null(got.failure_reason);
    assert_false(got.fail_step);
    assert_int_equal(got.end_ms, 0);
    pb_exec_rec_free(&got);

    /* every event, in the order written */
    assert_string_equal(list_outbox(s, 0, buf, sizeof buf),
                        "default:{\"s\":\"Executing\"},default:{\"step\":1},default:{\"step\":2},"
                        "default:{\"exec\":\"Failed\"},default:{\"exec\":\"Executing\"}");

    /* all or nothing: a step without a name fails the change, whose execution
     * update, earlier steps, resets and events are all rolled back */
    pb_step_rec bad[] = {step(3, "d", "Executing", 500), step(4, NULL, "Executing", 500)};
    pb_exec_rec stop = {.status = "Stopping", .modified_ms = 500};
    int64_t reset_a = 0;
    pb_outbox_event ev4 = {"default", "{\"lost\":true}"};
    assert_int_equal(s->ops->exec_change(s, &SC, arn, &stop, bad, 2, &reset_a, 1, &ev4, 1), PB_EVALIDATION);
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "0:a:Succeeded,2:c:Starting");
    assert_int_equal(s->ops->exec_get(s, &SC, arn, &got), 0);
    assert_string_equal(got.status, "Executing");
    pb_exec_rec_free(&got);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 5);
    pb_exec_rec badstatus = {.status = "Running"};
    assert_int_equal(s->ops->exec_change(s, &SC, arn, &badstatus, NULL, 0, NULL, 0, NULL, 0), PB_EVALIDATION);

    /* an execution that is not there (or not in this scope) */
    char gone[256];
    exec_arn(&SC, "Chg", "nothere00000", gone, sizeof gone);
    assert_int_equal(s->ops->exec_change(s, &SC, gone, &stop, NULL, 0, NULL, 0, &ev4, 1), PB_ENOTFOUND);
    assert_int_equal(s->ops->exec_change(s, &SC_REGION, arn, &stop, NULL, 0, NULL, 0, &ev4, 1), PB_ENOTFOUND);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 5);
    pb_param_rec *pv = NULL;
    assert_int_equal(s->ops->steps_list(s, &SC, gone, &sv, &n), PB_ENOTFOUND);
    assert_int_equal(s->ops->params_list(s, &SC, gone, &pv, &n), PB_ENOTFOUND);
    assert_int_equal(s->ops->params_list(s, &SC, arn, &pv, &n), 0); /* none given */
    assert_null(pv);
    assert_int_equal(n, 0);

    /* the ARN in another case finds the execution */
    char upper[256];
    snprintf(upper, sizeof upper, "%s", arn);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    assert_int_equal(s->ops->exec_change(s, &SC, upper, &stop, NULL, 0, NULL, 0, NULL, 0), 0);
    assert_string_equal(list_steps(s, &SC, upper, buf, sizeof buf), "0:a:Succeeded,2:c:Starting");

    assert_int_equal(s->ops->exec_change(s, &SC, NULL, NULL, NULL, 0, NULL, 0, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, NULL, 1, NULL, 0, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, NULL, 0, NULL, 1, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, NULL, 0, NULL, 0, NULL, 1), PB_EVALIDATION);
}

/* ------------------------------------------------------------- outbox -- */

static void test_outbox_paging(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[1024];
    assert_int_equal(mk_pipeline(s, &SC, "Ev", DEF1), 0);
    assert_int_equal(mk_pipeline(s, &SC_REGION, "Ev", DEF1), 0);
    pb_outbox_rec *v = (pb_outbox_rec *)1;
    size_t n = 99;
    assert_int_equal(s->ops->outbox_list(s, 0, 10, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);

    char arn[256], parn[256], arn2[256], parn2[256];
    pb_exec_rec e = exec_rec(&SC, "Ev", "ev0000000001", "t", "Executing", 1, arn, parn, 256);
    pb_exec_rec e2 = exec_rec(&SC_REGION, "Ev", "ev0000000002", "t", "Executing", 1, arn2, parn2, 256);
    pb_outbox_event a[] = {{"default", "1"}, {"custom", "2"}};
    pb_outbox_event b[] = {{"default", "3"}};
    pb_outbox_event c[] = {{"default", "4"}, {"default", "5"}};
    assert_int_equal(s->ops->exec_create(s, &SC, &e, NULL, 0, a, 2, NULL), 0);
    assert_int_equal(s->ops->exec_create(s, &SC_REGION, &e2, NULL, 0, b, 1, NULL), 0);
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, NULL, 0, NULL, 0, c, 2), 0);

    assert_string_equal(list_outbox(s, 0, buf, sizeof buf), "default:1,custom:2,default:3,default:4,default:5");
    assert_int_equal(s->ops->outbox_list(s, 0, 2, &v, &n), 0);
    assert_int_equal(n, 2);
    int64_t second = v[1].seq;
    assert_string_equal(v[1].event_json, "2");
    pb_outbox_recs_free(v, n);
    assert_string_equal(list_outbox(s, second, buf, sizeof buf), "default:3,default:4,default:5");
    assert_int_equal(s->ops->outbox_list(s, second, 1, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].region, "eu-west-1");
    int64_t third = v[0].seq;
    pb_outbox_recs_free(v, n);
    assert_string_equal(list_outbox(s, third, buf, sizeof buf), "default:4,default:5");
    assert_string_equal(list_outbox(s, INT64_MAX, buf, sizeof buf), "");
    assert_int_equal(s->ops->outbox_list(s, 0, 0, &v, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->outbox_list(s, -5, SIZE_MAX, &v, &n), 0);
    assert_int_equal(n, 5);
    pb_outbox_recs_free(v, n);
    assert_int_equal(s->ops->outbox_list(s, 0, 1, NULL, &n), PB_EVALIDATION);
}

/* -------------------------------------------------------- durability -- */

static void test_reopen_finds_everything(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], parn[256], buf[512];
    pb_tag tag = {"k", "v"};
    pb_pipeline_rec p = {.name = "Durable",
                         .arn = pipe_arn(&SC, "Durable", parn, sizeof parn),
                         .role_arn = "r",
                         .definition = DEF1,
                         .created_ms = 1};
    assert_int_equal(s->ops->pipeline_create(s, &SC, &p, &tag, 1), 0);
    pb_pipeline_rec c = {.definition = DEF2, .max_parallel = 9, .modified_ms = 2};
    assert_int_equal(s->ops->pipeline_update(s, &SC, "durable", &c, NULL), 0);
    pb_exec_rec e = exec_rec(&SC, "Durable", "dur000000001", "tok", "Queued", 3, arn, parn, 256);
    pb_param_rec prm[] = {{"b", "2"}, {"a", "1"}};
    pb_outbox_event ev = {"default", "{\"d\":1}"};
    assert_int_equal(s->ops->exec_create(s, &SC, &e, prm, 2, &ev, 1, NULL), 0);
    pb_step_rec st = step(0, "s", "Executing", 4);
    st.pid = 77;
    assert_int_equal(s->ops->exec_change(s, &SC, arn, NULL, &st, 1, NULL, 0, &ev, 1), 0);

    s = pb_test_store_fx_reopen(f);
    pb_pipeline_rec got;
    assert_int_equal(s->ops->pipeline_get(s, &SC, "DURABLE", 0, &got), 0);
    assert_int_equal(got.version_id, 2);
    assert_int_equal(got.max_parallel, 9);
    assert_int_equal(got.last_run_ms, 3);
    assert_string_equal(got.definition, DEF2);
    pb_pipeline_rec_free(&got);
    assert_int_equal(s->ops->pipeline_get(s, &SC, "durable", 1, &got), 0);
    assert_string_equal(got.definition, DEF1);
    pb_pipeline_rec_free(&got);
    assert_string_equal(list_tags(s, p.arn, buf, sizeof buf), "k=v");
    assert_string_equal(list_execs(s, &SC, "durable", buf, sizeof buf), "dur000000001");
    assert_string_equal(list_unfinished(s, buf, sizeof buf), "123456789012/us-east-1/dur000000001");
    assert_string_equal(list_params(s, &SC, arn, buf, sizeof buf), "b=2,a=1");
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "0:s:Executing");
    assert_string_equal(list_outbox(s, 0, buf, sizeof buf), "default:{\"d\":1},default:{\"d\":1}");
    pb_exec_rec existing;
    assert_int_equal(s->ops->exec_create(s, &SC, &e, NULL, 0, NULL, 0, &existing), PB_EEXISTS);
    assert_string_equal(existing.id, "dur000000001");
    pb_exec_rec_free(&existing);
}

/* The child starts an execution and records a step, and is killed as soon
 * as the calls return: what was acknowledged must be there. */
static void test_durable_after_sigkill(void **state)
{
    fx *f = *state;
    char arn[256], parn[256], buf[256];
    pb_store *s = pb_test_store_fx_open(f);
    assert_int_equal(mk_pipeline(s, &SC, "Killed", DEF1), 0);
    pb_store_close(s);
    f->s = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pb_store *cs = NULL;
        if (pb_store_open(f->url, &cs, NULL) != 0)
            _exit(10);
        pb_exec_rec e = exec_rec(&SC, "Killed", "kill00000001", "t", "Executing", 9, arn, parn, 256);
        pb_param_rec prm = {"x", "y"};
        pb_outbox_event ev = {"default", "{\"acked\":1}"};
        if (cs->ops->exec_create(cs, &SC, &e, &prm, 1, &ev, 1, NULL) != 0)
            _exit(11);
        pb_step_rec st = step(0, "s", "Executing", 10);
        if (cs->ops->exec_change(cs, &SC, arn, NULL, &st, 1, NULL, 0, &ev, 1) != 0)
            _exit(12);
        kill(getpid(), SIGKILL);
        _exit(13);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of being killed", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    s = pb_test_store_fx_open(f);
    exec_arn(&SC, "Killed", "kill00000001", arn, sizeof arn);
    assert_string_equal(list_execs(s, &SC, "killed", buf, sizeof buf), "kill00000001");
    assert_string_equal(list_params(s, &SC, arn, buf, sizeof buf), "x=y");
    assert_string_equal(list_steps(s, &SC, arn, buf, sizeof buf), "0:s:Executing");
    assert_string_equal(list_outbox(s, 0, buf, sizeof buf), "default:{\"acked\":1},default:{\"acked\":1}");
}

/* -------------------------------------------------------- migrations -- */

/* A database written by a pipebridge with migrations 1 and 2 only opens,
 * gains migration 3 and keeps its data. */
static void test_migrate_from_v2(void **state)
{
    fx *f = *state;
    assert_true(pb_store__nmigrations >= 3);
    assert_int_equal(pb_store__migrations[1].version, 2);
    assert_int_equal(pb_store__migrations[2].version, 3);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    pb_test_sql_exec(db, "PRAGMA journal_mode = WAL");
    pb_error err;
    assert_int_equal(pb_store__migrate(db, pb_store__migrations, 2, &err), 0);
    pb_test_sql_exec(db, "INSERT INTO buses VALUES ('123456789012', 'us-east-1', 'old', 'arn:old', NULL, NULL, 1, 1);"
                         "INSERT INTO tags VALUES ('arn:old', 'k', 'v')");
    char buf[256];
    assert_string_equal(pb_test_sql_text(db, "SELECT group_concat(version) FROM schema_migrations", buf, sizeof buf),
                        "1,2");
    assert_string_equal(pb_test_sql_text(db, "SELECT count(*) FROM sqlite_master WHERE name = 'pipelines'", buf,
                                         sizeof buf),
                        "0");
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    pb_store *s = pb_test_store_fx_open(f);
    db = pb_store__sqlite_db(s);
    assert_string_equal(pb_test_sql_text(db,
                                         "SELECT group_concat(version) FROM (SELECT version FROM schema_migrations "
                                         "WHERE version <= 3 ORDER BY version)",
                                         buf, sizeof buf),
                        "1,2,3");
    assert_string_equal(pb_test_sql_text(db, "SELECT name FROM schema_migrations WHERE version = 3", buf, sizeof buf),
                        pb_store__migrations[2].name);
    assert_string_equal(pb_test_sql_text(db,
                                         "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE name IN "
                                         "('pipelines', 'pipeline_versions', 'executions', 'exec_steps', "
                                         "'exec_params', 'event_outbox', 'executions_by_pipeline', "
                                         "'executions_unfinished') "
                                         "ORDER BY name)",
                                         buf, sizeof buf),
                        "event_outbox,exec_params,exec_steps,executions,executions_by_pipeline,"
                        "executions_unfinished,pipeline_versions,pipelines");
    pb_bus_rec b;
    assert_int_equal(s->ops->bus_get(s, &SC, "old", &b), 0);
    assert_string_equal(b.arn, "arn:old");
    pb_bus_rec_free(&b);
    assert_string_equal(list_tags(s, "arn:old", buf, sizeof buf), "k=v");
    assert_int_equal(mk_pipeline(s, &SC, "New", DEF1), 0);
    assert_int_equal(mk_exec(s, &SC, "new", "new000000001", "t", "Executing", 1), 0);
    assert_string_equal(pb_test_sql_text(db, "PRAGMA foreign_key_check", buf, sizeof buf), "");
    assert_string_equal(pb_test_sql_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok");

    /* and a second open applies nothing again */
    s = pb_test_store_fx_reopen(f);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM schema_migrations"), (int)pb_store__nmigrations);
}

/* The details of the query plan of sql, joined with "; ". */
static const char *plan(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    char q[1024];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", q, sqlite3_errmsg(db));
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (buf[0])
            strncat(buf, "; ", len - strlen(buf) - 1);
        strncat(buf, (const char *)sqlite3_column_text(st, 3), len - strlen(buf) - 1);
    }
    sqlite3_finalize(st);
    return buf;
}

/* The start-up query of unfinished executions and the lookups by lowered
 * name or ARN use indexes, without sorting (the partial index serves only a
 * query that spells its status list the same way as migration 3). */
static void test_query_plans_use_indexes(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    char buf[512];
    plan(db,
         "SELECT account, region, id FROM executions WHERE status IN ('Queued', 'Executing', 'Stopping') "
         "ORDER BY seq",
         buf, sizeof buf);
    if (!strstr(buf, "USING INDEX executions_unfinished") || strstr(buf, "TEMP B-TREE"))
        fail_msg("unfinished: %s", buf);
    plan(db,
         "SELECT id FROM executions WHERE account = 'a' AND region = 'r' AND pipeline_key = lower('X') "
         "ORDER BY seq DESC",
         buf, sizeof buf);
    if (!strstr(buf, "SEARCH executions USING INDEX executions_by_pipeline") || strstr(buf, "TEMP B-TREE"))
        fail_msg("by pipeline: %s", buf);
    plan(db, "SELECT seq FROM executions WHERE arn = lower('A') AND account = 'a' AND region = 'r'", buf,
         sizeof buf);
    if (!strstr(buf, "SEARCH executions USING INDEX sqlite_autoindex_executions"))
        fail_msg("by arn: %s", buf);
    plan(db, "SELECT arn FROM pipelines WHERE account = 'a' AND region = 'r' AND name_key = lower('X')", buf,
         sizeof buf);
    if (!strstr(buf, "SEARCH pipelines USING PRIMARY KEY"))
        fail_msg("pipeline by name: %s", buf);
}

static void test_free_helpers_accept_null(void **state)
{
    (void)state;
    pb_pipeline_rec_free(NULL);
    pb_pipeline_recs_free(NULL, 0);
    pb_exec_rec_free(NULL);
    pb_exec_recs_free(NULL, 0);
    pb_exec_entries_free(NULL, 0);
    pb_step_recs_free(NULL, 0);
    pb_param_recs_free(NULL, 0);
    pb_outbox_recs_free(NULL, 0);
    pb_pipeline_rec p = {.name = strdup("x"), .definition = strdup("{}")};
    pb_pipeline_rec_free(&p);
    assert_null(p.name);
    assert_null(p.definition);
    pb_exec_rec e = {.id = strdup("x"), .status = strdup("Queued")};
    pb_exec_rec_free(&e);
    assert_null(e.id);
    assert_null(e.status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_update_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_token_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_token_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_list_and_unfinished_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_finds_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plans_use_indexes, setup, teardown),
        cmocka_unit_test(test_free_helpers_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
