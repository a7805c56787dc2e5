/* redis_conn.c - a blocking connection to the configured Redis; see
 * redis_conn.h. */
#include "redis_conn.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>

/* Is an error reply one that a Redis still starting gives? */
static int redis_busy(const char *msg) {
    static const char *const busy[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"};
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        if (strncmp(msg, busy[i], strlen(busy[i])) == 0) return 1;
    return 0;
}

/* Sends one command; no reply or an error reply fills err and says which. */
static sio_redis_open_result call(redisContext *c, const sio_config *cfg, const char *what,
                                  sio_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    sio_redis_open_result res = SIO_REDIS_OPENED;
    if (r == NULL) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer %s: %s", cfg->redis_addr, what,
                    c->errstr);
        res = SIO_REDIS_SILENT;
    } else if (r->type == REDIS_REPLY_ERROR) {
        res = redis_busy(r->str) ? SIO_REDIS_SILENT : SIO_REDIS_REFUSED;
        sio_err_set(err, SIO_E_REDIS, "redis at %s refused %s: %s", cfg->redis_addr, what, r->str);
    }
    if (r) freeReplyObject(r);
    return res;
}

sio_redis_open_result sio_redis_open(const sio_config *cfg, int64_t timeout_ms,
                                     struct redisContext **out, sio_err *err) {
    *out = NULL;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (c == NULL || c->err) {
        sio_err_set(err, SIO_E_REDIS, "redis at %s did not answer: %s", cfg->redis_addr,
                    c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return SIO_REDIS_SILENT;
    }
    redisSetTimeout(c, tv);
    sio_redis_open_result res = SIO_REDIS_OPENED;
    if (cfg->redis_password) /* %s is one argument each, spaces and all */
        res = cfg->redis_username ? call(c, cfg, "AUTH", err, "AUTH %s %s", cfg->redis_username,
                                         cfg->redis_password)
                                  : call(c, cfg, "AUTH", err, "AUTH %s", cfg->redis_password);
    if (res == SIO_REDIS_OPENED) res = call(c, cfg, "PING", err, "PING");
    if (res != SIO_REDIS_OPENED) {
        redisFree(c);
        return res;
    }
    *out = c;
    return res;
}
