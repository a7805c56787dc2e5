/*
 * kafka.h - librdkafka plumbing shared by the service and the CLI:
 * configurations with pass-through properties, a broker check that names the
 * brokers when they do not answer, and topic creation.
 */
#ifndef SIO_KAFKA_H
#define SIO_KAFKA_H

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

/* The DLQ topic of reply_topic: "<reply_topic>.dlq", or reply_topic itself
 * when it already ends in ".dlq".  Writes into buf (size n); returns buf. */
char *sio_dlq_topic(const char *reply_topic, char *buf, size_t n);

#endif
