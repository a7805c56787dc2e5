/*
 * loadgen.c - produces commands and (in rate mode) measures their latency.
 *
 *   sio_bench_loadgen --brokers B --commands T --workflow W [--attrs JSON]
 *                     [--prefix ID] --preload N
 *       publishes N commands as fast as the broker takes them, then exits.
 *
 *   sio_bench_loadgen --brokers B --commands T --responses T --workflow W
 *                     [--attrs JSON] [--prefix ID] --rate R --seconds S
 *                     [--drain S]
 *       publishes R commands/s for S seconds (paced on CLOCK_MONOTONIC) while
 *       a second thread consumes the responses topic and its DLQ (assigned
 *       at their end before the first command).  A command's latency is from
 *       just before rd_kafka_producev() of the command to the receipt of its
 *       success response, matched by correlation id ("<prefix>-<seq>").  It
 *       also records, for every distinct value of a "marker" field in the
 *       success results, its count and the earliest CreateTime (bench/run's
 *       hot-reload test).  Prints one JSON line.  With --dump FILE it also
 *       writes one line per answered command for bench/breakdown.py:
 *       "<correlation id> <sent> <received> <response timestamp>", the first
 *       two in wall-clock ns (the clock the service's spans use), the last
 *       the response's Kafka timestamp in ms (its append time on a
 *       LogAppendTime topic).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

static const char *brokers, *cmd_topic, *resp_topic, *workflow = "noop", *attrs = NULL,
                  *prefix = "bench";
static long total;
static int64_t *sent_ns, *recv_ns;
static int64_t *sent_wall, *recv_wall, *resp_ts; /* for --dump */
static volatile int stop;
static long ok_count, dup_count, dlq_count, foreign;
static rd_kafka_topic_t *cmd_rkt; /* held so its metadata is known before the clock starts */
static char dlq_topic[512];

#define MAXMARK 128
static struct { char name[64]; long count; int64_t first_ts; } marks[MAXMARK];
static int nmarks;

static void note_marker(const rd_kafka_message_t *m) {
    char mk[64];
    if (bu_json_str(m->payload, m->len, "marker", mk, sizeof mk) != 0) return;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    int i;
    for (i = 0; i < nmarks; i++)
        if (strcmp(marks[i].name, mk) == 0) break;
    if (i == nmarks) {
        if (nmarks == MAXMARK) return;
        snprintf(marks[nmarks].name, sizeof marks[0].name, "%s", mk);
        marks[nmarks].first_ts = ts;
        nmarks++;
    }
    marks[i].count++;
    if (ts < marks[i].first_ts) marks[i].first_ts = ts;
}

static void *consume_main(void *arg) {
    rd_kafka_t *c = arg;
    size_t pl = strlen(prefix);
    while (!stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 20);
        if (m == NULL) continue;
        int64_t now = bu_mono_ns(), wall = bu_wall_ns();
        char cid[200];
        if (m->err == 0 && bu_json_str(m->payload, m->len, "correlation_id", cid, sizeof cid) == 0 &&
            strncmp(cid, prefix, pl) == 0 && cid[pl] == '-') {
            long seq = atol(cid + pl + 1);
            if (strcmp(rd_kafka_topic_name(m->rkt), dlq_topic) == 0) {
                dlq_count++;
            } else if (memmem(m->payload, m->len, "\"status\":\"success\"", 18) && seq >= 0 &&
                       seq < total) {
                if (__atomic_load_n(&recv_ns[seq], __ATOMIC_ACQUIRE) == 0) {
                    recv_wall[seq] = wall;
                    resp_ts[seq] = rd_kafka_message_timestamp(m, NULL);
                    __atomic_store_n(&recv_ns[seq], now, __ATOMIC_RELEASE);
                    ok_count++;
                } else {
                    dup_count++;
                }
                note_marker(m);
            }
        } else if (m->err == 0) {
            foreign++;
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void produce(rd_kafka_t *p, long seq) {
    char cid[200], val[4096];
    snprintf(cid, sizeof cid, "%s-%ld", prefix, seq);
    int vl = snprintf(val, sizeof val, "{\"correlation_id\":\"%s\",\"workflow\":\"%s\",\"attrs\":%s}",
                      cid, workflow, attrs ? attrs : "{\"query\":\"hello\"}");
    if (sent_ns) {
        sent_wall[seq] = bu_wall_ns();
        __atomic_store_n(&sent_ns[seq], bu_mono_ns(), __ATOMIC_RELEASE);
    }
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(p, RD_KAFKA_V_RKT(cmd_rkt), RD_KAFKA_V_KEY(cid, strlen(cid)),
                                  RD_KAFKA_V_VALUE(val, (size_t)vl),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(p, 10);
    if (e) fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e)), exit(1);
    rd_kafka_poll(p, 0);
}

static long delivery_failures;
static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *o) {
    (void)rk, (void)o;
    if (m->err) delivery_failures++;
}

int main(int argc, char **argv) {
    long preload = 0, rate = 0, seconds = 0, drain = 15;
    const char *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--brokers")) brokers = v;
        else if (!strcmp(k, "--commands")) cmd_topic = v;
        else if (!strcmp(k, "--responses")) resp_topic = v;
        else if (!strcmp(k, "--workflow")) workflow = v;
        else if (!strcmp(k, "--attrs")) attrs = v;
        else if (!strcmp(k, "--prefix")) prefix = v;
        else if (!strcmp(k, "--preload")) preload = atol(v);
        else if (!strcmp(k, "--rate")) rate = atol(v);
        else if (!strcmp(k, "--seconds")) seconds = atol(v);
        else if (!strcmp(k, "--drain")) drain = atol(v);
        else if (!strcmp(k, "--dump")) dump = v;
        else fprintf(stderr, "unknown flag %s\n", k), exit(2);
    }
    if (!brokers || !cmd_topic || (!preload && (!rate || !seconds || !resp_topic))) {
        fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
        return 2;
    }
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set_dr_msg_cb(pc, on_dr);
    const char *batch[] = {"enable.idempotence=true", "acks=all", "linger.ms=20", NULL};
    const char *quick[] = {"enable.idempotence=true", "acks=all", "linger.ms=0",
                           "socket.nagle.disable=true", NULL};
    rd_kafka_t *p = bu_client(RD_KAFKA_PRODUCER, brokers, preload ? batch : quick, pc);
    cmd_rkt = rd_kafka_topic_new(p, cmd_topic, NULL);
    bu_partitions(p, cmd_topic);
    if (preload) {
        int64_t t0 = bu_mono_ns();
        total = preload;
        for (long i = 0; i < preload; i++) produce(p, i);
        rd_kafka_flush(p, 120000);
        double s = (double)(bu_mono_ns() - t0) / 1e9;
        printf("{\"produced\":%ld,\"failed\":%ld,\"seconds\":%.3f}\n", preload, delivery_failures, s);
        rd_kafka_topic_destroy(cmd_rkt);
        rd_kafka_destroy(p);
        return delivery_failures ? 1 : 0;
    }

    snprintf(dlq_topic, sizeof dlq_topic, "%s.dlq", resp_topic);
    total = rate * seconds;
    sent_ns = calloc((size_t)total, sizeof *sent_ns);
    recv_ns = calloc((size_t)total, sizeof *recv_ns);
    sent_wall = calloc((size_t)total, sizeof *sent_wall);
    recv_wall = calloc((size_t)total, sizeof *recv_wall);
    resp_ts = calloc((size_t)total, sizeof *resp_ts);
    if (!sent_ns || !recv_ns || !sent_wall || !recv_wall || !resp_ts)
        fprintf(stderr, "out of memory\n"), exit(1);
    const char *cprops[] = {"group.id=sio-bench-loadgen", "enable.auto.commit=false",
                            "fetch.wait.max.ms=5", "socket.nagle.disable=true", NULL};
    rd_kafka_t *c = bu_client(RD_KAFKA_CONSUMER, brokers, cprops, NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    bu_add_topic(c, l, resp_topic, RD_KAFKA_OFFSET_END);
    bu_add_topic(c, l, dlq_topic, RD_KAFKA_OFFSET_END);
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    /* Warm the producer up (connection, idempotence PID; the commands
     * topic's metadata is already known) before the clock starts: a message
     * the service never sees, on the responses topic. */
    const char *warm = "{\"correlation_id\":\"warmup\",\"status\":\"warmup\"}";
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(resp_topic), RD_KAFKA_V_VALUE((void *)warm, strlen(warm)),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(p, 30000);
    pthread_t th;
    pthread_create(&th, NULL, consume_main, c);
    /* Give the consumer time to fetch from its starting positions. */
    struct timespec settle = {1, 0};
    nanosleep(&settle, NULL);

    int64_t interval = 1000000000 / rate, t0 = bu_mono_ns();
    for (long i = 0; i < total; i++) {
        int64_t due = t0 + i * interval;
        struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
        while (bu_mono_ns() < due) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        produce(p, i);
    }
    double send_s = (double)(bu_mono_ns() - t0) / 1e9;
    int64_t deadline = bu_mono_ns() + drain * 1000000000;
    while (__atomic_load_n(&ok_count, __ATOMIC_RELAXED) + dlq_count < total &&
           bu_mono_ns() < deadline) {
        rd_kafka_poll(p, 50);
    }
    stop = 1;
    pthread_join(th, NULL);
    rd_kafka_flush(p, 10000);

    if (dump) {
        FILE *f = fopen(dump, "w");
        if (f == NULL) perror(dump), exit(1);
        for (long i = 0; i < total; i++)
            if (recv_ns[i])
                fprintf(f, "%s-%ld %lld %lld %lld\n", prefix, i, (long long)sent_wall[i],
                        (long long)recv_wall[i], (long long)resp_ts[i]);
        if (fclose(f) != 0) perror(dump), exit(1);
    }
    int64_t *lat = malloc((size_t)total * sizeof *lat);
    long n = 0;
    double sum = 0;
    for (long i = 0; i < total; i++)
        if (recv_ns[i]) lat[n] = recv_ns[i] - sent_ns[i], sum += (double)lat[n], n++;
    qsort(lat, (size_t)n, sizeof *lat, cmp64);
#define PCT(q) (n ? (double)lat[(long)((double)(n - 1) * (q))] / 1e6 : -1.0)
    printf("{\"offered_rate\":%ld,\"seconds\":%ld,\"send_seconds\":%.3f,\"sent\":%ld,\"ok\":%ld,"
           "\"dlq\":%ld,\"missing\":%ld,\"duplicates\":%ld,\"delivery_failures\":%ld,"
           "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"markers\":[",
           rate, seconds, send_s, total, n, dlq_count, total - n - dlq_count, dup_count,
           delivery_failures, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
           n ? (double)lat[n - 1] / 1e6 : -1.0, n ? sum / (double)n / 1e6 : -1.0);
    for (int i = 0; i < nmarks; i++)
        printf("%s{\"marker\":\"%s\",\"count\":%ld,\"first_ts_ms\":%lld}", i ? "," : "",
               marks[i].name, marks[i].count, (long long)marks[i].first_ts);
    printf("]}\n");
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_topic_destroy(cmd_rkt);
    rd_kafka_destroy(p);
    return 0;
}
