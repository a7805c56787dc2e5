/*
 * cli_replay.c - `replay`: send dead-lettered commands again.
 *
 * Reads the DLQ (default: the responses topic's) from the start of each
 * partition, or from --from-offset / --since, up to the end it had when
 * replay started (or --to-offset / --until), so entries written while it
 * runs - a replayed command failing again - are never read by the same
 * run.  Each entry that matches the filters and can be replayed is claimed
 * in Redis (replay_mark.h), then its command (replay.h: as received, with
 * its headers and SIO_REPLAY_HEADER) is produced to the target, keyed by
 * its correlation id, at most --rate a second.  The mark becomes
 * "replayed" when the delivery report succeeds.
 *
 * stdout: one JSON line per matching entry, when its outcome is known:
 *   {"dlq": {"topic", "partition", "offset"}, "correlation_id", "workflow",
 *    "error_class", "error", "result": "replayed" | "would_replay" |
 *    "already_replayed" | "failed", "reason"?, "mark"?, "target"?}
 * then a summary line {"summary": {...counts...}}.  stderr: a progress line
 * on a terminal.  Exit 0 when every matching entry was replayed (now or
 * before), 1 when any was not, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_kafka.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "progress.h"
#include "replay.h"
#include "replay_mark.h"

#define DEFAULT_RATE 100 /* commands a second */

/* What the flags ask for. */
typedef struct request {
    const char *dlq, *target;
    int64_t partition;         /* -1 = all */
    int64_t from_offset, to_offset; /* -1 = not given */
    int64_t since, until;      /* epoch ms; -1 = not given */
    int64_t max, rate;         /* 0 = no limit */
    int dry_run, force;
    sio_replay_filter filter;
} request;

typedef struct counts {
    int64_t read, matched, replayed, would_replay, already, failed;
} counts;

/* One run. */
typedef struct run {
    const request *rq;
    rd_kafka_t *consumer, *producer; /* producer NULL on a dry run */
    sio_replay_marks *marks;
    sio_cli_part *parts;             /* lo = next offset to read, hi = stop (exclusive) */
    size_t nparts, open;             /* partitions not finished */
    char *finished;                  /* per partition */
    counts n;
    int64_t sent, first_ms, total; /* first_ms: when the first command went */
    sio_progress progress;
} run;

/* A replayed entry waiting for its delivery report (the message opaque). */
typedef struct pending {
    run *r;
    json_t *line;   /* the line to print */
    int32_t partition;
    int64_t offset;
    char *previous; /* the mark a --force claim replaced (malloc'd), or NULL */
} pending;

static void pending_free(pending *p) {
    free(p->previous);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */

/* The line of an entry, its result still null. */
static json_t *entry_line(const run *r, const rd_kafka_message_t *m, const sio_replay_entry *e) {
    json_t *o = json_pack("{s:{s:s,s:i,s:I},s:n}", "dlq", "topic", r->rq->dlq, "partition",
                          (int)m->partition, "offset", (json_int_t)m->offset, "result");
    const char *fields[] = {"correlation_id", e->correlation_id, "workflow", e->workflow,
                            "error_class", e->error_class, "error", e->error};
    for (size_t i = 0; o && i < 8; i += 2)
        json_object_set_new(o, fields[i], fields[i + 1] ? json_string(fields[i + 1]) : json_null());
    return o;
}

/* Sets result (and reason when not NULL), prints and frees line. */
static void finish_line(run *r, json_t *line, const char *result, const char *reason) {
    json_object_set_new(line, "result", json_string(result));
    if (reason) json_object_set_new(line, "reason", json_string(reason));
    sio_progress_erase(&r->progress); /* stdout may be the same terminal */
    sio_cli_print_json(line);
    json_decref(line);
}

static void draw(run *r) {
    int64_t done = r->n.read;
    sio_progress_draw(&r->progress,
                      "read %lld of %lld, %s %lld, already replayed %lld, failed %lld, %lld/s",
                      (long long)done, (long long)r->total,
                      r->rq->dry_run ? "would replay" : "replayed",
                      (long long)(r->rq->dry_run ? r->n.would_replay : r->n.replayed),
                      (long long)r->n.already, (long long)r->n.failed,
                      (long long)(r->sent * 1000 / sio_progress_elapsed_ms(&r->progress)));
}

static void print_summary(const run *r, int interrupted_now) {
    json_t *s = json_pack("{s:{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I}}", "summary", "dlq", r->rq->dlq,
                          "target", r->rq->target, "dry_run", r->rq->dry_run, "read",
                          (json_int_t)r->n.read, "matched", (json_int_t)r->n.matched,
                          r->rq->dry_run ? "would_replay" : "replayed",
                          (json_int_t)(r->rq->dry_run ? r->n.would_replay : r->n.replayed),
                          "already_replayed", (json_int_t)r->n.already, "failed",
                          (json_int_t)r->n.failed);
    if (s && interrupted_now)
        json_object_set_new(json_object_get(s, "summary"), "interrupted", json_true());
    sio_cli_print_json(s);
    json_decref(s);
}

/* ------------------------------------------------------------------------ */
/* Delivery                                                                  */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    pending *p = m->_private;
    run *r = p->r;
    sio_replay_key k = {r->rq->dlq, p->partition, p->offset};
    sio_err err;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        json_object_set_new(p->line, "target",
                            json_pack("{s:s,s:i,s:I}", "topic", r->rq->target, "partition",
                                      (int)m->partition, "offset", (json_int_t)m->offset));
        if (sio_replay_mark_done(r->marks, &k, r->rq->target, m->partition, m->offset, &err) == 0) {
            r->n.replayed++;
            finish_line(r, p->line, "replayed", NULL);
        } else { /* in Kafka, but the mark still says "sending": report it */
            r->n.failed++;
            finish_line(r, p->line, "failed", err.msg);
        }
    } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        /* Purged after the flush timed out while on its way: it may still
         * be in Kafka, so the mark stays "sending" (never sent twice). */
        r->n.failed++;
        finish_line(r, p->line, "failed", "no delivery report in time: it may have been "
                                       "delivered; the mark stays \"sending\"");
    } else {
        char why[600];
        snprintf(why, sizeof why, "not delivered to %s: %s", r->rq->target,
                 rd_kafka_err2str(m->err));
        if (sio_replay_mark_drop(r->marks, &k, p->previous, &err) != 0)
            snprintf(why + strlen(why), sizeof why - strlen(why), "; %s", err.msg);
        r->n.failed++;
        finish_line(r, p->line, "failed", why);
    }
    pending_free(p);
}

/* Waits until the next command may go (--rate), serving delivery
 * reports meanwhile. */
static void pace(run *r) {
    if (r->rq->rate <= 0) return;
    if (r->sent == 0) r->first_ms = sio_cli_now_ms();
    int64_t due = r->first_ms + r->sent * 1000 / r->rq->rate;
    for (int64_t now = sio_cli_now_ms(); now < due && !sio_cli_interrupted; now = sio_cli_now_ms())
        rd_kafka_poll(r->producer, (int)(due - now));
}

/* Produces e's command; line and previous (see pending) are taken over. */
static void send_entry(run *r, const rd_kafka_message_t *m, const sio_replay_entry *e,
                       json_t *line, char *previous) {
    sio_replay_key k = {r->rq->dlq, m->partition, m->offset};
    sio_err ignored;
    pending *p = malloc(sizeof *p);
    if (p == NULL) {
        sio_replay_mark_drop(r->marks, &k, previous, &ignored);
        free(previous);
        r->n.failed++;
        finish_line(r, line, "failed", "out of memory");
        return;
    }
    *p = (pending){r, line, m->partition, m->offset, previous};
    pace(r);
    rd_kafka_headers_t *h = sio_replay_headers(e, r->rq->dlq, m->partition, m->offset);
    const char *key = e->correlation_id;
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->rq->target),
                                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                    RD_KAFKA_V_VALUE(e->command, e->command_len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(p),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(r->producer, 100);
    r->sent++;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_poll(r->producer, 0);
        return;
    }
    rd_kafka_headers_destroy(h); /* not taken over on failure */
    sio_replay_mark_drop(r->marks, &k, p->previous, &ignored);
    r->n.failed++;
    finish_line(r, line, "failed", rd_kafka_err2str(err));
    pending_free(p);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */

/* Claims entry k (a dry run only looks): 0 claimed (or free), 1 marked
 * already (the mark in *seen), -1 on a Redis error.  With --force *seen
 * is the mark the claim replaced. */
static int claim(run *r, const sio_replay_key *k, char **seen, sio_err *err) {
    if (r->rq->dry_run) return r->rq->force ? 0 : sio_replay_mark_peek(r->marks, k, seen, err);
    return sio_replay_mark_claim(r->marks, k, r->rq->target, r->rq->force, seen, err);
}

/* An entry marked already: replayed before, or claimed by a run that
 * never reported (it may have died after sending: not sent again). */
static void report_marked(run *r, json_t *line, const char *seen) {
    json_t *mark = sio_json_parse(seen, strlen(seen), NULL);
    const char *state = json_string_value(json_object_get(mark, "state"));
    int done = state && strcmp(state, "replayed") == 0;
    json_object_set_new(line, "mark", mark ? mark : json_string(seen));
    if (done) {
        r->n.already++;
        finish_line(r, line, "already_replayed", NULL);
    } else {
        r->n.failed++;
        finish_line(r, line, "failed", "another replay claimed this entry and has not reported "
                                       "its delivery (if it died, check the target and replay "
                                       "this entry with --force)");
    }
}

/* Replays (or, on a dry run, reports) one matching entry. */
static void handle_match(run *r, const rd_kafka_message_t *m, const sio_replay_entry *e) {
    json_t *line = entry_line(r, m, e);
    sio_replay_key k = {r->rq->dlq, m->partition, m->offset};
    char *seen = NULL;
    sio_err err;
    int marked = e->why[0] ? 0 : claim(r, &k, &seen, &err);
    if (e->why[0]) {
        r->n.failed++;
        finish_line(r, line, "failed", e->why);
    } else if (marked < 0) {
        r->n.failed++;
        finish_line(r, line, "failed", err.msg);
    } else if (marked > 0) {
        report_marked(r, line, seen);
    } else if (r->rq->dry_run) {
        r->n.would_replay++;
        r->sent++;
        finish_line(r, line, "would_replay", NULL);
    } else {
        send_entry(r, m, e, line, seen); /* seen: the mark --force replaced */
        seen = NULL;
    }
    free(seen);
}

/* Marks partition i finished. */
static void close_part(run *r, size_t i) {
    if (i < r->nparts && !r->finished[i]) r->finished[i] = 1, r->open--;
}

static size_t part_of(const run *r, int32_t partition) {
    for (size_t i = 0; i < r->nparts; i++)
        if (r->parts[i].id == partition) return i;
    return r->nparts;
}

/* One message of the DLQ. */
static void handle_message(run *r, const rd_kafka_message_t *m) {
    size_t i = part_of(r, m->partition);
    if (i == r->nparts || r->finished[i]) return;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) { /* at the end it had at start, or later */
        close_part(r, i);
        return;
    }
    if (m->err) {
        fprintf(stderr, "sio-orchestrator replay: %s\n", rd_kafka_message_errstr(m));
        return;
    }
    if (m->offset >= r->parts[i].hi) {
        close_part(r, i);
        return;
    }
    if (m->offset + 1 >= r->parts[i].hi) close_part(r, i);
    r->n.read++;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if ((r->rq->since >= 0 && ts < r->rq->since) || (r->rq->until >= 0 && ts >= r->rq->until))
        return;
    sio_replay_entry e;
    sio_replay_entry_read(m->payload, m->len, &e);
    if (sio_replay_match(&e, &r->rq->filter)) {
        r->n.matched++;
        handle_match(r, m, &e);
    }
    sio_replay_entry_clear(&e);
}

/* Has --max been reached? */
static int enough(const run *r) {
    return r->rq->max > 0 && r->sent >= r->rq->max;
}

static void read_all(run *r) {
    while (r->open > 0 && !sio_cli_interrupted && !enough(r)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 100);
        if (r->producer) rd_kafka_poll(r->producer, 0);
        if (m) {
            handle_message(r, m);
            rd_kafka_message_destroy(m);
        }
        draw(r);
    }
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                    */

/* Where each partition starts and stops: [from, until) clipped to what the
 * partition holds now. */
static int plan(run *r, sio_err *err) {
    const request *rq = r->rq;
    size_t n = 0;
    for (size_t i = 0; i < r->nparts; i++)
        if (rq->partition < 0 || r->parts[i].id == rq->partition) r->parts[n++] = r->parts[i];
    if (n == 0)
        return sio_err_set(err, SIO_E_NOTFOUND, "topic %s has no partition %lld", rq->dlq,
                           (long long)rq->partition);
    r->nparts = n;
    sio_cli_part *t = malloc(n * sizeof *t);
    if (t == NULL) return sio_err_set(err, SIO_E_NOMEM, "out of memory");
    memcpy(t, r->parts, n * sizeof *t);
    int rc = 0;
    if (rq->since >= 0) rc = sio_cli_offsets_for_time(r->consumer, r->parts, n, rq->since, 10000, err);
    if (rc == 0 && rq->until >= 0) rc = sio_cli_offsets_for_time(r->consumer, t, n, rq->until, 10000, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sio_cli_part *p = &r->parts[i];
        int64_t stop = rq->until >= 0 && t[i].lo < p->hi ? t[i].lo : p->hi;
        if (rq->to_offset >= 0 && rq->to_offset + 1 < stop) stop = rq->to_offset + 1;
        if (rq->from_offset > p->lo) p->lo = rq->from_offset;
        p->hi = stop;
        r->total += p->hi > p->lo ? p->hi - p->lo : 0;
    }
    free(t);
    return rc;
}

/* Assigns the partitions that have anything to read. */
static int start_reading(run *r, sio_err *err) {
    r->finished = calloc(r->nparts ? r->nparts : 1, 1);
    if (r->finished == NULL) return sio_err_set(err, SIO_E_NOMEM, "out of memory");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->nparts);
    r->open = r->nparts;
    for (size_t i = 0; i < r->nparts; i++) {
        if (r->parts[i].lo >= r->parts[i].hi) close_part(r, i);
        else rd_kafka_topic_partition_list_add(l, r->rq->dlq, r->parts[i].id)->offset = r->parts[i].lo;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(r->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "assigning %s: %s", r->rq->dlq, rd_kafka_err2str(e));
    return 0;
}

/* How long marks live: the DLQ's retention.ms (0 = forever). */
static int64_t mark_ttl(rd_kafka_t *rk, const char *dlq) {
    char v[32];
    sio_err err;
    if (sio_kafka_topic_config(rk, dlq, "retention.ms", v, sizeof v, 10000, &err) != 0) {
        fprintf(stderr, "sio-orchestrator replay: %s; replay marks will not expire\n", err.msg);
        return 0;
    }
    long long ms = atoll(v);
    return ms > 0 ? ms : 0;
}

/* Connects everything a run needs; -1 with err. */
static int open_run(run *r, const sio_config *cfg, sio_err *err) {
    r->consumer = sio_cli_consumer(cfg, 1, err);
    if (r->consumer == NULL || sio_kafka_check(r->consumer, cfg->kafka_brokers, 10000, err) != 0 ||
        sio_cli_partitions(r->consumer, r->rq->dlq, 10000, 0, &r->parts, &r->nparts, err) != 0 ||
        plan(r, err) != 0)
        return -1;
    if (!r->rq->dry_run && (r->producer = sio_cli_producer(cfg, on_delivery, NULL, err)) == NULL)
        return -1;
    r->marks = sio_replay_marks_open(cfg, mark_ttl(r->consumer, r->rq->dlq), err);
    return r->marks && start_reading(r, err) == 0 ? 0 : -1;
}

static void close_run(run *r) {
    if (r->producer) rd_kafka_destroy(r->producer); /* after the flush: nothing pending */
    if (r->consumer) rd_kafka_destroy(r->consumer);
    sio_replay_marks_close(r->marks);
    free(r->parts);
    free(r->finished);
}

/* ------------------------------------------------------------------------ */
/* Flags                                                                     */

static int count_flag(const sio_config *cfg, const char *flag, int64_t *out) {
    const char *v = sio_config_extra(cfg, flag);
    *out = -1;
    return v ? sio_cli_count("replay", flag, v, out) : 0;
}

static int time_flag(const sio_config *cfg, const char *flag, int64_t *out) {
    const char *v = sio_config_extra(cfg, flag);
    sio_err err;
    *out = -1;
    if (v && sio_replay_parse_time(v, sio_wall_ms(), out, &err) != 0)
        return sio_cli_fail("replay", -1, "%s: %s", flag, err.msg);
    return 0;
}

/* Reads the flags into rq (strings borrowed from cfg; dlq written into
 * dlq_buf); -1 after printing why. */
static int read_request(const sio_config *cfg, request *rq, char *dlq_buf, size_t n) {
    const char *t = sio_config_extra(cfg, "--topic"), *target = sio_config_extra(cfg, "--target");
    const char *cls = sio_config_extra(cfg, "--error-class");
    rq->dlq = t ? t : sio_dlq_topic(cfg->responses_topic, dlq_buf, n);
    rq->target = target ? target : cfg->commands_topic;
    rq->dry_run = sio_config_extra(cfg, "--dry-run") != NULL;
    rq->force = sio_config_extra(cfg, "--force") != NULL;
    rq->filter = (sio_replay_filter){cls, sio_config_extra(cfg, "--workflow"),
                                     sio_config_extra(cfg, "--error"),
                                     sio_config_extra(cfg, "--correlation-id")};
    if (count_flag(cfg, "--partition", &rq->partition) || count_flag(cfg, "--from-offset", &rq->from_offset) ||
        count_flag(cfg, "--to-offset", &rq->to_offset) || count_flag(cfg, "--max", &rq->max) ||
        count_flag(cfg, "--rate", &rq->rate) || time_flag(cfg, "--since", &rq->since) ||
        time_flag(cfg, "--until", &rq->until))
        return -1;
    if (rq->rate < 0) rq->rate = DEFAULT_RATE;
    if (rq->max < 0) rq->max = 0;
    if (cls && strcmp(cls, "permanent") != 0 && strcmp(cls, "transient") != 0)
        return sio_cli_fail("replay", -1, "--error-class: \"%s\" is not permanent or transient", cls);
    if (strcmp(rq->target, rq->dlq) == 0)
        return sio_cli_fail("replay", -1, "the target %s is the DLQ being read", rq->target);
    if (rq->from_offset >= 0 && rq->to_offset >= 0 && rq->to_offset < rq->from_offset)
        return sio_cli_fail("replay", -1, "--to-offset is before --from-offset");
    return 0;
}

static const sio_cli_flag replay_flags[] = {
    {"--topic", "-t", "TOPIC", "the DLQ to read (default: the responses topic's DLQ)"},
    {"--target", NULL, "TOPIC", "where the commands go (default: the commands topic)"},
    {"--partition", "-p", "N", "read only partition N of the DLQ"},
    {"--from-offset", NULL, "N", "start at offset N of each partition read"},
    {"--to-offset", NULL, "N", "stop after offset N (inclusive)"},
    {"--since", NULL, "TIME", "only entries the DLQ received at or after TIME: RFC 3339 "
                              "(2026-11-27T01:33:49Z), epoch milliseconds, or a duration ago "
                              "(2h)"},
    {"--until", NULL, "TIME", "only entries received before TIME (same forms)"},
    {"--error-class", NULL, "CLASS", "only permanent or only transient failures"},
    {"--workflow", NULL, "NAME", "only commands for this workflow"},
    {"--error", NULL, "TEXT", "only entries whose error message contains TEXT"},
    {"--correlation-id", NULL, "ID", "only the entries of this correlation id"},
    {"--max", "-c", "N", "replay at most N entries"},
    {"--rate", NULL, "N", "at most N commands a second (default 100; 0 = no limit)"},
    {"--dry-run", NULL, NULL, "print what would be replayed; send nothing, mark nothing"},
    {"--force", NULL, NULL, "replay entries even when marked as replayed already"},
    {NULL, NULL, NULL, NULL}};

const sio_cli_command sio_cli_replay_cmd = {
    "replay", sio_cli_replay, "", 0, "send dead-lettered commands again",
     "Reads the DLQ from the start (or the range given) up to its end at the time replay "
     "starts, and sends each matching entry's command (as received, with its Kafka headers "
     "and a sio-replay-of header naming the entry) to the target, keyed by its correlation "
     "id.  An entry replayed once is marked in Redis (REPLAY_KEY_PREFIX + "
     "topic:partition:offset, kept as long as the DLQ keeps the entry) and skipped by later "
     "replays unless --force.  Prints one JSON line per matching entry and a summary line; "
     "a progress line on a terminal.\nExit codes: 0 every matching entry was replayed (now "
     "or before), 1 some could not be (see the summary), 2 usage.", replay_flags};

int sio_cli_replay(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_replay_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    request rq;
    char dlq[512];
    if (read_request(cfg, &rq, dlq, sizeof dlq) != 0) {
        sio_config_destroy(cfg);
        return 2;
    }
    run r = {.rq = &rq};
    sio_err err;
    int rc = 1;
    sio_cli_catch_interrupts();
    if (open_run(&r, cfg, &err) != 0) {
        sio_cli_fail("replay", 1, "%s", err.msg);
    } else {
        sio_progress_start(&r.progress, stderr);
        read_all(&r);
        if (r.producer && rd_kafka_flush(r.producer, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Every report still owed comes now, as a purge. */
            rd_kafka_purge(r.producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(r.producer, 5000);
        }
        sio_progress_erase(&r.progress);
        print_summary(&r, sio_cli_interrupted);
        rc = r.n.failed == 0 && !sio_cli_interrupted ? 0 : 1;
    }
    close_run(&r);
    sio_config_destroy(cfg);
    return rc;
}
