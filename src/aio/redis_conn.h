/*
 * redis_conn.h - a blocking connection to the configured Redis, for what
 * runs outside a worker's loop: serve's start-up check (startup.h) and
 * replay's marks (replay_mark.h).  The workers' own connection is
 * asynchronous (aio.h) and authenticates the same way: AUTH [user] pass
 * when DEDUPE_REDIS_ADDR or REDIS_USERNAME / REDIS_PASSWORD give
 * credentials, nothing else before the first command.
 */
#ifndef SIO_REDIS_CONN_H
#define SIO_REDIS_CONN_H

#include <stdint.h>

#include "config.h"
#include "sio_err.h"

struct redisContext;

/* How an attempt to open a connection ended. */
typedef enum sio_redis_open_result {
    SIO_REDIS_OPENED,  /* connected, authenticated, PING answered */
    SIO_REDIS_SILENT,  /* no connection, no reply in time, or a Redis still
                        * starting (LOADING, BUSY, MASTERDOWN, TRYAGAIN) */
    SIO_REDIS_REFUSED, /* an error reply to AUTH or PING (wrong credentials,
                        * NOAUTH, NOPERM): trying again would not change it */
} sio_redis_open_result;

/* Connects to cfg's Redis (cfg borrowed) within timeout_ms, sends AUTH when
 * credentials are configured, then PING; timeout_ms is also each later
 * command's reply timeout.  On SIO_REDIS_OPENED *out is the connection
 * (owned by the caller: redisFree).  Otherwise *out is NULL and err says
 * what happened, naming the address and the command: "redis at A did not
 * answer[ AUTH| PING]: ..." or "redis at A refused AUTH: WRONGPASS ..."
 * (SIO_E_REDIS; the password never appears). */
sio_redis_open_result sio_redis_open(const sio_config *cfg, int64_t timeout_ms,
                                     struct redisContext **out, sio_err *err);

#endif
