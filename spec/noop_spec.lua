-- The seed's sample flow, end to end in the daemon's sandbox and host
-- contract (sio.testing).
local H = require "support.helpers"
local json = require "sio.json"

describe("workflows/noop.yaml (the seed's sample flow)", function()
  local h, wf
  before_each(function()
    h = H.harness({ root = "." })
    assert.are.same({}, h:load_errors())
    wf = h:workflow("noop")
  end)

  it("command attrs {query: 'hello'} yield a step_result for s1 echoing the query, then success", function()
    local res, err, pubs = H.run(h, wf, { query = "hello" })
    assert.is_nil(err)
    assert.are.same({ { id = "s1", payload = '{"query":"hello"}', query = "hello" } }, pubs)
    assert.are.same({
      summary = "workflow noop: 1 steps ok, 0 skipped",
      steps = { "s1" },
      outputs = { s1 = '{"query":"hello"}' },
    }, res)
  end)

  it("older clients sending echo or utter still get their query echoed", function()
    local _, _, pubs = H.run(h, wf, { echo = "from echo" })
    assert.are.equal('{"query":"from echo"}', pubs[1].payload)
    assert.are.equal("from echo", pubs[1].query)
    _, _, pubs = H.run(h, wf, { utter = "from utter" })
    assert.are.equal('{"query":"from utter"}', pubs[1].payload)
  end)

  it("a missing query renders as an empty string (the documented rule), not <nil>", function()
    local _, _, pubs = H.run(h, wf, {})
    assert.are.equal('{"query":""}', pubs[1].payload)
  end)

  it("stays on the lean path: no waits, no host ops, no virtual time", function()
    for _ = 1, 100 do
      local _, _, _, r = H.run(h, wf, { query = "x" })
      assert.are.same({}, r.calls)
      assert.are.same({}, r.timers)
      assert.are.equal(0, r.elapsed_ms)
    end
  end)

  it("many commands in one state do not leak into each other", function()
    local a = H.run(h, wf, { query = "one" })
    local b = H.run(h, wf, { query = "two" })
    assert.are.equal('{"query":"one"}', a.outputs.s1)
    assert.are.equal('{"query":"two"}', b.outputs.s1)
  end)

  it("records the step's output under A.s1 with payload, json and args", function()
    local _, _, _, r = H.run(h, wf, { query = "hello" })
    local s1 = r.steps.s1
    assert.are.equal('{"query":"hello"}', s1.payload)
    assert.are.same({ query = "hello" }, s1.json)
    assert.are.same({ query = "hello" }, s1.args)
    assert.are.equal("ok", s1.status)
    assert.are.equal(1, s1.attempts)
    assert.are.equal(json.encode({ query = "hello" }), s1.payload)
  end)
end)
