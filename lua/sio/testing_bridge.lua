-- sio.testing_bridge: the trusted side of the busted harness (sio.testing).
--
-- It runs INSIDE the sandbox state the `sio_core` Lua C module creates with
-- sio_sandbox_create (the daemon's sandbox, limits and embedded engine), and
-- adds one runner entry, "test", next to the worker's "run":
--
--   ok, text, trace = runner.job("test", attrs_json, meta)
--
-- meta (a table, copied in from busted's state) =
--   { intent = "name", workflows = "dir", lua_dir = "dir",
--     tools = { name = true, ... },      -- tools answered by the harness
--     sources = { {file = "x.yaml", src = "..."}, ... },  -- extra workflows
--     retry_base_ms = n|nil, publish_limit = n|nil,
--     values = {config = {name = value}, secret = {name = value}} }  -- the stubs
--
-- `text` is exactly what the "run" entry returns (the result or the error as
-- JSON); `trace` tells the harness what the engine did with each step.  The
-- engine itself is not touched: the workflow is loaded with sio.workflow,
-- executed with sio.engine.execute, and only observed (guard results are
-- recorded by wrapping the compiled guard factories of a per-run view of the
-- workflow; outputs, rendered args, attempts and errors are read from the
-- A[step_id] records the engine writes).
local json = require "sio.json"
local engine = require "sio.engine"
local workflow = require "sio.workflow"

local M = {}

local encode, decode = json.encode, json.decode
local type, pairs, ipairs, pcall, rawget, rawset = type, pairs, ipairs, pcall, rawget, rawset

-- Where a spec sets a value the workflow lacks (engine.lua Cmd:value).
local VALUE_HINTS = {
  config = 'stub it: h:stub("config", {{name} = ...})',
  secret = 'stub it: h:stub("secret", {{name} = ...})',
}

local function fail(class, message, step, extra)
  return false, encode({ class = class, message = message, step = step }), extra or {}
end

-- Loads the project with the stubbed tools turned into host-answered
-- ("native") tools, plus any inline sources.
local function load_set(host, meta)
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

function M.install(host, runner)
  runner.add_entry("test", function(payload, meta)
    if type(meta) ~= "table" then return fail("permanent", "test entry: meta must be a table") end
    local set = load_set(host, meta)
    local extra = { load_errors = set.errors, intents = {} }
    for k in pairs(set.workflows) do extra.intents[#extra.intents + 1] = k end
    table.sort(extra.intents)
    if meta.load_only then return true, "{}", extra end
    -- from here on, the same checks and calls as runner's "run" entry
    local ok, attrs = pcall(decode, payload)
    if not ok then return fail("permanent", "attrs are not valid JSON: " .. tostring(attrs), nil, extra) end
    if type(attrs) ~= "table" or payload:match("^%s*%[") then -- an array is not attrs (as in `run`)
      return fail("permanent", "attrs must be a JSON object", nil, extra)
    end
    local name = meta.intent
    if type(name) ~= "string" or name == "" then return fail("permanent", "missing workflow", nil, extra) end
    local wf = set.workflows[name]
    if not wf then return fail("permanent", runner.unknown(name, extra.intents), nil, extra) end
    local seen = {}
    local res, err = engine.execute(host, traced(wf, seen), attrs, {
      on_step_result = function(step_id, p, query)
        host.emit("step_result", encode({ step_id = step_id, payload = p, query = query }))
      end,
      retry_base_ms = meta.retry_base_ms or runner.settings().retry_backoff_base_ms,
      retry_max_ms = runner.settings().retry_backoff_max_ms,
      publish_limit = meta.publish_limit or runner.settings().publish_limit,
      values = { config = meta.values and meta.values.config or {}, secret = meta.values and meta.values.secret or {},
                 hint = VALUE_HINTS },
    })
    trace_of(wf, attrs, seen, extra)
    if not res then
      return false, encode({ class = err.class, message = err.message, step = err.step }), extra
    end
    return true, encode(res), extra
  end)
end

return M
