-- The sandbox escape suite, through busted and the REAL C sandbox (the
-- sio_core module runs the daemon's sio_sandbox and embedded engine).  Each
-- attempt is a step's Lua logic; it must end in a clear permanent error, and
-- the next command on the same harness instance must succeed.
local testing = require "sio.testing"

local function yaml_for(intent, code)
  local lines = {}
  for l in (code .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = "      " .. l end
  return ("intent: %s\nsteps:\n  - id: evil\n    run: |\n%s\n"):format(intent, table.concat(lines, "\n"))
end

local CASES = {
  { "os.execute", [[return os.execute("touch /tmp/sio-escaped")]], "execute" },
  { "io.open", [[return io.open("/etc/passwd"):read("a")]], "global 'io'" },
  { "load of a binary chunk", [[return assert(load("\27LuaT\0\25\147\13\10\26\10\4\8\8xV\0\0"))()]], "binary" },
  { "string.dump", [[return string.dump(function() end)]], "dump" },
  { "getmetatable('').__index", [[local mt = getmetatable(""); mt.__index.upper = function() return "pwned" end]], "boolean value" },
  { "string table write", [[string.upper = function() return "pwned" end]], "read%-only" },
  { "setmetatable(_G, nil)", [[setmetatable(_G, nil); return os]], "protected metatable" },
  { "debug", [[return debug.getregistry()]], "global 'debug'" },
  { "package.loadlib", [[return package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "system")]], "global 'package'" },
  { "require of a system module", [[return require("io")]], "module 'io' not found" },
  { "require of a C module", [[return require("cjson")]], "module 'cjson' not found" },
  { "dofile / loadfile", [[return dofile("/etc/passwd") or loadfile("/etc/passwd")]], "dofile" },
  { "collectgarbage", [[collectgarbage("stop")]], "collectgarbage" },
  { "an infinite loop", [[while true do end]], "instruction limit exceeded", true },
  { "an infinite loop in pcall", [[for i = 1, 3 do pcall(function() while true do end end) end return "swallowed"]],
    "instruction limit exceeded", true },
  { "an infinite loop in a coroutine", [[local co = coroutine.wrap(function() while true do end end) pcall(co) return "escaped"]],
    "instruction limit exceeded", true },
  { "string.rep bomb", [[local s = string.rep("x", 1 << 30) return #s]], "limit exceeded", true },
  { "concat bomb", [[local s = "x" for i = 1, 40 do s = s .. s end return #s]], "limit exceeded", true },
  { "table growth", [[local t = {} for i = 1, 1e9 do t[i] = i end]], "limit exceeded", true },
  { "table.concat bomb", [[local t = {} for i = 1, 1e7 do t[i] = "xxxxxxxxxxxxxxxx" end return #table.concat(t)]],
    "limit exceeded", true },
  -- Lua's stack limit (1e6 slots, 16 MB) is reached well inside the 32 MB
  -- memory limit only when frames are wide: with 3-slot frames the call
  -- records of ~300k calls add ~20 MB, and which limit came first varied.
  { "deep recursion", [[local function f(n) local a, b, c, d, e, g, h, i, j, k, l, m, o, p, q, r = n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n
      return 1 + f(n + 1) + a + b + c + d + e + g + h + i + j + k + l + m + o + p + q + r end return f(1)]], "stack overflow" },
  { "__gc finaliser", [[setmetatable({}, { __gc = function() while true do end end })]], "__gc" },
  { "pathological pattern", [[return (string.rep("a", 3000)):find(string.rep("a?", 3000) .. string.rep("a", 3000))]],
    "pattern too complex" },
  { "backtracking pattern", [[return (string.rep("a", 1e5)):find(".-.-.-.-.-b")]], "instruction limit exceeded", true },
  { "backtracking gsub", [[return (string.rep("a", 1e5)):gsub(".-.-.-.-.-b", "")]], "instruction limit exceeded", true },
}

describe("the sandbox, through busted and the real C sandbox", function()
  local h = testing.new({ instructions = 20000000, memory = "32m" })
  h:add_workflow(yaml_for("ok", [[return { fine = true, sum = 1 + 1 }]]), "escape/ok.yaml")
  for i, c in ipairs(CASES) do
    h:add_workflow(yaml_for("escape" .. i, c[2]), "escape/escape" .. i .. ".yaml")
  end

  for i, c in ipairs(CASES) do
    it(c[1] .. " ends in a clear permanent error; the next command succeeds", function()
      local r = h:run("escape" .. i, {})
      r:expect_error("permanent", c[3])
      assert.are.equal(false, r.ok)
      if c[4] then assert.is_not_nil(r.killed, "the exec should have been killed by a limit") end
      local ok = h:run("ok", {})
      ok:expect_ok()
      assert.are.same({ fine = true, sum = 2 }, ok:json("evil"))
    end)
  end

  it("the file the os.execute attempt would have created does not exist", function()
    assert.is_nil(io.open("/tmp/sio-escaped"))
  end)

  it("a deadline on the virtual clock ends a command that waits forever", function()
    local h2 = testing.new({ timeout = "2s", http_allow = "slow.example" })
    h2:add_workflow([[
intent: waits
steps:
  - id: w
    run: |
      return sio.http.request{ url = "https://slow.example/" }.body
]], "escape/waits.yaml")
    h2:stub("http", testing.never())
    local r = h2:run("waits", {})
    r:expect_error("permanent", "deadline exceeded")
    assert.are.equal(2000, r.elapsed_ms)
    h2:stub("http", { status = 200, body = "now" })
    local r2 = h2:run("waits", {})
    r2:expect_ok()
    assert.are.equal("now", r2:output("w"))
  end)
end)
