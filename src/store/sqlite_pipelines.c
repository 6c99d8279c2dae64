/*
 * sqlite_pipelines.c — SageMaker pipelines in the SQLite store: pipelines and
 * their versions, executions with their steps and parameters, and the event
 * outbox (schema: migration 3 in migrations.c; contract: pb_store.h).
 *
 * The store itself (connection, mutex, transactions, error translation) is
 * sqlite.c's, shared through sqlite_internal.h; this file keeps its own table
 * of prepared statements, indexed by `enum pq`, in struct sq.
 *
 * Names compare without regard to case: pipelines are keyed by lower(name)
 * and every lookup by name lowers its argument in SQL, so the key is computed
 * one way only. Execution ARNs are stored lowercase and looked up lowered.
 * Lookups also match the caller's scope: another account's ARN is not found.
 *
 * Writes are one BEGIN IMMEDIATE transaction each, rolled back whole on any
 * error. The outbox rows written with a change carry the wall-clock time of
 * the write (created_ms).
 *
 * Executions are referenced by their integer key (seq) inside the store;
 * callers only see ARNs.
 */
#include "sqlite_internal.h"
#include "common/pb_buf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------- statements -- */

#define PIPE_KEY "account = ?1 AND region = ?2 AND name_key = lower(?3)"
#define EXEC_OF_PIPE "account = ?1 AND region = ?2 AND pipeline_key = lower(?3)"
#define EXEC_BY_ARN "arn = lower(?3) AND account = ?1 AND region = ?2"
/* spelt exactly as in the partial index executions_unfinished (migration 3) */
#define UNFINISHED "status IN ('Queued', 'Executing', 'Stopping')"

/* the columns read_pipeline expects (definition: ?); from pipelines p */
#define PIPE_COLS(definition, version)                                                                       \
    "p.name, p.arn, p.display_name, p.description, p.role_arn, " definition ", p.client_token, " version    \
    ", p.max_parallel, p.created_ms, p.modified_ms, p.last_run_ms"
#define EXEC_COLS                                                                                            \
    "id, arn, pipeline_name, pipeline_arn, display_name, description, status, failure_reason, client_token, " \
    "version_id, max_parallel, fail_step, created_ms, modified_ms, end_ms"
#define STEP_COLS                                                                                            \
    "name, type, display_name, description, status, failure_reason, metadata_json, properties_json, "        \
    "stdout_path, stderr_path, idx, start_ms, end_ms, attempt_count, pid, pid_start"

enum pq {
    PQ_PIPE_INSERT,
    PQ_VERSION_INSERT,
    PQ_PIPE_GET,
    PQ_PIPE_HEAD,
    PQ_PIPE_UPDATE,
    PQ_PIPE_RUNNING,
    PQ_PIPE_EXEC_TAGS_DELETE,
    PQ_PIPE_DELETE,
    PQ_PIPE_LIST,
    PQ_PIPE_SET_LAST_RUN,
    PQ_EXEC_INSERT,
    PQ_EXEC_BY_TOKEN,
    PQ_EXEC_GET,
    PQ_EXEC_SEQ,
    PQ_EXEC_LIST,
    PQ_EXEC_UNFINISHED,
    PQ_EXEC_UPDATE,
    PQ_STEP_UPSERT,
    PQ_STEP_DELETE,
    PQ_STEP_LIST,
    PQ_PARAM_INSERT,
    PQ_PARAM_LIST,
    PQ_OUTBOX_INSERT,
    PQ_OUTBOX_LIST,
    PQ__COUNT
};

_Static_assert(PQ__COUNT <= PB_STORE__SQ_PIPE_STMTS, "struct sq has no room for the pipeline statements");

static const char *const pq_sql[PQ__COUNT] = {
    [PQ_PIPE_INSERT] = "INSERT INTO pipelines (account, region, name_key, name, arn, display_name, description, "
                       "role_arn, max_parallel, client_token, created_ms, modified_ms, last_run_ms, "
                       "latest_version) VALUES (?1, ?2, lower(?3), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1)",
    /* a NULL definition copies the previous version's */
    [PQ_VERSION_INSERT] = "INSERT INTO pipeline_versions (account, region, name_key, version_id, definition, "
                          "created_ms) VALUES (?1, ?2, lower(?3), ?4, coalesce(?5, (SELECT definition FROM "
                          "pipeline_versions WHERE " PIPE_KEY " AND version_id = ?4 - 1)), ?6)",
    /* version ?4: 0 the latest */
    [PQ_PIPE_GET] = "SELECT " PIPE_COLS("v.definition", "v.version_id") " FROM pipelines p "
                    "JOIN pipeline_versions v ON v.account = p.account AND v.region = p.region "
                    "AND v.name_key = p.name_key "
                    "AND v.version_id = CASE WHEN ?4 = 0 THEN p.latest_version ELSE ?4 END "
                    "WHERE p.account = ?1 AND p.region = ?2 AND p.name_key = lower(?3)",
    [PQ_PIPE_HEAD] = "SELECT arn, latest_version FROM pipelines WHERE " PIPE_KEY,
    [PQ_PIPE_UPDATE] = "UPDATE pipelines SET display_name = coalesce(?4, display_name), "
                       "description = coalesce(?5, description), role_arn = coalesce(?6, role_arn), "
                       "max_parallel = CASE WHEN ?7 < 0 THEN max_parallel ELSE ?7 END, modified_ms = ?8, "
                       "latest_version = ?9 WHERE " PIPE_KEY,
    [PQ_PIPE_RUNNING] = "SELECT 1 FROM executions WHERE " EXEC_OF_PIPE " AND " UNFINISHED " LIMIT 1",
    [PQ_PIPE_EXEC_TAGS_DELETE] = "DELETE FROM tags WHERE arn IN (SELECT arn FROM executions WHERE " EXEC_OF_PIPE
                                 ")",
    /* cascades to pipeline_versions, executions, exec_steps, exec_params */
    [PQ_PIPE_DELETE] = "DELETE FROM pipelines WHERE " PIPE_KEY,
    [PQ_PIPE_LIST] = "SELECT " PIPE_COLS("NULL", "p.latest_version") " FROM pipelines p "
                     "WHERE p.account = ?1 AND p.region = ?2 ORDER BY p.name_key",
    [PQ_PIPE_SET_LAST_RUN] = "UPDATE pipelines SET last_run_ms = ?4 WHERE " PIPE_KEY,

    [PQ_EXEC_INSERT] = "INSERT INTO executions (account, region, pipeline_key, pipeline_name, id, arn, "
                       "pipeline_arn, version_id, display_name, description, status, failure_reason, "
                       "client_token, max_parallel, fail_step, created_ms, modified_ms, end_ms) VALUES (?1, ?2, "
                       "lower(?3), ?3, ?4, lower(?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [PQ_EXEC_BY_TOKEN] = "SELECT " EXEC_COLS " FROM executions WHERE " EXEC_OF_PIPE " AND client_token = ?4",
    [PQ_EXEC_GET] = "SELECT " EXEC_COLS " FROM executions WHERE " EXEC_BY_ARN,
    [PQ_EXEC_SEQ] = "SELECT seq FROM executions WHERE " EXEC_BY_ARN,
    [PQ_EXEC_LIST] = "SELECT " EXEC_COLS " FROM executions WHERE " EXEC_OF_PIPE " ORDER BY seq DESC",
    [PQ_EXEC_UNFINISHED] = "SELECT account, region, " EXEC_COLS " FROM executions WHERE " UNFINISHED
                           " ORDER BY seq",
    [PQ_EXEC_UPDATE] = "UPDATE executions SET display_name = coalesce(?2, display_name), description = ?3, "
                       "status = coalesce(?4, status), failure_reason = ?5, max_parallel = ?6, fail_step = ?7, "
                       "modified_ms = ?8, end_ms = ?9 WHERE seq = ?1",

    [PQ_STEP_UPSERT] = "INSERT INTO exec_steps (exec_seq, idx, name, type, display_name, description, status, "
                       "failure_reason, metadata_json, properties_json, stdout_path, stderr_path, start_ms, end_ms, "
                       "attempt_count, pid, pid_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                       "?13, ?14, ?15, ?16, ?17) ON CONFLICT (exec_seq, idx) DO UPDATE SET name = excluded.name, "
                       "type = excluded.type, display_name = excluded.display_name, "
                       "description = excluded.description, status = excluded.status, "
                       "failure_reason = excluded.failure_reason, metadata_json = excluded.metadata_json, "
                       "properties_json = excluded.properties_json, stdout_path = excluded.stdout_path, "
                       "stderr_path = excluded.stderr_path, start_ms = excluded.start_ms, "
                       "end_ms = excluded.end_ms, attempt_count = excluded.attempt_count, pid = excluded.pid, "
                       "pid_start = excluded.pid_start",
    [PQ_STEP_DELETE] = "DELETE FROM exec_steps WHERE exec_seq = ?1 AND idx = ?2",
    [PQ_STEP_LIST] = "SELECT " STEP_COLS " FROM exec_steps WHERE exec_seq = ?1 ORDER BY start_ms, idx",

    [PQ_PARAM_INSERT] = "INSERT INTO exec_params (exec_seq, pos, name, value) VALUES (?1, ?2, ?3, ?4)",
    [PQ_PARAM_LIST] = "SELECT name, value FROM exec_params WHERE exec_seq = ?1 ORDER BY pos",

    [PQ_OUTBOX_INSERT] = "INSERT INTO event_outbox (account, region, bus, event_json, created_ms) "
                         "VALUES (?1, ?2, coalesce(?3, 'default'), ?4, ?5)",
    [PQ_OUTBOX_LIST] = "SELECT seq, account, region, bus, event_json, created_ms FROM event_outbox "
                       "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
};

/* This file's statements, as sqlite.c's prep / exec_q / exists_q. */
static int prep(struct sq *s, enum pq id, sqlite3_stmt **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->pipe_stmt[id], pq_sql[id], out, fmt, ap);
    va_end(ap);
    return src;
}

static int exec_q(struct sq *s, enum pq id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->pipe_stmt[id], pq_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_run(st) : src;
}

static int exists_q(struct sq *s, bool *found, enum pq id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->pipe_stmt[id], pq_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_exists(st, found) : src;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ records -- */

/* Copies the string columns c..c+n of st to *str[0..n). 0 or PB_ENOMEM (the
 * strings copied so far stay, for the caller's free). */
static int read_strs(sqlite3_stmt *st, int c, char **const *str, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pb_store__sq_col_str(st, c + (int)i, str[i]))
            return PB_ENOMEM;
    return 0;
}

/* PIPE_COLS from column 0; p is freed on failure. */
static int read_pipeline(sqlite3_stmt *st, pb_pipeline_rec *p)
{
    memset(p, 0, sizeof *p);
    char **const str[] = {&p->name,     &p->arn,        &p->display_name, &p->description,
                          &p->role_arn, &p->definition, &p->client_token};
    if (read_strs(st, 0, str, sizeof str / sizeof str[0])) {
        pb_pipeline_rec_free(p);
        return PB_ENOMEM;
    }
    p->version_id = sqlite3_column_int64(st, 7);
    p->max_parallel = sqlite3_column_int64(st, 8);
    p->created_ms = sqlite3_column_int64(st, 9);
    p->modified_ms = sqlite3_column_int64(st, 10);
    p->last_run_ms = sqlite3_column_int64(st, 11);
    return 0;
}

/* EXEC_COLS from column c; e is freed on failure. */
static int read_exec(sqlite3_stmt *st, int c, pb_exec_rec *e)
{
    memset(e, 0, sizeof *e);
    char **const str[] = {&e->id,          &e->arn,    &e->pipeline_name,  &e->pipeline_arn, &e->display_name,
                          &e->description, &e->status, &e->failure_reason, &e->client_token};
    if (read_strs(st, c, str, sizeof str / sizeof str[0])) {
        pb_exec_rec_free(e);
        return PB_ENOMEM;
    }
    e->version_id = sqlite3_column_int64(st, c + 9);
    e->max_parallel = sqlite3_column_int64(st, c + 10);
    e->fail_step = sqlite3_column_int64(st, c + 11) != 0;
    e->created_ms = sqlite3_column_int64(st, c + 12);
    e->modified_ms = sqlite3_column_int64(st, c + 13);
    e->end_ms = sqlite3_column_int64(st, c + 14);
    return 0;
}

/* STEP_COLS from column 0 into a zeroed t (left for the caller to free). */
static int read_step(sqlite3_stmt *st, pb_step_rec *t)
{
    char **const str[] = {&t->name,           &t->type,          &t->display_name,  &t->description,
                          &t->status,         &t->failure_reason, &t->metadata_json, &t->properties_json,
                          &t->stdout_path,    &t->stderr_path};
    if (read_strs(st, 0, str, sizeof str / sizeof str[0]))
        return PB_ENOMEM;
    t->index = sqlite3_column_int64(st, 10);
    t->start_ms = sqlite3_column_int64(st, 11);
    t->end_ms = sqlite3_column_int64(st, 12);
    t->attempt_count = sqlite3_column_int64(st, 13);
    t->pid = sqlite3_column_int64(st, 14);
    t->pid_start = sqlite3_column_int64(st, 15);
    return 0;
}

/* ------------------------------------------------------------ helpers -- */

/* The single row of a prepared statement into *out with read (which frees
 * on failure); PB_ENOTFOUND without a row. The statement is released. */
static int one_row(struct sq *s, sqlite3_stmt *st, int (*read)(sqlite3_stmt *, void *), void *out)
{
    int rc, src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = read(st, out);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, "reading a row");
    pb_store__sq_done(st);
    return rc;
}

static int read_pipeline_v(sqlite3_stmt *st, void *p) { return read_pipeline(st, p); }
static int read_exec_v(sqlite3_stmt *st, void *e) { return read_exec(st, 0, e); }

/* The ARN (if arn is non-NULL) and latest version of a pipeline;
 * PB_ENOTFOUND. */
static int pipe_head(struct sq *s, const pb_scope *sc, const char *name, char **arn, int64_t *latest)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    SQ(prep(s, PQ_PIPE_HEAD, &st, "sss", sc->account, sc->region, name));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (latest)
            *latest = sqlite3_column_int64(st, 1);
        if (arn)
            rc = pb_store__sq_col_str(st, 0, arn);
    } else if (src == SQLITE_DONE) {
        rc = PB_ENOTFOUND;
    } else {
        rc = pb_store__sq_map(s, src, __func__);
    }
out:
    pb_store__sq_done(st);
    return rc;
}

/* The key of the execution exec_arn of sc; PB_ENOTFOUND. */
static int exec_seq(struct sq *s, const pb_scope *sc, const char *exec_arn, int64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    SQ(prep(s, PQ_EXEC_SEQ, &st, "sss", sc->account, sc->region, exec_arn));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    return rc;
}

static int put_events(struct sq *s, const pb_scope *sc, const pb_outbox_event *events, size_t n)
{
    int rc = 0;
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, PQ_OUTBOX_INSERT, "ssssi", sc->account, sc->region, events[i].bus, events[i].json, now));
out:
    return rc;
}

/* ---------------------------------------------------------- pipelines -- */

static int pipeline_create_tx(struct sq *s, const pb_scope *sc, const pb_pipeline_rec *p, const pb_tag *tags,
                              size_t ntags)
{
    int rc = 0;
    SQ(exec_q(s, PQ_PIPE_INSERT, "sssssssisiii", sc->account, sc->region, p->name, p->arn, p->display_name,
              p->description, p->role_arn, (int64_t)(p->max_parallel > 0 ? p->max_parallel : 0), p->client_token,
              (int64_t)p->created_ms, (int64_t)p->modified_ms, (int64_t)p->last_run_ms));
    SQ(exec_q(s, PQ_VERSION_INSERT, "sssisi", sc->account, sc->region, p->name, (int64_t)1, p->definition,
              (int64_t)p->created_ms));
    rc = pb_store__sq_put_tags(s, p->arn, tags, ntags);
out:
    return rc;
}

int pb_store__sq_pipeline_create(pb_store *ps, const pb_scope *sc, const pb_pipeline_rec *p, const pb_tag *tags,
                                 size_t ntags)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !p || !p->name || !p->arn || !p->role_arn || !p->definition || (ntags && !tags))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, pipeline_create_tx(s, sc, p, tags, ntags));
    unlock(s);
    return rc;
}

int pb_store__sq_pipeline_get(pb_store *ps, const pb_scope *sc, const char *name, int64_t version,
                              pb_pipeline_rec *out)
{
    struct sq *s = sq_of(ps);
    if (!out)
        return PB_EVALIDATION;
    memset(out, 0, sizeof *out);
    if (!scope_ok(sc) || !name)
        return PB_EVALIDATION;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    lock(s);
    SQ(prep(s, PQ_PIPE_GET, &st, "sssi", sc->account, sc->region, name, version));
    rc = one_row(s, st, read_pipeline_v, out);
out:
    unlock(s);
    return rc;
}

static int pipeline_update_tx(struct sq *s, const pb_scope *sc, const char *name, const pb_pipeline_rec *c,
                              int64_t *version)
{
    int rc = 0;
    int64_t latest = 0;
    if ((rc = pipe_head(s, sc, name, NULL, &latest)))
        return rc;
    SQ(exec_q(s, PQ_PIPE_UPDATE, "ssssssiii", sc->account, sc->region, name, c->display_name, c->description,
              c->role_arn, (int64_t)c->max_parallel, (int64_t)c->modified_ms, latest + 1));
    SQ(exec_q(s, PQ_VERSION_INSERT, "sssisi", sc->account, sc->region, name, latest + 1, c->definition,
              (int64_t)c->modified_ms));
    *version = latest + 1;
out:
    return rc;
}

int pb_store__sq_pipeline_update(pb_store *ps, const pb_scope *sc, const char *name, const pb_pipeline_rec *changes,
                                 int64_t *version)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !name || !changes)
        return PB_EVALIDATION;
    int64_t v = 0;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, pipeline_update_tx(s, sc, name, changes, &v));
    unlock(s);
    if (rc == 0 && version)
        *version = v;
    return rc;
}

static int pipeline_delete_tx(struct sq *s, const pb_scope *sc, const char *name)
{
    int rc = 0;
    char *arn = NULL;
    bool running = false;
    if ((rc = pipe_head(s, sc, name, &arn, NULL)))
        goto out;
    SQ(exists_q(s, &running, PQ_PIPE_RUNNING, "sss", sc->account, sc->region, name));
    if (running) {
        rc = PB_ECONFLICT;
        goto out;
    }
    SQ(exec_q(s, PQ_PIPE_EXEC_TAGS_DELETE, "sss", sc->account, sc->region, name));
    SQ(exec_q(s, PQ_PIPE_DELETE, "sss", sc->account, sc->region, name));
    rc = pb_store__sq_delete_tags(s, arn);
out:
    free(arn);
    return rc;
}

int pb_store__sq_pipeline_delete(pb_store *ps, const pb_scope *sc, const char *name)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !name)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, pipeline_delete_tx(s, sc, name));
    unlock(s);
    return rc;
}

int pb_store__sq_pipeline_list(pb_store *ps, const pb_scope *sc, pb_pipeline_rec **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (!scope_ok(sc))
        return PB_EVALIDATION;
    pb_pipeline_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, PQ_PIPE_LIST, &st, "ss", sc->account, sc->region));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = read_pipeline(st, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_pipeline_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* --------------------------------------------------------- executions -- */

/*
 * The insert of a duplicate ClientRequestToken fails on the UNIQUE
 * constraint: there is one path for it, whether the other execution was
 * committed long ago or by another process a moment before this transaction
 * got the write lock. A unique failure without such an execution is an ARN
 * already taken (an id drawn twice): PB_ECONFLICT, for the caller to retry
 * with a new id.
 */
static int exec_create_tx(struct sq *s, const pb_scope *sc, const pb_exec_rec *e, const pb_param_rec *params,
                          size_t nparams, const pb_outbox_event *events, size_t nevents, pb_exec_rec *existing)
{
    int rc = 0;
    if ((rc = pipe_head(s, sc, e->pipeline_name, NULL, NULL)))
        return rc;
    int src = exec_q(s, PQ_EXEC_INSERT, "ssssssisssssiiiii", sc->account, sc->region, e->pipeline_name, e->id,
                     e->arn, e->pipeline_arn, (int64_t)e->version_id, e->display_name, e->description, e->status,
                     e->failure_reason, e->client_token, (int64_t)e->max_parallel, (int64_t)(e->fail_step ? 1 : 0),
                     (int64_t)e->created_ms, (int64_t)e->modified_ms, (int64_t)e->end_ms);
    if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY) {
        pb_exec_rec dup;
        sqlite3_stmt *st = NULL;
        if (!e->client_token)
            return PB_ECONFLICT;
        SQ(prep(s, PQ_EXEC_BY_TOKEN, &st, "ssss", sc->account, sc->region, e->pipeline_name, e->client_token));
        rc = one_row(s, st, read_exec_v, &dup);
        if (rc == PB_ENOTFOUND)
            return PB_ECONFLICT;
        if (rc)
            return rc;
        if (existing)
            *existing = dup;
        else
            pb_exec_rec_free(&dup);
        return PB_EEXISTS;
    }
    SQ(src);
    int64_t seq = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; i < nparams; i++)
        SQ(exec_q(s, PQ_PARAM_INSERT, "iiss", seq, (int64_t)i, params[i].name, params[i].value));
    if ((rc = put_events(s, sc, events, nevents)))
        goto out;
    SQ(exec_q(s, PQ_PIPE_SET_LAST_RUN, "sssi", sc->account, sc->region, e->pipeline_name, (int64_t)e->created_ms));
out:
    return rc;
}

int pb_store__sq_exec_create(pb_store *ps, const pb_scope *sc, const pb_exec_rec *e, const pb_param_rec *params,
                             size_t nparams, const pb_outbox_event *events, size_t nevents, pb_exec_rec *existing)
{
    struct sq *s = sq_of(ps);
    if (existing)
        memset(existing, 0, sizeof *existing);
    if (!scope_ok(sc) || !e || !e->id || !e->arn || !e->pipeline_name || !e->pipeline_arn || !e->status ||
        (nparams && !params) || (nevents && !events))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, exec_create_tx(s, sc, e, params, nparams, events, nevents, existing));
    unlock(s);
    return rc; /* *existing is filled only on the way to PB_EEXISTS */
}

int pb_store__sq_exec_get(pb_store *ps, const pb_scope *sc, const char *arn, pb_exec_rec *out)
{
    struct sq *s = sq_of(ps);
    if (!out)
        return PB_EVALIDATION;
    memset(out, 0, sizeof *out);
    if (!scope_ok(sc) || !arn)
        return PB_EVALIDATION;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    lock(s);
    SQ(prep(s, PQ_EXEC_GET, &st, "sss", sc->account, sc->region, arn));
    rc = one_row(s, st, read_exec_v, out);
out:
    unlock(s);
    return rc;
}

static int exec_list_tx(struct sq *s, const pb_scope *sc, const char *pipeline, pb_exec_rec **out, size_t *n)
{
    pb_exec_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    if ((rc = pipe_head(s, sc, pipeline, NULL, NULL)))
        goto out;
    SQ(prep(s, PQ_EXEC_LIST, &st, "sss", sc->account, sc->region, pipeline));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = read_exec(st, 0, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_exec_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int pb_store__sq_exec_list(pb_store *ps, const pb_scope *sc, const char *pipeline_name, pb_exec_rec **out,
                           size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (!scope_ok(sc) || !pipeline_name)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, exec_list_tx(s, sc, pipeline_name, out, n));
    unlock(s);
    if (rc) {
        pb_exec_recs_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int pb_store__sq_exec_unfinished(pb_store *ps, pb_exec_entry **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    pb_exec_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, PQ_EXEC_UNFINISHED, &st, ""));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        pb_exec_entry *e = &v[cnt];
        memset(e, 0, sizeof *e);
        if ((rc = read_exec(st, 2, &e->exec)))
            goto out;
        cnt++; /* owned by v from here, freed with it */
        if (pb_store__sq_col_str(st, 0, &e->account) || pb_store__sq_col_str(st, 1, &e->region)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_exec_entries_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/*
 * Resets come before upserts, so a change may both clear a step's old record
 * and write its new one (a retry starting the step again).
 */
static int exec_change_tx(struct sq *s, const pb_scope *sc, const char *exec_arn, const pb_exec_rec *e,
                          const pb_step_rec *steps, size_t nsteps, const int64_t *reset, size_t nreset,
                          const pb_outbox_event *events, size_t nevents)
{
    int rc = 0;
    int64_t seq = 0;
    if ((rc = exec_seq(s, sc, exec_arn, &seq)))
        return rc;
    if (e)
        SQ(exec_q(s, PQ_EXEC_UPDATE, "issssiiii", seq, e->display_name, e->description, e->status,
                  e->failure_reason, (int64_t)e->max_parallel, (int64_t)(e->fail_step ? 1 : 0),
                  (int64_t)e->modified_ms, (int64_t)e->end_ms));
    for (size_t i = 0; i < nreset; i++)
        SQ(exec_q(s, PQ_STEP_DELETE, "ii", seq, reset[i]));
    for (size_t i = 0; i < nsteps; i++) {
        const pb_step_rec *t = &steps[i];
        SQ(exec_q(s, PQ_STEP_UPSERT, "ii" "ssssssssss" "iiiii", seq, (int64_t)t->index, t->name, t->type,
                  t->display_name, t->description, t->status, t->failure_reason, t->metadata_json,
                  t->properties_json, t->stdout_path, t->stderr_path, (int64_t)t->start_ms, (int64_t)t->end_ms,
                  (int64_t)t->attempt_count, (int64_t)t->pid, (int64_t)t->pid_start));
    }
    rc = put_events(s, sc, events, nevents);
out:
    return rc;
}

int pb_store__sq_exec_change(pb_store *ps, const pb_scope *sc, const char *exec_arn, const pb_exec_rec *exec,
                             const pb_step_rec *steps, size_t nsteps, const int64_t *steps_reset, size_t nreset,
                             const pb_outbox_event *events, size_t nevents)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !exec_arn || (nsteps && !steps) || (nreset && !steps_reset) || (nevents && !events))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(
            s, exec_change_tx(s, sc, exec_arn, exec, steps, nsteps, steps_reset, nreset, events, nevents));
    unlock(s);
    return rc;
}

/* ----------------------------------------------- steps and parameters -- */

static int steps_list_tx(struct sq *s, const pb_scope *sc, const char *exec_arn, pb_step_rec **out, size_t *n)
{
    pb_step_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int64_t seq = 0;
    int rc = 0, src;

    if ((rc = exec_seq(s, sc, exec_arn, &seq)))
        goto out;
    SQ(prep(s, PQ_STEP_LIST, &st, "i", seq));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        memset(&v[cnt], 0, sizeof *v);
        if ((rc = read_step(st, &v[cnt++]))) /* owned by v either way */
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_step_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int pb_store__sq_steps_list(pb_store *ps, const pb_scope *sc, const char *exec_arn, pb_step_rec **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (!scope_ok(sc) || !exec_arn)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, steps_list_tx(s, sc, exec_arn, out, n));
    unlock(s);
    if (rc) {
        pb_step_recs_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int params_list_tx(struct sq *s, const pb_scope *sc, const char *exec_arn, pb_param_rec **out, size_t *n)
{
    pb_param_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int64_t seq = 0;
    int rc = 0, src;

    if ((rc = exec_seq(s, sc, exec_arn, &seq)))
        goto out;
    SQ(prep(s, PQ_PARAM_LIST, &st, "i", seq));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        pb_param_rec *p = &v[cnt++]; /* owned by v from here */
        memset(p, 0, sizeof *p);
        if (pb_store__sq_col_str(st, 0, &p->name) || pb_store__sq_col_str(st, 1, &p->value)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_param_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int pb_store__sq_params_list(pb_store *ps, const pb_scope *sc, const char *exec_arn, pb_param_rec **out,
                             size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (!scope_ok(sc) || !exec_arn)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, params_list_tx(s, sc, exec_arn, out, n));
    unlock(s);
    if (rc) {
        pb_param_recs_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ------------------------------------------------------------- outbox -- */

int pb_store__sq_outbox_list(pb_store *ps, int64_t after, size_t limit, pb_outbox_rec **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (limit == 0)
        return 0;
    pb_outbox_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, PQ_OUTBOX_LIST, &st, "ii", after, (int64_t)(limit > (size_t)INT64_MAX ? -1 : (int64_t)limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        pb_outbox_rec *o = &v[cnt++]; /* owned by v from here */
        memset(o, 0, sizeof *o);
        o->seq = sqlite3_column_int64(st, 0);
        o->created_ms = sqlite3_column_int64(st, 5);
        if (pb_store__sq_col_str(st, 1, &o->account) || pb_store__sq_col_str(st, 2, &o->region) ||
            pb_store__sq_col_str(st, 3, &o->bus) || pb_store__sq_col_str(st, 4, &o->event_json)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_outbox_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}
