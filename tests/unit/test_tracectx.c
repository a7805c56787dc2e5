/* test_tracectx.c - W3C trace context (src/telemetry/tracectx.h): strict
 * traceparent and tracestate parsing, formatting, ids and sampling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "asserts.h"
#include "tracectx.h"

static const char good[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static int parses(const char *s) {
    sio_trace_ctx c;
    return sio_traceparent_parse(s, strlen(s), &c) == 0;
}

static void traceparent_valid(void **state) {
    (void)state;
    sio_trace_ctx c;
    assert_int_equal(sio_traceparent_parse(good, strlen(good), &c), 0);
    assert_int_equal(c.trace_id[0], 0x0a);
    assert_int_equal(c.trace_id[15], 0x9c);
    assert_int_equal(c.span_id[7], 0x31);
    assert_int_equal(c.flags, 1);
    char out[SIO_TRACEPARENT_LEN + 1];
    sio_traceparent_format(&c, out);
    assert_string_equal(out, good);
    /* unknown flag bits are dropped; a future version may carry more */
    assert_int_equal(sio_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03", 55, &c), 0);
    assert_int_equal(c.flags, 1);
    assert_true(parses("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-what-ever"));
    assert_true(parses("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"));
}

static void traceparent_invalid(void **state) {
    (void)state;
    assert_false(parses(""));
    assert_false(parses("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01")); /* upper case */
    assert_false(parses("00-00000000000000000000000000000000-b7ad6b7169203331-01")); /* zero trace */
    assert_false(parses("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")); /* zero span */
    assert_false(parses("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")); /* version ff */
    assert_false(parses("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-")); /* 00 is 55 long */
    assert_false(parses("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"));
    assert_false(parses("00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    assert_false(parses("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01"));
    assert_false(parses("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x")); /* no '-' after */
    assert_false(parses(" 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
}

static void tracestate_rules(void **state) {
    (void)state;
    char out[SIO_TRACESTATE_MAX + 1];
    const char *s = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE ,,";
    assert_int_equal(sio_tracestate_parse(s, strlen(s), out, sizeof out), 0);
    assert_string_equal(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    s = "tenant1@vendor=x,a_b-c*d/e=1";
    assert_int_equal(sio_tracestate_parse(s, strlen(s), out, sizeof out), 0);
    assert_string_equal(out, s);
    const char *bad[] = {"Rojo=1", "rojo", "rojo=", "rojo=a,rojo=b", "rojo=a\tb", "rojo=a=b",
                         "1abc=x", "t@Vendor=x", "t@toolongsystemid=x", "k=\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sio_tracestate_parse(bad[i], strlen(bad[i]), out, sizeof out) == 0)
            fail_msg("accepted tracestate '%s'", bad[i]);
        assert_string_equal(out, "");
    }
    /* 33 members is one too many */
    char many[33 * 6 + 1] = "";
    for (int i = 0; i < 33; i++) {
        char m[8];
        snprintf(m, sizeof m, "%sk%02d=v", i ? "," : "", i);
        strcat(many, m);
    }
    assert_int_equal(sio_tracestate_parse(many, strlen(many), out, sizeof out), -1);
    many[strlen(many) - 6] = '\0'; /* 32 */
    assert_int_equal(sio_tracestate_parse(many, strlen(many), out, sizeof out), 0);
}

static void ids_are_random_and_non_zero(void **state) {
    (void)state;
    uint8_t a[16], b[16];
    sio_trace_new_trace_id(a);
    sio_trace_new_trace_id(b);
    assert_memory_not_equal(a, b, 16);
    char hex[33];
    sio_trace_hex(a, 16, hex);
    assert_int_equal(strlen(hex), 32);
}

static void sampling(void **state) {
    (void)state;
    uint8_t low[16] = {1}, high[16];
    memset(high, 0xff, sizeof high);
    sio_trace_ctx sampled = {.flags = 1}, unsampled = {.flags = 0};
    sio_sampler on = {SIO_SAMPLER_ALWAYS_ON, 1}, off = {SIO_SAMPLER_ALWAYS_OFF, 1};
    sio_sampler half = {SIO_SAMPLER_TRACEIDRATIO, 0.5};
    sio_sampler pb_on = {SIO_SAMPLER_PARENTBASED_ALWAYS_ON, 1};
    sio_sampler pb_off = {SIO_SAMPLER_PARENTBASED_ALWAYS_OFF, 1};
    sio_sampler pb_ratio = {SIO_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5};
    assert_true(sio_sampler_sample(&on, &unsampled, high));
    assert_false(sio_sampler_sample(&off, &sampled, low));
    assert_true(sio_sampler_sample(&half, NULL, low));   /* last 8 bytes 0 < 2^63 */
    assert_false(sio_sampler_sample(&half, NULL, high)); /* 2^64-1 >= 2^63 */
    assert_true(sio_sampler_sample(&pb_on, NULL, high));
    assert_false(sio_sampler_sample(&pb_on, &unsampled, low));
    assert_true(sio_sampler_sample(&pb_off, &sampled, high));
    assert_false(sio_sampler_sample(&pb_off, NULL, low));
    assert_false(sio_sampler_sample(&pb_ratio, NULL, high));
    assert_true(sio_sampler_sample(&pb_ratio, &sampled, high));
    sio_sampler none = {SIO_SAMPLER_TRACEIDRATIO, 0.0};
    assert_false(sio_sampler_sample(&none, NULL, low));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traceparent_valid),
        cmocka_unit_test(traceparent_invalid),
        cmocka_unit_test(tracestate_rules),
        cmocka_unit_test(ids_are_random_and_non_zero),
        cmocka_unit_test(sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
