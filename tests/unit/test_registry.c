/*
 * test_registry.c — the registry: rules set, replaced, disabled and deleted
 * are matched (or not) accordingly, per bus and per scope; and readers
 * matching concurrently with a writer always see a consistent matcher
 * (left-right): every answer is one of the states the writer published.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/pb_registry.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

typedef struct hits {
    char names[16][64];
    int n;
} hits;

static void collect(void *ctx, const char *rule)
{
    hits *h = ctx;
    if (h->n < 16)
        snprintf(h->names[h->n++], 64, "%s", rule);
}

static pb_pattern *compile(const char *text)
{
    pb_pattern *p = NULL;
    pb_error err;
    assert_int_equal(pb_pattern_compile(text, strlen(text), &p, &err), 0);
    return p;
}

static void set(pb_registry *r, const pb_scope *sc, const char *bus, const char *rule, const char *pattern)
{
    pb_pattern *p = pattern ? compile(pattern) : NULL;
    pb_error err;
    assert_int_equal(pb_registry_set_rule(r, sc, bus, rule, p, &err), 0);
    pb_pattern_free(p);
}

static hits match(pb_registry *r, const pb_scope *sc, const char *bus, const char *event)
{
    hits h = {.n = 0};
    pb_match_scratch *s = pb_match_scratch_new();
    pb_error err;
    assert_int_equal(pb_registry_match(r, sc, bus, event, strlen(event), s, collect, &h, &err), 0);
    pb_match_scratch_free(s);
    return h;
}

static const pb_scope A = {"000000000000", "us-east-1"};
static const pb_scope B = {"111111111111", "us-east-1"};
static const char *EX = "{\"source\":\"x\",\"detail\":{\"n\":5}}";

static void test_set_replace_disable_delete(void **state)
{
    (void)state;
    pb_registry *r;
    assert_int_equal(pb_registry_new(&r), 0);
    set(r, &A, "default", "rx", "{\"source\":[\"x\"]}");
    set(r, &A, "default", "ry", "{\"source\":[\"y\"]}");
    set(r, &A, "orders", "rx2", "{\"source\":[\"x\"]}");
    set(r, &B, "default", "bx", "{\"source\":[\"x\"]}");
    hits h = match(r, &A, "default", EX);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.names[0], "rx");
    assert_int_equal(match(r, &A, "orders", EX).n, 1);          /* per bus */
    assert_string_equal(match(r, &B, "default", EX).names[0], "bx"); /* per scope */
    assert_int_equal(match(r, &A, "nobus", EX).n, 0);
    assert_int_equal(pb_registry_count(r), 4);
    set(r, &A, "default", "ry", "{\"detail\":{\"n\":[{\"numeric\":[\">\",1]}]}}"); /* replace */
    h = match(r, &A, "default", EX);
    assert_int_equal(h.n, 2);
    assert_int_equal(pb_registry_count(r), 4);
    set(r, &A, "default", "rx", NULL); /* disable / delete */
    h = match(r, &A, "default", EX);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.names[0], "ry");
    assert_int_equal(pb_registry_count(r), 3);
    set(r, &A, "default", "never-there", NULL); /* removing an unknown rule is a no-op */
    assert_int_equal(pb_registry_count(r), 3);
    pb_registry_free(r);
}

typedef struct race {
    pb_registry *r;
    atomic_int stop;
    atomic_long bad, reads;
} race;

static void *reader(void *arg)
{
    race *x = arg;
    pb_match_scratch *s = pb_match_scratch_new();
    while (!atomic_load(&x->stop)) {
        hits h = {.n = 0};
        pb_error err;
        if (pb_registry_match(x->r, &A, "default", EX, strlen(EX), s, collect, &h, &err) != 0)
            atomic_fetch_add(&x->bad, 1);
        /* "stable" is always there; "flip" may or may not be */
        bool stable = false;
        for (int i = 0; i < h.n; i++) {
            if (!strcmp(h.names[i], "stable"))
                stable = true;
            else if (strcmp(h.names[i], "flip") != 0)
                atomic_fetch_add(&x->bad, 1);
        }
        if (!stable || h.n > 2)
            atomic_fetch_add(&x->bad, 1);
        atomic_fetch_add(&x->reads, 1);
    }
    pb_match_scratch_free(s);
    return NULL;
}

static void test_readers_during_writes(void **state)
{
    (void)state;
    race x = {0};
    assert_int_equal(pb_registry_new(&x.r), 0);
    set(x.r, &A, "default", "stable", "{\"source\":[\"x\"]}");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &x), 0);
    /* flip at least 2000 times, and until the readers have read a fair amount
     * while flips happen (bounded: a starved reader cannot hang the test) */
    for (int i = 0; i < 2000 || (atomic_load(&x.reads) < 2000 && i < 200000); i++) {
        set(x.r, &A, "default", "flip", i % 2 ? NULL : "{\"detail\":{\"n\":[5]}}");
        if (i < 2000 && atomic_load(&x.reads) == 0)
            sched_yield(); /* let the readers start */
    }
    atomic_store(&x.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&x.bad), 0);
    assert_true(atomic_load(&x.reads) > 0);
    pb_registry_free(x.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_disable_delete),
        cmocka_unit_test(test_readers_during_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
