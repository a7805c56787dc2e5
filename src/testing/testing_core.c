/*
 * testing_core.c - the `sio_core` Lua C module: the daemon's sandbox and
 * engine, driven from another Lua state (busted's) for workflow specs.
 *
 *   local core = require "sio_core"
 *   local box = core.new{lua_dir = "lua", mem_limit = n, instr_limit = n,
 *                        deadline_ms = n}
 *   ev = box:start(entry, payload, meta)     -- meta: string or table
 *   ev = box:resume(op_id, ok, value)        -- one op completion
 *   box:abort()  box:set_clock(ms, epoch_s)  box:stats()  box:close()
 *   box:set_secrets({name = value})          -- redacted from what runs hand back
 *   core.embedded_source("sio.engine") -> text | nil
 *   core.json = {encode, decode, null}       -- the engine's codec (luajson.h)
 *   core.suggest(word, names) -> {name, ...}   (host.suggest, luahost.h)
 *   core.settings() -> runner.init's settings: the daemon's defaults
 *
 * A box owns one sio_sandbox (sio_sandbox_create: counting allocator, safe
 * globals, limits), with the embedded engine installed exactly as a worker
 * does (sio_embedded_install, require "sio.runner", runner.init(host, cfg)),
 * plus sio.testing_bridge's "test" entry.  A command runs as a coroutine of
 * runner.job bound to a fresh sio_exec, resumed with sio_exec_resume, like
 * src/worker/worker.c.  The difference is the host ops: instead of libuv, curl,
 * hiredis and librdkafka, each op (timer, http, kv, redis, produce, tool,
 * cancel, emit) is appended to a list that the caller receives, deep-copied,
 * in the `ev` returned when the command waits or ends:
 *
 *   ev = {status = "wait"|"done", events = {{kind=, id=, ...}, ...},
 *         logs = {json_line, ...},
 *         -- done only:
 *         ok = bool, text = result JSON | nil, trace = table | nil,
 *         error_class = s, error_message = s,   -- an error escaped the runner
 *         error_step = s | nil,                 -- the step a limit hit in
 *         killed = "instruction limit exceeded" | ... | nil}
 *
 * host.now()/host.time() read the box's virtual clock (set_clock).  Values
 * cross states only by deep copy (nil, booleans, numbers keeping integer or
 * float, strings, tables with sharing and cycles kept, json null; anything
 * else becomes a "<type>" string).  Every call into the sandbox state is
 * protected; its main thread's stack is emptied on entry to each method.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "embedded.h"
#include "luajson.h"
#include "redact.h"
#include "luahost.h"
#include "sandbox.h"
#include "worker.h"

#define BOX_MT "sio_core.box"
#define COPY_MAX_DEPTH 64

typedef struct box {
    sio_sandbox *sb; /* owned */
    lua_State *L;    /* sb's state; owned by sb */
    int runner_ref, host_ref, events_ref;
    lua_Integer next_op;
    double clock_ms, epoch_s;
    sio_limits limits;
    /* the running command, if any */
    sio_exec *ex; /* owned */
    lua_State *co;
    int co_ref;
    /* captured log lines (malloc'd, '\n'-separated) */
    char *logs;
    size_t loglen, logcap;
    sio_redactor *red; /* owned: the stubbed secrets (box:set_secrets) */
} box;

/* --- deep copy between states ---------------------------------------------*/

/* Pushes onto `to` a copy of the value at fidx of `from`.  `seen` is an
 * absolute index of a table on `to` mapping source table pointers to their
 * copies.  Reads on `from` never raise (raw access, no conversions); pushes
 * on `to` may raise (memory) and must run where that is safe. */
static void copy_value(lua_State *from, int fidx, lua_State *to, int seen, int depth) {
    fidx = lua_absindex(from, fidx);
    luaL_checkstack(to, 6, "deep copy");
    switch (lua_type(from, fidx)) {
    case LUA_TNIL: lua_pushnil(to); return;
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, fidx)); return;
    case LUA_TNUMBER:
        if (lua_isinteger(from, fidx)) lua_pushinteger(to, lua_tointeger(from, fidx));
        else lua_pushnumber(to, lua_tonumber(from, fidx));
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, fidx, &n);
        lua_pushlstring(to, s, n);
        return;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(from, fidx) == NULL) lua_pushlightuserdata(to, NULL); /* json null */
        else lua_pushliteral(to, "<lightuserdata>");
        return;
    case LUA_TTABLE: break;
    default: lua_pushfstring(to, "<%s>", lua_typename(from, lua_type(from, fidx))); return;
    }
    const void *p = lua_topointer(from, fidx);
    lua_pushlightuserdata(to, (void *)p);
    if (lua_rawget(to, seen) == LUA_TTABLE) return;
    lua_pop(to, 1);
    if (depth >= COPY_MAX_DEPTH || !lua_checkstack(from, 3)) {
        lua_pushliteral(to, "<too deep>");
        return;
    }
    lua_newtable(to);
    lua_pushlightuserdata(to, (void *)p);
    lua_pushvalue(to, -2);
    lua_rawset(to, seen);
    lua_pushnil(from);
    while (lua_next(from, fidx)) {
        copy_value(from, -2, to, seen, depth + 1);
        copy_value(from, -1, to, seen, depth + 1);
        if (lua_isnil(to, -2)) lua_pop(to, 2);
        else lua_rawset(to, -3);
        lua_pop(from, 1);
    }
}

/* Copy with a fresh `seen` table; leaves only the copy on `to`. */
static void copy_top(lua_State *from, int fidx, lua_State *to) {
    fidx = lua_absindex(from, fidx);
    lua_newtable(to);
    int seen = lua_gettop(to);
    copy_value(from, fidx, to, seen, 0);
    lua_remove(to, seen);
}

/* Protected copy INTO the sandbox state: pcall'd on b->L with the source
 * state and index as light userdata / integer. */
static int copy_in_cf(lua_State *L) {
    lua_State *from = lua_touserdata(L, 1);
    int idx = (int)lua_tointeger(L, 2);
    copy_top(from, idx, L);
    return 1;
}

/* Pushes onto b->L a copy of from[idx]; returns 0, or -1 with the error
 * message left on b->L. */
static int copy_in(box *b, lua_State *from, int idx) {
    idx = lua_absindex(from, idx);
    lua_pushcfunction(b->L, copy_in_cf);
    lua_pushlightuserdata(b->L, from);
    lua_pushinteger(b->L, idx);
    return lua_pcall(b->L, 2, 1, 0) == LUA_OK ? 0 : -1;
}

/* --- the box's host ops (called inside the sandbox state) ----------------*/

static box *box_up(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Appends a new event {kind=kind, id=<new op id>} (id only when with_id)
 * to the pending list and leaves it on the stack; returns the id. */
static lua_Integer push_event(lua_State *L, box *b, const char *kind, int with_id) {
    lua_Integer id = 0;
    lua_createtable(L, 0, 6);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    if (with_id) {
        id = ++b->next_op;
        lua_pushinteger(L, id);
        lua_setfield(L, -2, "id");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->events_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    return id;
}

static int set_arg(lua_State *L, int arg, const char *field) {
    lua_pushvalue(L, arg);
    lua_setfield(L, -2, field);
    return 0;
}

static int h_timer(lua_State *L) {
    lua_Number ms = luaL_checknumber(L, 1);
    lua_Integer id = push_event(L, box_up(L), "timer", 1);
    lua_pushnumber(L, ms > 0 ? ms : 0);
    lua_setfield(L, -2, "ms");
    lua_pushinteger(L, id);
    return 1;
}

static int h_http(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "url");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "url must be a string");
    lua_pop(L, 1);
    lua_Integer id = push_event(L, box_up(L), "http", 1);
    set_arg(L, 1, "args");
    lua_pushinteger(L, id);
    return 1;
}

static int h_kv(lua_State *L) {
    const char *op = luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    if (strcmp(op, "get") != 0 && strcmp(op, "set") != 0 && strcmp(op, "del") != 0 &&
        strcmp(op, "incr") != 0)
        return luaL_error(L, "kv: unknown operation '%s' (get, set, del, incr)", op);
    if (strcmp(op, "set") == 0) { /* as the worker: SET key tostring(value) */
        luaL_tolstring(L, 3, NULL);
        lua_replace(L, 3);
        luaL_optnumber(L, 4, 0);
    }
    lua_settop(L, 4);
    lua_Integer id = push_event(L, box_up(L), "kv", 1);
    set_arg(L, 1, "op");
    set_arg(L, 2, "key");
    set_arg(L, 3, "value");
    set_arg(L, 4, "ttl");
    lua_pushinteger(L, id);
    return 1;
}

static int h_redis(lua_State *L) {
    int n = lua_gettop(L);
    luaL_argcheck(L, n >= 1, 1, "redis: a command");
    lua_Integer id = push_event(L, box_up(L), "redis", 1);
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        lua_rawseti(L, -2, i);
    }
    lua_setfield(L, -2, "args");
    lua_pushinteger(L, id);
    return 1;
}

static int h_produce(lua_State *L) {
    luaL_checkstring(L, 1);
    luaL_optstring(L, 2, NULL);
    luaL_optstring(L, 3, NULL);
    lua_settop(L, 3);
    lua_Integer id = push_event(L, box_up(L), "produce", 1);
    set_arg(L, 1, "topic");
    set_arg(L, 2, "key");
    set_arg(L, 3, "value");
    lua_pushinteger(L, id);
    return 1;
}

/* host.tool(name, args) -> op: a native tool; here every stubbed tool. */
static int h_tool(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_settop(L, 2);
    lua_Integer id = push_event(L, box_up(L), "tool", 1);
    set_arg(L, 1, "name");
    set_arg(L, 2, "args");
    lua_pushinteger(L, id);
    return 1;
}

static int h_cancel(lua_State *L) {
    luaL_checkinteger(L, 1);
    push_event(L, box_up(L), "cancel", 0);
    set_arg(L, 1, "id");
    return 0;
}

static int h_emit(lua_State *L) {
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    push_event(L, box_up(L), "emit", 0);
    set_arg(L, 1, "what");
    set_arg(L, 2, "data");
    return 0;
}

static int h_now(lua_State *L) {
    lua_pushnumber(L, box_up(L)->clock_ms);
    return 1;
}

static int h_time(lua_State *L) {
    box *b = box_up(L);
    lua_pushnumber(L, b->epoch_s + b->clock_ms / 1000.0);
    return 1;
}

/* --- setup (protected, on the sandbox's main thread) -----------------------*/

static void log_sink(void *ud, const char *line, size_t len) {
    box *b = ud;
    if (b->loglen + len + 1 > b->logcap) {
        size_t cap = b->logcap ? b->logcap : 4096;
        while (cap < b->loglen + len + 1) cap *= 2;
        if (cap > ((size_t)16 << 20)) return; /* cap the capture; drop the line */
        char *p = realloc(b->logs, cap);
        if (p == NULL) return;
        b->logs = p;
        b->logcap = cap;
    }
    memcpy(b->logs + b->loglen, line, len);
    b->loglen += len;
}

static int require_on(lua_State *L, const char *name) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    return lua_gettop(L);
}

/* pcall'd: [1] box, [2] runner.init's settings table. */
static int setup_cf(lua_State *L) {
    box *b = lua_touserdata(L, 1);
    static const luaL_Reg ops[] = {
        {"timer", h_timer}, {"http", h_http},     {"kv", h_kv},   {"redis", h_redis},
        {"produce", h_produce}, {"tool", h_tool}, {"cancel", h_cancel},
        {"emit", h_emit}, {"now", h_now},         {"time", h_time}, {NULL, NULL},
    };
    sio_embedded_install(L);
    int runner = require_on(L, "sio.runner");
    int host = require_on(L, "sio.host");
    lua_pushlightuserdata(L, b);
    luaL_setfuncs(L, ops, 1);
    lua_newtable(L);
    b->events_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, runner, "init");
    lua_pushvalue(L, host);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0);
    int bridge = require_on(L, "sio.testing_bridge");
    lua_getfield(L, bridge, "install");
    lua_pushvalue(L, host);
    lua_pushvalue(L, runner);
    lua_call(L, 2, 0);
    lua_pushvalue(L, host);
    b->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, runner);
    b->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* --- commands ---------------------------------------------------------------*/

static box *check_box(lua_State *L) {
    box *b = luaL_checkudata(L, 1, BOX_MT);
    if (b->sb == NULL) luaL_error(L, "sio_core: this box is closed");
    lua_settop(b->L, 0);
    return b;
}

static void cmd_release(box *b) {
    if (b->co_ref != LUA_NOREF) luaL_unref(b->L, LUA_REGISTRYINDEX, b->co_ref);
    b->co_ref = LUA_NOREF;
    b->co = NULL;
    sio_exec_destroy(b->ex);
    b->ex = NULL;
}

/* Moves the pending events (copied) into ev and empties the list without
 * allocating in the sandbox state. */
static void take_events(lua_State *L, box *b, int ev) {
    lua_State *S = b->L;
    lua_rawgeti(S, LUA_REGISTRYINDEX, b->events_ref);
    copy_top(S, -1, L);
    lua_setfield(L, ev, "events");
    for (lua_Integer i = (lua_Integer)lua_rawlen(S, -1); i >= 1; i--) {
        lua_pushnil(S);
        lua_rawseti(S, -2, i);
    }
    lua_pop(S, 1);
}

/* Replaces the JSON text at the top of L with its redacted form: what a
 * run hands back carries no stubbed secret, as in the daemon (redact.h). */
static void redact_top(lua_State *L, box *b) {
    if (sio_redact_count(b->red) == 0 || lua_type(L, -1) != LUA_TSTRING) return;
    size_t n, rn = 0;
    const char *s = lua_tolstring(L, -1, &n);
    char *red = sio_redact_json_text(b->red, s, n, NULL, &rn);
    if (red == NULL) return;
    lua_pop(L, 1);
    lua_pushlstring(L, red, rn);
    free(red);
}

/* The events' step results (emit data) redacted, in place. */
static void redact_events(lua_State *L, box *b, int ev) {
    if (sio_redact_count(b->red) == 0) return;
    lua_getfield(L, ev, "events");
    int evs = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, evs, i) == LUA_TTABLE; i++) {
        if (lua_getfield(L, -1, "data") == LUA_TSTRING) {
            redact_top(L, b);
            lua_setfield(L, -2, "data");
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, evs - 1);
}

static void take_logs(lua_State *L, box *b, int ev) {
    lua_newtable(L);
    lua_Integer n = 0;
    size_t start = 0;
    for (size_t i = 0; i < b->loglen; i++) {
        if (b->logs[i] == '\n') {
            lua_pushlstring(L, b->logs + start, i - start);
            redact_top(L, b);
            lua_rawseti(L, -2, ++n);
            start = i + 1;
        }
    }
    if (start < b->loglen) {
        lua_pushlstring(L, b->logs + start, b->loglen - start);
        redact_top(L, b);
        lua_rawseti(L, -2, ++n);
    }
    b->loglen = 0;
    lua_setfield(L, ev, "logs");
}

/* After a resume of the command: builds ev on L (busted's state). */
static int after_resume(lua_State *L, box *b, int status, int nres) {
    lua_State *co = b->co;
    lua_newtable(L);
    int ev = lua_gettop(L);
    take_events(L, b, ev);
    redact_events(L, b, ev);
    take_logs(L, b, ev);
    if (status == LUA_YIELD) {
        lua_pop(co, nres);
        lua_pushliteral(L, "wait");
        lua_setfield(L, ev, "status");
        return 1;
    }
    lua_pushliteral(L, "done");
    lua_setfield(L, ev, "status");
    sio_kill k = sio_exec_kill_reason(b->ex);
    if (k != SIO_KILL_NONE) {
        lua_pushstring(L, sio_kill_message(k));
        lua_setfield(L, ev, "killed");
    }
    lua_pushinteger(L, (lua_Integer)sio_exec_instructions(b->ex));
    lua_setfield(L, ev, "instructions");
    lua_pushinteger(L, (lua_Integer)sio_exec_mem_peak(b->ex));
    lua_setfield(L, ev, "mem_peak");
    if (status == LUA_OK) {
        int base = lua_gettop(co) - nres + 1;
        lua_pushboolean(L, nres >= 1 && lua_toboolean(co, base));
        lua_setfield(L, ev, "ok");
        if (nres >= 2 && lua_type(co, base + 1) == LUA_TSTRING) {
            copy_top(co, base + 1, L);
            redact_top(L, b);
            lua_setfield(L, ev, "text");
        }
        if (nres >= 3) {
            copy_top(co, base + 2, L);
            lua_setfield(L, ev, "trace");
        }
    } else {
        /* An error escaped the runner: a limit breach (sio_exec_resume made
         * it the limit table) or a bug in trusted code, as in worker.c. */
        lua_pushboolean(L, 0);
        lua_setfield(L, ev, "ok");
        /* Read on a copy: nothing may allocate in the sandbox state here,
         * and no metamethod of the error value may run. */
        copy_top(co, -1, L);
        int e = lua_gettop(L);
        lua_pushliteral(L, "permanent");
        if (lua_istable(L, e)) {
            if (lua_getfield(L, e, "class") == LUA_TSTRING) lua_replace(L, -2);
            else lua_pop(L, 1);
            lua_getfield(L, e, "message");
        } else {
            lua_pushvalue(L, e);
        }
        if (sio_redact_count(b->red) > 0 && lua_type(L, -1) == LUA_TSTRING) {
            size_t n, rn = 0;
            const char *m = lua_tolstring(L, -1, &n);
            int failed = 0;
            char *red = sio_redact_text(b->red, m, n, &rn, &failed);
            if (red || failed) {
                lua_pop(L, 1);
                lua_pushlstring(L, red ? red : "[redacted]", red ? rn : 10);
                free(red);
            }
        }
        lua_setfield(L, ev, "error_message");
        lua_setfield(L, ev, "error_class");
        if (lua_istable(L, e) && lua_getfield(L, e, "step") == LUA_TSTRING)
            lua_setfield(L, ev, "error_step");
        lua_settop(L, ev);
    }
    cmd_release(b);
    return 1;
}

/* pcall'd on the sandbox main thread: [1] box, [2] entry, [3] payload,
 * [4] meta (already copied in).  Creates and binds the command thread and
 * pushes runner.job's arguments on it. */
static int start_cf(lua_State *L) {
    box *b = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -1);
    b->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    b->co = co;
    sio_err err;
    if (sio_exec_bind(b->ex, co, &err) != 0) return luaL_error(L, "%s", err.msg);
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->runner_ref);
    lua_getfield(L, -1, "job");
    lua_remove(L, -2);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
    lua_xmove(L, co, 4);
    return 0;
}

/* box:start(entry, payload, meta) -> ev */
static int l_start(lua_State *L) {
    box *b = check_box(L);
    const char *entry = luaL_checkstring(L, 2);
    size_t plen;
    const char *payload = luaL_checklstring(L, 3, &plen);
    if (b->ex != NULL) return luaL_error(L, "sio_core: a command is already running");
    sio_err err;
    b->ex = sio_exec_create(b->sb, &b->limits, &err);
    if (b->ex == NULL) return luaL_error(L, "sio_core: %s", err.msg);
    lua_State *S = b->L;
    lua_pushcfunction(S, start_cf);
    lua_pushlightuserdata(S, b);
    lua_pushstring(S, entry);
    lua_pushlstring(S, payload, plen);
    if (copy_in(b, L, 4) != 0 || lua_pcall(S, 4, 0, 0) != LUA_OK) {
        const char *m = lua_tostring(S, -1);
        lua_pushfstring(L, "sio_core: cannot start: %s", m ? m : "?");
        lua_settop(S, 0);
        cmd_release(b);
        return lua_error(L);
    }
    int nres = 0;
    int st = sio_exec_resume(b->ex, b->co, S, 3, &nres);
    return after_resume(L, b, st, nres);
}

/* box:resume(op_id, ok, value) -> ev */
static int l_resume(lua_State *L) {
    box *b = check_box(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    int ok = lua_toboolean(L, 3);
    if (b->ex == NULL || b->co == NULL) return luaL_error(L, "sio_core: no command is waiting");
    lua_State *S = b->L;
    if (copy_in(b, L, 4) != 0) {
        const char *m = lua_tostring(S, -1);
        lua_pushfstring(L, "sio_core: cannot pass the op value: %s", m ? m : "?");
        lua_settop(S, 0);
        return lua_error(L);
    }
    if (!lua_checkstack(b->co, 4)) return luaL_error(L, "sio_core: command stack overflow");
    lua_pushinteger(b->co, id);
    lua_pushboolean(b->co, ok);
    lua_xmove(S, b->co, 1);
    int nres = 0;
    int st = sio_exec_resume(b->ex, b->co, S, 3, &nres);
    return after_resume(L, b, st, nres);
}

/* box:abort(): abandons the running command (as a worker does on deadline). */
static int l_abort(lua_State *L) {
    box *b = check_box(L);
    lua_newtable(L);
    take_events(L, b, lua_gettop(L));
    lua_pop(L, 1);
    cmd_release(b);
    return 0;
}

/* box:set_clock(ms [, epoch_s]) */
static int l_set_clock(lua_State *L) {
    box *b = check_box(L);
    b->clock_ms = luaL_checknumber(L, 2);
    if (!lua_isnoneornil(L, 3)) b->epoch_s = luaL_checknumber(L, 3);
    return 0;
}

/* box:stats() -> {state_mem = bytes, running = bool, step = the running
 * command's step (host.exec_step) | nil} */
static int l_stats(lua_State *L) {
    box *b = check_box(L);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)sio_sandbox_mem_used(b->sb));
    lua_setfield(L, -2, "state_mem");
    lua_pushboolean(L, b->ex != NULL);
    lua_setfield(L, -2, "running");
    if (b->ex != NULL && sio_exec_step(b->ex)[0] != '\0') {
        lua_pushstring(L, sio_exec_step(b->ex));
        lua_setfield(L, -2, "step");
    }
    return 1;
}

/* box:set_secrets({name = value}): what the box redacts from now on. */
static int l_set_secrets(lua_State *L) {
    box *b = check_box(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    sio_redact_reset(b->red);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        size_t n;
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        sio_err err;
        if (v != NULL && lua_type(L, -2) == LUA_TSTRING &&
            sio_redact_add(b->red, lua_tostring(L, -2), v, n, &err) != 0)
            return luaL_error(L, "sio_core: %s", err.msg);
        lua_pop(L, 1);
    }
    return 0;
}

static void box_free(box *b) {
    sio_redactor_free(b->red);
    b->red = NULL;
    if (b->sb == NULL) return;
    sio_exec_destroy(b->ex);
    b->ex = NULL;
    sio_sandbox_destroy(b->sb);
    b->sb = NULL;
    b->L = NULL;
    free(b->logs);
    b->logs = NULL;
    b->loglen = b->logcap = 0;
}

static int l_close(lua_State *L) {
    box_free(luaL_checkudata(L, 1, BOX_MT));
    return 0;
}

static lua_Integer opt_int_field(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    lua_Integer v = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (v < 0) luaL_error(L, "sio_core.new: %s must be >= 0", k);
    return v;
}

/* core.new{lua_dir=, mem_limit=, instr_limit=, deadline_ms=, state_mem_cap=,
 *          clock_ms=, epoch_s=} -> box */
static int l_new(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "lua_dir");
    const char *lua_dir = luaL_optstring(L, -1, NULL);
    box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    b->runner_ref = b->host_ref = b->events_ref = b->co_ref = LUA_NOREF;
    luaL_setmetatable(L, BOX_MT);
    if ((b->red = sio_redactor_new()) == NULL) return luaL_error(L, "sio_core.new: out of memory");
    b->limits.mem_limit_bytes = (size_t)opt_int_field(L, 1, "mem_limit");
    b->limits.instr_limit = (uint64_t)opt_int_field(L, 1, "instr_limit");
    b->limits.deadline_ms = (uint64_t)opt_int_field(L, 1, "deadline_ms");
    lua_getfield(L, 1, "clock_ms");
    b->clock_ms = luaL_optnumber(L, -1, 0);
    lua_getfield(L, 1, "epoch_s");
    b->epoch_s = luaL_optnumber(L, -1, 1700000000.0);
    lua_pop(L, 2);
    sio_sandbox_cfg sc = {.lua_dir = lua_dir, .limits = b->limits,
                          .state_mem_cap = (size_t)opt_int_field(L, 1, "state_mem_cap"),
                          .log = log_sink, .log_ud = b};
    sio_err err;
    b->sb = sio_sandbox_create(&sc, &err);
    if (b->sb == NULL) return luaL_error(L, "sio_core.new: %s", err.msg);
    b->L = sio_sandbox_state(b->sb);
    lua_pushcfunction(b->L, setup_cf);
    lua_pushlightuserdata(b->L, b);
    /* runner.init's settings: the daemon's defaults (src/core/config.c) */
    if (sio_worker_push_settings(b->L, NULL, &err) != 0) {
        box_free(b);
        return luaL_error(L, "sio_core.new: %s", err.msg);
    }
    if (lua_pcall(b->L, 2, 0, 0) != LUA_OK) {
        lua_pushfstring(L, "sio_core.new: loading the engine: %s",
                        lua_tostring(b->L, -1) ? lua_tostring(b->L, -1) : "?");
        box_free(b);
        return lua_error(L);
    }
    return 1;
}

static int l_embedded_source(lua_State *L) {
    size_t len;
    const char *src = sio_embedded_source(luaL_checkstring(L, 1), &len);
    if (src == NULL) lua_pushnil(L);
    else lua_pushlstring(L, src, len);
    return 1;
}

/* core.settings() -> the settings table runner.init gets (the daemon's
 * defaults, src/core/config.c), for the harness's own use of them. */
static int l_settings(lua_State *L) {
    sio_err err;
    if (sio_worker_push_settings(L, NULL, &err) != 0) return luaL_error(L, "sio_core.settings: %s", err.msg);
    return 1;
}

static int l_gc(lua_State *L) {
    box_free(luaL_checkudata(L, 1, BOX_MT));
    return 0;
}

int luaopen_sio_core(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"start", l_start}, {"resume", l_resume}, {"abort", l_abort},
        {"set_clock", l_set_clock}, {"stats", l_stats}, {"close", l_close},
        {"set_secrets", l_set_secrets}, {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"new", l_new}, {"embedded_source", l_embedded_source},
        {"suggest", sio_host_suggest}, {"settings", l_settings}, {NULL, NULL},
    };
    if (luaL_newmetatable(L, BOX_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    luaopen_sio_json(L); /* the same codec as the engine's, for sio.testing */
    lua_setfield(L, -2, "json");
    lua_pushliteral(L, "sio_core 0.1.0");
    lua_setfield(L, -2, "version");
    return 1;
}
