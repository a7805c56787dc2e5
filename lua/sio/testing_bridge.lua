-- sio.testing_bridge: the trusted side of the busted harness (sio.testing).
--
-- It runs INSIDE the worker the `sio_core` Lua C module creates for a
-- harness (src/testing/testing_core.c): the daemon's sandbox, limits,
-- embedded engine and host contract, with the harness's backend.  A spec's
-- command runs exactly as a worker runs one - sio_worker_run, runner.run,
-- runner.execute - on the set this module makes live for it:
--
--   extra = bridge.load(meta)     before each run (and for h:load_errors,
--       h:intents, h:workflow): loads the project as meta says and, unless
--       meta.load_only, makes it the runner's live set (runner.use), with
--       meta.intent's workflow observed for the trace.
--   trace = bridge.trace()        after the run: what the engine did with
--       each step (status, rendered args, payload, attempts, error, the
--       guard's value), read from the A[step_id] records it wrote.
--
-- meta (a table, copied in from busted's state) =
--   { intent = "name", workflows = "dir", lua_dir = "dir",
--     tools = { name = true, ... },      -- tools answered by the harness
--     sources = { {file = "x.yaml", src = "..."}, ... },  -- extra workflows
--     retry_base_ms = n|nil, publish_limit = n|nil,
--     load_only = bool, inspect = "intent"|nil,
--     values = {config = {name = value}, secret = {name = value}} }  -- the stubs
-- extra = { load_errors = {...}, intents = {...}, workflow = (inspect) }
--
-- The engine itself is not touched: the workflow is loaded with
-- sio.workflow and only observed (guard results are recorded by wrapping the
-- compiled guard factories of a per-run view of the workflow).
local engine = require "sio.engine"
local host = require "sio.host"
local runner = require "sio.runner"
local workflow = require "sio.workflow"

local M = {}

local type, pairs, ipairs, rawget, rawset = type, pairs, ipairs, rawget, rawset

-- Where a spec sets a value the workflow lacks (engine.lua Cmd:value).
local VALUE_HINTS = {
  config = 'stub it: h:stub("config", {{name} = ...})',
  secret = 'stub it: h:stub("secret", {{name} = ...})',
}

-- Loads the project with the stubbed tools turned into host-answered
-- ("native") tools, plus any inline sources.
local function load_set(meta)
  local reg = workflow.registry(host, { lua_dir = meta.lua_dir or "lua" })
  for name in pairs(meta.tools or {}) do
    reg.tools[name] = { kind = "native", name = name }
  end
  local set = workflow.load_dir(host, meta.workflows or "workflows", { registry = reg })
  for _, s in ipairs(meta.sources or {}) do
    local wf, errs = workflow.load_source(host, s.src, s.file, reg)
    if wf then set.workflows[wf.intent] = wf
    else for _, e in ipairs(errs) do set.errors[#set.errors + 1] = tostring(e) end end
  end
  return set
end

-- A per-run view of wf whose guards record their last value in seen[i].
local function traced(wf, seen)
  local steps = {}
  local any = false
  for i, s in ipairs(wf.steps) do
    if s.has_guard and not s.guard_lua then
      local factory = s.guard
      steps[i] = setmetatable({ guard = function(env)
        local g = factory(env)
        return function(A)
          local v = g(A)
          seen[i] = v and true or false
          return v
        end
      end }, { __index = s })
    else
      steps[i] = s
      if s.guard_lua then any = true end
    end
  end
  local view = setmetatable({ steps = steps }, { __index = wf })
  if any and wf.factory then
    local factory = wf.factory
    view.factory = function(env)
      local inst = factory(env)
      local isteps = type(inst) == "table" and rawget(inst, "steps")
      if type(isteps) == "table" then
        for i, s in ipairs(wf.steps) do
          local st = s.guard_lua and rawget(isteps, i)
          local g = type(st) == "table" and rawget(st, "guard")
          if type(g) == "function" then
            rawset(st, "guard", function(A)
              local v = g(A)
              seen[i] = v and true or false
              return v
            end)
          end
        end
      end
      return inst
    end
  end
  return view
end

local function trace_of(wf, A, seen, extra)
  local steps = {}
  for i, s in ipairs(wf.steps) do
    local rec = rawget(A, s.id)
    local t = { id = s.id, index = i, kind = s.kind, tool = s.tool_name, guard = seen[i] }
    if engine.is_record(rec) then
      t.status = rawget(rec, "ok") and "ok" or "failed"
      t.payload = rawget(rec, "payload")
      t.args = rawget(rec, "args")
      t.attempts = rawget(rec, "attempts")
      t.error = rawget(rec, "error")
    elseif seen[i] == false then
      t.status = "skipped"
    else
      t.status = "not_run"
    end
    steps[i] = t
  end
  local attrs = {}
  for k, v in pairs(A) do
    if not engine.is_record(v) then attrs[k] = v end
  end
  extra.steps = steps
  extra.attrs = attrs
  extra.file = wf.path or wf.file
  extra.intent = wf.intent
  return extra
end

-- What the loader made of wf, for h:workflow(): its fields without the
-- registry (tools, filters, the host) and the compiled factories.
local HIDDEN = { registry = true, filters_factory = true, factory = true }
local function inspect(wf)
  if not wf then return nil end
  local view = {}
  for k, v in pairs(wf) do if not HIDDEN[k] then view[k] = v end end
  view.steps = {}
  for i, s in ipairs(wf.steps) do
    local st = {}
    for k, v in pairs(s) do st[k] = v end
    if type(s.tool) == "table" then st.tool = { kind = s.tool.kind, name = s.tool.name } end
    view.steps[i] = st
  end
  return view
end

local observed -- {wf, seen, A}: the run being observed

function M.load(meta)
  local set = load_set(meta)
  local extra = { load_errors = set.errors, intents = {} }
  for k in pairs(set.workflows) do extra.intents[#extra.intents + 1] = k end
  table.sort(extra.intents)
  if meta.inspect then extra.workflow = inspect(set.workflows[meta.inspect]) end
  if meta.load_only then return extra end
  local wf, seen = set.workflows[meta.intent], {}
  observed = wf and { wf = wf, seen = seen } or nil
  if wf then set.workflows[meta.intent] = traced(wf, seen) end
  set.observe = function(_, A) if observed then observed.A = A end end
  local settings = runner.settings()
  set.run_opts = {
    on_step_result = host.step_result,
    retry_base_ms = meta.retry_base_ms or settings.retry_backoff_base_ms,
    retry_max_ms = settings.retry_backoff_max_ms,
    publish_limit = meta.publish_limit or settings.publish_limit,
    -- the stubbed config and secrets, where the daemon's set has the files'
    -- (runner.load_values)
    values = { config = meta.values and meta.values.config or {},
               secret = meta.values and meta.values.secret or {}, hint = VALUE_HINTS },
  }
  runner.use(set)
  return extra
end

function M.trace()
  local o = observed
  observed = nil
  if not (o and o.A) then return {} end
  return trace_of(o.wf, o.A, o.seen, {})
end

return M
