/*
 * service_kafka.c - the service's Kafka clients, its producer thread, the
 * produce hand-off from workers, start-up checks and shutdown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "service_int.h"
#include "startup.h"

/* --- producing ----------------------------------------------------------*/

/* What a delivery report needs to find the op again. */
typedef struct dr_ctx {
    sio_worker *w;
    uint64_t op_id;
} dr_ctx;

/* Producer thread: a delivery report completes the worker's produce op,
 * with SIO_E_KAFKA_REJECTED when the message can never be delivered. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    dr_ctx *d = m->_private;
    if (d == NULL) return;
    sio_err err;
    sio_err_clear(&err);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sio_metric_inc(SIO_M_DELIVERY_FAILURES, 0); /* telemetry */
        sio_err_set(&err, sio_kafka_produce_code(m->err), "delivery to %s failed: %s",
                    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }
    sio_worker_produce_done(d->w, d->op_id, m->err ? &err : NULL, m->partition, m->offset);
    free(d);
}

/* One producev; the value and key are copied by librdkafka, and *headers
 * (may be NULL) becomes its own when it succeeds (*headers is then NULL). */
static rd_kafka_resp_err_t producev(sio_service *s, dr_ctx *d, const char *topic,
                                    const char *key, size_t key_len, const char *value,
                                    size_t value_len, rd_kafka_headers_t **headers) {
    rd_kafka_resp_err_t e;
    if (*headers == NULL)
        return rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_KEY(key, key ? key_len : 0),
                                 RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                                 RD_KAFKA_V_END);
    e = rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_KEY(key, key ? key_len : 0),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_HEADERS(*headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) *headers = NULL;
    return e;
}



static void backlog_free(svc_backlog *b) {
    if (b->headers) rd_kafka_headers_destroy(b->headers);
    free(b->topic);
    free(b->key);
    free(b->value);
    free(b);
}

/* Worker thread: the aio produce hand-off (see aio.h).  Never waits: when
 * librdkafka's queue is full (or earlier produces still wait for room, so
 * order is kept) the message joins the backlog the producer thread hands
 * over as room frees up. */
static int produce(void *data, sio_aio *aio, uint64_t op_id, const char *topic, const char *key,
                   size_t key_len, const char *value, size_t value_len,
                   const sio_kafka_header *headers, size_t nheaders, sio_err *err) {
    (void)aio;
    svc_slot *slot = data;
    sio_service *s = slot->s;
    dr_ctx *d = malloc(sizeof *d);
    if (d == NULL) return sio_err_set(err, SIO_E_NOMEM, "produce: out of memory");
    d->w = slot->w;
    d->op_id = op_id;
    rd_kafka_headers_t *hdrs = sio_kafka_headers_new(headers, nheaders);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__QUEUE_FULL;
    pthread_mutex_lock(&s->backlog_mu);
    if (s->backlog == NULL) e = producev(s, d, topic, key, key_len, value, value_len, &hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        svc_backlog *b = calloc(1, sizeof *b);
        if (b && (b->topic = strdup(topic)) && (!key || (b->key = sio_memdup(key, key_len))) &&
            (b->value = sio_memdup(value, value_len))) {
            b->w = slot->w;
            b->op_id = op_id;
            b->key_len = key_len;
            b->value_len = value_len;
            b->headers = hdrs;
            hdrs = NULL;
            if (s->backlog_tail) s->backlog_tail->next = b;
            else s->backlog = b;
            s->backlog_tail = b;
            e = RD_KAFKA_RESP_ERR_NO_ERROR;
        } else {
            if (b) backlog_free(b);
            e = RD_KAFKA_RESP_ERR__QUEUE_FULL;
        }
        free(d); /* the backlog makes its own when it is handed over */
        d = NULL;
    }
    pthread_mutex_unlock(&s->backlog_mu);
    if (hdrs) rd_kafka_headers_destroy(hdrs); /* not produced */
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    free(d);
    return sio_err_set(err, sio_kafka_produce_code(e), "produce to %s: %s", topic,
                       rd_kafka_err2str(e));
}

/* Producer thread, after each poll: hands the backlog over in order until
 * librdkafka's queue is full again.  A message it refuses for another
 * reason completes its op with that error. */
static void flush_backlog(sio_service *s) {
    pthread_mutex_lock(&s->backlog_mu);
    while (s->backlog) {
        svc_backlog *b = s->backlog;
        dr_ctx *d = malloc(sizeof *d);
        if (d == NULL) break;
        d->w = b->w;
        d->op_id = b->op_id;
        rd_kafka_resp_err_t e = producev(s, d, b->topic, b->key, b->key_len, b->value,
                                         b->value_len, &b->headers);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            free(d);
            break;
        }
        s->backlog = b->next;
        if (s->backlog == NULL) s->backlog_tail = NULL;
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            free(d);
            sio_err err;
            sio_err_set(&err, sio_kafka_produce_code(e), "produce to %s: %s", b->topic,
                        rd_kafka_err2str(e));
            sio_worker_produce_done(b->w, b->op_id, &err, -1, -1);
        }
        backlog_free(b);
    }
    pthread_mutex_unlock(&s->backlog_mu);
}

static void poller_main(void *arg) {
    sio_service *s = arg;
    int hb = sio_health_register("producer");
    while (!s->poller_stop) {
        sio_health_beat(hb);
        rd_kafka_poll(s->producer, 50); /* returns early when it served a report */
        flush_backlog(s);
    }
    sio_health_unregister(hb);
}

/* telemetry: librdkafka's statistics (statistics.interval.ms) feed the lag
 * and producer queue gauges.  Returns 0: librdkafka frees json. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk, (void)opaque;
    sio_metrics_kafka_stats(json, len);
    return 0;
}

/* --- clients ------------------------------------------------------------*/

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    sio_log_json(level <= 3 ? SIO_LOG_ERROR : level <= 4 ? SIO_LOG_WARN : SIO_LOG_DEBUG,
                 "librdkafka",
                 json_pack("{s:o,s:o}", "facility", sio_json_text(fac, strlen(fac)), "detail",
                           sio_json_text(buf, strlen(buf))));
}

/* Common configuration: brokers, our defaults, then pass-through props. */
static rd_kafka_conf_t *base_conf(sio_service *s, const char *const *ours, sio_err *err) {
    rd_kafka_conf_t *conf = sio_kafka_conf(s->brokers, ours, err);
    if (conf == NULL) return NULL;
    for (const char *const *p = s->cfg->kafka_props_flat; p && p[0]; p += 2) {
        if (sio_kafka_set(conf, p[0], p[1], err) != 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    return conf;
}

/* The memory librdkafka may hold, set explicitly from the settings
 * KAFKA_PREFETCH_BYTES, KAFKA_PREFETCH_MESSAGES and
 * KAFKA_PRODUCER_QUEUE_BYTES (config.c says why these defaults): the
 * service's peak RSS is bounded by them plus WORKER_COUNT x WORKER_INFLIGHT
 * x SIO_MEM_LIMIT (README "Memory").  A -X of the property itself wins.
 *
 * Producer: a full queue answers QUEUE_FULL and the message waits in the
 * service's ordered backlog instead - and the backlog only holds messages
 * of commands in flight (a command ends after its delivery reports),
 * which backpressure bounds.  100,000 messages is librdkafka's count
 * limit, written down so the two limits read together.
 *
 * Consumer: fetch.max.bytes is left to librdkafka, which keeps it within
 * queued.max.messages.kbytes (and at least message.max.bytes), so one
 * fetch response overshoots the prefetch by at most that much;
 * max.partition.fetch.bytes (1 MiB) is librdkafka's default, written down
 * because the three bound together. */
#define SIO_PRODUCER_QUEUE_MESSAGES "100000"
#define SIO_PARTITION_FETCH_BYTES "1048576"

/* Latency (bench/run latency's breakdown): a response waits linger.ms in
 * the producer before it is sent, so the shipped 5 ms put a 5 ms floor
 * under every command's latency, and the p99 target (5 ms at 1,000/s)
 * out of reach; 1 ms keeps some batching (at high rates batches fill
 * anyway, and an A/B drain of 20,000 commands showed no loss of rate or
 * CPU per command against 5 ms).  TCP_NODELAY, as the Java clients always
 * set it: with up to five produce requests in flight on one connection,
 * Nagle holds a small request back until the previous one is
 * acknowledged, which a delayed ACK can make tens of ms.  -X overrides
 * both (the low-latency profile: linger.ms=0). */
#define SIO_LINGER_MS "1"

/* A byte size as librdkafka's kbytes properties take it (rounded up). */
static void kbytes(size_t bytes, char *buf, size_t n) {
    snprintf(buf, n, "%zu", (bytes + 1023) / 1024);
}

/* Exactly once without -X transactional.id: one unique to this process
 * (a restarted process does not fence its predecessor; that one's open
 * transaction ends at transaction.timeout.ms - set a stable, unique id per
 * instance to have it aborted at once). */
static void default_txn_id(const sio_service *s, char *buf, size_t n) {
    char host[128] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint32_t r = (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 7) ^ getpid()) * 2654435761u;
    snprintf(buf, n, "%s-%s-%d-%08x", s->cfg->kafka_group_id, host, (int)getpid(), r);
}

static int make_producer(sio_service *s, sio_err *err) {
    int eos = s->cfg->processing_guarantee == SIO_EXACTLY_ONCE;
    char txn_id[400], queue_kb[32];
    default_txn_id(s, txn_id, sizeof txn_id);
    kbytes(s->cfg->kafka_producer_queue_bytes, queue_kb, sizeof queue_kb);
    /* Exactly once: a transaction stays open only while one batch commits,
     * so a short timeout is safe, and it bounds how long a crashed
     * process's open transaction holds read_committed readers back. */
    const char *const ours[] = {"enable.idempotence", "true", "acks", "all",
                                "linger.ms", SIO_LINGER_MS, "socket.nagle.disable", "true",
                                "client.id", "sio-orchestrator",
                                "queue.buffering.max.kbytes", queue_kb,
                                "queue.buffering.max.messages", SIO_PRODUCER_QUEUE_MESSAGES,
                                "statistics.interval.ms", "5000", NULL};
    const char *const ours_eos[] = {"enable.idempotence", "true", "acks", "all",
                                    "linger.ms", SIO_LINGER_MS, "socket.nagle.disable", "true",
                                    "client.id", "sio-orchestrator",
                                    "queue.buffering.max.kbytes", queue_kb,
                                    "queue.buffering.max.messages", SIO_PRODUCER_QUEUE_MESSAGES,
                                    "transactional.id", txn_id,
                                    "transaction.timeout.ms", "10000",
                                    "statistics.interval.ms", "5000", NULL};
    rd_kafka_conf_t *conf = base_conf(s, eos ? ours_eos : ours, err);
    if (conf == NULL) return -1;
    /* Properties the contract depends on win over pass-through ones. */
    if (sio_kafka_set(conf, "enable.idempotence", "true", err) != 0 ||
        sio_kafka_set(conf, "acks", "all", err) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, eos ? sio_txn_on_delivery : on_delivery);
    char errstr[512];
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (s->producer == NULL) {
        rd_kafka_conf_destroy(conf);
        return sio_err_set(err, SIO_E_CONFIG, "kafka producer: %s", errstr);
    }
    return 0;
}

static int make_consumer(sio_service *s, sio_err *err) {
    char prefetch_kb[32], per_partition[32];
    kbytes(s->cfg->kafka_prefetch_bytes, prefetch_kb, sizeof prefetch_kb);
    snprintf(per_partition, sizeof per_partition, "%d", s->cfg->kafka_prefetch_messages);
    const char *ours[] = {"group.id", s->cfg->kafka_group_id,
                          "partition.assignment.strategy", s->cfg->assignment_strategy,
                          "enable.auto.offset.store", "false",
                          "enable.auto.commit", "true",
                          "auto.commit.interval.ms", "1000",
                          "auto.offset.reset", "earliest",
                          "enable.partition.eof", "false",
                          "queued.max.messages.kbytes", prefetch_kb,
                          "queued.min.messages", per_partition,
                          "max.partition.fetch.bytes", SIO_PARTITION_FETCH_BYTES,
                          "statistics.interval.ms", "5000", /* telemetry: lag */
                          "socket.nagle.disable", "true", /* see SIO_LINGER_MS */
                          "client.id", "sio-orchestrator", NULL};
    rd_kafka_conf_t *conf = base_conf(s, ours, err);
    if (conf == NULL) return -1;
    if (sio_kafka_set(conf, "enable.auto.offset.store", "false", err) != 0 ||
        (s->cfg->processing_guarantee == SIO_EXACTLY_ONCE &&
         (sio_kafka_set(conf, "enable.auto.commit", "false", err) != 0 ||
          sio_kafka_set(conf, "isolation.level", "read_committed", err) != 0))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(conf, sio_service_on_rebalance);
    rd_kafka_conf_set_opaque(conf, s);
    char strategy[256], errstr[512];
    size_t n = sizeof strategy;
    s->cooperative = rd_kafka_conf_get(conf, "partition.assignment.strategy", strategy, &n) ==
                         RD_KAFKA_CONF_OK && strstr(strategy, "cooperative") != NULL;
    s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (s->consumer == NULL) {
        rd_kafka_conf_destroy(conf);
        return sio_err_set(err, SIO_E_CONFIG, "kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(s->consumer);
    return 0;
}

/* --embedded: librdkafka's mock cluster, in this process. */
static int start_mock(sio_service *s, sio_err *err) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    s->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (s->mock_rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return sio_err_set(err, SIO_E_KAFKA, "embedded broker: %s", errstr);
    }
    s->mock = rd_kafka_mock_cluster_new(s->mock_rk, 1);
    if (s->mock == NULL) return sio_err_set(err, SIO_E_KAFKA, "embedded broker: cannot start");
    s->brokers = strdup(rd_kafka_mock_cluster_bootstraps(s->mock));
    return s->brokers ? 0 : sio_err_set(err, SIO_E_NOMEM, "out of memory");
}

/* telemetry: /readyz's Redis check (runs on the ops thread). */
static int ready_redis(void *data, char *why, size_t n) {
    sio_err err;
    if (sio_startup_redis_ping(data, 1000, &err) == 0) return 1;
    snprintf(why, n, "%s", err.msg);
    return 0;
}

static int ensure_topics(sio_service *s, sio_err *err) {
    char dlq[512];
    const char *topics[] = {s->cfg->commands_topic, s->cfg->responses_topic,
                            sio_dlq_topic(s->cfg->responses_topic, dlq, sizeof dlq)};
    int parts = s->cfg->topic_partitions, repl = s->cfg->topic_replication;
    if (s->embedded) {
        for (size_t i = 0; i < 3; i++) rd_kafka_mock_topic_create(s->mock, topics[i], parts, 1);
        return 0;
    }
    int created = 0;
    if (sio_kafka_ensure_topics(s->producer, topics, 3, parts, repl, 15000, &created, err) != 0)
        return -1;
    if (created) sio_log_json(SIO_LOG_INFO, "topics created", json_pack("{s:i}", "count", created));
    return 0;
}

/* The limits a command's messages must fit in: the producer's
 * message.max.bytes, and the default topics' max.message.bytes when the
 * brokers say (DescribeConfigs; the mock cluster does not). */
static void message_limits(sio_service *s) {
    sio_command_ctx *x = &s->cmd_ctx;
    char v[32];
    size_t n = sizeof v;
    x->max_message = 1000000; /* librdkafka's own default */
    if (rd_kafka_conf_get(rd_kafka_conf(s->producer), "message.max.bytes", v, &n) ==
            RD_KAFKA_CONF_OK && atol(v) > 0)
        x->max_message = (size_t)atol(v);
    x->responses_max = x->default_dlq_max = x->max_message;
    if (s->embedded) return;
    sio_err err;
    size_t t;
    if (sio_kafka_topic_max_bytes(s->producer, s->cfg->responses_topic, 5000, &t, &err) == 0)
        x->responses_max = t;
    if (sio_kafka_topic_max_bytes(s->producer, s->default_dlq, 5000, &t, &err) == 0)
        x->default_dlq_max = t;
    else
        sio_log_json(SIO_LOG_WARN, "the default DLQ's max.message.bytes is unknown",
                     json_pack("{s:s,s:s}", "topic", s->default_dlq, "error", err.msg));
}

/* The context every command shares (command.h). */
static int command_ctx(sio_service *s, sio_err *err) {
    char dlq[512];
    s->default_dlq = strdup(sio_dlq_topic(s->cfg->responses_topic, dlq, sizeof dlq));
    if (s->default_dlq == NULL) return sio_err_set(err, SIO_E_NOMEM, "out of memory");
    sio_command_ctx *x = &s->cmd_ctx;
    x->cfg = s->cfg;
    x->default_dlq = s->default_dlq;
    x->eos = s->cfg->processing_guarantee == SIO_EXACTLY_ONCE;
    snprintf(x->owner, sizeof x->owner, "%d:%llx", (int)getpid(), (unsigned long long)sio_wall_ms());
    message_limits(s);
    return 0;
}

/* A librdkafka size property of rk in bytes (kbytes x 1024 when kb). */
static json_int_t conf_bytes(rd_kafka_t *rk, const char *name, int kb) {
    char v[64];
    size_t n = sizeof v;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &n) != RD_KAFKA_CONF_OK) return 0;
    return (json_int_t)strtoll(v, NULL, 10) * (kb ? 1024 : 1);
}

/* Logs the most the service may hold besides the process at rest (README
 * "Memory"), from the settings and the clients' effective properties. */
static void log_memory_ceiling(sio_service *s) {
    json_int_t lua = (json_int_t)s->cfg->worker_count * s->cfg->worker_inflight *
                     (json_int_t)s->cfg->mem_limit;
    json_int_t prefetch = conf_bytes(s->consumer, "queued.max.messages.kbytes", 1);
    json_int_t fetch = conf_bytes(s->consumer, "fetch.max.bytes", 0);
    json_int_t produce = conf_bytes(s->producer, "queue.buffering.max.kbytes", 1);
    sio_log_json(SIO_LOG_INFO, "memory ceiling",
                 json_pack("{s:I,s:I,s:I,s:I,s:I}", "commands_lua_bytes", lua,
                           "consumer_queue_bytes", prefetch, "fetch_max_bytes", fetch,
                           "producer_queue_bytes", produce, "total_bytes",
                           lua + prefetch + fetch + produce));
}

/* Loads the workflow set once before anything waits on Kafka or Redis, so
 * an invalid set stops serve at once with exit 2 (naming file:line) instead
 * of after STARTUP_TIMEOUT, or after a broker finally answered.  The same
 * loader and rules as the workers' own load (and `validate`). */
static int check_workflows(const sio_config *cfg, sio_err *err) {
    sio_worker_cfg wc = {
        .workflows_dir = cfg->workflows_dir,
        .lua_dir = cfg->lua_dir,
        .limits = {.mem_limit_bytes = cfg->mem_limit,
                   .instr_limit = (uint64_t)cfg->instr_limit,
                   .deadline_ms = (uint64_t)cfg->workflow_timeout_ms},
        .config = cfg,
    };
    /* The workers' initial load: the same message (paths relative to
     * WORKFLOWS_DIR, errors only) as a worker refusing the set. */
    sio_worker *w = sio_worker_create(&wc, err);
    if (w == NULL) return -1;
    sio_worker_destroy(w);
    return 0;
}

static int start_workers(sio_service *s, sio_err *err) {
    s->nworkers = s->cfg->worker_count;
    s->slots = calloc((size_t)s->nworkers, sizeof *s->slots);
    if (s->slots == NULL) return sio_err_set(err, SIO_E_NOMEM, "out of memory");
    for (int i = 0; i < s->nworkers; i++) {
        s->slots[i].s = s;
        sio_worker_cfg wc = {
            .id = i,
            .workflows_dir = s->cfg->workflows_dir,
            .lua_dir = s->cfg->lua_dir,
            .limits = {.mem_limit_bytes = s->cfg->mem_limit,
                       .instr_limit = (uint64_t)s->cfg->instr_limit,
                       .deadline_ms = (uint64_t)s->cfg->workflow_timeout_ms},
            .http_allow = s->cfg->http_allow,
            .http_timeout_ms = (long)s->cfg->http_timeout_ms,
            .redis_host = s->embedded ? NULL : s->cfg->redis_host,
            .redis_port = s->cfg->redis_port,
            .redis_user = s->cfg->redis_username,
            .redis_password = s->cfg->redis_password,
            .redis_timeout_ms = s->cfg->redis_timeout_ms,
            .memkv = s->memkv,
            /* Exactly once, commands hand their messages over instead
             * (a produce outside the transaction thread would fail). */
            .produce = s->cfg->processing_guarantee == SIO_EXACTLY_ONCE ? NULL : produce,
            .produce_data = &s->slots[i],
            .config = s->cfg,
            .on_reload = sio_service_on_reload, /* logged once per reload */
            .reload_data = s,
        };
        s->slots[i].w = sio_worker_create(&wc, err); /* invalid workflows: SIO_E_CONFIG */
        if (s->slots[i].w == NULL) return -1;
        if (sio_worker_start(s->slots[i].w, err) != 0) return -1;
    }
    return 0;
}

sio_service *sio_service_create(const sio_config *cfg, const sio_service_opts *opts,
                                sio_err *err) {
    sio_service *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->embedded = opts && opts->embedded;
    s->eos = cfg->processing_guarantee == SIO_EXACTLY_ONCE;
    s->max_inflight = (size_t)cfg->worker_count * (size_t)cfg->worker_inflight;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    pthread_mutex_init(&s->backlog_mu, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    sio_log_set_level(cfg->log_level);
    s->hb_consumer = -1;
    /* telemetry first, so /healthz and /readyz answer during start-up */
    if ((s->telemetry = sio_telemetry_start(cfg, err)) == NULL) goto fail;
    if (!opts || !opts->embedded) sio_health_set_probe(SIO_READY_REDIS, ready_redis, (void *)cfg);
    if (s->embedded) {
        if (start_mock(s, err) != 0 || (s->memkv = sio_memkv_create(err)) == NULL) goto fail;
    } else {
        s->brokers = strdup(cfg->kafka_brokers);
        if (s->brokers == NULL) goto fail;
    }
    /* The wait comes before any client of the service exists: none of them
     * reconnects (and logs each failure) while it runs. */
    if (check_workflows(cfg, err) != 0 || (s->offsets = sio_offsets_create(err)) == NULL ||
        sio_startup_wait(cfg, s->brokers, !s->embedded, err) != 0 || make_producer(s, err) != 0 ||
        ensure_topics(s, err) != 0 || command_ctx(s, err) != 0 || start_workers(s, err) != 0 ||
        make_consumer(s, err) != 0)
        goto fail;
    log_memory_ceiling(s);
    if (cfg->processing_guarantee == SIO_EXACTLY_ONCE) {
        /* The transaction thread is the producer's thread (txn.h). */
        s->txn = sio_txn_start(s->producer, cfg->startup_timeout_ms, sio_service_txn_batch_done, s,
                               err);
        if (s->txn == NULL) goto fail;
        char id[512];
        size_t n = sizeof id;
        if (rd_kafka_conf_get(rd_kafka_conf(s->producer), "transactional.id", id, &n) !=
            RD_KAFKA_CONF_OK)
            snprintf(id, sizeof id, "?");
        sio_log_json(SIO_LOG_INFO, "exactly_once: transactional producer ready",
                     json_pack("{s:o}", "transactional_id", sio_json_text(id, strlen(id))));
        return s;
    }
    if (uv_thread_create(&s->poller, poller_main, s) != 0) {
        sio_err_set(err, SIO_E_NOMEM, "cannot start the producer thread");
        goto fail;
    }
    s->poller_started = 1;
    return s;
fail:
    sio_service_destroy(s);
    return NULL;
}

const char *sio_service_brokers(const sio_service *s) {
    return s->brokers;
}

int sio_service_left_running(const sio_service *s) {
    return s->wedged > 0;
}

/* A service left running, kept reachable (it is in use until exit). */
static sio_service *left_running;

void sio_service_destroy(sio_service *s) {
    if (s == NULL) return;
    if (s->wedged) {
        left_running = s;
        return;
    }
    for (int i = 0; s->slots && i < s->nworkers; i++) sio_worker_stop(s->slots[i].w);
    sio_service_close_consumer(s);
    sio_txn_stop(s->txn);
    s->txn = NULL;
    if (s->poller_started) {
        s->poller_stop = 1;
        uv_thread_join(&s->poller);
    }
    if (s->producer) {
        /* Serve every outstanding delivery report here (stopped workers drop
         * them) so each report context is freed. */
        rd_kafka_flush(s->producer, 1000);
        rd_kafka_purge(s->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(s->producer, 0);
        rd_kafka_destroy(s->producer);
    }
    for (int i = 0; s->slots && i < s->nworkers; i++) sio_worker_destroy(s->slots[i].w);
    if (s->mock) rd_kafka_mock_cluster_destroy(s->mock);
    if (s->mock_rk) rd_kafka_destroy(s->mock_rk);
    sio_service_txn_free(s);
    sio_service_free_jobs(s);
    sio_offsets_destroy(s->offsets);
    sio_memkv_destroy(s->memkv);
    for (svc_backlog *b = s->backlog, *n; b; b = n) {
        n = b->next;
        backlog_free(b);
    }
    pthread_mutex_destroy(&s->backlog_mu);
    sio_health_set_probe(SIO_READY_REDIS, NULL, NULL);
    sio_health_unregister(s->hb_consumer);
    sio_telemetry_stop(s->telemetry);
    sio_service_reload_free(s);
    pthread_mutex_destroy(&s->reload_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->done_cv);
    free(s->slots);
    free(s->default_dlq);
    free(s->brokers);
    free(s);
}
