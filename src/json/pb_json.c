/*
 * pb_json.c — recursive-descent JSON parser with Jackson's error wording.
 *
 * The parser is strict RFC 8259 JSON. It is recursive; depth is capped by
 * limits->max_depth before recursing. Error messages reproduce the first line
 * of the message Jackson (the parser used by EventBridge) produces for the same
 * mistake, then Jackson's location line. See pb_json.h.
 */
#include "pb_json.h"

#include "pb_number.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t n, i;
    int depth, max_depth;
    pb_arena *arena;
    pb_error *err;
} parser;

/* ---------------------------------------------------------------- errors -- */

/* Jackson's location suffix: the source (cut at 500 chars), line and column. */
static int fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser *p, size_t at, const char *fmt, ...)
{
    if (!p->err)
        return PB_EVALIDATION;
    char first[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first, sizeof first, fmt, ap);
    va_end(ap);
    size_t line = 1, col = 1;
    for (size_t k = 0; k < at && k < p->n; k++) {
        if (p->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    size_t show = p->n > 500 ? 500 : p->n;
    char src[600];
    size_t w = 0;
    for (size_t k = 0; k < show && w < sizeof src - 1; k++)
        src[w++] = p->s[k] ? p->s[k] : ' ';
    src[w] = '\0';
    if (p->n > 500)
        return pb_error_set(p->err, PB_EVALIDATION,
                            "%s\n at [Source: (String)\"%s\"[truncated %zu chars]; line: %zu, column: %zu]",
                            first, src, p->n - 500, line, col);
    return pb_error_set(p->err, PB_EVALIDATION, "%s\n at [Source: (String)\"%s\"; line: %zu, column: %zu]",
                        first, src, line, col);
}

/* Jackson prints a character as 'c' (code N); control characters by name. */
static void char_desc(int c, char *out, size_t n)
{
    if (c < 32)
        snprintf(out, n, "(CTRL-CHAR, code %d)", c);
    else if (c < 128)
        snprintf(out, n, "'%c' (code %d)", c, c);
    else
        snprintf(out, n, "(code %d / 0x%x)", c, c);
}

/* Decodes the UTF-8 code point at s[i] for messages (raw byte if malformed). */
static int peek_cp(const parser *p, size_t i)
{
    unsigned char c = (unsigned char)p->s[i];
    if (c < 0x80)
        return c;
    int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (len == 1 || i + (size_t)len > p->n)
        return c;
    int cp = c & (0x3f >> (len - 1));
    for (int k = 1; k < len; k++)
        cp = (cp << 6) | ((unsigned char)p->s[i + k] & 0x3f);
    return cp;
}

static int unexpected(parser *p, const char *what)
{
    if (p->i >= p->n)
        return -1; /* caller reports end-of-input */
    char d[64];
    char_desc(peek_cp(p, p->i), d, sizeof d);
    return fail(p, p->i + 1, "Unexpected character (%s): %s", d, what);
}

static int is_ident(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || c >= 0x80;
}

static int unrecognized_token(parser *p, size_t start)
{
    size_t e = start;
    while (e < p->n && is_ident((unsigned char)p->s[e]) && e - start < 256)
        e++;
    if (e == start)
        e = start + 1;
    return fail(p, e, "Unrecognized token '%.*s': was expecting (JSON String, Number, Array, Object or token "
                      "'null', 'true' or 'false')",
                (int)(e - start), p->s + start);
}

/* --------------------------------------------------------------- lexing -- */

static void skip_ws(parser *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->i++;
        else
            break;
    }
}

size_t pb_utf8_encode(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

int pb_json_unescape(const char *s, size_t n, char *o, size_t *outlen, size_t *at)
{
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        unsigned char c = (unsigned char)s[r];
        if (c < 0x20) {
            *at = r;
            return PB_JSON_ESC_CONTROL;
        }
        if (c != '\\') {
            o[w++] = (char)c;
            r++;
            continue;
        }
        if (r + 1 >= n) {
            *at = r;
            return PB_JSON_ESC_BAD;
        }
        char e = s[r + 1];
        r += 2;
        switch (e) {
        case '"': o[w++] = '"'; break;
        case '\\': o[w++] = '\\'; break;
        case '/': o[w++] = '/'; break;
        case 'b': o[w++] = '\b'; break;
        case 'f': o[w++] = '\f'; break;
        case 'n': o[w++] = '\n'; break;
        case 'r': o[w++] = '\r'; break;
        case 't': o[w++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (r + 4 > n || hex4(s + r, &cp)) {
                size_t k = r;
                while (k < n && k < r + 4 && ((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f') ||
                                              (s[k] >= 'A' && s[k] <= 'F')))
                    k++;
                *at = k;
                return PB_JSON_ESC_HEX;
            }
            r += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && r + 6 <= n && s[r] == '\\' && s[r + 1] == 'u') {
                unsigned lo;
                if (!hex4(s + r + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r += 6;
                }
            }
            w += pb_utf8_encode(cp, o + w);
            break;
        }
        default:
            *at = r - 1;
            return PB_JSON_ESC_BAD;
        }
    }
    *outlen = w;
    return 0;
}

/* Parses the string whose opening quote is at p->i. */
static int parse_string(parser *p, const char **out, size_t *outlen)
{
    size_t start = ++p->i;
    size_t k = start;
    while (k < p->n && p->s[k] != '"')
        k += p->s[k] == '\\' ? 2 : 1;
    if (k >= p->n)
        return fail(p, p->n, "Unexpected end-of-input: was expecting closing quote for a string value");
    char *o = pb_arena_alloc(p->arena, k - start + 1); /* decoded output is never longer */
    if (!o)
        return PB_ENOMEM;
    size_t at = 0, w = 0;
    char d[64];
    switch (pb_json_unescape(p->s + start, k - start, o, &w, &at)) {
    case PB_JSON_ESC_CONTROL:
        char_desc((unsigned char)p->s[start + at], d, sizeof d);
        return fail(p, start + at + 1,
                    "Illegal unquoted character (%s): has to be escaped using backslash to be included in string "
                    "value",
                    d);
    case PB_JSON_ESC_BAD:
        char_desc((unsigned char)p->s[start + at], d, sizeof d);
        return fail(p, start + at + 1, "Unrecognized character escape %s", d);
    case PB_JSON_ESC_HEX:
        char_desc(start + at < k ? (unsigned char)p->s[start + at] : '"', d, sizeof d);
        return fail(p, start + at + 1, "Unexpected character (%s): expected a hex-digit for character escape sequence",
                    d);
    default: break;
    }
    o[w] = '\0';
    *out = o;
    *outlen = w;
    p->i = k + 1;
    return 0;
}

/* -------------------------------------------------------------- parsing -- */

static int parse_value(parser *p, pb_json **out);

static pb_json *new_node(parser *p, pb_json_type t, size_t at)
{
    pb_json *v = pb_arena_zalloc(p->arena, sizeof *v);
    if (v) {
        v->type = t;
        v->offset = at;
    }
    return v;
}

static int eof_in(parser *p, const char *kind, size_t start)
{
    size_t line = 1, col = 1;
    for (size_t k = 0; k < start; k++) {
        if (p->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fail(p, p->n, "Unexpected end-of-input: expected close marker for %s (start marker at [Source: (String)\"%.*s\"; line: %zu, column: %zu])",
                kind, (int)(p->n > 500 ? 500 : p->n), p->s, line, col);
}

/* Jackson: "Unexpected close marker ']': expected '}' (for Object starting at [...])". */
static int close_mismatch(parser *p, char got, char want, const char *kind, size_t start)
{
    size_t line = 1, col = 1;
    for (size_t k = 0; k < start; k++) {
        if (p->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fail(p, p->i + 1,
                "Unexpected close marker '%c': expected '%c' (for %s starting at [Source: (String)\"%.*s\"; line: %zu, "
                "column: %zu])",
                got, want, kind, (int)(p->n > 500 ? 500 : p->n), p->s, line, col);
}

static int grow(parser *p, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    void *na = pb_arena_alloc(p->arena, nc * elem);
    if (!na)
        return PB_ENOMEM;
    if (n)
        memcpy(na, *arr, n * elem);
    *arr = na;
    *cap = nc;
    return 0;
}

static int parse_object(parser *p, pb_json **out)
{
    size_t start = p->i++;
    pb_json *v = new_node(p, PB_JSON_OBJECT, start);
    if (!v)
        return PB_ENOMEM;
    size_t cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        *out = v;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->i >= p->n)
            return eof_in(p, "Object", start);
        if (p->s[p->i] != '"')
            return unexpected(p, "was expecting double-quote to start field name");
        pb_json_member m;
        int rc = parse_string(p, &m.key, &m.keylen);
        if (rc)
            return rc;
        skip_ws(p);
        if (p->i >= p->n)
            return eof_in(p, "Object", start);
        if (p->s[p->i] != ':')
            return unexpected(p, "was expecting a colon to separate field name and value");
        p->i++;
        rc = parse_value(p, &m.value);
        if (rc)
            return rc;
        rc = grow(p, (void **)&v->members, &cap, v->n, sizeof m);
        if (rc)
            return rc;
        v->members[v->n++] = m;
        skip_ws(p);
        if (p->i >= p->n)
            return eof_in(p, "Object", start);
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == '}') {
            p->i++;
            *out = v;
            return 0;
        }
        if (p->s[p->i] == ']')
            return close_mismatch(p, ']', '}', "Object", start);
        return unexpected(p, "was expecting comma to separate Object entries");
    }
}

static int parse_array(parser *p, pb_json **out)
{
    size_t start = p->i++;
    pb_json *v = new_node(p, PB_JSON_ARRAY, start);
    if (!v)
        return PB_ENOMEM;
    size_t cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == ']') {
        p->i++;
        *out = v;
        return 0;
    }
    for (;;) {
        pb_json *item;
        skip_ws(p);
        if (p->i >= p->n)
            return eof_in(p, "Array", start);
        int rc = parse_value(p, &item);
        if (rc)
            return rc;
        rc = grow(p, (void **)&v->items, &cap, v->n, sizeof item);
        if (rc)
            return rc;
        v->items[v->n++] = item;
        skip_ws(p);
        if (p->i >= p->n)
            return eof_in(p, "Array", start);
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == ']') {
            p->i++;
            *out = v;
            return 0;
        }
        if (p->s[p->i] == '}')
            return close_mismatch(p, '}', ']', "Array", start);
        return unexpected(p, "was expecting comma to separate Array entries");
    }
}

static int parse_number(parser *p, pb_json **out)
{
    size_t start = p->i;
    const char *s = p->s + start;
    size_t avail = p->n - start;
    size_t neg = s[0] == '-';
    if (neg && (avail < 2 || s[1] < '0' || s[1] > '9')) {
        if (avail < 2)
            return fail(p, p->n, "Unexpected end-of-input in numeric value");
        char d[64];
        char_desc((unsigned char)s[1], d, sizeof d);
        return fail(p, start + 2, "Unexpected character (%s) in numeric value: expected digit (0-9) to follow minus sign, for valid numeric value", d);
    }
    if (s[neg] == '0' && avail > neg + 1 && s[neg + 1] >= '0' && s[neg + 1] <= '9')
        return fail(p, start + neg + 2, "Invalid numeric value: Leading zeroes not allowed");
    size_t len = pb_number_scan(s, avail);
    if (len < avail && (s[len] == '.' || s[len] == 'e' || s[len] == 'E')) {
        size_t k = len + 1;
        if (k < avail && (s[len] == 'e' || s[len] == 'E') && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k >= avail)
            return fail(p, p->n, "Unexpected end-of-input in numeric value");
        char d[64];
        char_desc((unsigned char)s[k], d, sizeof d);
        if (s[len] == '.')
            return fail(p, start + k + 1, "Unexpected character (%s) in numeric value: Decimal point not followed by a digit", d);
        return fail(p, start + k + 1, "Unexpected character (%s) in numeric value: Exponent indicator not followed by a digit", d);
    }
    pb_json *v = new_node(p, PB_JSON_NUMBER, start);
    if (!v)
        return PB_ENOMEM;
    v->str = s;
    v->len = len;
    if (pb_number_parse(s, len, &v->num))
        return fail(p, start + 1, "Invalid numeric value");
    p->i += len;
    *out = v;
    return 0;
}

static int parse_literal(parser *p, const char *word, pb_json_type t, pb_json **out)
{
    size_t wl = strlen(word);
    size_t start = p->i;
    if (p->n - start >= wl && memcmp(p->s + start, word, wl) == 0 &&
        (start + wl == p->n || !is_ident((unsigned char)p->s[start + wl]))) {
        *out = new_node(p, t, start);
        if (!*out)
            return PB_ENOMEM;
        p->i += wl;
        return 0;
    }
    return unrecognized_token(p, start);
}

static int parse_value(parser *p, pb_json **out)
{
    skip_ws(p);
    if (p->i >= p->n)
        return fail(p, p->n, "Unexpected end-of-input: expected a value");
    char c = p->s[p->i];
    switch (c) {
    case '{':
    case '[': {
        if (p->depth >= p->max_depth)
            return fail(p, p->i + 1, "Document nesting depth exceeds the maximum allowed (%d)", p->max_depth);
        p->depth++;
        int rc = c == '{' ? parse_object(p, out) : parse_array(p, out);
        p->depth--;
        return rc;
    }
    case '"': {
        size_t start = p->i;
        pb_json *v = new_node(p, PB_JSON_STRING, start);
        if (!v)
            return PB_ENOMEM;
        int rc = parse_string(p, &v->str, &v->len);
        if (rc)
            return rc;
        *out = v;
        return 0;
    }
    case 't': return parse_literal(p, "true", PB_JSON_TRUE, out);
    case 'f': return parse_literal(p, "false", PB_JSON_FALSE, out);
    case 'n': return parse_literal(p, "null", PB_JSON_NULL, out);
    case '}': return unexpected(p, "expected a value");
    case ']':
        return unexpected(p, "expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' "
                             "or 'false')");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, out);
        if (is_ident((unsigned char)c))
            return unrecognized_token(p, p->i);
        return unexpected(p, "expected a valid value (JSON String, Number, Array, Object or token 'null', "
                             "'true' or 'false')");
    }
}

int pb_json_parse(const char *text, size_t len, const pb_json_limits *limits, pb_arena *arena, pb_json **out,
                  pb_error *err)
{
    parser p = {.s = text, .n = len, .i = 0, .depth = 0, .arena = arena, .err = err};
    p.max_depth = limits && limits->max_depth > 0 ? limits->max_depth : 512;
    if (limits && limits->max_bytes && len > limits->max_bytes)
        return pb_error_set(err, PB_EVALIDATION, "document of %zu bytes exceeds the limit of %zu bytes", len,
                            limits->max_bytes);
    skip_ws(&p);
    if (p.i >= p.n)
        return pb_error_set(err, PB_EVALIDATION, "No content to map due to end-of-input");
    int rc = parse_value(&p, out);
    if (rc)
        return rc;
    skip_ws(&p);
    if (p.i < p.n) {
        /* Jackson with FAIL_ON_TRAILING_TOKENS; our decision: trailing text is an error. */
        char d[64];
        char_desc(peek_cp(&p, p.i), d, sizeof d);
        return fail(&p, p.i + 1, "Unexpected character (%s): expected end-of-input", d);
    }
    return 0;
}

pb_json *pb_json_get(const pb_json *obj, const char *key)
{
    if (!obj || obj->type != PB_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->n; i-- > 0;)
        if (obj->members[i].keylen == kl && memcmp(obj->members[i].key, key, kl) == 0)
            return obj->members[i].value;
    return NULL;
}

/* -------------------------------------------------------------- writing -- */

int pb_json_write_string(pb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = pb_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = pb_buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc)
            break;
        switch (c) {
        case '"': rc = pb_buf_append(b, "\\\"", 2); break;
        case '\\': rc = pb_buf_append(b, "\\\\", 2); break;
        case '\n': rc = pb_buf_append(b, "\\n", 2); break;
        case '\r': rc = pb_buf_append(b, "\\r", 2); break;
        case '\t': rc = pb_buf_append(b, "\\t", 2); break;
        case '\b': rc = pb_buf_append(b, "\\b", 2); break;
        case '\f': rc = pb_buf_append(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = pb_buf_append(b, u, 6);
        }
        }
    }
    if (!rc)
        rc = pb_buf_append(b, s + run, n - run);
    if (!rc)
        rc = pb_buf_putc(b, '"');
    return rc;
}

int pb_json_write(pb_buf *b, const pb_json *v)
{
    int rc = 0;
    switch (v->type) {
    case PB_JSON_NULL: return pb_buf_puts(b, "null");
    case PB_JSON_TRUE: return pb_buf_puts(b, "true");
    case PB_JSON_FALSE: return pb_buf_puts(b, "false");
    case PB_JSON_NUMBER: return pb_buf_append(b, v->str, v->len);
    case PB_JSON_STRING: return pb_json_write_string(b, v->str, v->len);
    case PB_JSON_ARRAY:
        rc = pb_buf_putc(b, '[');
        for (size_t i = 0; i < v->n && !rc; i++) {
            if (i)
                rc = pb_buf_putc(b, ',');
            if (!rc)
                rc = pb_json_write(b, v->items[i]);
        }
        return rc ? rc : pb_buf_putc(b, ']');
    case PB_JSON_OBJECT:
        rc = pb_buf_putc(b, '{');
        for (size_t i = 0; i < v->n && !rc; i++) {
            if (i)
                rc = pb_buf_putc(b, ',');
            if (!rc)
                rc = pb_json_write_string(b, v->members[i].key, v->members[i].keylen);
            if (!rc)
                rc = pb_buf_putc(b, ':');
            if (!rc)
                rc = pb_json_write(b, v->members[i].value);
        }
        return rc ? rc : pb_buf_putc(b, '}');
    }
    return PB_EINTERNAL;
}
