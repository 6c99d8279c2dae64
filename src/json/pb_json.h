/*
 * pb_json.h — a small JSON DOM parser and string writer for cold paths.
 *
 * Event patterns, TestEventPattern events and test case files are parsed into
 * this DOM. It keeps what the pattern language needs and general-purpose
 * parsers drop: every member of an object in source order (duplicate keys
 * included), and the original text of each number. Parse errors carry the
 * wording of Jackson, the parser behind EventBridge, because AWS returns that
 * text inside InvalidEventPatternException (e.g. "Unrecognized token 'this':
 * was expecting (JSON String, Number, Array, Object or token 'null', 'true' or
 * 'false')").
 *
 * Ownership: every node, key and string of a document lives in the pb_arena
 * passed to pb_json_parse; freeing the arena frees the document. The hot path
 * (matching events) does not use this DOM; it has its own flattener.
 */
#ifndef PB_JSON_H
#define PB_JSON_H

#include "common/pb_arena.h"
#include "common/pb_buf.h"
#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum pb_json_type {
    PB_JSON_NULL,
    PB_JSON_FALSE,
    PB_JSON_TRUE,
    PB_JSON_NUMBER,
    PB_JSON_STRING,
    PB_JSON_ARRAY,
    PB_JSON_OBJECT,
} pb_json_type;

typedef struct pb_json pb_json;

typedef struct pb_json_member {
    const char *key; /* decoded UTF-8, NUL-terminated (may contain NUL: use keylen) */
    size_t keylen;
    pb_json *value;
} pb_json_member;

struct pb_json {
    pb_json_type type;
    size_t offset;      /* byte offset of the value's first character in the source */
    const char *str;    /* STRING: decoded bytes; NUMBER: the source text */
    size_t len;         /* length of str */
    double num;         /* NUMBER: value as a double (±inf when out of range) */
    size_t n;           /* ARRAY: items; OBJECT: members */
    pb_json **items;    /* ARRAY */
    pb_json_member *members; /* OBJECT, in source order, duplicates kept */
};

typedef struct pb_json_limits {
    size_t max_bytes; /* input longer than this is refused before parsing */
    int max_depth;    /* nesting deeper than this is a parse error */
} pb_json_limits;

/* Parses text[0..len) into *out (arena-owned). On a syntax error returns
 * PB_EVALIDATION with err->message set to Jackson's first line followed by
 * "\n at [Source: (String)\"...\"; line: L, column: C]". Other codes: PB_ENOMEM. */
int pb_json_parse(const char *text, size_t len, const pb_json_limits *limits, pb_arena *arena,
                  pb_json **out, pb_error *err);

/* The last member of obj named key (JSON's "last occurrence wins"), or NULL. */
pb_json *pb_json_get(const pb_json *obj, const char *key);

/* Appends s as a JSON string literal (quotes and escapes) to b. */
int pb_json_write_string(pb_buf *b, const char *s, size_t n);

/* Appends v re-serialised compactly (numbers as their source text). */
int pb_json_write(pb_buf *b, const pb_json *v);

/* Decodes the body of a JSON string (between the quotes) into out, which
 * must hold n bytes: escapes become bytes, \uXXXX code points UTF-8 (a
 * surrogate pair one 4-byte sequence, a lone surrogate 3 bytes, as Java
 * strings hold it). Returns 0 and *outlen, or a PB_JSON_ESC_* problem with
 * *at the offset in s of the offending character. */
enum { PB_JSON_ESC_OK = 0, PB_JSON_ESC_CONTROL, PB_JSON_ESC_BAD, PB_JSON_ESC_HEX };
int pb_json_unescape(const char *s, size_t n, char *out, size_t *outlen, size_t *at);

/* Appends the UTF-8 encoding of code point cp (surrogates encoded as 3 bytes,
 * like Java strings do) to out; returns the number of bytes written (1..4). */
size_t pb_utf8_encode(unsigned cp, char *out);

#endif
