/*
 * cli_kafka.c - the Kafka plumbing of the CLI (cli_kafka.h) and the two
 * small admin commands:
 *
 * topics  creates the commands, responses and DLQ topics when missing.
 * offsets prints the group's committed offset, the end offset and the lag
 *         of each partition of the commands topic as JSON lines, then the
 *         totals; "committed" is null where the group has committed nothing
 *         (the lag then counts from the partition's first offset).
 */
#include "cli_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "kafka.h"

/* A client of type from conf (taken over, also on failure). */
static rd_kafka_t *client(rd_kafka_conf_t *conf, rd_kafka_type_t type, sio_err *err) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        sio_err_set(err, SIO_E_CONFIG, "kafka: %s", errstr);
    }
    return rk;
}

rd_kafka_t *sio_cli_producer(const sio_config *cfg, sio_cli_dr_cb *dr, void *opaque,
                             sio_err *err) {
    rd_kafka_conf_t *conf = sio_kafka_conf(cfg->kafka_brokers, cfg->kafka_props_flat, err);
    if (conf == NULL) return NULL;
    if (sio_kafka_set(conf, "enable.idempotence", "true", err) != 0 ||
        sio_kafka_set(conf, "acks", "all", err) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (dr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, opaque);
    return client(conf, RD_KAFKA_PRODUCER, err);
}

rd_kafka_t *sio_cli_consumer(const sio_config *cfg, int eof, sio_err *err) {
    rd_kafka_conf_t *conf = sio_kafka_conf(cfg->kafka_brokers, cfg->kafka_props_flat, err);
    if (conf == NULL) return NULL;
    char group[64];
    snprintf(group, sizeof group, "sio-cli-%ld", (long)getpid()); /* never joined: assign() only */
    if (sio_kafka_set(conf, "group.id", group, err) != 0 ||
        sio_kafka_set(conf, "enable.auto.commit", "false", err) != 0 ||
        sio_kafka_set(conf, "enable.partition.eof", eof ? "true" : "false", err) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return client(conf, RD_KAFKA_CONSUMER, err);
}

/* Errors a topic gives for a moment after it was created or while its
 * leader changes; asking again shortly gets the answer. */
static int settling(rd_kafka_resp_err_t e, int created) {
    return e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
           e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
           (created && (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION));
}

/* One look at topic's partitions and watermarks, appended to *parts; the
 * librdkafka error in *why when it fails. */
static int list_once(rd_kafka_t *rk, const char *topic, int timeout_ms, sio_cli_part **parts,
                     size_t *n, rd_kafka_resp_err_t *why, sio_err *err) {
    rd_kafka_topic_t *th = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = th ? rd_kafka_metadata(rk, 0, th, &md, timeout_ms)
                               : RD_KAFKA_RESP_ERR__INVALID_ARG;
    int rc = 0;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err)) {
        e = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rc = sio_err_set(err, SIO_E_NOTFOUND, "topic %s: %s", topic, rd_kafka_err2str(e));
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = sio_err_set(err, SIO_E_KAFKA, "topic %s: %s", topic, rd_kafka_err2str(e));
    } else {
        int cnt = md->topics[0].partition_cnt;
        sio_cli_part *p = realloc(*parts, (*n + (size_t)cnt) * sizeof *p);
        if (p == NULL) rc = sio_err_set(err, SIO_E_NOMEM, "out of memory");
        else *parts = p;
        for (int i = 0; rc == 0 && i < cnt; i++) {
            sio_cli_part *q = &p[(*n)++];
            q->topic = topic;
            q->id = md->topics[0].partitions[i].id;
            e = rd_kafka_query_watermark_offsets(rk, topic, q->id, &q->lo, &q->hi, timeout_ms);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                rc = sio_err_set(err, SIO_E_KAFKA, "topic %s [%d]: %s", topic, (int)q->id,
                                 rd_kafka_err2str(e));
        }
    }
    *why = e;
    if (md) rd_kafka_metadata_destroy(md);
    if (th) rd_kafka_topic_destroy(th);
    return rc;
}

int sio_cli_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int created,
                       sio_cli_part **parts, size_t *n, sio_err *err) {
    int64_t deadline = sio_cli_now_ms() + timeout_ms;
    size_t before = *n;
    rd_kafka_resp_err_t why;
    for (;;) {
        *n = before;
        if (list_once(rk, topic, timeout_ms, parts, n, &why, err) == 0) return 0;
        if (!settling(why, created) || sio_cli_now_ms() >= deadline) return -1;
        usleep(100 * 1000); /* then ask again, until the deadline */
    }
}

int sio_cli_offsets_for_time(rd_kafka_t *rk, sio_cli_part *parts, size_t n, int64_t ms,
                             int timeout_ms, sio_err *err) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].id)->offset = ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, timeout_ms);
    for (size_t i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < n; i++) {
        int64_t o = l->elems[i].offset; /* -1: no message at or after ms */
        if (l->elems[i].err) e = l->elems[i].err;
        else parts[i].lo = o < 0 ? parts[i].hi : o;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "offsets for time %lld: %s", (long long)ms,
                           rd_kafka_err2str(e));
    return 0;
}

/* The value of m into o: JSON, a string, value_base64 or null. */
static int set_value(json_t *o, const rd_kafka_message_t *m) {
    if (m->payload == NULL) return json_object_set_new(o, "value", json_null());
    json_t *v = sio_json_parse(m->payload, m->len, NULL);
    if (v) return json_object_set_new(o, "value", v);
    return sio_kafka_set_bytes(o, "value", m->payload, m->len);
}

json_t *sio_cli_message_json(const rd_kafka_message_t *m) {
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = NULL;
    json_t *o = json_pack("{s:s,s:i,s:I,s:o,s:n,s:o}", "topic", rd_kafka_topic_name(m->rkt),
                          "partition", (int)m->partition, "offset", (json_int_t)m->offset,
                          "timestamp", ts >= 0 ? json_integer(ts) : json_null(), "key",
                          "headers", sio_kafka_headers_json(h));
    if (o && m->key && sio_kafka_set_bytes(o, "key", m->key, m->key_len) == 0 &&
        json_object_get(o, "key_base64"))
        json_object_del(o, "key"); /* only one of key, key_base64 */
    if (o && set_value(o, m) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

void sio_cli_print_json(const json_t *v) {
    char *text = v ? sio_json_dump(v, NULL) : NULL;
    if (text) printf("%s\n", text);
    else fprintf(stderr, "sio-orchestrator: out of memory printing a message\n");
    fflush(stdout);
    free(text);
}

const sio_cli_command sio_cli_topics_cmd = {
    "topics", sio_cli_topics, "", 0, "create the commands, responses and DLQ topics", NULL,
     sio_cli_no_flags};

int sio_cli_topics(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_topics_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    sio_err err;
    char dlq[512];
    const char *topics[] = {cfg->commands_topic, cfg->responses_topic,
                            sio_dlq_topic(cfg->responses_topic, dlq, sizeof dlq)};
    rd_kafka_t *p = sio_cli_producer(cfg, NULL, NULL, &err);
    int created = 0, rc = 1;
    if (p && sio_kafka_check(p, cfg->kafka_brokers, 10000, &err) == 0 &&
        sio_kafka_ensure_topics(p, topics, 3, cfg->topic_partitions, cfg->topic_replication, 15000,
                                &created, &err) == 0) {
        for (int i = 0; i < 3; i++) printf("%s\n", topics[i]);
        printf("created %d of 3 (the others existed)\n", created);
        rc = 0;
    } else {
        sio_cli_fail("topics", 1, "%s", err.msg);
    }
    if (p) rd_kafka_destroy(p);
    sio_config_destroy(cfg);
    return rc;
}

/* A consumer in the configured group (never subscribed: it only reads the
 * group's committed offsets). */
static rd_kafka_t *group_client(const sio_config *cfg, sio_err *err) {
    rd_kafka_conf_t *conf = sio_kafka_conf(cfg->kafka_brokers, cfg->kafka_props_flat, err);
    if (conf && sio_kafka_set(conf, "group.id", cfg->kafka_group_id, err) != 0) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    return conf ? client(conf, RD_KAFKA_CONSUMER, err) : NULL;
}

/* Prints a line per partition and the totals; 0, or -1 with err set. */
static int print_offsets(rd_kafka_t *c, const sio_config *cfg, const sio_cli_part *parts,
                         size_t n, sio_err *err) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].id);
    rd_kafka_resp_err_t e = rd_kafka_committed(c, l, 10000);
    json_int_t lag = 0, end = 0, committed = 0;
    int any = 0;
    for (size_t i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < n; i++) {
        int64_t o = l->elems[i].offset; /* RD_KAFKA_OFFSET_INVALID (-1001): none */
        int64_t from = o >= 0 ? o : parts[i].lo;
        json_t *line = json_pack("{s:s,s:i,s:o,s:I,s:I}", "topic", parts[i].topic, "partition",
                                 (int)parts[i].id, "committed",
                                 o >= 0 ? json_integer(o) : json_null(), "end",
                                 (json_int_t)parts[i].hi, "lag", (json_int_t)(parts[i].hi - from));
        sio_cli_print_json(line);
        json_decref(line);
        lag += parts[i].hi - from, end += parts[i].hi;
        if (o >= 0) committed += o, any = 1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "cannot read the committed offsets of group %s: %s",
                           cfg->kafka_group_id, rd_kafka_err2str(e));
    json_t *total = json_pack("{s:s,s:o,s:I,s:I}", "group", cfg->kafka_group_id, "committed",
                              any ? json_integer(committed) : json_null(), "end", end, "lag", lag);
    sio_cli_print_json(total);
    json_decref(total);
    return 0;
}

const sio_cli_command sio_cli_offsets_cmd = {
    "offsets", sio_cli_offsets, "", 0, "the group's committed offsets and lag on the commands "
     "topic", "One JSON line per partition ({\"committed\": null} when the group has committed "
     "nothing there), then the totals.", sio_cli_no_flags};

int sio_cli_offsets(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_offsets_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    sio_err err;
    sio_cli_part *parts = NULL;
    size_t n = 0;
    rd_kafka_t *c = group_client(cfg, &err);
    int rc = c && sio_cli_partitions(c, cfg->commands_topic, 10000, 0, &parts, &n, &err) == 0 &&
                     print_offsets(c, cfg, parts, n, &err) == 0
                 ? 0
                 : sio_cli_fail("offsets", 1, "%s (brokers %s)", err.msg, cfg->kafka_brokers);
    free(parts);
    if (c) rd_kafka_destroy(c);
    sio_config_destroy(cfg);
    return rc;
}
