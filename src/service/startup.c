/* startup.c - serve's wait for Kafka and Redis at start; see startup.h. */
#include "startup.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "json.h"
#include "kafka.h"
#include "log.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000
#define KAFKA_ATTEMPT_MIN_MS 1000 /* a metadata request gets at least this long */
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

/* Is a Redis error reply one that a Redis still starting gives? */
static int redis_busy(const char *msg) {
    static const char *const busy[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"};
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        if (strncmp(msg, busy[i], strlen(busy[i])) == 0) return 1;
    return 0;
}

/* Sends one command; a NULL or error reply fills err and tells which kind. */
static probe redis_call(redisContext *c, const sio_config *cfg, const char *what, sio_err *err,
                        const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    probe p = ANSWERED;
    if (r == NULL) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer %s: %s", cfg->redis_addr, what,
                    c->errstr);
        p = SILENT;
    } else if (r->type == REDIS_REPLY_ERROR) {
        p = redis_busy(r->str) ? SILENT : REFUSED;
        sio_err_set(err, SIO_E_REDIS, "redis at %s refused %s: %s", cfg->redis_addr, what, r->str);
    }
    if (r) freeReplyObject(r);
    return p;
}

/* One attempt: connect, AUTH when configured, PING, within timeout_ms. */
static probe redis_probe(const sio_config *cfg, int64_t timeout_ms, sio_err *err) {
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (c == NULL || c->err) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer: %s", cfg->redis_addr,
                    c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return SILENT;
    }
    redisSetTimeout(c, tv);
    probe p = ANSWERED;
    if (cfg->redis_password)
        p = cfg->redis_username ? redis_call(c, cfg, "AUTH", err, "AUTH %s %s",
                                             cfg->redis_username, cfg->redis_password)
                                : redis_call(c, cfg, "AUTH", err, "AUTH %s", cfg->redis_password);
    if (p == ANSWERED) p = redis_call(c, cfg, "PING", err, "PING");
    redisFree(c);
    return p;
}

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

int sio_startup_wait(const sio_config *cfg, rd_kafka_t *rk, const char *brokers, int with_redis,
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
            int t = (int)clamp(backoff > KAFKA_ATTEMPT_MIN_MS ? backoff : KAFKA_ATTEMPT_MIN_MS, 1,
                               left > 1 ? left : 1);
            kafka->up = sio_kafka_check(rk, brokers, t, &kafka->last) == 0;
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
