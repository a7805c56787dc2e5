/*
 * worker_host.c - the daemon's backend of the host contract (luahost.h):
 * what an op that passed the contract's checks becomes in a worker - an
 * aio op (libuv timer, curl request, Redis command, Kafka produce, native
 * tool) owned by the run it serves, found from the calling thread's exec
 * (step coroutines inherit their run's exec).  The completion resumes the
 * run's coroutine with (op_id, ok, value), the values the contract names.
 * Telemetry: each http, kv and produce op gets a span under its step's
 * (worker_trace.c), whose context an HTTP request and a Kafka message
 * carry (traceparent); the engine's step hooks time the steps.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "luahost.h"
#include "redact.h"
#include "tools.h"
#include "worker_int.h"

/* The run an op serves: the command's exec data (the host contract has
 * checked there is one). */
static sio_run *cmd_of(lua_State *L) {
    return sio_exec_data(sio_exec_of(L));
}

static uint64_t b_timer(void *ud, lua_State *L, uint64_t ms, sio_err *err) {
    (void)ud;
    sio_run *c = cmd_of(L);
    return sio_aio_timer(c->w->aio, &c->task, ms, err);
}

/* telemetry: the span's url.full (credentials in it replaced by REDACTED, as
 * the semantic conventions ask) and server.address. */
static void set_url(sio_span *sp, const char *url) {
    if (!sio_span_recording(sp)) return;
    const char *auth = strstr(url, "://");
    if (auth == NULL) {
        sio_span_set_str(sp, "url.full", url);
        return;
    }
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    const char *host = at ? at + 1 : auth;
    size_t hlen = alen - (size_t)(host - auth);
    if (at) {
        size_t n = strlen(url) + 32;
        char *full = malloc(n);
        if (full) {
            snprintf(full, n, "%.*sREDACTED:REDACTED@%s", (int)(auth - url), url, host);
            sio_span_set_str(sp, "url.full", full);
            free(full);
        }
    } else {
        sio_span_set_str(sp, "url.full", url);
    }
    size_t name = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/?#");
    sio_span_set_strn(sp, "server.address", host, name < hlen ? name : hlen);
}

/* 1 when the script sent a traceparent of its own. */
static int has_traceparent(const sio_host_http *req) {
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == 11 &&
            strncasecmp(req->headers[i].name, "traceparent", 11) == 0)
            return 1;
    return 0;
}

/* An HTTP request under a client span, whose context the server gets (a
 * traceparent header added unless the script sent one). */
static uint64_t b_http(void *ud, lua_State *L, const sio_host_http *req, sio_err *err) {
    (void)ud;
    sio_run *c = cmd_of(L);
    const sio_http_header *hdrs = req->headers;
    size_t nh = req->nheaders;
    sio_http_header *with = NULL; /* the script's headers and the traceparent; ours */
    char trace[SIO_TRACEPARENT_LEN + 1];
    sio_span *sp = sio_run_op_span(c, req->method, SIO_SPAN_CLIENT);
    if (sp) {
        sio_span_set_str(sp, "http.request.method", req->method);
        set_url(sp, req->url);
        if (!has_traceparent(req) && (with = malloc(sizeof *with * (nh + 1))) != NULL) {
            if (nh) memcpy(with, hdrs, sizeof *with * nh);
            sio_span_traceparent(sp, trace);
            with[nh++] = (sio_http_header){"traceparent", 11, trace, strlen(trace)};
            hdrs = with;
        }
    }
    uint64_t id = sio_aio_http(c->w->aio, &c->task, req->method, req->method_len, req->url,
                               req->url_len, hdrs, nh, req->body, req->body_len, req->timeout_ms,
                               err); /* copies the headers */
    free(with);
    sio_run_op_started(c, sp, id, err);
    return id;
}

/* A kv op as the Redis command that does it (SET with PX for a ttl). */
static uint64_t b_kv(void *ud, lua_State *L, const sio_host_kv *req, sio_err *err) {
    (void)ud;
    sio_run *c = cmd_of(L);
    static const char *const cmds[] = {"GET", "SET", "DEL", "INCR"};
    const char *argv[5] = {cmds[req->op], req->key};
    size_t lens[5] = {strlen(cmds[req->op]), req->key_len};
    int argc = 2;
    char px[32];
    if (req->op == SIO_HOST_KV_SET) {
        argv[2] = req->value, lens[2] = req->value_len, argc = 3;
        if (req->ttl_ms > 0) {
            snprintf(px, sizeof px, "%lld", (long long)req->ttl_ms);
            argv[3] = "PX", lens[3] = 2;
            argv[4] = px, lens[4] = strlen(px);
            argc = 5;
        }
    }
    sio_span *sp = sio_run_op_span(c, argv[0], SIO_SPAN_CLIENT); /* telemetry */
    sio_span_set_str(sp, "db.system.name", "redis");
    sio_span_set_str(sp, "db.operation.name", argv[0]);
    uint64_t id = sio_aio_redis(c->w->aio, &c->task, argc, argv, lens, err);
    sio_run_op_started(c, sp, id, err);
    return id;
}

static uint64_t b_produce(void *ud, lua_State *L, const char *topic, const char *key,
                          size_t klen, const char *val, size_t vlen, sio_err *err) {
    (void)ud;
    sio_run *c = cmd_of(L);
    if (val == NULL) val = "", vlen = 0;
    /* telemetry: a producer span, whose context the message carries */
    char name[300];
    snprintf(name, sizeof name, "send %s", topic);
    sio_span *sp = sio_run_op_span(c, name, SIO_SPAN_PRODUCER);
    sio_span_set_str(sp, "messaging.system", "kafka");
    sio_span_set_str(sp, "messaging.operation.type", "send");
    sio_span_set_str(sp, "messaging.operation.name", "send");
    sio_span_set_str(sp, "messaging.destination.name", topic);
    char tp[SIO_TRACEPARENT_LEN + 1];
    sio_span_traceparent(sp, tp);
    sio_kafka_header h = {"traceparent", tp, strlen(tp)};
    uint64_t id;
    if (c->cbs.produce) { /* taken by the run's owner: done on the next turn */
        id = c->cbs.produce(c->ud, topic, key, klen, val, vlen, err) == 0
                 ? sio_aio_timer(c->w->aio, &c->task, 0, err)
                 : 0;
    } else {
        id = sio_aio_produce(c->w->aio, &c->task, topic, key, klen, val, vlen, &h, sp ? 1 : 0,
                             err);
    }
    sio_run_op_started(c, sp, id, err);
    return id;
}

/* A native tool's answer, from any thread: the worker carries it to its loop. */
static void answer_tool(void *w, uint64_t op_id, const sio_err *err, const char *payload,
                        size_t len) {
    sio_worker_tool_done(w, op_id, err, payload, len);
}

/* A native tool (sio/tool.h) called with the args as JSON. */
static uint64_t b_tool(void *ud, lua_State *L, const char *name, const char *args, size_t len,
                       sio_err *err) {
    (void)ud;
    sio_run *c = cmd_of(L);
    const sio_tool_entry *t = sio_tools_find(name);
    if (t == NULL) {
        sio_err_set(err, SIO_E_SCRIPT, "no native tool '%s'", name);
        return 0;
    }
    uint64_t id = sio_aio_tool(c->w->aio, &c->task, err);
    if (id == 0) return 0;
    sio_tool_call *call = sio_tool_call_new(answer_tool, c->w, id);
    if (call == NULL) {
        sio_aio_cancel(c->w->aio, id);
        sio_err_set(err, SIO_E_NOMEM, "native tool %s: out of memory", name);
        return 0;
    }
    t->fn(call, args, len, t->ud);
    return id;
}

static void b_cancel(void *ud, lua_State *L, uint64_t op_id) {
    (void)ud;
    sio_run *c = cmd_of(L);
    sio_aio_cancel(c->w->aio, op_id);
    sio_run_op_done(c, op_id, NULL); /* telemetry: its span ends */
}

/* The engine's telemetry hooks (worker_trace.c). */
static void b_step_begin(void *ud, lua_State *L, lua_Integer i, const char *step_id) {
    (void)ud;
    sio_run_step_begin(cmd_of(L), i, step_id);
}

static void b_step_retry(void *ud, lua_State *L, lua_Integer i, const char *message) {
    (void)ud;
    sio_run_step_retry(cmd_of(L), i, message);
}

static void b_step_end(void *ud, lua_State *L, lua_Integer i, int ok, const char *message) {
    (void)ud;
    sio_run_step_end(cmd_of(L), i, ok, message);
}

static void b_step_result(void *ud, lua_State *L, const char *step, const char *payload,
                          size_t len, const json_t *query) {
    (void)ud;
    sio_run *c = cmd_of(L);
    if (c->cbs.step_result == NULL) return;
    /* No secret leaves a run (redact.h): the payload and the query. */
    sio_redactor *r = sio_redact_global();
    json_t *q = NULL;
    char *red = NULL;
    if (sio_redact_count(r) > 0) {
        if ((q = json_deep_copy(query)) != NULL) {
            sio_redact_json(r, q, NULL);
            query = q;
        } else {
            query = json_null(); /* out of memory: nothing that may hold one */
        }
        int failed = 0;
        red = sio_redact_text(r, payload, len, &len, &failed);
        if (red) payload = red;
        else if (failed) payload = "\"[redacted]\"", len = 12;
    }
    c->cbs.step_result(c->ud, step, payload, len, query);
    free(red);
    json_decref(q);
}

static const char *b_native_tool(void *ud, size_t i) {
    (void)ud;
    const sio_tool_entry *t = sio_tools_at(i);
    return t ? t->name : NULL;
}

/* The daemon's backend of the host contract: libuv timers, curl, hiredis,
 * the service's Kafka producer, native tools; the process's clocks. */
static const sio_host_backend daemon_backend = {
    .timer = b_timer,
    .http = b_http,
    .kv = b_kv,
    .produce = b_produce,
    .tool = b_tool,
    .cancel = b_cancel,
    .deadline = b_timer,
    .step_result = b_step_result,
    .native_tool = b_native_tool,
    .step_begin = b_step_begin,
    .step_retry = b_step_retry,
    .step_end = b_step_end,
};

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

/* Pushes the value of a completed op onto co (the host contract's shapes). */
void sio_worker_push_result(lua_State *co, const sio_aio_result *r) {
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

int sio_worker_host_push(sio_worker *w, const sio_worker_cfg *cfg, sio_err *err) {
    lua_State *L = w->L;
    sio_host_cfg hc = {.http_allow = cfg->http_allow, .http_timeout_ms = cfg->http_timeout_ms};
    w->backend = cfg->backend ? cfg->backend : &daemon_backend;
    w->backend_ud = cfg->backend ? cfg->backend_ud : w;
    if (sio_host_install(L, w->backend, w->backend_ud, &hc, err) != 0) return -1;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sio.host");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_SCRIPT, "loading sio.host: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}
