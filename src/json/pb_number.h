/*
 * pb_number.h — JSON number text to double, exactly rounded.
 *
 * The pattern language compares numbers by value (300 matches 300.0), so both
 * pattern literals and event values go through this one function. Short
 * numbers take exact fast paths (an integer significand and a power of ten
 * that are both exact doubles, or, for up to 19 digits, both exact in x87
 * extended precision with a check for the rare double-rounding cases);
 * everything else goes to the C library's correctly rounded strtod in the "C"
 * locale. Out-of-range values become ±inf or ±0.
 */
#ifndef PB_NUMBER_H
#define PB_NUMBER_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the JSON number grammar match at the start of s[0..n) (0 if none). */
size_t pb_number_scan(const char *s, size_t n);

/* Converts a complete JSON number token s[0..n) to *out. Returns 0, or -1 if
 * s is not exactly one JSON number. Pure; thread-safe. */
int pb_number_parse(const char *s, size_t n, double *out);

/* Scans the JSON number at the start of s[0..n) and converts it in the same
 * pass: returns its length (0 if there is none) and sets *out, with *ok false
 * only if conversion failed. */
size_t pb_number_scan_parse(const char *s, size_t n, double *out, bool *ok);

/* The same as pb_number_parse for a token that pb_number_scan has already
 * matched in full. */
int pb_number_parse_scanned(const char *s, size_t n, double *out);

#endif
