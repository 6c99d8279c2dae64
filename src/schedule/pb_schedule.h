/*
 * pb_schedule.h — EventBridge schedule expressions: rate(...) and AWS cron(...).
 *
 * Pure: parsing and next-fire computation, no clock of its own. Validity
 * follows ../shared/spec/AWS-SPEC.md §5 and the cases recorded against AWS in
 * ../shared/conformance/schedule-validity-aws.jsonl. All times are UTC
 * seconds since the epoch; schedules have minute granularity.
 */
#ifndef PB_SCHEDULE_H
#define PB_SCHEDULE_H

#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pb_schedule_kind { PB_SCHED_RATE = 1, PB_SCHED_CRON = 2 } pb_schedule_kind;

typedef struct pb_schedule {
    pb_schedule_kind kind;
    int64_t rate_seconds; /* RATE: the interval */
    /* CRON: one bit per allowed value, plus AWS's special forms */
    uint64_t minutes;     /* bits 0..59 */
    uint32_t hours;       /* bits 0..23 */
    uint32_t days;        /* bits 1..31 (day of month) */
    uint16_t months;      /* bits 1..12 */
    uint8_t weekdays;     /* bits 1..7, 1 = SUN ... 7 = SAT (AWS numbering) */
    bool dom_any, dow_any;   /* '?' (or '*') in day-of-month / day-of-week */
    bool last_day;           /* L in day-of-month */
    int last_day_offset;     /* L-n */
    int nearest_weekday;     /* nW in day-of-month (0 if unused); LW is last_day + nearest_weekday = -1 */
    int nth_weekday;         /* d#n: n (1..5), weekday in nth_weekday_day */
    int nth_weekday_day;
    int last_weekday;        /* dL: the last given weekday of the month (1..7), 0 if unused */
    uint8_t years_any;
    uint64_t years[4];       /* bits for 1970..2225 (index year-1970) when !years_any */
} pb_schedule;

/* Parses expr[0..len). Errors: PB_EVALIDATION with the message
 * "Parameter ScheduleExpression is not valid." */
int pb_schedule_parse(const char *expr, size_t len, pb_schedule *out, pb_error *err);

/* The first fire time strictly after `after`. For rate schedules, fires are
 * anchor + k * interval (anchor = when the rule was created). Returns -1 when
 * the schedule never fires again (e.g. a cron whose years have all passed). */
int64_t pb_schedule_next(const pb_schedule *s, int64_t anchor, int64_t after);

#endif
