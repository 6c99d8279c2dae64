/*
 * test_scheduler.c — src/bus/scheduler.c: the heap fires exactly the ticks
 * the schedules say, in batches, through rule changes; catch-up after
 * downtime per policy (none / latest / all, bounded) and only once; the
 * Scheduled Event's shape and its deterministic id.
 *
 * The scheduler fires into a recording callback instead of delivery; the
 * catch-up tests give it a real SQLite store whose fired ticks the callback
 * records the way delivery does (invocations_fire).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/pb_scheduler.h"
#include "schedule/pb_schedule.h"

static const pb_scope SC = {"123456789012", "us-east-1"};

/* ------------------------------------------------------------ recorder -- */

typedef struct fired {
    char rule[72];
    int64_t tick_ms;
    bool catchup;
    char json[1024];
} fired;

typedef struct rec {
    fired *v;
    size_t n, cap;
    size_t calls;
    pb_store *store; /* when set, ticks are recorded there as delivery would */
    int fail_next;   /* fail this many calls */
} rec;

static int record(void *ctx, const pb_delivery_tick *t, size_t n, pb_error *err)
{
    rec *r = ctx;
    r->calls++;
    if (r->fail_next) {
        r->fail_next--;
        return pb_error_set(err, PB_EIO, "injected failure");
    }
    assert_true(n <= PB_SCHEDULER_BATCH);
    if (r->store) {
        pb_tick_rec *tk = calloc(n, sizeof *tk);
        for (size_t i = 0; i < n; i++)
            tk[i] = (pb_tick_rec){(char *)t[i].scope.account, (char *)t[i].scope.region, (char *)t[i].bus,
                                  (char *)t[i].rule, t[i].tick_ms};
        assert_int_equal(r->store->ops->invocations_fire(r->store, NULL, 0, NULL, 0, tk, n, NULL, 0), 0);
        free(tk);
    }
    for (size_t i = 0; i < n; i++) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 256;
            r->v = realloc(r->v, r->cap * sizeof *r->v);
        }
        fired *f = &r->v[r->n++];
        snprintf(f->rule, sizeof f->rule, "%s", t[i].rule);
        f->tick_ms = t[i].tick_ms;
        f->catchup = t[i].catchup;
        snprintf(f->json, sizeof f->json, "%s", t[i].event_json);
    }
    return 0;
}

static int cmp_fired(const void *a, const void *b)
{
    const fired *x = a, *y = b;
    int c = strcmp(x->rule, y->rule);
    return c ? c : (x->tick_ms > y->tick_ms) - (x->tick_ms < y->tick_ms);
}

/* ------------------------------------------------------------- events -- */

static void test_event_shape(void **state)
{
    (void)state;
    char id[37], id2[37], json[1024];
    int64_t tick = 1922428800000LL; /* 2030-12-02T08:00:00Z */
    size_t n = pb_scheduler_event(&SC, "nightly", 1000, tick, false, id, json, sizeof json);
    assert_true(n > 0);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\","
             "\"account\":\"123456789012\",\"time\":\"2030-12-02T08:00:00Z\",\"region\":\"us-east-1\","
             "\"resources\":[\"arn:aws:events:us-east-1:123456789012:rule/nightly\"],\"detail\":{}}",
             id);
    assert_string_equal(json, want);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4'); /* version 4 */
    assert_true(strchr("89ab", id[19]) != NULL);
    /* the same tick of the same rule: the same id; another tick or creation: another */
    pb_scheduler_event(&SC, "nightly", 1000, tick, true, id2, json, sizeof json);
    assert_string_equal(id, id2);
    assert_non_null(strstr(json, "\"detail\":{},\"pipebridge-catch-up\":true}"));
    pb_scheduler_event(&SC, "nightly", 1000, tick + 60000, false, id2, json, sizeof json);
    assert_string_not_equal(id, id2);
    pb_scheduler_event(&SC, "nightly", 2000, tick, false, id2, json, sizeof json);
    assert_string_not_equal(id, id2);
    assert_int_equal(pb_scheduler_event(&SC, "nightly", 1000, tick, false, id2, json, 50), 0);
}

/* ---------------------------------------------------------------- heap -- */

static uint64_t rng = 0x243f6a8885a308d3ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const EXPRS[] = {
    "rate(1 minute)", "rate(7 minutes)", "rate(1 hour)", "rate(2 hours)", "cron(* * * * ? *)",
    "cron(0/15 * * * ? *)", "cron(5,35 * ? * MON-FRI *)", "cron(0 8 ? * MON#1 *)", "cron(59 23 L * ? *)",
    "cron(0 0 1 1 ? 2020)", "at(2030-12-01T00:30:30)", "cron(30 0-3 * * ? *)",
};
#define NEXPRS (sizeof EXPRS / sizeof EXPRS[0])

typedef struct model {
    char name[16];
    int expr;        /* -1: not scheduled */
    int64_t created; /* ms */
} model;

/* Random rules change between advances of the manual clock; the fired ticks
 * must be exactly those the schedules give in each advanced interval. */
static void test_heap_fires_exactly(void **state)
{
    (void)state;
    rec r = {0};
    const int64_t start = 1922313300000LL; /* 2030-11-30T23:55:00Z */
    pb_scheduler_config cfg = {.fire = record, .fire_ctx = &r, .manual_clock = true, .manual_start_ms = start};
    pb_scheduler *s = NULL;
    pb_error err;
    assert_int_equal(pb_scheduler_create(&cfg, &s, &err), 0);
    assert_true(pb_scheduler_is_manual(s));
    assert_int_equal(pb_scheduler_now_ms(s), start);
    enum { N = 1500 };
    static model m[N];
    for (int i = 0; i < N; i++) {
        snprintf(m[i].name, sizeof m[i].name, "r%04d", i);
        m[i].expr = -1;
    }
    fired *want = NULL;
    size_t nwant = 0, capwant = 0;
    int64_t now = start;
    for (int round = 0; round < 12; round++) {
        /* change a third of the rules: add, replace, disable, remove */
        for (int k = 0; k < N / 3; k++) {
            model *x = &m[rnd(N)];
            switch (rnd(4)) {
            case 0:
            case 1:
                if (x->expr < 0)
                    x->created = now - (int64_t)rnd(3600) * 1000 - rnd(1000);
                x->expr = (int)rnd(NEXPRS);
                assert_int_equal(pb_scheduler_set_rule(s, &SC, "default", x->name, EXPRS[x->expr], true,
                                                       x->created), 0);
                break;
            case 2:
                x->expr = -1;
                assert_int_equal(pb_scheduler_set_rule(s, &SC, "default", x->name, EXPRS[0], false, 0), 0);
                break;
            default:
                x->expr = -1;
                pb_scheduler_remove_rule(s, &SC, "default", x->name);
            }
        }
        /* schedules on another bus are not the scheduler's */
        assert_int_equal(pb_scheduler_set_rule(s, &SC, "other", "elsewhere", "rate(1 minute)", true, now), 0);
        assert_int_equal(pb_scheduler_next_fire_ms(s, &SC, "other", "elsewhere"), -1);
        size_t scheduled = 0;
        int64_t to = now + (int64_t)(1 + rnd(4 * 3600)) * 1000;
        for (int i = 0; i < N; i++) {
            if (m[i].expr < 0) {
                assert_int_equal(pb_scheduler_next_fire_ms(s, &SC, "default", m[i].name), -1);
                continue;
            }
            pb_schedule ps;
            const char *e = EXPRS[m[i].expr];
            assert_int_equal(pb_schedule_parse(e, strlen(e), &ps, NULL), 0);
            int64_t t = pb_schedule_next(&ps, m[i].created / 1000, now / 1000);
            assert_int_equal(pb_scheduler_next_fire_ms(s, &SC, "default", m[i].name), t < 0 ? -1 : t * 1000);
            scheduled += t >= 0;
            for (; t >= 0 && t * 1000 <= to; t = pb_schedule_next(&ps, m[i].created / 1000, t)) {
                if (nwant == capwant) {
                    capwant = capwant ? capwant * 2 : 1024;
                    want = realloc(want, capwant * sizeof *want);
                }
                memcpy(want[nwant].rule, m[i].name, sizeof m[i].name);
                want[nwant++].tick_ms = t * 1000;
            }
        }
        assert_int_equal(pb_scheduler_count(s), scheduled);
        size_t before = r.n, nf = 0;
        assert_int_equal(pb_scheduler_advance(s, to, &nf, &err), 0);
        assert_int_equal(nf, r.n - before);
        assert_int_equal(pb_scheduler_now_ms(s), to);
        now = to;
    }
    /* the same multiset of (rule, tick) */
    assert_int_equal(r.n, nwant);
    qsort(r.v, r.n, sizeof *r.v, cmp_fired);
    qsort(want, nwant, sizeof *want, cmp_fired);
    for (size_t i = 0; i < nwant; i++) {
        if (strcmp(r.v[i].rule, want[i].rule) || r.v[i].tick_ms != want[i].tick_ms)
            fail_msg("fired %zu: %s@%lld, want %s@%lld", i, r.v[i].rule, (long long)r.v[i].tick_ms, want[i].rule,
                     (long long)want[i].tick_ms);
        assert_false(r.v[i].catchup);
    }
    assert_true(nwant > 10000);
    assert_int_equal(pb_scheduler_fired(s), nwant);
    /* the clock never goes back; advancing to now fires nothing */
    assert_int_equal(pb_scheduler_advance(s, now - 1, NULL, &err), PB_EVALIDATION);
    size_t nf = 7;
    assert_int_equal(pb_scheduler_advance(s, now, &nf, &err), 0);
    assert_int_equal(nf, 0);
    pb_scheduler_free(s);
    free(r.v);
    free(want);
}

/* A failed batch fires nothing and is fired whole by the next advance. */
static void test_failed_batch_is_not_lost(void **state)
{
    (void)state;
    rec r = {.fail_next = 1};
    pb_scheduler_config cfg = {.fire = record, .fire_ctx = &r, .manual_clock = true, .manual_start_ms = 600000};
    pb_scheduler *s = NULL;
    pb_error err;
    assert_int_equal(pb_scheduler_create(&cfg, &s, &err), 0);
    assert_int_equal(pb_scheduler_set_rule(s, &SC, "default", "a", "rate(1 minute)", true, 600000), 0);
    assert_int_equal(pb_scheduler_advance(s, 600000 + 150000, NULL, &err), PB_EIO);
    assert_int_equal(r.n, 0);
    assert_int_equal(pb_scheduler_now_ms(s), 600000); /* the clock stayed */
    assert_int_equal(pb_scheduler_next_fire_ms(s, &SC, "default", "a"), 660000);
    assert_int_equal(pb_scheduler_advance(s, 600000 + 150000, NULL, &err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].tick_ms, 660000);
    assert_int_equal(r.v[1].tick_ms, 720000);
    pb_scheduler_free(s);
    free(r.v);
}

/* ------------------------------------------------------------ catch-up -- */

typedef struct sfx {
    char dir[64];
    char url[128];
    pb_store *store;
} sfx;

/* A store of its own in a fresh directory. */
static void sfx_open(sfx *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/pb-sched-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof f->url, "sqlite:%s/store.db", f->dir);
    pb_error err;
    assert_int_equal(pb_store_open(f->url, &f->store, &err), 0);
}

static void sfx_close(sfx *f)
{
    pb_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void put_rule(pb_store *st, const char *name, const char *expr, const char *state, int64_t created)
{
    pb_rule_rec rr = {.bus = "default", .name = (char *)name, .arn = "arn", .schedule = (char *)expr,
                      .state = (char *)state, .created_by = "123456789012", .created_ms = created,
                      .modified_ms = created};
    bool c;
    assert_int_equal(st->ops->rule_put(st, &SC, &rr, NULL, 0, &c), 0);
}

static size_t count_catchup(const rec *r, const char *rule)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->v[i].catchup && (!rule || !strcmp(r->v[i].rule, rule));
    return n;
}

static pb_scheduler *start(sfx *f, rec *r, pb_catchup c)
{
    r->n = 0;
    r->store = f->store;
    pb_scheduler_config cfg = {.store = f->store, .fire = record, .fire_ctx = r, .catchup = c};
    pb_scheduler *s = NULL;
    pb_error err;
    assert_int_equal(pb_scheduler_create(&cfg, &s, &err), 0);
    return s;
}

static void test_catch_up(void **state)
{
    (void)state;
    sfx f;
    pb_error err;
    sfx_open(&f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000;
    /* created 10.5 minutes ago (rate: ticks at -9.5 .. -0.5 min); 2000 minutes ago */
    put_rule(f.store, "ten", "rate(1 minute)", "ENABLED", now - 630000);
    put_rule(f.store, "long", "rate(1 minute)", "ENABLED", now - 2000 * 60000 - 30000);
    put_rule(f.store, "off", "rate(1 minute)", "DISABLED", now - 630000);
    put_rule(f.store, "pattern", NULL, "ENABLED", now - 630000);
    rec r = {0};

    pb_scheduler *s = start(&f, &r, PB_CATCHUP_NONE); /* as AWS: nothing */
    assert_int_equal(count_catchup(&r, NULL), 0);
    assert_int_equal(pb_scheduler_count(s), 2);
    pb_scheduler_free(s);

    s = start(&f, &r, PB_CATCHUP_LATEST); /* the latest missed tick of each rule */
    pb_scheduler_free(s);
    assert_int_equal(count_catchup(&r, "ten"), 1);
    assert_int_equal(count_catchup(&r, "long"), 1);
    assert_int_equal(count_catchup(&r, NULL), 2);
    for (size_t i = 0; i < r.n; i++)
        if (r.v[i].catchup) {
            assert_true(r.v[i].tick_ms <= now + 1000 && r.v[i].tick_ms > now - 61000);
            assert_non_null(strstr(r.v[i].json, "\"pipebridge-catch-up\":true"));
        }

    s = start(&f, &r, PB_CATCHUP_ALL); /* the latest was fired: nothing older comes back */
    pb_scheduler_free(s);
    assert_int_equal(count_catchup(&r, NULL), 0);

    /* a fresh store: all = every missed tick, bounded per rule */
    pb_store_close(f.store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -f %s/store.db*", f.dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pb_store_open(f.url, &f.store, &err), 0);
    put_rule(f.store, "ten", "rate(1 minute)", "ENABLED", now - 630000);
    put_rule(f.store, "long", "rate(1 minute)", "ENABLED", now - 2000 * 60000 - 30000);
    s = start(&f, &r, PB_CATCHUP_ALL);
    pb_scheduler_free(s);
    size_t ten = count_catchup(&r, "ten"), lng = count_catchup(&r, "long");
    assert_true(ten == 10 || ten == 11); /* 10, or 11 if a tick fell due while the test ran */
    assert_int_equal(lng, PB_CATCHUP_MAX_PER_RULE);
    /* the latest ones, oldest first, one minute apart */
    int64_t prev = -1;
    for (size_t i = 0; i < r.n; i++) {
        if (!r.v[i].catchup || strcmp(r.v[i].rule, "long"))
            continue;
        if (prev >= 0)
            assert_int_equal(r.v[i].tick_ms - prev, 60000);
        prev = r.v[i].tick_ms;
    }
    assert_true(prev > now - 61000);
    s = start(&f, &r, PB_CATCHUP_ALL); /* and once only */
    pb_scheduler_free(s);
    assert_int_equal(count_catchup(&r, NULL), 0);

    pb_store_close(f.store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f.dir);
    assert_int_equal(system(cmd), 0);
    free(r.v);
}

/* A rule disabled for a while and enabled again: a catch-up after a restart
 * does not fire the ticks of the time it was disabled (they were never
 * due), only those missed since it was enabled. */
static void test_no_catch_up_of_a_disabled_time(void **state)
{
    (void)state;
    sfx f;
    sfx_open(&f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000;
    /* created 20.5 minutes ago; fired until 15 minutes ago, then disabled */
    put_rule(f.store, "paused", "rate(1 minute)", "DISABLED", now - 1230000);
    pb_tick_rec last = {(char *)SC.account, (char *)SC.region, "default", "paused", now - 1230000 + 5 * 60000};
    assert_int_equal(f.store->ops->invocations_fire(f.store, NULL, 0, NULL, 0, &last, 1, NULL, 0), 0);
    rec r = {0};
    pb_scheduler *s = start(&f, &r, PB_CATCHUP_ALL);
    assert_int_equal(pb_scheduler_count(s), 0);
    /* EnableRule: the store first, then the scheduler follows */
    assert_int_equal(f.store->ops->rule_set_state(f.store, &SC, "default", "paused", "ENABLED"), 0);
    pb_scheduler_rule_changed(s, &SC, "default", "paused");
    assert_int_equal(pb_scheduler_count(s), 1);
    pb_scheduler_free(s);

    s = start(&f, &r, PB_CATCHUP_ALL); /* a restart: at most a tick that fell due while the test ran */
    pb_scheduler_free(s);
    assert_true(count_catchup(&r, "paused") <= 1);

    sfx_close(&f);
    free(r.v);
}

/* A running scheduler whose tick becomes very late (here: the first
 * attempts fail, and "very late" is 1.5 s instead of a minute) applies the
 * catch-up policy to it instead of firing every missed tick: none skips
 * it, latest fires it once, marked. */
static void late_tick(pb_catchup policy, size_t want)
{
    sfx f;
    pb_error err;
    sfx_open(&f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* rate anchors are whole seconds: the first tick is 0.5 to 1.5 s from now */
    put_rule(f.store, "soon", "rate(1 minute)", "ENABLED", (now / 1000 + 1) * 1000 - 59500);
    rec r = {.fail_next = 2, .store = f.store};
    pb_scheduler_config cfg = {.store = f.store, .fire = record, .fire_ctx = &r, .catchup = policy,
                               .late_ms = 1500};
    pb_scheduler *s = NULL;
    assert_int_equal(pb_scheduler_create(&cfg, &s, &err), 0);
    /* done when the rule's next tick is the following minute's */
    for (int waited = 0; waited < 8000 && pb_scheduler_next_fire_ms(s, &SC, "default", "soon") < now + 30000;
         waited += 50)
        usleep(50000);
    pb_scheduler_free(s);
    assert_true(r.calls >= 2);    /* the two failed attempts */
    assert_int_equal(r.n, want);  /* then the policy, not the tick */
    for (size_t i = 0; i < r.n; i++)
        assert_true(r.v[i].catchup);
    sfx_close(&f);
    free(r.v);
}

static void test_late_tick_follows_the_policy(void **state)
{
    (void)state;
    late_tick(PB_CATCHUP_NONE, 0);
    late_tick(PB_CATCHUP_LATEST, 1);
}

static void test_parse_catchup(void **state)
{
    (void)state;
    pb_catchup c;
    assert_int_equal(pb_scheduler_parse_catchup("none", &c), 0);
    assert_int_equal(c, PB_CATCHUP_NONE);
    assert_int_equal(pb_scheduler_parse_catchup("latest", &c), 0);
    assert_int_equal(c, PB_CATCHUP_LATEST);
    assert_int_equal(pb_scheduler_parse_catchup("all", &c), 0);
    assert_int_equal(c, PB_CATCHUP_ALL);
    assert_int_equal(pb_scheduler_parse_catchup("All", &c), PB_EVALIDATION);
    assert_int_equal(pb_scheduler_parse_catchup(NULL, &c), PB_EVALIDATION);
    assert_true(sizeof(pb_schedule) <= 72);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_shape),          cmocka_unit_test(test_heap_fires_exactly),
        cmocka_unit_test(test_failed_batch_is_not_lost), cmocka_unit_test(test_catch_up),
        cmocka_unit_test(test_no_catch_up_of_a_disabled_time),
        cmocka_unit_test(test_late_tick_follows_the_policy),
        cmocka_unit_test(test_parse_catchup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
