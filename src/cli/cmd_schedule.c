/*
 * cmd_schedule.c — `pipebridge next-fire-times`: when would a schedule fire?
 *
 * Offline, with the same parser and next-fire computation the scheduler uses,
 * so an expression can be checked before a rule is created ("show me when it
 * will run next", which users of every scheduler ask for).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "schedule/pb_schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: pipebridge next-fire-times --schedule-expression EXPR [--count N] [--after TIME]\n"
    "\n"
    "Prints the next fire times (UTC) of an EventBridge schedule expression,\n"
    "rate(...) or cron(...), as a JSON object {\"FireTimes\": [...]}. An invalid\n"
    "expression prints AWS's ValidationException and exits 254.\n"
    "\n"
    "  --schedule-expression EXPR  e.g. 'cron(0 8 ? * MON#1 *)' or 'rate(5 minutes)'\n"
    "  --count N                   how many (default 5, at most 1000)\n"
    "  --after TIME                start after this instant, YYYY-MM-DDTHH:MM:SSZ (default: now);\n"
    "                              for rate(), the rule is taken as created at that instant\n";

static int parse_time(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -1;
    *out = timegm(&tm);
    return 0;
}

int pb_cmd_next_fire_times(int argc, char **argv)
{
    const char *expr = NULL;
    long count = 5;
    time_t after = time(NULL);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pipebridge: %s needs a value\n%s", argv[i], usage);
            return PB_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--schedule-expression")) {
            expr = v;
        } else if (!strcmp(argv[i - 1], "--count")) {
            char *end;
            count = strtol(v, &end, 10);
            if (*end || count < 1 || count > 1000) {
                fprintf(stderr, "pipebridge: --count must be 1..1000\n");
                return PB_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i - 1], "--after")) {
            if (parse_time(v, &after)) {
                fprintf(stderr, "pipebridge: --after wants YYYY-MM-DDTHH:MM:SSZ\n");
                return PB_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "pipebridge: unknown option %s\n%s", argv[i - 1], usage);
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
        return pb_cli_service_error("NextFireTimes", &err);
    printf("{\"FireTimes\": [");
    int64_t t = after;
    for (long k = 0; k < count; k++) {
        t = pb_schedule_next(&s, (int64_t)after, t);
        if (t < 0)
            break;
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char buf[32];
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s\"%s\"", k ? ", " : "", buf);
    }
    printf("]}\n");
    return 0;
}
