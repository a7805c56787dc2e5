/* fuzzlib.c - see fuzzlib.h. */
#include "fuzzlib.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "embedded.h"
#include "envelope.h"
#include "json.h"
#include "luahost.h"
#include "luajson.h"
#include "sandbox.h"
#include "worker.h"

void fz_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz finding at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* SIGPROF: the input has used FZ_CPU_SECONDS of CPU.  abort() hands it to
 * libFuzzer's deadly-signal handler, which keeps the input. */
static void on_cpu_limit(int sig) {
    (void)sig;
#define FZ_STR_(x) #x
#define FZ_STR(x) FZ_STR_(x)
    static const char msg[] =
        "fuzz finding: one input took more than " FZ_STR(FZ_CPU_SECONDS) " s of CPU time\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    abort();
}

/* Arms (seconds > 0) or disarms (0) the process' CPU-time timer. */
static void cpu_timer(int seconds) {
    struct itimerval t = {.it_value = {.tv_sec = seconds}};
    FZ_CHECK(setitimer(ITIMER_PROF, &t, NULL) == 0, "setitimer failed");
}

/* The fuzzer's entry point: fz_target under the CPU-time limit. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int installed;
    if (!installed) {
        struct sigaction sa = {.sa_handler = on_cpu_limit};
        sigemptyset(&sa.sa_mask);
        FZ_CHECK(sigaction(SIGPROF, &sa, NULL) == 0, "sigaction failed");
        installed = 1;
    }
    cpu_timer(FZ_CPU_SECONDS);
    fz_target(data, size);
    cpu_timer(0);
    return 0;
}

void fz_check_json_text(const char *what, const char *text, size_t len) {
    sio_err err;
    json_t *v = sio_json_parse(text, len, &err);
    FZ_CHECK(v != NULL, "%s is not strict JSON (%s): %.*s", what, err.msg,
             (int)(len > 300 ? 300 : len), text);
    json_decref(v);
}

void fz_check_json(const char *what, const json_t *v) {
    size_t len;
    char *text = sio_json_dump(v, &len);
    FZ_CHECK(text != NULL, "%s: sio_json_dump failed", what);
    fz_check_json_text(what, text, len);
    free(text);
}

/* --- the harness -------------------------------------------------------------*/

#define FZ_MAX_OPS 1024

typedef struct fz_op {
    lua_Integer id;
    char kind; /* t(imer) h(ttp) k(v) r(edis) p(roduce) T(ool) */
} fz_op;

struct fz_lua {
    sio_sandbox *sb; /* owned (for the process' life) */
    lua_State *L;    /* sb's */
    int driver_ref;
    const uint8_t *data; /* the input being run (borrowed) */
    size_t size;
    fz_op ops[FZ_MAX_OPS]; /* pending, oldest first */
    int nops;
    lua_Integer next_op; /* restarts at 0 for every input: runs replay exactly */
};

/* --- the host backend: ops recorded, completed in order by fz_lua_run ---*/

static uint64_t start_op(fz_lua *f, char kind, sio_err *err) {
    if (f->nops == FZ_MAX_OPS) {
        sio_err_set(err, SIO_E_TRANSIENT, "fuzz: too many pending ops");
        return 0;
    }
    fz_op *op = &f->ops[f->nops++];
    op->id = ++f->next_op;
    op->kind = kind;
    return (uint64_t)op->id;
}

static uint64_t b_timer(void *ud, lua_State *L, uint64_t ms, sio_err *err) {
    (void)L, (void)ms;
    return start_op(ud, 't', err);
}

static uint64_t b_http(void *ud, lua_State *L, const sio_host_http *req, sio_err *err) {
    (void)L, (void)req;
    return start_op(ud, 'h', err);
}

static uint64_t b_kv(void *ud, lua_State *L, const sio_host_kv *req, sio_err *err) {
    (void)L, (void)req;
    return start_op(ud, 'k', err);
}

static uint64_t b_produce(void *ud, lua_State *L, const char *topic, const char *key,
                          size_t key_len, const char *value, size_t value_len, sio_err *err) {
    (void)L, (void)topic, (void)key, (void)key_len, (void)value, (void)value_len;
    return start_op(ud, 'p', err);
}

static uint64_t b_tool(void *ud, lua_State *L, const char *name, const char *args, size_t len,
                       sio_err *err) {
    (void)L, (void)name;
    fz_check_json_text("tool args", args, len);
    return start_op(ud, 'T', err);
}

static void b_cancel(void *ud, lua_State *L, uint64_t op_id) {
    (void)L;
    fz_lua *f = ud;
    for (int i = 0; i < f->nops; i++) {
        if ((uint64_t)f->ops[i].id == op_id) {
            memmove(&f->ops[i], &f->ops[i + 1], sizeof f->ops[0] * (size_t)(f->nops - i - 1));
            f->nops--;
            break;
        }
    }
}

/* host.step_result: what the service would write for it must be strict
 * JSON (src/service/envelope.h). */
static void b_step_result(void *ud, lua_State *L, const char *step, const char *payload,
                          size_t len, const json_t *query) {
    (void)ud, (void)L;
    size_t n;
    char *env = sio_step_result_text("fuzz", step, payload, len, query, &n);
    FZ_CHECK(env != NULL, "step result envelope: out of memory");
    fz_check_json_text("step result", env, n);
    free(env);
}

static const sio_host_backend backend = {
    .timer = b_timer,
    .http = b_http,
    .kv = b_kv,
    .produce = b_produce,
    .tool = b_tool,
    .cancel = b_cancel,
    .deadline = b_timer,
    .step_result = b_step_result,
};

/* pcall'd on the main thread: [1] the harness, [2] the driver's source,
 * [3] its name.  Installs the engine as init_state does and leaves the
 * driver's function. */
static int setup_cf(lua_State *L) {
    sio_embedded_install(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.runner");
    lua_call(L, 1, 1);
    int runner = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.host");
    lua_call(L, 1, 1);
    int host = lua_gettop(L);
    lua_getfield(L, runner, "init");
    lua_pushvalue(L, host);
    sio_err err;
    if (sio_worker_push_settings(L, NULL, &err) != 0) return luaL_error(L, "%s", err.msg);
    lua_call(L, 2, 0);
    size_t len;
    const char *src = lua_tolstring(L, 2, &len);
    if (luaL_loadbufferx(L, src, len, lua_tostring(L, 3), "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    luaL_checktype(L, -1, LUA_TFUNCTION);
    return 1;
}

/* The sandbox's log sink: every line (print, sio.log, the engine's own)
 * must be one strict JSON value; then it is dropped. */
static void log_sink(void *ud, const char *line, size_t len) {
    (void)ud;
    while (len > 0 && line[len - 1] == '\n') len--;
    fz_check_json_text("log line", line, len);
}

fz_lua *fz_lua_open(const char *name, const char *driver) {
    fz_lua *f = calloc(1, sizeof *f);
    FZ_CHECK(f != NULL, "out of memory");
    sio_sandbox_cfg sc = {
        .limits = {.mem_limit_bytes = FZ_MEM_LIMIT, .instr_limit = FZ_INSTR_LIMIT},
        .state_mem_cap = (size_t)512 << 20,
        .log = log_sink,
        .preload = SIO_HOST_PRELOAD,
    };
    sio_err err;
    f->sb = sio_sandbox_create(&sc, &err);
    FZ_CHECK(f->sb != NULL, "sio_sandbox_create: %s", err.msg);
    f->L = sio_sandbox_state(f->sb);
    lua_gc(f->L, LUA_GCGEN, 0, 0); /* as a worker */
    FZ_CHECK(sio_host_install(f->L, &backend, f, &(sio_host_cfg){0}, &err) == 0,
             "sio_host_install: %s", err.msg);
    lua_pushcfunction(f->L, setup_cf);
    lua_pushlightuserdata(f->L, f);
    lua_pushstring(f->L, driver);
    lua_pushstring(f->L, name);
    FZ_CHECK(lua_pcall(f->L, 3, 1, 0) == LUA_OK, "setting up %s: %s", name,
             lua_tostring(f->L, -1));
    f->driver_ref = luaL_ref(f->L, LUA_REGISTRYINDEX);
    return f;
}

/* After the driver returned: its value, converted as the worker converts
 * a workflow result (inside the run, charged to its limits). */
static int body_k(lua_State *co, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    sio_err err;
    json_t *v = sio_lua_to_json(co, -1, &err);
    if (v != NULL) { /* NULL: unencodable, the run's permanent error */
        fz_check_json("driver result", v);
        json_decref(v);
    }
    return 0;
}

/* The coroutine's body: [1] the harness. */
static int body(lua_State *co) {
    fz_lua *f = lua_touserdata(co, 1);
    lua_settop(co, 0);
    lua_rawgeti(co, LUA_REGISTRYINDEX, f->driver_ref);
    lua_pushlstring(co, (const char *)f->data, f->size);
    lua_callk(co, 1, 1, 0, body_k);
    return body_k(co, LUA_OK, 0);
}

/* Completes the oldest pending op: pushes (id, ok, value) onto co as the
 * worker does for a successful op (push_result), or a transient error for
 * a native tool (there are none here). */
static void complete_op(fz_lua *f, lua_State *co) {
    fz_op op = f->ops[0];
    memmove(&f->ops[0], &f->ops[1], sizeof f->ops[0] * (size_t)(f->nops - 1));
    f->nops--;
    lua_pushinteger(co, op.id);
    lua_pushboolean(co, op.kind != 'T');
    switch (op.kind) {
    case 't': lua_pushboolean(co, 1); break;
    case 'h':
        lua_createtable(co, 0, 3);
        lua_pushinteger(co, 200);
        lua_setfield(co, -2, "status");
        lua_pushliteral(co, "{\"ok\":true,\"items\":[{\"url\":\"http://a/\"},2]}");
        lua_setfield(co, -2, "body");
        lua_createtable(co, 0, 1);
        lua_pushliteral(co, "application/json");
        lua_setfield(co, -2, "content-type");
        lua_setfield(co, -2, "headers");
        break;
    case 'p':
        lua_createtable(co, 0, 2);
        lua_pushinteger(co, 0);
        lua_setfield(co, -2, "partition");
        lua_pushinteger(co, 7);
        lua_setfield(co, -2, "offset");
        break;
    case 'T':
        lua_createtable(co, 0, 2);
        lua_pushliteral(co, "transient");
        lua_setfield(co, -2, "class");
        lua_pushliteral(co, "fuzz: no native tools");
        lua_setfield(co, -2, "message");
        break;
    default: lua_pushnil(co); break; /* kv, redis: a missing key */
    }
}

/* A short description of the error value at the top of co, read raw (no
 * metamethod runs). */
static const char *error_text(lua_State *co) {
    if (lua_type(co, -1) == LUA_TSTRING) return lua_tostring(co, -1);
    if (lua_istable(co, -1) && lua_checkstack(co, 2)) {
        lua_pushliteral(co, "message");
        lua_rawget(co, -2);
        if (lua_type(co, -1) == LUA_TSTRING) return lua_tostring(co, -1);
        lua_pop(co, 1);
        return "(a table without a message)";
    }
    return lua_typename(co, lua_type(co, -1));
}

void fz_lua_run(fz_lua *f, const uint8_t *data, size_t size) {
    lua_State *L = f->L;
    lua_settop(L, 0);
    f->data = data;
    f->size = size;
    f->nops = 0;
    f->next_op = 0;
    sio_err err;
    sio_exec *ex = sio_exec_create(f->sb, NULL, &err);
    FZ_CHECK(ex != NULL, "sio_exec_create: %s", err.msg);
    sio_exec_set_data(ex, f); /* the host contract's "a command runs" */
    lua_State *co = lua_newthread(L);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    FZ_CHECK(sio_exec_bind(ex, co, &err) == 0, "sio_exec_bind: %s", err.msg);
    lua_pushcfunction(co, body);
    lua_pushlightuserdata(co, f);
    int nres = 0, rounds = 0;
    int st = sio_exec_resume(ex, co, L, 1, &nres);
    while (st == LUA_YIELD) {
        lua_pop(co, nres);
        /* Waiting on nothing, or on and on: a worker's deadline ends it. */
        if (f->nops == 0 || ++rounds > FZ_MAX_ROUNDS || !lua_checkstack(co, 4)) break;
        complete_op(f, co);
        st = sio_exec_resume(ex, co, L, 3, &nres);
    }
    if (st != LUA_OK && st != LUA_YIELD)
        FZ_CHECK(sio_exec_kill_reason(ex) != SIO_KILL_NONE,
                 "an error escaped the driver without a limit: %s", error_text(co));
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    sio_exec_destroy(ex);
    lua_settop(L, 0);
}
