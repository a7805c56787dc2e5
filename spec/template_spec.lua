local template = require "sio.template"
local H = require "support.helpers"
local cjson = require "sio.json"

-- a minimal command context for user filters
local function cx(filters)
  return { user_filter = function(_, name) return filters[name] end }
end

local function render(str, A, strict, filters)
  local tpl = assert(template.parse(str, filters and { shout = true } or nil))
  return template.render(tpl, A, cx(filters or {}), "step s1 args.url", strict)
end

describe("sio.template", function()
  it("a string without ${ is a constant", function()
    assert.is_nil(template.parse("plain text"))
  end)

  it("interpolates nested paths", function()
    assert.are.equal("hi bob!", render("hi ${A.user.name}!", { user = { name = "bob" } }))
  end)

  it("indexes arrays 0-based", function()
    local A = { s1 = { json = { items = { { url = "u0" }, { url = "u1" } } } } }
    assert.are.equal("u0", render("${A.s1.json.items.0.url}", A))
    assert.are.equal("u1", render("${A.s1.json.items.1.url}", A))
    assert.are.equal("", render("${A.s1.json.items.2.url}", A))
  end)

  it("falls back to a string key for numeric segments on objects", function()
    assert.are.equal("zero", render("${A.m.0}", { m = { ["0"] = "zero" } }))
  end)

  it("reads step outputs' decoded JSON", function()
    local wf, h = H.load([[
intent: t
steps:
  - id: s1
    tool: {name: echo, args: {items: [{url: "http://a"}, {url: "http://b"}]}}
  - id: s2
    tool: {name: echo, args: {first: "${A.s1.json.items.1.url}", raw: "${A.s1.payload}"}}
]])
    local res = H.run(h, wf, {})
    local out = cjson.decode(res.outputs.s2)
    assert.are.equal("http://b", out.first)
    assert.are.equal(res.outputs.s1, out.raw)
  end)

  describe("filters", function()
    it("upper, lower, trim, json", function()
      assert.are.equal("HELLO", render("${A.q | upper}", { q = "hello" }))
      assert.are.equal("hello", render("${A.q|lower}", { q = "HeLLo" }))
      assert.are.equal("[x]", render("[${A.q | trim}]", { q = "  x  " }))
      assert.are.equal('{"a":1}', render("${A.q | json}", { q = { a = 1 } }))
    end)
    it("chains filters left to right", function()
      assert.are.equal("HI", render("${A.q | trim | upper}", { q = "  hi " }))
    end)
    it("default with an argument (quotes, | and } inside it)", function()
      assert.are.equal("x", render("${A.missing | default('x')}", {}))
      assert.are.equal("a|b}", render("${A.missing | default(\"a|b}\")}", {}))
      assert.are.equal("set", render("${A.q | default('x')}", { q = "set" }))
      assert.are.equal(42, render("${A.missing | default(42)}", {}))
    end)
    it("user filters from lua/filters.lua", function()
      local shout = function(v) return tostring(v):upper() .. "!" end
      assert.are.equal("HEY!", render("${A.q | shout}", { q = "hey" }, false, { shout = shout }))
    end)
    it("user filters are loaded from the project's lua/filters.lua as user code", function()
      local wf, h = H.load([[
intent: f
steps:
  - id: s1
    tool: {name: echo, args: {r: "${A.query | reverse}", t: "${A.query | tagged('q')}"}}
]], "wf.yaml", { files = { ["lua/filters.lua"] = [[
        return { reverse = function(v) return string.reverse(v) end,
                 tagged = function(v, tag) return tag .. ":" .. v end }
      ]] } })
      local res = H.run(h, wf, { query = "abc" })
      assert.are.same({ r = "cba", t = "q:abc" }, cjson.decode(res.outputs.s1))
    end)
  end)

  describe("missing keys", function()
    it("render as an empty string by default", function()
      assert.are.equal("a--b", render("a-${A.nope.deeper}-b", {}))
      assert.are.equal("", render("${A.nope}", {}))
    end)
    it("JSON null counts as missing", function()
      assert.are.equal("", render("${A.x}", { x = cjson.null }))
    end)
    it("fail the step permanently with strict templates", function()
      local ok, err = pcall(render, "${A.x}", {}, true)
      assert.is_false(ok)
      assert.are.same({ class = "permanent", message = "missing ${A.x} in step s1 args.url" }, err)
    end)
    it("strict_templates on a step fails it with a message naming step and arg", function()
      local wf, h = H.load([[
intent: t
steps:
  - id: s1
    strict_templates: true
    tool: {name: echo, args: {url: "http://x/${A.x}"}}
]])
      local res, err = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("permanent", err.class)
      assert.are.equal("s1", err.step)
      assert.are.equal("missing ${A.x} in step s1 args.url", err.message)
    end)
    it("strict_templates on the workflow applies to every step; default() satisfies it", function()
      local wf, h = H.load([[
intent: t
strict_templates: true
steps:
  - id: s1
    tool: {name: echo, args: {a: "${A.x | default('d')}"}}
  - id: s2
    tool: {name: echo, args: {b: "${A.y}"}}
]])
      local res, err = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("missing ${A.y} in step s2 args.b", err.message)
      assert.are.equal('{"a":"d"}', H.run(h, wf, { y = 1 }).outputs.s1)
    end)
  end)

  describe("types", function()
    it("a string that is exactly one ${...} keeps the value's type", function()
      assert.are.same({ 1, 2 }, render("${A.list}", { list = { 1, 2 } }))
      assert.are.equal(5, render("${A.n}", { n = 5 }))
      assert.are.equal(true, render("${A.b}", { b = true }))
    end)
    it("mixed text converts values to text (integral floats without .0)", function()
      assert.are.equal("n=5 f=2.5 b=true t=[1,2]", render("n=${A.n} f=${A.f} b=${A.b} t=${A.t}", { n = 5.0, f = 2.5, b = true, t = { 1, 2 } }))
    end)
    it("renders args recursively and keeps types in tool args", function()
      local plan = assert(template.compile_value({ a = { b = "${A.x}", c = { "${A.y} z", 3 } }, d = "k" }, "step s1 args"))
      local out = plan({ x = { 1 }, y = "y" }, cx({}))
      assert.are.same({ a = { b = { 1 }, c = { "y z", 3 } }, d = "k" }, out)
      -- fresh tables on every render
      assert.are_not.equal(out, plan({ x = { 1 }, y = "y" }, cx({})))
    end)
  end)

  describe("bad templates", function()
    it("unclosed ${ is a parse error", function()
      local tpl, err = template.parse("a ${A.x")
      assert.is_false(tpl)
      assert.matches("unclosed %${", err)
    end)
    it("an unknown filter is a parse error", function()
      local tpl, err = template.parse("${A.x | shout}")
      assert.is_false(tpl)
      assert.matches("unknown filter 'shout'", err)
    end)
    it("a path not rooted at A is a parse error", function()
      assert.is_false((template.parse("${B.x}")))
      assert.is_false((template.parse("${A..x}")))
    end)
    it("is a load error naming file, line, step and arg", function()
      local errs, all = H.load_errors([[
intent: t
steps:
  - id: s1
    tool:
      name: echo
      args:
        url: "${A.x | nosuch}"
]], "workflows/t.yaml")
      assert.are.equal(1, #errs)
      assert.matches("^workflows/t%.yaml:%d+: step s1: step s1 args%.url: unknown filter 'nosuch'", all)
    end)
    it("unclosed ${ in a workflow is a load error", function()
      local errs, all = H.load_errors([[
intent: t
steps:
  - id: s1
    tool: {name: echo, args: {q: "${A.query"}}
]], "workflows/t.yaml")
      assert.matches("workflows/t%.yaml:4: step s1: .*unclosed", all)
    end)
  end)
end)
