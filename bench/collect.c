/*
 * collect.c - reads topics from the beginning and summarises the responses:
 *
 *   sio_bench_collect BROKERS N TIMEOUT_S TOPIC [DLQ_TOPIC]
 *
 * (BENCH_DUMP=1 also prints "timestamp topic partition status id" per message
 * on stderr.)
 *
 *   sio_bench_collect --create BROKERS PARTITIONS TOPIC...
 *
 * Stops once N success responses were read and every partition is at its
 * end (or after TIMEOUT_S, or 3 s without a message once everything was
 * read).  Prints one JSON line: counts by status, DLQ entries, and the
 * CreateTime (producer-side timestamp, ms) of the first and last success,
 * from which bench/run computes throughput.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"

/* --create BROKERS PARTITIONS TOPIC...: creates the topics (when missing)
 * with message.timestamp.type=LogAppendTime, so a response's timestamp is
 * when the broker appended it, not when a client handed it to librdkafka. */
static int create(int argc, char **argv) {
    rd_kafka_t *rk = bu_client(RD_KAFKA_PRODUCER, argv[2], NULL, NULL);
    int n = argc - 4;
    rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof *nt);
    char errstr[512];
    for (int i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(argv[4 + i], atoi(argv[3]), 1, errstr, sizeof errstr);
        rd_kafka_NewTopic_set_config(nt[i], "message.timestamp.type", "LogAppendTime");
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 0;
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    if (res == NULL) rc = 1, fprintf(stderr, "create topics: no answer\n");
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "create %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                    rd_kafka_topic_result_error_string(tr[i]));
            rc = 1;
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    for (int i = 0; i < n; i++) rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "--create") == 0) return create(argc, argv);
    if (argc < 5) {
        fprintf(stderr, "usage: %s BROKERS N TIMEOUT_S TOPIC [DLQ_TOPIC]\n", argv[0]);
        return 2;
    }
    long want = atol(argv[2]);
    int64_t timeout_ns = (int64_t)atol(argv[3]) * 1000000000;
    const char *topic = argv[4], *dlq = argc > 5 ? argv[5] : NULL;
    const char *props[] = {"group.id=sio-bench-collect", "enable.auto.commit=false",
                           "enable.partition.eof=true", "fetch.wait.max.ms=50", NULL};
    rd_kafka_t *c = bu_client(RD_KAFKA_CONSUMER, argv[1], props, NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    bu_add_topic(c, l, topic, RD_KAFKA_OFFSET_BEGINNING);
    if (dlq) bu_add_topic(c, l, dlq, RD_KAFKA_OFFSET_BEGINNING);
    int nparts = l->cnt;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    long success = 0, step = 0, other = 0, dlqn = 0;
    int64_t first = INT64_MAX, last = 0;
    int eofs = 0;
    int dump = getenv("BENCH_DUMP") != NULL; /* one line per message, for digging */
    int64_t start = bu_mono_ns(), lastmsg = start;
    for (;;) {
        int64_t now = bu_mono_ns();
        if (success >= want && eofs >= nparts) break;
        if (now - start > timeout_ns) break;
        if (eofs >= nparts && now - lastmsg > 3000000000LL && success < want &&
            now - start > 10000000000LL)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err == 0) {
            lastmsg = bu_mono_ns();
            if (dump) {
                char cid[200] = "", st[32] = "";
                bu_json_str(m->payload, m->len, "correlation_id", cid, sizeof cid);
                bu_json_str(m->payload, m->len, "status", st, sizeof st);
                fprintf(stderr, "%lld %s %d %s %s\n", (long long)rd_kafka_message_timestamp(m, NULL),
                        rd_kafka_topic_name(m->rkt), (int)m->partition, st, cid);
            }
            if (dlq && strcmp(rd_kafka_topic_name(m->rkt), dlq) == 0) {
                dlqn++;
            } else if (memmem(m->payload, m->len, "\"status\":\"success\"", 18)) {
                success++;
                int64_t ts = rd_kafka_message_timestamp(m, NULL);
                if (ts < first) first = ts;
                if (ts > last) last = ts;
            } else if (memmem(m->payload, m->len, "\"status\":\"step_result\"", 22)) {
                step++;
            } else {
                other++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    double span = last > first ? (double)(last - first) / 1000.0 : 0;
    printf("{\"success\":%ld,\"step_result\":%ld,\"other\":%ld,\"dlq\":%ld,\"first_ms\":%lld,"
           "\"last_ms\":%lld,\"span_s\":%.3f,\"per_sec\":%.1f}\n",
           success, step, other, dlqn, success ? (long long)first : 0LL, (long long)last, span,
           span > 0 ? (success - 1) / span : 0.0);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return success >= want ? 0 : 1;
}
