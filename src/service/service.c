/*
 * service.c - the consumer loop: dispatch, completions, offsets,
 * backpressure, rebalances, drain.  Kafka clients, the producer thread and
 * start-up checks live in service_kafka.c.
 */
#include "service_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "kafka.h"
#include "log.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- commands ----------------------------------------------------------------*/

/* Worker thread (command.h ctx->finished): the command's outcome is in
 * Kafka; hands it to the consumer thread, which completes its offset. */
static void on_finished(sio_command *c, void *data) {
    sio_service *s = data;
    pthread_mutex_lock(&s->mu);
    c->done_next = s->completed;
    s->completed = c;
    pthread_cond_signal(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

/* The worker with the fewest commands in flight. */
static sio_worker *pick_worker(sio_service *s) {
    sio_worker *best = s->slots[0].w;
    size_t least = sio_worker_inflight(best);
    for (int i = 1; i < s->nworkers && least > 0; i++) {
        size_t n = sio_worker_inflight(s->slots[i].w);
        if (n < least) least = n, best = s->slots[i].w;
    }
    return best;
}

/* Tracks m's offset and hands the command to a worker. */
static void dispatch(sio_service *s, const rd_kafka_message_t *m) {
    sio_err err;
    sio_command *c = sio_command_new(&s->cmd_ctx, m, &err);
    if (c == NULL) {
        sio_log_json(SIO_LOG_ERROR, "out of memory dispatching a command: it is not committed", NULL);
        return;
    }
    if (sio_offsets_track(s->offsets, c->topic, m->partition, m->offset, &c->gen, &err) != 0) {
        sio_log_json(SIO_LOG_ERROR, "cannot track offset",
                     json_pack("{s:s,s:i,s:I}", "error", err.msg, "partition", (int)m->partition,
                               "offset", (json_int_t)m->offset));
        sio_command_free(c);
        return;
    }
    if (s->eos) sio_service_txn_dispatch(s, c);
    c->next = s->jobs;
    if (s->jobs) s->jobs->prev = c;
    s->jobs = c;
    s->inflight++;
    s->dispatched++;
    sio_command_post(c, pick_worker(s));
}

/* Stores the committable position of a partition when it advanced. */
static void store_offset(sio_service *s, const char *topic, int32_t partition, int64_t to) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = to;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(s->consumer, l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        sio_log_json(SIO_LOG_WARN, "offset not stored",
                     json_pack("{s:s,s:i,s:s}", "topic", topic, "partition", (int)partition,
                               "error", rd_kafka_err2str(e)));
    rd_kafka_topic_partition_list_destroy(l);
}

/* One finished command: its outcome is in Kafka, so its partition's
 * position may advance.  Every command ends here (there is no failed
 * completion: the command dead-letters its own failures). */
static void complete(sio_service *s, sio_command *c) {
    if (s->eos) { /* exactly once: held until a transaction commits it */
        sio_service_txn_finished(s, c);
        return;
    }
    int64_t to;
    if (sio_offsets_done(s->offsets, c->topic, c->partition, c->offset, c->gen, &to) == 1)
        store_offset(s, c->topic, c->partition, to);
    s->completed_ok++;
    s->inflight--;
    sio_service_job_unlink(s, c);
    sio_command_free(c);
}

static void drain_completed(sio_service *s) {
    pthread_mutex_lock(&s->mu);
    sio_command *list = s->completed;
    s->completed = NULL;
    pthread_mutex_unlock(&s->mu);
    for (sio_command *n; list; list = n) {
        n = list->done_next;
        complete(s, list);
    }
}

/* --- backpressure ------------------------------------------------------------*/

/* Pauses or resumes the intake: every assigned partition.  While paused,
 * a partition assigned is paused too; one revoked is resumed (see
 * sio_service_on_rebalance), so exactly the assigned partitions carry our
 * pause.
 * why: logged at info, or NULL (the drain says so itself). */
static void set_paused(sio_service *s, int pause, const char *why) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(s->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (pause) rd_kafka_pause_partitions(s->consumer, parts);
    else rd_kafka_resume_partitions(s->consumer, parts);
    if (why)
        sio_log_json(SIO_LOG_INFO, why,
                     json_pack("{s:I,s:I,s:i}", "inflight", (json_int_t)s->inflight, "limit",
                               (json_int_t)s->max_inflight, "partitions", parts->cnt));
    rd_kafka_topic_partition_list_destroy(parts);
    s->paused = pause;
}

/* Waits up to ms for a job to complete (the workers are full). */
static void wait_for_completion(sio_service *s, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->mu);
    if (s->completed == NULL) pthread_cond_timedwait(&s->done_cv, &s->mu, &until);
    pthread_mutex_unlock(&s->mu);
}

/* Bounded intake.  While WORKER_COUNT x WORKER_INFLIGHT commands are in
 * flight the loop does not take new messages: it waits for completions
 * (librdkafka's prefetch queue is bounded by queued.max.messages.kbytes).
 * Only when the workers stay full for a while are the partitions paused,
 * so the loop can poll again - for rebalances and max.poll.interval.ms -
 * without taking messages.  Pausing is a last resort because librdkafka
 * drops the prefetched messages and restarts fetching on resume, which
 * costs a fetch round trip.  Returns 1 when the caller may poll. */
static int backpressure(sio_service *s) {
    if (s->inflight < s->max_inflight) {
        s->full_since = 0;
        if (s->paused && !s->stop && s->inflight <= s->max_inflight / 2)
            set_paused(s, 0, "intake resumed");
        return 1;
    }
    if (s->paused) return 1; /* polling returns no messages */
    int64_t now = now_ms();
    if (s->full_since == 0) s->full_since = now;
    if (now - s->full_since >= SIO_FULL_PAUSE_MS) {
        set_paused(s, 1, "intake paused: the workers stayed full");
        return 1;
    }
    wait_for_completion(s, 20);
    return 0;
}

/* --- rebalances ----------------------------------------------------------------*/

void sio_service_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque) {
    sio_service *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            sio_offsets_assign(s->offsets, parts->elems[i].topic, parts->elems[i].partition, NULL);
        rd_kafka_assign(rk, parts);
        if (s->paused) rd_kafka_pause_partitions(rk, parts);
        sio_log_json(SIO_LOG_INFO, "partitions assigned", json_pack("{s:i}", "count", parts->cnt));
        return;
    }
    /* Revoked (or lost): first let everything stored so far be committed,
     * then forget the partitions, so work still running for them can never
     * store an offset of a partition another member now owns. */
    drain_completed(s);
    if (s->eos) sio_service_txn_revoke(s, parts, rd_kafka_assignment_lost(rk));
    else if (!rd_kafka_assignment_lost(rk)) rd_kafka_commit(rk, NULL, 0);
    for (int i = 0; i < parts->cnt; i++)
        sio_offsets_revoke(s->offsets, parts->elems[i].topic, parts->elems[i].partition);
    rd_kafka_assign(rk, NULL);
    /* Our pause leaves with the partitions.  librdkafka keeps it on a
     * partition through the unassign, and set_paused() reaches only what
     * is assigned: a partition paused here, revoked, and assigned to us
     * again after the intake resumed meanwhile (dropping held commands can
     * bring it under half while we own nothing) was never fetched again.
     * Resuming after the unassign restarts no fetch; and only partitions
     * we paused are resumed (librdkafka 2.0.2 can restart a partition that
     * was not paused from an old position, #4636). */
    if (s->paused) rd_kafka_resume_partitions(rk, parts);
    sio_log_json(SIO_LOG_INFO, "partitions revoked",
                 json_pack("{s:i,s:b}", "count", parts->cnt, "lost", rd_kafka_assignment_lost(rk)));
}

/* --- the loop ---------------------------------------------------------------------*/

static void handle_message(sio_service *s, rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dispatch(s, m);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        sio_log_json(SIO_LOG_WARN, "consumer error",
                     json_pack("{s:s}", "error", rd_kafka_err2str(m->err)));
    }
}

/* After stop: no new work; in-flight work gets until the drain deadline. */
static void drain(sio_service *s) {
    set_paused(s, 1, NULL);
    int64_t deadline = now_ms() + s->cfg->drain_timeout_ms;
    sio_log_json(SIO_LOG_INFO, "draining", json_pack("{s:I}", "inflight", (json_int_t)s->inflight));
    while (s->inflight > 0 && now_ms() < deadline && !s->fatal) {
        drain_completed(s);
        if (s->eos) sio_service_txn_tick(s, 1);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 20);
        if (m) rd_kafka_message_destroy(m); /* fetched before the pause: not ours to start */
    }
    drain_completed(s);
    s->abandoned = s->inflight;
    if (s->inflight > 0)
        sio_log_json(SIO_LOG_WARN, "drain timeout: abandoning in-flight commands (not committed)",
                     json_pack("{s:I}", "inflight", (json_int_t)s->inflight));
}

/* After the drain: stop the workers (abandoning what is left), flush what
 * they produced, commit what was stored and leave the group. */
static void shutdown_service(sio_service *s) {
    for (int i = 0; i < s->nworkers; i++) {
        if (sio_worker_stop_within(s->slots[i].w, SIO_STOP_GRACE_MS) == 0) continue;
        s->wedged++;
        sio_log_json(SIO_LOG_ERROR, "worker did not stop: exiting without it",
                     json_pack("{s:i,s:i}", "worker", i, "waited_ms", SIO_STOP_GRACE_MS));
    }
    /* The batch in hand finishes; what is still held is not committed
     * (consumed again by the next owner).  The service stays exactly once:
     * a completion drained by the closing revoke must not store an offset. */
    sio_txn_stop(s->txn);
    s->txn = NULL;
    if (s->producer && rd_kafka_flush(s->producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sio_log_json(SIO_LOG_WARN, "producer flush timed out",
                     json_pack("{s:i}", "queued", rd_kafka_outq_len(s->producer)));
    if (s->consumer) {
        rd_kafka_consumer_close(s->consumer);
        rd_kafka_destroy(s->consumer);
        s->consumer = NULL;
    }
    sio_log_json(SIO_LOG_INFO, "stopped",
                 json_pack("{s:I,s:I}", "dispatched", (json_int_t)s->dispatched, "completed",
                           (json_int_t)s->completed_ok));
}

int sio_service_run(sio_service *s, sio_err *err) {
    /* Set once, before the first command can reach a worker (workers read
     * cmd_ctx from their threads; writing it per dispatch was a race). */
    s->cmd_ctx.finished = on_finished;
    s->cmd_ctx.finished_data = s;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, s->cfg->commands_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "subscribe %s: %s", s->cfg->commands_topic,
                           rd_kafka_err2str(e));
    sio_log_json(SIO_LOG_INFO, "serving",
                 json_pack("{s:o,s:o,s:o,s:i,s:i}", "brokers", sio_json_text(s->brokers, strlen(s->brokers)),
                           "topic", sio_json_text(s->cfg->commands_topic, strlen(s->cfg->commands_topic)),
                           "group", sio_json_text(s->cfg->kafka_group_id, strlen(s->cfg->kafka_group_id)),
                           "workers", s->nworkers, "inflight_per_worker", s->cfg->worker_inflight));
    while (!s->stop) {
        if (s->reload) {
            s->reload = 0;
            sio_service_reload_now(s);
        }
        drain_completed(s);
        if (s->eos) sio_service_txn_tick(s, 0);
        if (!backpressure(s)) continue;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, s->inflight ? 5 : 100);
        if (m) {
            handle_message(s, m);
            rd_kafka_message_destroy(m);
        }
    }
    drain(s);
    shutdown_service(s);
    if (s->fatal) return sio_err_set(err, SIO_E_KAFKA, "%s", s->fatal);
    if (s->abandoned == 0 && s->wedged == 0) return 0;
    return sio_err_set(err, SIO_E_TIMEOUT,
                       "drain timeout: %zu command(s) abandoned, left uncommitted for redelivery%s",
                       s->abandoned, s->wedged ? "; a worker did not stop" : "");
}

void sio_service_stop(sio_service *s) {
    s->stop = 1;
}
