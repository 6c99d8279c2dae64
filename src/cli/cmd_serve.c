/*
 * cmd_serve.c — `pipebridge serve`: runs the server until SIGTERM or SIGINT.
 *
 * Signals are blocked in every thread and taken by the main thread with
 * sigwait, which then stops the server gracefully (in-flight requests
 * finish, the store is closed cleanly).
 */
#include "api/pb_api.h"
#include "bus/pb_scheduler.h"
#include "cli.h"
#include "common/pb_log.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "usage: pipebridge serve [--listen HOST:PORT] [--data-dir DIR] [--store URL] [--log-format text|json]\n"
    "                        [--clock real|manual] [--schedule-catch-up none|latest|all]\n"
    "                        [--max-connections N]\n"
    "\n"
    "Runs the pipebridge server: the EventBridge API (AWSEvents.*) over AWS JSON 1.1\n"
    "with SigV4, for the AWS CLI, boto3 and the AWS SDKs (--endpoint-url).\n"
    "\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:4010; port 0 picks one)\n"
    "  --data-dir DIR        state directory (default ./data): credentials, SQLite store\n"
    "  --store URL           sqlite:PATH (default sqlite:DIR/pipebridge.db);\n"
    "                        postgresql://... is not supported yet\n"
    "  --log-format FORMAT   text (default) or json: one line per request\n"
    "  --max-connections N   open HTTP connections at most (1..65536, default 512);\n"
    "                        each is served by a thread of its own\n"
    "  --clock CLOCK         real (default) or manual: schedules fire only when\n"
    "                        Pipebridge.AdvanceClock moves the clock (kept in the store)\n"
    "  --schedule-catch-up P ticks missed while the server was down: none (default,\n"
    "                        as AWS), latest (each rule's last one) or all (each\n"
    "                        rule's last 1000); they carry \"pipebridge-catch-up\": true\n"
    "\n"
    "On first start DIR/credentials is created with the development credential\n"
    "(access key test, secret test, account 000000000000); the server refuses a\n"
    "non-loopback --listen while that is the only credential. Stop with SIGTERM\n"
    "or Ctrl-C.\n";

int pb_cmd_serve(int argc, char **argv)
{
    pb_server_config cfg = {.listen = "127.0.0.1:4010", .data_dir = "./data", .store = NULL};
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(serve_usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pipebridge serve: %s needs a value\n%s", o, serve_usage);
            return PB_EXIT_USAGE;
        }
        const char *val = argv[++i];
        if (!strcmp(o, "--listen"))
            cfg.listen = val;
        else if (!strcmp(o, "--data-dir"))
            cfg.data_dir = val;
        else if (!strcmp(o, "--store"))
            cfg.store = val;
        else if (!strcmp(o, "--max-connections")) {
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || end == val || n < 1 || n > 65536) {
                fprintf(stderr, "pipebridge serve: --max-connections is a number from 1 to 65536\n");
                return PB_EXIT_USAGE;
            }
            cfg.max_connections = (int)n;
        }
        else if (!strcmp(o, "--clock")) {
            if (strcmp(val, "real") && strcmp(val, "manual")) {
                fprintf(stderr, "pipebridge serve: --clock is real or manual\n");
                return PB_EXIT_USAGE;
            }
            cfg.manual_clock = !strcmp(val, "manual");
        } else if (!strcmp(o, "--schedule-catch-up")) {
            pb_catchup c;
            if (pb_scheduler_parse_catchup(val, &c)) {
                fprintf(stderr, "pipebridge serve: --schedule-catch-up is none, latest or all\n");
                return PB_EXIT_USAGE;
            }
            cfg.schedule_catch_up = (int)c;
        }
        else if (!strcmp(o, "--log-format")) {
            if (strcmp(val, "text") && strcmp(val, "json")) {
                fprintf(stderr, "pipebridge serve: --log-format is text or json\n");
                return PB_EXIT_USAGE;
            }
            cfg.log_json = !strcmp(val, "json");
        } else {
            fprintf(stderr, "pipebridge serve: unknown option %s\n%s", o, serve_usage);
            return PB_EXIT_USAGE;
        }
    }
    pb_log_set_json(cfg.log_json);
    /* Every running step holds a pidfd and an eventfd, every connection a
     * socket: the usual soft limit of 1024 descriptors would fail steps past
     * about 500 at once. Take what the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    pb_server *srv;
    pb_error err;
    int rc = pb_server_start(&cfg, &srv, &err);
    if (rc) {
        pb_log_error("cannot start: %s", err.message);
        return 1;
    }
    char host[256];
    snprintf(host, sizeof host, "%s", cfg.listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    pb_log_info("pipebridge listening on http://%s:%u (data in %s)", host, pb_server_port(srv), cfg.data_dir);
    int sig = 0;
    sigwait(&set, &sig);
    pb_log_info("received %s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    pb_server_stop(srv);
    pb_log_info("stopped");
    return 0;
}
