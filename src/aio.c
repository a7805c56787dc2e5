/* aio.c - op bookkeeping, timers and produce ops; see aio.h. */
#include "aio_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_handle(uv_handle_t *h) {
    free(h);
}

sio_op *sio_op_new(sio_aio *aio, void *owner, sio_aio_kind kind, sio_err *err) {
    sio_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory starting an operation");
        return NULL;
    }
    op->aio = aio;
    op->id = ++aio->next_id;
    op->owner = owner;
    op->kind = kind;
    op->next = aio->ops;
    if (aio->ops) aio->ops->prev = op;
    aio->ops = op;
    aio->pending++;
    return op;
}

/* Unlinks op and frees what it owns. */
void sio_op_drop(sio_op *op) {
    sio_aio *aio = op->aio;
    if (op->prev) op->prev->next = op->next;
    else aio->ops = op->next;
    if (op->next) op->next->prev = op->prev;
    aio->pending--;
    if (op->timer) uv_close((uv_handle_t *)op->timer, free_handle);
    if (op->headers) curl_slist_free_all(op->headers);
    free(op->body);
    free(op->resp);
    free(op);
}

void sio_op_finish(sio_op *op, sio_aio_result *res) {
    sio_aio *aio = op->aio;
    res->kind = op->kind;
    void *owner = op->owner;
    uint64_t id = op->id;
    if (owner != NULL && !aio->closing) aio->cfg.done(owner, id, res, aio->cfg.cb_data);
    sio_op_drop(op);
}

sio_aio *sio_aio_create(uv_loop_t *loop, const sio_aio_cfg *cfg, sio_err *err) {
    if (loop == NULL || cfg == NULL || cfg->done == NULL) {
        sio_err_set(err, SIO_E_INVAL, "aio: a loop and a completion callback are required");
        return NULL;
    }
    sio_aio *aio = calloc(1, sizeof *aio);
    if (aio == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "aio: out of memory");
        return NULL;
    }
    aio->loop = loop;
    aio->cfg = *cfg;
    aio->cfg.redis_host = NULL; /* borrowed only during the call: keep a copy */
    aio->cfg.redis_password = NULL;
    aio->cfg.redis_user = NULL;
    if (aio->cfg.http_timeout_ms <= 0) aio->cfg.http_timeout_ms = 10000;
    if (aio->cfg.http_max_body == 0) aio->cfg.http_max_body = 8u << 20;
    if (cfg->redis_host != NULL) {
        aio->redis_host = strdup(cfg->redis_host);
        aio->cfg.redis_password = cfg->redis_password ? strdup(cfg->redis_password) : NULL;
        aio->cfg.redis_user = cfg->redis_user ? strdup(cfg->redis_user) : NULL;
        if (aio->redis_host == NULL) {
            sio_aio_destroy(aio);
            sio_err_set(err, SIO_E_NOMEM, "aio: out of memory");
            return NULL;
        }
    }
    if (sio_aio_http_init(aio, err) != 0) {
        sio_aio_destroy(aio);
        return NULL;
    }
    return aio;
}

void sio_aio_destroy(sio_aio *aio) {
    if (aio == NULL) return;
    aio->closing = 1;
    sio_aio_redis_close(aio);
    sio_aio_http_close(aio);
    while (aio->ops) sio_op_drop(aio->ops);
    free(aio->redis_host);
    free((char *)aio->cfg.redis_password);
    free((char *)aio->cfg.redis_user);
    free(aio);
}

static void on_timer(uv_timer_t *t) {
    sio_op *op = t->data;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    sio_op_finish(op, &res);
}

uint64_t sio_op_start_timer(sio_op *op, uint64_t ms, uv_timer_cb cb, sio_err *err) {
    op->timer = malloc(sizeof *op->timer);
    if (op->timer == NULL) {
        sio_op_drop(op);
        sio_err_set(err, SIO_E_NOMEM, "out of memory starting a timer");
        return 0;
    }
    uv_timer_init(op->aio->loop, op->timer);
    op->timer->data = op;
    uv_timer_start(op->timer, cb, ms, 0);
    return op->id;
}

uint64_t sio_aio_timer(sio_aio *aio, void *owner, uint64_t ms, sio_err *err) {
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_TIMER, err);
    return op ? sio_op_start_timer(op, ms, on_timer, err) : 0;
}

uint64_t sio_aio_produce(sio_aio *aio, void *owner, const char *topic, const char *key,
                         size_t key_len, const char *value, size_t value_len, sio_err *err) {
    if (aio->cfg.produce == NULL) {
        sio_err_set(err, SIO_E_UNAVAILABLE,
                    "kafka is not configured here: producing to '%s' needs the service "
                    "(sio-orchestrator serve)", topic);
        return 0;
    }
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_PRODUCE, err);
    if (op == NULL) return 0;
    uint64_t id = op->id;
    if (aio->cfg.produce(aio->cfg.produce_data, aio, id, topic, key, key_len, value, value_len,
                         err) != 0) {
        sio_op_drop(op);
        return 0;
    }
    return id;
}

static sio_op *find_op(sio_aio *aio, uint64_t id) {
    for (sio_op *op = aio->ops; op; op = op->next)
        if (op->id == id) return op;
    return NULL;
}

void sio_aio_produce_done(sio_aio *aio, uint64_t op_id, const sio_err *err, int32_t partition,
                          int64_t offset) {
    sio_op *op = find_op(aio, op_id);
    if (op == NULL) return;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    if (err != NULL) res.err = *err;
    res.partition = partition;
    res.offset = offset;
    sio_op_finish(op, &res);
}

uint64_t sio_aio_tool(sio_aio *aio, void *owner, sio_err *err) {
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_TOOL, err);
    return op ? op->id : 0;
}

void sio_aio_tool_done(sio_aio *aio, uint64_t op_id, const sio_err *err, const char *payload,
                       size_t len) {
    sio_op *op = find_op(aio, op_id);
    if (op == NULL) return;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    if (err != NULL) res.err = *err;
    res.body = payload ? payload : "";
    res.body_len = payload ? len : 0;
    sio_op_finish(op, &res);
}

size_t sio_aio_pending(const sio_aio *aio) {
    return aio->pending;
}

void sio_aio_forget(sio_aio *aio, void *owner) {
    for (sio_op *op = aio->ops; op; op = op->next)
        if (op->owner == owner) op->owner = NULL;
}

void sio_aio_cancel(sio_aio *aio, uint64_t op_id) {
    sio_op *op = find_op(aio, op_id);
    if (op == NULL) return;
    if (op->kind == SIO_AIO_TIMER) {
        sio_op_drop(op); /* closing the handle stops it */
        return;
    }
    op->owner = NULL; /* in flight elsewhere: completes silently */
}
