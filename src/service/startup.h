/*
 * startup.h - serve's wait for Kafka and Redis at start.
 *
 * Under docker compose or Kubernetes the brokers and Redis may come up
 * after the service, so instead of failing at the first unanswered
 * request, serve asks again with a growing pause (250 ms doubling to 5 s)
 * until both answer or STARTUP_TIMEOUT has passed.  Each unanswered round
 * logs what it waits for (`waiting for kafka` / `waiting for redis`, with
 * the address, the last error, the time waited and the next retry); an
 * answer after waiting logs `kafka answered` / `redis answered`.  A
 * refusal (credentials, certificates) ends the wait at once.
 */
#ifndef SIO_STARTUP_H
#define SIO_STARTUP_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "sio_err.h"

/* Waits until the brokers (`brokers`, borrowed) answer a metadata request
 * and, when with_redis, until the Redis of cfg answers PING (after AUTH
 * when credentials are configured), for at most cfg->startup_timeout_ms.
 * Kafka is asked through a client of its own made from `brokers` and cfg's
 * pass-through properties (SASL, TLS), destroyed before returning.
 * Returns 0 when both answer.  Fails with SIO_E_KAFKA or SIO_E_REDIS and a
 * message naming every address that still did not answer at the deadline,
 * or at once when either refuses: Redis answering AUTH or PING with an
 * error (wrong credentials, NOAUTH), Kafka failing SASL authentication or
 * the TLS handshake (a certificate one side does not trust): waiting
 * would not change that.  SIO_E_CONFIG when the properties are invalid. */
int sio_startup_wait(const sio_config *cfg, const char *brokers, int with_redis, sio_err *err);

/* One look at the Redis of cfg: connect, AUTH when configured, PING, each
 * within timeout_ms.  Returns 0 when it answered, or -1 with err set.
 * Blocks the calling thread (the readiness probe's, never a loop's). */
int sio_startup_redis_ping(const sio_config *cfg, int64_t timeout_ms, sio_err *err);

#endif
