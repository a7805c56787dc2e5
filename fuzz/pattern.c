/*
 * pattern.c - fuzz target: the sandbox's budgeted pattern matcher
 * (src/sandbox/sandbox_pattern.c) against Lua 5.4's own.
 *
 * Input: one byte choosing the function (find, plain find, match, gmatch,
 * gsub with a string, a count, a function or a table) and the init
 * argument, then pattern NUL subject NUL replacement.  The sandbox's
 * string.* (from a user environment, charged to the input's exec) runs
 * first; when it finished within the budget, the trusted state's real
 * string.* runs the same call, and both must agree: the same results, or
 * both an error with the same message.
 */
#include "fuzzlib.h"

static const char driver[] =
    "local host = require 'sio.host'\n"
    "local safe = host.safe_env().string\n"
    "local real = string\n"
    "local pack, unpack, select, concat = table.pack, table.unpack, select, table.concat\n"
    "local function collect(lib, s, p, init)\n"
    "  local it, out = lib.gmatch(s, p, init), {}\n"
    "  for _ = 1, 64 do\n"
    "    local r = pack(it())\n"
    "    if r[1] == nil then break end\n"
    "    for i = 1, r.n do out[#out + 1] = r[i] end\n"
    "    out[#out + 1] = '|'\n"
    "  end\n"
    "  return unpack(out)\n"
    "end\n"
    "local function nargs(...) return select('#', ...) .. '' end\n"
    "local map = {a = 'A', [''] = 'E', x = false, ['1'] = 7}\n"
    "local ops = {\n"
    "  function(lib, s, p, r, i) return lib.find(s, p, i) end,\n"
    "  function(lib, s, p, r, i) return lib.find(s, p, i, true) end,\n"
    "  function(lib, s, p, r, i) return lib.match(s, p, i) end,\n"
    "  function(lib, s, p, r, i) return collect(lib, s, p, i) end,\n"
    "  function(lib, s, p, r, i) return lib.gsub(s, p, r) end,\n"
    "  function(lib, s, p, r, i) return lib.gsub(s, p, r, i) end,\n"
    "  function(lib, s, p, r, i) return lib.gsub(s, p, nargs) end,\n"
    "  function(lib, s, p, r, i) return lib.gsub(s, p, map) end,\n"
    "}\n"
    "local function show(r)\n"
    "  local out = {}\n"
    "  for i = 1, r.n do out[i] = type(r[i]) == 'string' and ('%q'):format(r[i]) or tostring(r[i]) end\n"
    "  return concat(out, ', ')\n"
    "end\n"
    "local function same(a, b)\n"
    "  if a.n ~= b.n then return false end\n"
    "  for i = 1, a.n do if a[i] ~= b[i] then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(data)\n"
    "  local b = data:byte(1) or 0\n"
    "  local k = b % #ops + 1\n"
    "  local init = (b // #ops) % 8 - 3\n"
    "  local rest = data:sub(2)\n"
    "  local p, s, r = rest, '', ''\n"
    "  local z = real.find(rest, '\\0', 1, true)\n"
    "  if z then\n"
    "    p, s = rest:sub(1, z - 1), rest:sub(z + 1)\n"
    "    local z2 = real.find(s, '\\0', 1, true)\n"
    "    if z2 then s, r = s:sub(1, z2 - 1), s:sub(z2 + 1) end\n"
    "  end\n"
    "  local got = pack(pcall(ops[k], safe, s, p, r, init))\n"
    "  if host.exec_killed() then return nil end\n"
    "  local want = pack(pcall(ops[k], real, s, p, r, init))\n"
    "  if got[1] ~= want[1] or not same(got, want) then\n"
    "    error(('op %d init %d pattern %q subject %q: sandbox {%s}, Lua {%s}')\n"
    "      :format(k, init, p, s, show(got), show(want)), 0)\n"
    "  end\n"
    "  return {op = k, ok = got[1], n = got.n}\n"
    "end\n";

FZ_LUA_TARGET("=fuzz/pattern", driver)
