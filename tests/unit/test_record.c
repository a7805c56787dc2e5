/* test_record.c - the dedupe record's done: and txn: forms (record.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static void done_form(void **state) {
    (void)state;
    sio_record r = {.response = "{\"a\":1}", .response_len = 7};
    size_t n;
    char *text = sio_record_encode(&r, &n);
    assert_string_equal(text, "done:{\"a\":1}");
    assert_int_equal(n, 12);
    sio_record back;
    sio_err err;
    assert_int_equal(sio_record_parse(text, n, &back, &err), 1);
    assert_int_equal(back.txn, 0);
    assert_int_equal(back.response_len, 7);
    assert_memory_equal(back.response, "{\"a\":1}", 7);
    assert_int_equal(back.nmsgs, 0);
    sio_record_clear(&back);
    free(text);
}

/* Every message survives, binary keys and values included, in order. */
static void txn_form_round_trip(void **state) {
    (void)state;
    static const char bin[] = {'a', 0, ',', ':', '\xff'};
    sio_record_msg msgs[] = {
        {.value = "{\"s\":1}", .len = 7},
        {.topic = "side.topic", .topic_len = 10, .key = bin, .key_len = sizeof bin, .value = bin,
         .len = sizeof bin},
        {.topic = "other", .topic_len = 5, .value = "", .len = 0},
        {.value = "12:x,", .len = 5},
    };
    sio_record r = {.txn = 1, .source_topic = "cmds", .source_topic_len = 4,
                    .source_partition = 5, .source_offset = 123456789012LL,
                    .response = "{\"ok\":true}", .response_len = 11, .msgs = msgs, .nmsgs = 4};
    size_t n;
    char *text = sio_record_encode(&r, &n);
    assert_non_null(text);
    assert_memory_equal(text, "txn:4:cmds,1:5,12:123456789012,11:{\"ok\":true},1:S,7:{\"s\":1},", 60);
    sio_record b;
    sio_err err;
    assert_int_equal(sio_record_parse(text, n, &b, &err), 1);
    assert_int_equal(b.txn, 1);
    assert_int_equal(b.source_topic_len, 4);
    assert_memory_equal(b.source_topic, "cmds", 4);
    assert_int_equal(b.source_partition, 5);
    assert_true(b.source_offset == 123456789012LL);
    assert_memory_equal(b.response, "{\"ok\":true}", 11);
    assert_int_equal(b.nmsgs, 4);
    assert_null(b.msgs[0].topic);
    assert_null(b.msgs[0].key);
    assert_memory_equal(b.msgs[0].value, "{\"s\":1}", 7);
    assert_int_equal(b.msgs[1].topic_len, 10);
    assert_memory_equal(b.msgs[1].topic, "side.topic", 10);
    assert_int_equal(b.msgs[1].key_len, sizeof bin);
    assert_memory_equal(b.msgs[1].key, bin, sizeof bin);
    assert_memory_equal(b.msgs[1].value, bin, sizeof bin);
    assert_memory_equal(b.msgs[2].topic, "other", 5);
    assert_null(b.msgs[2].key);
    assert_int_equal(b.msgs[2].len, 0);
    assert_int_equal(b.msgs[3].len, 5);
    assert_memory_equal(b.msgs[3].value, "12:x,", 5);
    sio_record_clear(&b);
    free(text);
}

/* A lease token is no record; a txn: record cut short or altered is an
 * error, never a half-read record. */
static void not_records_and_damage(void **state) {
    (void)state;
    sio_record r;
    sio_err err;
    assert_int_equal(sio_record_parse("lease:1:2", 9, &r, &err), 0);
    assert_int_equal(sio_record_parse("", 0, &r, &err), 0);
    assert_int_equal(sio_record_parse("done", 4, &r, &err), 0);
    static const char *const bad[] = {
        "txn:",
        "txn:4:cmds,1:5,1:7,",               /* no response */
        "txn:4:cmds,1:5,1:7,2:{},1:S,",      /* a message without its value */
        "txn:4:cmds,1:x,1:7,2:{},",          /* partition not a number */
        "txn:4:cmds,1:5,2:-1,2:{},",         /* negative offset */
        "txn:4:cmds,1:5,1:7,2:{},1:Q,1:a,",  /* unknown kind */
        "txn:5:cmds,1:5,1:7,2:{},",          /* length past the comma */
        "txn:4:cmds,1:5,1:7,2:{},1:P,0:,1:a,", /* empty topic */
        "txn:99999999999999999999999:x,",    /* length overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sio_record_parse(bad[i], strlen(bad[i]), &r, &err) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.code, SIO_E_PARSE);
        assert_null(r.msgs);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(done_form),
        cmocka_unit_test(txn_form_round_trip),
        cmocka_unit_test(not_records_and_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
