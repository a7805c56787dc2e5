/*
 * worker.c - a worker thread: loop, state, tasks and Lua runs.
 *
 * Tasks: sio_worker_post puts one in the inbox (any thread) and wakes the
 * loop, which calls its start; it lives on the loop until it calls
 * sio_worker_task_end.  Runs: sio_worker_run starts a coroutine of
 * runner.run(workflow, attrs) bound to a fresh sio_exec (the run's
 * limits); every completed op resumes the coroutine that started it; when
 * the coroutine returns or fails the run's done callback gets the outcome
 * as a JSON tree or an error, and everything the run held is released.
 */
#include "suggest.h"
#include "redact.h"
#include "worker_int.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog.h"
#include "config.h"
#include "embedded.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "luahost.h"
#include "luajson.h"
#include "metrics.h"

static void run_finish(sio_worker *w, sio_run *r, json_t *result, const sio_run_error *e);

/* Ends r with err (a C-side failure) as its error. */
static void run_fail(sio_worker *w, sio_run *r, const sio_err *err) {
    sio_run_error e = {.cls = sio_code_class(err->code), .message = err->msg};
    run_finish(w, r, NULL, &e);
}

/* Calls runner[fn](args...) on the main thread in protected mode.  On error
 * fills err with the message (file:line when the runner gives one). */
static int call_runner(sio_worker *w, const char *fn, int nargs, int nres, sio_err *err) {
    lua_State *L = w->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->runner_ref);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_insert(L, -(nargs + 1));
    if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_SCRIPT, "runner.%s: %s", fn, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
        return -1;
    }
    return 0;
}

/* runner.intents() as a protected C function: [1] the runner's ref. */
static int intents_k(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua_tointeger(L, 1));
    lua_getfield(L, -1, "intents");
    lua_call(L, 0, 1);
    return 1;
}

static void free_intents(sio_worker *w) {
    for (size_t i = 0; i < w->nintents; i++) free(w->intents[i]);
    free(w->intents);
    w->intents = NULL;
    w->nintents = 0;
}

/* Copies the live set's intents (sorted by the runner) for
 * sio_worker_knows, so a command's workflow is checked without Lua. */
static void refresh_intents(sio_worker *w) {
    lua_State *L = w->L;
    free_intents(w);
    lua_pushcfunction(L, intents_k);
    lua_pushinteger(L, w->runner_ref);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    size_t n = (size_t)lua_rawlen(L, -1);
    w->intents = calloc(n ? n : 1, sizeof *w->intents);
    for (size_t i = 0; w->intents && i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        const char *name = lua_tostring(L, -1);
        if (name && (w->intents[w->nintents] = strdup(name)) != NULL) w->nintents++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int cmp_name(const void *key, const void *elem) {
    return strcmp(key, *(char *const *)elem);
}

int sio_worker_knows(const sio_worker *w, const char *workflow) {
    return w->nintents &&
           bsearch(workflow, w->intents, w->nintents, sizeof *w->intents, cmp_name) != NULL;
}

size_t sio_worker_suggest(const sio_worker *w, const char *workflow, const char **out,
                          size_t max) {
    return sio_suggest(workflow, (const char *const *)w->intents, w->nintents, out, max);
}

/* Loads (or reloads) WORKFLOWS_DIR (worker_load.c); the errors of the
 * last load are kept in w->load_errors.  Returns -1 when nothing was
 * swapped in. */
static int load_workflows(sio_worker *w, const char *mode, sio_err *err) {
    const char *dir = w->workflows_dir;
    char *text = NULL;
    int rc = sio_worker_load(w, mode, &dir, 1, &text, err);
    free(w->load_errors);
    w->load_errors = rc == 0 ? NULL : text;
    if (rc == 0) {
        free(text);
        refresh_intents(w);
    }
    return rc;
}

/* The length of e's first whole lines that fit in max bytes (the first
 * line at least); *left = the lines after them. */
static size_t fit_lines(const char *e, size_t max, size_t *left) {
    size_t cut = 0, kept = 0, total = 0;
    int full = 0;
    for (const char *p = e; *p;) {
        const char *nl = strchr(p, '\n');
        size_t end = nl ? (size_t)(nl - e) : strlen(e);
        total++;
        if (!full && (kept == 0 || end <= max)) {
            cut = end;
            kept++;
        } else {
            full = 1;
        }
        if (nl == NULL) break;
        p = nl + 1;
    }
    *left = total - kept;
    return cut;
}

/* The initial load.  A set with any error refuses the worker, as a reload
 * would keep the previous set: an invalid configuration (exit 2), and the
 * commands stay in Kafka instead of being dead-lettered as unknown. */
static int load_initial(sio_worker *w, sio_err *err) {
    if (load_workflows(w, "initial", err) == 0) return 0;
    if (err->code != SIO_E_SCRIPT || w->load_errors == NULL) return -1;
    size_t left, cut = fit_lines(w->load_errors, 360, &left);
    char more[96] = "";
    if (left > 0)
        snprintf(more, sizeof more, "\n... and %zu more (`sio-orchestrator validate` lists them)", left);
    return sio_err_set(err, SIO_E_CONFIG, "invalid workflows in %s (nothing is served until all are valid):\n%.*s%s",
                       w->workflows_dir, (int)cut, w->load_errors, more);
}

const char *sio_worker_load_errors(const sio_worker *w) {
    return w->load_errors;
}

/* --- telemetry: the live set as /workflows and the metric labels see it --*/

#define CAT_MAX_WF SIO_METRICS_MAX_WORKFLOWS
#define CAT_MAX_STEPS SIO_METRICS_MAX_STEPS

/* What catalog_k collects; strings are borrowed from the live set, which
 * stays anchored (runner.current) while the loop thread publishes it. */
typedef struct cat {
    sio_metrics_wf wfs[CAT_MAX_WF];
    const char *files[CAT_MAX_WF], *paths[CAT_MAX_WF];
    const char *steps[CAT_MAX_STEPS];
    size_t n, nsteps;
    long version;
} cat;

/* Protected: reads runner.current() (arg 1: the runner's ref, arg 2: cat). */
static int catalog_k(lua_State *L) {
    cat *c = lua_touserdata(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua_tointeger(L, 1));
    lua_getfield(L, -1, "current");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "version");
    c->version = (long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "workflows");
    if (!lua_istable(L, -1)) return 0;
    lua_pushnil(L);
    while (lua_next(L, -2) && c->n < CAT_MAX_WF) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            sio_metrics_wf *wf = &c->wfs[c->n];
            wf->intent = lua_tostring(L, -2);
            lua_getfield(L, -1, "file");
            c->files[c->n] = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
            lua_pop(L, 1);
            lua_getfield(L, -1, "path"); /* where it was read (file: its name) */
            c->paths[c->n] = lua_isstring(L, -1) ? lua_tostring(L, -1) : c->files[c->n];
            lua_pop(L, 1);
            wf->steps = &c->steps[c->nsteps];
            lua_getfield(L, -1, "steps");
            for (lua_Integer i = 1; lua_istable(L, -1) && c->nsteps < CAT_MAX_STEPS; i++) {
                if (lua_rawgeti(L, -1, i) != LUA_TTABLE) {
                    lua_pop(L, 1);
                    break;
                }
                lua_getfield(L, -1, "id");
                if (lua_type(L, -1) == LUA_TSTRING) c->steps[c->nsteps++] = lua_tostring(L, -1), wf->nsteps++;
                lua_pop(L, 2);
            }
            lua_pop(L, 1);
            c->n++;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Publishes the live set to telemetry (worker 0 speaks for all: every
 * worker loads the same files): labels, /workflows, readiness. */
static void publish_catalog(sio_worker *w) {
    if (w->id != 0) return;
    static cat c; /* large; worker 0's loop thread only */
    memset(&c, 0, sizeof c);
    lua_State *L = w->L;
    if (!lua_checkstack(L, 4)) return;
    lua_pushcfunction(L, catalog_k);
    lua_pushinteger(L, w->runner_ref);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        return;
    }
    sio_catalog_publish(c.version, c.wfs, c.files, c.paths, c.n);
    sio_health_set_ready(SIO_READY_WORKFLOWS, c.n > 0, c.n ? NULL : "no workflow is loaded");
}

/* Creates the state, installs the engine and the host ops, and calls
 * runner.init(host, settings). */
static int init_state(sio_worker *w, const sio_worker_cfg *cfg, sio_err *err) {
    /* A lua folder that does not exist means no user modules, not an error
     * (the default "lua" is relative to where the binary runs). */
    struct stat st;
    const char *lua_dir = cfg->lua_dir && stat(cfg->lua_dir, &st) == 0 ? cfg->lua_dir : NULL;
    sio_sandbox_cfg sc = {.lua_dir = lua_dir, .limits = cfg->limits, .preload = SIO_HOST_PRELOAD,
                          .log = cfg->log, .log_ud = cfg->log_ud};
    w->sb = sio_sandbox_create(&sc, err);
    if (w->sb == NULL) return -1;
    w->L = sio_sandbox_state(w->sb);
    lua_State *L = w->L;
    /* Commands make many short-lived objects: the generational collector
     * handles that pattern with less work than the incremental one. */
    lua_gc(L, LUA_GCGEN, 0, 0);
    sio_embedded_install(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "sio.runner");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_SCRIPT, "loading the runner: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    w->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (sio_worker_host_push(w, cfg, err) != 0) return -1; /* the host table */
    if (sio_worker_push_settings(L, cfg->config, err) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    return call_runner(w, "init", 2, 0, err);
}

sio_worker *sio_worker_create(const sio_worker_cfg *cfg, sio_err *err) {
    sio_worker *w = calloc(1, sizeof *w);
    if (w == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "worker: out of memory");
        return NULL;
    }
    w->id = cfg->id;
    w->limits = cfg->limits;
    w->run_timeout_ms = cfg->run_timeout_ms   ? cfg->run_timeout_ms
                        : cfg->limits.deadline_ms ? cfg->limits.deadline_ms
                                                  : 600000;
    w->on_reload = cfg->on_reload;
    w->reload_data = cfg->reload_data;
    w->config = cfg->config;
    w->runner_ref = LUA_NOREF;
    pthread_mutex_init(&w->mu, NULL);
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wake, sio_worker_on_wake);
    w->wake.data = w;
    w->workflows_dir = strdup(cfg->workflows_dir ? cfg->workflows_dir : "workflows");
    w->lua_dir = cfg->lua_dir ? strdup(cfg->lua_dir) : NULL;
    sio_aio_cfg ac = {
        .done = sio_worker_on_op,
        .owner_ops = sio_worker_task_ops,
        .cb_data = w,
        .http_allow = cfg->http_allow,
        .http_timeout_ms = cfg->http_timeout_ms,
        .redis_host = cfg->redis_host,
        .redis_port = cfg->redis_port,
        .redis_user = cfg->redis_user,
        .redis_password = cfg->redis_password,
        .redis_timeout_ms = cfg->redis_timeout_ms,
        .memkv = cfg->memkv,
        .produce = cfg->produce,
        .produce_data = cfg->produce_data,
    };
    if (w->workflows_dir == NULL || (cfg->lua_dir && w->lua_dir == NULL)) {
        sio_err_set(err, SIO_E_NOMEM, "worker: out of memory");
        goto fail;
    }
    w->aio = sio_aio_create(&w->loop, &ac, err);
    if (w->aio == NULL || init_state(w, cfg, err) != 0 ||
        (!cfg->no_load && load_initial(w, err) != 0))
        goto fail;
    publish_catalog(w); /* telemetry */
    return w;
fail:
    sio_worker_destroy(w);
    return NULL;
}

/* --- completions --------------------------------------------------------------*/

/* aio's owner_ops: every owner is a task, which keeps the list of its ops. */
struct sio_op **sio_worker_task_ops(void *owner) {
    return &((sio_task *)owner)->ops;
}

/* aio completion: the owning task's on_op. */
void sio_worker_on_op(void *owner, uint64_t op_id, const sio_aio_result *res, void *data) {
    (void)data;
    sio_task *t = owner;
    t->on_op(t, op_id, res);
    sio_log_set_trace(NULL, NULL); /* each task says whose trace it logs for */
}

/* A run's aio completion: its value in the host contract's shape, then
 * sio_run_completed. */
void sio_worker_run_on_op(sio_task *t, uint64_t op_id, const sio_aio_result *res) {
    sio_run *c = (sio_run *)t;
    lua_State *co = c->co;
    sio_run_op_done(c, op_id, res); /* telemetry: its span, when it has one */
    if (!lua_checkstack(co, 8)) return;
    if (res->err.code == SIO_E_OK) {
        lua_pushboolean(co, 1);
        sio_worker_push_result(co, res);
    } else {
        lua_pushboolean(co, 0);
        sio_host_push_error(co, &res->err);
    }
    sio_run_completed(c, op_id);
}

void sio_run_completed(sio_run *r, uint64_t op_id) {
    if (op_id == r->deadline_op) {
        lua_pop(r->co, 2);
        sio_worker_deadline(r->w, r);
        return;
    }
    lua_pushinteger(r->co, (lua_Integer)op_id);
    lua_insert(r->co, -3);
    sio_worker_resume(r->w, r, 3);
}

lua_State *sio_run_thread(sio_run *r) {
    return r->co;
}

/* --- runs -------------------------------------------------------------------*/

/* The coroutine's continuation after runner.run returned (ok, value): a
 * result is converted to JSON here, inside the run, so the conversion is
 * charged to its limits and an unencodable result (a function, NaN) is the
 * run's permanent error.  Leaves (ok, value) for run_after. */
static int run_body_k(lua_State *co, int status, lua_KContext ctx) {
    (void)status;
    sio_run *r = (sio_run *)ctx;
    if (lua_gettop(co) < 2) lua_settop(co, 2);
    if (!lua_toboolean(co, -2)) return 2;
    sio_err err;
    r->result = sio_lua_to_json(co, -1, &err);
    if (r->result == NULL) {
        lua_pushboolean(co, 0);
        lua_createtable(co, 0, 2);
        lua_pushliteral(co, "permanent");
        lua_setfield(co, -2, "class");
        lua_pushfstring(co, "the workflow's result cannot be sent as JSON: %s", err.msg);
        lua_setfield(co, -2, "message");
    }
    return 2;
}

/* The coroutine's body: [1] the run (light userdata).  Pushes the
 * workflow name and the attrs as Lua values (charged to the run) and calls
 * runner.run, which may yield. */
static int run_body(lua_State *co) {
    sio_run *r = lua_touserdata(co, 1);
    lua_settop(co, 0);
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->w->runner_ref);
    lua_getfield(co, -1, "run");
    lua_remove(co, -2);
    lua_pushstring(co, r->workflow);
    if (r->attrs) sio_lua_push_json(co, r->attrs);
    else lua_newtable(co);
    r->workflow = NULL;
    r->attrs = NULL;
    lua_callk(co, 2, 2, (lua_KContext)r, run_body_k);
    return run_body_k(co, LUA_OK, (lua_KContext)r);
}

sio_run *sio_worker_run(sio_worker *w, const char *workflow, const json_t *attrs,
                        const sio_run_cbs *cbs, void *ud, sio_err *err) {
    lua_State *L = w->L;
    sio_run *r = calloc(1, sizeof *r);
    if (r == NULL || !lua_checkstack(L, 4)) {
        free(r);
        sio_err_set(err, SIO_E_NOMEM, "worker: out of memory");
        return NULL;
    }
    r->task.on_op = sio_worker_run_on_op;
    r->w = w;
    r->cbs = *cbs;
    r->ud = ud;
    r->workflow = workflow;
    r->attrs = attrs;
    sio_run_trace_init(r, cbs->trace, workflow);
    r->exec = sio_exec_create(w->sb, &w->limits, err);
    if (r->exec == NULL) {
        free(r);
        return NULL;
    }
    sio_exec_set_data(r->exec, r);
    if (w->nidle > 0) { /* a finished run's thread, bound afresh below */
        r->co_ref = w->idle_threads[--w->nidle];
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->co_ref);
        r->co = lua_tothread(L, -1);
        lua_pop(L, 1);
    } else {
        r->co = lua_newthread(L);
        r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* anchors the thread */
    }
    /* The engine arms the exec before the command's first user code
     * (host.exec_arm): its own code runs without the count hook. */
    if (sio_exec_bind_unarmed(r->exec, r->co, err) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
        sio_exec_destroy(r->exec);
        free(r);
        return NULL;
    }
    r->next = w->active;
    if (w->active) w->active->prev = r;
    w->active = r;
    w->runs++;
    lua_pushcfunction(r->co, run_body);
    lua_pushlightuserdata(r->co, r);
    sio_worker_resume(w, r, 1);
    return r;
}

/* Reads the error value at the top of co (a table {class, message, step}
 * or anything else) and ends r with it. */
static void run_fail_with(sio_worker *w, sio_run *r, lua_State *co) {
    sio_run_error e = {.cls = SIO_PERMANENT, .message = NULL, .step = NULL};
    e.killed = sio_exec_kill_reason(r->exec) != SIO_KILL_NONE;
    if (lua_istable(co, -1) && lua_checkstack(co, 4)) {
        lua_getfield(co, -1, "class");
        if (lua_isstring(co, -1) && strcmp(lua_tostring(co, -1), "transient") == 0 && !e.killed)
            e.cls = SIO_TRANSIENT;
        lua_getfield(co, -2, "message");
        e.message = lua_tostring(co, -1);
        lua_getfield(co, -3, "step");
        e.step = lua_tostring(co, -1);
    } else if (lua_type(co, -1) == LUA_TSTRING) {
        e.message = lua_tostring(co, -1);
    }
    if (e.killed) e.message = sio_kill_message(sio_exec_kill_reason(r->exec));
    if (e.message == NULL) e.message = "the workflow failed (its error is not a string)";
    run_finish(w, r, NULL, &e);
}

/* After a resume: a yield waits for ops; a return or an error ends it. */
static void run_after(sio_worker *w, sio_run *r, int status, int nres) {
    lua_State *co = r->co;
    if (status == LUA_YIELD) {
        lua_pop(co, nres);
        /* A waiting run always has a pending op: its deadline. */
        if (r->deadline_op == 0) {
            sio_err err;
            uint64_t ms = w->run_timeout_ms;
            r->deadline_op = w->backend->deadline(w->backend_ud, co, ms, &err);
            if (r->deadline_op == 0) run_fail(w, r, &err);
        }
        return;
    }
    if (status == LUA_OK && r->result != NULL) {
        json_t *res = r->result;
        r->result = NULL;
        run_finish(w, r, res, NULL);
        return;
    }
    /* (false, error) from the runner, or an error that escaped it: a limit
     * breach (sio_exec_resume made it the limit table) or a bug in trusted
     * code. */
    run_fail_with(w, r, co);
}

/* The run's deadline passed while it waited: a permanent limit error, as
 * when the hook sees the deadline pass while code runs, naming the step
 * the engine said was waiting (host.exec_step). */
void sio_worker_deadline(sio_worker *w, sio_run *r) {
    const char *step = sio_exec_step(r->exec); /* the step the engine said waits */
    sio_run_error e = {.cls = SIO_PERMANENT, .message = sio_kill_message(SIO_KILL_DEADLINE),
                       .step = step[0] ? step : NULL, .killed = 1};
    run_finish(w, r, NULL, &e);
}

void sio_worker_resume(sio_worker *w, sio_run *r, int nargs) {
    int nres = 0;
    sio_run_log_here(r); /* host.log and C lines of this run carry its trace */
    int status = sio_exec_resume(r->exec, r->co, w->L, nargs, &nres);
    run_after(w, r, status, nres);
}

/* Releases r: its ops are forgotten, its coroutine unanchored, its exec
 * freed. */
static void run_release(sio_worker *w, sio_run *r) {
    if (w->aio) sio_aio_forget(w->aio, &r->task);
    if (r->prev) r->prev->next = r->next;
    else w->active = r->next;
    if (r->next) r->next->prev = r->prev;
    w->runs--;
    sio_kill kill = r->exec ? sio_exec_kill_reason(r->exec) : SIO_KILL_NONE;
    if (kill != SIO_KILL_NONE) sio_metric_inc(SIO_M_LIMIT_KILLS, sio_metrics_kill_kind(kill));
    /* A thread whose body returned (status OK, no frame left) can run the
     * next command's body; one that failed or still waits cannot. */
    lua_Debug ar;
    if (r->co_ref != LUA_NOREF && w->nidle < SIO_IDLE_THREADS && lua_status(r->co) == LUA_OK &&
        lua_getstack(r->co, 0, &ar) == 0) {
        lua_settop(r->co, 0);
        w->idle_threads[w->nidle++] = r->co_ref;
    } else if (r->co_ref != LUA_NOREF) {
        luaL_unref(w->L, LUA_REGISTRYINDEX, r->co_ref);
    }
    sio_exec_destroy(r->exec);
    json_decref(r->result);
    sio_run_trace_release(r);
    free(r);
}

/* Calls the run's done, then releases it (the strings of e live on the
 * coroutine's stack, so they are still valid during the call). */
static void run_finish(sio_worker *w, sio_run *r, json_t *result, const sio_run_error *e) {
    sio_run_cbs cbs = r->cbs;
    void *ud = r->ud;
    r->cbs.done = NULL;
    sio_aio_forget(w->aio, &r->task); /* nothing of r completes from here on */
    if (cbs.costs) cbs.costs(ud, sio_exec_instructions(r->exec), sio_exec_mem_peak(r->exec));
    /* No secret leaves a run: not in the result, not in the error. */
    sio_run_error red = {0};
    char *msg = NULL;
    if (result) sio_redact_json(sio_redact_global(), result, NULL);
    if (e && e->message) {
        int failed = 0;
        msg = sio_redact_text(sio_redact_global(), e->message, strlen(e->message), NULL, &failed);
        if (msg || failed) {
            red = *e;
            red.message = msg ? msg : "[redacted]";
            e = &red;
        }
    }
    if (cbs.done) cbs.done(ud, result, e);
    else json_decref(result);
    free(msg);
    run_release(w, r);
}

void sio_run_cancel(sio_run *r) {
    if (r != NULL) run_release(r->w, r);
}

/* --- run jobs (sio_worker_submit_run) ------------------------------------------*/

static void job_step_result(void *ud, const char *step_id, const char *payload, size_t len,
                            const json_t *query) {
    sio_run_job *j = ud;
    if (j->cbs.step_result) j->cbs.step_result(j->ud, step_id, payload, len, query);
}

static void job_done(void *ud, json_t *result, const sio_run_error *e) {
    sio_run_job *j = ud;
    sio_worker_task_end(j->task.w, &j->task);
    j->cbs.done(j->ud, result, e);
}

static void job_start(sio_task *t, sio_worker *w) {
    sio_run_job *j = (sio_run_job *)t;
    sio_err err;
    sio_run_cbs cbs = {.step_result = job_step_result, .done = job_done};
    if (sio_worker_run(w, j->workflow, j->attrs, &cbs, j, &err) == NULL) {
        sio_run_error e = {.cls = sio_code_class(err.code), .message = err.msg};
        job_done(j, NULL, &e);
    }
}

void sio_worker_submit_run(sio_worker *w, sio_run_job *j) {
    j->task.start = job_start;
    j->task.on_op = NULL; /* its ops belong to its run */
    sio_worker_post(w, &j->task);
}

/* runner.current().version, as a protected C function (reading allocates). */
static int live_version_k(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua_tointeger(L, 1));
    lua_getfield(L, -1, "current");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "version");
    return 1;
}

/* The live set's version, or -1 when it cannot be read. */
static long live_version(sio_worker *w) {
    lua_State *L = w->L;
    long v = -1;
    if (!lua_checkstack(L, 4)) return -1;
    lua_pushcfunction(L, live_version_k);
    lua_pushinteger(L, w->runner_ref);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isinteger(L, -1)) v = (long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* One reload on the loop thread (worker_load.c, mode "reload") swaps the
 * new set in only when all of it is valid.  Commands in flight keep the set
 * they started with (runner.run reads `current` once).  The outcome is
 * counted and handed to cfg.on_reload (the service logs it, once for all
 * workers). */
static void reload_workflows(sio_worker *w) {
    sio_err err;
    sio_err_clear(&err);
    int ok = load_workflows(w, "reload", &err) == 0;
    const char *errors = NULL;
    if (!ok) errors = err.code == SIO_E_SCRIPT && w->load_errors ? w->load_errors : err.msg;
    long version = live_version(w);
    pthread_mutex_lock(&w->mu);
    if (ok) w->reloads_ok++;
    else w->reloads_rejected++;
    pthread_mutex_unlock(&w->mu);
    if (w->id == 0) sio_catalog_reload(ok, errors); /* telemetry, once per reload */
    if (ok) publish_catalog(w);
    if (w->on_reload) w->on_reload(w->reload_data, w->id, ok, version, errors);
}

/* Moves the inbox out under the lock, then starts each task. */
static void drain_inbox(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    sio_task *tasks = w->inbox;
    w->inbox = w->inbox_tail = NULL;
    sio_produce_done *pd = w->produced;
    w->produced = NULL;
    int reload = w->reload, stop = w->stop;
    w->reload = 0;
    pthread_mutex_unlock(&w->mu);
    for (sio_produce_done *n; pd; pd = n) {
        n = pd->next;
        if (pd->tool)
            sio_aio_tool_done(w->aio, pd->op_id, pd->has_err ? &pd->err : NULL, pd->payload,
                              pd->len);
        else
            sio_aio_produce_done(w->aio, pd->op_id, pd->has_err ? &pd->err : NULL,
                                 pd->partition, pd->offset);
        free(pd->payload);
        free(pd);
    }
    if (reload) reload_workflows(w);
    if (stop) {
        /* Tasks not started stay the submitter's (they never start). */
        sio_worker_shutdown_loop(w);
        return;
    }
    for (sio_task *n; tasks; tasks = n) {
        n = tasks->next;
        tasks->next = w->live;
        tasks->prev = NULL;
        if (w->live) w->live->prev = tasks;
        w->live = tasks;
        pthread_mutex_lock(&w->mu);
        w->queued--;
        w->tasks++;
        pthread_mutex_unlock(&w->mu);
        tasks->queued = 0;
        tasks->w = w;
        tasks->start(tasks, w);
        sio_log_set_trace(NULL, NULL); /* each task says whose trace it logs for */
    }
}

void sio_worker_on_wake(uv_async_t *a) {
    drain_inbox(a->data);
}

void sio_worker_task_end(sio_worker *w, sio_task *t) {
    if (w->aio) sio_aio_forget(w->aio, t);
    if (t->prev) t->prev->next = t->next;
    else w->live = t->next;
    if (t->next) t->next->prev = t->prev;
    t->next = t->prev = NULL;
    pthread_mutex_lock(&w->mu);
    w->tasks--;
    pthread_mutex_unlock(&w->mu);
}

lua_State *sio_worker_state(sio_worker *w) {
    return w->L;
}

sio_aio *sio_worker_aio(sio_worker *w) {
    return w->aio;
}

size_t sio_worker_inflight(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->queued + w->tasks;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void sio_worker_alloc_stats(const sio_worker *w, uint64_t *allocs, uint64_t *bytes) {
    sio_sandbox_alloc_stats(w->sb, allocs, bytes);
}

void sio_worker_reload(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    w->reload = 1;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

void sio_worker_reload_stats(sio_worker *w, unsigned long *ok, unsigned long *rejected) {
    pthread_mutex_lock(&w->mu);
    if (ok) *ok = w->reloads_ok;
    if (rejected) *rejected = w->reloads_rejected;
    pthread_mutex_unlock(&w->mu);
}

void sio_worker_run_until_idle(sio_worker *w) {
    drain_inbox(w);
    while (w->runs > 0 || w->live != NULL) {
        if (sio_aio_pending(w->aio) == 0) break; /* nothing can wake one */
        uv_run(&w->loop, UV_RUN_ONCE);
        drain_inbox(w);
    }
}

/* Abandons every run (their done is not called) and every live task (its
 * abandon is), closes the aio and the wake handle; the loop then ends by
 * itself. */
void sio_worker_shutdown_loop(sio_worker *w) {
    while (w->active) run_release(w, w->active);
    while (w->live) {
        sio_task *t = w->live;
        sio_worker_task_end(w, t);
        if (t->abandon) t->abandon(t);
    }
    sio_aio_destroy(w->aio);
    w->aio = NULL;
    if (!uv_is_closing((uv_handle_t *)&w->wake)) uv_close((uv_handle_t *)&w->wake, NULL);
    if (w->hb_started && !uv_is_closing((uv_handle_t *)&w->hb_timer))
        uv_close((uv_handle_t *)&w->hb_timer, NULL);
}

/* telemetry: the loop turned - beat, and report the Lua state's memory. */
static void on_heartbeat(uv_timer_t *t) {
    sio_worker *w = t->data;
    sio_health_beat(w->hb_slot);
    sio_metric_set(SIO_M_LUA_MEMORY, (size_t)w->id, (int64_t)sio_sandbox_mem_used(w->sb));
}

static void thread_main(void *arg) {
    sio_worker *w = arg;
    char name[32];
    snprintf(name, sizeof name, "worker-%d", w->id);
    w->hb_slot = sio_health_register(name);
    if (uv_timer_init(&w->loop, &w->hb_timer) == 0) {
        w->hb_timer.data = w;
        w->hb_started = 1;
        on_heartbeat(&w->hb_timer);
        uv_timer_start(&w->hb_timer, on_heartbeat, 1000, 1000);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sio_health_unregister(w->hb_slot);
}

int sio_worker_start(sio_worker *w, sio_err *err) {
    if (uv_thread_create(&w->thread, thread_main, w) != 0)
        return sio_err_set(err, SIO_E_NOMEM, "worker %d: cannot start a thread", w->id);
    w->started = 1;
    return 0;
}

/* Asks the loop to stop at its next wake-up. */
static void request_stop(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

void sio_worker_stop(sio_worker *w) {
    if (w == NULL || !w->started) return;
    request_stop(w);
    uv_thread_join(&w->thread);
    w->started = 0;
}

int sio_worker_stop_within(sio_worker *w, int64_t ms) {
    if (w == NULL || !w->started) return 0;
    request_stop(w);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    if (pthread_timedjoin_np(w->thread, NULL, &until) != 0) return -1;
    w->started = 0;
    return 0;
}

void sio_worker_destroy(sio_worker *w) {
    if (w == NULL) return;
    sio_worker_stop(w);
    if (w->aio != NULL || !uv_is_closing((uv_handle_t *)&w->wake)) sio_worker_shutdown_loop(w);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(&w->loop);
    if (w->L && w->runner_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->runner_ref);
    sio_sandbox_destroy(w->sb);
    for (sio_produce_done *pd = w->produced, *n; pd; pd = n) {
        n = pd->next;
        free(pd->payload);
        free(pd);
    }
    pthread_mutex_destroy(&w->mu);
    free(w->workflows_dir);
    free(w->lua_dir);
    free(w->load_errors);
    free_intents(w);
    free(w);
}
