/*
 * luahost.h - the host contract: the `sio.host` Lua module, what the
 * trusted engine calls, declared once for every engine.
 *
 * The daemon's workers and the busted harness (sio.testing) run the same
 * module; what differs is where an op goes once it has passed the checks:
 * a backend (sio_host_backend) that the state's owner installs before the
 * engine is loaded - the worker's (src/worker/worker_host.c: libuv, curl,
 * hiredis, librdkafka) or the harness's (src/testing/testing_core.c: every
 * op recorded for the spec's stubs, on a virtual clock).  Everything a
 * script can get wrong is refused here, so a spec meets exactly the rules
 * serve applies (the HTTP allow-list, the request timeout, argument
 * types), the way Redis' script_lua.c serves both EVAL and functions.
 *
 * Its users list it in sio_sandbox_cfg.preload (SIO_HOST_PRELOAD), so the
 * engine does `local host = require "sio.host"`.  Opening it in a state
 * not created by sio_sandbox_create raises an error.  Functions (all
 * argument-checked):
 *
 *   host.compile(src, chunkname [, env]) -> fn | nil, msg
 *       Text-only compile.  chunkname is used verbatim when it starts with
 *       '=' or '@', else "=" .. chunkname, so messages read "name:12: ...".
 *       The chunk's _ENV upvalue is env when given, else nil: a source that
 *       does not bind `local _ENV = ...` itself sees no globals at all
 *       (never the trusted _G).
 *   host.safe_env([preload [, modules]]) -> env
 *       A fresh table: _G = env, require/load bound to env, metatable
 *       {__index = frozen safe globals, __metatable = false}.  preload maps
 *       module names to values env's require returns first (e.g. {sio=sio}).
 *       modules (a table the caller keeps, one per workflow-set version)
 *       caches the compiled module files env's require finds, so envs
 *       sharing it compile each file once; each env still runs its own
 *       instance of the module (see sandbox_require.c).
 *   host.coroutine_create(fn) -> thread
 *       A coroutine bound to the running coroutine's execution (limits).
 *   host.now() -> ms (float, monotonic)   host.time() -> s (float, wall)
 *       The backend's clocks (the harness's are virtual).
 *   host.uuid() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (v4, xoshiro256**
 *       seeded from getrandom; unique, not secret)
 *   host.log(level, msg [, fields]) -> nothing
 *       One JSON line {"ts":<s>,"level":..,"msg":..,<fields>} to the
 *       sandbox's log sink (stderr by default), with the trace the thread
 *       works for ("trace_id", "span_id": sio_log_set_trace) when set.  Fields are read raw (no
 *       metamethods run); nested tables become JSON up to depth 8.
 *   host.exec_killed() -> false | {class="permanent", message=..., limit=true[, step=...]}
 *       for the running coroutine's execution.
 *   host.exec_arm([co [, only_if_armed]])   host.exec_disarm([co])
 *       Arms the running coroutine's execution (sio_exec_arm: the count
 *       hook on the running thread, the run's thread and co, a suspended
 *       coroutine of the same execution, when given; only co, and only
 *       when the execution is armed, with only_if_armed), and disarms it
 *       again (sio_exec_disarm: not once user code has set a metatable).
 *       The engine arms before every call of user code of a command whose
 *       thread was bound unarmed (sio_exec_bind_unarmed) and disarms when
 *       it returns; no-ops for an execution bound armed.
 *   host.exec_step(id | nil)
 *       Names the workflow step whose code runs now in the running
 *       coroutine's execution (see sio_exec_set_step); nil = none.
 *   host.duration_ms(text) -> ms | nil, msg
 *       "500ms", "30s", "1h30m" in milliseconds: the configuration's one
 *       duration parser (sio_parse_duration_ms), for workflow timeouts and
 *       http timeouts alike.
 *   host.suggest(word, names) -> {name, ...}
 *       Up to 3 of names (a list of strings) close to word, closest first
 *       (sio_suggest: "did you mean").
 *   host.list_dir(dir) -> {name, ...}   sorted, dot files left out; {} when
 *       dir cannot be read
 *   host.native_tools() -> {name, ...}  the backend's native tools
 *
 * Ops.  Only while a command runs (its coroutine is bound to an exec),
 * else they raise.  Each starts an op and returns its id, or nil plus an
 * error {class, message, code} when it cannot start (a request the rules
 * refuse: permanent; the backend unavailable: transient).  The op
 * completes later: the backend resumes the command's coroutine with
 * (op_id, true, value) or (op_id, false, {class, message, code}):
 *
 *   host.timer(ms)                                   value true
 *   host.http{method, url, headers, body, timeout_ms}
 *       method a token (default GET); url http(s) and on the allow-list;
 *       headers {Name = value} or {"Name: value", ...}; body a string;
 *       timeout_ms > 0, else the configured default (HTTP_TIMEOUT): the
 *       backend fails the request at that time.
 *                       value {status, headers = {lower-case name = value,
 *                       repeated ones joined with ", "}, body}
 *   host.kv(op, key [, value [, ttl_seconds]])       op get | set | del | incr
 *                       value get: string | nil; set: "OK"; del, incr: integer
 *   host.produce(topic [, key [, value]])            value {partition, offset}
 *   host.tool(name, args)   a native tool; args go to it as JSON (sio.json's
 *                           rules, charged to the command); value the payload
 *   host.cancel(op_id)      the op's completion is not delivered
 *   host.step_result(step_id, payload, query)
 *       a published step result, handed on at once (query as JSON, charged
 *       to the command)
 *   host.step_begin(i, step_id)  host.step_retry(i, message)
 *   host.step_end(i, ok, message)
 *       the engine's telemetry hooks (step spans and timings); present only
 *       when the backend has them (the daemon's does)
 */
#ifndef SIO_LUAHOST_H
#define SIO_LUAHOST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "http_req.h"
#include "sio_err.h"

/* An HTTP request that passed the rules.  Strings are valid during the
 * backend call only; headers are as the script gave them. */
typedef struct sio_host_http {
    const char *method; /* checked: an HTTP token */
    size_t method_len;
    const char *url; /* NUL-terminated */
    size_t url_len;
    const sio_http_header *headers;
    size_t nheaders;
    const char *body; /* NULL: none */
    size_t body_len;
    long timeout_ms; /* > 0: the request's, else the configured default */
} sio_host_http;

typedef enum sio_host_kv_op { SIO_HOST_KV_GET, SIO_HOST_KV_SET, SIO_HOST_KV_DEL, SIO_HOST_KV_INCR } sio_host_kv_op;

/* A kv op (the key already namespaced by the engine); strings valid during
 * the backend call only. */
typedef struct sio_host_kv {
    sio_host_kv_op op;
    const char *name; /* "get" | "set" | "del" | "incr" */
    const char *key;
    size_t key_len;
    const char *value; /* set: the value as text */
    size_t value_len;
    int64_t ttl_ms; /* set: > 0 expires */
} sio_host_kv;

/* Where ops go.  ud is the backend's, L the calling thread (its exec
 * names the command: sio_exec_of / sio_exec_data).  Each start returns an
 * op id > 0, or 0 with err set.  They may raise only as any Lua API
 * call does (memory), leaking nothing. */
typedef struct sio_host_backend {
    uint64_t (*timer)(void *ud, lua_State *L, uint64_t ms, sio_err *err);
    uint64_t (*http)(void *ud, lua_State *L, const sio_host_http *req, sio_err *err);
    uint64_t (*kv)(void *ud, lua_State *L, const sio_host_kv *req, sio_err *err);
    /* key NULL: none; value NULL: none (empty) */
    uint64_t (*produce)(void *ud, lua_State *L, const char *topic, const char *key,
                        size_t key_len, const char *value, size_t value_len, sio_err *err);
    /* args: the tool's args as JSON text (NUL-terminated, len bytes) */
    uint64_t (*tool)(void *ud, lua_State *L, const char *name, const char *args, size_t len,
                     sio_err *err);
    void (*cancel)(void *ud, lua_State *L, uint64_t op_id);
    /* Not an op of the engine: the worker's deadline for a run that waits
     * (sio_worker_run), on the backend's clock; L is the run's thread. */
    uint64_t (*deadline)(void *ud, lua_State *L, uint64_t ms, sio_err *err);
    /* payload (len bytes) and query (borrowed) valid during the call */
    void (*step_result)(void *ud, lua_State *L, const char *step, const char *payload,
                        size_t len, const json_t *query);
    /* The i-th native tool's name, or NULL past the end.  NULL: none. */
    const char *(*native_tool)(void *ud, size_t i);
    /* Optional telemetry hooks (NULL: host.step_begin / step_retry /
     * step_end are absent and the engine calls nothing): step i (the
     * engine's 1-based index) with id step_id starts running, fails
     * transiently and runs again (message), completes or fails for good
     * (ok, message or NULL).  Strings valid during the call. */
    void (*step_begin)(void *ud, lua_State *L, lua_Integer i, const char *step_id);
    void (*step_retry)(void *ud, lua_State *L, lua_Integer i, const char *message);
    void (*step_end)(void *ud, lua_State *L, lua_Integer i, int ok, const char *message);
    /* Clocks; NULL: the process's monotonic and wall clocks. */
    double (*now_ms)(void *ud);
    double (*unix_s)(void *ud);
} sio_host_backend;

/* The rules' settings. */
typedef struct sio_host_cfg {
    const char *const *http_allow; /* SIO_HTTP_ALLOW entries; read during install */
    long http_timeout_ms;          /* HTTP_TIMEOUT; <= 0: 10 s */
} sio_host_cfg;

/* lua_CFunction: pushes the host table. */
int luaopen_sio_host(lua_State *L);

/* sio_sandbox_cfg.preload for a state whose engine requires "sio.host". */
#define SIO_HOST_PRELOAD ((const struct luaL_Reg[]){{"sio.host", luaopen_sio_host}, {NULL, NULL}})

/* Installs the backend (borrowed, with ud: both must outlive the state) and
 * the rules in the sandbox state L, before the engine requires sio.host
 * (main thread; not protected: may raise on memory).  Without one, the ops
 * raise and the clocks are the process's.  Returns 0, or -1 with err (a
 * bad allow-list entry, memory). */
int sio_host_install(lua_State *L, const sio_host_backend *b, void *ud, const sio_host_cfg *cfg,
                     sio_err *err);

/* Pushes an op's error value {class, message, code} for err (what a start
 * that failed returns after nil, and what a backend resumes a command with
 * when an op fails).  May raise (memory). */
void sio_host_push_error(lua_State *L, const sio_err *err);

/* lua_CFunction host.duration_ms(text) -> ms | nil, msg; also the harness's
 * sio_core.duration_ms. */
int sio_host_duration(lua_State *L);

/* lua_CFunction host.suggest(word, names) -> list; also the harness's
 * sio_core.suggest, so both ask the same question the same way. */
int sio_host_suggest(lua_State *L);

#endif
