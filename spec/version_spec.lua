describe("sio.version", function()
  it("names the same version as the binary's major.minor.patch", function()
    local v = require "sio.version"
    assert.are.equal(string.format("%d.%d.%d", v.major, v.minor, v.patch), v.string)
  end)
end)
