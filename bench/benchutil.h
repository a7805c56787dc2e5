/* benchutil.h - small helpers shared by the Kafka benchmark programs. */
#ifndef SIO_BENCHUTIL_H
#define SIO_BENCHUTIL_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

/* Monotonic and wall clocks. */
int64_t bu_mono_ns(void);
int64_t bu_wall_ms(void);
int64_t bu_wall_ns(void);

/* Sets a property or exits with a message. */
void bu_set(rd_kafka_conf_t *conf, const char *key, const char *val);

/* A client of the given type on brokers, with extra "k=v" properties
 * (NULL-terminated, may be NULL).  Exits on failure. */
rd_kafka_t *bu_client(rd_kafka_type_t type, const char *brokers, const char *const *props,
                      rd_kafka_conf_t *conf);

/* Number of partitions of topic (waits up to 10 s for it to exist), or
 * exits. */
int bu_partitions(rd_kafka_t *rk, const char *topic);

/* Adds every partition of topic to l at offset off (RD_KAFKA_OFFSET_END
 * means the high watermark queried now). */
void bu_add_topic(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, const char *topic,
                  int64_t off);

/* Copies the string value of "name":"..." in json[0..len) into out; 0 when
 * found. */
int bu_json_str(const char *json, size_t len, const char *name, char *out, size_t n);

#endif
