/*
 * main.c — the pipebridge program: dispatches to a command.
 *
 * `serve` runs the server; the pattern and schedule commands work offline;
 * `dead-letters` talks to a running server over its HTTP API (libcurl).
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_VERSION "0.1.0"

static const char usage[] =
    "usage: pipebridge COMMAND [OPTIONS]\n"
    "\n"
    "pipebridge runs EventBridge-style rules that start SageMaker-format pipelines.\n"
    "\n"
    "Commands:\n"
    "  serve                  run the server (EventBridge API over AWS JSON 1.1 + SigV4)\n"
    "  test-event-pattern     does an event match a pattern? (like aws events test-event-pattern)\n"
    "  explain-event-pattern  why an event does or does not match a pattern\n"
    "  schedule-preview       when a rate(), cron() or at() schedule fires next\n"
    "                         (next-fire-times: its older name)\n"
    "  dead-letters           list or redrive the target invocations kept as dead letters\n"
    "                         (asks a server: --endpoint-url, default http://127.0.0.1:4010;\n"
    "                         signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the\n"
    "                         development credential test / test when both are unset)\n"
    "  help                   this text\n"
    "  version                the version\n"
    "\n"
    "`pipebridge COMMAND --help` describes a command.\n";

char *pb_cli_arg_value(const char *arg, size_t *len)
{
    if (strncmp(arg, "file://", 7) != 0) {
        *len = strlen(arg);
        char *s = malloc(*len + 1);
        if (s)
            memcpy(s, arg, *len + 1);
        return s;
    }
    const char *path = arg + 7;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "\nError parsing parameter: Unable to load paramfile %s: %s\n", arg, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 >= cap) {
            if (cap >= ((size_t)64 << 20)) {
                fprintf(stderr, "\nError parsing parameter: %s is larger than 64 MiB\n", arg);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

int pb_cli_service_error(const char *operation, const pb_error *err)
{
    fprintf(stderr, "\nAn error occurred (%s) when calling the %s operation: %s\n", pb_error_aws_type(err->code),
            operation, err->message);
    return PB_EXIT_SERVICE_ERROR;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? PB_EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("pipebridge %s\n", PB_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return pb_cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "test-event-pattern"))
        return pb_cmd_test_event_pattern(argc - 2, argv + 2);
    if (!strcmp(cmd, "schedule-preview"))
        return pb_cmd_schedule_preview(argc - 2, argv + 2);
    if (!strcmp(cmd, "next-fire-times"))
        return pb_cmd_next_fire_times(argc - 2, argv + 2);
    if (!strcmp(cmd, "explain-event-pattern"))
        return pb_cmd_explain_event_pattern(argc - 2, argv + 2);
    if (!strcmp(cmd, "dead-letters"))
        return pb_cmd_dead_letters(argc - 2, argv + 2);
    fprintf(stderr, "pipebridge: unknown command '%s'\n\n%s", cmd, usage);
    return PB_EXIT_USAGE;
}
