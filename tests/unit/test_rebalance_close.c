/*
 * test_rebalance_close.c - the revoke callback that rd_kafka_consumer_close()
 * serves asks librdkafka's group thread nothing after it unassigns.
 *
 * The group terminates as soon as the closing member is unassigned; a
 * request to its thread that waits for an answer (rd_kafka_assignment(),
 * rd_kafka_rebalance_protocol()) and reaches its queue as it goes is never
 * answered, and the close waits for good (test_service_mock hung this way
 * about one run in thirty under load; librdkafka #4041 is the same race).
 * Whether the race is lost depends on the machine's speed, so this test
 * does not wait for it: it wraps the librdkafka calls the service makes
 * (this program's definitions win over the shared library's for the
 * service's static code; each forwards to the real one) and fails when one
 * of those requests follows the unassign inside the close.
 *
 * The protocol is eager: its close revokes inside rd_kafka_consumer_close()
 * (rd_kafka_assign(NULL)).  A cooperative member unsubscribes and waits for
 * an empty assignment before it closes (service_rebalance.c, #4527), so its
 * close has nothing to revoke and this test would prove nothing there.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dlsym(RTLD_NEXT) */
#endif
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <time.h>

#include "service_int.h"

/* Set by the wrappers on the consumer thread, read by the test's. */
static atomic_int in_close;            /* inside rd_kafka_consumer_close() */
static atomic_int unassigned_in_close; /* the close's revoke unassigned */
static atomic_int asked_after;         /* a group request came after that */
static atomic_int assigned;            /* a non-empty assignment was made */

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

rd_kafka_resp_err_t rd_kafka_consumer_close(rd_kafka_t *rk) {
    in_close = 1;
    rd_kafka_resp_err_t e = REAL(rd_kafka_consumer_close)(rk);
    in_close = 0;
    return e;
}

rd_kafka_resp_err_t rd_kafka_assign(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_resp_err_t e = REAL(rd_kafka_assign)(rk, parts);
    if (parts && parts->cnt > 0) assigned = 1;
    if (parts == NULL && in_close) unassigned_in_close = 1;
    return e;
}

rd_kafka_error_t *rd_kafka_incremental_unassign(rd_kafka_t *rk,
                                                const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_error_t *e = REAL(rd_kafka_incremental_unassign)(rk, parts);
    if (in_close) unassigned_in_close = 1;
    return e;
}

rd_kafka_resp_err_t rd_kafka_assignment(rd_kafka_t *rk, rd_kafka_topic_partition_list_t **parts) {
    if (unassigned_in_close) asked_after = 1;
    return REAL(rd_kafka_assignment)(rk, parts);
}

const char *rd_kafka_rebalance_protocol(rd_kafka_t *rk) {
    if (unassigned_in_close) asked_after = 1;
    return REAL(rd_kafka_rebalance_protocol)(rk);
}

static void run_service(void *arg) {
    sio_service *s = arg;
    sio_err err;
    assert_int_equal(sio_service_run(s, &err), 0);
}

static void close_asks_nothing_after_the_unassign(void **state) {
    (void)state;
    static char *argv[] = {"serve", "--workflows", SIO_TEST_WORKFLOWS, "-X",
                           "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", NULL};
    static char *envp[] = {"WORKER_COUNT=1", "LOG_LEVEL=warn", "TOPIC_PARTITIONS=2",
                           "DRAIN_TIMEOUT=5s", "OPS_ADDR=127.0.0.1:0",
                           "KAFKA_ASSIGNMENT_STRATEGY=range,roundrobin", NULL};
    sio_err err;
    const sio_config *cfg = sio_config_load(7, argv, envp, NULL, &err);
    if (cfg == NULL) fail_msg("config: %s", err.msg);
    sio_service_opts so = {.embedded = 1};
    sio_service *s = sio_service_create(cfg, &so, &err);
    if (s == NULL) fail_msg("service: %s", err.msg);
    uv_thread_t t;
    uv_thread_create(&t, run_service, s);
    /* The member holds partitions (bounds a broken test only). */
    for (time_t end = time(NULL) + 120; !assigned && time(NULL) < end;) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(assigned);
    sio_service_stop(s);
    uv_thread_join(&t);
    assert_true(unassigned_in_close); /* the close did revoke (not vacuous) */
    assert_false(asked_after);
    sio_service_destroy(s);
    sio_config_destroy(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_asks_nothing_after_the_unassign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
