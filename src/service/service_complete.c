/*
 * service_complete.c - the commands the workers finished: a worker hands
 * each one over (sio_service_on_finished, its thread), and the consumer
 * thread completes them (sio_service_drain_completed): its partition's
 * position may advance and the offset is stored, or, exactly once, it is
 * held for a transaction.  Below the consumer loop (service.c) and the
 * rebalance callback (service_rebalance.c), which both drain completions;
 * above exactly once (service_txn.c) and the job list (service_jobs.c).
 */
#include "service_int.h"

#include "json.h"
#include "log.h"
#include "metrics.h"

/* Worker thread (command.h ctx->finished): the command's outcome is in
 * Kafka; hands it to the consumer thread, which completes its offset. */
void sio_service_on_finished(sio_command *c, void *data) {
    sio_service *s = data;
    pthread_mutex_lock(&s->mu);
    c->done_next = s->completed;
    s->completed = c;
    pthread_cond_signal(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
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
    sio_metric_set(SIO_M_COMMANDS_IN_FLIGHT, 0, (int64_t)s->inflight); /* telemetry */
    sio_service_job_unlink(s, c);
    sio_command_free(c);
}

void sio_service_drain_completed(sio_service *s) {
    pthread_mutex_lock(&s->mu);
    sio_command *list = s->completed;
    s->completed = NULL;
    pthread_mutex_unlock(&s->mu);
    for (sio_command *n; list; list = n) {
        n = list->done_next;
        complete(s, list);
    }
}
