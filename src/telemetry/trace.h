/*
 * trace.h - spans, and their export over OTLP/HTTP.
 *
 * A span is started with the context it continues (a remote parent read
 * from a message's traceparent, a local parent's sio_span_context, or NULL
 * for a new trace).  Every span has ids, so its context can be written
 * into outgoing messages and requests (sio_span_traceparent) even when it
 * is not recorded; it is recorded - attributes, events, status kept, and
 * exported when it ends - only when the sampler says so and an exporter
 * runs.
 *
 * Export.  sio_trace_start runs one exporter thread that posts batches of
 * ended spans as OTLP/protobuf (ExportTraceServiceRequest, Content-Type
 * application/x-protobuf) to the collector's /v1/traces with libcurl.  A
 * recording span builds its OTLP Span message as attributes and events are
 * set (pb.h), so the recording thread does no more than append bytes and
 * the exporter only copies them into the request: JSON through jansson cost
 * more per span than the command it traced.  Ending a span only appends it
 * to a bounded queue: when the queue is full the span is dropped and counted
 * (sio_trace_spans_dropped_total), never waited for.  A batch goes out when
 * 512 spans are queued or a second after the first; a batch the collector
 * refuses or does not answer (10 s) is dropped and counted.
 *
 * Threads: a span belongs to the thread that uses it (one command's loop);
 * start/end from any thread.
 */
#ifndef SIO_TRACE_H
#define SIO_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"
#include "tracectx.h"

typedef struct sio_span sio_span;

/* OTLP SpanKind values. */
typedef enum sio_span_kind {
    SIO_SPAN_INTERNAL = 1,
    SIO_SPAN_SERVER = 2,
    SIO_SPAN_CLIENT = 3,
    SIO_SPAN_PRODUCER = 4,
    SIO_SPAN_CONSUMER = 5,
} sio_span_kind;

typedef struct sio_trace_cfg {
    const char *url;          /* OTLP/HTTP traces URL; NULL = record nothing */
    const char *service_name; /* resource service.name */
    sio_sampler sampler;
    size_t queue_max;         /* spans waiting at most; 0 = 2048 */
} sio_trace_cfg;

/* Starts the exporter (cfg is copied).  Without a url only ids and
 * propagation work.  Returns 0, or -1 with err set. */
int sio_trace_start(const sio_trace_cfg *cfg, sio_err *err);

/* Exports what is queued (waiting up to the request timeout) and stops
 * the thread.  Spans ended afterwards are dropped.  Safe when not started. */
void sio_trace_stop(void);

/* Starts a span named name (copied).  parent may be NULL.  Returns NULL only
 * when out of memory; every function below accepts NULL. */
sio_span *sio_span_start(const char *name, sio_span_kind kind, const sio_trace_ctx *parent);

/* The same, with the span's start at start_ns (sio_trace_now_ns, taken
 * earlier: e.g. when a message was polled, before a worker took it up). */
sio_span *sio_span_start_at(const char *name, sio_span_kind kind, const sio_trace_ctx *parent,
                            uint64_t start_ns);

/* The clock of span and event times: wall-clock ns since the epoch. */
uint64_t sio_trace_now_ns(void);

/* The span's own context: its trace id, its span id, the sampled flag and
 * the tracestate it inherited.  Owned by the span. */
const sio_trace_ctx *sio_span_context(const sio_span *s);

/* Writes the span's traceparent (55 characters + NUL) into out; "" for a
 * NULL span. */
void sio_span_traceparent(const sio_span *s, char out[SIO_TRACEPARENT_LEN + 1]);

/* Is it recorded (sampled, exporter running)? */
int sio_span_recording(const sio_span *s);

/* Attributes (keys and values copied; values not valid UTF-8 get U+FFFD). */
void sio_span_set_str(sio_span *s, const char *key, const char *val);
void sio_span_set_strn(sio_span *s, const char *key, const char *val, size_t len);
void sio_span_set_int(sio_span *s, const char *key, int64_t val);

/* An event now, with one optional string attribute (key NULL for none). */
void sio_span_event(sio_span *s, const char *name, const char *key, const char *val);

/* Status error with a message, and an "exception" event carrying it. */
void sio_span_error(sio_span *s, const char *message);

/* Ends the span now and hands it to the exporter (or frees it).  s is
 * invalid afterwards. */
void sio_span_end(sio_span *s);

/* Puts the span's ids into the calling thread's log lines (log.h); NULL
 * clears them. */
void sio_span_log_here(const sio_span *s);

/* The same for a span known by its context (trace and span id). */
void sio_trace_log_here(const sio_trace_ctx *c);

#endif
