/*
 * sqlite.c — the embedded store: one SQLite database file.
 *
 * Durability: the database runs in WAL mode with synchronous=FULL, so every
 * COMMIT syncs the log before it returns, and a change acknowledged to the
 * caller survives kill -9 and power loss. Foreign keys are enforced, and a
 * busy timeout makes a second process (or a second pb_store on the same file)
 * wait for the write lock instead of failing at once.
 *
 * Transactions: every function that writes is one BEGIN IMMEDIATE ... COMMIT
 * (the write lock is taken first, so a transaction never fails half-way for
 * want of it) and rolls back on any error, including the limits checked after
 * the rows are written (targets_put, tags_set). Reads that check existence
 * before listing do both in one read transaction.
 *
 * Statements: every statement is constant text with bound parameters, prepared
 * once (SQLITE_PREPARE_PERSISTENT) and kept in a table indexed by `enum q`.
 * The SageMaker pipelines and the event outbox live in sqlite_pipelines.c,
 * the invocations and dead letters in sqlite_delivery.c, each with its own
 * table; what the files share is in sqlite_internal.h.
 *
 * Threads: one connection, serialized by a mutex held for the whole of each
 * call (the connection is also opened with SQLITE_OPEN_FULLMUTEX). Callers on
 * several HTTP worker threads may share one pb_store.
 *
 * Errors: SQLite's codes are translated here, once, by pb_store__sq_map: a
 * duplicate key is PB_EEXISTS, a NOT NULL or CHECK failure PB_EVALIDATION, a
 * foreign key PB_ECONFLICT, memory PB_ENOMEM; anything else is PB_EIO and is
 * logged to stderr with sqlite3_errmsg (the store's functions have no pb_error
 * to carry the message).
 *
 * The default bus has no row: "default" exists in every scope (see bus_get).
 */
#include "sqlite_internal.h"
#include "common/pb_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 10000 /* how long a writer waits for another's write lock */
/* bytes per page of a new database (one that existed keeps its own): the
 * invocation rows (~1 KiB each, an event copied into each) are written and
 * deleted by the tens of thousands a second, and 16 KiB pages take about a
 * third less time for that than the default 4 KiB (fewer pages, fewer WAL
 * frames, fewer system calls) */
#define PAGE_SIZE_STR "16384"
#define DEFAULT_BUS "default"

/* ----------------------------------------------------------- statements -- */

#define RULE_COLS                                                                                            \
    "bus, name, arn, event_pattern, schedule, state, description, role_arn, managed_by, created_by, "       \
    "created_ms, modified_ms"
#define BUS_COLS "name, arn, description, extra_json, created_ms, modified_ms"
#define RULE_KEY "account = ?1 AND region = ?2 AND bus = ?3 AND name = ?4"
#define TARGET_RULE "account = ?1 AND region = ?2 AND bus = ?3 AND rule = ?4"

enum q {
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_BUS_INSERT,
    Q_BUS_GET,
    Q_BUS_ARN,
    Q_BUS_DELETE,
    Q_BUS_LIST,
    Q_BUS_HAS_RULES,
    Q_RULE_ARN,
    Q_RULE_INSERT,
    Q_RULE_UPDATE,
    Q_RULE_GET,
    Q_RULE_DELETE,
    Q_RULE_SET_STATE,
    Q_RULE_LIST,
    Q_RULE_LIST_ALL,
    Q_TARGET_UPSERT,
    Q_TARGET_COUNT,
    Q_TARGET_ANY,
    Q_TARGET_DELETE,
    Q_TARGET_LIST,
    Q_RULES_BY_TARGET,
    Q_TAG_UPSERT,
    Q_TAG_COUNT,
    Q_TAG_DELETE,
    Q_TAG_DELETE_ALL,
    Q_TAG_LIST,
    Q__COUNT
};

/*
 * Lists page with `name >= ?lo AND (?after IS NULL OR name > ?after)`: lo is
 * the larger of after and prefix (or ''), so the index is entered at the
 * right place, and the second test makes `after` exclusive. Prefixes compare
 * with substr(), not LIKE, for which '_' and '%' are special. A negative LIMIT
 * is no limit.
 */
static const char *const q_sql[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN DEFERRED",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",

    [Q_BUS_INSERT] = "INSERT INTO buses (account, region, name, arn, description, extra_json, created_ms, "
                     "modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_BUS_GET] = "SELECT " BUS_COLS " FROM buses WHERE account = ?1 AND region = ?2 AND name = ?3",
    [Q_BUS_ARN] = "SELECT arn FROM buses WHERE account = ?1 AND region = ?2 AND name = ?3",
    [Q_BUS_DELETE] = "DELETE FROM buses WHERE account = ?1 AND region = ?2 AND name = ?3",
    [Q_BUS_LIST] = "SELECT " BUS_COLS " FROM buses WHERE account = ?1 AND region = ?2 AND name >= ?3 "
                   "AND (?4 IS NULL OR name > ?4) AND substr(name, 1, length(?5)) = ?5 ORDER BY name LIMIT ?6",
    [Q_BUS_HAS_RULES] = "SELECT 1 FROM rules WHERE account = ?1 AND region = ?2 AND bus = ?3 LIMIT 1",

    [Q_RULE_ARN] = "SELECT arn FROM rules WHERE " RULE_KEY,
    [Q_RULE_INSERT] = "INSERT INTO rules (account, region, bus, name, arn, event_pattern, schedule, state, "
                      "description, role_arn, managed_by, created_by, created_ms, modified_ms) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [Q_RULE_UPDATE] = "UPDATE rules SET arn = ?5, event_pattern = ?6, schedule = ?7, state = ?8, "
                      "description = ?9, role_arn = ?10, managed_by = ?11, modified_ms = ?12 WHERE " RULE_KEY,
    [Q_RULE_GET] = "SELECT " RULE_COLS " FROM rules WHERE " RULE_KEY,
    [Q_RULE_DELETE] = "DELETE FROM rules WHERE " RULE_KEY,
    [Q_RULE_SET_STATE] = "UPDATE rules SET state = ?5, modified_ms = ?6 WHERE " RULE_KEY,
    [Q_RULE_LIST] = "SELECT " RULE_COLS " FROM rules WHERE account = ?1 AND region = ?2 AND bus = ?3 "
                    "AND name >= ?4 AND (?5 IS NULL OR name > ?5) AND substr(name, 1, length(?6)) = ?6 "
                    "ORDER BY name LIMIT ?7",
    [Q_RULE_LIST_ALL] = "SELECT account, region, " RULE_COLS " FROM rules ORDER BY account, region, bus, name",

    [Q_TARGET_UPSERT] = "INSERT INTO targets (account, region, bus, rule, id, arn, json) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (account, region, bus, rule, id) "
                        "DO UPDATE SET arn = excluded.arn, json = excluded.json",
    [Q_TARGET_COUNT] = "SELECT count(*) FROM targets WHERE " TARGET_RULE,
    [Q_TARGET_ANY] = "SELECT 1 FROM targets WHERE " TARGET_RULE " LIMIT 1",
    [Q_TARGET_DELETE] = "DELETE FROM targets WHERE " TARGET_RULE " AND id = ?5",
    [Q_TARGET_LIST] = "SELECT id, arn, json FROM targets WHERE " TARGET_RULE
                      " AND id >= coalesce(?5, '') AND (?5 IS NULL OR id > ?5) ORDER BY id LIMIT ?6",
    [Q_RULES_BY_TARGET] = "SELECT DISTINCT rule FROM targets WHERE account = ?1 AND region = ?2 AND bus = ?3 "
                          "AND arn = ?4 AND rule >= coalesce(?5, '') AND (?5 IS NULL OR rule > ?5) "
                          "ORDER BY rule LIMIT ?6",

    [Q_TAG_UPSERT] = "INSERT INTO tags (arn, key, value) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
    [Q_TAG_COUNT] = "SELECT count(*) FROM tags WHERE arn = ?1",
    [Q_TAG_DELETE] = "DELETE FROM tags WHERE arn = ?1 AND key = ?2",
    [Q_TAG_DELETE_ALL] = "DELETE FROM tags WHERE arn = ?1",
    [Q_TAG_LIST] = "SELECT key, value FROM tags WHERE arn = ?1 ORDER BY key",
};

/* ------------------------------------------------------------- the store -- */

_Static_assert(Q__COUNT <= PB_STORE__SQ_STMTS, "struct sq has no room for the statements");

static const struct pb_store_ops sq_ops;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_default(const char *bus) { return strcmp(bus, DEFAULT_BUS) == 0; }

/*
 * Translates a SQLite result code (extended codes are on) into a PB_E* code.
 * Called while the error is current, before any ROLLBACK replaces the message.
 */
int pb_store__sq_map(struct sq *s, int src, const char *what)
{
    switch (src) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return PB_EEXISTS;
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_DATATYPE:
    case SQLITE_TOOBIG:
        return PB_EVALIDATION;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return PB_ECONFLICT;
    case SQLITE_NOMEM:
        return PB_ENOMEM;
    default:
        fprintf(stderr, "pipebridge: store sqlite:%s: %s: %s (SQLite code %d)\n", s->path, what,
                sqlite3_errmsg(s->db), src);
        return PB_EIO;
    }
}

void pb_store__sq_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int pb_store__sq_vprep(struct sq *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out, const char *fmt,
                       va_list ap)
{
    int src = SQLITE_OK;
    if (!*slot) {
        src = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (src != SQLITE_OK)
            return src;
    }
    sqlite3_stmt *st = *slot;
    if ((int)strlen(fmt) != sqlite3_bind_parameter_count(st)) {
        /* a programming error: the caller's values do not match the statement */
        fprintf(stderr, "pipebridge: store: %d values bound to a statement with %d parameters: %s\n",
                (int)strlen(fmt), sqlite3_bind_parameter_count(st), sql);
        return SQLITE_MISUSE;
    }
    for (int i = 1; *fmt && src == SQLITE_OK; fmt++, i++) {
        if (*fmt == 's')
            src = sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
        else
            src = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
    }
    if (src != SQLITE_OK) {
        pb_store__sq_done(st);
        return src;
    }
    *out = st;
    return SQLITE_OK;
}

int pb_store__sq_run(sqlite3_stmt *st)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        ;
    pb_store__sq_done(st);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

int pb_store__sq_exists(sqlite3_stmt *st, bool *found)
{
    int src = sqlite3_step(st);
    *found = src == SQLITE_ROW;
    pb_store__sq_done(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? SQLITE_OK : src;
}

int pb_store__sq_int(sqlite3_stmt *st, int64_t *v)
{
    int src = sqlite3_step(st);
    *v = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    pb_store__sq_done(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? SQLITE_OK : src;
}

/*
 * This file's statements, by enum q: prep binds them (see
 * pb_store__sq_vprep); exec_q runs one to its end, exists_q says whether it
 * returns a row, int_q reads the integer of its first row.
 */
static int prep(struct sq *s, enum q id, sqlite3_stmt **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->stmt[id], q_sql[id], out, fmt, ap);
    va_end(ap);
    return src;
}

static int exec_q(struct sq *s, enum q id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->stmt[id], q_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_run(st) : src;
}

static int exists_q(struct sq *s, bool *found, enum q id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->stmt[id], q_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_exists(st, found) : src;
}

static int int_q(struct sq *s, int64_t *v, enum q id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->stmt[id], q_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_int(st, v) : src;
}

/* ------------------------------------------------------- transactions -- */

int pb_store__sq_tx_begin(struct sq *s, bool write)
{
    int src = exec_q(s, write ? Q_BEGIN : Q_BEGIN_READ, "");
    return src == SQLITE_OK ? 0 : pb_store__sq_map(s, src, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int pb_store__sq_tx_end(struct sq *s, int rc)
{
    if (rc == 0) {
        int src = exec_q(s, Q_COMMIT, "");
        if (src == SQLITE_OK)
            return 0;
        rc = pb_store__sq_map(s, src, "COMMIT");
    }
    if (!sqlite3_get_autocommit(s->db)) {
        int src = exec_q(s, Q_ROLLBACK, "");
        if (src != SQLITE_OK)
            pb_store__sq_map(s, src, "ROLLBACK");
    }
    return rc;
}

/* ------------------------------------------------------------ records -- */

int pb_store__sq_col_str(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return PB_ENOMEM;
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(len + 1);
    if (!p)
        return PB_ENOMEM;
    memcpy(p, t, len);
    p[len] = '\0';
    *out = p;
    return 0;
}

/* BUS_COLS from column c. */
static int read_bus(sqlite3_stmt *st, int c, pb_bus_rec *b)
{
    memset(b, 0, sizeof *b);
    if (pb_store__sq_col_str(st, c, &b->name) || pb_store__sq_col_str(st, c + 1, &b->arn) ||
        pb_store__sq_col_str(st, c + 2, &b->description) || pb_store__sq_col_str(st, c + 3, &b->extra_json)) {
        pb_bus_rec_free(b);
        return PB_ENOMEM;
    }
    b->created_ms = sqlite3_column_int64(st, c + 4);
    b->modified_ms = sqlite3_column_int64(st, c + 5);
    return 0;
}

/* RULE_COLS from column c. */
static int read_rule(sqlite3_stmt *st, int c, pb_rule_rec *r)
{
    memset(r, 0, sizeof *r);
    char **str[] = {&r->bus,         &r->name,     &r->arn,        &r->event_pattern, &r->schedule,
                    &r->state,       &r->description, &r->role_arn, &r->managed_by,   &r->created_by};
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++) {
        if (pb_store__sq_col_str(st, c + (int)i, str[i])) {
            pb_rule_rec_free(r);
            return PB_ENOMEM;
        }
    }
    r->created_ms = sqlite3_column_int64(st, c + 10);
    r->modified_ms = sqlite3_column_int64(st, c + 11);
    return 0;
}

static int read_target(sqlite3_stmt *st, pb_target_rec *t)
{
    memset(t, 0, sizeof *t);
    if (pb_store__sq_col_str(st, 0, &t->id) || pb_store__sq_col_str(st, 1, &t->arn) ||
        pb_store__sq_col_str(st, 2, &t->json)) {
        pb_target_rec_free(t);
        return PB_ENOMEM;
    }
    return 0;
}

static const char *max_str(const char *a, const char *b)
{
    return strcmp(a, b) >= 0 ? a : b;
}

/* --------------------------------------------------------------- tags -- */

int pb_store__sq_put_tags(struct sq *s, const char *arn, const pb_tag *tags, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, Q_TAG_UPSERT, "sss", arn, tags[i].key, tags[i].value));
out:
    return rc;
}

int pb_store__sq_delete_tags(struct sq *s, const char *arn)
{
    int rc = 0;
    SQ(exec_q(s, Q_TAG_DELETE_ALL, "s", arn));
out:
    return rc;
}

/* -------------------------------------------------------------- buses -- */

static int bus_create_tx(struct sq *s, const pb_scope *sc, const pb_bus_rec *b, const pb_tag *tags, size_t ntags)
{
    int rc = 0;
    SQ(exec_q(s, Q_BUS_INSERT, "ssssssii", sc->account, sc->region, b->name, b->arn, b->description,
              b->extra_json, (int64_t)b->created_ms, (int64_t)b->modified_ms));
    rc = pb_store__sq_put_tags(s, b->arn, tags, ntags);
out:
    return rc;
}

static int sq_bus_create(pb_store *ps, const pb_scope *sc, const pb_bus_rec *b, const pb_tag *tags, size_t ntags)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !b || !b->name || (ntags && !tags))
        return PB_EVALIDATION;
    if (is_default(b->name))
        return PB_EEXISTS;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, bus_create_tx(s, sc, b, tags, ntags));
    unlock(s);
    return rc;
}

static char *default_bus_arn(const pb_scope *sc)
{
    const char *fmt = "arn:aws:events:%s:%s:event-bus/" DEFAULT_BUS;
    int len = snprintf(NULL, 0, fmt, sc->region, sc->account);
    char *arn = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (arn)
        snprintf(arn, (size_t)len + 1, fmt, sc->region, sc->account);
    return arn;
}

/* The record of the default bus of sc. */
static int default_bus(const pb_scope *sc, pb_bus_rec *out)
{
    memset(out, 0, sizeof *out);
    out->name = strdup(DEFAULT_BUS);
    out->arn = default_bus_arn(sc);
    if (!out->name || !out->arn) {
        pb_bus_rec_free(out);
        return PB_ENOMEM;
    }
    return 0;
}

static int sq_bus_get(pb_store *ps, const pb_scope *sc, const char *name, pb_bus_rec *out)
{
    struct sq *s = sq_of(ps);
    if (!out)
        return PB_EVALIDATION;
    memset(out, 0, sizeof *out);
    if (!scope_ok(sc) || !name)
        return PB_EVALIDATION;
    if (is_default(name))
        return default_bus(sc, out);
    sqlite3_stmt *st = NULL;
    lock(s);
    int rc = 0;
    SQ(prep(s, Q_BUS_GET, &st, "sss", sc->account, sc->region, name));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = read_bus(st, 0, out);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    return rc;
}

static int bus_delete_tx(struct sq *s, const pb_scope *sc, const char *name)
{
    int rc = 0;
    bool found = true;
    char *arn = NULL;
    if (is_default(name)) {
        if (!(arn = default_bus_arn(sc)))
            return PB_ENOMEM;
    } else {
        sqlite3_stmt *st = NULL;
        SQ(prep(s, Q_BUS_ARN, &st, "sss", sc->account, sc->region, name));
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            rc = pb_store__sq_col_str(st, 0, &arn);
        else if (src == SQLITE_DONE)
            rc = PB_ENOTFOUND;
        else
            rc = pb_store__sq_map(s, src, __func__);
        pb_store__sq_done(st);
        if (rc)
            goto out;
    }
    SQ(exists_q(s, &found, Q_BUS_HAS_RULES, "sss", sc->account, sc->region, name));
    if (found) {
        rc = PB_ECONFLICT;
        goto out;
    }
    SQ(exec_q(s, Q_BUS_DELETE, "sss", sc->account, sc->region, name));
    SQ(exec_q(s, Q_TAG_DELETE_ALL, "s", arn));
out:
    free(arn);
    return rc;
}

static int sq_bus_delete(pb_store *ps, const pb_scope *sc, const char *name)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !name)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, bus_delete_tx(s, sc, name));
    unlock(s);
    return rc;
}

static int sq_bus_list(pb_store *ps, const pb_scope *sc, const char *prefix, const char *after, size_t limit,
                       pb_bus_rec **out, size_t *n, bool *more)
{
    struct sq *s = sq_of(ps);
    if (!out || !n || !more)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    *more = false;
    if (!scope_ok(sc))
        return PB_EVALIDATION;
    const char *pre = prefix ? prefix : "";
    const char *lo = max_str(pre, after ? after : "");
    pb_bus_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, Q_BUS_LIST, &st, "sssssi", sc->account, sc->region, lo, after, pre, fetch_limit(limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = read_bus(st, 0, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = pb_store__sq_map(s, src, __func__);
        goto out;
    }
    /* the default bus, in its place, when it qualifies and has no row */
    if (strncmp(DEFAULT_BUS, pre, strlen(pre)) == 0 && (!after || strcmp(DEFAULT_BUS, after) > 0)) {
        size_t at = 0;
        while (at < cnt && strcmp(v[at].name, DEFAULT_BUS) < 0)
            at++;
        if (at == cnt || strcmp(v[at].name, DEFAULT_BUS) != 0) {
            if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
                goto out;
            memmove(&v[at + 1], &v[at], (cnt - at) * sizeof *v);
            cnt++;
            if ((rc = default_bus(sc, &v[at]))) {
                memmove(&v[at], &v[at + 1], (cnt - at - 1) * sizeof *v);
                cnt--;
                goto out;
            }
        }
    }
    while (cnt > limit) {
        *more = true;
        pb_bus_rec_free(&v[--cnt]);
    }
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_bus_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* -------------------------------------------------------------- rules -- */

/* *found = whether bus exists in sc (the default bus always does). */
static int bus_exists(struct sq *s, const pb_scope *sc, const char *bus, bool *found)
{
    if (is_default(bus)) {
        *found = true;
        return SQLITE_OK;
    }
    return exists_q(s, found, Q_BUS_ARN, "sss", sc->account, sc->region, bus);
}

static int rule_put_tx(struct sq *s, const pb_scope *sc, const pb_rule_rec *r, const pb_tag *tags, size_t ntags,
                       bool *created)
{
    int rc = 0;
    bool found = false;
    SQ(bus_exists(s, sc, r->bus, &found));
    if (!found)
        return PB_ENOTFOUND;
    SQ(exists_q(s, &found, Q_RULE_ARN, "ssss", sc->account, sc->region, r->bus, r->name));
    if (found) {
        SQ(exec_q(s, Q_RULE_UPDATE, "sssssssssssi", sc->account, sc->region, r->bus, r->name, r->arn,
                  r->event_pattern, r->schedule, r->state, r->description, r->role_arn, r->managed_by,
                  (int64_t)r->modified_ms));
    } else {
        SQ(exec_q(s, Q_RULE_INSERT, "ssssssssssssii", sc->account, sc->region, r->bus, r->name, r->arn,
                  r->event_pattern, r->schedule, r->state, r->description, r->role_arn, r->managed_by,
                  r->created_by ? r->created_by : sc->account, (int64_t)r->created_ms, (int64_t)r->modified_ms));
        if ((rc = pb_store__sq_put_tags(s, r->arn, tags, ntags)))
            goto out;
    }
    *created = !found;
out:
    return rc;
}

static int sq_rule_put(pb_store *ps, const pb_scope *sc, const pb_rule_rec *r, const pb_tag *tags, size_t ntags,
                       bool *created)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !r || !r->bus || !r->name || (ntags && !tags))
        return PB_EVALIDATION;
    bool made = false;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, rule_put_tx(s, sc, r, tags, ntags, &made));
    unlock(s);
    if (rc == 0 && created)
        *created = made;
    return rc;
}

static int sq_rule_get(pb_store *ps, const pb_scope *sc, const char *bus, const char *name, pb_rule_rec *out)
{
    struct sq *s = sq_of(ps);
    if (!out)
        return PB_EVALIDATION;
    memset(out, 0, sizeof *out);
    if (!scope_ok(sc) || !bus || !name)
        return PB_EVALIDATION;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    lock(s);
    SQ(prep(s, Q_RULE_GET, &st, "ssss", sc->account, sc->region, bus, name));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = read_rule(st, 0, out);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    return rc;
}

static int rule_delete_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *name)
{
    int rc = 0;
    bool found = false;
    char *arn = NULL;
    sqlite3_stmt *st = NULL;
    SQ(prep(s, Q_RULE_ARN, &st, "ssss", sc->account, sc->region, bus, name));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = pb_store__sq_col_str(st, 0, &arn);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, __func__);
    pb_store__sq_done(st);
    if (rc)
        goto out;
    SQ(exists_q(s, &found, Q_TARGET_ANY, "ssss", sc->account, sc->region, bus, name));
    if (found) {
        rc = PB_ECONFLICT;
        goto out;
    }
    SQ(exec_q(s, Q_RULE_DELETE, "ssss", sc->account, sc->region, bus, name));
    SQ(exec_q(s, Q_TAG_DELETE_ALL, "s", arn));
out:
    free(arn);
    return rc;
}

static int sq_rule_delete(pb_store *ps, const pb_scope *sc, const char *bus, const char *name)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !bus || !name)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, rule_delete_tx(s, sc, bus, name));
    unlock(s);
    return rc;
}

static int rule_set_state_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *name, const char *state)
{
    int rc = 0;
    SQ(exec_q(s, Q_RULE_SET_STATE, "sssssi", sc->account, sc->region, bus, name, state, now_ms()));
    if (sqlite3_changes(s->db) == 0)
        rc = PB_ENOTFOUND;
out:
    return rc;
}

static int sq_rule_set_state(pb_store *ps, const pb_scope *sc, const char *bus, const char *name, const char *state)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !bus || !name || !state)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, rule_set_state_tx(s, sc, bus, name, state));
    unlock(s);
    return rc;
}

static int rule_list_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *prefix, const char *after,
                        size_t limit, pb_rule_rec **out, size_t *n, bool *more)
{
    const char *pre = prefix ? prefix : "";
    const char *lo = max_str(pre, after ? after : "");
    pb_rule_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    bool found = false;
    int rc = 0, src;

    SQ(bus_exists(s, sc, bus, &found));
    if (!found) {
        rc = PB_ENOTFOUND;
        goto out;
    }
    SQ(prep(s, Q_RULE_LIST, &st, "ssssssi", sc->account, sc->region, bus, lo, after, pre, fetch_limit(limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = read_rule(st, 0, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = pb_store__sq_map(s, src, __func__);
        goto out;
    }
    while (cnt > limit) {
        *more = true;
        pb_rule_rec_free(&v[--cnt]);
    }
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_rule_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_rule_list(pb_store *ps, const pb_scope *sc, const char *bus, const char *prefix, const char *after,
                        size_t limit, pb_rule_rec **out, size_t *n, bool *more)
{
    struct sq *s = sq_of(ps);
    if (!out || !n || !more)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    *more = false;
    if (!scope_ok(sc) || !bus)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, rule_list_tx(s, sc, bus, prefix, after, limit, out, n, more));
    unlock(s);
    if (rc) {
        pb_rule_recs_free(*out, *n);
        *out = NULL;
        *n = 0;
        *more = false;
    }
    return rc;
}

static int sq_rule_list_all(pb_store *ps, pb_rule_entry **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    pb_rule_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, Q_RULE_LIST_ALL, &st, ""));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        pb_rule_entry *e = &v[cnt];
        memset(e, 0, sizeof *e);
        if ((rc = read_rule(st, 2, &e->rule)))
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
        pb_rule_entries_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ------------------------------------------------------------ targets -- */

static int rule_exists(struct sq *s, const pb_scope *sc, const char *bus, const char *rule, bool *found)
{
    return exists_q(s, found, Q_RULE_ARN, "ssss", sc->account, sc->region, bus, rule);
}

static int targets_put_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *rule,
                          const pb_target_rec *t, size_t n, size_t max_targets)
{
    int rc = 0;
    bool found = false;
    int64_t count = 0;
    SQ(rule_exists(s, sc, bus, rule, &found));
    if (!found)
        return PB_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, Q_TARGET_UPSERT, "sssssss", sc->account, sc->region, bus, rule, t[i].id, t[i].arn,
                  t[i].json));
    SQ(int_q(s, &count, Q_TARGET_COUNT, "ssss", sc->account, sc->region, bus, rule));
    if ((uint64_t)count > max_targets)
        rc = PB_ELIMIT;
out:
    return rc;
}

static int sq_targets_put(pb_store *ps, const pb_scope *sc, const char *bus, const char *rule,
                          const pb_target_rec *t, size_t n, size_t max_targets)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !bus || !rule || (n && !t))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, targets_put_tx(s, sc, bus, rule, t, n, max_targets));
    unlock(s);
    return rc;
}

static int targets_remove_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *rule,
                             const char *const *ids, size_t n)
{
    int rc = 0;
    bool found = false;
    SQ(rule_exists(s, sc, bus, rule, &found));
    if (!found)
        return PB_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, Q_TARGET_DELETE, "sssss", sc->account, sc->region, bus, rule, ids[i]));
out:
    return rc;
}

static int sq_targets_remove(pb_store *ps, const pb_scope *sc, const char *bus, const char *rule,
                             const char *const *ids, size_t n)
{
    struct sq *s = sq_of(ps);
    if (!scope_ok(sc) || !bus || !rule || (n && !ids))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, targets_remove_tx(s, sc, bus, rule, ids, n));
    unlock(s);
    return rc;
}

static int targets_list_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *rule, const char *after,
                           size_t limit, pb_target_rec **out, size_t *n, bool *more)
{
    pb_target_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    bool found = false;
    int rc = 0, src;

    SQ(rule_exists(s, sc, bus, rule, &found));
    if (!found) {
        rc = PB_ENOTFOUND;
        goto out;
    }
    SQ(prep(s, Q_TARGET_LIST, &st, "sssssi", sc->account, sc->region, bus, rule, after, fetch_limit(limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = read_target(st, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = pb_store__sq_map(s, src, __func__);
        goto out;
    }
    while (cnt > limit) {
        *more = true;
        pb_target_rec_free(&v[--cnt]);
    }
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_target_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_targets_list(pb_store *ps, const pb_scope *sc, const char *bus, const char *rule, const char *after,
                           size_t limit, pb_target_rec **out, size_t *n, bool *more)
{
    struct sq *s = sq_of(ps);
    if (!out || !n || !more)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    *more = false;
    if (!scope_ok(sc) || !bus || !rule)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, targets_list_tx(s, sc, bus, rule, after, limit, out, n, more));
    unlock(s);
    if (rc) {
        pb_target_recs_free(*out, *n);
        *out = NULL;
        *n = 0;
        *more = false;
    }
    return rc;
}

static int rules_by_target_tx(struct sq *s, const pb_scope *sc, const char *bus, const char *target_arn,
                              const char *after, size_t limit, char ***out, size_t *n, bool *more)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    bool found = false;
    int rc = 0, src;

    SQ(bus_exists(s, sc, bus, &found));
    if (!found) {
        rc = PB_ENOTFOUND;
        goto out;
    }
    SQ(prep(s, Q_RULES_BY_TARGET, &st, "sssssi", sc->account, sc->region, bus, target_arn, after,
            fetch_limit(limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)) || (rc = pb_store__sq_col_str(st, 0, &v[cnt])))
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = pb_store__sq_map(s, src, __func__);
        goto out;
    }
    while (cnt > limit) {
        *more = true;
        free(v[--cnt]);
    }
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_names_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_rules_by_target(pb_store *ps, const pb_scope *sc, const char *bus, const char *target_arn,
                              const char *after, size_t limit, char ***names, size_t *n, bool *more)
{
    struct sq *s = sq_of(ps);
    if (!names || !n || !more)
        return PB_EVALIDATION;
    *names = NULL;
    *n = 0;
    *more = false;
    if (!scope_ok(sc) || !bus || !target_arn)
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, false);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, rules_by_target_tx(s, sc, bus, target_arn, after, limit, names, n, more));
    unlock(s);
    if (rc) {
        pb_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        *more = false;
    }
    return rc;
}

/* --------------------------------------------------------------- tags -- */

static int tags_set_tx(struct sq *s, const char *arn, const pb_tag *tags, size_t n, size_t max_tags)
{
    int rc = 0;
    int64_t count = 0;
    if ((rc = pb_store__sq_put_tags(s, arn, tags, n)))
        goto out;
    SQ(int_q(s, &count, Q_TAG_COUNT, "s", arn));
    if ((uint64_t)count > max_tags)
        rc = PB_ELIMIT;
out:
    return rc;
}

static int sq_tags_set(pb_store *ps, const char *arn, const pb_tag *tags, size_t n, size_t max_tags)
{
    struct sq *s = sq_of(ps);
    if (!arn || (n && !tags))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, tags_set_tx(s, arn, tags, n, max_tags));
    unlock(s);
    return rc;
}

static int tags_remove_tx(struct sq *s, const char *arn, const char *const *keys, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, Q_TAG_DELETE, "ss", arn, keys[i]));
out:
    return rc;
}

static int sq_tags_remove(pb_store *ps, const char *arn, const char *const *keys, size_t n)
{
    struct sq *s = sq_of(ps);
    if (!arn || (n && !keys))
        return PB_EVALIDATION;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, tags_remove_tx(s, arn, keys, n));
    unlock(s);
    return rc;
}

static int sq_tags_list(pb_store *ps, const char *arn, pb_tag **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    if (!arn)
        return PB_EVALIDATION;
    pb_tag *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, Q_TAG_LIST, &st, "s", arn));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        v[cnt].key = v[cnt].value = NULL;
        cnt++; /* owned by v from here */
        if (pb_store__sq_col_str(st, 0, &v[cnt - 1].key) || pb_store__sq_col_str(st, 1, &v[cnt - 1].value)) {
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
        pb_tags_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ------------------------------------------------------- open / close -- */

static void sq_free(struct sq *s)
{
    for (size_t i = 0; i < sizeof s->stmt / sizeof s->stmt[0]; i++)
        sqlite3_finalize(s->stmt[i]);
    for (size_t i = 0; i < sizeof s->pipe_stmt / sizeof s->pipe_stmt[0]; i++)
        sqlite3_finalize(s->pipe_stmt[i]);
    for (size_t i = 0; i < sizeof s->dlv_stmt / sizeof s->dlv_stmt[0]; i++)
        sqlite3_finalize(s->dlv_stmt[i]);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        fprintf(stderr, "pipebridge: store sqlite:%s: close: %s\n", s->path, sqlite3_errmsg(s->db));
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static void sq_close(pb_store *ps)
{
    if (ps)
        sq_free(sq_of(ps));
}

sqlite3 *pb_store__sqlite_db(pb_store *ps)
{
    return ps && ps->ops == &sq_ops ? sq_of(ps)->db : NULL;
}

/* The directory part of path, cut in place in the copy dir ("." when none). */
static const char *parent_dir(char *dir)
{
    char *slash = strrchr(dir, '/');
    if (!slash)
        return ".";
    if (slash == dir)
        return "/";
    *slash = '\0';
    return dir;
}

/* A message for a database that cannot be opened or read, naming the cause
 * the user can fix when there is one. */
static int open_fail(struct sq *s, int src, const char *what, pb_error *err)
{
    int code = (src & 0xff) == SQLITE_NOMEM ? PB_ENOMEM : PB_EIO;
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src);
    if ((src & 0xff) == SQLITE_CANTOPEN || (src & 0xff) == SQLITE_IOERR || (src & 0xff) == SQLITE_READONLY) {
        /* the directory first: the caller creates it, and its absence is the usual cause */
        char *dir = strdup(s->path);
        if (!dir)
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        const char *d = parent_dir(dir);
        struct stat sb;
        int rc, st = stat(d, &sb), st_errno = errno;
        if (st != 0 && (st_errno == ENOENT || st_errno == ENOTDIR))
            rc = pb_error_set(err, PB_EIO, "cannot open the SQLite store %s: the directory %s does not exist",
                              s->path, d);
        else if (st == 0 && !S_ISDIR(sb.st_mode))
            rc = pb_error_set(err, PB_EIO, "cannot open the SQLite store %s: %s is not a directory", s->path, d);
        else {
            int e = s->db ? sqlite3_system_errno(s->db) : 0;
            rc = pb_error_set(err, code, "cannot open the SQLite store %s: %s: %s%s%s", s->path, what, msg,
                              e ? ": " : "", e ? strerror(e) : "");
        }
        free(dir);
        return rc;
    }
    return pb_error_set(err, code, "cannot open the SQLite store %s: %s: %s", s->path, what, msg);
}

/* Runs a PRAGMA, copying the first column of its first row (if any) to buf. */
static int pragma(struct sq *s, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    if (buf && len)
        buf[0] = '\0';
    int src = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        return src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (buf && len && t && !buf[0])
            snprintf(buf, len, "%s", (const char *)t);
    }
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

static int configure(struct sq *s, pb_error *err)
{
    char val[32];
    int src;
    sqlite3_extended_result_codes(s->db, 1);
    if ((src = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS)) != SQLITE_OK)
        return open_fail(s, src, "busy timeout", err);
    /* before WAL, or it is ignored; a no-op on a database that has tables */
    if ((src = pragma(s, "PRAGMA page_size = " PAGE_SIZE_STR, NULL, 0)) != SQLITE_OK)
        return open_fail(s, src, "page_size", err);
    if ((src = pragma(s, "PRAGMA journal_mode = WAL", val, sizeof val)) != SQLITE_OK)
        return open_fail(s, src, "journal_mode", err);
    if (strcasecmp(val, "wal") != 0 && !(strcmp(s->path, ":memory:") == 0 && strcasecmp(val, "memory") == 0))
        return pb_error_set(err, PB_EIO,
                            "cannot open the SQLite store %s: it cannot use write-ahead logging (journal mode "
                            "stays \"%s\")",
                            s->path, val);
    if ((src = pragma(s, "PRAGMA synchronous = FULL", NULL, 0)) != SQLITE_OK ||
        (src = pragma(s, "PRAGMA synchronous", val, sizeof val)) != SQLITE_OK)
        return open_fail(s, src, "synchronous", err);
    if (strcmp(val, "2") != 0)
        return pb_error_set(err, PB_EIO, "cannot open the SQLite store %s: synchronous=FULL refused", s->path);
    if ((src = pragma(s, "PRAGMA foreign_keys = ON", NULL, 0)) != SQLITE_OK ||
        (src = pragma(s, "PRAGMA foreign_keys", val, sizeof val)) != SQLITE_OK)
        return open_fail(s, src, "foreign_keys", err);
    if (strcmp(val, "1") != 0)
        return pb_error_set(err, PB_EIO, "cannot open the SQLite store %s: this SQLite does not enforce foreign keys",
                            s->path);
    return 0;
}

/* Syncs the directory of path, so that a database file created by this open
 * keeps its name after a power loss (SQLite syncs the directory for the WAL
 * it creates, not for the database file). Best effort: some file systems
 * refuse fsync on a directory. */
static void sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    int fd = open(parent_dir(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int pb_store__sqlite_open(const char *path, pb_store **out, pb_error *err)
{
    if (!out)
        return pb_error_set(err, PB_EVALIDATION, "no place for the store");
    *out = NULL;
    if (!path || !*path)
        return pb_error_set(err, PB_EVALIDATION, "the SQLite store needs a file name: sqlite:PATH");
    if (!sqlite3_threadsafe())
        return pb_error_set(err, PB_EUNSUPPORTED, "the SQLite library was built without thread support");

    struct sq *s = calloc(1, sizeof *s);
    if (!s)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    s->base.ops = &sq_ops;
    if (!(s->path = strdup(path)) || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->path);
        free(s);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }

    int rc;
    int src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                              NULL);
    if (src != SQLITE_OK) {
        rc = open_fail(s, s->db ? sqlite3_extended_errcode(s->db) : src, "open", err);
        goto fail;
    }
    if ((rc = configure(s, err)) != 0)
        goto fail;
    if ((rc = pb_store__migrate(s->db, pb_store__migrations, pb_store__nmigrations, err)) != 0) {
        if (err) {
            char m[PB_ERROR_MESSAGE_MAX];
            snprintf(m, sizeof m, "%s", err->message);
            pb_error_set(err, rc, "cannot open the SQLite store %s: %s", path, m);
        }
        goto fail;
    }
    if (strcmp(path, ":memory:") != 0)
        sync_dir(path);
    *out = &s->base;
    return 0;
fail:
    sq_free(s);
    return rc;
}

static const struct pb_store_ops sq_ops = {
    .close = sq_close,
    .bus_create = sq_bus_create,
    .bus_get = sq_bus_get,
    .bus_delete = sq_bus_delete,
    .bus_list = sq_bus_list,
    .rule_put = sq_rule_put,
    .rule_get = sq_rule_get,
    .rule_delete = sq_rule_delete,
    .rule_set_state = sq_rule_set_state,
    .rule_list = sq_rule_list,
    .rule_list_all = sq_rule_list_all,
    .targets_put = sq_targets_put,
    .targets_remove = sq_targets_remove,
    .targets_list = sq_targets_list,
    .rules_by_target = sq_rules_by_target,
    .tags_set = sq_tags_set,
    .tags_remove = sq_tags_remove,
    .tags_list = sq_tags_list,
    .pipeline_create = pb_store__sq_pipeline_create,
    .pipeline_get = pb_store__sq_pipeline_get,
    .pipeline_update = pb_store__sq_pipeline_update,
    .pipeline_delete = pb_store__sq_pipeline_delete,
    .pipeline_list = pb_store__sq_pipeline_list,
    .exec_create = pb_store__sq_exec_create,
    .exec_get = pb_store__sq_exec_get,
    .exec_list = pb_store__sq_exec_list,
    .exec_unfinished = pb_store__sq_exec_unfinished,
    .exec_change = pb_store__sq_exec_change,
    .steps_list = pb_store__sq_steps_list,
    .params_list = pb_store__sq_params_list,
    .outbox_list = pb_store__sq_outbox_list,
    .invocations_add = pb_store__sq_invocations_add,
    .invocations_fire = pb_store__sq_invocations_fire,
    .ticks_list = pb_store__sq_ticks_list,
    .clock_get = pb_store__sq_clock_get,
    .clock_set = pb_store__sq_clock_set,
    .invocations_pending = pb_store__sq_invocations_pending,
    .invocations_done = pb_store__sq_invocations_done,
    .invocation_retry = pb_store__sq_invocation_retry,
    .invocation_dead = pb_store__sq_invocation_dead,
    .dead_letters_list = pb_store__sq_dead_letters_list,
    .dead_letters_redrive = pb_store__sq_dead_letters_redrive,
};
