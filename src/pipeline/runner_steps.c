/*
 * runner_steps.c — one execution's progress, step by step.
 *
 * A run is loaded from the store (execution, definition version, parameter
 * values, the steps that already ran), then driven by its pb_pipedef_plan:
 * ready Processing / Training steps become processes (pb_proc) in
 * <run dir>/<step name>/, Condition steps are evaluated at once, Fail steps
 * fail the execution with their message. Ended processes are collected;
 * when nothing runs or can start, the execution ends Succeeded, Failed or
 * Stopped. Every status change is written to the store with its SageMaker
 * status-change event in one transaction (pb__change_commit).
 *
 * Step properties (what {"Get": "Steps.S.X"} reads) are the step's resolved
 * Arguments plus the Describe* members a job would have: ProcessingJobName /
 * ProcessingJobArn / ProcessingJobStatus, TrainingJobName / TrainingJobArn /
 * TrainingJobStatus and ModelArtifacts.S3ModelArtifacts. Output and input
 * LocalPaths are directories inside the step's working directory (a leading
 * '/' is dropped), created before the process starts; property files are
 * read from there.
 *
 * All functions run with the runner's lock held.
 */
#include "runner_internal.h"

#include "common/pb_log.h"
#include "common/pb_uuid.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REASON_MAX 1300 /* FailureReason's maximum length (§6.2) */
#define STEP_FAILURE "Step failure: One or multiple steps failed."

/* ------------------------------------------------------------ helpers -- */

int64_t pb__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pb__iso_time(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%03dZ", base, (int)(ms % 1000));
}

void pb__set(char **field, const char *v)
{
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy)
        return; /* out of memory: keep the old value */
    free(*field);
    *field = copy;
}

/* A copy of s cut to at most max bytes on a UTF-8 character boundary. */
static char *cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return strndup(s, n);
}

static void set_reason(char **field, const char *reason)
{
    free(*field);
    *field = reason ? cut(reason, REASON_MAX) : NULL;
}

/* mkdir -p; 0 or errno. */
static int mkdirs(const char *path)
{
    char buf[PB_PROC_MAX_PATH];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return errno;
            buf[i] = c;
        }
    }
    return 0;
}

static char *step_dir(const run *x, const pb_pipedef_step *st)
{
    size_t cap = strlen(x->dir) + strlen(st->name) + 2;
    char *d = malloc(cap);
    if (d)
        snprintf(d, cap, "%s/%s", x->dir, st->name);
    return d;
}

/* A path below dir for a LocalPath: "<dir>/<local without leading '/'>".
 * NULL for a LocalPath that climbs out with "..". */
static char *local_path(const char *dir, const char *local)
{
    while (*local == '/')
        local++;
    for (const char *p = local; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == local || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return NULL;
    size_t cap = strlen(dir) + strlen(local) + 2;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "%s/%s", dir, local);
    return out;
}

/* ------------------------------------------------------------ changes -- */

static void change_add(pb__change *c, pb_buf *b, int rc)
{
    if (rc) {
        c->err = rc;
        pb_buf_free(b);
        return;
    }
    if (pb_grow((void **)&c->texts, &c->cap, c->nev + 1, sizeof *c->texts)) {
        c->err = PB_ENOMEM;
        pb_buf_free(b);
        return;
    }
    c->texts[c->nev++] = pb_buf_steal(b);
}

void pb__change_free(pb__change *c)
{
    for (size_t i = 0; i < c->nev; i++)
        free(c->texts[i]);
    free(c->texts);
    memset(c, 0, sizeof *c);
}

static pb_pipeevent_base event_base(const run *x, const char *id, const char *prev, const char *cur, int64_t now)
{
    return (pb_pipeevent_base){.id = id,
                               .time_ms = now,
                               .account = x->scope.account,
                               .region = x->scope.region,
                               .pipeline_arn = x->rec.pipeline_arn,
                               .exec_arn = x->rec.arn,
                               .previous = prev,
                               .current = cur};
}

/* The API shows Queued as Executing: so do the events. */
static const char *shown(const char *status)
{
    return status && !strcmp(status, "Queued") ? "Executing" : status;
}

void pb__change_exec_event(pb__change *c, const run *x, const char *prev, const char *cur, int64_t now_ms)
{
    char id[37];
    pb_uuid_v4(id);
    pb_pipeevent_base b = event_base(x, id, shown(prev), shown(cur), now_ms);
    pb_buf t;
    pb_buf_init(&t, 0);
    change_add(c, &t,
               pb_pipeevent_execution(&b, x->rec.display_name, x->rec.description, x->rec.created_ms, x->rec.end_ms,
                                      &t));
}

void pb__change_step_event(pb__change *c, const run *x, size_t idx, const char *prev, const char *cur,
                           int64_t now_ms)
{
    const run_step *rs = &x->steps[idx];
    const pb_pipedef_step *st = &x->def->steps[idx];
    char id[37];
    pb_uuid_v4(id);
    pb_pipeevent_base b = event_base(x, id, prev, cur, now_ms);
    pb_buf t;
    pb_buf_init(&t, 0);
    change_add(c, &t,
               pb_pipeevent_step(&b, st->name, pb_pipedef_step_type_name(st->type), rs->metadata, rs->start_ms,
                                 rs->end_ms, rs->failure, &t));
}

static void fill_step(const run *x, size_t idx, pb_step_rec *o)
{
    const run_step *rs = &x->steps[idx];
    const pb_pipedef_step *st = &x->def->steps[idx];
    *o = (pb_step_rec){.index = (int64_t)idx,
                       .name = (char *)st->name,
                       .type = (char *)pb_pipedef_step_type_name(st->type),
                       .display_name = (char *)st->display_name,
                       .description = (char *)st->description,
                       .status = (char *)rs->status,
                       .start_ms = rs->start_ms,
                       .end_ms = rs->end_ms,
                       .failure_reason = rs->failure,
                       .metadata_json = rs->metadata,
                       .properties_json = rs->props,
                       .attempt_count = rs->attempts,
                       .stdout_path = rs->out_path,
                       .stderr_path = rs->err_path,
                       .pid = rs->pid,
                       .pid_start = rs->pid_start};
}

int pb__change_commit(pb_runner *r, run *x, bool with_exec, const size_t *steps, size_t nsteps,
                      const int64_t *reset, size_t nreset, pb__change *c)
{
    int rc = c->err;
    pb_step_rec *recs = NULL;
    pb_outbox_event *ev = NULL;
    if (!rc && nsteps && !(recs = calloc(nsteps, sizeof *recs)))
        rc = PB_ENOMEM;
    if (!rc && c->nev && !(ev = calloc(c->nev, sizeof *ev)))
        rc = PB_ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < nsteps; i++)
            fill_step(x, steps[i], &recs[i]);
        for (size_t i = 0; i < c->nev; i++)
            ev[i] = (pb_outbox_event){.bus = "default", .json = c->texts[i]};
        if (with_exec)
            x->rec.modified_ms = pb__now_ms();
        rc = r->store->ops->exec_change(r->store, &x->scope, x->rec.arn, with_exec ? &x->rec : NULL, recs, nsteps,
                                        reset, nreset, ev, c->nev);
    }
    if (rc)
        pb_log_error("pipeline execution %s: cannot record its status (%s): the store refused the change",
                     x->rec.arn, pb_error_name(rc));
    else if (c->nev && r->event_hook)
        r->event_hook(r->event_hook_ctx); /* only sets a flag: safe under the runner's lock */
    free(recs);
    free(ev);
    pb__change_free(c);
    return rc;
}

/* ------------------------------------------------------------ loading -- */

static const pb_json *props_cb(void *user, const pb_pipedef_step *step)
{
    run *x = user;
    run_step *rs = &x->steps[step->index];
    if (!rs->props)
        return NULL;
    if (!rs->props_doc) {
        pb_json *doc = NULL;
        pb_json_limits lim = {.max_bytes = 16u << 20, .max_depth = 128};
        if (pb_json_parse(rs->props, strlen(rs->props), &lim, &x->arena, &doc, NULL) == 0)
            rs->props_doc = doc;
    }
    return rs->props_doc;
}

/* The S3Output.LocalPath of the output named name in a step's properties. */
static const char *output_local_path(const pb_json *props, const char *name)
{
    const pb_json *outs = props ? pb_json_get(pb_json_get(props, "ProcessingOutputConfig"), "Outputs") : NULL;
    if (!outs || outs->type != PB_JSON_ARRAY)
        return NULL;
    for (size_t i = 0; i < outs->n; i++) {
        const pb_json *on = pb_json_get(outs->items[i], "OutputName");
        const pb_json *lp = pb_json_get(pb_json_get(outs->items[i], "S3Output"), "LocalPath");
        if (on && on->type == PB_JSON_STRING && !strcmp(on->str, name) && lp && lp->type == PB_JSON_STRING)
            return lp->str;
    }
    return NULL;
}

static int pf_cb(void *user, const pb_pipedef_step *step, const pb_pipedef_propfile *file, pb_buf *out,
                 pb_error *err)
{
    run *x = user;
    const char *local = output_local_path(props_cb(user, step), file->output_name);
    if (!local)
        return pb_error_set(err, PB_EVALIDATION,
                            "Property file %s of step %s: output '%s' has no S3Output.LocalPath", file->name,
                            step->name, file->output_name);
    char *dir = step_dir(x, step);
    char *base = dir ? local_path(dir, local) : NULL;
    char *path = base ? local_path(base, file->file_path) : NULL;
    free(dir);
    free(base);
    if (!path)
        return pb_error_set(err, PB_EVALIDATION, "Property file %s of step %s: bad path", file->name, step->name);
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pb_error_set(err, PB_EVALIDATION, "Property file %s of step %s: cannot read %s: %s", file->name,
                          step->name, path, strerror(errno));
    } else {
        char buf[8192];
        ssize_t n;
        while (!rc && (n = read(fd, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                rc = pb_error_set(err, PB_EVALIDATION, "Property file %s of step %s: cannot read %s: %s",
                                  file->name, step->name, path, strerror(errno));
            else if (pb_buf_append(out, buf, (size_t)n))
                rc = pb_error_set(err, PB_EVALIDATION, "Property file %s of step %s: %s is larger than %d bytes",
                                  file->name, step->name, path, PB_PIPEDEF_MAX_PROPERTY_FILE_BYTES);
        }
        close(fd);
    }
    free(path);
    return rc;
}

static void make_ctx(run *x, pb_pipedef_ctx *ctx)
{
    pb__iso_time(pb__now_ms(), x->now_time);
    *ctx = (pb_pipedef_ctx){.args = &x->args, .plan = &x->plan, .step_properties = props_cb,
                            .read_property_file = pf_cb, .user = x};
    ctx->vars[PB_PIPEDEF_VAR_START_DATE_TIME] = x->start_time;
    ctx->vars[PB_PIPEDEF_VAR_CURRENT_DATE_TIME] = x->now_time;
    ctx->vars[PB_PIPEDEF_VAR_PIPELINE_NAME] = x->rec.pipeline_name;
    ctx->vars[PB_PIPEDEF_VAR_PIPELINE_ARN] = x->rec.pipeline_arn;
    ctx->vars[PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ID] = x->rec.id;
    ctx->vars[PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ARN] = x->rec.arn;
}

static const char *static_status(const char *s)
{
    static const char *const all[] = {"Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (s && !strcmp(s, all[i]))
            return all[i];
    return "Failed";
}

/* Restores a step that ran before (a retried or resumed execution). */
static void restore_step(run *x, pb_step_rec *sr)
{
    size_t idx = (size_t)sr->index;
    run_step *rs = &x->steps[idx];
    rs->status = static_status(sr->status);
    rs->start_ms = sr->start_ms;
    rs->end_ms = sr->end_ms;
    rs->attempts = sr->attempt_count;
    rs->pid = sr->pid;
    rs->pid_start = sr->pid_start;
    rs->failure = sr->failure_reason;
    rs->metadata = sr->metadata_json;
    rs->props = sr->properties_json;
    rs->out_path = sr->stdout_path;
    rs->err_path = sr->stderr_path;
    sr->failure_reason = sr->metadata_json = sr->properties_json = sr->stdout_path = sr->stderr_path = NULL;
    if (!strcmp(rs->status, "Succeeded")) {
        if (x->def->steps[idx].type == PB_PIPEDEF_CONDITION) {
            json_t *m = rs->metadata ? json_loads(rs->metadata, 0, NULL) : NULL;
            const char *o = json_string_value(json_object_get(json_object_get(m, "Condition"), "Outcome"));
            pb_pipedef_plan_outcome(&x->plan, idx, o && !strcmp(o, "True"));
            json_decref(m);
        } else {
            pb_pipedef_plan_set(&x->plan, idx, PB_PIPEDEF_SUCCEEDED);
        }
    } else {
        /* Failed, Stopped, or anything a crash left behind */
        pb_pipedef_plan_set(&x->plan, idx, !strcmp(rs->status, "Stopped") ? PB_PIPEDEF_STOPPED : PB_PIPEDEF_FAILED);
    }
}

int pb__run_load(pb_runner *r, run *x, pb_error *err)
{
    pb_store *s = r->store;
    pb_pipeline_rec p = {0};
    pb_param_rec *params = NULL;
    pb_step_rec *steps = NULL;
    size_t nparams = 0, nsteps = 0;
    pb_pipedef_kv *kv = NULL;
    int rc = s->ops->pipeline_get(s, &x->scope, x->rec.pipeline_name, x->rec.version_id, &p);
    if (rc) {
        pb_error_set(err, rc, "Pipeline '%s' version %lld cannot be read", x->rec.pipeline_arn,
                     (long long)x->rec.version_id);
        goto out;
    }
    if ((rc = pb_runner_definition(r, p.arn, x->rec.version_id, p.definition, &x->def, err)) != 0)
        goto out;
    if ((rc = s->ops->params_list(s, &x->scope, x->rec.arn, &params, &nparams)) != 0) {
        pb_error_set(err, rc, "cannot read the parameters of %s", x->rec.arn);
        goto out;
    }
    kv = calloc(nparams ? nparams : 1, sizeof *kv);
    if (!kv) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nparams; i++)
        kv[i] = (pb_pipedef_kv){params[i].name, strlen(params[i].name), params[i].value, strlen(params[i].value)};
    if ((rc = pb_pipedef_bind(x->def, kv, nparams, &x->arena, &x->args, err)) != 0)
        goto out;
    x->steps = calloc(x->def->nsteps ? x->def->nsteps : 1, sizeof *x->steps);
    if (!x->steps || pb_pipedef_plan_init(&x->plan, x->def)) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < x->def->nsteps; i++) {
        x->steps[i].run = x;
        x->steps[i].index = i;
    }
    if ((rc = s->ops->steps_list(s, &x->scope, x->rec.arn, &steps, &nsteps)) != 0) {
        pb_error_set(err, rc, "cannot read the steps of %s", x->rec.arn);
        goto out;
    }
    for (size_t i = 0; i < nsteps; i++) {
        size_t idx = (size_t)steps[i].index;
        if (steps[i].index < 0 || idx >= x->def->nsteps || strcmp(x->def->steps[idx].name, steps[i].name)) {
            rc = pb_error_set(err, PB_EINTERNAL, "step record %s does not match the definition", steps[i].name);
            goto out;
        }
        restore_step(x, &steps[i]);
    }
    x->max_parallel = (unsigned)(x->rec.max_parallel > 0 ? x->rec.max_parallel : p.max_parallel);
    size_t cap = strlen(r->data_dir) + strlen(x->rec.id) + 16;
    if (!(x->dir = malloc(cap))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(x->dir, cap, "%s/executions/%s", r->data_dir, x->rec.id);
    pb__iso_time(x->rec.created_ms, x->start_time);
    if (x->stop_requested || !strcmp(x->rec.status, "Stopping"))
        pb_pipedef_plan_stop(&x->plan);
    x->loaded = true;
out:
    pb_pipeline_rec_free(&p);
    pb_param_recs_free(params, nparams);
    pb_step_recs_free(steps, nsteps);
    free(kv);
    return rc;
}

/* ----------------------------------------------------- starting steps -- */

static void begin(run_step *rs, int64_t now)
{
    rs->start_ms = now;
    rs->end_ms = 0;
    rs->attempts = 1;
    rs->pid = rs->pid_start = 0;
    rs->props_doc = NULL;
    pb__set(&rs->failure, NULL);
    pb__set(&rs->metadata, NULL);
    pb__set(&rs->props, NULL);
}

static void commit_step(pb_runner *r, run *x, size_t idx, bool with_exec, pb__change *c)
{
    pb__change_commit(r, x, with_exec, &idx, 1, NULL, 0, c);
}

static char *json_text(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return t;
}

static void start_condition(pb_runner *r, run *x, size_t idx, int64_t now)
{
    run_step *rs = &x->steps[idx];
    pb__change c = {0};
    pb_pipedef_ctx ctx;
    pb_arena tmp;
    pb_error err;
    bool outcome = false;
    begin(rs, now);
    make_ctx(x, &ctx);
    pb_arena_init(&tmp);
    int rc = pb_pipedef_conditions(x->def, &x->def->steps[idx], &ctx, &tmp, &outcome, &err);
    pb_arena_free(&tmp);
    pb__change_step_event(&c, x, idx, NULL, "Executing", now); /* not ended yet: no stepEndTime */
    rs->end_ms = now;
    if (rc) {
        set_reason(&rs->failure, err.message);
        rs->status = "Failed";
        pb_pipedef_plan_set(&x->plan, idx, PB_PIPEDEF_FAILED);
    } else {
        rs->metadata = json_text(json_pack("{s:{s:s}}", "Condition", "Outcome", outcome ? "True" : "False"));
        rs->props = json_text(json_pack("{s:s}", "Outcome", outcome ? "True" : "False"));
        rs->status = "Succeeded";
        pb_pipedef_plan_outcome(&x->plan, idx, outcome);
    }
    pb__change_step_event(&c, x, idx, "Executing", rs->status, now);
    commit_step(r, x, idx, false, &c);
}

static void start_fail(pb_runner *r, run *x, size_t idx, int64_t now)
{
    run_step *rs = &x->steps[idx];
    pb__change c = {0};
    pb_pipedef_ctx ctx;
    pb_arena tmp;
    pb_error err;
    const char *msg = NULL;
    begin(rs, now);
    make_ctx(x, &ctx);
    pb_arena_init(&tmp);
    if (pb_pipedef_fail_message(x->def, &x->def->steps[idx], &ctx, &tmp, &msg, &err))
        msg = err.message;
    set_reason(&rs->failure, msg);
    rs->metadata = json_text(json_pack("{s:{s:s}}", "Fail", "ErrorMessage", rs->failure ? rs->failure : ""));
    pb_arena_free(&tmp);
    rs->end_ms = now;
    rs->status = "Failed";
    x->rec.fail_step = true;
    pb_pipedef_plan_set(&x->plan, idx, PB_PIPEDEF_FAILED);
    pb__change_step_event(&c, x, idx, NULL, "Executing", now);
    pb__change_step_event(&c, x, idx, "Executing", "Failed", now);
    commit_step(r, x, idx, true, &c);
}

/* Creates the LocalPath directories of a Processing step's inputs and
 * outputs inside its working directory. */
static int make_local_dirs(const char *dir, const pb_json *args, pb_error *err)
{
    static const char *const lists[][3] = {{"ProcessingOutputConfig", "Outputs", "S3Output"},
                                           {NULL, "ProcessingInputs", "S3Input"}};
    for (size_t l = 0; l < 2; l++) {
        const pb_json *parent = lists[l][0] ? pb_json_get(args, lists[l][0]) : args;
        const pb_json *items = parent ? pb_json_get(parent, lists[l][1]) : NULL;
        for (size_t i = 0; items && items->type == PB_JSON_ARRAY && i < items->n; i++) {
            const pb_json *lp = pb_json_get(pb_json_get(items->items[i], lists[l][2]), "LocalPath");
            if (!lp || lp->type != PB_JSON_STRING)
                continue;
            char *path = local_path(dir, lp->str);
            int e = path ? mkdirs(path) : EINVAL;
            if (e) {
                int rc = pb_error_set(err, PB_EVALIDATION, "cannot create LocalPath %s in %s: %s", lp->str, dir,
                                      path ? strerror(e) : "it leaves the step's directory");
                free(path);
                return rc;
            }
            free(path);
        }
    }
    return 0;
}

/* The job name a step's process stands for, SageMaker's way:
 * pipelines-<execution id>-<step name>-<random>, at most 63 characters of
 * [a-zA-Z0-9-]. */
static void job_name(const run *x, const char *step, char out[64])
{
    char rnd[13], name[32];
    pb_pipearn_exec_id(rnd);
    snprintf(name, sizeof name, "%.20s", step);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    snprintf(out, 64, "pipelines-%s-%s-%.10s", x->rec.id, name, rnd);
}

static void start_process(pb_runner *r, run *x, size_t idx, int64_t now)
{
    const pb_pipedef_step *st = &x->def->steps[idx];
    run_step *rs = &x->steps[idx];
    bool training = st->type == PB_PIPEDEF_TRAINING;
    pb__change c = {0};
    pb_pipedef_ctx ctx;
    pb_pipedef_cmd cmd;
    pb_arena tmp;
    pb_error err;
    pb_error_clear(&err);
    char *dir = NULL;
    char job[64], jarn[256];
    begin(rs, now);
    make_ctx(x, &ctx);
    pb_arena_init(&tmp);
    pb__change_step_event(&c, x, idx, NULL, "Starting", now);

    job_name(x, st->name, job);
    snprintf(jarn, sizeof jarn, "arn:aws:sagemaker:%s:%s:%s/%s", x->scope.region, x->scope.account,
             training ? "training-job" : "processing-job", job);
    for (char *p = jarn; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    rs->metadata = json_text(json_pack("{s:{s:s}}", training ? "TrainingJob" : "ProcessingJob", "Arn", jarn));

    int rc = pb_pipedef_command(x->def, st, &ctx, &tmp, &cmd, &err);
    if (!rc && !(dir = step_dir(x, st)))
        rc = pb_error_set(&err, PB_ENOMEM, "out of memory");
    if (!rc) {
        int e = mkdirs(dir);
        if (e)
            rc = pb_error_set(&err, PB_EIO, "cannot create the step's directory %s: %s", dir, strerror(e));
    }
    if (!rc && !training)
        rc = make_local_dirs(dir, cmd.arguments, &err);
    if (!rc) {
        /* properties: the resolved Arguments and the job's Describe* members */
        pb_buf a;
        pb_buf_init(&a, 0);
        json_t *props = pb_json_write(&a, cmd.arguments) ? NULL : json_loads(a.data, JSON_PRESERVE_ORDER, NULL);
        pb_buf_free(&a);
        if (!json_is_object(props)) {
            json_decref(props);
            props = json_object();
        }
        json_object_set_new(props, training ? "TrainingJobName" : "ProcessingJobName", json_string(job));
        json_object_set_new(props, training ? "TrainingJobArn" : "ProcessingJobArn", json_string(jarn));
        json_object_set_new(props, training ? "TrainingJobStatus" : "ProcessingJobStatus", json_string("InProgress"));
        rs->props = json_text(props);
        size_t cap = strlen(dir) + 16;
        rs->out_path = malloc(cap);
        rs->err_path = malloc(cap);
        if (!rs->props || !rs->out_path || !rs->err_path) {
            rc = pb_error_set(&err, PB_ENOMEM, "out of memory");
        } else {
            snprintf(rs->out_path, cap, "%s/stdout.log", dir);
            snprintf(rs->err_path, cap, "%s/stderr.log", dir);
        }
    }
    if (!rc) {
        pb_proc_options opt = {.argv = (const char *const *)cmd.argv,
                               .argc = cmd.argc,
                               .env = (const char *const *)cmd.env,
                               .envc = cmd.envc,
                               .cwd = dir,
                               .stdout_path = rs->out_path,
                               .stderr_path = rs->err_path,
                               .max_runtime_s = cmd.max_runtime_seconds,
                               .grace_ms = r->grace_ms};
        rc = pb_proc_spawn(&opt, &rs->proc, &err);
    }
    pb_arena_free(&tmp);
    free(dir);
    if (rc) {
        set_reason(&rs->failure, err.message[0] ? err.message : pb_error_default_message(rc));
        rs->end_ms = now;
        rs->status = "Failed";
        pb_pipedef_plan_set(&x->plan, idx, PB_PIPEDEF_FAILED);
        pb__change_step_event(&c, x, idx, "Starting", "Failed", now);
        commit_step(r, x, idx, false, &c);
        return;
    }
    rs->pid = pb_proc_pid(rs->proc);
    rs->pid_start = pb_proc_start_ticks((pid_t)rs->pid);
    rs->status = "Executing";
    pb_pipedef_plan_set(&x->plan, idx, PB_PIPEDEF_EXECUTING);
    int fd = pb_proc_pollfd(rs->proc);
    if (fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = rs};
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev); /* failing that, the periodic sweep collects it */
    }
    pb__change_step_event(&c, x, idx, "Starting", "Executing", now);
    commit_step(r, x, idx, false, &c);
}

/* ---------------------------------------------------- ended processes -- */

/* The properties of an ended process step: final job status, and for a
 * Training step the model artifact's place. */
static void finish_props(run *x, size_t idx, const char *job_status)
{
    run_step *rs = &x->steps[idx];
    bool training = x->def->steps[idx].type == PB_PIPEDEF_TRAINING;
    json_t *p = rs->props ? json_loads(rs->props, JSON_PRESERVE_ORDER, NULL) : NULL;
    if (!p)
        return;
    json_object_set_new(p, training ? "TrainingJobStatus" : "ProcessingJobStatus", json_string(job_status));
    if (rs->failure)
        json_object_set_new(p, training ? "FailureReason" : "ExitMessage", json_string(rs->failure));
    const char *out = json_string_value(json_object_get(json_object_get(p, "OutputDataConfig"), "S3OutputPath"));
    const char *job = json_string_value(json_object_get(p, "TrainingJobName"));
    if (training && out && job) {
        size_t n = strlen(out), cap = n + strlen(job) + 32;
        char *uri = malloc(cap);
        if (uri) {
            snprintf(uri, cap, "%s%s%s/output/model.tar.gz", out, n && out[n - 1] == '/' ? "" : "/", job);
            json_object_set_new(p, "ModelArtifacts", json_pack("{s:s}", "S3ModelArtifacts", uri));
            free(uri);
        }
    }
    free(rs->props);
    rs->props = json_text(p);
    rs->props_doc = NULL;
}

static void collect(pb_runner *r, run *x, size_t idx, int64_t now)
{
    run_step *rs = &x->steps[idx];
    pb_proc_result res;
    pb_error err;
    int ended = pb_proc_poll(rs->proc, &res, &err);
    if (ended == 0)
        return;
    const char *prev = rs->status;
    if (ended < 0) {
        set_reason(&rs->failure, err.message);
        rs->status = "Failed";
    } else if (pb_proc_succeeded(&res)) {
        rs->status = "Succeeded";
    } else if (res.cause == PB_PROC_STOPPED) {
        rs->status = "Stopped";
    } else {
        char reason[REASON_MAX + 1];
        pb_proc_failure_reason(&res, rs->err_path, reason, sizeof reason);
        set_reason(&rs->failure, reason);
        rs->status = "Failed";
    }
    int fd = pb_proc_pollfd(rs->proc);
    if (fd >= 0)
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
    pb_proc_free(rs->proc);
    rs->proc = NULL;
    rs->pid = rs->pid_start = 0;
    rs->end_ms = now;
    finish_props(x, idx,
                 !strcmp(rs->status, "Succeeded") ? "Completed" : !strcmp(rs->status, "Stopped") ? "Stopped" : "Failed");
    pb_pipedef_plan_set(&x->plan, idx,
                        !strcmp(rs->status, "Succeeded") ? PB_PIPEDEF_SUCCEEDED
                        : !strcmp(rs->status, "Stopped") ? PB_PIPEDEF_STOPPED
                                                         : PB_PIPEDEF_FAILED);
    pb__change c = {0};
    pb__change_step_event(&c, x, idx, prev, rs->status, now);
    commit_step(r, x, idx, false, &c);
}

/* ------------------------------------------------------- the execution -- */

/* Records the end of the execution. False when the store refused it: the
 * run keeps its previous status and stays with the runner, which tries
 * again at every sweep (an execution must not stay "Executing" in the store
 * with nobody to end it). */
static bool finish(pb_runner *r, run *x, const char *status, const char *reason, int64_t now)
{
    char *prev = x->rec.status ? strdup(x->rec.status) : NULL;
    pb__set(&x->rec.status, status);
    x->rec.end_ms = now;
    set_reason(&x->rec.failure_reason, reason);
    pb__change c = {0};
    pb__change_exec_event(&c, x, prev, status, now);
    bool ok = pb__change_commit(r, x, true, NULL, 0, NULL, 0, &c) == 0;
    if (!ok && prev) {
        pb__set(&x->rec.status, prev);
        x->rec.end_ms = 0;
        set_reason(&x->rec.failure_reason, NULL);
    }
    x->finish_pending = !ok && prev;
    free(prev);
    return ok || !prev;
}

/* The message of the Fail step that ended the execution. */
static const char *fail_step_message(const run *x)
{
    for (size_t i = 0; i < x->def->nsteps; i++)
        if (x->def->steps[i].type == PB_PIPEDEF_FAIL && x->steps[i].status &&
            !strcmp(x->steps[i].status, "Failed"))
            return x->steps[i].failure ? x->steps[i].failure : "";
    return STEP_FAILURE;
}

void pb__run_fail_unloaded(pb_runner *r, run *x, const char *reason)
{
    finish(r, x, "Failed", reason, pb__now_ms());
}

bool pb__run_progress(pb_runner *r, run *x)
{
    int64_t now = pb__now_ms();
    if (!x->loaded) {
        pb_error err;
        pb_error_clear(&err);
        if (pb__run_load(r, x, &err)) {
            pb__run_fail_unloaded(r, x, err.message);
            return true;
        }
    }
    for (size_t i = 0; i < x->def->nsteps; i++)
        if (x->steps[i].proc)
            collect(r, x, i, now);
    size_t *ready = malloc((x->def->nsteps ? x->def->nsteps : 1) * sizeof *ready);
    if (!ready)
        return false; /* out of memory: try again on the next pass */
    size_t n;
    while ((n = pb_pipedef_plan_next(&x->plan, x->max_parallel, ready, x->def->nsteps)) > 0) {
        for (size_t k = 0; k < n; k++) {
            size_t idx = ready[k];
            switch (x->def->steps[idx].type) {
            case PB_PIPEDEF_CONDITION: start_condition(r, x, idx, now); break;
            case PB_PIPEDEF_FAIL: start_fail(r, x, idx, now); break;
            default: start_process(r, x, idx, now); break;
            }
        }
    }
    free(ready);
    switch (pb_pipedef_plan_status(&x->plan)) {
    case PB_PIPEDEF_EXEC_SUCCEEDED: return finish(r, x, "Succeeded", NULL, now);
    case PB_PIPEDEF_EXEC_FAILED: return finish(r, x, "Failed", fail_step_message(x), now);
    case PB_PIPEDEF_EXEC_STOPPED: return finish(r, x, "Stopped", NULL, now);
    default: return false;
    }
}

int pb__run_stop(pb_runner *r, run *x, int64_t now_ms, pb_error *err)
{
    pb__change c = {0};
    const char *prev = x->rec.status;
    if (!strcmp(prev, "Stopping"))
        return 0;
    if (x->queued) {
        pb__change_exec_event(&c, x, "Executing", "Stopping", now_ms);
        x->rec.end_ms = now_ms;
        pb__change_exec_event(&c, x, "Stopping", "Stopped", now_ms);
        pb__set(&x->rec.status, "Stopped");
        int rc = pb__change_commit(r, x, true, NULL, 0, NULL, 0, &c);
        return rc ? pb_error_set(err, rc, "cannot record the stop of %s", x->rec.arn) : 1;
    }
    pb__change_exec_event(&c, x, prev, "Stopping", now_ms);
    pb__set(&x->rec.status, "Stopping");
    x->stop_requested = true;
    size_t *stopped = NULL, n = 0;
    if (x->loaded) {
        pb_pipedef_plan_stop(&x->plan);
        stopped = malloc((x->def->nsteps ? x->def->nsteps : 1) * sizeof *stopped);
        for (size_t i = 0; stopped && i < x->def->nsteps; i++) {
            run_step *rs = &x->steps[i];
            if (!rs->proc)
                continue;
            pb_proc_stop(rs->proc, NULL);
            pb__change_step_event(&c, x, i, rs->status, "Stopping", now_ms);
            rs->status = "Stopping";
            pb_pipedef_plan_set(&x->plan, i, PB_PIPEDEF_STOPPING);
            stopped[n++] = i;
        }
    }
    int rc = pb__change_commit(r, x, true, stopped, n, NULL, 0, &c);
    free(stopped);
    x->dirty = true;
    return rc ? pb_error_set(err, rc, "cannot record the stop of %s", x->rec.arn) : 0;
}

void pb__run_abort(pb_runner *r, run *x, const char *reason)
{
    if (!x->loaded)
        return;
    bool any = false;
    for (size_t i = 0; i < x->def->nsteps; i++) {
        if (x->steps[i].proc) /* a step that ended on its own just now keeps its own outcome */
            collect(r, x, i, pb__now_ms());
        if (x->steps[i].proc) {
            pb_proc_stop(x->steps[i].proc, NULL);
            any = true;
        }
    }
    if (!any)
        return; /* nothing was interrupted: it continues after the next start */
    int64_t now = pb__now_ms();
    for (size_t i = 0; i < x->def->nsteps; i++) {
        run_step *rs = &x->steps[i];
        if (!rs->proc)
            continue;
        pb_proc_wait(rs->proc, -1, NULL, NULL); /* SIGKILL after the grace period */
        pb_proc_free(rs->proc);
        rs->proc = NULL;
        const char *prev = rs->status;
        rs->status = "Failed";
        rs->end_ms = now;
        rs->pid = rs->pid_start = 0;
        set_reason(&rs->failure, reason);
        finish_props(x, i, "Failed");
        pb_pipedef_plan_set(&x->plan, i, PB_PIPEDEF_FAILED);
        pb__change c = {0};
        pb__change_step_event(&c, x, i, prev, "Failed", now);
        commit_step(r, x, i, false, &c);
    }
    finish(r, x, x->stop_requested ? "Stopped" : "Failed", x->stop_requested ? NULL : STEP_FAILURE, now);
}

void pb__run_free(pb_runner *r, run *x)
{
    if (!x)
        return;
    if (x->steps) {
        for (size_t i = 0; i < x->def->nsteps; i++) {
            run_step *rs = &x->steps[i];
            pb_proc_free(rs->proc);
            free(rs->failure);
            free(rs->metadata);
            free(rs->props);
            free(rs->out_path);
            free(rs->err_path);
        }
        free(x->steps);
    }
    if (x->plan.status)
        pb_pipedef_plan_free(&x->plan);
    /* last: releasing may free the definition (the cache keeps at most so
     * many idle ones), and the steps above are counted by it */
    pb_runner_definition_release(r, x->def);
    pb_arena_free(&x->arena);
    pb_exec_rec_free(&x->rec);
    free(x->account);
    free(x->region);
    free(x->dir);
    free(x);
}
