/*
 * schedule_bench.c — the scheduler (src/bus/scheduler.c) with many rules.
 *
 * 1. Memory: 1,000,000 schedule rules, mixed rate and cron (half each; see
 *    expr() for the mix), put in a scheduler with no store and the manual
 *    clock (no thread, nothing fires): heap bytes (glibc mallinfo2: small blocks and mmapped
 *    ones, chunk headers included) per rule.
 * 2. Next-fire computations per second: pb_schedule_next over 10,000 parsed
 *    expressions of the same mix, each asked for its next fire after a
 *    moving instant (rate, cron, and both).
 * 3. Lateness, real clock: 10,000 rules whose ticks fall in one minute (80%
 *    rate(1 minute) created at random seconds of the last minute, 20%
 *    cron(* * * * ? *), which all fire together at the minute) in a
 *    scheduler firing into the real delivery over a SQLite store in a
 *    temporary directory (synchronous=FULL: every batch is a durable
 *    commit). Lateness of a tick = when its commit returned - its scheduled
 *    time. The first tick of each rule is measured (about 65 s).
 *
 * Prints figures, asserts nothing about speed; checks that every rule fired
 * exactly once in the measured minute. Usage: schedule_bench [--no-lateness]
 */
#include "bus/pb_delivery.h"
#include "bus/pb_scheduler.h"
#include "schedule/pb_schedule.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const pb_scope SC = {"123456789012", "us-east-1"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The mix: half rate (1..120 minutes, 1..24 hours), half cron of five shapes
 * with random minutes and hours. */
static void expr(char *out, size_t cap, int i)
{
    if (i % 2 == 0) {
        int n = 1 + (int)rnd(120);
        if (rnd(4) == 0) {
            n = 1 + (int)rnd(24);
            snprintf(out, cap, n == 1 ? "rate(1 hour)" : "rate(%d hours)", n);
        } else {
            snprintf(out, cap, n == 1 ? "rate(1 minute)" : "rate(%d minutes)", n);
        }
        return;
    }
    int m = (int)rnd(60), h = (int)rnd(24);
    switch (rnd(5)) {
    case 0: snprintf(out, cap, "cron(%d %d * * ? *)", m, h); break;
    case 1: snprintf(out, cap, "cron(%d %d ? * MON-FRI *)", m, h); break;
    case 2: snprintf(out, cap, "cron(%d/15 * * * ? *)", m % 15); break;
    case 3: snprintf(out, cap, "cron(%d %d L * ? *)", m, h); break;
    default: snprintf(out, cap, "cron(%d %d ? * %d#%d *)", m, h, 1 + (int)rnd(7), 1 + (int)rnd(4)); break;
    }
}

static int fire_nothing(void *ctx, const pb_delivery_tick *t, size_t n, pb_error *err)
{
    (void)ctx, (void)t, (void)n, (void)err;
    return 0;
}

static void bench_memory(void)
{
    enum { N = 1000000 };
    pb_scheduler_config cfg = {.fire = fire_nothing, .manual_clock = true, .manual_start_ms = real_ms()};
    pb_scheduler *s = NULL;
    pb_error err;
    if (pb_scheduler_create(&cfg, &s, &err)) {
        fprintf(stderr, "schedule_bench: %s\n", err.message);
        exit(2);
    }
    malloc_trim(0);
    struct mallinfo2 a = mallinfo2();
    double t0 = mono();
    int64_t now = real_ms();
    for (int i = 0; i < N; i++) {
        char name[32], e[64];
        snprintf(name, sizeof name, "rule-%07d", i);
        expr(e, sizeof e, i);
        if (pb_scheduler_set_rule(s, &SC, "default", name, e, true, now - (int64_t)rnd(86400000))) {
            fprintf(stderr, "schedule_bench: cannot add %s\n", e);
            exit(2);
        }
    }
    double t1 = mono();
    struct mallinfo2 b = mallinfo2();
    /* small blocks (uordblks) and the large tables malloc maps on their own (hblkhd) */
    size_t bytes = (b.uordblks + b.hblkhd) - (a.uordblks + a.hblkhd);
    printf("memory: %d rules (names rule-0000000.., half rate, half cron) in the heap: %zu\n", N,
           pb_scheduler_count(s));
    printf("memory: %.1f bytes per rule (heap in use, mallinfo2), %.0f ms to add them (%.0f rules/s)\n",
           (double)bytes / N, (t1 - t0) * 1000, N / (t1 - t0));
    pb_scheduler_free(s);
}

static void bench_next(void)
{
    enum { N = 10000, ROUNDS = 200 };
    static pb_schedule sched[N];
    for (int i = 0; i < N; i++) {
        char e[64];
        expr(e, sizeof e, i);
        pb_schedule_parse(e, strlen(e), &sched[i], NULL);
    }
    const char *names[] = {"rate", "cron", "mixed"};
    for (int kind = 0; kind < 3; kind++) {
        int64_t after = real_ms() / 1000, sink = 0;
        long count = 0;
        double t0 = mono();
        for (int r = 0; r < ROUNDS; r++) {
            for (int i = kind == 1 ? 1 : 0; i < N; i += kind == 2 ? 1 : 2) {
                sink += pb_schedule_next(&sched[i], after - 86400, after + i);
                count++;
            }
            after += 3607; /* a new instant each round */
        }
        double dt = mono() - t0;
        printf("next-fire: %-5s %.2f M computations/s (%ld in %.3f s, checksum %lld)\n", names[kind],
               count / dt / 1e6, count, dt, (long long)(sink & 0xffff));
    }
}

/* ------------------------------------------------------------ lateness -- */

typedef struct lat {
    pb_delivery *d;
    int64_t from_ms, to_ms; /* ticks measured: from < tick <= to */
    double *v;
    size_t n, cap;
    size_t batches;
    pthread_mutex_t mu;
} lat;

static int fire_measured(void *ctx, const pb_delivery_tick *t, size_t n, pb_error *err)
{
    lat *l = ctx;
    int rc = pb_delivery_fire(l->d, t, n, err);
    int64_t done = real_ms();
    pthread_mutex_lock(&l->mu);
    l->batches++;
    for (size_t i = 0; !rc && i < n; i++) {
        if (t[i].tick_ms <= l->from_ms || t[i].tick_ms > l->to_ms)
            continue;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16384;
            l->v = realloc(l->v, l->cap * sizeof *l->v);
        }
        l->v[l->n++] = (double)(done - t[i].tick_ms);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_lateness(void)
{
    enum { N = 10000 };
    char dir[] = "/tmp/pb-schedbench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/pipebridge.db", dir);
    pb_store *st = NULL;
    pb_error err;
    pb_delivery *d = NULL;
    if (pb_store_open(url, &st, &err)) {
        fprintf(stderr, "schedule_bench: %s\n", err.message);
        exit(2);
    }
    pb_delivery_config dcfg = {.store = st};
    if (pb_delivery_create(&dcfg, &d, &err)) {
        fprintf(stderr, "schedule_bench: %s\n", err.message);
        exit(2);
    }
    lat l = {.d = d};
    pthread_mutex_init(&l.mu, NULL);
    pb_scheduler_config cfg = {.fire = fire_measured, .fire_ctx = &l};
    pb_scheduler *s = NULL;
    if (pb_scheduler_create(&cfg, &s, &err)) {
        fprintf(stderr, "schedule_bench: %s\n", err.message);
        exit(2);
    }
    int64_t now = real_ms();
    l.from_ms = now;
    l.to_ms = now + 60000;
    int crons = 0;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "rule-%05d", i);
        const char *e = i % 5 == 4 ? "cron(* * * * ? *)" : "rate(1 minute)";
        crons += i % 5 == 4;
        /* rate: created at a random second of the last minute, so its tick is in the next one */
        int64_t created = now - 1000 - (int64_t)rnd(59) * 1000;
        pb_scheduler_set_rule(s, &SC, "default", name, e, true, created);
    }
    printf("lateness: %d rules (%d rate(1 minute) at random seconds, %d cron(* * * * ? *) all at the minute), "
           "SQLite store, real clock; waiting one minute...\n",
           N, N - crons, crons);
    fflush(stdout);
    while (real_ms() < l.to_ms + 3000)
        usleep(200000);
    pb_scheduler_free(s);
    pb_delivery_free(d);
    pb_store_close(st);
    qsort(l.v, l.n, sizeof *l.v, cmp_d);
    if (l.n != N) {
        fprintf(stderr, "schedule_bench: %zu ticks measured, expected %d (one per rule)\n", l.n, N);
        exit(1);
    }
    printf("lateness: %zu ticks in %zu commits: p50 %.0f ms, p99 %.0f ms, max %.0f ms (commit done - tick)\n", l.n,
           l.batches, l.v[l.n / 2], l.v[l.n * 99 / 100], l.v[l.n - 1]);
    free(l.v);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "schedule_bench: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    bool lateness = !(argc > 1 && !strcmp(argv[1], "--no-lateness"));
    bench_memory();
    bench_next();
    if (lateness)
        bench_lateness();
    return 0;
}
