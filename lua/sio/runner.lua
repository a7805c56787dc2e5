-- sio.runner: the trusted entry points a worker calls (src/worker/worker.c).
--
--   runner.init(host, cfg_json)         once per worker state; cfg.publish_limit
--       (SIO_PUBLISH_LIMIT) goes to the engine
--   Loading, one call per unit of work, so the caller (load_workflows in
--   src/worker/worker.c) gives each its own execution (budget): a file that
--   hits a limit fails alone and the files after it load normally.
--   n = runner.load_begin(lua_dir, mode, path, ...)
--       mode "initial" | "reload" (path = WORKFLOWS_DIR; files are named
--       relative to it and to lua_dir) or "validate" (paths as given on the
--       command line, folders or files; names keep them).  Returns the
--       number of workflow files.
--   runner.load_step(k)           k = 0: lua/tools and lua/filters.lua;
--                                 k = 1..n: workflow file k
--   runner.load_failed(k, msg)    step k raised (a limit breach): recorded
--                                 against the file it was loading
--   ok, text = runner.load_end()
--       "initial" / "reload": the new set goes live only when all of it is
--       valid (no error, no duplicate intent), else the previous set stays
--       (none at start: the worker is not created); text = the errors, one
--       "file:line: message" per line.  "validate": nothing goes live;
--       text = "ok: intent (file)" per valid workflow, then the errors.
--   ok, text = runner.job(entry, payload, meta)   in a command coroutine
--       entry "run": payload = the attrs (JSON), meta = the workflow; each
--       published step result is emitted as host.emit("step_result", json);
--       text is the final result (ok) or the error {class, message, step}.
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
local encode, decode = cjson.encode, cjson.decode
local pcall, type, concat = pcall, type, table.concat

function M.init(h, cfg_json)
  host = h
  if cfg_json then settings = decode(cfg_json) end
  engine.configure({ publish_limit = math.tointeger(settings.publish_limit) })
  if settings.service then
    local service = require "sio.service"
    service.init(host, settings.service, M)
    for name, fn in pairs(service.entries) do M.add_entry(name, fn) end
  end
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function native_tools()
  return host.native_tools and host.native_tools() or {}
end

local loading -- the load in progress (load_begin .. load_end)

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, err = f:read(0)
  f:close()
  return err ~= nil and err:find("directory") ~= nil
end

function M.load_begin(lua_dir, mode, ...)
  local validate = mode == "validate"
  local reg_opts = { lua_dir = lua_dir or "lua", lua_prefix = validate and ((lua_dir or "lua") .. "/") or "",
                     native_tools = native_tools() }
  local files, missing = {}, {}
  for _, path in ipairs({ ... }) do
    if not validate then
      for _, f in ipairs(workflow.list(host, path)) do files[#files + 1] = f end
    elseif is_dir(path) then
      local prefix = path:gsub("/+$", "") .. "/"
      for _, f in ipairs(workflow.list(host, path, prefix)) do files[#files + 1] = f end
    elseif io.open(path, "rb") then
      files[#files + 1] = { path = path, name = path }
    else
      missing[#missing + 1] = path
    end
  end
  loading = { mode = mode, reg_opts = reg_opts, files = files, missing = missing }
  return #files
end

function M.load_step(k)
  local l = loading
  if k == 0 then
    local reg = workflow.registry_base(host, l.reg_opts)
    l.set = workflow.new_set(reg)
    for _, path in ipairs(l.missing) do workflow.add_error(l.set, path, "no such file or directory") end
    workflow.registry_user(host, reg)
    for _, e in ipairs(reg.errors) do l.set.errors[#l.set.errors + 1] = e end
  else
    workflow.add_file(host, l.set, l.files[k])
  end
end

function M.load_failed(k, msg)
  local l = loading
  if not l.set then l.set = workflow.new_set(workflow.registry_base(host, l.reg_opts)) end
  local name = k > 0 and l.files[k].name or l.set.registry.loading or l.reg_opts.lua_dir
  workflow.add_error(l.set, name, msg)
end

function M.load_end()
  local l = loading
  loading = nil
  local set = l.set
  local errs = set.errors
  if l.mode == "validate" then
    local lines = {}
    for _, intent in ipairs(sorted_keys(set.workflows)) do
      lines[#lines + 1] = "ok: " .. intent .. " (" .. set.seen[intent] .. ")"
    end
    for _, e in ipairs(errs) do lines[#lines + 1] = e end
    return #errs == 0, concat(lines, "\n")
  end
  if #errs > 0 then return false, concat(errs, "\n") end
  set.version = current.version + 1
  current = set
  return true, nil
end

-- The intents of the live set, sorted (for logs).
function M.intents() return sorted_keys(current.workflows) end

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

local entries = { run = run_entry }

function M.job(entry, payload, meta)
  local fn = entries[entry]
  if not fn then return fail("permanent", "unknown job entry '" .. tostring(entry) .. "'") end
  return fn(payload, meta)
end

-- Lets the service add its entries (sio.service) without a cycle.
function M.add_entry(name, fn) entries[name] = fn end
M.current = function() return current end

return M
