/*
 * pb_buf.c — growable, capped byte buffer. See pb_buf.h.
 */
#include "pb_buf.h"

#include "pb_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pb_buf_init(pb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void pb_buf_free(pb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void pb_buf_reset(pb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int pb_buf_reserve(pb_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return PB_EVALIDATION;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return PB_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int pb_buf_append(pb_buf *b, const void *p, size_t n)
{
    int rc = pb_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int pb_buf_putc(pb_buf *b, char c) { return pb_buf_append(b, &c, 1); }

int pb_buf_puts(pb_buf *b, const char *s) { return pb_buf_append(b, s, strlen(s)); }

int pb_buf_printf(pb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PB_EINTERNAL;
    int rc = pb_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *pb_buf_steal(pb_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int pb_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return PB_ENOMEM;
        nc *= 2;
    }
    void *np = realloc(*p, nc * elem);
    if (!np)
        return PB_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}
