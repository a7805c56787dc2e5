/*
 * service.h - `serve`: the consumer-group member that feeds the workers.
 *
 * The calling thread consumes the commands topic and dispatches each message
 * to the least busy worker; a producer thread serves delivery reports.  A
 * command's offset is stored (and so committed by librdkafka's periodic and
 * closing commits) only when the runner reports that the command's final
 * message is in Kafka, and per partition only up to the lowest unfinished
 * offset.  Rebalances drop the tracking of partitions we lose, so a late
 * completion never stores an offset of a partition we no longer own.
 */
#ifndef SIO_SERVICE_H
#define SIO_SERVICE_H

#include "config.h"
#include "sio_err.h"

typedef struct sio_service sio_service;

typedef struct sio_service_opts {
    int embedded; /* librdkafka's mock cluster + in-memory dedupe store */
} sio_service_opts;

/* Waits for the brokers and Redis (up to STARTUP_TIMEOUT, see startup.h),
 * creates missing topics, starts the workers and the producer.  cfg is
 * borrowed and must outlive the service.  Returns
 * NULL with err set: SIO_E_KAFKA / SIO_E_REDIS name what did not answer. */
sio_service *sio_service_create(const sio_config *cfg, const sio_service_opts *opts,
                                sio_err *err);

/* The bootstrap servers in use (the mock cluster's under --embedded).
 * Owned by s. */
const char *sio_service_brokers(const sio_service *s);

/* Consumes until sio_service_stop, then drains (in-flight work gets up to
 * the drain timeout; what is abandoned is not committed), stops the
 * workers (each gets SIO_STOP_GRACE_MS; one still busy after that is left
 * running), flushes, commits and closes the consumer.  Returns 0, or -1
 * with err set: SIO_E_TIMEOUT when commands were abandoned at the drain
 * deadline or a worker did not stop. */
int sio_service_run(sio_service *s, sio_err *err);

/* Asks run to stop.  Async-signal-safe. */
void sio_service_stop(sio_service *s);

/* Asks every worker to reload its workflows.  Async-signal-safe (the work
 * happens on the service thread).  The outcome is logged once, when every
 * worker has reloaded: "workflows reloaded" (version, workers, the changed
 * files when known) or "reload rejected" (errors: file:line: message). */
void sio_service_reload(sio_service *s);

/* The same for changed files (the watcher's thread; not
 * async-signal-safe): paths (npaths of them, copied) and how many more
 * changed are named in the reload's log line. */
void sio_service_reload_files(sio_service *s, const char *const *paths, size_t npaths,
                              size_t more);

/* Frees s (after run returned, or instead of it).  Accepts NULL.  A
 * service with a worker that did not stop is not freed (the worker's
 * thread still uses it, and the configuration it borrows): it stays
 * allocated, and reachable, until the process exits. */
void sio_service_destroy(sio_service *s);

/* 1 when a worker did not stop (see sio_service_destroy). */
int sio_service_left_running(const sio_service *s);

#endif
