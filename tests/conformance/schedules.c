/*
 * schedules.c — replays schedule expressions whose validity was recorded
 * against real AWS.
 *
 * Usage: conformance_schedules FILE.jsonl [--all]. Each line is
 * {"expr": "...", "valid": true|false, "service": "events"|"scheduler"}.
 * Every "events" case (PutRule ScheduleExpression, what pipebridge
 * implements) must agree with pb_schedule_parse: valid ones parse, invalid
 * ones fail with ValidationException "Parameter ScheduleExpression is not
 * valid.". "scheduler" cases (EventBridge Scheduler, another service with
 * at(...)) are skipped, or with --all reported for information only and never
 * counted as failures. Prints one line per disagreement and
 * "N passed, M failed"; exits 1 on any disagreement or unreadable line, 2 on
 * usage errors.
 */
#include "json/pb_json.h"
#include "schedule/pb_schedule.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID_MSG "Parameter ScheduleExpression is not valid."

/* 1 when our verdict differs from AWS's (why filled), 0 when it agrees. */
static int check(const char *expr, size_t len, bool want_valid, char *why, size_t whylen)
{
    pb_schedule s;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_schedule_parse(expr, len, &s, &err);
    if (want_valid && rc != 0) {
        snprintf(why, whylen, "AWS accepts it, we reject it (%s: %s)", pb_error_name(rc), err.message);
        return 1;
    }
    if (!want_valid) {
        if (rc == 0) {
            snprintf(why, whylen, "AWS rejects it, we accept it");
            return 1;
        }
        if (rc != PB_EVALIDATION || strcmp(err.message, INVALID_MSG)) {
            snprintf(why, whylen, "rejected with %s '%s', expected PB_EVALIDATION '%s'", pb_error_name(rc),
                     err.message, INVALID_MSG);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool all = argc == 3 && !strcmp(argv[2], "--all");
    if (argc != 2 && !all) {
        fprintf(stderr, "usage: conformance_schedules FILE.jsonl [--all]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int total = 0, failed = 0, lineno = 0, skipped = 0, info_agree = 0, info_differ = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        pb_arena arena;
        pb_arena_init(&arena);
        pb_json *c = NULL;
        pb_error err;
        const pb_json *expr = NULL, *valid = NULL, *service = NULL;
        if (pb_json_parse(line, (size_t)len, NULL, &arena, &c, &err) == 0 && c->type == PB_JSON_OBJECT) {
            expr = pb_json_get(c, "expr");
            valid = pb_json_get(c, "valid");
            service = pb_json_get(c, "service");
        }
        if (!expr || expr->type != PB_JSON_STRING || !valid ||
            (valid->type != PB_JSON_TRUE && valid->type != PB_JSON_FALSE) || !service ||
            service->type != PB_JSON_STRING) {
            printf("FAIL %s:%d: not a {expr, valid, service} case\n", argv[1], lineno);
            failed++;
            total++;
            pb_arena_free(&arena);
            continue;
        }
        bool events = service->len == 6 && !memcmp(service->str, "events", 6);
        bool want = valid->type == PB_JSON_TRUE;
        char why[4096];
        if (events) {
            total++;
            if (check(expr->str, expr->len, want, why, sizeof why)) {
                failed++;
                printf("FAIL %s:%d %.*s: %s\n", argv[1], lineno, (int)expr->len, expr->str, why);
            }
        } else if (all) {
            if (check(expr->str, expr->len, want, why, sizeof why)) {
                info_differ++;
                printf("info (%.*s, not counted) %.*s: %s\n", (int)service->len, service->str, (int)expr->len,
                       expr->str, why);
            } else {
                info_agree++;
            }
        } else {
            skipped++;
        }
        pb_arena_free(&arena);
    }
    free(line);
    fclose(f);
    if (all)
        printf("other services: %d agree, %d differ (not counted)\n", info_agree, info_differ);
    else if (skipped)
        printf("%d cases of other services skipped (run with --all to see them)\n", skipped);
    if (total == 0) {
        printf("FAIL no \"events\" cases in %s\n", argv[1]);
        failed++;
        total++;
    }
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed ? 1 : 0;
}
