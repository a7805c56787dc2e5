-- A spec (sio.testing) and `sio-orchestrator run` give the same result for
-- the same workflow and attrs: the step_result lines and the final line,
-- compared as decoded JSON (key order ignored).
local testing = require "sio.testing"
local H = require "support.helpers"
local cjson = require "cjson"

local find_binary, sh = H.binary, H.sh

-- runs the binary; returns the decoded stdout lines and the exit code
local function run_binary(intent, attrs_json, workflows, lua_dir)
  local cmd = ("ASAN_OPTIONS=detect_leaks=0 %s run %s --attrs %s --workflows %s --lua %s 2>/dev/null"):format(
    sh(find_binary()), sh(intent), sh(attrs_json), sh(workflows), sh(lua_dir))
  local p = assert(io.popen(cmd, "r"))
  local out = {}
  for line in p:lines() do out[#out + 1] = cjson.decode(line) end
  local _, _, code = p:close()
  return out, code
end

-- Payloads are JSON text inside JSON, encoded from Lua tables whose key
-- order differs between processes: decode nested JSON strings too.
local function deep(v)
  if type(v) == "string" and v:match("^[%[{]") then
    local ok, d = pcall(cjson.decode, v)
    if ok then return deep(d) end
  elseif type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = deep(x) end
    return t
  end
  return v
end

local function decoded(lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = deep(cjson.decode(l)) end
  return out
end

local PROJECT = {
  ["workflows/eq.yaml"] = [[
intent: eq
steps:
  - id: greet
    guard: "A.lang == 'fr'"
    tool: {name: echo, args: {text: "bonjour ${A.name}"}}
    publish_result: true
  - id: shout
    tool: {name: echo, args: {text: "${A.query | upper}", n: "${A.n}"}}
    publish_result: true
  - id: flaky
    retries: 2
    run: |
      if ctx.attempt < 2 then sio.error.transient("first attempt fails") end
      sio.publish({ attempt = ctx.attempt })
      return { attempt = ctx.attempt, shout = A.shout.json.text, pad = helper.pad(A.name) }
    publish_result: true
  - id: last
    guard: "A.flaky.json.attempt == 2"
    run: |
      if A.fail then error("asked to fail") end
      return "done " .. A.query
output:
  greeting: "${A.greet.json.text | default('none')}"
  attempt: "${A.flaky.json.attempt}"
]],
  ["lua/helper.lua"] = [[return { pad = function(s) return "[" .. tostring(s) .. "]" end }]],
}
PROJECT["workflows/eq.yaml"] = PROJECT["workflows/eq.yaml"]:gsub("run: |\n      if ctx", "run: |\n      local helper = require 'helper'\n      if ctx", 1)

describe("a spec and `sio-orchestrator run` agree", function()
  local dir = H.mkproject(PROJECT)
  local h = testing.new({ root = dir })

  local cases = {
    { "noop", { query = "hello" }, "workflows", "lua", true },
    { "noop", { echo = "from echo" }, "workflows", "lua", true },
    { "eq", { query = "hi there", name = "Ada", lang = "fr", n = 3 }, nil, nil, true },
    { "eq", { utter = "plain", name = "Bob" }, nil, nil, true },
    { "eq", { query = "x", name = "C", fail = true }, nil, nil, false },
    { "eq", "[1, 2]", nil, nil, false },
    { "nope", { query = "x" }, nil, nil, false },
  }
  for _, c in ipairs(cases) do
    local intent, attrs, wdir, ldir, want_ok = c[1], c[2], c[3], c[4], c[5]
    local attrs_json = type(attrs) == "string" and attrs or cjson.encode(attrs)
    it(("%s %s"):format(intent, attrs_json), function()
      local hh = h
      if wdir then hh = testing.new({ workflows = wdir, lua = ldir }) end
      local r = hh:run(intent, attrs_json)
      local bin_lines, code = run_binary(intent, attrs_json, wdir or (dir .. "/workflows"), ldir or (dir .. "/lua"))
      assert.are.same(deep(bin_lines), decoded(r.lines))
      assert.are.equal(want_ok, r.ok)
      assert.are.equal(want_ok and 0 or 1, code)
    end)
  end
end)
