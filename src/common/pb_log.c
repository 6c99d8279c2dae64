/*
 * pb_log.c — stderr logging in text or JSON lines. See pb_log.h.
 */
#include "pb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool as_json;

void pb_log_set_json(bool json) { as_json = json; }

static void stamp(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* JSON-escapes s into out (truncating). */
static void esc(const char *s, char *out, size_t n)
{
    size_t w = 0;
    for (; *s && w + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[w++] = '\\';
            out[w++] = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(out + w, "\\u00", 4);
            out[w + 4] = hex[c >> 4];
            out[w + 5] = hex[c & 15];
            w += 6;
        } else {
            out[w++] = (char)c;
        }
    }
    out[w] = '\0';
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    vsnprintf(msg, sizeof msg, fmt, ap);
    stamp(ts, sizeof ts);
    if (as_json) {
        char e[4096];
        esc(msg, e, sizeof e);
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts, level, e);
    } else {
        fprintf(stderr, "%s %s %s\n", ts, level, msg);
    }
}

void pb_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("info", fmt, ap);
    va_end(ap);
}

void pb_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error", fmt, ap);
    va_end(ap);
}

void pb_log_request(const char *operation, int status, const char *error_type, double latency_ms,
                    const char *request_id)
{
    char ts[40];
    stamp(ts, sizeof ts);
    if (as_json) {
        char op[160], et[160];
        esc(operation, op, sizeof op);
        esc(error_type ? error_type : "", et, sizeof et);
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"operation\":\"%s\",\"status\":%d,"
                "\"error\":\"%s\",\"latency_ms\":%.3f,\"request_id\":\"%s\"}\n",
                ts, op, status, et, latency_ms, request_id);
    } else {
        fprintf(stderr, "%s info request op=%s status=%d%s%s latency_ms=%.3f id=%s\n", ts, operation, status,
                error_type && *error_type ? " error=" : "", error_type ? error_type : "", latency_ms, request_id);
    }
}
