-- Every shipped workflow (workflows/*) loads through the real engine and has
-- a spec of its own under spec/workflows/<intent>_spec.lua.
local testing = require "sio.testing"

local function list(dir)
  local out = {}
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

describe("shipped workflows", function()
  for _, name in ipairs(list("workflows")) do
    if name:match("%.ya?ml$") or name:match("%.json$") or name:match("%.lua$") then
      local intent = name:gsub("%.%w+$", "")
      it(name .. " loads and has spec/workflows/" .. intent .. "_spec.lua", function()
        testing.load(intent) -- errors with the file's load errors
        local f = io.open("spec/workflows/" .. intent .. "_spec.lua", "rb")
        assert(f, "workflows/" .. name .. " has no spec: add spec/workflows/" .. intent .. "_spec.lua")
        f:close()
      end)
    end
  end
end)
