/*
 * luajson.h - Lua values <-> JSON values (jansson), and `sio.json`, the one
 * JSON codec of every Lua state the host creates: the trusted engine
 * (`require "sio.json"`, preloaded by sio_sandbox_create), user code
 * (`sio.json`, the same functions) and the busted harness (sio_core.json).
 * The rules of the text are src/core/json.h's (strict reading by
 * sio_json_parse, writing by its sio_json_write_* functions); this is the
 * mapping between Lua values and JSON.
 *
 *   JSON          Lua
 *   object        table with string keys
 *   array         sequence 1..n
 *   null          sio.json.null (a light userdata NULL; cjson.null is equal)
 *   true/false    boolean
 *   integer       integer (exact, 64-bit)
 *   real          float (written in the shortest form that reads back as
 *                 the same double, at most 17 digits; 2.0 is written 2.0)
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
 * invalid UTF-8; so does a NUL byte in a key (jansson, so sio_json_parse,
 * cannot read "\u0000" in a key back; values keep it).  '/' is never
 * escaped.
 *
 * JSON to Lua: the text is read by sio_json_parse, so trailing bytes,
 * invalid UTF-8, NaN, 1e999, integers beyond 64 bits and duplicate keys
 * are errors ("malformed JSON: <reason> at line L, column C").
 *
 * Cost.  Conversions are charged to the execution running on L (see
 * sandbox.h) as they go: each value written costs 32 instructions and each
 * value read 128 (about what they take in C, against the VM's
 * instructions), plus one per 16 bytes of string; the text being written
 * is Lua memory, charged like any allocation, and the jansson tree a text
 * is read into is charged to the memory limit as it grows.  Shared
 * references are expanded (JSON has no sharing), so the budget bounds
 * them.  A breach raises the limit error like any other user-caused work;
 * nothing is leaked when it does.
 */
#ifndef SIO_LUAJSON_H
#define SIO_LUAJSON_H

#include <jansson.h>
#include <lua.h>

#include "sio_err.h"

/* Tables nested deeper are an error: json.h's limit, so whatever decodes
 * also encodes. */
#define SIO_LUAJSON_MAX_DEPTH SIO_JSON_MAX_DEPTH

/* Pushes v (borrowed) onto L.  May raise a Lua error (memory, limits):
 * call it where a raise is caught (a protected call or a coroutine). */
void sio_lua_push_json(lua_State *L, const json_t *v);

/* Converts the value at idx (written as sio.json.encode writes it, then
 * read back: the same rules).  Returns a new reference the caller owns, or
 * NULL with err set (SIO_E_INVAL naming the path, e.g. "items[2]: cannot
 * encode a function as JSON").  While it converts, the work is charged to
 * L's execution; once returned the tree is the caller's and no longer
 * charged.  A limit breach raises the limit error (nothing is leaked). */
json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err);

/* lua_CFunction: pushes the codec table {encode, decode, null}.
 *   encode(value) -> text        raises on values JSON cannot hold
 *   decode(text) -> value        raises "malformed JSON: ..." */
int luaopen_sio_json(lua_State *L);

#endif
