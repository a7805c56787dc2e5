/*
 * it_service_eos.c - exactly once (PROCESSING_GUARANTEE=exactly_once),
 * tested the way Kafka tests its own transactions: a stream of commands
 * through `serve` on the real broker, the service killed with -9 three
 * times mid-stream and started again, and a read_committed consumer of
 * every topic it writes counting what each command left.
 *
 * EOS_COMMANDS commands (default 10,000; at least 4,000) go in four
 * quarters.  Each quarter is sent after the previous kill; the service is
 * killed once the reader has seen the outcomes of half of the quarter in
 * flight (an observed event, never a timer), so every kill lands while
 * commands run, wait in held transactions or commit.  The first and third
 * restarts reuse a stable transactional.id (the dead process's open
 * transaction is aborted at once); the second takes the default one (it
 * ends at transaction.timeout.ms).  In the last quarter some commands wait
 * on a gate the test holds, so the commands behind them in their
 * partitions finish and are held, uncommitted, until the in-flight limit
 * (WORKER_COUNT x WORKER_INFLIGHT, small here) is reached and the service
 * pauses its intake (it logs "intake paused").  Only then does a second
 * member join the group: the rebalance happens with work in flight, held
 * and the intake paused, the first member gets back partitions it had
 * paused, and the gate opens only once the second member has its
 * partitions.  (Before the fix, those partitions stayed paused for good:
 * "8843 of 10000 outcomes after 600 s".)  A run that stops making
 * progress fails after STALL_S with each commands partition's committed
 * offset and end.  EOS_LOG_LEVEL (default info) is the services' log
 * level; their logs are kept when the test fails.
 *
 * Mixed in: commands for an unknown workflow (dead-lettered), and commands
 * whose reply topic takes messages of at most 100 bytes, so the broker
 * refuses them and aborts their transaction with other commands' messages
 * already written.  At the end, read_committed, each command has exactly
 * one outcome - a success after both its step results, each exactly once,
 * and its Lua-produced side message exactly once, or one DLQ entry and
 * nothing else - and the small topic shows nothing.  A read_uncommitted
 * reader sees more than that: aborted data existed and stayed hidden.
 * Then some commands are sent again (new offsets, same correlation ids):
 * each gets one more success from the dedupe record, no step result, no
 * side message, and its workflow does not run again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itutil.h"
#include "json.h"

#define MAX_WAIT_S 600 /* a bound only a broken test (or service) reaches */
/* No new outcome for this long: stuck (the longest expected pause is a
 * killed process's transaction timing out, 10 s). */
#define STALL_S 180
#define DUPLICATES 20
#define WORKERS 4
#define INFLIGHT_PER_WORKER 32 /* the in-flight limit is 128 */
#define COMMANDS_PARTITIONS 6

enum kind { K_NORMAL, K_UNKNOWN, K_SMALL };

/* What the read_committed reader saw of one command. */
typedef struct seen {
    int first, second, success, dlq, side, small;
    int success_before_steps; /* a success read before both step results */
} seen;

typedef struct eos_test {
    char uniq[160], commands[200], responses[200], dlq[220], side[200], small[200];
    char group[200], prefix[200], txn_id[220], logdir[64];
    int n;
    seen *seen;
    int outcomes; /* commands with a success or a DLQ entry */
    long committed_msgs;
    rd_kafka_t *reader, *producer, *raw; /* raw: the read_uncommitted reader */
    redisContext *redis;
    pid_t pid, second; /* the service; a second member of its group, or 0 */
    int starts;
    int passed; /* 1: the logs are not needed */
} eos_test;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int env_int(const char *name, int def) {
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : def;
}

/* Commands of the last quarter that wait on the gate. */
static int gated(const eos_test *t, int i) {
    return i >= t->n / 4 * 3 && i % 40 == 21;
}

static enum kind kind_of(int i) {
    if (i % 97 == 13) return K_UNKNOWN;
    if (i % 499 == 7) return K_SMALL;
    return K_NORMAL;
}

/* --- the service -------------------------------------------------------------*/

/* Starts serve with -X transactional.id=txn_id (NULL: the default id);
 * returns its pid. */
static pid_t start_service(eos_test *t, const char *txn_id) {
    const char *bin = getenv("SIO_BIN"), *src = getenv("SIO_SOURCE_DIR");
    assert_non_null(bin);
    assert_non_null(src);
    char log[128], wf[512], lua[512];
    snprintf(log, sizeof log, "%s/serve.%d.err", t->logdir, ++t->starts);
    snprintf(wf, sizeof wf, "%s/tests/integration/workflows", src);
    snprintf(lua, sizeof lua, "%s/tests/integration/lua", src);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2), dup2(fd, 1);
        setenv("KAFKA_COMMANDS_TOPIC", t->commands, 1);
        setenv("KAFKA_RESPONSES_TOPIC", t->responses, 1);
        setenv("KAFKA_GROUP_ID", t->group, 1);
        setenv("DEDUPE_KEY_PREFIX", t->prefix, 1);
        setenv("WORKFLOWS_DIR", wf, 1);
        setenv("LUA_DIR", lua, 1);
        setenv("PROCESSING_GUARANTEE", "exactly_once", 1);
        setenv("DEDUPE_LEASE", "2s", 1); /* a killed process's claims expire soon */
        setenv("DRAIN_TIMEOUT", "60s", 1);
        setenv("LOG_LEVEL", getenv("EOS_LOG_LEVEL") ? getenv("EOS_LOG_LEVEL") : "info", 1);
        char workers[16], inflight[16];
        snprintf(workers, sizeof workers, "%d", WORKERS);
        snprintf(inflight, sizeof inflight, "%d", INFLIGHT_PER_WORKER);
        setenv("WORKER_COUNT", workers, 1);
        setenv("WORKER_INFLIGHT", inflight, 1);
        char txn[260];
        snprintf(txn, sizeof txn, "transactional.id=%s", txn_id ? txn_id : "");
        char *argv[] = {"sio-orchestrator", "serve", "-X", "session.timeout.ms=6000", "-X",
                        "heartbeat.interval.ms=1000", txn_id ? "-X" : NULL, txn, NULL};
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Fails the test when a service died on its own. */
static void check_alive(eos_test *t) {
    int st;
    pid_t pids[] = {t->pid, t->second};
    for (int i = 0; i < 2; i++)
        if (pids[i] && waitpid(pids[i], &st, WNOHANG) == pids[i])
            fail_msg("serve (pid %d) exited by itself (status %d): see %s", (int)pids[i], st,
                     t->logdir);
}

static void kill9(eos_test *t) {
    assert_int_equal(kill(t->pid, SIGKILL), 0);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
    fprintf(stderr, "# killed -9 with %d of %d outcomes committed\n", t->outcomes, t->n);
}

static void stop_gracefully(eos_test *t, pid_t pid) {
    int st = -1;
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("serve (pid %d) exited with status %d after SIGTERM: see %s", (int)pid, st,
                 t->logdir);
}

/* --- commands -------------------------------------------------------------------*/

static void cid_of(const eos_test *t, int i, char *buf, size_t n) {
    snprintf(buf, n, "%s-%d", t->uniq, i);
}

/* Sends commands [from, to): the command for i, once more for resends. */
static void send_commands(eos_test *t, int from, int to) {
    for (int i = from; i < to; i++) {
        char cid[200], json[2048];
        cid_of(t, i, cid, sizeof cid);
        enum kind k = kind_of(i);
        char gate[220] = "";
        if (gated(t, i) && k == K_NORMAL) snprintf(gate, sizeof gate, ",\"gate\":\"%s\"", t->uniq);
        snprintf(json, sizeof json,
                 "{\"correlation_id\":\"%s\",\"workflow\":\"%s\",%s%s%s\"attrs\":{\"id\":\"%s\","
                 "\"side\":\"%s\"%s}}",
                 cid, k == K_UNKNOWN ? "nope" : "eos", k == K_SMALL ? "\"reply_topic\":\"" : "",
                 k == K_SMALL ? t->small : "", k == K_SMALL ? "\"," : "", cid, t->side, gate);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(t->producer, RD_KAFKA_V_TOPIC(t->commands),
                                      RD_KAFKA_V_KEY(cid, strlen(cid)),
                                      RD_KAFKA_V_VALUE(json, strlen(json)),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(t->producer, 100);
        assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(t->producer, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* --- the reader -------------------------------------------------------------------*/

/* The command number of a key "<uniq>-<i>", or -1. */
static int index_of(const eos_test *t, const rd_kafka_message_t *m) {
    size_t u = strlen(t->uniq);
    if (m->key == NULL || m->key_len <= u + 1 || m->key_len > u + 12 ||
        memcmp(m->key, t->uniq, u) != 0 || ((const char *)m->key)[u] != '-')
        return -1;
    char num[16];
    memcpy(num, (const char *)m->key + u + 1, m->key_len - u - 1);
    num[m->key_len - u - 1] = '\0';
    int i = atoi(num);
    return i >= 0 && i < t->n ? i : -1;
}

#define NPARTS 9 /* responses 3, DLQ 3, side 2, small 1 */

static int is_marker(const rd_kafka_message_t *m) {
    return m->key_len == 6 && memcmp(m->key, "marker", 6) == 0;
}

/* One message keyed "marker" at the end of every partition read, once the
 * service is stopped: a reader that has seen all of them has read all. */
static void produce_markers(eos_test *t) {
    const char *topics[] = {t->responses, t->dlq, t->side, t->small};
    const int parts[] = {3, 3, 2, 1};
    for (int k = 0; k < 4; k++)
        for (int p = 0; p < parts[k]; p++)
            assert_int_equal(rd_kafka_producev(t->producer, RD_KAFKA_V_TOPIC(topics[k]),
                                               RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY("marker", 6),
                                               RD_KAFKA_V_VALUE("m", 1), RD_KAFKA_V_END),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(t->producer, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void tally(eos_test *t, const rd_kafka_message_t *m) {
    int i = index_of(t, m);
    if (i < 0) fail_msg("a message with an unexpected key on %s", rd_kafka_topic_name(m->rkt));
    seen *s = &t->seen[i];
    const char *topic = rd_kafka_topic_name(m->rkt);
    t->committed_msgs++;
    if (strcmp(topic, t->side) == 0) {
        s->side++;
        return;
    }
    if (strcmp(topic, t->small) == 0) {
        s->small++;
        return;
    }
    sio_err err;
    json_t *v = sio_json_parse(m->payload, m->len, &err);
    if (v == NULL) fail_msg("invalid JSON on %s: %s", topic, err.msg);
    const char *status = json_string_value(json_object_get(v, "status"));
    const char *step = json_string_value(json_object_get(json_object_get(v, "result"), "step_id"));
    if (strcmp(topic, t->dlq) == 0 && status && strcmp(status, "error") == 0) {
        if (s->dlq++ == 0 && s->success == 0) t->outcomes++;
    } else if (status && strcmp(status, "success") == 0) {
        if (s->first == 0 || s->second == 0) s->success_before_steps++;
        if (s->success++ == 0 && s->dlq == 0) t->outcomes++;
    } else if (status && strcmp(status, "step_result") == 0 && step && strcmp(step, "first") == 0) {
        s->first++;
    } else if (status && strcmp(status, "step_result") == 0 && step &&
               strcmp(step, "second") == 0) {
        s->second++;
    } else {
        json_decref(v);
        fail_msg("unexpected message on %s: %.*s", topic, (int)m->len, (const char *)m->payload);
    }
    json_decref(v);
}

/* What a reader read: markers and other messages. */
typedef struct readstat {
    int markers;
    long msgs;
} readstat;

/* Reads for up to ms; the committed reader tallies each message. */
static void pump(eos_test *t, rd_kafka_t *rk, int ms, readstat *st) {
    double end = now_s() + ms / 1000.0;
    do {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m == NULL) continue;
        if (m->err) {
            fprintf(stderr, "# reader: %s\n", rd_kafka_message_errstr(m));
        } else if (is_marker(m)) {
            if (st) st->markers++;
        } else {
            if (st) st->msgs++;
            if (rk == t->reader) tally(t, m);
        }
        rd_kafka_message_destroy(m);
    } while (now_s() < end);
}

/* Reads until every partition's marker arrived. */
static void read_to_markers(eos_test *t, rd_kafka_t *rk, readstat *st) {
    double end = now_s() + MAX_WAIT_S;
    while (st->markers < NPARTS) {
        if (now_s() > end) fail_msg("%d of %d end markers read", st->markers, NPARTS);
        pump(t, rk, 200, st);
    }
}

/* A reader of every topic the service writes, from the beginning. */
static rd_kafka_t *reader_new(eos_test *t, const char *isolation) {
    const char *kv[] = {"group.id", t->uniq, "isolation.level", isolation,
                        "enable.auto.commit", "false", NULL};
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, it_conf(kv), errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    const char *topics[] = {t->responses, t->dlq, t->side, t->small};
    const int parts[] = {3, 3, 2, 1};
    for (int k = 0; k < 4; k++)
        for (int p = 0; p < parts[k]; p++)
            rd_kafka_topic_partition_list_add(l, topics[k], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Prints each commands partition's committed offset (the services'
 * group) and end: where a stuck run stopped. */
static void print_progress(eos_test *t) {
    const char *kv[] = {"group.id", t->group, NULL};
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, it_conf(kv), errstr, sizeof errstr);
    if (rk == NULL) return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(COMMANDS_PARTITIONS);
    for (int p = 0; p < COMMANDS_PARTITIONS; p++) rd_kafka_topic_partition_list_add(l, t->commands, p);
    if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int p = 0; p < COMMANDS_PARTITIONS; p++) {
            int64_t lo = -1, hi = -1;
            rd_kafka_query_watermark_offsets(rk, t->commands, p, &lo, &hi, 10000);
            fprintf(stderr, "# %s [%d]: committed %lld of %lld\n", t->commands, p,
                    (long long)l->elems[p].offset, (long long)hi);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void await_outcomes(eos_test *t, int want) {
    double end = now_s() + MAX_WAIT_S, last = now_s();
    int had = t->outcomes;
    while (t->outcomes < want) {
        if (t->outcomes != had) had = t->outcomes, last = now_s();
        if (now_s() > end || now_s() - last > STALL_S) {
            print_progress(t);
            fail_msg("%d of %d outcomes, none new for %.0f s (logs: %s)", t->outcomes, want,
                     now_s() - last, t->logdir);
        }
        check_alive(t);
        pump(t, t->reader, 200, NULL);
    }
}

/* --- Redis: the workflow's run counters --------------------------------------------*/

static redisContext *redis_connect(void) {
    const char *addr = getenv("DEDUPE_REDIS_ADDR");
    assert_non_null(addr);
    char host[128];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    assert_non_null(colon);
    *colon = '\0';
    redisContext *r = redisConnect(host, atoi(colon + 1));
    assert_true(r != NULL && r->err == 0);
    return r;
}

static int runs_of(eos_test *t, redisContext *r, int i) {
    char cid[200];
    cid_of(t, i, cid, sizeof cid);
    redisReply *rep = redisCommand(r, "GET wf:eos:runs:%s", cid);
    assert_non_null(rep);
    int n = rep->type == REDIS_REPLY_STRING ? atoi(rep->str) : 0;
    freeReplyObject(rep);
    return n;
}

/* kv of the eos workflow: GET wf:eos:<name>:<uniq> as a number. */
static int kv_int(eos_test *t, redisContext *r, const char *name) {
    redisReply *rep = redisCommand(r, "GET wf:eos:%s:%s", name, t->uniq);
    assert_non_null(rep);
    int n = rep->type == REDIS_REPLY_STRING ? atoi(rep->str) : 0;
    freeReplyObject(rep);
    return n;
}

static void open_gate(eos_test *t, redisContext *r) {
    redisReply *rep = redisCommand(r, "SET wf:eos:gate:%s 1", t->uniq);
    assert_non_null(rep);
    freeReplyObject(rep);
}

/* Lines of a service's log that hold needle. */
static int log_count(const eos_test *t, int start, const char *needle) {
    char path[128], line[4096];
    snprintf(path, sizeof path, "%s/serve.%d.err", t->logdir, start);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

/* Waits until a service's log has more than `had` lines holding needle. */
static void await_log(eos_test *t, int start, const char *needle, int had) {
    double end = now_s() + MAX_WAIT_S;
    while (log_count(t, start, needle) <= had) {
        if (now_s() > end)
            fail_msg("serve %d never logged %s (see %s)", start, needle, t->logdir);
        check_alive(t);
        pump(t, t->reader, 100, NULL);
    }
}

/* --- the test ---------------------------------------------------------------------*/

static void setup_topics(eos_test *t) {
    snprintf(t->uniq, sizeof t->uniq, "%s", it_unique("it-eos"));
    snprintf(t->commands, sizeof t->commands, "%s.commands", t->uniq);
    snprintf(t->responses, sizeof t->responses, "%s.responses", t->uniq);
    snprintf(t->dlq, sizeof t->dlq, "%s.responses.dlq", t->uniq);
    snprintf(t->side, sizeof t->side, "%s.side", t->uniq);
    snprintf(t->small, sizeof t->small, "%s.small", t->uniq);
    snprintf(t->group, sizeof t->group, "%s.group", t->uniq);
    snprintf(t->prefix, sizeof t->prefix, "%s:", t->uniq);
    snprintf(t->txn_id, sizeof t->txn_id, "%s.txn", t->uniq);
    it_create_topic(t->commands, COMMANDS_PARTITIONS, NULL);
    it_create_topic(t->responses, 3, NULL);
    it_create_topic(t->dlq, 3, NULL);
    it_create_topic(t->side, 2, NULL);
    const char *small[] = {"max.message.bytes", "100", NULL};
    it_create_topic(t->small, 1, small);
}

static int eos_setup(void **state) {
    int n = env_int("EOS_COMMANDS", 10000);
    if (n < 4000) {
        fprintf(stderr, "EOS_COMMANDS=%d: at least 4000 (the last quarter must fill the "
                        "in-flight limit)\n", n);
        return -1;
    }
    eos_test *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->n = n - n % 4;
    t->seen = calloc((size_t)t->n, sizeof *t->seen);
    assert_non_null(t->seen);
    snprintf(t->logdir, sizeof t->logdir, "/tmp/sio-it-eos.XXXXXX");
    assert_non_null(mkdtemp(t->logdir));
    *state = t;
    return 0;
}

/* Also after a failure: no service is left running, nothing leaks; the
 * services' logs are kept unless the test passed. */
static int eos_teardown(void **state) {
    eos_test *t = *state;
    pid_t pids[] = {t->pid, t->second};
    for (int i = 0; i < 2; i++)
        if (pids[i] > 0 && kill(pids[i], SIGKILL) == 0) waitpid(pids[i], NULL, 0);
    if (t->raw) rd_kafka_destroy(t->raw);
    if (t->reader) rd_kafka_destroy(t->reader);
    if (t->producer) rd_kafka_destroy(t->producer);
    if (t->redis) redisFree(t->redis);
    for (int k = 1; t->passed && k <= t->starts; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/serve.%d.err", t->logdir, k);
        unlink(path);
    }
    if (t->passed) rmdir(t->logdir);
    else fprintf(stderr, "# the services' logs: %s\n", t->logdir);
    free(t->seen);
    free(t);
    return 0;
}

static void exactly_once_through_three_kills(void **state) {
    eos_test *t = *state;
    setup_topics(t);
    char errstr[512];
    const char *pkv[] = {"enable.idempotence", "true", "linger.ms", "20", NULL};
    t->producer = rd_kafka_new(RD_KAFKA_PRODUCER, it_conf(pkv), errstr, sizeof errstr);
    assert_non_null(t->producer);
    t->reader = reader_new(t, "read_committed");
    double t0 = now_s();
    int q = t->n / 4;

    /* Three kills, each once half of the quarter in flight has an outcome. */
    for (int k = 0; k < 3; k++) {
        t->pid = start_service(t, k != 1 ? t->txn_id : NULL);
        send_commands(t, k * q, (k + 1) * q);
        await_outcomes(t, k * q + q / 2);
        kill9(t);
    }
    /* The last quarter: once the gated commands and those held behind them
     * fill the in-flight limit and the intake is paused, a second member
     * joins (a rebalance with work in flight and held, and partitions
     * paused); then the gate opens. */
    t->redis = redis_connect();
    redisContext *r = t->redis;
    t->pid = start_service(t, t->txn_id);
    int first = t->starts;
    send_commands(t, 3 * q, t->n);
    await_log(t, first, "\"intake paused", 0);
    char second_id[260];
    snprintf(second_id, sizeof second_id, "%s.second", t->txn_id);
    int assigned = log_count(t, first, "\"partitions assigned\"");
    t->second = start_service(t, second_id);
    await_log(t, t->starts, "\"partitions assigned\"", 0);
    await_log(t, first, "\"partitions assigned\"", assigned); /* the first member's share */
    fprintf(stderr, "# a second member joined with %d of %d outcomes committed, %d gated waiting, "
            "the first member's intake paused\n", t->outcomes, t->n, kv_int(t, r, "entered"));
    open_gate(t, r);
    await_outcomes(t, t->n);
    fprintf(stderr, "# %d outcomes after three kills and a rebalance in %.0f s\n", t->n,
            now_s() - t0);

    /* Duplicates at new offsets: answered from the dedupe record. */
    int dup[DUPLICATES], runs_before[DUPLICATES], nd = 0;
    for (int i = 0; i < t->n && nd < DUPLICATES; i += t->n / DUPLICATES) {
        while (kind_of(i) != K_NORMAL) i++;
        dup[nd] = i;
        runs_before[nd++] = runs_of(t, r, i);
        send_commands(t, i, i + 1);
    }
    double end = now_s() + MAX_WAIT_S;
    for (int d = 0; d < nd; d++) {
        while (t->seen[dup[d]].success < 2) {
            if (now_s() > end) fail_msg("no second success for duplicate %d", dup[d]);
            check_alive(t);
            pump(t, t->reader, 200, NULL);
        }
    }
    pid_t second = t->second;
    t->second = 0;
    stop_gracefully(t, second);
    pid_t pid = t->pid;
    t->pid = 0;
    stop_gracefully(t, pid);

    /* Read what is committed to the end of every partition. */
    produce_markers(t);
    readstat committed = {0};
    read_to_markers(t, t->reader, &committed);

    int normal = 0, unknown = 0, small = 0, ran_again = 0;
    for (int i = 0; i < t->n; i++) {
        const seen *s = &t->seen[i];
        int is_dup = 0;
        for (int d = 0; d < nd; d++) is_dup |= dup[d] == i;
        switch (kind_of(i)) {
        case K_NORMAL:
            normal++;
            if (s->success != 1 + is_dup || s->dlq != 0 || s->first != 1 || s->second != 1 ||
                s->side != 1 || s->success_before_steps != 0)
                fail_msg("command %d: success %d, dlq %d, step results %d and %d, side %d, "
                         "success before its steps %d",
                         i, s->success, s->dlq, s->first, s->second, s->side,
                         s->success_before_steps);
            int runs = runs_of(t, r, i);
            if (runs < 1) fail_msg("command %d never ran", i);
            ran_again += runs > 1;
            break;
        case K_UNKNOWN:
        case K_SMALL:
            kind_of(i) == K_SMALL ? small++ : unknown++;
            if (s->dlq != 1 || s->success || s->first || s->second || s->side || s->small)
                fail_msg("dead-lettered command %d: dlq %d, success %d, step results %d and %d, "
                         "side %d, small topic %d",
                         i, s->dlq, s->success, s->first, s->second, s->side, s->small);
            break;
        }
    }
    for (int d = 0; d < nd; d++)
        if (runs_of(t, r, dup[d]) != runs_before[d])
            fail_msg("duplicate of command %d ran its workflow again", dup[d]);
    fprintf(stderr,
            "# exactly once: %d successes (each after its two step results, each once, and one "
            "side message), %d + %d dead-lettered once (unknown workflow, refused reply topic), "
            "%d duplicates answered from the record; %d workflows ran more than once (in "
            "flight at a kill or the rebalance: a side effect, not an output)\n",
            normal, unknown, small, nd, ran_again);

    /* Aborted data existed: read_uncommitted sees more. */
    t->raw = reader_new(t, "read_uncommitted");
    readstat all = {0};
    read_to_markers(t, t->raw, &all);
    fprintf(stderr, "# read_uncommitted: %ld messages, read_committed: %ld\n", all.msgs,
            t->committed_msgs);
    assert_true(all.msgs > t->committed_msgs);
    t->passed = 1;
}

/* At least once, a transactional.id would make every produce fail outside
 * a transaction: serve refuses it at start with exit 2 and says why. */
static void at_least_once_refuses_a_transactional_id(void **state) {
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "PROCESSING_GUARANTEE=at_least_once '%s' serve -X transactional.id=abc 2>&1",
             getenv("SIO_BIN"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[2048] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    if (strstr(out, "transactional.id=abc cannot be used with PROCESSING_GUARANTEE=at_least_once") ==
        NULL)
        fail_msg("unexpected message: %s", out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(at_least_once_refuses_a_transactional_id),
        cmocka_unit_test_setup_teardown(exactly_once_through_three_kills, eos_setup, eos_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
