/*
 * pipebridge_clock.c — the scheduler through pipebridge's own actions
 * (X-Amz-Target `Pipebridge.*`, SigV4 service `pipebridge`):
 *
 *   AdvanceClock     {Seconds? | To?} -> {Now, Fired}
 *                    moves the manual clock (serve --clock manual) forward by
 *                    Seconds, or to To (seconds since the epoch), firing
 *                    every schedule tick due up to it; answers once they are
 *                    committed. With the real clock: ValidationException.
 *   PreviewSchedule  {ScheduleExpression, From?, Count?} -> {FireTimes: [...]}
 *                    the next Count (1..100, default 10) fire times strictly
 *                    after From (default: the server's now), UTC ISO-8601;
 *                    a rate counts from From.
 *
 * Decisions are in docs/SCHEDULES.md.
 */
#include "api_internal.h"

#include "schedule/pb_schedule.h"

#include <stdio.h>
#include <string.h>

#define PREVIEW_MAX 100
#define PREVIEW_DEFAULT 10
#define ADVANCE_MAX_SECONDS (400LL * 366 * 86400) /* one call moves at most 400 years */

static int advance_clock(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    bool has_secs = false;
    long long secs = pb_v_int(&v, in, "Seconds", "seconds", false, 0, ADVANCE_MAX_SECONDS, &has_secs);
    int64_t to_ms = 0;
    bool has_to = pb_v_time(&v, in, "To", "to", &to_ms);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    if (has_secs == has_to)
        return pb_error_set(err, PB_EVALIDATION, "Give exactly one of Seconds and To.");
    if (!pb_scheduler_is_manual(ctx->scheduler))
        return pb_error_set(err, PB_EVALIDATION,
                            "The clock can only be advanced when the server runs with --clock manual.");
    if (has_secs)
        to_ms = pb_scheduler_now_ms(ctx->scheduler) + secs * 1000;
    size_t fired = 0;
    if ((rc = pb_scheduler_advance(ctx->scheduler, to_ms, &fired, err)) != 0)
        return rc;
    *out = json_object();
    json_object_set_new(*out, "Now", pb_json_time(pb_scheduler_now_ms(ctx->scheduler)));
    json_object_set_new(*out, "Fired", json_integer((json_int_t)fired));
    return 0;
}

static int preview_schedule(pb_api_ctx *ctx, json_t *in, json_t **out, pb_error *err)
{
    pb_vctx v;
    pb_v_init(&v);
    const char *expr = pb_v_str(&v, in, "ScheduleExpression", "scheduleExpression", true, 1, PB_SCHEDULE_MAX_LEN,
                                PB_CS_ANY);
    int64_t from_ms = 0;
    bool has_from = pb_v_time(&v, in, "From", "from", &from_ms);
    bool has_count = false;
    long long count = pb_v_int(&v, in, "Count", "count", false, 1, PREVIEW_MAX, &has_count);
    int rc = pb_v_finish(&v, err);
    pb_v_free(&v);
    if (rc)
        return rc;
    pb_schedule s;
    if ((rc = pb_schedule_parse(expr, strlen(expr), &s, err)) != 0)
        return rc;
    if (!has_from)
        from_ms = pb_scheduler_now_ms(ctx->scheduler);
    int64_t times[PREVIEW_MAX];
    int64_t from = from_ms >= 0 ? from_ms / 1000 : -((-from_ms + 999) / 1000);
    size_t n = pb_schedule_preview(&s, from, has_count ? (size_t)count : PREVIEW_DEFAULT, times);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char iso[32];
        pb_schedule_iso(times[i], iso);
        json_array_append_new(arr, json_string(iso));
    }
    *out = json_object();
    json_object_set_new(*out, "FireTimes", arr);
    return 0;
}

const pb_api_op pb_pipebridge_clock_ops[] = {
    {"AdvanceClock", advance_clock, false},
    {"PreviewSchedule", preview_schedule, false},
    {NULL, NULL, false},
};
