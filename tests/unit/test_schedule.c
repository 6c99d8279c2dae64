/*
 * test_schedule.c — rate(...) / cron(...) parsing and next-fire times.
 *
 * Reads tests/unit/cases/schedules.txt (format documented at the top of that
 * file; found next to this source via __FILE__, or at the path given as
 * argv[1]): every line is one cmocka test — validity cases and chains of
 * expected next fires, written from AWS-SPEC.md §5 and a calendar. Times in
 * the case file are converted with libc's timegm, independently of the
 * module's own date arithmetic.
 *
 * Then the contract details the file cannot express: the 256-byte cap at its
 * exact boundary, NUL bytes and unterminated buffers, the exact error, *out
 * zeroed on error, NULL err / out, the bitmasks the parser builds, rate
 * overflow, and a randomized differential test (fixed seed) of
 * pb_schedule_next against a brute-force search that walks days with gmtime_r
 * and tries every minute of the matching ones, and a literal
 * minute-by-minute scan of random windows that must agree with the whole
 * chain of fires inside them.
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
#include <time.h>

#include "common/pb_error.h"
#include "schedule/pb_schedule.h"

#define INVALID_MSG "Parameter ScheduleExpression is not valid."

/* ------------------------------------------------------------- helpers -- */

static pb_schedule parse_ok(const char *expr, size_t len)
{
    pb_schedule s;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_schedule_parse(expr, len, &s, &err);
    if (rc != 0)
        fail_msg("\"%.*s\" was rejected: %s %s", (int)len, expr, pb_error_name(rc), err.message);
    return s;
}

static void expect_invalid(const char *expr, size_t len)
{
    pb_schedule s;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_schedule_parse(expr, len, &s, &err);
    if (rc == 0)
        fail_msg("\"%.*s\" was accepted", (int)len, expr);
    if (rc != PB_EVALIDATION || err.code != PB_EVALIDATION || strcmp(err.message, INVALID_MSG))
        fail_msg("\"%.*s\": expected PB_EVALIDATION '%s', got %s '%s'", (int)len, expr, INVALID_MSG,
                 pb_error_name(rc), err.message);
}

/* YYYY-MM-DDTHH:MM:SSZ (exactly) -> epoch seconds via timegm; "never" -> -1
 * with *never set (-1 alone is also 1969-12-31T23:59:59Z). */
static bool parse_time(const char *tok, int64_t *out, bool *never)
{
    *never = !strcmp(tok, "never");
    if (*never) {
        *out = -1;
        return true;
    }
    struct tm tm = {0};
    int n = 0;
    if (strlen(tok) != 20 || sscanf(tok, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 20)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return true;
}

static void format_time(int64_t t, char *buf, size_t n)
{
    if (t == -1) {
        snprintf(buf, n, "never (-1)");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        snprintf(buf, n, "@%lld", (long long)t);
    else
        strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void expect_next(const pb_schedule *s, const char *what, int64_t anchor, int64_t after, int64_t want)
{
    int64_t got = pb_schedule_next(s, anchor, after);
    if (got != want) {
        char a[64], w[64], g[64];
        format_time(after, a, sizeof a);
        format_time(want, w, sizeof w);
        format_time(got, g, sizeof g);
        fail_msg("%s after %s: expected %s, got %s (%lld)", what, a, w, g, (long long)got);
    }
}

/* ---------------------------------------------------------- case file -- */

typedef struct scase {
    int lineno;
    char *line;
    char *title;
} scase;

static const char *case_path;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return d;
}

/* Reads a "..." token at *p with the escapes \" \\ \t \n \xHH into buf;
 * returns false on a malformed token. */
static bool read_quoted(const char **p, char *buf, size_t cap, size_t *len)
{
    const char *s = *p;
    size_t n = 0;
    if (*s++ != '"')
        return false;
    while (*s && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            c = *s++;
            if (c == 't')
                c = '\t';
            else if (c == 'n')
                c = '\n';
            else if (c == 'x') {
                unsigned v;
                if (sscanf(s, "%2x", &v) != 1 || !s[0] || !s[1])
                    return false;
                c = (char)v;
                s += 2;
            } else if (c != '"' && c != '\\') {
                return false;
            }
        }
        if (n + 1 >= cap)
            return false;
        buf[n++] = c;
    }
    if (*s != '"')
        return false;
    buf[n] = 0;
    *len = n;
    *p = s + 1;
    return true;
}

static void run_case(void **state)
{
    const scase *c = *state;
    const char *p = c->line;
    char kind[16] = "", expr[1024];
    size_t elen = 0;
    int used = 0;
    if (sscanf(p, "%15s %n", kind, &used) != 1)
        fail_msg("line %d: no case kind", c->lineno);
    p += used;
    if (!read_quoted(&p, expr, sizeof expr, &elen))
        fail_msg("line %d: malformed quoted expression", c->lineno);
    if (!strcmp(kind, "valid") || !strcmp(kind, "invalid")) {
        if (*p)
            fail_msg("line %d: trailing text after the expression", c->lineno);
        if (kind[0] == 'v')
            parse_ok(expr, elen);
        else
            expect_invalid(expr, elen);
        return;
    }
    if (strcmp(kind, "next"))
        fail_msg("line %d: unknown case kind '%s'", c->lineno, kind);

    char tok[64];
    int64_t anchor = 0, after, want;
    bool never = false;
    if (sscanf(p, " %63s %n", tok, &used) != 1 || (strcmp(tok, "-") && (!parse_time(tok, &anchor, &never) || never)))
        fail_msg("line %d: bad ANCHOR", c->lineno);
    p += used;
    if (sscanf(p, "%63s %n", tok, &used) != 1 || !parse_time(tok, &after, &never) || never)
        fail_msg("line %d: bad AFTER", c->lineno);
    p += used;
    if (sscanf(p, "%63s %n", tok, &used) != 1 || strcmp(tok, "->"))
        fail_msg("line %d: expected '->'", c->lineno);
    p += used;
    pb_schedule s = parse_ok(expr, elen);
    int steps = 0;
    while (sscanf(p, "%63s %n", tok, &used) == 1) {
        p += used;
        if (!parse_time(tok, &want, &never))
            fail_msg("line %d: bad expected time '%s'", c->lineno, tok);
        expect_next(&s, expr, anchor, after, want);
        steps++;
        if (never) {
            if (*p)
                fail_msg("line %d: 'never' must end the chain", c->lineno);
            break;
        }
        after = want;
    }
    if (!steps)
        fail_msg("line %d: no expected time", c->lineno);
}

static size_t load_cases(const char *path, scase **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        *out = NULL;
        return 0;
    }
    scase *cases = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || !strncmp(line, "//", 2))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            cases = realloc(cases, cap * sizeof *cases);
            if (!cases)
                exit(2);
        }
        char title[160];
        snprintf(title, sizeof title, "line %d: %.120s", lineno, line);
        cases[n].lineno = lineno;
        cases[n].line = xstrdup(line);
        cases[n].title = xstrdup(title);
        n++;
    }
    free(line);
    fclose(f);
    *out = cases;
    return n;
}

/* A guard that the case file was found and is as large as intended. */
static size_t loaded_cases;
static void test_case_file_loaded(void **state)
{
    (void)state;
    assert_true(loaded_cases >= 290);
}

/* ------------------------------------------------------ contract tests -- */

/* The cap is on the whole expression: a 256-byte cron is fine, 257 is not. */
static void test_length_cap(void **state)
{
    (void)state;
    char buf[400];
    /* "cron(0,0,...,0 0 * * ? *)", or "cron(00,0,...": 5 + list + tail = total */
    const char *tail = " 0 * * ? *)";
    for (size_t total = 250; total <= 262; total++) {
        size_t list = total - 5 - strlen(tail), head = list % 2 ? 1 : 2, n = 5;
        memcpy(buf, "cron(", 5);
        memset(buf + n, '0', head);
        n += head;
        for (size_t i = head; i < list; i += 2) {
            buf[n++] = ',';
            buf[n++] = '0';
        }
        memcpy(buf + n, tail, strlen(tail));
        n += strlen(tail);
        assert_int_equal(n, total);
        if (total <= PB_SCHEDULE_MAX_LEN)
            parse_ok(buf, n);
        else
            expect_invalid(buf, n);
    }
    /* a long rate is capped the same way, before anything is looked at */
    memset(buf, '0', sizeof buf);
    memcpy(buf, "rate(", 5);
    memcpy(buf + 300 - 9, "1 minute)", 9);
    expect_invalid(buf, 300);
    memcpy(buf + 256 - 9, "1 minute)", 9);
    parse_ok(buf, 256);
}

/* Only [expr, expr+len) is read: no terminator needed, NULs are data. */
static void test_buffer_bounds(void **state)
{
    (void)state;
    const char text[] = "cron(0 10 * * ? *)garbage";
    pb_schedule s = parse_ok(text, 18);
    assert_int_equal(s.kind, PB_SCHED_CRON);
    expect_invalid(text, 17);
    expect_invalid(text, 19);
    const char r[] = "rate(5 minutes)rate(5 minutes)";
    s = parse_ok(r, 15);
    assert_int_equal(s.kind, PB_SCHED_RATE);
    assert_int_equal(s.rate_seconds, 300);
    expect_invalid("rate(5 minutes)\0", 16);
    expect_invalid("rate(5\0minutes)", 15);
    expect_invalid("", 0);
    expect_invalid(NULL, 0);
    expect_invalid(NULL, 15);
}

static void test_error_contract(void **state)
{
    (void)state;
    pb_schedule s;
    memset(&s, 0xab, sizeof s);
    pb_error err;
    pb_error_clear(&err);
    assert_int_equal(pb_schedule_parse("cron(0 0 * * * *)", 17, &s, &err), PB_EVALIDATION);
    assert_string_equal(err.message, INVALID_MSG);
    assert_int_equal(pb_error_http_status(err.code), 400);
    assert_string_equal(pb_error_aws_type(err.code), "ValidationException");
    pb_schedule zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&s, &zero, sizeof s); /* *out zeroed on error */
    /* err and out are optional */
    assert_int_equal(pb_schedule_parse("rate(0 minutes)", 15, &s, NULL), PB_EVALIDATION);
    assert_int_equal(pb_schedule_parse("rate(1 minute)", 14, NULL, NULL), 0);
    assert_int_equal(pb_schedule_parse("rate(1 minutes)", 15, NULL, &err), PB_EVALIDATION);
    /* a NULL or kind-less schedule never fires */
    assert_int_equal(pb_schedule_next(NULL, 0, 0), -1);
    assert_int_equal(pb_schedule_next(&zero, 0, 0), -1);
}

static void test_parse_masks(void **state)
{
    (void)state;
    const char *e = "cron(50-10/5 22-2/2 28-3 NOV-FEB ? 2024/25)";
    pb_schedule s = parse_ok(e, strlen(e));
    assert_int_equal(s.kind, PB_SCHED_CRON);
    uint64_t mins = 0;
    for (int m = 50; m < 60; m += 5)
        mins |= 1ull << m;
    for (int m = 0; m <= 10; m += 5)
        mins |= 1ull << m;
    assert_int_equal(s.minutes, mins);
    assert_int_equal(s.hours, (1u << 22) | (1u << 0) | (1u << 2));
    assert_int_equal(s.days, (1u << 28) | (1u << 29) | (1u << 30) | (1u << 31) | (1u << 1) | (1u << 2) | (1u << 3));
    assert_int_equal(s.months, (1u << 11) | (1u << 12) | (1u << 1) | (1u << 2));
    assert_false(s.dom_any);
    assert_true(s.dow_any);
    assert_false(s.years_any);
    /* 2024, 2049, 2074, ..., 2199 */
    for (int y = 1970; y <= 2199; y++) {
        int i = y - 1970;
        bool want = y >= 2024 && (y - 2024) % 25 == 0;
        assert_int_equal((s.years[i / 64] >> (i % 64)) & 1, want);
    }

    s = parse_ok("cron(0 0 ? * SAT-MON 2024)", 26);
    assert_int_equal(s.weekdays, (1u << 7) | (1u << 1) | (1u << 2));
    assert_true(s.dom_any);
    assert_false(s.dow_any);

    s = parse_ok("cron(*/59 * * * ? *)", 20);
    assert_int_equal(s.minutes, 1ull | (1ull << 59));
    assert_int_equal(s.hours, (1u << 24) - 1);
    assert_true(s.dom_any && s.dow_any && s.years_any);

    s = parse_ok("cron(0 0 L-3W * ? *)", 20);
    assert_true(s.last_day);
    assert_int_equal(s.last_day_offset, 3);
    assert_int_equal(s.nearest_weekday, -1);
    s = parse_ok("cron(0 0 17W * ? *)", 19);
    assert_false(s.last_day);
    assert_int_equal(s.nearest_weekday, 17);
    s = parse_ok("cron(0 0 ? * FRI#4 *)", 21);
    assert_int_equal(s.nth_weekday, 4);
    assert_int_equal(s.nth_weekday_day, 6);
    s = parse_ok("cron(0 0 ? * 2L *)", 18);
    assert_int_equal(s.last_weekday, 2);

    s = parse_ok("rate(3 hours)", 13);
    assert_int_equal(s.kind, PB_SCHED_RATE);
    assert_int_equal(s.rate_seconds, 3 * 3600);
    s = parse_ok("rate(2 days)", 12);
    assert_int_equal(s.rate_seconds, 2 * 86400);
    s = parse_ok("rate(2147483647 days)", 21);
    assert_int_equal(s.rate_seconds, 2147483647LL * 86400);
}

static void test_rate_extremes(void **state)
{
    (void)state;
    pb_schedule s = parse_ok("rate(2147483647 days)", 21);
    int64_t iv = 2147483647LL * 86400;
    assert_int_equal(pb_schedule_next(&s, 0, 0), iv);
    assert_int_equal(pb_schedule_next(&s, 0, iv), 2 * iv);
    /* results that do not fit in int64 are "never" */
    assert_int_equal(pb_schedule_next(&s, INT64_MAX - 10, INT64_MAX - 5), -1);
    assert_int_equal(pb_schedule_next(&s, INT64_MIN + 10, INT64_MAX - 5), -1);
    s = parse_ok("rate(1 minute)", 14);
    assert_int_equal(pb_schedule_next(&s, INT64_MAX - 100, INT64_MAX - 100), INT64_MAX - 40);
    assert_int_equal(pb_schedule_next(&s, INT64_MAX - 50, INT64_MAX - 50), -1);
    assert_int_equal(pb_schedule_next(&s, -1000, -1000), -940);
    assert_int_equal(pb_schedule_next(&s, -1000, -900), -880);
    /* cron: far past / far future are not overflow hazards */
    s = parse_ok("cron(0 0 1 1 ? *)", 17);
    assert_int_equal(pb_schedule_next(&s, 0, INT64_MIN), 0);
    assert_int_equal(pb_schedule_next(&s, 0, INT64_MAX), -1);
}

/* ------------------------------------------- randomized differential -- */

static int days_in(int y, int m)
{
    struct tm a = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
    struct tm b = {.tm_year = y - 1900, .tm_mon = m, .tm_mday = 1};
    return (int)((timegm(&b) - timegm(&a)) / 86400);
}

/* Among the weekdays of the month, the one closest to target. */
static int closest_weekday(int target, int ndays, int wday_of_1st /* 0 = Sunday */)
{
    int best = -1;
    for (int x = 1; x <= ndays; x++) {
        int w = (wday_of_1st + x - 1) % 7;
        if (w == 0 || w == 6)
            continue;
        if (best < 0 || abs(x - target) < abs(best - target))
            best = x;
    }
    return best;
}

static bool ref_year(const pb_schedule *s, int y)
{
    int i = y - 1970;
    return y >= 1970 && y <= 2199 && (s->years_any || ((s->years[i / 64] >> (i % 64)) & 1));
}

/* Whether the day fields allow tm's day (year and month already checked). */
static bool ref_day(const pb_schedule *s, const struct tm *tm)
{
    int y = tm->tm_year + 1900, m = tm->tm_mon + 1, d = tm->tm_mday;
    int ndays = days_in(y, m);
    int wday1 = ((tm->tm_wday - (d - 1)) % 7 + 7) % 7;
    if (!s->dom_any) {
        if (s->last_day) {
            int t = ndays - s->last_day_offset;
            if (t < 1)
                return false;
            return d == (s->nearest_weekday == -1 ? closest_weekday(t, ndays, wday1) : t);
        }
        if (s->nearest_weekday > 0)
            return s->nearest_weekday <= ndays && d == closest_weekday(s->nearest_weekday, ndays, wday1);
        return (s->days >> d) & 1;
    }
    if (!s->dow_any) {
        int wd = tm->tm_wday + 1;
        if (s->nth_weekday)
            return wd == s->nth_weekday_day && (d - 1) / 7 + 1 == s->nth_weekday;
        if (s->last_weekday)
            return wd == s->last_weekday && d + 7 > ndays;
        return (s->weekdays >> wd) & 1;
    }
    return true;
}

static int64_t utc(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    return (int64_t)timegm(&tm);
}

/* Walks day by day (gmtime_r; whole years / months skipped when their field
 * rules them out), trying every minute of matching days. */
static int64_t ref_next(const pb_schedule *s, int64_t after)
{
    int64_t t = after < utc(1970, 1, 1) ? utc(1970, 1, 1) : (after / 60 + 1) * 60;
    int64_t stop = utc(2200, 1, 1);
    while (t < stop) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
        if (!ref_year(s, y)) {
            t = utc(y + 1, 1, 1);
            continue;
        }
        if (!(s->months & (1u << m))) {
            t = utc(y, m + 1, 1); /* timegm normalises month 13 */
            continue;
        }
        int64_t day_start = t - (t % 86400);
        if (ref_day(s, &tm)) {
            for (int64_t u = t; u < day_start + 86400; u += 60) {
                int h = (int)(u % 86400 / 3600), mi = (int)(u % 3600 / 60);
                if (((s->hours >> h) & 1) && ((s->minutes >> mi) & 1))
                    return u;
            }
        }
        t = day_start + 86400;
    }
    return -1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}
#define PICK(a) (a[rnd(sizeof a / sizeof a[0])])

static void test_random_against_brute_force(void **state)
{
    (void)state;
    static const char *mins[] = {"*", "0", "59", "*/7", "5-10", "50-10/5", "0,30", "10/20", "0-59/29", "17"};
    static const char *hours[] = {"*", "0", "23", "22-2", "*/5", "9-17", "3,15", "20-2/3", "12"};
    static const char *doms[] = {"*",  "1",    "15",  "31",   "29",  "30", "L",      "L-2",   "L-30", "LW", "L-1W",
                                 "1W", "15W",  "31W", "30W",  "1-7", "*/10", "28-3", "2/14", "13,31"};
    static const char *months[] = {"*", "2", "FEB", "1,3,5", "11-2", "*/3", "JAN-MAR", "4,6,9,11", "DEC", "2/5"};
    static const char *dows[] = {"*",   "MON-FRI", "1", "SAT,SUN", "6L", "1L",  "L",     "3#2",
                                 "2#5", "6#5",     "SAT-MON", "5#1", "7#4", "tue", "4-4", "2,4,6"};
    static const char *years[] = {"*", "*", "*", "2024", "2023-2026", "2024/2", "2020,2028", "2196-2199", "1970-1975"};
    char expr[256];
    int checked = 0;
    for (int i = 0; i < 1500; i++) {
        bool by_dom = rnd(2);
        snprintf(expr, sizeof expr, "cron(%s %s %s %s %s %s)", PICK(mins), PICK(hours), by_dom ? PICK(doms) : "?",
                 PICK(months), by_dom ? "?" : PICK(dows), PICK(years));
        pb_schedule s = parse_ok(expr, strlen(expr));
        /* a random start between 1969 and 2027, at any second */
        int64_t after = -86400LL * 400 + (int64_t)rnd(58u * 365) * 86400 + rnd(86400);
        for (int step = 0; step < 4; step++) {
            int64_t want = ref_next(&s, after);
            expect_next(&s, expr, 0, after, want);
            checked++;
            if (want < 0)
                break;
            /* continue from the fire itself, or from a few seconds into its minute */
            after = want + (step == 1 ? 59 : 0);
        }
    }
    assert_true(checked > 3000);
}

/* A literal minute-by-minute scan: over random windows (up to 20 days,
 * anywhere in 1970..2199, a fifth of them at the end of 2199), every minute
 * is tested against the fields with gmtime_r, and the set of matching
 * minutes must equal the chain pb_schedule_next walks through the window:
 * no fire missed, none extra. */
static bool ref_minute(const pb_schedule *s, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return ref_year(s, tm.tm_year + 1900) && ((s->months >> (tm.tm_mon + 1)) & 1) && ref_day(s, &tm) &&
           ((s->hours >> tm.tm_hour) & 1) && ((s->minutes >> tm.tm_min) & 1);
}

static void test_minute_scan_windows(void **state)
{
    (void)state;
    static const char *mins[] = {"*", "0", "59", "*/7", "5-10", "50-10/5", "0,30", "17"};
    static const char *hours[] = {"*", "0", "23", "22-2", "*/5", "9-17", "12"};
    static const char *doms[] = {"*", "1", "31", "29", "L", "L-2", "LW", "1W", "31W", "28-3", "*/10", "15W"};
    static const char *months[] = {"*", "2", "11-2", "*/3", "DEC", "1,3,5"};
    static const char *dows[] = {"*", "MON-FRI", "1", "6L", "L", "3#2", "2#5", "SAT-MON", "7#4"};
    static const char *years[] = {"*", "*", "2024", "2023-2026", "2199", "1970-1975"};
    const int64_t end = utc(2200, 1, 1);
    char expr[256];
    long fires = 0;
    for (int i = 0; i < 200; i++) {
        bool by_dom = rnd(2);
        snprintf(expr, sizeof expr, "cron(%s %s %s %s %s %s)", PICK(mins), PICK(hours), by_dom ? PICK(doms) : "?",
                 PICK(months), by_dom ? "?" : PICK(dows), PICK(years));
        pb_schedule s = parse_ok(expr, strlen(expr));
        int64_t span = 60 * (int64_t)(1 + rnd(20 * 1440));
        int64_t from = i % 5 == 0 ? end - (int64_t)rnd(30 * 86400) : (int64_t)rnd(230u * 365) * 86400 + rnd(86400);
        int64_t to = from + span; /* window (from, to] */
        int64_t next = pb_schedule_next(&s, 0, from);
        for (int64_t t = (from / 60 + 1) * 60; t <= to; t += 60) {
            bool want = t < end && ref_minute(&s, t);
            if (want != (next == t))
                fail_msg("%s: minute %lld: the scan says %s, pb_schedule_next says %lld", expr, (long long)t,
                         want ? "fire" : "no fire", (long long)next);
            if (want) {
                fires++;
                next = pb_schedule_next(&s, 0, t);
            }
        }
        if (next >= 0 && next <= to)
            fail_msg("%s: next %lld inside the window was not a scanned fire", expr, (long long)next);
    }
    assert_true(fires > 1000);
}

int main(int argc, char **argv)
{
    static char path[4096];
    if (argc > 1) {
        case_path = argv[1];
    } else {
        case_path = pb_test_case_path(__FILE__, "schedules.txt", path, sizeof path);
    }
    scase *cases = NULL;
    size_t n = load_cases(case_path, &cases);
    loaded_cases = n;

    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_case_file_loaded),     cmocka_unit_test(test_length_cap),
        cmocka_unit_test(test_buffer_bounds),        cmocka_unit_test(test_error_contract),
        cmocka_unit_test(test_parse_masks),          cmocka_unit_test(test_rate_extremes),
        cmocka_unit_test(test_random_against_brute_force),
        cmocka_unit_test(test_minute_scan_windows),
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    struct CMUnitTest *tests = calloc(n + nfixed, sizeof *tests);
    if (!tests)
        return 2;
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < n; i++) {
        tests[nfixed + i].name = cases[i].title;
        tests[nfixed + i].test_func = run_case;
        tests[nfixed + i].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests("schedule", tests, n + nfixed, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        free(cases[i].line);
        free(cases[i].title);
    }
    free(cases);
    free(tests);
    return failed ? 1 : 0;
}
