/*
 * worker.h - a worker: one thread, one libuv loop, one sandboxed lua_State,
 * many commands in flight as coroutines.
 *
 * Tasks (sio_task) are posted from any thread and live on the worker's
 * loop; a task runs workflows through sio_worker_run, each in a coroutine
 * of the trusted engine (lua/sio/runner.lua run) that takes the workflow
 * name and attrs as Lua values and hands back the outcome and each step
 * result through C callbacks.  A run waiting on I/O (HTTP, Redis, Kafka,
 * timers) yields, so other runs and other steps of the same run go on
 * meanwhile.  No JSON text crosses the C/Lua seam.
 */
#ifndef SIO_WORKER_H
#define SIO_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lua.h>

#include "aio.h"
#include "sandbox.h"
#include "sio_err.h"

typedef struct sio_worker sio_worker;
typedef struct sio_task sio_task;
typedef struct sio_run sio_run;

/* A task: a piece of work that lives on a worker's loop, e.g. one Kafka
 * command of the service (service/command.c).  The submitter allocates it,
 * fills the two callbacks and posts it; from start on it runs on the
 * worker's thread, starts aio ops with itself as the owner
 * (sio_worker_aio(w), owner = the task) and Lua runs (sio_worker_run), and
 * calls sio_worker_task_end when it is finished.  Between post and end the
 * worker counts it in sio_worker_inflight. */
struct sio_task {
    /* Set by the submitter. */
    void (*start)(sio_task *t, sio_worker *w);
    /* The completion of an aio op the task started (res valid during the
     * call only).  Never called after sio_worker_task_end. */
    void (*on_op)(sio_task *t, uint64_t op_id, const sio_aio_result *res);
    /* The worker is stopping with t still alive (sio_worker_stop): t must
     * not touch the worker again; its ops are forgotten.  May be NULL. */
    void (*abandon)(sio_task *t);
    /* The worker's. */
    sio_worker *w;      /* set before start */
    struct sio_op *ops; /* aio's list of the task's pending ops */
    sio_task *next, *prev;
    int queued;
};

/* How a Lua run ended.  message and step are owned by the worker and valid
 * during the done call only; step is NULL when no step is to blame. */
typedef struct sio_run_error {
    sio_errclass cls;
    const char *message;
    const char *step;
    int killed; /* a sandbox limit (memory, instructions, deadline) ended it */
} sio_run_error;

/* The callbacks of a Lua run, on the worker thread. */
typedef struct sio_run_cbs {
    /* A step result (publish_result, sio.publish) as the step completes:
     * step_id and payload (len bytes) are valid during the call, query is
     * the command's normalised query as JSON (borrowed; null when none).
     * Must not call back into the worker's Lua. */
    void (*step_result)(void *ud, const char *step_id, const char *payload, size_t len,
                        const json_t *query);
    /* Once, when the run ends: result (a new reference the callee owns) on
     * success, else NULL and err.  The run is gone from this call on.  May
     * be called before sio_worker_run returns (a workflow that never waits
     * finishes inside it): treat sio_worker_run as the last thing a caller
     * does with its own state. */
    void (*done)(void *ud, json_t *result, const sio_run_error *err);
    /* Optional, just before done: what the run cost (Lua instructions,
     * approximately, and its peak Lua memory in bytes). */
    void (*costs)(void *ud, uint64_t instructions, size_t mem_peak);
    /* Optional: takes the run's sio.kafka.produce messages instead of
     * producing them (the exactly-once service holds them for the
     * command's transaction).  Arguments are valid during the call (key
     * NULL: none).  Returns 0 when taken - the script's produce then
     * succeeds on the next loop turn - or -1 with err, which the script
     * gets as the produce's error.  NULL: produced through the worker's
     * aio (sio_worker_cfg.produce). */
    int (*produce)(void *ud, const char *topic, const char *key, size_t key_len,
                   const char *value, size_t len, sio_err *err);
} sio_run_cbs;

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
    /* The settings the engine reads (RETRY_BACKOFF_BASE, RETRY_BACKOFF_MAX,
     * SIO_PUBLISH_LIMIT), handed to runner.init as a Lua table; borrowed.
     * NULL: the defaults. */
    const struct sio_config *config;
    sio_reload_fn on_reload;     /* NULL: none (the outcome is only counted) */
    void *reload_data;
    int no_load;                 /* 1: no initial load (a worker for sio_worker_validate) */
    /* Where the host contract's ops go (luahost.h), with its ud (both
     * borrowed, outliving the worker); NULL: the daemon's (aio).  The
     * busted harness gives its own and completes ops with
     * sio_run_completed. */
    const struct sio_host_backend *backend;
    void *backend_ud;
    /* How long a run may wait on ops before its deadline fails it; 0: the
     * limits' deadline_ms, else 10 minutes. */
    uint64_t run_timeout_ms;
    /* Where the state's log lines go (sandbox.h); NULL: stderr. */
    sio_log_fn log;
    void *log_ud;
} sio_worker_cfg;

/* Creates a worker: its loop, state and engine, and loads the workflows.
 * A set with any invalid file (or two files of one intent) is refused, as
 * a reload would refuse it: NULL with err SIO_E_CONFIG naming file and
 * line.  Does not start a thread.  The caller owns the result. */
sio_worker *sio_worker_create(const sio_worker_cfg *cfg, sio_err *err);

/* Starts the worker's thread, which runs the loop until sio_worker_stop. */
int sio_worker_start(sio_worker *w, sio_err *err);

/* Posts t to the worker (thread-safe): t->start runs on the worker's loop.
 * t must stay valid until it calls sio_worker_task_end. */
void sio_worker_post(sio_worker *w, sio_task *t);

/* Loop thread: t is finished.  Its pending ops are forgotten (they never
 * complete) and it no longer counts as in flight.  The worker does not
 * touch t afterwards. */
void sio_worker_task_end(sio_worker *w, sio_task *t);

/* The worker's sandboxed state (loop thread only), for the busted harness,
 * which drives a worker on its own thread. */
lua_State *sio_worker_state(sio_worker *w);

/* The worker's async I/O, for tasks (loop thread only). */
sio_aio *sio_worker_aio(sio_worker *w);

/* Loop thread: is `workflow` in the live set? */
int sio_worker_knows(const sio_worker *w, const char *workflow);

/* Loop thread: up to max intents of the live set close to `workflow`
 * (sio_suggest), written to out (pointers owned by the worker, valid until
 * the next reload); returns how many. */
size_t sio_worker_suggest(const sio_worker *w, const char *workflow, const char **out,
                          size_t max);

/* Loop thread: runs the workflow named `workflow` with attrs (an object or
 * NULL, borrowed: the engine gets a Lua copy, so the caller's tree never
 * sees the engine's changes) in a coroutine bound to a fresh sandbox
 * execution (the worker's limits), on the live set.  Returns the run, or
 * NULL with err set (cbs->done is then never called).  See sio_run_cbs for
 * when done comes. */
sio_run *sio_worker_run(sio_worker *w, const char *workflow, const json_t *attrs,
                        const sio_run_cbs *cbs, void *ud, sio_err *err);

/* Loop thread: abandons a run still going (its ops are forgotten, done is
 * never called). */
void sio_run_cancel(sio_run *r);

/* Loop thread: op op_id of r completed, with (ok, value) pushed onto r's
 * thread (sio_run_thread): resumes the run with (op_id, ok, value), or
 * fails it when op_id is its deadline.  The path of every completion,
 * whichever backend delivers it; r may be finished when it returns. */
void sio_run_completed(sio_run *r, uint64_t op_id);
lua_State *sio_run_thread(sio_run *r);

/* A task that runs one workflow, for callers on other threads (tests,
 * benchmarks): sio_worker_submit_run posts it (thread-safe) and its start
 * calls sio_worker_run; cbs are called on the worker's thread, done
 * exactly once (also when the run could not start), after which the job
 * belongs to the submitter again. */
typedef struct sio_run_job {
    sio_task task;
    const char *workflow; /* borrowed until done */
    const json_t *attrs;  /* borrowed until done; NULL = {} */
    sio_run_cbs cbs;
    void *ud;
} sio_run_job;

void sio_worker_submit_run(sio_worker *w, sio_run_job *j);

/* Runs the loop on the calling thread until no task or run is in flight or
 * queued, or nothing can wake one.  For the CLI, without sio_worker_start. */
void sio_worker_run_until_idle(sio_worker *w);

/* Tasks queued or alive (thread-safe). */
size_t sio_worker_inflight(sio_worker *w);

/* The Lua state's allocations so far (sio_sandbox_alloc_stats); on the
 * loop's thread, or before sio_worker_start (bench/engine.c). */
void sio_worker_alloc_stats(const sio_worker *w, uint64_t *allocs, uint64_t *bytes);

/* Loads the workflow files and folders in paths as `validate` does, each
 * file with a budget of its own; nothing goes live.  *text (malloc'd, the
 * caller's) gets "ok: intent (file)" per valid workflow, then one
 * "file:line: message" per error; files are named as given (a folder's
 * files as folder/name).  Returns 1 when all are valid, 0 when not, -1
 * (err set) when loading itself failed.  On the calling thread, for the
 * CLI, before sio_worker_start. */
int sio_worker_validate(sio_worker *w, const char *const *paths, size_t npaths, char **text,
                        sio_err *err);

/* Pushes the table of settings runner.init takes (Lua values: retry_attempts,
 * retry_backoff_base_ms, retry_backoff_max_ms, publish_limit) from cfg, or from the
 * defaults of src/core/config.c when cfg is NULL.  Returns 0, or -1 with
 * err set and nothing pushed.  For the worker and the busted harness. */
int sio_worker_push_settings(lua_State *L, const struct sio_config *cfg, sio_err *err);

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

/* --- a run's text (worker_text.c): `run` and the busted harness ------------*/

/* The attrs of a command given as text (NULL: {}), read strictly into a
 * JSON object (a new reference), or NULL with err saying why ("attrs are
 * not valid JSON: ...", "attrs must be a JSON object"): the rule of `run`,
 * `send` and h:run, as the service applies it to a command's attrs. */
json_t *sio_run_attrs(const char *text, size_t len, sio_err *err);

/* {"class", "message"[, "step"]} (a new reference; bytes that are not
 * UTF-8 as U+FFFD), or NULL (memory). */
json_t *sio_run_error_json(const char *cls, const char *message, const char *step);

/* The lines `run` prints, as malloc'd text without a newline (NULL:
 * memory): {"status":"step_result","result":{step_id, payload, query}},
 * and the outcome {"status":"success","result":...} (result borrowed) or,
 * when result is NULL, {"status":"error","error":{class, message[, step]}}. */
char *sio_run_step_line(const char *step_id, const char *payload, size_t len,
                        const json_t *query);
char *sio_run_done_line(const json_t *result, const char *cls, const char *message,
                        const char *step);

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

/* The errors of the last rejected reload, one per line, or NULL.  Owned
 * by w; valid until the next load. */
const char *sio_worker_load_errors(const sio_worker *w);



#endif
