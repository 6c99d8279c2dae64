/*
 * cidr.c — IP addresses and the `cidr` operator.
 *
 * EventBridge only treats a string as an IP address when it has the shape of
 * one: four dot-separated runs of digits, or hex digits and colons with at
 * least one colon. Such strings are then parsed for real; a pattern string of
 * that shape also matches the same address spelt differently. Blocks are
 * "address/bits"; the reasons for rejecting one, and their order, are
 * aws/event-ruler's.
 */
#include "pattern_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static bool shape_v4(const char *s, size_t n)
{
    int dots = 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            run++;
        } else if (s[i] == '.' && run > 0 && dots < 3) {
            dots++;
            run = 0;
        } else {
            return false;
        }
    }
    return dots == 3 && run > 0;
}

static bool shape_v6(const char *s, size_t n)
{
    bool colon = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ':')
            colon = true;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return colon;
}

/* Parses an address of the right shape; -1 bad shape, -2 bad address. */
static int ip_parse(const char *s, size_t n, int *family, unsigned char addr[16])
{
    char buf[64];
    bool v4 = shape_v4(s, n), v6 = !v4 && shape_v6(s, n);
    if (!v4 && !v6)
        return -1;
    if (n >= sizeof buf)
        return -2;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (v4) {
        /* decimal octets 0..255; leading zeros are read as decimal */
        unsigned oct[4] = {0};
        int k = 0;
        size_t digits = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i == n || s[i] == '.') {
                if (digits == 0)
                    return -2;
                k++;
                digits = 0;
                continue;
            }
            digits++;
            oct[k] = oct[k] * 10 + (unsigned)(s[i] - '0');
            if (oct[k] > 255)
                return -2;
        }
        for (int i = 0; i < 4; i++)
            addr[i] = (unsigned char)oct[i];
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return -2;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, mapped, 12) == 0) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = 4;
        return 0;
    }
    *family = 6;
    return 0;
}

int pb_ip_parse(const char *s, size_t n, int *family, unsigned char addr[16])
{
    return ip_parse(s, n, family, addr) == 0 ? 0 : -1;
}

int pb_cidr_parse(const char *s, size_t n, pb_cidr *out, char *reason, size_t rl)
{
    /* Java's split("/") drops trailing empty parts: "a/24/" has two parts. */
    size_t end = n;
    while (end > 0 && s[end - 1] == '/')
        end--;
    const char *slash = memchr(s, '/', end);
    if (!slash || memchr(slash + 1, '/', end - (size_t)(slash + 1 - s))) {
        snprintf(reason, rl, "Malformed CIDR, one '/' required");
        return -1;
    }
    size_t alen = (size_t)(slash - s);
    const char *m = slash + 1;
    size_t mlen = end - alen - 1;
    /* Integer.parseInt: optional sign, decimal digits, fits in an int */
    size_t i = 0;
    bool neg = false;
    if (i < mlen && (m[i] == '+' || m[i] == '-'))
        neg = m[i++] == '-';
    long bits = 0;
    if (i >= mlen)
        goto badmask;
    for (; i < mlen; i++) {
        if (m[i] < '0' || m[i] > '9')
            goto badmask;
        bits = bits * 10 + (m[i] - '0');
        if (bits > 2147483648L)
            goto badmask;
    }
    if (!neg && bits > 2147483647L)
        goto badmask;
    if (neg && bits > 0) {
        snprintf(reason, rl, "Malformed CIDR, mask bits must not be negative");
        return -1;
    }
    int rc = ip_parse(s, alen, &out->family, out->addr);
    if (rc) {
        snprintf(reason, rl, "%s IP address: %.*s", rc == -1 ? "Nonstandard" : "Invalid",
                 (int)(alen > 200 ? 200 : alen), s);
        return -1;
    }
    if (bits > (out->family == 4 ? 32 : 128)) {
        snprintf(reason, rl, out->family == 4 ? "IPv4 mask bits must be < 32" : "IPv6 mask bits must be < 128");
        return -1;
    }
    out->bits = (int)bits;
    int bytes = out->family == 4 ? 4 : 16;
    for (int b = 0; b < bytes; b++) {
        long keep = bits - b * 8;
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        out->addr[b] &= mask;
    }
    return 0;
badmask:
    snprintf(reason, rl, "Malformed CIDR, mask bits must be an integer");
    return -1;
}

bool pb_cidr_contains(const pb_cidr *c, int family, const unsigned char addr[16])
{
    if (family != c->family)
        return false;
    int bits = c->bits;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((addr[i] & mask) != c->addr[i])
            return false;
    }
    return true;
}
