/*
 * schedule.c — parsing rate(...) / cron(...) and computing the next fire time.
 *
 * The parser is a hand-written scanner over (pointer, length) slices: the
 * length is capped first, nothing is allocated, and every field is turned into
 * a bitmask plus the few special forms (L, W, LW, d#n, dL) the struct keeps
 * apart. See pb_schedule.h for the grammar and the decisions where AWS's
 * behaviour is not documented.
 *
 * The next-fire search walks (year, month) pairs, builds the month's bitmask
 * of matching days once, and then takes the first matching hour and minute,
 * so a search never steps minute by minute: at most 230 years x 12 months.
 * at(...) is one instant: next is it, or "never" (-1) once it has passed.
 * Dates use proleptic-Gregorian integer arithmetic (days from civil), no libc
 * time functions.
 */
#include "pb_schedule.h"

#include <stdio.h>
#include <string.h>

#define INVALID_MSG "Parameter ScheduleExpression is not valid."

static int invalid(pb_schedule *out, pb_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    return pb_error_set(err, PB_EVALIDATION, INVALID_MSG);
}

/* ------------------------------------------------------------ scanning -- */

typedef struct slice {
    const char *p, *e; /* [p, e) */
} slice;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static char upper(char c) { return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c; }
static bool at(const slice *s, char c) { return s->p < s->e && upper(*s->p) == c; }
static bool eat(slice *s, char c)
{
    if (!at(s, c))
        return false;
    s->p++;
    return true;
}

/* Reads 1+ decimal digits; values above `cap` come back as cap + 1 (so no
 * number of leading zeros or digits can overflow). */
static bool scan_uint(slice *s, long cap, long *out)
{
    if (s->p >= s->e || !is_digit(*s->p))
        return false;
    long v = 0;
    while (s->p < s->e && is_digit(*s->p)) {
        v = v * 10 + (*s->p++ - '0');
        if (v > cap)
            v = cap + 1;
    }
    *out = v;
    return true;
}

static bool slice_is(const slice *s, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(s->e - s->p) == n && memcmp(s->p, lit, n) == 0;
}

/* ------------------------------------------------------------- rate(...) -- */

static int parse_rate(slice body, pb_schedule *out, pb_error *err)
{
    static const struct {
        const char *one, *many;
        int64_t seconds;
    } units[] = {{"minute", "minutes", 60}, {"hour", "hours", 3600}, {"day", "days", 86400}};
    long n = 0;
    if (!scan_uint(&body, 2147483647L, &n) || n < 1 || n > 2147483647L || !eat(&body, ' '))
        return invalid(out, err);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (slice_is(&body, n == 1 ? units[i].one : units[i].many)) {
            out->kind = PB_SCHED_RATE;
            out->rate_seconds = (int64_t)n * units[i].seconds;
            return 0;
        }
    }
    return invalid(out, err);
}

/* ------------------------------------------------------------- cron(...) -- */

typedef struct field_spec {
    int lo, hi;                /* allowed values */
    int base;                  /* bit index = value - base */
    const char *names;         /* 3-letter names of lo, lo+1, ... concatenated, or NULL */
    bool steps;                /* '/' allowed */
    bool wraps;                /* a-b with a > b wraps around the field */
} field_spec;

static const field_spec F_MIN = {0, 59, 0, NULL, true, true};
static const field_spec F_HOUR = {0, 23, 0, NULL, true, true};
static const field_spec F_DOM = {1, 31, 0, NULL, true, true};
static const field_spec F_MON = {1, 12, 0, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC", true, true};
static const field_spec F_DOW = {1, 7, 0, "SUNMONTUEWEDTHUFRISAT", false, true};
static const field_spec F_YEAR = {PB_SCHEDULE_YEAR_MIN, PB_SCHEDULE_YEAR_MAX, PB_SCHEDULE_YEAR_MIN, NULL, true,
                                  false};

typedef struct bitset {
    uint64_t w[4];
} bitset;

static void bit_set(bitset *b, const field_spec *f, int v)
{
    int i = v - f->base;
    b->w[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* A number or (for fields with names) a case-insensitive 3-letter name. */
static bool scan_value(slice *s, const field_spec *f, int *out)
{
    long v;
    if (s->p < s->e && is_digit(*s->p)) {
        if (!scan_uint(s, 100000, &v))
            return false;
    } else if (f->names && s->e - s->p >= 3) {
        int count = f->hi - f->lo + 1;
        v = -1;
        for (int i = 0; i < count && v < 0; i++)
            if (upper(s->p[0]) == f->names[3 * i] && upper(s->p[1]) == f->names[3 * i + 1] &&
                upper(s->p[2]) == f->names[3 * i + 2])
                v = f->lo + i;
        if (v < 0)
            return false;
        s->p += 3;
    } else {
        return false;
    }
    if (v < f->lo || v > f->hi)
        return false;
    *out = (int)v;
    return true;
}

/* One item of a comma list: `*`, `v`, `a-b`, each optionally followed by `/s`. */
static bool parse_item(slice s, const field_spec *f, bitset *b)
{
    int a, z;
    long step = 1;
    bool star = eat(&s, '*');
    if (star) {
        a = f->lo;
        z = f->hi;
    } else {
        if (!scan_value(&s, f, &a))
            return false;
        z = a;
        if (eat(&s, '-')) {
            if (!scan_value(&s, f, &z))
                return false;
        } else if (at(&s, '/')) {
            z = f->hi; /* v/s: from v up to the maximum */
        }
    }
    if (eat(&s, '/')) {
        if (!f->steps || !scan_uint(&s, f->hi, &step) || step < 1 || step > f->hi)
            return false;
    }
    if (s.p != s.e)
        return false;
    if (a <= z) {
        for (int v = a; v <= z; v += (int)step)
            bit_set(b, f, v);
        return true;
    }
    if (!f->wraps)
        return false;
    int size = f->hi - f->lo + 1, span = z - a + size;
    for (int off = 0; off <= span; off += (int)step)
        bit_set(b, f, f->lo + (a - f->lo + off) % size);
    return true;
}

/* A comma list of items; empty items are invalid. */
static bool parse_list(slice s, const field_spec *f, bitset *b)
{
    memset(b, 0, sizeof *b);
    for (;;) {
        const char *comma = memchr(s.p, ',', (size_t)(s.e - s.p));
        slice item = {s.p, comma ? comma : s.e};
        if (item.p == item.e || !parse_item(item, f, b))
            return false;
        if (!comma)
            return true;
        s.p = comma + 1;
    }
}

/* Day of month: ? | L | L-n | LW | L-nW | nW | list. */
static bool parse_dom(slice s, pb_schedule *out, bool *question)
{
    *question = slice_is(&s, "?");
    if (*question) {
        out->dom_any = true;
        return true;
    }
    if (eat(&s, 'L')) {
        long n = 0;
        if (eat(&s, '-') && (!scan_uint(&s, 30, &n) || n > 30))
            return false;
        out->last_day = true;
        out->last_day_offset = (int8_t)n;
        if (eat(&s, 'W'))
            out->nearest_weekday = -1;
        return s.p == s.e;
    }
    if (s.e - s.p >= 2 && upper(s.e[-1]) == 'W') {
        slice num = {s.p, s.e - 1};
        long n;
        if (!scan_uint(&num, 31, &n) || num.p != num.e || n < 1 || n > 31)
            return false;
        out->nearest_weekday = (int8_t)n;
        return true;
    }
    bitset b;
    if (!parse_list(s, &F_DOM, &b))
        return false;
    out->days = (uint32_t)b.w[0];
    out->dom_any = slice_is(&s, "*");
    return true;
}

/* Day of week: ? | L | dL | d#n | list (no steps). */
static bool parse_dow(slice s, pb_schedule *out, bool *question)
{
    *question = slice_is(&s, "?");
    if (*question) {
        out->dow_any = true;
        return true;
    }
    if (s.e - s.p == 1 && at(&s, 'L')) {
        out->weekdays = 1u << 7; /* L alone: the last day of the week, Saturday */
        return true;
    }
    slice t = s;
    int d;
    if (scan_value(&t, &F_DOW, &d)) {
        if (eat(&t, 'L')) {
            out->last_weekday = (int8_t)d;
            return t.p == t.e;
        }
        if (eat(&t, '#')) {
            long n;
            if (!scan_uint(&t, 5, &n) || n < 1 || n > 5 || t.p != t.e)
                return false;
            out->nth_weekday = (int8_t)n;
            out->nth_weekday_day = (int8_t)d;
            return true;
        }
    }
    bitset b;
    if (!parse_list(s, &F_DOW, &b))
        return false;
    out->weekdays = (uint8_t)b.w[0];
    out->dow_any = slice_is(&s, "*");
    return true;
}

static int parse_cron(slice body, pb_schedule *out, pb_error *err)
{
    slice f[6];
    int n = 0;
    const char *p = body.p;
    for (;;) {
        const char *sp = memchr(p, ' ', (size_t)(body.e - p));
        if (n == 6)
            return invalid(out, err);
        f[n].p = p;
        f[n].e = sp ? sp : body.e;
        if (f[n].p == f[n].e)
            return invalid(out, err); /* empty field: doubled, leading or trailing space */
        n++;
        if (!sp)
            break;
        p = sp + 1;
    }
    if (n != 6)
        return invalid(out, err);

    bitset b;
    bool dom_q, dow_q;
    out->kind = PB_SCHED_CRON;
    if (!parse_list(f[0], &F_MIN, &b))
        return invalid(out, err);
    out->minutes = b.w[0];
    if (!parse_list(f[1], &F_HOUR, &b))
        return invalid(out, err);
    out->hours = (uint32_t)b.w[0];
    if (!parse_dom(f[2], out, &dom_q))
        return invalid(out, err);
    if (!parse_list(f[3], &F_MON, &b))
        return invalid(out, err);
    out->months = (uint16_t)b.w[0];
    if (!parse_dow(f[4], out, &dow_q))
        return invalid(out, err);
    if (dom_q == dow_q) /* exactly one of the two must be '?' */
        return invalid(out, err);
    if (!parse_list(f[5], &F_YEAR, &b))
        return invalid(out, err);
    out->years_any = slice_is(&f[5], "*");
    memcpy(out->years, b.w, sizeof out->years);
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d);
static int days_in_month(int y, int m);

/* ------------------------------------------------------------ at(...) -- */

/* Exactly n digits (no sign, no blanks) as a number. */
static bool fixed_digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* yyyy-mm-ddThh:mm:ss, exactly 19 bytes. */
static int parse_at(slice body, pb_schedule *out, pb_error *err)
{
    const char *p = body.p;
    int y, mo, d, h, mi, se;
    if (body.e - body.p != 19 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' ||
        !fixed_digits(p, 4, &y) || !fixed_digits(p + 5, 2, &mo) || !fixed_digits(p + 8, 2, &d) ||
        !fixed_digits(p + 11, 2, &h) || !fixed_digits(p + 14, 2, &mi) || !fixed_digits(p + 17, 2, &se))
        return invalid(out, err);
    if (y < PB_SCHEDULE_YEAR_MIN || y > PB_SCHEDULE_YEAR_MAX || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59)
        return invalid(out, err);
    out->kind = PB_SCHED_AT;
    out->at_seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

int pb_schedule_parse(const char *expr, size_t len, pb_schedule *out, pb_error *err)
{
    pb_schedule scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    if (!expr || len < 6 || len > PB_SCHEDULE_MAX_LEN || expr[len - 1] != ')')
        return invalid(out, err);
    if (!memcmp(expr, "at(", 3))
        return parse_at((slice){expr + 3, expr + len - 1}, out, err);
    slice body = {expr + 5, expr + len - 1};
    if (!memcmp(expr, "rate(", 5))
        return parse_rate(body, out, err);
    if (!memcmp(expr, "cron(", 5))
        return parse_cron(body, out, err);
    return invalid(out, err);
}

/* ---------------------------------------------------------------- dates -- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian), and back. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int n[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m];
}

/* AWS weekday (1 = SUN .. 7 = SAT) of a day number; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days) { return (int)(((days + 4) % 7 + 7) % 7) + 1; }

/* ----------------------------------------------------------- next fire -- */

static int64_t rate_next(int64_t interval, int64_t anchor, int64_t after)
{
    int64_t k = 1, diff, off, r;
    if (interval <= 0)
        return -1;
    if (after >= anchor) {
        if (__builtin_sub_overflow(after, anchor, &diff))
            return -1;
        k = diff / interval + 1;
    }
    if (__builtin_mul_overflow(k, interval, &off) || __builtin_add_overflow(anchor, off, &r))
        return -1;
    return r;
}

/* Weekday nearest to day t (a Saturday moves to Friday, a Sunday to Monday),
 * never leaving the month: Saturday the 1st -> Monday the 3rd, Sunday the
 * last -> Friday. dow1 is the weekday of the 1st. */
static int nearest_weekday(int t, int ndays, int dow1)
{
    int w = (dow1 - 1 + t - 1) % 7 + 1;
    if (w == 7)
        return t == 1 ? 3 : t - 1;
    if (w == 1)
        return t == ndays ? t - 2 : t + 1;
    return t;
}

/* Bitmask (bits 1..31) of the days of y-m the day fields allow. */
static uint32_t month_days(const pb_schedule *s, int y, int m)
{
    int ndays = days_in_month(y, m);
    int dow1 = weekday_of(days_from_civil(y, m, 1));
    uint32_t all = (uint32_t)((((uint64_t)1 << (ndays + 1)) - 1) & ~(uint64_t)1);
    if (!s->dom_any) {
        int t;
        if (s->last_day) {
            t = ndays - s->last_day_offset;
            if (t < 1)
                return 0;
            if (s->nearest_weekday == -1)
                t = nearest_weekday(t, ndays, dow1);
        } else if (s->nearest_weekday > 0) {
            if (s->nearest_weekday > ndays)
                return 0; /* e.g. 31W in a 30-day month: no fire that month */
            t = nearest_weekday(s->nearest_weekday, ndays, dow1);
        } else {
            return s->days & all;
        }
        return (uint32_t)1 << t;
    }
    if (!s->dow_any) {
        if (s->nth_weekday) {
            int t = 1 + (s->nth_weekday_day - dow1 + 7) % 7 + 7 * (s->nth_weekday - 1);
            return t <= ndays ? (uint32_t)1 << t : 0;
        }
        if (s->last_weekday) {
            int dow_last = (dow1 - 1 + ndays - 1) % 7 + 1;
            return (uint32_t)1 << (ndays - (dow_last - s->last_weekday + 7) % 7);
        }
        uint32_t mask = 0;
        for (int d = 1; d <= ndays; d++)
            if (s->weekdays & (1u << ((dow1 - 1 + d - 1) % 7 + 1)))
                mask |= (uint32_t)1 << d;
        return mask;
    }
    return all;
}

static bool year_ok(const pb_schedule *s, int y)
{
    int i = y - PB_SCHEDULE_YEAR_MIN;
    return s->years_any || (s->years[i >> 6] >> (i & 63)) & 1;
}

static int64_t cron_next(const pb_schedule *s, int64_t after)
{
    const int64_t end = days_from_civil(PB_SCHEDULE_YEAR_MAX + 1, 1, 1) * 86400;
    const uint64_t min_all = ((uint64_t)1 << 60) - 1;
    const uint32_t hour_all = ((uint32_t)1 << 24) - 1;
    uint64_t minutes = s->minutes & min_all;
    uint32_t hours = s->hours & hour_all;
    if (!minutes || !hours || after >= end - 60)
        return -1;
    int64_t start = after < 0 ? 0 : (after / 60 + 1) * 60;

    int64_t sday = start / 86400;
    int sy, sm, sd, sh = (int)(start % 86400 / 3600), smi = (int)(start % 3600 / 60);
    civil_from_days(sday, &sy, &sm, &sd);

    for (int y = sy; y <= PB_SCHEDULE_YEAR_MAX; y++) {
        if (!year_ok(s, y))
            continue;
        for (int m = y == sy ? sm : 1; m <= 12; m++) {
            if (!(s->months & (1u << m)))
                continue;
            uint32_t days = month_days(s, y, m);
            bool first_month = y == sy && m == sm;
            if (first_month)
                days &= ~(((uint32_t)1 << sd) - 1);
            for (; days; days &= days - 1) {
                int d = __builtin_ctz(days);
                bool first_day = first_month && d == sd;
                uint32_t hs = first_day ? hours & ~(((uint32_t)1 << sh) - 1) : hours;
                for (; hs; hs &= hs - 1) {
                    int h = __builtin_ctz(hs);
                    uint64_t ms = first_day && h == sh ? minutes & ~(((uint64_t)1 << smi) - 1) : minutes;
                    if (ms)
                        return days_from_civil(y, m, d) * 86400 + h * 3600 + __builtin_ctzll(ms) * 60;
                }
            }
        }
    }
    return -1;
}

int64_t pb_schedule_next(const pb_schedule *s, int64_t anchor, int64_t after)
{
    if (!s)
        return -1;
    switch (s->kind) {
    case PB_SCHED_RATE:
        return rate_next(s->rate_seconds, anchor, after);
    case PB_SCHED_CRON:
        return cron_next(s, after);
    case PB_SCHED_AT:
        return s->at_seconds > after ? s->at_seconds : -1;
    }
    return -1;
}

/* ------------------------------------------------------------- preview -- */

size_t pb_schedule_preview(const pb_schedule *s, int64_t from, size_t count, int64_t *out)
{
    size_t n = 0;
    for (int64_t t = from; n < count; n++) {
        if ((t = pb_schedule_next(s, from, t)) < 0)
            break;
        out[n] = t;
    }
    return n;
}

void pb_schedule_iso(int64_t t, char out[32])
{
    int64_t days = floor_div(t, 86400), sec = t - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(sec / 3600), (int)(sec % 3600 / 60),
             (int)(sec % 60));
}

int pb_schedule_parse_iso(const char *text, int64_t *out)
{
    size_t len = text ? strlen(text) : 0;
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (len < 10 || text[4] != '-' || text[7] != '-' || !fixed_digits(text, 4, &y) ||
        !fixed_digits(text + 5, 2, &mo) || !fixed_digits(text + 8, 2, &d))
        return PB_EVALIDATION;
    if (len > 10) {
        const char *z = text + 19;
        if (len < 19 || (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':' ||
            !fixed_digits(text + 11, 2, &h) || !fixed_digits(text + 14, 2, &mi) || !fixed_digits(text + 17, 2, &se))
            return PB_EVALIDATION;
        if (!(len == 19 || (len == 20 && (*z == 'Z' || *z == 'z')) || (len == 25 && !strcmp(z, "+00:00"))))
            return PB_EVALIDATION;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59)
        return PB_EVALIDATION;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}
