/*
 * metrics.h - the process's Prometheus metrics: one table, bounded labels,
 * lock-free updates.
 *
 * Every metric is declared once, in SIO_METRICS below (id, type, name,
 * labels, buckets, help); the README's "Observability" section lists the
 * same names and a unit test checks the two agree.  Names follow the
 * Prometheus conventions: a `sio_` prefix, the unit in the name
 * (`_seconds`, `_bytes`, `_messages`), `_total` on counters.
 *
 * Labels are bounded by construction.  A label is a dimension with a fixed
 * set of values:
 *
 *   workflow   the intents of the loaded sets (sio_metrics_set_catalog), at
 *              most SIO_METRICS_MAX_WORKFLOWS; anything else is "unknown"
 *   step       (workflow, step id) pairs of the loaded sets, at most
 *              SIO_METRICS_MAX_STEPS; anything else is unknown/unknown
 *   outcome, class, code, kind, result: small enums (below)
 *   worker     0 .. WORKER_COUNT-1 (at most SIO_METRICS_MAX_WORKERS)
 *
 * A name once seen keeps its index (and its series) for the life of the
 * process, so counters never go backwards when a reload drops a workflow.
 *
 * Threads.  Updates are relaxed atomic adds on static storage: any thread,
 * no lock, usable before sio_metrics_init and in programs that never expose
 * anything (the CLI, tests).  Label lookups (sio_metrics_workflow,
 * sio_metrics_step) read a published, append-only table without a lock;
 * sio_metrics_set_catalog appends under a mutex.  Exposition runs on the
 * operations thread and reads every cell once (a scrape may see a command
 * counted in one metric and not yet in another; each value is exact).
 */
#ifndef SIO_METRICS_H
#define SIO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

#define SIO_METRICS_MAX_WORKFLOWS 256
#define SIO_METRICS_MAX_STEPS 2048
#define SIO_METRICS_MAX_WORKERS 1024

/* Label schemes: which dimensions a metric has. */
typedef enum sio_mlabels {
    SIO_ML_NONE,
    SIO_ML_WORKFLOW,         /* workflow */
    SIO_ML_WORKFLOW_OUTCOME, /* workflow, outcome */
    SIO_ML_WORKFLOW_CODE,    /* workflow, code */
    SIO_ML_STEP,             /* workflow, step */
    SIO_ML_CLASS,            /* class */
    SIO_ML_KIND,             /* kind (sandbox limit) */
    SIO_ML_RESULT,           /* result (reload) */
    SIO_ML_WORKER,           /* worker */
    SIO_ML_COLLECTED,        /* labels and values computed at exposition */
} sio_mlabels;

typedef enum sio_mtype { SIO_MT_COUNTER, SIO_MT_GAUGE, SIO_MT_HISTOGRAM } sio_mtype;

/* Histogram bucket sets (upper bounds in seconds, see metrics.c). */
typedef enum sio_mbuckets { SIO_MB_NONE, SIO_MB_WORK, SIO_MB_FAST } sio_mbuckets;

/* X(id, type, name, labels, buckets, help) */
#define SIO_METRICS(X)                                                                            \
    X(COMMANDS_RECEIVED, COUNTER, "sio_commands_received_total", WORKFLOW, NONE,                 \
      "Commands taken from the commands topic, by workflow (unknown: unparsable or not loaded)") \
    X(COMMANDS_FINISHED, COUNTER, "sio_commands_finished_total", WORKFLOW_OUTCOME, NONE,         \
      "Commands whose outcome is in Kafka, by workflow and outcome (success, dlq, duplicate)")   \
    X(COMMAND_DURATION, HISTOGRAM, "sio_command_duration_seconds", WORKFLOW, WORK,               \
      "Time from taking a command to its outcome being in Kafka, by workflow")                   \
    X(STEP_DURATION, HISTOGRAM, "sio_step_duration_seconds", STEP, WORK,                         \
      "Time one step took, by workflow and step id")                                             \
    X(COMMAND_RETRIES, COUNTER, "sio_command_retries_total", WORKFLOW_CODE, NONE,                \
      "Transient failures retried after a backoff, by workflow and error code")                  \
    X(DLQ_MESSAGES, COUNTER, "sio_dlq_messages_total", CLASS, NONE,                              \
      "Commands dead-lettered, by error class (permanent, transient)")                           \
    X(DEDUPE_CLAIMS, COUNTER, "sio_dedupe_claims_total", NONE, NONE,                             \
      "Correlation ids claimed in Redis (a command that runs)")                                  \
    X(DEDUPE_WAITS, COUNTER, "sio_dedupe_waits_total", NONE, NONE,                               \
      "Duplicates of a command in flight that waited for its owner")                             \
    X(DEDUPE_REPLAYS, COUNTER, "sio_dedupe_replays_total", NONE, NONE,                           \
      "Duplicates answered with the stored response, without running the workflow")              \
    X(COMMANDS_IN_FLIGHT, GAUGE, "sio_commands_in_flight", NONE, NONE,                           \
      "Commands taken and not finished")                                                         \
    X(BACKPRESSURE_PAUSES, COUNTER, "sio_backpressure_pauses_total", NONE, NONE,                 \
      "Times the consumer paused its partitions because the workers stayed full")                \
    X(CONSUMER_PAUSED, GAUGE, "sio_consumer_paused", NONE, NONE,                                 \
      "1 while the consumer's partitions are paused (backpressure or drain)")                    \
    X(PARTITIONS_ASSIGNED, GAUGE, "sio_partitions_assigned", NONE, NONE,                         \
      "Partitions of the commands topic assigned to this member")                                \
    X(CONSUMER_LAG, GAUGE, "sio_consumer_lag_messages", COLLECTED, NONE,                         \
      "Messages behind the partition's high watermark, from librdkafka statistics")              \
    X(PRODUCER_QUEUE, GAUGE, "sio_producer_queue_messages", NONE, NONE,                          \
      "Messages waiting in the producer's queues, from librdkafka statistics")                   \
    X(DELIVERY_FAILURES, COUNTER, "sio_kafka_delivery_failures_total", NONE, NONE,               \
      "Produced messages whose delivery report was an error")                                    \
    X(REDIS_DURATION, HISTOGRAM, "sio_redis_request_duration_seconds", NONE, FAST,               \
      "Round trip of one Redis command")                                                         \
    X(REDIS_ERRORS, COUNTER, "sio_redis_errors_total", NONE, NONE,                               \
      "Redis commands that failed (connection lost, refused, error reply)")                      \
    X(RELOADS, COUNTER, "sio_workflow_reloads_total", RESULT, NONE,                              \
      "Workflow reloads by result (ok: the new set went live, rejected: the old one stays)")     \
    X(WORKFLOWS_LOADED, GAUGE, "sio_workflows_loaded", NONE, NONE,                               \
      "Workflows in the live set")                                                               \
    X(WORKFLOW_SET_VERSION, GAUGE, "sio_workflow_set_version", NONE, NONE,                       \
      "Version of the live workflow set (1 at start, +1 per reload that went live)")             \
    X(LIMIT_KILLS, COUNTER, "sio_sandbox_limit_kills_total", KIND, NONE,                         \
      "Executions killed by a sandbox limit, by kind (memory, instructions, deadline)")          \
    X(LUA_MEMORY, GAUGE, "sio_lua_memory_bytes", WORKER, NONE,                                   \
      "Bytes allocated by a worker's Lua state")                                                 \
    X(HEARTBEAT_AGE, GAUGE, "sio_thread_heartbeat_age_seconds", COLLECTED, NONE,                 \
      "Seconds since each loop thread last showed progress")                                     \
    X(SPANS_EXPORTED, COUNTER, "sio_trace_spans_exported_total", NONE, NONE,                     \
      "Spans the OTLP exporter delivered")                                                       \
    X(SPANS_DROPPED, COUNTER, "sio_trace_spans_dropped_total", NONE, NONE,                       \
      "Spans dropped: the export queue was full, or the collector refused or did not answer")

typedef enum sio_metric {
#define SIO_X_(id, type, name, labels, buckets, help) SIO_M_##id,
    SIO_METRICS(SIO_X_)
#undef SIO_X_
        SIO_M__COUNT
} sio_metric;

/* Label values of the enum dimensions. */
typedef enum sio_outcome {
    SIO_OUTCOME_SUCCESS,
    SIO_OUTCOME_DLQ,
    SIO_OUTCOME_DUPLICATE,
    SIO_OUTCOME__COUNT
} sio_outcome;

typedef enum sio_reload_result {
    SIO_RELOAD_OK,
    SIO_RELOAD_REJECTED,
    SIO_RELOAD__COUNT
} sio_reload_result;

/* kind: 0 memory, 1 instructions, 2 deadline (see sio_metrics_kill_kind) */
#define SIO_METRICS_KINDS 3

/* --- updates (any thread, lock-free) ------------------------------------*/

/* Counter += n / gauge += n (n may be negative for a gauge). */
void sio_metric_add(sio_metric m, size_t cell, int64_t n);
/* Gauge = v. */
void sio_metric_set(sio_metric m, size_t cell, int64_t v);
/* Histogram: one observation of ns nanoseconds. */
void sio_metric_observe_ns(sio_metric m, size_t cell, uint64_t ns);

static inline void sio_metric_inc(sio_metric m, size_t cell) {
    sio_metric_add(m, cell, 1);
}

/* The cell of a two-dimension metric (workflow x outcome, workflow x code):
 * first dimension's index times the second's size plus the second's. */
size_t sio_metrics_cell2(sio_metric m, size_t i0, size_t i1);

/* Label indices.  0 is "unknown" for workflow and step. */
size_t sio_metrics_workflow(const char *intent);  /* NULL -> 0 */
size_t sio_metrics_step(size_t workflow, const char *step_id);
size_t sio_metrics_code(sio_code code);            /* index of an error code */
size_t sio_metrics_kill_kind(int sio_kill_value);  /* sandbox.h sio_kill -> kind */

/* CLOCK_MONOTONIC in nanoseconds, for durations. */
uint64_t sio_mono_ns(void);

/* --- the label catalogue -------------------------------------------------*/

/* One workflow of a loaded set, as the catalogue needs it. */
typedef struct sio_metrics_wf {
    const char *intent;
    const char *const *steps; /* step ids */
    size_t nsteps;
} sio_metrics_wf;

/* Adds the workflows and steps of a loaded set to the label values (names
 * already known keep their index; past the caps, the rest stay unknown and
 * one warning is logged).  Strings are copied; invalid UTF-8 bytes and
 * control characters are replaced by '?'.  Thread-safe. */
void sio_metrics_set_catalog(const sio_metrics_wf *wfs, size_t n);

/* Number of worker label values exposed (WORKER_COUNT). */
void sio_metrics_set_workers(int n);

/* --- collected metrics ---------------------------------------------------*/

/* A consumer-lag sample: replaces the lag of (topic, partition); lag < 0
 * forgets it (revoked).  Thread-safe; at most 4096 partitions are kept. */
void sio_metrics_set_lag(const char *topic, int32_t partition, int64_t lag);
/* Forgets every lag sample (the member lost its assignment). */
void sio_metrics_clear_lag(void);

/* Reads a librdkafka statistics JSON (statistics.interval.ms): a consumer's
 * per-partition consumer_lag of the partitions it fetches, or a producer's
 * msg_cnt (queue depth).  Unknown or malformed text is ignored. */
void sio_metrics_kafka_stats(const char *json, size_t len);

/* --- exposition ----------------------------------------------------------*/

/* The Prometheus text format 0.0.4 of every metric, HELP and TYPE first.
 * Returns a malloc'd NUL-terminated text the caller frees, its length in
 * *len; NULL when out of memory. */
char *sio_metrics_expose(size_t *len);

/* The i-th metric's name, type, help and label names (space-separated;
 * "" for none); 0 past the end.  Static storage.  For the README check. */
int sio_metrics_info(size_t i, const char **name, sio_mtype *type, const char **help,
                     const char **labels);

/* Test support: every value back to 0 (label catalogue kept). */
void sio_metrics_reset(void);

#endif
