-- spec/support/fakehost.lua: a pure-Lua stand-in for the C `sio.host`
-- module (see docs/DESIGN.md, "The host contract"), for busted specs.
--
--   local fakehost = require "support.fakehost"
--   local host = fakehost.new{ lua_dir = "lua" }
--   host.http_stub = function(req) return ok, value, delay_ms end
--   local res, err = host:run(engine.execute, host, wf, attrs, opts)
--
-- Async ops complete through an event queue with a virtual clock: now() and
-- time() only advance when the scheduler fires an event scheduled in the
-- future (timers, or stubs that return a delay). host.in_flight counts the
-- non-timer ops started and not yet completed; host.max_in_flight is its peak.
local M = {}

local function freeze(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error("attempt to modify frozen " .. name .. "." .. tostring(k), 2) end,
    __metatable = false,
  })
end

local function copy(t, skip)
  local c = {}
  for k, v in pairs(t) do if not (skip and skip[k]) then c[k] = v end end
  return c
end

local SAFE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, xpcall = xpcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = rawset, select = select, setmetatable = setmetatable, getmetatable = getmetatable,
  tonumber = tonumber, tostring = tostring, type = type, _VERSION = _VERSION,
  string = freeze(copy(string, { dump = true }), "string"),
  table = freeze(copy(table), "table"),
  math = freeze(copy(math), "math"),
  utf8 = freeze(copy(utf8), "utf8"),
  coroutine = freeze(copy(coroutine), "coroutine"),
  os = freeze({ time = os.time, clock = os.clock, date = os.date }, "os"),
}
local FROZEN = freeze(SAFE, "_G")
M.safe_globals = FROZEN

function M.new(opts)
  opts = opts or {}
  local h = {
    clock = opts.start_ms or 0,      -- virtual ms
    epoch = opts.epoch or 1700000000, -- wall clock at clock = 0 (s)
    lua_dir = opts.lua_dir or "lua",
    logs = {}, produced = {}, kv_store = {}, http_requests = {},
    events = {},                      -- {at, seq, op, ok, value, timer}
    seq = 0, next_op = 0, in_flight = 0, max_in_flight = 0,
    ops_started = 0, timers_started = 0, cancelled = {},
    killed = false, next_uuid = 0, waits = 0,
  }

  function h.compile(src, chunkname)
    return load(src, chunkname, "t")
  end

  function h.safe_env(preload)
    local env = setmetatable({}, { __index = FROZEN, __metatable = false })
    env._G = env
    local loaded = {}
    for k, v in pairs(preload or {}) do loaded[k] = v end
    -- require resolves modules under the project's lua/ dir, with this env
    env.require = function(name)
      if loaded[name] ~= nil then return loaded[name] end
      local path = h.lua_dir .. "/" .. tostring(name):gsub("%.", "/") .. ".lua"
      local f = io.open(path, "rb")
      if not f then error("module '" .. tostring(name) .. "' not found", 2) end
      local src = f:read("a"); f:close()
      local chunk, err = load(src, "@" .. path, "t", env)
      if not chunk then error(err, 2) end
      local v = chunk(name)
      if v == nil then v = true end
      loaded[name] = v
      return v
    end
    return env
  end

  h.coroutine_create = coroutine.create
  function h.now() return h.clock end
  function h.time() return h.epoch + h.clock / 1000 end
  function h.uuid() h.next_uuid = h.next_uuid + 1; return ("00000000-0000-4000-8000-%012d"):format(h.next_uuid) end
  function h.log(level, msg, fields) h.logs[#h.logs + 1] = { level = level, msg = msg, fields = fields } end
  function h.exec_killed() return h.killed end
  -- the step the engine says runs now (host.exec_step); h.steps_marked
  -- records every change
  h.steps_marked = {}
  function h.exec_step(id)
    if h.killed then return end
    h.step = id
    h.steps_marked[#h.steps_marked + 1] = id or false
  end

  local function schedule(delay, ok, value, timer)
    h.next_op = h.next_op + 1
    h.seq = h.seq + 1
    local op = h.next_op
    h.events[#h.events + 1] = { at = h.clock + (delay or 0), seq = h.seq, op = op, ok = ok, value = value, timer = timer }
    if timer then h.timers_started = h.timers_started + 1
    else
      h.ops_started = h.ops_started + 1
      h.in_flight = h.in_flight + 1
      if h.in_flight > h.max_in_flight then h.max_in_flight = h.in_flight end
    end
    return op
  end

  function h.timer(ms) return schedule(ms, true, nil, true) end

  function h.cancel(op)
    for k, e in ipairs(h.events) do
      if e.op == op then
        table.remove(h.events, k)
        if not e.timer then h.in_flight = h.in_flight - 1 end
        h.cancelled[#h.cancelled + 1] = op
        return true
      end
    end
    return false
  end

  -- http_stub(req) -> ok, response_or_error, delay_ms
  -- default: 200 with body "ok"
  h.http_stub = opts.http_stub or function() return true, { status = 200, headers = {}, body = "ok" }, 0 end
  function h.http(req)
    h.http_requests[#h.http_requests + 1] = req
    if h.http_fail_start then return nil, h.http_fail_start end
    local ok, v, delay = h.http_stub(req)
    return schedule(delay or 0, ok, v)
  end

  -- kv(op, key, value, ttl): in-memory store; h.kv_delay / h.kv_fail optional
  function h.kv(op, key, value, ttl)
    if h.kv_fail then return schedule(h.kv_delay or 0, false, h.kv_fail) end
    local result
    if op == "get" then result = h.kv_store[key]
    elseif op == "set" then h.kv_store[key] = value; result = "OK"
    elseif op == "del" then h.kv_store[key] = nil; result = 1
    elseif op == "incr" then result = (tonumber(h.kv_store[key]) or 0) + 1; h.kv_store[key] = tostring(result)
    else return nil, "unknown kv op " .. tostring(op) end
    return schedule(h.kv_delay or 0, true, result)
  end

  function h.produce(topic, key, value)
    h.produced[#h.produced + 1] = { topic = topic, key = key, value = value }
    return schedule(h.produce_delay or 0, true, true)
  end

  -- Pop the next event: earliest `at`, then FIFO. Advances the clock.
  local function next_event()
    local best, bi
    for k, e in ipairs(h.events) do
      if not best or e.at < best.at or (e.at == best.at and e.seq < best.seq) then best, bi = e, k end
    end
    if not best then return nil end
    table.remove(h.events, bi)
    if best.at > h.clock then h.clock = best.at end
    if not best.timer then h.in_flight = h.in_flight - 1 end
    return best
  end

  -- run(fn, ...) drives a command coroutine to completion, acting as the
  -- worker's driver: every yield must be "wait"; it is resumed with one
  -- completed op (op_id, ok, value). Returns fn's results.
  function h:run(fn, ...)
    local co = coroutine.create(fn)
    local res = table.pack(coroutine.resume(co, ...))
    while true do
      if not res[1] then error(res[2], 0) end
      if coroutine.status(co) == "dead" then
        h.leftover_events = #h.events
        h.events = {}
        h.in_flight = 0
        return table.unpack(res, 2, res.n)
      end
      if res[2] ~= "wait" then error("command coroutine yielded " .. tostring(res[2]) .. " instead of \"wait\"", 0) end
      h.waits = h.waits + 1
      local e = next_event()
      if not e then error("deadlock: the engine waits but no op is pending", 0) end
      res = table.pack(coroutine.resume(co, e.op, e.ok, e.value))
    end
  end

  return h
end

return M
