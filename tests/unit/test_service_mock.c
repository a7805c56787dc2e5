/*
 * test_service_mock.c - fault injection with librdkafka's mock cluster
 * (`serve --embedded`): produce errors and a broker that goes down while
 * commands run; in exactly-once mode, transactions a broker-side fault
 * aborts and a fenced producer.  The real-broker behaviour is covered by
 * the integration tests; these cases need faults only the mock can inject.
 * (The mock cluster of librdkafka 2.0.2 writes no transaction markers, so
 * what an aborted transaction had written stays readable here: the faults
 * injected below strike before any of it reaches the log.)
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
#define ADD_PARTITIONS_TO_TXN_API 24
#define END_TXN_API 26

typedef struct fixture {
    const sio_config *cfg;
    sio_service *s;
    uv_thread_t thread;
    rd_kafka_t *producer, *consumer;
    int rc;      /* what sio_service_run returned */
    sio_err err; /* and why */
    int joined;  /* the service thread ended (and was joined) */
} fixture;

static void run_service(void *arg) {
    fixture *f = arg;
    f->rc = sio_service_run(f->s, &f->err);
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

/* Starts a service on the mock cluster; guarantee is PROCESSING_GUARANTEE. */
static int start(void **state, char *guarantee) {
    /* A produce that keeps failing times out after 1 s (a transient
     * delivery error the service must retry itself). */
    static char *argv[] = {"serve", "--workflows", SIO_TEST_WORKFLOWS,
                           "-X", "reconnect.backoff.max.ms=500", "-X", "session.timeout.ms=6000",
                           "-X", "heartbeat.interval.ms=500", "-X", "message.timeout.ms=1000",
                           "-X", "retry.backoff.ms=100", NULL};
    char *envp[] = {"WORKER_COUNT=1", "RETRY_ATTEMPTS=5", "RETRY_BACKOFF_BASE=50ms",
                    "RETRY_BACKOFF_MAX=200ms", "LOG_LEVEL=warn", "TOPIC_PARTITIONS=1",
                    "DRAIN_TIMEOUT=5s", "TXN_COMMIT_INTERVAL=10ms", guarantee, NULL};
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

static int setup(void **state) {
    return start(state, "PROCESSING_GUARANTEE=at_least_once");
}

static int setup_eos(void **state) {
    return start(state, "PROCESSING_GUARANTEE=exactly_once");
}

static int teardown(void **state) {
    fixture *f = *state;
    rd_kafka_destroy(f->consumer);
    rd_kafka_destroy(f->producer);
    sio_service_stop(f->s);
    if (!f->joined) uv_thread_join(&f->thread);
    if (f->rc != 0 && !f->joined) fail_msg("serve failed: %s", f->err.msg);
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
 * completes, its final message delivered once the broker is up.  The
 * broker goes down while the command is known to wait inside its step;
 * then the command goes on, and the broker comes back only once its
 * messages are known to wait in the producer's queue. */
static void broker_down_then_up(void **state) {
    fixture *f = *state;
    send_gated(f, "bd-1", 0);
    rd_kafka_mock_broker_set_down(f->s->mock, 1);
    gated_set(f, "gate:bd-1");
    time_t end = time(NULL) + 60; /* a bound for a broken test only */
    while (rd_kafka_outq_len(f->s->producer) == 0 && time(NULL) < end) usleep(10 * 1000);
    assert_true(rd_kafka_outq_len(f->s->producer) > 0);
    rd_kafka_mock_broker_set_up(f->s->mock, 1);
    await_status(f, "bd-1", "success");
}

/* --- exactly once ----------------------------------------------------------------*/

/* What arrived keyed cid, by status. */
typedef struct seen {
    int step_result, success, error;
} seen;

static int has_status(const rd_kafka_message_t *m, const char *status) {
    char want[64];
    snprintf(want, sizeof want, "\"status\":\"%s\"", status);
    return memmem(m->payload, m->len, want, strlen(want)) != NULL;
}

static int keyed(const rd_kafka_message_t *m, const char *key) {
    return m->err == 0 && m->key && m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0;
}

/* Reads the responses topic and the default DLQ from the beginning until
 * the markers arrive - a success keyed until and a DLQ entry keyed
 * until-dlq (see send_markers) - and at least the messages keyed cid that
 * min says, and counts what was keyed cid.  (A command consumed again
 * after an abort runs beside the markers: its messages can follow them.) */
static seen read_until(fixture *f, const char *cid, const char *until, seen min) {
    char until_dlq[64];
    snprintf(until_dlq, sizeof until_dlq, "%s-dlq", until);
    int markers = 0;
    char dlq[256];
    snprintf(dlq, sizeof dlq, "%s.dlq", f->cfg->responses_topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, f->cfg->responses_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, dlq, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(f->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    seen n = {0};
    time_t end = time(NULL) + 60;
    for (;;) {
        if (time(NULL) > end)
            fail_msg("within 60 s: %d of the 2 markers %s; of %s %d/%d step results, "
                     "%d/%d successes, %d/%d DLQ entries", markers, until, cid, n.step_result,
                     min.step_result, n.success, min.success, n.error, min.error);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->consumer, 100);
        if (m == NULL) continue;
        int mine = keyed(m, cid);
        markers += keyed(m, until) && has_status(m, "success");
        markers += keyed(m, until_dlq) && has_status(m, "error");
        if (mine && has_status(m, "step_result")) n.step_result++;
        if (mine && has_status(m, "success")) n.success++;
        if (mine && has_status(m, "error")) n.error++;
        rd_kafka_message_destroy(m);
        if (markers == 2 && n.step_result >= min.step_result && n.success >= min.success &&
            n.error >= min.error)
            return n;
    }
}

/* memkv GET wf:gated:runs:<id> as a number (0 when unset). */
static int gated_runs(fixture *f, const char *id) {
    char k[128];
    snprintf(k, sizeof k, "wf:gated:runs:%s", id);
    const char *argv[] = {"GET", k};
    size_t lens[] = {3, strlen(k)};
    sio_memkv_reply r = {0};
    sio_err err;
    assert_int_equal(sio_memkv_command(f->s->memkv, 2, argv, lens, &r, &err), 0);
    int n = r.type == SIO_REDIS_STR ? atoi(r.str) : 0;
    free(r.str);
    return n;
}

/* Fails the broker's next request of api with e; returns when the service
 * has met it (the broker's error stack is empty again). */
static void inject(fixture *f, int16_t api, rd_kafka_resp_err_t e) {
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(f->s->mock, 1, api, 1, e, 0), 0);
}

static void await_injected(fixture *f, int16_t api) {
    size_t left = 1;
    time_t end = time(NULL) + 60;
    while (left > 0 && time(NULL) < end) {
        assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(f->s->mock, 1, api, &left), 0);
        if (left) usleep(10 * 1000);
    }
    assert_int_equal(left, 0);
}

/* Two commands consumed after what came before, one a success on the
 * responses topic, one (cid-dlq, an unknown workflow) an entry in the
 * DLQ: once both are read, each topic holds everything from before. */
static void send_markers(fixture *f, const char *cid) {
    char json[128], dlq[64];
    snprintf(json, sizeof json, "{\"correlation_id\":\"%s\",\"workflow\":\"noop\"}", cid);
    send_command(f, cid, json);
    snprintf(dlq, sizeof dlq, "%s-dlq", cid);
    snprintf(json, sizeof json, "{\"correlation_id\":\"%s\",\"workflow\":\"nope\"}", dlq);
    send_command(f, dlq, json);
}

/* The broker refuses to add the responses partition to the transaction
 * that holds a finished command's messages (an abortable error): the
 * transaction is aborted, the command consumed again and answered from its
 * dedupe record - its step result and success published once, in the
 * retried transaction, and the workflow not run again. */
static void eos_aborted_transaction_is_retried_once(void **state) {
    fixture *f = *state;
    send_gated(f, "ab-1", 0); /* finished only once the fault is in place */
    inject(f, ADD_PARTITIONS_TO_TXN_API, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING);
    gated_set(f, "gate:ab-1");
    await_injected(f, ADD_PARTITIONS_TO_TXN_API);
    send_markers(f, "ab-2");
    seen n = read_until(f, "ab-1", "ab-2", (seen){.step_result = 1, .success = 1});
    assert_int_equal(n.step_result, 1);
    assert_int_equal(n.success, 1);
    assert_int_equal(n.error, 0);
    assert_int_equal(gated_runs(f, "ab-1"), 1);
}

/* The broker refuses a command's messages for good (message too large):
 * the transaction aborts, and the command, consumed again, dead-letters
 * instead of writing there again - no success, no step result, and the
 * partition goes on.  (That it is exactly one DLQ entry needs a broker
 * that hides aborted transactions: librdkafka resets the partition's
 * sequence only with the next epoch bump, so the retry may abort once
 * more, and the mock would show what it wrote.  it_service_eos counts it
 * on the real broker.) */
static void eos_refused_message_is_dead_lettered_once(void **state) {
    fixture *f = *state;
    send_gated(f, "rf-1", 0);
    inject(f, PRODUCE_API, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    gated_set(f, "gate:rf-1");
    await_injected(f, PRODUCE_API);
    send_markers(f, "rf-2");
    /* fails unless rf-1 was dead-lettered */
    seen n = read_until(f, "rf-1", "rf-2", (seen){.error = 1});
    assert_int_equal(n.success, 0);
    assert_int_equal(n.step_result, 0);
    assert_int_equal(gated_runs(f, "rf-1"), 1);
}

/* A fatal producer error (fenced by a newer instance with the same
 * transactional.id): the service stops by itself and says why (serve
 * exits 1 and the orchestrator starts it again). */
static void eos_fenced_producer_stops_the_service(void **state) {
    fixture *f = *state;
    inject(f, END_TXN_API, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    send_markers(f, "fe-1");
    uv_thread_join(&f->thread);
    f->joined = 1;
    assert_int_equal(f->rc, -1);
    if (strstr(f->err.msg, "fenced") == NULL) fail_msg("error does not say fenced: %s", f->err.msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(produce_errors_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(a_transiently_failing_dlq_write_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(broker_down_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(eos_aborted_transaction_is_retried_once, setup_eos,
                                        teardown),
        cmocka_unit_test_setup_teardown(eos_refused_message_is_dead_lettered_once, setup_eos,
                                        teardown),
        cmocka_unit_test_setup_teardown(eos_fenced_producer_stops_the_service, setup_eos,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
