/*
 * pb_uuid.h — random UUIDs (version 4), for request ids and event ids.
 */
#ifndef PB_UUID_H
#define PB_UUID_H

/* A random UUID v4, lowercase, NUL-terminated. Uses getrandom; if that
 * fails, falls back to the clock (unique enough for ids, not for secrets). */
void pb_uuid_v4(char out[37]);

#endif
