/*
 * pb_buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer that grows from untrusted input has a cap, checked before any
 * allocation: appending past it fails with PB_EVALIDATION and leaves the buffer
 * as it was. The buffer owns its bytes; pb_buf_free releases them. The data is
 * always NUL-terminated (the NUL is not counted in len) once anything is appended.
 */
#ifndef PB_BUF_H
#define PB_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pb_buf {
    char *data;  /* owned; NULL until the first append */
    size_t len;  /* bytes used, excluding the trailing NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len; 0 means SIZE_MAX/2 */
} pb_buf;

void pb_buf_init(pb_buf *b, size_t max);
void pb_buf_free(pb_buf *b);
void pb_buf_reset(pb_buf *b); /* len = 0, keeps the allocation */

/* Make room for n more bytes. 0, PB_ENOMEM or PB_EVALIDATION (cap). */
int pb_buf_reserve(pb_buf *b, size_t n);
int pb_buf_append(pb_buf *b, const void *p, size_t n);
int pb_buf_putc(pb_buf *b, char c);
int pb_buf_puts(pb_buf *b, const char *s);
int pb_buf_printf(pb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Grows the array *p (elements of elem bytes, capacity *cap) to hold at
 * least need elements, doubling. 0 or PB_ENOMEM (the array is unchanged). */
int pb_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Hands the bytes to the caller (who frees them) and resets b to empty. */
char *pb_buf_steal(pb_buf *b);

#endif
