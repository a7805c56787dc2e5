/*
 * luahost.c - the `sio.host` module (see luahost.h): compile, safe
 * environments, coroutines, ids, logging, files, durations, suggestions;
 * the ops over the installed backend are in luahost_ops.c.
 */
#include "luahost.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "suggest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include <lauxlib.h>

#include "sandbox_int.h"

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

/* The thread at arg 1 (nil: none), of the running execution. */
static lua_State *opt_thread(lua_State *L, sio_exec *ex) {
    lua_State *co = lua_isnoneornil(L, 1) ? NULL : lua_tothread(L, 1);
    luaL_argexpected(L, lua_isnoneornil(L, 1) || co != NULL, 1, "thread or nil");
    return co != NULL && sio_exec_of(co) == ex ? co : NULL;
}

/* host.exec_arm([co [, only_if_armed]]): see sio_exec_arm; co (a
 * suspended thread of the same execution) gets the hook too.  With
 * only_if_armed, arms nothing: co gets the hook when the execution has
 * it. */
static int h_exec_arm(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    if (ex == NULL) return 0;
    lua_State *co = opt_thread(L, ex);
    if (!lua_toboolean(L, 2)) sio_exec_arm(ex, L);
    if (co != NULL) sio_exec_arm_thread(ex, co);
    return 0;
}

/* host.exec_disarm([co]): see sio_exec_disarm. */
static int h_exec_disarm(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    if (ex != NULL) sio_exec_disarm(ex, L, opt_thread(L, ex));
    return 0;
}

/* host.exec_step(id | nil): see sio_exec_set_step. */
static int h_exec_step(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    const char *step = luaL_optstring(L, 1, NULL);
    if (ex != NULL) sio_exec_set_step(ex, step);
    return 0;
}

/* --- ids ------------------------------------------------------------------*/

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

static int h_log(lua_State *L) {
    const char *level = luaL_checkstring(L, 1);
    size_t len;
    const char *msg = luaL_checklstring(L, 2, &len);
    int t = lua_type(L, 3);
    luaL_argexpected(L, t == LUA_TNONE || t == LUA_TNIL || t == LUA_TTABLE, 3, "table or nil");
    sio_sandbox_log(L, level, msg, len, t == LUA_TTABLE ? 3 : 0);
    return 0;
}

/* --- files --------------------------------------------------------------------*/

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_gc(lua_State *L) {
    DIR **d = lua_touserdata(L, 1);
    if (*d) closedir(*d);
    *d = NULL;
    return 0;
}

/* host.list_dir(dir) -> {names...}: sorted, dot files left out; {} when
 * dir cannot be read.  The DIR lives in a userdata with __gc, so a raise
 * (memory) while the names are gathered cannot leak it. */
static int h_list_dir(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lua_newtable(L);
    DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
    *d = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if ((*d = opendir(dir)) == NULL) {
        lua_pop(L, 1);
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(*d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        luaL_addstring(&b, e->d_name);
        luaL_addchar(&b, '\0');
        n++;
    }
    luaL_pushresult(&b);
    closedir(*d);
    *d = NULL;
    const char *all = lua_tostring(L, -1);
    const char **names = lua_newuserdatauv(L, sizeof *names * (n ? n : 1), 0);
    for (size_t i = 0, off = 0; i < n; i++, off += strlen(all + off) + 1) names[i] = all + off;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -5, (lua_Integer)i + 1);
    }
    lua_pop(L, 3);
    return 1;
}

/* --- durations ------------------------------------------------------------*/

int sio_host_duration(lua_State *L) {
    const char *s = luaL_checkstring(L, 1);
    int64_t ms;
    sio_err err;
    if (sio_parse_duration_ms(s, &ms, &err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err.msg);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)ms);
    return 1;
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
        {"coroutine_create", h_coroutine_create}, {"list_dir", h_list_dir},
        {"uuid", h_uuid}, {"log", h_log},
        {"exec_killed", h_exec_killed}, {"exec_step", h_exec_step},
        {"exec_arm", h_exec_arm}, {"exec_disarm", h_exec_disarm},
        {"suggest", sio_host_suggest}, {"duration_ms", sio_host_duration}, {NULL, NULL}};
    if (sio_sandbox_of(L) == NULL)
        return luaL_error(L, "sio.host: this state was not created by sio_sandbox_create");
    luaL_newlib(L, fns);
    sio_host_push_ops(L, -1); /* timer, http, kv, ...: over the installed backend */
    return 1;
}
