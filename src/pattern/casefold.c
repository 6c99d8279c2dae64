/*
 * casefold.c — case folding for the equals-ignore-case family.
 *
 * Each code point is mapped to the lower case of its upper case (so that
 * both "ß"-like and Kelvin-sign-like cases meet on one form), using the C
 * library's Unicode tables in the built-in C.UTF-8 locale. ASCII takes a
 * fast path. Invalid UTF-8 bytes are copied unchanged.
 */
#define _GNU_SOURCE
#include "pattern_internal.h"

#include <locale.h>
#include <pthread.h>
#include <wctype.h>

static locale_t utf8;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static void utf8_init(void) { utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

size_t pb_casefold(const char *s, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        int len = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || i + (size_t)len > n) {
            out[w++] = (char)c;
            i++;
            continue;
        }
        unsigned cp = c & (0x3f >> (len - 1));
        int ok = 1;
        for (int k = 1; k < len; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xc0) != 0x80)
                ok = 0;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (!ok) {
            out[w++] = (char)c;
            i++;
            continue;
        }
        pthread_once(&utf8_once, utf8_init);
        if (utf8) {
            wint_t u = towupper_l((wint_t)cp, utf8);
            cp = (unsigned)towlower_l(u, utf8);
        }
        w += pb_utf8_encode(cp, out + w);
        i += (size_t)len;
    }
    return w;
}
