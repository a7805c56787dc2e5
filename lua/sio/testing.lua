-- sio.testing: test WARPP workflows from busted with the real engine.
--
--   local testing = require "sio.testing"
--   local h = testing.load("support_triage")          -- ./workflows, ./lua
--   h:stub("http", function(req) return { status = 200, json = { tier = "gold" } } end)
--   local r = h:run({ query = "refund", customer_id = "42" })
--   r:expect_ok()
--   assert.are.same({ "lookup", "route" }, r.ran)
--
-- HOW IT RUNS (the design chosen for issue #5).  Nothing here re-implements
-- the engine.  `require "sio_core"` loads a Lua C module (src/testing/testing_core.c,
-- built as <build>/lua/sio_core.so) that creates a real sio_sandbox — its
-- own lua_State with the counting allocator, the frozen safe globals, text-
-- only compile, the memory / instruction / deadline limits — and installs
-- in it the engine sources EMBEDDED IN THE C LIBRARY, exactly as a daemon
-- worker does (runner.init, host table, command coroutines bound to a
-- sio_exec and resumed with sio_exec_resume).  Workflows, guards, templates,
-- `run` code and lua/ modules all run in that second state under the real
-- sandbox.  Only the host ops differ: instead of libuv/curl/hiredis/
-- librdkafka, every op the engine starts (http, kv, produce, native
-- tools, timers) is handed back to this module, which answers it from the
-- stubs living in busted's state — arguments and results cross the two
-- states by deep copy — and decides, on a virtual clock, when each op
-- completes.  Timers (step timeouts, retry backoff) complete when the clock
-- reaches them, so nothing waits for real; sio.time.now()/unix() read the
-- virtual clock.  The module's box IS a worker (sio_worker, no thread),
-- given the harness's backend of the one host contract (luahost.h): every
-- argument check of serve's - the HTTP allow-list, methods, header names
-- and values, HTTP_TIMEOUT, kv ops - applies here too.  A command runs as
-- a worker runs one (sio_worker_run -> runner.run -> runner.execute);
-- lua/sio/testing_bridge.lua only loads the set and reads, per step, what
-- the engine did.
--
-- Run specs with `sio-orchestrator test [busted args]`, which puts the
-- module of its build or installation on package.cpath.  (Inside this
-- repository, a plain busted also finds it in $SIO_BINARY_DIR/lua,
-- ./build-harness/lua or ./build/lua.)
--
-- API
--   testing.new(opts) -> h        opts: root (".") , workflows ("workflows"),
--       lua ("lua"), timeout ("10m": a command's limit on the virtual clock),
--       memory ("64m" | bytes), instructions (100000000), publish_limit
--       (SIO_PUBLISH_LIMIT's default: step results + sio.publish calls per
--       command), cpu_deadline (wall clock per command, ms; default none),
--       retry_base_ms, http_timeout (an http request's limit when it sets
--       none: HTTP_TIMEOUT's default), http_allow (SIO_HTTP_ALLOW as serve
--       takes it, "host,host:port" or a list; default none, as serve's: a
--       request to a host and port off it fails permanently, unanswered by
--       any stub), epoch (virtual unix time at clock 0, 1700000000), intent
--       (default for h:run), config / secrets ({name = value}: the
--       workflows' configuration and secrets, as h:stub("config" | "secret",
--       ...) sets them).
--   testing.load(intent, opts) -> h   new + checks the intent loads (errors
--       otherwise, naming files and lines); h:run(attrs) then runs it.
--   h:stub(cap, fn | canned)      cap = "http" | "kv" | "kafka" | "time"
--       http:  fn(req) -> response {status = 200, body = "..." | json = {...}, headers}
--       kv:    fn(op, key, value, ttl) -> value  (default: in-memory h.kv)
--       kafka: fn(topic, key, value) -> {partition, offset}  (default: h.produced)
--       time:  a number (unix seconds) or {unix = s, now = ms}: sets the clock
--       config, secret: {name = value, ...}: what sio.config / sio.secret and
--              ${config.x} / ${secret.x} read (replacing those given before);
--              a name the workflow lists but no stub gives fails the step
--              permanently, as an unset one does in the daemon.  Secrets
--              are redacted as the daemon redacts them: r.result, r.error,
--              r.text, r.lines, r.published and r.logs never hold one
--              ("[redacted:name]"); r.calls and r.steps[id].args show the
--              values as sent (the stubs see them).
--     A canned (non-function) answer is returned for every call.  A stub may
--     return testing.after(ms, v) (completes after ms of virtual time),
--     testing.fail(err) (the op fails: a string is a transient error, or give
--     {class = "permanent", message = ...}), or testing.never().
--   h:stub_tool(name, fn | canned)  replaces a tool (lua/tools/<name>.lua, a
--       native or a built-in one) by fn(args) -> payload; the rendered args
--       are recorded.  Calls go through the engine's native-tool path.
--   h:add_workflow(src, file)    an inline workflow (format from file's suffix).
--   h:advance(ms)  h:now() -> ms  h:set_time(unix_s)   the virtual clock
--   h:reset()                    stubs, tools, kv, produced, clock (config and
--                                secrets back to the opts given)
--   h:load_errors() -> {"file:line: message", ...}   what loading reports
--   h:intents() -> {intent, ...}   what the project defines, sorted
--   h:workflow([intent]) -> the workflow as the loader read it (steps, deps,
--       timeout_ms, retries, ...; functions as "<function>"), or nil
--   h:run([intent,] attrs) -> r
--     r.ok, r.result (the final result), r.error = {class, message, step},
--     r.text (raw JSON), r.lines (the JSON lines `sio-orchestrator run` prints),
--     r.published = {{step_id, payload, query}, ...} in order,
--     r.steps[id] = {status = "ok"|"failed"|"skipped"|"not_run", args,
--                   payload, json, attempts, error, guard}, r.order (ids in
--     file order), r.ran (ids that ran ok, completion order when the run
--     succeeded), r.skipped / r.failed / r.not_run (file order),
--     r.calls = {{kind, args | op, key, ... , at = ms, delay_ms, response |
--       failed, cancelled_at?}, ...} in order (cancelled_at: the engine
--       abandoned it, e.g. a step timeout or fail_fast),
--     r.timers = {{ms, at, cancelled_at?}, ...}: step timeouts, retry
--       backoffs and sio.sleep, in the order the engine started them,
--     r.retries = {id -> retries}, r.elapsed_ms (virtual), r.logs (decoded),
--     r.killed (limit message), r.file, r.intent, r.attrs (normalised).
--     r:expect_ok(), r:expect_error(class [, pattern [, step]]),
--     r:expect_ran(...), r:expect_skipped(...), r:expect_failed(...),
--     r:step(id), r:args(id), r:output(id), r:json(id): failures read
--     "workflows/x.yaml:12: step lookup: ...".
local M = {}

---------------------------------------------------------------------------
-- finding the C module

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function load_core()
  local ok, core = pcall(require, "sio_core")
  if ok then return core end
  local tried = {}
  local dirs = {}
  if os.getenv("SIO_BINARY_DIR") then dirs[#dirs + 1] = os.getenv("SIO_BINARY_DIR") .. "/lua" end
  dirs[#dirs + 1] = "build-harness/lua"
  dirs[#dirs + 1] = "build/lua"
  for _, d in ipairs(dirs) do
    local p = d .. "/sio_core.so"
    tried[#tried + 1] = p
    if file_exists(p) then
      local f, err = package.loadlib(p, "luaopen_sio_core")
      if not f then error("sio.testing: cannot load " .. p .. ": " .. tostring(err), 0) end
      core = f("sio_core")
      package.loaded.sio_core = core
      return core
    end
  end
  error("sio.testing: the sio_core Lua module was not found (package.cpath, "
    .. table.concat(tried, ", ") .. ").\nRun the specs with `sio-orchestrator test [busted args]`: "
    .. "it puts the module of its own build or installation on the Lua paths.", 0)
end

local core = load_core()
M.core = core
-- The engine's JSON codec is C (src/sandbox/luajson.c): the sandbox
-- preloads it as "sio.json".  Here, in busted's plain Lua state, the same
-- code comes from the module, for the harness and for engine modules
-- required directly (sio.api below, the engine specs).
local json = core.json
package.preload["sio.json"] = package.preload["sio.json"] or function() return json end
local duration_ms = require("sio.api").duration_ms

-- Warns once when the engine embedded in the module differs from the
-- sources next to this file (the module needs a rebuild).
local warned = false
local function check_engine_sources()
  if warned then return end
  warned = true
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$")
  if not here then return end
  local stale = {}
  for _, mod in ipairs({ "engine", "api", "workflow", "runner", "template", "guard", "errors", "testing_bridge" }) do
    local f = io.open(here .. "/" .. mod .. ".lua", "rb")
    if f then
      local src = f:read("a"); f:close()
      local emb = core.embedded_source("sio." .. mod)
      if emb ~= src then stale[#stale + 1] = "sio." .. mod end
    end
  end
  if #stale > 0 then
    io.stderr:write("sio.testing: WARNING: the engine built into sio_core.so differs from "
      .. here .. " (" .. table.concat(stale, ", ") .. "): specs run the BUILT engine; rebuild the module.\n")
  end
end

---------------------------------------------------------------------------
-- helpers

-- sizes and durations are read by the configuration's parsers (C)
local function parse_size(v, what)
  if v == nil then return nil end
  if type(v) == "number" then return math.floor(v) end
  local n, err = core.size(tostring(v))
  if not n then error("sio.testing: " .. what .. ": " .. err, 3) end
  return n
end

local function ms_of(v, what)
  if v == nil then return nil end
  local ms, err = duration_ms(core, v)
  if not ms then error("sio.testing: " .. what .. ": " .. err, 3) end
  return ms
end

local function join(root, p)
  if p:sub(1, 1) == "/" or root == "." or root == "" then return p end
  return root .. "/" .. p
end

local AFTER, FAIL, NEVER = {}, {}, {}
function M.after(ms, value) return setmetatable({ ms = ms_of(ms, "after"), value = value }, AFTER) end
function M.fail(err)
  if type(err) ~= "table" then err = { class = "transient", message = tostring(err), code = "UNAVAILABLE" } end
  err.class = err.class or "transient"
  err.message = err.message or "failed"
  return setmetatable({ err = err }, FAIL)
end
M.never = function() return NEVER end

-- Line of `id: <step>` in a workflow file/source (for messages).
local function step_line(src, id)
  if not src or not id then return nil end
  local n = 0
  local pat = "[\"']?id[\"']?%s*[:=]%s*[\"']?" .. id:gsub("%p", "%%%0") .. "[\"']?%s*[,}]?"
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local s, e = line:find(pat)
    if s then
      local after = line:sub(e + 1, e + 1)
      if not after:match("[%w_%-]") then return n end
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- results

local Result = {}
Result.__index = Result

function Result:where(step)
  local line = step and step_line(self._src, step)
  local s = self.file or ("workflow " .. tostring(self.intent))
  if line then s = s .. ":" .. line end
  if step then s = s .. ": step " .. step end
  return s
end

function Result:describe()
  local out = {}
  if self.ok then out[#out + 1] = "outcome: success"
  else
    local e = self.error or {}
    out[#out + 1] = ("outcome: %s error%s: %s"):format(tostring(e.class), e.step and (" in step " .. e.step) or "", tostring(e.message))
  end
  for _, id in ipairs(self.order or {}) do
    local s = self.steps[id]
    local extra = ""
    if s.error then extra = " (" .. tostring(s.error.class) .. ": " .. tostring(s.error.message) .. ")" end
    if s.attempts and s.attempts > 1 then extra = extra .. " after " .. s.attempts .. " attempts" end
    out[#out + 1] = ("  step %-16s %s%s"):format(id, s.status, extra)
  end
  for i, c in ipairs(self.calls or {}) do
    local what = c.kind == "http" and ((c.args.method or "GET") .. " " .. tostring(c.args.url))
      or c.kind == "tool" and ("tool " .. tostring(c.name))
      or c.kind == "kv" and ("kv " .. tostring(c.op) .. " " .. tostring(c.key))
      or c.kind == "produce" and ("kafka " .. tostring(c.topic))
      or c.kind
    out[#out + 1] = ("  call %d at %dms: %s"):format(i, math.floor(c.at or 0), what)
  end
  return table.concat(out, "\n")
end

-- Expectation failures are reported at the spec's line (the first caller
-- outside this file) and, under busted, as failures rather than errors:
-- busted binds luassert's `error` to busted.fail, so raising through
-- luassert makes a busted failure; without busted it is a plain error.
local THIS_FILE = debug.getinfo(1, "S").source
local has_luassert, luassert = pcall(require, "luassert")

-- The level, counted from the caller of spec_fail, of the first Lua
-- function outside this file.
local function spec_level()
  local level = 3 -- 1 = spec_level, 2 = spec_fail, 3 = spec_fail's caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    if info.source ~= THIS_FILE and info.what ~= "C" then return level - 1 end
    level = level + 1
  end
end

local function spec_fail(msg)
  local level = spec_level()
  if has_luassert then luassert(false, msg, luassert:level(level)) end
  error(msg, level)
end

local function fail_at(r, step, msg)
  spec_fail(r:where(step) .. ": " .. msg .. "\n" .. r:describe())
end

function Result:expect_ok()
  if not self.ok then
    local e = self.error or {}
    fail_at(self, e.step, ("expected the workflow to succeed, got a %s error: %s"):format(tostring(e.class), tostring(e.message)))
  end
  return self
end

function Result:expect_error(class, pattern, step)
  if self.ok then fail_at(self, step, "expected a " .. tostring(class) .. " error, the workflow succeeded") end
  local e = self.error
  if class and e.class ~= class then
    fail_at(self, e.step, ("expected a %s error, got %s: %s"):format(class, tostring(e.class), tostring(e.message)))
  end
  if pattern and not tostring(e.message):find(pattern) then
    fail_at(self, e.step, ("error message %q does not match %q"):format(tostring(e.message), pattern))
  end
  if step and e.step ~= step then
    fail_at(self, step, ("expected the error in step %s, it was in %s"):format(step, tostring(e.step)))
  end
  return self
end

function Result:step(id)
  local s = self.steps[id]
  if not s then
    spec_fail((self.file or "?") .. ": no step '" .. tostring(id) .. "' in workflow " .. tostring(self.intent)
      .. " (steps: " .. table.concat(self.order or {}, ", ") .. ")")
  end
  return s
end

local function expect_status(self, status, ids)
  for _, id in ipairs(ids) do
    local s = self.steps[id]
    if not s then fail_at(self, nil, "no step '" .. tostring(id) .. "'") end
    if s.status ~= status then
      local why = s.error and (" (" .. tostring(s.error.class) .. ": " .. tostring(s.error.message) .. ")") or ""
      fail_at(self, id, ("expected %s, got %s%s"):format(status, s.status, why))
    end
  end
  return self
end
function Result:expect_ran(...) return expect_status(self, "ok", { ... }) end
function Result:expect_skipped(...) return expect_status(self, "skipped", { ... }) end
function Result:expect_failed(...) return expect_status(self, "failed", { ... }) end

function Result:args(id)
  local s = self:step(id)
  if s.status == "skipped" or s.status == "not_run" then fail_at(self, id, "has no rendered args: it was " .. s.status) end
  return s.args
end
function Result:output(id)
  local s = self:step(id)
  if s.status ~= "ok" then fail_at(self, id, "has no output: it " .. (s.status == "failed" and "failed" or ("was " .. s.status))) end
  return s.payload
end
function Result:json(id)
  local p = self:output(id)
  local ok, v = pcall(json.decode, p)
  if not ok then fail_at(self, id, "output is not JSON: " .. tostring(p)) end
  return v
end
-- calls of one kind ("http", "tool", "kv", "produce"), in order
function Result:calls_of(kind, name)
  local out = {}
  for _, c in ipairs(self.calls) do
    if c.kind == kind and (name == nil or c.name == name) then out[#out + 1] = c end
  end
  return out
end

---------------------------------------------------------------------------
-- the harness

local H = {}
H.__index = H

-- A copy of a {name = value} table of config values or secrets.
local function value_table(t, what, level)
  if t == nil then return {} end
  if type(t) ~= "table" then error("sio.testing: " .. what .. " must be a table {name = value}", level + 1) end
  local out = {}
  for k, v in pairs(t) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error("sio.testing: " .. what .. ": each entry must be name = string", level + 1)
    end
    out[k] = tostring(v)
  end
  return out
end

function M.new(opts)
  opts = opts or {}
  local root = opts.root or "."
  local h = setmetatable({
    root = root,
    workflows_dir = join(root, opts.workflows or "workflows"),
    lua_dir = join(root, opts.lua or "lua"),
    timeout_ms = ms_of(opts.timeout or "10m", "timeout"),
    retry_base_ms = opts.retry_base_ms,
    http_timeout_ms = ms_of(opts.http_timeout, "http_timeout") or core.settings().http_timeout_ms,
    publish_limit = opts.publish_limit,
    intent = opts.intent,
    stubs = {}, tools = {}, sources = {},
    kv = {}, produced = {},
    clock = 0, epoch = opts.epoch or 1700000000,
  }, H)
  h.values0 = { config = value_table(opts.config, "config", 2), secret = value_table(opts.secrets, "secrets", 2) }
  h.values = { config = h.values0.config, secret = h.values0.secret }
  check_engine_sources()
  local lua_dir = h.lua_dir
  if not file_exists(lua_dir) then lua_dir = nil end -- sandbox: no user modules
  -- the settings serve would read from its environment: SIO_HTTP_ALLOW
  -- (none unless the spec gives it, as serve allows none by default) and
  -- HTTP_TIMEOUT, enforced by the host contract serve's workers use
  local allow = opts.http_allow
  if type(allow) == "table" then allow = table.concat(allow, ",") end
  if allow ~= nil and type(allow) ~= "string" then
    error("sio.testing: http_allow is a string (\"host,host:port\") or a list of them", 2)
  end
  h.box = core.new({
    lua_dir = lua_dir,
    mem_limit = parse_size(opts.memory, "memory"),
    instr_limit = opts.instructions,
    deadline_ms = ms_of(opts.cpu_deadline, "cpu_deadline"),
    timeout_ms = h.timeout_ms,
    env = { "SIO_HTTP_ALLOW=" .. (allow or ""), ("HTTP_TIMEOUT=%dms"):format(h.http_timeout_ms) },
    epoch_s = h.epoch,
  })
  return h
end

local CAPS = { http = true, kv = true, kafka = true, time = true, config = true, secret = true }

function H:stub(cap, answer)
  if not CAPS[cap] then
    error("sio.testing: unknown capability '" .. tostring(cap) .. "' (http, kv, kafka, time, config, secret; tools: h:stub_tool)", 2)
  end
  if cap == "config" or cap == "secret" then
    self.values[cap] = value_table(answer, "stub('" .. cap .. "', ...)", 2)
    return self
  end
  if cap == "time" then
    if type(answer) == "number" then self:set_time(answer)
    elseif type(answer) == "table" then
      if answer.now then self.clock = answer.now end
      if answer.unix then self:set_time(answer.unix) end
    else error("sio.testing: stub('time', ...) takes unix seconds or {unix = s, now = ms}", 2) end
    return self
  end
  self.stubs[cap] = answer
  return self
end

function H:stub_tool(name, answer)
  if type(name) ~= "string" then error("sio.testing: stub_tool(name, fn)", 2) end
  self.tools[name] = answer == nil and NEVER or answer
  return self
end

function H:add_workflow(src, file)
  self.sources[#self.sources + 1] = { src = src, file = file or "inline.yaml" }
  return self
end

function H:now() return self.clock end
function H:advance(ms) self.clock = self.clock + ms_of(ms, "advance"); return self end
function H:set_time(unix)
  self.epoch = unix - self.clock / 1000
  return self
end
function H:kv_key(intent, key) return "wf:" .. intent .. ":" .. key end

function H:reset()
  self.stubs, self.tools, self.kv, self.produced = {}, {}, {}, {}
  self.values = { config = self.values0.config, secret = self.values0.secret }
  self.clock = 0
  return self
end

function H:close()
  if self.box then self.box:close(); self.box = nil end
end

-- default answers ------------------------------------------------------------

local defaults = {}

function defaults.http(h, req)
  return M.fail({ class = "permanent", code = "NOTFOUND",
    message = ("sio.testing: no http stub for %s %s (use h:stub('http', fn))"):format(req.method or "GET", tostring(req.url)) })
end

function defaults.kv(h, op, key, value)
  if op == "get" then return h.kv[key] end
  if op == "set" then h.kv[key] = value; return "OK" end
  if op == "del" then local had = h.kv[key] ~= nil; h.kv[key] = nil; return had and 1 or 0 end
  if op == "incr" then
    local n = math.tointeger(tonumber(h.kv[key] or 0))
    if not n then return M.fail({ class = "permanent", message = "ERR value is not an integer or out of range" }) end
    h.kv[key] = tostring(n + 1)
    return n + 1
  end
end

function defaults.kafka(h, topic, key, value)
  h.produced[#h.produced + 1] = { topic = topic, key = key, value = value }
  return { partition = 0, offset = #h.produced - 1 }
end

local function normalise_http(resp)
  if getmetatable(resp) == AFTER or getmetatable(resp) == FAIL or resp == NEVER then return resp end
  if type(resp) ~= "table" then return { status = 200, headers = {}, body = resp == nil and "" or tostring(resp) } end
  local r = { status = resp.status or 200, headers = resp.headers or {} }
  local body = resp.body
  if resp.json ~= nil then
    body = json.encode(resp.json)
    if not r.headers["content-type"] then r.headers["content-type"] = "application/json" end
  elseif type(body) == "table" then body = json.encode(body) end
  r.body = body == nil and "" or body
  return r
end

-- Calls the stub for an op event; returns ok, value, delay_ms (nil: never).
local function answer(h, e, call)
  local kind = e.kind
  local stub, v
  local function invoke(fn, ...)
    local ok, res = pcall(fn, ...)
    if not ok then
      error({ stub_error = ("sio.testing: the %s stub raised: %s"):format(kind == "tool" and ("tool '" .. e.name .. "'") or kind, tostring(res)) })
    end
    return res
  end
  if kind == "http" then
    stub = h.stubs.http
    if stub == nil then v = defaults.http(h, e.args)
    elseif type(stub) == "function" then v = invoke(stub, e.args, call)
    else v = stub end
  elseif kind == "kv" then
    stub = h.stubs.kv
    if stub == nil then v = defaults.kv(h, e.op, e.key, e.value, e.ttl)
    elseif type(stub) == "function" then v = invoke(stub, e.op, e.key, e.value, e.ttl)
    else v = stub end
  elseif kind == "produce" then
    stub = h.stubs.kafka
    if stub == nil then v = defaults.kafka(h, e.topic, e.key, e.value)
    elseif type(stub) == "function" then v = invoke(stub, e.topic, e.key, e.value)
    else v = stub end
  elseif kind == "tool" then
    stub = h.tools[e.name]
    if type(stub) == "function" then v = invoke(stub, e.args, call) else v = stub end
  end
  local delay = 0
  while getmetatable(v) == AFTER do delay = delay + v.ms; v = v.value end
  if kind == "http" then v = normalise_http(v) end
  while getmetatable(v) == AFTER do delay = delay + v.ms; v = v.value end
  if kind == "http" then
    -- as libcurl in the daemon: no answer within the request's timeout
    -- (the host contract gives HTTP_TIMEOUT's when the request sets none)
    local limit = e.args.timeout_ms
    if v == NEVER or delay > limit then
      v, delay = M.fail({ class = "transient", code = "TIMEOUT", message = "http: timed out" }), limit
    end
  end
  if v == NEVER then return true, nil, nil end
  call.delay_ms = delay
  if getmetatable(v) == FAIL then
    call.failed = v.err
    return false, v.err, delay
  end
  call.response = v
  return true, v, delay
end

local function decode_lines(lines)
  local out = {}
  for i, l in ipairs(lines or {}) do
    local ok, v = pcall(json.decode, l)
    out[i] = ok and v or l
  end
  return out
end

local function read_src(h, file)
  for _, s in ipairs(h.sources) do if s.file == file then return s.src end end
  local f = io.open(file, "rb")
  if not f then return nil end
  local s = f:read("a"); f:close()
  return s
end

local function meta_for(h, intent, extra)
  local tools = {}
  for name in pairs(h.tools) do tools[name] = true end
  local m = { intent = intent, workflows = h.workflows_dir, lua_dir = h.lua_dir, tools = tools,
              sources = h.sources, retry_base_ms = h.retry_base_ms, publish_limit = h.publish_limit,
              values = h.values }
  for k, v in pairs(extra or {}) do m[k] = v end
  return m
end

-- A dry load through the engine's loader (nothing runs, the live set is
-- kept): the bridge's load with load_only, plus extra meta.
local function dry_load(h, intent, extra)
  local m = { load_only = true }
  for k, v in pairs(extra or {}) do m[k] = v end
  return h.box:load(meta_for(h, intent, m))
end

-- The errors loading the project (and the inline workflows) reports, each
-- "file:line: message", as `sio-orchestrator validate` prints them.
function H:load_errors()
  return dry_load(self, self.intent).load_errors or {}
end

-- The intents the project (and the inline workflows) define, sorted.
function H:intents()
  return dry_load(self, self.intent).intents or {}
end

-- The workflow `intent` as the loader read it (steps with ids, deps,
-- timeouts, retries, guards...; functions as "<function>"), or nil.
function H:workflow(intent)
  intent = intent or self.intent
  return dry_load(self, intent, { inspect = intent }).workflow
end

function M.load(intent, opts)
  opts = opts or {}
  opts.intent = intent
  local h = M.new(opts)
  -- the "unknown workflow" path reports the load errors
  local t = dry_load(h, intent)
  local found = false
  for _, i in ipairs(t.intents or {}) do if i == intent then found = true end end
  if not found then
    local close = core.suggest(intent, t.intents or {})
    local msg = ("sio.testing: no workflow with intent '%s' in %s%s (loaded: %s)"):format(
      intent, h.workflows_dir, close[1] and (" - did you mean " .. table.concat(close, ", ") .. "?") or "",
      table.concat(t.intents or {}, ", "))
    if t.load_errors and #t.load_errors > 0 then
      msg = msg .. "\nload errors:\n  " .. table.concat(t.load_errors, "\n  ")
    end
    error(msg, 2) -- a setup error (a string, as pcall callers expect), not an expectation
  end
  return h
end

function H:run(intent, attrs)
  if type(intent) ~= "string" then attrs = intent; intent = self.intent end
  if type(intent) ~= "string" then error("sio.testing: h:run(intent, attrs): no intent", 2) end
  attrs = attrs or {}
  local payload = type(attrs) == "string" and attrs or json.encode(attrs)
  if payload == "[]" then payload = "{}" end
  local box = self.box
  local r = setmetatable({ intent = intent, calls = {}, timers = {}, published = {}, logs = {}, lines = {} },
    Result)
  local queue, seq = {}, 0
  local ops = {} -- op id -> its call or timer record
  local start = self.clock
  box:set_clock(self.clock, self.epoch)

  local function push(id, ok, value, delay)
    if delay == nil then return end -- never completes
    seq = seq + 1
    queue[#queue + 1] = { at = self.clock + delay, seq = seq, id = id, ok = ok, value = value }
  end
  local function handle(ev)
    for _, l in ipairs(ev.logs or {}) do
      local ok, v = pcall(json.decode, l)
      r.logs[#r.logs + 1] = ok and v or l
    end
    for _, line in ipairs(ev.published or {}) do -- as `run` prints them
      local p = json.decode(line).result
      if p.query == json.null then p.query = nil end -- a step without a query
      r.published[#r.published + 1] = p
      r.lines[#r.lines + 1] = line
    end
    for _, e in ipairs(ev.events or {}) do
      local k = e.kind
      if k == "timer" then
        local t = { ms = e.ms, at = self.clock }
        r.timers[#r.timers + 1] = t
        ops[e.id] = t
        push(e.id, true, true, e.ms)
      elseif k == "deadline" then -- the worker's, for a command that waits
        push(e.id, true, true, e.ms)
      elseif k == "cancel" then
        for i, q in ipairs(queue) do if q.id == e.id then table.remove(queue, i); break end end
        if ops[e.id] then ops[e.id].cancelled_at = self.clock end
      else
        local call = { kind = k, id = e.id, at = self.clock }
        for key, v in pairs(e) do if key ~= "kind" and key ~= "id" and key ~= "args_json" then call[key] = v end end
        if e.args_json then call.args = json.decode(e.args_json); e.args = call.args end
        r.calls[#r.calls + 1] = call
        ops[e.id] = call
        local ok, v, delay = answer(self, e, call)
        push(e.id, ok, v, delay)
      end
    end
  end

  box:set_secrets(self.values.secret) -- redacted from what the run hands back
  local ok, err = pcall(function()
    local ev = box:run(intent, payload, meta_for(self, intent))
    while true do
      handle(ev)
      if ev.status == "done" then return ev end
      local best, bi
      for i, q in ipairs(queue) do
        if not best or q.at < best.at or (q.at == best.at and q.seq < best.seq) then best, bi = q, i end
      end
      if not best then error("sio.testing: the command waits, but nothing it waits for is pending") end
      table.remove(queue, bi)
      if best.at > self.clock then self.clock = best.at end
      box:set_clock(self.clock, self.epoch)
      ev = box:resume(best.id, best.ok, best.value)
    end
  end)
  if not ok then
    if box:stats().running then box:abort() end
    if type(err) == "table" and err.stub_error then error(err.stub_error, 2) end
    error(err, 2)
  end
  local ev = err
  r.elapsed_ms = self.clock - start
  r.killed = ev.killed
  r.instructions = ev.instructions
  r.mem_peak = ev.mem_peak
  r._trace = ev.trace
  r.text = ev.text
  local decoded = json.decode(r.text)
  r.ok = ev.ok and true or false
  if r.ok then r.result = decoded else r.error = decoded end
  r.lines[#r.lines + 1] = ev.line

  -- per-step view
  local t = ev.trace or {}
  r.file = t.file
  r._src = t.file and read_src(self, t.file)
  r.attrs = t.attrs
  r.steps, r.order, r.ran, r.skipped, r.failed, r.not_run, r.retries = {}, {}, {}, {}, {}, {}, {}
  for _, s in ipairs(t.steps or {}) do
    local rec = { id = s.id, status = s.status, args = s.args, payload = s.payload, attempts = s.attempts,
                  error = s.error, guard = s.guard, kind = s.kind, tool = s.tool }
    if type(s.payload) == "string" and s.payload:match("^%s*[%[{]") then
      local okj, v = pcall(json.decode, s.payload)
      if okj then rec.json = v end
    end
    r.steps[s.id] = rec
    r.order[#r.order + 1] = s.id
    if s.status == "skipped" then r.skipped[#r.skipped + 1] = s.id
    elseif s.status == "failed" then r.failed[#r.failed + 1] = s.id
    elseif s.status == "not_run" then r.not_run[#r.not_run + 1] = s.id end
    if s.attempts and s.attempts > 1 then r.retries[s.id] = s.attempts - 1 end
  end
  if r.ok and type(r.result.steps) == "table" then
    for _, id in ipairs(r.result.steps) do
      if r.steps[id] and r.steps[id].status == "ok" then r.ran[#r.ran + 1] = id end
    end
  else
    for _, id in ipairs(r.order) do if r.steps[id].status == "ok" then r.ran[#r.ran + 1] = id end end
  end
  return r
end

return M
