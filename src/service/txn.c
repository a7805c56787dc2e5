/* txn.c - the exactly-once transaction thread; see txn.h. */
#include "txn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "json.h"
#include "kafka.h"
#include "log.h"

/* Per-call timeout of the transactional API; a retriable failure is tried
 * again (the call resumes where it stopped). */
#define TXN_CALL_MS 10000

/* A message of the batch in hand: what its delivery report needs. */
typedef struct txn_msg {
    struct txn_run *run;
    sio_command *c;
    size_t i;
} txn_msg;

/* The batch in hand and its messages.  live is cleared once the batch is
 * settled: a report that comes later (it should not) touches nothing. */
typedef struct txn_run {
    sio_txn_batch *b;
    int live;
    size_t n;
    txn_msg msgs[];
} txn_run;

struct sio_txn {
    rd_kafka_t *p; /* borrowed */
    sio_txn_done_fn done;
    void *ud;
    pthread_mutex_t mu; /* guards batch, stop */
    pthread_cond_t cv;
    sio_txn_batch *batch;
    int stop;
    /* The thread's. */
    int fatal;
    sio_err fatal_err;
    uv_thread_t thread;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- delivery reports ---------------------------------------------------------*/

void sio_txn_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk, (void)opaque;
    txn_msg *x = m->_private;
    if (x == NULL || !x->run->live || m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    sio_txn_batch *b = x->run->b;
    char why[600];
    snprintf(why, sizeof why, "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
             rd_kafka_err2str(m->err));
    /* A refusal explains the abort better than the state error a later
     * call meets. */
    if (b->err.code == SIO_E_OK || sio_kafka_err_permanent(m->err))
        sio_err_set(&b->err, sio_kafka_produce_code(m->err), "%s", why);
    if (sio_kafka_err_permanent(m->err)) sio_command_refuse(x->c, x->i, why);
}

/* --- one transaction ----------------------------------------------------------*/

enum { ACT_DONE, ACT_RETRY, ACT_ABORT, ACT_FATAL, ACT_GIVE_UP };

static int stopping(sio_txn *t) {
    pthread_mutex_lock(&t->mu);
    int s = t->stop;
    pthread_mutex_unlock(&t->mu);
    return s;
}

/* What to do after a transactional call returned e (destroyed here); the
 * first error is kept in b->err. */
static int action(sio_txn *t, sio_txn_batch *b, rd_kafka_error_t *e, const char *what) {
    if (e == NULL) return ACT_DONE;
    int a = rd_kafka_error_is_fatal(e)             ? ACT_FATAL
            : rd_kafka_error_txn_requires_abort(e) ? ACT_ABORT
            : rd_kafka_error_is_retriable(e)       ? ACT_RETRY
                                                   : ACT_FATAL; /* misuse: start afresh */
    if (a == ACT_RETRY) {
        sio_log_json(SIO_LOG_WARN, "exactly_once: transaction call failed; retrying",
                     json_pack("{s:s,s:o}", "call", what,
                               "error", sio_json_text(rd_kafka_error_string(e),
                                                      strlen(rd_kafka_error_string(e)))));
    } else if (b->err.code == SIO_E_OK || a == ACT_FATAL) {
        sio_err_set(&b->err, SIO_E_KAFKA, "%s: %s", what, rd_kafka_error_string(e));
    }
    if (a == ACT_FATAL && !t->fatal) {
        t->fatal = 1;
        char reason[512];
        rd_kafka_resp_err_t fe = rd_kafka_fatal_error(t->p, reason, sizeof reason);
        if (fe != RD_KAFKA_RESP_ERR_NO_ERROR)
            sio_err_set(&t->fatal_err, SIO_E_KAFKA, "%s: %s (%s)", what, reason,
                        rd_kafka_err2name(fe));
        else
            t->fatal_err = b->err;
    }
    rd_kafka_error_destroy(e);
    return a;
}

/* The transactional calls of a batch. */
enum { STEP_BEGIN, STEP_OFFSETS, STEP_COMMIT, STEP_ABORT };
static const char *const step_names[] = {"begin_transaction", "send_offsets_to_transaction",
                                         "commit_transaction", "abort_transaction"};

/* Calls one step, again while it fails retriably (while stopping, twice
 * more at most).  Returns an ACT_. */
static int call(sio_txn *t, sio_txn_batch *b, int step) {
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *e = NULL;
        switch (step) {
        case STEP_BEGIN: e = rd_kafka_begin_transaction(t->p); break;
        case STEP_OFFSETS:
            e = rd_kafka_send_offsets_to_transaction(t->p, b->offsets, b->group, TXN_CALL_MS);
            break;
        case STEP_COMMIT: e = rd_kafka_commit_transaction(t->p, TXN_CALL_MS); break;
        default: e = rd_kafka_abort_transaction(t->p, TXN_CALL_MS); break;
        }
        int a = action(t, b, e, step_names[step]);
        if (a != ACT_RETRY) return a;
        if (stopping(t) && tries >= 2) return ACT_GIVE_UP;
        rd_kafka_poll(t->p, 10);
    }
}

/* Produces every message of the batch.  Returns ACT_DONE, or ACT_ABORT /
 * ACT_FATAL when one was refused at once. */
static int produce_all(sio_txn *t, txn_run *run) {
    sio_txn_batch *b = run->b;
    size_t k = 0;
    for (sio_command *c = b->cmds; c; c = c->done_next) {
        sio_output o;
        for (size_t i = 0; k < run->n && sio_command_output(c, i, &o); i++, k++) {
            run->msgs[k] = (txn_msg){.run = run, .c = c, .i = i};
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_producev(t->p, RD_KAFKA_V_TOPIC(o.topic),
                                          RD_KAFKA_V_KEY(o.key, o.key ? o.key_len : 0),
                                          RD_KAFKA_V_VALUE((void *)o.value, o.len),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_OPAQUE(&run->msgs[k]), RD_KAFKA_V_END)) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(t->p, 50); /* this thread serves the reports that free room */
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
            char why[600];
            snprintf(why, sizeof why, "produce to %s: %s", o.topic, rd_kafka_err2str(e));
            if (b->err.code == SIO_E_OK) sio_err_set(&b->err, sio_kafka_produce_code(e), "%s", why);
            if (sio_kafka_err_permanent(e)) sio_command_refuse(c, i, why);
            b->nmsgs = k;
            if (e == RD_KAFKA_RESP_ERR__FATAL) {
                t->fatal = 1;
                char reason[512];
                rd_kafka_fatal_error(t->p, reason, sizeof reason);
                sio_err_set(&t->fatal_err, SIO_E_KAFKA, "produce: %s", reason);
                return ACT_FATAL;
            }
            return ACT_ABORT;
        }
    }
    b->nmsgs = k;
    return ACT_DONE;
}

/* Waits until every report of the batch was served (after a commit there
 * are none left; after an abort the purged ones come back). */
static int settle_reports(sio_txn *t) {
    int64_t end = now_ms() + TXN_CALL_MS;
    while (rd_kafka_outq_len(t->p) > 0 && now_ms() < end) rd_kafka_poll(t->p, 50);
    if (rd_kafka_outq_len(t->p) == 0) return 0;
    rd_kafka_purge(t->p, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    end = now_ms() + TXN_CALL_MS;
    while (rd_kafka_outq_len(t->p) > 0 && now_ms() < end) rd_kafka_poll(t->p, 50);
    return rd_kafka_outq_len(t->p) == 0 ? 0 : -1;
}

static size_t count_outputs(const sio_txn_batch *b) {
    size_t n = 0;
    sio_output o;
    for (const sio_command *c = b->cmds; c; c = c->done_next)
        for (size_t i = 0; sio_command_output(c, i, &o); i++) n++;
    return n;
}

static void run_batch(sio_txn *t, sio_txn_batch *b) {
    int64_t t0 = now_ms();
    sio_err_clear(&b->err);
    b->nmsgs = 0;
    if (t->fatal) {
        b->outcome = SIO_TXN_FATAL;
        b->err = t->fatal_err;
        return;
    }
    size_t n = count_outputs(b);
    txn_run *run = calloc(1, sizeof *run + n * sizeof run->msgs[0]);
    if (run == NULL) {
        b->outcome = SIO_TXN_ABANDONED;
        sio_err_set(&b->err, SIO_E_NOMEM, "out of memory starting a transaction");
        return;
    }
    run->b = b;
    run->live = 1;
    run->n = n;
    int a = call(t, b, STEP_BEGIN);
    int began = a == ACT_DONE;
    if (a == ACT_DONE) a = produce_all(t, run);
    if (a == ACT_DONE && b->offsets->cnt > 0) a = call(t, b, STEP_OFFSETS);
    if (a == ACT_DONE) a = call(t, b, STEP_COMMIT);
    if (began && (a == ACT_ABORT || a == ACT_GIVE_UP)) {
        int ab = call(t, b, STEP_ABORT);
        if (ab == ACT_FATAL) a = ACT_FATAL;
        else if (ab != ACT_DONE) a = ACT_GIVE_UP;
    }
    int settled = settle_reports(t) == 0;
    run->live = 0;
    if (settled) free(run); /* else a late report may still name it: kept */
    b->outcome = a == ACT_DONE    ? SIO_TXN_COMMITTED
                 : a == ACT_ABORT ? SIO_TXN_ABORTED
                 : a == ACT_FATAL ? SIO_TXN_FATAL
                                  : SIO_TXN_ABANDONED;
    if (b->outcome == SIO_TXN_FATAL) b->err = t->fatal_err;
    if (b->outcome != SIO_TXN_COMMITTED && b->err.code == SIO_E_OK)
        sio_err_set(&b->err, SIO_E_KAFKA, "the transaction did not complete");
    b->took_ms = now_ms() - t0;
}

/* --- the thread -------------------------------------------------------------*/

static void thread_main(void *arg) {
    sio_txn *t = arg;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        if (t->batch == NULL && !t->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&t->cv, &t->mu, &until);
        }
        sio_txn_batch *b = t->batch;
        int stop = t->stop;
        pthread_mutex_unlock(&t->mu);
        rd_kafka_poll(t->p, 0); /* errors and logs between batches */
        if (b != NULL) {
            run_batch(t, b);
            pthread_mutex_lock(&t->mu);
            t->batch = NULL;
            pthread_mutex_unlock(&t->mu);
            t->done(b, t->ud);
            continue;
        }
        if (stop) break;
    }
}

sio_txn *sio_txn_start(rd_kafka_t *producer, int64_t timeout_ms, sio_txn_done_fn done, void *ud,
                       sio_err *err) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        int ms = (int)(left > TXN_CALL_MS ? TXN_CALL_MS : left > 1 ? left : 1);
        rd_kafka_error_t *e = rd_kafka_init_transactions(producer, ms);
        if (e == NULL) break;
        int again = rd_kafka_error_is_retriable(e) && now_ms() < deadline;
        if (!again)
            sio_err_set(err, SIO_E_KAFKA,
                        "exactly_once: the transactional producer cannot start: %s",
                        rd_kafka_error_string(e));
        else
            sio_log_json(SIO_LOG_INFO, "exactly_once: waiting for the transaction coordinator", NULL);
        rd_kafka_error_destroy(e);
        if (!again) return NULL;
    }
    sio_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory");
        return NULL;
    }
    t->p = producer;
    t->done = done;
    t->ud = ud;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (uv_thread_create(&t->thread, thread_main, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        sio_err_set(err, SIO_E_NOMEM, "cannot start the transaction thread");
        return NULL;
    }
    return t;
}

void sio_txn_submit(sio_txn *t, sio_txn_batch *b) {
    pthread_mutex_lock(&t->mu);
    t->batch = b;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void sio_txn_stop(sio_txn *t) {
    if (t == NULL) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    uv_thread_join(&t->thread);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

sio_txn_batch *sio_txn_batch_new(void) {
    sio_txn_batch *b = calloc(1, sizeof *b);
    if (b && (b->offsets = rd_kafka_topic_partition_list_new(8)) == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

void sio_txn_batch_free(sio_txn_batch *b) {
    if (b == NULL) return;
    if (b->offsets) rd_kafka_topic_partition_list_destroy(b->offsets);
    if (b->group) rd_kafka_consumer_group_metadata_destroy(b->group);
    free(b);
}
