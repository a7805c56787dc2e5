/*
 * template.c - fuzz target: `${...}` templates (lua/sio/template.lua) as a
 * workflow's tool args are compiled at load and rendered per command.
 *
 * The input is the template text.  compile_value must return a plan or
 * (false, message) and never raise (a raise at load would take the whole
 * workflow set down instead of naming the file); rendering, non-strict and
 * strict, against a fixture of attrs and step outputs, may fail only with
 * an error value, and what it renders must convert to strict JSON.
 */
#include "fuzzlib.h"

static const char driver[] =
    "local cjson = require 'cjson'\n"
    "local template = require 'sio.template'\n"
    "local function fixture()\n"
    "  return {query = 'hello', n = 3, f = 1.5, big = math.maxinteger, neg = -0.0,\n"
    "    t = {a = {b = 'c'}}, list = {'x', 'y', {z = 1}}, nul = cjson.null,\n"
    "    bad = '\\xff\\xfe\\0', ['0'] = 'zero', empty = '', utf = 'caf\\xc3\\xa9',\n"
    "    s1 = {status = 200, json = {items = {{url = 'http://a/'}, 2}}, body = '{}'}}\n"
    "end\n"
    "local cx = {user_filter = function(_, name)\n"
    "  return function(v, ...) return {filter = name, value = v, nargs = select('#', ...)} end\n"
    "end}\n"
    "local function message(e)\n"
    "  if type(e) == 'table' then e = rawget(e, 'message') end\n"
    "  return type(e) == 'string' and e or type(e)\n"
    "end\n"
    "return function(data)\n"
    "  local out = {}\n"
    "  for k, strict in ipairs({false, true}) do\n"
    "    local opts = {filters = {myfilter = true}, strict = strict}\n"
    "    local plan, err = template.compile_value(data, 'step s1 args.x', opts)\n"
    "    if not plan then\n"
    "      assert(type(err) == 'string', 'compile_value failed without a message')\n"
    "      return {error = err}\n"
    "    end\n"
    "    local ok, v = pcall(plan, fixture(), cx)\n"
    "    out[k] = ok and {value = v} or {error = message(v)}\n"
    "  end\n"
    "  return out\n"
    "end\n";

FZ_LUA_TARGET("=fuzz/template", driver)
