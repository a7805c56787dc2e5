-- The type definitions under types/ (LuaLS `---@meta` files) against the
-- real API: every function and field the `sio` module, `ctx`, a step's
-- record in `A` and `sio.testing` expose is declared, with the same
-- parameter names in the same order, and nothing declared is missing from
-- them.  The real `sio` module, ctx and records are read inside the real
-- sandbox, by a step run through the harness.
local testing = require "sio.testing"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- decls(src) -> {functions = {path -> {params}}, tables = {path -> true},
--                values = {path -> type}, classes = {name -> {field -> type}}}
-- `function a.b(x, y) end`, `function A:m(x) end` (path "A:m"),
-- `a.b = {}`, `---@type T` + `a.b = ...`, `---@class N` + `---@field f T`.
local function decls(src)
  local d = { functions = {}, tables = {}, values = {}, classes = {} }
  local class, pending_type
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    local cname = line:match("^%-%-%-@class ([%w_%.]+)")
    local fname, ftype = line:match("^%-%-%-@field ([%w_]+)%??%s+(%S+)")
    if cname then class = cname; d.classes[cname] = d.classes[cname] or {}
    elseif fname and class then d.classes[class][fname] = ftype
    elseif not line:match("^%-%-%-@") then class = nil end
    local t = line:match("^%-%-%-@type (%S+)")
    if t then pending_type = t end
    local path, params = line:match("^function ([%w_%.:]+)%(([^)]*)%) end")
    if path then
      local ps = {}
      for p in params:gmatch("[%w_%.]+") do ps[#ps + 1] = p end
      d.functions[path] = ps
    end
    local tpath = line:match("^([%w_%.]+) = {}")
    if tpath then d.tables[tpath] = true end
    local vpath = line:match("^([%w_%.]+) = [^{]")
    if vpath and pending_type then d.values[vpath] = pending_type end
    if not line:match("^%-%-%-") then pending_type = nil end
  end
  return d
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The parameter names of a Lua function.
local function params_of(fn)
  local out = {}
  local info = debug.getinfo(fn, "u")
  for i = 1, info.nparams do out[i] = debug.getlocal(fn, i) end
  if info.isvararg then out[#out + 1] = "..." end
  return out
end

local function same_set(what, declared, real)
  local missing, extra = {}, {}
  for _, k in ipairs(sorted_keys(real)) do if declared[k] == nil then missing[#missing + 1] = k end end
  for _, k in ipairs(sorted_keys(declared)) do if real[k] == nil then extra[#extra + 1] = k end end
  assert(#missing == 0 and #extra == 0, what .. ": not declared: {" .. table.concat(missing, ", ")
    .. "}; declared but not real: {" .. table.concat(extra, ", ") .. "}")
end

local PROBE = [[
intent: probe
steps:
  - id: first
    tool: {name: echo, args: {x: 1}}
  - id: broken
    continue_on_error: true
    run: error("no")
  - id: fetch
    tool: {name: http, args: {url: "https://api.example/x"}}
  - id: probe
    args: {k: "${A.query}"}
    run: |
      local function walk(t, prefix, out)
        for k, v in pairs(t) do
          local p = prefix .. "." .. k
          out[p] = type(v)
          if type(v) == "table" then walk(v, p, out) end
        end
        return out
      end
      local rec = {}
      local _ = A.first.json
      for k, v in pairs(A.first) do rec[k] = type(v) end
      for k, v in pairs(A.broken) do rec[k] = type(v) end
      for k, v in pairs(A.fetch) do rec[k] = type(v) end
      local cx = {}
      for k, v in pairs(ctx) do cx[k] = type(v) end
      return { sio = walk(sio, "sio", {}), rec = rec, ctx = cx,
               required = require("sio") == sio, ctx_sio = ctx.sio == sio }
]]

describe("types/sio.lua", function()
  local src = read("types/sio.lua")
  local d = decls(src)
  local real

  setup(function()
    local h = testing.new({ root = "/nonexistent", http_allow = "api.example" })
    h:add_workflow(PROBE, "probe.yaml")
    h:stub("http", { status = 200, body = "{}" })
    local r = h:run("probe", { query = "q" })
    r:expect_ok()
    real = r:json("probe")
    h:close()
  end)

  it("loads as Lua (a meta file is valid Lua returning the module)", function()
    local env = {}
    local chunk = assert(load(src, "@types/sio.lua", "t", env))
    local m = chunk()
    assert.are.equal(env.sio, m)
    assert.are.equal("function", type(m.http.request))
  end)

  it("declares every function, table and value of the real sio module, and nothing else", function()
    assert.is_true(real.required, "require 'sio' is the global sio")
    assert.is_true(real.ctx_sio, "ctx.sio is the global sio")
    local declared = {}
    for p in pairs(d.functions) do if p:match("^sio%.") then declared[p] = "function" end end
    for p in pairs(d.tables) do if p ~= "sio" then declared[p] = "table" end end
    for p, t in pairs(d.values) do declared[p] = t end
    same_set("the sio module", declared, real.sio)
    for p, t in pairs(real.sio) do
      local want = declared[p]
      if want == "lightuserdata" then want = "userdata" end
      assert.are.equal(want, t, p)
    end
  end)

  it("declares each function of sio with the parameters the real one takes", function()
    -- api.new in this state builds the same closures the sandbox gets
    local api = require "sio.api"
    local noop = function() end
    local m = api.new({ host = { now = noop, time = noop, uuid = noop, log = noop },
                        wf = { intent = "x", steps = {} }, opts = {} })
    for path, ps in pairs(d.functions) do
      local fn = m
      for seg in path:gmatch("[^.]+") do if seg ~= "sio" then fn = fn[seg] end end
      assert.are.equal("function", type(fn), path)
      local info = debug.getinfo(fn, "S")
      if info.source:match("sio/api%.lua$") then
        assert.are.same(ps, params_of(fn), path)
      end
    end
  end)

  it("is what the README's sio API reference says (scripts/gen-api-doc --check)", function()
    local p = io.popen("lua5.4 scripts/gen-api-doc --check 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert(ok, out)
  end)

  it("declares ctx and a step's record in A as they are", function()
    same_set("sio.Ctx", d.classes["sio.Ctx"], real.ctx)
    same_set("sio.StepRecord (echo, failed and http steps)", d.classes["sio.StepRecord"], real.rec)
  end)
end)

describe("types/sio_testing.lua", function()
  local d = decls(read("types/sio_testing.lua"))

  it("loads as Lua", function()
    assert(load(read("types/sio_testing.lua"), "@types/sio_testing.lua", "t", {}))()
  end)

  it("declares every function and method of sio.testing with its parameters", function()
    local h = testing.new({ root = "/nonexistent" })
    h:add_workflow("intent: t\nsteps:\n  - id: s\n    tool: echo\n", "t.yaml")
    local r = h:run("t", {})
    local groups = {
      testing = testing,
      Harness = getmetatable(h).__index,
      Result = getmetatable(r).__index,
    }
    for name, t in pairs(groups) do
      local real, declared = {}, {}
      for k, v in pairs(t) do if type(v) == "function" then real[k] = v end end
      local sep = name == "testing" and "." or ":"
      for path, ps in pairs(d.functions) do
        local g, m = path:match("^([%w_]+)[.:]([%w_]+)$")
        if g == name then
          declared[m] = ps
          assert.are.equal(sep, path:sub(#g + 1, #g + 1), path .. " uses the wrong separator")
        end
      end
      same_set("sio.testing " .. name, declared, real)
      for m, fn in pairs(real) do
        local ps = params_of(fn)
        if sep == ":" then assert.are.equal("self", table.remove(ps, 1), name .. ":" .. m) end
        assert.are.same(declared[m], ps, name .. sep .. m)
      end
    end
    h:close()
  end)

  it("declares the fields of a result and the harness", function()
    local h = testing.new({ root = "/nonexistent" })
    h:add_workflow("intent: t\nsteps:\n  - id: s\n    tool: echo\n", "t.yaml")
    local r = h:run("t", {})
    local res, err = {}, {}
    for k in pairs(r) do if not k:match("^_") then res[k] = true end end
    local declared = d.classes["sio.testing.Result"]
    for k in pairs(declared) do
      if k ~= "result" and k ~= "error" and k ~= "killed" then err[k] = true end
    end
    -- a successful run has `result`, no `error` nor `killed`
    res.result = nil
    same_set("sio.testing.Result", err, res)
    assert.is_table(r.result)
    for _, k in ipairs({ "kv", "produced" }) do
      assert(d.classes["sio.testing.Harness"][k], "Harness." .. k .. " is not declared")
      assert.is_table(h[k])
    end
    h:close()
  end)
end)
