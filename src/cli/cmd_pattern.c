/*
 * cmd_pattern.c — the offline pattern commands.
 *
 * `test-event-pattern` behaves like `aws events test-event-pattern`: the same
 * checks as the TestEventPattern API (pattern length, envelope fields,
 * pattern validity) with the same error texts, answered by the real matcher.
 * `explain-event-pattern` says why an event does or does not match.
 */
#include "cli.h"
#include "pattern/pb_pattern.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_API_MAX 4096 /* TestEventPattern's EventPattern length limit */

typedef struct args {
    char *pattern, *event;
    size_t plen, elen;
    bool text;
    bool help;
} args;

static int parse_args(int argc, char **argv, args *a, bool allow_output, const char *usage)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = NULL;
        char name[64];
        const char *eq = strchr(opt, '=');
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h") || !strcmp(opt, "help")) {
            a->help = true;
            return 0;
        }
        if (strncmp(opt, "--", 2) != 0) {
            fprintf(stderr, "pipebridge: unexpected argument '%s'\n%s", opt, usage);
            return PB_EXIT_USAGE;
        }
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - opt), opt);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", opt);
            if (i + 1 >= argc) {
                fprintf(stderr, "pipebridge: %s needs a value\n%s", opt, usage);
                return PB_EXIT_USAGE;
            }
            val = argv[++i];
        }
        char **dst = NULL;
        size_t *dlen = NULL;
        if (!strcmp(name, "--event-pattern")) {
            dst = &a->pattern;
            dlen = &a->plen;
        } else if (!strcmp(name, "--event")) {
            dst = &a->event;
            dlen = &a->elen;
        } else if (allow_output && !strcmp(name, "--output")) {
            if (strcmp(val, "json") && strcmp(val, "text")) {
                fprintf(stderr, "pipebridge: --output must be json or text\n");
                return PB_EXIT_USAGE;
            }
            a->text = !strcmp(val, "text");
            continue;
        } else {
            fprintf(stderr, "pipebridge: unknown option %s\n%s", name, usage);
            return PB_EXIT_USAGE;
        }
        free(*dst);
        *dst = pb_cli_arg_value(val, dlen);
        if (!*dst)
            return PB_EXIT_USAGE;
    }
    if (!a->pattern || !a->event) {
        fprintf(stderr, "pipebridge: the following arguments are required: --event-pattern, --event\n%s", usage);
        return PB_EXIT_USAGE;
    }
    return 0;
}

static void free_args(args *a)
{
    free(a->pattern);
    free(a->event);
}

/* The TestEventPattern API's length limit, with its wording. */
static int check_api_input(const args *a, pb_error *err)
{
    if (a->plen > PATTERN_API_MAX)
        return pb_error_set(err, PB_EVALIDATION,
                            "1 validation error detected: Value '%.*s...' at 'eventPattern' failed to satisfy "
                            "constraint: Member must have length less than or equal to %d",
                            256, a->pattern, PATTERN_API_MAX);
    return 0;
}

static const char test_usage[] =
    "usage: pipebridge test-event-pattern --event-pattern TEXT --event TEXT\n"
    "\n"
    "Tests whether an event matches an EventBridge event pattern, offline, with\n"
    "the same engine and the same errors as the TestEventPattern API.\n"
    "\n"
    "  --event-pattern TEXT  the pattern (JSON), or file://PATH\n"
    "  --event TEXT          the event (JSON with id, account, source, time, region,\n"
    "                        detail-type), or file://PATH\n"
    "\n"
    "Prints {\"Result\": true} or {\"Result\": false}. An invalid pattern or event\n"
    "prints the AWS error to stderr and exits 254, as the AWS CLI does.\n";

int pb_cmd_test_event_pattern(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a, false, test_usage);
    if (rc || a.help) {
        if (a.help)
            fputs(test_usage, stdout);
        free_args(&a);
        return rc;
    }
    pb_error err;
    bool matched = false;
    int status = 0;
    if (check_api_input(&a, &err) || pb_pattern_test_event(a.pattern, a.plen, a.event, a.elen, &matched, &err))
        status = pb_cli_service_error("TestEventPattern", &err);
    else
        printf("{\"Result\": %s}\n", matched ? "true" : "false");
    free_args(&a);
    return status;
}

static const char explain_usage[] =
    "usage: pipebridge explain-event-pattern --event-pattern TEXT --event TEXT [--output json|text]\n"
    "\n"
    "Says why an event does or does not match a pattern: for each alternative of\n"
    "the pattern ($or), the first field (in pattern order) whose condition failed,\n"
    "the condition, and the event's values at that path (or that it is missing).\n"
    "\n"
    "  --event-pattern TEXT  the pattern (JSON), or file://PATH\n"
    "  --event TEXT          the event (JSON object), or file://PATH\n"
    "  --output json|text    JSON (default) or a readable form\n"
    "\n"
    "Exits 0 whether or not the event matches; 254 on an invalid pattern or event.\n";

int pb_cmd_explain_event_pattern(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a, true, explain_usage);
    if (rc || a.help) {
        if (a.help)
            fputs(explain_usage, stdout);
        free_args(&a);
        return rc;
    }
    pb_error err;
    pb_pattern *p = NULL;
    pb_buf out;
    pb_buf_init(&out, 0);
    int status = 0;
    if (pb_pattern_compile(a.pattern, a.plen, &p, &err) ||
        pb_pattern_explain(p, a.event, a.elen, a.text, &out, &err)) {
        status = pb_cli_service_error("ExplainEventPattern", &err);
        goto out;
    }
    fwrite(out.data, 1, out.len, stdout);
    if (!a.text)
        fputc('\n', stdout);
out:
    pb_buf_free(&out);
    pb_pattern_free(p);
    free_args(&a);
    return status;
}
