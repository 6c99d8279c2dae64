/*
 * sqlite_delivery.c — delivery in the SQLite store: the invocations an
 * accepted event caused (one per matched target, kept until delivered or
 * given up) and the dead letters of the targets that gave up (schema:
 * migration 4 in migrations.c; contract: pb_store.h).
 *
 * The store itself (connection, mutex, transactions, error translation) is
 * sqlite.c's, shared through sqlite_internal.h; this file keeps its own table
 * of prepared statements, indexed by `enum dq`, in struct sq.
 *
 * Throughput: invocations_add is the group commit of the event path. It is
 * called with the invocations of many requests at once and writes them all,
 * and removes the outbox events they came from, in one BEGIN IMMEDIATE ...
 * COMMIT, so that the cost of the sync is shared. Rows are written with one
 * prepared statement reset between rows; strings are bound without a copy
 * (SQLITE_STATIC) and nothing is allocated per row. invocations_done deletes
 * by id the same way. The invocations table has no index besides its key:
 * every lookup is by id.
 *
 * Ids: both tables are AUTOINCREMENT, so an id, once handed out, never names
 * another row (not even after the newest row is deleted and the store is
 * re-opened). Within a store an id is larger than every id handed out
 * before it.
 *
 * The scheduler's state (migration 5) lives here too: invocations_fire is
 * invocations_add plus the upsert of each fired tick into schedule_state
 * (and the deletion of delivered invocations, so that the committer's
 * batch is one transaction), in the same transaction, which is what makes
 * a tick fire exactly once;
 * the manual clock is one row.
 *
 * Unknown ids are ignored by every write that takes ids (done, retry, dead,
 * redrive): delivery may ask twice, and the second time is not an error.
 */
#include "sqlite_internal.h"
#include "common/pb_buf.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- statements -- */

/* the columns read_invocation expects */
#define INV_COLS                                                                                             \
    "id, account, region, bus, rule_arn, rule_name, target_id, target_arn, target_json, event_id, "          \
    "event_json, last_error_code, last_error_message, ingested_ms, attempts, next_ms, hops"
/* the columns read_dead_letter expects */
#define DL_COLS                                                                                              \
    "id, dlq_arn, account, region, bus, rule_arn, rule_name, target_id, target_arn, target_json, event_id, "  \
    "event_json, payload, error_code, error_message, exhausted, attempts, ingested_ms, created_ms"

enum dq {
    DQ_INV_INSERT,
    DQ_INV_DELETE,
    DQ_INV_PENDING,
    DQ_INV_RETRY,
    DQ_INV_GET,
    DQ_OUTBOX_DELETE,
    DQ_DL_INSERT,
    DQ_DL_LIST,
    DQ_DL_LIST_DLQ,
    DQ_DL_REDRIVE,
    DQ_DL_DELETE,
    DQ_TICK_UPSERT,
    DQ_TICK_LIST,
    DQ_CLOCK_GET,
    DQ_CLOCK_SET,
    DQ__COUNT
};

_Static_assert(DQ__COUNT <= PB_STORE__SQ_DLV_STMTS, "struct sq has no room for the delivery statements");

static const char *const dq_sql[DQ__COUNT] = {
    [DQ_INV_INSERT] = "INSERT INTO invocations (account, region, bus, rule_arn, rule_name, target_id, target_arn, "
                      "target_json, event_id, event_json, last_error_code, last_error_message, ingested_ms, "
                      "attempts, next_ms, hops) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                      "?14, ?15, ?16)",
    [DQ_INV_DELETE] = "DELETE FROM invocations WHERE id = ?1",
    [DQ_INV_PENDING] = "SELECT " INV_COLS " FROM invocations ORDER BY id",
    [DQ_INV_RETRY] = "UPDATE invocations SET attempts = ?2, next_ms = ?3, last_error_code = ?4, "
                     "last_error_message = ?5 WHERE id = ?1",
    [DQ_INV_GET] = "SELECT " INV_COLS " FROM invocations WHERE id = ?1",
    [DQ_OUTBOX_DELETE] = "DELETE FROM event_outbox WHERE seq = ?1",

    [DQ_DL_INSERT] = "INSERT INTO dead_letters (dlq_arn, account, region, bus, rule_arn, rule_name, target_id, "
                     "target_arn, target_json, event_id, event_json, payload, error_code, error_message, "
                     "exhausted, attempts, ingested_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                     "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    /* two statements rather than `?3 IS NULL OR dlq_arn = ?3`, so each has its index */
    [DQ_DL_LIST] = "SELECT " DL_COLS " FROM dead_letters WHERE account = ?1 AND region = ?2 AND id > ?3 "
                   "ORDER BY id LIMIT ?4",
    [DQ_DL_LIST_DLQ] = "SELECT " DL_COLS " FROM dead_letters WHERE account = ?1 AND region = ?2 "
                       "AND dlq_arn = ?3 AND id > ?4 ORDER BY id LIMIT ?5",
    /* a dead letter of the scope back as a fresh invocation: no attempts, due at ?4, no hops, no error */
    [DQ_DL_REDRIVE] = "INSERT INTO invocations (account, region, bus, rule_arn, rule_name, target_id, target_arn, "
                      "target_json, event_id, event_json, last_error_code, last_error_message, ingested_ms, "
                      "attempts, next_ms, hops) SELECT account, region, bus, rule_arn, rule_name, target_id, "
                      "target_arn, target_json, event_id, event_json, NULL, NULL, ingested_ms, 0, ?4, 0 "
                      "FROM dead_letters WHERE id = ?1 AND account = ?2 AND region = ?3",
    [DQ_DL_DELETE] = "DELETE FROM dead_letters WHERE id = ?1",

    /* a rule's last tick only moves forward */
    [DQ_TICK_UPSERT] = "INSERT INTO schedule_state (account, region, bus, rule, last_tick_ms) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, region, bus, rule) "
                       "DO UPDATE SET last_tick_ms = max(last_tick_ms, excluded.last_tick_ms)",
    [DQ_TICK_LIST] = "SELECT account, region, bus, rule, last_tick_ms FROM schedule_state",
    [DQ_CLOCK_GET] = "SELECT now_ms FROM manual_clock WHERE id = 1",
    [DQ_CLOCK_SET] = "INSERT INTO manual_clock (id, now_ms) VALUES (1, ?1) "
                     "ON CONFLICT (id) DO UPDATE SET now_ms = excluded.now_ms",
};

/* This file's statements, as sqlite.c's prep / exec_q. */
static int prep(struct sq *s, enum dq id, sqlite3_stmt **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->dlv_stmt[id], dq_sql[id], out, fmt, ap);
    va_end(ap);
    return src;
}

static int exec_q(struct sq *s, enum dq id, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int src = pb_store__sq_vprep(s, &s->dlv_stmt[id], dq_sql[id], &st, fmt, ap);
    va_end(ap);
    return src == SQLITE_OK ? pb_store__sq_run(st) : src;
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

/* INV_COLS from column 0 into a zeroed v (left for the caller to free). */
static int read_invocation(sqlite3_stmt *st, pb_invocation_rec *v)
{
    char **const str[] = {&v->account,   &v->region,     &v->bus,      &v->rule_arn,
                          &v->rule_name, &v->target_id,  &v->target_arn, &v->target_json,
                          &v->event_id,  &v->event_json, &v->last_error_code, &v->last_error_message};
    v->id = sqlite3_column_int64(st, 0);
    if (read_strs(st, 1, str, sizeof str / sizeof str[0]))
        return PB_ENOMEM;
    v->ingested_ms = sqlite3_column_int64(st, 13);
    v->attempts = sqlite3_column_int64(st, 14);
    v->next_ms = sqlite3_column_int64(st, 15);
    v->hops = sqlite3_column_int64(st, 16);
    return 0;
}

/* DL_COLS from column 0 into a zeroed d (left for the caller to free). */
static int read_dead_letter(sqlite3_stmt *st, pb_dead_letter_rec *d)
{
    char **const str[] = {&d->dlq_arn,    &d->account,   &d->region,     &d->bus,
                          &d->rule_arn,   &d->rule_name, &d->target_id,  &d->target_arn,
                          &d->target_json, &d->event_id, &d->event_json, &d->payload,
                          &d->error_code, &d->error_message, &d->exhausted};
    d->id = sqlite3_column_int64(st, 0);
    if (read_strs(st, 1, str, sizeof str / sizeof str[0]))
        return PB_ENOMEM;
    d->attempts = sqlite3_column_int64(st, 16);
    d->ingested_ms = sqlite3_column_int64(st, 17);
    d->created_ms = sqlite3_column_int64(st, 18);
    return 0;
}

/* The members that are not optional are all there. */
static bool invocation_ok(const pb_invocation_rec *v)
{
    return v->account && v->region && v->bus && v->rule_arn && v->rule_name && v->target_id && v->target_arn &&
           v->target_json && v->event_id && v->event_json;
}

static bool dead_letter_ok(const pb_dead_letter_rec *d)
{
    return d->dlq_arn && d->account && d->region && d->bus && d->rule_arn && d->rule_name && d->target_id &&
           d->target_arn && d->target_json && d->event_id && d->event_json && d->error_code && d->error_message;
}

/* --------------------------------------------------------- invocations -- */

/*
 * The ids are written to v as the rows go in; if the transaction then fails,
 * they are set back to 0, so no id of a row that does not exist is left
 * behind. Outbox seqs that are not there (already removed) are ignored.
 */
static int invocations_done_tx(struct sq *s, const int64_t *ids, size_t n);

static int invocations_add_tx(struct sq *s, pb_invocation_rec *v, size_t n, const int64_t *done, size_t ndone,
                              const pb_tick_rec *ticks, size_t nticks, const int64_t *delivered, size_t ndelivered)
{
    int rc = 0;
    for (size_t i = 0; i < nticks; i++)
        SQ(exec_q(s, DQ_TICK_UPSERT, "ssssi", ticks[i].account, ticks[i].region, ticks[i].bus, ticks[i].rule,
                  (int64_t)ticks[i].tick_ms));
    for (size_t i = 0; i < n; i++) {
        const pb_invocation_rec *r = &v[i];
        SQ(exec_q(s, DQ_INV_INSERT, "ssssssssssss" "iiii", r->account, r->region, r->bus, r->rule_arn,
                  r->rule_name, r->target_id, r->target_arn, r->target_json, r->event_id, r->event_json,
                  r->last_error_code, r->last_error_message, (int64_t)r->ingested_ms, (int64_t)r->attempts,
                  (int64_t)r->next_ms, (int64_t)r->hops));
        v[i].id = sqlite3_last_insert_rowid(s->db);
    }
    for (size_t i = 0; i < ndone; i++)
        SQ(exec_q(s, DQ_OUTBOX_DELETE, "i", done[i]));
    rc = invocations_done_tx(s, delivered, ndelivered); /* already a PB_ code */
out:
    return rc;
}

int pb_store__sq_invocations_add(pb_store *ps, pb_invocation_rec *v, size_t n, const int64_t *outbox_done,
                                 size_t ndone)
{
    return pb_store__sq_invocations_fire(ps, v, n, outbox_done, ndone, NULL, 0, NULL, 0);
}

int pb_store__sq_invocations_fire(pb_store *ps, pb_invocation_rec *v, size_t n, const int64_t *outbox_done,
                                  size_t ndone, const pb_tick_rec *ticks, size_t nticks, const int64_t *delivered,
                                  size_t ndelivered)
{
    struct sq *s = sq_of(ps);
    if ((n && !v) || (ndone && !outbox_done) || (nticks && !ticks) || (ndelivered && !delivered))
        return PB_EVALIDATION;
    for (size_t i = 0; i < n; i++)
        if (!invocation_ok(&v[i]))
            return PB_EVALIDATION;
    for (size_t i = 0; i < nticks; i++)
        if (!ticks[i].account || !ticks[i].region || !ticks[i].bus || !ticks[i].rule)
            return PB_EVALIDATION;
    if (n == 0 && ndone == 0 && nticks == 0 && ndelivered == 0)
        return 0;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(
            s, invocations_add_tx(s, v, n, outbox_done, ndone, ticks, nticks, delivered, ndelivered));
    unlock(s);
    if (rc)
        for (size_t i = 0; i < n; i++)
            v[i].id = 0;
    return rc;
}

int pb_store__sq_invocations_pending(pb_store *ps, pb_invocation_rec **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    pb_invocation_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, DQ_INV_PENDING, &st, ""));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        memset(&v[cnt], 0, sizeof *v);
        if ((rc = read_invocation(st, &v[cnt++]))) /* owned by v either way */
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_invocation_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int invocations_done_tx(struct sq *s, const int64_t *ids, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        SQ(exec_q(s, DQ_INV_DELETE, "i", ids[i]));
out:
    return rc;
}

int pb_store__sq_invocations_done(pb_store *ps, const int64_t *ids, size_t n)
{
    struct sq *s = sq_of(ps);
    if (n && !ids)
        return PB_EVALIDATION;
    if (n == 0)
        return 0;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, invocations_done_tx(s, ids, n));
    unlock(s);
    return rc;
}

int pb_store__sq_invocation_retry(pb_store *ps, int64_t id, int64_t attempts, int64_t next_ms,
                                  const char *error_code, const char *error_message)
{
    struct sq *s = sq_of(ps);
    int rc;
    lock(s);
    if ((rc = pb_store__sq_tx_begin(s, true)) == 0) {
        int src = exec_q(s, DQ_INV_RETRY, "iiiss", id, attempts, next_ms, error_code, error_message);
        rc = pb_store__sq_tx_end(s, src == SQLITE_OK ? 0 : pb_store__sq_map(s, src, __func__));
    }
    unlock(s);
    return rc;
}

/*
 * The dead letter is written only when the invocation was there: asked
 * twice, the second call finds no invocation and writes nothing (dl->id 0),
 * so an invocation gives at most one dead letter.
 */
static int invocation_dead_tx(struct sq *s, int64_t id, pb_dead_letter_rec *dl)
{
    int rc = 0;
    SQ(exec_q(s, DQ_INV_DELETE, "i", id));
    if (!dl || sqlite3_changes(s->db) == 0)
        goto out;
    SQ(exec_q(s, DQ_DL_INSERT, "sssssssssssssss" "iii", dl->dlq_arn, dl->account, dl->region, dl->bus,
              dl->rule_arn, dl->rule_name, dl->target_id, dl->target_arn, dl->target_json, dl->event_id,
              dl->event_json, dl->payload, dl->error_code, dl->error_message, dl->exhausted, (int64_t)dl->attempts,
              (int64_t)dl->ingested_ms, (int64_t)dl->created_ms));
    dl->id = sqlite3_last_insert_rowid(s->db);
out:
    return rc;
}

int pb_store__sq_invocation_dead(pb_store *ps, int64_t id, pb_dead_letter_rec *dl)
{
    struct sq *s = sq_of(ps);
    if (dl) {
        dl->id = 0;
        if (!dead_letter_ok(dl))
            return PB_EVALIDATION;
    }
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, invocation_dead_tx(s, id, dl));
    unlock(s);
    if (rc && dl)
        dl->id = 0;
    return rc;
}

/* ------------------------------------------------------- dead letters -- */

int pb_store__sq_dead_letters_list(pb_store *ps, const pb_scope *sc, const char *dlq_arn, int64_t after,
                                   size_t limit, pb_dead_letter_rec **out, size_t *n, bool *more)
{
    struct sq *s = sq_of(ps);
    if (!out || !n || !more)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    *more = false;
    if (!scope_ok(sc))
        return PB_EVALIDATION;
    pb_dead_letter_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    if (dlq_arn)
        SQ(prep(s, DQ_DL_LIST_DLQ, &st, "sssii", sc->account, sc->region, dlq_arn, after, fetch_limit(limit)));
    else
        SQ(prep(s, DQ_DL_LIST, &st, "ssii", sc->account, sc->region, after, fetch_limit(limit)));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == limit) { /* the one fetched beyond the page */
            *more = true;
            break;
        }
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        memset(&v[cnt], 0, sizeof *v);
        if ((rc = read_dead_letter(st, &v[cnt++]))) /* owned by v either way */
            goto out;
    }
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_dead_letter_recs_free(v, cnt);
        if (rc)
            *more = false;
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/*
 * Each dead letter of the scope is copied into invocations by one INSERT ...
 * SELECT (which matches nothing for an unknown id or another scope's), read
 * back under its new id, and deleted. The records are built as the rows go
 * in; on failure they are freed and nothing is written.
 */
static int redrive_tx(struct sq *s, const pb_scope *sc, const int64_t *ids, size_t n, int64_t now,
                      pb_invocation_rec **out, size_t *nout)
{
    pb_invocation_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        SQ(exec_q(s, DQ_DL_REDRIVE, "issi", ids[i], sc->account, sc->region, now));
        if (sqlite3_changes(s->db) == 0)
            continue;
        int64_t id = sqlite3_last_insert_rowid(s->db);
        SQ(exec_q(s, DQ_DL_DELETE, "i", ids[i]));
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        memset(&v[cnt], 0, sizeof *v);
        SQ(prep(s, DQ_INV_GET, &st, "i", id));
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            rc = src == SQLITE_DONE ? PB_EINTERNAL : pb_store__sq_map(s, src, __func__);
            goto out;
        }
        if ((rc = read_invocation(st, &v[cnt++]))) /* owned by v either way */
            goto out;
        pb_store__sq_done(st);
        st = NULL;
    }
out:
    pb_store__sq_done(st);
    if (rc || cnt == 0) {
        pb_invocation_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *nout = cnt;
    return 0;
}

int pb_store__sq_dead_letters_redrive(pb_store *ps, const pb_scope *sc, const int64_t *ids, size_t n,
                                      int64_t now_ms, pb_invocation_rec **out, size_t *nout)
{
    struct sq *s = sq_of(ps);
    if (!out || !nout)
        return PB_EVALIDATION;
    *out = NULL;
    *nout = 0;
    if (!scope_ok(sc) || (n && !ids))
        return PB_EVALIDATION;
    if (n == 0)
        return 0;
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0)
        rc = pb_store__sq_tx_end(s, redrive_tx(s, sc, ids, n, now_ms, out, nout));
    unlock(s);
    if (rc) {
        pb_invocation_recs_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

/* ------------------------------------------------------- schedule state -- */

int pb_store__sq_ticks_list(pb_store *ps, pb_tick_rec **out, size_t *n)
{
    struct sq *s = sq_of(ps);
    if (!out || !n)
        return PB_EVALIDATION;
    *out = NULL;
    *n = 0;
    pb_tick_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src;

    lock(s);
    SQ(prep(s, DQ_TICK_LIST, &st, ""));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = pb_grow((void **)&v, &cap, cnt + 1, sizeof *v)))
            goto out;
        pb_tick_rec *t = &v[cnt++];
        memset(t, 0, sizeof *t);
        char **const str[] = {&t->account, &t->region, &t->bus, &t->rule};
        if ((rc = read_strs(st, 0, str, 4)))
            goto out;
        t->tick_ms = sqlite3_column_int64(st, 4);
    }
    if (src != SQLITE_DONE)
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    if (rc || cnt == 0) {
        pb_tick_recs_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int pb_store__sq_clock_get(pb_store *ps, int64_t *ms)
{
    struct sq *s = sq_of(ps);
    if (!ms)
        return PB_EVALIDATION;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    lock(s);
    SQ(prep(s, DQ_CLOCK_GET, &st, ""));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *ms = sqlite3_column_int64(st, 0);
    else if (src == SQLITE_DONE)
        rc = PB_ENOTFOUND;
    else
        rc = pb_store__sq_map(s, src, __func__);
out:
    pb_store__sq_done(st);
    unlock(s);
    return rc;
}

int pb_store__sq_clock_set(pb_store *ps, int64_t ms)
{
    struct sq *s = sq_of(ps);
    lock(s);
    int rc = pb_store__sq_tx_begin(s, true);
    if (rc == 0) {
        int src = exec_q(s, DQ_CLOCK_SET, "i", ms);
        rc = pb_store__sq_tx_end(s, src == SQLITE_OK ? 0 : pb_store__sq_map(s, src, __func__));
    }
    unlock(s);
    return rc;
}
