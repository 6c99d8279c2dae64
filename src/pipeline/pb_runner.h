/*
 * pb_runner.h — the local pipeline runner: executions of SageMaker pipeline
 * definitions as DAGs of local processes.
 *
 * One runner thread owns every active execution. It starts the steps that
 * pb_pipedef_plan says are ready (Processing / Training steps as processes
 * through pb_proc, in a working directory of their own under
 * <data_dir>/executions/<execution-id>/<step-name>/, with stdout.log and
 * stderr.log there), evaluates Condition and Fail steps, watches the
 * processes (pidfds in an epoll set, and a periodic sweep for
 * MaxRuntimeInSeconds and stop grace periods), and records every status
 * change in the store together with the SageMaker status-change event
 * (AWS-SPEC §3.2), which goes to the store's event outbox in the same
 * transaction.
 *
 * The API threads call pb_runner_start / _stop / _retry. They check their
 * input, write what must be durable before the caller is answered, and wake
 * the runner thread through an eventfd; the runner's mutex orders them with
 * the runner thread's own changes to the same execution.
 *
 * Beyond AWS: a pipeline tagged "pipebridge:MaxConcurrentExecutions" = N
 * runs at most N executions at once; later ones wait, in the order they
 * were started, with status "Queued" in the store (Executing in the API).
 *
 * Start-up (pb_runner_create) recovers what a previous process left:
 * steps that were running are marked Failed ("pipebridge restarted while the
 * step was running") and their leftover process groups killed; an execution
 * with such a step becomes Failed (Stopped if it was Stopping) and can be
 * retried; executions that had no step running continue. Shutdown
 * (pb_runner_free) stops running steps the same way (SIGTERM, then SIGKILL),
 * records them Failed ("pipebridge shut down while the step was running")
 * and their executions Failed.
 *
 * Ownership: the runner borrows the store (which must outlive it) and owns
 * its thread, its processes and a cache of parsed definitions.
 */
#ifndef PB_RUNNER_H
#define PB_RUNNER_H

#include "common/pb_error.h"
#include "pipeline/pb_pipedef.h"
#include "store/pb_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_runner pb_runner;

/* The tag that limits concurrent executions of a pipeline (value: 1..1000). */
#define PB_RUNNER_CONCURRENCY_TAG "pipebridge:MaxConcurrentExecutions"
#define PB_RUNNER_MAX_CONCURRENCY 1000

typedef struct pb_runner_config {
    pb_store *store;      /* borrowed */
    const char *data_dir; /* working directories go under <data_dir>/executions */
    int grace_ms;         /* SIGTERM -> SIGKILL for stops; 0: PB_PROC_DEFAULT_GRACE_MS */
} pb_runner_config;

/* Creates the runner, recovers unfinished executions (see above) and starts
 * its thread. Codes: PB_ENOMEM, PB_EIO (store, directories, thread). */
int pb_runner_create(const pb_runner_config *cfg, pb_runner **out, pb_error *err);

/* Stops the thread, ends running steps as described above and frees the
 * runner. NULL is fine. */
void pb_runner_free(pb_runner *r);

/* StartPipelineExecution's input, already checked against the API's member
 * constraints (lengths, patterns). Strings are borrowed. */
typedef struct pb_runner_start_req {
    const pb_scope *scope;
    const char *pipeline;        /* name or ARN */
    const char *client_token;    /* required */
    const pb_pipedef_kv *params; /* PipelineParameters */
    size_t nparams;
    const char *display_name;    /* NULL: "execution-<ms>" */
    const char *description;     /* optional */
    int64_t max_parallel;        /* ParallelismConfiguration; 0: the pipeline's */
    int64_t version_id;          /* PipelineVersionId; 0: the latest */
    int64_t now_ms;
} pb_runner_start_req;

/* Starts an execution: the pipeline must exist (PB_ESM_NOTFOUND "Pipeline
 * '<arn>' does not exist."), its parameters bind (PB_EVALIDATION with
 * pb_pipedef_bind's message, no execution); the execution, its parameters and
 * its Executing event are committed before this returns, and the runner is
 * woken. A token already used for this pipeline returns that execution and
 * starts nothing (*replayed = true). *out (caller frees with pb_exec_rec_free)
 * is the execution. */
int pb_runner_start(pb_runner *r, const pb_runner_start_req *req, pb_exec_rec *out, bool *replayed,
                    pb_error *err);

/* StopPipelineExecution: an Executing (or Queued) execution becomes Stopping
 * at once (committed with its event), its running steps get SIGTERM, and it
 * becomes Stopped when they have ended. Stopping an execution that is already
 * Stopping is accepted; a finished one is PB_ESM_CONFLICT; unknown
 * PB_ESM_NOTFOUND. */
int pb_runner_stop(pb_runner *r, const pb_scope *sc, const char *exec_arn, int64_t now_ms, pb_error *err);

/* RetryPipelineExecution: a Failed execution (not ended by a Fail step) runs
 * its failed and stopped steps again, keeping those that succeeded; it is
 * Executing again when this returns. max_parallel > 0 replaces its
 * ParallelismConfiguration. PB_ESM_CONFLICT for any other status or a Fail
 * step ending; PB_ESM_NOTFOUND. */
int pb_runner_retry(pb_runner *r, const pb_scope *sc, const char *exec_arn, int64_t max_parallel, int64_t now_ms,
                    pb_error *err);

/* UpdatePipelineExecution: replaces the display name / description (NULL:
 * unchanged) and, when max_parallel > 0, the ParallelismConfiguration (a
 * running execution uses it for the steps it starts from now on). Goes
 * through the runner so that its own later writes keep the change.
 * PB_ESM_NOTFOUND for an unknown execution. *out (optional; caller frees)
 * is the updated execution. */
int pb_runner_update(pb_runner *r, const pb_scope *sc, const char *exec_arn, const char *display_name,
                     const char *description, int64_t max_parallel, pb_exec_rec *out, pb_error *err);

/* Tell the runner a pipeline's tags changed: executions waiting under its
 * concurrency limit start if the new limit allows. */
void pb_runner_pipeline_changed(pb_runner *r, const pb_scope *sc, const char *pipeline_arn);

/* The parsed definition of a pipeline version, from the runner's cache
 * (parsing text on a miss). The caller releases it with
 * pb_runner_definition_release. Codes: PB_EVALIDATION, PB_ENOMEM. */
int pb_runner_definition(pb_runner *r, const char *pipeline_arn, int64_t version_id, const char *text,
                         const pb_pipedef **out, pb_error *err);
void pb_runner_definition_release(pb_runner *r, const pb_pipedef *def);

/* Sets a function called after status-change events were committed to the
 * store's outbox, so delivery can take them. It runs with the runner's lock
 * held: fn must only note that events wait (never call into the runner).
 * NULL removes it (do so before what ctx points to goes away). */
void pb_runner_set_event_hook(pb_runner *r, void (*fn)(void *ctx), void *ctx);

/* Waits until the runner thread has nothing left to do right now (every
 * queued command processed) — for tests and benchmarks. */
void pb_runner_sync(pb_runner *r);

#endif
