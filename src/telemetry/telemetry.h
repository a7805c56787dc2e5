/*
 * telemetry.h - the telemetry of `serve`, started and stopped as one:
 * the operations listener (OPS_ADDR), the liveness bound
 * (OPS_STALL_TIMEOUT) and the span exporter (OTEL_*).
 *
 * The parts: metrics.h (the metrics), health.h (heartbeats, readiness),
 * catalog.h (/workflows), ops.h (the listener), tracectx.h (W3C trace
 * context, sampling), trace.h (spans, OTLP export).
 */
#ifndef SIO_TELEMETRY_H
#define SIO_TELEMETRY_H

#include "config.h"
#include "sio_err.h"

typedef struct sio_telemetry sio_telemetry;

/* Starts what cfg asks for (cfg borrowed for the call).  Returns the
 * handle (the caller owns it), or NULL with err set when the listener
 * cannot bind (SIO_E_IO) or memory is short. */
sio_telemetry *sio_telemetry_start(const sio_config *cfg, sio_err *err);

/* The listener's bound port, or 0 when it is off. */
int sio_telemetry_ops_port(const sio_telemetry *t);

/* Stops the listener and flushes and stops the exporter.  Accepts NULL. */
void sio_telemetry_stop(sio_telemetry *t);

#endif
