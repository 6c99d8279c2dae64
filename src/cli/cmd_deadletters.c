/*
 * cmd_deadletters.c — `pipebridge dead-letters list|redrive`: the invocations
 * that failed for good, read and sent back into delivery through the
 * server's Pipebridge.ListDeadLetters / Pipebridge.RedriveDeadLetters.
 *
 * `list` follows NextToken to the end, as the AWS CLI paginates, and prints
 * the answers' DeadLetters as one answer (json) or one line each (text).
 * `redrive` sends the ids 100 at a time (the action's limit), or one request
 * with the filters, and prints how many dead letters went back.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "http_client.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDS_PER_CALL 100 /* RedriveDeadLetters takes at most 100 Ids */

static const char usage[] =
    "usage: pipebridge dead-letters list [--dead-letter-arn ARN] [--target-arn ARN] [--output json|text]\n"
    "                                    [--endpoint-url URL] [--region REGION]\n"
    "       pipebridge dead-letters redrive (--id N [N ...] | --dead-letter-arn ARN | --target-arn ARN | --all)\n"
    "                                    [--output json|text] [--endpoint-url URL] [--region REGION]\n"
    "\n"
    "A target invocation that failed for good (a non-retryable error, or its\n"
    "RetryPolicy exhausted) is kept as a dead letter when the target has a\n"
    "DeadLetterConfig, with AWS's attributes: rule, target, error code and\n"
    "message, exhausted retry condition, retry attempts, the event.\n"
    "\n"
    "  list      prints the dead letters, oldest first (every page)\n"
    "            --dead-letter-arn ARN   only those kept for this DeadLetterConfig Arn\n"
    "            --target-arn ARN        only those of this target\n"
    "            --output json|text      the API's answer (default), or one line each:\n"
    "                                    id, time, rule ARN, target ARN, error code, message\n"
    "  redrive   delivers dead letters again (with the target as it was when the event\n"
    "            matched) and prints how many went back; those that fail again become\n"
    "            new dead letters\n"
    "            --id N [N ...]          these (repeatable; ids from `list`)\n"
    "            --dead-letter-arn ARN   all of this DeadLetterConfig Arn\n"
    "            --target-arn ARN        all of this target (combines with --dead-letter-arn)\n"
    "            --all                   every dead letter of the account and region\n"
    "\n"
    "  --endpoint-url URL  the server (default: AWS_ENDPOINT_URL, else " PB_CLI_DEFAULT_ENDPOINT ")\n"
    "  --region REGION     (default: AWS_REGION, AWS_DEFAULT_REGION, else " PB_CLI_DEFAULT_REGION ")\n"
    "\n"
    "Requests are signed (SigV4, service pipebridge) with AWS_ACCESS_KEY_ID and\n"
    "AWS_SECRET_ACCESS_KEY; when both are unset, with the development credential\n"
    "test / test that `pipebridge serve` creates on first start.\n"
    "Exit status: 0; 252 bad command line; 254 the server answered an error\n"
    "(printed as the AWS CLI prints it); 255 no answer (cannot connect).\n";

typedef struct args {
    const char *dlq, *target;
    bool text, all;
    int64_t *ids;
    size_t nids, capids;
    pb_cli_endpoint ep;
} args;

static int usage_error(const char *fmt, const char *what)
{
    fputs("pipebridge dead-letters: ", stderr);
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n\n%s", usage);
    return PB_EXIT_USAGE;
}

static int add_id(args *a, const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || *end || v < 1)
        return usage_error("--id wants positive integers (ids from `list`), not '%s'", s);
    if (a->nids == a->capids) {
        size_t cap = a->capids ? a->capids * 2 : 16;
        int64_t *p = realloc(a->ids, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "pipebridge: out of memory\n");
            return PB_EXIT_CLIENT_ERROR;
        }
        a->ids = p;
        a->capids = cap;
    }
    a->ids[a->nids++] = v;
    return 0;
}

/* Options of both subcommands; `redrive` says whether the selectors apply. */
static int parse_args(int argc, char **argv, bool redrive, args *a, bool *help)
{
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h") || !strcmp(opt, "help")) {
            *help = true;
            return 0;
        }
        if (strncmp(opt, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", opt);
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(opt, '=');
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - opt) : (int)strlen(opt), opt);
        if (redrive && !strcmp(name, "--all")) {
            if (eq)
                return usage_error("%s takes no value", name);
            a->all = true;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return usage_error("%s needs a value", name);
        if (!strcmp(name, "--endpoint-url")) {
            a->ep.url = val;
        } else if (!strcmp(name, "--region")) {
            a->ep.region = val;
        } else if (!strcmp(name, "--output")) {
            if (strcmp(val, "json") && strcmp(val, "text"))
                return usage_error("--output must be json or text, not '%s'", val);
            a->text = !strcmp(val, "text");
        } else if (!strcmp(name, "--dead-letter-arn")) {
            a->dlq = val;
        } else if (!strcmp(name, "--target-arn")) {
            a->target = val;
        } else if (redrive && !strcmp(name, "--id")) {
            int rc = add_id(a, val);
            /* --id 1 2 3: the values that follow, up to the next option */
            while (!rc && !eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                rc = add_id(a, argv[++i]);
            if (rc)
                return rc;
        } else {
            return usage_error("unknown option %s", name);
        }
    }
    if (!*a->ep.url)
        return usage_error("%s", "--endpoint-url must not be empty");
    if (!redrive)
        return 0;
    if (!a->nids && !a->dlq && !a->target && !a->all)
        return usage_error("%s", "say which dead letters to redrive: --id N ..., --dead-letter-arn ARN, "
                                 "--target-arn ARN, or --all for every one");
    if (a->nids && (a->dlq || a->target || a->all))
        return usage_error("%s", "--id cannot be combined with --dead-letter-arn, --target-arn or --all");
    return 0;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (s) {
        puts(s);
        free(s);
    }
}

/* Seconds since the epoch (a JSON number) as 2024-05-01T12:00:00.123Z. */
static void format_time(json_t *t, char *out, size_t cap)
{
    double secs = json_number_value(t);
    time_t whole = (time_t)floor(secs);
    int ms = (int)llround((secs - (double)whole) * 1000.0);
    if (ms >= 1000) {
        whole++;
        ms -= 1000;
    }
    struct tm tm;
    gmtime_r(&whole, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", day, ms);
}

/* One field of a text line: tabs and line breaks become spaces. */
static void put_field(const char *s, bool last)
{
    for (const char *p = s ? s : "-"; *p; p++)
        fputc(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p, stdout);
    fputc(last ? '\n' : '\t', stdout);
}

static void print_text_line(json_t *d)
{
    char when[48];
    format_time(json_object_get(d, "CreationTime"), when, sizeof when);
    printf("%" JSON_INTEGER_FORMAT "\t", json_integer_value(json_object_get(d, "Id")));
    put_field(when, false);
    put_field(json_string_value(json_object_get(d, "RuleArn")), false);
    put_field(json_string_value(json_object_get(d, "TargetArn")), false);
    put_field(json_string_value(json_object_get(d, "ErrorCode")), false);
    put_field(json_string_value(json_object_get(d, "ErrorMessage")), true);
}

static int cmd_list(args *a)
{
    json_t *all = json_array();
    char *token = NULL;
    int rc = all ? 0 : PB_EXIT_CLIENT_ERROR;
    while (!rc) {
        json_t *in = json_object(), *out = NULL;
        if (a->dlq)
            json_object_set_new(in, "DeadLetterArn", json_string(a->dlq));
        if (a->target)
            json_object_set_new(in, "TargetArn", json_string(a->target));
        if (token)
            json_object_set_new(in, "NextToken", json_string(token));
        rc = pb_cli_call(&a->ep, &pb_cli_pipebridge, "ListDeadLetters", in, &out);
        json_decref(in);
        free(token);
        token = NULL;
        if (rc)
            break;
        json_t *page = json_object_get(out, "DeadLetters");
        if (json_is_array(page))
            json_array_extend(all, page);
        const char *next = json_string_value(json_object_get(out, "NextToken"));
        if (next)
            token = strdup(next);
        json_decref(out);
        if (!next)
            break;
        if (!token) {
            fprintf(stderr, "pipebridge: out of memory\n");
            rc = PB_EXIT_CLIENT_ERROR;
        }
    }
    if (!rc) {
        if (a->text) {
            size_t i;
            json_t *d;
            json_array_foreach(all, i, d) print_text_line(d);
        } else {
            json_t *o = json_object();
            json_object_set(o, "DeadLetters", all);
            print_json(o);
            json_decref(o);
        }
    }
    json_decref(all);
    return rc;
}

static int cmd_redrive(args *a)
{
    json_int_t total = 0;
    size_t done = 0;
    int rc = 0;
    do {
        json_t *in = json_object(), *out = NULL;
        if (a->nids) {
            json_t *ids = json_array();
            for (size_t k = done; k < a->nids && k < done + IDS_PER_CALL; k++)
                json_array_append_new(ids, json_integer(a->ids[k]));
            json_object_set_new(in, "Ids", ids);
            done += json_array_size(ids);
        } else {
            if (a->dlq)
                json_object_set_new(in, "DeadLetterArn", json_string(a->dlq));
            if (a->target)
                json_object_set_new(in, "TargetArn", json_string(a->target));
            if (a->all)
                json_object_set_new(in, "All", json_true());
        }
        rc = pb_cli_call(&a->ep, &pb_cli_pipebridge, "RedriveDeadLetters", in, &out);
        json_decref(in);
        if (!rc)
            total += json_integer_value(json_object_get(out, "Redriven"));
        json_decref(out);
    } while (!rc && done < a->nids);
    if (rc && done > IDS_PER_CALL) /* earlier calls went through */
        fprintf(stderr, "(%" JSON_INTEGER_FORMAT " dead letters were redriven before the error)\n", total);
    if (rc)
        return rc;
    if (a->text) {
        printf("%" JSON_INTEGER_FORMAT "\n", total);
    } else {
        json_t *o = json_pack("{sI}", "Redriven", total);
        print_json(o);
        json_decref(o);
    }
    return 0;
}

int pb_cmd_dead_letters(int argc, char **argv)
{
    if (argc < 1) {
        fputs(usage, stderr);
        return PB_EXIT_USAGE;
    }
    const char *sub = argv[0];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    bool redrive = !strcmp(sub, "redrive");
    if (!redrive && strcmp(sub, "list") != 0)
        return usage_error("unknown subcommand '%s' (list or redrive)", sub);
    args a;
    memset(&a, 0, sizeof a);
    pb_cli_endpoint_init(&a.ep);
    bool help = false;
    int rc = parse_args(argc - 1, argv + 1, redrive, &a, &help);
    if (!rc && help)
        fputs(usage, stdout);
    else if (!rc && !(rc = pb_cli_endpoint_credentials(&a.ep)))
        rc = redrive ? cmd_redrive(&a) : cmd_list(&a);
    free(a.ids);
    return rc;
}
