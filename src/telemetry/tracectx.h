/*
 * tracectx.h - W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * the traceparent and tracestate headers, trace and span ids, sampling.
 *
 * Parsing is strict, as the recommendation asks: a traceparent that is not
 * exactly right is ignored as a whole (the command then starts a new
 * trace), and a tracestate that is not a valid list is dropped.
 *
 *   traceparent  version "00": exactly 55 characters, 00-<32 hex>-<16 hex>-
 *                <2 hex>, lower-case hex only, trace id and parent id not
 *                all zeros.  A higher version (not "ff") may be longer, with
 *                a '-' after the 55th character; its first four fields are
 *                read as version 00's.  Only the sampled flag (bit 0) is
 *                kept.
 *   tracestate   up to 32 comma-separated key=value members, optional
 *                blanks around each, empty members skipped; keys
 *                [a-z][a-z0-9_*-/]{0,255} or tenant@system forms; values 1-256
 *                printable ASCII characters but ',' and '=', not ending in a
 *                space; a key given twice makes the list invalid.
 */
#ifndef SIO_TRACECTX_H
#define SIO_TRACECTX_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SIO_TRACEPARENT_LEN 55
#define SIO_TRACESTATE_MAX 512 /* the recommendation's propagation minimum */

typedef struct sio_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;                            /* bit 0: sampled */
    char tracestate[SIO_TRACESTATE_MAX + 1]; /* "" when none */
} sio_trace_ctx;

/* Parses a traceparent value of len bytes into out (tracestate left "").
 * Returns 0, or -1 when it is not valid (out is then unspecified). */
int sio_traceparent_parse(const char *s, size_t len, sio_trace_ctx *out);

/* Writes c's traceparent (version 00) into out: 55 characters + NUL. */
void sio_traceparent_format(const sio_trace_ctx *c, char out[SIO_TRACEPARENT_LEN + 1]);

/* Validates a tracestate value of len bytes and writes its members,
 * blanks and empty members removed, into out (size n).  Returns 0, or -1
 * when the list is invalid or does not fit (out is then ""). */
int sio_tracestate_parse(const char *s, size_t len, char *out, size_t n);

/* Random non-zero ids (a per-thread generator seeded from getrandom). */
void sio_trace_new_trace_id(uint8_t id[16]);
void sio_trace_new_span_id(uint8_t id[8]);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void sio_trace_hex(const uint8_t *b, size_t n, char *out);

/* --- sampling (OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG) --------------*/

typedef struct sio_sampler {
    sio_sampler_kind kind;
    double ratio; /* traceidratio's probability, 0..1 */
} sio_sampler;

/* Whether a new span of trace_id is sampled.  parent: the span's parent
 * context (NULL for a root span); the parentbased_* samplers follow its
 * sampled flag, the others ignore it.  traceidratio samples the trace ids
 * whose last 8 bytes, read big-endian, fall below ratio * 2^64, so every
 * service with the same ratio takes the same decision for a trace. */
int sio_sampler_sample(const sio_sampler *s, const sio_trace_ctx *parent,
                       const uint8_t trace_id[16]);

#endif
