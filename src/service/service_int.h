/* service_int.h - shared by the service's files: service.c (the loop),
 * service_kafka.c (clients, producer thread, start-up), service_rebalance.c,
 * service_complete.c, service_txn.c, service_jobs.c and service_reload.c. */
#ifndef SIO_SERVICE_INT_H
#define SIO_SERVICE_INT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <uv.h>

#include "command.h"
#include "memkv.h"
#include "offsets.h"
#include "service.h"
#include "telemetry.h"
#include "txn.h"
#include "worker.h"

/* Workers full for this long: pause the partitions and poll (see
 * backpressure() in service.c). */
#define SIO_FULL_PAUSE_MS 2000

/* After the drain, how long a worker gets to leave its loop before it is
 * taken as wedged (busy in C or in a script that never yields) and left
 * behind: the process exits without it. */
#define SIO_STOP_GRACE_MS 5000

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

/* Exactly once: a message of the commands topic whose command had a
 * message refused for good in an aborted transaction (service_txn.c);
 * its redelivery gets the refusals.  Consumer thread. */
typedef struct svc_refused {
    struct svc_refused *next;
    char *topic;
    int32_t partition;
    int64_t offset;
    sio_refusal *refusals;
} svc_refused;

/* One worker and what its produce hand-off needs. */
typedef struct svc_slot {
    sio_service *s;
    sio_worker *w;
    int reported; /* reload_mu: has told the reload round its outcome */
} svc_slot;

/* A reload as the service logs it, once for all workers
 * (service_reload.c).  Guarded by sio_service.reload_mu. */
typedef struct svc_reload {
    struct json_t *next_files; /* changed paths noted for the next round */
    size_t next_more;          /* ... and how many more */
    int active;                /* a round waits for workers' outcomes */
    int pending;               /* workers still to report */
    int reloaded, rejected;    /* workers' outcomes so far */
    long version;              /* the live set's, from the last worker ok */
    char *errors;              /* the first rejection's text, malloc'd */
    struct json_t *files;      /* the round's changed paths */
    size_t more;
} svc_reload;

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
    atomic_int poller_stop;     /* set by the thread that destroys s */
    int poller_started;
    /* Set by signal handlers and other threads (lock-free atomics are
     * async-signal-safe; a volatile sig_atomic_t is not thread-safe). */
    atomic_int stop, reload;
    pthread_mutex_t reload_mu; /* guards reload and the slots' reported */
    svc_reload rl;
    size_t inflight, max_inflight;
    atomic_int paused; /* intake paused (set by the consumer thread; read by tests) */
    int64_t full_since; /* when inflight reached the maximum, or 0 */
    uint64_t dispatched, completed_ok;
    /* Group membership (service_rebalance.c), the consumer thread's. */
    int cooperative;   /* partition.assignment.strategy is cooperative-sticky */
    int subscribed;    /* subscribe() succeeded: we may be in the group */
    int assigned_once; /* the first assignment arrived */
    int nassigned;     /* partitions of ours now, counted by the callbacks (never asked of
                        * librdkafka inside one: service_rebalance.c) */
    sio_telemetry *telemetry; /* the ops listener and span exporter */
    int hb_consumer, hb_producer; /* heartbeat slots (health.h) */
    /* Exactly once (service_txn.c); the consumer thread's unless said.
     * Finished commands wait in held (still counted in inflight) until a
     * transaction commits them. */
    int eos;                         /* PROCESSING_GUARANTEE=exactly_once */
    sio_txn *txn;                    /* NULL: at least once, or stopped (nothing commits) */
    sio_command *held, *held_tail;   /* linked through done_next */
    size_t nheld;
    uint64_t held_added, held_scanned; /* commands held so far; so far at the last scan */
    int txn_busy;                    /* a batch is with the transaction thread */
    sio_txn_batch *txn_result;       /* guarded by mu: a batch back from it */
    int64_t txn_last_ms, txn_not_before;
    int aborts_in_row;
    svc_refused *refused;
    /* positions this member's transactions committed, per partition it
     * owns: a rewind never goes below them (NULL: none yet) */
    rd_kafka_topic_partition_list_t *txn_committed;
    char *fatal;                     /* why the service stopped itself (exit 1) */
    uint64_t txn_commits, txn_aborts;
    /* Set by the shutdown (service thread): commands abandoned at the
     * drain deadline, workers that did not stop. */
    size_t abandoned;
    int wedged;
};

/* Rebalances, pausing and closing (service_rebalance.c), consumer thread:
 * the consumer's rebalance callback (opaque: the service); pausing or
 * resuming the intake, every assigned partition (why: logged at info, or
 * NULL); leaving the group and destroying the consumer. */
void sio_service_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque);
void sio_service_set_paused(sio_service *s, int pause, const char *why);
void sio_service_close_consumer(sio_service *s);

/* Completions (service_complete.c).  on_finished: a worker hands over a
 * command whose outcome is in Kafka (command.h ctx->finished, worker
 * thread; data = the service).  drain_completed: the consumer thread
 * completes every command handed over so far. */
void sio_service_on_finished(sio_command *c, void *data);
void sio_service_drain_completed(sio_service *s);

/* The job list (service_jobs.c), consumer thread. */
void sio_service_job_unlink(sio_service *s, sio_command *c);
/* Forgets a command the service holds (its job entry, its in-flight
 * count) and frees it. */
void sio_service_drop(sio_service *s, sio_command *c);
/* Frees every command still on the list (destroy). */
void sio_service_free_jobs(sio_service *s);

/* Reloads (service_reload.c).  reload_now: the service thread starts a
 * round (every worker reloads; the changed paths noted so far go with
 * it).  on_reload: a worker's outcome (sio_reload_fn, any worker thread,
 * ud = the service); the last of a round logs it, once.  reload_free: at
 * destroy. */
void sio_service_reload_now(sio_service *s);
void sio_service_on_reload(void *ud, int worker_id, int ok, long version, const char *errors);
void sio_service_reload_free(sio_service *s);

/* Exactly once (service_txn.c), consumer thread. */
void sio_service_txn_finished(sio_service *s, sio_command *c);
void sio_service_txn_tick(sio_service *s, int draining);
void sio_service_txn_revoke(sio_service *s, rd_kafka_topic_partition_list_t *parts, int lost);
void sio_service_txn_dispatch(sio_service *s, sio_command *c);
void sio_service_txn_batch_done(sio_txn_batch *b, void *ud); /* transaction thread */
void sio_service_txn_free(sio_service *s);

#endif
