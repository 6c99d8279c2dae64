/*
 * cmd_schedule.c — `pipebridge schedule-preview`: when would a schedule fire?
 *
 * Offline, with the same parser and next-fire computation the scheduler uses
 * (pb_schedule_preview), so an expression can be checked before a rule is
 * created — EventBridge's console shows the next 10 dates; this shows them
 * anywhere. The server answers the same question as the action
 * Pipebridge.PreviewSchedule.
 *
 * `next-fire-times` is the command's first name, kept as an alias: it takes
 * --after for --from, defaults to 5 times and prints {"FireTimes": [...]}
 * as it always did.
 */
#include "cli.h"
#include "schedule/pb_schedule.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COUNT_MAX 1000

static const char usage[] =
    "usage: pipebridge schedule-preview --schedule-expression EXPR [--from TIME] [--count N]\n"
    "                                   [--output text|json]\n"
    "\n"
    "Prints the next fire times of an EventBridge schedule expression, rate(...),\n"
    "cron(...) or at(...), strictly after --from, in UTC (2026-12-07T08:00:00Z), one\n"
    "per line; --output json prints a JSON list. A schedule that never fires again\n"
    "prints fewer times (none at all: nothing on stdout, a note on stderr). An\n"
    "invalid expression prints AWS's ValidationException and exits 254.\n"
    "\n"
    "  --schedule-expression EXPR  e.g. 'cron(0 8 ? * MON#1 *)' or 'rate(5 minutes)'\n"
    "  --from TIME                 YYYY-MM-DDTHH:MM:SS[Z] or YYYY-MM-DD, UTC (default: now);\n"
    "                              a rate() counts from it, as if the rule were created then\n"
    "  --count N                   how many (default 10, at most 1000)\n"
    "  --output FORMAT             text (default) or json\n"
    "\n"
    "`pipebridge next-fire-times` is an older name: --after for --from, 5 times by\n"
    "default, printed as {\"FireTimes\": [...]}.\n";

static int run(int argc, char **argv, bool legacy)
{
    const char *expr = NULL;
    long count = legacy ? 5 : 10;
    int64_t from = (int64_t)time(NULL);
    bool json = legacy;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pipebridge: %s needs a value\n%s", argv[i], usage);
            return PB_EXIT_USAGE;
        }
        const char *o = argv[i], *v = argv[++i];
        if (!strcmp(o, "--schedule-expression")) {
            expr = v;
        } else if (!strcmp(o, "--count")) {
            char *end;
            count = strtol(v, &end, 10);
            if (*end || count < 1 || count > COUNT_MAX) {
                fprintf(stderr, "pipebridge: --count must be 1..%d\n", COUNT_MAX);
                return PB_EXIT_USAGE;
            }
        } else if (!strcmp(o, legacy ? "--after" : "--from")) {
            if (pb_schedule_parse_iso(v, &from)) {
                fprintf(stderr, "pipebridge: %s wants YYYY-MM-DDTHH:MM:SSZ\n", o);
                return PB_EXIT_USAGE;
            }
        } else if (!legacy && !strcmp(o, "--output")) {
            if (strcmp(v, "text") && strcmp(v, "json")) {
                fprintf(stderr, "pipebridge: --output is text or json\n");
                return PB_EXIT_USAGE;
            }
            json = !strcmp(v, "json");
        } else {
            fprintf(stderr, "pipebridge: unknown option %s\n%s", o, usage);
            return PB_EXIT_USAGE;
        }
    }
    if (!expr) {
        fprintf(stderr, "pipebridge: the following arguments are required: --schedule-expression\n%s", usage);
        return PB_EXIT_USAGE;
    }
    pb_schedule s;
    pb_error err;
    if (pb_schedule_parse(expr, strlen(expr), &s, &err))
        return pb_cli_service_error(legacy ? "NextFireTimes" : "PreviewSchedule", &err);
    int64_t times[COUNT_MAX];
    size_t n = pb_schedule_preview(&s, from, (size_t)count, times);
    if (json)
        fputs(legacy ? "{\"FireTimes\": [" : "[", stdout);
    for (size_t k = 0; k < n; k++) {
        char iso[32];
        pb_schedule_iso(times[k], iso);
        if (json)
            printf("%s\"%s\"", k ? ", " : "", iso);
        else
            printf("%s\n", iso);
    }
    if (json)
        fputs(legacy ? "]}\n" : "]\n", stdout);
    if (!n && !json) {
        char iso[32];
        pb_schedule_iso(from, iso);
        fprintf(stderr, "pipebridge: %s never fires after %s\n", expr, iso);
    }
    return 0;
}

int pb_cmd_schedule_preview(int argc, char **argv) { return run(argc, argv, false); }

int pb_cmd_next_fire_times(int argc, char **argv) { return run(argc, argv, true); }
