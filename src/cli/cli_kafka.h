/*
 * cli_kafka.h - what the Kafka subcommands (send, tail, replay, topics,
 * offsets) share: clients, partition lookups and the JSON form of a
 * message.  Internal to src/cli; every function runs on the caller's
 * thread (the CLI has one).
 */
#ifndef SIO_CLI_KAFKA_H
#define SIO_CLI_KAFKA_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "sio_err.h"

/* A delivery report callback (rd_kafka_conf_set_dr_msg_cb's). */
typedef void sio_cli_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* An idempotent producer (acks=all) for cfg's brokers and pass-through
 * properties.  dr (may be NULL) gets every delivery report, with opaque as
 * rd_kafka_opaque().  NULL with err set on a bad property. */
rd_kafka_t *sio_cli_producer(const sio_config *cfg, sio_cli_dr_cb *dr, void *opaque,
                             sio_err *err);

/* A consumer that is only ever assign()ed (a private group id, nothing
 * committed); with eof, it reports RD_KAFKA_RESP_ERR__PARTITION_EOF. */
rd_kafka_t *sio_cli_consumer(const sio_config *cfg, int eof, sio_err *err);

/* One partition of a topic with its watermarks when asked. */
typedef struct sio_cli_part {
    const char *topic; /* borrowed from the caller */
    int32_t id;
    int64_t lo, hi;    /* first offset, offset after the last */
} sio_cli_part;

/* Appends every partition of topic (borrowed, must outlive *parts) with
 * its watermarks to *parts (realloc'd; the caller frees), *n counting
 * them.  A partition without a leader for the moment is asked again until
 * timeout_ms has passed; with created (the caller has just created the
 * topic) so is a topic the cluster does not know yet.  Fails with
 * SIO_E_NOTFOUND when the topic does not exist, or SIO_E_KAFKA when the
 * brokers do not answer in time. */
int sio_cli_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int created,
                       sio_cli_part **parts, size_t *n, sio_err *err);

/* Sets parts[i].lo to the offset of the first message at or after
 * timestamp ms in each partition (hi when there is none).  0, or -1. */
int sio_cli_offsets_for_time(rd_kafka_t *rk, sio_cli_part *parts, size_t n, int64_t ms,
                             int timeout_ms, sio_err *err);

/* m as {"topic", "partition", "offset", "timestamp" (ms or null), "key"
 * (a string, null when none, or "key_base64"), "headers" ([] when none,
 * see sio_kafka_headers_json), "value"}: a value that is one JSON text
 * (strictly, src/core/json.h) is embedded as JSON, other UTF-8 text is a
 * string, other bytes are "value_base64" instead, and a tombstone is null.
 * Returns a new reference, NULL when out of memory. */
json_t *sio_cli_message_json(const rd_kafka_message_t *m);

/* Prints v as one compact JSON line on stdout and flushes. */
void sio_cli_print_json(const json_t *v);

#endif
