-- Per-command limits name the step they hit in, and a command's step
-- results + sio.publish calls are capped (SIO_PUBLISH_LIMIT).  Through the
-- harness, so the real sandbox (counting allocator, count hook, exec) and
-- the real engine run.
local testing = require "sio.testing"
local H = require "support.helpers"

local HOG = [[
intent: hog
steps:
  - id: first
    tool: {name: echo, args: {q: "${A.query}"}}
  - id: hog
    run: |
      if A.mode == "mem" then
        local t = {}
        for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
      elseif A.mode == "wait" then
        sio.sleep(600000)
      else
        while true do end
      end
  - id: last
    tool: {name: echo}
]]

local GUARDED = [[
intent: guarded
steps:
  - id: first
    tool: {name: echo}
  - id: careful
    guard: "A.x == (function() while true do end end)()"
    tool: {name: echo}
]]

local PUB = [[
intent: pub
steps:
  - id: spam
    run: |
      for i = 1, A.n do
        local ok, err = pcall(sio.publish, "p" .. i)
        if not ok and not A.swallow then error(err, 0) end
      end
      return "done"
    publish_result: true
  - id: after
    tool: {name: echo}
    publish_result: true
]]

describe("limits name the step", function()
  local root
  setup(function() root = H.mkproject({ ["workflows/hog.yaml"] = HOG, ["workflows/guarded.yaml"] = GUARDED }) end)

  it("instructions", function()
    local h = testing.new({ root = root, instructions = 1000000 })
    h:run("hog", {}):expect_error("permanent", "^instruction limit exceeded$", "hog")
    h:close()
  end)

  it("memory", function()
    local h = testing.new({ root = root, memory = "4m" })
    h:run("hog", { mode = "mem" }):expect_error("permanent", "^memory limit exceeded$", "hog")
    h:close()
  end)

  it("the deadline, while the step waits", function()
    local h = testing.new({ root = root, timeout = "2s" })
    local r = h:run("hog", { mode = "wait" })
    r:expect_error("permanent", "^deadline exceeded$", "hog")
    h:close()
  end)

  it("a limit hit in a guard names the guarded step", function()
    local h = testing.new({ root = root, instructions = 1000000 })
    h:run("guarded", {}):expect_error("permanent", "^instruction limit exceeded$", "careful")
    h:close()
  end)
end)

describe("SIO_PUBLISH_LIMIT", function()
  local root
  setup(function() root = H.mkproject({ ["workflows/pub.yaml"] = PUB }) end)

  it("past the limit the command fails permanently, naming the limit and the step", function()
    local h = testing.new({ root = root, publish_limit = 5 })
    local r = h:run("pub", { n = 10 })
    r:expect_error("permanent",
      "^publish limit exceeded: more than 5 step results and sio.publish calls in one command %(SIO_PUBLISH_LIMIT%)$", "spam")
    assert.are.equal(5, #r.published)
    assert.are.equal("p5", r.published[5].payload)
    assert.are.equal("not_run", r.steps.after.status)
    h:close()
  end)

  it("catching the error does not save the command", function()
    local h = testing.new({ root = root, publish_limit = 5 })
    local r = h:run("pub", { n = 10, swallow = true })
    r:expect_error("permanent", "^publish limit exceeded", "spam")
    assert.are.equal(5, #r.published)
    h:close()
  end)

  it("step results count: exactly the limit is fine, one more is not", function()
    local h = testing.new({ root = root, publish_limit = 6 })
    local r = h:run("pub", { n = 4 }) -- 4 publishes + 2 step results
    r:expect_ok()
    assert.are.equal(6, #r.published)
    r = h:run("pub", { n = 5 })       -- the `after` step's result is the 7th
    r:expect_error("permanent", "^publish limit exceeded: more than 6", "after")
    assert.are.equal(6, #r.published)
    h:close()
  end)

  it("the harness uses the host's default, from the settings table (1000)", function()
    local h = testing.new({ root = root })
    h:run("pub", { n = 998 }):expect_ok()
    h:run("pub", { n = 999 }):expect_error("permanent", "more than 1000 ", "after")
    h:close()
  end)
end)

-- The engine's own code runs without the count hook (it is armed around
-- each call of user code, and for the rest of the command once user code
-- has set a metatable): every
-- way user code can run must still be metered - including code that user
-- code hid in a value the engine's own code touches afterwards.  Each
-- workflow spins for ever one way; each runs after a command with no user
-- code at all (`plain`, whose thread the worker then reuses).
local SPIN = "while true do end"
local ARMED = {
  ["lua/filters.lua"] = "return { spin = function(v) " .. SPIN .. " end }",
  ["lua/tools/spintool.lua"] = "return function(args, ctx) " .. SPIN .. " end",
  ["lua/tools/spinload.lua"] = SPIN .. "\nreturn function() end",
  ["lua/mods/spinmod.lua"] = SPIN .. "\nreturn {}",
  ["lua/mods/usesmod.lua"] = "local m = require 'mods.spinmod'\nreturn function() return 'x' end",
  ["workflows/plain.yaml"] = "intent: plain\nsteps:\n  - id: s1\n    tool: {name: echo, args: {q: \"${A.query}\"}}\n",
  ["workflows/filter.yaml"] = "intent: filter\nsteps:\n  - id: s1\n    tool: {name: echo}\n"
    .. "  - id: f\n    tool: {name: echo, args: {q: \"${A.query | spin}\"}}\n",
  ["workflows/tool.yaml"] = "intent: tool\nsteps:\n  - id: t\n    tool: {name: spintool}\n",
  ["workflows/toolload.yaml"] = "intent: toolload\nsteps:\n  - id: t\n    tool: {name: spinload}\n",
  ["workflows/module.yaml"] = "intent: module\nsteps:\n  - id: m\n    run: mods.usesmod\n",
  ["workflows/output.yaml"] = "intent: output\nsteps:\n  - id: s1\n    tool: {name: echo}\n"
    .. "output:\n  x: \"${A.query | spin}\"\n",
  -- a metamethod planted in A by a step that returns at once, reached by
  -- the engine's template lookup in the next (built-in) step
  ["workflows/trap.yaml"] = "intent: trap\nsteps:\n  - id: plant\n    run: |\n"
    .. "      A.trap = setmetatable({}, { __index = function() " .. SPIN .. " end })\n"
    .. "      return 'planted'\n"
    .. "  - id: lookup\n    tool: {name: echo, args: {q: \"${A.trap.x}\"}}\n",
  -- a metatable on A itself, whose __newindex spins when the engine
  -- stores the step's record in A
  ["workflows/newindex.yaml"] = "intent: newindex\nsteps:\n  - id: plant\n    run: |\n"
    .. "      setmetatable(A, { __newindex = function() " .. SPIN .. " end })\n"
    .. "      return 'planted'\n",
  -- user code that sets no metatable is disarmed after it returns: the
  -- next user code is armed again, and so is a step resumed after waiting
  ["workflows/again.yaml"] = "intent: again\nsteps:\n  - id: g\n    guard: \"A.query ~= nil\"\n"
    .. "    run: \"return 1\"\n  - id: r\n    run: \"return { n = #A.query }\"\n"
    .. "  - id: spin\n    run: \"" .. SPIN .. "\"\n",
  ["workflows/waits.yaml"] = "intent: waits\nsteps:\n  - id: r\n    run: \"return 1\"\n"
    .. "  - id: w\n    run: \"sio.sleep(1) " .. SPIN .. "\"\n",
  ["workflows/luafn.lua"] = "return { intent = 'luafn', steps = { { id = 'a', tool = { name = 'echo',\n"
    .. "  args = function(A) " .. SPIN .. " end } } } }\n",
}

describe("user code is metered though the engine's own code is not", function()
  local root
  setup(function() root = H.mkproject(ARMED) end)

  local cases = {
    { "filter", "f" }, { "tool", "t" }, { "toolload", "t" }, { "module", "m" },
    { "output", nil }, { "trap", "lookup" }, { "newindex", nil }, { "luafn", "a" },
    { "again", "spin" }, { "waits", "w" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local h = testing.new({ root = root, instructions = 1000000 })
      h:run("plain", { query = "q" }):expect_ok()
      h:run(c[1], { query = "q" }):expect_error("permanent", "^instruction limit exceeded$", c[2])
      h:run("plain", { query = "again" }):expect_ok()
      h:close()
    end)
  end
end)
