/*
 * pb_log.h — one line per event on stderr, as text or as JSON objects.
 *
 * pb_log_request writes the per-request line (operation, status, latency);
 * pb_log_info / pb_log_error write free-form messages. Thread-safe (one
 * fprintf per line).
 */
#ifndef PB_LOG_H
#define PB_LOG_H

#include <stdbool.h>

void pb_log_set_json(bool json);
void pb_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pb_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pb_log_request(const char *operation, int status, const char *error_type, double latency_ms,
                    const char *request_id);

#endif
