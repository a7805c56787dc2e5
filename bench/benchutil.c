/* benchutil.c - see benchutil.h. */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t bu_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bu_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bu_wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bu_set(rd_kafka_conf_t *conf, const char *key, const char *val) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka property %s=%s: %s\n", key, val, errstr);
        exit(2);
    }
}

rd_kafka_t *bu_client(rd_kafka_type_t type, const char *brokers, const char *const *props,
                      rd_kafka_conf_t *conf) {
    char errstr[512];
    if (conf == NULL) conf = rd_kafka_conf_new();
    bu_set(conf, "bootstrap.servers", brokers);
    for (const char *const *p = props; p && *p; p++) {
        char kv[512];
        snprintf(kv, sizeof kv, "%s", *p);
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            fprintf(stderr, "bad property %s (want key=value)\n", *p);
            exit(2);
        }
        *eq = '\0';
        bu_set(conf, kv, eq + 1);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "kafka client: %s\n", errstr);
        exit(2);
    }
    return rk;
}

int bu_partitions(rd_kafka_t *rk, const char *topic) {
    for (int tries = 0; tries < 100; tries++) {
        rd_kafka_topic_t *th = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        int n = -1;
        if (rd_kafka_metadata(rk, 0, th, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt > 0)
            n = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(th);
        if (n > 0) return n;
        usleep(100000);
    }
    fprintf(stderr, "topic %s not found\n", topic);
    exit(2);
}

void bu_add_topic(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, const char *topic,
                  int64_t off) {
    int n = bu_partitions(rk, topic);
    for (int p = 0; p < n; p++) {
        int64_t o = off;
        if (off == RD_KAFKA_OFFSET_END) {
            /* A topic created a moment ago may have no leader yet, and a
             * starved broker answers late: ask again for up to 60 s. */
            int64_t lo = 0, hi = 0, until = bu_mono_ns() + 60 * (int64_t)1000000000;
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) != 0 &&
                   bu_mono_ns() < until) {
                struct timespec pause = {0, 200 * 1000000};
                nanosleep(&pause, NULL);
            }
            if (e != 0) {
                fprintf(stderr, "watermarks of %s[%d] unknown: %s\n", topic, p, rd_kafka_err2str(e));
                exit(2);
            }
            o = hi;
        }
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = o;
    }
}

int bu_json_str(const char *json, size_t len, const char *name, char *out, size_t n) {
    char pat[96];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = memmem(json, len, pat, (size_t)pl);
    if (p == NULL) return -1;
    p += pl;
    const char *end = memchr(p, '"', len - (size_t)(p - json));
    if (end == NULL || (size_t)(end - p) >= n) return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}
