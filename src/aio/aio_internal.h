/* aio_internal.h - the parts of aio, bottom up: aio_op.c (the op table),
 * aio_http.c and aio_redis.c (the clients, on the op table), aio.c (create,
 * destroy and the simple kinds, over both).  Nothing calls upwards. */
#ifndef SIO_AIO_INTERNAL_H
#define SIO_AIO_INTERNAL_H

#include <curl/curl.h>
#include <hiredis/async.h>

#include "aio.h"
#include "http_req.h"

typedef struct sio_op sio_op;

/* The Redis connection's state (see aio_redis.c). */
typedef enum sio_redis_state {
    SIO_REDIS_IDLE,
    SIO_REDIS_CONNECTING,
    SIO_REDIS_UP,
    SIO_REDIS_DOWN,
} sio_redis_state;

/* One pending op.  Lives in aio->ops until it completes. */
struct sio_op {
    sio_op *prev, *next;             /* all ops of the aio */
    sio_op *owner_prev, *owner_next; /* the owner's ops (cfg.owner_ops) */
    int in_owner_list;
    int indexed; /* findable by id; cleared while its completion is reported */
    sio_aio *aio;
    uint64_t id;
    void *owner;      /* NULL once forgotten: complete silently */
    sio_aio_kind kind;
    uv_timer_t *timer; /* SIO_AIO_TIMER */
    CURL *easy;        /* SIO_AIO_HTTP */
    struct curl_slist *headers;
    char *body;        /* request body (copy), then response buffer */
    char *resp;
    size_t resp_len, resp_cap;
    int too_big;
    /* SIO_AIO_HTTP: the header lines of the last response ("Name: value\r\n"
     * each, the status line and the blank line left out) */
    char *resp_hdrs;
    size_t resp_hdrs_len, resp_hdrs_cap;
    int hdrs_too_big;
    /* A reply computed at start (memkv), reported from a 0 ms timer so the
     * completion never runs inside the starting call. */
    sio_aio_result deferred;
};

struct sio_aio {
    uv_loop_t *loop;
    sio_aio_cfg cfg;
    sio_op *ops; /* doubly linked, newest first */
    size_t pending;
    sio_op **index; /* open addressing by id, capacity index_cap (a power of 2) */
    size_t index_cap;
    uint64_t next_id;
    /* HTTP */
    sio_http_allow *allow; /* cfg.http_allow, parsed */
    CURLM *multi;
    uv_timer_t *curl_timer;
    /* Redis (aio_redis.c) */
    redisAsyncContext *redis; /* the connection, when CONNECTING or UP */
    char *redis_host;
    sio_redis_state redis_state;
    uv_timer_t *redis_timer;  /* connect/reply timeout, reconnect backoff */
    uint64_t redis_backoff_ms;
    size_t redis_pending;     /* commands sent, replies outstanding */
    int redis_counted_down;   /* counted in the process's down connections */
    int redis_overdue;        /* the timeout passed once: judged after a poll */
    char redis_why[256];      /* why it is DOWN */
    int closing;
};

/* aio_op.c */
sio_op *sio_op_new(sio_aio *aio, void *owner, sio_aio_kind kind, sio_err *err);

/* Starts op's timer: cb fires after ms with the op as handle data.
 * Returns op's id, or 0 with err set (op is then dropped). */
uint64_t sio_op_start_timer(sio_op *op, uint64_t ms, uv_timer_cb cb, sio_err *err);

/* The pending op with this id, or NULL (O(1)). */
sio_op *sio_op_find(sio_aio *aio, uint64_t id);

/* Unlinks and frees op without reporting anything. */
void sio_op_drop(sio_op *op);

/* Reports res for op (unless forgotten), unlinks and frees it. */
void sio_op_finish(sio_op *op, sio_aio_result *res);

/* aio_http.c, aio_redis.c: called by aio.c's create and destroy */
int sio_aio_http_init(sio_aio *aio, sio_err *err);
void sio_aio_http_close(sio_aio *aio);
int sio_aio_redis_init(sio_aio *aio, sio_err *err);
/* Opens the connection (state CONNECTING); on failure the state is DOWN. */
int sio_aio_redis_connect(sio_aio *aio, sio_err *err);
void sio_aio_redis_close(sio_aio *aio);

#endif
