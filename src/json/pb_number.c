/*
 * pb_number.c — JSON number scanning and exact conversion. See pb_number.h.
 */
#define _GNU_SOURCE
#include "pb_number.h"

#include <locale.h>
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

int pb_number_parse(const char *s, size_t n, double *out)
{
    if (n == 0 || pb_number_scan(s, n) != n)
        return -1;
    /* Fast path: at most 15 significant digits, small exponent. */
    size_t i = 0;
    int neg = 0;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (mant || s[i] != '0')
            digits++;
        mant = mant * 10 + (uint64_t)(s[i] - '0');
        if (digits > 15)
            return slow_parse(s, n, out);
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (mant || s[i] != '0')
                digits++;
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            exp10--;
            if (digits > 15)
                return slow_parse(s, n, out);
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0, e = 0;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        for (; i < n; i++) {
            if (e > 10000)
                return slow_parse(s, n, out);
            e = e * 10 + (s[i] - '0');
        }
        exp10 += eneg ? -e : e;
    }
    double v = (double)mant; /* exact: mant < 10^15 < 2^53 */
    if (mant == 0) {
        v = 0.0;
    } else if (exp10 >= 0 && exp10 <= 22) {
        v *= pow10_exact[exp10]; /* one correctly rounded op on exact operands */
    } else if (exp10 < 0 && exp10 >= -22) {
        v /= pow10_exact[-exp10];
    } else {
        return slow_parse(s, n, out);
    }
    *out = neg ? -v : v;
    return 0;
}
