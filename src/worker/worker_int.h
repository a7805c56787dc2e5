/* worker_int.h - the worker's internals, shared by worker.c (tasks, runs, loop)
 * and worker_host.c (the host ops Lua calls). */
#ifndef SIO_WORKER_INT_H
#define SIO_WORKER_INT_H

#include <lua.h>
#include <pthread.h>
#include <uv.h>

#include "trace.h"
#include "worker.h"

typedef struct sio_run_step sio_run_step;
typedef struct sio_op_span sio_op_span;

#define SIO_IDLE_THREADS 16

/* One Lua run in flight: its coroutine, anchored in the registry, and its
 * exec (limits).  It is an aio owner through its task header (on_op
 * resumes the coroutine); it is not posted, and does not count as a task. */
struct sio_run {
    sio_task task; /* first: aio's owner pointer is the task */
    sio_run *prev, *next;
    sio_worker *w;
    sio_run_cbs cbs;
    void *ud;
    const char *workflow; /* borrowed for the first resume only */
    const json_t *attrs;  /* likewise */
    lua_State *co;
    int co_ref;
    sio_exec *exec;
    uint64_t deadline_op; /* started at the first wait */
    /* the outcome, set by the coroutine's last C continuation */
    json_t *result;
    int has_error;
    /* telemetry (worker_trace.c): the trace the run continues (traced = 0:
     * none, no spans), the workflow's metric label, its steps by the
     * engine's index (ids, spans and start times) and the spans of its ops
     * in flight. */
    sio_trace_ctx trace;
    int traced;
    size_t wf_label;
    sio_run_step *steps;
    size_t nsteps;
    sio_op_span *op_spans;
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
    sio_task *inbox, *inbox_tail;
    size_t queued;   /* posted, not started */
    sio_produce_done *produced;
    int reload, stop;
    size_t tasks;       /* started, not ended; written by the loop thread under mu */
    size_t runs;        /* loop thread only from here on */
    sio_run *active;    /* runs in flight */
    sio_task *live;     /* tasks started and not ended */
    sio_sandbox *sb;
    lua_State *L;
    /* Threads of runs that returned, kept (registry refs) for the next runs:
     * a new thread would cost its allocation and its stack's growth.
     * Loop thread only. */
    int idle_threads[SIO_IDLE_THREADS];
    int nidle;
    int runner_ref;
    sio_aio *aio;
    const struct sio_host_backend *backend; /* where the host contract's ops go */
    void *backend_ud;
    sio_limits limits;
    uint64_t run_timeout_ms; /* how long a run may wait: its deadline op */
    char *workflows_dir, *lua_dir;
    char *load_errors;   /* of the last load, or NULL */
    char **intents;      /* the live set's intents, sorted (sio_worker_knows) */
    size_t nintents;
    sio_reload_fn on_reload;
    void *reload_data;
    const struct sio_config *config; /* borrowed (cfg.config): WORKFLOW_CONFIG etc.; may be NULL */
    /* Written by the loop thread under mu, read by sio_worker_reload_stats. */
    unsigned long reloads_ok, reloads_rejected;
    /* telemetry (loop thread): the heartbeat timer and its health slot */
    uv_timer_t hb_timer;
    int hb_started, hb_slot;
};

void sio_worker_on_wake(uv_async_t *a);
/* worker.c: the completion path of aio ops */
struct sio_op **sio_worker_task_ops(void *owner);
void sio_worker_on_op(void *owner, uint64_t op_id, const sio_aio_result *res, void *data);
/* A run's task.on_op: resumes its coroutine with (op_id, ok, value). */
void sio_worker_run_on_op(sio_task *t, uint64_t op_id, const sio_aio_result *res);
void sio_worker_resume(sio_worker *w, sio_run *r, int nargs);
void sio_worker_shutdown_loop(sio_worker *w);
void sio_worker_deadline(sio_worker *w, sio_run *r);

/* Loads workflows (worker_load.c): mode "initial" | "reload" (paths =
 * {WORKFLOWS_DIR}; the set goes live only when all of it is valid) or
 * "validate" (nothing goes live).  *text gets the runner's report (errors,
 * one "file:line: message" per line; for validate also "ok: intent (file)"
 * lines), malloc'd, the caller's, or NULL.  Returns 0, or -1 with err set:
 * SIO_E_SCRIPT when the set is invalid (the message is *text), another
 * code when loading itself failed. */
int sio_worker_load(sio_worker *w, const char *mode, const char *const *paths, size_t npaths,
                    char **text, sio_err *err);

/* worker_host.c: installs the backend of the host contract in w's state
 * (cfg->backend, else the daemon's; with cfg's HTTP rules), sets
 * w->backend, and pushes the host table (require "sio.host"). */
int sio_worker_host_push(sio_worker *w, const sio_worker_cfg *cfg, sio_err *err);

/* worker_host.c: pushes the value of a completed aio op onto co, in the
 * host contract's shape (luahost.h).  May raise (memory). */
void sio_worker_push_result(lua_State *co, const sio_aio_result *r);

/* --- telemetry of a run (worker_trace.c; loop thread) ------------------------*/

/* Sets up r's telemetry: parent (may be NULL, copied) and the workflow's
 * metric label. */
void sio_run_trace_init(sio_run *r, const sio_trace_ctx *parent, const char *workflow);

/* Step i (the engine's 1-based index) with id step_id starts, retries after
 * error, ends (ok, or failed with error): its span under the run's, and
 * sio_step_duration_seconds at its end.  Unknown indices are ignored. */
void sio_run_step_begin(sio_run *r, lua_Integer i, const char *step_id);
void sio_run_step_retry(sio_run *r, lua_Integer i, const char *error);
void sio_run_step_end(sio_run *r, lua_Integer i, int ok, const char *error);

/* A span for an op r is about to start, a child of the step whose code
 * runs (sio_exec_step; else of the run's parent): NULL when the run is not
 * traced.  Register it
 * with sio_run_op_started once the op has its id (0: it did not start;
 * the span then ends with err). */
sio_span *sio_run_op_span(sio_run *r, const char *name, sio_span_kind kind);
void sio_run_op_started(sio_run *r, sio_span *s, uint64_t op_id, const sio_err *err);

/* The op completed (its span gets the outcome and ends) or was cancelled. */
void sio_run_op_done(sio_run *r, uint64_t op_id, const sio_aio_result *res);

/* Puts the run's trace ids into the thread's log lines (or clears them). */
void sio_run_log_here(const sio_run *r);

/* Ends every span r still holds (r is going away: abandoned). */
void sio_run_trace_release(sio_run *r);

#endif
