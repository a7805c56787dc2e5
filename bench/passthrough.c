/*
 * passthrough.c - the practical ceiling for bench/run's throughput test: a
 * minimal consume -> produce service with the orchestrator's delivery
 * guarantees and none of its work (no Redis, no Lua).
 *
 *   sio_bench_passthrough BROKERS COMMANDS_TOPIC RESPONSES_TOPIC GROUP N [PROP=VALUE...]
 *
 * A consumer-group member (auto.offset.reset=earliest, offsets stored by
 * hand and auto-committed every second, like `serve`) that produces one
 * small success response per command, keyed by its correlation id, with
 * an idempotent acks=all producer (linger.ms=1, Nagle off, like `serve`), and stores a
 * partition's offset only up to the lowest command whose response has not
 * been delivered yet.  Exits after N delivery reports, with a final commit;
 * prints one JSON line: its rate (first command consumed -> last delivery
 * report) and its CPU over that same window (user + system of the whole
 * process, all threads, from getrusage), per command in µs.  PROP=VALUE
 * arguments set librdkafka properties of both clients (after the above:
 * bench/run's latency floor runs it with linger.ms=0).  It writes
 * "partitions assigned" on stderr when it gets its partitions.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchutil.h"

#define MAXP 256

/* Per command partition: which offsets past `next` are delivered. */
typedef struct part {
    int64_t base, next; /* flags[i] is offset base + i; next = lowest undelivered */
    unsigned char *flags;
    size_t cap;
    int seen;
} part;

static part parts[MAXP];
static rd_kafka_t *consumer;
static const char *cmd_topic;
static long delivered, failed;
static int64_t assigned_ms;

static void mark(int32_t p, int64_t off) {
    part *pt = &parts[p];
    size_t i = (size_t)(off - pt->base);
    if (i >= pt->cap) {
        size_t cap = pt->cap ? pt->cap : 4096;
        while (cap <= i) cap *= 2;
        pt->flags = realloc(pt->flags, cap);
        memset(pt->flags + pt->cap, 0, cap - pt->cap);
        pt->cap = cap;
    }
    pt->flags[i] = 1;
    int64_t before = pt->next;
    while ((size_t)(pt->next - pt->base) < pt->cap && pt->flags[pt->next - pt->base]) pt->next++;
    if (pt->next != before) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, cmd_topic, p)->offset = pt->next;
        rd_kafka_offsets_store(consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    if (m->err) {
        failed++;
        return; /* not stored: would be redelivered */
    }
    delivered++;
    mark((int32_t)(tag >> 48), (int64_t)(tag & 0xffffffffffffULL));
}

/* User + system CPU seconds of this process so far (every thread). */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (assigned_ms == 0) {
            assigned_ms = bu_wall_ms();
            fprintf(stderr, "partitions assigned\n");
        }
        rd_kafka_assign(rk, l);
    }
    else rd_kafka_assign(rk, NULL);
}

/* props (NULL-terminated) followed by argv[6..]: a new array, never freed. */
static const char *const *with_args(const char *const *props, int argc, char **argv) {
    size_t n = 0;
    while (props[n]) n++;
    const char **all = calloc(n + (size_t)argc, sizeof *all);
    if (all == NULL) fprintf(stderr, "out of memory\n"), exit(1);
    memcpy(all, props, n * sizeof *all);
    for (int i = 6; i < argc; i++) all[n++] = argv[i];
    return all;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s BROKERS COMMANDS_TOPIC RESPONSES_TOPIC GROUP N [PROP=VALUE...]\n",
                argv[0]);
        return 2;
    }
    const char *brokers = argv[1], *resp_topic = argv[3], *group = argv[4];
    cmd_topic = argv[2];
    long n = atol(argv[5]);
    char gprop[300];
    snprintf(gprop, sizeof gprop, "group.id=%s", group);
    const char *cprops[] = {gprop, "enable.auto.offset.store=false", "enable.auto.commit=true",
                            "auto.commit.interval.ms=1000", "auto.offset.reset=earliest",
                            "enable.partition.eof=false", "client.id=sio-bench-passthrough",
                            "socket.nagle.disable=true", NULL};
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    consumer = bu_client(RD_KAFKA_CONSUMER, brokers, with_args(cprops, argc, argv), cc);
    rd_kafka_poll_set_consumer(consumer);
    const char *pprops[] = {"enable.idempotence=true", "acks=all", "linger.ms=1",
                            "socket.nagle.disable=true",
                            "client.id=sio-bench-passthrough", NULL};
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_t *producer = bu_client(RD_KAFKA_PRODUCER, brokers, with_args(pprops, argc, argv), pc);
    /* The responses topic's metadata before the clock starts (held by this
     * handle): otherwise the first produce waits for it, ~0.8 s inside the
     * measured window that serve, which knows its topics at start, does
     * not pay. */
    rd_kafka_topic_t *resp_rkt = rd_kafka_topic_new(producer, resp_topic, NULL);
    bu_partitions(producer, resp_topic);

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, cmd_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);

    long consumed = 0;
    int64_t t0 = 0;
    double c0 = 0;
    while (delivered + failed < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, consumed < n ? 1 : 0);
        if (m) {
            if (m->err == 0 && m->partition < MAXP) {
                if (t0 == 0) t0 = bu_mono_ns(), c0 = cpu_s();
                part *pt = &parts[m->partition];
                if (!pt->seen) pt->seen = 1, pt->base = pt->next = m->offset;
                char cid[200] = "", val[320];
                bu_json_str(m->payload, m->len, "correlation_id", cid, sizeof cid);
                int vl = snprintf(val, sizeof val,
                                  "{\"correlation_id\":\"%s\",\"status\":\"success\","
                                  "\"result\":{\"summary\":\"passthrough\"}}", cid);
                uintptr_t tag = ((uintptr_t)m->partition << 48) | (uintptr_t)m->offset;
                rd_kafka_resp_err_t e;
                while ((e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(resp_topic),
                                              RD_KAFKA_V_KEY(cid, strlen(cid)),
                                              RD_KAFKA_V_VALUE(val, (size_t)vl),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END)) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    rd_kafka_poll(producer, 10);
                if (e) fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e)), exit(1);
                consumed++;
            } else if (m->err) {
                fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(producer, consumed >= n ? 10 : 0);
    }
    double secs = (double)(bu_mono_ns() - t0) / 1e9, cpu = cpu_s() - c0;
    rd_kafka_commit(consumer, NULL, 0);
    printf("{\"assigned_ms\":%lld,\"consumed\":%ld,\"delivered\":%ld,\"failed\":%ld,\"seconds\":%.3f,"
           "\"per_sec\":%.1f,\"cpu_s\":%.3f,\"cpu_us_per_command\":%.2f}\n",
           (long long)assigned_ms, consumed, delivered, failed, secs, delivered / secs, cpu,
           delivered ? cpu * 1e6 / (double)delivered : 0.0);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_flush(producer, 5000);
    rd_kafka_topic_destroy(resp_rkt);
    rd_kafka_destroy(producer);
    return failed ? 1 : 0;
}
