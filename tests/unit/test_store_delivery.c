/*
 * test_store_delivery.c — the delivery part of the store
 * (src/store/sqlite_delivery.c, migration 4).
 *
 * Covers: invocations added in one transaction with the outbox events they
 * came from removed (ids written back, increasing, never reused, also after
 * re-opening), all or nothing (a failure injected into the insert of a row
 * or into the removal of an outbox event leaves the outbox as it was and
 * gives no ids), every member kept (optional ones NULL); pending listed by
 * id; done, retry and dead (with and without a dead letter, unknown ids
 * ignored, the invocation kept when the dead letter cannot be written);
 * dead letters listed by page, by dead-letter queue and within the caller's
 * scope only; redrive moving dead letters of the scope back as fresh
 * invocations and returning them; everything found again after re-opening
 * and after SIGKILL right after an acknowledged write; a database at
 * version 3 brought to version 4 with its outbox (and its page size); new
 * databases with 16 KiB pages. A throughput figure for
 * 50,000 invocations added and done in batches of 500 is printed, not
 * asserted (timing belongs to bench/).
 *
 * Failures are injected with TEMP triggers on the store's own connection
 * (RAISE(ABORT) on a chosen row): they fail a statement in the middle of a
 * transaction, which is where all-or-nothing matters.
 *
 * Every test works in its own directory made by mkdtemp under /tmp and
 * removes it afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/pb_error.h"
#include "store/pb_store.h"
#include "store/store_internal.h"

#include <sqlite3.h>

#include "fixture.h"

static const pb_scope SC = {"123456789012", "us-east-1"};
static const pb_scope SC_REGION = {"123456789012", "eu-west-1"};
static const pb_scope SC_ACCOUNT = {"210987654321", "us-east-1"};

#define RULE_ARN "arn:aws:events:us-east-1:123456789012:rule/r1"
#define TARGET_ARN "arn:aws:sqs:us-east-1:123456789012:q1"
#define DLQ1 "arn:aws:sqs:us-east-1:123456789012:dlq1"
#define DLQ2 "arn:aws:sqs:us-east-1:123456789012:dlq2"

/* ------------------------------------------------------------ fixture -- */

typedef pb_test_store_fx fx;

static int setup(void **state) { return pb_test_store_setup(state, "pb-dlvstore"); }
static int teardown(void **state) { return pb_test_store_teardown(state); }

/* ------------------------------------------------------------ helpers -- */

/* Puts an event in the outbox (as exec_create would) and returns its seq. */
static int64_t outbox_put(pb_store *s, const char *json)
{
    sqlite3 *db = pb_store__sqlite_db(s);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO event_outbox (account, region, bus, event_json, created_ms) "
                                        "VALUES ('123456789012', 'us-east-1', 'default', ?1, 1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    return sqlite3_last_insert_rowid(db);
}

/* The seqs left in the outbox, joined with ','. */
static const char *outbox_seqs(pb_store *s, char *buf, size_t len)
{
    return pb_test_sql_text(pb_store__sqlite_db(s),
                            "SELECT group_concat(seq) FROM (SELECT seq FROM event_outbox ORDER BY seq)", buf, len);
}

/* An invocation of scope sc, target tid, event eid, accepted at ms. */
static pb_invocation_rec inv(const pb_scope *sc, const char *tid, const char *eid, int64_t ms)
{
    return (pb_invocation_rec){.account = (char *)sc->account,
                               .region = (char *)sc->region,
                               .bus = "default",
                               .rule_arn = RULE_ARN,
                               .rule_name = "r1",
                               .target_id = (char *)tid,
                               .target_arn = TARGET_ARN,
                               .target_json = "{\"Id\":\"t\",\"Arn\":\"" TARGET_ARN "\"}",
                               .event_id = (char *)eid,
                               .event_json = "{\"id\":\"e\",\"detail\":{}}",
                               .ingested_ms = ms,
                               .next_ms = ms};
}

/* A dead letter of invocation v, for queue dlq. */
static pb_dead_letter_rec dead(const pb_invocation_rec *v, const char *dlq, int64_t ms)
{
    return (pb_dead_letter_rec){.dlq_arn = (char *)dlq,
                                .account = v->account,
                                .region = v->region,
                                .bus = v->bus,
                                .rule_arn = v->rule_arn,
                                .rule_name = v->rule_name,
                                .target_id = v->target_id,
                                .target_arn = v->target_arn,
                                .target_json = v->target_json,
                                .event_id = v->event_id,
                                .event_json = v->event_json,
                                .error_code = "NO_RESOURCE",
                                .error_message = "the queue does not exist",
                                .exhausted = "MaximumRetryAttempts",
                                .attempts = 185,
                                .ingested_ms = v->ingested_ms,
                                .created_ms = ms};
}

/* Adds one invocation and returns its id. */
static int64_t add_one(pb_store *s, const pb_scope *sc, const char *tid, const char *eid, int64_t ms)
{
    pb_invocation_rec v = inv(sc, tid, eid, ms);
    assert_int_equal(s->ops->invocations_add(s, &v, 1, NULL, 0), 0);
    assert_true(v.id > 0);
    return v.id;
}

/* "id:target_id:attempts" of each pending invocation, joined with ','; the
 * ids must increase. */
static const char *pending(pb_store *s, char *buf, size_t len)
{
    pb_invocation_rec *v = (pb_invocation_rec *)1;
    size_t n = 99;
    assert_int_equal(s->ops->invocations_pending(s, &v, &n), 0);
    if (n == 0)
        assert_null(v);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[128];
        if (i)
            assert_true(v[i].id > v[i - 1].id);
        snprintf(one, sizeof one, "%s%lld:%s:%lld", i ? "," : "", (long long)v[i].id, v[i].target_id,
                 (long long)v[i].attempts);
        strncat(buf, one, len - strlen(buf) - 1);
    }
    pb_invocation_recs_free(v, n);
    return buf;
}

/* "id:target_id" of the dead letters of a page, joined with ','. */
static const char *dl_page(pb_store *s, const pb_scope *sc, const char *dlq, int64_t after, size_t limit,
                           bool *more, char *buf, size_t len)
{
    pb_dead_letter_rec *v = (pb_dead_letter_rec *)1;
    size_t n = 99;
    *more = !*more; /* whatever it held, the store must write it */
    assert_int_equal(s->ops->dead_letters_list(s, sc, dlq, after, limit, &v, &n, more), 0);
    if (n == 0)
        assert_null(v);
    assert_true(n <= limit);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[128];
        assert_true(v[i].id > (i ? v[i - 1].id : after));
        snprintf(one, sizeof one, "%s%lld:%s", i ? "," : "", (long long)v[i].id, v[i].target_id);
        strncat(buf, one, len - strlen(buf) - 1);
    }
    pb_dead_letter_recs_free(v, n);
    return buf;
}

static void assert_same_invocation(const pb_invocation_rec *a, const pb_invocation_rec *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->account, b->account);
    assert_string_equal(a->region, b->region);
    assert_string_equal(a->bus, b->bus);
    assert_string_equal(a->rule_arn, b->rule_arn);
    assert_string_equal(a->rule_name, b->rule_name);
    assert_string_equal(a->target_id, b->target_id);
    assert_string_equal(a->target_arn, b->target_arn);
    assert_string_equal(a->target_json, b->target_json);
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->event_json, b->event_json);
    assert_int_equal(a->ingested_ms, b->ingested_ms);
    assert_int_equal(a->attempts, b->attempts);
    assert_int_equal(a->next_ms, b->next_ms);
    assert_int_equal(a->hops, b->hops);
    if (a->last_error_code || b->last_error_code)
        assert_string_equal(a->last_error_code, b->last_error_code);
    if (a->last_error_message || b->last_error_message)
        assert_string_equal(a->last_error_message, b->last_error_message);
}

/* -------------------------------------------------------- invocations -- */

/* Every member comes back as written; ids are written to the records, and
 * increase across calls. */
static void test_add_and_pending(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[512];
    assert_string_equal(pending(s, buf, sizeof buf), "");

    pb_invocation_rec v[3] = {inv(&SC, "a", "e1", 100), inv(&SC_REGION, "b", "e1", 101),
                              inv(&SC_ACCOUNT, "c", "e2", 102)};
    v[1].bus = "orders";
    v[1].hops = 2;
    v[1].attempts = 3;
    v[1].next_ms = 5000;
    v[1].last_error_code = "THROTTLING";
    v[1].last_error_message = "slow down";
    v[2].event_json = "{\"id\":\"e2\",\"detail\":{\"ü\":\"\\u0000x\"}}";
    assert_int_equal(s->ops->invocations_add(s, v, 3, NULL, 0), 0);
    assert_true(v[0].id > 0);
    assert_true(v[1].id > v[0].id);
    assert_true(v[2].id > v[1].id);

    pb_invocation_rec *got = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->invocations_pending(s, &got, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_same_invocation(&got[i], &v[i]);
    assert_null(got[0].last_error_code);
    assert_null(got[0].last_error_message);
    pb_invocation_recs_free(got, n);

    /* a second call: larger ids */
    pb_invocation_rec w = inv(&SC, "d", "e3", 103);
    assert_int_equal(s->ops->invocations_add(s, &w, 1, NULL, 0), 0);
    assert_true(w.id > v[2].id);

    /* nothing to do is not an error, and writes nothing */
    assert_int_equal(s->ops->invocations_add(s, NULL, 0, NULL, 0), 0);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 4);
}

/* An id is never handed out twice: not after the newest row is deleted,
 * and not after re-opening. */
static void test_ids_never_reused(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    int64_t a = add_one(s, &SC, "a", "e", 1);
    int64_t b = add_one(s, &SC, "b", "e", 1);
    assert_true(b > a);
    assert_int_equal(s->ops->invocations_done(s, &b, 1), 0);
    int64_t c = add_one(s, &SC, "c", "e", 1);
    assert_true(c > b);
    int64_t all[] = {a, c};
    assert_int_equal(s->ops->invocations_done(s, all, 2), 0);
    s = pb_test_store_fx_reopen(f);
    int64_t d = add_one(s, &SC, "d", "e", 1);
    assert_true(d > c);

    /* the same for dead letters */
    pb_invocation_rec v = inv(&SC, "x", "e", 1);
    assert_int_equal(s->ops->invocations_add(s, &v, 1, NULL, 0), 0);
    pb_dead_letter_rec dl = dead(&v, DLQ1, 2);
    assert_int_equal(s->ops->invocation_dead(s, v.id, &dl), 0);
    int64_t dl1 = dl.id;
    assert_true(dl1 > 0);
    pb_invocation_rec *out = NULL;
    size_t nout = 0;
    assert_int_equal(s->ops->dead_letters_redrive(s, &SC, &dl1, 1, 3, &out, &nout), 0);
    assert_int_equal(nout, 1);
    assert_true(out[0].id > v.id);
    int64_t again = out[0].id;
    pb_invocation_recs_free(out, nout);
    s = pb_test_store_fx_reopen(f);
    dl = dead(&v, DLQ1, 4);
    assert_int_equal(s->ops->invocation_dead(s, again, &dl), 0);
    assert_true(dl.id > dl1);
}

/* The outbox events named are removed with the insert; others stay;
 * unknown seqs are ignored; events that matched nothing go alone. */
static void test_add_removes_outbox_events(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[256], exp[256];
    int64_t q1 = outbox_put(s, "{\"n\":1}"), q2 = outbox_put(s, "{\"n\":2}"), q3 = outbox_put(s, "{\"n\":3}");
    snprintf(exp, sizeof exp, "%lld,%lld,%lld", (long long)q1, (long long)q2, (long long)q3);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);

    pb_invocation_rec v[2] = {inv(&SC, "a", "e1", 1), inv(&SC, "b", "e1", 1)};
    int64_t done[] = {q1, 999999};
    assert_int_equal(s->ops->invocations_add(s, v, 2, done, 2), 0);
    snprintf(exp, sizeof exp, "%lld,%lld", (long long)q2, (long long)q3);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 2);

    /* an event that matched no rule: no invocation, the event goes */
    assert_int_equal(s->ops->invocations_add(s, NULL, 0, &q2, 1), 0);
    snprintf(exp, sizeof exp, "%lld", (long long)q3);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 2);

    /* and it is still gone after re-opening */
    s = pb_test_store_fx_reopen(f);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
}

/* A failure anywhere in the transaction leaves nothing: no invocation, the
 * outbox as it was, no ids in the records. */
static void test_add_all_or_nothing(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    char buf[256], exp[256];
    int64_t q1 = outbox_put(s, "{\"n\":1}"), q2 = outbox_put(s, "{\"n\":2}");
    snprintf(exp, sizeof exp, "%lld,%lld", (long long)q1, (long long)q2);

    /* the second outbox delete fails: the first delete and the inserts are undone */
    char trig[256];
    snprintf(trig, sizeof trig,
             "CREATE TEMP TRIGGER fail_outbox BEFORE DELETE ON event_outbox WHEN OLD.seq = %lld "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END",
             (long long)q2);
    pb_test_sql_exec(db, trig);
    pb_invocation_rec v[2] = {inv(&SC, "a", "e1", 1), inv(&SC, "b", "e2", 1)};
    int64_t done[] = {q1, q2};
    int rc = s->ops->invocations_add(s, v, 2, done, 2);
    assert_int_not_equal(rc, 0);
    assert_int_equal(v[0].id, 0);
    assert_int_equal(v[1].id, 0);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 0);
    assert_true(sqlite3_get_autocommit(db)); /* no transaction left open */
    pb_test_sql_exec(db, "DROP TRIGGER fail_outbox");

    /* the second insert fails */
    pb_test_sql_exec(db, "CREATE TEMP TRIGGER fail_insert BEFORE INSERT ON invocations WHEN NEW.target_id = 'boom' "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    pb_invocation_rec w[3] = {inv(&SC, "a", "e1", 1), inv(&SC, "boom", "e2", 1), inv(&SC, "c", "e2", 1)};
    assert_int_not_equal(s->ops->invocations_add(s, w, 3, done, 2), 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(w[i].id, 0);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 0);
    pb_test_sql_exec(db, "DROP TRIGGER fail_insert");

    /* a record without a required member: refused before anything is written */
    pb_invocation_rec bad[2] = {inv(&SC, "a", "e1", 1), inv(&SC, "b", "e2", 1)};
    bad[1].event_json = NULL;
    assert_int_equal(s->ops->invocations_add(s, bad, 2, done, 2), PB_EVALIDATION);
    bad[1] = inv(&SC, "b", "e2", 1);
    bad[1].account = NULL;
    assert_int_equal(s->ops->invocations_add(s, bad, 2, done, 2), PB_EVALIDATION);
    assert_int_equal(s->ops->invocations_add(s, NULL, 1, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->invocations_add(s, NULL, 0, NULL, 1), PB_EVALIDATION);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 0);

    /* and the same call, without the failure, goes through */
    assert_int_equal(s->ops->invocations_add(s, w, 3, done, 2), 0);
    assert_true(w[0].id > 0 && w[1].id > w[0].id && w[2].id > w[1].id);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), "");
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 3);
}

static void test_done(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[256], exp[256];
    int64_t a = add_one(s, &SC, "a", "e", 1), b = add_one(s, &SC, "b", "e", 1), c = add_one(s, &SC, "c", "e", 1);
    int64_t ids[] = {a, 424242, c, a}; /* unknown and repeated ids are ignored */
    assert_int_equal(s->ops->invocations_done(s, ids, 4), 0);
    snprintf(exp, sizeof exp, "%lld:b:0", (long long)b);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    assert_int_equal(s->ops->invocations_done(s, NULL, 0), 0);
    assert_int_equal(s->ops->invocations_done(s, NULL, 1), PB_EVALIDATION);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    assert_int_equal(s->ops->invocations_done(s, &b, 1), 0);
    assert_string_equal(pending(s, buf, sizeof buf), "");
}

static void test_retry(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    int64_t a = add_one(s, &SC, "a", "e", 1), b = add_one(s, &SC, "b", "e", 1);
    assert_int_equal(s->ops->invocation_retry(s, a, 1, 2000, "THROTTLING", "slow down"), 0);
    assert_int_equal(s->ops->invocation_retry(s, 987654, 1, 2000, "X", "y"), 0); /* unknown: ignored */

    pb_invocation_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->invocations_pending(s, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, a);
    assert_int_equal(v[0].attempts, 1);
    assert_int_equal(v[0].next_ms, 2000);
    assert_string_equal(v[0].last_error_code, "THROTTLING");
    assert_string_equal(v[0].last_error_message, "slow down");
    assert_int_equal(v[0].ingested_ms, 1); /* the rest is unchanged */
    assert_string_equal(v[0].target_id, "a");
    assert_int_equal(v[1].id, b); /* the other untouched */
    assert_int_equal(v[1].attempts, 0);
    assert_int_equal(v[1].next_ms, 1);
    assert_null(v[1].last_error_code);
    pb_invocation_recs_free(v, n);

    /* a later attempt replaces the error; NULL clears it */
    assert_int_equal(s->ops->invocation_retry(s, a, 2, 4000, "INTERNAL", NULL), 0);
    s = pb_test_store_fx_reopen(f);
    assert_int_equal(s->ops->invocations_pending(s, &v, &n), 0);
    assert_int_equal(v[0].attempts, 2);
    assert_int_equal(v[0].next_ms, 4000);
    assert_string_equal(v[0].last_error_code, "INTERNAL");
    assert_null(v[0].last_error_message);
    pb_invocation_recs_free(v, n);
}

static void test_dead(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    char buf[256], exp[256];
    pb_invocation_rec v[3] = {inv(&SC, "a", "e1", 10), inv(&SC, "b", "e2", 11), inv(&SC, "c", "e3", 12)};
    assert_int_equal(s->ops->invocations_add(s, v, 3, NULL, 0), 0);

    /* with a dead letter: every member kept */
    pb_dead_letter_rec dl = dead(&v[0], DLQ1, 500);
    dl.payload = "{\"custom\":1}";
    dl.id = 77;
    assert_int_equal(s->ops->invocation_dead(s, v[0].id, &dl), 0);
    assert_true(dl.id > 0);
    pb_dead_letter_rec *got = NULL;
    size_t n = 0;
    bool more = true;
    assert_int_equal(s->ops->dead_letters_list(s, &SC, NULL, 0, 10, &got, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(got[0].id, dl.id);
    assert_string_equal(got[0].dlq_arn, DLQ1);
    assert_string_equal(got[0].account, SC.account);
    assert_string_equal(got[0].region, SC.region);
    assert_string_equal(got[0].bus, "default");
    assert_string_equal(got[0].rule_arn, RULE_ARN);
    assert_string_equal(got[0].rule_name, "r1");
    assert_string_equal(got[0].target_id, "a");
    assert_string_equal(got[0].target_arn, TARGET_ARN);
    assert_string_equal(got[0].target_json, v[0].target_json);
    assert_string_equal(got[0].event_id, "e1");
    assert_string_equal(got[0].event_json, v[0].event_json);
    assert_string_equal(got[0].payload, "{\"custom\":1}");
    assert_string_equal(got[0].error_code, "NO_RESOURCE");
    assert_string_equal(got[0].error_message, "the queue does not exist");
    assert_string_equal(got[0].exhausted, "MaximumRetryAttempts");
    assert_int_equal(got[0].attempts, 185);
    assert_int_equal(got[0].ingested_ms, 10);
    assert_int_equal(got[0].created_ms, 500);
    pb_dead_letter_recs_free(got, n);

    /* optional members NULL */
    pb_dead_letter_rec dl2 = dead(&v[1], DLQ1, 501);
    dl2.exhausted = NULL;
    /* without a dead letter: just gone */
    assert_int_equal(s->ops->invocation_dead(s, v[2].id, NULL), 0);
    snprintf(exp, sizeof exp, "%lld:b:0", (long long)v[1].id);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM dead_letters"), 1);

    /* an unknown (or already dead) invocation: nothing written, dl->id 0 */
    pb_dead_letter_rec dl3 = dead(&v[0], DLQ1, 502);
    dl3.id = 5;
    assert_int_equal(s->ops->invocation_dead(s, v[0].id, &dl3), 0);
    assert_int_equal(dl3.id, 0);
    assert_int_equal(s->ops->invocation_dead(s, 31337, NULL), 0);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM dead_letters"), 1);

    /* a dead letter without a required member: refused, the invocation kept */
    pb_dead_letter_rec bad = dead(&v[1], DLQ1, 503);
    bad.error_code = NULL;
    assert_int_equal(s->ops->invocation_dead(s, v[1].id, &bad), PB_EVALIDATION);
    bad = dead(&v[1], NULL, 503);
    assert_int_equal(s->ops->invocation_dead(s, v[1].id, &bad), PB_EVALIDATION);
    assert_string_equal(pending(s, buf, sizeof buf), exp);

    /* the dead letter cannot be written: the invocation is kept */
    pb_test_sql_exec(db, "CREATE TEMP TRIGGER fail_dl BEFORE INSERT ON dead_letters "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    dl2.id = 9;
    assert_int_not_equal(s->ops->invocation_dead(s, v[1].id, &dl2), 0);
    assert_int_equal(dl2.id, 0);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    assert_true(sqlite3_get_autocommit(db));
    pb_test_sql_exec(db, "DROP TRIGGER fail_dl");

    assert_int_equal(s->ops->invocation_dead(s, v[1].id, &dl2), 0);
    assert_true(dl2.id > dl.id);
    assert_string_equal(pending(s, buf, sizeof buf), "");
    assert_int_equal(s->ops->dead_letters_list(s, &SC, NULL, dl.id, 10, &got, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_null(got[0].exhausted);
    assert_null(got[0].payload);
    pb_dead_letter_recs_free(got, n);
}

/* -------------------------------------------------------- dead letters -- */

/* Dead letter ids of the test below, by name. */
typedef struct dls {
    int64_t a1, b2, c1, d1, other_region, other_account;
} dls;

/* Kills one invocation per entry into dead letters: a, c, d in DLQ1 and b
 * in DLQ2 of SC, and one each in the other region and account. */
static dls make_dead_letters(pb_store *s)
{
    struct {
        const pb_scope *sc;
        const char *tid, *dlq;
    } spec[] = {{&SC, "a", DLQ1},        {&SC, "b", DLQ2},         {&SC_REGION, "r", DLQ1},
                {&SC, "c", DLQ1},        {&SC_ACCOUNT, "o", DLQ1}, {&SC, "d", DLQ1}};
    int64_t id[6];
    for (size_t i = 0; i < 6; i++) {
        pb_invocation_rec v = inv(spec[i].sc, spec[i].tid, "e", (int64_t)i);
        assert_int_equal(s->ops->invocations_add(s, &v, 1, NULL, 0), 0);
        pb_dead_letter_rec dl = dead(&v, spec[i].dlq, 100 + (int64_t)i);
        assert_int_equal(s->ops->invocation_dead(s, v.id, &dl), 0);
        assert_true(dl.id > (i ? id[i - 1] : 0));
        id[i] = dl.id;
    }
    return (dls){id[0], id[1], id[3], id[5], id[2], id[4]};
}

static void test_dead_letters_list(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    dls d = make_dead_letters(s);
    char buf[256], exp[256];
    bool more = false;

    /* the whole scope, in id order */
    snprintf(exp, sizeof exp, "%lld:a,%lld:b,%lld:c,%lld:d", (long long)d.a1, (long long)d.b2, (long long)d.c1,
             (long long)d.d1);
    assert_string_equal(dl_page(s, &SC, NULL, 0, 100, &more, buf, sizeof buf), exp);
    assert_false(more);
    /* exactly as many as the limit: no more */
    assert_string_equal(dl_page(s, &SC, NULL, 0, 4, &more, buf, sizeof buf), exp);
    assert_false(more);

    /* pages of 3 */
    snprintf(exp, sizeof exp, "%lld:a,%lld:b,%lld:c", (long long)d.a1, (long long)d.b2, (long long)d.c1);
    assert_string_equal(dl_page(s, &SC, NULL, 0, 3, &more, buf, sizeof buf), exp);
    assert_true(more);
    snprintf(exp, sizeof exp, "%lld:d", (long long)d.d1);
    assert_string_equal(dl_page(s, &SC, NULL, d.c1, 3, &more, buf, sizeof buf), exp);
    assert_false(more);
    assert_string_equal(dl_page(s, &SC, NULL, d.d1, 3, &more, buf, sizeof buf), "");
    assert_false(more);

    /* one queue, paged */
    snprintf(exp, sizeof exp, "%lld:a,%lld:c", (long long)d.a1, (long long)d.c1);
    assert_string_equal(dl_page(s, &SC, DLQ1, 0, 2, &more, buf, sizeof buf), exp);
    assert_true(more);
    snprintf(exp, sizeof exp, "%lld:d", (long long)d.d1);
    assert_string_equal(dl_page(s, &SC, DLQ1, d.c1, 2, &more, buf, sizeof buf), exp);
    assert_false(more);
    snprintf(exp, sizeof exp, "%lld:b", (long long)d.b2);
    assert_string_equal(dl_page(s, &SC, DLQ2, 0, 10, &more, buf, sizeof buf), exp);
    assert_false(more);
    assert_string_equal(dl_page(s, &SC, "arn:aws:sqs:us-east-1:123456789012:none", 0, 10, &more, buf, sizeof buf),
                        "");
    assert_false(more);

    /* limit 0: nothing, but says whether there is something */
    assert_string_equal(dl_page(s, &SC, NULL, 0, 0, &more, buf, sizeof buf), "");
    assert_true(more);

    /* other scopes see only theirs */
    snprintf(exp, sizeof exp, "%lld:r", (long long)d.other_region);
    assert_string_equal(dl_page(s, &SC_REGION, NULL, 0, 10, &more, buf, sizeof buf), exp);
    assert_string_equal(dl_page(s, &SC_REGION, DLQ1, 0, 10, &more, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld:o", (long long)d.other_account);
    assert_string_equal(dl_page(s, &SC_ACCOUNT, DLQ1, 0, 10, &more, buf, sizeof buf), exp);
    const pb_scope nobody = {"999999999999", "us-east-1"};
    assert_string_equal(dl_page(s, &nobody, NULL, 0, 10, &more, buf, sizeof buf), "");
    assert_false(more);

    pb_dead_letter_rec *v = NULL;
    size_t n = 0;
    const pb_scope half = {"123456789012", NULL};
    assert_int_equal(s->ops->dead_letters_list(s, &half, NULL, 0, 10, &v, &n, &more), PB_EVALIDATION);
    assert_int_equal(s->ops->dead_letters_list(s, NULL, NULL, 0, 10, &v, &n, &more), PB_EVALIDATION);
    assert_int_equal(s->ops->dead_letters_list(s, &SC, NULL, 0, 10, &v, &n, NULL), PB_EVALIDATION);
}

static void test_redrive(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    dls d = make_dead_letters(s);
    int64_t last = add_one(s, &SC, "z", "e", 1); /* the largest invocation id so far */
    char buf[256], exp[256];
    bool more = false;

    /* c and a of SC (in that order); an unknown id and other scopes' are skipped */
    int64_t ids[] = {d.c1, 55555, d.other_region, d.a1, d.other_account, d.c1};
    pb_invocation_rec *out = (pb_invocation_rec *)1;
    size_t nout = 99;
    assert_int_equal(s->ops->dead_letters_redrive(s, &SC, ids, 6, 7000, &out, &nout), 0);
    assert_int_equal(nout, 2);
    assert_string_equal(out[0].target_id, "c");
    assert_string_equal(out[1].target_id, "a");
    assert_true(out[0].id > last);
    assert_true(out[1].id > out[0].id);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(out[i].account, SC.account);
        assert_string_equal(out[i].region, SC.region);
        assert_string_equal(out[i].bus, "default");
        assert_string_equal(out[i].rule_arn, RULE_ARN);
        assert_string_equal(out[i].rule_name, "r1");
        assert_string_equal(out[i].target_arn, TARGET_ARN);
        assert_string_equal(out[i].event_id, "e");
        assert_int_equal(out[i].attempts, 0);
        assert_int_equal(out[i].next_ms, 7000);
        assert_int_equal(out[i].hops, 0);
        assert_null(out[i].last_error_code);
        assert_null(out[i].last_error_message);
    }
    assert_int_equal(out[0].ingested_ms, 3); /* kept from the original event */
    assert_int_equal(out[1].ingested_ms, 0);

    /* they are pending, as returned */
    pb_invocation_rec *pend = NULL;
    size_t np = 0;
    assert_int_equal(s->ops->invocations_pending(s, &pend, &np), 0);
    assert_int_equal(np, 3);
    assert_int_equal(pend[0].id, last);
    assert_same_invocation(&pend[1], &out[0]);
    assert_same_invocation(&pend[2], &out[1]);
    pb_invocation_recs_free(pend, np);
    pb_invocation_recs_free(out, nout);

    /* the dead letters are gone from SC; the other scopes keep theirs */
    snprintf(exp, sizeof exp, "%lld:b,%lld:d", (long long)d.b2, (long long)d.d1);
    assert_string_equal(dl_page(s, &SC, NULL, 0, 10, &more, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld:r", (long long)d.other_region);
    assert_string_equal(dl_page(s, &SC_REGION, NULL, 0, 10, &more, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld:o", (long long)d.other_account);
    assert_string_equal(dl_page(s, &SC_ACCOUNT, NULL, 0, 10, &more, buf, sizeof buf), exp);

    /* again: nothing left to move */
    out = (pb_invocation_rec *)1;
    nout = 99;
    assert_int_equal(s->ops->dead_letters_redrive(s, &SC, ids, 6, 8000, &out, &nout), 0);
    assert_int_equal(nout, 0);
    assert_null(out);
    assert_int_equal(s->ops->dead_letters_redrive(s, &SC, NULL, 0, 8000, &out, &nout), 0);
    assert_int_equal(s->ops->dead_letters_redrive(s, &SC, NULL, 1, 8000, &out, &nout), PB_EVALIDATION);
    assert_int_equal(s->ops->dead_letters_redrive(s, NULL, ids, 1, 8000, &out, &nout), PB_EVALIDATION);

    /* all or nothing: b is moved, then d's insert fails; b stays a dead letter */
    sqlite3 *db = pb_store__sqlite_db(s);
    pb_test_sql_exec(db, "CREATE TEMP TRIGGER fail_redrive BEFORE INSERT ON invocations WHEN NEW.target_id = 'd' "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    int64_t bd[] = {d.b2, d.d1};
    out = (pb_invocation_rec *)1;
    nout = 99;
    assert_int_not_equal(s->ops->dead_letters_redrive(s, &SC, bd, 2, 9000, &out, &nout), 0);
    assert_null(out);
    assert_int_equal(nout, 0);
    snprintf(exp, sizeof exp, "%lld:b,%lld:d", (long long)d.b2, (long long)d.d1);
    assert_string_equal(dl_page(s, &SC, NULL, 0, 10, &more, buf, sizeof buf), exp);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 3);
    assert_true(sqlite3_get_autocommit(db));
    pb_test_sql_exec(db, "DROP TRIGGER fail_redrive");
}

/* -------------------------------------------------------- durability -- */

static void test_reopen_finds_everything(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[256], exp[256];
    bool more = false;
    int64_t q = outbox_put(s, "{\"n\":1}");
    outbox_put(s, "{\"n\":2}");
    pb_invocation_rec v[3] = {inv(&SC, "a", "e1", 1), inv(&SC, "b", "e1", 1), inv(&SC_ACCOUNT, "c", "e2", 1)};
    assert_int_equal(s->ops->invocations_add(s, v, 3, &q, 1), 0);
    assert_int_equal(s->ops->invocation_retry(s, v[1].id, 4, 99, "E", "m"), 0);
    pb_dead_letter_rec dl = dead(&v[2], DLQ2, 9);
    assert_int_equal(s->ops->invocation_dead(s, v[2].id, &dl), 0);

    s = pb_test_store_fx_reopen(f);
    snprintf(exp, sizeof exp, "%lld:a:0,%lld:b:4", (long long)v[0].id, (long long)v[1].id);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld:c", (long long)dl.id);
    assert_string_equal(dl_page(s, &SC_ACCOUNT, DLQ2, 0, 10, &more, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld", (long long)q + 1);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
}

/* The child adds invocations (removing their outbox event), marks one done
 * and kills one into a dead letter, and is killed as soon as the calls
 * return: what was acknowledged must be there. */
static void test_durable_after_sigkill(void **state)
{
    fx *f = *state;
    char buf[256], exp[256];
    bool more = false;
    pb_store *s = pb_test_store_fx_open(f);
    int64_t q1 = outbox_put(s, "{\"n\":1}"), q2 = outbox_put(s, "{\"n\":2}");
    pb_store_close(s);
    f->s = NULL;

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        pb_store *cs = NULL;
        if (pb_store_open(f->url, &cs, NULL) != 0)
            _exit(10);
        pb_invocation_rec v[3] = {inv(&SC, "a", "e1", 1), inv(&SC, "b", "e1", 1), inv(&SC, "c", "e1", 1)};
        if (cs->ops->invocations_add(cs, v, 3, &q1, 1) != 0)
            _exit(11);
        if (cs->ops->invocations_done(cs, &v[0].id, 1) != 0)
            _exit(12);
        pb_dead_letter_rec dl = dead(&v[1], DLQ1, 2);
        if (cs->ops->invocation_dead(cs, v[1].id, &dl) != 0)
            _exit(13);
        int64_t ids[] = {v[2].id, dl.id};
        if (write(fds[1], ids, sizeof ids) != (ssize_t)sizeof ids)
            _exit(14);
        kill(getpid(), SIGKILL);
        _exit(15);
    }
    close(fds[1]);
    int64_t ids[2] = {0, 0};
    ssize_t got = read(fds[0], ids, sizeof ids);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of being killed", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(got, (ssize_t)sizeof ids);

    s = pb_test_store_fx_open(f);
    snprintf(exp, sizeof exp, "%lld:c:0", (long long)ids[0]);
    assert_string_equal(pending(s, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld:b", (long long)ids[1]);
    assert_string_equal(dl_page(s, &SC, NULL, 0, 10, &more, buf, sizeof buf), exp);
    snprintf(exp, sizeof exp, "%lld", (long long)q2);
    assert_string_equal(outbox_seqs(s, buf, sizeof buf), exp);
    char ic[64];
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA integrity_check", ic, sizeof ic), "ok");
}

/* -------------------------------------------------------- migrations -- */

/* A database written by a pipebridge with migrations 1 to 3 opens, gains
 * migration 4 and keeps its data, outbox included. */
static void test_migrate_from_v3(void **state)
{
    fx *f = *state;
    assert_true(pb_store__nmigrations >= 4);
    assert_int_equal(pb_store__migrations[2].version, 3);
    assert_int_equal(pb_store__migrations[3].version, 4);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    pb_test_sql_exec(db, "PRAGMA journal_mode = WAL");
    pb_error err;
    assert_int_equal(pb_store__migrate(db, pb_store__migrations, 3, &err), 0);
    pb_test_sql_exec(db, "INSERT INTO buses VALUES ('123456789012', 'us-east-1', 'old', 'arn:old', NULL, NULL, 1, 1);"
                         "INSERT INTO event_outbox (account, region, bus, event_json, created_ms) "
                         "VALUES ('123456789012', 'us-east-1', 'default', '{\"old\":1}', 5);"
                         "INSERT INTO event_outbox (account, region, bus, event_json, created_ms) "
                         "VALUES ('123456789012', 'us-east-1', 'default', '{\"old\":2}', 6)");
    char buf[256];
    assert_string_equal(pb_test_sql_text(db, "SELECT group_concat(version) FROM schema_migrations", buf, sizeof buf),
                        "1,2,3");
    assert_string_equal(pb_test_sql_text(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('invocations', "
                                             "'dead_letters')",
                                         buf, sizeof buf),
                        "0");
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    pb_store *s = pb_test_store_fx_open(f);
    db = pb_store__sqlite_db(s);
    /* its pages stay as they were (only a new database gets the store's size) */
    assert_string_equal(pb_test_sql_text(db, "PRAGMA page_size", buf, sizeof buf), "4096");
    assert_string_equal(pb_test_sql_text(db,
                                         "SELECT group_concat(version) FROM (SELECT version FROM schema_migrations "
                                         "WHERE version <= 4 ORDER BY version)",
                                         buf, sizeof buf),
                        "1,2,3,4");
    assert_string_equal(pb_test_sql_text(db, "SELECT name FROM schema_migrations WHERE version = 4", buf, sizeof buf),
                        pb_store__migrations[3].name);
    assert_string_equal(pb_test_sql_text(db,
                                         "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE name IN "
                                         "('invocations', 'dead_letters', 'dead_letters_by_scope', "
                                         "'dead_letters_by_dlq') ORDER BY name)",
                                         buf, sizeof buf),
                        "dead_letters,dead_letters_by_dlq,dead_letters_by_scope,invocations");
    pb_bus_rec b;
    assert_int_equal(s->ops->bus_get(s, &SC, "old", &b), 0);
    assert_string_equal(b.arn, "arn:old");
    pb_bus_rec_free(&b);

    /* the old outbox is delivered through the new tables */
    pb_outbox_rec *o = NULL;
    size_t no = 0;
    assert_int_equal(s->ops->outbox_list(s, 0, 10, &o, &no), 0);
    assert_int_equal(no, 2);
    assert_string_equal(o[0].event_json, "{\"old\":1}");
    pb_invocation_rec v = inv(&SC, "a", "old1", o[0].created_ms);
    v.event_json = o[0].event_json;
    int64_t seq = o[0].seq;
    assert_int_equal(s->ops->invocations_add(s, &v, 1, &seq, 1), 0);
    pb_outbox_rec *left = NULL;
    size_t nleft = 0;
    assert_int_equal(s->ops->outbox_list(s, 0, 10, &left, &nleft), 0);
    assert_int_equal(nleft, 1);
    assert_string_equal(left[0].event_json, "{\"old\":2}");
    pb_outbox_recs_free(left, nleft);
    pb_dead_letter_rec dl = dead(&v, DLQ1, 7);
    assert_int_equal(s->ops->invocation_dead(s, v.id, &dl), 0);
    assert_true(dl.id > 0);
    pb_outbox_recs_free(o, no); /* v.event_json was o[0]'s */
    assert_string_equal(pb_test_sql_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok");

    /* and a second open applies nothing again */
    s = pb_test_store_fx_reopen(f);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM schema_migrations"), (int)pb_store__nmigrations);
}

/* The details of the query plan of sql, joined with "; ". */
static const char *plan(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    char q[1024];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", q, sqlite3_errmsg(db));
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (buf[0])
            strncat(buf, "; ", len - strlen(buf) - 1);
        strncat(buf, (const char *)sqlite3_column_text(st, 3), len - strlen(buf) - 1);
    }
    sqlite3_finalize(st);
    return buf;
}

/* The dead-letter pages are read from an index in id order, without a
 * sort, with and without a queue; pending and the deletes go by the key. */
static void test_query_plans_use_indexes(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    sqlite3 *db = pb_store__sqlite_db(s);
    char buf[512];
    plan(db, "SELECT * FROM dead_letters WHERE account = 'a' AND region = 'r' AND id > 5 ORDER BY id LIMIT 3", buf,
         sizeof buf);
    if (!strstr(buf, "USING INDEX dead_letters_by_scope") || strstr(buf, "TEMP B-TREE"))
        fail_msg("dead letters by scope: %s", buf);
    plan(db,
         "SELECT * FROM dead_letters WHERE account = 'a' AND region = 'r' AND dlq_arn = 'q' AND id > 5 "
         "ORDER BY id LIMIT 3",
         buf, sizeof buf);
    if (!strstr(buf, "USING INDEX dead_letters_by_dlq") || strstr(buf, "TEMP B-TREE"))
        fail_msg("dead letters by queue: %s", buf);
    plan(db, "SELECT * FROM invocations ORDER BY id", buf, sizeof buf);
    if (strstr(buf, "TEMP B-TREE"))
        fail_msg("pending: %s", buf);
    plan(db, "DELETE FROM invocations WHERE id = 1", buf, sizeof buf);
    if (!strstr(buf, "INTEGER PRIMARY KEY"))
        fail_msg("done: %s", buf);
    plan(db, "DELETE FROM event_outbox WHERE seq = 1", buf, sizeof buf);
    if (!strstr(buf, "INTEGER PRIMARY KEY"))
        fail_msg("outbox delete: %s", buf);
}

/* A new database gets 16 KiB pages (the invocation rows are written and
 * deleted in bulk), in WAL mode, and keeps them across opens. */
static void test_new_store_page_size(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    char buf[32];
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA page_size", buf, sizeof buf), "16384");
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA journal_mode", buf, sizeof buf), "wal");
    add_one(s, &SC, "a", "e", 1);
    s = pb_test_store_fx_reopen(f);
    assert_string_equal(pb_test_sql_text(pb_store__sqlite_db(s), "PRAGMA page_size", buf, sizeof buf), "16384");
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 1);
}

/* -------------------------------------------------------- throughput -- */

/* Wall-clock and CPU time (this process, user + system) since a mark:
 * on a shared machine the wall figure moves with the neighbours' load,
 * the CPU figure much less. */
typedef struct mark {
    struct timespec wall, cpu;
} mark;

static void mark_now(mark *m)
{
    clock_gettime(CLOCK_MONOTONIC, &m->wall);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &m->cpu);
}

static double since(const struct timespec *a, clockid_t clk)
{
    struct timespec b;
    clock_gettime(clk, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* Printed, not asserted: 50,000 invocations with an event of about 600
 * bytes, added in batches of 500 (each batch also removing 250 outbox
 * events, as two targets per event would), then done in batches of 500. */
static void test_throughput_printed(void **state)
{
    fx *f = *state;
    pb_store *s = pb_test_store_fx_open(f);
    enum { TOTAL = 50000, BATCH = 500, EVENTS = BATCH / 2 };
    char event[640];
    int len = snprintf(event, sizeof event,
                       "{\"version\":\"0\",\"id\":\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\",\"detail-type\":"
                       "\"Order Placed\",\"source\":\"com.example.orders\",\"account\":\"123456789012\","
                       "\"time\":\"2024-05-01T12:00:00Z\",\"region\":\"us-east-1\",\"resources\":[],"
                       "\"detail\":{\"order\":{\"id\":\"o-");
    while (len < (int)sizeof event - 8)
        event[len++] = 'x';
    snprintf(event + len, sizeof event - (size_t)len, "\"}}}");

    /* the outbox rows the batches remove, written beforehand outside the timing */
    sqlite3 *db = pb_store__sqlite_db(s);
    pb_test_sql_exec(db, "BEGIN");
    int64_t first_seq = 0;
    for (int i = 0; i < TOTAL / 2; i++) {
        int64_t q = outbox_put(s, event);
        if (i == 0)
            first_seq = q;
    }
    pb_test_sql_exec(db, "COMMIT");

    pb_invocation_rec *v = calloc(BATCH, sizeof *v);
    int64_t *ids = calloc(TOTAL, sizeof *ids);
    int64_t seqs[EVENTS];
    assert_non_null(v);
    assert_non_null(ids);
    mark t0;
    mark_now(&t0);
    for (int b = 0; b < TOTAL / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            v[i] = inv(&SC, i % 2 ? "t2" : "t1", "6a7e8feb-b491-4cf7-a9f1-bf3703467718", 1);
            v[i].event_json = event;
        }
        for (int i = 0; i < EVENTS; i++)
            seqs[i] = first_seq + (int64_t)b * EVENTS + i;
        assert_int_equal(s->ops->invocations_add(s, v, BATCH, seqs, EVENTS), 0);
        for (int i = 0; i < BATCH; i++)
            ids[b * BATCH + i] = v[i].id;
    }
    double add_s = since(&t0.wall, CLOCK_MONOTONIC), add_cpu = since(&t0.cpu, CLOCK_PROCESS_CPUTIME_ID);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), TOTAL);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM event_outbox"), 0);

    mark_now(&t0);
    pb_invocation_rec *pend = NULL;
    size_t np = 0;
    assert_int_equal(s->ops->invocations_pending(s, &pend, &np), 0);
    double pending_s = since(&t0.wall, CLOCK_MONOTONIC);
    assert_int_equal(np, TOTAL);
    pb_invocation_recs_free(pend, np);

    mark_now(&t0);
    for (int b = 0; b < TOTAL / BATCH; b++)
        assert_int_equal(s->ops->invocations_done(s, ids + b * BATCH, BATCH), 0);
    double done_s = since(&t0.wall, CLOCK_MONOTONIC), done_cpu = since(&t0.cpu, CLOCK_PROCESS_CPUTIME_ID);
    assert_int_equal(pb_test_count_rows(s, "SELECT count(*) FROM invocations"), 0);

    printf("[ THROUGHPUT ] invocations_add: %d rows (%d-byte events) in batches of %d, with %d outbox deletes "
           "each: %.3f s (%.0f rows/s), CPU %.3f s\n",
           TOTAL, (int)strlen(event), BATCH, EVENTS, add_s, TOTAL / add_s, add_cpu);
    printf("[ THROUGHPUT ] invocations_pending: %d rows: %.3f s\n", TOTAL, pending_s);
    printf("[ THROUGHPUT ] invocations_done: %d ids in batches of %d: %.3f s (%.0f ids/s), CPU %.3f s\n", TOTAL,
           BATCH, done_s, TOTAL / done_s, done_cpu);
    free(v);
    free(ids);
}

static void test_free_helpers_accept_null(void **state)
{
    (void)state;
    pb_invocation_rec_free(NULL);
    pb_invocation_recs_free(NULL, 0);
    pb_dead_letter_rec_free(NULL);
    pb_dead_letter_recs_free(NULL, 0);
    pb_invocation_rec v = {.account = strdup("a"), .event_json = strdup("{}"), .last_error_code = strdup("E")};
    pb_invocation_rec_free(&v);
    assert_null(v.account);
    assert_null(v.event_json);
    assert_null(v.last_error_code);
    pb_dead_letter_rec d = {.dlq_arn = strdup("q"), .payload = strdup("p"), .exhausted = strdup("x")};
    pb_dead_letter_rec_free(&d);
    assert_null(d.dlq_arn);
    assert_null(d.payload);
    assert_null(d.exhausted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_removes_outbox_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letters_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_finds_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plans_use_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_store_page_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_printed, setup, teardown),
        cmocka_unit_test(test_free_helpers_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
