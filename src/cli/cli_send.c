/*
 * cli_send.c - `send`: publish commands.
 *
 * send WORKFLOW   builds {"correlation_id", "workflow", "reply_topic"?,
 *                 "attrs"} (attrs checked: one strict JSON object),
 *                 publishes it keyed by the correlation id, then waits on
 *                 the reply topic and its DLQ for messages with that key,
 *                 printing each (the form of `tail`).  Exit 0 on success,
 *                 1 on a DLQ entry or a failed delivery, 3 on timeout.
 * send --raw B    publishes the bytes B as they are; does not wait.
 * send --lines F  publishes each line of F as one message, keyed by its
 *                 correlation_id when the line is a JSON object that has
 *                 one; a progress line on a terminal; waits for every
 *                 delivery report, not for outcomes.  Exit 1 when any
 *                 message was not delivered.
 *
 * kcat's habits: -t TOPIC, -H KEY=VALUE (every message), -K DELIM (key and
 * value from --raw or each line), -c N (at most N lines).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cli.h"
#include "cli_kafka.h"
#include "json.h"
#include "kafka.h"
#include "progress.h"
#include "worker.h"

/* Delivery reports of one run (the producer's opaque). */
typedef struct deliveries {
    int64_t ok, failed;
    char first_error[256];
} deliveries;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    deliveries *d = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) d->ok++;
    else if (d->failed++ == 0)
        snprintf(d->first_error, sizeof d->first_error, "%s", rd_kafka_err2str(m->err));
}

/* What one run sends with every message. */
typedef struct sending {
    rd_kafka_t *producer;
    const char *topic;
    rd_kafka_headers_t *headers; /* from -H, copied per message; NULL when none */
    const char *key_delim;       /* -K, or NULL */
    deliveries dr;
} sending;

/* The -H / --header flags in order: "KEY=VALUE", or "KEY" for a header
 * without a value (as kcat). */
static rd_kafka_headers_t *flag_headers(const sio_config *cfg) {
    rd_kafka_headers_t *h = NULL;
    for (size_t i = 0; i < cfg->nextra; i++) {
        if (strcmp(cfg->extra[i].key, "--header") != 0) continue;
        const char *kv = cfg->extra[i].val, *eq = strchr(kv, '=');
        if (h == NULL) h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, kv, eq ? eq - kv : -1, eq ? eq + 1 : NULL, eq ? -1 : 0);
    }
    return h;
}

/* Queues one message, waiting while librdkafka's queue is full. */
static rd_kafka_resp_err_t produce(sending *s, const void *key, size_t klen, const void *val,
                                   size_t vlen) {
    rd_kafka_resp_err_t e;
    for (;;) {
        rd_kafka_headers_t *h = s->headers ? rd_kafka_headers_copy(s->headers) : NULL;
        e = rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(s->topic),
                              RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (h) rd_kafka_headers_destroy(h); /* not taken over on failure */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(s->producer, 50);
    }
    rd_kafka_poll(s->producer, 0);
    return e;
}

/* Produces a --raw value or a --lines line: split at -K when given,
 * otherwise keyed by the correlation_id of a JSON object. */
static rd_kafka_resp_err_t produce_text(sending *s, const char *text, size_t len) {
    if (s->key_delim) {
        const char *d = memmem(text, len, s->key_delim, strlen(s->key_delim));
        if (d == NULL) return produce(s, NULL, 0, text, len);
        size_t after = (size_t)(d - text) + strlen(s->key_delim);
        return produce(s, text, (size_t)(d - text), text + after, len - after);
    }
    json_t *v = sio_json_parse(text, len, NULL);
    const json_t *cid = json_object_get(v, "correlation_id");
    rd_kafka_resp_err_t e = produce(s, json_string_value(cid),
                                    json_is_string(cid) ? json_string_length(cid) : 0, text, len);
    json_decref(v);
    return e;
}

/* Waits for every delivery report; 0 when all were delivered. */
static int flush_all(sending *s, sio_err *err) {
    rd_kafka_resp_err_t e = rd_kafka_flush(s->producer, 60000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "%d messages not delivered within 60 s: %s",
                           rd_kafka_outq_len(s->producer), rd_kafka_err2str(e));
    if (s->dr.failed)
        return sio_err_set(err, SIO_E_KAFKA, "%lld messages not delivered to %s: %s",
                           (long long)s->dr.failed, s->topic, s->dr.first_error);
    return 0;
}

/* The size of f when it is a regular file, else 0 (no percentage). */
static long long file_size(FILE *f) {
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
}

/* send --lines FILE ("-" = stdin). */
static int send_lines(sending *s, const char *path, int64_t max, sio_err *err) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) return sio_err_set(err, SIO_E_IO, "cannot open %s", path);
    long long size = file_size(f), done = 0;
    sio_progress pg;
    sio_progress_start(&pg, stderr);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t n = 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    while (!sio_cli_interrupted && (max == 0 || n < max) && (len = getline(&line, &cap, f)) > 0) {
        done += len;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if ((e = produce_text(s, line, (size_t)len)) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
        n++;
        sio_progress_draw(&pg, "sent %lld, delivered %lld, failed %lld, %lld/s%s%.0f%s",
                          (long long)n, (long long)s->dr.ok, (long long)s->dr.failed,
                          (long long)(n * 1000 / sio_progress_elapsed_ms(&pg)),
                          size ? ", " : "", size ? 100.0 * (double)done / (double)size : 0.0,
                          size ? "% of the file" : "");
    }
    free(line);
    if (f != stdin) fclose(f);
    int rc = flush_all(s, err);
    sio_progress_erase(&pg);
    printf("sent %lld commands to %s", (long long)n, s->topic);
    if (s->dr.failed) printf(" (%lld not delivered)", (long long)s->dr.failed);
    printf("\n");
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = sio_err_set(err, SIO_E_KAFKA, "line %lld not queued: %s", (long long)n + 1,
                         rd_kafka_err2str(e));
    return rc;
}

/* Waits for messages keyed cid on the reply topic and its DLQ: 0 on a
 * success, 1 on a DLQ entry, 3 when nothing decided within timeout_ms. */
static int await_outcome(rd_kafka_t *c, const char *cid, const char *dlq, int64_t timeout_ms) {
    int64_t deadline = sio_cli_now_ms() + timeout_ms;
    size_t cl = strlen(cid);
    while (!sio_cli_interrupted && sio_cli_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) continue;
        int rc = -1;
        if (m->err == 0 && m->key_len == cl && memcmp(m->key, cid, cl) == 0) {
            json_t *j = sio_cli_message_json(m);
            sio_cli_print_json(j);
            const char *status = json_string_value(json_object_get(json_object_get(j, "value"),
                                                                   "status"));
            if (strcmp(rd_kafka_topic_name(m->rkt), dlq) == 0) rc = 1;
            else if (status && strcmp(status, "success") == 0) rc = 0;
            json_decref(j);
        }
        rd_kafka_message_destroy(m);
        if (rc >= 0) return rc;
    }
    fprintf(stderr, "sio-orchestrator send: no outcome for %s within %lld ms\n", cid,
            (long long)timeout_ms);
    return 3;
}

/* Assigns the reply topic and its DLQ at their ends (created when
 * missing), so nothing published from now on is missed. */
static int listen_at_end(const sio_config *cfg, rd_kafka_t *c, rd_kafka_t *p,
                         const char *const topics[2], sio_err *err) {
    sio_cli_part *parts = NULL;
    size_t n = 0;
    int rc = 0;
    for (int t = 0; t < 2 && rc == 0; t++) {
        rc = sio_cli_partitions(c, topics[t], 10000, 0, &parts, &n, err);
        if (rc != 0 && err->code == SIO_E_NOTFOUND &&
            sio_kafka_ensure_topics(p, &topics[t], 1, cfg->topic_partitions,
                                    cfg->topic_replication, 10000, NULL, err) == 0)
            rc = sio_cli_partitions(c, topics[t], 10000, 1, &parts, &n, err);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].id)->offset = parts[i].hi;
    if (rc == 0 && rd_kafka_assign(c, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = sio_err_set(err, SIO_E_KAFKA, "cannot assign %s", topics[0]);
    rd_kafka_topic_partition_list_destroy(l);
    free(parts);
    return rc;
}

static void random_id(char *out, size_t n) {
    unsigned char b[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    for (size_t i = got; i < sizeof b; i++) b[i] = (unsigned char)rand();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* The command for send WORKFLOW, NULL after printing why (usage). */
static json_t *command_of(const sio_config *cfg) {
    const char *text = sio_config_extra(cfg, "--attrs"), *reply = sio_config_extra(cfg, "--reply-topic");
    const char *given = sio_config_extra(cfg, "--correlation-id");
    char cid[64];
    sio_err err;
    json_t *attrs = sio_run_attrs(text, text ? strlen(text) : 0, &err);
    if (attrs == NULL) {
        sio_cli_fail("send", 2, "--attrs %s: %s", text, err.msg);
        return NULL;
    }
    if (given == NULL) random_id(cid, sizeof cid);
    json_t *cmd = json_pack("{s:s,s:s}", "correlation_id", given ? given : cid, "workflow",
                            cfg->args[0]);
    if (cmd == NULL) sio_cli_fail("send", 2, "--correlation-id and WORKFLOW must be UTF-8 text");
    if (cmd && reply) json_object_set_new(cmd, "reply_topic", json_string(reply));
    if (cmd) json_object_set_new(cmd, "attrs", attrs);
    else json_decref(attrs);
    return cmd;
}

/* send WORKFLOW: publish cmd (borrowed), then wait for the outcome. */
static int send_command(const sio_config *cfg, sending *s, const json_t *cmd, int64_t wait_ms) {
    const char *cid = json_string_value(json_object_get(cmd, "correlation_id"));
    const char *reply = sio_config_extra(cfg, "--reply-topic");
    char dlq[512];
    const char *topics[2] = {reply ? reply : cfg->responses_topic, NULL};
    topics[1] = sio_dlq_topic(topics[0], dlq, sizeof dlq);
    size_t len;
    char *text = sio_json_dump(cmd, &len);
    sio_err err;
    rd_kafka_t *c = sio_cli_consumer(cfg, 0, &err);
    int rc = 1;
    if (text == NULL || c == NULL || listen_at_end(cfg, c, s->producer, topics, &err) != 0 ||
        produce(s, cid, strlen(cid), text, len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        flush_all(s, &err) != 0)
        sio_cli_fail("send", 1, "%s", text ? err.msg : "out of memory");
    else
        rc = await_outcome(c, cid, dlq, wait_ms);
    if (c) rd_kafka_destroy(c);
    free(text);
    return rc;
}

/* Checks which mode the flags ask for; -1 after printing why. */
static int check_mode(const sio_config *cfg) {
    const char *raw = sio_config_extra(cfg, "--raw"), *lines = sio_config_extra(cfg, "--lines");
    if (raw && lines) return sio_cli_fail("send", -1, "--raw and --lines: give one");
    if ((raw || lines) && cfg->nargs)
        return sio_cli_fail("send", -1, "a WORKFLOW and %s: give one", raw ? "--raw" : "--lines");
    if (!raw && !lines && cfg->nargs != 1)
        return sio_cli_fail("send", -1, "a WORKFLOW is required (or --raw, or --lines)");
    if (!raw && !lines && sio_config_extra(cfg, "--key-delimiter"))
        return sio_cli_fail("send", -1, "-K applies to --raw and --lines only");
    if (!lines && sio_config_extra(cfg, "--max"))
        return sio_cli_fail("send", -1, "-c applies to --lines only");
    const char *d = sio_config_extra(cfg, "--key-delimiter");
    if (d && *d == '\0') return sio_cli_fail("send", -1, "-K: the delimiter is empty");
    return 0;
}

/* send --raw BYTES: one message, no wait. */
static int send_raw(sending *s, const char *raw, sio_err *err) {
    rd_kafka_resp_err_t e = produce_text(s, raw, strlen(raw));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "not queued: %s", rd_kafka_err2str(e));
    if (flush_all(s, err) != 0) return -1;
    printf("sent %zu raw bytes to %s\n", strlen(raw), s->topic);
    return 0;
}

/* Reads --wait and -c; -1 after printing why. */
static int numbers(const sio_config *cfg, int64_t *wait_ms, int64_t *max) {
    const char *w = sio_config_extra(cfg, "--wait"), *m = sio_config_extra(cfg, "--max");
    sio_err err;
    if (m && sio_cli_count("send", "-c", m, max) != 0) return -1;
    if (w && sio_parse_duration_ms(w, wait_ms, &err) != 0)
        return sio_cli_fail("send", -1, "--wait: %s", err.msg);
    return 0;
}

static const sio_cli_flag send_flags[] = {
    {"--attrs", NULL, "JSON", "the command's attrs, a JSON object (default {})"},
    {"--correlation-id", NULL, "ID", "the correlation id, also the Kafka key (default: a random "
                                     "UUID)"},
    {"--reply-topic", NULL, "TOPIC", "the command's reply_topic (default: the responses topic)"},
    {"--wait", NULL, "DURATION", "how long to wait for the outcome (default 30s)"},
    {"--raw", NULL, "BYTES", "send BYTES as they are and do not wait"},
    {"--lines", NULL, "FILE", "send each line of FILE (- for stdin) as one message and do not "
                              "wait; the key is the line's correlation_id; a progress line on a "
                              "terminal"},
    {"--topic", "-t", "TOPIC", "the topic to send to (default: the commands topic)"},
    {"--header", "-H", "KEY=VALUE", "a Kafka header on every message sent (repeatable; KEY "
                                    "alone: a header without a value)"},
    {"--key-delimiter", "-K", "DELIM", "with --lines or --raw: what comes before the first "
                                       "DELIM is the key, the rest the value"},
    {"--max", "-c", "N", "with --lines: send at most N messages"},
    {NULL, NULL, NULL, NULL}};

const sio_cli_command sio_cli_send_cmd = {
    "send", sio_cli_send, "WORKFLOW", 1, "publish a command and wait for its outcome",
     "Prints each message keyed by the correlation id on the reply topic and its DLQ as a JSON "
     "line (the form of `tail`).\nExit codes: 0 success, 1 a DLQ entry or a message not "
     "delivered, 2 usage, 3 no outcome in time.", send_flags};

int sio_cli_send(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_send_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    int64_t wait_ms = 30000, max = 0;
    const char *raw = sio_config_extra(cfg, "--raw"), *lines = sio_config_extra(cfg, "--lines");
    json_t *cmd = NULL; /* checked before anything connects */
    if (check_mode(cfg) != 0 || numbers(cfg, &wait_ms, &max) != 0 ||
        (!raw && !lines && (cmd = command_of(cfg)) == NULL)) {
        sio_config_destroy(cfg);
        return 2;
    }
    const char *t = sio_config_extra(cfg, "--topic");
    sending s = {.topic = t ? t : cfg->commands_topic,
                 .headers = flag_headers(cfg),
                 .key_delim = sio_config_extra(cfg, "--key-delimiter")};
    sio_err err;
    s.producer = sio_cli_producer(cfg, on_delivery, &s.dr, &err);
    sio_cli_catch_interrupts();
    int rc = 1;
    if (s.producer == NULL || sio_kafka_check(s.producer, cfg->kafka_brokers, 10000, &err) != 0)
        sio_cli_fail("send", 1, "%s", err.msg);
    else if (lines || raw)
        rc = (lines ? send_lines(&s, lines, max, &err) : send_raw(&s, raw, &err)) == 0
                 ? 0
                 : sio_cli_fail("send", 1, "%s", err.msg);
    else
        rc = send_command(cfg, &s, cmd, wait_ms);
    json_decref(cmd);
    if (s.producer) rd_kafka_destroy(s.producer);
    if (s.headers) rd_kafka_headers_destroy(s.headers);
    sio_config_destroy(cfg);
    return rc;
}
