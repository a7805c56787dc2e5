-- sio.engine: executes a loaded workflow for one command.
--
--   result | nil, err = engine.execute(host, wf, attrs, opts)
--
-- Must be called inside the command coroutine. When every step of the
-- command is blocked on host ops, the engine yields that coroutine with
-- coroutine.yield("wait"); the driver resumes it with (op_id, ok, value) for
-- one completed op. Completions for ops the engine no longer waits on (a
-- timed-out step's request, a finished step's timeout timer) are ignored.
--
-- attrs is owned by the execution: it is normalised in place and becomes A
-- (step outputs are stored in it under their step ids).
-- opts = {
--   on_step_result = function(step_id, payload, query)  -- publish_result / sio.publish
--   retry_base_ms, retry_max_ms  -- step retry backoff: base * 2^(attempt-1),
--                                -- capped at max (RETRY_BACKOFF_BASE / _MAX,
--                                -- given by the runner from the settings)
--   publish_limit  = n,          -- SIO_PUBLISH_LIMIT, from the settings: step
--                                -- results + sio.publish calls the command may
--                                -- make; one more fails it permanently,
--                                -- whatever the step does with the error
--                                -- (nil = no cap: the default is the host's)
--   values = {config = {name -> value}, secret = {name -> value},
--             hint = {config = "...", secret = "..."}}
--                                -- the workflows' configuration and secrets
--                                -- (sio.config / sio.secret, ${config.x} /
--                                -- ${secret.x}); hint says where a missing
--                                -- one is set ({NAME} / {name}: the name)
-- }
--
-- A workflow reads only the config and secret names it lists (wf.config,
-- wf.secrets); another name, or a listed one with no value, is a permanent
-- error naming the name, the workflow and its file.
--
-- Attrs and step ids share A, so a command whose attrs have a key equal
-- to a step id of its workflow is refused before any step runs (a
-- permanent error naming the key): a dropped, skipped or failed step's
-- slot can then never be filled from attrs.  Step ids `utter` and `query`
-- are refused at load (sio.workflow), since normalisation writes them.
--
-- The step whose code is running is reported to the host as it changes
-- (host.exec_step(id) / host.exec_step(nil)); while the command waits, the
-- first step in file order that is waiting is reported.  A limit breach
-- (memory, instructions, deadline) then names that step, even though no
-- Lua code of the command can run any more once it is killed.
-- result = {summary = "workflow X: N steps ok, M skipped", steps = {ids in
-- completion order}, outputs = {step_id -> payload}, attempts = {step_id -> n}
-- (only steps that needed more than one), <declared output fields>}
-- err = {class = "transient"|"permanent", message = ..., step = id}
--
-- Telemetry: when the host has them (the C worker does, the busted harness
-- need not), the engine calls host.step_begin(i, id) when step i starts
-- running, host.step_retry(i, message) before a transient failure is
-- retried and host.step_end(i, ok, message) when it completes or fails for
-- good, so the host can time steps and give each a span; an op's span is
-- a child of the span of the step whose code runs (host.exec_step, above).
local json = require "sio.json"
local api = require "sio.api"
local errors = require "sio.errors"
local to_text = require("sio.template").to_text

local M = {}

local type, pcall, setmetatable, tostring, rawset = type, pcall, setmetatable, tostring, rawset
local co_resume, co_yield, isyieldable = coroutine.resume, coroutine.yield, coroutine.isyieldable
local co_status = coroutine.status
local tinsert, tremove, sformat, mmin = table.insert, table.remove, string.format, math.min
local encode, decode = json.encode, json.decode
local AWAIT = api.AWAIT
local DONE = setmetatable({}, { __name = "sio.done" })
local classify = errors.classify

-- A step waits at most this long for a retry the server asked to delay
-- (Retry-After); asked for longer, the step fails now and the command's
-- own retries (RETRY_BACKOFF_*) take over.
local RETRY_AFTER_MAX_MS = 60000

-- step states
local QUEUED, RUNNING, OK, SKIPPED, FAILED, DROPPED = 1, 2, 3, 4, 5, 6

local EMPTY = setmetatable({}, { __newindex = function() error("read-only") end })

-- A[step_id] records: `json` is decoded lazily from `payload` on first use.
-- The metatables are shared by every command of the worker, so user code
-- must not reach them: __metatable hides them from getmetatable and
-- refuses setmetatable.
local REC_MT = { __metatable = "sio.step_record", __index = function(t, k)
  if k ~= "json" then return nil end
  local p = rawget(t, "payload")
  if type(p) ~= "string" then return nil end
  local c = p:byte(1)
  if c ~= 123 and c ~= 91 then return nil end -- '{' or '['
  local ok, v = pcall(decode, p)
  if not ok then return nil end
  rawset(t, "json", v)
  return v
end }
-- A[step_id] of a failed step (no behaviour; marks it as the engine's).
local FAIL_MT = { __metatable = "sio.step_record" }

-- Is v a step record the engine wrote (never an attr: attrs come from JSON)?
local raw_getmetatable = debug.getmetatable
function M.is_record(v)
  local mt = raw_getmetatable(v)
  return mt == REC_MT or mt == FAIL_MT
end

local Cmd = {}
local class_of, summary_of -- (below)

---------------------------------------------------------------------------
-- per-command user-code instances (created lazily, only when needed)

-- The command's thread starts unarmed (sio_exec_bind_unarmed): the
-- engine's own code runs without the count hook, whose cost is paid on
-- every instruction while it is set.  Every user function (guard, run
-- code, Lua tool, filter, the Lua workflow file and its functions, a
-- module) is reached through one of the accessors below, and each arms
-- the command's execution first (host.exec_arm: the running thread and
-- the run's); a step with user code has its coroutine armed before each
-- resume (Cmd:resume).  When the user code returns (the guard's pcall,
-- the step coroutine's resume) the engine disarms (host.exec_disarm),
-- which the host refuses once user code has set a metatable: its
-- metamethods, in A or in a payload, could run inside the engine's own
-- code, so the command stays armed, on every thread, from then on.
function Cmd:arm()
  local arm = self.arm_fn
  if arm then arm() end
end

function Cmd:disarm()
  local disarm = self.disarm_fn
  if disarm then disarm() end
end

-- require "sio" is answered from the env's preload table, so env.require
-- stays the host's own function: its errors point at the user's line,
-- not at a wrapper in this file.  Module files are compiled once per
-- workflow-set version (the registry's `modules`, new at every load) and
-- instantiated per command.
function Cmd:env()
  local env = self._env
  if env then return env end
  local sio = self:sio()
  local reg = self.wf.registry
  env = self.host.safe_env({ sio = sio }, reg and reg.modules)
  rawset(env, "sio", sio)
  self._env = env
  return env
end

function Cmd:sio()
  local s = self._sio
  if not s then s = api.new(self); self._sio = s end
  return s
end

-- The Lua workflow file re-instantiated with this command's environment, so
-- inline functions never share state between commands.
function Cmd:wf_instance()
  self:arm()
  local inst = self._inst
  if inst then return inst end
  local factory = self.wf.factory
  if not factory then error({ class = "permanent", message = "workflow has no Lua factory" }, 0) end
  inst = factory(self:env())
  if type(inst) ~= "table" or type(inst.steps) ~= "table" then
    error({ class = "permanent", message = self.wf.file .. ": workflow file did not return its table" }, 0)
  end
  self._inst = inst
  return inst
end

function Cmd:user_filter(name)
  self:arm()
  local fs = self._filters
  if not fs then
    local factory = self.wf.filters_factory
    fs = factory and factory(self:env()) or {}
    self._filters = fs
  end
  local f = fs[name]
  if type(f) ~= "function" then
    error({ class = "permanent", message = "filter '" .. tostring(name) .. "' is not a function" }, 0)
  end
  return f
end

function Cmd:guard_fn(i)
  self:arm()
  local gs = self._guards
  if not gs then gs = {}; self._guards = gs end
  local g = gs[i]
  if g then return g end
  local step = self.wf.steps[i]
  if step.guard_lua then g = self:wf_instance().steps[i].guard
  elseif step.guard_pure then g = step.guard() -- shared (sio.workflow prepare)
  else g = step.guard(self:env()) end
  gs[i] = g
  return g
end

function Cmd:run_fn(i)
  self:arm()
  local step = self.wf.steps[i]
  if step.run_lua then return self:wf_instance().steps[i].run end
  local f = step.run_factory(not step.run_pure and self:env() or nil)
  if type(f) ~= "function" then
    error({ class = "permanent", message = "run module for step " .. step.id .. " must return a function" }, 0)
  end
  return f
end

function Cmd:user_tool(entry)
  self:arm()
  local ts = self._tools
  if not ts then ts = {}; self._tools = ts end
  local f = ts[entry.name]
  if f then return f end
  f = entry.factory(self:env())
  if type(f) ~= "function" then
    error({ class = "permanent", message = "tool module " .. tostring(entry.name) .. " (" .. tostring(entry.file) .. ") must return a function(args, ctx)" }, 0)
  end
  ts[entry.name] = f
  return f
end

---------------------------------------------------------------------------
-- limits

-- A tripped limit ends the whole execution (it must not be swallowed).
-- The host's limit error names the step that was running (exec_step).
function Cmd:killed()
  local k = self.host.exec_killed()
  if k then
    if not self.err or not self.err.killed then
      local e = classify(k)
      e.class = "permanent"
      e.killed = true
      self.err = e
    end
    return true
  end
  return false
end

-- Tells the host which step's code runs from now on (nil: the engine's).
local function no_mark() end
function Cmd:mark(i)
  self.set_step(i and self.wf.steps[i].id or nil)
end

-- Before waiting: the first step in file order that waits.
function Cmd:mark_waiting()
  local state = self.state
  for i = 1, self.wf.n do
    if state[i] == RUNNING then return self.set_step(self.wf.steps[i].id) end
  end
  self.set_step(nil)
end

-- The workflow's configuration value or secret `name` (kind "config" |
-- "secret"): raises a permanent error for a name the workflow does not
-- list or one with no value.
local LISTS = { config = "config", secret = "secrets" }
function Cmd:value(kind, name)
  local wf = self.wf
  if type(name) ~= "string" then
    error({ class = "permanent", message = sformat("sio.%s: the name must be a string, got %s", kind, type(name)) }, 0)
  end
  local allowed = wf.values_allowed and wf.values_allowed[kind]
  if not (allowed and allowed[name]) then
    error({ class = "permanent", message = sformat(
      "workflow '%s' may not read %s '%s': list it under `%s:` in %s", wf.intent, kind, name, LISTS[kind], wf.file) }, 0)
  end
  local values = self.opts.values
  local v = values and values[kind] and values[kind][name]
  if v == nil then
    local hint = values and values.hint and values.hint[kind]
    hint = hint and (" (" .. hint:gsub("{NAME}", (name:upper():gsub("%-", "_"))):gsub("{name}", name) .. ")") or ""
    error({ class = "permanent", message = sformat("%s '%s' is not set%s", kind, name, hint) }, 0)
  end
  return v
end

-- One step result or sio.publish call, counted against the publish limit.
-- Returns nil when published; past the limit, publishes nothing, fails the
-- command permanently (the error stays whatever the step does next) and
-- returns the error (sio.publish raises it, so the caller stops there).
function Cmd:publish(step_id, payload)
  local n = self.npublished + 1
  self.npublished = n
  local limit = self.opts.publish_limit
  if limit and n > limit then
    local e = { class = "permanent", step = step_id, message = sformat(
      "publish limit exceeded: more than %d step results and sio.publish calls in one command (SIO_PUBLISH_LIMIT)", limit) }
    if not self.err then self.err = e end
    return e
  end
  local cb = self.opts.on_step_result
  if cb then cb(step_id, payload, self.query) end
end

---------------------------------------------------------------------------
-- The class of the commands of one host: Cmd's methods and the host's
-- functions the engine calls on every step (looked up once per host, not
-- stored in every command).  Trusted: user code never sees a command.
local classes = setmetatable({}, { __mode = "k" })
function class_of(host)
  local c = classes[host]
  if c then return c end
  c = {}
  for k, v in pairs(Cmd) do c[k] = v end
  c.host = host
  c.t_begin, c.t_retry, c.t_end = host.step_begin, host.step_retry, host.step_end
  c.set_step = host.exec_step or no_mark
  c.arm_fn, c.disarm_fn = host.exec_arm, host.exec_disarm
  c.__index = c
  classes[host] = c
  return c
end

-- "workflow X: N steps ok, M skipped[, K failed]", made once per workflow
-- and counts (the workflow's table keeps them; strings are immutable).
function summary_of(wf, nok, nskipped, nfailed)
  local cache = wf.summaries
  if not cache then cache = {}; wf.summaries = cache end
  local key = (nok * 1024 + nskipped) * 1024 + nfailed
  local s = cache[key]
  if s then return s end
  s = sformat("workflow %s: %d steps ok, %d skipped", wf.intent, nok, nskipped)
  if nfailed > 0 then s = s .. sformat(", %d failed", nfailed) end
  if nok < 1024 and nskipped < 1024 and nfailed < 1024 then cache[key] = s end
  return s
end

---------------------------------------------------------------------------
-- scheduling

local function normalise(payload)
  local t = type(payload)
  if t == "string" then return payload end
  if payload == nil then return "" end
  if t == "table" then return encode(payload) end
  return to_text(payload)
end

-- Body of a step coroutine.
local function step_main(cx, i)
  local step = cx.wf.steps[i]
  local r = cx.rt[i]
  local args = r.args
  if args == nil and step.args then args = step.args(cx.A, cx); r.args = args end
  local payload, extra
  if step.kind == "tool" then
    local entry = step.tool
    if entry.kind == "builtin" then
      payload, extra = entry.fn(args, cx)
    elseif entry.kind == "lua" then
      payload = cx:user_tool(entry)(args, cx:step_ctx(i, args))
    else -- native: host.tool(name, args) -> op; completion value = payload
      local tool = cx.host.tool
      if not tool then error({ class = "permanent", message = "native tool '" .. entry.name .. "' is not available in this host" }, 0) end
      local op, err = tool(entry.name, args)
      if not op then error(errors.is_classified(err) and err or { class = "transient", message = errors.describe(err) }, 0) end
      local ok, v = api.await(op)
      if not ok then error(errors.is_classified(v) and v or { class = "transient", message = errors.describe(v) }, 0) end
      payload = v
    end
  else
    payload = cx:run_fn(i)(cx.A, args, cx:step_ctx(i, args))
  end
  return DONE, payload, extra
end

-- Body of a step coroutine: runs steps one after another, yielding each
-- one's DONE, so the command reuses it for the next step it starts
-- (Cmd.spare_co).  A step that fails, times out or yields anything else
-- leaves it for good.
local function step_loop(cx, i)
  while true do cx, i = co_yield(step_main(cx, i)) end
end

function Cmd:step_ctx(i, args)
  local step = self.wf.steps[i]
  return { step = step.id, attempt = self.rt[i].attempts, intent = self.wf.intent,
           A = self.A, args = args, sio = self:sio() }
end

function Cmd:enqueue(i)
  local ready = self.ready
  local n = #ready
  -- keep file order among ready steps
  local pos = n + 1
  while pos > 1 and ready[pos - 1] > i do pos = pos - 1 end
  tinsert(ready, pos, i)
  self.state[i] = QUEUED
end

-- A step is finished (ok, skipped, or failed with continue_on_error):
-- release its dependants.
function Cmd:release(i)
  local remaining, state = self.remaining, self.state
  if not remaining then return end -- run_straight: nothing waits to be released
  local dependants = self.wf.steps[i].dependants
  for k = 1, #dependants do
    local d = dependants[k]
    local n = remaining[d] - 1
    remaining[d] = n
    if n == 0 then
      if state[d] == nil then self:enqueue(d)
      elseif state[d] == DROPPED then self:release(d) end
    end
  end
end

-- extra: more fields of the step's record, from a built-in tool (the http
-- tool's status, headers and body).
function Cmd:complete(i, payload, args, attempts, extra)
  local step = self.wf.steps[i]
  local id = step.id
  local te = self.t_end
  if te then te(i, true) end
  self.running = self.running - 1
  self.state[i] = OK
  local rec = { payload = payload, args = args, ok = true, attempts = attempts }
  if extra then for k, v in pairs(extra) do if rec[k] == nil then rec[k] = v end end end
  self.A[id] = setmetatable(rec, REC_MT)
  self.outputs[id] = payload
  local done = self.done
  done[#done + 1] = id
  self.nok = self.nok + 1
  if attempts > 1 then
    local at = self.attempts
    if not at then at = {}; self.attempts = at end
    at[id] = attempts
  end
  if step.publish and self:publish(id, payload) then return end
  self:release(i)
end

function Cmd:fail(i, err)
  local step = self.wf.steps[i]
  local r = self.rt and self.rt[i]
  local attempts = r and r.attempts or 1
  err.step = err.step or step.id
  err.attempts = attempts
  local te = self.t_end
  if te then te(i, false, tostring(err.message)) end
  self.running = self.running - 1
  self.state[i] = FAILED
  self.nfailed = self.nfailed + 1
  self.A[step.id] = setmetatable({ ok = false, error = err, payload = "", attempts = attempts, args = r and r.args }, FAIL_MT)
  if step.continue_on_error then
    local done = self.done
    done[#done + 1] = step.id
    self:release(i)
    return
  end
  if self.wf.fail_fast then
    if not self.err then self.err = err end
  elseif not self.first_err then
    self.first_err = err
  end
end

function Cmd:cancel(op)
  local c = self.host.cancel
  if c and op then c(op) end
end

function Cmd:start(i)
  local step = self.wf.steps[i]
  self.running = self.running + 1
  self.state[i] = RUNNING
  if step.has_guard then
    self:mark(i)
    local ok, v = pcall(self.guard_eval, self, i)
    self:disarm()
    self:mark(nil)
    if self:killed() then return end
    if not ok then
      local e = classify(v, step.id)
      e.class = "permanent"
      e.message = "guard failed: " .. tostring(e.message)
      return self:fail(i, e)
    end
    if not v then
      self.running = self.running - 1
      self.state[i] = SKIPPED
      self.nskipped = self.nskipped + 1
      return self:release(i)
    end
  end
  local tb = self.t_begin
  if tb then tb(i, step.id) end
  if step.sync then
    local A = self.A
    self:mark(i)
    local ok, args, payload = pcall(self.run_sync, self, step, A)
    self:mark(nil)
    if self:killed() then return end
    if not ok then return self:fail(i, classify(args, step.id)) end
    return self:complete(i, payload, args, 1)
  end
  local rt = self.rt
  if not rt then
    rt = {}; self.rt = rt
    self.ops, self.timers, self.backoffs = {}, {}, {}
  end
  rt[i] = { attempts = 0 }
  return self:attempt(i)
end

function Cmd:guard_eval(i)
  return self:guard_fn(i)(self.A)
end

-- sync built-in tools (echo, noop): render args and run inline.
function Cmd:run_sync(step, A)
  local args
  local plan = step.args
  if plan then args = plan(A, self) end
  return args, normalise(step.tool.fn(args, self))
end

function Cmd:attempt(i)
  local step = self.wf.steps[i]
  local r = self.rt[i]
  r.attempts = r.attempts + 1
  local co = self.spare_co
  if co and co_status(co) == "suspended" then self.spare_co = nil
  else co = self.host.coroutine_create(step_loop) end
  r.co = co
  if step.timeout_ms then
    local t, err = self.host.timer(step.timeout_ms)
    if not t then return self:step_error(i, { class = "transient", message = "timer: " .. tostring(err), step = step.id }) end
    self.timers[t] = i
    r.timer = t
  end
  return self:resume(i, self, i)
end

function Cmd:resume(i, ...)
  local r = self.rt[i]
  local prev = self.current
  self.current = i
  self:mark(i)
  -- a step with user code runs armed; any other step's coroutine gets the
  -- hook when the command has it for good (see Cmd:arm)
  local user = self.wf.steps[i].user_code
  local arm = self.arm_fn
  if arm then arm(r.co, not user) end
  local ok, a, b, c = co_resume(r.co, ...)
  if user then local disarm = self.disarm_fn; if disarm then disarm(r.co) end end
  self:mark(prev)
  self.current = prev
  if self:killed() then return end
  if not ok then return self:step_error(i, classify(a, self.wf.steps[i].id)) end
  if a == DONE then
    self.spare_co = r.co
    r.co = nil
    if r.timer then self.timers[r.timer] = nil; self:cancel(r.timer); r.timer = nil end
    -- the payload is the step's own value: one that cannot become JSON (a
    -- function in a table, say) fails the step, it never escapes the engine
    local enc_ok, payload = pcall(normalise, b)
    if not enc_ok then
      return self:step_error(i, { class = "permanent", step = self.wf.steps[i].id,
        message = "the step's result cannot be sent as JSON: " .. errors.describe(payload) })
    end
    return self:complete(i, payload, r.args, r.attempts, c)
  end
  if a == AWAIT and b ~= nil then
    r.op = b
    self.ops[b] = i
    return
  end
  r.co = nil
  return self:step_error(i, { class = "permanent", step = self.wf.steps[i].id,
    message = "step yielded outside sio.await (coroutine.yield is not allowed at step level)" })
end

function Cmd:step_error(i, err)
  local step = self.wf.steps[i]
  local r = self.rt[i]
  if r.timer then self.timers[r.timer] = nil; self:cancel(r.timer); r.timer = nil end
  if r.op then self.ops[r.op] = nil; self:cancel(r.op); r.op = nil end
  r.co = nil
  local wait = err.retry_after_ms
  if err.class == "transient" and r.attempts <= step.retries and not (wait and wait > RETRY_AFTER_MAX_MS) then
    local opts = self.opts
    local delay = mmin((opts.retry_base_ms or 0) * 2 ^ (r.attempts - 1), opts.retry_max_ms or math.huge)
    if wait and wait > delay then delay = wait end -- the server's Retry-After
    local t = self.host.timer(delay)
    if t then
      local tr = self.t_retry
      if tr then tr(i, tostring(err.message)) end
      self.backoffs[t] = i
      r.backoff = t
      r.last_error = err
      return
    end
  end
  return self:fail(i, err)
end

function Cmd:dispatch(op, ok, val)
  local ops = self.ops
  if not ops then return end
  local i = ops[op]
  if i then
    ops[op] = nil
    self.rt[i].op = nil
    return self:resume(i, ok, val)
  end
  i = self.timers[op]
  if i then
    self.timers[op] = nil
    local r = self.rt[i]
    r.timer = nil
    local step = self.wf.steps[i]
    return self:step_error(i, { class = "transient", step = step.id,
      message = sformat("step %s timed out after %s", step.id, step.timeout_text) })
  end
  i = self.backoffs[op]
  if i then
    self.backoffs[op] = nil
    self.rt[i].backoff = nil
    return self:attempt(i)
  end
  -- a stale completion: ignore
end

-- Abandon everything still in flight (fail_fast / kill).
function Cmd:abandon()
  if not self.rt then return end
  for op in pairs(self.ops) do self:cancel(op) end
  for op in pairs(self.timers) do self:cancel(op) end
  for op in pairs(self.backoffs) do self:cancel(op) end
  self.ops, self.timers, self.backoffs = {}, {}, {}
end

---------------------------------------------------------------------------

-- The scheduler: steps start as they become ready (file order among
-- them, at most wf.max_concurrency running), and the command waits when
-- all that run are blocked on host ops.
local function schedule(cx)
  local wf, state = cx.wf, cx.state
  local n = wf.n
  local remaining, indeg = {}, wf.indeg
  for i = 1, n do remaining[i] = indeg[i] end
  cx.remaining, cx.ready = remaining, {}
  local steps = wf.steps

  -- Personalize: drop steps whose guard is false against the attrs
  for i = 1, n do
    if steps[i].has_guard then
      cx:mark(i)
      local ok, v = pcall(cx.guard_eval, cx, i)
      cx:disarm()
      cx:mark(nil)
      if cx:killed() then return end
      -- A guard that raises here usually reads an output that does not exist
      -- yet (A.s1.json...): keep the step; the evaluation just before it runs
      -- decides, and raising there fails the step permanently.
      if ok and not v then state[i] = DROPPED; cx.ndropped = cx.ndropped + 1 end
    end
  end
  -- A dropped step passes through: it "finishes" when its own dependencies
  -- do, so its dependants still wait for those (a -> b (dropped) -> c runs
  -- c after a, in file order as in a DAG).
  local ready = cx.ready
  for i = 1, n do
    if remaining[i] == 0 then
      if state[i] == nil then cx:enqueue(i)
      elseif state[i] == DROPPED then cx:release(i) end
    end
  end

  -- Execute
  local maxc = wf.max_concurrency
  while true do
    while cx.running < maxc and ready[1] and not cx.err do
      cx:start(tremove(ready, 1))
    end
    if cx.err then break end
    if cx.running == 0 and not ready[1] then break end
    if cx.running >= maxc or not ready[1] then
      cx:mark_waiting()
      local op, ok, val = co_yield("wait")
      cx:mark(nil)
      cx:dispatch(op, ok, val)
    end
  end
end

-- A workflow whose steps are all sync and unguarded (wf.straight, see
-- sio.workflow) runs down its plan, wf.order, with nothing to schedule: a
-- step runs when each of its dependencies succeeded or failed with
-- continue_on_error, as the scheduler would have released it.
local function run_straight(cx)
  local wf, state = cx.wf, cx.state
  local steps, order = wf.steps, wf.order
  for k = 1, wf.n do
    local i = order[k]
    local deps, go = steps[i].deps, true
    for j = 1, #deps do
      local d = deps[j]
      local st = state[d]
      if st ~= OK and not (st == FAILED and steps[d].continue_on_error) then go = false; break end
    end
    if go then cx:start(i) end
    if cx.err then return end
  end
end

function M.execute(host, wf, attrs, opts)
  if not isyieldable() then
    error("sio.engine.execute must run inside the command coroutine", 2)
  end
  opts = opts or EMPTY
  local A = attrs or {}
  local ids = wf.step_ids
  for k = 1, #ids do
    local id = ids[k]
    if A[id] ~= nil then
      return nil, { class = "permanent", message = sformat(
        "attrs key '%s' is the id of a step of workflow '%s': step outputs are A.<step id>, so attrs may not use step ids", id, wf.intent) }
    end
  end
  -- Personalize: utter <- echo <- query when utter is absent; query = utter
  local utter = A.utter
  if utter == nil or utter == json.null then
    utter = A.echo
    if utter == nil or utter == json.null then utter = A.query end
    if utter == json.null then utter = nil end
    A.utter = utter
  end
  A.query = utter

  local cx
  if wf.straight then
    cx = setmetatable({
      wf = wf, A = A, opts = opts, query = utter, state = {}, running = 0,
      done = {}, outputs = {}, nok = 0, nskipped = 0, nfailed = 0, ndropped = 0, npublished = 0,
    }, class_of(host))
    run_straight(cx)
  else
    -- (the fields the scheduler adds are named, nil, so that the table is
    -- made with room for them instead of growing as they come)
    cx = setmetatable({
      wf = wf, A = A, opts = opts, query = utter, state = {}, running = 0,
      done = {}, outputs = {}, nok = 0, nskipped = 0, nfailed = 0, ndropped = 0, npublished = 0,
      remaining = nil, ready = nil, rt = nil, ops = nil, timers = nil, backoffs = nil,
      current = nil, spare_co = nil, _guards = nil, _env = nil, _sio = nil,
    }, class_of(host))
    schedule(cx)
  end

  if cx.err then cx:abandon(); return nil, cx.err end
  if cx.first_err then return nil, cx.first_err end

  local summary = summary_of(wf, cx.nok, cx.nskipped + cx.ndropped, cx.nfailed)
  local result = { summary = summary, steps = cx.done, outputs = cx.outputs, attempts = cx.attempts }
  local out = wf.output
  if out then
    local ok, v = pcall(out, A, cx)
    if cx:killed() then return nil, cx.err end
    if not ok then return nil, classify(v) end
    if type(v) == "table" then
      for k, x in pairs(v) do result[k] = x end
    else
      result.output = v
    end
  end
  return result
end

M.states = { QUEUED = QUEUED, RUNNING = RUNNING, OK = OK, SKIPPED = SKIPPED, FAILED = FAILED, DROPPED = DROPPED }
return M
