/*
 * service_txn.c - exactly once, the consumer thread's side (txn.h is the
 * transaction thread's): which finished commands go into the next
 * transaction with which positions, what a committed or aborted
 * transaction leaves, rewinding, refusals, rebalances.
 *
 * A finished command is held until its partition's committable position
 * (offsets.h: the lowest unfinished offset) passes it; only then may its
 * messages become visible, in the same transaction as a position that
 * covers it.  Held commands stay counted in inflight, so the in-flight
 * limit bounds what waits in memory too.
 */
#include "service_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- refusals ------------------------------------------------------------------*/

static svc_refused *find_refused(sio_service *s, const char *topic, int32_t partition,
                                 int64_t offset) {
    for (svc_refused *r = s->refused; r; r = r->next)
        if (r->partition == partition && r->offset == offset && strcmp(r->topic, topic) == 0)
            return r;
    return NULL;
}

/* Remembers the refusal c's transaction met, for c's redelivery. */
static void remember_refusal(sio_service *s, const sio_command *c) {
    sio_refusal *add = sio_command_refusal(c);
    if (add == NULL) return;
    sio_log_json(SIO_LOG_WARN, "exactly_once: a message was refused for good; its command "
                               "will take the refusal's path when consumed again",
                 json_pack("{s:s,s:i,s:I,s:s,s:o}", "source_topic", c->topic, "partition",
                           (int)c->partition, "offset", (json_int_t)c->offset, "refused_by",
                           add->topic, "error", sio_json_text(add->error, strlen(add->error))));
    svc_refused *r = find_refused(s, c->topic, c->partition, c->offset);
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL || (r->topic = strdup(c->topic)) == NULL) {
            free(r);
            sio_refusals_free(add);
            return;
        }
        r->partition = c->partition;
        r->offset = c->offset;
        r->next = s->refused;
        s->refused = r;
    }
    add->next = r->refusals;
    r->refusals = add;
}

void sio_service_txn_dispatch(sio_service *s, sio_command *c) {
    svc_refused *r = find_refused(s, c->topic, c->partition, c->offset);
    if (r) c->refusals = sio_refusals_copy(r->refusals);
}

/* After a commit: refusals of offsets now below a committed position are
 * done with (those messages are never consumed again by this member). */
static void prune_refused(sio_service *s, const rd_kafka_topic_partition_list_t *committed) {
    for (svc_refused **pp = &s->refused; *pp;) {
        svc_refused *r = *pp;
        const rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(committed, r->topic, r->partition);
        if (tp == NULL || tp->offset <= r->offset) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        sio_refusals_free(r->refusals);
        free(r->topic);
        free(r);
    }
}

/* --- holding ------------------------------------------------------------------*/

void sio_service_txn_finished(sio_service *s, sio_command *c) {
    if (!sio_offsets_current(s->offsets, c->topic, c->partition, c->gen)) {
        sio_service_drop(s, c); /* revoked or rewound since: consumed again */
        return;
    }
    sio_offsets_done(s->offsets, c->topic, c->partition, c->offset, c->gen, NULL);
    c->done_next = NULL;
    if (s->held_tail) s->held_tail->done_next = c;
    else s->held = c;
    s->held_tail = c;
    s->nheld++;
    s->held_added++;
}

/* Drops every held command (of the listed partitions; NULL: all). */
static void drop_held(sio_service *s, const rd_kafka_topic_partition_list_t *only) {
    sio_command *keep = NULL, *keep_tail = NULL, *n;
    s->nheld = 0;
    for (sio_command *c = s->held; c; c = n) {
        n = c->done_next;
        if (only && !rd_kafka_topic_partition_list_find(only, c->topic, c->partition)) {
            c->done_next = NULL;
            if (keep_tail) keep_tail->done_next = c;
            else keep = c;
            keep_tail = c;
            s->nheld++;
            continue;
        }
        sio_service_drop(s, c);
    }
    s->held = keep;
    s->held_tail = keep_tail;
}

/* Moves the held commands their positions cover into a new batch, with
 * those positions.  NULL when none is covered (or out of memory). */
static sio_txn_batch *take_batch(sio_service *s) {
    sio_txn_batch *b = sio_txn_batch_new();
    if (b == NULL) return NULL;
    sio_command *keep = NULL, *keep_tail = NULL, *tail = NULL, *n;
    s->nheld = 0;
    for (sio_command *c = s->held; c; c = n) {
        n = c->done_next;
        c->done_next = NULL;
        int64_t pos;
        if (!sio_offsets_current(s->offsets, c->topic, c->partition, c->gen)) {
            sio_service_drop(s, c);
            continue;
        }
        if (!sio_offsets_position(s->offsets, c->topic, c->partition, &pos) || c->offset >= pos) {
            if (keep_tail) keep_tail->done_next = c;
            else keep = c;
            keep_tail = c;
            s->nheld++;
            continue;
        }
        if (tail) tail->done_next = c;
        else b->cmds = c;
        tail = c;
        b->ncmds++;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(b->offsets, c->topic, c->partition);
        if (tp == NULL) tp = rd_kafka_topic_partition_list_add(b->offsets, c->topic, c->partition);
        tp->offset = pos;
    }
    s->held = keep;
    s->held_tail = keep_tail;
    if (b->ncmds == 0) {
        sio_txn_batch_free(b);
        return NULL;
    }
    return b;
}

/* --- transactions ----------------------------------------------------------------*/

void sio_service_txn_batch_done(sio_txn_batch *b, void *ud) {
    sio_service *s = ud;
    pthread_mutex_lock(&s->mu);
    s->txn_result = b;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

/* After an abort: every partition we own goes back to its committed
 * offset, with a new generation, so what was consumed since is consumed
 * again (commands still running from before finish as stale and are
 * dropped).  A partition without a committed offset starts from the
 * beginning.  Returns 0, or -1 when the committed offsets could not be
 * read (the service then stops: it cannot go on without them). */
static int rewind_to_committed(sio_service *s) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(s->consumer, &parts);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    drop_held(s, NULL);
    for (int i = 0; i < parts->cnt; i++)
        sio_offsets_assign(s->offsets, parts->elems[i].topic, parts->elems[i].partition, NULL);
    int rc = -1;
    if (parts->cnt == 0) rc = 0;
    for (int attempt = 0; rc != 0 && attempt < 5; attempt++) {
        e = rd_kafka_committed(s->consumer, parts, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sio_log_json(SIO_LOG_WARN, "exactly_once: reading the committed offsets failed; retrying",
                         json_pack("{s:s}", "error", rd_kafka_err2name(e)));
            continue;
        }
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].offset < 0) parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_error_t *se = rd_kafka_seek_partitions(s->consumer, parts, 10000);
        if (se) {
            sio_log_json(SIO_LOG_WARN, "exactly_once: rewinding failed; retrying",
                         json_pack("{s:s}", "error", rd_kafka_error_name(se)));
            rd_kafka_error_destroy(se);
            continue;
        }
        rc = 0;
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static void stop_fatal(sio_service *s, const char *why) {
    if (s->fatal == NULL) s->fatal = strdup(why);
    s->stop = 1;
    sio_log_json(SIO_LOG_ERROR, "exactly_once: the transactional producer cannot go on; "
                                "stopping (exit 1) so the orchestrator restarts the service",
                 json_pack("{s:o}", "error", sio_json_text(why, strlen(why))));
}

/* A batch came back (rewind: 0 when its partitions are being revoked). */
static void batch_done(sio_service *s, sio_txn_batch *b, int rewind) {
    s->txn_busy = 0;
    sio_command *n;
    switch (b->outcome) {
    case SIO_TXN_COMMITTED:
        s->txn_commits++;
        s->aborts_in_row = 0;
        s->completed_ok += b->ncmds;
        prune_refused(s, b->offsets);
        sio_log_json(SIO_LOG_DEBUG, "exactly_once: transaction committed",
                     json_pack("{s:I,s:I,s:I}", "commands", (json_int_t)b->ncmds, "messages",
                               (json_int_t)b->nmsgs, "took_ms", (json_int_t)b->took_ms));
        break;
    case SIO_TXN_ABORTED:
        s->txn_aborts++;
        for (sio_command *c = b->cmds; c; c = c->done_next) remember_refusal(s, c);
        sio_log_json(SIO_LOG_WARN,
                     rewind ? "exactly_once: transaction aborted; consuming again from the "
                              "committed offsets"
                            : "exactly_once: transaction aborted",
                     json_pack("{s:o,s:I,s:I}", "error",
                               sio_json_text(b->err.msg, strlen(b->err.msg)), "commands",
                               (json_int_t)b->ncmds, "messages", (json_int_t)b->nmsgs));
        break;
    case SIO_TXN_FATAL:
        stop_fatal(s, b->err.msg);
        break;
    case SIO_TXN_ABANDONED:
        sio_log_json(SIO_LOG_WARN, "exactly_once: transaction abandoned (not committed)",
                     json_pack("{s:o,s:I}", "error", sio_json_text(b->err.msg, strlen(b->err.msg)),
                               "commands", (json_int_t)b->ncmds));
        break;
    }
    for (sio_command *c = b->cmds; c; c = n) {
        n = c->done_next;
        sio_service_drop(s, c);
    }
    if (b->outcome == SIO_TXN_ABORTED && rewind) {
        if (rewind_to_committed(s) != 0) {
            stop_fatal(s, "exactly_once: cannot read the committed offsets to consume again");
        } else if (++s->aborts_in_row > 1) {
            /* Aborting again and again (a DLQ that refuses everything): the
             * next transaction waits, with a growing backoff. */
            uint32_t rng = (uint32_t)now_ms();
            int64_t d = sio_backoff_ms(s->cfg->retry_backoff_base_ms, s->cfg->retry_backoff_max_ms,
                                       s->aborts_in_row - 1, &rng);
            s->txn_not_before = now_ms() + d;
        }
    }
    sio_txn_batch_free(b);
}

/* Takes a batch the transaction thread handed back, if any. */
static void take_result(sio_service *s, int rewind) {
    pthread_mutex_lock(&s->mu);
    sio_txn_batch *b = s->txn_result;
    s->txn_result = NULL;
    pthread_mutex_unlock(&s->mu);
    if (b) batch_done(s, b, rewind);
}

/* Waits for the batch in hand to come back and settles it. */
static void wait_batch(sio_service *s, int rewind) {
    pthread_mutex_lock(&s->mu);
    while (s->txn_busy && s->txn_result == NULL) pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    take_result(s, rewind);
}

/* Hands the covered held commands to the transaction thread (none once
 * it is stopped: nothing commits any more). */
static void submit(sio_service *s) {
    if (s->txn == NULL) return;
    sio_txn_batch *b = take_batch(s);
    s->txn_last_ms = now_ms();
    s->held_scanned = s->held_added;
    if (b == NULL) return;
    b->group = rd_kafka_consumer_group_metadata(s->consumer);
    s->txn_busy = 1;
    sio_txn_submit(s->txn, b);
}

/* Starts the next transaction when none is in flight and commands wait:
 * TXN_COMMIT_INTERVAL after the last one started, or at once when
 * TXN_COMMIT_COMMANDS wait or the service drains.  Only a command held
 * since the last look can have made any of them ready (positions move
 * only when commands finish), so the held list is scanned only then. */
void sio_service_txn_tick(sio_service *s, int draining) {
    take_result(s, 1);
    if (s->txn_busy || s->fatal || s->nheld == 0 || s->held_added == s->held_scanned) return;
    int64_t now = now_ms();
    if (now < s->txn_not_before) return;
    if (!draining && s->nheld < (size_t)s->cfg->txn_commit_commands &&
        now - s->txn_last_ms < s->cfg->txn_commit_interval_ms)
        return;
    submit(s);
}

void sio_service_txn_revoke(sio_service *s, rd_kafka_topic_partition_list_t *parts, int lost) {
    /* Settle the transaction in flight; then, unless the partitions are
     * already someone else's, commit what is finished before letting go
     * (a later commit would carry a stale generation and be fenced). */
    wait_batch(s, 0);
    if (!lost && !s->fatal) {
        submit(s);
        wait_batch(s, 0);
    }
    drop_held(s, parts);
}

void sio_service_txn_free(sio_service *s) {
    if (s->txn_result) {
        sio_txn_batch *b = s->txn_result;
        for (sio_command *c = b->cmds, *n; c; c = n) {
            n = c->done_next;
            sio_service_drop(s, c);
        }
        sio_txn_batch_free(b);
        s->txn_result = NULL;
    }
    drop_held(s, NULL);
    for (svc_refused *r = s->refused, *n; r; r = n) {
        n = r->next;
        sio_refusals_free(r->refusals);
        free(r->topic);
        free(r);
    }
    s->refused = NULL;
    free(s->fatal);
    s->fatal = NULL;
}
