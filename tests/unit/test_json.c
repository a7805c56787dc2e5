/* test_json.c - the host's JSON rules (src/core/json.h): strict reading,
 * exact integers, round-tripping reals, compact valid UTF-8 output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
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
                             "\"x\":0.1,\"y\":1e300,"
                             "\"s\":\"a/b\\u0000c\"}");
    json_t *back = sio_json_parse(out, len, &err);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    free(out);
    json_decref(back);
    json_decref(v);
}

/* sio_json_dump writes what jansson's own writer writes (compact) for
 * valid input, except reals, which get the shortest form that reads back
 * as the same double; it differs only there and where jansson's would
 * write invalid UTF-8. */
static void writes_as_jansson_does(void **state) {
    (void)state;
    const char *in = "[0.1,-0.0,2.0,1e20,1e-7,5e-324,1.7976931348623157e308,-1.5e-300,"
                     "123456789.125,9223372036854775807,-9223372036854775808,0,"
                     "\"\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\\u007f\u00e9\\ud83d\\ude00\","
                     "{\"k\":{\"\":[]},\"a\":true,\"b\":false,\"c\":null},[],{}]";
    sio_err err;
    json_t *v = sio_json_parse(in, strlen(in), &err);
    if (v == NULL) fail_msg("%s", err.msg);
    char *ours = sio_json_dump(v, NULL);
    assert_contains(ours, "[0.1,-0.0,2.0,1e20,1e-7,4.94065645841247e-324,"
                          "1.7976931348623157e308,-1.5e-300,123456789.125,");
    json_t *back = sio_json_parse(ours, strlen(ours), &err);
    assert_non_null(back);
    assert_true(json_equal(v, back)); /* every real reads back exactly */
    json_decref(back);
    free(ours);
    for (size_t i = 0; i < 8; i++) json_array_remove(v, 0); /* the reals */
    ours = sio_json_dump(v, NULL);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(ours, theirs);
    assert_contains(ours, "\"\\u0000\\u001F\\b\\f\\n\\r\\t\\\"\\\\/");
    free(ours);
    free(theirs);
    json_decref(v);
    /* bytes that are not UTF-8 (a string built without checks) */
    v = json_stringn_nocheck("a\xff\xc3(\xed\xa0\x80z", 8);
    ours = sio_json_dump(v, NULL);
    assert_string_equal(ours, "\"a\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz\"");
    free(ours);
    json_decref(v);
    /* deeper than the limit (or a cycle): refused */
    json_t *a = json_array(), *top = a;
    for (int i = 0; i < SIO_JSON_MAX_DEPTH + 1; i++) {
        json_t *b = json_array();
        json_array_append_new(a, b);
        a = b;
    }
    assert_null(sio_json_dump(top, NULL));
    json_decref(top);
}

/* A meter that allows up to `limit` bytes and counts what is held. */
typedef struct budget {
    size_t limit, held, charged;
    int refusals;
} budget;

static int budget_charge(void *ud, size_t n) {
    budget *b = ud;
    if (n > b->limit - b->held) {
        b->refusals++;
        return -1;
    }
    b->held += n;
    b->charged += n;
    return 0;
}

static void budget_credit(void *ud, size_t n) {
    budget *b = ud;
    assert_true(n <= b->held);
    b->held -= n;
}

/* Every block jansson allocates on this thread while a meter is set is
 * charged, every block freed credited; a refusal fails the call cleanly. */
static void allocations_are_metered(void **state) {
    (void)state;
    budget b = {.limit = SIZE_MAX};
    sio_json_meter m = {.charge = budget_charge, .credit = budget_credit, .ud = &b};
    const char *in = "{\"a\":[1,2,3,\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"],\"b\":{\"c\":null}}";
    assert_null(sio_json_meter_set(&m));
    sio_err err;
    json_t *v = sio_json_parse(in, strlen(in), &err);
    assert_non_null(v);
    assert_true(b.held > 200); /* the tree */
    char *out = sio_json_dump(v, NULL);
    assert_non_null(out);
    size_t text = malloc_usable_size(out);
    free(out); /* plain free: the text is the caller's, as json.h says */
    json_decref(v);
    assert_int_equal(b.held, text); /* all but the text came back */
    /* a budget too small for the tree: the parse fails, nothing leaks */
    budget small = {.limit = 300};
    m.ud = &small;
    assert_null(sio_json_parse(in, strlen(in), &err));
    assert_true(small.refusals > 0);
    assert_int_equal(small.held, 0);
    assert_true(sio_json_meter_set(NULL) == &m);
    /* without a meter nothing is counted */
    v = sio_json_parse(in, strlen(in), &err);
    json_decref(v);
    assert_int_equal(small.held, 0);
}

static void utf8_checks(void **state) {
    (void)state;
    assert_int_equal(sio_utf8_valid("caf\xC3\xA9", 5), 5);
    assert_int_equal(sio_utf8_valid("ab\xFF", 3), 2);
    assert_int_equal(sio_utf8_valid("\xC0\x80", 2), 0);         /* overlong NUL */
    assert_int_equal(sio_utf8_valid("\xED\xA0\x80", 3), 0);     /* a surrogate */
    assert_int_equal(sio_utf8_valid("\xF4\x90\x80\x80", 4), 0); /* above U+10FFFF */
    assert_int_equal(sio_utf8_valid("\xE2\x82", 2), 0);         /* cut short */
    /* past the 8-byte ASCII runs */
    assert_int_equal(sio_utf8_valid("abcdefghabcdefgh", 16), 16);
    assert_int_equal(sio_utf8_valid("abcdefghij\xFFk", 12), 10);
    assert_int_equal(sio_utf8_valid("abcdefgh\xC3\xA9" "abcdefgh\xE2\x82", 20), 18);
    assert_int_equal(sio_utf8_valid("abcdefg\xC3\xA9" "bcdefgh", 16), 16); /* a character across 8 */
    assert_int_equal(sio_utf8_valid("abcdefgh\0bcdefgh", 16), 16);
    assert_int_equal(sio_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 4), 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strict_reading),
        cmocka_unit_test(integers_exact_reals_round_trip),
        cmocka_unit_test(writes_as_jansson_does),
        cmocka_unit_test(allocations_are_metered),
        cmocka_unit_test(utf8_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
