/*
 * ingest_bench.c — figures for the event path over the real server:
 * PutEvents throughput with 10 entries per request and 100 rules on the bus,
 * latency at a fixed rate, and the time from an event to the start of the
 * pipeline execution it triggers. Figures, not tests: it asserts nothing
 * about speed, but every request must answer 200 with FailedEntryCount 0,
 * every invocation must be delivered (none failed, none left in the store)
 * and every pipeline the events started must run its step (exit 1
 * otherwise; 2 on a bad option).
 *
 *   build-bench/ingest_bench [PIPEBRIDGE] [options]
 *   ingest_bench --mark ID        (the pipeline step's program: bench_client.h)
 *
 * Every run starts its own server (bench_client.c: `PIPEBRIDGE serve
 * --listen 127.0.0.1:0 --data-dir <fresh mkdtemp dir>`, a
 * durable SQLite store: WAL, synchronous=FULL) and sets it up the same way:
 *
 *   - an event bus "bench-sink" without rules;
 *   - a pipeline "bench-ingest": one Processing step whose entrypoint is
 *     this program in mark mode, `ingest_bench --mark <Parameters.Seq>`,
 *     with PB_BENCH_MARK_DIR in its Environment;
 *   - 100 rules on the default bus. Rules r-000 .. r-098 each have one
 *     target, the bus bench-sink: an invocation that goes through the whole
 *     delivery (durable outbox row in the group commit, dispatch, ingest on
 *     the sink bus, which matches nothing, deletion in the done batch) but
 *     starts nothing. Their patterns cycle through five shapes (exact source
 *     and detail-type with a numeric equality; prefixes; a numeric range
 *     with anything-but and a list of values; exact values with a wildcard;
 *     suffix, equals-ignore-case and exists), each keyed on the event's
 *     bucket 0..98 so that an event of bucket k matches rule r-k and no
 *     other. Rule to-pipeline matches bucket 99 only; its target is the
 *     pipeline, with PipelineParameters Seq = $.detail.seq.
 *
 * Events: every entry matches exactly one rule. Its bucket is drawn
 * uniformly from 0..98, except every P-th entry of a connection
 * (--pipeline-every P, default 10000; 0: none) which gets bucket 99 and
 * starts one execution. Detail is a ~300-byte JSON object (seq, bucket,
 * route, sku, kind, region, customer{id,tier,email}, amount, items[2],
 * note). So invocations = accepted entries, and events/s = invocations/s.
 *
 * A. throughput: for each --conns N (default
 *    4,8,16), --runs R (default 3) times on a fresh server: N keep-alive
 *    connections (one thread each) send PutEvents of 10 entries back to
 *    back for 1 s of warm-up plus --seconds S (default 10); requests sent in
 *    the S seconds are counted. Figures: accepted events/s, request
 *    p50/p99/max, server CPU (utime+stime from /proc over the S seconds, in
 *    cores) and this program's. Then the drain: GET /metrics every 20 ms
 *    until pipebridge_invocations_total (summed over the rules) equals the
 *    entries accepted, and how long that took after the load ended; the
 *    steps of the pipeline entries must all have written their marks. After
 *    SIGTERM the store is opened read-only: the invocations and dead_letters
 *    tables must be empty. The best run (events/s) of each configuration is
 *    reported on a result line.
 * B. latency at a fixed rate: --rate E events/s (default 10,000: 1,000
 *    requests/s of 10 entries), open loop over --b-conns K connections
 *    (default 4): request i of connection c is due at t0 + (i*K + c) / rate;
 *    a connection sleeps until its request is due (or sends at once when it
 *    is behind). Latency is measured from the due time (so a stall counts
 *    for the requests queued behind it) and, on a # line, from the send.
 *    1 s warm-up, --seconds S measured, --runs R times, best p99 reported.
 * C. event to execution start: --events M (default 200) single-entry
 *    PutEvents of bucket 99, one after the other on one connection, each
 *    after the previous execution has Succeeded. t0 = CLOCK_REALTIME just
 *    before the request is sent; latency = the step's mark - t0. Also the
 *    PutEvents answer (ack) time and, on the same server, M direct
 *    StartPipelineExecution (same pipeline, same step) for comparison: the
 *    difference is what the event path adds. One warm-up of each first.
 *
 * Server CPU and the phase boundaries (CLOCK_MONOTONIC) are printed on #
 * lines so that a `perf record -k CLOCK_MONOTONIC -p PID` of the server can
 * be cut per run with `perf report --time START,END`.
 */
#define _GNU_SOURCE
#include "bench_client.h"

#include <jansson.h>
#include <sqlite3.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROLE "arn:aws:iam::000000000000:role/bench"
#define ACCOUNT "000000000000"
#define REGION "us-east-1"
#define SINK_BUS "bench-sink"
#define PIPELINE "bench-ingest"
#define NBUCKETS 99       /* forwarding rules r-000 .. r-098 */
#define PIPE_BUCKET 99    /* the bucket of rule to-pipeline */
#define NOMATCH_BUCKET 100 /* --no-match: no rule matches this bucket */
#define ENTRIES 10        /* per PutEvents request */
#define MAX_CONNS 64
#define WARMUP_S 1.0
#define POOL 128          /* prepared request bodies per connection */
#define DRAIN_TIMEOUT_S 300.0

static const char *g_tmpdir = "/tmp";
static char g_self[PATH_MAX];
static bool g_keep;
static size_t g_pipe_every = 10000;
static size_t g_detail_bytes = 300;
static bool g_nomatch;      /* --no-match: A's entries match no rule */
static double g_stagger_ms; /* --stagger: connection i connects i * this after the first */

/* Data directories, removed at the end of a successful run (--keep keeps them). */
#define MAX_DIRS 64
static char g_dirs[MAX_DIRS][PATH_MAX];
static size_t g_ndirs;

static void new_dir(char *out, size_t cap, const char *tag)
{
    bench_make_dir(out, cap, g_tmpdir, tag);
    if (g_ndirs < MAX_DIRS)
        snprintf(g_dirs[g_ndirs++], sizeof g_dirs[0], "%s", out);
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* splitmix64 */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The 1-minute load average (other work on the machine depresses the figures). */
static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* CPU seconds the whole machine was busy (every CPU, /proc/stat; iowait is idle). */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7])
              : 0;
    if (f)
        fclose(f);
    if (n < 4)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------ events and rules */

static const char *bucket_source(int k)
{
    static const char *const s[] = {"bench.orders", "bench.payments", "bench.shipping"};
    return k == PIPE_BUCKET ? "bench.pipeline" : k == NOMATCH_BUCKET ? "bench.unmatched" : s[k % 3];
}

static const char *bucket_type(int k)
{
    return k == PIPE_BUCKET ? "Run Pipeline" : k % 2 ? "Order Updated" : "Order Placed";
}

/* The pattern of rule r-k (0 <= k < NBUCKETS): five shapes, each keyed on k. */
static void rule_pattern(int k, char *out, size_t cap)
{
    switch (k % 5) {
    case 0:
        snprintf(out, cap,
                 "{\"source\":[\"%s\"],\"detail-type\":[\"%s\"],"
                 "\"detail\":{\"bucket\":[{\"numeric\":[\"=\",%d]}]}}",
                 bucket_source(k), bucket_type(k), k);
        break;
    case 1:
        snprintf(out, cap,
                 "{\"source\":[{\"prefix\":\"bench.\"}],"
                 "\"detail\":{\"sku\":[{\"prefix\":\"SKU-%03d-\"}],\"kind\":[\"order\"]}}",
                 k);
        break;
    case 2:
        snprintf(out, cap,
                 "{\"detail-type\":[{\"anything-but\":[\"Run Pipeline\"]}],"
                 "\"detail\":{\"bucket\":[{\"numeric\":[\">\",%.1f,\"<\",%.1f]}],"
                 "\"customer\":{\"tier\":[\"gold\",\"silver\",\"bronze\"]}}}",
                 k - 0.5, k + 0.5);
        break;
    case 3:
        snprintf(out, cap,
                 "{\"source\":[\"bench.orders\",\"bench.payments\",\"bench.shipping\"],"
                 "\"detail\":{\"route\":[\"r-%03d\"],\"region\":[{\"wildcard\":\"eu-*\"}]}}",
                 k);
        break;
    default:
        snprintf(out, cap,
                 "{\"detail\":{\"route\":[{\"suffix\":\"-%03d\"}],\"kind\":[{\"equals-ignore-case\":\"ORDER\"}],"
                 "\"customer\":{\"id\":[{\"exists\":true}]}}}",
                 k);
        break;
    }
}

#define PIPE_PATTERN "{\"source\":[\"bench.pipeline\"],\"detail-type\":[\"Run Pipeline\"],\"detail\":{\"bucket\":[99]}}"

/* Appends one PutEvents entry (bucket k, seq) to out at *len; the Detail is
 * padded to about g_detail_bytes. */
static void append_entry(char *out, size_t cap, size_t *len, int k, const char *seq, uint64_t *rs)
{
    static const char *const tiers[] = {"gold", "silver", "bronze"};
    static const char *const regions[] = {"eu-west-1", "eu-central-1", "eu-north-1"};
    char d[2048];
    uint64_t r = rnd(rs);
    int n = snprintf(d, sizeof d,
                     "{\"seq\":\"%s\",\"bucket\":%d,\"route\":\"r-%03d\",\"sku\":\"SKU-%03d-%06x\","
                     "\"kind\":\"order\",\"region\":\"%s\","
                     "\"customer\":{\"id\":\"cust-%07u\",\"tier\":\"%s\",\"email\":\"user%u@example.com\"},"
                     "\"amount\":%u.%02u,\"items\":[{\"sku\":\"A-%u\",\"qty\":%u},{\"sku\":\"B-%u\",\"qty\":%u}],"
                     "\"note\":\"",
                     seq, k, k, k, (unsigned)(r & 0xffffff), regions[(r >> 24) % 3], (unsigned)((r >> 8) % 10000000),
                     tiers[(r >> 32) % 3], (unsigned)((r >> 12) % 100000), (unsigned)((r >> 20) % 5000),
                     (unsigned)((r >> 40) % 100), (unsigned)((r >> 44) % 1000), (unsigned)((r >> 54) % 9 + 1),
                     (unsigned)((r >> 34) % 1000), (unsigned)((r >> 58) % 9 + 1));
    for (; (size_t)n + 2 < g_detail_bytes && (size_t)n + 3 < sizeof d; n++)
        d[n] = (char)('a' + n % 26);
    d[n++] = '"';
    d[n++] = '}';
    d[n] = '\0';
    size_t l = *len;
    int h = snprintf(out + l, cap - l, "%s{\"Source\":\"%s\",\"DetailType\":\"%s\",\"Detail\":\"",
                     l && out[l - 1] == '[' ? "" : ",",
                     bucket_source(k), bucket_type(k));
    if (h < 0 || l + (size_t)h + 2 * (size_t)n + 8 >= cap)
        bench_die("request body too large");
    l += (size_t)h;
    for (int i = 0; i < n; i++) {
        if (d[i] == '"' || d[i] == '\\')
            out[l++] = '\\';
        out[l++] = d[i];
    }
    out[l++] = '"';
    out[l++] = '}';
    out[l] = '\0';
    *len = l;
}

/* {"Entries":[ ... ]} of count entries; *pipe_seq counts the bucket-99 entries. */
typedef struct gen {
    uint64_t rs;          /* PRNG state */
    size_t n;             /* entries generated */
    size_t npipe;         /* of which for the pipeline */
    char tag[48];         /* seq prefix: "<tag>-<n>" */
} gen;

static size_t make_body(gen *g, char *out, size_t cap, size_t count, bool pipe)
{
    size_t len = (size_t)snprintf(out, cap, "{\"Entries\":[");
    for (size_t i = 0; i < count; i++) {
        char seq[64];
        g->n++;
        int k = (pipe && g_pipe_every && g->n % g_pipe_every == 0) ? PIPE_BUCKET
                : g_nomatch                                          ? NOMATCH_BUCKET
                                                                     : (int)(rnd(&g->rs) % NBUCKETS);
        snprintf(seq, sizeof seq, "%s-%zu", g->tag, g->n);
        if (k == PIPE_BUCKET)
            g->npipe++;
        append_entry(out, cap, &len, k, seq, &g->rs);
    }
    if (len + 3 >= cap)
        bench_die("request body too large");
    out[len++] = ']';
    out[len++] = '}';
    out[len] = '\0';
    return len;
}

/* Whether the last answer is 200 with FailedEntryCount 0 and n EventIds. */
static bool put_ok(const bench_client *c, size_t n)
{
    if (c->status != 200 || !memmem(c->body, c->blen, "\"FailedEntryCount\":0", 20))
        return false;
    size_t ids = 0;
    for (const char *p = c->body, *e = c->body + c->blen; (p = memmem(p, (size_t)(e - p), "\"EventId\"", 9)) != NULL;
         p += 9)
        ids++;
    return ids == n;
}

static void put_fail(const bench_client *c)
{
    bench_fail("PutEvents: HTTP %d, not every entry accepted: %.*s", c->status, (int)(c->blen > 800 ? 800 : c->blen),
               c->body);
}

/* ------------------------------------------------------------------ the server */

typedef struct srvlog {
    pthread_mutex_t mu;
    char errors[8][400];
    size_t nerrors;
} srvlog;

static void log_hook(void *user, const char *line, size_t len)
{
    srvlog *l = user;
    (void)len;
    const char *sp = strchr(line, ' ');
    if (!(sp && !strncmp(sp + 1, "error ", 6)))
        return;
    pthread_mutex_lock(&l->mu);
    if (l->nerrors < 8)
        snprintf(l->errors[l->nerrors++], sizeof l->errors[0], "%s", line);
    pthread_mutex_unlock(&l->mu);
}

typedef struct env {
    bench_server srv;
    srvlog log;
    char dir[PATH_MAX];
    char markdir[PATH_MAX];
    int ifd; /* inotify on markdir */
} env;

static json_t *call(bench_client *c, const char *op, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        bench_die("out of memory");
    json_t *j = bench_call_json(c, op, text, NULL);
    free(text);
    return j;
}

static void create_pipeline(bench_client *sm, const char *markdir)
{
    json_t *args = json_pack("{s:{s:s,s:[s,s,{s:s}]},s:{s:{s:i,s:s,s:i}},s:s,s:{s:s}}", "AppSpecification", "ImageUri",
                             "local", "ContainerEntrypoint", g_self, "--mark", "Get", "Parameters.Seq",
                             "ProcessingResources", "ClusterConfig", "InstanceCount", 1, "InstanceType", "ml.m5.large",
                             "VolumeSizeInGB", 1, "RoleArn", ROLE, "Environment", BENCH_MARK_ENV, markdir);
    json_t *def = json_pack("{s:s,s:{},s:[{s:s,s:s,s:s}],s:[{s:s,s:s,s:o}]}", "Version", "2020-12-01", "Metadata",
                            "Parameters", "Name", "Seq", "Type", "String", "DefaultValue", "none", "Steps", "Name",
                            "Run", "Type", "Processing", "Arguments", args);
    char *text = def ? json_dumps(def, JSON_COMPACT) : NULL;
    json_decref(def);
    if (!text)
        bench_die("cannot build the pipeline definition");
    json_t *j = call(sm, "CreatePipeline",
                     json_pack("{s:s,s:s,s:s,s:s}", "PipelineName", PIPELINE, "PipelineDefinition", text, "RoleArn",
                               ROLE, "ClientRequestToken", "ingest-bench-create-pipeline-0123456789"));
    free(text);
    json_decref(j);
}

/* A fresh server (extra: serve arguments) with the bus, the pipeline and the 100 rules. */
static void env_start(env *e, const char *bin, const char *const *extra, const char *tag)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->log.mu, NULL);
    new_dir(e->dir, sizeof e->dir, tag);
    char mtag[64];
    snprintf(mtag, sizeof mtag, "%s-marks", tag);
    new_dir(e->markdir, sizeof e->markdir, mtag);
    e->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (e->ifd < 0 || inotify_add_watch(e->ifd, e->markdir, IN_MOVED_TO) < 0)
        bench_die("inotify on %s: %s", e->markdir, strerror(errno));
    bench_server_start_args(&e->srv, bin, e->dir, extra, log_hook, &e->log);

    bench_client c, sm;
    bench_client_open(&c, e->srv.port, &bench_events);
    bench_client_open(&sm, e->srv.port, &bench_sagemaker);
    json_decref(call(&c, "CreateEventBus", json_pack("{s:s}", "Name", SINK_BUS)));
    create_pipeline(&sm, e->markdir);
    char pat[1024], name[32];
    for (int k = 0; k <= NBUCKETS; k++) {
        bool pipe = k == NBUCKETS;
        if (pipe) {
            snprintf(name, sizeof name, "to-pipeline");
            snprintf(pat, sizeof pat, "%s", PIPE_PATTERN);
        } else {
            snprintf(name, sizeof name, "r-%03d", k);
            rule_pattern(k, pat, sizeof pat);
        }
        json_decref(call(&c, "PutRule", json_pack("{s:s,s:s}", "Name", name, "EventPattern", pat)));
        json_t *t = pipe ? json_pack("{s:s,s:s,s:s,s:{s:[{s:s,s:s}]}}", "Id", "pipeline", "Arn",
                                     "arn:aws:sagemaker:" REGION ":" ACCOUNT ":pipeline/" PIPELINE, "RoleArn", ROLE,
                                     "SageMakerPipelineParameters", "PipelineParameterList", "Name", "Seq", "Value",
                                     "$.detail.seq")
                         : json_pack("{s:s,s:s}", "Id", "sink", "Arn",
                                     "arn:aws:events:" REGION ":" ACCOUNT ":event-bus/" SINK_BUS);
        json_t *j = call(&c, "PutTargets", json_pack("{s:s,s:[o]}", "Rule", name, "Targets", t));
        if (json_integer_value(json_object_get(j, "FailedEntryCount")) != 0)
            bench_fail("PutTargets %s: FailedEntryCount is not 0", name);
        json_decref(j);
    }
    bench_client_close(&sm);
    bench_client_close(&c);
}

/* Prints the server's error lines (if any) and stops it; SIGTERM must end it cleanly. */
static void env_stop(env *e)
{
    bench_server_stop(&e->srv);
    pthread_mutex_lock(&e->log.mu);
    if (e->srv.errors)
        printf("# the server logged %lu error line(s); the first:\n", e->srv.errors);
    for (size_t i = 0; i < e->log.nerrors; i++)
        printf("#   server> %s\n", e->log.errors[i]);
    pthread_mutex_unlock(&e->log.mu);
    close(e->ifd);
    if (e->srv.errors)
        bench_fail("the server logged errors (data in %s)", e->dir);
}

/* Rows left in the stopped server's store: invocations and dead letters. */
static void store_leftovers(const char *dir, long long *inv, long long *dead)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pipebridge.db", dir);
    sqlite3 *db = NULL;
    *inv = *dead = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        bench_fail("cannot open %s read-only", path);
    }
    const char *q[2] = {"SELECT count(*) FROM invocations", "SELECT count(*) FROM dead_letters"};
    long long *out[2] = {inv, dead};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, q[i], -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            *out[i] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (*inv < 0 || *dead < 0)
        bench_fail("cannot count the rows of %s", path);
}

/* Marks in the directory whose name starts with prefix. */
static size_t count_marks(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    size_t n = 0, pl = strlen(prefix);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, prefix, pl))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* ------------------------------------------------------------------ /metrics */

static const double hist_le[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};
#define NLE (sizeof hist_le / sizeof hist_le[0])

typedef struct mstat {
    double invocations, failed, dead, attempts, retries, accepted, matched;
    double hist[NLE + 1]; /* cumulative counts per le, +Inf last, summed over every rule */
    double hist_sum, hist_count;
} mstat;

static double metric_sum(const char *text, size_t len, const char *name)
{
    double sum = 0;
    size_t nl = strlen(name);
    for (const char *p = text, *e = text + len; p < e;) {
        const char *eol = memchr(p, '\n', (size_t)(e - p));
        if (!eol)
            eol = e;
        if ((size_t)(eol - p) > nl && !memcmp(p, name, nl) && p[nl] == '{') {
            const char *sp = p + (eol - p);
            while (sp > p && sp[-1] != ' ')
                sp--;
            sum += strtod(sp, NULL);
        }
        p = eol + 1;
    }
    return sum;
}

static void metrics_read(bench_client *c, mstat *m)
{
    uint64_t l;
    bench_client_get(c, "/metrics", &l);
    if (c->status != 200)
        bench_fail("GET /metrics: HTTP %d", c->status);
    /* copy: the body is not terminated */
    char *t = malloc(c->blen + 1);
    if (!t)
        bench_die("out of memory");
    memcpy(t, c->body, c->blen);
    t[c->blen] = '\0';
    memset(m, 0, sizeof *m);
    m->invocations = metric_sum(t, c->blen, "pipebridge_invocations_total");
    m->failed = metric_sum(t, c->blen, "pipebridge_failed_invocations_total");
    m->dead = metric_sum(t, c->blen, "pipebridge_dead_letter_invocations_total");
    m->attempts = metric_sum(t, c->blen, "pipebridge_invocation_attempts_total");
    m->retries = metric_sum(t, c->blen, "pipebridge_retry_invocation_attempts_total");
    m->accepted = metric_sum(t, c->blen, "pipebridge_putevents_entries_accepted_total");
    m->matched = metric_sum(t, c->blen, "pipebridge_matched_events_total");
    m->hist_sum = metric_sum(t, c->blen, "pipebridge_ingestion_to_invocation_ms_sum");
    m->hist_count = metric_sum(t, c->blen, "pipebridge_ingestion_to_invocation_ms_count");
    /* buckets: lines ...{labels,le="X"} N */
    for (const char *p = t; (p = strstr(p, "pipebridge_ingestion_to_invocation_ms_bucket{")) != NULL;) {
        const char *le = strstr(p, ",le=\""); /* not the end of rule="..." */
        const char *eol = strchr(p, '\n');
        if (!le || (eol && le > eol))
            break;
        le += 5;
        size_t b = NLE;
        if (strncmp(le, "+Inf", 4)) {
            double v = strtod(le, NULL);
            for (b = 0; b < NLE && hist_le[b] != v; b++)
                ;
        }
        const char *sp = strstr(le, "} ");
        if (sp && b <= NLE)
            m->hist[b] += strtod(sp + 2, NULL);
        p = eol ? eol : p + 1;
    }
    free(t);
}

/* "<= X ms" for quantile q of the ingestion-to-invocation histogram. */
static void hist_q(const mstat *m, double q, char *out, size_t cap)
{
    double total = m->hist[NLE];
    if (total <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    for (size_t b = 0; b < NLE; b++)
        if (m->hist[b] >= q * total) {
            snprintf(out, cap, "<=%gms", hist_le[b]);
            return;
        }
    snprintf(out, cap, ">%gms", hist_le[NLE - 1]);
}

/* ------------------------------------------------------------------ load threads */

typedef struct loader {
    int port;
    int id;
    int nconns;
    bool paced;
    double rate_req;   /* paced: requests/s over all connections */
    uint64_t t0_ns;    /* paced: the schedule's origin; closed: the start */
    uint64_t meas_ns;  /* requests sent from here on are counted */
    uint64_t end_ns;   /* ... until here; none is sent after */
    gen g;
    /* results */
    uint64_t *lat;     /* counted requests: answer - due (paced) or - send */
    uint64_t *raw;     /* paced: answer - send */
    size_t nlat, cap;
    size_t requests;   /* all, warm-up included */
    size_t entries;    /* accepted entries, warm-up included */
    size_t late;       /* paced: counted requests sent more than 1 ms after they were due */
} loader;

static void push_lat(loader *l, uint64_t v, uint64_t raw)
{
    if (l->nlat == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16384;
        uint64_t *a = realloc(l->lat, nc * sizeof *a), *b = a ? realloc(l->raw, nc * sizeof *b) : NULL;
        if (!a || !b)
            bench_die("out of memory");
        l->lat = a;
        l->raw = b;
        l->cap = nc;
    }
    l->lat[l->nlat] = v;
    l->raw[l->nlat++] = raw;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *loader_main(void *arg)
{
    loader *l = arg;
    bench_client c;
    if (g_stagger_ms > 0) /* --stagger: connect one after the other, not all at once */
        sleep_ms(g_stagger_ms * l->id);
    bench_client_open(&c, l->port, &bench_events);
    /* POOL bodies without a pipeline entry, made before the clock starts and
     * sent in turn (the server gives every entry its own id, so repeats are
     * fine); a request that holds a pipeline entry is made when due. */
    char *body = malloc(65536), *pool[POOL];
    size_t plen[POOL];
    if (!body)
        bench_die("out of memory");
    gen pg = l->g;
    for (size_t i = 0; i < POOL; i++) {
        plen[i] = make_body(&pg, body, 65536, ENTRIES, false);
        if (!(pool[i] = malloc(plen[i] + 1)))
            bench_die("out of memory");
        memcpy(pool[i], body, plen[i] + 1);
    }
    l->g.rs = pg.rs;
    for (uint64_t i = 0;; i++) {
        uint64_t due = 0;
        if (l->paced) {
            due = l->t0_ns + (uint64_t)((double)(i * (uint64_t)l->nconns + (uint64_t)l->id) * 1e9 / l->rate_req);
            if (due >= l->end_ns)
                break;
        }
        /* the end is checked before a body is made: a pipeline entry is
         * counted when its body is made, so it must be sent */
        if (!l->paced && bench_now_ns() >= l->end_ns)
            break;
        const char *b = pool[i % POOL];
        size_t blen = plen[i % POOL];
        if (g_pipe_every && (l->g.n + ENTRIES) / g_pipe_every != l->g.n / g_pipe_every) {
            blen = make_body(&l->g, body, 65536, ENTRIES, true);
            b = body;
        } else {
            l->g.n += ENTRIES;
        }
        if (l->paced)
            sleep_until_ns(due);
        uint64_t ts = bench_now_ns(), lat;
        bench_client_call(&c, "PutEvents", b, blen, &lat);
        if (!put_ok(&c, ENTRIES))
            put_fail(&c);
        l->requests++;
        l->entries += ENTRIES;
        uint64_t when = l->paced ? due : ts;
        if (when >= l->meas_ns) {
            push_lat(l, l->paced ? ts + lat - due : lat, lat);
            if (l->paced && ts > due + 1000000)
                l->late++;
        }
    }
    free(body);
    for (size_t i = 0; i < POOL; i++)
        free(pool[i]);
    bench_client_close(&c);
    return NULL;
}

typedef struct loadres {
    double events_s, req_s;
    double p50, p90, p99, max;       /* ms */
    double raw_p50, raw_p99, raw_max; /* paced: from the send */
    double srv_cores, self_cores;
    double other_cores;              /* the rest of the machine's busy CPU: other work (and the steps) */
    size_t counted_req, late;
    size_t entries, npipe;           /* all, warm-up included */
    size_t invocations;              /* expected: entries, or 0 with --no-match (the pipeline ones aside) */
    double t_begin, t_end;           /* measured window, monotonic s */
} loadres;

/* Runs nconns loaders; paced when rate_ev > 0. */
static void run_load(env *e, int nconns, double rate_ev, double seconds, const char *tag, loadres *r)
{
    loader *ls = calloc((size_t)nconns, sizeof *ls);
    pthread_t *th = calloc((size_t)nconns, sizeof *th);
    if (!ls || !th)
        bench_die("out of memory");
    uint64_t now = bench_now_ns() + 50000000; /* threads start within 50 ms */
    uint64_t meas = now + (uint64_t)(WARMUP_S * 1e9), end = meas + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < nconns; i++) {
        ls[i] = (loader){.port = e->srv.port, .id = i, .nconns = nconns, .paced = rate_ev > 0,
                         .rate_req = rate_ev / ENTRIES, .t0_ns = now, .meas_ns = meas, .end_ns = end};
        ls[i].g.rs = 0x1234567ull * (uint64_t)(i + 1);
        snprintf(ls[i].g.tag, sizeof ls[i].g.tag, "%s-%d", tag, i);
    }
    for (int i = 0; i < nconns; i++)
        if (pthread_create(&th[i], NULL, loader_main, &ls[i]))
            bench_die("pthread_create failed");
    sleep_until_ns(meas);
    double c0 = bench_proc_cpu_s(e->srv.pid), s0 = self_cpu_s(), m0 = machine_busy_s();
    r->t_begin = bench_now_s();
    sleep_until_ns(end);
    double c1 = bench_proc_cpu_s(e->srv.pid), s1 = self_cpu_s(), m1 = machine_busy_s();
    r->t_end = bench_now_s();
    for (int i = 0; i < nconns; i++)
        pthread_join(th[i], NULL);
    size_t n = 0;
    for (int i = 0; i < nconns; i++)
        n += ls[i].nlat;
    uint64_t *all = malloc((n ? n : 1) * sizeof *all), *raw = malloc((n ? n : 1) * sizeof *raw);
    if (!all || !raw)
        bench_die("out of memory");
    size_t k = 0;
    r->entries = r->npipe = r->late = 0;
    for (int i = 0; i < nconns; i++) {
        memcpy(all + k, ls[i].lat, ls[i].nlat * sizeof *all);
        memcpy(raw + k, ls[i].raw, ls[i].nlat * sizeof *raw);
        k += ls[i].nlat;
        r->entries += ls[i].entries;
        r->npipe += ls[i].g.npipe;
        r->late += ls[i].late;
        free(ls[i].lat);
        free(ls[i].raw);
    }
    r->invocations = g_nomatch ? r->npipe : r->entries;
    qsort(all, n, sizeof *all, bench_cmp_u64);
    qsort(raw, n, sizeof *raw, bench_cmp_u64);
    r->counted_req = n;
    r->req_s = (double)n / seconds;
    r->events_s = r->req_s * ENTRIES;
    r->p50 = bench_pct_ms(all, n, 0.50);
    r->p90 = bench_pct_ms(all, n, 0.90);
    r->p99 = bench_pct_ms(all, n, 0.99);
    r->max = n ? (double)all[n - 1] / 1e6 : 0;
    r->raw_p50 = bench_pct_ms(raw, n, 0.50);
    r->raw_p99 = bench_pct_ms(raw, n, 0.99);
    r->raw_max = n ? (double)raw[n - 1] / 1e6 : 0;
    r->srv_cores = (c1 - c0) / seconds;
    r->self_cores = (s1 - s0) / seconds;
    r->other_cores = (m1 - m0 - (c1 - c0) - (s1 - s0)) / seconds;
    if (r->other_cores < 0)
        r->other_cores = 0;
    free(all);
    free(raw);
    free(ls);
    free(th);
}

/* Waits until every accepted entry's invocation has ended; checks none failed
 * and every pipeline entry's step wrote its mark. Returns the seconds after
 * t_end; *backlog (may be NULL) is how many had not ended at the first look. */
static double drain(env *e, const loadres *r, const char *tag, mstat *m, double *backlog)
{
    bench_client c;
    bench_client_open(&c, e->srv.port, &bench_events);
    double t0 = bench_now_s();
    for (bool first = true;; first = false) {
        metrics_read(&c, m);
        if (first && backlog)
            *backlog = (double)r->invocations - m->invocations;
        if (m->failed || m->dead || m->retries)
            bench_fail("%.0f invocations failed, %.0f dead letters, %.0f retried attempts (data in %s)", m->failed,
                       m->dead, m->retries, e->dir);
        if (m->invocations >= (double)r->invocations)
            break;
        if (bench_now_s() - t0 > DRAIN_TIMEOUT_S)
            bench_fail("after %.0f s only %.0f of %zu invocations have ended (data in %s)", DRAIN_TIMEOUT_S,
                       m->invocations, r->invocations, e->dir);
        sleep_ms(20);
    }
    double t = bench_now_s() - r->t_end;
    if (m->invocations != (double)r->invocations || m->accepted != (double)r->entries)
        bench_fail("%.0f invocations ended and %.0f entries accepted by the server's count; %zu and %zu by this "
                   "bench's",
                   m->invocations, m->accepted, r->invocations, r->entries);
    char prefix[40];
    snprintf(prefix, sizeof prefix, "%s-", tag);
    double tm = bench_now_s();
    while (count_marks(e->markdir, prefix) < r->npipe) {
        if (bench_now_s() - tm > 60)
            bench_fail("%zu of %zu pipeline steps wrote their mark", count_marks(e->markdir, prefix), r->npipe);
        sleep_ms(20);
    }
    bench_client_close(&c);
    return t;
}

/* ------------------------------------------------------------------ the rules' self-check */

/* On a server of its own: one event of every bucket (10 requests); then every
 * rule must have matched exactly once, the to-pipeline rule included, and
 * its step must have run. So each event matches exactly one rule. */
static void check_rules(const char *bin)
{
    env e;
    env_start(&e, bin, NULL, "check");
    bench_client c;
    bench_client_open(&c, e.srv.port, &bench_events);
    char *body = malloc(65536);
    if (!body)
        bench_die("out of memory");
    uint64_t rs = 1;
    for (int k0 = 0; k0 <= NBUCKETS; k0 += ENTRIES) {
        size_t len = (size_t)snprintf(body, 65536, "{\"Entries\":[");
        for (int k = k0; k < k0 + ENTRIES && k <= NBUCKETS; k++) {
            char seq[32];
            snprintf(seq, sizeof seq, "check-%d", k);
            append_entry(body, 65536, &len, k, seq, &rs);
        }
        len += (size_t)snprintf(body + len, 65536 - len, "]}");
        uint64_t l;
        bench_client_call(&c, "PutEvents", body, len, &l);
        if (!put_ok(&c, k0 + ENTRIES <= NBUCKETS + 1 ? ENTRIES : (size_t)(NBUCKETS + 1 - k0)))
            put_fail(&c);
    }
    free(body);
    loadres r = {.entries = NBUCKETS + 1, .invocations = NBUCKETS + 1, .npipe = 1, .t_end = bench_now_s()};
    mstat m;
    drain(&e, &r, "check", &m, NULL);
    /* per rule: pipebridge_triggered_rules_total{...,rule="NAME"} 1 */
    uint64_t lat;
    bench_client_get(&c, "/metrics", &lat);
    size_t rules = 0;
    const char *name = "pipebridge_triggered_rules_total{";
    for (const char *p = c.body, *end = c.body + c.blen; (p = memmem(p, (size_t)(end - p), name, strlen(name)));) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *sp = eol ? eol : end;
        while (sp > p && sp[-1] != ' ')
            sp--;
        if (strtod(sp, NULL) != 1)
            bench_fail("a rule matched %.0f of the check events, not 1: %.*s", strtod(sp, NULL), (int)(sp - p), p);
        rules++;
        p = eol ? eol : end;
    }
    if (rules != NBUCKETS + 1 || m.matched != NBUCKETS + 1)
        bench_fail("%zu rules matched the %d check events (%.0f events matched), expected each rule once", rules,
                   NBUCKETS + 1, m.matched);
    bench_client_close(&c);
    env_stop(&e);
    printf("# rules checked: each of the %d buckets' events matched exactly its rule, and only it\n", NBUCKETS + 1);
    fflush(stdout);
}

/* ------------------------------------------------------------------ phase A */

static void phase_a(const char *bin, const int *conns, size_t nconns, int runs, double seconds)
{
    printf("# A. throughput: PutEvents of %d entries (~%zu-byte Detail), back to back; %s; 1 in %zu entries starts a "
           "pipeline; %.0fs warm-up + %.0fs measured; best of %d\n",
           ENTRIES, g_detail_bytes,
           g_nomatch ? "--no-match: the entries match no rule" : "each entry matches one rule (one invocation)",
           g_pipe_every, WARMUP_S, seconds, runs);
    fflush(stdout);
    for (size_t ci = 0; ci < nconns; ci++) {
        loadres best = {0};
        double best_drain = 0, best_backlog = 0;
        mstat best_m = {0};
        for (int run = 1; run <= runs; run++) {
            char tag[32];
            snprintf(tag, sizeof tag, "a%dc%d", run, conns[ci]);
            env e;
            env_start(&e, bin, NULL, tag);
            loadres r;
            run_load(&e, conns[ci], 0, seconds, tag, &r);
            mstat m;
            double backlog;
            double dt = drain(&e, &r, tag, &m, &backlog);
            pid_t pid = e.srv.pid;
            double rss = (double)bench_proc_kb(pid, "VmHWM") / 1024.0;
            env_stop(&e);
            long long inv, dead;
            store_leftovers(e.dir, &inv, &dead);
            if (inv || dead)
                bench_fail("after the drain and SIGTERM the store still holds %lld invocations and %lld dead "
                           "letters (%s)",
                           inv, dead, e.dir);
            char h50[32], h99[32];
            hist_q(&m, 0.5, h50, sizeof h50);
            hist_q(&m, 0.99, h99, sizeof h99);
            printf("#   run %d, %d conn: %.0f events/s (%.0f req/s) p50=%.3fms p99=%.3fms "
                   "max=%.3fms; server %.2f cores, bench %.2f, other %.2f; drained %.2fs after the load "
                   "(%zu invocations, %zu to the pipeline; %.0f not yet ended at the end); ingestion->attempt p50 %s p99 %s; peak rss "
                   "%.1fMB; load %.2f; server pid %d ran t=%.3f..%.3f\n",
                   run, conns[ci], r.events_s, r.req_s, r.p50, r.p99, r.max, r.srv_cores,
                   r.self_cores, r.other_cores, dt, r.invocations, r.npipe, backlog, h50, h99, rss, loadavg(), (int)pid, r.t_begin,
                   r.t_end);
            fflush(stdout);
            if (r.events_s > best.events_s) {
                best = r;
                best_drain = dt;
                best_backlog = backlog;
                best_m = m;
            }
        }
        char h50[32], h99[32];
        hist_q(&best_m, 0.5, h50, sizeof h50);
        hist_q(&best_m, 0.99, h99, sizeof h99);
        printf("putevents_throughput%s conns=%d %.0f events/s p50=%.3fms p99=%.3fms (best of %d; "
               "%.0f invocations/s; server %.2f cores, bench %.2f, other %.2f; drain %.2fs, backlog %.0f; "
               "target >= 50000: %s)\n",
               g_nomatch ? "_nomatch" : "", conns[ci], best.events_s, best.p50, best.p99, runs,
               best.events_s * (double)best.invocations / (double)(best.entries ? best.entries : 1), best.srv_cores,
               best.self_cores, best.other_cores, best_drain, best_backlog,
               best.events_s >= 50000 ? "met" : "MISSED");
        fflush(stdout);
    }
    printf("#   every answer 200 with FailedEntryCount 0; every invocation ended, none failed; store empty "
           "afterwards; every pipeline step ran\n");
}

/* ------------------------------------------------------------------ phase B */

static void phase_b(const char *bin, double rate, int conns, int runs, double seconds)
{
    printf("# B. latency at %.0f events/s (%.0f req/s of %d entries), open loop over %d connections; "
           "%.0fs warm-up + %.0fs measured; best of %d (p99)\n",
           rate, rate / ENTRIES, ENTRIES, conns, WARMUP_S, seconds, runs);
    fflush(stdout);
    loadres best = {0};
    bool have = false;
    for (int run = 1; run <= runs; run++) {
        char tag[32];
        snprintf(tag, sizeof tag, "b%d", run);
        env e;
        env_start(&e, bin, NULL, tag);
        loadres r;
        run_load(&e, conns, rate, seconds, tag, &r);
        mstat m;
        double dt = drain(&e, &r, tag, &m, NULL);
        pid_t pid = e.srv.pid;
        env_stop(&e);
        char h50[32], h99[32];
        hist_q(&m, 0.5, h50, sizeof h50);
        hist_q(&m, 0.99, h99, sizeof h99);
        printf("#   run %d: %.0f events/s sent; from due time p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms; from "
               "send p50=%.3fms p99=%.3fms max=%.3fms; %zu of %zu sent >1ms late; server %.2f cores, bench %.2f, "
               "other %.2f; "
               "drained %.2fs after; ingestion->attempt p50 %s p99 %s; load %.2f; server pid %d ran t=%.3f..%.3f\n",
               run, r.events_s, r.p50, r.p90, r.p99, r.max, r.raw_p50, r.raw_p99, r.raw_max, r.late, r.counted_req,
               r.srv_cores, r.self_cores, r.other_cores, dt, h50, h99, loadavg(), (int)pid, r.t_begin, r.t_end);
        fflush(stdout);
        if (!have || r.p99 < best.p99) {
            best = r;
            have = true;
        }
    }
    printf("putevents_latency_at_%.0f_events_s p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms (best of %d by p99, "
           "%zu requests; target p99 <= 10ms: %s)\n",
           rate, best.p50, best.p90, best.p99, best.max, runs, best.counted_req, best.p99 <= 10 ? "met" : "MISSED");
    fflush(stdout);
}

/* ------------------------------------------------------------------ phase C */

/* The newest execution's ARN (copied into out) and status; false when there is none. */
static bool newest_exec(bench_client *sm, char *arn, size_t cap, char *status, size_t scap)
{
    json_t *j = call(sm, "ListPipelineExecutions",
                     json_pack("{s:s,s:s,s:s,s:i}", "PipelineName", PIPELINE, "SortBy", "CreationTime", "SortOrder",
                               "Descending", "MaxResults", 1));
    json_t *e = json_array_get(json_object_get(j, "PipelineExecutionSummaries"), 0);
    const char *a = json_string_value(json_object_get(e, "PipelineExecutionArn"));
    const char *s = json_string_value(json_object_get(e, "PipelineExecutionStatus"));
    bool ok = a && s;
    if (ok) {
        snprintf(arn, cap, "%s", a);
        snprintf(status, scap, "%s", s);
    }
    json_decref(j);
    return ok;
}

/* Waits until the newest execution is not prev and has Succeeded; copies its ARN to prev. */
static void wait_succeeded(bench_client *sm, char *prev, size_t cap)
{
    double t0 = bench_now_s();
    char arn[512], st[32];
    for (;;) {
        if (newest_exec(sm, arn, sizeof arn, st, sizeof st) && strcmp(arn, prev)) {
            if (!strcmp(st, "Succeeded"))
                break;
            if (strcmp(st, "Executing"))
                bench_fail("execution %s ended %s", arn, st);
        }
        if (bench_now_s() - t0 > 30)
            bench_fail("no new execution Succeeded after 30 s");
        sleep_ms(1);
    }
    snprintf(prev, cap, "%s", arn);
}

static void print_pcts(const char *label, uint64_t *v, size_t n, const char *tail)
{
    qsort(v, n, sizeof *v, bench_cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    printf("%s p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms (n=%zu, mean=%.3fms, min=%.3fms%s)\n", label,
           bench_pct_ms(v, n, 0.50), bench_pct_ms(v, n, 0.90), bench_pct_ms(v, n, 0.99), (double)v[n - 1] / 1e6, n,
           sum / (double)n / 1e6, (double)v[0] / 1e6, tail);
}

static void phase_c(const char *bin, size_t n)
{
    env e;
    env_start(&e, bin, NULL, "c");
    printf("# C. event -> execution start: %zu single-entry PutEvents (bucket 99) one after the other, each after "
           "the previous execution Succeeded; server pid %d, marks in %s\n",
           n, (int)e.srv.pid, e.markdir);
    fflush(stdout);
    bench_client c, sm;
    bench_client_open(&c, e.srv.port, &bench_events);
    bench_client_open(&sm, e.srv.port, &bench_sagemaker);
    uint64_t *start = calloc(n, sizeof *start), *ack = calloc(n, sizeof *ack), *direct = calloc(n, sizeof *direct),
             *dack = calloc(n, sizeof *dack), *after = calloc(n, sizeof *after);
    char *body = malloc(65536);
    if (!start || !ack || !direct || !dack || !after || !body)
        bench_die("out of memory");
    char prev[512] = "";
    gen g = {.rs = 7};
    double t_begin = bench_now_s();
    for (size_t i = 0; i <= n; i++) { /* i == 0: warm-up */
        char seq[64];
        snprintf(seq, sizeof seq, "c-%zu", i);
        size_t len = (size_t)snprintf(body, 65536, "{\"Entries\":[");
        append_entry(body, 65536, &len, PIPE_BUCKET, seq, &g.rs);
        len += (size_t)snprintf(body + len, 65536 - len, "]}");
        uint64_t l, t0 = bench_real_ns();
        bench_client_call(&c, "PutEvents", body, len, &l);
        if (!put_ok(&c, 1))
            put_fail(&c);
        uint64_t m = bench_wait_mark(e.ifd, e.markdir, seq, 30);
        wait_succeeded(&sm, prev, sizeof prev);
        if (i) {
            start[i - 1] = m - t0;
            ack[i - 1] = l;
            after[i - 1] = m > t0 + l ? m - t0 - l : 0;
        }
    }
    double t_mid = bench_now_s();
    for (size_t i = 0; i <= n; i++) {
        char seq[64], token[96];
        snprintf(seq, sizeof seq, "d-%zu", i);
        snprintf(token, sizeof token, "ingest-bench-direct-%d-%zu-0123456789", (int)getpid(), i);
        json_t *req = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "PipelineName", PIPELINE, "ClientRequestToken", token,
                                "PipelineParameters", "Name", "Seq", "Value", seq);
        char *text = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        uint64_t l, t0 = bench_real_ns();
        json_decref(bench_call_json(&sm, "StartPipelineExecution", text, &l));
        free(text);
        uint64_t m = bench_wait_mark(e.ifd, e.markdir, seq, 30);
        wait_succeeded(&sm, prev, sizeof prev);
        if (i) {
            direct[i - 1] = m - t0;
            dack[i - 1] = l;
        }
    }
    double t_end = bench_now_s();
    qsort(start, n, sizeof *start, bench_cmp_u64);
    bool met = bench_pct_ms(start, n, 0.50) <= 5.0;
    char tail[128];
    snprintf(tail, sizeof tail, "; target p50 <= 5ms: %s", met ? "met" : "MISSED");
    print_pcts("event_to_execution_start", start, n, tail);
    print_pcts("#   PutEvents ack (1 entry, sequential)", ack, n, "");
    print_pcts("#   ack to step running", after, n, "");
    print_pcts("#   direct StartPipelineExecution to step running (same server and pipeline)", direct, n, "");
    print_pcts("#   StartPipelineExecution answer", dack, n, "");
    printf("#   events ran t=%.3f..%.3f, direct starts t=%.3f..%.3f (CLOCK_MONOTONIC); load %.2f\n", t_begin, t_mid,
           t_mid, t_end, loadavg());
    bench_client_close(&sm);
    bench_client_close(&c);
    env_stop(&e);
    free(start);
    free(ack);
    free(direct);
    free(dack);
    free(after);
    free(body);
}

/* ------------------------------------------------------------------ main */

static const char usage[] =
    "usage: ingest_bench [PIPEBRIDGE] [--only A|B|C] [--seconds S] [--runs R] [--conns LIST]\n"
    "                    [--rate E] [--b-conns K] [--events M] [--pipeline-every P] [--detail-bytes B] [--no-match]\n"
    "                    [--stagger MS]\n"
    "                    [--tmpdir DIR] [--keep] [--quick]\n"
    "       ingest_bench --mark ID      (the pipeline step's program)\n"
    "\n"
    "  PIPEBRIDGE          server binary to start (default build/pipebridge)\n"
    "  --only PHASE        A (throughput), B (latency at a rate) or C (event to execution start)\n"
    "  --seconds S         measured seconds of A and B runs (default 10), after 1 s of warm-up\n"
    "  --runs R            runs per A configuration and of B (default 3)\n"
    "  --conns LIST        connections for A (default 4,8,16)\n"
    "  --rate E            B's events/s (default 10000)\n"
    "  --b-conns K         B's connections (default 4)\n"
    "  --events M          C's events (default 200)\n"
    "  --pipeline-every P  in A and B, 1 in P entries starts a pipeline (default 10000; 0: none)\n"
    "  --detail-bytes B    Detail size (default 300)\n"
    "  --no-match          A's and B's entries match no rule (but every P-th): the request path alone\n"
    "  --stagger MS        connection i connects i*MS ms after the first (within the 1 s warm-up)\n"
    "  --quick             --seconds 3 --runs 1 --conns 8 --events 30\n"
    "  --tmpdir DIR        where the data directories are made (default $TMPDIR or /tmp)\n"
    "  --keep              keep the data directories\n";

static size_t parse_list(const char *s, int *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_CONNS)
            return 0;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return 0;
    }
    return n;
}

int main(int argc, char **argv)
{
    struct timespec t_main;
    clock_gettime(CLOCK_REALTIME, &t_main); /* mark mode: the first thing the step does */
    if (argc == 3 && !strcmp(argv[1], "--mark"))
        return bench_mark_main("ingest_bench", argv[2], &t_main);

    bench_set_name("ingest_bench");
    const char *bin = "build/pipebridge", *only = NULL;
    double seconds = 10, rate = 10000;
    int runs = 3, bconns = 4;
    size_t events = 200;
    int conns[8] = {4, 8, 16};
    size_t nconns = 3;
    if (getenv("TMPDIR") && *getenv("TMPDIR"))
        g_tmpdir = getenv("TMPDIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool hasv = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            seconds = 3;
            runs = 1;
            conns[0] = 8;
            nconns = 1;
            events = 30;
        } else if (!strcmp(a, "--only") && hasv) {
            only = argv[++i];
        } else if (!strcmp(a, "--seconds") && hasv) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--runs") && hasv) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(a, "--conns") && hasv) {
            nconns = parse_list(argv[++i], conns, 8);
        } else if (!strcmp(a, "--rate") && hasv) {
            rate = atof(argv[++i]);
        } else if (!strcmp(a, "--b-conns") && hasv) {
            bconns = atoi(argv[++i]);
        } else if (!strcmp(a, "--events") && hasv) {
            events = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--pipeline-every") && hasv) {
            g_pipe_every = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--detail-bytes") && hasv) {
            g_detail_bytes = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--tmpdir") && hasv) {
            g_tmpdir = argv[++i];
        } else if (!strcmp(a, "--stagger") && hasv) {
            g_stagger_ms = atof(argv[++i]);
        } else if (!strcmp(a, "--no-match")) {
            g_nomatch = true;
        } else if (!strcmp(a, "--keep")) {
            g_keep = true;
        } else if (a[0] != '-') {
            bin = a;
        } else {
            fprintf(stderr, "ingest_bench: bad option %s\n%s", a, usage);
            return 2;
        }
    }
    if (seconds < 1 || seconds > 600 || runs < 1 || runs > 20 || !nconns || rate < 10 ||
        rate > 1e6 || bconns < 1 || bconns > MAX_CONNS || events < 1 || events > 100000 || g_detail_bytes < 200 ||
        g_detail_bytes > 1200 || g_stagger_ms < 0 || g_stagger_ms > 50 || (only && strcmp(only, "A") && strcmp(only, "B") && strcmp(only, "C"))) {
        fprintf(stderr, "ingest_bench: --seconds 1..600, --runs 1..20, --conns a list of 1..%d, --rate "
                        "10..1000000, --b-conns 1..%d, --events 1..100000, --detail-bytes 200..1200, --stagger 0..50, --only A|B|C\n",
                MAX_CONNS, MAX_CONNS);
        return 2;
    }
    int most = bconns;
    for (size_t i = 0; i < nconns; i++)
        most = conns[i] > most ? conns[i] : most;
    if (g_stagger_ms * (most - 1) > 900) {
        fprintf(stderr, "ingest_bench: --stagger %g with %d connections does not fit in the 1 s warm-up\n",
                g_stagger_ms, most);
        return 2;
    }
    ssize_t sl = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (sl <= 0)
        bench_die("cannot read /proc/self/exe: %s", strerror(errno));
    g_self[sl] = '\0';
    if (strlen(g_self) > 256)
        bench_die("this program's path %s is longer than the 256 characters an entrypoint item may have", g_self);
    signal(SIGPIPE, SIG_IGN);

    printf("# ingest_bench: %s, data in %s, %ld CPUs, load %.2f at the start\n", bin, g_tmpdir,
           sysconf(_SC_NPROCESSORS_ONLN), loadavg());
    check_rules(bin);
    if (!only || !strcmp(only, "A"))
        phase_a(bin, conns, nconns, runs, seconds);
    if (!only || !strcmp(only, "B"))
        phase_b(bin, rate, bconns, runs, seconds);
    if (!only || !strcmp(only, "C"))
        phase_c(bin, events);
    for (size_t i = 0; i < g_ndirs && !g_keep; i++)
        bench_rm_tree(g_dirs[i]);
    printf("# every request answered 200 with FailedEntryCount 0; every invocation delivered; counts ok\n");
    return 0;
}
