-- Attrs and step outputs share A: a command's attrs must never stand in for
-- a step's output (issue 9, item 7).  The rule: attrs whose key is a step
-- id of the workflow are refused before any step runs, naming the key; the
-- same in `sio-orchestrator run`, `serve` (tests/integration/it_engine_dlq.sh)
-- and this harness, because all three go through engine.execute.
local testing = require "sio.testing"
local H = require "support.helpers"
local cjson = require "cjson"

local FORGE = [[
intent: forge
steps:
  - id: s1
    guard: "A.tier == 'gold'"
    tool: {name: echo, args: {q: "${A.query}"}}
  - id: s2
    tool: {name: echo, args: {from_s1: "${A.s1.json.q}", payload: "${A.s1.payload}"}}
    publish_result: true
]]

local FORGED = { tier = "silver", s1 = { payload = "FORGED", json = { q = "FORGED" } } }

describe("attrs and step ids", function()
  local root, h
  before_each(function()
    root = H.mkproject({ ["workflows/forge.yaml"] = FORGE })
    h = testing.new({ root = root })
  end)
  after_each(function() h:close() end)

  it("attrs that use a step id are refused before any step runs, naming the key", function()
    local r = h:run("forge", FORGED)
    r:expect_error("permanent", "^attrs key 's1' is the id of a step of workflow 'forge'")
    assert.is_nil(r.error.step)
    assert.are.same({}, r.published)
    assert.are.equal("not_run", r.steps.s1.status)
    assert.are.equal("not_run", r.steps.s2.status)
  end)

  it("refuses the key whatever its value, and whether or not the step would run", function()
    h:run("forge", { tier = "gold", s1 = "x" }):expect_error("permanent", "attrs key 's1'")
    h:run("forge", { s2 = cjson.null }):expect_error("permanent", "attrs key 's2'")
  end)

  it("a dropped step's slot is empty: a later step never reads attrs there", function()
    local r = h:run("forge", { tier = "silver", query = "q" })
    r:expect_ok()
    r:expect_skipped("s1")
    assert.are.same({ from_s1 = "", payload = "" }, r:json("s2"))
  end)

  it("a failed step's slot is the engine's failure record, not attrs", function()
    local root2 = H.mkproject({ ["workflows/f.yaml"] = [[
intent: f
steps:
  - id: s1
    run: "error('no')"
    continue_on_error: true
  - id: s2
    run: "return { ok = A.s1.ok, payload = A.s1.payload, msg = A.s1.error.message }"
]] })
    local h2 = testing.new({ root = root2 })
    h2:run("f", { s1 = { ok = true, payload = "FORGED" } }):expect_error("permanent", "attrs key 's1'")
    local r = h2:run("f", {})
    r:expect_ok()
    assert.are.same({ ok = false, payload = "", msg = "f.yaml:4: no" }, r:json("s2"))
    h2:close()
  end)

  it("user code cannot reach the engine's step-record metatable, shared by every command", function()
    local root2 = H.mkproject({ ["workflows/mt.yaml"] = [[
intent: mt
steps:
  - id: s1
    tool: {name: echo, args: {q: "${A.query}"}}
  - id: s2
    run: |
      local mt = getmetatable(A.s1)
      if A.attack and type(mt) == "table" then mt.__index = function() return "HACKED" end end
      return { mt = type(mt), reset = (pcall(setmetatable, A.s1, nil)), q = A.s1.json.q }
]] })
    local h2 = testing.new({ root = root2 })
    local r = h2:run("mt", { query = "one", attack = true })
    r:expect_ok()
    assert.are.same({ mt = "string", reset = false, q = "one" }, r:json("s2"))
    r = h2:run("mt", { query = "two" }) -- the next command on the same state
    assert.are.same({ mt = "string", reset = false, q = "two" }, r:json("s2"))
    h2:close()
  end)

  it("step ids `utter` and `query` are refused at load: the engine writes A.utter and A.query", function()
    local _, all = H.load_errors("intent: x\nsteps:\n  - id: query\n    tool: {name: echo}\n", "x.yaml")
    assert.matches("x.yaml:3: step query: step id 'query' is reserved", all, 1, true)
    _, all = H.load_errors("intent: x\nsteps:\n  - {id: utter, tool: {name: echo}}\n", "x.yaml")
    assert.matches("step id 'utter' is reserved", all, 1, true)
  end)

  it("sio-orchestrator run applies the same rule", function()
    local out, _, code = H.cli(("run forge --attrs %s --workflows %s --lua %s"):format(
      H.sh(cjson.encode(FORGED)), H.sh(root .. "/workflows"), H.sh(root .. "/lua")))
    assert.are.equal(1, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
    assert.are.equal(1, #lines) -- no step_result: nothing ran
    assert.are.equal("error", lines[1].status)
    assert.matches("^attrs key 's1' is the id of a step of workflow 'forge'", lines[1].error.message)
  end)
end)
