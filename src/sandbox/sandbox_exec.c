/*
 * sandbox_exec.c - executions: per-command budgets, the count hook, the
 * limit error, and binding coroutines to an execution.
 *
 * A thread's extra space holds a handle (slot index + generation) rather
 * than a pointer, so a coroutine that outlives its exec (stashed somewhere
 * by user code) can never reach freed memory: it simply finds no exec and
 * is charged to whatever exec is entered when it runs.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "sandbox_int.h"

#define HALF_BITS (sizeof(uintptr_t) * 4)
#define GEN_MASK (((uintptr_t)1 << HALF_BITS) - 1)

uint64_t sio_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *sio_kill_message(sio_kill k) {
    switch (k) {
    case SIO_KILL_INSTR: return "instruction limit exceeded";
    case SIO_KILL_MEMORY: return "memory limit exceeded";
    case SIO_KILL_DEADLINE: return "deadline exceeded";
    default: return NULL;
    }
}

/* --- handles --------------------------------------------------------------*/

static uintptr_t thread_handle(lua_State *L) {
    uintptr_t h;
    memcpy(&h, lua_getextraspace(L), sizeof h);
    return h;
}

static void set_thread_handle(lua_State *L, uintptr_t h) {
    memcpy(lua_getextraspace(L), &h, sizeof h);
}

sio_exec *sio_exec_lookup(sio_sandbox *sb, uintptr_t h) {
    if (h == 0) return NULL;
    size_t idx = (size_t)(h >> HALF_BITS) - 1;
    if (idx >= sb->nslots) return NULL;
    sio_slot *s = &sb->slots[idx];
    return (s->ex != NULL && (s->gen & GEN_MASK) == (h & GEN_MASK)) ? s->ex : NULL;
}

/* Puts ex in a free slot (growing the array when full) and sets its
 * handle.  Returns -1 when out of memory. */
static int slot_take(sio_sandbox *sb, sio_exec *ex) {
    size_t i = 0;
    while (i < sb->nslots && sb->slots[i].ex != NULL) i++;
    if (i == sb->nslots) {
        size_t n = sb->nslots ? sb->nslots * 2 : 16;
        if (n >= ((size_t)1 << (HALF_BITS - 1))) return -1;
        sio_slot *s = realloc(sb->slots, n * sizeof *s);
        if (s == NULL) return -1;
        memset(s + sb->nslots, 0, (n - sb->nslots) * sizeof *s);
        sb->slots = s;
        sb->nslots = n;
    }
    sio_slot *s = &sb->slots[i];
    s->gen = (s->gen + 1) & GEN_MASK;
    if (s->gen == 0) s->gen = 1;
    s->ex = ex;
    ex->handle = ((uintptr_t)(i + 1) << HALF_BITS) | s->gen;
    return 0;
}

/* --- lifecycle ------------------------------------------------------------*/

sio_exec *sio_exec_create(sio_sandbox *sb, const sio_limits *limits, sio_err *err) {
    sio_exec *ex = calloc(1, sizeof *ex);
    if (ex == NULL || slot_take(sb, ex) != 0) {
        free(ex);
        sio_err_set(err, SIO_E_NOMEM, "exec: out of memory");
        return NULL;
    }
    ex->sb = sb;
    ex->armed = 1;
    sio_limits l = limits ? *limits : sb->defaults;
    ex->mem_limit = l.mem_limit_bytes ? l.mem_limit_bytes : sb->defaults.mem_limit_bytes;
    ex->instr_limit = l.instr_limit ? l.instr_limit : sb->defaults.instr_limit;
    uint64_t ms = l.deadline_ms ? l.deadline_ms : sb->defaults.deadline_ms;
    if (ms != 0)
        ex->deadline_ns = ms > UINT64_MAX / 2000000u ? UINT64_MAX
                                                     : sio_now_ns() + ms * 1000000u;
    return ex;
}

void sio_exec_destroy(sio_exec *ex) {
    if (ex == NULL) return;
    sio_sandbox *sb = ex->sb;
    while (sb->cur == ex) sb->cur = ex->prev; /* defensive: still entered */
    size_t idx = (size_t)(ex->handle >> HALF_BITS) - 1;
    sb->slots[idx].ex = NULL;
    free(ex);
}

void sio_exec_enter(sio_exec *ex) {
    ex->prev = ex->sb->cur;
    ex->sb->cur = ex;
}

void sio_exec_leave(sio_exec *ex) {
    if (ex->sb->cur == ex) ex->sb->cur = ex->prev;
    ex->prev = NULL;
}

void sio_exec_set_data(sio_exec *ex, void *data) { ex->data = data; }
void *sio_exec_data(const sio_exec *ex) { return ex->data; }
uint64_t sio_exec_instructions(const sio_exec *ex) { return ex->instr; }
size_t sio_exec_mem_used(const sio_exec *ex) { return ex->mem_used; }
size_t sio_exec_mem_peak(const sio_exec *ex) { return ex->mem_peak; }
sio_kill sio_exec_kill_reason(const sio_exec *ex) { return ex->killed; }

/* --- limits ---------------------------------------------------------------*/

sio_exec *sio_exec_of(lua_State *L) {
    sio_sandbox *sb = sio_sandbox_of(L);
    if (sb == NULL) return NULL;
    sio_exec *ex = sio_exec_lookup(sb, thread_handle(L));
    return ex != NULL ? ex : sb->cur;
}

void sio_push_limit_error(lua_State *L, const sio_exec *ex) {
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "permanent");
    lua_setfield(L, -2, "class");
    lua_pushstring(L, sio_kill_message(ex->killed));
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "limit");
    if (ex->step[0] != '\0') {
        lua_pushstring(L, ex->step);
        lua_setfield(L, -2, "step");
    }
}

void sio_exec_set_step(sio_exec *ex, const char *step) {
    if (ex->killed != SIO_KILL_NONE) return; /* keep the step the breach hit */
    size_t n = step ? strlen(step) : 0;
    if (n >= sizeof ex->step) n = sizeof ex->step - 1;
    memcpy(ex->step, step ? step : "", n);
    ex->step[n] = '\0';
}

const char *sio_exec_step(const sio_exec *ex) { return ex->step; }

/* Adds n instructions to ex and kills it when a limit is crossed.  The
 * clock is read once per SIO_HOOK_EVERY instructions, as the hook does,
 * not on every small charge (JSON charges each value). */
static void spend(sio_exec *ex, uint64_t n) {
    uint64_t before = ex->instr;
    ex->instr += n;
    if (ex->killed != SIO_KILL_NONE) return;
    if (ex->instr > ex->instr_limit)
        ex->killed = SIO_KILL_INSTR;
    else if (ex->deadline_ns != 0 && before / SIO_HOOK_EVERY != ex->instr / SIO_HOOK_EVERY &&
             sio_now_ns() >= ex->deadline_ns)
        ex->killed = SIO_KILL_DEADLINE;
}

void sio_exec_charge(lua_State *L, uint64_t n) {
    sio_exec *ex = sio_exec_of(L);
    if (ex == NULL) return;
    spend(ex, n);
    if (ex->killed != SIO_KILL_NONE) {
        sio_push_limit_error(L, ex);
        lua_error(L);
    }
}

int sio_exec_spend_on(sio_exec *ex, uint64_t n) {
    if (ex == NULL) return 0;
    spend(ex, n);
    return ex->killed != SIO_KILL_NONE ? -1 : 0;
}

int sio_exec_spend(lua_State *L, uint64_t n) {
    return sio_exec_spend_on(sio_exec_of(L), n);
}

/* Whether bytes more fit under ex's memory limit. */
static int mem_fits(const sio_exec *ex, size_t bytes) {
    return ex->mem_used <= ex->mem_limit && bytes <= ex->mem_limit - ex->mem_used;
}

int sio_exec_mem_room_on(sio_exec *ex, lua_State *L, size_t bytes) {
    if (ex == NULL) return 0;
    if (ex->killed != SIO_KILL_NONE) return -1;
    if (!mem_fits(ex, bytes)) {
        lua_gc(L, LUA_GCCOLLECT, 0); /* as Lua's emergency collection */
        if (!mem_fits(ex, bytes)) {
            ex->killed = SIO_KILL_MEMORY;
            return -1;
        }
    }
    return 0;
}

int sio_exec_mem_charge_on(sio_exec *ex, lua_State *L, size_t bytes) {
    if (ex == NULL) return 0;
    if (sio_exec_mem_room_on(ex, L, bytes) != 0) return -1;
    ex->mem_used += bytes;
    if (ex->mem_used > ex->mem_peak) ex->mem_peak = ex->mem_used;
    spend(ex, bytes / SIO_BYTES_PER_INSTR);
    return ex->killed != SIO_KILL_NONE ? -1 : 0;
}

int sio_exec_mem_charge(lua_State *L, size_t bytes) {
    return sio_exec_mem_charge_on(sio_exec_of(L), L, bytes);
}

void sio_exec_mem_release_on(sio_exec *ex, size_t bytes) {
    if (ex != NULL) ex->mem_used -= bytes < ex->mem_used ? bytes : ex->mem_used;
}

void sio_exec_mem_release(lua_State *L, size_t bytes) {
    sio_exec_mem_release_on(sio_exec_of(L), bytes);
}

/* The count hook: charges the period and, once the exec is killed, raises
 * on every call, so a pcall that caught the first error only buys the next
 * SIO_HOOK_EVERY instructions. */
static void count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sio_exec_charge(L, SIO_HOOK_EVERY);
}

static int bind_check(sio_exec *ex, lua_State *co, sio_err *err) {
    if (sio_sandbox_of(co) != ex->sb || co == ex->sb->L)
        return sio_err_set(err, SIO_E_INVAL, "exec: cannot bind this thread");
    set_thread_handle(co, ex->handle);
    return 0;
}

static void hook_on(lua_State *co) {
    if (lua_gethook(co) != count_hook) lua_sethook(co, count_hook, LUA_MASKCOUNT, SIO_HOOK_EVERY);
}

int sio_exec_bind(sio_exec *ex, lua_State *co, sio_err *err) {
    if (bind_check(ex, co, err) != 0) return -1;
    ex->armed = 1;
    lua_sethook(co, count_hook, LUA_MASKCOUNT, SIO_HOOK_EVERY);
    return 0;
}

int sio_exec_bind_unarmed(sio_exec *ex, lua_State *co, sio_err *err) {
    if (bind_check(ex, co, err) != 0) return -1;
    ex->armed = 0;
    ex->main = co;
    lua_sethook(co, NULL, 0, 0);
    return 0;
}

void sio_exec_arm(sio_exec *ex, lua_State *L) {
    if (!ex->armed) {
        ex->armed = 1;
        spend(ex, SIO_HOOK_EVERY); /* see sandbox.h; the hook raises if this killed ex */
    }
    if (ex->main != NULL) hook_on(ex->main);
    if (L != ex->sb->L) hook_on(L); /* never the state's own thread */
}

void sio_exec_disarm(sio_exec *ex, lua_State *L, lua_State *co) {
    if (!ex->armed || ex->tainted || ex->killed != SIO_KILL_NONE || ex->main == NULL) return;
    ex->armed = 0;
    lua_sethook(ex->main, NULL, 0, 0);
    if (L != ex->sb->L) lua_sethook(L, NULL, 0, 0);
    if (co != NULL && co != ex->sb->L) lua_sethook(co, NULL, 0, 0);
}

void sio_exec_taint(sio_exec *ex) { ex->tainted = 1; }

void sio_exec_arm_thread(sio_exec *ex, lua_State *co) {
    if (ex->armed && co != ex->sb->L) hook_on(co);
}

int sio_exec_armed(const sio_exec *ex) { return ex->armed; }

void sio_exec_inherit(lua_State *L, lua_State *co) {
    sio_exec *ex = sio_exec_of(L);
    if (ex != NULL) {
        set_thread_handle(co, ex->handle);
        if (ex->armed) lua_sethook(co, count_hook, LUA_MASKCOUNT, SIO_HOOK_EVERY);
    } else {
        set_thread_handle(co, 0);
    }
}

/* --- resuming -------------------------------------------------------------*/

static int push_error_cf(lua_State *L) {
    sio_push_limit_error(L, lua_touserdata(L, 1));
    return 1;
}

int sio_exec_push_error(sio_exec *ex, lua_State *L) {
    if (ex->killed == SIO_KILL_NONE || !lua_checkstack(L, 3)) return -1;
    lua_pushcfunction(L, push_error_cf);
    lua_pushlightuserdata(L, ex);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int sio_exec_resume(sio_exec *ex, lua_State *co, lua_State *from, int nargs,
                    int *nres) {
    sio_exec_enter(ex);
    int st = lua_resume(co, from, nargs, nres);
    sio_exec_leave(ex);
    if (st != LUA_OK && st != LUA_YIELD && ex->killed != SIO_KILL_NONE &&
        from != NULL && sio_exec_push_error(ex, from) == 0) {
        lua_pop(co, 1);
        lua_xmove(from, co, 1);
    }
    return st;
}
