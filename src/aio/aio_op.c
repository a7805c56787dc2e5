/* aio_op.c - the op table every kind of op lives in: ids, the id index,
 * owners' lists, completion, cancel and forget; see aio_internal.h. */
#include "aio_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_handle(uv_handle_t *h) {
    free(h);
}

/* --- the id index: open addressing, linear probing, backward-shift delete */

static size_t slot_of(const sio_aio *aio, uint64_t id) {
    return (size_t)(id * 0x9E3779B97F4A7C15ULL) & (aio->index_cap - 1);
}

static void index_put(sio_aio *aio, sio_op *op) {
    size_t i = slot_of(aio, op->id);
    while (aio->index[i]) i = (i + 1) & (aio->index_cap - 1);
    aio->index[i] = op;
}

/* Keeps the load under 1/2; returns -1 when memory is short. */
static int index_grow(sio_aio *aio) {
    if ((aio->pending + 1) * 2 <= aio->index_cap) return 0;
    size_t old = aio->index_cap;
    sio_op **prev = aio->index;
    aio->index_cap = old ? old * 2 : 64;
    aio->index = calloc(aio->index_cap, sizeof *aio->index);
    if (aio->index == NULL) {
        aio->index = prev;
        aio->index_cap = old;
        return -1;
    }
    for (size_t i = 0; i < old; i++)
        if (prev[i]) index_put(aio, prev[i]);
    free(prev);
    return 0;
}

static void index_del(sio_aio *aio, const sio_op *op) {
    size_t mask = aio->index_cap - 1, i = slot_of(aio, op->id);
    while (aio->index[i] != op) i = (i + 1) & mask;
    aio->index[i] = NULL;
    /* Moves back the entries of the run after i that may no longer be found. */
    for (size_t j = (i + 1) & mask; aio->index[j]; j = (j + 1) & mask) {
        size_t home = slot_of(aio, aio->index[j]->id);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            aio->index[i] = aio->index[j];
            aio->index[j] = NULL;
            i = j;
        }
    }
}

sio_op *sio_op_find(sio_aio *aio, uint64_t id) {
    if (aio->index_cap == 0) return NULL;
    for (size_t i = slot_of(aio, id); aio->index[i]; i = (i + 1) & (aio->index_cap - 1))
        if (aio->index[i]->id == id) return aio->index[i];
    return NULL;
}

/* --- ops ----------------------------------------------------------------*/

static void owner_unlink(sio_op *op) {
    if (!op->in_owner_list) return;
    if (op->owner_prev) op->owner_prev->owner_next = op->owner_next;
    else *op->aio->cfg.owner_ops(op->owner) = op->owner_next;
    if (op->owner_next) op->owner_next->owner_prev = op->owner_prev;
    op->in_owner_list = 0;
}

sio_op *sio_op_new(sio_aio *aio, void *owner, sio_aio_kind kind, sio_err *err) {
    sio_op *op = index_grow(aio) == 0 ? calloc(1, sizeof *op) : NULL;
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
    index_put(aio, op);
    op->indexed = 1;
    if (owner && aio->cfg.owner_ops) {
        sio_op **head = aio->cfg.owner_ops(owner);
        op->owner_next = *head;
        if (*head) (*head)->owner_prev = op;
        *head = op;
        op->in_owner_list = 1;
    }
    return op;
}

/* Unlinks op and frees what it owns. */
void sio_op_drop(sio_op *op) {
    sio_aio *aio = op->aio;
    if (op->prev) op->prev->next = op->next;
    else aio->ops = op->next;
    if (op->next) op->next->prev = op->prev;
    owner_unlink(op);
    if (op->indexed) index_del(aio, op);
    aio->pending--;
    if (op->timer) uv_close((uv_handle_t *)op->timer, free_handle);
    if (op->headers) curl_slist_free_all(op->headers);
    free(op->body);
    free(op->resp);
    free(op->resp_hdrs);
    free(op);
}

void sio_op_finish(sio_op *op, sio_aio_result *res) {
    sio_aio *aio = op->aio;
    res->kind = op->kind;
    void *owner = op->owner;
    uint64_t id = op->id;
    /* The callback may end its command, which forgets and cancels the
     * command's ops: this one must be out of their reach by then. */
    owner_unlink(op);
    op->owner = NULL;
    index_del(aio, op);
    op->indexed = 0;
    if (owner != NULL && !aio->closing) aio->cfg.done(owner, id, res, aio->cfg.cb_data);
    sio_op_drop(op);
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

size_t sio_aio_pending(const sio_aio *aio) {
    return aio->pending;
}

/* Forgets one op of a departing owner. */
static void forget_op(sio_op *op) {
    if (op->kind == SIO_AIO_TIMER) {
        sio_op_drop(op); /* nobody waits: stop it now */
        return;
    }
    owner_unlink(op);
    op->owner = NULL; /* in flight elsewhere: completes silently */
}

void sio_aio_forget(sio_aio *aio, void *owner) {
    if (aio->cfg.owner_ops) {
        sio_op **head = aio->cfg.owner_ops(owner);
        while (*head) forget_op(*head);
        return;
    }
    for (sio_op *op = aio->ops, *next; op; op = next) {
        next = op->next;
        if (op->owner == owner) forget_op(op);
    }
}

void sio_aio_cancel(sio_aio *aio, uint64_t op_id) {
    sio_op *op = sio_op_find(aio, op_id);
    if (op) forget_op(op);
}
