/*
 * it_kafka_roundtrip.c - Debian's librdkafka against the real broker.
 *
 * Proves the pieces the orchestrator relies on work with the broker the dev
 * environment runs (Kafka 4.x removed old protocol versions, KIP-896):
 * topic creation through the Admin API, the idempotent producer with
 * acks=all, a consumer-group member that stores offsets explicitly
 * (enable.auto.offset.store=false), commit on close with nothing re-delivered
 * to the next member of the group, and compressed batches (lz4 and zstd).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itutil.h"

#define N_MESSAGES 1000
#define N_PARTITIONS 3
#define MAX_WAIT_S 300 /* a bound only a broken test reaches */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Delivery reports: count successes, remember the first failure. */
struct dr_state {
    int ok;
    rd_kafka_resp_err_t first_err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    struct dr_state *st = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        st->ok++;
    else if (st->first_err == RD_KAFKA_RESP_ERR_NO_ERROR)
        st->first_err = m->err;
}

/* Produces n keyed messages "key-<i>" / "value-<i>" with the idempotent
 * producer and the given compression; asserts every delivery report. */
static void produce_n(const char *topic, int n, const char *compression) {
    static const char *base[] = {"enable.idempotence", "true", "acks", "all", "linger.ms", "5",
                                 NULL};
    rd_kafka_conf_t *conf = it_conf(base);
    char errstr[512];
    assert_int_equal(rd_kafka_conf_set(conf, "compression.codec", compression, errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    struct dr_state st = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    for (int i = 0; i < n; i++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        rd_kafka_resp_err_t err;
        do {
            err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE(val, strlen(val)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_poll(rk, 0);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (st.first_err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("delivery failed: %s", rd_kafka_err2str(st.first_err));
    assert_int_equal(st.ok, n);
    rd_kafka_destroy(rk);
}

static rd_kafka_t *consumer_new(const char *group, const char *topic) {
    const char *kv[] = {"group.id", group, "enable.auto.offset.store", "false",
                        "auto.offset.reset", "earliest", "enable.auto.commit", "true",
                        "auto.commit.interval.ms", "500", NULL};
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, it_conf(kv), errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);
    return rk;
}

/* Stores the offset after m explicitly, as the orchestrator does. */
static void store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset + 1;
    assert_int_equal(rd_kafka_offsets_store(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Polls rk until the group gave it n partitions; returns its assignment
 * (the caller destroys it). */
static rd_kafka_topic_partition_list_t *wait_assigned(rd_kafka_t *rk, int n) {
    rd_kafka_topic_partition_list_t *asg = NULL;
    double start = now_s();
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) fail_msg("a message arrived again");
            rd_kafka_message_destroy(m);
        }
        assert_int_equal(rd_kafka_assignment(rk, &asg), RD_KAFKA_RESP_ERR_NO_ERROR);
        if (asg->cnt == n) return asg;
        rd_kafka_topic_partition_list_destroy(asg);
        if (now_s() - start > MAX_WAIT_S) fail_msg("not assigned %d partitions", n);
    }
}

/* One message keyed "marker" to each of the n partitions. */
static void produce_markers(const char *topic, int n) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, it_conf(NULL), errstr, sizeof errstr);
    assert_non_null(rk);
    for (int p = 0; p < n; p++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                           RD_KAFKA_V_KEY("marker", 6), RD_KAFKA_V_VALUE("m", 1),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* Consumes until `want` messages arrived (or `max_s` passed: a bound for a
 * broken test).  seen[i] counts message i. */
static int consume(rd_kafka_t *rk, int *seen, int n, int want, double max_s, int *partitions) {
    int got = 0;
    double start = now_s();
    while (got < want && now_s() - start < max_s) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int i = -1;
            char key[32] = {0};
            memcpy(key, m->key, m->key_len < 31 ? m->key_len : 31);
            assert_int_equal(sscanf(key, "key-%d", &i), 1);
            assert_true(i >= 0 && i < n);
            char val[64];
            snprintf(val, sizeof val, "value-%d", i);
            assert_int_equal(m->len, strlen(val));
            assert_memory_equal(m->payload, val, m->len);
            seen[i]++;
            if (partitions) partitions[m->partition]++;
            got++;
            store_offset(rk, m);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fail_msg("consume error: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    return got;
}

static void roundtrip_group_offsets(void **state) {
    (void)state;
    char topic[256], group[256];
    snprintf(topic, sizeof topic, "%s", it_unique("it.roundtrip"));
    snprintf(group, sizeof group, "%s", it_unique("it.group"));
    it_create_topic(topic, N_PARTITIONS, NULL);
    produce_n(topic, N_MESSAGES, "none");

    int seen[N_MESSAGES] = {0};
    int parts[N_PARTITIONS] = {0};
    rd_kafka_t *c1 = consumer_new(group, topic);
    int got = consume(c1, seen, N_MESSAGES, N_MESSAGES, MAX_WAIT_S, parts);
    assert_int_equal(got, N_MESSAGES);
    for (int i = 0; i < N_MESSAGES; i++) assert_int_equal(seen[i], 1);
    for (int p = 0; p < N_PARTITIONS; p++) assert_true(parts[p] > 0); /* keys spread */
    /* Close commits the stored offsets (auto commit on close). */
    assert_int_equal(rd_kafka_consumer_close(c1), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c1);

    /* The committed offsets are at the end of each partition. */
    rd_kafka_t *c2 = consumer_new(group, topic);
    rd_kafka_topic_partition_list_t *asg = wait_assigned(c2, N_PARTITIONS);
    assert_int_equal(rd_kafka_committed(c2, asg, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t total = 0;
    for (int i = 0; i < asg->cnt; i++) total += asg->elems[i].offset;
    assert_int_equal(total, N_MESSAGES);
    rd_kafka_topic_partition_list_destroy(asg);
    /* Nothing is delivered again: a marker produced to each partition now
     * is the first thing the new member gets from it. */
    produce_markers(topic, N_PARTITIONS);
    int markers = 0, others = 0;
    double start = now_s();
    while (markers < N_PARTITIONS && now_s() - start < MAX_WAIT_S) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c2, 200);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->key_len == 6 && memcmp(m->key, "marker", 6) == 0) markers++;
            else others++;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(markers, N_PARTITIONS);
    assert_int_equal(others, 0);
    assert_int_equal(rd_kafka_consumer_close(c2), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c2);
}

static void compressed_batches(const char *codec) {
    char topic[256], group[256];
    snprintf(topic, sizeof topic, "%s", it_unique(codec));
    snprintf(group, sizeof group, "%s", it_unique("it.cgroup"));
    it_create_topic(topic, 1, NULL);
    produce_n(topic, 200, codec);
    int seen[200] = {0};
    rd_kafka_t *c = consumer_new(group, topic);
    assert_int_equal(consume(c, seen, 200, 200, MAX_WAIT_S, NULL), 200);
    for (int i = 0; i < 200; i++) assert_int_equal(seen[i], 1);
    assert_int_equal(rd_kafka_consumer_close(c), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c);
}

static void lz4_roundtrip(void **state) {
    (void)state;
    compressed_batches("lz4");
}

static void zstd_roundtrip(void **state) {
    (void)state;
    compressed_batches("zstd");
}

int main(void) {
    fprintf(stderr, "librdkafka %s against %s\n", rd_kafka_version_str(), it_brokers());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_group_offsets),
        cmocka_unit_test(lz4_roundtrip),
        cmocka_unit_test(zstd_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
