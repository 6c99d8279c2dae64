/*
 * pipedef_plan.c — which steps of an execution may start now.
 *
 * The plan holds one status per step. A step is ready when every step it
 * waits for (pb_pipedef_step.deps: DependsOn and data references) has
 * succeeded and, inside a Condition step's branch, that Condition step has
 * succeeded with the matching outcome. Steps of the branch not taken, and
 * everything that waits for them, become NOT_EXECUTED (settle). Steps start
 * in definition order, at most MaxParallelExecutionSteps at a time; after a
 * failure or a stop request nothing new starts and the running steps finish
 * (§6.3 "a failed step fails the execution after running steps finish").
 */
#include "pipedef_internal.h"

#include <stdlib.h>

const char *pb_pipedef_status_name(pb_pipedef_status s)
{
    switch (s) {
    case PB_PIPEDEF_PENDING: return "Pending";
    case PB_PIPEDEF_STARTING: return "Starting";
    case PB_PIPEDEF_EXECUTING: return "Executing";
    case PB_PIPEDEF_STOPPING: return "Stopping";
    case PB_PIPEDEF_STOPPED: return "Stopped";
    case PB_PIPEDEF_FAILED: return "Failed";
    case PB_PIPEDEF_SUCCEEDED: return "Succeeded";
    case PB_PIPEDEF_NOT_EXECUTED: return "NotExecuted";
    }
    return "?";
}

const char *pb_pipedef_exec_status_name(pb_pipedef_exec_status s)
{
    switch (s) {
    case PB_PIPEDEF_EXEC_EXECUTING: return "Executing";
    case PB_PIPEDEF_EXEC_STOPPING: return "Stopping";
    case PB_PIPEDEF_EXEC_STOPPED: return "Stopped";
    case PB_PIPEDEF_EXEC_FAILED: return "Failed";
    case PB_PIPEDEF_EXEC_SUCCEEDED: return "Succeeded";
    }
    return "?";
}

int pb_pipedef_plan_init(pb_pipedef_plan *plan, const pb_pipedef *def)
{
    size_t n = def->nsteps ? def->nsteps : 1;
    plan->def = def;
    plan->stopping = false;
    plan->status = calloc(n, sizeof *plan->status);
    plan->outcome = malloc(n * sizeof *plan->outcome);
    if (!plan->status || !plan->outcome) {
        pb_pipedef_plan_free(plan);
        return PB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        plan->outcome[i] = -1;
    return 0;
}

void pb_pipedef_plan_free(pb_pipedef_plan *plan)
{
    free(plan->status);
    free(plan->outcome);
    plan->status = NULL;
    plan->outcome = NULL;
}

static bool running(pb_pipedef_status s)
{
    return s == PB_PIPEDEF_STARTING || s == PB_PIPEDEF_EXECUTING || s == PB_PIPEDEF_STOPPING;
}

/* The branch of a Condition step that was not taken cannot run. */
static bool branch_closed(const pb_pipedef_plan *plan, const pb_pipedef_step *st)
{
    size_t par = st->parent;
    if (par == PB_PIPEDEF_NONE)
        return false;
    if (plan->status[par] == PB_PIPEDEF_NOT_EXECUTED)
        return true;
    return plan->status[par] == PB_PIPEDEF_SUCCEEDED && plan->outcome[par] >= 0 &&
           plan->outcome[par] != (st->in_else ? 0 : 1);
}

/* Marks NOT_EXECUTED every pending step that can no longer run, to a fixpoint. */
static void settle(pb_pipedef_plan *plan)
{
    const pb_pipedef *def = plan->def;
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t s = 0; s < def->nsteps; s++) {
            if (plan->status[s] != PB_PIPEDEF_PENDING)
                continue;
            const pb_pipedef_step *st = &def->steps[s];
            bool dead = branch_closed(plan, st);
            for (size_t k = 0; k < st->ndeps && !dead; k++)
                dead = plan->status[st->deps[k]] == PB_PIPEDEF_NOT_EXECUTED;
            if (dead) {
                plan->status[s] = PB_PIPEDEF_NOT_EXECUTED;
                changed = true;
            }
        }
    }
}

void pb_pipedef_plan_set(pb_pipedef_plan *plan, size_t step, pb_pipedef_status st)
{
    if (step >= plan->def->nsteps)
        return;
    plan->status[step] = st;
    settle(plan);
}

void pb_pipedef_plan_outcome(pb_pipedef_plan *plan, size_t step, bool outcome)
{
    if (step >= plan->def->nsteps)
        return;
    plan->outcome[step] = outcome ? 1 : 0;
    plan->status[step] = PB_PIPEDEF_SUCCEEDED;
    settle(plan);
}

void pb_pipedef_plan_stop(pb_pipedef_plan *plan) { plan->stopping = true; }

static bool ready(const pb_pipedef_plan *plan, size_t s)
{
    const pb_pipedef_step *st = &plan->def->steps[s];
    if (plan->status[s] != PB_PIPEDEF_PENDING)
        return false;
    for (size_t k = 0; k < st->ndeps; k++)
        if (plan->status[st->deps[k]] != PB_PIPEDEF_SUCCEEDED)
            return false;
    if (st->parent == PB_PIPEDEF_NONE)
        return true;
    return plan->status[st->parent] == PB_PIPEDEF_SUCCEEDED && plan->outcome[st->parent] == (st->in_else ? 0 : 1);
}

/* A step failed, or stopped without a stop request: nothing new starts. */
static bool failed(const pb_pipedef_plan *plan)
{
    for (size_t s = 0; s < plan->def->nsteps; s++)
        if (plan->status[s] == PB_PIPEDEF_FAILED || (plan->status[s] == PB_PIPEDEF_STOPPED && !plan->stopping))
            return true;
    return false;
}

size_t pb_pipedef_plan_next(pb_pipedef_plan *plan, unsigned max_parallel, size_t *out, size_t cap)
{
    const pb_pipedef *def = plan->def;
    settle(plan);
    if (plan->stopping || failed(plan))
        return 0;
    size_t nrun = 0, k = 0;
    for (size_t s = 0; s < def->nsteps; s++)
        nrun += running(plan->status[s]);
    for (size_t s = 0; s < def->nsteps && k < cap; s++) {
        if (max_parallel && nrun >= max_parallel)
            break;
        if (!ready(plan, s))
            continue;
        plan->status[s] = PB_PIPEDEF_STARTING;
        out[k++] = s;
        nrun++;
    }
    return k;
}

pb_pipedef_exec_status pb_pipedef_plan_status(const pb_pipedef_plan *plan)
{
    size_t nrun = 0, npending = 0;
    for (size_t s = 0; s < plan->def->nsteps; s++) {
        nrun += running(plan->status[s]);
        npending += plan->status[s] == PB_PIPEDEF_PENDING;
    }
    if (plan->stopping)
        return nrun ? PB_PIPEDEF_EXEC_STOPPING : PB_PIPEDEF_EXEC_STOPPED;
    if (failed(plan))
        return nrun ? PB_PIPEDEF_EXEC_EXECUTING : PB_PIPEDEF_EXEC_FAILED;
    return nrun || npending ? PB_PIPEDEF_EXEC_EXECUTING : PB_PIPEDEF_EXEC_SUCCEEDED;
}
