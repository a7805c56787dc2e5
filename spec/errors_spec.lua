-- Error messages (what reaches a dead-letter entry) are readable: an error
-- value that is not a string becomes its message or a short description,
-- never a heap address; files are named relative to the workflows and lua
-- folders, never by a path of the host; a failed require points at the
-- user's line.
local testing = require "sio.testing"
local errors = require "sio.errors"
local H = require "support.helpers"

local RAISE = [[
intent: raise
steps:
  - id: s1
    run: |
      local k = A.kind
      if k == "table" then error({ code = 42, reason = "nope" }) end
      if k == "message" then error({ message = "from a table" }) end
      if k == "nested" then error({ message = { deep = true } }) end
      if k == "classified" then error({ class = "permanent", message = {} }) end
      if k == "function" then error(function() end) end
      if k == "thread" then error(coroutine.create(function() end)) end
      if k == "nil" then error(nil) end
      if k == "false" then error(false) end
      if k == "number" then error(12.5) end
      local t = nil
      return t.field
]]

local REQ = [[
intent: req
steps:
  - id: s1
    run: |
      local x = 1
      local m = require("nosuch")
      return m
]]

local TOOL = [[
intent: tool
steps:
  - id: s1
    tool: {name: boom}
]]

describe("error messages", function()
  local root, h
  setup(function()
    root = H.mkproject({
      ["workflows/raise.yaml"] = RAISE,
      ["workflows/req.yaml"] = REQ,
      ["workflows/tool.yaml"] = TOOL,
      ["lua/helper.lua"] = "local M = {}\nfunction M.f()\n  error('inner failure')\nend\nreturn M\n",
      ["lua/tools/boom.lua"] = "return function(args)\n  local t = nil\n  return t.x\nend\n",
    })
    assert.matches("^/", root) -- an absolute project path, as an operator may configure
    h = testing.new({ root = root })
  end)
  teardown(function() h:close() end)

  local cases = {
    { "table", "^error raised with a table value that has no message field %(keys: code, reason%)$" },
    { "message", "^from a table$" },
    { "nested", "^error raised with a table value whose message is a table$" },
    { "classified", "^permanent error whose message is a table$" },
    { "function", "^error raised with a function value$" },
    { "thread", "^error raised with a thread value$" },
    { "nil", "^error raised without a message %(nil%)$" },
    { "false", "^error raised with the value false$" },
    { "number", "^12.5$" },
  }
  for _, c in ipairs(cases) do
    it("an error(<" .. c[1] .. ">) reads as a message, not an address", function()
      local r = h:run("raise", { kind = c[1] })
      r:expect_error("permanent", c[2], "s1")
      assert.is_nil(r.error.message:find("0x%x+"))
    end)
  end

  it("a step whose result cannot become JSON fails with a clear error (found by fuzzing)", function()
    local root3 = H.mkproject({
      ["workflows/fnres.yaml"] = "intent: fnres\nsteps:\n  - id: s1\n    publish_result: true\n"
        .. "    run: |\n      return { ok = true, run = function() end }\n",
    })
    local h3 = testing.new({ root = root3 })
    h3:run("fnres", {}):expect_error("permanent",
      "^the step's result cannot be sent as JSON: run: cannot encode a function as JSON$", "s1")
    h3:close()
  end)

  it("name files relative to the workflows folder, never by the host's path", function()
    local r = h:run("raise", {})
    r:expect_error("permanent", "^raise.yaml:16: attempt to index a nil value %(local 't'%)$", "s1")
    assert.is_nil(r.error.message:find(root, 1, true))
  end)

  it("name lua/ files relative to the lua folder", function()
    local r = h:run("tool", {})
    r:expect_error("permanent", "^tools/boom.lua:3: attempt to index a nil value", "s1")
    assert.is_nil(r.error.message:find(root, 1, true))
  end)

  it("a failed require points at the user's line, not the engine", function()
    local r = h:run("req", {})
    r:expect_error("permanent", "^req.yaml:6: require: module 'nosuch' not found", "s1")
  end)

  it("an error inside a required module points at the module's line", function()
    local root2 = H.mkproject({
      ["workflows/req.yaml"] = "intent: req\nsteps:\n  - id: s2\n    run: |\n      return require('helper').f()\n",
      ["lua/helper.lua"] = "local M = {}\nfunction M.f()\n  error('inner failure')\nend\nreturn M\n",
    })
    local h2 = testing.new({ root = root2 })
    h2:run("req", {}):expect_error("permanent", "^helper.lua:3: inner failure$", "s2")
    h2:close()
  end)

  it("load errors name files relative to the folders too", function()
    local bad = H.mkproject({ ["workflows/bad.yaml"] = "intent: bad\nsteps:\n  - id: s\n    tool: {name: nosuch}\n",
                              ["lua/tools/broken.lua"] = "return function(\n" })
    local ok, msg = pcall(testing.load, "bad", { root = bad })
    assert.is_false(ok)
    assert.matches("\n  bad.yaml:4: step s: unknown tool 'nosuch'", msg, 1, true)
    assert.matches("\n  tools/broken.lua:2:", msg, 1, true)
    assert.is_nil(msg:match("load errors:(.*)$"):find(bad, 1, true))
  end)
end)

describe("sio.errors.describe", function()
  it("keeps strings, and describes anything else without an address", function()
    assert.are.equal("plain", errors.describe("plain"))
    assert.are.equal("7", errors.describe(7))
    assert.are.equal("error raised with a userdata value", errors.describe(io.stdout))
    local many = {}
    for i = 1, 8 do many["k" .. i] = true end
    assert.are.equal("error raised with a table value that has no message field (keys: k1, k2, k3, k4, k5, ... 3 more)",
      errors.describe(many))
  end)

  it("reads tables raw: no metamethod of the value runs", function()
    local t = setmetatable({}, { __index = function() error("ran") end, __tostring = function() error("ran") end })
    assert.are.equal("error raised with a table value that has no message field", errors.describe(t))
    local e = errors.classify(setmetatable({ class = "transient" }, { __index = function() error("ran") end }), "s")
    assert.are.same({ class = "transient", message = "transient error without a message", step = "s" }, e)
  end)
end)
