/*
 * testing_core.c - the `sio_core` Lua C module: the daemon's worker, host
 * contract and engine, driven from another Lua state (busted's) for
 * workflow specs.
 *
 *   local core = require "sio_core"
 *   local box = core.new{lua_dir = "lua", mem_limit = n, instr_limit = n,
 *                        deadline_ms = n, timeout_ms = n,
 *                        env = {"SIO_HTTP_ALLOW=api.example", "HTTP_TIMEOUT=10s"}}
 *   extra = box:load(meta)                    -- load errors, intents, inspect
 *   ev = box:run(intent, attrs_json, meta)    -- loads meta's set, runs intent
 *   ev = box:resume(op_id, ok, value)         -- one op completion
 *   box:abort()  box:set_clock(ms, epoch_s)  box:stats()  box:close()
 *   box:set_secrets({name = value})          -- redacted from what runs hand back
 *   core.embedded_source("sio.engine") -> text | nil
 *   core.json = {encode, decode, null}       -- the engine's codec (luajson.h)
 *   core.suggest(word, names) -> {name, ...}   (host.suggest, luahost.h)
 *   core.duration_ms(text), core.size(text) -> n | nil, msg: the
 *       configuration's parsers (config.h), for the harness's options
 *   core.settings() -> runner.init's settings: the daemon's defaults
 *   core.version -> the version of the build the module belongs to
 *
 * A box is a sio_worker without a thread (no initial load), its settings
 * read by the configuration's parser from env as serve reads its
 * environment, given the harness's backend of the host contract
 * (luahost.h): every op that passed the contract's checks - the same
 * checks serve's ops pass, the HTTP allow-list among them - becomes an
 * event {kind, id, ...} that the caller receives, deep-copied, in the `ev`
 * returned when the command waits or ends; sio.testing answers them from
 * the spec's stubs on its virtual clock, through box:resume
 * (sio_run_completed, the path aio's completions take in serve).  A
 * command runs as a worker runs one (sio_worker_run -> runner.run); the
 * set it runs on is the one sio.testing_bridge made live (bridge.load):
 *
 *   ev = {status = "wait"|"done", events = {{kind=, id=, ...}, ...},
 *         logs = {json_line, ...}, published = {step_result line, ...},
 *         -- done only:
 *         ok = bool, text = result or error JSON, line = what `run` prints,
 *         trace = table, error_class = s, error_message = s,
 *         error_step = s | nil, killed = "instruction limit exceeded" | nil,
 *         instructions = n, mem_peak = bytes}
 *
 * host.now()/host.time() read the box's virtual clock (set_clock), and so
 * does the worker's run deadline.  Values cross states only by deep copy
 * (nil, booleans, numbers keeping integer or float, strings, tables with
 * sharing and cycles kept, json null; anything else becomes a "<type>"
 * string).  Every call into the worker's state is protected; its main
 * thread's stack is emptied on entry to each method.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "config.h"
#include "embedded.h"
#include "json.h"
#include "luajson.h"
#include "redact.h"
#include "luahost.h"
#include "sandbox.h"
#include "worker.h"

#define BOX_MT "sio_core.box"
#define COPY_MAX_DEPTH 64

/* Lines, malloc'd, '\n'-separated. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

typedef struct box {
    sio_worker *w;           /* owned: no thread, no initial load */
    lua_State *S;            /* w's state */
    const sio_config *cfg;   /* owned: the settings serve would read */
    int events_ref;          /* the op events not taken yet */
    lua_Integer next_op;
    double clock_ms, epoch_s;
    sio_limits limits;
    sio_run *run;            /* the command waiting, if any */
    /* its outcome once done (malloc'd, until the ev reports it) */
    int done, ok;
    char *text, *line, *err_class, *err_message, *err_step, *killed;
    uint64_t instructions;
    size_t mem_peak;
    strbuf published;        /* step-result lines */
    char *logs;              /* captured log lines, '\n'-separated */
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

/* Pushes onto b->S a copy of from[idx]; returns 0, or -1 with the error
 * message left on b->S. */
static int copy_in(box *b, lua_State *from, int idx) {
    idx = lua_absindex(from, idx);
    lua_pushcfunction(b->S, copy_in_cf);
    lua_pushlightuserdata(b->S, from);
    lua_pushinteger(b->S, idx);
    return lua_pcall(b->S, 2, 1, 0) == LUA_OK ? 0 : -1;
}

/* --- the harness's backend of the host contract (luahost.h) -----------------
 *
 * Every op that passed the contract's checks becomes an event {kind, id,
 * ...} in the box's list (in the sandbox state, charged to the command
 * like any table it makes), which sio.testing answers from the spec's
 * stubs on its virtual clock; the answers come back through box:resume
 * (sio_run_completed).  Step results become the lines `run` prints. */

static lua_Integer new_op(box *b) { return ++b->next_op; }

/* Appends a new event {kind = kind, id = <op id>} to the list and leaves it
 * on L; returns the id. */
static uint64_t push_event(lua_State *L, box *b, const char *kind) {
    lua_Integer id = new_op(b);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, id);
    lua_setfield(L, -2, "id");
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->events_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    return (uint64_t)id;
}

static void set_str(lua_State *L, const char *field, const char *s, size_t n) {
    if (s == NULL) return;
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, field);
}

static uint64_t t_timer_kind(void *ud, lua_State *L, uint64_t ms, const char *kind) {
    uint64_t id = push_event(L, ud, kind);
    lua_pushinteger(L, (lua_Integer)ms);
    lua_setfield(L, -2, "ms");
    lua_pop(L, 1);
    return id;
}

static uint64_t t_timer(void *ud, lua_State *L, uint64_t ms, sio_err *err) {
    (void)err;
    return t_timer_kind(ud, L, ms, "timer");
}

static uint64_t t_deadline(void *ud, lua_State *L, uint64_t ms, sio_err *err) {
    (void)err;
    return t_timer_kind(ud, L, ms, "deadline");
}

/* The request as a stub sees it: {method, url, headers = {lower-case name
 * = value, a repeated one's values joined with ", "}, body, timeout_ms}. */
static uint64_t t_http(void *ud, lua_State *L, const sio_host_http *req, sio_err *err) {
    (void)err;
    uint64_t id = push_event(L, ud, "http");
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->method);
    lua_setfield(L, -2, "method");
    set_str(L, "url", req->url, req->url_len);
    set_str(L, "body", req->body, req->body_len);
    lua_pushinteger(L, req->timeout_ms);
    lua_setfield(L, -2, "timeout_ms");
    lua_createtable(L, 0, (int)req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        const sio_http_header *h = &req->headers[i];
        luaL_Buffer name;
        char *p = luaL_buffinitsize(L, &name, h->name_len);
        for (size_t k = 0; k < h->name_len; k++)
            p[k] = (char)(h->name[k] >= 'A' && h->name[k] <= 'Z' ? h->name[k] + 32 : h->name[k]);
        luaL_pushresultsize(&name, h->name_len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, h->value, h->value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, h->value, h->value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    lua_setfield(L, -2, "args");
    lua_pop(L, 1);
    return id;
}

/* {op, key, value, ttl (seconds)}, as a kv stub takes them. */
static uint64_t t_kv(void *ud, lua_State *L, const sio_host_kv *req, sio_err *err) {
    (void)err;
    uint64_t id = push_event(L, ud, "kv");
    lua_pushstring(L, req->name);
    lua_setfield(L, -2, "op");
    set_str(L, "key", req->key, req->key_len);
    set_str(L, "value", req->value, req->value_len);
    if (req->ttl_ms > 0) {
        lua_pushnumber(L, (lua_Number)req->ttl_ms / 1000);
        lua_setfield(L, -2, "ttl");
    }
    lua_pop(L, 1);
    return id;
}

static uint64_t t_produce(void *ud, lua_State *L, const char *topic, const char *key,
                          size_t key_len, const char *value, size_t value_len, sio_err *err) {
    (void)err;
    uint64_t id = push_event(L, ud, "produce");
    lua_pushstring(L, topic);
    lua_setfield(L, -2, "topic");
    set_str(L, "key", key, key_len);
    set_str(L, "value", value, value_len);
    lua_pop(L, 1);
    return id;
}

/* Every tool a spec stubs is answered here, with its args as the native
 * tool would get them (JSON). */
static uint64_t t_tool(void *ud, lua_State *L, const char *name, const char *args, size_t len,
                       sio_err *err) {
    (void)err;
    uint64_t id = push_event(L, ud, "tool");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    set_str(L, "args_json", args, len);
    lua_pop(L, 1);
    return id;
}

static void t_cancel(void *ud, lua_State *L, uint64_t op_id) {
    box *b = ud;
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "cancel");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, (lua_Integer)op_id);
    lua_setfield(L, -2, "id");
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->events_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);
}

/* Appends a line (malloc'd text, taken) to buf, '\n'-separated. */
static void keep_line(strbuf *buf, char *line) {
    if (line == NULL) return;
    size_t n = strlen(line);
    if (buf->len + n + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 1024;
        while (cap < buf->len + n + 1) cap *= 2;
        char *p = realloc(buf->p, cap);
        if (p == NULL) {
            free(line);
            return;
        }
        buf->p = p;
        buf->cap = cap;
    }
    memcpy(buf->p + buf->len, line, n);
    buf->p[buf->len + n] = '\n';
    buf->len += n + 1;
    free(line);
}

static void t_step_result(void *ud, lua_State *L, const char *step, const char *payload,
                          size_t len, const json_t *query) {
    (void)L;
    box *b = ud;
    keep_line(&b->published, sio_run_step_line(step, payload, len, query));
}

static double t_now_ms(void *ud) { return ((box *)ud)->clock_ms; }

static double t_unix_s(void *ud) {
    box *b = ud;
    return b->epoch_s + b->clock_ms / 1000.0;
}

static const sio_host_backend harness_backend = {
    .timer = t_timer,
    .http = t_http,
    .kv = t_kv,
    .produce = t_produce,
    .tool = t_tool,
    .cancel = t_cancel,
    .deadline = t_deadline,
    .step_result = t_step_result,
    .now_ms = t_now_ms,
    .unix_s = t_unix_s,
};

/* --- log lines -----------------------------------------------------------------*/

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

/* --- commands ---------------------------------------------------------------*/

static void take_events(lua_State *L, box *b, int ev) {
    lua_State *S = b->S;
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

/* The same for a plain text (an error message). */
static void redact_plain(lua_State *L, box *b) {
    if (sio_redact_count(b->red) == 0 || lua_type(L, -1) != LUA_TSTRING) return;
    size_t n, rn = 0;
    const char *m = lua_tolstring(L, -1, &n);
    int failed = 0;
    char *red = sio_redact_text(b->red, m, n, &rn, &failed);
    if (red == NULL && !failed) return;
    lua_pop(L, 1);
    lua_pushlstring(L, red ? red : "[redacted]", red ? rn : 10);
    free(red);
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

/* Pushes the lines of buf onto L as a list and empties buf. */
static void take_lines(lua_State *L, box *b, strbuf *buf) {
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t start = 0, i = 0; i < buf->len; i++) {
        if (buf->p[i] != '\n') continue;
        lua_pushlstring(L, buf->p + start, i - start);
        redact_top(L, b);
        lua_rawseti(L, -2, ++n);
        start = i + 1;
    }
    buf->len = 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void outcome_clear(box *b) {
    free(b->text), free(b->line), free(b->err_class), free(b->err_message), free(b->err_step);
    free(b->killed);
    b->text = b->line = b->err_class = b->err_message = b->err_step = b->killed = NULL;
    b->done = b->ok = 0;
    b->instructions = 0;
    b->mem_peak = 0;
}

/* The run ended with an error (or never started): the texts `run` makes. */
static void outcome_error(box *b, const char *cls, const char *message, const char *step,
                          int killed) {
    b->done = 1;
    b->ok = 0;
    b->err_class = dup_or_null(cls);
    b->err_message = dup_or_null(message);
    b->err_step = dup_or_null(step);
    if (killed) b->killed = dup_or_null(message);
    json_t *e = sio_run_error_json(cls, message, step);
    b->text = e ? sio_json_dump(e, NULL) : NULL;
    json_decref(e);
    b->line = sio_run_done_line(NULL, cls, message, step);
}

/* The run's done (sio_run_cbs): as `run` prints it. */
static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    box *b = ud;
    b->run = NULL;
    if (result == NULL) {
        outcome_error(b, sio_class_name(e->cls), e->message, e->step, e->killed);
        return;
    }
    b->done = b->ok = 1;
    b->text = sio_json_dump(result, NULL);
    b->line = sio_run_done_line(result, NULL, NULL, NULL);
    json_decref(result);
}

static void on_costs(void *ud, uint64_t instructions, size_t mem_peak) {
    box *b = ud;
    b->instructions = instructions;
    b->mem_peak = mem_peak;
}

static box *check_box(lua_State *L) {
    box *b = luaL_checkudata(L, 1, BOX_MT);
    if (b->w == NULL) luaL_error(L, "sio_core: this box is closed");
    lua_settop(b->S, 0);
    return b;
}

/* pcall'd on the worker's main thread: [1] the bridge function's name,
 * [2] its argument.  Returns a new thread with the call ready on it. */
static int prep_cf(lua_State *S) {
    lua_State *co = lua_newthread(S);
    lua_getglobal(S, "require");
    lua_pushliteral(S, "sio.testing_bridge");
    lua_call(S, 1, 1);
    lua_getfield(S, -1, lua_tostring(S, 1));
    lua_remove(S, -2);
    lua_pushvalue(S, 2);
    lua_xmove(S, co, 2);
    return 1;
}

/* Calls bridge.<fn>(the value at arg of L, copied) in a coroutine bound to
 * an execution of its own with the box's limits: loading runs user code
 * (Lua tools, filters, Lua workflow files).  0 with the result copied onto
 * L, or -1 with the error's text on L (a limit's message on a breach);
 * *killed is set on a breach. */
static int bridge_call(lua_State *L, box *b, const char *fn, int arg, int *killed) {
    lua_State *S = b->S;
    *killed = 0;
    sio_err err;
    sio_exec *ex = sio_exec_create(sio_sandbox_of(S), &b->limits, &err);
    if (ex == NULL) {
        lua_pushstring(L, err.msg);
        return -1;
    }
    lua_settop(S, 0);
    lua_pushcfunction(S, prep_cf);
    lua_pushstring(S, fn);
    if (copy_in(b, L, arg) != 0 || lua_pcall(S, 2, 1, 0) != LUA_OK) {
        lua_pushfstring(L, "sio_core: %s", lua_tostring(S, -1) ? lua_tostring(S, -1) : "?");
        lua_settop(S, 0);
        sio_exec_destroy(ex);
        return -1;
    }
    lua_State *co = lua_tothread(S, -1);
    int nres = 0, rc = -1;
    if (sio_exec_bind(ex, co, &err) != 0) {
        lua_pushstring(L, err.msg);
    } else {
        int st = sio_exec_resume(ex, co, S, 1, &nres);
        *killed = sio_exec_kill_reason(ex) != SIO_KILL_NONE;
        if (*killed) {
            lua_pushstring(L, sio_kill_message(sio_exec_kill_reason(ex)));
        } else if (st == LUA_OK && nres >= 1) {
            copy_top(co, -1, L);
            rc = 0;
        } else if (st == LUA_YIELD) {
            lua_pushliteral(L, "loading the workflows waited on an operation");
        } else {
            copy_top(co, -1, L);
            if (!lua_isstring(L, -1)) lua_pushliteral(L, "loading the workflows failed");
        }
    }
    lua_settop(S, 0);
    sio_exec_destroy(ex);
    return rc;
}

/* pcall'd: bridge.trace() on the main thread (no user code runs). */
static int trace_cf(lua_State *S) {
    lua_getglobal(S, "require");
    lua_pushliteral(S, "sio.testing_bridge");
    lua_call(S, 1, 1);
    lua_getfield(S, -1, "trace");
    lua_call(S, 0, 1);
    return 1;
}

/* Builds ev on L (busted's state) from what the last step of the command
 * left: events, log lines, step results, and when it ended its outcome. */
static int make_ev(lua_State *L, box *b) {
    lua_newtable(L);
    int ev = lua_gettop(L);
    take_events(L, b, ev);
    take_logs(L, b, ev);
    take_lines(L, b, &b->published);
    lua_setfield(L, ev, "published");
    if (!b->done) {
        lua_pushliteral(L, "wait");
        lua_setfield(L, ev, "status");
        return 1;
    }
    lua_pushliteral(L, "done");
    lua_setfield(L, ev, "status");
    lua_pushboolean(L, b->ok);
    lua_setfield(L, ev, "ok");
    const char *const fields[][2] = {{"text", b->text}, {"line", b->line},
                                     {"error_class", b->err_class},
                                     {"error_message", b->err_message},
                                     {"error_step", b->err_step}, {"killed", b->killed}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i][1] == NULL) continue;
        lua_pushstring(L, fields[i][1]);
        if (i < 2) redact_top(L, b); /* JSON texts */
        else redact_plain(L, b);
        lua_setfield(L, ev, fields[i][0]);
    }
    lua_pushinteger(L, (lua_Integer)b->instructions);
    lua_setfield(L, ev, "instructions");
    lua_pushinteger(L, (lua_Integer)b->mem_peak);
    lua_setfield(L, ev, "mem_peak");
    lua_State *S = b->S;
    lua_pushcfunction(S, trace_cf);
    if (lua_pcall(S, 0, 1, 0) == LUA_OK) {
        copy_top(S, -1, L);
        lua_setfield(L, ev, "trace");
    }
    lua_settop(S, 0);
    outcome_clear(b);
    return 1;
}

/* box:load(meta) -> extra: the bridge's load (load errors, intents, the
 * inspected workflow); the set goes live unless meta.load_only. */
static int l_load(lua_State *L) {
    box *b = check_box(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (b->run) return luaL_error(L, "sio_core: a command is running");
    int killed;
    if (bridge_call(L, b, "load", 2, &killed) != 0) return lua_error(L);
    return 1;
}

/* box:run(intent, attrs_json, meta) -> ev: loads the set meta describes
 * and runs intent with the attrs as `run` reads them, as a worker runs a
 * command (sio_worker_run). */
static int l_run(lua_State *L) {
    box *b = check_box(L);
    const char *intent = luaL_checkstring(L, 2);
    size_t alen;
    const char *text = luaL_checklstring(L, 3, &alen);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (b->run) return luaL_error(L, "sio_core: a command is already running");
    outcome_clear(b);
    int killed;
    if (bridge_call(L, b, "load", 4, &killed) != 0) {
        outcome_error(b, "permanent", lua_tostring(L, -1), NULL, killed);
        lua_pop(L, 1);
        return make_ev(L, b);
    }
    lua_pop(L, 1);
    sio_err err;
    json_t *attrs = sio_run_attrs(text, alen, &err);
    if (attrs == NULL) {
        outcome_error(b, "permanent", err.msg, NULL, 0);
        return make_ev(L, b);
    }
    sio_run_cbs cbs = {.done = on_done, .costs = on_costs};
    sio_run *r = sio_worker_run(b->w, intent, attrs, &cbs, b, &err);
    json_decref(attrs);
    if (r == NULL && !b->done) outcome_error(b, sio_class_name(sio_code_class(err.code)), err.msg, NULL, 0);
    else if (!b->done) b->run = r; /* done already: r is gone */
    return make_ev(L, b);
}

/* box:resume(op_id, ok, value) -> ev: an op's answer (the value copied in). */
static int l_resume(lua_State *L) {
    box *b = check_box(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    int ok = lua_toboolean(L, 3);
    if (b->run == NULL) return luaL_error(L, "sio_core: no command is waiting");
    lua_State *S = b->S, *co = sio_run_thread(b->run);
    if (copy_in(b, L, 4) != 0) {
        lua_pushfstring(L, "sio_core: cannot pass the op value: %s",
                        lua_tostring(S, -1) ? lua_tostring(S, -1) : "?");
        lua_settop(S, 0);
        return lua_error(L);
    }
    if (!lua_checkstack(co, 4)) return luaL_error(L, "sio_core: command stack overflow");
    lua_pushboolean(co, ok);
    lua_xmove(S, co, 1);
    sio_run_completed(b->run, (uint64_t)id);
    return make_ev(L, b);
}

/* box:abort(): abandons the running command. */
static int l_abort(lua_State *L) {
    box *b = check_box(L);
    if (b->run) sio_run_cancel(b->run);
    b->run = NULL;
    lua_newtable(L);
    take_events(L, b, lua_gettop(L));
    b->published.len = 0;
    outcome_clear(b);
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
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)sio_sandbox_mem_used(sio_sandbox_of(b->S)));
    lua_setfield(L, -2, "state_mem");
    lua_pushboolean(L, b->run != NULL);
    lua_setfield(L, -2, "running");
    sio_exec *ex = b->run ? sio_exec_of(sio_run_thread(b->run)) : NULL;
    if (ex != NULL && sio_exec_step(ex)[0] != '\0') {
        lua_pushstring(L, sio_exec_step(ex));
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
    if (b->w == NULL) return;
    sio_worker_destroy(b->w);
    b->w = NULL;
    b->S = NULL;
    b->run = NULL;
    sio_config_destroy(b->cfg);
    b->cfg = NULL;
    outcome_clear(b);
    free(b->logs);
    b->logs = NULL;
    b->loglen = b->logcap = 0;
    free(b->published.p);
    b->published = (strbuf){0};
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

/* pcall'd on the worker's main thread: the events list. */
static int setup_cf(lua_State *S) {
    box *b = lua_touserdata(S, 1);
    lua_newtable(S);
    b->events_ref = luaL_ref(S, LUA_REGISTRYINDEX);
    return 0;
}

/* core.new{lua_dir=, mem_limit=, instr_limit=, deadline_ms= (wall clock
 * per command), timeout_ms= (how long a command may wait, on the virtual
 * clock), env = {"NAME=value", ...} (settings read as serve reads its
 * environment: SIO_HTTP_ALLOW, HTTP_TIMEOUT, ...), clock_ms=, epoch_s=}
 * -> box: a worker (no thread, no initial load) with the harness's
 * backend of the host contract. */
static int l_new(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "lua_dir");
    const char *lua_dir = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "env"); /* 3 */
    int nenv = lua_istable(L, 3) ? (int)lua_rawlen(L, 3) : 0;
    if (nenv > 64) return luaL_error(L, "sio_core.new: too many settings");
    char *envp[66] = {NULL};
    for (int i = 0; i < nenv; i++) {
        lua_rawgeti(L, 3, i + 1);
        envp[i] = (char *)luaL_checkstring(L, -1); /* anchored in the env table */
        lua_pop(L, 1);
    }
    box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    b->events_ref = LUA_NOREF;
    luaL_setmetatable(L, BOX_MT);
    if ((b->red = sio_redactor_new()) == NULL) return luaL_error(L, "sio_core.new: out of memory");
    b->limits.mem_limit_bytes = (size_t)opt_int_field(L, 1, "mem_limit");
    b->limits.instr_limit = (uint64_t)opt_int_field(L, 1, "instr_limit");
    b->limits.deadline_ms = (uint64_t)opt_int_field(L, 1, "deadline_ms");
    uint64_t timeout_ms = (uint64_t)opt_int_field(L, 1, "timeout_ms");
    lua_getfield(L, 1, "clock_ms");
    b->clock_ms = luaL_optnumber(L, -1, 0);
    lua_getfield(L, 1, "epoch_s");
    b->epoch_s = luaL_optnumber(L, -1, 1700000000.0);
    lua_pop(L, 2);
    char *argv[] = {"test", NULL};
    sio_err err;
    b->cfg = sio_config_load(1, argv, envp, NULL, &err);
    if (b->cfg == NULL) return luaL_error(L, "sio_core.new: %s", err.msg);
    sio_worker_cfg wc = {
        .lua_dir = lua_dir,
        .limits = b->limits,
        .http_allow = b->cfg->http_allow,
        .http_timeout_ms = (long)b->cfg->http_timeout_ms,
        .config = b->cfg,
        .no_load = 1,
        .backend = &harness_backend,
        .backend_ud = b,
        .run_timeout_ms = timeout_ms,
        .log = log_sink,
        .log_ud = b,
    };
    b->w = sio_worker_create(&wc, &err);
    if (b->w == NULL) {
        box_free(b);
        return luaL_error(L, "sio_core.new: %s", err.msg);
    }
    b->S = sio_worker_state(b->w);
    lua_pushcfunction(b->S, setup_cf);
    lua_pushlightuserdata(b->S, b);
    if (lua_pcall(b->S, 1, 0, 0) != LUA_OK) {
        lua_pushfstring(L, "sio_core.new: %s", lua_tostring(b->S, -1) ? lua_tostring(b->S, -1) : "?");
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

/* core.size(text) -> bytes | nil, msg: the configuration's size parser
 * (sio_parse_size: "64m", "1g", bytes), for the harness's memory option. */
static int l_size(lua_State *L) {
    uint64_t n;
    sio_err err;
    if (sio_parse_size(luaL_checkstring(L, 1), &n, &err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err.msg);
        return 2;
    }
    lua_pushinteger(L, n > (uint64_t)LUA_MAXINTEGER ? LUA_MAXINTEGER : (lua_Integer)n);
    return 1;
}

static int l_gc(lua_State *L) {
    box_free(luaL_checkudata(L, 1, BOX_MT));
    return 0;
}

int luaopen_sio_core(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"load", l_load}, {"run", l_run}, {"resume", l_resume}, {"abort", l_abort},
        {"set_clock", l_set_clock}, {"stats", l_stats}, {"close", l_close},
        {"set_secrets", l_set_secrets}, {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"new", l_new}, {"embedded_source", l_embedded_source},
        {"suggest", sio_host_suggest}, {"settings", l_settings},
        {"duration_ms", sio_host_duration}, {"size", l_size}, {NULL, NULL},
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
    lua_pushliteral(L, SIO_VERSION); /* the binary's: one version (CMakeLists.txt) */
    lua_setfield(L, -2, "version");
    return 1;
}
