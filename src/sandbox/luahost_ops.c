/*
 * luahost_ops.c - the host contract's ops (luahost.h): every argument a
 * script or the engine passes is checked and normalised here, once, then
 * the op goes to the backend installed in the state.  Which backend it is
 * (the daemon's, the harness's) makes no difference to what is refused.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "luahost.h"
#include "luajson.h"
#include "sandbox_int.h"

#define HTTP_DEFAULT_TIMEOUT_MS 10000

/* The state's backend and rules: a full userdata in the registry, upvalue
 * 1 of every op. */
typedef struct sio_host {
    const sio_host_backend *b; /* NULL: none installed */
    void *ud;
    sio_http_allow *allow; /* owned */
    long http_timeout_ms;
} sio_host;

static const char HOST_KEY = 'h'; /* the registry key is its address */

static int host_gc(lua_State *L) {
    sio_host *h = lua_touserdata(L, 1);
    sio_http_allow_free(h->allow);
    h->allow = NULL;
    return 0;
}

/* Pushes the state's record, made (empty) when none exists.  May raise. */
static sio_host *push_host(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HOST_KEY) == LUA_TUSERDATA) return lua_touserdata(L, -1);
    lua_pop(L, 1);
    sio_host *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    h->http_timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, host_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HOST_KEY);
    return h;
}

int sio_host_install(lua_State *L, const sio_host_backend *b, void *ud, const sio_host_cfg *cfg,
                     sio_err *err) {
    sio_host *h = push_host(L);
    lua_pop(L, 1); /* anchored in the registry */
    sio_http_allow *allow = sio_http_allow_new(cfg ? cfg->http_allow : NULL, err);
    if (allow == NULL) return -1;
    sio_http_allow_free(h->allow);
    h->allow = allow;
    h->b = b;
    h->ud = ud;
    h->http_timeout_ms = cfg && cfg->http_timeout_ms > 0 ? cfg->http_timeout_ms
                                                         : HTTP_DEFAULT_TIMEOUT_MS;
    return 0;
}

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double host_now_ms(const sio_host *h) {
    if (h && h->b && h->b->now_ms) return h->b->now_ms(h->ud);
    return clock_ms(CLOCK_MONOTONIC);
}

static double host_unix_s(const sio_host *h) {
    if (h && h->b && h->b->unix_s) return h->b->unix_s(h->ud);
    return clock_ms(CLOCK_REALTIME) / 1e3;
}

/* --- helpers ----------------------------------------------------------------*/

static sio_host *up(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* The backend, for an op of the running command; raises outside one (an
 * op at load time, or with no backend installed). */
static const sio_host_backend *need_command(lua_State *L, const sio_host *h) {
    sio_exec *ex = sio_exec_of(L);
    if (h->b == NULL || ex == NULL || sio_exec_data(ex) == NULL)
        luaL_error(L, "this operation is only available while a command runs");
    return h->b;
}

void sio_host_push_error(lua_State *L, const sio_err *err) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, sio_class_name(sio_code_class(err->code)));
    lua_setfield(L, -2, "class");
    lua_pushstring(L, err->msg);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, sio_code_name(err->code));
    lua_setfield(L, -2, "code");
}

/* Returns id, or nil + the error table, to Lua. */
static int op_return(lua_State *L, uint64_t id, const sio_err *err) {
    if (id == 0) {
        lua_pushnil(L);
        sio_host_push_error(L, err);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* --- ops --------------------------------------------------------------------*/

static int h_now(lua_State *L) {
    lua_pushnumber(L, host_now_ms(up(L)));
    return 1;
}

static int h_time(lua_State *L) {
    lua_pushnumber(L, host_unix_s(up(L)));
    return 1;
}

/* host.timer(ms) -> op */
static int h_timer(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    lua_Number ms = luaL_checknumber(L, 1);
    sio_err err;
    return op_return(L, b->timer(h->ud, L, ms > 0 ? (uint64_t)ms : 0, &err), &err);
}

/* Splits "Name: value" (n bytes) into h: the name as given, the value
 * after the blanks that follow the colon. */
static void split_line(const char *s, size_t n, sio_http_header *h) {
    const char *colon = memchr(s, ':', n);
    h->name = s;
    h->name_len = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    while (v < s + n && (*v == ' ' || *v == '\t')) v++;
    h->value = v;
    h->value_len = (size_t)(s + n - v);
}

/* Reads the headers table at idx ({Name = value} and {"Name: value", ...})
 * into *out, an array in a userdata pushed on the stack whose strings are
 * the table's own or anchored in the userdata's user value, so an error
 * cannot leak them.  Names and values are taken byte for byte
 * (sio_http_check_request judges them); a value must be a string or a
 * number (a whole number without ".0").  -1 with err on a bad entry. */
static int read_headers(lua_State *L, int idx, sio_http_header **out, size_t *n, sio_err *err) {
    size_t count = 0;
    for (lua_pushnil(L); lua_istable(L, idx) && lua_next(L, idx); lua_pop(L, 1)) count++;
    sio_http_header *hs = lua_newuserdatauv(L, sizeof *hs * (count ? count : 1), 1);
    int ud = lua_gettop(L);
    lua_newtable(L); /* anchors strings made here */
    lua_setiuservalue(L, ud, 1);
    *out = hs, *n = 0;
    for (lua_pushnil(L); *n < count && lua_next(L, idx); lua_pop(L, 1)) {
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER) {
            lua_pop(L, 2);
            return sio_err_set(err, SIO_E_INVAL,
                               "http: header values must be strings or numbers, got a %s",
                               lua_typename(L, vt));
        }
        if (vt == LUA_TNUMBER) { /* as text, anchored */
            int whole;
            lua_Integer i = lua_tointegerx(L, -1, &whole);
            lua_getiuservalue(L, ud, 1);
            if (whole) lua_pushfstring(L, "%I", (LUAI_UACINT)i);
            else lua_pushfstring(L, "%f", (LUAI_UACNUMBER)lua_tonumber(L, -2));
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, (lua_Integer)*n + 1);
            lua_replace(L, -3);
            lua_pop(L, 1);
        }
        size_t vl;
        const char *v = lua_tolstring(L, -1, &vl);
        sio_http_header *h = &hs[(*n)++];
        if (lua_type(L, -2) == LUA_TSTRING) {
            h->name = lua_tolstring(L, -2, &h->name_len);
            h->value = v;
            h->value_len = vl;
        } else {
            split_line(v, vl, h);
        }
    }
    return 0;
}

/* host.http{method, url, headers, body, timeout_ms} -> op */
static int h_http(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    lua_getfield(L, 1, "body");
    lua_getfield(L, 1, "timeout_ms");
    lua_getfield(L, 1, "headers");
    sio_host_http req = {0};
    req.method = luaL_optlstring(L, 2, "GET", &req.method_len);
    req.url = luaL_checklstring(L, 3, &req.url_len);
    req.body = luaL_optlstring(L, 4, NULL, &req.body_len);
    lua_Number t = luaL_optnumber(L, 5, 0);
    req.timeout_ms = t >= 1 && t < 1e12 ? (long)t : h->http_timeout_ms;
    sio_http_header *hs;
    sio_err err;
    if (read_headers(L, 6, &hs, &req.nheaders, &err) != 0 ||
        sio_http_check_request(req.method, req.method_len, req.url, req.url_len, hs,
                               req.nheaders, &err) != 0 ||
        sio_http_check(h->allow, req.url, req.url_len, &err) != 0)
        return op_return(L, 0, &err);
    req.headers = hs;
    return op_return(L, b->http(h->ud, L, &req, &err), &err);
}

/* host.kv(op, key [, value [, ttl_seconds]]) -> op */
static int h_kv(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    static const char *const ops[] = {"get", "set", "del", "incr", NULL};
    const char *name = luaL_checkstring(L, 1);
    int op = 0;
    while (ops[op] && strcmp(ops[op], name) != 0) op++;
    if (ops[op] == NULL) return luaL_error(L, "kv: unknown operation '%s' (get, set, del, incr)", name);
    sio_host_kv req = {.op = (sio_host_kv_op)op, .name = ops[op]};
    req.key = luaL_checklstring(L, 2, &req.key_len);
    if (req.op == SIO_HOST_KV_SET) {
        req.value = luaL_tolstring(L, 3, &req.value_len);
        lua_Number ttl = luaL_optnumber(L, 4, 0);
        req.ttl_ms = ttl > 0 && ttl < 1e15 ? (int64_t)(ttl * 1000) : 0;
    }
    sio_err err;
    return op_return(L, b->kv(h->ud, L, &req, &err), &err);
}

/* host.produce(topic [, key [, value]]) -> op */
static int h_produce(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    size_t klen = 0, vlen = 0;
    const char *topic = luaL_checkstring(L, 1);
    const char *key = luaL_optlstring(L, 2, NULL, &klen);
    const char *value = luaL_optlstring(L, 3, NULL, &vlen);
    sio_err err;
    return op_return(L, b->produce(h->ud, L, topic, key, klen, value, vlen, &err), &err);
}

/* host.tool(name, args) -> op: the args go to the tool as JSON, encoded by
 * sio.json's encode (upvalue 2; raises on what JSON cannot hold). */
static int h_tool(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    size_t len;
    const char *args = lua_tolstring(L, -1, &len);
    sio_err err;
    return op_return(L, b->tool(h->ud, L, name, args, len, &err), &err);
}

/* host.cancel(op_id): its completion will not be delivered. */
static int h_cancel(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    b->cancel(h->ud, L, (uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

/* host.step_result(step_id, payload, query): handed on at once (query
 * converted to JSON, charged to the command). */
static int h_step_result(lua_State *L) {
    sio_host *h = up(L);
    const sio_host_backend *b = need_command(L, h);
    const char *step = luaL_checkstring(L, 1);
    size_t len;
    const char *payload = luaL_checklstring(L, 2, &len);
    sio_err err;
    json_t *query = lua_isnoneornil(L, 3) ? json_null() : sio_lua_to_json(L, 3, &err);
    if (query == NULL) return luaL_error(L, "step %s: query: %s", step, err.msg);
    b->step_result(h->ud, L, step, payload, len, query);
    json_decref(query);
    return 0;
}

/* host.native_tools() -> {name, ...} */
static int h_native_tools(lua_State *L) {
    sio_host *h = up(L);
    lua_newtable(L);
    const char *name;
    for (size_t i = 0; h->b && h->b->native_tool && (name = h->b->native_tool(h->ud, i)); i++) {
        lua_pushstring(L, name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

void sio_host_push_ops(lua_State *L, int tidx) {
    static const luaL_Reg ops[] = {
        {"now", h_now},         {"time", h_time},         {"timer", h_timer},
        {"http", h_http},       {"kv", h_kv},             {"produce", h_produce},
        {"cancel", h_cancel},   {"step_result", h_step_result},
        {"native_tools", h_native_tools}, {NULL, NULL},
    };
    lua_pushvalue(L, tidx);
    push_host(L);
    luaL_setfuncs(L, ops, 1);
    push_host(L); /* host.tool: the record and sio.json's encode */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.json");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_pushcclosure(L, h_tool, 2);
    lua_setfield(L, -2, "tool");
    lua_pop(L, 1);
}
