-- sio.runner: the trusted entry points a worker calls (src/worker/worker.c).
--
--   runner.init(host, settings)         once per worker state; settings is a
--       Lua table built in C from the configuration (src/core/config.c is
--       the one place with defaults): retry_backoff_base_ms,
--       retry_backoff_max_ms, retry_attempts
--   ok, errors = runner.load(dir, lua_dir, initial)
--       loads every workflow under dir.  On the initial load the valid ones
--       go live and errors lists the others; on a reload the new set goes
--       live only when all of it is valid (else the previous set stays).
--   ok, value = runner.run(workflow, attrs)    in a run's coroutine
--       runs the workflow on the live set with attrs (a Lua table the
--       engine owns); each published step result goes to
--       host.step_result(step_id, payload, query).  value is the result
--       table (ok) or the error {class, message, step}.
--   ok, text = runner.validate(paths)   paths: one file or folder a line
--
-- The service's command life (envelopes, dedupe, retries, DLQ, offsets) is
-- C (src/service/command.c); nothing here sees Kafka or Redis.
--
-- A running command keeps the workflow set it started with: load() swaps
-- the `current` reference, never the tables a command already holds.
local cjson = require "cjson"
local engine = require "sio.engine"
local workflow = require "sio.workflow"

local M = {}

local host
local current = { workflows = {}, errors = {}, version = 0 }
local settings = {}
local run_opts = {}
local encode = cjson.encode
local type, concat, sub = type, table.concat, string.sub

function M.init(h, s)
  host = h
  settings = type(s) == "table" and s or {}
  run_opts = {
    on_step_result = host.step_result,
    retry_base_ms = settings.retry_backoff_base_ms,
    retry_max_ms = settings.retry_backoff_max_ms,
  }
end

-- The settings runner.init received (read-only by convention).
function M.settings() return settings end

local function native_tools()
  return host.native_tools and host.native_tools() or {}
end

function M.load(dir, lua_dir, initial)
  settings.lua_dir = lua_dir
  local set = workflow.load_dir(host, dir, { lua_dir = lua_dir or "lua", native_tools = native_tools() })
  local errs = set.errors
  if #errs > 0 and not initial then return false, concat(errs, "\n") end
  set.version = current.version + 1
  current = set
  if #errs > 0 then return true, concat(errs, "\n") end
  return true, nil
end

-- The intents of the live set, sorted (for `validate` and logs).
function M.intents()
  local out = {}
  for k in pairs(current.workflows) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function fail(class, message, step)
  return false, encode({ class = class, message = message, step = step })
end

-- "unknown workflow 'x'", the name quoted safely: at most 200 bytes of it.
local function unknown(name)
  if #name > 200 then name = sub(name, 1, 200) .. "..." end
  return "unknown workflow '" .. name .. "'"
end
M.unknown = unknown

function M.run(name, attrs)
  local wf = current.workflows[name]
  if not wf then return false, { class = "permanent", message = unknown(name) } end
  local res, err = engine.execute(host, wf, attrs, run_opts)
  local killed = host.exec_killed()
  if killed then return false, killed end
  if not res then return false, { class = err.class, message = err.message, step = err.step } end
  return true, res
end

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, err = f:read(0)
  f:close()
  return err ~= nil and err:find("directory") ~= nil
end

-- paths, one per line.  text = one line per valid workflow
-- ("ok: intent (file)") and one per error ("file:line: ...").
function M.validate(payload)
  local reg, regerrs = workflow.registry(host, { lua_dir = settings.lua_dir or "lua", native_tools = native_tools() })
  local errs, loaded = {}, {}
  for _, e in ipairs(regerrs or {}) do errs[#errs + 1] = e end
  for path in payload:gmatch("[^\n]+") do
    if is_dir(path) then
      local set = workflow.load_dir(host, path, { registry = reg })
      for _, e in ipairs(set.errors) do errs[#errs + 1] = e end
      for intent in pairs(set.workflows) do loaded[#loaded + 1] = { intent = intent, file = path } end
    elseif not io.open(path, "rb") then
      errs[#errs + 1] = path .. ": no such file"
    else
      local wf, werrs = workflow.load_file(host, path, reg)
      if wf then loaded[#loaded + 1] = { intent = wf.intent, file = path }
      else for _, e in ipairs(werrs) do errs[#errs + 1] = tostring(e) end end
    end
  end
  table.sort(loaded, function(a, b) return a.intent < b.intent end)
  local lines = {}
  for _, w in ipairs(loaded) do lines[#lines + 1] = "ok: " .. w.intent .. " (" .. w.file .. ")" end
  for _, e in ipairs(errs) do lines[#lines + 1] = tostring(e) end
  return #errs == 0, concat(lines, "\n")
end

-- Job entries for the busted harness (src/testing/testing_core.c), which
-- adds its own ("test", lua/sio/testing_bridge.lua).
local entries = { validate = M.validate }

function M.job(entry, payload, meta)
  local fn = entries[entry]
  if not fn then return fail("permanent", "unknown job entry '" .. tostring(entry) .. "'") end
  return fn(payload, meta)
end

function M.add_entry(name, fn) entries[name] = fn end
M.current = function() return current end

return M
