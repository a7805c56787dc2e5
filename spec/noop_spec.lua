-- The seed's sample flow, end to end against the fake host.
local workflow = require "sio.workflow"
local engine = require "sio.engine"
local H = require "support.helpers"
local cjson = require "cjson"

describe("workflows/noop.yaml (the seed's sample flow)", function()
  local h, wf
  before_each(function()
    h = H.host()
    local res = workflow.load_dir(h, "workflows", { lua_dir = "lua" })
    assert.are.same({}, res.errors)
    wf = res.workflows.noop
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

  it("stays on the lean path: no waits, no user environment, no host ops", function()
    local envs = 0
    local safe_env = h.safe_env
    h.safe_env = function() envs = envs + 1; return safe_env() end
    for _ = 1, 100 do H.run(h, wf, { query = "x" }) end
    assert.are.equal(0, envs)
    assert.are.equal(0, h.waits)
    assert.are.equal(0, h.ops_started + h.timers_started)
  end)

  it("many commands in one state do not leak into each other", function()
    local a = H.run(h, wf, { query = "one" })
    local b = H.run(h, wf, { query = "two" })
    assert.are.equal('{"query":"one"}', a.outputs.s1)
    assert.are.equal('{"query":"two"}', b.outputs.s1)
    assert.are_not.equal(a.outputs, b.outputs)
  end)

  it("records the step's output under A.s1 with payload, json and args", function()
    local A = { query = "hello" }
    H.run(h, wf, A)
    assert.are.equal('{"query":"hello"}', A.s1.payload)
    assert.are.same({ query = "hello" }, A.s1.json)
    assert.are.same({ query = "hello" }, A.s1.args)
    assert.is_true(A.s1.ok)
    assert.are.equal(1, A.s1.attempts)
  end)

  it("also runs as the driver sees it: a command coroutine that never yields", function()
    local co = coroutine.create(engine.execute)
    local ok, res = coroutine.resume(co, h, wf, { query = "hi" }, {})
    assert.is_true(ok)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.equal('{"query":"hi"}', res.outputs.s1)
    assert.are.equal(cjson.encode({ query = "hi" }), res.outputs.s1)
  end)
end)
