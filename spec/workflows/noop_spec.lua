-- workflows/noop.yaml (the seed's sample flow) through the real engine.
local testing = require "sio.testing"

describe("workflows/noop.yaml via sio.testing", function()
  it("echoes the query as a step result of s1, then succeeds", function()
    local r = testing.load("noop"):run({ query = "hello" })
    r:expect_ok()
    assert.are.same({ { step_id = "s1", payload = '{"query":"hello"}', query = "hello" } }, r.published)
    assert.are.same({ summary = "workflow noop: 1 steps ok, 0 skipped", steps = { "s1" },
                      outputs = { s1 = '{"query":"hello"}' } }, r.result)
    assert.are.same({ query = "hello" }, r:args("s1"))
  end)

  it("takes echo when utter and query are absent", function()
    local r = testing.load("noop"):run({ echo = "from echo" })
    assert.are.equal("from echo", r.published[1].query)
  end)
end)
