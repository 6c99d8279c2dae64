/*
 * test_pipedef.c — pipeline definitions: parsing, expressions, conditions,
 * start parameters and planning (src/pipeline/pb_pipedef.h).
 *
 * Data-driven part (tests/unit/cases/pipedef/, found next to this source via
 * __FILE__, or in the directory given as argv[1]), one cmocka test per case:
 *   invalid.txt     definitions CreatePipeline must refuse, with the exact message
 *   valid.txt       definitions it must accept
 *   conditions.txt  every condition operator, typed, with the outcome or error
 * Then fixed tests written from AWS-SPEC.md §6.3/§6.4: the SDK-shaped example
 * of §6.3 (sdk_example.json), size caps, parameter binding with each §6.4
 * message, Get / Std:Join / Std:JsonGet evaluation through pure callbacks, the
 * argv / environment of Processing and Training steps, planning under
 * MaxParallelExecutionSteps with condition branches, failures and stops, and
 * a four-step pipeline (four_step.json: two parallel steps, a condition, a
 * final step) driven from start to finish with both outcomes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "case_path.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_error.h"
#include "pipeline/pb_pipedef.h"

static char cases_dir[4096];

/* --------------------------------------------------------------- helpers -- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return d;
}

static char *read_file(const char *name, size_t *len)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", cases_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

static pb_pipedef *parse_ok(const char *text)
{
    pb_pipedef *def = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pipedef_parse(text, strlen(text), &def, &err);
    if (rc)
        fail_msg("definition refused (%s): %s\n%s", pb_error_name(rc), err.message, text);
    assert_non_null(def);
    return def;
}

static pb_pipedef *parse_file(const char *name)
{
    char *text = read_file(name, NULL);
    if (!text)
        fail_msg("cannot read %s/%s", cases_dir, name);
    pb_pipedef *def = parse_ok(text);
    free(text);
    return def;
}

static void expect_parse_error(const char *text, size_t len, const char *msg, bool prefix)
{
    pb_pipedef *def = (pb_pipedef *)1;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pipedef_parse(text, len, &def, &err);
    if (rc == 0)
        fail_msg("definition accepted, expected: %s", msg);
    assert_null(def);
    bool same = prefix ? strncmp(err.message, msg, strlen(msg)) == 0 : strcmp(err.message, msg) == 0;
    if (rc != PB_EVALIDATION || err.code != PB_EVALIDATION || !same)
        fail_msg("expected PB_EVALIDATION %s'%s'\n     got %s '%s'", prefix ? "starting with " : "", msg,
                 pb_error_name(rc), err.message);
}

static size_t step(const pb_pipedef *def, const char *name)
{
    size_t i = pb_pipedef_find_step(def, name, strlen(name));
    if (i == PB_PIPEDEF_NONE)
        fail_msg("no step %s", name);
    return i;
}

/* Binds no parameters: every default. */
static pb_pipedef_args defaults(const pb_pipedef *def, pb_arena *a)
{
    pb_pipedef_args args;
    pb_error err;
    pb_error_clear(&err);
    if (pb_pipedef_bind(def, NULL, 0, a, &args, &err))
        fail_msg("bind failed: %s", err.message);
    return args;
}

/* ------------------------------------------------- fake runner callbacks -- */

/* Step properties and property files the way a runner would give them, from
 * JSON text; everything pure and in memory. */
typedef struct fake {
    const char *prop_step[8];
    const char *prop_json[8];
    const char *file_key[8]; /* "Step/PropertyFileName" */
    const char *file_text[8];
    int file_rc;             /* when non-zero, reading any file fails with it */
    int file_reads;
    pb_arena arena;
} fake;

static const pb_json *fake_props(void *user, const pb_pipedef_step *st)
{
    fake *f = user;
    for (int i = 0; i < 8 && f->prop_step[i]; i++)
        if (!strcmp(f->prop_step[i], st->name)) {
            pb_json *doc = NULL;
            if (pb_json_parse(f->prop_json[i], strlen(f->prop_json[i]), NULL, &f->arena, &doc, NULL))
                fail_msg("bad fake properties for %s", st->name);
            return doc;
        }
    return NULL;
}

static int fake_file(void *user, const pb_pipedef_step *st, const pb_pipedef_propfile *pf, pb_buf *out,
                     pb_error *err)
{
    fake *f = user;
    f->file_reads++;
    if (f->file_rc)
        return pb_error_set(err, f->file_rc, "disk on fire");
    char key[256];
    snprintf(key, sizeof key, "%s/%s", st->name, pf->name);
    for (int i = 0; i < 8 && f->file_key[i]; i++)
        if (!strcmp(f->file_key[i], key))
            return pb_buf_append(out, f->file_text[i], strlen(f->file_text[i]));
    return pb_error_set(err, PB_EIO, "%s: no such file", pf->file_path);
}

static pb_pipedef_ctx fake_ctx(fake *f, const pb_pipedef_args *args)
{
    pb_pipedef_ctx ctx = {.args = args, .step_properties = fake_props, .read_property_file = fake_file, .user = f};
    ctx.vars[PB_PIPEDEF_VAR_PIPELINE_NAME] = "my-pipeline";
    ctx.vars[PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ID] = "p4jn9xou8a8s";
    ctx.vars[PB_PIPEDEF_VAR_START_DATE_TIME] = "2024-01-15T10:15:00Z";
    return ctx;
}

/* ------------------------------------------------------ data-driven cases -- */

enum { CASE_VALID, CASE_EXACT, CASE_PREFIX, CASE_COND };

typedef struct dcase {
    char *title;
    char *text;
    size_t len;
    int mode;
    char *expect; /* CASE_EXACT / CASE_PREFIX message; CASE_COND "true", "false" or "error MSG" */
} dcase;

static dcase *cases;
static size_t ncases, cap_cases;
static size_t loaded_invalid, loaded_valid, loaded_cond;

static dcase *new_case(void)
{
    if (ncases == cap_cases) {
        cap_cases = cap_cases ? cap_cases * 2 : 64;
        cases = realloc(cases, cap_cases * sizeof *cases);
        if (!cases)
            exit(2);
    }
    dcase *c = &cases[ncases++];
    memset(c, 0, sizeof *c);
    return c;
}

/* Block files: "=== title", definition lines, optional "--- msg" / "--^ msg". */
static size_t load_blocks(const char *name, const char *tag)
{
    char *text = read_file(name, NULL);
    if (!text)
        return 0;
    size_t before = ncases;
    dcase *cur = NULL;
    size_t tlen = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "=== ", 4)) {
            cur = new_case();
            char title[512];
            snprintf(title, sizeof title, "%s: %s", tag, line + 4);
            cur->title = xstrdup(title);
            cur->text = xstrdup("");
            cur->mode = CASE_VALID;
            tlen = 0;
        } else if (cur && (!strncmp(line, "--- ", 4) || !strncmp(line, "--^ ", 4))) {
            cur->mode = line[2] == '^' ? CASE_PREFIX : CASE_EXACT;
            cur->expect = xstrdup(line + 4);
            cur = NULL;
        } else if (cur && !(tlen == 0 && !strncmp(line, "//", 2))) {
            size_t l = strlen(line);
            cur->text = realloc(cur->text, tlen + l + 2);
            if (tlen)
                cur->text[tlen++] = '\n';
            memcpy(cur->text + tlen, line, l + 1);
            tlen += l;
            cur->len = tlen;
        }
    }
    free(text);
    return ncases - before;
}

static const char cond_def_fmt[] =
    "{\"Version\":\"2020-12-01\",\"Parameters\":["
    "{\"Name\":\"I\",\"Type\":\"Integer\",\"DefaultValue\":5},"
    "{\"Name\":\"N\",\"Type\":\"Integer\",\"DefaultValue\":-3},"
    "{\"Name\":\"F\",\"Type\":\"Float\",\"DefaultValue\":2.5},"
    "{\"Name\":\"S\",\"Type\":\"String\",\"DefaultValue\":\"abc\"},"
    "{\"Name\":\"B\",\"Type\":\"Boolean\",\"DefaultValue\":true}],"
    "\"Steps\":[{\"Name\":\"C\",\"Type\":\"Condition\",\"Arguments\":{\"Conditions\":%s%s%s}}]}";

static size_t load_conditions(const char *name)
{
    char *text = read_file(name, NULL);
    if (!text)
        return 0;
    size_t before = ncases;
    char *save = NULL;
    int lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!strncmp(line, "//", 2) || !*line)
            continue;
        char *bar = strstr(line, " | ");
        if (!bar)
            continue;
        *bar = '\0';
        char *expect = line, *json = bar + 3;
        size_t el = strlen(expect);
        while (el && expect[el - 1] == ' ')
            expect[--el] = '\0';
        dcase *c = new_case();
        char title[600];
        snprintf(title, sizeof title, "condition %d: %.500s", lineno, json);
        c->title = xstrdup(title);
        c->mode = CASE_COND;
        c->expect = xstrdup(expect);
        bool list = json[0] == '[';
        size_t n = sizeof cond_def_fmt + strlen(json) + 4;
        c->text = malloc(n);
        snprintf(c->text, n, cond_def_fmt, list ? "" : "[", json, list ? "" : "]");
        c->len = strlen(c->text);
    }
    free(text);
    return ncases - before;
}

static void run_case(void **state)
{
    const dcase *c = *state;
    if (c->mode == CASE_EXACT || c->mode == CASE_PREFIX) {
        expect_parse_error(c->text, c->len, c->expect, c->mode == CASE_PREFIX);
        return;
    }
    pb_pipedef *def = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pipedef_parse(c->text, c->len, &def, &err);
    if (rc)
        fail_msg("refused (%s): %s", pb_error_name(rc), err.message);
    if (c->mode == CASE_COND) {
        pb_arena a;
        pb_arena_init(&a);
        pb_pipedef_args args = defaults(def, &a);
        pb_pipedef_ctx ctx = {.args = &args};
        bool outcome = !strcmp(c->expect, "false"); /* the opposite of what is expected */
        pb_error_clear(&err);
        rc = pb_pipedef_conditions(def, &def->steps[0], &ctx, &a, &outcome, &err);
        if (!strncmp(c->expect, "error ", 6)) {
            if (rc != PB_EVALIDATION || strcmp(err.message, c->expect + 6))
                fail_msg("expected error '%s', got %s '%s' (outcome %d)", c->expect + 6, pb_error_name(rc),
                         err.message, outcome);
        } else {
            if (rc)
                fail_msg("evaluation failed: %s", err.message);
            if (outcome != !strcmp(c->expect, "true"))
                fail_msg("expected %s, got %s", c->expect, outcome ? "true" : "false");
        }
        pb_arena_free(&a);
    }
    pb_pipedef_free(def);
}

static void test_case_files_loaded(void **state)
{
    (void)state;
    /* a missing or truncated case file must fail, not pass with nothing run */
    assert_true(loaded_invalid >= 100);
    assert_true(loaded_valid >= 15);
    assert_true(loaded_cond >= 50);
}

/* ------------------------------------------------------- the §6.3 example -- */

static void test_sdk_example(void **state)
{
    (void)state;
    pb_pipedef *def = parse_file("sdk_example.json");
    assert_string_equal(def->version, "2020-12-01");
    assert_non_null(def->metadata);
    assert_int_equal(def->nparams, 5);
    const pb_pipedef_param *p = def->params;
    assert_string_equal(p[0].name, "InputDataUrl");
    assert_int_equal(p[0].type, PB_PIPEDEF_STRING);
    assert_int_equal(p[0].def_value.kind, PB_PIPEDEF_VSTRING);
    assert_string_equal(p[0].def_value.str, "s3://bucket/in/");
    assert_int_equal(p[1].type, PB_PIPEDEF_INTEGER);
    assert_int_equal(p[1].def_value.kind, PB_PIPEDEF_VINTEGER);
    assert_int_equal(p[1].def_value.i, 1);
    assert_int_equal(p[2].type, PB_PIPEDEF_FLOAT);
    assert_int_equal(p[2].def_value.kind, PB_PIPEDEF_VFLOAT);
    assert_true(p[2].def_value.f == 6.0);
    assert_string_equal(p[2].def_value.str, "6.0");
    assert_int_equal(p[3].type, PB_PIPEDEF_BOOLEAN);
    assert_int_equal(p[3].def_value.kind, PB_PIPEDEF_VBOOLEAN);
    assert_false(p[3].def_value.b);
    assert_int_equal(p[4].nenum, 2);
    assert_string_equal(p[4].enum_values[1], "Approved");
    assert_true(p[4].has_default);

    assert_true(def->has_experiment_config);
    assert_int_equal(def->nsteps, 3);
    size_t eval = step(def, "Eval"), cond = step(def, "CheckMSE"), failst = step(def, "MSEFail");
    assert_int_equal(eval, 0);
    assert_int_equal(cond, 1);
    assert_int_equal(failst, 2); /* branch steps come right after their Condition step */
    assert_int_equal(def->steps[eval].type, PB_PIPEDEF_PROCESSING);
    assert_int_equal(def->steps[cond].type, PB_PIPEDEF_CONDITION);
    assert_int_equal(def->steps[failst].type, PB_PIPEDEF_FAIL);
    assert_int_equal(def->steps[failst].parent, cond);
    assert_true(def->steps[failst].in_else);
    assert_int_equal(def->steps[cond].nelse, 1);
    assert_int_equal(def->steps[cond].else_steps[0], failst);
    assert_int_equal(def->steps[cond].nif, 0);
    /* the Std:JsonGet of Eval's property file is a data dependency */
    assert_int_equal(def->steps[cond].ndeps, 1);
    assert_int_equal(def->steps[cond].deps[0], eval);
    assert_int_equal(def->steps[eval].ndeps, 0);
    assert_int_equal(def->steps[eval].nproperty_files, 1);
    assert_string_equal(def->steps[eval].property_files[0].name, "EvalReport");
    assert_string_equal(def->steps[eval].property_files[0].output_name, "evaluation");
    assert_string_equal(def->steps[eval].property_files[0].file_path, "evaluation.json");
    assert_int_equal(def->steps[cond].nconditions, 1);
    assert_int_equal(def->steps[cond].conditions[0].op, PB_PIPEDEF_LESS_THAN_OR_EQUAL_TO);
    assert_string_equal(def->steps[eval].json_path, "Steps[0]");
    assert_string_equal(def->steps[failst].json_path, "Steps[1].Arguments.ElseSteps[0]");

    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_args args = defaults(def, &a);
    fake f = {0};
    pb_arena_init(&f.arena);
    pb_pipedef_ctx ctx = fake_ctx(&f, &args);
    const char *exp, *trial;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_experiment(def, &ctx, &a, &exp, &trial, &err), 0);
    assert_string_equal(exp, "my-pipeline");
    assert_string_equal(trial, "p4jn9xou8a8s");

    /* the Fail step's message: Std:Join of a literal and a Float parameter */
    const char *msg;
    assert_int_equal(pb_pipedef_fail_message(def, &def->steps[failst], &ctx, &a, &msg, &err), 0);
    assert_string_equal(msg, "MSE above 6.0");

    /* the condition, reading the property file through the callback */
    f.file_key[0] = "Eval/EvalReport";
    f.file_text[0] = "{\"regression_metrics\": {\"mse\": {\"value\": 6.0, \"standard_deviation\": 0.1}}}";
    bool outcome = false;
    assert_int_equal(pb_pipedef_conditions(def, &def->steps[cond], &ctx, &a, &outcome, &err), 0);
    assert_true(outcome);
    f.file_text[0] = "{\"regression_metrics\": {\"mse\": {\"value\": 6.01}}}";
    assert_int_equal(pb_pipedef_conditions(def, &def->steps[cond], &ctx, &a, &outcome, &err), 0);
    assert_false(outcome);

    pb_arena_free(&f.arena);
    pb_arena_free(&a);
    pb_pipedef_free(def);
}

static void test_fields_and_lookups(void **state)
{
    (void)state;
    pb_pipedef *def = parse_ok(
        "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"P\",\"Type\":\"Processing\","
        "\"CacheConfig\":{\"Enabled\":true,\"ExpireAfter\":\"P1DT12H\"},"
        "\"RetryPolicies\":[{\"ExceptionType\":[\"Step.SERVICE_FAULT\",\"Step.THROTTLING\"],\"IntervalSeconds\":5,"
        "\"BackoffRate\":1.5,\"MaxAttempts\":3},{\"ExceptionType\":[\"SageMaker.CAPACITY_ERROR\"],"
        "\"ExpireAfterMin\":60}],\"DisplayName\":\"Prepare\",\"Description\":\"prepares\","
        "\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}},"
        "{\"Name\":\"Q\",\"Type\":\"Training\",\"DependsOn\":[\"P\",\"P\"],"
        "\"Arguments\":{\"AlgorithmSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}}]}");
    const pb_pipedef_step *s = &def->steps[0];
    assert_true(s->cache_enabled);
    assert_int_equal(s->cache_expire_seconds, 86400 + 12 * 3600);
    assert_string_equal(s->display_name, "Prepare");
    assert_string_equal(s->description, "prepares");
    assert_int_equal(s->nretry_policies, 2);
    assert_int_equal(s->retry_policies[0].exceptions, PB_PIPEDEF_RETRY_SERVICE_FAULT | PB_PIPEDEF_RETRY_THROTTLING);
    assert_int_equal(s->retry_policies[0].interval_seconds, 5);
    assert_true(s->retry_policies[0].backoff_rate == 1.5);
    assert_int_equal(s->retry_policies[0].max_attempts, 3);
    assert_int_equal(s->retry_policies[0].expire_after_min, -1);
    assert_int_equal(s->retry_policies[1].exceptions, PB_PIPEDEF_RETRY_CAPACITY);
    assert_int_equal(s->retry_policies[1].interval_seconds, 1); /* defaults */
    assert_true(s->retry_policies[1].backoff_rate == 2.0);
    assert_int_equal(s->retry_policies[1].max_attempts, -1);
    assert_int_equal(s->retry_policies[1].expire_after_min, 60);
    /* DependsOn listed twice is one dependency */
    assert_int_equal(def->steps[1].ndeps, 1);
    assert_int_equal(def->steps[1].deps[0], 0);
    assert_int_equal(pb_pipedef_find_step(def, "P", 1), 0);
    assert_int_equal(pb_pipedef_find_step(def, "Q", 1), 1);
    assert_int_equal(pb_pipedef_find_step(def, "PQ", 1), 0); /* only len bytes are read */
    assert_int_equal(pb_pipedef_find_step(def, "R", 1), PB_PIPEDEF_NONE);
    assert_int_equal(pb_pipedef_find_step(def, "", 0), PB_PIPEDEF_NONE);
    assert_int_equal(pb_pipedef_find_param(def, "P", 1), PB_PIPEDEF_NONE);
    assert_string_equal(pb_pipedef_step_type_name(PB_PIPEDEF_TRAINING), "Training");
    assert_string_equal(pb_pipedef_type_name(PB_PIPEDEF_BOOLEAN), "Boolean");
    assert_string_equal(pb_pipedef_var_name(PB_PIPEDEF_VAR_PIPELINE_EXECUTION_ARN), "PipelineExecutionArn");
    pb_pipedef_free(def);
    pb_pipedef_free(NULL);
}

/* -------------------------------------------------------------- size caps -- */

static void test_size_caps(void **state)
{
    (void)state;
    expect_parse_error("", 0,
                       "1 validation error detected: Value '' at 'pipelineDefinition' failed to satisfy constraint: "
                       "Member must have length greater than or equal to 1",
                       false);
    /* 1,048,577 characters: refused before parsing */
    size_t n = 1048577;
    char *big = malloc(n);
    memset(big, ' ', n);
    expect_parse_error(big, n,
                       "1 validation error detected: Value at 'pipelineDefinition' failed to satisfy constraint: "
                       "Member must have length less than or equal to 1048576",
                       false);
    /* the limit is in characters: 600,000 bytes of 300,000 two-byte characters pass */
    const char *head = "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"F\",\"Type\":\"Fail\",\"Arguments\":{"
                       "\"ErrorMessage\":\"";
    const char *tail = "\"}}]}";
    size_t hl = strlen(head), tl = strlen(tail), nch = 300000;
    char *wide = malloc(hl + 2 * nch + tl + 1);
    memcpy(wide, head, hl);
    for (size_t i = 0; i < nch; i++)
        memcpy(wide + hl + 2 * i, "\xc3\xa9", 2);
    memcpy(wide + hl + 2 * nch, tail, tl + 1);
    pb_pipedef *def = parse_ok(wide);
    pb_pipedef_free(def);
    free(wide);
    free(big);

    /* 500 steps pass (a chain: the longest dependency path), 501 do not */
    for (int total = 500; total <= 501; total++) {
        size_t cap = (size_t)total * 200 + 100;
        char *t = malloc(cap), *w = t;
        w += sprintf(w, "{\"Version\":\"2020-12-01\",\"Steps\":[");
        for (int i = 0; i < total; i++) {
            if (i)
                w += sprintf(w, ",");
            w += sprintf(w, "{\"Name\":\"S%d\",\"Type\":\"Processing\",", i);
            if (i)
                w += sprintf(w, "\"DependsOn\":[\"S%d\"],", i - 1);
            w += sprintf(w, "\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}}");
        }
        sprintf(w, "]}");
        if (total == 500) {
            def = parse_ok(t);
            assert_int_equal(def->nsteps, 500);
            assert_int_equal(def->steps[499].deps[0], 498);
            pb_pipedef_free(def);
        } else {
            expect_parse_error(t, strlen(t),
                               "The pipeline definition has more than 500 steps (IfSteps and ElseSteps included); "
                               "pipebridge runs at most 500.",
                               false);
        }
        free(t);
    }

    /* 501 steps of which 500 hide in branches count too */
    {
        size_t cap = 501 * 100 + 400;
        char *t = malloc(cap), *w = t;
        w += sprintf(w, "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"C\",\"Type\":\"Condition\","
                        "\"Arguments\":{\"Conditions\":[],\"IfSteps\":[");
        for (int i = 0; i < 500; i++)
            w += sprintf(w, "%s{\"Name\":\"F%d\",\"Type\":\"Fail\",\"Arguments\":{}}", i ? "," : "", i);
        sprintf(w, "]}}]}");
        expect_parse_error(t, strlen(t),
                           "The pipeline definition has more than 500 steps (IfSteps and ElseSteps included); "
                           "pipebridge runs at most 500.",
                           false);
        free(t);
    }

    /* 201 parameters */
    {
        char *t = malloc(201 * 40 + 200), *w = t;
        w += sprintf(w, "{\"Version\":\"2020-12-01\",\"Parameters\":[");
        for (int i = 0; i < 201; i++)
            w += sprintf(w, "%s{\"Name\":\"P%d\"}", i ? "," : "", i);
        sprintf(w, "],\"Steps\":[{\"Name\":\"F\",\"Type\":\"Fail\",\"Arguments\":{}}]}");
        expect_parse_error(t, strlen(t), "The pipeline definition declares 201 parameters; at most 200 are allowed.",
                           false);
        free(t);
    }
}

static void test_entrypoint_item_length(void **state)
{
    (void)state;
    char arg[300];
    for (int len = 256; len <= 257; len++) {
        memset(arg, 'a', (size_t)len);
        arg[len] = '\0';
        char t[1000];
        snprintf(t, sizeof t,
                 "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"P\",\"Type\":\"Processing\",\"Arguments\":{"
                 "\"AppSpecification\":{\"ContainerEntrypoint\":[\"%s\"]}}}]}",
                 arg);
        if (len == 256)
            pb_pipedef_free(parse_ok(t));
        else
            expect_parse_error(t, strlen(t),
                               "ContainerEntrypoint[0] of step 'P' is 257 characters long; SageMaker allows 1 to 256.",
                               false);
    }
}

static void test_error_contract(void **state)
{
    (void)state;
    /* NULL err: the code alone, *out NULL */
    pb_pipedef *def = (pb_pipedef *)1;
    assert_int_equal(pb_pipedef_parse("[]", 2, &def, NULL), PB_EVALIDATION);
    assert_null(def);
    /* syntax errors name the line and column */
    const char *bad = "{\"Version\":\"2020-12-01\",\n \"Steps\": [,]}";
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_parse(bad, strlen(bad), &def, &err), PB_EVALIDATION);
    assert_non_null(strstr(err.message, "Unable to parse pipeline definition. "));
    assert_non_null(strstr(err.message, " at line 2, column "));
    assert_null(strchr(err.message, '\n'));
    /* the text need not be NUL-terminated, and only len bytes are read */
    const char *two = "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"F\",\"Type\":\"Fail\",\"Arguments\":{}}]}GARBAGE";
    assert_int_equal(pb_pipedef_parse(two, strlen(two) - 7, &def, &err), 0);
    pb_pipedef_free(def);
    /* a NUL inside a name cannot smuggle a valid prefix through */
    const char *nul = "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"A\\u0000B\",\"Type\":\"Fail\",\"Arguments\":{}}]}";
    expect_parse_error(nul, strlen(nul), "Name at 'Steps[0].Name' contains a NUL character.", false);
    /* a JSON path too long to show ends with "..." */
    char key[61];
    memset(key, 'k', 60);
    key[60] = '\0';
    char *deep = malloc(60 * 70 + 400), *w = deep;
    w += sprintf(w, "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"P\",\"Type\":\"Processing\",\"Arguments\":{"
                    "\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]},");
    for (int i = 0; i < 55; i++)
        w += sprintf(w, "\"%s\":{", key);
    w += sprintf(w, "\"x\":{\"Get\":\"Parameters.Nope\"}");
    for (int i = 0; i < 55; i++)
        w += sprintf(w, "}");
    sprintf(w, "}}]}");
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_parse(deep, strlen(deep), &def, &err), PB_EVALIDATION);
    const char *start = "Parameter 'Nope' is not defined in the pipeline definition's Parameters (Get 'Parameters.Nope' "
                        "at 'Steps[0].Arguments.kkkk";
    assert_int_equal(strncmp(err.message, start, strlen(start)), 0);
    size_t ml = strlen(err.message);
    assert_true(ml > 1000 && ml < PB_ERROR_MESSAGE_MAX - 1);
    assert_string_equal(err.message + ml - 6, "...').");
    free(deep);
}

/* --------------------------------------------------- parameters at start -- */

typedef struct bind_case {
    const char *name, *value;
    const char *msg; /* NULL: must bind */
} bind_case;

static void test_bind_errors(void **state)
{
    (void)state;
    pb_pipedef *def = parse_file("sdk_example.json");
    static const bind_case cases_[] = {
        {"Nope", "1", "Unknown parameter 'Nope'"},
        {"instancecount", "1", "Unknown parameter 'instancecount'"},
        {"InstanceCount", "abc", "Unexpected type for parameter 'InstanceCount'. Expected Integer but found String."},
        {"InstanceCount", "1.5", "Unexpected type for parameter 'InstanceCount'. Expected Integer but found Float."},
        {"InstanceCount", "true", "Unexpected type for parameter 'InstanceCount'. Expected Integer but found Boolean."},
        {"InstanceCount", " 1", "Unexpected type for parameter 'InstanceCount'. Expected Integer but found String."},
        {"InstanceCount", "9223372036854775808",
         "Value '9223372036854775808' of parameter 'InstanceCount' is out of range for an Integer "
         "(-9223372036854775808 to 9223372036854775807)."},
        {"MseThreshold", "abc", "Unexpected type for parameter 'MseThreshold'. Expected Float but found String."},
        {"MseThreshold", "False", "Unexpected type for parameter 'MseThreshold'. Expected Float but found Boolean."},
        {"MseThreshold", "6.", "Unexpected type for parameter 'MseThreshold'. Expected Float but found String."},
        {"MseThreshold", "1e999", "Value '1e999' of parameter 'MseThreshold' is out of range for a Float."},
        {"UseSpot", "1", "Unexpected type for parameter 'UseSpot'. Expected Boolean but found Integer."},
        {"UseSpot", "yes", "Unexpected type for parameter 'UseSpot'. Expected Boolean but found String."},
        {"UseSpot", "", "[string \"\" is too short (length: 0, required minimum: 1)]"},
        {"InputDataUrl", "", "[string \"\" is too short (length: 0, required minimum: 1)]"},
        {"ApprovalStatus", "Maybe",
         "Value 'Maybe' of parameter 'ApprovalStatus' is not one of its EnumValues: [Pending, Approved]."},
        {"ApprovalStatus", "approved",
         "Value 'approved' of parameter 'ApprovalStatus' is not one of its EnumValues: [Pending, Approved]."},
        {"InstanceCount", "-9223372036854775808", NULL},
        {"InstanceCount", "007", NULL},
        {"MseThreshold", "7", NULL},
        {"MseThreshold", "-1.5e-3", NULL},
        {"UseSpot", "TRUE", NULL},
        {"InputDataUrl", "123", NULL},
        {"ApprovalStatus", "Approved", NULL},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        pb_arena a;
        pb_arena_init(&a);
        pb_pipedef_kv kv = {cases_[i].name, strlen(cases_[i].name), cases_[i].value, strlen(cases_[i].value)};
        pb_pipedef_args args;
        pb_error err;
        pb_error_clear(&err);
        int rc = pb_pipedef_bind(def, &kv, 1, &a, &args, &err);
        if (cases_[i].msg) {
            if (rc != PB_EVALIDATION || strcmp(err.message, cases_[i].msg))
                fail_msg("%s=%s: expected '%s', got %s '%s'", cases_[i].name, cases_[i].value, cases_[i].msg,
                         pb_error_name(rc), err.message);
        } else if (rc) {
            fail_msg("%s=%s refused: %s", cases_[i].name, cases_[i].value, err.message);
        }
        pb_arena_free(&a);
    }

    /* too long: 1025 characters (multibyte characters count once) */
    char v[2100];
    memset(v, 'x', 1025);
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_kv kv = {"InputDataUrl", 12, v, 1025};
    pb_pipedef_args args;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_bind(def, &kv, 1, &a, &args, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "Parameter 'InputDataUrl' value is too long (length: 1025, required maximum: 1024).");
    for (int i = 0; i < 1024; i++)
        memcpy(v + 2 * i, "\xc3\xa9", 2);
    kv.value_len = 2048;
    assert_int_equal(pb_pipedef_bind(def, &kv, 1, &a, &args, &err), 0);

    /* a name given twice */
    pb_pipedef_kv two[2] = {{"UseSpot", 7, "true", 4}, {"UseSpot", 7, "false", 5}};
    assert_int_equal(pb_pipedef_bind(def, two, 2, &a, &args, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "Parameter 'UseSpot' is given more than once.");

    /* more than 200 entries */
    pb_pipedef_kv many[201];
    for (int i = 0; i < 201; i++)
        many[i] = (pb_pipedef_kv){"UseSpot", 7, "true", 4};
    assert_int_equal(pb_pipedef_bind(def, many, 201, &a, &args, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "1 validation error detected: Value at 'pipelineParameters' failed to satisfy "
                                     "constraint: Member must have length less than or equal to 200");

    /* names and values are read by length, never past it */
    pb_pipedef_kv cut = {"UseSpotXYZ", 7, "falseXYZ", 5};
    assert_int_equal(pb_pipedef_bind(def, &cut, 1, &a, &args, &err), 0);
    assert_int_equal(args.values[3].kind, PB_PIPEDEF_VBOOLEAN);
    assert_false(args.values[3].b);
    pb_arena_free(&a);
    pb_pipedef_free(def);

    /* a parameter without a default must be supplied */
    def = parse_ok("{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"A\",\"DefaultValue\":\"x\"},"
                   "{\"Name\":\"Region\",\"Type\":\"String\"}],\"Steps\":[{\"Name\":\"F\",\"Type\":\"Fail\","
                   "\"Arguments\":{}}]}");
    pb_arena_init(&a);
    assert_int_equal(pb_pipedef_bind(def, NULL, 0, &a, &args, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "Parameter 'Region' is undefined.");
    pb_pipedef_kv region = {"Region", 6, "eu-west-1", 9};
    assert_int_equal(pb_pipedef_bind(def, &region, 1, &a, &args, &err), 0);
    assert_string_equal(args.values[1].str, "eu-west-1");
    assert_false(args.from_default[1]);
    assert_true(args.from_default[0]);
    pb_arena_free(&a);
    pb_pipedef_free(def);
}

static void test_bind_fills_defaults_typed(void **state)
{
    (void)state;
    pb_pipedef *def = parse_file("sdk_example.json");
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_kv given[] = {{"MseThreshold", 12, "7", 1}, {"InstanceCount", 13, "4", 1}, {"UseSpot", 7, "tRuE", 4}};
    pb_pipedef_args args;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_bind(def, given, 3, &a, &args, &err), 0);
    assert_int_equal(args.n, 5);
    assert_true(args.from_default[0]);
    assert_string_equal(args.values[0].str, "s3://bucket/in/");
    assert_false(args.from_default[1]);
    assert_int_equal(args.values[1].kind, PB_PIPEDEF_VINTEGER);
    assert_int_equal(args.values[1].i, 4);
    assert_int_equal(args.values[2].kind, PB_PIPEDEF_VFLOAT);
    assert_true(args.values[2].f == 7.0);
    assert_string_equal(args.values[2].str, "7"); /* the text as given */
    assert_int_equal(args.values[3].kind, PB_PIPEDEF_VBOOLEAN);
    assert_true(args.values[3].b);
    assert_true(args.from_default[4]);
    assert_string_equal(args.values[4].str, "Pending");
    /* the bound values do not depend on the definition's memory */
    pb_pipedef_free(def);
    assert_string_equal(args.values[0].str, "s3://bucket/in/");
    assert_string_equal(args.values[4].str, "Pending");
    pb_arena_free(&a);
}

/* ------------------------------------------------------------ evaluation -- */

static const char eval_def[] =
    "{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"Bucket\",\"DefaultValue\":\"b\"},"
    "{\"Name\":\"N\",\"Type\":\"Integer\",\"DefaultValue\":3},{\"Name\":\"Ok\",\"Type\":\"Boolean\",\"DefaultValue\":true}],"
    "\"Steps\":["
    "{\"Name\":\"Prep\",\"Type\":\"Processing\",\"PropertyFiles\":[{\"PropertyFileName\":\"Report\",\"OutputName\":"
    "\"evaluation\",\"FilePath\":\"report.json\"}],\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":"
    "[\"true\"]}}},"
    "{\"Name\":\"Train\",\"Type\":\"Training\",\"Arguments\":{\"AlgorithmSpecification\":{\"ContainerEntrypoint\":"
    "[\"true\"]}}},"
    "{\"Name\":\"C\",\"Type\":\"Condition\",\"Arguments\":{\"Conditions\":[]}},"
    "{\"Name\":\"Use\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]},"
    "\"X\":["
    /* 0 */ "{\"Get\":\"Parameters.Bucket\"},"
    /* 1 */ "{\"Get\":\"Parameters.N\"},"
    /* 2 */ "{\"Get\":\"Execution.PipelineExecutionId\"},"
    /* 3 */ "{\"Get\":\"Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri\"},"
    /* 4 */ "{\"Get\":\"Steps.Train.FinalMetricDataList['val:acc'].Value\"},"
    /* 5 */ "{\"Get\":\"Steps.Train.FinalMetricDataList[1].MetricName\"},"
    /* 6 */ "{\"Get\":\"Steps.Train.ModelArtifacts\"},"
    /* 7 */ "{\"Get\":\"Steps.Train.TrainingJobStatus\"},"
    /* 8 */ "{\"Get\":\"Steps.C.Outcome\"},"
    /* 9 */ "{\"Std:Join\":{\"On\":\"/\",\"Values\":[\"s3:/\",{\"Get\":\"Parameters.Bucket\"},{\"Std:Join\":{\"On\":"
    "\"-\",\"Values\":[1,2.50,true,{\"Get\":\"Parameters.N\"},{\"Get\":\"Parameters.Ok\"}]}},"
    "{\"Get\":\"Execution.PipelineExecutionId\"}]}},"
    /* 10 */ "{\"Std:JsonGet\":{\"PropertyFile\":{\"Get\":\"Steps.Prep.PropertyFiles.Report\"},\"Path\":"
    "\"$.metrics[0]['a b'].value\"}},"
    /* 11 */ "{\"Std:JsonGet\":{\"PropertyFile\":{\"Get\":\"Steps.Prep.PropertyFiles.Report\"},\"Path\":"
    "\"metrics[1]\"}},"
    /* 12 */ "{\"Std:JsonGet\":{\"PropertyFile\":{\"Get\":\"Steps.Prep.PropertyFiles.Report\"},\"Path\":"
    "\"metrics[9]\"}},"
    /* 13 */ "{\"Get\":\"Execution.PipelineArn\"},"
    /* 14 */ "{\"Std:Join\":{\"On\":\",\",\"Values\":[{\"Get\":\"Steps.Train.ModelArtifacts\"},{\"Std:JsonGet\":{"
    "\"PropertyFile\":{\"Get\":\"Steps.Prep.PropertyFiles.Report\"},\"Path\":\"nothing\"}}]}},"
    /* 15 */ "{\"Get\":\"Steps.Train.TuningJobArn\"},"
    /* 16 */ "{\"Std:Join\":{\"On\":\"\",\"Values\":[]}},"
    /* 17 */ "\"literal\""
    "]}}]}";

static const char train_props[] =
    "{\"TrainingJobName\":\"pipelines-abc-Train\",\"TrainingJobStatus\":\"Completed\","
    "\"ModelArtifacts\":{\"S3ModelArtifacts\":\"s3://b/model.tar.gz\"},"
    "\"FinalMetricDataList\":[{\"MetricName\":\"train:loss\",\"Value\":0.25},"
    "{\"MetricName\":\"val:acc\",\"Value\":0.93}]}";

static const char prep_props[] =
    "{\"ProcessingJobName\":\"pipelines-abc-Prep\",\"ProcessingOutputConfig\":{\"Outputs\":["
    "{\"OutputName\":\"validation\",\"S3Output\":{\"S3Uri\":\"s3://b/validation\"}},"
    "{\"OutputName\":\"train\",\"S3Output\":{\"S3Uri\":\"s3://b/train\"}}]}}";

typedef struct eval_env {
    pb_pipedef *def;
    pb_arena a;
    pb_pipedef_args args;
    fake f;
    pb_pipedef_ctx ctx;
    const pb_json *x; /* Use.Arguments.X */
} eval_env;

static void eval_setup(eval_env *env)
{
    memset(env, 0, sizeof *env);
    env->def = parse_ok(eval_def);
    pb_arena_init(&env->a);
    pb_arena_init(&env->f.arena);
    env->args = defaults(env->def, &env->a);
    env->f.prop_step[0] = "Prep";
    env->f.prop_json[0] = prep_props;
    env->f.prop_step[1] = "Train";
    env->f.prop_json[1] = train_props;
    env->f.file_key[0] = "Prep/Report";
    env->f.file_text[0] = "{\"metrics\":[{\"a b\":{\"value\":0.5}},17,null]}";
    env->ctx = fake_ctx(&env->f, &env->args);
    env->x = pb_json_get(env->def->steps[step(env->def, "Use")].arguments, "X");
    assert_non_null(env->x);
}

static void eval_teardown(eval_env *env)
{
    pb_arena_free(&env->f.arena);
    pb_arena_free(&env->a);
    pb_pipedef_free(env->def);
}

static pb_pipedef_value eval_ok(eval_env *env, size_t i)
{
    pb_pipedef_value v;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pipedef_eval(env->def, env->x->items[i], &env->ctx, &env->a, &v, &err);
    if (rc)
        fail_msg("X[%zu] failed: %s", i, err.message);
    return v;
}

static void eval_err(eval_env *env, size_t i, int code, const char *msg)
{
    pb_pipedef_value v;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_pipedef_eval(env->def, env->x->items[i], &env->ctx, &env->a, &v, &err);
    if (rc != code || strcmp(err.message, msg))
        fail_msg("X[%zu]: expected %s '%s', got %s '%s'", i, pb_error_name(code), msg, pb_error_name(rc), err.message);
}

static void test_eval_get(void **state)
{
    (void)state;
    eval_env env;
    eval_setup(&env);
    pb_pipedef_value v = eval_ok(&env, 0);
    assert_int_equal(v.kind, PB_PIPEDEF_VSTRING);
    assert_string_equal(v.str, "b");
    v = eval_ok(&env, 1);
    assert_int_equal(v.kind, PB_PIPEDEF_VINTEGER);
    assert_int_equal(v.i, 3);
    v = eval_ok(&env, 2);
    assert_string_equal(v.str, "p4jn9xou8a8s");
    /* Outputs['train'] picks the list item by OutputName */
    v = eval_ok(&env, 3);
    assert_string_equal(v.str, "s3://b/train");
    /* FinalMetricDataList['val:acc'] by MetricName; a number keeps its type */
    v = eval_ok(&env, 4);
    assert_int_equal(v.kind, PB_PIPEDEF_VFLOAT);
    assert_true(v.f == 0.93);
    assert_string_equal(v.str, "0.93");
    v = eval_ok(&env, 5);
    assert_string_equal(v.str, "val:acc");
    /* a whole structure */
    v = eval_ok(&env, 6);
    assert_int_equal(v.kind, PB_PIPEDEF_VJSON);
    assert_string_equal(v.str, "{\"S3ModelArtifacts\":\"s3://b/model.tar.gz\"}");
    v = eval_ok(&env, 7);
    assert_string_equal(v.str, "Completed");
    /* a literal */
    v = eval_ok(&env, 17);
    assert_string_equal(v.str, "literal");

    /* Outcome comes from the plan */
    eval_err(&env, 8, PB_EVALIDATION, "Cannot evaluate Steps.C.Outcome: step 'C' has no properties (it has not run).");
    pb_pipedef_plan plan;
    assert_int_equal(pb_pipedef_plan_init(&plan, env.def), 0);
    env.ctx.plan = &plan;
    eval_err(&env, 8, PB_EVALIDATION, "Cannot evaluate Steps.C.Outcome: step 'C' has no properties (it has not run).");
    pb_pipedef_plan_outcome(&plan, step(env.def, "C"), false);
    v = eval_ok(&env, 8);
    assert_int_equal(v.kind, PB_PIPEDEF_VSTRING);
    assert_string_equal(v.str, "False");
    pb_pipedef_plan_outcome(&plan, step(env.def, "C"), true);
    assert_string_equal(eval_ok(&env, 8).str, "True");
    pb_pipedef_plan_free(&plan);

    /* what is not there */
    eval_err(&env, 13, PB_EVALIDATION, "Execution variable PipelineArn is not available.");
    eval_err(&env, 15, PB_EVALIDATION,
             "Cannot evaluate Steps.Train.TuningJobArn: step 'Train' has no such property.");
    env.f.prop_step[1] = NULL; /* Train has not run */
    eval_err(&env, 4, PB_EVALIDATION,
             "Cannot evaluate Steps.Train.FinalMetricDataList['val:acc'].Value: step 'Train' has no properties (it "
             "has not run).");
    env.ctx.args = NULL;
    eval_err(&env, 0, PB_EVALIDATION, "Parameter 'Bucket' has no value: no parameters are bound to this execution.");
    eval_teardown(&env);
}

static void test_eval_join_and_jsonget(void **state)
{
    (void)state;
    eval_env env;
    eval_setup(&env);
    /* numbers keep their text ("2.50"), booleans are true/false, nested joins join */
    pb_pipedef_value v = eval_ok(&env, 9);
    assert_int_equal(v.kind, PB_PIPEDEF_VSTRING);
    assert_string_equal(v.str, "s3://b/1-2.50-true-3-true/p4jn9xou8a8s");
    v = eval_ok(&env, 16);
    assert_string_equal(v.str, "");
    assert_int_equal(v.len, 0);

    v = eval_ok(&env, 10);
    assert_int_equal(v.kind, PB_PIPEDEF_VFLOAT);
    assert_true(v.f == 0.5);
    v = eval_ok(&env, 11);
    assert_int_equal(v.kind, PB_PIPEDEF_VINTEGER);
    assert_int_equal(v.i, 17);
    assert_int_equal(env.f.file_reads, 2);
    eval_err(&env, 12, PB_EVALIDATION,
             "Std:JsonGet: property file 'Report' of step 'Prep' has nothing at path 'metrics[9]'.");
    eval_err(&env, 14, PB_EVALIDATION,
             "Std:JsonGet: property file 'Report' of step 'Prep' has nothing at path 'nothing'.");

    /* a null is a value, but not one Join accepts */
    env.f.file_text[0] = "{\"nothing\":null}";
    eval_err(&env, 14, PB_EVALIDATION, "Std:Join cannot join null (value 1).");
    /* the callback's error and code pass through */
    env.f.file_text[0] = "{\"metrics\": [";
    pb_pipedef_value v2;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_eval(env.def, env.x->items[10], &env.ctx, &env.a, &v2, &err), PB_EVALIDATION);
    const char *bad = "Property file 'Report' of step 'Prep' is not valid JSON: Unexpected end-of-input";
    if (strncmp(err.message, bad, strlen(bad)) || strchr(err.message, '\n'))
        fail_msg("got '%s'", err.message);
    env.f.file_rc = PB_EIO;
    eval_err(&env, 10, PB_EIO, "Cannot read property file 'Report' of step 'Prep': disk on fire");
    env.ctx.read_property_file = NULL;
    eval_err(&env, 10, PB_EVALIDATION, "Cannot read property file 'Report' of step 'Prep' here.");
    eval_teardown(&env);
}

static void test_eval_budget(void **state)
{
    (void)state;
    /* 1100 copies of a 1000-character parameter: more than one value may hold */
    size_t cap = 1100 * 40 + 4000;
    char *t = malloc(cap), *w = t;
    char val[1001];
    memset(val, 'v', 1000);
    val[1000] = '\0';
    w += sprintf(w, "{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"V\",\"DefaultValue\":\"%s\"}],"
                    "\"Steps\":[{\"Name\":\"F\",\"Type\":\"Fail\",\"Arguments\":{\"ErrorMessage\":{\"Std:Join\":{"
                    "\"On\":\"\",\"Values\":[",
                 val);
    for (int i = 0; i < 1100; i++)
        w += sprintf(w, "%s{\"Get\":\"Parameters.V\"}", i ? "," : "");
    sprintf(w, "]}}}}]}");
    pb_pipedef *def = parse_ok(t);
    free(t);
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_args args = defaults(def, &a);
    pb_pipedef_ctx ctx = {.args = &args};
    const char *msg = NULL;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_fail_message(def, &def->steps[0], &ctx, &a, &msg, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "Std:Join produces more than 1048576 bytes.");
    pb_arena_free(&a);
    pb_pipedef_free(def);
}

/* -------------------------------------------------------------- commands -- */

static void test_command(void **state)
{
    (void)state;
    pb_pipedef *def = parse_file("four_step.json");
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_kv given = {"InputDataUrl", 12, "s3://other/in/", 14};
    pb_pipedef_args args;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_bind(def, &given, 1, &a, &args, &err), 0);
    fake f = {0};
    pb_arena_init(&f.arena);
    pb_pipedef_ctx ctx = fake_ctx(&f, &args);

    pb_pipedef_cmd cmd;
    assert_int_equal(pb_pipedef_command(def, &def->steps[step(def, "PrepTrain")], &ctx, &a, &cmd, &err), 0);
    assert_int_equal(cmd.argc, 6);
    const char *want[] = {"python3", "prep.py", "--input", "s3://other/in/", "--split", "train"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(cmd.argv[i], want[i]);
    assert_null(cmd.argv[6]);
    assert_int_equal(cmd.envc, 2);
    assert_string_equal(cmd.env[0], "SPLIT=train");
    assert_string_equal(cmd.env[1], "RUN=p4jn9xou8a8s");
    assert_null(cmd.env[2]);
    assert_int_equal(cmd.max_runtime_seconds, 0);
    /* the resolved Arguments: what a runner reports back as the step's properties */
    const pb_json *out0 = pb_json_get(pb_json_get(cmd.arguments, "ProcessingOutputConfig"), "Outputs")->items[0];
    const pb_json *uri = pb_json_get(pb_json_get(out0, "S3Output"), "S3Uri");
    assert_int_equal(uri->type, PB_JSON_STRING);
    assert_string_equal(uri->str, "s3://bucket/p4jn9xou8a8s/train");

    /* Training: argv from AlgorithmSpecification, an Integer parameter as text */
    pb_buf props;
    pb_buf_init(&props, 0);
    assert_int_equal(pb_json_write(&props, cmd.arguments), 0);
    f.prop_step[0] = "PrepTrain";
    f.prop_json[0] = props.data;
    pb_pipedef_plan plan;
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    pb_pipedef_plan_outcome(&plan, step(def, "CheckMSE"), true);
    ctx.plan = &plan;
    assert_int_equal(pb_pipedef_command(def, &def->steps[step(def, "Train")], &ctx, &a, &cmd, &err), 0);
    const char *want2[] = {"python3", "train.py", "--epochs", "3", "--data", "s3://bucket/p4jn9xou8a8s/train"};
    assert_int_equal(cmd.argc, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(cmd.argv[i], want2[i]);
    assert_int_equal(cmd.envc, 1);
    assert_string_equal(cmd.env[0], "CHECK=True");
    assert_int_equal(cmd.max_runtime_seconds, 3600);

    /* not a job step */
    assert_int_equal(pb_pipedef_command(def, &def->steps[step(def, "CheckMSE")], &ctx, &a, &cmd, &err),
                     PB_EVALIDATION);
    assert_string_equal(err.message, "Step 'CheckMSE' is a Condition step; it runs no process.");

    /* a parameter value that breaks SageMaker's 256-character limit once resolved */
    char longv[301];
    memset(longv, 'x', 300);
    longv[300] = '\0';
    given = (pb_pipedef_kv){"InputDataUrl", 12, longv, 300};
    assert_int_equal(pb_pipedef_bind(def, &given, 1, &a, &args, &err), 0);
    assert_int_equal(pb_pipedef_command(def, &def->steps[step(def, "PrepTrain")], &ctx, &a, &cmd, &err),
                     PB_EVALIDATION);
    assert_string_equal(err.message,
                        "ContainerArguments[1] of step 'PrepTrain' is 300 characters long; SageMaker allows 1 to 256.");

    /* the resolved Arguments outlive the definition and the bound parameters */
    pb_arena mine;
    pb_arena_init(&mine);
    given = (pb_pipedef_kv){"InputDataUrl", 12, "s3://x/", 7};
    pb_arena pa;
    pb_arena_init(&pa);
    assert_int_equal(pb_pipedef_bind(def, &given, 1, &pa, &args, &err), 0);
    assert_int_equal(pb_pipedef_command(def, &def->steps[step(def, "PrepTrain")], &ctx, &mine, &cmd, &err), 0);
    pb_pipedef_plan_free(&plan);
    pb_arena_free(&pa);
    pb_pipedef_free(def);
    assert_string_equal(cmd.argv[3], "s3://x/");
    const pb_json *spec = pb_json_get(cmd.arguments, "AppSpecification");
    assert_string_equal(pb_json_get(spec, "ImageUri")->str, "ignored-locally");
    assert_string_equal(pb_json_get(spec, "ContainerArguments")->items[1]->str, "s3://x/");
    pb_arena_free(&mine);
    pb_buf_free(&props);
    pb_arena_free(&f.arena);
    pb_arena_free(&a);
}

static void test_command_values(void **state)
{
    (void)state;
    pb_pipedef *def = parse_ok(
        "{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"F\",\"Type\":\"Float\",\"DefaultValue\":0.5},"
        "{\"Name\":\"B\",\"Type\":\"Boolean\",\"DefaultValue\":false}],\"Steps\":[{\"Name\":\"T\",\"Type\":\"Training\","
        "\"Arguments\":{\"AlgorithmSpecification\":{\"ContainerEntrypoint\":[\"run\",7,true]," 
        "\"ContainerArguments\":[{\"Get\":\"Parameters.F\"},{\"Get\":\"Parameters.B\"},\"a b\"]},"
        "\"Environment\":{\"LR\":{\"Get\":\"Parameters.F\"},\"N\":2},"
        "\"StoppingCondition\":{\"MaxRuntimeInSeconds\":0}}}]}");
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_args args = defaults(def, &a);
    pb_pipedef_ctx ctx = {.args = &args};
    pb_pipedef_cmd cmd;
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_pipedef_command(def, &def->steps[0], &ctx, &a, &cmd, &err), PB_EVALIDATION);
    assert_string_equal(err.message, "StoppingCondition.MaxRuntimeInSeconds of step 'T' must be a positive integer.");
    pb_pipedef_free(def);
    def = parse_ok(
        "{\"Version\":\"2020-12-01\",\"Parameters\":[{\"Name\":\"F\",\"Type\":\"Float\",\"DefaultValue\":0.5},"
        "{\"Name\":\"B\",\"Type\":\"Boolean\",\"DefaultValue\":false}],\"Steps\":[{\"Name\":\"T\",\"Type\":\"Training\","
        "\"Arguments\":{\"AlgorithmSpecification\":{\"ContainerEntrypoint\":[\"run\",7,true],"
        "\"ContainerArguments\":[{\"Get\":\"Parameters.F\"},{\"Get\":\"Parameters.B\"},\"a b\"]},"
        "\"Environment\":{\"LR\":{\"Get\":\"Parameters.F\"},\"N\":2}}}]}");
    args = defaults(def, &a);
    assert_int_equal(pb_pipedef_command(def, &def->steps[0], &ctx, &a, &cmd, &err), 0);
    const char *want[] = {"run", "7", "true", "0.5", "false", "a b"};
    assert_int_equal(cmd.argc, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(cmd.argv[i], want[i]);
    assert_string_equal(cmd.env[0], "LR=0.5");
    assert_string_equal(cmd.env[1], "N=2");
    pb_arena_free(&a);
    pb_pipedef_free(def);
}

/* -------------------------------------------------------------- planning -- */

static size_t next(pb_pipedef_plan *plan, unsigned max, const pb_pipedef *def, const char *expect)
{
    size_t out[16];
    size_t n = pb_pipedef_plan_next(plan, max, out, 16);
    char got[256] = "";
    for (size_t i = 0; i < n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, def->steps[out[i]].name);
        assert_int_equal(plan->status[out[i]], PB_PIPEDEF_STARTING);
    }
    if (strcmp(got, expect))
        fail_msg("next(max %u): expected [%s], got [%s]", max, expect, got);
    return n;
}

static void set(pb_pipedef_plan *plan, const pb_pipedef *def, const char *name, pb_pipedef_status st)
{
    pb_pipedef_plan_set(plan, step(def, name), st);
}

static const char diamond[] =
    "{\"Version\":\"2020-12-01\",\"Steps\":["
    "{\"Name\":\"D\",\"Type\":\"Processing\",\"DependsOn\":[\"A\",\"B\"],\"Arguments\":{\"AppSpecification\":"
    "{\"ContainerEntrypoint\":[\"true\"],\"ContainerArguments\":[{\"Get\":\"Steps.C.TrainingJobName\"}]}}},"
    "{\"Name\":\"A\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}},"
    "{\"Name\":\"B\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}},"
    "{\"Name\":\"C\",\"Type\":\"Training\",\"Arguments\":{\"AlgorithmSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}}"
    "]}";

static void test_plan_parallelism(void **state)
{
    (void)state;
    pb_pipedef *def = parse_ok(diamond);
    pb_pipedef_plan plan;
    /* no limit: the three independent steps together, D (waiting for A, B by
     * DependsOn and C by a data reference) last */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 0, def, "A B C");
    next(&plan, 0, def, "");
    set(&plan, def, "A", PB_PIPEDEF_SUCCEEDED);
    set(&plan, def, "B", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, "");
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_EXECUTING);
    set(&plan, def, "C", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, "D");
    set(&plan, def, "D", PB_PIPEDEF_EXECUTING);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_EXECUTING);
    set(&plan, def, "D", PB_PIPEDEF_SUCCEEDED);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_SUCCEEDED);
    pb_pipedef_plan_free(&plan);

    /* MaxParallelExecutionSteps 2: running steps count, whatever their state */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 2, def, "A B");
    next(&plan, 2, def, "");
    set(&plan, def, "A", PB_PIPEDEF_EXECUTING);
    next(&plan, 2, def, "");
    set(&plan, def, "B", PB_PIPEDEF_STOPPING); /* still occupies a slot */
    next(&plan, 2, def, "");
    set(&plan, def, "B", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 2, def, "C");
    set(&plan, def, "A", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 2, def, "");
    set(&plan, def, "C", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 2, def, "D");
    pb_pipedef_plan_free(&plan);

    /* MaxParallelExecutionSteps 1: one at a time, in definition order */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    const char *order[] = {"A", "B", "C", "D"};
    for (int i = 0; i < 4; i++) {
        next(&plan, 1, def, order[i]);
        next(&plan, 1, def, "");
        set(&plan, def, order[i], PB_PIPEDEF_SUCCEEDED);
    }
    next(&plan, 1, def, "");
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_SUCCEEDED);
    pb_pipedef_plan_free(&plan);

    /* the caller's array bounds the batch */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    size_t out[1];
    assert_int_equal(pb_pipedef_plan_next(&plan, 0, out, 1), 1);
    assert_int_equal(out[0], step(def, "A"));
    next(&plan, 0, def, "B C");
    pb_pipedef_plan_free(&plan);
    pb_pipedef_free(def);
}

static const char branches[] =
    "{\"Version\":\"2020-12-01\",\"Steps\":["
    "{\"Name\":\"A\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}},"
    "{\"Name\":\"C\",\"Type\":\"Condition\",\"Arguments\":{\"Conditions\":[],"
    "\"IfSteps\":[{\"Name\":\"X\",\"Type\":\"Processing\",\"DependsOn\":[\"A\"],\"Arguments\":{\"AppSpecification\":"
    "{\"ContainerEntrypoint\":[\"true\"]}}}],"
    "\"ElseSteps\":[{\"Name\":\"E\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":"
    "[\"true\"]}}},{\"Name\":\"F\",\"Type\":\"Fail\",\"DependsOn\":[\"E\"],\"Arguments\":{\"ErrorMessage\":\"no\"}}]}},"
    "{\"Name\":\"Y\",\"Type\":\"Processing\",\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"],"
    "\"ContainerArguments\":[{\"Get\":\"Steps.X.ProcessingJobName\"}]}}},"
    "{\"Name\":\"Z\",\"Type\":\"Processing\",\"DependsOn\":[\"C\"],\"Arguments\":{\"AppSpecification\":"
    "{\"ContainerEntrypoint\":[\"true\"]}}}]}";

static void test_plan_condition_branches(void **state)
{
    (void)state;
    pb_pipedef *def = parse_ok(branches);
    assert_int_equal(def->steps[step(def, "X")].parent, step(def, "C"));
    assert_false(def->steps[step(def, "X")].in_else);
    assert_true(def->steps[step(def, "F")].in_else);
    pb_pipedef_plan plan;

    /* True: the IfSteps run, the ElseSteps are not executed */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 0, def, "A C");
    set(&plan, def, "A", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, ""); /* X also waits for its Condition step */
    pb_pipedef_plan_outcome(&plan, step(def, "C"), true);
    assert_int_equal(plan.status[step(def, "E")], PB_PIPEDEF_NOT_EXECUTED);
    assert_int_equal(plan.status[step(def, "F")], PB_PIPEDEF_NOT_EXECUTED);
    next(&plan, 0, def, "X Z");
    set(&plan, def, "X", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, "Y");
    set(&plan, def, "Y", PB_PIPEDEF_SUCCEEDED);
    set(&plan, def, "Z", PB_PIPEDEF_SUCCEEDED);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_SUCCEEDED);
    pb_pipedef_plan_free(&plan);

    /* False: X is not executed, and so is Y, which needs X's properties; the
     * Fail step fails the execution once running steps finish */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 0, def, "A C");
    pb_pipedef_plan_outcome(&plan, step(def, "C"), false);
    assert_int_equal(plan.status[step(def, "X")], PB_PIPEDEF_NOT_EXECUTED);
    assert_int_equal(plan.status[step(def, "Y")], PB_PIPEDEF_NOT_EXECUTED);
    assert_string_equal(pb_pipedef_status_name(plan.status[step(def, "Y")]), "NotExecuted");
    next(&plan, 0, def, "E Z");
    set(&plan, def, "E", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, "F");
    set(&plan, def, "F", PB_PIPEDEF_FAILED); /* the runner "runs" the Fail step */
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_EXECUTING); /* A and Z still run */
    set(&plan, def, "A", PB_PIPEDEF_SUCCEEDED);
    set(&plan, def, "Z", PB_PIPEDEF_SUCCEEDED);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_FAILED);
    pb_pipedef_plan_free(&plan);

    /* a Condition step that is never executed closes both of its branches */
    pb_pipedef *nested = parse_ok(
        "{\"Version\":\"2020-12-01\",\"Steps\":[{\"Name\":\"C1\",\"Type\":\"Condition\",\"Arguments\":{"
        "\"Conditions\":[],\"IfSteps\":[{\"Name\":\"C2\",\"Type\":\"Condition\",\"Arguments\":{\"Conditions\":[],"
        "\"IfSteps\":[{\"Name\":\"I2\",\"Type\":\"Fail\",\"Arguments\":{}}],\"ElseSteps\":[{\"Name\":\"E2\","
        "\"Type\":\"Fail\",\"Arguments\":{}}]}}],\"ElseSteps\":[{\"Name\":\"E1\",\"Type\":\"Processing\","
        "\"Arguments\":{\"AppSpecification\":{\"ContainerEntrypoint\":[\"true\"]}}}]}}]}");
    assert_int_equal(pb_pipedef_plan_init(&plan, nested), 0);
    next(&plan, 0, nested, "C1");
    pb_pipedef_plan_outcome(&plan, step(nested, "C1"), false);
    assert_int_equal(plan.status[step(nested, "C2")], PB_PIPEDEF_NOT_EXECUTED);
    assert_int_equal(plan.status[step(nested, "I2")], PB_PIPEDEF_NOT_EXECUTED);
    assert_int_equal(plan.status[step(nested, "E2")], PB_PIPEDEF_NOT_EXECUTED);
    next(&plan, 0, nested, "E1");
    set(&plan, nested, "E1", PB_PIPEDEF_SUCCEEDED);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_SUCCEEDED);
    pb_pipedef_plan_free(&plan);
    pb_pipedef_free(nested);
    pb_pipedef_free(def);
}

static void test_plan_failure_and_stop(void **state)
{
    (void)state;
    pb_pipedef *def = parse_ok(diamond);
    pb_pipedef_plan plan;
    /* a failure: nothing new starts, running steps finish, then Failed */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 2, def, "A B");
    set(&plan, def, "A", PB_PIPEDEF_FAILED);
    next(&plan, 2, def, ""); /* C would fit, but the execution is failing */
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_EXECUTING);
    set(&plan, def, "B", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 2, def, "");
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_FAILED);
    assert_int_equal(plan.status[step(def, "C")], PB_PIPEDEF_PENDING);
    pb_pipedef_plan_free(&plan);

    /* a stop: Stopping while steps run, Stopped after */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 0, def, "A B C");
    set(&plan, def, "A", PB_PIPEDEF_SUCCEEDED);
    pb_pipedef_plan_stop(&plan);
    set(&plan, def, "B", PB_PIPEDEF_STOPPING);
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_STOPPING);
    set(&plan, def, "B", PB_PIPEDEF_STOPPED);
    set(&plan, def, "C", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, ""); /* D's dependencies all succeeded... but we are stopping */
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_STOPPED);
    assert_string_equal(pb_pipedef_exec_status_name(pb_pipedef_plan_status(&plan)), "Stopped");
    pb_pipedef_plan_free(&plan);

    /* a step stopped without a stop request fails the execution */
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    next(&plan, 0, def, "A B C");
    set(&plan, def, "A", PB_PIPEDEF_STOPPED);
    set(&plan, def, "B", PB_PIPEDEF_SUCCEEDED);
    set(&plan, def, "C", PB_PIPEDEF_SUCCEEDED);
    next(&plan, 0, def, "");
    assert_int_equal(pb_pipedef_plan_status(&plan), PB_PIPEDEF_EXEC_FAILED);
    pb_pipedef_plan_free(&plan);
    pb_pipedef_free(def);
}

/* ------------------------------------------------- the four-step pipeline -- */

/* PrepTrain and Evaluate run in parallel; CheckMSE reads Evaluate's report;
 * Train (in IfSteps) also needs PrepTrain's output. Returns the final status. */
static pb_pipedef_exec_status run_four_steps(const char *mse, unsigned max_parallel, char *trace, size_t cap)
{
    pb_pipedef *def = parse_file("four_step.json");
    pb_arena a;
    pb_arena_init(&a);
    pb_pipedef_args args = defaults(def, &a);
    fake f = {0};
    pb_arena_init(&f.arena);
    char report[128];
    snprintf(report, sizeof report, "{\"regression_metrics\":{\"mse\":{\"value\":%s}}}", mse);
    f.file_key[0] = "Evaluate/EvalReport";
    f.file_text[0] = report;
    pb_pipedef_plan plan;
    assert_int_equal(pb_pipedef_plan_init(&plan, def), 0);
    pb_pipedef_ctx ctx = fake_ctx(&f, &args);
    ctx.plan = &plan;
    pb_buf props[4];
    for (int i = 0; i < 4; i++)
        pb_buf_init(&props[i], 0);
    int nprops = 0;
    trace[0] = '\0';
    pb_error err;
    pb_error_clear(&err);
    /* a runner: start what is ready, then finish the oldest running step */
    size_t running[8], nrun = 0;
    for (int round = 0; round < 20 && pb_pipedef_plan_status(&plan) == PB_PIPEDEF_EXEC_EXECUTING; round++) {
        size_t out[8];
        size_t n = pb_pipedef_plan_next(&plan, max_parallel, out, 8);
        for (size_t i = 0; i < n; i++) {
            const pb_pipedef_step *st = &def->steps[out[i]];
            snprintf(trace + strlen(trace), cap - strlen(trace), "+%s ", st->name);
            pb_pipedef_plan_set(&plan, out[i], PB_PIPEDEF_EXECUTING);
            running[nrun++] = out[i];
        }
        if (!nrun)
            break;
        size_t s = running[0];
        memmove(running, running + 1, --nrun * sizeof *running);
        const pb_pipedef_step *st = &def->steps[s];
        snprintf(trace + strlen(trace), cap - strlen(trace), "-%s ", st->name);
        if (st->type == PB_PIPEDEF_CONDITION) {
            bool outcome;
            if (pb_pipedef_conditions(def, st, &ctx, &a, &outcome, &err))
                fail_msg("condition failed: %s", err.message);
            snprintf(trace + strlen(trace), cap - strlen(trace), "(%s) ", outcome ? "True" : "False");
            pb_pipedef_plan_outcome(&plan, s, outcome);
        } else if (st->type == PB_PIPEDEF_FAIL) {
            pb_pipedef_plan_set(&plan, s, PB_PIPEDEF_FAILED);
        } else {
            pb_pipedef_cmd cmd;
            if (pb_pipedef_command(def, st, &ctx, &a, &cmd, &err))
                fail_msg("command of %s failed: %s", st->name, err.message);
            if (!strcmp(st->name, "Train")) {
                assert_string_equal(cmd.argv[5], "s3://bucket/p4jn9xou8a8s/train");
                assert_string_equal(cmd.env[0], "CHECK=True");
            }
            /* its resolved Arguments become its properties */
            assert_int_equal(pb_json_write(&props[nprops], cmd.arguments), 0);
            f.prop_step[nprops] = st->name;
            f.prop_json[nprops] = props[nprops].data;
            nprops++;
            pb_pipedef_plan_set(&plan, s, PB_PIPEDEF_SUCCEEDED);
        }
    }
    pb_pipedef_exec_status result = pb_pipedef_plan_status(&plan);
    snprintf(trace + strlen(trace), cap - strlen(trace), "=%s", pb_pipedef_exec_status_name(result));
    if (strstr(mse, "7"))
        assert_int_equal(plan.status[step(def, "Train")], PB_PIPEDEF_NOT_EXECUTED);
    for (int i = 0; i < 4; i++)
        pb_buf_free(&props[i]);
    pb_pipedef_plan_free(&plan);
    pb_arena_free(&f.arena);
    pb_arena_free(&a);
    pb_pipedef_free(def);
    return result;
}

static void test_four_step_pipeline(void **state)
{
    (void)state;
    char trace[512];
    /* MSE 5.2 <= 6.0: Train runs after both CheckMSE and PrepTrain */
    assert_int_equal(run_four_steps("5.2", 0, trace, sizeof trace), PB_PIPEDEF_EXEC_SUCCEEDED);
    assert_string_equal(trace, "+PrepTrain +Evaluate -PrepTrain -Evaluate +CheckMSE -CheckMSE (True) +Train -Train "
                               "=Succeeded");
    /* one step at a time */
    assert_int_equal(run_four_steps("5.2", 1, trace, sizeof trace), PB_PIPEDEF_EXEC_SUCCEEDED);
    assert_string_equal(trace, "+PrepTrain -PrepTrain +Evaluate -Evaluate +CheckMSE -CheckMSE (True) +Train -Train "
                               "=Succeeded");
    /* MSE 7.5 > 6.0: Train is not executed; the execution still succeeds */
    assert_int_equal(run_four_steps("7.5", 2, trace, sizeof trace), PB_PIPEDEF_EXEC_SUCCEEDED);
    assert_string_equal(trace, "+PrepTrain +Evaluate -PrepTrain -Evaluate +CheckMSE -CheckMSE (False) =Succeeded");
}

/* ------------------------------------------------------------------ main -- */

int main(int argc, char **argv)
{
    if (argc > 1) {
        snprintf(cases_dir, sizeof cases_dir, "%s", argv[1]);
    } else {
        pb_test_case_path(__FILE__, "pipedef", cases_dir, sizeof cases_dir);
    }
    loaded_invalid = load_blocks("invalid.txt", "invalid");
    loaded_valid = load_blocks("valid.txt", "valid");
    loaded_cond = load_conditions("conditions.txt");

    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_case_files_loaded),
        cmocka_unit_test(test_sdk_example),
        cmocka_unit_test(test_fields_and_lookups),
        cmocka_unit_test(test_size_caps),
        cmocka_unit_test(test_entrypoint_item_length),
        cmocka_unit_test(test_error_contract),
        cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_bind_fills_defaults_typed),
        cmocka_unit_test(test_eval_get),
        cmocka_unit_test(test_eval_join_and_jsonget),
        cmocka_unit_test(test_eval_budget),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_command_values),
        cmocka_unit_test(test_plan_parallelism),
        cmocka_unit_test(test_plan_condition_branches),
        cmocka_unit_test(test_plan_failure_and_stop),
        cmocka_unit_test(test_four_step_pipeline),
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    struct CMUnitTest *tests = calloc(ncases + nfixed, sizeof *tests);
    if (!tests)
        return 2;
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < ncases; i++) {
        tests[nfixed + i].name = cases[i].title;
        tests[nfixed + i].test_func = run_case;
        tests[nfixed + i].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests("pipedef", tests, ncases + nfixed, NULL, NULL);
    for (size_t i = 0; i < ncases; i++) {
        free(cases[i].title);
        free(cases[i].text);
        free(cases[i].expect);
    }
    free(cases);
    free(tests);
    return failed ? 1 : 0;
}
