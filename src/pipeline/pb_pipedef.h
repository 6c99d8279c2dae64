/*
 * pb_pipedef.h — SageMaker pipeline definitions: parse, validate, evaluate, plan.
 *
 * The pure core of the local pipeline runner (AWS-SPEC.md §6.3, §6.4). It
 * turns the PipelineDefinition JSON of CreatePipeline into a checked
 * pb_pipedef, binds the PipelineParameters of StartPipelineExecution to it,
 * evaluates the expressions of a step ({"Get": ...}, Std:Join, Std:JsonGet)
 * into the concrete argv / environment of a local process, evaluates the
 * conditions of a Condition step, and plans the run: which steps may start
 * now, under MaxParallelExecutionSteps, and which will never run because a
 * condition took the other branch. No I/O, no clock, no processes, no
 * threads: anything external (step properties, property files, execution
 * variables) comes from the caller through pb_pipedef_ctx.
 *
 * Supported step types: Processing and Training (which must name a
 * ContainerEntrypoint: the runner executes it as a local process, no
 * container), Condition and Fail. Every other type is refused at parse time
 * with a ValidationException that names it. Sizes are capped before anything
 * is allocated (PB_PIPEDEF_MAX_*).
 *
 * Errors: fallible functions return 0 or a negative PB_E* code and fill the
 * optional caller-owned pb_error. A definition or parameter the caller got
 * wrong is PB_EVALIDATION (ValidationException); an expression that cannot be
 * evaluated at run time (a property that is not there, a comparison of a
 * String with a Float) is PB_EVALIDATION too, and becomes the FailureReason of
 * the step; a property-file callback may return its own code (e.g. PB_EIO).
 *
 * Ownership: a pb_pipedef owns an arena holding every string, array and JSON
 * node reachable from it; pb_pipedef_free releases all of it. Functions that
 * produce values (bind, eval, command, ...) allocate them in a pb_arena the
 * caller passes and owns. A pb_pipedef is immutable after parsing and may be
 * shared by threads; a pb_pipedef_plan belongs to one execution.
 */
#ifndef PB_PIPEDEF_H
#define PB_PIPEDEF_H

#include "common/pb_arena.h"
#include "common/pb_buf.h"
#include "common/pb_error.h"
#include "json/pb_json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------- limits -- */

#define PB_PIPEDEF_MAX_CHARS 1048576       /* PipelineDefinition: 1..1,048,576 characters (§6.1) */
#define PB_PIPEDEF_MAX_BYTES (4 * 1048576) /* the same in UTF-8 bytes, checked first */
#define PB_PIPEDEF_MAX_DEPTH 64            /* JSON nesting of a definition */
#define PB_PIPEDEF_MAX_STEPS 500           /* steps, counting those inside IfSteps/ElseSteps */
#define PB_PIPEDEF_MAX_PARAMS 200          /* Parameters[] of a definition */
#define PB_PIPEDEF_MAX_ENUM_VALUES 100     /* EnumValues of one parameter */
#define PB_PIPEDEF_MAX_CONDITIONS 1000     /* condition nodes (Not/Or included) in one step */
#define PB_PIPEDEF_MAX_RETRY_POLICIES 10   /* RetryPolicies of one step */
#define PB_PIPEDEF_MAX_PROPERTY_FILES 50   /* PropertyFiles of one step */
#define PB_PIPEDEF_MAX_PATH 1024           /* bytes of a Get / JsonGet path */
#define PB_PIPEDEF_MAX_START_PARAMS 200    /* PipelineParameters of StartPipelineExecution (§6.1) */
#define PB_PIPEDEF_MAX_PARAM_VALUE 1024    /* characters of one parameter value (§6.1) */
#define PB_PIPEDEF_MAX_VALUE_BYTES 1048576 /* one evaluated string (a Std:Join result, a JSON dump) */
#define PB_PIPEDEF_MAX_RESOLVED_BYTES (16 * 1048576) /* everything one resolution may produce */
#define PB_PIPEDEF_MAX_PROPERTY_FILE_BYTES 1048576   /* one property file read for Std:JsonGet */

#define PB_PIPEDEF_NONE ((size_t)-1) /* "no step" in index fields */

/* ----------------------------------------------------------------- values -- */

typedef enum pb_pipedef_type {
    PB_PIPEDEF_STRING = 1,
    PB_PIPEDEF_INTEGER,
    PB_PIPEDEF_FLOAT,
    PB_PIPEDEF_BOOLEAN,
} pb_pipedef_type;

/* "String", "Integer", "Float", "Boolean" (static). */
const char *pb_pipedef_type_name(pb_pipedef_type t);

typedef enum pb_pipedef_vkind {
    PB_PIPEDEF_VNULL = 0, /* JSON null (e.g. from a property file) */
    PB_PIPEDEF_VSTRING,
    PB_PIPEDEF_VINTEGER,
    PB_PIPEDEF_VFLOAT,
    PB_PIPEDEF_VBOOLEAN,
    PB_PIPEDEF_VJSON, /* an array or object (a Get of a whole property structure) */
} pb_pipedef_vkind;

/* A typed value. `str` always holds its text form, the one used by Std:Join
 * and in argv: the bytes of a String; the number as written ("6.0", "1");
 * "true"/"false"; "" for null; compact JSON for arrays and objects. The memory
 * belongs to whichever arena produced the value (or to the pb_pipedef). */
typedef struct pb_pipedef_value {
    pb_pipedef_vkind kind;
    const char *str; /* NUL-terminated text form (may contain NULs: use len) */
    size_t len;
    int64_t i;           /* VINTEGER */
    double f;            /* VINTEGER and VFLOAT: the number as a double */
    bool b;              /* VBOOLEAN */
    const pb_json *json; /* VJSON: the array or object */
} pb_pipedef_value;

/* ------------------------------------------------------------- definition -- */

typedef struct pb_pipedef_param {
    const char *name;           /* ^[A-Za-z0-9\-_]{1,64}$, unique */
    pb_pipedef_type type;       /* String when the definition gives no Type */
    bool has_default;           /* false: the value must be supplied at start */
    pb_pipedef_value def_value; /* DefaultValue, typed, when has_default */
    const char **enum_values;   /* EnumValues (String only), NULL when absent */
    size_t nenum;
    const char *description; /* NULL when absent */
} pb_pipedef_param;

typedef enum pb_pipedef_step_type {
    PB_PIPEDEF_PROCESSING = 1,
    PB_PIPEDEF_TRAINING,
    PB_PIPEDEF_CONDITION,
    PB_PIPEDEF_FAIL,
} pb_pipedef_step_type;

/* "Processing", "Training", "Condition", "Fail" (static). */
const char *pb_pipedef_step_type_name(pb_pipedef_step_type t);

typedef struct pb_pipedef_propfile {
    const char *name;        /* PropertyFileName, unique in its step */
    const char *output_name; /* OutputName: one of ProcessingOutputConfig.Outputs */
    const char *file_path;   /* FilePath, relative to that output's local directory */
} pb_pipedef_propfile;

/* RetryPolicies[].ExceptionType bits. */
enum {
    PB_PIPEDEF_RETRY_SERVICE_FAULT = 1 << 0,   /* Step.SERVICE_FAULT */
    PB_PIPEDEF_RETRY_THROTTLING = 1 << 1,      /* Step.THROTTLING */
    PB_PIPEDEF_RETRY_JOB_INTERNAL = 1 << 2,    /* SageMaker.JOB_INTERNAL_ERROR */
    PB_PIPEDEF_RETRY_CAPACITY = 1 << 3,        /* SageMaker.CAPACITY_ERROR */
    PB_PIPEDEF_RETRY_RESOURCE_LIMIT = 1 << 4,  /* SageMaker.RESOURCE_LIMIT */
};

typedef struct pb_pipedef_retry {
    unsigned exceptions;      /* PB_PIPEDEF_RETRY_* bits, at least one */
    int interval_seconds;     /* IntervalSeconds, 1..43200, default 1 */
    double backoff_rate;      /* BackoffRate, >= 1, default 2.0 */
    int max_attempts;         /* MaxAttempts 0..20 (0: never retry); -1 when ExpireAfterMin is used */
    int expire_after_min;     /* ExpireAfterMin 0..14400; -1 when MaxAttempts is used */
} pb_pipedef_retry;

typedef enum pb_pipedef_cond_op {
    PB_PIPEDEF_EQUALS = 1,
    PB_PIPEDEF_GREATER_THAN,
    PB_PIPEDEF_GREATER_THAN_OR_EQUAL_TO,
    PB_PIPEDEF_LESS_THAN,
    PB_PIPEDEF_LESS_THAN_OR_EQUAL_TO,
    PB_PIPEDEF_IN,
    PB_PIPEDEF_NOT,
    PB_PIPEDEF_OR,
} pb_pipedef_cond_op;

/* One condition of a Condition step (§6.3). Operands are JSON values as
 * written: literals or expressions, evaluated by pb_pipedef_eval. */
typedef struct pb_pipedef_cond {
    pb_pipedef_cond_op op;
    const pb_json *left, *right;     /* comparisons: LeftValue, RightValue */
    const pb_json *query;            /* In: QueryValue */
    const pb_json *const *values;    /* In: Values[] */
    size_t nvalues;
    const struct pb_pipedef_cond *sub; /* Not: the Expression (nsub 1); Or: Conditions[] */
    size_t nsub;
} pb_pipedef_cond;

typedef struct pb_pipedef_step {
    size_t index;             /* position in pb_pipedef.steps */
    const char *name;         /* ^[A-Za-z0-9\-_]{1,64}$, unique over the whole definition */
    pb_pipedef_step_type type;
    const char *display_name; /* DisplayName, NULL when absent */
    const char *description;  /* Description, NULL when absent */
    const char *json_path;    /* where the step sits, e.g. "Steps[2].Arguments.IfSteps[0]" */
    const pb_json *arguments; /* Arguments as written (expressions unresolved) */

    /* What the step waits for: DependsOn and every step its expressions
     * reference (Steps.X..., Std:JsonGet property files), sorted, unique. */
    const size_t *deps;
    size_t ndeps;
    size_t parent;  /* the Condition step whose IfSteps/ElseSteps hold it, or PB_PIPEDEF_NONE */
    bool in_else;   /* with a parent: listed in ElseSteps (else IfSteps) */

    /* Processing / Training */
    const pb_pipedef_propfile *property_files; /* Processing only */
    size_t nproperty_files;
    const pb_pipedef_retry *retry_policies;
    size_t nretry_policies;
    bool cache_enabled;           /* CacheConfig.Enabled */
    int64_t cache_expire_seconds; /* CacheConfig.ExpireAfter in seconds (months 30 days, years 365); 0: none */

    /* Condition */
    const pb_pipedef_cond *conditions; /* Arguments.Conditions, ANDed */
    size_t nconditions;
    const size_t *if_steps, *else_steps; /* indices of the steps listed in IfSteps / ElseSteps */
    size_t nif, nelse;

    /* Fail */
    const pb_json *error_message; /* Arguments.ErrorMessage (literal or expression), NULL when absent */
} pb_pipedef_step;

typedef struct pb_pipedef {
    pb_arena arena;             /* owns everything below */
    const pb_json *doc;         /* the whole definition as parsed */
    const char *version;        /* "2020-12-01" */
    const pb_json *metadata;    /* Metadata object, NULL when absent */
    pb_pipedef_param *params;   /* Parameters, in definition order */
    size_t nparams;
    bool has_experiment_config; /* PipelineExperimentConfig present and not null */
    const pb_json *experiment_name, *trial_name; /* its members (literal or expression), NULL when absent */
    pb_pipedef_step *steps;     /* every step, depth first in definition order: a Condition
                                   step comes before its IfSteps, then its ElseSteps */
    size_t nsteps;
    const size_t *step_order;   /* internal: step indices sorted by name (lookups) */
    const size_t *param_order;  /* internal: parameter indices sorted by name */
} pb_pipedef;

/* Parses and validates a PipelineDefinition (text[0..len), need not be
 * NUL-terminated). On success *out is a new definition the caller frees with
 * pb_pipedef_free. On error *out is NULL and err says why, naming the field
 * ("at 'Steps[1].Arguments.IfSteps[0].Name'") or the step; malformed JSON is
 * "Unable to parse pipeline definition. <parser message>", a field of the wrong
 * JSON kind "Unable to parse pipeline definition. Expecting start of Json
 * Array. ..." (AWS's wording, then ours). A cycle through DependsOn, data
 * references and condition branches is "Cycle detected in pipeline step
 * graph: A -> B -> A." where "A -> B" means B waits for A.
 * Codes: PB_EVALIDATION, PB_ENOMEM. */
int pb_pipedef_parse(const char *text, size_t len, pb_pipedef **out, pb_error *err);

/* Frees def and everything it owns; NULL is fine. */
void pb_pipedef_free(pb_pipedef *def);

/* Index of the step / parameter named name[0..len), or PB_PIPEDEF_NONE. */
size_t pb_pipedef_find_step(const pb_pipedef *def, const char *name, size_t len);
size_t pb_pipedef_find_param(const pb_pipedef *def, const char *name, size_t len);

/* ------------------------------------------------- parameters at start -- */

/* One PipelineParameters entry of StartPipelineExecution (strings need not be
 * NUL-terminated; they are only read). */
typedef struct pb_pipedef_kv {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} pb_pipedef_kv;

/* The effective parameter values of one execution: values[i] belongs to
 * def->params[i]; from_default[i] says whether it is the DefaultValue. */
typedef struct pb_pipedef_args {
    size_t n;
    pb_pipedef_value *values;
    bool *from_default;
} pb_pipedef_args;

/* Checks given[0..ngiven) against def per §6.4 and fills in defaults. Values
 * are converted to the declared type: Integer takes decimal integer text
 * (optional '-'), Float any JSON number, Boolean true/false in any case.
 * Errors (PB_EVALIDATION, nothing bound): "Unknown parameter '<Name>'",
 * "Unexpected type for parameter '<Name>'. Expected <Type> but found <Type>.",
 * "[string \"\" is too short (length: 0, required minimum: 1)]",
 * "Parameter '<Name>' is undefined." (no default, not given), a value outside
 * EnumValues, a name given twice, more than PB_PIPEDEF_MAX_START_PARAMS entries
 * or a value longer than PB_PIPEDEF_MAX_PARAM_VALUE characters. Everything in
 * *out is allocated in arena (caller-owned). Codes: PB_EVALIDATION, PB_ENOMEM. */
int pb_pipedef_bind(const pb_pipedef *def, const pb_pipedef_kv *given, size_t ngiven, pb_arena *arena,
                    pb_pipedef_args *out, pb_error *err);

/* ---------------------------------------------------------- evaluation -- */

typedef enum pb_pipedef_var {
    PB_PIPEDEF_VAR_START_DATE_TIME,
    PB_PIPEDEF_VAR_CURRENT_DATE_TIME,
    PB_PIPEDEF_VAR_PIPELINE_NAME,
    PB_PIPEDEF_VAR_PIPELINE_ARN,
    PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ID,
    PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ARN,
    PB_PIPEDEF_VAR_COUNT,
} pb_pipedef_var;

/* "StartDateTime", ... as written after "Execution." (static). */
const char *pb_pipedef_var_name(pb_pipedef_var v);

struct pb_pipedef_plan;

/* What expressions are evaluated against. Everything is borrowed. */
typedef struct pb_pipedef_ctx {
    const pb_pipedef_args *args;              /* from pb_pipedef_bind */
    const char *vars[PB_PIPEDEF_VAR_COUNT];   /* Execution.* values; NULL: not available */
    const struct pb_pipedef_plan *plan;       /* optional: gives Steps.<Condition>.Outcome */

    /* The properties of a finished step: its Describe* response as JSON
     * (e.g. {"ProcessingOutputConfig": {"Outputs": [...]}, "ProcessingJobName":
     * ...}), or NULL when it has none. Numbers must carry their text (str/len).
     * The document must outlive the evaluation. NULL callback: no properties. */
    const pb_json *(*step_properties)(void *user, const pb_pipedef_step *step);

    /* Appends the bytes of property file `file` of `step` (a Processing step
     * that has finished) to out, whose cap is PB_PIPEDEF_MAX_PROPERTY_FILE_BYTES.
     * Returns 0 or a PB_E* code with err set. NULL callback: Std:JsonGet fails. */
    int (*read_property_file)(void *user, const pb_pipedef_step *step, const pb_pipedef_propfile *file,
                              pb_buf *out, pb_error *err);
    void *user;
} pb_pipedef_ctx;

/* Evaluates v, a literal or an expression, to *out:
 *   {"Get": "Parameters.X"}      the bound value, typed
 *   {"Get": "Execution.V"}       ctx->vars[V], a String
 *   {"Get": "Steps.S.Path"}      Path walked in S's properties: .Name members,
 *                                [N] items, ['key'] a member, or in a list the
 *                                item whose OutputName / InputName / ChannelName /
 *                                MetricName / Name is key; Steps.C.Outcome of a
 *                                Condition step is the String "True" / "False"
 *   {"Std:Join": {"On": s, "Values": [...]}}   a String
 *   {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.S.PropertyFiles.F"}, "Path": p}}
 *                                the value at p in the property file's JSON
 * Literal strings, numbers and booleans evaluate to themselves; JSON numbers
 * are Integer when written without fraction or exponent. What *out points to
 * is allocated in arena, except a Parameters value, which is the bound value
 * itself (memory of the arena given to pb_pipedef_bind). */
int pb_pipedef_eval(const pb_pipedef *def, const pb_json *v, const pb_pipedef_ctx *ctx, pb_arena *arena,
                    pb_pipedef_value *out, pb_error *err);

/* A copy of v (e.g. a step's Arguments) with every expression replaced by its
 * value, allocated in arena. */
int pb_pipedef_resolve(const pb_pipedef *def, const pb_json *v, const pb_pipedef_ctx *ctx, pb_arena *arena,
                       const pb_json **out, pb_error *err);

/* The local process of a Processing or Training step. */
typedef struct pb_pipedef_cmd {
    char **argv;      /* ContainerEntrypoint then ContainerArguments, NULL-terminated */
    size_t argc;
    char **env;       /* the step's Environment as "KEY=VALUE", NULL-terminated */
    size_t envc;
    const pb_json *arguments;    /* the step's Arguments, resolved */
    int64_t max_runtime_seconds; /* StoppingCondition.MaxRuntimeInSeconds, 0 when absent */
} pb_pipedef_cmd;

/* Resolves a Processing or Training step into *out (all in arena). Non-string
 * scalars are written as their text form. Enforces the SageMaker API limits
 * on the resolved values (entrypoint 1..100 items, arguments up to 256
 * (Processing) / 100 (Training) items, each 1..256 characters; Environment up
 * to 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]*). Codes: PB_EVALIDATION,
 * PB_ENOMEM, or a callback's code. */
int pb_pipedef_command(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                       pb_arena *arena, pb_pipedef_cmd *out, pb_error *err);

/* Evaluates a Condition step's Conditions (ANDed; Or and And short-circuit)
 * into *outcome. Comparisons are typed: Integer and Float compare as numbers,
 * Strings byte-wise; Equals and In between different kinds are false; an
 * ordering between anything but two numbers or two Strings is an error. */
int pb_pipedef_conditions(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                          pb_arena *arena, bool *outcome, pb_error *err);

/* The ErrorMessage of a Fail step, evaluated to a string in arena ("" when absent). */
int pb_pipedef_fail_message(const pb_pipedef *def, const pb_pipedef_step *step, const pb_pipedef_ctx *ctx,
                            pb_arena *arena, const char **out, pb_error *err);

/* PipelineExperimentConfig evaluated: *experiment / *trial are strings in
 * arena, NULL when the definition has no such member. */
int pb_pipedef_experiment(const pb_pipedef *def, const pb_pipedef_ctx *ctx, pb_arena *arena,
                          const char **experiment, const char **trial, pb_error *err);

/* ------------------------------------------------------------ planning -- */

/* Step statuses. Starting..Succeeded are SageMaker's StepStatus values;
 * PENDING (not started yet) and NOT_EXECUTED (its condition branch was not
 * taken, or it depends on such a step) are ours: such steps never appear in
 * ListPipelineExecutionSteps, as in SageMaker. */
typedef enum pb_pipedef_status {
    PB_PIPEDEF_PENDING = 0,
    PB_PIPEDEF_STARTING,
    PB_PIPEDEF_EXECUTING,
    PB_PIPEDEF_STOPPING,
    PB_PIPEDEF_STOPPED,
    PB_PIPEDEF_FAILED,
    PB_PIPEDEF_SUCCEEDED,
    PB_PIPEDEF_NOT_EXECUTED,
} pb_pipedef_status;

/* "Pending", "Starting", ..., "NotExecuted" (static). */
const char *pb_pipedef_status_name(pb_pipedef_status s);

/* Execution statuses (§6.1). */
typedef enum pb_pipedef_exec_status {
    PB_PIPEDEF_EXEC_EXECUTING = 1,
    PB_PIPEDEF_EXEC_STOPPING,
    PB_PIPEDEF_EXEC_STOPPED,
    PB_PIPEDEF_EXEC_FAILED,
    PB_PIPEDEF_EXEC_SUCCEEDED,
} pb_pipedef_exec_status;

const char *pb_pipedef_exec_status_name(pb_pipedef_exec_status s);

/* The state of one execution. The arrays are owned (pb_pipedef_plan_free);
 * def is borrowed and must outlive the plan. Not thread-safe. */
typedef struct pb_pipedef_plan {
    const pb_pipedef *def;
    pb_pipedef_status *status; /* one per def->steps */
    signed char *outcome;      /* Condition steps: -1 not known yet, 0 False, 1 True */
    bool stopping;             /* pb_pipedef_plan_stop was called */
} pb_pipedef_plan;

/* Every step PENDING. Codes: PB_ENOMEM. */
int pb_pipedef_plan_init(pb_pipedef_plan *plan, const pb_pipedef *def);
void pb_pipedef_plan_free(pb_pipedef_plan *plan);

/* Records that a step reached status st (the runner reports Executing,
 * Succeeded, Failed, Stopped, ...; a Fail step is reported Failed). A
 * Condition step that succeeded is reported with pb_pipedef_plan_outcome:
 * until its outcome is known, the steps of its branches wait. */
void pb_pipedef_plan_set(pb_pipedef_plan *plan, size_t step, pb_pipedef_status st);

/* Records that a Condition step succeeded with the given outcome: the steps
 * of the other branch, and every pending step that waits for one of them,
 * become NOT_EXECUTED. */
void pb_pipedef_plan_outcome(pb_pipedef_plan *plan, size_t step, bool outcome);

/* No more steps start; the execution ends Stopped once nothing runs. */
void pb_pipedef_plan_stop(pb_pipedef_plan *plan);

/* Picks the steps to start now, marks them STARTING and writes their indices
 * to out[0..cap), in definition order; returns how many. A step is ready when
 * it is PENDING, every step in deps has SUCCEEDED, and its parent Condition
 * (if any) SUCCEEDED with the outcome of its branch. At most max_parallel
 * steps run at once, counting those already STARTING / EXECUTING / STOPPING
 * (0: no limit). Nothing starts once a step has failed or stopped, or after
 * pb_pipedef_plan_stop: running steps finish first (§6.3). */
size_t pb_pipedef_plan_next(pb_pipedef_plan *plan, unsigned max_parallel, size_t *out, size_t cap);

/* The execution's status: EXECUTING while a step runs or can still start;
 * then FAILED if a step failed (a Fail step included), STOPPED (STOPPING
 * while steps still run) after pb_pipedef_plan_stop, else SUCCEEDED. */
pb_pipedef_exec_status pb_pipedef_plan_status(const pb_pipedef_plan *plan);

#endif
