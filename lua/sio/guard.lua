-- sio.guard: step guards, Lua expressions over A.
--
-- The seed system's forms keep working: `A.key`, `not A.key`, `A.key == 'v'`,
-- `A.key != 'v'` (`!=` is rewritten to `~=` outside string literals). Any Lua
-- expression is accepted (`A.tier == "gold" and #A.items > 0`); truthiness is
-- Lua's (only nil and false are false).
--
-- A guard is compiled once, at load, through host.compile as a *factory*:
--   local _ENV = ...; return function(A) return (EXPR) end
-- Each command calls the factory with its own fresh environment and gets the
-- guard function. The prefix stays on the expression's first line, and when
-- the caller knows the line of the guard in its file, blank lines are inserted
-- so that compile errors name the file's own line.
local M = {}

local sfind, ssub, srep = string.find, string.sub, string.rep

-- Rewrite `!=` to `~=` outside '...' / "..." literals (escapes honoured) and
-- outside long strings / comments ([[...]], [==[...]==]).
function M.translate(expr)
  if not sfind(expr, "!=", 1, true) then return expr end
  local out, i, n, start = {}, 1, #expr, 1
  while i <= n do
    local c = ssub(expr, i, i)
    if c == "'" or c == '"' then
      local j = i + 1
      while j <= n do
        local d = ssub(expr, j, j)
        if d == "\\" then j = j + 2
        elseif d == c then break
        else j = j + 1 end
      end
      i = j + 1
    elseif c == "[" and sfind(expr, "^%[=*%[", i) then
      local _, e, eq = sfind(expr, "^%[(=*)%[", i)
      local _, close = sfind(expr, "]" .. eq .. "]", e + 1, true)
      i = (close or n) + 1
    elseif c == "!" and ssub(expr, i + 1, i + 1) == "=" then
      out[#out + 1] = ssub(expr, start, i - 1)
      out[#out + 1] = "~="
      i = i + 2
      start = i
    else
      i = i + 1
    end
  end
  out[#out + 1] = ssub(expr, start)
  return table.concat(out)
end

-- compile(host, expr, chunkname, line) -> factory | nil, msg
--   factory(env) -> function(A) -> value
-- chunkname: "@file" style name for messages; line: the guard's line in that
-- file (optional, default 1).
function M.compile(host, expr, chunkname, line)
  if type(expr) ~= "string" or expr:match("^%s*$") then
    return nil, "guard must be a non-empty string expression"
  end
  local src = "local _ENV = ...; return function(A) return (" .. srep("\n", (line or 1) - 1)
    .. M.translate(expr) .. "\n) end"
  local fn, err = host.compile(src, chunkname or "=guard")
  if not fn then return nil, "invalid guard: " .. tostring(err) end
  return fn
end

return M
