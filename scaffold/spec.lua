-- Specs for workflows/{{name}}.yaml.  Run them with `sio-orchestrator test`:
-- the real engine in the real sandbox, with stubbed I/O on a virtual clock.
local testing = require "sio.testing"

describe("{{name}}", function()
  local h ---@type sio.testing.Harness
  before_each(function()
    h = testing.load("{{name}}") -- ./workflows and ./lua
  end)

  it("greets by name and publishes the greeting", function()
    local r = h:run({ query = "hi", name = "Ada" })
    r:expect_ok()
    assert.are.equal("Hello, Ada! You said: hi", r.result.text)
    assert.are.equal("compose", r.published[1].step_id)
    r:expect_skipped("shout")
  end)

  it("shouts when the command sets loud", function()
    local r = h:run({ loud = true })
    r:expect_ran("compose", "shout")
    assert.are.same({ text = "HELLO, THERE!" }, r:json("shout"))
  end)
end)
