/*
 * test_envelope.c - the command envelope's rules, topic names, and the DLQ
 * entry: the command as received, headers, and trimming to a size limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json.h"

/* Parses text; returns the error message ("" when valid). */
static const char *parse(const char *text, sio_envelope *env) {
    static sio_err err;
    err.msg[0] = '\0';
    sio_envelope_parse(text, strlen(text), "cmds", env, &err);
    return err.msg;
}

static void the_rules(void **state) {
    (void)state;
    sio_envelope e;
    assert_string_equal(parse("{\"correlation_id\":\"a\",\"workflow\":\"w\"}", &e), "");
    assert_string_equal(e.correlation_id, "a");
    assert_null(e.attrs);
    sio_envelope_clear(&e);
    static const struct { const char *in, *err; } bad[] = {
        {"{\"correlation_id\":\"a\",\"workflow\":\"w\",\"attrs\":{\"q\":1e999}}", "malformed JSON"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"w\",\"attrs\":{\"q\":NaN}}", "malformed JSON"},
        {"{\"correlation_id\":-1e999,\"workflow\":\"w\"}", "malformed JSON"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"w\"}\0x", NULL},
        {"[1]", "command is not a JSON object"},
        {"{\"workflow\":\"w\"}", "missing correlation_id"},
        {"{\"correlation_id\":\"\",\"workflow\":\"w\"}", "correlation_id is empty"},
        {"{\"correlation_id\":7,\"workflow\":\"w\"}", "correlation_id must be a string"},
        {"{\"correlation_id\":\"a\"}", "missing workflow"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"\"}", "workflow is empty"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"noop\\u0000x\"}", "workflow has a NUL byte"},
        {"{\"correlation_id\":\"a\",\"workflow\":[]}", "workflow must be a string"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"w\",\"attrs\":[1]}", "attrs must be a JSON object"},
        {"{\"correlation_id\":\"a\",\"workflow\":\"w\",\"attrs\":\"x\"}", "attrs must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].err == NULL) continue;
        const char *m = parse(bad[i].in, &e);
        if (strncmp(m, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].in, m, bad[i].err);
        sio_envelope_clear(&e);
    }
    /* trailing bytes after the value */
    sio_err err;
    const char t[] = "{\"correlation_id\":\"a\",\"workflow\":\"w\"}\0garbage";
    assert_int_equal(sio_envelope_parse(t, sizeof t - 1, "cmds", &e, &err), -1);
    sio_envelope_clear(&e);
    /* a correlation id of 1025 bytes */
    char big[1200];
    snprintf(big, sizeof big, "{\"correlation_id\":\"%01025d\",\"workflow\":\"w\"}", 0);
    assert_string_equal(parse(big, &e), "correlation_id is longer than 1024 bytes (1025)");
    sio_envelope_clear(&e);
    /* null attrs and reply_topic are absent; {} attrs is an object */
    assert_string_equal(parse("{\"correlation_id\":\"a\",\"workflow\":\"w\",\"attrs\":null,"
                              "\"reply_topic\":null}", &e), "");
    assert_null(e.reply_topic);
    assert_string_equal(e.reply_error, "");
    sio_envelope_clear(&e);
}

static void reply_topics(void **state) {
    (void)state;
    static const struct { const char *topic, *err; } cases[] = {
        {"\"ok.topic_1-x\"", ""},
        {"\"bad topic !\"", "reply_topic has a character Kafka does not allow at 3"},
        {"\"..\"", "reply_topic is not a legal topic name"},
        {"\".\"", "reply_topic is not a legal topic name"},
        {"\"__consumer_offsets\"", "reply_topic is an internal topic"},
        {"\"cmds\"", "reply_topic is the commands topic itself"},
        {"\"\"", "reply_topic is empty"},
        {"7", "reply_topic must be a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"correlation_id\":\"a\",\"workflow\":\"w\",\"reply_topic\":%s}",
                 cases[i].topic);
        sio_envelope e;
        assert_string_equal(parse(text, &e), ""); /* the command itself is valid */
        if (strncmp(e.reply_error, cases[i].err, strlen(cases[i].err)) != 0 ||
            (cases[i].err[0] == '\0' && e.reply_error[0] != '\0'))
            fail_msg("%s: got \"%s\"", cases[i].topic, e.reply_error);
        assert_true(cases[i].err[0] ? e.reply_topic == NULL : e.reply_topic != NULL);
        sio_envelope_clear(&e);
    }
    char t[300];
    memset(t, 'r', 250);
    sio_err err;
    assert_int_equal(sio_topic_check(t, 250, &err), -1);
    assert_string_equal(err.msg, "is 250 characters long (Kafka allows 249)");
    assert_int_equal(sio_topic_check(t, 249, &err), 0);
}

static sio_dlq_info info(const json_t *cmd, const char *raw, const rd_kafka_headers_t *h) {
    return (sio_dlq_info){.correlation_id = "c1", .workflow = "w", .error = "boom",
                          .cls = SIO_PERMANENT, .attempts = 1, .command = cmd, .raw = raw,
                          .raw_len = raw ? strlen(raw) : 0, .headers = h, .source_topic = "cmds",
                          .source_partition = 2, .source_offset = 41,
                          .source_timestamp = 1795743229140, .received_ms = 1795743229267,
                          .failed_ms = 1795743229268};
}

static json_t *decode(const char *text, size_t len) {
    json_t *v = sio_json_parse(text, len, NULL);
    assert_non_null(v);
    return v;
}

static void dlq_entries(void **state) {
    (void)state;
    const char *ct = "{\"correlation_id\":\"c1\",\"attrs\":{\"q\":1}}";
    json_t *cmd = decode(ct, strlen(ct));
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "traceparent", -1, "00-ab-cd-01", -1);
    rd_kafka_header_add(h, "bin", -1, "\x00\x01", 2);
    sio_dlq_info in = info(cmd, NULL, h);
    size_t len;
    char *t = sio_dlq_encode(&in, 100000, 0, &len);
    json_t *e = decode(t, len);
    assert_true(json_equal(json_object_get(e, "command"), cmd));
    assert_string_equal(json_string_value(json_object_get(e, "received_at")),
                        "2026-11-27T01:33:49.267Z");
    json_t *hv = json_object_get(e, "headers");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hv, 0), "value")),
                        "00-ab-cd-01");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hv, 1), "value_base64")),
                        "AAE=");
    assert_null(json_object_get(e, "truncated"));
    assert_null(json_object_get(e, "dead_letter"));
    json_decref(e);
    free(t);
    /* over the limit: command cut first, then headers; the rest stays */
    t = sio_dlq_encode(&in, 400, 0, &len);
    assert_true(len <= 400);
    e = decode(t, len);
    assert_null(json_object_get(e, "command"));
    assert_non_null(json_object_get(e, "headers"));
    char *cut = sio_json_dump(json_object_get(e, "truncated"), NULL);
    assert_string_equal(cut, "[\"command\"]");
    free(cut);
    json_decref(e);
    free(t);
    /* raw bytes (not JSON) as base64, and the default-DLQ note */
    sio_dlq_info raw = info(NULL, "not {json", NULL);
    raw.dead_letter_topic = "bad topic !.dlq";
    raw.dead_letter_reason = "reply_topic has a character Kafka does not allow at 3";
    t = sio_dlq_encode(&raw, 100000, 0, &len);
    e = decode(t, len);
    assert_string_equal(json_string_value(json_object_get(e, "command_base64")), "bm90IHtqc29u");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "dead_letter"), "topic")),
                        "bad topic !.dlq");
    json_decref(e);
    free(t);
    /* a huge error message is shortened too, and "minimal" cuts everything */
    char *msg = malloc(5000);
    memset(msg, 'x', 4999);
    msg[4999] = '\0';
    in.error = msg;
    t = sio_dlq_encode(&in, 100000, 1, &len);
    e = decode(t, len);
    assert_true(len < 1500);
    assert_int_equal(json_string_length(json_object_get(e, "error")), 259);
    assert_int_equal(json_array_size(json_object_get(e, "truncated")), 3);
    json_decref(e);
    free(t);
    free(msg);
    rd_kafka_headers_destroy(h);
    json_decref(cmd);
}

/* The step result and the success, as the service writes them: exact
 * texts (keys in order, a payload that is not UTF-8 written with U+FFFD,
 * no query as null). */
static void step_result_and_success_texts(void **state) {
    (void)state;
    size_t n = 0;
    json_t *q = json_pack("{s:s,s:[i,f]}", "q", "x\"y", "list", 1, 0.5);
    char *t = sio_step_result_text("c-1", "fetch", "ab\xff\n", 4, q, &n);
    assert_string_equal(t, "{\"correlation_id\":\"c-1\",\"status\":\"step_result\",\"result\":"
                           "{\"step_id\":\"fetch\",\"payload\":\"ab\xef\xbf\xbd\\n\","
                           "\"query\":{\"q\":\"x\\\"y\",\"list\":[1,0.5]}}}");
    assert_int_equal(n, strlen(t));
    free(t);
    t = sio_step_result_text("c-2", "s1", "", 0, NULL, &n);
    assert_string_equal(t, "{\"correlation_id\":\"c-2\",\"status\":\"step_result\",\"result\":"
                           "{\"step_id\":\"s1\",\"payload\":\"\",\"query\":null}}");
    free(t);
    t = sio_success_text("c-3", q, &n);
    assert_string_equal(t, "{\"correlation_id\":\"c-3\",\"status\":\"success\",\"result\":"
                           "{\"q\":\"x\\\"y\",\"list\":[1,0.5]}}");
    assert_int_equal(n, strlen(t));
    free(t);
    assert_null(sio_success_text("c-4", NULL, &n));
    assert_int_equal(n, 0);
    json_decref(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_rules),
        cmocka_unit_test(reply_topics),
        cmocka_unit_test(dlq_entries),
        cmocka_unit_test(step_result_and_success_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
