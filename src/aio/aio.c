/* aio.c - create and destroy (over the HTTP and Redis parts), and the
 * op kinds that need no client: timers, produce and native tool hand-offs;
 * see aio.h. */
#include "aio_internal.h"

#include <stdlib.h>
#include <string.h>

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
    if (sio_aio_redis_init(aio, err) != 0 || sio_aio_http_init(aio, err) != 0) {
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
    free(aio->index);
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

void sio_aio_produce_done(sio_aio *aio, uint64_t op_id, const sio_err *err, int32_t partition,
                          int64_t offset) {
    sio_op *op = sio_op_find(aio, op_id);
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
    sio_op *op = sio_op_find(aio, op_id);
    if (op == NULL) return;
    sio_aio_result res;
    memset(&res, 0, sizeof res);
    if (err != NULL) res.err = *err;
    res.body = payload ? payload : "";
    res.body_len = payload ? len : 0;
    sio_op_finish(op, &res);
}
