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

#include "metrics.h"
#include "service_int.h"

#define PRODUCE_API 0 /* ProduceRequest */
#define ADD_PARTITIONS_TO_TXN_API 24
#define END_TXN_API 26

typedef struct fixture {
    const sio_config *cfg;
    sio_service *s;
    uv_thread_t thread;
    rd_kafka_t *producer, *consumer;
    rd_kafka_t *member; /* another member of the service's group, or NULL */
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

/* Starts a service on the mock cluster; guarantee is PROCESSING_GUARANTEE,
 * more (NULL or NULL-terminated) further settings that win over these. */
static int start(void **state, char *guarantee, char *const *more) {
    /* A produce that keeps failing times out after 1 s (a transient
     * delivery error the service must retry itself). */
    static char *argv[] = {"serve", "--workflows", SIO_TEST_WORKFLOWS,
                           "-X", "reconnect.backoff.max.ms=500", "-X", "session.timeout.ms=6000",
                           "-X", "heartbeat.interval.ms=500", "-X", "message.timeout.ms=1000",
                           "-X", "retry.backoff.ms=100", NULL};
    char *envp[16] = {"WORKER_COUNT=1", "RETRY_ATTEMPTS=5", "RETRY_BACKOFF_BASE=50ms",
                      "RETRY_BACKOFF_MAX=200ms", "LOG_LEVEL=warn", "TOPIC_PARTITIONS=1",
                      "DRAIN_TIMEOUT=5s", "TXN_COMMIT_INTERVAL=10ms", "OPS_ADDR=127.0.0.1:0",
                      guarantee, NULL};
    for (size_t i = 10; more && *more && i < 15; i++) envp[i] = *more++;
    fixture *f = calloc(1, sizeof *f);
    sio_err err;
    sio_metrics_reset(); /* each case counts its own service's commands */
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
    return start(state, "PROCESSING_GUARANTEE=at_least_once", NULL);
}

static int setup_eos(void **state) {
    return start(state, "PROCESSING_GUARANTEE=exactly_once", NULL);
}

/* Exactly once, two partitions, room for two commands in flight; the
 * default rebalance protocol (cooperative-sticky) or eager. */
static int setup_eos_small(void **state) {
    static char *const more[] = {"TOPIC_PARTITIONS=2", "WORKER_INFLIGHT=2", NULL};
    return start(state, "PROCESSING_GUARANTEE=exactly_once", more);
}

static int setup_eos_small_eager(void **state) {
    static char *const more[] = {"TOPIC_PARTITIONS=2", "WORKER_INFLIGHT=2",
                                 "KAFKA_ASSIGNMENT_STRATEGY=range,roundrobin", NULL};
    return start(state, "PROCESSING_GUARANTEE=exactly_once", more);
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->member) {
        rd_kafka_consumer_close(f->member);
        rd_kafka_destroy(f->member);
    }
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

/* Sends a command to partition (RD_KAFKA_PARTITION_UA: by its key). */
static void send_command_to(fixture *f, const char *cid, const char *json, int32_t partition) {
    assert_int_equal(rd_kafka_producev(f->producer, RD_KAFKA_V_TOPIC(f->cfg->commands_topic),
                                       RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY(cid, strlen(cid)),
                                       RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
}

static void send_command(fixture *f, const char *cid, const char *json) {
    send_command_to(f, cid, json, RD_KAFKA_PARTITION_UA);
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

/* Sends a gated command to partition and waits until its step is known
 * to wait (or, when its gate is open already, to have passed it). */
static void send_gated_to(fixture *f, const char *id, int fail, int32_t partition) {
    char json[256], waiting[64];
    snprintf(json, sizeof json,
             "{\"correlation_id\":\"%s\",\"workflow\":\"gated\",\"attrs\":{\"id\":\"%s\","
             "\"fail\":%s}}",
             id, id, fail ? "true" : "false");
    send_command_to(f, id, json, partition);
    snprintf(waiting, sizeof waiting, "waiting:%s", id);
    time_t end = time(NULL) + 60;
    while (!gated_key_set(f, waiting)) {
        if (time(NULL) > end) fail_msg("%s never started waiting", id);
        usleep(10 * 1000);
    }
}

static void send_gated(fixture *f, const char *id, int fail) {
    send_gated_to(f, id, fail, RD_KAFKA_PARTITION_UA);
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
 * until-dlq (see send_markers) - and cid's outcome ("success" or "error"),
 * and counts what was keyed cid.  (Exactly once, a transaction writes its
 * commands in the order they finished: cid, consumed again, may finish
 * after the markers and be written behind them.) */
static seen read_until(fixture *f, const char *cid, const char *until, const char *outcome) {
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
            fail_msg("the markers %s (%d of 2) and a %s for %s did not arrive within 60 s", until,
                     markers, outcome, cid);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->consumer, 100);
        if (m == NULL) continue;
        int mine = keyed(m, cid);
        markers += keyed(m, until) && has_status(m, "success");
        markers += keyed(m, until_dlq) && has_status(m, "error");
        if (mine && has_status(m, "step_result")) n.step_result++;
        if (mine && has_status(m, "success")) n.success++;
        if (mine && has_status(m, "error")) n.error++;
        rd_kafka_message_destroy(m);
        if (markers == 2 && (strcmp(outcome, "success") == 0 ? n.success : n.error) > 0) return n;
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

/* The value of the sample `series` (name{labels}) in the /metrics text;
 * 0 when it is not there. */
static double metric(const char *series) {
    size_t len, n = strlen(series);
    char *t = sio_metrics_expose(&len);
    assert_non_null(t);
    double v = 0;
    for (char *p = t; (p = strstr(p, series)) != NULL; p += n)
        if ((p == t || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    free(t);
    return v;
}

/* Waits (up to 60 s) until the sample `series` is want; returns its value. */
static double await_metric(const char *series, double want) {
    time_t end = time(NULL) + 60;
    double v;
    while ((v = metric(series)) != want && time(NULL) < end) usleep(10 * 1000);
    return v;
}

/* Waits until the markers of send_markers are counted as finished (their
 * transaction committed: every command before them is counted too). */
static void await_markers_counted(void) {
    time_t end = time(NULL) + 60;
    while (time(NULL) < end &&
           (metric("sio_commands_finished_total{workflow=\"noop\",outcome=\"success\"}") < 1 ||
            metric("sio_commands_finished_total{workflow=\"unknown\",outcome=\"dlq\"}") < 1))
        usleep(10 * 1000);
    assert_true(metric("sio_commands_finished_total{workflow=\"noop\",outcome=\"success\"}") >= 1);
    assert_true(metric("sio_commands_finished_total{workflow=\"unknown\",outcome=\"dlq\"}") >= 1);
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
    seen n = read_until(f, "ab-1", "ab-2", "success");
    assert_int_equal(n.step_result, 1);
    assert_int_equal(n.success, 1);
    assert_int_equal(n.error, 0);
    assert_int_equal(gated_runs(f, "ab-1"), 1);
    /* counted once, when its retried transaction committed */
    await_markers_counted();
    assert_int_equal(metric("sio_commands_finished_total{workflow=\"gated\",outcome=\"success\"}"), 1);
    assert_int_equal(metric("sio_commands_finished_total{workflow=\"gated\",outcome=\"duplicate\"}"), 0);
    /* every command committed: none left in flight (held ones included) */
    assert_int_equal(await_metric("sio_commands_in_flight", 0), 0);
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
    /* Twice: rf-1's step result and success may go in one produce request
     * or in two (a slow machine sends the first before the second is
     * queued), and the mock would show one that got through.  Two refusals
     * strike both; when they went together, the second strikes the
     * retried transaction's DLQ entry instead, and the minimal entry in
     * the transaction after that is taken. */
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         f->s->mock, 1, PRODUCE_API, 2, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0,
                         RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0),
                     0);
    gated_set(f, "gate:rf-1");
    await_injected(f, PRODUCE_API);
    send_markers(f, "rf-2");
    seen n = read_until(f, "rf-1", "rf-2", "error");
    assert_true(n.error >= 1);
    assert_int_equal(n.success, 0);
    assert_int_equal(n.step_result, 0);
    assert_int_equal(gated_runs(f, "rf-1"), 1);
    /* counted once, as dead-lettered, when the DLQ entry committed */
    await_markers_counted();
    assert_int_equal(metric("sio_commands_finished_total{workflow=\"gated\",outcome=\"dlq\"}"), 1);
    assert_int_equal(metric("sio_commands_finished_total{workflow=\"gated\",outcome=\"success\"}"), 0);
    assert_int_equal(metric("sio_dlq_messages_total{class=\"permanent\"}"), 2); /* with the marker's */
    assert_true(metric("sio_kafka_delivery_failures_total") >= 1); /* the refusal */
    assert_int_equal(await_metric("sio_commands_in_flight", 0), 0);
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

/* memkv GET key: 1 when its value starts with prefix. */
static int memkv_starts(fixture *f, const char *key, const char *prefix) {
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    sio_memkv_reply r = {0};
    sio_err err;
    assert_int_equal(sio_memkv_command(f->s->memkv, 2, argv, lens, &r, &err), 0);
    int yes = r.type == SIO_REDIS_STR && strncmp(r.str, prefix, strlen(prefix)) == 0;
    free(r.str);
    return yes;
}

/* The partitions of the commands topic rk is assigned (a bit mask). */
static unsigned assigned_mask(fixture *f, rd_kafka_t *rk) {
    rd_kafka_topic_partition_list_t *l = NULL;
    unsigned mask = 0;
    if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    for (int i = 0; i < l->cnt; i++)
        if (strcmp(l->elems[i].topic, f->cfg->commands_topic) == 0 && l->elems[i].partition < 32)
            mask |= 1u << l->elems[i].partition;
    rd_kafka_topic_partition_list_destroy(l);
    return mask;
}

/* 1 when masks a and b hold one partition each of two. */
static int split_in_two(unsigned a, unsigned b) {
    return a != 0 && b != 0 && (a & b) == 0 && (a | b) == 3u;
}

/* A rebalance while the intake is paused (the workers full: a command
 * waits inside its step and the one behind it waits for its transaction):
 * a second member joins the group, the service lets go of both partitions
 * and gets one of them back.  Between the two callbacks the held command
 * is dropped, so the intake resumes while the service owns nothing;
 * librdkafka keeps a partition's pause across an unassign, so the
 * partition it got back stayed paused for good - nothing sent to it was
 * ever consumed (it_service_eos: "8843 of 10000 outcomes after 600 s").
 * Now a command sent to that partition after the rebalance is answered. */
static void eos_partition_kept_through_a_rebalance_while_paused_is_consumed(void **state) {
    fixture *f = *state;
    send_gated_to(f, "rp-1", 0, 0); /* waits inside its step */
    gated_set(f, "gate:rp-2");
    send_gated_to(f, "rp-2", 0, 0); /* finishes; held behind rp-1 */
    char key[128];
    snprintf(key, sizeof key, "%srp-2", f->cfg->dedupe_key_prefix);
    time_t end = time(NULL) + 60; /* bounds for a broken test only */
    while (!memkv_starts(f, key, "txn:") && time(NULL) < end) usleep(10 * 1000);
    assert_true(memkv_starts(f, key, "txn:"));
    /* Two in flight, the limit: the intake pauses (SIO_FULL_PAUSE_MS). */
    while (!atomic_load(&f->s->paused) && time(NULL) < end) usleep(10 * 1000);
    assert_true(atomic_load(&f->s->paused));

    /* A second member joins with the service's group settings: its
     * protocol (a group cannot mix eager and cooperative; the mock cluster
     * aborts on a mix) and its session timeout and heartbeat.  The mock
     * coordinator of librdkafka 2.0.2 keeps ONE session timeout per group,
     * the last JoinGroup's: a rebalance started from a stable group waits
     * that minus 1 s for the members to join, and the members waiting in
     * JoinGroup meanwhile expire after it - and a member expired there
     * never gets its JoinGroup answered.  With librdkafka's default 45 s
     * for this member against the service's 6 s: the member loses a
     * SyncGroup race (the leader's SyncGroup completes the sync; the
     * member's, arriving after it, is refused) and joins again, the
     * rebalance it starts waits 44 s, the service joins too (6 s from
     * then), both expire 6 s later, and the member never gets a partition
     * (cooperative-sticky's two rounds give that race two chances).  A
     * real broker keeps each member's own timeouts.  Each ends with one
     * partition. */
    char errstr[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    static const char *const shared[] = {"partition.assignment.strategy", "session.timeout.ms",
                                         "heartbeat.interval.ms"};
    for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++) {
        char v[128];
        size_t n = sizeof v;
        assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(f->s->consumer), shared[i], v, &n),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(c, shared[i], v, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    }
    rd_kafka_conf_set(c, "bootstrap.servers", sio_service_brokers(f->s), errstr, sizeof errstr);
    rd_kafka_conf_set(c, "group.id", f->cfg->kafka_group_id, errstr, sizeof errstr);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_t *member = f->member = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    assert_non_null(member);
    rd_kafka_poll_set_consumer(member);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, f->cfg->commands_topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(member, subs), 0);
    rd_kafka_topic_partition_list_destroy(subs);
    unsigned theirs = 0, ours = 0;
    while (!split_in_two(theirs, ours) && time(NULL) < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(member, 50);
        if (m) rd_kafka_message_destroy(m); /* not processed: only holds its partition */
        theirs = assigned_mask(f, member);
        ours = assigned_mask(f, f->s->consumer);
    }
    if (!split_in_two(theirs, ours))
        fail_msg("no rebalance: the member has %x, the service %x", theirs, ours);
    int32_t kept = ours & 1u ? 0 : 1;

    /* rp-1 goes on (stale now: its partition was consumed again or is the
     * member's), and a command to the service's partition is answered. */
    gated_set(f, "gate:rp-1");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    for (int32_t p = 0; p < 2; p++)
        rd_kafka_topic_partition_list_add(l, f->cfg->responses_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(f->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    send_command_to(f, "rp-3", "{\"correlation_id\":\"rp-3\",\"workflow\":\"noop\"}", kept);
    int n = 0;
    end = time(NULL) + 60;
    while (n == 0 && time(NULL) < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->consumer, 100);
        if (m == NULL) continue;
        n += keyed(m, "rp-3") && has_status(m, "success");
        rd_kafka_message_destroy(m);
    }
    if (n == 0) fail_msg("the command sent to partition %d after the rebalance was not answered",
                         (int)kept);
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
        {"eos_partition_kept_through_a_rebalance_while_paused_is_consumed (cooperative)",
         eos_partition_kept_through_a_rebalance_while_paused_is_consumed, setup_eos_small, teardown,
         NULL},
        {"eos_partition_kept_through_a_rebalance_while_paused_is_consumed (eager)",
         eos_partition_kept_through_a_rebalance_while_paused_is_consumed, setup_eos_small_eager,
         teardown, NULL},
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
