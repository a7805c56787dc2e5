/*
 * sandbox.c - the worker's lua_State: counting allocator, creation and
 * teardown.  The safe globals are built in sandbox_lib.c, executions and
 * limits live in sandbox_exec.c.
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

#include "log.h"
#include "luahost.h"
#include "luajson.h"
#include "sandbox_int.h"

/* --- allocator -----------------------------------------------------------*/

/* Decides whether growth by `grow` bytes may happen.  Lua's core answers a
 * refusal with an emergency full collection and one identical retry; only
 * when that retry is refused too is the exec killed, so garbage never
 * kills.  A request larger than the whole limit is hopeless and kills at
 * once (lauxlib buffers do not retry).  Other refusals without a retry
 * surface as a plain "not enough memory" error. */
static int admit(sio_sandbox *sb, void *ptr, size_t osize, size_t nsize,
                 size_t grow) {
    sio_exec *ex = sb->cur;
    size_t limit = ex ? ex->mem_limit : 0;
    if (ex != NULL && ex->killed != SIO_KILL_NONE && limit <= SIZE_MAX - SIO_KILL_SLACK)
        limit += SIO_KILL_SLACK;
    if (ex == NULL || (ex->mem_used <= limit && grow <= limit - ex->mem_used))
        return grow <= sb->cap - sb->used; /* whole-state cap: never kills */
    int retry = sb->refused.set && sb->refused.ptr == ptr &&
                sb->refused.osize == osize && sb->refused.nsize == nsize;
    if (retry || grow > ex->mem_limit) {
        if (ex->killed == SIO_KILL_NONE) ex->killed = SIO_KILL_MEMORY;
    }
    sb->refused.ptr = ptr;
    sb->refused.osize = osize;
    sb->refused.nsize = nsize;
    sb->refused.set = 1;
    return 0;
}

/* Records a size change from `old` to `nsize` bytes in the state total and
 * the entered exec (net, floored at zero: frees made while an exec runs
 * credit it, whoever allocated the block).  Growth also costs the exec one
 * instruction per SIO_BYTES_PER_INSTR bytes: C work that copies memory
 * (s = s .. 'x' in a loop is quadratic in one VM instruction per step) is
 * proportional to what it allocates, and the next hook call sees it. */
static void account(sio_sandbox *sb, size_t old, size_t nsize) {
    sio_exec *ex = sb->cur;
    if (nsize >= old) {
        size_t grow = nsize - old;
        sb->used += grow;
        if (ex == NULL) return;
        ex->mem_used += grow;
        ex->instr += grow / SIO_BYTES_PER_INSTR;
        if (ex->mem_used > ex->mem_peak) ex->mem_peak = ex->mem_used;
    } else {
        size_t shrink = old - nsize;
        sb->used -= shrink;
        if (ex != NULL) ex->mem_used -= shrink < ex->mem_used ? shrink : ex->mem_used;
    }
}

/* The lua_Alloc of every sandbox state: malloc/realloc/free plus
 * accounting.  Shrinking never fails, as Lua requires. */
/* realloc over the pool: small blocks from it, larger ones from malloc,
 * moving between the two when a block changes sides. */
static void *pool_realloc(sio_sandbox *sb, void *ptr, size_t old, size_t nsize) {
    if (old > SIO_POOL_MAX && nsize > SIO_POOL_MAX) return realloc(ptr, nsize);
    if (ptr && old <= SIO_POOL_MAX && nsize <= SIO_POOL_MAX && (old + 15) / 16 == (nsize + 15) / 16)
        return ptr; /* same size class */
    void *p = nsize <= SIO_POOL_MAX ? sio_pool_alloc(&sb->pool, nsize) : malloc(nsize);
    if (p == NULL || ptr == NULL) return p;
    memcpy(p, ptr, old < nsize ? old : nsize);
    if (old <= SIO_POOL_MAX) sio_pool_free(&sb->pool, ptr, old);
    else free(ptr);
    return p;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sio_sandbox *sb = ud;
    size_t old = ptr != NULL ? osize : 0; /* osize is a type tag when NULL */
    if (nsize == 0) {
        if (old > SIO_POOL_MAX) free(ptr);
        else if (ptr) sio_pool_free(&sb->pool, ptr, old);
        account(sb, old, 0);
        return NULL;
    }
    if (nsize > old && !admit(sb, ptr, osize, nsize, nsize - old)) return NULL;
    void *p = pool_realloc(sb, ptr, old, nsize);
    if (p == NULL) return NULL;
    if (nsize > old) {
        sb->refused.set = 0;
        sb->nallocs++;
        sb->alloc_bytes += nsize;
    }
    account(sb, old, nsize);
    return p;
}

/* --- logging --------------------------------------------------------------*/

/* Default sink: the process's one writer of log lines (secrets redacted,
 * one write(2) per line, so lines from several workers do not interleave). */
static void log_stderr(void *ud, const char *line, size_t len) {
    (void)ud;
    sio_log_write(line, len);
}

void sio_sandbox_log_line(sio_sandbox *sb, const char *line, size_t len) {
    sb->log(sb->log_ud, line, len);
}

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
    sb->log = cfg->log ? cfg->log : log_stderr;
    sb->log_ud = cfg->log ? cfg->log_ud : NULL;
    if (cfg->lua_dir != NULL) {
        sb->lua_dir = realpath(cfg->lua_dir, NULL);
        if (sb->lua_dir == NULL)
            return sio_err_set(err, SIO_E_INVAL, "lua_dir '%s': %s", cfg->lua_dir,
                               strerror(errno));
    }
    return 0;
}

/* Protected part of creation: libraries, safe globals, preload. */
static int setup_state(lua_State *L) {
    luaL_openlibs(L);
    sio_sandbox_build_safe(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_sio_host);
    lua_setfield(L, -2, "sio.host");
    lua_pushcfunction(L, luaopen_sio_json);
    lua_setfield(L, -2, "sio.json");
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
    sb->L = lua_newstate(sb_alloc, sb);
    if (sb->L == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "sandbox: cannot create lua state");
        goto fail;
    }
    memset(lua_getextraspace(sb->L), 0, LUA_EXTRASPACE); /* no exec */
    lua_pushcfunction(sb->L, setup_state);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
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

sio_sandbox *sio_sandbox_of(lua_State *L) {
    void *ud = NULL;
    if (lua_getallocf(L, &ud) != sb_alloc) return NULL;
    return ud;
}

size_t sio_sandbox_mem_used(const sio_sandbox *sb) { return sb->used; }

void sio_sandbox_alloc_stats(const sio_sandbox *sb, uint64_t *allocs, uint64_t *bytes) {
    *allocs = sb->nallocs;
    *bytes = sb->alloc_bytes;
}

const char *sio_sandbox_lua_dir(const sio_sandbox *sb) { return sb->lua_dir; }
