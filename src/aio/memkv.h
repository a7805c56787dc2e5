/*
 * memkv.h - an in-memory stand-in for the few Redis commands the service
 * uses (dedupe claims and the kv capability), for `serve --embedded`.
 *
 * Supported: PING, GET, SET key value [NX|XX] [PX ms|EX s], DEL key,
 * PEXPIRE key ms, INCR key.  Thread-safe: one store is shared by every
 * worker of the process.  Expired keys are dropped lazily.
 */
#ifndef SIO_MEMKV_H
#define SIO_MEMKV_H

#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

typedef struct sio_memkv sio_memkv;

typedef struct sio_memkv_reply {
    int type;        /* SIO_REDIS_NIL, _INT or _STR (aio.h) */
    long long integer;
    char *str;       /* malloc'd, owned by the caller (free) */
    size_t len;
} sio_memkv_reply;

/* The caller owns the result. */
sio_memkv *sio_memkv_create(sio_err *err);
void sio_memkv_destroy(sio_memkv *kv);

/* Runs one command.  Returns 0 with *reply filled, or -1 with err set
 * (unknown command, syntax, "not an integer", out of memory). */
int sio_memkv_command(sio_memkv *kv, int argc, const char **argv, const size_t *lens,
                      sio_memkv_reply *reply, sio_err *err);

/* Live keys (for tests). */
size_t sio_memkv_size(sio_memkv *kv);

#endif
