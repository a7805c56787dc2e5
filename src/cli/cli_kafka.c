/*
 * cli_kafka.c - the Kafka-side commands: send, tail, topics.
 *
 * send   publishes one command and waits on its reply topic and that topic's
 *        DLQ for messages keyed by its correlation id (the service keys
 *        every response by it), printing each as it arrives.  Exit 0 on
 *        success, 1 on a DLQ entry, 3 on timeout, 2 on bad usage.
 * tail   prints every message of the given topics (default: responses and
 *        its DLQ) as JSON lines.
 * topics creates the commands, responses and DLQ topics when missing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "kafka.h"
#include "log.h"

static volatile sig_atomic_t interrupted;

static void on_int(int sig) {
    (void)sig;
    interrupted = 1;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Producer delivery reports: failures are counted (the opaque is a long). */
static void count_failures(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && opaque) (*(long *)opaque)++;
}

static long delivery_failures;

static rd_kafka_t *client(const sio_config *cfg, rd_kafka_type_t type, sio_err *err) {
    rd_kafka_conf_t *conf = sio_kafka_conf(cfg->kafka_brokers, cfg->kafka_props_flat, err);
    if (conf == NULL) return NULL;
    char errstr[512];
    char group[64];
    snprintf(group, sizeof group, "sio-cli-%ld", (long)getpid());
    if ((type == RD_KAFKA_PRODUCER &&
         (sio_kafka_set(conf, "enable.idempotence", "true", err) != 0 ||
          sio_kafka_set(conf, "acks", "all", err) != 0)) ||
        (type == RD_KAFKA_CONSUMER && /* assign() only: the group is never joined */
         (sio_kafka_set(conf, "group.id", group, err) != 0 ||
          sio_kafka_set(conf, "enable.auto.commit", "false", err) != 0))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, count_failures);
        rd_kafka_conf_set_opaque(conf, &delivery_failures);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        sio_err_set(err, SIO_E_CONFIG, "kafka: %s", errstr);
    }
    return rk;
}

/* Assigns every partition of each topic at its current end (queried now,
 * so nothing published after this call is missed). */
static int assign_at_end(rd_kafka_t *rk, const char *const *topics, size_t n, sio_err *err) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    int rc = 0;
    for (size_t t = 0; t < n && rc == 0; t++) {
        rd_kafka_topic_t *th = rd_kafka_topic_new(rk, topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, th, &md, 10000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0) {
            for (int p = 0; p < md->topics[0].partition_cnt; p++) {
                int32_t id = md->topics[0].partitions[p].id;
                int64_t lo = 0, hi = 0;
                rd_kafka_query_watermark_offsets(rk, topics[t], id, &lo, &hi, 10000);
                rd_kafka_topic_partition_list_add(l, topics[t], id)->offset = hi;
            }
        } else {
            rc = sio_err_set(err, SIO_E_KAFKA, "topic %s: %s", topics[t],
                             e ? rd_kafka_err2str(e)
                               : md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "unknown");
        }
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(th);
    }
    if (rc == 0) rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* Prints m as {"topic":..,"partition":..,"offset":..,"key":..,"value":<json or string>}. */
static void print_message(const rd_kafka_message_t *m) {
    char key[512] = "", ekey[1100];
    if (m->key) snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
    const char *v = m->payload ? (const char *)m->payload : "";
    int json = m->len > 0 && (v[0] == '{' || v[0] == '[');
    printf("{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"key\":\"%s\",\"value\":",
           rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
           sio_json_escape(key, ekey, sizeof ekey));
    if (json) {
        printf("%.*s}\n", (int)m->len, v);
    } else {
        char *buf = malloc(m->len * 6 + 1), *s = malloc(m->len + 1);
        if (buf && s) {
            memcpy(s, v, m->len);
            s[m->len] = '\0';
            printf("\"%s\"}\n", sio_json_escape(s, buf, m->len * 6 + 1));
        }
        free(buf);
        free(s);
    }
    fflush(stdout);
}

static void random_id(char *out, size_t n) {
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(b, 1, sizeof b, f) != sizeof b) {
        for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(rand() ^ (int)time(NULL));
    }
    if (f) fclose(f);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* The command envelope for send. */
static char *command_json(const char *cid, const char *wf, const char *reply, const char *attrs) {
    char ecid[512], ewf[512], ert[1024];
    char *out = NULL;
    char rt[1100] = "";
    if (reply) snprintf(rt, sizeof rt, ",\"reply_topic\":\"%s\"", sio_json_escape(reply, ert, sizeof ert));
    if (asprintf(&out, "{\"correlation_id\":\"%s\",\"workflow\":\"%s\"%s,\"attrs\":%s}",
                 sio_json_escape(cid, ecid, sizeof ecid), sio_json_escape(wf, ewf, sizeof ewf), rt,
                 attrs ? attrs : "{}") < 0)
        return NULL;
    return out;
}

/* The --header KEY=VALUE flags as Kafka headers (NULL when none); the
 * producer takes them over when a produce succeeds. */
static rd_kafka_headers_t *send_headers(const sio_config *cfg) {
    rd_kafka_headers_t *h = NULL;
    for (size_t i = 0; i < cfg->nextra; i++) {
        if (strcmp(cfg->extra[i].key, "--header") != 0) continue;
        const char *kv = cfg->extra[i].val, *eq = strchr(kv, '=');
        if (h == NULL) h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, kv, eq ? (ssize_t)(eq - kv) : -1, eq ? eq + 1 : NULL, -1);
    }
    return h;
}

static int produce_one(rd_kafka_t *p, const char *topic, const char *key, const char *val,
                       rd_kafka_headers_t *hdrs, sio_err *err) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) e = rd_kafka_flush(p, 15000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && delivery_failures) e = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "publishing to %s: %s", topic, rd_kafka_err2str(e));
    return 0;
}

/* Waits for messages keyed cid on the reply topic and its DLQ. */
static int await_outcome(rd_kafka_t *c, const char *cid, const char *dlq, int64_t timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    size_t cl = strlen(cid);
    while (!interrupted && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) continue;
        int rc = -1;
        if (m->err == 0 && m->key_len == cl && memcmp(m->key, cid, cl) == 0) {
            print_message(m);
            const char *v = m->payload;
            if (strcmp(rd_kafka_topic_name(m->rkt), dlq) == 0) rc = 1;
            else if (m->len && memmem(v, m->len, "\"status\":\"success\"", 18)) rc = 0;
        }
        rd_kafka_message_destroy(m);
        if (rc >= 0) return rc;
    }
    fprintf(stderr, "sio-orchestrator send: no outcome for %s within %lld ms\n", cid,
            (long long)timeout_ms);
    return 3;
}

/* send --lines FILE: every line of FILE ("-" = stdin) is one command,
 * published as is (key = the "correlation_id" found in the line, if any);
 * waits for all delivery reports, not for outcomes. */
static int send_lines(const sio_config *cfg) {
    const char *path = sio_config_extra(cfg, "--lines");
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    sio_err err;
    rd_kafka_t *p = f ? client(cfg, RD_KAFKA_PRODUCER, &err) : NULL;
    int rc = 1;
    long n = 0;
    if (f == NULL) {
        fprintf(stderr, "sio-orchestrator send: cannot open %s\n", path);
    } else if (p == NULL) {
        fprintf(stderr, "sio-orchestrator send: %s\n", err.msg);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
            if (len == 0) continue;
            const char *k = strstr(line, "\"correlation_id\":\"");
            size_t klen = 0;
            if (k) {
                k += 18;
                const char *e = strchr(k, '"');
                klen = e ? (size_t)(e - k) : 0;
            }
            rd_kafka_resp_err_t e;
            rd_kafka_headers_t *hdrs = send_headers(cfg);
            while ((e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(cfg->commands_topic),
                                          RD_KAFKA_V_KEY(klen ? k : NULL, klen),
                                          RD_KAFKA_V_VALUE(line, (size_t)len),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_HEADERS(hdrs),
                                          RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 50);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (hdrs) rd_kafka_headers_destroy(hdrs);
                break;
            }
            rd_kafka_poll(p, 0);
            n++;
        }
        free(line);
        rc = rd_kafka_flush(p, 60000) == RD_KAFKA_RESP_ERR_NO_ERROR && delivery_failures == 0 ? 0 : 1;
        printf("sent %ld commands to %s", n, cfg->commands_topic);
        if (delivery_failures) printf(" (%ld not delivered)", delivery_failures);
        printf("\n");
    }
    if (p) rd_kafka_destroy(p);
    if (f && f != stdin) fclose(f);
    sio_config_destroy(cfg);
    return rc;
}

int sio_cli_send(int argc, char **argv, char **envp) {
    static const char *const flags[] = {"--attrs=", "--correlation-id=", "--reply-topic=",
                                        "--wait=", "--raw=", "--lines=", "--header=", NULL};
    sio_config_opts opts = {.extra_flags = flags, .max_positional = 1};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg && sio_config_extra(cfg, "--lines")) return send_lines(cfg);
    if (cfg == NULL || (cfg->nargs != 1 && sio_config_extra(cfg, "--raw") == NULL)) {
        fprintf(stderr, "sio-orchestrator send: %s\nusage: sio-orchestrator send WORKFLOW "
                        "[--attrs JSON] [--correlation-id ID] [--reply-topic T] [--wait 30s] "
                        "[--raw BYTES] [--header K=V] [--brokers B]\n", cfg ? "a workflow is required" : err.msg);
        sio_config_destroy(cfg);
        return 2;
    }
    char cid[128];
    const char *given = sio_config_extra(cfg, "--correlation-id");
    if (given) snprintf(cid, sizeof cid, "%s", given);
    else random_id(cid, sizeof cid);
    const char *reply = sio_config_extra(cfg, "--reply-topic");
    const char *rt = reply ? reply : cfg->responses_topic;
    char dlq[512];
    sio_dlq_topic(rt, dlq, sizeof dlq);
    int64_t wait_ms = 30000;
    const char *w = sio_config_extra(cfg, "--wait");
    if (w && sio_parse_duration_ms(w, &wait_ms, &err) != 0) {
        fprintf(stderr, "sio-orchestrator send: --wait: %s\n", err.msg);
        sio_config_destroy(cfg);
        return 2;
    }
    const char *raw = sio_config_extra(cfg, "--raw");
    char *cmd = raw ? strdup(raw)
                    : command_json(cid, cfg->args[0], reply, sio_config_extra(cfg, "--attrs"));
    rd_kafka_t *p = client(cfg, RD_KAFKA_PRODUCER, &err), *c = NULL;
    int rc = 1;
    const char *topics[] = {rt, dlq};
    /* The reply topic and its DLQ are created only when missing. */
    if (p == NULL || sio_kafka_check(p, cfg->kafka_brokers, 10000, &err) != 0 ||
        (c = client(cfg, RD_KAFKA_CONSUMER, &err)) == NULL ||
        (assign_at_end(c, topics, 2, &err) != 0 &&
         (sio_kafka_ensure_topics(p, topics, 2, cfg->topic_partitions, cfg->topic_replication,
                                  10000, NULL, &err) != 0 ||
          assign_at_end(c, topics, 2, &err) != 0)) ||
        produce_one(p, cfg->commands_topic, raw ? NULL : cid, cmd, send_headers(cfg), &err) != 0) {
        fprintf(stderr, "sio-orchestrator send: %s\n", err.msg);
    } else if (raw) {
        printf("sent %zu raw bytes to %s (no correlation id to wait for)\n", strlen(raw),
               cfg->commands_topic);
        rc = 0;
    } else {
        signal(SIGINT, on_int);
        rc = await_outcome(c, cid, dlq, wait_ms);
    }
    if (c) rd_kafka_destroy(c);
    if (p) rd_kafka_destroy(p);
    free(cmd);
    sio_config_destroy(cfg);
    return rc;
}

int sio_cli_tail(int argc, char **argv, char **envp) {
    static const char *const flags[] = {"--from-beginning", "--max=", "--idle=", NULL};
    sio_config_opts opts = {.extra_flags = flags, .max_positional = 8};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sio-orchestrator tail: %s\n", err.msg);
        return 2;
    }
    char dlq[512];
    const char *defaults[] = {cfg->responses_topic, sio_dlq_topic(cfg->responses_topic, dlq, sizeof dlq)};
    const char *const *topics = cfg->nargs ? cfg->args : defaults;
    size_t n = cfg->nargs ? cfg->nargs : 2;
    long max = sio_config_extra(cfg, "--max") ? atol(sio_config_extra(cfg, "--max")) : 0;
    int64_t idle_ms = 0;
    const char *idle = sio_config_extra(cfg, "--idle");
    if (idle && sio_parse_duration_ms(idle, &idle_ms, &err) != 0) {
        fprintf(stderr, "sio-orchestrator tail: --idle: %s\n", err.msg);
        sio_config_destroy(cfg);
        return 2;
    }
    rd_kafka_t *c = client(cfg, RD_KAFKA_CONSUMER, &err);
    int rc = 1;
    if (c && assign_at_end(c, topics, n, &err) == 0) {
        if (sio_config_extra(cfg, "--from-beginning")) {
            rd_kafka_topic_partition_list_t *l = NULL;
            rd_kafka_assignment(c, &l);
            for (int i = 0; i < l->cnt; i++) l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_assign(c, l);
            rd_kafka_topic_partition_list_destroy(l);
        }
        signal(SIGINT, on_int);
        signal(SIGTERM, on_int);
        long seen = 0;
        /* --idle counts from the last message; the first fetch after the
         * assignment gets a 2 s grace so a slow start is not "idle". */
        int64_t last = now_ms() + (idle_ms ? 2000 : 0);
        while (!interrupted && (max == 0 || seen < max) &&
               (idle_ms == 0 || now_ms() - last < idle_ms)) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
            if (m == NULL) continue;
            if (m->err == 0) print_message(m), seen++, last = now_ms();
            rd_kafka_message_destroy(m);
        }
        rc = 0;
    } else {
        fprintf(stderr, "sio-orchestrator tail: %s\n", err.msg);
    }
    if (c) rd_kafka_destroy(c);
    sio_config_destroy(cfg);
    return rc;
}

int sio_cli_topics(int argc, char **argv, char **envp) {
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, NULL, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sio-orchestrator topics: %s\n", err.msg);
        return 2;
    }
    char dlq[512];
    const char *topics[] = {cfg->commands_topic, cfg->responses_topic,
                            sio_dlq_topic(cfg->responses_topic, dlq, sizeof dlq)};
    rd_kafka_t *p = client(cfg, RD_KAFKA_PRODUCER, &err);
    int created = 0, rc = 1;
    if (p && sio_kafka_check(p, cfg->kafka_brokers, 10000, &err) == 0 &&
        sio_kafka_ensure_topics(p, topics, 3, cfg->topic_partitions, cfg->topic_replication, 15000,
                                &created, &err) == 0) {
        for (int i = 0; i < 3; i++) printf("%s\n", topics[i]);
        printf("created %d of 3 (the others existed)\n", created);
        rc = 0;
    } else {
        fprintf(stderr, "sio-orchestrator topics: %s\n", err.msg);
    }
    if (p) rd_kafka_destroy(p);
    sio_config_destroy(cfg);
    return rc;
}

/* offsets: the group's committed offset, the end offset and the lag of
 * each partition of the commands topic, as JSON lines, then a total. */
int sio_cli_offsets(int argc, char **argv, char **envp) {
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, NULL, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sio-orchestrator offsets: %s\n", err.msg);
        return 2;
    }
    rd_kafka_conf_t *conf = sio_kafka_conf(cfg->kafka_brokers, cfg->kafka_props_flat, &err);
    rd_kafka_t *c = NULL;
    char errstr[512];
    if (conf && sio_kafka_set(conf, "group.id", cfg->kafka_group_id, &err) == 0)
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    else if (conf)
        rd_kafka_conf_destroy(conf);
    int rc = 1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *th = c ? rd_kafka_topic_new(c, cfg->commands_topic, NULL) : NULL;
    if (th && rd_kafka_metadata(c, 0, th, &md, 10000) == 0 && md->topic_cnt == 1 &&
        md->topics[0].err == 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(l, cfg->commands_topic, md->topics[0].partitions[p].id);
        if (rd_kafka_committed(c, l, 10000) == 0) {
            long long total_lag = 0, total_committed = 0, total_end = 0;
            for (int i = 0; i < l->cnt; i++) {
                int64_t lo = 0, hi = 0;
                rd_kafka_query_watermark_offsets(c, cfg->commands_topic, l->elems[i].partition, &lo,
                                                 &hi, 10000);
                long long committed = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
                printf("{\"topic\":\"%s\",\"partition\":%d,\"committed\":%lld,\"end\":%lld,"
                       "\"lag\":%lld}\n", cfg->commands_topic, (int)l->elems[i].partition,
                       (long long)l->elems[i].offset, (long long)hi, (long long)(hi - committed));
                total_lag += hi - committed;
                total_committed += committed;
                total_end += hi;
            }
            printf("{\"group\":\"%s\",\"committed\":%lld,\"end\":%lld,\"lag\":%lld}\n",
                   cfg->kafka_group_id, total_committed, total_end, total_lag);
            rc = 0;
        } else {
            fprintf(stderr, "sio-orchestrator offsets: cannot read committed offsets\n");
        }
        rd_kafka_topic_partition_list_destroy(l);
    } else {
        fprintf(stderr, "sio-orchestrator offsets: topic %s not found at %s\n", cfg->commands_topic,
                cfg->kafka_brokers);
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (th) rd_kafka_topic_destroy(th);
    if (c) rd_kafka_destroy(c);
    sio_config_destroy(cfg);
    return rc;
}
