/*
 * sandbox_lib.c - the safe globals user code sees, and fresh environments.
 *
 * Library tables are shared by every command on the worker, so each is a
 * read-only proxy: an empty table whose metatable has __index = the real
 * (backing) table, __newindex = an error, __pairs = an iterator that never
 * hands out the backing table, and __metatable = false.  rawset refuses
 * proxies; next/rawget/rawlen see through them.  The backing tables are
 * reachable only from C and from the string metatable's __index (itself
 * protected).
 */
#include <limits.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "sandbox_int.h"

/* --- frozen proxies -------------------------------------------------------*/

/* __newindex of a proxy: every write fails. Upvalue 1: the table's name. */
static int ro_newindex(lua_State *L) {
    return luaL_error(L, "attempt to modify read-only table '%s' (key '%s')",
                      lua_tostring(L, lua_upvalueindex(1)),
                      luaL_tolstring(L, 2, NULL));
}

/* next over the backing table (upvalue 1), called as next(proxy, key). */
static int frozen_next(lua_State *L) {
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

/* __pairs of a proxy: (frozen_next, proxy, nil). */
static int frozen_pairs(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replaces the backing table at top with its read-only proxy named name,
 * and records proxy -> backing in the frozen map. */
static void freeze(lua_State *L, sio_sandbox *sb, const char *name) {
    int backing = lua_gettop(L);
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, backing);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, backing);
    lua_pushcclosure(L, frozen_next, 1);
    lua_pushcclosure(L, frozen_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->ref_frozen);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, backing);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, backing);
}

/* If the value at idx is a proxy, replaces it with its backing table. */
static void unproxy(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return;
    sio_sandbox *sb = sio_sandbox_of(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->ref_frozen);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TTABLE)
        lua_replace(L, idx);
    else
        lua_pop(L, 1);
    lua_pop(L, 1);
}

/* --- base functions -------------------------------------------------------*/

static int safe_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    unproxy(L, 1);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

static int safe_rawget(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    unproxy(L, 1);
    lua_rawget(L, 1);
    return 1;
}

static int safe_rawlen(lua_State *L) {
    int t = lua_type(L, 1);
    luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TSTRING, 1, "table or string");
    unproxy(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

/* rawset, except on shared library tables. */
static int safe_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_pushvalue(L, 1);
    unproxy(L, 4);
    if (!lua_rawequal(L, 1, 4))
        return luaL_error(L, "attempt to modify read-only table with rawset");
    lua_pop(L, 1);
    lua_rawset(L, 1);
    return 1;
}

/* setmetatable without finalizers: a __gc would run user code at an
 * arbitrary later time, outside any execution's limits. */
static int safe_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    sio_exec *ex = sio_exec_of(L);
    if (ex != NULL && t == LUA_TTABLE) sio_exec_taint(ex); /* metamethods: user code */
    lua_setmetatable(L, 1);
    return 1;
}

/* print: the arguments, tostring'ed and tab-separated, as an info log. */
static int safe_print(lua_State *L) {
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    sio_sandbox_log(L, "info", s, len, 0);
    return 0;
}

/* --- protected calls ------------------------------------------------------*/

/* Every way user code can catch an error re-raises a limit kill as soon
 * as it returns, so nothing runs after the kill (the hook alone would
 * allow up to SIO_HOOK_EVERY more instructions).  sio_exec_charge(L, 0)
 * raises exactly when the running exec is killed. */

/* Continuation of pcall/xpcall; `extra` is the number of slots below the
 * results (yields inside the protected call are allowed). */
static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
    sio_exec_charge(L, 0);
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int safe_pcall(lua_State *L) {
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1); /* true, f, args... */
    int st = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
    return finish_pcall(L, st, 0);
}

/* The message handler safe_xpcall installs: the user's (upvalue 1), unless
 * the exec is killed.  A kill is raised by the count hook, and Lua calls
 * the message handler before unwinding, still inside the hook, where hooks
 * are off: a user handler there would run unmetered (a loop in it never
 * ends).  Its result would be dropped anyway (finish_pcall re-raises the
 * kill), so after a kill the error passes through unchanged. */
static int xpcall_handler(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    if (ex != NULL && sio_exec_kill_reason(ex) != SIO_KILL_NONE) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int safe_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* f, handler, true, f, args... */
    int st = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, st, 2);
}

/* coroutine.resume / coroutine.close: the standard function (upvalue 1),
 * then the kill check. */
static int checked_call(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    sio_exec_charge(L, 0);
    return lua_gettop(L);
}

/* --- coroutines -----------------------------------------------------------*/

int sio_sandbox_cocreate(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    sio_exec_inherit(L, co);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

/* Raises unless co can be resumed now. */
static void check_resumable(lua_State *L, lua_State *co) {
    lua_Debug ar;
    int st = lua_status(co);
    if (st == LUA_YIELD) return;
    if (st != LUA_OK) luaL_error(L, "cannot resume dead coroutine");
    if (co == L || lua_getstack(co, 0, &ar) > 0)
        luaL_error(L, "cannot resume non-suspended coroutine");
    if (lua_gettop(co) == 0) luaL_error(L, "cannot resume dead coroutine");
}

/* The function coroutine.wrap returns: resumes its thread (upvalue 1) and
 * propagates errors, closing the dead coroutine's pending variables. */
static int wrap_call(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int narg = lua_gettop(L), nres;
    check_resumable(L, co);
    if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, narg);
    int st = lua_resume(co, L, narg, &nres);
    sio_exec_charge(L, 0);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            return luaL_error(L, "too many results to resume");
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    st = lua_resetthread(co); /* leaves the error object on co */
    lua_xmove(co, L, 1);
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int co_wrap(lua_State *L) {
    sio_sandbox_cocreate(L);
    lua_pushcclosure(L, wrap_call, 1);
    return 1;
}

/* --- budgeted string and table functions ----------------------------------*/

/* string.rep without the zero-length loop (string.rep('', 2^62) would spin
 * in C); otherwise the work is proportional to the bytes allocated, which
 * the allocator charges.  Upvalue 1: the standard rep. */
static int safe_rep(lua_State *L) {
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_settop(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 3, 1);
    return 1;
}

/* Counts one element moved; charges the exec every 1024. */
static void tick(lua_State *L, uint64_t *k) {
    if ((++*k & 1023) == 0) sio_exec_charge(L, 1024);
}

static lua_Integer checkn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    return luaL_len(L, 1);
}

/* table.insert(t, [pos,] v), charging each shifted element. */
static int safe_tinsert(lua_State *L) {
    lua_Integer e = checkn(L) + 1, pos;
    uint64_t k = 0;
    switch (lua_gettop(L)) {
    case 2: pos = e; break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
                      "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) {
            tick(L, &k);
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default: return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

/* table.remove(t [, pos]), charging each shifted element. */
static int safe_tremove(lua_State *L) {
    lua_Integer size = checkn(L);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    uint64_t k = 0;
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        tick(L, &k);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* table.move(a1, f, e, t [, a2]), charging each element. */
static int safe_tmove(lua_State *L) {
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = lua_isnoneornil(L, 5) ? 1 : 5;
    uint64_t k = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, tt, LUA_TTABLE);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        int fwd = t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
        for (lua_Integer i = 0; i < n; i++) {
            lua_Integer j = fwd ? i : n - 1 - i;
            tick(L, &k);
            lua_geti(L, 1, f + j);
            lua_seti(L, tt, t + j);
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* Appends t[i] (t at index 1) to b; concat's rule: strings and numbers
 * only. */
static void concat_field(lua_State *L, luaL_Buffer *b, lua_Integer i) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(b);
}

/* table.concat(t [, sep [, i [, j]]]), charging each element: the bytes it
 * writes are charged by the allocator, but an element can be empty, and
 * with __index = table.concat a range of 2^40 costs nothing else. */
static int safe_tconcat(lua_State *L) {
    luaL_Buffer b;
    size_t lsep;
    lua_Integer last = checkn(L);
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    uint64_t k = 0;
    last = luaL_optinteger(L, 4, last);
    luaL_buffinit(L, &b);
    for (; i < last; i++) {
        tick(L, &k);
        concat_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last) concat_field(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

/* Charges sorting n elements: n log2 n comparisons and moves. */
static void charge_sort(lua_State *L, lua_Integer n) {
    uint64_t lg = 1;
    for (lua_Unsigned m = (lua_Unsigned)n; m > 1; m >>= 1) lg++;
    if (n > 1) sio_exec_charge(L, (uint64_t)n * lg);
}

/* table.sort(t [, comp]): the standard sort (upvalue 1), its C work charged
 * up front (only a comparator or __lt written in Lua would be counted).  A
 * table with a metatable is sorted as a plain copy, written back after: its
 * __len could answer differently to the standard sort than to us, and C
 * metamethods make its elements for free.  Copying charges each element. */
static int safe_tsort(lua_State *L) {
    lua_Integer n = checkn(L);
    uint64_t k = 0;
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    charge_sort(L, n);
    if (!lua_getmetatable(L, 1)) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, 2, 0);
        return 0;
    }
    lua_createtable(L, (int)n, 0); /* 4: the copy */
    for (lua_Integer i = 1; i <= n; i++) {
        tick(L, &k);
        lua_geti(L, 1, i);
        lua_rawseti(L, 4, i);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        tick(L, &k);
        lua_rawgeti(L, 4, i);
        lua_seti(L, 1, i);
    }
    return 0;
}

/* --- building the safe globals --------------------------------------------*/

/* Pushes a copy of _G[lib] (fields in `only`, or all but `skip`). */
static void copy_lib(lua_State *L, const char *lib, const char *const *only,
                     const char *skip) {
    lua_newtable(L);
    lua_getglobal(L, lib);
    if (only != NULL) {
        for (; *only != NULL; only++) {
            lua_getfield(L, -1, *only);
            lua_setfield(L, -3, *only);
        }
    } else {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (skip == NULL || lua_type(L, -2) != LUA_TSTRING ||
                strcmp(lua_tostring(L, -2), skip) != 0) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -5);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    lua_pop(L, 1);
}

/* Sets the functions of regs into the table at top. */
static void set_funcs(lua_State *L, const luaL_Reg *regs) {
    for (; regs->name != NULL; regs++) {
        lua_pushcfunction(L, regs->func);
        lua_setfield(L, -2, regs->name);
    }
}

/* Builds the string library copy and protects the string metatable. */
static void build_string(lua_State *L) {
    static const luaL_Reg fns[] = {{"find", sio_str_find}, {"match", sio_str_match},
                                   {"gmatch", sio_str_gmatch}, {"gsub", sio_str_gsub},
                                   {NULL, NULL}};
    copy_lib(L, "string", NULL, "dump");
    set_funcs(L, fns);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, safe_rep, 1);
    lua_setfield(L, -3, "rep");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* Sets t[name] = the standard lib.name wrapped in checked_call, t at top. */
static void checked(lua_State *L, const char *lib, const char *name) {
    lua_getglobal(L, lib);
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, checked_call, 1);
    lua_setfield(L, -3, name);
    lua_pop(L, 1);
}

/* Adds each library's frozen proxy to the safe globals at top. */
static void add_libs(lua_State *L, sio_sandbox *sb) {
    static const char *const co_keep[] = {"yield", "status", "isyieldable", "running",
                                          NULL};
    static const char *const os_keep[] = {"time", "clock", "date", NULL};
    static const luaL_Reg tab_fns[] = {{"insert", safe_tinsert}, {"remove", safe_tremove},
                                       {"move", safe_tmove}, {"concat", safe_tconcat},
                                       {NULL, NULL}};
    static const luaL_Reg co_fns[] = {{"create", sio_sandbox_cocreate}, {"wrap", co_wrap},
                                      {NULL, NULL}};
    build_string(L);
    freeze(L, sb, "string");
    lua_setfield(L, -2, "string");
    copy_lib(L, "table", NULL, NULL);
    set_funcs(L, tab_fns);
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushcclosure(L, safe_tsort, 1);
    lua_setfield(L, -3, "sort");
    lua_pop(L, 1);
    freeze(L, sb, "table");
    lua_setfield(L, -2, "table");
    copy_lib(L, "coroutine", co_keep, NULL);
    set_funcs(L, co_fns);
    checked(L, "coroutine", "resume");
    checked(L, "coroutine", "close");
    freeze(L, sb, "coroutine");
    lua_setfield(L, -2, "coroutine");
    copy_lib(L, "os", os_keep, NULL);
    freeze(L, sb, "os");
    lua_setfield(L, -2, "os");
    copy_lib(L, "math", NULL, NULL);
    freeze(L, sb, "math");
    lua_setfield(L, -2, "math");
    copy_lib(L, "utf8", NULL, NULL);
    freeze(L, sb, "utf8");
    lua_setfield(L, -2, "utf8");
}

/* Adds the base functions to the safe globals at top. */
static void add_base(lua_State *L) {
    static const char *const keep[] = {"assert", "error", "ipairs", "pairs", "select",
                                       "tonumber", "tostring", "type", "rawequal",
                                       "getmetatable", "_VERSION", NULL};
    static const luaL_Reg fns[] = {{"pcall", safe_pcall}, {"xpcall", safe_xpcall},
                                   {"next", safe_next}, {"rawget", safe_rawget},
                                   {"rawlen", safe_rawlen}, {"rawset", safe_rawset},
                                   {"setmetatable", safe_setmetatable},
                                   {"print", safe_print}, {NULL, NULL}};
    lua_pushglobaltable(L);
    for (const char *const *k = keep; *k != NULL; k++) {
        lua_getfield(L, -1, *k);
        lua_setfield(L, -3, *k);
    }
    lua_pop(L, 1);
    set_funcs(L, fns);
}

int sio_sandbox_build_safe(lua_State *L) {
    sio_sandbox *sb = sio_sandbox_of(L);
    lua_newtable(L);
    sb->ref_frozen = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "load");
    sb->ref_load = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* the safe globals */
    add_base(L);
    add_libs(L, sb);
    lua_createtable(L, 0, 2); /* the metatable of every env */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    sb->ref_env_mt = luaL_ref(L, LUA_REGISTRYINDEX);
    sb->ref_safe_g = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

void sio_sandbox_push_env(lua_State *L, int preload_idx, int modules_idx) {
    sio_sandbox *sb = sio_sandbox_of(L);
    if (preload_idx != 0) preload_idx = lua_absindex(L, preload_idx);
    if (modules_idx != 0) modules_idx = lua_absindex(L, modules_idx);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_pushvalue(L, -1);
    if (preload_idx != 0) lua_pushvalue(L, preload_idx); else lua_pushnil(L);
    lua_pushnil(L);
    if (modules_idx != 0) lua_pushvalue(L, modules_idx); else lua_pushnil(L);
    lua_pushcclosure(L, sio_env_require, 4);
    lua_setfield(L, -2, "require");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, sio_env_load, 1);
    lua_setfield(L, -2, "load");
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->ref_env_mt);
    lua_setmetatable(L, -2);
}
