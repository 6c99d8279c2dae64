/*
 * migrations.c — the schema of the SQLite store, as an ordered list of
 * migrations, and the runner that brings a database up to date at open.
 *
 * A database records each applied migration in schema_migrations(version,
 * name, applied_ms). At open, every migration of the list not yet recorded is
 * applied in its own BEGIN IMMEDIATE transaction together with its record, so
 * a migration is applied whole or not at all, and two processes opening the
 * same new file do not both apply it (the second finds the record once it
 * gets the write lock). Re-opening an up-to-date database writes nothing.
 *
 * Released migrations are never edited; a schema change is a new entry at the
 * end with the next version.
 */
#include "store_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* ------------------------------------------------------------ the schema -- */

/*
 * Every resource is scoped by (account, region). The default bus has no row
 * (it exists in every scope), so rules carry no foreign key to buses; the
 * store checks the bus itself. Targets reference their rule with ON DELETE
 * RESTRICT: a rule with targets cannot disappear under them. Tags are keyed by
 * the resource ARN, which already contains the scope.
 */
static const char schema_v1[] =
    "CREATE TABLE buses ("
    "  account     TEXT NOT NULL,"
    "  region      TEXT NOT NULL,"
    "  name        TEXT NOT NULL,"
    "  arn         TEXT NOT NULL,"
    "  description TEXT,"
    "  extra_json  TEXT,"
    "  created_ms  INTEGER NOT NULL,"
    "  modified_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (account, region, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE rules ("
    "  account       TEXT NOT NULL,"
    "  region        TEXT NOT NULL,"
    "  bus           TEXT NOT NULL,"
    "  name          TEXT NOT NULL,"
    "  arn           TEXT NOT NULL,"
    "  event_pattern TEXT,"
    "  schedule      TEXT,"
    "  state         TEXT NOT NULL,"
    "  description   TEXT,"
    "  role_arn      TEXT,"
    "  managed_by    TEXT,"
    "  created_by    TEXT NOT NULL,"
    "  created_ms    INTEGER NOT NULL,"
    "  modified_ms   INTEGER NOT NULL,"
    "  PRIMARY KEY (account, region, bus, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE targets ("
    "  account TEXT NOT NULL,"
    "  region  TEXT NOT NULL,"
    "  bus     TEXT NOT NULL,"
    "  rule    TEXT NOT NULL,"
    "  id      TEXT NOT NULL,"
    "  arn     TEXT NOT NULL,"
    "  json    TEXT NOT NULL,"
    "  PRIMARY KEY (account, region, bus, rule, id),"
    "  FOREIGN KEY (account, region, bus, rule) REFERENCES rules (account, region, bus, name)"
    "    ON DELETE RESTRICT ON UPDATE RESTRICT"
    ") WITHOUT ROWID;"
    "CREATE TABLE tags ("
    "  arn   TEXT NOT NULL,"
    "  key   TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (arn, key)"
    ") WITHOUT ROWID;";

/* ListRuleNamesByTarget: the rules of a bus with a target of a given ARN. */
static const char schema_v2[] =
    "CREATE INDEX targets_by_arn ON targets (account, region, bus, arn, rule);";

/*
 * SageMaker pipelines. Names are unique within a scope regardless of case:
 * rows are keyed by name_key = lower(name) (the name as given is kept for
 * display). Each CreatePipeline / UpdatePipeline adds a row to
 * pipeline_versions; pipelines.latest_version is the newest.
 *
 * Executions have an integer key, seq, which gives the order of creation
 * (newest first, oldest first) even between executions created in the same
 * millisecond, and which their steps and parameters reference. Their ARN is
 * stored lowercase and is unique; a pipeline has at most one execution per
 * ClientRequestToken (NULL tokens are distinct). Deleting a pipeline cascades
 * to its versions and executions, and from these to steps and parameters;
 * tags (by ARN) are removed by the store. The partial index lists the
 * executions the runner must pick up at start-up; its status list is the
 * one the store's queries spell out, word for word.
 *
 * The outbox holds events written in the same transaction as the change
 * they announce, until delivered; AUTOINCREMENT keeps seq increasing in
 * commit order even after rows are deleted.
 */
static const char schema_v3[] =
    "CREATE TABLE pipelines ("
    "  account        TEXT NOT NULL,"
    "  region         TEXT NOT NULL,"
    "  name_key       TEXT NOT NULL,"
    "  name           TEXT NOT NULL,"
    "  arn            TEXT NOT NULL,"
    "  display_name   TEXT,"
    "  description    TEXT,"
    "  role_arn       TEXT NOT NULL,"
    "  max_parallel   INTEGER NOT NULL,"
    "  client_token   TEXT,"
    "  created_ms     INTEGER NOT NULL,"
    "  modified_ms    INTEGER NOT NULL,"
    "  last_run_ms    INTEGER NOT NULL,"
    "  latest_version INTEGER NOT NULL,"
    "  PRIMARY KEY (account, region, name_key)"
    ") WITHOUT ROWID;"
    "CREATE TABLE pipeline_versions ("
    "  account    TEXT NOT NULL,"
    "  region     TEXT NOT NULL,"
    "  name_key   TEXT NOT NULL,"
    "  version_id INTEGER NOT NULL,"
    "  definition TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (account, region, name_key, version_id),"
    "  FOREIGN KEY (account, region, name_key) REFERENCES pipelines (account, region, name_key)"
    "    ON DELETE CASCADE"
    ");"
    "CREATE TABLE executions ("
    "  seq            INTEGER PRIMARY KEY,"
    "  account        TEXT NOT NULL,"
    "  region         TEXT NOT NULL,"
    "  pipeline_key   TEXT NOT NULL,"
    "  id             TEXT NOT NULL,"
    "  arn            TEXT NOT NULL UNIQUE,"
    "  pipeline_name  TEXT NOT NULL,"
    "  pipeline_arn   TEXT NOT NULL,"
    "  version_id     INTEGER NOT NULL,"
    "  display_name   TEXT,"
    "  description    TEXT,"
    "  status         TEXT NOT NULL CHECK (status IN ('Queued', 'Executing', 'Stopping', 'Stopped', 'Failed',"
    "                                                 'Succeeded')),"
    "  failure_reason TEXT,"
    "  client_token   TEXT,"
    "  max_parallel   INTEGER NOT NULL,"
    "  fail_step      INTEGER NOT NULL CHECK (fail_step IN (0, 1)),"
    "  created_ms     INTEGER NOT NULL,"
    "  modified_ms    INTEGER NOT NULL,"
    "  end_ms         INTEGER NOT NULL,"
    "  UNIQUE (account, region, pipeline_key, client_token),"
    "  FOREIGN KEY (account, region, pipeline_key) REFERENCES pipelines (account, region, name_key)"
    "    ON DELETE CASCADE"
    ");"
    "CREATE INDEX executions_by_pipeline ON executions (account, region, pipeline_key, seq);"
    "CREATE INDEX executions_unfinished ON executions (seq)"
    "  WHERE status IN ('Queued', 'Executing', 'Stopping');"
    "CREATE TABLE exec_steps ("
    "  exec_seq        INTEGER NOT NULL REFERENCES executions (seq) ON DELETE CASCADE,"
    "  idx             INTEGER NOT NULL,"
    "  name            TEXT NOT NULL,"
    "  type            TEXT NOT NULL,"
    "  display_name    TEXT,"
    "  description     TEXT,"
    "  status          TEXT NOT NULL,"
    "  start_ms        INTEGER NOT NULL,"
    "  end_ms          INTEGER NOT NULL,"
    "  failure_reason  TEXT,"
    "  metadata_json   TEXT,"
    "  properties_json TEXT,"
    "  attempt_count   INTEGER NOT NULL,"
    "  stdout_path     TEXT,"
    "  stderr_path     TEXT,"
    "  pid             INTEGER NOT NULL,"
    "  pid_start       INTEGER NOT NULL,"
    "  PRIMARY KEY (exec_seq, idx)"
    ");"
    "CREATE TABLE exec_params ("
    "  exec_seq INTEGER NOT NULL REFERENCES executions (seq) ON DELETE CASCADE,"
    "  pos      INTEGER NOT NULL,"
    "  name     TEXT NOT NULL,"
    "  value    TEXT NOT NULL,"
    "  PRIMARY KEY (exec_seq, pos)"
    ") WITHOUT ROWID;"
    "CREATE TABLE event_outbox ("
    "  seq        INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account    TEXT NOT NULL,"
    "  region     TEXT NOT NULL,"
    "  bus        TEXT NOT NULL,"
    "  event_json TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ");";

/*
 * Delivery. An invocation is one matched target of one accepted event, kept
 * until delivered or given up: the target and the event are copied into the
 * row (what is in flight does not change with a later PutTargets), and the
 * row is written in the same transaction that removes the event from the
 * outbox. Rows are looked up by id only, so the table has no other index: it
 * takes tens of thousands of inserts and deletes a second. A dead letter is
 * an invocation that failed for good, for a target with a DeadLetterConfig;
 * it is listed by scope, or by scope and dead-letter queue, in id order.
 * AUTOINCREMENT on both: an id is never handed out twice, even after the
 * row with the largest id is deleted, so an id a caller still holds can
 * never name another row.
 */
static const char schema_v4[] =
    "CREATE TABLE invocations ("
    "  id                 INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account            TEXT NOT NULL,"
    "  region             TEXT NOT NULL,"
    "  bus                TEXT NOT NULL,"
    "  rule_arn           TEXT NOT NULL,"
    "  rule_name          TEXT NOT NULL,"
    "  target_id          TEXT NOT NULL,"
    "  target_arn         TEXT NOT NULL,"
    "  target_json        TEXT NOT NULL,"
    "  event_id           TEXT NOT NULL,"
    "  event_json         TEXT NOT NULL,"
    "  ingested_ms        INTEGER NOT NULL,"
    "  attempts           INTEGER NOT NULL,"
    "  next_ms            INTEGER NOT NULL,"
    "  hops               INTEGER NOT NULL,"
    "  last_error_code    TEXT,"
    "  last_error_message TEXT"
    ");"
    "CREATE TABLE dead_letters ("
    "  id            INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account       TEXT NOT NULL,"
    "  region        TEXT NOT NULL,"
    "  dlq_arn       TEXT NOT NULL,"
    "  bus           TEXT NOT NULL,"
    "  rule_arn      TEXT NOT NULL,"
    "  rule_name     TEXT NOT NULL,"
    "  target_id     TEXT NOT NULL,"
    "  target_arn    TEXT NOT NULL,"
    "  target_json   TEXT NOT NULL,"
    "  event_id      TEXT NOT NULL,"
    "  event_json    TEXT NOT NULL,"
    "  payload       TEXT,"
    "  error_code    TEXT NOT NULL,"
    "  error_message TEXT NOT NULL,"
    "  exhausted     TEXT,"
    "  attempts      INTEGER NOT NULL,"
    "  ingested_ms   INTEGER NOT NULL,"
    "  created_ms    INTEGER NOT NULL"
    ");"
    "CREATE INDEX dead_letters_by_scope ON dead_letters (account, region, id);"
    "CREATE INDEX dead_letters_by_dlq ON dead_letters (account, region, dlq_arn, id);";

/*
 * The scheduler (issue 6). schedule_state holds, per schedule rule, the
 * newest tick (scheduled fire time, ms) that has entered delivery: it is
 * written in the transaction that inserts that tick's invocations, so a
 * tick is recorded exactly when its invocations are. A trigger forgets the
 * row with its rule. manual_clock (one row) is the time of `serve --clock
 * manual`, so a restart resumes the manual clock where it stood.
 */
static const char schema_v5[] =
    "CREATE TABLE schedule_state ("
    "  account      TEXT NOT NULL,"
    "  region       TEXT NOT NULL,"
    "  bus          TEXT NOT NULL,"
    "  rule         TEXT NOT NULL,"
    "  last_tick_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (account, region, bus, rule)"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER rules_forget_ticks AFTER DELETE ON rules BEGIN"
    "  DELETE FROM schedule_state WHERE account = OLD.account AND region = OLD.region"
    "    AND bus = OLD.bus AND rule = OLD.name;"
    " END;"
    "CREATE TABLE manual_clock ("
    "  id     INTEGER PRIMARY KEY CHECK (id = 1),"
    "  now_ms INTEGER NOT NULL"
    ");";

const pb_store__migration pb_store__migrations[] = {
    {1, "buses, rules, targets, tags", schema_v1},
    {2, "index targets by arn", schema_v2},
    {3, "pipelines, executions, steps, parameters, event outbox", schema_v3},
    {4, "invocations and dead letters", schema_v4},
    {5, "schedule state and the manual clock", schema_v5},
};
const size_t pb_store__nmigrations = sizeof pb_store__migrations / sizeof pb_store__migrations[0];

/* ------------------------------------------------------------ the runner -- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sql_fail(sqlite3 *db, pb_error *err, const char *what)
{
    int rc = sqlite3_errcode(db) == SQLITE_NOMEM ? PB_ENOMEM : PB_EIO;
    return pb_error_set(err, rc, "schema migration: %s: %s", what, sqlite3_errmsg(db));
}

/* *found = whether version is recorded. Returns a SQLite code. */
static int is_recorded(sqlite3 *db, int version, bool *found)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 1, version);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *found = rc == SQLITE_ROW;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

static int record(sqlite3 *db, const pb_store__migration *m)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 1, m->version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, now_ms());
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    sqlite3_finalize(st);
    return rc;
}

static void rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Applies m unless recorded meanwhile, with its record, in one transaction. */
static int apply_one(sqlite3 *db, const pb_store__migration *m, pb_error *err)
{
    bool found = false;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(db, err, "BEGIN");
    if (is_recorded(db, m->version, &found) != SQLITE_OK)
        goto fail;
    if (!found) {
        if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK || record(db, m) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:;
    /* the message before ROLLBACK replaces it */
    int rc = sqlite3_errcode(db) == SQLITE_NOMEM ? PB_ENOMEM : PB_EIO;
    pb_error_set(err, rc, "schema migration %d (%s) failed: %s", m->version, m->name, sqlite3_errmsg(db));
    rollback(db);
    return rc;
}

int pb_store__migrate(sqlite3 *db, const pb_store__migration *m, size_t n, pb_error *err)
{
    int prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= prev || !m[i].sql || !m[i].name)
            return pb_error_set(err, PB_EINTERNAL, "schema migrations out of order at version %d", m[i].version);
        prev = m[i].version;
    }

    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "  version    INTEGER PRIMARY KEY,"
                     "  name       TEXT NOT NULL,"
                     "  applied_ms INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(db, err, "creating schema_migrations");

    sqlite3_stmt *st = NULL;
    int64_t newest = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        newest = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(db, err, "reading schema_migrations");
    if (newest > prev)
        return pb_error_set(err, PB_EUNSUPPORTED,
                            "the store's schema (version %lld) is newer than this pipebridge supports (version %d)",
                            (long long)newest, prev);

    for (size_t i = 0; i < n; i++) {
        bool found = false;
        if (is_recorded(db, m[i].version, &found) != SQLITE_OK)
            return sql_fail(db, err, "reading schema_migrations");
        if (!found && (rc = apply_one(db, &m[i], err)) != 0)
            return rc;
    }
    return 0;
}
