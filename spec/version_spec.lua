-- The version is written once (project() in CMakeLists.txt): the binary
-- and the harness's C module both report it.
local H = require "support.helpers"
local testing = require "sio.testing"

describe("the version", function()
  it("is the binary's, in the harness's module too", function()
    local out, _, code = H.cli("version")
    assert.are.equal(0, code)
    local v = out:match("^sio%-orchestrator (%d+%.%d+%.%d+)\n$")
    assert.is_not_nil(v, "version printed: " .. out)
    assert.are.equal(v, testing.core.version)
  end)
end)
