/* service_int.h - shared by service.c (the loop) and service_kafka.c
 * (clients, producer thread, start-up). */
#ifndef SIO_SERVICE_INT_H
#define SIO_SERVICE_INT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include "memkv.h"
#include "offsets.h"
#include "service.h"
#include "telemetry.h"
#include "worker.h"

/* Workers full for this long: pause the partitions and poll (see
 * backpressure() in service.c). */
#define SIO_FULL_PAUSE_MS 2000

/* A command in flight; job is first so a sio_job * is a svc_job *. */
typedef struct svc_job {
    sio_job job;
    sio_service *s;
    struct svc_job *prev, *next; /* all jobs, for the final free */
    struct svc_job *done_next;   /* completions, worker -> consumer thread */
    char *payload, *meta, *topic;
    int32_t partition;
    int64_t offset;
    uint64_t gen;
    int ok, dlq_tries;
    char *error;
} svc_job;

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
    char *runner_cfg;
    int nworkers;
    svc_slot *slots;
    sio_offsets *offsets;
    pthread_mutex_t mu; /* guards completed */
    pthread_cond_t done_cv; /* signalled when a job completes */
    svc_job *completed;
    svc_job *jobs;
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
