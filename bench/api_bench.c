/*
 * api_bench.c — figures for the HTTP API: request latency and throughput of
 * PutRule / DescribeRule over keep-alive connections, start-up time with
 * 100,000 rules, and the server's resident memory. Figures, not tests: it
 * asserts nothing about speed, but every request must answer 200 and the
 * counts are checked (exit 1 otherwise).
 *
 *   build-bench/api_bench [PIPEBRIDGE] [options]
 *
 * PIPEBRIDGE (default build/pipebridge) is started with `serve --listen
 * 127.0.0.1:0 --data-dir <fresh mkdtemp dir>`; the port is read from the
 * "pipebridge listening on http://HOST:PORT" line on its stderr (which a
 * thread keeps draining). With --endpoint http://127.0.0.1:PORT an already
 * running server is used instead (latency phases only: no start-up or RSS).
 *
 * The server process and the HTTP client are bench_client.c's: a minimal
 * keep-alive client over plain sockets, every request SigV4-signed with
 * pb_sigv4_sign (test/test, us-east-1, events) over host, x-amz-date,
 * x-amz-target and content-type. Latency is client-measured (CLOCK_MONOTONIC)
 * from just before the send to the last byte of the body; signing is outside
 * it but inside the req/s figure.
 */
#define _GNU_SOURCE
#include "bench_client.h"

#include <jansson.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ phases */

enum kind { K_PUT_SMALL, K_DESCRIBE_SMALL, K_PUT_EXACT, K_DESCRIBE_EXACT };

typedef struct phase {
    enum kind kind;
    const char *prefix; /* rule name prefix */
    int port;
    size_t first, count; /* rule indices [first, first+count) */
    uint64_t *lat;       /* count latencies */
    size_t *done;        /* shared progress counter (atomic) */
} phase;

static const char *kind_op(enum kind k) { return (k == K_PUT_SMALL || k == K_PUT_EXACT) ? "PutRule" : "DescribeRule"; }

static size_t make_body(enum kind k, const char *prefix, size_t i, char *out, size_t cap)
{
    int n;
    switch (k) {
    case K_PUT_SMALL:
        n = snprintf(out, cap, "{\"Name\":\"%s%zu\",\"EventPattern\":\"{\\\"source\\\":[\\\"bench.%zu\\\"]}\"}",
                     prefix, i, i);
        break;
    case K_PUT_EXACT:
        n = snprintf(out, cap,
                     "{\"Name\":\"%s%06zu\",\"EventPattern\":\"{\\\"detail\\\":{\\\"id\\\":[\\\"%zu\\\"]}}\"}",
                     prefix, i, i);
        break;
    case K_DESCRIBE_SMALL:
        n = snprintf(out, cap, "{\"Name\":\"%s%zu\"}", prefix, i);
        break;
    default:
        n = snprintf(out, cap, "{\"Name\":\"%s%06zu\"}", prefix, i);
        break;
    }
    return (size_t)n;
}

static void *phase_main(void *arg)
{
    phase *p = arg;
    bench_client c;
    bench_client_open(&c, p->port, &bench_events);
    const char *op = kind_op(p->kind);
    char body[512], name[128];
    for (size_t j = 0; j < p->count; j++) {
        size_t i = p->first + j;
        size_t bl = make_body(p->kind, p->prefix, i, body, sizeof body);
        bench_client_call(&c, op, body, bl, &p->lat[j]);
        bench_expect_200(&c, op, body);
        if (p->kind == K_DESCRIBE_SMALL || p->kind == K_DESCRIBE_EXACT) {
            /* the answer names the rule asked for */
            if (p->kind == K_DESCRIBE_SMALL)
                snprintf(name, sizeof name, "\"%s%zu\"", p->prefix, i);
            else
                snprintf(name, sizeof name, "\"%s%06zu\"", p->prefix, i);
            if (!memmem(c.body, c.blen, name, strlen(name)))
                bench_fail("DescribeRule %s answered for another rule: %.*s", name, (int)c.blen, c.body);
        }
        __atomic_add_fetch(p->done, 1, __ATOMIC_RELAXED);
    }
    bench_client_close(&c);
    return NULL;
}

typedef struct result {
    double rps, p50, p99, max, mean, wall;
} result;

/* Runs count requests of kind over nconn connections (one thread each, equal shares).
 * With progress, prints a line per tenth of the requests: how far, and the rate over that tenth. */
static result run_phase(int port, enum kind kind, const char *prefix, size_t first, size_t count, int nconn,
                        const char *label, bool progress)
{
    size_t done = 0;
    uint64_t *lat = calloc(count ? count : 1, sizeof *lat);
    phase ph[8];
    pthread_t th[8];
    if (!lat || nconn < 1 || nconn > 8)
        bench_die("bad phase");
    size_t per = count / (size_t)nconn, at = 0;
    for (int k = 0; k < nconn; k++) {
        size_t n = k == nconn - 1 ? count - at : per;
        ph[k] = (phase){.kind = kind, .prefix = prefix, .port = port, .first = first + at, .count = n, .lat = lat + at,
                        .done = &done};
        at += n;
    }
    pid_t spid = bench_server_pid();
    double cpu0 = spid > 0 ? bench_proc_cpu_s(spid) : -1;
    double t0 = bench_now_s();
    for (int k = 0; k < nconn; k++)
        if (pthread_create(&th[k], NULL, phase_main, &ph[k]))
            bench_die("pthread_create failed");
    if (progress) {
        size_t next = count / 10, last_n = 0;
        double last_t = t0;
        while (next && next <= count) {
            size_t d = __atomic_load_n(&done, __ATOMIC_RELAXED);
            if (d < next) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            double t = bench_now_s();
            printf("#   %s: %zu done after %.1fs, %.0f req/s over the last %zu\n", label, d, t - t0,
                   (double)(d - last_n) / (t - last_t), d - last_n);
            fflush(stdout);
            last_n = d;
            last_t = t;
            next += count / 10;
        }
    }
    for (int k = 0; k < nconn; k++)
        pthread_join(th[k], NULL);
    double wall = bench_now_s() - t0;
    double cpu1 = spid > 0 ? bench_proc_cpu_s(spid) : -1;
    char cpu[64] = "";
    if (cpu0 >= 0 && cpu1 >= 0)
        snprintf(cpu, sizeof cpu, ", server CPU %.0fus/req", (cpu1 - cpu0) / (double)count * 1e6);
    qsort(lat, count, sizeof *lat, bench_cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += (double)lat[i];
    result r = {.rps = (double)count / wall,
                .p50 = bench_pct_ms(lat, count, 0.50),
                .p99 = bench_pct_ms(lat, count, 0.99),
                .max = (double)lat[count - 1] / 1e6,
                .mean = sum / (double)count / 1e6,
                .wall = wall};
    printf("%s %.0f req/s p50=%.3fms p99=%.3fms (n=%zu, %d conn, mean=%.3fms max=%.3fms, %.2fs%s)\n", label, r.rps,
           r.p50, r.p99, count, nconn, r.mean, r.max, wall, cpu);
    printf("#   %s ran from t=%.3f to t=%.3f (CLOCK_MONOTONIC: perf record -k CLOCK_MONOTONIC, perf report --time)\n",
           label, t0, t0 + wall);
    fflush(stdout);
    free(lat);
    return r;
}

/* Pages through ListRules (Limit 100); returns how many rules, checking names ascend. */
static size_t count_rules(int port, size_t *pages)
{
    bench_client c;
    bench_client_open(&c, port, &bench_events);
    size_t n = 0;
    *pages = 0;
    char last[128] = "";
    char *token = NULL;
    for (;;) {
        char body[4096];
        if (token)
            snprintf(body, sizeof body, "{\"Limit\":100,\"NextToken\":\"%s\"}", token);
        else
            snprintf(body, sizeof body, "{\"Limit\":100}");
        free(token);
        token = NULL;
        json_t *j = bench_call_json(&c, "ListRules", body, NULL);
        (*pages)++;
        json_t *rules = json_object_get(j, "Rules");
        if (!json_is_array(rules))
            bench_fail("ListRules: no Rules array");
        size_t i;
        json_t *r;
        json_array_foreach(rules, i, r)
        {
            const char *name = json_string_value(json_object_get(r, "Name"));
            if (!name || strcmp(name, last) <= 0)
                bench_fail("ListRules: names out of order or missing at rule %zu (%s after %s)", n, name ? name : "-",
                     last);
            snprintf(last, sizeof last, "%s", name);
            n++;
        }
        const char *t = json_string_value(json_object_get(j, "NextToken"));
        if (t)
            token = strdup(t);
        json_decref(j);
        if (!token)
            break;
    }
    bench_client_close(&c);
    return n;
}

/* ------------------------------------------------------------------ main */

static long long dir_bytes(const char *dir)
{
    const char *files[] = {"pipebridge.db", "pipebridge.db-wal", "pipebridge.db-shm"};
    long long total = 0;
    for (size_t i = 0; i < 3; i++) {
        char p[PATH_MAX + 32];
        struct stat st;
        snprintf(p, sizeof p, "%.*s/%s", PATH_MAX - 1, dir, files[i]);
        if (!stat(p, &st))
            total += st.st_size;
    }
    return total;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char usage[] =
    "usage: api_bench [PIPEBRIDGE] [--endpoint http://127.0.0.1:PORT] [-n N] [--rules R]\n"
    "                 [--restarts K] [--no-startup] [--no-2conn] [--tmpdir DIR] [--keep]\n"
    "\n"
    "  PIPEBRIDGE      server binary to start (default build/pipebridge)\n"
    "  --endpoint URL  use a running server (latency phases only)\n"
    "  -n N            requests per latency phase (default 10000)\n"
    "  --rules R       rules for the start-up figure (default 100000)\n"
    "  --restarts K    restarts measured with R rules (default 3; the median is reported)\n"
    "  --no-startup    skip the start-up / RSS-with-rules part\n"
    "  --no-2conn      skip the 2-connection latency variant\n"
    "  --tmpdir DIR    where the data directories are made (default $TMPDIR or /tmp)\n"
    "  --keep          keep the data directories\n";

int main(int argc, char **argv)
{
    bench_set_name("api_bench");
    const char *bin = "build/pipebridge", *endpoint = NULL;
    const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t n = 10000, rules = 100000;
    int restarts = 3;
    bool startup = true, two = true, keep = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool hasv = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--endpoint") && hasv)
            endpoint = argv[++i];
        else if (!strcmp(a, "-n") && hasv)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rules") && hasv)
            rules = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--restarts") && hasv)
            restarts = atoi(argv[++i]);
        else if (!strcmp(a, "--tmpdir") && hasv)
            tmpdir = argv[++i];
        else if (!strcmp(a, "--no-startup"))
            startup = false;
        else if (!strcmp(a, "--no-2conn"))
            two = false;
        else if (!strcmp(a, "--keep"))
            keep = true;
        else if (a[0] != '-')
            bin = a;
        else {
            fprintf(stderr, "api_bench: bad option %s\n%s", a, usage);
            return 2;
        }
    }
    if (n < 2 || n > 100000000 || rules < 1 || rules > 999999 || restarts < 1 || restarts > 100) {
        fprintf(stderr, "api_bench: -n is 2..1e8, --rules 1..999999, --restarts 1..100\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (endpoint && startup) {
        printf("# --endpoint: no start-up, RSS or server-CPU figures (they need a server of our own)\n");
        startup = false;
    }

    /* ---- 1. a fresh server: idle RSS, then the latency phases */
    bench_server srv;
    int port;
    char dir1[PATH_MAX] = "";
    if (endpoint) {
        const char *p = strstr(endpoint, "://");
        p = p ? p + 3 : endpoint;
        const char *colon = strrchr(p, ':');
        if (strncmp(p, "127.0.0.1:", 10) != 0 || !colon || (port = atoi(colon + 1)) <= 0 || port > 65535)
            bench_die("--endpoint wants http://127.0.0.1:PORT");
    } else {
        bench_make_dir(dir1, sizeof dir1, tmpdir, "latency");
        bench_server_start(&srv, bin, dir1, NULL, NULL);
        port = srv.port;
        printf("# server %s pid %d on 127.0.0.1:%d, data in %s; started in %.3fs\n", bin, (int)srv.pid, port, dir1,
               srv.t_listen - srv.t_exec);
        long rss_listen = bench_proc_kb(srv.pid, "VmRSS");
        bench_client c;
        bench_client_open(&c, port, &bench_events);
        json_t *j = bench_call_json(&c, "ListRules", "{}", NULL);
        size_t nr = json_array_size(json_object_get(j, "Rules"));
        json_decref(j);
        bench_client_close(&c);
        if (nr != 0)
            bench_fail("a fresh server lists %zu rules", nr);
        long rss = bench_proc_kb(srv.pid, "VmRSS");
        printf("rss_idle %.1fMB (fresh server, no rules, after one ListRules; %.1fMB before any request)\n",
               rss / 1024.0, rss_listen / 1024.0);
        fflush(stdout);
    }

    char prefix1[64], prefix2[64];
    snprintf(prefix1, sizeof prefix1, "bench-%d-a-", (int)getpid());
    snprintf(prefix2, sizeof prefix2, "bench-%d-b-", (int)getpid());
    run_phase(port, K_PUT_SMALL, prefix1, 0, n, 1, "PutRule", false);
    run_phase(port, K_DESCRIBE_SMALL, prefix1, 0, n, 1, "DescribeRule", false);
    if (two) {
        run_phase(port, K_PUT_SMALL, prefix2, 0, n, 2, "PutRule_2conn", false);
        run_phase(port, K_DESCRIBE_SMALL, prefix2, 0, n, 2, "DescribeRule_2conn", false);
    }
    if (!endpoint) {
        size_t pages;
        size_t want = two ? 2 * n : n;
        size_t got = count_rules(port, &pages);
        if (got != want)
            bench_fail("ListRules pages through %zu rules, expected %zu", got, want);
        printf("# ListRules paging: %zu rules in %zu pages, as expected\n", got, pages);
        printf("# rss after the latency phases (%zu rules): %.1fMB, peak %.1fMB\n", want,
               bench_proc_kb(srv.pid, "VmRSS") / 1024.0, bench_proc_kb(srv.pid, "VmHWM") / 1024.0);
        bench_server_stop(&srv);
    }

    /* ---- 2. start-up with `rules` rules on the default bus */
    if (startup) {
        char dir2[PATH_MAX];
        bench_make_dir(dir2, sizeof dir2, tmpdir, "startup");
        bench_server_start(&srv, bin, dir2, NULL, NULL);
        printf("# loading %zu rules into %s over 2 connections\n", rules, dir2);
        fflush(stdout);
        char label[64];
        snprintf(label, sizeof label, "PutRule_load_%zu_2conn", rules);
        run_phase(srv.port, K_PUT_EXACT, "r", 0, rules, 2, label, true);
        printf("# rss of the loading server with %zu rules: %.1fMB, peak %.1fMB\n", rules,
               bench_proc_kb(srv.pid, "VmRSS") / 1024.0, bench_proc_kb(srv.pid, "VmHWM") / 1024.0);
        double stop = bench_server_stop(&srv);
        printf("# SIGTERM to exit: %.3fs; store %.1fMB\n", stop, dir_bytes(dir2) / 1048576.0);

        double *t_first = calloc((size_t)restarts, sizeof *t_first);
        double *t_lis = calloc((size_t)restarts, sizeof *t_lis);
        long *rss = calloc((size_t)restarts, sizeof *rss);
        if (!t_first || !t_lis || !rss)
            bench_die("out of memory");
        for (int k = 0; k < restarts; k++) {
            bench_server_start(&srv, bin, dir2, NULL, NULL);
            bench_client c;
            bench_client_open(&c, srv.port, &bench_events);
            json_t *j = bench_call_json(&c, "ListRules", "{\"Limit\":1}", NULL);
            double t1 = bench_now_s();
            if (json_array_size(json_object_get(j, "Rules")) != 1)
                bench_fail("the restarted server lists no rule");
            json_decref(j);
            t_first[k] = t1 - srv.t_exec;
            t_lis[k] = srv.t_listen - srv.t_exec;
            rss[k] = bench_proc_kb(srv.pid, "VmRSS");
            long hwm = bench_proc_kb(srv.pid, "VmHWM");
            printf("# restart %d: listening after %.3fs, first ListRules answered after %.3fs, RSS %.1fMB, peak "
                   "%.1fMB\n",
                   k + 1, t_lis[k], t_first[k], rss[k] / 1024.0, hwm / 1024.0);
            fflush(stdout);
            if (k == 0) {
                /* the rules are all there: DescribeRule of the last, and the paged count */
                char body[128];
                snprintf(body, sizeof body, "{\"Name\":\"r%06zu\"}", rules - 1);
                uint64_t l;
                bench_client_call(&c, "DescribeRule", body, strlen(body), &l);
                bench_expect_200(&c, "DescribeRule", body);
                json_error_t je;
                json_t *d = json_loadb(c.body, c.blen, 0, &je);
                const char *pat = d ? json_string_value(json_object_get(d, "EventPattern")) : NULL;
                char wantpat[64];
                snprintf(wantpat, sizeof wantpat, "{\"detail\":{\"id\":[\"%zu\"]}}", rules - 1);
                if (!pat || strcmp(pat, wantpat) != 0)
                    bench_fail("DescribeRule r%06zu: wrong EventPattern %s", rules - 1, pat ? pat : "(none)");
                json_decref(d);
                size_t pages;
                double t0 = bench_now_s();
                size_t got = count_rules(srv.port, &pages);
                double tl = bench_now_s() - t0;
                if (got != rules)
                    bench_fail("after restart ListRules pages through %zu rules, expected %zu", got, rules);
                printf("# after restart: DescribeRule r%06zu ok; ListRules paging: %zu rules in %zu pages (%.2fs, "
                       "%.0f pages/s)\n",
                       rules - 1, got, pages, tl, (double)pages / tl);
            }
            bench_client_close(&c);
            if (k == restarts - 1) {
                /* the latency phases again, on the server that holds `rules` rules */
                char l1[64], l2[64];
                snprintf(l1, sizeof l1, "PutRule_at_%zu_rules", rules);
                snprintf(l2, sizeof l2, "DescribeRule_at_%zu_rules", rules);
                run_phase(srv.port, K_PUT_SMALL, "more-", 0, n, 1, l1, false);
                run_phase(srv.port, K_DESCRIBE_SMALL, "more-", 0, n, 1, l2, false);
                printf("# rss with %zu rules after those: %.1fMB\n", rules + n, bench_proc_kb(srv.pid, "VmRSS") / 1024.0);
            }
            double st = bench_server_stop(&srv);
            printf("# restart %d: SIGTERM to exit %.3fs\n", k + 1, st);
        }
        double *sorted = malloc((size_t)restarts * sizeof *sorted);
        memcpy(sorted, t_first, (size_t)restarts * sizeof *sorted);
        qsort(sorted, (size_t)restarts, sizeof *sorted, cmp_d);
        double med = sorted[(restarts - 1) / 2];
        memcpy(sorted, t_lis, (size_t)restarts * sizeof *sorted);
        qsort(sorted, (size_t)restarts, sizeof *sorted, cmp_d);
        double medl = sorted[(restarts - 1) / 2];
        long rss_sorted = rss[0];
        for (int k = 1; k < restarts; k++)
            if (rss[k] > rss_sorted)
                rss_sorted = rss[k];
        char rl[32];
        if (rules % 1000 == 0)
            snprintf(rl, sizeof rl, "%zuk", rules / 1000);
        else
            snprintf(rl, sizeof rl, "%zu", rules);
        printf("startup_%s_rules %.3fs (exec to first ListRules answered, median of %d; listening line at %.3fs)\n",
               rl, med, restarts, medl);
        printf("rss_%s_rules %.1fMB (after start-up and the first ListRules, max of %d)\n", rl, rss_sorted / 1024.0,
               restarts);
        free(sorted);
        free(t_first);
        free(t_lis);
        free(rss);
        if (!keep)
            bench_rm_tree(dir2);
    }
    if (dir1[0] && !keep)
        bench_rm_tree(dir1);
    printf("# all requests answered 200; counts ok\n");
    return 0;
}
