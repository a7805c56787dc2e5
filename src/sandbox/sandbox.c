/*
 * sandbox.c - the worker's lua_State: creation and teardown, over the
 * sandbox's parts (each below it, none calling up): the counting allocator
 * (sandbox_alloc.c), executions and limits (sandbox_exec.c), the safe
 * globals (sandbox_lib.c, with sandbox_require.c and sandbox_pattern.c),
 * log lines (sandbox_log.c) and the JSON codec (luajson.c).  The host
 * module the engine calls (luahost.c) is above all of them.
 */
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "luajson.h"
#include "sandbox_int.h"

/* --- creation -------------------------------------------------------------*/

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seeds the uuid generator from getrandom, falling back to clock and
 * address entropy (ids must be unique, not secret). */
static void seed_rng(sio_sandbox *sb) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = sio_now_ns() ^ (uint64_t)(uintptr_t)sb ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < 4; i++) sb->rng[i] = splitmix64(&seed);
}

/* Fills in defaults and copies cfg into sb. */
static int apply_cfg(sio_sandbox *sb, const sio_sandbox_cfg *cfg, sio_err *err) {
    static const sio_sandbox_cfg none;
    if (cfg == NULL) cfg = &none;
    sb->defaults = cfg->limits;
    if (sb->defaults.mem_limit_bytes == 0) sb->defaults.mem_limit_bytes = SIO_DEFAULT_MEM_LIMIT;
    if (sb->defaults.instr_limit == 0) sb->defaults.instr_limit = SIO_DEFAULT_INSTR_LIMIT;
    sb->cap = cfg->state_mem_cap ? cfg->state_mem_cap : SIO_DEFAULT_STATE_CAP;
    sb->log = cfg->log ? cfg->log : sio_log_stderr;
    sb->log_ud = cfg->log ? cfg->log_ud : NULL;
    if (cfg->lua_dir != NULL) {
        sb->lua_dir = realpath(cfg->lua_dir, NULL);
        if (sb->lua_dir == NULL)
            return sio_err_set(err, SIO_E_INVAL, "lua_dir '%s': %s", cfg->lua_dir,
                               strerror(errno));
    }
    return 0;
}

/* Protected part of creation: libraries, safe globals, preload (sio.json
 * and cfg's modules, light userdata 1). */
static int setup_state(lua_State *L) {
    const luaL_Reg *more = lua_touserdata(L, 1);
    luaL_openlibs(L);
    sio_sandbox_build_safe(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_sio_json);
    lua_setfield(L, -2, "sio.json");
    for (; more && more->name; more++) {
        lua_pushcfunction(L, more->func);
        lua_setfield(L, -2, more->name);
    }
    return 0;
}

sio_sandbox *sio_sandbox_create(const sio_sandbox_cfg *cfg, sio_err *err) {
    sio_sandbox *sb = calloc(1, sizeof *sb);
    if (sb == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "sandbox: out of memory");
        return NULL;
    }
    if (apply_cfg(sb, cfg, err) != 0) goto fail;
    seed_rng(sb);
    sb->L = lua_newstate(sio_sandbox_alloc, sb);
    if (sb->L == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "sandbox: cannot create lua state");
        goto fail;
    }
    memset(lua_getextraspace(sb->L), 0, LUA_EXTRASPACE); /* no exec */
    lua_pushcfunction(sb->L, setup_state);
    lua_pushlightuserdata(sb->L, (void *)(cfg ? cfg->preload : NULL));
    if (lua_pcall(sb->L, 1, 0, 0) != LUA_OK) {
        sio_err_set(err, SIO_E_NOMEM, "sandbox: setup failed: %s",
                    lua_tostring(sb->L, -1) ? lua_tostring(sb->L, -1) : "?");
        goto fail;
    }
    return sb;
fail:
    sio_sandbox_destroy(sb);
    return NULL;
}

void sio_sandbox_destroy(sio_sandbox *sb) {
    if (sb == NULL) return;
    sb->cur = NULL;
    if (sb->L != NULL) lua_close(sb->L);
    sio_pool_release(&sb->pool);
    for (size_t i = 0; i < sb->nslots; i++) free(sb->slots[i].ex);
    free(sb->slots);
    free(sb->lua_dir);
    free(sb);
}

lua_State *sio_sandbox_state(sio_sandbox *sb) { return sb->L; }

size_t sio_sandbox_mem_used(const sio_sandbox *sb) { return sb->used; }

void sio_sandbox_alloc_stats(const sio_sandbox *sb, uint64_t *allocs, uint64_t *bytes) {
    *allocs = sb->nallocs;
    *bytes = sb->alloc_bytes;
}

const char *sio_sandbox_lua_dir(const sio_sandbox *sb) { return sb->lua_dir; }
