/*
 * bench_client.h — what the HTTP benchmarks (api_bench, pipeline_bench,
 * ingest_bench) share: starting and stopping the real server as a child
 * process, reading its memory and CPU from /proc, a minimal keep-alive
 * HTTP/1.1 client that signs every request with pb_sigv4_sign, and the
 * "mark mode" of a bench program that a pipeline step runs to say when it
 * started.
 *
 * The server is `BIN serve --listen 127.0.0.1:0 --data-dir DIR`; its port is
 * read from the "pipebridge listening on http://HOST:PORT" line on its
 * stderr, which a thread keeps draining (the last lines are kept for error
 * messages, and an optional hook sees every line).
 *
 * The client: one request written with one send, the status line, the
 * headers and a Content-Length body read back over plain sockets
 * (TCP_NODELAY). Every request is `POST /`, Content-Type
 * application/x-amz-json-1.1, X-Amz-Target <prefix>.<Op>, signed (test/test,
 * us-east-1, the service's signing name) over host, x-amz-date,
 * x-amz-target and content-type. A closed connection, a chunked answer or a
 * "Connection: close" fails the bench.
 *
 * Failures: bench_fail() prints "<prog>: FAILED: ...", kills a started
 * server (so none is left behind) and exits 1; bench_die() is for the
 * bench's own errors (also exit 1). Neither returns. Not for unit tests:
 * everything here exits on error.
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <jansson.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ------------------------------------------------------------------ util */

/* The program name that prefixes messages (default "bench"); borrowed. */
void bench_set_name(const char *prog);

double bench_now_s(void);    /* CLOCK_MONOTONIC, seconds */
uint64_t bench_now_ns(void); /* CLOCK_MONOTONIC, nanoseconds */

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* qsort comparator for uint64_t, and the nearest-rank percentile q of a
 * sorted array of nanoseconds, in milliseconds. */
int bench_cmp_u64(const void *a, const void *b);
double bench_pct_ms(const uint64_t *sorted, size_t n, double q);

/* mkdtemp "<tmpdir>/<prog>-<tag>-XXXXXX" into out; removes a tree. */
void bench_make_dir(char *out, size_t cap, const char *tmpdir, const char *tag);
void bench_rm_tree(const char *dir);

/* ------------------------------------------------------------------ mark mode */

/* A pipeline step whose entrypoint is `<bench> --mark ID` (with
 * BENCH_MARK_ENV=DIR in its Environment) writes the CLOCK_REALTIME
 * nanoseconds t, read first thing in main, to DIR/ID (a temporary name, then
 * rename; DIR defaults to "."). ID is 1..128 of [A-Za-z0-9-]. Returns the
 * exit status: 0, or 3 with "<who> --mark: ..." on stderr. */
#define BENCH_MARK_ENV "PB_BENCH_MARK_DIR"
int bench_mark_main(const char *who, const char *id, const struct timespec *t);

uint64_t bench_real_ns(void); /* CLOCK_REALTIME, nanoseconds (what marks hold) */

/* The mark DIR/ID, 0 while there is none. */
uint64_t bench_read_mark(const char *dir, const char *id);

/* Waits for the mark DIR/ID; ifd is an inotify descriptor watching DIR
 * (IN_MOVED_TO). Fails the bench after timeout_s. */
uint64_t bench_wait_mark(int ifd, const char *dir, const char *id, double timeout_s);

/* ------------------------------------------------------------------ the server process */

#define BENCH_TAIL_LINES 12

/* Called by the drain thread for every line of the server's stderr (without
 * the newline); must be thread-safe with respect to the bench's threads. */
typedef void (*bench_line_hook)(void *user, const char *line, size_t len);

typedef struct bench_server {
    pid_t pid;
    int errfd;
    pthread_t drain;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;               /* 0 until the listening line was seen */
    bool eof;
    double t_exec;          /* monotonic s, just before fork */
    double t_listen;        /* monotonic s, when the listening line was read */
    unsigned long lines;    /* lines read */
    unsigned long errors;   /* of which logged at level "error" */
    char tail[BENCH_TAIL_LINES][400];
    unsigned ntail;
    bench_line_hook hook;   /* optional */
    void *hook_user;
} bench_server;

/* Starts BIN serve on DIR and waits (at most 120 s) for the listening line;
 * hook (may be NULL) sees every line. */
void bench_server_start(bench_server *s, const char *bin, const char *dir, bench_line_hook hook, void *user);

/* The same with more arguments after those (NULL-terminated; at most 25),
 * e.g. {"--max-connections", "64", NULL}. */
void bench_server_start_args(bench_server *s, const char *bin, const char *dir, const char *const *extra,
                             bench_line_hook hook, void *user);

/* SIGTERM, wait; the server must exit 0 (bench_fail otherwise). Returns the
 * seconds it took. */
double bench_server_stop(bench_server *s);

/* Prints the server's last lines on stderr. */
void bench_server_dump_tail(bench_server *s);

/* The started server's pid, -1 when none runs. */
pid_t bench_server_pid(void);

/* A /proc/PID/status field in kB (VmRSS, VmHWM, ...); 0 when unreadable. */
long bench_proc_kb(pid_t pid, const char *field);

/* utime+stime of a process in seconds; -1 when unreadable. */
double bench_proc_cpu_s(pid_t pid);

/* ------------------------------------------------------------------ the HTTP client */

typedef struct bench_service {
    const char *signing_name;  /* SigV4 service: "events", "sagemaker" */
    const char *target_prefix; /* X-Amz-Target prefix: "AWSEvents", "SageMaker" */
} bench_service;

extern const bench_service bench_events;    /* events, AWSEvents.<Op> */
extern const bench_service bench_sagemaker; /* sagemaker, SageMaker.<Op> */

typedef struct bench_client {
    int fd;
    int port;
    const bench_service *svc; /* borrowed */
    char host[64];
    char *rbuf;
    size_t rcap, rlen;
    size_t consumed; /* bytes of rbuf belonging to the previous response */
    const char *body; /* the last response's body (in rbuf, not terminated) */
    size_t blen;
    int status;       /* the last response's HTTP status */
    char req[16384];
    time_t date_t;
    char date[17];
} bench_client;

/* Connects to 127.0.0.1:port; svc is borrowed. */
void bench_client_open(bench_client *c, int port, const bench_service *svc);
void bench_client_close(bench_client *c);

/* One signed request <prefix>.<op> with body; fills c->status, c->body,
 * c->blen (valid until the next call). *lat_ns is send-to-last-byte. I/O or
 * protocol errors fail the bench. */
void bench_client_call(bench_client *c, const char *op, const char *body, size_t blen, uint64_t *lat_ns);

/* GET path (unsigned: /metrics, /healthz) on the same connection; fills
 * c->status, c->body, c->blen as bench_client_call. */
void bench_client_get(bench_client *c, const char *path, uint64_t *lat_ns);

/* Fails the bench unless the last answer was 200 (what: the request, shown). */
void bench_expect_200(const bench_client *c, const char *op, const char *what);

/* One request that must answer 200 with a JSON body; returns the parsed
 * body (the caller decrefs). lat may be NULL. */
json_t *bench_call_json(bench_client *c, const char *op, const char *body, uint64_t *lat);

#endif
