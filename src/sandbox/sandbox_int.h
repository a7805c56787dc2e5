/*
 * sandbox_int.h - what the sandbox's own files (sandbox*.c, luajson.c,
 * luahost.c) share.  Not a public header.  They call one another
 * downwards only: sandbox.c (create) and luahost.c (the host module) on
 * top; then sandbox_lib.c (safe globals) over sandbox_require.c and
 * sandbox_pattern.c; luajson.c and sandbox_log.c; sandbox_exec.c; and
 * sandbox_alloc.c with sandbox_pool.c at the bottom.
 */
#ifndef SIO_SANDBOX_INT_H
#define SIO_SANDBOX_INT_H

#include <stdint.h>

#include <lua.h>

#include "sandbox.h"
#include "sandbox_pool.h"

/* Slack a killed exec may still allocate, so that the limit error table can
 * be built after a memory kill. */
#define SIO_KILL_SLACK ((size_t)64 << 10)

/* Allocated bytes that count as one instruction of work. */
#define SIO_BYTES_PER_INSTR 16

struct sio_exec {
    sio_sandbox *sb;
    uintptr_t handle;     /* what bound threads store in their extra space */
    size_t mem_limit;
    uint64_t instr_limit;
    uint64_t deadline_ns; /* monotonic; 0 = none */
    size_t mem_used, mem_peak;
    uint64_t instr;
    sio_kill killed;
    int armed;            /* the count hook is on (sio_exec_arm) */
    int tainted;          /* user code set a metatable: armed for good */
    lua_State *main;      /* the thread bound unarmed, for sio_exec_arm */
    sio_exec *prev;       /* entered before this one (enter/leave nest) */
    void *data;           /* the owner's, see sio_exec_set_data */
    char step[SIO_STEP_MAX]; /* sio_exec_set_step; "" = none */
};

/* An exec slot: threads refer to execs by (slot index, generation), so a
 * thread outliving its exec finds nothing instead of freed memory. */
typedef struct sio_slot {
    sio_exec *ex;
    uintptr_t gen;
} sio_slot;

struct sio_sandbox {
    lua_State *L;
    char *lua_dir;
    sio_limits defaults;
    size_t cap, used;
    uint64_t nallocs;     /* blocks allocated or grown, ever (stats) */
    uint64_t alloc_bytes; /* their sizes, summed */
    sio_exec *cur;        /* exec charged for allocations */
    struct {              /* last refused growth, to spot Lua's retry */
        void *ptr;
        size_t osize, nsize;
        int set;
    } refused;
    sio_slot *slots;
    size_t nslots;
    sio_log_fn log;
    void *log_ud;
    uint64_t rng[4];      /* xoshiro256** state for host.uuid */
    int ref_safe_g;       /* registry refs */
    int ref_env_mt;
    int ref_frozen;       /* proxy -> backing table */
    int ref_load;         /* the standard load, wrapped per env */
    sio_pool pool;        /* small blocks (sandbox_pool.h) */
};

/* Monotonic clock in nanoseconds. */
uint64_t sio_now_ns(void);

/* Charges n instructions of C work to L's exec and raises the limit error
 * when the exec is (or becomes) killed.  No-op without an exec. */
void sio_exec_charge(lua_State *L, uint64_t n);

/* sio_exec_spend / sio_exec_mem_charge / sio_exec_mem_release (sandbox.h)
 * for an exec already looked up (ex may be NULL: nothing is charged), for
 * C code that charges many small amounts; L is the running thread. */
int sio_exec_spend_on(sio_exec *ex, uint64_t n);
/* Makes sure bytes more fit under ex's memory limit before C code asks the
 * allocator for them (a full collection first if needed); when they do
 * not, kills ex and returns -1.  Charges nothing. */
int sio_exec_mem_room_on(sio_exec *ex, lua_State *L, size_t bytes);
int sio_exec_mem_charge_on(sio_exec *ex, lua_State *L, size_t bytes);
void sio_exec_mem_release_on(sio_exec *ex, size_t bytes);

/* User code set a metatable (the safe setmetatable): from now on values
 * with user metamethods may reach trusted code, so ex stays armed once
 * armed (sio_exec_disarm does nothing). */
void sio_exec_taint(sio_exec *ex);

/* Copies L's exec binding (or the entered exec) onto new thread co. */
void sio_exec_inherit(lua_State *L, lua_State *co);

/* Looks up a handle; NULL when stale or 0. */
sio_exec *sio_exec_lookup(sio_sandbox *sb, uintptr_t handle);

/* Pushes {class="permanent", message=..., limit=true[, step=...]} for
 * ex's kill.  May raise. */
void sio_push_limit_error(lua_State *L, const sio_exec *ex);

/* Builds the frozen safe globals, the env metatable and the string
 * metatable protection.  Runs inside a protected call at creation; needs
 * the standard libraries opened.  (sandbox_lib.c) */
int sio_sandbox_build_safe(lua_State *L);

/* Pushes a fresh user environment; preload_idx (0 = none) is a table of
 * module name -> value that the env's require returns first; modules_idx
 * (0 = none) a table of compiled module files shared by envs (see
 * sandbox_require.c). */
void sio_sandbox_push_env(lua_State *L, int preload_idx, int modules_idx);

/* Limit-aware coroutine.create: pushes a new thread running the function at
 * index 1, bound like the running thread.  (sandbox_lib.c) */
int sio_sandbox_cocreate(lua_State *L);

/* The environment-bound require and load closures (sandbox_require.c);
 * upvalue 1 is the env; require also has 2 = preload, 3 = cache (the env's
 * module instances), 4 = the shared compiled modules (or nil). */
int sio_env_require(lua_State *L);
int sio_env_load(lua_State *L);

/* Writes one JSON log line {"ts","level","msg",...fields} through the
 * sandbox's sink (log.h's route); fields_idx 0 = none.  Never raises: a
 * line that cannot be built is dropped.  (sandbox_log.c) */
void sio_sandbox_log(lua_State *L, const char *level, const char *msg,
                     size_t msglen, int fields_idx);

/* The lua_Alloc of every sandbox state (ud = the sandbox).  (sandbox_alloc.c) */
void *sio_sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Sets the host contract's ops (timer, http, ..., now, time; luahost.h)
 * into the table at tidx, over the state's installed backend.  May raise.
 * (luahost_ops.c) */
void sio_host_push_ops(lua_State *L, int tidx);

/* Budgeted string.find/match/gmatch/gsub (sandbox_pattern.c). */
int sio_str_find(lua_State *L);
int sio_str_match(lua_State *L);
int sio_str_gmatch(lua_State *L);
int sio_str_gsub(lua_State *L);

#endif
