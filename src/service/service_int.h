/* service_int.h - shared by service.c (the loop) and service_kafka.c
 * (clients, producer thread, start-up). */
#ifndef SIO_SERVICE_INT_H
#define SIO_SERVICE_INT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include "command.h"
#include "memkv.h"
#include "offsets.h"
#include "service.h"
#include "telemetry.h"
#include "worker.h"

/* Workers full for this long: pause the partitions and poll (see
 * backpressure() in service.c). */
#define SIO_FULL_PAUSE_MS 2000

/* A produce the producer's queue could not take yet (QUEUE_FULL): kept in
 * order and handed to librdkafka by the producer thread after its polls
 * free room, so no worker ever waits for room. */
typedef struct svc_backlog {
    struct svc_backlog *next;
    sio_worker *w;
    uint64_t op_id;
    char *topic, *key, *value;
    size_t key_len, value_len;
    rd_kafka_headers_t *headers; /* NULL when none; librdkafka's once produced */
} svc_backlog;

/* One worker and what its produce hand-off needs. */
typedef struct svc_slot {
    sio_service *s;
    sio_worker *w;
} svc_slot;

struct sio_service {
    const sio_config *cfg;
    int embedded;
    char *brokers;
    rd_kafka_t *mock_rk;
    rd_kafka_mock_cluster_t *mock;
    rd_kafka_t *producer, *consumer;
    sio_memkv *memkv;
    sio_command_ctx cmd_ctx; /* read-only once the workers start */
    char *default_dlq;
    int nworkers;
    svc_slot *slots;
    sio_offsets *offsets;
    pthread_mutex_t mu; /* guards completed */
    pthread_cond_t done_cv; /* signalled when a command completes */
    sio_command *completed;
    sio_command *jobs;  /* every command not freed (consumer thread) */
    pthread_mutex_t backlog_mu; /* guards backlog, backlog_tail */
    svc_backlog *backlog, *backlog_tail;
    uv_thread_t poller;
    volatile int poller_stop;
    int poller_started;
    volatile sig_atomic_t stop, reload;
    size_t inflight, max_inflight;
    int paused;
    int64_t full_since; /* when inflight reached the maximum, or 0 */
    uint64_t dispatched, completed_ok;
    sio_telemetry *telemetry; /* the ops listener and span exporter */
    int hb_consumer, hb_producer; /* heartbeat slots (health.h) */
};

void sio_service_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque);
void sio_service_reload_now(sio_service *s);
void sio_service_shutdown(sio_service *s);
void sio_service_free_jobs(sio_service *s);

#endif
