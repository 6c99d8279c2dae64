/*
 * test_store.c — the store (src/store): pb_store_open and the SQLite backend.
 *
 * Covers: URL schemes and their messages; a missing directory and a file that
 * is not a database; the connection's settings (WAL, synchronous=FULL,
 * foreign keys, busy timeout); migrations applied once, incrementally, and not
 * at all when one fails; every store function's success and error paths;
 * paging (prefix with '_' and '%', exclusive after, limit, more) with the
 * implicit default bus in its sorted place; rule replacement keeping
 * created_ms, created_by and targets; target and tag upserts and limits that
 * leave nothing changed; rollback of a write that fails half-way (NOT NULL,
 * and a trigger raising an error); durability across SIGKILL right after an
 * acknowledged write and at a random moment of a stream of writes; four
 * threads on one store, and two stores on one file.
 *
 * Every test works in its own directory made by mkdtemp under /tmp and
 * removes it afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/pb_error.h"
#include "store/pb_store.h"
#include "store/store_internal.h"

#include <sqlite3.h>

#include "fixture.h"

static const pb_scope SC = {"123456789012", "us-east-1"};
static const pb_scope SC_REGION = {"123456789012", "eu-west-1"};
static const pb_scope SC_ACCOUNT = {"210987654321", "us-east-1"};

/* ------------------------------------------------------------ fixture -- */

typedef pb_test_store_fx fx;

static int setup(void **state) { return pb_test_store_setup(state, "pb-store"); }
static int teardown(void **state) { return pb_test_store_teardown(state); }

/* ------------------------------------------------------------ helpers -- */

static char *bus_arn(const pb_scope *sc, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "arn:aws:events:%s:%s:event-bus/%s", sc->region, sc->account, name);
    return buf;
}

static char *rule_arn(const pb_scope *sc, const char *bus, const char *name, char *buf, size_t len)
{
    if (strcmp(bus, "default") == 0)
        snprintf(buf, len, "arn:aws:events:%s:%s:rule/%s", sc->region, sc->account, name);
    else
        snprintf(buf, len, "arn:aws:events:%s:%s:rule/%s/%s", sc->region, sc->account, bus, name);
    return buf;
}

static int mk_bus(pb_store *s, const pb_scope *sc, const char *name)
{
    char arn[256];
    pb_bus_rec b = {.name = (char *)name, .arn = bus_arn(sc, name, arn, sizeof arn), .created_ms = 100,
                    .modified_ms = 100};
    return s->ops->bus_create(s, sc, &b, NULL, 0);
}

static int mk_rule(pb_store *s, const pb_scope *sc, const char *bus, const char *name)
{
    char arn[256];
    pb_rule_rec r = {.bus = (char *)bus,
                     .name = (char *)name,
                     .arn = rule_arn(sc, bus, name, arn, sizeof arn),
                     .event_pattern = "{\"source\":[\"x\"]}",
                     .state = "ENABLED",
                     .created_ms = 1000,
                     .modified_ms = 1000};
    bool created = false;
    return s->ops->rule_put(s, sc, &r, NULL, 0, &created);
}

static pb_target_rec tgt(const char *id, const char *arn, const char *json)
{
    return (pb_target_rec){.id = (char *)id, .arn = (char *)arn, .json = (char *)json};
}

/* Joins the names of a bus list with ',' into buf. */
static const char *bus_names(const pb_bus_rec *v, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].name, len - strlen(buf) - 1);
    }
    return buf;
}

static const char *list_buses(pb_store *s, const pb_scope *sc, const char *prefix, const char *after, size_t limit,
                              bool *more, char *buf, size_t len)
{
    pb_bus_rec *v = (pb_bus_rec *)1;
    size_t n = 99;
    assert_int_equal(s->ops->bus_list(s, sc, prefix, after, limit, &v, &n, more), 0);
    if (n == 0)
        assert_null(v);
    bus_names(v, n, buf, len);
    pb_bus_recs_free(v, n);
    return buf;
}

static const char *list_rules(pb_store *s, const pb_scope *sc, const char *bus, const char *prefix,
                              const char *after, size_t limit, bool *more, char *buf, size_t len)
{
    pb_rule_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rule_list(s, sc, bus, prefix, after, limit, &v, &n, more), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].name, len - strlen(buf) - 1);
    }
    pb_rule_recs_free(v, n);
    return buf;
}

static const char *list_targets(pb_store *s, const pb_scope *sc, const char *bus, const char *rule,
                                const char *after, size_t limit, bool *more, char *buf, size_t len)
{
    pb_target_rec *v = NULL;
    size_t n = 0;
    bool m = false;
    assert_int_equal(s->ops->targets_list(s, sc, bus, rule, after, limit, &v, &n, more ? more : &m), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].id, len - strlen(buf) - 1);
        strncat(buf, "=", len - strlen(buf) - 1);
        strncat(buf, v[i].json, len - strlen(buf) - 1);
    }
    pb_target_recs_free(v, n);
    return buf;
}

static const char *list_tags(pb_store *s, const char *arn, char *buf, size_t len)
{
    pb_tag *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->tags_list(s, arn, &v, &n), 0);
    if (n == 0)
        assert_null(v);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i].key, len - strlen(buf) - 1);
        strncat(buf, "=", len - strlen(buf) - 1);
        strncat(buf, v[i].value, len - strlen(buf) - 1);
    }
    pb_tags_free(v, n);
    return buf;
}

static const char *names_by_target(pb_store *s, const pb_scope *sc, const char *bus, const char *arn,
                                   const char *after, size_t limit, bool *more, char *buf, size_t len)
{
    char **v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rules_by_target(s, sc, bus, arn, after, limit, &v, &n, more), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, v[i], len - strlen(buf) - 1);
    }
    pb_names_free(v, n);
    return buf;
}

/* -------------------------------------------------------------- open -- */

static void test_open_schemes(void **state)
{
    (void)state;
    pb_error err;
    pb_store *s = (pb_store *)1;

    pb_error_clear(&err);
    assert_int_equal(pb_store_open("postgresql://u:secret@db/pb", &s, &err), PB_EUNSUPPORTED);
    assert_null(s);
    assert_int_equal(err.code, PB_EUNSUPPORTED);
    assert_string_equal(err.message, "the PostgreSQL store is not yet supported; use sqlite:PATH");

    pb_error_clear(&err);
    s = (pb_store *)1;
    assert_int_equal(pb_store_open("postgres://u:secret@db/pb", &s, &err), PB_EUNSUPPORTED);
    assert_null(s);
    assert_string_equal(err.message, "the PostgreSQL store is not yet supported; use sqlite:PATH");

    pb_error_clear(&err);
    assert_int_equal(pb_store_open("mysql://u:secret@db/pb", &s, &err), PB_EVALIDATION);
    assert_null(s);
    assert_non_null(strstr(err.message, "mysql"));
    assert_null(strstr(err.message, "secret")); /* a URL's password never reaches a message */

    pb_error_clear(&err);
    assert_int_equal(pb_store_open("store.db", &s, &err), PB_EVALIDATION);
    assert_int_equal(pb_store_open("", &s, &err), PB_EVALIDATION);
    assert_int_equal(pb_store_open("sqlite:", &s, &err), PB_EVALIDATION);
    assert_non_null(strstr(err.message, "sqlite:PATH"));
    assert_int_equal(pb_store_open(NULL, &s, &err), PB_EVALIDATION);
    assert_null(s);
    assert_int_equal(pb_store_open("sqlite:/tmp/x.db", NULL, NULL), PB_EVALIDATION);

    /* an in-memory database (no WAL there) serves tests and tools */
    assert_int_equal(pb_store_open("sqlite::memory:", &s, &err), 0);
    assert_int_equal(mk_bus(s, &SC, "m"), 0);
    assert_int_equal(mk_bus(s, &SC, "m"), PB_EEXISTS);
    pb_store_close(s);
}

static void test_open_scheme_case_and_reopen(void **state)
{
    fx *f = *state;
    char url[200];
    snprintf(url, sizeof url, "SQLite:%s", f->path);
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_store_open(url, &f->s, &err), 0);
    pb_store *s = f->s;
    char arn[256];
    pb_tag tags[] = {{"team", "ml"}};
    pb_bus_rec b = {.name = "orders", .arn = bus_arn(&SC, "orders", arn, sizeof arn), .description = "the orders",
                    .extra_json = "{\"KmsKeyIdentifier\":\"k\"}", .created_ms = 1700000000123,
                    .modified_ms = 1700000000456};
    assert_int_equal(s->ops->bus_create(s, &SC, &b, tags, 1), 0);
    assert_int_equal(mk_rule(s, &SC, "orders", "r1"), 0);
    pb_target_rec t = tgt("t1", "arn:aws:sqs:us-east-1:123456789012:q", "{\"Id\":\"t1\"}");
    assert_int_equal(s->ops->targets_put(s, &SC, "orders", "r1", &t, 1, 5), 0);

    pb_test_store_fx_reopen(f);
    s = f->s;
    pb_bus_rec got;
    assert_int_equal(s->ops->bus_get(s, &SC, "orders", &got), 0);
    assert_string_equal(got.name, "orders");
    assert_string_equal(got.arn, arn);
    assert_string_equal(got.description, "the orders");
    assert_string_equal(got.extra_json, "{\"KmsKeyIdentifier\":\"k\"}");
    assert_true(got.created_ms == 1700000000123);
    assert_true(got.modified_ms == 1700000000456);
    pb_bus_rec_free(&got);
    assert_null(got.name);

    pb_rule_rec r;
    assert_int_equal(s->ops->rule_get(s, &SC, "orders", "r1", &r), 0);
    assert_string_equal(r.event_pattern, "{\"source\":[\"x\"]}");
    pb_rule_rec_free(&r);
    char buf[512];
    assert_string_equal(list_targets(s, &SC, "orders", "r1", NULL, 10, NULL, buf, sizeof buf), "t1={\"Id\":\"t1\"}");
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "team=ml");
}

static void test_open_missing_directory(void **state)
{
    fx *f = *state;
    char url[256], dir[200];
    snprintf(dir, sizeof dir, "%s/missing", f->dir);
    snprintf(url, sizeof url, "sqlite:%s/store.db", dir);
    pb_error err;
    pb_error_clear(&err);
    pb_store *s = (pb_store *)1;
    assert_int_equal(pb_store_open(url, &s, &err), PB_EIO);
    assert_null(s);
    assert_int_equal(err.code, PB_EIO);
    assert_non_null(strstr(err.message, "does not exist"));
    assert_non_null(strstr(err.message, dir));
    assert_int_equal(access(dir, F_OK), -1); /* not created */
}

static void test_open_not_a_database(void **state)
{
    fx *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not a SQLite database, just text.\n", fp);
    fclose(fp);
    pb_error err;
    pb_error_clear(&err);
    pb_store *s = (pb_store *)1;
    assert_int_equal(pb_store_open(f->url, &s, &err), PB_EIO);
    assert_null(s);
    assert_non_null(strstr(err.message, "not a database"));
    assert_non_null(strstr(err.message, f->path));
}

static void test_connection_settings(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    assert_non_null(db);
    char buf[64];
    assert_string_equal(pb_test_sql_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    assert_string_equal(pb_test_sql_text(db, "PRAGMA synchronous", buf, sizeof buf), "2"); /* FULL */
    assert_string_equal(pb_test_sql_text(db, "PRAGMA foreign_keys", buf, sizeof buf), "1");
    assert_true(atoi(pb_test_sql_text(db, "PRAGMA busy_timeout", buf, sizeof buf)) >= 1000);
    /* the foreign key really holds: a target without its rule is refused */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO targets VALUES ('1','r','default','nope','t','a','{}')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
}

/* -------------------------------------------------------- migrations -- */

static int count_rows(sqlite3 *db, const char *sql)
{
    char buf[32];
    return atoi(pb_test_sql_text(db, sql, buf, sizeof buf));
}

static void test_migrations_recorded_once(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    assert_true(pb_store__nmigrations >= 1);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations"), (int)pb_store__nmigrations);
    for (size_t i = 0; i < pb_store__nmigrations; i++) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM schema_migrations WHERE version = ?", -1, &st,
                                            NULL),
                         SQLITE_OK);
        sqlite3_bind_int(st, 1, pb_store__migrations[i].version);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), pb_store__migrations[i].name);
        sqlite3_finalize(st);
    }
    /* mark the records; a re-open that re-applied or re-recorded would change them */
    pb_test_sql_exec(db, "UPDATE schema_migrations SET applied_ms = 1");
    pb_test_store_fx_reopen(f);
    pb_test_store_fx_reopen(f);
    db = pb_store__sqlite_db(f->s);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations"), (int)pb_store__nmigrations);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations WHERE applied_ms = 1"),
                     (int)pb_store__nmigrations);
}

static void test_migrations_incremental(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    assert_int_equal(pb_store__migrations[1].version, 2); /* this test undoes migration 2 by hand */
    assert_int_equal(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'targets_by_arn'"), 1);
    pb_test_sql_exec(db, "DROP INDEX targets_by_arn; DELETE FROM schema_migrations WHERE version = 2");
    assert_int_equal(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'targets_by_arn'"), 0);
    pb_test_store_fx_reopen(f);
    db = pb_store__sqlite_db(f->s);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'targets_by_arn'"), 1);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations WHERE version = 2"), 1);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations"), (int)pb_store__nmigrations);
}

static void test_migration_failure_rolls_back(void **state)
{
    fx *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    const pb_store__migration bad[] = {
        {1, "one", "CREATE TABLE t1 (x);"},
        {2, "two", "CREATE TABLE t2 (x); INSERT INTO t1 VALUES (1); THIS IS NOT SQL;"},
        {3, "three", "CREATE TABLE t3 (x);"},
    };
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_store__migrate(db, bad, 3, &err), PB_EIO);
    assert_non_null(strstr(err.message, "migration 2"));
    assert_int_equal(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 't1'"), 1);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('t2', 't3')"), 0);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM t1"), 0);
    assert_int_equal(count_rows(db, "SELECT group_concat(version) FROM schema_migrations"), 1);
    assert_true(sqlite3_get_autocommit(db)); /* no transaction left open */

    /* fixed, it resumes at 2 */
    const pb_store__migration good[] = {bad[0], {2, "two", "CREATE TABLE t2 (x);"}, bad[2]};
    assert_int_equal(pb_store__migrate(db, good, 3, &err), 0);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM schema_migrations"), 3);

    const pb_store__migration unordered[] = {{2, "b", "SELECT 1;"}, {1, "a", "SELECT 1;"}};
    assert_int_equal(pb_store__migrate(db, unordered, 2, &err), PB_EINTERNAL);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    pb_test_sql_exec(pb_store__sqlite_db(s), "INSERT INTO schema_migrations VALUES (999, 'future', 0)");
    pb_store_close(s);
    f->s = NULL;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_store_open(f->url, &f->s, &err), PB_EUNSUPPORTED);
    assert_null(f->s);
    assert_non_null(strstr(err.message, "999"));
}

/* ------------------------------------------------------------- buses -- */

static void test_bus_create_get_delete(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], buf[512];
    pb_tag tags[] = {{"b", "2"}, {"a", "1"}};
    pb_bus_rec b = {.name = "orders", .arn = bus_arn(&SC, "orders", arn, sizeof arn), .created_ms = 5,
                    .modified_ms = 6};
    assert_int_equal(s->ops->bus_create(s, &SC, &b, tags, 2), 0);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=1,b=2");
    assert_int_equal(s->ops->bus_create(s, &SC, &b, NULL, 0), PB_EEXISTS);
    /* the same name in another region or account is another bus */
    assert_int_equal(mk_bus(s, &SC_REGION, "orders"), 0);
    assert_int_equal(mk_bus(s, &SC_ACCOUNT, "orders"), 0);

    pb_bus_rec got;
    assert_int_equal(s->ops->bus_get(s, &SC, "orders", &got), 0);
    assert_null(got.description);
    assert_null(got.extra_json);
    assert_true(got.created_ms == 5 && got.modified_ms == 6);
    pb_bus_rec_free(&got);
    assert_int_equal(s->ops->bus_get(s, &SC, "nope", &got), PB_ENOTFOUND);
    assert_null(got.name);

    /* the default bus exists everywhere without a row */
    pb_bus_rec def = {.name = "default", .arn = "x", .created_ms = 1, .modified_ms = 1};
    assert_int_equal(s->ops->bus_create(s, &SC, &def, NULL, 0), PB_EEXISTS);
    assert_int_equal(s->ops->bus_get(s, &SC_ACCOUNT, "default", &got), 0);
    assert_string_equal(got.name, "default");
    assert_string_equal(got.arn, "arn:aws:events:us-east-1:210987654321:event-bus/default");
    assert_true(got.created_ms == 0);
    assert_null(got.description);
    pb_bus_rec_free(&got);

    /* delete: refused while rules remain, then removes the bus and its tags */
    assert_int_equal(mk_rule(s, &SC, "orders", "r1"), 0);
    assert_int_equal(s->ops->bus_delete(s, &SC, "orders"), PB_ECONFLICT);
    assert_int_equal(s->ops->bus_get(s, &SC, "orders", &got), 0);
    pb_bus_rec_free(&got);
    assert_int_equal(s->ops->rule_delete(s, &SC, "orders", "r1"), 0);
    assert_int_equal(s->ops->bus_delete(s, &SC, "orders"), 0);
    assert_int_equal(s->ops->bus_get(s, &SC, "orders", &got), PB_ENOTFOUND);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
    assert_int_equal(s->ops->bus_delete(s, &SC, "orders"), PB_ENOTFOUND);
    assert_int_equal(s->ops->bus_get(s, &SC_REGION, "orders", &got), 0); /* others untouched */
    pb_bus_rec_free(&got);
    /* and can be created again */
    assert_int_equal(mk_bus(s, &SC, "orders"), 0);

    /* default: rules on it block deletion; otherwise it stays (implicit) */
    assert_int_equal(mk_rule(s, &SC, "default", "r"), 0);
    assert_int_equal(s->ops->bus_delete(s, &SC, "default"), PB_ECONFLICT);
    assert_int_equal(s->ops->rule_delete(s, &SC, "default", "r"), 0);
    assert_int_equal(s->ops->bus_delete(s, &SC, "default"), 0);
    assert_int_equal(s->ops->bus_get(s, &SC, "default", &got), 0);
    pb_bus_rec_free(&got);

    /* bad arguments */
    pb_bus_rec noname = {.arn = "x"};
    assert_int_equal(s->ops->bus_create(s, &SC, &noname, NULL, 0), PB_EVALIDATION);
    pb_bus_rec noarn = {.name = "x"};
    assert_int_equal(s->ops->bus_create(s, &SC, &noarn, NULL, 0), PB_EVALIDATION); /* NOT NULL */
    pb_scope half = {"123456789012", NULL};
    assert_int_equal(s->ops->bus_get(s, &half, "orders", &got), PB_EVALIDATION);
}

static void test_bus_create_tags_atomic(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256];
    pb_tag tags[] = {{"a", "1"}, {"b", NULL}}; /* the second fails NOT NULL after the insert */
    pb_bus_rec b = {.name = "orders", .arn = bus_arn(&SC, "orders", arn, sizeof arn), .created_ms = 1,
                    .modified_ms = 1};
    assert_int_equal(s->ops->bus_create(s, &SC, &b, tags, 2), PB_EVALIDATION);
    pb_bus_rec got;
    assert_int_equal(s->ops->bus_get(s, &SC, "orders", &got), PB_ENOTFOUND);
    char buf[64];
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
}

static void test_bus_list_paging(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    const char *names[] = {"b", "ab", "a_b", "aXb", "a%b", "zeta", "d"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(mk_bus(s, &SC, names[i]), 0);
    assert_int_equal(mk_bus(s, &SC_REGION, "other"), 0);
    char buf[512];
    bool more = true;

    /* byte order: '%' < 'X' < '_' < 'b'; default in its place */
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 100, &more, buf, sizeof buf),
                        "a%b,aXb,a_b,ab,b,d,default,zeta");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 8, &more, buf, sizeof buf),
                        "a%b,aXb,a_b,ab,b,d,default,zeta");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 7, &more, buf, sizeof buf), "a%b,aXb,a_b,ab,b,d,default");
    assert_true(more);
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 6, &more, buf, sizeof buf), "a%b,aXb,a_b,ab,b,d");
    assert_true(more);

    /* paging with after */
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 3, &more, buf, sizeof buf), "a%b,aXb,a_b");
    assert_true(more);
    assert_string_equal(list_buses(s, &SC, NULL, "a_b", 3, &more, buf, sizeof buf), "ab,b,d");
    assert_true(more);
    assert_string_equal(list_buses(s, &SC, NULL, "d", 3, &more, buf, sizeof buf), "default,zeta");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, NULL, "default", 3, &more, buf, sizeof buf), "zeta");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, NULL, "zeta", 3, &more, buf, sizeof buf), "");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, NULL, "c", 1, &more, buf, sizeof buf), "d"); /* after need not exist */
    assert_true(more);

    /* prefixes are literal: '_' and '%' are not wildcards */
    assert_string_equal(list_buses(s, &SC, "a_", NULL, 100, &more, buf, sizeof buf), "a_b");
    assert_string_equal(list_buses(s, &SC, "a%", NULL, 100, &more, buf, sizeof buf), "a%b");
    assert_string_equal(list_buses(s, &SC, "a", NULL, 100, &more, buf, sizeof buf), "a%b,aXb,a_b,ab");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, "a", NULL, 2, &more, buf, sizeof buf), "a%b,aXb");
    assert_true(more);
    assert_string_equal(list_buses(s, &SC, "a", "aXb", 2, &more, buf, sizeof buf), "a_b,ab");
    assert_false(more);
    assert_string_equal(list_buses(s, &SC, "b", "a", 10, &more, buf, sizeof buf), "b"); /* after < prefix */
    assert_string_equal(list_buses(s, &SC, "d", NULL, 10, &more, buf, sizeof buf), "d,default");
    assert_string_equal(list_buses(s, &SC, "de", NULL, 10, &more, buf, sizeof buf), "default");
    assert_string_equal(list_buses(s, &SC, "defaults", NULL, 10, &more, buf, sizeof buf), "");
    assert_string_equal(list_buses(s, &SC, "A", NULL, 10, &more, buf, sizeof buf), ""); /* case-sensitive */

    /* limit 0: nothing, but says whether anything is there */
    assert_string_equal(list_buses(s, &SC, NULL, NULL, 0, &more, buf, sizeof buf), "");
    assert_true(more);
    assert_string_equal(list_buses(s, &SC, "q", NULL, 0, &more, buf, sizeof buf), "");
    assert_false(more);
    /* SIZE_MAX: everything */
    assert_string_equal(list_buses(s, &SC, "a", NULL, SIZE_MAX, &more, buf, sizeof buf), "a%b,aXb,a_b,ab");

    /* scopes */
    assert_string_equal(list_buses(s, &SC_REGION, NULL, NULL, 10, &more, buf, sizeof buf), "default,other");
    assert_string_equal(list_buses(s, &SC_ACCOUNT, NULL, NULL, 10, &more, buf, sizeof buf), "default");

    pb_bus_rec *v;
    size_t n;
    assert_int_equal(s->ops->bus_list(s, &SC, NULL, NULL, 10, &v, &n, NULL), PB_EVALIDATION);
}

/* ------------------------------------------------------------- rules -- */

static void test_rule_put_get_replace(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], buf[512];
    bool created = false;
    assert_int_equal(mk_bus(s, &SC, "orders"), 0);

    pb_tag tags[] = {{"k", "v"}};
    pb_rule_rec r = {.bus = "orders",
                     .name = "r'; DROP TABLE rules; --",
                     .arn = rule_arn(&SC, "orders", "r1", arn, sizeof arn),
                     .event_pattern = "{\"detail\":{\"x\":[{\"prefix\":\"%_\"}]}}",
                     .schedule = NULL,
                     .state = "ENABLED",
                     .description = "d\xc3\xa9scription",
                     .role_arn = "arn:aws:iam::123456789012:role/r",
                     .managed_by = NULL,
                     .created_by = NULL, /* the scope's account */
                     .created_ms = 1000,
                     .modified_ms = 1001};
    assert_int_equal(s->ops->rule_put(s, &SC, &r, tags, 1, &created), 0);
    assert_true(created);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "k=v");

    pb_rule_rec got;
    assert_int_equal(s->ops->rule_get(s, &SC, "orders", r.name, &got), 0);
    assert_string_equal(got.bus, "orders");
    assert_string_equal(got.name, r.name);
    assert_string_equal(got.arn, arn);
    assert_string_equal(got.event_pattern, r.event_pattern);
    assert_null(got.schedule);
    assert_string_equal(got.state, "ENABLED");
    assert_string_equal(got.description, r.description);
    assert_string_equal(got.role_arn, r.role_arn);
    assert_null(got.managed_by);
    assert_string_equal(got.created_by, SC.account);
    assert_true(got.created_ms == 1000 && got.modified_ms == 1001);
    pb_rule_rec_free(&got);

    pb_target_rec t[] = {tgt("a", "arn:a", "{\"Id\":\"a\"}"), tgt("b", "arn:b", "{\"Id\":\"b\"}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "orders", r.name, t, 2, 5), 0);

    /* replace: everything but created_ms, created_by and targets; tags untouched */
    pb_tag tags2[] = {{"other", "x"}};
    pb_rule_rec r2 = {.bus = "orders",
                      .name = r.name,
                      .arn = arn,
                      .schedule = "rate(5 minutes)",
                      .state = "DISABLED",
                      .managed_by = "svc.amazonaws.com",
                      .created_by = "999999999999",
                      .created_ms = 5000,
                      .modified_ms = 6000};
    created = true;
    assert_int_equal(s->ops->rule_put(s, &SC, &r2, tags2, 1, &created), 0);
    assert_false(created);
    assert_int_equal(s->ops->rule_get(s, &SC, "orders", r.name, &got), 0);
    assert_null(got.event_pattern);
    assert_string_equal(got.schedule, "rate(5 minutes)");
    assert_string_equal(got.state, "DISABLED");
    assert_null(got.description);
    assert_null(got.role_arn);
    assert_string_equal(got.managed_by, "svc.amazonaws.com");
    assert_string_equal(got.created_by, SC.account);
    assert_true(got.created_ms == 1000);
    assert_true(got.modified_ms == 6000);
    pb_rule_rec_free(&got);
    assert_string_equal(list_targets(s, &SC, "orders", r.name, NULL, 10, NULL, buf, sizeof buf),
                        "a={\"Id\":\"a\"},b={\"Id\":\"b\"}");
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "k=v");

    /* created may be NULL; the default bus needs no row; others must exist */
    pb_rule_rec r3 = {.bus = "default", .name = "d1", .arn = "arn:d1", .state = "ENABLED", .created_by = "111"};
    assert_int_equal(s->ops->rule_put(s, &SC_ACCOUNT, &r3, NULL, 0, NULL), 0);
    assert_int_equal(s->ops->rule_get(s, &SC_ACCOUNT, "default", "d1", &got), 0);
    assert_string_equal(got.created_by, "111");
    pb_rule_rec_free(&got);
    r3.bus = "nope";
    assert_int_equal(s->ops->rule_put(s, &SC, &r3, NULL, 0, &created), PB_ENOTFOUND);
    r3.bus = "orders";
    assert_int_equal(s->ops->rule_put(s, &SC_REGION, &r3, NULL, 0, &created), PB_ENOTFOUND); /* scoped */
    assert_int_equal(s->ops->rule_get(s, &SC, "orders", "d1", &got), PB_ENOTFOUND);
    assert_null(got.name);
    assert_int_equal(s->ops->rule_get(s, &SC, "default", r.name, &got), PB_ENOTFOUND);

    /* required members */
    pb_rule_rec nostate = {.bus = "orders", .name = "x", .arn = "arn:x"};
    assert_int_equal(s->ops->rule_put(s, &SC, &nostate, NULL, 0, &created), PB_EVALIDATION);
    assert_int_equal(s->ops->rule_get(s, &SC, "orders", "x", &got), PB_ENOTFOUND);
    pb_rule_rec nobus = {.name = "x", .arn = "arn:x", .state = "ENABLED"};
    assert_int_equal(s->ops->rule_put(s, &SC, &nobus, NULL, 0, &created), PB_EVALIDATION);
}

static void test_rule_put_tags_atomic(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    pb_tag tags[] = {{"a", "1"}, {NULL, "2"}};
    pb_rule_rec r = {.bus = "default", .name = "r", .arn = "arn:r", .state = "ENABLED"};
    bool created = false;
    assert_int_equal(s->ops->rule_put(s, &SC, &r, tags, 2, &created), PB_EVALIDATION);
    assert_false(created);
    pb_rule_rec got;
    assert_int_equal(s->ops->rule_get(s, &SC, "default", "r", &got), PB_ENOTFOUND);
    char buf[64];
    assert_string_equal(list_tags(s, "arn:r", buf, sizeof buf), "");
}

static void test_rule_delete_and_state(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char arn[256], buf[256];
    pb_tag tags[] = {{"k", "v"}};
    pb_rule_rec r = {.bus = "default", .name = "r1", .arn = rule_arn(&SC, "default", "r1", arn, sizeof arn),
                     .state = "ENABLED", .created_ms = 1, .modified_ms = 1};
    assert_int_equal(s->ops->rule_put(s, &SC, &r, tags, 1, NULL), 0);

    assert_int_equal(s->ops->rule_set_state(s, &SC, "default", "r1", "DISABLED"), 0);
    pb_rule_rec got;
    assert_int_equal(s->ops->rule_get(s, &SC, "default", "r1", &got), 0);
    assert_string_equal(got.state, "DISABLED");
    assert_true(got.created_ms == 1);
    assert_true(got.modified_ms > 1); /* now */
    pb_rule_rec_free(&got);
    assert_int_equal(s->ops->rule_set_state(s, &SC, "default", "nope", "ENABLED"), PB_ENOTFOUND);
    assert_int_equal(s->ops->rule_set_state(s, &SC_REGION, "default", "r1", "ENABLED"), PB_ENOTFOUND);
    assert_int_equal(s->ops->rule_set_state(s, &SC, "default", "r1", NULL), PB_EVALIDATION);

    pb_target_rec t = tgt("t", "arn:t", "{}");
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r1", &t, 1, 5), 0);
    assert_int_equal(s->ops->rule_delete(s, &SC, "default", "r1"), PB_ECONFLICT);
    assert_int_equal(s->ops->rule_get(s, &SC, "default", "r1", &got), 0);
    pb_rule_rec_free(&got);
    const char *ids[] = {"t"};
    assert_int_equal(s->ops->targets_remove(s, &SC, "default", "r1", ids, 1), 0);
    assert_int_equal(s->ops->rule_delete(s, &SC, "default", "r1"), 0);
    assert_int_equal(s->ops->rule_get(s, &SC, "default", "r1", &got), PB_ENOTFOUND);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
    assert_int_equal(s->ops->rule_delete(s, &SC, "default", "r1"), PB_ENOTFOUND);

    /* re-created, it starts afresh: created, no old tags */
    bool created = false;
    assert_int_equal(s->ops->rule_put(s, &SC, &r, NULL, 0, &created), 0);
    assert_true(created);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
}

static void test_rule_list_paging(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    bool more = true;
    assert_int_equal(mk_bus(s, &SC, "orders"), 0);
    const char *names[] = {"r_1", "r%1", "rX1", "r1", "s", "r10", "r2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(mk_rule(s, &SC, "orders", names[i]), 0);
    assert_int_equal(mk_rule(s, &SC, "default", "r9"), 0);
    assert_int_equal(mk_rule(s, &SC_REGION, "default", "r8"), 0);

    assert_string_equal(list_rules(s, &SC, "orders", NULL, NULL, 100, &more, buf, sizeof buf),
                        "r%1,r1,r10,r2,rX1,r_1,s");
    assert_false(more);
    assert_string_equal(list_rules(s, &SC, "orders", "r", NULL, 100, &more, buf, sizeof buf),
                        "r%1,r1,r10,r2,rX1,r_1");
    assert_string_equal(list_rules(s, &SC, "orders", "r_", NULL, 100, &more, buf, sizeof buf), "r_1");
    assert_string_equal(list_rules(s, &SC, "orders", "r%", NULL, 100, &more, buf, sizeof buf), "r%1");
    assert_string_equal(list_rules(s, &SC, "orders", "r1", NULL, 100, &more, buf, sizeof buf), "r1,r10");
    assert_string_equal(list_rules(s, &SC, "orders", "r", NULL, 2, &more, buf, sizeof buf), "r%1,r1");
    assert_true(more);
    assert_string_equal(list_rules(s, &SC, "orders", "r", "r1", 2, &more, buf, sizeof buf), "r10,r2");
    assert_true(more);
    assert_string_equal(list_rules(s, &SC, "orders", "r", "r2", 2, &more, buf, sizeof buf), "rX1,r_1");
    assert_false(more);
    assert_string_equal(list_rules(s, &SC, "orders", NULL, "r_1", 2, &more, buf, sizeof buf), "s");
    assert_false(more);
    assert_string_equal(list_rules(s, &SC, "orders", NULL, NULL, 0, &more, buf, sizeof buf), "");
    assert_true(more);
    assert_string_equal(list_rules(s, &SC, "default", NULL, NULL, 10, &more, buf, sizeof buf), "r9");
    assert_string_equal(list_rules(s, &SC_REGION, "default", NULL, NULL, 10, &more, buf, sizeof buf), "r8");
    assert_string_equal(list_rules(s, &SC_ACCOUNT, "default", NULL, NULL, 10, &more, buf, sizeof buf), "");
    assert_false(more);

    pb_rule_rec *v = (pb_rule_rec *)1;
    size_t n = 9;
    assert_int_equal(s->ops->rule_list(s, &SC, "nope", NULL, NULL, 10, &v, &n, &more), PB_ENOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->rule_list(s, &SC_REGION, "orders", NULL, NULL, 10, &v, &n, &more), PB_ENOTFOUND);
}

static void test_rule_list_all(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    pb_rule_entry *v = (pb_rule_entry *)1;
    size_t n = 9;
    assert_int_equal(s->ops->rule_list_all(s, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);

    assert_int_equal(mk_bus(s, &SC, "b"), 0);
    assert_int_equal(mk_rule(s, &SC, "default", "z"), 0);
    assert_int_equal(mk_rule(s, &SC, "b", "y"), 0);
    assert_int_equal(mk_rule(s, &SC, "b", "a"), 0);
    assert_int_equal(mk_rule(s, &SC_REGION, "default", "m"), 0);
    assert_int_equal(mk_rule(s, &SC_ACCOUNT, "default", "n"), 0);
    assert_int_equal(s->ops->rule_list_all(s, &v, &n), 0);
    assert_int_equal(n, 5);
    const char *want[][4] = {{"123456789012", "eu-west-1", "default", "m"},
                             {"123456789012", "us-east-1", "b", "a"},
                             {"123456789012", "us-east-1", "b", "y"},
                             {"123456789012", "us-east-1", "default", "z"},
                             {"210987654321", "us-east-1", "default", "n"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].account, want[i][0]);
        assert_string_equal(v[i].region, want[i][1]);
        assert_string_equal(v[i].rule.bus, want[i][2]);
        assert_string_equal(v[i].rule.name, want[i][3]);
        assert_string_equal(v[i].rule.state, "ENABLED");
    }
    pb_rule_entries_free(v, n);
}

/* ----------------------------------------------------------- targets -- */

static void test_targets(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    bool more = true;
    assert_int_equal(mk_rule(s, &SC, "default", "r"), 0);

    pb_target_rec t1[] = {tgt("b", "arn:b", "{\"Id\":\"b\"}"), tgt("a", "arn:a", "{\"Id\":\"a\"}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", t1, 2, 5), 0);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, &more, buf, sizeof buf),
                        "a={\"Id\":\"a\"},b={\"Id\":\"b\"}");
    assert_false(more);

    /* upsert: b replaced, c added */
    pb_target_rec t2[] = {tgt("b", "arn:b2", "{\"Id\":\"b\",\"v\":2}"), tgt("c", "arn:c", "{\"Id\":\"c\"}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", t2, 2, 5), 0);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, &more, buf, sizeof buf),
                        "a={\"Id\":\"a\"},b={\"Id\":\"b\",\"v\":2},c={\"Id\":\"c\"}");
    pb_target_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->targets_list(s, &SC, "default", "r", "a", 1, &v, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "b");
    assert_string_equal(v[0].arn, "arn:b2");
    assert_true(more);
    pb_target_recs_free(v, n);
    assert_string_equal(list_targets(s, &SC, "default", "r", "b", 1, &more, buf, sizeof buf), "c={\"Id\":\"c\"}");
    assert_false(more);
    assert_string_equal(list_targets(s, &SC, "default", "r", "c", 1, &more, buf, sizeof buf), "");
    assert_false(more);

    /* the limit counts the targets after the upsert; exceeding it changes nothing */
    pb_target_rec t3[] = {tgt("a", "arn:a", "{\"changed\":1}"), tgt("d", "arn:d", "{}"), tgt("e", "arn:e", "{}"),
                          tgt("f", "arn:f", "{}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", t3, 4, 5), PB_ELIMIT);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, &more, buf, sizeof buf),
                        "a={\"Id\":\"a\"},b={\"Id\":\"b\",\"v\":2},c={\"Id\":\"c\"}");
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", t3, 3, 5), 0); /* exactly 5 is fine */
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, &more, buf, sizeof buf),
                        "a={\"changed\":1},b={\"Id\":\"b\",\"v\":2},c={\"Id\":\"c\"},d={},e={}");
    pb_target_rec same = tgt("a", "arn:a", "{}");
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", &same, 1, 5), 0); /* replacing stays at 5 */

    /* remove: absent ids ignored */
    const char *ids[] = {"zz", "c", "a", "c"};
    assert_int_equal(s->ops->targets_remove(s, &SC, "default", "r", ids, 4), 0);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, &more, buf, sizeof buf),
                        "b={\"Id\":\"b\",\"v\":2},d={},e={}");
    assert_int_equal(s->ops->targets_remove(s, &SC, "default", "r", NULL, 0), 0);

    /* rules that do not exist */
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "nope", t1, 2, 5), PB_ENOTFOUND);
    assert_int_equal(s->ops->targets_put(s, &SC_REGION, "default", "r", t1, 2, 5), PB_ENOTFOUND);
    assert_int_equal(s->ops->targets_remove(s, &SC, "default", "nope", ids, 1), PB_ENOTFOUND);
    v = (pb_target_rec *)1;
    assert_int_equal(s->ops->targets_list(s, &SC, "default", "nope", NULL, 10, &v, &n, &more), PB_ENOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->targets_list(s, &SC, "other", "r", NULL, 10, &v, &n, &more), PB_ENOTFOUND);

    /* a rule without targets lists nothing */
    assert_int_equal(mk_rule(s, &SC, "default", "empty"), 0);
    assert_string_equal(list_targets(s, &SC, "default", "empty", NULL, 10, &more, buf, sizeof buf), "");
    assert_false(more);
}

static void test_targets_put_failure_keeps_previous(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    assert_int_equal(mk_rule(s, &SC, "default", "r"), 0);
    pb_target_rec t1[] = {tgt("a", "arn:a", "{\"v\":1}"), tgt("b", "arn:b", "{\"v\":1}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", t1, 2, 5), 0);
    const char *before = "a={\"v\":1},b={\"v\":1}";

    /* NOT NULL on the third row, after two rows were written */
    pb_target_rec bad[] = {tgt("a", "arn:a", "{\"v\":2}"), tgt("c", "arn:c", "{\"v\":2}"), tgt("d", NULL, "{}")};
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", bad, 3, 5), PB_EVALIDATION);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, NULL, buf, sizeof buf), before);

    /* an unexpected failure half-way (a trigger standing in for a disk error) */
    pb_test_sql_exec(pb_store__sqlite_db(s), "CREATE TRIGGER boom BEFORE INSERT ON targets WHEN NEW.id = 'boom' "
                                             "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    pb_target_rec bad2[] = {tgt("b", "arn:b", "{\"v\":3}"), tgt("c", "arn:c", "{\"v\":3}"),
                            tgt("boom", "arn:x", "{}")};
    fprintf(stderr, "(an \"injected failure\" logged below is expected)\n");
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", bad2, 3, 5), PB_EIO);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, NULL, buf, sizeof buf), before);
    assert_true(sqlite3_get_autocommit(pb_store__sqlite_db(s))); /* rolled back, not left open */

    /* and the store goes on working */
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r", bad2, 2, 5), 0);
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, NULL, buf, sizeof buf),
                        "a={\"v\":1},b={\"v\":3},c={\"v\":3}");
    pb_test_store_fx_reopen(f);
    s = f->s;
    assert_string_equal(list_targets(s, &SC, "default", "r", NULL, 10, NULL, buf, sizeof buf),
                        "a={\"v\":1},b={\"v\":3},c={\"v\":3}");
}

static void test_rules_by_target(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    bool more = true;
    assert_int_equal(mk_bus(s, &SC, "b1"), 0);
    const char *rules[] = {"r3", "r1", "r2", "r4"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mk_rule(s, &SC, "b1", rules[i]), 0);
    assert_int_equal(mk_rule(s, &SC, "default", "r0"), 0);
    const char *A = "arn:aws:lambda:us-east-1:123456789012:function:f";
    pb_target_rec two[] = {tgt("t1", A, "{}"), tgt("t2", A, "{}")};
    pb_target_rec one = tgt("t", A, "{}");
    pb_target_rec other = tgt("t", "arn:other", "{}");
    assert_int_equal(s->ops->targets_put(s, &SC, "b1", "r1", two, 2, 5), 0);
    assert_int_equal(s->ops->targets_put(s, &SC, "b1", "r3", &one, 1, 5), 0);
    assert_int_equal(s->ops->targets_put(s, &SC, "b1", "r4", &one, 1, 5), 0);
    assert_int_equal(s->ops->targets_put(s, &SC, "b1", "r2", &other, 1, 5), 0);
    assert_int_equal(s->ops->targets_put(s, &SC, "default", "r0", &one, 1, 5), 0);

    assert_string_equal(names_by_target(s, &SC, "b1", A, NULL, 10, &more, buf, sizeof buf), "r1,r3,r4");
    assert_false(more);
    assert_string_equal(names_by_target(s, &SC, "b1", A, NULL, 2, &more, buf, sizeof buf), "r1,r3");
    assert_true(more);
    assert_string_equal(names_by_target(s, &SC, "b1", A, "r3", 2, &more, buf, sizeof buf), "r4");
    assert_false(more);
    assert_string_equal(names_by_target(s, &SC, "b1", A, "r2", 1, &more, buf, sizeof buf), "r3");
    assert_true(more);
    assert_string_equal(names_by_target(s, &SC, "b1", "arn:other", NULL, 10, &more, buf, sizeof buf), "r2");
    assert_string_equal(names_by_target(s, &SC, "b1", "arn:none", NULL, 10, &more, buf, sizeof buf), "");
    assert_false(more);
    assert_string_equal(names_by_target(s, &SC, "default", A, NULL, 10, &more, buf, sizeof buf), "r0");
    assert_string_equal(names_by_target(s, &SC_REGION, "default", A, NULL, 10, &more, buf, sizeof buf), "");

    const char *ids[] = {"t1", "t2"};
    assert_int_equal(s->ops->targets_remove(s, &SC, "b1", "r1", ids, 2), 0);
    assert_string_equal(names_by_target(s, &SC, "b1", A, NULL, 10, &more, buf, sizeof buf), "r3,r4");

    char **v = (char **)1;
    size_t n = 3;
    assert_int_equal(s->ops->rules_by_target(s, &SC, "nope", A, NULL, 10, &v, &n, &more), PB_ENOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
}

/* -------------------------------------------------------------- tags -- */

static void test_tags(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    const char *arn = "arn:aws:events:us-east-1:123456789012:rule/r";
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");

    pb_tag t1[] = {{"b", "2"}, {"a", "1"}, {"c", ""}};
    assert_int_equal(s->ops->tags_set(s, arn, t1, 3, 4), 0);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=1,b=2,c=");
    pb_tag t2[] = {{"b", "22"}};
    assert_int_equal(s->ops->tags_set(s, arn, t2, 1, 4), 0);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=1,b=22,c=");

    /* over the limit: nothing changes, not even the overwrites */
    pb_tag t3[] = {{"a", "changed"}, {"d", "4"}, {"e", "5"}};
    assert_int_equal(s->ops->tags_set(s, arn, t3, 3, 4), PB_ELIMIT);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=1,b=22,c=");
    assert_int_equal(s->ops->tags_set(s, arn, t3, 2, 4), 0); /* exactly 4 */
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=changed,b=22,c=,d=4");
    assert_int_equal(s->ops->tags_set(s, arn, t2, 1, 4), 0); /* overwrite at the limit */

    /* per resource */
    assert_int_equal(s->ops->tags_set(s, "arn:other", t3, 3, 4), 0);
    assert_string_equal(list_tags(s, "arn:other", buf, sizeof buf), "a=changed,d=4,e=5");

    const char *keys[] = {"zz", "b", "d"};
    assert_int_equal(s->ops->tags_remove(s, arn, keys, 3), 0);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=changed,c=");
    assert_int_equal(s->ops->tags_remove(s, "arn:none", keys, 3), 0);
    assert_string_equal(list_tags(s, "arn:other", buf, sizeof buf), "a=changed,d=4,e=5");

    /* NOT NULL half-way rolls back */
    pb_tag bad[] = {{"x", "1"}, {"y", NULL}};
    assert_int_equal(s->ops->tags_set(s, arn, bad, 2, 50), PB_EVALIDATION);
    assert_string_equal(list_tags(s, arn, buf, sizeof buf), "a=changed,c=");
    assert_int_equal(s->ops->tags_set(s, NULL, t1, 1, 50), PB_EVALIDATION);
    pb_tag *v;
    size_t n;
    assert_int_equal(s->ops->tags_list(s, NULL, &v, &n), PB_EVALIDATION);
}

static void test_free_helpers_accept_null(void **state)
{
    (void)state;
    pb_bus_rec_free(NULL);
    pb_rule_rec_free(NULL);
    pb_target_rec_free(NULL);
    pb_tags_free(NULL, 0);
    pb_bus_recs_free(NULL, 0);
    pb_rule_recs_free(NULL, 0);
    pb_target_recs_free(NULL, 0);
    pb_rule_entries_free(NULL, 0);
    pb_names_free(NULL, 0);
    pb_store_close(NULL);
    pb_bus_rec b = {0};
    pb_bus_rec_free(&b);
    pb_rule_rec r = {.name = strdup("x"), .state = strdup("ENABLED")};
    pb_rule_rec_free(&r);
    assert_null(r.name);
    assert_null(r.state);
}

/* -------------------------------------------------------- durability -- */

/* The child writes a rule with a tag and is killed as soon as the call
 * returns: what was acknowledged must be there. */
static void test_durable_after_sigkill(void **state)
{
    fx *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pb_store *s = NULL;
        if (pb_store_open(f->url, &s, NULL) != 0)
            _exit(10);
        pb_tag tag = {"k", "v"};
        pb_rule_rec r = {.bus = "default", .name = "acked", .arn = "arn:acked", .state = "ENABLED",
                         .created_ms = 7, .modified_ms = 7};
        if (s->ops->rule_put(s, &SC, &r, &tag, 1, NULL) != 0)
            _exit(11);
        pb_target_rec t = tgt("t", "arn:t", "{}");
        if (s->ops->targets_put(s, &SC, "default", "acked", &t, 1, 5) != 0)
            _exit(12);
        kill(getpid(), SIGKILL);
        _exit(13);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of being killed", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    pb_store *s = pb_test_store_fx_open(f);
    pb_rule_rec got;
    assert_int_equal(s->ops->rule_get(s, &SC, "default", "acked", &got), 0);
    assert_true(got.created_ms == 7);
    pb_rule_rec_free(&got);
    char buf[128];
    assert_string_equal(list_tags(s, "arn:acked", buf, sizeof buf), "k=v");
    assert_string_equal(list_targets(s, &SC, "default", "acked", NULL, 10, NULL, buf, sizeof buf), "t={}");
}

/* The child writes rules (each with a tag) one after another, reporting each
 * acknowledged one on a pipe; the parent kills it at some point. Every
 * acknowledged rule is there; the one in flight is there whole or not at all. */
static void test_durable_killed_midstream(void **state)
{
    fx *f = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        pb_store *s = NULL;
        if (pb_store_open(f->url, &s, NULL) != 0)
            _exit(10);
        for (int32_t i = 0; i < 1000000; i++) {
            char name[32], arn[64];
            snprintf(name, sizeof name, "r%07d", (int)i);
            snprintf(arn, sizeof arn, "arn:%s", name);
            pb_tag tag = {"k", name};
            pb_rule_rec r = {.bus = "default", .name = name, .arn = arn, .state = "ENABLED"};
            if (s->ops->rule_put(s, &SC, &r, &tag, 1, NULL) != 0)
                _exit(11);
            if (write(p[1], &i, sizeof i) != (ssize_t)sizeof i)
                _exit(12);
        }
        _exit(0);
    }
    close(p[1]);
    int32_t last = -1, i;
    while (last < 40 && read(p[0], &i, sizeof i) == (ssize_t)sizeof i)
        last = i;
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while (read(p[0], &i, sizeof i) == (ssize_t)sizeof i) /* acknowledged before the kill */
        last = i;
    close(p[0]);
    assert_true(last >= 40);

    pb_store *s = pb_test_store_fx_open(f);
    char buf[128];
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA integrity_check", buf, sizeof buf), "ok");
    for (int32_t k = 0; k <= last + 1; k++) {
        char name[32], arn[64];
        snprintf(name, sizeof name, "r%07d", (int)k);
        snprintf(arn, sizeof arn, "arn:%s", name);
        pb_rule_rec got;
        int rc = s->ops->rule_get(s, &SC, "default", name, &got);
        char want[64];
        snprintf(want, sizeof want, "k=%s", name);
        if (k <= last) {
            if (rc != 0)
                fail_msg("acknowledged rule %s lost (rc %d)", name, rc);
            assert_string_equal(list_tags(s, arn, buf, sizeof buf), want);
        } else if (rc == 0) { /* in flight: whole */
            assert_string_equal(list_tags(s, arn, buf, sizeof buf), want);
        } else {
            assert_int_equal(rc, PB_ENOTFOUND);
            assert_string_equal(list_tags(s, arn, buf, sizeof buf), "");
        }
        if (rc == 0)
            pb_rule_rec_free(&got);
    }
}

/* ------------------------------------------------------- concurrency -- */

#define THREADS 4
#define ITERATIONS 60

typedef struct worker {
    pb_store *s;
    int id;
    int errors;
    char first_error[128];
} worker;

static void werr(worker *w, const char *what, int rc)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "thread %d: %s: %d", w->id, what, rc);
}

static void *work(void *arg)
{
    worker *w = arg;
    pb_store *s = w->s;
    int rc;
    for (int i = 0; i < ITERATIONS; i++) {
        char name[32], arn[64];
        snprintf(name, sizeof name, "t%d-r%03d", w->id, i);
        snprintf(arn, sizeof arn, "arn:%s", name);
        pb_rule_rec r = {.bus = "shared", .name = name, .arn = arn, .state = "ENABLED"};
        bool created = false;
        if ((rc = s->ops->rule_put(s, &SC, &r, NULL, 0, &created)) != 0 || !created)
            werr(w, "rule_put", rc);
        pb_target_rec t[] = {tgt("a", "arn:shared-target", "{}"), tgt("b", arn, "{}")};
        if ((rc = s->ops->targets_put(s, &SC, "shared", name, t, 2, 5)) != 0)
            werr(w, "targets_put", rc);
        pb_tag tag = {"i", name};
        if ((rc = s->ops->tags_set(s, arn, &tag, 1, 50)) != 0)
            werr(w, "tags_set", rc);

        pb_rule_rec got;
        if ((rc = s->ops->rule_get(s, &SC, "shared", name, &got)) != 0)
            werr(w, "rule_get", rc);
        else
            pb_rule_rec_free(&got);
        pb_rule_rec *v = NULL;
        size_t n = 0;
        bool more = false;
        if ((rc = s->ops->rule_list(s, &SC, "shared", NULL, NULL, 20, &v, &n, &more)) != 0 || n == 0)
            werr(w, "rule_list", rc);
        pb_rule_recs_free(v, n);
        char **names = NULL;
        if ((rc = s->ops->rules_by_target(s, &SC, "shared", "arn:shared-target", NULL, 10, &names, &n, &more)) !=
                0 ||
            n == 0)
            werr(w, "rules_by_target", rc);
        pb_names_free(names, n);
        pb_bus_rec b;
        if ((rc = s->ops->bus_get(s, &SC, "shared", &b)) != 0)
            werr(w, "bus_get", rc);
        else
            pb_bus_rec_free(&b);

        if (i % 3 == 2) { /* delete every third rule again */
            const char *ids[] = {"a", "b"};
            if ((rc = s->ops->targets_remove(s, &SC, "shared", name, ids, 2)) != 0)
                werr(w, "targets_remove", rc);
            if ((rc = s->ops->rule_delete(s, &SC, "shared", name)) != 0)
                werr(w, "rule_delete", rc);
        }
    }
    return NULL;
}

static void run_workers(fx *f, pb_store *stores[THREADS])
{
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.s = stores[i], .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++)
        if (w[i].errors)
            fail_msg("%d errors; first: %s", w[i].errors, w[i].first_error);

    pb_test_store_fx_reopen(f);
    pb_store *s = f->s;
    pb_rule_rec *v = NULL;
    size_t n = 0;
    bool more = true;
    assert_int_equal(s->ops->rule_list(s, &SC, "shared", NULL, NULL, 10000, &v, &n, &more), 0);
    assert_int_equal(n, THREADS * (ITERATIONS - ITERATIONS / 3));
    assert_false(more);
    pb_rule_recs_free(v, n);
    char **names = NULL;
    assert_int_equal(
        s->ops->rules_by_target(s, &SC, "shared", "arn:shared-target", NULL, 10000, &names, &n, &more), 0);
    assert_int_equal(n, THREADS * (ITERATIONS - ITERATIONS / 3));
    pb_names_free(names, n);
    char buf[64];
    assert_int_equal(count_rows(pb_store__sqlite_db(s), "SELECT count(*) FROM targets"),
                     2 * THREADS * (ITERATIONS - ITERATIONS / 3));
    assert_int_equal(count_rows(pb_store__sqlite_db(s), "SELECT count(*) FROM tags"),
                     THREADS * (ITERATIONS - ITERATIONS / 3));
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA integrity_check", buf, sizeof buf), "ok");
}

static void test_threads_one_store(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    assert_int_equal(mk_bus(s, &SC, "shared"), 0);
    pb_store *stores[THREADS] = {s, s, s, s};
    run_workers(f, stores);
}

/* Two handles on one file, as two processes would have: the busy timeout and
 * BEGIN IMMEDIATE make writers wait for each other rather than fail. */
static void test_threads_two_stores(void **state)
{
    fx *f = *state;
    pb_store *a = pb_test_store_fx_open(f);
    assert_int_equal(mk_bus(a, &SC, "shared"), 0);
    pb_store *b = NULL;
    pb_error err;
    assert_int_equal(pb_store_open(f->url, &b, &err), 0);
    pb_store *stores[THREADS] = {a, b, a, b};
    run_workers(f, stores); /* reopens f->s, closing a */
    pb_store_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_schemes),
        cmocka_unit_test_setup_teardown(test_open_scheme_case_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations_recorded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations_incremental, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_create_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_create_tags_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_put_get_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_put_tags_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_delete_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_list_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_put_failure_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_by_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test(test_free_helpers_accept_null),
        cmocka_unit_test_setup_teardown(test_durable_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_killed_midstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_one_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_two_stores, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
