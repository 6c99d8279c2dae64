/*
 * pb_number.c — JSON number scanning and exact conversion. See pb_number.h.
 */
#define _GNU_SOURCE
#include "pb_number.h"

#include <locale.h>
#include <stdbool.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t pb_number_scan(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t j = i + 1;
        if (j >= n || s[j] < '0' || s[j] > '9')
            return i; /* "1." : the number is "1" */
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        i = j;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j >= n || s[j] < '0' || s[j] > '9')
            return i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        i = j;
    }
    return i;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static int slow_parse(const char *s, size_t n, double *out)
{
    char stack[128];
    char *buf = n < sizeof stack ? stack : malloc(n + 1);
    if (!buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    char *end = NULL;
    double v = c_locale ? strtod_l(buf, &end, c_locale) : strtod(buf, &end);
    int ok = end == buf + n;
    if (buf != stack)
        free(buf);
    if (!ok)
        return -1;
    *out = v;
    return 0;
}

/* Up to 19 significant digits fit a uint64_t exactly, and so does 10^k for
 * k <= 27 in the 64-bit significand of x87 extended precision. One extended
 * multiplication or division of those exact operands is correctly rounded to
 * 64 bits; rounding that to a double is then exact unless the extended
 * result sits on (or next to) a point halfway between two doubles, which we
 * detect from its low 11 bits and hand to strtod. */
#if defined(__x86_64__) && defined(__LDBL_MANT_DIG__) && __LDBL_MANT_DIG__ == 64
#define PB_HAVE_X87 1
static const long double pow10_ext[] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
    1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
#endif

/* Combines an exact significand and power of ten into *out; -1 if the fast
 * paths cannot decide (the caller then uses strtod). */
static int combine(uint64_t mant, int exp10, int neg, double *out)
{
    double v;
    if (mant == 0) {
        v = 0.0;
    } else if (mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        /* Clinger: both operands exact doubles, one correctly rounded op */
        v = exp10 >= 0 ? (double)mant * pow10_exact[exp10] : (double)mant / pow10_exact[-exp10];
    } else {
#ifdef PB_HAVE_X87
        if (exp10 < -27 || exp10 > 27)
            return -1;
        long double x = exp10 >= 0 ? (long double)mant * pow10_ext[exp10] : (long double)mant / pow10_ext[-exp10];
        uint64_t sig;
        memcpy(&sig, &x, sizeof sig); /* x87 format: the 64-bit significand comes first */
        unsigned low = (unsigned)(sig & 0x7ff);
        if (low >= 0x3ff && low <= 0x401)
            return -1;
        v = (double)x;
#else
        return -1;
#endif
    }
    *out = neg ? -v : v;
    return 0;
}

static inline bool digit(char c) { return (unsigned char)(c - '0') < 10; }

size_t pb_number_scan_parse(const char *s, size_t n, double *out, bool *exact)
{
    const char *p = s, *e = s + n;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || !digit(*p))
        return 0;
    uint64_t mant = 0;
    int sig = 0, exp10 = 0; /* significant digits taken into mant */
    bool overflow = false;
    if (*p == '0') {
        p++;
    } else {
        for (; p < e && digit(*p); p++) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig++;
            } else {
                overflow = true;
                break;
            }
        }
    }
    if (p < e && *p == '.') {
        if (p + 1 >= e || !digit(p[1]))
            return (size_t)(p - s); /* "1." : the number is "1" */
        for (p++; p < e && digit(*p); p++) {
            if (mant == 0 && *p == '0') {
                exp10--; /* leading zeros of a fraction */
                continue;
            }
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig++;
                exp10--;
            } else {
                overflow = true;
                break;
            }
        }
    }
    if (overflow) { /* more than 19 significant digits: find the end, use strtod */
        size_t len = pb_number_scan(s, n);
        *exact = slow_parse(s, len, out) == 0;
        return len;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int eneg = 0, ev = 0;
        if (q < e && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q < e && digit(*q)) {
            for (; q < e && digit(*q); q++)
                if (ev < 100000)
                    ev = ev * 10 + (*q - '0');
            exp10 += eneg ? -ev : ev;
            p = q;
        }
    }
    size_t len = (size_t)(p - s);
    if (combine(mant, exp10, neg, out))
        *exact = slow_parse(s, len, out) == 0;
    else
        *exact = true;
    return len;
}

/* Converts a token already known to be one JSON number. */
static int convert(const char *s, size_t n, double *out)
{
    bool ok = false;
    return pb_number_scan_parse(s, n, out, &ok) == n && ok ? 0 : -1;
}

int pb_number_parse(const char *s, size_t n, double *out)
{
    if (n == 0 || pb_number_scan(s, n) != n)
        return -1;
    return convert(s, n, out);
}

int pb_number_parse_scanned(const char *s, size_t n, double *out) { return convert(s, n, out); }
