/*
 * runner_internal.h — what the runner's files share.
 *
 * runner.c: lifecycle, the thread's loop, the API entry points (start, stop,
 * retry), admission under the concurrency tag, recovery and shutdown.
 * runner_steps.c: one execution's progress — loading it from the store,
 * starting steps (processes, conditions, fail steps), collecting ended
 * processes, finishing the execution — and the store changes with their
 * status-change events. runner_defs.c: the cache of parsed definitions.
 *
 * Locking: everything in struct pb_runner and in the runs is guarded by
 * pb_runner.mu, held by the runner thread while it works and by the API
 * entry points; the definition cache has its own lock.
 */
#ifndef PB_RUNNER_INTERNAL_H
#define PB_RUNNER_INTERNAL_H

#include "pipeline/pb_pipearn.h"
#include "pipeline/pb_pipeevent.h"
#include "pipeline/pb_proc.h"
#include "pipeline/pb_runner.h"

#include <pthread.h>

struct run;

/* One step of a loaded execution. */
typedef struct run_step {
    struct run *run;        /* back pointers, for epoll events */
    size_t index;
    pb_proc *proc;          /* while its process runs */
    const char *status;     /* last recorded StepStatus (static), NULL: no record */
    int64_t start_ms, end_ms;
    int64_t attempts;
    int64_t pid, pid_start;
    char *failure;          /* owned */
    char *metadata;         /* owned JSON */
    char *props;            /* owned JSON: the Describe*-like properties */
    const pb_json *props_doc; /* props parsed (in the run's arena), lazily */
    char *out_path, *err_path; /* owned */
} run_step;

/* One execution the runner knows: queued, not yet loaded, or running. */
typedef struct run {
    struct run *next;
    char *account, *region; /* owned; scope points at them */
    pb_scope scope;
    pb_exec_rec rec;        /* the execution as last written (owned) */
    bool queued;            /* waiting for a slot (status Queued) */
    bool loaded;            /* def, plan, args and steps are set */
    bool dirty;             /* the thread should look at it */
    bool stop_requested;
    bool finish_pending;    /* its final commit failed: tried again at every sweep */
    const pb_pipedef *def;  /* from the cache */
    pb_pipedef_plan plan;
    pb_arena arena;         /* bound arguments, parsed properties */
    pb_pipedef_args args;
    run_step *steps;        /* def->nsteps */
    unsigned max_parallel;
    char start_time[40];    /* Execution.StartDateTime */
    char now_time[40];      /* Execution.CurrentDateTime, at the last step start */
    char *dir;              /* <data_dir>/executions/<id> */
} run;

typedef struct defcache_entry {
    struct defcache_entry *next;
    char *arn;
    int64_t version;
    uint64_t text_hash;     /* a pipeline deleted and created again restarts at version 1 */
    size_t text_len;
    pb_pipedef *def;
    unsigned refs;
    uint64_t used;
} defcache_entry;

struct pb_runner {
    pb_store *store;
    char *data_dir;
    int grace_ms;
    pthread_mutex_t mu;
    pthread_cond_t idle;    /* broadcast after each pass of the thread */
    pthread_t thread;
    bool thread_started;
    bool quit;
    bool busy;
    int epfd, wakefd;
    run *runs;              /* in the order they were started (FIFO for the queue) */

    void (*event_hook)(void *ctx); /* events were committed (pb_runner_set_event_hook) */
    void *event_hook_ctx;

    pthread_mutex_t cache_mu;
    defcache_entry *cache;
    uint64_t cache_clock;
};

/* runner_steps.c */

/* Loads a run's definition, arguments and steps from the store (the run's
 * rec must be set). Codes as the store's, PB_EVALIDATION for a definition or
 * parameter that no longer binds. */
int pb__run_load(pb_runner *r, run *x, pb_error *err);

/* Collects ended processes, starts what is ready, and finishes the execution
 * when nothing is left; returns true when the run has finished (the caller
 * unlinks and frees it). */
bool pb__run_progress(pb_runner *r, run *x);

/* Finishes a run that could not be loaded: Failed with reason. */
void pb__run_fail_unloaded(pb_runner *r, run *x, const char *reason);

/* Stop: records Stopping for the execution and its running steps and
 * signals their processes; a queued run becomes Stopped at once. Returns 1
 * when the run has finished (the caller unlinks and frees it), 0, or a
 * store error. */
int pb__run_stop(pb_runner *r, run *x, int64_t now_ms, pb_error *err);

/* Shutdown: stops the run's processes, waits for them, records them Failed
 * with reason, and the execution Failed. */
void pb__run_abort(pb_runner *r, run *x, const char *reason);

/* The events of one store change of an execution, built before it is
 * committed (each a malloc'd envelope). A failure to build one is kept in
 * err and makes the commit fail. */
typedef struct pb__change {
    char **texts;
    size_t nev, cap;
    int err;
} pb__change;

void pb__change_free(pb__change *c);
void pb__change_exec_event(pb__change *c, const run *x, const char *prev, const char *cur, int64_t now_ms);
void pb__change_step_event(pb__change *c, const run *x, size_t idx, const char *prev, const char *cur,
                           int64_t now_ms);
/* Commits in one transaction: x->rec (when with_exec), the records of steps
 * steps[0..nsteps), the deletion of step records reset[0..nreset), and the
 * events; frees c's events. A failure is logged and returned. */
int pb__change_commit(pb_runner *r, run *x, bool with_exec, const size_t *steps, size_t nsteps,
                      const int64_t *reset, size_t nreset, pb__change *c);

/* Replaces a malloc'd string member with a copy of v (NULL clears). */
void pb__set(char **field, const char *v);

/* Frees a run (killing a process still running) and releases its definition. */
void pb__run_free(pb_runner *r, run *x);

/* runner_defs.c */
void pb__defcache_free(pb_runner *r);

/* "2026-11-25T06:40:00.123Z" */
void pb__iso_time(int64_t ms, char out[40]);
int64_t pb__now_ms(void);

#endif
