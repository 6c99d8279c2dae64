/*
 * runner.c — the runner's lifecycle, its thread, and the entry points the
 * API calls (start, stop, retry). See pb_runner.h for the behaviour.
 *
 * The thread sleeps in epoll_wait on an eventfd (woken by the API entry
 * points) and on the pidfd of every running step; while a step runs it also
 * wakes every SWEEP_MS to let pb_proc enforce MaxRuntimeInSeconds and the
 * SIGKILL after a stop's grace period. Each pass drives every run marked
 * dirty through pb__run_progress (runner_steps.c). Runs are kept in the
 * order they were started, which is the FIFO order of the concurrency queue.
 */
#include "runner_internal.h"

#include "common/pb_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MS 200
#define RESTART_REASON "pipebridge restarted while the step was running; RetryPipelineExecution runs it again"
#define SHUTDOWN_REASON "pipebridge shut down while the step was running; RetryPipelineExecution runs it again"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(pb_runner *r)
{
    uint64_t one = 1;
    while (write(r->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------- runs -- */

/* A new run owning rec's strings (rec is zeroed). */
static run *run_new(const pb_scope *sc, pb_exec_rec *rec)
{
    run *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->account = strdup(sc->account);
    x->region = strdup(sc->region);
    if (!x->account || !x->region) {
        free(x->account);
        free(x->region);
        free(x);
        return NULL;
    }
    x->scope = (pb_scope){x->account, x->region};
    x->rec = *rec;
    memset(rec, 0, sizeof *rec);
    pb_arena_init(&x->arena);
    return x;
}

static void run_append(pb_runner *r, run *x)
{
    run **px = &r->runs;
    while (*px)
        px = &(*px)->next;
    x->next = NULL;
    *px = x;
}

static void run_unlink(pb_runner *r, run *x)
{
    for (run **px = &r->runs; *px; px = &(*px)->next) {
        if (*px == x) {
            *px = x->next;
            return;
        }
    }
}

static bool same_scope(const pb_scope *a, const pb_scope *b)
{
    return !strcmp(a->account, b->account) && !strcmp(a->region, b->region);
}

static run *run_find(pb_runner *r, const pb_scope *sc, const char *arn)
{
    for (run *x = r->runs; x; x = x->next)
        if (same_scope(&x->scope, sc) && !strcasecmp(x->rec.arn, arn))
            return x;
    return NULL;
}

static int exec_dup(const pb_exec_rec *in, pb_exec_rec *out)
{
    *out = *in;
    char **f[] = {&out->id, &out->arn, &out->pipeline_name, &out->pipeline_arn, &out->display_name,
                  &out->description, &out->status, &out->failure_reason, &out->client_token};
    const char *src[] = {in->id, in->arn, in->pipeline_name, in->pipeline_arn, in->display_name,
                         in->description, in->status, in->failure_reason, in->client_token};
    int rc = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i] = src[i] ? strdup(src[i]) : NULL;
        if (src[i] && !*f[i])
            rc = PB_ENOMEM;
    }
    if (rc)
        pb_exec_rec_free(out);
    return rc;
}

/* ------------------------------------------------------- admission -- */

/* The pipeline's concurrent-execution limit from its tag; 0: none. */
static long concurrency_limit(pb_runner *r, const char *pipeline_arn)
{
    pb_tag *tags = NULL;
    size_t n = 0;
    long limit = 0;
    if (r->store->ops->tags_list(r->store, pipeline_arn, &tags, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tags[i].key, PB_RUNNER_CONCURRENCY_TAG) != 0)
            continue;
        char *end;
        long v = strtol(tags[i].value, &end, 10);
        if (*tags[i].value && !*end && v >= 1 && v <= PB_RUNNER_MAX_CONCURRENCY)
            limit = v;
    }
    pb_tags_free(tags, n);
    return limit;
}

/* Whether a new execution of the pipeline must wait: its limit is reached,
 * or others already wait (first come, first served). */
static bool must_queue(pb_runner *r, const pb_scope *sc, const char *pipeline_arn)
{
    long limit = concurrency_limit(r, pipeline_arn);
    if (!limit)
        return false;
    long active = 0;
    for (run *x = r->runs; x; x = x->next) {
        if (!same_scope(&x->scope, sc) || strcmp(x->rec.pipeline_arn, pipeline_arn))
            continue;
        if (x->queued)
            return true;
        active++;
    }
    return active >= limit;
}

/* Lets queued executions of the pipeline start while slots are free. */
static void admit(pb_runner *r, const pb_scope *sc, const char *pipeline_arn)
{
    long limit = concurrency_limit(r, pipeline_arn);
    long active = 0;
    for (run *x = r->runs; x; x = x->next)
        if (same_scope(&x->scope, sc) && !strcmp(x->rec.pipeline_arn, pipeline_arn) && !x->queued)
            active++;
    for (run *x = r->runs; x; x = x->next) {
        if (limit && active >= limit)
            return;
        if (!x->queued || !same_scope(&x->scope, sc) || strcmp(x->rec.pipeline_arn, pipeline_arn))
            continue;
        pb__set(&x->rec.status, "Executing");
        pb__change c = {0};
        if (pb__change_commit(r, x, true, NULL, 0, NULL, 0, &c) != 0) {
            pb__set(&x->rec.status, "Queued");
            return;
        }
        x->queued = false;
        x->dirty = true;
        active++;
    }
}

/* ---------------------------------------------------------- thread -- */

/* Drives every run that needs it; frees finished ones. Returns true when
 * something should be looked at again at once (a queued run was admitted). */
static bool pass(pb_runner *r)
{
    bool again = false;
    run **px = &r->runs;
    while (*px) {
        run *x = *px;
        if (x->queued || (!x->dirty && x->loaded)) {
            px = &x->next;
            continue;
        }
        x->dirty = false;
        if (!pb__run_progress(r, x)) {
            px = &x->next;
            continue;
        }
        *px = x->next;
        char *parn = x->rec.pipeline_arn;
        x->rec.pipeline_arn = NULL;
        pb_scope sc = x->scope;
        char *acct = x->account, *reg = x->region;
        x->account = x->region = NULL;
        pb__run_free(r, x);
        if (parn) {
            admit(r, &sc, parn);
            again = true;
        }
        free(parn);
        free(acct);
        free(reg);
    }
    return again;
}

/* Whether a run needs the periodic sweep: a running process (timeouts, the
 * SIGKILL after a stop's grace period) or an end the store refused. */
static bool run_needs_sweep(const run *x)
{
    if (x->finish_pending)
        return true;
    for (size_t i = 0; x->loaded && i < x->def->nsteps; i++)
        if (x->steps[i].proc)
            return true;
    return false;
}

static bool any_sweep(const pb_runner *r)
{
    for (const run *x = r->runs; x; x = x->next)
        if (run_needs_sweep(x))
            return true;
    return false;
}

static void sweep(pb_runner *r)
{
    for (run *x = r->runs; x; x = x->next)
        if (run_needs_sweep(x))
            x->dirty = true;
}

static void *thread_main(void *arg)
{
    pb_runner *r = arg;
    struct epoll_event evs[64];
    int64_t last_sweep = mono_ms();
    pthread_mutex_lock(&r->mu);
    for (;;) {
        r->busy = true;
        bool again = pass(r);
        r->busy = false;
        pthread_cond_broadcast(&r->idle);
        if (r->quit)
            break;
        if (again)
            continue;
        int timeout = any_sweep(r) ? SWEEP_MS : -1;
        pthread_mutex_unlock(&r->mu);
        int n = epoll_wait(r->epfd, evs, 64, timeout);
        pthread_mutex_lock(&r->mu);
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                uint64_t v;
                while (read(r->wakefd, &v, sizeof v) < 0 && errno == EINTR)
                    ;
            } else {
                ((run_step *)evs[i].data.ptr)->run->dirty = true;
            }
        }
        int64_t now = mono_ms();
        if (now - last_sweep >= SWEEP_MS) {
            sweep(r);
            last_sweep = now;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void pb_runner_sync(pb_runner *r)
{
    pthread_mutex_lock(&r->mu);
    for (;;) {
        bool pending = r->busy;
        for (run *x = r->runs; x && !pending; x = x->next)
            pending = !x->queued && (x->dirty || !x->loaded);
        if (!pending || r->quit)
            break;
        pthread_cond_wait(&r->idle, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------- recovery -- */

static bool interrupted(const char *status)
{
    return status && (!strcmp(status, "Starting") || !strcmp(status, "Executing") || !strcmp(status, "Stopping"));
}

/* An execution a previous process left Executing or Stopping: steps that
 * were running are failed (and their leftover processes killed); the run is
 * queued for the thread, which finishes it or carries on. */
/* An interrupted execution that cannot be loaded again (its definition or
 * parameters no longer bind, a store error): its steps' leftover processes
 * are killed and the steps recorded Failed from the stored records alone,
 * before the execution is failed. */
static void recover_unloadable(pb_runner *r, run *x, const char *why)
{
    pb_step_rec *steps = NULL;
    size_t n = 0;
    if (r->store->ops->steps_list(r->store, &x->scope, x->rec.arn, &steps, &n) == 0) {
        int64_t now = pb__now_ms();
        for (size_t i = 0; i < n; i++) {
            pb_step_rec *rs = &steps[i];
            if (!interrupted(rs->status))
                continue;
            if (rs->pid > 0 && pb_proc_kill_orphan((pid_t)rs->pid, rs->pid_start))
                pb_log_info("killed the leftover process group %lld of step %s of %s", (long long)rs->pid,
                            rs->name, x->rec.arn);
            pb__set(&rs->status, "Failed");
            pb__set(&rs->failure_reason, RESTART_REASON);
            rs->end_ms = now;
            rs->pid = rs->pid_start = 0;
            if (r->store->ops->exec_change(r->store, &x->scope, x->rec.arn, NULL, rs, 1, NULL, 0, NULL, 0) != 0)
                pb_log_error("cannot record step %s of %s as failed", rs->name, x->rec.arn);
        }
    }
    pb_step_recs_free(steps, n);
    pb__run_fail_unloaded(r, x, why);
}

static void recover_one(pb_runner *r, run *x)
{
    pb_error err;
    pb_error_clear(&err);
    if (pb__run_load(r, x, &err)) {
        recover_unloadable(r, x, err.message);
        pb__run_free(r, x);
        return;
    }
    int64_t now = pb__now_ms();
    for (size_t i = 0; i < x->def->nsteps; i++) {
        run_step *rs = &x->steps[i];
        if (!interrupted(rs->status))
            continue;
        if (rs->pid > 0 && pb_proc_kill_orphan((pid_t)rs->pid, rs->pid_start))
            pb_log_info("killed the leftover process group %lld of step %s of %s", (long long)rs->pid,
                        x->def->steps[i].name, x->rec.arn);
        const char *prev = rs->status;
        rs->status = "Failed";
        rs->end_ms = now;
        rs->pid = rs->pid_start = 0;
        pb__set(&rs->failure, RESTART_REASON);
        pb__change c = {0};
        pb__change_step_event(&c, x, i, prev, "Failed", now);
        pb__change_commit(r, x, false, &i, 1, NULL, 0, &c);
    }
    x->dirty = true;
    run_append(r, x);
}

static int recover(pb_runner *r, pb_error *err)
{
    pb_exec_entry *v = NULL;
    size_t n = 0;
    int rc = r->store->ops->exec_unfinished(r->store, &v, &n);
    if (rc)
        return pb_error_set(err, rc, "cannot read the unfinished pipeline executions");
    for (size_t i = 0; i < n; i++) {
        pb_scope sc = {v[i].account, v[i].region};
        run *x = run_new(&sc, &v[i].exec);
        if (!x) {
            rc = pb_error_set(err, PB_ENOMEM, "out of memory");
            break;
        }
        if (!strcmp(x->rec.status, "Queued")) {
            x->queued = true;
            run_append(r, x);
        } else {
            recover_one(r, x);
        }
    }
    pb_exec_entries_free(v, n);
    for (run *x = r->runs; x; x = x->next)
        if (x->queued)
            admit(r, &x->scope, x->rec.pipeline_arn);
    if (n)
        pb_log_info("resumed %zu unfinished pipeline execution(s)", n);
    return rc;
}

/* ------------------------------------------------------ lifecycle -- */

int pb_runner_create(const pb_runner_config *cfg, pb_runner **out, pb_error *err)
{
    pb_runner *r = calloc(1, sizeof *r);
    if (!r)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    r->store = cfg->store;
    r->grace_ms = cfg->grace_ms;
    r->epfd = r->wakefd = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->cache_mu, NULL);
    pthread_cond_init(&r->idle, NULL);
    int rc = 0;
    char dir[PB_PROC_MAX_PATH];
    if (!(r->data_dir = strdup(cfg->data_dir))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto fail;
    }
    if ((size_t)snprintf(dir, sizeof dir, "%s/executions", cfg->data_dir) >= sizeof dir ||
        (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
        rc = pb_error_set(err, PB_EIO, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (r->epfd < 0 || r->wakefd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) != 0) {
        rc = pb_error_set(err, PB_EIO, "cannot create the runner's epoll set: %s", strerror(errno));
        goto fail;
    }
    if ((rc = recover(r, err)) != 0)
        goto fail;
    if (pthread_create(&r->thread, NULL, thread_main, r) != 0) {
        rc = pb_error_set(err, PB_EIO, "cannot start the runner thread");
        goto fail;
    }
    r->thread_started = true;
    *out = r;
    return 0;
fail:
    pb_runner_free(r);
    return rc;
}

void pb_runner_free(pb_runner *r)
{
    if (!r)
        return;
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->quit = true;
        pthread_mutex_unlock(&r->mu);
        wake(r);
        pthread_join(r->thread, NULL);
    }
    pthread_mutex_lock(&r->mu);
    while (r->runs) {
        run *x = r->runs;
        r->runs = x->next;
        pb__run_abort(r, x, SHUTDOWN_REASON);
        pb__run_free(r, x);
    }
    pthread_mutex_unlock(&r->mu);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->wakefd >= 0)
        close(r->wakefd);
    pb__defcache_free(r);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->cache_mu);
    pthread_mutex_destroy(&r->mu);
    free(r->data_dir);
    free(r);
}

/* ------------------------------------------------- the API's calls -- */

static int pipeline_not_found(const pb_scope *sc, const char *given, pb_error *err)
{
    char *arn = strncmp(given, "arn:", 4) ? pb_pipearn_pipeline(sc, given) : NULL;
    pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline '%s' does not exist.", arn ? arn : given);
    free(arn);
    return PB_ESM_NOTFOUND;
}

static int exec_not_found(const char *arn, pb_error *err)
{
    return pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline execution '%s' does not exist.", arn);
}

/* Reads the stored record of the execution exec_arn into *out (the caller's,
 * pb_exec_rec_free, also on failure). 0, PB_ESM_NOTFOUND, or the store's code. */
static int read_exec(pb_runner *r, const pb_scope *sc, const char *exec_arn, pb_exec_rec *out, pb_error *err)
{
    int rc = r->store->ops->exec_get(r->store, sc, exec_arn, out);
    if (rc == PB_ENOTFOUND)
        return exec_not_found(exec_arn, err);
    if (rc)
        return pb_error_set(err, rc, "cannot read %s", exec_arn);
    return 0;
}

/* Looks the pipeline up (version 0: latest). */
static int find_pipeline(pb_runner *r, const pb_runner_start_req *req, pb_pipeline_rec *p, pb_error *err)
{
    char name[2100];
    if (!pb_pipearn_name(req->scope, req->pipeline, name, sizeof name))
        return pipeline_not_found(req->scope, req->pipeline, err);
    int rc = r->store->ops->pipeline_get(r->store, req->scope, name, req->version_id, p);
    if (rc == PB_ENOTFOUND && req->version_id > 0 &&
        r->store->ops->pipeline_get(r->store, req->scope, name, 0, p) == 0) {
        pb_error_set(err, PB_ESM_NOTFOUND, "Pipeline version %lld of pipeline '%s' does not exist.",
                     (long long)req->version_id, p->arn);
        pb_pipeline_rec_free(p);
        return PB_ESM_NOTFOUND;
    }
    if (rc == PB_ENOTFOUND)
        return pipeline_not_found(req->scope, req->pipeline, err);
    if (rc)
        return pb_error_set(err, rc, "cannot read pipeline %s", name);
    return 0;
}

int pb_runner_start(pb_runner *r, const pb_runner_start_req *req, pb_exec_rec *out, bool *replayed,
                    pb_error *err)
{
    pb_pipeline_rec p = {0};
    pb_exec_rec rec = {0};
    pb_param_rec *params = NULL;
    const pb_pipedef *def = NULL;
    run *x = NULL;
    pb_arena tmp;
    pb_arena_init(&tmp);
    *replayed = false;
    memset(out, 0, sizeof *out);
    int rc = find_pipeline(r, req, &p, err);
    if (rc)
        goto out;
    if ((rc = pb_runner_definition(r, p.arn, p.version_id, p.definition, &def, err)) != 0)
        goto out;
    pb_pipedef_args args;
    if ((rc = pb_pipedef_bind(def, req->params, req->nparams, &tmp, &args, err)) != 0)
        goto out;
    if (!(params = calloc(def->nparams ? def->nparams : 1, sizeof *params))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < def->nparams; i++)
        params[i] = (pb_param_rec){(char *)def->params[i].name, (char *)args.values[i].str};

    char id[13], display[40];
    pb_pipearn_exec_id(id);
    snprintf(display, sizeof display, "execution-%lld", (long long)req->now_ms);
    rec.id = strdup(id);
    rec.arn = pb_pipearn_execution(p.arn, id);
    rec.pipeline_name = strdup(p.name);
    rec.pipeline_arn = strdup(p.arn);
    rec.version_id = p.version_id;
    rec.display_name = strdup(req->display_name ? req->display_name : display);
    rec.description = req->description ? strdup(req->description) : NULL;
    rec.client_token = strdup(req->client_token);
    rec.max_parallel = req->max_parallel;
    rec.created_ms = rec.modified_ms = req->now_ms;
    if (!rec.id || !rec.arn || !rec.pipeline_name || !rec.pipeline_arn || !rec.display_name || !rec.client_token ||
        (req->description && !rec.description) || !(x = run_new(req->scope, &rec))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&r->mu);
    x->queued = must_queue(r, req->scope, p.arn);
    x->rec.status = strdup(x->queued ? "Queued" : "Executing");
    pb__change c = {0};
    pb__change_exec_event(&c, x, NULL, "Executing", req->now_ms);
    pb_outbox_event ev[1];
    if (c.err || !x->rec.status) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
    } else {
        ev[0] = (pb_outbox_event){"default", c.texts[0]};
        rc = r->store->ops->exec_create(r->store, req->scope, &x->rec, params, def->nparams, ev, 1, out);
    }
    pb__change_free(&c);
    if (!rc && r->event_hook)
        r->event_hook(r->event_hook_ctx);
    if (rc == PB_EEXISTS) {
        *replayed = true; /* *out is the execution that token started */
        rc = 0;
    } else if (rc == PB_ENOTFOUND) {
        rc = pipeline_not_found(req->scope, req->pipeline, err);
    } else if (rc) {
        pb_error_set(err, rc, "cannot record the pipeline execution");
    } else if ((rc = exec_dup(&x->rec, out)) != 0) {
        /* recorded: it will run; only the answer failed */
        pb_error_set(err, rc, "out of memory");
        run_append(r, x);
        x = NULL;
        wake(r);
    } else {
        x->dirty = !x->queued;
        run_append(r, x);
        x = NULL;
        wake(r);
    }
    pthread_mutex_unlock(&r->mu);
out:
    if (x)
        pb__run_free(r, x);
    pb_runner_definition_release(r, def);
    pb_exec_rec_free(&rec);
    pb_pipeline_rec_free(&p);
    free(params);
    pb_arena_free(&tmp);
    return rc;
}

int pb_runner_stop(pb_runner *r, const pb_scope *sc, const char *exec_arn, int64_t now_ms, pb_error *err)
{
    pthread_mutex_lock(&r->mu);
    int rc;
    run *x = run_find(r, sc, exec_arn);
    if (x) {
        rc = pb__run_stop(r, x, now_ms, err);
        if (rc == 1) {
            run_unlink(r, x);
            char *parn = strdup(x->rec.pipeline_arn);
            pb__run_free(r, x);
            if (parn)
                admit(r, sc, parn);
            free(parn);
            rc = 0;
        }
        wake(r);
    } else {
        pb_exec_rec e = {0};
        rc = read_exec(r, sc, exec_arn, &e, err);
        if (rc == 0)
            rc = pb_error_set(err, PB_ESM_CONFLICT,
                              "Pipeline execution '%s' is %s: only an Executing pipeline execution can be stopped.",
                              e.arn, e.status);
        pb_exec_rec_free(&e);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int pb_runner_retry(pb_runner *r, const pb_scope *sc, const char *exec_arn, int64_t max_parallel, int64_t now_ms,
                    pb_error *err)
{
    pb_exec_rec e = {0};
    pb_step_rec *steps = NULL;
    size_t nsteps = 0;
    int64_t *reset = NULL;
    size_t nreset = 0;
    run *x = NULL;
    pthread_mutex_lock(&r->mu);
    int rc;
    if ((x = run_find(r, sc, exec_arn)) != NULL) {
        x = NULL;
        rc = pb_error_set(err, PB_ESM_CONFLICT,
                          "Pipeline execution '%s' is still running: only a Failed pipeline execution can be "
                          "retried.",
                          exec_arn);
        goto out;
    }
    if ((rc = read_exec(r, sc, exec_arn, &e, err)))
        goto out;
    if (strcmp(e.status, "Failed") != 0) {
        rc = pb_error_set(err, PB_ESM_CONFLICT,
                          "Pipeline execution '%s' is %s: only a Failed pipeline execution can be retried.", e.arn,
                          e.status);
        goto out;
    }
    if (e.fail_step) {
        rc = pb_error_set(err, PB_ESM_CONFLICT,
                          "Pipeline execution '%s' ended in a Fail step and cannot be retried.", e.arn);
        goto out;
    }
    if ((rc = r->store->ops->steps_list(r->store, sc, e.arn, &steps, &nsteps)) != 0) {
        pb_error_set(err, rc, "cannot read the steps of %s", e.arn);
        goto out;
    }
    if (!(reset = calloc(nsteps ? nsteps : 1, sizeof *reset)) || !(x = run_new(sc, &e))) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nsteps; i++)
        if (strcmp(steps[i].status, "Succeeded") != 0)
            reset[nreset++] = steps[i].index;
    x->queued = must_queue(r, sc, x->rec.pipeline_arn);
    pb__set(&x->rec.status, x->queued ? "Queued" : "Executing");
    pb__set(&x->rec.failure_reason, NULL);
    x->rec.end_ms = 0;
    if (max_parallel > 0)
        x->rec.max_parallel = max_parallel;
    pb__change c = {0};
    pb__change_exec_event(&c, x, "Failed", "Executing", now_ms);
    if ((rc = pb__change_commit(r, x, true, NULL, 0, reset, nreset, &c)) != 0) {
        if (rc == PB_ENOTFOUND) /* deleted (with its pipeline) since it was read */
            rc = exec_not_found(exec_arn, err);
        else
            pb_error_set(err, rc, "cannot record the retry of %s", exec_arn);
        goto out;
    }
    x->dirty = !x->queued;
    run_append(r, x);
    x = NULL;
    wake(r);
out:
    if (x)
        pb__run_free(r, x);
    pthread_mutex_unlock(&r->mu);
    pb_exec_rec_free(&e);
    pb_step_recs_free(steps, nsteps);
    free(reset);
    return rc;
}

int pb_runner_update(pb_runner *r, const pb_scope *sc, const char *exec_arn, const char *display_name,
                     const char *description, int64_t max_parallel, pb_exec_rec *out, pb_error *err)
{
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    pb_exec_rec stored = {0};
    pb_exec_rec *e;
    run *x = run_find(r, sc, exec_arn);
    if (x) {
        e = &x->rec;
    } else {
        if ((rc = read_exec(r, sc, exec_arn, &stored, err)))
            goto out;
        e = &stored;
    }
    if (display_name)
        pb__set(&e->display_name, display_name);
    if (description)
        pb__set(&e->description, description);
    if (max_parallel > 0) {
        e->max_parallel = max_parallel;
        if (x && x->loaded)
            x->max_parallel = (unsigned)max_parallel;
    }
    e->modified_ms = pb__now_ms();
    rc = r->store->ops->exec_change(r->store, sc, e->arn, e, NULL, 0, NULL, 0, NULL, 0);
    if (rc == PB_ENOTFOUND) { /* deleted (with its pipeline) since it was read */
        rc = exec_not_found(exec_arn, err);
        goto out;
    }
    if (rc) {
        pb_error_set(err, rc, "cannot update %s", exec_arn);
        goto out;
    }
    if (out && (rc = exec_dup(e, out)) != 0)
        pb_error_set(err, rc, "out of memory");
    if (x) {
        x->dirty = true; /* a larger MaxParallelExecutionSteps may start steps now */
        wake(r);
    }
out:
    pthread_mutex_unlock(&r->mu);
    pb_exec_rec_free(&stored);
    return rc;
}

void pb_runner_pipeline_changed(pb_runner *r, const pb_scope *sc, const char *pipeline_arn)
{
    pthread_mutex_lock(&r->mu);
    admit(r, sc, pipeline_arn);
    pthread_mutex_unlock(&r->mu);
    wake(r);
}

void pb_runner_set_event_hook(pb_runner *r, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&r->mu);
    r->event_hook = fn;
    r->event_hook_ctx = ctx;
    pthread_mutex_unlock(&r->mu);
}
