/*
 * luajson.h - Lua values <-> JSON values (jansson), for the host: command
 * attrs going into the engine, results and step outputs coming out.  Texts
 * are read and written by src/core/json.h; this is only the tree mapping.
 *
 *   JSON          Lua
 *   object        table with string keys
 *   array         sequence 1..n
 *   null          sio_lua_null (a light userdata NULL: cjson.null compares equal)
 *   true/false    boolean
 *   integer       integer (exact, 64-bit)
 *   real          float
 *   string        string (may hold NUL bytes)
 *
 * Lua to JSON: a table whose keys are exactly 1..n (n >= 1) is an array,
 * any other table an object (integer and float keys become their decimal
 * text; other key types are an error); an empty table is {}.  NaN and
 * infinities, functions, threads and full userdata are errors; strings that
 * are not valid UTF-8 get U+FFFD for each bad byte, and so does a NUL byte
 * in a key (jansson cannot read "\u0000" in a key back; values keep it).  Nesting deeper than
 * SIO_LUAJSON_MAX_DEPTH is an error (which also stops cycles).
 *
 * Cost.  Both directions charge the work to L's execution (one instruction
 * per value plus one per 16 bytes of string), so a limit breach raises the
 * limit error like any other user-caused work.
 */
#ifndef SIO_LUAJSON_H
#define SIO_LUAJSON_H

#include <jansson.h>
#include <lua.h>

#include "sio_err.h"

#define SIO_LUAJSON_MAX_DEPTH 200

/* Pushes v (borrowed) onto L.  May raise a Lua error (memory, limits):
 * call it where a raise is caught (a protected call or a coroutine). */
void sio_lua_push_json(lua_State *L, const json_t *v);

/* Converts the value at idx.  Returns a new reference the caller owns, or
 * NULL with err set (SIO_E_INVAL naming the path, e.g. "result.items[2]:
 * cannot encode a function").  May raise a Lua error for limit breaches. */
json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err);

#endif
