/*
 * dlq.c - fuzz target: the DLQ entry the service writes about a Kafka
 * message (src/service/envelope.h sio_dlq_encode), whatever the message.
 *
 * The input is the message value; it is parsed as a command (envelope.c
 * fuzzes that part), also attached as two binary Kafka headers (one cut
 * in the middle, so a UTF-8 sequence may be split), and its DLQ entry is
 * built as src/service/command.c builds it, with a limit chosen by the
 * input's last byte (the broker's usual 1 MB, a small one, or the minimal
 * entry).  Properties: the entry is strict JSON; when nothing had to be
 * cut it holds the command as received (or its raw bytes in
 * command_base64) and both headers; it fits the limit whenever the limit
 * leaves room for the entry's fixed fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzzlib.h"
#include "json.h"
#include "kafka.h"

#define COMMANDS "fz.commands"

/* The smallest limit every entry must fit once its fields are cut: the
 * fixed fields plus five strings cut to 256 bytes, each byte at most 6
 * when escaped (\u001f). */
#define FIXED_ROOM 16384

/* Decodes standard base64 (no validation beyond what the test needs). */
static size_t unbase64(const char *s, unsigned char *out) {
    size_t n = 0, bits = 0;
    unsigned acc = 0;
    for (; *s && *s != '='; s++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(tab, *s);
        FZ_CHECK(p != NULL, "command_base64 has '%c'", *s);
        acc = acc << 6 | (unsigned)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void check_dlq(const sio_envelope *env, const sio_err *err, const uint8_t *data,
                      size_t size, rd_kafka_headers_t *hdrs, size_t max, int minimal) {
    char want[512];
    const char *bad = json_string_value(json_object_get(env->command, "reply_topic"));
    sio_dlq_info in = {
        .correlation_id = env->correlation_id,
        .workflow = env->workflow,
        .step = size > 3 ? "s1" : NULL,
        .error = err ? err->msg : "unknown workflow",
        .cls = SIO_PERMANENT,
        .attempts = 1,
        .command = env->command,
        .raw = (const char *)data,
        .raw_len = size,
        .headers = hdrs,
        .source_topic = COMMANDS,
        .source_offset = (int64_t)size,
        .source_timestamp = size % 2 ? -1 : 1795743229140,
        .received_ms = 1795743229140,
        .failed_ms = 1795743229141,
    };
    if (env->reply_error[0]) {
        in.dead_letter_topic = bad ? sio_dlq_topic(bad, want, sizeof want) : NULL;
        in.dead_letter_reason = env->reply_error;
    }
    size_t len;
    char *text = sio_dlq_encode(&in, max, minimal, &len);
    FZ_CHECK(text != NULL, "sio_dlq_encode: NULL");
    fz_check_json_text("DLQ entry", text, len);
    FZ_CHECK(len <= max || max < FIXED_ROOM, "DLQ entry of %zu bytes over a limit of %zu", len,
             max);
    sio_err perr;
    json_t *e = sio_json_parse(text, len, &perr);
    if (json_object_get(e, "truncated") == NULL) {
        FZ_CHECK(!minimal, "a minimal entry without \"truncated\"");
        if (env->command) {
            FZ_CHECK(json_equal(json_object_get(e, "command"), env->command),
                     "the DLQ's command differs from the one received");
        } else {
            const char *b = json_string_value(json_object_get(e, "command_base64"));
            FZ_CHECK(b != NULL, "neither command nor command_base64");
            unsigned char *raw = malloc(size + 3);
            FZ_CHECK(raw != NULL, "out of memory");
            size_t n = unbase64(b, raw);
            FZ_CHECK(n == size && memcmp(raw, data, size) == 0,
                     "command_base64 is not the bytes received");
            free(raw);
        }
        FZ_CHECK(json_array_size(json_object_get(e, "headers")) == 2, "headers lost");
    }
    json_decref(e);
    free(text);
}

void fz_target(const uint8_t *data, size_t size) {
    sio_envelope env;
    sio_err err;
    int rc = sio_envelope_parse((const char *)data, size, COMMANDS, &env, &err);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_header_add(hdrs, "traceparent", -1, data, (ssize_t)size);
    rd_kafka_header_add(hdrs, "bin", -1, data, (ssize_t)(size / 2));
    unsigned sel = size ? data[size - 1] : 0;
    size_t max = sel % 4 == 0 ? 64 + (size_t)(sel / 4) * 211 : (size_t)1 << 20;
    check_dlq(&env, rc == 0 ? NULL : &err, data, size, hdrs, max, sel % 4 == 1);
    rd_kafka_headers_destroy(hdrs);
    sio_envelope_clear(&env);
}
