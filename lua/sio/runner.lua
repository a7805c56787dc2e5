-- sio.runner: the trusted entry points a worker calls (src/worker/worker.c).
--
--   runner.init(host, cfg_json)         once per worker state
--   ok, errors = runner.load(dir, lua_dir, initial)
--       loads every workflow under dir.  On the initial load the valid ones
--       go live and errors lists the others; on a reload the new set goes
--       live only when all of it is valid (else the previous set stays).
--   ok, text = runner.job(entry, payload, meta)   in a command coroutine
--       entry "run": payload = the attrs (JSON), meta = the workflow; each
--       published step result is emitted as host.emit("step_result", json);
--       text is the final result (ok) or the error {class, message, step}.
--
-- A running command keeps the workflow set it started with: load() swaps
-- the `current` reference, never the tables a command already holds.
local json = require "sio.json"
local engine = require "sio.engine"
local workflow = require "sio.workflow"

local M = {}

local host
local current = { workflows = {}, errors = {}, version = 0 }
local settings = {}
local encode, decode = json.encode, json.decode
local pcall, type, concat = pcall, type, table.concat

function M.init(h, cfg_json)
  host = h
  if cfg_json then settings = decode(cfg_json) end
  if settings.service then
    local service = require "sio.service"
    service.init(host, settings.service, M)
    for name, fn in pairs(service.entries) do M.add_entry(name, fn) end
  end
end

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

local function run_entry(payload, name)
  local ok, attrs = pcall(decode, payload)
  if not ok then return fail("permanent", "attrs are not valid JSON: " .. tostring(attrs)) end
  if type(attrs) ~= "table" then return fail("permanent", "attrs must be a JSON object") end
  if type(name) ~= "string" or name == "" then return fail("permanent", "missing workflow") end
  local wf = current.workflows[name]
  if not wf then return fail("permanent", "unknown workflow '" .. name .. "'") end
  local res, err = engine.execute(host, wf, attrs, {
    on_step_result = function(step_id, p, query)
      host.emit("step_result", encode({ step_id = step_id, payload = p, query = query }))
    end,
    retry_base_ms = settings.retry_base_ms,
  })
  if not res then
    return false, encode({ class = err.class, message = err.message, step = err.step })
  end
  return true, encode(res)
end

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, err = f:read(0)
  f:close()
  return err ~= nil and err:find("directory") ~= nil
end

-- entry "validate": payload = paths, one per line.  text = one line per
-- valid workflow ("ok: intent (file)") and one per error ("file:line: ...").
local function validate_entry(payload)
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

local entries = { run = run_entry, validate = validate_entry }

function M.job(entry, payload, meta)
  local fn = entries[entry]
  if not fn then return fail("permanent", "unknown job entry '" .. tostring(entry) .. "'") end
  return fn(payload, meta)
end

-- Lets the service add its entries (sio.service) without a cycle.
function M.add_entry(name, fn) entries[name] = fn end
M.current = function() return current end

return M
