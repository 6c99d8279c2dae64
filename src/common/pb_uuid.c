/*
 * pb_uuid.c — random UUIDs. See pb_uuid.h.
 *
 * PutEvents makes one id per entry, so the random bytes come from a
 * per-thread pool filled 512 bytes at a time (one getrandom call per 32
 * ids, not one per id), and the text is written without printf.
 */
#include "common/pb_uuid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define POOL_BYTES 512

static _Thread_local unsigned char pool[POOL_BYTES];
static _Thread_local size_t pool_left;

void pb_uuid_v4(char out[37])
{
    unsigned char b[16];
    if (pool_left < sizeof b && getrandom(pool, sizeof pool, 0) == (ssize_t)sizeof pool)
        pool_left = sizeof pool;
    if (pool_left >= sizeof b) {
        memcpy(b, pool + sizeof pool - pool_left, sizeof b);
        memset(pool + sizeof pool - pool_left, 0, sizeof b); /* an id's bytes are not kept */
        pool_left -= sizeof b;
    } else {
        static unsigned counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        counter++;
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 8 * 8)) ^ (unsigned char)(i * 31 + counter);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}
