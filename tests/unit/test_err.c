/* test_err.c - the error convention: names, classes, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sio_err.h"

static void classes_follow_codes(void **state) {
    (void)state;
    assert_int_equal(sio_code_class(SIO_E_TIMEOUT), SIO_TRANSIENT);
    assert_int_equal(sio_code_class(SIO_E_REDIS), SIO_TRANSIENT);
    assert_int_equal(sio_code_class(SIO_E_KAFKA), SIO_TRANSIENT);
    assert_int_equal(sio_code_class(SIO_E_SCRIPT), SIO_PERMANENT);
    assert_int_equal(sio_code_class(SIO_E_SANDBOX), SIO_PERMANENT);
    assert_int_equal(sio_code_class(SIO_E__COUNT), SIO_PERMANENT);
    assert_string_equal(sio_code_name(SIO_E_LIMIT), "LIMIT");
    assert_string_equal(sio_code_name((sio_code)9999), "UNKNOWN");
    assert_string_equal(sio_class_name(SIO_TRANSIENT), "transient");
}

static void set_formats_and_returns_minus_one(void **state) {
    (void)state;
    sio_err err;
    sio_err_clear(&err);
    assert_int_equal(err.code, SIO_E_OK);
    assert_int_equal(sio_err_set(&err, SIO_E_PARSE, "line %d: %s", 3, "bad"), -1);
    assert_int_equal(err.code, SIO_E_PARSE);
    assert_string_equal(err.msg, "line 3: bad");
    assert_int_equal(sio_err_set(NULL, SIO_E_PARSE, "ignored"), -1);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sio_err_set(&err, SIO_E_INVAL, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classes_follow_codes),
        cmocka_unit_test(set_formats_and_returns_minus_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
