-- sio.testing itself: stubs, call recording, the virtual clock, inspection
-- and failure messages.
local testing = require "sio.testing"
local H = require "support.helpers"

local PROJECT = {
  ["workflows/api.yaml"] = [[
intent: api
steps:
  - id: fetch
    tool: {name: http, args: {url: "https://svc.example/items/${A.item}", timeout: 1s}}
    timeout: 3s
    retries: 1
  - id: clock
    run: |
      local t0 = sio.time.now()
      sio.kv.set("seen", A.fetch.json.name)
      return { now = t0, unix = sio.time.unix(), seen = sio.kv.get("seen") }
  - id: score
    tool: {name: scorer, args: {name: "${A.fetch.json.name}", n: 2}}
    publish_result: true
  - id: notify
    guard: "A.score.json.score > 5"
    tool: {name: kafka, args: {topic: "items.hot", key: "${A.item}", value: "${A.score.payload}"}}
]],
  ["lua/tools/scorer.lua"] = [[return function(args) return { score = #args.name * args.n } end]],
}

describe("sio.testing", function()
  local dir = H.mkproject(PROJECT)
  local h
  before_each(function()
    h = testing.new({ root = dir, intent = "api", http_allow = "svc.example" })
    h:stub("http", { status = 200, json = { name = "lamp" } })
  end)

  it("runs Lua tools from lua/tools in the sandbox, and records every call with its rendered args, in order", function()
    local r = h:run({ item = "7" })
    r:expect_ok()
    assert.are.same({ "http", "kv", "kv", "produce" }, (function()
      local k = {} for i, c in ipairs(r.calls) do k[i] = c.kind end return k end)())
    assert.are.same({ method = "GET", url = "https://svc.example/items/7", timeout_ms = 1000 },
      { method = r.calls[1].args.method, url = r.calls[1].args.url, timeout_ms = r.calls[1].args.timeout_ms })
    assert.are.same({ score = 8 }, r:json("score"))
    assert.are.same({ name = "lamp", n = 2 }, r:args("score"))
    assert.are.same({ topic = "items.hot", key = "7", value = '{"score":8}' }, h.produced[1])
    assert.are.same({ "fetch", "clock", "score", "notify" }, r.ran)
  end)

  it("stubs a tool: the stub gets the rendered args; a guard then skips a step", function()
    local seen
    h:stub_tool("scorer", function(args) seen = args; return { score = 1 } end)
    local r = h:run({ item = "7" })
    r:expect_ok()
    assert.are.same({ name = "lamp", n = 2 }, seen)
    assert.are.same({ name = "lamp", n = 2 }, r:calls_of("tool", "scorer")[1].args)
    r:expect_skipped("notify")
    assert.are.equal(false, r.steps.notify.guard)
    assert.are.same({ { step_id = "score", payload = '{"score":1}', query = nil } }, r.published)
  end)

  it("the virtual clock: sio.time reads it, h:advance and set_time move it", function()
    h:set_time(1800000000)
    h:advance("1m")
    h:stub("http", testing.after("250ms", { status = 200, json = { name = "x" } }))
    local r = h:run({ item = "1" })
    r:expect_ok()
    local c = r:json("clock")
    assert.are.equal(60250, c.now)
    assert.are.equal(1800000060.25, c.unix)
    assert.are.equal(250, r.elapsed_ms)
    assert.are.equal("x", c.seen)
    assert.are.equal(60250, h:now())
  end)

  it("timeouts and retries happen on the virtual clock", function()
    h:stub("http", testing.never())
    local r = h:run({ item = "1" })
    r:expect_error("transient", "^http: timed out$", "fetch") -- the request's 1 s, before the step's 3 s
    assert.are.equal(1, r.retries.fetch)
    assert.are.equal(1000 + 200 + 1000, r.elapsed_ms)
    -- No wall-clock bound: the exact virtual elapsed time is the proof, and
    -- how long the run really takes depends on the machine.
  end)

  it("a failing op is transient by default; a stub can fail permanently", function()
    local n = 0
    h:stub("http", function() n = n + 1; if n == 1 then return testing.fail("connection reset") end
      return { status = 200, json = { name = "ok" } } end)
    local r = h:run({ item = "1" })
    r:expect_ok()
    assert.are.same({ fetch = 1 }, r.retries)
    h:stub("http", function() return testing.fail({ class = "permanent", message = "forbidden host" }) end)
    h:run({ item = "1" }):expect_error("permanent", "forbidden host", "fetch")
  end)

  it("without an http stub the op fails with a hint", function()
    h.stubs.http = nil
    h:run({ item = "1" }):expect_error("permanent", "no http stub for GET https://svc.example/items/1")
  end)

  it("failure messages name the workflow file, line and step", function()
    h:stub("http", { status = 404 })
    local r = h:run({ item = "1" })
    local ok, msg = pcall(r.expect_ok, r)
    assert.is_false(ok)
    assert.matches("workflows/api.yaml:3: step fetch: expected the workflow to succeed, got a permanent error", msg, 1, true)
    assert.matches("step fetch%s+failed", msg)
    local ok2, msg2 = pcall(r.expect_ran, r, "clock")
    assert.is_false(ok2)
    assert.matches("workflows/api.yaml:7: step clock: expected ok, got not_run", msg2, 1, true)
  end)

  it("a stub that raises fails the spec with the stub's error, and the harness stays usable", function()
    h:stub("http", function() error("boom in stub") end)
    local ok, msg = pcall(h.run, h, { item = "1" })
    assert.is_false(ok)
    assert.matches("the http stub raised: .*boom in stub", msg)
    h:stub("http", { status = 200, json = { name = "z" } })
    h:run({ item = "1" }):expect_ok()
  end)

  it("testing.load names the load errors when the intent is missing", function()
    local bad = H.mkproject({ ["workflows/bad.yaml"] = "intent: bad\nsteps:\n  - id: s\n    guard: 'A.x =='\n    tool: {name: echo}\n" })
    local ok, msg = pcall(testing.load, "bad", { root = bad })
    assert.is_false(ok)
    assert.matches("no workflow with intent 'bad'", msg, 1, true)
    -- files are named relative to the workflows folder, as serve names them
    assert.matches("\n  bad.yaml:4: step s: invalid guard", msg, 1, true)
  end)

  it("a failed expectation is a busted failure (not an error) at the spec's line", function()
    h:stub("http", { status = 404 })
    local r = h:run({ item = "1" })
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, e = pcall(r.expect_ran, r, "clock")
    assert.is_false(ok)
    assert.are.equal("failure", getmetatable(e).__type)
    assert.matches("^spec/testing_spec%.lua:" .. line .. ": /.*/workflows/api%.yaml:7: step clock: expected ok", tostring(e))
    ok, e = pcall(function() return r:json("fetch") end)
    assert.are.equal("failure", getmetatable(e).__type)
    assert.matches("^spec/testing_spec%.lua:%d+: /.*/workflows/api%.yaml:3: step fetch: has no output: it failed", tostring(e))
  end)

  it("an unknown workflow names the closest loaded ones", function()
    local ok, e = pcall(testing.load, "apii", { root = dir })
    assert.is_false(ok)
    assert.matches("no workflow with intent 'apii' in .*/workflows %- did you mean api%? %(loaded: api%)", tostring(e))
    h:run("aip", {}):expect_error("permanent", "^unknown workflow 'aip' %(did you mean api%?%)$")
    h:run("payments", {}):expect_error("permanent", "^unknown workflow 'payments'$")
  end)

  it("inline workflows and kv incr", function()
    h:add_workflow([[
intent: counter
steps:
  - {id: c, run: "return sio.kv.incr('n')"}
]], "inline/counter.yaml")
    assert.are.equal("1", h:run("counter", {}):output("c"))
    assert.are.equal("2", h:run("counter", {}):output("c"))
    assert.are.equal("2", h.kv["wf:counter:n"])
  end)
end)

describe("engine behaviour the harness surfaced", function()
  -- Without depends_on, steps chain in file order.  A middle step dropped
  -- by its guard at personalisation passes through: its dependant still
  -- waits for the dropped step's own dependencies.
  it("a -> b (dropped by its guard) -> c: c waits for a", function()
    local h = testing.new({ http_allow = "svc.example" })
    h:add_workflow([[
intent: chain
steps:
  - {id: a, tool: {name: http, args: {url: "https://svc.example/a"}}}
  - {id: b, guard: "A.never", tool: {name: echo}}
  - {id: c, run: "return A.a.payload"}
]], "inline/chain.yaml")
    h:stub("http", { status = 200, body = "from a" })
    local r = h:run("chain", {})
    r:expect_ok()
    assert.are.equal("from a", r:output("c"))
  end)
end)
