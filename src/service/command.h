/*
 * command.h - one Kafka command's life, from its bytes to its outcome in
 * Kafka, as a task on a worker's loop (SPEC §7: the C host owns everything
 * that decides whether a command is lost, doubled or seen).
 *
 * The consumer thread creates a command from a message (sio_command_new
 * copies the value, the headers and where it came from) and posts it to a
 * worker.  From then on the worker's thread owns it and nothing blocks:
 *
 *   1. parse and validate the envelope (envelope.h); a bad one, an unknown
 *      workflow or an illegal reply_topic is dead-lettered at once;
 *   2. claim the correlation id: SET key lease NX PX DEDUPE_LEASE.  A key
 *      holding "done:<response>" is a finished duplicate: its stored
 *      response is published again without running anything.  A key held
 *      by another owner is a duplicate in flight: re-tried on a timer
 *      (never blocking) until the owner finishes or its lease expires;
 *   3. run the workflow (sio_worker_run, Lua values in and out) while a
 *      timer renews the lease every DEDUPE_LEASE/3; each step result is
 *      produced as its step completes;
 *   4. store "done:<response>" with PX DEDUPE_TTL, then produce the final
 *      message and wait for its delivery report; step results whose
 *      delivery failed are produced again, then the final message again,
 *      so the last final message follows every step result;
 *   5. the finished callback: the outcome is in Kafka, the offset may
 *      complete.
 *
 * Failures.  A transient one (Redis, Kafka, sio.error.transient, a step
 * timeout) re-runs the failed phase after an exponential backoff with
 * jitter (RETRY_BACKOFF_BASE doubling up to RETRY_BACKOFF_MAX, a random
 * half of it added), RETRY_ATTEMPTS attempts in all; then, like a permanent
 * one, the command is dead-lettered to <reply_topic>.dlq with the command
 * as received (envelope.h sio_dlq_info).  A final message or DLQ entry that
 * fails transiently is produced again after a backoff for as long as the
 * command lives, logged each time, never dropped.  A produce that can never
 * succeed (kafka.h sio_kafka_err_permanent: illegal or unauthorized topic,
 * too large, invalid record) sends the outcome to the default DLQ
 * (KAFKA_RESPONSES_TOPIC.dlq) with "dead_letter": {topic, reason}, trimmed
 * to fit that topic's size limit; if even the default DLQ refuses it, the
 * entry is cut to its minimum and retried with backoff (an operator must
 * fix the default DLQ; the partition waits rather than lose the record).
 * A run killed by a sandbox limit is a permanent error the command
 * dead-letters itself.  Every path ends in the finished callback, except a
 * worker stopped under the command (shutdown): then the offset is not
 * committed and Kafka redelivers the command.
 *
 * Exactly once (ctx->eos, PROCESSING_GUARANTEE=exactly_once).  The command
 * produces nothing itself: its step results and sio.kafka.produce messages
 * are held (a script's produce completes at once, accepted into the
 * command's transaction), the dedupe record stores them with the response
 * and where the command came from (record.h), and the finished callback
 * hands over the messages to write - every held one and the final message,
 * or only the DLQ entry when the command was dead-lettered (the step
 * results of a failed run are dropped with it).  The service writes them
 * in the transaction that commits the command's offset (txn.h).  When that
 * transaction aborts, the command is consumed again and answered from its
 * record; a topic that refused one of its messages for good is passed back
 * in refusals, and the command then takes the path at-least-once takes on
 * that refusal (the default DLQ, then the minimal entry) instead of
 * writing there again.
 *
 * Telemetry.  The command continues the W3C trace of its message's
 * traceparent/tracestate headers (a new trace when they are absent or
 * invalid) with a consumer span following the messaging semantic
 * conventions; its run's steps and their calls are children of it
 * (worker.h sio_run_cbs.trace).  Every message it produces - step results,
 * the final message, a replayed response, the DLQ entry - carries a
 * traceparent naming that span (and the tracestate it continues), and
 * every line it logs carries its trace_id and span_id.  It counts itself
 * in metrics.h (received, dedupe claims / waits / replays, retries by
 * code, DLQ entries by class, finished by outcome and its duration) and
 * logs one "command finished" line (info) and a "transient failure;
 * retrying" line (warn, at most RETRY_LOG_PER_SECOND a second from all
 * commands) per retry.  Exactly once, a command is finished - and its DLQ
 * entry counted - only when the transaction holding its messages commits
 * (sio_command_committed); one whose transaction aborts is not counted
 * (its span ends in error) and is counted when it is consumed again and
 * that transaction commits.
 */
#ifndef SIO_COMMAND_H
#define SIO_COMMAND_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "sio_err.h"
#include "trace.h"
#include "worker.h"

typedef struct sio_command sio_command;

/* What every command of a service shares; read-only while commands run. */
typedef struct sio_command_ctx {
    const sio_config *cfg;  /* borrowed: topics, dedupe, retries, LOG_PAYLOADS */
    const char *default_dlq; /* KAFKA_RESPONSES_TOPIC.dlq */
    /* The most bytes a message value may have: on any topic (the producer's
     * message.max.bytes), on the default responses topic and on the
     * default DLQ (also bounded by the topics' max.message.bytes). */
    size_t max_message, responses_max, default_dlq_max;
    char owner[48];          /* this process, in lease tokens */
    int eos;                 /* exactly once: hand the messages over, produce nothing */
    /* Worker thread: c's outcome is in Kafka (or c was a duplicate whose
     * answer is); its offset may complete.  c belongs to the caller again. */
    void (*finished)(sio_command *c, void *data);
    void *finished_data;
} sio_command_ctx;

typedef struct sio_step_msg sio_step_msg;

/* Exactly once: a topic that refused one of the command's messages for
 * good (kafka.h sio_kafka_err_permanent) in a transaction that was then
 * aborted.  minimal: it refused even the DLQ entry cut to its minimum. */
typedef struct sio_refusal {
    struct sio_refusal *next;
    char *topic, *error;
    int minimal;
} sio_refusal;

/* Exactly once: what a finished command hands over. */
enum { SIO_OUT_NONE, SIO_OUT_FINAL, SIO_OUT_DLQ };

struct sio_command {
    sio_task task; /* first: a sio_task * is a sio_command * */
    /* Set by sio_command_new (consumer thread); read-only afterwards. */
    const sio_command_ctx *ctx;
    char *raw; /* the message value, NUL-terminated */
    size_t raw_len;
    char *msg_key; /* the message key, or NULL */
    size_t msg_key_len;
    uint64_t taken_ns; /* sio_mono_ns when taken, for its duration */
    uint64_t polled_ns; /* sio_trace_now_ns then: where its span starts */
    int timestamp_type; /* rd_kafka_timestamp_type_t of timestamp */
    rd_kafka_headers_t *headers; /* a copy, or NULL */
    char *topic;
    int32_t partition;
    int64_t offset, timestamp, received_ms;
    /* The service's (consumer thread). */
    uint64_t gen;
    sio_command *prev, *next, *done_next;
    sio_refusal *refusals; /* exactly once: set before post; read-only for the worker */
    /* Exactly once, the transaction thread's while c is in its batch: the
     * first message refused for good. */
    char *refused_topic, *refused_error;
    int refused_minimal;
    /* The worker's (its loop thread), from start on. */
    sio_worker *w;
    sio_envelope env;
    const char *reply; /* env.reply_topic or the default */
    char *key;         /* the dedupe key */
    char token[96];    /* our lease value */
    int phase;
    uint64_t op, lease_op;
    int attempts, claimed, stored, duplicate, waiting_logged, in_run, publish_tries;
    int64_t waited_ms;
    sio_run *run;
    char *response;
    size_t response_len;
    sio_step_msg *steps; /* step results of the current run */
    size_t nsteps, capsteps, steps_pending;
    sio_err step_err; /* first step-result failure of the run, or code OK */
    int outcome;      /* exactly once: SIO_OUT_FINAL or SIO_OUT_DLQ when finished */
    /* dead-lettering */
    char *dlq_text;
    size_t dlq_len;
    char dlq_topic[256];
    int dlq_default, dlq_minimal;
    sio_errclass fail_cls;
    char *fail_msg, *fail_step, *dl_reason;
    uint32_t rng;
    /* telemetry (the worker's, from start on) */
    sio_span *span;                             /* the command's; NULL once ended */
    char traceparent[SIO_TRACEPARENT_LEN + 1];  /* of span, for what it produces */
    char tracestate[SIO_TRACESTATE_MAX + 1];    /* the one it continues, or "" */
    sio_kafka_header trace_headers[2];          /* both, as every message's headers */
    size_t ntrace_headers;
    size_t wf_label;                            /* metrics.h workflow label */
    int dlq_delivered;                          /* the outcome is a DLQ entry */
    int rewound; /* answered from its own record (consumed again after an abort) */
};

/* Consumer thread: a command for message m (its value, key, headers,
 * topic, partition, offset and timestamp are copied).  Returns NULL with
 * err set when out of memory.  The caller owns it until sio_command_post,
 * and again from ctx->finished on (or after the worker stopped). */
sio_command *sio_command_new(const sio_command_ctx *ctx, const rd_kafka_message_t *m,
                             sio_err *err);

/* Hands c to worker w (any thread); its life then runs on w's loop. */
void sio_command_post(sio_command *c, sio_worker *w);

/* Consumer thread, exactly once: the transaction holding c's messages
 * committed - c is counted as finished (metrics, the "command finished"
 * line, its duration up to now) and its span ends.  At least once this
 * happens on the worker when the outcome is delivered.  c stays the
 * caller's (freed with sio_command_free). */
void sio_command_committed(sio_command *c);

/* Frees c (never while a worker runs it).  Accepts NULL. */
void sio_command_free(sio_command *c);

/* Exactly once, a finished command's messages, in order: held step
 * results and produces, then the final message (SIO_OUT_FINAL), or only
 * the DLQ entry (SIO_OUT_DLQ).  Every pointer is borrowed from c. */
typedef struct sio_output {
    const char *topic;
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *value;
    size_t len;
    const sio_kafka_header *headers; /* the command's trace context */
    size_t nheaders;
} sio_output;

/* The i-th message of a finished command: 1 with *o set, 0 past the end. */
int sio_command_output(const sio_command *c, size_t i, sio_output *o);

/* Transaction thread: the i-th message was refused for good (why is
 * copied); the first refusal is kept for sio_command_refusal. */
void sio_command_refuse(sio_command *c, size_t i, const char *why);

/* Consumer thread, after the batch: the refusal sio_command_refuse kept
 * (a new sio_refusal the caller owns), or NULL. */
sio_refusal *sio_command_refusal(const sio_command *c);

/* A copy of a refusal list, which the caller owns; NULL when out of memory
 * (or list is NULL). */
sio_refusal *sio_refusals_copy(const sio_refusal *list);

/* Frees a refusal list.  Accepts NULL. */
void sio_refusals_free(sio_refusal *list);

/* Exponential backoff with jitter for attempt n (1-based): d = min(max,
 * base * 2^(n-1)), then a random point of [d/2, d].  *rng is the state of
 * a xorshift generator (any non-zero seed). */
int64_t sio_backoff_ms(int64_t base, int64_t max, int n, uint32_t *rng);

#endif
