-- sio.errors: the classified error values used end to end by the engine.
-- An error is a table {class = "transient"|"permanent", message = "...", step = "id"}.
-- Anything raised that is not such a table (a plain string from error("..."),
-- a runtime fault) is permanent.
--
-- A message is always a readable string: an error value that is not a
-- string (error({code = 42}), error(fn)) becomes its `message` field or a
-- short description of the value, never "table: 0x5589..." (a heap address
-- says nothing to an operator and varies from run to run).
local M = {}

local type, tostring, rawget, next, math_type = type, tostring, rawget, next, math.type
local sort, concat = table.sort, table.concat

function M.is_classified(e)
  if type(e) ~= "table" then return false end
  local class = rawget(e, "class")
  return class == "transient" or class == "permanent"
end

-- value_text(v) -> v for a string, number or boolean, else "a <type>": a
-- value quoted in a message ("retries must be ..., got a table").
function M.value_text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return tostring(v) end
  return "a " .. t
end

-- describe(v) -> string: a readable message for any error value.  Tables
-- are read raw (no metamethod of user code runs in trusted code).
local MAX_KEYS = 5
local function describe(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    return math_type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  end
  if t == "nil" then return "error raised without a message (nil)" end
  if t == "boolean" then return "error raised with the value " .. tostring(v) end
  if t ~= "table" then return "error raised with a " .. t .. " value" end
  local m = rawget(v, "message")
  if type(m) == "string" then return m end
  if type(m) == "number" then return describe(m) end
  if m ~= nil then return "error raised with a table value whose message is a " .. type(m) end
  -- the first few string keys in sorted order (of at most 50 looked at)
  local keys, n = {}, 0
  for k in next, v do
    if type(k) == "string" then
      n = n + 1
      if n <= 50 then keys[n] = #k > 40 and (k:sub(1, 40) .. "...") or k end
    end
  end
  if n == 0 then return "error raised with a table value that has no message field" end
  sort(keys)
  for i = MAX_KEYS + 1, #keys do keys[i] = nil end
  local more = n > MAX_KEYS and (", ... " .. (n - MAX_KEYS) .. " more") or ""
  return "error raised with a table value that has no message field (keys: " .. concat(keys, ", ") .. more .. ")"
end
M.describe = describe

-- classify(e, step) -> a fresh error table {class, message, step[, limit]
-- [, retry_after_ms]} (retry_after_ms: how long a retry should wait at
-- least, e.g. an http server's Retry-After).
-- A classified table keeps its class; everything else is permanent.  The
-- message is always a readable string.  step, when given, is the step the
-- engine knows was running and wins over one the value carries.  Fields
-- are read raw: no metamethod of a user value runs here.
function M.classify(e, step)
  if type(e) == "table" then
    local class = rawget(e, "class")
    if class == "transient" or class == "permanent" then
      local m = rawget(e, "message")
      if type(m) == "number" then m = describe(m)
      elseif type(m) ~= "string" then
        m = class .. " error " .. (m == nil and "without a message" or ("whose message is a " .. type(m)))
      end
      local s, wait = rawget(e, "step"), rawget(e, "retry_after_ms")
      return { class = class, message = m, step = step or (type(s) == "string" and s or nil),
               limit = rawget(e, "limit") == true or nil,
               retry_after_ms = type(wait) == "number" and wait >= 0 and wait < math.huge and wait or nil }
    end
  end
  return { class = "permanent", message = describe(e), step = step }
end

return M
