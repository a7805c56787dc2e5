/*
 * aio_redis.c - Redis commands on hiredis's async API and its libuv adapter.
 *
 * One connection per worker, opened on the first command and again after a
 * disconnect.  AUTH (with an ACL user when configured) is pipelined ahead of
 * the first command.  A command whose connection fails completes with
 * SIO_E_REDIS, which is transient: the caller may retry.
 */
#include "aio_internal.h"

#include <hiredis/adapters/libuv.h>

#include "memkv.h"
#include "metrics.h"
#include <stdlib.h>
#include <string.h>

static void on_connect(const redisAsyncContext *ac, int status) {
    sio_aio *aio = ac->data;
    if (status != REDIS_OK) aio->redis = NULL; /* hiredis frees it */
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    sio_aio *aio = ac->data;
    if (aio->redis == ac) aio->redis = NULL;
}

/* Flattens reply into res (pointers borrowed from reply). */
static void fill_result(redisReply *r, sio_aio_result *res, const char **elems, size_t *lens) {
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        res->redis_type = SIO_REDIS_INT;
        res->redis_int = r->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        res->redis_type = SIO_REDIS_STR;
        res->redis_str = r->str;
        res->redis_len = r->len;
        break;
    case REDIS_REPLY_ARRAY:
        res->redis_type = SIO_REDIS_ARRAY;
        res->redis_n = r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *e = r->element[i];
            int s = e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS;
            elems[i] = s ? e->str : NULL;
            lens[i] = s ? e->len : 0;
        }
        res->redis_elems = elems;
        res->redis_elem_lens = lens;
        break;
    default:
        res->redis_type = SIO_REDIS_NIL;
    }
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    sio_op *op = privdata;
    redisReply *r = reply;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    const char **elems = NULL;
    size_t *lens = NULL;
    /* telemetry: the round trip, and failures */
    sio_metric_observe_ns(SIO_M_REDIS_DURATION, 0, sio_mono_ns() - op->started_ns);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) sio_metric_inc(SIO_M_REDIS_ERRORS, 0);
    if (r == NULL) {
        sio_err_set(&res.err, SIO_E_REDIS, "redis: connection lost (%s)",
                    ac->errstr[0] ? ac->errstr : "disconnected");
    } else if (r->type == REDIS_REPLY_ERROR) {
        sio_code code = strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY", 4) == 0
                            ? SIO_E_REDIS
                            : SIO_E_INVAL;
        sio_err_set(&res.err, code, "redis: %s", r->str);
    } else {
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            elems = calloc(r->elements, sizeof *elems);
            lens = calloc(r->elements, sizeof *lens);
            if (elems == NULL || lens == NULL) {
                sio_err_set(&res.err, SIO_E_NOMEM, "redis: out of memory");
                goto done;
            }
        }
        fill_result(r, &res, elems, lens);
    }
done:
    sio_op_finish(op, &res);
    free(elems);
    free(lens);
}

/* The AUTH reply: a failure is logged through the next command's error. */
static void on_auth(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) redisAsyncDisconnect(ac);
}

static int connect_redis(sio_aio *aio, sio_err *err) {
    redisAsyncContext *ac = redisAsyncConnect(aio->redis_host, aio->cfg.redis_port);
    if (ac == NULL) return sio_err_set(err, SIO_E_NOMEM, "redis: out of memory");
    if (ac->err) {
        sio_err_set(err, SIO_E_REDIS, "redis %s:%d: %s", aio->redis_host, aio->cfg.redis_port,
                    ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = aio;
    redisLibuvAttach(ac, aio->loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (aio->cfg.redis_password) {
        if (aio->cfg.redis_user)
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s %s", aio->cfg.redis_user,
                              aio->cfg.redis_password);
        else
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", aio->cfg.redis_password);
    }
    aio->redis = ac;
    return 0;
}

static void on_deferred(uv_timer_t *t) {
    sio_op *op = t->data;
    sio_aio_result res = op->deferred;
    if (res.redis_type == SIO_REDIS_STR) res.redis_str = op->resp, res.redis_len = op->resp_len;
    sio_op_finish(op, &res);
}

/* Answers from the in-memory store; the reply is delivered on the loop. */
static uint64_t memkv_start(sio_aio *aio, void *owner, int argc, const char **argv,
                            const size_t *argvlen, sio_err *err) {
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_REDIS, err);
    if (op == NULL) return 0;
    sio_memkv_reply r;
    if (sio_memkv_command(aio->cfg.memkv, argc, argv, argvlen, &r, &op->deferred.err) == 0) {
        op->deferred.redis_type = r.type;
        op->deferred.redis_int = r.integer;
        op->resp = r.str;
        op->resp_len = r.len;
    } else {
        op->deferred.err.msg[sizeof op->deferred.err.msg - 1] = '\0';
    }
    return sio_op_start_timer(op, 0, on_deferred, err);
}

uint64_t sio_aio_redis(sio_aio *aio, void *owner, int argc, const char **argv,
                       const size_t *argvlen, sio_err *err) {
    if (aio->cfg.memkv) return memkv_start(aio, owner, argc, argv, argvlen, err);
    if (aio->redis_host == NULL) {
        sio_err_set(err, SIO_E_UNAVAILABLE,
                    "redis is not configured here: the kv store needs DEDUPE_REDIS_ADDR");
        return 0;
    }
    if (aio->redis == NULL && connect_redis(aio, err) != 0) {
        sio_metric_inc(SIO_M_REDIS_ERRORS, 0); /* telemetry */
        return 0;
    }
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_REDIS, err);
    if (op == NULL) return 0;
    op->started_ns = sio_mono_ns(); /* telemetry */
    if (redisAsyncCommandArgv(aio->redis, on_reply, op, argc, argv, argvlen) != REDIS_OK) {
        sio_metric_inc(SIO_M_REDIS_ERRORS, 0); /* telemetry */
        sio_op_drop(op);
        sio_err_set(err, SIO_E_REDIS, "redis: cannot send the command (%s)",
                    aio->redis ? aio->redis->errstr : "disconnected");
        return 0;
    }
    return op->id;
}

void sio_aio_redis_close(sio_aio *aio) {
    if (aio->redis) {
        redisAsyncContext *ac = aio->redis;
        aio->redis = NULL;
        redisAsyncFree(ac); /* pending callbacks get NULL replies; aio->closing mutes them */
    }
}
