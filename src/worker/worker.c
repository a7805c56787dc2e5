/*
 * worker.c - a worker thread: loop, state, commands as coroutines.
 *
 * Life of a job: sio_worker_submit puts it in the inbox (any thread) and
 * wakes the loop; the loop starts a coroutine of runner.job bound to a fresh
 * sio_exec (the command's limits); every completed op resumes the coroutine
 * that started it; when the coroutine returns or fails the job's done
 * callback runs and everything the command held is released.
 */
#include "worker_int.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog.h"
#include "embedded.h"
#include "health.h"
#include "log.h"
#include "metrics.h"

static void cmd_finish(sio_worker *w, sio_cmd *c, int ok, const char *res, size_t len);

/* Ends c with err as its JSON error. */
static void cmd_fail(sio_worker *w, sio_cmd *c, const sio_err *err) {
    char buf[1024];
    size_t n = sio_json_error(buf, sizeof buf, sio_class_name(sio_code_class(err->code)), err->msg);
    cmd_finish(w, c, 0, buf, n);
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

/* Loads (or reloads) the workflows through runner.load, in a coroutine
 * bound to an exec of its own: loading runs user code (Lua workflow files,
 * filters), so the limits apply.  The errors of the last load are kept in
 * w->load_errors.  Returns -1 when nothing was swapped in. */
static int load_workflows(sio_worker *w, int initial, sio_err *err) {
    lua_State *L = w->L;
    sio_exec *ex = sio_exec_create(w->sb, &w->limits, err);
    if (ex == NULL) return -1;
    lua_State *co = lua_newthread(L);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int rc = -1, nres = 0;
    if (sio_exec_bind(ex, co, err) != 0) goto out;
    lua_rawgeti(co, LUA_REGISTRYINDEX, w->runner_ref);
    lua_getfield(co, -1, "load");
    lua_remove(co, -2);
    lua_pushstring(co, w->workflows_dir);
    if (w->lua_dir) lua_pushstring(co, w->lua_dir);
    else lua_pushnil(co);
    lua_pushboolean(co, initial);
    int status = sio_exec_resume(ex, co, L, 3, &nres);
    free(w->load_errors);
    w->load_errors = NULL;
    if (status != LUA_OK) {
        const char *m = status == LUA_YIELD ? "loading must not wait on I/O"
                                            : luaL_tolstring(co, -1, NULL);
        sio_err_set(err, SIO_E_SCRIPT, "loading workflows: %s", m);
        w->load_errors = strdup(err->msg);
        goto out;
    }
    int ok = lua_toboolean(co, -nres);
    const char *msg = nres >= 2 ? lua_tostring(co, -nres + 1) : NULL;
    if (msg) w->load_errors = strdup(msg);
    if (!ok) sio_err_set(err, SIO_E_SCRIPT, "%s", msg ? msg : "invalid workflows");
    rc = ok ? 0 : -1;
out:
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    sio_exec_destroy(ex);
    return rc;
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
    const char *files[CAT_MAX_WF];
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
    sio_catalog_publish(c.version, c.wfs, c.files, c.n);
    sio_health_set_ready(SIO_READY_WORKFLOWS, c.n > 0, c.n ? NULL : "no workflow is loaded");
}

/* Creates the state, installs the engine and the host ops, and calls
 * runner.init(host, cfg_json). */
static int init_state(sio_worker *w, const sio_worker_cfg *cfg, sio_err *err) {
    /* A lua folder that does not exist means no user modules, not an error
     * (the default "lua" is relative to where the binary runs). */
    struct stat st;
    const char *lua_dir = cfg->lua_dir && stat(cfg->lua_dir, &st) == 0 ? cfg->lua_dir : NULL;
    sio_sandbox_cfg sc = {.lua_dir = lua_dir, .limits = cfg->limits};
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
    if (sio_worker_host_push(w, err) != 0) return -1; /* the host table */
    if (cfg->runner_cfg) lua_pushstring(L, cfg->runner_cfg);
    else lua_pushnil(L);
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
    w->on_reload = cfg->on_reload;
    w->reload_data = cfg->reload_data;
    w->runner_ref = LUA_NOREF;
    pthread_mutex_init(&w->mu, NULL);
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wake, sio_worker_on_wake);
    w->wake.data = w;
    w->workflows_dir = strdup(cfg->workflows_dir ? cfg->workflows_dir : "workflows");
    w->lua_dir = cfg->lua_dir ? strdup(cfg->lua_dir) : NULL;
    sio_aio_cfg ac = {
        .done = sio_worker_on_op,
        .owner_ops = sio_worker_cmd_ops,
        .cb_data = w,
        .http_allow = cfg->http_allow,
        .http_timeout_ms = cfg->http_timeout_ms,
        .redis_host = cfg->redis_host,
        .redis_port = cfg->redis_port,
        .redis_user = cfg->redis_user,
        .redis_password = cfg->redis_password,
        .memkv = cfg->memkv,
        .produce = cfg->produce,
        .produce_data = cfg->produce_data,
    };
    if (w->workflows_dir == NULL || (cfg->lua_dir && w->lua_dir == NULL)) {
        sio_err_set(err, SIO_E_NOMEM, "worker: out of memory");
        goto fail;
    }
    w->aio = sio_aio_create(&w->loop, &ac, err);
    if (w->aio == NULL || init_state(w, cfg, err) != 0 || load_workflows(w, 1, err) != 0)
        goto fail;
    publish_catalog(w); /* telemetry */
    return w;
fail:
    sio_worker_destroy(w);
    return NULL;
}

/* Starts job as a new coroutine of runner.job(entry, payload, meta). */
static void cmd_start(sio_worker *w, sio_job *job) {
    lua_State *L = w->L;
    sio_err err;
    sio_cmd *c = calloc(1, sizeof *c);
    if (c == NULL) {
        static const char m[] = "{\"class\":\"transient\",\"message\":\"worker: out of memory\"}";
        job->done(job, 0, m, sizeof m - 1);
        return;
    }
    c->job = job;
    c->w = w;
    c->co_ref = LUA_NOREF;
    c->next = w->active;
    if (w->active) w->active->prev = c;
    w->active = c;
    w->running++;
    c->exec = sio_exec_create(w->sb, &w->limits, &err);
    if (c->exec == NULL) {
        cmd_fail(w, c, &err);
        return;
    }
    sio_exec_set_data(c->exec, c);
    c->co = lua_newthread(L);
    c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* anchors the thread */
    if (sio_exec_bind(c->exec, c->co, &err) != 0) {
        cmd_fail(w, c, &err);
        return;
    }
    lua_State *co = c->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, w->runner_ref);
    lua_getfield(co, -1, "job");
    lua_remove(co, -2);
    lua_pushstring(co, job->entry);
    lua_pushlstring(co, job->payload ? job->payload : "", job->payload_len);
    if (job->meta) lua_pushstring(co, job->meta);
    else lua_pushnil(co);
    sio_worker_resume(w, c, 3);
}

/* After a resume: a yield waits for ops; a return or an error ends it. */
static void cmd_after(sio_worker *w, sio_cmd *c, int status, int nres) {
    lua_State *co = c->co;
    if (status == LUA_YIELD) {
        lua_pop(co, nres);
        /* A waiting command always has a pending op: its deadline. */
        if (c->deadline_op == 0) {
            sio_err err;
            uint64_t ms = w->limits.deadline_ms ? w->limits.deadline_ms : 600000;
            c->deadline_op = sio_aio_timer(w->aio, c, ms, &err);
            if (c->deadline_op == 0) cmd_fail(w, c, &err);
        }
        return;
    }
    size_t len = 0;
    const char *res;
    if (status == LUA_OK) {
        int ok = nres >= 1 && lua_toboolean(co, -nres);
        res = nres >= 2 ? lua_tolstring(co, -nres + 1, &len) : NULL;
        if (res == NULL) res = "";
        cmd_finish(w, c, ok, res, len);
        return;
    }
    /* An error escaped the runner: a limit breach (sio_exec_resume made it
     * the limit table) or a bug in trusted code.  Reported as JSON. */
    const char *cls = "permanent";
    if (lua_istable(co, -1)) {
        lua_getfield(co, -1, "class");
        if (lua_isstring(co, -1)) cls = lua_tostring(co, -1);
        lua_getfield(co, -2, "message");
        res = lua_tolstring(co, -1, &len);
    } else {
        res = lua_tolstring(co, -1, &len);
    }
    if (res == NULL) res = "(error object is not a string)";
    char buf[1024];
    size_t n = sio_json_error(buf, sizeof buf, cls, res);
    cmd_finish(w, c, 0, buf, n);
}

/* Writes {"class":cls,"message":msg} with msg escaped, truncated to fit. */
size_t sio_json_error(char *buf, size_t size, const char *cls, const char *msg) {
    char esc[900];
    int n = snprintf(buf, size, "{\"class\":\"%s\",\"message\":\"%s\"}", cls,
                     sio_json_escape(msg, esc, sizeof esc));
    return (size_t)n < size ? (size_t)n : size - 1;
}

/* The command's deadline passed while it waited: a permanent limit error,
 * as when the hook sees the deadline pass while code runs. */
void sio_worker_deadline(sio_worker *w, sio_cmd *c) {
    static const char msg[] = "{\"class\":\"permanent\",\"message\":\"deadline exceeded\"}";
    cmd_finish(w, c, 0, msg, sizeof msg - 1);
}

void sio_worker_resume(sio_worker *w, sio_cmd *c, int nargs) {
    int nres = 0;
    int status = sio_exec_resume(c->exec, c->co, w->L, nargs, &nres);
    cmd_after(w, c, status, nres);
}

/* Calls the job's done, then releases the command: its ops are forgotten,
 * its coroutine unanchored, its exec freed. */
static void cmd_finish(sio_worker *w, sio_cmd *c, int ok, const char *res, size_t len) {
    sio_job *job = c->job;
    c->job = NULL;
    if (job) job->done(job, ok, res, len);
    sio_aio_forget(w->aio, c);
    if (c->prev) c->prev->next = c->next;
    else w->active = c->next;
    if (c->next) c->next->prev = c->prev;
    w->running--;
    sio_kill kill = c->exec ? sio_exec_kill_reason(c->exec) : SIO_KILL_NONE;
    if (kill != SIO_KILL_NONE) sio_metric_inc(SIO_M_LIMIT_KILLS, sio_metrics_kill_kind(kill));
    if (c->co_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, c->co_ref);
    sio_exec_destroy(c->exec);
    free(c);
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

/* Logs a reload outcome as one JSON line through the sandbox's log sink:
 * {"ts","level","msg","worker","version"[,"errors"]}. */
static void log_reload(sio_worker *w, int ok, long version, const char *errors) {
    size_t ecap = errors ? 6 * strlen(errors) + 8 : 1;
    size_t cap = 256 + ecap;
    char *line = malloc(cap), *esc = malloc(ecap);
    if (line == NULL || esc == NULL) { /* the outcome is still counted */
        free(line);
        free(esc);
        return;
    }
    char when[40];
    size_t n = (size_t)snprintf(line, cap,
                                "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\",\"worker\":%d,"
                                "\"version\":%ld",
                                sio_log_timestamp(when, sizeof when), ok ? "info" : "error",
                                ok ? "workflows reloaded" : "reload rejected", w->id, version);
    if (errors)
        n += (size_t)snprintf(line + n, cap - n, ",\"errors\":\"%s\"",
                              sio_json_escape(errors, esc, ecap));
    memcpy(line + n, "}\n", 2);
    sio_sandbox_log_line(w->sb, line, n + 2);
    free(line);
    free(esc);
}

/* One reload on the loop thread: runner.load(initial=false) swaps the new
 * set in only when all of it is valid.  Commands in flight keep the set
 * they started with (runner.job reads `current` once).  The outcome is
 * counted, logged and handed to cfg.on_reload. */
static void reload_workflows(sio_worker *w) {
    sio_err err;
    sio_err_clear(&err);
    int ok = load_workflows(w, 0, &err) == 0;
    const char *errors = NULL;
    if (!ok) errors = err.code == SIO_E_SCRIPT && w->load_errors ? w->load_errors : err.msg;
    long version = live_version(w);
    pthread_mutex_lock(&w->mu);
    if (ok) w->reloads_ok++;
    else w->reloads_rejected++;
    pthread_mutex_unlock(&w->mu);
    log_reload(w, ok, version, errors);
    if (w->id == 0) sio_catalog_reload(ok, errors); /* telemetry, once per reload */
    if (ok) publish_catalog(w);
    if (w->on_reload) w->on_reload(w->reload_data, w->id, ok, version, errors);
}

/* Moves the inbox out under the lock, then starts each job. */
static void drain_inbox(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    sio_job *jobs = w->inbox;
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
        sio_worker_shutdown_loop(w);
        return;
    }
    for (sio_job *n; jobs; jobs = n) {
        n = jobs->next;
        jobs->next = NULL;
        w->queued--;
        cmd_start(w, jobs);
    }
}

void sio_worker_on_wake(uv_async_t *a) {
    drain_inbox(a->data);
}

void sio_worker_submit(sio_worker *w, sio_job *job) {
    job->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->inbox_tail) w->inbox_tail->next = job;
    else w->inbox = job;
    w->inbox_tail = job;
    w->queued++;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

size_t sio_worker_inflight(sio_worker *w) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->queued;
    pthread_mutex_unlock(&w->mu);
    return n + w->running;
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

/* Queues a completion for the loop (any thread); dropped once stopped. */
static void post_completion(sio_worker *w, sio_produce_done *pd) {
    pthread_mutex_lock(&w->mu);
    if (w->stop) { /* the loop is gone or going: nobody waits for it */
        pthread_mutex_unlock(&w->mu);
        free(pd->payload);
        free(pd);
        return;
    }
    pd->next = w->produced;
    w->produced = pd;
    uv_async_send(&w->wake); /* under the lock: stop cannot close it meanwhile */
    pthread_mutex_unlock(&w->mu);
}

void sio_worker_tool_done(sio_worker *w, uint64_t op_id, const sio_err *err, const char *payload,
                          size_t len) {
    sio_produce_done *pd = calloc(1, sizeof *pd);
    if (pd == NULL) return; /* the step then times out */
    pd->tool = 1;
    pd->op_id = op_id;
    pd->has_err = err != NULL && err->code != SIO_E_OK;
    if (pd->has_err) pd->err = *err;
    if (payload) {
        pd->payload = malloc(len + 1);
        if (pd->payload == NULL) {
            free(pd);
            return;
        }
        memcpy(pd->payload, payload, len);
        pd->payload[len] = '\0';
        pd->len = len;
    }
    post_completion(w, pd);
}

void sio_worker_produce_done(sio_worker *w, uint64_t op_id, const sio_err *err,
                             int32_t partition, int64_t offset) {
    sio_produce_done *pd = calloc(1, sizeof *pd);
    if (pd == NULL) return; /* the op then times out in the engine */
    pd->op_id = op_id;
    pd->has_err = err != NULL && err->code != SIO_E_OK;
    if (pd->has_err) pd->err = *err;
    pd->partition = partition;
    pd->offset = offset;
    post_completion(w, pd);
}

void sio_worker_run_until_idle(sio_worker *w) {
    drain_inbox(w);
    while (w->running > 0) {
        if (sio_aio_pending(w->aio) == 0) break; /* nothing can wake a command */
        uv_run(&w->loop, UV_RUN_ONCE);
        drain_inbox(w);
    }
}

/* Abandons every command (their done is not called), closes the aio and
 * the wake handle; the loop then ends by itself. */
void sio_worker_shutdown_loop(sio_worker *w) {
    while (w->active) {
        sio_cmd *c = w->active;
        c->job = NULL;
        cmd_finish(w, c, 0, "", 0);
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

void sio_worker_stop(sio_worker *w) {
    if (w == NULL || !w->started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
    uv_thread_join(&w->thread);
    w->started = 0;
}

void sio_worker_destroy(sio_worker *w) {
    if (w == NULL) return;
    sio_worker_stop(w);
    if (w->aio != NULL || !uv_is_closing((uv_handle_t *)&w->wake)) sio_worker_shutdown_loop(w);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(&w->loop);
    if (w->L && w->runner_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->runner_ref);
    sio_sandbox_destroy(w->sb);
    for (sio_job *j = w->inbox; j; j = j->next) w->queued--;
    for (sio_produce_done *pd = w->produced, *n; pd; pd = n) {
        n = pd->next;
        free(pd->payload);
        free(pd);
    }
    pthread_mutex_destroy(&w->mu);
    free(w->workflows_dir);
    free(w->lua_dir);
    free(w->load_errors);
    free(w);
}
