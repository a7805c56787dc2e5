/*
 * sandbox_require.c - the per-environment require and load of user code.
 *
 * Both are closures over the environment they were created for (see
 * sio_sandbox_push_env), never a lookup of the caller's _ENV: a stack walk
 * could find a trusted frame when user code hands `load` to the engine as a
 * callback, and bind the trusted globals.
 *
 * require(name) resolves, in order: the env's module cache, the preload
 * table given to host.safe_env (the engine's user-visible `sio` module),
 * then <lua_dir>/<name with . as />.lua and <lua_dir>/<name>/init.lua.
 * Names are [A-Za-z0-9_.] only, without "..", and `sio` / `sio.*` are
 * refused unless preloaded (lua/sio/ holds the trusted engine).  Files are
 * compiled text-only, each as a factory (`local _ENV = ...; return
 * function(...) <file> end`), and the module runs as factory(env)(name,
 * file): its _ENV is the requiring env, so every command gets its own
 * module instance and nothing leaks between commands.  The factories go
 * in the modules table given to host.safe_env when there is one (one per
 * workflow-set version, kept by the engine), so a file is found and
 * compiled once per version, not once per command; a reload starts a new
 * table, which reads the files again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "sandbox_int.h"

#define MAX_NAME 200
#define MAX_SOURCE ((size_t)16 << 20)

static const char loading_mark = 0; /* cache value while a module loads */

/* A module name: [A-Za-z0-9_.], no leading/trailing dot, no "..". */
static int name_ok(const char *name, size_t len) {
    if (len == 0 || len > MAX_NAME || name[0] == '.' || name[len - 1] == '.') return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.';
        if (!ok || (c == '.' && name[i + 1] == '.')) return 0;
    }
    return 1;
}

static int is_internal(const char *name) {
    return strcmp(name, "sio") == 0 || strncmp(name, "sio.", 4) == 0;
}

/* 1 when path is a regular file whose real location is inside dir (a
 * symlink must not lead out of the project's lua/ folder). */
static int inside(const char *dir, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    char *rp = realpath(path, NULL);
    size_t dlen = strlen(dir);
    int ok = rp != NULL && strncmp(rp, dir, dlen) == 0 && rp[dlen] == '/';
    free(rp);
    return ok;
}

/* Fills full (absolute) and rel (relative to dir) for module name; returns
 * 1 when found. */
static int find_module(const char *dir, const char *name, char *full,
                       char *rel, size_t sz) {
    char p[MAX_NAME + 1];
    size_t i = 0;
    for (; name[i] != '\0'; i++) p[i] = name[i] == '.' ? '/' : name[i];
    p[i] = '\0';
    static const char *const forms[] = {"%s.lua", "%s/init.lua"};
    for (int k = 0; k < 2; k++) {
        int n1 = snprintf(rel, sz, forms[k], p);
        int n2 = snprintf(full, sz, "%s/%s", dir, rel);
        if (n1 > 0 && n2 > 0 && (size_t)n2 < sz && inside(dir, full)) return 1;
    }
    return 0;
}

/* Pushes the contents of file path.  Raises on error. */
static void push_source(lua_State *L, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) luaL_error(L, "cannot read module file: %s", strerror(errno));
    if ((size_t)st.st_size > MAX_SOURCE) luaL_error(L, "module file too large");
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, (size_t)st.st_size);
    FILE *f = fopen(path, "rb"); /* no Lua calls until fclose: no leak */
    size_t n = f ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = f == NULL || ferror(f);
    if (f != NULL) fclose(f);
    if (bad) luaL_error(L, "cannot read module file");
    luaL_pushresultsize(&b, n);
}

/* Pushes the env's module cache, creating it on first use. */
static int push_cache(lua_State *L) {
    if (lua_type(L, lua_upvalueindex(3)) != LUA_TTABLE) {
        lua_newtable(L);
        lua_replace(L, lua_upvalueindex(3));
    }
    lua_pushvalue(L, lua_upvalueindex(3));
    return lua_gettop(L);
}

/* Compiles module file `full` into a factory (see the top of this file)
 * and pushes {factory, rel}.  Raises on a read or syntax error. */
static void push_compiled(lua_State *L, const char *full, const char *rel) {
    static const char head[] = "local _ENV = ...; return function(...) ", tail[] = "\nend";
    push_source(L, full);
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    luaL_Buffer b;
    luaL_buffinitsize(L, &b, sizeof head + len + sizeof tail);
    luaL_addlstring(&b, head, sizeof head - 1);
    luaL_addlstring(&b, src, len);
    luaL_addlstring(&b, tail, sizeof tail - 1);
    luaL_pushresult(&b);
    src = lua_tolstring(L, -1, &len);
    lua_pushfstring(L, "@%s", rel);
    if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK) lua_error(L);
    lua_createtable(L, 2, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, rel);
    lua_rawseti(L, -2, 2);
    lua_replace(L, -4); /* over the source */
    lua_pop(L, 2);
}

/* Pushes {factory, rel} for module name: from the shared modules table
 * (upvalue 4) when it has it, else found and compiled (and stored there).
 * Raises when the module does not exist or does not compile. */
static void push_module(lua_State *L, const char *name) {
    int shared = lua_type(L, lua_upvalueindex(4)) == LUA_TTABLE;
    if (shared && lua_getfield(L, lua_upvalueindex(4), name) == LUA_TTABLE) return;
    if (shared) lua_pop(L, 1);
    const char *dir = sio_sandbox_of(L)->lua_dir; /* sandbox_int.h: no call up to sandbox.c */
    char full[PATH_MAX], rel[PATH_MAX];
    if (dir == NULL || !find_module(dir, name, full, rel, sizeof full))
        luaL_error(L, "require: module '%s' not found in the project's lua/ folder", name);
    push_compiled(L, full, rel);
    if (shared) {
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(4), name);
    }
}

/* Runs module name in the env (upvalue 1), leaving its value at the top.
 * The cache entry marks the load in progress, so a require loop fails
 * instead of recursing. */
static void run_module(lua_State *L, int cache, const char *name) {
    push_module(L, name);
    int entry = lua_gettop(L);
    lua_rawgeti(L, entry, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 1, 1); /* factory(env): no user code runs */
    lua_pushlightuserdata(L, (void *)&loading_mark);
    lua_setfield(L, cache, name);
    lua_pushstring(L, name);
    lua_rawgeti(L, entry, 2);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, cache, name);
        lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_remove(L, entry);
}

int sio_env_require(lua_State *L) {
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    int cache = push_cache(L);
    int t = lua_getfield(L, cache, name);
    if (t == LUA_TLIGHTUSERDATA) return luaL_error(L, "require: loop loading module '%s'", name);
    if (t != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (lua_type(L, lua_upvalueindex(2)) == LUA_TTABLE &&
        lua_getfield(L, lua_upvalueindex(2), name) != LUA_TNIL) {
        lua_pushvalue(L, -1);
        lua_setfield(L, cache, name);
        return 1;
    }
    if (!name_ok(name, len)) return luaL_error(L, "require: invalid module name '%s'", name);
    if (is_internal(name))
        return luaL_error(L, "require: module '%s' is internal to the engine", name);
    run_module(L, cache, name);
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, name);
    return 1;
}

int sio_env_load(lua_State *L) {
    int has_env = !lua_isnone(L, 4);
    lua_settop(L, 4);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sio_sandbox_of(L)->ref_load);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t"); /* never binary: bytecode is not verified */
    lua_pushvalue(L, has_env ? 4 : lua_upvalueindex(1));
    lua_call(L, 4, LUA_MULTRET);
    sio_exec_charge(L, 0); /* lua_load catches errors raised in a reader */
    return lua_gettop(L) - 4;
}
