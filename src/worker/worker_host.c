/*
 * worker_host.c - the host ops a worker adds to the trusted `host` table:
 * timer, http, kv, produce, cancel, tool, step_result.
 *
 * Each op function finds the run it serves from the calling thread's exec
 * (step coroutines inherit their run's exec), starts an aio op owned by
 * that run and returns its id; the completion resumes the run's coroutine
 * with (op_id, ok, value).  A failed start returns nil plus an error table
 * {class, message, code}.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include "luajson.h"
#include "redact.h"
#include "tools.h"
#include "worker_int.h"

/* The run on L; raises when there is none (an op started outside any
 * command, e.g. at load time). */
static sio_run *cmd_of(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    sio_run *c = ex ? sio_exec_data(ex) : NULL;
    if (c == NULL) luaL_error(L, "this operation is only available while a command runs");
    return c;
}

/* Pushes {class=, message=, code=} for err. */
static void push_err(lua_State *L, const sio_err *err) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, sio_class_name(sio_code_class(err->code)));
    lua_setfield(L, -2, "class");
    lua_pushstring(L, err->msg);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, sio_code_name(err->code));
    lua_setfield(L, -2, "code");
}

/* Returns id, or nil + error table, to Lua. */
static int op_return(lua_State *L, uint64_t id, const sio_err *err) {
    if (id == 0) {
        lua_pushnil(L);
        push_err(L, err);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static int l_timer(lua_State *L) {
    sio_run *c = cmd_of(L);
    lua_Number ms = luaL_checknumber(L, 1);
    sio_err err;
    uint64_t id = sio_aio_timer(c->w->aio, &c->task, ms > 0 ? (uint64_t)ms : 0, &err);
    return op_return(L, id, &err);
}

/* Collects headers given as {Name = value} or {"Name: value", ...} into
 * *out, an array in a userdata pushed on the stack (its strings are the
 * table's own or anchored in the userdata's user value, so an error cannot
 * leak them; *out is NULL when tidx is not a table).  Names and values are
 * taken byte for byte (aio checks them); a value must be a string or a
 * number.  Returns -1 with err set on a bad entry. */
static int collect_headers(lua_State *L, int tidx, sio_http_header **out, size_t *n,
                           sio_err *err) {
    *out = NULL, *n = 0;
    size_t cap = 0;
    if (lua_istable(L, tidx)) {
        lua_pushnil(L);
        while (lua_next(L, tidx)) cap++, lua_pop(L, 1);
    }
    sio_http_header *h = lua_newuserdatauv(L, sizeof *h * (cap ? cap : 1), 1);
    int ud = lua_gettop(L);
    if (cap == 0) return 0;
    lua_newtable(L);
    lua_setiuservalue(L, ud, 1);
    lua_pushnil(L);
    while (*n < cap && lua_next(L, tidx)) {
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER) {
            lua_pop(L, 2);
            return sio_err_set(err, SIO_E_INVAL,
                               "http: header values must be strings or numbers, got a %s",
                               lua_typename(L, vt));
        }
        if (vt == LUA_TNUMBER) { /* as text, anchored; a whole number without ".0" */
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
        sio_http_header *e = &h[*n];
        size_t vlen;
        const char *v = lua_tolstring(L, -1, &vlen);
        if (lua_type(L, -2) == LUA_TSTRING) {
            e->name = lua_tolstring(L, -2, &e->name_len);
            e->value = v, e->value_len = vlen;
        } else { /* "Name: value" */
            const char *colon = memchr(v, ':', vlen);
            e->name = v;
            e->name_len = colon ? (size_t)(colon - v) : vlen;
            e->value = colon ? colon + 1 : v + vlen;
            while (e->value < v + vlen && (*e->value == ' ' || *e->value == '\t')) e->value++;
            e->value_len = (size_t)(v + vlen - e->value);
        }
        (*n)++;
        lua_pop(L, 1);
    }
    *out = h;
    return 0;
}

/* host.http{method, url, headers, body, timeout_ms} -> op */
static int l_http(lua_State *L) {
    sio_run *c = cmd_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    lua_getfield(L, 1, "body");
    lua_getfield(L, 1, "timeout_ms");
    lua_getfield(L, 1, "headers");
    size_t mlen, ulen, blen = 0, nh;
    const char *method = luaL_optlstring(L, 2, "GET", &mlen);
    const char *url = luaL_checklstring(L, 3, &ulen);
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    long timeout = (long)luaL_optinteger(L, 5, 0);
    sio_http_header *hdrs;
    sio_err err;
    if (collect_headers(L, 6, &hdrs, &nh, &err) != 0) return op_return(L, 0, &err);
    uint64_t id = sio_aio_http(c->w->aio, &c->task, method, mlen, url, ulen, hdrs, nh, body,
                               blen, timeout, &err);
    return op_return(L, id, &err);
}

/* host.kv(op, key, value, ttl_seconds) -> op, for sio.kv: op is get, set,
 * del or incr. */
static int l_kv(lua_State *L) {
    sio_run *c = cmd_of(L);
    const char *op = luaL_checkstring(L, 1);
    const char *argv[5];
    size_t lens[5];
    int argc = 0;
    char px[32];
    argv[1] = luaL_checklstring(L, 2, &lens[1]);
    if (strcmp(op, "get") == 0 || strcmp(op, "del") == 0 || strcmp(op, "incr") == 0) {
        argv[0] = op[0] == 'g' ? "GET" : op[0] == 'd' ? "DEL" : "INCR";
        argc = 2;
    } else if (strcmp(op, "set") == 0) {
        argv[0] = "SET";
        argv[2] = luaL_tolstring(L, 3, &lens[2]);
        argc = 3;
        lua_Number ttl = luaL_optnumber(L, 4, 0);
        if (ttl > 0) {
            argv[3] = "PX";
            snprintf(px, sizeof px, "%lld", (long long)(ttl * 1000));
            argv[4] = px;
            argc = 5;
        }
    } else {
        return luaL_error(L, "kv: unknown operation '%s' (get, set, del, incr)", op);
    }
    lens[0] = strlen(argv[0]);
    for (int i = 3; i < argc; i++) lens[i] = strlen(argv[i]);
    sio_err err;
    uint64_t id = sio_aio_redis(c->w->aio, &c->task, argc, argv, lens, &err);
    return op_return(L, id, &err);
}

/* host.produce(topic, key, value) -> op */
static int l_produce(lua_State *L) {
    sio_run *c = cmd_of(L);
    size_t klen = 0, vlen = 0;
    const char *topic = luaL_checkstring(L, 1);
    const char *key = luaL_optlstring(L, 2, NULL, &klen);
    const char *val = luaL_optlstring(L, 3, "", &vlen);
    sio_err err;
    if (c->cbs.produce) { /* taken by the run's owner: done on the next turn */
        if (c->cbs.produce(c->ud, topic, key, klen, val, vlen, &err) != 0) return op_return(L, 0, &err);
        return op_return(L, sio_aio_timer(c->w->aio, &c->task, 0, &err), &err);
    }
    uint64_t id = sio_aio_produce(c->w->aio, &c->task, topic, key, klen, val, vlen, &err);
    return op_return(L, id, &err);
}

/* host.cancel(op): its completion will not be delivered. */
static int l_cancel(lua_State *L) {
    sio_run *c = cmd_of(L);
    sio_aio_cancel(c->w->aio, (uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

/* host.step_result(step_id, payload, query): hands a published step
 * result to the run's owner (query converted to JSON, charged to the run). */
static int l_step_result(lua_State *L) {
    sio_run *c = cmd_of(L);
    const char *step = luaL_checkstring(L, 1);
    size_t len;
    const char *payload = luaL_checklstring(L, 2, &len);
    sio_err err;
    json_t *query = lua_isnoneornil(L, 3) ? json_null() : sio_lua_to_json(L, 3, &err);
    if (query == NULL) return luaL_error(L, "step %s: query: %s", step, err.msg);
    /* No secret leaves a run (redact.h). */
    sio_redact_json(sio_redact_global(), query, NULL);
    int failed = 0;
    char *red = sio_redact_text(sio_redact_global(), payload, len, &len, &failed);
    if (red) payload = red;
    else if (failed) payload = "[redacted]", len = 10;
    if (c->cbs.step_result) c->cbs.step_result(c->ud, step, payload, len, query);
    free(red);
    json_decref(query);
    return 0;
}

/* host.tool(name, args) -> op: calls a native tool (sio/tool.h) with the
 * args encoded as JSON by sio.json's encode (upvalue 1). */
static int l_tool(lua_State *L) {
    sio_run *c = cmd_of(L);
    const char *name = luaL_checkstring(L, 1);
    const sio_tool_entry *t = sio_tools_find(name);
    if (t == NULL) return luaL_error(L, "no native tool '%s'", name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1); /* sio.json encode; raises on unencodable args */
    size_t len;
    const char *json = lua_tolstring(L, -1, &len);
    sio_err err;
    uint64_t id = sio_aio_tool(c->w->aio, &c->task, &err);
    if (id == 0) return op_return(L, 0, &err);
    sio_tool_call *call = sio_tool_call_new(c->w, id);
    if (call == NULL) {
        sio_aio_cancel(c->w->aio, id);
        sio_err_set(&err, SIO_E_NOMEM, "native tool %s: out of memory", name);
        return op_return(L, 0, &err);
    }
    t->fn(call, json, len, t->ud);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* host.native_tools() -> {name, ...} */
static int l_native_tools(lua_State *L) {
    lua_newtable(L);
    const sio_tool_entry *t;
    for (size_t i = 0; (t = sio_tools_at(i)) != NULL; i++) {
        lua_pushstring(L, t->name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* host.list_dir(dir) -> {names...} (sorted; {} when dir is missing). */
static int l_list_dir(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lua_newtable(L);
    DIR *d = opendir(dir);
    if (d == NULL) return 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return 1;
}

/* Pushes {name = value} of a response's header lines ("Name: value\r\n"):
 * names in lower case, values trimmed, a repeated header's values joined
 * with ", ", a folded line (starting with a space) appended to the one
 * before. */
static void push_headers(lua_State *co, const char *h, size_t len) {
    lua_newtable(co);
    int t = lua_gettop(co);
    const char *end = h ? h + len : NULL;
    char name[256];
    size_t nlen = 0;
    for (const char *line = h; line && line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *next = eol ? eol + 1 : end;
        if (!eol) eol = end;
        if (eol > line && eol[-1] == '\r') eol--;
        const char *v;
        if ((*line == ' ' || *line == '\t') && nlen > 0) {
            v = line; /* obs-fold: continues the previous header */
        } else {
            const char *colon = memchr(line, ':', (size_t)(eol - line));
            if (colon == NULL || colon == line || (size_t)(colon - line) >= sizeof name) {
                nlen = 0;
                line = next;
                continue;
            }
            nlen = (size_t)(colon - line);
            for (size_t i = 0; i < nlen; i++) name[i] = (char)tolower((unsigned char)line[i]);
            v = colon + 1;
        }
        while (v < eol && (*v == ' ' || *v == '\t')) v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        lua_pushlstring(co, name, nlen);
        int had = lua_rawget(co, t) == LUA_TSTRING;
        int fold = line[0] == ' ' || line[0] == '\t';
        lua_pushlstring(co, name, nlen);
        if (had) {
            lua_pushvalue(co, -2);
            lua_pushstring(co, fold ? " " : ", ");
            lua_pushlstring(co, v, (size_t)(ve - v));
            lua_concat(co, 3);
        } else {
            lua_pushlstring(co, v, (size_t)(ve - v));
        }
        lua_rawset(co, t);
        lua_pop(co, 1);
        line = next;
    }
}

/* Pushes the value of a completed op onto co. */
static void push_result(lua_State *co, const sio_aio_result *r) {
    switch (r->kind) {
    case SIO_AIO_TIMER:
        lua_pushboolean(co, 1);
        break;
    case SIO_AIO_HTTP:
        lua_createtable(co, 0, 3);
        lua_pushinteger(co, r->http_status);
        lua_setfield(co, -2, "status");
        lua_pushlstring(co, r->body ? r->body : "", r->body_len);
        lua_setfield(co, -2, "body");
        push_headers(co, r->headers, r->headers_len);
        lua_setfield(co, -2, "headers");
        break;
    case SIO_AIO_REDIS:
        if (r->redis_type == SIO_REDIS_INT) lua_pushinteger(co, r->redis_int);
        else if (r->redis_type == SIO_REDIS_STR) lua_pushlstring(co, r->redis_str, r->redis_len);
        else if (r->redis_type == SIO_REDIS_ARRAY) {
            lua_createtable(co, (int)r->redis_n, 0);
            for (size_t i = 0; i < r->redis_n; i++) {
                if (r->redis_elems[i]) lua_pushlstring(co, r->redis_elems[i], r->redis_elem_lens[i]);
                else lua_pushboolean(co, 0);
                lua_rawseti(co, -2, (lua_Integer)i + 1);
            }
        } else lua_pushnil(co);
        break;
    case SIO_AIO_TOOL:
        lua_pushlstring(co, r->body ? r->body : "", r->body_len);
        break;
    case SIO_AIO_PRODUCE:
        lua_createtable(co, 0, 2);
        lua_pushinteger(co, r->partition);
        lua_setfield(co, -2, "partition");
        lua_pushinteger(co, r->offset);
        lua_setfield(co, -2, "offset");
        break;
    }
}

/* aio's owner_ops: every owner is a task, which keeps the list of its ops. */
struct sio_op **sio_worker_task_ops(void *owner) {
    return &((sio_task *)owner)->ops;
}

/* aio completion: the owning task's on_op. */
void sio_worker_on_op(void *owner, uint64_t op_id, const sio_aio_result *res, void *data) {
    (void)data;
    sio_task *t = owner;
    t->on_op(t, op_id, res);
}

/* A run's completion: resumes its coroutine with (op_id, ok, value). */
void sio_worker_run_on_op(sio_task *t, uint64_t op_id, const sio_aio_result *res) {
    sio_run *c = (sio_run *)t;
    sio_worker *w = c->w;
    lua_State *co = c->co;
    if (op_id == c->deadline_op) {
        sio_worker_deadline(w, c);
        return;
    }
    if (!lua_checkstack(co, 8)) return;
    lua_pushinteger(co, (lua_Integer)op_id);
    if (res->err.code == SIO_E_OK) {
        lua_pushboolean(co, 1);
        push_result(co, res);
    } else {
        lua_pushboolean(co, 0);
        push_err(co, &res->err);
    }
    sio_worker_resume(w, c, 3);
}

int sio_worker_host_push(sio_worker *w, sio_err *err) {
    static const luaL_Reg ops[] = {
        {"timer", l_timer},     {"http", l_http},     {"kv", l_kv},
        {"produce", l_produce}, {"cancel", l_cancel}, {"step_result", l_step_result},
        {NULL, NULL},
    };
    lua_State *L = w->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.host");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_SCRIPT, "loading sio.host: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    luaL_setfuncs(L, ops, 0);
    lua_pushcfunction(L, l_native_tools);
    lua_setfield(L, -2, "native_tools");
    lua_pushcfunction(L, l_list_dir);
    lua_setfield(L, -2, "list_dir");
    /* host.tool keeps sio.json's encode as its upvalue */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.json");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_SCRIPT, "loading sio.json: %s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return -1;
    }
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_pushcclosure(L, l_tool, 1);
    lua_setfield(L, -2, "tool");
    return 0;
}
