/* startup.c - serve's wait for Kafka and Redis at start; see startup.h. */
#include "startup.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "kafka.h"
#include "log.h"
#include "redis_conn.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000
#define KAFKA_ATTEMPT_MIN_MS 1000 /* a metadata request gets at least this long */
#define KAFKA_SLICE_MS 250        /* how often an attempt looks for a refusal */
#define REDIS_ATTEMPT_MAX_MS 3000
#define REDIS_ATTEMPT_MIN_MS 200

/* What one attempt at a dependency found. */
typedef enum probe { ANSWERED, SILENT, REFUSED } probe;

/* One dependency being waited for. */
typedef struct dep {
    const char *what;  /* "kafka", "redis" */
    const char *addr;  /* borrowed */
    int up;
    sio_err last;      /* why the last attempt failed */
} dep;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* One attempt: connect, AUTH when configured, PING, within timeout_ms. */
static probe redis_probe(const sio_config *cfg, int64_t timeout_ms, sio_err *err) {
    redisContext *c;
    sio_redis_open_result r = sio_redis_open(cfg, timeout_ms, &c, err);
    if (c) redisFree(c);
    return r == SIO_REDIS_OPENED ? ANSWERED : r == SIO_REDIS_REFUSED ? REFUSED : SILENT;
}

/* --- Kafka ----------------------------------------------------------------*/

/* The client that asks the brokers, with what its error callback saw. */
typedef struct kprobe {
    rd_kafka_t *rk;   /* owned */
    const char *brokers; /* borrowed */
    sio_err last;     /* the last connection error librdkafka reported */
    int refused;      /* last is an authentication or TLS failure */
    int old_scram;    /* SCRAM with a librdkafka that Kafka 4 refuses */
} kprobe;

/* librdkafka before 2.6.1 answers a SCRAM challenge with a nonce Kafka 4.0
 * and later refuse (librdkafka issue 4895), whatever the password. */
#define RDKAFKA_SCRAM_FIXED 0x020601ff

/* Can waiting never change this error?  A failed SASL authentication or
 * TLS handshake fails the same way on every attempt: a wrong password, a
 * broker certificate we do not trust, or a TLS alert from the broker
 * (with TLS 1.3 a client certificate it does not trust is refused after
 * the handshake, so librdkafka reports that alert as a receive failure).
 * So does a fatal error.  Returns the hint to add, or NULL when waiting
 * may help. */
static const char *kafka_refusal(int e, const char *reason) {
    static const char ssl[] =
        " (check ssl.ca.location, and the client certificate and key the broker expects)";
    if (e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED)
        return " (check sasl.mechanisms, sasl.username and sasl.password)";
    if (e == RD_KAFKA_RESP_ERR__SSL) return ssl;
    if (e == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "SSL alert number") != NULL) return ssl;
    if (e == RD_KAFKA_RESP_ERR__FATAL) return "";
    return NULL;
}

/* The probe's error callback (served by rd_kafka_poll on this thread). */
static void kprobe_on_error(rd_kafka_t *rk, int e, const char *reason, void *opaque) {
    (void)rk;
    kprobe *k = opaque;
    if (k->refused) return; /* keep the refusal */
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && k->last.code != SIO_E_OK)
        return; /* the reason each broker is down says more */
    const char *hint = kafka_refusal(e, reason);
    k->refused = hint != NULL;
    char note[256] = "";
    if (k->old_scram && (e == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
                         e == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED))
        snprintf(note, sizeof note,
                 "; note: this librdkafka (%s) cannot authenticate with SCRAM to Kafka 4.0 or "
                 "later (fixed in librdkafka 2.6.1): use PLAIN over SASL_SSL, or TLS client "
                 "certificates", rd_kafka_version_str());
    sio_err_set(&k->last, SIO_E_KAFKA, "kafka brokers %s %s: %s%s%s", k->brokers,
                hint ? "refused the connection" : "did not answer", reason, hint ? hint : "",
                note);
}

/* The probe's own librdkafka lines go to debug: each failure is reported
 * once per round as `waiting for kafka`, with the reason. */
static void kprobe_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    sio_log_json(SIO_LOG_DEBUG, "librdkafka",
                 json_pack("{s:s,s:o}", "facility", fac, "detail", sio_json_text(buf, strlen(buf))));
}

/* A client of its own for the wait, from the same brokers and pass-through
 * properties as the service's (a transactional.id excepted: the probe
 * produces nothing), with an error callback that sees refusals. */
static int kprobe_open(kprobe *k, const sio_config *cfg, const char *brokers, sio_err *err) {
    memset(k, 0, sizeof *k);
    k->brokers = brokers;
    sio_err_clear(&k->last);
    rd_kafka_conf_t *conf = sio_kafka_conf(brokers, NULL, err);
    if (conf == NULL) return -1;
    for (const char *const *p = cfg->kafka_props_flat; p && p[0]; p += 2) {
        if (strcmp(p[0], "transactional.id") == 0) continue;
        if (sio_kafka_set(conf, p[0], p[1], err) != 0) {
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    char mech[64];
    size_t n = sizeof mech;
    k->old_scram = rd_kafka_version() < RDKAFKA_SCRAM_FIXED &&
                   rd_kafka_conf_get(conf, "sasl.mechanisms", mech, &n) == RD_KAFKA_CONF_OK &&
                   strncmp(mech, "SCRAM", 5) == 0;
    rd_kafka_conf_set_error_cb(conf, kprobe_on_error);
    rd_kafka_conf_set_log_cb(conf, kprobe_on_log);
    rd_kafka_conf_set_opaque(conf, k);
    char errstr[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return sio_err_set(err, SIO_E_CONFIG, "kafka: %s", errstr);
    }
    return 0;
}

/* One attempt of up to timeout_ms: metadata asked in short slices, the
 * error callback served between them, so a refusal ends the attempt at
 * once.  A slice whose request went out but timed out (a slow broker)
 * doubles the next one. */
static probe kafka_probe(kprobe *k, int64_t timeout_ms, sio_err *err) {
    int64_t end = now_ms() + timeout_ms, slice = KAFKA_SLICE_MS;
    rd_kafka_resp_err_t e;
    for (;;) {
        int64_t left = end - now_ms();
        int t = (int)clamp(slice < left ? slice : left, 1, INT32_MAX);
        const struct rd_kafka_metadata *md = NULL;
        e = rd_kafka_metadata(k->rk, 0, NULL, &md, t);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int n = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (n > 0) return ANSWERED;
            sio_err_set(&k->last, SIO_E_KAFKA, "kafka brokers %s answered with no brokers",
                        k->brokers);
        }
        rd_kafka_poll(k->rk, 0);
        if (k->refused) break;
        if (e == RD_KAFKA_RESP_ERR__TIMED_OUT) slice *= 2;
        if (now_ms() >= end) break;
    }
    if (k->refused) return sio_err_set(err, SIO_E_KAFKA, "%s", k->last.msg), REFUSED;
    if (k->last.code != SIO_E_OK) sio_err_set(err, SIO_E_KAFKA, "%s", k->last.msg);
    else if (e == RD_KAFKA_RESP_ERR__TRANSPORT) /* no broker connected yet, none failed */
        sio_err_set(err, SIO_E_KAFKA, "kafka brokers %s did not answer within %lld ms (no "
                    "connection yet)", k->brokers, (long long)timeout_ms);
    else
        sio_err_set(err, SIO_E_KAFKA, "kafka brokers %s did not answer within %lld ms (%s)",
                    k->brokers, (long long)timeout_ms, rd_kafka_err2str(e));
    return SILENT;
}

/* --- the wait -------------------------------------------------------------*/

int sio_startup_redis_ping(const sio_config *cfg, int64_t timeout_ms, sio_err *err) {
    return redis_probe(cfg, timeout_ms, err) == ANSWERED ? 0 : -1;
}

/* Logs that d answers now, after waiting. */
static void log_answered(const dep *d, int64_t waited) {
    char msg[32];
    snprintf(msg, sizeof msg, "%s answered", d->what);
    sio_log_json(SIO_LOG_INFO, msg,
                 json_pack("{s:o,s:I}", "address", sio_json_text(d->addr, strlen(d->addr)),
                           "waited_ms", (json_int_t)waited));
}

static void log_waiting(const dep *d, int64_t waited, int64_t retry_in, int64_t limit) {
    char msg[32];
    snprintf(msg, sizeof msg, "waiting for %s", d->what);
    sio_log_json(SIO_LOG_WARN, msg,
                 json_pack("{s:o,s:o,s:I,s:I,s:I}", "address", sio_json_text(d->addr, strlen(d->addr)),
                           "error", sio_json_text(d->last.msg, strlen(d->last.msg)), "waited_ms",
                           (json_int_t)waited, "retry_in_ms", (json_int_t)retry_in,
                           "startup_timeout_ms", (json_int_t)limit));
}

/* The deadline passed: err names everything still silent, with the code
 * of the first (SIO_E_REDIS or SIO_E_KAFKA). */
static int give_up(const dep *deps, size_t n, int64_t limit, sio_err *err) {
    char msg[sizeof err->msg];
    size_t len = (size_t)snprintf(msg, sizeof msg, "STARTUP_TIMEOUT (%lld ms) passed:",
                                  (long long)limit);
    const dep *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (deps[i].up) continue;
        if (len < sizeof msg)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s %s", first ? ";" : "",
                                    deps[i].last.msg);
        if (first == NULL) first = &deps[i];
    }
    return sio_err_set(err, first ? first->last.code : SIO_E_UNAVAILABLE, "%s", msg);
}

/* The wait itself, with the Kafka probe open. */
static int wait_for(const sio_config *cfg, kprobe *kp, const char *brokers, int with_redis,
                    sio_err *err) {
    dep deps[2] = {{.what = "redis", .addr = cfg->redis_addr, .up = !with_redis},
                   {.what = "kafka", .addr = brokers}};
    dep *redis = &deps[0], *kafka = &deps[1];
    int64_t limit = cfg->startup_timeout_ms, start = now_ms(), deadline = start + limit;
    int64_t backoff = BACKOFF_FIRST_MS;
    for (int round = 0;; round++) {
        int64_t round_start = now_ms(), left = deadline - round_start;
        if (!redis->up) {
            probe p = redis_probe(cfg, clamp(left, REDIS_ATTEMPT_MIN_MS, REDIS_ATTEMPT_MAX_MS),
                                  &redis->last);
            if (p == REFUSED) return sio_err_set(err, SIO_E_REDIS, "%s", redis->last.msg);
            if (p == ANSWERED && round > 0) log_answered(redis, now_ms() - start);
            redis->up = p == ANSWERED;
        }
        if (!kafka->up) {
            left = deadline - now_ms();
            int64_t t = clamp(backoff > KAFKA_ATTEMPT_MIN_MS ? backoff : KAFKA_ATTEMPT_MIN_MS, 1,
                              left > 1 ? left : 1);
            probe p = kafka_probe(kp, t, &kafka->last);
            if (p == REFUSED) return sio_err_set(err, SIO_E_KAFKA, "%s", kafka->last.msg);
            kafka->up = p == ANSWERED;
            if (kafka->up && round > 0) log_answered(kafka, now_ms() - start);
        }
        if (redis->up && kafka->up) return 0;
        int64_t now = now_ms();
        if (now >= deadline) return give_up(deps, 2, limit, err);
        int64_t pause = clamp(backoff - (now - round_start), 0, deadline - now);
        for (size_t i = 0; i < 2; i++)
            if (!deps[i].up) log_waiting(&deps[i], now - start, pause, limit);
        sleep_ms(pause);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

int sio_startup_wait(const sio_config *cfg, const char *brokers, int with_redis, sio_err *err) {
    kprobe kp;
    if (kprobe_open(&kp, cfg, brokers, err) != 0) return -1;
    int rc = wait_for(cfg, &kp, brokers, with_redis, err);
    rd_kafka_destroy(kp.rk);
    return rc;
}
