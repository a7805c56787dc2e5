/*
 * ops.h - the operations HTTP listener (OPS_ADDR): /metrics (Prometheus
 * text format 0.0.4), /healthz (liveness), /readyz (readiness), /workflows
 * (the live set, JSON).
 *
 * libmicrohttpd serves it on a thread of its own, so a scrape never runs
 * on a worker's loop or the consumer thread; handlers only read the
 * metrics, health and catalogue modules (lock-free or briefly locked),
 * except /readyz, whose Redis probe may wait up to its timeout.  GET and
 * HEAD only (405 otherwise); unknown paths 404.
 */
#ifndef SIO_OPS_H
#define SIO_OPS_H

#include "sio_err.h"

typedef struct sio_ops sio_ops;

/* Listens on host:port (a name or numeric address; port 0 = any free
 * port).  Returns the listener (the caller owns it), or NULL with err
 * (SIO_E_IO naming the address) when it cannot bind. */
sio_ops *sio_ops_start(const char *host, int port, sio_err *err);

/* The bound port. */
int sio_ops_port(const sio_ops *o);

/* Stops the thread and closes the socket.  Accepts NULL. */
void sio_ops_stop(sio_ops *o);

#endif
