/*
 * luahost.h - the `sio.host` Lua module: what the trusted engine calls.
 *
 * sio_sandbox_create registers it in package.preload, so the engine does
 * `local host = require "sio.host"`.  Opening it in a state not created by
 * sio_sandbox_create raises an error.  Functions (all argument-checked):
 *
 *   host.compile(src, chunkname [, env]) -> fn | nil, msg
 *       Text-only compile.  chunkname is used verbatim when it starts with
 *       '=' or '@', else "=" .. chunkname, so messages read "name:12: ...".
 *       The chunk's _ENV upvalue is env when given, else nil: a source that
 *       does not bind `local _ENV = ...` itself sees no globals at all
 *       (never the trusted _G).
 *   host.safe_env([preload [, modules]]) -> env
 *       A fresh table: _G = env, require/load bound to env, metatable
 *       {__index = frozen safe globals, __metatable = false}.  preload maps
 *       module names to values env's require returns first (e.g. {sio=sio}).
 *       modules (a table the caller keeps, one per workflow-set version)
 *       caches the compiled module files env's require finds, so envs
 *       sharing it compile each file once; each env still runs its own
 *       instance of the module (see sandbox_require.c).
 *   host.coroutine_create(fn) -> thread
 *       A coroutine bound to the running coroutine's execution (limits).
 *   host.now() -> ms (float, monotonic)   host.time() -> s (float, wall)
 *   host.uuid() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (v4, xoshiro256**
 *       seeded from getrandom; unique, not secret)
 *   host.log(level, msg [, fields]) -> nothing
 *       One JSON line {"ts":<s>,"level":..,"msg":..,<fields>} to the
 *       sandbox's log sink (stderr by default).  Fields are read raw (no
 *       metamethods run); nested tables become JSON up to depth 8.
 *   host.exec_killed() -> false | {class="permanent", message=..., limit=true[, step=...]}
 *       for the running coroutine's execution.
 *   host.exec_step(id | nil)
 *       Names the workflow step whose code runs now in the running
 *       coroutine's execution (see sio_exec_set_step); nil = none.
 *   host.suggest(word, names) -> {name, ...}
 *       Up to 3 of names (a list of strings) close to word, closest first
 *       (sio_suggest: "did you mean").
 */
#ifndef SIO_LUAHOST_H
#define SIO_LUAHOST_H

#include <lua.h>

/* lua_CFunction: pushes the host table. */
int luaopen_sio_host(lua_State *L);

/* lua_CFunction host.suggest(word, names) -> list; also the harness's
 * sio_core.suggest, so both ask the same question the same way. */
int sio_host_suggest(lua_State *L);

#endif
