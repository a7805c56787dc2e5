-- Loading workflows through the binary: each file with a budget of its own,
-- and one rule for what goes live (the whole set must be valid) at
-- start-up, on reload (tests/unit/test_loader.c) and in `validate`.
local H = require "support.helpers"

local SPIN = "while true do end\nreturn { intent = 'spin', steps = {} }\n"
local NOOP = "intent: znoop\nsteps:\n  - id: s1\n    tool: {name: noop}\n"

describe("loading", function()
  it("validate gives each file its own budget: a file past the instruction limit fails alone", function()
    local root = H.mkproject({ ["workflows/a_spin.lua"] = SPIN, ["workflows/z_noop.yaml"] = NOOP })
    local wf = root .. "/workflows"
    local _, err, code = H.cli("validate " .. H.sh(wf .. "/") .. " --lua " .. H.sh(root .. "/lua"), "SIO_INSTR_LIMIT=1000000")
    assert.are.equal(1, code)
    assert.matches(wf .. "/a_spin.lua: instruction limit exceeded\n", err, 1, true)
    assert.matches("ok: znoop (" .. wf .. "/z_noop.yaml)", err, 1, true)
    assert.is_nil(err:find("z_noop.yaml:", 1, true))
    assert.is_nil(err:find("0x%x+"))
  end)

  it("a set with a duplicate intent is refused at start-up (exit 2) and by validate, naming file and line", function()
    local root = H.mkproject({ ["workflows/a.yaml"] = NOOP, ["workflows/b.yaml"] = "# the same intent\n" .. NOOP })
    local wf, lua = H.sh(root .. "/workflows"), H.sh(root .. "/lua")
    local out, err, code = H.cli("run znoop --workflows " .. wf .. " --lua " .. lua)
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("b.yaml:2: duplicate intent 'znoop' (already defined in a.yaml)", err, 1, true)
    assert.matches("nothing is served until all are valid", err, 1, true)
    _, err, code = H.cli("validate " .. wf .. " --lua " .. lua)
    assert.are.equal(1, code)
    assert.matches("b.yaml:2: duplicate intent 'znoop' (already defined in " .. root .. "/workflows/a.yaml)", err, 1, true)
  end)

  it("an empty entry in steps is named, never an internal error (found by fuzzing)", function()
    local src = "intent: holes\nsteps:\n  - id: b\n    depends_on: [a]\n  - # nothing here\n  - id: d\n"
    local root = H.mkproject({ ["workflows/holes.yaml"] = src })
    local _, err, code = H.cli("validate " .. H.sh(root .. "/workflows") .. " --lua " .. H.sh(root .. "/lua"))
    assert.are.equal(1, code)
    assert.matches("holes.yaml:%d+: step #2 is empty %(null%)", err)
    assert.is_nil(err:find("attempt to index", 1, true))
  end)

  it("validate reports an error under lua/ as a line of its report (exit 1), not as a failure to start", function()
    local root = H.mkproject({ ["workflows/z_noop.yaml"] = NOOP, ["lua/tools/broken.lua"] = "return function(\n" })
    local _, err, code = H.cli("validate " .. H.sh(root .. "/workflows") .. " --lua " .. H.sh(root .. "/lua"))
    assert.are.equal(1, code)
    assert.matches("\n" .. root .. "/lua/tools/broken.lua:2: ", err, 1, true)
    assert.matches("ok: znoop", err, 1, true)
  end)

  it("validate of single files applies the same rule across them", function()
    local root = H.mkproject({ ["workflows/a.yaml"] = NOOP, ["workflows/b.yaml"] = NOOP })
    local a, b = root .. "/workflows/a.yaml", root .. "/workflows/b.yaml"
    local _, err, code = H.cli(("validate %s %s %s --lua %s"):format(H.sh(a), H.sh(b), H.sh(root .. "/nope.yaml"),
      H.sh(root .. "/lua")))
    assert.are.equal(1, code)
    assert.matches(root .. "/nope.yaml: no such file or directory", err, 1, true)
    assert.matches(b .. ":1: duplicate intent 'znoop' (already defined in " .. a .. ")", err, 1, true)
  end)
end)
