/*
 * pb_error.c — lookups into the error table and the helper that fills a
 * caller's pb_error. See pb_error.h.
 */
#include "pb_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct entry {
    int code;
    const char *name;
    int status;
    const char *type;
    const char *msg;
};

static const struct entry table[] = {
#define PB_X_ROW(name, value, status, type, msg) {value, #name, status, type, msg},
    PB_ERROR_TABLE(PB_X_ROW)
#undef PB_X_ROW
};

static const struct entry *find(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code)
            return &table[i];
    return find(PB_EINTERNAL);
}

const char *pb_error_name(int code) { return find(code)->name; }
int pb_error_http_status(int code) { return find(code)->status; }
const char *pb_error_aws_type(int code) { return find(code)->type; }
const char *pb_error_default_message(int code) { return find(code)->msg; }

int pb_error_set(pb_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->message) {
            /* cut: never leave half a UTF-8 character at the end */
            size_t end = sizeof err->message - 1;
            while (end > 0 && ((unsigned char)err->message[end] & 0xc0) == 0x80)
                end--;
            err->message[end] = '\0';
        }
    }
    return code;
}

void pb_error_clear(pb_error *err)
{
    if (err) {
        err->code = PB_OK;
        err->message[0] = '\0';
    }
}
