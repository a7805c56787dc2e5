/* test_suggest.c - "did you mean": the names closest to a word. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "suggest.h"

static const char *const NAMES[] = {"noop", "support_triage", "refund_request", "refund_status",
                                    NULL, "", "enrich_order"};
#define NNAMES (sizeof NAMES / sizeof NAMES[0])

static void distance_counts_edits_ignoring_case(void **state) {
    (void)state;
    assert_int_equal(sio_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(sio_edit_distance("NOOP", "noop"), 0);
    assert_int_equal(sio_edit_distance("", "abc"), 3);
    char long_name[70];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(sio_edit_distance(long_name, "a"), SIZE_MAX);
}

static void a_typo_suggests_the_name_closest_first(void **state) {
    (void)state;
    const char *out[3];
    size_t n = sio_suggest("refund_requst", NAMES, NNAMES, out, 3);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "refund_request"); /* 1 edit; refund_status is 6 away */
    n = sio_suggest("nop", NAMES, NNAMES, out, 3);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "noop");
    n = sio_suggest("NOOP", NAMES, NNAMES, out, 3);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "noop");
}

static void a_part_of_a_name_suggests_it(void **state) {
    (void)state;
    const char *out[3];
    size_t n = sio_suggest("refund", NAMES, NNAMES, out, 3);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "refund_status");  /* shorter difference first */
    assert_string_equal(out[1], "refund_request");
    n = sio_suggest("triage", NAMES, NNAMES, out, 3);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "support_triage");
}

static void nothing_close_nothing_suggested(void **state) {
    (void)state;
    const char *out[3] = {NULL, NULL, NULL};
    assert_int_equal(sio_suggest("payments", NAMES, NNAMES, out, 3), 0);
    assert_int_equal(sio_suggest("x", NAMES, NNAMES, out, 3), 0);
    assert_int_equal(sio_suggest("noop", NAMES, NNAMES, out, 3), 0); /* itself is no suggestion */
    assert_int_equal(sio_suggest("noop", NAMES, 0, out, 3), 0);
    assert_null(out[0]);
}

static void at_most_max_the_best_ones(void **state) {
    (void)state;
    static const char *const many[] = {"ab9", "abc1", "abc", "abd", "xbc", "abcd"};
    const char *out[2];
    size_t n = sio_suggest("abcx", many, 6, out, 2);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "abc1"); /* 1 edit, first in order */
    assert_string_equal(out[1], "abc");  /* 1 edit */
    assert_int_equal(sio_suggest("abcx", many, 6, out, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(distance_counts_edits_ignoring_case),
        cmocka_unit_test(a_typo_suggests_the_name_closest_first),
        cmocka_unit_test(a_part_of_a_name_suggests_it),
        cmocka_unit_test(nothing_close_nothing_suggested),
        cmocka_unit_test(at_most_max_the_best_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
