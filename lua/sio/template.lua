-- sio.template: `${...}` templates in tool args and workflow outputs.
--
-- Syntax:  ${A.path.to.value | filter | filter(arg, ...)}
--   * The path starts at A (the command's attributes plus step outputs) and
--     walks nested tables with `.`.
--   * ${config.name} and ${secret.name} are the workflow's configuration
--     value and secret `name` (engine.lua Cmd:value): the workflow must list
--     the name (`config:` / `secrets:`), checked at load; one with no value
--     fails the step permanently (never the empty string).
--   * Array indices are 0-based, as in the seed system: a numeric segment N
--     on a Lua array reads element N+1 (`${A.s1.json.items.0.url}` is
--     A.s1.json.items[1].url). If that element is absent, the segment is
--     tried as a string key ("0"), so JSON objects with numeric keys work.
--   * Filters are applied left to right. Built-ins: upper, lower, trim,
--     json (JSON-encode the value), default(x) (x when the value is missing
--     or empty). User filters come from the project's `lua/filters.lua`
--     (a module returning name -> function(value, ...)), loaded as user code.
--     Filter arguments are literals: 'str', "str", numbers, true/false/nil.
--
-- THE missing-key rule: when the value after all filters is nil (the path is
-- missing, or JSON null), it renders as the empty string "" — unless the step
-- (or the workflow) sets `strict_templates: true`; then the step fails
-- permanently with `missing ${A.x} in step s1 args.url`.
--
-- A string that is exactly one `${...}` keeps the value's type (a table stays
-- a table, a number a number); otherwise values are converted to text
-- (tables as JSON, integral numbers without ".0").
--
-- Templates are parsed once, at load, into render functions; a bad template
-- (unclosed `${`, bad path, unknown filter) is a load error.
local json = require "sio.json"

local M = {}

local type, tostring, tonumber, pairs, select, error = type, tostring, tonumber, pairs, select, error
local sfind, ssub, sformat, concat = string.find, string.sub, string.format, table.concat
local mtype, tointeger = math.type, math.tointeger
local null = json.null
local encode = json.encode

local function is_missing(v) return v == nil or v == null end

-- Built-in filters: function(value, ...) -> value. They pass nil through
-- (except default and json) so the missing-key rule still applies.
local builtin = {
  upper = function(v) if v == nil then return nil end return (tostring(v):upper()) end,
  lower = function(v) if v == nil then return nil end return (tostring(v):lower()) end,
  trim = function(v) if v == nil then return nil end return (tostring(v):match("^%s*(.-)%s*$")) end,
  json = function(v) if v == nil then return "null" end return encode(v) end,
  default = function(v, d) if v == nil or v == "" then return d end return v end,
}
M.builtin_filters = builtin

-- Convert a value to text for interpolation.
local function to_text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if mtype(v) == "float" then
      local i = tointeger(v)
      if i then return tostring(i) end
    end
    return tostring(v)
  end
  if t == "table" then return encode(v) end
  if v == nil then return "" end
  return tostring(v)
end
M.to_text = to_text

-- Parse a literal filter argument list "('x', 2, true)".
local function parse_args(s)
  local args, n, i, len = {}, 0, 1, #s
  while true do
    local _, e = sfind(s, "^%s*", i); i = e + 1
    if i > len then break end
    local c = ssub(s, i, i)
    local v
    if c == "'" or c == '"' then
      local j, buf = i + 1, {}
      while true do
        if j > len then return nil, "unclosed string in filter arguments" end
        local d = ssub(s, j, j)
        if d == "\\" then buf[#buf + 1] = ssub(s, j + 1, j + 1); j = j + 2
        elseif d == c then break
        else buf[#buf + 1] = d; j = j + 1 end
      end
      v = concat(buf); i = j + 1
    else
      local tok = s:match("^[^,%s]+", i)
      if not tok then return nil, "bad filter argument" end
      i = i + #tok
      if tok == "true" then v = true
      elseif tok == "false" then v = false
      elseif tok == "nil" then v = nil
      else
        v = tonumber(tok)
        if v == nil then return nil, "bad filter argument '" .. tok .. "' (use a quoted string or a number)" end
      end
    end
    n = n + 1; args[n] = v
    _, e = sfind(s, "^%s*", i); i = e + 1
    if i > len then break end
    if ssub(s, i, i) ~= "," then return nil, "expected ',' between filter arguments" end
    i = i + 1
  end
  args.n = n
  return args
end

-- Split on `|` outside quotes.
local function split_pipes(s)
  local parts, start, i, len, q = {}, 1, 1, #s, nil
  while i <= len do
    local c = ssub(s, i, i)
    if q then
      if c == "\\" then i = i + 1 elseif c == q then q = nil end
    elseif c == "'" or c == '"' then q = c
    elseif c == "|" then parts[#parts + 1] = ssub(s, start, i - 1); start = i + 1 end
    i = i + 1
  end
  parts[#parts + 1] = ssub(s, start)
  return parts
end

-- Parse one expression (the text between `${` and `}`).
-- known_filters: set of user filter names (name -> true) or nil.
-- names: {config = {name -> true}, secret = {name -> true}}, the names the
-- workflow lists (nil: not checked).
local LISTED_AS = { config = "config", secret = "secrets" }
local function parse_expr(text, known_filters, names)
  local parts = split_pipes(text)
  local path = parts[1]:match("^%s*(.-)%s*$")
  local root, name = path:match("^(%a+)%.([%w_%-]+)$")
  if root ~= "config" and root ~= "secret" then
    root = nil
    if path ~= "A" and not sfind(path, "^A%.[%w_%-]+[%w_%-%.]*$") or sfind(path, "%.%.") or sfind(path, "%.$") then
      return nil, "bad template path '" .. path .. "' (expected A.key.sub..., config.name or secret.name)"
    end
  elseif names and not (names[root] and names[root][name]) then
    return nil, "${" .. text .. "}: " .. root .. " '" .. name .. "' is not listed under `"
      .. LISTED_AS[root] .. ":` in the workflow"
  end
  local segs, nums = {}, {}
  for seg in path:gmatch("[^%.]+") do
    segs[#segs + 1] = seg
    nums[#segs] = seg:match("^%d+$") and (tonumber(seg) + 1) or false
  end
  table.remove(segs, 1); table.remove(nums, 1) -- drop the leading "A"
  local filters = {}
  for k = 2, #parts do
    local f = parts[k]:match("^%s*(.-)%s*$")
    local name, argtext = f:match("^([%a_][%w_]*)%s*(%b())$")
    if not name then name = f:match("^([%a_][%w_]*)$") end
    if not name then return nil, "bad filter '" .. f .. "'" end
    local args
    if argtext then
      local err
      args, err = parse_args(ssub(argtext, 2, -2))
      if not args then return nil, err .. " in filter '" .. name .. "'" end
    end
    local fn = builtin[name]
    if not fn and not (known_filters and known_filters[name]) then
      return nil, "unknown filter '" .. name .. "'"
    end
    filters[#filters + 1] = { name = name, builtin = fn, args = args }
  end
  return { segs = segs, nums = nums, nsegs = #segs, filters = filters, nfilters = #filters, text = "${" .. text .. "}",
           root = root, name = name }
end

-- Walk the path from A.
local function lookup(A, e)
  local v = A
  local segs, nums = e.segs, e.nums
  for k = 1, e.nsegs do
    if type(v) ~= "table" then return nil end
    local n = nums[k]
    local nv
    if n then nv = v[n]; if nv == nil then nv = v[segs[k]] end
    else nv = v[segs[k]] end
    v = nv
  end
  if v == null then return nil end
  return v
end

-- Evaluate one expression: lookup + filters. cx (the command context) gives
-- user filters via cx:user_filter(name).
local function eval(e, A, cx)
  local v
  if e.root then v = cx:value(e.root, e.name) else v = lookup(A, e) end
  for k = 1, e.nfilters do
    local f = e.filters[k]
    local fn = f.builtin
    if not fn then
      fn = cx:user_filter(f.name)
    end
    local args = f.args
    if args then v = fn(v, table.unpack(args, 1, args.n)) else v = fn(v) end
    if v == null then v = nil end
  end
  return v
end

-- parse(str, known_filters, names) -> nil (no `${` at all: a constant) | tpl | false, err
-- tpl = {parts = {string | expr, ...}, single = expr | nil, user = bool}
-- names: see parse_expr.
function M.parse(str, known_filters, names)
  if not sfind(str, "${", 1, true) then return nil end
  local parts, i, len, user = {}, 1, #str, false
  while i <= len do
    local s = sfind(str, "${", i, true)
    if not s then parts[#parts + 1] = ssub(str, i); break end
    if s > i then parts[#parts + 1] = ssub(str, i, s - 1) end
    -- find the closing brace, skipping quoted filter args
    local j, q, close = s + 2, nil, nil
    while j <= len do
      local c = ssub(str, j, j)
      if q then
        if c == "\\" then j = j + 1 elseif c == q then q = nil end
      elseif c == "'" or c == '"' then q = c
      elseif c == "}" then close = j; break end
      j = j + 1
    end
    if not close then return false, "unclosed ${ at column " .. s end
    local e, err = parse_expr(ssub(str, s + 2, close - 1), known_filters, names)
    if not e then return false, err end
    for k = 1, e.nfilters do if not e.filters[k].builtin then user = true end end
    parts[#parts + 1] = e
    i = close + 1
  end
  local tpl = { parts = parts, nparts = #parts, user = user, src = str }
  if #parts == 1 and type(parts[1]) == "table" then tpl.single = parts[1] end
  return tpl
end

local function missing(e, where, strict)
  if strict then
    error({ class = "permanent", message = "missing " .. e.text .. " in " .. where }, 0)
  end
end

-- render(tpl, A, cx, where, strict) -> value
function M.render(tpl, A, cx, where, strict)
  local single = tpl.single
  if single then
    local v = eval(single, A, cx)
    if v == nil then missing(single, where, strict); return "" end
    return v
  end
  local parts, out = tpl.parts, {}
  for k = 1, tpl.nparts do
    local p = parts[k]
    if type(p) == "string" then out[k] = p
    else
      local v = eval(p, A, cx)
      if v == nil then missing(p, where, strict); out[k] = ""
      else out[k] = to_text(v) end
    end
  end
  return concat(out)
end

-- compile_value(v, where, opts) -> plan | false, err
-- Compiles a value tree (tool args, outputs) into a render function
--   plan(A, cx) -> rendered value   (fresh tables on every call)
-- opts = {filters = known user filter set, strict = bool,
--         names = the config and secret names the workflow lists (parse_expr),
--         fn = function(path) -> renderer for a Lua function found in the
--              tree (Lua workflows), or nil to reject functions}
-- Returns also a flags table {user = true if user code may run}.
-- `where` is the text used in messages, e.g. "step s1 args".
function M.compile_value(v, where, opts, flags, path)
  opts = opts or {}
  flags = flags or { user = false }
  path = path or {}
  local t = type(v)
  if t == "string" then
    local tpl, err = M.parse(v, opts.filters, opts.names)
    if tpl == false then return false, where .. ": " .. err end
    if tpl == nil then return function() return v end, flags end
    if tpl.user then flags.user = true end
    local strict = opts.strict
    local e = tpl.single
    if e and not e.root and e.nfilters == 0 then -- "${A.x.y}": the lookup alone
      return function(A)
        local x = lookup(A, e)
        if x == nil then missing(e, where, strict); return "" end
        return x
      end, flags
    end
    return function(A, cx) return M.render(tpl, A, cx, where, strict) end, flags
  elseif t == "table" then
    local keys, plans, n = {}, {}, 0
    for k, sub in pairs(v) do
      local subwhere = type(k) == "number" and (where .. "[" .. k .. "]") or (where .. "." .. tostring(k))
      path[#path + 1] = k
      local p, err = M.compile_value(sub, subwhere, opts, flags, path)
      path[#path] = nil
      if not p then return false, err end
      n = n + 1; keys[n] = k; plans[n] = p
    end
    return function(A, cx)
      local out = {}
      for i = 1, n do out[keys[i]] = plans[i](A, cx) end
      return out
    end, flags
  elseif t == "function" then
    if not opts.fn then return false, where .. ": functions are not allowed here" end
    flags.user = true
    return opts.fn({ table.unpack(path) }), flags
  else
    if v == null then return function() return nil end, flags end
    return function() return v end, flags
  end
end

return M
