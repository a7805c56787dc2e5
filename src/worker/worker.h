/*
 * worker.h - a worker: one thread, one libuv loop, one sandboxed lua_State,
 * many commands in flight as coroutines.
 *
 * Jobs are submitted from any thread; the worker runs each as a coroutine of
 * the trusted runner (lua/sio/runner.lua) and calls the job's callbacks on
 * its own thread.  A job waiting on I/O (HTTP, Redis, Kafka, timers) yields,
 * so other jobs and other steps of the same job go on meanwhile.
 */
#ifndef SIO_WORKER_H
#define SIO_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "aio.h"
#include "sandbox.h"
#include "sio_err.h"

typedef struct sio_worker sio_worker;
typedef struct sio_job sio_job;

/* Called on the worker thread.  kind is "step_result", "log", ... ; data is
 * a JSON text owned by the worker, valid during the call. */
typedef void (*sio_job_emit_fn)(sio_job *job, const char *kind, const char *data, size_t len);

/* Called once, on the worker thread, when the job's coroutine ends.  ok is 1
 * when the runner returned normally; result is its JSON text (or the error
 * message when ok is 0), valid during the call.  The job belongs to the
 * submitter again from this call on. */
typedef void (*sio_job_done_fn)(sio_job *job, int ok, const char *result, size_t len);

struct sio_job {
    /* Set by the submitter; the worker reads them and never frees them. */
    const char *entry;   /* runner function: "run" or "command" */
    const char *payload; /* bytes handed to the runner (attrs JSON, a Kafka value) */
    size_t payload_len;
    const char *meta;    /* a JSON object of metadata, NUL-terminated, or NULL */
    sio_job_emit_fn emit;
    sio_job_done_fn done;
    void *data;          /* the submitter's */
    /* The worker's. */
    sio_job *next;
};

/* Called on the worker thread after each reload (not the initial load):
 * ok is 1 when the new set went live, 0 when it was rejected and the
 * previous one stays; version is the live set's version after the
 * reload; errors is the rejection text ("file:line: msg", one per line;
 * NULL when ok), valid during the call.  Must not call back into w. */
typedef void (*sio_reload_fn)(void *ud, int worker_id, int ok, long version,
                              const char *errors);

typedef struct sio_worker_cfg {
    int id;                      /* for logs */
    const char *workflows_dir;   /* copied */
    const char *lua_dir;         /* copied; may be NULL */
    sio_limits limits;           /* per command */
    const char *const *http_allow; /* borrowed; must outlive the worker */
    long http_timeout_ms;
    const char *redis_host;      /* NULL: kv unavailable */
    int redis_port;
    const char *redis_user, *redis_password;
    int64_t redis_timeout_ms;    /* see sio_aio_cfg; 0 = none */
    struct sio_memkv *memkv;     /* answers Redis commands instead (embedded) */
    sio_aio_produce_fn produce;  /* NULL: kafka produce unavailable */
    void *produce_data;
    const char *runner_cfg;      /* JSON object handed to runner.init, or NULL */
    sio_reload_fn on_reload;     /* NULL: none (the outcome is logged anyway) */
    void *reload_data;
} sio_worker_cfg;

/* Creates a worker: its loop, state and engine, and loads the workflows
 * (an invalid set is an error naming file and line).  Does not start a
 * thread.  The caller owns the result. */
sio_worker *sio_worker_create(const sio_worker_cfg *cfg, sio_err *err);

/* Starts the worker's thread, which runs the loop until sio_worker_stop. */
int sio_worker_start(sio_worker *w, sio_err *err);

/* Queues job (thread-safe).  The job must stay valid until its done call. */
void sio_worker_submit(sio_worker *w, sio_job *job);

/* Runs the loop on the calling thread until no job is in flight or queued
 * and no op is pending.  For the CLI, without sio_worker_start. */
void sio_worker_run_until_idle(sio_worker *w);

/* Jobs queued or running. */
size_t sio_worker_inflight(sio_worker *w);

/* Asks the thread to reload workflows (thread-safe).  Requests made
 * before the thread gets to them are merged into one reload.  The new set
 * goes live only when all of it is valid; running commands finish on the
 * set they started with.  Each outcome is logged as one JSON line
 * ("workflows reloaded" / "reload rejected" with file:line errors),
 * counted, and passed to cfg.on_reload. */
void sio_worker_reload(sio_worker *w);

/* Reloads done so far (thread-safe): ok went live, rejected kept the
 * previous set.  Either pointer may be NULL. */
void sio_worker_reload_stats(sio_worker *w, unsigned long *ok, unsigned long *rejected);

/* Completes a produce op started through cfg.produce (thread-safe: the
 * completion is carried to the worker's loop; dropped once the worker is
 * stopped). */
void sio_worker_produce_done(sio_worker *w, uint64_t op_id, const sio_err *err,
                             int32_t partition, int64_t offset);

/* Completes a native tool op (thread-safe, like produce_done); payload is
 * copied. */
void sio_worker_tool_done(sio_worker *w, uint64_t op_id, const sio_err *err, const char *payload,
                          size_t len);

/* Stops the thread (jobs still running are abandoned: their done is never
 * called) and waits for it.  Accepts a worker never started. */
void sio_worker_stop(sio_worker *w);

/* Like sio_worker_stop, waiting at most ms for the thread: 0 when it
 * stopped; -1 when it is still busy in something that does not yield to
 * the loop (a native tool blocking in C, a script the limits cannot stop).
 * The thread is then left running, and the worker must never be destroyed
 * (its thread still uses it): the process is expected to exit. */
int sio_worker_stop_within(sio_worker *w, int64_t ms);

/* Frees the worker; stops it first if needed.  Accepts NULL. */
void sio_worker_destroy(sio_worker *w);

/* The errors of the last (re)load, one per line, or NULL.  Owned by w;
 * valid until the next load. */
const char *sio_worker_load_errors(const sio_worker *w);

/* Writes {"class":cls,"message":msg} (msg JSON-escaped, truncated to
 * fit) into buf; returns its length. */
size_t sio_json_error(char *buf, size_t size, const char *cls, const char *msg);


#endif
