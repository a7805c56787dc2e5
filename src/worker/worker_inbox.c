/*
 * worker_inbox.c - what other threads hand to a worker's loop: tasks
 * (sio_worker_post) and the answers of produces and native tools.  Each
 * goes into the inbox under the worker's mutex and wakes the loop, which
 * takes it (worker.c, drain_inbox).
 */
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

void sio_worker_post(sio_worker *w, sio_task *t) {
    t->next = t->prev = NULL;
    t->ops = NULL;
    t->queued = 1;
    pthread_mutex_lock(&w->mu);
    if (w->inbox_tail) w->inbox_tail->next = t;
    else w->inbox = t;
    w->inbox_tail = t;
    w->queued++;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

/* Queues a completion for the loop (any thread); dropped once stopped. */
static void post_completion(sio_worker *w, sio_produce_done *pd) {
    pthread_mutex_lock(&w->mu);
    if (w->stop) { /* the loop is gone or going: nobody waits for it */
        pthread_mutex_unlock(&w->mu);
        free(pd->payload);
        free(pd);
        return;
    }
    pd->next = w->produced;
    w->produced = pd;
    uv_async_send(&w->wake); /* under the lock: stop cannot close it meanwhile */
    pthread_mutex_unlock(&w->mu);
}

void sio_worker_tool_done(sio_worker *w, uint64_t op_id, const sio_err *err, const char *payload,
                          size_t len) {
    sio_produce_done *pd = calloc(1, sizeof *pd);
    if (pd == NULL) return; /* the step then times out */
    pd->tool = 1;
    pd->op_id = op_id;
    pd->has_err = err != NULL && err->code != SIO_E_OK;
    if (pd->has_err) pd->err = *err;
    if (payload) {
        pd->payload = malloc(len + 1);
        if (pd->payload == NULL) {
            free(pd);
            return;
        }
        memcpy(pd->payload, payload, len);
        pd->payload[len] = '\0';
        pd->len = len;
    }
    post_completion(w, pd);
}

void sio_worker_produce_done(sio_worker *w, uint64_t op_id, const sio_err *err,
                             int32_t partition, int64_t offset) {
    sio_produce_done *pd = calloc(1, sizeof *pd);
    if (pd == NULL) return; /* the op then times out in the engine */
    pd->op_id = op_id;
    pd->has_err = err != NULL && err->code != SIO_E_OK;
    if (pd->has_err) pd->err = *err;
    pd->partition = partition;
    pd->offset = offset;
    post_completion(w, pd);
}
