local guard = require "sio.guard"
local H = require "support.helpers"

-- whether a step guarded by expr runs for attrs A (in the sandbox)
local eval = H.guard

describe("sio.guard", function()
  describe("translate", function()
    it("rewrites != to ~= outside string literals", function()
      assert.are.equal("A.x ~= 'v'", guard.translate("A.x != 'v'"))
      assert.are.equal("A.x ~= 'a!=b' and A.y ~= \"c!=d\"", guard.translate("A.x != 'a!=b' and A.y != \"c!=d\""))
    end)
    it("leaves != inside strings (with escapes and long strings) untouched", function()
      assert.are.equal("A.x == 'it\\'s != no'", guard.translate("A.x == 'it\\'s != no'"))
      assert.are.equal("A.x == [[a != b]]", guard.translate("A.x == [[a != b]]"))
      assert.are.equal("A.x ~= 1", guard.translate("A.x ~= 1"))
    end)
  end)

  describe("seed forms", function()
    it("A.key is true when the key is set", function()
      assert.is_true(eval("A.key", { key = "yes" }))
      assert.is_false(eval("A.key", {}))
    end)
    it("not A.key", function()
      assert.is_true(eval("not A.key", {}))
      assert.is_false(eval("not A.key", { key = 1 }))
    end)
    it("A.key == 'v'", function()
      assert.is_true(eval("A.key == 'v'", { key = "v" }))
      assert.is_false(eval("A.key == 'v'", { key = "w" }))
    end)
    it("A.key != 'v'", function()
      assert.is_false(eval("A.key != 'v'", { key = "v" }))
      assert.is_true(eval("A.key != 'v'", { key = "w" }))
      assert.is_true(eval("A.key != 'v'", {}))
    end)
    it("!= inside a string literal is compared literally", function()
      assert.is_true(eval("A.op == 'a != b'", { op = "a != b" }))
      assert.is_false(eval("A.op == 'a != b'", { op = "a ~= b" }))
    end)
    it("full Lua expressions over A", function()
      assert.is_true(eval("A.tier == \"gold\" and #A.items > 0", { tier = "gold", items = { 1 } }))
      assert.is_false(eval("A.tier == \"gold\" and #A.items > 0", { tier = "gold", items = {} }))
    end)
  end)

  describe("compile errors", function()
    it("an invalid expression does not compile (never 'true')", function()
      local _, all = H.load_errors("intent: g\nsteps:\n  - id: s1\n    tool: {name: echo}\n\n\n"
        .. "    guard: \"A.x === 1\"\n", "wf.yaml")
      assert.matches("invalid guard", all)
      assert.matches("wf.yaml:7:", all, 1, true)
    end)
    it("an empty guard is rejected", function()
      local _, all = H.load_errors("intent: g\nsteps:\n  - {id: s1, tool: {name: echo}, guard: '  '}\n")
      assert.matches("non%-empty", all)
    end)
    it("an invalid guard in a workflow is a load error naming file, line and step", function()
      local errs, all = H.load_errors([[
intent: g
steps:
  - id: s1
    tool: {name: echo}
  - id: s2
    guard: "A.x === 'y'"
    tool: {name: echo}
]], "workflows/g.yaml")
      assert.are.equal(1, #errs)
      assert.matches("^workflows/g%.yaml:6: step s2: invalid guard", all)
    end)
  end)

  describe("at run time", function()
    it("a guard that raises fails the step permanently", function()
      local wf, h = H.load([[
intent: g
steps:
  - id: s1
    guard: "A.items.count > 1"
    tool: {name: echo}
]])
      local res, err = H.run(h, wf, { query = "q" })
      assert.is_nil(res)
      assert.are.equal("permanent", err.class)
      assert.are.equal("s1", err.step)
      assert.matches("guard failed", err.message)
    end)
    it("a guard is evaluated again against outputs of earlier steps", function()
      local wf, h = H.load([[
intent: g
steps:
  - id: s1
    tool: {name: echo, args: {go: "${A.query}"}}
  - id: s2
    guard: "A.s1.json.go == 'yes'"
    tool: {name: echo, args: {ran: true}}
  - id: s3
    guard: "A.s1.json.go != 'yes'"
    tool: {name: echo}
]])
      local res = H.run(h, wf, { query = "yes" })
      assert.are.same({ "s1", "s2" }, res.steps)
      assert.are.equal('{"ran":true}', res.outputs.s2)
      assert.are.equal("workflow g: 2 steps ok, 1 skipped", res.summary)
    end)
    it("Personalize drops steps whose guard is false against the attrs", function()
      local wf, h = H.load([[
intent: g
steps:
  - id: s1
    guard: "A.tier == 'gold'"
    tool: {name: echo, args: {x: gold}}
  - id: s2
    tool: {name: echo, args: {x: all}}
]])
      local res = H.run(h, wf, { tier = "silver" })
      assert.are.same({ "s2" }, res.steps)
      assert.is_nil(res.outputs.s1)
      res = H.run(h, wf, { tier = "gold" })
      assert.are.same({ "s1", "s2" }, res.steps)
    end)
  end)
end)
