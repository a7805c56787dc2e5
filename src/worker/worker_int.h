/* worker_int.h - the worker's internals, shared by worker.c (jobs, loop)
 * and worker_host.c (the host ops Lua calls). */
#ifndef SIO_WORKER_INT_H
#define SIO_WORKER_INT_H

#include <lua.h>
#include <pthread.h>
#include <uv.h>

#include "worker.h"

typedef struct sio_cmd sio_cmd;

/* One job in flight: its coroutine, anchored in the registry, and its exec
 * (limits).  Op completions find it as the op's owner. */
struct sio_cmd {
    sio_cmd *prev, *next;
    sio_worker *w;
    sio_job *job;
    lua_State *co;
    int co_ref;
    sio_exec *exec;
    uint64_t deadline_op; /* started at the first wait */
    struct sio_op *ops;   /* its pending ops (aio's owner list) */
};

/* A produce completion carried from the delivery-report thread, or a
 * native tool's answer (tool = 1) carried from wherever it was given. */
typedef struct sio_produce_done {
    struct sio_produce_done *next;
    int tool;
    char *payload;
    size_t len;
    uint64_t op_id;
    int has_err;
    sio_err err;
    int32_t partition;
    int64_t offset;
} sio_produce_done;

struct sio_worker {
    int id;
    uv_loop_t loop;
    uv_async_t wake;
    uv_thread_t thread;
    int started;
    pthread_mutex_t mu; /* guards the fields up to `running` */
    sio_job *inbox, *inbox_tail;
    size_t queued;
    sio_produce_done *produced;
    int reload, stop;
    size_t running;     /* loop thread only from here on */
    sio_cmd *active;
    sio_sandbox *sb;
    lua_State *L;
    int runner_ref;
    sio_aio *aio;
    sio_limits limits;
    char *workflows_dir, *lua_dir;
    char *load_errors;   /* of the last load, or NULL */
    sio_reload_fn on_reload;
    void *reload_data;
    /* Written by the loop thread under mu, read by sio_worker_reload_stats. */
    unsigned long reloads_ok, reloads_rejected;
    /* telemetry (loop thread): the heartbeat timer and its health slot */
    uv_timer_t hb_timer;
    int hb_started, hb_slot;
};

void sio_worker_on_wake(uv_async_t *a);
struct sio_op **sio_worker_cmd_ops(void *owner);
void sio_worker_on_op(void *owner, uint64_t op_id, const sio_aio_result *res, void *data);
void sio_worker_resume(sio_worker *w, sio_cmd *c, int nargs);
void sio_worker_shutdown_loop(sio_worker *w);
void sio_worker_deadline(sio_worker *w, sio_cmd *c);

/* Pushes the host table (require "sio.host") with the worker's ops added:
 * timer, http, kv, produce, cancel, emit. */
int sio_worker_host_push(sio_worker *w, sio_err *err);

#endif
