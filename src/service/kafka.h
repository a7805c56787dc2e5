/*
 * kafka.h - librdkafka plumbing shared by the service and the CLI:
 * configurations with pass-through properties, a broker check that names the
 * brokers when they do not answer, and topic creation.
 */
#ifndef SIO_KAFKA_H
#define SIO_KAFKA_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "sio_err.h"

/* A new configuration with bootstrap.servers = brokers and then each
 * props[i] = props[i+1] pair applied in order (props NULL-terminated, may be
 * NULL), so pass-through properties override our defaults.  Returns NULL with
 * err naming the bad property.  The caller owns the result (rd_kafka_new
 * takes it over on success). */
rd_kafka_conf_t *sio_kafka_conf(const char *brokers, const char *const *props, sio_err *err);

/* Sets one property; err names it and the value on failure. */
int sio_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *val, sio_err *err);

/* Asks the cluster for metadata within timeout_ms.  Fails with SIO_E_KAFKA
 * and a message naming `brokers` when none answers. */
int sio_kafka_check(rd_kafka_t *rk, const char *brokers, int timeout_ms, sio_err *err);

/* Creates each of the n topics that does not exist yet, with partitions and
 * replication.  Topics that exist already are left as they are.  Returns the
 * number created in *created (may be NULL). */
int sio_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n, int partitions,
                            int replication, int timeout_ms, int *created, sio_err *err);

/* Can a produce that failed with e never succeed as it is?  Invalid or
 * unauthorized topic, message too large (locally or from the broker),
 * invalid record, unknown topic after the metadata wait: permanent.
 * Everything else is transient. */
int sio_kafka_err_permanent(rd_kafka_resp_err_t e);

/* The error code for a produce that failed with e: SIO_E_KAFKA_REJECTED
 * (permanent) or SIO_E_KAFKA (transient). */
sio_code sio_kafka_produce_code(rd_kafka_resp_err_t e);

/* The topic's max.message.bytes (DescribeConfigs) in *out, within
 * timeout_ms.  Returns 0, or -1 with err set (the broker did not say). */
int sio_kafka_topic_max_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms, size_t *out,
                              sio_err *err);

/* The value of one configuration entry of topic (DescribeConfigs, e.g.
 * "retention.ms") into out (size n), within timeout_ms.  Returns 0, or -1
 * with err set (SIO_E_KAFKA: no answer or refused, e.g. by an ACL;
 * SIO_E_NOTFOUND: the broker did not report that entry). */
int sio_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out,
                           size_t n, int timeout_ms, sio_err *err);

/* Sets obj[name] to bytes[0..len) as a string when they are UTF-8 without
 * NUL, else obj[name + "_base64"] to their base64 (name at most 100
 * bytes).  Returns 0, or -1 when out of memory. */
int sio_kafka_set_bytes(json_t *obj, const char *name, const void *bytes, size_t len);

/* Kafka headers as JSON, the form of the DLQ envelope's "headers" and of
 * `tail`: [{"key": k, "value": v}, ...] in order, where v is the value as a
 * string when it is UTF-8 without NUL bytes, null for a header without a
 * value, and otherwise "value_base64" holds the bytes instead of "value".
 * A name that is not UTF-8 is given as "key_base64".  h may be NULL ([]).
 * Returns a new reference; NULL when out of memory. */
json_t *sio_kafka_headers_json(const rd_kafka_headers_t *h);

/* The reverse of sio_kafka_headers_json: arr (borrowed) must be an array of
 * such objects.  Returns 0 with *out set to new headers the caller owns
 * (rd_kafka_producev takes them over on success; NULL for an empty array),
 * or -1 with err (SIO_E_INVAL) naming the element that is not a header. */
int sio_kafka_headers_from_json(const json_t *arr, rd_kafka_headers_t **out, sio_err *err);

/* The DLQ topic of reply_topic: "<reply_topic>.dlq", or reply_topic itself
 * when it already ends in ".dlq".  Writes into buf (size n); returns buf. */
char *sio_dlq_topic(const char *reply_topic, char *buf, size_t n);

#endif
