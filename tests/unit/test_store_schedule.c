/*
 * test_store_schedule.c — the scheduler's state in the SQLite store
 * (migration 5): invocations_fire records ticks in the transaction of their
 * invocations, ticks only move forward, a rule's ticks go with the rule, a
 * failed transaction records no tick, and the manual clock persists.
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
#include <unistd.h>

#include "common/pb_error.h"
#include "store/pb_store.h"

#include "fixture.h"

static const pb_scope SC = {"123456789012", "us-east-1"};

typedef pb_test_store_fx fx;

static int setup(void **state)
{
    if (pb_test_store_setup(state, "pb-schedstore"))
        return -1;
    pb_test_store_fx_open(*state);
    return 0;
}

static int teardown(void **state) { return pb_test_store_teardown(state); }

static void put_rule(pb_store *s, const char *name)
{
    pb_rule_rec r = {.bus = "default", .name = (char *)name, .arn = "arn:aws:events:us-east-1:123456789012:rule/x",
                     .schedule = "rate(1 minute)", .state = "ENABLED", .created_by = "123456789012",
                     .created_ms = 1000, .modified_ms = 1000};
    bool created;
    assert_int_equal(s->ops->rule_put(s, &SC, &r, NULL, 0, &created), 0);
}

static int64_t tick_of(pb_store *s, const char *rule)
{
    pb_tick_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->ticks_list(s, &v, &n), 0);
    int64_t found = -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].rule, rule) && !strcmp(v[i].account, SC.account) && !strcmp(v[i].bus, "default"))
            found = v[i].tick_ms;
    pb_tick_recs_free(v, n);
    return found;
}

static pb_invocation_rec inv(const char *rule)
{
    return (pb_invocation_rec){.account = "123456789012", .region = "us-east-1", .bus = "default",
                               .rule_arn = "arn:aws:events:us-east-1:123456789012:rule/r1", .rule_name = (char *)rule,
                               .target_id = "t1", .target_arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p",
                               .target_json = "{}", .event_id = "e1", .event_json = "{}", .next_ms = 1};
}

static void test_fire_records_ticks(void **state)
{
    fx *f = *state;
    pb_store *s = f->s;
    put_rule(s, "r1");
    put_rule(s, "r2");
    assert_int_equal(tick_of(s, "r1"), -1);
    pb_invocation_rec v = inv("r1");
    pb_tick_rec t[2] = {{"123456789012", "us-east-1", "default", "r1", 60000},
                        {"123456789012", "us-east-1", "default", "r2", 120000}};
    assert_int_equal(s->ops->invocations_fire(s, &v, 1, NULL, 0, t, 2, NULL, 0), 0);
    assert_true(v.id > 0);
    assert_int_equal(tick_of(s, "r1"), 60000);
    assert_int_equal(tick_of(s, "r2"), 120000); /* no invocations, recorded all the same */
    /* ticks only move forward */
    t[0].tick_ms = 30000;
    assert_int_equal(s->ops->invocations_fire(s, NULL, 0, NULL, 0, t, 1, NULL, 0), 0);
    assert_int_equal(tick_of(s, "r1"), 60000);
    t[0].tick_ms = 90000;
    assert_int_equal(s->ops->invocations_fire(s, NULL, 0, NULL, 0, t, 1, NULL, 0), 0);
    assert_int_equal(tick_of(s, "r1"), 90000);
    /* a refused call records nothing */
    pb_invocation_rec bad = inv("r1");
    bad.event_json = NULL;
    t[0].tick_ms = 999999;
    assert_int_equal(s->ops->invocations_fire(s, &bad, 1, NULL, 0, t, 1, NULL, 0), PB_EVALIDATION);
    assert_int_equal(tick_of(s, "r1"), 90000);
    pb_tick_rec nul = {NULL, "us-east-1", "default", "r1", 5};
    assert_int_equal(s->ops->invocations_fire(s, NULL, 0, NULL, 0, &nul, 1, NULL, 0), PB_EVALIDATION);
    assert_int_equal(s->ops->invocations_fire(s, NULL, 0, NULL, 0, NULL, 1, NULL, 0), PB_EVALIDATION);

    /* survives a reopen */
    s = pb_test_store_fx_reopen(f);
    assert_int_equal(tick_of(s, "r1"), 90000);

    /* the row goes with its rule (r2 has no targets) */
    assert_int_equal(s->ops->rule_delete(s, &SC, "default", "r2"), 0);
    assert_int_equal(tick_of(s, "r2"), -1);
    assert_int_equal(tick_of(s, "r1"), 90000);
    pb_invocation_rec *pend = NULL;
    size_t npend = 0;
    assert_int_equal(s->ops->invocations_pending(s, &pend, &npend), 0);
    assert_int_equal(npend, 1);
    pb_invocation_recs_free(pend, npend);
}

static void test_manual_clock(void **state)
{
    fx *f = *state;
    pb_store *s = f->s;
    int64_t ms = 7;
    assert_int_equal(s->ops->clock_get(s, &ms), PB_ENOTFOUND);
    assert_int_equal(s->ops->clock_set(s, 1765094400000LL), 0);
    assert_int_equal(s->ops->clock_get(s, &ms), 0);
    assert_int_equal(ms, 1765094400000LL);
    assert_int_equal(s->ops->clock_set(s, 1765094460000LL), 0);
    s = pb_test_store_fx_reopen(f);
    assert_int_equal(s->ops->clock_get(s, &ms), 0);
    assert_int_equal(ms, 1765094460000LL);
    assert_int_equal(s->ops->clock_get(s, NULL), PB_EVALIDATION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fire_records_ticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_clock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
