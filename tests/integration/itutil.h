/* itutil.h - helpers for integration tests against the dev environment. */
#ifndef SIO_ITUTIL_H
#define SIO_ITUTIL_H

#include <librdkafka/rdkafka.h>

/* KAFKA_BROKERS from the environment; the test fails when it is unset.
 * Static storage owned by the environment. */
const char *it_brokers(void);

/* A topic name unique to this run: "<prefix>.<pid>.<time>".  Returned in a
 * static buffer, overwritten by the next call. */
const char *it_unique(const char *prefix);

/* A client configuration with bootstrap.servers = it_brokers(), then the
 * key, value pairs of kv (NULL-terminated, may be NULL); the test fails on
 * a bad one.  The caller owns it (rd_kafka_new takes it over). */
rd_kafka_conf_t *it_conf(const char *const *kv);

/* Creates topic with partitions (replication 1) and the topic configs in
 * kv (key, value pairs, NULL-terminated, may be NULL); the test fails when
 * the broker refuses. */
void it_create_topic(const char *topic, int partitions, const char *const *kv);

#endif
