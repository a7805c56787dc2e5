/*
 * envelope.h - the command envelope (what the service reads) and the
 * messages it writes: step results, success responses and DLQ entries.
 *
 * A command is the Kafka message value, parsed strictly (src/core/json.h:
 * trailing bytes, invalid UTF-8, NaN, 1e999, duplicate keys are errors):
 *
 *   {"correlation_id": "abc", "workflow": "noop",
 *    "reply_topic": "dev.sio.orchestrator.responses", "attrs": {...}}
 *
 * Rules (each breach is a permanent error with the message in quotes):
 *   - the value is one JSON object ("malformed JSON: ...",
 *     "command is not a JSON object");
 *   - correlation_id is a non-empty string of at most SIO_CID_MAX bytes
 *     without NUL ("missing correlation_id", "correlation_id is empty",
 *     "correlation_id must be a string", "correlation_id is longer than
 *     1024 bytes", "correlation_id has a NUL byte");
 *   - workflow is a non-empty string without NUL ("missing workflow",
 *     "workflow is empty", "workflow must be a string", "workflow has a
 *     NUL byte"); whether it names a loaded workflow is the caller's check;
 *   - reply_topic, when present and not null, is a legal Kafka topic name
 *     (sio_topic_check) other than the commands topic; an illegal one does
 *     not fail the command here: the envelope records why
 *     (reply_error) and the outcome goes to the default DLQ with that
 *     reason, since no reply can ever be written;
 *   - attrs is absent, null or an object ("attrs must be a JSON object").
 */
#ifndef SIO_ENVELOPE_H
#define SIO_ENVELOPE_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

#define SIO_CID_MAX 1024  /* bytes of a correlation id (it is the Kafka key) */
#define SIO_TOPIC_MAX 249 /* characters of a Kafka topic name */

typedef struct sio_envelope {
    json_t *command;            /* the parsed value (owned), NULL when not JSON */
    const char *correlation_id; /* borrowed from command; NULL when missing or invalid */
    const char *workflow;       /* likewise */
    const char *reply_topic;    /* likewise; NULL = the default responses topic */
    const json_t *attrs;        /* an object, or NULL for none */
    char reply_error[600];      /* why reply_topic was refused, or "" */
} sio_envelope;

/* Parses and validates bytes[0..len).  Returns 0, or -1 with err set
 * (SIO_E_PARSE / SIO_E_INVAL, permanent).  Either way env holds what could
 * be read (the command, correlation id, workflow) for the DLQ entry; free
 * it with sio_envelope_clear.  commands_topic is the topic commands come
 * from (a reply_topic may not name it). */
int sio_envelope_parse(const char *bytes, size_t len, const char *commands_topic,
                       sio_envelope *env, sio_err *err);

/* Releases what env holds and zeroes it.  Accepts a zeroed env. */
void sio_envelope_clear(sio_envelope *env);

/* Is topic[0..len) a name we may produce to: 1 to SIO_TOPIC_MAX characters
 * of [A-Za-z0-9._-], not "." or "..", not internal ("__" prefix)?  Returns
 * 0, or -1 with err saying why (SIO_E_INVAL). */
int sio_topic_check(const char *topic, size_t len, sio_err *err);

/* The text of {"correlation_id": cid, "status": "step_result", "result":
 * {"step_id", "payload", "query"}} (payload as a string: bytes that are
 * not UTF-8 get U+FFFD; query NULL: null), written directly by
 * src/core/json.h's rules, with no tree built (one per step result).
 * Everything is borrowed.  Returns a malloc'd, NUL-terminated text the
 * caller frees, its length in *out_len; NULL when out of memory. */
char *sio_step_result_text(const char *cid, const char *step_id, const char *payload,
                           size_t len, const json_t *query, size_t *out_len);

/* The text of {"correlation_id": cid, "status": "success", "result":
 * result}, likewise (result borrowed); NULL when out of memory or result
 * is NULL or nested too deep. */
char *sio_success_text(const char *cid, const json_t *result, size_t *out_len);

/* What a DLQ entry says (PLAN decision 4).  Every pointer is borrowed. */
typedef struct sio_dlq_info {
    const char *correlation_id;       /* NULL -> null */
    const char *workflow;             /* NULL -> null */
    const char *step;                 /* NULL -> null */
    const char *error;
    sio_errclass cls;
    int attempts;
    const json_t *command;            /* as received; NULL -> command_base64 of raw */
    const char *raw;
    size_t raw_len;
    const rd_kafka_headers_t *headers; /* the command's Kafka headers, or NULL */
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    int64_t source_timestamp;         /* ms, -1 when the broker gave none */
    int64_t received_ms, failed_ms;   /* wall clock */
    /* When it goes to the default DLQ instead: why, and the DLQ it was
     * meant for (NULL -> null); no "dead_letter" member when reason is NULL. */
    const char *dead_letter_topic;
    const char *dead_letter_reason;
} sio_dlq_info;

/* Builds the DLQ entry and encodes it in at most max_bytes: when it is
 * larger, fields are cut in this order until it fits - command /
 * command_base64, headers, then error, workflow, step, dead_letter.reason
 * and correlation_id shortened - and "truncated" lists what was cut.
 * minimal = 1 cuts all of them at once.  Returns the text (malloc'd, the
 * caller frees) and its length in *len, or NULL when out of memory. */
char *sio_dlq_encode(const sio_dlq_info *in, size_t max_bytes, int minimal, size_t *len);

#endif
