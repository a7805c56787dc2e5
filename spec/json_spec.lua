-- JSON at the engine's edges (issue 9, items 8 and 9), through sio.testing
-- and through `sio-orchestrator run`: integers stay exact and floats
-- round-trip, attrs are read strictly (trailing bytes, invalid UTF-8), and
-- nothing written is invalid UTF-8.  Decoding here uses the engine's codec
-- (testing.core.json): lua-cjson would itself round 12345678901234567.
local testing = require "sio.testing"
local H = require "support.helpers"
local json = testing.core.json

local PROJECT = {
  ["workflows/nums.yaml"] = [[
intent: nums
steps:
  - id: s1
    tool: {name: echo, args: {id: "${A.id}", f: "${A.f}", neg: "${A.neg}"}}
    publish_result: true
  - id: s2
    run: |
      return { id = A.id + 1, kind = math.type(A.id), third = A.f / 3 }
output:
  id: "${A.id}"
  f: "${A.f}"
]],
  ["workflows/bytes.yaml"] = [[
intent: bytes
steps:
  - id: s1
    run: |
      sio.publish("raw \255 byte")
      return { ["k\192"] = "v\237\160\128", ok = "caf\195\169" }
    publish_result: true
]],
  ["workflows/badmsg.yaml"] = [[
intent: badmsg
steps:
  - id: s1
    run: |
      error("bad \255 message", 0)
]],
}

local ATTRS = '{"query":"x","id":12345678901234567,"f":0.1,"neg":-9223372036854775808}'

local function valid_utf8(s) return utf8.len(s) ~= nil end

describe("JSON numbers", function()
  local dir = H.mkproject(PROJECT)
  local h = testing.new({ root = dir })

  it("keep integers exact and floats round-tripping through a workflow (spec)", function()
    local r = h:run("nums", ATTRS)
    r:expect_ok()
    assert.are.equal(12345678901234567, r.result.id)
    assert.are.equal("integer", math.type(r.result.id))
    assert.are.equal(0.1, r.result.f)
    local s1 = r:json("s1")
    assert.are.equal(12345678901234567, s1.id)
    assert.are.equal(math.mininteger, s1.neg)
    assert.are.equal(0.1, s1.f)
    assert.are.same({ id = 12345678901234568, kind = "integer", third = 0.1 / 3 }, r:json("s2"))
    assert.truthy(r.text:find('"id":12345678901234567', 1, true))
  end)

  it("keep integers exact and floats round-tripping in `run` output", function()
    local lines, code = H.run_binary("nums", ATTRS, dir .. "/workflows", dir .. "/lua")
    assert.are.equal(0, code)
    assert.are.equal(2, #lines)
    assert.truthy(lines[1]:find('\\"id\\":12345678901234567', 1, true), lines[1])
    assert.truthy(lines[2]:find('"id":12345678901234567', 1, true), lines[2])
    assert.falsy(lines[2]:find("e+16", 1, true))
    local final = json.decode(lines[2])
    assert.are.equal(12345678901234567, final.result.id)
    assert.are.equal(0.1, final.result.f)
    assert.are.equal(12345678901234568, json.decode(final.result.outputs.s2).id)
  end)

  it("come back from the shipped noop exact", function()
    local lines, code = H.run_binary("noop", '{"query":12345678901234567,"f":0.1}', "workflows", "lua")
    assert.are.equal(0, code)
    assert.truthy(lines[1]:find('"query":12345678901234567', 1, true), lines[1])
    assert.truthy(lines[1]:find('\\"query\\":12345678901234567', 1, true), lines[1])
  end)
end)

describe("attrs are read strictly", function()
  local dir = H.mkproject(PROJECT)
  local h = testing.new({ root = dir })
  local bad = {
    { '{"query":"x"}\0garbage', "end of file expected" },
    { '{"query":"x"} garbage', "end of file expected" },
    { '{"query":"\255"}', "unable to decode byte 0xff" },
    { '{"query":"\237\160\128"}', "unable to decode byte 0xed" },
    { '{"query":NaN}', "malformed JSON" },
    { '{"query":1e999}', "real number overflow" },
    { '{"query":"a","query":"b"}', "duplicate object key" },
  }
  for _, c in ipairs(bad) do
    local attrs, want = c[1], c[2]
    it(("%q is refused (spec)"):format(attrs), function()
      h:run("nums", attrs):expect_error("permanent", want, nil)
    end)
    if not attrs:find("\0", 1, true) then -- argv cannot carry a NUL
      it(("%q is refused by `run --attrs`"):format(attrs), function()
        local lines, code = H.run_binary("nums", attrs, dir .. "/workflows", dir .. "/lua")
        assert.are.equal(1, code)
        assert.are.equal(1, #lines)
        local e = json.decode(lines[1])
        assert.are.equal("error", e.status)
        assert.truthy(e.error.message:find("attrs are not valid JSON", 1, true), e.error.message)
        assert.truthy(e.error.message:find(want, 1, true), e.error.message)
        assert.truthy(valid_utf8(lines[1]))
      end)
    end
  end
end)

describe("nothing written is invalid UTF-8", function()
  local dir = H.mkproject(PROJECT)

  it("bytes that are not UTF-8 become U+FFFD in `run` output", function()
    local lines, code = H.run_binary("bytes", "{}", dir .. "/workflows", dir .. "/lua")
    assert.are.equal(0, code)
    assert.are.equal(3, #lines)
    for _, l in ipairs(lines) do assert.truthy(valid_utf8(l), l) end
    assert.truthy(lines[1]:find("raw \239\191\189 byte", 1, true), lines[1])
    local out = json.decode(json.decode(lines[3]).result.outputs.s1)
    assert.are.same({ ["k\239\191\189"] = "v\239\191\189\239\191\189\239\191\189", ok = "caf\195\169" }, out)
  end)

  it("an error message that is not UTF-8 is written with U+FFFD", function()
    local lines, code = H.run_binary("badmsg", "{}", dir .. "/workflows", dir .. "/lua")
    assert.are.equal(1, code)
    assert.are.equal(1, #lines)
    assert.truthy(valid_utf8(lines[1]), lines[1])
    assert.are.equal("bad \239\191\189 message", json.decode(lines[1]).error.message)
  end)
end)
