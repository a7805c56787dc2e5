/*
 * sandbox.h - a worker's lua_State with a sandbox for user code and
 * per-execution limits.
 *
 * One sio_sandbox owns one lua_State (not thread-safe: one per worker).  The
 * state's real _G has the full standard library and belongs to the TRUSTED
 * engine.  User code (guards, templates, step code, modules under lua_dir)
 * runs with _ENV = a fresh environment from host.safe_env() (see luahost.h),
 * whose __index is a frozen table of safe globals:
 *
 *   string (no dump; find/match/gmatch/gsub/rep replaced by budgeted
 *   versions), table (insert/remove/move/concat/sort budgeted), math, utf8,
 *   coroutine (create/wrap inherit the running execution's limits),
 *   os.time/clock/date,
 *   assert error ipairs next pairs pcall xpcall select tonumber tostring type
 *   rawequal rawlen rawget rawset getmetatable, setmetatable (no __gc),
 *   print (-> host log), and per environment load (text only, binds that
 *   environment) and require (only <lua_dir>/?.lua and <lua_dir>/?/init.lua).
 *
 * Library tables are shared by every command, so they are read-only proxies:
 * any write, rawset included, raises "attempt to modify read-only table".
 * The string metatable is protected (getmetatable('') == false) and its
 * __index is the safe string table.
 *
 * Limits.  An execution (sio_exec) is one command's budget: memory (bytes
 * charged by the counting allocator while the exec is entered), instructions
 * (a count hook every SIO_HOOK_EVERY instructions, which also checks the
 * deadline; a driver whose own code is trusted may leave it off until
 * the first user code, see sio_exec_bind_unarmed) and a wall-clock
 * deadline.  C functions that can loop for long
 * charge the same budget: pattern matching per step, table.insert/remove/
 * move/concat per element, table.sort n log2 n up front, JSON conversion
 * (luajson.h) per value and per byte, and every allocation one
 * instruction per 16 bytes (C
 * copying, e.g. s = s .. x in a loop, is proportional to what it
 * allocates).  Once tripped the exec is killed and stays killed: the hook
 * raises the limit error on every later call, and the safe pcall, xpcall,
 * coroutine.resume/wrap/close and load re-raise it as soon as they return,
 * so user code cannot swallow it.  The error value is
 * {class="permanent", message=<sio_kill_message>, limit=true, step=<the
 * exec's step, when set>}.  A memory
 * refusal itself surfaces as Lua's "not enough memory" (Lua raises it, not
 * us); sio_exec_resume replaces it with the table.  A driver should still
 * trust sio_exec_kill_reason over the error value.
 */
#ifndef SIO_SANDBOX_H
#define SIO_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "log.h"
#include "sio_err.h"

struct luaL_Reg;

#define SIO_DEFAULT_MEM_LIMIT ((size_t)64 << 20)       /* 64 MiB per exec */
#define SIO_DEFAULT_INSTR_LIMIT ((uint64_t)100000000)  /* 100M instructions */
#define SIO_DEFAULT_STATE_CAP ((size_t)1 << 30)        /* 1 GiB per state */
#define SIO_HOOK_EVERY 1000                            /* count hook period */
#define SIO_STEP_MAX 128                               /* sio_exec_set_step, with NUL */

typedef struct sio_sandbox sio_sandbox;
typedef struct sio_exec sio_exec;

/* Per-execution limits.  0 in a field means "the sandbox default"; for
 * deadline_ms the sandbox default itself may be 0 = no deadline.  Use
 * SIZE_MAX / UINT64_MAX for "unlimited". */
typedef struct sio_limits {
    size_t mem_limit_bytes;
    uint64_t instr_limit;
    uint64_t deadline_ms; /* relative to sio_exec_create */
} sio_limits;


typedef struct sio_sandbox_cfg {
    const char *lua_dir;  /* project's lua/ folder or NULL; copied */
    sio_limits limits;    /* defaults for sio_exec_create */
    size_t state_mem_cap; /* whole-state cap; 0 = SIO_DEFAULT_STATE_CAP */
    /* Where host.log and print lines go (log.h), called on the state's
     * thread; must not call back into the state.  NULL = stderr. */
    sio_log_fn log;
    void *log_ud;
    /* More modules the trusted engine may require besides sio.json, e.g.
     * {{"sio.host", luaopen_sio_host}, {NULL, NULL}} (luahost.h); NULL =
     * none.  Read during the call only. */
    const struct luaL_Reg *preload;
} sio_sandbox_cfg;

typedef enum sio_kill {
    SIO_KILL_NONE = 0,
    SIO_KILL_INSTR,
    SIO_KILL_MEMORY,
    SIO_KILL_DEADLINE,
} sio_kill;

/* Creates the state, the safe globals and package.preload["sio.json"]
 * (luajson.h) plus cfg->preload, for the trusted engine.
 * cfg may be NULL (all defaults).  Returns NULL and fills err on failure
 * (INVAL for a bad lua_dir, NOMEM).  The caller owns the result. */
sio_sandbox *sio_sandbox_create(const sio_sandbox_cfg *cfg, sio_err *err);

/* Closes the state and frees everything, including execs still alive
 * (their pointers become invalid).  sb may be NULL. */
void sio_sandbox_destroy(sio_sandbox *sb);

/* The state; owned by sb, valid until sio_sandbox_destroy. */
lua_State *sio_sandbox_state(sio_sandbox *sb);

/* The sandbox owning L (any thread of its state), or NULL when L was not
 * created by sio_sandbox_create. */
sio_sandbox *sio_sandbox_of(lua_State *L);

/* Bytes currently allocated by the whole state. */
size_t sio_sandbox_mem_used(const sio_sandbox *sb);

/* Allocations the state has made since its creation: *allocs = the
 * blocks allocated or grown (a growth counts once, with its new size),
 * *bytes = the sum of their sizes.  For measuring (bench/engine.c); read
 * on the state's thread. */
void sio_sandbox_alloc_stats(const sio_sandbox *sb, uint64_t *allocs, uint64_t *bytes);

/* The configured lua_dir (resolved to an absolute path) or NULL; owned by
 * sb. */
const char *sio_sandbox_lua_dir(const sio_sandbox *sb);

/* --- executions ----------------------------------------------------------*/

/* A new execution with limits (NULL = sandbox defaults); its deadline clock
 * starts now.  The caller owns it; destroy it before the sandbox. */
sio_exec *sio_exec_create(sio_sandbox *sb, const sio_limits *limits,
                          sio_err *err);

/* Frees ex.  Threads still bound to it become unbound (they hold a handle
 * with a generation, never a dangling pointer).  ex may be NULL. */
void sio_exec_destroy(sio_exec *ex);

/* Binds thread co to ex: stores ex's handle in co's extra space and sets
 * the count hook (ex is armed).  Coroutines later created from co by the
 * limit-aware create/wrap inherit both.  Returns 0, or -1 (INVAL) when co is the main
 * thread or belongs to another state. */
int sio_exec_bind(sio_exec *ex, lua_State *co, sio_err *err);

/* Binds thread co to ex as sio_exec_bind does, but with the count hook off:
 * for a driver whose code on co is trusted (the engine) and arms ex
 * (sio_exec_arm, host.exec_arm) before the first user code of the
 * execution runs.  Until then no instruction of co is counted (trusted
 * code is bounded by its input) and no deadline is checked while code
 * runs; memory is charged as always, and C work charges the budget.  A
 * thread reused from an earlier execution loses that one's hook.  co
 * must stay alive (anchored) while ex lives.  Returns as sio_exec_bind. */
int sio_exec_bind_unarmed(sio_exec *ex, lua_State *co, sio_err *err);

/* Arms ex: the count hook goes on L (a thread running for ex) and on the
 * thread bound by sio_exec_bind_unarmed, and every coroutine created for
 * ex while it is armed inherits it.  A thread of ex created before (a
 * suspended coroutine) gets it from sio_exec_arm_thread before it runs
 * again.  Execs are created armed; arming an armed exec changes nothing.
 * Arming an unarmed one charges SIO_HOOK_EVERY instructions up front:
 * a hook set anew counts its first period from zero, so without the
 * charge user code armed and disarmed repeatedly would run up to a period
 * each time uncounted (the charge can only overcount).
 *
 * sio_exec_disarm takes the hook off L, co (may be NULL) and the bound
 * thread again, once user code has returned to the driver - unless user
 * code of ex ever set a metatable (the safe setmetatable taints ex): its
 * metamethods could then run inside trusted code, so ex stays armed for
 * good; also when ex was bound armed or is killed.  Without metatables
 * nothing user code leaves behind can run code of its own in the
 * driver's (tables, strings, functions the engine never calls). */
void sio_exec_arm(sio_exec *ex, lua_State *L);
void sio_exec_arm_thread(sio_exec *ex, lua_State *co);
void sio_exec_disarm(sio_exec *ex, lua_State *L, lua_State *co);
int sio_exec_armed(const sio_exec *ex);

/* Makes ex the execution charged for allocations until sio_exec_leave.
 * Pairs nest (leave restores the previous one).  Call around every
 * lua_resume of a command coroutine. */
void sio_exec_enter(sio_exec *ex);
void sio_exec_leave(sio_exec *ex);

/* enter + lua_resume(co, from, nargs, nres) + leave.  When the resume ends
 * in an error and ex was killed, the error value on co is replaced by the
 * limit error table (built on `from`, which must then be a normal thread,
 * typically the main thread; from == NULL leaves the value as is).
 * Returns lua_resume's status. */
int sio_exec_resume(sio_exec *ex, lua_State *co, lua_State *from, int nargs,
                    int *nres);

/* Pushes ex's limit error table onto L (a normal thread) and returns 0, or
 * pushes nothing and returns -1 when ex is not killed or memory is out. */
int sio_exec_push_error(sio_exec *ex, lua_State *L);

/* The execution charged on thread L: the one bound to L, else the entered
 * one, else NULL. */
sio_exec *sio_exec_of(lua_State *L);

/* An opaque pointer the owner attaches to ex (e.g. its command); not
 * owned, NULL until set. */
void sio_exec_set_data(sio_exec *ex, void *data);
void *sio_exec_data(const sio_exec *ex);

/* The workflow step whose code ex runs now (host.exec_step, set by the
 * engine as it switches steps), so a limit breach names it even though no
 * Lua code of the execution can run any more.  step NULL or "" = none;
 * copied, cut to SIO_STEP_MAX - 1 bytes; ignored once ex is killed.  sio_exec_step returns "" for
 * none; owned by ex. */
void sio_exec_set_step(sio_exec *ex, const char *step);
const char *sio_exec_step(const sio_exec *ex);


/* --- C work on behalf of an execution ------------------------------------
 *
 * C code that does work proportional to user input outside the VM (JSON
 * conversion, buffers) charges the execution running on thread L: the one
 * bound to L, else the entered one; without one these do nothing.  None of
 * them raises, so the caller can free what it holds first and then raise
 * the limit error (see luajson.c). */

/* Charges n instructions.  Returns 0, or -1 when the exec is (or becomes)
 * killed. */
int sio_exec_spend(lua_State *L, uint64_t n);

/* Charges bytes of memory held outside the Lua allocator (a C buffer, a
 * jansson tree) to the exec's memory limit, plus one instruction per
 * SIO_BYTES_PER_INSTR bytes, as Lua's own allocations are charged.  When
 * they do not fit, a full collection runs first (garbage never kills); if
 * they still do not fit the exec is killed (SIO_KILL_MEMORY) and nothing is
 * charged.  Returns 0, or -1 when the exec is killed. */
int sio_exec_mem_charge(lua_State *L, size_t bytes);

/* Gives back bytes charged by sio_exec_mem_charge (once freed). */
void sio_exec_mem_release(lua_State *L, size_t bytes);

uint64_t sio_exec_instructions(const sio_exec *ex); /* approx., +-1000 */
size_t sio_exec_mem_used(const sio_exec *ex);       /* net bytes charged */
size_t sio_exec_mem_peak(const sio_exec *ex);
sio_kill sio_exec_kill_reason(const sio_exec *ex);

/* "instruction limit exceeded" | "memory limit exceeded" |
 * "deadline exceeded", or NULL for SIO_KILL_NONE.  Static storage. */
const char *sio_kill_message(sio_kill k);

#endif
