/*
 * pipeline_bench.c — figures for the pipeline runner, over the SageMaker
 * API of the real server: how long from StartPipelineExecution until the
 * first step's process runs, whether 1,000 executions started at once all
 * reach Succeeded, and the server's resident memory per running execution.
 * Figures, not tests: it asserts nothing about speed, but every request must
 * answer 200, every execution must end as expected and the counts must
 * match (exit 1 otherwise; 2 on a bad option).
 *
 *   build-bench/pipeline_bench [PIPEBRIDGE] [options]
 *
 * Each phase starts its own server (bench_client.c: `PIPEBRIDGE serve
 * --listen 127.0.0.1:0 --data-dir <fresh mkdtemp dir>`) and stops it with
 * SIGTERM at the end (it must exit 0). Requests are SageMaker.<Op>, signed
 * for the service "sagemaker".
 *
 * 1. latency: a pipeline of one Processing step whose entrypoint is this
 *    program in mark mode, `pipeline_bench --mark <execution id>`, with
 *    PB_BENCH_MARK_DIR in its Environment. Mark mode reads CLOCK_REALTIME as
 *    the first thing main does and writes it to <dir>/<execution id> (write
 *    to a temporary name, then rename). N times, one after the other: read
 *    CLOCK_REALTIME (t0), StartPipelineExecution, wait for that mark (inotify
 *    on the directory), then poll DescribePipelineExecution every 1 ms until
 *    Succeeded. Figures: mark - t0, and t0 to Succeeded seen. One warm-up
 *    execution is run first and not counted. For scale, the same program is
 *    also started by this process itself (fork + execve with the same
 *    one-variable environment, no server): the floor of a process start.
 * 2. throughput: a pipeline whose step is /bin/true; M
 *    StartPipelineExecution over K keep-alive connections (one thread each),
 *    as fast as they answer; then ListPipelineExecutions (pages of 100)
 *    every 50 ms until none is Executing (at most --wait seconds). Every
 *    started ARN must be listed exactly once and Succeeded, and each must
 *    have exactly one step, Succeeded (ListPipelineExecutionSteps); a
 *    Failed one's FailureReason (and its step's) is printed. A thread counts
 *    the server's child processes every 5 ms (/proc/PID/task/TID/children):
 *    the peak of step processes alive at once.
 * 3. rss: a pipeline whose step is `/bin/sleep 60`. VmRSS of the server after
 *    CreatePipeline; R executions started on one connection; wait until
 *    every one's step is Executing (ListPipelineExecutionSteps); VmRSS again:
 *    (after - before) / R. Then StopPipelineExecution for all, wait for
 *    Stopped, and the same again once (is the memory reused?). Also the
 *    server's open descriptors per running execution against its soft
 *    RLIMIT_NOFILE: how many steps could run at once.
 *
 * The data directories are removed at the end of a successful run, not
 * after each phase (see new_dir); --keep keeps them, a failure leaves them.
 *
 * Server-side request latencies are read from the server's own request log
 * lines ("op=StartPipelineExecution status=200 latency_ms=X").
 */
#define _GNU_SOURCE
#include "bench_client.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROLE "arn:aws:iam::000000000000:role/bench"
#define MAX_CONNS 16
#define MAX_ERROR_LINES 10

static const char *g_tmpdir = "/tmp";
static char g_self[PATH_MAX]; /* this program, absolute */
static bool g_keep;

/* Data directories, removed at the end of a successful run (not per phase:
 * on ext4 without a journal, inodes deleted in the last minute slow down
 * every inode allocation, so one phase's clean-up would tax the next). */
#define MAX_DIRS 8
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

/* ------------------------------------------------------------------ the server's log */

/* What the server's request log says, collected by the drain thread. */
typedef struct loglat {
    pthread_mutex_t mu;
    double *start_ms; /* latency_ms of each StartPipelineExecution, in log order */
    size_t n, cap;
    char errors[MAX_ERROR_LINES][400];
    size_t nerrors;
} loglat;

static void log_hook(void *user, const char *line, size_t len)
{
    loglat *l = user;
    (void)len;
    const char *op = strstr(line, " op=StartPipelineExecution status=200 ");
    const char *lat = op ? strstr(op, "latency_ms=") : NULL;
    const char *sp = strchr(line, ' ');
    bool err = sp && !strncmp(sp + 1, "error ", 6);
    if (!lat && !err)
        return;
    pthread_mutex_lock(&l->mu);
    if (lat) {
        if (l->n == l->cap) {
            size_t nc = l->cap ? 2 * l->cap : 1024;
            double *nv = realloc(l->start_ms, nc * sizeof *nv);
            if (nv) {
                l->start_ms = nv;
                l->cap = nc;
            }
        }
        if (l->n < l->cap)
            l->start_ms[l->n++] = strtod(lat + 11, NULL);
    }
    if (err && l->nerrors < MAX_ERROR_LINES)
        snprintf(l->errors[l->nerrors++], sizeof l->errors[0], "%s", line);
    pthread_mutex_unlock(&l->mu);
}

static void loglat_init(loglat *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static void loglat_free(loglat *l)
{
    free(l->start_ms);
    pthread_mutex_destroy(&l->mu);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p50 / p99 of the logged StartPipelineExecution latencies from index first on
 * (waits up to 1 s for the log to catch up with want lines). */
static void logged_start_pcts(loglat *l, size_t first, size_t want, double *p50, double *p99, size_t *n)
{
    double until = bench_now_s() + 1.0;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        size_t have = l->n > first ? l->n - first : 0;
        pthread_mutex_unlock(&l->mu);
        if (have >= want || bench_now_s() > until)
            break;
        sleep_ms(10);
    }
    pthread_mutex_lock(&l->mu);
    *n = l->n > first ? l->n - first : 0;
    *p50 = *p99 = 0;
    if (*n) {
        double *v = malloc(*n * sizeof *v);
        if (!v)
            bench_die("out of memory");
        memcpy(v, l->start_ms + first, *n * sizeof *v);
        qsort(v, *n, sizeof *v, cmp_d);
        size_t r50 = (size_t)(0.50 * (double)*n + 0.999999999), r99 = (size_t)(0.99 * (double)*n + 0.999999999);
        *p50 = v[(r50 ? r50 : 1) - 1];
        *p99 = v[(r99 ? r99 : 1) - 1];
        free(v);
    }
    pthread_mutex_unlock(&l->mu);
}

static void report_server_errors(loglat *l, const bench_server *s)
{
    pthread_mutex_lock(&l->mu);
    if (s->errors)
        printf("# the server logged %lu error line(s); the first:\n", s->errors);
    for (size_t i = 0; i < l->nerrors; i++)
        printf("#   server> %s\n", l->errors[i]);
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------------ SageMaker calls */

/* One request with a JSON body (stolen); the answer must be 200 JSON (caller decrefs). */
static json_t *sm(bench_client *c, const char *op, json_t *body, uint64_t *lat)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        bench_die("out of memory");
    json_t *j = bench_call_json(c, op, text, lat);
    free(text);
    return j;
}

/* CreatePipeline name: one Processing step "Run" with entrypoint (stolen) and
 * env (stolen, may be NULL). */
static void create_pipeline(bench_client *c, const char *name, json_t *entrypoint, json_t *env)
{
    json_t *args = json_pack("{s:{s:s,s:o},s:{s:{s:i,s:s,s:i}},s:s}", "AppSpecification", "ImageUri", "local",
                             "ContainerEntrypoint", entrypoint, "ProcessingResources", "ClusterConfig",
                             "InstanceCount", 1, "InstanceType", "ml.m5.large", "VolumeSizeInGB", 1, "RoleArn", ROLE);
    if (!args)
        bench_die("cannot build the definition");
    if (env)
        json_object_set_new(args, "Environment", env);
    json_t *def = json_pack("{s:s,s:{},s:[],s:[{s:s,s:s,s:o}]}", "Version", "2020-12-01", "Metadata", "Parameters",
                            "Steps", "Name", "Run", "Type", "Processing", "Arguments", args);
    char *text = def ? json_dumps(def, JSON_COMPACT) : NULL;
    json_decref(def);
    char token[80];
    snprintf(token, sizeof token, "pipeline-bench-create-%d-%s-0123456789", (int)getpid(), name);
    json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "PipelineName", name, "PipelineDefinition", text, "RoleArn", ROLE,
                             "ClientRequestToken", token);
    free(text);
    json_t *j = sm(c, "CreatePipeline", body, NULL);
    if (!json_string_value(json_object_get(j, "PipelineArn")))
        bench_fail("CreatePipeline %s: no PipelineArn in the answer", name);
    json_decref(j);
}

/* StartPipelineExecution with a unique token; returns the ARN (malloc'd). */
static char *start_exec(bench_client *c, const char *pipeline, const char *tag, size_t i, uint64_t *lat)
{
    char token[128];
    snprintf(token, sizeof token, "pipeline-bench-%d-%s-%08zu-0123456789abcdef", (int)getpid(), tag, i);
    json_t *j = sm(c, "StartPipelineExecution",
                   json_pack("{s:s,s:s}", "PipelineName", pipeline, "ClientRequestToken", token), lat);
    const char *arn = json_string_value(json_object_get(j, "PipelineExecutionArn"));
    if (!arn)
        bench_fail("StartPipelineExecution: no PipelineExecutionArn in the answer");
    char *out = strdup(arn);
    json_decref(j);
    if (!out)
        bench_die("out of memory");
    return out;
}

static const char *exec_id(const char *arn)
{
    const char *s = strrchr(arn, '/');
    return s ? s + 1 : arn;
}

/* DescribePipelineExecution's status (static string: the known ones) and, when
 * reason is given, a copy of FailureReason. */
static const char *exec_status(bench_client *c, const char *arn, char **reason)
{
    static const char *const known[] = {"Executing", "Stopping", "Stopped", "Failed", "Succeeded"};
    json_t *j = sm(c, "DescribePipelineExecution", json_pack("{s:s}", "PipelineExecutionArn", arn), NULL);
    const char *st = json_string_value(json_object_get(j, "PipelineExecutionStatus"));
    const char *out = NULL;
    for (size_t i = 0; st && i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(st, known[i]))
            out = known[i];
    if (!out)
        bench_fail("DescribePipelineExecution %s: unknown status %s", arn, st ? st : "(none)");
    if (reason) {
        const char *r = json_string_value(json_object_get(j, "FailureReason"));
        *reason = r ? strdup(r) : NULL;
    }
    json_decref(j);
    return out;
}

/* The steps of an execution: how many, the first one's status and FailureReason (copied into the buffers). */
static size_t exec_steps(bench_client *c, const char *arn, char *status, size_t scap, char *reason, size_t rcap)
{
    json_t *j = sm(c, "ListPipelineExecutionSteps", json_pack("{s:s}", "PipelineExecutionArn", arn), NULL);
    json_t *steps = json_object_get(j, "PipelineExecutionSteps");
    if (!json_is_array(steps))
        bench_fail("ListPipelineExecutionSteps %s: no PipelineExecutionSteps", arn);
    size_t n = json_array_size(steps);
    json_t *s0 = json_array_get(steps, 0);
    const char *st = json_string_value(json_object_get(s0, "StepStatus"));
    const char *re = json_string_value(json_object_get(s0, "FailureReason"));
    snprintf(status, scap, "%s", st ? st : "");
    snprintf(reason, rcap, "%s", re ? re : "");
    json_decref(j);
    return n;
}

typedef struct listed {
    char *arn;
    char status[16];
    char *reason;
} listed;

static int cmp_listed(const void *a, const void *b) { return strcmp(((const listed *)a)->arn, ((const listed *)b)->arn); }

static void listed_free(listed *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].arn);
        free(v[i].reason);
    }
    free(v);
}

/* Every execution of a pipeline, paging ListPipelineExecutions by 100;
 * *pages is how many requests it took. */
static listed *list_execs(bench_client *c, const char *pipeline, size_t *n, size_t *pages)
{
    listed *v = NULL;
    size_t cap = 0;
    *n = 0;
    *pages = 0;
    char *token = NULL;
    do {
        json_t *body = json_pack("{s:s,s:i}", "PipelineName", pipeline, "MaxResults", 100);
        if (token)
            json_object_set_new(body, "NextToken", json_string(token));
        free(token);
        token = NULL;
        json_t *j = sm(c, "ListPipelineExecutions", body, NULL);
        (*pages)++;
        json_t *arr = json_object_get(j, "PipelineExecutionSummaries");
        if (!json_is_array(arr))
            bench_fail("ListPipelineExecutions: no PipelineExecutionSummaries");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
        {
            const char *arn = json_string_value(json_object_get(e, "PipelineExecutionArn"));
            const char *st = json_string_value(json_object_get(e, "PipelineExecutionStatus"));
            const char *re = json_string_value(json_object_get(e, "PipelineExecutionFailureReason"));
            if (!arn || !st)
                bench_fail("ListPipelineExecutions: a summary without ARN or status");
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                listed *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    bench_die("out of memory");
                v = nv;
            }
            v[*n].arn = strdup(arn);
            snprintf(v[*n].status, sizeof v[*n].status, "%s", st);
            v[*n].reason = re ? strdup(re) : NULL;
            (*n)++;
        }
        const char *t = json_string_value(json_object_get(j, "NextToken"));
        token = t ? strdup(t) : NULL;
        json_decref(j);
        if (*pages > 100000)
            bench_fail("ListPipelineExecutions does not stop paging");
    } while (token);
    return v;
}

/* ------------------------------------------------------------------ /proc */

/* The children of every thread of pid (the runner forks the steps); fills up to cap pids. */
static size_t server_children(pid_t pid, pid_t *out, size_t cap, bool *supported)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    size_t n = 0;
    *supported = false;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char cp[300];
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", (int)pid, de->d_name);
        FILE *f = fopen(cp, "r");
        if (!f)
            continue;
        *supported = true;
        long v;
        while (fscanf(f, "%ld", &v) == 1) {
            if (n < cap)
                out[n] = (pid_t)v;
            n++;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* The soft "Max open files" of a process; -1 when unreadable or unlimited. */
static long max_open_files(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Max open files", 14)) {
            char *end;
            long x = strtol(line + 14, &end, 10);
            if (end != line + 14)
                v = x;
        }
    fclose(f);
    return v;
}

static long count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ phase 1: latency */

/* fork + execve of this program in mark mode with the environment a step gets. */
static uint64_t spawn_floor_once(const char *markdir, size_t i, int ifd)
{
    char id[32], env0[PATH_MAX + 32];
    snprintf(id, sizeof id, "floor-%zu", i);
    snprintf(env0, sizeof env0, "%s=%s", BENCH_MARK_ENV, markdir);
    char *argv[] = {g_self, "--mark", id, NULL};
    char *envp[] = {env0, NULL};
    uint64_t t0 = bench_real_ns();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        execve(g_self, argv, envp);
        _exit(127);
    }
    uint64_t m = bench_wait_mark(ifd, markdir, id, 30);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_fail("the mark program exited with status 0x%x", st);
    return m - t0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
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

static void phase_latency(const char *bin, size_t n)
{
    char dir[PATH_MAX], markdir[PATH_MAX];
    new_dir(dir, sizeof dir, "latency");
    new_dir(markdir, sizeof markdir, "marks");
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0 || inotify_add_watch(ifd, markdir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        bench_die("inotify on %s: %s", markdir, strerror(errno));

    /* the floor: the same program started by a small process, no server */
    size_t nfloor = n < 50 ? n : 50;
    uint64_t *floor = calloc(nfloor, sizeof *floor);
    if (!floor)
        bench_die("out of memory");
    spawn_floor_once(markdir, 9999, ifd); /* warm the page cache */
    for (size_t i = 0; i < nfloor; i++)
        floor[i] = spawn_floor_once(markdir, i, ifd);

    loglat ll;
    loglat_init(&ll);
    bench_server srv;
    bench_server_start(&srv, bin, dir, log_hook, &ll);
    printf("# latency: server %s pid %d on 127.0.0.1:%d, data in %s, marks in %s\n", bin, (int)srv.pid, srv.port, dir,
           markdir);
    fflush(stdout);
    bench_client c;
    bench_client_open(&c, srv.port, &bench_sagemaker);
    json_t *entry = json_pack("[s,s,{s:s}]", g_self, "--mark", "Get", "Execution.PipelineExecutionId");
    create_pipeline(&c, "bench-latency", entry, json_pack("{s:s}", BENCH_MARK_ENV, markdir));

    uint64_t *lat = calloc(n, sizeof *lat), *rtt = calloc(n, sizeof *rtt), *succ = calloc(n, sizeof *succ);
    int64_t *after = calloc(n, sizeof *after);
    if (!lat || !rtt || !succ || !after)
        bench_die("out of memory");
    size_t polls = 0;
    size_t log_first = 0;
    double t_begin = bench_now_s();
    for (size_t i = 0; i <= n; i++) { /* i == 0: the warm-up */
        if (i == 1) {
            pthread_mutex_lock(&ll.mu);
            log_first = ll.n;
            pthread_mutex_unlock(&ll.mu);
        }
        uint64_t l, t0 = bench_real_ns();
        char *arn = start_exec(&c, "bench-latency", "lat", i, &l);
        uint64_t t1 = bench_real_ns();
        const char *id = exec_id(arn);
        uint64_t m = bench_wait_mark(ifd, markdir, id, 30);
        const char *st;
        char *reason = NULL;
        while (!strcmp((st = exec_status(&c, arn, &reason)), "Executing")) {
            free(reason);
            reason = NULL;
            polls++;
            sleep_ms(1);
        }
        uint64_t t2 = bench_real_ns();
        if (strcmp(st, "Succeeded"))
            bench_fail("execution %s ended %s: %s", arn, st, reason ? reason : "(no reason)");
        free(reason);
        if (i == 0) {
            printf("# warm-up execution (not counted): step running after %.3fms, Succeeded seen after %.3fms\n",
                   (double)(m - t0) / 1e6, (double)(t2 - t0) / 1e6);
        } else {
            lat[i - 1] = m - t0;
            rtt[i - 1] = l;
            after[i - 1] = (int64_t)(m - t1);
            succ[i - 1] = t2 - t0;
        }
        free(arn);
    }
    double wall = bench_now_s() - t_begin;
    double s50, s99;
    size_t ns;
    logged_start_pcts(&ll, log_first, n, &s50, &s99, &ns);

    char tail[256];
    qsort(lat, n, sizeof *lat, bench_cmp_u64);
    bool met = bench_pct_ms(lat, n, 0.50) <= 5.0;
    snprintf(tail, sizeof tail, ", sequential; target p50 <= 5ms: %s", met ? "met" : "MISSED");
    print_pcts("start_to_step_running", lat, n, tail);
    print_pcts("#   StartPipelineExecution round trip (client)", rtt, n, "");
    printf("#   StartPipelineExecution in the server's request log: p50=%.3fms p99=%.3fms (n=%zu)\n", s50, s99, ns);
    /* answer-to-mark can be negative: the runner is woken before the answer is sent */
    qsort(after, n, sizeof *after, cmp_i64);
    size_t neg = 0;
    for (size_t i = 0; i < n; i++)
        neg += after[i] < 0;
    size_t r50 = (n + 1) / 2, r99 = (size_t)(0.99 * (double)n + 0.999999999);
    printf("#   answer received to step running: p50=%.3fms p99=%.3fms (%zu of %zu started before the answer "
           "arrived)\n",
           (double)after[r50 - 1] / 1e6, (double)after[(r99 ? r99 : 1) - 1] / 1e6, neg, n);
    print_pcts("#   process start floor (fork+execve of the same mark program by this bench, no server)", floor,
               nfloor, "");
    print_pcts("start_to_succeeded", succ, n, ", seen by DescribePipelineExecution polled every 1ms");
    printf("#   %zu executions in %.2fs, %zu extra DescribePipelineExecution polls\n", n + 1, wall, polls);
    printf("#   rss after %zu executions: %.1fMB (peak %.1fMB)\n", n + 1, bench_proc_kb(srv.pid, "VmRSS") / 1024.0,
           bench_proc_kb(srv.pid, "VmHWM") / 1024.0);
    bench_client_close(&c);
    bench_server_stop(&srv);
    report_server_errors(&ll, &srv);
    fflush(stdout);
    loglat_free(&ll);
    close(ifd);
    free(lat);
    free(rtt);
    free(succ);
    free(after);
    free(floor);
}

/* ------------------------------------------------------------------ phase 2: throughput */

typedef struct starter {
    int port;
    const char *pipeline;
    size_t first, count;
    char **arns;   /* [first, first+count) filled */
    uint64_t *lat; /* likewise */
} starter;

static void *starter_main(void *arg)
{
    starter *s = arg;
    bench_client c;
    bench_client_open(&c, s->port, &bench_sagemaker);
    for (size_t i = s->first; i < s->first + s->count; i++)
        s->arns[i] = start_exec(&c, s->pipeline, "tput", i, &s->lat[i]);
    bench_client_close(&c);
    return NULL;
}

typedef struct watcher {
    pid_t pid;
    atomic_bool quit;
    size_t peak;     /* most children seen at once */
    double t_peak;   /* monotonic s */
    bool supported;
} watcher;

static void *watcher_main(void *arg)
{
    watcher *w = arg;
    pid_t buf[4096];
    while (!atomic_load(&w->quit)) {
        bool sup;
        size_t n = server_children(w->pid, buf, sizeof buf / sizeof buf[0], &sup);
        w->supported |= sup;
        if (n > w->peak) {
            w->peak = n;
            w->t_peak = bench_now_s();
        }
        sleep_ms(5);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void phase_throughput(const char *bin, size_t m, int conns, double wait_s)
{
    char dir[PATH_MAX];
    new_dir(dir, sizeof dir, "throughput");
    loglat ll;
    loglat_init(&ll);
    bench_server srv;
    bench_server_start(&srv, bin, dir, log_hook, &ll);
    printf("# throughput: server pid %d on 127.0.0.1:%d, data in %s\n", (int)srv.pid, srv.port, dir);
    fflush(stdout);
    bench_client c;
    bench_client_open(&c, srv.port, &bench_sagemaker);
    create_pipeline(&c, "bench-throughput", json_pack("[s]", "/bin/true"), NULL);

    char **arns = calloc(m, sizeof *arns);
    uint64_t *lat = calloc(m, sizeof *lat);
    if (!arns || !lat)
        bench_die("out of memory");
    starter st[MAX_CONNS];
    pthread_t th[MAX_CONNS], wth;
    size_t per = m / (size_t)conns, at = 0;
    for (int k = 0; k < conns; k++) {
        size_t cnt = k == conns - 1 ? m - at : per;
        st[k] = (starter){.port = srv.port, .pipeline = "bench-throughput", .first = at, .count = cnt, .arns = arns,
                          .lat = lat};
        at += cnt;
    }
    watcher w = {.pid = srv.pid};
    atomic_init(&w.quit, false);
    if (pthread_create(&wth, NULL, watcher_main, &w))
        bench_die("pthread_create failed");
    pthread_mutex_lock(&ll.mu);
    size_t log_first = ll.n;
    pthread_mutex_unlock(&ll.mu);
    double cpu0 = bench_proc_cpu_s(srv.pid);
    double t0 = bench_now_s();
    for (int k = 0; k < conns; k++)
        if (pthread_create(&th[k], NULL, starter_main, &st[k]))
            bench_die("pthread_create failed");
    for (int k = 0; k < conns; k++)
        pthread_join(th[k], NULL);
    double t_started = bench_now_s();

    /* poll until nothing is Executing */
    listed *v = NULL;
    size_t nv = 0, pages = 0, rounds = 0, max_exec_seen = 0;
    double t_done = 0, poll_time = 0;
    for (;;) {
        double tp = bench_now_s();
        listed_free(v, nv);
        v = list_execs(&c, "bench-throughput", &nv, &pages);
        poll_time += bench_now_s() - tp;
        rounds++;
        size_t executing = 0;
        for (size_t i = 0; i < nv; i++)
            executing += !strcmp(v[i].status, "Executing") || !strcmp(v[i].status, "Stopping");
        if (executing > max_exec_seen)
            max_exec_seen = executing;
        if (!executing && nv >= m) {
            t_done = bench_now_s();
            break;
        }
        if (bench_now_s() - t0 > wait_s) {
            bench_server_dump_tail(&srv);
            bench_fail("after %.0fs, %zu of %zu listed executions are still Executing (%zu listed)", wait_s, executing,
                       m, nv);
        }
        sleep_ms(50);
    }
    double cpu1 = bench_proc_cpu_s(srv.pid);
    atomic_store(&w.quit, true);
    pthread_join(wth, NULL);

    /* nothing lost, nothing extra, every one Succeeded */
    qsort(v, nv, sizeof *v, cmp_listed);
    char **sorted = malloc(m * sizeof *sorted);
    if (!sorted)
        bench_die("out of memory");
    memcpy(sorted, arns, m * sizeof *sorted);
    qsort(sorted, m, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < m; i++)
        if (!strcmp(sorted[i], sorted[i - 1]))
            bench_fail("two StartPipelineExecution answered the same ARN %s", sorted[i]);
    size_t lost = 0, extra = 0, failed = 0, other = 0;
    for (size_t i = 0, j = 0; i < m || j < nv;) {
        int cmp = i == m ? 1 : j == nv ? -1 : strcmp(sorted[i], v[j].arn);
        if (cmp < 0) {
            if (lost++ < 10)
                printf("# LOST: %s was started but is not listed\n", sorted[i]);
            i++;
        } else if (cmp > 0) {
            if (extra++ < 10)
                printf("# EXTRA: %s is listed but was not started\n", v[j].arn);
            j++;
        } else {
            if (!strcmp(v[j].status, "Failed")) {
                if (failed++ < 10) {
                    char ss[32], sr[1400];
                    exec_steps(&c, v[j].arn, ss, sizeof ss, sr, sizeof sr);
                    printf("# FAILED: %s: %s; step: %s %s\n", v[j].arn, v[j].reason ? v[j].reason : "(no reason)", ss,
                           sr);
                }
            } else if (strcmp(v[j].status, "Succeeded")) {
                if (other++ < 10)
                    printf("# NOT SUCCEEDED: %s is %s\n", v[j].arn, v[j].status);
            }
            i++;
            j++;
        }
    }
    /* each execution: one step, Succeeded */
    size_t bad_steps = 0;
    double ts0 = bench_now_s();
    for (size_t i = 0; i < m; i++) {
        char ss[32], sr[1400];
        size_t k = exec_steps(&c, arns[i], ss, sizeof ss, sr, sizeof sr);
        if (k != 1 || strcmp(ss, "Succeeded")) {
            if (bad_steps++ < 10)
                printf("# BAD STEPS: %s has %zu step(s), the first %s %s\n", arns[i], k, ss, sr);
        }
    }
    double t_steps = bench_now_s() - ts0;

    double s50, s99;
    size_t ns;
    logged_start_pcts(&ll, log_first, m, &s50, &s99, &ns);
    qsort(lat, m, sizeof *lat, bench_cmp_u64);
    double start_wall = t_started - t0;
    printf("StartPipelineExecution_%zu %.0f req/s p50=%.3fms p99=%.3fms (n=%zu, %d conn, max=%.3fms, %.2fs; "
           "server log p50=%.3fms p99=%.3fms)\n",
           m, (double)m / start_wall, bench_pct_ms(lat, m, 0.50), bench_pct_ms(lat, m, 0.99), m, conns,
           (double)lat[m - 1] / 1e6, start_wall, s50, s99);
    printf("all_%zu_succeeded %.2fs (first start to the first poll that saw none Executing; %.2fs after the last "
           "start answered; %.0f executions/s)\n",
           m, t_done - t0, t_done - t_started, (double)m / (t_done - t0));
    printf("#   listed %zu, lost %zu, extra %zu, failed %zu, other %zu, bad steps %zu: %s\n", nv, lost, extra, failed,
           other, bad_steps, lost || extra || failed || other || bad_steps ? "NOT OK" : "ok, nothing lost");
    printf("#   polling: %zu rounds of %zu pages, %.1fms per round; most Executing seen by a poll: %zu\n", rounds,
           pages, poll_time / (double)rounds * 1000, max_exec_seen);
    if (w.supported)
        printf("#   peak step processes alive at once (sampled every 5ms): %zu, at t=+%.2fs\n", w.peak, w.t_peak - t0);
    else
        printf("#   peak step processes: not measurable (/proc/PID/task/TID/children missing)\n");
    if (cpu0 >= 0 && cpu1 >= 0)
        printf("#   server CPU %.2fs over %.2fs (%.2fms per execution)\n", cpu1 - cpu0, t_done - t0,
               (cpu1 - cpu0) / (double)m * 1000);
    printf("#   checked the steps of all %zu executions in %.2fs; server rss %.1fMB, peak %.1fMB\n", m, t_steps,
           bench_proc_kb(srv.pid, "VmRSS") / 1024.0, bench_proc_kb(srv.pid, "VmHWM") / 1024.0);
    bench_client_close(&c);
    bench_server_stop(&srv);
    report_server_errors(&ll, &srv);
    fflush(stdout);
    if (lost || extra || failed || other || bad_steps)
        bench_fail("%zu of %zu executions did not end Succeeded with their step (lost %zu, extra %zu, failed %zu, "
                   "other %zu, bad steps %zu); data left in %s",
                   lost + extra + failed + other + bad_steps, m, lost, extra, failed, other, bad_steps, dir);
    for (size_t i = 0; i < m; i++)
        free(arns[i]);
    free(arns);
    free(sorted);
    free(lat);
    listed_free(v, nv);
    loglat_free(&ll);
}

/* ------------------------------------------------------------------ phase 3: rss */

/* Starts r sleepers, waits until every step is Executing; returns the ARNs. */
static char **start_sleepers(bench_client *c, bench_server *srv, size_t r, size_t round, double *t_start,
                             double *t_running)
{
    char **arns = calloc(r, sizeof *arns);
    bool *running = calloc(r, sizeof *running);
    if (!arns || !running)
        bench_die("out of memory");
    char tag[32];
    snprintf(tag, sizeof tag, "rss%zu", round);
    double t0 = bench_now_s();
    for (size_t i = 0; i < r; i++) {
        uint64_t l;
        arns[i] = start_exec(c, "bench-rss", tag, i, &l);
    }
    *t_start = bench_now_s() - t0;
    size_t left = r;
    while (left) {
        for (size_t i = 0; i < r; i++) {
            if (running[i])
                continue;
            char ss[32], sr[1400];
            size_t k = exec_steps(c, arns[i], ss, sizeof ss, sr, sizeof sr);
            if (k == 1 && !strcmp(ss, "Executing")) {
                running[i] = true;
                left--;
            } else if (k > 1 || (k == 1 && strcmp(ss, "Starting"))) {
                bench_fail("execution %s: its step is %s %s (expected Executing)", arns[i], ss, sr);
            }
        }
        if (left && bench_now_s() - t0 > 120) {
            bench_server_dump_tail(srv);
            bench_fail("after 120s %zu of %zu steps are not Executing", left, r);
        }
        if (left)
            sleep_ms(20);
    }
    *t_running = bench_now_s() - t0;
    free(running);
    return arns;
}

/* Stops every execution and waits until all are Stopped; returns the seconds. */
static double stop_all(bench_client *c, char **arns, size_t r)
{
    double t0 = bench_now_s();
    for (size_t i = 0; i < r; i++)
        json_decref(sm(c, "StopPipelineExecution",
                       json_pack("{s:s,s:s}", "PipelineExecutionArn", arns[i], "ClientRequestToken",
                                 "pipeline-bench-stop-0123456789abcdefghij"),
                       NULL));
    for (;;) {
        size_t n, pages, stopped = 0, other = 0;
        listed *v = list_execs(c, "bench-rss", &n, &pages);
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(v[i].status, "Stopped"))
                stopped++;
            else if (strcmp(v[i].status, "Stopping") && strcmp(v[i].status, "Executing"))
                other++;
        }
        listed_free(v, n);
        if (other)
            bench_fail("%zu executions ended neither Stopped nor Stopping after StopPipelineExecution", other);
        if (stopped == n)
            break;
        if (bench_now_s() - t0 > 60)
            bench_fail("after 60s only %zu of %zu executions are Stopped", stopped, n);
        sleep_ms(50);
    }
    return bench_now_s() - t0;
}

static void children_rss(pid_t spid, size_t *n, long *sum_kb)
{
    pid_t kids[8192];
    bool sup;
    size_t k = server_children(spid, kids, sizeof kids / sizeof kids[0], &sup);
    *sum_kb = 0;
    *n = k;
    for (size_t i = 0; i < k && i < sizeof kids / sizeof kids[0]; i++)
        *sum_kb += bench_proc_kb(kids[i], "VmRSS");
}

static void phase_rss(const char *bin, size_t r)
{
    char dir[PATH_MAX];
    new_dir(dir, sizeof dir, "rss");
    loglat ll;
    loglat_init(&ll);
    bench_server srv;
    bench_server_start(&srv, bin, dir, log_hook, &ll);
    printf("# rss: server pid %d on 127.0.0.1:%d, data in %s\n", (int)srv.pid, srv.port, dir);
    fflush(stdout);
    bench_client c;
    bench_client_open(&c, srv.port, &bench_sagemaker);
    create_pipeline(&c, "bench-rss", json_pack("[s,s]", "/bin/sleep", "60"), NULL);
    long rss0 = bench_proc_kb(srv.pid, "VmRSS"), fds0 = count_fds(srv.pid);
    long thr0 = bench_proc_kb(srv.pid, "Threads");

    double t_start, t_run;
    char **arns = start_sleepers(&c, &srv, r, 1, &t_start, &t_run);
    long rss1 = bench_proc_kb(srv.pid, "VmRSS"), fds1 = count_fds(srv.pid);
    long thr1 = bench_proc_kb(srv.pid, "Threads");
    size_t kids;
    long kids_kb;
    children_rss(srv.pid, &kids, &kids_kb);
    printf("rss_per_running_execution %.1fKiB (server VmRSS %.1fMB -> %.1fMB with %zu executions running; "
           "%.2f fds/execution; threads %ld -> %ld)\n",
           (double)(rss1 - rss0) / (double)r, rss0 / 1024.0, rss1 / 1024.0, r,
           (double)(fds1 - fds0) / (double)r, thr0, thr1);
    printf("#   %zu started in %.2fs, all steps Executing after %.2fs; %zu step processes, VmRSS %.0fKiB each "
           "(mostly shared pages of /bin/sleep and libc)\n",
           r, t_start, t_run, kids, kids ? (double)kids_kb / (double)kids : 0.0);
    long nofile = max_open_files(srv.pid);
    if (nofile > 0 && fds1 > fds0)
        printf("#   the server's soft open-files limit is %ld: with %ld fds open at %zu running, about %.0f steps "
               "can run at once before a step fails to start\n",
               nofile, fds1, r, (double)(nofile - fds0) / ((double)(fds1 - fds0) / (double)r));
    fflush(stdout);
    double t_stop = stop_all(&c, arns, r);
    long rss2 = bench_proc_kb(srv.pid, "VmRSS");
    printf("#   all %zu Stopped %.2fs after the first StopPipelineExecution; VmRSS then %.1fMB\n", r, t_stop,
           rss2 / 1024.0);
    for (size_t i = 0; i < r; i++)
        free(arns[i]);
    free(arns);

    /* once more: is the memory of the first round reused? */
    arns = start_sleepers(&c, &srv, r, 2, &t_start, &t_run);
    long rss3 = bench_proc_kb(srv.pid, "VmRSS");
    t_stop = stop_all(&c, arns, r);
    long rss4 = bench_proc_kb(srv.pid, "VmRSS");
    printf("#   second round of %zu: VmRSS %.1fMB while running (%+.1fKiB/execution over the first round), %.1fMB "
           "after stopping; peak %.1fMB\n",
           r, rss3 / 1024.0, (double)(rss3 - rss1) / (double)r, rss4 / 1024.0,
           bench_proc_kb(srv.pid, "VmHWM") / 1024.0);
    for (size_t i = 0; i < r; i++)
        free(arns[i]);
    free(arns);
    bench_client_close(&c);
    bench_server_stop(&srv);
    report_server_errors(&ll, &srv);
    fflush(stdout);
    loglat_free(&ll);
}

/* ------------------------------------------------------------------ main */

static const char usage[] =
    "usage: pipeline_bench [PIPEBRIDGE] [--quick] [-n N] [--executions M] [--running R] [--conns K]\n"
    "                      [--only latency|throughput|rss] [--wait S] [--tmpdir DIR] [--keep]\n"
    "       pipeline_bench --mark EXECUTION_ID      (the step's program; see the source)\n"
    "\n"
    "  PIPEBRIDGE        server binary to start (default build/pipebridge)\n"
    "  --quick           a smaller run: -n 50 --executions 100 --running 20\n"
    "  -n N              sequential executions of the latency phase (default 200)\n"
    "  --executions M    executions started at once in the throughput phase (default 1000)\n"
    "  --running R       sleeping executions for the RSS figure (default 200)\n"
    "  --conns K         connections (threads) that start the M executions (default 4)\n"
    "  --only PHASE      run one phase\n"
    "  --wait S          how long the M executions may take to end (default 300 s)\n"
    "  --tmpdir DIR      where the data directories are made (default $TMPDIR or /tmp)\n"
    "  --keep            keep the data directories\n";

int main(int argc, char **argv)
{
    struct timespec t_main;
    clock_gettime(CLOCK_REALTIME, &t_main); /* mark mode: the first thing the step does */
    if (argc == 3 && !strcmp(argv[1], "--mark"))
        return bench_mark_main("pipeline_bench", argv[2], &t_main);

    bench_set_name("pipeline_bench");
    const char *bin = "build/pipebridge", *only = NULL;
    size_t n = 200, m = 1000, r = 200;
    int conns = 4;
    double wait_s = 300;
    bool quick = false, n_set = false, m_set = false, r_set = false;
    if (getenv("TMPDIR") && *getenv("TMPDIR"))
        g_tmpdir = getenv("TMPDIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool hasv = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (!strcmp(a, "-n") && hasv) {
            n = strtoull(argv[++i], NULL, 10);
            n_set = true;
        } else if (!strcmp(a, "--executions") && hasv) {
            m = strtoull(argv[++i], NULL, 10);
            m_set = true;
        } else if (!strcmp(a, "--running") && hasv) {
            r = strtoull(argv[++i], NULL, 10);
            r_set = true;
        } else if (!strcmp(a, "--conns") && hasv) {
            conns = atoi(argv[++i]);
        } else if (!strcmp(a, "--only") && hasv) {
            only = argv[++i];
        } else if (!strcmp(a, "--wait") && hasv) {
            wait_s = atof(argv[++i]);
        } else if (!strcmp(a, "--tmpdir") && hasv) {
            g_tmpdir = argv[++i];
        } else if (!strcmp(a, "--keep")) {
            g_keep = true;
        } else if (a[0] != '-') {
            bin = a;
        } else {
            fprintf(stderr, "pipeline_bench: bad option %s\n%s", a, usage);
            return 2;
        }
    }
    if (quick) {
        n = n_set ? n : 50;
        m = m_set ? m : 100;
        r = r_set ? r : 20;
    }
    if (n < 1 || n > 100000 || m < 1 || m > 100000 || r < 1 || r > 5000 || conns < 1 || conns > MAX_CONNS ||
        wait_s <= 0 ||
        (only && strcmp(only, "latency") && strcmp(only, "throughput") && strcmp(only, "rss"))) {
        fprintf(stderr, "pipeline_bench: -n is 1..100000, --executions 1..100000, --running 1..5000, --conns "
                        "1..16, --only latency|throughput|rss\n");
        return 2;
    }
    ssize_t sl = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (sl <= 0)
        bench_die("cannot read /proc/self/exe: %s", strerror(errno));
    g_self[sl] = '\0';
    if (strlen(g_self) > 256)
        bench_die("this program's path %s is longer than the 256 characters an entrypoint item may have", g_self);
    signal(SIGPIPE, SIG_IGN);

    if (!only || !strcmp(only, "latency"))
        phase_latency(bin, n);
    if (!only || !strcmp(only, "throughput"))
        phase_throughput(bin, m, conns, wait_s);
    if (!only || !strcmp(only, "rss"))
        phase_rss(bin, r);
    for (size_t i = 0; i < g_ndirs && !g_keep; i++)
        bench_rm_tree(g_dirs[i]);
    printf("# all requests answered 200; every execution ended as expected; counts ok\n");
    return 0;
}
