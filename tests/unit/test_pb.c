/* test_pb.c - the protobuf wire writer (src/telemetry/pb.h) against the
 * encoding guide's examples, nested lengths past one byte, the caller's
 * storage outgrown, and strings made valid UTF-8.  (A real collector
 * decodes what trace.c builds with it in it_trace_export.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pb.h"

static void scalars_as_the_encoding_guide_has_them(void **state) {
    (void)state;
    sio_pb b = {0};
    sio_pb_uint(&b, 1, 150);           /* 08 96 01 */
    sio_pb_string(&b, 2, "testing", 7); /* 12 07 74 65 73 74 69 6e 67 */
    sio_pb_fixed64(&b, 7, 1);          /* 39 01 00 00 00 00 00 00 00 */
    sio_pb_fixed32(&b, 16, 0x101);     /* 85 01 01 01 00 00 */
    sio_pb_uint(&b, 3, (uint64_t)-2);  /* 18 fe ff ff ff ff ff ff ff ff 01 */
    const uint8_t want[] = {0x08, 0x96, 0x01, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g',
                            0x39, 1, 0, 0, 0, 0, 0, 0, 0, 0x85, 0x01, 0x01, 0x01, 0x00, 0x00,
                            0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    assert_false(b.oom);
    sio_pb_free(&b);
}

static void nested_lengths_grow_past_one_byte(void **state) {
    (void)state;
    uint8_t storage[16];
    sio_pb b;
    sio_pb_init(&b, storage, sizeof storage);
    size_t outer = sio_pb_begin(&b, 3);
    size_t inner = sio_pb_begin(&b, 1);
    char v[200];
    memset(v, 'a', sizeof v);
    sio_pb_string(&b, 2, v, sizeof v); /* 12 c8 01 + 200 bytes */
    sio_pb_end(&b, inner);             /* 0a cb 01: 203 bytes */
    sio_pb_end(&b, outer);             /* 1a ce 01: 206 bytes */
    assert_false(b.borrowed); /* outgrew the caller's 16 bytes */
    assert_int_equal(b.len, 3 + 3 + 3 + 200);
    const uint8_t head[] = {0x1a, 0xce, 0x01, 0x0a, 0xcb, 0x01, 0x12, 0xc8, 0x01, 'a'};
    assert_memory_equal(b.p, head, sizeof head);
    assert_int_equal(b.p[b.len - 1], 'a');
    sio_pb_free(&b);
    /* what fits stays in the caller's storage */
    sio_pb_init(&b, storage, sizeof storage);
    sio_pb_uint(&b, 1, 1);
    assert_true(b.borrowed);
    assert_ptr_equal(b.p, storage);
    sio_pb_free(&b);
}

static void strings_are_valid_utf8(void **state) {
    (void)state;
    sio_pb b = {0};
    sio_pb_string(&b, 1, "a\xff" "b\xc3\xa9", 5); /* 0xff -> U+FFFD, é kept */
    const uint8_t want[] = {0x0a, 0x07, 'a', 0xef, 0xbf, 0xbd, 'b', 0xc3, 0xa9};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    sio_pb_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_as_the_encoding_guide_has_them),
        cmocka_unit_test(nested_lengths_grow_past_one_byte),
        cmocka_unit_test(strings_are_valid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
