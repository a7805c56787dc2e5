/*
 * workflow.c - fuzz target: the workflow loader (lua/sio/workflow.lua) on
 * a file of one format, then the engine running what loaded.  Built three
 * times, with FZ_FORMAT "yaml", "json" and "lua" (Lua tables: the file is
 * user code run at load, in the sandbox).
 *
 * The input is the file's text.  load_source must return a workflow or
 * (nil, {message...}) and never raise; a workflow that loads runs as a
 * command would (engine.execute with attrs, ops completed by the harness),
 * and its outcome, as runner.run hands it to the worker, must convert to
 * strict JSON.
 */
#include "fuzzlib.h"

#ifndef FZ_FORMAT
#error "FZ_FORMAT must name the format: yaml, json or lua"
#endif

static const char driver[] =
    "local host = require 'sio.host'\n"
    "local workflow = require 'sio.workflow'\n"
    "local engine = require 'sio.engine'\n"
    "local runner = require 'sio.runner'\n"
    "local reg = workflow.registry(host, {lua_dir = '/nonexistent/fuzz', native_tools = {}})\n"
    "local file = 'workflows/fuzz." FZ_FORMAT "'\n"
    "local opts = {on_step_result = host.step_result, retry_base_ms = 1, retry_max_ms = 2}\n"
    "return function(data)\n"
    "  local wf, errs = workflow.load_source(host, data, file, reg)\n"
    "  if not wf then\n"
    "    assert(type(errs) == 'table' and #errs > 0, 'load failed without errors')\n"
    "    for _, e in ipairs(errs) do assert(type(e) == 'string', 'an error is not a string') end\n"
    "    return {errors = errs}\n"
    "  end\n"
    "  assert(type(wf.intent) == 'string', 'a workflow without an intent')\n"
    "  local attrs = {query = 'hello', n = 2, items = {1, 2, 3}, t = {a = 'b'}}\n"
    "  local res, err = engine.execute(host, wf, attrs, opts)\n"
    "  if host.exec_killed() then return nil end\n"
    "  if not res then\n"
    "    return {class = err.class, message = err.message, step = err.step}\n"
    "  end\n"
    "  return res\n"
    "end\n";

FZ_LUA_TARGET("=fuzz/workflow_" FZ_FORMAT, driver)
