/*
 * test_service_mock.c - fault injection with librdkafka's mock cluster
 * (`serve --embedded`): produce errors and a broker that goes down while
 * commands run.  The real-broker behaviour is covered by the integration
 * tests; these cases need faults only the mock can inject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service_int.h"

#define PRODUCE_API 0 /* ProduceRequest */

typedef struct fixture {
    const sio_config *cfg;
    sio_service *s;
    uv_thread_t thread;
    rd_kafka_t *producer, *consumer;
} fixture;

static void run_service(void *arg) {
    fixture *f = arg;
    sio_err err;
    assert_int_equal(sio_service_run(f->s, &err), 0);
}

static rd_kafka_t *client(fixture *f, rd_kafka_type_t type) {
    char errstr[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", sio_service_brokers(f->s), errstr, sizeof errstr);
    rd_kafka_conf_set(c, "reconnect.backoff.max.ms", "500", errstr, sizeof errstr);
    if (type == RD_KAFKA_CONSUMER) rd_kafka_conf_set(c, "group.id", "test-reader", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(type, c, errstr, sizeof errstr);
    assert_non_null(rk);
    return rk;
}

static int setup(void **state) {
    /* A produce that keeps failing times out after 1 s (a transient
     * delivery error the service must retry itself). */
    static char *argv[] = {"serve", "--workflows", SIO_TEST_WORKFLOWS,
                           "-X", "reconnect.backoff.max.ms=500", "-X", "session.timeout.ms=6000",
                           "-X", "heartbeat.interval.ms=500", "-X", "message.timeout.ms=1000",
                           "-X", "retry.backoff.ms=100", NULL};
    static char *envp[] = {"WORKER_COUNT=1", "RETRY_ATTEMPTS=5", "RETRY_BACKOFF_BASE=50ms",
                           "RETRY_BACKOFF_MAX=200ms", "LOG_LEVEL=warn", "TOPIC_PARTITIONS=1",
                           "DRAIN_TIMEOUT=5s", "OPS_ADDR=127.0.0.1:0", NULL};
    fixture *f = calloc(1, sizeof *f);
    sio_err err;
    f->cfg = sio_config_load(13, argv, envp, NULL, &err);
    if (f->cfg == NULL) fail_msg("config: %s", err.msg);
    sio_service_opts so = {.embedded = 1};
    f->s = sio_service_create(f->cfg, &so, &err);
    if (f->s == NULL) fail_msg("service: %s", err.msg);
    uv_thread_create(&f->thread, run_service, f);
    f->producer = client(f, RD_KAFKA_PRODUCER);
    f->consumer = client(f, RD_KAFKA_CONSUMER);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, f->cfg->responses_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(f->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rd_kafka_destroy(f->consumer);
    rd_kafka_destroy(f->producer);
    sio_service_stop(f->s);
    uv_thread_join(&f->thread);
    sio_service_destroy(f->s);
    sio_config_destroy(f->cfg);
    free(f);
    return 0;
}

static void send_command(fixture *f, const char *cid, const char *json) {
    assert_int_equal(rd_kafka_producev(f->producer, RD_KAFKA_V_TOPIC(f->cfg->commands_topic),
                                       RD_KAFKA_V_KEY(cid, strlen(cid)),
                                       RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
}

/* Waits (up to 30 s) for the response keyed cid with the given status;
 * returns how many messages keyed cid arrived meanwhile. */
static int await_status(fixture *f, const char *cid, const char *status) {
    char want[64];
    snprintf(want, sizeof want, "\"status\":\"%s\"", status);
    int seen = 0;
    time_t end = time(NULL) + 60;
    while (time(NULL) < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->consumer, 100);
        if (m == NULL) continue;
        int hit = m->err == 0 && m->key_len == strlen(cid) && memcmp(m->key, cid, m->key_len) == 0;
        int done = hit && memmem(m->payload, m->len, want, strlen(want)) != NULL;
        seen += hit;
        rd_kafka_message_destroy(m);
        if (done) return seen;
    }
    fail_msg("no %s response for %s within 30 s", status, cid);
    return seen;
}

/* memkv GET wf:gated:<key>: 1 when set. */
static int gated_key_set(fixture *f, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "wf:gated:%s", key);
    const char *argv[] = {"GET", k};
    size_t lens[] = {3, strlen(k)};
    sio_memkv_reply r = {0};
    sio_err err;
    assert_int_equal(sio_memkv_command(f->s->memkv, 2, argv, lens, &r, &err), 0);
    int set = r.type == SIO_REDIS_STR;
    free(r.str);
    return set;
}

static void gated_set(fixture *f, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "wf:gated:%s", key);
    const char *argv[] = {"SET", k, "1"};
    size_t lens[] = {3, strlen(k), 1};
    sio_memkv_reply r = {0};
    sio_err err;
    assert_int_equal(sio_memkv_command(f->s->memkv, 3, argv, lens, &r, &err), 0);
    free(r.str);
}

/* The next n produce requests fail with a retriable broker error, which
 * librdkafka retries until message.timeout.ms (1 s here): 40 outlast it,
 * so the service sees failed deliveries and must retry itself. */
static void fail_produce_requests(fixture *f, size_t n) {
    rd_kafka_resp_err_t errs[64];
    for (size_t i = 0; i < n && i < 64; i++) errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    rd_kafka_mock_push_request_errors_array(f->s->mock, PRODUCE_API, n < 64 ? n : 64, errs);
}

/* Sends a gated command and waits until its step is known to wait. */
static void send_gated(fixture *f, const char *id, int fail) {
    char json[256], waiting[64];
    snprintf(json, sizeof json,
             "{\"correlation_id\":\"%s\",\"workflow\":\"gated\",\"attrs\":{\"id\":\"%s\","
             "\"fail\":%s}}",
             id, id, fail ? "true" : "false");
    send_command(f, id, json);
    snprintf(waiting, sizeof waiting, "waiting:%s", id);
    time_t end = time(NULL) + 60;
    while (!gated_key_set(f, waiting)) {
        if (time(NULL) > end) fail_msg("%s never started waiting", id);
        usleep(10 * 1000);
    }
}

/* Produce requests fail (a retriable broker error, 40 times: longer than
 * one message's 1 s timeout) just as the command publishes its step result
 * and final message: both are retried until delivered, the workflow ran
 * once. */
static void produce_errors_are_retried(void **state) {
    fixture *f = *state;
    send_gated(f, "pe-1", 0);
    fail_produce_requests(f, 40);
    gated_set(f, "gate:pe-1");
    await_status(f, "pe-1", "step_result");
    await_status(f, "pe-1", "success");
    /* Only the publication was retried: the workflow ran once. */
    const char *argv[] = {"GET", "wf:gated:runs:pe-1"};
    size_t lens[] = {3, strlen(argv[1])};
    sio_memkv_reply r;
    sio_err err;
    assert_int_equal(sio_memkv_command(f->s->memkv, 2, argv, lens, &r, &err), 0);
    assert_int_equal(r.type, SIO_REDIS_STR);
    assert_int_equal(atoi(r.str), 1);
    free(r.str);
}

/* The DLQ write of a failed command meets the same transient errors: it
 * is retried with backoff until the entry is in the DLQ (never dropped),
 * and then the command's offset is committed. */
static void a_transiently_failing_dlq_write_is_retried(void **state) {
    fixture *f = *state;
    char dlq[256];
    snprintf(dlq, sizeof dlq, "%s.dlq", f->cfg->responses_topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, dlq, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(f->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    send_gated(f, "dl-1", 1);
    fail_produce_requests(f, 40);
    gated_set(f, "gate:dl-1");
    assert_int_equal(await_status(f, "dl-1", "error"), 1);
    /* The offset completes: the service's committed position passes it. */
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(c, f->cfg->commands_topic, 0);
    time_t end = time(NULL) + 60;
    int64_t committed = -1;
    while (committed < 1 && time(NULL) < end) {
        rd_kafka_committed(f->s->consumer, c, 5000);
        committed = c->elems[0].offset;
        if (committed < 1) usleep(100 * 1000);
    }
    rd_kafka_topic_partition_list_destroy(c);
    assert_int_equal(committed, 1);
}

/* The broker goes down while a command runs, and comes back: the command
 * completes, its final message delivered once the broker is up. */
static void broker_down_then_up(void **state) {
    fixture *f = *state;
    send_command(f, "bd-1", "{\"correlation_id\":\"bd-1\",\"workflow\":\"counted\","
                            "\"attrs\":{\"id\":\"bd-1\",\"sleep\":300}}");
    usleep(100 * 1000);
    rd_kafka_mock_broker_set_down(f->s->mock, 1);
    sleep(2);
    rd_kafka_mock_broker_set_up(f->s->mock, 1);
    await_status(f, "bd-1", "success");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(produce_errors_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(a_transiently_failing_dlq_write_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(broker_down_then_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
