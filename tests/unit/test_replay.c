/* test_replay.c - what replay reads from DLQ entries and how it chooses
 * them (src/cli/replay.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "json.h"
#include "kafka.h"
#include "replay.h"

/* Reads text as a DLQ entry value. */
static void read_entry(const char *text, sio_replay_entry *e) {
    sio_replay_entry_read(text, strlen(text), e);
}

static void entries_as_written(void **state) {
    (void)state;
    sio_replay_entry e;
    read_entry("{\"correlation_id\":\"c1\",\"status\":\"error\",\"error\":\"unknown workflow 'x'\","
               "\"error_class\":\"permanent\",\"attempts\":1,\"workflow\":\"x\",\"step\":null,"
               "\"command\":{\"correlation_id\":\"c1\",\"workflow\":\"x\",\"attrs\":{\"n\":1.5}},"
               "\"headers\":[{\"key\":\"traceparent\",\"value\":\"00-1\"},"
               "{\"key\":\"bin\",\"value_base64\":\"AAE=\"}],"
               "\"source\":{\"topic\":\"t\",\"partition\":0,\"offset\":41,\"timestamp\":1}}",
               &e);
    assert_string_equal(e.why, "");
    assert_string_equal(e.correlation_id, "c1");
    assert_string_equal(e.workflow, "x");
    assert_string_equal(e.error_class, "permanent");
    assert_int_equal(e.command_len, strlen(e.command));
    assert_string_equal(e.command,
                        "{\"correlation_id\":\"c1\",\"workflow\":\"x\",\"attrs\":{\"n\":1.5}}");
    assert_int_equal(rd_kafka_header_cnt(e.headers), 2);

    /* The headers sent: the original ones and where the entry was. */
    rd_kafka_headers_t *h = sio_replay_headers(&e, "t.dlq", 3, 17);
    const void *val;
    size_t size;
    assert_int_equal(rd_kafka_header_cnt(h), 3);
    assert_int_equal(rd_kafka_header_get_last(h, "bin", &val, &size), 0);
    assert_memory_equal(val, "\x00\x01", 2);
    assert_int_equal(rd_kafka_header_get_last(h, SIO_REPLAY_HEADER, &val, &size), 0);
    assert_int_equal(size, strlen("t.dlq/3/17"));
    assert_memory_equal(val, "t.dlq/3/17", size);
    rd_kafka_headers_destroy(h);
    sio_replay_entry_clear(&e);

    /* A command that was not JSON: its bytes back; no headers (an entry
     * written before headers were kept); a replay of a replay names only
     * the latest entry. */
    read_entry("{\"correlation_id\":null,\"error\":\"malformed JSON\",\"command_base64\":\"AP9h\"}",
               &e);
    assert_string_equal(e.why, "");
    assert_null(e.correlation_id);
    assert_int_equal(e.command_len, 3);
    assert_memory_equal(e.command, "\x00\xff" "a", 3);
    assert_null(e.headers);
    h = sio_replay_headers(&e, "d", 0, 1);
    assert_int_equal(rd_kafka_header_cnt(h), 1);
    sio_replay_entry_clear(&e);
    read_entry("{\"command\":{},\"headers\":[{\"key\":\"sio-replay-of\",\"value\":\"d/0/0\"}]}", &e);
    rd_kafka_headers_t *again = sio_replay_headers(&e, "d", 0, 9);
    assert_int_equal(rd_kafka_header_cnt(again), 1);
    assert_int_equal(rd_kafka_header_get_last(again, SIO_REPLAY_HEADER, &val, &size), 0);
    assert_memory_equal(val, "d/0/9", size);
    rd_kafka_headers_destroy(again);
    rd_kafka_headers_destroy(h);
    sio_replay_entry_clear(&e);
}

static void entries_that_cannot_be_replayed(void **state) {
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"not json", "not JSON (malformed JSON"},
        {"[1]", "not a JSON object"},
        {"{\"error\":\"x\"}", "no command or command_base64"},
        {"{\"command\":{},\"command_base64\":\"\"}", "both command and command_base64"},
        {"{\"command_base64\":\"%%%\"}", "not base64"},
        {"{\"command_base64\":7}", "no command or command_base64"},
        {"{\"command\":\"\",\"truncated\":[\"command\"]}", "cut to fit"},
        {"{\"command\":{},\"headers\":[7]}", "headers[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sio_replay_entry e;
        read_entry(cases[i].text, &e);
        assert_contains(e.why, cases[i].why);
        sio_replay_entry_clear(&e);
    }
}

static void filters(void **state) {
    (void)state;
    sio_replay_entry e, junk;
    read_entry("{\"correlation_id\":\"c1\",\"workflow\":\"w\",\"error\":\"step s1: boom at 3\","
               "\"error_class\":\"transient\",\"command\":{}}", &e);
    read_entry("\xff", &junk);
    sio_replay_filter none = {0};
    assert_true(sio_replay_match(&e, &none));
    assert_true(sio_replay_match(&junk, &none));
    sio_replay_filter yes[] = {{"transient", NULL, NULL, NULL}, {NULL, "w", NULL, NULL},
                               {NULL, NULL, "boom", NULL}, {NULL, NULL, NULL, "c1"},
                               {"transient", "w", "s1: boom", "c1"}};
    sio_replay_filter no[] = {{"permanent", NULL, NULL, NULL}, {NULL, "W", NULL, NULL},
                              {NULL, NULL, "Boom", NULL}, {NULL, NULL, NULL, "c"},
                              {"transient", "w", "boom", "c2"}};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        assert_true(sio_replay_match(&e, &yes[i]));
        assert_false(sio_replay_match(&e, &no[i]));
        assert_false(sio_replay_match(&junk, &yes[i]));
    }
    sio_replay_entry_clear(&e);
    sio_replay_entry_clear(&junk);
}

static void times(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-27T01:33:49Z", 1795743229000},
        {"2026-11-27T01:33:49.267Z", 1795743229267},
        {"2026-11-27t01:33:49.2z", 1795743229200},
        {"2026-11-27 02:33:49.267123+01:00", 1795743229267},
        {"2026-11-26T20:03:49-05:30", 1795743229000},
        {"2024-02-29T00:00:00Z", 1709164800000},
        {"1795743229140", 1795743229140},
        {"2h", 1000000 - 7200000},
        {"1h30m", 1000000 - 5400000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t got = -1;
        sio_err err;
        if (sio_replay_parse_time(ok[i].in, 1000000, &got, &err) != 0)
            fail_msg("%s: %s", ok[i].in, err.msg);
        if (got != ok[i].ms) fail_msg("%s: %lld, want %lld", ok[i].in, (long long)got, (long long)ok[i].ms);
    }
    static const char *const bad[] = {"2026-02-29T00:00:00Z", "2026-11-27T01:33:49", "2026-11-27",
                                      "2026-13-01T00:00:00Z", "2026-11-27T24:00:00Z",
                                      "2026-11-27T01:33:49.Z", "2026-11-27T01:33:49+1:00",
                                      "yesterday", "", "1234567890123456789012"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got;
        sio_err err;
        if (sio_replay_parse_time(bad[i], 1000000, &got, &err) == 0)
            fail_msg("accepted %s as %lld", bad[i], (long long)got);
        assert_contains(err.msg, bad[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_as_written),
        cmocka_unit_test(entries_that_cannot_be_replayed),
        cmocka_unit_test(filters),
        cmocka_unit_test(times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
