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
 * commands) per retry.
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
    /* Worker thread: c's outcome is in Kafka (or c was a duplicate whose
     * answer is); its offset may complete.  c belongs to the caller again. */
    void (*finished)(sio_command *c, void *data);
    void *finished_data;
} sio_command_ctx;

typedef struct sio_step_msg sio_step_msg;

struct sio_command {
    sio_task task; /* first: a sio_task * is a sio_command * */
    /* Set by sio_command_new (consumer thread); read-only afterwards. */
    const sio_command_ctx *ctx;
    char *raw; /* the message value, NUL-terminated */
    size_t raw_len;
    char *msg_key; /* the message key, or NULL */
    size_t msg_key_len;
    uint64_t taken_ns; /* sio_mono_ns when taken, for its duration */
    rd_kafka_headers_t *headers; /* a copy, or NULL */
    char *topic;
    int32_t partition;
    int64_t offset, timestamp, received_ms;
    /* The service's (consumer thread). */
    uint64_t gen;
    sio_command *prev, *next, *done_next;
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
    size_t wf_label;                            /* metrics.h workflow label */
    int dlq_delivered;                          /* the outcome is a DLQ entry */
};

/* Consumer thread: a command for message m (its value, key, headers,
 * topic, partition, offset and timestamp are copied).  Returns NULL with
 * err set when out of memory.  The caller owns it until sio_command_post,
 * and again from ctx->finished on (or after the worker stopped). */
sio_command *sio_command_new(const sio_command_ctx *ctx, const rd_kafka_message_t *m,
                             sio_err *err);

/* Hands c to worker w (any thread); its life then runs on w's loop. */
void sio_command_post(sio_command *c, sio_worker *w);

/* Frees c (never while a worker runs it).  Accepts NULL. */
void sio_command_free(sio_command *c);

/* Exponential backoff with jitter for attempt n (1-based): d = min(max,
 * base * 2^(n-1)), then a random point of [d/2, d].  *rng is the state of
 * a xorshift generator (any non-zero seed). */
int64_t sio_backoff_ms(int64_t base, int64_t max, int n, uint32_t *rng);

#endif
