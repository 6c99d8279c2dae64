/*
 * sqlite_internal.h — what the SQLite backend's files share.
 *
 * sqlite.c holds the store itself (opening, configuration, the ops table) and
 * the EventBridge resources; sqlite_pipelines.c the SageMaker pipelines,
 * their executions and the event outbox; sqlite_delivery.c the invocations
 * and dead letters. All use the one connection, mutex and error translation
 * defined here, and each keeps its own table of prepared statements in
 * struct sq.
 *
 * Conventions for a store function (see sqlite.c): take the mutex with lock(),
 * run the body in one transaction (pb_store__sq_tx_begin, then
 * pb_store__sq_tx_end with the body's result, which commits on 0 and rolls
 * back otherwise), unlock. Bodies keep `int rc` and an `out:` label and wrap
 * calls returning SQLite codes in SQ(), which translates a failure once.
 */
#ifndef PB_STORE_SQLITE_INTERNAL_H
#define PB_STORE_SQLITE_INTERNAL_H

#include "store_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define PB_STORE__SQ_STMTS 48      /* room for sqlite.c's statements (checked there) */
#define PB_STORE__SQ_PIPE_STMTS 48 /* room for sqlite_pipelines.c's statements (checked there) */
#define PB_STORE__SQ_DLV_STMTS 16  /* room for sqlite_delivery.c's statements (checked there) */

struct sq {
    pb_store base;                                      /* first, so a pb_store * is a struct sq * */
    sqlite3 *db;
    pthread_mutex_t mu;                                 /* held for the whole of each call */
    sqlite3_stmt *stmt[PB_STORE__SQ_STMTS];             /* sqlite.c's, by its enum q; prepared on first use */
    sqlite3_stmt *pipe_stmt[PB_STORE__SQ_PIPE_STMTS];   /* sqlite_pipelines.c's, by its enum pq */
    sqlite3_stmt *dlv_stmt[PB_STORE__SQ_DLV_STMTS];     /* sqlite_delivery.c's, by its enum dq */
    char *path;                                         /* for messages */
};

static inline struct sq *sq_of(pb_store *ps) { return (struct sq *)ps; }
static inline void lock(struct sq *s) { pthread_mutex_lock(&s->mu); }
static inline void unlock(struct sq *s) { pthread_mutex_unlock(&s->mu); }
static inline bool scope_ok(const pb_scope *sc) { return sc && sc->account && sc->region; }

/* The LIMIT to ask for when listing at most limit rows and learning whether
 * more exist: one more than wanted (a negative LIMIT is no limit). */
static inline int64_t fetch_limit(size_t limit)
{
    return limit >= (size_t)INT64_MAX - 1 ? -1 : (int64_t)limit + 1;
}

/* Translates a SQLite result code (extended codes are on) into a PB_E* code,
 * logging the unexpected ones with what. Call it while the error is current,
 * before a ROLLBACK replaces the message. */
int pb_store__sq_map(struct sq *s, int src, const char *what);

#define SQ(call)                                                                                             \
    do {                                                                                                     \
        int src_ = (call);                                                                                   \
        if (src_ != SQLITE_OK) {                                                                             \
            rc = pb_store__sq_map(s, src_, __func__);                                                        \
            goto out;                                                                                        \
        }                                                                                                    \
    } while (0)

/* Prepares sql into *slot (once, persistent) and binds its parameters from
 * fmt: 's' a const char * (NULL binds NULL), 'i' an int64_t (pass exactly
 * int64_t). Strings are bound SQLITE_STATIC: they must live until the
 * statement is reset. *out is the statement; release it with
 * pb_store__sq_done. Returns a SQLite code; on failure nothing is left bound.
 * fmt must have one letter per parameter of sql: a mismatch is logged and
 * refused (SQLITE_MISUSE) before anything is bound. */
int pb_store__sq_vprep(struct sq *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out, const char *fmt,
                       va_list ap);

/* Resets st and clears its bindings (NULL is fine). */
void pb_store__sq_done(sqlite3_stmt *st);

/* Steps a prepared statement and releases it: run to its end ignoring rows;
 * exists sets *found to whether it returns a row; int sets *v to the first
 * column of its first row (0 without rows). Return SQLite codes. */
int pb_store__sq_run(sqlite3_stmt *st);
int pb_store__sq_exists(sqlite3_stmt *st, bool *found);
int pb_store__sq_int(sqlite3_stmt *st, int64_t *v);

/* BEGIN IMMEDIATE (write) or BEGIN DEFERRED; 0 or a PB_E* code. */
int pb_store__sq_tx_begin(struct sq *s, bool write);
/* Commits when rc is 0, else (or when COMMIT fails) rolls back. Returns the outcome. */
int pb_store__sq_tx_end(struct sq *s, int rc);

/* A malloc'd copy of column i, NULL for SQL NULL. 0 or PB_ENOMEM. */
int pb_store__sq_col_str(sqlite3_stmt *st, int i, char **out);

/* The tags of a resource, keyed by its ARN: upsert n tags; delete them all.
 * Inside the caller's transaction. 0 or a PB_E* code. */
int pb_store__sq_put_tags(struct sq *s, const char *arn, const pb_tag *tags, size_t n);
int pb_store__sq_delete_tags(struct sq *s, const char *arn);

/* sqlite_pipelines.c: the pipeline members of pb_store_ops. */
int pb_store__sq_pipeline_create(pb_store *ps, const pb_scope *sc, const pb_pipeline_rec *p, const pb_tag *tags,
                                 size_t ntags);
int pb_store__sq_pipeline_get(pb_store *ps, const pb_scope *sc, const char *name, int64_t version,
                              pb_pipeline_rec *out);
int pb_store__sq_pipeline_update(pb_store *ps, const pb_scope *sc, const char *name, const pb_pipeline_rec *changes,
                                 int64_t *version);
int pb_store__sq_pipeline_delete(pb_store *ps, const pb_scope *sc, const char *name);
int pb_store__sq_pipeline_list(pb_store *ps, const pb_scope *sc, pb_pipeline_rec **out, size_t *n);
int pb_store__sq_exec_create(pb_store *ps, const pb_scope *sc, const pb_exec_rec *e, const pb_param_rec *params,
                             size_t nparams, const pb_outbox_event *events, size_t nevents, pb_exec_rec *existing);
int pb_store__sq_exec_get(pb_store *ps, const pb_scope *sc, const char *arn, pb_exec_rec *out);
int pb_store__sq_exec_list(pb_store *ps, const pb_scope *sc, const char *pipeline_name, pb_exec_rec **out,
                           size_t *n);
int pb_store__sq_exec_unfinished(pb_store *ps, pb_exec_entry **out, size_t *n);
int pb_store__sq_exec_change(pb_store *ps, const pb_scope *sc, const char *exec_arn, const pb_exec_rec *exec,
                             const pb_step_rec *steps, size_t nsteps, const int64_t *steps_reset, size_t nreset,
                             const pb_outbox_event *events, size_t nevents);
int pb_store__sq_steps_list(pb_store *ps, const pb_scope *sc, const char *exec_arn, pb_step_rec **out, size_t *n);
int pb_store__sq_params_list(pb_store *ps, const pb_scope *sc, const char *exec_arn, pb_param_rec **out,
                             size_t *n);
int pb_store__sq_outbox_list(pb_store *ps, int64_t after, size_t limit, pb_outbox_rec **out, size_t *n);

/* sqlite_delivery.c: the delivery members of pb_store_ops. */
int pb_store__sq_invocations_add(pb_store *ps, pb_invocation_rec *v, size_t n, const int64_t *outbox_done,
                                 size_t ndone);
int pb_store__sq_invocations_fire(pb_store *ps, pb_invocation_rec *v, size_t n, const int64_t *outbox_done,
                                  size_t ndone, const pb_tick_rec *ticks, size_t nticks, const int64_t *delivered,
                                  size_t ndelivered);
int pb_store__sq_ticks_list(pb_store *ps, pb_tick_rec **out, size_t *n);
int pb_store__sq_clock_get(pb_store *ps, int64_t *ms);
int pb_store__sq_clock_set(pb_store *ps, int64_t ms);
int pb_store__sq_invocations_pending(pb_store *ps, pb_invocation_rec **out, size_t *n);
int pb_store__sq_invocations_done(pb_store *ps, const int64_t *ids, size_t n);
int pb_store__sq_invocation_retry(pb_store *ps, int64_t id, int64_t attempts, int64_t next_ms,
                                  const char *error_code, const char *error_message);
int pb_store__sq_invocation_dead(pb_store *ps, int64_t id, pb_dead_letter_rec *dl);
int pb_store__sq_dead_letters_list(pb_store *ps, const pb_scope *sc, const char *dlq_arn, int64_t after,
                                   size_t limit, pb_dead_letter_rec **out, size_t *n, bool *more);
int pb_store__sq_dead_letters_redrive(pb_store *ps, const pb_scope *sc, const int64_t *ids, size_t n,
                                      int64_t now_ms, pb_invocation_rec **out, size_t *nout);

#endif
