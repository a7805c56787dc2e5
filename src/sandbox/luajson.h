/*
 * luajson.h - Lua values <-> JSON values (jansson), and `sio.json`, the one
 * JSON codec of every Lua state the host creates: the trusted engine
 * (`require "sio.json"`, preloaded by sio_sandbox_create), user code
 * (`sio.json`, the same functions) and the busted harness (sio_core.json).
 * Texts are read and written by src/core/json.h (strict reading, compact
 * writing); this is the tree mapping.
 *
 *   JSON          Lua
 *   object        table with string keys
 *   array         sequence 1..n
 *   null          sio.json.null (a light userdata NULL; cjson.null is equal)
 *   true/false    boolean
 *   integer       integer (exact, 64-bit)
 *   real          float (written with 17 significant digits: reads back
 *                 as the same double; 2.0 is written 2.0)
 *   string        string (may hold NUL bytes)
 *
 * Lua to JSON: a table whose keys are exactly 1..n (n >= 1) is an array,
 * any other table an object (integer and float keys become their text, as
 * tostring writes them); an empty table is {}.  Only raw contents count:
 * no metamethod runs.  Errors: NaN and infinities, functions, threads, full
 * userdata, keys of other types, two keys that give the same JSON key (1
 * and "1"), nesting deeper than SIO_LUAJSON_MAX_DEPTH (which also stops
 * cycles); each names the path to the value ("items[2].f: cannot encode a
 * function as JSON").  Strings that are not valid UTF-8 are not an error:
 * each byte of an invalid sequence becomes U+FFFD, so nothing written is
 * invalid UTF-8.  '/' is never escaped.
 *
 * JSON to Lua: the text is read by sio_json_parse, so trailing bytes,
 * invalid UTF-8, NaN, 1e999, integers beyond 64 bits and duplicate keys
 * are errors ("malformed JSON: <reason> at line L, column C").
 *
 * Cost.  Conversions are charged to the execution running on L (see
 * sandbox.h): one instruction per value plus one per 16 bytes of string,
 * and every byte of the jansson tree, the parser's buffers and the written
 * text to its memory limit, as they grow.  Shared references are expanded
 * (JSON has no sharing), so the budget bounds them.  A breach raises the
 * limit error like any other user-caused work; nothing is leaked when it
 * does.
 */
#ifndef SIO_LUAJSON_H
#define SIO_LUAJSON_H

#include <jansson.h>
#include <lua.h>

#include "sio_err.h"

/* jansson's own parsing depth limit: whatever decodes also encodes. */
#define SIO_LUAJSON_MAX_DEPTH 2048

/* Pushes v (borrowed) onto L.  May raise a Lua error (memory, limits):
 * call it where a raise is caught (a protected call or a coroutine). */
void sio_lua_push_json(lua_State *L, const json_t *v);

/* Converts the value at idx.  Returns a new reference the caller owns, or
 * NULL with err set (SIO_E_INVAL naming the path, e.g. "items[2]: cannot
 * encode a function as JSON").  While it converts, the tree is charged to
 * L's execution; once returned it is the caller's and no longer charged.
 * A limit breach frees what was built and then raises the limit error. */
json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err);

/* lua_CFunction: pushes the codec table {encode, decode, null}.
 *   encode(value) -> text        raises on values JSON cannot hold
 *   decode(text) -> value        raises "malformed JSON: ..." */
int luaopen_sio_json(lua_State *L);

#endif
