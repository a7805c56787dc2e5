/*
 * worker_load.c - loading workflows into a worker's state: the initial
 * load, reloads and `validate`.
 *
 * runner.lua does the work in units (load_begin, load_step per file,
 * load_end); each unit runs here in a coroutine bound to an execution of
 * its own with the worker's per-command limits, because loading runs user
 * code (Lua workflow files, lua/filters.lua).  So a file that hits a limit
 * fails alone, named in the errors, and every other file is loaded with a
 * full budget.  One rule decides what goes live, whoever loads: the set
 * must be valid as a whole (see runner.load_end).
 */
#include "wfvalues.h"
#include "worker_int.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* The readable text of the error value at idx: a string, or a table's
 * string `message` (a limit error), read raw; never an address. */
static const char *error_text(lua_State *co, int idx) {
    if (lua_type(co, idx) == LUA_TSTRING) return lua_tostring(co, idx);
    if (lua_istable(co, idx) && lua_checkstack(co, 2)) {
        int t = lua_absindex(co, idx);
        lua_pushliteral(co, "message");
        if (lua_rawget(co, t) == LUA_TSTRING)
            return lua_tostring(co, -1); /* stays on co's stack until co is dropped */
        lua_pop(co, 1);
    }
    return "error raised without a message";
}

/* Calls runner[fn] with the nargs values on top of w->L (popped) in a new
 * coroutine bound to a new execution with w's limits, and leaves exactly
 * nres results on w->L.  Returns 0, or -1 with err set (SIO_E_SCRIPT:
 * the call raised, e.g. a limit breach, or tried to wait on I/O). */
static int call_limited(sio_worker *w, const char *fn, int nargs, int nres, sio_err *err) {
    lua_State *L = w->L;
    sio_exec *ex = sio_exec_create(w->sb, &w->limits, err);
    if (ex == NULL) {
        lua_pop(L, nargs);
        return -1;
    }
    lua_State *co = lua_newthread(L);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* anchors co */
    int rc = -1, n = 0;
    if (sio_exec_bind(ex, co, err) != 0 || !lua_checkstack(co, nargs + nres + 2)) {
        if (err->code == SIO_E_OK) sio_err_set(err, SIO_E_NOMEM, "loading workflows: out of memory");
        lua_pop(L, nargs);
        goto out;
    }
    lua_rawgeti(co, LUA_REGISTRYINDEX, w->runner_ref);
    lua_getfield(co, -1, fn);
    lua_remove(co, -2);
    lua_xmove(L, co, nargs);
    int status = sio_exec_resume(ex, co, L, nargs, &n);
    if (status == LUA_OK) {
        if (n > nres) lua_pop(co, n - nres);
        for (; n < nres; n++) lua_pushnil(co);
        lua_xmove(co, L, nres);
        rc = 0;
    } else if (status == LUA_YIELD) {
        sio_err_set(err, SIO_E_SCRIPT, "loading must not wait on I/O");
    } else {
        sio_err_set(err, SIO_E_SCRIPT, "%s", error_text(co, -1));
    }
out:
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    sio_exec_destroy(ex);
    return rc;
}

/* Pushes {name = value, ...} of one kind. */
static void push_values(lua_State *L, const sio_wfvalues *v, sio_wfkind k) {
    lua_createtable(L, 0, (int)v->n[k]);
    for (size_t i = 0; i < v->n[k]; i++) {
        lua_pushlstring(L, v->v[k][i].value, v->v[k][i].len);
        lua_setfield(L, -2, v->v[k][i].name);
    }
}

/* Reads the workflows' configuration and secrets (wfvalues.h) and hands
 * them to runner.load_values, so they go live with the set being loaded. */
static int load_values(sio_worker *w, sio_err *err) {
    sio_wfvalues *v = sio_wfvalues_read(w->config, err);
    if (v == NULL) return -1;
    int rc = -1;
    if (!lua_checkstack(w->L, 4)) {
        sio_err_set(err, SIO_E_NOMEM, "loading workflows: out of memory");
    } else {
        push_values(w->L, v, SIO_WF_CONFIG);
        push_values(w->L, v, SIO_WF_SECRET);
        rc = call_limited(w, "load_values", 2, 0, err);
    }
    sio_wfvalues_free(v);
    return rc;
}

int sio_worker_load(sio_worker *w, const char *mode, const char *const *paths, size_t npaths,
                    char **text, sio_err *err) {
    lua_State *L = w->L;
    *text = NULL;
    if (!lua_checkstack(L, (int)npaths + 4))
        return sio_err_set(err, SIO_E_NOMEM, "loading workflows: out of memory");
    if (w->lua_dir) lua_pushstring(L, w->lua_dir);
    else lua_pushnil(L);
    lua_pushstring(L, mode);
    for (size_t i = 0; i < npaths; i++) lua_pushstring(L, paths[i]);
    if (call_limited(w, "load_begin", 2 + (int)npaths, 1, err) != 0) return -1;
    lua_Integer nfiles = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (strcmp(mode, "validate") != 0 && load_values(w, err) != 0) return -1;
    for (lua_Integer k = 0; k <= nfiles; k++) {
        sio_err step_err;
        sio_err_clear(&step_err);
        lua_pushinteger(L, k);
        if (call_limited(w, "load_step", 1, 0, &step_err) == 0) continue;
        lua_pushinteger(L, k);
        lua_pushstring(L, step_err.msg);
        if (call_limited(w, "load_failed", 2, 0, err) != 0) return -1;
    }
    if (call_limited(w, "load_end", 0, 2, err) != 0) return -1;
    int ok = lua_toboolean(L, -2);
    const char *t = lua_tostring(L, -1);
    if (t != NULL && (*text = strdup(t)) == NULL) {
        lua_pop(L, 2);
        return sio_err_set(err, SIO_E_NOMEM, "loading workflows: out of memory");
    }
    lua_pop(L, 2);
    if (!ok) return sio_err_set(err, SIO_E_SCRIPT, "%s", *text ? *text : "invalid workflows");
    return 0;
}

int sio_worker_validate(sio_worker *w, const char *const *paths, size_t npaths, char **text,
                        sio_err *err) {
    if (sio_worker_load(w, "validate", paths, npaths, text, err) == 0) return 1;
    return err->code == SIO_E_SCRIPT && *text != NULL ? 0 : -1;
}
