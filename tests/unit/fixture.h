/*
 * fixture.h — what the unit tests' fixtures share: a temporary directory of
 * their own under /tmp (made by mkdtemp, removed with everything in it), a
 * store opened in it, and a few looks into the SQLite file beneath a store.
 *
 * Include after <cmocka.h> (the helpers fail the test with fail_msg).
 * Store tests use the whole fixture: `pb_test_store_fx` with its setup and
 * teardown; the others only pb_test_tmpdir / pb_test_rmtree.
 */
#ifndef PB_TEST_FIXTURE_H
#define PB_TEST_FIXTURE_H

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/pb_error.h"
#include "store/pb_store.h"
#include "store/store_internal.h"

/* -------------------------------------------------------- directories -- */

/* Makes a fresh directory "/tmp/<prefix>-XXXXXX" in dir. Returns 0, or -1. */
static inline int pb_test_tmpdir(char *dir, size_t cap, const char *prefix)
{
    snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything below it (a link is removed, never followed). */
static inline void pb_test_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof p)
            continue; /* too deep for a test's directory: left behind */
        if (unlink(p) != 0)
            pb_test_rmtree(p);
    }
    closedir(d);
    rmdir(dir);
}

/* -------------------------------------------------------------- store -- */

/* Opens the store at url, failing the test if it cannot. The caller owns it. */
static inline pb_store *pb_test_store_open(const char *url)
{
    pb_error err;
    pb_error_clear(&err);
    pb_store *s = NULL;
    int rc = pb_store_open(url, &s, &err);
    if (rc != 0)
        fail_msg("pb_store_open(%s): %d %s", url, rc, err.message);
    assert_non_null(s);
    return s;
}

/* A store test's fixture: its own directory and a store file in it. */
typedef struct pb_test_store_fx {
    char dir[64];
    char path[128]; /* dir/store.db */
    char url[160];  /* sqlite:path */
    pb_store *s;    /* the open store, closed by the teardown (NULL: none) */
} pb_test_store_fx;

/* A cmocka setup: makes the directory "/tmp/<prefix>-XXXXXX"; opens nothing. */
static inline int pb_test_store_setup(void **state, const char *prefix)
{
    pb_test_store_fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (pb_test_tmpdir(f->dir, sizeof f->dir, prefix)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    *state = f;
    return 0;
}

/* The cmocka teardown that goes with pb_test_store_setup. */
static inline int pb_test_store_teardown(void **state)
{
    pb_test_store_fx *f = *state;
    pb_store_close(f->s);
    pb_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Opens the fixture's store as f->s (the previous one must be closed). */
static inline pb_store *pb_test_store_fx_open(pb_test_store_fx *f)
{
    f->s = pb_test_store_open(f->url);
    return f->s;
}

/* Closes f->s and opens the same file again. */
static inline pb_store *pb_test_store_fx_reopen(pb_test_store_fx *f)
{
    pb_store_close(f->s);
    f->s = NULL;
    return pb_test_store_fx_open(f);
}

/* ------------------------------------------------------------- SQLite -- */

/* The text of the first column of the first row of sql on db ("" if none). */
static inline const char *pb_test_sql_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return buf;
}

/* The number the query sql gives on the store's database (a COUNT(*)). */
static inline int pb_test_count_rows(pb_store *s, const char *sql)
{
    char buf[32];
    return atoi(pb_test_sql_text(pb_store__sqlite_db(s), sql, buf, sizeof buf));
}

/* Runs sql on db, failing the test if it fails. */
static inline void pb_test_sql_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

#endif
