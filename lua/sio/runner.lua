-- sio.runner: the trusted entry points a worker calls (src/worker/worker.c).
--
--   runner.init(host, settings)         once per worker state; settings is a
--       Lua table built in C from the configuration (src/core/config.c is
--       the one place with defaults): retry_backoff_base_ms,
--       retry_backoff_max_ms, retry_attempts, publish_limit
--   Loading, one call per unit of work, so the caller (src/worker/
--   worker_load.c) gives each its own execution (budget): a file that hits
--   a limit fails alone and the files after it load normally.
--   n = runner.load_begin(lua_dir, mode, path, ...)
--       mode "initial" | "reload" (path = WORKFLOWS_DIR; files are named
--       relative to it and to lua_dir) or "validate" (paths as given on the
--       command line, folders or files; names keep them).  Returns the
--       number of workflow files.
--   runner.load_values(config, secrets)   ("initial" / "reload" only) the
--       workflows' configuration and secrets ({name = value}), read by C
--       (src/core/wfvalues.c) at this load: they go live with the set
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
--   ok, value = runner.run(workflow, attrs)    in a run's coroutine
--       runs the workflow on the live set with attrs (a Lua table the
--       engine owns); each published step result goes to
--       host.step_result(step_id, payload, query).  value is the result
--       table (ok) or the error {class, message, step}.
--
-- The service's command life (envelopes, dedupe, retries, DLQ, offsets) is
-- C (src/service/command.c); nothing here sees Kafka or Redis.
--
-- A running command keeps the workflow set it started with: load_end swaps
-- the `current` reference, never the tables a command already holds.
local engine = require "sio.engine"
local workflow = require "sio.workflow"

local M = {}

local host
local current = { workflows = {}, errors = {}, version = 0 }
local settings = {}
local run_opts = {}
local type, concat, sub = type, table.concat, string.sub

function M.init(h, s)
  host = h
  settings = type(s) == "table" and s or {}
  run_opts = {
    on_step_result = host.step_result,
    retry_base_ms = settings.retry_backoff_base_ms,
    retry_max_ms = settings.retry_backoff_max_ms,
    publish_limit = settings.publish_limit,
  }
end

-- The settings runner.init received (read-only by convention).
function M.settings() return settings end

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

-- Where a missing value would come from, for the error (engine.lua).
local VALUE_HINTS = {
  config = "set it in WORKFLOW_CONFIG or SIO_CONFIG_{NAME}",
  secret = "set it in WORKFLOW_SECRETS or SIO_SECRET_{NAME}",
}
M.VALUE_HINTS = VALUE_HINTS

function M.load_values(config, secrets)
  loading.values = { config = config, secret = secrets, hint = VALUE_HINTS }
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
  -- the run options of this set: the settings' plus its values
  set.run_opts = setmetatable({ values = l.values }, { __index = run_opts })
  current = set
  return true, nil
end

-- The intents of the live set, sorted (for logs and sio_worker_knows).
function M.intents() return sorted_keys(current.workflows) end

-- "unknown workflow 'x' (did you mean y?)": the name quoted safely (at
-- most 200 bytes of it), with the closest of `intents` (default: the live
-- set's) by host.suggest.
local function unknown(name, intents)
  local msg = "unknown workflow '" .. (#name > 200 and (sub(name, 1, 200) .. "...") or name) .. "'"
  local close = host.suggest and #name <= 200 and host.suggest(name, intents or M.intents()) or {}
  if close[1] then msg = msg .. " (did you mean " .. concat(close, ", ") .. "?)" end
  return msg
end
M.unknown = unknown

-- execute(wf, name, attrs, opts) -> true, result | false, {class, message,
-- step}: runs workflow wf (nil: unknown workflow `name`) with attrs and the
-- engine options, tells the live set's observer (the harness's) that the
-- run ended, and makes a limit breach the outcome whatever the workflow did.
local function execute(wf, name, attrs, opts)
  if not wf then return false, { class = "permanent", message = unknown(name) } end
  local res, err = engine.execute(host, wf, attrs, opts)
  local observe = current.observe
  if observe then observe(name, attrs) end
  local killed = host.exec_killed()
  if killed then return false, killed end
  if not res then return false, { class = err.class, message = err.message, step = err.step } end
  return true, res
end

function M.run(name, attrs)
  return execute(current.workflows[name], name, attrs, current.run_opts or run_opts)
end

-- The harness's (testing_bridge.lua): makes set the live one as it is -
-- errors and all, for a spec that runs one workflow of a project being
-- edited - with its own run options (set.run_opts) and, when it has one,
-- set.observe(name, attrs) called as each run ends.
function M.use(set)
  set.version = current.version + 1
  current = set
end

M.current = function() return current end

return M
