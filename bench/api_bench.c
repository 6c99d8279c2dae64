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
 * The HTTP client is a minimal one of its own over plain sockets: one
 * request written with one send, the status line, the headers and a
 * Content-Length body read back; every request is SigV4-signed with
 * pb_sigv4_sign (test/test, us-east-1, events) over host, x-amz-date,
 * x-amz-target and content-type. Latency is client-measured (CLOCK_MONOTONIC)
 * from just before the send to the last byte of the body; signing is outside
 * it but inside the req/s figure.
 */
#define _GNU_SOURCE
#include "api/pb_sigv4.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ACCESS_KEY
#define ACCESS_KEY "test"
#endif
#ifndef SECRET_KEY
#define SECRET_KEY "test"
#endif
#define REGION "us-east-1"
#define SERVICE "events"
#define START_TIMEOUT_S 120.0

/* ------------------------------------------------------------------ util */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("api_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Bench failures go through here so that a started server is not left behind. */
static pid_t g_child = -1;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("api_bench: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_child > 0)
        kill(g_child, SIGKILL);
    exit(1);
}

/* ------------------------------------------------------------------ the server process */

#define TAIL_LINES 12

typedef struct server {
    pid_t pid;
    int errfd;
    pthread_t drain;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;       /* 0 until the listening line was seen */
    bool eof;
    double t_exec;  /* monotonic, just before fork */
    double t_listen;
    unsigned long lines;
    char tail[TAIL_LINES][400];
    unsigned ntail;
} server;

static void *drain_main(void *arg)
{
    server *s = arg;
    char buf[65536];
    char line[4096];
    size_t ll = 0;
    for (;;) {
        ssize_t n = read(s->errfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c != '\n') {
                if (ll + 1 < sizeof line)
                    line[ll++] = c;
                continue;
            }
            line[ll] = '\0';
            size_t ll_line = ll;
            ll = 0;
            pthread_mutex_lock(&s->mu);
            s->lines++;
            size_t keep = ll_line < sizeof s->tail[0] - 1 ? ll_line : sizeof s->tail[0] - 1;
            memcpy(s->tail[s->ntail % TAIL_LINES], line, keep);
            s->tail[s->ntail++ % TAIL_LINES][keep] = '\0';
            const char *p = s->port ? NULL : strstr(line, "pipebridge listening on http://");
            if (p) {
                p += strlen("pipebridge listening on http://");
                const char *colon = strchr(p, ':');
                long port = colon ? strtol(colon + 1, NULL, 10) : 0;
                if (port > 0 && port < 65536) {
                    s->t_listen = now_s();
                    s->port = (int)port;
                    pthread_cond_broadcast(&s->cv);
                }
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->eof = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void server_dump_tail(server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned first = s->ntail > TAIL_LINES ? s->ntail - TAIL_LINES : 0;
    for (unsigned i = first; i < s->ntail; i++)
        fprintf(stderr, "  server> %s\n", s->tail[i % TAIL_LINES]);
    pthread_mutex_unlock(&s->mu);
}

/* Starts BIN serve on DIR and waits for the listening line. */
static void server_start(server *s, const char *bin, const char *dir)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        die("pipe: %s", strerror(errno));
    s->t_exec = now_s();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], 2);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 1);
        }
        execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, (char *)NULL);
        fprintf(stderr, "api_bench: cannot exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    g_child = pid;
    s->errfd = p[0];
    if (pthread_create(&s->drain, NULL, drain_main, s))
        die("pthread_create failed");
    pthread_mutex_lock(&s->mu);
    while (!s->port && !s->eof) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        if (now_s() - s->t_exec > START_TIMEOUT_S)
            break;
    }
    bool ok = s->port != 0;
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        server_dump_tail(s);
        fail("the server (%s) did not print its listening line", bin);
    }
}

/* SIGTERM, wait; the server must exit 0. Returns the seconds it took. */
static double server_stop(server *s)
{
    double t0 = now_s();
    kill(s->pid, SIGTERM);
    int st = 0;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    double t = now_s() - t0;
    g_child = -1;
    pthread_join(s->drain, NULL);
    close(s->errfd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        server_dump_tail(s);
        fail("the server did not exit cleanly on SIGTERM (status 0x%x)", st);
    }
    return t;
}

/* VmRSS / VmHWM of a process, in kB (0 when unreadable). */
static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long kb = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* utime+stime of a process in seconds (-1 when unreadable). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* fields 3.. after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------ the HTTP client */

typedef struct client {
    int fd;
    int port;
    char host[64];
    char *rbuf;
    size_t rcap, rlen;
    size_t consumed; /* bytes of rbuf belonging to the previous response */
    const char *body;
    size_t blen;
    int status;
    char req[16384];
    time_t date_t;
    char date[17];
} client;

static void client_open(client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    snprintf(c->host, sizeof c->host, "127.0.0.1:%d", port);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        fail("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a))
        fail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rcap = 1 << 16;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf)
        die("out of memory");
}

static void client_close(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    c->fd = -1;
    c->rbuf = NULL;
}

static const char *find_header_end(const char *p, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return p + i + 1;
    return NULL;
}

static int recv_more(client *c)
{
    if (c->rlen == c->rcap) {
        size_t nc = c->rcap * 2;
        char *nb = realloc(c->rbuf, nc);
        if (!nb)
            return -1;
        c->rbuf = nb;
        c->rcap = nc;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c->rlen += (size_t)n;
        return 0;
    }
}

/*
 * One signed request AWSEvents.<op> with body; fills c->status, c->body,
 * c->blen. *lat_ns is send-to-last-byte. I/O or protocol errors fail().
 */
static void client_call(client *c, const char *op, const char *body, size_t blen, uint64_t *lat_ns)
{
    /* the previous response's bytes leave the buffer */
    if (c->consumed) {
        memmove(c->rbuf, c->rbuf + c->consumed, c->rlen - c->consumed);
        c->rlen -= c->consumed;
        c->consumed = 0;
    }
    time_t t = time(NULL);
    if (t != c->date_t) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(c->date, sizeof c->date, "%Y%m%dT%H%M%SZ", &tm);
        c->date_t = t;
    }
    char target[96];
    snprintf(target, sizeof target, "AWSEvents.%s", op);
    pb_sigv4_header h[4] = {
        {"Host", c->host},
        {"X-Amz-Date", c->date},
        {"X-Amz-Target", target},
        {"Content-Type", "application/x-amz-json-1.1"},
    };
    pb_sigv4_request r = {.method = "POST", .path = "/", .query = "", .headers = h, .nheaders = 4, .body = body,
                          .bodylen = blen};
    char auth[1024];
    if (pb_sigv4_sign(&r, ACCESS_KEY, SECRET_KEY, REGION, SERVICE, auth, sizeof auth))
        fail("pb_sigv4_sign refused the request");
    int hl = snprintf(c->req, sizeof c->req,
                      "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Date: %s\r\nX-Amz-Target: %s\r\n"
                      "Content-Type: application/x-amz-json-1.1\r\nAuthorization: %s\r\nContent-Length: %zu\r\n\r\n",
                      c->host, c->date, target, auth, blen);
    if (hl < 0 || (size_t)hl + blen > sizeof c->req)
        fail("request too large");
    memcpy(c->req + hl, body, blen);
    size_t total = (size_t)hl + blen, off = 0;

    uint64_t t0 = now_ns();
    while (off < total) {
        ssize_t n = send(c->fd, c->req + off, total - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("send (%s): %s", op, n < 0 ? strerror(errno) : "closed");
        off += (size_t)n;
    }
    const char *he;
    while (!(he = find_header_end(c->rbuf, c->rlen)))
        if (recv_more(c))
            fail("connection closed or failed while reading the %s response headers", op);
    size_t hdrlen = (size_t)(he - c->rbuf);
    /* status line */
    if (hdrlen < 12 || strncmp(c->rbuf, "HTTP/1.1 ", 9) != 0)
        fail("bad status line in the %s response", op);
    c->status = atoi(c->rbuf + 9);
    /* headers: Content-Length, Connection, Transfer-Encoding */
    long long clen = -1;
    bool close_conn = false;
    for (const char *p = memchr(c->rbuf, '\n', hdrlen) + 1; p < he - 2;) {
        const char *eol = memchr(p, '\n', (size_t)(he - p));
        if (!eol)
            break;
        if (!strncasecmp(p, "Content-Length:", 15))
            clen = strtoll(p + 15, NULL, 10);
        else if (!strncasecmp(p, "Connection:", 11) && strcasestr(p, "close") && strcasestr(p, "close") < eol)
            close_conn = true;
        else if (!strncasecmp(p, "Transfer-Encoding:", 18))
            fail("chunked responses are not supported by this client (%s)", op);
        p = eol + 1;
    }
    if (clen < 0)
        fail("no Content-Length in the %s response", op);
    while (c->rlen < hdrlen + (size_t)clen)
        if (recv_more(c))
            fail("connection closed or failed while reading the %s response body", op);
    *lat_ns = now_ns() - t0;
    c->body = c->rbuf + hdrlen;
    c->blen = (size_t)clen;
    c->consumed = hdrlen + (size_t)clen;
    if (close_conn)
        fail("the server closed the keep-alive connection after %s (Connection: close)", op);
}

static void expect_200(const client *c, const char *op, const char *what)
{
    if (c->status != 200)
        fail("%s %s: HTTP %d: %.*s", op, what, c->status, (int)(c->blen > 600 ? 600 : c->blen), c->body);
}

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
    client c;
    client_open(&c, p->port);
    const char *op = kind_op(p->kind);
    char body[512], name[128];
    for (size_t j = 0; j < p->count; j++) {
        size_t i = p->first + j;
        size_t bl = make_body(p->kind, p->prefix, i, body, sizeof body);
        client_call(&c, op, body, bl, &p->lat[j]);
        expect_200(&c, op, body);
        if (p->kind == K_DESCRIBE_SMALL || p->kind == K_DESCRIBE_EXACT) {
            /* the answer names the rule asked for */
            if (p->kind == K_DESCRIBE_SMALL)
                snprintf(name, sizeof name, "\"%s%zu\"", p->prefix, i);
            else
                snprintf(name, sizeof name, "\"%s%06zu\"", p->prefix, i);
            if (!memmem(c.body, c.blen, name, strlen(name)))
                fail("DescribeRule %s answered for another rule: %.*s", name, (int)c.blen, c.body);
        }
        __atomic_add_fetch(p->done, 1, __ATOMIC_RELAXED);
    }
    client_close(&c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array */
static double pct_ms(const uint64_t *v, size_t n, double q)
{
    size_t r = (size_t)(q * (double)n + 0.999999999);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return (double)v[r - 1] / 1e6;
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
        die("bad phase");
    size_t per = count / (size_t)nconn, at = 0;
    for (int k = 0; k < nconn; k++) {
        size_t n = k == nconn - 1 ? count - at : per;
        ph[k] = (phase){.kind = kind, .prefix = prefix, .port = port, .first = first + at, .count = n, .lat = lat + at,
                        .done = &done};
        at += n;
    }
    pid_t spid = g_child;
    double cpu0 = spid > 0 ? proc_cpu_s(spid) : -1;
    double t0 = now_s();
    for (int k = 0; k < nconn; k++)
        if (pthread_create(&th[k], NULL, phase_main, &ph[k]))
            die("pthread_create failed");
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
            double t = now_s();
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
    double wall = now_s() - t0;
    double cpu1 = spid > 0 ? proc_cpu_s(spid) : -1;
    char cpu[64] = "";
    if (cpu0 >= 0 && cpu1 >= 0)
        snprintf(cpu, sizeof cpu, ", server CPU %.0fus/req", (cpu1 - cpu0) / (double)count * 1e6);
    qsort(lat, count, sizeof *lat, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += (double)lat[i];
    result r = {.rps = (double)count / wall,
                .p50 = pct_ms(lat, count, 0.50),
                .p99 = pct_ms(lat, count, 0.99),
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

/* A single request on a fresh connection; returns the parsed JSON body (caller decrefs). */
static json_t *call_json(client *c, const char *op, const char *body, uint64_t *lat)
{
    uint64_t l;
    client_call(c, op, body, strlen(body), lat ? lat : &l);
    expect_200(c, op, body);
    json_error_t je;
    json_t *j = json_loadb(c->body, c->blen, 0, &je);
    if (!j)
        fail("%s: the answer is not JSON: %s", op, je.text);
    return j;
}

/* Pages through ListRules (Limit 100); returns how many rules, checking names ascend. */
static size_t count_rules(int port, size_t *pages)
{
    client c;
    client_open(&c, port);
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
        json_t *j = call_json(&c, "ListRules", body, NULL);
        (*pages)++;
        json_t *rules = json_object_get(j, "Rules");
        if (!json_is_array(rules))
            fail("ListRules: no Rules array");
        size_t i;
        json_t *r;
        json_array_foreach(rules, i, r)
        {
            const char *name = json_string_value(json_object_get(r, "Name"));
            if (!name || strcmp(name, last) <= 0)
                fail("ListRules: names out of order or missing at rule %zu (%s after %s)", n, name ? name : "-",
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
    client_close(&c);
    return n;
}

/* ------------------------------------------------------------------ main */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_dir(char *out, size_t cap, const char *tmpdir, const char *tag)
{
    snprintf(out, cap, "%s/api_bench-%s-XXXXXX", tmpdir, tag);
    if (!mkdtemp(out))
        die("mkdtemp %s: %s", out, strerror(errno));
}

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
    server srv;
    int port;
    char dir1[PATH_MAX] = "";
    if (endpoint) {
        const char *p = strstr(endpoint, "://");
        p = p ? p + 3 : endpoint;
        const char *colon = strrchr(p, ':');
        if (strncmp(p, "127.0.0.1:", 10) != 0 || !colon || (port = atoi(colon + 1)) <= 0 || port > 65535)
            die("--endpoint wants http://127.0.0.1:PORT");
    } else {
        make_dir(dir1, sizeof dir1, tmpdir, "latency");
        server_start(&srv, bin, dir1);
        port = srv.port;
        printf("# server %s pid %d on 127.0.0.1:%d, data in %s; started in %.3fs\n", bin, (int)srv.pid, port, dir1,
               srv.t_listen - srv.t_exec);
        long rss_listen = proc_kb(srv.pid, "VmRSS");
        client c;
        client_open(&c, port);
        json_t *j = call_json(&c, "ListRules", "{}", NULL);
        size_t nr = json_array_size(json_object_get(j, "Rules"));
        json_decref(j);
        client_close(&c);
        if (nr != 0)
            fail("a fresh server lists %zu rules", nr);
        long rss = proc_kb(srv.pid, "VmRSS");
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
            fail("ListRules pages through %zu rules, expected %zu", got, want);
        printf("# ListRules paging: %zu rules in %zu pages, as expected\n", got, pages);
        printf("# rss after the latency phases (%zu rules): %.1fMB, peak %.1fMB\n", want,
               proc_kb(srv.pid, "VmRSS") / 1024.0, proc_kb(srv.pid, "VmHWM") / 1024.0);
        server_stop(&srv);
    }

    /* ---- 2. start-up with `rules` rules on the default bus */
    if (startup) {
        char dir2[PATH_MAX];
        make_dir(dir2, sizeof dir2, tmpdir, "startup");
        server_start(&srv, bin, dir2);
        printf("# loading %zu rules into %s over 2 connections\n", rules, dir2);
        fflush(stdout);
        char label[64];
        snprintf(label, sizeof label, "PutRule_load_%zu_2conn", rules);
        run_phase(srv.port, K_PUT_EXACT, "r", 0, rules, 2, label, true);
        printf("# rss of the loading server with %zu rules: %.1fMB, peak %.1fMB\n", rules,
               proc_kb(srv.pid, "VmRSS") / 1024.0, proc_kb(srv.pid, "VmHWM") / 1024.0);
        double stop = server_stop(&srv);
        printf("# SIGTERM to exit: %.3fs; store %.1fMB\n", stop, dir_bytes(dir2) / 1048576.0);

        double *t_first = calloc((size_t)restarts, sizeof *t_first);
        double *t_lis = calloc((size_t)restarts, sizeof *t_lis);
        long *rss = calloc((size_t)restarts, sizeof *rss);
        if (!t_first || !t_lis || !rss)
            die("out of memory");
        for (int k = 0; k < restarts; k++) {
            server_start(&srv, bin, dir2);
            client c;
            client_open(&c, srv.port);
            json_t *j = call_json(&c, "ListRules", "{\"Limit\":1}", NULL);
            double t1 = now_s();
            if (json_array_size(json_object_get(j, "Rules")) != 1)
                fail("the restarted server lists no rule");
            json_decref(j);
            t_first[k] = t1 - srv.t_exec;
            t_lis[k] = srv.t_listen - srv.t_exec;
            rss[k] = proc_kb(srv.pid, "VmRSS");
            long hwm = proc_kb(srv.pid, "VmHWM");
            printf("# restart %d: listening after %.3fs, first ListRules answered after %.3fs, RSS %.1fMB, peak "
                   "%.1fMB\n",
                   k + 1, t_lis[k], t_first[k], rss[k] / 1024.0, hwm / 1024.0);
            fflush(stdout);
            if (k == 0) {
                /* the rules are all there: DescribeRule of the last, and the paged count */
                char body[128];
                snprintf(body, sizeof body, "{\"Name\":\"r%06zu\"}", rules - 1);
                uint64_t l;
                client_call(&c, "DescribeRule", body, strlen(body), &l);
                expect_200(&c, "DescribeRule", body);
                json_error_t je;
                json_t *d = json_loadb(c.body, c.blen, 0, &je);
                const char *pat = d ? json_string_value(json_object_get(d, "EventPattern")) : NULL;
                char wantpat[64];
                snprintf(wantpat, sizeof wantpat, "{\"detail\":{\"id\":[\"%zu\"]}}", rules - 1);
                if (!pat || strcmp(pat, wantpat) != 0)
                    fail("DescribeRule r%06zu: wrong EventPattern %s", rules - 1, pat ? pat : "(none)");
                json_decref(d);
                size_t pages;
                double t0 = now_s();
                size_t got = count_rules(srv.port, &pages);
                double tl = now_s() - t0;
                if (got != rules)
                    fail("after restart ListRules pages through %zu rules, expected %zu", got, rules);
                printf("# after restart: DescribeRule r%06zu ok; ListRules paging: %zu rules in %zu pages (%.2fs, "
                       "%.0f pages/s)\n",
                       rules - 1, got, pages, tl, (double)pages / tl);
            }
            client_close(&c);
            if (k == restarts - 1) {
                /* the latency phases again, on the server that holds `rules` rules */
                char l1[64], l2[64];
                snprintf(l1, sizeof l1, "PutRule_at_%zu_rules", rules);
                snprintf(l2, sizeof l2, "DescribeRule_at_%zu_rules", rules);
                run_phase(srv.port, K_PUT_SMALL, "more-", 0, n, 1, l1, false);
                run_phase(srv.port, K_DESCRIBE_SMALL, "more-", 0, n, 1, l2, false);
                printf("# rss with %zu rules after those: %.1fMB\n", rules + n, proc_kb(srv.pid, "VmRSS") / 1024.0);
            }
            double st = server_stop(&srv);
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
            nftw(dir2, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (dir1[0] && !keep)
        nftw(dir1, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("# all requests answered 200; counts ok\n");
    return 0;
}
