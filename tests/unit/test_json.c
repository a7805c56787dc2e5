/* test_json.c - the host's JSON rules (src/core/json.h): strict reading,
 * exact integers, round-tripping reals, compact valid UTF-8 output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "json.h"

/* Parses text, which must be rejected with a message containing want. */
static void rejects(const char *text, size_t len, const char *want) {
    sio_err err;
    sio_err_clear(&err);
    json_t *v = sio_json_parse(text, len, &err);
    if (v) fail_msg("accepted: %.*s", (int)len, text);
    assert_int_equal(err.code, SIO_E_PARSE);
    assert_contains(err.msg, want);
}

static void strict_reading(void **state) {
    (void)state;
    rejects("{\"a\":1}x", 8, "end of file expected");
    rejects("{\"a\":1}\0garbage", 15, "end of file expected");
    rejects("{\"q\":1e999}", 11, "real number overflow");
    rejects("{\"q\":-1e999}", 12, "real number overflow");
    rejects("{\"q\":NaN}", 9, "invalid token");
    rejects("{\"q\":123456789012345678901234}", 30, "too big integer");
    rejects("{\"a\":1,\"a\":2}", 13, "duplicate object key");
    rejects("{\"a\":\"\xff\xfe\"}", 10, "unable to decode byte 0xff");
    rejects("", 0, "line 1");
}

static void integers_exact_reals_round_trip(void **state) {
    (void)state;
    sio_err err;
    const char *in = "{\"id\":12345678901234567,\"max\":9223372036854775807,"
                     "\"x\":0.1,\"y\":1e300,\"s\":\"a/b\\u0000c\"}";
    json_t *v = sio_json_parse(in, strlen(in), &err);
    assert_non_null(v);
    assert_true(json_integer_value(json_object_get(v, "id")) == 12345678901234567LL);
    size_t len;
    char *out = sio_json_dump(v, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    assert_string_equal(out, "{\"id\":12345678901234567,\"max\":9223372036854775807,"
                             "\"x\":0.10000000000000001,\"y\":1.0000000000000001e300,"
                             "\"s\":\"a/b\\u0000c\"}");
    json_t *back = sio_json_parse(out, len, &err);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    free(out);
    json_decref(back);
    json_decref(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strict_reading),
        cmocka_unit_test(integers_exact_reals_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
