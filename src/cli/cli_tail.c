/*
 * cli_tail.c - `tail [TOPIC...]`: every message of the topics given
 * (default: the responses topic and its DLQ) as one JSON line each (the
 * form of sio_cli_message_json), with kcat's habits: -t TOPIC, -o
 * beginning|end|N|-N|s@MS, -e (exit at the end of every partition), -c N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cli.h"
#include "cli_kafka.h"
#include "kafka.h"

/* Where -o starts reading. */
typedef struct start {
    enum { AT_END, AT_BEGINNING, AT_OFFSET, FROM_END, AT_TIME } kind;
    int64_t n;
} start;

static int parse_start(const char *s, start *out) {
    *out = (start){AT_END, 0};
    if (strcmp(s, "end") == 0) return 0;
    if (strcmp(s, "beginning") == 0) return out->kind = AT_BEGINNING, 0;
    out->kind = s[0] == '-' ? FROM_END : strncmp(s, "s@", 2) == 0 ? AT_TIME : AT_OFFSET;
    const char *num = s + (out->kind == FROM_END ? 1 : out->kind == AT_TIME ? 2 : 0);
    if (*num == '\0' || num[strspn(num, "0123456789")] != '\0')
        return sio_cli_fail("tail", -1, "-o: \"%s\" is not beginning, end, N, -N or s@MS", s);
    return sio_cli_count("tail", "-o", num, &out->n);
}

/* Sets each partition's lo to where reading starts. */
static int place(rd_kafka_t *c, sio_cli_part *parts, size_t n, const start *at, sio_err *err) {
    if (at->kind == AT_TIME) return sio_cli_offsets_for_time(c, parts, n, at->n, 10000, err);
    for (size_t i = 0; i < n; i++) {
        sio_cli_part *p = &parts[i];
        int64_t o = at->kind == AT_END        ? p->hi
                    : at->kind == AT_OFFSET   ? at->n
                    : at->kind == FROM_END    ? p->hi - at->n
                                              : p->lo;
        p->lo = o < p->lo ? p->lo : o > p->hi ? p->hi : o;
    }
    return 0;
}

static int assign(rd_kafka_t *c, const sio_cli_part *parts, size_t n) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].id)->offset = parts[i].lo;
    rd_kafka_resp_err_t e = rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* What ends the loop. */
typedef struct stop {
    int64_t max;     /* messages; 0 = no limit */
    int64_t idle_ms; /* 0 = never idle */
    int at_eof;      /* -e */
    int raw;         /* --base64 */
} stop;

/* Index of (topic, partition) in parts, or n. */
static size_t part_index(const sio_cli_part *parts, size_t n, const rd_kafka_message_t *m) {
    const char *t = rd_kafka_topic_name(m->rkt);
    for (size_t i = 0; i < n; i++)
        if (parts[i].id == m->partition && strcmp(parts[i].topic, t) == 0) return i;
    return n;
}

/* --base64: the message with its key and value as key_base64 and
 * value_base64 whatever they hold (null when absent), so a check can read
 * the very bytes written (a strict parser in a test). */
static json_t *message_raw(const rd_kafka_message_t *m) {
    json_t *j = sio_cli_message_json(m);
    if (j == NULL) return NULL;
    char *k = m->key ? sio_base64_encode(m->key, m->key_len) : NULL;
    char *v = m->payload ? sio_base64_encode(m->payload, m->len) : NULL;
    json_object_del(j, "key");
    json_object_del(j, "value");
    json_object_set_new(j, "key_base64", k ? json_string(k) : json_null());
    json_object_set_new(j, "value_base64", v ? json_string(v) : json_null());
    free(k);
    free(v);
    return j;
}

/* Prints messages until a stop condition; -e counts partitions at their
 * end (a message after the end makes that partition unfinished again). */
static void consume(rd_kafka_t *c, const sio_cli_part *parts, size_t n, const stop *st) {
    char *eof = calloc(n ? n : 1, 1);
    size_t at_end = 0;
    int64_t seen = 0;
    /* --idle counts from the last message; the first fetch after the
     * assignment gets a 2 s grace so a slow start is not "idle". */
    int64_t last = sio_cli_now_ms() + (st->idle_ms ? 2000 : 0);
    while (!sio_cli_interrupted && eof && (st->max == 0 || seen < st->max) &&
           (st->idle_ms == 0 || sio_cli_now_ms() - last < st->idle_ms) &&
           !(st->at_eof && at_end == n)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) continue;
        size_t i = part_index(parts, n, m);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (i < n && !eof[i]) eof[i] = 1, at_end++;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (i < n && eof[i]) eof[i] = 0, at_end--;
            json_t *j = st->raw ? message_raw(m) : sio_cli_message_json(m);
            sio_cli_print_json(j);
            json_decref(j);
            seen++, last = sio_cli_now_ms();
        } else {
            fprintf(stderr, "sio-orchestrator tail: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    free(eof);
}

/* The topics: -t flags, then arguments; default responses + its DLQ. */
static size_t topics_of(const sio_config *cfg, const char **out, size_t cap, char *dlq, size_t dn) {
    size_t n = 0;
    for (size_t i = 0; i < cfg->nextra && n < cap; i++)
        if (strcmp(cfg->extra[i].key, "--topic") == 0) out[n++] = cfg->extra[i].val;
    for (size_t i = 0; i < cfg->nargs && n < cap; i++) out[n++] = cfg->args[i];
    if (n == 0) {
        out[n++] = cfg->responses_topic;
        out[n++] = sio_dlq_topic(cfg->responses_topic, dlq, dn);
    }
    return n;
}

/* Reads the flags into at and st; -1 after printing why. */
static int options(const sio_config *cfg, start *at, stop *st) {
    const char *o = sio_config_extra(cfg, "--offset"), *max = sio_config_extra(cfg, "--max");
    const char *idle = sio_config_extra(cfg, "--idle");
    sio_err err;
    *at = (start){sio_config_extra(cfg, "--from-beginning") ? AT_BEGINNING : AT_END, 0};
    *st = (stop){0, 0, sio_config_extra(cfg, "--exit") != NULL,
                 sio_config_extra(cfg, "--base64") != NULL};
    if (o && sio_config_extra(cfg, "--from-beginning"))
        return sio_cli_fail("tail", -1, "-o and --from-beginning: give one");
    if ((o && parse_start(o, at) != 0) || (max && sio_cli_count("tail", "-c", max, &st->max) != 0))
        return -1;
    if (idle && sio_parse_duration_ms(idle, &st->idle_ms, &err) != 0)
        return sio_cli_fail("tail", -1, "--idle: %s", err.msg);
    return 0;
}

static const sio_cli_flag tail_flags[] = {
    {"--topic", "-t", "TOPIC", "a topic to read (repeatable; topics may also be given as "
                               "arguments; default: the responses topic and its DLQ)"},
    {"--offset", "-o", "WHERE", "where to start in each partition: end (default), beginning, "
                                "N (offset N), -N (N messages before the end), s@MS (the first "
                                "message at or after time MS, epoch milliseconds)"},
    {"--from-beginning", NULL, NULL, "the same as -o beginning"},
    {"--exit", "-e", NULL, "exit once every partition has been read to its end"},
    {"--max", "-c", "N", "exit after N messages"},
    {"--idle", NULL, "DURATION", "exit after that long without a message (the first 2 s do not "
                                 "count)"},
    {"--base64", NULL, NULL, "print the key and value of every message in base64 "
                             "(\"key_base64\", \"value_base64\"): the bytes exactly as stored"},
    {NULL, NULL, NULL, NULL}};

const sio_cli_command sio_cli_tail_cmd = {
    "tail", sio_cli_tail, "[TOPIC...]", -1, "print messages as JSON lines (default: the "
     "responses topic and its DLQ)",
     "Each line: {\"topic\", \"partition\", \"offset\", \"timestamp\" (ms or null), \"key\" "
     "(null when none), \"headers\": [{\"key\", \"value\"}], \"value\"}.  A value that is "
     "JSON is shown as JSON, other text as a string; a key, header value or value that is not "
     "UTF-8 text is given in base64 instead (\"key_base64\", \"value_base64\").", tail_flags};

int sio_cli_tail(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_tail_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    start at;
    stop st;
    if (options(cfg, &at, &st) != 0) {
        sio_config_destroy(cfg);
        return 2;
    }
    const char *topics[64];
    char dlq[512];
    size_t nt = topics_of(cfg, topics, 64, dlq, sizeof dlq), n = 0;
    sio_cli_part *parts = NULL;
    sio_err err;
    rd_kafka_t *c = sio_cli_consumer(cfg, st.at_eof, &err);
    int rc = c ? 0 : -1;
    for (size_t t = 0; rc == 0 && t < nt; t++)
        rc = sio_cli_partitions(c, topics[t], 10000, 0, &parts, &n, &err);
    if (rc == 0) rc = place(c, parts, n, &at, &err);
    if (rc == 0 && assign(c, parts, n) != 0) rc = sio_err_set(&err, SIO_E_KAFKA, "cannot assign");
    if (rc == 0) {
        sio_cli_catch_interrupts();
        consume(c, parts, n, &st);
    } else {
        sio_cli_fail("tail", 1, "%s", err.msg);
    }
    free(parts);
    if (c) rd_kafka_destroy(c);
    sio_config_destroy(cfg);
    return rc == 0 ? 0 : 1;
}
