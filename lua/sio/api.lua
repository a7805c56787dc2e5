-- sio.api: the user-visible `sio` module (built per command) and the
-- built-in tools. Everything here is trusted code; user code only ever sees
-- the table returned by api.new().
--
-- Waiting on host ops: step code runs in a step coroutine; api.await(op)
-- yields (AWAIT, op) to the engine scheduler, which resumes the step with
-- (ok, value) when the host reports the op complete.
local json = require "sio.json"
local errors = require "sio.errors"
local template = require "sio.template"

local M = {}

local type, tostring, error, yield = type, tostring, error, coroutine.yield
local encode, decode = json.encode, json.decode

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

-- duration_ms(host, v) -> ms | nil, msg: a number is milliseconds; text
-- ("500ms", "30s", "1h30m") is read by the configuration's one duration
-- parser, host.duration_ms (C, sio_parse_duration_ms).  `host` is anything
-- with that function (the harness passes its sio_core module).
function M.duration_ms(host, v)
  if type(v) == "number" then
    if not (v >= 0) then return nil, "a duration cannot be negative" end
    return v
  end
  if type(v) ~= "string" then return nil, "a duration is text like \"30s\" or milliseconds" end
  return host.duration_ms(v)
end

---------------------------------------------------------------------------
-- HTTP: the request and response shared by the http tool and
-- sio.http.request (see types/sio.lua: sio.HttpRequest, sio.HttpResponse).
--
-- Request {url, method = "GET", headers = {Name = value}, body, timeout}:
-- a table body is sent as JSON with Content-Type: application/json unless
-- the headers set a Content-Type.  The host checks the rest (allow-list,
-- method, header names and values) and refuses with a permanent error.
-- Response {status, headers = {lower-case name = value}, body, json}:
-- json is the body decoded, on first use, when the Content-Type says JSON
-- or the body starts with { or [ (nil when it does not decode).

-- Does a headers table ({Name = value} or {"Name: value", ...}) set `name`
-- (lower case)?
local function has_header(headers, name)
  if type(headers) ~= "table" then return false end
  for k, v in pairs(headers) do
    local key = type(k) == "string" and k or (type(v) == "string" and v:match("^([^:]*):"))
    if key and key:lower() == name then return true end
  end
  return false
end

local RESP_MT = { __metatable = "sio.http_response", __index = function(t, k)
  if k ~= "json" then return nil end
  local body = rawget(t, "body")
  if type(body) ~= "string" then return nil end
  local ctype = type(rawget(t, "headers")) == "table" and rawget(t, "headers")["content-type"]
  local c = body:match("^%s*()")
  c = c and body:byte(c)
  if not ((type(ctype) == "string" and ctype:lower():find("json", 1, true)) or c == 123 or c == 91) then
    return nil
  end
  local ok, v = pcall(decode, body)
  if not ok then return nil end
  rawset(t, "json", v)
  return v
end }

-- http_request(host, req) -> response (a waiting call).
function M.http_request(host, req)
  if type(req) ~= "table" then permanent("sio.http.request expects a table") end
  local url = req.url
  if type(url) ~= "string" or not (url:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/]")) then
    permanent("http: only http(s) URLs are allowed, got " .. tostring(url))
  end
  local timeout = req.timeout
  if timeout ~= nil then
    local ms, err = M.duration_ms(host, timeout)
    if not ms then permanent("http: " .. err) end
    timeout = ms
  end
  local body, headers = req.body, req.headers
  if type(body) == "table" then
    body = encode(body)
    if not has_header(headers, "content-type") then
      -- a copy with the header added, in the "Name: value" form
      local h = { "Content-Type: application/json" }
      if type(headers) == "table" then
        for k, v in pairs(headers) do
          if type(k) == "string" then h[k] = v else h[#h + 1] = v end
        end
      end
      headers = h
    end
  elseif body ~= nil and type(body) ~= "string" then
    body = M.to_text(body)
  end
  local method = type(req.method) == "string" and req.method:upper() or "GET"
  local op, err = host.http({ method = method, url = url, headers = headers, body = body, timeout_ms = timeout })
  local what = "http " .. method .. " " .. url
  if not op then op_failed(what, err) end
  local ok, resp = await(op)
  if not ok then op_failed(what, resp) end
  local hs = {}
  if type(resp.headers) == "table" then
    for k, v in pairs(resp.headers) do if type(k) == "string" then hs[k:lower()] = v end end
  end
  return setmetatable({ status = math.tointeger(resp.status) or 0, headers = hs,
                        body = type(resp.body) == "string" and resp.body or "" }, RESP_MT)
end

-- Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date -> ms from
-- now (now_s: the wall clock, seconds), or nil.
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                 Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
local function days_from_civil(y, m, d) -- days since 1970-01-01 (proleptic Gregorian)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
function M.retry_after_ms(value, now_s)
  if type(value) ~= "string" then return nil end
  local secs = value:match("^%s*(%d+)%s*$")
  if secs then return tonumber(secs) * 1000 end
  local d, mon, y, hh, mm, ss = value:match("^%s*%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  if not d or not MONTHS[mon] then return nil end
  local at = days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
  local ms = math.floor((at - (now_s or 0)) * 1000)
  return ms > 0 and ms or 0
end

-- The start of a response body for an error message: at most `max` bytes,
-- cut at a UTF-8 character boundary, with the size when cut.
local BODY_IN_ERROR = 512
local function body_excerpt(body, max)
  max = max or BODY_IN_ERROR
  if #body <= max then return body end
  local cut = max
  while cut > 0 do
    local b = body:byte(cut + 1)
    if not b or b < 0x80 or b >= 0xC0 then break end -- cut+1 starts a character
    cut = cut - 1
  end
  return body:sub(1, cut) .. "... (" .. #body .. " bytes)"
end
M.body_excerpt = body_excerpt

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
  sio.json = { encode = encode, decode = decode, null = json.null }
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
  -- the workflow's configuration and secrets (engine.lua Cmd:value)
  sio.config = function(name) return cx:value("config", name) end
  sio.secret = function(name) return cx:value("secret", name) end
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

-- http: args = the request (http_request) plus on_4xx; payload = the
-- response body, and A[step].status / headers / body (the extra record
-- fields this tool returns).  429 and 5xx are transient (retried with the
-- step's retries, waiting the server's Retry-After when it sends one); any
-- other 4xx is permanent by default (on_4xx = "transient" retries it too,
-- "ok" returns it like a success); errors carry the start of the body.
local ON_4XX = { permanent = true, transient = true, ok = true }
builtin.http = { fn = function(args, cx)
  args = args or {}
  local on_4xx = args.on_4xx or "permanent"
  if not ON_4XX[on_4xx] then
    permanent("http: on_4xx must be \"permanent\", \"transient\" or \"ok\", got " .. tostring(on_4xx))
  end
  local resp = M.http_request(cx.host, args)
  local status = resp.status
  if status >= 400 and not (on_4xx == "ok" and status < 500 and status ~= 429) then
    local msg = ("http %s %s: status %d"):format(type(args.method) == "string" and args.method:upper() or "GET",
      tostring(args.url), status)
    local wait = M.retry_after_ms(resp.headers["retry-after"], cx.host.time())
    if wait then msg = msg .. (" (Retry-After %gs)"):format(wait / 1000) end
    if resp.body ~= "" then msg = msg .. ": " .. body_excerpt(resp.body) end
    local class = (status >= 500 or status == 429 or on_4xx == "transient") and "transient" or "permanent"
    error({ class = class, message = msg, retry_after_ms = class == "transient" and wait or nil }, 0)
  end
  return resp.body, { status = status, headers = resp.headers, body = resp.body }
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
    if v == nil or v == json.null then return "" end
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
