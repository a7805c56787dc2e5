-- sio.api: the user-visible `sio` module (built per command) and the
-- built-in tools. Everything here is trusted code; user code only ever sees
-- the table returned by api.new().
--
-- Waiting on host ops: step code runs in a step coroutine; api.await(op)
-- yields (AWAIT, op) to the engine scheduler, which resumes the step with
-- (ok, value) when the host reports the op complete.
local cjson = require "cjson"
local errors = require "sio.errors"
local template = require "sio.template"

local M = {}

local type, tostring, error, yield = type, tostring, error, coroutine.yield
local encode, decode = cjson.encode, cjson.decode

local AWAIT = setmetatable({}, { __name = "sio.await", __metatable = false })
M.AWAIT = AWAIT

-- await(op) -> ok, value   (only inside a step coroutine)
local function await(op) return yield(AWAIT, op) end
M.await = await

local function transient(msg) error({ class = "transient", message = msg }, 0) end
local function permanent(msg) error({ class = "permanent", message = msg }, 0) end

-- An op failed: keep a classified error, otherwise it is transient
-- (network, timeouts, unavailable services).
local function op_failed(what, e)
  if errors.is_classified(e) then error(e, 0) end
  transient(what .. ": " .. errors.describe(e))
end

-- Duration "500ms" | "30s" | "2m" | "1h" | "1m30s" -> ms; a number is ms.
local units = { ms = 1, s = 1000, m = 60000, h = 3600000 }
function M.parse_duration(v)
  if type(v) == "number" then
    if v < 0 then return nil, "negative duration" end
    return v
  end
  if type(v) ~= "string" then return nil, "duration must be a string like \"30s\"" end
  local total, pos, s = 0, 1, v:match("^%s*(.-)%s*$")
  if s == "" then return nil, "empty duration" end
  while pos <= #s do
    local num, unit, e = s:match("^(%d+%.?%d*)(%a+)()", pos)
    if not num or not units[unit] then
      return nil, "bad duration '" .. v .. "' (use e.g. 500ms, 30s, 2m, 1h)"
    end
    total = total + tonumber(num) * units[unit]
    pos = e
  end
  return total
end

-- HTTP through the host (the host enforces its allow-list; here we refuse
-- anything that is not http(s)). Returns the response {status, headers, body}.
function M.http_request(host, req)
  if type(req) ~= "table" then permanent("sio.http.request expects a table") end
  local url = req.url
  if type(url) ~= "string" or not (url:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/]")) then
    permanent("http: only http(s) URLs are allowed, got " .. tostring(url))
  end
  local timeout = req.timeout
  if timeout ~= nil then
    local ms, err = M.parse_duration(timeout)
    if not ms then permanent("http: " .. err) end
    timeout = ms
  end
  local body = req.body
  if type(body) == "table" then body = encode(body) end
  local op, err = host.http({
    method = type(req.method) == "string" and req.method:upper() or "GET",
    url = url, headers = req.headers, body = body, timeout_ms = timeout,
  })
  if not op then op_failed("http " .. url, err) end
  local ok, resp = await(op)
  if not ok then op_failed("http " .. url, resp) end
  return resp
end

local function kv_key(cx, key)
  if type(key) ~= "string" and type(key) ~= "number" then permanent("kv: key must be a string") end
  return "wf:" .. cx.wf.intent .. ":" .. key
end

local function kv_call(cx, op, key, value, ttl)
  local id, err = cx.host.kv(op, kv_key(cx, key), value, ttl)
  if not id then op_failed("kv " .. op, err) end
  local ok, v = await(id)
  if not ok then op_failed("kv " .. op, v) end
  return v
end

local function produce(cx, topic, key, value)
  if type(topic) ~= "string" or topic == "" then permanent("kafka: topic must be a non-empty string") end
  if type(value) == "table" then value = encode(value) end
  if key ~= nil then key = tostring(key) end
  local id, err = cx.host.produce(topic, key, value ~= nil and tostring(value) or nil)
  if not id then op_failed("kafka produce " .. topic, err) end
  local ok, v = await(id)
  if not ok then op_failed("kafka produce " .. topic, v) end
  return true
end

-- api.new(cx) -> sio   (cx: the engine's command context)
function M.new(cx)
  local host = cx.host
  local sio = {}
  sio.log = function(level, msg, fields)
    local f = { intent = cx.wf.intent }
    local cur = cx.current and cx.wf.steps[cx.current]
    if cur then f.step = cur.id end
    if type(fields) == "table" then for k, v in pairs(fields) do f[k] = v end end
    host.log(tostring(level or "info"), tostring(msg), f)
  end
  sio.json = { encode = encode, decode = decode, null = cjson.null }
  sio.publish = function(payload)
    local cur = cx.current and cx.wf.steps[cx.current]
    if not cur then permanent("sio.publish called outside a step") end
    if type(payload) == "table" then payload = encode(payload) else payload = tostring(payload) end
    local err = cx:publish(cur.id, payload)
    if err then error(err, 0) end
  end
  sio.error = {
    transient = function(msg) error({ class = "transient", message = tostring(msg) }, 0) end,
    permanent = function(msg) error({ class = "permanent", message = tostring(msg) }, 0) end,
  }
  sio.http = { request = function(req) return M.http_request(host, req) end }
  sio.kv = {
    get = function(key) return kv_call(cx, "get", key) end,
    set = function(key, value, ttl) kv_call(cx, "set", key, value, ttl); return true end,
    del = function(key) kv_call(cx, "del", key); return true end,
    incr = function(key) return kv_call(cx, "incr", key) end,
  }
  sio.kafka = { produce = function(topic, key, value) return produce(cx, topic, key, value) end }
  sio.time = { now = host.now, unix = host.time }
  -- sio.sleep(ms): waits without blocking other steps or commands
  sio.sleep = function(ms)
    if type(ms) ~= "number" or ms < 0 then permanent("sio.sleep: milliseconds must be a number >= 0") end
    local id, err = host.timer(ms)
    if not id then op_failed("sleep", err) end
    await(id)
  end
  sio.id = host.uuid
  return sio
end

-- Built-in tools: fn(args, cx) -> payload (string, or table -> JSON).
-- sync tools never wait on host ops, so the engine may run them inline.
local builtin = {}
M.builtin_tools = builtin

builtin.echo = { sync = true, fn = function(args)
  if args == nil then return "{}" end
  return encode(args)
end }

builtin.noop = { sync = true, fn = function(args)
  if args == nil or next(args) == nil then return "{}" end
  return encode(args)
end }

-- http: args {method, url, headers, body, timeout}; payload = response body.
-- A 5xx response is a transient error, any other status >= 400 permanent.
builtin.http = { fn = function(args, cx)
  local resp = M.http_request(cx.host, args or {})
  local status = tonumber(resp and resp.status) or 0
  if status >= 500 then transient("http " .. tostring(args.url) .. ": status " .. status) end
  if status >= 400 then permanent("http " .. tostring(args.url) .. ": status " .. status) end
  local body = resp and resp.body
  if body == nil then return "" end
  return type(body) == "table" and encode(body) or tostring(body)
end }

-- kafka: args {topic, key, value}; payload = {"topic":..,"key":..}.
builtin.kafka = { fn = function(args, cx)
  args = args or {}
  produce(cx, args.topic, args.key, args.value)
  return encode({ topic = args.topic, key = args.key })
end }

-- kv: args {op = "get"|"set"|"del", key, value, ttl}; payload = the value
-- for get ("" when absent), "OK" for set/del. Keys are namespaced per intent.
builtin.kv = { fn = function(args, cx)
  args = args or {}
  local op = args.op or (args.value ~= nil and "set" or "get")
  if op == "get" then
    local v = kv_call(cx, "get", args.key)
    if v == nil or v == cjson.null then return "" end
    return type(v) == "table" and encode(v) or tostring(v)
  elseif op == "set" then
    local v = args.value
    if type(v) == "table" then v = encode(v) end
    kv_call(cx, "set", args.key, v ~= nil and tostring(v) or "", args.ttl)
    return "OK"
  elseif op == "del" then
    kv_call(cx, "del", args.key)
    return "OK"
  end
  permanent("kv: unknown op '" .. tostring(op) .. "'")
end }

M.to_text = template.to_text
return M
