/*
 * luahost.c - the `sio.host` module (see luahost.h): compile, safe
 * environments, coroutines, time, ids, structured logging.
 */
#include "luahost.h"
#include "json.h"
#include "log.h"
#include "suggest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "sandbox_int.h"

#define LOG_MAX_LINE (64 * 1024)
#define LOG_MAX_DEPTH 8

/* --- compile, env, coroutines ---------------------------------------------*/

static int h_compile(lua_State *L) {
    size_t len;
    const char *src = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(user)");
    int has_env = !lua_isnoneornil(L, 3);
    if (name[0] != '=' && name[0] != '@') name = lua_pushfstring(L, "=%s", name);
    if (luaL_loadbufferx(L, src, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) lua_pushvalue(L, 3); else lua_pushnil(L);
    if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);
    return 1;
}

static int h_safe_env(lua_State *L) {
    sio_sandbox_push_env(L, lua_istable(L, 1) ? 1 : 0, lua_istable(L, 2) ? 2 : 0);
    return 1;
}

static int h_coroutine_create(lua_State *L) { return sio_sandbox_cocreate(L); }

static int h_exec_killed(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    if (ex == NULL || sio_exec_kill_reason(ex) == SIO_KILL_NONE)
        lua_pushboolean(L, 0);
    else
        sio_push_limit_error(L, ex);
    return 1;
}

/* host.exec_step(id | nil): see sio_exec_set_step. */
static int h_exec_step(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    const char *step = luaL_optstring(L, 1, NULL);
    if (ex != NULL) sio_exec_set_step(ex, step);
    return 0;
}

/* --- time and ids ---------------------------------------------------------*/

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int h_now(lua_State *L) {
    lua_pushnumber(L, (lua_Number)sio_now_ns() / 1e6);
    return 1;
}

static int h_time(lua_State *L) {
    lua_pushnumber(L, wall_seconds());
    return 1;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: fast, good enough for unique ids. */
static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static int h_uuid(lua_State *L) {
    sio_sandbox *sb = sio_sandbox_of(L);
    unsigned char b[16];
    uint64_t hi = rng_next(sb->rng), lo = rng_next(sb->rng);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char out[37];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    lua_pushlstring(L, out, 36);
    return 1;
}

/* --- JSON log lines -------------------------------------------------------*/

/* A malloc'd line under construction.  Only Lua API calls that cannot
 * raise are made while it is alive, so it never leaks. */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    int full; /* LOG_MAX_LINE reached: further output dropped */
} jbuf;

static void jput(jbuf *j, const char *s, size_t n) {
    if (j->full || j->len + n + 2 > LOG_MAX_LINE) {
        j->full = 1;
        return;
    }
    if (j->len + n + 2 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 2) cap *= 2;
        char *q = realloc(j->p, cap);
        if (q == NULL) {
            j->full = 1;
            return;
        }
        j->p = q;
        j->cap = cap;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
}

static void jlit(jbuf *j, const char *s) { jput(j, s, strlen(s)); }

static int jwrite(void *ud, const char *s, size_t n) {
    jput(ud, s, n);
    return 0;
}

/* A JSON string by json.h's rules (valid UTF-8 whatever the bytes). */
static void jstr(jbuf *j, const char *s, size_t n) {
    sio_json_out o = {.write = jwrite, .ud = j};
    sio_json_write_string(&o, s, n);
}

static void jvalue(jbuf *j, lua_State *L, int idx, int depth);

/* A table: an array when t[1] is present, else an object of its string
 * and number keys.  Raw access only: no user metamethod runs here. */
static void jtable(jbuf *j, lua_State *L, int idx, int depth) {
    if (depth >= LOG_MAX_DEPTH || !lua_checkstack(L, 3)) {
        jlit(j, "\"<table>\"");
        return;
    }
    size_t n = lua_rawlen(L, idx);
    if (n > 0) {
        jput(j, "[", 1);
        for (size_t i = 1; i <= n && !j->full; i++) {
            if (i > 1) jput(j, ",", 1);
            lua_rawgeti(L, idx, (lua_Integer)i);
            jvalue(j, L, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        jput(j, "]", 1);
        return;
    }
    int first = 1;
    jput(j, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (!first) jput(j, ",", 1);
            first = 0;
            jstr(j, k, kl);
            jput(j, ":", 1);
            jvalue(j, L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
    jput(j, "}", 1);
}

static void jnumber(jbuf *j, lua_State *L, int idx) {
    sio_json_out o = {.write = jwrite, .ud = j};
    double d = (double)lua_tonumber(L, idx);
    if (lua_isinteger(L, idx)) sio_json_write_integer(&o, (long long)lua_tointeger(L, idx));
    else if (isfinite(d)) sio_json_write_real(&o, d);
    else jlit(j, "null");
}

static void jvalue(jbuf *j, lua_State *L, int idx, int depth) {
    size_t n;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: jlit(j, "null"); break;
    case LUA_TBOOLEAN: jlit(j, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER: jnumber(j, L, idx); break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        jstr(j, s, n);
        break;
    case LUA_TTABLE: jtable(j, L, idx, depth); break;
    default:
        jput(j, "\"<", 2);
        jlit(j, lua_typename(L, lua_type(L, idx)));
        jput(j, ">\"", 2);
    }
}

/* Appends the fields table's string keys, skipping ts/level/msg. */
static void jfields(jbuf *j, lua_State *L, int idx) {
    if (!lua_checkstack(L, 3)) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (strcmp(k, "ts") != 0 && strcmp(k, "level") != 0 && strcmp(k, "msg") != 0) {
                jput(j, ",", 1);
                jstr(j, k, kl);
                jput(j, ":", 1);
                jvalue(j, L, lua_gettop(L), 1);
            }
        }
        lua_pop(L, 1);
    }
}

void sio_host_log(lua_State *L, const char *level, const char *msg, size_t msglen,
                  int fields_idx) {
    jbuf j = {0};
    char ts[64], when[40];
    snprintf(ts, sizeof ts, "{\"ts\":\"%s\",\"level\":", sio_log_timestamp(when, sizeof when));
    jlit(&j, ts);
    jstr(&j, level, strlen(level));
    jlit(&j, ",\"msg\":");
    jstr(&j, msg, msglen);
    if (fields_idx != 0) jfields(&j, L, lua_absindex(L, fields_idx));
    if (j.p == NULL) return; /* out of memory: the line is dropped */
    /* the closing brace always fits: jput keeps 2 bytes spare */
    memcpy(j.p + j.len, "}\n", 2);
    sio_sandbox_log_line(sio_sandbox_of(L), j.p, j.len + 2);
    free(j.p);
}

static int h_log(lua_State *L) {
    const char *level = luaL_checkstring(L, 1);
    size_t len;
    const char *msg = luaL_checklstring(L, 2, &len);
    int t = lua_type(L, 3);
    luaL_argexpected(L, t == LUA_TNONE || t == LUA_TNIL || t == LUA_TTABLE, 3, "table or nil");
    sio_host_log(L, level, msg, len, t == LUA_TTABLE ? 3 : 0);
    return 0;
}

/* --- suggestions --------------------------------------------------------------*/

#define SUGGEST_MAX 3

int sio_host_suggest(lua_State *L) {
    const char *word = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 0 && n < (1 << 20), 2, "too many names");
    /* the names stay anchored in table 2; the array is a userdata, so an
     * error cannot leak it */
    const char **cands = lua_newuserdatauv(L, sizeof *cands * (size_t)(n ? n : 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        cands[i - 1] = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }
    const char *out[SUGGEST_MAX];
    size_t k = sio_suggest(word, cands, (size_t)n, out, SUGGEST_MAX);
    lua_createtable(L, (int)k, 0);
    for (size_t i = 0; i < k; i++) {
        lua_pushstring(L, out[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* --- module ---------------------------------------------------------------*/

int luaopen_sio_host(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"compile", h_compile}, {"safe_env", h_safe_env},
        {"coroutine_create", h_coroutine_create}, {"now", h_now},
        {"time", h_time}, {"uuid", h_uuid}, {"log", h_log},
        {"exec_killed", h_exec_killed}, {"exec_step", h_exec_step},
        {"suggest", sio_host_suggest}, {NULL, NULL}};
    if (sio_sandbox_of(L) == NULL)
        return luaL_error(L, "sio.host: this state was not created by sio_sandbox_create");
    luaL_newlib(L, fns);
    return 1;
}
