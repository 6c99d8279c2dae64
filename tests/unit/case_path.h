/*
 * case_path.h — where a unit test's data-driven case files live: beside the
 * test's source file, under cases/, unless a path is given on the command line.
 */
#ifndef PB_TEST_CASE_PATH_H
#define PB_TEST_CASE_PATH_H

#include <stdio.h>
#include <string.h>

/* Writes "<directory of src>/cases/<rel>" to out (src is the caller's __FILE__). */
static inline const char *pb_test_case_path(const char *src, const char *rel, char *out, size_t cap)
{
    const char *slash = strrchr(src, '/');
    size_t dirlen = slash ? (size_t)(slash - src) : 0;
    snprintf(out, cap, "%.*s%scases/%s", (int)dirlen, src, slash ? "/" : "", rel);
    return out;
}

#endif
