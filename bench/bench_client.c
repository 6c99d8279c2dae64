/*
 * bench_client.c — the server process, /proc readings, the signed
 * keep-alive HTTP client and the step programs' mark mode, shared by the
 * HTTP benchmarks. See bench_client.h.
 */
#define _GNU_SOURCE
#include "bench_client.h"

#include "api/pb_sigv4.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ACCESS_KEY
#define ACCESS_KEY "test"
#endif
#ifndef SECRET_KEY
#define SECRET_KEY "test"
#endif
#define REGION "us-east-1"
#define START_TIMEOUT_S 120.0
#define LISTEN_MARK "pipebridge listening on http://"

const bench_service bench_events = {"events", "AWSEvents"};
const bench_service bench_sagemaker = {"sagemaker", "SageMaker"};

static const char *prog = "bench";
static pid_t g_child = -1; /* the started server: killed by bench_fail */

/* ------------------------------------------------------------------ util */

void bench_set_name(const char *name) { prog = name; }

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_child > 0)
        kill(g_child, SIGKILL);
    exit(1);
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: FAILED: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_child > 0)
        kill(g_child, SIGKILL);
    exit(1);
}

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double bench_pct_ms(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t r = (size_t)(q * (double)n + 0.999999999);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return (double)v[r - 1] / 1e6;
}

void bench_make_dir(char *out, size_t cap, const char *tmpdir, const char *tag)
{
    snprintf(out, cap, "%s/%s-%s-XXXXXX", tmpdir, prog, tag);
    if (!mkdtemp(out))
        bench_die("mkdtemp %s: %s", out, strerror(errno));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* ------------------------------------------------------------------ mark mode */

uint64_t bench_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_mark_main(const char *who, const char *id, const struct timespec *t)
{
    if (!*id || strlen(id) > 128) {
        fprintf(stderr, "%s --mark: bad id '%s'\n", who, id);
        return 3;
    }
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            fprintf(stderr, "%s --mark: bad id '%s'\n", who, id);
            return 3;
        }
    const char *dir = getenv(BENCH_MARK_ENV);
    if (!dir || !*dir)
        dir = ".";
    char tmp[PATH_MAX], final[PATH_MAX], text[32];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, id);
    snprintf(final, sizeof final, "%s/%s", dir, id);
    int n = snprintf(text, sizeof text, "%llu\n",
                     (unsigned long long)t->tv_sec * 1000000000ull + (unsigned long long)t->tv_nsec);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) != 0 || rename(tmp, final) != 0) {
        fprintf(stderr, "%s --mark: cannot write %s: %s\n", who, final, strerror(errno));
        return 3;
    }
    return 0;
}

uint64_t bench_read_mark(const char *dir, const char *id)
{
    char path[PATH_MAX], buf[64];
    snprintf(path, sizeof path, "%s/%s", dir, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        bench_fail("the mark file %s is empty", path);
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

uint64_t bench_wait_mark(int ifd, const char *dir, const char *id, double timeout_s)
{
    double deadline = bench_now_s() + timeout_s;
    for (;;) {
        uint64_t m = bench_read_mark(dir, id);
        if (m)
            return m;
        double left = deadline - bench_now_s();
        if (left <= 0)
            bench_fail("no mark %s in %s after %.0f s", id, dir, timeout_s);
        struct pollfd pfd = {.fd = ifd, .events = POLLIN};
        if (poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) > 0) {
            char ev[4096];
            while (read(ifd, ev, sizeof ev) < 0 && errno == EINTR)
                ;
        }
    }
}

/* ------------------------------------------------------------------ the server process */

/* Whether a text-format log line ("<time> <level> <msg>") is at level error. */
static bool is_error_line(const char *line)
{
    const char *sp = strchr(line, ' ');
    return (sp && !strncmp(sp + 1, "error ", 6)) || strstr(line, "\"level\":\"error\"");
}

static void *drain_main(void *arg)
{
    bench_server *s = arg;
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
            if (s->hook)
                s->hook(s->hook_user, line, ll_line);
            pthread_mutex_lock(&s->mu);
            s->lines++;
            if (is_error_line(line))
                s->errors++;
            size_t keep = ll_line < sizeof s->tail[0] - 1 ? ll_line : sizeof s->tail[0] - 1;
            memcpy(s->tail[s->ntail % BENCH_TAIL_LINES], line, keep);
            s->tail[s->ntail++ % BENCH_TAIL_LINES][keep] = '\0';
            const char *p = s->port ? NULL : strstr(line, LISTEN_MARK);
            if (p) {
                p += strlen(LISTEN_MARK);
                const char *colon = strchr(p, ':');
                long port = colon ? strtol(colon + 1, NULL, 10) : 0;
                if (port > 0 && port < 65536) {
                    s->t_listen = bench_now_s();
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

void bench_server_dump_tail(bench_server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned first = s->ntail > BENCH_TAIL_LINES ? s->ntail - BENCH_TAIL_LINES : 0;
    for (unsigned i = first; i < s->ntail; i++)
        fprintf(stderr, "  server> %s\n", s->tail[i % BENCH_TAIL_LINES]);
    pthread_mutex_unlock(&s->mu);
}

pid_t bench_server_pid(void) { return g_child; }

void bench_server_start(bench_server *s, const char *bin, const char *dir, bench_line_hook hook, void *user)
{
    bench_server_start_args(s, bin, dir, NULL, hook, user);
}

void bench_server_start_args(bench_server *s, const char *bin, const char *dir, const char *const *extra,
                             bench_line_hook hook, void *user)
{
    memset(s, 0, sizeof *s);
    s->hook = hook;
    s->hook_user = user;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        bench_die("pipe: %s", strerror(errno));
    s->t_exec = bench_now_s();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], 2);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 1);
        }
        const char *argv[32] = {bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir};
        size_t k = 6;
        for (size_t i = 0; extra && extra[i] && k + 1 < sizeof argv / sizeof argv[0]; i++)
            argv[k++] = extra[i];
        argv[k] = NULL;
        execv(bin, (char *const *)argv);
        fprintf(stderr, "%s: cannot exec %s: %s\n", prog, bin, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    g_child = pid;
    s->errfd = p[0];
    if (pthread_create(&s->drain, NULL, drain_main, s))
        bench_die("pthread_create failed");
    pthread_mutex_lock(&s->mu);
    while (!s->port && !s->eof) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        if (bench_now_s() - s->t_exec > START_TIMEOUT_S)
            break;
    }
    bool ok = s->port != 0;
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        bench_server_dump_tail(s);
        bench_fail("the server (%s) did not print its listening line", bin);
    }
}

double bench_server_stop(bench_server *s)
{
    double t0 = bench_now_s();
    kill(s->pid, SIGTERM);
    int st = 0;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    double t = bench_now_s() - t0;
    g_child = -1;
    pthread_join(s->drain, NULL);
    close(s->errfd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        bench_server_dump_tail(s);
        bench_fail("the server did not exit cleanly on SIGTERM (status 0x%x)", st);
    }
    return t;
}

long bench_proc_kb(pid_t pid, const char *field)
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

double bench_proc_cpu_s(pid_t pid)
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

void bench_client_open(bench_client *c, int port, const bench_service *svc)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    c->svc = svc;
    snprintf(c->host, sizeof c->host, "127.0.0.1:%d", port);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        bench_fail("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a))
        bench_fail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rcap = 1 << 16;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf)
        bench_die("out of memory");
}

void bench_client_close(bench_client *c)
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

static int recv_more(bench_client *c)
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

static void exchange(bench_client *c, const char *op, size_t total, uint64_t *lat_ns);

void bench_client_call(bench_client *c, const char *op, const char *body, size_t blen, uint64_t *lat_ns)
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
    snprintf(target, sizeof target, "%s.%s", c->svc->target_prefix, op);
    pb_sigv4_header h[4] = {
        {"Host", c->host},
        {"X-Amz-Date", c->date},
        {"X-Amz-Target", target},
        {"Content-Type", "application/x-amz-json-1.1"},
    };
    pb_sigv4_request r = {.method = "POST", .path = "/", .query = "", .headers = h, .nheaders = 4, .body = body,
                          .bodylen = blen};
    char auth[1024];
    if (pb_sigv4_sign(&r, ACCESS_KEY, SECRET_KEY, REGION, c->svc->signing_name, auth, sizeof auth))
        bench_fail("pb_sigv4_sign refused the request");
    int hl = snprintf(c->req, sizeof c->req,
                      "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Date: %s\r\nX-Amz-Target: %s\r\n"
                      "Content-Type: application/x-amz-json-1.1\r\nAuthorization: %s\r\nContent-Length: %zu\r\n\r\n",
                      c->host, c->date, target, auth, blen);
    if (hl < 0 || (size_t)hl + blen > sizeof c->req)
        bench_fail("request too large");
    memcpy(c->req + hl, body, blen);
    exchange(c, op, (size_t)hl + blen, lat_ns);
}

void bench_client_get(bench_client *c, const char *path, uint64_t *lat_ns)
{
    if (c->consumed) {
        memmove(c->rbuf, c->rbuf + c->consumed, c->rlen - c->consumed);
        c->rlen -= c->consumed;
        c->consumed = 0;
    }
    int hl = snprintf(c->req, sizeof c->req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, c->host);
    if (hl < 0 || (size_t)hl >= sizeof c->req)
        bench_fail("request too large");
    exchange(c, path, (size_t)hl, lat_ns);
}

/* Sends c->req[0..total) and reads the answer into c->status, c->body, c->blen. */
static void exchange(bench_client *c, const char *op, size_t total, uint64_t *lat_ns)
{
    size_t off = 0;
    uint64_t t0 = bench_now_ns();
    while (off < total) {
        ssize_t n = send(c->fd, c->req + off, total - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_fail("send (%s): %s", op, n < 0 ? strerror(errno) : "closed");
        off += (size_t)n;
    }
    const char *he;
    while (!(he = find_header_end(c->rbuf, c->rlen)))
        if (recv_more(c))
            bench_fail("connection closed or failed while reading the %s response headers", op);
    size_t hdrlen = (size_t)(he - c->rbuf);
    /* status line */
    if (hdrlen < 12 || strncmp(c->rbuf, "HTTP/1.1 ", 9) != 0)
        bench_fail("bad status line in the %s response", op);
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
            bench_fail("chunked responses are not supported by this client (%s)", op);
        p = eol + 1;
    }
    if (clen < 0)
        bench_fail("no Content-Length in the %s response", op);
    while (c->rlen < hdrlen + (size_t)clen)
        if (recv_more(c))
            bench_fail("connection closed or failed while reading the %s response body", op);
    *lat_ns = bench_now_ns() - t0;
    c->body = c->rbuf + hdrlen;
    c->blen = (size_t)clen;
    c->consumed = hdrlen + (size_t)clen;
    if (close_conn)
        bench_fail("the server closed the keep-alive connection after %s (Connection: close)", op);
}

void bench_expect_200(const bench_client *c, const char *op, const char *what)
{
    if (c->status != 200)
        bench_fail("%s %.300s: HTTP %d: %.*s", op, what, c->status, (int)(c->blen > 600 ? 600 : c->blen), c->body);
}

json_t *bench_call_json(bench_client *c, const char *op, const char *body, uint64_t *lat)
{
    uint64_t l;
    bench_client_call(c, op, body, strlen(body), lat ? lat : &l);
    bench_expect_200(c, op, body);
    json_error_t je;
    json_t *j = json_loadb(c->body, c->blen, 0, &je);
    if (!j)
        bench_fail("%s: the answer is not JSON: %s", op, je.text);
    return j;
}
