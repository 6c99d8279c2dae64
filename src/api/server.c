/*
 * server.c — the HTTP server (libmicrohttpd, a thread per connection).
 *
 * Collects each request body (refusing, before buffering, anything larger
 * than PB_MAX_BODY), hands POST / to pb_api_handle, answers GET /healthz, and
 * writes the response with Content-Type, x-amzn-RequestId and, on errors,
 * X-Amzn-ErrorType (libmicrohttpd adds Date). One log line per request.
 * GET /console/ serves the web console's embedded files (web/console/).
 * Stopping quiesces the listener, lets in-flight requests finish, then closes
 * the store.
 */
#include "api_internal.h"

#include "common/pb_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PB_MAX_BODY (4 * 1024 * 1024)
#define PB_MAX_HEADERS 128

struct pb_server {
    struct MHD_Daemon *daemon;
    pb_api api;
    uint16_t port;
};

typedef struct conn {
    pb_buf body;
    bool too_large;
    struct timespec start;
} conn;

typedef struct hdrs {
    const char *names[PB_MAX_HEADERS];
    const char *values[PB_MAX_HEADERS];
    size_t n;
} hdrs;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    hdrs *h = cls;
    (void)kind;
    if (h->n < PB_MAX_HEADERS) {
        h->names[h->n] = key;
        h->values[h->n] = value ? value : "";
        h->n++;
    }
    return MHD_YES;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *ctype, const char *body,
                                 size_t len, const char *request_id, const char *error_type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (request_id)
        MHD_add_response_header(r, "x-amzn-RequestId", request_id);
    if (error_type && *error_type)
        MHD_add_response_header(r, "X-Amzn-ErrorType", error_type);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ------------------------------------------------------ the console -- */

/* The Content-Type of a console file, by its extension. */
static const char *console_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},       {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},         {".svg", "image/svg+xml"},
        {".json", "application/json; charset=utf-8"}, {".png", "image/png"},
        {".ico", "image/x-icon"},                     {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* GET|HEAD /console, /console/ and /console/<file>: the embedded files
 * (pb_console_file), found by exact name, so no request path reaches the file
 * system. The page talks to POST / like any client, signing every call. */
static enum MHD_Result serve_console(struct MHD_Connection *c, const char *url)
{
    static const char nf[] = "{\"message\":\"Not Found\"}";
    if (!strcmp(url, "/console")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Location", "/console/");
        enum MHD_Result ret = MHD_queue_response(c, 301, r);
        MHD_destroy_response(r);
        return ret;
    }
    const char *name = url + strlen("/console/");
    if (!*name)
        name = "index.html";
    const unsigned char *data;
    size_t len;
    if (strchr(name, '/') || !pb_console_file(name, &data, &len))
        return send_text(c, 404, "application/json", nf, sizeof nf - 1, NULL, NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", console_type(name));
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* nothing from elsewhere: scripts, styles, images and calls stay on this origin */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                            "frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **state)
{
    pb_server *s = cls;
    (void)version;
    conn *cn = *state;
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        if (!cn)
            return MHD_NO;
        pb_buf_init(&cn->body, PB_MAX_BODY);
        clock_gettime(CLOCK_MONOTONIC, &cn->start);
        *state = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > PB_MAX_BODY)
            cn->too_large = true; /* refuse before buffering anything */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cn->too_large && pb_buf_append(&cn->body, upload_data, *upload_data_size))
            cn->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/metrics") && !strcmp(method, "GET")) {
        pb_buf m;
        pb_buf_init(&m, 0);
        pb_metrics_render(s->api.metrics, &m);
        enum MHD_Result r = send_text(c, 200, "text/plain; version=0.0.4", m.data ? m.data : "", m.len, NULL, NULL);
        pb_buf_free(&m);
        return r;
    }
    if ((!strcmp(url, "/console") || !strncmp(url, "/console/", 9)) &&
        (!strcmp(method, "GET") || !strcmp(method, "HEAD")))
        return serve_console(c, url);
    if (!strcmp(url, "/healthz") && !strcmp(method, "GET")) {
        static const char ok[] = "{\"status\":\"ok\"}";
        return send_text(c, 200, "application/json", ok, sizeof ok - 1, NULL, NULL);
    }
    if (strcmp(url, "/") != 0 || strcmp(method, "POST") != 0) {
        static const char nf[] = "{\"message\":\"Not Found\"}";
        return send_text(c, 404, "application/json", nf, sizeof nf - 1, NULL, NULL);
    }
    pb_api_response resp;
    pb_buf_init(&resp.body, 0);
    if (cn->too_large) {
        /* answered here (the body was never read), through the error table */
        char id[37], msg[192];
        pb_api_uuid(id);
        const char *type = pb_error_aws_type(PB_ETOOLARGE);
        int status = pb_error_http_status(PB_ETOOLARGE);
        int n = snprintf(msg, sizeof msg, "{\"__type\":\"%s\",\"message\":\"Request body is larger than %d bytes\"}",
                         type, PB_MAX_BODY);
        pb_log_request("-", status, type, elapsed_ms(&cn->start), id);
        return send_text(c, status, "application/x-amz-json-1.1", msg, (size_t)n, id, type);
    }
    hdrs h = {.n = 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect, &h);
    pb_api_request req = {.method = method,
                          .path = url,
                          .query = "",
                          .header_names = h.names,
                          .header_values = h.values,
                          .nheaders = h.n,
                          .body = cn->body.data ? cn->body.data : "",
                          .bodylen = cn->body.len};
    pb_api_handle(&s->api, &req, &resp);
    enum MHD_Result ret = send_text(c, resp.status, "application/x-amz-json-1.1", resp.body.data ? resp.body.data : "",
                                    resp.body.len, resp.request_id, resp.error_type);
    pb_log_request(resp.operation, resp.status, resp.error_type, elapsed_ms(&cn->start), resp.request_id);
    pb_buf_free(&resp.body);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn *cn = *state;
    if (cn) {
        pb_buf_free(&cn->body);
        free(cn);
        *state = NULL;
    }
}

/* The runner's event hook: status-change events wait in the outbox. */
static void outbox_hook(void *delivery) { pb_delivery_outbox_notify(delivery); }

/* The scheduler first (it fires into delivery), delivery (its workers call
 * the runner), then the runner, which ends
 * running steps before the store closes. */
static void stop_engines(pb_api *api)
{
    pb_scheduler_free(api->scheduler); /* first: it fires into delivery */
    api->scheduler = NULL;
    if (api->runner)
        pb_runner_set_event_hook(api->runner, NULL, NULL);
    pb_delivery_free(api->delivery);
    api->delivery = NULL;
    pb_runner_free(api->runner);
    api->runner = NULL;
    pb_metrics_free(api->metrics);
    api->metrics = NULL;
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *loopback,
                        pb_error *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(listen) >= sizeof host)
        return pb_error_set(err, PB_EVALIDATION, "--listen wants HOST:PORT, got '%s'", listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return pb_error_set(err, PB_EVALIDATION, "bad port in --listen '%s'", listen);
    size_t hl = (size_t)(colon - listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return pb_error_set(err, PB_EVALIDATION, "bad address in --listen '%s'", listen);
        *len = sizeof *a;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        return 0;
    }
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return pb_error_set(err, PB_EVALIDATION, "bad address in --listen '%s' (use an IP address)", listen);
    *len = sizeof *a;
    *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    return 0;
}

int pb_server_start(const pb_server_config *cfg, pb_server **out, pb_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    bool loopback = false;
    int rc = parse_listen(cfg->listen, &ss, &sslen, &loopback, err);
    if (rc)
        return rc;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
        return pb_error_set(err, PB_EIO, "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
    pb_server *s = calloc(1, sizeof *s);
    if (!s)
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    pthread_mutex_init(&s->api.write_lock, NULL);
    bool created = false;
    rc = pb_credentials_load(cfg->data_dir, &s->api.creds, &created, err);
    if (rc)
        goto fail;
    if (created)
        pb_log_info("created %s/credentials with the development credential: access key 'test', secret 'test', "
                    "account 000000000000",
                    cfg->data_dir);
    if (!loopback && pb_credentials_dev_only(s->api.creds)) {
        rc = pb_error_set(err, PB_EVALIDATION,
                          "refusing to listen on non-loopback address %s while the only credential is the "
                          "development one (test/test): add a credential to %s/credentials first",
                          cfg->listen, cfg->data_dir);
        goto fail;
    }
    char url[4200];
    if (cfg->store)
        snprintf(url, sizeof url, "%s", cfg->store);
    else
        snprintf(url, sizeof url, "sqlite:%s/pipebridge.db", cfg->data_dir);
    rc = pb_store_open(url, &s->api.store, err);
    if (rc)
        goto fail;
    rc = pb_registry_new(&s->api.registry);
    if (rc) {
        pb_error_set(err, rc, "out of memory");
        goto fail;
    }
    rc = pb_registry_load(s->api.registry, s->api.store, err);
    if (rc)
        goto fail;
    pb_runner_config rcfg = {.store = s->api.store, .data_dir = cfg->data_dir};
    rc = pb_runner_create(&rcfg, &s->api.runner, err);
    if (rc)
        goto fail;
    if ((rc = pb_metrics_new(&s->api.metrics)) != 0) {
        pb_error_set(err, rc, "out of memory");
        goto fail;
    }
    pb_delivery_config dcfg = {.store = s->api.store, .registry = s->api.registry, .runner = s->api.runner,
                               .metrics = s->api.metrics};
    rc = pb_delivery_create(&dcfg, &s->api.delivery, err);
    if (rc)
        goto fail;
    pb_runner_set_event_hook(s->api.runner, outbox_hook, s->api.delivery);
    pb_scheduler_config scfg = {.store = s->api.store, .delivery = s->api.delivery,
                                .manual_clock = cfg->manual_clock, .catchup = (pb_catchup)cfg->schedule_catch_up};
    rc = pb_scheduler_create(&scfg, &s->api.scheduler, err);
    if (rc)
        goto fail;
    malloc_trim(0); /* give back what loading every rule at once left free */
    /* A thread per connection: a handler may wait (PutEvents for the group
     * commit, writes for their sync) without holding up other connections,
     * which a pool of event-loop threads would (each waits for every
     * connection it serves in turn). The limit bounds the threads. */
    unsigned max_conns = cfg->max_connections > 0 ? (unsigned)cfg->max_connections : 512;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                                     MHD_USE_ITC | MHD_USE_ERROR_LOG,
                                 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                 (size_t)(64 * 1024), /* headers only: bodies go to pb_buf */
                                 MHD_OPTION_END);
    if (!s->daemon) {
        rc = pb_error_set(err, PB_EIO, "cannot listen on %s (address in use?)", cfg->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
fail:
    stop_engines(&s->api);
    pb_registry_free(s->api.registry);
    if (s->api.store)
        pb_store_close(s->api.store);
    pb_credentials_free(s->api.creds);
    free(s);
    return rc;
}

uint16_t pb_server_port(const pb_server *s) { return s->port; }

void pb_server_stop(pb_server *s)
{
    if (!s)
        return;
    MHD_quiesce_daemon(s->daemon); /* no new connections */
    MHD_stop_daemon(s->daemon);    /* joins the workers: in-flight requests complete */
    stop_engines(&s->api);
    pb_registry_free(s->api.registry);
    pb_store_close(s->api.store);
    pb_credentials_free(s->api.creds);
    free(s);
}
