/* itutil.c - see itutil.h. */
#include "itutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

const char *it_brokers(void) {
    const char *b = getenv("KAFKA_BROKERS");
    if (b == NULL || *b == '\0') {
        fprintf(stderr, "KAFKA_BROKERS is not set: run under tests/integration/with-devenv\n");
        abort();
    }
    return b;
}

const char *it_unique(const char *prefix) {
    static char buf[256];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, sizeof buf, "%s.%ld.%ld%03ld", prefix, (long)getpid(), (long)ts.tv_sec,
             ts.tv_nsec / 1000000L);
    return buf;
}

rd_kafka_conf_t *it_conf(const char *const *kv) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", it_brokers(), errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    for (; kv && kv[0]; kv += 2) {
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            fail_msg("%s=%s: %s", kv[0], kv[1], errstr);
    }
    return conf;
}

void it_create_topic(const char *topic, int partitions, const char *const *kv) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, it_conf(NULL), errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof errstr);
    assert_non_null(nt);
    for (; kv && kv[0]; kv += 2)
        assert_int_equal(rd_kafka_NewTopic_set_config(nt, kv[0], kv[1]), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    assert_int_equal(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("create %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}
