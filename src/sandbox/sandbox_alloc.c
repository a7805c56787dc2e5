/*
 * sandbox_alloc.c - the counting allocator of every sandbox state: a small-
 * block pool (sandbox_pool.h), the whole-state cap, and each allocation
 * charged to the execution entered (its memory limit, and instructions for
 * what it copies).  The state's allocator is also how a lua_State is known
 * to be a sandbox's (sio_sandbox_of).
 */
#include <stdlib.h>
#include <string.h>

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

/* The lua_Alloc of every sandbox state: malloc/realloc/free plus
 * accounting.  Shrinking never fails, as Lua requires. */
void *sio_sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
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

sio_sandbox *sio_sandbox_of(lua_State *L) {
    void *ud = NULL;
    if (lua_getallocf(L, &ud) != sio_sandbox_alloc) return NULL;
    return ud;
}
