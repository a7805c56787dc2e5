/*
 * service_kafka.c - the service's Kafka clients, its producer thread, the
 * produce hand-off from workers, start-up checks and shutdown.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "health.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "service_int.h"

/* --- producing ----------------------------------------------------------*/

/* What a delivery report needs to find the op again. */
typedef struct dr_ctx {
    sio_worker *w;
    uint64_t op_id;
} dr_ctx;

/* Producer thread: a delivery report completes the worker's produce op. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    dr_ctx *d = m->_private;
    if (d == NULL) return;
    sio_err err;
    sio_err_clear(&err);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sio_metric_inc(SIO_M_DELIVERY_FAILURES, 0); /* telemetry */
        sio_err_set(&err, SIO_E_KAFKA, "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                    rd_kafka_err2str(m->err));
    }
    sio_worker_produce_done(d->w, d->op_id, m->err ? &err : NULL, m->partition, m->offset);
    free(d);
}

/* Worker thread: the aio produce hand-off (see aio.h). */
static int produce(void *data, sio_aio *aio, uint64_t op_id, const char *topic, const char *key,
                   size_t key_len, const char *value, size_t value_len, sio_err *err) {
    (void)aio;
    svc_slot *slot = data;
    dr_ctx *d = malloc(sizeof *d);
    if (d == NULL) return sio_err_set(err, SIO_E_NOMEM, "produce: out of memory");
    d->w = slot->w;
    d->op_id = op_id;
    rd_kafka_resp_err_t e;
    for (int tries = 0;; tries++) {
        e = rd_kafka_producev(slot->s->producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(key, key ? key_len : 0),
                              RD_KAFKA_V_VALUE((void *)value, value_len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 20) break;
        usleep(500); /* the producer thread drains the queue meanwhile */
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    free(d);
    return sio_err_set(err, SIO_E_KAFKA, "produce to %s: %s", topic, rd_kafka_err2str(e));
}

static void poller_main(void *arg) {
    sio_service *s = arg;
    int hb = sio_health_register("producer");
    while (!s->poller_stop) {
        sio_health_beat(hb);
        rd_kafka_poll(s->producer, 50);
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
    char msg[1024], f[64];
    sio_logf(level <= 3 ? SIO_LOG_ERROR : level <= 4 ? SIO_LOG_WARN : SIO_LOG_DEBUG,
             "librdkafka", "\"facility\":\"%s\",\"detail\":\"%s\"",
             sio_json_escape(fac, f, sizeof f), sio_json_escape(buf, msg, sizeof msg));
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

static int make_producer(sio_service *s, sio_err *err) {
    static const char *const ours[] = {"enable.idempotence", "true", "acks", "all",
                                       "linger.ms", "5", "client.id", "sio-orchestrator",
                                       "statistics.interval.ms", "5000", NULL};
    rd_kafka_conf_t *conf = base_conf(s, ours, err);
    if (conf == NULL) return -1;
    /* Properties the contract depends on win over pass-through ones. */
    if (sio_kafka_set(conf, "enable.idempotence", "true", err) != 0 ||
        sio_kafka_set(conf, "acks", "all", err) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[512];
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (s->producer == NULL) {
        rd_kafka_conf_destroy(conf);
        return sio_err_set(err, SIO_E_CONFIG, "kafka producer: %s", errstr);
    }
    return 0;
}

static int make_consumer(sio_service *s, sio_err *err) {
    const char *ours[] = {"group.id", s->cfg->kafka_group_id,
                          "enable.auto.offset.store", "false",
                          "enable.auto.commit", "true",
                          "auto.commit.interval.ms", "1000",
                          "auto.offset.reset", "earliest",
                          "enable.partition.eof", "false",
                          /* bounds what waits in librdkafka while workers are full */
                          "queued.max.messages.kbytes", "16384",
                          "statistics.interval.ms", "5000", /* telemetry: lag */
                          "client.id", "sio-orchestrator", NULL};
    rd_kafka_conf_t *conf = base_conf(s, ours, err);
    if (conf == NULL) return -1;
    if (sio_kafka_set(conf, "enable.auto.offset.store", "false", err) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(conf, sio_service_on_rebalance);
    rd_kafka_conf_set_opaque(conf, s);
    char errstr[512];
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

/* Redis must answer PING (with AUTH when configured) before we start; the
 * readiness probe asks the same, with a shorter timeout. */
static int check_redis_within(const sio_config *cfg, int secs, sio_err *err) {
    struct timeval tv = {secs, 0};
    redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    int rc = -1;
    if (c == NULL || c->err) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer: %s", cfg->redis_addr,
                    c ? c->errstr : "out of memory");
        goto out;
    }
    redisSetTimeout(c, tv);
    redisReply *r;
    if (cfg->redis_password) {
        r = cfg->redis_username
                ? redisCommand(c, "AUTH %s %s", cfg->redis_username, cfg->redis_password)
                : redisCommand(c, "AUTH %s", cfg->redis_password);
        int bad = r == NULL || r->type == REDIS_REPLY_ERROR;
        if (bad)
            sio_err_set(err, SIO_E_REDIS, "redis at %s refused AUTH: %s", cfg->redis_addr,
                        r ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        if (bad) goto out;
    }
    r = redisCommand(c, "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer PING: %s", cfg->redis_addr,
                    r ? r->str : c->errstr);
    else
        rc = 0;
    if (r) freeReplyObject(r);
out:
    if (c) redisFree(c);
    return rc;
}

static int check_redis(const sio_config *cfg, sio_err *err) {
    return check_redis_within(cfg, 3, err);
}

/* telemetry: /readyz's Redis check (runs on the ops thread). */
static int redis_probe(void *data, char *why, size_t n) {
    sio_err err;
    if (check_redis_within(data, 1, &err) == 0) return 1;
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
    if (created) sio_logf(SIO_LOG_INFO, "topics created", "\"count\":%d", created);
    return 0;
}

/* The runner's settings (sio.service), as JSON. */
static char *runner_settings(const sio_service *s) {
    const sio_config *c = s->cfg;
    char rt[1024], pre[512];
    char *out = NULL;
    if (asprintf(&out,
                 "{\"retry_base_ms\":%lld,\"service\":{\"responses_topic\":\"%s\","
                 "\"dedupe_prefix\":\"%s\",\"dedupe_ttl_ms\":%lld,\"lease_ms\":%lld,"
                 "\"retry_attempts\":%d,\"backoff_base_ms\":%lld,\"backoff_max_ms\":%lld,"
                 "\"workflow_timeout_ms\":%lld,\"log_payloads\":%s}}",
                 (long long)c->retry_backoff_base_ms,
                 sio_json_escape(c->responses_topic, rt, sizeof rt),
                 sio_json_escape(c->dedupe_key_prefix, pre, sizeof pre),
                 (long long)c->dedupe_ttl_ms, (long long)c->dedupe_lease_ms, c->retry_attempts,
                 (long long)c->retry_backoff_base_ms, (long long)c->retry_backoff_max_ms,
                 (long long)c->workflow_timeout_ms, c->log_payloads ? "true" : "false") < 0)
        return NULL;
    return out;
}

static int start_workers(sio_service *s, sio_err *err) {
    s->nworkers = s->cfg->worker_count;
    s->slots = calloc((size_t)s->nworkers, sizeof *s->slots);
    s->runner_cfg = runner_settings(s);
    if (s->slots == NULL || s->runner_cfg == NULL)
        return sio_err_set(err, SIO_E_NOMEM, "out of memory");
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
            .memkv = s->memkv,
            .produce = produce,
            .produce_data = &s->slots[i],
            .runner_cfg = s->runner_cfg,
        };
        s->slots[i].w = sio_worker_create(&wc, err);
        if (s->slots[i].w == NULL) return -1;
        const char *load_errors = sio_worker_load_errors(s->slots[i].w);
        if (i == 0 && load_errors) {
            char e[2048];
            sio_logf(SIO_LOG_ERROR, "some workflows were not loaded", "\"errors\":\"%s\"",
                     sio_json_escape(load_errors, e, sizeof e));
        }
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
    s->max_inflight = (size_t)cfg->worker_count * (size_t)cfg->worker_inflight;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    sio_log_set_level(cfg->log_level);
    s->hb_consumer = -1;
    /* telemetry first, so /healthz and /readyz answer during start-up */
    if ((s->telemetry = sio_telemetry_start(cfg, err)) == NULL) goto fail;
    if (!opts || !opts->embedded) sio_health_set_probe(SIO_READY_REDIS, redis_probe, (void *)cfg);
    if (s->embedded) {
        if (start_mock(s, err) != 0 || (s->memkv = sio_memkv_create(err)) == NULL) goto fail;
    } else {
        s->brokers = strdup(cfg->kafka_brokers);
        if (s->brokers == NULL) goto fail;
    }
    if ((s->offsets = sio_offsets_create(err)) == NULL || make_producer(s, err) != 0 ||
        sio_kafka_check(s->producer, s->brokers, 10000, err) != 0 ||
        (!s->embedded && check_redis(cfg, err) != 0) || ensure_topics(s, err) != 0 ||
        start_workers(s, err) != 0 || make_consumer(s, err) != 0)
        goto fail;
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

void sio_service_reload_now(sio_service *s) {
    sio_log(SIO_LOG_INFO, "reloading workflows", NULL);
    for (int i = 0; i < s->nworkers; i++) sio_worker_reload(s->slots[i].w);
}

/* After the drain: stop the workers (abandoning what is left), flush what
 * they produced, commit what was stored and leave the group. */
void sio_service_shutdown(sio_service *s) {
    for (int i = 0; i < s->nworkers; i++) sio_worker_stop(s->slots[i].w);
    if (s->producer && rd_kafka_flush(s->producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sio_logf(SIO_LOG_WARN, "producer flush timed out", "\"queued\":%d",
                 rd_kafka_outq_len(s->producer));
    if (s->consumer) {
        rd_kafka_consumer_close(s->consumer);
        rd_kafka_destroy(s->consumer);
        s->consumer = NULL;
    }
    sio_logf(SIO_LOG_INFO, "stopped", "\"dispatched\":%llu,\"completed\":%llu",
             (unsigned long long)s->dispatched, (unsigned long long)s->completed_ok);
}

void sio_service_destroy(sio_service *s) {
    if (s == NULL) return;
    for (int i = 0; s->slots && i < s->nworkers; i++) sio_worker_stop(s->slots[i].w);
    if (s->consumer) {
        rd_kafka_consumer_close(s->consumer);
        rd_kafka_destroy(s->consumer);
    }
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
    sio_service_free_jobs(s);
    sio_offsets_destroy(s->offsets);
    sio_memkv_destroy(s->memkv);
    sio_health_set_probe(SIO_READY_REDIS, NULL, NULL);
    sio_health_unregister(s->hb_consumer);
    sio_telemetry_stop(s->telemetry);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->done_cv);
    free(s->slots);
    free(s->runner_cfg);
    free(s->brokers);
    free(s);
}
