/*
 * test_rebalance_mock.c - group membership against librdkafka's mock
 * cluster, for the states only the mock can hold open.
 *
 * librdkafka 2.0.2 aborts a process that destroys a cooperative-sticky
 * consumer after it joined its group and before its first assignment
 * (librdkafka #4312: the sticky assignor's state is still NULL).  Here the
 * mock holds the first SyncGroup answer back, so the member stays in that
 * window until the service is told to stop; the stop must wait for the
 * assignment instead of aborting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service_int.h"

#define SYNC_GROUP_API 14
#define SYNC_DELAY_MS 8000

static void run_service(void *arg) {
    sio_service *s = arg;
    sio_err err;
    assert_int_equal(sio_service_run(s, &err), 0);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The group protocol the member joined with ("NONE" before its JoinGroup
 * answer; thread-safe: a request to librdkafka's group thread). */
static const char *joined_protocol(sio_service *s) {
    const char *p = rd_kafka_rebalance_protocol(s->consumer);
    return p ? p : "NONE";
}

static void stop_between_join_and_first_assignment(void **state) {
    (void)state;
    static char *argv[] = {"serve", "--workflows", SIO_TEST_WORKFLOWS,
                           "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", NULL};
    static char *envp[] = {"WORKER_COUNT=1", "LOG_LEVEL=warn", "TOPIC_PARTITIONS=2",
                           "DRAIN_TIMEOUT=5s", "KAFKA_ASSIGNMENT_STRATEGY=cooperative-sticky", NULL};
    sio_err err;
    const sio_config *cfg = sio_config_load(7, argv, envp, NULL, &err);
    if (cfg == NULL) fail_msg("config: %s", err.msg);
    sio_service_opts so = {.embedded = 1};
    sio_service *s = sio_service_create(cfg, &so, &err);
    if (s == NULL) fail_msg("service: %s", err.msg);
    assert_true(s->cooperative);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         s->mock, 1, SYNC_GROUP_API, 1, RD_KAFKA_RESP_ERR_NO_ERROR, SYNC_DELAY_MS),
                     0);
    uv_thread_t t;
    uv_thread_create(&t, run_service, s);
    /* Joined: the JoinGroup answer named the protocol. */
    for (int i = 0; i < 6000 && strcmp(joined_protocol(s), "COOPERATIVE") != 0; i++) sleep_ms(10);
    assert_string_equal(joined_protocol(s), "COOPERATIVE");
    rd_kafka_topic_partition_list_t *a = NULL;
    assert_int_equal(rd_kafka_assignment(s->consumer, &a), 0);
    int assigned = a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
    sio_service_stop(s);
    uv_thread_join(&t);
    if (assigned > 0) {
        /* The SyncGroup answer came before the stop: nothing to prove. */
        sio_service_destroy(s);
        sio_config_destroy(cfg);
        skip();
    }
    /* Still alive: the close waited for the assignment, then left. */
    assert_true(s->assigned_once);
    sio_service_destroy(s);
    sio_config_destroy(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_between_join_and_first_assignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
