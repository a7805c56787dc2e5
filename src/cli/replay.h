/*
 * replay.h - what `replay` reads from a DLQ entry and how it chooses
 * entries; no I/O, so it is unit-tested on its own.
 *
 * A DLQ entry (PLAN decision 4, the envelope the service writes) is a JSON
 * object with "command" (the command as received, a JSON value) or
 * "command_base64" (its raw bytes when they were not JSON), "headers" (the
 * command's Kafka headers, [{"key", "value" | "value_base64"}]; absent in
 * entries written before headers were kept), "correlation_id", "workflow",
 * "error", "error_class".  An entry whose command was cut to fit the
 * broker's limit ("truncated" lists "command" or "command_base64") cannot
 * be replayed.
 */
#ifndef SIO_REPLAY_H
#define SIO_REPLAY_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

/* The header that names the DLQ entry a replayed command came from:
 * "<dlq topic>/<partition>/<offset>".  A command replayed again carries
 * only the latest. */
#define SIO_REPLAY_HEADER "sio-replay-of"

/* One DLQ entry, read.  Strings are borrowed from doc (NULL when absent or
 * not a string); the command bytes and headers are owned. */
typedef struct sio_replay_entry {
    json_t *doc;                /* the parsed entry, or NULL when not JSON */
    const char *correlation_id;
    const char *workflow;
    const char *error;
    const char *error_class;
    char *command;              /* the bytes to send (malloc'd), NULL when none */
    size_t command_len;
    rd_kafka_headers_t *headers; /* the original headers, NULL when none */
    char why[600];              /* why it cannot be replayed, "" when it can */
} sio_replay_entry;

/* Reads value[0..len) into e (zeroed first).  Never fails outright: an
 * entry that is not JSON, not an object, has neither command nor
 * command_base64, has a truncated command or malformed headers gets a
 * reason in e->why (and what could be read, for the filters).  Release e
 * with sio_replay_entry_clear. */
void sio_replay_entry_read(const void *value, size_t len, sio_replay_entry *e);

/* Frees what e owns and zeroes it. */
void sio_replay_entry_clear(sio_replay_entry *e);

/* Which entries to replay: NULL members match everything. */
typedef struct sio_replay_filter {
    const char *error_class;    /* equal */
    const char *workflow;       /* equal */
    const char *error_text;     /* a substring of "error" */
    const char *correlation_id; /* equal */
} sio_replay_filter;

/* Does e match f?  An entry that is not JSON matches only the empty
 * filter. */
int sio_replay_match(const sio_replay_entry *e, const sio_replay_filter *f);

/* The headers to send with e's command: e's original headers without any
 * SIO_REPLAY_HEADER, plus SIO_REPLAY_HEADER = "<topic>/<partition>/<offset>".
 * Returns new headers the caller owns (rd_kafka_producev takes them over on
 * success). */
rd_kafka_headers_t *sio_replay_headers(const sio_replay_entry *e, const char *topic,
                                       int32_t partition, int64_t offset);

/* Parses a --since / --until value into epoch milliseconds: RFC 3339
 * ("2026-11-27T01:33:49Z", "2026-11-27T01:33:49.267+01:00"), a whole
 * number of epoch milliseconds, or a duration before now_ms ("2h",
 * "1h30m"; see sio_parse_duration_ms).  Returns 0, or -1 with err. */
int sio_replay_parse_time(const char *s, int64_t now_ms, int64_t *out, sio_err *err);

#endif
