/*
 * service_rebalance.c - the consumer's membership of its group: the
 * rebalance callback for both protocols, the partitions the service has
 * paused, and the consumer's close.  Everything here runs on the consumer
 * thread (rebalance callbacks are served by its polls).
 *
 * Protocols.  With an eager assignor (range, roundrobin) every rebalance
 * revokes the whole assignment and assigns a new one; with cooperative-sticky
 * (KIP-429) a rebalance revokes only the partitions that move, and assigns
 * only the ones that arrive, so commands of the partitions a member keeps
 * run on undisturbed.  The configured strategy says which one the group
 * uses, and the callback uses rd_kafka_assign() or
 * rd_kafka_incremental_assign()/_unassign() accordingly.
 *
 * Either way a revoked partition is handled the same: completions already
 * reported are stored, the partitions' committable positions (the offsets
 * tracker's, offsets.h) are committed synchronously - so the next owner
 * starts where our finished work ends - and only then is their tracking
 * dropped, which starts a new generation: work still running for them can
 * no longer store an offset.  A lost assignment (session timed out, fenced)
 * commits nothing: another member may already own the partitions.
 *
 * librdkafka 2.0.2 (Debian 12), checked against its sources and issues:
 * - An application pause outlives an unassign: a partition paused, revoked
 *   and later assigned again stays paused (verified on 2.0.2), so a member
 *   that paused under backpressure could never fetch a partition it got
 *   back.  A partition revoked while the intake is paused is resumed.
 * - Resuming a partition that is not paused can restart its fetch from a
 *   stale position (librdkafka #4637/#4686, fixed in 2.4.0): only
 *   partitions that carry our pause are ever resumed.
 * - Closing a cooperative-sticky consumer after it joined the group but
 *   before its first assignment aborts the process in the sticky
 *   assignor's state destructor (#4312, fixed in 2.3.0; reproduced on
 *   2.0.2): the close waits for the first assignment.
 * - A cooperative consumer that receives an assignment while closing can
 *   hang in close (#4527, fixed in 2.4.0): it unsubscribes and waits until
 *   its assignment is empty before closing, the maintainers' workaround.
 * - A call that asks the group thread and waits for its answer
 *   (rd_kafka_assignment(), rd_kafka_rebalance_protocol()) made from the
 *   revoke callback of rd_kafka_consumer_close() after the unassign can
 *   wait for good: the group terminates as soon as it is unassigned, and
 *   a request that reaches its queue as it goes is never answered (the
 *   same race as #4041; one close in ~30 hung under load on the mock
 *   cluster).  The callbacks never ask: the protocol follows from the
 *   configured strategy, and they count the assignment themselves
 *   (s->nassigned).
 * - A commit during a cooperative rebalance can make the member lose its
 *   assignment when a second join bumps the generation (#4059, fixed in
 *   2.8.0): the partitions are then revoked as lost and redelivered to
 *   their next owner - duplicates the dedupe store answers, nothing lost.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "service_int.h"

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The protocol of the group: librdkafka refuses a strategy list that mixes
 * eager and cooperative assignors, so the configured strategy says which
 * one every rebalance uses (rd_kafka_rebalance_protocol() would ask the
 * group thread: see the top). */
static const char *protocol(const sio_service *s) {
    return s->cooperative ? "COOPERATIVE" : "EAGER";
}

/* Logs and frees the error of an incremental (un)assign (e may be NULL). */
static void log_error(rd_kafka_error_t *e, const char *what) {
    if (e == NULL) return;
    sio_log_json(SIO_LOG_ERROR, what, json_pack("{s:s}", "error", rd_kafka_error_name(e)));
    rd_kafka_error_destroy(e);
}

/* --- the intake's pause ---------------------------------------------------*/

/* Pauses or resumes the intake: every assigned partition.  While paused,
 * a partition assigned is paused too and one revoked is resumed (on_assign,
 * on_revoke), so exactly the assigned partitions carry our pause and only
 * partitions we paused are ever resumed.
 * why: logged at info, or NULL (the drain says so itself). */
void sio_service_set_paused(sio_service *s, int pause, const char *why) {
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
    sio_metric_set(SIO_M_CONSUMER_PAUSED, 0, pause); /* telemetry */
}

static void log_change(sio_service *s, const char *msg, const char *proto,
                       const rd_kafka_topic_partition_list_t *parts, int lost) {
    sio_metric_set(SIO_M_PARTITIONS_ASSIGNED, 0, s->nassigned); /* telemetry */
    json_t *list = json_array();
    for (int i = 0; i < parts->cnt; i++) json_array_append_new(list, json_integer(parts->elems[i].partition));
    json_t *f = json_pack("{s:i,s:o,s:s,s:i}", "count", parts->cnt, "partitions", list, "protocol",
                          proto, "assigned_now", s->nassigned);
    if (f && lost >= 0) json_object_set_new(f, "lost", json_boolean(lost));
    sio_log_json(SIO_LOG_INFO, msg, f);
}

/* New partitions: a fresh generation each, fetching from the committed
 * offset; paused at once while the intake is. */
static void on_assign(sio_service *s, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    const char *proto = protocol(s);
    int inc = s->cooperative;
    sio_err err;
    for (int i = 0; i < parts->cnt; i++)
        if (sio_offsets_assign(s->offsets, parts->elems[i].topic, parts->elems[i].partition, &err) != 0)
            sio_log_json(SIO_LOG_ERROR, "cannot track an assigned partition",
                         json_pack("{s:i,s:s}", "partition", (int)parts->elems[i].partition,
                                   "error", err.msg));
    if (inc) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e == NULL) s->nassigned += parts->cnt;
        log_error(e, "incremental assign failed");
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) s->nassigned = parts->cnt;
        else
            sio_log_json(SIO_LOG_ERROR, "assign failed",
                         json_pack("{s:s}", "error", rd_kafka_err2name(e)));
    }
    s->assigned_once = 1;
    if (s->paused) rd_kafka_pause_partitions(rk, parts);
    sio_health_set_ready(SIO_READY_KAFKA, 1, NULL); /* joined */
    log_change(s, "partitions assigned", proto, parts, -1);
}

/* Commits the committable positions of the partitions being revoked, and
 * waits for the answer: the next owner starts where our finished work
 * ends.  Partitions with nothing finished are left out. */
static void commit_revoked(sio_service *s, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *to = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        int64_t pos;
        if (sio_offsets_position(s->offsets, parts->elems[i].topic, parts->elems[i].partition, &pos))
            rd_kafka_topic_partition_list_add(to, parts->elems[i].topic, parts->elems[i].partition)
                ->offset = pos;
    }
    if (to->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, to, 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            sio_log_json(SIO_LOG_WARN,
                         "commit before revoking failed: the next owner redoes what we finished",
                         json_pack("{s:s,s:i}", "error", rd_kafka_err2name(e), "partitions",
                                   to->cnt));
    }
    rd_kafka_topic_partition_list_destroy(to);
}

/* Partitions leaving us: completions reported so far are stored and
 * committed (unless the assignment was lost; exactly once, the finished
 * commands' transaction commits them, service_txn.c), then their tracking is
 * dropped, so work still running for them cannot store an offset of a
 * partition another member now owns. */
static void on_revoke(sio_service *s, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    const char *proto = protocol(s);
    int inc = s->cooperative;
    int lost = rd_kafka_assignment_lost(rk);
    sio_service_drain_completed(s);
    if (s->eos) sio_service_txn_revoke(s, parts, lost); /* offsets go in a transaction */
    else if (!lost) commit_revoked(s, rk, parts);
    for (int i = 0; i < parts->cnt; i++)
        sio_offsets_revoke(s->offsets, parts->elems[i].topic, parts->elems[i].partition);
    /* From here on nothing may ask the group thread (see the top). */
    if (inc) {
        log_error(rd_kafka_incremental_unassign(rk, parts), "incremental unassign failed");
        s->nassigned = s->nassigned > parts->cnt ? s->nassigned - parts->cnt : 0;
    } else {
        rd_kafka_assign(rk, NULL);
        s->nassigned = 0;
    }
    /* Our pause leaves with the partitions.  librdkafka keeps it on a
     * partition through the unassign, and sio_service_set_paused() reaches
     * only what is assigned: a partition paused here, revoked, and assigned
     * to us again after the intake resumed meanwhile was never fetched
     * again.  Resuming after the unassign restarts no fetch; and only
     * partitions we paused are resumed (librdkafka 2.0.2 can restart a
     * partition that was not paused from an old position, #4637). */
    if (s->paused) rd_kafka_resume_partitions(rk, parts);
    sio_metrics_clear_lag(); /* the next statistics report fills in what is still ours */
    if (!inc) /* eager: nothing is ours until the next assign */
        sio_health_set_ready(SIO_READY_KAFKA, 0, "rebalancing: partitions revoked");
    log_change(s, "partitions revoked", proto, parts, lost);
}

void sio_service_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque) {
    sio_service *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(s, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(s, rk, parts);
    } else { /* an assignor error: drop everything, as librdkafka asks */
        sio_log_json(SIO_LOG_ERROR, "rebalance failed",
                     json_pack("{s:s}", "error", rd_kafka_err2str(err)));
        sio_offsets_revoke_all(s->offsets);
        if (s->cooperative) {
            log_error(rd_kafka_incremental_unassign(rk, parts), "incremental unassign failed");
            s->nassigned = parts && s->nassigned > parts->cnt ? s->nassigned - parts->cnt : 0;
        } else {
            rd_kafka_assign(rk, NULL);
            s->nassigned = 0;
        }
        if (s->paused) rd_kafka_resume_partitions(rk, parts); /* as in on_revoke */
    }
}

/* --- closing ----------------------------------------------------------------*/

/* Polls (serving rebalance callbacks; messages fetched now are not started
 * and so not committed) until done(s) or the deadline. */
static void poll_until(sio_service *s, int (*done)(sio_service *), int64_t deadline) {
    while (!done(s) && mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 50);
        if (m) rd_kafka_message_destroy(m);
    }
}

static int first_assignment_seen(sio_service *s) {
    return s->assigned_once;
}

static int assignment_empty(sio_service *s) {
    return s->nassigned == 0;
}

/* The longest the close waits for the group (a joining member gets its
 * first assignment within a session timeout of a dead member's). */
static int64_t close_wait_ms(const sio_service *s) {
    char v[32];
    size_t n = sizeof v;
    long ms = 45000;
    if (rd_kafka_conf_get(rd_kafka_conf(s->consumer), "session.timeout.ms", v, &n) == RD_KAFKA_CONF_OK)
        ms = atol(v);
    return ms > 0 ? ms + 5000 : 50000;
}

/* A consumer that could not be destroyed without aborting the process,
 * kept reachable until it exits (see sio_service_close_consumer). */
static rd_kafka_t *left_in_group;

void sio_service_close_consumer(sio_service *s) {
    if (s->consumer == NULL) return;
    if (s->cooperative && s->subscribed) {
        int64_t deadline = mono_ms() + close_wait_ms(s);
        if (!s->assigned_once) {
            sio_log_json(SIO_LOG_INFO,
                         "closing: waiting for the first assignment (librdkafka #4312)", NULL);
            poll_until(s, first_assignment_seen, deadline);
        }
        const char *joined = s->assigned_once ? NULL : rd_kafka_rebalance_protocol(s->consumer);
        if (joined && strcmp(joined, "COOPERATIVE") == 0) {
            /* Joined, never assigned: destroying it would abort. */
            sio_log_json(SIO_LOG_ERROR,
                         "closing: no first assignment in time; leaving the consumer to the "
                         "process exit (the group drops it at its session timeout)",
                         NULL);
            left_in_group = s->consumer;
            s->consumer = NULL;
            return;
        }
        rd_kafka_unsubscribe(s->consumer); /* revokes through the callback: commits */
        poll_until(s, assignment_empty, deadline);
    }
    rd_kafka_consumer_close(s->consumer);
    rd_kafka_destroy(s->consumer);
    s->consumer = NULL;
}
