/* test_kafka_json.c - bytes and Kafka headers as JSON: base64
 * (src/core/base64.h) and the header form shared by the DLQ envelope,
 * tail and replay (src/service/kafka.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "base64.h"
#include "json.h"
#include "kafka.h"

static void base64_both_ways(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
        const char *b64;
    } cases[] = {{"", 0, ""},          {"f", 1, "Zg=="},         {"fo", 2, "Zm8="},
                 {"foo", 3, "Zm9v"},   {"foob", 4, "Zm9vYg=="},  {"fooba", 5, "Zm9vYmE="},
                 {"foobar", 6, "Zm9vYmFy"}, {"\x00\x01\xff\xfe", 4, "AAH//g=="}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *enc = sio_base64_encode(cases[i].raw, cases[i].len);
        assert_string_equal(enc, cases[i].b64);
        free(enc);
        size_t n;
        unsigned char *dec = sio_base64_decode(cases[i].b64, strlen(cases[i].b64), &n);
        assert_non_null(dec);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(dec, cases[i].raw, n);
        free(dec);
    }
    static const char *const bad[] = {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg=", "Zm 9v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = 7;
        unsigned char *dec = sio_base64_decode(bad[i], strlen(bad[i]), &n);
        if (dec) fail_msg("accepted %s", bad[i]);
        assert_int_equal(n, 0);
    }
}

/* Headers -> JSON -> headers keeps order, bytes and null values. */
static void headers_round_trip(void **state) {
    (void)state;
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "traceparent", -1, "00-abc-01", -1);
    rd_kafka_header_add(h, "bin", -1, "\x00\x01\xff", 3);
    rd_kafka_header_add(h, "none", -1, NULL, 0);
    rd_kafka_header_add(h, "bad\xff", -1, "", 0);
    json_t *j = sio_kafka_headers_json(h);
    char *text = sio_json_dump(j, NULL);
    assert_string_equal(text, "[{\"key\":\"traceparent\",\"value\":\"00-abc-01\"},"
                              "{\"key\":\"bin\",\"value_base64\":\"AAH/\"},"
                              "{\"key\":\"none\",\"value\":null},"
                              "{\"key_base64\":\"YmFk/w==\",\"value\":\"\"}]");
    rd_kafka_headers_t *back = NULL;
    sio_err err;
    assert_int_equal(sio_kafka_headers_from_json(j, &back, &err), 0);
    assert_int_equal(rd_kafka_header_cnt(back), 4);
    const char *name;
    const void *val;
    size_t size;
    assert_int_equal(rd_kafka_header_get_all(back, 1, &name, &val, &size), 0);
    assert_string_equal(name, "bin");
    assert_int_equal(size, 3);
    assert_memory_equal(val, "\x00\x01\xff", 3);
    assert_int_equal(rd_kafka_header_get_all(back, 2, &name, &val, &size), 0);
    assert_null(val);
    assert_int_equal(rd_kafka_header_get_all(back, 3, &name, &val, &size), 0);
    assert_string_equal(name, "bad\xff");
    free(text);
    json_decref(j);
    rd_kafka_headers_destroy(back);
    rd_kafka_headers_destroy(h);

    j = sio_kafka_headers_json(NULL);
    assert_true(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    static const char *const bad[] = {"{}", "[1]", "[{\"value\":\"x\"}]",
                                      "[{\"key\":\"k\",\"value\":1}]",
                                      "[{\"key\":\"k\",\"value\":\"a\",\"value_base64\":\"YQ==\"}]",
                                      "[{\"key\":\"k\",\"value_base64\":\"!!\"}]",
                                      "[{\"key\":\"a\\u0000b\"}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = sio_json_parse(bad[i], strlen(bad[i]), NULL);
        assert_non_null(v);
        back = (rd_kafka_headers_t *)1;
        if (sio_kafka_headers_from_json(v, &back, &err) == 0) fail_msg("accepted %s", bad[i]);
        assert_null(back);
        assert_contains(err.msg, "header");
        json_decref(v);
    }
}

/* Text that is UTF-8 without NUL stays a string; anything else is base64
 * under name_base64. */
static void bytes_as_json(void **state) {
    (void)state;
    json_t *o = json_object();
    assert_int_equal(sio_kafka_set_bytes(o, "a", "h\xc3\xa9", 3), 0);
    assert_int_equal(sio_kafka_set_bytes(o, "b", "x\0y", 3), 0);
    assert_int_equal(sio_kafka_set_bytes(o, "c", "\xc3", 1), 0);
    assert_int_equal(sio_kafka_set_bytes(o, "d", NULL, 0), 0);
    char *text = sio_json_dump(o, NULL);
    assert_string_equal(text, "{\"a\":\"h\xc3\xa9\",\"b_base64\":\"eAB5\",\"c_base64\":\"ww==\",\"d\":\"\"}");
    free(text);
    json_decref(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_both_ways),
        cmocka_unit_test(headers_round_trip),
        cmocka_unit_test(bytes_as_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
