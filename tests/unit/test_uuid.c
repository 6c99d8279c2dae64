/*
 * test_uuid.c — pb_uuid_v4: the text form (8-4-4-4-12 lowercase hex,
 * version 4, variant 10xx) and no repeats across many refills of the
 * per-thread random pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/pb_uuid.h"

#include <stdlib.h>
#include <string.h>

static void check_form(const char *u)
{
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], '4');                  /* version */
    assert_non_null(strchr("89ab", u[19]));        /* variant */
}

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_form_and_no_repeats(void **state)
{
    (void)state;
    enum { N = 5000 }; /* ~156 refills of a 512-byte pool */
    char(*ids)[37] = calloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        pb_uuid_v4(ids[i]);
        check_form(ids[i]);
    }
    qsort(ids, N, sizeof *ids, cmp);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    /* the 32 bits after the version nibble vary: not a counter or a clock */
    int same = 0;
    for (int i = 1; i < N; i++)
        same += !memcmp(ids[i - 1], ids[i], 8);
    assert_true(same < 5);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_and_no_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
