/*
 * guard.c - fuzz target: step guards (lua/sio/guard.lua), compiled at load
 * and evaluated by the engine for a command.
 *
 * The input is the guard expression.  It is placed in a workflow of two
 * echo steps (the second reading the first's output), loaded through the
 * real loader (guard.compile with the file's line numbers) and run by the
 * engine, which evaluates the guard before planning and again before each
 * step.  Loading must fail with messages or succeed, never raise; the
 * outcome must convert to strict JSON.  Guards are user code: any Lua
 * expression, bounded by the input's instruction and memory limits.
 */
#include "fuzzlib.h"

static const char driver[] =
    "local cjson = require 'cjson'\n"
    "local host = require 'sio.host'\n"
    "local workflow = require 'sio.workflow'\n"
    "local engine = require 'sio.engine'\n"
    "local reg = workflow.registry(host, {lua_dir = '/nonexistent/fuzz', native_tools = {}})\n"
    "local opts = {on_step_result = host.step_result, retry_base_ms = 1, retry_max_ms = 2}\n"
    "return function(data)\n"
    "  local src = cjson.encode({intent = 'g', steps = {\n"
    "    {id = 's1', guard = data, tool = {name = 'echo', args = {q = '${A.query}'}},\n"
    "     publish_result = true},\n"
    "    {id = 's2', guard = data, tool = {name = 'echo', args = {o = '${A.s1.q}'}}}}})\n"
    "  local wf, errs = workflow.load_source(host, src, 'workflows/guard.json', reg)\n"
    "  if not wf then\n"
    "    assert(type(errs) == 'table' and #errs > 0, 'load failed without errors')\n"
    "    for _, e in ipairs(errs) do assert(type(e) == 'string', 'an error is not a string') end\n"
    "    return {errors = errs}\n"
    "  end\n"
    "  local attrs = {query = 'hello', tier = 'gold', n = 2, items = {1, 2}, flag = false}\n"
    "  local res, err = engine.execute(host, wf, attrs, opts)\n"
    "  if host.exec_killed() then return nil end\n"
    "  if not res then return {class = err.class, message = err.message, step = err.step} end\n"
    "  return res\n"
    "end\n";

FZ_LUA_TARGET("=fuzz/guard", driver)
