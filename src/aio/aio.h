/*
 * aio.h - asynchronous operations on one worker's libuv loop.
 *
 * A worker owns one sio_aio.  Each operation (a timer, an HTTP request, a
 * Redis command, a Kafka produce) gets a 64-bit op id and, when it ends,
 * exactly one call of the completion callback given at creation, always from
 * the loop (never from inside the function that started the op).  The
 * callback receives the owner pointer the op was started with, so the worker
 * can resume the command that waits for it.
 *
 * Nothing here blocks: HTTP runs on libcurl's multi-socket API driven by uv
 * polls and a uv timer; Redis on hiredis's libuv adapter.
 */
#ifndef SIO_AIO_H
#define SIO_AIO_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http_req.h"
#include "sio_err.h"

typedef struct sio_aio sio_aio;

typedef enum sio_aio_kind {
    SIO_AIO_TIMER,
    SIO_AIO_HTTP,
    SIO_AIO_REDIS,
    SIO_AIO_PRODUCE,
    SIO_AIO_TOOL,
} sio_aio_kind;

/* A Redis reply, flattened: nil, integer, string (status/bulk), or an
 * array of strings (nil elements as NULL). */
typedef enum sio_redis_type {
    SIO_REDIS_NIL,
    SIO_REDIS_INT,
    SIO_REDIS_STR,
    SIO_REDIS_ARRAY,
} sio_redis_type;

/* The outcome of one op.  Every pointer is owned by aio and valid only
 * during the completion callback; copy what you keep. */
typedef struct sio_aio_result {
    sio_aio_kind kind;
    sio_err err;              /* err.code == SIO_E_OK on success */
    /* HTTP */
    long http_status;
    const char *body;         /* NUL-terminated, body_len bytes */
    size_t body_len;
    const char *headers;      /* the response's header lines, "Name: value\r\n" each */
    size_t headers_len;
    /* Redis */
    sio_redis_type redis_type;
    long long redis_int;
    const char *redis_str;
    size_t redis_len;
    size_t redis_n;           /* array length */
    const char *const *redis_elems;
    const size_t *redis_elem_lens;
    /* Produce */
    int32_t partition;
    int64_t offset;
} sio_aio_result;

typedef void (*sio_aio_done_fn)(void *owner, uint64_t op_id, const sio_aio_result *res,
                                void *cb_data);

/* Hands a produce request to whoever owns Kafka; it must call
 * sio_aio_produce_done(aio, op_id, ...) later, on the loop's thread.
 * Returns 0, or -1 with err set (the op then never completes). */
typedef int (*sio_aio_produce_fn)(void *produce_data, sio_aio *aio, uint64_t op_id,
                                  const char *topic, const char *key, size_t key_len,
                                  const char *value, size_t value_len, sio_err *err);

typedef struct sio_aio_cfg {
    sio_aio_done_fn done;     /* required */
    void *cb_data;            /* passed to done */
    /* Where an owner keeps the head of its list of ops (a `struct sio_op *`
     * field the owner zero-initialises), so forgetting an owner costs its
     * own ops only.  NULL: sio_aio_forget scans every pending op. */
    struct sio_op **(*owner_ops)(void *owner);
    /* HTTP: the allow-list, entries as SIO_HTTP_ALLOW takes them (see
     * sio_http_allow_parse: "host" allows the scheme's default port only,
     * "host:port" that port, "*" anything; NULL or empty allows nothing),
     * default timeout, TLS verification (always on unless tls_insecure). */
    const char *const *http_allow; /* NULL-terminated; read during create only */
    long http_timeout_ms;          /* default 10000 */
    size_t http_max_body;          /* default 8 MiB */
    int tls_insecure;
    /* Redis for the kv capability; NULL host means "not configured". */
    const char *redis_host;        /* borrowed for the call only */
    int redis_port;
    const char *redis_password;    /* may be NULL */
    const char *redis_user;        /* ACL user, may be NULL */
    /* A connect, or a reply while commands wait, that takes longer drops
     * the connection (its commands fail transiently; it reconnects).
     * 0: no limit. */
    int64_t redis_timeout_ms;
    /* An in-memory store answering Redis commands instead (serve
     * --embedded); borrowed, must outlive aio.  Wins over redis_host. */
    struct sio_memkv *memkv;
    /* Kafka produce; NULL means "not configured". */
    sio_aio_produce_fn produce;
    void *produce_data;
} sio_aio_cfg;

/* Creates the op engine on loop (borrowed; must outlive aio).  Returns NULL
 * with err set on failure.  The caller owns the result. */
sio_aio *sio_aio_create(uv_loop_t *loop, const sio_aio_cfg *cfg, sio_err *err);

/* Drops every pending op without calling back (their owners go away with
 * the worker), closes the handles and frees aio.  Run the loop until it is
 * idle afterwards so the handles finish closing.  Accepts NULL. */
void sio_aio_destroy(sio_aio *aio);

/* Each start function returns the new op id (> 0), or 0 with err set when
 * the op could not start (the callback is then never called). */
uint64_t sio_aio_timer(sio_aio *aio, void *owner, uint64_t ms, sio_err *err);

/* An HTTP request (everything is copied; timeout_ms 0 = the configured
 * default).  Refused with a permanent error, before anything is sent (the
 * rules of http_req.h): a method that is not an HTTP token; a URL that is
 * not http(s), is malformed, or holds CR, LF or NUL; a host and port off the allow-list
 * (see sio_aio_cfg.http_allow); a header name that is not a token; a
 * header value holding CR, LF or NUL; a Content-Length or
 * Transfer-Encoding header (the request's framing is curl's: a script
 * that set it could smuggle a second request). */
uint64_t sio_aio_http(sio_aio *aio, void *owner, const char *method, size_t method_len,
                      const char *url, size_t url_len, const sio_http_header *headers,
                      size_t nheaders, const char *body, size_t body_len, long timeout_ms,
                      sio_err *err);

/* A Redis command as an argument vector (copied). */
uint64_t sio_aio_redis(sio_aio *aio, void *owner, int argc, const char **argv,
                       const size_t *argvlen, sio_err *err);

uint64_t sio_aio_produce(sio_aio *aio, void *owner, const char *topic, const char *key,
                         size_t key_len, const char *value, size_t value_len, sio_err *err);

/* Completes a produce op (called by the Kafka owner, on the loop thread). */
void sio_aio_produce_done(sio_aio *aio, uint64_t op_id, const sio_err *err, int32_t partition,
                          int64_t offset);

/* A native tool op: completed later by sio_aio_tool_done (the tool's
 * answer, carried to the loop by the worker). */
uint64_t sio_aio_tool(sio_aio *aio, void *owner, sio_err *err);

/* Completes a tool op with payload (body) or err.  Loop thread only. */
void sio_aio_tool_done(sio_aio *aio, uint64_t op_id, const sio_err *err, const char *payload,
                       size_t len);

/* Drops one op: its completion is never reported. */
void sio_aio_cancel(sio_aio *aio, uint64_t op_id);

/* Ops started and not yet completed. */
size_t sio_aio_pending(const sio_aio *aio);

/* Drops every pending op of owner: they never complete (timers are
 * stopped at once; I/O in flight completes silently).  For an owner that
 * goes away (its command finished or was abandoned). */
void sio_aio_forget(sio_aio *aio, void *owner);

#endif
