local H = require "support.helpers"
local cjson = require "sio.json"

local JSON_WF = [[
{
  "intent": "search",
  "description": "seed format",
  "keywords": ["find"],
  "max_concurrency": 2,
  "fail_fast": false,
  "steps": [
    {"id": "s1", "text": "fetch", "tool": {"name": "echo", "args": {"q": "${A.query}"}}, "publish_result": true},
    {"id": "s2", "guard": "A.query != 'skip'", "tool": {"name": "noop"}, "depends_on": ["s1"],
     "continue_on_error": true, "timeout": "2s", "retries": 2}
  ]
}
]]

describe("sio.workflow", function()
  describe("formats", function()
    it("loads the seed's JSON format with all step fields", function()
      local wf = H.load(JSON_WF, "workflows/search.json")
      assert.are.equal("search", wf.intent)
      assert.are.equal("json", wf.format)
      assert.are.same({ "find" }, wf.keywords)
      assert.are.equal(2, wf.max_concurrency)
      assert.is_false(wf.fail_fast)
      local s2 = wf.steps[2]
      assert.are.equal("s2", s2.id)
      assert.are.same({ 1 }, s2.deps)
      assert.is_true(s2.continue_on_error)
      assert.are.equal(2000, s2.timeout_ms)
      assert.are.equal(2, s2.retries)
      assert.is_true(wf.steps[1].publish)
    end)

    it("defaults: max_concurrency 4, fail_fast true, file order", function()
      local wf = H.load([[
intent: d
steps:
  - {id: a, tool: {name: noop}}
  - {id: b, tool: {name: noop}}
  - {id: c, tool: {name: noop}}
]])
      assert.are.equal(4, wf.max_concurrency)
      assert.is_true(wf.fail_fast)
      assert.are.same({}, wf.steps[1].deps)
      assert.are.same({ 1 }, wf.steps[2].deps)
      assert.are.same({ 2 }, wf.steps[3].deps)
    end)

    it("parses timeouts 500ms, 30s, 2m, 1h", function()
      local wf = H.load([[
intent: d
steps:
  - {id: a, tool: {name: noop}, timeout: 500ms}
  - {id: b, tool: {name: noop}, timeout: 30s}
  - {id: c, tool: {name: noop}, timeout: 2m}
  - {id: e, tool: {name: noop}, timeout: 1h}
]])
      assert.are.same({ 500, 30000, 120000, 3600000 },
        { wf.steps[1].timeout_ms, wf.steps[2].timeout_ms, wf.steps[3].timeout_ms, wf.steps[4].timeout_ms })
    end)

    it("loads a Lua workflow with inline functions for run, guard and args", function()
      local wf, h = H.load([[
local calls = 0
return {
  intent = "lua_wf",
  steps = {
    { id = "s1", tool = { name = "echo", args = function(A) return { q = A.query:upper() } end } },
    { id = "s2", guard = function(A) return A.s1.json.q == "HI" end,
      run = function(A, args, ctx) calls = calls + 1; return { calls = calls, step = ctx.step } end },
    { id = "s3", tool = { name = "echo", args = { n = function(A) return #A.query end, k = "${A.query}" } } },
  },
  output = { shout = "${A.s1.json.q}" },
}
]], "workflows/w.lua")
      assert.are.equal("lua", wf.format)
      local res = H.run(h, wf, { query = "hi" })
      assert.are.same({ "s1", "s2", "s3" }, res.steps)
      assert.are.equal('{"q":"HI"}', res.outputs.s1)
      -- fresh instance per command: the upvalue does not leak between commands
      assert.are.same({ calls = 1, step = "s2" }, cjson.decode(res.outputs.s2))
      assert.are.same({ n = 2, k = "hi" }, cjson.decode(res.outputs.s3))
      assert.are.equal("HI", res.shout)
      res = H.run(h, wf, { query = "hi" })
      assert.are.same({ calls = 1, step = "s2" }, cjson.decode(res.outputs.s2))
    end)

    it("a Lua workflow must return a table; compile errors name the file and line", function()
      local errs = H.load_errors("return 42", "workflows/x.lua")
      assert.matches("workflows/x.lua: a Lua workflow must return a table", errs[1], 1, true)
      errs = H.load_errors("local x = \nreturn {", "workflows/y.lua")
      assert.matches("^workflows/y%.lua:2:", errs[1])
    end)

    it("YAML and JSON syntax errors name the file and line", function()
      local errs = H.load_errors("intent: x\nsteps: [a\n", "workflows/bad.yaml")
      assert.matches("^workflows/bad%.yaml:%d+: YAML", errs[1])
      errs = H.load_errors('{"intent": "x",\n "steps": }', "workflows/bad.json")
      assert.matches("^workflows/bad%.json:2: JSON", errs[1])
    end)

    it("run: inline code and module paths under lua/", function()
      local wf, h = H.load([[
intent: r
steps:
  - id: s1
    run: steps/greet
    args: {who: "${A.query}"}
  - id: s2
    run: |
      local p = A.s1.payload
      return {len = #p, upper = string.upper(p)}
]], "wf.yaml", { files = {
        ["lua/steps/greet.lua"] = "return function(A, args, ctx) return 'hello ' .. args.who end",
      } })
      local res = H.run(h, wf, { query = "bob" })
      assert.are.equal("hello bob", res.outputs.s1)
      assert.are.same({ len = 9, upper = "HELLO BOB" }, cjson.decode(res.outputs.s2))
    end)

    it("tools under lua/tools/ are user modules returning function(args, ctx)", function()
      local wf, h = H.load([[
intent: t
steps:
  - {id: s1, tool: {name: greeter, args: {name: "${A.query}"}}}
]], "wf.yaml", { files = {
        ["lua/tools/greeter.lua"] = [[
          local n = 0
          return function(args, ctx)
            n = n + 1
            return { greeting = "hi " .. args.name, n = n, step = ctx.step }
          end
        ]],
      } })
      assert.are.same({ kind = "lua", name = "greeter" }, wf.steps[1].tool)
      local res = H.run(h, wf, { query = "ann" })
      assert.are.same({ greeting = "hi ann", n = 1, step = "s1" }, cjson.decode(res.outputs.s1))
      res = H.run(h, wf, { query = "ann" })
      assert.are.same({ greeting = "hi ann", n = 1, step = "s1" }, cjson.decode(res.outputs.s1))
    end)

    it("natively registered tool names are known", function()
      local wf = H.load("intent: n\nsteps:\n  - {id: s1, tool: {name: vector_search}}\n", "wf.yaml",
        { tools = { vector_search = "found" } })
      assert.are.equal("native", wf.steps[1].tool.kind)
    end)
  end)

  describe("validation (every error names the file and the step)", function()
    it("missing intent", function()
      local errs = H.load_errors("steps: []\n", "workflows/a.yaml")
      assert.are.same({ "workflows/a.yaml: missing intent" }, errs)
    end)

    it("duplicate step ids", function()
      local errs = H.load_errors([[
intent: a
steps:
  - id: s1
    tool: {name: noop}
  - id: s1
    tool: {name: noop}
]], "workflows/a.yaml")
      assert.are.equal(1, #errs)
      assert.matches("^workflows/a%.yaml:3: step s1: duplicate step id 's1'", errs[1])
    end)

    it("unknown depends_on", function()
      local errs = H.load_errors([[
intent: a
steps:
  - id: s1
    tool: {name: noop}
  - id: s2
    tool: {name: noop}
    depends_on: [s1, nope]
]], "workflows/a.yaml")
      assert.are.same({ "workflows/a.yaml:7: step s2: depends_on unknown step 'nope'" }, errs)
    end)

    it("a cycle, named", function()
      local errs = H.load_errors([[
{"intent": "c", "steps": [
  {"id": "a", "tool": {"name": "noop"}, "depends_on": ["c"]},
  {"id": "b", "tool": {"name": "noop"}, "depends_on": ["a"]},
  {"id": "c", "tool": {"name": "noop"}, "depends_on": ["b"]}
]}
]], "workflows/c.json")
      assert.are.equal(1, #errs)
      assert.matches("^workflows/c%.json:2: step a: dependency cycle: a %-> c %-> b %-> a$", errs[1])
    end)

    it("unknown tool", function()
      local errs = H.load_errors([[
intent: a
steps:
  - id: s1
    tool: {name: nosuch}
]], "workflows/a.yaml")
      assert.are.same({ "workflows/a.yaml:4: step s1: unknown tool 'nosuch'" }, errs)
    end)

    it("bad timeout and negative retries", function()
      local errs = H.load_errors([[
intent: a
steps:
  - id: s1
    tool: {name: noop}
    timeout: soon
  - id: s2
    tool: {name: noop}
    retries: -1
]], "workflows/a.yaml")
      assert.are.equal(2, #errs)
      assert.matches('^workflows/a%.yaml:5: step s1: timeout: "soon" is not a duration', errs[1])
      assert.matches("^workflows/a%.yaml:8: step s2: retries must be an integer >= 0", errs[2])
    end)

    it("errors in the Lua format name the file, line and step", function()
      local errs = H.load_errors([[
return {
  intent = "l",
  steps = {
    { id = "s1", tool = { name = "noop" } },
    { id = "s2", tool = { name = "nosuch" } },
    { id = "s3", tool = { name = "noop" }, timeout = "later" },
  },
}
]], "workflows/l.lua")
      assert.are.same({
        "workflows/l.lua:5: step s2: unknown tool 'nosuch'",
        'workflows/l.lua:6: step s3: timeout: "later" is not a duration (e.g. "500ms", "30s", "10m", "1h30m")',
      }, errs)
    end)

    it("inline run code that does not compile is a load error", function()
      local errs = H.load_errors([[
intent: a
steps:
  - id: s1
    run: "return +"
]], "workflows/a.yaml")
      assert.matches("^workflows/a%.yaml:4: step s1: run code does not compile", errs[1])
    end)
  end)

  describe("load_dir", function()
    it("loads every workflow and reports duplicate intents and invalid files", function()
      local h = H.harness({ files = {
        ["workflows/a.yaml"] = "intent: one\nsteps:\n  - {id: s1, tool: {name: noop}}\n",
        ["workflows/b.json"] = '{"intent": "two", "steps": [{"id": "s1", "tool": {"name": "echo"}}]}',
        ["workflows/c.yaml"] = "intent: one\nsteps: []\n",
        ["workflows/d.yaml"] = "intent: bad\nsteps:\n  - {id: s1, tool: {name: nosuch}}\n",
        ["workflows/README.md"] = "not a workflow",
      } })
      assert.are.same({ "one", "two" }, h:intents())
      local errs = h:load_errors()
      assert.are.equal(2, #errs)
      assert.matches("c%.yaml:1: duplicate intent 'one' %(already defined in .*a%.yaml%)", errs[1])
      assert.matches("d%.yaml:3: step s1: unknown tool 'nosuch'", errs[2])
    end)

    it("the shipped workflows/ folder loads without errors", function()
      local h = H.harness({ root = "." })
      assert.are.same({}, h:load_errors())
      assert.are.equal("noop", h:workflow("noop").intent)
    end)
  end)
end)
