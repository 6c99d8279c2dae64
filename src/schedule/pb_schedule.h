/*
 * pb_schedule.h — EventBridge schedule expressions: rate(...) and AWS cron(...).
 *
 * Pure: parsing and next-fire computation, no clock of its own, no allocation.
 * Validity follows ../shared/spec/AWS-SPEC.md §5 and the cases recorded against
 * AWS in ../shared/conformance/schedule-validity-aws.jsonl. All times are UTC
 * seconds since the epoch; schedules have minute granularity; no DST.
 *
 * Accepted grammar (at most PB_SCHEDULE_MAX_LEN bytes, nothing around it):
 *
 *   rate(N unit)   N a positive decimal integer (<= 2^31-1, leading zeros
 *                  allowed); unit exactly minute|hour|day when N == 1 and
 *                  minutes|hours|days otherwise; exactly one space.
 *   cron(Mi H DoM Mo DoW Y)   six fields separated by exactly one space:
 *
 *     field  values              items of a comma list          also, alone
 *     Mi     0-59                *  v  a-b  * /s  v/s  a-b/s    -
 *     H      0-23                same                           -
 *     DoM    1-31                same                           ?  L  L-n  LW  L-nW  nW
 *     Mo     1-12, JAN-DEC       same                           -
 *     DoW    1-7, SUN-SAT        *  v  a-b  (no steps)          ?  L  dL  d#n
 *     Y      1970-2199           same as Mi, but no wrapping    -
 *
 *   at(yyyy-mm-ddThh:mm:ss)   one fire at that UTC second (EventBridge
 *                  Scheduler's one-time form; years 1970-2199; the date
 *                  must exist; nothing else inside, no zone suffix).
 *
 *   v/s means v, v+s, ... up to the field's maximum; a-b with a > b wraps
 *   around (hours 22-2 = 22,23,0,1,2), steps continue across the wrap; a
 *   step is 1..the field's maximum value. Names and the letters L, W are
 *   case-insensitive. Exactly one of DoM / DoW must be '?'. L-n: 0 <= n <= 30;
 *   nW: 1 <= n <= 31; d#n: 1 <= n <= 5; DoW L alone = 7 (Saturday).
 */
#ifndef PB_SCHEDULE_H
#define PB_SCHEDULE_H

#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_SCHEDULE_MAX_LEN 256 /* PutRule's ScheduleExpression limit */
#define PB_SCHEDULE_YEAR_MIN 1970
#define PB_SCHEDULE_YEAR_MAX 2199

typedef enum pb_schedule_kind { PB_SCHED_RATE = 1, PB_SCHED_CRON = 2, PB_SCHED_AT = 3 } pb_schedule_kind;

/* A parsed expression: 72 bytes, no pointers, so it can be copied, compared
 * with memcmp (parse zeroes the padding) and shared by every rule with the
 * same expression (the scheduler interns it). */
typedef struct pb_schedule {
    /* CRON: one bit per allowed value, plus AWS's special forms */
    uint64_t minutes;        /* bits 0..59 */
    uint64_t years[4];       /* bits for 1970..2225 (index year-1970); all of 1970..2199 when years_any */
    union {
        int64_t rate_seconds; /* RATE: the interval */
        int64_t at_seconds;   /* AT: the one fire time */
    };
    uint32_t hours;          /* bits 0..23 */
    uint32_t days;           /* bits 1..31 (day of month) */
    uint16_t months;         /* bits 1..12 */
    uint8_t kind;            /* pb_schedule_kind; 0 in a zeroed struct (never fires) */
    uint8_t weekdays;        /* bits 1..7, 1 = SUN ... 7 = SAT (AWS numbering) */
    bool dom_any, dow_any;   /* '?' (or '*') in day-of-month / day-of-week; when
                                both are set every day of an allowed month fires */
    bool last_day;           /* L in day-of-month: the (L-n: n-th before the) last day */
    bool years_any;
    int8_t last_day_offset;  /* L-n: n (0..30) */
    int8_t nearest_weekday;  /* nW in day-of-month (0 if unused); LW / L-nW is last_day + nearest_weekday = -1 */
    int8_t nth_weekday;      /* d#n: n (1..5), weekday in nth_weekday_day; 0 if unused */
    int8_t nth_weekday_day;
    int8_t last_weekday;     /* dL: the last given weekday of the month (1..7), 0 if unused */
} pb_schedule;

/* Parses expr[0..len) (need not be NUL-terminated; NUL bytes are invalid).
 * Never allocates. Errors: PB_EVALIDATION with the message
 * "Parameter ScheduleExpression is not valid."; *out is then zeroed. */
int pb_schedule_parse(const char *expr, size_t len, pb_schedule *out, pb_error *err);

/* The first fire time strictly after `after`. For rate schedules, fires are
 * anchor + k * interval, k >= 1 (anchor = when the rule was created; the
 * creation instant itself is not a fire; anchor's seconds are kept). For cron
 * schedules, the start of the first minute > after in years 1970..2199 whose
 * fields all match. For at(...), that instant if it is after `after`.
 * Returns -1 ("never") when the schedule never fires again (e.g. a cron
 * whose years have all passed, an at(...) in the past, or an overflowing
 * rate). */
int64_t pb_schedule_next(const pb_schedule *s, int64_t anchor, int64_t after);

/* The next up to `count` fire times strictly after `from` into out[]
 * (consecutive pb_schedule_next; a rate counts from `from`, as if the rule
 * were created then). Returns how many: fewer than count when the schedule
 * then never fires again, 0 when it never fires after `from`. */
size_t pb_schedule_preview(const pb_schedule *s, int64_t from, size_t count, int64_t *out);

/* UTC "YYYY-MM-DDTHH:MM:SSZ" of t (seconds) into out (at least 32 bytes;
 * years 0..9999). */
void pb_schedule_iso(int64_t t, char out[32]);

/* Parses "YYYY-MM-DDTHH:MM:SS" optionally followed by "Z" (or by "+00:00"),
 * or "YYYY-MM-DD" (midnight), into seconds: 0 or PB_EVALIDATION. */
int pb_schedule_parse_iso(const char *text, int64_t *out);

#endif
