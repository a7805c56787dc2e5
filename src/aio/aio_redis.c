/*
 * aio_redis.c - Redis commands on hiredis's async API, on the worker's loop.
 *
 * One connection per worker, opened on the first command and kept up from
 * then on.  AUTH (with an ACL user when configured) is pipelined ahead of
 * the first command; Redis refusing it (a password changed, a user
 * disabled) loses the connection like an outage, so it is tried again with
 * backoff instead of answering every command with NOAUTH.  The connection
 * is in one of four states:
 *
 *   IDLE        none yet: the next command connects
 *   CONNECTING  commands queue on the connection being opened
 *   UP          commands are sent
 *   DOWN        the last connection failed or was lost: commands fail at
 *               once with SIO_E_REDIS (transient: callers retry on their own
 *               schedule) while a timer reconnects, backing off from
 *               RECONNECT_MIN_MS to RECONNECT_MAX_MS
 *
 * so a Redis outage costs failed attempts, never a stalled worker, and the
 * connection is back within RECONNECT_MAX_MS of Redis answering again.  A
 * connect that does not complete, or replies that stop coming, within the
 * configured timeout count as a lost connection - after one more turn of
 * the loop, so a worker that was starved of CPU reads what arrived
 * meanwhile before it judges the connection.  Losing Redis, Redis refusing
 * AUTH and getting it back (connected and, with credentials, authenticated)
 * are logged once per outage of the process, not once per attempt or
 * worker.
 *
 * hiredis 0.14's libuv adapter drops poll errors: a refused connect reaches
 * it as a poll status < 0 with the watcher stopped, it returns, and the
 * context never completes - every command queued on it waits forever.  The
 * adapter below hands such errors to hiredis, which then fails the connect
 * (or the connection) and its commands.
 */
#include "aio_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "memkv.h"
#include "metrics.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 1000

/* Connections of this process that are DOWN (once counted, until up). */
static atomic_int conns_down;
/* An AUTH refusal was logged in this outage (cleared when none is DOWN). */
static atomic_int auth_refusal_logged;

/* --- the libuv adapter ------------------------------------------------------*/

typedef struct uv_events {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} uv_events;

static void ev_poll(uv_poll_t *h, int status, int events) {
    uv_events *p = h->data;
    /* On an error libuv reports no events and has stopped the watcher:
     * run what hiredis was waiting for, so it sees the error itself (the
     * watcher's events are then none, as libuv's are). */
    int ev = status < 0 ? p->events : events;
    if (status < 0) p->events = 0;
    if (p->ac != NULL && (ev & UV_READABLE)) redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

/* The watcher follows what hiredis asks for, touched only when that
 * changes: hiredis asks to write for every command it queues, and each
 * uv_poll_start takes the socket out of epoll and puts it back (two
 * epoll_ctl calls per Redis command, two per noop command). */
static void ev_set(uv_events *p, int events) {
    if (events == p->events) return;
    p->events = events;
    if (events) uv_poll_start(&p->poll, events, ev_poll);
    else uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d) {
    ev_set(d, ((uv_events *)d)->events | UV_READABLE);
}

static void ev_del_read(void *d) {
    ev_set(d, ((uv_events *)d)->events & ~UV_READABLE);
}

static void ev_add_write(void *d) {
    ev_set(d, ((uv_events *)d)->events | UV_WRITABLE);
}

static void ev_del_write(void *d) {
    ev_set(d, ((uv_events *)d)->events & ~UV_WRITABLE);
}

static void ev_free(uv_handle_t *h) {
    free(h->data);
}

static void ev_cleanup(void *d) {
    uv_events *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, ev_free);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    uv_events *p = calloc(1, sizeof *p);
    if (p == NULL) return -1;
    if (uv_poll_init_socket(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* --- the connection's states ------------------------------------------------*/

static void on_timer(uv_timer_t *t);

static void timer_start(sio_aio *aio, uint64_t ms) {
    uv_timer_start(aio->redis_timer, on_timer, ms, 0);
}

/* "host:port" of the Redis server, as a JSON string (for log lines). */
static json_t *redis_addr(const sio_aio *aio) {
    const char *h = aio->redis_host ? aio->redis_host : "";
    size_t n = strlen(h);
    char port[16];
    int pn = snprintf(port, sizeof port, ":%d", aio->cfg.redis_port);
    char *t = malloc(n + (size_t)pn + 1);
    if (t == NULL) return NULL;
    memcpy(t, h, n);
    memcpy(t + n, port, (size_t)pn + 1);
    json_t *v = sio_json_text(t, n + (size_t)pn);
    free(t);
    return v;
}

/* The connection failed or was lost (why: for logs and errors): forget it
 * (hiredis frees it), fail commands fast until the reconnect timer fires.
 * Idempotent; nothing happens while aio closes. */
static void lost(sio_aio *aio, const char *why) {
    if (aio->closing || aio->redis_state == SIO_REDIS_DOWN) return;
    aio->redis = NULL;
    aio->redis_overdue = 0;
    aio->redis_state = SIO_REDIS_DOWN;
    snprintf(aio->redis_why, sizeof aio->redis_why, "%s", why && *why ? why : "disconnected");
    if (!aio->redis_counted_down) {
        aio->redis_counted_down = 1;
        if (atomic_fetch_add(&conns_down, 1) == 0) {
            sio_log_json(SIO_LOG_WARN, "redis unavailable: reconnecting",
                         json_pack("{s:o,s:o}", "redis", redis_addr(aio), "error",
                                   sio_json_text(aio->redis_why, strlen(aio->redis_why))));
        }
    }
    timer_start(aio, aio->redis_backoff_ms);
    aio->redis_backoff_ms *= 2;
    if (aio->redis_backoff_ms > RECONNECT_MAX_MS) aio->redis_backoff_ms = RECONNECT_MAX_MS;
}

/* Drops the connection in hand (a timeout): its commands fail. */
static void drop(sio_aio *aio, const char *why) {
    redisAsyncContext *ac = aio->redis;
    lost(aio, why);
    if (ac) redisAsyncFree(ac); /* its callbacks see aio->redis != ac */
}

/* The connection is usable (connected, authenticated when configured):
 * the backoff starts over, and the end of an outage is logged. */
static void restored(sio_aio *aio) {
    aio->redis_backoff_ms = RECONNECT_MIN_MS;
    if (!aio->redis_counted_down) return;
    aio->redis_counted_down = 0;
    if (atomic_fetch_sub(&conns_down, 1) == 1) {
        atomic_store(&auth_refusal_logged, 0);
        sio_log_json(SIO_LOG_INFO, "redis connection restored",
                     json_pack("{s:o}", "redis", redis_addr(aio)));
    }
}

/* The reply to a new connection's AUTH.  A refusal drops the connection
 * (its commands fail; the reconnect timer tries again with backoff). */
static void on_auth(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    redisReply *r = reply;
    sio_aio *aio = ac->data;
    if (r == NULL || aio->redis != ac || aio->closing) return; /* lost meanwhile */
    if (r->type != REDIS_REPLY_ERROR) {
        restored(aio);
        return;
    }
    char why[300];
    snprintf(why, sizeof why, "refused AUTH: %s", r->str);
    if (atomic_exchange(&auth_refusal_logged, 1) == 0)
        sio_log_json(SIO_LOG_ERROR, "redis refused AUTH: reconnecting",
                     json_pack("{s:o,s:o}", "redis", redis_addr(aio), "error",
                               sio_json_text(r->str, r->len)));
    drop(aio, why); /* hiredis frees ac once this callback returns */
}

static void on_connect(const redisAsyncContext *ac, int status) {
    sio_aio *aio = ac->data;
    if (aio->redis != ac) return;
    if (status != REDIS_OK) {
        lost(aio, ac->errstr);
        return;
    }
    aio->redis_state = SIO_REDIS_UP;
    aio->redis_overdue = 0;
    if (!aio->cfg.redis_password) restored(aio); /* else when AUTH is answered */
    if (aio->redis_pending > 0 && aio->cfg.redis_timeout_ms > 0)
        timer_start(aio, (uint64_t)aio->cfg.redis_timeout_ms);
    else
        uv_timer_stop(aio->redis_timer);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    sio_aio *aio = ac->data;
    if (aio->redis == ac) lost(aio, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* Connect timeout, reply timeout, or the end of a backoff. */
static void on_timer(uv_timer_t *t) {
    sio_aio *aio = t->data;
    char why[64];
    switch (aio->redis_state) {
    case SIO_REDIS_CONNECTING:
    case SIO_REDIS_UP:
        /* Timers run before the loop polls: give it one poll (1 ms, so it
         * is not this same timer pass) to read what may be waiting. */
        if (!aio->redis_overdue) {
            aio->redis_overdue = 1;
            timer_start(aio, 1);
            break;
        }
        snprintf(why, sizeof why, "%s within %lld ms",
                 aio->redis_state == SIO_REDIS_UP ? "no reply" : "not connected",
                 (long long)aio->cfg.redis_timeout_ms);
        drop(aio, why);
        break;
    case SIO_REDIS_DOWN:
        aio->redis_state = SIO_REDIS_IDLE;
        sio_aio_redis_connect(aio, NULL); /* a failure is back to DOWN */
        break;
    case SIO_REDIS_IDLE:
        break;
    }
}

int sio_aio_redis_connect(sio_aio *aio, sio_err *err) {
    redisAsyncContext *ac = redisAsyncConnect(aio->redis_host, aio->cfg.redis_port);
    if (ac == NULL) {
        lost(aio, "out of memory");
        return sio_err_set(err, SIO_E_NOMEM, "redis: out of memory");
    }
    if (ac->err || ev_attach(ac, aio->loop) != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac->err ? ac->errstr : "cannot watch the socket");
        redisAsyncFree(ac);
        lost(aio, why);
        return sio_err_set(err, SIO_E_REDIS, "redis at %s:%d: %s", aio->redis_host,
                           aio->cfg.redis_port, why);
    }
    ac->data = aio;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    aio->redis = ac;
    aio->redis_state = SIO_REDIS_CONNECTING;
    aio->redis_overdue = 0;
    if (aio->cfg.redis_timeout_ms > 0) timer_start(aio, (uint64_t)aio->cfg.redis_timeout_ms);
    if (aio->cfg.redis_password) {
        if (aio->cfg.redis_user)
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s %s", aio->cfg.redis_user,
                              aio->cfg.redis_password);
        else
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", aio->cfg.redis_password);
    }
    return 0;
}

/* --- commands -----------------------------------------------------------------*/

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

/* A reply, or NULL when its connection went away.  Progress restarts the
 * reply timeout. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    sio_op *op = privdata;
    sio_aio *aio = op->aio;
    redisReply *r = reply;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    const char **elems = NULL;
    size_t *lens = NULL;
    aio->redis_pending--;
    /* telemetry: the round trip, and failures */
    sio_metric_observe_ns(SIO_M_REDIS_DURATION, 0, sio_mono_ns() - op->started_ns);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) sio_metric_inc(SIO_M_REDIS_ERRORS, 0);
    if (r == NULL) {
        /* The first of a dying connection's replies: fail fast from now on. */
        if (ac == aio->redis) lost(aio, ac->errstr[0] ? ac->errstr : "connection lost");
        sio_err_set(&res.err, SIO_E_REDIS, "redis at %s:%d: connection lost (%s)",
                    aio->redis_host, aio->cfg.redis_port, aio->redis_why);
        goto done;
    }
    if (ac == aio->redis && aio->redis_state == SIO_REDIS_UP && aio->cfg.redis_timeout_ms > 0) {
        aio->redis_overdue = 0;
        if (aio->redis_pending > 0) timer_start(aio, (uint64_t)aio->cfg.redis_timeout_ms);
        else uv_timer_stop(aio->redis_timer);
    }
    if (r->type == REDIS_REPLY_ERROR) {
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
    int refused = aio->redis_state == SIO_REDIS_IDLE && sio_aio_redis_connect(aio, err) != 0;
    if (!refused && aio->redis_state == SIO_REDIS_DOWN) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s:%d is unavailable (%s); reconnecting",
                    aio->redis_host, aio->cfg.redis_port, aio->redis_why);
        refused = 1;
    }
    if (refused) {
        sio_metric_inc(SIO_M_REDIS_ERRORS, 0); /* telemetry */
        return 0;
    }
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_REDIS, err);
    if (op == NULL) return 0;
    op->started_ns = sio_mono_ns(); /* telemetry */
    if (redisAsyncCommandArgv(aio->redis, on_reply, op, argc, argv, argvlen) != REDIS_OK) {
        sio_metric_inc(SIO_M_REDIS_ERRORS, 0); /* telemetry */
        sio_op_drop(op);
        sio_err_set(err, SIO_E_REDIS, "redis at %s:%d: cannot send the command (%s)",
                    aio->redis_host, aio->cfg.redis_port, aio->redis->errstr);
        return 0;
    }
    if (aio->redis_pending++ == 0 && aio->redis_state == SIO_REDIS_UP &&
        aio->cfg.redis_timeout_ms > 0) {
        aio->redis_overdue = 0;
        timer_start(aio, (uint64_t)aio->cfg.redis_timeout_ms);
    }
    return op->id;
}

int sio_aio_redis_init(sio_aio *aio, sio_err *err) {
    aio->redis_backoff_ms = RECONNECT_MIN_MS;
    if (aio->redis_host == NULL) return 0;
    aio->redis_timer = malloc(sizeof *aio->redis_timer);
    if (aio->redis_timer == NULL) return sio_err_set(err, SIO_E_NOMEM, "redis: out of memory");
    uv_timer_init(aio->loop, aio->redis_timer);
    aio->redis_timer->data = aio;
    return 0;
}

static void free_timer(uv_handle_t *h) {
    free(h);
}

void sio_aio_redis_close(sio_aio *aio) {
    if (aio->redis) {
        redisAsyncContext *ac = aio->redis;
        aio->redis = NULL;
        redisAsyncFree(ac); /* pending callbacks get NULL replies; aio->closing mutes them */
    }
    if (aio->redis_counted_down) {
        aio->redis_counted_down = 0;
        atomic_fetch_sub(&conns_down, 1);
    }
    if (aio->redis_timer) {
        uv_close((uv_handle_t *)aio->redis_timer, free_timer);
        aio->redis_timer = NULL;
    }
}
