/*
 * command.c - one command's life on a worker's loop (see command.h).
 *
 * The command is a state machine: each phase starts one op (c->op) and
 * its completion, in on_op, moves to the next phase.  Besides it, the
 * lease timer (c->lease_op), fire-and-forget lease renewals and the step
 * results' deliveries complete in on_op too.  Nothing waits on a thread.
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "record.h"

/* At most this many "transient failure; retrying" lines a second, from all
 * commands together: a dependency that goes away makes every command in
 * flight retry at once.  The lines held back are counted in the next. */
#define RETRY_LOG_PER_SECOND 20

enum {
    P_START,
    P_CLAIM,      /* SET key token NX PX lease */
    P_GET,        /* GET key: whose claim is it? */
    P_WAIT,       /* timer: a duplicate in flight holds the claim */
    P_RUN,        /* the workflow runs */
    P_STORE,      /* SET key done:<response> PX ttl */
    P_BACKOFF,    /* timer before the next attempt */
    P_FINAL,      /* the final message is produced */
    P_FINAL_WAIT, /* timer before producing it again */
    P_COLLECT,    /* step results' delivery reports */
    P_REPUBLISH,  /* a failed step result is produced again */
    P_DLQ,        /* the DLQ entry is produced */
    P_DLQ_WAIT,   /* timer before producing it again */
    P_RELEASE,    /* GET key, then DEL when still ours */
    P_RELEASE_DEL,
};

/* A message of the current run besides the final one: a step result, or
 * (exactly once) a script's produce.  Kept until delivered (at least
 * once) or handed over (exactly once). */
struct sio_step_msg {
    uint64_t op; /* its produce, 0 once reported */
    char *topic; /* a produce's topic; NULL: a step result (reply topic, correlation id) */
    char *key;   /* a produce's key, or NULL */
    size_t key_len;
    char *text;
    size_t len;
    int failed; /* 1 transient, 2 permanent */
};

static void attempt(sio_command *c);
static void publish_final(sio_command *c);
static void dlq_failed(sio_command *c, const sio_err *err);
static void dead_letter(sio_command *c, sio_errclass cls, const char *msg, const char *step,
                        int to_default, const char *reason);
static void fail(sio_command *c, const sio_err *err, const char *step);

/* --- helpers -------------------------------------------------------------------*/

int64_t sio_backoff_ms(int64_t base, int64_t max, int n, uint32_t *rng) {
    int64_t d = base;
    for (int i = 1; i < n && d < max; i++) d *= 2;
    if (d > max) d = max;
    uint32_t x = *rng ? *rng : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *rng = x;
    return d / 2 + (int64_t)((double)x / 4294967296.0 * (double)(d - d / 2));
}

/* A JSON string of s (any bytes: invalid UTF-8 becomes U+FFFD). */
static json_t *jtext(const char *s) {
    return sio_json_text(s, strlen(s));
}

/* The command's log fields plus extra (stolen, may be NULL). */
static json_t *cmd_fields(const sio_command *c, json_t *extra) {
    /* (set one by one: json_pack parses its format on every call, and
     * this runs for every command's "command finished") */
    json_t *f = json_object();
    if (f == NULL ||
        json_object_set_new_nocheck(f, "correlation_id",
                                    c->env.correlation_id ? json_string(c->env.correlation_id)
                                                          : json_null()) != 0 ||
        json_object_set_new_nocheck(f, "topic", sio_json_text(c->topic, strlen(c->topic))) != 0 ||
        json_object_set_new_nocheck(f, "partition", json_integer(c->partition)) != 0 ||
        json_object_set_new_nocheck(f, "offset", json_integer((json_int_t)c->offset)) != 0 ||
        json_object_set_new_nocheck(f, "workflow", sio_json_cstr(c->env.workflow)) != 0) {
        json_decref(f);
        f = NULL;
    }
    if (f && extra) json_object_update(f, extra);
    json_decref(extra);
    return f;
}

/* Logs msg with the command's fields plus extra (stolen, may be NULL). */
static void cmd_log(sio_command *c, sio_log_level level, const char *msg, json_t *extra) {
    sio_log_json(level, msg, cmd_fields(c, extra));
}

static const sio_config *cfg_of(const sio_command *c) {
    return c->ctx->cfg;
}

static int64_t backoff(sio_command *c, int n) {
    return sio_backoff_ms(cfg_of(c)->retry_backoff_base_ms, cfg_of(c)->retry_backoff_max_ms, n,
                          &c->rng);
}

/* The most bytes a value produced to topic may have (the topic's limit
 * less room for the key and the record's overhead). */
static size_t value_limit(const sio_command *c, const char *topic) {
    const sio_command_ctx *x = c->ctx;
    size_t lim = x->max_message;
    if (strcmp(topic, x->default_dlq) == 0 && x->default_dlq_max < lim) lim = x->default_dlq_max;
    if (strcmp(topic, cfg_of(c)->responses_topic) == 0 && x->responses_max < lim)
        lim = x->responses_max;
    size_t room = 512 + (c->env.correlation_id ? strlen(c->env.correlation_id) : 0);
    return lim > 2 * room ? lim - room : lim / 2;
}

static uint64_t start_timer(sio_command *c, int64_t ms) {
    sio_err err;
    uint64_t id = sio_aio_timer(sio_worker_aio(c->w), &c->task, (uint64_t)(ms > 0 ? ms : 0), &err);
    if (id == 0) cmd_log(c, SIO_LOG_ERROR, "cannot start a timer", json_pack("{s:o}", "error", jtext(err.msg)));
    return id;
}

static uint64_t redis(sio_command *c, int argc, const char **argv, const size_t *lens,
                      sio_err *err) {
    return sio_aio_redis(sio_worker_aio(c->w), &c->task, argc, argv, lens, err);
}

/* Produces text to topic, keyed by the correlation id, with the command's
 * trace context in its headers. */
static uint64_t produce(sio_command *c, const char *topic, const char *text, size_t len,
                        sio_err *err) {
    const char *key = c->env.correlation_id;
    return sio_aio_produce(sio_worker_aio(c->w), &c->task, topic, key, key ? strlen(key) : 0, text,
                           len, c->trace_headers, c->ntrace_headers, err);
}

/* At least once: produces a held message (a step result, or one a record
 * replays). */
static uint64_t produce_step(sio_command *c, const sio_step_msg *s, sio_err *err) {
    if (s->topic == NULL) return produce(c, c->reply, s->text, s->len, err);
    return sio_aio_produce(sio_worker_aio(c->w), &c->task, s->topic, s->key, s->key_len, s->text,
                           s->len, c->trace_headers, c->ntrace_headers, err);
}

static int eos(const sio_command *c) {
    return c->ctx->eos;
}

/* Exactly once: the error with which topic refused one of this command's
 * messages in an aborted transaction (minimal: the minimal DLQ entry), or
 * NULL. */
static const char *refused(const sio_command *c, const char *topic, int minimal) {
    for (const sio_refusal *r = c->refusals; r; r = r->next)
        if (strcmp(r->topic, topic) == 0 && r->minimal >= minimal) return r->error;
    return NULL;
}

static void set_str(char **dst, const char *s) {
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

/* --- telemetry ---------------------------------------------------------------------*/

/* The command's span: it continues the message's traceparent (and
 * tracestate) when there is a valid one, else starts a trace. */
static void trace_start(sio_command *c) {
    sio_trace_ctx parent;
    const void *v;
    size_t n;
    int remote = 0;
    if (c->headers &&
        rd_kafka_header_get_last(c->headers, "traceparent", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        v && sio_traceparent_parse(v, n, &parent) == 0) {
        remote = 1;
        if (rd_kafka_header_get_last(c->headers, "tracestate", &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            v == NULL || sio_tracestate_parse(v, n, parent.tracestate, sizeof parent.tracestate) != 0)
            parent.tracestate[0] = '\0';
    }
    char name[300];
    snprintf(name, sizeof name, "process %s", c->topic);
    /* The span starts when the message was polled: its time in the
     * worker's queue is the command's too (the "dequeued" event ends it). */
    c->span = sio_span_start_at(name, SIO_SPAN_CONSUMER, remote ? &parent : NULL, c->polled_ns);
    sio_span_traceparent(c->span, c->traceparent);
    if (remote) memcpy(c->tracestate, parent.tracestate, sizeof c->tracestate);
    c->trace_headers[0] = (sio_kafka_header){"traceparent", c->traceparent, strlen(c->traceparent)};
    c->trace_headers[1] = (sio_kafka_header){"tracestate", c->tracestate, strlen(c->tracestate)};
    c->ntrace_headers = c->traceparent[0] ? (c->tracestate[0] ? 2 : 1) : 0;
    sio_span_log_here(c->span);
    if (!sio_span_recording(c->span)) return;
    /* the OpenTelemetry messaging semantic conventions */
    char part[16];
    snprintf(part, sizeof part, "%d", (int)c->partition);
    sio_span_set_str(c->span, "messaging.system", "kafka");
    sio_span_set_str(c->span, "messaging.operation.type", "process");
    sio_span_set_str(c->span, "messaging.operation.name", "process");
    sio_span_set_str(c->span, "messaging.destination.name", c->topic);
    sio_span_set_str(c->span, "messaging.destination.partition.id", part);
    sio_span_set_str(c->span, "messaging.consumer.group.name", cfg_of(c)->kafka_group_id);
    sio_span_set_int(c->span, "messaging.kafka.offset", c->offset);
    sio_span_set_int(c->span, "messaging.message.body.size", (int64_t)c->raw_len);
    /* When the broker appended it (LogAppendTime) or the producer made it:
     * the start of the consume leg in bench/run latency's breakdown. */
    if (c->timestamp >= 0 && c->timestamp_type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
        sio_span_set_int(c->span, "sio.kafka.timestamp_ms", c->timestamp);
        sio_span_set_str(c->span, "sio.kafka.timestamp_type",
                         c->timestamp_type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "log_append"
                                                                               : "create");
    }
    if (c->msg_key)
        sio_span_set_strn(c->span, "messaging.kafka.message.key", c->msg_key, c->msg_key_len);
}

/* Counts the command as received (once its workflow is known, or not). */
static void trace_received(sio_command *c) {
    c->wf_label = sio_metrics_workflow(c->env.workflow);
    sio_metric_inc(SIO_M_COMMANDS_RECEIVED, c->wf_label);
    sio_span_set_str(c->span, "sio.correlation_id", c->env.correlation_id);
    sio_span_set_str(c->span, "sio.workflow", c->env.workflow);
}

/* The outcome is in Kafka (at least once: delivered; exactly once: its
 * transaction committed): count it, log it, end the span. */
static void trace_finished(sio_command *c) {
    /* Exactly once, the DLQ entry went out in the transaction just
     * committed.  A command consumed again after its transaction aborted
     * answers from its own record: its first outcome anyone sees, not a
     * duplicate. */
    int dlq = eos(c) ? c->outcome == SIO_OUT_DLQ : c->dlq_delivered;
    if (dlq && eos(c)) sio_metric_inc(SIO_M_DLQ_MESSAGES, c->fail_cls == SIO_TRANSIENT ? 1 : 0);
    sio_outcome o = dlq                           ? SIO_OUTCOME_DLQ
                    : c->duplicate && !c->rewound ? SIO_OUTCOME_DUPLICATE
                                                  : SIO_OUTCOME_SUCCESS;
    static const char *const names[] = {"success", "dlq", "duplicate"};
    uint64_t ns = sio_mono_ns() - c->taken_ns;
    sio_metric_inc(SIO_M_COMMANDS_FINISHED, sio_metrics_cell2(SIO_M_COMMANDS_FINISHED, c->wf_label, o));
    sio_metric_observe_ns(SIO_M_COMMAND_DURATION, c->wf_label, ns);
    sio_span_log_here(c->span);
    json_t *f = sio_log_enabled(SIO_LOG_INFO) ? cmd_fields(c, NULL) : NULL;
    if (f) {
        json_object_set_new_nocheck(f, "outcome", json_string_nocheck(names[o]));
        json_object_set_new_nocheck(f, "attempts", json_integer(c->attempts ? c->attempts : 1));
        /* to the microsecond: a shorter number, written with one conversion */
        json_object_set_new_nocheck(f, "duration_ms", json_real((double)(ns / 1000) / 1000.0));
    }
    sio_log_json(SIO_LOG_INFO, "command finished", f);
    sio_span_set_str(c->span, "sio.outcome", names[o]);
    sio_span_set_int(c->span, "sio.attempts", c->attempts ? c->attempts : 1);
    sio_span_end(c->span);
    c->span = NULL;
}

static void free_steps(sio_command *c) {
    for (size_t i = 0; i < c->nsteps; i++) {
        free(c->steps[i].text);
        free(c->steps[i].topic);
        free(c->steps[i].key);
    }
    c->nsteps = c->steps_pending = 0;
}

/* Appends a message (topic and key NULL: a step result; the strings are
 * taken over).  NULL when out of memory (nothing taken then). */
static sio_step_msg *add_step(sio_command *c, char *topic, char *key, size_t key_len, char *text,
                              size_t len) {
    if (c->nsteps == c->capsteps) {
        size_t n = c->capsteps ? c->capsteps * 2 : 4;
        sio_step_msg *s = realloc(c->steps, n * sizeof *s);
        if (s == NULL) return NULL;
        c->steps = s;
        c->capsteps = n;
    }
    sio_step_msg *s = &c->steps[c->nsteps++];
    *s = (sio_step_msg){.topic = topic, .key = key, .key_len = key_len, .text = text, .len = len};
    return s;
}

/* The end: the outcome is in Kafka (exactly once: handed over for the
 * transaction, which counts it when it commits: sio_command_committed).
 * c belongs to the service again. */
static void finish(sio_command *c) {
    if (c->lease_op) sio_aio_cancel(sio_worker_aio(c->w), c->lease_op);
    c->lease_op = 0;
    if (!eos(c)) trace_finished(c);
    sio_worker *w = c->w;
    sio_worker_task_end(w, &c->task);
    c->ctx->finished(c, c->ctx->finished_data);
}

/* --- dedupe ----------------------------------------------------------------------*/

static void claim(sio_command *c) {
    char px[24];
    snprintf(px, sizeof px, "%lld", (long long)cfg_of(c)->dedupe_lease_ms);
    const char *argv[] = {"SET", c->key, c->token, "NX", "PX", px};
    size_t lens[] = {3, strlen(c->key), strlen(c->token), 2, 2, strlen(px)};
    sio_err err;
    c->phase = P_CLAIM;
    if ((c->op = redis(c, 6, argv, lens, &err)) == 0) fail(c, &err, NULL);
}

static void get_claim(sio_command *c) {
    const char *argv[] = {"GET", c->key};
    size_t lens[] = {3, strlen(c->key)};
    sio_err err;
    c->phase = P_GET;
    if ((c->op = redis(c, 2, argv, lens, &err)) == 0) fail(c, &err, NULL);
}

/* Is the record's source this very message (consumed again after its
 * transaction aborted, or after a crash before it committed)? */
static int same_source(const sio_command *c, const sio_record *rec) {
    return rec->txn && rec->source_partition == c->partition && rec->source_offset == c->offset &&
           rec->source_topic_len == strlen(c->topic) &&
           memcmp(rec->source_topic, c->topic, rec->source_topic_len) == 0;
}

/* A finished command's record: its response is published again; when the
 * record is this message's own, every message it stored too (they were
 * never committed: see record.h). */
static void replay(sio_command *c, const sio_record *rec) {
    sio_err e;
    c->stored = c->duplicate = 1;
    if ((c->response = sio_memdup(rec->response, rec->response_len)) == NULL) {
        sio_err_set(&e, SIO_E_NOMEM, "out of memory reading the stored response");
        fail(c, &e, NULL);
        return;
    }
    c->response_len = rec->response_len;
    free_steps(c);
    int own = same_source(c, rec);
    c->rewound = own;
    if (!own) sio_metric_inc(SIO_M_DEDUPE_REPLAYS, 0);
    sio_span_event(c->span, own ? "consumed again before its outputs were committed"
                                : "duplicate: the stored response is published again",
                   NULL, NULL);
    for (size_t i = 0; own && i < rec->nmsgs; i++) {
        const sio_record_msg *m = &rec->msgs[i];
        char *t = m->topic ? sio_memdup(m->topic, m->topic_len) : NULL;
        char *k = m->key ? sio_memdup(m->key, m->key_len) : NULL;
        char *v = sio_memdup(m->value, m->len);
        sio_step_msg *s = NULL;
        if ((m->topic && !t) || (m->key && !k) || !v ||
            (s = add_step(c, t, k, m->key_len, v, m->len)) == NULL) {
            free(t), free(k), free(v);
            sio_err_set(&e, SIO_E_NOMEM, "out of memory reading the stored messages");
            fail(c, &e, NULL);
            return;
        }
        if (eos(c)) continue;
        if ((s->op = produce_step(c, s, &e)) == 0)
            s->failed = e.code == SIO_E_KAFKA_REJECTED ? 2 : 1;
        else
            c->steps_pending++;
        if (s->failed && c->step_err.code == SIO_E_OK) c->step_err = e;
    }
    /* Consumed again (an aborted transaction rewinds every command of
     * it): routine, so only at debug. */
    cmd_log(c, own ? SIO_LOG_DEBUG : SIO_LOG_INFO,
            own ? "consumed again before its outputs were committed: publishing the stored "
                  "messages again"
                : "duplicate: re-publishing the stored response",
            own ? json_pack("{s:I}", "messages", (json_int_t)rec->nmsgs) : NULL);
    publish_final(c);
}

/* The key's value after a refused claim. */
static void on_claim_value(sio_command *c, const sio_aio_result *r) {
    if (r->redis_type != SIO_REDIS_STR) { /* expired meanwhile: claim again */
        claim(c);
        return;
    }
    sio_record rec;
    sio_err e;
    int rc = sio_record_parse(r->redis_str, r->redis_len, &rec, &e);
    if (rc < 0) {
        fail(c, &e, NULL);
        return;
    }
    if (rc == 1) {
        replay(c, &rec);
        sio_record_clear(&rec);
        return;
    }
    if (r->redis_len == strlen(c->token) && memcmp(r->redis_str, c->token, r->redis_len) == 0) {
        c->claimed = 1; /* ours, from an earlier attempt */
        attempt(c);
        return;
    }
    const sio_config *cfg = cfg_of(c);
    if (!c->waiting_logged) {
        c->waiting_logged = 1;
        sio_metric_inc(SIO_M_DEDUPE_WAITS, 0);
        sio_span_event(c->span, "duplicate of a command in flight: waiting for it", NULL, NULL);
        cmd_log(c, SIO_LOG_INFO, "duplicate of a command in flight: waiting for it", NULL);
    }
    if (c->waited_ms > cfg->workflow_timeout_ms + 2 * cfg->dedupe_lease_ms) {
        sio_err e;
        sio_err_set(&e, SIO_E_REDIS,
                    "correlation id still claimed by another owner after %lld ms",
                    (long long)c->waited_ms);
        fail(c, &e, NULL);
        return;
    }
    int64_t pause = cfg->dedupe_lease_ms / 4 + 1;
    if (pause > 250) pause = 250;
    c->waited_ms += pause;
    c->phase = P_WAIT;
    c->op = start_timer(c, pause);
}

/* Every lease/3 while the workflow runs: PEXPIRE (its reply is ignored:
 * a renewal that fails leaves the lease to expire, and a crashed owner's
 * command to be taken over). */
static void renew_lease(sio_command *c) {
    char px[24];
    snprintf(px, sizeof px, "%lld", (long long)cfg_of(c)->dedupe_lease_ms);
    const char *argv[] = {"PEXPIRE", c->key, px};
    size_t lens[] = {7, strlen(c->key), strlen(px)};
    sio_err err;
    redis(c, 3, argv, lens, &err);
    c->lease_op = start_timer(c, cfg_of(c)->dedupe_lease_ms / 3);
}

/* The dedupe record (record.h): the response; exactly once, also where
 * the command came from and every held message. */
static char *encode_record(const sio_command *c, size_t *len) {
    sio_record r = {.txn = eos(c), .response = c->response, .response_len = c->response_len};
    sio_record_msg *msgs = NULL;
    if (eos(c)) {
        if (c->nsteps && (msgs = calloc(c->nsteps, sizeof *msgs)) == NULL) return NULL;
        for (size_t i = 0; i < c->nsteps; i++) {
            const sio_step_msg *s = &c->steps[i];
            msgs[i] = (sio_record_msg){.topic = s->topic, .topic_len = s->topic ? strlen(s->topic) : 0,
                                       .key = s->key, .key_len = s->key_len, .value = s->text,
                                       .len = s->len};
        }
        r.source_topic = c->topic;
        r.source_topic_len = strlen(c->topic);
        r.source_partition = c->partition;
        r.source_offset = c->offset;
        r.msgs = msgs;
        r.nmsgs = c->nsteps;
    }
    char *text = sio_record_encode(&r, len);
    free(msgs);
    return text;
}

static void store(sio_command *c) {
    char px[24];
    snprintf(px, sizeof px, "%lld", (long long)cfg_of(c)->dedupe_ttl_ms);
    size_t vlen;
    char *val = encode_record(c, &vlen);
    sio_err err;
    if (val == NULL) {
        sio_err_set(&err, SIO_E_NOMEM, "out of memory storing the response");
        fail(c, &err, NULL);
        return;
    }
    const char *argv[] = {"SET", c->key, val, "PX", px};
    size_t lens[] = {3, strlen(c->key), vlen, 2, strlen(px)};
    c->phase = P_STORE;
    c->op = redis(c, 5, argv, lens, &err);
    free(val);
    if (c->op == 0) fail(c, &err, NULL);
}

/* After a dead letter: drop our claim (GET, then DEL when still ours), so
 * a corrected command with the same id can run. */
static void release(sio_command *c) {
    if (!c->claimed || c->stored) {
        finish(c);
        return;
    }
    const char *argv[] = {"GET", c->key};
    size_t lens[] = {3, strlen(c->key)};
    sio_err err;
    c->phase = P_RELEASE;
    if ((c->op = redis(c, 2, argv, lens, &err)) == 0) finish(c);
}

/* --- the workflow ------------------------------------------------------------------*/

/* Exactly once, a script's sio.kafka.produce: held for the command's
 * transaction (the run's callback, see worker.h sio_run_cbs.produce). */
static int on_produce(void *ud, const char *topic, const char *key, size_t key_len,
                      const char *value, size_t len, sio_err *err) {
    sio_command *c = ud;
    if (sio_topic_check(topic, strlen(topic), err) != 0) return -1;
    size_t lim = c->ctx->max_message;
    if (len + key_len + 512 > lim)
        return sio_err_set(err, SIO_E_KAFKA_REJECTED,
                           "the message is %zu bytes, over the %zu bytes the producer accepts",
                           len + key_len, lim > 512 ? lim - 512 : 0);
    char *t = strdup(topic), *k = key ? sio_memdup(key, key_len) : NULL;
    char *v = sio_memdup(value, len);
    if (!t || (key && !k) || !v || add_step(c, t, k, key_len, v, len) == NULL) {
        free(t), free(k), free(v);
        return sio_err_set(err, SIO_E_NOMEM, "out of memory holding a produce to %s", topic);
    }
    return 0;
}

static void on_step_result(void *ud, const char *step_id, const char *payload, size_t len,
                           const json_t *query) {
    sio_command *c = ud;
    sio_err err;
    size_t tlen = 0;
    char *text = sio_step_result_text(c->env.correlation_id, step_id, payload, len, query, &tlen);
    if (text == NULL) {
        if (c->step_err.code == SIO_E_OK)
            sio_err_set(&c->step_err, SIO_E_NOMEM, "out of memory publishing step %s", step_id);
        return;
    }
    size_t lim = value_limit(c, c->reply);
    if (tlen > lim) {
        if (c->step_err.code == SIO_E_OK)
            sio_err_set(&c->step_err, SIO_E_KAFKA_REJECTED,
                        "the step result of %s is %zu bytes, over the %zu bytes %s accepts",
                        step_id, tlen, lim, c->reply);
        free(text);
        return;
    }
    sio_step_msg *s = add_step(c, NULL, NULL, 0, text, tlen);
    if (s == NULL) {
        free(text);
        if (c->step_err.code == SIO_E_OK)
            sio_err_set(&c->step_err, SIO_E_NOMEM, "out of memory publishing step %s", step_id);
        return;
    }
    if (eos(c)) return; /* held for the command's transaction */
    if ((s->op = produce(c, c->reply, text, tlen, &err)) == 0) {
        free(text);
        c->nsteps--;
        if (c->step_err.code == SIO_E_OK) c->step_err = err;
        return;
    }
    c->steps_pending++;
}

static void on_run_done(void *ud, json_t *result, const sio_run_error *e) {
    sio_command *c = ud;
    c->run = NULL;
    c->in_run = 0;
    sio_span_event(c->span, "ran", NULL, NULL);
    if (c->lease_op) sio_aio_cancel(sio_worker_aio(c->w), c->lease_op);
    c->lease_op = 0;
    if (result == NULL) {
        sio_err err;
        sio_err_set(&err, e->cls == SIO_TRANSIENT ? SIO_E_TRANSIENT : SIO_E_SCRIPT, "%s",
                    e->message);
        if (e->killed) {
            /* A limit ends the command: dead-letter it now, from here. */
            dead_letter(c, SIO_PERMANENT, e->message, e->step, 0, NULL);
            return;
        }
        fail(c, &err, e->step);
        return;
    }
    if (c->step_err.code != SIO_E_OK) { /* a step result could not be produced */
        json_decref(result);
        sio_err err = c->step_err;
        fail(c, &err, NULL);
        return;
    }
    free(c->response);
    c->response = sio_success_text(c->env.correlation_id, result, &c->response_len);
    json_decref(result);
    sio_err err;
    if (c->response == NULL) {
        sio_err_set(&err, SIO_E_NOMEM, "out of memory encoding the response");
        fail(c, &err, NULL);
        return;
    }
    size_t lim = value_limit(c, c->reply);
    if (c->response_len > lim) {
        sio_err_set(&err, SIO_E_KAFKA_REJECTED, "the response is %zu bytes, over the %zu bytes %s accepts",
                    c->response_len, lim, c->reply);
        free(c->response);
        c->response = NULL;
        fail(c, &err, NULL);
        return;
    }
    store(c);
}

static void run_workflow(sio_command *c) {
    sio_err err;
    free_steps(c);
    sio_err_clear(&c->step_err);
    c->phase = P_RUN;
    c->lease_op = start_timer(c, cfg_of(c)->dedupe_lease_ms / 3);
    sio_run_cbs cbs = {.step_result = on_step_result, .done = on_run_done,
                       .trace = sio_span_context(c->span),
                       .produce = eos(c) ? on_produce : NULL};
    c->in_run = 1;
    /* done may come before sio_worker_run returns (a workflow that never
     * waits): c->in_run says whether the run is still going. */
    sio_run *r = sio_worker_run(c->w, c->env.workflow, c->env.attrs, &cbs, c, &err);
    if (r == NULL) {
        c->in_run = 0;
        if (c->lease_op) sio_aio_cancel(sio_worker_aio(c->w), c->lease_op);
        c->lease_op = 0;
        fail(c, &err, NULL);
        return;
    }
    if (c->in_run) c->run = r;
}

/* One attempt: each phase remembers its outcome, so a retry resumes where
 * the last attempt failed (a workflow that ran is not run again because
 * storing its response failed). */
static void attempt(sio_command *c) {
    if (c->response == NULL && !c->claimed) claim(c);
    else if (c->response == NULL) run_workflow(c);
    else if (!c->stored) store(c);
    else publish_final(c);
}

/* A failed attempt: retried after a backoff while attempts remain and the
 * error is transient, else dead-lettered. */
static void fail(sio_command *c, const sio_err *err, const char *step) {
    sio_errclass cls = sio_code_class(err->code);
    if (cls != SIO_TRANSIENT || c->attempts >= cfg_of(c)->retry_attempts) {
        dead_letter(c, cls, err->msg, step, err->code == SIO_E_KAFKA_REJECTED, err->msg);
        return;
    }
    int64_t d = backoff(c, c->attempts);
    static sio_log_limit retry_lines = SIO_LOG_LIMIT(RETRY_LOG_PER_SECOND);
    sio_log_limited(&retry_lines, SIO_LOG_WARN, "transient failure; retrying",
                    cmd_fields(c, json_pack("{s:o,s:i,s:I}", "error", jtext(err->msg), "attempt",
                                            c->attempts, "backoff_ms", (json_int_t)d)));
    sio_metric_inc(SIO_M_COMMAND_RETRIES,
                   sio_metrics_cell2(SIO_M_COMMAND_RETRIES, c->wf_label, sio_metrics_code(err->code)));
    sio_span_event(c->span, "retry", "error", err->msg);
    c->phase = P_BACKOFF;
    c->op = start_timer(c, d);
}

/* --- publishing ----------------------------------------------------------------------*/

/* Exactly once: the command is done; its messages go to the service,
 * which writes them in the transaction that commits its offset.  A topic
 * that refused one of them before takes the at-least-once path of that
 * refusal instead. */
static void hand_over_final(sio_command *c) {
    const char *why = refused(c, c->reply, 0);
    if (why) {
        char m[700];
        snprintf(m, sizeof m, "the final message could not be delivered to %s: %s", c->reply, why);
        dead_letter(c, SIO_PERMANENT, m, NULL, 1, why);
        return;
    }
    for (size_t i = 0; i < c->nsteps; i++) {
        if (c->steps[i].topic == NULL || (why = refused(c, c->steps[i].topic, 0)) == NULL) continue;
        char m[700];
        snprintf(m, sizeof m, "kafka produce %s: %s", c->steps[i].topic, why);
        dead_letter(c, SIO_PERMANENT, m, NULL, 0, NULL);
        return;
    }
    if (cfg_of(c)->log_payloads)
        cmd_log(c, SIO_LOG_INFO, "response ready for its transaction",
                json_pack("{s:o}", "payload", sio_json_text(c->response, c->response_len)));
    c->outcome = SIO_OUT_FINAL;
    finish(c);
}

static void publish_final(sio_command *c) {
    sio_err err;
    if (eos(c)) {
        hand_over_final(c);
        return;
    }
    c->phase = P_FINAL;
    c->op = produce(c, c->reply, c->response, c->response_len, &err);
    if (c->op != 0) return;
    if (err.code == SIO_E_KAFKA_REJECTED) {
        dead_letter(c, SIO_PERMANENT, err.msg, NULL, 1, err.msg);
        return;
    }
    cmd_log(c, SIO_LOG_WARN, "final message not delivered; retrying", json_pack("{s:o}", "error", jtext(err.msg)));
    c->phase = P_FINAL_WAIT;
    c->op = start_timer(c, backoff(c, ++c->publish_tries < 16 ? c->publish_tries : 16));
}

/* After the final message: the step results' reports.  Step results that
 * failed transiently are produced again (in order), then the final message
 * again, so the last final message follows every step result; one that
 * can never be delivered dead-letters the outcome. */
static void collect(sio_command *c) {
    c->phase = P_COLLECT;
    if (c->steps_pending > 0) return;
    int again = 0;
    for (size_t i = 0; i < c->nsteps; i++) {
        sio_step_msg *s = &c->steps[i];
        if (s->failed == 2) {
            s->failed = 0;
            dead_letter(c, SIO_PERMANENT, c->step_err.msg, NULL, 1, c->step_err.msg);
            return;
        }
        if (s->failed != 1) continue;
        if (!again)
            cmd_log(c, SIO_LOG_WARN,
                 "step results not delivered: publishing them and the final message again",
                 json_pack("{s:o}", "error", jtext(c->step_err.msg)));
        again = 1;
        sio_err err;
        s->op = produce_step(c, s, &err);
        if (s->op == 0) { /* the rest after a backoff, then the final again */
            c->phase = P_FINAL_WAIT;
            c->op = start_timer(c, backoff(c, ++c->publish_tries < 16 ? c->publish_tries : 16));
            return;
        }
        s->failed = 0;
        c->steps_pending++;
    }
    if (again) {
        publish_final(c);
        return;
    }
    if (cfg_of(c)->log_payloads)
        cmd_log(c, SIO_LOG_INFO, "response published",
             json_pack("{s:o}", "payload", sio_json_text(c->response, c->response_len)));
    finish(c);
}

/* The DLQ topic of the reply topic, or "" when that name is not legal. */
static void intended_dlq(const sio_command *c, char *buf, size_t n, sio_err *why) {
    sio_dlq_topic(c->reply, buf, n);
    if (sio_topic_check(buf, strlen(buf), why) != 0) buf[0] = '\0';
}

static void produce_dlq(sio_command *c);

/* Dead-letters the command: cls/msg/step say why; to_default sends it to
 * the default DLQ with reason (the reply topic's DLQ cannot take it). */
static void dead_letter(sio_command *c, sio_errclass cls, const char *msg, const char *step,
                        int to_default, const char *reason) {
    if (c->run) {
        sio_run_cancel(c->run);
        c->run = NULL;
        c->in_run = 0;
    }
    if (c->lease_op) sio_aio_cancel(sio_worker_aio(c->w), c->lease_op);
    c->lease_op = 0;
    if (eos(c)) free_steps(c); /* a dead-lettered command writes only its DLQ entry */
    c->fail_cls = cls;
    set_str(&c->fail_msg, msg);
    set_str(&c->fail_step, step);
    char want[256], why_text[600];
    sio_err why;
    intended_dlq(c, want, sizeof want, &why);
    if (c->env.reply_error[0]) {
        to_default = 1;
        reason = c->env.reply_error;
    } else if (want[0] == '\0') {
        to_default = 1;
        snprintf(why_text, sizeof why_text, "the DLQ topic of %s %s", c->reply, why.msg);
        reason = why_text;
    }
    set_str(&c->dl_reason, to_default ? reason : NULL);
    c->dlq_default = to_default;
    snprintf(c->dlq_topic, sizeof c->dlq_topic, "%s", to_default ? c->ctx->default_dlq : want);
    c->dlq_minimal = 0;
    free(c->dlq_text);
    c->dlq_text = NULL;
    sio_span_error(c->span, msg ? msg : "failed");
    sio_span_set_str(c->span, "error.type", sio_class_name(cls));
    cmd_log(c, SIO_LOG_ERROR, "dead-lettered",
         json_pack("{s:o,s:s,s:i,s:o}", "error", jtext(msg ? msg : "failed"), "class",
                   sio_class_name(cls), "attempts", c->attempts ? c->attempts : 1, "dlq",
                   jtext(c->dlq_topic)));
    produce_dlq(c);
}

static void produce_dlq(sio_command *c) {
    sio_err err;
    if (c->dlq_text == NULL) {
        char want[512];
        sio_err why;
        intended_dlq(c, want, sizeof want, &why);
        if (c->env.reply_error[0]) { /* the DLQ of the reply topic it asked for */
            const char *bad = json_string_value(json_object_get(c->env.command, "reply_topic"));
            if (bad) sio_dlq_topic(bad, want, sizeof want);
            else want[0] = '\0';
        }
        sio_dlq_info in = {
            .correlation_id = c->env.correlation_id,
            .workflow = c->env.workflow,
            .step = c->fail_step,
            .error = c->fail_msg,
            .cls = c->fail_cls,
            .attempts = c->attempts ? c->attempts : 1,
            .command = c->env.command,
            .raw = c->raw,
            .raw_len = c->raw_len,
            .headers = c->headers,
            .source_topic = c->topic,
            .source_partition = c->partition,
            .source_offset = c->offset,
            .source_timestamp = c->timestamp,
            .received_ms = c->received_ms,
            .failed_ms = sio_wall_ms(),
        };
        if (c->dlq_default && strcmp(c->dlq_topic, want) != 0) {
            in.dead_letter_topic = want[0] ? want : NULL;
            in.dead_letter_reason = c->dl_reason ? c->dl_reason : "refused";
        }
        c->dlq_text = sio_dlq_encode(&in, value_limit(c, c->dlq_topic), c->dlq_minimal, &c->dlq_len);
        if (c->dlq_text == NULL) {
            cmd_log(c, SIO_LOG_ERROR, "out of memory building the DLQ entry; retrying", NULL);
            c->phase = P_DLQ_WAIT;
            c->op = start_timer(c, backoff(c, 4));
            return;
        }
    }
    if (eos(c)) {
        const char *why = refused(c, c->dlq_topic, c->dlq_minimal);
        if (why && !(c->dlq_default && c->dlq_minimal)) {
            sio_err_set(&err, SIO_E_KAFKA_REJECTED, "%s", why);
            dlq_failed(c, &err);
            return;
        }
        if (why)
            cmd_log(c, SIO_LOG_ERROR,
                    "the default DLQ refused even the minimal entry: writing it again (its "
                    "partition waits until the DLQ takes it)",
                    json_pack("{s:o,s:o}", "error", jtext(why), "dlq", jtext(c->dlq_topic)));
        c->outcome = SIO_OUT_DLQ;
        release(c);
        return;
    }
    c->phase = P_DLQ;
    c->op = produce(c, c->dlq_topic, c->dlq_text, c->dlq_len, &err);
    if (c->op == 0) dlq_failed(c, &err); /* as a failed delivery report */
}

/* The DLQ entry was not delivered (err): a permanent refusal moves it to
 * the default DLQ, then cuts it to its minimum; anything else is retried
 * after a backoff, for as long as the command lives. */
static void dlq_failed(sio_command *c, const sio_err *err) {
    if (err->code == SIO_E_KAFKA_REJECTED && !c->dlq_default) {
        /* The reply topic's DLQ can never take it: the default DLQ. */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s: %s", c->dlq_topic, err->msg);
        set_str(&c->dl_reason, reason);
        c->dlq_default = 1;
        snprintf(c->dlq_topic, sizeof c->dlq_topic, "%s", c->ctx->default_dlq);
        free(c->dlq_text);
        c->dlq_text = NULL;
        cmd_log(c, SIO_LOG_ERROR, "DLQ entry refused: writing it to the default DLQ",
             json_pack("{s:o}", "error", jtext(err->msg)));
        produce_dlq(c);
        return;
    }
    if (err->code == SIO_E_KAFKA_REJECTED && !c->dlq_minimal) {
        c->dlq_minimal = 1;
        free(c->dlq_text);
        c->dlq_text = NULL;
        cmd_log(c, SIO_LOG_ERROR, "the default DLQ refused the entry: cutting it to its minimum",
             json_pack("{s:o}", "error", jtext(err->msg)));
        produce_dlq(c);
        return;
    }
    c->publish_tries++;
    cmd_log(c, err->code == SIO_E_KAFKA_REJECTED ? SIO_LOG_ERROR : SIO_LOG_WARN,
         "DLQ entry not delivered; retrying",
         json_pack("{s:o,s:o,s:i}", "error", jtext(err->msg), "dlq", jtext(c->dlq_topic), "tries",
                   c->publish_tries));
    c->phase = P_DLQ_WAIT;
    c->op = start_timer(c, backoff(c, c->publish_tries < 16 ? c->publish_tries : 16));
}

/* --- completions ------------------------------------------------------------------------*/

static void on_step_report(sio_command *c, uint64_t id, const sio_aio_result *r) {
    for (size_t i = 0; i < c->nsteps; i++) {
        sio_step_msg *s = &c->steps[i];
        if (s->op != id) continue;
        s->op = 0;
        c->steps_pending--;
        if (r->err.code != SIO_E_OK) {
            s->failed = r->err.code == SIO_E_KAFKA_REJECTED ? 2 : 1;
            c->step_err = r->err;
        }
        if (c->phase == P_COLLECT) collect(c);
        return;
    }
}

/* The phase's op completed. */
static void on_phase(sio_command *c, const sio_aio_result *r) {
    int ok = r->err.code == SIO_E_OK;
    switch (c->phase) {
    case P_CLAIM:
        if (!ok) fail(c, &r->err, NULL);
        else if (r->redis_type == SIO_REDIS_STR && r->redis_len == 2 &&
                 memcmp(r->redis_str, "OK", 2) == 0) {
            c->claimed = 1;
            sio_metric_inc(SIO_M_DEDUPE_CLAIMS, 0);
            sio_span_event(c->span, "claimed", NULL, NULL);
            attempt(c);
        } else get_claim(c);
        break;
    case P_GET:
        if (!ok) fail(c, &r->err, NULL);
        else on_claim_value(c, r);
        break;
    case P_WAIT:
        claim(c);
        break;
    case P_STORE:
        if (!ok) {
            fail(c, &r->err, NULL);
            break;
        }
        c->stored = 1;
        sio_span_event(c->span, "stored", NULL, NULL);
        publish_final(c);
        break;
    case P_BACKOFF:
        c->attempts++;
        attempt(c);
        break;
    case P_FINAL:
        if (ok) {
            sio_span_event(c->span, "delivered", NULL, NULL);
            collect(c);
        } else if (r->err.code == SIO_E_KAFKA_REJECTED) {
            char m[700];
            snprintf(m, sizeof m, "the final message could not be delivered to %s: %s", c->reply,
                     r->err.msg);
            dead_letter(c, SIO_PERMANENT, m, NULL, 1, r->err.msg);
        } else {
            cmd_log(c, SIO_LOG_WARN, "final message not delivered; retrying",
                 json_pack("{s:o,s:o}", "error", jtext(r->err.msg), "reply_topic", jtext(c->reply)));
            c->phase = P_FINAL_WAIT;
            c->op = start_timer(c, backoff(c, ++c->publish_tries < 16 ? c->publish_tries : 16));
        }
        break;
    case P_FINAL_WAIT:
        publish_final(c);
        break;
    case P_DLQ:
        if (ok) {
            c->dlq_delivered = 1;
            sio_metric_inc(SIO_M_DLQ_MESSAGES, c->fail_cls == SIO_TRANSIENT ? 1 : 0);
            release(c);
        } else {
            dlq_failed(c, &r->err);
        }
        break;
    case P_DLQ_WAIT:
        produce_dlq(c);
        break;
    case P_RELEASE:
        if (ok && r->redis_type == SIO_REDIS_STR && r->redis_len == strlen(c->token) &&
            memcmp(r->redis_str, c->token, r->redis_len) == 0) {
            const char *argv[] = {"DEL", c->key};
            size_t lens[] = {3, strlen(c->key)};
            sio_err err;
            c->phase = P_RELEASE_DEL;
            if ((c->op = redis(c, 2, argv, lens, &err)) != 0) break;
        }
        finish(c);
        break;
    case P_RELEASE_DEL:
        finish(c);
        break;
    default:
        break;
    }
}

static void on_op(sio_task *t, uint64_t id, const sio_aio_result *r) {
    sio_command *c = (sio_command *)t;
    sio_span_log_here(c->span);
    if (id == c->op) {
        c->op = 0;
        on_phase(c, r);
    } else if (id == c->lease_op) {
        c->lease_op = 0;
        if (c->phase == P_RUN) renew_lease(c);
    } else if (r->kind == SIO_AIO_PRODUCE) {
        on_step_report(c, id, r);
    } /* else a lease renewal's reply */
}

/* --- start ----------------------------------------------------------------------------*/

static void start(sio_task *t, sio_worker *w) {
    sio_command *c = (sio_command *)t;
    const sio_config *cfg = cfg_of(c);
    c->w = w;
    c->attempts = 1;
    c->reply = cfg->responses_topic;
    trace_start(c);
    sio_span_event(c->span, "dequeued", NULL, NULL);
    if (cfg->log_payloads)
        cmd_log(c, SIO_LOG_INFO, "command received",
             json_pack("{s:o}", "payload", sio_json_text(c->raw, c->raw_len)));
    sio_err err;
    int rc = sio_envelope_parse(c->raw, c->raw_len, cfg->commands_topic, &c->env, &err);
    trace_received(c);
    if (c->env.reply_topic) c->reply = c->env.reply_topic;
    if (rc != 0) {
        dead_letter(c, SIO_PERMANENT, err.msg, NULL, 0, NULL);
        return;
    }
    if (c->env.reply_error[0]) {
        dead_letter(c, SIO_PERMANENT, c->env.reply_error, NULL, 1, c->env.reply_error);
        return;
    }
    if (!sio_worker_knows(w, c->env.workflow)) {
        char m[700];
        size_t n = strlen(c->env.workflow), k = n > 200 ? 200 : n;
        while (k < n && k > 0 && ((unsigned char)c->env.workflow[k] & 0xC0) == 0x80) k--;
        int len = snprintf(m, sizeof m, "unknown workflow '%.*s%s'", (int)k, c->env.workflow,
                           k < n ? "..." : "");
        const char *found[3], *close[3];
        size_t nf = k < n ? 0 : sio_worker_suggest(w, c->env.workflow, found, 3), nc = 0;
        for (size_t i = 0; i < nf; i++) /* names of 100 bytes at most: the message stays short */
            if (strlen(found[i]) <= 100) close[nc++] = found[i];
        for (size_t i = 0; i < nc && len > 0 && (size_t)len < sizeof m; i++)
            len += snprintf(m + len, sizeof m - (size_t)len, "%s%s%s", i ? ", " : " (did you mean ",
                            close[i], i + 1 == nc ? "?)" : "");
        dead_letter(c, SIO_PERMANENT, m, NULL, 0, NULL);
        return;
    }
    size_t klen = strlen(cfg->dedupe_key_prefix) + strlen(c->env.correlation_id) + 1;
    c->key = malloc(klen);
    if (c->key == NULL) {
        sio_err_set(&err, SIO_E_NOMEM, "out of memory");
        dead_letter(c, SIO_TRANSIENT, err.msg, NULL, 0, NULL);
        return;
    }
    snprintf(c->key, klen, "%s%s", cfg->dedupe_key_prefix, c->env.correlation_id);
    snprintf(c->token, sizeof c->token, "lease:%s:%p:%llx", c->ctx->owner, (void *)c,
             (unsigned long long)c->offset);
    attempt(c);
}

sio_command *sio_command_new(const sio_command_ctx *ctx, const rd_kafka_message_t *m,
                             sio_err *err) {
    sio_command *c = calloc(1, sizeof *c);
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (c == NULL || (c->raw = malloc(m->len + 1)) == NULL || (c->topic = strdup(topic)) == NULL) {
        sio_command_free(c);
        sio_err_set(err, SIO_E_NOMEM, "out of memory taking a command");
        return NULL;
    }
    if (m->len) memcpy(c->raw, m->payload, m->len);
    c->raw[m->len] = '\0';
    c->raw_len = m->len;
    if (m->key && (c->msg_key = malloc(m->key_len ? m->key_len : 1)) != NULL) {
        memcpy(c->msg_key, m->key, m->key_len);
        c->msg_key_len = m->key_len;
    }
    c->taken_ns = sio_mono_ns();
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        c->headers = rd_kafka_headers_copy(h);
    c->ctx = ctx;
    c->task.start = start;
    c->task.on_op = on_op;
    c->partition = m->partition;
    c->offset = m->offset;
    rd_kafka_timestamp_type_t tt;
    c->timestamp = rd_kafka_message_timestamp(m, &tt);
    c->timestamp_type = (int)tt;
    c->polled_ns = sio_trace_now_ns();
    c->received_ms = sio_wall_ms();
    c->rng = (uint32_t)(m->offset * 2654435761u) ^ (uint32_t)c->received_ms ^ 0x5bd1e995u;
    return c;
}

void sio_command_post(sio_command *c, sio_worker *w) {
    sio_worker_post(w, &c->task);
}

void sio_command_committed(sio_command *c) {
    trace_finished(c);
    sio_span_log_here(NULL);
}

void sio_command_free(sio_command *c) {
    if (c == NULL) return;
    if (c->span) { /* abandoned: not finished */
        sio_span_error(c->span, eos(c) ? "abandoned: its transaction did not commit (the command "
                                         "is consumed again), or the service stopped"
                                       : "abandoned: the service stopped before its outcome was "
                                         "in Kafka");
        sio_span_end(c->span);
    }
    free(c->msg_key);
    free_steps(c);
    free(c->steps);
    sio_envelope_clear(&c->env);
    if (c->headers) rd_kafka_headers_destroy(c->headers);
    free(c->raw);
    free(c->topic);
    free(c->key);
    free(c->response);
    free(c->dlq_text);
    free(c->fail_msg);
    free(c->fail_step);
    free(c->dl_reason);
    sio_refusals_free(c->refusals);
    free(c->refused_topic);
    free(c->refused_error);
    free(c);
}

/* --- exactly once: the hand-over ------------------------------------------------*/

int sio_command_output(const sio_command *c, size_t i, sio_output *o) {
    const char *cid = c->env.correlation_id;
    size_t nsteps = c->outcome == SIO_OUT_FINAL ? c->nsteps : 0;
    if (i < nsteps) {
        const sio_step_msg *s = &c->steps[i];
        *o = (sio_output){.topic = s->topic ? s->topic : c->reply,
                          .key = s->topic ? s->key : cid,
                          .key_len = s->topic ? s->key_len : cid ? strlen(cid) : 0,
                          .value = s->text,
                          .len = s->len,
                          .headers = c->trace_headers,
                          .nheaders = c->ntrace_headers};
        return 1;
    }
    if (i > nsteps || c->outcome == SIO_OUT_NONE) return 0;
    int dlq = c->outcome == SIO_OUT_DLQ;
    *o = (sio_output){.topic = dlq ? c->dlq_topic : c->reply,
                      .key = cid,
                      .key_len = cid ? strlen(cid) : 0,
                      .value = dlq ? c->dlq_text : c->response,
                      .len = dlq ? c->dlq_len : c->response_len,
                      .headers = c->trace_headers,
                      .nheaders = c->ntrace_headers};
    return 1;
}

void sio_command_refuse(sio_command *c, size_t i, const char *why) {
    sio_output o;
    if (c->refused_topic || !sio_command_output(c, i, &o)) return;
    c->refused_topic = strdup(o.topic);
    c->refused_error = strdup(why);
    c->refused_minimal = c->outcome == SIO_OUT_DLQ && c->dlq_minimal;
}

sio_refusal *sio_command_refusal(const sio_command *c) {
    if (c->refused_topic == NULL || c->refused_error == NULL) return NULL;
    sio_refusal r = {.topic = c->refused_topic, .error = c->refused_error,
                     .minimal = c->refused_minimal};
    return sio_refusals_copy(&r);
}

sio_refusal *sio_refusals_copy(const sio_refusal *list) {
    sio_refusal *head = NULL, **tail = &head;
    for (const sio_refusal *r = list; r; r = r->next) {
        sio_refusal *n = calloc(1, sizeof *n);
        if (n == NULL || (n->topic = strdup(r->topic)) == NULL ||
            (n->error = strdup(r->error)) == NULL) {
            if (n) free(n->topic);
            free(n);
            sio_refusals_free(head);
            return NULL;
        }
        n->minimal = r->minimal;
        *tail = n;
        tail = &n->next;
    }
    return head;
}

void sio_refusals_free(sio_refusal *list) {
    for (sio_refusal *n; list; list = n) {
        n = list->next;
        free(list->topic);
        free(list->error);
        free(list);
    }
}
