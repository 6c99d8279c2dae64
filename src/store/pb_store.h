/*
 * pb_store.h — where pipebridge keeps its state, behind a table of functions.
 *
 * The API layer talks to a pb_store through pb_store_ops, so SQLite (the
 * embedded default) and, later, PostgreSQL are interchangeable. Every
 * function that writes is one transaction: it is applied whole or not at all,
 * and once it returns 0 the change survives a crash (kill -9).
 *
 * Resources are scoped by (account, region): the account of the caller's
 * access key and the region of its SigV4 credential scope, as in AWS.
 * Records returned to the caller are owned by the caller and released with
 * the matching *_free function. Strings in records are NUL-terminated UTF-8;
 * optional members are NULL when unset.
 */
#ifndef PB_STORE_H
#define PB_STORE_H

#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_store pb_store;

typedef struct pb_scope {
    const char *account; /* 12 digits */
    const char *region;  /* e.g. "us-east-1" */
} pb_scope;

typedef struct pb_tag {
    char *key;
    char *value;
} pb_tag;

typedef struct pb_bus_rec {
    char *name;
    char *arn;
    char *description;   /* optional */
    char *extra_json;    /* optional: other members echoed back (KmsKeyIdentifier, DeadLetterConfig, LogConfig) as a JSON object */
    int64_t created_ms;  /* milliseconds since the epoch */
    int64_t modified_ms;
} pb_bus_rec;

typedef struct pb_rule_rec {
    char *bus;           /* bus name */
    char *name;
    char *arn;
    char *event_pattern; /* optional, as given */
    char *schedule;      /* optional */
    char *state;         /* "ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" */
    char *description;   /* optional */
    char *role_arn;      /* optional */
    char *managed_by;    /* optional */
    char *created_by;    /* account id */
    int64_t created_ms;
    int64_t modified_ms;
} pb_rule_rec;

typedef struct pb_target_rec {
    char *id;
    char *arn;
    char *json;          /* the whole Target object as stored (compact JSON), echoed back as is */
} pb_target_rec;

/* A rule with its scope, for loading every rule at start-up. */
typedef struct pb_rule_entry {
    char *account;
    char *region;
    pb_rule_rec rule;
} pb_rule_entry;


/* ------------------------------------------------- SageMaker pipelines -- */

/* A pipeline and its latest version (or the version asked for). Names are
 * unique within a scope regardless of case, as in SageMaker; the ARN holds
 * the name in lowercase ("arn:aws:sagemaker:REGION:ACCOUNT:pipeline/name"). */
typedef struct pb_pipeline_rec {
    char *name;           /* as given to CreatePipeline */
    char *arn;            /* lowercase */
    char *display_name;   /* optional */
    char *description;    /* optional */
    char *role_arn;
    char *definition;     /* the PipelineDefinition of version_id */
    int64_t version_id;   /* >= 1; each UpdatePipeline adds one */
    int64_t max_parallel; /* ParallelismConfiguration.MaxParallelExecutionSteps; 0: none */
    char *client_token;   /* CreatePipeline's ClientRequestToken (replays) */
    int64_t created_ms;
    int64_t modified_ms;
    int64_t last_run_ms;  /* last StartPipelineExecution; 0: never */
} pb_pipeline_rec;

/* One execution. status is a SageMaker execution status, or "Queued" (ours:
 * waiting for a slot under the pipeline's concurrent-execution limit; the API
 * shows it as Executing). */
typedef struct pb_exec_rec {
    char *id;             /* 12 characters [a-z0-9] */
    char *arn;            /* pipeline ARN + "/execution/" + id */
    char *pipeline_name;
    char *pipeline_arn;
    int64_t version_id;   /* the pipeline version it runs */
    char *display_name;   /* PipelineExecutionDisplayName (default "execution-<ms>") */
    char *description;    /* optional */
    char *status;         /* "Queued" | "Executing" | "Stopping" | "Stopped" | "Failed" | "Succeeded" */
    char *failure_reason; /* optional */
    char *client_token;   /* StartPipelineExecution's ClientRequestToken */
    int64_t max_parallel; /* ParallelismConfiguration of the start (or retry); 0: the pipeline's */
    bool fail_step;       /* it ended in a Fail step (cannot be retried) */
    int64_t created_ms;
    int64_t modified_ms;
    int64_t end_ms;       /* 0 while not finished */
} pb_exec_rec;

/* One step of an execution, as far as it has run. Steps that never started
 * have no record. */
typedef struct pb_step_rec {
    int64_t index;         /* the step's index in the parsed definition (pb_pipedef.steps) */
    char *name;
    char *type;            /* "Processing" | "Training" | "Condition" | "Fail" */
    char *display_name;    /* optional */
    char *description;     /* optional */
    char *status;          /* "Starting" | "Executing" | "Stopping" | "Stopped" | "Failed" | "Succeeded" */
    int64_t start_ms;
    int64_t end_ms;        /* 0 while running */
    char *failure_reason;  /* optional */
    char *metadata_json;   /* optional: the Metadata object of ListPipelineExecutionSteps */
    char *properties_json; /* optional: what {"Get": "Steps.NAME..."} reads (a Describe* response) */
    int64_t attempt_count; /* >= 1 once started */
    char *stdout_path;     /* optional: log files of a process step */
    char *stderr_path;
    int64_t pid;           /* a running process step: its pid (= process group), else 0 */
    int64_t pid_start;     /* that process's start time in clock ticks (/proc/PID/stat field 22) */
} pb_step_rec;

/* A pipeline parameter value of an execution. */
typedef struct pb_param_rec {
    char *name;
    char *value;
} pb_param_rec;

/* An unfinished execution with its scope (restart recovery). */
typedef struct pb_exec_entry {
    char *account;
    char *region;
    pb_exec_rec exec;
} pb_exec_entry;

/* An event waiting in the outbox for delivery onto a bus (AWS-SPEC §3.1
 * envelope, compact JSON). seq increases in commit order. */
typedef struct pb_outbox_rec {
    int64_t seq;
    char *account;
    char *region;
    char *bus;
    char *event_json;
    int64_t created_ms;
} pb_outbox_rec;

/* Events written in the same transaction as a change (the status-change
 * events of pipelines); delivered later from the outbox. */
typedef struct pb_outbox_event {
    const char *bus;  /* "default" */
    const char *json; /* the whole envelope */
} pb_outbox_event;

/* ------------------------------------------------------------- delivery -- */

/* One target invocation an event caused: a matched rule's target, to be
 * delivered at least once. The target is kept as it was when the event
 * matched (a later PutTargets does not change what is in flight). */
typedef struct pb_invocation_rec {
    int64_t id;            /* assigned by invocations_add (> 0) */
    char *account;
    char *region;
    char *bus;             /* the bus the event matched on */
    char *rule_arn;
    char *rule_name;
    char *target_id;
    char *target_arn;
    char *target_json;     /* the whole Target object (compact JSON) */
    char *event_id;
    char *event_json;      /* the original event envelope */
    int64_t ingested_ms;   /* when the event was accepted */
    int64_t attempts;      /* attempts made so far */
    int64_t next_ms;       /* when the next attempt is due */
    int64_t hops;          /* event-bus targets passed on the way here (loop guard) */
    char *last_error_code; /* optional: the last failed attempt's */
    char *last_error_message;
} pb_invocation_rec;

/* An invocation that failed for good, kept for a target with a
 * DeadLetterConfig (AWS-SPEC §8 attributes). */
typedef struct pb_dead_letter_rec {
    int64_t id;
    char *dlq_arn;         /* DeadLetterConfig.Arn */
    char *account;
    char *region;
    char *bus;
    char *rule_arn;
    char *rule_name;
    char *target_id;
    char *target_arn;
    char *target_json;
    char *event_id;
    char *event_json;
    char *payload;         /* optional: what the target would have received (Input/InputPath/InputTransformer) */
    char *error_code;      /* ERROR_CODE, e.g. "NO_RESOURCE" */
    char *error_message;
    char *exhausted;       /* optional: "MaximumRetryAttempts" | "MaximumEventAgeInSeconds" */
    int64_t attempts;      /* RETRY_ATTEMPTS: attempts made */
    int64_t ingested_ms;
    int64_t created_ms;    /* when it became a dead letter */
} pb_dead_letter_rec;

/* A schedule rule's tick that has fired: the newest scheduled fire time
 * (ms since the epoch) whose invocations entered delivery. */
typedef struct pb_tick_rec {
    char *account;
    char *region;
    char *bus;
    char *rule;            /* rule name */
    int64_t tick_ms;
} pb_tick_rec;

struct pb_store_ops {
    void (*close)(pb_store *s);

    /* Buses. create: PB_EEXISTS if present. get/delete: PB_ENOTFOUND.
     * delete: PB_ECONFLICT when rules remain on the bus; removes the bus's tags.
     * list: names > after (NULL: from the start) starting with prefix (NULL: any),
     * ascending by name, at most limit; *more says whether further records exist. */
    int (*bus_create)(pb_store *s, const pb_scope *sc, const pb_bus_rec *b, const pb_tag *tags, size_t ntags);
    int (*bus_get)(pb_store *s, const pb_scope *sc, const char *name, pb_bus_rec *out);
    int (*bus_delete)(pb_store *s, const pb_scope *sc, const char *name);
    int (*bus_list)(pb_store *s, const pb_scope *sc, const char *prefix, const char *after, size_t limit,
                    pb_bus_rec **out, size_t *n, bool *more);

    /* Rules. put: insert or fully replace (keeping created_ms, created_by and
     * targets); tags are applied only when the rule is created; *created says
     * which happened; PB_ENOTFOUND if the bus does not exist.
     * delete: PB_ENOTFOUND if absent; PB_ECONFLICT if targets remain; removes its tags.
     * set_state: PB_ENOTFOUND if absent. */
    int (*rule_put)(pb_store *s, const pb_scope *sc, const pb_rule_rec *r, const pb_tag *tags, size_t ntags,
                    bool *created);
    int (*rule_get)(pb_store *s, const pb_scope *sc, const char *bus, const char *name, pb_rule_rec *out);
    int (*rule_delete)(pb_store *s, const pb_scope *sc, const char *bus, const char *name);
    int (*rule_set_state)(pb_store *s, const pb_scope *sc, const char *bus, const char *name, const char *state);
    int (*rule_list)(pb_store *s, const pb_scope *sc, const char *bus, const char *prefix, const char *after,
                     size_t limit, pb_rule_rec **out, size_t *n, bool *more);
    /* every rule of every scope and bus (start-up) */
    int (*rule_list_all)(pb_store *s, pb_rule_entry **out, size_t *n);

    /* Targets of a rule. put: upsert by id, all or nothing; PB_ELIMIT if the
     * rule would then have more than max_targets; PB_ENOTFOUND if the rule is
     * absent. remove: ids not present are ignored. list: ids > after, ascending. */
    int (*targets_put)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule, const pb_target_rec *t,
                       size_t n, size_t max_targets);
    int (*targets_remove)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule,
                          const char *const *ids, size_t n);
    int (*targets_list)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule, const char *after,
                        size_t limit, pb_target_rec **out, size_t *n, bool *more);
    /* names of the rules on bus with a target whose arn equals target_arn */
    int (*rules_by_target)(pb_store *s, const pb_scope *sc, const char *bus, const char *target_arn,
                           const char *after, size_t limit, char ***names, size_t *n, bool *more);

    /* Tags by resource ARN (the caller checks the resource exists). set:
     * overwrite existing keys, all or nothing; PB_ELIMIT if the resource would
     * then have more than max_tags. list: ascending by key. */
    int (*tags_set)(pb_store *s, const char *arn, const pb_tag *tags, size_t n, size_t max_tags);
    int (*tags_remove)(pb_store *s, const char *arn, const char *const *keys, size_t n);
    int (*tags_list)(pb_store *s, const char *arn, pb_tag **out, size_t *n);

    /* SageMaker pipelines. Names compare without regard to case.
     * create: version 1; PB_EEXISTS when the name is taken. get: version 0 is
     * the latest; PB_ENOTFOUND for an unknown name or version. update: fields of
     * `changes` that are NULL (strings) or < 0 (max_parallel) stay as they are;
     * a definition NULL keeps the current one; always adds a version, written
     * to *version. delete: PB_ECONFLICT while an execution is Queued,
     * Executing or Stopping; removes its versions, executions (with steps and
     * parameters) and tags. list: every pipeline of the scope, by name (without
     * regard to case), each with its latest version_id but no definition (NULL). */
    int (*pipeline_create)(pb_store *s, const pb_scope *sc, const pb_pipeline_rec *p, const pb_tag *tags,
                           size_t ntags);
    int (*pipeline_get)(pb_store *s, const pb_scope *sc, const char *name, int64_t version, pb_pipeline_rec *out);
    int (*pipeline_update)(pb_store *s, const pb_scope *sc, const char *name, const pb_pipeline_rec *changes,
                           int64_t *version);
    int (*pipeline_delete)(pb_store *s, const pb_scope *sc, const char *name);
    int (*pipeline_list)(pb_store *s, const pb_scope *sc, pb_pipeline_rec **out, size_t *n);

    /* Executions. create: inserts e (status Queued or Executing) with its
     * parameters and events, and sets the pipeline's last_run_ms, in one
     * transaction; PB_ENOTFOUND when the pipeline is gone; PB_EEXISTS when the
     * pipeline already has an execution with e->client_token (then *existing,
     * if non-NULL, is filled with it; it is filled in no other case); PB_ECONFLICT
     * when e->arn is taken by an execution with another token (draw a new id).
     * get: by ARN (compared without regard to case; stored lowercase);
     * PB_ENOTFOUND. list: the pipeline's executions, newest first; PB_ENOTFOUND
     * when the pipeline does not exist.
     * unfinished: every Queued, Executing or Stopping execution of every scope,
     * oldest first (the order they were created). */
    int (*exec_create)(pb_store *s, const pb_scope *sc, const pb_exec_rec *e, const pb_param_rec *params,
                       size_t nparams, const pb_outbox_event *events, size_t nevents, pb_exec_rec *existing);
    int (*exec_get)(pb_store *s, const pb_scope *sc, const char *arn, pb_exec_rec *out);
    int (*exec_list)(pb_store *s, const pb_scope *sc, const char *pipeline_name, pb_exec_rec **out, size_t *n);
    int (*exec_unfinished)(pb_store *s, pb_exec_entry **out, size_t *n);

    /* One transaction for a change of an execution: exec (NULL: unchanged)
     * replaces the execution's mutable fields (display_name, description,
     * status, failure_reason, max_parallel, fail_step, modified_ms, end_ms; a
     * NULL display_name or status keeps the current one, a NULL description or
     * failure_reason clears it); steps[0..nsteps) are upserted by (execution,
     * index), each replacing the whole record; steps_reset deletes the
     * execution's step records whose index is listed (a retry runs them again),
     * before the upserts; events go to the outbox. PB_ENOTFOUND when the
     * execution is gone. */
    int (*exec_change)(pb_store *s, const pb_scope *sc, const char *exec_arn, const pb_exec_rec *exec,
                       const pb_step_rec *steps, size_t nsteps, const int64_t *steps_reset, size_t nreset,
                       const pb_outbox_event *events, size_t nevents);
    /* The step records of an execution, by start time then index; its
     * parameters in the order given. PB_ENOTFOUND when the execution is gone. */
    int (*steps_list)(pb_store *s, const pb_scope *sc, const char *exec_arn, pb_step_rec **out, size_t *n);
    int (*params_list)(pb_store *s, const pb_scope *sc, const char *exec_arn, pb_param_rec **out, size_t *n);

    /* The event outbox: events with seq > after, oldest first, at most limit.
     * created_ms is the time the event was written to the outbox. */
    int (*outbox_list)(pb_store *s, int64_t after, size_t limit, pb_outbox_rec **out, size_t *n);

    /* Delivery. invocations_add: one transaction that inserts v[0..n)
     * (writing each new id to v[i].id) and deletes the outbox events
     * outbox_done[0..ndone) (those events have been matched: v holds their
     * invocations). Called with many requests' invocations at once (group
     * commit). invocations_pending: every invocation of every scope, by id.
     * invocations_done: deletes them (delivered). invocation_retry: records a
     * failed attempt (attempts, next_ms, last error) of invocation id.
     * invocation_dead: deletes invocation id and, when dl is non-NULL, inserts
     * it as a dead letter (dl->id is written), in one transaction.
     * Unknown ids are ignored (PB_OK). */
    int (*invocations_add)(pb_store *s, pb_invocation_rec *v, size_t n, const int64_t *outbox_done, size_t ndone);
    /* invocations_fire: as invocations_add, and in the same transaction
     * records ticks[0..nticks) as fired (each rule's last tick becomes the
     * larger of the stored one and the given one). A tick with no
     * invocations (a rule without targets) is recorded all the same. The
     * invocations delivered[0..ndelivered) are deleted in that transaction
     * too (as invocations_done), so that the committer's batch costs one
     * sync, not two. */
    int (*invocations_fire)(pb_store *s, pb_invocation_rec *v, size_t n, const int64_t *outbox_done, size_t ndone,
                            const pb_tick_rec *ticks, size_t nticks, const int64_t *delivered, size_t ndelivered);
    /* every recorded last tick (start-up); a rule's row goes with the rule */
    int (*ticks_list)(pb_store *s, pb_tick_rec **out, size_t *n);
    /* The manual clock (serve --clock manual): get answers PB_ENOTFOUND when
     * it was never set; set overwrites it. */
    int (*clock_get)(pb_store *s, int64_t *ms);
    int (*clock_set)(pb_store *s, int64_t ms);
    int (*invocations_pending)(pb_store *s, pb_invocation_rec **out, size_t *n);
    int (*invocations_done)(pb_store *s, const int64_t *ids, size_t n);
    int (*invocation_retry)(pb_store *s, int64_t id, int64_t attempts, int64_t next_ms, const char *error_code,
                            const char *error_message);
    int (*invocation_dead)(pb_store *s, int64_t id, pb_dead_letter_rec *dl);

    /* Dead letters of a scope: ids > after, ascending, at most limit; only
     * those of dlq_arn when non-NULL; *more when further ones exist.
     * dead_letters_redrive: for each listed id of the scope (unknown ids are
     * skipped), deletes the dead letter and inserts a new invocation (attempts
     * 0, next_ms now_ms) in one transaction; writes the new invocations to
     * *out (caller frees, pb_invocation_recs_free). */
    int (*dead_letters_list)(pb_store *s, const pb_scope *sc, const char *dlq_arn, int64_t after, size_t limit,
                             pb_dead_letter_rec **out, size_t *n, bool *more);
    int (*dead_letters_redrive)(pb_store *s, const pb_scope *sc, const int64_t *ids, size_t n, int64_t now_ms,
                                pb_invocation_rec **out, size_t *nout);
};

struct pb_store {
    const struct pb_store_ops *ops;
};

/* Opens the store named by url: "sqlite:PATH" (created with its schema when
 * missing; migrations applied in order and recorded). "postgresql://..." and
 * "postgres://..." answer PB_EUNSUPPORTED ("the PostgreSQL store is not yet
 * supported"); anything else PB_EVALIDATION. */
int pb_store_open(const char *url, pb_store **out, pb_error *err);
void pb_store_close(pb_store *s);

void pb_bus_rec_free(pb_bus_rec *b);          /* frees members, not b */
void pb_rule_rec_free(pb_rule_rec *r);
void pb_target_rec_free(pb_target_rec *t);
void pb_tags_free(pb_tag *tags, size_t n);    /* frees members and the array */
void pb_bus_recs_free(pb_bus_rec *v, size_t n);
void pb_rule_recs_free(pb_rule_rec *v, size_t n);
void pb_target_recs_free(pb_target_rec *v, size_t n);
void pb_rule_entries_free(pb_rule_entry *v, size_t n);
void pb_names_free(char **names, size_t n);
void pb_pipeline_rec_free(pb_pipeline_rec *p);
void pb_pipeline_recs_free(pb_pipeline_rec *v, size_t n);
void pb_exec_rec_free(pb_exec_rec *e);
void pb_exec_recs_free(pb_exec_rec *v, size_t n);
void pb_exec_entries_free(pb_exec_entry *v, size_t n);
void pb_step_recs_free(pb_step_rec *v, size_t n);
void pb_param_recs_free(pb_param_rec *v, size_t n);
void pb_outbox_recs_free(pb_outbox_rec *v, size_t n);
void pb_invocation_rec_free(pb_invocation_rec *v);  /* members only */
void pb_invocation_recs_free(pb_invocation_rec *v, size_t n);
void pb_dead_letter_rec_free(pb_dead_letter_rec *d); /* members only */
void pb_dead_letter_recs_free(pb_dead_letter_rec *v, size_t n);
void pb_tick_recs_free(pb_tick_rec *v, size_t n);

#endif
